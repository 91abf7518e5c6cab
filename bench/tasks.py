#!/usr/bin/env python3
"""Benchmark helper: submits N trivial tasks (cores 0.1, so many run at once)
with curl's parallel mode over PARALLEL keep-alive connections, waits until
every one has ended, and prints tasks completed per second, from the first
task's `created` to the last one's `finished` as the daemon recorded them.

The submits are curl's, not Python's: on this guest Python's http.client
spends ~0.8 ms of CPU per request, curl ~0.2 ms, and the client shares the
two cores with what it measures (the floor has no client at all).

    tasks.py PORT N PARALLEL"""

import datetime
import http.client
import json
import subprocess
import sys
import tempfile
import time

port, n, parallel = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
url = "http://127.0.0.1:%d/v1/jobproxy" % port
body = json.dumps({"user": "nobody", "cmd": ["/bin/true"], "cores": 0.1, "memory": "64M"})

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

c = http.client.HTTPConnection("127.0.0.1", port)


def get(path):
    c.request("GET", "/v1/jobproxy/" + path)
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit("GET %s: %d %s" % (path, r.status, data))
    return json.loads(data)


# Rarely, and one state a request: the client must not eat the CPU it measures.
active = ("QUEUED", "INITIALIZING", "RUNNING", "CANCELING")
while any(get("state?limit=1&code=" + s)["count"] for s in active):
    time.sleep(0.5)


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


first, last, seen, token = None, None, 0, ""
while True:
    page = get("state?limit=2048" + token)
    for st in page["state"]:
        if ts(st["created"]) < began - 1:
            continue  # from before this run
        if st["code"] != "COMPLETE":
            sys.exit("task %s ended %s: %s" % (st["id"], st["code"], st["description"]))
        seen += 1
        first = min(first or 1e18, ts(st["created"]))
        last = max(last or 0, ts(st["finished"]))
    if not page.get("next_page_token"):
        break
    token = "&page_token=" + page["next_page_token"]
if seen != n:
    sys.exit("%d tasks submitted, %d found" % (n, seen))
print("%.1f" % (seen / (last - first)))
