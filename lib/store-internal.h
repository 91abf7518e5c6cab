/*
 * store-internal: what store.c (schema, records, readers) and
 * store-writer.c (the group-committing writer) share. Not for other
 * modules.
 */
#pragma once

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>

/* A commit the disk refused is tried again after this. */
#define RETRY_USEC (1 * USEC_PER_SEC)
/* Readers of ended HTTP threads kept for the next ones: a client that
 * opens a connection per request (or 8 at once) must not cost a SQLite
 * connection's open and schema read each time. */
#define READERS_IDLE 16

enum op_kind {
    OP_INSERT,
    OP_DELETE,
    OP_STATE,
    OP_HANDLE, /* started: the handle, and QUEUED becomes INITIALIZING */
    OP_STORED, /* ended: the bytes its files keep */
    OP_SYNC,
    OP_NOTIFY, /* calls fn once what was queued before it is committed */
};

struct op {
    enum op_kind kind;
    bool waited; /* a caller waits on it (lives on its stack) */
    bool done;
    int result;
    char *msg;               /* error words for a waited op */
    struct task_record *rec; /* OP_INSERT */
    char id[37];
    enum task_state state;
    int exit_code;
    bool sync;  /* OP_STATE, OP_DELETE: committed with an fsync */
    char *text; /* reason (OP_STATE) or handle (OP_HANDLE) */
    usec_t started, finished;
    uint64_t stored;                        /* OP_STORED */
    void (*fn)(void *userdata, int result); /* OP_NOTIFY */
    void *userdata;
    struct op *next;
};

struct reader {
    struct store *store;
    sqlite3 *db;
    sqlite3_stmt *get;
    struct reader *prev, *next;
};

struct store {
    char *path;
    sqlite3 *db; /* the writer's */
    sqlite3_stmt *ins, *del, *upd, *upd_handle, *upd_stored;
    /* Transaction control, prepared once: a task commits four times. */
    sqlite3_stmt *begin, *commit, *rollback;
    bool sync_full; /* the writer connection's synchronous mode */

    pthread_mutex_t lock;
    pthread_cond_t wake; /* the writer waits on it */
    pthread_cond_t done; /* waiters wait on it */
    struct op *head, *tail;
    struct op *retry; /* async ops the disk refused, oldest first */
    usec_t retry_at;
    bool busy;     /* a commit runs (the writer's, or a caller's own) */
    unsigned held; /* store_hold(): queued ops wait for store_flush() */
    bool stopping;
    pthread_t writer;

    pthread_key_t reader_key;
    struct reader *readers;            /* every reader, for store_close */
    struct reader *idle[READERS_IDLE]; /* of threads that ended: the next thread's */
    size_t n_idle;
};

/* SQLite's error classes as errno: the HTTP layer turns them into 503/500. */
int store_sqlite_errno(int rc);
/* Binds s, or NULL as SQL NULL. */
void store_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Steps a statement that returns no rows, then resets it: SQLITE_OK or the error. */
int store_step_done(sqlite3_stmt *st);
/* The writer thread (store_open starts it). */
void *store_writer_main(void *arg);
