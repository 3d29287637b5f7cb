/* The arithmetic of Application Auto Scaling's step scaling policies and of
 * CloudWatch's alarm comparison, pure so that it is tested on its own. */
#ifndef BARGE_SCHED_STEPSCALE_H
#define BARGE_SCHED_STEPSCALE_H

#include <jansson.h>
#include <stdbool.h>

/* Aggregates values (a JSON array of numbers) as MetricAggregationType
 * ("Average", "Minimum" or "Maximum"; NULL: Average) says; false when values
 * is empty. */
bool barge_step_aggregate(const json_t *values, const char *aggregation, double *out);

/* The capacity a StepScalingPolicyConfiguration (AdjustmentType,
 * StepAdjustments, MinAdjustmentMagnitude) asks for when its alarm's metric
 * is value and the alarm's threshold is threshold, from current. A step's
 * bounds are relative to the threshold; above the threshold the lower bound
 * is inclusive and the upper exclusive, below it the other way round, and a
 * missing bound is infinite. A value at the threshold counts as below it when
 * below is true (the alarm breaches downwards: LessThan operators). Percent changes between -1 and
 * 1 become -1 or 1, others are truncated towards zero, then raised to MinAdjustmentMagnitude.
 * Returns false when no step covers the value; *out is never negative and
 * not yet clamped to the target's bounds. */
bool barge_step_capacity(const json_t *config, double value, double threshold, bool below,
                         long long current, long long *out);

/* Whether value breaches threshold under a CloudWatch ComparisonOperator
 * ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold",
 * "LessThanThreshold", "LessThanOrEqualToThreshold"). */
bool barge_alarm_breaches(const char *op, double value, double threshold);

#endif
