/* CloudWatch Logs filter patterns (terms, quoted phrases, optional and
 * excluded terms, refused syntaxes) and GetLogEvents tokens. */
/* cmocka.h needs the standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "api/logs.h"

static bool matches(const char *pattern, const char *msg)
{
    struct barge_logs_pattern *p = NULL;
    struct barge_error *err = NULL;
    if (barge_logs_pattern_compile(pattern, &p, &err) < 0)
        fail_msg("pattern '%s' refused: %s", pattern, err->message);
    bool m = barge_logs_pattern_match(p, msg, strlen(msg));
    barge_logs_pattern_free(p);
    return m;
}

static void refused(const char *pattern, const char *why)
{
    struct barge_logs_pattern *p = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_logs_pattern_compile(pattern, &p, &err), -1);
    assert_null(p);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    assert_string_equal(err->type, "InvalidParameterException");
    if (!strstr(err->message, why))
        fail_msg("'%s' does not say '%s'", err->message, why);
    barge_error_free(err);
}

static void test_terms(void **state)
{
    assert_true(matches("", "anything"));
    assert_true(matches("   ", "anything"));
    assert_true(matches("ERROR", "[ERROR] disk full"));
    assert_false(matches("ERROR", "[error] disk full")); /* case-sensitive */
    assert_true(matches("ERROR disk", "[ERROR] disk full"));
    assert_false(matches("ERROR memory", "[ERROR] disk full"));
    /* Terms need not be in order or adjacent. */
    assert_true(matches("full ERROR", "[ERROR] disk full"));
}

static void test_phrases(void **state)
{
    assert_true(matches("\"disk full\"", "[ERROR] disk full"));
    assert_false(matches("\"full disk\"", "[ERROR] disk full"));
    assert_true(matches("\"ERROR] disk\" full", "[ERROR] disk full"));
    assert_true(matches("\"say \\\"hi\\\"\"", "they say \"hi\" twice"));
    assert_true(matches("\"a  b\"", "x a  b y"));
    assert_false(matches("\"a  b\"", "x a b y"));
}

static void test_optional_and_excluded(void **state)
{
    assert_true(matches("?ERROR ?WARN", "WARN low disk"));
    assert_true(matches("?ERROR ?WARN", "ERROR no disk"));
    assert_false(matches("?ERROR ?WARN", "INFO all good"));
    assert_true(matches("ERROR -retrying", "ERROR giving up"));
    assert_false(matches("ERROR -retrying", "ERROR retrying in 5s"));
    assert_false(matches("-\"health check\"", "GET /health check ok"));
    assert_true(matches("-\"health check\"", "GET /users"));
    assert_true(matches("GET ?200 ?204 -/health", "GET /users 204"));
    assert_false(matches("GET ?200 ?204 -/health", "GET /health 200"));
    assert_false(matches("GET ?200 ?204 -/health", "GET /users 500"));
}

static void test_refused(void **state)
{
    refused("{ $.level = \"error\" }", "JSON");
    refused("[ip, user, ...]", "space-delimited");
    refused("%ERR[0-9]+%", "regular expression");
    refused("\"unclosed", "not closed");
    refused("\"a\"b", "followed by a space");
    refused("? ERROR", "empty");
}

static void test_tokens(void **state)
{
    struct barge_logs_position pos = {true, 1700000000123, 42}, back;
    char *t = barge_logs_token_encode(&pos);
    assert_string_equal(t, "f/0000000170000000012300000000000000000042");
    struct barge_error *err = NULL;
    assert_int_equal(barge_logs_token_decode(t, &back, &err), 0);
    assert_true(back.forward);
    assert_int_equal(back.ts, pos.ts);
    assert_int_equal(back.id, pos.id);
    free(t);

    pos = (struct barge_logs_position){false, 0, INT64_MAX};
    t = barge_logs_token_encode(&pos);
    assert_int_equal(barge_logs_token_decode(t, &back, &err), 0);
    assert_false(back.forward);
    assert_int_equal(back.id, INT64_MAX);
    free(t);

    const char *bad[] = {"",
                         "f/",
                         "x/0000000170000000012300000000000000000042",
                         "f-0000000170000000012300000000000000000042",
                         "f/000000017000000001230000000000000000004", /* short */
                         "f/00000001700000000123000000000000000000a2",
                         "f/9999999999999999999900000000000000000042" /* > INT64_MAX */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        assert_int_equal(barge_logs_token_decode(bad[i], &back, &err), -1);
        assert_string_equal(err->type, "InvalidParameterException");
        barge_error_free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms),
        cmocka_unit_test(test_phrases),
        cmocka_unit_test(test_optional_and_excluded),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
