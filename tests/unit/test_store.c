/* The SQLite store: documents, ordered scans with prefixes and paging,
 * counters, transactions that roll back, and reopening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/json.h"
#include "store/store.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/barge-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
    struct barge_store *st = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st, &err), 0);
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    barge_store_close(*state);
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
    assert_int_equal(barge_store_scan(tx, "td", "web!", "web!01", false, 1, collect, &c, &err),
                     0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.keys[0], "web!02");

    memset(&c, 0, sizeof(c));
    assert_int_equal(barge_store_scan(tx, "td", "web!", NULL, true, 0, collect, &c, &err), 0);
    assert_string_equal(c.keys[0], "web!10");
    assert_string_equal(c.keys[2], "web!01");

    memset(&c, 0, sizeof(c));
    assert_int_equal(barge_store_scan(tx, "td", "web!", "web!10", true, 0, collect, &c, &err),
                     0);
    assert_int_equal(c.n, 2);

    int64_t n;
    assert_int_equal(barge_store_count(tx, "td", "web", &n, &err), 0);
    assert_int_equal(n, 4);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_put_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_order_prefix_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test(test_rejects_other_uris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
