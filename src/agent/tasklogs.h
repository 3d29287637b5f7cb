/* The agent's half of task logs (barged's is src/api/tasklogs.h): a poll
 * answer's logRequests name a container's log file, a byte offset, a
 * since-timestamp and a size cap; the agent reads that slice of conmon's
 * k8s-file log, turns it into events and uploads them with POST
 * /agent/task-logs. */
#ifndef BARGE_AGENT_TASKLOGS_H
#define BARGE_AGENT_TASKLOGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct barge_agent;
struct barge_agent_client;

/* Turns the k8s-file records in buf (len bytes) into events appended to
 * events: {"timestamp": epoch ms, "stream": "stdout"|"stderr", "message"}.
 * Only whole lines are read, except that a buffer of `full` size with no
 * newline at all is taken as one line (so that a reader never stalls on it).
 * Partial records (P) are joined with the record that ends their line; a
 * line whose end is not in buf yet is left for the next read, unless it
 * began at buf's start. Events older than since (epoch ms) are skipped;
 * lines that are not k8s-file records too. Returns how many bytes of buf
 * were consumed (where the next read starts). */
size_t barge_tasklogs_parse(const char *buf, size_t len, bool full, int64_t since, json_t *events);

/* Serves one log request (borrowed) and uploads the answer with client. */
void barge_agent_task_logs_answer(struct barge_agent *a, struct barge_agent_client *client,
                                  const json_t *request);

#endif
