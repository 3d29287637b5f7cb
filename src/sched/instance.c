/* Lookups on struct barge_sched_instance (see instance.h). Linear: an
 * instance has a handful of attributes and task groups. */
#include "sched/instance.h"

#include <string.h>

const char *barge_sched_instance_attr(const struct barge_sched_instance *in, const char *name,
                                      bool *present)
{
    for (size_t i = 0; i < in->n_attrs; i++) {
        if (strcmp(in->attrs[i].name, name) == 0) {
            if (present)
                *present = true;
            return in->attrs[i].value;
        }
    }
    if (present)
        *present = false;
    return NULL;
}

uint32_t barge_sched_instance_group_count(const struct barge_sched_instance *in, const char *group)
{
    for (size_t i = 0; i < in->n_groups; i++)
        if (strcmp(in->groups[i].group, group) == 0)
            return in->groups[i].count;
    return 0;
}
