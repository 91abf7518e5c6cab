#!/usr/bin/env python3
"""bench/uml.sh's guest side, inside User-Mode Linux on the pure cgroup v2
kernel: the /bin/true tasks/s of bench/run.sh's figure (2) against the
vfork floor (bench/floor.c) in the same kernel. Three proxy runs, each
between two floor runs; prints them as TAP comments and one ok line.

    OCPS_PROXYD=... FLOOR=... N=... uml_guest.py"""

import os
import subprocess
import sys
import time
import urllib.request

N = os.environ.get("N", "300")
here = os.path.dirname(os.path.abspath(__file__))
port = 18080
os.makedirs("/tmp/bench", exist_ok=True)
with open("/tmp/bench/config.yaml", "w") as f:
    f.write("capacity: {cores: 2, memory: 8G}\nprincipals: {bench: {run_as: [nobody]}}\n")
log = open("/tmp/bench/daemon.log", "ab")
daemon = subprocess.Popen([os.environ["OCPS_PROXYD"], "--listen-unauthenticated",
                           "127.0.0.1:%d=bench" % port, "--data-dir", "/tmp/bench/data",
                           "--config", "/tmp/bench/config.yaml", "--log-level", "warn"],
                          stdout=log, stderr=log)
for _ in range(200):
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/v1/jobproxy/ping" % port, timeout=2)
        break
    except OSError:
        time.sleep(0.05)


def floor():
    out = subprocess.run([os.environ["FLOOR"], N, "20", "vfork"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout.split()
    return float(out[0])


def proxy():
    out = subprocess.run([sys.executable, os.path.join(here, "tasks.py"), str(port), N, "8"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    return float(out[0])


fl, px = [floor()], []
for _ in range(3):
    px.append(proxy())
    fl.append(floor())
daemon.terminate()
daemon.wait()
ratios = sorted(p / ((fl[i] + fl[i + 1]) / 2) for i, p in enumerate(px))
print("# kernel %s, %d CPU" % (os.uname().release, os.cpu_count()))
print("# proxy tasks/s %s; vfork floor tasks/s %s" % (" ".join("%.1f" % p for p in px),
                                                     " ".join("%.1f" % f for f in fl)))
print("ok 1 - proxy / vfork floor on cgroup v2: %.2f (runs %s)"
      % (ratios[1], " ".join("%.2f" % r for r in ratios)))
print("1..1")
