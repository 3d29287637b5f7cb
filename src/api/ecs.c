/* The ECS service (AmazonEC2ContainerServiceV20141113): its operation table,
 * built from the per-area tables. The names, ARNs and lookups the areas share
 * are the domain layer's (ecs/ids.c). */
#include "api/ecs.h"

#include "common/json.h"

bool ecs_include_tags(const json_t *in)
{
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(in, "include"), i, v)
    {
        if (barge_streq(json_string_value(v), "TAGS"))
            return true;
    }
    return false;
}

static const struct barge_api_op *const ecs_op_tables[] = {
    ecs_cluster_ops, ecs_taskdef_ops,    ecs_tag_ops,      ecs_instance_ops, ecs_task_ops,
    ecs_service_ops, ecs_deployment_ops, ecs_capacity_ops, ecs_account_ops,  ecs_protection_ops,
    ecs_agent_ops,   ecs_taskset_ops,    ecs_daemon_ops,   ecs_express_ops,  NULL,
};

const struct barge_api_service barge_api_ecs = {
    .model = "ecs",
    .message_key = "message",
    .invalid_type = "InvalidParameterException",
    .client_type = "ClientException",
    .server_type = "ServerException",
    .not_found_type = "ClientException",
    /* Its largest requests are task definitions (64 KiB) and their tags. */
    .max_request = 1024 * 1024,
    .op_tables = ecs_op_tables,
};
