/* The scaler behind Application Auto Scaling. Every pass it looks at each
 * scalable target: fires scheduled actions that are due (changing the
 * target's minimum and maximum), then evaluates target-tracking policies on
 * the service's average CPU or memory utilization (relative to what its tasks
 * reserve) and sets the service's desired count within [min, max]. It scales
 * out as soon as the metric is above target (after ScaleOutCooldown) and in
 * only after several consecutive low readings (after ScaleInCooldown), and
 * records every change as a scaling activity. Step scaling policies act only
 * when a CloudWatch alarm in ALARM names them (control/alarms.c calls
 * barge_autoscale_run_step_policy). */
#include <math.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "control/control.h"
#include "ecs/ecs.h"
#include "sched/schedule.h"
#include "sched/stepscale.h"
#include "svc/autoscaling.h"

/* Consecutive low readings before scaling in. */
#define SCALE_IN_READINGS 3

static barge_autoscale_metric_fn metric_source;
int barge_autoscale_window_seconds = 60;

void barge_autoscale_set_metric_source(barge_autoscale_metric_fn fn)
{
    metric_source = fn;
}

struct items {
    json_t *list;
};

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append_new(((struct items *)ud)->list,
                          json_pack("{s:s, s:O}", "key", key, "doc", doc));
    return 0;
}

static int load_all(struct barge_tx *tx, const char *kind, const char *prefix, json_t **out,
                    struct barge_error **err)
{
    *out = json_array();
    struct items it = {*out};
    return barge_store_scan(tx, kind, prefix, NULL, false, 0, collect, &it, err);
}

/* Sets the service's desired count and records the activity. */
static int set_desired(struct barge_server *srv, struct barge_tx *tx, const char *rid, json_t *svc,
                       const char *svc_key, json_int_t desired, const char *cause,
                       struct barge_error **err)
{
    json_int_t cur = barge_json_int(svc, "desiredCount", 0);
    if (desired == cur)
        return 0;
    json_object_set_new(svc, "desiredCount", json_integer(desired));
    json_t *primary = json_array_get(barge_json_array(svc, "deployments"), 0);
    if (primary)
        json_object_set_new(primary, "desiredCount", json_integer(desired));
    _cleanup_free_ char *desc =
        barge_xasprintf("Setting desired count to %lld.", (long long)desired);
    _cleanup_free_ char *full_cause =
        barge_xasprintf("%s changing the desired count from %lld to %lld", cause, (long long)cur,
                        (long long)desired);
    barge_info("autoscaling %s: %s (%s)", rid, desc, cause);
    if (barge_store_put(tx, ECS_KIND_SERVICE, svc_key, svc, err) < 0 ||
        barge_aas_activity_add(tx, rid, desc, full_cause, "Successful", NULL, err) < 0)
        return -1;
    barge_server_notify(srv);
    return 0;
}

static int scheduled_pass(struct barge_tx *tx, const char *rid, json_t *target, double now,
                          bool *target_changed, struct barge_error **err)
{
    _cleanup_json_ json_t *actions = NULL;
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", rid);
    if (load_all(tx, AAS_KIND_SCHEDULED, prefix, &actions, err) < 0)
        return -1;
    size_t i;
    json_t *a;
    json_array_foreach(actions, i, a)
    {
        json_t *doc = json_object_get(a, "doc");
        char *why = NULL;
        struct barge_schedule *s = barge_schedule_parse(
            barge_json_str(doc, "Schedule", ""), barge_json_str(doc, "Timezone", "UTC"), &why);
        free(why);
        if (!s)
            continue;
        json_t *start = json_object_get(doc, "StartTime"), *end = json_object_get(doc, "EndTime");
        double origin = json_is_number(start)
                            ? json_number_value(start)
                            : json_number_value(json_object_get(doc, "CreationTime"));
        double last = json_is_number(json_object_get(doc, "_lastRun"))
                          ? json_number_value(json_object_get(doc, "_lastRun"))
                          : json_number_value(json_object_get(doc, "CreationTime")) - 1;
        time_t fire = barge_schedule_next(s, (time_t)origin, (time_t)last, (time_t)now);
        barge_schedule_free(s);
        if (!fire || (json_is_number(start) && fire < json_number_value(start)) ||
            (json_is_number(end) && fire > json_number_value(end)))
            continue;
        json_object_set_new(doc, "_lastRun", json_real(now));
        if (barge_store_put(tx, AAS_KIND_SCHEDULED, barge_json_str(a, "key", ""), doc, err) < 0)
            return -1;
        json_t *act = barge_json_object(doc, "ScalableTargetAction");
        json_int_t mn = barge_json_int(act, "MinCapacity", -1);
        json_int_t mx = barge_json_int(act, "MaxCapacity", -1);
        if (mn >= 0)
            json_object_set_new(target, "MinCapacity", json_integer(mn));
        if (mx >= 0)
            json_object_set_new(target, "MaxCapacity", json_integer(mx));
        _cleanup_free_ char *desc =
            barge_xasprintf("Setting min capacity to %lld and max capacity to %lld",
                            (long long)barge_json_int(target, "MinCapacity", 0),
                            (long long)barge_json_int(target, "MaxCapacity", 0));
        _cleanup_free_ char *cause =
            barge_xasprintf("scheduled action name %s was triggered",
                            barge_json_str(doc, "ScheduledActionName", ""));
        if (barge_aas_activity_add(tx, rid, desc, cause, "Successful", NULL, err) < 0)
            return -1;
        *target_changed = true;
    }
    return 0;
}

/* Target tracking: returns the desired count the policies ask for, or -1. */
static json_int_t tracking_pass(struct barge_server *srv, struct barge_tx *tx, const char *rid,
                                const char *cluster, const char *service, const json_t *target,
                                json_int_t desired, json_int_t running, double now, char **cause,
                                struct barge_error **err)
{
    _cleanup_json_ json_t *policies = NULL;
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", rid);
    if (load_all(tx, AAS_KIND_POLICY, prefix, &policies, err) < 0)
        return -2;
    json_t *susp = barge_json_object(target, "SuspendedState");
    bool no_out = barge_json_bool(susp, "DynamicScalingOutSuspended", false);
    bool no_in = barge_json_bool(susp, "DynamicScalingInSuspended", false);
    json_int_t want = -1;
    size_t i;
    json_t *p;
    json_array_foreach(policies, i, p)
    {
        json_t *doc = json_object_get(p, "doc");
        json_t *tt = barge_json_object(doc, "TargetTrackingScalingPolicyConfiguration");
        if (!tt || !metric_source)
            continue;
        const char *metric = barge_json_str(barge_json_object(tt, "PredefinedMetricSpecification"),
                                            "PredefinedMetricType", "");
        double value = metric_source(srv, cluster, service, metric, barge_autoscale_window_seconds);
        if (value < 0 || running <= 0)
            continue;
        double tv = json_number_value(json_object_get(tt, "TargetValue"));
        json_int_t calc = (json_int_t)ceil((double)running * value / tv - 1e-9);
        if (calc < 1)
            calc = 1;
        double last = json_number_value(json_object_get(doc, "_lastScaling"));
        json_int_t lows = barge_json_int(doc, "_lowReadings", 0);
        const char *alarm = NULL;
        json_int_t pick = -1;
        if (calc > desired && !no_out) {
            if (now - last >= barge_json_int(tt, "ScaleOutCooldown", 300)) {
                pick = calc;
                alarm = "AlarmHigh";
            }
            lows = 0;
        } else if (calc < desired && value < tv * 0.9 && !no_in &&
                   !barge_json_bool(tt, "DisableScaleIn", false)) {
            lows++;
            if (lows >= SCALE_IN_READINGS &&
                now - last >= barge_json_int(tt, "ScaleInCooldown", 300)) {
                pick = calc;
                alarm = "AlarmLow";
                lows = 0;
            }
        } else {
            lows = 0;
        }
        json_object_set_new(doc, "_lowReadings", json_integer(lows));
        if (pick >= 0) {
            json_object_set_new(doc, "_lastScaling", json_real(now));
            const char *alarm_name = "";
            size_t k;
            json_t *al;
            json_array_foreach(barge_json_array(doc, "Alarms"), k, al)
            {
                if (strstr(barge_json_str(al, "AlarmName", ""), alarm))
                    alarm_name = barge_json_str(al, "AlarmName", "");
            }
            /* Out wins over in across policies, as Application Auto Scaling does. */
            if (want < 0 || pick > want) {
                want = pick;
                free(*cause);
                *cause = barge_xasprintf("monitor alarm %s in state ALARM triggered policy %s "
                                         "(%s %.1f, target %.1f)",
                                         alarm_name, barge_json_str(doc, "PolicyName", ""), metric,
                                         value, tv);
            }
        }
        if (barge_store_put(tx, AAS_KIND_POLICY, barge_json_str(p, "key", ""), doc, err) < 0)
            return -2;
    }
    return want;
}

static int target_pass(struct barge_server *srv, const char *rid, struct barge_error **err)
{
    _cleanup_free_ char *cluster = NULL, *service = NULL, *cause = NULL;
    if (!barge_aas_parse_resource(rid, &cluster, &service))
        return 0;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *target = NULL, *svc = NULL;
    _cleanup_free_ char *svc_key = barge_xasprintf("%s/%s", cluster, service);
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, AAS_KIND_TARGET, rid, &target, err) < 0 ||
        barge_store_get(tx, ECS_KIND_SERVICE, svc_key, &svc, err) < 0)
        return -1;
    if (!target || !svc || !barge_streq(barge_json_str(svc, "status", NULL), "ACTIVE"))
        return 0;
    double now = barge_now();
    bool target_changed = false;
    json_t *susp = barge_json_object(target, "SuspendedState");
    if (!barge_json_bool(susp, "ScheduledScalingSuspended", false) &&
        scheduled_pass(tx, rid, target, now, &target_changed, err) < 0)
        return -1;
    json_int_t mn = barge_json_int(target, "MinCapacity", 0);
    json_int_t mx = barge_json_int(target, "MaxCapacity", 0);
    json_int_t desired = barge_json_int(svc, "desiredCount", 0);
    json_int_t running = barge_json_int(svc, "runningCount", 0);
    json_int_t want =
        tracking_pass(srv, tx, rid, cluster, service, target, desired, running, now, &cause, err);
    if (want == -2)
        return -1;
    bool dynamic_blocked = barge_json_bool(susp, "DynamicScalingInSuspended", false) &&
                           barge_json_bool(susp, "DynamicScalingOutSuspended", false);
    /* Keep the count within the bounds; a scheduled change of the bounds
     * moves it, whether or not a policy also wants to. */
    if (want < 0) {
        want = desired;
        if (!dynamic_blocked || target_changed) {
            if (desired < mn) {
                want = mn;
                free(cause);
                cause = barge_xasprintf("minimum capacity was set to %lld", (long long)mn);
            } else if (desired > mx) {
                want = mx;
                free(cause);
                cause = barge_xasprintf("maximum capacity was set to %lld", (long long)mx);
            }
        }
    } else {
        if (want < mn)
            want = mn;
        if (want > mx)
            want = mx;
    }
    if (target_changed && barge_store_put(tx, AAS_KIND_TARGET, rid, target, err) < 0)
        return -1;
    if (want != desired &&
        set_desired(srv, tx, rid, svc, svc_key, want, cause ? cause : "a scaling policy", err) < 0)
        return -1;
    return barge_store_commit(barge_steal(&tx), err);
}

/* "arn:...:scalingPolicy:<id>:resource/ecs/<resource id>:policyName/<name>"
 * -> the policy's store key "<resource id>|<name>" and its resource id. */
static bool policy_key_of(const char *arn, char **key, char **rid)
{
    const char *res = strstr(arn, ":resource/ecs/");
    const char *pn = res ? strstr(res, ":policyName/") : NULL;
    if (!res || !pn || !barge_str_has_prefix(arn, "arn:") || !strstr(arn, ":scalingPolicy:"))
        return false;
    res += strlen(":resource/ecs/");
    *rid = barge_xstrndup(res, (size_t)(pn - res));
    *key = barge_xasprintf("%s|%s", *rid, pn + strlen(":policyName/"));
    return true;
}

int barge_autoscale_run_step_policy(struct barge_server *srv, struct barge_tx *tx,
                                    const char *policy_arn, const char *alarm_name,
                                    const char *state, const json_t *values, double threshold,
                                    bool below, struct barge_error **err)
{
    _cleanup_free_ char *key = NULL, *rid = NULL, *cluster = NULL, *service = NULL;
    if (!policy_key_of(policy_arn, &key, &rid) ||
        !barge_aas_parse_resource(rid, &cluster, &service))
        return 0;
    _cleanup_json_ json_t *policy = NULL, *target = NULL, *svc = NULL;
    _cleanup_free_ char *svc_key = barge_xasprintf("%s/%s", cluster, service);
    if (barge_store_get(tx, AAS_KIND_POLICY, key, &policy, err) < 0 ||
        barge_store_get(tx, AAS_KIND_TARGET, rid, &target, err) < 0 ||
        barge_store_get(tx, ECS_KIND_SERVICE, svc_key, &svc, err) < 0)
        return -1;
    json_t *cfg = barge_json_object(policy, "StepScalingPolicyConfiguration");
    if (!policy || !cfg || !barge_streq(barge_json_str(policy, "PolicyARN", NULL), policy_arn) ||
        !target || !svc || !barge_streq(barge_json_str(svc, "status", NULL), "ACTIVE")) {
        barge_debug("alarm %s: no step scaling policy %s to run", alarm_name, policy_arn);
        return 0;
    }
    double now = barge_now();
    double last = json_number_value(json_object_get(policy, "_lastScaling"));
    json_int_t cur = barge_json_int(svc, "desiredCount", 0);
    /* Within the cooldown a scale-in waits. A scale-out counts what the one
     * that started the cooldown added (it adjusts from the capacity before
     * it, _cooldownBase) and goes ahead only when it asks for more. */
    bool cooling = now - last < (double)barge_json_int(cfg, "Cooldown", 300);
    json_t *base_v = json_object_get(policy, "_cooldownBase");
    if (cooling && !json_is_integer(base_v))
        return 0;
    json_int_t base = cooling ? json_integer_value(base_v) : cur;
    /* Without datapoints (an alarm set by SetAlarmState) the breach counts
     * as being at the threshold. */
    double value = threshold;
    barge_step_aggregate(values, barge_json_str(cfg, "MetricAggregationType", NULL), &value);
    long long want;
    if (!barge_step_capacity(cfg, value, threshold, below, (long long)base, &want)) {
        barge_debug("alarm %s: no step of %s covers %.2f", alarm_name, policy_arn, value);
        return 0;
    }
    if (cooling && want <= cur)
        return 0;
    json_int_t mn = barge_json_int(target, "MinCapacity", 0);
    json_int_t mx = barge_json_int(target, "MaxCapacity", 0);
    if (want < mn)
        want = mn;
    if (want > mx)
        want = mx;
    json_t *susp = barge_json_object(target, "SuspendedState");
    if ((want > cur && barge_json_bool(susp, "DynamicScalingOutSuspended", false)) ||
        (want < cur && barge_json_bool(susp, "DynamicScalingInSuspended", false)) || want == cur)
        return 0;
    _cleanup_free_ char *cause =
        barge_xasprintf("monitor alarm %s in state %s triggered policy %s", alarm_name, state,
                        barge_json_str(policy, "PolicyName", ""));
    json_object_set_new(policy, "_lastScaling", json_real(now));
    if (want > cur)
        json_object_set_new(policy, "_cooldownBase", json_integer(base));
    else
        json_object_del(policy, "_cooldownBase");
    if (barge_store_put(tx, AAS_KIND_POLICY, key, policy, err) < 0)
        return -1;
    return set_desired(srv, tx, rid, svc, svc_key, want, cause, err);
}

static int collect_key(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append_new(ud, json_string(key));
    return 0;
}

void barge_autoscale_step(struct barge_server *srv)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *keys = json_array();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, &err) < 0 ||
        barge_store_scan(tx, AAS_KIND_TARGET, "", NULL, false, 0, collect_key, keys, &err) < 0) {
        barge_warn("autoscaling: %s", err->message);
        return;
    }
    barge_store_abort(barge_steal(&tx));
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (target_pass(srv, json_string_value(k), &err) < 0) {
            barge_warn("autoscaling %s: %s", json_string_value(k), err->message);
            barge_error_free(barge_steal(&err));
        }
    }
}
