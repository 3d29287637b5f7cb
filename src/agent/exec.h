/* The agent's half of ECS Exec (exec.c; barged's is src/api/exec.h). */
#ifndef BARGE_AGENT_EXEC_H
#define BARGE_AGENT_EXEC_H

#include <jansson.h>

struct barge_agent;
struct barge_agent_client;

/* Joins the exec session a poll answer's execRequests entry (borrowed)
 * names, on a thread of its own, through the barged client talks to. */
void barge_agent_exec_start(struct barge_agent *a, struct barge_agent_client *client,
                            const json_t *request);

#endif
