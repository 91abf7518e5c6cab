/*
 * curl-loop: see curl-loop.h.
 */
#include "curl-loop.h"
#include "util/dlopen.h"

#include <pthread.h>

/* The pointers stand for libcurl's functions once it is loaded. */
#define REST_CURL_DEFINE(f) typeof(sym_##f) sym_##f;
REST_CURL_SYMS(REST_CURL_DEFINE)

/* DLSYM_ENTRY's, spelled out: its argument would be one of the macros
 * that rename libcurl's functions to these pointers. */
#define REST_CURL_ENTRY(f) {(void **) &sym_##f, #f},
static const struct dlsym_entry curl_syms[] = {
    REST_CURL_SYMS(REST_CURL_ENTRY){},
};

static struct error curl_load_error; /* set once, under curl_once */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* Idle easy handles, shared by every thread: a handle keeps its
 * connection to the service open (keep-alive), so a task's calls - and
 * the next task's, from another thread - reuse it instead of connecting
 * and setting up again. A handle is used by one call at a time. Idle
 * multi handles likewise, for blocking calls. */
#define POOL_MAX 16

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[POOL_MAX];
static size_t pool_n;
static struct rest_multi *mpool[POOL_MAX];
static size_t mpool_n;

/* One connection cache for every handle (libcurl's share interface), so
 * an idle keep-alive connection serves the next call whatever thread or
 * handle makes it. Connections are told apart by host, port and socket
 * path: clients of two services share the cache, not connections. */
static CURLSH *share;
static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;

static void share_lock_fn(CURL *h, curl_lock_data data, curl_lock_access access, void *userptr)
{
    pthread_mutex_lock(&share_lock);
}

static void share_unlock_fn(CURL *h, curl_lock_data data, void *userptr)
{
    pthread_mutex_unlock(&share_lock);
}

static void curl_init_once(void)
{
    if (dlopen_many("libcurl.so.4", curl_syms, &curl_load_error) < 0)
        return;
    (void) curl_global_init(CURL_GLOBAL_NOTHING);
    share = curl_share_init();
    if (share) {
        (void) curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock_fn);
        (void) curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock_fn);
        (void) curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    }
}

CURL *rest_handle_get(void)
{
    CURL *h = NULL;
    pthread_mutex_lock(&pool_lock);
    if (pool_n > 0)
        h = pool[--pool_n];
    pthread_mutex_unlock(&pool_lock);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    return curl_easy_init();
}

void rest_handle_put(CURL *h)
{
    pthread_mutex_lock(&pool_lock);
    if (pool_n < POOL_MAX) {
        pool[pool_n++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

/* How many connections the shared cache keeps. libcurl closes the oldest
 * one whenever a transfer ends with more than that many in the cache -
 * in use or idle - and its default is 4 per easy handle of the multi the
 * transfer ran in: 4 for a blocking call. With a few tasks in flight
 * (each holding a wait and a logs stream) nearly every call then had to
 * connect afresh, and the service to accept. */
#define CONNS_MAX 64L

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct rest_multi *h = userp;
    size_t i = 0;
    while (i < h->n_socks && h->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < h->n_socks)
            h->socks[i] = h->socks[--h->n_socks];
        return 0;
    }
    if (i == h->n_socks) {
        if (h->n_socks == REST_MULTI_SOCKS)
            return -1; /* libcurl fails the transfer */
        h->n_socks++;
    }
    h->socks[i] = (struct pollfd){
        .fd = fd,
        .events =
            (short) ((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0)),
    };
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    struct rest_multi *h = userp;
    h->timer_set = timeout_ms >= 0;
    h->deadline = h->timer_set ? now_monotonic() + (usec_t) timeout_ms * 1000 : 0;
    return 0;
}

static void mh_action(struct rest_multi *h, curl_socket_t fd, int bits)
{
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(h->m, fd, bits, &running);
    /* A socket libcurl let go of meanwhile is no failure of the calls. */
    if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
        h->failed = true;
}

static bool mh_watches(const struct rest_multi *h, int fd)
{
    for (size_t i = 0; i < h->n_socks; i++)
        if (h->socks[i].fd == fd)
            return true;
    return false;
}

/* libcurl's timer, if it is due: it starts added transfers this way. */
static void mh_timeout(struct rest_multi *h)
{
    if (h->timer_set && h->deadline <= now_monotonic()) {
        h->timer_set = false;
        mh_action(h, CURL_SOCKET_TIMEOUT, 0);
    }
}

bool rest_multi_wait(struct rest_multi *h, const struct rest_aborts *a)
{
    if (h->timer_set && h->deadline <= now_monotonic()) {
        mh_timeout(h);
        return false;
    }
    struct pollfd p[REST_MULTI_SOCKS + ELEMENTSOF(a->fds)];
    size_t n = h->n_socks, n_socks = n;
    memcpy(p, h->socks, n * sizeof(*p)); /* acting on one may change h->socks */
    for (size_t i = 0; i < a->n; i++)
        p[n++] = (struct pollfd){.fd = a->fds[i], .events = POLLIN};
    int timeout = 1000;
    if (h->timer_set) {
        usec_t now = now_monotonic();
        timeout = h->deadline <= now ? 0 : (int) MIN((h->deadline - now + 999) / 1000, 1000);
    }
    if (poll(p, n, timeout) < 0)
        return false; /* EINTR: look again */
    for (size_t i = n_socks; i < n; i++)
        if (p[i].revents & POLLIN)
            return true; /* the sockets stay ready: the next wait acts on them */
    for (size_t i = 0; i < n_socks; i++)
        if (p[i].revents && mh_watches(h, p[i].fd)) /* acting on one may drop another */
            mh_action(h, p[i].fd,
                      (p[i].revents & POLLIN ? CURL_CSELECT_IN : 0) |
                          (p[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                          (p[i].revents & (POLLERR | POLLHUP | POLLNVAL) ? CURL_CSELECT_ERR : 0));
    mh_timeout(h);
    return false;
}

struct rest_multi *rest_multi_get(void)
{
    struct rest_multi *h = NULL;
    pthread_mutex_lock(&pool_lock);
    if (mpool_n > 0)
        h = mpool[--mpool_n];
    pthread_mutex_unlock(&pool_lock);
    if (h)
        return h;
    CURLM *m = curl_multi_init();
    if (!m)
        return NULL;
    h = xcalloc(1, sizeof(*h));
    h->m = m;
    (void) curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, CONNS_MAX);
    (void) curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    (void) curl_multi_setopt(m, CURLMOPT_SOCKETDATA, h);
    (void) curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    (void) curl_multi_setopt(m, CURLMOPT_TIMERDATA, h);
    return h;
}

void rest_multi_put(struct rest_multi *h)
{
    h->timer_set = h->failed = false;
    pthread_mutex_lock(&pool_lock);
    if (mpool_n < POOL_MAX) {
        mpool[mpool_n++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (h) {
        (void) curl_multi_cleanup(h->m);
        free(h);
    }
}

int rest_curl_load(struct error *err)
{
    (void) pthread_once(&curl_once, curl_init_once);
    if (curl_load_error.code < 0)
        return error_set(err, curl_load_error.code, "%s", error_message(&curl_load_error));
    return 0;
}

CURLSH *rest_share(void)
{
    return share;
}
