#!/usr/bin/env python3
"""Fairness and retention, against the real daemon over real HTTP: two
principals are two unix-socket peers (accounts made here, removed after),
each request sent by a child process that has dropped to the account's uid,
so the kernel, not the request, says who calls.

- B's first task starts while A has 1,000 queued (one core);
- a principal's own tasks start by priority, then in submission order,
  also after a kill -9 of the daemon (recovery rebuilds the queues);
- a big task is overtaken by small ones only up to its bound, then the
  capacity is reserved for it;
- ended tasks are removed after the retention, with their directory;
  active ones stay."""

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import ocps
from ocps import Daemon, serving

ACCOUNTS = ("ocpsfaira", "ocpsfairb")
ENDED = ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED")
made = []


def make_accounts():
    for name in ACCOUNTS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
            made.append(name)
    return [pwd.getpwnam(n) for n in ACCOUNTS]


def remove_accounts():
    for name in made:
        subprocess.run(["userdel", name], check=False)


class Peer:
    """One account calling the daemon's unix socket: its requests go over one
    connection from a child process running as that account's uid."""

    def __init__(self, d, sock, account):
        self.d, self.sock, self.account = d, sock, account

    def calls(self, reqs, record=0):
        """[(method, path, body)] -> [ocps.Response]; the first `record` go to
        the contract check like the harness's own exchanges."""
        got = ocps.unix_requests_as(self.sock, self.account.pw_uid, reqs)
        resps = []
        for i, ((method, path, body), resp) in enumerate(zip(reqs, got)):
            if i < record:
                self.d.record(method, path,
                              {"Content-Type": "application/json"} if body is not None else {},
                              json.dumps(body) if body is not None else None, resp)
            resps.append(resp)
        return resps

    def call(self, method, path, body=None, record=True):
        return self.calls([(method, path, body)], record=1 if record else 0)[0]

    def submit(self, task):
        task = dict(task, user=self.account.pw_name)
        r = self.call("POST", "/v1/jobproxy/submit", task)
        if r.status != 200:
            raise RuntimeError("submit as %s failed: %r" % (self.account.pw_name, r))
        return r.json()["id"]

    def submit_many(self, tasks, record=2):
        bodies = [dict(t, user=self.account.pw_name) for t in tasks]
        resps = self.calls([("POST", "/v1/jobproxy/submit", b) for b in bodies], record=record)
        bad = [r for r in resps if r.status != 200]
        if bad:
            raise RuntimeError("%d submits as %s failed: %r" % (len(bad), self.account.pw_name,
                                                               bad[0]))
        return [r.json()["id"] for r in resps]

    def state(self, tid):
        r = self.call("GET", "/v1/jobproxy/state/" + tid, record=False)
        return r.json() if r.status == 200 else None

    def cancel(self, tid):
        return self.call("DELETE", "/v1/jobproxy/delete/" + tid).status

    def cancel_all(self):
        """Cancels what is still active: tasks outlive the daemon by design,
        and a test that failed half way must leave nothing running."""
        active = [i for i, s in self.states().items() if s["code"] not in ENDED]
        self.calls([("DELETE", "/v1/jobproxy/delete/" + i, None) for i in active])
        deadline = time.monotonic() + 60
        while active and time.monotonic() < deadline:
            time.sleep(0.1)
            states = self.states()
            active = [i for i in active if i in states and states[i]["code"] not in ENDED]

    def states(self):
        """Every task this account sees, by id (one page of up to 2048)."""
        r = self.call("GET", "/v1/jobproxy/state?limit=2048", record=False)
        return {s["id"]: s for s in r.json()["state"]}

    def wait(self, tid, codes=ENDED, timeout=120, gone=False):
        """The task's state once its code is one of codes (the harness's wait,
        as this account); with gone, None once it is no more (404), else its
        last state."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        st = None
        while time.monotonic() < deadline:
            st = self.state(tid)
            if (st is None) if gone else (st and st["code"] in codes):
                return st
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        return st


@contextlib.contextmanager
def cleanup(*peers):
    """The peers, whose active tasks are cancelled at the end, passed or not."""
    try:
        yield peers
    finally:
        for p in peers:
            if p.d.proc and p.d.proc.poll() is None:
                p.cancel_all()


def unix_daemon(config):
    d = Daemon(config=config)
    sock = os.path.join(d.data_dir, "api.sock")
    d.extra_args = ["--listen", "unix:" + sock]
    os.chmod(d.data_dir, 0o755)  # the peers must reach the socket
    return d, sock


def t_fair_share(tap):
    a_acct, b_acct = make_accounts()
    d, sock = unix_daemon("capacity: {cores: 1, memory: 8G}\n")
    with serving(tap, d, "fair share") as d, cleanup(Peer(d, sock, a_acct),
                                                      Peer(d, sock, b_acct)) as (a, b):
        hold = a.submit({"cmd": "sleep 300", "cores": 1})
        tap.eq(a.wait(hold, ("RUNNING",))["code"], "RUNNING", "A's first task holds the one core")
        queued = a.submit_many([{"cmd": "true", "cores": 1, "name": "a-%d" % i}
                                for i in range(1000)])
        before = a.states()
        n_queued = sum(1 for i in queued if before[i]["code"] == "QUEUED")
        tap.eq(n_queued, 1000, "A has 1,000 short tasks queued")
        desc = before[queued[1]]["description"]
        tap.ok(desc.startswith("waiting behind earlier tasks of ocpsfaira with priority 0"),
               "A's second queued task waits behind A's earlier ones", desc)

        first_b = b.submit({"cmd": "echo b-ran", "cores": 1})
        st = b.state(first_b)
        tap.ok(st["code"] == "QUEUED" and st["description"].startswith("waiting for capacity"),
               "B's first task waits for capacity, not behind A's queue", st["description"])
        tap.eq(a.cancel(hold), 204, "A's running task is cancelled: the core is free")
        st = b.wait(first_b)
        tap.ok(st["code"] == "COMPLETE", "B's first task runs", st)
        after = a.states()
        early = [i for i in queued if after[i]["started"] and after[i]["started"] < st["started"]]
        tap.eq(len(early), 0, "none of A's 1,000 queued tasks started before B's first task")
        tap.diag("%d of A's tasks were still queued when B's had run" %
                 sum(1 for i in queued if after[i]["code"] == "QUEUED"))
        tap.ok(b.calls([("GET", "/v1/jobproxy/logs/%s" % first_b, None)])[0].text == "b-ran\n",
               "and wrote its output")


def t_priority(tap):
    a_acct, _ = make_accounts()
    out_dir = tempfile.mkdtemp(prefix="ocps-fair-")
    os.chmod(out_dir, 0o777)
    order = os.path.join(out_dir, "order")
    d, sock = unix_daemon("capacity: {cores: 1, memory: 8G}\n")
    try:
        with serving(tap, d, "priority") as d, cleanup(Peer(d, sock, a_acct)) as (a,):
            hold = a.submit({"cmd": "sleep 300", "cores": 1})
            a.wait(hold, ("RUNNING",))
            prios = [("p0-first", 0), ("p5-first", 5), ("p-3", -3), ("p5-second", 5),
                     ("p1000", 1000), ("p0-second", None), ("p-1000", "-1000")]
            ids = a.submit_many([dict({"cmd": "echo %s >> %s" % (tag, order), "cores": 1},
                                      **({"priority": p} if p is not None else {}))
                                 for tag, p in prios], record=len(prios))
            r = a.call("GET", "/v1/jobproxy/task/" + ids[2])
            tap.eq((r.status, r.json().get("priority")), (200, -3),
                   "the task keeps its priority in its normalised form")
            r = a.call("GET", "/v1/jobproxy/task/" + ids[5])
            tap.ok(r.status == 200 and "priority" not in r.json(),
                   "a task without one has the default, 0, left out", r)
            r = a.call("POST", "/v1/jobproxy/submit",
                       {"user": a_acct.pw_name, "cmd": "true", "priority": 1001})
            tap.ok(r.status == 400 and "priority: must be an integer between -1000 and 1000" in
                   r.text, "a priority out of range is 400, naming the field", r)
            st = a.state(ids[5])
            tap.ok(st["description"].startswith("waiting behind earlier tasks of ocpsfaira with "
                                                "priority 0 (ocpsfaira has 7 queued, 3 with a "
                                                "higher priority)"),
                   "a queued task says where it stands among its principal's tasks",
                   st["description"])

            # The queues survive a kill -9 in the same order: recovery rebuilds them.
            d.kill9()
            d.start()
            tap.eq(a.state(hold)["code"], "RUNNING", "the running task survived the restart")
            tap.eq(a.cancel(hold), 204, "it is cancelled: the core is free")
            for i in ids:
                a.wait(i)
            got = open(order).read().split()
            tap.eq(got, ["p1000", "p5-first", "p5-second", "p0-first", "p0-second", "p-3",
                         "p-1000"],
                   "a principal's tasks started by priority, then in submission order, "
                   "after a restart too")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def t_backfill_bound(tap):
    a_acct, b_acct = make_accounts()
    d, sock = unix_daemon("capacity: {cores: 2, memory: 8G}\n")
    with serving(tap, d, "backfill bound") as d, cleanup(Peer(d, sock, a_acct),
                                                          Peer(d, sock, b_acct)) as (a, b):
        small = {"cmd": "sleep 300", "cores": 1}
        s1 = b.submit(small)
        b.wait(s1, ("RUNNING",))
        big = a.submit({"cmd": "echo big", "cores": 2})
        s2 = b.submit(small)
        st = b.wait(s2, ("RUNNING",), timeout=60)
        tap.eq(st["code"], "RUNNING", "a small task behind the big one starts in the free core")
        desc = a.state(big)["description"]
        tap.ok("smaller tasks may start first until 1 core more has been released" in desc,
               "the big task says how long it may be overtaken", desc)
        more = b.submit_many([small, small, small])

        tap.eq(b.cancel(s1), 204, "the first small task ends: a core is free again")
        b.wait(s1)
        desc = a.state(big)["description"]
        tap.ok(desc.startswith("waiting for capacity, reserved for it: needs 2 cores"),
               "past its bound, the capacity is reserved for the big task", desc)
        desc = b.state(more[0])["description"]
        tap.ok(desc.startswith("waiting: the capacity is reserved for a task of ocpsfaira"),
               "and the small ones behind say so", desc)
        tap.eq(b.cancel(s2), 204, "the small task that overtook it ends")
        st = a.wait(big)
        tap.ok(st["code"] == "COMPLETE", "the big task ran", st)
        s3 = b.wait(more[0], ("RUNNING",) + ENDED)
        tap.ok(s3["started"] and st["started"] and s3["started"] >= st["started"],
               "no small task started between its bound and its start",
               "big started %s, next small %s" % (st["started"], s3["started"]))


def t_retention(tap):
    a_acct, _ = make_accounts()
    d, sock = unix_daemon("retention: forever\n")
    with serving(tap, d, "retention") as d, cleanup(Peer(d, sock, a_acct)) as (a,):
        old = a.submit({"cmd": "echo old"})
        tap.eq(a.wait(old)["code"], "COMPLETE", "a task ends while the retention is forever")
        old_dir = os.path.join(d.data_dir, "tasks", old)
        tap.ok(os.path.isdir(old_dir), "its directory holds its output")

        # Restarted with a short retention: the sweep finds what ended before.
        d.stop()
        d.config = "retention: 2s\n"
        d.start()
        active = a.submit({"cmd": "sleep 300", "cores": 0.1})
        a.wait(active, ("RUNNING",))
        ended = a.submit({"cmd": "echo bye", "cores": 0.1})
        tap.eq(a.wait(ended)["code"], "COMPLETE", "a task ends")
        ended_dir = os.path.join(d.data_dir, "tasks", ended)
        tap.ok(os.path.isdir(ended_dir), "its directory is there at first")
        tap.eq(a.wait(ended, gone=True, timeout=60), None,
               "after the retention the ended task is gone (404)")
        tap.ok(not os.path.exists(ended_dir), "with its directory")
        tap.eq(a.state(old), None, "the task that ended before the restart is gone too")
        tap.ok(not os.path.exists(old_dir), "with its directory")
        tap.ok("task %s removed: it ended at" % ended in d.logs() and
               "more than the retention of 2s ago" in d.logs(), "the daemon logs what it removed",
               d.logs()[-2000:])
        st = a.state(active)
        tap.ok(st and st["code"] == "RUNNING", "an active task stays", st)
        tap.ok(os.path.isdir(os.path.join(d.data_dir, "tasks", active)), "with its directory")
        tap.eq(a.cancel(active), 204, "cancelled")
        st = a.wait(active)
        tap.eq(st["code"], "CANCELED", "it ended")
        tap.eq(a.wait(active, gone=True, timeout=60), None, "and is removed in its turn")


ocps.require_root()
try:
    ocps.main(t_fair_share, t_priority, t_backfill_bound, t_retention)
finally:
    remove_accounts()
