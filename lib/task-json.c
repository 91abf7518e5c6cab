/*
 * task-json: JSON documents to cJSON trees for the validator.
 *
 * cJSON accepts things a strict reader should not: trailing garbage after
 * the document, duplicate keys (of which it keeps the first), bytes that
 * are not UTF-8, and "\u0000" in a string, which it decodes into a C
 * string that ends there ("a\u0000b" is "a"). All are refused here, so
 * "memory" given twice cannot mean two things to two readers, and no
 * string is read shorter than it was sent. Errors carry the line and
 * column where parsing stopped.
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

/* The length of the UTF-8 sequence at s (at most n bytes), or 0 when it
 * is not one: overlong forms, UTF-16 surrogates and code points past
 * U+10FFFF are not (RFC 3629). */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the bounds of the second byte */
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        if (s[0] == 0xe0)
            lo = 0xa0;
        else if (s[0] == 0xed)
            hi = 0x9f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        if (s[0] == 0xf0)
            lo = 0x90;
        else if (s[0] == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

static bool is_nul_escape(const char *s, size_t n)
{
    return n >= 6 && s[1] == 'u' && memcmp(s + 2, "0000", 4) == 0;
}

/* Bytes that are not UTF-8, and a NUL written as an escape in a string:
 * -EBADMSG with where. */
static int check_text(const char *buf, size_t len, struct error *err)
{
    const unsigned char *s = (const unsigned char *) buf;
    bool in_string = false;
    unsigned line, col;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(s + i, len - i);
        if (n == 0) {
            offset_to_position(buf, i, &line, &col);
            return error_set(err, -EBADMSG,
                             "invalid JSON at line %u, column %u: byte 0x%02x is not UTF-8", line,
                             col, s[i]);
        }
        if (s[i] == '"')
            in_string = !in_string;
        else if (s[i] == '\\' && in_string) {
            if (is_nul_escape(buf + i, len - i)) {
                offset_to_position(buf, i, &line, &col);
                return error_set(err, -EBADMSG,
                                 "invalid JSON at line %u, column %u: a NUL character (\\u0000) "
                                 "in a string",
                                 line, col);
            }
            /* The escaped character is skipped: \" does not end the string. */
            if (i + 1 < len && s[i + 1] < 0x80)
                n = 2;
        }
        i += n;
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
    int r = check_text(buf, len, err);
    if (r < 0)
        return r;

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
    r = check_duplicates(j, err);
    if (r < 0) {
        cJSON_Delete(j);
        return r;
    }
    *ret = j;
    return 0;
}
