/* backend: the table of built-in backends (see backend.h). */
#include "backend.h"
#include "process/process.h"

const struct backend_ops *const backend_table[] = {
    &process_backend_ops,
    NULL,
};

const struct backend_ops *backend_ops_by_name(const char *name)
{
    for (size_t i = 0; backend_table[i]; i++)
        if (streq(backend_table[i]->name, name))
            return backend_table[i];
    return NULL;
}
