/* SSM Parameter Store (AWS JSON 1.1, target prefix AmazonSSM): PutParameter,
 * GetParameter(s), GetParametersByPath, DescribeParameters,
 * DeleteParameter(s), GetParameterHistory and the parameter tag operations.
 *
 * Parameters live per region (the region of the caller's credential scope),
 * one document per parameter (kind "ssmparam", key "<region>|<name>") that
 * carries its whole history, at most 100 versions as AWS keeps. Every value,
 * of every type, is stored encrypted (crypto.h) and bound to its region, name
 * and version, so the database never holds one in the clear. SecureString
 * values leave barged decrypted only when the caller asks WithDecryption; else
 * the caller sees the opaque envelope, as AWS returns the KMS ciphertext. KMS
 * itself is not emulated: KeyId is recorded and reported, the master key
 * encrypts. */
#include <regex.h>
#include <string.h>
#include <strings.h>

#include "api/access.h"
#include "api/api.h"
#include "api/server.h"
#include "common/arn.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secretref.h"

#define KIND_PARAM        "ssmparam"
#define MAX_VERSIONS      100
#define MAX_DEPTH         15
#define MAX_NAME_LEN      1011
#define STANDARD_MAX_SIZE 4096
#define ADVANCED_MAX_SIZE 8192
#define MAX_TAGS          50
#define DEFAULT_KEY_ID    "alias/aws/ssm"

static int validation(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int validation(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationException", "%s", msg);
}

static const char NAME_RULES[] =
    "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed "
    "as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be "
    "formed as a mix of letters, numbers and the following 3 symbols .-_";

/* AWS's naming rules: letters, digits, ".-_" and "/" separators; a
 * hierarchical name starts with "/", has no empty level and at most 15
 * levels; no "aws"/"ssm" prefix. */
static int check_name(const char *name, struct barge_error **err)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAX_NAME_LEN)
        return validation(err, "%s; '%s' is %zu characters long (1 to %d allowed).", NAME_RULES,
                          name, len, MAX_NAME_LEN);
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") != len)
        return validation(err, "%s; '%s' is not a valid name.", NAME_RULES, name);
    const char *first = name[0] == '/' ? name + 1 : name;
    if (strncasecmp(first, "aws", 3) == 0 || strncasecmp(first, "ssm", 3) == 0)
        return validation(err, "%s; '%s' is not a valid name.", NAME_RULES, name);
    if (strchr(name, '/')) {
        if (name[0] != '/' || name[len - 1] == '/' || strstr(name, "//"))
            return validation(err, "%s; '%s' is not a valid name.", NAME_RULES, name);
        int depth = 0;
        for (const char *p = name; *p; p++)
            depth += *p == '/';
        if (depth > MAX_DEPTH)
            return barge_error_set_type(err, BARGE_ERR_INVALID,
                                        "HierarchyLevelLimitExceededException",
                                        "Parameter '%s' has %d levels; a parameter name can "
                                        "have at most %d levels.",
                                        name, depth, MAX_DEPTH);
    }
    return 0;
}

static char *param_key(const char *region, const char *name)
{
    return barge_xasprintf("%s|%s", region, name);
}

static char *value_aad(const char *region, const char *name, json_int_t version)
{
    return barge_xasprintf("ssm|%s|%s|%lld", region, name, (long long)version);
}

/* What a Get names: a parameter, optionally one version of it. */
struct ident {
    char *name;
    json_int_t version; /* 0: the latest */
    char *selector;     /* ":3" or ":label" as given, or NULL */
};

static void ident_release(struct ident *id)
{
    free(id->name);
    free(id->selector);
}

/* Parses "name", "name:version", "name:label" or the ARN forms of those. A
 * name that cannot exist (bad syntax, another region or account) gives 0:
 * the caller treats it as not found, as AWS does. */
static int parse_ident(const struct barge_api_ctx *ctx, const char *s, struct ident *out)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *name = NULL;
    if (barge_str_has_prefix(s, "arn:")) {
        struct barge_arn a;
        if (barge_arn_parse(s, &a) < 0)
            return 0;
        bool ok = strcmp(a.service, "ssm") == 0 && strcmp(a.region, ctx->who.region) == 0 &&
                  strcmp(a.account, ctx->srv->cfg.account_id) == 0 &&
                  barge_str_has_prefix(a.resource, "parameter/");
        if (ok) {
            const char *rest = a.resource + strlen("parameter/");
            /* "parameter/a/b" is "/a/b": the leading slash merged with the
             * separator; a flat name has no slash at all. */
            size_t n = strcspn(rest, ":");
            name = memchr(rest, '/', n) ? barge_xasprintf("/%.*s", (int)n, rest)
                                        : barge_xstrndup(rest, n);
            /* The selector is the tail of the input too; point there, not
             * into a, which is released below. */
            s += strlen(s) - strlen(rest + n);
        }
        barge_arn_release(&a);
        if (!ok)
            return 0;
    } else {
        size_t n = strcspn(s, ":");
        name = barge_xstrndup(s, n);
        s += n;
    }
    if (*s == ':') {
        out->selector = barge_xstrdup(s);
        const char *sel = s + 1;
        if (*sel && strspn(sel, "0123456789") == strlen(sel) && strlen(sel) < 12)
            out->version = atoll(sel);
        else
            out->version = -1; /* a label: barge keeps none */
    }
    struct barge_error *ignored = NULL;
    if (check_name(name, &ignored) < 0) {
        barge_error_free(ignored);
        free(out->selector);
        out->selector = NULL;
        return 0;
    }
    out->name = barge_steal(&name);
    return 1;
}

static json_t *history_entry(const json_t *doc, json_int_t version)
{
    size_t i;
    json_t *h;
    json_array_foreach(barge_json_array(doc, "history"), i, h)
    {
        if (barge_json_int(h, "Version", 0) == version)
            return h;
    }
    return NULL;
}

/* The value of history entry h as the caller may see it: plaintext, or the
 * envelope for a SecureString read without decryption. New reference. */
static json_t *render_value(const struct barge_api_ctx *ctx, const json_t *doc, const json_t *h,
                            bool decrypt, struct barge_error **err)
{
    const char *env = barge_json_str(h, "Value", "");
    if (barge_streq(barge_json_str(h, "Type", NULL), "SecureString") && !decrypt)
        return json_string(env);
    _cleanup_free_ char *aad =
        value_aad(barge_json_str(doc, "region", ""), barge_json_str(doc, "name", ""),
                  barge_json_int(h, "Version", 0));
    char *plain = NULL;
    size_t len = 0;
    if (barge_crypto_open(&ctx->srv->master_key, env, aad, &plain, &len, err) < 0)
        return NULL;
    json_t *v = json_stringn(plain, len);
    barge_crypto_free(plain, len);
    if (!v)
        barge_error_set(err, BARGE_ERR_INTERNAL, "parameter '%s' holds invalid UTF-8",
                        barge_json_str(doc, "name", ""));
    return v;
}

static char *doc_arn(const struct barge_api_ctx *ctx, const json_t *doc)
{
    return barge_ssm_parameter_arn(barge_json_str(doc, "region", ""), ctx->srv->cfg.account_id,
                                   barge_json_str(doc, "name", ""));
}

/* The Parameter shape of one version. New reference or NULL with err. */
static json_t *render_parameter(const struct barge_api_ctx *ctx, const json_t *doc, const json_t *h,
                                const char *selector, bool decrypt, struct barge_error **err)
{
    json_t *value = render_value(ctx, doc, h, decrypt, err);
    if (!value)
        return NULL;
    _cleanup_free_ char *arn = doc_arn(ctx, doc);
    json_t *p = json_pack(
        "{s:s, s:s, s:o, s:I, s:O, s:s, s:s}", "Name", barge_json_str(doc, "name", ""), "Type",
        barge_json_str(h, "Type", "String"), "Value", value, "Version",
        barge_json_int(h, "Version", 1), "LastModifiedDate", json_object_get(h, "LastModifiedDate"),
        "ARN", arn, "DataType", barge_json_str(h, "DataType", "text"));
    if (selector)
        json_object_set_new(p, "Selector", json_string(selector));
    return p;
}

static json_t *render_metadata(const struct barge_api_ctx *ctx, const json_t *doc)
{
    _cleanup_free_ char *arn = doc_arn(ctx, doc);
    json_t *m = json_pack(
        "{s:s, s:s, s:s, s:O, s:s, s:I, s:s, s:[], s:s}", "Name", barge_json_str(doc, "name", ""),
        "ARN", arn, "Type", barge_json_str(doc, "type", "String"), "LastModifiedDate",
        json_object_get(doc, "lastModifiedDate"), "LastModifiedUser",
        barge_json_str(doc, "lastModifiedUser", ""), "Version", barge_json_int(doc, "version", 1),
        "Tier", barge_json_str(doc, "tier", "Standard"), "Policies", "DataType",
        barge_json_str(doc, "dataType", "text"));
    barge_json_set_str(m, "KeyId", barge_json_str(doc, "keyId", NULL));
    barge_json_set_str(m, "Description", barge_json_str(doc, "description", NULL));
    barge_json_set_str(m, "AllowedPattern", barge_json_str(doc, "allowedPattern", NULL));
    return m;
}

static int load(struct barge_tx *tx, const char *region, const char *name, json_t **doc,
                struct barge_error **err)
{
    _cleanup_free_ char *key = param_key(region, name);
    return barge_store_get(tx, KIND_PARAM, key, doc, err);
}

static int not_found(struct barge_error **err, const char *name)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ParameterNotFound",
                                "Parameter '%s' not found.", name);
}

static int authorize_name(struct barge_api_ctx *ctx, const char *action, const char *name,
                          struct barge_error **err)
{
    _cleanup_free_ char *arn =
        barge_ssm_parameter_arn(ctx->who.region, ctx->srv->cfg.account_id, name);
    return barge_api_authorize(ctx->srv, &ctx->who, action, arn, err);
}

/* --- PutParameter -------------------------------------------------------- */

static int check_tags(const json_t *tags, struct barge_error **err)
{
    if (json_array_size(tags) > MAX_TAGS)
        return barge_error_set_type(err, BARGE_ERR_LIMIT, "TooManyTagsError",
                                    "A resource can have at most %d tags; %zu were given.",
                                    MAX_TAGS, json_array_size(tags));
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)tags, i, t)
    {
        const char *k = barge_json_str(t, "Key", "");
        if (strncasecmp(k, "aws:", 4) == 0)
            return validation(err, "Tag key '%s' is invalid: the 'aws:' prefix is reserved.", k);
    }
    return 0;
}

static int check_value(const char *value, const char *pattern, const char *tier,
                       struct barge_error **err)
{
    size_t len = strlen(value);
    if (len == 0)
        return validation(err, "1 validation error detected: Value at 'value' failed to "
                               "satisfy constraint: Member must have length greater than or "
                               "equal to 1");
    if (strcmp(tier, "Standard") == 0 && len > STANDARD_MAX_SIZE)
        return validation(err, "Standard tier parameters support a maximum parameter value of "
                               "4096 characters. To create a larger parameter value, upgrade "
                               "the parameter to use the advanced-parameter tier.");
    if (len > ADVANCED_MAX_SIZE)
        return validation(err, "Advanced tier parameters support a maximum parameter value of "
                               "8192 characters.");
    if (pattern && *pattern) {
        regex_t re;
        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidAllowedPatternException",
                                        "The allowed pattern '%s' is not a valid regular "
                                        "expression.",
                                        pattern);
        /* AWS matches the whole value against the pattern. */
        _cleanup_free_ char *anchored = barge_xasprintf("^(%s)$", pattern);
        regex_t full;
        bool ok = regcomp(&full, anchored, REG_EXTENDED | REG_NOSUB) == 0 &&
                  regexec(&full, value, 0, NULL, 0) == 0;
        regfree(&full);
        regfree(&re);
        if (!ok)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "ParameterPatternMismatchException",
                                        "Parameter value, cannot be validated against "
                                        "allowedPattern: %s",
                                        pattern);
    }
    return 0;
}

static int put_parameter(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    const char *name = barge_json_str(in, "Name", "");
    const char *value = barge_json_str(in, "Value", "");
    const char *type = barge_json_str(in, "Type", NULL);
    bool overwrite = barge_json_bool(in, "Overwrite", false);
    json_t *tags = barge_json_array(in, "Tags");
    if (barge_str_has_prefix(name, "arn:"))
        return validation(err,
                          "Parameter name must not be an ARN when you create or update a "
                          "parameter; '%s' was given.",
                          name);
    if (check_name(name, err) < 0 || authorize_name(ctx, "ssm:PutParameter", name, err) < 0)
        return -1;
    if (tags && overwrite)
        return validation(err, "Invalid request: tags and overwrite can't be used together. To "
                               "create a parameter with tags, please remove overwrite flag. To "
                               "update tags for an existing parameter, please use "
                               "AddTagsToResource or RemoveTagsFromResource.");
    if (tags && check_tags(tags, err) < 0)
        return -1;
    const char *data_type = barge_json_str(in, "DataType", "text");
    if (strcmp(data_type, "text") != 0 && strcmp(data_type, "aws:ec2:image") != 0 &&
        strcmp(data_type, "aws:ssm:integration") != 0)
        return validation(err,
                          "The following data type is not supported: %s (Data type names "
                          "can be text, aws:ec2:image or aws:ssm:integration)",
                          data_type);

    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(tx, ctx->who.region, name, &doc, err) < 0)
        return -1;
    if (doc && !overwrite)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "ParameterAlreadyExists",
                                    "The parameter already exists. To overwrite this request, "
                                    "set the overwrite option in the request to true.");
    if (!type)
        type = doc ? barge_json_str(doc, "type", "String") : NULL;
    if (!type)
        return validation(err, "A parameter type is required when you create a parameter.");
    const char *key_id = barge_json_str(in, "KeyId", NULL);
    if (key_id && strcmp(type, "SecureString") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidKeyId",
                                    "KeyId '%s' is only valid for SecureString parameters.",
                                    key_id);
    if (strcmp(type, "SecureString") == 0 && !key_id)
        key_id = doc && barge_json_str(doc, "keyId", NULL) ? barge_json_str(doc, "keyId", NULL)
                                                           : DEFAULT_KEY_ID;
    const char *tier = barge_json_str(in, "Tier", NULL);
    if (!tier)
        tier = doc ? barge_json_str(doc, "tier", "Standard") : "Standard";
    if (strcmp(tier, "Intelligent-Tiering") == 0)
        tier = strlen(value) > STANDARD_MAX_SIZE ? "Advanced" : "Standard";
    if (doc && strcmp(tier, "Standard") == 0 &&
        barge_streq(barge_json_str(doc, "tier", NULL), "Advanced"))
        return validation(err, "This parameter uses the advanced-parameter tier. You can't "
                               "downgrade a parameter from the advanced-parameter tier to the "
                               "standard-parameter tier.");
    const char *pattern = barge_json_str(in, "AllowedPattern", NULL);
    if (!pattern && doc)
        pattern = barge_json_str(doc, "allowedPattern", NULL);
    if (check_value(value, pattern, tier, err) < 0)
        return -1;

    /* Several of these point into doc, whose members are replaced below. */
    _cleanup_free_ char *type_c = barge_xstrdup(type);
    _cleanup_free_ char *key_id_c = key_id ? barge_xstrdup(key_id) : NULL;
    _cleanup_free_ char *tier_c = barge_xstrdup(tier);
    _cleanup_free_ char *pattern_c = pattern ? barge_xstrdup(pattern) : NULL;
    type = type_c;
    key_id = key_id_c;
    tier = tier_c;
    pattern = pattern_c;
    if (!doc) {
        doc = json_pack("{s:s, s:s, s:[], s:[], s:I}", "name", name, "region", ctx->who.region,
                        "history", "tags", "version", (json_int_t)0);
        if (tags)
            barge_api_tags_merge(doc, tags);
    }
    json_int_t version = barge_json_int(doc, "version", 0) + 1;
    double now = barge_now();
    _cleanup_free_ char *user = barge_api_caller_arn(ctx->srv, &ctx->who);
    _cleanup_free_ char *aad = value_aad(ctx->who.region, name, version);
    _cleanup_free_ char *sealed =
        barge_crypto_seal(&ctx->srv->master_key, value, strlen(value), aad);
    const char *desc_in = json_object_get(in, "Description")
                              ? barge_json_str(in, "Description", "")
                              : barge_json_str(doc, "description", NULL);
    _cleanup_free_ char *description = desc_in ? barge_xstrdup(desc_in) : NULL;
    json_t *h = json_pack("{s:I, s:s, s:s, s:s, s:s, s:f, s:s, s:[]}", "Version", version, "Value",
                          sealed, "Type", type, "DataType", data_type, "Tier", tier,
                          "LastModifiedDate", now, "LastModifiedUser", user, "Labels");
    barge_json_set_str(h, "KeyId", strcmp(type, "SecureString") == 0 ? key_id : NULL);
    barge_json_set_str(h, "Description", description);
    barge_json_set_str(h, "AllowedPattern", pattern);
    json_t *history = barge_json_array(doc, "history");
    json_array_append_new(history, h);
    while (json_array_size(history) > MAX_VERSIONS)
        json_array_remove(history, 0);
    json_object_set_new(doc, "version", json_integer(version));
    json_object_set_new(doc, "type", json_string(type));
    json_object_set_new(doc, "dataType", json_string(data_type));
    json_object_set_new(doc, "tier", json_string(tier));
    json_object_set_new(doc, "lastModifiedDate", json_real(now));
    json_object_set_new(doc, "lastModifiedUser", json_string(user));
    if (strcmp(type, "SecureString") == 0)
        json_object_set_new(doc, "keyId", json_string(key_id));
    else
        json_object_del(doc, "keyId");
    if (description)
        json_object_set_new(doc, "description", json_string(description));
    if (pattern)
        json_object_set_new(doc, "allowedPattern", json_string(pattern));
    _cleanup_free_ char *key = param_key(ctx->who.region, name);
    if (barge_store_put(tx, KIND_PARAM, key, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("ssm: parameter %s (%s) is at version %lld", name, type, (long long)version);
    *out = json_pack("{s:I, s:s}", "Version", version, "Tier", tier);
    return 0;
}

/* --- Get ----------------------------------------------------------------- */

/* Looks up one Get name in tx. Returns 1 with *param (new reference), 0 when
 * it names nothing (*why says whether the parameter or the version is
 * missing), -1 on error. */
static int get_one(struct barge_api_ctx *ctx, struct barge_tx *tx, const char *ident, bool decrypt,
                   json_t **param, bool *version_missing, struct barge_error **err)
{
    *param = NULL;
    *version_missing = false;
    struct ident id;
    if (!parse_ident(ctx, ident, &id))
        return 0;
    _cleanup_json_ json_t *doc = NULL;
    int r = load(tx, ctx->who.region, id.name, &doc, err);
    if (r <= 0) {
        ident_release(&id);
        return r;
    }
    json_t *h = id.version == 0  ? history_entry(doc, barge_json_int(doc, "version", 0))
                : id.version > 0 ? history_entry(doc, id.version)
                                 : NULL;
    if (!h) {
        *version_missing = true;
        ident_release(&id);
        return 0;
    }
    *param = render_parameter(ctx, doc, h, id.selector, decrypt, err);
    ident_release(&id);
    return *param ? 1 : -1;
}

/* The access check for a Get name: the resource is the parameter's ARN in
 * the caller's region, whatever form the name took. */
static int authorize_ident(struct barge_api_ctx *ctx, const char *action, const char *ident,
                           struct barge_error **err)
{
    struct ident id;
    if (!parse_ident(ctx, ident, &id))
        return barge_api_authorize(ctx->srv, &ctx->who, action, ident, err);
    int r = authorize_name(ctx, action, id.name, err);
    ident_release(&id);
    return r;
}

static int get_parameter(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    const char *ident = barge_json_str(in, "Name", "");
    if (authorize_ident(ctx, "ssm:GetParameter", ident, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    json_t *param = NULL;
    bool version_missing = false;
    int r = get_one(ctx, tx, ident, barge_json_bool(in, "WithDecryption", false), &param,
                    &version_missing, err);
    if (r < 0)
        return -1;
    if (r == 0 && version_missing)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ParameterVersionNotFound",
                                    "Systems Manager could not find version or label '%s' of "
                                    "the parameter. Verify the version and try again.",
                                    ident);
    if (r == 0)
        return not_found(err, ident);
    *out = json_pack("{s:o}", "Parameter", param);
    return 0;
}

static int get_parameters(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    json_t *names = barge_json_array(in, "Names");
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (authorize_ident(ctx, "ssm:GetParameters", json_string_value(n), err) < 0)
            return -1;
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *params = json_array(), *invalid = json_array();
    json_t *seen = json_object();
    bool decrypt = barge_json_bool(in, "WithDecryption", false);
    json_array_foreach(names, i, n)
    {
        const char *ident = json_string_value(n);
        if (json_object_get(seen, ident))
            continue;
        json_object_set_new(seen, ident, json_true());
        json_t *param = NULL;
        bool version_missing = false;
        int r = get_one(ctx, tx, ident, decrypt, &param, &version_missing, err);
        if (r < 0) {
            json_decref(seen);
            return -1;
        }
        json_array_append_new(r ? params : invalid, r ? param : json_string(ident));
    }
    json_decref(seen);
    *out = json_pack("{s:O, s:O}", "Parameters", params, "InvalidParameters", invalid);
    return 0;
}

/* --- filters, paths and listings ----------------------------------------- */

static bool tag_matches(const json_t *doc, const char *key, const json_t *values)
{
    size_t i, j;
    json_t *t, *v;
    json_array_foreach(barge_json_array(doc, "tags"), i, t)
    {
        if (!barge_streq(barge_json_str(t, "Key", NULL), key))
            continue;
        if (json_array_size(values) == 0)
            return true;
        json_array_foreach((json_t *)values, j, v)
        {
            if (barge_streq(json_string_value(v), barge_json_str(t, "Value", NULL)))
                return true;
        }
    }
    return false;
}

/* True when name lies under path: one level down, or any depth when
 * recursive. The root "/" also holds the flat names. */
static bool under_path(const char *name, const char *path, bool recursive)
{
    const char *rest;
    if (strcmp(path, "/") == 0) {
        if (name[0] != '/')
            return true;
        rest = name + 1;
    } else {
        size_t n = strlen(path);
        if (strncmp(name, path, n) != 0 || name[n] != '/')
            return false;
        rest = name + n + 1;
    }
    return recursive || !strchr(rest, '/');
}

static bool any_value(const json_t *values, bool (*pred)(const char *, const char *),
                      const char *field)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)values, i, v)
    {
        if (field && pred(field, json_string_value(v)))
            return true;
    }
    return false;
}

static bool eq(const char *field, const char *v)
{
    return barge_streq(field, v);
}

static bool begins(const char *field, const char *v)
{
    return v && barge_str_has_prefix(field, v);
}

static bool contains(const char *field, const char *v)
{
    return v && strstr(field, v);
}

/* Normalises and checks ParameterFilters (and the legacy Filters) once;
 * by_path forbids the keys GetParametersByPath does not take. */
static int check_filters(const json_t *in, bool by_path, struct barge_error **err)
{
    if (json_array_size(barge_json_array(in, "Filters")) &&
        json_array_size(barge_json_array(in, "ParameterFilters")))
        return validation(err, "You can use either Filters or ParameterFilters in a single "
                               "request.");
    size_t i;
    json_t *f;
    json_array_foreach(barge_json_array(in, "ParameterFilters"), i, f)
    {
        const char *key = barge_json_str(f, "Key", "");
        const char *opt = barge_json_str(f, "Option", "Equals");
        bool is_tag = barge_str_has_prefix(key, "tag:");
        const char *known[] = {"Name", "Type", "KeyId", "Path", "Tier", "DataType", "Label"};
        bool ok = is_tag;
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(known); k++)
            ok = ok || strcmp(key, known[k]) == 0;
        if (!ok || (by_path && (strcmp(key, "Name") == 0 || strcmp(key, "Path") == 0 ||
                                strcmp(key, "Tier") == 0)))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidFilterKey",
                                        "The filter key '%s' is not valid here.", key);
        bool opt_ok;
        if (strcmp(key, "Path") == 0)
            opt_ok = strcmp(opt, "Recursive") == 0 || strcmp(opt, "OneLevel") == 0 ||
                     !json_object_get(f, "Option");
        else if (strcmp(key, "Name") == 0 || is_tag)
            opt_ok = strcmp(opt, "Equals") == 0 || strcmp(opt, "BeginsWith") == 0 ||
                     (strcmp(key, "Name") == 0 && strcmp(opt, "Contains") == 0);
        else
            opt_ok = strcmp(opt, "Equals") == 0 || strcmp(opt, "BeginsWith") == 0;
        if (!opt_ok)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidFilterOption",
                                        "The filter option '%s' is not valid for key '%s'.", opt,
                                        key);
        if (!is_tag && json_array_size(barge_json_array(f, "Values")) == 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidFilterValue",
                                        "The filter '%s' needs at least one value.", key);
    }
    return 0;
}

static bool filters_match(const json_t *in, const json_t *doc)
{
    const char *name = barge_json_str(doc, "name", "");
    size_t i;
    json_t *f;
    json_array_foreach(barge_json_array(in, "Filters"), i, f)
    {
        const char *key = barge_json_str(f, "Key", "");
        json_t *values = barge_json_array(f, "Values");
        bool ok =
            strcmp(key, "Name") == 0    ? any_value(values, begins, name)
            : strcmp(key, "Type") == 0  ? any_value(values, eq, barge_json_str(doc, "type", ""))
            : strcmp(key, "KeyId") == 0 ? any_value(values, eq, barge_json_str(doc, "keyId", NULL))
                                        : false;
        if (!ok)
            return false;
    }
    json_array_foreach(barge_json_array(in, "ParameterFilters"), i, f)
    {
        const char *key = barge_json_str(f, "Key", "");
        const char *opt = barge_json_str(f, "Option", "Equals");
        json_t *values = barge_json_array(f, "Values");
        bool (*pred)(const char *, const char *) = strcmp(opt, "BeginsWith") == 0 ? begins
                                                   : strcmp(opt, "Contains") == 0 ? contains
                                                                                  : eq;
        bool ok;
        if (barge_str_has_prefix(key, "tag:"))
            ok = tag_matches(doc, key + 4, values);
        else if (strcmp(key, "Name") == 0)
            ok = any_value(values, pred, name);
        else if (strcmp(key, "Path") == 0) {
            ok = false;
            size_t j;
            json_t *v;
            json_array_foreach(values, j, v) ok =
                ok || under_path(name, json_string_value(v), strcmp(opt, "Recursive") == 0);
        } else if (strcmp(key, "Type") == 0)
            ok = any_value(values, pred, barge_json_str(doc, "type", ""));
        else if (strcmp(key, "KeyId") == 0)
            ok = any_value(values, pred, barge_json_str(doc, "keyId", NULL));
        else if (strcmp(key, "Tier") == 0)
            ok = any_value(values, pred, barge_json_str(doc, "tier", "Standard"));
        else if (strcmp(key, "DataType") == 0)
            ok = any_value(values, pred, barge_json_str(doc, "dataType", "text"));
        else
            ok = false; /* Label: barge keeps no labels */
        if (!ok)
            return false;
    }
    return true;
}

struct listing {
    struct barge_api_ctx *ctx;
    const json_t *in;
    const char *path; /* GetParametersByPath, else NULL */
    bool recursive;
    bool decrypt;
    int max;
    json_t *items;
    char *last_key;
    bool more;
    struct barge_error **err;
};

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct listing *l = ud;
    const char *name = barge_json_str(doc, "name", "");
    if (l->path && !under_path(name, l->path, l->recursive))
        return 0;
    if (!filters_match(l->in, doc))
        return 0;
    if ((int)json_array_size(l->items) == l->max) {
        l->more = true;
        return 1;
    }
    json_t *item;
    if (l->path) {
        item = render_parameter(l->ctx, doc, history_entry(doc, barge_json_int(doc, "version", 0)),
                                NULL, l->decrypt, err);
        if (!item)
            return -1;
    } else {
        item = render_metadata(l->ctx, doc);
    }
    json_array_append_new(l->items, item);
    free(l->last_key);
    l->last_key = barge_xstrdup(key);
    return 0;
}

static int list(struct barge_api_ctx *ctx, json_t *in, const char *path, int max, json_t **out,
                struct barge_error **err)
{
    _cleanup_free_ char *after = NULL;
    if (barge_api_token_decode(barge_json_str(in, "NextToken", NULL), &after, err) < 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidNextToken",
                                    "The specified token is not valid.");
    _cleanup_free_ char *region_prefix = barge_xasprintf("%s|", ctx->who.region);
    if (after && !barge_str_has_prefix(after, region_prefix))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidNextToken",
                                    "The specified token is not valid.");
    /* A hierarchical path narrows the scan to its subtree. */
    _cleanup_free_ char *prefix = path && strcmp(path, "/") != 0
                                      ? barge_xasprintf("%s|%s/", ctx->who.region, path)
                                      : barge_xstrdup(region_prefix);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    struct listing l = {.ctx = ctx,
                        .in = in,
                        .path = path,
                        .recursive = barge_json_bool(in, "Recursive", false),
                        .decrypt = barge_json_bool(in, "WithDecryption", false),
                        .max = max,
                        .items = json_array()};
    int r = barge_store_begin(ctx->srv->store, false, &tx, err);
    if (r == 0)
        r = barge_store_scan(tx, KIND_PARAM, prefix, after, false, 0, collect, &l, err);
    if (r < 0) {
        json_decref(l.items);
        free(l.last_key);
        return -1;
    }
    *out = json_pack("{s:o}", "Parameters", l.items);
    if (l.more && l.last_key) {
        char *tok = barge_api_token_encode(l.last_key);
        json_object_set_new(*out, "NextToken", json_string(tok));
        free(tok);
    }
    free(l.last_key);
    return 0;
}

static int get_parameters_by_path(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    const char *given = barge_json_str(in, "Path", "");
    _cleanup_free_ char *path = barge_xstrdup(given);
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    struct barge_error *bad = NULL;
    if (path[0] != '/' || (strcmp(path, "/") != 0 && check_name(path, &bad) < 0)) {
        barge_error_free(bad);
        return validation(err,
                          "The parameter doesn't meet the parameter name requirements. The "
                          "parameter name must begin with a forward slash \"/\". '%s' was "
                          "given.",
                          given);
    }
    int max;
    if (authorize_name(ctx, "ssm:GetParametersByPath", path, err) < 0 ||
        check_filters(in, true, err) < 0 ||
        barge_api_max_results(in, "MaxResults", 10, 10, &max, err) < 0)
        return -1;
    return list(ctx, in, path, max, out, err);
}

static int describe_parameters(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    _cleanup_free_ char *all =
        barge_xasprintf("arn:aws:ssm:%s:%s:*", ctx->who.region, ctx->srv->cfg.account_id);
    int max;
    if (barge_api_authorize(ctx->srv, &ctx->who, "ssm:DescribeParameters", all, err) < 0 ||
        check_filters(in, false, err) < 0 ||
        barge_api_max_results(in, "MaxResults", 10, 50, &max, err) < 0)
        return -1;
    return list(ctx, in, NULL, max, out, err);
}

/* --- history, delete ----------------------------------------------------- */

static int get_parameter_history(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    const char *ident = barge_json_str(in, "Name", "");
    int max;
    if (authorize_ident(ctx, "ssm:GetParameterHistory", ident, err) < 0 ||
        barge_api_max_results(in, "MaxResults", 50, 50, &max, err) < 0)
        return -1;
    const char *token = barge_json_str(in, "NextToken", NULL);
    json_int_t from = 0;
    if (token) {
        _cleanup_free_ char *t = NULL;
        if (barge_api_token_decode(token, &t, err) < 0 || strspn(t, "0123456789") != strlen(t))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidNextToken",
                                        "The specified token is not valid.");
        from = atoll(t);
    }
    struct ident id;
    if (!parse_ident(ctx, ident, &id))
        return not_found(err, ident);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    int r = barge_store_begin(ctx->srv->store, false, &tx, err);
    if (r == 0)
        r = load(tx, ctx->who.region, id.name, &doc, err);
    ident_release(&id);
    if (r < 0)
        return -1;
    if (r == 0)
        return not_found(err, ident);
    bool decrypt = barge_json_bool(in, "WithDecryption", false);
    json_t *items = json_array();
    size_t i;
    json_t *h;
    json_int_t last = 0;
    bool more = false;
    json_array_foreach(barge_json_array(doc, "history"), i, h)
    {
        json_int_t v = barge_json_int(h, "Version", 0);
        if (v <= from)
            continue;
        if ((int)json_array_size(items) == max) {
            more = true;
            break;
        }
        json_t *value = render_value(ctx, doc, h, decrypt, err);
        if (!value) {
            json_decref(items);
            return -1;
        }
        json_t *e = json_pack(
            "{s:s, s:s, s:o, s:I, s:O, s:s, s:s, s:O, s:[], s:s}", "Name",
            barge_json_str(doc, "name", ""), "Type", barge_json_str(h, "Type", "String"), "Value",
            value, "Version", v, "LastModifiedDate", json_object_get(h, "LastModifiedDate"),
            "LastModifiedUser", barge_json_str(h, "LastModifiedUser", ""), "Tier",
            barge_json_str(h, "Tier", "Standard"), "Labels", json_object_get(h, "Labels"),
            "Policies", "DataType", barge_json_str(h, "DataType", "text"));
        barge_json_set_str(e, "KeyId", barge_json_str(h, "KeyId", NULL));
        barge_json_set_str(e, "Description", barge_json_str(h, "Description", NULL));
        barge_json_set_str(e, "AllowedPattern", barge_json_str(h, "AllowedPattern", NULL));
        json_array_append_new(items, e);
        last = v;
    }
    *out = json_pack("{s:o}", "Parameters", items);
    if (more) {
        _cleanup_free_ char *v = barge_xasprintf("%lld", (long long)last);
        _cleanup_free_ char *tok = barge_api_token_encode(v);
        json_object_set_new(*out, "NextToken", json_string(tok));
    }
    return 0;
}

/* Deletes name in tx; returns 1 when it existed. */
static int delete_one(struct barge_api_ctx *ctx, struct barge_tx *tx, const char *ident,
                      struct barge_error **err)
{
    struct ident id;
    if (!parse_ident(ctx, ident, &id))
        return 0;
    _cleanup_json_ json_t *doc = NULL;
    int r = load(tx, ctx->who.region, id.name, &doc, err);
    if (r > 0) {
        _cleanup_free_ char *key = param_key(ctx->who.region, id.name);
        if (barge_store_del(tx, KIND_PARAM, key, err) < 0)
            r = -1;
        else
            barge_info("ssm: deleted parameter %s", id.name);
    }
    ident_release(&id);
    return r;
}

static int delete_parameter(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    const char *name = barge_json_str(in, "Name", "");
    if (authorize_ident(ctx, "ssm:DeleteParameter", name, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int r = delete_one(ctx, tx, name, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return not_found(err, name);
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int delete_parameters(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    json_t *names = barge_json_array(in, "Names");
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (authorize_ident(ctx, "ssm:DeleteParameters", json_string_value(n), err) < 0)
            return -1;
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *deleted = json_array(), *invalid = json_array();
    json_array_foreach(names, i, n)
    {
        int r = delete_one(ctx, tx, json_string_value(n), err);
        if (r < 0)
            return -1;
        json_array_append(r ? deleted : invalid, n);
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O, s:O}", "DeletedParameters", deleted, "InvalidParameters", invalid);
    return 0;
}

/* --- tags ---------------------------------------------------------------- */

/* Loads the parameter a tag operation names (ResourceType Parameter,
 * ResourceId its name) for update or read. */
static int tag_target(struct barge_api_ctx *ctx, const json_t *in, const char *action, bool write,
                      struct barge_tx **tx, json_t **doc, char **name, struct barge_error **err)
{
    const char *type = barge_json_str(in, "ResourceType", "");
    const char *rid = barge_json_str(in, "ResourceId", "");
    if (strcmp(type, "Parameter") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidResourceType",
                                    "barge keeps tags only for resource type Parameter, not "
                                    "'%s'.",
                                    type);
    struct ident id;
    if (!parse_ident(ctx, rid, &id))
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "InvalidResourceId",
                                    "The resource ID '%s' is not valid.", rid);
    *name = barge_steal(&id.name);
    ident_release(&id);
    if (authorize_name(ctx, action, *name, err) < 0 ||
        barge_store_begin(ctx->srv->store, write, tx, err) < 0)
        return -1;
    int r = load(*tx, ctx->who.region, *name, doc, err);
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "InvalidResourceId",
                                    "The resource ID '%s' is not valid.", rid);
    return r < 0 ? -1 : 0;
}

static int save_tags(struct barge_api_ctx *ctx, struct barge_tx **tx, const char *name,
                     const json_t *doc, json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *key = param_key(ctx->who.region, name);
    if (barge_store_put(*tx, KIND_PARAM, key, doc, err) < 0 ||
        barge_store_commit(barge_steal(tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int add_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *name = NULL;
    json_t *tags = barge_json_array(in, "Tags");
    if (check_tags(tags, err) < 0 ||
        tag_target(ctx, in, "ssm:AddTagsToResource", true, &tx, &doc, &name, err) < 0)
        return -1;
    barge_api_tags_merge(doc, tags);
    if (json_array_size(barge_json_array(doc, "tags")) > MAX_TAGS)
        return barge_error_set_type(err, BARGE_ERR_LIMIT, "TooManyTagsError",
                                    "A parameter can have at most %d tags.", MAX_TAGS);
    return save_tags(ctx, &tx, name, doc, out, err);
}

static int remove_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *name = NULL;
    if (tag_target(ctx, in, "ssm:RemoveTagsFromResource", true, &tx, &doc, &name, err) < 0)
        return -1;
    barge_api_tags_remove(doc, barge_json_array(in, "TagKeys"));
    return save_tags(ctx, &tx, name, doc, out, err);
}

static int list_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *name = NULL;
    if (tag_target(ctx, in, "ssm:ListTagsForResource", false, &tx, &doc, &name, err) < 0)
        return -1;
    json_t *tags = barge_json_array(doc, "tags");
    *out = json_pack("{s:o}", "TagList", tags ? json_incref(tags) : json_array());
    return 0;
}

static const struct barge_api_op ssm_ops[] = {
    {"PutParameter", put_parameter},
    {"GetParameter", get_parameter},
    {"GetParameters", get_parameters},
    {"GetParametersByPath", get_parameters_by_path},
    {"DescribeParameters", describe_parameters},
    {"GetParameterHistory", get_parameter_history},
    {"DeleteParameter", delete_parameter},
    {"DeleteParameters", delete_parameters},
    {"AddTagsToResource", add_tags},
    {"RemoveTagsFromResource", remove_tags},
    {"ListTagsForResource", list_tags},
    {NULL, NULL},
};

static const struct barge_api_op *const ssm_tables[] = {ssm_ops, NULL};

const struct barge_api_service barge_api_ssm = {
    .model = "ssm",
    .message_key = "message",
    .invalid_type = "ValidationException",
    .client_type = "ValidationException",
    .server_type = "InternalServerError",
    .not_found_type = "ParameterNotFound",
    .op_tables = ssm_tables,
};
