/* barged's process-wide state, below both the API handlers and the control
 * loops: the configuration, the store, and the notification generation that
 * wakes whoever waits for task assignments to change (agents' long polls,
 * the control loop). It knows nothing of HTTP: the API layer hooks its
 * resumption of parked requests in through on_wake. */
#ifndef BARGE_CORE_SERVER_H
#define BARGE_CORE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/crypto.h"
#include "store/store.h"

struct barge_http_server;
struct barge_registry;

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
    /* Called by barge_server_wake with notify_lock held (the API layer's
     * resumption of parked requests, barge_server_set_http); may be NULL. */
    void (*on_wake)(struct barge_server *srv);
    struct barge_registry *registry; /* the embedded image registry (/v2/ and ECR) */
};

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
/* The current notification generation. */
uint64_t barge_server_generation(struct barge_server *srv);
/* Waits until the generation differs from seen or timeout_ms pass; returns
 * the generation. For background threads: handlers park instead. */
uint64_t barge_server_wait(struct barge_server *srv, uint64_t seen, int timeout_ms);
#endif
