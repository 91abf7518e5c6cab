/*
 * dlopen: optional libraries loaded on first use, as systemd does for
 * libfido2, libidn2 and friends (src/shared/dlfcn-util.h). A library that
 * serves a rare request (libxml2 and its ICU for XML bodies) then costs
 * the daemon no resident memory until that request arrives, and its
 * absence becomes a clear error for that request instead of a daemon
 * that will not start.
 *
 *   static typeof(xmlFreeDoc) *sym_xmlFreeDoc;
 *   static const struct dlsym_entry syms[] = { DLSYM_ENTRY(xmlFreeDoc), {} };
 *   r = dlopen_many("libxml2.so.2", syms, &err);
 */
#pragma once

#include "error.h"

struct dlsym_entry {
    void **fn;
    const char *name;
};

#define DLSYM_ENTRY(f)                                                                             \
    {                                                                                              \
        (void **) &sym_##f, #f                                                                     \
    }

/* Opens soname (kept open for the life of the process) and resolves every
 * entry up to the empty one. On failure no pointer is set and err names
 * the library or the missing symbol. Not thread-safe: call it under
 * pthread_once. */
int dlopen_many(const char *soname, const struct dlsym_entry *syms, struct error *err);
