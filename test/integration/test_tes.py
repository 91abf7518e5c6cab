#!/usr/bin/env python3
"""GA4GH TES 1.1 at /ga4gh/tes/v1 (issue #13, so far): service-info,
ListTasks and GetTask over tasks made through the JobProxy API, each shown as a
one-executor TES task - views, filters (name_prefix, state, tag pairs),
pages, what another principal sees, and the 400s. Every exchange is
also held against openapi/ocps-proxy.yaml, whose TES schemas allow no
field TES 1.1 does not define."""

import json
import os
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
    tap.eq(si.get("storage"), ["file:///", "http://", "https://"],
           "service-info's storage (no config): what inputs can be read from, file and http(s)")


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
    # Its executor log's stdout and stderr (FULL): the tail of its output.
    jid = d.submit_id({"user": USER, "name": "printer", "cmd": "echo out-line; echo err-line >&2"})
    d.wait(jid)
    xl = d.request("GET", TES + "/tasks/%s?view=FULL" % jid).json()["logs"][0]["logs"][0]
    tap.eq((xl.get("stdout"), xl.get("stderr")), ("out-line\n", "err-line\n"),
           "FULL: a JobProxy task's executor log has its stdout and stderr tails")
    xl = d.request("GET", TES + "/tasks/%s?view=BASIC" % jid).json()["logs"][0]["logs"][0]
    tap.ok("stdout" not in xl and "stderr" not in xl, "BASIC: without them", xl)
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
                         ({"tag_key": "a", "tag_value": ["1", "2"]}, "more tag_values than keys"),
                         ({"tag_key": ["k%d" % i for i in range(33)]}, "33 tag_keys")):
        r = tes_list(d, **params)
        body = r.json() if r.status == 400 else {}
        tap.ok(r.status == 400 and set(body) == {"code", "message"} and body["code"] == 400,
               "%s: 400 {code, message}" % what, r)
    r = d.request("POST", TES + "/service-info", token=None)
    tap.eq(r.status, 405, "POST service-info: 405")


# ---- tasks made through TES: create, cancel, the stored task, its log ----

# TES tasks are container tasks: these need the shared dockerd
# (test/docker/setup.sh) with the busybox test image, never pulled; what
# the executors do is the docker suite's (test/docker). One core: a
# JobProxy task holding it keeps a TES task QUEUED.
DOCKER_SOCK = "/var/run/docker.sock"
IMAGE = "ocps-test/busybox:1"
TES_CONFIG = ("docker: {network: none, pull: never, instance: tes-it-%d}\ncapacity: {cores: 1}\n"
              "principals: {admin: {tes_user: %s}, nobody-tes: {}}\n"
              "tes: {id: org.example.tes, name: Example TES, storage: ['file:///data/'],\n"
              "      organization: {name: Example Lab, url: 'https://example.org/'}}\n"
              % (os.getpid(), USER))


def dockerd_has_image():
    """Whether the shared dockerd answers and holds the test image."""
    import http.client
    import socket

    class Unix(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(DOCKER_SOCK)
    try:
        c = Unix("localhost", timeout=10)
        c.request("GET", "/v1.41/images/%s/json" % IMAGE)
        return c.getresponse().status == 200
    except OSError:
        return False

FULL_TASK = {
    "name": "wf-step-1",
    "description": "a task with every field",
    "inputs": [{"name": "in", "path": "/data/in.txt", "url": "s3://bucket/in.txt", "type": "FILE"},
               {"path": "/data/inline", "content": "hello\n"}],
    "outputs": [{"path": "/data/out/*.txt", "path_prefix": "/data/out/",
                 "url": "file:///tmp/tes-out/", "type": "FILE"}],
    "resources": {"cpu_cores": 1, "ram_gb": 0.25, "disk_gb": 1.5, "preemptible": True,
                  "zones": ["z1"], "backend_parameters": {"walltime": "60", "nope": "x"}},
    "executors": [{"image": IMAGE, "command": ["cat", "/data/in.txt"],
                   "workdir": "/data", "stdout": "/data/out/a.txt", "env": {"A": "1"}},
                  {"image": IMAGE, "command": ["true"], "ignore_error": True}],
    "volumes": ["/scratch"],
    "tags": {"wf": "w1", "step": "1"},
}


def tes_create(d, task, token=ocps.ADMIN, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    body = task if isinstance(task, (str, bytes)) else json.dumps(task)
    return d.request("POST", TES + "/tasks", body, h, token=token)


def tes_get(d, tid, view="MINIMAL", token=ocps.ADMIN):
    r = d.request("GET", TES + "/tasks/%s?view=%s" % (tid, view), token=token)
    return r.json() if r.status == 200 else None


def wait_tes(d, tid, states=("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED")):
    got = ocps.until(lambda: (tes_get(d, tid) or {}).get("state") in states)
    return (tes_get(d, tid) or {}).get("state") if got else None


def hold_core(tap, d):
    """A JobProxy task RUNNING on the one core: TES tasks wait QUEUED."""
    hold = d.submit_id({"user": USER, "cmd": "sleep 300", "cores": 1})
    tap.ok(ocps.until(lambda: (d.state(hold) or {}).get("code") == "RUNNING"),
           "a JobProxy task holds the one core")
    return hold


def t_create(tap, d):
    hold = hold_core(tap, d)
    r = tes_create(d, FULL_TASK)
    body = r.json() if r.status == 200 else None
    tap.ok(r.status == 200 and set(body) == {"id"}, "POST /tasks: exactly 200 {\"id\"}", r)
    if not body:
        return
    tid = body["id"]
    tap.ok(":" not in tid and "/" not in tid, "the id has no ':' or '/'")
    full = tes_get(d, tid, "FULL")
    tap.eq(full.get("state"), "QUEUED", "it waits QUEUED for the core")
    for k in ("name", "description", "outputs", "executors", "volumes", "tags"):
        tap.eq(full.get(k), FULL_TASK[k], "FULL: %s as created" % k)
    want_in = [dict(FULL_TASK["inputs"][0]), dict(FULL_TASK["inputs"][1], type="FILE")]
    tap.eq(full.get("inputs"), want_in, "FULL: inputs as created (content is a FILE)")
    res = dict(FULL_TASK["resources"], backend_parameters={"walltime": "60"})
    tap.eq(full.get("resources"), res, "FULL: resources, without the unsupported parameter")
    sys_logs = full["logs"][0].get("system_logs", []) if full.get("logs") else []
    tap.eq(len([m for m in sys_logs if "nope" in m and "not supported" in m]), 1,
           "FULL: the dropped backend parameter is named in system_logs, once")
    basic = tes_get(d, tid, "BASIC")
    tap.ok("content" not in basic["inputs"][1] and "system_logs" not in basic["logs"][0],
           "BASIC: no input content, no system_logs", basic)
    js = d.state(tid)
    tap.eq(js["code"] if js else None, "QUEUED", "the JobProxy State says the same")
    r = d.request("GET", "/v1/jobproxy/task/" + tid)
    jt = r.json() if r.status == 200 else {}
    tap.ok(r.status == 200 and "tes" not in jt and jt.get("user") == USER and
           jt.get("container", {}).get("image") == IMAGE and
           jt.get("container", {}).get("cmd") == ["cat", "/data/in.txt"] and
           jt.get("walltime") == "60s" and jt.get("cores") == 1,
           "the JobProxy task: the first executor, the tes_user, cores, walltime; no TES part", jt)

    # The stored task is the same after a restart.
    d.stop()
    d.start()
    tap.eq(tes_get(d, tid, "FULL"), full, "FULL is the same after a restart")
    r = tes_list(d, view="BASIC", name_prefix="wf-step")
    tasks = r.json()["tasks"]
    tap.eq([t["id"] for t in tasks], [tid], "listed by its name (name_prefix)")
    tap.eq(tasks[0]["executors"] if tasks else None, FULL_TASK["executors"], "listed: its executors")
    tap.eq([t["id"] for t in tes_list(d, tag_key="wf", tag_value="w1").json()["tasks"]], [tid],
           "listed by its tags")
    for t in (tid, hold):
        d.request("POST", TES + "/tasks/%s:cancel" % t)
        tap.eq(wait_tes(d, t), "CANCELED", "cancelled")


def t_create_errors(tap, d):
    x = {"image": IMAGE, "command": ["true"]}
    for body, status, want, what in (
            ("", 400, "empty request body", "an empty body"),
            ("{", 400, "", "not JSON"),
            ({"name": "x"}, 400, "executors: is required", "no executors"),
            ({"executors": [{"image": "i"}]}, 400, "executors[0].command", "no command"),
            ({"executors": [x], "resources": {"backend_parameters": {"nope": "1"},
                                              "backend_parameters_strict": True}},
             400, "nope", "an unsupported strict backend parameter"),
            ({"executors": [x], "resources": {"ram_gb": 0.001}}, 400, "as a task of this server",
             "a memory the one validator refuses")):
        r = tes_create(d, body)
        msg = r.json().get("message", "") if r.status == status else ""
        tap.ok(r.status == status and want in msg and r.json().get("code") == status,
               "%s: %d {code, message} naming it" % (what, status), r)
    r = tes_create(d, {"executors": [x]}, headers={"Content-Type": "application/xml"})
    tap.eq(r.status, 415, "a tesTask is JSON: application/xml is 415")
    r = tes_create(d, {"executors": [x]}, token=None)
    tap.eq(r.status, 401, "no credentials: 401")
    # Accepted at create whatever it cannot fulfil (the spec's leniency).
    r = tes_create(d, {"executors": [x], "inputs": [{"url": "drs://x/y", "path": "/in"}],
                       "id": "mine", "state": "COMPLETE", "logs": [], "unknown": 1})
    tap.ok(r.status == 200 and r.json()["id"] != "mine",
           "unknown schemes, no type, read-only and unknown fields: accepted, id ours", r)


def t_unix_peer(tap, d):
    """Without tes_user, a unix-socket peer's TES tasks run as itself."""
    import pwd
    uid = pwd.getpwnam(USER).pw_uid
    task = {"executors": [{"image": IMAGE, "command": ["true"]}], "name": "from-unix"}
    r = ocps.unix_requests_as(d.unix_sock, uid, [("POST", TES + "/tasks", task)])[0]
    tid = r.json().get("id") if r.status == 200 else None
    tap.ok(tid, "a unix peer creates a TES task with no tes_user in its policy", r)
    if tid:
        jt = d.request("GET", "/v1/jobproxy/task/" + tid).json()
        tap.eq(jt.get("user"), USER, "it runs as the peer's own account")


def t_service_info_config(tap, d):
    si = d.request("GET", TES + "/service-info", token=None).json()
    tap.eq((si["id"], si["name"], si["organization"], si["storage"]),
           ("org.example.tes", "Example TES", {"name": "Example Lab", "url": "https://example.org/"},
            ["file:///data/"]),
           "service-info: id, name, organization and storage from the config's tes section")


def t_disk(tap, d):
    x = {"image": IMAGE, "command": ["true"]}
    r = tes_create(d, {"executors": [x], "resources": {"disk_gb": 1e6}})
    msg = r.json().get("message", "") if r.status == 400 else ""
    tap.ok(r.status == 400 and "resources.disk_gb" in msg and "free" in msg,
           "disk_gb above the free space: 400 naming it and what is free", r)
    r = tes_create(d, {"executors": [x], "resources": {"disk_gb": 0.001}})
    tid = r.json().get("id") if r.status == 200 else None
    tap.ok(tid and tes_get(d, tid, "BASIC")["resources"] == {"disk_gb": 0.001},
           "a disk_gb that fits: accepted and recorded", r)


def t_tes_user(tap, d):
    token = principal_token(d, "nobody-tes")
    r = tes_create(d, {"executors": [{"image": IMAGE, "command": ["true"]}]},
                   token=token)
    msg = r.json().get("message", "") if r.status == 403 else ""
    tap.ok(r.status == 403 and "tes_user" in msg,
           "a principal without tes_user (not a unix peer): 403 naming tes_user", r)


def t_cancel(tap, d):
    hold = hold_core(tap, d)
    r = tes_create(d, {"executors": [{"image": IMAGE, "command": ["true"]}],
                       "resources": {"cpu_cores": 1}})
    tid = r.json()["id"]
    tap.eq(tes_get(d, tid), {"id": tid, "state": "QUEUED"}, "the TES task waits QUEUED")
    r = d.request("POST", TES + "/tasks/%s:cancel" % tid)
    tap.eq((r.status, r.json() if r.status == 200 else None), (200, {}), ":cancel: 200 {}")
    tap.eq(tes_get(d, tid), {"id": tid, "state": "CANCELED"},
           "cancelled right after create: CANCELED")
    r = d.request("POST", TES + "/tasks/%s:cancel" % tid)
    tap.ok(r.status == 200 and tes_get(d, tid)["state"] == "CANCELED",
           "a second cancel: 200, still CANCELED", r)
    for path, what in (("/tasks/%s:cancel" % "00000000-0000-4000-8000-000000000000",
                        "an unknown id"),
                       ):
        r = d.request("POST", TES + path)
        tap.eq(r.status, 404, "POST %s: 404" % what)
    for path, what in (("/tasks/%s:frob" % tid, "a verb other than cancel"),
                       ("/tasks/%s" % tid, "no verb")):
        r = d.request("POST", TES + path)
        tap.ok(r.status == 405 and r.headers.get("allow") == "GET",
               "POST %s: 405, Allow: GET" % what, r)
    token = principal_token(d, "nobody-tes")
    r = d.request("POST", TES + "/tasks/%s:cancel" % hold, token=token)
    tap.eq(r.status, 404, "cancelling another principal's task: 404")
    # A JobProxy task is a TES task too: TES cancels it.
    r = d.request("POST", TES + "/tasks/%s:cancel" % hold)
    tap.eq(r.status, 200, "TES cancels the running JobProxy task")
    tap.eq(wait_tes(d, hold), "CANCELED", "and it ends CANCELED")
    st = d.state(hold)
    tap.eq(st["code"] if st else None, "CANCELED", "as its JobProxy State says")
    r = d.request("POST", TES + "/tasks/%s:cancel" % hold)
    tap.ok(r.status == 200 and d.state(hold) is not None,
           "cancel of an ended task: 200, and it is not deleted (DELETE would)", r)
    # With the core free it starts at once: cancelled wherever it got to.
    r = tes_create(d, {"executors": [{"image": IMAGE, "command": ["sleep", "300"]}]})
    tid = r.json()["id"]
    r = d.request("POST", TES + "/tasks/%s:cancel" % tid)
    tap.eq(r.status, 200, "cancel right after create (the task starting): 200")
    tap.eq(wait_tes(d, tid), "CANCELED", "it ends CANCELED")


def t_task_log(tap, d):
    """The TES log a runner writes (tes-log.json, tes.h) is what FULL shows."""
    r = tes_create(d, {"executors": [{"image": IMAGE, "command": ["true"]}],
                       "name": "logged"})
    tid = r.json()["id"]
    tap.eq(wait_tes(d, tid), "COMPLETE", "a one-executor TES task runs to COMPLETE")
    task_dir = os.path.join(d.data_dir, "tasks", tid)
    os.makedirs(task_dir, mode=0o700, exist_ok=True)
    log = {"logs": [{"start_time": "2026-12-04T03:00:00.000Z", "end_time": "2026-12-04T03:00:01.000Z",
                     "stdout": "out tail", "stderr": "", "exit_code": 0}],
           "start_time": "2026-12-04T02:59:59.000Z",
           "outputs": [{"url": "file:///tmp/x", "path": "/data/x", "size_bytes": "5000000000"}],
           "system_logs": ["staged 1 input"]}
    with open(os.path.join(task_dir, "tes-log.json"), "w") as f:
        json.dump(log, f)
    full = tes_get(d, tid, "FULL")
    tl = full["logs"][0] if full and full.get("logs") else {}
    tap.eq(tl.get("logs"), log["logs"], "FULL: the executor logs the runner wrote")
    tap.eq(tl.get("outputs"), log["outputs"], "FULL: its outputs, size_bytes a string")
    tap.eq(tl.get("start_time"), log["start_time"], "FULL: its start time")
    tap.ok(tl.get("end_time") and tl.get("system_logs", [None])[0] == "staged 1 input",
           "the end from the record; the runner's system logs first", tl)
    basic = tes_get(d, tid, "BASIC")["logs"][0]
    tap.ok("stdout" not in basic["logs"][0] and "system_logs" not in basic,
           "BASIC: no stdout, no system_logs", basic)

    # Run by the runner: it names the dropped parameter and the failing
    # executor's end; the reply says each once.
    r = tes_create(d, {"executors": [{"image": IMAGE, "command": ["sh", "-c", "exit 3"]}],
                       "resources": {"backend_parameters": {"nope": "1"}}})
    tid2 = r.json()["id"]
    tap.eq(wait_tes(d, tid2), "EXECUTOR_ERROR", "a TES task that fails")
    sys_logs = tes_get(d, tid2, "FULL")["logs"][0].get("system_logs", [])
    tap.ok(len([m for m in sys_logs if "nope" in m]) == 1,
           "FULL after the runner: the dropped parameter named once", sys_logs)
    tap.ok(len([m for m in sys_logs if m.endswith("exited with status 3")]) == 1,
           "FULL after the runner: the executor's end said once", sys_logs)
    with open(os.path.join(task_dir, "tes-log.json"), "w") as f:
        f.write("{\"logs\": 3}")
    r = d.request("GET", TES + "/tasks/%s?view=FULL" % tid)
    tap.ok(r.status == 500 and "TES log" in r.json().get("message", ""),
           "a damaged tes-log.json: 500 saying so, not a made-up log", r)
    tap.eq(tes_get(d, tid), {"id": tid, "state": "COMPLETE"}, "MINIMAL does not read it")
    with open(os.path.join(task_dir, "tes-log.json"), "w") as f:
        f.write(" " * (17 << 20) + "{}")
    r = d.request("GET", TES + "/tasks/%s?view=BASIC" % tid)
    tap.ok(r.status == 500 and "TES log" in r.json().get("message", ""),
           "a tes-log.json past its cap: 500, not read whole", r)


def principal_token(d, name):
    p = subprocess.run([ocps.DAEMON, "token", "create", "--principal", name, "--data-dir",
                        d.data_dir], capture_output=True, text=True, timeout=60)
    return p.stdout.strip()


def t_create_no_dockerd(tap, d):
    """The daemon's dockerd socket does not exist: nothing is stored."""
    before = len(tes_list(d).json()["tasks"])
    r = tes_create(d, {"executors": [{"image": IMAGE, "command": ["true"]}]})
    tap.ok(r.status == 502 and "dockerd" in r.json().get("message", ""),
           "create with dockerd unreachable: 502 naming it", r)
    tap.eq(len(tes_list(d).json()["tasks"]), before, "and nothing is stored")


def no_container_backend_block(tap):
    """backends: [process]: a TES task (a container task) is stored as
    SYSTEM_ERROR and its id answered, as TES wants: create, then poll."""
    d = ocps.Daemon(config="backends: [process]\nprincipals: {admin: {tes_user: %s}}\n" % USER)
    with ocps.serving(tap, d, "the daemon without a container backend") as d:
        r = tes_create(d, {"executors": [{"image": IMAGE, "command": ["true"]}]})
        tid = r.json().get("id") if r.status == 200 else None
        tap.ok(tid and set(r.json()) == {"id"}, "no container backend: still 200 {\"id\"}", r)
        full = tes_get(d, tid, "FULL") if tid else {}
        sys_logs = full["logs"][0].get("system_logs", []) if full.get("logs") else []
        tap.ok(full.get("state") == "SYSTEM_ERROR" and
               any("no container backend" in m for m in sys_logs),
               "SYSTEM_ERROR, its system log saying why", full)


def tes_block(tap):
    if not dockerd_has_image():
        tap.skip("TES create, cancel and the task log",
                 "no dockerd with %s at %s (test/docker/setup.sh)" % (IMAGE, DOCKER_SOCK))
        return
    d = ocps.Daemon(config=TES_CONFIG)
    d.unix_sock = os.path.join(d.data_dir, "api.sock")
    d.extra_args = ["--listen", "unix:" + d.unix_sock]
    os.chmod(d.data_dir, 0o755)  # the unix peer must reach the socket
    with ocps.serving(tap, d, "the TES daemon") as d:
        ocps.each(tap, d, [t_create, t_create_errors, t_tes_user, t_cancel, t_task_log,
                           t_service_info_config, t_disk, t_unix_peer])


def jobproxy_block(tap):
    with ocps.serving(tap, ocps.Daemon(config="docker: {socket: /nonexistent/docker.sock}\n"
                                         "principals: {admin: {tes_user: %s}}\n" % USER),
                      "the daemon") as d:
        ocps.each(tap, d, [t_service_info, t_list, t_filters, t_pages, t_get, t_other_principal,
                           t_errors, t_create_no_dockerd])


ocps.require_root()
ocps.ensure_user(USER)
ocps.main(jobproxy_block, tes_block, no_container_backend_block)
