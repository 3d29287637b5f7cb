/* The SQLite backend of store.h. One database file in WAL mode with
 * synchronous=FULL, so a commit that returned is on disk; readers use their own
 * connections and never block the writer. Writers are serialised by a mutex in
 * front of BEGIN IMMEDIATE, because SQLite's busy handler sleeps in coarse
 * steps and would add milliseconds under contention. Connections are pooled so
 * each transaction has one to itself. One barged uses the file at a time:
 * store-wide locks are lock files (flock) and notifications stay in-process.
 * Deleted and overwritten content is zeroed (secure_delete), so that a value
 * replaced by its sealed form does not linger in free space of the file. */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "store/backend.h"
#include "store/memo.h"

enum {
    STMT_GET,
    STMT_PUT,
    STMT_DEL,
    STMT_SCAN_ASC,
    STMT_SCAN_DESC,
    STMT_COUNT,
    STMT_COUNTER,
    STMT_KINDS,
    STMT_BEGIN,
    STMT_BEGIN_WRITE,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_LOG_APPEND,
    STMT_LOG_BOUNDS,
    STMT_BYTES_PUT,
    STMT_BYTES_GET,
    STMT_BYTES_DEL,
    N_STMT
};

static const char *stmt_sql[N_STMT] = {
    [STMT_GET] = "SELECT doc FROM objects WHERE kind = ?1 AND key = ?2",
    [STMT_PUT] = "INSERT INTO objects(kind, key, doc) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT(kind, key) DO UPDATE SET doc = excluded.doc",
    [STMT_DEL] = "DELETE FROM objects WHERE kind = ?1 AND key = ?2",
    [STMT_SCAN_ASC] = "SELECT key, doc FROM objects WHERE kind = ?1 AND key >= ?2 AND key < ?3 "
                      "AND key > ?4 ORDER BY key ASC LIMIT ?5",
    [STMT_SCAN_DESC] = "SELECT key, doc FROM objects WHERE kind = ?1 AND key >= ?2 AND key < ?3 "
                       "AND key < ?4 ORDER BY key DESC LIMIT ?5",
    [STMT_COUNT] = "SELECT count(*) FROM objects WHERE kind = ?1 AND key >= ?2 AND key < ?3",
    [STMT_COUNTER] = "INSERT INTO counters(name, value) VALUES (?1, 1) "
                     "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
    [STMT_KINDS] = "SELECT DISTINCT kind FROM objects ORDER BY kind",
    /* Prepared once: parsing them on every transaction showed in profiles. */
    [STMT_BEGIN] = "BEGIN",
    [STMT_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_LOG_APPEND] = "INSERT INTO log_events(grp, stream, ts, ingest, msg) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_LOG_BOUNDS] = "SELECT (SELECT min(ts) FROM log_events WHERE stream = ?1), "
                        "(SELECT max(ts) FROM log_events WHERE stream = ?1)",
    [STMT_BYTES_PUT] = "INSERT OR REPLACE INTO bytes(name, seq, data) VALUES (?1, ?2, ?3)",
    [STMT_BYTES_GET] = "SELECT data FROM bytes WHERE name = ?1 AND seq = ?2",
    [STMT_BYTES_DEL] = "DELETE FROM bytes WHERE name = ?1",
};

/* Each migration moves the schema one version up; never edit a released one. */
static const char *migrations[] = {
    "CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, "
    "PRIMARY KEY (kind, key)) WITHOUT ROWID;"
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
    /* Log events: AUTOINCREMENT so that an id is never reused, even after
     * the newest event was deleted (ids are in eventIds and paging tokens). */
    "CREATE TABLE log_events (id INTEGER PRIMARY KEY AUTOINCREMENT, grp INTEGER NOT NULL, "
    "stream INTEGER NOT NULL, ts INTEGER NOT NULL, ingest INTEGER NOT NULL, msg TEXT NOT NULL);"
    "CREATE INDEX log_events_stream ON log_events(stream, ts, id);"
    "CREATE INDEX log_events_group ON log_events(grp, ts, id);",
    /* Byte strings in chunks (store.h). */
    "CREATE TABLE bytes (name TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, "
    "PRIMARY KEY (name, seq)) WITHOUT ROWID;",
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[N_STMT];
    struct conn *next;
};

struct sqlite_store {
    struct barge_store base;
    char *path;
    pthread_mutex_t pool_lock;
    pthread_mutex_t write_lock;
    struct conn *idle;
};

struct sqlite_tx {
    struct barge_tx base;
    struct sqlite_store *st;
    struct conn *c;
    bool begun; /* BEGIN ran: a read transaction begins at its first read */
};

struct sqlite_lock {
    struct barge_store_lock base;
    int fd;
};

static const struct store_ops sqlite_ops;

static int db_error(struct barge_error **err, sqlite3 *db, const char *what)
{
    int code = sqlite3_errcode(db);
    enum barge_errcode ec = (code == SQLITE_FULL || code == SQLITE_IOERR || code == SQLITE_CANTOPEN)
                                ? BARGE_ERR_IO
                                : BARGE_ERR_INTERNAL;
    return barge_error_set(err, ec, "store: %s: %s", what, sqlite3_errmsg(db));
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < N_STMT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close(c->db);
    free(c);
}

static int conn_open(struct sqlite_store *st, bool prepare, struct conn **out,
                     struct barge_error **err)
{
    struct conn *c = barge_xcalloc(1, sizeof(*c));
    int rc = sqlite3_open_v2(
        st->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        barge_error_set(err, BARGE_ERR_IO, "store: cannot open '%s': %s", st->path,
                        c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        conn_free(c);
        return -1;
    }
    sqlite3_busy_timeout(c->db, 30000);
    char *msg = NULL;
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; "
                     "PRAGMA secure_delete=ON;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        barge_error_set(err, BARGE_ERR_IO, "store: cannot configure '%s': %s", st->path,
                        msg ? msg : "?");
        sqlite3_free(msg);
        conn_free(c);
        return -1;
    }
    if (prepare) {
        for (int i = 0; i < N_STMT; i++) {
            if (sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[i],
                                   NULL) != SQLITE_OK) {
                db_error(err, c->db, "prepare");
                conn_free(c);
                return -1;
            }
        }
    }
    *out = c;
    return 0;
}

static int migrate(struct sqlite_store *st, struct barge_error **err)
{
    struct conn *c;
    if (conn_open(st, false, &c, err) < 0)
        return -1;
    int ret = -1;
    char *msg = NULL;
    _cleanup_free_ char *set = NULL;
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
        goto out;
    sqlite3_stmt *s = NULL;
    int version = 0, target = (int)BARGE_ARRAY_SIZE(migrations);
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > target) {
        barge_error_set(err, BARGE_ERR_CONFLICT,
                        "store: '%s' has schema version %d, newer than this barged (%d)", st->path,
                        version, target);
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        goto out_noerr;
    }
    for (int v = version; v < target; v++) {
        if (sqlite3_exec(c->db, migrations[v], NULL, NULL, &msg) != SQLITE_OK)
            goto out;
        barge_info("store: migrated '%s' to schema version %d", st->path, v + 1);
    }
    set = barge_xasprintf("PRAGMA user_version = %d", target);
    if (sqlite3_exec(c->db, set, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        goto out;
    ret = 0;
out:
    if (ret < 0 && (!err || !*err)) {
        barge_error_set(err, BARGE_ERR_IO, "store: migrating '%s': %s", st->path,
                        msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
out_noerr:
    sqlite3_free(msg);
    conn_free(c);
    return ret;
}

static void sqlite_close(struct barge_store *base)
{
    struct sqlite_store *st = (struct sqlite_store *)base;
    while (st->idle) {
        struct conn *c = st->idle;
        st->idle = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&st->pool_lock);
    pthread_mutex_destroy(&st->write_lock);
    free(st->path);
    free(st);
}

int barge_store_sqlite_open(const char *path, struct barge_store **out, struct barge_error **err)
{
    struct sqlite_store *st = barge_xcalloc(1, sizeof(*st));
    st->base.ops = &sqlite_ops;
    st->path = barge_xstrdup(path);
    st->base.where = st->path;
    pthread_mutex_init(&st->pool_lock, NULL);
    pthread_mutex_init(&st->write_lock, NULL);
    if (migrate(st, err) < 0) {
        sqlite_close(&st->base);
        return -1;
    }
    /* Every process that opens the file maps the same counters, so memos
     * see writes by another barged on it too. */
    _cleanup_free_ char *memo = barge_xasprintf("%s.memo", path);
    st->base.memo = store_memo_open(memo);
    *out = &st->base;
    return 0;
}

/* Runs a statement without results (the transaction verbs). */
static int run_stmt(struct conn *c, int which)
{
    sqlite3_stmt *s = c->stmts[which];
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static struct conn *pool_take(struct sqlite_store *st, struct barge_error **err)
{
    pthread_mutex_lock(&st->pool_lock);
    struct conn *c = st->idle;
    if (c)
        st->idle = c->next;
    pthread_mutex_unlock(&st->pool_lock);
    if (!c && conn_open(st, true, &c, err) < 0)
        return NULL;
    c->next = NULL;
    return c;
}

static void pool_give(struct sqlite_store *st, struct conn *c)
{
    pthread_mutex_lock(&st->pool_lock);
    c->next = st->idle;
    st->idle = c;
    pthread_mutex_unlock(&st->pool_lock);
}

static int sqlite_begin(struct barge_store *base, bool write, struct barge_tx **out,
                        struct barge_error **err)
{
    struct sqlite_store *st = (struct sqlite_store *)base;
    struct conn *c = pool_take(st, err);
    if (!c)
        return -1;
    if (write)
        pthread_mutex_lock(&st->write_lock);
    /* A read transaction answered from memos (memo.h) never reads, so its
     * BEGIN waits for the first statement (begin_reads). */
    if (write && run_stmt(c, STMT_BEGIN_WRITE) != SQLITE_OK) {
        db_error(err, c->db, "begin");
        if (write)
            pthread_mutex_unlock(&st->write_lock);
        pool_give(st, c);
        return -1;
    }
    struct sqlite_tx *tx = barge_xcalloc(1, sizeof(*tx));
    tx->base.st = base;
    tx->base.write = write;
    tx->st = st;
    tx->c = c;
    tx->begun = write;
    *out = &tx->base;
    return 0;
}

static void tx_end(struct sqlite_tx *tx)
{
    if (tx->base.write)
        pthread_mutex_unlock(&tx->st->write_lock);
    pool_give(tx->st, tx->c);
    free(tx);
}

static int sqlite_commit(struct barge_tx *base, struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    int ret = 0;
    if (tx->begun && run_stmt(tx->c, STMT_COMMIT) != SQLITE_OK) {
        ret = db_error(err, tx->c->db, "commit");
        run_stmt(tx->c, STMT_ROLLBACK);
    }
    tx_end(tx);
    return ret;
}

static void sqlite_abort(struct barge_tx *base)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    if (tx->begun)
        run_stmt(tx->c, STMT_ROLLBACK);
    tx_end(tx);
}

/* The connection's cached statement, or, when that one is in the middle of a
 * scan further up the stack (a scan callback reading the store), a fresh one
 * that *tmp owns and the caller finalizes. */
/* Runs a read transaction's BEGIN before its first statement. A deferred
 * BEGIN takes no lock and cannot meet a busy database; should it fail all the
 * same, each read would see its own snapshot, so it is logged. */
static void begin_reads(struct sqlite_tx *tx)
{
    if (tx->begun)
        return;
    tx->begun = true;
    if (run_stmt(tx->c, STMT_BEGIN) != SQLITE_OK)
        barge_warn("store: begin: %s", sqlite3_errmsg(tx->c->db));
}

static sqlite3_stmt *stmt(struct sqlite_tx *tx, int which, sqlite3_stmt **tmp)
{
    begin_reads(tx);
    sqlite3_stmt *s = tx->c->stmts[which];
    *tmp = NULL;
    if (sqlite3_stmt_busy(s)) {
        if (sqlite3_prepare_v2(tx->c->db, stmt_sql[which], -1, tmp, NULL) != SQLITE_OK)
            abort();
        return *tmp;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static void finalizep(sqlite3_stmt **s)
{
    sqlite3_finalize(*s);
}
#define _cleanup_stmt_ __attribute__((cleanup(finalizep)))

static int sqlite_get(struct barge_tx *base, const char *kind, const char *key, json_t **out,
                      struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    *out = NULL;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_GET, &tmp);
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return db_error(err, tx->c->db, "get");
    json_error_t jerr;
    const char *text = (const char *)sqlite3_column_text(s, 0);
    *out = barge_store_parse(base->st, kind, key, text, (size_t)sqlite3_column_bytes(s, 0), false,
                             &jerr);
    sqlite3_reset(s);
    if (!*out)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: corrupt %s '%s': %s", kind, key,
                               jerr.text);
    return 1;
}

static int sqlite_put(struct barge_tx *base, const char *kind, const char *key, const json_t *doc,
                      struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_free_ char *text = barge_json_dump(doc);
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_PUT, &tmp);
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_error(err, tx->c->db, "put");
    return 0;
}

static int sqlite_del(struct barge_tx *base, const char *kind, const char *key,
                      struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_DEL, &tmp);
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_error(err, tx->c->db, "delete");
    return 0;
}

static int sqlite_bytes_put(struct barge_tx *base, const char *name, int64_t seq, const void *data,
                            size_t len, struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_BYTES_PUT, &tmp);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_blob64(s, 3, len ? data : "", len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_error(err, tx->c->db, "bytes put");
    return 0;
}

static int sqlite_bytes_get(struct barge_tx *base, const char *name, int64_t seq, void **data,
                            size_t *len, struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_BYTES_GET, &tmp);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return 0;
    }
    if (rc != SQLITE_ROW)
        return db_error(err, tx->c->db, "bytes get");
    *len = (size_t)sqlite3_column_bytes(s, 0);
    *data = barge_xmalloc(*len ? *len : 1);
    if (*len)
        memcpy(*data, sqlite3_column_blob(s, 0), *len);
    sqlite3_reset(s);
    return 1;
}

static int sqlite_bytes_del(struct barge_tx *base, const char *name, struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_BYTES_DEL, &tmp);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_error(err, tx->c->db, "bytes delete");
    return 0;
}

/* Keys are ASCII; 0xff sorts after every byte a key can hold, so prefix+0xff
 * bounds the range of keys that start with prefix. It is bound as TEXT: SQLite
 * orders every TEXT value before every BLOB. */
static char *upper_bound(const char *prefix)
{
    return barge_xasprintf("%s\xff", prefix ? prefix : "");
}

static int sqlite_scan(struct barge_tx *base, const char *kind, const char *prefix,
                       const char *after, bool desc, size_t limit, barge_store_scan_fn fn, void *ud,
                       struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_free_ char *hi = upper_bound(prefix);
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, desc ? STMT_SCAN_DESC : STMT_SCAN_ASC, &tmp);
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, hi, (int)strlen(hi), SQLITE_STATIC);
    if (after)
        sqlite3_bind_text(s, 4, after, -1, SQLITE_STATIC);
    else if (desc)
        sqlite3_bind_text(s, 4, hi, (int)strlen(hi), SQLITE_STATIC);
    else
        sqlite3_bind_text(s, 4, "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, limit ? (sqlite3_int64)limit : -1);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        json_error_t jerr;
        json_t *doc =
            barge_store_parse(base->st, kind, key, (const char *)sqlite3_column_text(s, 1),
                              (size_t)sqlite3_column_bytes(s, 1), true, &jerr);
        if (!doc) {
            barge_error_set(err, BARGE_ERR_INTERNAL, "store: corrupt %s '%s': %s", kind, key,
                            jerr.text);
            sqlite3_reset(s);
            return -1;
        }
        _cleanup_free_ char *key_copy = barge_xstrdup(key);
        int r = fn(key_copy, doc, ud, err);
        json_decref(doc);
        if (r < 0) {
            sqlite3_reset(s);
            return -1;
        }
        if (r > 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(err, tx->c->db, "scan");
    sqlite3_reset(s);
    return 0;
}

static int sqlite_count(struct barge_tx *base, const char *kind, const char *prefix, int64_t *out,
                        struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_free_ char *hi = upper_bound(prefix);
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_COUNT, &tmp);
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, hi, (int)strlen(hi), SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW)
        return db_error(err, tx->c->db, "count");
    *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

static int sqlite_counter_next(struct barge_tx *base, const char *name, int64_t *out,
                               struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_COUNTER, &tmp);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW)
        return db_error(err, tx->c->db, "counter");
    *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

static int sqlite_kinds(struct barge_tx *base, json_t *out, struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)base;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_KINDS, &tmp);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(out, json_string((const char *)sqlite3_column_text(s, 0)));
    if (rc != SQLITE_DONE)
        return db_error(err, tx->c->db, "kinds");
    sqlite3_reset(s);
    return 0;
}

/* --- log events ---------------------------------------------------------- */

static int sqlite_log_append(struct barge_tx *btx, int64_t group, int64_t stream,
                             struct barge_store_log_event *events, size_t n,
                             struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)btx;
    if (!btx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: log append in a read transaction");
    for (size_t i = 0; i < n; i++) {
        _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
        sqlite3_stmt *s = stmt(tx, STMT_LOG_APPEND, &tmp);
        sqlite3_bind_int64(s, 1, group);
        sqlite3_bind_int64(s, 2, stream);
        sqlite3_bind_int64(s, 3, events[i].timestamp);
        sqlite3_bind_int64(s, 4, events[i].ingestion);
        sqlite3_bind_text(s, 5, events[i].message, (int)events[i].message_len, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            return db_error(err, tx->c->db, "log append");
        events[i].id = sqlite3_last_insert_rowid(tx->c->db);
        events[i].group = group;
        events[i].stream = stream;
    }
    return 0;
}

static int sqlite_log_scan(struct barge_tx *btx, const struct barge_store_log_query *q,
                           barge_store_log_fn fn, void *ud, struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)btx;
    /* The statement depends on how many streams are named, so it is built
     * per call; the indexes on (stream, ts, id) and (grp, ts, id) serve the
     * ordered range either way. */
    size_t cap = 256 + q->n_streams * 12;
    char *sql = barge_xmalloc(cap);
    size_t len = (size_t)snprintf(sql, cap,
                                  "SELECT id, stream, ts, ingest, msg FROM log_events WHERE "
                                  "grp = ?1 AND ts >= ?2 AND ts < ?3");
    if (q->has_position)
        len += (size_t)snprintf(sql + len, cap - len, " AND (ts, id) %s (?4, ?5)",
                                q->desc ? "<" : ">");
    if (q->streams) {
        len += (size_t)snprintf(sql + len, cap - len, " AND stream IN (");
        for (size_t i = 0; i < q->n_streams; i++)
            len += (size_t)snprintf(sql + len, cap - len, "%s?%zu", i ? "," : "", 7 + i);
        len += (size_t)snprintf(sql + len, cap - len, ")");
    }
    snprintf(sql + len, cap - len, " ORDER BY ts %s, id %s LIMIT ?6", q->desc ? "DESC" : "ASC",
             q->desc ? "DESC" : "ASC");
    sqlite3_stmt *s = NULL;
    begin_reads(tx);
    int rc = sqlite3_prepare_v2(tx->c->db, sql, -1, &s, NULL);
    free(sql);
    if (rc != SQLITE_OK)
        return db_error(err, tx->c->db, "log scan");
    if (q->streams && q->n_streams == 0) {
        sqlite3_finalize(s);
        return 0;
    }
    sqlite3_bind_int64(s, 1, q->group);
    sqlite3_bind_int64(s, 2, q->start);
    sqlite3_bind_int64(s, 3, q->end);
    if (q->has_position) {
        sqlite3_bind_int64(s, 4, q->position_ts);
        sqlite3_bind_int64(s, 5, q->position_id);
    }
    sqlite3_bind_int64(s, 6, q->limit ? (sqlite3_int64)q->limit : -1);
    for (size_t i = 0; q->streams && i < q->n_streams; i++)
        sqlite3_bind_int64(s, 7 + (int)i, q->streams[i]);
    int ret = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct barge_store_log_event ev = {
            .id = sqlite3_column_int64(s, 0),
            .group = q->group,
            .stream = sqlite3_column_int64(s, 1),
            .timestamp = sqlite3_column_int64(s, 2),
            .ingestion = sqlite3_column_int64(s, 3),
            .message = (const char *)sqlite3_column_text(s, 4),
            .message_len = (size_t)sqlite3_column_bytes(s, 4),
        };
        int r = fn(&ev, ud, err);
        if (r < 0) {
            ret = -1;
            break;
        }
        if (r > 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = db_error(err, tx->c->db, "log scan");
    sqlite3_finalize(s);
    return ret;
}

static int sqlite_log_expire(struct barge_tx *btx, int64_t group, int64_t before,
                             struct barge_store_log_removed **out, size_t *n,
                             struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)btx;
    *out = NULL;
    *n = 0;
    if (!btx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: log expiry in a read transaction");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(tx->c->db,
                           "SELECT stream, count(*), sum(length(CAST(msg AS BLOB))) FROM "
                           "log_events WHERE grp = ?1 AND ts < ?2 GROUP BY stream",
                           -1, &s, NULL) != SQLITE_OK)
        return db_error(err, tx->c->db, "log expiry");
    sqlite3_bind_int64(s, 1, group);
    sqlite3_bind_int64(s, 2, before);
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = barge_xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[*n].stream = sqlite3_column_int64(s, 0);
        (*out)[*n].events = sqlite3_column_int64(s, 1);
        (*out)[*n].bytes = sqlite3_column_int64(s, 2);
        (*n)++;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        goto fail;
    if (*n == 0)
        return 0;
    if (sqlite3_prepare_v2(tx->c->db, "DELETE FROM log_events WHERE grp = ?1 AND ts < ?2", -1, &s,
                           NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(s, 1, group);
    sqlite3_bind_int64(s, 2, before);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        goto fail;
    return 0;
fail:
    free(*out);
    *out = NULL;
    *n = 0;
    return db_error(err, tx->c->db, "log expiry");
}

static int sqlite_log_drop(struct barge_tx *btx, int64_t group, int64_t stream,
                           struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)btx;
    if (!btx->write)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: log drop in a read transaction");
    sqlite3_stmt *s = NULL;
    const char *sql = stream ? "DELETE FROM log_events WHERE grp = ?1 AND stream = ?2"
                             : "DELETE FROM log_events WHERE grp = ?1";
    if (sqlite3_prepare_v2(tx->c->db, sql, -1, &s, NULL) != SQLITE_OK)
        return db_error(err, tx->c->db, "log drop");
    sqlite3_bind_int64(s, 1, group);
    if (stream)
        sqlite3_bind_int64(s, 2, stream);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return db_error(err, tx->c->db, "log drop");
    return 0;
}

static int sqlite_log_bounds(struct barge_tx *btx, int64_t stream, int64_t *first, int64_t *last,
                             struct barge_error **err)
{
    struct sqlite_tx *tx = (struct sqlite_tx *)btx;
    _cleanup_stmt_ sqlite3_stmt *tmp = NULL;
    sqlite3_stmt *s = stmt(tx, STMT_LOG_BOUNDS, &tmp);
    sqlite3_bind_int64(s, 1, stream);
    if (sqlite3_step(s) != SQLITE_ROW)
        return db_error(err, tx->c->db, "log bounds");
    int found = sqlite3_column_type(s, 0) != SQLITE_NULL;
    if (found) {
        *first = sqlite3_column_int64(s, 0);
        *last = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return found;
}
/* Two barged on one SQLite file would each think they lead the control loops;
 * a lock file next to the database makes the second one a follower. flock
 * ends with the process, like a PostgreSQL session. */
static int sqlite_lock_try(struct barge_store *base, const char *name,
                           struct barge_store_lock **out, struct barge_error **err)
{
    struct sqlite_store *st = (struct sqlite_store *)base;
    _cleanup_free_ char *path = barge_xasprintf("%s.%s.lock", st->path, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "store: cannot open '%s'", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return 0;
        errno = e;
        return barge_error_set_errno(err, BARGE_ERR_IO, "store: cannot lock '%s'", path);
    }
    struct sqlite_lock *l = barge_xcalloc(1, sizeof(*l));
    l->base.st = base;
    l->fd = fd;
    *out = &l->base;
    return 1;
}

static int sqlite_lock_check(struct barge_store_lock *lock, struct barge_error **err)
{
    return 0;
}

static void sqlite_lock_release(struct barge_store_lock *base)
{
    struct sqlite_lock *l = (struct sqlite_lock *)base;
    close(l->fd);
    free(l);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .abort = sqlite_abort,
    .get = sqlite_get,
    .put = sqlite_put,
    .del = sqlite_del,
    .scan = sqlite_scan,
    .count = sqlite_count,
    .counter_next = sqlite_counter_next,
    .kinds = sqlite_kinds,
    .lock_try = sqlite_lock_try,
    .lock_check = sqlite_lock_check,
    .lock_release = sqlite_lock_release,
    .log_append = sqlite_log_append,
    .log_scan = sqlite_log_scan,
    .log_expire = sqlite_log_expire,
    .log_drop = sqlite_log_drop,
    .log_bounds = sqlite_log_bounds,
    .bytes_put = sqlite_bytes_put,
    .bytes_get = sqlite_bytes_get,
    .bytes_del = sqlite_bytes_del,
};
