/* A task's configuration from outside its definition, resolved by the agent
 * when the task starts, before any container is created: environment files
 * from S3 (barged's, or an S3-compatible endpoint given to the agent) and
 * secrets from SSM Parameter Store and Secrets Manager, for containers'
 * `secrets` and `logConfiguration.secretOptions`.
 *
 * The agent asks barged for the task's execution credentials (POST
 * /agent/credentials) and calls the public APIs with them; barged lets those
 * credentials read exactly what the task's definition names. The values live
 * in memory only, for as long as the containers are being created: never in
 * state.json, never in a log line, never in a report to barged. Failures name
 * the parameter, secret or object, never a value. The one place a value does
 * reach the disk is the container's OCI config.json (mode 0600), which the
 * runtime needs to start the process with its environment. */
#ifndef BARGE_AGENT_SECRETS_H
#define BARGE_AGENT_SECRETS_H

#include <jansson.h>

#include "agent/agent.h"

struct barge_task_env;

/* Resolves every environment file and secret the containers in defs (the
 * task's container definitions with overrides applied) refer to, for the task
 * task_arn. Returns 0 and *out (free with barge_task_env_free; empty when
 * nothing needed resolving), or -1 and *reason: the task's stoppedReason,
 * "ResourceInitializationError: unable to pull secrets or registry auth: ..."
 * or "ResourceInitializationError: unable to retrieve environment file ...";
 * newly allocated. */
int barge_task_env_resolve(struct barge_agent *a, const char *task_arn, const json_t *defs,
                           struct barge_task_env **out, char **reason);
/* Wipes the values and frees te; NULL is fine. */
void barge_task_env_free(struct barge_task_env *te);

/* Merges into env (an object of name → value) the variables of container
 * cname's environment files. ECS's precedence: call this after the image's
 * variables and before the definition's `environment`, which wins; among the
 * files, the first to set a variable wins. te may be NULL. */
void barge_task_env_apply_files(const struct barge_task_env *te, const char *cname, json_t *env);
/* Merges container cname's secrets into env; call it last: a secret is set
 * explicitly and wins over files. te may be NULL. */
void barge_task_env_apply_secrets(const struct barge_task_env *te, const char *cname, json_t *env);
/* The resolved logConfiguration.secretOptions of container cname as an
 * object of option name → value (borrowed; NULL when it has none), for
 * whatever ships the container's logs. */
const json_t *barge_task_env_log_options(const struct barge_task_env *te, const char *cname);

/* Overwrites the string values of obj (recursively) with zeros; for JSON that
 * held secrets, before it is released. */
void barge_json_wipe(json_t *obj);

/* Parses an environment file as ECS does: one VAR=VALUE per line, split at
 * the first '=', lines beginning with '#' and lines without '=' or with an
 * empty name skipped, no trimming and no quote processing (both are part of
 * the value), a trailing CR dropped, a later line overriding an earlier one.
 * Sets each variable in vars. Returns the number of lines that set a
 * variable. Lines holding a NUL byte are skipped (no process could receive
 * them). */
int barge_envfile_parse(const char *text, size_t len, json_t *vars);

#endif
