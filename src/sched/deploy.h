/* Rolling deployments: what the service scheduler should start and stop next.
 * Pure: a snapshot of a service's tasks in, a plan out. The plan honours
 * ECS's bounds: at most maximumPercent of desiredCount (rounded down) tasks
 * exist at once, and at least minimumHealthyPercent (rounded up) stay healthy
 * while old tasks are replaced. Tasks under scale-in protection are never
 * chosen: scale-in takes unprotected ones instead, and a deployment waits for
 * the protection of old tasks to end. */
#ifndef BARGE_SCHED_DEPLOY_H
#define BARGE_SCHED_DEPLOY_H

#include <stddef.h>

#include "common/util.h"

struct barge_deploy_task {
    int deployment; /* 0 is the primary (newest) deployment; larger are older */
    bool healthy;   /* RUNNING and, when it has health checks, HEALTHY */
    bool must_move; /* on a DRAINING instance: to be replaced elsewhere */
    bool protected; /* scale-in protection (UpdateTaskProtection): never stopped */
};

struct barge_deploy_input {
    int desired;
    int minimum_healthy_percent;
    int maximum_percent;
    bool primary_frozen; /* a FAILED primary deployment starts nothing */
    /* Blue/green before the bake time is over: the primary (green) starts
     * at full count whatever maximumPercent says, and old (blue) tasks keep
     * running. */
    bool keep_old;
    const struct barge_deploy_task *tasks; /* active tasks (desired RUNNING) only */
    size_t n_tasks;
};

struct barge_deploy_plan {
    int start;    /* primary tasks to start now */
    size_t *stop; /* indices into input tasks to stop now; owned, free() */
    size_t n_stop;
    bool stuck;         /* work remains but neither bound lets anything move */
    int protected_kept; /* tasks that would have been stopped but are protected */
    bool steady;        /* only primary tasks, desired many, all healthy */
    int max_total;      /* the bounds, for messages */
    int min_healthy;
};

/* Fills *plan; the caller frees plan->stop. */
void barge_deploy_plan(const struct barge_deploy_input *in, struct barge_deploy_plan *plan);

/* ECS's circuit breaker threshold: half the desired count, between 3 and 200. */
int barge_deploy_failure_threshold(int desired);

#endif
