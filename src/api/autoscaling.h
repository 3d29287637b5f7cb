/* Application Auto Scaling for ECS services: what the API (autoscaling.c)
 * stores and the scaler (src/control/autoscale.c) reads. Only the "ecs"
 * namespace and the ecs:service:DesiredCount dimension exist here.
 * Keys: target "<resource id>"; policy and scheduled action
 * "<resource id>|<name>"; activity "<resource id>|<start time>|<id>". */
#ifndef BARGE_API_AUTOSCALING_H
#define BARGE_API_AUTOSCALING_H

#include <jansson.h>

#include "api/server.h"

#define AAS_KIND_TARGET    "aas-target"
#define AAS_KIND_POLICY    "aas-policy"
#define AAS_KIND_SCHEDULED "aas-scheduled"
#define AAS_KIND_ACTIVITY  "aas-activity"
#define AAS_DIMENSION      "ecs:service:DesiredCount"

/* The Application Auto Scaling API (autoscaling.c), for callers that build
 * on it (Express Gateway services). */
extern const struct barge_api_service barge_api_autoscaling;

/* Records a scaling activity for resource_id (Successful, or Failed with
 * status_message) as Application Auto Scaling words it. */
int barge_aas_activity_add(struct barge_tx *tx, const char *resource_id, const char *description,
                           const char *cause, const char *status, const char *status_message,
                           struct barge_error **err);

/* Splits "service/<cluster>/<service>"; returns false when it is not one. */
bool barge_aas_parse_resource(const char *resource_id, char **cluster, char **service);

#endif
