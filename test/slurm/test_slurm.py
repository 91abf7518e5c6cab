#!/usr/bin/env python3
"""The Slurm backend through the real daemon against the one-node test
cluster (test/slurm/setup.sh; its env file, $OCPS_SLURM_STATE/env, is how
this finds it, and without it every cluster test is a real skip). Each
mapping is checked twice: in the job Slurm holds (scontrol show job) and
by what the job writes. The routing checks need no cluster.

slurmctld is stopped and started again once, by its pidfile in the state
dir, the way setup.sh starts it; it is always started again."""

import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

import ocps
from ocps import Daemon

STATE = os.environ.get("OCPS_SLURM_STATE", "/tmp/ocps-slurm")
USER = "ocpstest"
USER2 = "ocpstest2"


def cluster_env():
    try:
        with open(os.path.join(STATE, "env")) as f:
            env = dict(l.strip().split("=", 1) for l in f if "=" in l)
    except OSError:
        return None
    return env if os.path.exists(env.get("OCPS_SLURM_SOCKET", "")) else None


ENV = cluster_env()


def scontrol(*args):
    p = subprocess.run(["scontrol"] + list(args), capture_output=True, text=True,
                       env=dict(os.environ, SLURM_CONF=ENV["SLURM_CONF"]))
    return p.stdout if p.returncode == 0 else None


def job_of(tid):
    """The Slurm job whose comment is the task id, as scontrol's key=value fields."""
    out = scontrol("show", "job", "-o") or ""
    for line in out.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if fields.get("Comment") == tid:
            return fields
    return None


def jobs_of(tid):
    out = scontrol("show", "job", "-o") or ""
    return [l for l in out.splitlines() if ("Comment=%s " % tid) in l + " "]


def config(out_dir, extra=""):
    return ("cmd_backend: slurm\nkill_grace: 3\n"
            "capacity: {cores: 1, memory: 1G}\n"
            "principals:\n  %s: {run_as: [%s], quota: {cores: 1}}\n"
            % (USER2, USER2) +
            "slurm: {socket: %s, jwt_key: %s, output_dir: %s}\n%s"
            % (ENV["OCPS_SLURM_SOCKET"], ENV["OCPS_SLURM_JWT_KEY"], out_dir, extra))


# ---- routing, no cluster needed ----

def routing(tap):
    ocps.require_root()
    ocps.ensure_user(USER)
    with ocps.serving(tap, Daemon(), "no slurm section") as d:
        r = d.submit({"user": USER, "cmd": "true", "backend": "slurm"})
        tap.ok(r.status == 400 and "backend: slurm is not configured" in r.text,
               "backend slurm without a slurm section: 400 naming it", repr(r))
        r = d.submit({"user": USER, "cmd": "true", "backend": "docker"})
        tap.ok(r.status == 400 and "backend: docker runs container tasks only" in r.text,
               "a command asking for docker: 400", repr(r))
        r = d.submit({"user": USER, "container": {"image": "x"}, "backend": "process"})
        tap.ok(r.status == 400 and "a container task runs on docker" in r.text,
               "a container asking for process: 400", repr(r))
        r = d.submit({"user": USER, "cmd": "true", "backend": "pbs"})
        tap.ok(r.status == 400 and "backend: must be process, docker or slurm" in r.text,
               "an unknown backend: 400", repr(r))
        r = d.submit("user: %s\ncmd: 'true'\nbackend: slurm\n" % USER, "application/yaml")
        tap.ok(r.status == 400 and "backend: slurm is not configured" in r.text,
               "the same in YAML", repr(r))
        tid = d.submit_id({"user": USER, "cmd": "true", "backend": "process"})
        st = d.wait(tid)
        tap.ok(st and st["code"] == "COMPLETE" and st["backend"] == "process",
               "backend process runs on process", repr(st))

    # A daemon told to send commands to a backend it does not run does not start.
    tmp = tempfile.mkdtemp(prefix="ocps-it-")
    try:
        path = os.path.join(tmp, "config.yaml")
        with open(path, "w") as f:
            f.write("cmd_backend: slurm\n")
        p = subprocess.run([ocps.DAEMON, "--listen", "127.0.0.1:%d" % ocps.free_port(),
                            "--data-dir", tmp, "--config", path],
                           capture_output=True, text=True, timeout=30)
        tap.ok(p.returncode != 0 and "cmd_backend: slurm, but that backend is not enabled"
               in p.stderr, "cmd_backend slurm without a slurm section: the daemon refuses",
               p.stderr[-2000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- against the cluster ----

def t_mapping(tap, d, ctx):
    """Every field, in the job Slurm holds and in what it writes. The test
    cluster is shared: a job of 2 CPUs may wait long for the node, so the
    one with every limit is inspected and cancelled, and one of 1 CPU runs."""
    work = ctx["shared"]
    tid = d.submit_id({
        "user": USER, "name": "map-test", "cmd": ["sleep", "300"], "workdir": work,
        "cores": 2, "memory": "64M", "walltime": "90s", "tags": {"slurm.partition": "debug"}})
    job = ocps.until(lambda: job_of(tid), 30, 0.2)
    tap.ok(job is not None, "its job carries the task id as its comment", tid)
    job = job or {}
    uid = pwd.getpwnam(USER).pw_uid
    tap.eq(job.get("JobName"), "map-test", "name -> the job's name")
    tap.eq(job.get("UserId"), "%s(%d)" % (USER, uid), "user -> the job's user")
    tap.eq(job.get("Partition"), "debug", "tag slurm.partition -> partition")
    tap.eq(job.get("WorkDir"), work, "workdir -> current_working_directory")
    tap.eq(job.get("NumCPUs"), "2", "cores -> cpus_per_task")
    tap.eq(job.get("MinMemoryNode"), "64M", "memory -> memory_per_node in MiB")
    tap.eq(job.get("TimeLimit"), "00:02:00", "walltime 90 s -> 2 minutes, rounded up")
    out_path = os.path.join(ctx["out"], tid, "stdout")
    tap.eq(job.get("StdOut"), out_path, "stdout -> a file under slurm.output_dir")
    tap.eq(d.state(tid)["stdout"], out_path, "the task's record names the same file")
    d.request("DELETE", "/v1/jobproxy/delete/" + tid)
    st = d.wait(tid, timeout=60)
    tap.ok(st and st["code"] == "CANCELED", "cancelled, wherever it was", repr(st))

    tid = d.submit_id({
        "user": USER, "cmd": "id -un; echo \"$GREETING\"; pwd; ulimit -t; echo oops >&2",
        "env": {"GREETING": "hi 'there' %j"}, "workdir": work, "cputime": "30s"})
    st = d.wait(tid, timeout=180)
    tap.ok(st and st["code"] == "COMPLETE" and st["backend"] == "slurm",
           "a command runs on slurm (cmd_backend) and completes", repr(st))
    text = d.output(tid)
    tap.eq(text, "%s\nhi 'there' %%j\n%s\n30\n" % (USER, work),
           "it ran as its user, with its env (quoted, %% kept), workdir and cputime ulimit")
    tap.eq(d.output(tid, "stderr"), "oops\n", "its stderr, read through the logs endpoint")
    out_path = os.path.join(ctx["out"], tid, "stdout")
    s = os.stat(out_path) if os.path.exists(out_path) else None
    tap.ok(s and s.st_uid == uid and os.stat(os.path.dirname(out_path)).st_uid == uid,
           "the files and their directory are the task's user's", repr(s))


def t_array(tap, d, ctx):
    tid = d.submit_id({"user": USER, "cmd": ["printf", "%s|", "a b", "it's", "$HOME", ";x"]})
    st = d.wait(tid, timeout=180)
    tap.ok(st and st["code"] == "COMPLETE", "an argument vector runs", repr(st))
    tap.eq(d.output(tid), "a b|it's|$HOME|;x|", "each word arrives as it was, unexpanded")
    out_dir = os.path.join(ctx["out"], tid)
    tap.ok(os.path.isdir(out_dir), "its output directory is there while the task is kept")
    r = d.request("DELETE", "/v1/jobproxy/delete/" + tid)
    tap.ok(r.status in (200, 204) and not os.path.exists(out_dir),
           "deleting the ended task removes its output directory", repr(r))


def t_exit(tap, d, ctx):
    tid = d.submit_id({"user": USER, "cmd": "exit 3"})
    st = d.wait(tid, timeout=180)
    tap.ok(st and st["code"] == "EXECUTOR_ERROR" and st["exit_code"] == 3 and
           st["reason"] == "exited with status 3", "exit 3: EXECUTOR_ERROR with its status",
           repr(st))


def t_memory(tap, d, ctx):
    tid = d.submit_id({"user": USER, "memory": "32M", "cmd": "head -c 200m /dev/zero | tail"})
    st = d.wait(tid, timeout=180)
    tap.ok(st and st["code"] == "EXECUTOR_ERROR" and
           st["reason"] == "killed: memory limit 32 MiB exceeded (OOM)",
           "over its memory: Slurm's cgroup kills it, the memory reason", repr(st))


def t_cputime(tap, d, ctx):
    tid = d.submit_id({"user": USER, "cputime": "1s", "cmd": ["sh", "-c", "while :; do :; done"]})
    st = d.wait(tid, timeout=180)
    tap.ok(st and st["code"] == "EXECUTOR_ERROR" and
           st["reason"] == "killed: cputime limit 1 s exceeded", "cputime: the cputime reason",
           repr(st))


def t_refused(tap, d, ctx):
    tid = d.submit_id({"user": USER, "cmd": "true", "tags": {"slurm.partition": "nope"}})
    st = d.wait(tid, timeout=60)
    tap.ok(st and st["code"] == "EXECUTOR_ERROR" and
           "Slurm refused the job: Invalid partition name specified" in (st["reason"] or ""),
           "a partition Slurm does not have: EXECUTOR_ERROR with Slurm's words", repr(st))


def t_capacity(tap, d, ctx):
    """The host (capacity 1 core) does not bound Slurm's tasks; process's it does."""
    r = d.submit({"user": USER, "cmd": "true", "cores": 2, "backend": "process"})
    tap.ok(r.status == 400 and "exceeds the host's capacity" in r.text,
           "2 cores on process: 400 (capacity 1)", repr(r))
    # The node has 2 CPUs: Slurm queues some of three at once.
    ids = [d.submit_id({"user": USER, "cmd": "sleep 3", "cores": 1}) for _ in range(3)]
    tap.ok(ocps.until(lambda: all(d.state(i)["description"] != "waiting to be handed to its "
                                  "backend's own queue" for i in ids), 30),
           "three 1-core Slurm tasks all leave the proxy's queue on a 1-core host",
           repr([d.state(i) for i in ids]))
    # Slurm gives a reason once its scheduler has looked at the job.
    queued = ocps.until(lambda: [st for st in map(d.state, ids) if st["code"] == "QUEUED" and
                                 st["description"].startswith("queued in Slurm: ")], 30, 0.1)
    tap.ok(queued and re.fullmatch(r"queued in Slurm: (Resources|Priority) \(job \d+\)",
                                   queued[0]["description"]),
           "a job Slurm holds PENDING is QUEUED, with Slurm's reason", repr(queued))
    for i in ids:
        st = d.wait(i, timeout=180)
        tap.ok(st and st["code"] == "COMPLETE", "and each then runs and completes", repr(st))


def token_for(d, principal):
    p = subprocess.run([ocps.DAEMON, "token", "create", "--principal", principal,
                        "--data-dir", d.data_dir], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("token create: %s" % p.stderr)
    return p.stdout.strip()


def t_quota(tap, d, ctx):
    """The host's capacity does not apply to Slurm's tasks; the principal's quotas do."""
    tok = token_for(d, USER2)
    sub = lambda t: d.request("POST", "/v1/jobproxy/submit", t, token=tok)
    r = sub({"user": USER2, "cmd": "sleep 30", "cores": 1})
    tap.ok(r.status == 200, "principal %s's first 1-core task (quota: 1 core)" % USER2, repr(r))
    first = r.json()["id"] if r.status == 200 else None
    r = sub({"user": USER2, "cmd": "true", "cores": 1})
    tap.ok(r.status == 429 and "principals.%s.quota.cores" % USER2 in r.text,
           "its second, while the first is active: 429, its cores quota", repr(r))
    if first:
        d.request("DELETE", "/v1/jobproxy/delete/" + first)
        st = d.wait(first, ("CANCELED", "EXECUTOR_ERROR", "SYSTEM_ERROR", "COMPLETE"), 60)
        tap.ok(st and st["code"] == "CANCELED", "cancelled, it gives its quota back", repr(st))
        r = sub({"user": USER2, "cmd": "true", "cores": 1})
        tap.ok(r.status == 200, "then another is taken", repr(r))
        if r.status == 200:
            d.wait(r.json()["id"], timeout=180)


def t_second_account(tap, d, ctx):
    tid = d.submit_id({"user": USER2, "cmd": "id -un"})
    st = d.wait(tid, timeout=180)
    tap.ok(st and st["code"] == "COMPLETE", "a task of a second account completes", repr(st))
    tap.eq(d.output(tid), USER2 + "\n", "it ran as that account")
    job = job_of(tid) or {}
    tap.ok(job.get("UserId", "").startswith(USER2 + "("), "Slurm's job is that account's",
           repr(job.get("UserId")))


def t_cancel(tap, d, ctx):
    tid = d.submit_id({"user": USER, "cmd": ["sleep", "300"]})
    tap.ok(ocps.until(lambda: d.state(tid)["code"] == "RUNNING", 180), "a long job runs",
           repr(d.state(tid)))
    r = d.request("DELETE", "/v1/jobproxy/delete/" + tid)
    tap.ok(r.status in (200, 202, 204), "cancel accepted", repr(r))
    st = d.wait(tid, ("CANCELED", "EXECUTOR_ERROR", "SYSTEM_ERROR", "COMPLETE"), timeout=60)
    tap.ok(st and st["code"] == "CANCELED" and st["reason"] == "cancelled by request",
           "it ends CANCELED", repr(st))
    job = job_of(tid) or {}
    tap.ok(job.get("JobState") in ("CANCELLED", "FAILED", "COMPLETING"),
           "and Slurm's job is over", repr(job.get("JobState")))


def t_follow(tap, d, ctx):
    tid = d.submit_id({"user": USER, "cmd": "for i in 1 2 3; do echo line $i; sleep 1; done"})
    r = d.request("GET", "/v1/jobproxy/logs/%s?follow=1" % tid, timeout=240)
    tap.ok(r.status == 200 and r.text == "line 1\nline 2\nline 3\n",
           "follow reads the job's stdout until the task ends", repr(r))


def t_ready(tap, d, ctx):
    r = d.request("GET", "/readyz")
    tap.ok(r.status == 200, "/readyz: ready while slurmrestd and slurmctld answer", repr(r))


def cluster_block(tap):
    if ENV is None:
        tap.skip("slurm backend through the daemon",
                 "no test cluster: run test/slurm/setup.sh as root (%s/env)" % STATE)
        return
    ocps.require_root()
    ocps.ensure_user(USER)
    ocps.ensure_user(USER2)
    top = tempfile.mkdtemp(prefix="ocps-slurm-it-")
    os.chmod(top, 0o755)
    shared = os.path.join(top, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    ctx = {"out": os.path.join(top, "out"), "shared": shared}
    try:
        with ocps.serving(tap, Daemon(config=config(ctx["out"])), "slurm") as d:
            try:
                for t in (t_ready, t_mapping, t_array, t_exit, t_memory, t_cputime, t_refused,
                          t_capacity, t_quota, t_second_account, t_cancel, t_follow):
                    try:
                        t(tap, d, ctx)
                    except Exception as e:
                        import traceback
                        tap.ok(False, "%s raised %s" % (t.__name__, e), traceback.format_exc())
                restart(tap, d, ctx)
                ctld_down(tap, d, ctx)
                # Last: it holds a CPU of the (shared) node for 60-90 s.
                wall = d.submit_id({"user": USER, "walltime": "1m", "cmd": ["sleep", "300"]})
                st = d.wait(wall, timeout=240)
                tap.ok(st and st["code"] == "EXECUTOR_ERROR" and
                       st["reason"] == "killed: walltime limit 60 s exceeded",
                       "walltime 1 minute: Slurm ends it (TimeLimit), the walltime reason", repr(st))
            finally:
                cancel_leftovers(d)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def cancel_leftovers(d):
    """The cluster is shared: no job of this daemon's tasks outlives the test
    (one left pending would hold up every later job)."""
    db = sqlite3.connect(os.path.join(d.data_dir, "ocps-proxy.db"))
    ids = {row[0] for row in db.execute("SELECT id FROM tasks")}
    db.close()
    out = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True,
                         env=dict(os.environ, SLURM_CONF=ENV["SLURM_CONF"])).stdout
    left = [l.split()[0] for l in out.splitlines() if len(l.split()) == 2 and l.split()[1] in ids]
    if left:
        subprocess.run(["scancel"] + left, env=dict(os.environ, SLURM_CONF=ENV["SLURM_CONF"]))


def runs_of(path):
    try:
        with open(path) as f:
            return [l.strip() for l in f if l.strip()]
    except FileNotFoundError:
        return []


def restart(tap, d, ctx):
    """kill -9 with 200 tasks pending and running, a task whose job id was
    never recorded, then a restart: every task runs exactly once and ends
    with its real outcome; the 200 drain."""
    runs = os.path.join(ctx["shared"], "runs")
    cmd = "echo $OCPS_TASK_ID >> %s" % runs
    ids = [d.submit_id({"user": USER, "cmd": cmd}) for _ in range(200)]
    lost = d.submit_id({"user": USER, "cmd": cmd + "; exit 7"})
    tap.ok(ocps.until(lambda: job_of(lost), 60, 0.2), "a task handed to Slurm",
           repr(d.state(lost)))
    tap.ok(ocps.until(lambda: len(runs_of(runs)) >= 3, 180), "some of the 200 have run")
    d.kill9()
    # As if the proxy had died between the submit and the record of the job id.
    db = sqlite3.connect(os.path.join(d.data_dir, "ocps-proxy.db"))
    db.execute("UPDATE tasks SET handle = NULL, state = 'QUEUED' WHERE id = ?", (lost,))
    db.commit()
    db.close()
    d.start()
    st = d.wait(lost, timeout=120)
    tap.ok(st and st["code"] == "EXECUTOR_ERROR" and st["exit_code"] == 7,
           "the task without a recorded job id is found by its comment and ends as it did",
           repr(st))
    tap.eq(len(jobs_of(lost)), 1, "it was submitted once")
    t0 = time.monotonic()
    ended = ocps.until(lambda: all(d.state(i)["code"] == "COMPLETE" for i in ids), 240, 1)
    tap.ok(ended, "the 200 tasks drain, all COMPLETE (%.0f s)" % (time.monotonic() - t0),
           repr([d.state(i) for i in ids if d.state(i)["code"] != "COMPLETE"][:3]))
    got = runs_of(runs)
    tap.ok(sorted(got) == sorted(ids + [lost]),
           "each ran exactly once across the kill -9 (%d runs for %d tasks)" % (len(got),
                                                                                len(ids) + 1),
           repr([i for i in set(got) if got.count(i) > 1][:5]))


def ctld_pid():
    try:
        with open(os.path.join(STATE, "slurmctld.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_ctld():
    log = open(os.path.join(STATE, "log", "slurmctld.out"), "ab")
    p = subprocess.Popen(["slurmctld", "-D", "-i", "-f", ENV["SLURM_CONF"]], stdout=log,
                         stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(STATE, "slurmctld.pid"), "w") as f:
        f.write("%d\n" % p.pid)
    up = ocps.until(lambda: scontrol("ping") and "UP" in scontrol("ping"), 30, 0.2)
    # A batch job that ended while slurmctld was away drains the node
    # ("batch job complete failure"): the shared cluster is left as found.
    ocps.until(lambda: "DRAIN" in (scontrol("show", "node", "-o") or "") or None, 5, 0.2)
    for line in (scontrol("show", "node", "-o") or "").splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "DRAIN" in fields.get("State", "") and "batch job complete" in line:
            scontrol("update", "nodename=" + fields["NodeName"], "state=resume")
    return up


def ctld_down(tap, d, ctx):
    """slurmctld stopped: a running task goes on and is reported when it is
    back; a submit meanwhile is 502 and /readyz is 503."""
    tid = d.submit_id({"user": USER, "cmd": "sleep 6; echo done"})
    tap.ok(ocps.until(lambda: d.state(tid)["code"] == "RUNNING", 180), "a task runs",
           repr(d.state(tid)))
    pid = ctld_pid()
    if not pid:
        tap.skip("slurmctld stopped and started", "no slurmctld pid in %s" % STATE)
        return
    # A second daemon that queues while the cluster is away (slurm.when_down: queue).
    q = Daemon(config=config(ctx["out"], "").replace("output_dir:",
                                                     "when_down: queue, output_dir:"))
    q.start()
    os.kill(pid, signal.SIGTERM)
    try:
        tap.ok(ocps.until(lambda: not os.path.exists("/proc/%d" % pid), 30), "slurmctld stops")
        r = d.request("GET", "/readyz")
        tap.ok(r.status == 503 and "slurm" in r.text, "/readyz: 503 naming slurm", repr(r))
        r = d.submit({"user": USER, "cmd": "true"})
        tap.ok(r.status == 502 and "slurm backend is unavailable" in r.text,
               "a submit while slurmctld is down: 502", repr(r))
        r = q.submit({"user": USER, "cmd": "echo queued"})
        tap.ok(r.status == 200, "with when_down: queue, the submit is taken", repr(r))
        queued = r.json()["id"] if r.status == 200 else None
        out = os.path.join(ctx["out"], tid, "stdout")
        tap.ok(ocps.until(lambda: read(out) == "done\n", 60, 0.2),
               "the job goes on without slurmctld (its output is written)")
        tap.eq(d.state(tid)["code"], "RUNNING", "its task is still RUNNING: nothing known yet")
    finally:
        up = start_ctld()
    tap.ok(up, "slurmctld starts again")
    st = d.wait(tid, timeout=180)
    tap.ok(st and st["code"] == "COMPLETE", "the task's real end is reported once it is back",
           repr(st))
    tap.eq(d.output(tid), "done\n", "its output is there")
    try:
        st = q.wait(queued, timeout=180) if queued else None
        tap.ok(st and st["code"] == "COMPLETE" and q.output(queued) == "queued\n",
               "the task taken while it was down runs once it is back", repr(st) + q.logs())
        tap.eq(len(jobs_of(queued)) if queued else 0, 1, "submitted once")
    finally:
        q.cleanup()


def token_file(tap):
    """slurm.token_file: a token the cluster's admin made with scontrol
    token, instead of the key; read again when the file is rewritten."""
    if ENV is None:
        tap.skip("slurm token_file", "no test cluster (%s/env)" % STATE)
        return
    ocps.require_root()
    ocps.ensure_user(USER)
    top = tempfile.mkdtemp(prefix="ocps-slurm-tok-")
    os.chmod(top, 0o755)
    try:
        tok = os.path.join(top, "token")
        made = scontrol("token", "username=root", "lifespan=900")
        tap.ok(made and made.startswith("SLURM_JWT="), "scontrol makes a token", repr(made))
        if not made:
            return
        fd = os.open(tok, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, made.encode())
        os.close(fd)
        cfg = ("cmd_backend: slurm\nslurm: {socket: %s, token_file: %s, output_dir: %s}\n"
               % (ENV["OCPS_SLURM_SOCKET"], tok, os.path.join(top, "out")))

        # Both a key and a token file: which would it use? Refused.
        both = cfg.replace("token_file:", "jwt_key: %s, token_file:" % ENV["OCPS_SLURM_JWT_KEY"])
        for what, text, want in (
                ("both jwt_key and token_file", both, "give either jwt_key"),
                ("a token file others may read", None, "lets others read it")):
            if text is None:
                os.chmod(tok, 0o644)
                text = cfg
            path = os.path.join(top, "bad.yaml")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([ocps.DAEMON, "--listen", "127.0.0.1:%d" % ocps.free_port(),
                                "--data-dir", os.path.join(top, "bad-data"), "--config", path],
                               capture_output=True, text=True, timeout=30)
            tap.ok(p.returncode != 0 and want in p.stderr,
                   "%s: the daemon does not start, saying why" % what, p.stderr[-1500:])
        os.chmod(tok, 0o600)

        with ocps.serving(tap, Daemon(config=cfg), "slurm token_file") as d:
            tid = d.submit_id({"user": USER, "cmd": "id -un"})
            st = d.wait(tid, timeout=120)
            tap.ok(st and st["code"] == "COMPLETE", "a task runs with the given token", repr(st))
            # A token that is not valid: slurmrestd refuses; the daemon says
            # the cluster is not reachable rather than losing the task.
            with open(tok, "w") as f:
                f.write("SLURM_JWT=" + made.strip().split("=", 1)[1][:-8] + "AAAAAAAA\n")
            r = d.request("GET", "/readyz")
            tap.ok(r.status == 503, "a rewritten bad token is used: /readyz 503", repr(r))
            # The admin writes a good one: it is read again, no restart.
            with open(tok, "w") as f:
                f.write(scontrol("token", "username=root", "lifespan=900"))
            r = d.request("GET", "/readyz")
            tap.ok(r.status == 200, "a rewritten good token is read again: /readyz 200", repr(r))
            tid = d.submit_id({"user": USER, "cmd": "true"})
            st = d.wait(tid, timeout=120)
            tap.ok(st and st["code"] == "COMPLETE", "and tasks run again", repr(st))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def main():
    ocps.main(routing, cluster_block, token_file)


if __name__ == "__main__":
    main()
