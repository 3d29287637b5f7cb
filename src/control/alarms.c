/* The CloudWatch alarm evaluator. Each metric alarm is evaluated once per
 * period (at least once a minute) on its last EvaluationPeriods periods of
 * the metric, ending now: a period's datapoint is its Statistic, a period
 * without samples is missing and counts as TreatMissingData says, and the
 * alarm is in ALARM when DatapointsToAlarm of them breach the threshold.
 * State, StateReason and StateReasonData are worded as CloudWatch words them
 * and change only with the state.
 * When the state changes (here, or by SetAlarmState) the new state's actions
 * run; while an alarm stays in a state its actions run again at every
 * evaluation, as CloudWatch re-invokes Auto Scaling actions, and the policy's
 * cooldown decides whether that scales again. The only actions barged can
 * run are Application Auto Scaling step scaling policies; other ARNs (SNS
 * topics, EC2 actions) are kept but do nothing. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/isotime.h"
#include "common/json.h"
#include "common/log.h"
#include "control/control.h"
#include "sched/stepscale.h"
#include "svc/cloudwatch.h"

static barge_alarms_datapoints_fn datapoint_source;

void barge_alarms_set_datapoint_source(barge_alarms_datapoints_fn fn)
{
    datapoint_source = fn;
}

/* The datapoints of alarm's metric from the registered source (none
 * without one). */
static int datapoints(struct barge_server *srv, const json_t *alarm, double start, double end,
                      int period, json_t **out, struct barge_error **err)
{
    if (!datapoint_source) {
        *out = json_array();
        return 0;
    }
    return datapoint_source(srv, alarm, start, end, period, out, err);
}

static int collect_name(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append_new(ud, json_string(key));
    return 0;
}

/* "29/11/26 03:40:00", as CloudWatch dates datapoints in a StateReason. */
static void reason_date(double t, char out[32])
{
    time_t secs = (time_t)t;
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%d/%m/%y %H:%M:%S", &tm);
}

/* A number as CloudWatch (Java) prints it in a StateReason: "50.0", "72.5". */
static void reason_number(double d, char out[32])
{
    if (d == floor(d) && fabs(d) < 1e15)
        snprintf(out, 32, "%.1f", d);
    else
        snprintf(out, 32, "%.15g", d);
}

static const char *operator_words(const char *op)
{
    if (barge_streq(op, "GreaterThanOrEqualToThreshold"))
        return "greater than or equal to";
    if (barge_streq(op, "LessThanThreshold"))
        return "less than";
    if (barge_streq(op, "LessThanOrEqualToThreshold"))
        return "less than or equal to";
    return "greater than";
}

struct verdict {
    const char *state; /* NULL: keep the current one */
    char *reason;
    json_t *reason_data;
    json_t *breaching; /* values of the breaching datapoints, for step policies */
    json_t *calm;      /* and of the others */
};

static void verdict_release(struct verdict *v)
{
    free(v->reason);
    json_decref(v->reason_data);
    json_decref(v->breaching);
    json_decref(v->calm);
}

/* Evaluates alarm on points (the datapoint source's of its last
 * EvaluationPeriods periods from start). */
static void evaluate(const json_t *alarm, const json_t *points, double start, double now,
                     struct verdict *v)
{
    int period = (int)barge_json_int(alarm, "Period", 60);
    int m = (int)barge_json_int(alarm, "EvaluationPeriods", 1);
    int n = (int)barge_json_int(alarm, "DatapointsToAlarm", m);
    const char *stat = barge_json_str(alarm, "Statistic", "Average");
    const char *op = barge_json_str(alarm, "ComparisonOperator", "");
    const char *missing = barge_json_str(alarm, "TreatMissingData", "missing");
    double threshold = json_number_value(json_object_get(alarm, "Threshold"));

    /* Newest first, as CloudWatch lists them. */
    _cleanup_json_ json_t *present = json_array();
    for (size_t i = json_array_size(points); i-- > 0;) {
        json_t *p = json_array_get(points, i);
        if (json_is_number(json_object_get(p, "Timestamp")) &&
            json_is_number(json_object_get(p, stat)))
            json_array_append(present, p);
    }
    int have = (int)json_array_size(present), breaching = 0;
    v->breaching = json_array();
    v->calm = json_array();
    _cleanup_json_ json_t *recent = json_array(), *evaluated = json_array();
    char *list = barge_xstrdup("");
    size_t i;
    json_t *p;
    json_array_foreach(present, i, p)
    {
        double val = json_number_value(json_object_get(p, stat));
        double ts = json_number_value(json_object_get(p, "Timestamp"));
        if (barge_alarm_breaches(op, val, threshold)) {
            breaching++;
            json_array_append_new(v->breaching, json_real(val));
        } else {
            json_array_append_new(v->calm, json_real(val));
        }
        char when[32], iso[BARGE_ISOTIME_MAX], num[32];
        reason_date(ts, when);
        barge_isotime_format(ts, 3, "+0000", iso);
        reason_number(val, num);
        char *grown = barge_xasprintf("%s%s%s (%s)", list, i ? ", " : "", num, when);
        free(list);
        list = grown;
        json_array_append_new(recent, json_real(val));
        json_array_append_new(evaluated,
                              json_pack("{s:s, s:O, s:f}", "timestamp", iso, "sampleCount",
                                        json_object_get(p, "SampleCount"), "value", val));
    }
    int unknown = m - have;
    char qdate[BARGE_ISOTIME_MAX], sdate[BARGE_ISOTIME_MAX];
    barge_isotime_format(now, 3, "+0000", qdate);
    barge_isotime_format(start, 3, "+0000", sdate);
    v->reason_data =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:O, s:f, s:O}", "version", "1.0", "queryDate", qdate,
                  "startDate", sdate, "statistic", stat, "period", period, "recentDatapoints",
                  recent, "threshold", threshold, "evaluatedDatapoints", evaluated);
    const char *words = operator_words(op);
    char limit[32];
    reason_number(threshold, limit);
    if (have == 0) {
        if (barge_streq(missing, "ignore")) {
            v->state = NULL;
        } else if (barge_streq(missing, "missing")) {
            v->state = "INSUFFICIENT_DATA";
            v->reason = barge_xasprintf("Insufficient Data: %d datapoint%s unknown.", m,
                                        m == 1 ? " was" : "s were");
        } else {
            bool b = barge_streq(missing, "breaching");
            v->state = b ? "ALARM" : "OK";
            v->reason = barge_xasprintf(
                "Threshold Crossed: no datapoints were received for %d period%s and %d missing "
                "datapoint%s treated as [%s].",
                m, m == 1 ? "" : "s", m, m == 1 ? " was" : "s were",
                b ? "Breaching" : "NonBreaching");
        }
        free(list);
        return;
    }
    if (barge_streq(missing, "breaching"))
        breaching += unknown;
    bool alarm_now = breaching >= n;
    v->state = alarm_now ? "ALARM" : "OK";
    const char *from = alarm_now ? "OK -> ALARM" : "ALARM -> OK";
    if (m == 1)
        v->reason = barge_xasprintf("Threshold Crossed: 1 datapoint [%s] was %s%s the threshold "
                                    "(%s).",
                                    list, alarm_now ? "" : "not ", words, limit);
    else
        v->reason = barge_xasprintf(
            "Threshold Crossed: %d out of the last %d datapoints [%s] %s %s%s the threshold (%s) "
            "(minimum %d datapoint%s for %s transition).",
            alarm_now ? breaching : have - breaching, m, list,
            (alarm_now ? breaching : have - breaching) == 1 ? "was" : "were",
            alarm_now ? "" : "not ", words, limit, alarm_now ? n : m - n + 1,
            (alarm_now ? n : m - n + 1) == 1 ? "" : "s", from);
    free(list);
}

static const char *actions_for(const char *state)
{
    if (barge_streq(state, "ALARM"))
        return "AlarmActions";
    if (barge_streq(state, "OK"))
        return "OKActions";
    return "InsufficientDataActions";
}

/* Runs the Application Auto Scaling policies among the actions of the
 * alarm's state, with values, the datapoints that put it there. */
static int run_actions(struct barge_server *srv, struct barge_tx *tx, const json_t *alarm,
                       const json_t *values, struct barge_error **err)
{
    const char *state = barge_json_str(alarm, "StateValue", "");
    if (!barge_json_bool(alarm, "ActionsEnabled", true))
        return 0;
    double threshold = json_number_value(json_object_get(alarm, "Threshold"));
    /* The side of the threshold the state is on: an alarm on LessThan
     * breaches below it, and is OK above it. */
    bool below = barge_str_has_prefix(barge_json_str(alarm, "ComparisonOperator", ""), "LessThan");
    if (!barge_streq(state, "ALARM"))
        below = !below;
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(alarm, actions_for(state)), i, a)
    {
        const char *arn = json_string_value(a);
        if (!barge_str_has_prefix(arn, "arn:aws:autoscaling:"))
            continue;
        if (barge_autoscale_run_step_policy(srv, tx, arn, barge_json_str(alarm, "AlarmName", ""),
                                            state, values, threshold, below, err) < 0)
            return -1;
    }
    return 0;
}

/* The values a SetAlarmState's StateReasonData names (recentDatapoints). */
static json_t *reported_values(const json_t *alarm)
{
    _cleanup_json_ json_t *data =
        json_loads(barge_json_str(alarm, "StateReasonData", "{}"), 0, NULL);
    json_t *recent = barge_json_array(data, "recentDatapoints");
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(recent, i, v)
    {
        if (json_is_number(v))
            json_array_append(out, v);
    }
    return out;
}

static int alarm_pass(struct barge_server *srv, const char *name, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *alarm = NULL, *points = NULL, *values = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_get(tx, CW_KIND_ALARM, name, &alarm, err) < 0)
        return -1;
    barge_store_abort(barge_steal(&tx));
    if (!alarm)
        return 0;
    double now = barge_now();
    bool due = now >= json_number_value(json_object_get(alarm, "_nextEval"));
    bool actions_due = barge_json_bool(alarm, "_actionsDue", false);
    if (!due && !actions_due)
        return 0;
    int period = (int)barge_json_int(alarm, "Period", 60);
    double start = now - (double)period * (double)barge_json_int(alarm, "EvaluationPeriods", 1);
    struct verdict v = {0};
    if (due) {
        if (datapoints(srv, alarm, start, now, period, &points, err) < 0)
            return -1;
        evaluate(alarm, points, start, now, &v);
    }

    /* Apply to the alarm as it is now: an API call may have changed it. */
    json_decref(barge_steal(&alarm));
    int r = barge_store_begin(srv->store, true, &tx, err);
    if (r == 0)
        r = barge_store_get(tx, CW_KIND_ALARM, name, &alarm, err);
    if (r < 0 || !alarm)
        goto out;
    /* A SetAlarmState between the read and now pushed the next evaluation
     * out: its state holds, and this evaluation's verdict is stale. */
    if (due && now < json_number_value(json_object_get(alarm, "_nextEval")))
        due = false;
    bool run = barge_json_bool(alarm, "_actionsDue", false);
    values = run ? reported_values(alarm) : NULL;
    json_object_del(alarm, "_actionsDue");
    if (due) {
        json_object_set_new(alarm, "_nextEval", json_real(now + (period < 60 ? period : 60)));
        const char *old = barge_json_str(alarm, "StateValue", "");
        /* As in CloudWatch, the reason is the one of the last transition. */
        if (v.state && !barge_streq(old, v.state)) {
            barge_info("alarm %s: %s -> %s: %s", name, old, v.state, v.reason);
            json_object_set_new(alarm, "StateValue", json_string(v.state));
            json_object_set_new(alarm, "StateTransitionedTimestamp", json_real(now));
            json_object_set_new(alarm, "StateReason", json_string(v.reason));
            char *data = barge_json_dump(v.reason_data);
            json_object_set_new(alarm, "StateReasonData", json_string(data));
            free(data);
            json_object_set_new(alarm, "StateUpdatedTimestamp", json_real(now));
            run = true;
        }
        /* CloudWatch invokes Auto Scaling actions again at every evaluation
         * while the alarm stays in their state. */
        run = true;
        json_decref(values);
        const char *state = barge_json_str(alarm, "StateValue", "");
        values = json_incref(barge_streq(state, "ALARM") ? v.breaching
                             : barge_streq(state, "OK")  ? v.calm
                                                         : NULL);
    }
    if (run && (r = run_actions(srv, tx, alarm, values, err)) < 0)
        goto out;
    r = barge_store_put(tx, CW_KIND_ALARM, name, alarm, err);
    if (r == 0)
        r = barge_store_commit(barge_steal(&tx), err);
out:
    verdict_release(&v);
    return r;
}

void barge_alarms_step(struct barge_server *srv)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *names = json_array();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, &err) < 0 ||
        barge_store_scan(tx, CW_KIND_ALARM, "", NULL, false, 0, collect_name, names, &err) < 0) {
        barge_warn("alarms: %s", err->message);
        return;
    }
    barge_store_abort(barge_steal(&tx));
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (alarm_pass(srv, json_string_value(n), &err) < 0) {
            barge_warn("alarm %s: %s", json_string_value(n), err->message);
            barge_error_free(barge_steal(&err));
        }
    }
}
