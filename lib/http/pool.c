/*
 * pool: every HTTP connection the daemon holds, whose it is, which share
 * of the pool it takes, and until when it may take its time (http.h).
 *
 * A connection's record is made when the gate accepts it (a waiting
 * share, counted against its client), moves to a served or a follower's
 * share when its head is whole, and leaves when the gate closes it or
 * MHD tells us it closed (MHD_CONNECTION_NOTIFY_CLOSED, which comes
 * before MHD closes the socket, so a file descriptor in by_fd is never
 * another connection's). MHD learns of the record at
 * MHD_CONNECTION_NOTIFY_STARTED, by its socket in by_fd; follow.c finds
 * it the same way. File descriptors are the process's, so by_fd is too,
 * and one lock guards it and every pool.
 *
 * Deadlines: the connection's own thread moves its deadline at each
 * step of a request (http_pool_event, without the lock: a plain atomic
 * store), and the gate's thread sweeps the served connections once a
 * second and shuts down those past theirs: MHD's own timeout is an idle
 * timeout, which a client sending a byte now and then never meets.
 */
#include "http.h"
#include "util/hashmap.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sys/socket.h>

#define POOL_SWEEP_EVERY USEC_PER_SEC
#define POOL_NEVER       INT64_MAX

enum share {
    SHARE_NONE, /* left the pool */
    SHARE_WAITING,
    SHARE_SERVED,
    SHARE_FOLLOWER,
    _SHARE_MAX,
};

struct pool_client {
    unsigned conns;
    char key[INET6_ADDRSTRLEN + 16]; /* "127.0.0.1", "2001:db8::/64", "uid 1000" */
};

struct http_conn {
    struct http_pool *pool;
    struct pool_client *client;
    int fd;
    enum share share; /* written under the lock, read by its own thread without it */
    bool following;
    unsigned refs;   /* one while in the pool, one per http_conn_ref/http_pool_follow */
    usec_t deadline; /* served: shut down at this time; 0: none. Atomic. */
    struct http_conn *prev, *next; /* in pool->served */
};

struct http_pool {
    struct http_pool_limits limits;
    unsigned count[_SHARE_MAX];
    struct hashmap *clients;
    struct http_conn *served; /* handed to MHD (served and follower shares) */
    usec_t next_sweep;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_conn **by_fd;
static size_t n_by_fd;

static usec_t after(unsigned seconds, usec_t now)
{
    return seconds ? now + (usec_t) seconds * USEC_PER_SEC : 0;
}

static void set_deadline(struct http_conn *c, usec_t t)
{
    __atomic_store_n(&c->deadline, t, __ATOMIC_RELAXED);
}

struct http_pool *http_pool_new(const struct http_pool_limits *limits)
{
    struct http_pool *p = xcalloc(1, sizeof(*p));
    p->limits = *limits;
    p->clients = hashmap_new();
    p->next_sweep = POOL_NEVER;
    return p;
}

/* Under the lock. */
static void conn_unref_locked(struct http_conn *c)
{
    if (--c->refs == 0)
        free(c);
}

/* Under the lock: the connection leaves its share, its client and the
 * served list, and drops the pool's reference. Idempotent. */
static void conn_release_locked(struct http_conn *c)
{
    struct http_pool *p = c->pool;
    if (c->share == SHARE_NONE)
        return;
    p->count[c->share]--;
    __atomic_store_n(&c->share, SHARE_NONE, __ATOMIC_RELAXED);
    if (--c->client->conns == 0) {
        (void) hashmap_remove(p->clients, c->client->key);
        free(c->client);
    }
    c->client = NULL;
    if (c->prev || p->served == c) {
        if (c->prev)
            c->prev->next = c->next;
        else
            p->served = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
    }
    if (c->fd >= 0 && (size_t) c->fd < n_by_fd && by_fd[c->fd] == c)
        by_fd[c->fd] = NULL;
    conn_unref_locked(c);
}

void http_pool_free(struct http_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&pool_lock);
    /* Left by MHD without a word (a connection it failed to start). */
    while (p->served)
        conn_release_locked(p->served);
    pthread_mutex_unlock(&pool_lock);
    hashmap_free(p->clients);
    free(p);
}

/* The client a connection counts against. */
static void client_key(int fd, const struct sockaddr *sa, char key[static INET6_ADDRSTRLEN + 16])
{
    size_t size = INET6_ADDRSTRLEN + 16;
    switch (sa->sa_family) {
    case AF_UNIX: {
        struct ucred cred;
        socklen_t n = sizeof(cred);
        /* Unreadable credentials share one key; the router refuses them anyway. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0)
            snprintf(key, size, "uid %u", (unsigned) cred.uid);
        else
            snprintf(key, size, "uid unknown");
        return;
    }
    case AF_INET:
        (void) inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, key, size);
        return;
    case AF_INET6: {
        struct in6_addr a = ((const struct sockaddr_in6 *) sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            (void) inet_ntop(AF_INET, &a.s6_addr[12], key, size);
            return;
        }
        /* A host is given a /64 to pick its addresses from: it is one client. */
        memset(&a.s6_addr[8], 0, 8);
        char buf[INET6_ADDRSTRLEN];
        (void) inet_ntop(AF_INET6, &a, buf, sizeof(buf));
        snprintf(key, size, "%s/64", buf);
        return;
    }
    default:
        snprintf(key, size, "unknown");
        return;
    }
}

int http_pool_open(struct http_pool *p, int fd, const struct sockaddr *addr, socklen_t addrlen,
                   struct http_conn **ret, struct error *err)
{
    char key[INET6_ADDRSTRLEN + 16];
    client_key(fd, addr, key);
    pthread_mutex_lock(&pool_lock);
    struct pool_client *cl = hashmap_get(p->clients, key);
    int r = 0;
    if (cl && cl->conns >= p->limits.per_client)
        r = error_set(err, -EAGAIN,
                      "client %s holds %u connections, the most one client may "
                      "(http_client_connections); try again later",
                      key, cl->conns);
    else if (p->count[SHARE_WAITING] >= p->limits.served)
        r = error_set(err, -EAGAIN,
                      "%u connections are waiting to send their request, the most at once "
                      "(http_connections); try again later",
                      p->count[SHARE_WAITING]);
    if (r < 0) {
        pthread_mutex_unlock(&pool_lock);
        return r;
    }
    if (!cl) {
        cl = xcalloc(1, sizeof(*cl));
        memcpy(cl->key, key, sizeof(key));
        (void) hashmap_put(p->clients, cl->key, cl);
    }
    cl->conns++;
    p->count[SHARE_WAITING]++;
    struct http_conn *c = xcalloc(1, sizeof(*c));
    *c = (struct http_conn){.pool = p, .client = cl, .fd = fd, .share = SHARE_WAITING, .refs = 1};
    pthread_mutex_unlock(&pool_lock);
    *ret = c;
    return 0;
}

static int followers_full(unsigned n, struct error *err)
{
    return error_set(err, -EAGAIN,
                     "%u log followers already, the most at once (http_followers); try again later",
                     n);
}

int http_pool_serve(struct http_conn *c, bool follower, struct error *err)
{
    struct http_pool *p = c->pool;
    enum share to = follower ? SHARE_FOLLOWER : SHARE_SERVED;
    unsigned cap = follower ? p->limits.followers : p->limits.served;
    usec_t now = now_monotonic();
    pthread_mutex_lock(&pool_lock);
    if (p->count[to] >= cap) {
        unsigned n = p->count[to];
        pthread_mutex_unlock(&pool_lock);
        if (follower)
            return followers_full(n, err);
        return error_set(err, -EAGAIN,
                         "%u connections are being served, the most at once (http_connections); "
                         "try again later",
                         n);
    }
    p->count[c->share]--;
    p->count[to]++;
    c->share = to;
    /* The head is whole: MHD parses it, and the body follows. */
    c->deadline = after(p->limits.body_timeout, now);
    c->next = p->served;
    if (p->served)
        p->served->prev = c;
    p->served = c;
    if ((size_t) c->fd >= n_by_fd) {
        size_t n = MAX((size_t) c->fd + 1, n_by_fd * 2);
        by_fd = xrealloc(by_fd, n * sizeof(*by_fd));
        memset(by_fd + n_by_fd, 0, (n - n_by_fd) * sizeof(*by_fd));
        n_by_fd = n;
    }
    /* A record still there was handed to MHD, which closed its socket
     * without starting it (out of memory or threads): it is gone. */
    if (by_fd[c->fd])
        conn_release_locked(by_fd[c->fd]);
    by_fd[c->fd] = c;
    if (p->next_sweep == POOL_NEVER)
        p->next_sweep = now + POOL_SWEEP_EVERY;
    pthread_mutex_unlock(&pool_lock);
    return 0;
}

void http_pool_close(struct http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&pool_lock);
    conn_release_locked(c);
    pthread_mutex_unlock(&pool_lock);
}

struct http_conn *http_conn_ref(struct http_conn *c)
{
    pthread_mutex_lock(&pool_lock);
    c->refs++;
    pthread_mutex_unlock(&pool_lock);
    return c;
}

void http_conn_unref(struct http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&pool_lock);
    conn_unref_locked(c);
    pthread_mutex_unlock(&pool_lock);
}

usec_t http_pool_sweep(struct http_pool *p, usec_t now)
{
    pthread_mutex_lock(&pool_lock);
    if (now >= p->next_sweep) {
        for (struct http_conn *c = p->served; c; c = c->next) {
            usec_t d = __atomic_load_n(&c->deadline, __ATOMIC_RELAXED);
            if (d == 0 || now < d)
                continue;
            /* MHD's thread sees the end of the stream and closes it. */
            log_debug("http: a request from %s is past its deadline: cut", c->client->key);
            (void) shutdown(c->fd, SHUT_RDWR);
            set_deadline(c, 0);
        }
        p->next_sweep = p->served ? now + POOL_SWEEP_EVERY : POOL_NEVER;
    }
    usec_t next = p->next_sweep;
    pthread_mutex_unlock(&pool_lock);
    return next;
}

int http_pool_follow(int fd, struct http_conn **ret, struct error *err)
{
    pthread_mutex_lock(&pool_lock);
    /* Called from the connection's own handler: the record of its socket
     * is its own (a stale one was dropped when this one was filed). */
    struct http_conn *c = fd >= 0 && (size_t) fd < n_by_fd ? by_fd[fd] : NULL;
    if (!c) {
        pthread_mutex_unlock(&pool_lock);
        *ret = NULL;
        return 0;
    }
    struct http_pool *p = c->pool;
    if (c->share == SHARE_SERVED) {
        if (p->count[SHARE_FOLLOWER] >= p->limits.followers) {
            unsigned n = p->count[SHARE_FOLLOWER];
            pthread_mutex_unlock(&pool_lock);
            return followers_full(n, err);
        }
        p->count[SHARE_SERVED]--;
        p->count[SHARE_FOLLOWER]++;
        __atomic_store_n(&c->share, SHARE_FOLLOWER, __ATOMIC_RELAXED);
    }
    c->following = true;
    c->refs++;
    pthread_mutex_unlock(&pool_lock);
    *ret = c;
    return 0;
}

void http_pool_unfollow(struct http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&pool_lock);
    c->following = false;
    conn_unref_locked(c);
    pthread_mutex_unlock(&pool_lock);
}

void http_pool_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        int fd = ci ? ci->connect_fd : -1;
        pthread_mutex_lock(&pool_lock);
        struct http_conn *c = fd >= 0 && (size_t) fd < n_by_fd ? by_fd[fd] : NULL;
        *socket_context = c;
        pthread_mutex_unlock(&pool_lock);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        http_pool_close(*socket_context);
        *socket_context = NULL;
    }
}

void http_pool_event(struct MHD_Connection *conn, enum http_conn_event ev)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *c = ci ? ci->socket_context : NULL;
    if (!c)
        return;
    /* The limits do not change while the pool lives: read without the lock. */
    const struct http_pool_limits *l = &c->pool->limits;
    switch (ev) {
    case HTTP_CONN_REQUEST_LINE:
        set_deadline(c, after(l->header_timeout, now_monotonic()));
        return;
    case HTTP_CONN_HEAD:
        set_deadline(c, after(l->body_timeout, now_monotonic()));
        return;
    case HTTP_CONN_HANDLING:
        set_deadline(c, 0);
        return;
    case HTTP_CONN_DONE:
        set_deadline(c, after(l->idle_timeout, now_monotonic()));
        /* A connection let in to follow a log whose request did not (a
         * 404, say) serves its next request from the served share, when
         * there is room; a follower's own reply closes its connection. */
        if (__atomic_load_n(&c->share, __ATOMIC_RELAXED) != SHARE_FOLLOWER)
            return;
        pthread_mutex_lock(&pool_lock);
        struct http_pool *p = c->pool;
        if (c->share == SHARE_FOLLOWER && !c->following &&
            p->count[SHARE_SERVED] < p->limits.served) {
            p->count[SHARE_FOLLOWER]--;
            p->count[SHARE_SERVED]++;
            __atomic_store_n(&c->share, SHARE_SERVED, __ATOMIC_RELAXED);
        }
        pthread_mutex_unlock(&pool_lock);
        return;
    default:
        return;
    }
}
