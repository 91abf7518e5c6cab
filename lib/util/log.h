/*
 * log: one line per event on stderr, "<RFC 3339 time> <level> <message>".
 * Thread-safe (each line is written with a single write()). Library code
 * does not log the errors it returns; the edge that handles them does.
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
void log_msg(enum log_level l, const char *fmt, ...) _printf_(2, 3);
/* The same line format to another file (a task's own log), whatever the level. */
void log_to(int fd, enum log_level l, const char *fmt, ...) _printf_(3, 4);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_LEVEL_DEBUG)                                                    \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)
