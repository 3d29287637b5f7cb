/* Task sets of services with the EXTERNAL deployment controller:
 * CreateTaskSet, UpdateTaskSet, DeleteTaskSet, DescribeTaskSets and
 * UpdateServicePrimaryTaskSet. A task set lives in its service's document
 * ("taskSets"), so that one write transaction sees a service with all of its
 * sets; the service scheduler (src/control/services.c) runs each set's
 * computedDesiredCount of tasks, started by the set's id, and keeps its counts
 * and stabilityStatus. */
#include <string.h>

#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

/* What the primary task set lends its service (DescribeServices shows the
 * primary set's values). */
static const char *const primary_fields[] = {
    "taskDefinition",    "launchType",           "capacityProviderStrategy", "loadBalancers",
    "serviceRegistries", "networkConfiguration", "platformVersion",          "platformFamily",
};

/* Loads the cluster and the service of a task set request for a change;
 * the service must use the EXTERNAL deployment controller. */
static int load(struct barge_api_ctx *ctx, const json_t *in, bool write, struct barge_tx **tx,
                json_t **svc, char **key, struct barge_error **err)
{
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(ctx->srv->store, write, tx, err) < 0 ||
        ecs_cluster_load(*tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0 ||
        ecs_service_load(*tx, ctx->srv, cluster, barge_json_str(in, "service", ""), svc, key, err) <
            0)
        return -1;
    if (!ecs_service_external(*svc))
        return barge_error_set_type(
            err, BARGE_ERR_INVALID, "InvalidParameterException",
            "Task sets are only supported for services with the "
            "EXTERNAL deployment controller; service '%s' uses %s.",
            barge_json_str(*svc, "serviceName", ""),
            barge_json_str(barge_json_object(*svc, "deploymentController"), "type", "ECS"));
    return 0;
}

/* The task set ident (its id or ARN) names; DRAINING (deleted) sets are
 * found only when draining is true. Borrowed from svc. */
static json_t *find_set(json_t *svc, const char *ident, bool draining)
{
    size_t i;
    json_t *ts;
    json_array_foreach(barge_json_array(svc, "taskSets"), i, ts)
    {
        if (!barge_streq(barge_json_str(ts, "id", NULL), ident) &&
            !barge_streq(barge_json_str(ts, "taskSetArn", NULL), ident))
            continue;
        if (!draining && barge_streq(barge_json_str(ts, "status", NULL), "DRAINING"))
            return NULL;
        return ts;
    }
    return NULL;
}

/* Loads the service of a request for a change, and the task set (not
 * DRAINING) in[field] names, borrowed from *svc; TaskSetNotFoundException
 * when there is none. */
static int load_set(struct barge_api_ctx *ctx, const json_t *in, const char *field,
                    struct barge_tx **tx, json_t **svc, char **key, json_t **ts,
                    struct barge_error **err)
{
    if (load(ctx, in, true, tx, svc, key, err) < 0)
        return -1;
    const char *ident = barge_json_str(in, field, "");
    *ts = find_set(*svc, ident, false);
    if (!*ts)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "TaskSetNotFoundException",
                                    "Task set '%s' not found in service '%s'.", ident,
                                    barge_json_str(*svc, "serviceName", ""));
    return 0;
}

/* Checks a Scale input; NULL means 100 percent. *out is a new reference. */
static int check_scale(const json_t *scale, json_t **out, struct barge_error **err)
{
    const char *unit = barge_json_str(scale, "unit", "PERCENT");
    json_t *v = json_object_get(scale, "value");
    double value = scale ? (json_is_number(v) ? json_number_value(v) : 0) : 100;
    if (strcmp(unit, "PERCENT") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "scale.unit must be PERCENT; '%s' was given.", unit);
    if (!(value >= 0 && value <= 100))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "scale.value must be between 0 and 100; '%g' was given.",
                                    value);
    *out = json_pack("{s:f, s:s}", "value", value, "unit", "PERCENT");
    return 0;
}

static json_t *render(struct barge_tx *tx, const json_t *ts, bool tags, struct barge_error **err)
{
    json_t *out = ecs_public(ts);
    if (tags) {
        json_t *t;
        if (ecs_tags_get(tx, barge_json_str(ts, "taskSetArn", ""), &t, err) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "tags", t);
    }
    return out;
}

/* Stores svc and answers {"taskSet": ts}. */
static int save_and_answer(struct barge_api_ctx *ctx, struct barge_tx **tx, const char *key,
                           json_t *svc, const json_t *ts, bool tags, json_t **out,
                           struct barge_error **err)
{
    if (barge_store_put(*tx, ECS_KIND_SERVICE, key, svc, err) < 0)
        return -1;
    json_t *o = render(*tx, ts, tags, err);
    if (!o)
        return -1;
    if (barge_store_commit(barge_steal(tx), err) < 0) {
        json_decref(o);
        return -1;
    }
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:o}", "taskSet", o);
    return 0;
}

static int create_task_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    const char *lt = barge_json_str(in, "launchType", NULL);
    json_t *strategy = barge_json_array(in, "capacityProviderStrategy");
    bool fargate = false;
    if (ecs_service_check_launch(in, &fargate, err) < 0)
        return -1;
    size_t i;
    json_t *v;
    if (json_array_size(barge_json_array(in, "serviceRegistries")))
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "InvalidParameterException",
                                    "serviceRegistries are not supported: barge has no Cloud "
                                    "Map.");
    json_t *tags = barge_json_array(in, "tags");
    _cleanup_json_ json_t *scale = NULL;
    if ((tags && ecs_tags_validate(tags, err) < 0) ||
        check_scale(barge_json_object(in, "scale"), &scale, err) < 0)
        return -1;

    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *td = NULL;
    _cleanup_free_ char *key = NULL, *tdkey = NULL;
    if (load(ctx, in, true, &tx, &svc, &key, err) < 0)
        return -1;
    /* A retried request (same clientToken) gets the set it made. */
    const char *token = barge_json_str(in, "clientToken", NULL);
    json_array_foreach(barge_json_array(svc, "taskSets"), i, v)
    {
        if (token && barge_streq(barge_json_str(v, "_clientToken", NULL), token)) {
            json_t *o = render(tx, v, true, err);
            if (!o)
                return -1;
            *out = json_pack("{s:o}", "taskSet", o);
            return 0;
        }
    }
    const char *ident = barge_json_str(in, "taskDefinition", "");
    int r = ecs_taskdef_find(tx, ctx->srv, ident, &td, &tdkey, err);
    if (r < 0)
        return -1;
    if (r == 0 || strcmp(barge_json_str(td, "status", ""), "ACTIVE") != 0)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "TaskDefinition '%s' not found or not ACTIVE.", ident);
    if (ecs_service_check_load_balancers(tx, barge_json_array(in, "loadBalancers"), td, err) < 0 ||
        (fargate && ecs_fargate_check(td, in, err) < 0) ||
        (json_array_size(strategy) && ecs_capacity_check_strategy(tx, ctx->srv, strategy, err) < 0))
        return -1;

    char id[ECS_DEPLOYMENT_ID_LEN];
    ecs_deployment_id(id);
    const char *cname = barge_json_str(svc, "_cluster", "");
    const char *sname = barge_json_str(svc, "serviceName", "");
    _cleanup_free_ char *arn = ecs_arn(ctx->srv, "task-set/%s/%s/%s", cname, sname, id);
    double now = barge_now();
    json_t *ts = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:O, s:s, s:f, s:[], s:[]}", "id",
        id, "taskSetArn", arn, "serviceArn", barge_json_str(svc, "serviceArn", ""), "clusterArn",
        barge_json_str(svc, "clusterArn", ""), "status", "ACTIVE", "taskDefinition",
        barge_json_str(td, "taskDefinitionArn", ""), "computedDesiredCount", 0, "pendingCount", 0,
        "runningCount", 0, "createdAt", now, "updatedAt", now, "scale", scale, "stabilityStatus",
        "STABILIZING", "stabilityStatusAt", now, "loadBalancers", "serviceRegistries");
    if (json_array_size(strategy))
        json_object_set(ts, "capacityProviderStrategy", strategy);
    else
        json_object_set_new(ts, "launchType", json_string(lt ? lt : "EC2"));
    if (fargate) {
        json_object_set_new(ts, "platformVersion",
                            json_string(barge_json_str(in, "platformVersion", "LATEST")));
        json_object_set_new(ts, "platformFamily", json_string("Linux"));
    }
    const char *copy[] = {"externalId", "networkConfiguration", "loadBalancers"};
    for (size_t k = 0; k < BARGE_ARRAY_SIZE(copy); k++) {
        json_t *c = json_object_get(in, copy[k]);
        if (c)
            json_object_set(ts, copy[k], c);
    }
    if (token)
        json_object_set_new(ts, "_clientToken", json_string(token));
    json_t *sets = barge_json_array(svc, "taskSets");
    if (!sets) {
        sets = json_array();
        json_object_set_new(svc, "taskSets", sets);
    }
    json_array_append_new(sets, ts);
    ecs_service_tasksets_compute(svc);
    ecs_service_event(svc, "created task set %s with %lld task(s) of %s.", id,
                      (long long)barge_json_int(ts, "computedDesiredCount", 0),
                      barge_json_str(ts, "taskDefinition", ""));
    if (ecs_tags_drop(tx, arn, err) < 0 || (tags && ecs_tags_add(tx, arn, tags, err) < 0))
        return -1;
    return save_and_answer(ctx, &tx, key, svc, ts, true, out, err);
}

static int update_task_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    _cleanup_json_ json_t *scale = NULL;
    if (check_scale(barge_json_object(in, "scale"), &scale, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL;
    _cleanup_free_ char *key = NULL;
    json_t *ts = NULL;
    if (load_set(ctx, in, "taskSet", &tx, &svc, &key, &ts, err) < 0)
        return -1;
    json_object_set(ts, "scale", scale);
    json_object_set_new(ts, "updatedAt", json_real(barge_now()));
    ecs_service_tasksets_compute(svc);
    return save_and_answer(ctx, &tx, key, svc, ts, false, out, err);
}

static int update_service_primary_task_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                           struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL;
    _cleanup_free_ char *key = NULL;
    json_t *ts = NULL;
    if (load_set(ctx, in, "primaryTaskSet", &tx, &svc, &key, &ts, err) < 0)
        return -1;
    double now = barge_now();
    size_t i;
    json_t *other;
    json_array_foreach(barge_json_array(svc, "taskSets"), i, other)
    {
        if (other != ts && barge_streq(barge_json_str(other, "status", NULL), "PRIMARY")) {
            json_object_set_new(other, "status", json_string("ACTIVE"));
            json_object_set_new(other, "updatedAt", json_real(now));
        }
    }
    if (!barge_streq(barge_json_str(ts, "status", NULL), "PRIMARY")) {
        json_object_set_new(ts, "status", json_string("PRIMARY"));
        json_object_set_new(ts, "updatedAt", json_real(now));
        ecs_service_event(svc, "task set %s is now the primary task set.",
                          barge_json_str(ts, "id", ""));
    }
    for (i = 0; i < BARGE_ARRAY_SIZE(primary_fields); i++) {
        json_t *v = json_object_get(ts, primary_fields[i]);
        if (v)
            json_object_set(svc, primary_fields[i], v);
        else
            json_object_del(svc, primary_fields[i]);
    }
    return save_and_answer(ctx, &tx, key, svc, ts, false, out, err);
}

static int delete_task_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL;
    _cleanup_free_ char *key = NULL;
    json_t *ts = NULL;
    if (load_set(ctx, in, "taskSet", &tx, &svc, &key, &ts, err) < 0)
        return -1;
    double pct = json_number_value(json_object_get(barge_json_object(ts, "scale"), "value"));
    json_int_t tasks = barge_json_int(ts, "runningCount", 0) +
                       barge_json_int(ts, "pendingCount", 0) +
                       barge_json_int(ts, "computedDesiredCount", 0);
    if ((pct > 0 || tasks > 0) && !barge_json_bool(in, "force", false))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Task set '%s' cannot be deleted while it is scaled above 0 "
                                    "(scale %g%%, %lld task(s)); scale it to 0 first, or pass "
                                    "force.",
                                    barge_json_str(ts, "id", ""), pct, (long long)tasks);
    json_object_set_new(ts, "status", json_string("DRAINING"));
    json_object_set_new(ts, "updatedAt", json_real(barge_now()));
    ecs_service_tasksets_compute(svc);
    ecs_service_event(svc, "deleted task set %s.", barge_json_str(ts, "id", ""));
    if (ecs_tags_drop(tx, barge_json_str(ts, "taskSetArn", ""), err) < 0)
        return -1;
    return save_and_answer(ctx, &tx, key, svc, ts, false, out, err);
}

static int describe_task_sets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *list = json_array(), *failures = json_array();
    _cleanup_free_ char *key = NULL;
    if (load(ctx, in, false, &tx, &svc, &key, err) < 0)
        return -1;
    bool tags = ecs_include_tags(in);
    json_t *idents = barge_json_array(in, "taskSets");
    size_t i;
    json_t *v;
    if (!idents) {
        json_array_foreach(barge_json_array(svc, "taskSets"), i, v)
        {
            json_t *o = render(tx, v, tags, err);
            if (!o)
                return -1;
            json_array_append_new(list, o);
        }
    }
    json_array_foreach(idents, i, v)
    {
        const char *ident = json_string_value(v);
        json_t *ts = find_set(svc, ident, true);
        if (!ts) {
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn", ident, "reason", "MISSING"));
            continue;
        }
        json_t *o = render(tx, ts, tags, err);
        if (!o)
            return -1;
        json_array_append_new(list, o);
    }
    *out = json_pack("{s:O, s:O}", "taskSets", list, "failures", failures);
    return 0;
}

const struct barge_api_op ecs_taskset_ops[] = {
    {"CreateTaskSet", create_task_set},
    {"UpdateTaskSet", update_task_set},
    {"DeleteTaskSet", delete_task_set},
    {"DescribeTaskSets", describe_task_sets},
    {"UpdateServicePrimaryTaskSet", update_service_primary_task_set},
    {NULL, NULL},
};
