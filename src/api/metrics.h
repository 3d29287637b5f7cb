/* barged's metrics: what agents report about their containers' CPU and
 * memory (a short history per task, in memory: a restart starts it afresh),
 * the utilization ECS derives from it (per service, per cluster), counters
 * the rest of barged bumps (API requests and latencies, image pull times,
 * log ingestion), and /metrics in Prometheus text format (with the
 * placement decisions the domain layer counts, ecs_placement_decisions).
 *
 * The counters and the history are process-wide, like the logger: one barged
 * serves one set of metrics. Every function here is thread-safe. */
#ifndef BARGE_API_METRICS_H
#define BARGE_API_METRICS_H

#include <jansson.h>
#include <stdint.h>

#include "api/server.h"
#include "http/http.h"

/* The clock API latencies are measured with: monotonic seconds. */
double barge_metrics_clock(void);

/* One API call served: service model name ("ecs"), operation (NULL when it
 * was not a known operation), HTTP status and seconds taken. */
void barge_metrics_api_observe(const char *service, const char *operation, int status,
                               double seconds);
/* An image pull an agent reported, in seconds. */
void barge_metrics_image_pull(double seconds);
/* Log events stored, and log lines agents reported dropping. */
void barge_metrics_logs_ingested(int64_t events, int64_t dropped);

/* Takes an agent's usage report (POST /agent/metrics) from instance
 * instance_id (already authenticated; cluster is its own, the tasks' come
 * from their ARNs, as a Fargate pool instance runs every cluster's):
 *   {tasks: [{taskArn, containers: [{name, cpuNs, memoryBytes,
 *             memoryLimitBytes}]}], time}
 * cpuNs is cumulative CPU time, memoryBytes the working set. Tasks that are not
 * the instance's are ignored. *out: {accepted}. */
int barge_metrics_agent_report(struct barge_server *srv, const char *cluster,
                               const char *instance_id, const json_t *in, json_t **out,
                               struct barge_error **err);

/* ECS's service utilization over the last window_seconds for the RUNNING
 * tasks of cluster whose group is group ("service:<name>"): CPU units used
 * (1024 per core) over CPU units reserved, and memory used over memory
 * reserved, in percent, summed over the tasks (the Average statistic). A task
 * that reserves no CPU counts as reserving 1024 units (one core), since ECS
 * leaves the denominator undefined there. Returns the number of tasks that had
 * samples in the window (0: *cpu_pct and *mem_pct are 0 and mean "no data"),
 * or -1 on error. */
int barge_metrics_service_utilization(struct barge_server *srv, const char *cluster,
                                      const char *group, int window_seconds, double *cpu_pct,
                                      double *mem_pct);

/* The scaler's metric source (barge_autoscale_metric_fn): the service's
 * ECSServiceAverageCPUUtilization or ECSServiceAverageMemoryUtilization, or
 * -1 when unknown (no samples, or another metric). */
double barge_metrics_autoscale_metric(struct barge_server *srv, const char *cluster,
                                      const char *service, const char *metric, int window_seconds);

/* CloudWatch's AWS/ECS metric ("CPUUtilization" or "MemoryUtilization") of
 * service in cluster (service NULL: the whole cluster) as ECS computes it,
 * per period seconds from start to end (epoch seconds): for each period that
 * has samples, {Timestamp (its start), SampleCount (tasks measured), Average
 * (used over reserved, in percent, summed over the tasks), Sum, Minimum and
 * Maximum (of the tasks' own percentages), Unit "Percent"}, oldest first, in
 * a new array in *out (empty for another metric). Only what the in-memory
 * history still holds is there. */
int barge_metrics_ecs_datapoints(struct barge_server *srv, const char *metric, const char *cluster,
                                 const char *service, double start, double end, int period,
                                 json_t **out, struct barge_error **err);

/* Appends the cluster's utilization and reservation to a DescribeClusters
 * statistics list ([{name, value}]): CPUUtilization and MemoryUtilization
 * (when any task has samples), CPUReservation and MemoryReservation, each
 * relative to the registered resources of the cluster's ACTIVE and DRAINING
 * instances, in percent. */
int barge_metrics_cluster_statistics(struct barge_tx *tx, const char *cluster, json_t *stats,
                                     struct barge_error **err);

/* GET /metrics, on the listener of --metrics-listen (server.h); any other
 * path is 404. */
void barge_metrics_handle(struct barge_http_req *req, struct barge_http_resp *resp);

#endif
