/* Authentication with the per-service region rule, per-task execution
 * credentials and their policies (see access.h). */
#include "api/access.h"

#include <fnmatch.h>
#include <string.h>
#include <time.h>

#include "api/ecs.h"
#include "api/iam.h"
#include "api/policy.h"
#include "common/arn.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secretref.h"

/* Long enough for a slow image pull after the secrets were fetched; the
 * credentials die with the task anyway. */
#define TASK_CREDENTIALS_TTL 3600
/* Expired STS sessions are kept this long, so that their use is answered
 * ExpiredToken rather than as an unknown key. */
#define SESSION_REAP_GRACE 86400
/* Task role credentials last six hours, as ECS's; the agent renews them
 * when half of that is gone. */
#define TASK_ROLE_TTL 21600
/* The service principal a task role's trust policy must name. */
#define TASK_ROLE_PRINCIPAL "ecs-tasks.amazonaws.com"

/* Services whose clients may sign for a made-up region (S3 tools use
 * "auto"): their resources are one namespace anyway. */
static const char *const global_services[] = {"s3", "iam", "sts"};
/* What per-task credentials may ever reach. */
static const char *const task_key_services[] = {"ssm", "secretsmanager", "s3"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

bool barge_api_is_task_key(const struct barge_sigv4_identity *who)
{
    return barge_str_has_prefix(who->access_key_id, BARGE_TASK_KEY_PREFIX);
}

/* The stored key akid. fresh: read from the store (expiry and revocation
 * checks); else SigV4's lookup has just read it, and the cache's copy does. */
static int load_key(struct barge_server *srv, const char *akid, bool fresh, json_t **doc,
                    struct barge_error **err)
{
    int r;
    if (fresh) {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, false, &tx, err) < 0)
            return -1;
        r = barge_store_get(tx, BARGE_KIND_ACCESS_KEY, akid, doc, err);
    } else {
        r = barge_server_key_doc(srv, akid, doc, err);
    }
    if (r == 0)
        return barge_error_set(err, BARGE_ERR_AUTH_UNKNOWN_KEY,
                               "The security token included in the request is invalid.");
    return r < 0 ? -1 : 0;
}

/* Whether the task (its store key) a per-task key or task role session
 * belongs to still runs (not STOPPED). The task is looked up in its own
 * region (NULL: the default), whichever region the key is used in. */
static int task_alive(struct barge_server *srv, const char *task_key, const char *region,
                      bool *alive, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *task = NULL;
    if (barge_store_begin_in(srv->store, region, false, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_TASK, task_key, &task, err) < 0)
        return -1;
    *alive = task && !barge_streq(barge_json_str(task, "lastStatus", NULL), "STOPPED");
    return 0;
}

static bool is_session(const json_t *key)
{
    return json_is_true(json_object_get(key, "sts"));
}

static char *principal_arn(struct barge_server *srv, const json_t *key)
{
    if (barge_json_str(key, "arn", NULL))
        return barge_xstrdup(barge_json_str(key, "arn", ""));
    if (barge_json_str(key, "task", NULL)) {
        const char *t = barge_json_str(key, "task", "");
        const char *slash = strrchr(t, '/');
        return barge_xasprintf("arn:aws:sts::%s:assumed-role/%s/%s", srv->cfg.account_id,
                               barge_json_str(key, "role", "ecsTaskExecutionRole"),
                               slash ? slash + 1 : t);
    }
    return barge_xasprintf("arn:aws:iam::%s:user/%s", srv->cfg.account_id,
                           barge_json_str(key, "user", "admin"));
}

/* Refuses the stored temporary key (per-task or STS) once it expired or
 * the task it belongs to stopped (ExpiredTokenException). */
static int temporary_key_alive(struct barge_server *srv, const json_t *key,
                               struct barge_error **err)
{
    bool alive = is_session(key);
    const char *task = barge_json_str(key, "task", barge_json_str(key, "boundTask", NULL));
    if (task && task_alive(srv, task, barge_json_str(key, "region", NULL), &alive, err) < 0)
        return -1;
    if (!alive || barge_now() > json_number_value(json_object_get(key, "expiresAt")))
        return barge_error_set(err, BARGE_ERR_AUTH_EXPIRED,
                               "The security token included in the request is expired");
    return 0;
}

int barge_api_authenticate_for(struct barge_http_req *req, const char *signing_name, bool s3,
                               struct barge_sigv4_identity *who, struct barge_error **err)
{
    struct barge_server *srv = req->server;
    struct barge_kv *hdrs = barge_xcalloc(req->n_headers + 1, sizeof(*hdrs));
    for (size_t i = 0; i < req->n_headers; i++) {
        hdrs[i].name = req->headers[i].name;
        hdrs[i].value = req->headers[i].value;
    }
    struct barge_sigv4_request sr = {
        .method = req->method,
        .raw_path = req->raw_path,
        .raw_query = req->raw_query,
        .headers = hdrs,
        .n_headers = req->n_headers,
        .body = req->body,
        .body_len = req->body_len,
        .s3 = s3,
    };
    /* Every region is served: the credential scope's region is the one the
     * request works in (IAM and STS are global, and clients sign them for
     * us-east-1 or their own region). */
    int r = barge_sigv4_verify(&sr, NULL, time(NULL), srv->cfg.max_skew_seconds,
                               barge_server_lookup_key, srv, who, err);
    free(hdrs);
    if (r < 0)
        return -1;
    if (barge_store_region_valid(who->region))
        barge_store_use_region(who->region);
    else if (!in_list(signing_name, global_services, BARGE_ARRAY_SIZE(global_services)))
        return barge_error_set(err, BARGE_ERR_AUTH_SIGNATURE,
                               "Credential should be scoped to a valid region, not '%s'.",
                               who->region);
    snprintf(who->source_ip, sizeof(who->source_ip), "%s",
             req->remote_addr ? req->remote_addr : "");
    if (strcmp(who->service, signing_name) != 0)
        return barge_error_set(err, BARGE_ERR_AUTH_SIGNATURE,
                               "Credential should be scoped to correct service: '%s'.",
                               signing_name);
    if (!barge_api_is_task_key(who))
        return 0;

    _cleanup_json_ json_t *key = NULL;
    if (load_key(srv, who->access_key_id, true, &key, err) < 0)
        return -1;
    if (temporary_key_alive(srv, key, err) < 0)
        return -1;
    /* Sessions' identity policies are evaluated per operation
     * (barge_api_policy_check). */
    if (is_session(key))
        return 0;
    if (!in_list(signing_name, task_key_services, BARGE_ARRAY_SIZE(task_key_services))) {
        _cleanup_free_ char *who_arn = principal_arn(srv, key);
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "User: %s is not authorized to access the '%s' service: task "
                               "execution credentials only read the task's secrets and "
                               "environment files",
                               who_arn, signing_name);
    }
    return 0;
}

/* The identity policies that bind the principal of the stored key doc: a
 * new array in *docs, or NULL for the admin key and its sessions, which may
 * do everything. Sessions of a role get the role's policies; an IAM user's
 * keys and sessions the user's. A principal deleted since gets none. */
static int principal_policies(struct barge_server *srv, const json_t *key, json_t **docs,
                              struct barge_error **err)
{
    *docs = NULL;
    const char *role_arn = barge_json_str(key, "roleArn", NULL);
    const char *user = barge_json_str(key, "iamUser", NULL);
    if (!role_arn && !user)
        return 0;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0)
        return -1;
    int r = role_arn ? barge_api_iam_role_get(tx, strrchr(role_arn, '/') + 1, &doc, err)
                     : barge_api_iam_user_get(tx, user, &doc, err);
    if (r < 0)
        return -1;
    /* A role or user re-created under the same name is another principal. */
    if (role_arn && doc && !barge_streq(barge_json_str(doc, "Arn", NULL), role_arn))
        json_decref(barge_steal(&doc));
    if (!role_arn && doc &&
        !barge_streq(barge_json_str(doc, "UserId", NULL), barge_json_str(key, "userId", NULL)))
        json_decref(barge_steal(&doc));
    return barge_api_iam_policies(tx, doc, docs, err);
}

/* Applies the decision of docs on action and resource (NULL: unknown) for
 * the principal of key; type is the wire error type to use (NULL: the
 * service's AccessDeniedException). */
static int decide(struct barge_server *srv, const struct barge_sigv4_identity *who,
                  const json_t *key, const json_t *docs, const char *action, const char *resource,
                  const char *type, struct barge_error **err)
{
    _cleanup_free_ char *who_arn = principal_arn(srv, key);
    /* A role session's aws:PrincipalArn is the role's. */
    const char *role_arn = barge_json_str(key, "roleArn", NULL);
    struct barge_policy_context c = {
        .source_ip = who->source_ip[0] ? who->source_ip : NULL,
        .principal_arn = role_arn ? role_arn : who_arn,
        .username = role_arn ? NULL : barge_json_str(key, "iamUser", NULL),
        .region = who->region[0] ? who->region : NULL,
        .account = srv->cfg.account_id,
    };
    enum barge_policy_decision d = barge_policy_evaluate(docs, action, resource, &c);
    if (d == BARGE_POLICY_ALLOW)
        return 0;
    _cleanup_free_ char *why =
        d == BARGE_POLICY_EXPLICIT_DENY
            ? barge_xstrdup("with an explicit deny in an identity-based policy")
            : barge_xasprintf("because no identity-based policy allows the %s action", action);
    const char *res = resource ? resource : "*";
    if (type)
        return barge_error_set_type(err, BARGE_ERR_ACCESS_DENIED, type,
                                    "User: %s is not authorized to perform: %s on resource: %s %s",
                                    who_arn, action, res, why);
    return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                           "User: %s is not authorized to perform: %s on resource: %s %s", who_arn,
                           action, res, why);
}

int barge_api_authorize(struct barge_server *srv, const struct barge_sigv4_identity *who,
                        const char *action, const char *resource, struct barge_error **err)
{
    _cleanup_json_ json_t *key = NULL;
    if (load_key(srv, who->access_key_id, true, &key, err) < 0)
        return -1;
    if (!barge_json_str(key, "task", NULL)) {
        _cleanup_json_ json_t *docs = NULL;
        if (principal_policies(srv, key, &docs, err) < 0)
            return -1;
        return docs ? decide(srv, who, key, docs, action, resource, NULL, err) : 0;
    }
    size_t i;
    json_t *stmt;
    json_array_foreach(barge_json_array(key, "policy"), i, stmt)
    {
        if (resource && fnmatch(barge_json_str(stmt, "action", ""), action, 0) == 0 &&
            fnmatch(barge_json_str(stmt, "resource", ""), resource, 0) == 0)
            return 0;
    }
    _cleanup_free_ char *who_arn = principal_arn(srv, key);
    return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                           "User: %s is not authorized to perform: %s on resource: %s because "
                           "no identity-based policy allows the %s action",
                           who_arn, action, resource ? resource : "*", action);
}

/* --- the check every API request passes --------------------------------- */

/* IAM's service prefix of a model. */
static const char *action_prefix(const char *model)
{
    if (strcmp(model, "elbv2") == 0)
        return "elasticloadbalancing";
    return model;
}

static bool has(const json_t *in, const char *field)
{
    return json_object_get(in, field) != NULL;
}

/* SSM and Secrets Manager check the parameter or secret a request names
 * themselves, with its exact ARN (barge_api_authorize). */
static bool checked_by_handler(const char *model, const json_t *in)
{
    if (strcmp(model, "ssm") == 0)
        return has(in, "Name") || has(in, "Names") || has(in, "Path");
    if (strcmp(model, "secretsmanager") == 0)
        return has(in, "SecretId") || has(in, "Name");
    return false;
}

/* name, or the part of an ARN after its last '/'. */
static const char *base_name(const char *s)
{
    return barge_str_has_prefix(s, "arn:") && strrchr(s, '/') ? strrchr(s, '/') + 1 : s;
}

static char *arn_or(const char *value, const char *fmt_prefix, const char *suffix)
{
    if (barge_str_has_prefix(value, "arn:"))
        return barge_xstrdup(value);
    return barge_xasprintf("%s%s", fmt_prefix, suffix);
}

static char *ecs_resource(const char *op, const char *base, const json_t *in)
{
    const char *cluster = barge_json_str(in, "cluster", NULL);
    const char *service = barge_json_str(in, "service", barge_json_str(in, "serviceName", NULL));
    const char *td = barge_json_str(in, "taskDefinition", NULL);
    const char *task = barge_json_str(in, "task", NULL);
    if (task && strcmp(op, "ExecuteCommand") == 0) {
        _cleanup_free_ char *tail =
            barge_xasprintf("%s/%s", cluster ? base_name(cluster) : "default", task);
        _cleanup_free_ char *pre = barge_xasprintf("%stask/", base);
        return arn_or(task, pre, tail);
    }
    if (service) {
        _cleanup_free_ char *tail =
            barge_xasprintf("%s/%s", cluster ? base_name(cluster) : "default", service);
        _cleanup_free_ char *pre = barge_xasprintf("%sservice/", base);
        return arn_or(service, pre, tail);
    }
    if (td &&
        (strcmp(op, "DescribeTaskDefinition") == 0 || strcmp(op, "DeregisterTaskDefinition") == 0 ||
         strcmp(op, "RunTask") == 0 || strcmp(op, "StartTask") == 0)) {
        _cleanup_free_ char *pre = barge_xasprintf("%stask-definition/", base);
        return arn_or(td, pre, td);
    }
    const char *name = barge_json_str(in, "clusterName", cluster);
    if (name) {
        _cleanup_free_ char *pre = barge_xasprintf("%scluster/", base);
        return arn_or(name, pre, name);
    }
    return NULL;
}

/* The ARN of the resource a request names, where barge can tell; NULL
 * otherwise. */
static char *request_resource(const struct barge_api_ctx *ctx, const json_t *in)
{
    const char *model = ctx->service->model;
    const char *acct = ctx->srv->cfg.account_id;
    _cleanup_free_ char *base = barge_xasprintf("arn:aws:%s:%s:%s:", model, ctx->who.region, acct);
    if (strcmp(model, "ecs") == 0)
        return ecs_resource(ctx->operation, base, in);
    if (strcmp(model, "logs") == 0 && barge_json_str(in, "logGroupName", NULL)) {
        const char *stream = barge_json_str(in, "logStreamName", NULL);
        if (stream)
            return barge_xasprintf("%slog-group:%s:log-stream:%s", base,
                                   barge_json_str(in, "logGroupName", ""), stream);
        return barge_xasprintf("%slog-group:%s", base, barge_json_str(in, "logGroupName", ""));
    }
    if (strcmp(model, "ecr") == 0 && barge_json_str(in, "repositoryName", NULL))
        return barge_xasprintf("%srepository/%s", base, barge_json_str(in, "repositoryName", ""));
    if (strcmp(model, "acm") == 0 && barge_json_str(in, "CertificateArn", NULL))
        return barge_xstrdup(barge_json_str(in, "CertificateArn", ""));
    if (strcmp(model, "iam") == 0 && barge_json_str(in, "GroupName", NULL))
        return barge_xasprintf("arn:aws:iam::%s:group/%s", acct,
                               barge_json_str(in, "GroupName", ""));
    if (strcmp(model, "iam") == 0 && barge_json_str(in, "UserName", NULL))
        return barge_xasprintf("arn:aws:iam::%s:user/%s", acct, barge_json_str(in, "UserName", ""));
    if (strcmp(model, "iam") == 0 && barge_json_str(in, "RoleName", NULL))
        return barge_xasprintf("arn:aws:iam::%s:role/%s", acct, barge_json_str(in, "RoleName", ""));
    return NULL;
}

int barge_api_policy_check(const struct barge_api_ctx *ctx, const json_t *input,
                           struct barge_error **err)
{
    const char *model = ctx->service->model;
    /* Every principal may ask who it is and assume roles that trust it. */
    if (strcmp(model, "sts") == 0)
        return 0;
    _cleanup_json_ json_t *key = NULL, *docs = NULL;
    if (load_key(ctx->srv, ctx->who.access_key_id, false, &key, err) < 0)
        return -1;
    /* Execution credentials are checked per secret by the handlers. */
    if (barge_json_str(key, "task", NULL))
        return 0;
    if (principal_policies(ctx->srv, key, &docs, err) < 0)
        return -1;
    if (!docs || checked_by_handler(model, input))
        return 0;
    _cleanup_free_ char *action = barge_xasprintf("%s:%s", action_prefix(model), ctx->operation);
    _cleanup_free_ char *resource = request_resource(ctx, input);
    bool query = strcmp(model, "iam") == 0 || strcmp(model, "elbv2") == 0;
    return decide(ctx->srv, &ctx->who, key, docs, action, resource, query ? "AccessDenied" : NULL,
                  err);
}

int barge_api_registry_key_may(const char *akid, const char *action, const char *repo,
                               const char *source_ip, void *ud, struct barge_error **err)
{
    struct barge_server *srv = ud;
    struct barge_sigv4_identity who = {0};
    snprintf(who.access_key_id, sizeof(who.access_key_id), "%s", akid);
    snprintf(who.region, sizeof(who.region), "%s", srv->cfg.region);
    snprintf(who.service, sizeof(who.service), "ecr");
    snprintf(who.source_ip, sizeof(who.source_ip), "%s", source_ip ? source_ip : "");
    _cleanup_free_ char *arn = repo ? barge_xasprintf("arn:aws:ecr:%s:%s:repository/%s",
                                                      srv->cfg.region, srv->cfg.account_id, repo)
                                    : NULL;
    /* A registry token outlives the temporary credentials it came from
     * unless they are checked here. */
    if (barge_api_is_task_key(&who)) {
        _cleanup_json_ json_t *key = NULL;
        _cleanup_error_ struct barge_error *dead = NULL;
        if (load_key(srv, akid, true, &key, err) < 0)
            return -1;
        if (temporary_key_alive(srv, key, &dead) < 0)
            return barge_error_set(
                err, dead->code == BARGE_ERR_AUTH_EXPIRED ? BARGE_ERR_ACCESS_DENIED : dead->code,
                "%s", dead->message);
    }
    return barge_api_authorize(srv, &who, action, arn, err);
}

char *barge_api_caller_arn(struct barge_server *srv, const struct barge_sigv4_identity *who)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *key = NULL;
    if (load_key(srv, who->access_key_id, true, &key, &err) < 0)
        return barge_xasprintf("arn:aws:iam::%s:user/unknown", srv->cfg.account_id);
    return principal_arn(srv, key);
}

/* --- per-task credentials ------------------------------------------------ */

/* s with fnmatch's special characters escaped, so that an S3 key like "a*b"
 * grants only itself. */
static char *glob_escape(const char *s)
{
    char *out = barge_xmalloc(2 * strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

static void allow(json_t *policy, const char *action, char *resource_owned)
{
    size_t i;
    json_t *s;
    json_array_foreach(policy, i, s)
    {
        if (barge_streq(barge_json_str(s, "action", NULL), action) &&
            barge_streq(barge_json_str(s, "resource", NULL), resource_owned)) {
            free(resource_owned);
            return;
        }
    }
    json_array_append_new(policy,
                          json_pack("{s:s, s:s}", "action", action, "resource", resource_owned));
    free(resource_owned);
}

/* A bare name is a parameter of the task's region, an ARN names its own. */
static void allow_secret(const struct barge_server *srv, const char *task_region, json_t *policy,
                         const char *value_from)
{
    struct barge_secret_ref ref;
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_secret_ref_parse(value_from, task_region, srv->cfg.account_id, &ref, &err) < 0)
        return; /* the agent reports the bad reference when it starts the task */
    if (ref.provider == BARGE_SECRET_SSM) {
        allow(policy, "ssm:GetParameters", glob_escape(ref.resource));
        allow(policy, "ssm:GetParameter", glob_escape(ref.resource));
    } else {
        _cleanup_free_ char *esc = glob_escape(ref.resource);
        allow(policy, "secretsmanager:GetSecretValue", barge_xstrdup(esc));
        /* A partial ARN (the name without AWS's random suffix) names the
         * secret whose ARN is that plus "-" and six characters. */
        allow(policy, "secretsmanager:GetSecretValue", barge_xasprintf("%s-??????", esc));
    }
    barge_secret_ref_release(&ref);
}

static void allow_env_files(json_t *policy, const json_t *files)
{
    size_t i;
    json_t *f;
    json_array_foreach((json_t *)files, i, f)
    {
        char *bucket = NULL, *key = NULL;
        _cleanup_error_ struct barge_error *err = NULL;
        const char *arn = barge_json_str(f, "value", "");
        if (barge_s3_object_arn_parse(arn, &bucket, &key, &err) < 0)
            continue;
        allow(policy, "s3:GetObject", glob_escape(arn));
        _cleanup_free_ char *barn = barge_xasprintf("arn:aws:s3:::%s", bucket);
        allow(policy, "s3:GetBucketLocation", glob_escape(barn));
        free(bucket);
        free(key);
    }
}

json_t *barge_api_task_policy(const struct barge_server *srv, const json_t *task,
                              const json_t *taskdef)
{
    json_t *policy = json_array();
    size_t i, j;
    json_t *c, *s;
    struct barge_arn arn = {0};
    const char *region = barge_server_region(srv);
    if (barge_arn_parse(barge_json_str(task, "taskArn", ""), &arn) == 0 &&
        barge_store_region_valid(arn.region))
        region = arn.region;
    json_array_foreach(barge_json_array(taskdef, "containerDefinitions"), i, c)
    {
        json_array_foreach(barge_json_array(c, "secrets"), j, s)
            allow_secret(srv, region, policy, barge_json_str(s, "valueFrom", ""));
        json_array_foreach(
            barge_json_array(barge_json_object(c, "logConfiguration"), "secretOptions"), j, s)
            allow_secret(srv, region, policy, barge_json_str(s, "valueFrom", ""));
        allow_env_files(policy, barge_json_array(c, "environmentFiles"));
    }
    json_array_foreach(barge_json_array(barge_json_object(task, "overrides"), "containerOverrides"),
                       i, c) allow_env_files(policy, barge_json_array(c, "environmentFiles"));
    barge_arn_release(&arn);
    return policy;
}

static void random_chars(char *out, size_t n, const char *alphabet)
{
    size_t alen = strlen(alphabet);
    unsigned char buf[128];
    barge_random_bytes(buf, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[buf[i] % alen];
    out[n] = '\0';
    explicit_bzero(buf, sizeof(buf));
}

/* The role a task runs as: its overrides' taskRoleArn, else its
 * definition's; NULL without one. */
static const char *task_role_arn(const json_t *task, const json_t *td)
{
    return barge_json_str(barge_json_object(task, "overrides"), "taskRoleArn",
                          barge_json_str(td, "taskRoleArn", NULL));
}

/* Task role credentials for task (stored doc, store key tkey) of td: an STS session of the
 * role, as ECS's service principal assumes it, bound to the task. */
static int task_role_issue(struct barge_server *srv, const char *tkey, const json_t *task,
                           const json_t *td, json_t **out, struct barge_error **err)
{
    const char *arn = task_role_arn(task, td);
    if (!arn)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "task '%s' has no taskRoleArn",
                               barge_json_str(task, "taskArn", ""));
    const char *slash = strrchr(arn, '/');
    _cleanup_json_ json_t *role = NULL;
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
            (slash && barge_api_iam_role_get(tx, slash + 1, &role, err) < 0))
            return -1;
    }
    if (!role || !barge_streq(barge_json_str(role, "Arn", NULL), arn))
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "task role '%s' does not exist", arn);
    struct barge_trust_principal p = {.service = TASK_ROLE_PRINCIPAL};
    struct barge_policy_context c = {0};
    if (barge_policy_trust_evaluate(barge_json_str(role, "AssumeRolePolicyDocument", "{}"),
                                    "sts:AssumeRole", &p, &c) != BARGE_POLICY_ALLOW)
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "the trust policy of task role '%s' does not allow the service "
                               "principal '%s' to perform sts:AssumeRole",
                               arn, TASK_ROLE_PRINCIPAL);
    const char *task_arn = barge_json_str(task, "taskArn", "");
    const char *task_id = strrchr(task_arn, '/') ? strrchr(task_arn, '/') + 1 : task_arn;
    _cleanup_free_ char *session_arn =
        barge_xasprintf("arn:aws:sts::%s:assumed-role/%s/%s", srv->cfg.account_id,
                        barge_json_str(role, "RoleName", ""), task_id);
    _cleanup_free_ char *uid =
        barge_xasprintf("%s:%s", barge_json_str(role, "RoleId", ""), task_id);
    json_t *creds = NULL;
    if (barge_api_session_issue(srv, NULL, session_arn, uid, arn, tkey, TASK_ROLE_TTL, &creds,
                                err) < 0)
        return -1;
    *out = json_pack("{s:s, s:s, s:s, s:s, s:O}", "roleArn", arn, "accessKeyId",
                     barge_json_str(creds, "AccessKeyId", ""), "secretAccessKey",
                     barge_json_str(creds, "SecretAccessKey", ""), "sessionToken",
                     barge_json_str(creds, "SessionToken", ""), "expiration",
                     json_object_get(creds, "Expiration"));
    json_decref(creds);
    return 0;
}

int barge_api_task_credentials_issue(struct barge_server *srv, const char *instance_key,
                                     const json_t *in, json_t **out, struct barge_error **err)
{
    const char *id = strrchr(instance_key, '/') + 1;
    const char *arn = barge_json_str(in, "taskArn", "");
    const char *slash = strrchr(arn, '/');
    /* The task's cluster is in its ARN: the Fargate pool's instance serves
     * tasks of every cluster. */
    const char *c = strstr(arn, ":task/");
    const char *end = c ? strchr(c + 6, '/') : NULL;
    _cleanup_free_ char *cluster =
        end ? barge_xstrndup(c + 6, (size_t)(end - c - 6))
            : barge_xstrndup(instance_key, (size_t)(id - 1 - instance_key));
    _cleanup_free_ char *tkey = barge_xasprintf("%s/%s", cluster, slash ? slash + 1 : arn);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *task = NULL, *td = NULL;
    _cleanup_free_ char *tdkey = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_TASK, tkey, &task, err) < 0)
        return -1;
    if (!task)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "task '%s' is not known", arn);
    if (!barge_streq(barge_json_str(task, "_instanceId", NULL), id))
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "task '%s' does not belong to this instance", arn);
    if (barge_streq(barge_json_str(task, "lastStatus", NULL), "STOPPED"))
        return barge_error_set(err, BARGE_ERR_CONFLICT, "task '%s' is stopped", arn);
    if (ecs_taskdef_find(tx, srv, barge_json_str(task, "taskDefinitionArn", ""), &td, &tdkey, err) <
        0)
        return -1;
    if (json_is_true(json_object_get(in, "taskRole"))) {
        /* The session is written in a transaction of its own. */
        barge_store_abort(barge_steal(&tx));
        return task_role_issue(srv, tkey, task, td, out, err);
    }

    char akid[21], secret[41], token[129];
    memcpy(akid, BARGE_TASK_KEY_PREFIX, 4);
    random_chars(akid + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    random_chars(secret, 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    random_chars(token, 128, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    const char *role_arn = barge_json_str(td, "executionRoleArn", NULL);
    const char *role =
        role_arn && strrchr(role_arn, '/') ? strrchr(role_arn, '/') + 1 : "ecsTaskExecutionRole";
    double now = barge_now();
    json_t *policy = barge_api_task_policy(srv, task, td);
    _cleanup_free_ char *sealed = barge_api_key_seal(srv, akid, secret);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:o, s:s}", "sealedSecret", sealed,
                  "sessionToken", token, "user", "task-execution", "task", tkey, "taskArn",
                  barge_json_str(task, "taskArn", ""), "role", role, "createdAt", now, "expiresAt",
                  now + TASK_CREDENTIALS_TTL, "policy", policy, "region", barge_server_region(srv));
    if (barge_store_put(tx, BARGE_KIND_ACCESS_KEY, akid, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_debug("issued execution credentials %s for task %s (%zu grants)", akid, arn,
                json_array_size(policy));
    *out = json_pack("{s:s, s:s, s:s, s:f, s:s}", "accessKeyId", akid, "secretAccessKey", secret,
                     "sessionToken", token, "expiration", now + TASK_CREDENTIALS_TTL, "region",
                     barge_server_region(srv));
    explicit_bzero(secret, sizeof(secret));
    explicit_bzero(token, sizeof(token));
    return 0;
}

static int collect_task_key(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    json_object_set(ud, key, doc);
    return 0;
}

int barge_api_task_credentials_reap(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_json_ json_t *doomed = json_array(), *keys = json_object();
    {
        /* Look with a reader first: most of the time there is nothing to do
         * and the writer lock stays free. */
        _cleanup_tx_ struct barge_tx *rtx = NULL;
        if (barge_store_begin(srv->store, false, &rtx, err) < 0 ||
            barge_store_scan(rtx, BARGE_KIND_ACCESS_KEY, BARGE_TASK_KEY_PREFIX, NULL, false, 0,
                             collect_task_key, keys, err) < 0)
            return -1;
    }
    const char *akid;
    json_t *doc;
    json_object_foreach(keys, akid, doc)
    {
        double expires = json_number_value(json_object_get(doc, "expiresAt"));
        bool alive = false;
        if (is_session(doc))
            alive = barge_now() <= expires + SESSION_REAP_GRACE;
        else if (barge_now() <= expires &&
                 task_alive(srv, barge_json_str(doc, "task", ""),
                            barge_json_str(doc, "region", NULL), &alive, err) < 0)
            return -1;
        if (!alive)
            json_array_append_new(doomed, json_string(akid));
    }
    if (json_array_size(doomed) == 0)
        return 0;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(doomed, i, k)
    {
        if (barge_store_del(tx, BARGE_KIND_ACCESS_KEY, json_string_value(k), err) < 0)
            return -1;
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    json_array_foreach(doomed, i, k)
    {
        barge_server_forget_key(json_string_value(k));
    }
    return 0;
}

/* --- Sealed secrets ------------------------------------------------------ */

/* Every stored secret is sealed with the key id as associated data, so a
 * sealed secret copied onto another key does not open. The text names STS
 * because sessions were sealed first; it must stay as it is. */
static char *key_aad(const char *akid)
{
    return barge_xasprintf("barge|sts-secret|%s", akid);
}

char *barge_api_key_seal(const struct barge_server *srv, const char *akid, const char *secret)
{
    _cleanup_free_ char *aad = key_aad(akid);
    return barge_crypto_seal(&srv->master_key, secret, strlen(secret), aad);
}

char *barge_api_key_secret(const struct barge_server *srv, const char *akid, const json_t *doc)
{
    const char *sealed = barge_json_str(doc, "sealedSecret", NULL);
    if (!sealed)
        return barge_xstrdup(barge_json_str(doc, "secretAccessKey", ""));
    _cleanup_free_ char *aad = key_aad(akid);
    _cleanup_error_ struct barge_error *err = NULL;
    char *plain = NULL;
    size_t len = 0;
    if (barge_crypto_open(&srv->master_key, sealed, aad, &plain, &len, &err) < 0) {
        barge_warn("access key %s: %s", akid, err->message);
        return NULL;
    }
    return plain;
}

static int collect_plain_key(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    if (json_object_get(doc, "secretAccessKey"))
        json_object_set(ud, key, doc);
    return 0;
}

int barge_api_keys_seal_plaintext(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_json_ json_t *plain = json_object();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_scan(tx, BARGE_KIND_ACCESS_KEY, "", NULL, false, 0, collect_plain_key, plain,
                         err) < 0)
        return -1;
    if (json_object_size(plain) == 0)
        return 0;
    const char *akid;
    json_t *doc;
    json_object_foreach(plain, akid, doc)
    {
        _cleanup_free_ char *box =
            barge_api_key_seal(srv, akid, barge_json_str(doc, "secretAccessKey", ""));
        json_object_del(doc, "secretAccessKey");
        json_object_set_new(doc, "sealedSecret", json_string(box));
        if (barge_store_put(tx, BARGE_KIND_ACCESS_KEY, akid, doc, err) < 0)
            return -1;
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("sealed %zu access key secrets that were stored in plain text",
               json_object_size(plain));
    return 0;
}

int barge_api_caller(struct barge_server *srv, const struct barge_sigv4_identity *who, json_t **out,
                     struct barge_error **err)
{
    _cleanup_json_ json_t *key = NULL;
    if (load_key(srv, who->access_key_id, true, &key, err) < 0)
        return -1;
    _cleanup_free_ char *arn = principal_arn(srv, key);
    const char *uid = barge_json_str(key, "userId", NULL);
    char derived[22];
    if (!uid) {
        /* Long-term keys have no stored user id: a stable one is derived
         * from the user's name, as IAM's never changes. */
        char hash[65];
        _cleanup_free_ char *name =
            barge_xasprintf("%s|%s", srv->cfg.account_id, barge_json_str(key, "user", "admin"));
        barge_sha256_hex(name, strlen(name), hash);
        memcpy(derived, "AIDA", 4);
        for (size_t i = 0; i < 17; i++)
            derived[4 + i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[(unsigned char)hash[i] % 32];
        derived[21] = '\0';
        uid = derived;
    }
    *out = json_pack("{s:s, s:s, s:b}", "arn", arn, "userId", uid, "session", is_session(key));
    if (barge_json_str(key, "roleArn", NULL))
        json_object_set_new(*out, "roleArn", json_string(barge_json_str(key, "roleArn", "")));
    if (barge_json_str(key, "iamUser", NULL))
        json_object_set_new(*out, "iamUser", json_string(barge_json_str(key, "iamUser", "")));
    return 0;
}

int barge_api_session_issue(struct barge_server *srv, const struct barge_sigv4_identity *issuer,
                            const char *arn, const char *user_id, const char *role_arn,
                            const char *task_key, double duration, json_t **out,
                            struct barge_error **err)
{
    char akid[21], secret[41];
    memcpy(akid, BARGE_TASK_KEY_PREFIX, 4);
    random_chars(akid + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    random_chars(secret, 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    unsigned char raw[96];
    barge_random_bytes(raw, sizeof(raw));
    _cleanup_free_ char *token = barge_base64_encode(raw, sizeof(raw));
    explicit_bzero(raw, sizeof(raw));
    _cleanup_free_ char *sealed = barge_api_key_seal(srv, akid, secret);
    double now = barge_now();
    _cleanup_json_ json_t *doc =
        json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:f, s:f}", "sts", true, "sealedSecret", sealed,
                  "sessionToken", token, "arn", arn, "userId", user_id, "issuedBy",
                  issuer ? issuer->access_key_id : TASK_ROLE_PRINCIPAL, "createdAt", now,
                  "expiresAt", now + duration);
    if (role_arn)
        json_object_set_new(doc, "roleArn", json_string(role_arn));
    if (task_key) {
        /* The task is looked up in its region (the agent's, who asks). */
        json_object_set_new(doc, "boundTask", json_string(task_key));
        json_object_set_new(doc, "region", json_string(barge_server_region(srv)));
    }
    /* A user's session has the user's rights (unless it is a role's). */
    _cleanup_json_ json_t *ikey = NULL;
    if (issuer && load_key(srv, issuer->access_key_id, true, &ikey, err) < 0)
        return -1;
    if (!role_arn && barge_json_str(ikey, "iamUser", NULL))
        json_object_set_new(doc, "iamUser", json_string(barge_json_str(ikey, "iamUser", "")));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_put(tx, BARGE_KIND_ACCESS_KEY, akid, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0) {
        explicit_bzero(secret, sizeof(secret));
        return -1;
    }
    barge_info("issued STS session %s for %s until %.0f", akid, arn, now + duration);
    *out = json_pack("{s:s, s:s, s:s, s:f}", "AccessKeyId", akid, "SecretAccessKey", secret,
                     "SessionToken", token, "Expiration", now + duration);
    explicit_bzero(secret, sizeof(secret));
    return 0;
}

/* --- IAM users' access keys ---------------------------------------------- */

int barge_api_user_key_create(struct barge_server *srv, struct barge_tx *tx, const json_t *user,
                              json_t **out, struct barge_error **err)
{
    char akid[21], secret[41];
    memcpy(akid, "AKIA", 4);
    random_chars(akid + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    random_chars(secret, 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    _cleanup_free_ char *sealed = barge_api_key_seal(srv, akid, secret);
    double now = barge_now();
    const char *name = barge_json_str(user, "UserName", "");
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:f}", "sealedSecret", sealed, "iamUser", name, "arn",
                  barge_json_str(user, "Arn", ""), "userId", barge_json_str(user, "UserId", ""),
                  "status", "Active", "createdAt", now);
    if (barge_store_put(tx, BARGE_KIND_ACCESS_KEY, akid, doc, err) < 0) {
        explicit_bzero(secret, sizeof(secret));
        return -1;
    }
    barge_info("created access key %s for IAM user %s", akid, name);
    *out = json_pack("{s:s, s:s, s:s, s:s, s:f}", "UserName", name, "AccessKeyId", akid, "Status",
                     "Active", "SecretAccessKey", secret, "CreateDate", now);
    explicit_bzero(secret, sizeof(secret));
    return 0;
}
