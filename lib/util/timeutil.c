/* timeutil: see timeutil.h. */
#include "timeutil.h"

#include <ctype.h>
#include <time.h>

static usec_t now_clock(clockid_t c)
{
    struct timespec ts;
    (void) clock_gettime(c, &ts);
    return (usec_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

usec_t now_realtime(void)
{
    return now_clock(CLOCK_REALTIME);
}

usec_t now_monotonic(void)
{
    return now_clock(CLOCK_MONOTONIC);
}

char *format_rfc3339(usec_t t, char buf[static 32])
{
    time_t s = (time_t) (t / USEC_PER_SEC);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    unsigned ms = (unsigned) ((t % USEC_PER_SEC + USEC_PER_SEC) % USEC_PER_SEC / 1000) % 1000;
    snprintf(buf + n, 32 - n, ".%03uZ", ms);
    return buf;
}

int parse_rfc3339(const char *s, usec_t *ret)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    usec_t frac = 0;
    if (*p == '.') {
        usec_t scale = 100000;
        for (p++; isdigit((unsigned char) *p); p++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -EINVAL;
        off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else
        return -EINVAL;
    if (*p)
        return -EINVAL;
    time_t t = timegm(&tm);
    *ret = ((usec_t) t - off) * USEC_PER_SEC + frac;
    return 0;
}
