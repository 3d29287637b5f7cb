/* The part of CloudWatch an ECS user needs for step scaling: metric alarms
 * (PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms,
 * SetAlarmState) and the AWS/ECS service and cluster metrics that barged
 * derives from its agents' samples (GetMetricStatistics, ListMetrics). It is
 * served over the query protocol (query.c), JSON 1.0 (json11.c) and Smithy
 * RPC v2 CBOR (cbor.c), whichever the client's SDK prefers; the alarms are
 * evaluated, and
 * their Application Auto Scaling actions run, by src/control/alarms.c. */
#include "api/cloudwatch.h"

#include <math.h>
#include <string.h>

#include "api/api.h"
#include "api/ecs.h"
#include "api/metrics.h"
#include "api/server.h"
#include "common/arn.h"
#include "common/ids.h"
#include "common/json.h"

#define MAX_ACTIONS      5
#define MAX_DATAPOINTS   1440
#define MAX_EVAL_SECONDS 86400

static int fail(struct barge_error **err, const char *type, const char *fmt, ...)
    BARGE_PRINTF(3, 4);
static int fail(struct barge_error **err, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, type, "%s", msg);
}

/* CloudWatch's periods: 10, 30 or a multiple of 60 seconds. */
static bool period_ok(json_int_t p)
{
    return p == 10 || p == 30 || (p >= 60 && p % 60 == 0);
}

static const char *const supported_operators[] = {
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
};

static const char *const missing_data[] = {"breaching", "notBreaching", "ignore", "missing"};

static bool one_of(const char *v, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (barge_streq(v, set[i]))
            return true;
    return false;
}

/* An action must be an ARN of the alarm's own region, as CloudWatch refuses
 * (with the wording below) an SNS topic or a scaling policy of another. */
static int check_actions(const json_t *in, const char *field, const char *region,
                         struct barge_error **err)
{
    json_t *list = barge_json_array(in, field);
    if (json_array_size(list) > MAX_ACTIONS)
        return fail(err, "LimitExceeded", "The maximum number of %s is %d.", field, MAX_ACTIONS);
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *action = json_string_value(a);
        struct barge_arn arn;
        if (!barge_str_has_prefix(action, "arn:") || barge_arn_parse(action, &arn) < 0)
            return fail(err, "ValidationError", "Invalid arn syntax: %s", action);
        bool other = *arn.region && strcmp(arn.region, region) != 0;
        _cleanup_free_ char *named = barge_xstrdup(arn.region);
        barge_arn_release(&arn);
        if (other)
            return fail(err, "ValidationError",
                        "Invalid region %s specified. Only %s is supported. (%s: '%s')", named,
                        region, field, action);
    }
    return 0;
}

static int check_alarm(const json_t *in, const char *region, struct barge_error **err)
{
    if (json_object_get(in, "Metrics"))
        return fail(err, "InvalidParameterValue",
                    "Metric math alarms (Metrics) are not supported by barge: alarm on one "
                    "metric with MetricName and Namespace.");
    const char *const need[] = {"MetricName",        "Namespace", "Period",
                                "EvaluationPeriods", "Threshold", "ComparisonOperator"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(need); i++)
        if (!json_object_get(in, need[i]))
            return fail(err, "MissingParameter", "The parameter %s is required.", need[i]);
    if (json_object_get(in, "ExtendedStatistic"))
        return fail(err, "InvalidParameterValue",
                    "Percentile statistics (ExtendedStatistic) are not supported by barge: "
                    "use Statistic.");
    if (!json_object_get(in, "Statistic"))
        return fail(err, "MissingParameter",
                    "Exactly one of the parameters Statistic or ExtendedStatistic is required.");
    json_int_t period = barge_json_int(in, "Period", 0);
    if (!period_ok(period))
        return fail(err, "InvalidParameterValue",
                    "The parameter Period must be 10, 30 or a multiple of 60; '%lld' was given.",
                    (long long)period);
    json_int_t eval = barge_json_int(in, "EvaluationPeriods", 0);
    json_int_t dta = barge_json_int(in, "DatapointsToAlarm", eval);
    if (dta < 1 || dta > eval)
        return fail(err, "ValidationError",
                    "DatapointsToAlarm must be at least 1 and not more than EvaluationPeriods "
                    "(%lld); '%lld' was given.",
                    (long long)eval, (long long)dta);
    if (eval * period > MAX_EVAL_SECONDS)
        return fail(err, "ValidationError",
                    "Metrics cannot be checked across more than a day (EvaluationPeriods * Period "
                    "must be <= %d).",
                    MAX_EVAL_SECONDS);
    const char *op = barge_json_str(in, "ComparisonOperator", "");
    if (!one_of(op, supported_operators, BARGE_ARRAY_SIZE(supported_operators)))
        return fail(err, "InvalidParameterValue",
                    "Anomaly detection operators such as '%s' are not supported by barge.", op);
    const char *tmd = barge_json_str(in, "TreatMissingData", "missing");
    if (!one_of(tmd, missing_data, BARGE_ARRAY_SIZE(missing_data)))
        return fail(err, "ValidationError",
                    "Invalid value '%s' for TreatMissingData: use breaching, notBreaching, "
                    "ignore or missing.",
                    tmd);
    if (check_actions(in, "AlarmActions", region, err) < 0 ||
        check_actions(in, "OKActions", region, err) < 0 ||
        check_actions(in, "InsufficientDataActions", region, err) < 0)
        return -1;
    return 0;
}

static int put_metric_alarm(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    if (check_alarm(in, barge_server_region(ctx->srv), err) < 0)
        return -1;
    const char *name = barge_json_str(in, "AlarmName", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *old = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, CW_KIND_ALARM, name, &old, err) < 0)
        return -1;
    double now = barge_now();
    _cleanup_free_ char *res = barge_xasprintf("alarm:%s", name);
    _cleanup_free_ char *arn =
        barge_arn_make("cloudwatch", barge_server_region(ctx->srv), ctx->srv->cfg.account_id, res);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:f, s:b, s:[], s:[], s:[], s:[]}", "AlarmName", name, "AlarmArn",
                  arn, "AlarmConfigurationUpdatedTimestamp", now, "ActionsEnabled",
                  barge_json_bool(in, "ActionsEnabled", true), "OKActions", "AlarmActions",
                  "InsufficientDataActions", "Dimensions");
    const char *const copied[] = {"AlarmDescription",
                                  "OKActions",
                                  "AlarmActions",
                                  "InsufficientDataActions",
                                  "MetricName",
                                  "Namespace",
                                  "Statistic",
                                  "Dimensions",
                                  "Period",
                                  "Unit",
                                  "EvaluationPeriods",
                                  "DatapointsToAlarm",
                                  "Threshold",
                                  "ComparisonOperator",
                                  "TreatMissingData"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copied); i++) {
        json_t *v = json_object_get(in, copied[i]);
        if (v)
            json_object_set(doc, copied[i], v);
    }
    json_object_set_new(doc, "Threshold",
                        json_real(json_number_value(json_object_get(in, "Threshold"))));
    if (!json_object_get(doc, "TreatMissingData"))
        json_object_set_new(doc, "TreatMissingData", json_string("missing"));
    if (old) {
        /* An update keeps the state; the next evaluation revisits it. */
        const char *const kept[] = {"StateValue", "StateReason", "StateReasonData",
                                    "StateUpdatedTimestamp", "StateTransitionedTimestamp"};
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(kept); i++) {
            json_t *v = json_object_get(old, kept[i]);
            if (v)
                json_object_set(doc, kept[i], v);
        }
    } else {
        json_object_set_new(doc, "StateValue", json_string("INSUFFICIENT_DATA"));
        json_object_set_new(doc, "StateReason", json_string("Unchecked: Initial alarm creation"));
        json_object_set_new(doc, "StateUpdatedTimestamp", json_real(now));
        json_object_set_new(doc, "StateTransitionedTimestamp", json_real(now));
    }
    if (barge_store_put(tx, CW_KIND_ALARM, name, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_object();
    return 0;
}

/* The wire form of a stored alarm: without the evaluator's bookkeeping. */
static json_t *public_alarm(const json_t *doc)
{
    json_t *a = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        if (k[0] != '_')
            json_object_set(a, k, v);
    }
    return a;
}

struct alarm_list {
    json_t *items; /* [{key, doc}] */
};

static int collect_alarm(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append_new(((struct alarm_list *)ud)->items,
                          json_pack("{s:s, s:O}", "key", key, "doc", doc));
    return 0;
}

static int load_alarms(struct barge_server *srv, const char *prefix, const char *after,
                       json_t **items, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    *items = json_array();
    struct alarm_list l = {*items};
    if (barge_store_begin(srv->store, false, &tx, err) < 0)
        return -1;
    return barge_store_scan(tx, CW_KIND_ALARM, prefix ? prefix : "", after, false, 0, collect_alarm,
                            &l, err);
}

static bool name_listed(const json_t *names, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach((json_t *)names, i, n)
    {
        if (barge_streq(json_string_value(n), name))
            return true;
    }
    return false;
}

static bool has_action_prefix(const json_t *doc, const char *prefix)
{
    const char *const lists[] = {"AlarmActions", "OKActions", "InsufficientDataActions"};
    for (size_t l = 0; l < BARGE_ARRAY_SIZE(lists); l++) {
        size_t i;
        json_t *a;
        json_array_foreach(barge_json_array(doc, lists[l]), i, a)
        {
            if (barge_str_has_prefix(json_string_value(a), prefix))
                return true;
        }
    }
    return false;
}

static int describe_alarms(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    json_t *names = barge_json_array(in, "AlarmNames");
    const char *prefix = barge_json_str(in, "AlarmNamePrefix", NULL);
    const char *state = barge_json_str(in, "StateValue", NULL);
    const char *action = barge_json_str(in, "ActionPrefix", NULL);
    if (names && prefix)
        return fail(err, "InvalidParameterCombination",
                    "AlarmNamePrefix and AlarmNames cannot be specified together.");
    int max;
    _cleanup_free_ char *after = NULL;
    if (barge_api_max_results(in, "MaxRecords", 50, 100, &max, err) < 0)
        return -1;
    _cleanup_error_ struct barge_error *token_err = NULL;
    if (barge_api_token_decode(barge_json_str(in, "NextToken", NULL), &after, &token_err) < 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidNextToken",
                                    "The service returned an invalid next token.");
    bool metric_alarms = !json_object_get(in, "AlarmTypes") ||
                         name_listed(barge_json_array(in, "AlarmTypes"), "MetricAlarm");
    _cleanup_json_ json_t *items = NULL;
    if (load_alarms(ctx->srv, prefix, after, &items, err) < 0)
        return -1;
    json_t *list = json_array();
    *out = json_pack("{s:o, s:[]}", "MetricAlarms", list, "CompositeAlarms");
    size_t i;
    json_t *it;
    const char *last = NULL;
    json_array_foreach(metric_alarms ? items : NULL, i, it)
    {
        json_t *doc = json_object_get(it, "doc");
        const char *name = barge_json_str(doc, "AlarmName", "");
        if ((names && !name_listed(names, name)) ||
            (state && !barge_streq(state, barge_json_str(doc, "StateValue", NULL))) ||
            (action && !has_action_prefix(doc, action)))
            continue;
        if ((int)json_array_size(list) == max) {
            char *tok = barge_api_token_encode(last);
            json_object_set_new(*out, "NextToken", json_string(tok));
            free(tok);
            break;
        }
        json_array_append_new(list, public_alarm(doc));
        last = barge_json_str(it, "key", NULL);
    }
    return 0;
}

static bool same_dimensions(const json_t *a, const json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return false;
    size_t i, j;
    json_t *x, *y;
    json_array_foreach((json_t *)a, i, x)
    {
        bool found = false;
        json_array_foreach((json_t *)b, j, y)
        {
            found = found ||
                    (barge_streq(barge_json_str(x, "Name", ""), barge_json_str(y, "Name", "")) &&
                     barge_streq(barge_json_str(x, "Value", ""), barge_json_str(y, "Value", "")));
        }
        if (!found)
            return false;
    }
    return true;
}

static int describe_alarms_for_metric(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                      struct barge_error **err)
{
    _cleanup_json_ json_t *items = NULL;
    if (load_alarms(ctx->srv, NULL, NULL, &items, err) < 0)
        return -1;
    json_t *list = json_array();
    *out = json_pack("{s:o}", "MetricAlarms", list);
    const char *const match[] = {"MetricName", "Namespace", "Statistic", "Unit"};
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *doc = json_object_get(it, "doc");
        bool ok = true;
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(match) && ok; k++) {
            const char *want = barge_json_str(in, match[k], NULL);
            ok = !want || barge_streq(want, barge_json_str(doc, match[k], NULL));
        }
        json_t *period = json_object_get(in, "Period");
        if (period && json_integer_value(period) != barge_json_int(doc, "Period", 0))
            ok = false;
        if (json_object_get(in, "Dimensions") &&
            !same_dimensions(barge_json_array(in, "Dimensions"),
                             barge_json_array(doc, "Dimensions")))
            ok = false;
        if (ok)
            json_array_append_new(list, public_alarm(doc));
    }
    return 0;
}

static int delete_alarms(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    json_t *names = barge_json_array(in, "AlarmNames");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_get(tx, CW_KIND_ALARM, json_string_value(n), &doc, err) < 0)
            return -1;
        if (!doc)
            return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFound",
                                        "1 alarm(s) not found: %s", json_string_value(n));
        if (barge_store_del(tx, CW_KIND_ALARM, json_string_value(n), err) < 0)
            return -1;
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int set_alarm_state(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    const char *name = barge_json_str(in, "AlarmName", "");
    const char *state = barge_json_str(in, "StateValue", "");
    const char *data = barge_json_str(in, "StateReasonData", NULL);
    _cleanup_json_ json_t *parsed = data ? json_loads(data, 0, NULL) : NULL;
    if (data && !json_is_object(parsed))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidFormat",
                                    "StateReasonData must be a JSON object; '%s' is not.", data);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, CW_KIND_ALARM, name, &doc, err) < 0)
        return -1;
    if (!doc)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFound",
                                    "Alarm %s not found", name);
    double now = barge_now();
    bool changed = !barge_streq(barge_json_str(doc, "StateValue", NULL), state);
    json_object_set_new(doc, "StateValue", json_string(state));
    json_object_set(doc, "StateReason", json_object_get(in, "StateReason"));
    if (data)
        json_object_set_new(doc, "StateReasonData", json_string(data));
    else
        json_object_del(doc, "StateReasonData");
    json_object_set_new(doc, "StateUpdatedTimestamp", json_real(now));
    if (changed) {
        json_object_set_new(doc, "StateTransitionedTimestamp", json_real(now));
        /* The evaluator runs the new state's actions, as CloudWatch does
         * when SetAlarmState changes the state. */
        json_object_set_new(doc, "_actionsDue", json_true());
    }
    /* The state set here holds until the next regular evaluation. */
    json_object_set_new(doc, "_nextEval",
                        json_real(now + (double)barge_json_int(doc, "Period", 60)));
    if (barge_store_put(tx, CW_KIND_ALARM, name, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_object();
    return 0;
}

/* The ClusterName and ServiceName of an AWS/ECS dimension list; false when
 * it has any other dimension or no ClusterName. */
static bool ecs_dimensions(const json_t *dims, const char **cluster, const char **service)
{
    *cluster = *service = NULL;
    size_t i;
    json_t *d;
    json_array_foreach((json_t *)dims, i, d)
    {
        const char *n = barge_json_str(d, "Name", ""), *v = barge_json_str(d, "Value", NULL);
        if (barge_streq(n, "ClusterName"))
            *cluster = v;
        else if (barge_streq(n, "ServiceName"))
            *service = v;
        else
            return false;
    }
    return *cluster != NULL;
}

int barge_cloudwatch_datapoints(struct barge_server *srv, const json_t *query, double start,
                                double end, int period, json_t **out, struct barge_error **err)
{
    const char *cluster, *service;
    if (!barge_streq(barge_json_str(query, "Namespace", NULL), CW_NAMESPACE) ||
        !ecs_dimensions(barge_json_array(query, "Dimensions"), &cluster, &service)) {
        *out = json_array();
        return 0;
    }
    return barge_metrics_ecs_datapoints(srv, barge_json_str(query, "MetricName", ""), cluster,
                                        service, start, end, period, out, err);
}

static int get_metric_statistics(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    double start = json_number_value(json_object_get(in, "StartTime"));
    double end = json_number_value(json_object_get(in, "EndTime"));
    json_int_t period = barge_json_int(in, "Period", 0);
    json_t *stats = barge_json_array(in, "Statistics");
    if (json_object_get(in, "ExtendedStatistics"))
        return fail(err, "InvalidParameterValue",
                    "Percentile statistics (ExtendedStatistics) are not supported by barge.");
    if (!json_array_size(stats))
        return fail(err, "MissingParameter",
                    "Must specify either Statistics or ExtendedStatistics.");
    if (start >= end)
        return fail(err, "InvalidParameterValue",
                    "The parameter StartTime must be less than the parameter EndTime.");
    if (!(period == 1 || period == 5 || period_ok(period)))
        return fail(err, "InvalidParameterValue",
                    "The parameter Period must be 1, 5, 10, 30 or a multiple of 60; '%lld' was "
                    "given.",
                    (long long)period);
    double n = ceil((end - start) / (double)period);
    if (n > MAX_DATAPOINTS)
        return fail(err, "InvalidParameterCombination",
                    "You have requested up to %.0f datapoints, which exceeds the limit of %d. You "
                    "may reduce the datapoints requested by increasing Period, or decreasing the "
                    "time range.",
                    n, MAX_DATAPOINTS);
    _cleanup_json_ json_t *points = NULL;
    if (barge_cloudwatch_datapoints(ctx->srv, in, start, end, (int)period, &points, err) < 0)
        return -1;
    json_t *list = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(points, i, p)
    {
        json_t *dp = json_pack("{s:O, s:O}", "Timestamp", json_object_get(p, "Timestamp"), "Unit",
                               json_object_get(p, "Unit"));
        size_t k;
        json_t *s;
        json_array_foreach(stats, k, s)
        {
            json_object_set(dp, json_string_value(s), json_object_get(p, json_string_value(s)));
        }
        json_array_append_new(list, dp);
    }
    *out =
        json_pack("{s:s, s:o}", "Label", barge_json_str(in, "MetricName", ""), "Datapoints", list);
    return 0;
}

struct metric_scan {
    json_t *metrics;
    const json_t *in;
};

static bool dimensions_match(const json_t *filters, const json_t *dims)
{
    size_t i, j;
    json_t *f, *d;
    json_array_foreach((json_t *)filters, i, f)
    {
        bool found = false;
        json_array_foreach((json_t *)dims, j, d)
        {
            const char *v = barge_json_str(f, "Value", NULL);
            found = found ||
                    (barge_streq(barge_json_str(f, "Name", ""), barge_json_str(d, "Name", "")) &&
                     (!v || barge_streq(v, barge_json_str(d, "Value", ""))));
        }
        if (!found)
            return false;
    }
    return true;
}

static void add_metrics(struct metric_scan *m, json_t *dims)
{
    const char *const names[] = {"CPUUtilization", "MemoryUtilization"};
    const char *want = barge_json_str(m->in, "MetricName", NULL);
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(names); i++) {
        if ((want && !barge_streq(want, names[i])) ||
            !dimensions_match(barge_json_array(m->in, "Dimensions"), dims))
            continue;
        json_array_append_new(m->metrics, json_pack("{s:s, s:s, s:O}", "Namespace", CW_NAMESPACE,
                                                    "MetricName", names[i], "Dimensions", dims));
    }
    json_decref(dims);
}

static int list_service(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (!barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE"))
        return 0;
    const char *slash = strchr(key, '/');
    if (!slash)
        return 0;
    add_metrics(ud, json_pack("[{s:s, s:s%}, {s:s, s:s}]", "Name", "ClusterName", "Value", key,
                              (size_t)(slash - key), "Name", "ServiceName", "Value", slash + 1));
    return 0;
}

static int list_cluster(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE"))
        add_metrics(ud, json_pack("[{s:s, s:s}]", "Name", "ClusterName", "Value", key));
    return 0;
}

static int list_metrics(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    json_t *metrics = json_array();
    *out = json_pack("{s:o}", "Metrics", metrics);
    const char *ns = barge_json_str(in, "Namespace", NULL);
    if (ns && !barge_streq(ns, CW_NAMESPACE))
        return 0;
    struct metric_scan m = {metrics, in};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_CLUSTER, "", NULL, false, 0, list_cluster, &m, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_SERVICE, "", NULL, false, 0, list_service, &m, err) < 0)
        return -1;
    return 0;
}

static const struct barge_api_op cloudwatch_ops[] = {
    {"PutMetricAlarm", put_metric_alarm},
    {"DescribeAlarms", describe_alarms},
    {"DescribeAlarmsForMetric", describe_alarms_for_metric},
    {"DeleteAlarms", delete_alarms},
    {"SetAlarmState", set_alarm_state},
    {"GetMetricStatistics", get_metric_statistics},
    {"ListMetrics", list_metrics},
    {NULL, NULL},
};

static const struct barge_api_op *const cloudwatch_op_tables[] = {cloudwatch_ops, NULL};

const struct barge_api_service barge_api_cloudwatch = {
    .model = "cloudwatch",
    .message_key = "message",
    .invalid_type = "ValidationError",
    .client_type = "InvalidParameterValue",
    .server_type = "InternalServiceError",
    .not_found_type = "ResourceNotFound",
    .query_compatible = true,
    .op_tables = cloudwatch_op_tables,
};
