/* Unit tests of step scaling arithmetic (src/sched/stepscale.c): which step
 * a metric value falls in (bounds relative to the threshold, inclusive on the
 * side away from it), each AdjustmentType with its rounding and
 * MinAdjustmentMagnitude, metric aggregation, and alarm comparison. */
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "sched/stepscale.h"

static long long capacity(const char *config, double value, double threshold, bool below,
                          long long current)
{
    json_t *cfg = json_loads(config, 0, NULL);
    assert_non_null(cfg);
    long long out = -1;
    if (!barge_step_capacity(cfg, value, threshold, below, current, &out))
        out = -1;
    json_decref(cfg);
    return out;
}

/* Out: +1 for 0..10 above the threshold, +3 from 10 on. In: -1 for 0..-20
 * below, -2 further down. */
static const char *const steps =
    "{\"AdjustmentType\": \"ChangeInCapacity\", \"StepAdjustments\": ["
    " {\"MetricIntervalLowerBound\": 0, \"MetricIntervalUpperBound\": 10, \"ScalingAdjustment\": 1},"
    " {\"MetricIntervalLowerBound\": 10, \"ScalingAdjustment\": 3},"
    " {\"MetricIntervalLowerBound\": -20, \"MetricIntervalUpperBound\": 0, \"ScalingAdjustment\": -1},"
    " {\"MetricIntervalUpperBound\": -20, \"ScalingAdjustment\": -2}]}";

static void test_steps(void **state)
{
    assert_int_equal(capacity(steps, 55, 50, false, 4), 5);
    assert_int_equal(capacity(steps, 50, 50, false, 4), 5);  /* lower bound inclusive above */
    assert_int_equal(capacity(steps, 60, 50, false, 4), 7);  /* upper bound exclusive above */
    assert_int_equal(capacity(steps, 500, 50, false, 4), 7); /* no upper bound */
    assert_int_equal(capacity(steps, 40, 50, true, 4), 3);
    assert_int_equal(capacity(steps, 50, 50, true, 4), 3); /* at the threshold, breaching down */
    assert_int_equal(capacity(steps, 31, 50, true, 4), 3);
    assert_int_equal(capacity(steps, 30, 50, true, 4), 2); /* -20: upper bound inclusive below */
    assert_int_equal(capacity(steps, 29, 50, true, 4), 2);
    assert_int_equal(capacity(steps, -99, 50, true, 1), 0); /* never negative */
    assert_int_equal(capacity("{\"StepAdjustments\": [{\"MetricIntervalLowerBound\": 5,"
                              " \"ScalingAdjustment\": 1}]}",
                              52, 50, false, 2),
                     -1); /* no step covers the value */
}

static void test_adjustment_types(void **state)
{
    const char *exact = "{\"AdjustmentType\": \"ExactCapacity\", \"StepAdjustments\": ["
                        " {\"MetricIntervalLowerBound\": 0, \"ScalingAdjustment\": 6}]}";
    assert_int_equal(capacity(exact, 90, 50, false, 2), 6);
    const char *pct = "{\"AdjustmentType\": \"PercentChangeInCapacity\", \"StepAdjustments\": ["
                      " {\"MetricIntervalLowerBound\": 0, \"ScalingAdjustment\": 50},"
                      " {\"MetricIntervalUpperBound\": 0, \"ScalingAdjustment\": -30}]}";
    assert_int_equal(capacity(pct, 90, 50, false, 10), 15);
    assert_int_equal(capacity(pct, 90, 50, false, 3), 4); /* +1.5 truncated to +1 */
    assert_int_equal(capacity(pct, 90, 50, false, 1), 2); /* +0.5 becomes +1 */
    assert_int_equal(capacity(pct, 10, 50, true, 10), 7); /* -3 */
    assert_int_equal(capacity(pct, 10, 50, true, 2), 1);  /* -0.6 becomes -1 */
    assert_int_equal(capacity(pct, 10, 50, true, 5), 4);  /* -1.5 truncated to -1 */
    const char *mag = "{\"AdjustmentType\": \"PercentChangeInCapacity\", "
                      " \"MinAdjustmentMagnitude\": 3, \"StepAdjustments\": ["
                      " {\"MetricIntervalLowerBound\": 0, \"ScalingAdjustment\": 10},"
                      " {\"MetricIntervalUpperBound\": 0, \"ScalingAdjustment\": -10}]}";
    assert_int_equal(capacity(mag, 90, 50, false, 4), 7);
    assert_int_equal(capacity(mag, 10, 50, true, 4), 1);
    assert_int_equal(capacity(mag, 90, 50, false, 100), 110); /* +10 is above the minimum */
}

static void test_aggregate_and_compare(void **state)
{
    json_t *v = json_loads("[60, 90, 75]", 0, NULL);
    double out = 0;
    assert_true(barge_step_aggregate(v, NULL, &out));
    assert_true(out == 75);
    assert_true(barge_step_aggregate(v, "Minimum", &out));
    assert_true(out == 60);
    assert_true(barge_step_aggregate(v, "Maximum", &out));
    assert_true(out == 90);
    json_decref(v);
    v = json_array();
    assert_false(barge_step_aggregate(v, "Average", &out));
    json_decref(v);

    assert_true(barge_alarm_breaches("GreaterThanThreshold", 51, 50));
    assert_false(barge_alarm_breaches("GreaterThanThreshold", 50, 50));
    assert_true(barge_alarm_breaches("GreaterThanOrEqualToThreshold", 50, 50));
    assert_true(barge_alarm_breaches("LessThanThreshold", 9.9, 10));
    assert_false(barge_alarm_breaches("LessThanThreshold", 10, 10));
    assert_true(barge_alarm_breaches("LessThanOrEqualToThreshold", 10, 10));
    assert_false(barge_alarm_breaches("LessThanLowerThreshold", 1, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_adjustment_types),
        cmocka_unit_test(test_aggregate_and_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
