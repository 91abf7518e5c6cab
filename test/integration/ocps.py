"""Integration test helpers: start the real ocps-proxyd built by meson on a
free loopback port with a temporary data dir, talk to it over real HTTP,
and report TAP. Only 127.0.0.1 is ever contacted; only processes this
harness started are ever signalled, by their PID.

Every request a Daemon makes carries the daemon's admin token (the one
it writes to its data dir at its first start) unless the test says
otherwise: request(..., token=None) sends none, token="..." another.

One fixture style for every test program: ocps.main(block, ...) runs
blocks of tests, each taking the Tap; a daemon lives for a block with
`with ocps.serving(tap, Daemon(...), "what") as d:`, and test functions
taking (tap, d) run against it through ocps.each(); ocps.run(tests) is
all three for a program of one daemon."""

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

DAEMON = os.environ.get("OCPS_PROXYD", "")
SHIM = os.environ.get("OCPS_SHIM", "")
OPENAPI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "openapi")

# Every exchange a test makes through Daemon.request, held against the
# OpenAPI document when the test ends (Tap.done): the daemon and its
# contract must agree on every status, content type and body.
EXCHANGES = []
CONTRACT = {}  # the document, as the first daemon served it


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, what, detail=None):
        # One line per assertion: anything after the first line of a
        # description (an exception's message) goes into the diagnostics.
        what = str(what)
        if "\n" in what:
            first, rest = what.split("\n", 1)
            what, detail = first, rest + ("\n" + str(detail) if detail is not None else "")
        self.n += 1
        print(("ok" if cond else "not ok") + " %d - %s" % (self.n, what), flush=True)
        if not cond:
            self.failed += 1
            if detail is not None:
                for line in str(detail).splitlines()[:40]:
                    print("#   " + line, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, what, "got  %r\nwant %r" % (got, want))

    def skip(self, what, why):
        """An assertion not made: TAP's "ok N # SKIP", which meson counts
        as skipped, never as a pass."""
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, what, why), flush=True)

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line, flush=True)

    def check_contract(self):
        """Validates EXCHANGES with openapi/validate.mjs (Ajv), one
        assertion per exchange."""
        if not EXCHANGES or not CONTRACT:
            return
        validator = os.path.join(OPENAPI_DIR, "validate.mjs")
        if not shutil.which("node") or not os.path.isdir(os.path.join(OPENAPI_DIR, "node_modules", "ajv")):
            self.diag("contract not checked: run `npm ci` in openapi/ (node and ajv)")
            return
        tmp = tempfile.mkdtemp(prefix="ocps-contract-")
        try:
            doc = os.path.join(tmp, "openapi.json")
            with open(doc, "w") as f:
                json.dump(CONTRACT, f)
            exch = os.path.join(tmp, "exchanges.jsonl")
            with open(exch, "w") as f:
                for x in EXCHANGES:
                    f.write(json.dumps(x) + "\n")
            out = subprocess.run(["node", validator, doc, exch], capture_output=True, text=True)
            what, detail = None, []
            for line in out.stdout.splitlines() + ["ok 0 - (end)"]:
                if line.startswith("#") and what is not None:
                    detail.append(line[1:].strip())
                    continue
                if what is not None:
                    self.ok(passed, "contract: " + what, "\n".join(detail) if detail else None)
                    what, detail = None, []
                if line.startswith("ok ") or line.startswith("not ok "):
                    passed = line.startswith("ok ")
                    what = line.split(" - ", 1)[1] if " - " in line else line
                    if what == "(end)":
                        what = None
            if out.returncode not in (0, 1):
                self.ok(False, "contract validator ran", out.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            EXCHANGES.clear()

    def done(self):
        self.check_contract()
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)

    @staticmethod
    def skip_all(why):
        print("1..0 # SKIP " + why, flush=True)
        sys.exit(77)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class UnixConnection(http.client.HTTPConnection):
    """http.client over a unix socket."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def unix_requests_as(sock_path, uid, reqs, timeout=60):
    """[(method, path, body)] over one connection to the unix socket at
    sock_path, from a child process that runs as account uid (its primary
    group, no other groups), so that the daemon's SO_PEERCRED sees that
    account; uid None: as this process. body: a dict or list (sent as
    JSON), or None. Returns [Response]; a failure in the child is raised
    here."""
    import base64
    import pwd
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if uid is not None:
                os.setgroups([])
                os.setgid(pwd.getpwuid(uid).pw_gid)
                os.setuid(uid)
            c = UnixConnection(sock_path, timeout)
            out = []
            for method, path, body in reqs:
                data = json.dumps(body) if body is not None else None
                headers = {"Content-Type": "application/json"} if body is not None else {}
                c.request(method, path, body=data, headers=headers)
                resp = c.getresponse()
                out.append([resp.status, {k.lower(): v for k, v in resp.getheaders()},
                            base64.b64encode(resp.read()).decode()])
            payload = json.dumps(out)
        except Exception as e:  # handed to the parent, which raises it
            payload = json.dumps({"error": repr(e)})
        data = payload.encode()
        while data:
            data = data[os.write(w, data):]
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    got = json.loads(b"".join(chunks))
    if isinstance(got, dict):
        raise RuntimeError("client as uid %s: %s" % (uid, got["error"]))
    return [Response(st, h, base64.b64decode(b)) for st, h, b in got]


def until(cond, timeout=30, delay=0.05):
    """cond()'s first true value within timeout seconds, else its last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(delay)
    return cond()


def fill_filesystem(path):
    """Writes zeros to path (unbuffered: nothing left to flush and fail at
    close) until its filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, b"\0" * 65536) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


# request()'s token when the test names none: the daemon's admin token.
ADMIN = object()


class Daemon:
    """One ocps-proxyd process with its own data dir and port. self.token is
    the admin token it wrote to its data dir at its first start (read once
    it answers), which request() sends unless told otherwise."""

    def __init__(self, config=None, data_dir=None, extra_args=(), env=None, wrap=(), stdio=None):
        if not DAEMON:
            Tap.skip_all("OCPS_PROXYD not set")
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="ocps-it-")
        self.port = free_port()
        self.config = config
        self.extra_args = list(extra_args)
        # The daemon's environment (None: ours), and a command it runs
        # under (systemd-socket-activate ..., unshare ...), which execs it.
        self.env = env
        self.wrap = list(wrap)
        self.stdio = stdio  # its stdout and stderr (a file or fd); None: daemon.log
        self.proc = None
        self.stopped = False  # the test stopped it on purpose
        self.log_path = os.path.join(self.data_dir, "daemon.log")
        self.token = None
        # The listener the harness talks to; a test whose config lists the
        # listeners (they would be replaced by this) empties it and lists
        # 127.0.0.1:self.port among its own.
        self.listen_args = ["--listen", "127.0.0.1:%d" % self.port]

    @property
    def admin_token_path(self):
        return os.path.join(self.data_dir, "admin.token")

    def read_admin_token(self):
        """The admin token file's token, or None when there is none."""
        try:
            with open(self.admin_token_path) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def auth(self, token=ADMIN):
        """The Authorization header for token (the admin's by default), as a
        dict to merge into request headers; {} for None."""
        t = self.token if token is ADMIN else token
        return {"Authorization": "Bearer " + t} if t else {}

    def start(self):
        args = self.wrap + [DAEMON] + self.listen_args + ["--data-dir", self.data_dir,
                                              "--log-level", "debug"] + self.extra_args
        if self.config is not None:
            path = os.path.join(self.data_dir, "config.yaml")
            with open(path, "w") as f:
                f.write(self.config)
            args += ["--config", path]
        self.log = open(self.log_path, "ab")
        self.stopped = False
        out = self.log if self.stdio is None else self.stdio
        self.proc = subprocess.Popen(args, stdout=out, stderr=out, env=self.env)
        deadline = time.monotonic() + 30
        delay = 0.01
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited with %s:\n%s" % (self.proc.returncode, self.logs()))
            try:
                r = self.request("GET", "/v1/jobproxy/ping")
                if r.status == 200:
                    # Written before the daemon listens, at its first start.
                    self.token = self.read_admin_token() or self.token
                    return self
            except OSError:
                pass
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        raise RuntimeError("daemon did not answer:\n" + self.logs())

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.stopped = True
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                return None
        return self.proc.returncode if self.proc else None

    def shim_pids(self):
        """The pids of the shims this daemon's data dir knows (shims/<pid>.sock)."""
        d = os.path.join(self.data_dir, "shims")
        names = os.listdir(d) if os.path.isdir(d) else []
        return [int(n[:-5]) for n in names if n.endswith(".sock") and n[:-5].isdigit()]

    def wait_shims(self, pids, timeout=30):
        """Waits until these shims have exited (they do once the daemon is gone
        and their last task has ended); False on timeout. Take the pids while
        the daemon runs: a shim removes its socket before it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [p for p in pids if os.path.exists("/proc/%d" % p)]:
                return True
            time.sleep(0.05)
        return False

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---- HTTP ----
    def request(self, method, path, body=None, headers=None, timeout=60, token=ADMIN):
        """One request; with the admin token unless token is given (None:
        no credentials) or headers carry an Authorization of their own."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if "Authorization" not in (headers or {}):
            headers = dict(headers or {}, **self.auth(token))
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                headers = dict(headers or {})
                headers.setdefault("Content-Type", "application/json")
            if isinstance(body, str):
                body = body.encode()
            # No catching of a broken pipe here: the server reads (and drops)
            # a body it refuses before it answers, so a client that writes
            # everything first still reads the status.
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            self.record(method, path, headers, body, resp)
            return resp
        finally:
            c.close()

    def record(self, method, path, headers, body, resp):
        if not CONTRACT and path != "/v1/openapi.json":
            r = self.request("GET", "/v1/openapi.json")
            if r.status == 200:
                CONTRACT.update(r.json())
        text = lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        EXCHANGES.append({
            "method": method, "path": path,
            "request_content_type": (headers or {}).get("Content-Type", ""),
            "request_body": text(body)[:2000],
            "status": resp.status, "content_type": resp.headers.get("content-type", ""),
            "body": text(resp.body)[:200000],
        })

    def submit(self, task, ctype="application/json", accept="application/json"):
        body = json.dumps(task) if isinstance(task, dict) else task
        return self.request("POST", "/v1/jobproxy/submit", body,
                            {"Content-Type": ctype, "Accept": accept})

    def submit_id(self, task):
        r = self.submit(task)
        if r.status != 200:
            raise RuntimeError("submit failed: %r" % r)
        return r.json()["id"]

    def state(self, tid):
        r = self.request("GET", "/v1/jobproxy/state/" + tid)
        return r.json() if r.status == 200 else None

    def wait(self, tid, codes=("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"),
             timeout=60):
        deadline = time.monotonic() + timeout
        delay = 0.02
        st = None
        while time.monotonic() < deadline:
            st = self.state(tid)
            if st and st["code"] in codes:
                return st
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        return st

    def output(self, tid, stream="stdout"):
        r = self.request("GET", "/v1/jobproxy/logs/%s?stream=%s" % (tid, stream))
        return r.text if r.status == 200 else None


class NotServing(Exception):
    """A daemon that did not start; the failure is already reported."""


@contextlib.contextmanager
def serving(tap, d, what):
    """The one fixture: starts daemon d around a block of tests. A daemon
    that does not start is one failed assertion (with its log) and ends the
    block (NotServing); an exception in the block is one failed assertion
    with its traceback. After the block the daemon must still run, then
    stop cleanly on SIGTERM; its files are removed."""
    try:
        d.start()
    except Exception as e:
        tap.ok(False, "%s: the daemon starts (%s)" % (what, e), traceback.format_exc() + d.logs())
        d.cleanup()
        raise NotServing(what)
    try:
        yield d
        if not d.stopped:
            tap.ok(d.proc.poll() is None, "%s: the daemon still runs" % what, d.logs())
    except NotServing:
        pass
    except Exception as e:
        tap.ok(False, "%s raised %s" % (what, e), traceback.format_exc() + d.logs())
    finally:
        rc = d.stop()
        tap.ok(rc == 0, "%s: the daemon stops cleanly on SIGTERM (exit %r)" % (what, rc), d.logs())
        d.cleanup()


def main(*blocks):
    """The one entry of a test program: each block(tap) runs in turn (an
    exception in one is a failed assertion, not the end of the program),
    then the TAP plan and the contract check."""
    tap = Tap()
    for block in blocks:
        try:
            block(tap)
        except NotServing:
            pass
        except Exception as e:
            tap.ok(False, "%s raised %s" % (block.__name__, e), traceback.format_exc())
    tap.done()


def each(tap, d, tests):
    """Test functions (each taking tap, daemon) against daemon d, each apart:
    one that raises is one failed assertion, and the next runs."""
    for t in tests:
        try:
            t(tap, d)
        except NotServing:
            pass
        except Exception as e:
            tap.ok(False, "%s raised %s" % (t.__name__, e), traceback.format_exc() + d.logs())


def run(tests, **daemon_kw):
    """The whole program: test functions against one daemon (serving, each)."""
    def block(tap):
        with serving(tap, Daemon(**daemon_kw), "the daemon") as d:
            each(tap, d, tests)
    block.__name__ = "run"
    main(block)


def require_root():
    if os.geteuid() != 0:
        Tap.skip_all("needs root (cgroups, setuid)")


# The accounts ensure_user() made, shared by the test processes that run
# at once: each holds a shared lock on LOCK while it runs; the last one out
# (the one that gets the lock exclusively at its exit) removes every
# account listed in MADE, which the tests made and the host did not have.
ACCOUNTS_LOCK = "/run/ocps-test-accounts.lock"
ACCOUNTS_MADE = "/run/ocps-test-accounts.made"
_accounts_fd = None


def _accounts_release():
    import fcntl
    try:
        fcntl.flock(_accounts_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another test still runs with them: the last one removes them
    try:
        with open(ACCOUNTS_MADE) as f:
            names = [n.strip() for n in f if n.strip()]
    except FileNotFoundError:
        names = []
    for name in names:
        subprocess.run(["userdel", name], capture_output=True)
    try:
        os.unlink(ACCOUNTS_MADE)
    except FileNotFoundError:
        pass
    os.close(_accounts_fd)


def ensure_user(name="ocpstest"):
    """A non-root account for tasks, made if missing and removed once no
    test process uses it any more."""
    import atexit
    import fcntl
    import pwd
    global _accounts_fd
    if _accounts_fd is None:
        _accounts_fd = os.open(ACCOUNTS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(_accounts_fd, fcntl.LOCK_SH)
        atexit.register(_accounts_release)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    # Two processes may make it at once: the second's useradd fails (9:
    # the name is taken), and the account is there all the same.
    p = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name],
                       capture_output=True, text=True)
    if p.returncode == 0:
        with open(ACCOUNTS_MADE, "a") as f:
            f.write(name + "\n")
    elif p.returncode != 9:
        raise RuntimeError("useradd %s: %s" % (name, p.stderr))
    return pwd.getpwnam(name)
