/* ECS tasks: RunTask, StartTask, StopTask, DescribeTasks and ListTasks, and
 * the state changes agents report. A task is stored under "<cluster>/<id>";
 * each placed task also has an index entry under its instance
 * ("itask": "<instance>/<task>") holding what it reserves there, so an
 * instance's load and its agent's work list are one prefix scan away. */
#include <string.h>

#include "api/ecs.h"
#include "api/metrics.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "sched/place.h"

/* The order in which ECS shows a task's lastStatus; reports never move a task
 * backwards. */
static const char *const lifecycle[] = {"PROVISIONING", "PENDING",        "ACTIVATING",
                                        "RUNNING",      "DEACTIVATING",   "STOPPING",
                                        "DEPROVISIONING", "STOPPED"};

static int lifecycle_index(const char *status)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(lifecycle); i++)
        if (barge_streq(status, lifecycle[i]))
            return (int)i;
    return -1;
}

static void bump_version(json_t *task)
{
    json_object_set_new(task, "version", json_integer(barge_json_int(task, "version", 0) + 1));
}

static json_t *find_by_name(json_t *list, const char *key, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        if (barge_streq(barge_json_str(c, key, NULL), name))
            return c;
    }
    return NULL;
}

static int unindex(struct barge_tx *tx, const json_t *task, struct barge_error **err)
{
    const char *inst = barge_json_str(task, "_instanceId", NULL);
    if (!inst)
        return 0;
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", inst, barge_json_str(task, "_id", ""));
    return barge_store_del(tx, ECS_KIND_ITASK, ikey, err);
}

void ecs_task_request_stop(json_t *task, const char *stop_code, const char *reason)
{
    if (barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED"))
        return;
    json_object_set_new(task, "desiredStatus", json_string("STOPPED"));
    json_object_set_new(task, "stopCode", json_string(stop_code));
    json_object_set_new(task, "stoppedReason", json_string(reason));
    json_object_set_new(task, "stoppingAt", json_real(barge_now()));
    bump_version(task);
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
    bump_version(task);
    return true;
}

/* --- placement -------------------------------------------------------- */

struct candidates {
    struct barge_sched_instance *insts;
    json_t **docs;
    size_t n, cap;
    struct barge_tx *tx;
};

static int collect_instance(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct candidates *c = ud;
    if (strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0)
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->insts = barge_xrealloc(c->insts, c->cap * sizeof(*c->insts));
        c->docs = barge_xrealloc(c->docs, c->cap * sizeof(*c->docs));
    }
    struct ecs_usage u;
    if (ecs_instance_usage(c->tx, barge_json_str(doc, "_id", ""), &u, err) < 0)
        return -1;
    json_t *total = barge_json_object(doc, "_total");
    struct barge_sched_instance *in = &c->insts[c->n];
    memset(in, 0, sizeof(*in));
    in->id = barge_json_str(doc, "_id", "");
    in->cpu = barge_json_int(total, "cpu", 0) - u.cpu;
    in->memory = barge_json_int(total, "memory", 0) - u.memory;
    in->n_ports = u.n_ports;
    in->ports = barge_xmalloc((u.n_ports + 1) * sizeof(uint16_t));
    memcpy(in->ports, u.ports, u.n_ports * sizeof(uint16_t));
    in->eligible =
        strcmp(barge_json_str(doc, "status", ""), "ACTIVE") == 0 && ecs_instance_connected(doc);
    c->docs[c->n++] = json_incref(doc);
    return 0;
}

static void candidates_release(struct candidates *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->insts[i].ports);
        json_decref(c->docs[i]);
    }
    free(c->insts);
    free(c->docs);
}

/* The effective container definitions of a task: the definition's containers
 * with the run's containerOverrides applied. New reference. */
static json_t *apply_overrides(const json_t *td, const json_t *overrides)
{
    json_t *containers = json_deep_copy(barge_json_array(td, "containerDefinitions"));
    size_t i;
    json_t *o;
    json_array_foreach(barge_json_array(overrides, "containerOverrides"), i, o)
    {
        json_t *c = find_by_name(containers, "name", barge_json_str(o, "name", ""));
        if (!c)
            continue;
        const char *simple[] = {"command", "cpu", "memory", "memoryReservation"};
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(simple); k++) {
            json_t *v = json_object_get(o, simple[k]);
            if (v)
                json_object_set(c, simple[k], v);
        }
        json_t *env = barge_json_array(o, "environment");
        if (env) {
            json_t *cur = barge_json_array(c, "environment");
            if (!cur) {
                cur = json_array();
                json_object_set_new(c, "environment", cur);
            }
            size_t j;
            json_t *e;
            json_array_foreach(env, j, e)
            {
                json_t *have = find_by_name(cur, "name", barge_json_str(e, "name", ""));
                if (have)
                    json_object_set(have, "value", json_object_get(e, "value"));
                else
                    json_array_append(cur, e);
            }
        }
    }
    return containers;
}

/* What a task reserves on its instance. */
static void task_request(const json_t *td, const json_t *containers, const json_t *overrides,
                         struct barge_sched_request *req)
{
    memset(req, 0, sizeof(*req));
    const char *cpu = barge_json_str(overrides, "cpu", barge_json_str(td, "cpu", NULL));
    const char *mem = barge_json_str(overrides, "memory", barge_json_str(td, "memory", NULL));
    size_t i, j;
    json_t *c, *pm;
    json_array_foreach((json_t *)containers, i, c)
    {
        if (!cpu)
            req->cpu += barge_json_int(c, "cpu", 0);
        if (!mem) {
            json_int_t m = barge_json_int(c, "memoryReservation", 0);
            req->memory += m ? m : barge_json_int(c, "memory", 0);
        }
        const char *mode = barge_json_str(td, "networkMode", "bridge");
        if (strcmp(mode, "awsvpc") == 0 || strcmp(mode, "none") == 0)
            continue;
        json_array_foreach(barge_json_array(c, "portMappings"), j, pm)
        {
            json_int_t hp = barge_json_int(pm, "hostPort", 0);
            if (strcmp(mode, "host") == 0 && hp == 0)
                hp = barge_json_int(pm, "containerPort", 0);
            if (hp > 0 && req->n_ports < BARGE_SCHED_MAX_PORTS)
                req->ports[req->n_ports++] = (uint16_t)hp;
        }
    }
    if (cpu)
        req->cpu = strtoll(cpu, NULL, 10);
    if (mem)
        req->memory = strtoll(mem, NULL, 10);
}

static int check_overrides(const json_t *td, const json_t *overrides, struct barge_error **err)
{
    size_t i;
    json_t *o;
    json_array_foreach(barge_json_array(overrides, "containerOverrides"), i, o)
    {
        const char *name = barge_json_str(o, "name", "");
        if (!find_by_name(barge_json_array(td, "containerDefinitions"), "name", name))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Override for container named '%s' is not a container "
                                        "in the TaskDefinition.",
                                        name);
    }
    return 0;
}

/* Builds and stores a new task for td on instance (a stored instance doc). */
static int create_task(struct barge_server *srv, struct barge_tx *tx, const json_t *in,
                       const json_t *cluster, const json_t *td, const json_t *instance,
                       const struct barge_sched_request *req, const json_t *containers,
                       json_t **out, struct barge_error **err)
{
    const char *cname = barge_json_str(cluster, "clusterName", "");
    char id[33];
    barge_id_hex32(id);
    _cleanup_free_ char *arn = ecs_arn(srv, "task/%s/%s", cname, id);
    const char *family = barge_json_str(td, "family", "");
    _cleanup_free_ char *dflt_group = barge_xasprintf("family:%s", family);
    json_t *overrides = barge_json_object(in, "overrides");
    _cleanup_free_ char *cpu = barge_xasprintf("%lld", (long long)req->cpu);
    _cleanup_free_ char *mem = barge_xasprintf("%lld", (long long)req->memory);
    double now = barge_now();
    const char *az = NULL;
    size_t i;
    json_t *a, *c;
    json_array_foreach(barge_json_array(instance, "attributes"), i, a)
    {
        if (barge_streq(barge_json_str(a, "name", NULL), "ecs.availability-zone"))
            az = barge_json_str(a, "value", NULL);
    }
    json_t *task = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:i, s:[], s:s, s:b, s:[], s:s, "
        "s:s, s:s}",
        "taskArn", arn, "clusterArn", barge_json_str(cluster, "clusterArn", ""),
        "taskDefinitionArn", barge_json_str(td, "taskDefinitionArn", ""), "containerInstanceArn",
        barge_json_str(instance, "containerInstanceArn", ""), "lastStatus", "PENDING",
        "desiredStatus", "RUNNING", "cpu", cpu, "memory", mem, "launchType", "EC2", "createdAt",
        now, "version", 1, "attachments", "group", barge_json_str(in, "group", dflt_group),
        "enableExecuteCommand", false, "inferenceAccelerators", "_id", id, "_cluster", cname,
        "_family", family);
    if (az)
        json_object_set_new(task, "availabilityZone", json_string(az));
    const char *started_by = barge_json_str(in, "startedBy", NULL);
    if (started_by)
        json_object_set_new(task, "startedBy", json_string(started_by));
    json_object_set_new(task, "_instanceId", json_string(barge_json_str(instance, "_id", "")));
    json_t *ov = overrides ? json_deep_copy(overrides) : json_object();
    if (!json_object_get(ov, "containerOverrides"))
        json_object_set_new(ov, "containerOverrides", json_array());
    json_object_set_new(ov, "inferenceAcceleratorOverrides", json_array());
    json_object_set_new(task, "overrides", ov);
    json_t *list = json_array();
    json_array_foreach((json_t *)containers, i, c)
    {
        char cid[37];
        barge_id_uuid(cid);
        _cleanup_free_ char *carn = ecs_arn(srv, "container/%s/%s/%s", cname, id, cid);
        _cleanup_free_ char *ccpu = barge_xasprintf("%lld", (long long)barge_json_int(c, "cpu", 0));
        json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:s, s:s}", "containerArn",
                                  carn, "taskArn", arn, "name", barge_json_str(c, "name", ""),
                                  "image", barge_json_str(c, "image", ""), "lastStatus",
                                  "PENDING", "networkInterfaces", "healthStatus", "UNKNOWN",
                                  "cpu", ccpu);
        if (json_object_get(c, "memory")) {
            _cleanup_free_ char *m = barge_xasprintf("%lld", (long long)barge_json_int(c, "memory", 0));
            json_object_set_new(entry, "memory", json_string(m));
        }
        if (json_object_get(c, "memoryReservation")) {
            _cleanup_free_ char *m =
                barge_xasprintf("%lld", (long long)barge_json_int(c, "memoryReservation", 0));
            json_object_set_new(entry, "memoryReservation", json_string(m));
        }
        json_array_append_new(list, entry);
    }
    json_object_set_new(task, "containers", list);

    _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, id);
    _cleanup_free_ char *ikey =
        barge_xasprintf("%s/%s", barge_json_str(instance, "_id", ""), id);
    json_t *ports = json_array();
    for (size_t p = 0; p < req->n_ports; p++)
        json_array_append_new(ports, json_integer(req->ports[p]));
    _cleanup_json_ json_t *idx =
        json_pack("{s:s, s:s, s:{s:I, s:I, s:o}, s:b}", "cluster", cname, "task", id, "reserved",
                  "cpu", (json_int_t)req->cpu, "memory", (json_int_t)req->memory, "ports", ports,
                  "running", false);
    json_t *tags = barge_json_array(in, "tags");
    if (barge_store_put(tx, ECS_KIND_TASK, key, task, err) < 0 ||
        barge_store_put(tx, ECS_KIND_ITASK, ikey, idx, err) < 0 ||
        (tags && ecs_tags_add(tx, arn, tags, err) < 0)) {
        json_decref(task);
        return -1;
    }
    *out = task;
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
    const char *lt = barge_json_str(in, "launchType", "EC2");
    if (strcmp(lt, "EC2") != 0)
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "InvalidParameterException",
                                    "launchType '%s' is not available in this barge yet; use "
                                    "EC2 (tasks on registered container instances).",
                                    lt);
    if (json_array_size(barge_json_array(in, "capacityProviderStrategy")) > 0)
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "InvalidParameterException",
                                    "capacityProviderStrategy is not available in this barge "
                                    "yet; use launchType EC2.");
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

/* Places count tasks of td in the cluster and stores them: each placed task's
 * stored document goes to placed, and when one cannot be placed, the reason for
 * each instance goes to failures (ECS's RunTask shape) and placing stops.
 * params holds the RunTask members that shape a task (overrides, startedBy,
 * group, tags). */
static int place_tasks(struct barge_tx *tx, struct barge_server *srv, const json_t *cluster,
                       const json_t *td, const json_t *params, json_int_t count, json_t *placed,
                       json_t *failures, struct barge_error **err)
{
    _cleanup_json_ json_t *containers = apply_overrides(td, barge_json_object(params, "overrides"));
    struct barge_sched_request req;
    task_request(td, containers, barge_json_object(params, "overrides"), &req);
    struct candidates cand = {.tx = tx};
    _cleanup_free_ char *prefix =
        barge_xasprintf("%s/", barge_json_str(cluster, "clusterName", ""));
    if (barge_store_scan(tx, ECS_KIND_INSTANCE, prefix, NULL, false, 0, collect_instance, &cand,
                         err) < 0) {
        candidates_release(&cand);
        return -1;
    }
    if (cand.n == 0) {
        candidates_release(&cand);
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "No Container Instances were found in your cluster.");
    }
    enum barge_sched_verdict *verdicts = barge_xcalloc(cand.n, sizeof(*verdicts));
    int ret = 0;
    for (json_int_t k = 0; k < count; k++) {
        uint64_t rnd;
        barge_random_bytes(&rnd, sizeof(rnd));
        int pick = barge_sched_place(cand.insts, cand.n, &req, rnd, verdicts);
        barge_metrics_scheduler_decision(pick >= 0 ? "placed" : "unplaceable");
        if (pick < 0) {
            for (size_t i = 0; i < cand.n; i++)
                json_array_append_new(
                    failures,
                    json_pack("{s:s, s:s}", "arn",
                              barge_json_str(cand.docs[i], "containerInstanceArn", ""), "reason",
                              barge_sched_verdict_reason(verdicts[i])));
            break;
        }
        json_t *task;
        if (create_task(srv, tx, params, cluster, td, cand.docs[pick], &req, containers, &task,
                        err) < 0) {
            ret = -1;
            break;
        }
        json_array_append_new(placed, task);
    }
    free(verdicts);
    candidates_release(&cand);
    return ret;
}

int ecs_task_place_one(struct barge_tx *tx, struct barge_server *srv, const json_t *cluster,
                       const json_t *td, const json_t *params, json_t **task, char **reason,
                       struct barge_error **err)
{
    *task = NULL;
    *reason = NULL;
    _cleanup_json_ json_t *placed = json_array(), *failures = json_array();
    if (place_tasks(tx, srv, cluster, td, params, 1, placed, failures, err) < 0)
        return -1;
    if (json_array_size(placed) == 1) {
        *task = json_incref(json_array_get(placed, 0));
        return 1;
    }
    /* The closest instance's reason: the first that was eligible, else any. */
    const char *why = "AGENT";
    size_t i;
    json_t *f;
    json_array_foreach(failures, i, f)
    {
        const char *r = barge_json_str(f, "reason", "");
        if (strcmp(r, "AGENT") != 0) {
            why = r;
            break;
        }
    }
    *reason = barge_xstrdup(why);
    return 0;
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
        check_overrides(td, barge_json_object(in, "overrides"), err) < 0)
        return -1;
    _cleanup_json_ json_t *placed = json_array(), *tasks = json_array(),
                          *failures = json_array();
    if (place_tasks(tx, ctx->srv, cluster, td, in, count, placed, failures, err) < 0)
        return -1;
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

static int start_task(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                      struct barge_error **err)
{
    json_t *targets = barge_json_array(in, "containerInstances");
    if (json_array_size(targets) < 1 || json_array_size(targets) > 10)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "containerInstances must name 1 to 10 instances.");
    if (check_run_input(in, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *td = NULL, *containers = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0 ||
        load_runnable_td(tx, ctx->srv, barge_json_str(in, "taskDefinition", ""), &td, err) < 0 ||
        check_overrides(td, barge_json_object(in, "overrides"), err) < 0)
        return -1;
    containers = apply_overrides(td, barge_json_object(in, "overrides"));
    struct barge_sched_request req;
    task_request(td, containers, barge_json_object(in, "overrides"), &req);
    const char *cname = barge_json_str(cluster, "clusterName", "");
    _cleanup_json_ json_t *tasks = json_array(), *failures = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *ident = json_string_value(t);
        _cleanup_free_ char *id = ecs_resource_id(ctx->srv, ident, "container-instance", err);
        if (!id)
            return -1;
        _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, id);
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_get(tx, ECS_KIND_INSTANCE, key, &doc, err) < 0)
            return -1;
        if (!doc || strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0) {
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn", ident, "reason", "MISSING"));
            continue;
        }
        struct candidates cand = {.tx = tx};
        if (collect_instance(key, doc, &cand, err) < 0) {
            candidates_release(&cand);
            return -1;
        }
        /* StartTask places where it is told, but still not where it cannot fit. */
        enum barge_sched_verdict v = barge_sched_fit(&cand.insts[0], &req);
        candidates_release(&cand);
        if (v != BARGE_SCHED_FITS) {
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn",
                                            barge_json_str(doc, "containerInstanceArn", ""),
                                            "reason", barge_sched_verdict_reason(v)));
            continue;
        }
        json_t *task;
        if (create_task(ctx->srv, tx, in, cluster, td, doc, &req, containers, &task, err) < 0)
            return -1;
        json_t *r = render_task(tx, task, true, err);
        json_decref(task);
        if (!r)
            return -1;
        json_array_append_new(tasks, r);
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:O, s:O}", "tasks", tasks, "failures", failures);
    return 0;
}

static int task_find(struct barge_tx *tx, struct barge_server *srv, const char *cluster,
                     const char *ident, json_t **doc, char **key, struct barge_error **err)
{
    *doc = NULL;
    *key = NULL;
    _cleanup_free_ char *id = ecs_resource_id(srv, ident, "task", err);
    if (!id)
        return -1;
    *key = barge_xasprintf("%s/%s", cluster, id);
    int r = barge_store_get(tx, ECS_KIND_TASK, *key, doc, err);
    if (r <= 0) {
        free(*key);
        *key = NULL;
    }
    return r;
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
    int r = task_find(tx, ctx->srv, barge_json_str(cluster, "clusterName", ""), ident, &task,
                      &key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The referenced task '%s' was not found.", ident);
    if (strcmp(barge_json_str(task, "desiredStatus", ""), "STOPPED") != 0) {
        ecs_task_request_stop(task, "UserInitiated", reason ? reason : "Task stopped by user");
        /* A task whose host is gone cannot be stopped by an agent. */
        _cleanup_json_ json_t *inst = NULL;
        _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", barge_json_str(task, "_cluster", ""),
                                                    barge_json_str(task, "_instanceId", ""));
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
    bool tags = false;
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(in, "include"), i, v)
    {
        if (barge_streq(json_string_value(v), "TAGS"))
            tags = true;
    }
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
        int r = task_find(tx, ctx->srv, barge_json_str(cluster, "clusterName", ""),
                          json_string_value(v), &task, &key, &e);
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
    json_t *arns;
    int max;
    char *last;
    bool more;
};

static int list_task_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct task_filter *f = ud;
    const char *desired = barge_json_str(doc, "desiredStatus", "");
    if (strcmp(f->desired, "RUNNING") == 0 ? strcmp(desired, "STOPPED") == 0
                                           : strcmp(desired, f->desired) != 0)
        return 0;
    if ((f->instance_id && !barge_streq(barge_json_str(doc, "_instanceId", NULL), f->instance_id)) ||
        (f->family && !barge_streq(barge_json_str(doc, "_family", NULL), f->family)) ||
        (f->started_by && !barge_streq(barge_json_str(doc, "startedBy", NULL), f->started_by)) ||
        (f->group && !barge_streq(barge_json_str(doc, "group", NULL), f->group)) ||
        (f->launch_type && !barge_streq(barge_json_str(doc, "launchType", NULL), f->launch_type)))
        return 0;
    if ((int)json_array_size(f->arns) == f->max) {
        f->more = true;
        return 1;
    }
    json_array_append_new(f->arns, json_string(barge_json_str(doc, "taskArn", "")));
    free(f->last);
    f->last = barge_xstrdup(key);
    return 0;
}

static int list_tasks(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    struct task_filter f = {
        .family = barge_json_str(in, "family", NULL),
        .started_by = barge_json_str(in, "startedBy", NULL),
        .desired = barge_json_str(in, "desiredStatus", "RUNNING"),
        .launch_type = barge_json_str(in, "launchType", NULL),
    };
    _cleanup_free_ char *after = NULL, *group = NULL, *instance_id = NULL;
    if (barge_api_max_results(in, "maxResults", 100, 100, &f.max, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, "nextToken", NULL), &after, err) < 0)
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
    f.arns = json_array();
    if (barge_store_scan(tx, ECS_KIND_TASK, prefix, after, false, 0, list_task_one, &f, err) < 0) {
        json_decref(f.arns);
        free(f.last);
        return -1;
    }
    *out = json_pack("{s:o}", "taskArns", f.arns);
    if (f.more) {
        char *tok = barge_api_token_encode(f.last);
        json_object_set_new(*out, "nextToken", json_string(tok));
        free(tok);
    }
    free(f.last);
    return 0;
}

/* --- what agents report ------------------------------------------------ */

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
        json_t *c = find_by_name(barge_json_array(task, "containers"), "name",
                                 barge_json_str(rc, "name", ""));
        if (!c)
            continue;
        const char *fields[] = {"lastStatus", "exitCode", "reason", "runtimeId", "imageDigest",
                                "networkBindings", "healthStatus", "networkInterfaces"};
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(fields); k++) {
            json_t *v = json_object_get(rc, fields[k]);
            if (v)
                json_object_set(c, fields[k], v);
        }
    }
    json_t *health = json_object_get(rep, "healthStatus");
    if (json_is_string(health))
        json_object_set(task, "healthStatus", health);
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
        const char *reason = barge_json_str(rep, "stoppedReason", "Essential container in task exited");
        json_object_set_new(task, "stopCode", json_string(code));
        json_object_set_new(task, "stoppedReason", json_string(reason));
    }
    if (next == lifecycle_index("STOPPED")) {
        json_object_set_new(task, "stoppedAt", json_real(now));
        if (!json_object_get(task, "executionStoppedAt"))
            json_object_set_new(task, "executionStoppedAt", json_real(now));
        if (unindex(tx, task, err) < 0)
            return -1;
    } else if (next == lifecycle_index("RUNNING")) {
        /* Flip the index entry so instance counts show the task as running. */
        const char *inst = barge_json_str(task, "_instanceId", NULL);
        _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", inst ? inst : "",
                                                    barge_json_str(task, "_id", ""));
        _cleanup_json_ json_t *idx = NULL;
        if (inst && barge_store_get(tx, ECS_KIND_ITASK, ikey, &idx, err) < 0)
            return -1;
        if (idx) {
            json_object_set_new(idx, "running", json_true());
            if (barge_store_put(tx, ECS_KIND_ITASK, ikey, idx, err) < 0)
                return -1;
        }
    }
    bump_version(task);
    return 0;
}

struct reap {
    json_t *keys;
    double cutoff;
};

static int collect_old(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct reap *r = ud;
    json_t *stopped = json_object_get(doc, "stoppedAt");
    if (barge_streq(barge_json_str(doc, "lastStatus", NULL), "STOPPED") && json_is_number(stopped) &&
        json_number_value(stopped) < r->cutoff)
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
    {NULL, NULL},
};
