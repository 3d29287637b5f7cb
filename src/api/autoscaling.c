/* Application Auto Scaling (AnyScaleFrontendService) for ECS services:
 * scalable targets, target-tracking and step scaling policies, scheduled
 * actions and the activity history. The scaler that acts on them runs in
 * barged's control loop (src/control/autoscale.c). PascalCase members; errors
 * carry "Message". */
#include "api/autoscaling.h"

#include <string.h>

#include "api/api.h"
#include "api/cloudwatch.h"
#include "api/ecs.h"
#include "common/arn.h"
#include "common/ids.h"
#include "common/json.h"

static int invalid(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int invalid(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationException", "%s", msg);
}

/* Checks namespace, dimension and resource id, and that the service exists. */
static int check_target_ids(struct barge_tx *tx, const json_t *in, bool need_service,
                            struct barge_error **err)
{
    const char *ns = barge_json_str(in, "ServiceNamespace", "");
    if (strcmp(ns, "ecs") != 0)
        return invalid(err,
                       "Unsupported service namespace '%s': barge scales ECS services "
                       "(namespace ecs).",
                       ns);
    const char *dim = barge_json_str(in, "ScalableDimension", NULL);
    if (dim && strcmp(dim, AAS_DIMENSION) != 0)
        return invalid(err, "Unsupported scalable dimension '%s' for namespace ecs: use %s.", dim,
                       AAS_DIMENSION);
    const char *rid = barge_json_str(in, "ResourceId", NULL);
    _cleanup_free_ char *cluster = NULL, *service = NULL;
    if (rid && !barge_aas_parse_resource(rid, &cluster, &service))
        return invalid(err, "Unsupported resource ID '%s': use service/<cluster>/<service>.", rid);
    if (rid && need_service) {
        _cleanup_free_ char *key = barge_xasprintf("%s/%s", cluster, service);
        _cleanup_json_ json_t *svc = NULL;
        if (barge_store_get(tx, ECS_KIND_SERVICE, key, &svc, err) < 0)
            return -1;
        if (!svc || !barge_streq(barge_json_str(svc, "status", NULL), "ACTIVE"))
            return invalid(err, "ECS service doesn't exist: %s", rid);
    }
    return 0;
}

static int not_registered(struct barge_error **err, const char *rid)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ObjectNotFoundException",
                                "No scalable target registered for service namespace: ecs, "
                                "resource ID: %s, scalable dimension: %s",
                                rid, AAS_DIMENSION);
}

static int register_scalable_target(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *t = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        check_target_ids(tx, in, true, err) < 0)
        return -1;
    const char *rid = barge_json_str(in, "ResourceId", "");
    if (barge_store_get(tx, AAS_KIND_TARGET, rid, &t, err) < 0)
        return -1;
    json_t *min = json_object_get(in, "MinCapacity"), *max = json_object_get(in, "MaxCapacity");
    if (!t) {
        if (!min || !max)
            return invalid(err, "MinCapacity and MaxCapacity are required to register a new "
                                "scalable target.");
        char hex[33];
        barge_id_hex32(hex);
        _cleanup_free_ char *res = barge_xasprintf("scalable-target/%.36s", hex);
        _cleanup_free_ char *arn =
            barge_arn_make("application-autoscaling", barge_server_region(ctx->srv),
                           ctx->srv->cfg.account_id, res);
        _cleanup_free_ char *role = barge_xasprintf(
            "arn:aws:iam::%s:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_ECSService",
            ctx->srv->cfg.account_id);
        t = json_pack("{s:s, s:s, s:s, s:f, s:s, s:s, s:{s:b, s:b, s:b}}", "ServiceNamespace",
                      "ecs", "ResourceId", rid, "ScalableDimension", AAS_DIMENSION, "CreationTime",
                      barge_now(), "ScalableTargetARN", arn, "RoleARN", role, "SuspendedState",
                      "DynamicScalingInSuspended", 0, "DynamicScalingOutSuspended", 0,
                      "ScheduledScalingSuspended", 0);
    }
    if (min)
        json_object_set(t, "MinCapacity", min);
    if (max)
        json_object_set(t, "MaxCapacity", max);
    json_int_t mn = barge_json_int(t, "MinCapacity", 0), mx = barge_json_int(t, "MaxCapacity", 0);
    if (mn < 0 || mx < 0)
        return invalid(err, "MinCapacity and MaxCapacity must not be negative.");
    if (mn > mx)
        return invalid(err,
                       "Minimum capacity (%lld) cannot be greater than maximum capacity "
                       "(%lld).",
                       (long long)mn, (long long)mx);
    json_t *susp = barge_json_object(in, "SuspendedState");
    if (susp)
        json_object_update(barge_json_object(t, "SuspendedState"), susp);
    if (json_object_get(in, "RoleARN"))
        json_object_set(t, "RoleARN", json_object_get(in, "RoleARN"));
    if (barge_store_put(tx, AAS_KIND_TARGET, rid, t, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:s}", "ScalableTargetARN", barge_json_str(t, "ScalableTargetARN", ""));
    return 0;
}

struct collect {
    json_t *items;
    const char *prefix;
};

static int collect_all(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct collect *c = ud;
    json_array_append_new(c->items, json_pack("{s:s, s:O}", "key", key, "doc", doc));
    return 0;
}

static int drop_kind(struct barge_tx *tx, const char *kind, const char *rid,
                     struct barge_error **err)
{
    _cleanup_json_ json_t *items = json_array();
    struct collect c = {items, NULL};
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", rid);
    if (barge_store_scan(tx, kind, prefix, NULL, false, 0, collect_all, &c, err) < 0)
        return -1;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (barge_store_del(tx, kind, barge_json_str(it, "key", ""), err) < 0)
            return -1;
    }
    return 0;
}

static int deregister_scalable_target(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                      struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *t = NULL;
    const char *rid = barge_json_str(in, "ResourceId", "");
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        check_target_ids(tx, in, false, err) < 0 ||
        barge_store_get(tx, AAS_KIND_TARGET, rid, &t, err) < 0)
        return -1;
    if (!t)
        return not_registered(err, rid);
    if (barge_store_del(tx, AAS_KIND_TARGET, rid, err) < 0 ||
        drop_kind(tx, AAS_KIND_POLICY, rid, err) < 0 ||
        drop_kind(tx, AAS_KIND_SCHEDULED, rid, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

/* Pages through docs of kind (all resources, or those in in's ResourceId /
 * ResourceIds), keeping those keep() accepts, into out[field]. */
static int list_paged(struct barge_api_ctx *ctx, json_t *in, const char *kind, const char *field,
                      int max_default, int max_limit,
                      bool (*keep)(const json_t *doc, const json_t *in), json_t **out,
                      struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    if (check_target_ids(NULL, in, false, err) < 0 ||
        barge_api_page_init(&pg, in, "MaxResults", max_default, max_limit, "NextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *items = json_array();
    struct collect c = {items, NULL};
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, kind, "", pg.after, false, 0, collect_all, &c, err) < 0)
        return -1;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *doc = json_object_get(it, "doc");
        if (keep(doc, in) &&
            barge_api_page_add(&pg, barge_json_str(it, "key", ""), json_incref(doc)) > 0)
            break;
    }
    *out = json_object();
    barge_api_page_finish(&pg, *out, field, "NextToken");
    return 0;
}

static bool resource_matches(const json_t *doc, const json_t *in)
{
    const char *rid = barge_json_str(in, "ResourceId", NULL);
    if (rid && !barge_streq(rid, barge_json_str(doc, "ResourceId", NULL)))
        return false;
    json_t *rids = barge_json_array(in, "ResourceIds");
    if (json_array_size(rids)) {
        size_t i;
        json_t *r;
        json_array_foreach(rids, i, r)
        {
            if (barge_streq(json_string_value(r), barge_json_str(doc, "ResourceId", NULL)))
                return true;
        }
        return false;
    }
    return true;
}

static bool keep_target(const json_t *doc, const json_t *in)
{
    return resource_matches(doc, in);
}

static int describe_scalable_targets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                     struct barge_error **err)
{
    return list_paged(ctx, in, AAS_KIND_TARGET, "ScalableTargets", 50, 50, keep_target, out, err);
}

static bool name_in(const json_t *list, const char *name)
{
    if (!json_array_size(list))
        return true;
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)list, i, v)
    {
        if (barge_streq(json_string_value(v), name))
            return true;
    }
    return false;
}

static bool keep_policy(const json_t *doc, const json_t *in)
{
    return resource_matches(doc, in) &&
           name_in(barge_json_array(in, "PolicyNames"), barge_json_str(doc, "PolicyName", ""));
}

static bool keep_scheduled(const json_t *doc, const json_t *in)
{
    return resource_matches(doc, in) && name_in(barge_json_array(in, "ScheduledActionNames"),
                                                barge_json_str(doc, "ScheduledActionName", ""));
}

static bool keep_activity(const json_t *doc, const json_t *in)
{
    return resource_matches(doc, in);
}

/* A step scaling policy's Alarms are the CloudWatch alarms whose
 * AlarmActions name it. */
static int add_alarm_of(const char *key, json_t *alarm, void *ud, struct barge_error **err)
{
    json_t *policy = ud;
    const char *arn = barge_json_str(policy, "PolicyARN", "");
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(alarm, "AlarmActions"), i, a)
    {
        if (barge_streq(json_string_value(a), arn)) {
            json_array_append_new(json_object_get(policy, "Alarms"),
                                  json_pack("{s:s, s:s}", "AlarmName", key, "AlarmARN",
                                            barge_json_str(alarm, "AlarmArn", "")));
            break;
        }
    }
    return 0;
}

static int describe_scaling_policies(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                     struct barge_error **err)
{
    if (list_paged(ctx, in, AAS_KIND_POLICY, "ScalingPolicies", 50, 50, keep_policy, out, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(*out, "ScalingPolicies"), i, p)
    {
        if (!barge_streq(barge_json_str(p, "PolicyType", NULL), "StepScaling"))
            continue;
        json_object_set_new(p, "Alarms", json_array());
        if (barge_store_scan(tx, CW_KIND_ALARM, "", NULL, false, 0, add_alarm_of, p, err) < 0)
            return -1;
    }
    return 0;
}

static int describe_scheduled_actions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                      struct barge_error **err)
{
    return list_paged(ctx, in, AAS_KIND_SCHEDULED, "ScheduledActions", 50, 50, keep_scheduled, out,
                      err);
}

static int describe_scaling_activities(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    if (list_paged(ctx, in, AAS_KIND_ACTIVITY, "ScalingActivities", 50, 50, keep_activity, out,
                   err) < 0)
        return -1;
    /* Newest first, as Application Auto Scaling lists them. */
    json_t *list = json_object_get(*out, "ScalingActivities");
    size_t n = json_array_size(list);
    for (size_t i = 0; i < n / 2; i++) {
        json_t *a = json_incref(json_array_get(list, i));
        json_array_set(list, i, json_array_get(list, n - 1 - i));
        json_array_set_new(list, n - 1 - i, a);
    }
    return 0;
}

static const char *policy_metric(const json_t *tt)
{
    return barge_json_str(barge_json_object(tt, "PredefinedMetricSpecification"),
                          "PredefinedMetricType", NULL);
}

static int put_scaling_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    const char *rid = barge_json_str(in, "ResourceId", "");
    const char *name = barge_json_str(in, "PolicyName", "");
    const char *type = barge_json_str(in, "PolicyType", "StepScaling");
    json_t *tt = barge_json_object(in, "TargetTrackingScalingPolicyConfiguration");
    json_t *step = barge_json_object(in, "StepScalingPolicyConfiguration");
    if (strcmp(type, "TargetTrackingScaling") == 0) {
        if (!tt)
            return invalid(err, "TargetTrackingScalingPolicyConfiguration is required for a "
                                "TargetTrackingScaling policy.");
        const char *metric = policy_metric(tt);
        if (!metric || (strcmp(metric, "ECSServiceAverageCPUUtilization") != 0 &&
                        strcmp(metric, "ECSServiceAverageMemoryUtilization") != 0))
            return invalid(err,
                           "Unsupported metric '%s' for an ECS service: use "
                           "ECSServiceAverageCPUUtilization or "
                           "ECSServiceAverageMemoryUtilization.",
                           metric ? metric : "(customized)");
        json_t *tv = json_object_get(tt, "TargetValue");
        if (!json_is_number(tv) || json_number_value(tv) <= 0)
            return invalid(err, "TargetValue must be a positive number.");
    } else if (strcmp(type, "StepScaling") == 0) {
        if (!step)
            return invalid(err, "StepScalingPolicyConfiguration is required for a StepScaling "
                                "policy.");
        if (!json_array_size(barge_json_array(step, "StepAdjustments")))
            return invalid(err, "StepScalingPolicyConfiguration needs StepAdjustments.");
    } else {
        return invalid(err,
                       "Unsupported policy type '%s' for ECS: use TargetTrackingScaling "
                       "or StepScaling.",
                       type);
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *t = NULL, *p = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        check_target_ids(tx, in, false, err) < 0 ||
        barge_store_get(tx, AAS_KIND_TARGET, rid, &t, err) < 0)
        return -1;
    if (!t)
        return not_registered(err, rid);
    _cleanup_free_ char *key = barge_xasprintf("%s|%s", rid, name);
    if (barge_store_get(tx, AAS_KIND_POLICY, key, &p, err) < 0)
        return -1;
    char id[37];
    barge_id_uuid(id);
    _cleanup_free_ char *res =
        barge_xasprintf("scalingPolicy:%s:resource/ecs/%s:policyName/%s", id, rid, name);
    _cleanup_free_ char *arn =
        barge_arn_make("autoscaling", barge_server_region(ctx->srv), ctx->srv->cfg.account_id, res);
    const char *keep_arn = p ? barge_json_str(p, "PolicyARN", arn) : arn;
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:[]}", "PolicyARN", keep_arn, "PolicyName",
                  name, "ServiceNamespace", "ecs", "ResourceId", rid, "ScalableDimension",
                  AAS_DIMENSION, "PolicyType", type, "CreationTime", barge_now(), "Alarms");
    if (tt) {
        json_object_set(doc, "TargetTrackingScalingPolicyConfiguration", tt);
        /* Target tracking manages two alarms in CloudWatch; they are named
         * here as AWS names them, and evaluated by barged. */
        const char *suffix[] = {"AlarmHigh", "AlarmLow"};
        for (size_t i = 0; i < 2; i++) {
            char aid[37];
            barge_id_uuid(aid);
            _cleanup_free_ char *an =
                barge_xasprintf("TargetTracking-%s-%s-%s", rid, suffix[i], aid);
            _cleanup_free_ char *ares = barge_xasprintf("alarm:%s", an);
            _cleanup_free_ char *aarn = barge_arn_make("cloudwatch", barge_server_region(ctx->srv),
                                                       ctx->srv->cfg.account_id, ares);
            json_array_append_new(json_object_get(doc, "Alarms"),
                                  json_pack("{s:s, s:s}", "AlarmName", an, "AlarmARN", aarn));
        }
    }
    if (step)
        json_object_set(doc, "StepScalingPolicyConfiguration", step);
    if (p) {
        /* A replaced policy keeps its cooldown bookkeeping. */
        json_t *last = json_object_get(p, "_lastScaling");
        if (last)
            json_object_set(doc, "_lastScaling", last);
    }
    int r = barge_store_put(tx, AAS_KIND_POLICY, key, doc, err);
    if (r == 0)
        r = barge_store_commit(barge_steal(&tx), err);
    if (r < 0) {
        json_decref(doc);
        return -1;
    }
    *out = json_pack("{s:s, s:O}", "PolicyARN", keep_arn, "Alarms", json_object_get(doc, "Alarms"));
    json_decref(doc);
    return 0;
}

static int delete_named(struct barge_api_ctx *ctx, json_t *in, const char *kind,
                        const char *name_field, const char *what, json_t **out,
                        struct barge_error **err)
{
    const char *rid = barge_json_str(in, "ResourceId", "");
    const char *name = barge_json_str(in, name_field, "");
    _cleanup_free_ char *key = barge_xasprintf("%s|%s", rid, name);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        check_target_ids(tx, in, false, err) < 0 || barge_store_get(tx, kind, key, &doc, err) < 0)
        return -1;
    if (!doc)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ObjectNotFoundException",
                                    "No %s found for service namespace: ecs, resource ID: %s, "
                                    "scalable dimension: %s: %s",
                                    what, rid, AAS_DIMENSION, name);
    if (barge_store_del(tx, kind, key, err) < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int delete_scaling_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    return delete_named(ctx, in, AAS_KIND_POLICY, "PolicyName", "scaling policy", out, err);
}

static int delete_scheduled_action(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    return delete_named(ctx, in, AAS_KIND_SCHEDULED, "ScheduledActionName", "scheduled action", out,
                        err);
}

static int put_scheduled_action(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    const char *rid = barge_json_str(in, "ResourceId", "");
    const char *name = barge_json_str(in, "ScheduledActionName", "");
    const char *schedule = barge_json_str(in, "Schedule", NULL);
    const char *tz = barge_json_str(in, "Timezone", "UTC");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *t = NULL, *old = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        check_target_ids(tx, in, false, err) < 0 ||
        barge_store_get(tx, AAS_KIND_TARGET, rid, &t, err) < 0)
        return -1;
    if (!t)
        return not_registered(err, rid);
    _cleanup_free_ char *key = barge_xasprintf("%s|%s", rid, name);
    if (barge_store_get(tx, AAS_KIND_SCHEDULED, key, &old, err) < 0)
        return -1;
    if (!schedule && !old)
        return invalid(err, "Schedule is required for a new scheduled action.");
    _cleanup_free_ char *why = NULL;
    if (schedule && !barge_aas_schedule_valid(schedule, tz, &why))
        return invalid(err, "Invalid Schedule '%s': %s", schedule, why);
    json_t *action = barge_json_object(in, "ScalableTargetAction");
    json_int_t mn = barge_json_int(action, "MinCapacity", -1);
    json_int_t mx = barge_json_int(action, "MaxCapacity", -1);
    if (mn >= 0 && mx >= 0 && mn > mx)
        return invalid(err,
                       "Minimum capacity (%lld) cannot be greater than maximum capacity "
                       "(%lld).",
                       (long long)mn, (long long)mx);
    json_t *doc = old ? json_incref(old) : NULL;
    if (!doc) {
        char id[37];
        barge_id_uuid(id);
        _cleanup_free_ char *res = barge_xasprintf(
            "scheduledAction:%s:resource/ecs/%s:scheduledActionName/%s", id, rid, name);
        _cleanup_free_ char *arn = barge_arn_make("autoscaling", barge_server_region(ctx->srv),
                                                  ctx->srv->cfg.account_id, res);
        doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f}", "ScheduledActionName", name,
                        "ScheduledActionARN", arn, "ServiceNamespace", "ecs", "ResourceId", rid,
                        "ScalableDimension", AAS_DIMENSION, "CreationTime", barge_now());
    }
    const char *fields[] = {"Schedule", "Timezone", "StartTime", "EndTime", "ScalableTargetAction"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(fields); i++) {
        json_t *v = json_object_get(in, fields[i]);
        if (v)
            json_object_set(doc, fields[i], v);
    }
    if (schedule)
        json_object_del(doc, "_lastRun");
    int r = barge_store_put(tx, AAS_KIND_SCHEDULED, key, doc, err);
    json_decref(doc);
    if (r < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static const struct barge_api_op aas_ops[] = {
    {"RegisterScalableTarget", register_scalable_target},
    {"DeregisterScalableTarget", deregister_scalable_target},
    {"DescribeScalableTargets", describe_scalable_targets},
    {"PutScalingPolicy", put_scaling_policy},
    {"DeleteScalingPolicy", delete_scaling_policy},
    {"DescribeScalingPolicies", describe_scaling_policies},
    {"DescribeScalingActivities", describe_scaling_activities},
    {"PutScheduledAction", put_scheduled_action},
    {"DeleteScheduledAction", delete_scheduled_action},
    {"DescribeScheduledActions", describe_scheduled_actions},
    {NULL, NULL},
};

static const struct barge_api_op *const aas_op_tables[] = {aas_ops, NULL};

const struct barge_api_service barge_api_autoscaling = {
    .model = "application-autoscaling",
    .message_key = "Message",
    .invalid_type = "ValidationException",
    .client_type = "ValidationException",
    .server_type = "InternalServiceException",
    .not_found_type = "ObjectNotFoundException",
    .op_tables = aas_op_tables,
};
