/* Service events and deployments, written by the API (CreateService,
 * UpdateService) and by the service scheduler (ecs.h). */
#include <math.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "ecs/ecs.h"

#define MAX_EVENTS 100

void ecs_service_event(json_t *svc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *body = barge_xvasprintf(fmt, ap);
    va_end(ap);
    _cleanup_free_ char *msg =
        barge_xasprintf("(service %s) %s", barge_json_str(svc, "serviceName", ""), body);
    json_t *events = barge_json_array(svc, "events");
    if (!events) {
        events = json_array();
        json_object_set_new(svc, "events", events);
    }
    char id[37];
    barge_id_uuid(id);
    json_array_insert_new(
        events, 0,
        json_pack("{s:s, s:f, s:s}", "id", id, "createdAt", barge_now(), "message", msg));
    while (json_array_size(events) > MAX_EVENTS)
        json_array_remove(events, json_array_size(events) - 1);
    barge_info("%s", msg);
}

void ecs_deployment_id(char id[ECS_DEPLOYMENT_ID_LEN])
{
    unsigned char r[8];
    barge_random_bytes(r, sizeof(r));
    unsigned long long n = 0;
    for (size_t i = 0; i < sizeof(r); i++)
        n = (n << 8) | r[i];
    snprintf(id, ECS_DEPLOYMENT_ID_LEN, "ecs-svc/%019llu", n % 10000000000000000000ULL);
}

json_t *ecs_deployment_new(const json_t *svc, const char *td_arn, json_int_t desired,
                           const char *reason)
{
    char id[ECS_DEPLOYMENT_ID_LEN];
    ecs_deployment_id(id);
    double now = barge_now();
    _cleanup_free_ char *why =
        reason ? barge_xstrdup(reason) : barge_xasprintf("ECS deployment %s in progress.", id);
    json_t *dep =
        json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:i, s:f, s:f, s:s, s:s, s:s}", "id", id,
                  "status", "PRIMARY", "taskDefinition", td_arn, "desiredCount", desired,
                  "pendingCount", 0, "runningCount", 0, "failedTasks", 0, "createdAt", now,
                  "updatedAt", now, "launchType", barge_json_str(svc, "launchType", "EC2"),
                  "rolloutState", "IN_PROGRESS", "rolloutStateReason", why);
    json_t *sc = json_object_get(svc, "_serviceConnect");
    if (sc)
        json_object_set(dep, "serviceConnectConfiguration", sc);
    return dep;
}

/* Makes dep the PRIMARY deployment; the former primary becomes ACTIVE and
 * will be drained by the scheduler. */
void ecs_service_push_deployment(json_t *svc, json_t *dep)
{
    json_t *deps = barge_json_array(svc, "deployments");
    if (!deps) {
        deps = json_array();
        json_object_set_new(svc, "deployments", deps);
    }
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        json_object_set_new(d, "status", json_string("ACTIVE"));
        json_object_set_new(d, "desiredCount", json_integer(0));
        json_object_set_new(d, "updatedAt", json_real(barge_now()));
    }
    json_array_insert_new(deps, 0, dep);
    json_object_set(svc, "taskDefinition", json_object_get(dep, "taskDefinition"));
}

bool ecs_service_external(const json_t *svc)
{
    return barge_streq(barge_json_str(barge_json_object(svc, "deploymentController"), "type", NULL),
                       "EXTERNAL");
}

void ecs_service_tasksets_compute(json_t *svc)
{
    bool active = barge_streq(barge_json_str(svc, "status", NULL), "ACTIVE");
    double desired = (double)barge_json_int(svc, "desiredCount", 0);
    size_t i;
    json_t *ts;
    json_array_foreach(barge_json_array(svc, "taskSets"), i, ts)
    {
        double pct = json_number_value(json_object_get(barge_json_object(ts, "scale"), "value"));
        json_int_t n = 0;
        /* ECS rounds up: 1.2 tasks are 2. The epsilon keeps 3 x 33.333...%
         * of 3 at 1, not 2. */
        if (active && !barge_streq(barge_json_str(ts, "status", NULL), "DRAINING"))
            n = (json_int_t)ceil(desired * pct / 100.0 - 1e-9);
        if (n != barge_json_int(ts, "computedDesiredCount", -1))
            json_object_set_new(ts, "computedDesiredCount", json_integer(n));
    }
}
