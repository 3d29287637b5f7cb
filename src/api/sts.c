/* STS over the query protocol: GetCallerIdentity, AssumeRole (of the roles
 * iam.c keeps) and GetSessionToken. The temporary credentials they hand out
 * are access keys like any other (access.c): every service verifies them with
 * SigV4 and their session token, and refuses them once expired. A role's
 * session has the rights of the role's identity policies, a user's those of
 * the user, the admin's all; trust policies are not evaluated yet. */
#include <ctype.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/iam.h"
#include "api/policy.h"
#include "api/server.h"
#include "common/json.h"

#define DEFAULT_ROLE_DURATION    3600
#define DEFAULT_SESSION_DURATION 43200
/* A session that assumes a role (role chaining) gets an hour at most. */
#define CHAINED_MAX_DURATION 3600

static int validation(struct barge_error **err, const char *value, const char *field,
                      const char *constraint)
{
    return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                "1 validation error detected: Value '%s' at '%s' failed to "
                                "satisfy constraint: %s",
                                value, field, constraint);
}

static int caller(struct barge_api_ctx *ctx, json_t **who, struct barge_error **err)
{
    return barge_api_caller(ctx->srv, &ctx->who, who, err);
}

static int get_caller_identity(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    (void)in;
    _cleanup_json_ json_t *who = NULL;
    if (caller(ctx, &who, err) < 0)
        return -1;
    *out = json_pack("{s:s, s:s, s:s}", "Account", ctx->srv->cfg.account_id, "Arn",
                     barge_json_str(who, "arn", ""), "UserId", barge_json_str(who, "userId", ""));
    return 0;
}

/* The role name in an IAM role ARN of barged's account, or NULL when arn is
 * not a role ARN at all (-1 with err) or names another account (0, *name
 * NULL). */
static int role_name(struct barge_api_ctx *ctx, const char *arn, const char **name,
                     struct barge_error **err)
{
    *name = NULL;
    static const char prefix[] = "arn:aws:iam::";
    const char *acct = barge_str_has_prefix(arn, prefix) ? arn + strlen(prefix) : NULL;
    const char *colon = acct ? strchr(acct, ':') : NULL;
    if (!colon || !barge_str_has_prefix(colon + 1, "role/") || !strrchr(colon, '/')[1])
        return validation(err, arn, "roleArn",
                          "Member must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)");
    if ((size_t)(colon - acct) == strlen(ctx->srv->cfg.account_id) &&
        strncmp(acct, ctx->srv->cfg.account_id, (size_t)(colon - acct)) == 0)
        *name = strrchr(colon, '/') + 1;
    return 0;
}

static bool session_name_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("+=,.@_-", *s))
            return false;
    return true;
}

static int not_authorized(struct barge_error **err, const json_t *who, const char *role_arn)
{
    return barge_error_set_type(err, BARGE_ERR_ACCESS_DENIED, "AccessDenied",
                                "User: %s is not authorized to perform: sts:AssumeRole on "
                                "resource: %s",
                                barge_json_str(who, "arn", ""), role_arn);
}

/* Whether the trust policy of role names the caller who (barge_api_caller's
 * answer). */
static bool trusted(struct barge_api_ctx *ctx, const json_t *role, const json_t *who,
                    const char *external_id)
{
    const char *role_arn = barge_json_str(who, "roleArn", NULL);
    struct barge_trust_principal p = {
        .arn = barge_json_str(who, "arn", ""),
        .role_arn = role_arn,
        .account = ctx->srv->cfg.account_id,
    };
    struct barge_policy_context c = {
        .source_ip = ctx->who.source_ip[0] ? ctx->who.source_ip : NULL,
        .principal_arn = role_arn ? role_arn : p.arn,
        .username = barge_json_str(who, "iamUser", NULL),
        .region = ctx->who.region[0] ? ctx->who.region : NULL,
        .external_id = external_id,
    };
    return barge_policy_trust_evaluate(barge_json_str(role, "AssumeRolePolicyDocument", "{}"),
                                       "sts:AssumeRole", &p, &c) == BARGE_POLICY_ALLOW;
}

static int assume_role(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    const char *arn = barge_json_str(in, "RoleArn", "");
    const char *session = barge_json_str(in, "RoleSessionName", "");
    if (!session_name_ok(session))
        return validation(err, session, "roleSessionName",
                          "Member must satisfy regular expression pattern: [\\w+=,.@-]*");
    /* Session policies would narrow the rights, which barge cannot do yet:
     * refusing them is safer than handing out wider credentials. */
    static const char *const unsupported[] = {"Policy", "PolicyArns", "SerialNumber"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(unsupported); i++)
        if (json_object_get(in, unsupported[i]))
            return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "ValidationError",
                                        "AssumeRole with %s is not supported by barge",
                                        unsupported[i]);
    const char *name = NULL;
    if (role_name(ctx, arn, &name, err) < 0)
        return -1;
    _cleanup_json_ json_t *who = NULL, *role = NULL;
    if (caller(ctx, &who, err) < 0)
        return -1;
    if (name) {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
            barge_api_iam_role_get(tx, name, &role, err) < 0)
            return -1;
    }
    /* The ARN must match with its path, as IAM compares it. */
    if (!role || !barge_streq(barge_json_str(role, "Arn", NULL), arn) ||
        !trusted(ctx, role, who, barge_json_str(in, "ExternalId", NULL)))
        return not_authorized(err, who, arn);
    _cleanup_error_ struct barge_error *denied = NULL;
    if (barge_api_authorize(ctx->srv, &ctx->who, "sts:AssumeRole", arn, &denied) < 0) {
        if (denied->code != BARGE_ERR_ACCESS_DENIED)
            return barge_error_set(err, denied->code, "%s", denied->message);
        return not_authorized(err, who, arn);
    }
    json_int_t duration = barge_json_int(in, "DurationSeconds", DEFAULT_ROLE_DURATION);
    json_int_t max = barge_json_int(role, "MaxSessionDuration", DEFAULT_ROLE_DURATION);
    if (json_is_true(json_object_get(who, "session")) && duration > CHAINED_MAX_DURATION)
        return barge_error_set_type(
            err, BARGE_ERR_INVALID, "ValidationError",
            "The requested DurationSeconds (%lld) exceeds the 1 hour session limit for roles "
            "assumed by role chaining.",
            (long long)duration);
    if (duration > max)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                    "The requested DurationSeconds (%lld) exceeds the "
                                    "MaxSessionDuration (%lld) set for this role.",
                                    (long long)duration, (long long)max);
    const char *rname = barge_json_str(role, "RoleName", "");
    _cleanup_free_ char *session_arn = barge_xasprintf("arn:aws:sts::%s:assumed-role/%s/%s",
                                                       ctx->srv->cfg.account_id, rname, session);
    _cleanup_free_ char *uid =
        barge_xasprintf("%s:%s", barge_json_str(role, "RoleId", ""), session);
    json_t *creds = NULL;
    if (barge_api_session_issue(ctx->srv, &ctx->who, session_arn, uid, arn, NULL, (double)duration,
                                &creds, err) < 0)
        return -1;
    *out = json_pack("{s:o, s:{s:s, s:s}}", "Credentials", creds, "AssumedRoleUser",
                     "AssumedRoleId", uid, "Arn", session_arn);
    return 0;
}

static int get_session_token(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    if (json_object_get(in, "SerialNumber") || json_object_get(in, "TokenCode"))
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "ValidationError",
                                    "GetSessionToken with MFA (SerialNumber, TokenCode) is not "
                                    "supported by barge");
    _cleanup_json_ json_t *who = NULL;
    if (caller(ctx, &who, err) < 0)
        return -1;
    if (json_is_true(json_object_get(who, "session")))
        return barge_error_set_type(err, BARGE_ERR_ACCESS_DENIED, "AccessDenied",
                                    "Cannot call GetSessionToken with session credentials");
    json_t *creds = NULL;
    if (barge_api_session_issue(
            ctx->srv, &ctx->who, barge_json_str(who, "arn", ""), barge_json_str(who, "userId", ""),
            NULL, NULL, (double)barge_json_int(in, "DurationSeconds", DEFAULT_SESSION_DURATION),
            &creds, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "Credentials", creds);
    return 0;
}

static const struct barge_api_op sts_ops[] = {
    {"GetCallerIdentity", get_caller_identity},
    {"AssumeRole", assume_role},
    {"GetSessionToken", get_session_token},
    {NULL, NULL},
};

static const struct barge_api_op *const sts_op_tables[] = {sts_ops, NULL};

const struct barge_api_service barge_api_sts = {
    .model = "sts",
    .message_key = "Message",
    .invalid_type = "ValidationError",
    .client_type = "ValidationError",
    .server_type = "InternalFailure",
    .not_found_type = "ValidationError",
    .op_tables = sts_op_tables,
};
