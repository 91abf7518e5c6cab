/*
 * units: sizes and durations as people write them, shared by the task
 * validator, the config file and the CLI.
 *
 * Sizes use binary multiples whichever spelling is used ("M", "MB",
 * "MiB" are all 2^20), as Docker and Slurm read them. Durations accept
 * "90s", "15m", "2h", "1d", compounds ("1h30m") and Slurm's clock forms
 * ("1:30:00", "2-00:00:00"). A bare number is multiplied by 'unit'.
 * Fractions are allowed and rounded up to whole bytes or seconds.
 *
 * What a bare number means is a setting (struct task_units), so a
 * refusal of one says how it was read and how to write it otherwise.
 */
#include "task.h"

#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

/* Reads a non-negative decimal number (digits with an optional fraction,
 * no sign, no exponent, no hex) from *p and advances *p. */
static int parse_decimal(const char **p, long double *ret)
{
    const char *s = *p;
    long double v = 0;
    bool digits = false;

    while (isdigit((unsigned char) *s)) {
        v = v * 10 + (*s++ - '0');
        digits = true;
    }
    if (*s == '.') {
        long double scale = 0.1L;
        s++;
        while (isdigit((unsigned char) *s)) {
            v += (*s++ - '0') * scale;
            scale /= 10;
            digits = true;
        }
    }
    if (!digits)
        return -EINVAL;
    *p = s;
    *ret = v;
    return 0;
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int round_up(long double v, uint64_t *ret)
{
    if (!(v >= 0) || v > 18446744073709551615.0L)
        return -ERANGE;
    uint64_t r = (uint64_t) v;
    if ((long double) r < v)
        r++;
    *ret = r;
    return 0;
}

int parse_size(const char *s, uint64_t unit, uint64_t *ret)
{
    static const struct {
        const char *suffix;
        uint64_t factor;
    } table[] = {
        {"b", 1},
        {"k", 1ULL << 10},
        {"kb", 1ULL << 10},
        {"kib", 1ULL << 10},
        {"m", 1ULL << 20},
        {"mb", 1ULL << 20},
        {"mib", 1ULL << 20},
        {"g", 1ULL << 30},
        {"gb", 1ULL << 30},
        {"gib", 1ULL << 30},
        {"t", 1ULL << 40},
        {"tb", 1ULL << 40},
        {"tib", 1ULL << 40},
        {"p", 1ULL << 50},
        {"pb", 1ULL << 50},
        {"pib", 1ULL << 50},
        {"ki", 1ULL << 10},
        {"mi", 1ULL << 20},
        {"gi", 1ULL << 30},
        {"ti", 1ULL << 40},
        {"pi", 1ULL << 50},
    };
    long double v;
    uint64_t factor = unit;

    if (!s)
        return -EINVAL;
    s = skip_space(s);
    if (parse_decimal(&s, &v) < 0)
        return -EINVAL;
    s = skip_space(s);
    if (*s) {
        const char *end = s;
        while (isalpha((unsigned char) *end))
            end++;
        if (*skip_space(end))
            return -EINVAL;
        factor = 0;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
            if (strlen(table[i].suffix) == (size_t) (end - s) &&
                strncasecmp(table[i].suffix, s, end - s) == 0)
                factor = table[i].factor;
        if (factor == 0)
            return -EINVAL;
    }
    return round_up(v * factor, ret);
}

/* "[d-]h:mm:ss", "h:mm:ss", "mm:ss" (Slurm's clock forms). */
static int parse_clock(const char *s, uint64_t *ret)
{
    uint64_t parts[3] = {0}, days = 0;
    size_t n = 0;
    const char *dash = strchr(s, '-');
    char *end;

    if (dash) {
        if (!isdigit((unsigned char) *s))
            return -EINVAL;
        errno = 0;
        days = strtoull(s, &end, 10);
        if (errno || end != dash)
            return -EINVAL;
        s = dash + 1;
    }
    for (;;) {
        if (n >= 3 || !isdigit((unsigned char) *s))
            return -EINVAL;
        errno = 0;
        parts[n++] = strtoull(s, &end, 10);
        if (errno || end - s > 9)
            return -ERANGE;
        s = end;
        if (*s == '\0')
            break;
        if (*s++ != ':')
            return -EINVAL;
    }
    if (n < 2 && !dash)
        return -EINVAL;
    uint64_t h = 0, m = 0, sec = 0;
    if (n == 3) {
        h = parts[0], m = parts[1], sec = parts[2];
    } else if (n == 2) {
        if (dash)
            h = parts[0], m = parts[1]; /* d-h:m */
        else
            m = parts[0], sec = parts[1];
    } else {
        h = parts[0]; /* d-h */
    }
    if (days > 1000000 || h > 1000000000 || m > 1000000000 || sec > 1000000000)
        return -ERANGE;
    *ret = days * 86400 + h * 3600 + m * 60 + sec;
    return 0;
}

int parse_duration(const char *s, uint64_t unit, uint64_t *ret)
{
    long double total = 0;
    bool any = false;

    if (!s)
        return -EINVAL;
    s = skip_space(s);
    if (strchr(s, ':') || strchr(s, '-'))
        return parse_clock(s, ret);

    while (*s) {
        long double v;
        long double factor;

        if (parse_decimal(&s, &v) < 0)
            return -EINVAL;
        s = skip_space(s);
        const char *end = s;
        while (isalpha((unsigned char) *end))
            end++;
        size_t n = end - s;
        if (n == 0) {
            /* A bare number: only on its own. */
            if (any || *s)
                return -EINVAL;
            factor = unit;
        } else if ((n == 1 && strncasecmp(s, "s", 1) == 0) ||
                   (n == 3 && strncasecmp(s, "sec", 3) == 0)) {
            factor = 1;
        } else if ((n == 1 && strncasecmp(s, "m", 1) == 0) ||
                   (n == 3 && strncasecmp(s, "min", 3) == 0)) {
            factor = 60;
        } else if (n == 1 && strncasecmp(s, "h", 1) == 0) {
            factor = 3600;
        } else if (n == 1 && strncasecmp(s, "d", 1) == 0) {
            factor = 86400;
        } else {
            return -EINVAL;
        }
        total += v * factor;
        any = true;
        s = skip_space(end);
    }
    if (!any)
        return -EINVAL;
    return round_up(total, ret);
}

char *format_size(uint64_t bytes, char buf[static 32])
{
    static const char units[] = "KMGTP";
    int i = -1;

    while (bytes != 0 && i < 4 && bytes % 1024 == 0) {
        bytes /= 1024;
        i++;
    }
    if (i < 0)
        snprintf(buf, 32, "%" PRIu64 "B", bytes);
    else
        snprintf(buf, 32, "%" PRIu64 "%c", bytes, units[i]);
    return buf;
}

char *format_size_human(uint64_t bytes, char buf[static 32])
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    int i = -1;
    uint64_t div = 1;

    while (i < 4 && bytes / div >= 1024) {
        div *= 1024;
        i++;
    }
    if (i < 0)
        snprintf(buf, 32, "%" PRIu64 " bytes", bytes);
    else if (bytes % div == 0)
        snprintf(buf, 32, "%" PRIu64 " %s", bytes / div, units[i]);
    else {
        /* One decimal, rounded down: "21.5 GiB" for 22586604 KiB, never more than there is. */
        uint64_t tenths = (uint64_t) ((unsigned __int128) bytes * 10 / div);
        snprintf(buf, 32, "%" PRIu64 ".%" PRIu64 " %s", tenths / 10, tenths % 10, units[i]);
    }
    return buf;
}

const struct task_units task_units_jobproxy = {.memory = 1ULL << 30, .time = 3600};

bool is_bare_number(const char *s)
{
    long double v;

    if (!s)
        return false;
    s = skip_space(s);
    return parse_decimal(&s, &v) == 0 && *skip_space(s) == '\0';
}

/* A unit alone ("MiB", "h"): read as one of it. */
static int parse_unit(const char *s, int (*parse)(const char *, uint64_t, uint64_t *),
                      uint64_t *ret)
{
    uint64_t v;

    if (isempty(s))
        return -EINVAL;
    for (const char *c = s; *c; c++)
        if (!isalpha((unsigned char) *c))
            return -EINVAL;
    _cleanup_free_ char *one = xasprintf("1%s", s);
    if (parse(one, 0, &v) < 0 || v == 0)
        return -EINVAL;
    *ret = v;
    return 0;
}

int parse_size_unit(const char *s, uint64_t *ret)
{
    return parse_unit(s, parse_size, ret);
}

int parse_duration_unit(const char *s, uint64_t *ret)
{
    return parse_unit(s, parse_duration, ret);
}

/* The units a bare number can be in, as messages name them. */
struct unit_name {
    uint64_t factor;
    const char *suffix; /* how to write one: "128M" */
    const char *name;   /* "a bare number is in MB" */
    const char *words;  /* "write \"128M\" for megabytes" */
};

static const struct unit_name size_units[] = {
    {1, "B", "bytes", "bytes"},           {1ULL << 10, "K", "KB", "kilobytes"},
    {1ULL << 20, "M", "MB", "megabytes"}, {1ULL << 30, "G", "GB", "gigabytes"},
    {1ULL << 40, "T", "TB", "terabytes"}, {1ULL << 50, "P", "PB", "petabytes"},
};

static const struct unit_name duration_units[] = {
    {1, "s", "seconds", "seconds"},
    {60, "m", "minutes", "minutes"},
    {3600, "h", "hours", "hours"},
    {86400, "d", "days", "days"},
};

static const struct unit_name *unit_name(const struct unit_name *table, size_t n, uint64_t factor)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].factor == factor)
            return &table[i];
    return NULL;
}

/* value / unit as the client wrote it: "128", "0.5". A fraction was rounded
 * up to whole bytes or seconds; six decimals hide that again. */
static char *format_bare(uint64_t value, uint64_t unit, char buf[static 64])
{
    snprintf(buf, 64, "%.6Lf", (long double) value / (long double) unit);
    char *end = buf + strlen(buf);
    while (end[-1] == '0')
        *--end = '\0';
    if (end[-1] == '.')
        end[-1] = '\0';
    return buf;
}

static char *unit_words(const struct unit_name *u, bool jobproxy, char buf[static 64])
{
    snprintf(buf, 64, "%s, %s", u ? u->name : "the configured unit",
             jobproxy ? "JobProxy's unit" : "as this proxy is set up");
    return buf;
}

char *bare_size_unit(uint64_t unit, char buf[static 64])
{
    return unit_words(unit_name(size_units, ELEMENTSOF(size_units), unit),
                      unit == task_units_jobproxy.memory, buf);
}

char *bare_duration_unit(uint64_t unit, char buf[static 64])
{
    return unit_words(unit_name(duration_units, ELEMENTSOF(duration_units), unit),
                      unit == task_units_jobproxy.time, buf);
}

/* "N was read as WHAT (a bare number is in UNIT); write \"N<alt>\" for ALT". */
static char *bare_reading(const char *number, const char *what, const char *unit,
                          const struct unit_name *alt)
{
    return xasprintf("%s was read as %s (a bare number is in %s); write \"%s%s\" for %s", number,
                     what, unit, number, alt->suffix, alt->words);
}

char *bare_size_reading(uint64_t bytes, uint64_t unit)
{
    char number[64], human[32], words[64];
    /* The unit the client more likely meant: megabytes (what JobProxy's
     * Chronos backend passed on) unless bare numbers already are that. */
    const struct unit_name *alt = &size_units[unit == 1ULL << 20 ? 3 : 2];

    return bare_reading(format_bare(bytes, unit, number), format_size_human(bytes, human),
                        bare_size_unit(unit, words), alt);
}

char *bare_duration_reading(uint64_t seconds, uint64_t unit)
{
    char number[64], words[64];
    const struct unit_name *u = unit_name(duration_units, ELEMENTSOF(duration_units), unit);
    const struct unit_name *alt = &duration_units[unit == 1 ? 2 : 0];

    format_bare(seconds, unit, number);
    _cleanup_free_ char *what =
        u ? xasprintf("%s %s", number, u->words) : xasprintf("%" PRIu64 " seconds", seconds);
    return bare_reading(number, what, bare_duration_unit(unit, words), alt);
}

char *format_duration(uint64_t seconds, char buf[static 32])
{
    snprintf(buf, 32, "%" PRIu64 "s", seconds);
    return buf;
}
