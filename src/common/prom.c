/* The Prometheus text writer behind prom.h. Numbers are written so that
 * integers stay integers ("3", not "3.000000") and everything else keeps full
 * precision; label values and help texts are escaped as the format says. */
#include "common/prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void put(struct barge_prom *p, const char *s, size_t n)
{
    barge_buf_addn(&p->out, s, n);
}

static void puts_(struct barge_prom *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Escapes \ and newline (and " when quoted), as label values need. */
static void put_escaped(struct barge_prom *p, const char *s, bool quoted)
{
    for (; *s; s++) {
        if (*s == '\\')
            puts_(p, "\\\\");
        else if (*s == '\n')
            puts_(p, "\\n");
        else if (quoted && *s == '"')
            puts_(p, "\\\"");
        else
            put(p, s, 1);
    }
}

void barge_prom_family(struct barge_prom *p, const char *name, const char *type, const char *help)
{
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    put_escaped(p, help, false);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, type);
    puts_(p, "\n");
}

static void put_value(struct barge_prom *p, double v)
{
    char num[64];
    if (isnan(v))
        strcpy(num, "NaN");
    else if (isinf(v))
        strcpy(num, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(num, sizeof(num), "%.0f", v);
    else
        snprintf(num, sizeof(num), "%.17g", v);
    puts_(p, num);
}

static void put_labels(struct barge_prom *p, const char *const *labels, const char *le)
{
    bool any = (labels && labels[0]) || le;
    if (!any)
        return;
    puts_(p, "{");
    bool first = true;
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        if (!first)
            puts_(p, ",");
        first = false;
        puts_(p, labels[i]);
        puts_(p, "=\"");
        put_escaped(p, labels[i + 1], true);
        puts_(p, "\"");
    }
    if (le) {
        if (!first)
            puts_(p, ",");
        puts_(p, "le=\"");
        puts_(p, le);
        puts_(p, "\"");
    }
    puts_(p, "}");
}

void barge_prom_sample(struct barge_prom *p, const char *name, const char *const *labels,
                       double value)
{
    puts_(p, name);
    put_labels(p, labels, NULL);
    puts_(p, " ");
    put_value(p, value);
    puts_(p, "\n");
}

char *barge_prom_finish(struct barge_prom *p, size_t *len)
{
    return barge_buf_steal(&p->out, len);
}

void barge_prom_histogram_init(struct barge_prom_histogram *h, const double *bounds,
                               size_t n_bounds)
{
    h->bounds = bounds;
    h->n_bounds = n_bounds;
    h->counts = barge_xcalloc(n_bounds + 1, sizeof(*h->counts));
    h->sum = 0;
    h->count = 0;
}

void barge_prom_histogram_release(struct barge_prom_histogram *h)
{
    free(h->counts);
    h->counts = NULL;
}

void barge_prom_histogram_observe(struct barge_prom_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void barge_prom_histogram_write(struct barge_prom *p, const char *name, const char *const *labels,
                                const struct barge_prom_histogram *h)
{
    _cleanup_free_ char *bucket = barge_xasprintf("%s_bucket", name);
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        char le[64];
        if (i == h->n_bounds)
            strcpy(le, "+Inf");
        else
            snprintf(le, sizeof(le), "%g", h->bounds[i]);
        puts_(p, bucket);
        put_labels(p, labels, le);
        puts_(p, " ");
        put_value(p, (double)cum);
        puts_(p, "\n");
    }
    _cleanup_free_ char *sum = barge_xasprintf("%s_sum", name);
    _cleanup_free_ char *count = barge_xasprintf("%s_count", name);
    barge_prom_sample(p, sum, labels, h->sum);
    barge_prom_sample(p, count, labels, (double)h->count);
}
