/* Container ordering: a task's dependsOn graph, whether a container may start
 * given what its dependencies have done, and the shutdown order (the reverse
 * of the startup order). Pure functions; the engine does the waiting. */
#ifndef BARGE_AGENT_DEPS_H
#define BARGE_AGENT_DEPS_H

#include <jansson.h>

#include "agent/health.h"
#include "common/error.h"

enum barge_dep_condition {
    BARGE_DEP_START,
    BARGE_DEP_COMPLETE,
    BARGE_DEP_SUCCESS,
    BARGE_DEP_HEALTHY,
};

/* The graph of a task's dependsOn: for each container, the containers it
 * waits for and on what. */
struct barge_deps {
    size_t n;
    struct barge_dep_edge {
        size_t target;
        enum barge_dep_condition cond;
    } * *edges; /* edges[i]: n_edges[i] entries */
    size_t *n_edges;
};

/* Builds the graph from containerDefinitions. Unknown names, unknown
 * conditions and cycles are errors (barged refuses them already; an agent
 * must not trust that). *out is the caller's, freed with
 * barge_deps_free(). */
int barge_deps_build(const json_t *defs, struct barge_deps **out, struct barge_error **err);
void barge_deps_free(struct barge_deps *d);

/* A container as the ordering sees it. */
struct barge_dep_view {
    bool started;   /* the runtime started it (it may have exited since) */
    bool exited;    /* it ran and exited (for good: no restart pending) */
    int exit_code;  /* when exited */
    bool abandoned; /* it will never start */
    enum barge_health_status health;
};

enum barge_dep_verdict {
    BARGE_DEP_READY, /* every dependency is met: start it */
    BARGE_DEP_WAIT,  /* not yet */
    BARGE_DEP_NEVER, /* a dependency can no longer be met */
};

/* May container i start? With NEVER, *why (optional) gets an explanation
 * naming the dependency, e.g. "container 'db' exited with 1 (dependsOn
 * SUCCESS)"; with WAIT, *why names what it waits for. Caller frees *why. */
enum barge_dep_verdict barge_deps_verdict(const struct barge_deps *d, const json_t *defs, size_t i,
                                          const struct barge_dep_view *views, char **why);
/* Shutdown order, the reverse of the startup order: wave[i] is the round in
 * which container i is stopped; containers no one depends on go in round 0,
 * a container goes one round after the last of its dependents. Returns the
 * number of rounds. */
size_t barge_deps_stop_waves(const struct barge_deps *d, size_t *wave);
const char *barge_dep_condition_name(enum barge_dep_condition c);

#endif
