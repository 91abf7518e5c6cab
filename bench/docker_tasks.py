#!/usr/bin/env python3
"""Benchmark helper: N trivial container tasks (`true`) through the proxy,
PARALLEL at a time, each timed from its submit until its end, which the
client learns without polling from logs?follow=1 (the stream closes when
the task ends); then its state must be COMPLETE. Prints the mean latency
in milliseconds and the tasks per second.

    docker_tasks.py PORT N PARALLEL IMAGE"""

import http.client
import json
import sys
import threading
import time

port, n, parallel, image = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = json.dumps({"user": "nobody", "cores": 1, "container": {"image": image, "cmd": ["true"]}})
lat, lock, counter = [], threading.Lock(), [0]


def one(c):
    t0 = time.monotonic()
    c.request("POST", "/v1/jobproxy/submit", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit("submit: %d %s" % (r.status, data))
    tid = json.loads(data)["id"]
    c.request("GET", "/v1/jobproxy/logs/%s?follow=1" % tid)
    c.getresponse().read()
    c.request("GET", "/v1/jobproxy/state/" + tid)
    st = json.loads(c.getresponse().read())
    if st["code"] != "COMPLETE":
        sys.exit("task %s ended %s: %s" % (tid, st["code"], st["description"]))
    return (time.monotonic() - t0) * 1000


def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while True:
        with lock:
            if counter[0] >= n:
                return
            counter[0] += 1
        ms = one(c)
        with lock:
            lat.append(ms)


t0 = time.monotonic()
ts = [threading.Thread(target=worker) for _ in range(parallel)]
for t in ts:
    t.start()
for t in ts:
    t.join()
total = time.monotonic() - t0
print("%.1f %.2f" % (sum(lat) / len(lat), n / total))
