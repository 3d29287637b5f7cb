/* The front of the store: picks the backend by the URI and forwards each call
 * through the backend's table of operations. The checks every backend would
 * repeat (no writes in a read transaction) live here, so the backends only
 * talk to their database. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "store/backend.h"
#include "store/doc_cache.h"
#include "store/memo.h"

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
    struct store_memo *memo = st->memo;
    char *dflt = st->default_region, *legacy = st->legacy_region;
    char **global = st->global_kinds;
    size_t n_global = st->n_global_kinds;
    json_t *known = st->known_regions;
    if (dflt)
        pthread_mutex_destroy(&st->regions_lock);
    st->ops->close(st);
    doc_cache_free(docs);
    store_memo_free(memo);
    free(dflt);
    free(legacy);
    for (size_t i = 0; i < n_global; i++)
        free(global[i]);
    free(global);
    json_decref(known);
}

/* --- regions --------------------------------------------------------------- */

/* Where the regions that have documents are listed (a global kind). */
#define KIND_REGION "region"
/* Marks a store whose documents written before regions have been moved. */
#define MIGRATED_KEY "regions-migrated"

static __thread char thread_region[BARGE_STORE_REGION_MAX];

bool barge_store_region_valid(const char *s)
{
    /* Two letters, one or more words, a number: "us-east-1", "us-gov-west-1". */
    size_t len = s ? strlen(s) : 0;
    if (len < 6 || len >= BARGE_STORE_REGION_MAX)
        return false;
    if (!islower((unsigned char)s[0]) || !islower((unsigned char)s[1]) || s[2] != '-')
        return false;
    const char *last = strrchr(s, '-');
    if (last == s + 2 || !last[1])
        return false;
    for (const char *p = last + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    for (const char *p = s + 3; p < last; p++)
        if (!islower((unsigned char)*p) && !(*p == '-' && p[-1] != '-' && p[1] != '-'))
            return false;
    return true;
}

void barge_store_use_region(const char *region)
{
    barge_strlcpy(thread_region, region, sizeof(thread_region));
}

const char *barge_store_thread_region(void)
{
    return thread_region[0] ? thread_region : NULL;
}

const char *barge_store_default_region(const struct barge_store *st)
{
    return st->default_region;
}

const char *barge_store_tx_region(const struct barge_tx *tx)
{
    return tx->region[0] ? tx->region : NULL;
}

static bool kind_global(const struct barge_store *st, const char *kind)
{
    for (size_t i = 0; i < st->n_global_kinds; i++)
        if (strcmp(st->global_kinds[i], kind) == 0)
            return true;
    return strcmp(kind, KIND_REGION) == 0 || strchr(kind, '@') != NULL;
}

char *barge_store_region_kind(const struct barge_store *st, const char *region, const char *kind)
{
    if (!region || !*region || kind_global(st, kind))
        return barge_xstrdup(kind);
    return barge_xasprintf("%s@%s", kind, region);
}

/* The stored name of kind in tx's region, in buf (or kind itself). */
static const char *tx_kind(const struct barge_tx *tx, const char *kind, char *buf, size_t len)
{
    if (!tx->region[0] || kind_global(tx->st, kind))
        return kind;
    snprintf(buf, len, "%s@%s", kind, tx->region);
    return buf;
}
#define KIND_BUF 128

static void mark_dirty(struct barge_tx *tx, const char *qualified_kind)
{
    if (!tx->st->memo)
        return;
    unsigned b = store_memo_bucket(qualified_kind);
    tx->memo_dirty[b / 64] |= 1ULL << (b % 64);
}

static bool region_known(struct barge_store *st, const char *region)
{
    pthread_mutex_lock(&st->regions_lock);
    bool known = json_object_get(st->known_regions, region) != NULL;
    pthread_mutex_unlock(&st->regions_lock);
    return known;
}

/* Before tx's first write to a regional kind, lists its region (once per
 * process), so that loops over every region find it. */
static int note_region(struct barge_tx *tx, const char *kind, struct barge_error **err)
{
    struct barge_store *st = tx->st;
    if (!tx->region[0] || tx->new_region || kind_global(st, kind) || region_known(st, tx->region))
        return 0;
    _cleanup_json_ json_t *doc = json_object();
    if (st->ops->put(tx, KIND_REGION, tx->region, doc, err) < 0)
        return -1;
    tx->new_region = true;
    return 0;
}

static int move_kind(struct barge_tx *tx, const char *from, const char *to,
                     struct barge_error **err);

int barge_store_regions_init(struct barge_store *st, const char *default_region,
                             const char *const *global, size_t n, struct barge_error **err)
{
    if (!barge_store_region_valid(default_region))
        return barge_error_set(err, BARGE_ERR_INVALID, "store: '%s' is not a region",
                               default_region);
    st->global_kinds = barge_xcalloc(n ? n : 1, sizeof(*st->global_kinds));
    for (size_t i = 0; i < n; i++)
        st->global_kinds[i] = barge_xstrdup(global[i]);
    st->n_global_kinds = n;
    st->default_region = barge_xstrdup(default_region);
    st->known_regions = json_object();
    pthread_mutex_init(&st->regions_lock, NULL);

    /* The documents of a store written before regions existed are the
     * default region's. They move in one write transaction, before any
     * request is served, and only once: later global kinds stay unqualified. */
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *done = NULL, *kinds = json_array();
    if (barge_store_begin(st, true, &tx, err) < 0 ||
        barge_store_get(tx, "meta", MIGRATED_KEY, &done, err) < 0)
        return -1;
    if (done) {
        st->legacy_region = barge_xstrdup(barge_json_str(done, "region", default_region));
    } else {
        st->legacy_region = barge_xstrdup(default_region);
        if (st->ops->kinds(tx, kinds, err) < 0)
            return -1;
        size_t i;
        json_t *k;
        json_array_foreach(kinds, i, k)
        {
            const char *kind = json_string_value(k);
            if (kind_global(st, kind))
                continue;
            _cleanup_free_ char *to = barge_store_region_kind(st, default_region, kind);
            if (move_kind(tx, kind, to, err) < 0)
                return -1;
            barge_info("store: the %s documents stored before regions are %s's", kind,
                       default_region);
        }
        _cleanup_json_ json_t *mark = json_pack("{ss}", "region", default_region);
        if (barge_store_put(tx, "meta", MIGRATED_KEY, mark, err) < 0)
            return -1;
    }
    _cleanup_json_ json_t *doc = json_object();
    if (st->ops->put(tx, KIND_REGION, default_region, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    json_object_set_new(st->known_regions, default_region, json_true());
    return 0;
}

struct moved {
    json_t *keys, *docs;
};

static int collect_doc(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    struct moved *m = ud;
    json_array_append_new(m->keys, json_string(key));
    json_array_append_new(m->docs, json_deep_copy(doc));
    return 0;
}

static int move_kind(struct barge_tx *tx, const char *from, const char *to,
                     struct barge_error **err)
{
    _cleanup_json_ json_t *keys = json_array(), *docs = json_array();
    struct moved m = {keys, docs};
    if (tx->st->ops->scan(tx, from, "", NULL, false, 0, collect_doc, &m, err) < 0)
        return -1;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const char *key = json_string_value(json_array_get(keys, i));
        if (tx->st->ops->put(tx, to, key, json_array_get(docs, i), err) < 0 ||
            tx->st->ops->del(tx, from, key, err) < 0)
            return -1;
    }
    return 0;
}

static int collect_region(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)doc;
    (void)err;
    json_t *out = ud;
    if (!barge_streq(key, json_string_value(json_array_get(out, 0))))
        json_array_append_new(out, json_string(key));
    return 0;
}

int barge_store_regions(struct barge_store *st, json_t **out, struct barge_error **err)
{
    *out = NULL;
    _cleanup_json_ json_t *regions = json_array();
    if (!st->default_region) {
        *out = barge_steal(&regions);
        return 0;
    }
    json_array_append_new(regions, json_string(st->default_region));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(st, false, &tx, err) < 0 ||
        st->ops->scan(tx, KIND_REGION, "", NULL, false, 0, collect_region, regions, err) < 0)
        return -1;
    *out = barge_steal(&regions);
    return 0;
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

int barge_store_begin_in(struct barge_store *st, const char *region, bool write,
                         struct barge_tx **out, struct barge_error **err)
{
    /* Before the backend's snapshot can begin (memo.h). */
    uint64_t memo_seq = st->memo ? store_memo_seq(st->memo) : 0;
    if (st->ops->begin(st, write, out, err) < 0)
        return -1;
    (*out)->memo_seq = memo_seq;
    memset((*out)->memo_dirty, 0, sizeof((*out)->memo_dirty));
    if (!region || !region[0])
        region = st->default_region;
    snprintf((*out)->region, sizeof((*out)->region), "%s",
             st->default_region && region ? region : "");
    (*out)->new_region = false;
    return 0;
}

int barge_store_begin(struct barge_store *st, bool write, struct barge_tx **out,
                      struct barge_error **err)
{
    return barge_store_begin_in(st, thread_region, write, out, err);
}

int barge_store_commit(struct barge_tx *tx, struct barge_error **err)
{
    struct barge_store *st = tx->st;
    char region[BARGE_STORE_REGION_MAX];
    snprintf(region, sizeof(region), "%s", tx->new_region ? tx->region : "");
    uint64_t dirty[4];
    memcpy(dirty, tx->memo_dirty, sizeof(dirty));
    bool memo = st->memo && (dirty[0] | dirty[1] | dirty[2] | dirty[3]);
    if (memo)
        store_memo_commit_begin(st->memo, dirty);
    int r = tx->st->ops->commit(tx, err);
    if (memo)
        store_memo_commit_end(st->memo, dirty);
    if (r < 0)
        return -1;
    if (region[0]) {
        pthread_mutex_lock(&st->regions_lock);
        json_object_set_new(st->known_regions, region, json_true());
        pthread_mutex_unlock(&st->regions_lock);
    }
    return 0;
}

void barge_store_abort(struct barge_tx *tx)
{
    if (tx)
        tx->st->ops->abort(tx);
}

int barge_store_get(struct barge_tx *tx, const char *kind, const char *key, json_t **out,
                    struct barge_error **err)
{
    char buf[KIND_BUF];
    return tx->st->ops->get(tx, tx_kind(tx, kind, buf, sizeof(buf)), key, out, err);
}

int barge_store_put(struct barge_tx *tx, const char *kind, const char *key, const json_t *doc,
                    struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: put in a read transaction");
    char buf[KIND_BUF];
    if (note_region(tx, kind, err) < 0)
        return -1;
    const char *qualified = tx_kind(tx, kind, buf, sizeof(buf));
    mark_dirty(tx, qualified);
    return tx->st->ops->put(tx, qualified, key, doc, err);
}

int barge_store_del(struct barge_tx *tx, const char *kind, const char *key,
                    struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: delete in a read transaction");
    char buf[KIND_BUF];
    const char *qualified = tx_kind(tx, kind, buf, sizeof(buf));
    mark_dirty(tx, qualified);
    return tx->st->ops->del(tx, qualified, key, err);
}

json_t *barge_store_memo_get(struct barge_tx *tx, const char *kind, const char *name)
{
    if (!tx->st->memo || tx->write)
        return NULL;
    char buf[KIND_BUF];
    return store_memo_get(tx->st->memo, tx_kind(tx, kind, buf, sizeof(buf)), name, tx->memo_seq);
}

void barge_store_memo_put(struct barge_tx *tx, const char *kind, const char *name, json_t *value)
{
    if (!tx->st->memo || tx->write)
        return;
    char buf[KIND_BUF];
    store_memo_put(tx->st->memo, tx_kind(tx, kind, buf, sizeof(buf)), name, tx->memo_seq, value);
}

void barge_store_memo_stats(struct barge_store *st, unsigned long *hits, unsigned long *misses)
{
    *hits = *misses = 0;
    if (st->memo)
        store_memo_stats(st->memo, hits, misses);
}

int barge_store_scan(struct barge_tx *tx, const char *kind, const char *prefix, const char *after,
                     bool desc, size_t limit, barge_store_scan_fn fn, void *ud,
                     struct barge_error **err)
{
    char buf[KIND_BUF];
    return tx->st->ops->scan(tx, tx_kind(tx, kind, buf, sizeof(buf)), prefix, after, desc, limit,
                             fn, ud, err);
}

int barge_store_count(struct barge_tx *tx, const char *kind, const char *prefix, int64_t *out,
                      struct barge_error **err)
{
    char buf[KIND_BUF];
    return tx->st->ops->count(tx, tx_kind(tx, kind, buf, sizeof(buf)), prefix, out, err);
}

int barge_store_counter_next(struct barge_tx *tx, const char *name, int64_t *out,
                             struct barge_error **err)
{
    if (!tx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: counter in a read transaction");
    /* "<kind>:<name>" counts in tx's region when kind is regional. The
     * region whose documents were there before regions keeps its counters
     * under their old names, so that no number is handed out twice. */
    const char *colon = strchr(name, ':');
    char kind[KIND_BUF];
    snprintf(kind, sizeof(kind), "%.*s", colon ? (int)(colon - name) : 0, name);
    if (!colon || !tx->region[0] || kind_global(tx->st, kind) || !tx->st->legacy_region ||
        strcmp(tx->region, tx->st->legacy_region) == 0)
        return tx->st->ops->counter_next(tx, name, out, err);
    _cleanup_free_ char *qualified = barge_xasprintf("%s@%s", name, tx->region);
    return tx->st->ops->counter_next(tx, qualified, out, err);
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
