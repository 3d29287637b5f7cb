/* RegisterTaskDefinition's semantic rules and normal form, and the ARN and
 * unit helpers they use. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <stdlib.h>
#include <string.h>

#include "api/taskdef_check.h"
#include "common/arn.h"
#include "common/json.h"

static json_t *check_ok(const char *text)
{
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);
    assert_non_null(in);
    json_t *out = NULL;
    struct barge_error *err = NULL;
    int r = barge_taskdef_check(in, &out, &err);
    if (r < 0)
        fail_msg("unexpected error: %s", err->message);
    json_decref(in);
    return out;
}

static void check_fails(const char *text, const char *needle)
{
    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);
    assert_non_null(in);
    json_t *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_taskdef_check(in, &out, &err), -1);
    assert_null(out);
    assert_string_equal(err->type, "ClientException");
    if (!strstr(err->message, needle))
        fail_msg("'%s' not in '%s'", needle, err->message);
    barge_error_free(err);
    json_decref(in);
}

static void test_units(void **state)
{
    assert_int_equal(barge_taskdef_cpu_units("1024"), 1024);
    assert_int_equal(barge_taskdef_cpu_units("1 vCPU"), 1024);
    assert_int_equal(barge_taskdef_cpu_units("0.25 vcpu"), 256);
    assert_int_equal(barge_taskdef_cpu_units("2vcpu"), 2048);
    assert_int_equal(barge_taskdef_cpu_units("lots"), -1);
    assert_int_equal(barge_taskdef_cpu_units(""), -1);
    assert_int_equal(barge_taskdef_memory_mib("2GB"), 2048);
    assert_int_equal(barge_taskdef_memory_mib("2 GB"), 2048);
    assert_int_equal(barge_taskdef_memory_mib("0.5 GB"), 512);
    assert_int_equal(barge_taskdef_memory_mib("512"), 512);
    assert_int_equal(barge_taskdef_memory_mib("512 TB"), -1);
    assert_int_equal(barge_taskdef_memory_mib("-1"), -1);
}

static void test_fargate_sizes(void **state)
{
    assert_true(barge_taskdef_fargate_size_valid(256, 512));
    assert_false(barge_taskdef_fargate_size_valid(256, 4096));
    assert_true(barge_taskdef_fargate_size_valid(1024, 8192));
    assert_false(barge_taskdef_fargate_size_valid(1024, 9216));
    assert_true(barge_taskdef_fargate_size_valid(8192, 16384 + 4096));
    assert_false(barge_taskdef_fargate_size_valid(8192, 16384 + 1024));
    assert_true(barge_taskdef_fargate_size_valid(16384, 122880));
    assert_false(barge_taskdef_fargate_size_valid(300, 1024));
}

static void test_defaults(void **state)
{
    json_t *td = check_ok("{\"family\":\"f\",\"networkMode\":\"host\",\"containerDefinitions\":"
                          "[{\"name\":\"a\",\"image\":\"i\",\"memory\":10,"
                          "\"portMappings\":[{\"containerPort\":80}]}]}");
    json_t *c = json_array_get(json_object_get(td, "containerDefinitions"), 0);
    assert_true(json_is_true(json_object_get(c, "essential")));
    assert_int_equal(barge_json_int(c, "cpu", -1), 0);
    json_t *pm = json_array_get(json_object_get(c, "portMappings"), 0);
    assert_int_equal(barge_json_int(pm, "hostPort", -1), 80);
    assert_string_equal(barge_json_str(pm, "protocol", ""), "tcp");
    json_t *compat = json_object_get(td, "compatibilities");
    assert_int_equal(json_array_size(compat), 1);
    json_decref(td);
}

static void test_rules(void **state)
{
    check_fails("{\"family\":\"f f\",\"containerDefinitions\":[]}", "'f f'");
    check_fails("{\"family\":\"f\",\"containerDefinitions\":[]}", "empty");
    check_fails("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
                "memory");
    check_fails("{\"family\":\"f\",\"memory\":\"128\",\"containerDefinitions\":[{\"name\":\"a\","
                "\"image\":\"i\",\"memory\":256}]}",
                "task's memory");
    check_fails("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\","
                "\"memory\":10,\"essential\":false}]}",
                "essential");
    check_fails("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\","
                "\"memory\":10},{\"name\":\"b\",\"image\":\"i\",\"memory\":10,\"dependsOn\":"
                "[{\"containerName\":\"a\",\"condition\":\"SUCCESS\"}]}]}",
                "non-essential");
    check_fails("{\"family\":\"f\",\"requiresCompatibilities\":[\"FARGATE\"],\"networkMode\":"
                "\"awsvpc\",\"cpu\":\"256\",\"memory\":\"512\",\"containerDefinitions\":[{\"name\":"
                "\"a\",\"image\":\"i\",\"privileged\":true}]}",
                "privileged");
    check_fails("{\"family\":\"f\",\"requiresCompatibilities\":[\"FARGATE\"],\"networkMode\":"
                "\"awsvpc\",\"cpu\":\"256\",\"memory\":\"512\",\"volumes\":[{\"name\":\"v\","
                "\"host\":{\"sourcePath\":\"/x\"}}],\"containerDefinitions\":[{\"name\":"
                "\"a\",\"image\":\"i\"}]}",
                "host volumes");
    check_fails("{\"family\":\"f\",\"ephemeralStorage\":{\"sizeInGiB\":5},"
                "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"memory\":10}]}",
                "sizeInGiB");
}

/* 64 KiB of compact JSON: the exact boundary, which a client's indentation
 * does not move. */
static void test_size_limit(void **state)
{
    const char *head = "{\"family\":\"big\",\"containerDefinitions\":[{\"name\":\"main\","
                       "\"image\":\"busybox\",\"memory\":16,\"command\":[\"";
    const char *tail = "\"]}]}";
    size_t fill = BARGE_TASKDEF_MAX_BYTES - strlen(head) - strlen(tail);
    char *text = malloc(BARGE_TASKDEF_MAX_BYTES + 2);
    assert_non_null(text);
    memcpy(text, head, strlen(head));
    memset(text + strlen(head), 'x', fill);
    strcpy(text + strlen(head) + fill, tail);
    assert_int_equal(strlen(text), BARGE_TASKDEF_MAX_BYTES);
    json_decref(check_ok(text));

    json_error_t jerr;
    json_t *in = json_loads(text, 0, &jerr);
    char *indented = json_dumps(in, JSON_INDENT(8));
    assert_true(strlen(indented) > BARGE_TASKDEF_MAX_BYTES);
    json_decref(check_ok(indented));
    free(indented);
    json_decref(in);

    /* A byte more. */
    memmove(text + strlen(head) + 1, text + strlen(head), strlen(text) - strlen(head) + 1);
    check_fails(text, "Actual length: '65537'. Max allowed length is '65536' bytes.");
    free(text);
}

static void test_arn(void **state)
{
    struct barge_arn a;
    assert_int_equal(barge_arn_parse("arn:aws:ecs:us-east-1:000000000000:task/c/abc", &a), 0);
    assert_string_equal(a.service, "ecs");
    assert_string_equal(a.region, "us-east-1");
    assert_string_equal(a.account, "000000000000");
    assert_string_equal(a.resource, "task/c/abc");
    barge_arn_release(&a);
    assert_int_equal(barge_arn_parse("arn:aws:s3:::bucket/key:with:colons", &a), 0);
    assert_string_equal(a.region, "");
    assert_string_equal(a.resource, "bucket/key:with:colons");
    barge_arn_release(&a);
    assert_int_equal(barge_arn_parse("arn:aws:ecs", &a), -1);
    assert_int_equal(barge_arn_parse("cluster/x", &a), -1);
    char *s = barge_arn_make("ecs", "r", "1", "cluster/x");
    assert_string_equal(s, "arn:aws:ecs:r:1:cluster/x");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),    cmocka_unit_test(test_fargate_sizes),
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_rules),
        cmocka_unit_test(test_arn),      cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
