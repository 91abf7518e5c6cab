/*
 * output: what the CLI prints. Tables are aligned, with the state column
 * coloured on a terminal only (NO_COLOR honoured by main.c); -o json and
 * -o yaml print the API's own objects for scripts.
 */
#include "cli.h"
#include "util/timeutil.h"

void print_json(const cJSON *j)
{
    _cleanup_free_ char *s = cJSON_Print(j);
    puts(s ? s : "null");
}

/* YAML scalars: plain when unambiguous, else double-quoted JSON strings
 * (which are valid YAML). */
static void yaml_scalar(const char *s)
{
    bool plain = *s && !strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) && !strpbrk(s, ":#\n\t\"'\\") &&
                 s[strlen(s) - 1] != ' ' && !streq(s, "true") && !streq(s, "false") &&
                 !streq(s, "null") && !streq(s, "~") && strspn(s, "0123456789.+-eE") != strlen(s);
    if (plain) {
        fputs(s, stdout);
        return;
    }
    cJSON *tmp = cJSON_CreateString(s);
    _cleanup_free_ char *q = cJSON_PrintUnformatted(tmp);
    cJSON_Delete(tmp);
    fputs(q, stdout);
}

static void yaml_value(const cJSON *j, int indent, bool in_seq);

static void yaml_inline(const cJSON *j)
{
    if (cJSON_IsString(j))
        yaml_scalar(j->valuestring);
    else if (cJSON_IsObject(j))
        fputs("{}", stdout);
    else if (cJSON_IsArray(j))
        fputs("[]", stdout);
    else {
        _cleanup_free_ char *s = cJSON_PrintUnformatted(j);
        fputs(s, stdout);
    }
}

static bool is_block(const cJSON *j)
{
    return (cJSON_IsObject(j) || cJSON_IsArray(j)) && j->child;
}

static void yaml_value(const cJSON *j, int indent, bool in_seq)
{
    const cJSON *e;
    bool first = true;
    if (cJSON_IsObject(j)) {
        cJSON_ArrayForEach(e, j)
        {
            if (!(in_seq && first))
                printf("%*s", indent, "");
            first = false;
            yaml_scalar(e->string);
            if (is_block(e)) {
                fputs(":\n", stdout);
                yaml_value(e, indent + 2, false);
            } else {
                fputs(": ", stdout);
                yaml_inline(e);
                fputs("\n", stdout);
            }
        }
    } else if (cJSON_IsArray(j)) {
        cJSON_ArrayForEach(e, j)
        {
            printf("%*s- ", indent, "");
            if (is_block(e))
                yaml_value(e, indent + 2, true);
            else {
                yaml_inline(e);
                fputs("\n", stdout);
            }
        }
    }
}

void print_yaml(const cJSON *j)
{
    if (is_block(j))
        yaml_value(j, 0, false);
    else {
        yaml_inline(j);
        fputs("\n", stdout);
    }
}

char *term_safe(const char *s)
{
    if (!s)
        return xstrdup("-");
    /* Every byte may become "\xNN". */
    char *out = xmalloc(strlen(s) * 4 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        /* C0 controls, DEL, and C1 controls written in UTF-8 (U+0080..U+009F). */
        bool c1 = p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
        if (*p < 0x20 || *p == 0x7f || c1) {
            o += sprintf(o, "\\x%02x", c1 ? *++p : *p);
            continue;
        }
        *o++ = (char) *p;
    }
    *o = '\0';
    return out;
}

void table_add(struct table *t, char **row)
{
    t->cells = xrealloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(char *));
    for (size_t i = 0; i < t->n_cols; i++) {
        /* Cells show what other users wrote (names, reasons): no terminal
         * escape in them reaches the terminal. */
        t->cells[t->n_rows * t->n_cols + i] = term_safe(row[i]);
        free(row[i]);
    }
    t->n_rows++;
}

const char *state_color(const char *code)
{
    if (!code)
        return "";
    if (streq(code, "COMPLETE"))
        return "\033[32m";
    if (streq(code, "EXECUTOR_ERROR") || streq(code, "SYSTEM_ERROR"))
        return "\033[31m";
    if (streq(code, "RUNNING") || streq(code, "INITIALIZING"))
        return "\033[36m";
    if (streq(code, "CANCELING") || streq(code, "CANCELED"))
        return "\033[33m";
    return "";
}

void table_print(const struct table *t, bool color)
{
    _cleanup_free_ size_t *w = xcalloc(t->n_cols, sizeof(size_t));
    for (size_t c = 0; c < t->n_cols; c++) {
        w[c] = strlen(t->headers[c]);
        for (size_t r = 0; r < t->n_rows; r++)
            w[c] = MAX(w[c], strlen(t->cells[r * t->n_cols + c]));
    }
    for (size_t c = 0; c < t->n_cols; c++)
        printf("%-*s%s", c + 1 < t->n_cols ? (int) w[c] : 0, t->headers[c],
               c + 1 < t->n_cols ? "  " : "\n");
    for (size_t r = 0; r < t->n_rows; r++)
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *cell = t->cells[r * t->n_cols + c];
            const char *on = color && (int) c == t->state_col ? state_color(cell) : "";
            printf("%s%-*s%s%s", on, c + 1 < t->n_cols ? (int) w[c] : 0, cell, *on ? "\033[0m" : "",
                   c + 1 < t->n_cols ? "  " : "\n");
        }
}

void table_done(struct table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_rows = 0;
}

char *format_age(const char *rfc3339)
{
    usec_t t;
    if (!rfc3339 || parse_rfc3339(rfc3339, &t) < 0)
        return NULL;
    int64_t s = (now_realtime() - t) / USEC_PER_SEC;
    if (s < 0)
        s = 0;
    if (s < 120)
        return xasprintf("%llds", (long long) s);
    if (s < 7200)
        return xasprintf("%lldm", (long long) (s / 60));
    if (s < 172800)
        return xasprintf("%lldh", (long long) (s / 3600));
    return xasprintf("%lldd", (long long) (s / 86400));
}
