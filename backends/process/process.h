/*
 * process: the process backend. Tasks with a plain cmd run as confined
 * processes on this host, children of the daemon's long-lived ocps-shim
 * (shim.h), each in a cgroup of its own (cgroup.h), as the account its
 * "user" names (confine.h).
 */
#pragma once

#include "backend.h"

extern const struct backend_ops process_backend_ops;
