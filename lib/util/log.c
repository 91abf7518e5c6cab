/* log: see log.h. */
#include "log.h"
#include "timeutil.h"

#include <stdatomic.h>

static const char *const log_level_table[_LOG_LEVEL_MAX] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};
DEFINE_STRING_TABLE_LOOKUP(log_level, enum log_level, log_level_table)

static atomic_int current_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level l)
{
    atomic_store(&current_level, (int) l);
}

enum log_level log_get_level(void)
{
    return (enum log_level) atomic_load(&current_level);
}

static void log_vwrite(int fd, enum log_level l, const char *fmt, va_list ap)
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
    line[len++] = '\n';
    (void) loop_write(fd, line, len);
}

void log_msg(enum log_level l, const char *fmt, ...)
{
    if ((int) l > atomic_load(&current_level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(STDERR_FILENO, l, fmt, ap);
    va_end(ap);
}

void log_to(int fd, enum log_level l, const char *fmt, ...)
{
    if (fd < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(fd, l, fmt, ap);
    va_end(ap);
}
