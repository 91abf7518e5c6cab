/*
 * client: the calls the Slurm backend makes to slurmrestd (openapi
 * v0.0.38), over the shared REST client (lib/rest/). Every call names the
 * Slurm user it acts as (X-SLURM-USER-NAME) and carries a token of the
 * config's token_user (SlurmUser or root) that this file signs with the
 * cluster's JWT key and renews an hour at a time, ten minutes before it
 * expires (jwt.c); or, without the key, the token in the config's
 * token_file (made by the cluster's admin with `scontrol token
 * username=root lifespan=N`), read again whenever the file changes, so
 * that it is renewed by writing the file anew.
 *
 * slurmrestd answers a refused token with 401 or 500, and a failed
 * request (an unknown job, a bad partition) with 500 and an "errors"
 * array of {"error_code", "error"}: a status >= 400 is -EREMOTEIO here,
 * except a submit refused for what the job asks (a partition, account,
 * qos, size or time limit the cluster does not take: task_errors below),
 * which is the task's own (-EINVAL), and a cancel of a job that is gone
 * or done already, which is no error. The cluster's passing states (a
 * node down or not yet registered after a restart of slurmctld: "Required
 * node not available", 2068; nodes busy; a controller in standby) are
 * not the task's: -EREMOTEIO, retried with slurm.when_down: queue.
 */
#include "slurm-client.h"
#include "slurm-internal.h"
#include "util/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#define TOKEN_LIFESPAN 3600
#define TOKEN_RENEW    600 /* seconds before it expires */
#define MAX_KEY        4096
#define MAX_TOKEN      8192

static void json_freep(cJSON **j)
{
    cJSON_Delete(*j);
}

struct slurm_client {
    struct rest *rest;
    uint8_t *key;
    size_t key_len;
    char *token_user;
    char *token_path;     /* the token is this file's (no key) */
    pthread_mutex_t lock; /* guards token, token_exp, token_mtime */
    char *token;
    int64_t token_exp;
    struct timespec token_mtime;
};

/* The token in path: "SLURM_JWT=<token>" as scontrol prints it, or the
 * token alone; a file others may read or write is refused, as ssh refuses
 * such a key: a token of root is root on the cluster. */
static int read_token(const char *path, char **ret, struct timespec *ret_mtime, struct error *err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    struct stat st;

    if (stat(path, &st) < 0)
        return error_set_errno(err, -errno, "slurm.token_file: %s", path);
    if (st.st_mode & 0077)
        return error_set(err, -EPERM,
                         "slurm.token_file: %s: mode %04o lets others read it; make it 0600", path,
                         (unsigned) (st.st_mode & 07777));
    int r = read_file(path, MAX_TOKEN, &buf, &len);
    if (r < 0)
        return error_set_errno(err, r, "slurm.token_file: %s", path);
    char *t = buf + strspn(buf, " \t\r\n");
    if (startswith(t, "SLURM_JWT="))
        t += strlen("SLURM_JWT=");
    t[strcspn(t, " \t\r\n")] = '\0';
    if (strlen(t) < 16 || strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_.") != strlen(t))
        return error_set(err, -EINVAL, "slurm.token_file: %s: not a JWT", path);
    *ret = xstrdup(t);
    *ret_mtime = st.st_mtim;
    return 0;
}

int slurm_client_new(const struct slurm_client_options *o, struct slurm_client **ret,
                     struct error *err)
{
    _cleanup_free_ char *key = NULL, *token = NULL;
    size_t key_len = 0;
    struct timespec mtime = {0};
    struct rest *rest = NULL;
    int r;

    if (!o->key_path == !o->token_path)
        return error_set(err, -EINVAL,
                         "slurm: give either jwt_key (the cluster's JWT key, the proxy signs) or "
                         "token_file (a token of token_user), not %s",
                         o->key_path ? "both" : "neither");
    if (o->key_path) {
        r = read_file(o->key_path, MAX_KEY, &key, &key_len);
        if (r < 0)
            return error_set_errno(err, r, "slurm.jwt_key: %s", o->key_path);
        if (key_len < 16)
            return error_set(err, -EINVAL, "slurm.jwt_key: %s: too short for a key", o->key_path);
    } else {
        r = read_token(o->token_path, &token, &mtime, err);
        if (r < 0)
            return r;
    }
    r = rest_new(
        &(struct rest_options){
            .name = "slurmrestd", .socket = o->socket, .url = o->url, .prefix = SLURM_API_PREFIX},
        &rest, err);
    if (r < 0)
        return error_wrap(err, "slurm");
    if (o->abort_fd >= 0)
        (void) rest_add_abort_fd(rest, o->abort_fd);

    struct slurm_client *c = xcalloc(1, sizeof(*c));
    c->rest = rest;
    c->key = (uint8_t *) TAKE_PTR(key);
    c->key_len = key_len;
    c->token_user = xstrdup(o->token_user ? o->token_user : "root");
    c->token_path = o->token_path ? xstrdup(o->token_path) : NULL;
    c->token = TAKE_PTR(token);
    c->token_mtime = mtime;
    pthread_mutex_init(&c->lock, NULL);
    *ret = c;
    return 0;
}

struct slurm_client *slurm_client_free(struct slurm_client *c)
{
    if (!c)
        return NULL;
    rest_free(c->rest);
    if (c->key)
        explicit_bzero(c->key, c->key_len);
    free(c->key);
    free(c->token_user);
    free(c->token_path);
    if (c->token)
        explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return NULL;
}

/* Slurm's error codes (slurm_errno.h): its job errors, and the two a
 * cancel of a job that is no longer there gets. */
#define ESLURM_INVALID_JOB_ID 2017
#define ESLURM_ALREADY_DONE   2021

/* A call as user (NULL: the token's own user); for a status >= 400 the
 * reply is in *ret_json too, for its "errors". */
static int call(struct slurm_client *c, const char *method, const char *path, const char *user,
                const cJSON *body, cJSON **ret_json, struct error *err)
{
    int64_t now = time(NULL);
    pthread_mutex_lock(&c->lock);
    struct stat st;
    if (c->token_path && stat(c->token_path, &st) == 0 &&
        (st.st_mtim.tv_sec != c->token_mtime.tv_sec ||
         st.st_mtim.tv_nsec != c->token_mtime.tv_nsec)) {
        /* Rewritten: the new token from now on; a bad one keeps the old. */
        _cleanup_error_ struct error e = ERROR_INIT;
        char *t = NULL;
        if (read_token(c->token_path, &t, &c->token_mtime, &e) == 0) {
            free(c->token);
            c->token = t;
            log_info("slurm: the token in %s is read again", c->token_path);
        } else {
            c->token_mtime = st.st_mtim; /* said once per change */
            log_warn("%s; the previous token is kept", error_message(&e));
        }
    }
    if (!c->token_path && (!c->token || now > c->token_exp - TOKEN_RENEW)) {
        free(c->token);
        c->token = slurm_jwt_sign(c->key, c->key_len, c->token_user, now, TOKEN_LIFESPAN);
        c->token_exp = now + TOKEN_LIFESPAN;
    }
    _cleanup_free_ char *tok = xasprintf("X-SLURM-USER-TOKEN: %s", c->token);
    pthread_mutex_unlock(&c->lock);
    _cleanup_free_ char *name = xasprintf("X-SLURM-USER-NAME: %s", user ? user : c->token_user);
    const char *headers[] = {name, tok, NULL};
    return rest_call(
        c->rest,
        &(struct rest_request){
            .method = method, .path = path, .body = body, .headers = headers, .error_json = true},
        ret_json, err);
}

/* Slurm 22.05's job errors (slurm_errno.h, as slurm_strerror words them)
 * that say the job asks for what the cluster does not have or allow. */
static const int task_errors[] = {
    2000, /* Invalid partition name specified */
    2001, /* No partition specified or system default partition */
    2002, /* Access/permission denied */
    2003, /* User's group not permitted to use this partition */
    2004, /* Requested nodes not in this partition */
    2005, /* More processors requested than permitted */
    2006, /* Node count specification invalid */
    2008, /* Job size specification needs to be provided */
    2012, /* Pathname of a file, directory or other parameter too long */
    2014, /* Requested node configuration is not available */
    2023, /* Task distribution specification invalid */
    2025, /* Task count specification invalid */
    2029, /* Invalid feature specification */
    2038, /* Job dependency problem */
    2041, /* Requested more tasks than available processors */
    2044, /* Memory required by task is not available */
    2045, /* Invalid account or account/partition combination specified */
    2048, /* Invalid license specification */
    2050, /* Job violates accounting/QOS policy */
    2051, /* Requested time limit is invalid (missing or exceeds some limit) */
    2052, /* Access denied to requested reservation */
    2053, /* Requested reservation is invalid */
    2057, /* Invalid wckey specification */
    2066, /* Invalid qos specification */
    2069, /* CPU count specification invalid */
    2072, /* Invalid generic resource (gres) specification */
    2074, /* Requested account has breached requested QOS usage threshold */
};

static bool is_task_error(int code)
{
    for (size_t i = 0; i < ELEMENTSOF(task_errors); i++)
        if (task_errors[i] == code)
            return true;
    return false;
}

/* The first of a reply's "errors"' error_code, 0 when there is none. */
static int reply_error_code(const cJSON *reply)
{
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "errors"), 0);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "error_code");
    return cJSON_IsNumber(n) ? n->valueint : 0;
}

/* The first of a reply's "errors", if any: slurmrestd may answer 200 with one. */
static const char *reply_error(const cJSON *reply)
{
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "errors"), 0);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "description");
    if (!cJSON_IsString(d) || isempty(d->valuestring))
        d = cJSON_GetObjectItemCaseSensitive(e, "error");
    return cJSON_IsString(d) ? d->valuestring : e ? "an error without words" : NULL;
}

int slurm_client_submit(struct slurm_client *c, const char *user, const cJSON *body,
                        uint32_t *ret_job_id, struct error *err)
{
    _cleanup_(json_freep) cJSON *reply = NULL;
    int r = call(c, "POST", "/job/submit", user, body, &reply, err);
    if (r < 0)
        return r;
    const char *e = reply_error(reply);
    if (e || r >= 400) {
        if (!e)
            return err->code;
        return error_set(err, is_task_error(reply_error_code(reply)) ? -EINVAL : -EREMOTEIO,
                         "Slurm refused the job: %s", e);
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(reply, "job_id");
    if (!cJSON_IsNumber(id) || id->valuedouble < 1)
        return error_set(err, -EREMOTEIO, "slurmrestd: submit: no job_id in the reply");
    *ret_job_id = (uint32_t) id->valuedouble;
    return 0;
}

int slurm_client_jobs(struct slurm_client *c, int64_t update_time, cJSON **ret_jobs,
                      struct error *err)
{
    _cleanup_free_ char *path = xasprintf("/jobs?update_time=%" PRId64, update_time);
    _cleanup_(json_freep) cJSON *reply = NULL;
    int r = call(c, "GET", path, NULL, NULL, &reply, err);
    if (r < 0)
        return r;
    if (r >= 400)
        return err->code;
    if (r == 304) {
        *ret_jobs = NULL;
        return 0;
    }
    cJSON *jobs = cJSON_DetachItemFromObjectCaseSensitive(reply, "jobs");
    if (!cJSON_IsArray(jobs)) {
        cJSON_Delete(jobs);
        return error_set(err, -EREMOTEIO, "slurmrestd: GET %s: no \"jobs\" in the reply", path);
    }
    *ret_jobs = jobs;
    return 1;
}

int slurm_client_cancel(struct slurm_client *c, uint32_t job_id, const char *signal,
                        struct error *err)
{
    _cleanup_free_ char *path = signal ? xasprintf("/job/%" PRIu32 "?signal=%s", job_id, signal)
                                       : xasprintf("/job/%" PRIu32, job_id);
    _cleanup_(json_freep) cJSON *reply = NULL;
    int r = call(c, "DELETE", path, NULL, NULL, &reply, err);
    if (r < 0)
        return r;
    if (r >= 400) {
        int code = reply_error_code(reply);
        /* It ended meanwhile: the poller reports how. */
        if (code == ESLURM_INVALID_JOB_ID || code == ESLURM_ALREADY_DONE)
            return 0;
        return err->code;
    }
    return 0;
}

int slurm_client_ping(struct slurm_client *c, struct error *err)
{
    _cleanup_(json_freep) cJSON *reply = NULL;
    int r = call(c, "GET", "/ping", NULL, NULL, &reply, err);
    if (r < 0)
        return r;
    if (r >= 400)
        return err->code;
    /* slurmrestd answers for itself; its pings say whether slurmctld does. */
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "pings"), 0);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "ping");
    if (!cJSON_IsString(st) || !streq(st->valuestring, "UP"))
        return error_set(err, -EREMOTEIO, "slurmrestd answers, but slurmctld does not (ping: %s)",
                         cJSON_IsString(st) ? st->valuestring : "no answer");
    return 0;
}
