/*
 * audit: the daemon's audit trail, one line per submit, cancel and delete,
 * accepted or refused, and per request refused at authentication; see
 * http_audit() in http.h for the line's shape.
 */
#include "http.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>

void http_audit_value(FILE *f, const char *v)
{
    bool bare = !isempty(v);
    for (const char *c = v; bare && *c; c++)
        bare = (unsigned char) *c > 0x20 && *c != '"' && *c != '=' && *c != '\\' && *c != 0x7f;
    if (bare) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const char *c = v ? v : ""; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if ((unsigned char) *c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", (unsigned char) *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* Where the caller is: its uid on a unix socket, else its address. */
static void audit_peer(FILE *f, struct request *r)
{
    if (r->unix_peer) {
        fprintf(f, " uid=%ld", r->peer_uid == (uid_t) -1 ? -1L : (long) r->peer_uid);
        return;
    }
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ai ? ai->client_addr : NULL;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    fprintf(f, sa && sa->sa_family == AF_INET6 ? " address=[%s]:%u" : " address=%s:%u", host, port);
}

void http_audit(struct request *r, const char *action, const char *user, const char *id,
                const char *outcome, const struct error *err)
{
    _cleanup_free_ char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (!f)
        abort();
    const struct principal *p = r->principal;
    fprintf(f, "audit action=%s principal=", action);
    http_audit_value(f, p ? p->name : "-");
    fprintf(f, " via=%s", p ? principal_via_to_string(p->via) : "-");
    audit_peer(f, r);
    fputs(" user=", f);
    http_audit_value(f, user ? user : "-");
    fprintf(f, " task=%s outcome=%s", id ? id : "-", outcome);
    if (err && err->code < 0) {
        fprintf(f, " status=%d reason=", error_http_status(err->code));
        http_audit_value(f, error_message(err));
    }
    /* Refused before a handler: which endpoint, by its route (our words,
     * never the client's path). */
    if (streq(action, "authenticate") && r->route)
        fprintf(f, " request=\"%s %s\"", r->route->method, r->route->path);
    fclose(f);
    LOG_CONTEXT_TASK(id, p ? p->name : NULL);
    /* Whatever log_level says: an audit trail is not chatter to turn down. */
    log_to(STDERR_FILENO, LOG_LEVEL_INFO, "%s", line);
}
