/*
 * tes-log: <task_dir>/tes-log.json, what a TES task did at run time that
 * the store does not hold (tes.h says why it is a file, as exit.json
 * is). The docker runner writes it (tes_task_log_write) each time it has
 * something new to say - an executor ended, outputs were copied, a system
 * log line - and the TES handlers read it (tes_task_log_read) for the
 * BASIC and FULL views.
 *
 * The format is the spec's tesTaskLog in the FULL view, so that one
 * writer (tes_task_log_to_cjson) makes both the file and the replies:
 *
 *   {"logs": [{"start_time": RFC3339, "end_time": RFC3339,
 *              "stdout": tail, "stderr": tail, "exit_code": int}, ...],
 *    "metadata": {string: string},
 *    "start_time": RFC3339, "end_time": RFC3339,
 *    "outputs": [{"url": s, "path": s, "size_bytes": "decimal"}, ...],
 *    "system_logs": [string, ...]}
 *
 * "logs" and "outputs" are required (possibly empty); everything else is
 * optional. The reader refuses a file that does not have that shape
 * (-EBADMSG) rather than guessing, and caps what it reads.
 */
#include "layout.h"
#include "tes.h"
#include "util/json.h"

#include <ctype.h>
#include <inttypes.h>
#include <unistd.h>

static int time_field(const cJSON *o, const char *key, usec_t *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *ret = 0;
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || parse_rfc3339(v->valuestring, ret) < 0)
        return -EBADMSG;
    return 0;
}

static int str_field(const cJSON *o, const char *key, bool required, char **ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *ret = NULL;
    if (!v)
        return required ? -EBADMSG : 0;
    if (!cJSON_IsString(v))
        return -EBADMSG;
    *ret = xstrdup(v->valuestring);
    return 0;
}

static int executor_log_from_cjson(const cJSON *o, struct tes_executor_log *ret)
{
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(o, "exit_code");
    if (!cJSON_IsObject(o) || !cJSON_IsNumber(ec) || ec->valuedouble != (double) ec->valueint)
        return -EBADMSG;
    ret->exit_code = ec->valueint;
    if (time_field(o, "start_time", &ret->start) < 0 || time_field(o, "end_time", &ret->end) < 0 ||
        str_field(o, "stdout", false, &ret->stdout_tail) < 0 ||
        str_field(o, "stderr", false, &ret->stderr_tail) < 0)
        return -EBADMSG;
    /* The writer says "" for no output (FULL requires the fields). */
    char **tails[] = {&ret->stdout_tail, &ret->stderr_tail};
    for (size_t i = 0; i < ELEMENTSOF(tails); i++)
        if (*tails[i] && !**tails[i]) {
            free(*tails[i]);
            *tails[i] = NULL;
        }
    return 0;
}

static int output_log_from_cjson(const cJSON *o, struct tes_output_log *ret)
{
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "size_bytes");
    char *end;
    if (!cJSON_IsObject(o) || !cJSON_IsString(sz) || !isdigit((unsigned char) *sz->valuestring))
        return -EBADMSG;
    errno = 0;
    ret->size_bytes = strtoull(sz->valuestring, &end, 10);
    if (errno || *end)
        return -EBADMSG;
    if (str_field(o, "url", true, &ret->url) < 0 || str_field(o, "path", true, &ret->path) < 0)
        return -EBADMSG;
    return 0;
}

static int task_log_from_cjson(const cJSON *j, struct tes_task_log *l)
{
    const cJSON *logs = cJSON_GetObjectItemCaseSensitive(j, "logs");
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(j, "outputs");
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(j, "system_logs");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const cJSON *e;

    if (!cJSON_IsObject(j) || !cJSON_IsArray(logs) || !cJSON_IsArray(outputs) ||
        (sys && !cJSON_IsArray(sys)) || (meta && !cJSON_IsObject(meta)))
        return -EBADMSG;
    if (time_field(j, "start_time", &l->start) < 0 || time_field(j, "end_time", &l->end) < 0)
        return -EBADMSG;

    /* Each array is allocated whole first so that tes_task_log_done() frees
     * what a half-read one holds. */
    l->logs = xcalloc((size_t) cJSON_GetArraySize(logs) + 1, sizeof(*l->logs));
    cJSON_ArrayForEach(e, logs)
    {
        if (executor_log_from_cjson(e, &l->logs[l->n_logs++]) < 0)
            return -EBADMSG;
    }
    l->outputs = xcalloc((size_t) cJSON_GetArraySize(outputs) + 1, sizeof(*l->outputs));
    cJSON_ArrayForEach(e, outputs)
    {
        if (output_log_from_cjson(e, &l->outputs[l->n_outputs++]) < 0)
            return -EBADMSG;
    }
    cJSON_ArrayForEach(e, sys)
    {
        if (!cJSON_IsString(e))
            return -EBADMSG;
        strv_push(&l->system_logs, e->valuestring);
    }
    if (meta) {
        l->metadata = xcalloc((size_t) cJSON_GetArraySize(meta) + 1, sizeof(*l->metadata));
        cJSON_ArrayForEach(e, meta)
        {
            if (!cJSON_IsString(e))
                return -EBADMSG;
            l->metadata[l->n_metadata++] =
                (struct task_kv){xstrdup(e->string), xstrdup(e->valuestring)};
        }
    }
    return 0;
}

int tes_task_log_parse(const char *buf, struct tes_task_log *ret)
{
    struct tes_task_log l = {};
    cJSON *j = cJSON_Parse(buf);
    if (!j)
        return -EBADMSG;
    int r = task_log_from_cjson(j, &l);
    cJSON_Delete(j);
    if (r < 0) {
        tes_task_log_done(&l);
        return r;
    }
    *ret = l;
    return 0;
}

int tes_task_log_read(const char *task_dir, struct tes_task_log *ret)
{
    _cleanup_free_ char *path = layout_in_task_dir(task_dir, LAYOUT_TES_LOG);
    _cleanup_free_ char *data = NULL;
    int r = read_file(path, TES_LOG_MAX, &data, NULL);
    if (r < 0)
        return r;
    return tes_task_log_parse(data, ret);
}

int tes_task_log_write(const char *task_dir, const struct tes_task_log *l, bool sync)
{
    _cleanup_free_ char *path = layout_in_task_dir(task_dir, LAYOUT_TES_LOG);
    cJSON *j = tes_task_log_to_cjson(l, TES_VIEW_FULL);
    _cleanup_free_ char *data = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (strlen(data) > TES_LOG_MAX)
        return -EFBIG;
    return sync ? write_file_atomic(path, data, strlen(data), 0600)
                : write_file_replace(path, data, strlen(data), 0600);
}

/* Bytes that are not UTF-8 become '?': the tail goes into JSON. */
static void utf8_scrub(char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char) s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool good = len > 0 && i + len <= n;
        for (size_t k = 1; good && k < len; k++)
            good = ((unsigned char) s[i + k] >> 6) == 2;
        if (c == 0)
            good = false;
        if (!good) {
            s[i++] = '?';
            continue;
        }
        i += len;
    }
}

char *tes_log_tail(int rfd, off_t from, off_t to)
{
    if (rfd < 0 || to <= from)
        return NULL;
    off_t start = to - from > (off_t) TES_LOG_TAIL ? to - (off_t) TES_LOG_TAIL : from;
    size_t n = (size_t) (to - start);
    char *buf = xmalloc(n + 1);
    ssize_t k = pread(rfd, buf, n, start);
    if (k <= 0) {
        free(buf);
        return NULL;
    }
    size_t skip = 0;
    /* Not from the middle of a character. */
    while (start > from && skip < (size_t) k && ((unsigned char) buf[skip] >> 6) == 2)
        skip++;
    memmove(buf, buf + skip, (size_t) k - skip);
    buf[(size_t) k - skip] = '\0';
    utf8_scrub(buf, (size_t) k - skip);
    return buf;
}
