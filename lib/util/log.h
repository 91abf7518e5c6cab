/*
 * log: one line per event on stderr, "<RFC 3339 time> <level> <message>".
 * Thread-safe (each line is written with a single write()). Library code
 * does not log the errors it returns; the edge that handles them does.
 *
 * Under journald (stderr is the stream JOURNAL_STREAM names: a service's
 * stderr with StandardError=journal, the default), each event is instead
 * one journal entry through the native protocol, with structured fields:
 * MESSAGE, PRIORITY (syslog's: 3 error, 4 warning, 6 info, 7 debug),
 * SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE, CODE_FUNC, and the task's
 * TASK_ID and PRINCIPAL where they are known: from the thread's log
 * context (LOG_CONTEXT_TASK), else TASK_ID from a message that starts
 * "task <id>", the convention of every task's line. `journalctl
 * TASK_ID=...` then finds every line of one task. An entry the journal
 * refuses is written as a plain line instead.
 */
#pragma once

#include "util.h"

enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
    _LOG_LEVEL_MAX,
    _LOG_LEVEL_INVALID = -EINVAL,
};

const char *log_level_to_string(enum log_level l);
enum log_level log_level_from_string(const char *s);

void log_set_level(enum log_level l);
enum log_level log_get_level(void);
/* An event at level l, from file:line in func (the macros below fill them in). */
void log_full(enum log_level l, const char *file, int line, const char *func, const char *fmt, ...)
    _printf_(5, 6);
#define log_msg(l, ...) log_full(l, __FILE__, __LINE__, __func__, __VA_ARGS__)
/* The same line format to another file (a task's own log), whatever the
 * level; to STDERR_FILENO it is an event as log_msg's (the journal's
 * when stderr is the journal). */
void log_to(int fd, enum log_level l, const char *fmt, ...) _printf_(3, 4);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_LEVEL_DEBUG)                                                    \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

/*
 * The task a thread works for, as journal fields of its events until the
 * scope ends (the earlier context comes back then): copies, so the
 * strings may go before the scope does. NULL or "" for a field leaves it
 * out. Plain lines are not changed by it.
 *
 *     LOG_CONTEXT_TASK(t->id, principal->name);
 */
struct log_context {
    char task_id[40];
    char principal[128];
};
struct log_context log_context_swap(const char *task_id, const char *principal);
void log_context_restore(struct log_context *saved);
#define LOG_CONTEXT_TASK(id, principal)     LOG_CONTEXT_TASK_(id, principal, __COUNTER__)
#define LOG_CONTEXT_TASK_(id, principal, n) LOG_CONTEXT_TASK__(id, principal, n)
#define LOG_CONTEXT_TASK__(id, principal, n)                                                       \
    _cleanup_(log_context_restore) _unused_ struct log_context log_context_saved_##n =             \
        log_context_swap(id, principal)

/* Whether events go to the journal (decided at the first event: stderr is
 * the journal's stream, and the daemon is built with libsystemd). */
bool log_to_journal(void);

/* The journal fields of one event, "NAME=value" each, in *ret (the
 * caller frees each and the array, strv_free). Exposed for the unit test. */
char **log_journal_fields(enum log_level l, const char *file, int line, const char *func,
                          const char *message);
