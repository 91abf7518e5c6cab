/*
 * slurm-output: the directory where the Slurm backend's jobs write the
 * stdout and stderr of tasks that name no file (output.c). It must be
 * seen at the same path by every node (slurmstepd opens the files there,
 * as the job's user) and by the proxy (the logs endpoint reads them, as
 * the task's user too: a directory its user owns is no place for root to
 * open files in).
 *
 *   <output_dir>/             root's, 0755: no user can plant anything in it
 *   <output_dir>/<id>/        the task's user's, 0700
 *       stdout, stderr        written by the job
 */
#pragma once

#include "util/error.h"

#include <sys/types.h>

/* Makes the directory (0755, root's, when missing) and checks that a
 * job's user can reach it: every directory on the way must be
 * searchable by others (-EACCES naming the one that is not: a data dir
 * of 0700 is not a place for it; set slurm.output_dir). */
int slurm_output_dir_setup(const char *dir, struct error *err);

/* <dir>/<id>, the task's user's (uid, gid), mode 0700; an existing one
 * (a task recovered) is kept when it is a directory of that user. */
int slurm_output_task_dir(const char *dir, const char *id, uid_t uid, gid_t gid, struct error *err);
