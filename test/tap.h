/*
 * tap: a tiny TAP producer for the unit tests (meson runs them with
 * protocol 'tap'). ok() records one assertion; tap_done() prints the plan
 * and returns the process exit code. skip() records an assertion that was
 * not made ("ok N # SKIP why", counted as skipped, never as a pass);
 * tap_skip_all() exits 77 (the whole program skipped).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_count, tap_failures;

__attribute__((format(printf, 4, 5), unused)) static bool tap_ok(bool cond, const char *file,
                                                                 int line, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    tap_count++;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* One line per assertion: a description that quotes multi-line input or
     * output would otherwise break the TAP stream. */
    printf("%s %d - ", cond ? "ok" : "not ok", tap_count);
    for (const char *p = buf; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if ((unsigned char) *p < 0x20)
            printf("\\x%02x", (unsigned char) *p);
        else
            putchar(*p);
    }
    printf("\n");
    if (!cond) {
        tap_failures++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define diag(...)                                                                                  \
    do {                                                                                           \
        printf("# ");                                                                              \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

__attribute__((format(printf, 1, 2), unused)) static void skip(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if ((unsigned char) *p < 0x20)
            *p = ' ';
    printf("ok %d # SKIP %s\n", ++tap_count, buf);
    fflush(stdout);
}

__attribute__((unused)) static int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failures ? 1 : 0;
}

__attribute__((unused, noreturn)) static void tap_skip_all(const char *why)
{
    printf("1..0 # SKIP %s\n", why);
    exit(77);
}
