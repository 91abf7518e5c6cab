#!/usr/bin/env python3
"""The unix socket listener: the caller's uid (SO_PEERCRED) decides whose
tasks it may submit, see, list and delete; root and the daemon's own uid
act for anyone. Each client runs in a child process that drops to its uid
before connecting, so the kernel, not the request, says who is calling."""

import json
import os
import pwd

import ocps
from ocps import Daemon, ensure_user, require_root, serving


def call(sock_path, uid, method, path, body=None, d=None):
    """One HTTP/1.1 request over the unix socket as uid; returns (status,
    body). With d, the exchange is held to the contract as d.request's are."""
    resp = ocps.unix_requests_as(sock_path, uid, [(method, path, body)])[0]
    if d is not None:
        d.record(method, path, {"Content-Type": "application/json"} if body is not None else {},
                 json.dumps(body) if body is not None else None, resp)
    return resp.status, resp.text


def t_unix(tap):
    require_root()
    alice = ensure_user("ocpstest")
    bob = ensure_user("ocpstest2")
    d = Daemon()
    sock = os.path.join(d.data_dir, "api.sock")
    d.extra_args = ["--listen", "unix:" + sock]
    os.chmod(d.data_dir, 0o755)  # the clients below must reach the socket
    with serving(tap, d, "unix socket tests"):
        st, body = call(sock, alice.pw_uid, "POST", "/v1/jobproxy/submit",
                        {"user": "ocpstest", "cmd": "sleep 30"})
        tap.eq(st, 200, "a caller submits for its own account over the socket")
        own = json.loads(body)["id"] if st == 200 else None

        st, body = call(sock, alice.pw_uid, "POST", "/v1/jobproxy/submit",
                        {"user": "ocpstest2", "cmd": "true"})
        tap.ok(st == 403 and "may run as itself (ocpstest) only, not ocpstest2" in body,
               "a caller cannot submit for another account (403)", body)

        st, body = call(sock, None, "POST", "/v1/jobproxy/submit",
                        {"user": "ocpstest2", "cmd": "sleep 30"})
        tap.eq(st, 200, "root submits for any account")
        other = json.loads(body)["id"] if st == 200 else None

        # Another account's task is answered as unknown: its existence is not told.
        st, body = call(sock, bob.pw_uid, "GET", "/v1/jobproxy/state/%s" % own)
        tap.ok(st == 404, "another caller cannot read the task's state (404)", body)
        st, body = call(sock, bob.pw_uid, "GET", "/v1/jobproxy/task/%s" % own)
        tap.ok(st == 404, "another caller cannot read the task (404)", body)
        st, body = call(sock, bob.pw_uid, "DELETE", "/v1/jobproxy/delete/%s" % own)
        tap.ok(st == 404, "another caller cannot delete the task (404)", body)
        st, body = call(sock, bob.pw_uid, "GET", "/v1/jobproxy/logs/%s" % own)
        tap.ok(st == 404, "another caller cannot read the task's output (404)", body)
        st, body = call(sock, alice.pw_uid, "GET", "/v1/jobproxy/state/%s" % own)
        tap.ok(st == 200 and json.loads(body)["user"] == "ocpstest",
               "the owner reads its task's state", body)

        st, body = call(sock, bob.pw_uid, "GET", "/v1/jobproxy/state")
        ids = [s["id"] for s in json.loads(body)["state"]] if st == 200 else []
        tap.ok(st == 200 and ids == [other], "a caller's list holds only its own tasks", body)
        st, body = call(sock, bob.pw_uid, "GET", "/v1/jobproxy/state?user=ocpstest", d=d)
        tap.ok(st == 403, "a caller cannot list another account's tasks (403)", body)

        st, body = call(sock, alice.pw_uid, "DELETE", "/v1/jobproxy/delete/%s" % own)
        tap.eq(st, 204, "the owner deletes its own task")
        st, body = call(sock, None, "DELETE", "/v1/jobproxy/delete/%s" % other)
        tap.eq(st, 204, "root deletes anyone's task")
        for tid in (own, other):
            if tid:
                s = d.wait(tid)
                tap.eq(s and s["code"], "CANCELED", "task %s ends CANCELED" % tid[:8])

        r = d.request("POST", "/v1/jobproxy/submit", {"user": "ocpstest2", "cmd": "true"})
        tap.eq(r.status, 200, "TCP callers are not restricted by uid (the listener's choice)")


if __name__ == "__main__":
    ocps.main(t_unix)
