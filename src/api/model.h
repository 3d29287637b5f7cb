/* The API models: botocore's service shapes (data/models/<service>.json,
 * embedded in the binary) loaded once, used to validate every request's input
 * before a handler sees it. */
#ifndef BARGE_API_MODEL_H
#define BARGE_API_MODEL_H

#include <jansson.h>

#include "common/error.h"

struct barge_model;

/* The model of a service by its file name ("ecs", "ssm", "secretsmanager",
 * "logs", "ecr", "application-autoscaling", "cloudwatch"), parsed on first use
 * (thread-safe); NULL when there is no such model. Lives for the process. */
const struct barge_model *barge_model_get(const char *service);

/* metadata.targetPrefix ("AmazonEC2ContainerServiceV20141113") and
 * metadata.signingName (or endpointPrefix) of the model; borrowed. */
const char *barge_model_target_prefix(const struct barge_model *m);
const char *barge_model_signing_name(const struct barge_model *m);
bool barge_model_has_operation(const struct barge_model *m, const char *operation);
/* The model's JSON as data/models/<service>.json has it (metadata,
 * operations, shapes), for protocol codecs that walk shapes themselves;
 * borrowed, lives for the process. */
const json_t *barge_model_raw(const struct barge_model *m);

/* Checks input (a JSON object, the request body) against the input shape of
 * operation: JSON types per shape type (structure, list, map, string, integer,
 * long, float, double, boolean, timestamp, blob), required members, enums,
 * min/max (length for strings/lists/maps, value for numbers), recursively.
 * Members the model does not know are ignored.
 * A wrong JSON type fails with BARGE_ERR_SERIALIZATION; a broken constraint with
 * BARGE_ERR_INVALID, worded as AWS words it:
 *   "1 validation error detected: Value 'xyz' at 'containerDefinitions.1.member.networkMode'
 *    failed to satisfy constraint: Member must satisfy enum value set: [bridge, host]"
 * or, for a missing required member, "... Value null at 'family' failed to
 * satisfy constraint: Member must not be null". Several violations are counted
 * and joined with "; " as AWS does. */
int barge_model_validate_input(const struct barge_model *m, const char *operation,
                               const json_t *input, struct barge_error **err);

#endif
