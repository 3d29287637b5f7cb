/* Task state changes shared by StopTask, the agent channel and the service
 * scheduler (ecs.h). */
#include "common/ids.h"
#include "common/json.h"
#include "ecs/ecs.h"

void ecs_task_bump_version(json_t *task)
{
    json_object_set_new(task, "version", json_integer(barge_json_int(task, "version", 0) + 1));
}

void ecs_task_request_stop(json_t *task, const char *stop_code, const char *reason)
{
    if (barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED"))
        return;
    json_object_set_new(task, "desiredStatus", json_string("STOPPED"));
    json_object_set_new(task, "stopCode", json_string(stop_code));
    json_object_set_new(task, "stoppedReason", json_string(reason));
    json_object_set_new(task, "stoppingAt", json_real(barge_now()));
    ecs_task_bump_version(task);
}

bool ecs_task_force_stopped(json_t *task, const char *reason)
{
    if (barge_streq(barge_json_str(task, "lastStatus", NULL), "STOPPED"))
        return false;
    double now = barge_now();
    json_object_set_new(task, "lastStatus", json_string("STOPPED"));
    json_object_set_new(task, "desiredStatus", json_string("STOPPED"));
    if (!json_object_get(task, "stoppedReason"))
        json_object_set_new(task, "stoppedReason", json_string(reason));
    if (!json_object_get(task, "stoppingAt"))
        json_object_set_new(task, "stoppingAt", json_real(now));
    json_object_set_new(task, "stoppedAt", json_real(now));
    json_object_set_new(task, "executionStoppedAt", json_real(now));
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(task, "containers"), i, c)
    {
        json_object_set_new(c, "lastStatus", json_string("STOPPED"));
    }
    ecs_task_bump_version(task);
    return true;
}

bool ecs_task_protected(const json_t *task, double now)
{
    json_t *until = json_object_get(task, "_protectedUntil");
    return json_is_number(until) && json_number_value(until) > now;
}
