/* ARN building and parsing (see arn.h). */
#include "common/arn.h"

#include <string.h>

char *barge_arn_make(const char *service, const char *region, const char *account,
                     const char *resource)
{
    return barge_xasprintf("arn:aws:%s:%s:%s:%s", service, region, account, resource);
}

int barge_arn_parse(const char *s, struct barge_arn *out)
{
    memset(out, 0, sizeof(*out));
    if (!barge_str_has_prefix(s, "arn:"))
        return -1;
    const char *p = s + 4;
    char **fields[] = {&out->partition, &out->service, &out->region, &out->account};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(fields); i++) {
        const char *colon = strchr(p, ':');
        if (!colon) {
            barge_arn_release(out);
            return -1;
        }
        *fields[i] = barge_xstrndup(p, (size_t)(colon - p));
        p = colon + 1;
    }
    if (*out->partition == '\0' || *out->service == '\0' || *p == '\0') {
        barge_arn_release(out);
        return -1;
    }
    out->resource = barge_xstrdup(p);
    return 0;
}

void barge_arn_release(struct barge_arn *arn)
{
    free(arn->partition);
    free(arn->service);
    free(arn->region);
    free(arn->account);
    free(arn->resource);
    memset(arn, 0, sizeof(*arn));
}
