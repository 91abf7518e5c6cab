#!/usr/bin/env python3
"""The JobProxy API over real HTTP: submit in three formats, state, list,
task, logs, delete, and the error statuses."""

import json
import os
import re
import time

import ocps

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tasks")
USER = "ocpstest"


def t_ping(tap, d):
    r = d.request("GET", "/v1/jobproxy/ping")
    tap.eq(r.status, 200, "ping is 200")
    tap.ok(r.headers.get("content-type", "").startswith("text/plain"), "ping is text/plain")
    tap.ok(re.match(r"^alive \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\)\s*$", r.text),
           "ping says alive (<RFC 3339>)", r.text)


def t_submit_and_run(tap, d):
    r = d.submit({"user": USER, "cmd": "echo hello; echo oops >&2; exit 0", "name": "hi"})
    tap.eq(r.status, 200, "submit JSON is 200")
    body = r.json()
    tap.eq(body.get("state"), "QUEUED", "submit answers QUEUED")
    tid = body["id"]
    tap.eq(r.headers.get("location"), "/v1/jobproxy/state/" + tid, "Location names the state")
    st = d.wait(tid)
    tap.eq(st["code"], "COMPLETE", "echo completes")
    tap.eq(st["exit_code"], 0, "exit code 0")
    tap.eq(st["description"], "exited with status 0", "description in words")
    for k in ("id", "code", "description", "stdout", "stderr", "exit_code", "reason", "user",
              "backend", "created", "started", "finished"):
        tap.ok(k in st, "state has " + k)
    tap.eq(st["backend"], "process", "backend is process")
    tap.eq(st["user"], USER, "user recorded")
    tap.eq(d.output(tid), "hello\n", "stdout through the logs endpoint")
    tap.eq(d.output(tid, "stderr"), "oops\n", "stderr through the logs endpoint")

    r = d.submit({"user": USER, "cmd": ["sh", "-c", "exit 3"]})
    st = d.wait(r.json()["id"])
    tap.eq((st["code"], st["exit_code"], st["description"]),
           ("EXECUTOR_ERROR", 3, "exited with status 3"), "exit 3 is EXECUTOR_ERROR")

    r = d.submit({"user": USER, "cmd": ["/nonexistent/program"]})
    st = d.wait(r.json()["id"])
    tap.ok(st["code"] == "EXECUTOR_ERROR" and "No such file" in (st["description"] or ""),
           "a missing program is EXECUTOR_ERROR with a reason", st)


def t_accept(tap, d):
    task = {"user": USER, "cmd": "true"}
    r = d.submit(task, accept="text/plain")
    tap.ok(r.status == 200 and re.match(r"^[0-9a-f-]{36}\s*$", r.text),
           "Accept text/plain answers the id alone", r)
    r = d.submit(task, accept="application/xml")
    tap.ok(r.status == 200 and "<task><id>" in r.text and "<state>QUEUED</state>" in r.text,
           "Accept application/xml answers <task><id/><state/></task>", r)
    tid = re.search(r"<id>([0-9a-f-]+)</id>", r.text).group(1)
    r = d.request("GET", "/v1/jobproxy/state/" + tid, headers={"Accept": "application/xml"})
    tap.ok(r.status == 200 and "<state><id>%s</id>" % tid in r.text, "state as XML", r)
    r = d.request("GET", "/v1/jobproxy/state/" + tid, headers={"Accept": "image/png"})
    tap.eq(r.status, 406, "unacceptable Accept is 406")
    r = d.request("GET", "/v1/jobproxy/state/" + tid, headers={"Accept": "*/*"})
    tap.ok(r.status == 200 and r.headers["content-type"].startswith("application/json"),
           "*/* gets JSON")


def t_formats(tap, d):
    """XML and YAML submits give the same stored task as JSON."""
    tasks = {}
    for ext, ctype in (("json", "application/json"), ("yaml", "application/yaml"),
                       ("xml", "application/xml")):
        with open(os.path.join(DATA, "full." + ext), "rb") as f:
            body = f.read()
        r = d.submit(body, ctype=ctype)
        if not tap.eq(r.status, 200, "submit full.%s" % ext):
            tap.diag(r.text)
            continue
        tid = r.json()["id"]
        d.wait(tid)
        t = d.request("GET", "/v1/jobproxy/task/" + tid).json()
        tap.eq(t.get("id"), tid, "task/%s has its id" % ext)
        for k in ("id", "state"):
            t.pop(k, None)
        tasks[ext] = t
    if len(tasks) == 3:
        tap.eq(tasks["yaml"], tasks["json"], "YAML task equals JSON task")
        tap.eq(tasks["xml"], tasks["json"], "XML task equals JSON task")
        tap.eq(tasks["json"].get("memory"), "64M", "memory normalised")
        tap.eq(tasks["json"].get("cputime"), "30s", "cputime normalised to seconds")
    for ctype in ("text/yaml", "application/x-yaml"):
        r = d.submit("user: %s\ncmd: 'true'\n" % USER, ctype=ctype)
        tap.eq(r.status, 200, "YAML as " + ctype)
    r = d.submit("<task><user>%s</user><cmd>true</cmd><memory>0.5</memory></task>" % USER,
                 ctype="application/xml")
    tap.eq(r.status, 200, "XML with a bare memory number")
    if r.status == 200:
        t = d.request("GET", "/v1/jobproxy/task/" + r.json()["id"]).json()
        tap.eq(t.get("memory"), "512M", "bare memory is GB (JobProxy's XSD)")


def t_list(tap, d):
    ids = [d.submit_id({"user": USER, "cmd": "true", "tags": {"batch": "list"}})
           for _ in range(7)]
    seen, token, pages = [], None, 0
    while True:
        path = "/v1/jobproxy/state?limit=3" + ("&page_token=" + token if token else "")
        r = d.request("GET", path)
        if not tap.eq(r.status, 200, "list page %d" % pages):
            break
        j = r.json()
        tap.eq(j["count"], len(j["state"]), "count matches the page")
        seen += [s["id"] for s in j["state"]]
        pages += 1
        if pages == 1:
            # Tasks added while paging must not shift the pages.
            ids.append(d.submit_id({"user": USER, "cmd": "true"}))
        token = j.get("next_page_token")
        if not token or pages > 100:
            break
    tap.ok(all(i in seen for i in ids), "paging sees every task, added ones included")
    tap.eq(len(seen), len(set(seen)), "no task seen twice while paging")
    r = d.request("GET", "/v1/jobproxy/state?code=BOGUS")
    tap.ok(r.status == 400 and "code" in r.json()["message"], "bad code filter is 400")
    r = d.request("GET", "/v1/jobproxy/state?limit=5000")
    tap.ok(r.status == 400 and "limit" in r.json()["message"], "limit over 2048 is 400")
    r = d.request("GET", "/v1/jobproxy/state?page_token=zzz")
    tap.eq(r.status, 400, "a forged page token is 400")
    r = d.request("GET", "/v1/jobproxy/state?user=nosuchuser")
    tap.eq(r.json()["count"], 0, "user filter")
    d.wait(ids[-1])
    r = d.request("GET", "/v1/jobproxy/state?code=COMPLETE&limit=2048")
    tap.ok(r.status == 200 and all(s["code"] == "COMPLETE" for s in r.json()["state"]),
           "code filter returns only that state")


def t_logs(tap, d):
    tid = d.submit_id({"user": USER, "cmd": "for i in 1 2 3 4 5; do echo line$i; done"})
    d.wait(tid)
    r = d.request("GET", "/v1/jobproxy/logs/%s?tail=2" % tid)
    tap.eq(r.text, "line4\nline5\n", "tail=2")
    r = d.request("GET", "/v1/jobproxy/logs/%s?stream=bogus" % tid)
    tap.ok(r.status == 400 and "stream" in r.text, "bad stream is 400 naming the parameter", r)
    r = d.request("GET", "/v1/jobproxy/logs/%s?stream=system" % tid)
    tap.ok(r.status == 200 and r.headers.get("content-type", "").startswith("text/plain"),
           "stream=system serves the task's system log", r)
    tid = d.submit_id({"user": USER, "cmd": "echo a; sleep 1; echo b; sleep 1; echo c"})
    t0 = time.monotonic()
    r = d.request("GET", "/v1/jobproxy/logs/%s?follow=1" % tid)
    tap.eq(r.text, "a\nb\nc\n", "follow streams until the task ends")
    st = d.state(tid)
    tap.eq(st and st["code"], "COMPLETE", "when a follow ends, the task's final state is already recorded")
    for _ in range(5):  # each follow of a short task ends with it, every time
        tid = d.submit_id({"user": USER, "cmd": "echo once"})
        r = d.request("GET", "/v1/jobproxy/logs/%s?follow=1" % tid)
        st = d.state(tid)
        if r.text != "once\n" or st["code"] != "COMPLETE":
            break
    tap.ok(r.text == "once\n" and st["code"] == "COMPLETE",
           "follow of a short task: all its output, then its final state", (r.text, st))
    tap.ok(time.monotonic() - t0 >= 1.5, "follow waited for the task")


def t_delete(tap, d):
    tid = d.submit_id({"user": USER, "cmd": "sleep 300"})
    d.wait(tid, codes=("RUNNING",))
    r = d.request("DELETE", "/v1/jobproxy/delete/" + tid)
    tap.eq(r.status, 204, "delete of a running task is 204")
    st = d.wait(tid)
    tap.eq((st["code"], st["description"]), ("CANCELED", "cancelled by request"),
           "a running task ends CANCELED")
    r = d.request("DELETE", "/v1/jobproxy/delete/" + tid)
    tap.eq(r.status, 204, "delete of an ended task is 204")
    r = d.request("GET", "/v1/jobproxy/state/" + tid)
    tap.eq(r.status, 404, "and it is gone")
    r = d.request("DELETE", "/v1/jobproxy/delete/" + tid)
    tap.eq(r.status, 404, "delete of an unknown task is 404")


def t_errors(tap, d):
    def check(r, status, what, needle=None):
        ok = r.status == status
        try:
            j = r.json()
            ok = ok and j.get("code") == status and isinstance(j.get("message"), str)
            if needle:
                ok = ok and needle in j["message"]
        except Exception:
            ok = False
        tap.ok(ok, "%s -> %d" % (what, status), r)

    check(d.request("GET", "/v1/jobproxy/state/00000000-0000-4000-8000-000000000000"), 404,
          "unknown id")
    check(d.request("GET", "/v1/jobproxy/nope"), 404, "unknown path")
    r = d.request("PUT", "/v1/jobproxy/submit", "x")
    check(r, 405, "wrong method")
    tap.ok("POST" in r.headers.get("allow", ""), "405 names the allowed method")
    check(d.submit({"user": USER, "cmd": "true"}, ctype="text/csv"), 415, "unknown Content-Type")
    check(d.request("POST", "/v1/jobproxy/submit", "{}", {}), 415, "no Content-Type")
    big = json.dumps({"user": USER, "cmd": "x" * (2 << 20)})
    check(d.submit(big), 413, "body over the cap")
    check(d.submit({"cmd": "true"}), 400, "missing user", "user")
    check(d.submit({"user": USER, "cmd": "true", "cores": -1}), 400, "negative cores", "cores")
    check(d.submit({"user": USER, "cmd": "true", "memory": "12 apples"}), 400, "bad memory",
          "memory")
    check(d.submit({"user": USER, "cmd": "true", "bogus": 1}), 400, "unknown field", "bogus")
    check(d.submit({"user": USER}), 400, "neither cmd nor container")
    check(d.submit({"user": USER, "cmd": "true", "cores": 4096}), 400, "cores over capacity",
          "cores")
    check(d.submit({"user": "root", "cmd": "true"}), 403, "root refused")
    check(d.submit({"user": "no-such-account-x", "cmd": "true"}), 400, "unknown account", "user")
    # This daemon's dockerd socket does not exist: container tasks are refused, not queued.
    before = d.request("GET", "/v1/jobproxy/state?limit=2048").json()["count"]
    r = d.submit({"user": USER, "container": {"image": "busybox"}})
    tap.eq(r.status, 502, "a container task while dockerd is unreachable is 502")
    tap.ok("container backend is unavailable" in r.text and "/nonexistent/docker.sock" in r.text,
           "502 says why, naming the socket", r)
    after = d.request("GET", "/v1/jobproxy/state?limit=2048").json()["count"]
    tap.eq(after, before, "a refused container task is not stored")
    check(d.submit({"user": USER, "container": {"image": "Bad Image"}}), 400, "bad image name",
          "container.image")


def t_follow_idle(tap, d):
    """A followed log outlives the idle-connection timeout (2 s here)."""
    with ocps.serving(tap, ocps.Daemon(config="http_timeout: 2s\n"), "http_timeout 2s") as d2:
        tid = d2.submit_id({"user": USER, "cmd": "echo start; sleep 4; echo end"})
        r = d2.request("GET", "/v1/jobproxy/logs/%s?follow=1" % tid)
        tap.eq(r.text, "start\nend\n", "a log followed through 4 s of silence arrives whole")


def t_openapi(tap, d):
    import os
    src = os.path.join(os.path.dirname(__file__), "..", "..", "openapi", "ocps-proxy.yaml")
    with open(src, "rb") as f:
        text = f.read()
    r = d.request("GET", "/v1/openapi.yaml")
    tap.ok(r.status == 200 and r.headers.get("content-type") == "application/yaml" and r.body == text,
           "GET /v1/openapi.yaml serves openapi/ocps-proxy.yaml as application/yaml", r)
    r = d.request("GET", "/v1/openapi.json")
    doc = r.json() if r.status == 200 else {}
    tap.ok(r.headers.get("content-type") == "application/json" and doc.get("openapi", "").startswith("3.1")
           and "/jobproxy/submit" in doc.get("paths", {}),
           "GET /v1/openapi.json serves its JSON form", r)
    try:
        import yaml
        tap.eq(doc, yaml.safe_load(text), "the JSON form is the YAML document, converted")
    except ImportError:
        tap.ok(False, "python3-yaml is installed (scripts/install-deps.sh)")


ocps.require_root()
ocps.ensure_user(USER)
ocps.run([t_ping, t_submit_and_run, t_accept, t_formats, t_list, t_logs, t_delete, t_errors,
          t_follow_idle, t_openapi],
         config="docker: {socket: /nonexistent/docker.sock}\n")
