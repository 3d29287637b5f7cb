/* Unit tests of the Smithy RPC v2 CBOR codec (src/api/cbor.c): every CBOR
 * form a client may send (integers of each width, floats of each width,
 * strings definite and chunked, byte strings, arrays and maps definite and
 * indefinite, tag 1 timestamps, simple values) decodes to the JSON handlers
 * see, malformed bodies are refused, and answers are typed by the model
 * (timestamps tagged, doubles as doubles, unmodelled members left out). */
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "api/api.h"
#include "api/model.h"
#include "common/json.h"

static void expect(const unsigned char *b, size_t n, const char *want_text)
{
    json_t *out = NULL;
    struct barge_error *err = NULL;
    if (barge_api_cbor_decode(b, n, &out, &err) < 0)
        fail_msg("decode failed: %s", err->message);
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(out, want))
        fail_msg("got %s, want %s", barge_json_dump(out), want_text);
    json_decref(out);
    json_decref(want);
}

static void test_decode(void **state)
{
    static const unsigned char names[] = {0xa2, 0x6a, 'A', 'l',  'a',  'r', 'm',  'N', 'a',
                                          'm',  'e',  's', 0x81, 0x61, 'a', 0x6a, 'M', 'a',
                                          'x',  'R',  'e', 'c',  'o',  'r', 'd',  's', 0x05};
    expect(names, sizeof(names), "{\"AlarmNames\": [\"a\"], \"MaxRecords\": 5}");
    static const unsigned char numbers[] = {
        0xa8, 0x61, 'a',  0x18, 0x3c,                                           /* 60 */
        0x61, 'b',  0x38, 0x63,                                                 /* -100 */
        0x61, 'c',  0x1a, 0x00, 0x01, 0x00, 0x00,                               /* 65536 */
        0x61, 'd',  0xf9, 0x3c, 0x00,                                           /* half 1.0 */
        0x61, 'e',  0xfa, 0x3f, 0xc0, 0x00, 0x00,                               /* single 1.5 */
        0x61, 'f',  0xc1, 0xfb, 0x41, 0xda, 0xc2, 0xe5, 0x4c, 0x00, 0x00, 0x00, /* tag 1 */
        0x61, 'g',  0xc1, 0x1a, 0x6b, 0x0c, 0xa2, 0x70,                         /* tag 1, integer */
        0x61, 'h',  0xf5};
    expect(numbers, sizeof(numbers),
           "{\"a\": 60, \"b\": -100, \"c\": 65536, \"d\": 1.0, \"e\": 1.5,"
           " \"f\": 1795921200.0, \"g\": 1795990128.0, \"h\": true}");
    static const unsigned char indefinite[] = {
        0xbf, 0x61, 'l',  0x9f, 0x01, 0x02, 0xff,            /* [1, 2] */
        0x61, 's',  0x7f, 0x61, 'a',  0x62, 'b',  'c', 0xff, /* "abc" in chunks */
        0x61, 'b',  0x43, 0x01, 0x02, 0x03,                  /* bytes: base64 */
        0x61, 'n',  0xf6,                                    /* null: absent */
        0xff};
    expect(indefinite, sizeof(indefinite), "{\"l\": [1, 2], \"s\": \"abc\", \"b\": \"AQID\"}");
    expect((const unsigned char *)"", 0, "{}");
}

/* Strings are counted, not NUL-terminated: a NUL inside one is kept, and
 * nothing past the string's length is read. */
static void test_decode_nul_in_strings(void **state)
{
    static const unsigned char b[] = {0xa2, 0x61, 't',  0x63, 'a',  0x00, 'b', /* text */
                                      0x61, 'b',  0x43, 'a',  0x00, 'b'};      /* bytes */
    json_t *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_api_cbor_decode(b, sizeof(b), &out, &err), 0);
    const json_t *t = json_object_get(out, "t");
    assert_int_equal(json_string_length(t), 3);
    assert_memory_equal(json_string_value(t), "a\0b", 3);
    assert_string_equal(json_string_value(json_object_get(out, "b")), "YQBi");
    json_decref(out);
}

static void test_decode_errors(void **state)
{
    static const struct {
        unsigned char b[8];
        size_t n;
    } bad[] = {
        {{0xa1, 0x61}, 2},                       /* truncated */
        {{0xa1, 0x01, 0x02}, 3},                 /* key not a string */
        {{0xa0, 0x00}, 2},                       /* trailing bytes */
        {{0x01}, 1},                             /* not a map */
        {{0xa1, 0x61, 'a', 0x61, 0xff}, 5},      /* not UTF-8 */
        {{0xa1, 0x61, 'a', 0xc1, 0x61, 'x'}, 6}, /* timestamp not a number */
        {{0xa1, 0x61, 'a', 0x1c}, 4},            /* reserved */
        {{0xa1, 0x61, 'a', 0x7f, 0x61, 'x'}, 6}, /* unterminated chunks */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *out = NULL;
        struct barge_error *err = NULL;
        assert_int_equal(barge_api_cbor_decode(bad[i].b, bad[i].n, &out, &err), -1);
        assert_null(out);
        assert_int_equal(err->code, BARGE_ERR_SERIALIZATION);
        barge_error_free(err);
    }
    unsigned char deep[202];
    deep[0] = 0xa1;
    deep[1] = 0x61;
    deep[2] = 'a';
    memset(deep + 3, 0x81, sizeof(deep) - 4);
    deep[sizeof(deep) - 1] = 0x01;
    json_t *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_api_cbor_decode(deep, sizeof(deep), &out, &err), -1);
    assert_non_null(strstr(err->message, "deeply"));
    barge_error_free(err);
}

static void test_encode(void **state)
{
    json_t *out = json_loads("{\"MetricAlarms\": [{\"Period\": 60, \"Threshold\": 50,"
                             " \"StateUpdatedTimestamp\": 1.5, \"_internal\": 1,"
                             " \"ActionsEnabled\": false, \"AlarmName\": \"a\"}]}",
                             0, NULL);
    size_t len;
    unsigned char *b =
        barge_api_cbor_encode(barge_model_get("cloudwatch"), "DescribeAlarms", out, &len);
    static const unsigned char ts[] = {0xc1, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const unsigned char threshold[] = {'T',  'h',  'r',  'e', 's', 'h', 'o', 'l', 'd',
                                              0xfb, 0x40, 0x49, 0,   0,   0,   0,   0,   0};
    static const unsigned char period[] = {'P', 'e', 'r', 'i', 'o', 'd', 0x18, 0x3c};
    assert_non_null(memmem(b, len, ts, sizeof(ts)));
    assert_non_null(memmem(b, len, threshold, sizeof(threshold)));
    assert_non_null(memmem(b, len, period, sizeof(period)));
    assert_null(memmem(b, len, "_internal", 9));
    /* What it wrote reads back as it was, less the unmodelled member. */
    json_t *back = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_api_cbor_decode(b, len, &back, &err), 0);
    json_object_del(json_array_get(json_object_get(out, "MetricAlarms"), 0), "_internal");
    json_object_set_new(json_array_get(json_object_get(out, "MetricAlarms"), 0), "Threshold",
                        json_real(50));
    assert_true(json_equal(back, out));
    json_decref(back);
    free(b);
    json_decref(out);
    b = barge_api_cbor_encode(barge_model_get("cloudwatch"), "PutMetricAlarm", NULL, &len);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], 0xa0);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_nul_in_strings),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
