/*
 * client: the calls the Slurm backend makes to slurmrestd (openapi
 * v0.0.38), over the shared REST client (lib/rest/). Every call names the
 * Slurm user it acts as (X-SLURM-USER-NAME) and carries a token of the
 * config's token_user (SlurmUser or root) that this file signs with the
 * cluster's JWT key and renews an hour at a time, ten minutes before it
 * expires (jwt.c).
 *
 * slurmrestd answers a refused token with 401 or 500, and a failed
 * request (an unknown job, a bad partition) with 500 and an "errors"
 * array of {"error_code", "error"}: a status >= 400 is -EREMOTEIO here,
 * except a submit refused with one of Slurm's job errors (ESLURM_*,
 * codes 2000-2999: a partition, account, qos or size the cluster does
 * not take), which is the task's own (-EINVAL), and a cancel of a job
 * that is gone or done already, which is no error.
 */
#include "slurm-client.h"
#include "slurm-internal.h"
#include "util/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define TOKEN_LIFESPAN 3600
#define TOKEN_RENEW    600 /* seconds before it expires */
#define MAX_KEY        4096

static void json_freep(cJSON **j)
{
    cJSON_Delete(*j);
}

struct slurm_client {
    struct rest *rest;
    uint8_t *key;
    size_t key_len;
    char *token_user;
    pthread_mutex_t lock; /* guards token, token_exp */
    char *token;
    int64_t token_exp;
};

int slurm_client_new(const char *socket, const char *url, const char *key_path,
                     const char *token_user, int abort_fd, struct slurm_client **ret,
                     struct error *err)
{
    _cleanup_free_ char *key = NULL;
    size_t key_len = 0;
    struct rest *rest = NULL;

    if (!key_path)
        return error_set(err, -EINVAL, "slurm.jwt_key: the cluster's JWT key file is required");
    int r = read_file(key_path, MAX_KEY, &key, &key_len);
    if (r < 0)
        return error_set_errno(err, r, "slurm.jwt_key: %s", key_path);
    if (key_len < 16)
        return error_set(err, -EINVAL, "slurm.jwt_key: %s: too short for a key", key_path);
    r = rest_new(
        &(struct rest_options){
            .name = "slurmrestd", .socket = socket, .url = url, .prefix = SLURM_API_PREFIX},
        &rest, err);
    if (r < 0)
        return error_wrap(err, "slurm");
    if (abort_fd >= 0)
        (void) rest_add_abort_fd(rest, abort_fd);

    struct slurm_client *c = xcalloc(1, sizeof(*c));
    c->rest = rest;
    c->key = (uint8_t *) TAKE_PTR(key);
    c->key_len = key_len;
    c->token_user = xstrdup(token_user ? token_user : "root");
    pthread_mutex_init(&c->lock, NULL);
    *ret = c;
    return 0;
}

struct slurm_client *slurm_client_free(struct slurm_client *c)
{
    if (!c)
        return NULL;
    rest_free(c->rest);
    explicit_bzero(c->key, c->key_len);
    free(c->key);
    free(c->token_user);
    free(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return NULL;
}

/* Slurm's error codes (slurm_errno.h): its job errors, and the two a
 * cancel of a job that is no longer there gets. */
#define ESLURM_FIRST          2000
#define ESLURM_LAST           2999
#define ESLURM_INVALID_JOB_ID 2017
#define ESLURM_ALREADY_DONE   2021

/* A call as user (NULL: the token's own user); for a status >= 400 the
 * reply is in *ret_json too, for its "errors". */
static int call(struct slurm_client *c, const char *method, const char *path, const char *user,
                const cJSON *body, cJSON **ret_json, struct error *err)
{
    int64_t now = time(NULL);
    pthread_mutex_lock(&c->lock);
    if (!c->token || now > c->token_exp - TOKEN_RENEW) {
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
        int code = reply_error_code(reply);
        bool the_jobs = code >= ESLURM_FIRST && code <= ESLURM_LAST;
        if (!e)
            return err->code;
        return error_set(err, the_jobs ? -EINVAL : -EREMOTEIO, "Slurm refused the job: %s", e);
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
