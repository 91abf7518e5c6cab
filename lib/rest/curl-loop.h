/*
 * curl-loop: libcurl as the REST client (rest.c) drives it. Internal to
 * lib/rest/.
 *
 * libcurl (and the TLS, Kerberos and LDAP libraries Debian builds it
 * with, ~5 MB resident) is opened on the first call, not when the daemon
 * starts (util/dlopen.h): a daemon that makes no call never maps it. The
 * sym_ pointers stand in for the library's functions; the macros below
 * let the client call them by their usual names.
 *
 * What every call shares: pools of idle easy and multi handles, one
 * connection cache, and the loop that drives a multi handle through its
 * sockets (libcurl's multi_socket API) while it watches the abort fds.
 */
#pragma once

#include "rest.h"
#include "util/timeutil.h"

#define CURL_DISABLE_TYPECHECK /* its macros would call the real symbols */
#include <curl/curl.h>
#include <poll.h>

/* The functions of libcurl the client calls. */
#define REST_CURL_SYMS(X)                                                                          \
    X(curl_global_init)                                                                            \
    X(curl_share_init)                                                                             \
    X(curl_share_setopt)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_reset)                                                                             \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_strerror)                                                                          \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_multi_init)                                                                             \
    X(curl_multi_setopt)                                                                           \
    X(curl_multi_cleanup)                                                                          \
    X(curl_multi_add_handle)                                                                       \
    X(curl_multi_remove_handle)                                                                    \
    X(curl_multi_socket_action)                                                                    \
    X(curl_multi_info_read)

#define REST_CURL_EXTERN(f) extern typeof(f) *sym_##f;
REST_CURL_SYMS(REST_CURL_EXTERN)

#undef curl_share_setopt /* curl.h's argument-count checks */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init         sym_curl_global_init
#define curl_share_init          sym_curl_share_init
#define curl_share_setopt        sym_curl_share_setopt
#define curl_easy_init           sym_curl_easy_init
#define curl_easy_reset          sym_curl_easy_reset
#define curl_easy_setopt         sym_curl_easy_setopt
#define curl_easy_getinfo        sym_curl_easy_getinfo
#define curl_easy_cleanup        sym_curl_easy_cleanup
#define curl_easy_strerror       sym_curl_easy_strerror
#define curl_slist_append        sym_curl_slist_append
#define curl_slist_free_all      sym_curl_slist_free_all
#define curl_multi_init          sym_curl_multi_init
#define curl_multi_setopt        sym_curl_multi_setopt
#define curl_multi_cleanup       sym_curl_multi_cleanup
#define curl_multi_add_handle    sym_curl_multi_add_handle
#define curl_multi_remove_handle sym_curl_multi_remove_handle
#define curl_multi_socket_action sym_curl_multi_socket_action
#define curl_multi_info_read     sym_curl_multi_info_read

/* Opens libcurl, once for the process. 0, or the reason it cannot be
 * loaded (a negative errno with words). */
int rest_curl_load(struct error *err);

/* An easy handle with no options set (from the pool of idle ones, which
 * keep their connection: keep-alive), or NULL when libcurl cannot make
 * one. Back to the pool with rest_handle_put() once its transfer is over. */
CURL *rest_handle_get(void);
void rest_handle_put(CURL *h);
/* The connection cache every handle shares (CURLOPT_SHARE), or NULL. */
CURLSH *rest_share(void);

/* The abort fds a wait watches: the client's, then the call's own. */
struct rest_aborts {
    int fds[2 * REST_MAX_ABORT_FDS];
    size_t n;
};

/* A multi handle driven through its sockets (libcurl's multi_socket
 * API): libcurl names the sockets to watch and when to be called back;
 * rest_multi_wait() polls those with the abort fds and tells libcurl which
 * socket is ready, so libcurl neither polls each transfer again before
 * reading it nor walks every transfer at each turn (curl_multi_perform did
 * both: ~25 polls per container task). */
#define REST_MULTI_SOCKS 16
struct rest_multi {
    CURLM *m;
    struct pollfd socks[REST_MULTI_SOCKS]; /* what libcurl wants watched */
    size_t n_socks;
    bool timer_set;
    usec_t deadline; /* CLOCK_MONOTONIC, when timer_set */
    bool failed;     /* a curl_multi_socket_action failed */
};

/* From the pool of idle ones, or new; NULL when libcurl cannot make one. */
struct rest_multi *rest_multi_get(void);
/* h must hold no easy handle (libcurl has told it to watch nothing). */
void rest_multi_put(struct rest_multi *h);
/* Waits for a socket of h, libcurl's timer or one of the abort fds; lets
 * libcurl act on what is ready. True when an abort fd became readable. */
bool rest_multi_wait(struct rest_multi *h, const struct rest_aborts *a);
