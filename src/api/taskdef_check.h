/* Task definition rules: what RegisterTaskDefinition accepts beyond the
 * model's shapes (ECS's semantic checks) and the normal form ECS stores and
 * returns (defaults filled in, cpu/memory units converted). Pure: no store,
 * no I/O, so it is unit-tested directly. */
#ifndef BARGE_API_TASKDEF_CHECK_H
#define BARGE_API_TASKDEF_CHECK_H

#include <jansson.h>

#include "common/error.h"

/* Checks a RegisterTaskDefinition input and returns a new object holding the
 * TaskDefinition shape's members that come from the input, normalised
 * (without taskDefinitionArn, revision, status, registeredAt/By, which the
 * caller adds). Errors are ClientException (or InvalidParameterException)
 * with ECS's wording and the offending container and value named. */
int barge_taskdef_check(const json_t *input, json_t **out, struct barge_error **err);

/* ECS's limit on a task definition: its JSON (the request without its tags)
 * may take 64 KiB. */
#define BARGE_TASKDEF_MAX_BYTES 65536

/* Parses task-level cpu ("1024", "1 vCPU", "0.25 vcpu") into CPU units or
 * memory ("2048", "2GB", "2 GB") into MiB. Returns -1 when malformed. */
long long barge_taskdef_cpu_units(const char *s);
long long barge_taskdef_memory_mib(const char *s);

/* True when cpu units / memory MiB is one of Fargate's task sizes. */
bool barge_taskdef_fargate_size_valid(long long cpu, long long memory);

#endif
