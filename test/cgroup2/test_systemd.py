#!/usr/bin/env python3
"""The daemon as a systemd unit on a pure cgroup v2 kernel (run.sh runs this
inside User-Mode Linux booted with systemd 252, from a oneshot unit): the
unit systemd/ocps-proxyd.service.in (as meson configures it) with Delegate=yes, its tasks in the
unit's delegated subtree, their limits, restarts (clean, after kill -9,
and with a task running: KillMode=process keeps the task, and what systemd
252 does then) and a stop."""

import os
import shutil
import subprocess

import ocps

USER = "ocpstest"
CG = "/sys/fs/cgroup"
UNIT = "ocps-proxyd.service"
SVC = "/system.slice/" + UNIT
PORT = 7777
DATA = "/run/ocps-test"


def sh(*args):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read(path):
    with open(path) as f:
        return f.read().strip()


def own_cgroup(pid):
    for line in read("/proc/%d/cgroup" % pid).splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def main_pid():
    return int(sh("systemctl", "show", "-P", "MainPID", UNIT).stdout.strip() or 0)




def install():
    """The unit as the source tree has it, in systemd's runtime directory,
    with a drop-in for the test's binaries, listener and data dir: nothing
    written outside /run (the root filesystem is a cache runs share)."""
    os.makedirs("/run/ocps/bin", exist_ok=True)
    shutil.copy(ocps.DAEMON, "/run/ocps/bin/ocps-proxyd")
    shutil.copy(ocps.SHIM, "/run/ocps/bin/ocps-shim")
    os.makedirs("/run/systemd/system/%s.d" % UNIT, exist_ok=True)
    # The unit meson configured from systemd/ocps-proxyd.service.in.
    shutil.copy(os.path.join("/build", "systemd", UNIT), "/run/systemd/system/" + UNIT)
    with open("/run/ocps/config.yaml", "w") as f:
        f.write("capacity:\n  memory: 8G\n  cores: 4\n")
    with open("/run/systemd/system/%s.d/test.conf" % UNIT, "w") as f:
        f.write("[Service]\nExecStart=\nExecStart=/run/ocps/bin/ocps-proxyd --config "
                "/run/ocps/config.yaml --listen 127.0.0.1:%d --data-dir %s "
                "--log-level debug\n" % (PORT, DATA))
    sh("systemctl", "daemon-reload")


def journal_tail():
    return sh("journalctl", "-b", "-u", UNIT, "--no-pager", "-n", "30").stdout


def answering(d):
    try:
        return d.request("GET", "/v1/jobproxy/ping", token=None).status == 200
    except OSError:
        return False


def block(tap):
    install()
    d = ocps.Daemon(data_dir=DATA)
    d.port = PORT
    r = sh("systemctl", "start", UNIT)
    if not tap.ok(r.returncode == 0, "systemctl start %s" % UNIT, r.stdout + journal_tail()):
        return
    tap.ok(ocps.until(lambda: answering(d)), "the unit's daemon answers")
    d.token = d.read_admin_token()
    journal = sh("journalctl", "-b", "-u", UNIT, "--no-pager").stdout
    tap.ok("(v2)" in journal, "it finds cgroup v2 in its delegated subtree", journal[-3000:])
    pid = main_pid()
    tap.eq(own_cgroup(pid), SVC + "/ocps-proxyd", "the main process moved into its own leaf")
    tap.eq(read(CG + SVC + "/cgroup.procs"), "", "the unit's cgroup holds no process")

    tid = d.submit_id({"user": USER, "cmd": "cat /proc/self/cgroup"})
    st = d.wait(tid)
    tap.eq((st["code"], st["description"]), ("COMPLETE", st["description"]), "a task runs")
    tap.eq(d.output(tid), "0::%s/ocps-proxy/%s\n" % (SVC, tid),
           "in the unit's delegated subtree")
    tid = d.submit_id({"user": USER, "memory": "16M",
                       "cmd": ["awk", 'BEGIN { s = "x"; while (1) s = s s }']})
    st = d.wait(tid, timeout=120)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and "(OOM)" in (st["description"] or ""),
           "its memory limit holds (OOM)", st)

    # With no task left, a restart and a crash restart (systemd prunes the
    # unit's emptied cgroup, so the new main process may enter it).
    r = sh("systemctl", "restart", UNIT)
    tap.ok(r.returncode == 0, "systemctl restart with no task running", r.stdout + journal_tail())
    tap.ok(ocps.until(lambda: answering(d)), "the restarted daemon answers")
    pid2 = main_pid()
    tap.ok(pid2 and pid2 != pid, "a new main process (%d, was %d)" % (pid2, pid))
    if pid2:
        tap.eq(own_cgroup(pid2), SVC + "/ocps-proxyd", "the new main process moved into the leaf")
        os.kill(pid2, 9)
        pid3 = ocps.until(lambda: main_pid() not in (0, pid2) and answering(d) and main_pid(),
                     timeout=60)
        tap.ok(pid3, "after kill -9 systemd restarts it (Restart=on-failure)", journal_tail())
    tid = d.submit_id({"user": USER, "cmd": "echo again"})
    tap.eq((d.wait(tid)["code"], d.output(tid)), ("COMPLETE", "again\n"), "tasks run again")

    # A restart with a task running: KillMode=process stops the main
    # process only; the task and its shim stay in the unit's cgroup, which
    # keeps giving controllers to them. systemd 252 (Debian 12) places the
    # new main process in that cgroup, and the kernel refuses: the start
    # fails with 219/CGROUP until the task has ended.
    go = "/tmp/ocps-go"
    tid = d.submit_id({"user": USER, "memory": "16M",
                       "cmd": "while [ ! -e %s ]; do sleep 0.1; done; cat /proc/self/cgroup" % go})
    tap.eq(d.wait(tid, codes=("RUNNING",))["code"], "RUNNING", "a task runs before the restart")
    version = int(sh("systemctl", "--version").stdout.split()[1])
    r = sh("systemctl", "restart", UNIT)
    if version < 254:
        tap.ok(ocps.until(lambda: "status=219/CGROUP" in journal_tail()),
               "systemd %d cannot restart it with a task running (219/CGROUP)" % version,
               journal_tail())
        # Restart=on-failure tries again until its start limit.
        ocps.until(lambda: sh("systemctl", "is-failed", UNIT).stdout.strip() == "failed", timeout=60)
        sh("systemctl", "reset-failed", UNIT)
        cg = CG + SVC + "/ocps-proxy/" + tid
        tap.eq(read(cg + "/memory.max"), str(16 << 20), "the task runs on with its limits")
        open(go, "w").close()
        tap.ok(ocps.until(lambda: not os.path.exists(cg)), "it ends, and its shim removes its cgroup")
        r = sh("systemctl", "start", UNIT)
        tap.ok(r.returncode == 0 and ocps.until(lambda: answering(d)),
               "then the unit starts again", r.stdout + journal_tail())
        st = d.wait(tid)
        tap.ok(st and (st["code"], d.output(tid)) == ("COMPLETE", "0::%s/ocps-proxy/%s\n" % (SVC, tid)),
               "and records the task's end", st)
    else:
        journal = journal_tail()
        tap.ok(r.returncode == 0 and ocps.until(lambda: answering(d)),
               "systemd %d restarts it with a task running" % version, journal)
        tap.eq(d.state(tid)["code"], "RUNNING", "the task survived the restart")
        open(go, "w").close()
        tap.eq(d.wait(tid)["code"], "COMPLETE", "and completes")

    r = sh("systemctl", "stop", UNIT)
    tap.eq(r.returncode, 0, "systemctl stop")
    tap.eq(sh("systemctl", "is-active", UNIT).stdout.strip(), "inactive", "the unit is inactive")


ocps.require_root()
ocps.main(block)
