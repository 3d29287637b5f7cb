/* Where a task's configuration comes from, as ECS spells it: the valueFrom of
 * a container's `secrets` (and of logConfiguration.secretOptions) and the S3
 * object ARN of an `environmentFiles` entry. One parser serves
 * RegisterTaskDefinition's checks, the per-task credential policy barged
 * derives from a task definition and the agent that fetches the values, so
 * all three agree on what a reference means.
 *
 * valueFrom forms (ECS developer guide, "secrets-envvar-*"):
 *   NAME or /path/NAME                 SSM parameter in the task's region
 *   arn:aws:ssm:REGION:ACCT:parameter/NAME   SSM parameter in any region
 *   arn:aws:secretsmanager:REGION:ACCT:secret:ID[:JSON_KEY:VERSION_STAGE:VERSION_ID]
 * A bare name always means the task's region, so a parameter that lives in
 * another region can only be named by its ARN. */
#ifndef BARGE_COMMON_SECRETREF_H
#define BARGE_COMMON_SECRETREF_H

#include "common/error.h"

enum barge_secret_provider {
    BARGE_SECRET_SSM,
    BARGE_SECRET_ASM, /* Secrets Manager */
};

struct barge_secret_ref {
    enum barge_secret_provider provider;
    char *region;        /* the region to ask: the ARN's, or the task's for a bare name */
    char *request;       /* SSM: the Names entry (valueFrom as given); ASM: the SecretId */
    char *resource;      /* the resource's ARN for access checks: SSM parameter ARN without a
                            selector; ASM secret ARN without the suffix fields (maybe partial) */
    char *json_key;      /* ASM only; NULL when not given */
    char *version_stage; /* ASM only; NULL when not given */
    char *version_id;    /* ASM only; NULL when not given */
};

/* Parses value_from for a task in task_region of account. Fills *out (strings
 * owned by it; release with barge_secret_ref_release) or returns -1 with a
 * BARGE_ERR_INVALID error naming the valueFrom. */
int barge_secret_ref_parse(const char *value_from, const char *task_region, const char *account,
                           struct barge_secret_ref *out, struct barge_error **err);
void barge_secret_ref_release(struct barge_secret_ref *ref);

/* The SSM parameter ARN of name in region/account, with ARN's rule that the
 * leading '/' of a hierarchical name merges with "parameter/". */
char *barge_ssm_parameter_arn(const char *region, const char *account, const char *name);

/* Splits an S3 object ARN "arn:aws:s3:::BUCKET/KEY" into newly allocated
 * bucket and key; -1 with a BARGE_ERR_INVALID error when it is not one. */
int barge_s3_object_arn_parse(const char *arn, char **bucket, char **key, struct barge_error **err);

#endif
