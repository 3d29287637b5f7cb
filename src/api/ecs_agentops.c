/* The operations of the ECS API that Amazon's container agent calls:
 * DiscoverPollEndpoint, SubmitTaskStateChange, SubmitContainerStateChange,
 * SubmitAttachmentStateChanges and UpdateContainerAgent. barge's own agents
 * use the agent channel (agent.c) instead; these answer other callers as ECS
 * does. The state changes are applied to the stored task the same way an
 * agent channel report is (ecs_task_apply_report: never backwards), so a
 * caller can only move a task forward through its lifecycle. */
#include <string.h>

#include "api/ecs.h"
#include "common/json.h"

#define ACK "ACK"

/* Where the caller reached this barged: the Host it asked for (as clients
 * behind port forwarding see it), else the listen address. Caller frees. */
static char *own_endpoint(const struct barge_api_ctx *ctx)
{
    const char *host = barge_http_req_header(ctx->http, "Host");
    bool ok = host && *host && strlen(host) < 256;
    for (const char *c = host; ok && *c; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             strchr(".-:[]", *c);
    return barge_xasprintf("http://%s", ok ? host : ctx->srv->cfg.listen);
}

static int discover_poll_endpoint(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    const char *ident = barge_json_str(in, "containerInstance", NULL);
    const char *cident = barge_json_str(in, "cluster", NULL);
    if (ident || cident) {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_json_ json_t *cluster = NULL, *inst = NULL;
        _cleanup_free_ char *key = NULL;
        if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
            return -1;
        /* The operation models only ClientException for what the caller got
         * wrong. */
        struct barge_error *e = NULL;
        if (ecs_cluster_load(tx, ctx->srv, cident, &cluster, &e) < 0) {
            barge_error_free(e);
            return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                        "Cluster not found: '%s'.", cident ? cident : "default");
        }
        if (ident) {
            int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_INSTANCE, "container-instance",
                                     barge_json_str(cluster, "clusterName", ""), ident, &inst, &key,
                                     &e);
            barge_error_free(e);
            if (r <= 0 || barge_streq(barge_json_str(inst, "status", NULL), "INACTIVE"))
                return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                            "Container instance '%s' is not registered in "
                                            "cluster '%s'.",
                                            ident, barge_json_str(cluster, "clusterName", ""));
        }
    }
    _cleanup_free_ char *url = own_endpoint(ctx);
    *out = json_pack("{s:s, s:s, s:s}", "endpoint", url, "telemetryEndpoint", url,
                     "serviceConnectEndpoint", url);
    return 0;
}

/* Loads the task a state change names (write transaction). */
static int load_task(struct barge_api_ctx *ctx, struct barge_tx *tx, const json_t *in,
                     json_t **task, char **key, struct barge_error **err)
{
    _cleanup_json_ json_t *cluster = NULL;
    const char *ident = barge_json_str(in, "task", NULL);
    if (!ident)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "task is required.");
    if (ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_TASK, "task",
                             barge_json_str(cluster, "clusterName", ""), ident, task, key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The referenced task '%s' was not found in cluster '%s'.",
                                    ident, barge_json_str(cluster, "clusterName", ""));
    return 0;
}

/* An ECS ContainerStateChange (or SubmitContainerStateChange input) as the
 * container part of an agent report; NULL (err set) for a container the task
 * does not have. */
static json_t *container_report(const json_t *task, const json_t *c, struct barge_error **err)
{
    const char *name = barge_json_str(c, "containerName", NULL);
    size_t i;
    json_t *tc;
    bool known = false;
    json_array_foreach(barge_json_array(task, "containers"), i, tc)
    {
        known = known || barge_streq(barge_json_str(tc, "name", NULL), name);
    }
    if (!known) {
        barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                             "Task '%s' has no container named '%s'.",
                             barge_json_str(task, "taskArn", ""), name ? name : "");
        return NULL;
    }
    json_t *rep = json_pack("{s:s}", "name", name);
    const char *same[] = {"exitCode", "reason", "runtimeId", "imageDigest", "networkBindings"};
    for (size_t k = 0; k < BARGE_ARRAY_SIZE(same); k++) {
        json_t *v = json_object_get(c, same[k]);
        if (v)
            json_object_set(rep, same[k], v);
    }
    json_t *st = json_object_get(c, "status");
    if (json_is_string(st))
        json_object_set(rep, "lastStatus", st);
    return rep;
}

/* Applies report (an agent-channel style report) to the task and stores it. */
static int apply(struct barge_api_ctx *ctx, struct barge_tx **tx, json_t *task, const char *key,
                 json_t *report, struct barge_error **err)
{
    if (!json_object_get(report, "status"))
        json_object_set_new(report, "status",
                            json_string(barge_json_str(task, "lastStatus", "PENDING")));
    int changed = ecs_task_apply_report(*tx, task, report, err);
    if (changed <= 0)
        return changed;
    if (barge_store_put(*tx, ECS_KIND_TASK, key, task, err) < 0 ||
        barge_store_commit(barge_steal(tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    return 0;
}

static int submit_task_state_change(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *task = NULL, *report = json_object(), *containers = json_array();
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_task(ctx, tx, in, &task, &key, err) < 0)
        return -1;
    const char *copy[] = {"status", "pullStartedAt", "pullStoppedAt", "executionStoppedAt"};
    for (size_t k = 0; k < BARGE_ARRAY_SIZE(copy); k++) {
        json_t *v = json_object_get(in, copy[k]);
        if (v)
            json_object_set(report, copy[k], v);
    }
    const char *reason = barge_json_str(in, "reason", NULL);
    if (reason) {
        json_object_set_new(report, "stopCode", json_string("EssentialContainerExited"));
        json_object_set_new(report, "stoppedReason", json_string(reason));
    }
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(in, "containers"), i, c)
    {
        json_t *rc = container_report(task, c, err);
        if (!rc)
            return -1;
        json_array_append_new(containers, rc);
    }
    json_object_set(report, "containers", containers);
    if (apply(ctx, &tx, task, key, report, err) < 0)
        return -1;
    *out = json_pack("{s:s}", "acknowledgment", ACK);
    return 0;
}

static int submit_container_state_change(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                         struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *task = NULL, *report = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_task(ctx, tx, in, &task, &key, err) < 0)
        return -1;
    json_t *rc = container_report(task, in, err);
    if (!rc)
        return -1;
    report = json_pack("{s:[o]}", "containers", rc);
    if (apply(ctx, &tx, task, key, report, err) < 0)
        return -1;
    *out = json_pack("{s:s}", "acknowledgment", ACK);
    return 0;
}

static const char *const attachment_states[] = {"PRECREATED", "CREATED",  "ATTACHING", "ATTACHED",
                                                "DETACHING",  "DETACHED", "DELETED",   "FAILED"};

struct find_attachment {
    const char *id;
    json_t *task; /* new reference when found */
    char *key;
};

static int find_attachment_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct find_attachment *f = ud;
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(doc, "attachments"), i, a)
    {
        if (barge_streq(barge_json_str(a, "id", NULL), f->id)) {
            f->task = json_incref(doc);
            f->key = barge_xstrdup(key);
            return 1;
        }
    }
    return 0;
}

static int submit_attachment_state_changes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                           struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    _cleanup_free_ char *prefix =
        barge_xasprintf("%s/", barge_json_str(cluster, "clusterName", ""));
    size_t i;
    json_t *ch;
    json_array_foreach(barge_json_array(in, "attachments"), i, ch)
    {
        const char *ident = barge_json_str(ch, "attachmentArn", "");
        const char *status = barge_json_str(ch, "status", "");
        bool valid = false;
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(attachment_states); k++)
            valid = valid || strcmp(attachment_states[k], status) == 0;
        if (!valid)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Invalid attachment status '%s' for '%s'.", status, ident);
        _cleanup_free_ char *id = ecs_resource_id(ctx->srv, ident, "attachment", err);
        if (!id)
            return -1;
        struct find_attachment f = {.id = id};
        if (barge_store_scan(tx, ECS_KIND_TASK, prefix, NULL, false, 0, find_attachment_one, &f,
                             err) < 0)
            return -1;
        _cleanup_json_ json_t *task = f.task;
        _cleanup_free_ char *key = f.key;
        if (!task)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "No task of cluster '%s' has the attachment '%s'.",
                                        barge_json_str(cluster, "clusterName", ""), ident);
        size_t j;
        json_t *a;
        json_array_foreach(barge_json_array(task, "attachments"), j, a)
        {
            if (barge_streq(barge_json_str(a, "id", NULL), id))
                json_object_set_new(a, "status", json_string(status));
        }
        if (barge_store_put(tx, ECS_KIND_TASK, key, task, err) < 0)
            return -1;
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:s}", "acknowledgment", ACK);
    return 0;
}

/* barge agents are updated with the barge package of their host, never by
 * the control plane, so for an instance barged knows the answer is ECS's
 * NoUpdateAvailableException. */
static int update_container_agent(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    (void)out;
    const char *ident = barge_json_str(in, "containerInstance", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *inst = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_INSTANCE, "container-instance",
                             barge_json_str(cluster, "clusterName", ""), ident, &inst, &key, err);
    if (r < 0)
        return -1;
    if (r == 0 || barge_streq(barge_json_str(inst, "status", NULL), "INACTIVE"))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The referenced container instance '%s' was not found in "
                                    "cluster '%s'.",
                                    ident, barge_json_str(cluster, "clusterName", ""));
    const char *version =
        barge_json_str(barge_json_object(inst, "versionInfo"), "agentVersion", "unknown");
    return barge_error_set_type(err, BARGE_ERR_CLIENT, "NoUpdateAvailableException",
                                "No update is available for the agent (version '%s') of "
                                "container instance '%s': barge agents are updated with their "
                                "host's barge package, not through UpdateContainerAgent.",
                                version, ident);
}

const struct barge_api_op ecs_agent_ops[] = {
    {"DiscoverPollEndpoint", discover_poll_endpoint},
    {"SubmitTaskStateChange", submit_task_state_change},
    {"SubmitContainerStateChange", submit_container_state_change},
    {"SubmitAttachmentStateChanges", submit_attachment_state_changes},
    {"UpdateContainerAgent", update_container_agent},
    {NULL, NULL},
};
