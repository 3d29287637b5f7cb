/* Container instance liveness, shared by the API, the agent channel and the
 * lost-host watch (ecs.h). */
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
