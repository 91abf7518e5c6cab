/*
 * Unit test: the route table and the OpenAPI document built into the
 * daemon name the same operations, so an endpoint added, removed or
 * renamed without its document (or the reverse) fails the build's tests.
 */
#include "http/http.h"
#include "tap.h"

#include <cjson/cJSON.h>
#include <ctype.h>

/* "/jobproxy/state/{id}" against a route path "/v1/jobproxy/state/x". */
static bool template_matches(const char *tmpl, const char *path)
{
    while (*tmpl && *path) {
        if (*tmpl == '{') {
            tmpl = strchr(tmpl, '}');
            if (!tmpl)
                return false;
            /* The route's "*" is the whole segment: "{id}:cancel" too. */
            tmpl += 1 + strcspn(tmpl + 1, "/");
            path += strcspn(path, "/");
            continue;
        }
        if (*tmpl++ != *path++)
            return false;
    }
    return !*tmpl && !*path;
}

/* The path a path item's URL starts with: its own servers' (the
 * operator's endpoints are at the root), else the document's, /v1. */
static const char *path_base(const cJSON *item)
{
    const cJSON *servers = cJSON_GetObjectItemCaseSensitive(item, "servers");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(servers, 0), "url");
    if (!cJSON_IsString(url))
        return "/v1";
    const char *host = strstr(url->valuestring, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    return path ? path : "";
}

int main(void)
{
    cJSON *doc = cJSON_ParseWithLength(openapi_json, openapi_json_len);
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    ok(cJSON_IsObject(paths), "the built-in document parses and has paths");

    /* Every route is an operation of the document. */
    for (const struct route *rt = http_routes; rt->method; rt++) {
        char path[256], method[16];
        snprintf(path, sizeof(path), "%s", rt->path);
        char *star = strchr(path, '*');
        if (star)
            *star = 'x';
        size_t i = 0;
        for (; rt->method[i] && i + 1 < sizeof(method); i++)
            method[i] = (char) tolower((unsigned char) rt->method[i]);
        method[i] = '\0';
        bool found = false;
        const cJSON *p;
        cJSON_ArrayForEach(p, paths)
        {
            char full[256];
            snprintf(full, sizeof(full), "%s%s", path_base(p), p->string);
            if (template_matches(full, path) && cJSON_GetObjectItemCaseSensitive(p, method))
                found = true;
        }
        ok(found, "route %s %s is documented", rt->method, rt->path);
    }

    /* Every operation of the document is a route. */
    const cJSON *p;
    cJSON_ArrayForEach(p, paths)
    {
        const cJSON *op;
        cJSON_ArrayForEach(op, p)
        {
            if (streq(op->string, "servers"))
                continue;
            char full[256], upper[16];
            snprintf(full, sizeof(full), "%s%s", path_base(p), p->string);
            size_t i = 0;
            for (; op->string[i] && i + 1 < sizeof(upper); i++)
                upper[i] = (char) toupper((unsigned char) op->string[i]);
            upper[i] = '\0';
            bool found = false;
            for (const struct route *rt = http_routes; rt->method; rt++) {
                char path[256];
                snprintf(path, sizeof(path), "%s", rt->path);
                char *star = strchr(path, '*');
                if (star)
                    *star = 'x';
                if (streq(rt->method, upper) && template_matches(full, path))
                    found = true;
            }
            ok(found, "operation %s %s is served", upper, full);
        }
    }
    cJSON_Delete(doc);
    return tap_done();
}
