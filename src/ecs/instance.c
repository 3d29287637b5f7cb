/* Container instance liveness and the stopping of a lost or deregistered
 * instance's tasks, shared by the API, the agent channel and the lost-host
 * watch (ecs.h). */
#include "common/ids.h"
#include "common/json.h"
#include "ecs/ecs.h"

int ecs_agent_timeout_seconds = 60;

bool ecs_instance_connected(const json_t *doc)
{
    json_t *seen = json_object_get(doc, "_lastSeen");
    return json_is_number(seen) &&
           barge_now() - json_number_value(seen) < ecs_agent_timeout_seconds;
}

struct orphan_state {
    json_t *keys;
};

static int collect_itask(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct orphan_state *os = ud;
    json_array_append_new(os->keys, json_pack("{s:s, s:s, s:s}", "ikey", key, "cluster",
                                              barge_json_str(doc, "cluster", ""), "task",
                                              barge_json_str(doc, "task", "")));
    return 0;
}

int ecs_instance_orphan_tasks(struct barge_tx *tx, const char *instance_id, const char *reason,
                              struct barge_error **err)
{
    _cleanup_json_ json_t *keys = json_array();
    struct orphan_state os = {keys};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", instance_id);
    if (barge_store_scan(tx, ECS_KIND_ITASK, prefix, NULL, false, 0, collect_itask, &os, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        _cleanup_free_ char *tkey = barge_xasprintf("%s/%s", barge_json_str(k, "cluster", ""),
                                                    barge_json_str(k, "task", ""));
        _cleanup_json_ json_t *task = NULL;
        if (barge_store_get(tx, ECS_KIND_TASK, tkey, &task, err) < 0)
            return -1;
        if (task && ecs_task_force_stopped(task, reason) &&
            (barge_store_put(tx, ECS_KIND_TASK, tkey, task, err) < 0 ||
             ecs_usage_record(tx, task, err) < 0))
            return -1;
        if (barge_store_del(tx, ECS_KIND_ITASK, barge_json_str(k, "ikey", ""), err) < 0)
            return -1;
    }
    return (int)json_array_size(keys);
}
