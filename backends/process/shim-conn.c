/*
 * shim-conn: the daemons' connections to the shim.
 *
 * Each connection (the daemon's socketpair on fd 3, and every daemon that
 * reconnects through the listening socket) starts with our hello, then
 * carries the daemon's requests in and our replies out (see shim.h).
 * Replies never block the shim: what a daemon is not reading yet waits in
 * the connection's queue, and a connection whose queue would pass
 * sh->queue_max is dropped (see shim.h for why that bound and what the
 * daemon does then).
 */
#include "shim-internal.h"
#include "util/log.h"

#include <inttypes.h>
#include <sys/epoll.h>
#include <sys/socket.h>

struct outmsg {
    struct outmsg *next;
    size_t len;
    char data[];
};

static void client_want_writable(struct shim *sh, struct client *c, bool writable)
{
    struct epoll_event ev = {.events = EPOLLIN | (writable ? EPOLLOUT : 0), .data.ptr = &c->src};
    (void) epoll_ctl(sh->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_clear_queue(struct client *c)
{
    while (c->out) {
        struct outmsg *m = c->out;
        c->out = m->next;
        free(m);
    }
    c->out_tail = &c->out;
    c->out_bytes = 0;
    c->out_count = 0;
}

/* Sends one message now; false when it has to wait (EAGAIN). */
static bool client_send_now(struct client *c, const char *data, size_t len)
{
    for (;;) {
        if (send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return true;
        if (errno == EAGAIN)
            return false;
        if (errno != EINTR)
            return true; /* gone: its hang-up is handled by the loop; drop what it would not read */
    }
}

static void client_flush(struct client *c)
{
    while (c->out) {
        struct outmsg *m = c->out;
        if (!client_send_now(c, m->data, m->len))
            return;
        c->out = m->next;
        c->out_bytes -= sizeof(*m) + m->len;
        c->out_count--;
        free(m);
    }
    c->out_tail = &c->out;
}

/* The daemon on c is too far behind (see shim.h): take what it already
 * sent, then let it go. */
static void client_drop(struct shim *sh, struct client *c)
{
    log_warn("ocps-shim %d: dropping the connection of a daemon that is not reading "
             "(%zu replies, %zu bytes waiting for it)%s",
             (int) getpid(), c->out_count, c->out_bytes,
             c->owner ? "; it was the daemon that started us: we leave after our last task" : "");
    /* From here on its requests fail with EPIPE, so none is lost unseen; those
     * already sent are read and handled until recv() says EOF, and then the
     * connection is closed (read_client). */
    (void) shutdown(c->fd, SHUT_RD);
    c->dropped = true;
    client_clear_queue(c);
    client_want_writable(sh, c, false);
}

static void client_queue(struct shim *sh, struct client *c, const char *text)
{
    size_t len = strlen(text);
    if (c->dropped || c->dead)
        return;
    /* The usual case: nothing waits, the socket has room, no copy. */
    if (!c->out && client_send_now(c, text, len))
        return;
    if (c->out_bytes + sizeof(struct outmsg) + len > sh->queue_max) {
        client_drop(sh, c);
        return;
    }
    struct outmsg *m = xmalloc(sizeof(*m) + len);
    m->next = NULL;
    m->len = len;
    memcpy(m->data, text, len);
    bool was_empty = !c->out;
    *c->out_tail = m;
    c->out_tail = &m->next;
    c->out_bytes += sizeof(*m) + len;
    c->out_count++;
    if (was_empty)
        client_want_writable(sh, c, true);
}

/* On the stack: a queued reply is the only allocation a message costs. A
 * daemon reads at most SHIM_MSG_MAX bytes of a datagram anyway. */
void client_send(struct shim *sh, struct client *c, const char *fmt, ...)
{
    char text[SHIM_MSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    (void) vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    client_queue(sh, c, text);
}

void client_broadcast(struct shim *sh, const char *fmt, ...)
{
    char text[SHIM_MSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    (void) vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (struct client *c = sh->clients; c; c = c->next)
        client_queue(sh, c, text);
}

struct client *client_add(struct shim *sh, int fd, bool owner)
{
    struct client *c = xcalloc(1, sizeof(*c));
    c->src = (struct source){SRC_CLIENT, c};
    c->fd = fd;
    c->owner = owner;
    c->out_tail = &c->out;
    if (shim_watch_fd(sh, fd, EPOLLIN, &c->src) < 0) {
        close(fd);
        free(c);
        return NULL;
    }
    c->next = sh->clients;
    sh->clients = c;
    /* First on every connection, before any reply (protocol 0 had no hello). */
    if (sh->protocol > 0)
        client_send(sh, c, "H %d %s", sh->protocol, OCPS_VERSION);
    return c;
}

static void client_remove(struct shim *sh, struct client *c)
{
    for (struct client **p = &sh->clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    if (c->owner)
        sh->owner_gone = true;
    client_clear_queue(c);
    shim_unwatch_close(sh, &c->fd);
    c->dead = true;
    c->next = sh->dead_clients;
    sh->dead_clients = c;
}

void client_free(struct client *c)
{
    free(c);
}

void client_close_all(struct shim *sh)
{
    while (sh->clients) {
        struct client *c = sh->clients;
        sh->clients = c->next;
        client_clear_queue(c);
        close(c->fd);
        client_free(c);
    }
}

/* Reads every message already queued on the other connections (see "W"). */
static void read_client(struct shim *sh, struct client *c);
static void drain_others(struct shim *sh, struct client *except)
{
    for (struct client *c = sh->clients, *next; c; c = next) {
        next = c->next;
        if (c != except)
            read_client(sh, c);
    }
}

/* fds: what came with the message (SCM_RIGHTS), -1 where nothing did. */
static void handle_message(struct shim *sh, struct client *c, char *msg, int fds[2])
{
    char *dir = msg[0] == 'S' && msg[1] == ' ' ? strchr(msg + 2, ' ') : NULL;
    if (dir && dir[1] == '/') {
        *dir++ = '\0';
        stask_start(sh, msg + 2, dir, fds[0], fds[1]);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (msg[0] == 'C' && msg[1] == ' ') {
        struct stask *t = stask_find(sh, msg + 2);
        if (t)
            stask_cancel(sh, t);
    } else if (msg[0] == 'W' && msg[1] == ' ') {
        /* A daemon that died (or was dropped) right after a start request left
         * it queued on its old connection: take it before saying "not here". */
        struct stask *t = stask_find(sh, msg + 2);
        if (!t) {
            drain_others(sh, c);
            t = stask_find(sh, msg + 2);
        }
        if (c->dead)
            return;
        if (!t)
            client_send(sh, c, "E %s", msg + 2);
        else if (t->phase == PHASE_RUNNING)
            client_send(sh, c, "R %s %" PRId64, t->spec.id, (int64_t) t->started);
        /* else starting or ending: its R or E goes to every daemon */
    } else {
        log_warn("unknown message from a daemon: %.40s", msg);
    }
}

/* Reads the messages waiting on c, until none is left or it is gone. */
static void read_client(struct shim *sh, struct client *c)
{
    while (!c->dead) {
        char buf[SHIM_MSG_MAX + 1];
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(2 * sizeof(int))];
        } ctl;
        struct iovec iov = {buf, SHIM_MSG_MAX};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            client_remove(sh, c);
            return;
        }
        int fds[2] = {-1, -1};
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
                h->cmsg_len >= CMSG_LEN(sizeof(int)) && h->cmsg_len <= CMSG_LEN(sizeof(fds)))
                memcpy(fds, CMSG_DATA(h), h->cmsg_len - CMSG_LEN(0));
        buf[n] = '\0';
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || strlen(buf) != (size_t) n) {
            log_warn("dropping a malformed message from a daemon");
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            continue;
        }
        handle_message(sh, c, buf, fds);
    }
}

void client_accept(struct shim *sh)
{
    int fd = accept4(sh->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    /* The directory is the daemon's (0700); the daemon's uid only, all the same. */
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != geteuid()) {
        close(fd);
        return;
    }
    (void) client_add(sh, fd, false);
}

void client_event(struct shim *sh, struct client *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        client_flush(c);
        if (!c->out)
            client_want_writable(sh, c, false);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        read_client(sh, c);
}
