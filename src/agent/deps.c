/* Container ordering (ECS dependsOn). A container starts once each of its
 * dependencies meets its condition: START (the dependency was started),
 * COMPLETE (it exited), SUCCESS (it exited with 0), HEALTHY (its health check
 * passed). A dependency that can no longer meet the condition (it exited
 * before becoming healthy, exited non-zero for SUCCESS, or will itself never
 * start) makes the dependent container impossible to start; the engine then
 * gives it up with the explanation built here. Shutdown runs in the reverse
 * order, so that a container is stopped only after everything that depends on
 * it. */
#include "agent/deps.h"

#include <string.h>

#include "common/json.h"

const char *barge_dep_condition_name(enum barge_dep_condition c)
{
    static const char *const names[] = {"START", "COMPLETE", "SUCCESS", "HEALTHY"};
    return (size_t)c < BARGE_ARRAY_SIZE(names) ? names[c] : "?";
}

static int condition_parse(const char *s, enum barge_dep_condition *out)
{
    for (int c = BARGE_DEP_START; c <= BARGE_DEP_HEALTHY; c++)
        if (barge_streq(s, barge_dep_condition_name((enum barge_dep_condition)c))) {
            *out = (enum barge_dep_condition)c;
            return 0;
        }
    return -1;
}

void barge_deps_free(struct barge_deps *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->edges[i]);
    free(d->edges);
    free(d->n_edges);
    free(d);
}

static const char *name_of(const json_t *defs, size_t i)
{
    return barge_json_str(json_array_get(defs, i), "name", "?");
}

/* Depth-first search for a cycle; colour 0 unvisited, 1 on the path, 2 done. */
static bool has_cycle(const struct barge_deps *d, size_t i, unsigned char *colour, size_t *at)
{
    colour[i] = 1;
    for (size_t k = 0; k < d->n_edges[i]; k++) {
        size_t t = d->edges[i][k].target;
        if (colour[t] == 1 || (colour[t] == 0 && has_cycle(d, t, colour, at))) {
            if (colour[t] == 1)
                *at = i;
            return true;
        }
    }
    colour[i] = 2;
    return false;
}

int barge_deps_build(const json_t *defs, struct barge_deps **out, struct barge_error **err)
{
    *out = NULL;
    struct barge_deps *d = barge_xcalloc(1, sizeof(*d));
    d->n = json_array_size(defs);
    d->edges = barge_xcalloc(d->n + 1, sizeof(*d->edges));
    d->n_edges = barge_xcalloc(d->n + 1, sizeof(size_t));
    size_t i, j;
    json_t *c, *dep;
    json_array_foreach((json_t *)defs, i, c)
    {
        json_t *list = barge_json_array(c, "dependsOn");
        d->edges[i] = barge_xcalloc(json_array_size(list) + 1, sizeof(struct barge_dep_edge));
        json_array_foreach(list, j, dep)
        {
            const char *target = barge_json_str(dep, "containerName", "");
            const char *cond = barge_json_str(dep, "condition", "");
            size_t t = d->n;
            for (size_t k = 0; k < d->n; k++)
                if (barge_streq(name_of(defs, k), target))
                    t = k;
            enum barge_dep_condition cc;
            if (t == d->n || t == i) {
                barge_deps_free(d);
                return barge_error_set(err, BARGE_ERR_INVALID,
                                       "container '%s' depends on '%s', which is not another "
                                       "container of the task",
                                       name_of(defs, i), target);
            }
            if (condition_parse(cond, &cc) < 0) {
                barge_deps_free(d);
                return barge_error_set(err, BARGE_ERR_INVALID,
                                       "container '%s' has an unknown dependsOn condition '%s'",
                                       name_of(defs, i), cond);
            }
            d->edges[i][d->n_edges[i]++] = (struct barge_dep_edge){t, cc};
        }
    }
    unsigned char *colour = barge_xcalloc(d->n + 1, 1);
    for (i = 0; i < d->n; i++) {
        size_t at = 0;
        if (colour[i] == 0 && has_cycle(d, i, colour, &at)) {
            free(colour);
            const char *name = name_of(defs, at);
            barge_deps_free(d);
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "the dependsOn of container '%s' form a cycle", name);
        }
    }
    free(colour);
    *out = d;
    return 0;
}

enum barge_dep_verdict barge_deps_verdict(const struct barge_deps *d, const json_t *defs, size_t i,
                                          const struct barge_dep_view *views, char **why)
{
    if (why)
        *why = NULL;
    enum barge_dep_verdict verdict = BARGE_DEP_READY;
    char *wait_why = NULL;
    for (size_t k = 0; k < d->n_edges[i]; k++) {
        size_t t = d->edges[i][k].target;
        enum barge_dep_condition cond = d->edges[i][k].cond;
        const struct barge_dep_view *v = &views[t];
        const char *tn = name_of(defs, t);
        const char *cn = barge_dep_condition_name(cond);
        char *never = NULL;
        bool met = false;
        if (v->abandoned) {
            never = barge_xasprintf("container '%s' will never start (dependsOn %s)", tn, cn);
        } else {
            switch (cond) {
            case BARGE_DEP_START:
                met = v->started;
                break;
            case BARGE_DEP_COMPLETE:
                met = v->exited;
                break;
            case BARGE_DEP_SUCCESS:
                met = v->exited && v->exit_code == 0;
                if (v->exited && v->exit_code != 0)
                    never = barge_xasprintf("container '%s' exited with %d (dependsOn %s)", tn,
                                            v->exit_code, cn);
                break;
            case BARGE_DEP_HEALTHY:
                /* Checked at startup only: once healthy, later changes do
                 * not matter; exiting first means it never will be. */
                met = v->health == BARGE_HEALTH_HEALTHY && !v->exited;
                if (v->exited)
                    never = barge_xasprintf("container '%s' exited before becoming healthy "
                                            "(dependsOn %s)",
                                            tn, cn);
                break;
            }
        }
        if (never) {
            free(wait_why);
            if (why)
                *why = never;
            else
                free(never);
            return BARGE_DEP_NEVER;
        }
        if (!met && verdict == BARGE_DEP_READY) {
            verdict = BARGE_DEP_WAIT;
            wait_why = barge_xasprintf("container '%s' to %s", tn,
                                       cond == BARGE_DEP_START      ? "start"
                                       : cond == BARGE_DEP_COMPLETE ? "complete"
                                       : cond == BARGE_DEP_SUCCESS  ? "exit successfully"
                                                                    : "become healthy");
        }
    }
    if (why)
        *why = wait_why;
    else
        free(wait_why);
    return verdict;
}

size_t barge_deps_stop_waves(const struct barge_deps *d, size_t *wave)
{
    /* wave[t] = 1 + max(wave of the containers depending on t); the graph is
     * acyclic, so n relaxation passes settle it. */
    for (size_t i = 0; i < d->n; i++)
        wave[i] = 0;
    for (size_t pass = 0; pass < d->n; pass++) {
        bool changed = false;
        for (size_t i = 0; i < d->n; i++)
            for (size_t k = 0; k < d->n_edges[i]; k++) {
                size_t t = d->edges[i][k].target;
                if (wave[t] < wave[i] + 1) {
                    wave[t] = wave[i] + 1;
                    changed = true;
                }
            }
        if (!changed)
            break;
    }
    size_t rounds = 0;
    for (size_t i = 0; i < d->n; i++)
        if (wave[i] + 1 > rounds)
            rounds = wave[i] + 1;
    return rounds;
}
