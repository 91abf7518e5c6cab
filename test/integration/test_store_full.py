#!/usr/bin/env python3
"""A store that cannot take writes answers 503 and loses nothing it
accepted: the data dir is a small tmpfs that the test fills up."""

import os
import subprocess
import tempfile

import ocps

USER = "ocpstest"


def t_store_full(tap):
    mnt = tempfile.mkdtemp(prefix="ocps-full-")
    if not tap.eq(subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]).returncode, 0,
                  "a 4 MiB tmpfs for the data dir"):
        return
    d = ocps.Daemon(data_dir=os.path.join(mnt, "data"),
                    config="capacity: {cores: 1}\n")
    os.makedirs(d.data_dir)
    d.log_path = os.path.join(mnt, "..", os.path.basename(mnt) + ".log")
    filler = os.path.join(mnt, "filler")
    shims = []
    try:
        with ocps.serving(tap, d, "a data dir on a small tmpfs"):
            # One task holds the capacity so the rest stay queued and create no files.
            blocker = d.submit_id({"user": USER, "cmd": "sleep 600", "cores": 1})
            # Running before the disk fills: a start that cannot write its files fails.
            d.wait(blocker, codes=("RUNNING",))
            accepted = [d.submit_id({"user": USER, "cmd": "true", "cores": 1}) for _ in range(5)]
            ocps.fill_filesystem(filler)
            statuses = []
            for i in range(40):
                r = d.submit({"user": USER, "cmd": "true", "cores": 1, "name": "x" * 200,
                              "env": {"PAD%d" % j: "y" * 200 for j in range(50)}})
                statuses.append(r.status)
                if r.status == 503:
                    tap.ok("store" in r.json()["message"], "503 names the store", r)
                    break
            tap.ok(503 in statuses, "a full disk gives 503 (%s)" % statuses)
            tap.ok(200 not in statuses[statuses.index(503):] if 503 in statuses else False,
                   "nothing is acknowledged that was not stored")
            r = d.request("GET", "/v1/jobproxy/ping")
            tap.eq(r.status, 200, "the daemon keeps serving")
            os.unlink(filler)
            r = d.submit({"user": USER, "cmd": "true", "cores": 1})
            tap.eq(r.status, 200, "writes work again once there is room")
            tid = r.json()["id"] if r.status == 200 else None
            for t in accepted + [blocker, tid]:
                tap.ok(d.state(t) is not None, "accepted task %s is still there" % t[:8])
            d.request("DELETE", "/v1/jobproxy/delete/" + blocker)
            for t in accepted + [tid]:
                st = d.wait(t, timeout=60)
                good = bool(st and st["code"] == "COMPLETE")
                why = "" if good else "\n".join(
                    [str(st)] + [l for l in d.logs().splitlines() if t in l])
                tap.ok(good, "queued task %s ran" % t[:8], why)
            shims = d.shim_pids()
        tap.ok(len(shims) == 1 and d.wait_shims(shims),
               "the shim (%s) leaves once the daemon is gone and its tasks have ended" % shims)
        try:
            with open(os.path.join(d.data_dir, "shims", "shim.log")) as f:
                shim_log = f.read()
        except OSError as e:
            shim_log = str(e)
        tap.ok("listening on" in shim_log and "Sanitizer" not in shim_log,
               "the shim's own log is clean (no sanitizer report)", shim_log)
    finally:
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)
        try:
            os.unlink(d.log_path)
        except OSError:
            pass


ocps.require_root()
ocps.ensure_user(USER)
ocps.main(t_store_full)
