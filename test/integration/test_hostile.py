#!/usr/bin/env python3
"""Malformed, truncated, hostile and huge requests each get the right 4xx,
and the daemon keeps serving."""

import socket

import ocps

USER = "ocpstest"


def raw(d, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def t_bodies(tap, d):
    cases = [
        ("application/json", b'{"user": "x", "cmd": ', 400, "truncated JSON"),
        ("application/json", b"[" * 100000, 400, "deep JSON nesting"),
        ("application/json", b"\xff\xfe\x00garbage", 400, "binary garbage as JSON"),
        ("application/json", b'{"user": "%s", "cmd": "true", "user": "root"}' % USER.encode(),
         400, "duplicate keys"),
        ("application/json", b'{"user": "%s", "cmd": 5}' % USER.encode(), 400, "cmd of wrong type"),
        ("application/json", b'{"user": "%s", "cmd": "true", "memory": 1e308}' % USER.encode(),
         400, "absurd memory"),
        ("application/json", b"", 400, "empty body"),
        ("application/yaml", b"a: &a [x]\nb: *a\n", 400, "YAML alias"),
        ("application/yaml", b"user: [unclosed\n", 400, "broken YAML"),
        ("application/yaml", b"- just\n- a list\n", 400, "YAML not a mapping"),
        ("application/xml",
         b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
         b"<task><user>&b;</user><cmd>true</cmd></task>", 400, "XML entity expansion"),
        ("application/xml",
         b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         b"<task><user>&x;</user><cmd>true</cmd></task>", 400, "XML external entity"),
        ("application/xml", b"<task><user>x</user>", 400, "truncated XML"),
        ("application/xml", b"<other/>", 400, "wrong XML root"),
    ]
    for ctype, body, status, what in cases:
        r = d.request("POST", "/v1/jobproxy/submit", body, {"Content-Type": ctype})
        ok = r.status == status
        try:
            ok = ok and r.json()["code"] == status and r.json()["message"]
        except Exception:
            ok = False
        tap.ok(ok, "%s -> %d" % (what, status), r)


def t_raw(tap, d):
    # libmicrohttpd 0.9.75 drops a one-word request line without an answer;
    # anything that looks like HTTP gets a status.
    out = raw(d, b"GARBAGE\r\n\r\n")
    tap.ok(out == b"" or out.startswith(b"HTTP/1.1 4"),
           "a one-word request line is answered 4xx or dropped", out[:200])
    out = raw(d, b"GET /v1/jobproxy/ping HTTP/1.1\r\nBad header\r\n\r\n")
    tap.ok(out.startswith(b"HTTP/1.1 400"), "a malformed header line gets 400", out[:200])
    out = raw(d, b"GET /v1/jobproxy/ping\r\n\r\n")
    tap.ok(out.startswith(b"HTTP/1.1 400"), "a request line without a version gets 400", out[:200])
    out = raw(d, b"GET /v1/jobproxy/ping HTTP/9.9\r\nHost: x\r\n\r\n")
    tap.ok(out.startswith(b"HTTP/1.1 505"), "an unknown HTTP version gets 505", out[:200])
    out = raw(d, b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 99999999999\r\n\r\n{")
    tap.ok(b" 413 " in out.split(b"\r\n")[0], "an absurd Content-Length is 413", out[:200])
    out = raw(d, b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"user\"")
    tap.ok(b"201" not in out and b" 200 " not in out, "a truncated body is not accepted", out[:200])
    chunks = b"".join(b"%x\r\n%s\r\n" % (65536, b"a" * 65536) for _ in range(40))
    out = raw(d, b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n", timeout=20)
    tap.ok(b" 413 " in out.split(b"\r\n")[0], "a chunked body over the cap is 413", out[:200])
    out = raw(d, b"GET /v1/jobproxy/state/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
    tap.ok(b" 404 " in out.split(b"\r\n")[0], "path traversal in the id is 404", out[:200])
    r = d.request("GET", "/v1/jobproxy/state/%00")
    tap.ok(r.status in (400, 404), "NUL in the path is 4xx", r)


def t_still_serving(tap, d):
    r = d.request("GET", "/v1/jobproxy/ping")
    tap.eq(r.status, 200, "the daemon still answers after the hostile requests")
    tid = d.submit_id({"user": USER, "cmd": "echo fine"})
    st = d.wait(tid)
    tap.eq(st["code"], "COMPLETE", "and still runs tasks")


ocps.require_root()
ocps.ensure_user(USER)
ocps.run([t_bodies, t_raw, t_still_serving])
