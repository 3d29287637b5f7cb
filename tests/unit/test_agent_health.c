/* The health check state machine (Docker's rules as ECS relies on them), the
 * task's health from its containers', and container ordering (dependsOn
 * verdicts, cycles, the reverse shutdown order). */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "agent/deps.h"
#include "agent/health.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad JSON in test: %s", jerr.text);
    return j;
}

static void test_config(void **state)
{
    struct barge_health_config c;
    struct barge_error *err = NULL;
    json_t *hc = parse("{\"command\": [\"CMD-SHELL\", \"curl -f http://localhost/\", \"|| exit "
                       "1\"], \"interval\": 10}");
    assert_int_equal(barge_health_config_parse(hc, &c, &err), 1);
    assert_string_equal(c.argv[0], "/bin/sh");
    assert_string_equal(c.argv[1], "-c");
    assert_string_equal(c.argv[2], "curl -f http://localhost/ || exit 1");
    assert_null(c.argv[3]);
    assert_int_equal(c.interval_s, 10);
    assert_int_equal(c.timeout_s, 5); /* ECS's defaults */
    assert_int_equal(c.retries, 3);
    assert_int_equal(c.start_period, 0);
    barge_health_config_release(&c);
    json_decref(hc);

    hc = parse("{\"command\": [\"CMD\", \"/bin/check\", \"--quick\"], \"retries\": 1, "
               "\"startPeriod\": 20}");
    assert_int_equal(barge_health_config_parse(hc, &c, &err), 1);
    assert_string_equal(c.argv[0], "/bin/check");
    assert_string_equal(c.argv[1], "--quick");
    assert_null(c.argv[2]);
    assert_int_equal(c.retries, 1);
    assert_int_equal(c.start_period, 20);
    barge_health_config_release(&c);
    json_decref(hc);

    hc = parse("{\"command\": [\"NONE\"]}");
    assert_int_equal(barge_health_config_parse(hc, &c, &err), 0);
    json_decref(hc);
    assert_int_equal(barge_health_config_parse(NULL, &c, &err), 0);
    hc = parse("{\"command\": [\"RUN\", \"x\"]}");
    assert_int_equal(barge_health_config_parse(hc, &c, &err), -1);
    assert_non_null(err);
    barge_error_free(err);
    json_decref(hc);
}

static void test_state_machine(void **state)
{
    struct barge_health_config c = {
        .interval_s = 5, .timeout_s = 2, .retries = 3, .start_period = 10};
    struct barge_health_state s;
    barge_health_state_init(&s, 1000.0);
    assert_int_equal(s.status, BARGE_HEALTH_UNKNOWN);
    /* failures inside the start period do not count */
    assert_false(barge_health_record(&s, &c, false, 1, "no", 1005.0));
    assert_false(barge_health_record(&s, &c, false, 1, "no", 1009.0));
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.status, BARGE_HEALTH_UNKNOWN);
    /* ...but a success does */
    assert_true(barge_health_record(&s, &c, true, 0, "ok\n", 1009.5));
    assert_int_equal(s.status, BARGE_HEALTH_HEALTHY);
    assert_string_equal(s.output, "ok");
    assert_true(s.status_since == 1009.5);
    /* retries consecutive failures make it unhealthy */
    assert_false(barge_health_record(&s, &c, false, 1, "", 1020));
    assert_false(barge_health_record(&s, &c, false, 1, "", 1025));
    assert_true(barge_health_record(&s, &c, false, -1, "timed out", 1030));
    assert_int_equal(s.status, BARGE_HEALTH_UNHEALTHY);
    assert_int_equal(s.last_exit, -1);
    /* one success heals and resets the count */
    assert_true(barge_health_record(&s, &c, true, 0, "", 1035));
    assert_int_equal(s.failures, 0);
    assert_false(barge_health_record(&s, &c, false, 1, "", 1040));
    assert_int_equal(s.status, BARGE_HEALTH_HEALTHY);
}

static void test_task_health(void **state)
{
    enum barge_health_status st[3];
    bool ess[3] = {true, true, false}, has[3] = {true, true, true};
    st[0] = BARGE_HEALTH_HEALTHY, st[1] = BARGE_HEALTH_HEALTHY, st[2] = BARGE_HEALTH_UNHEALTHY;
    /* a non-essential container does not count */
    assert_int_equal(barge_health_task(st, ess, has, 3), BARGE_HEALTH_HEALTHY);
    st[1] = BARGE_HEALTH_UNKNOWN;
    assert_int_equal(barge_health_task(st, ess, has, 3), BARGE_HEALTH_UNKNOWN);
    st[0] = BARGE_HEALTH_UNHEALTHY;
    assert_int_equal(barge_health_task(st, ess, has, 3), BARGE_HEALTH_UNHEALTHY);
    /* containers without a check do not count; none at all: UNKNOWN */
    has[0] = has[1] = false;
    assert_int_equal(barge_health_task(st, ess, has, 3), BARGE_HEALTH_UNKNOWN);
    has[1] = true;
    st[1] = BARGE_HEALTH_HEALTHY;
    assert_int_equal(barge_health_task(st, ess, has, 3), BARGE_HEALTH_HEALTHY);
    assert_string_equal(barge_health_status_name(BARGE_HEALTH_UNHEALTHY), "UNHEALTHY");
}

static const char *const DEFS =
    "[{\"name\": \"web\", \"dependsOn\": [{\"containerName\": \"db\", \"condition\": "
    "\"HEALTHY\"}, {\"containerName\": \"migrate\", \"condition\": \"SUCCESS\"}]},"
    " {\"name\": \"db\"},"
    " {\"name\": \"migrate\", \"dependsOn\": [{\"containerName\": \"db\", \"condition\": "
    "\"START\"}]},"
    " {\"name\": \"logs\", \"dependsOn\": [{\"containerName\": \"web\", \"condition\": "
    "\"COMPLETE\"}]}]";

static void test_verdicts(void **state)
{
    json_t *defs = parse(DEFS);
    struct barge_deps *d = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_deps_build(defs, &d, &err), 0);
    struct barge_dep_view v[4] = {{0}};
    char *why = NULL;
    assert_int_equal(barge_deps_verdict(d, defs, 1, v, &why), BARGE_DEP_READY);
    assert_null(why);
    assert_int_equal(barge_deps_verdict(d, defs, 2, v, &why), BARGE_DEP_WAIT);
    assert_string_equal(why, "container 'db' to start");
    free(why);
    v[1].started = true;
    assert_int_equal(barge_deps_verdict(d, defs, 2, v, NULL), BARGE_DEP_READY);
    assert_int_equal(barge_deps_verdict(d, defs, 0, v, &why), BARGE_DEP_WAIT);
    assert_string_equal(why, "container 'db' to become healthy");
    free(why);
    v[1].health = BARGE_HEALTH_HEALTHY;
    v[2].started = true;
    assert_int_equal(barge_deps_verdict(d, defs, 0, v, &why), BARGE_DEP_WAIT);
    assert_string_equal(why, "container 'migrate' to exit successfully");
    free(why);
    v[2].exited = true;
    v[2].exit_code = 0;
    assert_int_equal(barge_deps_verdict(d, defs, 0, v, NULL), BARGE_DEP_READY);
    v[2].exit_code = 2;
    assert_int_equal(barge_deps_verdict(d, defs, 0, v, &why), BARGE_DEP_NEVER);
    assert_string_equal(why, "container 'migrate' exited with 2 (dependsOn SUCCESS)");
    free(why);
    v[2].exit_code = 0;
    v[1].exited = true;
    assert_int_equal(barge_deps_verdict(d, defs, 0, v, &why), BARGE_DEP_NEVER);
    assert_string_equal(why, "container 'db' exited before becoming healthy (dependsOn HEALTHY)");
    free(why);
    /* COMPLETE: any exit; a dependency that never starts is never met */
    assert_int_equal(barge_deps_verdict(d, defs, 3, v, NULL), BARGE_DEP_WAIT);
    v[0].started = v[0].exited = true;
    v[0].exit_code = 9;
    assert_int_equal(barge_deps_verdict(d, defs, 3, v, NULL), BARGE_DEP_READY);
    v[0] = (struct barge_dep_view){.abandoned = true};
    assert_int_equal(barge_deps_verdict(d, defs, 3, v, &why), BARGE_DEP_NEVER);
    assert_string_equal(why, "container 'web' will never start (dependsOn COMPLETE)");
    free(why);
    barge_deps_free(d);
    json_decref(defs);
}

static void test_stop_waves(void **state)
{
    json_t *defs = parse(DEFS);
    struct barge_deps *d = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_deps_build(defs, &d, &err), 0);
    size_t wave[4];
    assert_int_equal(barge_deps_stop_waves(d, wave), 4);
    /* logs depends on web, web on migrate and db, migrate on db */
    assert_int_equal(wave[3], 0); /* logs */
    assert_int_equal(wave[0], 1); /* web */
    assert_int_equal(wave[2], 2); /* migrate */
    assert_int_equal(wave[1], 3); /* db */
    barge_deps_free(d);
    json_decref(defs);

    defs = parse("[{\"name\": \"a\"}, {\"name\": \"b\"}]");
    assert_int_equal(barge_deps_build(defs, &d, &err), 0);
    assert_int_equal(barge_deps_stop_waves(d, wave), 1);
    assert_int_equal(wave[0], 0);
    assert_int_equal(wave[1], 0);
    barge_deps_free(d);
    json_decref(defs);
}

static void test_bad_graphs(void **state)
{
    static const char *const bad[][2] = {
        {"[{\"name\": \"a\", \"dependsOn\": [{\"containerName\": \"b\", \"condition\": "
         "\"START\"}]}, {\"name\": \"b\", \"dependsOn\": [{\"containerName\": \"a\", "
         "\"condition\": \"START\"}]}]",
         "form a cycle"},
        {"[{\"name\": \"a\", \"dependsOn\": [{\"containerName\": \"zz\", \"condition\": "
         "\"START\"}]}]",
         "'zz', which is not another container"},
        {"[{\"name\": \"a\", \"dependsOn\": [{\"containerName\": \"a\", \"condition\": "
         "\"START\"}]}]",
         "not another container"},
        {"[{\"name\": \"a\"}, {\"name\": \"b\", \"dependsOn\": [{\"containerName\": \"a\", "
         "\"condition\": \"READY\"}]}]",
         "unknown dependsOn condition 'READY'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *defs = parse(bad[i][0]);
        struct barge_deps *d = NULL;
        struct barge_error *err = NULL;
        assert_int_equal(barge_deps_build(defs, &d, &err), -1);
        assert_null(d);
        if (!strstr(err->message, bad[i][1]))
            fail_msg("'%s' not in '%s'", bad[i][1], err->message);
        barge_error_free(err);
        json_decref(defs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),      cmocka_unit_test(test_state_machine),
        cmocka_unit_test(test_task_health), cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_stop_waves),  cmocka_unit_test(test_bad_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
