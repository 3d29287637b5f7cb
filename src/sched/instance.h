/* The scheduler's view of one container instance: what the cluster query
 * language can ask about it and what placement needs to know (remaining
 * resources, taken host ports, the task groups already on it). Plain data,
 * shared by the query language (cql.h) and placement (place.h); the store
 * layer fills it from instance documents and their task index. */
#ifndef BARGE_SCHED_INSTANCE_H
#define BARGE_SCHED_INSTANCE_H

#include <stdint.h>

#include "common/util.h"

struct barge_sched_attr {
    const char *name;
    const char *value; /* NULL: the attribute is set without a value */
};

/* How many tasks (not STOPPED) of one task group are on an instance. */
struct barge_sched_group_count {
    const char *group; /* "service:web", "family:batch", or a RunTask group */
    uint32_t count;
};

/* All pointers are borrowed: whoever fills the struct keeps them alive while
 * it is used. Inside a struct barge_sched_snapshot they point into memory the
 * snapshot owns. */
struct barge_sched_instance {
    const char *id;  /* the id at the end of the containerInstanceArn */
    const char *arn; /* containerInstanceArn */
    const char *ec2_instance_id;
    const char *agent_version;
    struct barge_sched_attr *attrs;
    size_t n_attrs;
    double registered_at; /* seconds since the epoch */
    bool active;          /* status ACTIVE: DRAINING and INACTIVE take no new tasks */
    bool agent_connected;
    int64_t cpu;     /* remaining CPU units */
    int64_t memory;  /* remaining MiB */
    uint16_t *ports; /* host ports taken: reserved ones and those of its tasks */
    size_t n_ports;
    uint32_t running_tasks; /* runningTasksCount */
    uint32_t pending_tasks;
    struct barge_sched_group_count *groups; /* one entry per group, count > 0 */
    size_t n_groups;
};

/* The value of attribute name; *present (may be NULL) says whether the
 * instance has it at all (a valueless attribute returns NULL, present). */
const char *barge_sched_instance_attr(const struct barge_sched_instance *in, const char *name,
                                      bool *present);

/* Tasks of group on the instance (0 when none). */
uint32_t barge_sched_instance_group_count(const struct barge_sched_instance *in, const char *group);

#endif
