/* CloudWatch metric alarms: what the API (cloudwatch.c) stores and the
 * evaluator (src/control/alarms.c) reads and updates. Kind "cw-alarm", key
 * the alarm name; the document is the MetricAlarm shape plus the evaluator's
 * bookkeeping in members starting with '_' (never on the wire). */
#ifndef BARGE_API_CLOUDWATCH_H
#define BARGE_API_CLOUDWATCH_H

#include <jansson.h>

#include "api/server.h"

#define CW_KIND_ALARM "cw-alarm"
#define CW_NAMESPACE  "AWS/ECS"

/* The datapoints of the metric query names (Namespace, MetricName,
 * Dimensions: an alarm or a GetMetricStatistics input) per period seconds
 * from start to end, as barge_metrics_ecs_datapoints gives them; an empty
 * array for a metric barged does not have. */
int barge_cloudwatch_datapoints(struct barge_server *srv, const json_t *query, double start,
                                double end, int period, json_t **out, struct barge_error **err);

#endif
