#!/usr/bin/env python3
"""Benchmark helper (bench/tes.sh): GET /ga4gh/tes/v1/tasks pages over
every stored task, following next_page_token, on one keep-alive
connection; prints the pages' latency (request sent to last byte read)
as "pages p50 p99 max" in ms. The client's own JSON parsing of the
token is outside the timed span.

    tes_list.py PORT WALKS QUERY     (QUERY: "view=MINIMAL&page_size=256")"""

import http.client
import json
import sys
import time

port, walks, query = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
lat = []
for _ in range(walks):
    token = None
    while True:
        path = "/ga4gh/tes/v1/tasks?" + query + ("&page_token=" + token if token else "")
        t0 = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        lat.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            sys.exit("GET %s: %d %s" % (path, r.status, body[:200]))
        token = json.loads(body).get("next_page_token")
        if not token:
            break
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print("%d %.2f %.2f %.2f" % (len(lat), pick(0.50), pick(0.99), lat[-1]))
