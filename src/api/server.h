/* barged's process-wide pieces the API layer adds to struct barge_server
 * (core/server.h, one per process; handlers reach it through their request):
 * the listener and parked long polls, access keys, the route table and the
 * housekeeping loop. */
#ifndef BARGE_API_SERVER_H
#define BARGE_API_SERVER_H

#include <stdint.h>

#include "common/crypto.h"
#include "common/sigv4.h"
#include "core/server.h"
#include "http/http.h"
#include "registry/registry.h"
#include "store/store.h"

/* Partitions the store by region (regions.c): cfg.region is the default
 * region, which also gets what a store written before regions holds. */
int barge_server_regions_init(struct barge_server *srv, struct barge_error **err);
/* Sets (or, with NULL, clears before stopping it) the listener whose parked
 * requests barge_server_wake resumes. */
void barge_server_set_http(struct barge_server *srv, struct barge_http_server *http);
/* For a long-polling handler (req->server is the struct barge_server): parks
 * req until the generation differs from seen or deadline_ms
 * (barge_monotonic_ms) passes, then its handler runs again
 * (barge_http_req_park). Returns false without parking when the generation
 * moved already, the deadline passed or the server is stopping: the handler
 * answers now. */
bool barge_server_park(struct barge_http_req *req, uint64_t seen, int64_t deadline_ms);

/* Drops a removed access key from the lookup cache of this process. */
void barge_server_forget_key(const char *access_key_id);
/* The registry's instance_may_pull (registry.h): whether a container
 * instance (store key "<cluster>/<id>") is registered and, with repo, whether
 * a task assigned to it and not yet stopped runs an image of repository repo
 * of barged's own registry. ud is the server. */
int barge_api_instance_may_pull(const char *instance, const char *repo, void *ud,
                                struct barge_error **err);
/* The registry's key_may (registry.h): the identity policies of the key's
 * principal, evaluated as for the ECR API (barge_api_authorize) on the
 * repository's ARN. ud is the server. */
int barge_api_registry_key_may(const char *akid, const char *action, const char *repo,
                               const char *source_ip, void *ud, struct barge_error **err);
/* The stored document of an access key, through the same short-lived cache
 * SigV4's lookup uses: 1 with *doc (a new reference), 0 when there is no such
 * key, -1 with err. */
int barge_server_key_doc(struct barge_server *srv, const char *access_key_id, json_t **doc,
                         struct barge_error **err);
/* Looks up an access key in the store for SigV4 (a barge_sigv4_lookup_fn;
 * ud is the struct barge_server). */
int barge_server_lookup_key(const char *access_key_id, void *ud,
                            struct barge_sigv4_credentials *out, struct barge_error **err);

/* Creates the admin access key on first start (kept in the store and in
 * <data_dir>/admin-credentials); with write_aws_profile, also writes it as the
 * AWS profile "barge" (credentials and config with region and endpoint). */
int barge_server_ensure_admin_key(struct barge_server *srv, int port, bool write_aws_profile,
                                  struct barge_error **err);

/* Creates the ACTIVE cluster name unless it exists (for --dev). */
int barge_server_ensure_cluster(struct barge_server *srv, const char *name,
                                struct barge_error **err);
/* Creates srv->registry under <data_dir>/registry from the configuration. */
int barge_server_registry_init(struct barge_server *srv, struct barge_error **err);

/* The web console (console.c): its pages, sign-in and API under /console. */
void barge_api_console_handle(struct barge_http_req *req, struct barge_http_resp *resp);
/* Removes console sessions past their expiry. */
int barge_api_console_reap(struct barge_server *srv, struct barge_error **err);

/* The HTTP routes barged serves (a static table). */
const struct barge_http_route *barge_server_routes(void);
/* The routes of the --metrics-listen listener: GET /metrics only. */
const struct barge_http_route *barge_server_metrics_routes(void);
/* The options barged's listeners start from: AWS's request id header, and a
 * handler's thread back in the default region after each request. */
struct barge_http_options barge_server_http_options(void);

/* Periodic housekeeping: in every barged, the registry's idle uploads and
 * local blob files; in the leader also the store-wide work (purging deleted
 * task definitions, old stopped tasks, registry lifecycle policies and the
 * store's blob copies, ...). */
void barge_server_housekeeping(struct barge_server *srv, bool leader);

#endif
