/*
 * docker: the Docker backend. Tasks with a container run as Docker
 * containers on this host, through the Engine API over the unix socket
 * (engine.h), with every Task field mapped and enforced.
 */
#pragma once

#include "backend.h"

extern const struct backend_ops docker_backend_ops;

/* An image reference split into what /images/create wants: the name
 * without tag or digest, the tag (or "sha256:..." digest; "latest" when
 * absent), and the registry host its credentials are filed under
 * ("docker.io" when the name has none). -EINVAL when it is not a valid
 * reference (Docker's grammar: lower-case path components). */
struct image_ref {
    char *name;
    char *tag;
    char *registry;
};
int docker_image_ref_parse(const char *ref, struct image_ref *ret);
void image_ref_done(struct image_ref *r);
