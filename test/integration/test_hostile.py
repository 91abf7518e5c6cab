#!/usr/bin/env python3
"""Malformed, truncated, hostile and huge requests each get the right 4xx,
and the daemon keeps serving: framing that two readers may read two ways
(request smuggling), strings with a NUL or bytes that are not UTF-8 in
every format, unknown XML attributes; clients that hold connections idle
or send a byte now and then; a full pool, which answers 503 rather than
leaving a client hanging; and a daemon that is not root, or runs under a
permissive umask, failing closed."""

import http.client
import json
import os
import pwd
import re
import select
import socket
import stat
import subprocess
import time

import ocps

USER = "ocpstest"
USER2 = "ocpstest2"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tasks")


class Daemon(ocps.Daemon):
    """ocps.Daemon started as another account (user) and/or under another
    umask: ocps.Daemon starts its process with subprocess.Popen, which
    start() wraps for the one call."""

    def __init__(self, user=None, umask=None, **kw):
        super().__init__(**kw)
        self.user = pwd.getpwnam(user) if user else None
        self.umask = umask
        if self.user:
            os.chown(self.data_dir, self.user.pw_uid, self.user.pw_gid)

    def _preexec(self):
        if self.umask is not None:
            os.umask(self.umask)
        if self.user:
            os.setgroups([])
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

    def start(self):
        real = subprocess.Popen
        subprocess.Popen = lambda args, **kw: real(args, preexec_fn=self._preexec, **kw)
        try:
            return super().start()
        finally:
            subprocess.Popen = real


def raw(d, data, timeout=5):
    """Sends data (bytes, or a list of pieces sent 50 ms apart), then reads
    all the server sends until it closes."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        try:
            for i, piece in enumerate(data if isinstance(data, list) else [data]):
                if i:
                    time.sleep(0.05)
                s.sendall(piece)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # a reset or a close: what the server sent before it closed may still be there to read
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
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


def one_reply(out):
    """The one reply in out (all the server sent before it closed): its
    status, headers and body, or a string saying what is wrong with it."""
    status_lines = [l for l in out.split(b"\r\n") if re.match(rb"HTTP/\d\.\d \d{3} ", l)]
    if len(status_lines) != 1:
        return "%d status lines" % len(status_lines)
    head, sep, body = out.partition(b"\r\n\r\n")
    if not sep:
        return "no end of the header block"
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        m = re.match(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([\x20-\x7e]*)$", line)
        if not m:
            return "malformed header line %r" % line
        headers[m.group(1).decode().lower()] = m.group(2).decode()
    if headers.get("content-length") != str(len(body)):
        return "Content-Length %r for a body of %d bytes" % (headers.get("content-length"), len(body))
    return int(lines[0].split()[1]), headers, body


def t_malformed_heads(tap, d):
    """libmicrohttpd 0.9.75 dropped a one-word request line without an
    answer and sent its status line and headers twice for a Content-Length
    it could not parse: each gets exactly one well-formed 400 naming it."""
    post = (b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %s\r\n\r\n{}")
    cases = [
        (b"GET\r\n\r\n", 400, "request line", "a one-word request line (GET)"),
        (b"GARBAGE\r\n\r\n", 400, "request line", "a one-word request line (GARBAGE)"),
        (post % b"abc", 400, "Content-Length", "Content-Length: abc"),
        (post % b"-1", 400, "Content-Length", "Content-Length: -1"),
        (b"GET /v1/jobproxy/ping HTTP/1.1\r\nHost: x\r\nContent-Length: x1\r\n\r\n", 400,
         "Content-Length", "Content-Length: x1 on a GET"),
        (post % b"99999999999999999999999", 413, "Content-Length",
         "a Content-Length past 2^64"),
        (b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
         b"Content-Length: 3\r\n\r\n{}", 400, "Content-Length", "two different Content-Lengths"),
    ]
    for data, status, needle, what in cases:
        out = raw(d, data)
        reply = one_reply(out)
        if not tap.ok(isinstance(reply, tuple), "%s: exactly one well-formed reply" % what,
                      "%s\n%r" % (reply, out[:600])):
            continue
        code, headers, body = reply
        try:
            j = json.loads(body)
        except ValueError:
            j = {}
        tap.ok(code == status and j.get("code") == status and needle in j.get("message", ""),
               "%s -> %d naming %s" % (what, status, needle), out[:600])

    # The gate lingers after its answer too: a client that writes its whole
    # body before it reads gets the 400, not a reset.
    got = send_body(d, b"x" * (4 << 20), {"Content-Type": "application/json",
                                          "Content-Length": "abc"})
    tap.ok(status_of(got) == 400 and "Content-Length" in got.json()["message"],
           "http.client sending Content-Length: abc and 4 MiB reads the 400", got)

    # The head is judged once it is whole, however it arrives.
    out = raw(d, [b"GET /v1/jobproxy/ping HT", b"TP/1.1\r\nHo", b"st: x\r\n\r\n"])
    reply = one_reply(out)
    tap.ok(isinstance(reply, tuple) and reply[0] == 200 and reply[2].startswith(b"alive"),
           "a head that arrives in three pieces is served", out[:600])
    out = raw(d, [b"GARB", b"AGE\r\n\r\n"])
    reply = one_reply(out)
    tap.ok(isinstance(reply, tuple) and reply[0] == 400,
           "a one-word request line that arrives in two pieces -> one 400", out[:600])


def t_raw(tap, d):
    out = raw(d, b"GET /v1/jobproxy/ping HTTP/1.1\r\nBad header\r\n\r\n")
    tap.ok(out.startswith(b"HTTP/1.1 400"), "a malformed header line gets 400", out[:200])
    out = raw(d, b"GET /v1/jobproxy/ping\r\n\r\n")
    tap.ok(out.startswith(b"HTTP/1.1 400"), "a request line without a version gets 400", out[:200])
    out = raw(d, b"GET /v1/jobproxy/ping HTTP/9.9\r\nHost: x\r\n\r\n")
    tap.ok(out.startswith(b"HTTP/1.1 505"), "an unknown HTTP version gets 505", out[:200])
    auth = b"Authorization: Bearer %s\r\n" % d.token.encode()
    out = raw(d, b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 99999999999\r\n" + auth + b"\r\n{")
    tap.ok(b" 413 " in out.split(b"\r\n")[0], "an absurd Content-Length is 413", out[:200])
    out = raw(d, b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n" + auth + b"\r\n{\"user\"")
    tap.ok(b"201" not in out and b" 200 " not in out, "a truncated body is not accepted", out[:200])
    chunks = b"".join(b"%x\r\n%s\r\n" % (65536, b"a" * 65536) for _ in range(40))
    out = raw(d, b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n" + auth + b"\r\n" + chunks + b"0\r\n\r\n", timeout=20)
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


def send_body(d, body, headers, method="POST", path="/v1/jobproxy/submit", timeout=60):
    """Sends a body with http.client, which writes the whole body before it
    reads the answer: the response, or the exception the client saw."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return ocps.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    except OSError as e:
        return e
    finally:
        c.close()


def status_of(got):
    return got.status if isinstance(got, ocps.Response) else got


def t_refused_bodies(tap, d):
    """A request refused with its body on the way (over max_body, 1 MiB
    here; no such path; a wrong method) from a client that writes the whole
    body before it reads gets its answer, not a reset: the daemon reads and
    drops the body (a lingering close), up to a bound."""
    json_type = dict({"Content-Type": "application/json"}, **d.auth())
    body = b'{"user": "%s", "cmd": "' % USER.encode() + b"x" * (4 << 20) + b'"}'
    got = send_body(d, body, json_type)
    tap.eq(status_of(got), 413, "http.client sending 4 MiB with Content-Length reads the 413")

    def chunks(n, sent):
        for _ in range(n):
            sent[0] += 65536
            yield b"x" * 65536

    sent = [0]
    got = send_body(d, chunks(64, sent), json_type)
    tap.eq(status_of(got), 413, "http.client sending 4 MiB chunked reads the 413")
    got = send_body(d, body, json_type, path="/v1/jobproxy/nope")
    tap.eq(status_of(got), 404, "4 MiB to an unknown path reads the 404")
    got = send_body(d, body, json_type, method="PUT")
    tap.ok(status_of(got) == 405 and "POST" in got.headers.get("allow", ""),
           "4 MiB with the wrong method reads the 405 with Allow", got)
    got = send_body(d, body, dict(json_type, Accept="image/png"))
    tap.eq(status_of(got), 406, "4 MiB with an unacceptable Accept reads the 406")

    # Far past the bound (16 MiB past max_body): the daemon stops reading
    # and closes; the client may see a reset, but must not hang, and must
    # not have been read to the end.
    for what, headers, total in (
            ("chunked", json_type, 256 << 20),
            ("with Content-Length", dict(json_type, **{"Content-Length": str(1 << 30)}), 1 << 30)):
        sent = [0]
        got = send_body(d, chunks(total // 65536, sent), headers)
        tap.ok(not isinstance(got, socket.timeout) and sent[0] < total,
               "a body %s far past the bound ends the exchange before it is sent whole" % what,
               "%r after %d of %d bytes" % (got, sent[0], total))


def record_raw(d, method, path, ctype, body, out):
    """Holds a raw exchange's one reply to the contract, as d.request does."""
    reply = one_reply(out)
    if isinstance(reply, tuple):
        d.record(method, path, {"Content-Type": ctype} if ctype else {}, body,
                 ocps.Response(reply[0], reply[1], reply[2]))
    return reply


def t_smuggling(tap, d):
    """Framing two readers may read two ways is one 400 naming the fault:
    on a connection's first request (the gate) and on a kept-alive
    connection's later one (after MHD has parsed it)."""
    # With the admin's token: a request the framing checks let through
    # would be a task, which the count at the end would see.
    post = (b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\n" % d.token.encode())
    body = b'{"user": "%s", "cmd": "true"}' % USER.encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    cases = [
        (b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(chunked) + chunked,
         "Content-Length and Transfer-Encoding", "Content-Length with Transfer-Encoding"),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + chunked,
         "Content-Length and Transfer-Encoding", "Transfer-Encoding with Content-Length"),
        (b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(body) + body,
         "conflicting Content-Length", "two different Content-Lengths"),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
         "Transfer-Encoding given twice", "Transfer-Encoding twice"),
        (b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked, "is not taken",
         "Transfer-Encoding: gzip, chunked"),
        (b"Transfer-Encoding: xchunked\r\n\r\n" + chunked, "is not taken",
         "Transfer-Encoding: xchunked"),
        (b"Transfer-Encoding : chunked\r\n\r\n" + chunked, "malformed header field name",
         "blanks before the colon of Transfer-Encoding"),
        (b"Content-Length : %d\r\n\r\n" % len(body) + body, "malformed header field name",
         "blanks before the colon of Content-Length"),
        (b"Transfer-Encoding: chunked\r\n , identity\r\n\r\n" + chunked,
         "Transfer-Encoding folded", "Transfer-Encoding folded over two lines"),
        (b"X-A: b\rTransfer-Encoding: chunked\r\n\r\n" + chunked, "bare CR",
         "a bare CR hiding a Transfer-Encoding"),
        (b"X-A: b\x00\r\nContent-Length: %d\r\n\r\n" % len(body) + body, "NUL",
         "a NUL in a header"),
    ]
    for head, needle, what in cases:
        out = raw(d, post + head)
        reply = record_raw(d, "POST", "/v1/jobproxy/submit", "application/json", b"", out)
        if not tap.ok(isinstance(reply, tuple), "%s: exactly one well-formed reply" % what,
                      "%s\n%r" % (reply, out[:600])):
            continue
        code, headers, rbody = reply
        try:
            j = json.loads(rbody)
        except ValueError:
            j = {}
        tap.ok(code == 400 and j.get("code") == 400 and needle in j.get("message", ""),
               "%s -> 400 naming it" % what, out[:600])

    out = raw(d, b"POST /v1/jobproxy/submit HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    reply = one_reply(out)
    tap.ok(isinstance(reply, tuple) and reply[0] == 400 and b"HTTP/1.0" in reply[2],
           "Transfer-Encoding in an HTTP/1.0 request -> 400", out[:600])

    # The same shapes as a kept-alive connection's second request, which
    # the gate does not see: refused once MHD has parsed the head, and the
    # connection closed (its body cannot be told from a next request).
    ping = b"GET /v1/jobproxy/ping HTTP/1.1\r\nHost: x\r\n\r\n"
    for head, needle, what in cases[:4]:
        out = raw(d, ping + post + head)
        replies = out.split(b"HTTP/1.1 ")
        second = b"HTTP/1.1 " + replies[2] if len(replies) == 3 else b""
        reply = one_reply(second)
        ok = isinstance(reply, tuple) and reply[0] == 400 and needle.encode() in reply[2] and \
            reply[1].get("connection") == "close" and out.startswith(b"HTTP/1.1 200 ")
        tap.ok(ok, "%s on a kept-alive connection's second request -> 400, closed" % what,
               out[:1200])
    r = d.request("GET", "/v1/jobproxy/state")
    tap.ok(r.status == 200 and r.json()["count"] == 0,
           "no task was submitted by any of them", r)


def t_text_faults(tap, d):
    """A NUL in a string (cJSON cut "a\\u0000b" to "a") and bytes that are
    not UTF-8 are 400 in JSON, YAML and XML, naming where."""
    u = USER.encode()
    cases = [
        ("application/json", b'{"user": "%s", "cmd": "echo a\\u0000; rm -rf /tmp/x"}' % u,
         "NUL", "a \\u0000 in a JSON string"),
        ("application/json", b'{"user": "%s", "cmd": "true", "env": {"A\\u0000B": "1"}}' % u,
         "NUL", "a \\u0000 in a JSON key"),
        ("application/json", b'{"user": "%s", "cmd": "echo \xff"}' % u, "not UTF-8",
         "a byte 0xff in JSON"),
        ("application/json", b'{"user": "%s", "cmd": "echo \xc0\xaf"}' % u, "not UTF-8",
         "an overlong UTF-8 form in JSON"),
        ("application/json", b'{"user": "%s", "cmd": "echo \xed\xa0\x80"}' % u, "not UTF-8",
         "a surrogate in UTF-8 in JSON"),
        ("application/yaml", b'user: %s\ncmd: "echo a\\0b"\n' % u, "NUL", "a \\0 in YAML"),
        ("application/yaml", b'user: %s\ncmd: "echo a\\x00b"\n' % u, "NUL", "a \\x00 in YAML"),
        ("application/yaml", b"user: %s\ncmd: echo \xff\n" % u, "UTF-8", "a byte 0xff in YAML"),
        ("application/xml", b"<task><user>%s</user><cmd>echo a&#0;b</cmd></task>" % u,
         "invalid xmlChar value 0", "&#0; in XML"),
        ("application/xml", b"<task><user>%s</user><cmd>echo \xff</cmd></task>" % u, "UTF-8",
         "a byte 0xff in XML"),
    ]
    for ctype, body, needle, what in cases:
        r = d.submit(body, ctype=ctype)
        try:
            msg = r.json().get("message", "")
        except ValueError:
            msg = ""
        tap.ok(r.status == 400 and needle in msg, "%s -> 400 naming %s" % (what, needle), r)


def t_xml_attributes(tap, d):
    """An unknown XML attribute is 400, as an unknown JSON field is; the
    namespace declarations and xsi: schema locations JobProxy's own task
    files carry are not."""
    u = USER.encode()
    for body, needle, what in [
            (b'<task><user>%s</user><cmd timeout="5">true</cmd></task>' % u,
             'unknown attribute "timeout" on <cmd>', "an attribute on <cmd>"),
            (b'<task priority="high"><user>%s</user><cmd>true</cmd></task>' % u,
             'unknown attribute "priority" on <task>', "an attribute on <task>"),
            (b'<task><user>%s</user><cmd>true</cmd><env><entry key="A" value="1"/></env></task>'
             % u, 'unknown attribute "value" on <entry>', "a value attribute beside a key")]:
        r = d.submit(body, ctype="application/xml")
        tap.ok(r.status == 400 and needle in r.json().get("message", ""), "%s -> 400" % what, r)
    with open(os.path.join(DATA, "jobproxy-helloworld.xml"), "rb") as f:
        xml = f.read().replace(b"<memory>128</memory>", b"<memory>128M</memory>")
    r = d.submit(xml, ctype="application/xml")
    tap.eq(r.status, 200, "JobProxy's helloworld, with xmlns:xsi and "
           "xsi:noNamespaceSchemaLocation, is taken")
    if r.status == 200:
        st = d.wait(r.json()["id"])
        tap.eq(st and st["code"], "COMPLETE", "and runs")


# ---- the pool: per client, per share, 503 when full ----

def connect(d, src="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", d.port))
    return s


def read_reply(s):
    """One reply on s, read to the end of its body (by Content-Length) or
    until the server closes; b"" if it closed without a word."""
    out = b""
    while True:
        head, sep, rest = out.partition(b"\r\n\r\n")
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        if sep and m and len(rest) >= int(m.group(1)):
            return out
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return out
        if not b:
            return out
        out += b


def closed_by_server(s, timeout):
    """Whether the server closes s (an EOF or a reset) within timeout."""
    r, _, _ = select.select([s], [], [], timeout)
    if not r:
        return False
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def busy_reply(out, needle):
    """Whether out is one 503 with Retry-After and the error shape naming needle."""
    reply = one_reply(out)
    if not isinstance(reply, tuple):
        return False
    code, headers, body = reply
    try:
        j = json.loads(body)
    except ValueError:
        return False
    return code == 503 and headers.get("retry-after", "").isdigit() and j.get("code") == 503 and \
        needle in j.get("message", "")


PING = b"GET /v1/jobproxy/ping HTTP/1.1\r\nHost: x\r\n\r\n"
PING_CLOSE = b"GET /v1/jobproxy/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def count_busy(conns, n, needle):
    """How many of conns were answered 503 naming needle: the first n
    answers are waited for (they come before a later client's reply), then
    whatever else is there already."""
    busy, pending = 0, list(conns)
    deadline = time.monotonic() + 30
    while pending and busy < n and time.monotonic() < deadline:
        ready, _, _ = select.select(pending, [], [], 1)
        for c in ready:
            pending.remove(c)
            busy += busy_reply(read_reply(c), needle)
    ready, _, _ = select.select(pending, [], [], 0) if pending else ([], [], [])
    for c in ready:
        busy += busy_reply(read_reply(c), needle)
    return busy


def t_idle_clients_tcp(tap, d):
    """200 idle connections from one address (the gate holds 16 of them,
    http_client_connections, and answers the rest 503 at once) do not stop
    another address from being served, though the pool takes 64
    (http_connections)."""
    idle = [connect(d) for _ in range(200)]
    try:
        s = connect(d, "127.0.0.2")
        s.sendall(PING_CLOSE)
        out = read_reply(s)
        s.close()
        tap.ok(out.startswith(b"HTTP/1.1 200 ") and b"alive" in out,
               "another client is served while one holds 200 idle connections", out[:300])
        tap.eq(count_busy(idle, 184, "client 127.0.0.1 holds 16 connections"), 184,
               "the idle client's connections past its 16 are answered 503 with Retry-After, "
               "naming its cap")
    finally:
        for c in idle:
            c.close()


def t_full_pool(tap, d):
    """Kept-alive connections from several clients fill the served share
    (http_connections 4): the next client gets a 503 with Retry-After in
    the one error shape, not a hang or a reset; one closed, it is served."""
    held = []
    for src in ("127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4"):
        c = connect(d, src)
        c.sendall(PING)
        out = read_reply(c)
        tap.ok(out.startswith(b"HTTP/1.1 200 "), "%s: a kept-alive connection is served" % src,
               out[:200])
        held.append(c)
    try:
        submit = (b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        for what, data, method, path, ctype in (
                ("a ping", PING, "GET", "/v1/jobproxy/ping", None),
                ("a submit", submit, "POST", "/v1/jobproxy/submit", "application/json")):
            s = connect(d, "127.0.0.5")
            s.sendall(data)
            out = read_reply(s)
            s.close()
            record_raw(d, method, path, ctype, b"{}" if ctype else None, out)
            tap.ok(busy_reply(out, "4 connections are being served"),
                   "%s to a full pool: 503 with Retry-After naming http_connections" % what,
                   out[:600])
        held.pop().close()
        # The pool hears of the close when MHD does: wait for that, not a time.
        deadline = time.monotonic() + 20
        out = b""
        while time.monotonic() < deadline:
            s = connect(d, "127.0.0.5")
            s.sendall(PING_CLOSE)
            out = read_reply(s)
            s.close()
            if not out.startswith(b"HTTP/1.1 503 "):
                break
            time.sleep(0.05)
        tap.ok(out.startswith(b"HTTP/1.1 200 "), "once one closes, the next client is served",
               out[:300])
    finally:
        for c in held:
            c.close()


def follow_bytes(d, tid):
    """A follow request with the admin's token: the answer this test wants is
    the pool's, not authentication's."""
    return (b"GET /v1/jobproxy/logs/%s?follow=1 HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer %s\r\n\r\n" % (tid.encode(), d.token.encode()))


def follow_request(d, tid, src="127.0.0.1"):
    s = connect(d, src)
    s.sendall(follow_bytes(d, tid))
    return s


def t_followers(tap, d):
    """Log followers have a share of their own (http_followers 1): a second
    follower is 503, ordinary requests are still served; and a full served
    share does not keep a follower out."""
    # The connections the test before held may not have left the pool yet
    # (it hears of a close when MHD does): wait for room, not a time.
    deadline = time.monotonic() + 20
    r = d.submit({"user": USER, "cmd": "echo started; sleep 60"})
    while r.status == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
        r = d.submit({"user": USER, "cmd": "echo started; sleep 60"})
    if not tap.eq(r.status, 200, "a task to follow, once the pool has room"):
        return
    tid = r.json()["id"]
    first = follow_request(d, tid)
    held = []
    try:
        head = b""
        while b"started" not in head:
            b = first.recv(4096)
            if not b:
                break
            head += b
        tap.ok(head.startswith(b"HTTP/1.1 200 ") and b"started" in head,
               "a follower streams the log", head[:300])

        second = follow_request(d, tid, "127.0.0.2")
        out = read_reply(second)
        second.close()
        tap.ok(busy_reply(out, "1 log followers already"),
               "a second follower: 503 with Retry-After naming http_followers", out[:600])
        r = d.request("GET", "/v1/jobproxy/state/" + tid)
        tap.eq(r.status, 200, "ordinary requests are served while the followers are full")

        # A kept-alive connection that turns to following needs a
        # follower's share too (the logs handler answers).
        c = connect(d, "127.0.0.3")
        c.sendall(PING)
        read_reply(c)
        c.sendall(follow_bytes(d, tid))
        out = read_reply(c)
        c.close()
        tap.ok(busy_reply(out, "1 log followers already"),
               "a kept-alive connection that asks to follow: 503 with Retry-After", out[:600])

        for src in ("127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4"):
            c = connect(d, src)
            c.sendall(PING)
            read_reply(c)
            held.append(c)
        s = connect(d, "127.0.0.5")
        s.sendall(PING_CLOSE)
        full = read_reply(s)
        s.close()
        tap.ok(full.startswith(b"HTTP/1.1 503 "), "the served share is full", full[:300])
        first.close()
        first = None
        # The follower's share is free once the daemon has seen the hang-up.
        deadline = time.monotonic() + 20
        out = b""
        while time.monotonic() < deadline:
            f = follow_request(d, tid, "127.0.0.6")
            out = f.recv(4096)
            f.close()
            if not out.startswith(b"HTTP/1.1 503 "):
                break
            time.sleep(0.05)
        tap.ok(out.startswith(b"HTTP/1.1 200 "),
               "with the served share full, a follower is still served", out[:300])
    finally:
        for c in held:
            c.close()
        if first:
            first.close()
        d.request("DELETE", "/v1/jobproxy/delete/" + tid)


def trickle(s, data, every=0.25):
    """Sends data a byte every 'every' seconds. Returns how many bytes went
    before the server closed the connection, or None if it never did."""
    for i, byte in enumerate(data):
        try:
            s.send(bytes([byte]))
        except OSError:
            return i
        if closed_by_server(s, every):
            return i + 1
    return None


def t_deadlines(tap, d):
    """A head sent a byte at a time is cut at http_header_timeout (2 s
    here), on a new connection and on a kept-alive one; a body so sent at
    http_body_timeout (2 s): MHD's idle timeout (3 s) never fires on them.
    120 bytes a quarter of a second apart would take 30 s."""
    slow = b"X-Slow: " + b"x" * 120
    s = connect(d)
    s.sendall(b"GET /v1/jobproxy/ping HTTP/1.1\r\n")
    n = trickle(s, slow)
    s.close()
    tap.ok(n is not None, "a slow head on a new connection is cut", n)

    s = connect(d)
    s.sendall(PING)
    first = read_reply(s)
    s.sendall(b"GET /v1/jobproxy/ping HTTP/1.1\r\n")
    n = trickle(s, slow)
    s.close()
    tap.ok(first.startswith(b"HTTP/1.1 200 ") and n is not None,
           "a slow head on a kept-alive connection is cut", (first[:100], n))

    s = connect(d)
    s.sendall(PING)
    first = read_reply(s)
    n = trickle(s, b"GET /v1/jobproxy/ping?" + b"x" * 120 + b" HTTP/1.1\r\n")
    s.close()
    tap.ok(first.startswith(b"HTTP/1.1 200 ") and n is not None,
           "a slow request line on a kept-alive connection is cut", (first[:100], n))

    body = json.dumps({"user": USER, "cmd": "true", "name": "x" * 120}).encode()
    s = connect(d)
    s.sendall(b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    n = trickle(s, body)
    s.close()
    tap.ok(n is not None, "a slow body is cut", n)

    r = d.request("GET", "/v1/jobproxy/state?limit=10")
    names = [t.get("name") for t in r.json()["state"]] if r.status == 200 else None
    tap.ok(names is not None and "x" * 120 not in names, "and no task came of it", r)


def t_store_private(tap, d):
    """The store's files are 0600 though the daemon runs under umask 0."""
    db = os.path.join(d.data_dir, "ocps-proxy.db")
    for path in (db, db + "-wal", db + "-shm"):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError as e:
            mode = e
        tap.eq(mode, 0o600, "%s is 0600 under umask 0" % os.path.basename(path))


# ---- unix sockets: a client is a uid ----

def as_uid(uid, fn):
    """Runs fn() in a child as uid (no groups); returns what it returned
    (JSON-able), or the exception's words."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            if uid is not None:
                os.setgroups([])
                os.setgid(pwd.getpwuid(uid).pw_gid)
                os.setuid(uid)
            out = json.dumps(fn())
        except Exception as e:
            out = json.dumps("error: %r" % e)
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def unix_request(path, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(req)
    out = read_reply(s)
    s.close()
    return out.decode("utf-8", "replace")


def t_idle_clients_unix(tap, d, sock):
    """The same on a unix socket, where a client is a uid: 200 idle
    connections from ocpstest do not stop ocpstest2."""
    a, b = pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER2).pw_uid
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # As uid a: holds 200 connections until told, then counts the 503s.
        os.close(go_w)
        os.close(ready_r)
        busy = -1
        try:
            os.setgroups([])
            os.setgid(pwd.getpwuid(a).pw_gid)
            os.setuid(a)
            conns = []
            for _ in range(200):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(sock)
                conns.append(c)
            os.write(ready_w, b"r")
            os.read(go_r, 1)
            busy = count_busy(conns, 184, "client uid %d holds 16 connections" % a)
        finally:
            os.write(ready_w, b"%d" % busy)
            os._exit(0)
    os.close(go_r)
    os.close(ready_w)
    os.read(ready_r, 1)
    out = as_uid(b, lambda: unix_request(sock, PING_CLOSE))
    tap.ok(out.startswith("HTTP/1.1 200 ") and "alive" in out,
           "uid %d is served while uid %d holds 200 idle connections" % (b, a), out[:300])
    os.write(go_w, b"g")
    busy = os.read(ready_r, 16)
    os.waitpid(pid, 0)
    os.close(go_w)
    os.close(ready_r)
    tap.eq(busy, b"184", "uid %d's connections past its 16 are answered 503 naming it" % a)


def t_not_root(tap, d, sock):
    """A daemon that is not root serves only its own uid on its unix
    socket: another account is 403 naming the rule (it would act as the
    daemon's account), root too; its own account is served."""
    me, other = pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER2).pw_uid
    list_req = b"GET /v1/jobproxy/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for uid, what in ((other, "another account"), (0, "root")):
        out = as_uid(uid, lambda: unix_request(sock, list_req))
        record_raw(d, "GET", "/v1/jobproxy/state", None, None, out.encode("latin-1"))
        tap.ok(out.startswith("HTTP/1.1 403 ") and "serves only that account" in out,
               "%s is refused with 403 naming the rule" % what, out[:400])
    body = json.dumps({"user": USER, "cmd": "echo mine"}).encode()
    submit = (b"POST /v1/jobproxy/submit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    out = as_uid(me, lambda: unix_request(sock, submit))
    tap.ok(out.startswith("HTTP/1.1 200 "), "the daemon's own account submits", out[:400])
    out = as_uid(me, lambda: unix_request(sock, list_req))
    tap.ok(out.startswith("HTTP/1.1 200 ") and '"count":1' in out, "and lists its task",
           out[:400])


# ---- the blocks: a daemon each ----

def hostile(tap):
    with ocps.serving(tap, Daemon(), "hostile requests") as d:
        ocps.each(tap, d, [t_bodies, t_malformed_heads, t_smuggling, t_raw, t_refused_bodies,
                           t_text_faults, t_xml_attributes, t_still_serving])


def small_pool(tap):
    config = ("http_connections: 4\nhttp_client_connections: 3\nhttp_followers: 1\n"
              "http_header_timeout: 2s\nhttp_body_timeout: 2s\nhttp_timeout: 3s\n")
    with ocps.serving(tap, Daemon(config=config, umask=0), "a small pool") as d:
        ocps.each(tap, d, [t_full_pool, t_followers, t_deadlines, t_still_serving,
                           t_store_private])


def idle_tcp(tap):
    config = "http_connections: 64\nhttp_client_connections: 16\n"
    with ocps.serving(tap, Daemon(config=config), "200 idle connections over TCP") as d:
        ocps.each(tap, d, [t_idle_clients_tcp, t_still_serving])


def idle_unix(tap):
    d = Daemon(config="http_connections: 64\nhttp_client_connections: 16\n")
    sock = os.path.join(d.data_dir, "api.sock")
    d.extra_args = ["--listen", "unix:" + sock]
    os.chmod(d.data_dir, 0o755)  # the clients must reach the socket
    with ocps.serving(tap, d, "200 idle connections on a unix socket"):
        t_idle_clients_unix(tap, d, sock)
        t_still_serving(tap, d)


def not_root(tap):
    d = Daemon(user=USER, umask=0)
    sock = os.path.join(d.data_dir, "api.sock")
    d.extra_args = ["--listen", "unix:" + sock]
    os.chmod(d.data_dir, 0o755)
    with ocps.serving(tap, d, "a daemon that is not root, under umask 0"):
        t_not_root(tap, d, sock)
        t_store_private(tap, d)


ocps.require_root()
ocps.ensure_user(USER)
ocps.ensure_user(USER2)
ocps.main(hostile, small_pool, idle_tcp, idle_unix, not_root)
