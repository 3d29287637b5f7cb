/* CloudWatch Logs in barged: the API (logs.c), the pure pieces it is built on
 * (logs_pattern.c: filter patterns and paging tokens), and the entry point
 * the agent channel uses to append a container's output (logs.c).
 *
 * Storage: a group and a stream are documents (kinds "loggroup", key the
 * group name, and "logstream", key "<group>:<stream>": ':' cannot appear in
 * a group name, so a group's streams are one prefix scan away). Each carries
 * a number given by a store counter; events live in the store's log table
 * under those numbers, so deleting and re-creating a name never shows old
 * events. */
#ifndef BARGE_API_LOGS_H
#define BARGE_API_LOGS_H

#include <jansson.h>
#include <stdint.h>

#include "api/server.h"
#include "common/error.h"

#define LOGS_KIND_GROUP  "loggroup"
#define LOGS_KIND_STREAM "logstream"

/* --- filter patterns (logs_pattern.c) --- */

/* A compiled filterPattern: space-separated terms, each a bare word or a
 * "quoted phrase"; a term prefixed with '?' is optional (at least one of the
 * optional terms must match), with '-' excluded (none may match); every other
 * term must match. Terms match as case-sensitive substrings. An empty pattern
 * matches everything. JSON ({...}), space-delimited ([...]) and regular
 * expression (%...%) patterns are refused as unsupported. */
struct barge_logs_pattern;

/* Compiles text; *out is owned by the caller (barge_logs_pattern_free). A
 * malformed pattern is BARGE_ERR_INVALID naming it. */
int barge_logs_pattern_compile(const char *text, struct barge_logs_pattern **out,
                               struct barge_error **err);
bool barge_logs_pattern_match(const struct barge_logs_pattern *p, const char *msg, size_t len);
void barge_logs_pattern_free(struct barge_logs_pattern *p);

/* --- GetLogEvents tokens (logs_pattern.c) --- */

/* A position between events: a forward token names the events after
 * (ts, id), a backward token those before it. */
struct barge_logs_position {
    bool forward;
    int64_t ts;
    int64_t id;
};

/* "f/" or "b/" and 40 digits; the caller frees the string. */
char *barge_logs_token_encode(const struct barge_logs_position *pos);
/* A token that is not one barge_logs_token_encode made is an
 * InvalidParameterException naming it. */
int barge_logs_token_decode(const char *token, struct barge_logs_position *out,
                            struct barge_error **err);

/* --- the API (logs.c) --- */

/* Appends a container's output sent by its agent (POST /agent/logs) to the
 * group and stream its task definition's awslogs options name, creating the
 * stream (and the group when awslogs-create-group is "true"). The caller has
 * authenticated the agent of instance instance_id in cluster (the task's own
 * cluster comes from its ARN: a Fargate pool instance runs every cluster's
 * tasks). in:
 *   {taskArn, container, events: [{timestamp, message}], source: {id, from,
 *    to, offsets: [end offset of each event]}, dropped}
 * The source positions make resends idempotent: the stream remembers how far
 * into each source file it has stored. An empty events list only checks that
 * the destination exists (the agent asks before starting the container).
 * *out: {logGroupName, logStreamName, accepted}. BARGE_ERR_NOT_FOUND when the
 * task or the group is unknown. */
int barge_logs_agent_put(struct barge_server *srv, const char *cluster, const char *instance_id,
                         const json_t *in, json_t **out, struct barge_error **err);

/* Appends messages (a list of strings, one event each, stamped now) to
 * stream of group, creating the stream; BARGE_ERR_NOT_FOUND
 * (ResourceNotFoundException) when the group does not exist. For output
 * barged itself records (exec sessions). */
int barge_logs_append(struct barge_server *srv, const char *group, const char *stream,
                      const json_t *messages, struct barge_error **err);

/* Deletes events older than their group's retention; housekeeping calls it. */
int barge_logs_enforce_retention(struct barge_server *srv, struct barge_error **err);

#endif
