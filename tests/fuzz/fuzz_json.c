/* Fuzzes the input path of the JSON 1.1 APIs (src/api/json11.c): a request
 * body parsed by jansson and validated against the operation's input shape
 * in the botocore model (src/api/model.c), and, for ECS's
 * RegisterTaskDefinition, the task definition rules that run next
 * (src/api/taskdef_check.c). The input is "service operation" on the first
 * line (for instance "ecs RegisterTaskDefinition") and the body after it. */
#include <stdio.h>

#include "api/taskdef_check.h"
#include "models.h"

static const char *const services[] = {
    "ecs", "ecr", "logs", "ssm", "secretsmanager", "application-autoscaling", "cloudwatch"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned pick = size ? data[0] : 0;
    char *line = fuzz_line(&data, &size);
    char *sp = strchr(line, ' ');
    const char *opname = "";
    if (sp) {
        *sp = '\0';
        opname = sp + 1;
    }
    const struct barge_model *m = barge_model_get(line);
    if (!m)
        m = barge_model_get(services[pick % (sizeof(services) / sizeof(services[0]))]);
    const char *op = fuzz_pick_operation(m, opname, pick);

    json_error_t jerr;
    struct barge_error *err = NULL;
    /* what json11.c does: an empty body is {} */
    json_t *in = size == 0 ? json_object() : json_loadb((const char *)data, size, 0, &jerr);
    if (!in)
        goto out;
    if (barge_model_validate_input(m, op, in, &err) < 0) {
        if (!err || !err->message)
            abort();
        barge_error_free(err);
        err = NULL;
    } else if (strcmp(op, "RegisterTaskDefinition") == 0 &&
               strcmp(barge_model_target_prefix(m), "AmazonEC2ContainerServiceV20141113") == 0) {
        json_t *td = NULL;
        if (barge_taskdef_check(in, &td, &err) == 0)
            json_decref(td);
        else if (!err || !err->message)
            abort();
        barge_error_free(err);
    }
    json_decref(in);
out:
    free(line);
    return 0;
}
