/* The ECS domain layer: the store layout of ECS resources and the state
 * changes of tasks, services and container instances that both the API
 * handlers (src/api/ecs_*.c) and the control loops (src/control/) apply. It
 * works on the stored JSON documents and knows nothing of HTTP or of the API
 * framework, so control/ can depend on it instead of on api/. */
#ifndef BARGE_ECS_ECS_H
#define BARGE_ECS_ECS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "common/util.h"
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

/* Fargate usage records: "<cluster>/<stop time>/<task id>". */
#define ECS_KIND_USAGE "usage"
/* Services: "<cluster>/<service>/<task id>" -> {task, deployment}. */
#define ECS_KIND_STASK "stask"

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
