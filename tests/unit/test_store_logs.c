/* The store's log event table, against SQLite and, when BARGE_TEST_PG_URI
 * names a database (tests/e2e/pg_fixture.py -- CMD provides one; `make unit`
 * does), against PostgreSQL too: appends number events in order and never
 * reuse a number, scans follow (timestamp, id) both ways from a position,
 * stream subsets, expiry reports what each stream lost, and drops. */
/* cmocka.h needs the standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */
#include <libpq-fe.h>

#include "common/json.h"
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
        snprintf(pg_schema, sizeof(pg_schema), "l%d_%d", (int)getpid(), ++n);
        char sql[128];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", pg_schema);
        pg_exec(sql);
        snprintf(path, sizeof(path), "%s%coptions=-csearch_path%%3D%s", pg_base,
                 strchr(pg_base, '?') ? '&' : '?', pg_schema);
    } else {
        strcpy(dir, "/tmp/barge-store-logs-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/t.db", dir);
    }
    struct barge_store *st = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st, &err), 0);
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

/* Returns the id of the last event appended. */
static int64_t append(struct barge_store *st, int64_t group, int64_t stream, const int64_t *ts,
                      size_t n)
{
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    struct barge_store_log_event *evs = calloc(n, sizeof(*evs));
    char **msgs = calloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        msgs[i] = barge_xasprintf("s%lld t%lld", (long long)stream, (long long)ts[i]);
        evs[i].timestamp = ts[i];
        evs[i].ingestion = 1000;
        evs[i].message = msgs[i];
        evs[i].message_len = strlen(msgs[i]);
    }
    assert_int_equal(barge_store_log_append(tx, group, stream, evs, n, &err), 0);
    for (size_t i = 1; i < n; i++)
        assert_true(evs[i].id > evs[i - 1].id);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    int64_t last = evs[n - 1].id;
    for (size_t i = 0; i < n; i++)
        free(msgs[i]);
    free(msgs);
    free(evs);
    return last;
}

struct collected {
    char text[512];
    int64_t last_ts, last_id;
};

static int collect(const struct barge_store_log_event *ev, void *ud, struct barge_error **err)
{
    struct collected *c = ud;
    size_t len = strlen(c->text);
    snprintf(c->text + len, sizeof(c->text) - len, "%s%.*s", len ? "," : "", (int)ev->message_len,
             ev->message);
    c->last_ts = ev->timestamp;
    c->last_id = ev->id;
    return 0;
}

static void scan(struct barge_store *st, const struct barge_store_log_query *q, struct collected *c)
{
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    memset(c, 0, sizeof(*c));
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_int_equal(barge_store_log_scan(tx, q, collect, c, &err), 0);
    barge_store_abort(tx);
}

static void test_order_and_positions(void **state)
{
    struct barge_store *st = *state;
    append(st, 1, 10, (int64_t[]){5, 3, 7}, 3);
    append(st, 1, 11, (int64_t[]){4, 7}, 2);
    append(st, 2, 20, (int64_t[]){1}, 1);

    struct collected c;
    struct barge_store_log_query q = {.group = 1, .start = 0, .end = INT64_MAX};
    scan(st, &q, &c);
    /* Ordered by timestamp, then by the order of arrival. */
    assert_string_equal(c.text, "s10 t3,s11 t4,s10 t5,s10 t7,s11 t7");

    q.limit = 2;
    scan(st, &q, &c);
    assert_string_equal(c.text, "s10 t3,s11 t4");
    q.has_position = true;
    q.position_ts = c.last_ts;
    q.position_id = c.last_id;
    scan(st, &q, &c);
    assert_string_equal(c.text, "s10 t5,s10 t7");

    q.desc = true;
    q.limit = 0;
    q.position_ts = 7;
    q.position_id = INT64_MAX;
    scan(st, &q, &c);
    assert_string_equal(c.text, "s11 t7,s10 t7,s10 t5,s11 t4,s10 t3");

    struct barge_store_log_query r = {.group = 1, .start = 4, .end = 7};
    scan(st, &r, &c);
    assert_string_equal(c.text, "s11 t4,s10 t5");

    int64_t only[] = {11};
    struct barge_store_log_query s = {
        .group = 1, .streams = only, .n_streams = 1, .start = 0, .end = INT64_MAX};
    scan(st, &s, &c);
    assert_string_equal(c.text, "s11 t4,s11 t7");
    s.n_streams = 0;
    scan(st, &s, &c);
    assert_string_equal(c.text, "");
}

static void test_expire_drop_bounds(void **state)
{
    struct barge_store *st = *state;
    append(st, 1, 10, (int64_t[]){1, 2, 9}, 3);
    append(st, 1, 11, (int64_t[]){3, 8}, 2);
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    struct barge_store_log_removed *rm;
    size_t n;
    assert_int_equal(barge_store_log_expire(tx, 1, 5, &rm, &n, &err), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (rm[i].stream == 10) {
            assert_int_equal(rm[i].events, 2);
            assert_int_equal(rm[i].bytes, 2 * strlen("s10 t1"));
        } else {
            assert_int_equal(rm[i].stream, 11);
            assert_int_equal(rm[i].events, 1);
        }
    }
    free(rm);
    int64_t first = 0, last = 0;
    assert_int_equal(barge_store_log_bounds(tx, 10, &first, &last, &err), 1);
    assert_int_equal(first, 9);
    assert_int_equal(last, 9);
    assert_int_equal(barge_store_log_drop(tx, 1, 10, &err), 0);
    assert_int_equal(barge_store_log_bounds(tx, 10, &first, &last, &err), 0);
    assert_int_equal(barge_store_log_bounds(tx, 11, &first, &last, &err), 1);
    assert_int_equal(barge_store_log_drop(tx, 1, 0, &err), 0);
    assert_int_equal(barge_store_log_bounds(tx, 11, &first, &last, &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
}

/* Ids are in eventIds and paging tokens: removing the newest event must not
 * free its number for the next append. */
static void test_ids_never_reused(void **state)
{
    struct barge_store *st = *state;
    int64_t newest = append(st, 1, 10, (int64_t[]){1, 2}, 2);
    struct barge_tx *tx;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_int_equal(barge_store_log_drop(tx, 1, 0, &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    assert_true(append(st, 1, 10, (int64_t[]){3}, 1) > newest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_drop_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_never_reused, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
    pg_base = getenv("BARGE_TEST_PG_URI");
    if (!pg_base || !*pg_base) {
        printf("postgres: skipped (BARGE_TEST_PG_URI is not set)\n");
        return failed;
    }
    on_pg = true;
    return failed + cmocka_run_group_tests_name("postgres", tests, NULL, NULL);
}
