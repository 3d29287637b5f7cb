/* The front of the store: picks the backend by the URI and forwards each call
 * through the backend's table of operations. The checks every backend would
 * repeat (no writes in a read transaction) live here, so the backends only
 * talk to their database. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "store/backend.h"
#include "store/doc_cache.h"

int barge_store_open(const char *uri, struct barge_store **out, struct barge_error **err)
{
    if (barge_str_has_prefix(uri, "postgres://") || barge_str_has_prefix(uri, "postgresql://"))
        return barge_store_postgres_open(uri, out, err);
    if (barge_str_has_prefix(uri, "sqlite://"))
        return barge_store_sqlite_open(uri + strlen("sqlite://"), out, err);
    if (strstr(uri, "://"))
        return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                               "store: unsupported store '%s' (use a file path, sqlite://PATH "
                               "or postgres://...)",
                               uri);
    return barge_store_sqlite_open(uri, out, err);
}

void barge_store_close(struct barge_store *st)
{
    if (!st)
        return;
    struct doc_cache *docs = st->docs;
    st->ops->close(st);
    doc_cache_free(docs);
}

void barge_store_cache_kind(struct barge_store *st, const char *kind)
{
    if (!st->docs)
        st->docs = doc_cache_new();
    doc_cache_add_kind(st->docs, kind);
}

void barge_store_cache_stats(struct barge_store *st, unsigned long *hits, unsigned long *misses)
{
    *hits = *misses = 0;
    if (st->docs)
        doc_cache_stats(st->docs, hits, misses);
}

json_t *barge_store_parse(struct barge_store *st, const char *kind, const char *key,
                          const char *text, size_t len, bool shared, json_error_t *jerr)
{
    return doc_cache_parse(st->docs, kind, key, text, len, shared, jerr);
}

const char *barge_store_backend(const struct barge_store *st)
{
    return st->ops->name;
}

const char *barge_store_where(const struct barge_store *st)
{
    return st->where;
}

int barge_store_begin(struct barge_store *st, bool write, struct barge_tx **out,
                      struct barge_error **err)
{
    return st->ops->begin(st, write, out, err);
}

int barge_store_commit(struct barge_tx *tx, struct barge_error **err)
{
    return tx->st->ops->commit(tx, err);
}

void barge_store_abort(struct barge_tx *tx)
{
    if (tx)
        tx->st->ops->abort(tx);
}

int barge_store_get(struct barge_tx *tx, const char *kind, const char *key, json_t **out,
                    struct barge_error **err)
{
    return tx->st->ops->get(tx, kind, key, out, err);
}

int barge_store_put(struct barge_tx *tx, const char *kind, const char *key, const json_t *doc,
                    struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: put in a read transaction");
    return tx->st->ops->put(tx, kind, key, doc, err);
}

int barge_store_del(struct barge_tx *tx, const char *kind, const char *key,
                    struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: delete in a read transaction");
    return tx->st->ops->del(tx, kind, key, err);
}

int barge_store_scan(struct barge_tx *tx, const char *kind, const char *prefix, const char *after,
                     bool desc, size_t limit, barge_store_scan_fn fn, void *ud,
                     struct barge_error **err)
{
    return tx->st->ops->scan(tx, kind, prefix, after, desc, limit, fn, ud, err);
}

int barge_store_count(struct barge_tx *tx, const char *kind, const char *prefix, int64_t *out,
                      struct barge_error **err)
{
    return tx->st->ops->count(tx, kind, prefix, out, err);
}

int barge_store_counter_next(struct barge_tx *tx, const char *name, int64_t *out,
                             struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: counter in a read transaction");
    return tx->st->ops->counter_next(tx, name, out, err);
}

int barge_store_lock_try(struct barge_store *st, const char *name, struct barge_store_lock **out,
                         struct barge_error **err)
{
    *out = NULL;
    return st->ops->lock_try(st, name, out, err);
}

int barge_store_lock_check(struct barge_store_lock *lock, struct barge_error **err)
{
    return lock->st->ops->lock_check(lock, err);
}

void barge_store_lock_release(struct barge_store_lock *lock)
{
    if (lock)
        lock->st->ops->lock_release(lock);
}

void barge_store_notify(struct barge_store *st)
{
    if (st && st->ops->notify)
        st->ops->notify(st);
}

int barge_store_subscribe(struct barge_store *st, barge_store_notify_fn fn, void *ud,
                          struct barge_error **err)
{
    return st->ops->subscribe ? st->ops->subscribe(st, fn, ud, err) : 0;
}

int barge_store_log_append(struct barge_tx *tx, int64_t group, int64_t stream,
                           struct barge_store_log_event *events, size_t n, struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: log append in a read transaction");
    return tx->st->ops->log_append(tx, group, stream, events, n, err);
}

int barge_store_log_scan(struct barge_tx *tx, const struct barge_store_log_query *q,
                         barge_store_log_fn fn, void *ud, struct barge_error **err)
{
    return tx->st->ops->log_scan(tx, q, fn, ud, err);
}

int barge_store_log_expire(struct barge_tx *tx, int64_t group, int64_t before,
                           struct barge_store_log_removed **out, size_t *n,
                           struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: log expiry in a read transaction");
    return tx->st->ops->log_expire(tx, group, before, out, n, err);
}

int barge_store_log_drop(struct barge_tx *tx, int64_t group, int64_t stream,
                         struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: log drop in a read transaction");
    return tx->st->ops->log_drop(tx, group, stream, err);
}

int barge_store_log_bounds(struct barge_tx *tx, int64_t stream, int64_t *first, int64_t *last,
                           struct barge_error **err)
{
    return tx->st->ops->log_bounds(tx, stream, first, last, err);
}

bool barge_store_shared(const struct barge_store *st)
{
    return st->ops->shared;
}

int barge_store_bytes_put(struct barge_tx *tx, const char *name, int64_t seq, const void *data,
                          size_t len, struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: bytes put in a read transaction");
    if (len > BARGE_STORE_CHUNK)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: a chunk of %zu bytes is too big",
                               len);
    return tx->st->ops->bytes_put(tx, name, seq, data, len, err);
}

int barge_store_bytes_get(struct barge_tx *tx, const char *name, int64_t seq, void **data,
                          size_t *len, struct barge_error **err)
{
    *data = NULL;
    *len = 0;
    return tx->st->ops->bytes_get(tx, name, seq, data, len, err);
}

int barge_store_bytes_del(struct barge_tx *tx, const char *name, struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL,
                               "store: bytes delete in a read transaction");
    return tx->st->ops->bytes_del(tx, name, err);
}

int barge_store_bytes_write_fd(struct barge_store *st, const char *name, int fd,
                               struct barge_error **err)
{
    _cleanup_free_ char *buf = barge_xmalloc(BARGE_STORE_CHUNK);
    off_t off = 0;
    for (int64_t seq = 0;; seq++) {
        size_t have = 0;
        while (have < BARGE_STORE_CHUNK) {
            ssize_t n = pread(fd, buf + have, BARGE_STORE_CHUNK - have, off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return barge_error_set_errno(err, BARGE_ERR_IO, "store: cannot read '%s'", name);
            if (n == 0)
                break;
            have += (size_t)n;
            off += n;
        }
        /* One short write transaction a chunk: the store's writer lock is
         * never held for a whole image layer. An empty byte string still
         * has its chunk 0, so that it exists. */
        if (have > 0 || seq == 0) {
            struct barge_tx *tx = NULL;
            if (barge_store_begin(st, true, &tx, err) < 0)
                return -1;
            if (barge_store_bytes_put(tx, name, seq, buf, have, err) < 0) {
                barge_store_abort(tx);
                return -1;
            }
            if (barge_store_commit(tx, err) < 0)
                return -1;
        }
        if (have < BARGE_STORE_CHUNK)
            return 0;
    }
}

int barge_store_bytes_to_fd(struct barge_tx *tx, const char *name, int fd, uint64_t *size,
                            struct barge_error **err)
{
    *size = 0;
    for (int64_t seq = 0;; seq++) {
        _cleanup_free_ void *data = NULL;
        size_t len;
        int r = barge_store_bytes_get(tx, name, seq, &data, &len, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return seq > 0;
        for (size_t done = 0; done < len;) {
            ssize_t n = write(fd, (char *)data + done, len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return barge_error_set_errno(err, BARGE_ERR_IO, "store: cannot write '%s'", name);
            done += (size_t)n;
        }
        *size += len;
    }
}
