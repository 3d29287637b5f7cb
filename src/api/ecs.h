/* Shared pieces of the ECS API files (ecs_*.c), on top of the domain layer
 * (ecs/ecs.h: store layout, names, ARNs and lookups): the tag store every
 * taggable resource uses, the operation tables and the helpers of several
 * areas. */
#ifndef BARGE_API_ECS_H
#define BARGE_API_ECS_H

#include <jansson.h>

#include "api/api.h"
#include "api/server.h"
#include "ecs/ecs.h"
#include "store/store.h"

/* A new ACTIVE cluster document with ECS's defaults (new reference). */
json_t *ecs_cluster_doc_new(const struct barge_server *srv, const char *name);

/* Does a Describe input's include list ask for TAGS? */
bool ecs_include_tags(const json_t *in);

/* Resources held on an instance by its tasks that are not STOPPED. */
struct ecs_usage {
    int64_t cpu, memory;
    uint16_t ports[1024];
    size_t n_ports;
    int running, pending;
};
int ecs_instance_usage(struct barge_tx *tx, const char *instance_id, struct ecs_usage *u,
                       struct barge_error **err);
/* The ContainerInstance shape of a stored instance: computed remaining
 * resources, task counts, agentConnected, and tags when asked. New reference. */
json_t *ecs_instance_render(struct barge_tx *tx, const json_t *doc, bool tags,
                            struct barge_error **err);

/* Creates an ACTIVE container instance in the cluster from what its agent
 * says about the host (info: cpu, memory, availabilityZone, attributes,
 * reservedPorts, agentVersion, hostname...). token_hash (may be NULL) is the
 * SHA-256 of the agent channel token. *out is the stored document (new
 * reference). */
int ecs_instance_register(struct barge_tx *tx, struct barge_server *srv, const json_t *cluster_doc,
                          const json_t *info, const char *token_hash, json_t **out,
                          struct barge_error **err);

/* Applies what an agent reports about a task (status, timestamps, containers'
 * states, exit codes, bindings, stop code and reason) to the stored task,
 * never moving it backwards in the lifecycle. Returns 1 when the task changed
 * (its version is bumped: store it), 0 when the report changed nothing. */
int ecs_task_apply_report(struct barge_tx *tx, json_t *task, const json_t *report,
                          struct barge_error **err);

/* Removes STOPPED tasks older than the configured retention. */
int barge_ecs_tasks_reap(struct barge_server *srv, struct barge_error **err);

/* Removes service deployment records that finished longer ago than the
 * configured retention (ECS keeps 90 days of history) and the service
 * revisions only they named. */
int barge_ecs_deployments_reap(struct barge_server *srv, struct barge_error **err);

/* Purges DELETE_IN_PROGRESS task definitions that no task or service uses any
 * more; barged's housekeeping loop calls it. */
int barge_ecs_taskdefs_reap(struct barge_server *srv, struct barge_error **err);

/* Loads the service named by ident (a name or ARN) of cluster for a change:
 * *svc (new reference) and its store key *key (caller frees). A missing or
 * INACTIVE one is a ServiceNotFoundException, a DRAINING one a
 * ServiceNotActiveException. */
int ecs_service_load(struct barge_tx *tx, struct barge_server *srv, const json_t *cluster,
                     const char *ident, json_t **svc, char **key, struct barge_error **err);
/* Checks a CreateService or CreateTaskSet input's launchType and
 * capacityProviderStrategy (one or the other, launch types barge has);
 * *fargate tells whether its tasks go to the Fargate pool. */
int ecs_service_check_launch(const json_t *in, bool *fargate, struct barge_error **err);
/* The Service Connect client aliases of every ACTIVE service, for the
 * agents' proxies: a new array of {"dnsName", "port", "endpoints": [[addr,
 * port], ...]} (the healthy instances of the alias's Cloud Map discovery
 * service), sorted. */
int ecs_service_connect_aliases(struct barge_tx *tx, json_t **out, struct barge_error **err);
/* Checks loadBalancers (of a service or a task set) against the task
 * definition td as ECS does: each names an existing target group that a load
 * balancer uses, and a container of td with a port mapping for
 * containerPort. */
int ecs_service_check_load_balancers(struct barge_tx *tx, const json_t *lbs, const json_t *td,
                                     struct barge_error **err);

/* The operation tables of each ECS area, merged in ecs.c. */
extern const struct barge_api_op ecs_cluster_ops[];
extern const struct barge_api_op ecs_taskdef_ops[];
extern const struct barge_api_op ecs_tag_ops[];
extern const struct barge_api_op ecs_instance_ops[];
extern const struct barge_api_op ecs_task_ops[];
extern const struct barge_api_op ecs_service_ops[];
extern const struct barge_api_op ecs_capacity_ops[];
extern const struct barge_api_op ecs_account_ops[];
extern const struct barge_api_op ecs_protection_ops[];
extern const struct barge_api_op ecs_agent_ops[];
extern const struct barge_api_op ecs_taskset_ops[];
extern const struct barge_api_op ecs_express_ops[];

/* GET /barge/v1/usage */
void barge_api_usage_handle(struct barge_http_req *req, struct barge_http_resp *resp);
/* /barge/v1/join-tokens (jointokens.c) */
void barge_api_join_tokens_handle(struct barge_http_req *req, struct barge_http_resp *resp);
/* Finds the join token "<id>.<secret>" and checks that it may register a host
 * now (known, not revoked, expired or used up); *out is its document (new
 * reference). The errors say which check failed. */
int barge_api_join_token_check(struct barge_tx *tx, const char *token, json_t **out,
                               struct barge_error **err);
/* Counts one registration into cluster (a name) against the token's document
 * from barge_api_join_token_check, refusing a cluster it is not for (write
 * transaction; doc is updated and stored). */
int barge_api_join_token_use(struct barge_tx *tx, json_t *doc, const char *cluster,
                             struct barge_error **err);
extern const struct barge_api_service barge_api_ecs;

/* Checks a capacityProviderStrategy (providers exist, one base at most, no
 * mix of Fargate and host groups). */
int ecs_capacity_check_strategy(struct barge_tx *tx, const struct barge_server *srv,
                                const json_t *strategy, struct barge_error **err);
extern const struct barge_api_op ecs_daemon_ops[];

/* Describe{Service,Daemon}{Deployments,Revisions}: the documents of kind
 * that the ARNs (of resource type type, "<type>/<cluster>/<name>/<id>") in
 * in[field] name, as out[out_field], and a MISSING failure for each ARN that
 * names none. */
int ecs_records_describe(struct barge_api_ctx *ctx, json_t *in, json_t **out, const char *field,
                         const char *kind, const char *type, const char *out_field,
                         struct barge_error **err);
/* Does a deployment record pass a List*Deployments filter: its status among
 * status (empty or NULL: any), created after `after` and before `before`
 * (NULL: unbounded)? */
bool ecs_record_matches(const json_t *doc, const json_t *status, const json_t *before,
                        const json_t *after);
extern const struct barge_api_op ecs_deployment_ops[];

#endif
