#!/usr/bin/env python3
"""JobProxy's own task files, as its clients send them, against the real
daemon: the fixtures test/data/tasks/jobproxy-* have the shapes of
JobProxy's example and test tasks (bare numbers in the XSD's units,
numbers as strings, a top-level cmd beside a container, JAXB's
{"mount": {...}} wrapper). With JobProxy's units the helloworld's bare
memory 128 is 128 GB, more than the host: the refusal says how the number
was read and how to write it. With bare_units {memory: M}, the setting for
clients that followed JobProxy's Chronos backend, the same files run: the
helloworld on the process backend as an account, the container task on
the docker backend (network none, containers of this daemon's instance
removed at the end)."""

import json
import os
import shutil
import tempfile

import ocps
import test_docker
from ocps import Daemon

USER = "ocpstest"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tasks")
FORMATS = (("json", "application/json"), ("yaml", "application/yaml"), ("xml", "application/xml"))
HELLO = "hello from a JobProxy task\n"
# The host path the container fixtures mount; the test mounts a directory of its own instead.
FIXTURE_MOUNT = "/tmp/ocps-jobproxy-out"
# A capacity of our own, so the refusal does not depend on the machine.
CAPACITY = "capacity: {memory: 8G}\n"


def fixture(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def t_jobproxy_units(tap, d):
    """The default: bare numbers are JobProxy's GB and hours."""
    xml = fixture("jobproxy-helloworld.xml")
    r = d.submit(xml, ctype="application/xml")
    tap.eq((r.status, r.json().get("message")),
           (400, "memory: 128 was read as 128 GiB (a bare number is in GB, JobProxy's unit); "
                 "write \"128M\" for megabytes; the host's capacity is 8 GiB"),
           "JobProxy's <memory>128</memory> is refused, saying how it was read and how to "
           "write it otherwise")
    r = d.submit(fixture("jobproxy-helloworld.json"))
    tap.ok(r.status == 400 and "128 was read as 128 GiB" in r.text,
           "the same refusal for the JSON form", r)

    r = d.submit(xml.replace("<memory>128</memory>", "<memory>128M</memory>"),
                 ctype="application/xml")
    tid = r.json().get("id") if r.status == 200 else None
    if not tap.ok(tid, "with the unit written, JobProxy's example is accepted", r):
        return
    st = d.wait(tid)
    tap.eq((st["code"], st["backend"], d.output(tid)), ("COMPLETE", "process", HELLO),
           "and runs on the process backend")

    task = json.loads(fixture("jobproxy-container.json"))
    task["container"]["cmd"] = "true"
    r = d.submit(task)
    tap.ok(r.status == 400 and "cmd" in r.json()["message"] and
           "container.cmd" in r.json()["message"],
           "cmd beside a container that has its own is 400 naming cmd and container.cmd", r)


def t_helloworld_mb(tap, d):
    """bare_units {memory: M}: JobProxy's example runs as written."""
    for ext, ctype in FORMATS:
        r = d.submit(fixture("jobproxy-helloworld." + ext), ctype=ctype)
        tid = r.json().get("id") if r.status == 200 else None
        if not tap.ok(tid, "%s: the helloworld with a bare 128 MB is accepted" % ext, r):
            continue
        st = d.wait(tid)
        tap.eq((st["code"], st["backend"], st["user"], d.output(tid)),
               ("COMPLETE", "process", USER, HELLO),
               "%s: it runs on the process backend as %s" % (ext, USER))
        view = d.request("GET", "/v1/jobproxy/task/" + tid).json()
        tap.eq((view.get("memory"), view.get("cputime"), view.get("cores")), ("128M", "36000s", 1),
               "%s: GET /task shows the units it was read in (cputime 10 is still hours)" % ext)

    r = d.submit({"user": USER, "cmd": "true", "memory": "100000"})
    tap.eq((r.status, r.json().get("message")),
           (400, "memory: 100000 was read as 97.6 GiB (a bare number is in MB, as this proxy is "
                 "set up); write \"100000G\" for gigabytes; the host's capacity is 8 GiB"),
           "a refusal names the configured unit of a bare number")


def t_container_mb(tap, d):
    """JobProxy's container test task: its cmd runs in the container, its wrapped mount is mounted."""
    if not test_docker.dockerd_up():
        tap.skip("JobProxy's container task on the docker backend", "dockerd is not running")
        return
    acct = ocps.ensure_user(USER)
    tmp = tempfile.mkdtemp(prefix="ocps-jp-")
    out = os.path.join(tmp, "out")
    os.makedirs(out)
    os.chown(out, acct.pw_uid, acct.pw_gid)
    os.chmod(tmp, 0o755)
    touched = os.path.join(out, "touched.txt")
    try:
        for ext, ctype in FORMATS:
            body = fixture("jobproxy-container." + ext).replace(FIXTURE_MOUNT, out)
            r = d.submit(body, ctype=ctype)
            tid = r.json().get("id") if r.status == 200 else None
            if not tap.ok(tid, "%s: JobProxy's container task is accepted" % ext, r):
                continue
            st = d.wait(tid)
            tap.eq((st["code"], st["backend"]), ("COMPLETE", "docker"),
                   "%s: it runs on the docker backend" % ext)
            tap.ok(os.path.exists(touched) and os.stat(touched).st_uid == acct.pw_uid,
                   "%s: the top-level cmd ran in the container, writing to the wrapped mount as %s"
                   % (ext, USER))
            view = d.request("GET", "/v1/jobproxy/task/" + tid).json()
            tap.eq((view.get("cmd"), view.get("container"), view.get("memory")),
                   (None, {"image": test_docker.IMAGE, "cmd": "/bin/touch /jobproxy_out/touched.txt",
                           "mounts": [{"host": out, "container": "/jobproxy_out", "mode": "RW"}]},
                    "128M"),
                   "%s: GET /task shows one shape: container.cmd and a flat list of mounts" % ext)
            if os.path.exists(touched):
                os.unlink(touched)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def t_jobproxy(tap):
    ocps.require_root()
    ocps.ensure_user(USER)

    d = Daemon(config=CAPACITY)
    with ocps.serving(tap, d, "JobProxy's units"):
        t_jobproxy_units(tap, d)

    instance = "ocps-test-jp-%d" % os.getpid()
    d = Daemon(config=CAPACITY + "bare_units: {memory: M}\n" + test_docker.CONFIG % instance)
    try:
        with ocps.serving(tap, d, "bare memory in MB"):
            t_helloworld_mb(tap, d)
            t_container_mb(tap, d)
    finally:
        if test_docker.dockerd_up():
            test_docker.cleanup_containers(instance)


if __name__ == "__main__":
    ocps.main(t_jobproxy)
