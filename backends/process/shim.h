/*
 * shim: the long-lived parent of process tasks, as container shims are.
 *
 * One `ocps-shim SHIM_DIR PARENT_PID` supervises many tasks (containerd's
 * shim v2 groups containers the same way): the daemon starts one when it
 * first needs it and hands it tasks over a SOCK_SEQPACKET connection on
 * fd 3. For each task the shim forks the command into the task's cgroup,
 * enforces walltime and the tree-wide cputime, cancels on request
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
 *   shim -> daemon  "R <id> <usec>" the command runs since <usec>;
 *                   "E <id>" it ended, exit.json is written.
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
 * (shim.pid and started, from shims before 2026-11, are still read.)
 */
#pragma once

#include "backend.h"

#include <sys/un.h>

#define SHIM_CONTROL_FD 3
#define SHIM_MSG_MAX    4096

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
