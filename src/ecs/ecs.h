/* The ECS domain layer: the store layout of ECS resources and the state
 * changes of tasks, services and container instances that both the API
 * handlers (src/api/ecs_*.c) and the control loops (src/control/) apply. It
 * works on the stored JSON documents and knows nothing of HTTP or of the API
 * framework, so control/ can depend on it instead of on api/. */
#ifndef BARGE_ECS_ECS_H
#define BARGE_ECS_ECS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/util.h"
#include "core/server.h"
#include "store/store.h"

/* Store kinds. Keys: cluster name; "family!%010d" revision; family name;
 * tagged resource ARN. */
#define ECS_KIND_CLUSTER "cluster"
#define ECS_KIND_TASKDEF "taskdef"
#define ECS_KIND_FAMILY  "family"
#define ECS_KIND_TAGS    "tags"
/* Keys "<cluster>/<id>" so a cluster's members are one prefix scan away. */
#define ECS_KIND_INSTANCE "instance"
#define ECS_KIND_TASK     "task"
#define ECS_KIND_SERVICE  "service"
/* Tasks per container instance: "<instanceId>/<taskId>" -> {cluster, taskId}. */
#define ECS_KIND_ITASK "itask"

/* The instances of barged's Fargate capacity pool live under this pseudo
 * cluster, which no listing shows ('@' is not allowed in cluster names). */
#define ECS_FARGATE_POOL "@fargate"

/* Fargate usage records: "<cluster>/<stop time>/<task id>". */
#define ECS_KIND_USAGE "usage"
/* Services: "<cluster>/<service>/<task id>" -> {task, deployment}. */
#define ECS_KIND_STASK "stask"
/* Daemon task definitions, keyed as task definitions ("family!%010d"). */
#define ECS_KIND_DTASKDEF "dtaskdef"

/* ---- names, ARNs and lookups (ids.c) ---- */

/* "arn:aws:ecs:<region>:<account>:<resource>" for this server; caller frees. */
char *ecs_arn(const struct barge_server *srv, const char *fmt, ...) BARGE_PRINTF(2, 3);

/* The path of "arn:aws:ecs:<region>:<account>:<type>/<a>/<b>..." after the
 * type, when it is an ARN of this server with parts non-empty segments
 * (e.g. "<cluster>/<service>", a store key); NULL otherwise. Caller frees. */
char *ecs_arn_path(const struct barge_server *srv, const char *arn, const char *type, int parts);

/* Turns a cluster name or ARN (NULL: "default") into its name; caller frees.
 * A malformed ARN, or one of another region/account, is an
 * InvalidParameterException. */
int ecs_cluster_name(const struct barge_server *srv, const char *ident, char **name,
                     struct barge_error **err);
/* Loads the ACTIVE cluster named by ident; a missing or INACTIVE one is a
 * ClusterNotFoundException. *doc is a new reference. */
int ecs_cluster_load(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                     json_t **doc, struct barge_error **err);

/* A copy of a stored document without its internal ("_"-prefixed) members,
 * which never leave barged. New reference. */
json_t *ecs_public(const json_t *doc);

/* The last path segment of an ARN of the given type ("task",
 * "container-instance") or ident itself when it is not an ARN; caller frees.
 * NULL (with err set) for an ARN of another type, region or account. */
char *ecs_resource_id(const struct barge_server *srv, const char *ident, const char *type,
                      struct barge_error **err);
/* Loads the document of kind stored as "<cluster>/<id>", ident being the
 * resource's id or ARN (of resource type type, e.g. "task"). 1 found (*doc,
 * *key set), 0 not, -1 error (a malformed ARN is InvalidParameterException). */
int ecs_cluster_find(struct barge_tx *tx, const struct barge_server *srv, const char *kind,
                     const char *type, const char *cluster, const char *ident, json_t **doc,
                     char **key, struct barge_error **err);
/* Store key of a task definition revision ("web!0000000003": "!" sorts before
 * every name character, so keys order by family, then revision); caller frees. */
char *ecs_taskdef_key(const char *family, long long revision);
/* Resolves "family", "family:revision" or a task definition ARN. A bare
 * family means its latest ACTIVE revision. Returns 1 with *doc (new reference)
 * and *key (caller frees) when found, 0 when not (no error set), -1 on error.
 * A malformed identifier is a ClientException. */
int ecs_taskdef_find(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                     json_t **doc, char **key, struct barge_error **err);
/* The same for readers that only read the document (e.g. to answer it): *doc
 * may be the store's cached document, shared with other threads, so it must
 * never be changed; release it with json_decref((json_t *)doc). */
int ecs_taskdef_find_shared(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                            const json_t **doc, char **key, struct barge_error **err);

/* True when name is 1-255 of [A-Za-z0-9_-], ECS's rule for cluster, family,
 * container and service names. */
bool ecs_name_valid(const char *name);

/* ---- tasks (task.c) ---- */

/* Asks for a task to stop (desiredStatus STOPPED) with a stop code and
 * reason, as StopTask does; the caller stores it. */
void ecs_task_request_stop(json_t *task, const char *stop_code, const char *reason);
/* Marks a task STOPPED at once (its host is gone); returns false when it was
 * already STOPPED. */
bool ecs_task_force_stopped(json_t *task, const char *reason);
/* Counts a change of the task document, so that agents and describers can
 * tell a newer copy from an older one. */
void ecs_task_bump_version(json_t *task);
/* Is the task under scale-in protection (UpdateTaskProtection, which keeps
 * "_protectedUntil") at now? */
bool ecs_task_protected(const json_t *task, double now);

/* ---- services (service.c) ---- */

/* Prepends an event "(service NAME) <message>" (newest first, at most 100). */
void ecs_service_event(json_t *svc, const char *fmt, ...) BARGE_PRINTF(2, 3);
/* A new deployment or task set id, "ecs-svc/" and 19 random digits. */
#define ECS_DEPLOYMENT_ID_LEN 32
void ecs_deployment_id(char id[ECS_DEPLOYMENT_ID_LEN]);
/* Does svc use the EXTERNAL deployment controller (task sets)? */
bool ecs_service_external(const json_t *svc);
/* Sets the computedDesiredCount of each of svc's task sets: its scale (a
 * percentage) of the service's desiredCount, rounded up; 0 for a DRAINING set
 * or a service that is not ACTIVE. */
void ecs_service_tasksets_compute(json_t *svc);
/* A new PRIMARY deployment (new reference); reason NULL gives ECS's default. */
json_t *ecs_deployment_new(const json_t *svc, const char *td_arn, json_int_t desired,
                           const char *reason);
/* Makes dep (reference stolen) the PRIMARY deployment of svc. */
void ecs_service_push_deployment(json_t *svc, json_t *dep);

/* ---- service deployment records (deployment.c) ---- */

/* A time-ordered id: milliseconds since the epoch, then random digits so that
 * two ids of the same millisecond differ. Caller frees. */
char *ecs_time_id(void);

/* Service deployment history (deployment.c). Keys
 * "<cluster>/<service>/<id>", ids ordered by creation time. */
#define ECS_KIND_SDEPLOY   "sdeploy"
#define ECS_KIND_SREVISION "srevision"
/* Records the service revision and the service deployment of svc's PRIMARY
 * deployment, just pushed by CreateService or UpdateService; a record of an
 * older deployment still in progress ends STOPPED. */
int ecs_service_deployment_open(struct barge_tx *tx, const struct barge_server *srv, json_t *svc,
                                struct barge_error **err);
/* Marks dep, a new deployment rolling back from failed (the former primary),
 * as serving failed's service deployment record with revision (an id; NULL
 * when unknown); circuit_breaker says that the circuit breaker asked. */
void ecs_service_deployment_rollback(const json_t *failed, json_t *dep, const char *revision,
                                     bool circuit_breaker);
/* Brings the record of svc's primary deployment (status, task counts,
 * circuit breaker, rollback) up to date; call before storing svc. */
int ecs_service_deployment_sync(struct barge_tx *tx, const struct barge_server *srv, json_t *svc,
                                struct barge_error **err);
/* Has the record reached a final status? */
bool ecs_service_deployment_finished(const json_t *rec);

/* ---- daemons (daemon.c) ---- */

/* Daemons (API: api/ecs_daemons.c), "<cluster>/<name>", scheduled like
 * DAEMON services on the instances of their capacity providers, and their
 * deployments and revisions, "<cluster>/<name>/<time id>". Their task
 * definitions are ECS_KIND_DTASKDEF. */
#define ECS_KIND_DAEMON    "daemon"
#define ECS_KIND_DDEPLOY   "ddeploy"
#define ECS_KIND_DREVISION "drevision"
/* Brings the record of the daemon's current deployment up to date (it
 * succeeds when the scheduler completes its rollout); call before storing
 * daemon. */
int ecs_daemon_sync(struct barge_tx *tx, const struct barge_server *srv, json_t *daemon,
                    struct barge_error **err);

/* ---- placement (placement.c) and capacity providers (capacity.c) ---- */

/* What the placements of one write transaction share: the snapshots of the
 * cluster's instances and tasks, read once and updated with every task placed
 * through it. Use it only within tx; the caller frees it (NULL is fine). */
struct ecs_placement;
struct ecs_placement *ecs_placement_new(struct barge_tx *tx);
void ecs_placement_free(struct ecs_placement *pl);

/* Places and stores one task of td in the cluster, as RunTask does, in pl's
 * transaction; params holds startedBy, group, overrides and tags. Returns 1
 * with *task (the stored document, new reference), 0 with *reason (ECS's
 * failure reason of the closest instance, caller frees) when nothing fits, -1
 * on error. */
int ecs_task_place_one(struct ecs_placement *pl, struct barge_server *srv, const json_t *cluster,
                       const json_t *td, const json_t *params, json_t **task, char **reason,
                       struct barge_error **err);

/* Checks params' placementStrategy and placementConstraints (as CreateService
 * and UpdateService receive them); an invalid one is an
 * InvalidParameterException pointing at the problem. */
int ecs_placement_validate(const json_t *params, struct barge_error **err);

/* The parameters of the next task of a RunTask input in: which capacity
 * provider it goes to (by the strategy, or the cluster's default, and counts
 * ({provider: tasks}) of the tasks placed so far, which it updates), whether
 * that is the Fargate pool, and for host-group providers a constraint to the
 * group's hosts. New reference, or NULL with err set (ecs_fargate_check). */
json_t *ecs_task_launch_params(const json_t *cluster, const json_t *td, const json_t *in,
                               json_t *counts, struct barge_error **err);
/* Places count tasks of td in the cluster and stores them: each placed task's
 * stored document goes to placed, and when one cannot be placed, the reason for
 * each instance goes to failures (ECS's RunTask shape) and placing stops;
 * closest (may be NULL) then gets the reason of the instance that came closest
 * (caller frees). params (from ecs_task_launch_params) holds the RunTask
 * members that shape a task (overrides, startedBy, group, tags) and place it
 * (placementStrategy, placementConstraints: a service passes its own). */
int ecs_task_place(struct ecs_placement *pl, struct barge_server *srv, const json_t *cluster,
                   const json_t *td, const json_t *params, json_int_t count, json_t *placed,
                   json_t *failures, char **closest, struct barge_error **err);
/* StartTask: places a task of td (in: the StartTask input) on each instance
 * in["containerInstances"] names where it fits and td's memberOf constraints
 * hold, in tx; the stored documents go to placed, and a failure (MISSING, or
 * the reason it does not fit) for each other instance to failures. */
int ecs_task_start(struct barge_server *srv, struct barge_tx *tx, const json_t *cluster,
                   const json_t *td, const json_t *in, json_t *placed, json_t *failures,
                   struct barge_error **err);
/* The placement decisions made since barged started (for /metrics). */
void ecs_placement_decisions(uint64_t *placed, uint64_t *unplaceable);

/* Is name one of the built-in capacity providers FARGATE / FARGATE_SPOT? */
bool ecs_capacity_is_fargate(const char *name);
/* Fargate's rules for running td with params (a RunTask or CreateService
 * input): FARGATE-compatible definition, awsvpc network configuration, a known
 * platform version. */
int ecs_fargate_check(const json_t *td, const json_t *params, struct barge_error **err);
/* The provider of a strategy the next task goes to, given counts
 * ({provider: tasks}) of the tasks placed so far, which it updates. The
 * string is borrowed from strategy. */
const char *ecs_capacity_pick(const json_t *strategy, json_t *counts);

/* ---- tags (tags.c) ---- */

/* Tags of a resource as an ECS tag list [{key, value}] (new reference; empty
 * when none). */
int ecs_tags_get(struct barge_tx *tx, const char *arn, json_t **tags, struct barge_error **err);
/* Merges tags into the resource's tags (validating them first). */
int ecs_tags_add(struct barge_tx *tx, const char *arn, const json_t *tags,
                 struct barge_error **err);
/* Replaces the resource's tags with list (an ECS tag list, already
 * validated; empty drops them). */
int ecs_tags_put(struct barge_tx *tx, const char *arn, json_t *list, struct barge_error **err);
/* Drops every tag of a resource (when it is deleted). */
int ecs_tags_drop(struct barge_tx *tx, const char *arn, struct barge_error **err);
/* Validates a tag list as ECS does: at most 50, unique keys, no "aws:" prefix. */
int ecs_tags_validate(const json_t *tags, struct barge_error **err);

/* ---- container instances (instance.c) ---- */

/* Seconds without a poll after which an agent counts as disconnected
 * (barged --agent-timeout). */
extern int ecs_agent_timeout_seconds;
/* True when the instance's agent polled recently. */
bool ecs_instance_connected(const json_t *doc);
/* Stops every task on an instance at once (it was deregistered, or its host
 * is lost) and drops them from its index; returns how many. */
int ecs_instance_orphan_tasks(struct barge_tx *tx, const char *instance_id, const char *reason,
                              struct barge_error **err);

/* ---- Fargate metering (usage.c) ---- */

/* Fargate prices (barged options); per hour, as AWS quotes them. */
struct barge_prices {
    double vcpu_hour, gb_hour, storage_gb_hour;
    double spot_factor; /* FARGATE_SPOT tasks cost this fraction */
};
extern struct barge_prices barge_prices;
/* The usage record of a FARGATE task, measured up to now when it still runs
 * (new reference). */
json_t *ecs_usage_measure(const json_t *task, double now);
/* Records the metered usage of a FARGATE task that stopped. */
int ecs_usage_record(struct barge_tx *tx, const json_t *task, struct barge_error **err);

#endif
