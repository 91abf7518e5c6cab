#!/usr/bin/env python3
"""Authentication, against the real daemon over real HTTP: a TCP request
without credentials is 401 with WWW-Authenticate on every operation the
document says needs them; the admin token written at first start (mode
0600, never written again); `ocps-proxyd token create|list|revoke` on a
running daemon (a new token works and a revoked one is refused at once,
with no restart); expiry; a copied database holds no token; a token over
the unix socket; the unauthenticated listener (loopback only, refused at
start otherwise; every request on it is its principal); the CLI's four
ways to find a token."""

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import ocps
from ocps import Daemon

CLI = os.environ.get("OCPS_PROXY_CLI", "")
USER = "ocpstest"
# The principals these tests make may run tasks as USER (policy.h: by
# default a principal may run as no account but, on the unix socket, its own).
RUN_AS = "principals: {default: {run_as: [%s]}}\n" % USER
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
TOKEN_RE = re.compile(r"^ocps_[0-9a-f]{12}_[0-9a-f]{64}$")


def token_cmd(d, *args):
    """`ocps-proxyd token ARGS --data-dir DIR`: (rc, stdout, stderr)."""
    p = subprocess.run([ocps.DAEMON, "token"] + list(args) + ["--data-dir", d.data_dir],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def create(tap, d, principal, *extra):
    rc, out, err = token_cmd(d, "create", "--principal", principal, *extra)
    token = out.strip()
    tap.ok(rc == 0 and TOKEN_RE.match(token) and out.count("\n") == 1,
           "token create --principal %s prints one token on stdout" % principal, (rc, out, err))
    return token


def token_id(token):
    return token.split("_")[1]


def unix_request(path, method, url, token=None, body=None):
    """One request over the unix socket as root: (status, body)."""
    c = http.client.HTTPConnection("localhost", timeout=60)
    c.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.sock.connect(path)
    headers = {"Authorization": "Bearer " + token} if token else {}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        c.request(method, url, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def on_port(d, port, method, path, body=None, token=None, headers=None):
    """d.request on another of d's listeners (recorded for the contract too)."""
    saved = d.port
    d.port = port
    try:
        return d.request(method, path, body, headers=headers, token=token)
    finally:
        d.port = saved


def ids_of(r):
    return [s["id"] for s in r.json()["state"]] if r.status == 200 else None


def t_unauthenticated_requests(tap, d):
    """Every operation of the document: without credentials, 401 and
    WWW-Authenticate: Bearer unless its security allows none."""
    doc = d.request("GET", "/v1/openapi.json").json()
    base = "/v1"
    tid = d.submit_id({"user": USER, "cmd": "true"})
    for template, item in doc["paths"].items():
        # The operator's endpoints have servers of their own, at the root.
        own = "" if "servers" in item else base
        for method, op in item.items():
            if method == "servers":
                continue
            path = own + template.replace("{id}", tid)
            body = {"user": USER, "cmd": "true"} if method == "post" else None
            r = d.request(method.upper(), path, body, token=None)
            open_op = {} in op.get("security", doc["security"])
            what = "%s %s without credentials" % (method.upper(), template)
            if open_op:
                # Readiness may be 503 (a dockerd down): answered all the same.
                tap.ok(r.status == 200 or (template == "/readyz" and r.status == 503),
                       what + " is answered (an open operation)", r)
                continue
            tap.ok(r.status == 401 and r.headers.get("www-authenticate", "").startswith("Bearer ")
                   and "error=" not in r.headers["www-authenticate"],
                   what + " is 401 with WWW-Authenticate: Bearer (no error: none was sent)", r)
            tap.ok(r.status == 401 and r.json().get("code") == 401 and
                   "Authorization: Bearer" in r.json().get("message", ""),
                   what + ": the error body says what to send", r)
    st = d.wait(tid)
    tap.eq(st and st["code"], "COMPLETE",
           "the refused requests touched nothing: the task ran and is still there")


def t_bad_credentials(tap, d):
    forged = "ocps_%s_%s" % ("0" * 12, "a" * 64)
    for what, header in (("a token no one made", "Bearer " + forged),
                         ("a malformed token", "Bearer not-a-token"),
                         ("the admin token with a secret changed",
                          "Bearer " + d.token[:-1] + ("b" if d.token[-1] == "a" else "a"))):
        r = d.request("GET", "/v1/jobproxy/state", headers={"Authorization": header})
        tap.ok(r.status == 401 and 'error="invalid_token"' in r.headers.get("www-authenticate", ""),
               "%s is 401 with error=\"invalid_token\"" % what, r)
        tap.eq(r.json().get("message") if r.status == 401 else None,
               "the bearer token is not valid", "%s: words that tell a guesser nothing" % what)
    r = d.request("GET", "/v1/jobproxy/state", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    tap.ok(r.status == 401 and r.headers.get("www-authenticate", "").startswith("Bearer"),
           "another scheme (Basic) is 401 asking for Bearer", r)
    r = d.request("GET", "/v1/jobproxy/state", headers={"Authorization": "bEaReR  " + d.token})
    tap.eq(r.status, 200, "the scheme's case and the spaces after it do not matter")
    r = d.request("GET", "/v1/jobproxy/ping", token=forged)
    tap.eq(r.status, 401, "a token sent to an open operation is checked all the same")
    r = d.request("GET", "/v1/jobproxy/ping", token=None)
    tap.eq(r.status, 200, "ping answers without credentials")


def t_admin_token_file(tap, d):
    st = os.stat(d.admin_token_path)
    tap.ok(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0,
           "the first start wrote the admin token to <data_dir>/admin.token, mode 0600, root's",
           "mode %o uid %d" % (stat.S_IMODE(st.st_mode), st.st_uid))
    tap.ok(d.token and TOKEN_RE.match(d.token), "it holds one token", d.token)
    r = d.request("GET", "/v1/jobproxy/state")
    tap.eq(r.status, 200, "the admin token is accepted")
    tap.ok("wrote a token of principal \"admin\"" in d.logs(), "the daemon says where it wrote it",
           d.logs()[-2000:])


def t_tokens_on_a_running_daemon(tap, d):
    ci = create(tap, d, "ci-bot")
    other = create(tap, d, "other-bot")
    # A new token counts at once: no restart, no signal.
    r = d.request("POST", "/v1/jobproxy/submit", {"user": USER, "cmd": "sleep 30"}, token=ci)
    tap.eq(r.status, 200, "a token made while the daemon runs is accepted at its next request")
    mine = r.json()["id"] if r.status == 200 else UNKNOWN_ID
    r = d.request("GET", "/v1/jobproxy/state/" + mine, token=ci)
    tap.eq(r.status, 200, "its principal reads its own task")
    r = d.request("GET", "/v1/jobproxy/state/" + mine, token=other)
    tap.eq(r.status, 404, "another token's principal does not see it (404)")
    r = d.request("GET", "/v1/jobproxy/state", token=other)
    tap.eq(ids_of(r), [], "nor lists it")
    r = d.request("GET", "/v1/jobproxy/state/" + mine)
    tap.eq(r.status, 200, "the admin token sees every task")

    rc, out, err = token_cmd(d, "list")
    rows = [l.split() for l in out.splitlines()]
    by_id = {row[0]: row for row in rows[1:]}
    tap.ok(rc == 0 and rows and rows[0][:4] == ["ID", "PRINCIPAL", "ADMIN", "STATE"] and
           by_id.get(token_id(ci), [None, None])[1] == "ci-bot" and
           by_id.get(token_id(d.token), [None, None, None])[1:4] == ["admin", "yes", "valid"],
           "token list shows ids, principals, admin and state", out + err)
    tap.ok(all(t not in out and t.split("_")[2] not in out for t in (ci, other, d.token)),
           "token list never shows a token or its secret", out)

    # Revoked: refused at the next request, in the words of an unknown token.
    rc, out, err = token_cmd(d, "revoke", token_id(ci))
    tap.ok(rc == 0 and "revoked " + token_id(ci) in out, "token revoke ID", (rc, out, err))
    r = d.request("GET", "/v1/jobproxy/state/" + mine, token=ci)
    tap.ok(r.status == 401 and r.json()["message"] == "the bearer token is not valid",
           "a revoked token is refused at once, as an unknown one", r)
    rc, out, err = token_cmd(d, "revoke", other)
    tap.eq(rc, 0, "token revoke takes a whole token (a leaked one, pasted)")
    tap.eq(d.request("GET", "/v1/jobproxy/state", token=other).status, 401, "and refuses it at once")
    rc, out, err = token_cmd(d, "revoke", token_id(ci))
    tap.ok(rc == 0 and "already" in out, "revoking again says so", (rc, out, err))
    rc, out, err = token_cmd(d, "list")
    tap.ok(re.search(r"^%s\s+ci-bot\s+no\s+revoked\s" % token_id(ci), out, re.M),
           "token list shows it revoked", out)
    rc, out, err = token_cmd(d, "revoke", "0123456789ab")
    tap.ok(rc == 1 and "no token 0123456789ab" in err, "revoking an unknown id fails, saying so",
           (rc, out, err))
    rc, out, err = token_cmd(d, "revoke", "nonsense")
    tap.ok(rc == 1 and "neither" in err, "revoking what is no id fails", (rc, out, err))
    tap.eq(d.request("GET", "/v1/jobproxy/state/" + mine).status, 200,
           "the admin token still works; the task stays")
    d.request("DELETE", "/v1/jobproxy/delete/" + mine)

    # The data dir from the daemon's config file instead of --data-dir.
    conf = os.path.join(d.data_dir, "token-config.yaml")
    for text, want, what in (("data_dir: %s\n" % d.data_dir, 0, "takes the data dir from it"),
                             ("bogus: 1\n", 1, "with an unknown setting fails, naming it")):
        with open(conf, "w") as f:
            f.write(text)
        p = subprocess.run([ocps.DAEMON, "token", "list", "--config", conf], capture_output=True,
                           text=True, timeout=60)
        tap.ok(p.returncode == want and
               (token_id(d.token) in p.stdout if want == 0 else "bogus" in p.stderr),
               "token list --config FILE %s" % what, (p.returncode, p.stdout, p.stderr))

    for args, want, what in ((["create"], 2, "create without --principal"),
                             (["create", "--principal", "x", "--expires", "30"], 2,
                              "--expires without a unit"),
                             (["create", "--principal", "x", "--expires", "3651d"], 2,
                              "--expires past ten years"),
                             (["create", "--principal", "no way"], 1, "a principal's name with a space"),
                             (["list", "--principal", "x"], 2, "list --principal"),
                             (["frobnicate"], 2, "an unknown subcommand")):
        rc, out, err = token_cmd(d, *args)
        tap.ok(rc == want and not out and err.startswith("ocps-proxyd token: "),
               "token %s: exit %d, saying why" % (what, want), (rc, out, err))


def t_expiry(tap, d):
    t = create(tap, d, "brief", "--expires", "3s")
    r = d.request("GET", "/v1/jobproxy/state", token=t)
    tap.eq(r.status, 200, "a token with --expires 3s works at first")
    deadline = time.monotonic() + 60
    while r.status == 200 and time.monotonic() < deadline:
        time.sleep(0.25)
        r = d.request("GET", "/v1/jobproxy/state", token=t)
    tap.ok(r.status == 401 and "expired" in r.json().get("message", ""),
           "then it is refused, saying it has expired (to its holder only)", r)
    rc, out, err = token_cmd(d, "list")
    tap.ok(re.search(r"^%s\s+brief\s+no\s+expired\s" % token_id(t), out, re.M),
           "token list shows it expired", out)


def t_copied_database(tap, d):
    """The store's files, copied as they are (WAL included), hold each
    token's SHA-256 and never its text or its secret."""
    t = create(tap, d, "copied")
    tmp = tempfile.mkdtemp(prefix="ocps-copy-")
    try:
        data = b""
        for name in os.listdir(d.data_dir):
            if name.startswith("ocps-proxy.db"):
                shutil.copy(os.path.join(d.data_dir, name), tmp)
                with open(os.path.join(tmp, name), "rb") as f:
                    data += f.read()
        for what, tok in (("the admin token", d.token), ("a created token", t)):
            tap.ok(hashlib.sha256(tok.encode()).digest() in data,
                   "the copied database holds %s's SHA-256" % what)
            tap.ok(tok.encode() not in data and tok.split("_")[2].encode() not in data and
                   bytes.fromhex(tok.split("_")[2]) not in data,
                   "but neither its text nor its secret (as text or bytes)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def t_unix_socket(tap, d):
    sock = os.path.join(d.data_dir, "api.sock")
    tid = d.submit_id({"user": USER, "cmd": "true"})
    st, body = unix_request(sock, "GET", "/v1/jobproxy/state/" + tid)
    tap.eq(st, 200, "on the unix socket root needs no token (its uid names it)")
    t = create(tap, d, "unix-bot")
    st, body = unix_request(sock, "GET", "/v1/jobproxy/state/" + tid, token=t)
    tap.eq(st, 404, "a token sent over the unix socket makes the request its principal's")
    st, body = unix_request(sock, "POST", "/v1/jobproxy/submit", token=t,
                            body={"user": USER, "cmd": "true"})
    theirs = json.loads(body)["id"] if st == 200 else UNKNOWN_ID
    r = d.request("GET", "/v1/jobproxy/state/" + theirs, token=t)
    tap.ok(st == 200 and r.status == 200,
           "a task submitted with it over the socket is the token's principal's over TCP too", r)
    st, body = unix_request(sock, "GET", "/v1/jobproxy/state", token="ocps_nonsense")
    tap.eq(st, 401, "a bad token over the unix socket is 401, not a fall back to the uid")


def t_restart_keeps_the_admin_token(tap, d):
    before = os.stat(d.admin_token_path)
    token = d.token
    d.stop()
    d.start()
    after = os.stat(d.admin_token_path)
    tap.ok((after.st_ino, after.st_mtime_ns, after.st_size) ==
           (before.st_ino, before.st_mtime_ns, before.st_size) and d.read_admin_token() == token,
           "the next start leaves the admin token file as it was")
    tap.eq(d.request("GET", "/v1/jobproxy/state", token=token).status, 200,
           "and the token works after the restart")


def block_tokens(tap):
    d = Daemon(config=RUN_AS)
    d.extra_args = ["--listen", "unix:" + os.path.join(d.data_dir, "api.sock")]
    with ocps.serving(tap, d, "tokens") as d:
        ocps.each(tap, d, [t_admin_token_file, t_unauthenticated_requests, t_bad_credentials,
                           t_tokens_on_a_running_daemon, t_expiry, t_copied_database,
                           t_unix_socket, t_restart_keeps_the_admin_token])


def block_unauthenticated_listener(tap):
    port2 = ocps.free_port()
    d = Daemon(config=RUN_AS,
               extra_args=["--listen-unauthenticated", "127.0.0.1:%d=jobproxy-clients" % port2])
    with ocps.serving(tap, d, "an unauthenticated listener") as d:
        tap.ok(re.search(r"warn .*127\.0\.0\.1:%d WITHOUT authentication.*jobproxy-clients" % port2,
                         d.logs()), "the daemon warns at start, naming the listener and principal",
               d.logs()[-2000:])
        r = on_port(d, port2, "POST", "/v1/jobproxy/submit", {"user": USER, "cmd": "true"})
        tap.eq(r.status, 200, "a submit without credentials on it is taken")
        tid = r.json()["id"] if r.status == 200 else UNKNOWN_ID
        r = on_port(d, port2, "GET", "/v1/jobproxy/state")
        tap.eq(ids_of(r), [tid], "its principal lists its own task")
        tap.eq(d.request("GET", "/v1/jobproxy/state", token=None).status, 401,
               "the daemon's other TCP listener still wants a token")
        tap.eq(d.request("GET", "/v1/jobproxy/state/" + tid).status, 200, "the admin sees the task")
        t = create(tap, d, "jobproxy-clients")
        tap.eq(d.request("GET", "/v1/jobproxy/state/" + tid, token=t).status, 200,
               "so does a token of the same principal: the task is jobproxy-clients'")
        t = create(tap, d, "someone-else")
        tap.eq(d.request("GET", "/v1/jobproxy/state/" + tid, token=t).status, 404,
               "another principal's token does not see it")
        own = d.submit_id({"user": USER, "cmd": "true"})
        tap.eq(on_port(d, port2, "GET", "/v1/jobproxy/state/" + own).status, 404,
               "the listener's principal is no admin: the admin's task is 404 on it")
        r = on_port(d, port2, "GET", "/v1/jobproxy/state/" + tid, token=t)
        tap.eq(r.status, 404, "a token sent on it makes the request the token's principal's")
        r = on_port(d, port2, "GET", "/v1/jobproxy/state", token="ocps_nonsense")
        tap.eq(r.status, 401, "a bad token on it is 401, not a fall back to the listener's principal")
        d.wait(tid)
        d.wait(own)


def block_refused_listeners(tap):
    """Unauthenticated listeners anywhere but loopback: the daemon does not
    start, and says why."""
    if not ocps.DAEMON:  # results are out already: one skip, not the file's
        return tap.skip("unauthenticated listeners off loopback refused at start", "OCPS_PROXYD not set")
    tmp = tempfile.mkdtemp(prefix="ocps-it-")
    try:
        port = ocps.free_port()
        conf = os.path.join(tmp, "config.yaml")
        with open(conf, "w") as f:
            f.write("listen:\n  - {address: \"0.0.0.0:%d\", unauthenticated: jp}\n" % port)
        for what, args, want, needle in (
                ("--listen-unauthenticated 0.0.0.0:PORT=jp",
                 ["--listen-unauthenticated", "0.0.0.0:%d=jp" % port], 1,
                 "an unauthenticated listener must be on a loopback address (127.0.0.0/8 or ::1), "
                 "not 0.0.0.0"),
                ("a config's listener {address: 0.0.0.0:PORT, unauthenticated: jp}",
                 ["--config", conf], 1, "must be on a loopback address"),
                ("--listen-unauthenticated :PORT=jp (every address)",
                 ["--listen-unauthenticated", ":%d=jp" % port], 1, "must be on a loopback address"),
                ("--listen-unauthenticated unix:/x=jp", ["--listen-unauthenticated",
                                                          "unix:%s/s=jp" % tmp], 2,
                 "unauthenticated is for TCP listeners")):
            p = subprocess.run([ocps.DAEMON, "--data-dir", tmp] + args, capture_output=True,
                               text=True, timeout=60)
            tap.ok(p.returncode == want and needle in p.stderr,
                   "%s: the daemon refuses to start (exit %d), saying why" % (what, want),
                   (p.returncode, p.stderr[-1500:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def block_cli(tap):
    if not CLI:
        tap.skip("the CLI's ways to find a token", "OCPS_PROXY_CLI not set")
        return
    d = Daemon(config=RUN_AS)
    with ocps.serving(tap, d, "the CLI's tokens") as d:
        empty = tempfile.mkdtemp(prefix="ocps-nodata-")
        lax = tempfile.mkdtemp(prefix="ocps-laxdata-")
        tokfile = os.path.join(empty, "t")
        with open(tokfile, "w") as f:
            f.write(d.token + "\n")
        shutil.copy(d.admin_token_path, lax)
        os.chmod(os.path.join(lax, "admin.token"), 0o644)
        url = "http://127.0.0.1:%d" % d.port

        def cli(args, **env):
            e = {k: v for k, v in os.environ.items()
                 if k not in ("OCPS_PROXY_TOKEN", "OCPS_PROXY_URL", "OCPS_PROXY_DATA_DIR")}
            e.update(NO_COLOR="1", OCPS_PROXY_DATA_DIR=empty)
            e.update(env)
            p = subprocess.run([CLI, "--server", url] + args, capture_output=True, text=True,
                               env=e, timeout=60)
            return p.returncode, p.stdout, p.stderr

        try:
            rc, out, err = cli(["list"])
            tap.ok(rc == 1 and "401" in err and "--token-file" in err,
                   "no token: 401, and the CLI says how to give one", (rc, err))
            rc, out, err = cli(["list", "--token", d.token])
            tap.ok(rc == 0 and not err, "--token TOKEN", (rc, err))
            rc, out, err = cli(["list"], OCPS_PROXY_TOKEN=d.token)
            tap.ok(rc == 0 and not err, "$OCPS_PROXY_TOKEN", (rc, err))
            rc, out, err = cli(["--token-file", tokfile, "list"])
            tap.ok(rc == 0 and not err, "--token-file FILE (before the command too)", (rc, err))
            rc, out, err = cli(["list"], OCPS_PROXY_DATA_DIR=d.data_dir)
            tap.ok(rc == 0 and not err,
                   "as root on the daemon's host: the admin.token of $OCPS_PROXY_DATA_DIR", (rc, err))
            rc, out, err = cli(["list"], OCPS_PROXY_DATA_DIR=lax)
            tap.ok(rc == 1 and "401" in err,
                   "but not an admin.token that others may read (it may not be the admin's)",
                   (rc, err))
            rc, out, err = cli(["list", "--token", d.token], OCPS_PROXY_TOKEN="ocps_nonsense")
            tap.ok(rc == 0, "--token goes before $OCPS_PROXY_TOKEN", (rc, err))
            rc, out, err = cli(["list", "--token", "ocps_nonsense"], OCPS_PROXY_DATA_DIR=d.data_dir)
            tap.ok(rc == 1 and "401" in err and "not valid" in err,
                   "a bad token given is sent, not replaced by the admin file", (rc, err))
            rc, out, err = cli(["list", "--token-file", os.path.join(empty, "none")])
            tap.ok(rc == 2 and "--token-file" in err, "a missing --token-file is a usage error",
                   (rc, err))
            rc, out, err = cli(["list", "--token", d.token, "--token-file", tokfile])
            tap.ok(rc == 2 and "not both" in err, "--token with --token-file is a usage error",
                   (rc, err))
            rc, out, err = cli(["ping", "--token", "ocps_nonsense"])
            tap.ok(rc == 1 and "401" in err, "ping checks a token it is given", (rc, err))
        finally:
            shutil.rmtree(empty, ignore_errors=True)
            shutil.rmtree(lax, ignore_errors=True)


ocps.require_root()
ocps.ensure_user(USER)
ocps.main(block_tokens, block_unauthenticated_listener, block_refused_listeners, block_cli)
