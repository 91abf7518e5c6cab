/*
 * image: the image of a container task. Its reference parsed by Docker's
 * grammar (at submit, so a bad one is the client's 400), the registry
 * credentials of the config as the Engine API's X-Registry-Auth header,
 * and the pull, with its progress in the task's system log.
 */
#include "docker-internal.h"
#include "util/json.h"

#include <ctype.h>

void image_ref_done(struct image_ref *r)
{
    free(r->name);
    free(r->tag);
    free(r->registry);
}

static bool ref_component_ok(const char *s, size_t n)
{
    /* [a-z0-9]+ ([._-]|__)[a-z0-9]+ ... as Docker's reference grammar */
    if (n == 0 || !(islower(s[0]) || isdigit(s[0])) || !(islower(s[n - 1]) || isdigit(s[n - 1])))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower(s[i]) || isdigit(s[i]) || strchr("._-", s[i])))
            return false;
    return true;
}

int docker_image_ref_parse(const char *ref, struct image_ref *ret)
{
    if (isempty(ref) || strlen(ref) > 255)
        return -EINVAL;
    _cleanup_free_ char *s = xstrdup(ref);
    char *tag = NULL;
    char *at = strchr(s, '@');
    if (at) {
        *at = '\0';
        tag = at + 1;
        if (!startswith(tag, "sha256:") || strlen(tag) != 7 + 64 ||
            strspn(tag + 7, "0123456789abcdef") != 64)
            return -EINVAL;
    } else {
        char *slash = strrchr(s, '/');
        char *colon = strrchr(slash ? slash : s, ':');
        if (colon) {
            *colon = '\0';
            tag = colon + 1;
            size_t n = strlen(tag);
            if (n == 0 || n > 128 || !(isalnum(tag[0]) || tag[0] == '_'))
                return -EINVAL;
            for (size_t i = 0; i < n; i++)
                if (!(isalnum(tag[i]) || strchr("_.-", tag[i])))
                    return -EINVAL;
        }
    }
    /* The first component is a registry host if it looks like one. */
    const char *path = s;
    _cleanup_free_ char *registry = NULL;
    char *slash = strchr(s, '/');
    if (slash && (memchr(s, '.', slash - s) || memchr(s, ':', slash - s) ||
                  ((size_t) (slash - s) == strlen("localhost") && startswith(s, "localhost")))) {
        registry = xstrndup(s, slash - s);
        for (const char *c = registry; *c; c++)
            if (!(isalnum(*c) || strchr(".-:[]", *c)))
                return -EINVAL;
        path = slash + 1;
    }
    for (const char *c = path;;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t) (e - c) : strlen(c);
        if (!ref_component_ok(c, n))
            return -EINVAL;
        if (!e)
            break;
        c = e + 1;
    }
    *ret = (struct image_ref){
        .name = xstrdup(s),
        .tag = xstrdup(tag ? tag : "latest"),
        .registry = registry ? TAKE_PTR(registry) : xstrdup("docker.io"),
    };
    return 0;
}

char *docker_registry_auth(const struct config *cfg, const char *registry)
{
    for (size_t i = 0; i < cfg->n_docker_registries; i++) {
        const struct config_registry *r = &cfg->docker_registries[i];
        if (!streq(r->host, registry))
            continue;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "username", r->username);
        cJSON_AddStringToObject(j, "password", r->password);
        cJSON_AddStringToObject(j, "serveraddress", r->host);
        _cleanup_free_ char *text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        /* base64url, as the Engine API asks */
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t n = strlen(text);
        char *out = xmalloc(strlen("X-Registry-Auth: ") + (n + 2) / 3 * 4 + 1);
        char *o = stpcpy(out, "X-Registry-Auth: ");
        for (size_t k = 0; k < n; k += 3) {
            uint32_t v = (uint32_t) (unsigned char) text[k] << 16;
            if (k + 1 < n)
                v |= (uint32_t) (unsigned char) text[k + 1] << 8;
            if (k + 2 < n)
                v |= (unsigned char) text[k + 2];
            *o++ = b64[(v >> 18) & 63];
            *o++ = b64[(v >> 12) & 63];
            *o++ = k + 1 < n ? b64[(v >> 6) & 63] : '=';
            *o++ = k + 2 < n ? b64[v & 63] : '=';
        }
        *o = '\0';
        return out;
    }
    return NULL;
}

struct pull {
    struct dtask *t;
    char *error;
    char last[256];
};

static int pull_line(void *userdata, const char *line, size_t len)
{
    struct pull *p = userdata;
    cJSON *j = cJSON_ParseWithLength(line, len);
    if (!j)
        return 0;
    const char *error = json_str(j, "error");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "errorDetail");
    if (!error)
        error = json_str(detail, "message");
    if (error) {
        free(p->error);
        p->error = xstrdup(error);
        dtask_syslog(p->t, "pull: error: %s", error);
    } else {
        const char *status = json_str(j, "status"), *id = json_str(j, "id");
        char now[256];
        snprintf(now, sizeof(now), "%s%s%s", id ? id : "", id ? ": " : "", status ? status : "");
        /* Progress ticks repeat the status: one line per change. */
        if (status && !streq(now, p->last)) {
            dtask_syslog(p->t, "pull: %s", now);
            snprintf(p->last, sizeof(p->last), "%s", now);
        }
    }
    cJSON_Delete(j);
    return 0;
}

int docker_pull_image(struct dtask *t, struct error *err)
{
    struct docker_state *ds = t->ds;
    const char *image = t->task->container->image;
    int st;

    struct image_ref ref;
    if (docker_image_ref_parse(image, &ref) < 0)
        return error_set(err, -EINVAL, "invalid image reference \"%s\"", image);
    _cleanup_free_ char *n = rest_escape(ref.name), *tag = rest_escape(ref.tag);
    _cleanup_free_ char *create = xasprintf("/images/create?fromImage=%s&tag=%s", n, tag);
    _cleanup_free_ char *auth = docker_registry_auth(ds->cfg, ref.registry);
    image_ref_done(&ref);

    struct pull p = {.t = t};
    int fds[2];
    struct engine_stream s = {.line = pull_line,
                              .userdata = &p,
                              .abort_fds = fds,
                              .n_abort_fds = dtask_abort_fds(t, fds),
                              .header = auth};
    dtask_syslog(t, "pull: %s", image);
    st = engine_stream(ds->engine, "POST", create, NULL, &s, err);
    if (st < 0) {
        free(p.error);
        return st;
    }
    if (st >= 400 || p.error) {
        /* dockerd answered: the registry or the name refused the image
         * (unknown tag, no credentials), which is the task's to fix. */
        int r =
            error_set(err, -ENOENT, "pull %s: %s", image, p.error ? p.error : error_message(err));
        free(p.error);
        return r;
    }
    dtask_syslog(t, "pull: %s done", image);
    return 0;
}
