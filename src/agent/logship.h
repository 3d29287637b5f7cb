/* The awslogs log driver. conmon writes every container's output to a
 * k8s-file log whatever happens; for containers whose task definition says
 * logDriver "awslogs", one shipper thread per agent tails those files,
 * assembles events (logparse.h) and sends them to barged over the agent
 * channel (POST /agent/logs), which appends them to the group and stream the
 * task definition names.
 *
 * Delivery is at-least-once and in practice exactly-once: each source keeps a
 * durable resume offset (checkpointed in <data_dir>/logship.json after
 * batches are accepted), the file itself is the buffer while barged is away,
 * and every event carries its file offset so barged skips what it already
 * stored when a batch is resent. The container is never slowed by shipping;
 * in non-blocking mode the backlog is capped at max-buffer-size and what
 * falls out of it (the oldest unsent lines) is counted as dropped and
 * reported. */
#ifndef BARGE_AGENT_LOGSHIP_H
#define BARGE_AGENT_LOGSHIP_H

#include <jansson.h>

#include "common/error.h"
#include "common/prom.h"

struct barge_agent;
struct barge_logship;

/* Starts the shipper, resuming the sources in the agent's data directory
 * (those of tasks the agent no longer runs are drained and forgotten). The
 * agent's token and state must be set. */
struct barge_logship *barge_logship_new(struct barge_agent *agent);
/* Stops the thread (unsent lines stay in the files for the next start). */
void barge_logship_free(struct barge_logship *ls);

/* Starts shipping the log at log_path of container of task_arn when
 * log_configuration (the container definition's, may be NULL) names the
 * awslogs driver; does nothing otherwise. Checks the options, and asks barged
 * whether the destination exists (creating the group when
 * awslogs-create-group is "true"): a missing group fails, as with ECS, with
 * BARGE_ERR_NOT_FOUND; barged being unreachable does not. */
int barge_logship_open(struct barge_logship *ls, const char *task_arn, const char *container,
                       const char *log_path, const json_t *log_configuration,
                       struct barge_error **err);
/* The task's containers have exited: ship what is left, then forget them. */
void barge_logship_finish(struct barge_logship *ls, const char *task_arn);

/* Writes the shipper's families (events shipped, lines dropped, backlog). */
void barge_logship_metrics(struct barge_logship *ls, struct barge_prom *p);

/* Parses a Docker size ("1m", "512k", "64KiB", "1048576"); -1 if invalid. */
int64_t barge_logship_parse_size(const char *s);

#endif
