/* Who may do what. Two kinds of access key exist: long-term keys (the admin
 * key barged creates, "AKIA..."), which may call everything, and per-task
 * execution credentials ("ASIA...", with a session token), which barged
 * issues to the agent that runs a task so that it can fetch exactly the
 * secrets and environment files the task's definition names, and nothing
 * else. The latter are ECS's "task execution role" in small: the policy is
 * derived from the task definition when the credentials are issued, they
 * expire after an hour, and they stop working as soon as the task is STOPPED.
 *
 * The agent asks for them over its channel (POST /agent/credentials with its
 * bearer token, for a task assigned to it) and then calls the public SSM,
 * Secrets Manager and S3 APIs with SigV4 like any client: the same code paths,
 * the same checks, the same errors as for a user. */
#ifndef BARGE_API_ACCESS_H
#define BARGE_API_ACCESS_H

#include <jansson.h>

#include "api/server.h"
#include "common/sigv4.h"
#include "http/http.h"

/* Access key ids of per-task credentials start with this (as AWS's
 * temporary credentials do). */
#define BARGE_TASK_KEY_PREFIX "ASIA"
/* Store kind of access keys (shared with server.c). */
#define BARGE_KIND_ACCESS_KEY "accesskey"

/* Verifies req's SigV4 signature for signing_name ("ssm", "s3", ...) with
 * S3's canonicalisation rules when s3 is true. Services that exist in every
 * region (SSM, Secrets Manager, S3) accept any region in the credential scope
 * and report it in who->region; others only barged's region. Per-task
 * credentials are refused once expired or once their task stopped
 * (ExpiredTokenException) and for any other service (AccessDeniedException). */
int barge_api_authenticate_for(struct barge_http_req *req, const char *signing_name, bool s3,
                               struct barge_sigv4_identity *who, struct barge_error **err);

/* Checks that the caller may perform action ("ssm:GetParameters") on
 * resource (an ARN). The admin key and its sessions may do everything;
 * per-task credentials only what their policy lists; IAM users' keys and
 * sessions, and sessions of assumed roles, what their identity policies
 * allow. Denial is an AccessDeniedException worded as IAM words it. */
int barge_api_authorize(struct barge_server *srv, const struct barge_sigv4_identity *who,
                        const char *action, const char *resource, struct barge_error **err);

/* True when who holds per-task credentials. */
bool barge_api_is_task_key(const struct barge_sigv4_identity *who);

/* The caller's ARN as AWS reports it in LastModifiedUser and similar fields
 * ("arn:aws:iam::ACCOUNT:user/admin"); caller frees. */
char *barge_api_caller_arn(struct barge_server *srv, const struct barge_sigv4_identity *who);

/* The policy per-task credentials get for task (a stored task document) of
 * taskdef: read-only access to each secret (secrets and
 * logConfiguration.secretOptions) and each environment file (definition and
 * overrides). A JSON array of {action, resource} fnmatch patterns; new
 * reference. */
json_t *barge_api_task_policy(const struct barge_server *srv, const json_t *task,
                              const json_t *taskdef);

/* Serves POST /agent/credentials for the agent of instance_key
 * ("<cluster>/<instance id>"): in is {taskArn}; *out is {accessKeyId,
 * secretAccessKey, sessionToken, expiration, region}. The task must be
 * assigned to that instance and not STOPPED. With {taskArn, taskRole: true}
 * they are the task role's instead (its overrides' or definition's
 * taskRoleArn, whose trust policy must allow ecs-tasks.amazonaws.com): an STS
 * session of the role named after the task, bound to it; *out is then
 * {roleArn, accessKeyId, secretAccessKey, sessionToken, expiration}. */
int barge_api_task_credentials_issue(struct barge_server *srv, const char *instance_key,
                                     const json_t *in, json_t **out, struct barge_error **err);

/* The secret of the stored access key doc of akid, kept sealed under the
 * master key ("sealedSecret"; a plain "secretAccessKey" only in a store an
 * older barged wrote, until the next start seals it). Caller wipes and frees
 * (barge_crypto_free_str); NULL when it cannot be opened (logged). */
char *barge_api_key_secret(const struct barge_server *srv, const char *akid, const json_t *doc);

/* The stored form of akid's secret: sealed under the master key, bound to
 * akid ("sealedSecret" of its doc). Caller frees. */
char *barge_api_key_seal(const struct barge_server *srv, const char *akid, const char *secret);

/* Seals every access key secret an older barged stored in plain text, all in
 * one transaction (nothing is written when there is none). Run at start,
 * after the master key is known. */
int barge_api_keys_seal_plaintext(struct barge_server *srv, struct barge_error **err);

/* Who signed the request: *out is {arn, userId, session, roleArn} (new
 * reference), session telling whether the key is temporary STS credentials,
 * roleArn present for those of an assumed role. */
int barge_api_caller(struct barge_server *srv, const struct barge_sigv4_identity *who, json_t **out,
                     struct barge_error **err);

/* Issues STS temporary credentials ("ASIA..." with a session token) for the
 * principal arn/user_id (of the assumed role role_arn, or NULL), valid for duration seconds, by the
 * caller issuer (NULL: ECS's service principal, for a task role). With task_key (a task's store
 * key) they also stop working once that task is STOPPED. The secret is stored sealed under the
 * master key. *out is STS's Credentials {AccessKeyId, SecretAccessKey, SessionToken, Expiration}.
 * They are verified on every service like any key and act with the identity policies of the role
 * (or of the issuer, an IAM user or the admin key). */
int barge_api_session_issue(struct barge_server *srv, const struct barge_sigv4_identity *issuer,
                            const char *arn, const char *user_id, const char *role_arn,
                            const char *task_key, double duration, json_t **out,
                            struct barge_error **err);

/* Creates a long-term access key ("AKIA...") for the stored IAM user doc in
 * tx (the caller commits), its secret sealed under the master key. *out is
 * IAM's AccessKey {UserName, AccessKeyId, Status, SecretAccessKey,
 * CreateDate}, the only place the secret is ever shown; new reference. */
int barge_api_user_key_create(struct barge_server *srv, struct barge_tx *tx, const json_t *user,
                              json_t **out, struct barge_error **err);

/* Removes per-task credentials that expired or whose task stopped, and STS
 * sessions a day after they expired. */
int barge_api_task_credentials_reap(struct barge_server *srv, struct barge_error **err);

#endif
