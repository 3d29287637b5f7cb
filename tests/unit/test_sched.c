/* Placement over a snapshot: resource fit and ECS's failure reasons, each
 * strategy and their chaining, distinctInstance and memberOf (with its cache
 * following task changes), scale-in choices, policy validation, and a
 * randomised comparison of the indexed placement against a brute-force
 * reading of the rules. */
#include <string.h>

/* cmocka.h needs these first; keep clang-format from sorting it above them. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "sched/place.h"

static size_t add(struct barge_sched_snapshot *s, const char *id, const char *az, int64_t cpu,
                  int64_t memory)
{
    struct barge_sched_attr attrs[] = {
        {"ecs.availability-zone", az},
        {"ecs.instance-type", strstr(id, "big") ? "m5.large" : "t2.small"},
    };
    uint16_t ports[] = {22};
    struct barge_sched_instance in = {
        .id = id,
        .arn = id,
        .ec2_instance_id = id,
        .attrs = attrs,
        .n_attrs = az ? 2 : 0,
        .active = true,
        .agent_connected = true,
        .cpu = cpu,
        .memory = memory,
        .ports = ports,
        .n_ports = 1,
    };
    return barge_sched_snapshot_add(s, &in);
}

static struct barge_sched_request request(int64_t cpu, int64_t memory, const char *group,
                                          const struct barge_sched_policy *p)
{
    struct barge_sched_request r = {.cpu = cpu, .memory = memory, .group = group, .policy = p};
    return r;
}

static void strategy(struct barge_sched_policy *p, const char *type, const char *field)
{
    struct barge_error *err = NULL;
    if (barge_sched_policy_add_strategy(p, type, field, &err) < 0)
        fail_msg("%s", err->message);
}

static void constraint(struct barge_sched_policy *p, const char *type, const char *expr)
{
    struct barge_error *err = NULL;
    if (barge_sched_policy_add_constraint(p, type, expr, false, &err) < 0)
        fail_msg("%s", err->message);
}

static const char *placed_id(struct barge_sched_snapshot *s, struct barge_sched_request *r,
                             uint64_t seed)
{
    ssize_t i = barge_sched_place(s, r, seed, NULL);
    return i < 0 ? NULL : barge_sched_snapshot_get(s, (size_t)i)->id;
}

static void test_fit_and_reasons(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    size_t a = add(s, "a", "az1", 1024, 1000);
    struct barge_sched_instance off = {.id = "off", .cpu = 4096, .memory = 4096, .active = true};
    size_t b = barge_sched_snapshot_add(s, &off);
    struct barge_sched_instance draining = {
        .id = "dr", .cpu = 4096, .memory = 4096, .agent_connected = true};
    size_t c = barge_sched_snapshot_add(s, &draining);
    struct barge_sched_request r = request(512, 512, "family:f", NULL);
    assert_int_equal(barge_sched_check(s, a, &r), BARGE_SCHED_FITS);
    assert_int_equal(barge_sched_check(s, b, &r), BARGE_SCHED_NOT_ELIGIBLE);
    assert_int_equal(barge_sched_check(s, c, &r), BARGE_SCHED_NOT_ELIGIBLE);
    r.cpu = 2048;
    assert_int_equal(barge_sched_check(s, a, &r), BARGE_SCHED_NO_CPU);
    r.cpu = 0;
    r.memory = 1001;
    assert_int_equal(barge_sched_check(s, a, &r), BARGE_SCHED_NO_MEMORY);
    r.memory = 1;
    r.ports[r.n_ports++] = 22; /* reserved on the instance */
    assert_int_equal(barge_sched_check(s, a, &r), BARGE_SCHED_NO_PORTS);
    assert_string_equal(barge_sched_verdict_reason(BARGE_SCHED_NOT_ELIGIBLE), "AGENT");
    assert_string_equal(barge_sched_verdict_reason(BARGE_SCHED_NO_CPU), "RESOURCE:CPU");
    assert_string_equal(barge_sched_verdict_reason(BARGE_SCHED_NO_MEMORY), "RESOURCE:MEMORY");
    assert_string_equal(barge_sched_verdict_reason(BARGE_SCHED_NO_PORTS), "RESOURCE:PORTS");
    assert_string_equal(barge_sched_verdict_reason(BARGE_SCHED_NOT_MEMBER_OF),
                        "MemberOf placement constraint unsatisfied.");
    assert_string_equal(barge_sched_verdict_reason(BARGE_SCHED_NOT_DISTINCT),
                        "DistinctInstance placement constraint unsatisfied.");
    barge_sched_snapshot_free(s);
}

static void test_closest_reason(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    struct barge_sched_instance off = {.id = "off", .cpu = 4096, .memory = 4096, .active = true};
    barge_sched_snapshot_add(s, &off);
    add(s, "small-cpu", "az1", 100, 4096);
    add(s, "small-mem", "az1", 4096, 100);
    struct barge_sched_request r = request(512, 512, "family:f", NULL);
    struct barge_sched_failure why;
    assert_int_equal(barge_sched_place(s, &r, 1, &why), -1);
    assert_int_equal(why.closest, 2);
    assert_int_equal(why.reason, BARGE_SCHED_NO_MEMORY);
    char *msg = barge_sched_failure_message(s, &why);
    assert_string_equal(msg, "The closest matching container-instance small-mem has "
                             "insufficient memory available.");
    free(msg);
    r.cpu = 5000;
    r.memory = 10;
    assert_int_equal(barge_sched_place(s, &r, 1, &why), -1);
    assert_int_equal(why.closest, 1); /* the first of the two without CPU */
    assert_int_equal(why.reason, BARGE_SCHED_NO_CPU);
    msg = barge_sched_failure_message(s, &why);
    assert_string_equal(msg, "The closest matching container-instance small-cpu has "
                             "insufficient CPU units available.");
    free(msg);
    why.reason = BARGE_SCHED_NOT_ELIGIBLE;
    why.closest = 0;
    msg = barge_sched_failure_message(s, &why);
    assert_string_equal(msg,
                        "The closest matching container-instance off encountered error \"AGENT\".");
    free(msg);
    why.reason = BARGE_SCHED_NO_PORTS;
    msg = barge_sched_failure_message(s, &why);
    assert_string_equal(msg, "The closest matching container-instance off is already using a "
                             "port required by your task.");
    free(msg);
    barge_sched_snapshot_free(s);

    s = barge_sched_snapshot_new();
    assert_int_equal(barge_sched_place(s, &r, 1, &why), -1);
    assert_int_equal(why.closest, -1);
    msg = barge_sched_failure_message(s, &why);
    assert_string_equal(msg, "No Container Instances were found in your cluster.");
    free(msg);
    barge_sched_snapshot_free(s);
}

static void test_random(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "a", "az1", 10000, 10000);
    add(s, "b", "az1", 10000, 10);
    add(s, "c", "az1", 10000, 10000);
    add(s, "d", "az1", 10000, 10000);
    struct barge_sched_request r = request(1, 1, "family:f", NULL);
    int seen[4] = {0};
    for (uint64_t seed = 0; seed < 400; seed++) {
        r.memory = 100; /* b never fits */
        ssize_t i = barge_sched_place(s, &r, seed, NULL);
        assert_true(i >= 0 && i != 1);
        seen[i]++;
        barge_sched_snapshot_remove_task(s, (size_t)i, "family:f", 1, 100, NULL, 0, false);
    }
    assert_true(seen[0] > 50 && seen[2] > 50 && seen[3] > 50);
    barge_sched_snapshot_free(s);
    /* the same seed gives the same answer */
    const char *first = NULL;
    for (int k = 0; k < 2; k++) {
        s = barge_sched_snapshot_new();
        for (int i = 0; i < 50; i++) {
            char id[16];
            snprintf(id, sizeof(id), "i%d", i);
            add(s, id, "az1", 10000, 10000);
        }
        ssize_t i = barge_sched_place(s, &r, 42, NULL);
        const char *id = barge_sched_snapshot_get(s, (size_t)i)->id;
        if (k == 0)
            first = strdup(id);
        else
            assert_string_equal(first, id);
        barge_sched_snapshot_free(s);
    }
    free((void *)first);
}

static void test_spread_instance(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "i%d", i);
        add(s, id, "az1", 10000, 10000);
    }
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    strategy(&p, "spread", "instanceId");
    struct barge_sched_request r = request(10, 10, "service:web", &p);
    for (int k = 0; k < 8; k++)
        assert_true(barge_sched_place(s, &r, (uint64_t)k, NULL) >= 0);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(
            barge_sched_instance_group_count(barge_sched_snapshot_get(s, i), "service:web"), 2);
    /* "host" is the same field */
    barge_sched_policy_release(&p);
    strategy(&p, "spread", "host");
    assert_int_equal(p.strategies[0].field, BARGE_SCHED_FIELD_INSTANCE);
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);
}

static int az_count(struct barge_sched_snapshot *s, const char *az, const char *group)
{
    int n = 0;
    for (size_t i = 0; i < barge_sched_snapshot_count(s); i++) {
        const struct barge_sched_instance *in = barge_sched_snapshot_get(s, i);
        if (barge_streq(barge_sched_instance_attr(in, "ecs.availability-zone", NULL), az))
            n += (int)barge_sched_instance_group_count(in, group);
    }
    return n;
}

static void test_spread_az(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "a1", "az-a", 10000, 10000);
    add(s, "b1", "az-b", 10000, 10000);
    add(s, "b2", "az-b", 10000, 10000);
    add(s, "c1", "az-c", 10000, 10000);
    add(s, "c2", "az-c", 10000, 10000);
    add(s, "c3", "az-c", 10000, 10000);
    /* tasks of another group do not count; this group's existing ones do */
    barge_sched_snapshot_add_task(s, 0, "service:other", 10, 10, NULL, 0, true);
    barge_sched_snapshot_add_task(s, 0, "service:other", 10, 10, NULL, 0, true);
    barge_sched_snapshot_add_task(s, 1, "service:web", 10, 10, NULL, 0, true);
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    barge_sched_policy_default_service(&p);
    assert_int_equal(p.n_strategies, 2);
    assert_string_equal(p.strategies[0].attribute, "ecs.availability-zone");
    assert_int_equal(p.strategies[1].field, BARGE_SCHED_FIELD_INSTANCE);
    struct barge_sched_request r = request(10, 10, "service:web", &p);
    /* two tasks: az-a and az-c (az-b has one already) */
    assert_true(barge_sched_place(s, &r, 1, NULL) >= 0);
    assert_true(barge_sched_place(s, &r, 2, NULL) >= 0);
    assert_int_equal(az_count(s, "az-a", "service:web"), 1);
    assert_int_equal(az_count(s, "az-b", "service:web"), 1);
    assert_int_equal(az_count(s, "az-c", "service:web"), 1);
    for (int k = 0; k < 6; k++)
        assert_true(barge_sched_place(s, &r, (uint64_t)k, NULL) >= 0);
    assert_int_equal(az_count(s, "az-a", "service:web"), 3);
    assert_int_equal(az_count(s, "az-b", "service:web"), 3);
    assert_int_equal(az_count(s, "az-c", "service:web"), 3);
    /* then spread over instances inside each zone */
    for (size_t i = 3; i < 6; i++)
        assert_int_equal(
            barge_sched_instance_group_count(barge_sched_snapshot_get(s, i), "service:web"), 1);
    uint32_t b1 = barge_sched_instance_group_count(barge_sched_snapshot_get(s, 1), "service:web");
    uint32_t b2 = barge_sched_instance_group_count(barge_sched_snapshot_get(s, 2), "service:web");
    assert_true(b1 + b2 == 3 && b1 >= 1 && b2 >= 1);
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);
}

static void test_binpack(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "m1000", "az1", 10000, 1000);
    add(s, "m600", "az1", 10000, 600);
    add(s, "m300", "az1", 10000, 300);
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    strategy(&p, "binpack", "memory");
    struct barge_sched_request r = request(1, 250, "family:f", &p);
    assert_string_equal(placed_id(s, &r, 1), "m300");
    assert_string_equal(placed_id(s, &r, 1), "m600");
    assert_string_equal(placed_id(s, &r, 1), "m600"); /* 350 left, the least that fits */
    assert_string_equal(placed_id(s, &r, 1), "m1000");
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);

    s = barge_sched_snapshot_new();
    add(s, "c4096", "az1", 4096, 10000);
    add(s, "c1024", "az1", 1024, 10000);
    add(s, "c2048", "az1", 2048, 10000);
    strategy(&p, "binpack", "CPU");
    r = request(1024, 1, "family:f", &p);
    assert_string_equal(placed_id(s, &r, 1), "c1024");
    assert_string_equal(placed_id(s, &r, 1), "c2048");
    assert_string_equal(placed_id(s, &r, 1), "c2048");
    assert_string_equal(placed_id(s, &r, 1), "c4096");
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);
}

static void test_chain(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "a500", "az-a", 10000, 500);
    add(s, "a900", "az-a", 10000, 900);
    add(s, "b400", "az-b", 10000, 400);
    add(s, "b800", "az-b", 10000, 800);
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    strategy(&p, "spread", "attribute:ecs.availability-zone");
    strategy(&p, "binpack", "memory");
    struct barge_sched_request r = request(1, 100, "service:web", &p);
    /* zones tie at 0: binpack over both picks the least memory */
    assert_string_equal(placed_id(s, &r, 7), "b400");
    /* az-a has fewer tasks now */
    assert_string_equal(placed_id(s, &r, 7), "a500");
    assert_string_equal(placed_id(s, &r, 7), "b400"); /* 300 left < 400 */
    assert_string_equal(placed_id(s, &r, 7), "a500");
    barge_sched_policy_release(&p);

    /* random ends a chain: what follows it is ignored */
    strategy(&p, "random", NULL);
    strategy(&p, "binpack", "memory");
    int seen_a900 = 0;
    for (uint64_t seed = 0; seed < 50; seed++) {
        ssize_t i = barge_sched_place(s, &r, seed, NULL);
        assert_true(i >= 0);
        if (i == 1)
            seen_a900++;
        barge_sched_snapshot_remove_task(s, (size_t)i, "service:web", 1, 100, NULL, 0, false);
    }
    assert_true(seen_a900 > 0);
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);
}

static void test_distinct_instance(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "a", "az1", 10000, 10000);
    add(s, "b", "az1", 10000, 10000);
    add(s, "c", "az1", 10000, 10000);
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    constraint(&p, "distinctInstance", NULL);
    strategy(&p, "binpack", "memory");
    struct barge_sched_request r = request(1, 1, "service:web", &p);
    bool used[3] = {false};
    for (int k = 0; k < 3; k++) {
        ssize_t i = barge_sched_place(s, &r, (uint64_t)k, NULL);
        assert_true(i >= 0 && !used[i]);
        used[i] = true;
    }
    struct barge_sched_failure why;
    assert_int_equal(barge_sched_place(s, &r, 9, &why), -1);
    assert_int_equal(why.reason, BARGE_SCHED_NOT_DISTINCT);
    char *msg = barge_sched_failure_message(s, &why);
    assert_string_equal(msg, "The closest matching container-instance a encountered error "
                             "\"DistinctInstance placement constraint unsatisfied.\".");
    free(msg);
    /* another group is free to go anywhere */
    r.group = "service:api";
    assert_true(barge_sched_place(s, &r, 9, NULL) >= 0);
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);
}

static void test_member_of(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "small1", "az1", 10000, 10000);
    add(s, "big1", "az2", 10000, 10000);
    add(s, "small2", "az2", 10000, 10000);
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    constraint(&p, "memberOf",
               "attribute:ecs.instance-type =~ t2.* and "
               "attribute:ecs.availability-zone != az1");
    struct barge_sched_request r = request(1, 1, "family:f", &p);
    for (uint64_t seed = 0; seed < 20; seed++)
        assert_string_equal(placed_id(s, &r, seed), "small2");
    barge_sched_policy_release(&p);

    /* task:group: follows tasks as they land (the cache is invalidated) */
    constraint(&p, "memberOf", "task:group == service:db");
    r = request(1, 1, "service:web", &p);
    struct barge_sched_failure why;
    assert_int_equal(barge_sched_place(s, &r, 1, &why), -1);
    assert_int_equal(why.reason, BARGE_SCHED_NOT_MEMBER_OF);
    struct barge_sched_request db = request(1, 1, "service:db", NULL);
    barge_sched_commit(s, 1, &db);
    for (uint64_t seed = 0; seed < 10; seed++)
        assert_string_equal(placed_id(s, &r, seed), "big1");
    barge_sched_snapshot_remove_task(s, 1, "service:db", 1, 1, NULL, 0, false);
    assert_int_equal(barge_sched_place(s, &r, 1, &why), -1);
    barge_sched_policy_release(&p);

    /* runningTasksCount, likewise */
    constraint(&p, "memberOf", "runningTasksCount == 0");
    r = request(1, 1, "family:g", &p);
    barge_sched_snapshot_add_task(s, 0, "family:x", 0, 0, NULL, 0, true);
    barge_sched_snapshot_add_task(s, 2, "family:x", 0, 0, NULL, 0, true);
    for (uint64_t seed = 0; seed < 10; seed++)
        assert_string_equal(placed_id(s, &r, seed), "big1"); /* pending ones do not count */
    barge_sched_snapshot_add_task(s, 1, "family:x", 0, 0, NULL, 0, true);
    assert_int_equal(barge_sched_place(s, &r, 1, &why), -1);
    barge_sched_policy_release(&p);
    barge_sched_snapshot_free(s);
}

static void test_ports(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "a", "az1", 10000, 10000);
    add(s, "b", "az1", 10000, 10000);
    struct barge_sched_request r = request(1, 1, "family:f", NULL);
    r.ports[r.n_ports++] = 8080;
    ssize_t first = barge_sched_place(s, &r, 3, NULL);
    ssize_t second = barge_sched_place(s, &r, 3, NULL);
    assert_true(first >= 0 && second >= 0 && first != second);
    struct barge_sched_failure why;
    assert_int_equal(barge_sched_place(s, &r, 3, &why), -1);
    assert_int_equal(why.reason, BARGE_SCHED_NO_PORTS);
    barge_sched_snapshot_remove_task(s, (size_t)first, "family:f", 1, 1, r.ports, 1, false);
    assert_int_equal(barge_sched_place(s, &r, 3, NULL), first);
    barge_sched_snapshot_free(s);
}

static void test_start_task_path(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "a", "az1", 1024, 1024);
    add(s, "b", "az1", 1024, 1024);
    assert_int_equal(barge_sched_snapshot_find(s, "b"), 1);
    assert_int_equal(barge_sched_snapshot_find(s, "zz"), -1);
    struct barge_sched_request r = request(1024, 1, "family:f", NULL);
    assert_int_equal(barge_sched_check(s, 1, &r), BARGE_SCHED_FITS);
    barge_sched_commit(s, 1, &r);
    assert_int_equal(barge_sched_check(s, 1, &r), BARGE_SCHED_NO_CPU);
    const struct barge_sched_instance *b = barge_sched_snapshot_get(s, 1);
    assert_int_equal(b->cpu, 0);
    assert_int_equal(b->pending_tasks, 1);
    assert_int_equal(b->running_tasks, 0);
    barge_sched_snapshot_free(s);
}

static void test_scale_in(void **state)
{
    struct barge_sched_snapshot *s = barge_sched_snapshot_new();
    add(s, "a1", "az-a", 10000, 1000);
    add(s, "a2", "az-a", 10000, 5000);
    add(s, "b1", "az-b", 10000, 3000);
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    barge_sched_policy_default_service(&p);
    /* tasks 0..3: a1 a1 a2 b1 */
    size_t tasks[] = {0, 0, 1, 2};
    size_t out[4];
    assert_int_equal(barge_sched_scale_in(s, &p, tasks, 4, 2, out), 2);
    /* az-a has 3: take from it, from a1 (2 there); then az-a 2 vs az-b 1 -> az-a again, a1 and
     * a2 tie at 1: the first listed */
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    assert_int_equal(barge_sched_scale_in(s, &p, tasks, 4, 9, out), 4);
    barge_sched_policy_release(&p);

    strategy(&p, "binpack", "memory");
    assert_int_equal(barge_sched_scale_in(s, &p, tasks, 4, 1, out), 1);
    assert_int_equal(out[0], 2); /* a2 has the most memory free */
    barge_sched_policy_release(&p);

    /* no strategy: in the order listed */
    assert_int_equal(barge_sched_scale_in(s, NULL, tasks, 4, 2, out), 2);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    barge_sched_snapshot_free(s);
}

static void policy_fails(const char *type, const char *field, bool constraint_, bool td,
                         const char *message)
{
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    struct barge_error *err = NULL;
    int r = constraint_ ? barge_sched_policy_add_constraint(&p, type, field, td, &err)
                        : barge_sched_policy_add_strategy(&p, type, field, &err);
    assert_int_equal(r, -1);
    assert_string_equal(err->type, "InvalidParameterException");
    if (strcmp(err->message, message) != 0)
        fail_msg("got:  %s\nwant: %s", err->message, message);
    barge_error_free(err);
    barge_sched_policy_release(&p);
}

static void test_policy_errors(void **state)
{
    policy_fails("pack", NULL, false, false,
                 "invalid placement strategy type 'pack': use random, spread or binpack");
    policy_fails("spread", NULL, false, false,
                 "the spread placement strategy needs a field: instanceId, host or "
                 "attribute:NAME");
    policy_fails("spread", "zone", false, false,
                 "invalid field 'zone' for the spread placement strategy: use instanceId, host "
                 "or attribute:NAME");
    policy_fails("binpack", "disk", false, false,
                 "invalid field 'disk' for the binpack placement strategy: use cpu or memory");
    policy_fails("sameHost", NULL, true, false,
                 "invalid placement constraint type 'sameHost': use distinctInstance or memberOf");
    policy_fails("distinctInstance", NULL, true, true,
                 "invalid placement constraint type 'distinctInstance' in the task definition: "
                 "only memberOf is allowed there");
    policy_fails("distinctInstance", "attribute:a exists", true, false,
                 "the distinctInstance placement constraint takes no expression; "
                 "'attribute:a exists' was given");
    policy_fails("memberOf", "", true, false,
                 "the memberOf placement constraint needs an expression");
    policy_fails("memberOf", "attribute:a ==", true, false,
                 "invalid memberOf expression: expected a value after '==' at position 15 in "
                 "'attribute:a =='");
    struct barge_sched_policy p;
    barge_sched_policy_init(&p);
    struct barge_error *err = NULL;
    for (int i = 0; i < 5; i++)
        assert_int_equal(barge_sched_policy_add_strategy(&p, "random", NULL, &err), 0);
    assert_int_equal(barge_sched_policy_add_strategy(&p, "random", NULL, &err), -1);
    assert_string_equal(err->message, "at most 5 placement strategies can be given");
    barge_error_free(err);
    err = NULL;
    for (int i = 0; i < 10; i++)
        assert_int_equal(
            barge_sched_policy_add_constraint(&p, "distinctInstance", NULL, false, &err), 0);
    assert_int_equal(barge_sched_policy_add_constraint(&p, "distinctInstance", NULL, false, &err),
                     -1);
    barge_error_free(err);
    /* default_service keeps given strategies */
    barge_sched_policy_default_service(&p);
    assert_int_equal(p.n_strategies, 5);
    assert_int_equal(p.strategies[0].type, BARGE_SCHED_RANDOM);
    barge_sched_policy_release(&p);
}

/* --- the indexed placement against the rules read naively ----------------- */

static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* Tasks of group on instances sharing the attribute value of instance i. */
static int64_t value_count(struct barge_sched_snapshot *s, size_t i, const char *attr,
                           const char *group)
{
    const char *v = barge_sched_instance_attr(barge_sched_snapshot_get(s, i), attr, NULL);
    int64_t n = 0;
    for (size_t j = 0; j < barge_sched_snapshot_count(s); j++) {
        const struct barge_sched_instance *in = barge_sched_snapshot_get(s, j);
        if (barge_streq(barge_sched_instance_attr(in, attr, NULL), v))
            n += barge_sched_instance_group_count(in, group);
    }
    return n;
}

/* 1 when instance i is among the best for r, 0 when it fits but is not, -1
 * when it does not fit. best_exists says whether anything fits. */
static int reference_rank(struct barge_sched_snapshot *s, const struct barge_sched_request *r,
                          size_t chosen, bool *any_fits)
{
    size_t n = barge_sched_snapshot_count(s);
    const struct barge_sched_policy *p = r->policy;
    size_t n_st = 0;
    while (p && n_st < p->n_strategies && p->strategies[n_st].type != BARGE_SCHED_RANDOM)
        n_st++;
    int64_t best[BARGE_SCHED_MAX_STRATEGIES], key[BARGE_SCHED_MAX_STRATEGIES],
        mine[BARGE_SCHED_MAX_STRATEGIES];
    bool have = false, chosen_fits = false;
    for (size_t i = 0; i < n; i++) {
        const struct barge_sched_instance *in = barge_sched_snapshot_get(s, i);
        bool fits =
            in->active && in->agent_connected && in->cpu >= r->cpu && in->memory >= r->memory;
        for (size_t c = 0; fits && p && c < p->n_constraints; c++) {
            if (p->constraints[c].type == BARGE_SCHED_DISTINCT_INSTANCE)
                fits = barge_sched_instance_group_count(in, r->group) == 0;
            else
                fits = barge_cql_eval(p->constraints[c].expr, in);
        }
        if (!fits)
            continue;
        for (size_t k = 0; k < n_st; k++) {
            const struct barge_sched_strategy *st = &p->strategies[k];
            if (st->type == BARGE_SCHED_BINPACK)
                key[k] = st->field == BARGE_SCHED_FIELD_CPU ? in->cpu : in->memory;
            else if (st->field == BARGE_SCHED_FIELD_INSTANCE)
                key[k] = barge_sched_instance_group_count(in, r->group);
            else
                key[k] = value_count(s, i, st->attribute, r->group);
        }
        if (i == chosen) {
            chosen_fits = true;
            memcpy(mine, key, sizeof(key));
        }
        int cmp = 0;
        for (size_t k = 0; have && k < n_st && !cmp; k++)
            cmp = key[k] < best[k] ? -1 : key[k] > best[k];
        if (!have || cmp < 0)
            memcpy(best, key, sizeof(key));
        have = true;
    }
    *any_fits = have;
    if (!chosen_fits)
        return -1;
    return memcmp(mine, best, n_st * sizeof(int64_t)) == 0 ? 1 : 0;
}

static void test_against_reference(void **state)
{
    static const char *const chains[][4] = {
        {NULL},
        {"spread", "attribute:ecs.availability-zone", NULL},
        {"spread", "attribute:ecs.availability-zone", "spread", "instanceId"},
        {"spread", "attribute:ecs.availability-zone", "binpack", "memory"},
        {"binpack", "memory", "spread", "instanceId"},
        {"binpack", "cpu", NULL},
        {"spread", "instanceId", "binpack", "cpu"},
        {"spread", "attribute:rack", "binpack", "memory"},
        {"spread", "attribute:ecs.availability-zone", "spread", "attribute:rack"},
    };
    static const char *const exprs[] = {
        NULL,
        "attribute:rack != r1",
        "attribute:ecs.instance-type == t2.small or runningTasksCount < 3",
        "not task:group == service:g1",
    };
    uint64_t x = 12345;
    for (int round = 0; round < 60; round++) {
        struct barge_sched_snapshot *s = barge_sched_snapshot_new();
        int n = 5 + (int)(lcg(&x) % 60);
        for (int i = 0; i < n; i++) {
            char id[16], az[8], rack[8];
            snprintf(id, sizeof(id), "%si%d", lcg(&x) % 3 ? "" : "big", i);
            snprintf(az, sizeof(az), "az%d", (int)(lcg(&x) % 4));
            snprintf(rack, sizeof(rack), "r%d", (int)(lcg(&x) % 3));
            struct barge_sched_attr attrs[] = {
                {"ecs.availability-zone", az},
                {"ecs.instance-type", id[0] == 'b' ? "m5.large" : "t2.small"},
                {"rack", rack},
            };
            struct barge_sched_instance in = {
                .id = id,
                .attrs = attrs,
                .n_attrs = lcg(&x) % 10 ? 3 : 2,
                .active = lcg(&x) % 10 != 0,
                .agent_connected = lcg(&x) % 10 != 0,
                .cpu = 256 * (int64_t)(1 + lcg(&x) % 16),
                .memory = 128 * (int64_t)(1 + lcg(&x) % 32),
            };
            barge_sched_snapshot_add(s, &in);
        }
        const char *const *chain = chains[round % BARGE_ARRAY_SIZE(chains)];
        struct barge_sched_policy p;
        barge_sched_policy_init(&p);
        for (int k = 0; k < 4 && chain[k]; k += 2)
            strategy(&p, chain[k], chain[k + 1]);
        const char *expr = exprs[(round / 3) % BARGE_ARRAY_SIZE(exprs)];
        if (expr)
            constraint(&p, "memberOf", expr);
        if (round % 5 == 4)
            constraint(&p, "distinctInstance", NULL);
        for (int t = 0; t < 150; t++) {
            char group[16];
            snprintf(group, sizeof(group), "service:g%d", (int)(lcg(&x) % 3));
            struct barge_sched_request r =
                request(64 * (int64_t)(lcg(&x) % 8), 32 * (int64_t)(lcg(&x) % 8), group, &p);
            if (t == 75) { /* instances may join mid-way */
                struct barge_sched_attr attrs[] = {{"ecs.availability-zone", "az9"}};
                struct barge_sched_instance in = {.id = "late",
                                                  .attrs = attrs,
                                                  .n_attrs = 1,
                                                  .active = true,
                                                  .agent_connected = true,
                                                  .cpu = 4096,
                                                  .memory = 4096};
                barge_sched_snapshot_add(s, &in);
            }
            ssize_t i = barge_sched_place(s, &r, lcg(&x), NULL);
            bool any;
            if (i < 0) {
                reference_rank(s, &r, SIZE_MAX, &any);
                if (any)
                    fail_msg("round %d task %d: nothing placed but something fits", round, t);
                continue;
            }
            /* the reference judges the state before the placement */
            barge_sched_snapshot_remove_task(s, (size_t)i, group, r.cpu, r.memory, NULL, 0, false);
            int rank = reference_rank(s, &r, (size_t)i, &any);
            if (rank != 1)
                fail_msg("round %d task %d: chose %s which %s", round, t,
                         barge_sched_snapshot_get(s, (size_t)i)->id,
                         rank < 0 ? "does not fit" : "is not among the best");
            barge_sched_commit(s, (size_t)i, &r);
            if (lcg(&x) % 7 == 0) /* and tasks stop */
                barge_sched_snapshot_remove_task(s, (size_t)i, group, r.cpu, r.memory, NULL, 0,
                                                 false);
        }
        barge_sched_policy_release(&p);
        barge_sched_snapshot_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_and_reasons), cmocka_unit_test(test_closest_reason),
        cmocka_unit_test(test_random),          cmocka_unit_test(test_spread_instance),
        cmocka_unit_test(test_spread_az),       cmocka_unit_test(test_binpack),
        cmocka_unit_test(test_chain),           cmocka_unit_test(test_distinct_instance),
        cmocka_unit_test(test_member_of),       cmocka_unit_test(test_ports),
        cmocka_unit_test(test_start_task_path), cmocka_unit_test(test_scale_in),
        cmocka_unit_test(test_policy_errors),   cmocka_unit_test(test_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
