/* IAM roles over the query protocol (see iam.h): enough for AssumeRole to have
 * something to assume and for tools that create a role before they assume
 * it. IAM is a global service, so its requests are accepted signed for any
 * region. Role documents keep the AWS field names they are answered with. */
#include "api/iam.h"

#include <ctype.h>
#include <string.h>

#include "api/server.h"
#include "common/awsapi.h"
#include "common/ids.h"
#include "common/json.h"

#define DEFAULT_MAX_SESSION 3600

static char *lower(const char *s)
{
    char *out = barge_xstrdup(s);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

char *barge_api_iam_unique_id(const char *prefix)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char rnd[17];
    barge_random_bytes(rnd, sizeof(rnd));
    char *out = barge_xcalloc(strlen(prefix) + sizeof(rnd) + 1, 1);
    strcpy(out, prefix);
    for (size_t i = 0; i < sizeof(rnd); i++)
        out[strlen(prefix) + i] = alphabet[rnd[i] % 32];
    return out;
}

int barge_api_iam_role_get(struct barge_tx *tx, const char *name, json_t **out,
                           struct barge_error **err)
{
    _cleanup_free_ char *key = lower(name);
    return barge_store_get(tx, BARGE_KIND_IAM_ROLE, key, out, err) < 0 ? -1 : 0;
}

/* IAM names: letters, digits and +=,.@_- */
static bool name_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("+=,.@_-", *s))
            return false;
    return true;
}

/* "/" or "/" + printable ASCII + "/". */
static bool path_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || s[0] != '/' || s[n - 1] != '/')
        return false;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* The wire form of a stored role: IAM answers policy documents URL-encoded
 * (botocore decodes them back). New reference. */
static json_t *role_out(const json_t *doc)
{
    json_t *r = json_deep_copy(doc);
    const char *pol = barge_json_str(doc, "AssumeRolePolicyDocument", NULL);
    if (pol) {
        _cleanup_free_ char *enc = barge_aws_uri_encode(pol, false);
        json_object_set_new(r, "AssumeRolePolicyDocument", json_string(enc));
    }
    return r;
}

static int not_found(const char *name, struct barge_error **err)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                "The role with name %s cannot be found.", name);
}

static int create_role(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    const char *name = barge_json_str(in, "RoleName", "");
    const char *path = barge_json_str(in, "Path", "/");
    const char *policy = barge_json_str(in, "AssumeRolePolicyDocument", "");
    if (!name_ok(name))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                    "1 validation error detected: Value '%s' at 'roleName' failed "
                                    "to satisfy constraint: Member must satisfy regular expression "
                                    "pattern: [\\w+=,.@-]+",
                                    name);
    if (!path_ok(path))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                    "1 validation error detected: Value '%s' at 'path' failed to "
                                    "satisfy constraint: Member must begin and end with '/' and "
                                    "contain only printable ASCII characters",
                                    path);
    json_error_t jerr;
    _cleanup_json_ json_t *parsed = json_loads(policy, 0, &jerr);
    if (!json_is_object(parsed))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument",
                                    "AssumeRolePolicyDocument is not a JSON object: %s",
                                    parsed ? "not an object" : jerr.text);
    if (!json_is_array(json_object_get(parsed, "Statement")) &&
        !json_is_object(json_object_get(parsed, "Statement")))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "MalformedPolicyDocument",
                                    "AssumeRolePolicyDocument has no Statement");

    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *old = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_api_iam_role_get(tx, name, &old, err) < 0)
        return -1;
    if (old)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "EntityAlreadyExists",
                                    "Role with name %s already exists.", name);
    _cleanup_free_ char *id = barge_api_iam_unique_id("AROA");
    _cleanup_free_ char *arn =
        barge_xasprintf("arn:aws:iam::%s:role%s%s", ctx->srv->cfg.account_id, path, name);
    _cleanup_json_ json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:s, s:I}", "Path", path, "RoleName", name, "RoleId", id, "Arn",
        arn, "CreateDate", barge_now(), "AssumeRolePolicyDocument", policy, "MaxSessionDuration",
        barge_json_int(in, "MaxSessionDuration", DEFAULT_MAX_SESSION));
    const char *desc = barge_json_str(in, "Description", NULL);
    if (desc)
        json_object_set_new(doc, "Description", json_string(desc));
    if (json_array_size(barge_json_array(in, "Tags")))
        json_object_set(doc, "Tags", barge_json_array(in, "Tags"));
    _cleanup_free_ char *key = lower(name);
    if (barge_store_put(tx, BARGE_KIND_IAM_ROLE, key, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:o}", "Role", role_out(doc));
    return 0;
}

static int get_role(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    const char *name = barge_json_str(in, "RoleName", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_api_iam_role_get(tx, name, &doc, err) < 0)
        return -1;
    if (!doc)
        return not_found(name, err);
    *out = json_pack("{s:o}", "Role", role_out(doc));
    return 0;
}

static int delete_role(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    const char *name = barge_json_str(in, "RoleName", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = lower(name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_api_iam_role_get(tx, name, &doc, err) < 0)
        return -1;
    if (!doc)
        return not_found(name, err);
    if (barge_store_del(tx, BARGE_KIND_IAM_ROLE, key, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

struct listing {
    struct barge_api_page *pg;
    const char *prefix;
};

static int collect_role(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    struct listing *l = ud;
    if (!barge_str_has_prefix(barge_json_str(doc, "Path", "/"), l->prefix))
        return 0;
    return barge_api_page_add(l->pg, key, role_out(doc));
}

static int list_roles(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg;
    if (barge_api_page_init(&pg, in, "MaxItems", 100, 1000, "Marker", err) < 0)
        return -1;
    struct listing l = {.pg = &pg, .prefix = barge_json_str(in, "PathPrefix", "/")};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, BARGE_KIND_IAM_ROLE, "", pg.after, false, 0, collect_role, &l, err) <
            0)
        return -1;
    *out = json_object();
    json_object_set_new(*out, "IsTruncated", json_boolean(pg.more));
    barge_api_page_finish(&pg, *out, "Roles", "Marker");
    return 0;
}

static const struct barge_api_op iam_ops[] = {
    {"CreateRole", create_role}, {"GetRole", get_role}, {"DeleteRole", delete_role},
    {"ListRoles", list_roles},   {NULL, NULL},
};

static const struct barge_api_op *const iam_op_tables[] = {iam_ops, NULL};

const struct barge_api_service barge_api_iam = {
    .model = "iam",
    .message_key = "Message",
    .invalid_type = "ValidationError",
    .client_type = "InvalidInput",
    .server_type = "ServiceFailure",
    .not_found_type = "NoSuchEntity",
    .op_tables = iam_op_tables,
};
