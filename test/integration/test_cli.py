#!/usr/bin/env python3
"""The ocps-proxy CLI, the real binary, against a real daemon: every
command, every output mode, exit codes, files in the three formats, the
unix socket and OCPS_PROXY_URL, an unreachable server, bad flags."""

import json
import os
import socket
import subprocess
import tempfile

import yaml

import ocps
from ocps import Daemon, Tap

CLI = os.environ.get("OCPS_PROXY_CLI", "")
# What every run() has in its environment besides: the daemon's token, once it runs.
ENV = {}
USER = "ocpstest"
DATA = os.path.join(os.path.dirname(__file__), "..", "data", "tasks")


def run(args, env=None, stdin=None, timeout=60):
    e = dict(os.environ, NO_COLOR="1")
    e.pop("OCPS_PROXY_URL", None)
    e.update(ENV)
    e.update(env or {})
    p = subprocess.run([CLI] + args, capture_output=True, text=True, env=e, input=stdin,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def run_counting(args):
    """Runs the CLI against a listener that closes each connection it takes:
    (rc, stderr, connections). A usage error must make none."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        srv.settimeout(0.2)  # to notice the CLI's exit between accepts
        url = "http://127.0.0.1:%d" % srv.getsockname()[1]
        p = subprocess.Popen([CLI, "--server", url] + args, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        n = 0
        while True:
            try:
                srv.accept()[0].close()
                n += 1
            except socket.timeout:
                if p.poll() is not None:
                    break
        return p.returncode, p.stderr.read(), n


def t_cli(tap):
    ocps.require_root()
    if not CLI:
        Tap.skip_all("OCPS_PROXY_CLI not set")
    ocps.ensure_user(USER)
    d = Daemon()
    sock = os.path.join(d.data_dir, "api.sock")
    d.extra_args = ["--listen", "unix:" + sock]
    with ocps.serving(tap, d, "cli tests"):
        ENV["OCPS_PROXY_TOKEN"] = d.token
        S = ["--server", "http://127.0.0.1:%d" % d.port]

        rc, out, err = run(S + ["ping"])
        tap.ok(rc == 0 and out.startswith("alive ("), "ping", (rc, out, err))
        rc, out, err = run(["version"])
        tap.ok(rc == 0 and out.startswith("ocps-proxy "), "version", out)
        rc, out, err = run(["--help"])
        tap.ok(rc == 0 and "submit" in out and "Example" in out, "--help lists the commands")
        for cmd in ("submit", "state", "list", "get", "logs", "wait", "delete", "watch", "ping"):
            rc, out, err = run([cmd, "--help"])
            tap.ok(rc == 0 and "Usage: ocps-proxy " + cmd in out and "Example" in out,
                   "%s --help has usage and an example" % cmd, out + err)

        # submit: flags, id printed; --wait gives the task's exit code.
        rc, out, err = run(S + ["submit", "--user", USER, "--name", "three", "--memory", "64M",
                                "--cputime", "10s", "--env", "A=1", "--tag", "k=v", "--wait",
                                "--", "sh", "-c", "echo $A; exit 3"])
        tid = out.strip()
        tap.ok(rc == 3 and len(tid) == 36, "submit --wait exits with the task's exit code 3", (rc, out, err))
        st = d.state(tid)
        tap.ok(st and st["name"] == "three" and st["exit_code"] == 3, "the task was submitted as asked", st)
        t = d.request("GET", "/v1/jobproxy/task/" + tid).json()
        tap.ok(t.get("memory") == "64M" and t.get("env") == {"A": "1"} and t.get("tags") == {"k": "v"},
               "memory, env and tags reached the daemon", t)

        rc, out, err = run(S + ["submit", "--user", USER, "--follow", "--", "sh", "-c",
                                "echo to-out; echo to-err >&2"])
        tap.ok(rc == 0 and "to-out" in out and "to-err" in err,
               "submit --follow streams stdout and stderr and exits 0", (rc, out, err))

        rc, out, err = run(S + ["submit", "--user", USER, "--cputime", "1s", "--wait", "--",
                                "sh", "-c", "while :; do :; done"])
        tap.ok(rc != 0 and "cputime" in err, "a task killed for cputime: non-zero, and why", (rc, err))

        # files in the three formats, and stdin
        for name in ("full.json", "full.yaml", "full.xml"):
            with open(os.path.join(DATA, name)) as f:
                text = f.read()
            tmp = tempfile.NamedTemporaryFile("w", suffix="." + name.split(".")[1], delete=False)
            tmp.write(text.replace("alice", USER).replace("nobody", USER))
            tmp.close()
            rc, out, err = run(S + ["submit", "-f", tmp.name])
            os.unlink(tmp.name)
            tap.ok(rc == 0 and len(out.strip()) == 36, "submit -f %s" % name, (rc, out, err))
        rc, out, err = run(S + ["submit", "-f", "-"], stdin=json.dumps({"user": USER, "cmd": "true"}))
        tap.ok(rc == 0 and len(out.strip()) == 36, "submit -f - reads stdin (format by content)", err)
        stdin_id = out.strip()

        # state / list / get in each output mode
        rc, out, err = run(S + ["state", tid])
        tap.ok(rc == 0 and out.splitlines()[0].split()[:4] == ["ID", "NAME", "USER", "STATE"] and
               "EXECUTOR_ERROR" in out, "state: a table", out)
        rc, out, err = run(S + ["-o", "json", "state", tid])
        tap.ok(rc == 0 and json.loads(out)[0]["id"] == tid, "state -o json: the API's objects", out)
        rc, out, err = run(S + ["-o", "yaml", "state", tid])
        tap.ok(rc == 0 and yaml.safe_load(out)[0]["exit_code"] == 3, "state -o yaml parses back", out)
        rc, out, err = run(S + ["-o", "json", "list", "--all"])
        ids = [s["id"] for s in json.loads(out)] if rc == 0 else []
        tap.ok(tid in ids and stdin_id in ids, "list --all has ended tasks", out)
        rc, out, err = run(S + ["-o", "json", "list"])
        tap.ok(rc == 0 and tid not in [s["id"] for s in json.loads(out)], "list without --all: active tasks only", out)
        rc, out, err = run(S + ["-o", "json", "list", "--all", "--code", "EXECUTOR_ERROR"])
        tap.ok(rc == 0 and all(s["code"] == "EXECUTOR_ERROR" for s in json.loads(out)), "list --code", out)
        rc, out, err = run(S + ["-o", "yaml", "get", tid])
        g = yaml.safe_load(out) if rc == 0 else {}
        tap.ok(g.get("id") == tid and g.get("state", {}).get("code") == "EXECUTOR_ERROR", "get -o yaml", out)
        rc, out, err = run(S + ["-o", "json", "get", tid])
        tap.ok(rc == 0 and json.loads(out)["memory"] == "64M", "get -o json", out)

        # Global options go before or after the command, in every form getopt
        # knows, up to "--"; what follows "--" is the task's command.
        url = S[1]
        rc, out, err = run(["list", "--all", "-o", "yaml"], env={"OCPS_PROXY_URL": url})
        tap.ok(rc == 0 and tid in [s["id"] for s in yaml.safe_load(out)],
               "the README's `list --all -o yaml`", (rc, out, err))
        rc, out, err = run(S + ["state", "-o", "json", tid])
        tap.ok(rc == 0 and json.loads(out)[0]["id"] == tid, "state -o json ID", (rc, out, err))
        rc, out, err = run(["state", tid, "--output=yaml", "--server", url])
        tap.ok(rc == 0 and yaml.safe_load(out)[0]["id"] == tid,
               "--output=yaml and --server URL after the command and its id", (rc, out, err))
        rc, out, err = run(["-o", "json", "list", "--all", "--server=" + url])
        tap.ok(rc == 0 and tid in [s["id"] for s in json.loads(out)],
               "-o json before the command, --server=URL after", (rc, out, err))
        rc, out, err = run(["get", "-ojson", tid, "--server", url])
        tap.ok(rc == 0 and json.loads(out)["id"] == tid, "-ojson after the command", (rc, out, err))
        rc, out, err = run(["-s", url, "ping"])
        tap.ok(rc == 0 and out.startswith("alive ("), "-s URL before the command", (rc, out, err))
        rc, out, err = run(["ping", "-s", url])
        tap.ok(rc == 0 and out.startswith("alive ("), "-s URL after the command", (rc, out, err))
        rc, out, err = run(["logs", "-s", url, tid, "-o", "json"])
        tap.eq((rc, out), (0, "1\n"), "logs: -s is the server, not --system")
        rc, out, err = run(["submit", "-o", "json", "--user", USER, "--server", url,
                            "--", "sh", "-c", "echo -o", "-s", "x"])
        sub = json.loads(out) if rc == 0 else {}
        t = d.request("GET", "/v1/jobproxy/task/" + sub["id"]).json() if "id" in sub else {}
        tap.eq(t.get("cmd"), ["sh", "-c", "echo -o", "-s", "x"],
               "submit -o json ... -- CMD: the options before -- are the CLI's, CMD is left alone")
        rc, out, err = run(S + ["list", "--all", "-h"])
        tap.ok(rc == 0 and out.startswith("Usage: ocps-proxy list") and "--output" in out,
               "-h after other options: the command's help, with the global options", (rc, out, err))
        rc, out, err = run(S + ["state", tid, "--help"])
        tap.ok(rc == 0 and out.startswith("Usage: ocps-proxy state"), "state ID --help", (rc, out, err))
        for args, what in ((["--bogus", "ping"], "an unknown option before the command"),
                           (["ping", "--bogus"], "an unknown option after the command"),
                           (["list", "-x"], "an unknown short option after the command"),
                           (["list", "--all=yes"], "a value for an option that takes none"),
                           (["state", tid, "-o"], "-o without its value"),
                           (["state", tid, "-o", "xml"], "-o with an unknown format after the command")):
            rc, out, err = run(S + args)
            tap.ok(rc == 2 and "ocps-proxy:" in err and "Try 'ocps-proxy" in err,
                   "%s: usage error (2)" % what, (args, rc, err))
        # An argument starting with "-" where an id goes is an unknown option,
        # never a request for a task of that name.
        for args in (["state", "-x"], ["delete", "-q", tid], ["get", "--", "-x"],
                     ["wait", "-"], ["logs", "--", "-f"], ["state", tid, "-", "-o", "json"]):
            rc, err, conns = run_counting(args)
            tap.ok(rc == 2 and conns == 0 and "unknown option" in err,
                   "%s: exit 2 naming an unknown option, no request" % " ".join(args),
                   (rc, conns, err))

        # logs
        rc, out, err = run(S + ["logs", tid])
        tap.eq((rc, out), (0, "1\n"), "logs: the task's stdout")
        lid = run(S + ["submit", "--user", USER, "--", "sh", "-c", "echo a; sleep 1; echo b >&2; echo c"])[1].strip()
        rc, out, err = run(S + ["logs", "-f", lid])
        tap.eq((rc, out), (0, "a\nc\n"), "logs -f follows stdout to the end")
        rc, out, err = run(S + ["logs", "--stderr", lid])
        tap.eq(out, "b\n", "logs --stderr")
        rc, out, err = run(S + ["logs", "--tail", "1", lid])
        tap.eq(out, "c\n", "logs --tail 1")

        # wait on several, delete
        a = run(S + ["submit", "--user", USER, "--", "sleep", "1"])[1].strip()
        b = run(S + ["submit", "--user", USER, "--", "sh", "-c", "sleep 1; exit 5"])[1].strip()
        rc, out, err = run(S + ["wait", a])
        tap.eq(rc, 0, "wait on one task that completes: 0")
        rc, out, err = run(S + ["wait", a, b])
        tap.eq(rc, 1, "wait on several, one failed: 1")
        rc, out, err = run(S + ["wait", b])
        tap.eq(rc, 5, "wait on one task: its exit code")
        long_id = run(S + ["submit", "--user", USER, "--", "sleep", "60"])[1].strip()
        rc, out, err = run(S + ["delete", long_id])
        tap.ok(rc == 0 and out.strip() == long_id, "delete prints the id", (rc, out, err))
        rc, out, err = run(S + ["wait", long_id])
        tap.ok(rc == 1 and "CANCELED" in err, "a cancelled task: wait exits 1 saying so", (rc, err))
        rc, out, err = run(S + ["delete", "00000000-0000-4000-8000-000000000000"])
        tap.ok(rc == 1 and "404" in err and "{" not in err, "a server error is printed with its message", err)

        # watch, not on a terminal: plain lines
        rc, out, err = run(S + ["watch", "--all", "--count", "1"])
        lines = out.splitlines()
        tap.ok(rc == 0 and any(l.startswith(tid + " ") and "EXECUTOR_ERROR" in l for l in lines)
               and "\033" not in out, "watch writes plain lines when not on a terminal", out)

        # container flags, when a dockerd with the test image is here
        if os.path.exists("/var/run/docker.sock") and subprocess.run(
                ["curl", "-sf", "--unix-socket", "/var/run/docker.sock",
                 "http://localhost/v1.41/images/ocps-test%2Fbusybox:1/json"],
                capture_output=True).returncode == 0:
            shared = tempfile.mkdtemp(prefix="ocps-cli-")
            os.chmod(shared, 0o755)
            with open(os.path.join(shared, "in.txt"), "w") as f:
                f.write("from the host\n")
            os.chmod(os.path.join(shared, "in.txt"), 0o644)
            rc, out, err = run(S + ["submit", "--user", USER, "--image", "ocps-test/busybox:1",
                                    "--mount", shared + ":/in:ro", "--port", "18557:80",
                                    "--follow", "--", "cat", "/in/in.txt"], timeout=120)
            tap.ok(rc == 0 and "from the host" in out, "submit --image --mount --port runs a container", (rc, out, err))
            cid = json.loads(run(S + ["-o", "json", "list", "--all"])[1])[-1]
            tap.eq(cid["backend"], "docker", "... on the docker backend")
            subprocess.run(["rm", "-rf", shared])
        else:
            tap.ok(False, "dockerd with the test image (test/docker/setup.sh) for the container flags")

        # where the server is
        rc, out, err = run(["ping"], env={"OCPS_PROXY_URL": "http://127.0.0.1:%d" % d.port})
        tap.eq(rc, 0, "OCPS_PROXY_URL names the server")
        rc, out, err = run(["--server", "unix:" + sock, "-o", "json", "state", tid])
        tap.ok(rc == 0 and json.loads(out)[0]["id"] == tid, "--server unix:/path", (rc, out, err))
        rc, out, err = run(["--server", "http://127.0.0.1:9", "ping"])
        tap.ok(rc == 3 and "http://127.0.0.1:9" in err, "an unreachable server: exit 3 naming the address", (rc, err))

        # bash completion, generated by the client from its own tables
        rc, script, err = run(["completion", "bash"])
        probes = (("ocps-proxy sub", "submit"), ("ocps-proxy submit --mem", "--memory"),
                  ("ocps-proxy --out", "--output"), ("ocps-proxy list --ou", "--output"),
                  ("ocps-proxy state --se", "--server"), ("ocps-proxy -s URL logs --sy", "--system"),
                  ("ocps-proxy list -o ''", "table json yaml"),
                  ("ocps-proxy -o json list --all --output ''", "table json yaml"),
                  # logs' -f is --follow, not submit's --file: options, not file names
                  ("ocps-proxy logs -f --ta", "--tail"),
                  ("ocps-proxy logs -f ''",
                   "--help --server --output --token --token-file --cacert --cert --key "
                   "--follow --stderr --system --tail"))
        probe = script + "".join("\nCOMP_WORDS=(%s); COMP_CWORD=%d; _ocps_proxy; echo \"${COMPREPLY[@]}\""
                                 % (words, len(words.split()) - 1) for words, _ in probes)
        p = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
        tap.eq(p.stdout.splitlines() if rc == 0 else p.stderr, [want for _, want in probes],
               "completion bash completes commands, each command's options, and the global "
               "options before and after the command")

        # What another user wrote never drives the terminal: control characters are shown, not sent.
        evil = "\x1b]0;owned\x07\x1b[2J\u009b31m"
        tid = d.submit_id({"user": USER, "name": "n" + evil, "cmd": ["/nonexistent" + evil]})
        d.wait(tid)
        rc, out, err = run(S + ["list", "--all"])
        tap.ok(rc == 0 and "n\\x1b]0;owned\\x07\\x1b[2J\\x9b31m" in out and "\x1b" not in out
               and "\x07" not in out and "\u009b" not in out,
               "list shows control characters in a name escaped", out)
        rc, out, err = run(S + ["wait", tid])
        tap.ok(rc == 1, "wait on a task that never ran: 1", (rc, err))
        tap.ok("/nonexistent\\x1b]0;owned" in err and "\x1b" not in err and "\u009b" not in err,
               "and its reason is printed escaped", err)

        # usage errors
        for args, what in ((["bogus"], "an unknown command"), (["--bogus", "ping"], "an unknown flag"),
                           (S + ["submit", "--user", USER], "submit without a command"),
                           (S + ["submit", "--mount", "nocolon", "--", "true"], "a bad --mount"),
                           (S + ["-o", "xml", "list"], "an unknown output format"),
                           (S + ["get"], "get without an id")):
            rc, out, err = run(args)
            tap.ok(rc == 2 and "ocps-proxy:" in err, "%s is a usage error (2)" % what, (rc, err))
        rc, out, err = run(S + ["submit", "--user", USER, "--memory", "lots", "--", "true"])
        tap.ok(rc == 1 and "memory" in err, "a task the server refuses: 1, with its message", (rc, err))


if __name__ == "__main__":
    ocps.main(t_cli)
