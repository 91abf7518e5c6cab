#!/usr/bin/env python3
"""Benchmark helper: submits N trivial tasks (cores 0.1, so many run at once)
over keep-alive connections from a few threads, waits until every one has
ended, and prints tasks completed per second, from the first task's
`created` to the last one's `finished` as the daemon recorded them."""

import datetime
import http.client
import json
import sys
import threading
import time

port, n, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = json.dumps({"user": "nobody", "cmd": ["/bin/true"], "cores": 0.1, "memory": "64M"})
ids, lock = [], threading.Lock()


def worker(count):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(count):
        c.request("POST", "/v1/jobproxy/submit", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit("submit: %d %s" % (r.status, data))
        with lock:
            ids.append(json.loads(data)["id"])


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


workers = [threading.Thread(target=worker, args=(n // threads,)) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
c = http.client.HTTPConnection("127.0.0.1", port)
# One list request per round, rarely: the client must not eat the CPU it measures.
pending, first, last = set(ids), None, None
while pending:
    time.sleep(0.5)
    token = ""
    while True:
        c.request("GET", "/v1/jobproxy/state?limit=2048" + token)
        page = json.loads(c.getresponse().read())
        for st in page["state"]:
            if st["id"] not in pending or st["code"] in ("QUEUED", "INITIALIZING", "RUNNING", "CANCELING"):
                continue
            if st["code"] != "COMPLETE":
                sys.exit("task %s ended %s: %s" % (st["id"], st["code"], st["description"]))
            pending.discard(st["id"])
            first = min(first or 1e18, ts(st["created"]))
            last = max(last or 0, ts(st["finished"]))
        if not page.get("next_page_token"):
            break
        token = "&page_token=" + page["next_page_token"]
print("%.1f" % (len(ids) / (last - first)))
