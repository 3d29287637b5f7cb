/* The CLI's unified diff and the normalised JSON it compares: API-style
 * output (sorted keys, 2-space indent, no nulls or empty arrays) and the
 * task/service normalisation that makes a file and a described object
 * comparable. */
#include <string.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
// clang-format on

#include "cli/defs.h"
#include "common/json.h"

static void expect_diff(const char *a, const char *b, int ctx, const char *want)
{
    char *d = barge_cli_diff_unified(a, b, "remote", "local", ctx);
    if (!want) {
        if (d)
            fail_msg("expected no diff, got:\n%s", d);
        return;
    }
    if (!d)
        fail_msg("expected a diff, got none");
    if (strcmp(d, want) != 0)
        fail_msg("got:\n%s\nwant:\n%s", d, want);
    free(d);
}

static void test_diff(void **state)
{
    expect_diff("a\nb\n", "a\nb\n", 3, NULL);
    expect_diff("", "", 3, NULL);
    expect_diff("a\nb\nc\n", "a\nB\nc\n", 3,
                "--- remote\n+++ local\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    /* Insertion at the top names the line before it: 0. */
    expect_diff("a\n", "new\na\n", 0, "--- remote\n+++ local\n@@ -0,0 +1 @@\n+new\n");
    /* Everything new. */
    expect_diff("", "x\ny\n", 3, "--- remote\n+++ local\n@@ -0,0 +1,2 @@\n+x\n+y\n");
    /* Deletion at the end. */
    expect_diff("a\nb\nc\n", "a\nb\n", 1, "--- remote\n+++ local\n@@ -2,2 +2 @@\n b\n-c\n");
    /* Changes far apart make two hunks; close ones share one. */
    const char *a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";
    const char *b = "1\nX\n3\n4\n5\n6\n7\n8\n9\n10\nY\n12\n";
    expect_diff(a, b, 1,
                "--- remote\n+++ local\n@@ -1,3 +1,3 @@\n 1\n-2\n+X\n 3\n"
                "@@ -10,3 +10,3 @@\n 10\n-11\n+Y\n 12\n");
    expect_diff(a, b, 4,
                "--- remote\n+++ local\n@@ -1,12 +1,12 @@\n 1\n-2\n+X\n 3\n 4\n 5\n 6\n"
                " 7\n 8\n 9\n 10\n-11\n+Y\n 12\n");
}

static void test_api_json(void **state)
{
    json_t *v = json_loads("{\"b\": 1, \"a\": {\"z\": null, \"y\": [], \"x\": [1, {\"k\": null}]},"
                           " \"c\": {}, \"d\": \"<&>\"}",
                           0, NULL);
    char *s = barge_cli_json_api_dump(v);
    assert_string_equal(s, "{\n"
                           "  \"a\": {\n"
                           "    \"x\": [\n"
                           "      1,\n"
                           "      {}\n"
                           "    ]\n"
                           "  },\n"
                           "  \"b\": 1,\n"
                           "  \"c\": {},\n"
                           "  \"d\": \"<&>\"\n"
                           "}\n");
    free(s);
    json_decref(v);
}

static int warnings;
static char last_warning[256];

static void on_warn(void *ud, const char *path)
{
    warnings++;
    snprintf(last_warning, sizeof(last_warning), "%s", path);
}

static void test_taskdef_from_file(void **state)
{
    /* describe-task-definition output: unwrapped, read-only fields dropped
     * silently, tags moved in, Go-style keys renamed, unknown ones reported,
     * dockerLabels keys untouched. */
    json_t *doc = json_loads(
        "{\"taskDefinition\": {\"taskDefinitionArn\": \"arn:x\", \"revision\": 3, \"status\": "
        "\"ACTIVE\", \"registeredAt\": 1.5, \"requiresAttributes\": [], \"compatibilities\": "
        "[\"EC2\"], \"Family\": \"web\", \"containerDefinitions\": [{\"name\": \"app\", \"image\": "
        "\"i\", \"Bogus\": 1, \"dockerLabels\": {\"Upper.Key\": \"v\"}, \"logConfiguration\": "
        "{\"logDriver\": \"awslogs\", \"options\": {\"awslogs-group\": \"g\"}}}]},"
        " \"tags\": [{\"key\": \"k\", \"value\": \"v\"}]}",
        0, NULL);
    assert_non_null(doc);
    warnings = 0;
    json_t *td = barge_cli_taskdef_from_file(doc, on_warn, NULL);
    assert_int_equal(warnings, 1);
    assert_string_equal(last_warning, "containerDefinitions[0].Bogus");
    char *s = barge_cli_json_api_dump(td);
    assert_string_equal(s, "{\n"
                           "  \"containerDefinitions\": [\n"
                           "    {\n"
                           "      \"dockerLabels\": {\n"
                           "        \"Upper.Key\": \"v\"\n"
                           "      },\n"
                           "      \"image\": \"i\",\n"
                           "      \"logConfiguration\": {\n"
                           "        \"logDriver\": \"awslogs\",\n"
                           "        \"options\": {\n"
                           "          \"awslogs-group\": \"g\"\n"
                           "        }\n"
                           "      },\n"
                           "      \"name\": \"app\"\n"
                           "    }\n"
                           "  ],\n"
                           "  \"family\": \"web\",\n"
                           "  \"tags\": [\n"
                           "    {\n"
                           "      \"key\": \"k\",\n"
                           "      \"value\": \"v\"\n"
                           "    }\n"
                           "  ]\n"
                           "}\n");
    free(s);
    json_decref(td);
    json_decref(doc);
    /* Empty tags are removed: RegisterTaskDefinition refuses them. */
    doc = json_loads("{\"family\": \"f\", \"containerDefinitions\": [], \"tags\": []}", 0, NULL);
    td = barge_cli_taskdef_from_file(doc, on_warn, NULL);
    assert_null(json_object_get(td, "tags"));
    json_decref(td);
    json_decref(doc);
}

static void test_taskdef_for_diff(void **state)
{
    /* What a user writes and what ECS describes for it normalise alike. */
    json_t *local = json_loads(
        "{\"family\": \"web\", \"cpu\": \"0.25 vCPU\", \"memory\": \"1 GB\", \"networkMode\": "
        "\"awsvpc\", \"containerDefinitions\": [{\"name\": \"b\", \"image\": \"i\"}, {\"name\": "
        "\"a\", \"image\": \"i\", \"portMappings\": [{\"containerPort\": 80}], \"environment\": "
        "[{\"name\": \"Z\", \"value\": \"1\"}, {\"name\": \"A\", \"value\": \"2\"}]}]}",
        0, NULL);
    json_t *remote = json_loads(
        "{\"taskDefinitionArn\": \"arn\", \"revision\": 1, \"status\": \"ACTIVE\", \"family\": "
        "\"web\", \"cpu\": \"256\", \"memory\": \"1024\", \"networkMode\": \"awsvpc\", "
        "\"containerDefinitions\": [{\"name\": \"a\", \"image\": \"i\", \"cpu\": 0, \"essential\": "
        "true, \"portMappings\": [{\"containerPort\": 80, \"hostPort\": 80, \"protocol\": "
        "\"tcp\"}], \"environment\": [{\"name\": \"A\", \"value\": \"2\"}, {\"name\": \"Z\", "
        "\"value\": \"1\"}], \"mountPoints\": [], \"volumesFrom\": []}, {\"name\": \"b\", "
        "\"image\": \"i\", \"cpu\": 0, \"essential\": true}], \"volumes\": [], "
        "\"requiresAttributes\": [{\"name\": \"x\"}]}",
        0, NULL);
    json_t *l = barge_cli_taskdef_for_diff(local);
    json_t *r = barge_cli_taskdef_for_diff(remote);
    char *ls = barge_cli_json_api_dump(l), *rs = barge_cli_json_api_dump(r);
    char *d = barge_cli_diff_unified(rs, ls, "r", "l", 3);
    if (d)
        fail_msg("unexpected diff:\n%s", d);
    assert_non_null(strstr(ls, "\"cpu\": \"256\""));
    assert_non_null(strstr(ls, "\"memory\": \"1024\""));
    free(ls);
    free(rs);
    json_decref(l);
    json_decref(r);
    json_decref(local);
    json_decref(remote);
}

static void test_service_for_diff(void **state)
{
    json_t *local = json_loads("{\"launchType\": \"FARGATE\", \"networkConfiguration\": "
                               "{\"awsvpcConfiguration\": {\"subnets\": [\"s2\", \"s1\"]}}}",
                               0, NULL);
    json_t *remote = json_loads(
        "{\"serviceArn\": \"arn\", \"status\": \"ACTIVE\", \"desiredCount\": 3, \"runningCount\": "
        "3, \"launchType\": \"FARGATE\", \"platformVersion\": \"LATEST\", \"propagateTags\": "
        "\"NONE\", \"deploymentConfiguration\": {\"maximumPercent\": 200, "
        "\"minimumHealthyPercent\": 100, \"deploymentCircuitBreaker\": {\"enable\": false, "
        "\"rollback\": false}}, \"networkConfiguration\": {\"awsvpcConfiguration\": {\"subnets\": "
        "[\"s1\", \"s2\"], \"assignPublicIp\": \"DISABLED\"}}, \"events\": [{\"message\": \"x\"}]}",
        0, NULL);
    /* No desiredCount locally: the remote one is not compared either. */
    json_t *l = barge_cli_service_for_diff(local, local);
    json_t *r = barge_cli_service_for_diff(remote, local);
    if (!json_equal(l, r)) {
        char *ls = barge_cli_json_api_dump(l), *rs = barge_cli_json_api_dump(r);
        fail_msg("differ:\n%s\n%s", ls, rs);
    }
    json_decref(l);
    json_decref(r);
    json_object_set_new(local, "desiredCount", json_integer(2));
    l = barge_cli_service_for_diff(local, local);
    r = barge_cli_service_for_diff(remote, local);
    assert_false(json_equal(l, r));
    assert_int_equal(json_integer_value(json_object_get(r, "desiredCount")), 3);
    json_decref(l);
    json_decref(r);
    json_decref(local);
    json_decref(remote);
}

static void test_servicedef_conform(void **state)
{
    json_t *doc = json_loads("{\"serviceName\": \"web\", \"role\": \"r\", \"DesiredCount\": 2, "
                             "\"deployments\": [], \"nonsense\": true}",
                             0, NULL);
    warnings = 0;
    barge_cli_servicedef_conform(doc, on_warn, NULL);
    assert_int_equal(warnings, 1);
    assert_string_equal(last_warning, "nonsense");
    assert_int_equal(json_integer_value(json_object_get(doc, "desiredCount")), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "r");
    json_t *create = barge_cli_model_project(doc, "CreateServiceRequest");
    assert_null(json_object_get(create, "deployments"));
    assert_non_null(json_object_get(create, "role"));
    json_decref(create);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_api_json),
        cmocka_unit_test(test_taskdef_from_file),
        cmocka_unit_test(test_taskdef_for_diff),
        cmocka_unit_test(test_service_for_diff),
        cmocka_unit_test(test_servicedef_conform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
