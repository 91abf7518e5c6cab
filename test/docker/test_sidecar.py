#!/usr/bin/env python3
"""The sidecar image against the real dockerd (test/docker/setup.sh): built
by scripts/build-image.sh from this tree (a release build kept in meson's
build dir), run beside dockerd as the README says (read-only root, no new
privileges, four capabilities, network none, the host's root read-only at
/host), and driven through its unix socket in a directory shared with this
host: container tasks (their logs, delete, an RW mount owned by the task's
user), the refusals that are the sidecar's own, the container replaced
while a task runs, and the compose file. Only containers and images this
test creates are removed: by name, or by its own instance label."""

import http.client
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

import ocps

SOCK = "/var/run/docker.sock"
BUSYBOX = "ocps-test/busybox:1"
USER = "ocpstest"
SRC = os.environ.get("OCPS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("OCPS_BUILD_ROOT", "")
DOCKER = "/usr/bin/docker"  # the package's CLI speaks the package's dockerd
TAG = "ocps-proxy-test-%d" % os.getpid()
NAME = "ocps-sidecar-test-%d" % os.getpid()
# The data dir's path in the container names the instance (docker.c): one
# per run, the same for the container that replaces the first.
DATA_IN = "/srv/ocps-test-%d" % os.getpid()
CAPS = ["CHOWN", "DAC_OVERRIDE", "SETUID", "SETGID"]


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def call(path, method, url, body=None, ctype="application/json", raw=False):
    """(status, parsed JSON or text; raw: text) of one request on a unix socket."""
    c = UnixHTTP(path)
    try:
        headers = {"Content-Type": ctype} if body is not None else {}
        c.request(method, url, body, headers)
        r = c.getresponse()
        data = r.read().decode("utf-8", "replace")
        if raw:
            return r.status, data
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data
    finally:
        c.close()


def engine(method, path):
    return call(SOCK, method, "/v1.41" + path)


def docker(*args, check=False):
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check)


def wait_until(what, pred, timeout=60):
    """pred() until it is true (or raises nothing and returns a value);
    polled, as the sidecar's state can only be asked for."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = pred()
            if v:
                return v
        except OSError:
            pass
        if time.monotonic() > end:
            raise TimeoutError("%s: not within %d s" % (what, timeout))
        time.sleep(0.2)


class Sidecar:
    def __init__(self, image, tmp):
        self.image = image
        self.tmp = tmp
        self.data = os.path.join(tmp, "data")
        self.sockdir = os.path.join(tmp, "run")
        self.sock = os.path.join(self.sockdir, "ocps-proxy.sock")
        self.config = os.path.join(tmp, "config.yaml")
        os.makedirs(self.data, mode=0o700)
        os.makedirs(self.sockdir)
        with open(self.config, "w") as f:
            f.write("listen: [unix:/run/ocps-proxy/ocps-proxy.sock]\n"
                    "data_dir: %s\nhost_root: /host\nbackends: [docker]\n"
                    "docker: {network: none, pull: never}\nkill_grace: 3\n" % DATA_IN)

    def run(self):
        """The README's run line, with the test's own name, data dir and config."""
        caps = [a for c in CAPS for a in ("--cap-add", c)]
        r = docker("run", "-d", "--name", NAME, "--pull", "never", "--network", "none",
                   "--read-only", "--tmpfs", "/tmp", "--security-opt", "no-new-privileges",
                   "--cap-drop", "ALL", *caps, "--health-interval", "1s",
                   "-v", "%s:%s" % (SOCK, SOCK),
                   "-v", "%s:%s" % (self.data, DATA_IN),
                   "-v", "%s:/run/ocps-proxy" % self.sockdir,
                   "--mount", "type=bind,source=/,target=/host,readonly,bind-nonrecursive=true",
                   "-v", "%s:/etc/ocps-proxy/config.yaml:ro" % self.config,
                   self.image)
        if r.returncode != 0:
            raise RuntimeError("docker run: " + r.stderr)
        wait_until("the sidecar answers on its socket",
                   lambda: call(self.sock, "GET", "/v1/jobproxy/ping")[0] == 200)

    def remove(self):
        docker("rm", "-f", NAME)

    def logs(self):
        r = docker("logs", NAME)
        return r.stdout + r.stderr

    def req(self, method, url, body=None, ctype="application/json", raw=False):
        return call(self.sock, method, url, body, ctype, raw)

    def submit(self, task):
        return self.req("POST", "/v1/jobproxy/submit", json.dumps(task))

    def state(self, tid):
        return self.req("GET", "/v1/jobproxy/state/%s" % tid)[1]

    def wait(self, tid, codes=("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"),
             timeout=60):
        return wait_until("task %s ends" % tid,
                          lambda: (lambda s: s if s.get("code") in codes else None)(self.state(tid)),
                          timeout)


def build(tap):
    env = dict(os.environ, OCPS_IMAGE=TAG, DOCKER=DOCKER,
               OCPS_IMAGE_BUILD_DIR=os.path.join(BUILD or tempfile.gettempdir(), "sidecar-image"))
    r = subprocess.run(["bash", os.path.join(SRC, "scripts", "build-image.sh")], env=env,
                       capture_output=True, text=True)
    if not tap.ok(r.returncode == 0, "scripts/build-image.sh builds the image", r.stdout + r.stderr):
        return None
    version = subprocess.run(["meson", "introspect", "--projectinfo",
                              env["OCPS_IMAGE_BUILD_DIR"]], capture_output=True, text=True)
    version = json.loads(version.stdout)["version"]
    st, a = engine("GET", "/images/%s:%s/json" % (TAG, version))
    st2, b = engine("GET", "/images/%s:latest/json" % TAG)
    tap.ok(st == 200 and st2 == 200 and a["Id"] == b["Id"],
           "tagged %s:%s and :latest, the same image" % (TAG, version))
    cfg = a.get("Config") or {}
    tap.eq(len(a.get("RootFS", {}).get("Layers", [])), 1,
           "one layer, the staged root filesystem, from scratch: nothing pulled")
    tap.eq((cfg.get("Healthcheck") or {}).get("Test", [])[1:],
           ["/usr/bin/ocps-proxy", "--server", "unix:/run/ocps-proxy/ocps-proxy.sock", "ping"],
           "its HEALTHCHECK pings the daemon on its unix socket")
    tap.diag("image size: %d bytes (%.1f MiB)" % (a["Size"], a["Size"] / 1048576))
    return "%s:%s" % (TAG, version)


def t_tasks(tap, s, rw):
    u = pwd.getpwnam(USER)
    st, r = s.submit({"user": USER, "container": {
        "image": BUSYBOX, "cmd": "sh -c 'id -u; echo written > /out/file'",
        "mounts": [{"host": rw, "container": "/out", "mode": "RW"}]}})
    if not tap.eq(st, 200, "a container task with an RW mount is accepted (%s)" % r):
        return
    tid = r["id"]
    end = s.wait(tid)
    tap.eq((end["code"], end.get("exit_code")), ("COMPLETE", 0), "it completes")
    f = os.path.join(rw, "file")
    tap.ok(os.path.exists(f) and os.stat(f).st_uid == u.pw_uid and open(f).read() == "written\n",
           "it wrote into the host directory as %s (uid %d)" % (USER, u.pw_uid))
    st, out = s.req("GET", "/v1/jobproxy/logs/%s?stream=stdout" % tid, raw=True)
    tap.eq((st, out), (200, "%d\n" % u.pw_uid),
           "its logs: it ran as the host's account, by its uid")
    st, _ = s.req("DELETE", "/v1/jobproxy/delete/%s" % tid)
    tap.ok(st in (200, 204), "delete answers %d" % st)
    tap.eq(s.req("GET", "/v1/jobproxy/state/%s" % tid)[0], 404, "the deleted task is gone")
    flt = json.dumps({"label": ["org.ocps-proxy.task=" + tid]})
    tap.eq(engine("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(flt))[1], [],
           "and so is its container")

    # XML goes through libxml2, which the daemon dlopen()s: it is in the image.
    st, r = s.req("POST", "/v1/jobproxy/submit",
                  "<task><user>%s</user><container><image>%s</image><cmd>echo xml</cmd>"
                  "</container></task>" % (USER, BUSYBOX), "application/xml")
    if tap.eq(st, 200, "an XML task is parsed in the image (%s)" % r):
        tap.eq(s.wait(r["id"])["code"], "COMPLETE", "and runs")


def t_refusals(tap, s, rw):
    st, r = s.submit({"user": USER, "cmd": "echo hi"})
    tap.ok(st == 501 and "no process backend" in r.get("message", "") and
           s.state(r["id"])["code"] == "SYSTEM_ERROR",
           "a command task: 501, stored as SYSTEM_ERROR, saying why (%s)" % r)
    st, r = s.submit({"user": USER, "stdout": rw + "/out",
                      "container": {"image": BUSYBOX, "cmd": "true"}})
    tap.ok(st == 400 and "writes no file of the host's" in r.get("message", ""),
           "a task's own stdout path: 400 (%s)" % r)
    link = os.path.join(rw, "etc")
    os.symlink("/etc", link)
    st, r = s.submit({"user": USER, "container": {
        "image": BUSYBOX, "mounts": [{"host": link, "container": "/x", "mode": "RO"}]}})
    tap.ok(st == 403 and "(that is, /etc) is /etc, which is never mounted" in r.get("message", ""),
           "a symlink to the host's /etc is resolved on the host and refused (%s)" % r)
    os.unlink(link)
    closed = tempfile.mkdtemp(prefix="ocps-sidecar-closed-")
    try:
        st, r = s.submit({"user": USER, "container": {
            "image": BUSYBOX, "mounts": [{"host": closed, "container": "/x", "mode": "RW"}]}})
        tap.ok(st == 403 and "user %s may not read and write" % USER in r.get("message", ""),
               "a directory of root's, RW: refused as the task's user (%s)" % r)
    finally:
        os.rmdir(closed)
    st, r = s.submit({"user": "root", "container": {"image": BUSYBOX}})
    tap.ok(st == 403 and "uid 0" in r.get("message", ""), "root, from the host's passwd: 403")


def t_health(tap, s, rw):
    st = wait_until("the healthcheck passes", lambda: (
        lambda i: i["State"].get("Health", {}).get("Status") == "healthy" and i)(
            engine("GET", "/containers/%s/json" % NAME)[1]), timeout=30)
    tap.ok(st, "docker reports the container healthy (its HEALTHCHECK)")


def t_replace(tap, s, rw):
    """The container replaced (an upgrade) while a task runs: the new one
    follows the task to its end, which it reports; nothing runs twice."""
    go = os.path.join(rw, "go")
    st, r = s.submit({"user": USER, "container": {
        "image": BUSYBOX,
        "cmd": "sh -c 'echo started >> /out/runs; while [ ! -e /out/go ]; do sleep 0.1; done; "
               "echo finished; exit 3'",
        "mounts": [{"host": rw, "container": "/out", "mode": "RW"}]}})
    if not tap.eq(st, 200, "a long task is accepted (%s)" % r):
        return
    tid = r["id"]
    wait_until("it runs", lambda: os.path.exists(os.path.join(rw, "runs")))
    tap.eq(s.state(tid)["code"], "RUNNING", "it runs")
    r = docker("stop", "-t", "30", NAME)
    tap.ok(r.returncode == 0, "the sidecar stops", r.stderr)
    s.remove()
    info = engine("GET", "/containers/ocps-%s/json" % tid)[1]
    tap.eq(info["State"]["Status"], "running", "its container runs on without the sidecar")
    tap.eq(info["Config"]["Labels"].get("org.ocps-proxy.instance"), instance_of(DATA_IN),
           "labelled with the instance its data dir's path names, which the next one derives too")
    s.run()
    tap.eq(s.state(tid)["code"], "RUNNING", "a new sidecar on the same data dir has it RUNNING")
    open(go, "w").close()
    end = s.wait(tid)
    tap.eq((end["code"], end.get("exit_code")), ("EXECUTOR_ERROR", 3),
           "the new sidecar reports its end, exit status 3")
    st, out = s.req("GET", "/v1/jobproxy/logs/%s?stream=stdout" % tid, raw=True)
    tap.eq((st, out), (200, "finished\n"), "and its output")
    tap.eq(open(os.path.join(rw, "runs")).read(), "started\n", "it ran once")


def t_compose(tap, image, tmp):
    compose = shutil.which("docker-compose")
    if not compose:
        tap.ok(False, "docker-compose is installed (Debian's docker-compose)")
        return
    d = os.path.join(tmp, "compose")
    os.makedirs(os.path.join(d, "data"), mode=0o700)
    os.makedirs(os.path.join(d, "run"))
    name = NAME + "-compose"
    env = dict(os.environ, OCPS_IMAGE=image, OCPS_CONTAINER=name,
               OCPS_DATA_DIR=os.path.join(d, "data"), OCPS_SOCKET_DIR=os.path.join(d, "run"))
    args = [compose, "-p", name, "-f", os.path.join(SRC, "sidecar", "docker-compose.yml")]
    try:
        r = subprocess.run(args + ["up", "-d"], env=env, capture_output=True, text=True)
        if not tap.ok(r.returncode == 0, "docker-compose up starts it", r.stdout + r.stderr):
            return
        sock = os.path.join(d, "run", "ocps-proxy.sock")
        wait_until("the compose sidecar answers",
                   lambda: call(sock, "GET", "/v1/jobproxy/ping")[0] == 200)
        st, r = call(sock, "POST", "/v1/jobproxy/submit", json.dumps(
            {"user": USER, "container": {"image": BUSYBOX, "cmd": "echo composed"}}))
        if tap.eq(st, 200, "a task through the compose sidecar (%s)" % r):
            end = wait_until("it ends", lambda: (lambda s: s if s["code"] in (
                "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR") else None)(
                    call(sock, "GET", "/v1/jobproxy/state/" + r["id"])[1]))
            tap.eq(end["code"], "COMPLETE", "it completes")
    finally:
        subprocess.run(args + ["down"], env=env, capture_output=True)
        docker("rm", "-f", name)


def cleanup_tasks(instance):
    if not instance:
        return
    flt = json.dumps({"label": ["org.ocps-proxy.instance=" + instance]})
    _, lst = engine("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(flt))
    for c in lst or []:
        engine("DELETE", "/containers/%s?force=1&v=1" % c["Id"])


def instance_of(data_dir):
    """The label docker.c derives from the data dir's path (FNV-1a)."""
    h = 1469598103934665603
    for c in data_dir.encode():
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def t_sidecar(tap):
    ocps.require_root()
    st, _ = engine("GET", "/_ping") if os.path.exists(SOCK) else (0, None)
    if not tap.eq(st, 200, "dockerd answers at %s (test/docker/setup.sh)" % SOCK) or \
            not tap.eq(engine("GET", "/images/%s/json" % BUSYBOX.replace("/", "%2F"))[0], 200,
                       "the test image %s is there (test/docker/setup.sh)" % BUSYBOX):
        return
    ocps.ensure_user(USER)
    tmp = tempfile.mkdtemp(prefix="ocps-sidecar-")
    os.chmod(tmp, 0o755)
    image = None
    try:
        image = build(tap)
        if not image:
            return
        s = Sidecar(image, tmp)
        rw = os.path.join(tmp, "rw")
        os.mkdir(rw)
        u = pwd.getpwnam(USER)
        os.chown(rw, u.pw_uid, u.pw_gid)
        try:
            s.run()
        except Exception as e:
            tap.ok(False, "the sidecar starts (%s)" % e, s.logs())
            return
        for t in (t_tasks, t_refusals, t_health, t_replace):
            try:
                t(tap, s, rw)
            except Exception as e:
                tap.ok(False, "%s raised %s" % (t.__name__, e), s.logs())
        t_compose(tap, image, tmp)
    finally:
        docker("rm", "-f", NAME)
        cleanup_tasks(instance_of(DATA_IN))
        if image:
            docker("rmi", image, "%s:latest" % TAG)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ocps.main(t_sidecar)
