/* The ECS domain layer (src/ecs/): task, service and container-instance state
 * changes on stored documents, usable without the API framework. */
#include <math.h>
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "common/ids.h"
#include "common/json.h"
#include "ecs/ecs.h"

static void test_task_stop(void **state)
{
    (void)state;
    json_t *task = json_pack("{s:s, s:s, s:i, s:[{s:s}]}", "lastStatus", "RUNNING", "desiredStatus",
                             "RUNNING", "version", 3, "containers", "lastStatus", "RUNNING");
    ecs_task_request_stop(task, "UserInitiated", "asked to");
    assert_string_equal(barge_json_str(task, "desiredStatus", ""), "STOPPED");
    assert_string_equal(barge_json_str(task, "stopCode", ""), "UserInitiated");
    assert_string_equal(barge_json_str(task, "stoppedReason", ""), "asked to");
    assert_true(json_is_number(json_object_get(task, "stoppingAt")));
    assert_int_equal(barge_json_int(task, "version", 0), 4);
    /* A second request changes nothing: the first reason stands. */
    ecs_task_request_stop(task, "ServiceSchedulerInitiated", "again");
    assert_string_equal(barge_json_str(task, "stoppedReason", ""), "asked to");
    assert_int_equal(barge_json_int(task, "version", 0), 4);

    assert_true(ecs_task_force_stopped(task, "host lost"));
    assert_string_equal(barge_json_str(task, "lastStatus", ""), "STOPPED");
    assert_string_equal(barge_json_str(task, "stoppedReason", ""), "asked to");
    assert_string_equal(
        barge_json_str(json_array_get(json_object_get(task, "containers"), 0), "lastStatus", ""),
        "STOPPED");
    assert_int_equal(barge_json_int(task, "version", 0), 5);
    assert_false(ecs_task_force_stopped(task, "again"));
    json_decref(task);
}

static void test_service_events_and_deployments(void **state)
{
    (void)state;
    json_t *svc = json_pack("{s:s, s:s}", "serviceName", "web", "launchType", "FARGATE");
    for (int i = 0; i < 105; i++)
        ecs_service_event(svc, "event %d", i);
    json_t *events = json_object_get(svc, "events");
    assert_int_equal(json_array_size(events), 100);
    assert_string_equal(barge_json_str(json_array_get(events, 0), "message", ""),
                        "(service web) event 104");

    json_t *d1 = ecs_deployment_new(svc, "arn:td:1", 2, NULL);
    assert_string_equal(barge_json_str(d1, "status", ""), "PRIMARY");
    assert_string_equal(barge_json_str(d1, "launchType", ""), "FARGATE");
    assert_true(barge_str_has_prefix(barge_json_str(d1, "id", ""), "ecs-svc/"));
    ecs_service_push_deployment(svc, d1);
    json_t *d2 = ecs_deployment_new(svc, "arn:td:2", 3, "rolling back");
    assert_string_equal(barge_json_str(d2, "rolloutStateReason", ""), "rolling back");
    ecs_service_push_deployment(svc, d2);
    json_t *deps = json_object_get(svc, "deployments");
    assert_int_equal(json_array_size(deps), 2);
    assert_string_equal(barge_json_str(json_array_get(deps, 0), "taskDefinition", ""), "arn:td:2");
    assert_string_equal(barge_json_str(json_array_get(deps, 1), "status", ""), "ACTIVE");
    assert_int_equal(barge_json_int(json_array_get(deps, 1), "desiredCount", -1), 0);
    assert_string_equal(barge_json_str(svc, "taskDefinition", ""), "arn:td:2");
    json_decref(svc);
}

static json_int_t computed(json_t *svc, size_t i)
{
    return barge_json_int(json_array_get(json_object_get(svc, "taskSets"), i),
                          "computedDesiredCount", -1);
}

static void test_task_set_computed_desired_count(void **state)
{
    (void)state;
    json_t *svc = json_pack(
        "{s:s, s:i, s:{s:s}, s:[{s:s, s:{s:f}}, {s:s, s:{s:f}}, {s:s, s:{s:f}}, {s:s, s:{s:f}}]}",
        "status", "ACTIVE", "desiredCount", 3, "deploymentController", "type", "EXTERNAL",
        "taskSets", "status", "ACTIVE", "scale", "value", 100.0, "status", "PRIMARY", "scale",
        "value", 40.0, "status", "ACTIVE", "scale", "value", 100.0 / 3, "status", "DRAINING",
        "scale", "value", 100.0);
    assert_true(ecs_service_external(svc));
    ecs_service_tasksets_compute(svc);
    assert_int_equal(computed(svc, 0), 3);
    /* 1.2 tasks round up to 2; a third of 3 stays 1 in spite of the float. */
    assert_int_equal(computed(svc, 1), 2);
    assert_int_equal(computed(svc, 2), 1);
    assert_int_equal(computed(svc, 3), 0);
    json_object_set_new(svc, "status", json_string("DRAINING"));
    ecs_service_tasksets_compute(svc);
    assert_int_equal(computed(svc, 0), 0);
    json_object_set_new(svc, "deploymentController", json_pack("{s:s}", "type", "ECS"));
    assert_false(ecs_service_external(svc));
    json_decref(svc);
}

static void test_instance_connected(void **state)
{
    (void)state;
    json_t *inst = json_object();
    assert_false(ecs_instance_connected(inst));
    json_object_set_new(inst, "_lastSeen", json_real(barge_now()));
    assert_true(ecs_instance_connected(inst));
    json_object_set_new(inst, "_lastSeen", json_real(barge_now() - ecs_agent_timeout_seconds - 1));
    assert_false(ecs_instance_connected(inst));
    json_decref(inst);
}

static void test_usage_measure(void **state)
{
    (void)state;
    /* 30 s of a 1 vCPU / 2 GB task with 30 GiB of storage: billed a minute. */
    json_t *task =
        json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:s, s:{s:i}}", "taskArn", "arn:t", "_cluster",
                  "c", "cpu", "1024", "memory", "2048", "pullStartedAt", 1000.0, "stoppedAt",
                  1030.0, "group", "service:web", "ephemeralStorage", "sizeInGiB", 30);
    json_t *r = ecs_usage_measure(task, 5000);
    assert_int_equal(barge_json_int(r, "seconds", 0), 30);
    assert_int_equal(barge_json_int(r, "billedSeconds", 0), 60);
    assert_string_equal(barge_json_str(r, "service", ""), "web");
    assert_false(json_is_true(json_object_get(r, "running")));
    double want = (60.0 / 3600.0) * (1 * barge_prices.vcpu_hour + 2 * barge_prices.gb_hour +
                                     10 * barge_prices.storage_gb_hour);
    assert_true(fabs(json_number_value(json_object_get(r, "cost")) - want) < 1e-12);
    json_decref(r);

    /* Still running: measured up to now. */
    json_object_del(task, "stoppedAt");
    r = ecs_usage_measure(task, 1100);
    assert_int_equal(barge_json_int(r, "seconds", 0), 100);
    assert_true(json_is_true(json_object_get(r, "running")));
    json_decref(r);
    json_decref(task);
}

/* Capacity provider choice and the names of task definitions, which task
 * placement uses without the API layer. */
static void test_capacity_pick_and_names(void **state)
{
    (void)state;
    json_t *strategy =
        json_pack("[{s:s, s:i, s:i}, {s:s, s:i}]", "capacityProvider", "FARGATE", "base", 2,
                  "weight", 1, "capacityProvider", "FARGATE_SPOT", "weight", 3);
    json_t *counts = json_object();
    /* The base first, then by weight: 1 to FARGATE for every 3 to Spot. */
    const char *want[] = {"FARGATE",      "FARGATE",      "FARGATE", "FARGATE_SPOT",
                          "FARGATE_SPOT", "FARGATE_SPOT", "FARGATE", "FARGATE_SPOT"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(ecs_capacity_pick(strategy, counts), want[i]);
    assert_int_equal(barge_json_int(counts, "FARGATE", 0), 4);
    assert_int_equal(barge_json_int(counts, "FARGATE_SPOT", 0), 4);
    assert_true(ecs_capacity_is_fargate("FARGATE_SPOT"));
    assert_false(ecs_capacity_is_fargate("hosts"));
    json_decref(counts);
    json_decref(strategy);

    char *key = ecs_taskdef_key("web", 3);
    assert_string_equal(key, "web!0000000003");
    free(key);
    assert_true(ecs_name_valid("web-1_a"));
    assert_false(ecs_name_valid("web:1"));
    assert_false(ecs_name_valid(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_stop),
        cmocka_unit_test(test_service_events_and_deployments),
        cmocka_unit_test(test_task_set_computed_desired_count),
        cmocka_unit_test(test_instance_connected),
        cmocka_unit_test(test_usage_measure),
        cmocka_unit_test(test_capacity_pick_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
