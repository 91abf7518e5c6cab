/* Unit tests: config defaults, the YAML file, and its errors. */
#include "config.h"
#include "tap.h"
#include "util/log.h"

#include <inttypes.h>

static char *write_tmp(const char *text)
{
    char *path = xstrdup("/tmp/ocps-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || loop_write(fd, text, strlen(text)) < 0)
        abort();
    close(fd);
    return path;
}

static int load(struct config *c, const char *text, struct error *err)
{
    _cleanup_free_ char *p = write_tmp(text);
    int r = config_load_file(c, p, err);
    (void) unlink(p);
    return r;
}

int main(void)
{
    struct config c;
    config_init(&c);
    ok(c.kill_grace == 10 && c.max_body == 1 << 20 && !c.denied_users, "defaults");
    ok(c.retention == 7 * 24 * 3600, "ended tasks are kept 7 days by default");
    ok(streq(c.data_dir, CONFIG_DEFAULT_DATA_DIR), "default data dir");
    ok(c.bare_units.memory == 1ULL << 30 && c.bare_units.time == 3600,
       "bare numbers are JobProxy's GB and hours by default");
    ok(c.http_connections == 1024 && c.http_followers == 256 && c.http_client_connections == 128 &&
           c.http_header_timeout == 30 && c.http_body_timeout == 60 && c.http_timeout == 120,
       "the HTTP pool's defaults");

    _cleanup_error_ struct error err = ERROR_INIT;
    int r = load(&c,
                 "listen: [\"127.0.0.1:9000\", \"unix:/tmp/x.sock\"]\n"
                 "data_dir: /tmp/d\n"
                 "log_level: debug\n"
                 "capacity: {cores: 3, memory: 8G}\n"
                 "defaults:\n  cores: 0.5\n  memory: 256M\n"
                 "kill_grace: 2s\n"
                 "max_body: 64K\n"
                 "allow_root: no\n"
                 "denied_users: [daemon, bin]\n"
                 "process: {pids_limit: 100, cgroup: test-cg, shim: /x/shim}\n"
                 "bare_units: {memory: M, time: s}\n"
                 "http_connections: 100\nhttp_followers: 7\nhttp_client_connections: 9\n"
                 "http_header_timeout: 5s\nhttp_body_timeout: 1m\n",
                 &err);
    ok(r == 0, "full config loads: %s", error_message(&err));
    ok(c.n_listen == 2 && streq(c.listen[1].address, "unix:/tmp/x.sock") &&
           !c.listen[0].unauthenticated && !c.listen[1].unauthenticated,
       "listen list");
    ok(streq(c.data_dir, "/tmp/d") && c.log_level == LOG_LEVEL_DEBUG, "data dir, log level");
    ok(c.capacity_cores == 3 && c.capacity_memory == 8ULL << 30, "capacity");
    ok(c.default_cores == 0.5 && c.default_memory == 256ULL << 20, "defaults");
    ok(c.kill_grace == 2 && c.max_body == 64 << 10, "grace, body; allow_root: no is accepted");
    ok(strv_contains(c.denied_users, "bin") && c.pids_limit == 100 &&
           streq(c.cgroup_name, "test-cg") && streq(c.shim_path, "/x/shim"),
       "users and process settings");
    ok(c.bare_units.memory == 1ULL << 20 && c.bare_units.time == 1, "bare units MB and seconds");
    ok(c.http_connections == 100 && c.http_followers == 7 && c.http_client_connections == 9 &&
           c.http_header_timeout == 5 && c.http_body_timeout == 60,
       "the HTTP pool's caps and deadlines");

    /* The sidecar's: the host seen from a container, containers only. */
    ok(!c.host_root && !c.backends && config_backend_enabled(&c, "process") &&
           config_backend_enabled(&c, "docker"),
       "no host_root, every backend by default");
    /* Slurm only once a cluster is named; commands go to process by default. */
    ok(!config_backend_enabled(&c, "slurm") && streq_ptr(c.cmd_backend, "process") &&
           !c.slurm_queue_when_down && !c.slurm_output_dir,
       "slurm off without a slurm: section, cmd_backend process");
    r = load(&c,
             "slurm: {socket: /run/slurmrestd.sock, jwt_key: /etc/slurm/jwt.key, token_user: slurm,"
             " partition: debug, account: lab, qos: normal, output_dir: /shared/ocps,"
             " when_down: queue}\ncmd_backend: slurm\n",
             &err);
    ok(r == 0 && streq_ptr(c.slurm_socket, "/run/slurmrestd.sock") &&
           streq_ptr(c.slurm_jwt_key, "/etc/slurm/jwt.key") &&
           streq_ptr(c.slurm_token_user, "slurm") && streq_ptr(c.slurm_partition, "debug") &&
           streq_ptr(c.slurm_account, "lab") && streq_ptr(c.slurm_qos, "normal") && !c.slurm_url &&
           streq_ptr(c.slurm_output_dir, "/shared/ocps") && c.slurm_queue_when_down &&
           streq_ptr(c.cmd_backend, "slurm"),
       "the slurm section loads (%s)", error_message(&err));
    ok(config_backend_enabled(&c, "slurm"), "slurm on with slurm.socket");
    r = load(&c, "backends: [process, docker]\n", &err);
    ok(r == 0 && !config_backend_enabled(&c, "slurm"), "slurm off when backends leave it out");
    r = load(&c, "backends: [process, slurm]\n", &err);
    ok(r == 0 && config_backend_enabled(&c, "slurm") && !config_backend_enabled(&c, "docker"),
       "backends may name slurm: %s", error_message(&err));
    r = load(&c, "host_root: /host\nbackends: [docker]\n", &err);
    ok(r == 0 && streq_ptr(c.host_root, "/host") && config_backend_enabled(&c, "docker") &&
           !config_backend_enabled(&c, "process"),
       "host_root and backends: %s", error_message(&err));

    /* One key alone leaves the other as it was; every spelling of a unit. */
    error_clear(&err);
    r = load(&c, "bare_units:\n  memory: GiB\n", &err);
    ok(r == 0 && c.bare_units.memory == 1ULL << 30 && c.bare_units.time == 1,
       "bare_units.memory alone: %s", error_message(&err));
    r = load(&c, "bare_units: {memory: b, time: min}\n", &err);
    ok(r == 0 && c.bare_units.memory == 1 && c.bare_units.time == 60, "bytes and minutes: %s",
       error_message(&err));

    /* Listeners with options, beside plain addresses; one alone. */
    r = load(&c,
             "listen:\n  - 127.0.0.1:8080\n"
             "  - {address: \"[::1]:8081\", unauthenticated: jobproxy-clients}\n",
             &err);
    ok(r == 0 && c.n_listen == 2 && streq(c.listen[0].address, "127.0.0.1:8080") &&
           !c.listen[0].unauthenticated && streq(c.listen[1].address, "[::1]:8081") &&
           streq_ptr(c.listen[1].unauthenticated, "jobproxy-clients"),
       "a listener mapping with unauthenticated beside an address: %s", error_message(&err));
    r = load(&c, "listen: {address: 127.0.0.1:9, unauthenticated: x}\n", &err);
    ok(r == 0 && c.n_listen == 1 && streq_ptr(c.listen[0].unauthenticated, "x"),
       "one listener mapping alone replaces the list: %s", error_message(&err));
    r = config_add_listener_arg(&c, "127.0.0.1:8082=ci-bot", &err);
    ok(r == 0 && c.n_listen == 2 && streq(c.listen[1].address, "127.0.0.1:8082") &&
           streq_ptr(c.listen[1].unauthenticated, "ci-bot"),
       "--listen-unauthenticated ADDR=NAME: %s", error_message(&err));
    static const struct {
        const char *arg, *needle;
    } bad_args[] = {
        {"127.0.0.1:8082", "want ADDR=PRINCIPAL"},
        {"=x", "want ADDR=PRINCIPAL"},
        {"127.0.0.1:8082=", "want ADDR=PRINCIPAL"},
        {"127.0.0.1:8082=a b", "is not a principal's name"},
        {"unix:/tmp/s=x", "for TCP listeners"},
    };
    for (size_t i = 0; i < ELEMENTSOF(bad_args); i++) {
        error_clear(&err);
        r = config_add_listener_arg(&c, bad_args[i].arg, &err);
        ok(r == -EINVAL && err.msg && strstr(err.msg, bad_args[i].needle),
           "--listen-unauthenticated %s refused: %s", bad_args[i].arg, error_message(&err));
    }
    ok(c.n_listen == 2, "a refused --listen-unauthenticated adds nothing");

    /* metrics: public opens /metrics on that listener; admin (the default) does not. */
    r = load(&c,
             "listen:\n  - 127.0.0.1:8080\n"
             "  - {address: 127.0.0.1:9180, metrics: public}\n"
             "  - {address: 127.0.0.1:9181, metrics: admin}\n",
             &err);
    ok(r == 0 && c.n_listen == 3 && !c.listen[0].metrics_public && c.listen[1].metrics_public &&
           !c.listen[2].metrics_public,
       "metrics: public on a listener, admin and nothing elsewhere: %s", error_message(&err));
    error_clear(&err);
    r = load(&c, "listen: {address: 127.0.0.1:9180, metrics: open}\n", &err);
    ok(r == -EINVAL && err.msg && strstr(err.msg, "listen.metrics: must be public"),
       "metrics: open is refused, naming the setting: %s", error_message(&err));

    static const struct {
        const char *text;
        uint64_t seconds;
    } retention[] = {
        {"retention: 2s\n", 2},  {"retention: 30d\n", 30 * 86400},   {"retention: 1h30m\n", 5400},
        {"retention: 90\n", 90}, {"retention: forever\n", 0},        {"retention: Forever\n", 0},
        {"retention: 0\n", 0},   {"retention: 366d\n", 366 * 86400},
    };
    for (size_t i = 0; i < ELEMENTSOF(retention); i++) {
        error_clear(&err);
        c.retention = 1;
        r = load(&c, retention[i].text, &err);
        ok(r == 0 && c.retention == retention[i].seconds, "%.*s is %" PRIu64 " s: %s",
           (int) strlen(retention[i].text) - 1, retention[i].text, retention[i].seconds,
           error_message(&err));
    }

    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
        {"retention: 367d\n",
         "retention: must be a duration such as 7d or 12h (at most 366d), 0 or forever, not "
         "\"367d\""},
        {"retention: never\n", "retention: must be a duration"},
        {"retention: -1d\n", "retention: must be a duration"},
        {"retention: [1d]\n", "retention: must be a scalar"},
        {"bogus: 1\n", "bogus"},
        {"host_root: host\n", "host_root: must be an absolute path"},
        {"backends: []\n", "backends: must name at least one"},
        {"backends: [docker, lsf]\n",
         "backends: \"lsf\" is not a backend (process, docker, slurm)"},
        {"cmd_backend: docker\n", "cmd_backend: must be process or slurm"},
        {"slurm: {output_dir: relative}\n", "slurm.output_dir: must be an absolute path"},
        {"slurm: {when_down: wait}\n", "slurm.when_down: must be reject or queue"},
        {"capacity: {cores: -1}\n", "capacity.cores"},
        {"capacity: {disk: 1}\n", "capacity.disk"},
        {"defaults: {memory: lots}\n", "defaults.memory"},
        {"kill_grace: forever\n", "kill_grace"},
        {"allow_root: maybe\n", "allow_root"},
        /* An old config that let tasks run as root does not load quietly. */
        {"allow_root: true\n", "allow_root: tasks never run as root"},
        {"max_body: 1\n", "max_body"},
        {"log_level: loud\n", "log_level"},
        {"listen: {a: b}\n", "unknown setting \"listen.a\""},
        {"listen: [{unauthenticated: x}]\n", "listen[0]: needs an address"},
        {"listen: [a, {address: unix:/x, unauthenticated: x}]\n",
         "listen[1]: unauthenticated is for TCP"},
        {"listen: [{address: 127.0.0.1:1, unauthenticated: \"no way\"}]\n",
         "listen[0]: unauthenticated: \"no way\" is not a principal's name"},
        {"listen: [[a]]\n", "listen[0]: must be an address"},
        {"- a\n- b\n", "mapping"},
        {"a: [unclosed\n", "YAML"},
        {"bare_units: {memory: 128}\n",
         "bare_units.memory: must be a unit such as M or G, not \"128\""},
        {"bare_units: {memory: 1M}\n", "bare_units.memory"},
        {"bare_units: {memory: h}\n", "bare_units.memory"},
        {"bare_units: {time: hours}\n", "bare_units.time: must be a unit such as s, m or h"},
        {"bare_units: {time: [h]}\n", "bare_units.time: must be a scalar"},
        {"bare_units: {cputime: h}\n", "unknown setting \"bare_units.cputime\""},
        {"tes: {organisation: {name: x}}\n", "unknown setting \"tes.organisation\""},
        {"tes: {organization: {url: 'ftp://x/'}}\n",
         "tes.organization.url: must be an http(s) URL"},
        {"tes: {organization: {logo: x}}\n", "unknown setting \"tes.organization.logo\""},
        {"bare_units: M\n", "bare_units: must be a mapping"},
        {"http_followers: 0\n",
         "http_followers: must be a whole number from 1 to 65536, not \"0\""},
        {"http_client_connections: 1K\n", "http_client_connections"},
        {"http_connections: 65537\n", "http_connections"},
        {"http_header_timeout: 2d\n", "http_header_timeout"},
        {"http_body_timeout: soon\n", "http_body_timeout"},
        {"tls: /etc/cert.pem\n", "tls: must be a mapping"},
        {"tls: {certificate: /x}\n", "unknown setting \"tls.certificate\""},
        {"listen: [{address: 127.0.0.1:1, tls: {cert: /x}}]\n",
         "listen[0]: tls is for an https://HOST:PORT listener, not 127.0.0.1:1"},
        {"listen: [{address: \"https://127.0.0.1:1\", tls: {ca: /x}}]\n",
         "unknown setting \"listen[0].tls.ca\""},
        {"listen: [\"https://\"]\n", "listen[0]: https:// needs HOST:PORT"},
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        error_clear(&err);
        r = load(&c, bad[i].text, &err);
        ok(r == -EINVAL || r == -EBADMSG, "bad config %zu refused", i);
        ok(err.msg && strstr(err.msg, bad[i].needle), "message names %s: %s", bad[i].needle,
           error_message(&err));
    }
    error_clear(&err);
    ok(config_load_file(&c, "/nonexistent/config.yaml", &err) == -ENOENT, "missing file");

    /* tls: the config's, and a listener's own over it, setting by setting. */
    struct config t;
    config_init(&t);
    error_clear(&err);
    r = load(&t,
             "tls: {cert: /nonexistent/top.pem, key: /nonexistent/top.key}\n"
             "listen:\n"
             "  - 127.0.0.1:8080\n"
             "  - https://127.0.0.1:8443\n"
             "  - {address: \"https://[::1]:8444\", tls: {client_ca: /nonexistent/ca.pem}}\n",
             &err);
    ok(r == 0 && t.n_listen == 3 && streq_ptr(t.tls.cert, "/nonexistent/top.pem") &&
           streq_ptr(t.tls.key, "/nonexistent/top.key") && !t.tls.client_ca,
       "tls: {cert, key} at the top: %s", error_message(&err));
    ok(!config_listener_is_tls(&t.listen[0]) && config_listener_is_tls(&t.listen[1]) &&
           config_listener_is_tls(&t.listen[2]) && !t.listen[1].tls.cert &&
           streq_ptr(t.listen[2].tls.client_ca, "/nonexistent/ca.pem") && !t.listen[2].tls.cert,
       "https:// listeners, one with tls: {client_ca} of its own");
    error_clear(&err);
    r = config_read_tls(&t, &err);
    ok(r == -ENOENT && strstr(error_message(&err),
                              "listen https://127.0.0.1:8443: tls.cert /nonexistent/top.pem: No "
                              "such file"),
       "a file that cannot be read: its errno, naming the listener, setting and file: %s",
       error_message(&err));
    ok(!t.listen[1].pem.cert && !t.listen[1].pem.key, "and nothing of it is kept");
    config_done(&t);

    config_init(&t);
    error_clear(&err);
    r = load(&t,
             "tls: {cert: /nonexistent/top.pem, key: /nonexistent/top.key}\n"
             "listen: [{address: \"https://127.0.0.1:8443\", tls: {cert: /nonexistent/own.pem, "
             "key: /nonexistent/own.key}}]\n",
             &err);
    error_clear(&err);
    ok(r == 0 && config_read_tls(&t, &err) == -ENOENT &&
           strstr(error_message(&err), "tls.cert /nonexistent/own.pem"),
       "a listener's own cert is read instead of the config's: %s", error_message(&err));
    config_done(&t);

    static const struct {
        const char *text, *needle;
    } unusable[] = {
        {"listen: [\"https://127.0.0.1:8443\"]\n",
         "listen https://127.0.0.1:8443: an https listener needs a certificate and its key"},
        {"tls: {cert: /nonexistent/c.pem}\nlisten: [\"https://127.0.0.1:8443\"]\n",
         "needs a certificate and its key"},
        {"tls: {cert: /c, key: /k, client_ca: /ca}\n"
         "listen: [{address: \"https://127.0.0.1:8443\", unauthenticated: jp}]\n",
         "a listener with a client CA takes no unauthenticated requests"},
    };
    for (size_t i = 0; i < ELEMENTSOF(unusable); i++) {
        config_init(&t);
        error_clear(&err);
        r = load(&t, unusable[i].text, &err);
        ok(r == 0, "unusable tls %zu loads: %s", i, error_message(&err));
        error_clear(&err);
        r = config_read_tls(&t, &err);
        ok(r == -EINVAL && strstr(error_message(&err), unusable[i].needle),
           "but config_read_tls refuses it: %s", error_message(&err));
        config_done(&t);
    }
    /* Without an https listener nothing is read, whatever tls: says. */
    config_init(&t);
    error_clear(&err);
    r = load(&t, "tls: {cert: /nonexistent/c.pem, key: /nonexistent/k}\n", &err);
    ok(r == 0 && config_read_tls(&t, &err) == 0, "tls: without an https listener reads nothing");
    config_done(&t);

    struct config d;
    config_init(&d);
    config_resolve_capacity(&d);
    ok(d.capacity_cores >= 1 && d.capacity_memory > (64ULL << 20), "machine capacity found");
    config_done(&d);
    config_done(&c);
    return tap_done();
}
