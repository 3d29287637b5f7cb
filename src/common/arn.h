/* Amazon Resource Names: building them in the exact forms ECS uses and taking
 * them apart again. */
#ifndef BARGE_COMMON_ARN_H
#define BARGE_COMMON_ARN_H

#include "common/util.h"

struct barge_arn {
    char *partition;
    char *service;
    char *region;
    char *account;
    char *resource; /* everything after the fifth ':', e.g. "cluster/default" */
};

/* "arn:aws:<service>:<region>:<account>:<resource>"; the caller frees it. */
char *barge_arn_make(const char *service, const char *region, const char *account,
                     const char *resource);
/* Splits s into out (strings owned by out; release with barge_arn_release).
 * Returns 0, or -1 when s is not an ARN. */
int barge_arn_parse(const char *s, struct barge_arn *out);
void barge_arn_release(struct barge_arn *arn);

#endif
