/*
 * router: the route table's dispatcher. Everything a handler should not
 * have to think about happens here, once: 404 and 405 (with Allow), 406
 * from Accept, 413 from Content-Length or the collected body, the body
 * itself, and the error shape.
 */
#include "http.h"
#include "util/log.h"

#include <ctype.h>
#include <sys/socket.h>

/* ---- replies ---- */

enum MHD_Result http_queue(struct request *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    (void) MHD_add_response_header(resp, "Server", "ocps-proxyd/" OCPS_VERSION);
    (void) MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result http_reply_text(struct request *r, unsigned status, const char *content_type,
                                char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return http_queue(r, status, resp);
}

static void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            /* XML 1.0 cannot carry most control characters at all. */
            if ((unsigned char) *s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
                fputs("\xef\xbf\xbd", f);
            else
                fputc(*s, f);
        }
}

static void xml_value(FILE *f, const cJSON *j, const char *name);

static void xml_scalar(FILE *f, const cJSON *j)
{
    if (cJSON_IsString(j))
        xml_escape(f, j->valuestring);
    else if (cJSON_IsNumber(j)) {
        char *s = cJSON_PrintUnformatted(j);
        fputs(s, f);
        free(s);
    } else if (cJSON_IsBool(j))
        fputs(cJSON_IsTrue(j) ? "true" : "false", f);
}

static void xml_value(FILE *f, const cJSON *j, const char *name)
{
    if (cJSON_IsArray(j)) {
        /* JAXB's form: a list is its elements repeated under the list's name. */
        const cJSON *i;
        cJSON_ArrayForEach(i, j) xml_value(f, i, name);
        return;
    }
    if (cJSON_IsNull(j))
        return;
    fprintf(f, "<%s>", name);
    if (cJSON_IsObject(j)) {
        bool map = streq(name, "env") || streq(name, "tags");
        const cJSON *i;
        cJSON_ArrayForEach(i, j)
        {
            if (map) {
                fputs("<entry key=\"", f);
                xml_escape(f, i->string);
                fputs("\">", f);
                xml_scalar(f, i);
                fputs("</entry>", f);
            } else
                xml_value(f, i, i->string);
        }
    } else
        xml_scalar(f, j);
    fprintf(f, "</%s>", name);
}

char *http_json_to_xml(const cJSON *j, const char *root)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    xml_value(f, j, root);
    fputc('\n', f);
    fclose(f);
    return buf;
}

enum MHD_Result http_reply_json(struct request *r, unsigned status, cJSON *body,
                                const char *xml_root)
{
    char *text;
    const char *ct;
    if (r->out == MEDIA_XML) {
        text = http_json_to_xml(body, xml_root);
        ct = "application/xml";
    } else {
        char *j = cJSON_PrintUnformatted(body);
        if (!j)
            abort();
        text = xasprintf("%s\n", j);
        free(j);
        ct = "application/json";
    }
    cJSON_Delete(body);
    return http_reply_text(r, status, ct, text, strlen(text));
}

enum MHD_Result http_reply_error(struct request *r, const struct error *err)
{
    int status = error_http_status(err->code);
    if (status >= 500)
        log_error("%s %s: %d %s", r->route ? r->route->method : "-",
                  r->route ? r->route->path : "-", status, error_message(err));
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "code", status);
    cJSON_AddStringToObject(j, "message", error_message(err));
    if (r->out != MEDIA_XML)
        r->out = MEDIA_JSON;
    return http_reply_json(r, (unsigned) status, j, "error");
}

enum MHD_Result http_reply_status(struct request *r, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "code", status);
    cJSON_AddStringToObject(j, "message", msg);
    if (r->out != MEDIA_XML)
        r->out = MEDIA_JSON;
    return http_reply_json(r, status, j, "error");
}

/* ---- matching ---- */

static bool path_match(const char *pattern, const char *url, const char **ret_param)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') {
        if (strncmp(pattern, url, n - 1) != 0)
            return false;
        const char *p = url + n - 1;
        if (!*p || strchr(p, '/'))
            return false;
        *ret_param = p;
        return true;
    }
    *ret_param = NULL;
    return streq(pattern, url);
}

/* ---- Accept ---- */

struct media_range {
    char type[64];
    double q;
};

static bool range_matches(const char *range, const char *type)
{
    if (streq(range, "*/*"))
        return true;
    size_t n = strlen(range);
    if (n >= 2 && streq(range + n - 2, "/*"))
        return strncasecmp(range, type, n - 1) == 0;
    return strcaseeq(range, type);
}

/* Picks the reply format from offers; 0 when nothing offered is acceptable. */
static enum media negotiate(const char *accept, unsigned offers)
{
    static const struct {
        enum media m;
        const char *types[3];
    } known[] = {
        {MEDIA_JSON, {"application/json", NULL}},
        {MEDIA_XML, {"application/xml", "text/xml", NULL}},
        {MEDIA_TEXT, {"text/plain", NULL}},
        {MEDIA_YAML, {"application/yaml", "application/x-yaml", "text/yaml"}},
    };
    enum media first = 0;
    for (size_t i = 0; i < ELEMENTSOF(known); i++)
        if (offers & known[i].m) {
            first = known[i].m;
            break;
        }
    if (isempty(accept))
        return first;

    double best_q = 0;
    int best_spec = -1;
    enum media best = 0;
    for (size_t k = 0; k < ELEMENTSOF(known); k++) {
        if (!(offers & known[k].m))
            continue;
        /* The q of the most specific range matching any of this format's types. */
        double q = -1;
        int spec = -1;
        const char *p = accept;
        while (*p) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t) (end - p) : strlen(p);
            char item[128];
            snprintf(item, sizeof(item), "%.*s", (int) MIN(len, sizeof(item) - 1), p);
            p = end ? end + 1 : p + len;

            char *semi = strchr(item, ';');
            double iq = 1;
            if (semi) {
                *semi = '\0';
                for (char *a = semi + 1; a && *a;) {
                    while (isspace((unsigned char) *a))
                        a++;
                    if ((a[0] == 'q' || a[0] == 'Q') && a[1] == '=')
                        iq = strtod(a + 2, NULL);
                    a = strchr(a, ';');
                    if (a)
                        a++;
                }
            }
            char *t = item;
            while (isspace((unsigned char) *t))
                t++;
            for (char *e = t + strlen(t); e > t && isspace((unsigned char) e[-1]);)
                *--e = '\0';
            int s = streq(t, "*/*") ? 0 : (strchr(t, '*') ? 1 : 2);
            for (size_t i = 0; i < ELEMENTSOF(known[k].types) && known[k].types[i]; i++)
                if (range_matches(t, known[k].types[i]) && s > spec) {
                    spec = s;
                    q = iq;
                }
        }
        if (q > best_q || (q == best_q && q > 0 && spec > best_spec)) {
            best_q = q;
            best_spec = spec;
            best = known[k].m;
        }
    }
    return best_q > 0 ? best : 0;
}

/* ---- dispatch ---- */

static struct request *request_new(struct MHD_Connection *conn, const struct http_ctx *ctx)
{
    struct request *r = xcalloc(1, sizeof(*r));
    r->conn = conn;
    r->ctx = ctx;
    r->out = MEDIA_JSON;
    /* Peer credentials matter on unix sockets only; MHD kept the peer's
     * address from accept(), so TCP requests cost no extra syscall. */
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ai && ai->client_addr && ai->client_addr->sa_family == AF_UNIX && ci) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            r->peer_uid = cred.uid;
            r->peer_restricted = cred.uid != 0 && cred.uid != geteuid();
        }
    }
    return r;
}

enum MHD_Result http_dispatch(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    const struct http_ctx *ctx = cls;
    struct request *r = *req_cls;

    if (!r) {
        r = request_new(conn, ctx);
        *req_cls = r;

        const char *m = streq(method, "HEAD") ? "GET" : method;
        bool path_known = false;
        unsigned allow_n = 0;
        char allow[64] = "";
        for (const struct route *rt = http_routes; rt->method; rt++) {
            const char *param;
            if (!path_match(rt->path, url, &param))
                continue;
            path_known = true;
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                     allow_n++ ? ", " : "", rt->method);
            if (streq(rt->method, m)) {
                r->route = rt;
                r->param = param;
            }
        }
        const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
        if (!r->route) {
            r->out = negotiate(accept, MEDIA_JSON | MEDIA_XML);
            if (!path_known)
                return http_reply_status(r, 404, "no such endpoint: %s %s", method, url);
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "code", 405);
            _cleanup_free_ char *msg =
                xasprintf("method %s not allowed on %s; allowed: %s", method, url, allow);
            cJSON_AddStringToObject(j, "message", msg);
            char *text =
                r->out == MEDIA_XML ? http_json_to_xml(j, "error") : cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
            (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                           r->out == MEDIA_XML ? "application/xml"
                                                               : "application/json");
            (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
            return http_queue(r, 405, resp);
        }
        enum media out = negotiate(accept, r->route->offers);
        if (!out) {
            r->out = MEDIA_JSON;
            return http_reply_status(
                r, 406, "cannot answer in any type the Accept header names (%s)", accept);
        }
        r->out = out;

        if (r->route->body) {
            const char *cl =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(cl, &end, 10);
                if (errno || *end || n > ctx->cfg->max_body)
                    return http_reply_status(r, 413,
                                             "request body of %s bytes is over the limit of %zu "
                                             "bytes",
                                             cl, ctx->cfg->max_body);
            }
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        /* Bodies on routes that take none are read and dropped, as HTTP allows. */
        if (r->route && r->route->body && !r->too_large) {
            if (r->len + *upload_data_size > ctx->cfg->max_body) {
                r->too_large = true;
                free(r->body);
                r->body = NULL;
                r->len = 0;
            } else {
                r->body = xgrow(r->body, &r->alloc, r->len + *upload_data_size + 1, 1);
                memcpy(r->body + r->len, upload_data, *upload_data_size);
                r->len += *upload_data_size;
                r->body[r->len] = '\0';
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (r->too_large)
        return http_reply_status(r, 413, "request body is over the limit of %zu bytes",
                                 ctx->cfg->max_body);
    return r->route->handler(r);
}

void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct request *r = *req_cls;
    if (!r)
        return;
    free(r->body);
    free(r);
    *req_cls = NULL;
}
