#!/usr/bin/env python3
"""GET /metrics, /healthz and /readyz against the real daemon (issue #15):
the values move as tasks are submitted, refused, queued and run; the
exposition passes `promtool check metrics`; /metrics is open only on a
listener with `metrics: public` and wants an admin principal elsewhere;
/readyz names the store when its disk is full and the docker backend when
its dockerd cannot be reached."""

import os
import re
import shutil
import subprocess
import tempfile

import ocps

USER = "ocpstest"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def on_port(d, port, method, path, body=None, headers=None, token=ocps.ADMIN):
    """d.request on another of the daemon's listeners."""
    saved = d.port
    d.port = port
    try:
        return d.request(method, path, body, headers, token=token)
    finally:
        d.port = saved


def parse(text):
    """{(name, ((label, value), ...)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("not a sample line: %r" % line)
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(d, port=None):
    r = on_port(d, port or d.port, "GET", "/metrics")
    if r.status != 200:
        raise RuntimeError("GET /metrics: %r" % r)
    return r.text, parse(r.text)


def promtool():
    return os.environ.get("OCPS_PROMTOOL") or shutil.which("promtool")


def config(d, public, anon):
    d.listen_args = []
    return ("listen:\n"
            "  - 127.0.0.1:%d\n"
            "  - {address: 127.0.0.1:%d, metrics: public}\n"
            "  - {address: 127.0.0.1:%d, unauthenticated: anon}\n"
            "capacity: {cores: 1}\n"
            "principals:\n"
            "  anon: {run_as: [%s], max: {cores: 0.5}}\n" % (d.port, public, anon, USER))


def block_metrics(tap):
    ocps.require_root()
    ocps.ensure_user(USER)
    d = ocps.Daemon()
    public, anon = ocps.free_port(), ocps.free_port()
    d.config = config(d, public, anon)
    with ocps.serving(tap, d, "metrics") as d:
        t_access(tap, d, public, anon)
        t_values(tap, d, anon)
        t_queue(tap, d)
        t_recovered(tap, d)
        t_exposition(tap, d, public)


def t_access(tap, d, public, anon):
    for port, what in ((d.port, "a token listener"), (public, "the metrics: public listener"),
                       (anon, "an unauthenticated listener")):
        r = on_port(d, port, "GET", "/healthz", token=None)
        tap.ok(r.status == 200 and r.text == "ok\n", "/healthz answers ok without credentials on %s" % what, r)
        r = on_port(d, port, "GET", "/readyz", token=None)
        tap.ok(r.status == 200 and r.text == "ready\n", "/readyz answers ready without credentials on %s" % what, r)

    r = d.request("GET", "/metrics", token=None)
    tap.eq(r.status, 401, "/metrics without credentials on a token listener is 401")
    tap.ok("Bearer" in r.headers.get("www-authenticate", ""), "... with WWW-Authenticate: Bearer", r)
    r = d.request("GET", "/metrics")
    tap.ok(r.status == 200 and r.headers.get("content-type") == "text/plain; version=0.0.4; charset=utf-8",
           "/metrics with the admin token is 200 in the text format 0.0.4", r)
    r = on_port(d, anon, "GET", "/metrics", token=None)
    tap.ok(r.status == 403 and "admin" in r.json()["message"],
           "/metrics for a principal that is not an admin (an unauthenticated listener's) is 403", r)
    r = on_port(d, public, "GET", "/metrics", token=None)
    tap.ok(r.status == 200 and r.text.startswith("# HELP "),
           "/metrics on the metrics: public listener is 200 without credentials", r)
    r = on_port(d, public, "GET", "/metrics", token="ocps_bogus_token")
    tap.eq(r.status, 401, "a token sent to the public listener is checked all the same")
    r = on_port(d, public, "GET", "/v1/jobproxy/state", token=None)
    tap.eq(r.status, 401, "the public listener opens /metrics only, not the tasks")


def t_values(tap, d, anon):
    _, before = scrape(d)
    tid = d.submit_id({"user": USER, "cmd": "true"})
    st = d.wait(tid)
    tap.ok(st and st["code"] == "COMPLETE", "a task runs to its end", st)
    _, polled = scrape(d)  # d.wait polled the state: count one GET from here
    d.state(tid)
    d.request("GET", "/v1/nope")

    refusals = {
        "auth": lambda: d.request("POST", "/v1/jobproxy/submit", {"user": USER, "cmd": "true"}, token=None),
        "validation": lambda: d.submit('{"user": "%s", "cmd": ' % USER),
        "media": lambda: d.submit("user: x", ctype="text/csv"),
        "capacity": lambda: d.submit({"user": USER, "cmd": "true", "cores": 2}),
        "policy_run_as": lambda: on_port(d, anon, "POST", "/v1/jobproxy/submit",
                                         {"user": "root", "cmd": "true"}, token=None),
        "policy_max": lambda: on_port(d, anon, "POST", "/v1/jobproxy/submit",
                                      {"user": USER, "cmd": "true", "cores": 1}, token=None),
    }
    statuses = {why: f().status for why, f in refusals.items()}
    text, after = scrape(d)

    def moved(name, by, what, **labels):
        got = value(after, name, **labels) - value(before, name, **labels)
        tap.ok(got == by, "%s: %s%s moved by %g (got %g)" % (what, name, labels, by, got))

    moved("ocps_submits_total", 1, "an accepted submit", backend="process")
    moved("ocps_tasks_ended_total", 1, "its end", state="COMPLETE", backend="process")
    moved("ocps_task_run_seconds_count", 1, "its run time", backend="process")
    moved("ocps_queue_wait_seconds_count", 1, "its wait in the queue", backend="process")
    for why, status in statuses.items():
        moved("ocps_submit_refusals_total", 1, "a refusal (HTTP %d)" % status, reason=why)
    moved("ocps_http_requests_total", 1, "the accepted submit", method="POST",
          route="/v1/jobproxy/submit", code="200")
    got = value(after, "ocps_http_requests_total", method="GET", route="/v1/jobproxy/state/{id}",
                code="200") - value(polled, "ocps_http_requests_total", method="GET",
                                    route="/v1/jobproxy/state/{id}", code="200")
    tap.eq(got, 1, "a GET of a task's state is counted under its route's pattern")
    moved("ocps_http_requests_total", 1, "a path no route has", method="other", route="unmatched",
          code="404")
    tap.ok(tid not in text and "/v1/nope" not in text,
           "no path a client sent (a task's id, an unknown path) becomes a label value")
    tap.ok(value(after, "ocps_store_commit_seconds_count", sync="full") >
           value(before, "ocps_store_commit_seconds_count", sync="full"),
           "the store's durable commits are timed")
    tap.ok(value(after, "ocps_store_commit_batch_size_sum", sync="full") >=
           value(after, "ocps_store_commit_seconds_count", sync="full") > 0,
           "each commit's batch holds at least one write")
    tap.ok(value(after, "process_resident_memory_bytes") > 1 << 20, "the daemon's resident memory")
    fds = len(os.listdir("/proc/%d/fd" % d.proc.pid))
    tap.ok(0 < value(after, "process_open_fds") <= fds + 8,
           "its open fds (%g; /proc says %d now)" % (value(after, "process_open_fds"), fds))
    tap.ok(value(after, "process_threads") >= 3, "its threads")


def t_queue(tap, d):
    blocker = d.submit_id({"user": USER, "cmd": "sleep 600", "cores": 1})
    d.wait(blocker, codes=("RUNNING",))
    queued = d.submit_id({"user": USER, "cmd": "true", "cores": 1})
    _, s = scrape(d)
    tap.eq(value(s, "ocps_queue_length"), 1, "a task waiting for capacity is in the queue length")
    tap.eq(value(s, "ocps_tasks", state="QUEUED", backend="process"), 1, "... and a QUEUED task")
    tap.eq(value(s, "ocps_tasks", state="RUNNING", backend="process"), 1, "the blocker is a RUNNING task")
    tap.eq(value(s, "ocps_capacity_used_cores"), 1, "the blocker holds the host's one core")
    tap.eq(value(s, "ocps_capacity_cores"), 1, "the capacity in all")
    ended = value(s, "ocps_tasks_ended_total", state="CANCELED", backend="process")
    for tid in (queued, blocker):
        d.request("DELETE", "/v1/jobproxy/delete/" + tid)
        d.wait(tid)
    _, s = scrape(d)
    tap.eq(value(s, "ocps_queue_length"), 0, "the queue is empty once they are cancelled")
    tap.eq(sum(value(s, "ocps_tasks", state=st, backend="process")
               for st in ("QUEUED", "INITIALIZING", "RUNNING", "CANCELING")), 0, "no task is active")
    tap.eq(value(s, "ocps_capacity_used_cores"), 0, "no core is held")
    tap.eq(value(s, "ocps_tasks_ended_total", state="CANCELED", backend="process") - ended, 2,
           "both are counted CANCELED")


def t_recovered(tap, d):
    """The active tasks' gauges after a restart count what recovery found."""
    blocker = d.submit_id({"user": USER, "cmd": "sleep 600", "cores": 1})
    d.wait(blocker, codes=("RUNNING",))
    queued = d.submit_id({"user": USER, "cmd": "true", "cores": 1})
    tap.eq(d.stop(), 0, "the daemon stops with a task running and one queued")
    d.start()
    st = d.wait(blocker, codes=("RUNNING",))
    tap.ok(st and st["code"] == "RUNNING", "the running task is recovered", st)
    _, s = scrape(d)
    tap.eq((value(s, "ocps_tasks", state="RUNNING", backend="process"),
            value(s, "ocps_tasks", state="QUEUED", backend="process"), value(s, "ocps_queue_length"),
            value(s, "ocps_capacity_used_cores")), (1, 1, 1, 1),
           "after a restart: one task RUNNING, one QUEUED, the queue's length and the core held")
    for tid in (queued, blocker):
        d.request("DELETE", "/v1/jobproxy/delete/" + tid)
        d.wait(tid)
    _, s = scrape(d)
    tap.eq(sum(value(s, "ocps_tasks", state=st, backend="process")
               for st in ("QUEUED", "INITIALIZING", "RUNNING", "CANCELING")), 0,
           "no task is active once both are cancelled")


def t_exposition(tap, d, public):
    text, _ = scrape(d, public)
    tool = promtool()
    if not tool:
        tap.skip("promtool check metrics passes", "promtool not installed (Debian's prometheus package)")
        return
    p = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True)
    tap.ok(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
           "promtool check metrics passes, with no lint problem", p.stdout + p.stderr)


def block_docker_down(tap):
    """A docker backend whose dockerd cannot be reached: /readyz names it,
    and the failed ping is an Engine call error."""
    d = ocps.Daemon(config="docker: {socket: /nonexistent/docker.sock}\n")
    with ocps.serving(tap, d, "a dead docker socket") as d:
        _, before = scrape(d)
        r = d.request("GET", "/readyz", token=None)
        tap.ok(r.status == 503 and r.json()["message"] == "not ready: backend docker",
               "/readyz is 503 naming the docker backend, and nothing more", r)
        tap.ok("retry-after" in r.headers, "... with Retry-After", r)
        tap.ok("docker" in d.logs() and "not ready: backend docker:" in d.logs(),
               "the daemon's log says why", d.logs()[-1500:])
        _, after = scrape(d)
        tap.ok(value(after, "ocps_engine_call_errors_total", kind="ping") >
               value(before, "ocps_engine_call_errors_total", kind="ping"),
               "the failed ping counts as an Engine call error of kind ping")
        tap.ok(value(after, "ocps_engine_call_seconds_count", kind="ping") >
               value(before, "ocps_engine_call_seconds_count", kind="ping"),
               "... and is timed")


def block_engine(tap):
    """A container task through the real dockerd: the Engine calls it makes
    are counted by kind, and the task by backend."""
    if not os.path.exists("/var/run/docker.sock"):
        tap.skip("Engine calls by kind", "no dockerd at /var/run/docker.sock")
        return
    d = ocps.Daemon(config="docker: {network: none, pull: never, instance: ocps-metrics-%d}\n"
                    % os.getpid())
    with ocps.serving(tap, d, "the docker backend"):
        _, before = scrape(d)
        r = d.request("GET", "/readyz", token=None)
        tap.ok(r.status == 200 and r.text == "ready\n", "ready: dockerd answers", r)
        tid = d.submit_id({"user": USER, "container": {"image": "ocps-test/busybox:1", "cmd": ["true"]}})
        st = d.wait(tid)
        tap.ok(st and st["code"] == "COMPLETE", "a container task runs to its end", st)
        _, after = scrape(d)
        for kind in ("ping", "container_create", "container_start", "container_wait"):
            tap.ok(value(after, "ocps_engine_calls_total", kind=kind) >
                   value(before, "ocps_engine_calls_total", kind=kind),
                   "an Engine call of kind %s is counted" % kind)
        tap.ok(value(after, "ocps_engine_call_seconds_count", kind="container_create") >= 1,
               "... and timed")
        tap.eq(value(after, "ocps_engine_call_errors_total", kind="container_create"), 0,
               "no create failed")
        tap.eq(value(after, "ocps_submits_total", backend="docker"), 1, "the submit, by its backend")
        tap.eq(value(after, "ocps_tasks_ended_total", state="COMPLETE", backend="docker"), 1,
               "its end, by its backend")


def block_store_full(tap):
    """A data dir on a small tmpfs that the test fills: /readyz names the
    store until there is room again."""
    ocps.require_root()
    mnt = tempfile.mkdtemp(prefix="ocps-ready-")
    if not tap.eq(subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]).returncode, 0,
                  "a 4 MiB tmpfs for the data dir"):
        os.rmdir(mnt)
        return
    d = ocps.Daemon(data_dir=os.path.join(mnt, "data"))
    os.makedirs(d.data_dir)
    d.log_path = os.path.join(mnt, "..", os.path.basename(mnt) + ".log")
    filler = os.path.join(mnt, "filler")
    try:
        with ocps.serving(tap, d, "a data dir on a small tmpfs"):
            tap.eq(d.request("GET", "/readyz", token=None).status, 200, "ready while there is room")
            ocps.fill_filesystem(filler)
            r = d.request("GET", "/readyz", token=None)
            tap.ok(r.status == 503 and r.json()["message"] == "not ready: store",
                   "/readyz is 503 naming the store once its disk is full", r)
            tap.ok("not ready: store:" in d.logs(), "the daemon's log says why", d.logs()[-1500:])
            tap.eq(d.request("GET", "/healthz", token=None).status, 200, "/healthz stays 200: the process answers")
            os.unlink(filler)
            r = d.request("GET", "/readyz", token=None)
            tap.ok(r.status == 200, "ready again once there is room", r)
    finally:
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)
        try:
            os.unlink(d.log_path)
        except OSError:
            pass


def block_bad_option(tap):
    """A listener's metrics option is public or admin, nothing else."""
    data = tempfile.mkdtemp(prefix="ocps-it-")
    try:
        path = os.path.join(data, "config.yaml")
        with open(path, "w") as f:
            f.write("listen:\n  - {address: 127.0.0.1:%d, metrics: open}\n" % ocps.free_port())
        p = subprocess.run([ocps.DAEMON, "--config", path, "--data-dir", data],
                           capture_output=True, text=True, timeout=30)
        tap.ok(p.returncode != 0 and "metrics: must be public" in p.stderr,
               "metrics: open is refused at start, naming the setting", p.stderr)
    finally:
        shutil.rmtree(data, ignore_errors=True)


ocps.main(block_metrics, block_docker_down, block_engine, block_store_full, block_bad_option)
