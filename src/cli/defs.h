/* Definitions and JSON for the CLI: API-style JSON output, the ECS model used
 * to check and project definition files, the normalisation that makes a
 * local definition and a described remote one comparable, and the unified
 * diff between them. Pure functions over jansson values: no I/O, so the unit
 * tests cover them directly. */
#ifndef BARGE_CLI_DEFS_H
#define BARGE_CLI_DEFS_H

#include <jansson.h>

#include "common/error.h"

/* ---- API-style JSON ---- */

/* A deep copy of v without nulls and empty arrays (at any depth, inside
 * objects). New reference. */
json_t *barge_cli_json_prune(const json_t *v);
/* v pruned, keys sorted at every level, 2-space indent, trailing newline:
 * the form every JSON file and JSON output of the CLI takes. The caller
 * frees. */
char *barge_cli_json_api_dump(const json_t *v);

/* ---- the ECS model ---- */

/* Called for each member a definition has that the model does not know;
 * path is "containerDefinitions[0].foo". */
typedef void (*barge_cli_warn_fn)(void *ud, const char *path);

/* Conforms value (modified in place) to the structure shape `shape` of the
 * ECS model: keys written Go-style with an upper-case first letter
 * ("ContainerDefinitions") are renamed to the model's camelCase, members of
 * `readonly_shape` (e.g. TaskDefinition's revision and status when shape is
 * RegisterTaskDefinitionRequest) are dropped silently, and members neither
 * knows are dropped and reported through warn. Map values (dockerLabels,
 * options) keep their keys verbatim. readonly_shape may be NULL. */
void barge_cli_model_conform(json_t *value, const char *shape, const char *readonly_shape,
                             barge_cli_warn_fn warn, void *ud);
/* A new object with only the top-level members of value that `shape` has
 * (e.g. a described service projected onto CreateServiceRequest). */
json_t *barge_cli_model_project(const json_t *value, const char *shape);

/* ---- definitions ---- */

/* Turns a parsed task definition file into RegisterTaskDefinition input: the
 * describe-task-definition output shape ({"taskDefinition": {...}, "tags":
 * [...]}) is unwrapped, read-only fields are dropped, unknown ones reported,
 * empty tags removed. Takes a reference to doc; returns a new one. */
json_t *barge_cli_taskdef_from_file(json_t *doc, barge_cli_warn_fn warn, void *ud);
/* Conforms a service definition (describe-services element shape, or
 * CreateService input) in place. */
void barge_cli_servicedef_conform(json_t *doc, barge_cli_warn_fn warn, void *ud);

/* The normalised forms diff compares (new references): the task definition
 * projected onto RegisterTaskDefinition input, containers sorted by name,
 * their environment/secrets by name, port mappings, mount points and
 * volumesFrom by their JSON text, ECS defaults filled in (essential true,
 * protocol tcp, hostPort = containerPort under awsvpc), cpu "0.25 vCPU" ->
 * "256" and memory "1 GB" -> "1024"; the service projected onto the
 * UpdateService attributes (plus tags) with ECS's defaults filled in. When
 * the local service has no desiredCount, pass it as `local` so that the
 * remote one is blanked too. */
json_t *barge_cli_taskdef_for_diff(const json_t *td);
json_t *barge_cli_service_for_diff(const json_t *svc, const json_t *local);

/* Unified diff of two texts line by line (Myers' algorithm) with `context`
 * lines around changes, headed "--- from" / "+++ to". Returns NULL when the
 * texts are equal; otherwise a string the caller frees. */
char *barge_cli_diff_unified(const char *a, const char *b, const char *from, const char *to,
                             int context);

#endif
