/* Parsing of secret references and environment file ARNs (see secretref.h).
 * The Secrets Manager suffix rules follow the ECS agent: the resource split at
 * ':' has either 2 fields (secret:ID, the whole secret) or exactly 5
 * (secret:ID:JSON_KEY:VERSION_STAGE:VERSION_ID, empty fields unset). */
#include "common/secretref.h"

#include <string.h>

#include "common/arn.h"

void barge_secret_ref_release(struct barge_secret_ref *ref)
{
    free(ref->region);
    free(ref->request);
    free(ref->resource);
    free(ref->json_key);
    free(ref->version_stage);
    free(ref->version_id);
    memset(ref, 0, sizeof(*ref));
}

char *barge_ssm_parameter_arn(const char *region, const char *account, const char *name)
{
    return barge_xasprintf("arn:aws:ssm:%s:%s:parameter%s%s", region, account,
                           name[0] == '/' ? "" : "/", name);
}

static bool region_ok(const char *r)
{
    return *r && strlen(r) < 64 && strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(r);
}

static char *nonempty_dup(const char *s, size_t n)
{
    return n ? barge_xstrndup(s, n) : NULL;
}

static int parse_asm(const char *value_from, const struct barge_arn *a,
                     struct barge_secret_ref *out, struct barge_error **err)
{
    /* resource = "secret:ID" or "secret:ID:KEY:STAGE:VERSION" */
    const char *fields[6];
    size_t lens[6], n = 0;
    for (const char *p = a->resource;;) {
        const char *colon = strchr(p, ':');
        if (n == 6)
            break;
        fields[n] = p;
        lens[n] = colon ? (size_t)(colon - p) : strlen(p);
        n++;
        if (!colon)
            break;
        p = colon + 1;
    }
    if ((n != 2 && n != 5) || lens[0] != 6 || strncmp(fields[0], "secret", 6) != 0 || lens[1] == 0)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "an invalid ARN format for the AWS Secrets Manager secret was "
                               "specified: '%s'",
                               value_from);
    out->provider = BARGE_SECRET_ASM;
    out->region = barge_xstrdup(a->region);
    out->resource = barge_xasprintf("arn:%s:secretsmanager:%s:%s:secret:%.*s", a->partition,
                                    a->region, a->account, (int)lens[1], fields[1]);
    out->request = barge_xstrdup(out->resource);
    if (n == 5) {
        out->json_key = nonempty_dup(fields[2], lens[2]);
        out->version_stage = nonempty_dup(fields[3], lens[3]);
        out->version_id = nonempty_dup(fields[4], lens[4]);
        if (out->version_stage && out->version_id)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "valueFrom '%s' gives both a version stage and a version id; "
                                   "give one of them",
                                   value_from);
    }
    return 0;
}

int barge_secret_ref_parse(const char *value_from, const char *task_region, const char *account,
                           struct barge_secret_ref *out, struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!value_from || !*value_from)
        return barge_error_set(err, BARGE_ERR_INVALID, "an empty valueFrom was given");
    if (barge_str_has_prefix(value_from, "arn:")) {
        struct barge_arn a;
        if (barge_arn_parse(value_from, &a) < 0)
            return barge_error_set(err, BARGE_ERR_INVALID, "valueFrom '%s' is not a valid ARN",
                                   value_from);
        int r = 0;
        if (!region_ok(a.region) || !*a.account) {
            r = barge_error_set(err, BARGE_ERR_INVALID,
                                "valueFrom '%s' must name the region and account of the "
                                "parameter or secret",
                                value_from);
        } else if (strcmp(a.service, "ssm") == 0) {
            const char *rest = a.resource + strlen("parameter/");
            if (!barge_str_has_prefix(a.resource, "parameter/") || !*rest) {
                r = barge_error_set(err, BARGE_ERR_INVALID,
                                    "valueFrom '%s' is not an SSM parameter ARN "
                                    "(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)",
                                    value_from);
            } else {
                out->provider = BARGE_SECRET_SSM;
                out->region = barge_xstrdup(a.region);
                out->request = barge_xstrdup(value_from);
                size_t n = strcspn(rest, ":");
                out->resource = barge_xasprintf("arn:%s:ssm:%s:%s:parameter/%.*s", a.partition,
                                                a.region, a.account, (int)n, rest);
            }
        } else if (strcmp(a.service, "secretsmanager") == 0) {
            r = parse_asm(value_from, &a, out, err);
        } else {
            r = barge_error_set(err, BARGE_ERR_INVALID,
                                "valueFrom '%s' must be an SSM parameter or a Secrets Manager "
                                "secret",
                                value_from);
        }
        barge_arn_release(&a);
        if (r < 0)
            barge_secret_ref_release(out);
        return r;
    }
    /* A bare parameter name, optionally with a ":version" or ":label"
     * selector: SSM in the task's own region. */
    size_t n = strcspn(value_from, ":");
    if (n == 0 || strspn(value_from, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_.-/") != n)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "valueFrom '%s' is neither a parameter name nor an ARN of a "
                               "parameter or secret",
                               value_from);
    if (strchr(value_from, '/') && value_from[0] != '/')
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "valueFrom '%s': a hierarchical parameter name must begin with "
                               "'/'",
                               value_from);
    out->provider = BARGE_SECRET_SSM;
    out->region = barge_xstrdup(task_region);
    out->request = barge_xstrdup(value_from);
    _cleanup_free_ char *name = barge_xstrndup(value_from, n);
    out->resource = barge_ssm_parameter_arn(task_region, account, name);
    return 0;
}

int barge_s3_object_arn_parse(const char *arn, char **bucket, char **key, struct barge_error **err)
{
    *bucket = *key = NULL;
    const char *prefix = "arn:aws:s3:::";
    const char *p = barge_str_has_prefix(arn, prefix) ? arn + strlen(prefix) : NULL;
    const char *slash = p ? strchr(p, '/') : NULL;
    if (!slash || slash == p || !slash[1])
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "'%s' is not an S3 object ARN (arn:aws:s3:::bucket/key)",
                               arn ? arn : "");
    *bucket = barge_xstrndup(p, (size_t)(slash - p));
    *key = barge_xstrdup(slash + 1);
    return 0;
}
