/*
 * process: the process backend. Tasks with a plain cmd run as confined
 * processes on this host, each under its own ocps-shim (shim.h), in a
 * cgroup of its own (cgroup.h), as the account its "user" names
 * (confine.h).
 */
#pragma once

#include "backend.h"

extern const struct backend_ops process_backend_ops;
