/* CloudWatch metric alarms: what the API (api/cloudwatch.c) stores and the
 * evaluator (control/alarms.c) reads and updates. Kind "cw-alarm", key the
 * alarm name; the document is the MetricAlarm shape plus the evaluator's
 * bookkeeping in members starting with '_' (never on the wire). */
#ifndef BARGE_SVC_CLOUDWATCH_H
#define BARGE_SVC_CLOUDWATCH_H

#define CW_KIND_ALARM "cw-alarm"
#define CW_NAMESPACE  "AWS/ECS"

#endif
