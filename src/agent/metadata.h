/* The task metadata endpoint, version 4: ECS_CONTAINER_METADATA_URI_V4 in
 * every container points at a small HTTP server in the agent,
 * http://<address>:<port>/v4/<token>, where the token (random, one per
 * container) says which container asks. The address is one a container can
 * reach from its network namespace: the bridge's gateway address for bridge
 * and awsvpc tasks, 127.0.0.1 for host-mode tasks (none-mode tasks have no
 * network and get no endpoint). Paths, as ECS serves them:
 *   /v4/<token>             the container
 *   /v4/<token>/task        the task with all its containers
 *   /v4/<token>/taskWithTags  the same (tags are not known to the agent)
 *   /v4/<token>/stats       Docker-style stats of the container
 *   /v4/<token>/task/stats  {runtime id: stats} for the task's containers
 *
 * The same server answers the container credentials endpoint of tasks with a
 * task role: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/<id> in
 * their containers, which SDKs fetch from http://169.254.170.2 (a DNAT rule
 * brings that here, net.h):
 *   /v2/credentials/<id>    {RoleArn, AccessKeyId, SecretAccessKey, Token,
 *                           Expiration}, the task role's session
 *
 * The engine describes a task as a snapshot (below); the functions that turn
 * a snapshot into ECS's documents are pure and unit-tested. */
#ifndef BARGE_AGENT_METADATA_H
#define BARGE_AGENT_METADATA_H

#include <jansson.h>

#include "common/error.h"
#include "runtime/runtime.h"

/* A snapshot, as the engine builds it (times are epoch seconds):
 * {cluster, taskArn, family, revision, desiredStatus, knownStatus,
 *  availabilityZone, launchType, group, cpu, memory (task-level strings or
 *  absent), pullStartedAt, pullStoppedAt, executionStoppedAt,
 *  network: {mode, ipv4, mac, subnet, gateway},
 *  self: index of the asking container,
 *  containers: [{name, runtimeId, image, imageDigest, containerArn,
 *                desiredStatus, knownStatus, exitCode, cpu, memory,
 *                createdAt, startedAt, finishedAt, restartPolicy (bool),
 *                restartCount, health: {status, since, exitCode, output},
 *                ports: [{containerPort, hostPort, protocol, bindIP}],
 *                volumes: [{source, destination}], dockerLabels,
 *                logDriver, logOptions}]} */

/* The v4 container document of containers[idx]. New reference. */
json_t *barge_metadata_container_doc(const json_t *snap, size_t idx);
/* The v4 task document. New reference. */
json_t *barge_metadata_task_doc(const json_t *snap);

/* One stats sample of a container. */
struct barge_metadata_sample {
    struct barge_runtime_stats stats;
    double read_at;         /* epoch seconds */
    uint64_t system_cpu_ns; /* the host's total CPU time (/proc/stat) */
    unsigned online_cpus;
    json_t *networks; /* {"eth0": {rx_bytes, ...}} or NULL (borrowed) */
};

/* Docker's stats JSON from the current and the previous sample (prev NULL:
 * the first, precpu_stats are zero). New reference. */
json_t *barge_metadata_stats_doc(const char *name, const char *id,
                                 const struct barge_metadata_sample *cur,
                                 const struct barge_metadata_sample *prev);
/* {"eth0": {rx_bytes, rx_packets, rx_errors, rx_dropped, tx_...}} from the
 * text of /proc/<pid>/net/dev, loopback left out. New reference. */
json_t *barge_metadata_parse_net_dev(const char *text);

/* ECS's credentials document from barged's task role answer {roleArn,
 * accessKeyId, secretAccessKey, sessionToken, expiration (epoch seconds)}.
 * New reference (it holds the secret). */
json_t *barge_metadata_credentials_doc(const json_t *creds);
/* Whether credentials issued at issued and expiring at expires are still
 * worth handing out at now: until half their lifetime is gone, so that a
 * client refreshing near Expiration always gets new ones in time. */
bool barge_metadata_credentials_fresh(double issued, double expires, double now);

/* The server. */
struct barge_metadata_ops {
    /* The snapshot of the task owning token (its "self" set), new
     * reference, or NULL when the token is unknown. Called from the
     * server's threads. */
    json_t *(*snapshot)(void *ud, const char *token);
    /* The answer to /v2/credentials/<id> and its HTTP status in *status;
     * new reference. Called from the server's threads. */
    json_t *(*credentials)(void *ud, const char *id, unsigned *status);
    void *ud;
};

struct barge_metadata_server;

/* Listens on port at each of addresses (NULL-terminated; they need not exist
 * yet: a bridge gets its address when the first task joins it). With port
 * taken and fallback set, an ephemeral port is used instead; either way every
 * address gets the same port, returned by barge_metadata_server_port(). */
int barge_metadata_server_start(struct barge_runtime *rt, const char *const *addresses, int port,
                                bool fallback, const struct barge_metadata_ops *ops,
                                struct barge_metadata_server **out, struct barge_error **err);
int barge_metadata_server_port(const struct barge_metadata_server *s);
void barge_metadata_server_stop(struct barge_metadata_server *s);

#endif
