/* Application Auto Scaling for ECS services: what the API (api/autoscaling.c)
 * stores and the scaler (control/autoscale.c) reads. Only the "ecs"
 * namespace and the ecs:service:DesiredCount dimension exist here.
 * Keys: target "<resource id>"; policy and scheduled action
 * "<resource id>|<name>"; activity "<resource id>|<start time>|<id>". */
#ifndef BARGE_SVC_AUTOSCALING_H
#define BARGE_SVC_AUTOSCALING_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "store/store.h"

#define AAS_KIND_TARGET    "aas-target"
#define AAS_KIND_POLICY    "aas-policy"
#define AAS_KIND_SCHEDULED "aas-scheduled"
#define AAS_KIND_ACTIVITY  "aas-activity"
#define AAS_DIMENSION      "ecs:service:DesiredCount"

/* Records a scaling activity for resource_id (Successful, or Failed with
 * status_message) as Application Auto Scaling words it. */
int barge_aas_activity_add(struct barge_tx *tx, const char *resource_id, const char *description,
                           const char *cause, const char *status, const char *status_message,
                           struct barge_error **err);

/* Splits "service/<cluster>/<service>"; returns false when it is not one. */
bool barge_aas_parse_resource(const char *resource_id, char **cluster, char **service);

/* Whether schedule ("at(...)", "rate(...)" or "cron(...)") parses in time
 * zone tz; otherwise *why (caller frees) says why. */
bool barge_aas_schedule_valid(const char *schedule, const char *tz, char **why);

#endif
