/*
 * config: defaults, the YAML file, and the machine's capacity. The file
 * goes through the same YAML reader as tasks (task_yaml_parse) and the
 * same unit parsers, so "8G" and "10s" mean the same everywhere.
 */
#include "config.h"
#include "config-values.h"
#include "task.h"
#include "tls.h"
#include "util/log.h"

#include <sys/stat.h>
#include <sys/sysinfo.h>

void config_init(struct config *c)
{
    *c = (struct config){
        .data_dir = xstrdup(CONFIG_DEFAULT_DATA_DIR),
        .log_level = LOG_LEVEL_INFO,
        .default_cores = 1,
        .default_memory = 1ULL << 30,
        .bare_units = task_units_jobproxy,
        .retention = CONFIG_DEFAULT_RETENTION,
        .kill_grace = 10,
        .max_body = 1 << 20,
        .http_connections = 1024,
        .http_followers = 256,
        .http_client_connections = 128,
        .http_timeout = 120,
        .http_header_timeout = 30,
        .http_body_timeout = 60,
        .pids_limit = 4096,
        .cgroup_name = xstrdup("ocps-proxy"),
        .docker_pull = DOCKER_PULL_IF_NOT_PRESENT,
        .docker_port_address = xstrdup("127.0.0.1"),
        .cmd_backend = xstrdup("process"),
    };
    policy_set_init(&c->policy);
}

void config_add_listener(struct config *c, const char *address, const char *unauthenticated)
{
    c->listen = xrealloc(c->listen, (c->n_listen + 1) * sizeof(*c->listen));
    c->listen[c->n_listen++] = (struct config_listener){
        .address = xstrdup(address),
        .unauthenticated = unauthenticated ? xstrdup(unauthenticated) : NULL,
    };
}

static void tls_done(struct config_tls *t)
{
    free(t->cert);
    /* A private key does not outlive its use in freed memory. */
    if (t->key)
        explicit_bzero(t->key, strlen(t->key));
    free(t->key);
    free(t->client_ca);
    *t = (struct config_tls){};
}

void config_clear_listeners(struct config *c)
{
    for (size_t i = 0; i < c->n_listen; i++) {
        free(c->listen[i].address);
        free(c->listen[i].unauthenticated);
        tls_done(&c->listen[i].tls);
        tls_done(&c->listen[i].pem);
    }
    free(c->listen);
    c->listen = NULL;
    c->n_listen = 0;
}

/* What every listener's options must be, wherever they were given. */
static int check_listener(const char *key, const char *address, const char *unauthenticated,
                          struct error *err)
{
    if (isempty(address))
        return error_set(err, -EINVAL, "%s: needs an address", key);
    if (startswith(address, "https://") && isempty(address + STRLEN("https://")))
        return error_set(err, -EINVAL, "%s: https:// needs HOST:PORT after it", key);
    if (!unauthenticated)
        return 0;
    if (startswith(address, "unix:"))
        return error_set(err, -EINVAL,
                         "%s: unauthenticated is for TCP listeners; on a unix socket the "
                         "caller's uid names it",
                         key);
    if (!policy_name_valid(unauthenticated))
        return error_set(err, -EINVAL,
                         "%s: unauthenticated: \"%s\" is not a principal's name (1 to %d "
                         "letters, digits and ._@-)",
                         key, unauthenticated, POLICY_NAME_MAX);
    return 0;
}

int config_add_listener_arg(struct config *c, const char *arg, struct error *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return error_set(err, -EINVAL,
                         "--listen-unauthenticated: want ADDR=PRINCIPAL "
                         "(127.0.0.1:8081=jobproxy-clients), not \"%s\"",
                         arg);
    _cleanup_free_ char *address = xstrndup(arg, (size_t) (eq - arg));
    int r = check_listener("--listen-unauthenticated", address, eq + 1, err);
    if (r < 0)
        return r;
    config_add_listener(c, address, eq + 1);
    return 0;
}

/* tls: {cert, key, client_ca}, over what t holds. */
static int load_tls(struct config_tls *t, const char *key, const cJSON *v, struct error *err)
{
    int r = config_expect_object(v, key, err);
    if (r < 0)
        return r;
    const cJSON *f;
    cJSON_ArrayForEach(f, v)
    {
        _cleanup_free_ char *fk = xasprintf("%s.%s", key, f->string);
        if (streq(f->string, "cert"))
            r = config_get_string(f, fk, &t->cert, err);
        else if (streq(f->string, "key"))
            r = config_get_string(f, fk, &t->key, err);
        else if (streq(f->string, "client_ca"))
            r = config_get_string(f, fk, &t->client_ca, err);
        else
            r = error_set(err, -EINVAL, "unknown setting \"%s\" (cert, key, client_ca)", fk);
        if (r < 0)
            return r;
    }
    return 0;
}

/* One entry of listen: an address, or a mapping {address, unauthenticated, tls, metrics}. */
static int load_listener(struct config *c, const char *key, const cJSON *v, struct error *err)
{
    _cleanup_free_ char *address = NULL, *unauthenticated = NULL, *metrics = NULL;
    struct config_tls tls = {};
    bool have_tls = false;
    int r = 0;
    if (cJSON_IsString(v))
        address = xstrdup(v->valuestring);
    else if (cJSON_IsObject(v)) {
        const cJSON *f;
        cJSON_ArrayForEach(f, v)
        {
            _cleanup_free_ char *fk = xasprintf("%s.%s", key, f->string);
            if (streq(f->string, "address"))
                r = config_get_string(f, fk, &address, err);
            else if (streq(f->string, "unauthenticated"))
                r = config_get_string(f, fk, &unauthenticated, err);
            else if (streq(f->string, "tls")) {
                r = load_tls(&tls, fk, f, err);
                have_tls = true;
            } else if (streq(f->string, "metrics")) {
                r = config_get_string(f, fk, &metrics, err);
                if (r >= 0 && !streq(metrics, "public") && !streq(metrics, "admin"))
                    r = error_set(err, -EINVAL,
                                  "%s: must be public (readable without a token) or admin, not "
                                  "\"%s\"",
                                  fk, metrics);
            } else
                r = error_set(err, -EINVAL, "unknown setting \"%s\"", fk);
            if (r < 0)
                break;
        }
    } else
        r = error_set(err, -EINVAL,
                      "%s: must be an address (HOST:PORT, https://HOST:PORT, unix:/path) or a "
                      "mapping {address: ..., unauthenticated: PRINCIPAL, tls: {...}, "
                      "metrics: public}",
                      key);
    if (r >= 0)
        r = check_listener(key, address, unauthenticated, err);
    if (r >= 0 && have_tls && !startswith(address, "https://"))
        r = error_set(err, -EINVAL, "%s: tls is for an https://HOST:PORT listener, not %s", key,
                      address);
    if (r < 0) {
        tls_done(&tls);
        return r;
    }
    config_add_listener(c, address, unauthenticated);
    c->listen[c->n_listen - 1].tls = tls;
    c->listen[c->n_listen - 1].metrics_public = metrics && streq(metrics, "public");
    return 0;
}

/* listen: one entry, or a list of them; replaces the listeners so far. */
static int load_listen(struct config *c, const cJSON *v, struct error *err)
{
    config_clear_listeners(c);
    if (!cJSON_IsArray(v))
        return load_listener(c, "listen", v, err);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        _cleanup_free_ char *key = xasprintf("listen[%zu]", i++);
        int r = load_listener(c, key, it, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The file of one tls setting, into *ret. */
static int read_tls_file(const char *setting, const char *path, char **ret, struct error *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_file(path, 1 << 20, &text, &len);
    if (r < 0)
        return error_set_errno(err, r, "tls.%s %s", setting, path);
    if (strlen(text) != len)
        return error_set(err, -EINVAL, "tls.%s %s: not a PEM file (a NUL byte inside)", setting,
                         path);
    *ret = TAKE_PTR(text);
    return 0;
}

int config_read_tls(struct config *c, struct error *err)
{
    for (size_t i = 0; i < c->n_listen; i++) {
        struct config_listener *l = &c->listen[i];
        if (!config_listener_is_tls(l))
            continue;
        const struct config_tls paths = {
            .cert = l->tls.cert ? l->tls.cert : c->tls.cert,
            .key = l->tls.key ? l->tls.key : c->tls.key,
            .client_ca = l->tls.client_ca ? l->tls.client_ca : c->tls.client_ca,
        };
        if (!paths.cert || !paths.key)
            return error_set(err, -EINVAL,
                             "listen %s: an https listener needs a certificate and its key: "
                             "tls: {cert: FILE, key: FILE} in the config (or in the listener's "
                             "own tls:)",
                             l->address);
        if (paths.client_ca && l->unauthenticated)
            return error_set(err, -EINVAL,
                             "listen %s: a listener with a client CA takes no unauthenticated "
                             "requests: every connection presents a certificate",
                             l->address);
        tls_done(&l->pem);
        int r = read_tls_file("cert", paths.cert, &l->pem.cert, err);
        if (r >= 0)
            r = read_tls_file("key", paths.key, &l->pem.key, err);
        if (r >= 0 && paths.client_ca)
            r = read_tls_file("client_ca", paths.client_ca, &l->pem.client_ca, err);
        if (r >= 0)
            r = tls_check(&paths, &l->pem, err);
        if (r < 0) {
            tls_done(&l->pem);
            return error_wrap(err, "listen %s", l->address);
        }
        struct stat st;
        if (stat(paths.key, &st) == 0 && (st.st_mode & 007))
            log_warn("listen %s: tls.key %s can be read by any account (mode %04o): chmod 600 "
                     "it",
                     l->address, paths.key, (unsigned) (st.st_mode & 07777));
    }
    return 0;
}

void config_done(struct config *c)
{
    config_clear_listeners(c);
    tls_done(&c->tls);
    strv_free(c->denied_users);
    free(c->host_root);
    strv_free(c->backends);
    free(c->data_dir);
    free(c->cgroup_name);
    free(c->shim_path);
    free(c->docker_socket);
    free(c->docker_port_address);
    free(c->docker_network);
    free(c->docker_instance);
    free(c->tes_id);
    free(c->tes_name);
    free(c->tes_organization_name);
    free(c->tes_organization_url);
    strv_free(c->tes_storage);
    for (size_t i = 0; i < c->n_docker_registries; i++) {
        free(c->docker_registries[i].host);
        free(c->docker_registries[i].username);
        free(c->docker_registries[i].password);
    }
    free(c->docker_registries);
    free(c->slurm_socket);
    free(c->slurm_url);
    free(c->slurm_jwt_key);
    free(c->slurm_token_user);
    free(c->slurm_token_file);
    free(c->slurm_partition);
    free(c->slurm_account);
    free(c->slurm_qos);
    free(c->slurm_output_dir);
    free(c->cmd_backend);
    policy_set_done(&c->policy);
    memset(c, 0, sizeof(*c));
}

/* docker.registries: {HOST: {username: U, password: P}, ...} */
static int load_registries(struct config *c, const char *key, const cJSON *obj, struct error *err)
{
    const cJSON *v;
    int r = config_expect_object(obj, key, err);
    if (r < 0)
        return r;
    cJSON_ArrayForEach(v, obj)
    {
        _cleanup_free_ char *k = xasprintf("%s.%s", key, v->string);
        r = config_expect_object(v, k, err);
        if (r < 0)
            return r;
        struct config_registry reg = {.host = xstrdup(v->string)};
        const cJSON *f;
        cJSON_ArrayForEach(f, v)
        {
            _cleanup_free_ char *fk = xasprintf("%s.%s", k, f->string);
            if (streq(f->string, "username"))
                r = config_get_string(f, fk, &reg.username, err);
            else if (streq(f->string, "password"))
                r = config_get_string(f, fk, &reg.password, err);
            else
                r = error_set(err, -EINVAL, "unknown setting \"%s\"", fk);
            if (r < 0)
                break;
        }
        if (r >= 0 && (!reg.username || !reg.password))
            r = error_set(err, -EINVAL, "%s: needs username and password", k);
        if (r < 0) {
            free(reg.host);
            free(reg.username);
            free(reg.password);
            return r;
        }
        c->docker_registries =
            xrealloc(c->docker_registries, (c->n_docker_registries + 1) * sizeof(reg));
        c->docker_registries[c->n_docker_registries++] = reg;
    }
    return 0;
}

static int load_section(struct config *c, const char *section, const cJSON *obj, struct error *err)
{
    const cJSON *v;
    int r = config_expect_object(obj, section, err);
    if (r < 0)
        return r;
    cJSON_ArrayForEach(v, obj)
    {
        const char *k = v->string;
        _cleanup_free_ char *key = xasprintf("%s.%s", section, k);
        if (streq(section, "capacity") && streq(k, "cores"))
            r = config_get_cores(v, key, &c->capacity_cores, err);
        else if (streq(section, "capacity") && streq(k, "memory"))
            r = config_get_size(v, key, 1ULL << 30, &c->capacity_memory, err);
        else if (streq(section, "defaults") && streq(k, "cores"))
            r = config_get_cores(v, key, &c->default_cores, err);
        else if (streq(section, "defaults") && streq(k, "memory"))
            r = config_get_size(v, key, 1ULL << 30, &c->default_memory, err);
        else if (streq(section, "bare_units") && streq(k, "memory"))
            r = config_get_unit(v, key, parse_size_unit, "M or G", &c->bare_units.memory, err);
        else if (streq(section, "bare_units") && streq(k, "time"))
            r = config_get_unit(v, key, parse_duration_unit, "s, m or h", &c->bare_units.time, err);
        else if (streq(section, "process") && streq(k, "pids_limit")) {
            uint64_t n;
            r = config_get_size(v, key, 1, &n, err);
            c->pids_limit = n;
        } else if (streq(section, "process") && streq(k, "cgroup"))
            r = config_get_string(v, key, &c->cgroup_name, err);
        else if (streq(section, "process") && streq(k, "shim"))
            r = config_get_string(v, key, &c->shim_path, err);
        else if (streq(section, "docker") && streq(k, "socket"))
            r = config_get_string(v, key, &c->docker_socket, err);
        else if (streq(section, "docker") && streq(k, "pull")) {
            char buf[64];
            const char *p;
            r = config_scalar(v, key, buf, &p, err);
            if (r >= 0 && streq(p, "if-not-present"))
                c->docker_pull = DOCKER_PULL_IF_NOT_PRESENT;
            else if (r >= 0 && streq(p, "always"))
                c->docker_pull = DOCKER_PULL_ALWAYS;
            else if (r >= 0 && streq(p, "never"))
                c->docker_pull = DOCKER_PULL_NEVER;
            else if (r >= 0)
                r = error_set(err, -EINVAL,
                              "%s: must be if-not-present, always or never, not \"%s\"", key, p);
        } else if (streq(section, "docker") && streq(k, "port_address"))
            r = config_get_string(v, key, &c->docker_port_address, err);
        else if (streq(section, "docker") && streq(k, "network"))
            r = config_get_string(v, key, &c->docker_network, err);
        else if (streq(section, "docker") && streq(k, "keep_containers"))
            r = config_get_bool(v, key, &c->docker_keep_containers, err);
        else if (streq(section, "docker") && streq(k, "when_down")) {
            char buf[64];
            const char *p;
            r = config_scalar(v, key, buf, &p, err);
            if (r >= 0 && (streq(p, "reject") || streq(p, "queue")))
                c->docker_queue_when_down = streq(p, "queue");
            else if (r >= 0)
                r = error_set(err, -EINVAL, "%s: must be reject or queue, not \"%s\"", key, p);
        } else if (streq(section, "docker") && streq(k, "instance"))
            r = config_get_string(v, key, &c->docker_instance, err);
        else if (streq(section, "docker") && streq(k, "registries"))
            r = load_registries(c, key, v, err);
        else if (streq(section, "tes") && streq(k, "id"))
            r = config_get_string(v, key, &c->tes_id, err);
        else if (streq(section, "tes") && streq(k, "name"))
            r = config_get_string(v, key, &c->tes_name, err);
        else if (streq(section, "tes") && streq(k, "organization"))
            r = load_section(c, "tes.organization", v, err);
        else if (streq(section, "tes.organization") && streq(k, "name"))
            r = config_get_string(v, key, &c->tes_organization_name, err);
        else if (streq(section, "tes.organization") && streq(k, "url")) {
            r = config_get_string(v, key, &c->tes_organization_url, err);
            if (r >= 0 && !startswith(c->tes_organization_url, "https://") &&
                !startswith(c->tes_organization_url, "http://"))
                r = error_set(err, -EINVAL, "%s: must be an http(s) URL", key);
        } else if (streq(section, "tes") && streq(k, "storage"))
            r = config_get_strv(v, key, &c->tes_storage, err);
        else if (streq(section, "slurm") && streq(k, "socket"))
            r = config_get_string(v, key, &c->slurm_socket, err);
        else if (streq(section, "slurm") && streq(k, "url"))
            r = config_get_string(v, key, &c->slurm_url, err);
        else if (streq(section, "slurm") && streq(k, "jwt_key"))
            r = config_get_string(v, key, &c->slurm_jwt_key, err);
        else if (streq(section, "slurm") && streq(k, "token_file"))
            r = config_get_string(v, key, &c->slurm_token_file, err);
        else if (streq(section, "slurm") && streq(k, "token_user"))
            r = config_get_string(v, key, &c->slurm_token_user, err);
        else if (streq(section, "slurm") && streq(k, "partition"))
            r = config_get_string(v, key, &c->slurm_partition, err);
        else if (streq(section, "slurm") && streq(k, "account"))
            r = config_get_string(v, key, &c->slurm_account, err);
        else if (streq(section, "slurm") && streq(k, "qos"))
            r = config_get_string(v, key, &c->slurm_qos, err);
        else if (streq(section, "slurm") && streq(k, "output_dir")) {
            r = config_get_string(v, key, &c->slurm_output_dir, err);
            if (r >= 0 && c->slurm_output_dir[0] != '/')
                r = error_set(err, -EINVAL, "%s: must be an absolute path, not \"%s\"", key,
                              c->slurm_output_dir);
        } else if (streq(section, "slurm") && streq(k, "when_down")) {
            char buf[64];
            const char *p;
            r = config_scalar(v, key, buf, &p, err);
            if (r >= 0 && (streq(p, "reject") || streq(p, "queue")))
                c->slurm_queue_when_down = streq(p, "queue");
            else if (r >= 0)
                r = error_set(err, -EINVAL, "%s: must be reject or queue, not \"%s\"", key, p);
        } else
            r = error_set(err, -EINVAL, "unknown setting \"%s\"", key);
        if (r < 0)
            return r;
    }
    return 0;
}

/* retention: a duration (a bare number is seconds), 0 or "forever". */
static int load_retention(struct config *c, const cJSON *v, struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, "retention", buf, &s, err);
    if (r < 0)
        return r;
    uint64_t u = 0;
    if (!strcaseeq(s, "forever") && (parse_duration(s, 1, &u) < 0 || u > TASK_MAX_DURATION))
        return error_set(err, -EINVAL,
                         "retention: must be a duration such as 7d or 12h (at most 366d), 0 or "
                         "forever, not \"%s\"",
                         s);
    c->retention = u;
    return 0;
}

/* backends: [process, docker, slurm], a non-empty list of known names. */
static int load_backends(struct config *c, const cJSON *v, struct error *err)
{
    static const char *const known[] = {TASK_BACKENDS};
    _cleanup_strv_ char **l = NULL;
    int r = config_get_strv(v, "backends", &l, err);
    if (r < 0)
        return r;
    if (strv_length(l) == 0)
        return error_set(err, -EINVAL,
                         "backends: must name at least one of process, docker, slurm");
    STRV_FOREACH (b, l) {
        bool ok = false;
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
            ok |= streq(*b, known[i]);
        if (!ok)
            return error_set(err, -EINVAL,
                             "backends: \"%s\" is not a backend (process, docker, slurm)", *b);
    }
    strv_free(c->backends);
    c->backends = TAKE_PTR(l);
    return 0;
}

bool config_backend_enabled(const struct config *c, const char *name)
{
    if (streq(name, "slurm") && !config_slurm_configured(c))
        return false;
    return !c->backends || strv_contains(c->backends, name);
}

/* cmd_backend: a backend that runs commands. */
static int load_cmd_backend(struct config *c, const cJSON *v, struct error *err)
{
    char buf[64];
    const char *s;
    int r = config_scalar(v, "cmd_backend", buf, &s, err);
    if (r < 0)
        return r;
    if (!streq(s, "process") && !streq(s, "slurm"))
        return error_set(err, -EINVAL,
                         "cmd_backend: must be process or slurm (the backends that run "
                         "commands), not \"%s\"",
                         s);
    free(c->cmd_backend);
    c->cmd_backend = xstrdup(s);
    return 0;
}

int config_load_file(struct config *c, const char *path, struct error *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_file(path, 1 << 20, &text, &len);
    if (r < 0)
        return error_set_errno(err, r, "config %s", path);
    cJSON *root = NULL;
    r = task_yaml_parse(text, len, &root, err);
    if (r < 0)
        return error_wrap(err, "config %s", path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return error_set(err, -EINVAL, "config %s: must be a mapping of settings", path);
    }

    const cJSON *v;
    cJSON_ArrayForEach(v, root)
    {
        const char *k = v->string;
        if (cJSON_IsNull(v))
            continue;
        if (streq(k, "listen"))
            r = load_listen(c, v, err);
        else if (streq(k, "data_dir"))
            r = config_get_string(v, k, &c->data_dir, err);
        else if (streq(k, "log_level")) {
            char buf[64];
            const char *s;
            r = config_scalar(v, k, buf, &s, err);
            if (r >= 0) {
                int l = log_level_from_string(s);
                if (l < 0)
                    r = error_set(err, -EINVAL, "log_level: must be error, warn, info or debug");
                else
                    c->log_level = l;
            }
        } else if (streq(k, "capacity") || streq(k, "defaults") || streq(k, "bare_units") ||
                   streq(k, "process") || streq(k, "docker") || streq(k, "tes") ||
                   streq(k, "slurm"))
            r = load_section(c, k, v, err);
        else if (streq(k, "retention"))
            r = load_retention(c, v, err);
        else if (streq(k, "kill_grace"))
            r = config_get_seconds(v, k, &c->kill_grace, err);
        else if (streq(k, "max_body")) {
            uint64_t n;
            r = config_get_size(v, k, 1, &n, err);
            if (r >= 0 && (n < 1024 || n > (256ULL << 20)))
                r = error_set(err, -EINVAL, "max_body: must be between 1K and 256M");
            c->max_body = (size_t) n;
        } else if (streq(k, "http_connections"))
            r = config_get_count(v, k, 1, 65536, &c->http_connections, err);
        else if (streq(k, "http_followers"))
            r = config_get_count(v, k, 1, 65536, &c->http_followers, err);
        else if (streq(k, "http_client_connections"))
            r = config_get_count(v, k, 1, 65536, &c->http_client_connections, err);
        else if (streq(k, "http_timeout"))
            r = config_get_seconds(v, k, &c->http_timeout, err);
        else if (streq(k, "http_header_timeout"))
            r = config_get_seconds(v, k, &c->http_header_timeout, err);
        else if (streq(k, "http_body_timeout"))
            r = config_get_seconds(v, k, &c->http_body_timeout, err);
        else if (streq(k, "tls"))
            r = load_tls(&c->tls, k, v, err);
        else if (streq(k, "principals"))
            r = policy_set_load_principals(&c->policy, v, err);
        else if (streq(k, "privileged_groups"))
            r = policy_set_load_privileged(&c->policy, v, err);
        else if (streq(k, "allow_root")) {
            /* Gone: no task runs as root, whatever the config says. A
             * config that asked for it must not start a daemon that
             * quietly does otherwise. */
            bool allow;
            r = config_get_bool(v, k, &allow, err);
            if (r >= 0 && allow)
                r = error_set(err, -EINVAL,
                              "allow_root: tasks never run as root (uid 0 under any name, or "
                              "gid 0), whatever the config says; remove the setting");
        } else if (streq(k, "denied_users"))
            r = config_get_strv(v, k, &c->denied_users, err);
        else if (streq(k, "host_root")) {
            r = config_get_string(v, k, &c->host_root, err);
            if (r >= 0 && c->host_root[0] != '/')
                r = error_set(err, -EINVAL, "host_root: must be an absolute path, not \"%s\"",
                              c->host_root);
        } else if (streq(k, "backends"))
            r = load_backends(c, v, err);
        else if (streq(k, "cmd_backend"))
            r = load_cmd_backend(c, v, err);
        else
            r = error_set(err, -EINVAL, "unknown setting \"%s\"", k);
        if (r < 0)
            break;
    }
    cJSON_Delete(root);
    if (r < 0)
        return error_wrap(err, "config %s", path);
    return 0;
}

void config_resolve_capacity(struct config *c)
{
    if (c->capacity_cores <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->capacity_cores = n > 0 ? (double) n : 1;
    }
    if (c->capacity_memory == 0) {
        struct sysinfo si;
        if (sysinfo(&si) == 0)
            c->capacity_memory = (uint64_t) si.totalram * si.mem_unit;
        else
            c->capacity_memory = 1ULL << 30;
    }
}
