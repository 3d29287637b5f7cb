/* ECS Exec on barged (exec.c): the ExecuteCommand operation and the
 * sessions it opens. A session is a websocket at /exec/<session id> that
 * the client opens with the single-use token ExecuteCommand returned, and a
 * second one at /exec/<session id>/agent that the agent of the task's host
 * opens when its poll tells it of the session; barged relays the messages
 * between the two (common/ws.h) and logs who ran what, never the bytes.
 *
 * Sessions live in the memory of the barged that opened them: with several
 * barged behind one store, the agent joins whichever barged it polls, so
 * exec needs the client and the agent on the same one. */
#ifndef BARGE_API_EXEC_H
#define BARGE_API_EXEC_H

#include <jansson.h>

#include "api/api.h"
#include "http/http.h"

struct barge_server;

/* ECS ExecuteCommand (an operation of ecs_task_ops). */
int barge_api_execute_command(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err);

/* The sessions waiting for the agent of instance instance_id, as the poll
 * hands them to it (each once): a new array in *out, possibly empty. */
json_t *barge_api_exec_pending(const char *instance_id);

/* Ends every session (their clients learn that barged is stopping) and
 * waits a few seconds for them to close, before the listener stops. */
void barge_api_exec_shutdown(void);

/* The /exec/ route. */
void barge_api_exec_handle(struct barge_http_req *req, struct barge_http_resp *resp);

#endif
