/* ECS tasks: RunTask, StartTask, StopTask, DescribeTasks and ListTasks, and
 * the state changes agents report. A task is stored under "<cluster>/<id>";
 * each placed task also has an index entry under its instance
 * ("itask": "<instance>/<task>") holding what it reserves there, so an
 * instance's load and its agent's work list are one prefix scan away.
 * Placing and creating tasks is the domain layer's (ecs/placement.c). */
#include <string.h>

#include "api/ecs.h"
#include "api/exec.h"
#include "common/ids.h"
#include "common/json.h"

/* The order in which ECS shows a task's lastStatus; reports never move a task
 * backwards. */
static const char *const lifecycle[] = {"PROVISIONING", "PENDING",  "ACTIVATING",     "RUNNING",
                                        "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"};

static int lifecycle_index(const char *status)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(lifecycle); i++)
        if (barge_streq(status, lifecycle[i]))
            return (int)i;
    return -1;
}

static int unindex(struct barge_tx *tx, const json_t *task, struct barge_error **err)
{
    const char *inst = barge_json_str(task, "_instanceId", NULL);
    if (!inst)
        return 0;
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", inst, barge_json_str(task, "_id", ""));
    return barge_store_del(tx, ECS_KIND_ITASK, ikey, err);
}

static int check_overrides(const json_t *td, const json_t *overrides, struct barge_error **err)
{
    json_t *eph = barge_json_object(overrides, "ephemeralStorage");
    json_int_t gib = barge_json_int(eph, "sizeInGiB", 0);
    if (eph && (gib < 21 || gib > 200))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid 'ephemeralStorage' override: sizeInGiB must be "
                                    "between 21 and 200; '%lld' was given.",
                                    (long long)gib);
    size_t i;
    json_t *o;
    json_array_foreach(barge_json_array(overrides, "containerOverrides"), i, o)
    {
        const char *name = barge_json_str(o, "name", "");
        if (!barge_json_find(barge_json_array(td, "containerDefinitions"), "name", name))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Override for container named '%s' is not a container "
                                        "in the TaskDefinition.",
                                        name);
    }
    return 0;
}

/* awsvpc tasks need networkConfiguration (as on ECS); barge has no VPC, so
 * the subnet is only recorded in the task's ENI attachment. */
static int check_network_configuration(const json_t *td, const json_t *in, struct barge_error **err)
{
    if (!barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc"))
        return 0;
    json_t *vpc =
        barge_json_object(barge_json_object(in, "networkConfiguration"), "awsvpcConfiguration");
    if (!vpc)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Network Configuration must be provided when networkMode "
                                    "'awsvpc' is specified.");
    if (json_array_size(barge_json_array(vpc, "subnets")) == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "subnets can not be empty.");
    return 0;
}

static int load_runnable_td(struct barge_tx *tx, struct barge_server *srv, const char *ident,
                            json_t **td, struct barge_error **err)
{
    _cleanup_free_ char *key = NULL;
    int r = ecs_taskdef_find(tx, srv, ident, td, &key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "Unable to find task definition '%s'.", ident);
    if (strcmp(barge_json_str(*td, "status", ""), "ACTIVE") != 0)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "TaskDefinition '%s' is %s: register a new revision or "
                                    "name an ACTIVE one.",
                                    ident, barge_json_str(*td, "status", ""));
    return 0;
}

static int check_run_input(const json_t *in, struct barge_error **err)
{
    const char *lt = barge_json_str(in, "launchType", NULL);
    if (lt && strcmp(lt, "EC2") != 0 && strcmp(lt, "FARGATE") != 0)
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "InvalidParameterException",
                                    "launchType '%s' is not available in barge; use EC2 or "
                                    "FARGATE.",
                                    lt);
    if (lt && json_array_size(barge_json_array(in, "capacityProviderStrategy")) > 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Specifying both a launchType and capacityProviderStrategy "
                                    "is not supported.");
    const char *started_by = barge_json_str(in, "startedBy", NULL);
    if (started_by && strlen(started_by) > 128)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "startedBy can be at most 128 characters.");
    const char *group = barge_json_str(in, "group", NULL);
    if (group && strlen(group) > 255)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "group can be at most 255 characters.");
    json_t *tags = barge_json_array(in, "tags");
    return tags ? ecs_tags_validate(tags, err) : 0;
}

static json_t *render_task(struct barge_tx *tx, const json_t *task, bool tags,
                           struct barge_error **err)
{
    json_t *out = ecs_public(task);
    /* A service task draining from its load balancers before it stops (see
     * src/control/services.c): its agent keeps it running meanwhile, and ECS
     * shows it as DEACTIVATING, to be stopped. */
    if (json_object_get(task, "_drainUntil") &&
        !barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED")) {
        json_object_set_new(out, "desiredStatus", json_string("STOPPED"));
        if (barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING"))
            json_object_set_new(out, "lastStatus", json_string("DEACTIVATING"));
        json_object_set_new(out, "stopCode", json_string(barge_json_str(task, "_drainCode", "")));
        json_object_set_new(out, "stoppedReason",
                            json_string(barge_json_str(task, "_drainReason", "")));
    }
    if (tags) {
        json_t *t;
        if (ecs_tags_get(tx, barge_json_str(task, "taskArn", ""), &t, err) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "tags", t);
    }
    return out;
}

static int run_task(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    json_int_t count = barge_json_int(in, "count", 1);
    if (count < 1 || count > 10)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "count must be between 1 and 10; '%lld' was given.",
                                    (long long)count);
    if (check_run_input(in, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *td = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0 ||
        load_runnable_td(tx, ctx->srv, barge_json_str(in, "taskDefinition", ""), &td, err) < 0 ||
        check_overrides(td, barge_json_object(in, "overrides"), err) < 0 ||
        check_network_configuration(td, in, err) < 0)
        return -1;
    _cleanup_json_ json_t *placed = json_array(), *tasks = json_array(), *failures = json_array(),
                          *counts = json_object();
    json_t *strategy = barge_json_array(in, "capacityProviderStrategy");
    if (json_array_size(strategy) && ecs_capacity_check_strategy(tx, ctx->srv, strategy, err) < 0)
        return -1;
    /* One task at a time: each may go to another capacity provider. */
    struct ecs_placement *pl = ecs_placement_new(tx);
    for (json_int_t k = 0; k < count; k++) {
        _cleanup_json_ json_t *params = ecs_task_launch_params(cluster, td, in, counts, err);
        size_t before = json_array_size(placed);
        if (!params ||
            ecs_task_place(pl, ctx->srv, cluster, td, params, 1, placed, failures, NULL, err) < 0) {
            ecs_placement_free(pl);
            return -1;
        }
        if (json_array_size(placed) == before)
            break;
    }
    ecs_placement_free(pl);
    size_t i;
    json_t *t;
    json_array_foreach(placed, i, t)
    {
        json_t *r = render_task(tx, t, true, err);
        if (!r)
            return -1;
        json_array_append_new(tasks, r);
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    if (json_array_size(tasks))
        barge_server_notify(ctx->srv);
    *out = json_pack("{s:O, s:O}", "tasks", tasks, "failures", failures);
    return 0;
}

static int start_task(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    json_t *targets = barge_json_array(in, "containerInstances");
    if (json_array_size(targets) < 1 || json_array_size(targets) > 10)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "containerInstances must name 1 to 10 instances.");
    if (check_run_input(in, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *td = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0 ||
        load_runnable_td(tx, ctx->srv, barge_json_str(in, "taskDefinition", ""), &td, err) < 0 ||
        check_overrides(td, barge_json_object(in, "overrides"), err) < 0 ||
        check_network_configuration(td, in, err) < 0)
        return -1;
    _cleanup_json_ json_t *placed = json_array(), *tasks = json_array(), *failures = json_array();
    int ret = ecs_task_start(ctx->srv, tx, cluster, td, in, placed, failures, err);
    size_t i;
    json_t *t;
    json_array_foreach(placed, i, t)
    {
        json_t *r = ret < 0 ? NULL : render_task(tx, t, true, err);
        if (!r) {
            ret = -1;
            break;
        }
        json_array_append_new(tasks, r);
    }
    if (ret < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:O, s:O}", "tasks", tasks, "failures", failures);
    return 0;
}

static int stop_task(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    const char *ident = barge_json_str(in, "task", "");
    const char *reason = barge_json_str(in, "reason", NULL);
    if (reason && strlen(reason) > 255)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "reason can be at most 255 characters.");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *task = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_TASK, "task",
                             barge_json_str(cluster, "clusterName", ""), ident, &task, &key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The referenced task '%s' was not found.", ident);
    if (strcmp(barge_json_str(task, "desiredStatus", ""), "STOPPED") != 0) {
        ecs_task_request_stop(task, "UserInitiated", reason ? reason : "Task stopped by user");
        /* A task whose host is gone cannot be stopped by an agent. Fargate
         * tasks' hosts are the pool's. */
        const char *icluster = barge_streq(barge_json_str(task, "launchType", NULL), "FARGATE")
                                   ? ECS_FARGATE_POOL
                                   : barge_json_str(task, "_cluster", "");
        _cleanup_json_ json_t *inst = NULL;
        _cleanup_free_ char *ikey =
            barge_xasprintf("%s/%s", icluster, barge_json_str(task, "_instanceId", ""));
        if (barge_store_get(tx, ECS_KIND_INSTANCE, ikey, &inst, err) < 0)
            return -1;
        if (!inst || strcmp(barge_json_str(inst, "status", ""), "INACTIVE") == 0) {
            ecs_task_force_stopped(task, "Task stopped by user");
            if (unindex(tx, task, err) < 0)
                return -1;
        }
        if (barge_store_put(tx, ECS_KIND_TASK, key, task, err) < 0)
            return -1;
    }
    json_t *t = render_task(tx, task, false, err);
    if (!t)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(t);
        return -1;
    }
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:o}", "task", t);
    return 0;
}

static int describe_tasks(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    json_t *idents = barge_json_array(in, "tasks");
    if (json_array_size(idents) > 100)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "tasks can name at most 100 tasks; %zu were given.",
                                    json_array_size(idents));
    bool tags = ecs_include_tags(in);
    size_t i;
    json_t *v;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *list = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    json_array_foreach(idents, i, v)
    {
        _cleanup_json_ json_t *task = NULL;
        _cleanup_free_ char *key = NULL;
        struct barge_error *e = NULL;
        int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_TASK, "task",
                                 barge_json_str(cluster, "clusterName", ""), json_string_value(v),
                                 &task, &key, &e);
        barge_error_free(e);
        if (r <= 0) {
            json_array_append_new(failures, json_pack("{s:s, s:s}", "arn", json_string_value(v),
                                                      "reason", "MISSING"));
            continue;
        }
        json_t *t = render_task(tx, task, tags, err);
        if (!t)
            return -1;
        json_array_append_new(list, t);
    }
    *out = json_pack("{s:O, s:O}", "tasks", list, "failures", failures);
    return 0;
}

struct task_filter {
    const char *instance_id, *family, *started_by, *group, *desired, *launch_type;
    struct barge_api_page *pg;
};

static int list_task_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct task_filter *f = ud;
    const char *desired =
        json_object_get(doc, "_drainUntil") ? "STOPPED" : barge_json_str(doc, "desiredStatus", "");
    if (strcmp(f->desired, "RUNNING") == 0 ? strcmp(desired, "STOPPED") == 0
                                           : strcmp(desired, f->desired) != 0)
        return 0;
    if ((f->instance_id &&
         !barge_streq(barge_json_str(doc, "_instanceId", NULL), f->instance_id)) ||
        (f->family && !barge_streq(barge_json_str(doc, "_family", NULL), f->family)) ||
        (f->started_by && !barge_streq(barge_json_str(doc, "startedBy", NULL), f->started_by)) ||
        (f->group && !barge_streq(barge_json_str(doc, "group", NULL), f->group)) ||
        (f->launch_type && !barge_streq(barge_json_str(doc, "launchType", NULL), f->launch_type)))
        return 0;
    return barge_api_page_add(f->pg, key, json_string(barge_json_str(doc, "taskArn", "")));
}

static int list_tasks(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    struct task_filter f = {
        .pg = &pg,
        .family = barge_json_str(in, "family", NULL),
        .started_by = barge_json_str(in, "startedBy", NULL),
        .desired = barge_json_str(in, "desiredStatus", "RUNNING"),
        .launch_type = barge_json_str(in, "launchType", NULL),
    };
    _cleanup_free_ char *group = NULL, *instance_id = NULL;
    if (barge_api_page_init(&pg, in, "maxResults", 100, 100, "nextToken", err) < 0)
        return -1;
    const char *svc = barge_json_str(in, "serviceName", NULL);
    if (svc) {
        if (f.family)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "family and serviceName cannot be used together.");
        group = barge_xasprintf("service:%s", svc);
        f.group = group;
    }
    const char *ci = barge_json_str(in, "containerInstance", NULL);
    if (ci) {
        instance_id = ecs_resource_id(ctx->srv, ci, "container-instance", err);
        if (!instance_id)
            return -1;
        f.instance_id = instance_id;
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    _cleanup_free_ char *prefix =
        barge_xasprintf("%s/", barge_json_str(cluster, "clusterName", ""));
    if (barge_store_scan(tx, ECS_KIND_TASK, prefix, pg.after, false, 0, list_task_one, &f, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "taskArns", "nextToken");
    return 0;
}

/* --- what agents report ------------------------------------------------ */

/* Host ports the agent bound (dynamic ones included) count as taken on the
 * instance until the task stops, so that placement never puts a fixed port
 * where a dynamic one already is. */
static int reserve_bound_ports(struct barge_tx *tx, const json_t *task, const json_t *rep,
                               struct barge_error **err)
{
    const char *inst = barge_json_str(task, "_instanceId", NULL);
    if (!inst)
        return 0;
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", inst, barge_json_str(task, "_id", ""));
    _cleanup_json_ json_t *idx = NULL;
    bool changed = false;
    size_t i, j;
    json_t *c, *b;
    json_array_foreach(barge_json_array(rep, "containers"), i, c)
    {
        json_array_foreach(barge_json_array(c, "networkBindings"), j, b)
        {
            json_int_t port = barge_json_int(b, "hostPort", 0);
            if (port <= 0)
                continue;
            if (!idx && barge_store_get(tx, ECS_KIND_ITASK, ikey, &idx, err) < 0)
                return -1;
            if (!idx)
                return 0;
            json_t *res = barge_json_object(idx, "reserved");
            json_t *ports = barge_json_array(res, "ports");
            if (!ports) {
                if (!res)
                    json_object_set_new(idx, "reserved", res = json_object());
                json_object_set_new(res, "ports", ports = json_array());
            }
            bool have = false;
            size_t k;
            json_t *p;
            json_array_foreach(ports, k, p)
            {
                have = have || json_integer_value(p) == port;
            }
            if (!have) {
                json_array_append_new(ports, json_integer(port));
                changed = true;
            }
        }
    }
    if (!changed)
        return 0;
    return barge_store_put(tx, ECS_KIND_ITASK, ikey, idx, err) < 0 ? -1 : 1;
}

int ecs_task_apply_report(struct barge_tx *tx, json_t *task, const json_t *rep,
                          struct barge_error **err)
{
    const char *status = barge_json_str(rep, "status", NULL);
    int cur = lifecycle_index(barge_json_str(task, "lastStatus", ""));
    int next = lifecycle_index(status);
    if (next < 0)
        return barge_error_set(err, BARGE_ERR_INVALID, "unknown task status '%s'",
                               status ? status : "null");
    if (cur == lifecycle_index("STOPPED"))
        return 0;
    _cleanup_json_ json_t *before = json_deep_copy(task);
    double now = barge_now();
    const char *stamps[] = {"pullStartedAt", "pullStoppedAt", "executionStoppedAt"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(stamps); i++) {
        json_t *v = json_object_get(rep, stamps[i]);
        if (json_is_number(v) && !json_object_get(task, stamps[i]))
            json_object_set_new(task, stamps[i], json_real(json_number_value(v)));
    }
    size_t i;
    json_t *rc;
    json_array_foreach(barge_json_array(rep, "containers"), i, rc)
    {
        json_t *c = barge_json_find(barge_json_array(task, "containers"), "name",
                                    barge_json_str(rc, "name", ""));
        if (!c)
            continue;
        const char *fields[] = {"lastStatus",   "exitCode",          "reason",
                                "runtimeId",    "imageDigest",       "networkBindings",
                                "healthStatus", "networkInterfaces", "restartCount"};
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(fields); k++) {
            json_t *v = json_object_get(rc, fields[k]);
            if (v)
                json_object_set(c, fields[k], v);
        }
    }
    json_t *health = json_object_get(rep, "healthStatus");
    if (json_is_string(health))
        json_object_set(task, "healthStatus", health);
    json_t *attachments = json_object_get(rep, "attachments");
    if (json_is_array(attachments))
        json_object_set(task, "attachments", attachments);
    int wrote = reserve_bound_ports(tx, task, rep, err);
    if (wrote < 0)
        return -1;
    if (next > cur) {
        json_object_set_new(task, "lastStatus", json_string(status));
        if (next >= lifecycle_index("RUNNING") && !json_object_get(task, "startedAt") &&
            !barge_streq(barge_json_str(rep, "stopCode", NULL), "TaskFailedToStart"))
            json_object_set_new(task, "startedAt", json_real(now));
        if (next >= lifecycle_index("RUNNING") && !json_object_get(task, "connectivityAt")) {
            json_object_set_new(task, "connectivity", json_string("CONNECTED"));
            json_object_set_new(task, "connectivityAt", json_real(now));
        }
    }
    /* The agent decided to stop the task (an essential container exited, or it
     * never started): that is the stop code, unless a user asked first. */
    if (next > lifecycle_index("RUNNING") &&
        strcmp(barge_json_str(task, "desiredStatus", ""), "STOPPED") != 0) {
        json_object_set_new(task, "desiredStatus", json_string("STOPPED"));
        json_object_set_new(task, "stoppingAt", json_real(now));
        const char *code = barge_json_str(rep, "stopCode", "EssentialContainerExited");
        const char *reason =
            barge_json_str(rep, "stoppedReason", "Essential container in task exited");
        json_object_set_new(task, "stopCode", json_string(code));
        json_object_set_new(task, "stoppedReason", json_string(reason));
    }
    if (next == lifecycle_index("STOPPED")) {
        json_object_set_new(task, "stoppedAt", json_real(now));
        if (!json_object_get(task, "executionStoppedAt"))
            json_object_set_new(task, "executionStoppedAt", json_real(now));
        if (unindex(tx, task, err) < 0 || ecs_usage_record(tx, task, err) < 0)
            return -1;
    } else if (next == lifecycle_index("RUNNING")) {
        /* Flip the index entry so instance counts show the task as running. */
        const char *inst = barge_json_str(task, "_instanceId", NULL);
        _cleanup_free_ char *ikey =
            barge_xasprintf("%s/%s", inst ? inst : "", barge_json_str(task, "_id", ""));
        _cleanup_json_ json_t *idx = NULL;
        if (inst && barge_store_get(tx, ECS_KIND_ITASK, ikey, &idx, err) < 0)
            return -1;
        if (idx && !json_is_true(json_object_get(idx, "running"))) {
            json_object_set_new(idx, "running", json_true());
            if (barge_store_put(tx, ECS_KIND_ITASK, ikey, idx, err) < 0)
                return -1;
            wrote = 1;
        }
    }
    /* Agents repeat their reports: one that changes nothing keeps the
     * version, so nothing is written and no poller wakes for it. */
    if (!wrote && json_equal(before, task))
        return 0;
    ecs_task_bump_version(task);
    return 1;
}

struct reap {
    json_t *keys;
    double cutoff;
};

static int collect_old(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct reap *r = ud;
    json_t *stopped = json_object_get(doc, "stoppedAt");
    if (barge_streq(barge_json_str(doc, "lastStatus", NULL), "STOPPED") &&
        json_is_number(stopped) && json_number_value(stopped) < r->cutoff)
        json_array_append_new(r->keys, json_pack("{s:s, s:s}", "key", key, "arn",
                                                 barge_json_str(doc, "taskArn", "")));
    return 0;
}

int barge_ecs_tasks_reap(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_json_ json_t *keys = json_array();
    struct reap r = {keys, barge_now() - srv->cfg.stopped_task_retention};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_TASK, "", NULL, false, 0, collect_old, &r, err) < 0)
        return -1;
    barge_store_abort(barge_steal(&tx));
    if (json_array_size(keys) == 0)
        return 0;
    if (barge_store_begin(srv->store, true, &tx, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (barge_store_del(tx, ECS_KIND_TASK, barge_json_str(k, "key", ""), err) < 0 ||
            ecs_tags_drop(tx, barge_json_str(k, "arn", ""), err) < 0)
            return -1;
    }
    return barge_store_commit(barge_steal(&tx), err);
}

const struct barge_api_op ecs_task_ops[] = {
    {"RunTask", run_task},
    {"StartTask", start_task},
    {"StopTask", stop_task},
    {"DescribeTasks", describe_tasks},
    {"ListTasks", list_tasks},
    {"ExecuteCommand", barge_api_execute_command},
    {NULL, NULL},
};
