/* Unit tests of the rolling-deployment planner (src/sched/deploy.c) around
 * task scale-in protection: scale-in takes unprotected tasks and leaves
 * protected ones, and a deployment does not stop protected old tasks; and
 * blue/green's keep_old (green at full count, blue kept). */
#include <stdlib.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on

#include "sched/deploy.h"

static bool stops(const struct barge_deploy_plan *p, size_t i)
{
    for (size_t k = 0; k < p->n_stop; k++)
        if (p->stop[k] == i)
            return true;
    return false;
}

static void test_scale_in_skips_protected(void **state)
{
    (void)state;
    /* Scale-in from 4 to 2 picks the newest tasks first; 3 is protected. */
    struct barge_deploy_task t[4] = {{.healthy = true},
                                     {.healthy = true},
                                     {.healthy = true},
                                     {.healthy = true, .protected = true}};
    struct barge_deploy_input in = {.desired = 2,
                                    .minimum_healthy_percent = 100,
                                    .maximum_percent = 200,
                                    .tasks = t,
                                    .n_tasks = 4};
    struct barge_deploy_plan p;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 2);
    assert_false(stops(&p, 3));
    assert_true(stops(&p, 2) && stops(&p, 1));
    assert_int_equal(p.protected_kept, 0);
    free(p.stop);

    /* Down to 0 with one protected: three go, one stays, nothing is stuck. */
    in.desired = 0;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 3);
    assert_false(stops(&p, 3));
    assert_int_equal(p.protected_kept, 1);
    assert_false(p.steady);
    assert_false(p.stuck);
    free(p.stop);

    /* Without protection, it goes too. */
    t[3].protected = false;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 4);
    assert_int_equal(p.protected_kept, 0);
    free(p.stop);
}

static void test_deployment_waits_for_protected_old_tasks(void **state)
{
    (void)state;
    /* Two healthy old tasks (one protected), two healthy new ones: only the
     * unprotected old task goes. */
    struct barge_deploy_task t[4] = {{.deployment = 1, .healthy = true, .protected = true},
                                     {.deployment = 1, .healthy = true},
                                     {.deployment = 0, .healthy = true},
                                     {.deployment = 0, .healthy = true}};
    struct barge_deploy_input in = {.desired = 2,
                                    .minimum_healthy_percent = 50,
                                    .maximum_percent = 200,
                                    .tasks = t,
                                    .n_tasks = 4};
    struct barge_deploy_plan p;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 1);
    assert_true(stops(&p, 1));
    assert_int_equal(p.protected_kept, 1);
    assert_false(p.steady);
    assert_false(p.stuck);
    free(p.stop);

    /* An unhealthy protected old task is kept as well. */
    t[0].healthy = false;
    t[1].protected = true;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 0);
    assert_int_equal(p.protected_kept, 2);
    free(p.stop);

    /* Once protection ends the deployment finishes. */
    t[0].protected = t[1].protected = false;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 2);
    free(p.stop);
}

static void test_blue_green_keeps_blue(void **state)
{
    (void)state;
    /* Blue: two healthy old tasks; maximumPercent 100 would allow no green. */
    struct barge_deploy_task t[4] = {{.deployment = 1, .healthy = true},
                                     {.deployment = 1, .healthy = true}};
    struct barge_deploy_input in = {.desired = 2,
                                    .minimum_healthy_percent = 0,
                                    .maximum_percent = 100,
                                    .keep_old = true,
                                    .tasks = t,
                                    .n_tasks = 2};
    struct barge_deploy_plan p;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.start, 2); /* green at full count at once */
    assert_int_equal(p.n_stop, 0);
    free(p.stop);

    /* Blue reading unhealthy (as after an HAProxy reload) stays too. */
    t[1].healthy = false;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 0);
    free(p.stop);
    t[1].healthy = true;

    /* Green healthy: blue still stays until the bake time is over. */
    t[2] = (struct barge_deploy_task){.healthy = true};
    t[3] = (struct barge_deploy_task){.healthy = true};
    in.n_tasks = 4;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.start, 0);
    assert_int_equal(p.n_stop, 0);
    assert_false(p.steady);
    assert_false(p.stuck);
    free(p.stop);

    /* Then blue goes. */
    in.keep_old = false;
    barge_deploy_plan(&in, &p);
    assert_int_equal(p.n_stop, 2);
    assert_true(stops(&p, 0) && stops(&p, 1));
    free(p.stop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_in_skips_protected),
        cmocka_unit_test(test_deployment_waits_for_protected_old_tasks),
        cmocka_unit_test(test_blue_green_keeps_blue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
