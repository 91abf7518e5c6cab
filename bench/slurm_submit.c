/*
 * slurm_submit: the floor for Slurm submits. POSTs to slurmrestd what the
 * Slurm backend posts for a task, without the proxy: the body is
 * slurm_submit_body() of the same task (backends/slurm/job.c), the token
 * one of root signed with the cluster's JWT key (jwt.c), the headers the
 * backend's client sends (X-SLURM-USER-NAME, X-SLURM-USER-TOKEN). Submits
 * go one after the other on one keep-alive connection, as the proxy's one
 * start thread makes them, and each reply is read for its job_id as the
 * backend reads it. Prints submits per second and its own CPU time per
 * submit in milliseconds.
 *
 *   slurm_submit N SOCKET|URL KEY_FILE TASK_JSON OUT_DIR
 *
 * SOCKET is a path (starting with '/'), URL an http:// address. TASK_JSON
 * is a JobProxy task as the proxy would be sent it; each job writes
 * OUT_DIR/<id>.out and .err, as a task's default output files.
 */
#include "slurm/slurm-internal.h"
#include "task.h"
#include "util/error.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEY 4096

static double clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct reply {
    char *buf;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    struct reply *r = userdata;
    r->buf = realloc(r->buf, r->len + size * n + 1);
    memcpy(r->buf + r->len, p, size * n);
    r->len += size * n;
    r->buf[r->len] = '\0';
    return size * n;
}

/* One submit; the job id, or 0 (and a message on stderr). */
static unsigned long submit(CURL *h, const char *url, struct curl_slist *headers, const char *json)
{
    struct reply r = {0};
    (void) curl_easy_setopt(h, CURLOPT_URL, url);
    (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(json));
    (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    CURLcode c = curl_easy_perform(h);
    long status = 0;
    (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    unsigned long id = 0;
    cJSON *reply = c == CURLE_OK ? cJSON_Parse(r.buf ? r.buf : "") : NULL;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(reply, "job_id");
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(reply, "errors");
    if (status == 200 && cJSON_IsNumber(j) && cJSON_GetArraySize(errors) == 0)
        id = (unsigned long) j->valuedouble;
    else
        fprintf(stderr, "slurm_submit: %s: %s %ld %s\n", url, curl_easy_strerror(c), status,
                r.buf ? r.buf : "");
    cJSON_Delete(reply);
    free(r.buf);
    return id;
}

static int read_key(const char *path, uint8_t *key, size_t *ret_len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(key, 1, MAX_KEY, f);
    fclose(f);
    *ret_len = n;
    return n >= 16 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: slurm_submit N SOCKET|URL KEY_FILE TASK_JSON OUT_DIR\n");
        return 2;
    }
    int n = atoi(argv[1]);
    const char *where = argv[2], *task_json = argv[4], *out_dir = argv[5];
    uint8_t key[MAX_KEY];
    size_t key_len;
    if (n < 1 || read_key(argv[3], key, &key_len) < 0) {
        fprintf(stderr, "slurm_submit: bad N or key file %s\n", argv[3]);
        return 2;
    }

    struct error err = ERROR_INIT;
    struct task *t = NULL;
    cJSON *tree = NULL;
    if (task_json_parse(task_json, strlen(task_json), &tree, &err) < 0 ||
        task_from_cjson(tree, NULL, &t, &err) < 0) {
        fprintf(stderr, "slurm_submit: task: %s\n", error_message(&err));
        return 2;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    char url[512];
    if (where[0] == '/') {
        (void) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, where);
        snprintf(url, sizeof(url), "http://localhost%s/job/submit", SLURM_API_PREFIX);
    } else
        snprintf(url, sizeof(url), "%s%s/job/submit", where, SLURM_API_PREFIX);
    (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    (void) curl_easy_setopt(h, CURLOPT_PROXY, "");

    /* The backend renews its token hourly: one for the whole run is the same. */
    char *token = slurm_jwt_sign(key, key_len, "root", time(NULL), 3600);
    char hdr_token[2048], hdr_user[256];
    snprintf(hdr_token, sizeof(hdr_token), "X-SLURM-USER-TOKEN: %s", token);
    snprintf(hdr_user, sizeof(hdr_user), "X-SLURM-USER-NAME: %s", t->user ? t->user : "root");
    /* The headers lib/rest sends, in its order. */
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Expect:");
    headers = curl_slist_append(headers, hdr_user);
    headers = curl_slist_append(headers, hdr_token);
    headers = curl_slist_append(headers, "Content-Type: application/json");

    /* A task that names no workdir runs in its user's home, as the
     * backend submits it. */
    const struct passwd *pw = getpwnam(t->user ? t->user : "root");
    struct slurm_submit_config cfg = {.workdir = pw ? pw->pw_dir : NULL};

    /* Ids of the proxy's length, unique to this run. */
    srand((unsigned) time(NULL) ^ (unsigned) getpid());
    unsigned run = (unsigned) rand();
    double t0 = clock_ms(CLOCK_MONOTONIC), cpu0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++) {
        char id[64], out[4096], errp[4096];
        snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012x", run, i);
        snprintf(out, sizeof(out), "%s/%s.out", out_dir, id);
        snprintf(errp, sizeof(errp), "%s/%s.err", out_dir, id);
        cJSON *body = slurm_submit_body(t, id, out, errp, &cfg, &err);
        if (!body) {
            fprintf(stderr, "slurm_submit: %s\n", error_message(&err));
            return 1;
        }
        char *json = cJSON_PrintUnformatted(body);
        unsigned long job = submit(h, url, headers, json);
        free(json);
        cJSON_Delete(body);
        if (!job)
            return 1;
    }
    double total = clock_ms(CLOCK_MONOTONIC) - t0;
    double cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    printf("%.2f %.3f\n", n / (total / 1e3), cpu / n);

    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    explicit_bzero(token, strlen(token));
    free(token);
    task_free(t);
    cJSON_Delete(tree);
    error_clear(&err);
    return 0;
}
