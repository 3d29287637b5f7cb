/* docker-compose import: a compose file (plus an optional ecs-params.yml, as
 * ecs-cli read it) becomes one task definition with a container per compose
 * service, and a service definition that runs it. Keys that have no ECS
 * equivalent are named in warnings rather than dropped silently. */
#ifndef BARGE_CLI_COMPOSE_H
#define BARGE_CLI_COMPOSE_H

#include <jansson.h>

#include "common/error.h"

/* Called once per warning (e.g. "service 'web': 'build' is not supported"). */
typedef void (*barge_cli_compose_warn_fn)(void *ud, const char *message);

struct barge_cli_compose_opts {
    const char *const *files; /* compose files, later ones merged over earlier ones */
    size_t n_files;
    const char *ecs_params; /* path or NULL */
    const char *project; /* project name or NULL: `name:`, $COMPOSE_PROJECT_NAME, the directory */
    barge_cli_compose_warn_fn warn;
    void *ud;
};

/* Converts. *taskdef is RegisterTaskDefinition input (family = the project
 * name); *servicedef is CreateService input without names (desiredCount from
 * deploy.replicas, placement and awsvpc configuration from ecs-params'
 * run_params); *project the project name (caller frees). ${VAR}, ${VAR:-x},
 * ${VAR-x}, ${VAR:?msg}, $VAR and $$ are interpolated from the environment
 * and the .env file next to the first compose file. */
int barge_cli_compose_convert(const struct barge_cli_compose_opts *opts, json_t **taskdef,
                              json_t **servicedef, char **project, struct barge_error **err);

/* Docker's size strings ("512m", "1g", "1.5GB", 1048576) in bytes; -1 when
 * malformed. */
long long barge_cli_compose_bytes(const json_t *v);

#endif
