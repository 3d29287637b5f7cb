/* The store: durable documents and counters behind one interface, so that the
 * rest of barged never sees SQL. Documents are JSON objects addressed by a kind
 * ("cluster", "taskdef", ...) and a key that sorts the way listings need
 * (e.g. "family:0000000003"). Every read and write happens inside a
 * transaction; a write transaction is acknowledged only once it is durable.
 *
 * Backends: SQLite (a path, WAL mode) for one barged, PostgreSQL
 * (postgres://...) for several barged sharing one database; store.c picks one
 * by the URI. This header is the only thing other modules include. */
#ifndef BARGE_STORE_STORE_H
#define BARGE_STORE_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"

struct barge_store;
struct barge_tx;

/* Opens (creating and migrating as needed) the store at uri: a file path or
 * sqlite://PATH for SQLite, postgres://... or postgresql://... (a libpq
 * connection URI) for PostgreSQL. The caller owns the store and closes it with
 * barge_store_close. */
int barge_store_open(const char *uri, struct barge_store **out, struct barge_error **err);
void barge_store_close(struct barge_store *st);

/* Keeps the parsed form of kind's documents in memory (see doc_cache.h), for
 * kinds that are read far more often than written. A read still goes to the
 * database and the cached form is used only when the stored text is
 * unchanged, so writes by other barged sharing the database are always seen.
 * Call before the store is used by other threads. */
void barge_store_cache_kind(struct barge_store *st, const char *kind);
/* How many parses of cached kinds the cache answered, and how many it did not. */
void barge_store_cache_stats(struct barge_store *st, unsigned long *hits, unsigned long *misses);

/* Read memos: the answer of a hot read, kept in memory under a name of the
 * caller's choosing and given back to later read transactions as long as no
 * write to kind (in the transaction's region) can have been committed since it
 * was read, by this or another process on the same database. A memo is shared:
 * never modify it. Only read transactions of a store that supports them (the
 * SQLite one) keep and get memos; otherwise get answers NULL and put does
 * nothing. get returns a new reference or NULL. */
json_t *barge_store_memo_get(struct barge_tx *tx, const char *kind, const char *name);
void barge_store_memo_put(struct barge_tx *tx, const char *kind, const char *name, json_t *value);
void barge_store_memo_stats(struct barge_store *st, unsigned long *hits, unsigned long *misses);

/* Starts a transaction. A write transaction excludes other writers until it
 * ends, also those of other processes sharing the database, and sees every
 * write committed before it began; a read transaction sees one consistent
 * snapshot and never blocks. The caller ends it with commit or abort. A thread
 * must not begin a write transaction while it holds one. */
int barge_store_begin(struct barge_store *st, bool write, struct barge_tx **out,
                      struct barge_error **err);
/* The same in region (NULL: the default region) rather than the calling
 * thread's, which stays as it was: for a look into one other region. */
int barge_store_begin_in(struct barge_store *st, const char *region, bool write,
                         struct barge_tx **out, struct barge_error **err);
/* Commits and frees tx (also on failure, after rolling back). */
int barge_store_commit(struct barge_tx *tx, struct barge_error **err);
/* Rolls back and frees tx; NULL is fine. */
void barge_store_abort(struct barge_tx *tx);
static inline void barge_store_abortp(struct barge_tx **tx)
{
    barge_store_abort(*tx);
}
#define _cleanup_tx_ __attribute__((cleanup(barge_store_abortp)))

/* Reads a document. Returns 1 and a new reference in *out when found, 0 and
 * *out = NULL when not, -1 on error. */
int barge_store_get(struct barge_tx *tx, const char *kind, const char *key, json_t **out,
                    struct barge_error **err);
/* Creates or replaces a document (write transactions only). */
int barge_store_put(struct barge_tx *tx, const char *kind, const char *key, const json_t *doc,
                    struct barge_error **err);
/* Removes a document; removing a missing one is not an error. */
int barge_store_del(struct barge_tx *tx, const char *kind, const char *key,
                    struct barge_error **err);

/* Calls fn for each document of kind whose key starts with prefix and sorts
 * after `after` (NULL: from the start), in key order (descending when desc),
 * at most limit documents (0: no limit). fn returns 0 to go on, 1 to stop, -1
 * on error (with err set). doc is borrowed for the call. For a kind cached
 * with barge_store_cache_kind, doc may be shared with other readers: fn must
 * not change it, and keeps a changeable copy with json_deep_copy. */
typedef int (*barge_store_scan_fn)(const char *key, json_t *doc, void *ud,
                                   struct barge_error **err);
int barge_store_scan(struct barge_tx *tx, const char *kind, const char *prefix, const char *after,
                     bool desc, size_t limit, barge_store_scan_fn fn, void *ud,
                     struct barge_error **err);
/* Counts documents of kind whose key starts with prefix. */
int barge_store_count(struct barge_tx *tx, const char *kind, const char *prefix, int64_t *out,
                      struct barge_error **err);

/* Regions. Once barge_store_regions_init has run, the documents of every
 * kind except the global ones belong to a region: each transaction has one
 * (the region of the thread that began it, else the default region), and its
 * get, put, del, scan and count see only that region's documents of regional
 * kinds, so the same key in two regions names two documents. The region of a
 * thread is set from the request's SigV4 scope (barge_api_authenticate) and
 * by loops that visit every region (barge_store_regions). Counters named
 * "<kind>:<name>" count per region when kind is regional. */
#define BARGE_STORE_REGION_MAX 32
/* Whether s looks like an AWS region name ("eu-west-1", "us-gov-east-1"). */
bool barge_store_region_valid(const char *s);
/* Makes region (copied; NULL: the default region) the region of the
 * transactions the calling thread begins from now on. */
void barge_store_use_region(const char *region);
/* The calling thread's region, or NULL for the default one. Borrowed. */
const char *barge_store_thread_region(void);
/* Partitions st by region: the kinds in global[] (n of them) stay one
 * namespace, every other kind is regional. Documents of regional kinds
 * written before regions existed are moved to default_region, once. Call
 * before st is used by other threads. */
int barge_store_regions_init(struct barge_store *st, const char *default_region,
                             const char *const *global, size_t n, struct barge_error **err);
/* The default region (borrowed), or NULL before barge_store_regions_init. */
const char *barge_store_default_region(const struct barge_store *st);
/* The region tx works in (borrowed; NULL when st is not partitioned). */
const char *barge_store_tx_region(const struct barge_tx *tx);
/* Every region that has documents (the default one first): a new array of
 * names in *out. */
int barge_store_regions(struct barge_store *st, json_t **out, struct barge_error **err);
/* The name under which kind's documents of region are stored: "kind@region"
 * for a regional kind, kind itself for a global one (the caller frees it). */
char *barge_store_region_kind(const struct barge_store *st, const char *region, const char *kind);

/* Increments the named counter and returns its new value (first value 1). */
int barge_store_counter_next(struct barge_tx *tx, const char *name, int64_t *out,
                             struct barge_error **err);

/* Log events (CloudWatch Logs): a table of its own rather than documents,
 * because there are many small events and reads are time-range scans. Each
 * event belongs to a stream and a group, both numbered by the caller (their
 * documents live in the objects table); the store numbers events in the
 * order they were appended, and (timestamp, id) orders them everywhere. */
struct barge_store_log_event {
    int64_t id; /* assigned by append; unique, increasing */
    int64_t group;
    int64_t stream;
    int64_t timestamp;   /* epoch milliseconds */
    int64_t ingestion;   /* epoch milliseconds */
    const char *message; /* borrowed (append: from the caller; scan: for the call) */
    size_t message_len;
};

/* Appends n events to stream of group, filling each event's id. The events
 * need not be sorted. */
int barge_store_log_append(struct barge_tx *tx, int64_t group, int64_t stream,
                           struct barge_store_log_event *events, size_t n,
                           struct barge_error **err);

struct barge_store_log_query {
    int64_t group;          /* the group every event belongs to */
    const int64_t *streams; /* only these streams; NULL: every stream of the group */
    size_t n_streams;
    int64_t start, end; /* timestamps in [start, end) */
    /* A position (timestamp, id): events strictly after it (ascending scans)
     * or strictly before it (descending scans). */
    bool has_position;
    int64_t position_ts, position_id;
    bool desc;
    size_t limit; /* 0: no limit */
};
/* Calls fn for each event the query selects, ordered by (timestamp, id). fn
 * returns 0 to go on, 1 to stop, -1 on error (with err set); ev is valid for
 * the call only. */
typedef int (*barge_store_log_fn)(const struct barge_store_log_event *ev, void *ud,
                                  struct barge_error **err);
int barge_store_log_scan(struct barge_tx *tx, const struct barge_store_log_query *q,
                         barge_store_log_fn fn, void *ud, struct barge_error **err);

/* What removing events took from one stream. */
struct barge_store_log_removed {
    int64_t stream;
    int64_t events;
    int64_t bytes; /* message bytes */
};
/* Removes the group's events with timestamps before `before`; *out is a new
 * array (caller frees) of *n entries, one per stream that lost events. */
int barge_store_log_expire(struct barge_tx *tx, int64_t group, int64_t before,
                           struct barge_store_log_removed **out, size_t *n,
                           struct barge_error **err);
/* Removes every event of stream (or, with stream 0, of the whole group). */
int barge_store_log_drop(struct barge_tx *tx, int64_t group, int64_t stream,
                         struct barge_error **err);
/* The earliest and latest event timestamps of a stream; returns 1 when it has
 * events, 0 when it has none. */
int barge_store_log_bounds(struct barge_tx *tx, int64_t stream, int64_t *first, int64_t *last,
                           struct barge_error **err);

/* Byte strings kept in the store (a table of their own), for bytes that every
 * barged sharing a store must reach: image blobs, S3 object contents. A byte
 * string is named by the caller and written as numbered chunks (0, 1, ...) of
 * at most BARGE_STORE_CHUNK bytes each, so that no statement carries a whole
 * image layer. */
#define BARGE_STORE_CHUNK (1024 * 1024)
/* Writes chunk seq of name (write transactions only), replacing it. */
int barge_store_bytes_put(struct barge_tx *tx, const char *name, int64_t seq, const void *data,
                          size_t len, struct barge_error **err);
/* Reads chunk seq of name: 1 with *data (the caller frees it) and *len, 0 when
 * there is no such chunk, -1 on error. */
int barge_store_bytes_get(struct barge_tx *tx, const char *name, int64_t seq, void **data,
                          size_t *len, struct barge_error **err);
/* Removes every chunk of name. */
int barge_store_bytes_del(struct barge_tx *tx, const char *name, struct barge_error **err);
/* Copies the file open at fd (from its start) into name's chunks, each in a
 * write transaction of its own, so that a large file never holds the
 * writer lock for long. Not atomic: callers publish the bytes with a document
 * written after this returns, and readers go by that document. */
int barge_store_bytes_write_fd(struct barge_store *st, const char *name, int fd,
                               struct barge_error **err);
/* Copies the chunks of name into fd (from its current offset): 1 with *size
 * written, 0 when name has no chunks, -1 on error. */
int barge_store_bytes_to_fd(struct barge_tx *tx, const char *name, int fd, uint64_t *size,
                            struct barge_error **err);
/* Whether other processes may share st (PostgreSQL): then what one barged
 * keeps in local files must also be in the store for the others. */
bool barge_store_shared(const struct barge_store *st);

/* Which backend serves st: "sqlite" or "postgres". */
const char *barge_store_backend(const struct barge_store *st);
/* Where st lives, fit for a log line (no password). Borrowed from st. */
const char *barge_store_where(const struct barge_store *st);

/* Coordination between the processes that share a store (several barged on
 * one PostgreSQL database). */

/* A store-wide named lock held by one process at a time, e.g. the leadership
 * of the control loops. With PostgreSQL it is a session advisory lock on a
 * connection of its own, so it ends when the holder's session ends (a killed
 * process's connection closes); with SQLite a lock file next to the database. */
struct barge_store_lock;
/* Tries to take the lock name. Returns 1 with *out (the caller releases it),
 * 0 when another holder has it, -1 on error. */
int barge_store_lock_try(struct barge_store *st, const char *name, struct barge_store_lock **out,
                         struct barge_error **err);
/* Confirms, with a round trip to the database, that lock is still held;
 * returns -1 when it may have been lost (the holder must stop acting on it and
 * release it). */
int barge_store_lock_check(struct barge_store_lock *lock, struct barge_error **err);
/* Gives the lock up and frees it; NULL is fine. */
void barge_store_lock_release(struct barge_store_lock *lock);

/* Tells the other processes sharing the store that something they may wait
 * for changed (PostgreSQL NOTIFY; nothing with SQLite, which has one barged).
 * Never blocks on the database: a notifier thread sends coalesced
 * notifications. */
void barge_store_notify(struct barge_store *st);
/* Calls fn(ud) on a thread of the store whenever another process sharing the
 * store called barge_store_notify, and whenever notifications may have been
 * missed (the listening connection was lost). Until barge_store_close. */
typedef void (*barge_store_notify_fn)(void *ud);
int barge_store_subscribe(struct barge_store *st, barge_store_notify_fn fn, void *ud,
                          struct barge_error **err);

#endif
