/*
 * Unit tests: image references (backends/docker/image.c), table driven -
 * what /images/create is asked for (name, tag or digest, the registry
 * whose credentials apply), the defaults, and the references Docker's
 * grammar refuses - and the X-Registry-Auth header of the config's
 * credentials.
 */
#include "docker/docker-internal.h"
#include "tap.h"
#include "util/json.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_valid(void)
{
    static const struct {
        const char *ref, *name, *tag, *registry;
    } rows[] = {
        {"busybox", "busybox", "latest", "docker.io"},
        {"busybox:1.36", "busybox", "1.36", "docker.io"},
        {"library/busybox:latest", "library/busybox", "latest", "docker.io"},
        {"ocps-test/busybox:1", "ocps-test/busybox", "1", "docker.io"},
        {"my_org/my-image.v2:v_1.0", "my_org/my-image.v2", "v_1.0", "docker.io"},
        {"a__b/c:_x", "a__b/c", "_x", "docker.io"},
        {"127.0.0.1:5000/ocps-test/busybox:1", "127.0.0.1:5000/ocps-test/busybox", "1",
         "127.0.0.1:5000"},
        {"localhost/img", "localhost/img", "latest", "localhost"},
        {"localhost:5000/img:tag", "localhost:5000/img", "tag", "localhost:5000"},
        {"registry.example.org/a/b/c", "registry.example.org/a/b/c", "latest",
         "registry.example.org"},
        {"[::1]:5000/img:2", "[::1]:5000/img", "2", "[::1]:5000"},
        {"localhostx/img", "localhostx/img", "latest", "docker.io"},
        {"busybox@" DIGEST, "busybox", DIGEST, "docker.io"},
        {"127.0.0.1:5000/img@" DIGEST, "127.0.0.1:5000/img", DIGEST, "127.0.0.1:5000"},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        struct image_ref r = {0};
        int ret = docker_image_ref_parse(rows[i].ref, &r);
        ok(ret == 0 && streq_ptr(r.name, rows[i].name) && streq_ptr(r.tag, rows[i].tag) &&
               streq_ptr(r.registry, rows[i].registry),
           "%s -> name %s, tag %s, registry %s (%d: %s %s %s)", rows[i].ref, rows[i].name,
           rows[i].tag, rows[i].registry, ret, r.name, r.tag, r.registry);
        if (ret == 0)
            image_ref_done(&r);
    }
}

static void test_invalid(void)
{
    char long_ref[300], long_tag[140];
    memset(long_ref, 'a', 256);
    long_ref[256] = '\0';
    snprintf(long_tag, sizeof(long_tag), "img:%0129d", 0);
    const char *rows[] = {
        "",
        "Busybox",                                      /* upper case in a path component */
        "busybox:",                                     /* empty tag */
        "busybox:-x",                                   /* a tag starts with a letter, digit or _ */
        "busybox:a b",                                  /* a space in the tag */
        "busybox@sha256:abc",                           /* a short digest */
        "busybox@md5:0123456789abcdef0123456789abcdef", /* not sha256 */
        "busybox@" DIGEST "x",                          /* a long digest */
        "-busybox",                                     /* a component starts with [a-z0-9] */
        "busybox-",                                     /* ... and ends with one */
        "a//b",                                         /* an empty component */
        "/busybox",                                     /* ... first */
        "busybox/",                                     /* ... last */
        "reg_istry.io/img",                             /* _ in a registry host */
        "a/b c",                                        /* a space in a component */
        long_ref,                                       /* 256 characters */
        long_tag,                                       /* a 129-character tag */
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        struct image_ref r = {0};
        int ret = docker_image_ref_parse(rows[i], &r);
        ok(ret == -EINVAL && !r.name, "\"%.40s\" is refused (%d)", rows[i], ret);
        if (ret == 0)
            image_ref_done(&r);
    }
    ok(docker_image_ref_parse(NULL, &(struct image_ref){0}) == -EINVAL, "NULL is refused");
}

/* base64url back to bytes; NULL on a character outside the alphabet. */
static char *b64url_decode(const char *s)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(s);
    char *out = xcalloc(1, n + 1), *o = out;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *c = s; *c && *c != '='; c++) {
        const char *p = strchr(alphabet, *c);
        if (!p) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t) (p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char) ((acc >> bits) & 0xff);
        }
    }
    return out;
}

static void test_registry_auth(void)
{
    struct config_registry regs[] = {
        {"docker.io", "alice", "s3cret"},
        {"127.0.0.1:5001", "bob", "~~~???"}, /* base64 of it has + and /: - and _ here */
    };
    struct config cfg = {.docker_registries = regs, .n_docker_registries = ELEMENTSOF(regs)};
    ok(!docker_registry_auth(&cfg, "127.0.0.1:5000"),
       "no header for a registry without credentials");
    for (size_t i = 0; i < ELEMENTSOF(regs); i++) {
        _cleanup_free_ char *h = docker_registry_auth(&cfg, regs[i].host);
        const char *value = h && startswith(h, "X-Registry-Auth: ") ? h + 17 : NULL;
        _cleanup_free_ char *text = value ? b64url_decode(value) : NULL;
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        ok(value && !strpbrk(value, "+/"), "%s: the header is base64url", regs[i].host);
        ok(j && streq_ptr(json_str(j, "username"), regs[i].username) &&
               streq_ptr(json_str(j, "password"), regs[i].password) &&
               streq_ptr(json_str(j, "serveraddress"), regs[i].host),
           "%s: X-Registry-Auth is base64url of username, password, serveraddress (%s)",
           regs[i].host,
           text ? text
           : h  ? h
                : "none");
        cJSON_Delete(j);
    }
}

int main(void)
{
    test_valid();
    test_invalid();
    test_registry_auth();
    return tap_done();
}
