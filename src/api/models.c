/* The botocore-derived API models (data/models/<service>.json, made by
 * scripts/gen-models) embedded into the binary with .incbin, so that barged
 * needs no data files at run time and a model can never be out of step with
 * the code that validates against it. The Makefile compiles from the repository
 * root and lists the JSON files as dependencies of this object, which is why the
 * paths below are relative to the root. Each blob gets a trailing NUL (jansson
 * does not need it, but a debugger or a strstr does) and a length symbol. */
#include "api/models.h"

#include <stdint.h>
#include <string.h>

#include "common/embed.h"

/* One model: `sym` is the NUL-terminated text, `sym_len` its length. */
#define EMBED(sym, file) BARGE_EMBED(sym, file)

__asm__(EMBED("barge_model_ecs_json", "data/models/ecs.json"));
__asm__(EMBED("barge_model_ssm_json", "data/models/ssm.json"));
__asm__(EMBED("barge_model_secretsmanager_json", "data/models/secretsmanager.json"));
__asm__(EMBED("barge_model_logs_json", "data/models/logs.json"));
__asm__(EMBED("barge_model_ecr_json", "data/models/ecr.json"));
__asm__(EMBED("barge_model_application_autoscaling_json",
              "data/models/application-autoscaling.json"));
__asm__(EMBED("barge_model_cloudwatch_json", "data/models/cloudwatch.json"));
__asm__(EMBED("barge_model_elbv2_json", "data/models/elbv2.json"));
__asm__(EMBED("barge_model_sts_json", "data/models/sts.json"));
__asm__(EMBED("barge_model_iam_json", "data/models/iam.json"));
__asm__(EMBED("barge_model_servicediscovery_json", "data/models/servicediscovery.json"));
__asm__(EMBED("barge_model_cloudformation_json", "data/models/cloudformation.json"));
__asm__(EMBED("barge_model_ec2_json", "data/models/ec2.json"));
__asm__(EMBED("barge_model_acm_json", "data/models/acm.json"));

extern const char barge_model_ecs_json[];
extern const uint64_t barge_model_ecs_json_len;
extern const char barge_model_ssm_json[];
extern const uint64_t barge_model_ssm_json_len;
extern const char barge_model_secretsmanager_json[];
extern const uint64_t barge_model_secretsmanager_json_len;
extern const char barge_model_logs_json[];
extern const uint64_t barge_model_logs_json_len;
extern const char barge_model_ecr_json[];
extern const uint64_t barge_model_ecr_json_len;
extern const char barge_model_application_autoscaling_json[];
extern const uint64_t barge_model_application_autoscaling_json_len;
extern const char barge_model_cloudwatch_json[];
extern const uint64_t barge_model_cloudwatch_json_len;
extern const char barge_model_elbv2_json[];
extern const uint64_t barge_model_elbv2_json_len;
extern const char barge_model_sts_json[];
extern const uint64_t barge_model_sts_json_len;
extern const char barge_model_iam_json[];
extern const uint64_t barge_model_iam_json_len;
extern const char barge_model_servicediscovery_json[];
extern const uint64_t barge_model_servicediscovery_json_len;
extern const char barge_model_cloudformation_json[];
extern const uint64_t barge_model_cloudformation_json_len;
extern const char barge_model_ec2_json[];
extern const uint64_t barge_model_ec2_json_len;
extern const char barge_model_acm_json[];
extern const uint64_t barge_model_acm_json_len;

static const struct {
    const char *service;
    const char *text;
    const uint64_t *len;
} embedded[] = {
    {"ecs", barge_model_ecs_json, &barge_model_ecs_json_len},
    {"ssm", barge_model_ssm_json, &barge_model_ssm_json_len},
    {"secretsmanager", barge_model_secretsmanager_json, &barge_model_secretsmanager_json_len},
    {"logs", barge_model_logs_json, &barge_model_logs_json_len},
    {"ecr", barge_model_ecr_json, &barge_model_ecr_json_len},
    {"application-autoscaling", barge_model_application_autoscaling_json,
     &barge_model_application_autoscaling_json_len},
    {"cloudwatch", barge_model_cloudwatch_json, &barge_model_cloudwatch_json_len},
    {"elbv2", barge_model_elbv2_json, &barge_model_elbv2_json_len},
    {"sts", barge_model_sts_json, &barge_model_sts_json_len},
    {"iam", barge_model_iam_json, &barge_model_iam_json_len},
    {"servicediscovery", barge_model_servicediscovery_json, &barge_model_servicediscovery_json_len},
    {"cloudformation", barge_model_cloudformation_json, &barge_model_cloudformation_json_len},
    {"ec2", barge_model_ec2_json, &barge_model_ec2_json_len},
    {"acm", barge_model_acm_json, &barge_model_acm_json_len},
};

const char *barge_model_embedded_get(const char *service, size_t *len)
{
    for (size_t i = 0; service && i < sizeof(embedded) / sizeof(embedded[0]); i++) {
        if (strcmp(embedded[i].service, service) == 0) {
            if (len)
                *len = (size_t)*embedded[i].len;
            return embedded[i].text;
        }
    }
    return NULL;
}
