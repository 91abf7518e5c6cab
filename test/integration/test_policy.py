#!/usr/bin/env python3
"""What a principal may do (issue #12, policy): run_as and the accounts
nobody runs as, per task maxima (403), quotas (429 with Retry-After, also
across a restart), containers (images, ports, mounts and the
never-mountable list, a symlink swapped in while queued), who sees whose
tasks, and the audit lines.

Accounts and a group are made here (useradd, groupadd) and removed after.
A principal is a unix-socket peer: the account a client process drops to
before it connects (the kernel, not the request, says who calls), given a
policy entry by its account's name in the daemon's config. principal()
is the one place that says how a principal calls: t_tokens runs the
run_as and visibility rules again with principals that call over TCP
with bearer tokens, where a principal's name is not an account's."""

import grp
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid

import ocps
from ocps import Daemon, require_root, serving

IMAGE = "ocps-test/busybox:1"
P = "ocpsp-"  # every account and group this test makes

# name: useradd options. Made in this order, removed in the reverse.
GROUPS = [P + "grp"]
ACCOUNTS = [
    (P + "a", []), (P + "b", []), (P + "c", []), (P + "adm", []),
    (P + "named", []), (P + "member", ["-G", P + "grp"]),
    (P + "root", ["-o", "-u", "0"]),  # root under another name
    (P + "g0p", ["-N", "-g", "0"]),  # gid 0 as its primary group
    (P + "g0s", ["-G", "root"]),  # gid 0 as a supplementary group
    (P + "dock", ["-G", "docker"]), (P + "disk", ["-G", "disk"]), (P + "shad", ["-G", "shadow"]),
    (P + "sys", ["-r", "-G", P + "grp"]),  # a system account, in a run_as group
    (P + "sys2", ["-r"]),  # a system account run_as names
]


def cleanup_accounts():
    for name, _ in reversed(ACCOUNTS):
        # -f: the uid-0 alias shares its uid with running processes. Its
        # home is /nonexistent and -r is not given: nothing else goes.
        subprocess.run(["userdel", "-f", name], capture_output=True)
    for g in GROUPS:
        subprocess.run(["groupdel", g], capture_output=True)


def make_accounts():
    cleanup_accounts()  # left over from an interrupted run
    for g in GROUPS:
        subprocess.run(["groupadd", g], check=True)
    for name, opts in ACCOUNTS:
        if opts[:1] == ["-G"] and opts[1] in ("docker", "disk", "shadow"):
            try:
                grp.getgrnam(opts[1])
            except KeyError:
                subprocess.run(["groupadd", "-r", opts[1]], check=True)
                GROUPS.append(opts[1])  # not the host's: removed after
        subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/bin/sh"] + opts + [name], check=True, capture_output=True)


# ---- principals ----

class UnixPrincipal:
    """Requests as the principal of a local account, over the unix socket:
    each in a child process that drops to the account first."""

    def __init__(self, d, account):
        self.d = d
        self.name = account
        self.pw = pwd.getpwnam(account)

    def request(self, method, path, body=None):
        resp = ocps.unix_requests_as(self.d.sock, self.pw.pw_uid, [(method, path, body)])[0]
        self.d.record(method, path, {"Content-Type": "application/json"} if body is not None else {},
                      json.dumps(body) if body is not None else None, resp)
        return resp


class TokenPrincipal:
    """Requests as principal 'name' over TCP, with a bearer token made for
    it by `ocps-proxyd token create` on the running daemon's data dir."""

    def __init__(self, d, name):
        self.d = d
        self.name = name
        p = subprocess.run([ocps.DAEMON, "token", "create", "--principal", name,
                            "--data-dir", d.data_dir], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("token create: %s" % p.stderr)
        self.token = p.stdout.strip()

    def request(self, method, path, body=None):
        return self.d.request(method, path, body, token=self.token)


def principal(d, account, via="unix"):
    """The client of principal 'account' (the one switch for how it calls)."""
    return UnixPrincipal(d, account) if via == "unix" else TokenPrincipal(d, account)


def policy_daemon(config):
    """A daemon on a unix socket (and its TCP port) that clients of other
    accounts can reach."""
    d = Daemon(config=config)
    d.sock = os.path.join(d.data_dir, "api.sock")
    d.extra_args = ["--listen", "unix:" + d.sock]
    os.chmod(d.data_dir, 0o755)
    return d


def submit(c, task):
    return c.request("POST", "/v1/jobproxy/submit", task)


def refused(tap, r, status, words, what):
    msg = ""
    try:
        msg = r.json().get("message", "")
    except ValueError:
        pass
    return tap.ok(r.status == status and words in msg, "%s (%d)" % (what, status), r)


def state(c, tid):
    r = c.request("GET", "/v1/jobproxy/state/" + tid)
    return r.json() if r.status == 200 else None


def delete(c, tid):
    return c.request("DELETE", "/v1/jobproxy/delete/" + tid).status


# ---- run_as, the never-list, maxima, visibility, audit ----

ACCOUNTS_CONFIG = """
principals:
  ocpsp-a:
    run_as: [ocpsp-named, "group:ocpsp-grp", ocpsp-root, ocpsp-g0p, ocpsp-g0s, ocpsp-dock,
             ocpsp-disk, ocpsp-shad, ocpsp-sys2]
    max: {cores: 0.5, memory: 128M, walltime: 1m}
  ocpsp-adm: {admin: true}
"""


def t_accounts(tap):
    with serving(tap, policy_daemon(ACCOUNTS_CONFIG), "accounts") as d:
        a, b, adm = principal(d, P + "a"), principal(d, P + "b"), principal(d, P + "adm")
        ids = []

        def ok_submit(c, user, what):
            r = submit(c, {"user": user, "cmd": "sleep 300"})
            if tap.ok(r.status == 200, what, r):
                ids.append((c, r.json()["id"]))
                return r.json()["id"]

        own = ok_submit(a, P + "a", "A runs tasks as itself")
        r = submit(a, {"user": P + "b", "cmd": "true"})
        refused(tap, r, 403, "user: principal ocpsp-a may run as itself (ocpsp-a), ocpsp-named, "
                "members of group ocpsp-grp, ", "A cannot run as B")
        refused(tap, r, 403, "not ocpsp-b (principals.ocpsp-a.run_as)",
                "... and the refusal names the rule")
        refused(tap, submit(b, {"user": P + "a", "cmd": "true"}), 403,
                "principal ocpsp-b may run as itself (ocpsp-b) only, not ocpsp-a "
                "(principals.default.run_as)", "B, with no entry of its own, cannot run as A")
        refused(tap, submit(a, {"user": P + "no-such", "cmd": "true"}), 403,
                "not ocpsp-no-such (principals.ocpsp-a.run_as)",
                "an account that does not exist: the same refusal, its existence untold")
        ok_submit(a, P + "named", "run_as by name")
        ok_submit(a, P + "member", "run_as by group")

        for user, words, what in [
                (P + "root", "has uid 0 (root under another name)", "a uid-0 alias"),
                ("root", "root", "root"),
                (P + "g0p", "gid 0", "an account whose primary group is gid 0"),
                (P + "g0s", "gid 0", "an account in the group of gid 0"),
                (P + "dock", "is a member of docker, a privileged group", "a member of docker"),
                (P + "disk", "is a member of disk, a privileged group", "a member of disk"),
                (P + "shad", "is a member of shadow, a privileged group", "a member of shadow"),
                (P + "sys", "is a system account, below UID_MIN", "a system account in a run_as group")]:
            refused(tap, submit(a, {"user": user, "cmd": "true"}), 403, words,
                    "%s is refused though the policy lists it" % what)
        ok_submit(a, P + "sys2", "a system account the run_as names by name")

        ok_submit(adm, P + "b", "an admin principal runs tasks as another account")
        refused(tap, submit(adm, {"user": P + "root", "cmd": "true"}), 403, "uid 0",
                "... but not as a uid-0 alias")
        refused(tap, submit(adm, {"user": P + "dock", "cmd": "true"}), 403, "privileged group",
                "... nor as a member of docker")

        # Maxima: 403 naming the maximum; a task that says no walltime gets it.
        for field, value, words in [("cores", 1, "cores: 1 is above the maximum of 0.5"),
                                    ("memory", "1G", "memory: 1 GiB is above the maximum of 128 MiB"),
                                    ("walltime", "2h", "walltime: 7200s is above the maximum of 60s")]:
            refused(tap, submit(a, {"user": P + "a", "cmd": "true", field: value}), 403,
                    words + " for principal ocpsp-a (principals.ocpsp-a.max.%s)" % field,
                    "%s above the principal's maximum" % field)
        r = submit(a, {"user": P + "a", "cmd": "true"})
        tid = r.json()["id"] if r.status == 200 else None
        t = a.request("GET", "/v1/jobproxy/task/" + tid).json() if tid else {}
        tap.ok(t.get("walltime") == "60s" and t.get("cores") == 0.5,
               "a task that names no walltime gets the maximum; its cores the default lowered "
               "to the maximum", t)

        # Visibility: each sees its own; the admin sees every task.
        tap.eq(b.request("GET", "/v1/jobproxy/state/" + own).status, 404,
               "B does not see A's task (404)")
        tap.eq(adm.request("GET", "/v1/jobproxy/state/" + own).status, 200,
               "the admin sees A's task")
        listed = [s["id"] for s in adm.request("GET", "/v1/jobproxy/state?limit=2048").json()["state"]]
        tap.ok(all(i in listed for _, i in ids), "the admin's list holds every principal's tasks")
        a_list = [s["id"] for s in a.request("GET", "/v1/jobproxy/state?limit=2048").json()["state"]]
        adm_task = [i for c, i in ids if c is adm]
        tap.ok(own in a_list and not set(adm_task) & set(a_list),
               "A's list holds its tasks and not the admin's", a_list)
        tap.eq(delete(b, own), 404, "B cannot cancel A's task")
        tap.eq(delete(adm, own), 204, "the admin cancels A's task")

        for c, i in ids:
            if i != own:  # cancelled by the admin already
                delete(c, i)
        for c, i in ids:
            d.wait(i)
        tap.eq(delete(a, ids[1][1]), 204, "A deletes its ended task")

        # Audit: one line per submit, refusal, cancel and delete.
        log = open(d.log_path, encoding="utf-8", errors="replace").read()
        uid_a = pwd.getpwnam(P + "a").pw_uid
        tap.ok(("audit action=submit principal=ocpsp-a via=unix uid=%d user=ocpsp-b task=- "
                "outcome=refused status=403 reason=\"user: principal ocpsp-a may run as" % uid_a) in log,
               "a refused submit is an audit line: principal, uid, run-as account, outcome, why")
        tap.ok(("audit action=submit principal=ocpsp-a via=unix uid=%d user=ocpsp-a task=%s "
                "outcome=accepted" % (uid_a, own)) in log, "an accepted submit, with its task id")
        tap.ok(("audit action=cancel principal=ocpsp-adm via=unix uid=%d user=ocpsp-a task=%s "
                "outcome=cancelled" % (pwd.getpwnam(P + "adm").pw_uid, own)) in log,
               "a cancel, by whom")
        tap.ok(("audit action=delete principal=ocpsp-b via=unix uid=%d user=- task=%s "
                "outcome=refused status=404" % (pwd.getpwnam(P + "b").pw_uid, own)) in log,
               "a refused cancel of someone else's task")
        tap.ok(("action=delete principal=ocpsp-a via=unix uid=%d user=ocpsp-named task=%s "
                "outcome=deleted" % (uid_a, ids[1][1])) in log, "a delete")
        r = d.request("POST", "/v1/jobproxy/submit", {"user": "root", "cmd": "true"})
        log = open(d.log_path, encoding="utf-8", errors="replace").read()
        tap.ok(r.status == 403 and "audit action=submit principal=admin via=token "
               "address=127.0.0.1:" in log, "over TCP the line gives the caller's address")


def t_tokens(tap):
    """A cannot run as B over TCP either: the same rules for principals that
    call with bearer tokens. A token's principal is a name, not an account:
    it runs tasks as no account of that name unless its run_as says so."""
    with serving(tap, policy_daemon(ACCOUNTS_CONFIG), "tokens") as d:
        a, b = principal(d, P + "a", "token"), principal(d, P + "b", "token")
        r = submit(a, {"user": P + "named", "cmd": "sleep 300"})
        own = r.json()["id"] if tap.ok(r.status == 200, "token A runs a task as an account its "
                                       "run_as names", r) else None
        refused(tap, submit(a, {"user": P + "b", "cmd": "true"}), 403,
                "not ocpsp-b (principals.ocpsp-a.run_as)", "token A cannot run as B")
        refused(tap, submit(a, {"user": P + "a", "cmd": "true"}), 403,
                "not ocpsp-a (principals.ocpsp-a.run_as)",
                "nor as the account that has its name (only a unix peer is its account)")
        refused(tap, submit(b, {"user": P + "b", "cmd": "true"}), 403,
                "may run tasks as no account, so not as ocpsp-b (principals.default.run_as is empty)",
                "token B, with no entry, runs as no account at all")
        refused(tap, submit(a, {"user": P + "dock", "cmd": "true"}), 403,
                "is a member of docker, a privileged group", "the never-list holds over TCP")
        if own:
            tap.eq(b.request("GET", "/v1/jobproxy/state/" + own).status, 404,
                   "token B does not see A's task (404)")
            tap.eq(delete(b, own), 404, "token B cannot cancel it")
            tap.eq(delete(a, own), 204, "token A cancels its own")
            d.wait(own)
        # Refused at authentication: a line too, naming the endpoint.
        r = d.request("POST", "/v1/jobproxy/submit", {"user": P + "a", "cmd": "true"},
                      token="ocps_000000000000_" + "0" * 64)
        tap.eq(r.status, 401, "an unknown token is refused")
        log = open(d.log_path, encoding="utf-8", errors="replace").read()
        tap.ok("audit action=submit principal=ocpsp-a via=token address=127.0.0.1:" in log and
               "user=ocpsp-b task=- outcome=refused status=403" in log,
               "the refusal's audit line names the token's principal and its address")
        tap.ok(re.search(r'audit action=authenticate principal=- via=- address=127\.0\.0\.1:\d+ '
                         r'user=- task=- outcome=refused status=401 reason="the bearer token is '
                         r'not valid" request="POST /v1/jobproxy/submit"', log),
               "a request refused at authentication is an audit line, with its endpoint",
               log[-2000:])


GROUPS_CONFIG = """
privileged_groups: [root, docker, ocpsp-grp]
principals:
  ocpsp-a: {run_as: [ocpsp-named, ocpsp-member, ocpsp-dock]}
"""


def t_groups(tap):
    """privileged_groups is the admin's to set: its groups' members are
    refused, whatever run_as says."""
    with serving(tap, policy_daemon(GROUPS_CONFIG), "privileged groups") as d:
        a = principal(d, P + "a")
        refused(tap, submit(a, {"user": P + "member", "cmd": "true"}), 403,
                "is a member of ocpsp-grp, a privileged group",
                "a member of a group the config names privileged is refused")
        refused(tap, submit(a, {"user": P + "dock", "cmd": "true"}), 403,
                "is a member of docker, a privileged group", "docker, which it names too")
        r = submit(a, {"user": P + "named", "cmd": "true"})
        tap.ok(r.status == 200, "an account in none of them runs", r)
        if r.status == 200:
            d.wait(r.json()["id"])


# ---- quotas ----

QUOTA_CONFIG = """
capacity: {cores: 1}
principals:
  ocpsp-a: {quota: {queued: 1}}
  ocpsp-b: {quota: {running: 1}}
  ocpsp-c: {quota: {cores: 1}}
  ocpsp-member: {quota: {stored: 1B}}
  ocpsp-named: {quota: {memory: 64M}}
"""


def over_quota(tap, r, words, what):
    if refused(tap, r, 429, words, what):
        tap.eq(r.headers.get("retry-after"), "30", "... with Retry-After: 30")


def t_quotas(tap):
    with serving(tap, policy_daemon(QUOTA_CONFIG), "quotas") as d:
        a, b, c = principal(d, P + "a"), principal(d, P + "b"), principal(d, P + "c")
        sleeper = lambda user, cores: {"user": user, "cores": cores, "cmd": "sleep 300"}

        r = submit(b, sleeper(P + "b", 0.5))
        b1 = r.json()["id"] if r.status == 200 else None
        st = d.wait(b1, codes=("RUNNING",)) if b1 else None
        tap.ok(st and st["code"] == "RUNNING", "B's first task runs", st)
        over_quota(tap, submit(b, sleeper(P + "b", 0.25)),
                   "quota: principal ocpsp-b has 1 tasks queued or running, its quota of running "
                   "tasks (principals.ocpsp-b.quota.running)", "B's second: over its running quota")

        r = submit(c, sleeper(P + "c", 0.5))
        c1 = r.json()["id"] if r.status == 200 else None
        tap.ok(c1, "C's first task (0.5 cores)", r)
        over_quota(tap, submit(c, sleeper(P + "c", 0.75)),
                   "hold 0.5 cores; 0.75 more would pass its quota of 1 (principals.ocpsp-c.quota.cores)",
                   "C's 0.75 more cores: over its cores quota")

        # The host's one core is held: A's task waits, and its next is one too many.
        r = submit(a, sleeper(P + "a", 0.5))
        a1 = r.json()["id"] if r.status == 200 else None
        tap.ok(a1 and state(a, a1)["code"] == "QUEUED", "A's task waits QUEUED", r)
        over_quota(tap, submit(a, sleeper(P + "a", 0.5)),
                   "quota: principal ocpsp-a has 1 tasks queued, its quota "
                   "(principals.ocpsp-a.quota.queued)", "A's second: over its queued quota")

        n = principal(d, P + "named")
        r = submit(n, {"user": P + "named", "memory": "48M", "cmd": "sleep 300"})
        n1 = r.json()["id"] if r.status == 200 else None
        tap.ok(n1, "N's first task (48 MiB)", r)
        over_quota(tap, submit(n, {"user": P + "named", "memory": "32M", "cmd": "true"}),
                   "(principals.ocpsp-named.quota.memory)", "N's 32 MiB more: over its memory quota")
        if n1:
            delete(n, n1)
            d.wait(n1)

        # A restart counts them again.
        d.stop()
        d.start()
        over_quota(tap, submit(b, sleeper(P + "b", 0.25)), "quota of running tasks",
                   "after a restart: B is still at its running quota")
        over_quota(tap, submit(a, sleeper(P + "a", 0.5)), "tasks queued, its quota",
                   "after a restart: A is still at its queued quota")
        over_quota(tap, submit(c, sleeper(P + "c", 0.75)), "hold 0.5 cores",
                   "after a restart: C still holds its half core")

        # An end gives the place back.
        tap.eq(delete(b, b1), 204, "B cancels its task")
        d.wait(b1)
        r = submit(b, sleeper(P + "b", 0.25))
        tap.eq(r.status, 200, "then B may run another")
        b2 = r.json()["id"] if r.status == 200 else None
        tap.eq(delete(a, a1), 204, "A cancels its queued task")
        r = submit(a, sleeper(P + "a", 0.5))
        tap.eq(r.status, 200, "then A may queue another")
        a2 = r.json()["id"] if r.status == 200 else None
        for cl, tid in ((b, b2), (a, a2), (c, c1)):
            if tid:
                delete(cl, tid)
                d.wait(tid)

        # Stored bytes: what ended tasks keep under the data dir.
        m = principal(d, P + "member")
        r = submit(m, {"user": P + "member", "cmd": "echo kept"})
        tid = r.json()["id"] if r.status == 200 else None
        st = d.wait(tid) if tid else None
        tap.ok(st and st["code"] == "COMPLETE", "a task whose output stays under the data dir", st)
        over_quota(tap, submit(m, {"user": P + "member", "cmd": "true"}),
                   "under the data directory, its quota of 1 bytes "
                   "(principals.ocpsp-member.quota.stored)", "then its stored-bytes quota is reached")
        tap.eq(delete(m, tid), 204, "it deletes the ended task")
        tap.eq(submit(m, {"user": P + "member", "cmd": "true"}).status, 200,
               "and may submit again")


# ---- containers ----

def dockerd_up():
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect("/var/run/docker.sock")
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        up = s.recv(64).startswith(b"HTTP/1.0 200")
        s.close()
        return up
    except OSError:
        return False


def engine_get(path):
    """GET on the Engine API over its socket; the JSON, or None."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect("/var/run/docker.sock")
        s.sendall(("GET %s HTTP/1.0\r\nHost: docker\r\n\r\n" % path).encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        return None
    return json.loads(body)


def t_containers(tap):
    tree = tempfile.mkdtemp(prefix="ocps-policy-")
    try:
        containers(tap, tree)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def containers(tap, tree):
    os.chmod(tree, 0o755)
    a_pw = pwd.getpwnam(P + "a")
    for sub in ("ro", "ro/data", "rw", "rw/swap", "other"):
        os.mkdir(os.path.join(tree, sub))
        os.chown(os.path.join(tree, sub), a_pw.pw_uid, a_pw.pw_gid)
    with open(os.path.join(tree, "ro/data/file"), "w") as f:
        f.write("mounted\n")
    os.chmod(os.path.join(tree, "ro/data/file"), 0o644)
    with open(os.path.join(tree, "rw/swap/file"), "w") as f:
        f.write("harmless\n")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(tree, "rw/a.sock"))
    os.mknod(os.path.join(tree, "rw/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    config = """
capacity: {cores: 1}
docker: {network: none, pull: never, instance: ocps-policy-%s}
principals:
  ocpsp-a:
    images: ["ocps-test/busybox:*", "127.0.0.1:5000/*"]
    mounts: {ro: [%s/ro], rw: [%s/rw]}
    ports: {range: 20000-20010, address: 127.0.0.2}
  ocpsp-b: {}
  ocpsp-adm: {admin: true}
""" % (uuid.uuid4().hex[:8], tree, tree)
    up = dockerd_up()
    with serving(tap, policy_daemon(config), "containers") as d:
        a, b, adm = principal(d, P + "a"), principal(d, P + "b"), principal(d, P + "adm")
        root = principal(d, "root")
        ctr = lambda **kw: {"user": P + "a", "container": dict({"image": IMAGE, "cmd": "true"}, **kw)}

        refused(tap, submit(a, ctr(image="busybox:latest")), 403,
                "container.image: principal ocpsp-a may not run busybox:latest; its images are "
                "ocps-test/busybox:*, 127.0.0.1:5000/* (principals.ocpsp-a.images)",
                "an image no pattern matches")
        refused(tap, submit(b, {"user": P + "b", "container": {"image": IMAGE, "ports": [
            {"host": 20001, "container": 80}]}}), 403, "may not publish host ports",
                "no port range: no host ports")
        refused(tap, submit(a, ctr(ports=[{"host": 8080, "container": 80}])), 403,
                "container.ports[0].host: 8080 is outside principal ocpsp-a's range 20000-20010",
                "a host port outside the range")

        def mount(host, mode="RO"):
            return [{"host": host, "container": "/x", "mode": mode}]

        for host, mode, words, what in [
                (tree + "/rw/a.sock", "RO", "is a socket", "a socket"),
                ("/var/run/docker.sock", "RO", "(that is, /run/docker.sock) is a socket",
                 "the Docker socket"),
                (tree + "/rw/null", "RO", "is a device node", "a device node"),
                ("/etc", "RO", "/etc is /etc, which is never mounted", "/etc"),
                ("/proc", "RO", "/proc is /proc, which is never mounted", "/proc"),
                (tree + "/other", "RO", "is outside the ro and rw prefixes of principal ocpsp-a",
                 "a path outside the allowed prefixes"),
                (tree + "/ro/data", "RW", "is under a read-only prefix of principal ocpsp-a",
                 "RW under an ro prefix")]:
            refused(tap, submit(a, ctr(mounts=mount(host, mode))), 403,
                    "container.mounts[0].host: " + host, "%s is refused (%s)" % (what, host))
            refused(tap, submit(a, ctr(mounts=mount(host, mode))), 403, words, "... " + words)
        refused(tap, submit(adm, ctr(mounts=mount(d.data_dir))), 403,
                "is in the proxy's data directory", "the data dir, even for an admin")
        refused(tap, submit(adm, ctr(mounts=mount("/etc"))), 403, "never mounted",
                "/etc, even for an admin")
        # The rest of the never-list, for the admin (held to no prefixes),
        # where the paths exist on this host.
        for host in ("/", "/sys", "/dev", "/boot", "/root", "/run", "/var/run", "/var/lib/docker"):
            if os.path.exists(host):
                refused(tap, submit(adm, ctr(mounts=mount(host))), 403, "which is never mounted",
                        "%s, even for an admin" % host)

        if not up:
            for what in ("an allowed image with an allowed mount runs", "port in range",
                         "the principal's port address", "a symlink swapped in while queued"):
                tap.skip(what, "dockerd does not answer on /var/run/docker.sock")
            return
        r = submit(a, ctr(image="127.0.0.1:5000/ocps-test/busybox:1"))
        tap.eq(r.status, 200, "an image by its registry's pattern: accepted")
        if r.status == 200:
            d.wait(r.json()["id"])  # pull: never, and it may not be here: it need not run
        r = submit(a, ctr(cmd="sleep 60", ports=[{"host": 20005, "container": 80}]))
        tap.eq(r.status, 200, "a host port in the range: accepted")
        if r.status == 200:
            tid = r.json()["id"]
            st = d.wait(tid, codes=("RUNNING", "EXECUTOR_ERROR", "SYSTEM_ERROR"), timeout=120)
            info = engine_get("/containers/ocps-%s/json" % tid) or {}
            bound = (info.get("HostConfig", {}).get("PortBindings") or {}).get("80/tcp", [{}])
            tap.ok(bound[0].get("HostIp") == "127.0.0.2",
                   "its port is bound on the principal's ports.address", (st, info.get("HostConfig")))
            delete(a, tid)
            d.wait(tid)

        r = submit(a, ctr(cmd="cat /x/file", mounts=mount(tree + "/ro/data")))
        tid = r.json()["id"] if r.status == 200 else None
        st = d.wait(tid, timeout=120) if tid else None
        out = a.request("GET", "/v1/jobproxy/logs/%s" % tid).text if tid else None
        tap.ok(st and st["code"] == "COMPLETE" and out == "mounted\n",
               "an allowed mount under the ro prefix is mounted", (st, out))

        # Held QUEUED behind a blocker, its mount swapped for a symlink to
        # /etc: at start the path resolves elsewhere, and nothing is mounted.
        r = submit(root, {"user": "nobody", "cores": 1, "cmd": "sleep 300"})
        blocker = r.json()["id"] if r.status == 200 else None
        d.wait(blocker, codes=("RUNNING",))
        swap = tree + "/rw/swap"
        r = submit(a, dict(ctr(cmd="cat /x/passwd /x/file", mounts=mount(swap)), cores=1))
        tid = r.json()["id"] if r.status == 200 else None
        tap.ok(tid and state(a, tid)["code"] == "QUEUED", "a task with a good mount waits QUEUED", r)
        t = a.request("GET", "/v1/jobproxy/task/" + tid).json() if tid else {}
        tap.eq(t.get("container", {}).get("mounts", [{}])[0].get("host"), swap,
               "its stored mount is the path resolved")
        shutil.rmtree(swap)
        os.symlink("/etc", swap)
        tap.eq(delete(root, blocker), 204, "the blocker goes")
        st = d.wait(tid, timeout=120) if tid else None
        out = a.request("GET", "/v1/jobproxy/logs/%s" % tid).text if tid else ""
        tap.ok(st and st["code"] == "EXECUTOR_ERROR" and
               "container.mounts[0].host: %s now resolves to /etc" % swap in (st["reason"] or ""),
               "the swapped symlink is refused at start, saying why", st)
        tap.ok("root:" not in (out or ""), "and the container never saw /etc", out)
        d.wait(blocker)


def main():
    require_root()
    make_accounts()
    try:
        ocps.main(t_accounts, t_tokens, t_groups, t_quotas, t_containers)
    finally:
        cleanup_accounts()


if __name__ == "__main__":
    main()
