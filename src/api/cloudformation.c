/* The CloudFormation API over the query protocol: stacks, change sets, their
 * events, resources, templates and exports. The handlers check the request,
 * record what is asked in the stack's document ("pending") and answer at once;
 * the engine (cfn_engine.c) carries the operation out in the control loop, so
 * DescribeStacks shows *_IN_PROGRESS and then the outcome, as on AWS. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "api/cfn.h"
#include "api/iam.h"
#include "api/s3.h"
#include "common/ids.h"
#include "common/json.h"

#define MAX_TEMPLATE_BODY 51200
#define MAX_TEMPLATE_URL  1048576

extern const struct barge_api_service barge_api_ssm;

static bool stack_name_ok(const char *s)
{
    if (!isalpha((unsigned char)*s) || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

/* --- stacks in the store -------------------------------------------------- */

struct find {
    const char *name;
    json_t *found;
};

static int match_name(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct find *f = ud;
    if (barge_streq(barge_json_str(doc, "StackName", NULL), f->name) &&
        !barge_streq(barge_json_str(doc, "StackStatus", NULL), "DELETE_COMPLETE")) {
        f->found = json_deep_copy(doc);
        return 1;
    }
    return 0;
}

/* The stack named (or with the StackId) ident: 1 with *doc, 0 when none. A
 * deleted stack is found by its id only. */
static int stack_find(struct barge_tx *tx, const char *ident, json_t **doc,
                      struct barge_error **err)
{
    *doc = NULL;
    if (barge_str_has_prefix(ident, "arn:"))
        return barge_store_get(tx, CFN_KIND_STACK, ident, doc, err);
    struct find f = {ident, NULL};
    if (barge_store_scan(tx, CFN_KIND_STACK, "", NULL, false, 0, match_name, &f, err) < 0)
        return -1;
    *doc = f.found;
    return f.found ? 1 : 0;
}

static int stack_missing(const char *ident, struct barge_error **err)
{
    return barge_cfn_error(err, "Stack with id %s does not exist", ident);
}

static int stack_get(struct barge_tx *tx, const char *ident, json_t **doc, struct barge_error **err)
{
    int n = stack_find(tx, ident, doc, err);
    if (n < 0)
        return -1;
    return n ? 0 : stack_missing(ident, err);
}

static bool in_progress(const char *status)
{
    return barge_str_has_suffix(status, "_IN_PROGRESS") &&
           strcmp(status, "REVIEW_IN_PROGRESS") != 0;
}

/* --- templates --------------------------------------------------------------- */

/* bucket and key of a template URL of barged's S3: path style
 * (http://host/bucket/key) or virtual-host style (bucket.s3...host/key). */
static int parse_url(const char *url, char **bucket, char **key)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    const char *slash = strchr(p, '/');
    if (!slash)
        return -1;
    _cleanup_free_ char *host = barge_xstrndup(p, (size_t)(slash - p));
    char *dot = strstr(host, ".s3");
    if (dot) {
        *dot = '\0';
        *bucket = barge_xstrdup(host);
        *key = barge_xstrdup(slash + 1);
    } else {
        const char *k = strchr(slash + 1, '/');
        if (!k)
            return -1;
        *bucket = barge_xstrndup(slash + 1, (size_t)(k - slash - 1));
        *key = barge_xstrdup(k + 1);
    }
    char *q = strchr(*key, '?');
    if (q)
        *q = '\0';
    return **bucket && **key ? 0 : -1;
}

/* The template of in (TemplateBody or TemplateURL; or UsePreviousTemplate
 * with previous): *body its text, *tpl parsed. */
static int template_of(struct barge_api_ctx *ctx, const json_t *in, const json_t *previous,
                       char **body, json_t **tpl, struct barge_error **err)
{
    const char *text = barge_json_str(in, "TemplateBody", NULL);
    const char *url = barge_json_str(in, "TemplateURL", NULL);
    bool prev = barge_json_bool(in, "UsePreviousTemplate", false);
    if ((text != NULL) + (url != NULL) + prev != 1)
        return barge_cfn_error(err, "Specify exactly one of TemplateBody, TemplateURL or "
                                    "UsePreviousTemplate");
    if (prev) {
        if (!previous || !json_object_get(previous, "templateBody"))
            return barge_cfn_error(err,
                                   "UsePreviousTemplate was given but the stack has no template");
        text = barge_json_str(previous, "templateBody", "");
    }
    size_t len = 0;
    if (url) {
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        if (parse_url(url, &bucket, &key) < 0)
            return barge_cfn_error(
                err, "TemplateURL must be a URL of an object in barged's S3: '%s'", url);
        struct barge_error *e = NULL;
        if (barge_api_s3_object_read(ctx->srv, bucket, key, MAX_TEMPLATE_URL, body, &len, &e) < 0) {
            barge_cfn_error(
                err, "Error occurred while GetObject. S3 Error Code: %s. S3 Error Message: %s",
                e->type ? e->type : "NoSuchKey", e->message);
            barge_error_free(e);
            return -1;
        }
    } else {
        len = strlen(text);
        if (len > MAX_TEMPLATE_BODY)
            return barge_cfn_error(err,
                                   "1 validation error detected: Value at 'templateBody' failed to "
                                   "satisfy constraint: Member must have length less than or equal "
                                   "to %d",
                                   MAX_TEMPLATE_BODY);
        *body = barge_xstrdup(text);
    }
    if (barge_cfn_template_parse(*body, len, tpl, err) < 0) {
        free(barge_steal(body));
        return -1;
    }
    return 0;
}

static bool iam_type(const char *type)
{
    return barge_str_has_prefix(type, "AWS::IAM::");
}

/* The capabilities tpl needs: CAPABILITY_IAM for IAM resources,
 * CAPABILITY_NAMED_IAM when they carry custom names. NULL when none. */
static const char *capability_needed(const json_t *tpl)
{
    const char *need = NULL;
    const char *k;
    json_t *r;
    json_object_foreach(json_object_get(tpl, "Resources"), k, r)
    {
        const char *type = barge_json_str(r, "Type", "");
        if (!iam_type(type))
            continue;
        json_t *p = json_object_get(r, "Properties");
        if (json_object_get(p, "RoleName") || json_object_get(p, "ManagedPolicyName") ||
            json_object_get(p, "UserName") || json_object_get(p, "GroupName"))
            return "CAPABILITY_NAMED_IAM";
        need = "CAPABILITY_IAM";
    }
    return need;
}

static int check_capabilities(const json_t *in, const json_t *tpl, struct barge_error **err)
{
    const char *need = capability_needed(tpl);
    if (!need)
        return 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(in, "Capabilities"), i, c)
    {
        const char *have = json_string_value(c);
        if (barge_streq(have, need) || barge_streq(have, "CAPABILITY_NAMED_IAM"))
            return 0;
    }
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InsufficientCapabilitiesException",
                                "Requires capabilities : [%s]", need);
}

/* The access key a stack acts with: with a service role (RoleARN, which must
 * name a role of barged's IAM), CloudFormation's own rights, which in barge
 * are the admin key's; without one, the caller's. */
static int acting_key(struct barge_api_ctx *ctx, const char *role_arn, char akid[129],
                      struct barge_error **err)
{
    snprintf(akid, 129, "%s", ctx->who.access_key_id);
    if (!role_arn)
        return 0;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *role = NULL, *meta = NULL;
    const char *slash = strrchr(role_arn, '/');
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        (slash && barge_api_iam_role_get(tx, slash + 1, &role, err) < 0) ||
        barge_store_get(tx, "meta", "admin-key", &meta, err) < 0)
        return -1;
    if (!role || !barge_streq(barge_json_str(role, "Arn", NULL), role_arn))
        return barge_cfn_error(err, "Role %s is invalid or cannot be assumed", role_arn);
    snprintf(akid, 129, "%s", barge_json_str(meta, "accessKeyId", ""));
    return 0;
}

/* Reads the SSM parameter name for an AWS::SSM::Parameter::Value<> type,
 * with the rights the stack acts with. */
static int ssm_value(struct barge_api_ctx *ctx, const char *akid, const char *name, char **value,
                     struct barge_error **err)
{
    const struct barge_api_op *op = barge_api_find_op(&barge_api_ssm, "GetParameter");
    struct barge_api_ctx sub = *ctx;
    snprintf(sub.who.access_key_id, sizeof sub.who.access_key_id, "%s", akid);
    sub.service = &barge_api_ssm;
    sub.operation = "GetParameter";
    _cleanup_json_ json_t *in = json_pack("{s:s}", "Name", name), *out = NULL;
    struct barge_error *e = NULL;
    if (!op || op->handler(&sub, in, &out, &e) < 0) {
        if (e)
            barge_error_free(e);
        return barge_cfn_error(
            err, "Unable to fetch parameters [%s] from parameter store for this account.", name);
    }
    *value = barge_xstrdup(barge_json_str(json_object_get(out, "Parameter"), "Value", ""));
    return 0;
}

/* Fills doc's template, parameter values and listed Parameters for tpl with
 * in's Parameters (prev: the stack's earlier values). */
static int prepare(struct barge_api_ctx *ctx, json_t *doc, const json_t *in, const json_t *prev,
                   json_t *tpl, const char *body, struct barge_error **err)
{
    _cleanup_json_ json_t *values = NULL, *listed = NULL;
    if (barge_cfn_parameters(tpl, json_object_get(in, "Parameters"), prev, &values, &listed, err) <
        0)
        return -1;
    json_t *resolved = json_object();
    json_object_set_new(doc, "resolved", resolved);
    size_t i;
    json_t *p;
    json_array_foreach(listed, i, p)
    {
        const char *key = barge_json_str(p, "ParameterKey", "");
        const char *type =
            barge_json_str(json_object_get(json_object_get(tpl, "Parameters"), key), "Type", "");
        if (!barge_str_has_prefix(type, "AWS::SSM::Parameter::Value<"))
            continue;
        _cleanup_free_ char *v = NULL;
        if (ssm_value(ctx, barge_json_str(doc, "akid", ""), barge_json_str(values, key, ""), &v,
                      err) < 0)
            return -1;
        json_object_set_new(resolved, key, json_string(v));
        json_object_set_new(p, "ResolvedValue", json_string(v));
    }
    json_object_set(doc, "template", tpl);
    json_object_set_new(doc, "templateBody", json_string(body));
    json_object_set(doc, "paramValues", values);
    json_object_set(doc, "Parameters", listed);
    json_t *desc = json_object_get(tpl, "Description");
    if (json_is_string(desc))
        json_object_set(doc, "Description", desc);
    else
        json_object_del(doc, "Description");
    /* Cycles and unresolved references are refused now, as AWS does. */
    _cleanup_json_ json_t *order = NULL, *conds = NULL;
    _cleanup_json_ json_t *pv = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(values, k, v)
    {
        const char *type =
            barge_json_str(json_object_get(json_object_get(tpl, "Parameters"), k), "Type", "");
        const char *r = barge_json_str(resolved, k, json_string_value(v));
        json_object_set_new(pv, k, barge_cfn_param_value(type, r));
    }
    struct barge_cfn_eval ev = {.params = pv,
                                .mappings = json_object_get(tpl, "Mappings"),
                                .region = barge_server_region(ctx->srv),
                                .account = ctx->srv->cfg.account_id,
                                .stack_name = barge_json_str(doc, "StackName", ""),
                                .stack_id = barge_json_str(doc, "StackId", "")};
    if (barge_cfn_conditions(&ev, tpl, &conds, err) < 0 ||
        barge_cfn_order(tpl, conds, &order, err) < 0)
        return -1;
    barge_cfn_values_seal(ctx->srv, tpl, values);
    return 0;
}

static json_t *new_stack(struct barge_api_ctx *ctx, const char *name, const json_t *in)
{
    char uuid[37];
    barge_id_uuid(uuid);
    _cleanup_free_ char *id =
        barge_xasprintf("arn:aws:cloudformation:%s:%s:stack/%s/%s", barge_server_region(ctx->srv),
                        ctx->srv->cfg.account_id, name, uuid);
    json_t *doc = json_pack("{s:s, s:s, s:f, s:o, s:s, s:o}", "StackId", id, "StackName", name,
                            "CreationTime", barge_now(), "resources", json_object(), "akid",
                            ctx->who.access_key_id, "Outputs", json_array());
    static const char *const copy[] = {"Tags",    "Capabilities",     "DisableRollback",
                                       "RoleARN", "NotificationARNs", "TimeoutInMinutes"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(in, copy[i]);
        if (v)
            json_object_set(doc, copy[i], v);
    }
    if (!json_object_get(doc, "DisableRollback"))
        json_object_set_new(doc, "DisableRollback", json_false());
    json_object_set_new(doc, "EnableTerminationProtection",
                        json_boolean(barge_json_bool(in, "EnableTerminationProtection", false)));
    return doc;
}

/* Records op (CREATE, UPDATE, DELETE) as the stack's pending work, with its
 * first status and the stack's own event, and wakes the control loop. */
static int start(struct barge_api_ctx *ctx, struct barge_tx *tx, json_t *doc, const char *op,
                 const char *status, struct barge_error **err)
{
    json_object_set_new(doc, "pending", json_pack("{s:s}", "op", op));
    json_object_set_new(doc, "StackStatus", json_string(status));
    json_object_del(doc, "StackStatusReason");
    if (strcmp(op, "CREATE") != 0)
        json_object_set_new(doc, "LastUpdatedTime", json_real(barge_now()));
    if (barge_store_put(tx, CFN_KIND_STACK, barge_json_str(doc, "StackId", ""), doc, err) < 0 ||
        barge_cfn_event_add(tx, doc, barge_json_str(doc, "StackName", ""),
                            barge_json_str(doc, "StackId", ""), "AWS::CloudFormation::Stack",
                            status, "User Initiated", err) < 0 ||
        barge_store_commit(tx, err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    return 0;
}

static int create_stack(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    const char *name = barge_json_str(in, "StackName", "");
    if (!stack_name_ok(name))
        return barge_cfn_error(
            err,
            "1 validation error detected: Value '%s' at 'stackName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z][-a-zA-Z0-9]*",
            name);
    _cleanup_free_ char *body = NULL;
    _cleanup_json_ json_t *tpl = NULL, *doc = new_stack(ctx, name, in), *old = NULL;
    char akid[129];
    if (acting_key(ctx, barge_json_str(in, "RoleARN", NULL), akid, err) < 0)
        return -1;
    json_object_set_new(doc, "akid", json_string(akid));
    if (template_of(ctx, in, NULL, &body, &tpl, err) < 0 || check_capabilities(in, tpl, err) < 0 ||
        prepare(ctx, doc, in, NULL, tpl, body, err) < 0)
        return -1;
    if (json_object_get(in, "OnFailure")) {
        const char *of = barge_json_str(in, "OnFailure", "");
        json_object_set_new(doc, "DisableRollback", json_boolean(!strcmp(of, "DO_NOTHING")));
        json_object_set_new(doc, "onFailure", json_string(of));
    }
    struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int n = stack_find(tx, name, &old, err);
    if (n != 0) {
        barge_store_abort(tx);
        return n < 0 ? -1
                     : barge_error_set_type(err, BARGE_ERR_EXISTS, "AlreadyExistsException",
                                            "Stack [%s] already exists", name);
    }
    if (start(ctx, tx, doc, "CREATE", "CREATE_IN_PROGRESS", err) < 0)
        return -1;
    *out = json_pack("{s:O}", "StackId", json_object_get(doc, "StackId"));
    return 0;
}

static bool updatable(const char *status)
{
    static const char *const ok[] = {"CREATE_COMPLETE", "UPDATE_COMPLETE",
                                     "UPDATE_ROLLBACK_COMPLETE"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(ok); i++)
        if (!strcmp(status, ok[i]))
            return true;
    return false;
}

/* Whether the parameter values of a and b (stack documents or their next)
 * differ; NoEcho ones are compared opened. */
static bool values_differ(struct barge_server *srv, const json_t *a, const json_t *b)
{
    _cleanup_error_ struct barge_error *e1 = NULL, *e2 = NULL;
    _cleanup_json_ json_t *x = barge_cfn_values_open(srv, json_object_get(a, "paramValues"), &e1);
    _cleanup_json_ json_t *y = barge_cfn_values_open(srv, json_object_get(b, "paramValues"), &e2);
    return !x || !y || !json_equal(x, y);
}

/* Whether the new template and parameters in next differ from doc's. */
static bool changed(struct barge_server *srv, const json_t *doc, const json_t *next)
{
    return !json_equal(json_object_get(doc, "template"), json_object_get(next, "template")) ||
           values_differ(srv, doc, next) ||
           !json_equal(json_object_get(doc, "resolved"), json_object_get(next, "resolved"));
}

/* The update of doc to the template and parameters of in, as the stack's
 * "next" (what the engine moves to). */
static int next_of(struct barge_api_ctx *ctx, const json_t *doc, const json_t *in, json_t **next,
                   struct barge_error **err)
{
    _cleanup_free_ char *body = NULL;
    _cleanup_json_ json_t *tpl = NULL, *prev = NULL;
    json_t *n = json_pack("{s:O, s:O}", "StackName", json_object_get(doc, "StackName"), "StackId",
                          json_object_get(doc, "StackId"));
    char akid[129];
    const char *role = barge_json_str(in, "RoleARN", barge_json_str(doc, "RoleARN", NULL));
    if (acting_key(ctx, role, akid, err) < 0) {
        json_decref(n);
        return -1;
    }
    json_object_set_new(n, "akid", json_string(akid));
    if (template_of(ctx, in, doc, &body, &tpl, err) < 0 || check_capabilities(in, tpl, err) < 0 ||
        !(prev = barge_cfn_values_open(ctx->srv, json_object_get(doc, "paramValues"), err)) ||
        prepare(ctx, n, in, prev, tpl, body, err) < 0) {
        json_decref(n);
        return -1;
    }
    static const char *const copy[] = {"Tags", "Capabilities", "RoleARN"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(in, copy[i]);
        if (v)
            json_object_set(n, copy[i], v);
    }
    *next = n;
    return 0;
}

static int update_stack(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    const char *ident = barge_json_str(in, "StackName", "");
    _cleanup_json_ json_t *doc = NULL, *next = NULL;
    {
        _cleanup_tx_ struct barge_tx *rtx = NULL;
        if (barge_store_begin(ctx->srv->store, false, &rtx, err) < 0 ||
            stack_get(rtx, ident, &doc, err) < 0)
            return -1;
    }
    const char *status = barge_json_str(doc, "StackStatus", "");
    if (!updatable(status))
        return barge_cfn_error(err, "Stack:%s is in %s state and can not be updated.",
                               barge_json_str(doc, "StackId", ""), status);
    if (next_of(ctx, doc, in, &next, err) < 0)
        return -1;
    if (!changed(ctx->srv, doc, next))
        return barge_cfn_error(err, "No updates are to be performed.");
    struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cur = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    if (stack_get(tx, barge_json_str(doc, "StackId", ""), &cur, err) < 0 ||
        !updatable(barge_json_str(cur, "StackStatus", ""))) {
        barge_store_abort(tx);
        return *err ? -1
                    : barge_cfn_error(err, "Stack:%s is in %s state and can not be updated.",
                                      barge_json_str(doc, "StackId", ""),
                                      barge_json_str(cur, "StackStatus", ""));
    }
    if (json_object_get(in, "DisableRollback"))
        json_object_set(cur, "DisableRollback", json_object_get(in, "DisableRollback"));
    json_object_set(cur, "next", next);
    if (start(ctx, tx, cur, "UPDATE", "UPDATE_IN_PROGRESS", err) < 0)
        return -1;
    *out = json_pack("{s:O}", "StackId", json_object_get(cur, "StackId"));
    return 0;
}

/* A stack that never got further than REVIEW_IN_PROGRESS has nothing to
 * remove: it is gone at once. */
static int delete_now(struct barge_tx *tx, json_t *doc, struct barge_error **err)
{
    json_object_set_new(doc, "StackStatus", json_string("DELETE_COMPLETE"));
    json_object_set_new(doc, "DeletionTime", json_real(barge_now()));
    return barge_store_put(tx, CFN_KIND_STACK, barge_json_str(doc, "StackId", ""), doc, err) < 0 ||
                   barge_cfn_event_add(tx, doc, barge_json_str(doc, "StackName", ""),
                                       barge_json_str(doc, "StackId", ""),
                                       "AWS::CloudFormation::Stack", "DELETE_COMPLETE", NULL,
                                       err) < 0
               ? -1
               : 0;
}

static int delete_stack(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    const char *ident = barge_json_str(in, "StackName", "");
    struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int n = stack_find(tx, ident, &doc, err);
    const char *status = barge_json_str(doc, "StackStatus", "");
    /* Deleting what is not there (or gone already) succeeds, as on AWS. */
    if (n <= 0 || !strcmp(status, "DELETE_COMPLETE") || !strcmp(status, "DELETE_IN_PROGRESS")) {
        barge_store_abort(tx);
        return n < 0 ? -1 : 0;
    }
    if (barge_json_bool(doc, "EnableTerminationProtection", false)) {
        barge_store_abort(tx);
        return barge_cfn_error(
            err, "Stack [%s] cannot be deleted while TerminationProtection is enabled",
            barge_json_str(doc, "StackName", ""));
    }
    if (in_progress(status)) {
        barge_store_abort(tx);
        return barge_cfn_error(err, "Stack [%s] is in %s state and can not be deleted now",
                               barge_json_str(doc, "StackName", ""), status);
    }
    if (json_object_get(in, "RetainResources"))
        json_object_set(doc, "retain", json_object_get(in, "RetainResources"));
    if (!strcmp(status, "REVIEW_IN_PROGRESS")) {
        if (delete_now(tx, doc, err) < 0 || barge_store_commit(tx, err) < 0)
            return -1;
        return 0;
    }
    return start(ctx, tx, doc, "DELETE", "DELETE_IN_PROGRESS", err);
}

/* --- describing -------------------------------------------------------------- */

/* The Stack shape of doc: the internal members left out. New reference. */
static json_t *stack_view(const json_t *doc)
{
    json_t *v = json_object();
    static const char *const keep[] = {"StackId",
                                       "StackName",
                                       "Description",
                                       "Parameters",
                                       "CreationTime",
                                       "DeletionTime",
                                       "LastUpdatedTime",
                                       "StackStatus",
                                       "StackStatusReason",
                                       "DisableRollback",
                                       "NotificationARNs",
                                       "TimeoutInMinutes",
                                       "Capabilities",
                                       "Outputs",
                                       "RoleARN",
                                       "Tags",
                                       "EnableTerminationProtection",
                                       "ChangeSetId"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keep); i++) {
        json_t *x = json_object_get(doc, keep[i]);
        if (x && !(json_is_array(x) && !json_array_size(x) && !strcmp(keep[i], "Outputs")))
            json_object_set(v, keep[i], x);
    }
    json_object_set_new(v, "DriftInformation",
                        json_pack("{s:s}", "StackDriftStatus", "NOT_CHECKED"));
    return v;
}

static int add_live(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (!barge_streq(barge_json_str(doc, "StackStatus", ""), "DELETE_COMPLETE"))
        json_array_append_new(ud, stack_view(doc));
    return 0;
}

static int describe_stacks(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    json_t *list = json_array();
    *out = json_pack("{s:o}", "Stacks", list);
    const char *ident = barge_json_str(in, "StackName", NULL);
    if (!ident)
        return barge_store_scan(tx, CFN_KIND_STACK, "", NULL, false, 0, add_live, list, err);
    _cleanup_json_ json_t *doc = NULL;
    if (stack_get(tx, ident, &doc, err) < 0) {
        json_decref(barge_steal(out));
        return -1;
    }
    json_array_append_new(list, stack_view(doc));
    return 0;
}

struct list_ctx {
    json_t *list;
    const json_t *filter;
};

static int add_summary(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct list_ctx *l = ud;
    const char *status = barge_json_str(doc, "StackStatus", "");
    if (json_array_size(l->filter)) {
        bool ok = false;
        size_t i;
        json_t *f;
        json_array_foreach(l->filter, i, f) if (barge_streq(json_string_value(f), status)) ok =
            true;
        if (!ok)
            return 0;
    }
    json_t *s = json_object();
    static const char *const keep[] = {"StackId",          "StackName",       "StackStatus",
                                       "CreationTime",     "LastUpdatedTime", "DeletionTime",
                                       "StackStatusReason"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keep); i++)
        if (json_object_get(doc, keep[i]))
            json_object_set(s, keep[i], json_object_get(doc, keep[i]));
    if (json_object_get(doc, "Description"))
        json_object_set(s, "TemplateDescription", json_object_get(doc, "Description"));
    json_array_append_new(l->list, s);
    return 0;
}

static int list_stacks(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    struct list_ctx l = {json_array(), json_object_get(in, "StackStatusFilter")};
    *out = json_pack("{s:o}", "StackSummaries", l.list);
    return barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
                   barge_store_scan(tx, CFN_KIND_STACK, "", NULL, false, 0, add_summary, &l, err) <
                       0
               ? -1
               : 0;
}

static int add_event(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append(ud, doc);
    return 0;
}

static int describe_stack_events(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        stack_get(tx, barge_json_str(in, "StackName", ""), &doc, err) < 0)
        return -1;
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", barge_json_str(doc, "StackId", ""));
    json_t *list = json_array();
    *out = json_pack("{s:o}", "StackEvents", list);
    /* Newest first, as CloudFormation lists them. */
    return barge_store_scan(tx, CFN_KIND_EVENT, prefix, NULL, true, 0, add_event, list, err);
}

/* A resource's entry in the shape kind (StackResource, StackResourceSummary,
 * StackResourceDetail). */
static json_t *resource_view(const json_t *doc, const char *logical, const json_t *r,
                             const char *kind)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:o}", "LogicalResourceId", logical, "ResourceType",
                          barge_json_str(r, "type", ""), "ResourceStatus",
                          barge_json_str(r, "status", ""), "DriftInformation",
                          json_pack("{s:s}", "StackResourceDriftStatus", "NOT_CHECKED"));
    if (json_object_get(r, "physical"))
        json_object_set(v, "PhysicalResourceId", json_object_get(r, "physical"));
    if (json_object_get(r, "reason"))
        json_object_set(v, "ResourceStatusReason", json_object_get(r, "reason"));
    json_t *when = json_object_get(r, "time");
    json_object_set(v, strcmp(kind, "StackResource") ? "LastUpdatedTimestamp" : "Timestamp", when);
    if (strcmp(kind, "StackResourceSummary") != 0) {
        json_object_set(v, "StackId", json_object_get(doc, "StackId"));
        json_object_set(v, "StackName", json_object_get(doc, "StackName"));
    }
    return v;
}

static int resources_of(struct barge_api_ctx *ctx, const char *ident, json_t **doc,
                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    return barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
                   stack_get(tx, ident, doc, err) < 0
               ? -1
               : 0;
}

static int describe_stack_resources(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    const char *ident = barge_json_str(in, "StackName", NULL);
    if (!ident)
        return barge_cfn_error(err, "DescribeStackResources in barge needs StackName");
    _cleanup_json_ json_t *doc = NULL;
    if (resources_of(ctx, ident, &doc, err) < 0)
        return -1;
    const char *only = barge_json_str(in, "LogicalResourceId", NULL);
    json_t *list = json_array();
    const char *k;
    json_t *r;
    json_object_foreach(json_object_get(doc, "resources"), k, r) if (!only || !strcmp(only, k))
        json_array_append_new(list, resource_view(doc, k, r, "StackResource"));
    *out = json_pack("{s:o}", "StackResources", list);
    return 0;
}

static int list_stack_resources(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    _cleanup_json_ json_t *doc = NULL;
    if (resources_of(ctx, barge_json_str(in, "StackName", ""), &doc, err) < 0)
        return -1;
    json_t *list = json_array();
    const char *k;
    json_t *r;
    json_object_foreach(json_object_get(doc, "resources"), k, r)
        json_array_append_new(list, resource_view(doc, k, r, "StackResourceSummary"));
    *out = json_pack("{s:o}", "StackResourceSummaries", list);
    return 0;
}

static int describe_stack_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    _cleanup_json_ json_t *doc = NULL;
    if (resources_of(ctx, barge_json_str(in, "StackName", ""), &doc, err) < 0)
        return -1;
    const char *logical = barge_json_str(in, "LogicalResourceId", "");
    json_t *r = json_object_get(json_object_get(doc, "resources"), logical);
    if (!r)
        return barge_cfn_error(err, "Resource %s does not exist for stack %s", logical,
                               barge_json_str(doc, "StackName", ""));
    json_t *d = resource_view(doc, logical, r, "StackResourceDetail");
    json_object_set_new(d, "Metadata", json_string("{}"));
    *out = json_pack("{s:o}", "StackResourceDetail", d);
    return 0;
}

/* --- change sets -------------------------------------------------------------- */

struct cs_find {
    const char *stack_id, *name;
    json_t *found;
    json_t *list; /* when listing */
};

static int match_cs(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct cs_find *f = ud;
    if (!barge_streq(barge_json_str(doc, "StackId", ""), f->stack_id))
        return 0;
    if (f->list) {
        json_t *s = json_object();
        static const char *const keep[] = {"StackId",         "StackName",    "ChangeSetId",
                                           "ChangeSetName",   "Status",       "StatusReason",
                                           "ExecutionStatus", "CreationTime", "Description"};
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(keep); i++)
            if (json_object_get(doc, keep[i]))
                json_object_set(s, keep[i], json_object_get(doc, keep[i]));
        json_array_append_new(f->list, s);
        return 0;
    }
    if (barge_streq(barge_json_str(doc, "ChangeSetName", ""), f->name)) {
        f->found = json_deep_copy(doc);
        return 1;
    }
    return 0;
}

static int changeset_get(struct barge_tx *tx, const json_t *in, json_t **doc,
                         struct barge_error **err)
{
    const char *name = barge_json_str(in, "ChangeSetName", "");
    int n;
    if (barge_str_has_prefix(name, "arn:")) {
        n = barge_store_get(tx, CFN_KIND_CHANGESET, name, doc, err);
    } else {
        const char *ident = barge_json_str(in, "StackName", NULL);
        if (!ident)
            return barge_cfn_error(
                err, "StackName must be specified if ChangeSetName is not specified as "
                     "an ARN.");
        _cleanup_json_ json_t *stack = NULL;
        n = stack_find(tx, ident, &stack, err);
        if (n > 0) {
            struct cs_find f = {barge_json_str(stack, "StackId", ""), name, NULL, NULL};
            n = barge_store_scan(tx, CFN_KIND_CHANGESET, "", NULL, false, 0, match_cs, &f, err);
            *doc = f.found;
            n = n < 0 ? -1 : f.found != NULL;
        }
    }
    if (n < 0)
        return -1;
    if (!n)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ChangeSetNotFound",
                                    "ChangeSet [%s] does not exist", name);
    return 0;
}

/* The Changes between the stack's template (none for a new stack) and the
 * change set's. */
static json_t *changes(struct barge_server *srv, const json_t *stack, const json_t *next)
{
    json_t *list = json_array();
    json_t *old = json_object_get(json_object_get(stack, "template"), "Resources");
    json_t *neu = json_object_get(json_object_get(next, "template"), "Resources");
    json_t *made = json_object_get(stack, "resources");
    bool params = values_differ(srv, stack, next);
    const char *k;
    json_t *r;
    json_object_foreach(neu, k, r)
    {
        json_t *o = json_object_get(old, k);
        const char *action = !o ? "Add" : !json_equal(o, r) || params ? "Modify" : NULL;
        if (!action)
            continue;
        json_t *rc =
            json_pack("{s:s, s:s, s:s, s:o}", "Action", action, "LogicalResourceId", k,
                      "ResourceType", barge_json_str(r, "Type", ""), "Scope", json_array());
        const char *phys = barge_json_str(json_object_get(made, k), "physical", NULL);
        if (o && phys)
            json_object_set_new(rc, "PhysicalResourceId", json_string(phys));
        if (o)
            json_object_set_new(rc, "Replacement",
                                json_string(barge_streq(barge_json_str(o, "Type", ""),
                                                        barge_json_str(r, "Type", ""))
                                                ? "Conditional"
                                                : "True"));
        json_array_append_new(list,
                              json_pack("{s:s, s:o}", "Type", "Resource", "ResourceChange", rc));
    }
    json_object_foreach(old, k, r)
    {
        if (json_object_get(neu, k))
            continue;
        json_t *rc =
            json_pack("{s:s, s:s, s:s, s:o}", "Action", "Remove", "LogicalResourceId", k,
                      "ResourceType", barge_json_str(r, "Type", ""), "Scope", json_array());
        const char *phys = barge_json_str(json_object_get(made, k), "physical", NULL);
        if (phys)
            json_object_set_new(rc, "PhysicalResourceId", json_string(phys));
        json_array_append_new(list,
                              json_pack("{s:s, s:o}", "Type", "Resource", "ResourceChange", rc));
    }
    return list;
}

static int create_change_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    const char *ident = barge_json_str(in, "StackName", "");
    const char *cs_name = barge_json_str(in, "ChangeSetName", "");
    const char *type = barge_json_str(in, "ChangeSetType", "UPDATE");
    if (!strcmp(type, "IMPORT"))
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "ValidationError",
                                    "ChangeSetType IMPORT is not supported by barge");
    if (!stack_name_ok(cs_name))
        return barge_cfn_error(
            err,
            "1 validation error detected: Value '%s' at 'changeSetName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z][-a-zA-Z0-9]*",
            cs_name);
    _cleanup_json_ json_t *stack = NULL, *next = NULL;
    {
        _cleanup_tx_ struct barge_tx *rtx = NULL;
        if (barge_store_begin(ctx->srv->store, false, &rtx, err) < 0 ||
            stack_find(rtx, ident, &stack, err) < 0)
            return -1;
    }
    bool fresh = false;
    if (!strcmp(type, "CREATE")) {
        if (stack && strcmp(barge_json_str(stack, "StackStatus", ""), "REVIEW_IN_PROGRESS") != 0)
            return barge_error_set_type(err, BARGE_ERR_EXISTS, "AlreadyExistsException",
                                        "Stack [%s] already exists and cannot be created again "
                                        "with the changeSet [%s].",
                                        ident, cs_name);
        if (!stack) {
            if (!stack_name_ok(ident))
                return barge_cfn_error(
                    err,
                    "1 validation error detected: Value '%s' at 'stackName' failed "
                    "to satisfy constraint: Member must satisfy regular expression "
                    "pattern: [a-zA-Z][-a-zA-Z0-9]*",
                    ident);
            stack = new_stack(ctx, ident, in);
            json_object_set_new(stack, "StackStatus", json_string("REVIEW_IN_PROGRESS"));
            fresh = true;
        }
    } else if (!stack) {
        return stack_missing(ident, err);
    } else if (!strcmp(barge_json_str(stack, "StackStatus", ""), "REVIEW_IN_PROGRESS")) {
        return barge_cfn_error(err, "Stack [%s] does not exist", ident);
    }
    if (next_of(ctx, stack, in, &next, err) < 0)
        return -1;
    char uuid[37];
    barge_id_uuid(uuid);
    _cleanup_free_ char *id =
        barge_xasprintf("arn:aws:cloudformation:%s:%s:changeSet/%s/%s",
                        barge_server_region(ctx->srv), ctx->srv->cfg.account_id, cs_name, uuid);
    json_t *list = changes(ctx->srv, stack, next);
    bool any = json_array_size(list) || changed(ctx->srv, stack, next);
    _cleanup_json_ json_t *cs = json_pack(
        "{s:s, s:s, s:O, s:O, s:s, s:s, s:s, s:f, s:o, s:o}", "ChangeSetId", id, "ChangeSetName",
        cs_name, "StackId", json_object_get(stack, "StackId"), "StackName",
        json_object_get(stack, "StackName"), "ChangeSetType", type, "Status",
        any || fresh || !strcmp(type, "CREATE") ? "CREATE_COMPLETE" : "FAILED", "ExecutionStatus",
        any || fresh || !strcmp(type, "CREATE") ? "AVAILABLE" : "UNAVAILABLE", "CreationTime",
        barge_now(), "Changes", list, "next", barge_steal(&next));
    json_object_set(cs, "Parameters", json_object_get(json_object_get(cs, "next"), "Parameters"));
    if (!(any || !strcmp(type, "CREATE")))
        json_object_set_new(cs, "StatusReason",
                            json_string("The submitted information didn't contain changes. Submit "
                                        "different information to create a change set."));
    static const char *const copy[] = {"Description", "Capabilities", "Tags"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++)
        if (json_object_get(in, copy[i]))
            json_object_set(cs, copy[i], json_object_get(in, copy[i]));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *again = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    if (fresh) {
        if (stack_find(tx, ident, &again, err) < 0)
            return -1;
        if (again)
            return barge_error_set_type(err, BARGE_ERR_EXISTS, "AlreadyExistsException",
                                        "Stack [%s] already exists", ident);
        if (barge_store_put(tx, CFN_KIND_STACK, barge_json_str(stack, "StackId", ""), stack, err) <
                0 ||
            barge_cfn_event_add(tx, stack, ident, barge_json_str(stack, "StackId", ""),
                                "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS",
                                "User Initiated", err) < 0)
            return -1;
    }
    if (barge_store_put(tx, CFN_KIND_CHANGESET, id, cs, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:s, s:O}", "Id", id, "StackId", json_object_get(stack, "StackId"));
    return 0;
}

static int describe_change_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    json_t *cs = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        changeset_get(tx, in, &cs, err) < 0)
        return -1;
    json_object_del(cs, "next");
    json_object_del(cs, "ChangeSetType");
    *out = cs;
    return 0;
}

static int list_change_sets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *stack = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        stack_get(tx, barge_json_str(in, "StackName", ""), &stack, err) < 0)
        return -1;
    struct cs_find f = {barge_json_str(stack, "StackId", ""), NULL, NULL, json_array()};
    *out = json_pack("{s:o}", "Summaries", f.list);
    return barge_store_scan(tx, CFN_KIND_CHANGESET, "", NULL, false, 0, match_cs, &f, err);
}

static int delete_change_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cs = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        changeset_get(tx, in, &cs, err) < 0)
        return -1;
    if (barge_streq(barge_json_str(cs, "ExecutionStatus", ""), "EXECUTE_IN_PROGRESS"))
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "InvalidChangeSetStatus",
                                    "Cannot delete ChangeSet in status EXECUTE_IN_PROGRESS");
    return barge_store_del(tx, CFN_KIND_CHANGESET, barge_json_str(cs, "ChangeSetId", ""), err) <
                       0 ||
                   barge_store_commit(barge_steal(&tx), err) < 0
               ? -1
               : 0;
}

static int execute_change_set(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cs = NULL, *stack = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    if (changeset_get(tx, in, &cs, err) < 0 ||
        stack_get(tx, barge_json_str(cs, "StackId", ""), &stack, err) < 0) {
        barge_store_abort(tx);
        return -1;
    }
    const char *exec = barge_json_str(cs, "ExecutionStatus", "");
    const char *status = barge_json_str(stack, "StackStatus", "");
    bool create = !strcmp(status, "REVIEW_IN_PROGRESS");
    if (strcmp(exec, "AVAILABLE") != 0 || (!create && !updatable(status))) {
        barge_store_abort(tx);
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "InvalidChangeSetStatus",
                                    "ChangeSet [%s] cannot be executed in its current status of "
                                    "[%s]",
                                    barge_json_str(cs, "ChangeSetId", ""),
                                    strcmp(exec, "AVAILABLE") ? exec : status);
    }
    json_object_set_new(cs, "ExecutionStatus", json_string("EXECUTE_IN_PROGRESS"));
    json_object_set(stack, "ChangeSetId", json_object_get(cs, "ChangeSetId"));
    if (json_object_get(in, "DisableRollback"))
        json_object_set(stack, "DisableRollback", json_object_get(in, "DisableRollback"));
    json_t *next = json_object_get(cs, "next");
    if (barge_store_put(tx, CFN_KIND_CHANGESET, barge_json_str(cs, "ChangeSetId", ""), cs, err) <
        0) {
        barge_store_abort(tx);
        return -1;
    }
    if (create) {
        const char *k;
        json_t *v;
        json_object_foreach(next, k, v) json_object_set(stack, k, v);
        if (start(ctx, tx, stack, "CREATE", "CREATE_IN_PROGRESS", err) < 0)
            return -1;
    } else {
        json_object_set(stack, "next", next);
        if (start(ctx, tx, stack, "UPDATE", "UPDATE_IN_PROGRESS", err) < 0)
            return -1;
    }
    return 0;
}

/* --- templates and exports ---------------------------------------------------- */

static int get_template(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    if (json_object_get(in, "ChangeSetName")) {
        if (changeset_get(tx, in, &doc, err) < 0)
            return -1;
        *out = json_pack("{s:O, s:[s,s]}", "TemplateBody",
                         json_object_get(json_object_get(doc, "next"), "templateBody"),
                         "StagesAvailable", "Original", "Processed");
        return 0;
    }
    if (stack_get(tx, barge_json_str(in, "StackName", ""), &doc, err) < 0)
        return -1;
    json_t *body = json_object_get(doc, "templateBody");
    *out = json_pack("{s:O, s:[s,s]}", "TemplateBody", body ? body : json_string(""),
                     "StagesAvailable", "Original", "Processed");
    return 0;
}

/* The parameter declarations of tpl as shape "ParameterDeclaration" or
 * "TemplateParameter". */
static json_t *declarations(const json_t *tpl, bool full)
{
    json_t *list = json_array();
    const char *k;
    json_t *d;
    json_object_foreach(json_object_get(tpl, "Parameters"), k, d)
    {
        json_t *p = json_pack("{s:s, s:b}", "ParameterKey", k, "NoEcho",
                              json_is_true(json_object_get(d, "NoEcho")) ||
                                  barge_streq(barge_json_str(d, "NoEcho", ""), "true"));
        json_t *dflt = json_object_get(d, "Default");
        if (json_is_string(dflt))
            json_object_set(p, "DefaultValue", dflt);
        else if (json_is_number(dflt))
            json_object_set_new(p, "DefaultValue",
                                json_is_integer(dflt)
                                    ? json_sprintf("%lld", (long long)json_integer_value(dflt))
                                    : json_sprintf("%g", json_real_value(dflt)));
        if (json_is_string(json_object_get(d, "Description")))
            json_object_set(p, "Description", json_object_get(d, "Description"));
        if (full) {
            json_object_set_new(p, "ParameterType",
                                json_string(barge_json_str(d, "Type", "String")));
            json_t *allowed = json_object_get(d, "AllowedValues");
            if (json_is_array(allowed))
                json_object_set_new(p, "ParameterConstraints",
                                    json_pack("{s:O}", "AllowedValues", allowed));
        }
        json_array_append_new(list, p);
    }
    return list;
}

static int summary_source(struct barge_api_ctx *ctx, json_t *in, json_t **tpl,
                          struct barge_error **err)
{
    const char *ident = barge_json_str(in, "StackName", NULL);
    if (ident) {
        _cleanup_json_ json_t *doc = NULL;
        if (resources_of(ctx, ident, &doc, err) < 0)
            return -1;
        *tpl = json_incref(json_object_get(doc, "template"));
        return 0;
    }
    _cleanup_free_ char *body = NULL;
    return template_of(ctx, in, NULL, &body, tpl, err);
}

static void add_capabilities(json_t *out, const json_t *tpl)
{
    const char *need = capability_needed(tpl);
    if (!need)
        return;
    json_object_set_new(out, "Capabilities", json_pack("[s]", need));
    json_object_set_new(out, "CapabilitiesReason",
                        json_string("The following resource(s) require capabilities: "
                                    "[AWS::IAM::*]"));
}

static int get_template_summary(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    _cleanup_json_ json_t *tpl = NULL;
    if (summary_source(ctx, in, &tpl, err) < 0)
        return -1;
    json_t *types = json_array();
    _cleanup_json_ json_t *seen = json_object();
    const char *k;
    json_t *r;
    json_object_foreach(json_object_get(tpl, "Resources"), k, r)
    {
        const char *t = barge_json_str(r, "Type", "");
        if (!json_object_get(seen, t)) {
            json_object_set_new(seen, t, json_true());
            json_array_append_new(types, json_string(t));
        }
    }
    *out = json_pack("{s:o, s:o}", "Parameters", declarations(tpl, true), "ResourceTypes", types);
    if (json_is_string(json_object_get(tpl, "Description")))
        json_object_set(*out, "Description", json_object_get(tpl, "Description"));
    json_t *version = json_object_get(tpl, "AWSTemplateFormatVersion");
    json_object_set_new(
        *out, "Version",
        json_string(json_is_string(version) ? json_string_value(version) : "2010-09-09"));
    if (json_object_get(tpl, "Metadata")) {
        _cleanup_free_ char *m = barge_json_dump(json_object_get(tpl, "Metadata"));
        json_object_set_new(*out, "Metadata", json_string(m));
    }
    add_capabilities(*out, tpl);
    return 0;
}

static int validate_template(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    _cleanup_free_ char *body = NULL;
    _cleanup_json_ json_t *tpl = NULL;
    if (template_of(ctx, in, NULL, &body, &tpl, err) < 0)
        return -1;
    _cleanup_json_ json_t *order = NULL, *conds = json_object();
    const char *k;
    json_t *c;
    /* Every condition counted true: the check is of references, not values. */
    json_object_foreach(json_object_get(tpl, "Conditions"), k, c)
        json_object_set_new(conds, k, json_true());
    if (barge_cfn_order(tpl, conds, &order, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "Parameters", declarations(tpl, false));
    if (json_is_string(json_object_get(tpl, "Description")))
        json_object_set(*out, "Description", json_object_get(tpl, "Description"));
    add_capabilities(*out, tpl);
    return 0;
}

static int add_export(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append(ud, doc);
    return 0;
}

static int list_exports(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    json_t *list = json_array();
    *out = json_pack("{s:o}", "Exports", list);
    return barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
                   barge_store_scan(tx, CFN_KIND_EXPORT, "", NULL, false, 0, add_export, list,
                                    err) < 0
               ? -1
               : 0;
}

static const struct barge_api_op cfn_ops[] = {
    {"CreateStack", create_stack},
    {"UpdateStack", update_stack},
    {"DeleteStack", delete_stack},
    {"DescribeStacks", describe_stacks},
    {"ListStacks", list_stacks},
    {"DescribeStackEvents", describe_stack_events},
    {"DescribeStackResources", describe_stack_resources},
    {"DescribeStackResource", describe_stack_resource},
    {"ListStackResources", list_stack_resources},
    {"CreateChangeSet", create_change_set},
    {"DescribeChangeSet", describe_change_set},
    {"ExecuteChangeSet", execute_change_set},
    {"DeleteChangeSet", delete_change_set},
    {"ListChangeSets", list_change_sets},
    {"GetTemplate", get_template},
    {"GetTemplateSummary", get_template_summary},
    {"ValidateTemplate", validate_template},
    {"ListExports", list_exports},
    {NULL, NULL},
};

static const struct barge_api_op *const cfn_op_tables[] = {cfn_ops, NULL};

const struct barge_api_service barge_api_cloudformation = {
    .model = "cloudformation",
    .message_key = "Message",
    .invalid_type = "ValidationError",
    .client_type = "ValidationError",
    .server_type = "InternalFailure",
    .not_found_type = "ValidationError",
    .op_tables = cfn_op_tables,
};
