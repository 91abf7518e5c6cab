/*
 * shim: the long-lived parent of process tasks, as container shims are.
 *
 * One `ocps-shim SHIM_DIR PARENT_PID` supervises many tasks (containerd's
 * shim v2 groups containers the same way): the daemon starts one when it
 * first needs it and hands it tasks over a SOCK_SEQPACKET connection on
 * fd 3. For each task the shim forks the command into the task's cgroup,
 * enforces walltime (from the task's admission), the tree-wide cputime
 * and the output cap, cancels on request
 * (SIGTERM to the tree, SIGKILL after the grace period), kills whatever
 * is left when the main process ends, and records the outcome in
 * <task_dir>/exit.json. It outlives the daemon: it listens on
 * SHIM_DIR/<pid>.sock so that a restarted daemon can reconnect, and it
 * exits once its daemon is gone and its last task has ended. SIGTERM,
 * SIGINT and SIGHUP do not stop it (its tasks would lose their parent).
 *
 * Messages (one per datagram, text):
 *   daemon -> shim  "S <id> <task_dir>" with two fds (SCM_RIGHTS): the
 *                   task's locked shim.lock and a memfd holding its spec
 *                   (JSON): start it;
 *                   "C <id>": cancel; "W <id>": watch (a reconnected
 *                   daemon): answered "R" if it runs, "E" if the shim no
 *                   longer has it.
 *   shim -> daemon  "H <protocol> <version>" the hello, first on every
 *                   connection (see below);
 *                   "R <id> <usec>" the command runs since <usec>;
 *                   "E <id>" it ended, exit.json is written.
 *
 * The hello. The shim speaks first on every connection, the socketpair
 * included: "H 2 0.1.0" is SHIM_PROTOCOL and the release (for the logs).
 * The protocol number goes up when a message changes meaning or a new one
 * must be understood. Protocol 0 is every shim from before the hello: it
 * sends none, and speaks S, C, W, R and E as above. Protocol 1 brought
 * the hello. Protocol 2: the spec of an S carries the task's output cap
 * (output_limit, bytes of stdout plus stderr) and its admission time
 * (admitted, where its walltime counts from), and the shim makes the
 * default output files for the task's user; a shim of protocol 1 would
 * ignore the cap, so it gets no task. After an upgrade a
 * restarted daemon reconnects to shims of the old release, which still
 * run their tasks; the first message of a connection tells what the shim
 * speaks: an "H", or else (protocol 0) the answer to the daemon's first
 * "W". The daemon
 *   - follows (W, C, R, E) the tasks of a shim of any protocol from
 *     SHIM_PROTOCOL_MIN to its own, and logs which it met;
 *   - hands a new task (S) only to a shim of exactly its own protocol:
 *     only shims it starts itself get tasks, and it reads the hello of
 *     each before the first (it sends "W -" at once, so that a shim
 *     without a hello answers too). A shim of another protocol (an
 *     ocps-shim upgraded under a running daemon) is stopped and the
 *     start fails with SYSTEM_ERROR, naming both protocols;
 *   - cannot follow a shim of a protocol it does not speak (newer, after
 *     a downgrade): it logs so, hangs up, kills those tasks' process trees
 *     and reports them SYSTEM_ERROR with a reason naming both protocols,
 *     so that nothing runs unwatched.
 * A daemon from before the hello that meets a newer shim logs its "H" as
 * an unknown message and goes on: protocols 1 and 2 answer everything
 * protocol 0 asks.
 *
 * A daemon that does not read. What the shim has to say to a daemon never
 * blocks it: it waits in a queue per connection, of at most
 * SHIM_QUEUE_MAX bytes. A connection whose queue would pass that is
 * dropped, as redis drops a client past its client-output-buffer-limit:
 * the shim shuts down its reading side (a request sent from then on fails
 * with EPIPE, so the daemon knows it was not taken), handles the requests
 * already received, closes the connection and forgets what it had queued
 * for it. Its tasks go on. Dropping the daemon that started it counts as
 * that daemon leaving: the shim gets no new task and exits after its
 * last one. A daemon whose connection hangs up tells a shim that dropped
 * it from one that died: if the shim's pid still runs and
 * SHIM_DIR/<pid>.sock answers, it reconnects there, asks "W" again for
 * each of its tasks (and "C" again for those it was cancelling), as after
 * a restart, and starts a shim of its own for new tasks. What it missed
 * is answered again, and each end is still reported once. Only a shim
 * that cannot be reached, that hangs up before it says a word (its hello
 * comes first) or that is from before the hello (it drops no one) is
 * taken for dead.
 *
 * Nothing runs twice: the daemon flock()s <task_dir>/shim.lock, writes
 * the shim's pid into it and passes the locked file to the shim with the
 * start message, so the lock is held from before the start until after
 * exit.json is written, across the daemon's death. The shim adds a
 * `started` line just before the command is spawned. A restarted daemon
 * that finds the lock free and no `started` line knows the command never
 * ran; finding it held, it reconnects to the pid in it.
 *
 * Files in the task directory (as few as can be: on ext4 without a
 * journal every new inode is a search past the recently deleted ones):
 *   shim.lock  locked from the start request to the outcome; holds
 *              "pid <shim pid>" (padded to SHIM_LOCK_STARTED_AT bytes)
 *              then "started <usec>"
 *   system.log the shim's messages about the task (GET logs?stream=system)
 *   exit.json  the outcome (task_outcome_write)
 *   stdout, stderr  the default output files, made by the shim and owned
 *              by the task's user (the directory stays the daemon's)
 * (shim.pid and started, from shims before 2026-11, are still read.)
 */
#pragma once

#include "backend.h"

#include <sys/un.h>

#define SHIM_CONTROL_FD 3
#define SHIM_MSG_MAX    4096

/* This release's protocol (the hello), and the oldest one a daemon still follows. */
#define SHIM_PROTOCOL     2
#define SHIM_PROTOCOL_MIN 0

/*
 * The most a connection's queue of replies holds, in bytes (with the
 * queue's own 16 per reply). Replies are small: an R and an E per task
 * (40 to 60 bytes: an id, and a time) and an answer per W. A
 * daemon that reads at all keeps up (its monitor thread does nothing but
 * read and hand events on), so this is more than 100,000 replies: every
 * task of a busy shim ending, many times over, while the daemon reads
 * nothing, or minutes of this machine's fastest rate of tasks (~250/s).
 * Memory a shim can spare; a daemon that far behind is stopped (SIGSTOP,
 * a debugger) or stuck, and being dropped costs it a reconnect, not a
 * task. Tests set OCPS_TEST_SHIM_QUEUE_MAX (bytes) in the environment of
 * the shims they start to replace it.
 */
#define SHIM_QUEUE_MAX (8u << 20)

/*
 * The protocol this process speaks: SHIM_PROTOCOL. Tests set
 * OCPS_TEST_SHIM_PROTOCOL to stand in for a daemon and the shims it
 * starts from another release (0: from before the hello, so no hello).
 */
int shim_protocol(void);

/* The ocps-shim program. */
int shim_main(int argc, char **argv);

#define SHIM_LOCK_STARTED_AT 16

/* Writes "pid <pid>" at the head of the task's shim.lock (before handing it over). */
int shim_lock_set_pid(int lock_fd, pid_t pid);
/* The pid of the shim that took the task. */
int shim_read_pid(const char *task_dir, pid_t *ret);
/* The `started` line, written before the command is spawned: -ENOENT
 * means it never was; *ret is 0 when the time in it cannot be read. */
int shim_read_started(const char *task_dir, usec_t *ret);

/* Fills a sockaddr_un for path; paths longer than sun_path go through an
 * O_PATH fd of their directory (*ret_dirfd, to be closed after use). */
int shim_sockaddr(const char *path, struct sockaddr_un *ret, int *ret_dirfd);
