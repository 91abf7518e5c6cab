/*
 * dlopen: see dlopen.h.
 */
#include "dlopen.h"

#include <dlfcn.h>

int dlopen_many(const char *soname, const struct dlsym_entry *syms, struct error *err)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h)
        return error_set(err, -EOPNOTSUPP, "%s", dlerror());

    size_t n = 0;
    while (syms[n].name)
        n++;
    _cleanup_free_ void **found = xcalloc(n ? n : 1, sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        found[i] = dlsym(h, syms[i].name);
        if (!found[i]) {
            int r = error_set(err, -EOPNOTSUPP, "%s has no symbol %s", soname, syms[i].name);
            dlclose(h);
            return r;
        }
    }
    for (size_t i = 0; i < n; i++)
        *syms[i].fn = found[i];
    return 0;
}
