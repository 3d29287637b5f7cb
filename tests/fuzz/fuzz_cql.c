/* Fuzzes the cluster query language (src/sched/cql.c), the expressions of
 * memberOf placement constraints and ListContainerInstances' filter: the
 * whole input is an expression; when it compiles it is evaluated against a
 * few instances (with and without attributes, tasks, groups). The first line
 * and the rest are also compared as versions, which must be antisymmetric. */
#include <stdio.h>

#include "fuzz.h"
#include "sched/cql.h"

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_rest(data, size);
    struct barge_cql *q = NULL;
    struct barge_error *err = NULL;
    if (barge_cql_parse(text, &q, &err) == 0) {
        struct barge_sched_attr attrs[] = {
            {"ecs.instance-type", "t2.micro"},
            {"ecs.availability-zone", "us-east-1a"},
            {"ecs.os-type", "linux"},
            {"stack", NULL},
            {"version", "1.10.2"},
        };
        struct barge_sched_group_count groups[] = {{"service:web", 2}, {"family:batch", 1}};
        struct barge_sched_instance instances[] = {
            {.id = "i1",
             .arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/c/i1",
             .ec2_instance_id = "i-0123456789abcdef0",
             .agent_version = "1.80.0",
             .attrs = attrs,
             .n_attrs = sizeof(attrs) / sizeof(attrs[0]),
             .registered_at = 1715949296.5,
             .active = true,
             .agent_connected = true,
             .running_tasks = 3,
             .groups = groups,
             .n_groups = 2},
            {.id = "i2", .arn = "", .ec2_instance_id = "", .agent_version = ""},
        };
        for (size_t i = 0; i < sizeof(instances) / sizeof(instances[0]); i++)
            barge_cql_eval(q, &instances[i]);
        barge_cql_uses_tasks(q);
        if (strcmp(barge_cql_text(q), text) != 0)
            abort();
        barge_cql_free(q);
    } else {
        if (!err || !err->message)
            abort();
        barge_error_free(err);
    }

    char *a = fuzz_line(&data, &size);
    char *b = fuzz_rest(data, size);
    int ab = barge_cql_version_cmp(a, b), ba = barge_cql_version_cmp(b, a);
    if (sign(ab) != -sign(ba)) {
        fprintf(stderr, "version_cmp('%s', '%s') = %d but the reverse is %d\n", a, b, ab, ba);
        abort();
    }
    if (barge_cql_version_cmp(a, a) != 0)
        abort();
    free(b);
    free(a);
    free(text);
    return 0;
}
