/* Where task configuration comes from: ECS's environment file rules, the
 * valueFrom forms of secrets (SSM names and ARNs in any region, Secrets
 * Manager ARNs with the json-key:version-stage:version-id suffix) and S3
 * object ARNs, plus the task definition checks built on them. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "agent/secrets.h"
#include "api/taskdef_check.h"
#include "common/json.h"
#include "common/secretref.h"

static json_t *parse(const char *text)
{
    json_t *vars = json_object();
    barge_envfile_parse(text, strlen(text), vars);
    return vars;
}

static void test_envfile_rules(void **state)
{
    json_t *v = parse("# a comment\n"
                      "PLAIN=value\n"
                      "SPACES = both sides \n"
                      "QUOTED=\"kept\"\n"
                      "EQUALS=a=b=c\n"
                      "EMPTY=\n"
                      "no equals sign\n"
                      "=no name\n"
                      "  # not a comment=really\n"
                      "CRLF=dos\r\n"
                      "\n"
                      "DUP=first\n"
                      "DUP=second\n"
                      "LAST=no newline");
    assert_string_equal(barge_json_str(v, "PLAIN", ""), "value");
    assert_string_equal(barge_json_str(v, "SPACES ", ""), " both sides ");
    assert_string_equal(barge_json_str(v, "QUOTED", ""), "\"kept\"");
    assert_string_equal(barge_json_str(v, "EQUALS", ""), "a=b=c");
    assert_string_equal(barge_json_str(v, "EMPTY", "x"), "");
    assert_string_equal(barge_json_str(v, "  # not a comment", ""), "really");
    assert_string_equal(barge_json_str(v, "CRLF", ""), "dos");
    assert_string_equal(barge_json_str(v, "DUP", ""), "second");
    assert_string_equal(barge_json_str(v, "LAST", ""), "no newline");
    assert_null(json_object_get(v, "# a comment"));
    assert_null(json_object_get(v, ""));
    assert_int_equal(json_object_size(v), 9);
    json_decref(v);

    /* A NUL byte cannot reach a process: that line is dropped. */
    const char with_nul[] = "A=1\nB=x\0y\nC=3\n";
    json_t *n = json_object();
    assert_int_equal(barge_envfile_parse(with_nul, sizeof(with_nul) - 1, n), 2);
    assert_null(json_object_get(n, "B"));
    json_decref(n);
}

static void ref_ok(const char *vf, enum barge_secret_provider p, const char *region,
                   const char *request, const char *resource, const char *key, const char *stage,
                   const char *version)
{
    struct barge_secret_ref r;
    struct barge_error *err = NULL;
    if (barge_secret_ref_parse(vf, "us-east-1", "123456789012", &r, &err) < 0)
        fail_msg("'%s' refused: %s", vf, err->message);
    assert_int_equal(r.provider, p);
    assert_string_equal(r.region, region);
    assert_string_equal(r.request, request);
    assert_string_equal(r.resource, resource);
    if (key)
        assert_string_equal(r.json_key, key);
    else
        assert_null(r.json_key);
    if (stage)
        assert_string_equal(r.version_stage, stage);
    else
        assert_null(r.version_stage);
    if (version)
        assert_string_equal(r.version_id, version);
    else
        assert_null(r.version_id);
    barge_secret_ref_release(&r);
}

static void ref_bad(const char *vf, const char *needle)
{
    struct barge_secret_ref r;
    struct barge_error *err = NULL;
    assert_int_equal(barge_secret_ref_parse(vf, "us-east-1", "123456789012", &r, &err), -1);
    if (!strstr(err->message, needle))
        fail_msg("'%s' not in '%s'", needle, err->message);
    barge_error_free(err);
}

static void test_value_from_forms(void **state)
{
    const enum barge_secret_provider SSM = BARGE_SECRET_SSM, ASM = BARGE_SECRET_ASM;
    /* bare names: the task's region */
    ref_ok("db_pass", SSM, "us-east-1", "db_pass",
           "arn:aws:ssm:us-east-1:123456789012:parameter/db_pass", NULL, NULL, NULL);
    ref_ok("/prod/db/pass", SSM, "us-east-1", "/prod/db/pass",
           "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/pass", NULL, NULL, NULL);
    ref_ok("/prod/db/pass:3", SSM, "us-east-1", "/prod/db/pass:3",
           "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/pass", NULL, NULL, NULL);
    /* ARNs: their own region, passed on as written */
    ref_ok("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/x", SSM, "eu-west-1",
           "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/x",
           "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/x", NULL, NULL, NULL);
    const char *sm = "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf";
    ref_ok(sm, ASM, "us-west-2", sm, sm, NULL, NULL, NULL);
    ref_ok("arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf:password::", ASM,
           "us-west-2", sm, sm, "password", NULL, NULL);
    ref_ok("arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf::AWSPREVIOUS:", ASM,
           "us-west-2", sm, sm, NULL, "AWSPREVIOUS", NULL);
    ref_ok("arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf:user::"
           "0123456789abcdef0123456789abcdef",
           ASM, "us-west-2", sm, sm, "user", NULL, "0123456789abcdef0123456789abcdef");

    ref_bad("", "empty");
    ref_bad("a/b", "must begin with '/'");
    ref_bad("bad name", "neither");
    ref_bad("arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf:password",
            "invalid ARN format");
    ref_bad("arn:aws:secretsmanager:us-west-2:123456789012:secret:db:k:s:v:extra",
            "invalid ARN format");
    ref_bad("arn:aws:secretsmanager:us-west-2:123456789012:secret:db:k:AWSCURRENT:v1",
            "both a version stage and a version id");
    ref_bad("arn:aws:ssm:us-east-1:123456789012:document/x", "not an SSM parameter ARN");
    ref_bad("arn:aws:ssm::123456789012:parameter/x", "region");
    ref_bad("arn:aws:s3:::bucket/key", "region");
    ref_bad("arn:aws:sqs:us-east-1:123456789012:q", "SSM parameter or a Secrets Manager secret");
    ref_bad("arn:nope", "not a valid ARN");
}

static void test_s3_object_arn(void **state)
{
    char *b, *k;
    struct barge_error *err = NULL;
    assert_int_equal(barge_s3_object_arn_parse("arn:aws:s3:::conf/dir/app.env", &b, &k, &err), 0);
    assert_string_equal(b, "conf");
    assert_string_equal(k, "dir/app.env");
    free(b);
    free(k);
    const char *bad[] = {"arn:aws:s3:::bucket", "arn:aws:s3:::/key", "arn:aws:s3:::bucket/",
                         "s3://bucket/key", "arn:aws:s3:us-east-1::bucket/key"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(barge_s3_object_arn_parse(bad[i], &b, &k, &err), -1);
        barge_error_free(err);
        err = NULL;
    }
}

static void td_fails(const char *containers, const char *needle)
{
    char text[4096];
    snprintf(text, sizeof(text), "{\"family\": \"f\", \"containerDefinitions\": %s}", containers);
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);
    assert_non_null(in);
    json_t *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_taskdef_check(in, &out, &err), -1);
    if (!strstr(err->message, needle))
        fail_msg("'%s' not in '%s'", needle, err->message);
    barge_error_free(err);
    json_decref(in);
}

#define C(extra) "[{\"name\": \"c\", \"image\": \"i\", \"memory\": 32, " extra "}]"

static void test_taskdef_checks(void **state)
{
    td_fails(C("\"secrets\": [{\"name\": \"A\", \"valueFrom\": \"arn:aws:secretsmanager:"
               "us-east-1:1:secret:x:k\"}]"),
             "invalid ARN format");
    td_fails(C("\"secrets\": [{\"name\": \"A\", \"valueFrom\": \"a/b\"}]"), "'/'");
    td_fails(C("\"environment\": [{\"name\": \"A\", \"value\": \"1\"}], \"secrets\": "
               "[{\"name\": \"A\", \"valueFrom\": \"p\"}]"),
             "must be unique");
    td_fails(C("\"environment\": [{\"name\": \"\", \"value\": \"1\"}]"), "null or blank");
    td_fails(C("\"logConfiguration\": {\"logDriver\": \"awslogs\", \"secretOptions\": [{\"name\": "
               "\"k\", \"valueFrom\": \"arn:aws:sqs:us-east-1:1:q\"}]}"),
             "secretOptions");
    td_fails(C("\"logConfiguration\": {\"logDriver\": \"awslogs\", \"secretOptions\": [{\"name\": "
               "\"k\", \"valueFrom\": \"a\"}, {\"name\": \"k\", \"valueFrom\": \"b\"}]}"),
             "'k' is used twice");
    td_fails(C("\"environmentFiles\": [{\"type\": \"s3\", \"value\": \"arn:aws:s3:::b/k.env\"}, "
               "{\"type\": \"s3\", \"value\": \"arn:aws:s3:::b/k.env\"}]"),
             "listed twice");
    char eleven[2048] = "\"environmentFiles\": [";
    for (int i = 0; i < 11; i++) {
        char one[96];
        snprintf(one, sizeof(one), "%s{\"type\": \"s3\", \"value\": \"arn:aws:s3:::b/%d.env\"}",
                 i ? ", " : "", i);
        strcat(eleven, one);
    }
    strcat(eleven, "]");
    char containers[4096];
    snprintf(containers, sizeof(containers),
             "[{\"name\": \"c\", \"image\": \"i\", \"memory\": 32, %s}]", eleven);
    td_fails(containers, "at most 10");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envfile_rules),
        cmocka_unit_test(test_value_from_forms),
        cmocka_unit_test(test_s3_object_arn),
        cmocka_unit_test(test_taskdef_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
