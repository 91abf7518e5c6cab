/* layout: see layout.h. */
#include "layout.h"
#include "util/util.h"

char *layout_db(const char *data_dir)
{
    return xasprintf("%s/ocps-proxy.db", data_dir);
}

char *layout_admin_token(const char *data_dir)
{
    return xasprintf("%s/admin.token", data_dir);
}

char *layout_tokens_seq(const char *data_dir)
{
    return xasprintf("%s/tokens.seq", data_dir);
}

char *layout_tasks(const char *data_dir)
{
    return xasprintf("%s/tasks", data_dir);
}

char *layout_shims(const char *data_dir)
{
    return xasprintf("%s/shims", data_dir);
}

char *layout_task_dir(const char *data_dir, const char *id)
{
    return xasprintf("%s/tasks/%s", data_dir, id);
}

char *layout_task_file(const char *data_dir, const char *id, const char *name)
{
    return xasprintf("%s/tasks/%s/%s", data_dir, id, name);
}

char *layout_in_task_dir(const char *task_dir, const char *name)
{
    return xasprintf("%s/%s", task_dir, name);
}
