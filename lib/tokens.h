/*
 * tokens: bearer tokens ("Authorization: Bearer <token>"), their table in
 * the store's SQLite file (schema version 3, store.c) and the daemon's view
 * of it.
 *
 * A token is "ocps_<id>_<secret>": the id is 12 hex digits (48 random
 * bits), public, what `ocps-proxyd token list` shows and `revoke` takes,
 * and the key a presented token is looked up by; the secret is 64 hex
 * digits, 256 bits from getrandom(). Hex, so that a token survives any
 * shell, header or file unquoted.
 *
 * The table keeps the SHA-256 of the whole text, never the text: a
 * copied database reveals no token. As a secret is 256 random bits there
 * is no dictionary to try, so neither a salt nor a slow hash is needed
 * (a password would need both). A presented token's hash is compared
 * with the stored one in constant time (token_hash_equal); the lookup by
 * id leaks nothing an attacker does not already know.
 *
 * A row: id, hash, principal (the name the token stands for, policy.h),
 * admin (an admin whatever the policy says: the token made at first
 * start), created, expires and revoked (microseconds since the epoch; 0
 * never / not). Revoking keeps the row, so that `token list` shows it
 * and its id is never given out again.
 *
 * The daemon (tokens_check) keeps the rows that are not revoked in memory
 * and reads the table again only when it changed. Every opener that
 * changes the table (create, revoke, the first start's admin token)
 * counts up a change counter once its commit is done: eight bytes in a
 * file of the data dir (layout_tokens_seq, 0600), which every opener maps
 * shared. At each request the daemon compares the counter with the value
 * it last saw, one load from memory; only when it moved is
 * tokens_generation read (one row, counted up by triggers on every change
 * of the table), and only when that moved is the table read again. A
 * token made or revoked by `ocps-proxyd token` while the daemon runs
 * counts from the next request after the command returns, and an expiry
 * is checked at each request, with no restart. (SQLite's PRAGMA
 * data_version would tell the same without a file, but it is a read
 * transaction, two fcntl locks, at every request: bench/README.md.) A
 * change made to the table by other means (the sqlite3 shell) is seen at
 * the next change made by the command, or the next start. A failure to
 * read the table refuses the request (fail closed: 503), it never lets a
 * token through.
 *
 * Errors: a token that is malformed, unknown, revoked or whose secret does
 * not match is -ENOKEY (401) with the same words, which tell a guesser
 * nothing; only the holder of a real token hears that it has expired.
 *
 * Threads: a struct tokens may be used by any thread (a mutex inside).
 */
#pragma once

#include "util/error.h"
#include "util/timeutil.h"
#include "util/util.h"

#define TOKEN_PREFIX     "ocps_"
#define TOKEN_ID_LEN     12
#define TOKEN_SECRET_LEN 64
#define TOKEN_LEN        (STRLEN(TOKEN_PREFIX) + TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN)
#define TOKEN_HASH_LEN   32 /* SHA-256 */
/* The principal of the admin token made at first start. */
#define TOKEN_ADMIN_PRINCIPAL "admin"
/* The longest expiry `token create --expires` takes: ten years. */
#define TOKEN_MAX_EXPIRY ((uint64_t) 3650 * 24 * 3600)

/* ---- the text of a token: pure functions ---- */

/* A new token's text from getrandom(); its id is ret[5..16]. */
void token_generate(char ret[static TOKEN_LEN + 1]);
/* The id of a token's text. -EINVAL unless text is exactly a token:
 * the prefix, 12 and 64 lowercase hex digits. */
int token_parse(const char *text, char ret_id[static TOKEN_ID_LEN + 1]);
/* Whether id looks like a token's id (12 lowercase hex digits). */
bool token_id_valid(const char *id);
/* SHA-256 of text. */
void token_hash(const char *text, uint8_t ret[static TOKEN_HASH_LEN]);
/* Whether two hashes are equal, in a time that does not depend on where
 * they differ. */
bool token_hash_equal(const uint8_t a[static TOKEN_HASH_LEN],
                      const uint8_t b[static TOKEN_HASH_LEN]);

/* ---- the table ---- */

struct tokens;

/* Opens the token table of the store at db_path, which must exist at this
 * schema (store_open or store_create made it), and maps the change counter
 * at seq_path (made, zero and 0600, when missing; never a symlink). */
int tokens_open(const char *db_path, const char *seq_path, struct tokens **ret, struct error *err);
/* Accepts NULL. */
void tokens_close(struct tokens *t);

/* A new token for principal (policy_name_valid, else -EINVAL), an admin
 * or not, expiring at expires (0: never). Its text, shown once, in ret. */
int tokens_create(struct tokens *t, const char *principal, bool admin, usec_t expires,
                  char ret[static TOKEN_LEN + 1], struct error *err);

/* At a daemon's first start: when the table has no row at all (revoked
 * ones count), makes an admin token for TOKEN_ADMIN_PRINCIPAL and writes
 * its text and a newline to path (mode 0600, replacing any file there),
 * in one transaction with its row: *ret_created true. Otherwise nothing
 * is written: *ret_created false. */
int tokens_create_first(struct tokens *t, const char *path, bool *ret_created, struct error *err);

struct token_info {
    char id[TOKEN_ID_LEN + 1];
    const char *principal;
    bool admin;
    usec_t created, expires, revoked; /* 0: never, not */
};
/* Calls fn for every row, oldest first; stops when fn returns non-zero
 * (returned). */
int tokens_list(struct tokens *t, int (*fn)(const struct token_info *info, void *userdata),
                void *userdata, struct error *err);

/* Revokes the token with this id: 0, or 1 when it was revoked already;
 * -ENOENT when there is none. */
int tokens_revoke(struct tokens *t, const char *id, struct error *err);

/* Who a presented token (the text after "Bearer ") stands for at time
 * now: 0 with its principal's name (allocated) and whether the token
 * makes it an admin; -ENOKEY when the token is not valid (malformed,
 * unknown, revoked, wrong secret, expired); -EAGAIN or -EIO when the table
 * cannot be read. */
int tokens_check(struct tokens *t, const char *text, usec_t now, char **ret_principal,
                 bool *ret_admin, struct error *err);
