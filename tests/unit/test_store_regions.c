/* The store's regions: which names are regions, the stored name of a kind in
 * a region, transactions that see one region's documents and counters, the
 * list of regions with documents, and the move of a store written before
 * regions into the default region (once). */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"
#include "store/store.h"

static char dir[64];
static char path[128];
static const char *const global[] = {"accesskey", "meta"};

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/barge-regions-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    barge_store_use_region(NULL);
    return 0;
}

static struct barge_store *open_store(bool regions)
{
    struct barge_store *st = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_open(path, &st, &err), 0);
    if (regions)
        assert_int_equal(barge_store_regions_init(st, "us-east-1", global, 2, &err), 0);
    return st;
}

static void put(struct barge_store *st, const char *region, const char *kind, const char *key,
                const char *value)
{
    barge_store_use_region(region);
    struct barge_tx *tx = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    json_t *doc = json_pack("{ss}", "v", value);
    assert_int_equal(barge_store_put(tx, kind, key, doc, &err), 0);
    json_decref(doc);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    barge_store_use_region(NULL);
}

/* The value of kind/key as region sees it, or "" when it has none. */
static char *get(struct barge_store *st, const char *region, const char *kind, const char *key)
{
    barge_store_use_region(region);
    struct barge_tx *tx = NULL;
    struct barge_error *err = NULL;
    json_t *doc = NULL;
    assert_int_equal(barge_store_begin(st, false, &tx, &err), 0);
    assert_true(barge_store_get(tx, kind, key, &doc, &err) >= 0);
    int64_t n = -1;
    assert_int_equal(barge_store_count(tx, kind, key, &n, &err), 0);
    assert_int_equal(n, doc ? 1 : 0);
    barge_store_abort(tx);
    barge_store_use_region(NULL);
    char *v = barge_xstrdup(doc ? barge_json_str(doc, "v", "") : "");
    json_decref(doc);
    return v;
}

static void test_region_names(void **state)
{
    (void)state;
    const char *good[] = {"us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1",
                          "cn-north-1"};
    const char *bad[] = {NULL,         "",           "moon",
                         "us-east",    "US-EAST-1",  "us--east-1",
                         "us-east-1a", "u-east-1",   "us-east-",
                         "us_east_1",  "us-east-1-", "-us-east-1",
                         "usa-east-1", "us-east-x1", "us-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(good); i++)
        assert_true(barge_store_region_valid(good[i]));
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(bad); i++)
        assert_false(barge_store_region_valid(bad[i]));
}

static void test_region_kinds(void **state)
{
    (void)state;
    struct barge_store *st = open_store(true);
    char *k = barge_store_region_kind(st, "eu-west-1", "cluster");
    assert_string_equal(k, "cluster@eu-west-1");
    free(k);
    k = barge_store_region_kind(st, "eu-west-1", "accesskey");
    assert_string_equal(k, "accesskey");
    free(k);
    k = barge_store_region_kind(st, NULL, "cluster");
    assert_string_equal(k, "cluster");
    free(k);
    assert_string_equal(barge_store_default_region(st), "us-east-1");
    barge_store_close(st);
}

static void test_documents_per_region(void **state)
{
    (void)state;
    struct barge_store *st = open_store(true);
    put(st, NULL, "cluster", "prod", "default");
    put(st, "eu-west-1", "cluster", "prod", "west");
    put(st, "eu-west-1", "accesskey", "AKIA1", "global");

    char *v;
    assert_string_equal(v = get(st, "us-east-1", "cluster", "prod"), "default");
    free(v);
    assert_string_equal(v = get(st, "eu-west-1", "cluster", "prod"), "west");
    free(v);
    assert_string_equal(v = get(st, "ap-southeast-2", "cluster", "prod"), "");
    free(v);
    assert_string_equal(v = get(st, "ap-southeast-2", "accesskey", "AKIA1"), "global");
    free(v);

    /* the regions with documents, the default one first */
    json_t *regions = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_store_regions(st, &regions, &err), 0);
    assert_int_equal(json_array_size(regions), 2);
    assert_string_equal(json_string_value(json_array_get(regions, 0)), "us-east-1");
    assert_string_equal(json_string_value(json_array_get(regions, 1)), "eu-west-1");
    json_decref(regions);

    /* counters of regional kinds count per region, others store-wide */
    int64_t a, b, c, d;
    struct barge_tx *tx = NULL;
    barge_store_use_region("eu-west-1");
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_string_equal(barge_store_tx_region(tx), "eu-west-1");
    assert_int_equal(barge_store_counter_next(tx, "taskdef:app", &a, &err), 0);
    assert_int_equal(barge_store_counter_next(tx, "logs.id", &c, &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    barge_store_use_region(NULL);
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_string_equal(barge_store_tx_region(tx), "us-east-1");
    assert_int_equal(barge_store_counter_next(tx, "taskdef:app", &b, &err), 0);
    assert_int_equal(barge_store_counter_next(tx, "logs.id", &d, &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    assert_int_equal(a, 1);
    assert_int_equal(b, 1);
    assert_int_equal(d, c + 1);
    barge_store_close(st);
}

static void test_store_from_before_regions(void **state)
{
    (void)state;
    /* written without regions: what barged did before */
    struct barge_store *st = open_store(false);
    put(st, NULL, "cluster", "old", "legacy");
    put(st, NULL, "accesskey", "AKIA1", "key");
    struct barge_tx *tx = NULL;
    struct barge_error *err = NULL;
    int64_t n;
    assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
    assert_null(barge_store_tx_region(tx));
    assert_int_equal(barge_store_counter_next(tx, "taskdef:app", &n, &err), 0);
    assert_int_equal(barge_store_commit(tx, &err), 0);
    barge_store_close(st);

    char *v;
    for (int round = 0; round < 2; round++) {
        st = open_store(true);
        assert_string_equal(v = get(st, NULL, "cluster", "old"), "legacy");
        free(v);
        assert_string_equal(v = get(st, "eu-west-1", "cluster", "old"), "");
        free(v);
        assert_string_equal(v = get(st, "eu-west-1", "accesskey", "AKIA1"), "key");
        free(v);
        /* the default region's counters go on from where they were */
        assert_int_equal(barge_store_begin(st, true, &tx, &err), 0);
        assert_int_equal(barge_store_counter_next(tx, "taskdef:app", &n, &err), 0);
        assert_int_equal(barge_store_commit(tx, &err), 0);
        assert_int_equal(n, 2 + round);
        if (round == 0)
            put(st, NULL, "cluster", "new", "after");
        barge_store_close(st);
    }
    /* a later start with another default region moves nothing again */
    assert_int_equal(barge_store_open(path, &st, &err), 0);
    assert_int_equal(barge_store_regions_init(st, "eu-west-1", global, 2, &err), 0);
    assert_string_equal(v = get(st, "us-east-1", "cluster", "new"), "after");
    free(v);
    assert_string_equal(v = get(st, "eu-west-1", "cluster", "new"), "");
    free(v);
    barge_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_names),
        cmocka_unit_test_setup_teardown(test_region_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_documents_per_region, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_from_before_regions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
