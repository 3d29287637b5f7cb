/* Task logs through the agent channel: the output a container keeps on its
 * host (conmon's log file, whatever its log driver) read on demand.
 *
 * barged never connects to agents, so a read is a request in the store that
 * the instance's long-poll hands to its agent, and a reply the agent uploads;
 * both live in the store, so the barged that serves the client and the one
 * that the agent polls may differ (several barged on PostgreSQL). */
#ifndef BARGE_API_TASKLOGS_H
#define BARGE_API_TASKLOGS_H

#include <jansson.h>

#include "common/error.h"
#include "http/http.h"

struct barge_server;

/* GET /barge/v1/task-logs?cluster=&task=&container=&offset=&since=
 * (SigV4-signed for "ecs"): one slice of a container's output. */
void barge_api_task_logs_handle(struct barge_http_req *req, struct barge_http_resp *resp);

/* The log requests for the instance (its id) that its agent has not been
 * handed yet, marked as handed; *out is a new array (empty when none). */
int barge_api_task_logs_pending(struct barge_server *srv, const char *instance_id, json_t **out,
                                struct barge_error **err);

/* POST /agent/task-logs: the agent's answer to one request (in, borrowed). */
int barge_api_task_logs_put(struct barge_server *srv, const char *cluster, const char *instance_id,
                            const json_t *in, json_t **out, struct barge_error **err);

/* Removes requests and replies nobody waits for any more (their client gave
 * up or its barged died). */
int barge_api_task_logs_reap(struct barge_server *srv, struct barge_error **err);

#endif
