/*
 * reply: every reply the HTTP layer sends, built in one place: the common
 * headers, the JSON or XML form of a body, and the one error shape
 * {"code": status, "message": "..."} whose status comes from
 * error_http_status() and nowhere else.
 */
#include "http.h"
#include "quota.h"
#include "util/log.h"

enum MHD_Result http_queue(struct request *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    (void) MHD_add_response_header(resp, "Server", HTTP_SERVER_NAME);
    (void) MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    if (ret == MHD_YES)
        r->status = status;
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result http_reply(struct request *r, unsigned status, const char *content_type, char *text,
                           size_t len, const struct http_extra *extra)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (const struct http_extra *e = extra; e && e->name; e++)
        if (e->header)
            (void) MHD_add_response_header(resp, e->name, e->value);
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

char *http_format(enum media out, cJSON *body, const char *xml_root, const char **ret_type)
{
    char *text;
    if (out == MEDIA_XML) {
        text = http_json_to_xml(body, xml_root);
        *ret_type = "application/xml";
    } else {
        char *j = cJSON_PrintUnformatted(body);
        if (!j)
            abort();
        text = xasprintf("%s\n", j);
        free(j);
        *ret_type = "application/json";
    }
    cJSON_Delete(body);
    return text;
}

enum MHD_Result http_reply_json(struct request *r, unsigned status, cJSON *body,
                                const char *xml_root)
{
    const char *type;
    char *text = http_format(r->out, body, xml_root, &type);
    return http_reply(r, status, type, text, strlen(text), NULL);
}

cJSON *http_error_json(const struct error *err, const struct http_extra *extra)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "code", error_http_status(err->code));
    cJSON_AddStringToObject(j, "message", error_message(err));
    for (const struct http_extra *e = extra; e && e->name; e++)
        if (!e->header)
            cJSON_AddStringToObject(j, e->name, e->value);
    return j;
}

enum MHD_Result http_reply_error_extra(struct request *r, const struct error *err,
                                       const struct http_extra *extra)
{
    int status = error_http_status(err->code);
    if (status >= 500)
        log_error("%s %s: %d %s", r->route ? r->route->method : "-",
                  r->route ? r->route->path : "-", status, error_message(err));
    /* An error is told in JSON unless the client asked for XML: a text or
     * YAML route has no error form of its own. */
    const char *type;
    char *text = http_format(r->out == MEDIA_XML ? MEDIA_XML : MEDIA_JSON,
                             http_error_json(err, extra), "error", &type);
    if (status != 503)
        return http_reply(r, (unsigned) status, type, text, strlen(text), extra);
    /* A 503 is a passing state (a full pool, a full disk): say when to ask again. */
    size_t n = 0;
    while (extra && extra[n].name)
        n++;
    _cleanup_free_ struct http_extra *all = xcalloc(n + 2, sizeof(*all));
    if (n)
        memcpy(all, extra, n * sizeof(*all));
    all[n] = (struct http_extra){
        .header = true, .name = MHD_HTTP_HEADER_RETRY_AFTER, .value = HTTP_RETRY_AFTER};
    return http_reply(r, (unsigned) status, type, text, strlen(text), all);
}

enum MHD_Result http_reply_refused(struct request *r, const struct error *err)
{
    if (error_http_status(err->code) != 429)
        return http_reply_error(r, err);
    char after[16];
    snprintf(after, sizeof(after), "%d", QUOTA_RETRY_AFTER);
    return http_reply_error_extra(
        r, err,
        (const struct http_extra[]){{.header = true, .name = "Retry-After", .value = after}, {}});
}
