/*
 * docker: the Docker backend. Tasks with a container run as Docker
 * containers on this host, through the Engine API over the unix socket
 * (engine.h), with every Task field mapped and enforced. Its parts are
 * listed in docker-internal.h.
 */
#pragma once

#include "backend.h"

extern const struct backend_ops docker_backend_ops;
