#!/usr/bin/env python3
"""Admission control (tasks wait QUEUED for capacity, FIFO) and kill -9 of
the daemon with tasks running: nothing lost, nothing run twice."""

import os
import shutil
import tempfile
import time

import ocps

USER = "ocpstest"


def t_queue_restart(tap):
    out_dir = tempfile.mkdtemp(prefix="ocps-runs-")
    os.chmod(out_dir, 0o777)
    try:
        queue_restart(tap, out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def queue_restart(tap, out_dir):
    with ocps.serving(tap, ocps.Daemon(config="capacity:\n  cores: 1\n  memory: 4G\n"),
                      "one core") as d:
        # Queue: with one core, 1-core tasks run one at a time, in order.
        order = os.path.join(out_dir, "order")
        ids = [d.submit_id({"user": USER, "cores": 1,
                            "cmd": "echo %d >> %s; sleep 1" % (i, order)}) for i in range(3)]
        st = [d.state(i)["code"] for i in ids]
        tap.ok(st[1] == "QUEUED" and st[2] == "QUEUED", "tasks past capacity wait QUEUED", st)
        desc = d.state(ids[2])["description"]
        tap.ok("waiting" in desc, "a queued task says why it waits", desc)
        for i in ids:
            d.wait(i)
        tap.eq(open(order).read().split(), ["0", "1", "2"], "queued tasks ran FIFO")
        a = d.state(ids[0])
        b = d.state(ids[1])
        tap.ok(b["started"] >= a["finished"], "the second started after the first ended")

        # Restart: running and queued tasks survive a kill -9.
        runs = os.path.join(out_dir, "runs")
        long_ids = [d.submit_id({"user": USER, "cores": 0.5,
                                 "cmd": "echo start-%d >> %s; sleep 3; echo end-%d >> %s; exit %d"
                                        % (i, runs, i, runs, i + 4)}) for i in range(2)]
        queued = d.submit_id({"user": USER, "cores": 1,
                              "cmd": "echo start-q >> %s; echo queued-out" % runs})
        for i in long_ids:
            d.wait(i, codes=("RUNNING",))
        tap.eq(d.state(queued)["code"], "QUEUED", "third task queued before the crash")
        d.kill9()
        time.sleep(0.5)
        d.start()
        for i, tid in enumerate(long_ids):
            st = d.wait(tid, timeout=60)
            tap.eq((st["code"], st["exit_code"]), ("EXECUTOR_ERROR", i + 4),
                   "task %d kept running and its exit code was recorded" % i)
        st = d.wait(queued, timeout=60)
        tap.eq(st["code"], "COMPLETE", "the queued task ran after the restart")
        tap.eq(d.output(queued), "queued-out\n", "its output was recorded")
        lines = open(runs).read().split()
        tap.eq(sorted(lines), sorted(["start-0", "end-0", "start-1", "end-1", "start-q"]),
               "nothing ran twice")
        # A task that ends while the daemon is down is recorded truthfully.
        tid = d.submit_id({"user": USER, "cores": 0.5, "cmd": "sleep 1; echo done; exit 7"})
        d.wait(tid, codes=("RUNNING",))
        d.kill9()
        time.sleep(2.5)
        d.start()
        st = d.wait(tid, timeout=30)
        tap.eq((st["code"], st["exit_code"]), ("EXECUTOR_ERROR", 7),
               "a task that ended while the daemon was down has its real exit code")
        tap.eq(d.output(tid), "done\n", "and its output")
        # After a restart the old shim keeps its tasks and takes their cancel;
        # new tasks go to the new daemon's own shim; the old one leaves with
        # its last task.
        keep = d.submit_id({"user": USER, "cores": 0.5, "cmd": "sleep 300"})
        d.wait(keep, codes=("RUNNING",))
        old_shims = d.shim_pids()
        d.kill9()
        time.sleep(0.5)
        d.start()
        tid = d.submit_id({"user": USER, "cores": 0.1, "cmd": "echo new"})
        tap.eq(d.wait(tid)["code"], "COMPLETE", "a task submitted after the restart runs")
        new_shims = set(d.shim_pids()) - set(old_shims)
        tap.ok(len(old_shims) >= 1 and len(new_shims) == 1,
               "in the new daemon's own shim (old %s, new %s)" % (old_shims, sorted(new_shims)))
        tap.eq(d.state(keep)["code"], "RUNNING", "the task in the old shim still runs")
        r = d.request("DELETE", "/v1/jobproxy/delete/" + keep)
        st = d.wait(keep, timeout=30)
        tap.eq((r.status, st["code"], st["description"]), (204, "CANCELED", "cancelled by request"),
               "it is cancelled through the old shim")
        tap.ok(d.wait_shims(old_shims), "the old shim leaves once its last task has ended")
        tap.ok(all(os.path.exists("/proc/%d" % p) for p in new_shims),
               "the new daemon's shim stays for the tasks to come")


ocps.require_root()
ocps.ensure_user(USER)
ocps.main(t_queue_restart)
