/* --assume-role-arn: reading STS AssumeRole answers, and telling an error
 * STS reports from an endpoint that does not serve STS at all. */
#include <stdlib.h>
#include <string.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
// clang-format on

#include "cli/cli.h"

static void test_credentials(void **state)
{
    char *a, *s, *t;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_sts_parse_credentials(
                         "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                         "<AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s/e+c&lt;</"
                         "SecretAccessKey><SessionToken>t&amp;k</SessionToken>"
                         "</Credentials></AssumeRoleResult></AssumeRoleResponse>",
                         200, &a, &s, &t, &err),
                     0);
    assert_string_equal(a, "ASIA1");
    assert_string_equal(s, "s/e+c<");
    assert_string_equal(t, "t&k");
    free(a);
    free(s);
    free(t);
    /* A 200 without credentials is not a success. */
    assert_int_equal(
        barge_cli_sts_parse_credentials("<AssumeRoleResponse/>", 200, &a, &s, &t, &err), -1);
    assert_null(a);
    assert_int_equal(err->code, BARGE_ERR_SERIALIZATION);
    barge_error_free(err);
}

static void test_errors(void **state)
{
    char *a, *s, *t;
    struct barge_error *err = NULL;
    /* STS's own refusal keeps its code and message. */
    assert_int_equal(barge_cli_sts_parse_credentials(
                         "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                         "<Message>not allowed to assume 'x'</Message></Error></ErrorResponse>",
                         403, &a, &s, &t, &err),
                     -1);
    assert_int_equal(err->code, BARGE_ERR_ACCESS_DENIED);
    assert_string_equal(err->message, "AssumeRole: AccessDenied: not allowed to assume 'x'");
    barge_error_free(err);
    err = NULL;
    /* An endpoint without STS: barged's answer, or no STS error at all. */
    assert_int_equal(barge_cli_sts_parse_credentials(
                         "<ErrorResponse><Error><Code>UnknownOperationException</Code>"
                         "<Message>unknown API version</Message></Error></ErrorResponse>",
                         400, &a, &s, &t, &err),
                     -1);
    assert_int_equal(err->code, BARGE_ERR_UNSUPPORTED);
    barge_error_free(err);
    err = NULL;
    assert_int_equal(barge_cli_sts_parse_credentials("Not Found", 404, &a, &s, &t, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_UNSUPPORTED);
    assert_string_equal(err->message, "AssumeRole was answered HTTP 404");
    barge_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
