/* What a store backend provides to the front (store.c). Only the files of
 * src/store include this: the rest of barged sees store.h. A backend embeds
 * struct barge_store, struct barge_tx and struct barge_store_lock as the first
 * member of its own structs and fills a table of operations; the front checks
 * what is common to all backends (writes only in write transactions) and
 * dispatches. */
#ifndef BARGE_STORE_BACKEND_H
#define BARGE_STORE_BACKEND_H

#include <pthread.h>

#include "store/store.h"

struct doc_cache;
struct store_memo;

struct store_ops;

struct barge_store {
    const struct store_ops *ops;
    const char *where;       /* for messages: a path, or a URI without its password */
    struct doc_cache *docs;  /* parsed documents (store.c owns it); NULL until a kind is cached */
    struct store_memo *memo; /* read memos (memo.h; store.c frees it): NULL when off */
    /* Regions (store.c owns them): NULL until barge_store_regions_init. */
    char *default_region;
    char *legacy_region; /* the region of what was stored before regions */
    char **global_kinds;
    size_t n_global_kinds;
    /* Regions known to have their "region" document, so that a put in one
     * need not write it again. */
    pthread_mutex_t regions_lock;
    json_t *known_regions;
};

struct barge_tx {
    struct barge_store *st;
    bool write;
    char region[BARGE_STORE_REGION_MAX]; /* "" when st is not partitioned */
    bool new_region;                     /* wrote the "region" document of region */
    /* Read memos (memo.h): where a read transaction began, the buckets of
     * the kinds a write transaction wrote. */
    uint64_t memo_seq;
    uint64_t memo_dirty[4];
};

struct barge_store_lock {
    struct barge_store *st;
};

struct store_ops {
    const char *name;
    bool shared; /* other processes may use the same store */
    void (*close)(struct barge_store *st);
    int (*begin)(struct barge_store *st, bool write, struct barge_tx **out,
                 struct barge_error **err);
    int (*commit)(struct barge_tx *tx, struct barge_error **err);
    void (*abort)(struct barge_tx *tx);
    int (*get)(struct barge_tx *tx, const char *kind, const char *key, json_t **out,
               struct barge_error **err);
    int (*put)(struct barge_tx *tx, const char *kind, const char *key, const json_t *doc,
               struct barge_error **err);
    int (*del)(struct barge_tx *tx, const char *kind, const char *key, struct barge_error **err);
    int (*scan)(struct barge_tx *tx, const char *kind, const char *prefix, const char *after,
                bool desc, size_t limit, barge_store_scan_fn fn, void *ud,
                struct barge_error **err);
    int (*count)(struct barge_tx *tx, const char *kind, const char *prefix, int64_t *out,
                 struct barge_error **err);
    int (*counter_next)(struct barge_tx *tx, const char *name, int64_t *out,
                        struct barge_error **err);
    /* Appends the name of every kind that has documents to out (an array). */
    int (*kinds)(struct barge_tx *tx, json_t *out, struct barge_error **err);
    int (*lock_try)(struct barge_store *st, const char *name, struct barge_store_lock **out,
                    struct barge_error **err);
    int (*lock_check)(struct barge_store_lock *lock, struct barge_error **err);
    void (*lock_release)(struct barge_store_lock *lock);
    void (*notify)(struct barge_store *st);
    int (*subscribe)(struct barge_store *st, barge_store_notify_fn fn, void *ud,
                     struct barge_error **err);
    /* Log events. */
    int (*log_append)(struct barge_tx *tx, int64_t group, int64_t stream,
                      struct barge_store_log_event *events, size_t n, struct barge_error **err);
    int (*log_scan)(struct barge_tx *tx, const struct barge_store_log_query *q,
                    barge_store_log_fn fn, void *ud, struct barge_error **err);
    int (*log_expire)(struct barge_tx *tx, int64_t group, int64_t before,
                      struct barge_store_log_removed **out, size_t *n, struct barge_error **err);
    int (*log_drop)(struct barge_tx *tx, int64_t group, int64_t stream, struct barge_error **err);
    int (*bytes_put)(struct barge_tx *tx, const char *name, int64_t seq, const void *data,
                     size_t len, struct barge_error **err);
    int (*bytes_get)(struct barge_tx *tx, const char *name, int64_t seq, void **data, size_t *len,
                     struct barge_error **err);
    int (*bytes_del)(struct barge_tx *tx, const char *name, struct barge_error **err);
    int (*log_bounds)(struct barge_tx *tx, int64_t stream, int64_t *first, int64_t *last,
                      struct barge_error **err);
};

/* Parses a document's stored text for a backend's get (shared false: the
 * caller may change it) and scan (shared true: see barge_store_scan), through
 * the parsed-document cache for the kinds it holds. */
json_t *barge_store_parse(struct barge_store *st, const char *kind, const char *key,
                          const char *text, size_t len, bool shared, json_error_t *jerr);

/* The backends' constructors: path is a file path; uri a libpq connection
 * URI (postgres://...). */
int barge_store_sqlite_open(const char *path, struct barge_store **out, struct barge_error **err);
int barge_store_postgres_open(const char *uri, struct barge_store **out, struct barge_error **err);

#endif
