/*
 * engine_cost: what one Engine API call costs this process in CPU time,
 * through the engine (libcurl, as the docker backend makes its calls)
 * against the same request written to the socket by hand (the floor: one
 * send(), one poll(), recv() until the body's Content-Length is in).
 * GET /v<api>/version, N times each way, sequentially on one kept-alive
 * connection; dockerd takes ~25 ms to answer it here, so every call
 * sleeps and wakes as a container task's calls do. Prints the CPU time
 * per call of each and their ratio. Not a test: figures for README.md.
 *
 *   engine_cost N
 */
#include "docker/engine.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int raw_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0)
        return -1;
    return fd;
}

/* One request and its whole reply; 0 or -1. */
static int raw_call(int fd, const char *req)
{
    static char buf[65536];
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
        return -1;
    size_t have = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t) n;
        buf[have] = '\0';
        const char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "\r\nContent-Length:");
        if (end && cl && have >= (size_t) (end + 4 - buf) + strtoul(cl + 17, NULL, 10))
            return 0;
        if (have == sizeof(buf) - 1)
            return -1;
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 300;
    struct error err = ERROR_INIT;
    struct engine *e = NULL;
    if (n <= 0 || engine_new(NULL, &e, &err) < 0 || engine_ping(e, &err) < 0) {
        fprintf(stderr, "usage: engine_cost N (with dockerd up): %s\n", error_message(&err));
        return 1;
    }
    char path[64], req[128];
    snprintf(path, sizeof(path), "/version");
    snprintf(req, sizeof(req), "GET /v%s/version HTTP/1.1\r\nHost: localhost\r\n\r\n",
             engine_api_version(e));
    int fd = raw_connect(engine_socket(e));
    if (fd < 0) {
        perror("connect");
        return 1;
    }
    double engine_total = 0, raw_total = 0;
    /* Alternating rounds of 10, after a warm-up of each. */
    for (int round = -1; round < n / 10; round++) {
        double t0 = cpu_us();
        for (int i = 0; i < 10; i++) {
            cJSON *j = NULL;
            if (engine_call(e, "GET", path, NULL, &j, &err) != 200) {
                fprintf(stderr, "engine: %s\n", error_message(&err));
                return 1;
            }
            cJSON_Delete(j);
        }
        double t1 = cpu_us();
        for (int i = 0; i < 10; i++)
            if (raw_call(fd, req) < 0) {
                fprintf(stderr, "raw call failed\n");
                return 1;
            }
        double t2 = cpu_us();
        if (round >= 0) {
            engine_total += t1 - t0;
            raw_total += t2 - t1;
        }
    }
    int calls = n / 10 * 10;
    printf("CPU per call: engine (libcurl) %.1f us, by hand %.1f us, ratio %.2f (%d calls each)\n",
           engine_total / calls, raw_total / calls, engine_total / raw_total, calls);
    close(fd);
    engine_free(e);
    return 0;
}
