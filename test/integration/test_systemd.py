"""Integration tests: the daemon under systemd's protocols, without a
systemd as PID 1. Readiness, status, stopping and the watchdog read from
a NOTIFY_SOCKET the test makes (with the sender's credentials, as
NotifyAccess=main checks them); socket activation through
systemd-socket-activate, which passes listeners as a .socket unit does
(matched by address, never bound twice, an inherited unix socket's path
left in place); the journal's structured fields read back from a real
systemd-journald run in a private mount namespace (its sockets and its
files in a temporary dir), and plain lines when stderr is not the
journal. Then the install: `meson install` into a DESTDIR puts the
binaries, the units, the man pages, the completion and the commented
default config (which loads, and which a second install leaves alone
once it was changed), and `systemd-analyze verify` passes the units
with their ExecStart pointing at the installed daemon."""

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import ocps

ACTIVATE = shutil.which("systemd-socket-activate")
JOURNALD = "/lib/systemd/systemd-journald"
# What the sanitizers need to hear, through systemd-socket-activate (which
# gives the program a clean environment but for what -E names).
PASS_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "NOTIFY_SOCKET", "WATCHDOG_USEC")


class Notify:
    """A NOTIFY_SOCKET: a unix datagram socket whose messages carry their
    sender's pid (SO_PASSCRED)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.seen = []  # (pid, fields) in order

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        fields = dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l)
        self.seen.append((pid, fields))
        return pid, fields

    def wait_for(self, name, value, timeout=30):
        """The first message (from those seen or to come) that sets name
        to value: (pid, fields), or None at the deadline."""
        for m in self.seen:
            if m[1].get(name) == value:
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = self.recv(max(deadline - time.monotonic(), 0.01))
            except socket.timeout:
                break
            if m[1].get(name) == value:
                return m
        return None

    def close(self):
        self.sock.close()


def notify_block(tap):
    tmp = tempfile.mkdtemp(prefix="ocps-notify-")
    n = Notify(os.path.join(tmp, "notify"))
    # 3 s: a ping at least every 2 s while the supervisor goes round.
    env = dict(os.environ, NOTIFY_SOCKET=n.path, WATCHDOG_USEC="3000000")
    try:
        with ocps.serving(tap, ocps.Daemon(env=env), "notify") as d:
            pid = d.proc.pid
            ready = n.wait_for("READY", "1")
            tap.ok(ready is not None, "READY=1 once the daemon answers")
            if ready:
                tap.eq(ready[0], pid, "READY=1 comes from the main process (NotifyAccess=main)")
                statuses = [f["STATUS"] for _, f in n.seen if "STATUS" in f]
                tap.ok(any("Recovering" in s for s in statuses[:-1]) and
                       statuses[-1].startswith("Serving"),
                       "STATUS says it recovers tasks before READY=1, and serves with it",
                       statuses)
            ping = n.wait_for("WATCHDOG", "1")
            tap.ok(ping is not None and ping[0] == pid,
                   "WATCHDOG=1 from the main process when WATCHDOG_USEC is set", n.seen[-5:])
            tap.ok("watchdog: every" in d.logs(), "the daemon logs its watchdog period", d.logs())
            tap.ok(not [f for _, f in n.seen if "STOPPING" in f], "no STOPPING=1 while it serves")
            rc = d.stop()
            stopping = n.wait_for("STOPPING", "1", timeout=5)
            tap.ok(stopping is not None and rc == 0,
                   "STOPPING=1 after SIGTERM, then a clean exit (%r)" % rc, n.seen[-5:])
        # Without WATCHDOG_USEC: no pings (and no thread).
        n.seen.clear()
        env = dict(os.environ, NOTIFY_SOCKET=n.path)
        env.pop("WATCHDOG_USEC", None)
        with ocps.serving(tap, ocps.Daemon(env=env), "notify without a watchdog") as d:
            tap.ok(n.wait_for("READY", "1") is not None, "READY=1 without a watchdog too")
            d.stop()
            n.wait_for("STOPPING", "1", timeout=5)
            tap.ok(not [f for _, f in n.seen if "WATCHDOG" in f],
                   "no WATCHDOG=1 when the manager asked for none", n.seen)
    finally:
        n.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- socket activation ----

def listening_inodes_tcp(port):
    """Inodes of the sockets listening on 127.0.0.1:port (/proc/net/tcp)."""
    want = "0100007F:%04X" % port
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[1] == want and cols[3] == "0A":
                out.append(int(cols[9]))
    return out


def listening_inodes_unix(path):
    """Inodes of the listening unix sockets bound to path (/proc/net/unix)."""
    out = []
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) >= 8 and cols[7] == path and int(cols[3], 16) & 0x10000:
                out.append(int(cols[6]))
    return out


def socket_inodes(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def unix_get(path, url, token=None):
    c = http.client.HTTPConnection("localhost", timeout=30)
    c.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.sock.settimeout(30)
    c.sock.connect(path)
    try:
        c.request("GET", url, headers={"Authorization": "Bearer " + token} if token else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def tcp_get(port, url, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", url, headers={"Authorization": "Bearer " + token} if token else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def activation_block(tap):
    if not ACTIVATE:
        tap.skip("socket activation", "systemd-socket-activate is not installed")
        return
    tmp = tempfile.mkdtemp(prefix="ocps-activate-")
    path = os.path.join(tmp, "api.sock")
    unlisted = ocps.free_port()  # passed, not configured: served as given
    own = ocps.free_port()       # configured, not passed: the daemon binds it
    d = ocps.Daemon()
    wrap = [ACTIVATE, "-l", "127.0.0.1:%d" % d.port, "-l", path, "-l", "127.0.0.1:%d" % unlisted]
    for v in PASS_ENV:
        if v in os.environ:
            wrap += ["-E", v]
    d.wrap = wrap
    d.listen_args = ["--listen", "127.0.0.1:%d" % d.port, "--listen", "unix:" + path,
                     "--listen", "127.0.0.1:%d" % own]
    try:
        # systemd-socket-activate runs the daemon at the first connection,
        # which the daemon then serves: Daemon.start()'s ping.
        with ocps.serving(tap, d, "socket activation") as d:
            pid = d.proc.pid
            fds = socket_inodes(pid)
            tcp = listening_inodes_tcp(d.port)
            tap.ok(len(tcp) == 1 and tcp[0] in fds,
                   "127.0.0.1:%d: one listening socket, the passed one, served by the daemon" %
                   d.port, (tcp, fds))
            un = listening_inodes_unix(path)
            tap.ok(len(un) == 1 and un[0] in fds,
                   "unix:%s: one listening socket, the passed one (not unlinked and bound again)" %
                   path, (un, fds))
            st, body = unix_get(path, "/v1/jobproxy/state")
            tap.eq(st, 200, "the passed unix socket is served (the peer's uid names the caller)")
            st, _ = tcp_get(unlisted, "/v1/jobproxy/state")
            tap.eq(st, 401, "a passed socket no listener names is served with tokens required")
            st, _ = tcp_get(unlisted, "/v1/jobproxy/state", d.token)
            tap.eq(st, 200, "... and answers with the token")
            tap.ok("listening on 127.0.0.1:%d, passed by the service manager and not in the "
                   "config's listen" % unlisted in d.logs(), "the daemon logs it so", d.logs())
            st, _ = tcp_get(own, "/v1/jobproxy/ping")
            own_socks = listening_inodes_tcp(own)
            tap.ok(st == 200 and len(own_socks) == 1 and own_socks[0] in fds,
                   "a configured listener that was not passed is bound by the daemon", d.logs())
            d.stop()
        tap.ok(os.path.exists(path) and os.stat(path).st_mode & 0o170000 == 0o140000,
               "the inherited unix socket's path is left in place at stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # No listener configured: the passed sockets are all the listeners.
    tmp = tempfile.mkdtemp(prefix="ocps-activate-")
    path = os.path.join(tmp, "api.sock")
    d = ocps.Daemon()
    d.listen_args = []
    wrap = [ACTIVATE, "-l", "127.0.0.1:%d" % d.port, "-l", path]
    for v in PASS_ENV:
        if v in os.environ:
            wrap += ["-E", v]
    d.wrap = wrap
    try:
        with ocps.serving(tap, d, "socket activation, no listen configured") as d:
            listening = [l for l in d.logs().splitlines() if "listening on" in l]
            tap.ok(len(listening) == 2 and all("passed by the service manager" in l
                                               for l in listening),
                   "only the passed sockets are served (no default 127.0.0.1:8080)", listening)
            st, _ = unix_get(path, "/v1/jobproxy/state")
            tap.eq(st, 200, "the unix socket answers")
            children = subprocess.run(["pgrep", "-P", str(d.proc.pid)], capture_output=True,
                                      text=True).stdout.split()
            leaked = []
            for c in children:
                try:
                    env = open("/proc/%s/environ" % c, "rb").read()
                except OSError:
                    continue
                if b"LISTEN_FDS=" in env:
                    leaked.append(c)
            tap.ok(not leaked, "no child of the daemon inherits LISTEN_FDS", leaked)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # An unauthenticated listener the service manager binds to every
    # address: refused as one the daemon would bind itself (loopback only).
    tmp = tempfile.mkdtemp(prefix="ocps-activate-")
    port = ocps.free_port()
    conf = os.path.join(tmp, "config.yaml")
    with open(conf, "w") as f:
        f.write('listen: [{address: "0.0.0.0:%d", unauthenticated: anyone}]\n' % port)
    wrap = [ACTIVATE, "-l", "0.0.0.0:%d" % port]
    for v in PASS_ENV:
        if v in os.environ:
            wrap += ["-E", v]
    p = subprocess.Popen(wrap + [ocps.DAEMON, "--config", conf, "--data-dir",
                                 os.path.join(tmp, "data")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # It runs the daemon at the first connection (ours, over loopback).
        c = None
        for _ in range(100):
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        try:
            _, err = p.communicate(timeout=60)
        finally:
            if c:
                c.close()
        tap.ok(p.returncode not in (0, None) and
               "an unauthenticated listener must be on a loopback address" in err and
               "not 0.0.0.0" in err,
               "a passed socket on 0.0.0.0 for an unauthenticated listener: the daemon does "
               "not start, and says why", (p.returncode, err[-600:]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the journal ----

JOURNALD_CONF = """[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""


class Journald:
    """A real systemd-journald in a private mount namespace: its sockets
    in tmp/run (bound at /run/systemd/journal there), its files in
    tmp/log (at /run/log). A process that is to log to it runs in a
    namespace of its own with tmp/run at /run/systemd/journal (wrap())."""

    def __init__(self, tmp):
        self.run = os.path.join(tmp, "run")
        self.log = os.path.join(tmp, "log")
        os.mkdir(self.run)
        os.mkdir(self.log)
        conf = os.path.join(tmp, "journald.conf")
        with open(conf, "w") as f:
            f.write(JOURNALD_CONF)
        script = ("mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && "
                  "mount --bind %s /run/systemd/journal && mount --bind %s /run/log && "
                  "mount --bind %s /etc/systemd/journald.conf && exec %s"
                  % (self.run, self.log, conf, JOURNALD))
        self.out = open(os.path.join(tmp, "journald.out"), "wb")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "sh", "-c", script], stdout=self.out, stderr=self.out)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(os.path.join(self.run, "stdout")) and \
               os.path.exists(os.path.join(self.run, "socket")):
                return
            time.sleep(0.05)
        raise RuntimeError("systemd-journald did not start")

    def wrap(self):
        script = ("mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && "
                  "mount --bind %s /run/systemd/journal && exec \"$@\"" % self.run)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]

    def stream(self, identifier):
        """A stream to the journal as systemd gives a service's stderr,
        and the JOURNAL_STREAM that names it."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(os.path.join(self.run, "stdout"))
        # identifier, unit, priority, level prefix, forward to syslog, kmsg, console
        s.sendall(("%s\n\n6\n0\n0\n0\n0\n" % identifier).encode())
        st = os.fstat(s.fileno())
        return s, "%d:%d" % (st.st_dev, st.st_ino)

    def entries(self, *matches):
        out = subprocess.run(["journalctl", "-D", os.path.join(self.log, "journal"), "-o", "json",
                              "--no-pager"] + list(matches), capture_output=True, text=True)
        return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]

    def wait_entries(self, pred, *matches, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            e = self.entries(*matches)
            if pred(e) or time.monotonic() > deadline:
                return e
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


def journal_block(tap):
    if os.geteuid() != 0 or not os.path.exists(JOURNALD) or not shutil.which("unshare"):
        tap.skip("the journal's fields", "needs root, unshare and systemd-journald")
        return
    user = ocps.ensure_user()
    tmp = tempfile.mkdtemp(prefix="ocps-journal-")
    j = None
    try:
        j = Journald(tmp)
        stream, journal_stream = j.stream("ocps-proxyd")
        env = dict(os.environ, JOURNAL_STREAM=journal_stream)
        d = ocps.Daemon(env=env, wrap=j.wrap(), stdio=stream.fileno())
        with ocps.serving(tap, d, "under journald") as d:
            pid = d.proc.pid
            tid = d.submit_id({"user": user.pw_name, "cmd": "true"})
            st = d.wait(tid)
            tap.eq(st and st["code"], "COMPLETE", "a task runs under journald")
            mine = j.wait_entries(lambda e: any("COMPLETE" in x.get("MESSAGE", "") for x in e),
                                  "TASK_ID=" + tid)
            msgs = [e.get("MESSAGE", "") for e in mine]
            tap.ok(any("QUEUED" in m for m in msgs) and any("RUNNING" in m for m in msgs) and
                   any("COMPLETE" in m for m in msgs),
                   "journalctl TASK_ID=<id> finds the task's lines: queued, running, complete",
                   msgs)
            tap.ok(all(e.get("_TRANSPORT") == "journal" and e.get("_PID") == str(pid)
                       for e in mine),
                   "they come through the native protocol (sd_journal_send), from the daemon",
                   [(e.get("_TRANSPORT"), e.get("_PID")) for e in mine])
            queued = [e for e in mine if "QUEUED" in e.get("MESSAGE", "")]
            tap.ok(queued and queued[0].get("PRINCIPAL") == "admin" and
                   queued[0].get("PRIORITY") == "6" and
                   queued[0].get("CODE_FILE") == "lib/supervisor-requests.c" and
                   queued[0].get("SYSLOG_IDENTIFIER") == "ocps-proxyd",
                   "its QUEUED line: PRINCIPAL, PRIORITY 6, CODE_FILE, SYSLOG_IDENTIFIER", queued)
            audit = [e for e in mine if e.get("MESSAGE", "").startswith("audit action=submit")]
            tap.ok(audit and audit[0].get("PRINCIPAL") == "admin",
                   "the submit's audit line carries TASK_ID and PRINCIPAL", audit)
            tap.ok(not any(m.startswith("20") and " info " in m[:40] for m in msgs),
                   "messages carry no timestamp or level of their own (the journal has them)",
                   msgs)
            d.stop()
        ended = j.wait_entries(lambda e: any(x.get("MESSAGE") == "stopped" for x in e),
                               "_PID=%d" % pid)
        tap.ok(any(e.get("MESSAGE") == "stopped" and e.get("_TRANSPORT") == "journal"
                   for e in ended), "the daemon's last line, \"stopped\", is in the journal")
        stream.close()

        # JOURNAL_STREAM that is not stderr's (a shell redirected it): plain lines.
        d = ocps.Daemon(env=dict(os.environ, JOURNAL_STREAM=journal_stream), wrap=j.wrap())
        with ocps.serving(tap, d, "JOURNAL_STREAM not stderr's") as d:
            pid = d.proc.pid
            lines = [l for l in d.logs().splitlines() if "listening on" in l]
            tap.ok(lines and " info  listening on" in lines[0],
                   "stderr gets plain lines when it is not the stream JOURNAL_STREAM names",
                   d.logs())
        tap.ok(not j.entries("_PID=%d" % pid), "and nothing goes to the journal")
    finally:
        if j:
            j.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the install and the units ----

BUILD_ROOT = os.environ.get("OCPS_BUILD_ROOT", "")


def meson_install(destdir):
    return subprocess.run(["meson", "install", "-C", BUILD_ROOT, "--no-rebuild", "--destdir",
                           destdir], capture_output=True, text=True)


def find_installed(destdir, suffix):
    for root, _, files in os.walk(destdir):
        for f in files:
            p = os.path.join(root, f)
            if p.endswith(suffix):
                return p
    return None


def unit_settings(path):
    """KEY -> [values] of a unit file's lines (comments skipped)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")) and "=" in line:
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def install_block(tap):
    if not BUILD_ROOT or not shutil.which("meson"):
        tap.skip("meson install", "OCPS_BUILD_ROOT or meson missing (run through meson test)")
        return
    tmp = tempfile.mkdtemp(prefix="ocps-install-")
    dest = os.path.join(tmp, "dest")
    try:
        r = meson_install(dest)
        if not tap.ok(r.returncode == 0, "meson install --destdir", r.stdout[-3000:] + r.stderr):
            return
        want = ["/sbin/ocps-proxyd", "/libexec/ocps-shim", "/bin/ocps-proxy",
                "/systemd/system/ocps-proxyd.service", "/systemd/system/ocps-proxyd.socket",
                "/man8/ocps-proxyd.8", "/man1/ocps-proxy.1",
                "/bash-completion/completions/ocps-proxy.bash", "/etc/ocps-proxy/config.yaml"]
        found = {w: find_installed(dest, w) for w in want}
        tap.ok(all(found.values()), "it installs the binaries, the units, the man pages, the "
               "completion and the config", found)
        config = os.path.join(dest, "etc", "ocps-proxy", "config.yaml")
        service = found["/systemd/system/ocps-proxyd.service"]
        socket_unit = found["/systemd/system/ocps-proxyd.socket"]
        if not (os.path.exists(config) and service and socket_unit):
            return

        # The installed config is the daemon's: it loads and serves (the
        # harness's --listen replaces its listeners, which need /run).
        with open(config) as f:
            text = f.read()
        tap.ok(text.count("\n#") > 20, "the default config is commented")
        with ocps.serving(tap, ocps.Daemon(config=text), "the installed default config") as d:
            tap.eq(d.request("GET", "/v1/jobproxy/state").status, 200, "the daemon serves with it")

        # Never over the operator's.
        with open(config, "w") as f:
            f.write("# mine\nlog_level: debug\n")
        r = meson_install(dest)
        with open(config) as f:
            kept = f.read()
        tap.ok(r.returncode == 0 and kept == "# mine\nlog_level: debug\n",
               "a second install keeps a config that exists", r.stdout[-2000:] + r.stderr)

        # The units, as systemd reads them: ExecStart names the installed
        # daemon (here under the DESTDIR) and the man page is found.
        s = unit_settings(service)
        execstart = s.get("ExecStart", [""])[0].split()
        tap.ok(len(execstart) == 3 and os.access(dest + execstart[0], os.X_OK) and
               execstart[1:] == ["--config", "/etc/ocps-proxy/config.yaml"],
               "ExecStart runs the installed daemon with the installed config", execstart)
        for key, value in [("Type", "notify"), ("NotifyAccess", "main"), ("KillMode", "process"),
                           ("Delegate", "yes"), ("TasksMax", "infinity")]:
            tap.eq(s.get(key), [value], "the service says %s=%s" % (key, value))
        for key in ("PrivateTmp", "ProtectHome", "NoNewPrivileges", "ProtectControlGroups",
                    "ProtectKernelModules"):
            tap.ok(key not in s, "the service does not set %s (its comment says why)" % key)
        sock = unit_settings(socket_unit)
        tap.eq(sorted(sock.get("ListenStream", [])), ["/run/ocps-proxy.sock", "127.0.0.1:8080"],
               "the socket passes the unix socket and 127.0.0.1:8080")
        listens = [l.strip()[2:] for l in text.splitlines() if l.startswith("  - ")]
        tap.eq(sorted(listens), ["127.0.0.1:8080", "unix:/run/ocps-proxy.sock"],
               "the default config's listen entries are the socket's (matched by address)")

        analyze = shutil.which("systemd-analyze")
        if not analyze:
            tap.skip("systemd-analyze verify", "systemd-analyze is not installed")
            return
        units = os.path.join(tmp, "units")
        os.mkdir(units)
        with open(service) as f:
            body = f.read().replace("ExecStart=" + execstart[0],
                                    "ExecStart=" + dest + execstart[0])
        with open(os.path.join(units, "ocps-proxyd.service"), "w") as f:
            f.write(body)
        shutil.copy(socket_unit, units)
        man = os.path.dirname(os.path.dirname(found["/man8/ocps-proxyd.8"]))
        env = dict(os.environ, MANPATH=man)

        def verify(*names):
            return subprocess.run([analyze, "verify"] + [os.path.join(units, n) for n in names],
                                  capture_output=True, text=True, env=env)
        r = verify("ocps-proxyd.service", "ocps-proxyd.socket")
        tap.ok(r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(),
               "systemd-analyze verify passes both units without a word", r.stdout + r.stderr)
        # The check can fail: a directive systemd cannot parse is named.
        with open(os.path.join(units, "ocps-proxyd.service"), "w") as f:
            f.write(body.replace("KillMode=process", "KillMode=processes"))
        r = verify("ocps-proxyd.service")
        tap.ok("kill mode" in r.stderr.lower(), "a unit with a bad directive does not pass",
               r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ocps.main(notify_block, activation_block, journal_block, install_block)
