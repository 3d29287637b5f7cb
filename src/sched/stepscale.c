/* Step scaling and alarm comparison arithmetic (stepscale.h). */
#include "sched/stepscale.h"

#include <math.h>
#include <string.h>

#include "common/json.h"

bool barge_step_aggregate(const json_t *values, const char *aggregation, double *out)
{
    size_t n = json_array_size(values), i;
    if (!n)
        return false;
    json_t *v;
    double acc = 0;
    json_array_foreach((json_t *)values, i, v)
    {
        double d = json_number_value(v);
        if (barge_streq(aggregation, "Minimum"))
            acc = i == 0 ? d : fmin(acc, d);
        else if (barge_streq(aggregation, "Maximum"))
            acc = i == 0 ? d : fmax(acc, d);
        else
            acc += d;
    }
    *out = barge_streq(aggregation, "Minimum") || barge_streq(aggregation, "Maximum")
               ? acc
               : acc / (double)n;
    return true;
}

static bool step_covers(const json_t *step, double diff, bool below)
{
    json_t *lo = json_object_get(step, "MetricIntervalLowerBound");
    json_t *hi = json_object_get(step, "MetricIntervalUpperBound");
    double l = json_is_number(lo) ? json_number_value(lo) : -INFINITY;
    double h = json_is_number(hi) ? json_number_value(hi) : INFINITY;
    if (diff > 0 || (diff == 0 && !below))
        return l <= diff && diff < h;
    return l < diff && diff <= h;
}

bool barge_step_capacity(const json_t *config, double value, double threshold, bool below,
                         long long current, long long *out)
{
    double diff = value - threshold;
    const json_t *step = NULL;
    size_t i;
    json_t *s;
    json_array_foreach(barge_json_array(config, "StepAdjustments"), i, s)
    {
        if (step_covers(s, diff, below)) {
            step = s;
            break;
        }
    }
    if (!step)
        return false;
    long long adj = (long long)barge_json_int(step, "ScalingAdjustment", 0);
    const char *type = barge_json_str(config, "AdjustmentType", "ChangeInCapacity");
    long long want;
    if (barge_streq(type, "ExactCapacity")) {
        want = adj;
    } else if (barge_streq(type, "PercentChangeInCapacity")) {
        double d = (double)current * (double)adj / 100.0;
        long long delta = d > 0 && d < 1 ? 1 : d < 0 && d > -1 ? -1 : (long long)d;
        long long min_mag = (long long)barge_json_int(config, "MinAdjustmentMagnitude", 0);
        if (delta > 0 && delta < min_mag)
            delta = min_mag;
        else if (delta < 0 && -delta < min_mag)
            delta = -min_mag;
        want = current + delta;
    } else {
        want = current + adj;
    }
    *out = want < 0 ? 0 : want;
    return true;
}

bool barge_alarm_breaches(const char *op, double value, double threshold)
{
    if (barge_streq(op, "GreaterThanThreshold"))
        return value > threshold;
    if (barge_streq(op, "GreaterThanOrEqualToThreshold"))
        return value >= threshold;
    if (barge_streq(op, "LessThanThreshold"))
        return value < threshold;
    if (barge_streq(op, "LessThanOrEqualToThreshold"))
        return value <= threshold;
    return false;
}
