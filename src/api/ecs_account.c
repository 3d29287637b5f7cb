/* ECS account settings: PutAccountSetting, PutAccountSettingDefault,
 * ListAccountSettings and DeleteAccountSetting. A setting belongs to a
 * principal (an IAM user or role of this account, or the account's root, whose
 * settings are the account defaults). What applies to a principal is its own
 * setting, else the account default, else AWS's built-in default. Stored as
 * kind "acctsetting", key "<principalArn>|<name>", so a principal's settings
 * are one prefix scan away. barge records the settings and answers them as ECS
 * does; the behaviour they switch (ARN formats, trunking, ...) is barge's own. */
#include <string.h>

#include "api/access.h"
#include "api/ecs.h"
#include "common/arn.h"
#include "common/json.h"

#define KIND "acctsetting"

struct setting_rule {
    const char *name;
    const char *dflt;      /* AWS's default for an account that never set it */
    const char *values[4]; /* the accepted values, NULL-terminated */
    bool default_only;     /* only for the root user (the account default) */
    bool read_only;        /* set by AWS (GuardDuty), never through the API */
};

/* In the order of the model's SettingName enum, which ListAccountSettings
 * follows when it shows the effective settings. */
static const struct setting_rule rules[] = {
    {"serviceLongArnFormat", "enabled", {"enabled", "disabled"}, false, false},
    {"taskLongArnFormat", "enabled", {"enabled", "disabled"}, false, false},
    {"containerInstanceLongArnFormat", "enabled", {"enabled", "disabled"}, false, false},
    {"awsvpcTrunking", "disabled", {"enabled", "disabled"}, false, false},
    {"containerInsights", "disabled", {"enabled", "disabled", "enhanced"}, false, false},
    {"fargateFIPSMode", "disabled", {"enabled", "disabled"}, true, false},
    {"tagResourceAuthorization", "on", {"on", "off"}, false, false},
    {"fargateTaskRetirementWaitPeriod", "7", {"0", "7", "14"}, true, false},
    {"guardDutyActivate", "off", {"on", "off"}, false, true},
    {"defaultLogDriverMode", "non-blocking", {"blocking", "non-blocking"}, false, false},
    {"fargateEventWindows", "disabled", {"enabled", "disabled"}, false, false},
};

static const struct setting_rule *find_rule(const char *name)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(rules); i++)
        if (barge_streq(rules[i].name, name))
            return &rules[i];
    return NULL;
}

static char *root_arn(const struct barge_server *srv)
{
    return barge_xasprintf("arn:aws:iam::%s:root", srv->cfg.account_id);
}

/* The principal a request is about: in[principalArn], checked to be a user,
 * role or the root of this account, or the caller. Caller frees. */
static char *principal(struct barge_api_ctx *ctx, const json_t *in, struct barge_error **err)
{
    const char *p = barge_json_str(in, "principalArn", NULL);
    if (!p)
        return barge_api_caller_arn(ctx->srv, &ctx->who);
    struct barge_arn a;
    bool ok = false;
    if (barge_arn_parse(p, &a) == 0) {
        ok = strcmp(a.service, "iam") == 0 && a.region[0] == '\0' &&
             (strcmp(a.resource, "root") == 0 ||
              (barge_str_has_prefix(a.resource, "user/") && a.resource[5]) ||
              (barge_str_has_prefix(a.resource, "role/") && a.resource[5]));
        bool ours = strcmp(a.account, ctx->srv->cfg.account_id) == 0;
        barge_arn_release(&a);
        if (ok && !ours) {
            barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                 "principalArn '%s' is not of account '%s'.", p,
                                 ctx->srv->cfg.account_id);
            return NULL;
        }
    }
    if (!ok) {
        barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                             "Invalid principalArn '%s': expected the ARN of an IAM user, an IAM "
                             "role or the root user.",
                             p);
        return NULL;
    }
    return barge_xstrdup(p);
}

static int check_value(const struct setting_rule *r, const char *value, bool as_default,
                       struct barge_error **err)
{
    if (r->read_only)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The '%s' setting is read-only; it cannot be changed.",
                                    r->name);
    if (r->default_only && !as_default)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The '%s' setting can only be changed for the root user: "
                                    "use PutAccountSettingDefault.",
                                    r->name);
    for (size_t i = 0; r->values[i]; i++)
        if (strcmp(r->values[i], value) == 0)
            return 0;
    _cleanup_free_ char *list = barge_xstrdup(r->values[0]);
    for (size_t i = 1; r->values[i]; i++) {
        char *more = barge_xasprintf("%s, %s", list, r->values[i]);
        free(list);
        list = more;
    }
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                "Invalid value '%s' for setting '%s'; valid values: [%s].", value,
                                r->name, list);
}

static json_t *setting_doc(const char *name, const char *value, const char *principal,
                           const char *type)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "name", name, "value", value, "principalArn",
                     principal, "type", type);
}

/* What applies to principal for rule r (new reference): its own setting, else
 * the account default, else AWS's. */
static int effective(struct barge_tx *tx, const struct barge_server *srv, const char *principal,
                     const struct setting_rule *r, json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *root = root_arn(srv);
    const char *who[] = {principal, root};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(who); i++) {
        _cleanup_free_ char *key = barge_xasprintf("%s|%s", who[i], r->name);
        json_t *doc = NULL;
        if (barge_store_get(tx, KIND, key, &doc, err) < 0)
            return -1;
        if (doc) {
            /* A default is reported for the principal asked about. */
            json_object_set_new(doc, "principalArn", json_string(principal));
            *out = doc;
            return 0;
        }
    }
    *out = setting_doc(r->name, r->dflt, principal, "aws_managed");
    return 0;
}

static int put_setting(struct barge_api_ctx *ctx, const char *who, const json_t *in,
                       bool as_default, json_t **out, struct barge_error **err)
{
    const char *name = barge_json_str(in, "name", "");
    const char *value = barge_json_str(in, "value", "");
    const struct setting_rule *r = find_rule(name);
    if (!r)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Unknown setting name '%s'.", name);
    if (check_value(r, value, as_default, err) < 0)
        return -1;
    _cleanup_json_ json_t *doc = setting_doc(name, value, who, "user");
    _cleanup_free_ char *key = barge_xasprintf("%s|%s", who, name);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_put(tx, KIND, key, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O}", "setting", doc);
    return 0;
}

static int put_account_setting(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    _cleanup_free_ char *who = principal(ctx, in, err);
    if (!who)
        return -1;
    /* ECS: naming the root user changes the account default. */
    _cleanup_free_ char *root = root_arn(ctx->srv);
    return put_setting(ctx, who, in, strcmp(who, root) == 0, out, err);
}

static int put_account_setting_default(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    _cleanup_free_ char *root = root_arn(ctx->srv);
    return put_setting(ctx, root, in, true, out, err);
}

static int delete_account_setting(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    const char *name = barge_json_str(in, "name", "");
    const struct setting_rule *r = find_rule(name);
    if (!r)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Unknown setting name '%s'.", name);
    if (r->read_only)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The '%s' setting is read-only; it cannot be changed.",
                                    r->name);
    _cleanup_free_ char *who = principal(ctx, in, err);
    if (!who)
        return -1;
    _cleanup_free_ char *key = barge_xasprintf("%s|%s", who, name);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND, key, &doc, err) < 0)
        return -1;
    if (!doc)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The '%s' setting is not set for principal '%s'.", name, who);
    if (barge_store_del(tx, KIND, key, err) < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O}", "setting", doc);
    return 0;
}

struct list_state {
    struct barge_api_page *pg;
    const char *name, *value;
};

static bool wanted(const struct list_state *ls, const json_t *s)
{
    return (!ls->name || barge_streq(barge_json_str(s, "name", NULL), ls->name)) &&
           (!ls->value || barge_streq(barge_json_str(s, "value", NULL), ls->value));
}

static int list_own(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct list_state *ls = ud;
    if (!wanted(ls, doc))
        return 0;
    return barge_api_page_add(ls->pg, key, json_incref(doc));
}

static int list_account_settings(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    struct list_state ls = {
        .pg = &pg,
        .name = barge_json_str(in, "name", NULL),
        .value = barge_json_str(in, "value", NULL),
    };
    if (ls.value && !ls.name)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "value '%s' can only be given together with name.", ls.value);
    if (barge_api_page_init(&pg, in, "maxResults", 10, 10, "nextToken", err) < 0)
        return -1;
    _cleanup_free_ char *who = principal(ctx, in, err);
    if (!who)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    if (json_is_true(json_object_get(in, "effectiveSettings"))) {
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(rules); i++) {
            char key[8];
            snprintf(key, sizeof(key), "%02zu", i);
            if (pg.after && strcmp(key, pg.after) <= 0)
                continue;
            json_t *s = NULL;
            if (effective(tx, ctx->srv, who, &rules[i], &s, err) < 0)
                return -1;
            if (!wanted(&ls, s)) {
                json_decref(s);
                continue;
            }
            if (barge_api_page_add(&pg, key, s))
                break;
        }
    } else {
        _cleanup_free_ char *prefix = barge_xasprintf("%s|", who);
        if (barge_store_scan(tx, KIND, prefix, pg.after, false, 0, list_own, &ls, err) < 0)
            return -1;
    }
    *out = json_object();
    barge_api_page_finish(&pg, *out, "settings", "nextToken");
    return 0;
}

const struct barge_api_op ecs_account_ops[] = {
    {"PutAccountSetting", put_account_setting},
    {"PutAccountSettingDefault", put_account_setting_default},
    {"DeleteAccountSetting", delete_account_setting},
    {"ListAccountSettings", list_account_settings},
    {NULL, NULL},
};
