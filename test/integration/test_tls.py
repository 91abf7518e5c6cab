#!/usr/bin/env python3
"""TLS, against the real daemon over real TLS on 127.0.0.1: a CA, a server
certificate for 127.0.0.1 and client certificates made here with certtool
(gnutls-bin), in a temporary directory; no system trust store is read or
touched. An https listener with a bearer token; plain http to it; the
protocols and ciphers it offers; an mTLS listener (its own tls: client_ca
over the config's tls:) where a client certificate's CN names the
principal, and every way a certificate is refused; a token beside a
certificate; the CLI's --cacert, --cert and --key; the files a daemon
cannot use, refused at start before it does anything."""

import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import tempfile

import ocps
from ocps import Daemon, Tap

CLI = os.environ.get("OCPS_PROXY_CLI", "")
USER = "ocpstest"
CERTTOOL = shutil.which("certtool")
GNUTLS_CLI = shutil.which("gnutls-cli")


class PKI:
    """The certificates of the tests, made with certtool (ECDSA P-256: quick
    to make). Each name is a path: NAME.pem, NAME.key."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ocps-tls-")
        os.chmod(self.dir, 0o755)  # the unprivileged daemon of one test reads the config here
        self.certtool("ca", "ca", 'cn = "ocps test CA"\nca\ncert_signing_key\nexpiration_days = 2\n')
        self.certtool("other-ca", "other-ca",
                      'cn = "another CA"\nca\ncert_signing_key\nexpiration_days = 2\n')
        self.certtool("server", "ca", 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\n'
                      'dns_name = "localhost"\ntls_www_server\nsigning_key\nexpiration_days = 2\n')
        client = 'tls_www_client\nsigning_key\nexpiration_days = 2\n'
        self.certtool("alice", "ca", 'cn = "alice"\n' + client)
        self.certtool("bob", "ca", 'cn = "bob"\n' + client)
        # The same name from another CA: the CA decides, not the name.
        self.certtool("alice-other-ca", "other-ca", 'cn = "alice"\n' + client)
        self.certtool("alice-expired", "ca", 'cn = "alice"\ntls_www_client\nsigning_key\n'
                      'activation_date = "2020-01-01 00:00:00"\n'
                      'expiration_date = "2020-01-02 00:00:00"\n')
        self.certtool("bad-name", "ca", 'cn = "alice smith"\n' + client)
        self.certtool("no-name", "ca", 'organization = "ocps"\n' + client)

    def path(self, name, ext="pem"):
        return os.path.join(self.dir, "%s.%s" % (name, ext))

    def certtool(self, name, ca, template):
        tmpl = self.path(name, "tmpl")
        with open(tmpl, "w") as f:
            f.write(template)
        run = lambda args: subprocess.run(["certtool"] + args, check=True, capture_output=True,
                                          timeout=60)
        run(["--generate-privkey", "--key-type=ecdsa", "--outfile", self.path(name, "key")])
        if ca == name:
            run(["--generate-self-signed", "--load-privkey", self.path(name, "key"),
                 "--template", tmpl, "--outfile", self.path(name)])
        else:
            run(["--generate-certificate", "--load-privkey", self.path(name, "key"),
                 "--load-ca-certificate", self.path(ca), "--load-ca-privkey", self.path(ca, "key"),
                 "--template", tmpl, "--outfile", self.path(name)])

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


PKI_ = None


def https(d, port, method, path, body=None, token=None, cert=None, record=True):
    """One request over TLS to d's listener on port, trusting only the test
    CA and checking the server's name (127.0.0.1); with the client
    certificate cert (a PKI name) if given. Recorded for the contract."""
    ctx = ssl.create_default_context(cafile=PKI_.path("ca"))
    if cert:
        ctx.load_cert_chain(PKI_.path(cert), PKI_.path(cert, "key"))
    headers = {"Authorization": "Bearer " + token} if token else {}
    if isinstance(body, dict):
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=ctx)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        resp = ocps.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()
    if record:
        d.record(method, path, headers, body, resp)
    return resp


def ids_of(r):
    return sorted(s["id"] for s in r.json()["state"]) if r.status == 200 else None


def token_create(d, principal):
    p = subprocess.run([ocps.DAEMON, "token", "create", "--principal", principal,
                        "--data-dir", d.data_dir], capture_output=True, text=True, timeout=60)
    return p.stdout.strip() if p.returncode == 0 else None


def gnutls_handshake(port, priority):
    """gnutls-cli's handshake with the test CA and this priority string:
    (completed, output)."""
    p = subprocess.run([GNUTLS_CLI, "--x509cafile", PKI_.path("ca"), "--priority", priority,
                        "-p", str(port), "127.0.0.1"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    return p.returncode == 0 and "Handshake was completed" in out, out


# ---- an https listener with tokens (no client CA) ----

def t_token_over_https(tap, d):
    r = https(d, d.tls_port, "GET", "/v1/jobproxy/ping")
    tap.ok(r.status == 200 and r.text.startswith("alive"),
           "ping over https, the server's certificate verified for 127.0.0.1 against the test CA", r)
    r = https(d, d.tls_port, "GET", "/v1/jobproxy/state")
    tap.ok(r.status == 401 and r.headers.get("www-authenticate", "").startswith("Bearer"),
           "over https without a token: 401 with WWW-Authenticate: Bearer", r)
    ci = token_create(d, "ci-bot")
    r = https(d, d.tls_port, "POST", "/v1/jobproxy/submit", {"user": USER, "cmd": "true"},
              token=ci)
    tap.eq(r.status, 200, "a submit with a bearer token over https is taken")
    tid = r.json()["id"] if r.status == 200 else None
    r = https(d, d.tls_port, "GET", "/v1/jobproxy/state", token=ci)
    tap.eq(ids_of(r), [tid], "the token's principal lists its task over https")
    st = d.wait(tid) if tid else None
    tap.eq(st and st["code"], "COMPLETE", "the task ran")
    r = https(d, d.tls_port, "GET", "/v1/jobproxy/state/" + tid if tid else "/", token=d.token)
    tap.eq(r.status, 200, "the admin token works over https too")
    r = https(d, d.tls_port, "GET", "/v1/jobproxy/state", token="ocps_nonsense")
    tap.eq(r.status, 401, "a bad token over https is 401")
    tap.ok("listening on https://127.0.0.1:%d (TLS)" % d.tls_port in d.logs(),
           "the daemon names the https listener at start", d.logs()[-3000:])


def t_plain_http_to_https(tap, d):
    before = ids_of(d.request("GET", "/v1/jobproxy/state"))
    c = http.client.HTTPConnection("127.0.0.1", d.tls_port, timeout=60)
    try:
        c.request("POST", "/v1/jobproxy/submit", body=json.dumps({"user": USER, "cmd": "true"}),
                  headers={"Content-Type": "application/json",
                           "Authorization": "Bearer " + d.token})
        r = c.getresponse()
        status, body = r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()
    tap.ok(status == 400 and "speaks TLS" in body and "https://" in body,
           "plain http to the https port: 400 in plain text saying to use https://", (status, body))
    tap.eq(ids_of(d.request("GET", "/v1/jobproxy/state")), before,
           "and nothing was submitted by it")


def t_protocols(tap, d):
    if not GNUTLS_CLI:
        tap.skip("the protocols the https listener offers", "gnutls-cli not installed")
        return
    done, out = gnutls_handshake(d.tls_port, "NORMAL:-VERS-ALL:+VERS-TLS1.2")
    tap.ok(done, "a TLS 1.2 handshake completes (gnutls-cli)", out[-1500:])
    done, out = gnutls_handshake(d.tls_port, "NORMAL:-VERS-ALL:+VERS-TLS1.3")
    tap.ok(done, "a TLS 1.3 handshake completes", out[-1500:])
    done, out = gnutls_handshake(d.tls_port, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0")
    tap.ok(not done, "TLS 1.1 and 1.0 are refused", out[-1500:])
    done, out = gnutls_handshake(
        d.tls_port, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:"
        "-MAC-ALL:+SHA1:+SHA256")
    tap.ok(not done, "TLS 1.2 with CBC ciphers only is refused (AEAD ciphers only)", out[-1500:])


# ---- an mTLS listener: its own tls: {client_ca} ----

def t_certificate_names_the_principal(tap, d):
    r = https(d, d.mtls_port, "POST", "/v1/jobproxy/submit", {"user": USER, "cmd": "true"},
              cert="alice")
    tap.eq(r.status, 200, "alice's certificate alone submits a task on the mTLS listener")
    alices = r.json()["id"] if r.status == 200 else None
    r = https(d, d.mtls_port, "POST", "/v1/jobproxy/submit", {"user": USER, "cmd": "true"},
              cert="bob")
    bobs = r.json()["id"] if r.status == 200 else None
    tap.ok(r.status == 200, "so does bob's", r)
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state", cert="alice")
    tap.eq(ids_of(r), [alices], "alice lists her own task only")
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state/%s" % alices, cert="bob")
    tap.eq(r.status, 404, "bob does not see alice's task (404)")
    r = https(d, d.mtls_port, "DELETE", "/v1/jobproxy/delete/%s" % alices, cert="bob")
    tap.eq(r.status, 404, "nor delete it")
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state/%s" % bobs, cert="bob")
    tap.eq(r.status, 200, "bob reads his own")
    # The CN is the principal's name: a token issued to "alice" sees her task.
    t = token_create(d, "alice")
    tap.eq(d.request("GET", "/v1/jobproxy/state/%s" % alices, token=t).status, 200,
           "the task is principal alice's: alice's token (over plain TCP) sees it")
    tap.eq(d.request("GET", "/v1/jobproxy/state/%s" % bobs, token=t).status, 404,
           "and not bob's")
    d.alices, d.bobs = alices, bobs
    for tid in (alices, bobs):
        d.wait(tid)


def t_certificates_refused(tap, d):
    for cert, what, words in (
            (None, "no certificate", "requires a client certificate"),
            ("alice-other-ca", "a certificate for alice from another CA", "issuer is unknown"),
            ("alice-expired", "alice's certificate, expired", "expired"),
            ("bad-name", "a certificate whose CN is not a principal's name (\"alice smith\")",
             "is not a principal's name"),
            ("no-name", "a certificate without a CN", "no CN"),
            ("server", "a certificate for TLS servers only (extended key usage)", "purpose")):
        r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state", cert=cert)
        tap.ok(r.status == 401 and words in r.json().get("message", ""),
               "%s: 401 saying why (\"%s\")" % (what, words), r)
        r = https(d, d.mtls_port, "GET", "/v1/jobproxy/ping", cert=cert)
        tap.eq(r.status, 401, "%s: even ping is 401 on a listener that requires certificates" % what)
        r = https(d, d.mtls_port, "POST", "/v1/jobproxy/submit", {"user": USER, "cmd": "true"},
                  cert=cert)
        tap.eq(r.status, 401, "%s: a submit is refused" % what)
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state", cert="alice-other-ca", token=d.token)
    tap.eq(r.status, 401, "another CA's certificate with a valid token: still 401 (the "
           "certificate comes first on this listener)")
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state", token=d.token)
    tap.eq(r.status, 401, "a token without a certificate: 401")


def t_token_beside_certificate(tap, d):
    t = token_create(d, "alice")
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state/%s" % d.alices, cert="bob", token=t)
    tap.eq(r.status, 200, "bob's certificate with alice's token: the token wins, alice's task "
           "is seen")
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state/%s" % d.bobs, cert="bob", token=t)
    tap.eq(r.status, 404, "and bob's own is not: the request is alice's")
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state", cert="bob", token="ocps_nonsense")
    tap.eq(r.status, 401, "a bad token beside a good certificate is 401, no fall back to the "
           "certificate")


def t_listeners_have_their_own_ca(tap, d):
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state", cert="alice")
    tap.eq(r.status, 200, "alice's certificate on the listener of her CA")
    for _ in range(2):
        r = https(d, d.other_port, "GET", "/v1/jobproxy/state", cert="alice")
        tap.ok(r.status == 401 and "issuer is unknown" in r.json().get("message", ""),
               "the same certificate, just verified, on a listener with another client CA: 401",
               r)
    r = https(d, d.other_port, "GET", "/v1/jobproxy/state", cert="alice-other-ca")
    tap.eq(ids_of(r), [d.alices],
           "that CA's certificate for alice is accepted there, and names the same principal")
    r = https(d, d.mtls_port, "GET", "/v1/jobproxy/state", cert="alice-other-ca")
    tap.eq(r.status, 401, "and is still refused on the first listener, just after")


def t_token_listener_ignores_certificates(tap, d):
    r = https(d, d.tls_port, "GET", "/v1/jobproxy/state", cert="alice")
    tap.eq(r.status, 401, "on the https listener without a client CA a certificate names no "
           "one: 401 without a token")


def t_cli(tap, d):
    if not CLI:
        tap.skip("the CLI over https", "OCPS_PROXY_CLI not set")
        return
    empty = tempfile.mkdtemp(prefix="ocps-nodata-")

    def cli(port, args, data_dir=empty, **env):
        e = {k: v for k, v in os.environ.items()
             if k not in ("OCPS_PROXY_TOKEN", "OCPS_PROXY_URL", "OCPS_PROXY_DATA_DIR")}
        e.update(NO_COLOR="1", OCPS_PROXY_DATA_DIR=data_dir)
        e.update(env)
        url = "https://127.0.0.1:%d" % port if port else "http://127.0.0.1:%d" % d.port
        p = subprocess.run([CLI, "--server", url] + args, capture_output=True, text=True, env=e,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    ca = ["--cacert", PKI_.path("ca")]
    as_alice = ca + ["--cert", PKI_.path("alice"), "--key", PKI_.path("alice", "key")]
    as_bob = ca + ["--cert", PKI_.path("bob"), "--key", PKI_.path("bob", "key")]
    try:
        rc, out, err = cli(d.mtls_port, as_alice + ["submit", "--user", USER, "--", "true"])
        tid = out.strip()
        tap.ok(rc == 0 and len(tid) == 36, "ocps-proxy --cacert --cert --key submit: alice's task",
               (rc, out, err))
        rc, out, err = cli(d.mtls_port, as_alice + ["list", "--all", "-o", "json"])
        ids = sorted(s["id"] for s in json.loads(out)) if rc == 0 else None
        tap.ok(ids is not None and tid in ids and d.bobs not in ids,
               "list with alice's certificate: her tasks, not bob's", (rc, out, err))
        rc, out, err = cli(d.mtls_port, as_bob + ["list", "--all", "-o", "json"],
                           data_dir=d.data_dir)
        ids = sorted(s["id"] for s in json.loads(out)) if rc == 0 else None
        tap.ok(ids is not None and tid not in ids and d.bobs in ids,
               "with bob's certificate (as root beside the daemon's admin.token): bob's tasks "
               "only; the admin file is not sent beside --cert", (rc, out, err))
        rc, out, err = cli(d.mtls_port, ["--cert", PKI_.path("alice"), "--key",
                                         PKI_.path("alice", "key"), "list"])
        tap.ok(rc == 3 and "certificate" in err,
               "without --cacert the test CA is not trusted: the server cannot be reached (exit 3)",
               (rc, err))
        rc, out, err = cli(d.mtls_port, ca + ["list"])
        tap.ok(rc == 1 and "401" in err and "client certificate" in err and "--cert" in err,
               "without --cert on the mTLS listener: 401, and the CLI says how to give one",
               (rc, err))
        rc, out, err = cli(d.tls_port, ca + ["list"], OCPS_PROXY_TOKEN=d.token)
        tap.ok(rc == 0 and not err, "a token over https with --cacert", (rc, err))
        rc, out, err = cli(None, as_alice + ["list"])
        tap.ok(rc == 2 and "https://" in err, "--cacert/--cert/--key with an http:// server: "
               "a usage error", (rc, err))
        rc, out, err = cli(d.mtls_port, ca + ["--key", PKI_.path("alice", "key"), "list"])
        tap.ok(rc == 2 and "--cert" in err, "--key without --cert: a usage error", (rc, err))
        rc, out, err = cli(d.mtls_port, ca + ["--cert", os.path.join(empty, "none.pem"), "list"])
        tap.ok(rc == 2 and "none.pem" in err, "a --cert that cannot be read: a usage error naming it",
               (rc, err))
        if len(tid) == 36:
            d.wait(tid)
    finally:
        shutil.rmtree(empty, ignore_errors=True)


def block_https(tap):
    d = Daemon()
    d.tls_port, d.mtls_port, d.other_port = ocps.free_port(), ocps.free_port(), ocps.free_port()
    d.listen_args = []
    d.config = (
        "tls: {cert: %s, key: %s}\n"
        "listen:\n"
        "  - 127.0.0.1:%d\n"
        "  - https://127.0.0.1:%d\n"
        "  - {address: \"https://127.0.0.1:%d\", tls: {client_ca: %s}}\n"
        "  - {address: \"https://127.0.0.1:%d\", tls: {client_ca: %s}}\n"
        "principals:\n"
        "  alice: {run_as: [%s]}\n"
        "  bob: {run_as: [%s]}\n"
        "  ci-bot: {run_as: [%s]}\n" % (PKI_.path("server"), PKI_.path("server", "key"), d.port,
                                       d.tls_port, d.mtls_port, PKI_.path("ca"), d.other_port,
                                       PKI_.path("other-ca"), USER, USER, USER))
    with ocps.serving(tap, d, "https listeners") as d:
        ocps.each(tap, d, [t_token_over_https, t_plain_http_to_https, t_protocols,
                           t_certificate_names_the_principal, t_certificates_refused,
                           t_token_beside_certificate, t_listeners_have_their_own_ca,
                           t_token_listener_ignores_certificates,
                           t_cli])


# ---- refused at start ----

def block_refused_at_start(tap):
    """Files the daemon cannot use: it stops at start, naming the listener,
    the setting and the file, before it has made its data dir's store or
    admin token."""
    if not ocps.DAEMON:  # results are out already: one skip, not the file's
        return tap.skip("TLS files refused at start", "OCPS_PROXYD not set")
    tmp = tempfile.mkdtemp(prefix="ocps-it-")
    os.chmod(tmp, 0o755)
    try:
        port = ocps.free_port()
        cert, key = PKI_.path("server"), PKI_.path("server", "key")
        garbage = os.path.join(tmp, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        enc_key = os.path.join(tmp, "encrypted.key")
        subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--pkcs8",
                        "--password", "secret", "--outfile", enc_key], check=True,
                       capture_output=True, timeout=60)
        https_listener = "listen: [\"https://127.0.0.1:%d\"]\n" % port
        cases = (
            ("a key file that does not exist",
             "tls: {cert: %s, key: %s/none.key}\n" % (cert, tmp) + https_listener,
             "tls.key %s/none.key: No such file or directory" % tmp),
            ("a key file that is a directory", "tls: {cert: %s, key: %s}\n" % (cert, tmp) +
             https_listener, "tls.key %s: Is a directory" % tmp),
            ("the key of another certificate",
             "tls: {cert: %s, key: %s}\n" % (cert, PKI_.path("alice", "key")) + https_listener,
             "is not the key of the certificate in tls.cert %s" % cert),
            ("an encrypted key", "tls: {cert: %s, key: %s}\n" % (cert, enc_key) + https_listener,
             "the key is encrypted"),
            ("a certificate file without a certificate",
             "tls: {cert: %s, key: %s}\n" % (garbage, key) + https_listener,
             "tls.cert %s: no PEM certificate in it" % garbage),
            ("a client_ca file without a certificate",
             "tls: {cert: %s, key: %s, client_ca: %s}\n" % (cert, key, garbage) + https_listener,
             "tls.client_ca %s: no PEM certificate in it" % garbage),
            ("an https listener without tls settings", https_listener,
             "an https listener needs a certificate and its key"),
            ("a client CA on an unauthenticated listener",
             "tls: {cert: %s, key: %s, client_ca: %s}\n" % (cert, key, PKI_.path("ca")) +
             "listen: [{address: \"https://127.0.0.1:%d\", unauthenticated: jp}]\n" % port,
             "takes no unauthenticated requests"),
            ("tls on a listener that is not https",
             "listen: [{address: \"127.0.0.1:%d\", tls: {client_ca: %s}}]\n" % (port, cert),
             "tls is for an https://HOST:PORT listener"),
        )
        for what, config, needle in cases:
            data = tempfile.mkdtemp(prefix="ocps-it-data-", dir=tmp)
            conf = os.path.join(tmp, "config.yaml")
            with open(conf, "w") as f:
                f.write(config)
            p = subprocess.run([ocps.DAEMON, "--config", conf, "--data-dir", data],
                               capture_output=True, text=True, timeout=60)
            tap.ok(p.returncode in (1, 2) and needle in p.stderr,
                   "%s: the daemon does not start, saying why" % what,
                   (p.returncode, needle, p.stderr[-1500:]))
            tap.eq(sorted(os.listdir(data)), [],
                   "%s: it stopped before it made its store or admin token" % what)

        # A key root alone may read, and a daemon that is not root.
        data = tempfile.mkdtemp(prefix="ocps-it-data-", dir=tmp)
        os.chmod(data, 0o777)
        conf = os.path.join(tmp, "config.yaml")
        with open(conf, "w") as f:
            f.write("tls: {cert: %s, key: %s}\n" % (cert, key) + https_listener)
        tap.eq(stat.S_IMODE(os.stat(key).st_mode), 0o600, "the server's key is root's alone (0600)")
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            ocps.DAEMON, "--config", conf, "--data-dir", data],
                           capture_output=True, text=True, timeout=60)
        if "Permission denied" in p.stderr and key not in p.stderr:
            tap.skip("a key file the daemon cannot read", "nobody cannot run the daemon here: " +
                     p.stderr[-300:])
        else:
            tap.ok(p.returncode == 1 and "tls.key %s: Permission denied" % key in p.stderr,
                   "a key file the daemon cannot read (a daemon run as nobody): it does not "
                   "start, naming the file", (p.returncode, p.stderr[-1500:]))
            tap.eq(sorted(os.listdir(data)), [], "and it touched nothing in its data dir")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    global PKI_
    ocps.require_root()
    if not CERTTOOL:
        Tap.skip_all("certtool not installed (gnutls-bin; scripts/install-deps.sh --tests)")
    ocps.ensure_user(USER)
    PKI_ = PKI()
    try:
        ocps.main(block_https, block_refused_at_start)
    finally:
        PKI_.cleanup()


main()
