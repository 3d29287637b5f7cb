/* The PostgreSQL backend of store.h, for several barged sharing one database.
 * The schema is SQLite's: objects(kind, key, doc), counters, the CloudWatch
 * Logs events (log_events) and byte strings (bytes), with keys in the "C"
 * collation so that they sort byte-wise as SQLite's do, moved up by the same
 * numbered migrations (kept in barge_schema).
 *
 * Transactions. Every write transaction starts by taking one
 * transaction-scoped advisory lock, so writers are serialised across all
 * processes exactly as SQLite serialises them within one: a placement or a
 * deployment step reads what the previous writer committed and cannot race
 * another barged. It costs write throughput (one writer at a time in the
 * whole database, each holding the lock for its round trips), which barged's
 * small write transactions can afford, and it makes serialization failures
 * impossible, so callers never retry. Writes run at READ COMMITTED: the lock
 * is taken first, so every later statement sees every earlier writer's
 * commit. Reads run at REPEATABLE READ READ ONLY: one snapshot, never blocked.
 * A commit is durable when PostgreSQL says so (synchronous_commit).
 *
 * Coordination. Store-wide locks (leadership) are session advisory locks on a
 * connection of their own with short TCP keepalives, so they end when the
 * holder dies. barge_store_notify sends NOTIFY from a notifier thread (callers
 * never wait for the database; bursts coalesce into one notification), and a
 * listener thread with LISTEN on its own connection calls the subscriber for
 * other processes' notifications.
 *
 * Round trips are what a request pays for, so BEGIN (and the write lock)
 * travels in one pipeline with a transaction's first statement, and a read
 * transaction's COMMIT is not waited for (its answer is collected by the
 * connection's next user). Connections are pooled, one per transaction in
 * flight; statements are prepared once per connection. A connection found
 * broken is dropped, and a transaction whose first statement failed on a
 * pooled connection that had died is started over once on a fresh one (after
 * PostgreSQL restarted, every pooled connection is dead). */
#include <sys/poll.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "store/backend.h"

/* Sorts after every character a key can hold (keys are ASCII; this is
 * U+10FFFF, the largest code point, so that it is valid text in a UTF8
 * database), so prefix + KEY_MAX bounds the keys that start with prefix. */
#define KEY_MAX "\xf4\x8f\xbf\xbf"

#define CHANNEL  "barge_changes"
#define MAX_IDLE 32

enum {
    STMT_GET,
    STMT_PUT,
    STMT_DEL,
    STMT_SCAN_ASC,
    STMT_SCAN_DESC,
    STMT_COUNT,
    STMT_COUNTER,
    STMT_KINDS,
    STMT_LOG_APPEND,
    STMT_LOG_SCAN_ASC,
    STMT_LOG_SCAN_DESC,
    STMT_LOG_EXPIRE,
    STMT_LOG_DROP_STREAM,
    STMT_LOG_DROP_GROUP,
    STMT_LOG_BOUNDS,
    STMT_BYTES_PUT,
    STMT_BYTES_GET,
    STMT_BYTES_DEL,
    N_STMT
};

static const struct {
    const char *name;
    const char *sql;
} stmts[N_STMT] = {
    [STMT_GET] = {"get", "SELECT doc FROM objects WHERE kind = $1 AND key = $2"},
    [STMT_PUT] = {"put", "INSERT INTO objects(kind, key, doc) VALUES ($1, $2, $3) "
                         "ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc"},
    [STMT_DEL] = {"del", "DELETE FROM objects WHERE kind = $1 AND key = $2"},
    [STMT_SCAN_ASC] = {"scan_asc", "SELECT key, doc FROM objects WHERE kind = $1 AND key >= $2 "
                                   "AND key < $3 AND key > $4 ORDER BY key ASC LIMIT $5"},
    [STMT_SCAN_DESC] = {"scan_desc", "SELECT key, doc FROM objects WHERE kind = $1 AND key >= $2 "
                                     "AND key < $3 AND key < $4 ORDER BY key DESC LIMIT $5"},
    [STMT_COUNT] = {"count", "SELECT count(*) FROM objects WHERE kind = $1 AND key >= $2 "
                             "AND key < $3"},
    [STMT_KINDS] = {"kinds", "SELECT DISTINCT kind FROM objects ORDER BY kind"},
    [STMT_COUNTER] = {"counter", "INSERT INTO counters(name, value) VALUES ($1, 1) "
                                 "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 "
                                 "RETURNING value"},
    [STMT_LOG_APPEND] = {"log_append", "INSERT INTO log_events(grp, stream, ts, ingest, msg) "
                                       "VALUES ($1, $2, $3, $4, $5) RETURNING id"},
    /* A scan without a position passes the smallest (ascending) or largest
     * (descending) one, and NULL for "every stream" and "no limit", so one
     * statement serves every query. */
    [STMT_LOG_SCAN_ASC] = {"log_scan_asc",
                           "SELECT id, stream, ts, ingest, msg FROM log_events WHERE grp = $1 "
                           "AND ts >= $2 AND ts < $3 AND (ts, id) > ($4, $5) "
                           "AND ($6::bigint[] IS NULL OR stream = ANY($6::bigint[])) "
                           "ORDER BY ts ASC, id ASC LIMIT $7"},
    [STMT_LOG_SCAN_DESC] = {"log_scan_desc",
                            "SELECT id, stream, ts, ingest, msg FROM log_events WHERE grp = $1 "
                            "AND ts >= $2 AND ts < $3 AND (ts, id) < ($4, $5) "
                            "AND ($6::bigint[] IS NULL OR stream = ANY($6::bigint[])) "
                            "ORDER BY ts DESC, id DESC LIMIT $7"},
    /* Deletes and reports per stream what it took, in one statement. */
    [STMT_LOG_EXPIRE] = {"log_expire",
                         "WITH gone AS (DELETE FROM log_events WHERE grp = $1 AND ts < $2 "
                         "RETURNING stream, octet_length(msg) AS bytes) "
                         "SELECT stream, count(*), sum(bytes) FROM gone GROUP BY stream"},
    [STMT_LOG_DROP_STREAM] = {"log_drop_stream",
                              "DELETE FROM log_events WHERE grp = $1 AND stream = $2"},
    [STMT_LOG_DROP_GROUP] = {"log_drop_group", "DELETE FROM log_events WHERE grp = $1"},
    [STMT_LOG_BOUNDS] = {"log_bounds", "SELECT min(ts), max(ts) FROM log_events WHERE stream = $1"},
    [STMT_BYTES_PUT] = {"bytes_put", "INSERT INTO bytes(name, seq, data) VALUES ($1, $2, $3) "
                                     "ON CONFLICT (name, seq) DO UPDATE SET data = excluded.data"},
    [STMT_BYTES_GET] = {"bytes_get", "SELECT data FROM bytes WHERE name = $1 AND seq = $2"},
    [STMT_BYTES_DEL] = {"bytes_del", "DELETE FROM bytes WHERE name = $1"},
};

/* Each migration moves the schema one version up, in step with SQLite's
 * (version N means the same tables in both); never edit a released one. */
static const char *migrations[] = {
    "CREATE TABLE objects (kind text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL, "
    "doc text NOT NULL, PRIMARY KEY (kind, key));"
    "CREATE TABLE counters (name text COLLATE \"C\" PRIMARY KEY, value bigint NOT NULL);",
    /* Log events: ids come from a sequence, which never hands out a number
     * twice (ids are in eventIds and paging tokens). */
    "CREATE TABLE log_events (id bigserial PRIMARY KEY, grp bigint NOT NULL, "
    "stream bigint NOT NULL, ts bigint NOT NULL, ingest bigint NOT NULL, msg text NOT NULL);"
    "CREATE INDEX log_events_stream ON log_events(stream, ts, id);"
    "CREATE INDEX log_events_group ON log_events(grp, ts, id);",
    /* Byte strings in chunks (store.h). */
    "CREATE TABLE bytes (name text COLLATE \"C\" NOT NULL, seq bigint NOT NULL, "
    "data bytea NOT NULL, PRIMARY KEY (name, seq));",
};

struct conn {
    PGconn *pg;
    bool closing; /* the COMMIT or ROLLBACK of a read transaction is in flight */
    struct conn *next;
};

struct pg_store {
    struct barge_store base;
    char *uri;
    char *where;       /* the URI without its password, for messages */
    int64_t write_key; /* advisory lock keys, per schema */
    int64_t migrate_key;
    char *schema;
    char origin[33]; /* payload of our NOTIFYs, so the listener skips them */

    pthread_mutex_t pool_lock;
    struct conn *idle;
    size_t n_idle;
    PGconn *spare_lock_conn; /* kept between failed lock attempts */

    pthread_mutex_t notify_lock;
    pthread_cond_t notify_cond;
    bool notify_pending;
    bool stopping;
    bool notifier_started;
    pthread_t notifier;
    bool listener_started;
    pthread_t listener;
    barge_store_notify_fn fn;
    void *ud;
};

struct pg_tx {
    struct barge_tx base;
    struct pg_store *st;
    struct conn *c;
    bool pooled; /* c came from the pool (it may have died while idle) */
    bool begun;  /* BEGIN went out (with the first statement) */
};

struct pg_lock {
    struct barge_store_lock base;
    PGconn *pg;
    int64_t key;
};

static const struct store_ops pg_ops;

static void clearp(PGresult **r)
{
    PQclear(*r);
}
#define _cleanup_result_ __attribute__((cleanup(clearp)))

/* postgres://user:secret@host/db -> postgres://user:***@host/db, and the same
 * for a password=... parameter: URIs reach logs and error messages. */
static char *redact(const char *uri)
{
    char *out = barge_xstrdup(uri);
    char *scheme = strstr(out, "://");
    char *auth = scheme ? scheme + 3 : out;
    char *at = strchr(auth, '@');
    char *colon = strchr(auth, ':');
    if (at && colon && colon < at) {
        char *s = barge_xasprintf("%.*s:***%s", (int)(colon - out), out, at);
        free(out);
        out = s;
    }
    char *pw = strstr(out, "password=");
    if (pw) {
        size_t end = strcspn(pw, "&");
        char *s = barge_xasprintf("%.*spassword=***%s", (int)(pw - out), out, pw + end);
        free(out);
        out = s;
    }
    return out;
}

static int64_t lock_key(const char *schema, const char *name)
{
    /* FNV-1a: stable across processes and versions, unlike hashtext(). */
    uint64_t h = 1469598103934665603ULL;
    _cleanup_free_ char *s = barge_xasprintf("barge:%s:%s", schema, name);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (int64_t)h;
}

/* PostgreSQL's message on one line (log lines are lines). */
static char *pg_message(PGconn *pg, const PGresult *r)
{
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !*m)
        m = PQerrorMessage(pg);
    if (!m || !*m)
        m = "unknown error";
    char *s = barge_xmalloc(strlen(m) + 1), *o = s;
    for (const char *p = m; *p; p++) {
        bool space = *p == '\n' || *p == '\t' || *p == ' ';
        if (!space)
            *o++ = *p;
        else if (o > s && o[-1] != ' ')
            *o++ = ' ';
    }
    while (o > s && o[-1] == ' ')
        o--;
    *o = '\0';
    return s;
}

static int pg_error(struct barge_error **err, PGconn *pg, const PGresult *r, const char *what)
{
    _cleanup_free_ char *m = pg_message(pg, r);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    /* Lost connections, shutdowns and exhausted resources are I/O trouble. */
    bool io = PQstatus(pg) != CONNECTION_OK ||
              (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
                         strncmp(state, "53", 2) == 0));
    return barge_error_set(err, io ? BARGE_ERR_IO : BARGE_ERR_INTERNAL, "store: %s: %s", what, m);
}

/* Runs sql (no parameters) and checks its status. */
static int exec_ok(PGconn *pg, const char *sql, ExecStatusType want, const char *what,
                   struct barge_error **err)
{
    _cleanup_result_ PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != want)
        return pg_error(err, pg, r, what);
    return 0;
}

/* PostgreSQL's notices ("relation ... already exists, skipping") are no
 * news to an operator. */
static void on_notice(void *ud, const char *message)
{
    barge_debug("store: %.*s", (int)strcspn(message, "\n"), message);
}

/* A new session. Keepalives are short so that a dead peer is noticed within
 * seconds on either side; the URI's own settings take precedence (dbname is
 * expanded last). */
static PGconn *connect_db(struct pg_store *st, struct barge_error **err)
{
    static const char *const keys[] = {"application_name", "client_encoding",
                                       "connect_timeout",  "keepalives",
                                       "keepalives_idle",  "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout",
                                       "dbname",           NULL};
    const char *const values[] = {"barged", "UTF8", "10",    "1",     "5",
                                  "2",      "3",    "15000", st->uri, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (!pg)
        abort();
    if (PQstatus(pg) != CONNECTION_OK) {
        _cleanup_free_ char *m = pg_message(pg, NULL);
        barge_error_set(err, BARGE_ERR_IO, "store: cannot connect to '%s': %s", st->where, m);
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, on_notice, NULL);
    return pg;
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    PQfinish(c->pg);
    free(c);
}

static struct conn *conn_open(struct pg_store *st, struct barge_error **err)
{
    PGconn *pg = connect_db(st, err);
    if (!pg)
        return NULL;
    struct conn *c = barge_xcalloc(1, sizeof(*c));
    c->pg = pg;
    for (int i = 0; i < N_STMT; i++) {
        _cleanup_result_ PGresult *r = PQprepare(pg, stmts[i].name, stmts[i].sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            pg_error(err, pg, r, "prepare");
            conn_free(c);
            return NULL;
        }
    }
    return c;
}

/* Collects the answer to a read transaction's COMMIT or ROLLBACK; false when
 * the connection is not fit for another transaction. */
static bool finish_closing(struct conn *c)
{
    c->closing = false;
    bool ok = true;
    PGresult *r;
    while ((r = PQgetResult(c->pg))) {
        ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    return ok && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}

static struct conn *pool_take(struct pg_store *st, bool *pooled, struct barge_error **err)
{
    struct conn *c;
    do {
        pthread_mutex_lock(&st->pool_lock);
        c = st->idle;
        if (c) {
            st->idle = c->next;
            st->n_idle--;
        }
        pthread_mutex_unlock(&st->pool_lock);
        if (c && c->closing && !finish_closing(c)) {
            conn_free(c);
            c = NULL;
            continue;
        }
        break;
    } while (true);
    *pooled = c != NULL;
    if (!c && !(c = conn_open(st, err)))
        return NULL;
    c->next = NULL;
    return c;
}

/* Back to the pool only when it is healthy and outside a transaction (or
 * ending a read transaction). */
static void pool_give(struct pg_store *st, struct conn *c)
{
    if (PQstatus(c->pg) != CONNECTION_OK ||
        (!c->closing && PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
        conn_free(c);
        return;
    }
    pthread_mutex_lock(&st->pool_lock);
    if (st->n_idle >= MAX_IDLE) {
        pthread_mutex_unlock(&st->pool_lock);
        conn_free(c);
        return;
    }
    c->next = st->idle;
    st->idle = c;
    st->n_idle++;
    pthread_mutex_unlock(&st->pool_lock);
}

static int migrate(struct pg_store *st, PGconn *pg, struct barge_error **err)
{
    int target = (int)BARGE_ARRAY_SIZE(migrations), version = 0;
    _cleanup_free_ char *set = barge_xasprintf("UPDATE barge_schema SET version = %d", target);
    _cleanup_free_ char *begin =
        barge_xasprintf("BEGIN; SELECT pg_advisory_xact_lock(%lld)", (long long)st->migrate_key);
    if (exec_ok(pg, begin, PGRES_TUPLES_OK, "begin migration", err) < 0 ||
        exec_ok(pg, "CREATE TABLE IF NOT EXISTS barge_schema (version integer NOT NULL)",
                PGRES_COMMAND_OK, "migration", err) < 0)
        goto fail;
    {
        _cleanup_result_ PGresult *r = PQexec(pg, "SELECT version FROM barge_schema");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            pg_error(err, pg, r, "migration");
            goto fail;
        }
        if (PQntuples(r) > 0)
            version = atoi(PQgetvalue(r, 0, 0));
        else if (exec_ok(pg, "INSERT INTO barge_schema VALUES (0)", PGRES_COMMAND_OK, "migration",
                         err) < 0)
            goto fail;
    }
    if (version > target) {
        barge_error_set(err, BARGE_ERR_CONFLICT,
                        "store: '%s' has schema version %d, newer than this barged (%d)", st->where,
                        version, target);
        goto fail;
    }
    for (int v = version; v < target; v++) {
        if (exec_ok(pg, migrations[v], PGRES_COMMAND_OK, "migration", err) < 0)
            goto fail;
        barge_info("store: migrated '%s' to schema version %d", st->where, v + 1);
    }
    if (exec_ok(pg, set, PGRES_COMMAND_OK, "migration", err) < 0 ||
        exec_ok(pg, "COMMIT", PGRES_COMMAND_OK, "migration", err) < 0)
        goto fail;
    return 0;
fail:
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}

/* The schema the tables live in names the advisory locks, so that barge
 * installations in different schemas of one database do not serialise each
 * other. */
static int inspect(struct pg_store *st, PGconn *pg, struct barge_error **err)
{
    _cleanup_result_ PGresult *r =
        PQexec(pg, "SELECT current_schema(), current_setting('server_encoding')");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return pg_error(err, pg, r, "inspect");
    if (PQgetisnull(r, 0, 0))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "store: '%s' has no schema to create tables in (search_path)",
                               st->where);
    const char *enc = PQgetvalue(r, 0, 1);
    if (strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "store: database '%s' has encoding '%s'; barge needs UTF8",
                               st->where, enc);
    st->schema = barge_xstrdup(PQgetvalue(r, 0, 0));
    st->write_key = lock_key(st->schema, "write");
    st->migrate_key = lock_key(st->schema, "migrate");
    return 0;
}

static void pg_close(struct barge_store *base);

int barge_store_postgres_open(const char *uri, struct barge_store **out, struct barge_error **err)
{
    struct pg_store *st = barge_xcalloc(1, sizeof(*st));
    st->base.ops = &pg_ops;
    st->uri = barge_xstrdup(uri);
    st->where = redact(uri);
    st->base.where = st->where;
    pthread_mutex_init(&st->pool_lock, NULL);
    pthread_mutex_init(&st->notify_lock, NULL);
    pthread_cond_init(&st->notify_cond, NULL);
    unsigned char rnd[16];
    barge_random_bytes(rnd, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(st->origin + 2 * i, 3, "%02x", rnd[i]);
    PGconn *pg = connect_db(st, err);
    if (!pg || inspect(st, pg, err) < 0 || migrate(st, pg, err) < 0) {
        PQfinish(pg);
        pg_close(&st->base);
        return -1;
    }
    PQfinish(pg);
    *out = &st->base;
    return 0;
}

static void pg_close(struct barge_store *base)
{
    struct pg_store *st = (struct pg_store *)base;
    pthread_mutex_lock(&st->notify_lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->notify_cond);
    pthread_mutex_unlock(&st->notify_lock);
    if (st->notifier_started)
        pthread_join(st->notifier, NULL);
    if (st->listener_started)
        pthread_join(st->listener, NULL);
    while (st->idle) {
        struct conn *c = st->idle;
        st->idle = c->next;
        conn_free(c);
    }
    if (st->spare_lock_conn)
        PQfinish(st->spare_lock_conn);
    pthread_mutex_destroy(&st->pool_lock);
    pthread_mutex_destroy(&st->notify_lock);
    pthread_cond_destroy(&st->notify_cond);
    free(st->uri);
    free(st->where);
    free(st->schema);
    free(st);
}

/* A transaction takes a connection at once but sends BEGIN only with its
 * first statement, in one pipeline (BEGIN, for writers the lock, the
 * statement): one round trip instead of two or three. */
static int pg_begin(struct barge_store *base, bool write, struct barge_tx **out,
                    struct barge_error **err)
{
    struct pg_store *st = (struct pg_store *)base;
    bool pooled;
    struct conn *c = pool_take(st, &pooled, err);
    if (!c)
        return -1;
    struct pg_tx *tx = barge_xcalloc(1, sizeof(*tx));
    tx->base.st = base;
    tx->base.write = write;
    tx->st = st;
    tx->c = c;
    tx->pooled = pooled;
    *out = &tx->base;
    return 0;
}

static void tx_end(struct pg_tx *tx)
{
    pool_give(tx->st, tx->c);
    free(tx);
}

/* A read transaction has nothing to make durable: its COMMIT or ROLLBACK is
 * sent and its answer collected by the connection's next user. */
static void end_read(struct pg_tx *tx, const char *verb)
{
    if (PQstatus(tx->c->pg) == CONNECTION_OK && PQsendQuery(tx->c->pg, verb))
        tx->c->closing = true;
    tx_end(tx);
}

static int pg_commit(struct barge_tx *base, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    if (!tx->begun) {
        tx_end(tx);
        return 0;
    }
    if (!base->write) {
        end_read(tx, "COMMIT");
        return 0;
    }
    int ret = 0;
    _cleanup_result_ PGresult *r = PQexec(tx->c->pg, "COMMIT");
    /* COMMIT of a transaction in which a statement failed answers ROLLBACK. */
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        ret = pg_error(err, tx->c->pg, r, "commit");
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        ret = barge_error_set(err, BARGE_ERR_INTERNAL,
                              "store: commit: the transaction was rolled back");
    tx_end(tx);
    return ret;
}

static void pg_abort(struct barge_tx *base)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    if (!tx->begun) {
        tx_end(tx);
        return;
    }
    if (!base->write) {
        end_read(tx, "ROLLBACK");
        return;
    }
    if (PQstatus(tx->c->pg) == CONNECTION_OK)
        PQclear(PQexec(tx->c->pg, "ROLLBACK"));
    tx_end(tx);
}

/* The next result of a pipeline, and whatever else that item returned. */
static PGresult *pipeline_result(PGconn *pg)
{
    PGresult *r = PQgetResult(pg);
    if (r) {
        PGresult *more;
        while ((more = PQgetResult(pg)))
            PQclear(more);
    }
    return r;
}

/* BEGIN (and the write lock) and the first statement in one round trip.
 * Returns the first failure among them, else the statement's result. */
static PGresult *run_pipelined(struct pg_tx *tx, int which, int n, const char *const *params,
                               const int *lengths, const int *formats, int result_format)
{
    PGconn *pg = tx->c->pg;
    bool write = tx->base.write;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)tx->st->write_key);
    const char *kp[] = {key};
    if (PQenterPipelineMode(pg) != 1)
        return NULL;
    bool sent =
        PQsendQueryParams(pg, write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                          0, NULL, NULL, NULL, NULL, 0) &&
        (!write ||
         PQsendQueryParams(pg, "SELECT pg_advisory_xact_lock($1)", 1, NULL, kp, NULL, NULL, 0)) &&
        PQsendQueryPrepared(pg, stmts[which].name, n, params, lengths, formats, result_format) &&
        PQpipelineSync(pg);
    PGresult *res[3] = {NULL, NULL, NULL};
    int items = write ? 3 : 2;
    if (sent) {
        for (int i = 0; i < items; i++)
            res[i] = pipeline_result(pg);
        PQclear(PQgetResult(pg)); /* PGRES_PIPELINE_SYNC */
    }
    PQexitPipelineMode(pg);
    PGresult *out = res[items - 1];
    ExecStatusType want[] = {PGRES_COMMAND_OK, PGRES_TUPLES_OK};
    for (int i = 0; i < items - 1; i++) {
        if (PQresultStatus(res[i]) != want[i] && out == res[items - 1]) {
            out = res[i];
            res[i] = NULL;
        }
    }
    for (int i = 0; i < items; i++)
        if (res[i] != out)
            PQclear(res[i]);
    return out;
}

/* Runs a prepared statement in tx; lengths and formats describe binary
 * parameters (NULL: all text), result_format 1 asks for binary columns. */
static PGresult *run_ex(struct pg_tx *tx, int which, int n, const char *const *params,
                        const int *lengths, const int *formats, int result_format)
{
    if (tx->begun)
        return PQexecPrepared(tx->c->pg, stmts[which].name, n, params, lengths, formats,
                              result_format);
    PGresult *r = run_pipelined(tx, which, n, params, lengths, formats, result_format);
    tx->begun = true;
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || !tx->pooled ||
        PQstatus(tx->c->pg) == CONNECTION_OK)
        return r;
    /* The pooled connection died while idle (PostgreSQL restarted, an idle
     * timeout): nothing happened yet, so the transaction starts over once on
     * a fresh connection. */
    _cleanup_error_ struct barge_error *ignored = NULL;
    struct conn *fresh = conn_open(tx->st, &ignored);
    if (!fresh)
        return r;
    PQclear(r);
    conn_free(tx->c);
    tx->c = fresh;
    tx->pooled = false;
    return run_pipelined(tx, which, n, params, lengths, formats, result_format);
}

static PGresult *run(struct pg_tx *tx, int which, int n, const char *const *params)
{
    return run_ex(tx, which, n, params, NULL, NULL, 0);
}

static json_t *parse_doc(struct pg_tx *tx, const PGresult *r, int row, int col, const char *kind,
                         const char *key, bool shared, struct barge_error **err)
{
    json_error_t jerr;
    json_t *doc = barge_store_parse(tx->base.st, kind, key, PQgetvalue(r, row, col),
                                    (size_t)PQgetlength(r, row, col), shared, &jerr);
    if (!doc)
        barge_error_set(err, BARGE_ERR_INTERNAL, "store: corrupt %s '%s': %s", kind, key,
                        jerr.text);
    return doc;
}

static int pg_get(struct barge_tx *base, const char *kind, const char *key, json_t **out,
                  struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    *out = NULL;
    const char *p[] = {kind, key};
    _cleanup_result_ PGresult *r = run(tx, STMT_GET, 2, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_error(err, tx->c->pg, r, "get");
    if (PQntuples(r) == 0)
        return 0;
    *out = parse_doc(tx, r, 0, 0, kind, key, false, err);
    return *out ? 1 : -1;
}

static int pg_put(struct barge_tx *base, const char *kind, const char *key, const json_t *doc,
                  struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    _cleanup_free_ char *text = barge_json_dump(doc);
    const char *p[] = {kind, key, text};
    _cleanup_result_ PGresult *r = run(tx, STMT_PUT, 3, p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return pg_error(err, tx->c->pg, r, "put");
    return 0;
}

static int pg_del(struct barge_tx *base, const char *kind, const char *key,
                  struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    const char *p[] = {kind, key};
    _cleanup_result_ PGresult *r = run(tx, STMT_DEL, 2, p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return pg_error(err, tx->c->pg, r, "delete");
    return 0;
}

/* Rows of a scan come in pages: libpq holds a whole result in memory, and
 * the housekeeping's scan of every task (the stopped-task reaper) made barged
 * jump from about 30 to 160 MiB every few seconds at 100,000 tasks. */
#define SCAN_PAGE 256

/* Each page, the rows after the last key of the one before, is fetched before
 * fn runs on its rows, so fn may use the transaction (the connection) for
 * further reads. Reads run at REPEATABLE READ and writers hold the write
 * lock, so the pages are of one state of the store. */
static int pg_scan(struct barge_tx *base, const char *kind, const char *prefix, const char *after,
                   bool desc, size_t limit, barge_store_scan_fn fn, void *ud,
                   struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    _cleanup_free_ char *hi = barge_xasprintf("%s" KEY_MAX, prefix ? prefix : "");
    _cleanup_free_ char *last = after ? barge_xstrdup(after) : NULL;
    size_t left = limit;
    for (;;) {
        size_t want = limit && left < SCAN_PAGE ? left : SCAN_PAGE;
        char lim[24];
        snprintf(lim, sizeof(lim), "%zu", want);
        const char *p[] = {kind, prefix ? prefix : "", hi, last ? last : desc ? hi : "", lim};
        _cleanup_result_ PGresult *r = run(tx, desc ? STMT_SCAN_DESC : STMT_SCAN_ASC, 5, p);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            return pg_error(err, tx->c->pg, r, "scan");
        int n = PQntuples(r);
        for (int i = 0; i < n; i++) {
            const char *key = PQgetvalue(r, i, 0);
            json_t *doc = parse_doc(tx, r, i, 1, kind, key, true, err);
            if (!doc)
                return -1;
            int rc = fn(key, doc, ud, err);
            json_decref(doc);
            if (rc < 0)
                return -1;
            if (rc > 0)
                return 0;
        }
        if ((size_t)n < want || (limit && (left -= want) == 0))
            return 0;
        free(last);
        last = barge_xstrdup(PQgetvalue(r, n - 1, 0));
    }
}

static int pg_count(struct barge_tx *base, const char *kind, const char *prefix, int64_t *out,
                    struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    _cleanup_free_ char *hi = barge_xasprintf("%s" KEY_MAX, prefix ? prefix : "");
    const char *p[] = {kind, prefix ? prefix : "", hi};
    _cleanup_result_ PGresult *r = run(tx, STMT_COUNT, 3, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return pg_error(err, tx->c->pg, r, "count");
    *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    return 0;
}

static int pg_counter_next(struct barge_tx *base, const char *name, int64_t *out,
                           struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    const char *p[] = {name};
    _cleanup_result_ PGresult *r = run(tx, STMT_COUNTER, 1, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return pg_error(err, tx->c->pg, r, "counter");
    *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    return 0;
}

static int pg_kinds(struct barge_tx *base, json_t *out, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    _cleanup_result_ PGresult *r = run(tx, STMT_KINDS, 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_error(err, tx->c->pg, r, "kinds");
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
    return 0;
}

/* ---- log events ---- */

static char *int_text(int64_t v)
{
    return barge_xasprintf("%lld", (long long)v);
}

/* One INSERT per event: the events of a call are few (a PutLogEvents batch)
 * and the round trips on a nearby database are short. */
static int pg_log_append(struct barge_tx *base, int64_t group, int64_t stream,
                         struct barge_store_log_event *events, size_t n, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    _cleanup_free_ char *g = int_text(group), *s = int_text(stream);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *ts = int_text(events[i].timestamp);
        _cleanup_free_ char *ingest = int_text(events[i].ingestion);
        _cleanup_free_ char *msg = barge_xstrndup(events[i].message, events[i].message_len);
        const char *p[] = {g, s, ts, ingest, msg};
        _cleanup_result_ PGresult *r = run(tx, STMT_LOG_APPEND, 5, p);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            return pg_error(err, tx->c->pg, r, "log append");
        events[i].id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        events[i].group = group;
        events[i].stream = stream;
    }
    return 0;
}

/* The streams as an array literal, {1,2,3}. */
static char *streams_text(const int64_t *streams, size_t n)
{
    char *out = barge_xmalloc(2 + n * 21);
    size_t len = 0;
    out[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(out + len, "%s%lld", i ? "," : "", (long long)streams[i]);
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

/* The whole result is fetched before fn runs, as in pg_scan. */
static int pg_log_scan(struct barge_tx *base, const struct barge_store_log_query *q,
                       barge_store_log_fn fn, void *ud, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    if (q->streams && q->n_streams == 0)
        return 0;
    int64_t edge = q->desc ? INT64_MAX : INT64_MIN;
    _cleanup_free_ char *g = int_text(q->group), *start = int_text(q->start),
                        *end = int_text(q->end);
    _cleanup_free_ char *pos_ts = int_text(q->has_position ? q->position_ts : edge);
    _cleanup_free_ char *pos_id = int_text(q->has_position ? q->position_id : edge);
    _cleanup_free_ char *streams = q->streams ? streams_text(q->streams, q->n_streams) : NULL;
    _cleanup_free_ char *lim = q->limit ? barge_xasprintf("%zu", q->limit) : NULL;
    const char *p[] = {g, start, end, pos_ts, pos_id, streams, lim};
    _cleanup_result_ PGresult *r = run(tx, q->desc ? STMT_LOG_SCAN_DESC : STMT_LOG_SCAN_ASC, 7, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_error(err, tx->c->pg, r, "log scan");
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        struct barge_store_log_event ev = {
            .id = strtoll(PQgetvalue(r, i, 0), NULL, 10),
            .group = q->group,
            .stream = strtoll(PQgetvalue(r, i, 1), NULL, 10),
            .timestamp = strtoll(PQgetvalue(r, i, 2), NULL, 10),
            .ingestion = strtoll(PQgetvalue(r, i, 3), NULL, 10),
            .message = PQgetvalue(r, i, 4),
            .message_len = (size_t)PQgetlength(r, i, 4),
        };
        int rc = fn(&ev, ud, err);
        if (rc < 0)
            return -1;
        if (rc > 0)
            break;
    }
    return 0;
}

static int pg_log_expire(struct barge_tx *base, int64_t group, int64_t before,
                         struct barge_store_log_removed **out, size_t *n, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    *out = NULL;
    *n = 0;
    _cleanup_free_ char *g = int_text(group), *b = int_text(before);
    const char *p[] = {g, b};
    _cleanup_result_ PGresult *r = run(tx, STMT_LOG_EXPIRE, 2, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_error(err, tx->c->pg, r, "log expiry");
    int rows = PQntuples(r);
    if (rows == 0)
        return 0;
    *out = barge_xcalloc((size_t)rows, sizeof(**out));
    for (int i = 0; i < rows; i++) {
        (*out)[i].stream = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        (*out)[i].events = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        (*out)[i].bytes = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    }
    *n = (size_t)rows;
    return 0;
}

static int pg_log_drop(struct barge_tx *base, int64_t group, int64_t stream,
                       struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    _cleanup_free_ char *g = int_text(group), *s = int_text(stream);
    const char *p[] = {g, s};
    _cleanup_result_ PGresult *r =
        run(tx, stream ? STMT_LOG_DROP_STREAM : STMT_LOG_DROP_GROUP, stream ? 2 : 1, p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return pg_error(err, tx->c->pg, r, "log drop");
    return 0;
}

static int pg_log_bounds(struct barge_tx *base, int64_t stream, int64_t *first, int64_t *last,
                         struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    _cleanup_free_ char *s = int_text(stream);
    const char *p[] = {s};
    _cleanup_result_ PGresult *r = run(tx, STMT_LOG_BOUNDS, 1, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return pg_error(err, tx->c->pg, r, "log bounds");
    if (PQgetisnull(r, 0, 0))
        return 0;
    *first = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *last = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    return 1;
}

/* ---- byte strings ---- */

static int pg_bytes_put(struct barge_tx *base, const char *name, int64_t seq, const void *data,
                        size_t len, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    char seqs[24];
    snprintf(seqs, sizeof(seqs), "%lld", (long long)seq);
    const char *p[] = {name, seqs, len ? data : ""};
    const int lengths[] = {0, 0, (int)len};
    const int formats[] = {0, 0, 1};
    _cleanup_result_ PGresult *r = run_ex(tx, STMT_BYTES_PUT, 3, p, lengths, formats, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return pg_error(err, tx->c->pg, r, "bytes put");
    return 0;
}

static int pg_bytes_get(struct barge_tx *base, const char *name, int64_t seq, void **data,
                        size_t *len, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    char seqs[24];
    snprintf(seqs, sizeof(seqs), "%lld", (long long)seq);
    const char *p[] = {name, seqs};
    _cleanup_result_ PGresult *r = run_ex(tx, STMT_BYTES_GET, 2, p, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_error(err, tx->c->pg, r, "bytes get");
    if (PQntuples(r) == 0)
        return 0;
    *len = (size_t)PQgetlength(r, 0, 0);
    *data = barge_xmalloc(*len ? *len : 1);
    memcpy(*data, PQgetvalue(r, 0, 0), *len);
    return 1;
}

static int pg_bytes_del(struct barge_tx *base, const char *name, struct barge_error **err)
{
    struct pg_tx *tx = (struct pg_tx *)base;
    const char *p[] = {name};
    _cleanup_result_ PGresult *r = run(tx, STMT_BYTES_DEL, 1, p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return pg_error(err, tx->c->pg, r, "bytes delete");
    return 0;
}

/* ---- store-wide locks ---- */

/* The server side of a lock's session notices a vanished holder within
 * seconds (keepalives, and tcp_user_timeout for unacknowledged data), which
 * releases the lock for the next holder. */
static const char lock_session_sql[] =
    "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; "
    "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 5000; "
    "SET statement_timeout = 5000";

static int pg_lock_try(struct barge_store *base, const char *name, struct barge_store_lock **out,
                       struct barge_error **err)
{
    struct pg_store *st = (struct pg_store *)base;
    pthread_mutex_lock(&st->pool_lock);
    PGconn *pg = barge_steal(&st->spare_lock_conn);
    pthread_mutex_unlock(&st->pool_lock);
    if (pg && PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        pg = NULL;
    }
    if (!pg) {
        if (!(pg = connect_db(st, err)))
            return -1;
        if (exec_ok(pg, lock_session_sql, PGRES_COMMAND_OK, "lock session", err) < 0) {
            PQfinish(pg);
            return -1;
        }
    }
    int64_t key = lock_key(st->schema, name);
    _cleanup_free_ char *sql = barge_xasprintf("SELECT pg_try_advisory_lock(%lld)", (long long)key);
    _cleanup_result_ PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        pg_error(err, pg, r, "lock");
        PQfinish(pg);
        return -1;
    }
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        pthread_mutex_lock(&st->pool_lock);
        if (!st->spare_lock_conn)
            st->spare_lock_conn = barge_steal(&pg);
        pthread_mutex_unlock(&st->pool_lock);
        PQfinish(pg);
        return 0;
    }
    struct pg_lock *l = barge_xcalloc(1, sizeof(*l));
    l->base.st = base;
    l->pg = pg;
    l->key = key;
    *out = &l->base;
    return 1;
}

static int pg_lock_check(struct barge_store_lock *base, struct barge_error **err)
{
    struct pg_lock *l = (struct pg_lock *)base;
    uint64_t k = (uint64_t)l->key;
    /* pg_locks shows a bigint advisory key as two oids. */
    _cleanup_free_ char *sql =
        barge_xasprintf("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                        "pid = pg_backend_pid() AND classid = %u AND objid = %u AND objsubid = 1",
                        (unsigned)(k >> 32), (unsigned)(k & 0xffffffffu));
    _cleanup_result_ PGresult *r = PQexec(l->pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return pg_error(err, l->pg, r, "checking a lock");
    if (strcmp(PQgetvalue(r, 0, 0), "1") != 0)
        return barge_error_set(err, BARGE_ERR_CONFLICT, "store: the lock is no longer held");
    return 0;
}

/* Ending the session releases the lock. */
static void pg_lock_release(struct barge_store_lock *base)
{
    struct pg_lock *l = (struct pg_lock *)base;
    PQfinish(l->pg);
    free(l);
}

/* ---- notifications ---- */

static void *notifier_main(void *ud)
{
    struct pg_store *st = ud;
    int failures = 0;
    pthread_mutex_lock(&st->notify_lock);
    for (;;) {
        while (!st->notify_pending && !st->stopping)
            pthread_cond_wait(&st->notify_cond, &st->notify_lock);
        if (st->stopping)
            break;
        st->notify_pending = false;
        pthread_mutex_unlock(&st->notify_lock);
        _cleanup_error_ struct barge_error *err = NULL;
        bool pooled;
        struct conn *c = pool_take(st, &pooled, &err);
        if (c) {
            const char *p[] = {CHANNEL, st->origin};
            _cleanup_result_ PGresult *r =
                PQexecParams(c->pg, "SELECT pg_notify($1, $2)", 2, NULL, p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                pg_error(&err, c->pg, r, "notify");
            pool_give(st, c);
        }
        if (err && failures++ % 20 == 0)
            barge_warn("%s", err->message);
        if (!err)
            failures = 0;
        pthread_mutex_lock(&st->notify_lock);
    }
    pthread_mutex_unlock(&st->notify_lock);
    return NULL;
}

static void pg_notify(struct barge_store *base)
{
    struct pg_store *st = (struct pg_store *)base;
    pthread_mutex_lock(&st->notify_lock);
    if (!st->notifier_started && !st->stopping) {
        if (pthread_create(&st->notifier, NULL, notifier_main, st) != 0)
            abort();
        st->notifier_started = true;
    }
    st->notify_pending = true;
    pthread_cond_signal(&st->notify_cond);
    pthread_mutex_unlock(&st->notify_lock);
}

static bool stopping(struct pg_store *st)
{
    pthread_mutex_lock(&st->notify_lock);
    bool s = st->stopping;
    pthread_mutex_unlock(&st->notify_lock);
    return s;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* LISTENs on a connection of its own; on any trouble reconnects, and tells
 * the subscriber after every (re)connection, since notifications sent in
 * between are lost. */
static void *listener_main(void *ud)
{
    struct pg_store *st = ud;
    PGconn *pg = NULL;
    int failures = 0;
    while (!stopping(st)) {
        if (!pg) {
            _cleanup_error_ struct barge_error *err = NULL;
            pg = connect_db(st, &err);
            if (pg && exec_ok(pg, "LISTEN " CHANNEL, PGRES_COMMAND_OK, "listen", &err) < 0) {
                PQfinish(pg);
                pg = NULL;
            }
            if (!pg) {
                if (failures++ % 10 == 0)
                    barge_warn("%s; retrying", err->message);
                st->fn(st->ud);
                nap_ms(1000);
                continue;
            }
            if (failures)
                barge_info("store: listening for changes again");
            failures = 0;
            st->fn(st->ud);
        }
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        int n = poll(&pfd, 1, 500);
        if (n == 0)
            continue;
        if (n < 0 || !PQconsumeInput(pg)) {
            _cleanup_free_ char *m = pg_message(pg, NULL);
            barge_warn("store: lost the connection that listens for changes: %s", m);
            PQfinish(pg);
            pg = NULL;
            continue;
        }
        bool theirs = false;
        PGnotify *nt;
        while ((nt = PQnotifies(pg))) {
            if (strcmp(nt->extra, st->origin) != 0)
                theirs = true;
            PQfreemem(nt);
        }
        if (theirs)
            st->fn(st->ud);
    }
    PQfinish(pg);
    return NULL;
}

static int pg_subscribe(struct barge_store *base, barge_store_notify_fn fn, void *ud,
                        struct barge_error **err)
{
    struct pg_store *st = (struct pg_store *)base;
    if (st->listener_started)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "store: already subscribed");
    st->fn = fn;
    st->ud = ud;
    if (pthread_create(&st->listener, NULL, listener_main, st) != 0)
        return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "store: cannot start a thread");
    st->listener_started = true;
    return 0;
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .shared = true,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .abort = pg_abort,
    .get = pg_get,
    .put = pg_put,
    .del = pg_del,
    .scan = pg_scan,
    .count = pg_count,
    .counter_next = pg_counter_next,
    .kinds = pg_kinds,
    .lock_try = pg_lock_try,
    .lock_check = pg_lock_check,
    .lock_release = pg_lock_release,
    .notify = pg_notify,
    .subscribe = pg_subscribe,
    .log_append = pg_log_append,
    .log_scan = pg_log_scan,
    .log_expire = pg_log_expire,
    .log_drop = pg_log_drop,
    .log_bounds = pg_log_bounds,
    .bytes_put = pg_bytes_put,
    .bytes_get = pg_bytes_get,
    .bytes_del = pg_bytes_del,
};
