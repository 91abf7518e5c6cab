#!/usr/bin/env python3
"""The process backend on a pure cgroup v2 kernel (run.sh runs this inside
User-Mode Linux, as root, PID 1's child): limits, OOM, the tree's CPU time,
tree kill, a fork bomb, cleanup, recovery after kill -9, and the delegation
rules of a v2 host, with the daemon placed as a service manager places a
service (its own cgroup under the root, which delegates cpu, memory and
pids to its children, as systemd does with Delegate=yes).

The guest has one slow CPU and slow first-touch page faults: allocations
are small and waits are on events (cgroup files, task states)."""

import os
import subprocess

import ocps

USER = "ocpstest"
CG = "/sys/fs/cgroup"
ENTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "enter-cgroup.sh")
REAL = ocps.DAEMON


def read(path):
    with open(path) as f:
        return f.read().strip()


def keyed(path, key):
    for line in read(path).splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return None


def own_cgroup(pid):
    """The v2 path of a process ("0::/x/y" in /proc/PID/cgroup), or None."""
    try:
        for line in read("/proc/%d/cgroup" % pid).splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return None




def gone(pid):
    """Whether pid has exited (no process or a zombie)."""
    try:
        return read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# The guest has 384 MiB and one CPU; tasks ask for less than the defaults.
CONFIG = "capacity:\n  memory: 8G\n  cores: 4\n"


class Service(ocps.Daemon):
    """A daemon started in a cgroup of its own, as a service manager would
    (enter-cgroup.sh writes its pid to cgroup.procs before the exec)."""

    def __init__(self, cgroup, config="", **kw):
        super().__init__(config=CONFIG + config, **kw)
        self.cgroup = cgroup
        os.makedirs(cgroup, exist_ok=True)

    def start(self):
        os.environ["OCPS_TEST_CGROUP"] = self.cgroup
        os.environ["OCPS_REAL_PROXYD"] = REAL
        ocps.DAEMON = ENTER
        try:
            return super().start()
        finally:
            ocps.DAEMON = REAL

    def task_dir(self, tid, top=None):
        """The task's cgroup directory, wherever below the service (or top) it is."""
        for root, dirs, _ in os.walk(top or self.cgroup):
            if tid in dirs:
                return os.path.join(root, tid)
        return None


def wait_task_cgroup(d, tid):
    return ocps.until(lambda: d.task_dir(tid), timeout=30)


# ---- the daemon's place, found by itself --------------------------------------------------

def t_delegation(tap, d):
    """The service's cgroup holds only the daemon at start: it moves into a
    leaf of its own to give controllers to its task groups (no internal
    processes), and the tasks' parent has them."""
    tap.ok("(v2)" in d.logs(), "the daemon finds cgroup v2 by itself", d.logs())
    own = own_cgroup(d.proc.pid)
    tap.eq(own, d.cgroup[len(CG):] + "/ocps-proxyd", "the daemon moved itself into a leaf")
    tap.eq(read(d.cgroup + "/cgroup.procs"), "", "no process left in the delegated cgroup")
    ctl = read(d.cgroup + "/cgroup.subtree_control").split()
    tap.ok({"cpu", "memory", "pids"} <= set(ctl), "the delegated cgroup gives cpu, memory, pids",
           ctl)
    ctl = read(d.cgroup + "/ocps-proxy/cgroup.subtree_control").split()
    tap.ok({"cpu", "memory", "pids"} <= set(ctl), "the tasks' parent gives cpu, memory, pids", ctl)


# ---- limits -------------------------------------------------------------------------------

def t_memory(tap, d):
    # awk doubles a string until the group's 16 MiB are gone.
    tid = d.submit_id({"user": USER, "memory": "16M",
                       "cmd": ["awk", 'BEGIN { s = "x"; while (1) s = s s }']})
    st = d.wait(tid, timeout=120)
    tap.eq(st["code"], "EXECUTOR_ERROR", "memory hog is EXECUTOR_ERROR")
    tap.ok("memory limit 16 MiB exceeded (OOM)" in (st["description"] or ""),
           "the reason says OOM (memory.events)", st)
    tap.ok(ocps.until(lambda: d.task_dir(tid) is None), "the OOM-killed task's cgroup is removed")


def t_cpu_max(tap, d):
    tid = d.submit_id({"user": USER, "cores": 0.2, "cmd": "while :; do :; done"})
    d.wait(tid, codes=("RUNNING",))
    path = wait_task_cgroup(d, tid)
    if tap.ok(path is not None, "the task's cgroup exists"):
        tap.eq(read(path + "/cpu.max"), "20000 100000", "cpu.max holds 0.2 of a CPU")
        throttled = ocps.until(lambda: keyed(path + "/cpu.stat", "nr_throttled"), timeout=60)
        tap.ok(throttled, "the spinner is throttled (cpu.stat nr_throttled %s)" % throttled)
    tap.eq(d.request("DELETE", "/v1/jobproxy/delete/" + tid).status, 204, "delete is 204")
    tap.eq(d.wait(tid)["code"], "CANCELED", "the spinner is CANCELED")
    tap.ok(ocps.until(lambda: d.task_dir(tid) is None), "its cgroup is removed")


def t_cputime_tree(tap, d):
    """Short-lived children, none near the limit alone (RLIMIT_CPU counts
    one process): only the tree's cpu.stat can see 1 s used."""
    tid = d.submit_id({"user": USER, "cputime": "1s", "walltime": "120s",
                       "cmd": "while :; do sh -c 'i=0; while [ $i -lt 3000 ]; do "
                              "i=$((i+1)); done'; done"})
    st = d.wait(tid, timeout=150)
    tap.eq(st["code"], "EXECUTOR_ERROR", "the tree of short spinners is EXECUTOR_ERROR")
    tap.ok("cputime limit 1 s exceeded" in (st["description"] or ""),
           "the reason is the tree's cputime", st)


def t_fork_bomb(tap, d):
    """pids.max (process.pids_limit: 24) holds a fork bomb; the daemon still
    answers, and delete kills it all."""
    tid = d.submit_id({"user": USER,
                       "cmd": "sleep 1000 & b() { b | b & }; b; wait"})
    d.wait(tid, codes=("RUNNING",))
    path = wait_task_cgroup(d, tid)
    if not tap.ok(path is not None, "the bomb's cgroup exists"):
        return
    tap.eq(read(path + "/pids.max"), "24", "pids.max is the configured limit")
    hit = ocps.until(lambda: keyed(path + "/pids.events", "max"), timeout=60)
    tap.ok(hit, "forks were refused at the limit (pids.events max %s)" % hit)
    cur = int(read(path + "/pids.current"))
    tap.ok(cur <= 24, "the group holds at most 24 processes (%d)" % cur)
    tap.eq(d.request("GET", "/v1/jobproxy/ping").status, 200, "the daemon answers meanwhile")
    tap.eq(d.request("DELETE", "/v1/jobproxy/delete/" + tid).status, 204, "delete is 204")
    tap.eq(d.wait(tid, timeout=60)["code"], "CANCELED", "the bomb is CANCELED")
    tap.ok(ocps.until(lambda: d.task_dir(tid) is None), "its cgroup is removed")


def t_tree_kill(tap, d):
    """setsid and a double fork leave the shell's session and parentage, not
    the cgroup: cgroup.kill takes them all."""
    m1, m2 = "/tmp/ocps-setsid-%d" % os.getpid(), "/tmp/ocps-orphan-%d" % os.getpid()
    tid = d.submit_id({"user": USER,
                       "cmd": "setsid sh -c 'echo $$ > %s.t; mv %s.t %s; exec sleep 1000' & "
                              "sh -c 'sleep 1000 & echo $! > %s.t; mv %s.t %s'; sleep 1000"
                              % (m1, m1, m1, m2, m2, m2)})
    if not tap.ok(ocps.until(lambda: os.path.exists(m1) and os.path.exists(m2)),
                  "the escapees run"):
        return
    pids = [int(read(m1)), int(read(m2))]
    tap.ok(all(not gone(p) for p in pids), "setsid'd and orphaned sleepers are alive")
    tap.eq(d.request("DELETE", "/v1/jobproxy/delete/" + tid).status, 204, "delete is 204")
    tap.eq(d.wait(tid)["code"], "CANCELED", "task CANCELED")
    tap.ok(ocps.until(lambda: all(gone(p) for p in pids)), "both escapees were killed with the tree")
    tap.ok(ocps.until(lambda: d.task_dir(tid) is None), "its cgroup is removed")
    for m in (m1, m2):
        os.unlink(m)


def t_no_leftovers(tap, d):
    """After every task above, no task group is left under the parent."""
    parent = d.cgroup + "/ocps-proxy"
    left = ocps.until(lambda: not [n for n in os.listdir(parent) if os.path.isdir(parent + "/" + n)],
                 timeout=10)
    tap.ok(left, "no task cgroup is left", os.listdir(parent))


def limits(tap):
    with ocps.serving(tap, Service(CG + "/ocps-limits.service",
                                   config="process:\n  pids_limit: 24\n"), "limits") as d:
        ocps.each(tap, d, [t_delegation, t_memory, t_cpu_max, t_cputime_tree, t_fork_bomb,
                           t_tree_kill, t_no_leftovers])


# ---- kill -9 and recovery -----------------------------------------------------------------

def recovery(tap):
    """kill -9 of the daemon with a task running: the shim and the task go
    on; a new daemon, placed where the first one had moved itself (the
    delegated cgroup holds controllers now, so the kernel refuses processes
    there: EBUSY), finds the task, sees it end, and its cgroup goes."""
    svc = CG + "/ocps-recover.service"
    go = "/tmp/ocps-go-%d" % os.getpid()
    with ocps.serving(tap, Service(svc), "recovery") as d:
        tid = d.submit_id({"user": USER,
                           "cmd": "while [ ! -e %s ]; do sleep 0.1; done; echo finished" % go})
        tap.eq(d.wait(tid, codes=("RUNNING",))["code"], "RUNNING", "the task runs")
        path = wait_task_cgroup(d, tid)
        shims = d.shim_pids()
        d.kill9()
        tap.ok(shims and all(not gone(p) for p in shims), "the shim outlives the daemon's kill -9")
        tap.eq(keyed(path + "/cgroup.events", "populated"), 1, "the task runs on in its cgroup")
        try:
            with open(svc + "/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
            placed = "accepted"
        except OSError as e:
            placed = e.strerror
        tap.eq(placed, os.strerror(16), "the kernel refuses processes in the delegated cgroup now")
        d.cgroup = svc + "/ocps-proxyd"
        d.start()
        st = d.state(tid)
        tap.eq(st and st["code"], "RUNNING", "the new daemon finds the task running")
        tap.eq(d.task_dir(tid, svc), path, "the task keeps its cgroup")
        open(go, "w").close()
        st = d.wait(tid)
        os.unlink(go)
        tap.eq((st["code"], st["description"]), ("COMPLETE", st["description"]),
               "the recovered task COMPLETEs")
        tap.eq(d.output(tid), "finished\n", "its output is whole")
        tap.ok(ocps.until(lambda: not os.path.exists(path)), "its cgroup is removed")
        tid2 = d.submit_id({"user": USER, "cmd": "echo $$ > %s; exec sleep 1000" % go})
        tap.eq(d.wait(tid2, codes=("RUNNING",))["code"], "RUNNING", "a new task runs")
        tap.eq(ocps.until(lambda: os.path.exists(go) and read(go) and own_cgroup(int(read(go)))),
               svc[len(CG):] + "/ocps-proxy/" + tid2, "in the tasks' parent the first daemon made")
        d.request("DELETE", "/v1/jobproxy/delete/" + tid2)
        d.wait(tid2)
        tap.eq(own_cgroup(d.proc.pid), svc[len(CG):] + "/ocps-proxyd",
               "the restarted daemon stays in its leaf, not one nested deeper")
    if os.path.exists(go):
        os.unlink(go)


# ---- a host that delegates nothing --------------------------------------------------------

def no_delegation(tap):
    """A service whose parent gives it no controllers: process tasks fail
    with SYSTEM_ERROR saying so, never run unconfined."""
    slice_ = CG + "/nodeleg.slice"
    os.makedirs(slice_, exist_ok=True)
    with ocps.serving(tap, Service(slice_ + "/ocps-nodeleg.service"), "no delegation") as d:
        tid = d.submit_id({"user": USER, "cmd": "echo ran"})
        st = d.wait(tid)
        tap.eq(st["code"], "SYSTEM_ERROR", "a process task is SYSTEM_ERROR")
        desc = st["description"] or ""
        tap.ok("not delegated" in desc and "memory" in desc,
               "the reason says which controllers are not delegated", st)
        tap.eq(d.output(tid) or "", "", "the task did not run")


# ---- the cgroup module alone --------------------------------------------------------------

def module(tap):
    """test/unit/test-cgroup.c, built for the guest beside the daemon: its
    assertions, one for one, on this kernel."""
    exe = os.path.join(os.path.dirname(REAL), "test-cgroup")
    r = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = r.stdout.splitlines()
    for line in lines:
        if line.startswith("ok ") or line.startswith("not ok "):
            tap.ok(line.startswith("ok ") and "# SKIP" not in line,
                   "test-cgroup: " + line.split(" - ", 1)[-1])
    tap.ok(r.returncode == 0 and any(line.startswith("1..") for line in lines),
           "test-cgroup ran to its end (exit %d)" % r.returncode, r.stdout[-3000:])


ocps.require_root()
ocps.main(module, limits, recovery, no_delegation)
