/* Blue/green bookkeeping shared by the API (StopServiceDeployment) and the
 * service scheduler (control/services.c), which runs the stages. Each
 * deployment has "_alt": whether its tasks register in the alternate target
 * groups; the service's "_liveAlt" says which side production forwards to. */
#include "ecs/bluegreen.h"

#include "common/ids.h"
#include "common/json.h"
#include "common/util.h"
#include "ecs/ecs.h"

bool ecs_bluegreen(const json_t *svc)
{
    return barge_streq(
               barge_json_str(barge_json_object(svc, "deploymentConfiguration"), "strategy", NULL),
               "BLUE_GREEN") &&
           !ecs_service_external(svc);
}

const char *ecs_bluegreen_target_group(const json_t *lb, const json_t *dep)
{
    const char *alt = barge_json_str(barge_json_object(lb, "advancedConfiguration"),
                                     "alternateTargetGroupArn", NULL);
    if (alt && barge_json_bool(dep, "_alt", false))
        return alt;
    return barge_json_str(lb, "targetGroupArn", "");
}

bool ecs_bluegreen_both(const json_t *svc)
{
    json_t *deps = barge_json_array(svc, "deployments");
    json_t *dep = json_array_get(deps, 0);
    return ecs_bluegreen(svc) && json_array_size(deps) > 1 &&
           barge_streq(barge_json_str(dep, "rolloutState", NULL), "IN_PROGRESS");
}

void ecs_bluegreen_rollback(json_t *svc, const char *reason, bool circuit_breaker)
{
    json_t *deps = barge_json_array(svc, "deployments");
    json_t *green = json_incref(json_array_get(deps, 0));
    json_array_remove(deps, 0);
    json_t *blue = json_array_get(deps, 0);
    double now = barge_now();
    /* Blue serves green's deployment record from now on (as a rollback
     * does, see api/ecs_deployments.c). */
    json_t *sd = json_object_get(green, "_sd");
    if (sd) {
        json_object_set(blue, "_sd", sd);
        json_object_set_new(blue, "_rollback", json_true());
        if (circuit_breaker) {
            json_object_set_new(blue, "_circuitBreaker", json_true());
            json_object_set_new(blue, "_cbFailures",
                                json_integer(barge_json_int(green, "failedTasks", 0)));
        }
    }
    json_object_set_new(blue, "status", json_string("PRIMARY"));
    json_object_set(blue, "desiredCount", json_object_get(svc, "desiredCount"));
    json_object_set_new(blue, "rolloutState", json_string("COMPLETED"));
    json_object_set_new(blue, "rolloutStateReason", json_string(reason));
    json_object_set_new(blue, "updatedAt", json_real(now));
    json_object_set_new(blue, "_stage", json_string("RECONCILE_SERVICE"));
    json_object_del(blue, "_sdSig");
    json_object_set(svc, "taskDefinition", json_object_get(blue, "taskDefinition"));
    json_object_set_new(svc, "_liveAlt", json_boolean(barge_json_bool(blue, "_alt", false)));
    ecs_service_event(svc, "(deployment %s) rolled back: production traffic is back on %s.",
                      barge_json_str(green, "id", ""), barge_json_str(blue, "id", ""));
    json_decref(green);
}
