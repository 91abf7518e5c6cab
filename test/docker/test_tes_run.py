#!/usr/bin/env python3
"""GA4GH TES tasks run for real (issue #13): the daemon built by meson,
the shared dockerd and the busybox test image (test/docker/setup.sh),
containers with network none. Each TES task is created over
/ga4gh/tes/v1, runs its executors in containers of their own, and is
checked by what its executors did (their output, the files they left),
by its FULL view and by the host files its outputs became: several
executors sharing a volume; inputs (content, a host file, a file://
URL, a directory, an http URL served by a python http.server on
127.0.0.1, a streamable one); outputs (a file, a directory, a wildcard
with path_prefix) after success and after a failure; ignore_error;
stdin, stdout and stderr paths; env and workdir; resources reaching the
container; an input path the policy forbids or the account may not
read, or that its principal's mount prefixes do not hold; an
executor image the principal may not run; an unknown URL scheme; cancel of a running executor (its
container gone); a daemon killed while executors run (the task resumed) or
while it stages its inputs (staged again); the JobProxy view of a TES task; and a workflow
manager's TES client flow (create, poll MINIMAL, fetch FULL, cancel).
Every exchange is also held against openapi/ocps-proxy.yaml."""

import functools
import http.client
import http.server
import json
import os
import shutil
import socket
import tempfile
import threading

import ocps

USER = "ocpstest"
IMAGE = "ocps-test/busybox:1"
TES = "/ga4gh/tes/v1"
SOCK = "/var/run/docker.sock"
FINAL = ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED")
CONFIG = ("docker: {network: none, pull: never, instance: tes-run-%d}\nkill_grace: 2\n"
          "principals:\n  admin: {tes_user: %s}\n" % (os.getpid(), USER))


class UnixHTTP(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(SOCK)


def engine(method, path):
    c = UnixHTTP("localhost", timeout=30)
    try:
        c.request(method, "/v1.41" + path)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def container(name):
    try:
        st, info = engine("GET", "/containers/%s/json" % name)
    except OSError:
        return None
    return info if st == 200 else None


def dockerd_has_image():
    try:
        return engine("GET", "/images/%s/json" % IMAGE)[0] == 200
    except OSError:
        return False


def create(d, task):
    r = d.request("POST", TES + "/tasks", json.dumps(task), {"Content-Type": "application/json"})
    return r.json()["id"] if r.status == 200 else None


def get(d, tid, view="MINIMAL"):
    r = d.request("GET", TES + "/tasks/%s?view=%s" % (tid, view))
    return r.json() if r.status == 200 else None


def wait(d, tid, states=FINAL, timeout=120):
    ocps.until(lambda: (get(d, tid) or {}).get("state") in states, timeout, 0.1)
    return (get(d, tid) or {}).get("state")


def task_log(full):
    return (full or {}).get("logs", [{}])[0] if (full or {}).get("logs") else {}


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def ex(cmd, **kw):
    return dict({"image": IMAGE, "command": ["sh", "-c", cmd]}, **kw)


class Host:
    """The host side: files the inputs name and a directory, owned by the
    task's account, the outputs go to."""

    def __init__(self, pw):
        self.dir = tempfile.mkdtemp(prefix="ocps-tes-run-")
        os.chmod(self.dir, 0o755)
        self.put("in/one.txt", "one\n")
        self.put("in/tree/a.txt", "a\n")
        self.put("in/tree/sub/b.txt", "bb\n")
        self.put("private/secret", "s3kr1t-content\n")
        os.chmod(self.p("private"), 0o700)
        os.makedirs(self.p("out"))
        os.chown(self.p("out"), pw.pw_uid, pw.pw_gid)

    def p(self, rel):
        return os.path.join(self.dir, rel)

    def put(self, rel, content):
        os.makedirs(os.path.dirname(self.p(rel)), exist_ok=True)
        with open(self.p(rel), "w") as f:
            f.write(content)
        os.chmod(self.p(rel), 0o644)


# ---- the tests ----

def t_executors_files(tap, d, host, http_port):
    """Executors in order, one volume between them, every kind of input,
    every kind of output, stdin/stdout/stderr paths, env and workdir."""
    task = {
        "name": "files",
        "inputs": [
            {"path": "/data/in/content.txt", "content": "inline\n"},
            {"path": "/data/in/one.txt", "url": host.p("in/one.txt"), "type": "FILE"},
            {"path": "/data/in/url.txt", "url": "file://" + host.p("in/one.txt")},
            {"path": "/data/tree", "url": host.p("in/tree"), "type": "DIRECTORY"},
            {"path": "/data/http.txt", "url": "http://127.0.0.1:%d/one.txt" % http_port},
            {"path": "/ro/one.txt", "url": host.p("in/one.txt"), "streamable": True},
        ],
        "outputs": [
            {"path": "/out/result.txt", "url": "file://" + host.p("out/files/result.txt")},
            {"path": "/out/dir", "url": host.p("out/files/dir"), "type": "DIRECTORY"},
            {"path": "/out/w/*.txt", "path_prefix": "/out/w/", "url": host.p("out/files/w")},
        ],
        "volumes": ["/vol"],
        "executors": [
            ex("cat /data/in/content.txt /data/in/one.txt /data/in/url.txt /data/tree/sub/b.txt "
               "/data/http.txt > /vol/x && mv /data/in/one.txt /data/in/moved.txt && "
               "mkdir -p /out/dir/sub /out/w && echo d > /out/dir/sub/f && echo 1 > /out/w/1.txt && "
               "echo 2 > /out/w/2.txt && echo no > /out/w/3.log && echo first"),
            ex("cat; echo $GREETING; pwd; echo to-stderr >&2", stdin="/vol/x",
               stdout="/out/result.txt", stderr="/out/err.txt", workdir="/vol",
               env={"GREETING": "hello env"}),
            ex("cat /out/result.txt /out/err.txt; echo ro > /ro/one.txt || echo read-only"),
        ],
    }
    tid = create(d, task)
    if not tap.ok(tid, "a TES task with three executors is created"):
        return
    tap.eq(wait(d, tid), "COMPLETE", "it runs to COMPLETE")
    full = get(d, tid, "FULL")
    tl = task_log(full)
    logs = tl.get("logs", [])
    tap.eq([l.get("exit_code") for l in logs], [0, 0, 0], "one executor log each, exit codes 0")
    tap.ok(all(l.get("start_time") and l.get("end_time") for l in logs),
           "each executor log has its start and end", logs)
    tap.eq(logs[0].get("stdout") if logs else None, "first\n", "FULL: executor 0's stdout tail")
    body = "inline\none\none\nbb\none\nhello env\n/vol\n"
    tap.eq(logs[1].get("stdout") if len(logs) > 1 else None, body,
           "stdin from the shared volume; env; workdir (executor 1's stdout)")
    tap.eq(logs[2].get("stdout") if len(logs) > 2 else None, body + "to-stderr\nread-only\n",
           "executor 1's stdout and stderr paths hold its output for the next one; "
           "a streamable input is read-only")
    tap.eq(read(host.p("out/files/result.txt")), body, "a file output reaches its file:// URL")
    tap.eq(read(host.p("out/files/dir/sub/f")), "d\n", "a directory output is copied whole")
    tap.eq((read(host.p("out/files/w/1.txt")), read(host.p("out/files/w/2.txt")),
            os.path.exists(host.p("out/files/w/3.log"))), ("1\n", "2\n", False),
           "a wildcard output: each match under the URL, less path_prefix; nothing else")
    st = os.stat(host.p("out/files/result.txt"))
    tap.eq(st.st_uid, d.pw.pw_uid, "outputs are written as the task's account")
    outs = {o["path"]: o for o in tl.get("outputs", [])}
    tap.eq(outs.get("/out/result.txt"),
           {"url": "file://" + host.p("out/files/result.txt"), "path": "/out/result.txt",
            "size_bytes": str(len(body))}, "the task log lists a copied file: url, path, size_bytes")
    tap.eq(sorted(outs), ["/out/dir/sub/f", "/out/result.txt", "/out/w/1.txt", "/out/w/2.txt"],
           "... every file copied, directories file by file")
    tap.eq(read(host.p("in/one.txt")), "one\n", "an input moved inside the task stays on the host")
    out = d.output(tid)
    tap.ok(out and out.startswith("first\n") and out.endswith("read-only\n"),
           "the logs endpoint has every executor's whole output, in order", out)
    for n in range(3):
        tap.ok(ocps.until(lambda: container("ocps-%s-%d" % (tid, n)) is None, 20),
               "executor %d's container is removed" % n)


def t_failure(tap, d, host, http_port):
    """The first failing executor ends the task (its exit code is the
    task's), unless ignore_error; outputs are still copied."""
    tid = create(d, {
        "outputs": [{"path": "/work/partial.txt", "url": host.p("out/failure/partial.txt")}],
        "executors": [ex("echo partial > /work/partial.txt; exit 3", ignore_error=True),
                      ex("echo second; exit 4"),
                      ex("echo never")]})
    tap.eq(wait(d, tid), "EXECUTOR_ERROR", "a failing executor: EXECUTOR_ERROR")
    tl = task_log(get(d, tid, "FULL"))
    tap.eq([l.get("exit_code") for l in tl.get("logs", [])], [3, 4],
           "ignore_error goes on past exit 3; exit 4 stops it: the third never runs")
    tap.eq(read(host.p("out/failure/partial.txt")), "partial\n",
           "outputs are copied after a failure too")
    st = d.state(tid)
    tap.ok(st and st["code"] == "EXECUTOR_ERROR" and st["exit_code"] == 4,
           "the JobProxy State: the failing executor's exit code", st)
    tid = create(d, {"executors": [ex("exit 5", ignore_error=True)]})
    tap.eq(wait(d, tid), "COMPLETE", "a last executor that fails with ignore_error: COMPLETE")
    tid = create(d, {"executors": [{"image": IMAGE, "command": ["/no/such/program"]}]})
    tap.eq(wait(d, tid), "EXECUTOR_ERROR", "a command that cannot be executed: EXECUTOR_ERROR")
    logs = task_log(get(d, tid, "FULL")).get("logs", [])
    tap.ok(len(logs) == 1 and isinstance(logs[0].get("exit_code"), int) and logs[0]["exit_code"] != 0,
           "... and still an executor log with an exit code", logs)


def t_inputs_refused(tap, d, host, http_port):
    """Inputs the server may not read are refused at create, as mounts are
    (403, or 400 for a path that does not exist), naming the input; those
    it cannot fetch (no storage for the scheme, an HTTP error) fail the
    task with SYSTEM_ERROR and a system log that says why; no executor
    runs."""
    cases = [
        ({"path": "/in/x", "url": "s3://bucket/key"}, None, "\"s3\"", "an s3:// URL (no storage)"),
        ({"path": "/in/x", "url": "/etc/shadow"}, 403, "never mounted", "a path under /etc"),
        ({"path": "/in/x", "url": host.p("private/secret")}, 403, "may not read",
         "a file the account may not read"),
        ({"path": "/in/x", "url": host.p("nothing-here")}, 400, "does not exist", "a missing file"),
        ({"path": "/in/x", "url": "http://127.0.0.1:%d/nothing" % http_port}, None, "HTTP 404",
         "an http URL that answers 404"),
    ]
    ids = []
    for inp, status, want, what in cases:
        r = d.request("POST", TES + "/tasks",
                      json.dumps({"inputs": [inp], "executors": [ex("cat /in/x")]}),
                      {"Content-Type": "application/json"})
        if status:
            msg = r.json().get("message", "") if r.status == status else ""
            tap.ok(r.status == status and msg.startswith("inputs[0].url: ") and want in msg,
                   "%s: %d at create, saying so" % (what, status), r)
            continue
        tap.eq(r.status, 200, "%s: accepted at create" % what)
        ids.append((r.json()["id"], want, what))
    for tid, want, what in ids:
        tap.eq(wait(d, tid), "SYSTEM_ERROR", "%s: SYSTEM_ERROR" % what)
        tl = task_log(get(d, tid, "FULL"))
        msgs = tl.get("system_logs", [])
        tap.ok(any(want in m and "inputs[0]" in m for m in msgs),
               "%s: a system log says so" % what, msgs)
        tap.eq(tl.get("logs"), [], "%s: no executor ran" % what)


def t_policy(tap, d, host, http_port):
    """A principal held to mount prefixes and images: a TES task's host
    paths are held to them as mounts are, and every executor's image."""
    import subprocess
    p = subprocess.run([ocps.DAEMON, "token", "create", "--principal", "ci", "--data-dir",
                        d.data_dir], capture_output=True, text=True, timeout=60)
    token = p.stdout.strip()

    def create_as(task):
        return d.request("POST", TES + "/tasks", json.dumps(task),
                         {"Content-Type": "application/json"}, token=token)
    ok_task = {"inputs": [{"path": "/in/one.txt", "url": host.p("in/one.txt")}],
               "outputs": [{"path": "/in/one.txt", "url": host.p("out/ci/new/one.txt")}],
               "executors": [ex("true"), ex("true")]}
    r = create_as(ok_task)
    tap.ok(r.status == 200, "inside its prefixes (ro input, rw output's directory): created", r)
    if r.status == 200:
        tap.eq(wait(d, r.json()["id"]), "COMPLETE", "... and it runs")
        tap.eq(read(host.p("out/ci/new/one.txt")), "one\n", "... its output copied")
    for task, want, what in (
            (dict(ok_task, inputs=[{"path": "/in/x", "url": host.p("private/secret")}]),
             "inputs[0].url", "an input outside its prefixes"),
            (dict(ok_task, inputs=[{"path": "/in/x", "url": "file://" + host.p("in/../private/secret")}]),
             "inputs[0].url", "an input that leaves its prefix through \"..\""),
            (dict(ok_task, outputs=[{"path": "/in/one.txt", "url": host.p("in/copy.txt")}]),
             "outputs[0].url", "an output under a read-only prefix"),
            (dict(ok_task, outputs=[{"path": "/o", "url": "/tmp/ocps-tes-elsewhere/o"}]),
             "outputs[0].url", "an output outside its prefixes"),
            (dict(ok_task, executors=[ex("true"), {"image": "other/image:1", "command": ["true"]}]),
             "executors[1].image", "a second executor's image it may not run")):
        r = create_as(task)
        msg = r.json().get("message", "") if r.status == 403 else ""
        tap.ok(r.status == 403 and msg.startswith(want), "%s: 403 naming %s" % (what, want), r)
    tap.ok(not os.path.exists(host.p("in/copy.txt")), "nothing was written under the ro prefix")


def t_resources(tap, d, host, http_port):
    """cpu_cores and ram_gb reach the container (its cgroup says so)."""
    tid = create(d, {"resources": {"cpu_cores": 1, "ram_gb": 0.125},
                     "executors": [ex("cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                                      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                                      "/sys/fs/cgroup/cpu/cpu.cfs_period_us")]})
    tap.eq(wait(d, tid), "COMPLETE", "a task with resources completes")
    logs = task_log(get(d, tid, "FULL")).get("logs", [])
    lines = (logs[0].get("stdout") or "").split() if logs else []
    tap.eq(lines[:1], [str(128 << 20)], "ram_gb 0.125: a 128 MiB memory limit in the container")
    tap.ok(len(lines) == 3 and int(lines[1]) == int(lines[2]),
           "cpu_cores 1: a quota of one period (one CPU)", lines)


def t_cancel(tap, d, host, http_port):
    """A cancel stops the running executor (its container goes), runs no
    other, and copies no output."""
    tid = create(d, {"outputs": [{"path": "/o/x", "url": host.p("out/cancel/x")}],
                     "executors": [ex("echo started > /o/x; sleep 300"), ex("echo never")]})
    name = "ocps-%s-0" % tid
    running = ocps.until(lambda: (container(name) or {}).get("State", {}).get("Running"), 60, 0.1)
    tap.ok(running, "executor 0's container runs")
    tap.eq(get(d, tid), {"id": tid, "state": "RUNNING"}, "MINIMAL: RUNNING")
    r = d.request("POST", TES + "/tasks/%s:cancel" % tid)
    tap.eq((r.status, r.json() if r.status == 200 else None), (200, {}), ":cancel: 200 {}")
    tap.eq(wait(d, tid), "CANCELED", "the task ends CANCELED")
    tap.ok(ocps.until(lambda: container(name) is None, 30), "the running executor's container is gone")
    tap.ok(container("ocps-%s-1" % tid) is None, "the next executor never ran")
    tap.ok(not os.path.exists(host.p("out/cancel/x")), "no output is copied after a cancel")


def t_restart(tap, d, host, http_port):
    """A daemon killed (-9) while executor 0 of 3 runs does not lose the
    task: the next daemon follows that executor's container (never
    starting it again), or reads its exit when it ended while no daemon
    was there, then runs the other two and copies the outputs; the task
    ends COMPLETE with all three executor logs. Executor 0 appends to a
    counter file and waits for a file the test makes: no sleeps."""
    def task(name):
        return {"name": name,
                "inputs": [{"path": "/data/in.txt", "content": "in\n"}],
                "outputs": [{"path": "/data/result.txt",
                             "url": host.p("out/restart-%s/result.txt" % name)}],
                "executors": [
                    ex("echo run >> /data/count; echo before; "
                       "while [ ! -e /data/go ]; do sleep 0.1; done; echo after"),
                    ex("cat /data/in.txt /data/count > /data/result.txt; echo second"),
                    ex("echo third")]}

    def mapped(tid, rel):
        return os.path.join(d.data_dir, "tasks", tid, "tes", "root", rel)

    def syslog(tid):
        return read(os.path.join(d.data_dir, "tasks", tid, "system.log")) or ""

    live, ended = create(d, task("live")), create(d, task("ended"))
    if not tap.ok(live and ended, "two TES tasks of three executors are created"):
        return
    for tid in (live, ended):
        tap.ok(ocps.until(lambda: read(mapped(tid, "data/count")) and
                          (container("ocps-%s-0" % tid) or {}).get("State", {}).get("Running"),
                          60, 0.1), "executor 0 runs (its counter written)")
    d.kill9()
    tap.ok((container("ocps-%s-0" % live) or {}).get("State", {}).get("Running"),
           "the daemon is killed; executor 0's container runs on")
    # One ends while no daemon is there.
    open(mapped(ended, "data/go"), "w").close()
    engine("POST", "/containers/ocps-%s-0/wait" % ended)
    d.start()
    tap.ok(ocps.until(lambda: "followed" in syslog(live), 60, 0.1),
           "the next daemon follows the running executor's container", syslog(live))
    tap.eq(get(d, live), {"id": live, "state": "RUNNING"}, "MINIMAL: still RUNNING")
    open(mapped(live, "data/go"), "w").close()
    for tid in (live, ended):
        name = "live" if tid == live else "ended"
        tap.eq(wait(d, tid), "COMPLETE", "%s: the task ends COMPLETE" % name)
        tl = task_log(get(d, tid, "FULL"))
        logs = tl.get("logs", [])
        tap.eq([(l.get("exit_code"), l.get("stdout")) for l in logs],
               [(0, "before\nafter\n"), (0, "second\n"), (0, "third\n")],
               "%s: three executor logs, executor 0's output once, whole" % name)
        tap.eq(read(mapped(tid, "data/count")), "run\n",
               "%s: executor 0 ran exactly once (its counter has one line)" % name)
        tap.eq(read(host.p("out/restart-%s/result.txt" % name)), "in\nrun\n",
               "%s: the later executors ran on the same mapping; the output is copied" % name)
        tap.eq([o.get("path") for o in tl.get("outputs", [])], ["/data/result.txt"],
               "%s: the task log lists the output" % name)
        tap.ok(any("restarted" in m for m in tl.get("system_logs", [])),
               "%s: a system log says the daemon restarted" % name, tl.get("system_logs"))
        tap.eq(d.output(tid), "before\nafter\nsecond\nthird\n",
               "%s: the logs endpoint has each executor's output once, in order" % name)
        tap.ok(ocps.until(lambda: all(container("ocps-%s-%d" % (tid, n)) is None
                                      for n in range(3)), 30),
               "%s: its containers are removed" % name)

    # One whose runner's record cannot be read cannot be resumed: it
    # ends SYSTEM_ERROR, and its running container goes.
    damaged = create(d, task("damaged"))
    tap.ok(ocps.until(lambda: read(mapped(damaged, "data/count")) and
                      (container("ocps-%s-0" % damaged) or {}).get("State", {}).get("Running"),
                      60, 0.1), "damaged: executor 0 runs")

    # Killed after the store had a TES task's end but before the last
    # executor's container went: the next daemon removes ocps-<id>-<n>
    # once it sees the outcome file, as it does a JobProxy task's.
    d.kill9()
    with open(os.path.join(d.data_dir, "tasks", damaged, "tes-run.json"), "w") as f:
        f.write("{")
    import uuid
    ended = str(uuid.uuid4())
    body = json.dumps({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"},
                       "Labels": {"org.ocps-proxy.instance": "tes-run-%d" % os.getpid(),
                                  "org.ocps-proxy.task": ended}})
    c = UnixHTTP("localhost", timeout=30)
    c.request("POST", "/v1.41/containers/create?name=ocps-%s-1" % ended, body,
              {"Content-Type": "application/json"})
    created = c.getresponse().status
    c.close()
    engine("POST", "/containers/ocps-%s-1/start" % ended)
    engine("POST", "/containers/ocps-%s-1/wait" % ended)
    os.makedirs(os.path.join(d.data_dir, "tasks", ended))
    with open(os.path.join(d.data_dir, "tasks", ended, "exit.json"), "w") as f:
        json.dump({"state": "COMPLETE", "exit_code": 0, "signal": 0,
                   "reason": "exited with status 0", "started": 1, "finished": 2}, f)
    tap.ok(created == 201 and container("ocps-%s-1" % ended), "a stopped executor container, "
           "its task's end recorded, no task following it")
    d.start()
    tap.eq(wait(d, damaged), "SYSTEM_ERROR",
           "damaged: a task that cannot be resumed ends SYSTEM_ERROR")
    msgs = task_log(get(d, damaged, "FULL")).get("system_logs", [])
    tap.ok(any("cannot resume" in m and "tes-run.json" in m for m in msgs),
           "damaged: a system log says why", msgs)
    tap.ok(ocps.until(lambda: container("ocps-%s-0" % damaged) is None, 30),
           "damaged: its running container is removed, not left unfollowed")
    tap.eq(read(mapped(damaged, "data/count")), "run\n", "damaged: executor 0 was not run again")
    wait(d, create(d, {"executors": [ex("true")]}))
    tap.ok(ocps.until(lambda: container("ocps-%s-1" % ended) is None, 20),
           "the next daemon removes it")


def t_restart_staging(tap, d, host, http_port):
    """A daemon killed (-9) while a TES task stages its inputs: nothing of
    it ran, so the next daemon stages them again from scratch (the http
    input is fetched a second time) and the task runs to COMPLETE."""
    hits, release = [], threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if len(hits) == 1:
                release.wait(60)  # the daemon that asked is killed meanwhile
            try:
                self.send_response(200)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"slow\n")
            except OSError:
                pass

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        tid = create(d, {"inputs": [{"path": "/data/x", "url": "http://127.0.0.1:%d/x" %
                                     srv.server_address[1]}],
                         "executors": [ex("cat /data/x")]})
        tap.ok(tid and ocps.until(lambda: len(hits) == 1, 60, 0.05),
               "the task fetches its http input (held by the server)")
        tap.eq(get(d, tid), {"id": tid, "state": "INITIALIZING"}, "MINIMAL: INITIALIZING")
        d.kill9()
        release.set()
        d.start()
        tap.eq(wait(d, tid), "COMPLETE", "after the restart the task runs to COMPLETE")
        tap.eq(len(hits), 2, "its input was fetched again: staging started over")
        logs = task_log(get(d, tid, "FULL")).get("logs", [])
        tap.eq([(l.get("exit_code"), l.get("stdout")) for l in logs], [(0, "slow\n")],
               "one executor log: the executor ran once, on the input")
    finally:
        release.set()
        srv.shutdown()


def t_jobproxy_view(tap, d, host, http_port):
    """A TES task in the JobProxy API: its State as far as it can say."""
    tid = create(d, {"name": "jp-view", "tags": {"k": "v"},
                     "executors": [ex("echo one"), ex("echo two; exit 2")]})
    tap.eq(wait(d, tid), "EXECUTOR_ERROR", "a TES task that fails")
    st = d.state(tid)
    tap.ok(st and st["code"] == "EXECUTOR_ERROR" and st["exit_code"] == 2 and
           set(st) >= {"id", "code", "description"},
           "its JobProxy State: the same state, the failing executor's exit code", st)
    tap.eq(d.output(tid), "one\ntwo\n", "its JobProxy logs: the executors' output")

    # A JobProxy container task whose command cannot be executed, or
    # whose image is not there, still has an executor log with an exit
    # code in TES, as a TES task's executor has (127).
    for what, c in (("a command that cannot be executed", ["/nonexistent"]),
                    ("an image that is not there", None)):
        cont = {"image": IMAGE, "cmd": c} if c else {"image": "ocps-test/none:1", "cmd": ["true"]}
        r = d.submit({"name": "jp-noexec", "user": USER, "container": cont})
        jid = r.json()["id"] if r.status == 200 else None
        tap.eq(wait(d, jid) if jid else None, "EXECUTOR_ERROR", "JobProxy: %s fails" % what)
        tl = task_log(get(d, jid, "FULL")) if jid else {}
        tap.eq([l.get("exit_code") for l in tl.get("logs", [])], [127],
               "TES view: %s has an executor log, exit code 127" % what)


def t_workflow_manager(tap, d, host, http_port):
    """What a TES client (py-tes under Snakemake, Nextflow's TES executor)
    does: create, poll MINIMAL until final, fetch FULL, cancel another."""
    task = {"name": "wf-rule-1", "tags": {"workflow": "wf-%d" % os.getpid()},
            "inputs": [{"path": "/in/x.txt", "content": "x\n"}],
            "outputs": [{"path": "/out/y.txt", "url": host.p("out/wf/y.txt"), "type": "FILE"}],
            "executors": [ex("tr x y < /in/x.txt > /out/y.txt")]}
    r = d.request("POST", TES + "/tasks", json.dumps(task), {"Content-Type": "application/json"})
    tap.ok(r.status == 200 and set(r.json()) == {"id"}, "create: 200 {\"id\"}", r)
    tid = r.json()["id"]
    seen = set()

    def poll():
        m = get(d, tid)
        if m:
            seen.add(m["state"])
            if set(m) != {"id", "state"}:
                seen.add("EXTRA:" + ",".join(sorted(m)))
        return m and m["state"] in FINAL
    ocps.until(poll, 120, 0.05)
    tap.ok("COMPLETE" in seen and not any(s.startswith("EXTRA") for s in seen) and
           seen <= {"QUEUED", "INITIALIZING", "RUNNING", "COMPLETE"},
           "MINIMAL polls see only id and state, through to COMPLETE", seen)
    full = get(d, tid, "FULL")
    tl = task_log(full)
    tap.ok(full and full["state"] == "COMPLETE" and full.get("executors") and
           tl.get("logs") and tl["logs"][0].get("exit_code") == 0 and
           tl.get("outputs") == [{"url": host.p("out/wf/y.txt"), "path": "/out/y.txt",
                                  "size_bytes": "2"}] and
           full.get("creation_time") and tl.get("start_time") and tl.get("end_time"),
           "FULL: the executor log, the output, the times", full)
    tap.eq(read(host.p("out/wf/y.txt")), "y\n", "the output file is there for the next rule")
    r = d.request("GET", TES + "/tasks?view=MINIMAL&tag_key=workflow&tag_value=wf-%d" % os.getpid())
    tap.ok(r.status == 200 and [t["id"] for t in r.json()["tasks"]] == [tid],
           "listed by the workflow's tag", r)
    tid2 = create(d, {"name": "wf-rule-2", "executors": [ex("sleep 300")]})
    ocps.until(lambda: get(d, tid2)["state"] == "RUNNING", 60, 0.1)
    r = d.request("POST", TES + "/tasks/%s:cancel" % tid2)
    tap.eq((r.status, r.json() if r.status == 200 else None), (200, {}),
           "cancel (the workflow was interrupted): 200 {}")
    tap.eq(wait(d, tid2), "CANCELED", "polled to CANCELED")


def http_server(root):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def bound(t, host, port):
    """t with the host side and the http port, as ocps.each calls it."""
    def run(tap, d):
        t(tap, d, host, port)
    run.__name__ = t.__name__
    return run


def tes_run(tap):
    if not dockerd_has_image():
        tap.skip("TES tasks in containers",
                 "no dockerd with %s at %s (test/docker/setup.sh)" % (IMAGE, SOCK))
        return
    ocps.require_root()
    pw = ocps.ensure_user(USER)
    host = Host(pw)
    srv = http_server(host.p("in"))  # public files only
    config = CONFIG + ("  ci: {tes_user: %s, images: [\"%s\"], mounts: {ro: [%s], rw: [%s]}}\n"
                       % (USER, IMAGE, host.p("in"), host.p("out/ci")))
    os.makedirs(host.p("out/ci"))
    os.chown(host.p("out/ci"), pw.pw_uid, pw.pw_gid)
    try:
        with ocps.serving(tap, ocps.Daemon(config=config), "the TES daemon") as d:
            d.pw = pw
            tests = [t_executors_files, t_failure, t_inputs_refused, t_policy, t_resources, t_cancel,
                     t_restart, t_restart_staging, t_jobproxy_view, t_workflow_manager]
            ocps.each(tap, d, [bound(t, host, srv.server_address[1]) for t in tests])
    finally:
        srv.shutdown()
        shutil.rmtree(host.dir, ignore_errors=True)


if __name__ == "__main__":
    ocps.main(tes_run)
