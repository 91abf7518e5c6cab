/* Unit tests: util (strings, files, uuid), error (HTTP mapping), time, hashmap. */
#include "tap.h"
#include "util/error.h"
#include "util/hashmap.h"
#include "util/timeutil.h"
#include "util/util.h"

#include <sys/stat.h>

static void test_strv(void)
{
    _cleanup_strv_ char **v = NULL;
    strv_push(&v, "a");
    strv_push(&v, "b");
    ok(strv_length(v) == 2, "strv_push appends");
    ok(strv_contains(v, "b") && !strv_contains(v, "c"), "strv_contains");
    _cleanup_strv_ char **c = strv_copy(v);
    ok(c != v && streq(c[1], "b") && !c[2], "strv_copy");
}

static void test_error(void)
{
    static const struct {
        int code;
        int status;
    } rows[] = {
        {-EINVAL, 400}, {-EBADMSG, 400}, {-EACCES, 403},      {-EPERM, 403},  {-ENOENT, 404},
        {-EEXIST, 409}, {-E2BIG, 413},   {-EMEDIUMTYPE, 415}, {-ENOSYS, 501}, {-EREMOTEIO, 502},
        {-ENOSPC, 503}, {-EROFS, 503},   {-EIO, 500},         {-ENOMEM, 500},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++)
        ok(error_http_status(rows[i].code) == rows[i].status, "errno %d -> %d", -rows[i].code,
           rows[i].status);

    _cleanup_error_ struct error err = ERROR_INIT;
    ok(error_set(&err, -ENOENT, "no %s", "x") == -ENOENT, "error_set returns the code");
    error_wrap(&err, "outer");
    ok(streq(error_message(&err), "outer: no x"), "error_wrap prefixes: %s", error_message(&err));
    error_set_errno(&err, -ENOENT, "open %s", "/y");
    ok(streq(error_message(&err), "open /y: No such file or directory"), "error_set_errno");
}

static void test_time(void)
{
    char buf[32];
    usec_t t = 1795430400123456; /* 2026-11-23T... */
    format_rfc3339(t, buf);
    usec_t back = 0;
    ok(parse_rfc3339(buf, &back) == 0 && back == t - t % 1000, "rfc3339 round trip: %s", buf);
    ok(parse_rfc3339("2026-01-02T03:04:05Z", &back) == 0 && back == 1767323045 * USEC_PER_SEC,
       "whole seconds");
    ok(parse_rfc3339("2026-01-02T04:04:05+01:00", &back) == 0 && back == 1767323045 * USEC_PER_SEC,
       "offsets");
    ok(parse_rfc3339("yesterday", &back) < 0, "garbage refused");
}

static void test_files(void)
{
    char dir[] = "/tmp/ocps-test-util-XXXXXX";
    ok(mkdtemp(dir) != NULL, "mkdtemp");
    _cleanup_free_ char *deep = xasprintf("%s/a/b/c", dir);
    ok(mkdir_p(deep, 0700) == 0, "mkdir_p");
    _cleanup_free_ char *f = xasprintf("%s/a/file", dir);
    ok(write_file_atomic(f, "hello", 5, 0600) == 0, "write_file_atomic");
    _cleanup_free_ char *text = NULL;
    size_t len;
    ok(read_file(f, 100, &text, &len) == 0 && len == 5 && streq(text, "hello"), "read_file");
    _cleanup_free_ char *t2 = NULL;
    ok(read_file(f, 3, &t2, &len) == -EFBIG, "read_file honours max");
    _cleanup_free_ char *link = xasprintf("%s/a/link", dir);
    ok(symlink("/etc", link) == 0, "symlink to outside");
    ok(rm_rf(dir) == 0, "rm_rf");
    struct stat st;
    ok(stat(dir, &st) < 0 && stat("/etc/passwd", &st) == 0, "rm_rf removed the tree, not /etc");
}

static void test_uuid(void)
{
    char a[37], b[37];
    uuid_v4(a);
    uuid_v4(b);
    ok(strlen(a) == 36 && a[14] == '4' && !streq(a, b), "uuid v4: %s", a);
}

static void test_hashmap(void)
{
    struct hashmap *m = hashmap_new();
    char keys[1000][8];
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        hashmap_put(m, keys[i], &keys[i]);
    }
    ok(hashmap_size(m) == 1000, "1000 entries");
    bool all = true;
    for (int i = 0; i < 1000; i++)
        all = all && hashmap_get(m, keys[i]) == &keys[i];
    ok(all, "every entry found after growing");
    ok(hashmap_remove(m, "k500") == &keys[500] && !hashmap_get(m, "k500"), "remove");
    ok(hashmap_size(m) == 999, "size after remove");
    ok(hashmap_put(m, "k1", &keys[2]) == &keys[1] && hashmap_get(m, "k1") == &keys[2] &&
           hashmap_size(m) == 999,
       "put of an existing key replaces and returns the old value");
    hashmap_put(m, keys[1], &keys[1]);

    /* Removals in a pseudo-random order, checking every survivor each
     * round: backward-shift deletion must never strand an entry. */
    bool present[1000];
    for (int i = 0; i < 1000; i++)
        present[i] = i != 500;
    unsigned x = 12345;
    bool consistent = true;
    for (int round = 0; round < 990; round++) {
        x = x * 1103515245 + 12345;
        int k = (int) ((x >> 8) % 1000);
        void *got = hashmap_remove(m, keys[k]);
        consistent = consistent && (got == (present[k] ? &keys[k] : NULL));
        present[k] = false;
        if (round % 50 == 0)
            for (int i = 0; i < 1000; i++)
                consistent =
                    consistent && hashmap_get(m, keys[i]) == (present[i] ? &keys[i] : NULL);
    }
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        n += present[i];
        consistent = consistent && hashmap_get(m, keys[i]) == (present[i] ? &keys[i] : NULL);
    }
    ok(consistent && hashmap_size(m) == n,
       "random removals keep every other entry findable (%zu left)", n);
    hashmap_free(m);
}

int main(void)
{
    test_strv();
    test_error();
    test_time();
    test_files();
    test_uuid();
    test_hashmap();
    return tap_done();
}
