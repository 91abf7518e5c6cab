#!/usr/bin/env python3
"""GA4GH TES 1.1 at /ga4gh/tes/v1 (issue #13, so far): service-info,
ListTasks and GetTask over tasks made through the JobProxy API, each shown as a
one-executor TES task - views, filters (name_prefix, state, tag pairs),
pages, what another principal sees, and the 400s. Every exchange is
also held against openapi/ocps-proxy.yaml, whose TES schemas allow no
field TES 1.1 does not define."""

import subprocess
import urllib.parse

import ocps

USER = "ocpstest"
TES = "/ga4gh/tes/v1"
TASK_FIELDS = {"id", "state", "name", "description", "inputs", "outputs", "resources",
               "executors", "volumes", "tags", "logs", "creation_time"}


def tes_list(d, token=ocps.ADMIN, **params):
    """GET /tasks with params (a list value repeats the key, in order)."""
    q = urllib.parse.urlencode(params, doseq=True)
    return d.request("GET", TES + "/tasks" + ("?" + q if q else ""), token=token)


def all_pages(tap, d, page_size, **params):
    ids, token, pages = [], None, 0
    while pages < 100:
        p = dict(params, page_size=page_size)
        if token:
            p["page_token"] = token
        r = tes_list(d, **p)
        if not tap.ok(r.status == 200, "page %d is 200" % pages, r):
            break
        body = r.json()
        ids += [t["id"] for t in body["tasks"]]
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    return ids, pages


def t_service_info(tap, d):
    r = d.request("GET", TES + "/service-info", token=None)
    tap.eq(r.status, 200, "service-info needs no credentials")
    si = r.json() if r.status == 200 else {}
    tap.eq(si.get("type"), {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
           "service-info type is org.ga4gh tes 1.1.0")
    for k in ("id", "name", "organization", "version"):
        tap.ok(si.get(k), "service-info has " + k)
    tap.ok(set(si.get("organization", {})) == {"name", "url"}, "organization is {name, url}", si)
    tap.eq(si.get("tesResources_backend_parameters"), ["walltime", "cputime", "priority"],
           "service-info lists the backend parameters")


def make_tasks(d):
    """Eight finished JobProxy tasks: names a0..a4 and b0..b2, tags."""
    ids = []
    for i in range(8):
        name = ("a%d" % i) if i < 5 else ("b%d" % (i - 5))
        tags = {"lab": "x" if i % 2 else "y"}
        if i % 3 == 0:
            tags["wf"] = "w%d" % i
        ids.append(d.submit_id({"user": USER, "name": name, "cmd": "exit %d" % (i % 2),
                                "tags": tags, "cores": 0.5, "memory": "64M"}))
    for tid in ids:
        d.wait(tid)
    return ids


def t_list(tap, d):
    ids = make_tasks(d)
    r = tes_list(d)
    tap.eq(r.status, 200, "GET /tasks is 200")
    body = r.json()
    tap.eq(set(body), {"tasks"}, "one page, no next_page_token when nothing remains")
    tap.eq([t["id"] for t in body["tasks"]], ids, "every task, oldest first")
    tap.ok(all(set(t) == {"id", "state"} for t in body["tasks"]),
           "MINIMAL by default: id and state only", body)
    tap.ok(all(":" not in t["id"] and "/" not in t["id"] for t in body["tasks"]),
           "ids have no ':' or '/'")
    tap.eq([t["state"] for t in body["tasks"]],
           ["COMPLETE", "EXECUTOR_ERROR"] * 4, "states are TES's")

    basic = tes_list(d, view="BASIC").json()["tasks"]
    t0 = basic[0]
    tap.ok(set(t0) <= TASK_FIELDS, "BASIC: only TES fields", t0)
    tap.eq(t0.get("executors"), [{"image": "", "command": ["/bin/sh", "-c", "exit 0"]}],
           "a JobProxy command task is one executor")
    tap.eq(t0.get("resources"), {"cpu_cores": 1, "ram_gb": 0.0625}, "cores and memory as resources")
    tap.eq(t0.get("name"), "a0", "name")
    tap.eq(t0.get("tags"), {"lab": "y", "wf": "w0"}, "tags")
    tap.ok(t0.get("creation_time", "").endswith("Z"), "creation_time is RFC 3339")
    logs = t0.get("logs", [])
    tap.ok(len(logs) == 1 and set(logs[0]) >= {"logs", "outputs"} and "system_logs" not in logs[0],
           "BASIC: one task log with logs and outputs, no system_logs", logs)
    xl = logs[0]["logs"] if logs else []
    tap.ok(len(xl) == 1 and xl[0].get("exit_code") == 0 and "stdout" not in xl[0],
           "BASIC: the executor log has exit_code, no stdout", xl)
    tap.eq(basic[1]["logs"][0]["logs"][0]["exit_code"], 1, "the failing task's exit code")

    full = tes_list(d, view="FULL").json()["tasks"]
    xl = full[1]["logs"][0]["logs"][0]
    tap.ok("stdout" in xl and "stderr" in xl and xl["exit_code"] == 1,
           "FULL: the executor log has stdout and stderr", xl)
    tap.ok(full[1]["logs"][0].get("system_logs"), "FULL: system_logs say why it failed", full[1])


def t_filters(tap, d):
    r = tes_list(d, name_prefix="b")
    tap.eq(len(r.json()["tasks"]), 3, "name_prefix=b: three tasks")
    tap.eq(len(tes_list(d, name_prefix="a0").json()["tasks"]), 1, "name_prefix=a0: one")
    tap.eq(len(tes_list(d, state="EXECUTOR_ERROR").json()["tasks"]), 4, "state=EXECUTOR_ERROR: four")
    tap.eq(len(tes_list(d, state="EXECUTOR_ERROR", name_prefix="a").json()["tasks"]), 2,
           "state and name_prefix together")
    tap.eq(tes_list(d, state="PAUSED").json(), {"tasks": []}, "state=PAUSED (never produced): none")
    tap.eq(len(tes_list(d, tag_key="lab", tag_value="x").json()["tasks"]), 4, "lab=x: four")
    tap.eq(len(tes_list(d, tag_key="wf").json()["tasks"]), 3, "a key alone matches any value")
    tap.eq(len(tes_list(d, tag_key="wf", tag_value="").json()["tasks"]), 3,
           "an empty value matches any value")
    tap.eq(len(tes_list(d, tag_key=["wf", "lab"], tag_value=["", "x"]).json()["tasks"]), 1,
           "pairs by position, all must hold (wf=* and lab=x: task 3)")
    tap.eq(len(tes_list(d, tag_key=["lab", "wf"], tag_value=["x", "w6"]).json()["tasks"]), 0,
           "wf=w6 is on a lab=y task: none")
    tap.eq(len(tes_list(d, tag_key="nope").json()["tasks"]), 0, "a key no task has: none")


def t_pages(tap, d):
    want = [t["id"] for t in tes_list(d).json()["tasks"]]
    ids, pages = all_pages(tap, d, 3)
    tap.eq(ids, want, "pages of 3 give every task once, in order")
    tap.eq(pages, 3, "8 tasks in pages of 3: 3 pages")
    ids, pages = all_pages(tap, d, 4)
    tap.eq((ids, pages), (want, 2), "8 tasks in pages of 4: 2 pages, no token on the last")
    ids, _ = all_pages(tap, d, 2, name_prefix="a", state="COMPLETE")
    tap.eq(len(ids), 3, "pages over a filter")


def t_get(tap, d):
    listed = {t["id"]: t for t in tes_list(d, view="FULL").json()["tasks"]}
    tid = next(iter(listed))
    r = d.request("GET", TES + "/tasks/" + tid)
    tap.eq((r.status, r.json()), (200, {"id": tid, "state": "COMPLETE"}),
           "GET /tasks/{id}: MINIMAL by default")
    for view in ("BASIC", "FULL"):
        r = d.request("GET", TES + "/tasks/%s?view=%s" % (tid, view))
        want = tes_list(d, view=view).json()["tasks"][0]
        tap.eq(r.json(), want, "GET /tasks/{id}?view=%s is the task as listed" % view)
    st = d.state(tid)
    t = d.request("GET", TES + "/tasks/%s?view=BASIC" % tid).json()
    tap.ok(st["code"] == t["state"] and st["exit_code"] == t["logs"][0]["logs"][0]["exit_code"],
           "the JobProxy State and the TES task agree", (st, t))
    r = d.request("GET", TES + "/tasks/00000000-0000-4000-8000-000000000000")
    tap.eq(r.status, 404, "an unknown id: 404")
    r = d.request("GET", TES + "/tasks/%s:cancel" % tid)
    tap.eq(r.status, 404, "GET on ID:cancel: 404 (no such task)")
    r = d.request("GET", TES + "/tasks/%s?view=Full" % tid)
    tap.eq(r.status, 400, "a view not in the enum: 400")


def t_other_principal(tap, d):
    p = subprocess.run([ocps.DAEMON, "token", "create", "--principal", "other", "--data-dir",
                        d.data_dir], capture_output=True, text=True, timeout=60)
    token = p.stdout.strip()
    r = tes_list(d, token=token)
    tap.eq((r.status, r.json()), (200, {"tasks": []}), "another principal sees none of them")
    tid = tes_list(d).json()["tasks"][0]["id"]
    r = d.request("GET", TES + "/tasks/" + tid, token=token)
    tap.eq(r.status, 404, "nor GETs one (404)")
    r = tes_list(d, token=None)
    tap.eq(r.status, 401, "no credentials: 401")


def t_errors(tap, d):
    for params, what in (({"view": "basic"}, "view=basic (the enum is upper case)"),
                         ({"view": "ALL"}, "view=ALL"),
                         ({"page_size": 0}, "page_size=0"),
                         ({"page_size": 2048}, "page_size=2048"),
                         ({"page_size": "x"}, "page_size=x"),
                         ({"page_token": "bogus"}, "page_token=bogus"),
                         ({"state": "DONE"}, "state=DONE"),
                         ({"tag_key": ""}, "an empty tag_key"),
                         ({"tag_key": "a", "tag_value": ["1", "2"]}, "more tag_values than keys")):
        r = tes_list(d, **params)
        body = r.json() if r.status == 400 else {}
        tap.ok(r.status == 400 and set(body) == {"code", "message"} and body["code"] == 400,
               "%s: 400 {code, message}" % what, r)
    r = d.request("POST", TES + "/service-info", token=None)
    tap.eq(r.status, 405, "POST service-info: 405")


ocps.require_root()
ocps.ensure_user(USER)
ocps.run([t_service_info, t_list, t_filters, t_pages, t_get, t_other_principal, t_errors],
         config="docker: {socket: /nonexistent/docker.sock}\n")
