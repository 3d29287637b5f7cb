/* Placement: which container instance a task goes to, and which tasks go
 * when a group shrinks. Pure functions over a snapshot of the cluster (no
 * store, no I/O, no JSON), so placement is unit-tested and benchmarked on its
 * own.
 *
 * ECS's order of evaluation: instances whose agent is connected and that are
 * ACTIVE, that have the CPU, memory and host ports the task needs, that meet
 * every constraint (binding: distinctInstance, memberOf), then the strategies
 * (best effort, in order: each one keeps the instances it ranks best and the
 * next one breaks their ties; what is still tied at the end is chosen at
 * random):
 *
 *   spread  instanceId|host        fewest tasks of the request's group on the instance
 *   spread  attribute:NAME         the NAME value with fewest tasks of the group
 *   binpack cpu|memory             least of that resource left that still fits
 *   random                         any
 *
 * A snapshot is built once (from the store, or simulated by bench/sched) and
 * then placements are committed into it, so a caller placing many tasks calls
 * barge_sched_place again and again; indexes and caches inside make each
 * decision cost far less than a pass over every instance:
 * - attribute values are grouped per spread attribute, and the group's task
 *   count per value is kept up to date as tasks are added;
 * - binpack walks the instances sorted by what they have left, from the first
 *   that could fit;
 * - a memberOf expression is evaluated once per instance and the answer kept
 *   until a task lands on that instance (and only then if the expression
 *   looks at tasks).
 * A snapshot is used by one thread at a time. */
#ifndef BARGE_SCHED_PLACE_H
#define BARGE_SCHED_PLACE_H

#include <stdint.h>

#include "common/error.h"
#include "sched/cql.h"
#include "sched/instance.h"

#define BARGE_SCHED_MAX_PORTS       64
#define BARGE_SCHED_MAX_STRATEGIES  5  /* ECS: strategies per service or RunTask */
#define BARGE_SCHED_MAX_CONSTRAINTS 10 /* ECS: including the task definition's */

/* --- the snapshot --------------------------------------------------------- */

struct barge_sched_snapshot;

/* An empty snapshot; the caller frees it with barge_sched_snapshot_free. */
struct barge_sched_snapshot *barge_sched_snapshot_new(void);
void barge_sched_snapshot_free(struct barge_sched_snapshot *s);

/* Adds a copy of *in (strings, attributes, ports and groups are copied; the
 * caller keeps what it passed). in->cpu and in->memory are what is free
 * before the tasks recorded with barge_sched_snapshot_add_task. Returns the
 * instance's index. Adding instances after placements is allowed but drops the
 * snapshot's indexes and caches (they are rebuilt on demand). */
size_t barge_sched_snapshot_add(struct barge_sched_snapshot *s,
                                const struct barge_sched_instance *in);

/* Records a task (not STOPPED) of group on instance idx: it holds cpu,
 * memory and ports there; running says whether it counts as running
 * (runningTasksCount) or pending. group may be NULL (no group). */
void barge_sched_snapshot_add_task(struct barge_sched_snapshot *s, size_t idx, const char *group,
                                   int64_t cpu, int64_t memory, const uint16_t *ports,
                                   size_t n_ports, bool running);

/* The reverse of add_task, for planners that decide to stop a task. */
void barge_sched_snapshot_remove_task(struct barge_sched_snapshot *s, size_t idx, const char *group,
                                      int64_t cpu, int64_t memory, const uint16_t *ports,
                                      size_t n_ports, bool running);

size_t barge_sched_snapshot_count(const struct barge_sched_snapshot *s);
/* The instance at idx, as it stands after the tasks added so far (borrowed;
 * valid until the snapshot changes). */
const struct barge_sched_instance *barge_sched_snapshot_get(const struct barge_sched_snapshot *s,
                                                            size_t idx);
/* The index of the instance with this id, or -1. */
ssize_t barge_sched_snapshot_find(const struct barge_sched_snapshot *s, const char *id);

/* --- strategies and constraints ------------------------------------------- */

enum barge_sched_strategy_type {
    BARGE_SCHED_RANDOM,
    BARGE_SCHED_SPREAD,
    BARGE_SCHED_BINPACK,
};

enum barge_sched_field {
    BARGE_SCHED_FIELD_NONE,
    BARGE_SCHED_FIELD_INSTANCE, /* spread: instanceId or host */
    BARGE_SCHED_FIELD_ATTRIBUTE,
    BARGE_SCHED_FIELD_CPU,
    BARGE_SCHED_FIELD_MEMORY,
};

struct barge_sched_strategy {
    enum barge_sched_strategy_type type;
    enum barge_sched_field field;
    char *attribute; /* FIELD_ATTRIBUTE: the attribute's name; owned by the policy */
};

enum barge_sched_constraint_type {
    BARGE_SCHED_DISTINCT_INSTANCE,
    BARGE_SCHED_MEMBER_OF,
};

struct barge_sched_constraint {
    enum barge_sched_constraint_type type;
    struct barge_cql *expr; /* MEMBER_OF; owned by the policy */
};

/* The placementStrategy and placementConstraints of a service or RunTask,
 * checked and compiled. Initialise with barge_sched_policy_init (or zero it),
 * release with barge_sched_policy_release. */
struct barge_sched_policy {
    struct barge_sched_strategy strategies[BARGE_SCHED_MAX_STRATEGIES];
    size_t n_strategies;
    struct barge_sched_constraint constraints[BARGE_SCHED_MAX_CONSTRAINTS];
    size_t n_constraints;
};

void barge_sched_policy_init(struct barge_sched_policy *p);
void barge_sched_policy_release(struct barge_sched_policy *p);

/* Appends a PlacementStrategy {type, field}; field may be NULL. Fails with an
 * InvalidParameterException saying what is wrong (unknown type, a field the
 * type does not take, more than 5 strategies). */
int barge_sched_policy_add_strategy(struct barge_sched_policy *p, const char *type,
                                    const char *field, struct barge_error **err);

/* Appends a PlacementConstraint {type, expression}; expression may be NULL.
 * A memberOf expression is compiled here, so an invalid one fails with the
 * parser's message (cql.h). from_task_definition: only memberOf is allowed,
 * as in a task definition. */
int barge_sched_policy_add_constraint(struct barge_sched_policy *p, const char *type,
                                      const char *expression, bool from_task_definition,
                                      struct barge_error **err);

/* ECS's default for service tasks when no strategy was given: spread over
 * attribute:ecs.availability-zone, then over instanceId. Does nothing when p
 * has strategies. */
void barge_sched_policy_default_service(struct barge_sched_policy *p);

/* --- placing -------------------------------------------------------------- */

struct barge_sched_request {
    int64_t cpu;
    int64_t memory;
    uint16_t ports[BARGE_SCHED_MAX_PORTS]; /* fixed host ports the task needs */
    size_t n_ports;
    const char *group;                       /* the task's group; NULL: none */
    const struct barge_sched_policy *policy; /* NULL: no constraints, random */
};

/* Why an instance cannot take a task, from the farthest from fitting to the
 * closest: placement reports the instance that got furthest. */
enum barge_sched_verdict {
    BARGE_SCHED_FITS = 0,
    BARGE_SCHED_NOT_ELIGIBLE, /* agent disconnected, or not ACTIVE */
    BARGE_SCHED_NO_CPU,
    BARGE_SCHED_NO_MEMORY,
    BARGE_SCHED_NO_PORTS,
    BARGE_SCHED_NOT_MEMBER_OF,
    BARGE_SCHED_NOT_DISTINCT,
};

/* Why nothing could be placed. */
struct barge_sched_failure {
    ssize_t closest;                 /* index of the closest instance; -1: no instances */
    enum barge_sched_verdict reason; /* its verdict */
};

/* Can instance idx take req now? (Constraints included.) */
enum barge_sched_verdict barge_sched_check(struct barge_sched_snapshot *s, size_t idx,
                                           const struct barge_sched_request *req);

/* Picks the instance for req and commits the task into the snapshot (as
 * add_task with running false). Returns its index, or -1 when none can take
 * it; then *why (may be NULL) names the closest instance and its verdict
 * (the one that failed the latest check: agent, CPU, memory, ports, then the
 * constraints in order). seed drives the random choice among ties, so a fixed
 * seed on the same snapshot gives the same answer. Ties are broken uniformly,
 * except that a scan may stop at the first instance that no other could beat
 * (no task of the group on it, say), visiting instances from a random place. */
ssize_t barge_sched_place(struct barge_sched_snapshot *s, const struct barge_sched_request *req,
                          uint64_t seed, struct barge_sched_failure *why);

/* Records req on instance idx without choosing (StartTask places where it is
 * told, after barge_sched_check). */
void barge_sched_commit(struct barge_sched_snapshot *s, size_t idx,
                        const struct barge_sched_request *req);

/* ECS's failure reason for a verdict, as RunTask's failures[].reason shows it:
 * "RESOURCE:CPU", "RESOURCE:MEMORY", "RESOURCE:PORTS", "AGENT",
 * "MemberOf placement constraint unsatisfied.",
 * "DistinctInstance placement constraint unsatisfied.". Static string. */
const char *barge_sched_verdict_reason(enum barge_sched_verdict v);

/* ECS's sentence about the closest instance, for the service event "(service
 * x) was unable to place a task because no container instance met all of its
 * requirements. <this>", e.g. "The closest matching (container-instance 5f..)
 * has insufficient CPU units available." or "No Container Instances were found
 * in your cluster.". The caller frees it. */
char *barge_sched_failure_message(const struct barge_sched_snapshot *s,
                                  const struct barge_sched_failure *why);

/* --- scale-in ------------------------------------------------------------- */

/* Which of a group's tasks to stop so that what stays is placed as the
 * strategies would have placed it: task_instances[i] is the snapshot index
 * of the instance of task i. Walking the strategies in order, spread takes
 * from the attribute value (or instance) with the most of these tasks,
 * binpack from the instance with the most of that resource free (counting
 * what the tasks already chosen free), random ends the walk; remaining ties
 * go to the task listed first, so callers list first the tasks they would
 * rather stop (pending before running, unhealthy before healthy...). Writes
 * min(n_stop, n_tasks) indices into task_instances to out, in stop order, and
 * returns how many. The snapshot is not changed. policy may be NULL. */
size_t barge_sched_scale_in(const struct barge_sched_snapshot *s,
                            const struct barge_sched_policy *policy, const size_t *task_instances,
                            size_t n_tasks, size_t n_stop, size_t *out);

#endif
