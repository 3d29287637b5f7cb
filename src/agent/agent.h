/* barge-agent's internals: the connection to barged (client.c), the
 * checkpoint that lets a restarted agent adopt its containers (state.c), and
 * the task engine that runs each task's containers (engine.c). */
#ifndef BARGE_AGENT_AGENT_H
#define BARGE_AGENT_AGENT_H

#include <jansson.h>
#include <pthread.h>

#include "common/error.h"
#include "image/image.h"
#include "net/net.h"
#include "runtime/runtime.h"

struct barge_agent_config {
    const char *server;     /* "http://127.0.0.1:4566" */
    const char *cluster;    /* "default" */
    const char *data_dir;   /* "/var/lib/barge-agent" */
    const char *region;     /* SigV4 scope for registration */
    const char *access_key; /* for registration only */
    const char *secret_key;
    const char *availability_zone; /* NULL: <region>a */
    json_t *attributes;            /* [{name, value}] from --attribute */
    long long cpu;                 /* CPU units to offer; 0: 1024 per core */
    long long memory;              /* MiB to offer; 0: MemTotal less a reserve */
    const char *runtime;           /* NULL/"auto", "crun", "runc" */
    int stop_timeout;              /* seconds; default for containers without stopTimeout */
    bool fargate;                  /* enrolled in the Fargate capacity pool */
    /* Networking (network.c). */
    const char *bridge;          /* bridge device and CNI network; NULL: barge0 */
    const char *bridge_subnet;   /* NULL: the bridge's, or a free private range */
    const char *host_port_range; /* dynamic host ports "lo-hi"; NULL: ip_local_port_range */
    int metadata_port;           /* task metadata endpoint; 0: 51679 */
    int metrics_interval_ms;     /* usage reports to barged (stats.c) */
    const char *metrics_listen;  /* NULL: no /metrics listener */
    /* Environment files: an S3-compatible endpoint to fetch them from
     * instead of barged, and its keys (NULL: the task's credentials). */
    const char *s3_endpoint;
    const char *s3_access_key;
    const char *s3_secret_key;
};

struct barge_agent;

/* client.c: JSON over HTTP to barged. */
struct barge_agent_client;
struct barge_agent_client *barge_agent_client_new(const char *server);
void barge_agent_client_free(struct barge_agent_client *c);
/* Requests through c end within a second once the agent is stopping: for the
 * long poll, which would otherwise hold a stopping agent for its whole wait. */
void barge_agent_client_stop_aware(struct barge_agent_client *c);
/* POSTs body (borrowed) to path with either SigV4 (creds non-NULL) or the
 * bearer token; returns the HTTP status (and *out the parsed body, new
 * reference, may be NULL) or -1 when barged could not be reached. */
/* The barged endpoint requests go to now (borrowed from c). */
const char *barge_agent_client_server(const struct barge_agent_client *c);
int barge_agent_client_post(struct barge_agent_client *c, const char *path, const json_t *body,
                            const char *token, const struct barge_agent_config *sigv4,
                            long timeout_s, json_t **out, struct barge_error **err);

/* state.c: the checkpoint, <data_dir>/state.json. */
int barge_agent_state_load(const char *data_dir, json_t **out, struct barge_error **err);
int barge_agent_state_save(const char *data_dir, const json_t *state, struct barge_error **err);

/* engine.c: tasks. */
struct barge_engine;
struct barge_engine *barge_engine_new(struct barge_agent *agent);
/* Brings the engine in line with the manifests barged sent: starts runners for
 * new tasks, tells runners of changed desired states, stops tasks barged no
 * longer lists. */
void barge_engine_sync(struct barge_engine *e, const json_t *manifests);
/* {taskArn: version} of every task the engine knows, for the next poll. */
json_t *barge_engine_known(struct barge_engine *e);
/* Re-creates runners for the tasks in a checkpoint (after a restart). */
void barge_engine_adopt(struct barge_engine *e, const json_t *tasks);
/* True when no task is left (every runner finished). */
bool barge_engine_idle(struct barge_engine *e);
/* The metadata endpoint's snapshot of the task owning a container's token
 * (see metadata.h); new reference, NULL when the token is unknown. */
json_t *barge_engine_metadata(struct barge_engine *e, const char *token);
/* The container credentials endpoint's answer for the task role credentials
 * id (see metadata.h), with its HTTP status; new reference. */
json_t *barge_engine_task_credentials(struct barge_engine *e, const char *id, unsigned *status);
/* Copies the runtime id of the container called name in task task_arn into
 * out; false when the engine runs no such container. */
bool barge_engine_container_id(struct barge_engine *e, const char *task_arn, const char *name,
                               char *out, size_t len);
/* Stops accepting work and waits for runners to pause (containers keep
 * running). */
void barge_engine_shutdown(struct barge_engine *e);
void barge_engine_free(struct barge_engine *e);

/* main.c: what the engine needs from the agent. */
struct barge_agent {
    struct barge_agent_config cfg;
    struct barge_runtime *rt;
    struct barge_image_pull_opts pull;
    struct barge_engine *engine;
    char *instance_arn;
    char *token;
    pthread_mutex_t lock;  /* guards the checkpoint */
    json_t *state;         /* {containerInstanceArn, token, tasks: {arn: {...}}} */
    json_t *registry_auth; /* the last /agent/registry-auth answer; guarded by lock */
    /* Networking, volumes and the metadata endpoint (network.c). */
    struct barge_net_config net;
    char *volumes_dir;                      /* <data_dir>/volumes */
    char *taskfs_dir;                       /* <data_dir>/taskfs: Fargate tasks' storage */
    struct barge_metadata_server *metadata; /* NULL when it could not start */
    char *metadata_bridge_url;              /* "http://10.213.0.1:51679" */
    char *metadata_host_url;                /* "http://127.0.0.1:51679" */
    int credentials_port; /* the host's route to the credentials endpoint goes to this port of
                           * 127.0.0.1 (0: none of ours); guarded by lock */
    struct barge_logship *logship; /* the awslogs driver (logship.h) */
    struct barge_stats *stats;     /* usage reports and /metrics (stats.h) */
    struct barge_agent_dns *dns;   /* the Cloud Map DNS server (dns.c), or NULL */
    char *dns_server; /* its address, containers' nameserver; NULL: the host's resolvers */
};

/* dns.c: runs dnsmasq on the bridge's gateway with the Cloud Map records
 * barged sends (when dnsmasq is installed and there is a bridge); sets
 * dns_server. Stop ends the thread and leaves dnsmasq serving. */
void barge_agent_dns_start(struct barge_agent *a);
void barge_agent_dns_stop(struct barge_agent *a);
/* Stops the dnsmasq an agent of data_dir left serving (--clean-network). */
void barge_agent_dns_clean(const char *data_dir);
/* The dnsmasq options (a new string, "srv-host=..." lines) of the SRV
 * records of an /agent/dns answer ([[name, target, port], ...]); records
 * that are not DNS names and ports are left out. */
char *barge_agent_dns_srv_options(const json_t *records);

/* network.c: the bridge network, host ports, task volumes and the metadata
 * endpoint. Init picks the subnet and port range and removes what tasks
 * unknown to the checkpoint left behind (networks, volumes, storage); it runs
 * before adoption. */
int barge_agent_network_init(struct barge_agent *a, struct barge_error **err);
/* Starts the metadata endpoint (needs the engine). A failure is logged:
 * tasks then run without ECS_CONTAINER_METADATA_URI_V4. */
void barge_agent_metadata_start(struct barge_agent *a);
/* Removes every task network recorded in the data directory (for a host
 * whose containers are gone: --clean-network). */
int barge_agent_network_clean(struct barge_agent *a, struct barge_error **err);
void barge_agent_network_release(struct barge_agent *a);
/* The host ports the agent never hands out (ECS_RESERVED_PORTS). */
extern const uint16_t barge_agent_reserved_ports[5];

/* Records a task's agent-side state in the checkpoint (value borrowed and
 * copied; NULL removes the task) and writes it to disk. */
void barge_agent_checkpoint_task(struct barge_agent *a, const char *task_arn, const json_t *value);
/* Sends a task state change to barged, retrying until it is accepted, barged
 * refuses it for good, or the agent is shutting down. */
void barge_agent_report(struct barge_agent *a, const json_t *report);
/* When registry (a "host:port") is barged's own registry, returns true with a
 * username and password (newly allocated) to pull from it. */
bool barge_agent_registry_credentials(struct barge_agent *a, const char *registry, char **user,
                                      char **password);
/* Records that SIGINT/SIGTERM arrived (async-signal-safe). */
void barge_agent_request_stop(int sig);
/* True once SIGINT/SIGTERM arrived. */
bool barge_agent_stopping(void);

#endif
