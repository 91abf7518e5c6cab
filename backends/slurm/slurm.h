/*
 * slurm: the Slurm backend (issue #14): command tasks as Slurm jobs
 * through slurmrestd. Not yet in the daemon's backend table.
 */
#pragma once

#include "backend.h"

extern const struct backend_ops slurm_backend_ops;
