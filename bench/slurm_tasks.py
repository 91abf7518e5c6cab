#!/usr/bin/env python3
"""Benchmark helper for bench/slurm.sh: submits N Slurm tasks to the proxy
with curl's parallel mode over PARALLEL keep-alive connections (as
bench/tasks.py does), waits until the proxy has handed every one to Slurm,
and prints submits per second from the first submit to the last handover.

A handover is read from the daemon's log (log_level: info), where the
supervisor writes `task ID INITIALIZING on slurm` with the time once the
backend's start returned, that is once slurmrestd answered the submit
with its job id. Nothing else tells it: the proxy's queue metrics do not
count tasks of a backend with a queue of its own, and the task stays
INITIALIZING while its job waits in Slurm. The log is read from where it
ended before the run, every 50 ms.

    slurm_tasks.py PORT N PARALLEL TASK_JSON DAEMON_LOG"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

port, n, parallel, body, log = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                                sys.argv[5])
url = "http://127.0.0.1:%d/v1/jobproxy" % port
MARK = " INITIALIZING on slurm "

offset = os.path.getsize(log)
began = time.time()
with tempfile.NamedTemporaryFile("w", suffix=".curl") as cfg:
    cfg.write('header = "Content-Type: application/json"\nheader = "Accept: text/plain"\n')
    cfg.write("data = %s\n" % json.dumps(body))
    cfg.write('write-out = "%{http_code} "\n')
    for _ in range(n):
        cfg.write('url = "%s/submit"\noutput = "/dev/null"\n' % url)
    cfg.flush()
    out = subprocess.run(["curl", "-sS", "--no-progress-meter", "-Z", "--parallel-max", str(parallel), "-K", cfg.name],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.split()
if len(out) != n or set(out) != {"200"}:
    sys.exit("submit: HTTP statuses %s" % sorted(set(out)))

seen, last, deadline = 0, None, time.monotonic() + 600
with open(log) as f:
    f.seek(offset)
    pending = ""
    while seen < n:
        chunk = f.read()
        if not chunk:
            if time.monotonic() > deadline:
                sys.exit("only %d of %d tasks handed to Slurm after 600 s" % (seen, n))
            time.sleep(0.05)
            continue
        lines = (pending + chunk).split("\n")
        pending = lines.pop()
        for line in lines:
            if MARK in line:
                seen += 1
                last = line.split()[0]
end = datetime.datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp()
print("%.2f" % (n / (end - began)))
