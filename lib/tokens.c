/*
 * tokens: see tokens.h. The text of a token (generate, parse, hash,
 * compare), the table (create, list, revoke: `ocps-proxyd token` and the
 * first start), and the daemon's cache of it (tokens_check).
 */
#include "tokens.h"
#include "policy.h"
#include "util/hashmap.h"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

/* ---- the text ---- */

static void random_bytes(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(buf + got, n - got, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            /* No randomness (a kernel before 3.17): no token can be made safely. */
            abort();
        }
        got += (size_t) k;
    }
}

static char *hex(char *out, const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[b[i] >> 4];
        *out++ = digits[b[i] & 15];
    }
    return out;
}

void token_generate(char ret[static TOKEN_LEN + 1])
{
    uint8_t id[TOKEN_ID_LEN / 2], secret[TOKEN_SECRET_LEN / 2];
    random_bytes(id, sizeof(id));
    random_bytes(secret, sizeof(secret));
    char *p = stpcpy(ret, TOKEN_PREFIX);
    p = hex(p, id, sizeof(id));
    *p++ = '_';
    p = hex(p, secret, sizeof(secret));
    *p = '\0';
    explicit_bzero(secret, sizeof(secret));
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool token_id_valid(const char *id)
{
    return strlen(id) == TOKEN_ID_LEN && lower_hex(id, TOKEN_ID_LEN);
}

int token_parse(const char *text, char ret_id[static TOKEN_ID_LEN + 1])
{
    const size_t pre = STRLEN(TOKEN_PREFIX);
    if (strlen(text) != TOKEN_LEN || strncmp(text, TOKEN_PREFIX, pre) != 0 ||
        !lower_hex(text + pre, TOKEN_ID_LEN) || text[pre + TOKEN_ID_LEN] != '_' ||
        !lower_hex(text + pre + TOKEN_ID_LEN + 1, TOKEN_SECRET_LEN))
        return -EINVAL;
    memcpy(ret_id, text + pre, TOKEN_ID_LEN);
    ret_id[TOKEN_ID_LEN] = '\0';
    return 0;
}

void token_hash(const char *text, uint8_t ret[static TOKEN_HASH_LEN])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, strlen(text), (const uint8_t *) text);
    sha256_digest(&c, TOKEN_HASH_LEN, ret);
}

bool token_hash_equal(const uint8_t a[static TOKEN_HASH_LEN],
                      const uint8_t b[static TOKEN_HASH_LEN])
{
    /* Every byte is looked at, whatever the first difference; volatile, so
     * that the compiler does not turn the loop into an early exit. */
    volatile uint8_t d = 0;
    for (size_t i = 0; i < TOKEN_HASH_LEN; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* ---- the table ---- */

/* A row that is not revoked, as the daemon keeps it. */
struct entry {
    char id[TOKEN_ID_LEN + 1]; /* the map's key */
    uint8_t hash[TOKEN_HASH_LEN];
    char *principal;
    bool admin;
    usec_t expires;
};

struct tokens {
    pthread_mutex_t lock; /* the connection, the statements and the cache */
    sqlite3 *db;
    sqlite3_stmt *generation_stmt, *load;
    uint64_t *seq;        /* the change counter, mapped shared (tokens.h) */
    uint64_t seen_seq;    /* *seq at the last look */
    int64_t generation;   /* tokens_generation of the entries; -1: read again */
    struct hashmap *live; /* id -> struct entry, the rows not revoked */
};

static int db_error(sqlite3 *db, int rc, struct error *err, const char *what)
{
    int code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? -EAGAIN
               : (rc & 0xff) == SQLITE_CONSTRAINT                         ? -EEXIST
                                                                          : -EIO;
    return error_set(err, code, "tokens: %s: %s", what, sqlite3_errmsg(db));
}

/* Accepts NULL. */
static void entry_free(void *value, void *userdata)
{
    struct entry *e = value;
    if (!e)
        return;
    free(e->principal);
    free(e);
}

static struct hashmap *entries_free(struct hashmap *m)
{
    if (m)
        hashmap_foreach(m, entry_free, NULL);
    return hashmap_free(m);
}

static void finalize_all(struct tokens *t)
{
    sqlite3_finalize(t->generation_stmt);
    sqlite3_finalize(t->load);
    t->generation_stmt = t->load = NULL;
}

/* Maps the change counter at path, making it (zero, 0600) if missing. */
static int seq_map(struct tokens *t, const char *path, struct error *err)
{
    _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return error_set_errno(err, -errno, "tokens: %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return error_set_errno(err, -errno, "tokens: %s", path);
    if (!S_ISREG(st.st_mode))
        return error_set(err, -EINVAL, "tokens: %s is not a regular file", path);
    if (st.st_size < (off_t) sizeof(*t->seq) && ftruncate(fd, sizeof(*t->seq)) < 0)
        return error_set_errno(err, -errno, "tokens: %s", path);
    void *p = mmap(NULL, sizeof(*t->seq), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return error_set_errno(err, -errno, "tokens: map %s", path);
    t->seq = p;
    return 0;
}

/* After a commit that changed the table: every opener's next check reads
 * it again. */
static void changed(struct tokens *t)
{
    (void) __atomic_add_fetch(t->seq, 1, __ATOMIC_SEQ_CST);
    t->generation = -1;
}

int tokens_open(const char *db_path, const char *seq_path, struct tokens **ret, struct error *err)
{
    struct tokens *t = xcalloc(1, sizeof(*t));
    t->generation = -1;
    int r = seq_map(t, seq_path, err);
    if (r < 0) {
        free(t);
        return r;
    }
    int rc = sqlite3_open_v2(db_path, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(t->db, 5000);
        (void) sqlite3_extended_result_codes(t->db, 1);
        rc = sqlite3_prepare_v3(t->db, "SELECT n FROM tokens_generation", -1,
                                SQLITE_PREPARE_PERSISTENT, &t->generation_stmt, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(t->db,
                                "SELECT id, hash, principal, admin, expires FROM tokens "
                                "WHERE revoked = 0",
                                -1, SQLITE_PREPARE_PERSISTENT, &t->load, NULL);
    if (rc != SQLITE_OK) {
        r = t->db ? db_error(t->db, rc, err, db_path)
                  : error_set(err, -ENOMEM, "tokens: %s: %s", db_path, sqlite3_errstr(rc));
        finalize_all(t);
        sqlite3_close(t->db);
        (void) munmap(t->seq, sizeof(*t->seq));
        free(t);
        return r;
    }
    pthread_mutex_init(&t->lock, NULL);
    *ret = t;
    return 0;
}

void tokens_close(struct tokens *t)
{
    if (!t)
        return;
    finalize_all(t);
    sqlite3_close(t->db);
    (void) munmap(t->seq, sizeof(*t->seq));
    entries_free(t->live);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static int exec(struct tokens *t, const char *sql, struct error *err)
{
    int rc = sqlite3_exec(t->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_error(t->db, rc, err, sql);
}

/* Inserts a row for text; the caller holds the lock. */
static int insert(struct tokens *t, const char *text, const char *principal, bool admin,
                  usec_t expires, struct error *err)
{
    char id[TOKEN_ID_LEN + 1];
    uint8_t hash[TOKEN_HASH_LEN];
    if (token_parse(text, id) < 0)
        return error_set(err, -EINVAL, "tokens: a malformed token was made");
    token_hash(text, hash);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(t->db,
                                "INSERT INTO tokens (id, hash, principal, admin, created, expires) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(t->db, rc, err, "insert");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
    sqlite3_bind_text(st, 3, principal, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, admin);
    sqlite3_bind_int64(st, 5, now_realtime());
    sqlite3_bind_int64(st, 6, expires);
    rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? 0 : db_error(t->db, rc, err, "insert");
    sqlite3_finalize(st);
    return r;
}

int tokens_create(struct tokens *t, const char *principal, bool admin, usec_t expires,
                  char ret[static TOKEN_LEN + 1], struct error *err)
{
    if (!policy_name_valid(principal))
        return error_set(err, -EINVAL,
                         "principal \"%s\": a principal's name is 1 to %d letters, digits and ._@-",
                         principal, POLICY_NAME_MAX);
    char text[TOKEN_LEN + 1];
    int r;
    pthread_mutex_lock(&t->lock);
    /* A new id that is taken already (48 random bits: a birthday among
     * millions of tokens) is drawn again. */
    for (int tries = 0;; tries++) {
        token_generate(text);
        r = insert(t, text, principal, admin, expires, err);
        if (r != -EEXIST || tries == 8)
            break;
        error_clear(err);
    }
    if (r >= 0)
        changed(t); /* its own transaction, committed */
    pthread_mutex_unlock(&t->lock);
    if (r >= 0)
        memcpy(ret, text, sizeof(text));
    explicit_bzero(text, sizeof(text));
    return r;
}

/* text and a newline to path, mode 0600 from its creation on, on disk
 * when it returns. */
static int write_secret_file(const char *path, const char *text, struct error *err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
    (void) unlink(tmp);
    _cleanup_close_ int fd =
        open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return error_set_errno(err, -errno, "create %s", tmp);
    _cleanup_free_ char *line = xasprintf("%s\n", text);
    int r = loop_write(fd, line, strlen(line));
    if (r >= 0 && fsync(fd) < 0)
        r = -errno;
    explicit_bzero(line, strlen(line));
    if (r >= 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r >= 0)
        r = fsync_path(path);
    if (r < 0) {
        (void) unlink(tmp);
        return error_set_errno(err, r, "write %s", path);
    }
    return 0;
}

int tokens_create_first(struct tokens *t, const char *path, bool *ret_created, struct error *err)
{
    pthread_mutex_lock(&t->lock);
    /* IMMEDIATE: the count and the insert see the same table, even with a
     * `token create` running at the same moment. */
    int r = exec(t, "BEGIN IMMEDIATE", err);
    bool empty = false;
    if (r >= 0) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(t->db, "SELECT count(*) FROM tokens", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            empty = sqlite3_column_int64(st, 0) == 0;
        else
            r = db_error(t->db, rc, err, "count");
        sqlite3_finalize(st);
    }
    char text[TOKEN_LEN + 1];
    bool written = false;
    if (r >= 0 && empty) {
        token_generate(text);
        r = insert(t, text, TOKEN_ADMIN_PRINCIPAL, true, 0, err);
        if (r >= 0)
            r = write_secret_file(path, text, err);
        written = r >= 0;
        explicit_bzero(text, sizeof(text));
    }
    if (r >= 0)
        r = exec(t, "COMMIT", err);
    if (r >= 0 && empty)
        changed(t);
    if (r < 0) {
        (void) sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
        /* A file whose token never reached the table would mislead. */
        if (written)
            (void) unlink(path);
    }
    pthread_mutex_unlock(&t->lock);
    if (r >= 0)
        *ret_created = empty;
    return r;
}

int tokens_list(struct tokens *t, int (*fn)(const struct token_info *info, void *userdata),
                void *userdata, struct error *err)
{
    pthread_mutex_lock(&t->lock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(t->db,
                                "SELECT id, principal, admin, created, expires, revoked "
                                "FROM tokens ORDER BY created, id",
                                -1, &st, NULL);
    int r = 0;
    if (rc != SQLITE_OK) {
        r = db_error(t->db, rc, err, "list");
        pthread_mutex_unlock(&t->lock);
        return r;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct token_info info = {
            .principal = (const char *) sqlite3_column_text(st, 1),
            .admin = sqlite3_column_int(st, 2) != 0,
            .created = sqlite3_column_int64(st, 3),
            .expires = sqlite3_column_int64(st, 4),
            .revoked = sqlite3_column_int64(st, 5),
        };
        const unsigned char *id = sqlite3_column_text(st, 0);
        snprintf(info.id, sizeof(info.id), "%s", id ? (const char *) id : "");
        if (!info.principal)
            info.principal = "";
        r = fn(&info, userdata);
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_error(t->db, rc, err, "list");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->lock);
    return r;
}

int tokens_revoke(struct tokens *t, const char *id, struct error *err)
{
    pthread_mutex_lock(&t->lock);
    sqlite3_stmt *st = NULL;
    int r = 0;
    int rc = sqlite3_prepare_v2(
        t->db, "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked = 0", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_realtime());
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE)
        r = db_error(t->db, rc, err, "revoke");
    bool unchanged = rc == SQLITE_DONE && sqlite3_changes(t->db) == 0;
    sqlite3_finalize(st);
    st = NULL;
    if (unchanged) {
        /* Nothing changed: revoked before, or no such token. */
        rc = sqlite3_prepare_v2(t->db, "SELECT 1 FROM tokens WHERE id = ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
        }
        if (rc == SQLITE_ROW)
            r = 1;
        else if (rc == SQLITE_DONE)
            r = error_set(err, -ENOENT, "no token %s", id);
        else
            r = db_error(t->db, rc, err, "revoke");
        sqlite3_finalize(st);
    }
    if (r == 0)
        changed(t);
    pthread_mutex_unlock(&t->lock);
    return r;
}

/* ---- the daemon's cache ---- */

/* Steps a statement of one integer: the value, or -1 after setting err. */
static int64_t step_int(struct tokens *t, sqlite3_stmt *st, struct error *err)
{
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    if (rc != SQLITE_ROW)
        (void) db_error(t->db, rc, err, "read the tokens");
    sqlite3_reset(st);
    return v;
}

/* Brings t->live up to date with the table; the caller holds the lock. */
static int refresh(struct tokens *t, struct error *err)
{
    /* Before the table: a change committed after this load moves the
     * counter again, and the next check reads it. */
    uint64_t seq = __atomic_load_n(t->seq, __ATOMIC_ACQUIRE);
    if (seq == t->seen_seq && t->generation >= 0)
        return 0;
    int64_t gen = step_int(t, t->generation_stmt, err);
    if (gen < 0)
        return err->code;
    t->seen_seq = seq;
    if (gen == t->generation)
        return 0;

    struct hashmap *m = hashmap_new();
    int rc;
    while ((rc = sqlite3_step(t->load)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(t->load, 0);
        const void *hash = sqlite3_column_blob(t->load, 1);
        const unsigned char *principal = sqlite3_column_text(t->load, 2);
        /* A damaged row (edited by hand) lets nobody in. */
        if (!id || !principal || sqlite3_column_bytes(t->load, 1) != TOKEN_HASH_LEN ||
            !token_id_valid((const char *) id))
            continue;
        struct entry *e = xcalloc(1, sizeof(*e));
        snprintf(e->id, sizeof(e->id), "%s", (const char *) id);
        memcpy(e->hash, hash, TOKEN_HASH_LEN);
        e->principal = xstrdup((const char *) principal);
        e->admin = sqlite3_column_int(t->load, 3) != 0;
        e->expires = sqlite3_column_int64(t->load, 4);
        entry_free(hashmap_put(m, e->id, e), NULL);
    }
    sqlite3_reset(t->load);
    if (rc != SQLITE_DONE) {
        entries_free(m);
        return db_error(t->db, rc, err, "read the tokens");
    }
    entries_free(t->live);
    t->live = m;
    t->generation = gen;
    return 0;
}

int tokens_check(struct tokens *t, const char *text, usec_t now, char **ret_principal,
                 bool *ret_admin, struct error *err)
{
    char id[TOKEN_ID_LEN + 1];
    uint8_t hash[TOKEN_HASH_LEN];
    if (token_parse(text, id) < 0)
        return error_set(err, -ENOKEY, "the bearer token is not valid");
    token_hash(text, hash);

    pthread_mutex_lock(&t->lock);
    int r = refresh(t, err);
    const struct entry *e = r >= 0 && t->live ? hashmap_get(t->live, id) : NULL;
    if (r >= 0 && (!e || !token_hash_equal(e->hash, hash)))
        r = error_set(err, -ENOKEY, "the bearer token is not valid");
    else if (r >= 0 && e->expires && now >= e->expires)
        r = error_set(err, -ENOKEY, "the bearer token has expired");
    else if (r >= 0) {
        *ret_principal = xstrdup(e->principal);
        *ret_admin = e->admin;
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}
