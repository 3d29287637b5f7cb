/* barged's control loops: the service scheduler and the watch over container
 * instances whose agents went silent. One thread runs them whenever tasks
 * change (barge_server_notify) and at least once a second, in the one barged
 * that leads (leader.c) when several share a store. */
#ifndef BARGE_CONTROL_CONTROL_H
#define BARGE_CONTROL_CONTROL_H

#include "core/server.h"

/* The average utilization (percent of what the service's tasks reserve) of
 * a service's tasks over the last window_seconds for metric
 * ("ECSServiceAverageCPUUtilization" or "ECSServiceAverageMemoryUtilization"),
 * or a negative value when unknown. */
typedef double (*barge_autoscale_metric_fn)(struct barge_server *srv, const char *cluster,
                                            const char *service, const char *metric,
                                            int window_seconds);
/* Where the scaler reads metrics (the metrics module registers itself). */
void barge_autoscale_set_metric_source(barge_autoscale_metric_fn fn);
/* The period target tracking averages metrics over (barged --autoscale-window). */
extern int barge_autoscale_window_seconds;
/* One pass of the scaler over every scalable target of the calling thread's
 * region (barge_store_use_region). */
void barge_autoscale_step(struct barge_server *srv);

/* Runs the Application Auto Scaling step scaling policy policy_arn because
 * alarm alarm_name is in state (one of whose actions it is), in tx: picks
 * the step for values (the datapoints that put the alarm in that state, a
 * JSON array; empty: taken as at threshold, on the side of it the state is
 * on: below it when below) aggregated as the policy says, honours Cooldown (a scale-out within it
 * goes ahead only beyond what the one that started it added), min/max and suspension, sets the
 * service's desired count and records the activity. An ARN that names no step scaling policy is
 * ignored. */
int barge_autoscale_run_step_policy(struct barge_server *srv, struct barge_tx *tx,
                                    const char *policy_arn, const char *alarm_name,
                                    const char *state, const json_t *values, double threshold,
                                    bool below, struct barge_error **err);

/* The datapoints of the metric an alarm names (Namespace, MetricName,
 * Dimensions) per period seconds from start to end, oldest first, in a new
 * array in *out (empty when there are none). */
typedef int (*barge_alarms_datapoints_fn)(struct barge_server *srv, const json_t *query,
                                          double start, double end, int period, json_t **out,
                                          struct barge_error **err);
/* Where the alarm evaluator reads metrics (barged registers CloudWatch's);
 * without a source every period is missing data. */
void barge_alarms_set_datapoint_source(barge_alarms_datapoints_fn fn);

/* alarms.c: one evaluation pass over every CloudWatch metric alarm of the
 * calling thread's region that is due (each is evaluated at most once a period, at least once a
 * minute), and the Auto Scaling actions of the state each is in. */
void barge_alarms_step(struct barge_server *srv);

/* lb.c: one pass that brings the HAProxy processes of the load balancers
 * of every region in line with the store; barge_lb_stop_all stops them (barged
 * exiting, or no longer the leader). */
void barge_lb_step(struct barge_server *srv);
void barge_lb_stop_all(struct barge_server *srv);

struct barge_control_config {
    int host_grace_seconds;  /* after an agent counts as disconnected, until its tasks are
                                replaced */
    int task_stable_seconds; /* a task running this long proves a deployment can work */
    int autoscale_interval;  /* seconds between scaler passes */
};

/* Starts the control thread; barge_control_stop ends it. */
int barge_control_start(struct barge_server *srv, const struct barge_control_config *cfg,
                        struct barge_error **err);
void barge_control_stop(void);

/* One pass of the service scheduler and the lost-host watch over the calling
 * thread's region (exposed for tests and the loop itself). */
void barge_control_step(struct barge_server *srv);

/* stacks.c: the thread that carries out CloudFormation stack operations in
 * the leader (barge_control_start and _stop run these). */
/* The CloudFormation engine the stacks thread drives (api/cfn.h): step
 * carries out pending stack operations of the calling thread's region;
 * set_stopping tells it that barged stops, so that a waiting operation gives
 * up. barged registers it before the control loop starts; without one the
 * thread does nothing. */
struct barge_stacks_engine {
    void (*step)(struct barge_server *srv);
    void (*set_stopping)(bool stopping);
};
void barge_stacks_set_engine(const struct barge_stacks_engine *engine);
int barge_stacks_start(struct barge_server *srv, struct barge_error **err);
void barge_stacks_stop(void);

/* leader.c: of the barged processes sharing a store, the one that runs the
 * control loops and the housekeeping (see there). barge_leader_start makes a
 * first attempt before it returns, so a lone barged leads at once. */
int barge_leader_start(struct barge_server *srv, struct barge_error **err);
/* Gives the leadership up (if held) so that another barged takes over now. */
void barge_leader_stop(void);
/* True while this process leads (always before barge_leader_start). */
bool barge_leader_active(void);
/* When this process became the leader (barge_now() time), 0 when it does not
 * lead. */
double barge_leader_since(void);

#endif
