/*
 * task-json: JSON documents to cJSON trees for the validator.
 *
 * cJSON accepts things a strict reader should not: trailing garbage after
 * the document and duplicate keys (of which it keeps the first). Both are
 * refused here, so "memory" given twice cannot mean two things to two
 * readers. Errors carry the line and column where parsing stopped.
 */
#include "task.h"

static void offset_to_position(const char *buf, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Every object in the tree has distinct keys. Sorting keeps huge objects linear-ish. */
static int check_duplicates(const cJSON *j, struct error *err)
{
    if (cJSON_IsObject(j) && j->child && j->child->next) {
        size_t n = 0, i = 0;
        for (const cJSON *c = j->child; c; c = c->next)
            n++;
        _cleanup_free_ const char **names = xcalloc(n, sizeof(char *));
        for (const cJSON *c = j->child; c; c = c->next)
            names[i++] = c->string;
        qsort(names, n, sizeof(char *), cmp_names);
        for (i = 1; i < n; i++)
            if (streq(names[i - 1], names[i]))
                return error_set(err, -EBADMSG, "invalid JSON: key \"%.64s\" is given twice",
                                 names[i]);
    }
    if (cJSON_IsObject(j) || cJSON_IsArray(j))
        for (const cJSON *c = j->child; c; c = c->next) {
            int r = check_duplicates(c, err);
            if (r < 0)
                return r;
        }
    return 0;
}

int task_json_parse(const char *buf, size_t len, cJSON **ret, struct error *err)
{
    const char *end = NULL;
    unsigned line, col;

    if (len == 0)
        return error_set(err, -EBADMSG, "invalid JSON: the body is empty");
    if (memchr(buf, '\0', len))
        return error_set(err, -EBADMSG, "invalid JSON: the body contains a NUL byte");

    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!j) {
        size_t off = end && end >= buf && end <= buf + len ? (size_t) (end - buf) : 0;
        offset_to_position(buf, off, &line, &col);
        return error_set(err, -EBADMSG, "invalid JSON at line %u, column %u", line, col);
    }
    size_t off = (size_t) (end - buf);
    while (off < len && strchr(" \t\r\n", buf[off]))
        off++;
    if (off < len) {
        cJSON_Delete(j);
        offset_to_position(buf, off, &line, &col);
        return error_set(err, -EBADMSG,
                         "invalid JSON at line %u, column %u: unexpected data after the document",
                         line, col);
    }
    int r = check_duplicates(j, err);
    if (r < 0) {
        cJSON_Delete(j);
        return r;
    }
    *ret = j;
    return 0;
}
