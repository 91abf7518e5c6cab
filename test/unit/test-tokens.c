/* Unit tests: bearer tokens (tokens.h) - their text, the hash and its
 * constant-time compare, and the table on a real store file: create,
 * check, revoke, expire, a change made by another connection seen at
 * once, the change counter that tells the daemon so, and the first
 * start's admin token file. */
#include "store.h"
#include "tap.h"
#include "tokens.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <sys/stat.h>

static void test_text(void)
{
    char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1], id[TOKEN_ID_LEN + 1];
    token_generate(a);
    token_generate(b);
    ok(strlen(a) == TOKEN_LEN && startswith(a, "ocps_"), "a token is ocps_ and %zu characters: %s",
       (size_t) TOKEN_LEN, a);
    ok(token_parse(a, id) == 0 && strncmp(a + 5, id, TOKEN_ID_LEN) == 0 && token_id_valid(id),
       "its id is the 12 hex digits after the prefix: %s", id);
    ok(strcmp(a, b) != 0 && strncmp(a + 5, b + 5, TOKEN_ID_LEN) != 0,
       "two tokens differ, ids and all");

    static const char *const bad[] = {
        "",
        "ocps_",
        "Bearer ocps_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "ocps_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "ocps_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
        "ocps_0123456789AB_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "ocps_0123456789ab-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "ocpz_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "ocps_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "ocps_0123456789a_g0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++)
        ok(token_parse(bad[i], id) == -EINVAL, "not a token: \"%s\"", bad[i]);
    ok(!token_id_valid("0123456789a") && !token_id_valid("0123456789abc") &&
           !token_id_valid("0123456789aB"),
       "an id is exactly 12 lowercase hex digits");
}

static void test_hash(void)
{
    /* FIPS 180-2's example: the hash is SHA-256 itself. */
    static const uint8_t abc[TOKEN_HASH_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
    };
    uint8_t h[TOKEN_HASH_LEN], other[TOKEN_HASH_LEN];
    token_hash("abc", h);
    ok(memcmp(h, abc, TOKEN_HASH_LEN) == 0, "token_hash(\"abc\") is SHA-256's test vector");

    ok(token_hash_equal(h, abc), "equal hashes compare equal");
    for (size_t pos = 0; pos < TOKEN_HASH_LEN; pos += TOKEN_HASH_LEN - 1) {
        memcpy(other, h, TOKEN_HASH_LEN);
        other[pos] ^= 0x01;
        ok(!token_hash_equal(h, other), "a hash with one bit changed in byte %zu differs", pos);
    }
    memset(other, 0, sizeof(other));
    ok(!token_hash_equal(h, other), "a hash of zeros differs");
    memset(other, 0xff, sizeof(other));
    for (size_t i = 0; i < TOKEN_HASH_LEN; i++)
        other[i] = (uint8_t) ~h[i];
    ok(!token_hash_equal(h, other), "a hash with every bit changed differs");
    ok(error_http_status(-ENOKEY) == 401, "ENOKEY is 401");
}

static char *tmp_dir(void)
{
    char *d = xstrdup("/tmp/ocps-test-tokens-XXXXXX");
    if (!mkdtemp(d))
        abort();
    return d;
}

/* check()'s error message, or "" on success; the principal in *name. */
static int check(struct tokens *t, const char *text, usec_t now, char **name, bool *admin,
                 struct error *err)
{
    error_clear(err);
    free(*name);
    *name = NULL;
    return tokens_check(t, text, now, name, admin, err);
}

struct listed {
    int n, revoked, admins, expiring;
};

static int list_cb(const struct token_info *info, void *userdata)
{
    struct listed *l = userdata;
    l->n++;
    l->revoked += info->revoked != 0;
    l->admins += info->admin;
    l->expiring += info->expires != 0;
    return 0;
}

static void test_table(void)
{
    _cleanup_free_ char *dir = tmp_dir();
    _cleanup_free_ char *db = xasprintf("%s/ocps-proxy.db", dir);
    _cleanup_error_ struct error err = ERROR_INIT;
    int q = store_create(db, &err);
    ok(q == 0, "store_create makes a store: %s", error_message(&err));
    /* Two connections, as the daemon and `ocps-proxyd token` have. */
    struct tokens *daemon = NULL, *tool = NULL;
    _cleanup_free_ char *seq = xasprintf("%s/tokens.seq", dir);
    q = tokens_open(db, seq, &daemon, &err);
    if (q == 0)
        q = tokens_open(db, seq, &tool, &err);
    ok(q == 0, "two openers of the token table: %s", error_message(&err));
    if (!daemon || !tool)
        return;

    char *name = NULL;
    bool admin = true;
    char junk[TOKEN_LEN + 1];
    token_generate(junk);
    ok(check(daemon, junk, now_realtime(), &name, &admin, &err) == -ENOKEY,
       "an unknown token is ENOKEY on an empty table");
    _cleanup_free_ char *unknown_msg = xstrdup(error_message(&err));

    /* Each call first, then its assertion: an error's words are freed by the next call. */
    char bob[TOKEN_LEN + 1];
    error_clear(&err);
    int r = tokens_create(tool, "bob@ci", false, 0, bob, &err);
    ok(r == 0, "create for bob@ci: %s", error_message(&err));
    r = check(daemon, bob, now_realtime(), &name, &admin, &err);
    ok(r == 0 && streq_ptr(name, "bob@ci") && !admin,
       "the other connection's new token is good at once: principal %s, not an admin: %s", name,
       error_message(&err));

    /* Same id, another secret: the hash decides. */
    char forged[TOKEN_LEN + 1];
    memcpy(forged, bob, sizeof(forged));
    forged[TOKEN_LEN - 1] = forged[TOKEN_LEN - 1] == 'a' ? 'b' : 'a';
    r = check(daemon, forged, now_realtime(), &name, &admin, &err);
    ok(r == -ENOKEY, "the right id with a wrong secret is ENOKEY");
    ok(streq(error_message(&err), unknown_msg), "in the same words as an unknown token: %s",
       error_message(&err));
    ok(check(daemon, "ocps_nonsense", now_realtime(), &name, &admin, &err) == -ENOKEY &&
           streq(error_message(&err), unknown_msg),
       "a malformed token too");

    char ops[TOKEN_LEN + 1];
    ok(tokens_create(tool, "ops", true, 0, ops, &err) == 0 &&
           check(daemon, ops, now_realtime(), &name, &admin, &err) == 0 && admin,
       "an admin token makes its principal an admin");

    /* Expiry is checked at each request, against the time given. */
    usec_t soon = now_realtime() + 60 * USEC_PER_SEC;
    char brief[TOKEN_LEN + 1];
    ok(tokens_create(tool, "brief", false, soon, brief, &err) == 0, "create one that expires");
    ok(check(daemon, brief, soon - 1, &name, &admin, &err) == 0, "good until its expiry");
    r = check(daemon, brief, soon, &name, &admin, &err);
    ok(r == -ENOKEY && strstr(error_message(&err), "expired"),
       "refused from its expiry on, saying so to its holder: %s", error_message(&err));
    ok(check(daemon, bob, soon + 1, &name, &admin, &err) == 0, "a token without expiry stays");

    /* Revoking, by the other connection, counts at the daemon's next check. */
    char id[TOKEN_ID_LEN + 1];
    (void) token_parse(bob, id);
    r = tokens_revoke(tool, id, &err);
    ok(r == 0, "revoke bob's: %s", error_message(&err));
    ok(check(daemon, bob, now_realtime(), &name, &admin, &err) == -ENOKEY &&
           streq(error_message(&err), unknown_msg),
       "a revoked token is refused at once, as an unknown one");
    ok(tokens_revoke(tool, id, &err) == 1, "revoking it again says it was revoked already");
    ok(tokens_revoke(tool, "000000000000", &err) == -ENOENT, "revoking no token is ENOENT");
    ok(check(daemon, ops, now_realtime(), &name, &admin, &err) == 0, "others stay good");

    /* A revoke through the daemon's own connection counts for it too. */
    (void) token_parse(ops, id);
    ok(tokens_revoke(daemon, id, &err) == 0 &&
           check(daemon, ops, now_realtime(), &name, &admin, &err) == -ENOKEY,
       "a revoke through the same connection counts at once");

    r = tokens_create(tool, "no such name!", false, 0, junk, &err);
    ok(r == -EINVAL && strstr(error_message(&err), "principal"),
       "a principal's name is checked: %s", error_message(&err));

    struct listed l = {0};
    r = tokens_list(tool, list_cb, &l, &err);
    ok(r == 0 && l.n == 3 && l.revoked == 2 && l.admins == 1 && l.expiring == 1,
       "list: 3 tokens, 2 revoked, 1 admin, 1 with an expiry (%d, %d, %d, %d)", l.n, l.revoked,
       l.admins, l.expiring);
    free(name);
    tokens_close(daemon);
    tokens_close(tool);
    _cleanup_free_ char *rm = xasprintf("rm -rf %s", dir);
    (void) system(rm);
}

static void test_first(void)
{
    _cleanup_free_ char *dir = tmp_dir();
    _cleanup_free_ char *db = xasprintf("%s/ocps-proxy.db", dir);
    _cleanup_free_ char *file = xasprintf("%s/admin.token", dir);
    _cleanup_error_ struct error err = ERROR_INIT;
    _cleanup_free_ char *seq = xasprintf("%s/tokens.seq", dir);
    struct tokens *t = NULL;
    int q = store_create(db, &err);
    if (q == 0)
        q = tokens_open(db, seq, &t, &err);
    if (!ok(q == 0, "a store: %s", error_message(&err)))
        return;
    bool created = false;
    int r = tokens_create_first(t, file, &created, &err);
    ok(r == 0 && created, "the first start makes an admin token: %s", error_message(&err));
    struct stat st1, st2;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (stat(file, &st1) < 0)
        memset(&st1, 0, sizeof(st1));
    ok(S_ISREG(st1.st_mode) && (st1.st_mode & 0777) == 0600,
       "its file is a regular file of mode 0600 (%o)", st1.st_mode & 0777);
    ok(read_file(file, 4096, &text, &len) == 0 && len == TOKEN_LEN + 1 && text[TOKEN_LEN] == '\n',
       "it holds the token and a newline");
    if (text)
        text[TOKEN_LEN] = '\0';
    char *name = NULL;
    bool admin = false;
    r = text ? check(t, text, now_realtime(), &name, &admin, &err) : -EIO;
    ok(r == 0 && streq_ptr(name, TOKEN_ADMIN_PRINCIPAL) && admin,
       "the token is principal admin's, an admin: %s", error_message(&err));

    /* Revoked or not, a table with a row gets no other admin token. */
    char id[TOKEN_ID_LEN + 1];
    if (text)
        (void) token_parse(text, id);
    ok(text && tokens_revoke(t, id, &err) == 0, "revoke it");
    ok(tokens_create_first(t, file, &created, &err) == 0 && !created, "the next start makes none");
    ok(stat(file, &st2) == 0 && st2.st_ino == st1.st_ino &&
           st2.st_mtim.tv_nsec == st1.st_mtim.tv_nsec && st2.st_mtim.tv_sec == st1.st_mtim.tv_sec,
       "and leaves the file alone");
    free(name);
    tokens_close(t);
    _cleanup_free_ char *rm = xasprintf("rm -rf %s", dir);
    (void) system(rm);
}

/* The counter in the file itself, as another process sees it. */
static uint64_t seq_read(const char *path)
{
    uint64_t v = UINT64_MAX;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || pread(fd, &v, sizeof(v), 0) != (ssize_t) sizeof(v))
        return UINT64_MAX;
    return v;
}

static void test_seq(void)
{
    _cleanup_free_ char *dir = tmp_dir();
    _cleanup_free_ char *db = xasprintf("%s/ocps-proxy.db", dir);
    _cleanup_free_ char *seq = xasprintf("%s/tokens.seq", dir);
    _cleanup_free_ char *link = xasprintf("%s/link.seq", dir);
    _cleanup_error_ struct error err = ERROR_INIT;
    struct tokens *daemon = NULL, *tool = NULL;
    int q = store_create(db, &err);
    if (q == 0)
        q = tokens_open(db, seq, &daemon, &err);
    if (q == 0)
        q = tokens_open(db, seq, &tool, &err);
    if (!ok(q == 0, "two openers: %s", error_message(&err)))
        goto out;
    struct stat st;
    ok(lstat(seq, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600 &&
           st.st_size == sizeof(uint64_t),
       "the counter is a file of 8 bytes, mode 0600 (%o)", (unsigned) st.st_mode & 07777);
    ok(seq_read(seq) == 0, "it starts at zero");

    char text[TOKEN_LEN + 1], id[TOKEN_ID_LEN + 1];
    ok(tokens_create(tool, "carol", false, 0, text, &err) == 0 && seq_read(seq) == 1,
       "a create counts it up once it is committed: %" PRIu64, seq_read(seq));
    (void) token_parse(text, id);
    char *name = NULL;
    bool admin = false;
    ok(check(daemon, text, now_realtime(), &name, &admin, &err) == 0, "the daemon sees the token");

    /* Another writer (a process of another release, say) that commits and
     * counts up: the daemon's next check sees what it did. */
    sqlite3 *raw = NULL;
    q = sqlite3_open(db, &raw);
    if (q == SQLITE_OK)
        q = sqlite3_exec(raw, "UPDATE tokens SET revoked = 1", NULL, NULL, NULL);
    sqlite3_close(raw);
    ok(q == SQLITE_OK, "revoke by hand, in another connection");
    ok(check(daemon, text, now_realtime(), &name, &admin, &err) == 0,
       "without the counter moved, the daemon keeps what it read (no read of the table)");
    uint64_t next = seq_read(seq) + 1;
    _cleanup_close_ int fd = open(seq, O_WRONLY | O_CLOEXEC);
    ok(fd >= 0 && pwrite(fd, &next, sizeof(next), 0) == (ssize_t) sizeof(next),
       "count it up through the file");
    ok(check(daemon, text, now_realtime(), &name, &admin, &err) == -ENOKEY,
       "then the next check reads the table again: refused");

    ok(tokens_revoke(tool, id, &err) == 1 && seq_read(seq) == next,
       "a revoke that changes nothing leaves the counter");

    ok(symlink(seq, link) == 0, "a symlink to the counter");
    struct tokens *other = NULL;
    error_clear(&err);
    q = tokens_open(db, link, &other, &err);
    ok(q == -ELOOP && strstr(error_message(&err), link), "is refused: %s", error_message(&err));
    tokens_close(other);
    free(name);
out:
    tokens_close(daemon);
    tokens_close(tool);
    _cleanup_free_ char *rm = xasprintf("rm -rf %s", dir);
    (void) system(rm);
}

int main(void)
{
    test_text();
    test_hash();
    test_table();
    test_first();
    test_seq();
    return tap_done();
}
