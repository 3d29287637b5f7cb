/* YAML for the CLI: config files, docker-compose files and ecs-params.yml are
 * read into jansson values with libyaml; `render config` and `init` write
 * YAML back with libyaml's emitter. */
#ifndef BARGE_CLI_YAML_H
#define BARGE_CLI_YAML_H

#include <jansson.h>

#include "common/error.h"

/* Parses the first document of text (name is used in messages). Plain
 * scalars resolve by YAML 1.2's core schema (null, true/false, integers in
 * decimal, 0o octal and 0x hex, floats, .inf/.nan); quoted scalars are
 * strings; anchors, aliases and merge keys ("<<") are honoured; an empty
 * document is null. *out is a new reference. Errors name the line. */
int barge_cli_yaml_parse(const char *text, size_t len, const char *name, json_t **out,
                         struct barge_error **err);

/* Writes doc as block-style YAML, object keys in their order; strings that
 * would read back as another type are quoted. The caller frees. */
char *barge_cli_yaml_emit(const json_t *doc);

#endif
