/* The store, against SQLite and, when BARGE_TEST_PG_URI names a database
 * (tests/e2e/pg_fixture.py -- CMD provides one; `make unit` does), against
 * PostgreSQL too: documents, ordered scans with prefixes and paging, counters,
 * transactions that roll back, reopening; and what only several processes on
 * one PostgreSQL database need: writers serialised across store handles,
 * store-wide locks and notifications. Each PostgreSQL test runs in a schema
 * of its own. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "store/memo.h"
#include "store/store.h"

static char dir[64];
static char path[1024]; /* the URI the tests open: a file or a PostgreSQL schema */
static const char *pg_base;
static char pg_schema[64];
static bool on_pg;

static void quiet(void *ud, const char *message)
{
}

static void pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(pg_base);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQsetNoticeProcessor(c, quiet, NULL);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

static int setup(void **state)
{
    if (on_pg) {
        static int n;
        snprintf(pg_schema, sizeof(pg_schema), "t%d_%d", (int)getpid(), ++n);
        char sql[128];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", pg_schema);
        pg_exec(sql);
        snprintf(path, sizeof(path), "%s%coptions=-csearch_path%%3D%s", pg_base,
                 strchr(pg_base, '?') ? '&' : '?', pg_schema);
    } else {
        strcpy(dir, "/tmp/barge-store-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/t.db", dir);
    }
    struct barge_store *st = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st, &err), 0);
    assert_string_equal(barge_store_backend(st), on_pg ? "postgres" : "sqlite");
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    barge_store_close(*state);
    if (on_pg) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", pg_schema);
        pg_exec(sql);
        return 0;
    }
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void put(struct barge_store *st, const char *kind, const char *key, int v)
{
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    json_t *doc = json_pack("{s:i}", "v", v);
    assert_int_equal(barge_store_put(tx, kind, key, doc, &err), 0);
    json_decref(doc);
    assert_int_equal(barge_store_commit(tx, &err), 0);
}

static void put_in(struct barge_tx *tx, const char *kind, const char *key, int v)
{
    struct barge_error *err = NULL;
    json_t *doc = json_pack("{s:i}", "v", v);
    assert_int_equal(barge_store_put(tx, kind, key, doc, &err), 0);
    json_decref(doc);
}

static void test_get_put_del(void **state)
{
    struct barge_store *st = *state;
    put(st, "k", "a", 1);
    put(st, "k", "a", 2);
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    json_t *doc;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_int_equal(barge_store_get(tx, "k", "a", &doc, &err), 1);
    assert_int_equal(barge_json_int(doc, "v", 0), 2);
    json_decref(doc);
    assert_int_equal(barge_store_get(tx, "other", "a", &doc, &err), 0);
    assert_null(doc);
    /* writes are refused in a read transaction */
    json_t *empty = json_object();
    assert_int_equal(barge_store_put(tx, "k", "b", empty, &err), -1);
    json_decref(empty);
    barge_error_free(err);
    err = NULL;
    barge_store_abort(tx);

    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_int_equal(barge_store_del(tx, "k", "a", &err), 0);
    assert_int_equal(barge_store_del(tx, "k", "missing", &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_int_equal(barge_store_get(tx, "k", "a", &doc, &err), 0);
    barge_store_abort(tx);
}

/* Byte strings: chunks of any content (NULs, the largest size), copied from
 * and to files, replaced, removed, and only written in write transactions. */
static void test_bytes(void **state)
{
    struct barge_store *st = *state;
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    size_t total = 2 * BARGE_STORE_CHUNK + 77;
    unsigned char *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)(i * 7 + i / 3);
    char src[] = "/tmp/barge-bytes-XXXXXX";
    int fd = mkstemp(src);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, total), (ssize_t)total);

    assert_int_equal(barge_store_bytes_write_fd(st, "blob/a", fd, &err), 0);
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_int_equal(barge_store_bytes_put(tx, "empty", 0, "", 0, &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    close(fd);
    unlink(src);

    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    void *chunk;
    size_t len;
    assert_int_equal(barge_store_bytes_get(tx, "blob/a", 2, &chunk, &len, &err), 1);
    assert_int_equal(len, 77);
    assert_memory_equal(chunk, data + 2 * BARGE_STORE_CHUNK, 77);
    free(chunk);
    assert_int_equal(barge_store_bytes_get(tx, "blob/a", 3, &chunk, &len, &err), 0);
    assert_int_equal(barge_store_bytes_get(tx, "empty", 0, &chunk, &len, &err), 1);
    assert_int_equal(len, 0);
    free(chunk);
    char dst[] = "/tmp/barge-bytes-XXXXXX";
    fd = mkstemp(dst);
    uint64_t size;
    assert_int_equal(barge_store_bytes_to_fd(tx, "blob/a", fd, &size, &err), 1);
    assert_int_equal(size, total);
    unsigned char *back = malloc(total);
    assert_int_equal(pread(fd, back, total, 0), (ssize_t)total);
    assert_memory_equal(back, data, total);
    assert_int_equal(barge_store_bytes_to_fd(tx, "missing", fd, &size, &err), 0);
    assert_int_equal(size, 0);
    close(fd);
    unlink(dst);
    /* no writes in a read transaction */
    assert_int_equal(barge_store_bytes_del(tx, "blob/a", &err), -1);
    barge_error_free(err);
    err = NULL;
    barge_store_abort(tx);

    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_int_equal(barge_store_bytes_del(tx, "blob/a", &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_int_equal(barge_store_bytes_get(tx, "blob/a", 0, &chunk, &len, &err), 0);
    barge_store_abort(tx);
    free(back);
    free(data);
}

static void test_abort_rolls_back(void **state)
{
    struct barge_store *st = *state;
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    json_t *doc = json_object();
    assert_int_equal(barge_store_put(tx, "k", "x", doc, &err), 0);
    json_decref(doc);
    int64_t n;
    assert_int_equal(barge_store_counter_next(tx, "c", &n, &err), 0);
    barge_store_abort(tx);
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_int_equal(barge_store_get(tx, "k", "x", &doc, &err), 0);
    assert_int_equal(barge_store_counter_next(tx, "c", &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(barge_store_counter_next(tx, "c", &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(barge_store_commit(tx, &err), 0);
}

struct collected {
    char keys[16][32];
    int n;
};

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct collected *c = ud;
    snprintf(c->keys[c->n++], 32, "%s", key);
    return c->n == 16 ? 1 : 0;
}

static void test_scan_order_prefix_paging(void **state)
{
    struct barge_store *st = *state;
    const char *keys[] = {"web!02", "web!01", "web-x!01", "api!01", "web!10"};
    for (size_t i = 0; i < 5; i++)
        put(st, "td", keys[i], (int)i);
    put(st, "other", "web!05", 0);
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);

    struct collected c = {0};
    assert_int_equal(barge_store_scan(tx, "td", "", NULL, false, 0, collect, &c, &err), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.keys[0], "api!01");
    assert_string_equal(c.keys[1], "web!01");
    assert_string_equal(c.keys[3], "web!10");
    assert_string_equal(c.keys[4], "web-x!01");

    memset(&c, 0, sizeof(c));
    assert_int_equal(barge_store_scan(tx, "td", "web!", NULL, false, 0, collect, &c, &err), 0);
    assert_int_equal(c.n, 3);

    memset(&c, 0, sizeof(c));
    assert_int_equal(barge_store_scan(tx, "td", "web!", "web!01", false, 1, collect, &c, &err), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.keys[0], "web!02");

    memset(&c, 0, sizeof(c));
    assert_int_equal(barge_store_scan(tx, "td", "web!", NULL, true, 0, collect, &c, &err), 0);
    assert_string_equal(c.keys[0], "web!10");
    assert_string_equal(c.keys[2], "web!01");

    memset(&c, 0, sizeof(c));
    assert_int_equal(barge_store_scan(tx, "td", "web!", "web!10", true, 0, collect, &c, &err), 0);
    assert_int_equal(c.n, 2);

    int64_t n;
    assert_int_equal(barge_store_count(tx, "td", "web", &n, &err), 0);
    assert_int_equal(n, 4);
    barge_store_abort(tx);
}

struct walk {
    int n, first, last, stop_at;
    bool ordered;
    struct barge_tx *tx; /* reads a document per row when set */
};

static int walk_row(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct walk *w = ud;
    int v = (int)barge_json_int(doc, "v", -1);
    if (w->n == 0)
        w->first = v;
    else if (abs(v - w->last) != 1)
        w->ordered = false;
    w->last = v;
    w->n++;
    if (w->tx) {
        json_t *other = NULL;
        if (barge_store_get(w->tx, "many", "m0000", &other, err) < 0)
            return -1;
        json_decref(other);
    }
    return w->n == w->stop_at ? 1 : 0;
}

/* Scans longer than the PostgreSQL backend's page of rows: every row once,
 * in order, across pages, with limits, starting points and early stops that
 * fall inside and at the edges of pages, and reads between rows. */
static void test_long_scans(void **state)
{
    struct barge_store *st = *state;
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "m%04d", i);
        put_in(tx, "many", key, i);
    }
    put_in(tx, "many!", "m0500", -1); /* another kind, same keys */
    assert_int_equal(barge_store_commit(tx, &err), 0);
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    struct {
        const char *after;
        bool desc;
        size_t limit;
        int stop_at, n, first, last;
    } cases[] = {
        {NULL, false, 0, 0, 1000, 0, 999},      {NULL, true, 0, 0, 1000, 999, 0},
        {NULL, false, 256, 0, 256, 0, 255},     {NULL, false, 257, 0, 257, 0, 256},
        {NULL, false, 600, 0, 600, 0, 599},     {"m0255", false, 0, 0, 744, 256, 999},
        {"m0700", true, 300, 0, 300, 699, 400}, {NULL, false, 0, 513, 513, 0, 512},
        {"m0999", false, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(cases); i++) {
        struct walk w = {.ordered = true, .stop_at = cases[i].stop_at, .tx = i == 0 ? tx : NULL};
        assert_int_equal(barge_store_scan(tx, "many", "m", cases[i].after, cases[i].desc,
                                          cases[i].limit, walk_row, &w, &err),
                         0);
        assert_int_equal(w.n, cases[i].n);
        assert_true(w.ordered);
        if (w.n) {
            assert_int_equal(w.first, cases[i].first);
            assert_int_equal(w.last, cases[i].last);
        }
    }
    barge_store_abort(tx);
}

struct nested {
    struct barge_tx *tx;
    int outer, inner;
};

static int count_inner(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    ((struct nested *)ud)->inner++;
    return 0;
}

static int scan_inside(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct nested *n = ud;
    n->outer++;
    return barge_store_scan(n->tx, "td", "", NULL, false, 0, count_inner, n, err);
}

/* A scan callback may scan again (placement reads each instance's tasks while
 * walking the instances): the outer scan must still see every row. */
static void test_nested_scans(void **state)
{
    struct barge_store *st = *state;
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        put(st, "td", key, i);
    }
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    struct nested n = {tx, 0, 0};
    assert_int_equal(barge_store_scan(tx, "td", "", NULL, false, 0, scan_inside, &n, &err), 0);
    assert_int_equal(n.outer, 3);
    assert_int_equal(n.inner, 9);
    barge_store_abort(tx);
}

static void test_reopen_keeps_data(void **state)
{
    struct barge_store *st = *state;
    put(st, "k", "persist", 7);
    barge_store_close(st);
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st, &err), 0);
    *state = st;
    struct barge_tx *tx;
    json_t *doc;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_int_equal(barge_store_get(tx, "k", "persist", &doc, &err), 1);
    assert_int_equal(barge_json_int(doc, "v", 0), 7);
    json_decref(doc);
    barge_store_abort(tx);
}

static void test_rejects_other_uris(void **state)
{
    struct barge_store *st = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open("mysql://x", &st, &err), -1);
    assert_non_null(strstr(err->message, "mysql://x"));
    barge_error_free(err);
}

/* Keys sort byte-wise in both backends (PostgreSQL: the "C" collation),
 * whatever the database's locale. */
static void test_keys_sort_bytewise(void **state)
{
    struct barge_store *st = *state;
    const char *keys[] = {"~", "a", "_", "Z1", "B", "a-b", "a.b", "aB"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keys); i++)
        put(st, "s", keys[i], (int)i);
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    struct collected c = {0};
    assert_int_equal(barge_store_scan(tx, "s", "", NULL, false, 0, collect, &c, &err), 0);
    const char *want[] = {"B", "Z1", "_", "a", "a-b", "a.b", "aB", "~"};
    assert_int_equal(c.n, 8);
    for (int i = 0; i < 8; i++)
        assert_string_equal(c.keys[i], want[i]);
    memset(&c, 0, sizeof(c));
    assert_int_equal(barge_store_scan(tx, "s", "a", NULL, true, 0, collect, &c, &err), 0);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.keys[0], "aB");
    barge_store_abort(tx);
}

static void test_lock_is_exclusive(void **state)
{
    struct barge_store *st = *state, *st2 = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st2, &err), 0);
    struct barge_store_lock *l1 = NULL, *l2 = NULL;
    assert_int_equal(barge_store_lock_try(st, "leader", &l1, &err), 1);
    assert_int_equal(barge_store_lock_check(l1, &err), 0);
    assert_int_equal(barge_store_lock_try(st2, "leader", &l2, &err), 0);
    assert_null(l2);
    /* other names are other locks */
    assert_int_equal(barge_store_lock_try(st2, "other", &l2, &err), 1);
    barge_store_lock_release(l2);
    barge_store_lock_release(l1);
    assert_int_equal(barge_store_lock_try(st2, "leader", &l2, &err), 1);
    assert_int_equal(barge_store_lock_check(l2, &err), 0);
    barge_store_lock_release(l2);
    barge_store_close(st2);
}

struct writer {
    struct barge_store *st;
    volatile bool done;
    int seen;
};

static void *second_writer(void *ud)
{
    struct writer *w = ud;
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    json_t *doc = NULL;
    assert_int_equal(barge_store_begin(w->st, true, &tx, &err), 0);
    assert_int_equal(barge_store_get(tx, "k", "shared", &doc, &err), 1);
    w->seen = (int)barge_json_int(doc, "v", 0);
    json_decref(doc);
    put_in(tx, "k", "shared", w->seen + 1);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    w->done = true;
    return NULL;
}

/* Two store handles are two barged: a write transaction of one waits for the
 * other's to end and then sees what it wrote. */
static void test_pg_writers_serialised(void **state)
{
    struct barge_store *st = *state;
    struct barge_error *err = NULL;
    struct writer w = {0};
    assert_int_equal(barge_store_open(path, &w.st, &err), 0);
    put(st, "k", "shared", 1);
    struct barge_tx *tx;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    put_in(tx, "k", "shared", 10);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_writer, &w), 0);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_false(w.done);
    /* readers are not blocked and see the last commit */
    struct barge_tx *rtx;
    json_t *doc;
    assert_int_equal(barge_store_begin(st, false, &rtx, &err), 0);
    assert_int_equal(barge_store_get(rtx, "k", "shared", &doc, &err), 1);
    assert_int_equal(barge_json_int(doc, "v", 0), 1);
    json_decref(doc);
    barge_store_abort(rtx);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    pthread_join(t, NULL);
    assert_true(w.done);
    assert_int_equal(w.seen, 10);
    barge_store_close(w.st);
}

struct heard {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n;
};

static void on_change(void *ud)
{
    struct heard *h = ud;
    pthread_mutex_lock(&h->lock);
    h->n++;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static bool wait_heard(struct heard *h, int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&h->lock);
    while (h->n < n && pthread_cond_timedwait(&h->cond, &h->lock, &deadline) == 0)
        ;
    bool ok = h->n >= n;
    pthread_mutex_unlock(&h->lock);
    return ok;
}

static void test_pg_notify_reaches_the_other(void **state)
{
    struct barge_store *st = *state, *st2 = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st2, &err), 0);
    struct heard h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    assert_int_equal(barge_store_subscribe(st2, on_change, &h, &err), 0);
    /* once when listening starts: anything before it may have been missed */
    assert_true(wait_heard(&h, 1));
    barge_store_notify(st);
    assert_true(wait_heard(&h, 2));
    /* its own notifications do not come back to it */
    barge_store_notify(st2);
    struct timespec ts = {0, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&h.lock);
    assert_int_equal(h.n, 2);
    pthread_mutex_unlock(&h.lock);
    barge_store_close(st2);
}

static void test_pg_password_stays_out_of_messages(void **state)
{
    struct barge_store *st = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(
        barge_store_open("postgres://u:sekrit@127.0.0.1:1/x?connect_timeout=2", &st, &err), -1);
    assert_null(strstr(err->message, "sekrit"));
    assert_non_null(strstr(err->message, "postgres://u:***@127.0.0.1:1/x"));
    barge_error_free(err);
}

struct first_doc {
    json_t *doc;
};

static int keep_first(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct first_doc *f = ud;
    f->doc = json_deep_copy(doc);
    return 1;
}

/* A cached kind: reads use the cached parse only while the stored text is
 * unchanged, so a change made through another handle on the same database
 * (another barged) is seen at once by get and scan; copies from get are the
 * caller's own. */
static void test_cached_kind_sees_every_change(void **state)
{
    struct barge_store *st = *state, *st2 = NULL;
    struct barge_error *err = NULL;
    barge_store_cache_kind(st, "td");
    assert_int_equal(barge_store_open(path, &st2, &err), 0);
    struct barge_tx *tx = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    json_t *doc = json_pack("{s:s, s:s}", "status", "ACTIVE", "family", "web");
    assert_int_equal(barge_store_put(tx, "td", "web!1", doc, &err), 0);
    json_decref(doc);
    assert_int_equal(barge_store_commit(tx, &err), 0);

    for (int round = 0; round < 2; round++) {
        json_t *got = NULL;
        assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
        assert_int_equal(barge_store_get(tx, "td", "web!1", &got, &err), 1);
        assert_string_equal(barge_json_str(got, "status", ""), "ACTIVE");
        json_object_set_new(got, "status", json_string("CHANGED BY A READER"));
        json_decref(got);
        struct first_doc f = {0};
        assert_int_equal(barge_store_scan(tx, "td", "web!", NULL, false, 0, keep_first, &f, &err),
                         0);
        assert_string_equal(barge_json_str(f.doc, "status", ""), "ACTIVE");
        json_decref(f.doc);
        barge_store_abort(tx);
    }
    unsigned long hits, misses;
    barge_store_cache_stats(st, &hits, &misses);
    assert_true(hits >= 2);

    /* the other handle deregisters it */
    assert_int_equal(barge_store_begin(st2, true, &tx, &err), 0);
    doc = json_pack("{s:s, s:s}", "status", "INACTIVE", "family", "web");
    assert_int_equal(barge_store_put(tx, "td", "web!1", doc, &err), 0);
    json_decref(doc);
    assert_int_equal(barge_store_commit(tx, &err), 0);

    json_t *got = NULL;
    struct first_doc f = {0};
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_int_equal(barge_store_get(tx, "td", "web!1", &got, &err), 1);
    assert_string_equal(barge_json_str(got, "status", ""), "INACTIVE");
    assert_int_equal(barge_store_scan(tx, "td", "web!", NULL, false, 0, keep_first, &f, &err), 0);
    assert_string_equal(barge_json_str(f.doc, "status", ""), "INACTIVE");
    json_decref(got);
    json_decref(f.doc);
    barge_store_abort(tx);

    /* and deletes it */
    assert_int_equal(barge_store_begin(st2, true, &tx, &err), 0);
    assert_int_equal(barge_store_del(tx, "td", "web!1", &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_int_equal(barge_store_get(tx, "td", "web!1", &got, &err), 0);
    f.doc = NULL;
    assert_int_equal(barge_store_scan(tx, "td", "web!", NULL, false, 0, keep_first, &f, &err), 0);
    assert_null(f.doc);
    barge_store_abort(tx);
    barge_store_close(st2);
    barge_error_free(err);
}

/* A memo answered by a read transaction that began at seq, or NULL. */
static json_t *memo(struct barge_store *st, const char *kind, const char *name)
{
    struct barge_tx *tx = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    json_t *m = barge_store_memo_get(tx, kind, name);
    barge_store_abort(tx);
    return m;
}

static void memo_put(struct barge_store *st, const char *kind, const char *name, int v)
{
    struct barge_tx *tx = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    json_t *value = json_integer(v);
    barge_store_memo_put(tx, kind, name, value);
    json_decref(value);
    barge_store_abort(tx);
}

static int memo_value(struct barge_store *st, const char *kind, const char *name)
{
    json_t *m = memo(st, kind, name);
    int v = m ? (int)json_integer_value(m) : -1;
    json_decref(m);
    return v;
}

static void test_memos_end_with_a_write_to_their_kind(void **state)
{
    struct barge_store *st = *state, *st2 = NULL;
    struct barge_error *err = NULL;
    if (on_pg) {
        /* other processes write without telling: no memos */
        memo_put(st, "td", "latest", 1);
        assert_null(memo(st, "td", "latest"));
        return;
    }
    memo_put(st, "td", "latest", 1);
    assert_int_equal(memo_value(st, "td", "latest"), 1);
    assert_int_equal(memo_value(st, "td", "other"), -1);

    /* writes to other kinds leave it */
    put(st, "task", "t1", 1);
    assert_int_equal(memo_value(st, "td", "latest"), 1);

    /* a write to its kind ends it */
    put(st, "td", "web!1", 1);
    assert_int_equal(memo_value(st, "td", "latest"), -1);

    /* and so does one by another process on the file (a second handle maps
     * the same counters) */
    memo_put(st, "td", "latest", 2);
    assert_int_equal(memo_value(st, "td", "latest"), 2);
    assert_int_equal(barge_store_open(path, &st2, &err), 0);
    put(st2, "td", "web!2", 1);
    assert_int_equal(memo_value(st, "td", "latest"), -1);

    /* the same kind in another region is another kind */
    const char *global[] = {"meta"};
    assert_int_equal(barge_store_regions_init(st, "us-east-1", global, 1, &err), 0);
    assert_int_equal(barge_store_regions_init(st2, "us-east-1", global, 1, &err), 0);
    memo_put(st, "td", "latest", 3);
    struct barge_tx *tx = NULL;
    assert_int_equal(barge_store_begin_in(st2, "eu-west-1", true, &tx, &err), 0);
    put_in(tx, "td", "web!1", 1);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    assert_int_equal(memo_value(st, "td", "latest"), 3);

    /* a read that began before a commit to the kind keeps no memo: it may not
     * have seen the commit */
    struct barge_tx *reader = NULL;
    assert_int_equal(barge_store_begin(st, false, &reader, &err), 0);
    put(st2, "td", "web!3", 1);
    json_t *stale = json_integer(4);
    barge_store_memo_put(reader, "td", "latest", stale);
    json_decref(stale);
    barge_store_abort(reader);
    assert_int_equal(memo_value(st, "td", "latest"), -1);

    /* write transactions neither keep nor get memos */
    memo_put(st, "td", "latest", 5);
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_null(barge_store_memo_get(tx, "td", "latest"));
    barge_store_abort(tx);

    unsigned long hits, misses;
    barge_store_memo_stats(st, &hits, &misses);
    assert_true(hits >= 4);
    assert_true(misses >= 4);
    barge_store_close(st2);
}

/* A process killed between COMMIT and stamping its kinds leaves them in
 * flight: they get no memos until the store is opened afresh by a process
 * that finds nobody else has it open. */
static void test_memos_wait_out_a_commit_in_flight(void **state)
{
    struct barge_store *st = *state;
    if (on_pg)
        return;
    char mpath[1100];
    snprintf(mpath, sizeof(mpath), "%s.memo", path);
    struct store_memo *m = store_memo_open(mpath);
    assert_non_null(m);
    uint64_t dirty[4] = {0};
    unsigned b = store_memo_bucket("td@us-east-1");
    dirty[b / 64] |= 1ULL << (b % 64);
    store_memo_commit_begin(m, dirty); /* and never ends */
    json_t *v = json_integer(1);
    store_memo_put(m, "td@us-east-1", "latest", store_memo_seq(m), v);
    assert_null(store_memo_get(m, "td@us-east-1", "latest", store_memo_seq(m)));
    store_memo_put(m, "task@us-east-1", "x", store_memo_seq(m), v);
    json_t *got = store_memo_get(m, "task@us-east-1", "x", store_memo_seq(m));
    assert_non_null(got);
    json_decref(got);
    store_memo_free(m);

    /* st still has it open: still in flight */
    m = store_memo_open(mpath);
    store_memo_put(m, "td@us-east-1", "latest", store_memo_seq(m), v);
    assert_null(store_memo_get(m, "td@us-east-1", "latest", store_memo_seq(m)));
    store_memo_free(m);

    /* once nobody has it open, the next one starts clean */
    barge_store_close(st);
    m = store_memo_open(mpath);
    store_memo_put(m, "td@us-east-1", "latest", store_memo_seq(m), v);
    got = store_memo_get(m, "td@us-east-1", "latest", store_memo_seq(m));
    assert_non_null(got);
    json_decref(got);
    store_memo_free(m);
    json_decref(v);
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st, &err), 0);
    *state = st;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_put_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_order_prefix_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_sort_bytewise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_is_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_kind_sees_every_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memos_end_with_a_write_to_their_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memos_wait_out_a_commit_in_flight, setup, teardown),
        cmocka_unit_test(test_rejects_other_uris),
    };
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test_setup_teardown(test_pg_writers_serialised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_notify_reaches_the_other, setup, teardown),
        cmocka_unit_test(test_pg_password_stays_out_of_messages),
    };
    int failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
    pg_base = getenv("BARGE_TEST_PG_URI");
    if (!pg_base || !*pg_base) {
        printf("postgres: skipped (BARGE_TEST_PG_URI is not set)\n");
        return failed;
    }
    on_pg = true;
    failed += cmocka_run_group_tests_name("postgres", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("postgres only", pg_only, NULL, NULL);
    return failed;
}
