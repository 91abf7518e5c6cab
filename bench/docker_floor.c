/*
 * docker_floor: the floor for container tasks. Issues to dockerd what the
 * Docker backend issues for a trivial task, without the proxy: create
 * (the same container configuration), wait?condition=next-exit, start,
 * the wait's end, remove. Keeps PARALLEL tasks in flight and prints the
 * mean latency of a task in milliseconds, the tasks per second and its
 * own CPU time per task in milliseconds (from its first task on: libcurl
 * is loaded by then, as it is in a running proxy).
 *
 *   docker_floor N PARALLEL IMAGE
 */
#include "docker/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static const char *image;
static atomic_int next_task;
static int n_tasks;
static double *latency;

static double clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

struct waiter {
    struct engine *e;
    const char *id;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool registered;
    int status;
};

static int wait_line(void *userdata, const char *line, size_t len)
{
    return 0;
}

static void wait_headers(void *userdata, long status)
{
    struct waiter *w = userdata;
    pthread_mutex_lock(&w->lock);
    w->registered = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    struct error err = ERROR_INIT;
    char path[256];
    snprintf(path, sizeof(path), "/containers/%s/wait?condition=next-exit", w->id);
    struct engine_stream s = {wait_line, wait_headers, w};
    w->status = engine_stream(w->e, "POST", path, NULL, &s, &err);
    error_clear(&err);
    wait_headers(w, 0);
    return NULL;
}

static int one(struct engine *e)
{
    struct error err = ERROR_INIT;
    char body[1024], path[256];
    snprintf(body, sizeof(body),
             "{\"Image\":\"%s\",\"Cmd\":[\"true\"],\"User\":\"65534:65534\","
             "\"HostConfig\":{\"NetworkMode\":\"none\",\"NanoCpus\":1000000000,"
             "\"Memory\":1073741824,\"MemorySwap\":1073741824,\"PidsLimit\":4096,"
             "\"CapDrop\":[\"ALL\"],\"SecurityOpt\":[\"no-new-privileges\"],\"Init\":true}}",
             image);
    cJSON *req = cJSON_Parse(body), *reply = NULL;
    int st = engine_call(e, "POST", "/containers/create", req, &reply, &err);
    cJSON_Delete(req);
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive(reply, "Id");
    if (st != 201 || !cJSON_IsString(idj)) {
        fprintf(stderr, "create: %d %s\n", st, error_message(&err));
        cJSON_Delete(reply);
        error_clear(&err);
        return -1;
    }
    char id[128];
    snprintf(id, sizeof(id), "%s", idj->valuestring);
    cJSON_Delete(reply);

    struct waiter w = {
        .e = e, .id = id, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    pthread_create(&t, NULL, wait_main, &w);
    pthread_mutex_lock(&w.lock);
    while (!w.registered)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    snprintf(path, sizeof(path), "/containers/%s/start", id);
    st = engine_call(e, "POST", path, NULL, NULL, &err);
    pthread_join(t, NULL);
    snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
    int rm = engine_call(e, "DELETE", path, NULL, NULL, &err);
    error_clear(&err);
    return st == 204 && w.status == 200 && rm == 204 ? 0 : -1;
}

static void *worker(void *arg)
{
    struct engine *e = arg;
    for (;;) {
        int i = atomic_fetch_add(&next_task, 1);
        if (i >= n_tasks)
            return NULL;
        double t0 = now_ms();
        if (one(e) < 0)
            exit(1);
        latency[i] = now_ms() - t0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: docker_floor N PARALLEL IMAGE\n");
        return 2;
    }
    n_tasks = atoi(argv[1]);
    int parallel = atoi(argv[2]);
    image = argv[3];
    latency = calloc(n_tasks, sizeof(double));
    struct error err = ERROR_INIT;
    struct engine *e = NULL;
    if (engine_new(NULL, &e, &err) < 0 || engine_ping(e, &err) < 0) {
        fprintf(stderr, "%s\n", error_message(&err));
        return 1;
    }
    pthread_t *ts = calloc(parallel, sizeof(pthread_t));
    double t0 = now_ms(), cpu0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < parallel; i++)
        pthread_create(&ts[i], NULL, worker, e);
    for (int i = 0; i < parallel; i++)
        pthread_join(ts[i], NULL);
    double total = now_ms() - t0, sum = 0;
    for (int i = 0; i < n_tasks; i++)
        sum += latency[i];
    double cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    printf("%.1f %.2f %.2f\n", sum / n_tasks, n_tasks / (total / 1e3), cpu / n_tasks);
    engine_free(e);
    free(ts);
    free(latency);
    return 0;
}
