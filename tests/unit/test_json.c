/* barge_json_dump writes exactly what jansson's compact dumper writes:
 * escapes, UTF-8, integers at both ends of the range, reals in every
 * notation, nesting and key order, over fixed cases and many generated
 * documents; and what it cannot encode it leaves to jansson. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

static void same_as_jansson(const json_t *j)
{
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(want);
    char *got = barge_json_dump(j);
    if (strcmp(got, want) != 0)
        fail_msg("barge_json_dump wrote %s\njansson wrote %s", got, want);
    free(want);
    free(got);
}

static void test_fixed_cases(void **state)
{
    const double reals[] = {0.0,
                            -0.0,
                            1.0,
                            -1.5,
                            0.1,
                            1e-5,
                            1e-300,
                            1e300,
                            1e21,
                            1e22,
                            123456789012345678.0,
                            3.14159,
                            1764979200.123456,
                            -2.5e-7,
                            1e100,
                            5e-324,
                            1.7976931348623157e308};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        json_t *r = json_real(reals[i]);
        same_as_jansson(r);
        json_decref(r);
    }
    const json_int_t ints[] = {0, 1, -1, 9, 10, -10, 1234567890, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        json_t *n = json_integer(ints[i]);
        same_as_jansson(n);
        json_decref(n);
    }
    const char *strings[] = {"",
                             "plain",
                             "quote \" backslash \\ slash /",
                             "\b\f\n\r\t\x01\x1f\x7f",
                             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3",
                             "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        json_t *s = json_string(strings[i]);
        assert_non_null(s);
        same_as_jansson(s);
        json_decref(s);
    }
    json_t *nul = json_stringn("a\0b", 3);
    same_as_jansson(nul);
    json_decref(nul);
    json_t *doc = json_pack("{s:[], s:{}, s:n, s:b, s:b, s:[i, f, s, {s:[{}]}], s:{s:s}}", "z", "a",
                            "n", "t", 1, "f", 0, "list", 1, 2.5, "x", "deep", "m", "k\"ey", "v");
    json_object_set_new(doc, "k\0with nul", json_true());
    same_as_jansson(doc);
    json_decref(doc);
}

static unsigned long rnd_state = 12345;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005ul + 1442695040888963407ul;
    return (unsigned)(rnd_state >> 33) % n;
}

static json_t *random_string(void)
{
    static const char *pieces[] = {"a",
                                   "Z",
                                   "0",
                                   " ",
                                   "\"",
                                   "\\",
                                   "/",
                                   "\n",
                                   "\t",
                                   "\x02",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x90\xb3",
                                   "\x7f",
                                   "{"};
    char buf[256] = "";
    size_t n = rnd(12);
    for (size_t i = 0; i < n; i++)
        strcat(buf, pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))]);
    return json_string(buf);
}

static json_t *random_value(int depth)
{
    switch (rnd(depth > 4 ? 6 : 8)) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd(2));
    case 2:
        return json_integer((json_int_t)rnd(2000000000) * (rnd(2) ? -1 : 1) * rnd(100000));
    case 3:
        return json_real((double)rnd(1000000) / (1 + rnd(1000)) * (rnd(2) ? 1e-9 : 1e9));
    case 4:
    case 5:
        return random_string();
    case 6: {
        json_t *a = json_array();
        for (unsigned i = rnd(5); i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = rnd(6); i > 0; i--) {
            json_t *k = random_string();
            json_object_set_new(o, json_string_value(k), random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_generated_documents(void **state)
{
    for (int i = 0; i < 3000; i++) {
        json_t *j = random_value(0);
        same_as_jansson(j);
        json_decref(j);
    }
}

/* Plain text is copied eight bytes at a time: a byte that needs escaping
 * or checking is found at every position of a word and of the tail, next to
 * neighbours that test the word check's borrows. */
static void test_every_position_of_a_word(void **state)
{
    static const char specials[] = {'"', '\\', '\n', 0x01, 0x1f, ' ', '!', '#', '[', ']', 0x7f};
    static const char *const multi[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x90\xb3"};
    char buf[40];
    for (size_t len = 1; len <= 26; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t k = 0; k < sizeof(specials); k++) {
                for (char fill = 0x20; fill <= 0x23; fill++) {
                    memset(buf, fill == 0x22 ? 'a' : fill, len);
                    buf[len] = '\0';
                    buf[pos] = specials[k];
                    json_t *j = json_string(buf);
                    same_as_jansson(j);
                    json_decref(j);
                }
            }
            for (size_t k = 0; k < 3 && pos + strlen(multi[k]) <= len; k++) {
                memset(buf, 'x', len);
                buf[len] = '\0';
                memcpy(buf + pos, multi[k], strlen(multi[k]));
                json_t *j = json_string(buf);
                same_as_jansson(j);
                json_decref(j);
            }
        }
    }
}

/* Reals are written from a per-thread memo of their texts: the same value
 * again, and values that differ only in their sign or last bit, still come
 * out as jansson writes them. */
static void test_repeated_reals(void **state)
{
    double v[] = {1733540000.123, 0.0, -0.0, 1e300, 1733540000.123, 5e-324, 0.1, 0.1};
    json_t *a = json_array();
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
            json_array_append_new(a, json_real(v[i]));
            json_array_append_new(a, json_real(nextafter(v[i], 1e308)));
        }
    same_as_jansson(a);
    same_as_jansson(a);
    json_decref(a);
}

static void test_left_to_jansson(void **state)
{
    /* invalid UTF-8 that jansson would refuse to dump cannot be built with
     * json_string; nesting deeper than the encoder goes falls back */
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < 3000; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    char *got = barge_json_dump(root);
    char *want = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
    if (want)
        assert_string_equal(got, want);
    free(got);
    free(want);
    json_decref(root);
}

/* The list lookups the domain layer and the API files share. */
static void test_find_in_lists(void **state)
{
    (void)state;
    json_t *list = json_pack("[{s:s, s:i}, {s:s, s:i}, {s:i}]", "name", "web", "n", 1, "name", "db",
                             "n", 2, "name", 3);
    assert_int_equal(barge_json_int(barge_json_find(list, "name", "db"), "n", 0), 2);
    assert_null(barge_json_find(list, "name", "cache"));
    /* A member of another type never matches. */
    assert_null(barge_json_find(list, "name", "3"));
    assert_null(barge_json_find(NULL, "name", "web"));
    json_t *strs = json_pack("[s, i, s]", "a", 1, "b");
    assert_true(barge_json_has_string(strs, "b"));
    assert_false(barge_json_has_string(strs, "c"));
    assert_false(barge_json_has_string(list, "web"));
    json_decref(strs);
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_cases),
        cmocka_unit_test(test_generated_documents),
        cmocka_unit_test(test_every_position_of_a_word),
        cmocka_unit_test(test_repeated_reals),
        cmocka_unit_test(test_left_to_jansson),
        cmocka_unit_test(test_find_in_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
