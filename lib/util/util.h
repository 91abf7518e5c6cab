/*
 * util: the small helpers every module uses.
 *
 * Out-of-memory policy: the x* allocators abort the process on failure
 * (crun and bubblewrap do the same). A daemon of this size has no useful
 * way to carry on without memory, and checking every allocation would
 * hide the real error paths. Nothing else in the tree calls malloc()
 * without going through these.
 *
 * Cleanup attributes: declare a variable with _cleanup_free_,
 * _cleanup_close_, _cleanup_fclose_, _cleanup_cjson_, _cleanup_strv_ or
 * _cleanup_(type_freep) and it is released when it goes out of scope.
 * Hand ownership on with TAKE_PTR() / TAKE_FD().
 */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _noreturn_     __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_  __attribute__((warn_unused_result))
#define ELEMENTSOF(x)  (sizeof(x) / sizeof((x)[0]))
#define STRLEN(s)      (sizeof(s) - 1)
#define MIN(a, b)      ((a) < (b) ? (a) : (b))
#define MAX(a, b)      ((a) > (b) ? (a) : (b))

/* Hand over ownership: returns the value and leaves NULL / -1 behind. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _take_tmp = (p);                                                             \
        (p) = NULL;                                                                                \
        _take_tmp;                                                                                 \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _take_fd = (fd);                                                                       \
        (fd) = -1;                                                                                 \
        _take_fd;                                                                                  \
    })

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows *p (an array of *n_alloc elements of 'size' bytes) so that it holds at least 'need'. */
void *xgrow(void *p, size_t *n_alloc, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xvasprintf(const char *fmt, va_list ap) _printf_(1, 0);

static inline void freep(void *p)
{
    free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        (void) close(*fd);
        errno = saved;
    }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
    if (*f)
        (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* NULL-terminated string vectors. */
char **strv_free(char **v);
static inline void strv_freep(char ***v)
{
    strv_free(*v);
}
#define _cleanup_strv_ _cleanup_(strv_freep)
size_t strv_length(char *const *v);
/* A deep copy; NULL stays NULL (an absent command is not an empty one). */
char **strv_copy(char *const *v);
/* Appends a copy of s; *v may be NULL. */
void strv_push(char ***v, const char *s);
bool strv_contains(char *const *v, const char *s);
#define STRV_FOREACH(s, v) for (char *const *s = (v); s && *s; s++)

static inline bool streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return streq(a, b);
}
static inline bool isempty(const char *s)
{
    return !s || !*s;
}
bool startswith(const char *s, const char *prefix);
bool strcaseeq(const char *a, const char *b);

/*
 * String tables for enums that cross the wire: one table, used by every
 * format and by the CLI. name_from_string() returns -EINVAL for unknown
 * strings, name_to_string() NULL for out-of-range values.
 */
#define DEFINE_STRING_TABLE_LOOKUP(name, type, table)                                              \
    const char *name##_to_string(type v)                                                           \
    {                                                                                              \
        if ((int) v < 0 || (size_t) v >= ELEMENTSOF(table))                                        \
            return NULL;                                                                           \
        return table[v];                                                                           \
    }                                                                                              \
    type name##_from_string(const char *s)                                                         \
    {                                                                                              \
        if (s)                                                                                     \
            for (size_t _i = 0; _i < ELEMENTSOF(table); _i++)                                      \
                if (table[_i] && strcaseeq(table[_i], s))                                          \
                    return (type) _i;                                                              \
        return (type) -EINVAL;                                                                     \
    }

/* Files. */
/* Reads a whole file (up to max bytes, -EFBIG beyond). *ret is NUL-terminated. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* The same from an open fd, from its current offset to the end. */
int read_fd(int fd, size_t max, char **ret, size_t *ret_len);
/* Writes data to path atomically (temp file + fsync + rename + fsync of the
 * directory: on disk, name included, when it returns) with the given mode. */
int write_file_atomic(const char *path, const char *data, size_t len, unsigned mode);
/* The same without fsync: readers never see a partial file, but a machine crash may lose
 * it. For state that only has to outlive a process, not the machine. */
int write_file_replace(const char *path, const char *data, size_t len, unsigned mode);
/* fsyncs an existing file and then its directory: on disk, name included. */
int fsync_path(const char *path);
/* Writes a short string to an existing file (cgroup and proc files); -errno on failure. */
int write_string_file(const char *path, const char *s);
/* mkdir -p with mode for every created component. */
int mkdir_p(const char *path, unsigned mode);
/* rm -rf that does not cross mount points and does not follow symlinks. */
int rm_rf(const char *path);
/* Writes all of buf, retrying on EINTR and short writes. */
int loop_write(int fd, const void *buf, size_t len);

/* Random identifiers: a UUID v4 string (36 chars + NUL) from getrandom(). */
void uuid_v4(char ret[37]);
