/*
 * shim: the small per-task parent process, as container shims are.
 *
 * The daemon starts one `ocps-shim <task_dir>` per task. The shim holds
 * <task_dir>/shim.lock for its whole life, runs the task in its cgroup,
 * enforces walltime and the tree-wide cputime, turns SIGTERM into a
 * cancel (SIGTERM to the tree, SIGKILL after the grace period), kills
 * whatever is left when the main process ends, and records the outcome
 * in <task_dir>/exit.json before it exits. It outlives the daemon, so a
 * daemon killed with -9 loses nothing: on restart it finds either a live
 * shim (the lock is held) or the recorded outcome.
 *
 * Files in the task directory:
 *   shim.json  the spec, written by the daemon before the shim starts
 *   shim.lock  flock()ed by the shim first thing, for its whole life
 *   shim.pid   the shim's pid, written once the lock is held
 *   system.log the shim's own stderr (GET logs?stream=system)
 *   started    written once the task's command has been exec'd (start time)
 *   exit.json  the outcome (task_outcome_write)
 * fd 3, when open, is a pipe to the daemon: "R <usec>\n" once running.
 */
#pragma once

#include "backend.h"

#define SHIM_STATUS_FD 3
#define SHIM_LOCK_FD   4

/* The ocps-shim program. */
int shim_main(int argc, char **argv);

/* Reads <task_dir>/started. */
int shim_read_started(const char *task_dir, usec_t *ret);
