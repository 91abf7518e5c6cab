/* log: see log.h. */
#include "log.h"
#include "systemd.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdatomic.h>

static const char *const log_level_table[_LOG_LEVEL_MAX] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};
DEFINE_STRING_TABLE_LOOKUP(log_level, enum log_level, log_level_table)

/* syslog's priorities (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG). */
static const int log_priority[_LOG_LEVEL_MAX] = {
    [LOG_LEVEL_ERROR] = 3,
    [LOG_LEVEL_WARN] = 4,
    [LOG_LEVEL_INFO] = 6,
    [LOG_LEVEL_DEBUG] = 7,
};

static atomic_int current_level = LOG_LEVEL_INFO;
static _Thread_local struct log_context context;

void log_set_level(enum log_level l)
{
    atomic_store(&current_level, (int) l);
}

enum log_level log_get_level(void)
{
    return (enum log_level) atomic_load(&current_level);
}

static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool journal;

static void journal_decide(void)
{
    journal = systemd_stderr_is_journal();
}

bool log_to_journal(void)
{
    pthread_once(&journal_once, journal_decide);
    return journal;
}

struct log_context log_context_swap(const char *task_id, const char *principal)
{
    struct log_context saved = context;
    snprintf(context.task_id, sizeof(context.task_id), "%s", task_id ? task_id : "");
    snprintf(context.principal, sizeof(context.principal), "%s", principal ? principal : "");
    return saved;
}

void log_context_restore(struct log_context *saved)
{
    context = *saved;
}

/* The id of a message that starts "task <id>" (36 characters of a UUID), in ret. */
static bool message_task_id(const char *m, char ret[static 37])
{
    if (!startswith(m, "task "))
        return false;
    m += STRLEN("task ");
    size_t n = strspn(m, "0123456789abcdefABCDEF-");
    if (n != 36)
        return false;
    memcpy(ret, m, 36);
    ret[36] = '\0';
    return true;
}

char **log_journal_fields(enum log_level l, const char *file, int line, const char *func,
                          const char *message)
{
    char **v = NULL;
    _cleanup_free_ char *msg = xasprintf("MESSAGE=%s", message);
    strv_push(&v, msg);
    _cleanup_free_ char *prio = xasprintf("PRIORITY=%d", log_priority[l]);
    strv_push(&v, prio);
    _cleanup_free_ char *ident = xasprintf("SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
    strv_push(&v, ident);
    if (file) {
        /* __FILE__ is relative to the build dir: the source tree's path. */
        while (startswith(file, "../"))
            file += 3;
        _cleanup_free_ char *f = xasprintf("CODE_FILE=%s", file);
        _cleanup_free_ char *n = xasprintf("CODE_LINE=%d", line);
        _cleanup_free_ char *fn = xasprintf("CODE_FUNC=%s", func);
        strv_push(&v, f);
        strv_push(&v, n);
        strv_push(&v, fn);
    }
    char id[37];
    const char *task_id = context.task_id[0]             ? context.task_id
                          : message_task_id(message, id) ? id
                                                         : NULL;
    if (task_id) {
        _cleanup_free_ char *t = xasprintf("TASK_ID=%s", task_id);
        strv_push(&v, t);
    }
    if (context.principal[0]) {
        _cleanup_free_ char *p = xasprintf("PRINCIPAL=%s", context.principal);
        strv_push(&v, p);
    }
    return v;
}

/* One entry in the journal; false if it refused it. */
static bool journal_write(enum log_level l, const char *file, int line, const char *func,
                          const char *message)
{
    _cleanup_strv_ char **fields = log_journal_fields(l, file, line, func, message);
    struct iovec iov[16];
    size_t n = 0;
    STRV_FOREACH (f, fields)
        if (n < ELEMENTSOF(iov))
            iov[n++] = (struct iovec){*f, strlen(*f)};
    return systemd_journal_sendv(iov, n) >= 0;
}

static void log_vwrite(int fd, enum log_level l, const char *file, int code_line, const char *func,
                       const char *fmt, va_list ap)
{
    char ts[32], line[2048];
    format_rfc3339(now_realtime(), ts);
    int n = snprintf(line, sizeof(line), "%s %-5s ", ts, log_level_to_string(l));
    int m = vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
    size_t len = (size_t) n + (size_t) MAX(m, 0);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* One event, one line: a message never spans lines in the log. */
    for (size_t i = (size_t) n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    if (fd == STDERR_FILENO && log_to_journal()) {
        /* The journal stamps the entry itself; the message alone. */
        line[len] = '\0';
        if (journal_write(l, file, code_line, func, line + n))
            return;
    }
    line[len++] = '\n';
    (void) loop_write(fd, line, len);
}

void log_full(enum log_level l, const char *file, int line, const char *func, const char *fmt, ...)
{
    if ((int) l > atomic_load(&current_level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(STDERR_FILENO, l, file, line, func, fmt, ap);
    va_end(ap);
}

void log_to(int fd, enum log_level l, const char *fmt, ...)
{
    if (fd < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(fd, l, NULL, 0, NULL, fmt, ap);
    va_end(ap);
}
