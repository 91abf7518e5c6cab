#!/usr/bin/env python3
"""The Docker backend against the real dockerd (test/docker/setup.sh starts
one with no bridge and imports the busybox test image; a registry on
127.0.0.1:5000 holds a copy for pulls). Each mapping is checked twice: in
the container the proxy created (inspected over the Engine API) and by
what the task does. Containers run with network none; the test removes
only containers labelled with its own daemon's instance."""

import http.client
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import ocps
from ocps import Daemon

SOCK = "/var/run/docker.sock"
IMAGE = "ocps-test/busybox:1"
REG_IMAGE = "127.0.0.1:5000/ocps-test/busybox:1"
USER = "ocpstest"
STATE_DIR = os.environ.get("OCPS_DOCKER_STATE", "/tmp/ocps-docker")
CONFIG = "docker: {network: none, pull: never, instance: %s}\nkill_grace: 3\n"


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def engine(method, path, body=None):
    c = UnixHTTP(SOCK)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, "/v1.41" + path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data.decode("utf-8", "replace")
    finally:
        c.close()


def dockerd_up():
    try:
        c = UnixHTTP(SOCK)
        c.request("GET", "/_ping")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def container(tid):
    st, info = engine("GET", "/containers/ocps-%s/json" % tid)
    return info if st == 200 else None


def wait_for(pred, timeout=30, step=0.1):
    return ocps.until(pred, timeout, step) or None


def t_basic(tap, d):
    tid = d.submit_id({"user": USER, "container": {
        "image": IMAGE, "cmd": "echo hello; echo oops >&2; exit 3"}})
    st = d.wait(tid)
    tap.eq((st["code"], st["exit_code"], st["reason"]),
           ("EXECUTOR_ERROR", 3, "exited with status 3"), "a container exiting 3 is EXECUTOR_ERROR")
    tap.eq(st["backend"], "docker", "state names the docker backend")
    tap.eq(d.output(tid), "hello\n", "stdout is demultiplexed into the task's stdout")
    tap.eq(d.output(tid, "stderr"), "oops\n", "stderr is demultiplexed into the task's stderr")
    # Removed just after the end is on disk in the store (the container is
    # the other record of it until then).
    tap.ok(wait_for(lambda: container(tid) is None, 10),
           "the container is removed once its end is recorded")
    log = d.output(tid, "system") or ""
    tap.ok("created" in log and "EXECUTOR_ERROR: exited with status 3" in log,
           "the system log has the container's life", log)

    tid = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": ["sh", "-c", "exit 0"]}})
    st = d.wait(tid)
    tap.eq((st["code"], st["exit_code"]), ("COMPLETE", 0), "an array cmd runs directly; exit 0 is COMPLETE")

    tid = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "sleep 60"}})
    r = d.request("DELETE", "/v1/jobproxy/delete/" + tid)
    st = d.wait(tid, timeout=30)
    tap.ok(r.status == 204 and st["code"] == "CANCELED" and
           wait_for(lambda: container(tid) is None, 10),
           "a container task deleted at once ends CANCELED, its container gone", st)

    tid = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": ["/no/such/program"]}})
    st = d.wait(tid)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and "start failed" in st["reason"] and
           "no such file" in st["reason"].lower(),
           "a missing executable is EXECUTOR_ERROR with Docker's message", st)
    tap.ok(wait_for(lambda: container(tid) is None, 10),
           "the container that could not start is removed too")


def t_mapping(tap, d):
    tmp = tempfile.mkdtemp(prefix="ocps-dk-")
    acct = pwd.getpwnam(USER)
    ro = os.path.join(tmp, "ro")
    rw = os.path.join(tmp, "rw")
    os.makedirs(ro)
    os.makedirs(rw)
    with open(os.path.join(ro, "in.txt"), "w") as f:
        f.write("input\n")
    os.chown(rw, acct.pw_uid, acct.pw_gid)
    os.chmod(tmp, 0o755)
    try:
        task = {"user": USER, "cores": 0.5, "memory": "64M", "cputime": "30s", "walltime": "2m",
                "env": {"GREETING": "hi there"}, "workdir": "/tmp",
                "container": {"image": IMAGE,
                              "cmd": "cat /in/in.txt; echo $GREETING; pwd; id -u; id -g; "
                                     "echo made > /out/made.txt; "
                                     "if echo x > /in/new 2>/dev/null; then echo RO-WRITABLE; "
                                     "else echo ro-refused; fi; sleep 30",
                              "ports": [{"host": 18555, "container": 80}],
                              "mounts": [{"host": ro, "container": "/in", "mode": "RO"},
                                         {"host": rw, "container": "/out", "mode": "RW"}]}}
        tid = d.submit_id(task)
        tap.ok(d.wait(tid, ("RUNNING",), 30), "the long container reaches RUNNING")
        info = wait_for(lambda: container(tid))
        if not tap.ok(info is not None, "the proxy's container is there, named ocps-<id>"):
            return
        hc, cfg = info["HostConfig"], info["Config"]
        tap.eq(hc["NanoCpus"], 500000000, "cores 0.5 -> NanoCpus")
        tap.eq((hc["Memory"], hc["MemorySwap"]), (64 << 20, 64 << 20), "memory -> Memory = MemorySwap (no swap)")
        tap.ok(hc.get("PidsLimit") and hc["PidsLimit"] > 0, "a pids limit is set", hc.get("PidsLimit"))
        tap.eq(hc.get("Ulimits"), [{"Name": "cpu", "Soft": 30, "Hard": 31}], "cputime -> cpu ulimit, soft below hard")
        tap.eq(hc.get("CapDrop"), ["ALL"], "every capability dropped")
        tap.eq(hc.get("SecurityOpt"), ["no-new-privileges"], "no-new-privileges")
        tap.eq(hc.get("PortBindings"), {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18555"}]},
               "ports -> bindings on the configured host address")
        mounts = sorted((m["Source"], m["Target"], m.get("ReadOnly", False)) for m in hc.get("Mounts") or [])
        tap.eq(mounts, [(ro, "/in", True), (rw, "/out", False)], "mounts -> bind mounts RO/RW")
        tap.eq(cfg["User"], "%d:%d" % (acct.pw_uid, acct.pw_gid), "user -> the account's uid:gid")
        tap.ok("GREETING=hi there" in cfg["Env"] and ("OCPS_TASK_ID=" + tid) in cfg["Env"],
               "env and OCPS_TASK_ID", cfg["Env"])
        tap.eq(cfg["WorkingDir"], "/tmp", "workdir -> WorkingDir")
        tap.eq(cfg["Labels"].get("org.ocps-proxy.task"), tid, "labelled with the task id")
        tap.ok(cfg["Labels"].get("org.ocps-proxy.instance"), "labelled with the proxy instance")
        tap.eq(hc.get("NetworkMode"), "none", "network none (the test config)")

        out = wait_for(lambda: (lambda s: s if s and "refused" in s or s and "WRITABLE" in s else None)(d.output(tid)), 20)
        lines = (out or "").splitlines()
        tap.eq(lines[:6], ["input", "hi there", "/tmp", str(acct.pw_uid), str(acct.pw_gid), "ro-refused"],
               "the task reads RO input, sees env/workdir/uid/gid, and cannot write the RO mount")
        made = os.path.join(rw, "made.txt")
        tap.ok(os.path.exists(made) and os.stat(made).st_uid == acct.pw_uid,
               "a file written to the RW mount belongs to the task's user")
        r = d.request("DELETE", "/v1/jobproxy/delete/" + tid)
        tap.eq(r.status, 204, "delete of a running container task")
        st = d.wait(tid, timeout=30)
        tap.eq((st["code"], st["reason"]), ("CANCELED", "cancelled by request"), "it ends CANCELED")
        log = d.output(tid, "system") or ""
        tap.ok("cancelled: stopping" in log and "event: kill" in log,
               "its system log has the stop, and dockerd's kill event from the event stream", log)
        tap.ok(wait_for(lambda: container(tid) is None, 10), "its container is removed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def t_limits(tap, d):
    tid = d.submit_id({"user": USER, "memory": "64M", "container": {
        "image": IMAGE, "cmd": "head -c 400000000 /dev/zero | tail -n 1 >/dev/null"}})
    st = d.wait(tid, timeout=60)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and st["reason"] == "killed: memory limit 64 MiB exceeded (OOM)",
           "a container past its memory limit is reported as an OOM kill", st)

    tid = d.submit_id({"user": USER, "cputime": "2s", "container": {
        "image": IMAGE, "cmd": "while :; do :; done"}})
    st = d.wait(tid, timeout=60)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and st["reason"] == "killed: cputime limit 2 s exceeded",
           "a spinner with cputime 2s is killed for cputime", st)

    t0 = time.monotonic()
    tid = d.submit_id({"user": USER, "walltime": "3s", "container": {"image": IMAGE, "cmd": "sleep 60"}})
    st = d.wait(tid, timeout=60)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and st["reason"] == "killed: walltime limit 3 s exceeded",
           "a container over its walltime is stopped and says so", st)
    tap.ok(time.monotonic() - t0 < 30, "walltime stop within the grace period")

    tid = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "sleep 60"}})
    tap.ok(d.wait(tid, ("RUNNING",), 30), "a container runs")
    engine("POST", "/containers/ocps-%s/kill?signal=KILL" % tid)
    st = d.wait(tid, timeout=30)
    tap.ok(st["code"] == "SYSTEM_ERROR" and "stopped from outside the proxy by signal 9" in st["reason"],
           "a container killed behind the proxy's back is a SYSTEM_ERROR saying so", st)


def t_refusals(tap, d):
    def check(task, status, want):
        r = d.submit(task)
        tap.ok(r.status == status and want in r.text, "%d: %s" % (status, want), r)

    check({"user": USER, "container": {"image": "UPPER/case"}}, 400, "container.image")
    check({"user": USER, "container": {"image": IMAGE, "mounts": [
        {"host": "/no/such/dir", "container": "/x", "mode": "RO"}]}}, 400, "container.mounts[0].host")
    # A world-readable directory behind one only its owner may enter: a bind
    # mount must not reach past the closed parent (made here, not /root).
    closed = tempfile.mkdtemp(prefix="ocps-closed-")
    inner = os.path.join(closed, "secret")
    os.makedirs(inner)
    os.chmod(inner, 0o755)
    os.chmod(closed, 0o700)
    check({"user": USER, "container": {"image": IMAGE, "mounts": [
        {"host": inner, "container": "/x", "mode": "RO"}]}}, 403, "may not read " + inner)
    shutil.rmtree(closed)
    check({"user": "root", "container": {"image": IMAGE}}, 403, "root")

    tid = d.submit_id({"user": USER, "container": {"image": "ocps-test/absent:1"}})
    st = d.wait(tid)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and "pull policy is never" in st["reason"],
           "a missing image with pull policy never fails the task, saying why", st)


def t_pull(tap, d):
    """A second daemon with pull if-not-present, against the loopback registry."""
    up = subprocess.run(["curl", "-sf", "http://127.0.0.1:5000/v2/"], capture_output=True).returncode == 0
    if not tap.ok(up, "the loopback registry of test/docker/setup.sh answers on 127.0.0.1:5000"):
        return
    # The tag must come from the registry, not from an earlier test.
    engine("DELETE", "/images/" + REG_IMAGE.replace("/", "%2F"))
    p = Daemon(config="docker: {network: none, pull: if-not-present, instance: %s-pull}\n" % d.instance)
    try:
        with ocps.serving(tap, p, "pull if-not-present"):
            tid = p.submit_id({"user": USER, "container": {"image": REG_IMAGE, "cmd": "echo pulled"}})
            st = p.wait(tid, timeout=120)
            tap.eq((st["code"], p.output(tid)), ("COMPLETE", "pulled\n"), "an image pulled from the registry runs")
            log = p.output(tid, "system") or ""
            tap.ok("pull: " + REG_IMAGE in log and "done" in log and "created" in log,
                   "the pull is in the task's system log (logs?stream=system)", log)
            tid = p.submit_id({"user": USER, "container": {"image": "127.0.0.1:5000/ocps-test/busybox:nope"}})
            st = p.wait(tid, timeout=120)
            tap.ok(st["code"] == "EXECUTOR_ERROR" and "pull 127.0.0.1:5000/ocps-test/busybox:nope" in st["reason"]
                   and "manifest unknown" in st["reason"], "a tag the registry lacks fails with its message", st)
    finally:
        engine("DELETE", "/images/" + REG_IMAGE.replace("/", "%2F"))


def registry_auth(user, password):
    """The X-Registry-Auth header value: base64url of the credentials JSON."""
    import base64
    return base64.urlsafe_b64encode(json.dumps(
        {"username": user, "password": password, "serveraddress": "127.0.0.1:5001"}).encode()).decode()


def t_registry_auth(tap, d):
    """Credentials from the config, per registry host, against a registry of
    our own on 127.0.0.1:5001 that wants a password."""
    binary = shutil.which("docker-registry")
    if not tap.ok(binary, "docker-registry is installed (test/docker/setup.sh)"):
        return
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))
    tmp = tempfile.mkdtemp(prefix="ocps-reg-")
    with open(os.path.join(tmp, "htpasswd"), "w") as f:
        f.write("ocps:%s\n" % hashed)
    with open(os.path.join(tmp, "config.yml"), "w") as f:
        f.write("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s/data}}\n"
                "http: {addr: 127.0.0.1:5001}\nauth: {htpasswd: {realm: ocps-test, path: %s/htpasswd}}\n"
                % (tmp, tmp))
    log = open(os.path.join(tmp, "registry.log"), "wb")
    reg = subprocess.Popen([binary, "serve", os.path.join(tmp, "config.yml")], stdout=log, stderr=log)
    image = "127.0.0.1:5001/ocps-test/busybox"
    try:
        up = wait_for(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                              "http://127.0.0.1:5001/v2/"], capture_output=True).stdout == b"401", 30)
        if not tap.ok(up, "a registry that wants a password answers on 127.0.0.1:5001"):
            return
        engine("POST", "/images/%s/tag?repo=%s&tag=auth" % (IMAGE.replace("/", "%2F"), image))
        c = UnixHTTP(SOCK)
        c.request("POST", "/v1.41/images/%s/push?tag=auth" % image, None,
                  {"X-Registry-Auth": registry_auth("ocps", "s3cret")})
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        tap.ok(r.status == 200 and '"error"' not in body, "the test image is pushed with credentials", body[-300:])
        engine("DELETE", "/images/%s:auth" % image.replace("/", "%2F"))

        with_creds = Daemon(config="docker: {network: none, pull: always, instance: %s-auth, "
                                   "registries: {\"127.0.0.1:5001\": {username: ocps, password: s3cret}}}\n"
                                   % d.instance)
        without = Daemon(config="docker: {network: none, pull: always, instance: %s-noauth}\n" % d.instance)
        with ocps.serving(tap, with_creds, "credentials for 127.0.0.1:5001"), \
                ocps.serving(tap, without, "no credentials"):
            tid = with_creds.submit_id({"user": USER, "container": {"image": image + ":auth", "cmd": "echo private"}})
            st = with_creds.wait(tid, timeout=120)
            tap.eq((st["code"], with_creds.output(tid)), ("COMPLETE", "private\n"),
                   "the config's credentials for 127.0.0.1:5001 pull the image")
            engine("DELETE", "/images/%s:auth" % image.replace("/", "%2F"))
            tid = without.submit_id({"user": USER, "container": {"image": image + ":auth"}})
            st = without.wait(tid, timeout=120)
            tap.ok(st["code"] == "EXECUTOR_ERROR" and "pull " + image in st["reason"] and
                   ("no basic auth credentials" in st["reason"] or "unauthorized" in st["reason"]),
                   "without credentials the pull fails with the registry's refusal", st)
    finally:
        engine("DELETE", "/images/%s:auth" % image.replace("/", "%2F"))
        reg.terminate()
        reg.wait(20)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def t_admission(tap, d):
    """Container tasks count against the same capacity as processes."""
    a = Daemon(config="capacity: {cores: 1}\ndocker: {network: none, pull: never, instance: %s-adm}\n"
                      % d.instance)
    with ocps.serving(tap, a, "one core"):
        c1 = a.submit_id({"user": USER, "cores": 1, "container": {"image": IMAGE, "cmd": "sleep 3"}})
        tap.ok(a.wait(c1, ("RUNNING",), 30), "a 1-core container runs on a 1-core host")
        c2 = a.submit_id({"user": USER, "cores": 1, "container": {"image": IMAGE, "cmd": "true"}})
        p1 = a.submit_id({"user": USER, "cores": 0.5, "cmd": "true"})
        time.sleep(1)
        tap.eq((a.state(c2)["code"], a.state(p1)["code"]), ("QUEUED", "QUEUED"),
               "another container and a process wait QUEUED while it holds the core")
        tap.ok("waiting" in a.state(c2)["description"], "the queued task says it waits", a.state(c2))
        st = [a.wait(t, timeout=60)["code"] for t in (c1, c2, p1)]
        tap.eq(st, ["COMPLETE"] * 3, "all three run, in turn")


def t_output(tap, d):
    """The output cap (1 MiB here) stops the logs at the cap and kills the
    container; the default files are the task's user's; a stdout FIFO
    nobody reads holds the task only until its walltime (from admission)."""
    instance = d.instance + "-out"
    a = Daemon(config=CONFIG % instance + "principals: {default: {max: {output: 1M}}}\n")
    pw = pwd.getpwnam(USER)
    fifo = "/tmp/ocps-docker-output-%d.fifo" % os.getpid()
    try:
        with ocps.serving(tap, a, "a 1 MiB output cap"):
            tid = a.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "yes"}})
            st = a.wait(tid, timeout=60)
            tap.ok(st["code"] == "EXECUTOR_ERROR" and st["reason"] == "killed: output limit 1 MiB exceeded",
                   "a container writing past its cap is EXECUTOR_ERROR, saying so", st)
            out = os.path.join(a.data_dir, "tasks", tid, "stdout")
            tap.eq(os.path.getsize(out), 1 << 20, "its stdout stops at the cap, to the byte")
            tap.ok(wait_for(lambda: container(tid) is None, 10), "its container is gone")
            s = os.stat(out)
            tap.ok((s.st_uid, s.st_gid) == (pw.pw_uid, pw.pw_gid),
                   "the default stdout belongs to the task's user (%d:%d)" % (s.st_uid, s.st_gid))

            tid = a.submit_id({"user": USER, "container": {
                "image": IMAGE, "cmd": "head -c 700000 /dev/zero; echo done >&2"}})
            st = a.wait(tid, timeout=60)
            tap.eq(st["code"], "COMPLETE", "a container writing under its cap completes")
            tap.eq(a.output(tid, "stderr"), "done\n", "with its output whole")

            os.mkfifo(fifo)
            os.chmod(fifo, 0o666)
            tid = a.submit_id({"user": USER, "walltime": "2s", "stdout": fifo,
                               "container": {"image": IMAGE, "cmd": "echo x"}})
            st = a.wait(tid, timeout=60)
            tap.ok(st["code"] == "EXECUTOR_ERROR" and st["reason"] == "killed: walltime limit 2 s exceeded",
                   "a container task whose stdout FIFO nobody reads ends by its walltime", st)
            tap.ok(container(tid) is None, "no container was made for it")
    finally:
        if os.path.exists(fifo):
            os.unlink(fifo)
        cleanup_containers(instance)


def t_restart(tap, d):
    """kill -9 of the proxy with containers running; one ends while it is away."""
    a = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "echo a-start; sleep 8; echo a-end"}})
    b = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "echo b; sleep 3; exit 4"}})
    tap.ok(d.wait(a, ("RUNNING",), 30) and d.wait(b, ("RUNNING",), 30), "two containers run")
    d.kill9()
    time.sleep(4)  # b ends meanwhile
    tap.ok(container(a) is not None and container(b) is not None, "containers outlive the proxy")
    d.start()
    st = d.wait(b, timeout=30)
    tap.eq((st["code"], st["exit_code"]), ("EXECUTOR_ERROR", 4), "a container that ended while the proxy was down: its real exit code")
    tap.eq(d.output(b), "b\n", "... and its output")
    st = d.wait(a, timeout=30)
    tap.eq((st["code"], st["exit_code"]), ("COMPLETE", 0), "a container still running is followed to its end")
    tap.eq(d.output(a), "a-start\na-end\n", "... with all of its output, once")
    tap.ok(wait_for(lambda: container(a) is None and container(b) is None, 10),
           "both containers removed afterwards")

    # A clean stop (SIGTERM) lets go of running containers the same way.
    c = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "sleep 4; echo c-end"}})
    tap.ok(d.wait(c, ("RUNNING",), 30), "a container runs")
    t0 = time.monotonic()
    rc = d.stop()
    tap.ok(rc == 0 and time.monotonic() - t0 < 10, "SIGTERM stops the proxy promptly with a container running (exit %r)" % rc, d.logs())
    info = container(c)
    tap.ok(info is not None and info["State"]["Running"], "the container keeps running without the proxy")
    d.start()
    st = d.wait(c, timeout=30)
    tap.eq((st["code"], d.output(c)), ("COMPLETE", "c-end\n"), "the next proxy follows it to its end")

    # A proxy killed after the store has a task's end but before it removed
    # the container leaves a stopped container of its own whose task
    # directory holds the outcome file: the next proxy removes it. A
    # stopped container of its own without that file is left alone.
    d.kill9()
    import uuid
    ended, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    for tid in (ended, unknown):
        st, _ = engine("POST", "/containers/create?name=ocps-" + tid, {
            "Image": IMAGE, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"},
            "Labels": {"org.ocps-proxy.instance": d.instance, "org.ocps-proxy.task": tid}})
        engine("POST", "/containers/ocps-%s/start" % tid)
        engine("POST", "/containers/ocps-%s/wait" % tid)
    os.makedirs(os.path.join(d.data_dir, "tasks", ended), exist_ok=True)
    with open(os.path.join(d.data_dir, "tasks", ended, "exit.json"), "w") as f:
        json.dump({"state": "COMPLETE", "exit_code": 0, "signal": 0, "reason": "exited with status 0",
                   "started": 1, "finished": 2}, f)
    tap.ok(container(ended) is not None and container(unknown) is not None,
           "two stopped containers of this instance, no task follows them")
    d.start()
    tid = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "true"}})
    d.wait(tid, timeout=30)
    tap.ok(wait_for(lambda: container(ended) is None, 10),
           "the next proxy removes the stopped container whose end was recorded")
    tap.ok(container(unknown) is not None, "... and leaves alone the one it knows nothing of")
    engine("DELETE", "/containers/ocps-%s?force=1" % unknown)


class SilentDockerd:
    """A dockerd of the test's own on a unix socket: it answers /_ping,
    the event stream and the container list, and takes a create without
    ever answering it (a dockerd stuck on a slow storage driver)."""

    def __init__(self, path):
        import threading
        self.path = path
        self.create_seen = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(c,), daemon=True).start()

    def connection(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, path = line.decode().split()[:2]
                length = 0
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    if h.lower().startswith("content-length:"):
                        length = int(h.split(":", 1)[1])
                f.read(length)
                if path == "/_ping":
                    c.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK")
                elif path.startswith("/v1.41/containers/json"):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 2\r\n\r\n[]")
                elif path.startswith("/v1.41/events"):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n")
                    f.read()  # until the proxy hangs up
                    return
                else:
                    if path.startswith("/v1.41/containers/create"):
                        self.create_seen.set()
                    f.read()  # never answers
                    return
        except (OSError, ValueError):
            return
        finally:
            c.close()

    def close(self):
        self.sock.close()


def t_shutdown_in_call(tap, d):
    """A SIGTERM while a runner waits on dockerd in a create call (or any
    short Engine call) stops the proxy: the call ends on the shutdown fd
    instead of curl's 300 s timeout (Daemon.stop SIGKILLs after 30 s)."""
    tmp = tempfile.mkdtemp(prefix="ocps-dk-silent-")
    fake = SilentDockerd(os.path.join(tmp, "docker.sock"))
    a = Daemon(config="docker: {socket: %s, network: none, pull: never, instance: %s-silent}\n"
                      % (fake.path, d.instance))
    try:
        with ocps.serving(tap, a, "a dockerd that never answers"):
            a.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "true"}})
            tap.ok(fake.create_seen.wait(30), "the runner's create call reaches a dockerd that never answers")
            rc = a.stop()
            tap.ok(rc == 0, "SIGTERM stops the proxy with a create call in flight (exit %r)" % rc, a.logs())
    finally:
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)


def t_dockerd_restart(tap, d):
    pidfile = os.path.join(STATE_DIR, "dockerd.pid")
    if not os.path.exists(pidfile):
        tap.skip("dockerd stops and comes back", "dockerd was not started by test/docker/setup.sh: "
                 "not ours to stop")
        return
    tid = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "sleep 60"}})
    tap.ok(d.wait(tid, ("RUNNING",), 30), "a container runs")
    with open(pidfile) as f:
        pid = int(f.read())
    os.kill(pid, 15)
    tap.ok(wait_for(lambda: not os.path.exists("/proc/%d" % pid), 60, 0.5), "dockerd stopped")
    r = d.submit({"user": USER, "container": {"image": IMAGE, "cmd": "true"}})
    tap.ok(r.status == 502 and "container backend is unavailable" in r.text,
           "a submit while dockerd is down is 502, not accepted and lost", r)
    tap.eq(d.request("GET", "/v1/jobproxy/ping").status, 200, "the proxy keeps serving")
    subprocess.run(["bash", os.path.join(os.path.dirname(__file__), "..", "docker", "setup.sh")],
                   check=True, capture_output=True)
    st = d.wait(tid, timeout=60)
    # dockerd stops its containers (SIGTERM) before it goes: the proxy sees
    # either the exit and then no dockerd, or only the lost connection.
    tap.ok(st and st["code"] == "SYSTEM_ERROR" and
           ("dockerd stopped while the task ran" in st["reason"] or
            "stopped from outside the proxy by signal 15" in st["reason"]),
           "the task ended by dockerd's stop is reported as such", st)
    tid = d.submit_id({"user": USER, "container": {"image": IMAGE, "cmd": "echo back"}})
    st = d.wait(tid, timeout=60)
    tap.eq((st["code"], d.output(tid)), ("COMPLETE", "back\n"), "container tasks run again after dockerd returns")


def cleanup_containers(instance):
    flt = json.dumps({"label": ["org.ocps-proxy.instance=" + instance]})
    st, lst = engine("GET", "/containers/json?all=1&filters=" + __import__("urllib.parse").parse.quote(flt))
    for c in lst or []:
        engine("DELETE", "/containers/%s?force=1&v=1" % c["Id"])


def t_docker(tap):
    ocps.require_root()
    # The docker suite runs against what test/docker/setup.sh starts: without
    # it these are failures, not skips.
    if not tap.ok(dockerd_up(), "dockerd answers at %s (test/docker/setup.sh)" % SOCK) or \
            not tap.eq(engine("GET", "/images/%s/json" % IMAGE.replace("/", "%2F"))[0], 200,
                       "the test image %s is there (test/docker/setup.sh)" % IMAGE):
        return
    ocps.ensure_user(USER)
    instance = "ocps-test-%d" % os.getpid()
    d = Daemon(config=CONFIG % instance)
    d.instance = instance
    try:
        with ocps.serving(tap, d, "the docker backend"):
            ocps.each(tap, d, [t_basic, t_mapping, t_limits, t_refusals, t_pull, t_registry_auth,
                               t_admission, t_output, t_restart, t_shutdown_in_call,
                               t_dockerd_restart])
    finally:
        if dockerd_up():
            cleanup_containers(instance)


if __name__ == "__main__":
    ocps.main(t_docker)
