/* The parsed-document cache of the store (src/store/doc_cache.c): a cached
 * parse is used only for the exact text it came from, copies handed out are
 * the caller's own, shared reads get the cached document itself, and kinds
 * not asked for are never cached. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/doc_cache.h"

static json_t *parse(struct doc_cache *c, const char *kind, const char *key, const char *text,
                     bool shared)
{
    json_error_t jerr;
    json_t *doc = doc_cache_parse(c, kind, key, text, strlen(text), shared, &jerr);
    assert_non_null(doc);
    return doc;
}

static const char *status(const json_t *doc)
{
    return json_string_value(json_object_get(doc, "status"));
}

static void test_hit_only_for_the_same_text(void **state)
{
    struct doc_cache *c = doc_cache_new();
    doc_cache_add_kind(c, "taskdef");
    unsigned long hits, misses;
    json_t *a = parse(c, "taskdef", "web!1", "{\"status\":\"ACTIVE\",\"n\":1}", false);
    json_t *b = parse(c, "taskdef", "web!1", "{\"status\":\"ACTIVE\",\"n\":1}", false);
    doc_cache_stats(c, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);
    assert_true(json_equal(a, b));
    assert_ptr_not_equal(a, b);
    /* the status changed in the store: the new text is parsed, not the old
     * document returned */
    json_t *d = parse(c, "taskdef", "web!1", "{\"status\":\"INACTIVE\",\"n\":1}", false);
    assert_string_equal(status(d), "INACTIVE");
    doc_cache_stats(c, &hits, &misses);
    assert_int_equal(misses, 2);
    /* and it replaced the entry: the old text is a miss again */
    json_t *e = parse(c, "taskdef", "web!1", "{\"status\":\"ACTIVE\",\"n\":1}", false);
    assert_string_equal(status(e), "ACTIVE");
    doc_cache_stats(c, &hits, &misses);
    assert_int_equal(misses, 3);
    /* same text under another key is another entry */
    json_t *f = parse(c, "taskdef", "web!2", "{\"status\":\"ACTIVE\",\"n\":1}", false);
    doc_cache_stats(c, &hits, &misses);
    assert_int_equal(misses, 4);
    json_decref(a), json_decref(b), json_decref(d), json_decref(e), json_decref(f);
    doc_cache_free(c);
}

static void test_copies_are_the_callers(void **state)
{
    struct doc_cache *c = doc_cache_new();
    doc_cache_add_kind(c, "taskdef");
    const char *text = "{\"status\":\"ACTIVE\",\"c\":[{\"name\":\"a\"}]}";
    json_t *a = parse(c, "taskdef", "k", text, false);
    json_object_set_new(a, "status", json_string("CHANGED"));
    json_object_set_new(json_array_get(json_object_get(a, "c"), 0), "name", json_string("x"));
    json_t *b = parse(c, "taskdef", "k", text, false);
    assert_string_equal(status(b), "ACTIVE");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(b, "c"), 0), "name")),
        "a");
    json_decref(a), json_decref(b);
    doc_cache_free(c);
}

static void test_shared_reads_get_the_cached_document(void **state)
{
    struct doc_cache *c = doc_cache_new();
    doc_cache_add_kind(c, "taskdef");
    const char *text = "{\"status\":\"ACTIVE\"}";
    json_t *a = parse(c, "taskdef", "k", text, true);
    json_t *b = parse(c, "taskdef", "k", text, true);
    assert_ptr_equal(a, b);
    /* a changeable read is a copy of it */
    json_t *d = parse(c, "taskdef", "k", text, false);
    assert_ptr_not_equal(a, d);
    assert_true(json_equal(a, d));
    /* replacing the entry leaves earlier readers' references valid */
    json_t *e = parse(c, "taskdef", "k", "{\"status\":\"INACTIVE\"}", true);
    assert_string_equal(status(a), "ACTIVE");
    assert_string_equal(status(e), "INACTIVE");
    json_decref(a), json_decref(b), json_decref(d), json_decref(e);
    doc_cache_free(c);
}

static void test_other_kinds_and_large_documents_are_not_cached(void **state)
{
    struct doc_cache *c = doc_cache_new();
    doc_cache_add_kind(c, "taskdef");
    json_t *a = parse(c, "task", "k", "{}", true);
    json_t *b = parse(c, "task", "k", "{}", true);
    assert_ptr_not_equal(a, b);
    size_t n = DOC_CACHE_MAX_DOC + 100;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"a\":1}", 7);
    big[n] = '\0';
    json_t *d = parse(c, "taskdef", "big", big, true);
    json_t *e = parse(c, "taskdef", "big", big, true);
    assert_ptr_not_equal(d, e);
    unsigned long hits, misses;
    doc_cache_stats(c, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 0);
    /* no cache at all: plain parsing */
    json_t *f = parse(NULL, "taskdef", "k", "{\"x\":1}", true);
    assert_int_equal(json_integer_value(json_object_get(f, "x")), 1);
    free(big);
    json_decref(a), json_decref(b), json_decref(d), json_decref(e), json_decref(f);
    doc_cache_free(c);
}

static void test_bad_json_is_an_error(void **state)
{
    struct doc_cache *c = doc_cache_new();
    doc_cache_add_kind(c, "taskdef");
    json_error_t jerr;
    assert_null(doc_cache_parse(c, "taskdef", "k", "{nope", 5, false, &jerr));
    assert_null(doc_cache_parse(c, "taskdef", "k", "{nope", 5, true, &jerr));
    doc_cache_free(c);
}

struct racer {
    struct doc_cache *c;
    unsigned seed;
    int wrong;
};

/* Threads reading one key whose stored text keeps changing between two
 * versions: every read must answer the version it was given. */
static void *race(void *ud)
{
    struct racer *r = ud;
    static const char *texts[] = {"{\"status\":\"ACTIVE\",\"x\":[1,2,3]}",
                                  "{\"status\":\"INACTIVE\",\"x\":[1,2,3]}"};
    static const char *want[] = {"ACTIVE", "INACTIVE"};
    for (int i = 0; i < 20000; i++) {
        r->seed = r->seed * 1103515245u + 12345u;
        unsigned v = (r->seed >> 16) & 1;
        bool shared = (r->seed >> 17) & 1;
        json_error_t jerr;
        json_t *doc =
            doc_cache_parse(r->c, "taskdef", "web!1", texts[v], strlen(texts[v]), shared, &jerr);
        if (!doc || strcmp(status(doc), want[v]) != 0 ||
            json_array_size(json_object_get(doc, "x")) != 3)
            r->wrong++;
        if (doc && !shared)
            json_object_set_new(doc, "status", json_string("CHANGED"));
        json_decref(doc);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct doc_cache *c = doc_cache_new();
    doc_cache_add_kind(c, "taskdef");
    struct racer r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){c, (unsigned)i * 7919u + 1u, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].wrong, 0);
    }
    unsigned long hits, misses;
    doc_cache_stats(c, &hits, &misses);
    assert_int_equal(hits + misses, 4 * 20000);
    doc_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_only_for_the_same_text),
        cmocka_unit_test(test_copies_are_the_callers),
        cmocka_unit_test(test_shared_reads_get_the_cached_document),
        cmocka_unit_test(test_other_kinds_and_large_documents_are_not_cached),
        cmocka_unit_test(test_bad_json_is_an_error),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
