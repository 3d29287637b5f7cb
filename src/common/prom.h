/* Prometheus text exposition format (version 0.0.4), written by hand because
 * it is small: a growing buffer, metric families with HELP and TYPE, samples
 * with escaped labels, and fixed-bucket histograms. barged and the agent both
 * serve /metrics with it. */
#ifndef BARGE_COMMON_PROM_H
#define BARGE_COMMON_PROM_H

#include <stdint.h>

#include "common/util.h"

#define BARGE_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct barge_prom {
    struct barge_buf out;
};

/* Starts a family: "# HELP name help" and "# TYPE name type" (type is
 * "counter", "gauge" or "histogram"). Each family must be written once, with
 * all its samples following it. */
void barge_prom_family(struct barge_prom *p, const char *name, const char *type, const char *help);
/* One sample. labels is a NULL-terminated list of name, value pairs (values
 * are escaped here); NULL for none. */
void barge_prom_sample(struct barge_prom *p, const char *name, const char *const *labels,
                       double value);
/* The text so far (NUL-terminated); the caller owns it and p is emptied. */
char *barge_prom_finish(struct barge_prom *p, size_t *len);

/* A histogram with fixed upper bounds (ascending, +Inf implied). Not
 * thread-safe: callers lock around it. */
struct barge_prom_histogram {
    const double *bounds;
    size_t n_bounds;
    uint64_t *counts; /* n_bounds + 1, not cumulative */
    double sum;
    uint64_t count;
};
void barge_prom_histogram_init(struct barge_prom_histogram *h, const double *bounds,
                               size_t n_bounds);
void barge_prom_histogram_release(struct barge_prom_histogram *h);
void barge_prom_histogram_observe(struct barge_prom_histogram *h, double v);
/* Writes name_bucket{...,le="..."}, name_sum and name_count. */
void barge_prom_histogram_write(struct barge_prom *p, const char *name, const char *const *labels,
                                const struct barge_prom_histogram *h);

#endif
