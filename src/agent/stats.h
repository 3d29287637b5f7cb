/* Container usage on the agent: every interval, the CPU time and memory
 * working set of each container the agent runs (from its cgroups, v1 or v2,
 * through barge_runtime_stats) go to barged (POST /agent/metrics), which keeps
 * the history utilization is computed from. Optionally, a small HTTP
 * listener serves the same numbers, and the log shipper's, as Prometheus
 * text on /metrics. */
#ifndef BARGE_AGENT_STATS_H
#define BARGE_AGENT_STATS_H

#include "common/error.h"

struct barge_agent;
struct barge_stats;

/* Starts the reporter (every interval_ms) and, when listen is not NULL
 * ("127.0.0.1:0"), the /metrics listener. */
int barge_stats_start(struct barge_agent *agent, int interval_ms, const char *listen,
                      struct barge_stats **out, struct barge_error **err);
/* The listener's port (0 without one). */
int barge_stats_port(const struct barge_stats *st);
void barge_stats_stop(struct barge_stats *st);

#endif
