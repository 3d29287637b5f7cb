/* Application Auto Scaling's domain logic, shared by its API
 * (api/autoscaling.c) and the scaler (control/autoscale.c): resource ids,
 * scaling activities and schedule checks. */
#include "svc/autoscaling.h"

#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "sched/schedule.h"

bool barge_aas_parse_resource(const char *resource_id, char **cluster, char **service)
{
    if (!barge_str_has_prefix(resource_id, "service/"))
        return false;
    const char *c = resource_id + 8;
    const char *slash = strchr(c, '/');
    if (!slash || slash == c || !slash[1] || strchr(slash + 1, '/'))
        return false;
    *cluster = barge_xstrndup(c, (size_t)(slash - c));
    *service = barge_xstrdup(slash + 1);
    return true;
}

int barge_aas_activity_add(struct barge_tx *tx, const char *resource_id, const char *description,
                           const char *cause, const char *status, const char *status_message,
                           struct barge_error **err)
{
    char id[37];
    barge_id_uuid(id);
    double now = barge_now();
    _cleanup_json_ json_t *a = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:s}", "ActivityId", id, "ServiceNamespace",
        "ecs", "ResourceId", resource_id, "ScalableDimension", AAS_DIMENSION, "Description",
        description, "Cause", cause, "StartTime", now, "EndTime", now, "StatusCode", status);
    if (status_message)
        json_object_set_new(a, "StatusMessage", json_string(status_message));
    _cleanup_free_ char *key = barge_xasprintf("%s|%017.3f|%s", resource_id, now, id);
    return barge_store_put(tx, AAS_KIND_ACTIVITY, key, a, err);
}

bool barge_aas_schedule_valid(const char *schedule, const char *tz, char **why)
{
    struct barge_schedule *s = barge_schedule_parse(schedule, tz, why);
    barge_schedule_free(s);
    return s != NULL;
}
