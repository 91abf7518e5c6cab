#!/usr/bin/env python3
"""Output and files, through the daemon: the per-task output cap (the
principal's max.output, 1 MiB here), the default output files owned by the
task's user, the logs endpoint reading a path the task named as that user
(missing and forbidden answer alike; a symlink to /etc/shadow gives
nothing), and a walltime counted from admission (a stdout FIFO nobody reads
does not hold a slot for ever). Real accounts: made here, removed after."""

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time

import ocps

USER = "ocpstest"
OTHER = "ocpsoutb"
CONFIG = "capacity: {cores: 2}\nprincipals: {default: {max: {output: 1M}}}\n"


def gone(pid, timeout=15):
    """Whether the process is gone (or a zombie its reaper has not reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def read_pid(path, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    return 0


def t_cap(tap, d):
    marker = "/tmp/ocps-output-%d.pid" % os.getpid()
    tid = d.submit_id({"user": USER, "cmd": "sleep 300 & echo $! > %s; yes" % marker})
    sleeper = read_pid(marker)
    st = d.wait(tid, timeout=60)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and st["description"] == "killed: output limit 1 MiB exceeded",
           "a task writing past its 1 MiB cap is EXECUTOR_ERROR, saying so", st)
    tap.ok(sleeper > 0 and gone(sleeper), "its process tree is gone (%d)" % sleeper)
    os.unlink(marker)

    tid = d.submit_id({"user": USER, "cmd": "head -c 700000 /dev/zero | tr '\\0' x"})
    st = d.wait(tid)
    tap.eq(st["code"], "COMPLETE", "a task writing under its cap completes")
    out = d.output(tid) or ""
    tap.ok(len(out) == 700000 and set(out) == {"x"}, "and its output is whole (%d bytes)" % len(out))

    tid = d.submit_id({"user": USER, "cmd": "head -c 700000 /dev/zero; head -c 700000 /dev/zero >&2"})
    st = d.wait(tid)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and st["description"] == "killed: output limit 1 MiB exceeded",
           "stdout and stderr count together", st)


def t_owner(tap, d):
    pw = pwd.getpwnam(USER)
    tid = d.submit_id({"user": USER, "cmd": "echo out; echo err >&2"})
    d.wait(tid)
    task_dir = os.path.join(d.data_dir, "tasks", tid)
    for name in ("stdout", "stderr"):
        s = os.stat(os.path.join(task_dir, name))
        tap.ok((s.st_uid, s.st_gid) == (pw.pw_uid, pw.pw_gid),
               "the default %s belongs to the task's user (%d:%d)" % (name, s.st_uid, s.st_gid))
    s = os.stat(task_dir)
    tap.ok(s.st_uid == os.geteuid() and stat.S_IMODE(s.st_mode) == 0o700,
           "the task's directory stays the daemon's, 0700 (%o)" % stat.S_IMODE(s.st_mode))
    tap.eq(d.output(tid), "out\n", "its output reads back")


def logs(d, tid):
    r = d.request("GET", "/v1/jobproxy/logs/%s?stream=stdout" % tid)
    return r.status, r.text


def t_logs_as_user(tap, d):
    pw, other = pwd.getpwnam(USER), pwd.getpwnam(OTHER)
    work = tempfile.mkdtemp(prefix="ocps-output-")
    try:
        os.chmod(work, 0o755)
        os.chown(work, pw.pw_uid, pw.pw_gid)  # the user's directory, where its task writes
        path = os.path.join(work, "out")
        tid = d.submit_id({"user": USER, "cmd": "echo mine", "stdout": path})
        st = d.wait(tid)
        tap.eq(st["code"], "COMPLETE", "a task writing to a file it named completes")
        tap.eq(logs(d, tid), (200, "mine\n"), "the logs endpoint reads it")

        # What the same path answers once it is not a file the user can read.
        def answer():
            r = d.request("GET", "/v1/jobproxy/logs/%s?stream=stdout" % tid)
            return r.status, r.text

        os.chown(path, other.pw_uid, other.pw_gid)
        os.chmod(path, 0o600)
        forbidden = answer()
        os.unlink(path)
        missing = answer()
        tap.ok(missing[0] == 404 and "mine" not in missing[1], "a missing file is 404", missing)
        tap.eq(forbidden, missing, "a file the user may not read answers as a missing one")

        with open(path, "w") as f:
            f.write("root's\n")
        os.chmod(path, 0o600)
        tap.eq(answer(), missing, "a file only root may read answers as a missing one (not read as root)")
        os.chown(path, other.pw_uid, other.pw_gid)
        os.chmod(path, 0o644)
        tap.eq(answer(), (200, "root's\n"), "a file another account owns that the user may read is read")
        os.unlink(path)

        os.symlink("/etc/shadow", path)
        os.lchown(path, pw.pw_uid, pw.pw_gid)
        got = answer()
        tap.eq(got, missing, "a symlink the user placed to /etc/shadow gives nothing")
        os.unlink(path)

        # A directory on the way to /etc (a symlink), then shadow itself: as the
        # user, unreadable; followed as root, it was the file.
        etc = os.path.join(work, "etc")
        os.symlink("/etc", etc)
        os.lchown(etc, pw.pw_uid, pw.pw_gid)
        tid2 = d.submit_id({"user": USER, "cmd": "true", "stdout": os.path.join(etc, "shadow")})
        d.wait(tid2)
        st2, text2 = logs(d, tid2)
        tap.ok(st2 == 404 and "root:" not in text2, "/etc/shadow through a symlinked directory gives nothing",
               (st2, text2[:200]))

        # A file of the user's behind a directory the user may not enter: root
        # could read it, the user cannot.
        closed = os.path.join(work, "closed")
        os.mkdir(closed, 0o700)
        hidden = os.path.join(closed, "out")
        tid3 = d.submit_id({"user": USER, "cmd": "true", "stdout": hidden})
        d.wait(tid3)
        with open(hidden, "w") as f:
            f.write("hidden\n")
        os.chown(hidden, pw.pw_uid, pw.pw_gid)
        st3, text3 = logs(d, tid3)
        tap.ok(st3 == 404 and "hidden" not in text3,
               "the user's own file behind a directory it may not enter gives nothing", (st3, text3))
        os.unlink(hidden)
        st4, text4 = logs(d, tid3)
        tap.eq((st4, text4.replace(hidden, path)), missing,
               "and answers the same words once it is gone (the path aside)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def t_fifo_walltime(tap, d):
    fifo = "/tmp/ocps-output-%d.fifo" % os.getpid()
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    try:
        tid = d.submit_id({"user": USER, "cmd": "echo x", "stdout": fifo, "walltime": "2s"})
        st = d.wait(tid, timeout=60)
        tap.ok(st["code"] == "EXECUTOR_ERROR" and st["description"] == "killed: walltime limit 2 s exceeded",
               "a task blocked on a stdout FIFO nobody reads ends by its walltime", st)
        # Its slot is free again: a task that needs both cores runs.
        tid = d.submit_id({"user": USER, "cores": 2, "cmd": "echo next"})
        tap.eq(d.wait(tid)["code"], "COMPLETE", "and the capacity it held is free")
    finally:
        os.unlink(fifo)


def t_cap_after_restart(tap, d):
    """A task queued across a restart starts from its stored record: its
    principal's cap holds there too."""
    blocker = d.submit_id({"user": USER, "cores": 2, "cmd": "sleep 300"})
    d.wait(blocker, codes=("RUNNING",))
    tid = d.submit_id({"user": USER, "cmd": "yes"})
    tap.eq(d.state(tid)["code"], "QUEUED", "a task waits behind one that holds both cores")
    d.stop()
    d.start()
    d.request("DELETE", "/v1/jobproxy/delete/" + blocker)
    st = d.wait(tid, timeout=60)
    tap.ok(st["code"] == "EXECUTOR_ERROR" and st["description"] == "killed: output limit 1 MiB exceeded",
           "started after a restart, it is held to its cap", st)


def t_output(tap):
    ocps.require_root()
    ocps.ensure_user(USER)
    made = False
    try:
        pwd.getpwnam(OTHER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", OTHER], check=True)
        made = True
    try:
        with ocps.serving(tap, ocps.Daemon(config=CONFIG), "a 1 MiB output cap") as d:
            ocps.each(tap, d, [t_cap, t_owner, t_logs_as_user, t_fifo_walltime,
                               t_cap_after_restart])
    finally:
        if made:
            subprocess.run(["userdel", OTHER], check=False)


if __name__ == "__main__":
    ocps.main(t_output)
