/* barged's process-wide state: configuration, the store and the listener. One
 * struct barge_server exists per process; handlers reach it through their
 * request. */
#ifndef BARGE_API_SERVER_H
#define BARGE_API_SERVER_H

#include <pthread.h>
#include <stdint.h>

#include "api/http.h"
#include "common/crypto.h"
#include "common/sigv4.h"
#include "registry/registry.h"
#include "store/store.h"

struct barge_config {
    char *listen;     /* "127.0.0.1:4566" */
    char *data_dir;   /* "./barge-data" */
    char *store_uri;  /* defaults to <data_dir>/barge.db */
    char *region;     /* "us-east-1" */
    char *account_id; /* "000000000000" */
    int max_skew_seconds;
    int stopped_task_retention; /* seconds a STOPPED task stays describable */
    int deployment_retention;   /* seconds a finished service deployment is kept */
    bool dev;
    char *registry_host;         /* --registry-host, or NULL */
    int registry_gc_interval;    /* seconds between lifecycle + GC runs */
    int registry_gc_grace;       /* seconds an unreferenced blob is kept after its last use */
    int registry_upload_timeout; /* seconds an idle upload is kept */
    /* Where the master key lives unless BARGE_MASTER_KEY
     * is set (default <data_dir>/master.key), and the host name under which
     * S3 buckets are also addressed virtual-host style ("s3.example.com":
     * bucket.s3.example.com); NULL: path style only. */
    char *master_key_file;
    char *s3_host;
    char *metrics_listen; /* --metrics-listen HOST:PORT for /metrics, or NULL: not served */
    /* The address load balancer listeners bind (--lb-address, default
     * 127.0.0.1), which is also their DNSName. */
    char *lb_address;
    int console_session_ttl; /* seconds a web console sign-in lasts (console.c) */
};

struct barge_server {
    struct barge_config cfg;
    struct barge_store *store;
    struct barge_http_server *http;         /* set with barge_server_set_http */
    struct barge_http_server *metrics_http; /* the /metrics listener, or NULL */
    /* Encrypts secret values at rest (SSM parameters, Secrets Manager). */
    struct barge_crypto_key master_key;
    /* Wakes agents' long-polls when tasks change (see barge_server_notify). */
    pthread_mutex_t notify_lock;
    pthread_cond_t notify_cond;
    uint64_t notify_gen;
    struct barge_registry *registry; /* the embedded image registry (/v2/ and ECR) */
};

/* Partitions the store by region (regions.c): cfg.region is the default
 * region, which also gets what a store written before regions holds. */
int barge_server_regions_init(struct barge_server *srv, struct barge_error **err);
/* The region the calling thread serves (the request's, see
 * barge_store_use_region), else cfg.region. Borrowed. */
const char *barge_server_region(const struct barge_server *srv);

/* Initialises the parts of srv that are not configuration. */
void barge_server_init(struct barge_server *srv);
/* Tells every waiter that task assignments may have changed, in this process
 * and in the other barged sharing the store. */
void barge_server_notify(struct barge_server *srv);
/* Wakes the waiters of this process only (for changes other barged made). */
void barge_server_wake(struct barge_server *srv);
/* Sets (or, with NULL, clears before stopping it) the listener whose parked
 * requests barge_server_wake resumes. */
void barge_server_set_http(struct barge_server *srv, struct barge_http_server *http);
/* The current notification generation. */
uint64_t barge_server_generation(struct barge_server *srv);
/* Waits until the generation differs from seen or timeout_ms pass; returns
 * the generation. For background threads: handlers park instead. */
uint64_t barge_server_wait(struct barge_server *srv, uint64_t seen, int timeout_ms);
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

/* Periodic housekeeping: in every barged, the registry's idle uploads and
 * local blob files; in the leader also the store-wide work (purging deleted
 * task definitions, old stopped tasks, registry lifecycle policies and the
 * store's blob copies, ...). */
void barge_server_housekeeping(struct barge_server *srv, bool leader);

#endif
