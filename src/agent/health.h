/* Container health checks: the ECS healthCheck of a container definition run
 * inside the container with barge_runtime_exec, one thread per checked
 * container, and the state machine (pure, unit-tested) that turns check
 * results into HEALTHY / UNHEALTHY / UNKNOWN for the container and its task. */
#ifndef BARGE_AGENT_HEALTH_H
#define BARGE_AGENT_HEALTH_H

#include <jansson.h>

#include "common/error.h"
#include "runtime/runtime.h"

enum barge_health_status {
    BARGE_HEALTH_UNKNOWN = 0, /* no check, or not decided yet */
    BARGE_HEALTH_HEALTHY,
    BARGE_HEALTH_UNHEALTHY,
};

/* "HEALTHY", "UNHEALTHY" or "UNKNOWN", as ECS spells them. */
const char *barge_health_status_name(enum barge_health_status s);

struct barge_health_config {
    char **argv;      /* the command: CMD's arguments, or sh -c for CMD-SHELL */
    int interval_s;   /* between the end of one check and the start of the next */
    int timeout_s;    /* a check running longer fails */
    int retries;      /* consecutive failures that make the container UNHEALTHY */
    int start_period; /* seconds after start during which failures do not count */
};

/* Reads a task definition's healthCheck (with ECS's defaults for what is
 * missing). Returns 1 with *out filled, 0 when there is no check (absent, or
 * command ["NONE"]), -1 when it is malformed. */
int barge_health_config_parse(const json_t *hc, struct barge_health_config *out,
                              struct barge_error **err);
void barge_health_config_release(struct barge_health_config *c);

/* What a container's checks have shown so far. */
struct barge_health_state {
    enum barge_health_status status;
    int failures;        /* consecutive failures that counted */
    double started_at;   /* the container's start (epoch seconds) */
    double status_since; /* when status last changed, 0: never */
    int last_exit;       /* exit code of the last check, -1 on timeout */
    char output[1024];   /* the last check's output, trimmed */
};

void barge_health_state_init(struct barge_health_state *s, double started_at);
/* Records the outcome of one check made at now, as Docker does: a success
 * makes the container HEALTHY and resets the count; a failure inside the
 * start period is ignored; otherwise the retries-th consecutive failure makes
 * it UNHEALTHY. Returns true when the status changed. */
bool barge_health_record(struct barge_health_state *s, const struct barge_health_config *c,
                         bool passed, int exit_code, const char *output, double now);

/* The task's health from its containers': only essential containers with a
 * check count; UNHEALTHY if one of them is, else UNKNOWN if one of them is,
 * else HEALTHY; UNKNOWN when no essential container has a check. */
enum barge_health_status barge_health_task(const enum barge_health_status *status,
                                           const bool *essential, const bool *has_check, size_t n);

/* A thread that runs one container's checks with barge_runtime_exec. */
struct barge_health_checker;
/* Starts checking container id (config copied). notify(ud) is called, from
 * the checker's thread and without its lock, whenever the status changes. */
struct barge_health_checker *barge_health_checker_start(struct barge_runtime *rt, const char *id,
                                                        const struct barge_health_config *c,
                                                        double started_at, void (*notify)(void *ud),
                                                        void *ud);
/* A copy of the current state. */
void barge_health_checker_get(struct barge_health_checker *h, struct barge_health_state *out);
/* Stops the thread (waiting for a running check to end) and frees h. */
void barge_health_checker_stop(struct barge_health_checker *h);

#endif
