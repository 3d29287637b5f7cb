/* Daemon deployment records (ecs.h): the scheduler (control/services.c)
 * runs a daemon as a DAEMON service, and the record of its current
 * deployment succeeds when the rollout completes. The daemon API is
 * api/ecs_daemons.c. */
#include "common/ids.h"
#include "common/json.h"
#include "ecs/ecs.h"

int ecs_daemon_sync(struct barge_tx *tx, const struct barge_server *srv, json_t *daemon,
                    struct barge_error **err)
{
    (void)srv;
    json_t *dep = json_array_get(barge_json_array(daemon, "deployments"), 0);
    const char *key = barge_json_str(dep, "_dd", NULL);
    if (!key || barge_json_bool(dep, "_ddDone", false) ||
        !barge_streq(barge_json_str(dep, "rolloutState", NULL), "COMPLETED"))
        return 0;
    _cleanup_json_ json_t *rec = NULL;
    if (barge_store_get(tx, ECS_KIND_DDEPLOY, key, &rec, err) < 0)
        return -1;
    json_object_set_new(dep, "_ddDone", json_true());
    if (!rec || !barge_streq(barge_json_str(rec, "status", NULL), "IN_PROGRESS"))
        return 0;
    double now = barge_now();
    json_object_set_new(rec, "status", json_string("SUCCESSFUL"));
    json_object_set_new(rec, "statusReason",
                        json_string("The daemon runs on every instance of its capacity "
                                    "providers."));
    json_object_set_new(rec, "finishedAt", json_real(now));
    json_object_set_new(json_object_get(rec, "targetDaemonRevision"), "totalRunningInstanceCount",
                        json_integer(barge_json_int(dep, "runningCount", 0)));
    return barge_store_put(tx, ECS_KIND_DDEPLOY, key, rec, err);
}
