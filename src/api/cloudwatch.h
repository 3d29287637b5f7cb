/* CloudWatch's API (cloudwatch.c); its store layout is in svc/cloudwatch.h. */
#ifndef BARGE_API_CLOUDWATCH_H
#define BARGE_API_CLOUDWATCH_H

#include <jansson.h>

#include "api/server.h"
#include "svc/cloudwatch.h"

/* The datapoints of the metric query names (Namespace, MetricName,
 * Dimensions: an alarm or a GetMetricStatistics input) per period seconds
 * from start to end, as barge_metrics_ecs_datapoints gives them; an empty
 * array for a metric barged does not have. A barge_alarms_datapoints_fn, the
 * alarm evaluator's source (barged registers it). */
int barge_cloudwatch_datapoints(struct barge_server *srv, const json_t *query, double start,
                                double end, int period, json_t **out, struct barge_error **err);

#endif
