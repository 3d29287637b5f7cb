/* IAM roles over the query protocol (see iam.h): enough for AssumeRole to have
 * something to assume and for tools that create a role before they assume
 * it. IAM is a global service, so its requests are accepted signed for any
 * region. Role documents keep the AWS field names they are answered with. */
#include "api/iam.h"

#include <ctype.h>
#include <string.h>

#include "api/access.h"
#include "api/policy.h"
#include "api/server.h"
#include "common/awsapi.h"
#include "common/ids.h"
#include "common/json.h"

#define DEFAULT_MAX_SESSION 3600
/* IAM's quota of access keys per user. */
#define MAX_KEYS_PER_USER 2

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

int barge_api_iam_user_get(struct barge_tx *tx, const char *name, json_t **out,
                           struct barge_error **err)
{
    _cleanup_free_ char *key = lower(name);
    return barge_store_get(tx, BARGE_KIND_IAM_USER, key, out, err) < 0 ? -1 : 0;
}

/* The AWS managed policies barge knows, by the part of their ARN after
 * "arn:aws:iam::aws:policy/": those CDK and ECS setups attach most. */
static const struct {
    const char *tail;
    const char *document;
} aws_policies[] = {
    {"AdministratorAccess",
     "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
     "\"Resource\":\"*\"}]}"},
    {"PowerUserAccess",
     "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"NotAction\":[\"iam:*\","
     "\"organizations:*\",\"account:*\"],\"Resource\":\"*\"}]}"},
    /* ReadOnlyAccess and AWSCloudFormationReadOnlyAccess: the CDK bootstrap's
     * lookup and deployment action roles. */
    {"ReadOnlyAccess",
     "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
     "\"*:Describe*\",\"*:Get*\",\"*:List*\"],\"Resource\":\"*\"}]}"},
    {"AWSCloudFormationReadOnlyAccess",
     "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
     "\"cloudformation:Describe*\",\"cloudformation:Get*\",\"cloudformation:List*\","
     "\"cloudformation:ValidateTemplate\",\"cloudformation:EstimateTemplateCost\"],"
     "\"Resource\":\"*\"}]}"},
    {"service-role/AmazonECSTaskExecutionRolePolicy",
     "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
     "\"ecr:GetAuthorizationToken\",\"ecr:BatchCheckLayerAvailability\","
     "\"ecr:GetDownloadUrlForLayer\",\"ecr:BatchGetImage\",\"logs:CreateLogStream\","
     "\"logs:PutLogEvents\"],\"Resource\":\"*\"}]}"},
};

#define AWS_POLICY_PREFIX "arn:aws:iam::aws:policy/"

/* The document of the AWS managed policy arn, or NULL. */
static const char *aws_policy_document(const char *arn)
{
    if (!barge_str_has_prefix(arn, AWS_POLICY_PREFIX))
        return NULL;
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(aws_policies); i++)
        if (strcmp(arn + strlen(AWS_POLICY_PREFIX), aws_policies[i].tail) == 0)
            return aws_policies[i].document;
    return NULL;
}

/* Appends the inline and attached policies of doc to out. */
static int own_policies(struct barge_tx *tx, const json_t *doc, json_t *out,
                        struct barge_error **err)
{
    const char *name;
    json_t *text;
    json_object_foreach(barge_json_object(doc, "_policies"), name, text)
    {
        json_array_append(out, text);
    }
    size_t i;
    json_t *arn;
    json_array_foreach(barge_json_array(doc, "_attached"), i, arn)
    {
        const char *builtin = aws_policy_document(json_string_value(arn));
        if (builtin) {
            json_array_append_new(out, json_string(builtin));
            continue;
        }
        const char *slash = strrchr(json_string_value(arn), '/');
        _cleanup_free_ char *key = lower(slash ? slash + 1 : "");
        _cleanup_json_ json_t *pol = NULL;
        if (barge_store_get(tx, BARGE_KIND_IAM_POLICY, key, &pol, err) < 0)
            return -1;
        if (pol && barge_streq(barge_json_str(pol, "Arn", NULL), json_string_value(arn)))
            json_array_append(out, json_object_get(pol, "_document"));
    }
    return 0;
}

int barge_api_iam_policies(struct barge_tx *tx, const json_t *doc, json_t **out,
                           struct barge_error **err)
{
    *out = json_array();
    if (own_policies(tx, doc, *out, err) < 0)
        goto fail;
    size_t i;
    json_t *g;
    json_array_foreach(barge_json_array(doc, "_groups"), i, g)
    {
        _cleanup_json_ json_t *group = NULL;
        if (barge_store_get(tx, BARGE_KIND_IAM_GROUP, json_string_value(g), &group, err) < 0 ||
            (group && own_policies(tx, group, *out, err) < 0))
            goto fail;
    }
    return 0;
fail:
    json_decref(barge_steal(out));
    return -1;
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

/* --- roles and users ------------------------------------------------------ */

/* The wire form of a stored role: IAM answers policy documents URL-encoded
 * (botocore decodes them back). New reference. */
static json_t *role_out(const json_t *doc)
{
    json_t *r = json_deep_copy(doc);
    json_object_del(r, "_policies");
    json_object_del(r, "_attached");
    const char *pol = barge_json_str(doc, "AssumeRolePolicyDocument", NULL);
    if (pol) {
        _cleanup_free_ char *enc = barge_aws_uri_encode(pol, false);
        json_object_set_new(r, "AssumeRolePolicyDocument", json_string(enc));
    }
    return r;
}

static json_t *user_out(const json_t *doc)
{
    json_t *u = json_deep_copy(doc);
    json_object_del(u, "_policies");
    json_object_del(u, "_keys");
    json_object_del(u, "_attached");
    json_object_del(u, "_groups");
    return u;
}

static json_t *group_out(const json_t *doc)
{
    json_t *g = json_deep_copy(doc);
    json_object_del(g, "_policies");
    json_object_del(g, "_attached");
    return g;
}

/* What users and roles share: stored by name in lower case, inline policies
 * under "_policies" (name -> document text, as given) and attached managed
 * policies under "_attached" (ARNs), which never appear in their wire form.
 * The operations on both differ only in these names. */
struct entity {
    const char *kind;
    const char *name_field; /* "UserName" */
    const char *id_field;   /* "UserId" */
    const char *id_prefix;  /* "AIDA" */
    const char *label;      /* "user", also in its ARN */
    const char *title;      /* "User", its answer's member */
    json_t *(*out)(const json_t *doc);
};

static const struct entity user_entity = {
    BARGE_KIND_IAM_USER, "UserName", "UserId", "AIDA", "user", "User", user_out};
static const struct entity role_entity = {
    BARGE_KIND_IAM_ROLE, "RoleName", "RoleId", "AROA", "role", "Role", role_out};
static const struct entity group_entity = {
    BARGE_KIND_IAM_GROUP, "GroupName", "GroupId", "AGPA", "group", "Group", group_out};

static int entity_load(struct barge_tx *tx, const struct entity *e, const char *name, json_t **doc,
                       struct barge_error **err)
{
    _cleanup_free_ char *key = lower(name);
    if (barge_store_get(tx, e->kind, key, doc, err) < 0)
        return -1;
    if (!*doc)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                    "The %s with name %s cannot be found.", e->label, name);
    return 0;
}

/* Begins a transaction (a writable one if write) and loads the entity
 * called name in it. */
static int entity_open(struct barge_api_ctx *ctx, bool write, const struct entity *e,
                       const char *name, struct barge_tx **tx, json_t **doc,
                       struct barge_error **err)
{
    if (barge_store_begin(ctx->srv->store, write, tx, err) < 0)
        return -1;
    return entity_load(*tx, e, name, doc, err);
}

/* Stores doc and commits tx. */
static int entity_save(struct barge_tx **tx, const struct entity *e, const json_t *doc,
                       struct barge_error **err)
{
    _cleanup_free_ char *key = lower(barge_json_str(doc, e->name_field, ""));
    if (barge_store_put(*tx, e->kind, key, doc, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(tx), err);
}

/* doc's member field, made an empty array (or object) when it is not one
 * yet. Borrowed. */
static json_t *member(json_t *doc, const char *field, bool array)
{
    json_t *m = json_object_get(doc, field);
    if (array ? !json_is_array(m) : !json_is_object(m)) {
        m = array ? json_array() : json_object();
        json_object_set_new(doc, field, m);
    }
    return m;
}

static void set_tags(json_t *doc, const json_t *in)
{
    if (json_array_size(barge_json_array(in, "Tags")))
        json_object_set(doc, "Tags", barge_json_array(in, "Tags"));
}

static int name_invalid(struct barge_error **err, const char *value, const char *field)
{
    return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                "1 validation error detected: Value '%s' at '%s' failed to "
                                "satisfy constraint: Member must satisfy regular expression "
                                "pattern: [\\w+=,.@-]+",
                                value, field);
}

/* Checks the name (at name_member) and the path of an entity to be
 * created. */
static int entity_check(const char *name, const char *name_member, const char *path,
                        struct barge_error **err)
{
    if (!name_ok(name))
        return name_invalid(err, name, name_member);
    if (!path_ok(path))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                    "1 validation error detected: Value '%s' at 'path' failed to "
                                    "satisfy constraint: Member must begin and end with '/' and "
                                    "contain only printable ASCII characters",
                                    path);
    return 0;
}

/* Begins a writable transaction in which to create the entity called name
 * at path, which must not exist yet; *doc is its new document. */
static int entity_create(struct barge_api_ctx *ctx, const struct entity *e, const char *name,
                         const char *path, struct barge_tx **tx, json_t **doc,
                         struct barge_error **err)
{
    _cleanup_json_ json_t *old = NULL;
    _cleanup_free_ char *key = lower(name);
    if (barge_store_begin(ctx->srv->store, true, tx, err) < 0 ||
        barge_store_get(*tx, e->kind, key, &old, err) < 0)
        return -1;
    if (old)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "EntityAlreadyExists",
                                    "%s with name %s already exists.", e->title, name);
    _cleanup_free_ char *id = barge_api_iam_unique_id(e->id_prefix);
    _cleanup_free_ char *arn =
        barge_xasprintf("arn:aws:iam::%s:%s%s%s", ctx->srv->cfg.account_id, e->label, path, name);
    *doc = json_pack("{s:s, s:s, s:s, s:s, s:f}", "Path", path, e->name_field, name, e->id_field,
                     id, "Arn", arn, "CreateDate", barge_now());
    return 0;
}

/* Answers doc in its wire form, as the member named after its kind. */
static int entity_answer(const struct entity *e, const json_t *doc, json_t **out)
{
    *out = json_pack("{s:o}", e->title, e->out(doc));
    return 0;
}

/* A trust policy must at least be a JSON object with statements. */
static int trust_policy_check(const char *policy, struct barge_error **err)
{
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
    return 0;
}

/* UpdateAssumeRolePolicy: the role's new trust policy, in force for the
 * next AssumeRole (sessions already issued keep working). */
static int update_assume_role_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                     struct barge_error **err)
{
    (void)out;
    const char *policy = barge_json_str(in, "PolicyDocument", "");
    if (trust_policy_check(policy, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_open(ctx, true, &role_entity, barge_json_str(in, "RoleName", ""), &tx, &doc, err) <
        0)
        return -1;
    json_object_set_new(doc, "AssumeRolePolicyDocument", json_string(policy));
    return entity_save(&tx, &role_entity, doc, err);
}

static int create_role(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    const char *name = barge_json_str(in, "RoleName", "");
    const char *path = barge_json_str(in, "Path", "/");
    const char *policy = barge_json_str(in, "AssumeRolePolicyDocument", "");
    if (entity_check(name, "roleName", path, err) < 0 || trust_policy_check(policy, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_create(ctx, &role_entity, name, path, &tx, &doc, err) < 0)
        return -1;
    json_object_set_new(doc, "AssumeRolePolicyDocument", json_string(policy));
    json_object_set_new(
        doc, "MaxSessionDuration",
        json_integer(barge_json_int(in, "MaxSessionDuration", DEFAULT_MAX_SESSION)));
    const char *desc = barge_json_str(in, "Description", NULL);
    if (desc)
        json_object_set_new(doc, "Description", json_string(desc));
    set_tags(doc, in);
    if (entity_save(&tx, &role_entity, doc, err) < 0)
        return -1;
    return entity_answer(&role_entity, doc, out);
}

static int create_user(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    const char *name = barge_json_str(in, "UserName", "");
    const char *path = barge_json_str(in, "Path", "/");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_check(name, "userName", path, err) < 0 ||
        entity_create(ctx, &user_entity, name, path, &tx, &doc, err) < 0)
        return -1;
    set_tags(doc, in);
    if (entity_save(&tx, &user_entity, doc, err) < 0)
        return -1;
    return entity_answer(&user_entity, doc, out);
}

static int get_entity(struct barge_api_ctx *ctx, const struct entity *e, const char *name,
                      json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_open(ctx, false, e, name, &tx, &doc, err) < 0)
        return -1;
    return entity_answer(e, doc, out);
}

static int get_role(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    return get_entity(ctx, &role_entity, barge_json_str(in, "RoleName", ""), out, err);
}

static int get_user(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    const char *name = barge_json_str(in, "UserName", NULL);
    if (name)
        return get_entity(ctx, &user_entity, name, out, err);
    /* The admin key has no IAM user: it is answered as barged's built-in
     * one, as AWS answers the root user. */
    _cleanup_json_ json_t *who = NULL;
    if (barge_api_caller(ctx->srv, &ctx->who, &who, err) < 0)
        return -1;
    if (barge_json_str(who, "iamUser", NULL))
        return get_entity(ctx, &user_entity, barge_json_str(who, "iamUser", ""), out, err);
    const char *arn = barge_json_str(who, "arn", "");
    *out = json_pack("{s:{s:s, s:s, s:s, s:s, s:f}}", "User", "Path", "/", "UserName",
                     strrchr(arn, '/') ? strrchr(arn, '/') + 1 : arn, "UserId",
                     barge_json_str(who, "userId", ""), "Arn", arn, "CreateDate", 0.0);
    return 0;
}

/* Deletes the entity named in in, which must have no access keys and no
 * policies left. */
static int delete_entity(struct barge_api_ctx *ctx, const struct entity *e, const json_t *in,
                         struct barge_error **err)
{
    const char *name = barge_json_str(in, e->name_field, "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = lower(name);
    if (entity_open(ctx, true, e, name, &tx, &doc, err) < 0)
        return -1;
    if (json_array_size(barge_json_array(doc, "_keys")))
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "DeleteConflict",
                                    "Cannot delete entity, must delete access keys first.");
    if (json_array_size(barge_json_array(doc, "_groups")))
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "DeleteConflict",
                                    "Cannot delete entity, must remove user from all groups "
                                    "first.");
    if (json_object_size(barge_json_object(doc, "_policies")) ||
        json_array_size(barge_json_array(doc, "_attached")))
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "DeleteConflict",
                                    "Cannot delete entity, must delete policies first.");
    if (barge_store_del(tx, e->kind, key, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(&tx), err);
}

static int delete_role(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    if (delete_entity(ctx, &role_entity, in, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int delete_user(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    (void)out;
    return delete_entity(ctx, &user_entity, in, err);
}

/* A page of the documents of one kind whose Path starts with PathPrefix. */
struct listing {
    struct barge_api_page *pg;
    const char *prefix;
    bool only_attached; /* only those with an AttachmentCount */
    json_t *(*out)(const json_t *doc);
};

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    struct listing *l = ud;
    if (!barge_str_has_prefix(barge_json_str(doc, "Path", "/"), l->prefix) ||
        (l->only_attached && barge_json_int(doc, "AttachmentCount", 0) == 0))
        return 0;
    return barge_api_page_add(l->pg, key, l->out(doc));
}

/* Answers a page of the documents of kind (none if kind is NULL) selected
 * by l as the member called member. */
static int list_stored(struct barge_api_ctx *ctx, const json_t *in, const char *kind,
                       struct listing *l, const char *member, json_t **out,
                       struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg;
    if (barge_api_page_init(&pg, in, "MaxItems", 100, 1000, "Marker", err) < 0)
        return -1;
    l->pg = &pg;
    l->prefix = barge_json_str(in, "PathPrefix", "/");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (kind && (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
                 barge_store_scan(tx, kind, "", pg.after, false, 0, collect, l, err) < 0))
        return -1;
    *out = json_object();
    json_object_set_new(*out, "IsTruncated", json_boolean(pg.more));
    barge_api_page_finish(&pg, *out, member, "Marker");
    return 0;
}

static int list_roles(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    struct listing l = {.out = role_out};
    return list_stored(ctx, in, BARGE_KIND_IAM_ROLE, &l, "Roles", out, err);
}

static int list_users(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    struct listing l = {.out = user_out};
    return list_stored(ctx, in, BARGE_KIND_IAM_USER, &l, "Users", out, err);
}

/* --- access keys ---------------------------------------------------------- */

/* Begins a transaction and loads the user a call is about: UserName, or the
 * caller's own when absent. */
static int target_user_open(struct barge_api_ctx *ctx, const json_t *in, bool write,
                            struct barge_tx **tx, json_t **doc, struct barge_error **err)
{
    const char *given = barge_json_str(in, "UserName", NULL);
    if (given)
        return entity_open(ctx, write, &user_entity, given, tx, doc, err);
    _cleanup_json_ json_t *who = NULL;
    if (barge_api_caller(ctx->srv, &ctx->who, &who, err) < 0)
        return -1;
    if (!barge_json_str(who, "iamUser", NULL))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                    "UserName is required: the caller '%s' is not an IAM user",
                                    barge_json_str(who, "arn", ""));
    return entity_open(ctx, write, &user_entity, barge_json_str(who, "iamUser", ""), tx, doc, err);
}

static int key_not_found(const char *akid, struct barge_error **err)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                "The Access Key with id %s cannot be found.", akid);
}

static int create_access_key(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (target_user_open(ctx, in, true, &tx, &doc, err) < 0)
        return -1;
    json_t *keys = member(doc, "_keys", true);
    if (json_array_size(keys) >= MAX_KEYS_PER_USER)
        return barge_error_set_type(err, BARGE_ERR_LIMIT, "LimitExceeded",
                                    "Cannot exceed quota for AccessKeysPerUser: %d",
                                    MAX_KEYS_PER_USER);
    json_t *key = NULL;
    if (barge_api_user_key_create(ctx->srv, tx, doc, &key, err) < 0)
        return -1;
    json_array_append_new(keys, json_string(barge_json_str(key, "AccessKeyId", "")));
    if (entity_save(&tx, &user_entity, doc, err) < 0) {
        json_decref(key);
        return -1;
    }
    *out = json_pack("{s:o}", "AccessKey", key);
    return 0;
}

static int delete_access_key(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    (void)out;
    const char *akid = barge_json_str(in, "AccessKeyId", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (target_user_open(ctx, in, true, &tx, &doc, err) < 0)
        return -1;
    json_t *keys = barge_json_array(doc, "_keys");
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (barge_streq(json_string_value(k), akid))
            break;
    }
    if (i >= json_array_size(keys))
        return key_not_found(akid, err);
    json_array_remove(keys, i);
    if (barge_store_del(tx, BARGE_KIND_ACCESS_KEY, akid, err) < 0 ||
        entity_save(&tx, &user_entity, doc, err) < 0)
        return -1;
    barge_server_forget_key(akid);
    return 0;
}

static int update_access_key(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    (void)out;
    const char *akid = barge_json_str(in, "AccessKeyId", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL, *key = NULL;
    if (target_user_open(ctx, in, true, &tx, &doc, err) < 0 ||
        barge_store_get(tx, BARGE_KIND_ACCESS_KEY, akid, &key, err) < 0)
        return -1;
    if (!key ||
        !barge_streq(barge_json_str(key, "iamUser", NULL), barge_json_str(doc, "UserName", NULL)))
        return key_not_found(akid, err);
    json_object_set(key, "status", json_object_get(in, "Status"));
    if (barge_store_put(tx, BARGE_KIND_ACCESS_KEY, akid, key, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_forget_key(akid);
    return 0;
}

static int list_access_keys(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (target_user_open(ctx, in, false, &tx, &doc, err) < 0)
        return -1;
    json_t *meta = json_array();
    *out = json_pack("{s:o, s:b}", "AccessKeyMetadata", meta, "IsTruncated", false);
    size_t i;
    json_t *k;
    json_array_foreach(barge_json_array(doc, "_keys"), i, k)
    {
        _cleanup_json_ json_t *key = NULL;
        if (barge_store_get(tx, BARGE_KIND_ACCESS_KEY, json_string_value(k), &key, err) < 0)
            return -1;
        if (!key)
            continue;
        json_array_append_new(meta, json_pack("{s:s, s:s, s:s, s:O}", "UserName",
                                              barge_json_str(doc, "UserName", ""), "AccessKeyId",
                                              json_string_value(k), "Status",
                                              barge_json_str(key, "status", "Active"), "CreateDate",
                                              json_object_get(key, "createdAt")));
    }
    return 0;
}

/* --- inline policies of users and roles ----------------------------------- */

static int inline_not_found(const struct entity *e, const char *pname, struct barge_error **err)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                "The %s policy with name %s cannot be found.", e->label, pname);
}

static int put_policy(struct barge_api_ctx *ctx, const struct entity *e, json_t *in, json_t **out,
                      struct barge_error **err)
{
    (void)out;
    const char *name = barge_json_str(in, e->name_field, "");
    const char *pname = barge_json_str(in, "PolicyName", "");
    const char *text = barge_json_str(in, "PolicyDocument", "");
    if (!name_ok(pname))
        return name_invalid(err, pname, "policyName");
    if (barge_policy_validate(text, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_open(ctx, true, e, name, &tx, &doc, err) < 0)
        return -1;
    json_object_set_new(member(doc, "_policies", false), pname, json_string(text));
    return entity_save(&tx, e, doc, err);
}

static int get_policy(struct barge_api_ctx *ctx, const struct entity *e, json_t *in, json_t **out,
                      struct barge_error **err)
{
    const char *name = barge_json_str(in, e->name_field, "");
    const char *pname = barge_json_str(in, "PolicyName", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_open(ctx, false, e, name, &tx, &doc, err) < 0)
        return -1;
    const char *text = barge_json_str(barge_json_object(doc, "_policies"), pname, NULL);
    if (!text)
        return inline_not_found(e, pname, err);
    _cleanup_free_ char *enc = barge_aws_uri_encode(text, false);
    *out = json_pack("{s:s, s:s, s:s}", e->name_field, barge_json_str(doc, e->name_field, ""),
                     "PolicyName", pname, "PolicyDocument", enc);
    return 0;
}

static int delete_policy(struct barge_api_ctx *ctx, const struct entity *e, json_t *in,
                         json_t **out, struct barge_error **err)
{
    (void)out;
    const char *name = barge_json_str(in, e->name_field, "");
    const char *pname = barge_json_str(in, "PolicyName", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_open(ctx, true, e, name, &tx, &doc, err) < 0)
        return -1;
    if (json_object_del(json_object_get(doc, "_policies"), pname) < 0)
        return inline_not_found(e, pname, err);
    return entity_save(&tx, e, doc, err);
}

static int list_policies(struct barge_api_ctx *ctx, const struct entity *e, json_t *in,
                         json_t **out, struct barge_error **err)
{
    const char *name = barge_json_str(in, e->name_field, "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_open(ctx, false, e, name, &tx, &doc, err) < 0)
        return -1;
    json_t *names = json_array();
    const char *pname;
    json_t *v;
    json_object_foreach(barge_json_object(doc, "_policies"), pname, v)
    {
        json_array_append_new(names, json_string(pname));
    }
    *out = json_pack("{s:o, s:b}", "PolicyNames", names, "IsTruncated", false);
    return 0;
}

/* --- managed policies ---------------------------------------------------- */

/* A customer managed policy: its document (one version, "v1") under
 * "_document", attachments counted in AttachmentCount. Stored by name in
 * lower case, as its name is unique in the account whatever its path. */

static json_t *policy_out(const json_t *doc)
{
    json_t *p = json_deep_copy(doc);
    json_object_del(p, "_document");
    json_object_del(p, "_aws");
    return p;
}

/* The policy named by arn, which must be one of this account's. */
static int policy_load(struct barge_api_ctx *ctx, struct barge_tx *tx, const char *arn,
                       json_t **doc, struct barge_error **err)
{
    _cleanup_free_ char *prefix =
        barge_xasprintf("arn:aws:iam::%s:policy/", ctx->srv->cfg.account_id);
    const char *slash = strrchr(arn, '/');
    const char *builtin = aws_policy_document(arn);
    *doc = NULL;
    if (builtin) {
        /* Not stored: attachments to it are not counted. */
        _cleanup_free_ char *path =
            barge_xstrndup(arn + strlen(AWS_POLICY_PREFIX) - 1,
                           (size_t)(slash + 1 - (arn + strlen(AWS_POLICY_PREFIX) - 1)));
        *doc = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:f, s:f, s:s, s:b}", "PolicyName",
                         slash + 1, "Arn", arn, "Path", path, "DefaultVersionId", "v1",
                         "AttachmentCount", 0, "IsAttachable", true, "CreateDate", 0.0,
                         "UpdateDate", 0.0, "_document", builtin, "_aws", true);
        return 0;
    }
    if (barge_str_has_prefix(arn, prefix) && slash) {
        _cleanup_free_ char *key = lower(slash + 1);
        if (barge_store_get(tx, BARGE_KIND_IAM_POLICY, key, doc, err) < 0)
            return -1;
        if (*doc && !barge_streq(barge_json_str(*doc, "Arn", NULL), arn))
            json_decref(barge_steal(doc));
    }
    if (!*doc)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                    "Policy %s does not exist or is not attachable.", arn);
    return 0;
}

static int policy_save(struct barge_tx *tx, const json_t *doc, struct barge_error **err)
{
    _cleanup_free_ char *key = lower(barge_json_str(doc, "PolicyName", ""));
    return barge_store_put(tx, BARGE_KIND_IAM_POLICY, key, doc, err);
}

/* Begins a transaction (a writable one if write) and loads the policy named
 * by the call's PolicyArn in it. */
static int policy_open(struct barge_api_ctx *ctx, const json_t *in, bool write,
                       struct barge_tx **tx, json_t **doc, struct barge_error **err)
{
    if (barge_store_begin(ctx->srv->store, write, tx, err) < 0)
        return -1;
    return policy_load(ctx, *tx, barge_json_str(in, "PolicyArn", ""), doc, err);
}

static int create_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    const char *name = barge_json_str(in, "PolicyName", "");
    const char *path = barge_json_str(in, "Path", "/");
    const char *text = barge_json_str(in, "PolicyDocument", "");
    if (!name_ok(name))
        return name_invalid(err, name, "policyName");
    if (!path_ok(path))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                    "1 validation error detected: Value '%s' at 'path' failed to "
                                    "satisfy constraint: Member must begin and end with '/'",
                                    path);
    if (barge_policy_validate(text, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *old = NULL;
    _cleanup_free_ char *key = lower(name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, BARGE_KIND_IAM_POLICY, key, &old, err) < 0)
        return -1;
    if (old)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "EntityAlreadyExists",
                                    "A policy called %s already exists. Duplicate names are not "
                                    "allowed.",
                                    name);
    _cleanup_free_ char *id = barge_api_iam_unique_id("ANPA");
    _cleanup_free_ char *arn =
        barge_xasprintf("arn:aws:iam::%s:policy%s%s", ctx->srv->cfg.account_id, path, name);
    double now = barge_now();
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:f, s:f, s:s}", "PolicyName", name,
                  "PolicyId", id, "Arn", arn, "Path", path, "DefaultVersionId", "v1",
                  "AttachmentCount", 0, "PermissionsBoundaryUsageCount", 0, "IsAttachable", true,
                  "CreateDate", now, "UpdateDate", now, "_document", text);
    if (barge_json_str(in, "Description", NULL))
        json_object_set(doc, "Description", json_object_get(in, "Description"));
    set_tags(doc, in);
    if (policy_save(tx, doc, err) < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:o}", "Policy", policy_out(doc));
    return 0;
}

static int get_managed_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (policy_open(ctx, in, false, &tx, &doc, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "Policy", policy_out(doc));
    return 0;
}

static int get_policy_version(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    const char *version = barge_json_str(in, "VersionId", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (policy_open(ctx, in, false, &tx, &doc, err) < 0)
        return -1;
    if (strcmp(version, "v1") != 0)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                    "Policy %s version %s does not exist or is not attachable.",
                                    barge_json_str(doc, "Arn", ""), version);
    _cleanup_free_ char *enc = barge_aws_uri_encode(barge_json_str(doc, "_document", ""), false);
    *out =
        json_pack("{s:{s:s, s:s, s:b, s:O}}", "PolicyVersion", "Document", enc, "VersionId", "v1",
                  "IsDefaultVersion", true, "CreateDate", json_object_get(doc, "CreateDate"));
    return 0;
}

static int delete_managed_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    (void)out;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (policy_open(ctx, in, true, &tx, &doc, err) < 0)
        return -1;
    if (json_is_true(json_object_get(doc, "_aws")))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidInput",
                                    "AWS managed policy %s cannot be deleted.",
                                    barge_json_str(doc, "Arn", ""));
    if (barge_json_int(doc, "AttachmentCount", 0) > 0)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "DeleteConflict",
                                    "Cannot delete a policy attached to entities.");
    _cleanup_free_ char *key = lower(barge_json_str(doc, "PolicyName", ""));
    if (barge_store_del(tx, BARGE_KIND_IAM_POLICY, key, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    return 0;
}

static int list_managed_policies(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    struct listing l = {.only_attached = json_is_true(json_object_get(in, "OnlyAttached")),
                        .out = policy_out};
    /* The three AWS managed policies barge knows are not listed: Scope "AWS"
     * lists nothing. */
    bool aws = barge_streq(barge_json_str(in, "Scope", "All"), "AWS");
    return list_stored(ctx, in, aws ? NULL : BARGE_KIND_IAM_POLICY, &l, "Policies", out, err);
}

/* Attaches (on) or detaches the policy PolicyArn to or from an entity. */
static int attach(struct barge_api_ctx *ctx, const struct entity *e, json_t *in, bool on,
                  struct barge_error **err)
{
    const char *name = barge_json_str(in, e->name_field, "");
    const char *arn = barge_json_str(in, "PolicyArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL, *pol = NULL;
    if (entity_open(ctx, true, e, name, &tx, &doc, err) < 0 ||
        policy_load(ctx, tx, arn, &pol, err) < 0)
        return -1;
    json_t *list = member(doc, "_attached", true);
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        if (barge_streq(json_string_value(a), arn))
            break;
    }
    bool attached = i < json_array_size(list);
    if (on == attached)
        return on ? barge_store_commit(barge_steal(&tx), err)
                  : barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                         "Policy %s was not found.", arn);
    if (on)
        json_array_append_new(list, json_string(arn));
    else
        json_array_remove(list, i);
    json_object_set_new(pol, "AttachmentCount",
                        json_integer(barge_json_int(pol, "AttachmentCount", 0) + (on ? 1 : -1)));
    if (!json_is_true(json_object_get(pol, "_aws")) && policy_save(tx, pol, err) < 0)
        return -1;
    return entity_save(&tx, e, doc, err);
}

static int list_attached(struct barge_api_ctx *ctx, const struct entity *e, json_t *in,
                         json_t **out, struct barge_error **err)
{
    const char *name = barge_json_str(in, e->name_field, "");
    const char *prefix = barge_json_str(in, "PathPrefix", "/");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_open(ctx, false, e, name, &tx, &doc, err) < 0)
        return -1;
    json_t *list = json_array();
    *out = json_pack("{s:o, s:b}", "AttachedPolicies", list, "IsTruncated", false);
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(doc, "_attached"), i, a)
    {
        _cleanup_json_ json_t *pol = NULL;
        _cleanup_error_ struct barge_error *gone = NULL;
        if (policy_load(ctx, tx, json_string_value(a), &pol, &gone) < 0 ||
            !barge_str_has_prefix(barge_json_str(pol, "Path", "/"), prefix))
            continue;
        json_array_append_new(list, json_pack("{s:s, s:s}", "PolicyName",
                                              barge_json_str(pol, "PolicyName", ""), "PolicyArn",
                                              json_string_value(a)));
    }
    return 0;
}

static int attach_policy(struct barge_api_ctx *ctx, const struct entity *e, json_t *in,
                         json_t **out, struct barge_error **err)
{
    (void)out;
    return attach(ctx, e, in, true, err);
}

static int detach_policy(struct barge_api_ctx *ctx, const struct entity *e, json_t *in,
                         json_t **out, struct barge_error **err)
{
    (void)out;
    return attach(ctx, e, in, false, err);
}

/* --- groups ----------------------------------------------------------------- */

static int create_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    const char *name = barge_json_str(in, "GroupName", "");
    const char *path = barge_json_str(in, "Path", "/");
    if (entity_check(name, "groupName", path, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (entity_create(ctx, &group_entity, name, path, &tx, &doc, err) < 0 ||
        entity_save(&tx, &group_entity, doc, err) < 0)
        return -1;
    return entity_answer(&group_entity, doc, out);
}

static bool in_group(const json_t *user, const char *group_key)
{
    size_t i;
    json_t *g;
    json_array_foreach(barge_json_array(user, "_groups"), i, g)
    {
        if (barge_streq(json_string_value(g), group_key))
            return true;
    }
    return false;
}

struct members {
    const char *group_key;
    json_t *users; /* wire forms */
};

static int collect_member(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    struct members *m = ud;
    if (in_group(doc, m->group_key))
        json_array_append_new(m->users, user_out(doc));
    return 0;
}

/* The users in the group of the stored doc, a new array of their wire
 * forms. */
static int group_members(struct barge_tx *tx, const json_t *group, json_t **out,
                         struct barge_error **err)
{
    _cleanup_free_ char *key = lower(barge_json_str(group, "GroupName", ""));
    struct members m = {key, json_array()};
    if (barge_store_scan(tx, BARGE_KIND_IAM_USER, "", NULL, false, 0, collect_member, &m, err) <
        0) {
        json_decref(m.users);
        return -1;
    }
    *out = m.users;
    return 0;
}

static int get_group(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    json_t *users = NULL;
    if (entity_open(ctx, false, &group_entity, barge_json_str(in, "GroupName", ""), &tx, &doc,
                    err) < 0 ||
        group_members(tx, doc, &users, err) < 0)
        return -1;
    *out =
        json_pack("{s:o, s:o, s:b}", "Group", group_out(doc), "Users", users, "IsTruncated", false);
    return 0;
}

static int delete_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    (void)out;
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_json_ json_t *doc = NULL, *users = NULL;
        if (entity_open(ctx, false, &group_entity, barge_json_str(in, "GroupName", ""), &tx, &doc,
                        err) < 0 ||
            group_members(tx, doc, &users, err) < 0)
            return -1;
        if (json_array_size(users))
            return barge_error_set_type(err, BARGE_ERR_CONFLICT, "DeleteConflict",
                                        "Cannot delete entity, must remove users from group "
                                        "first.");
    }
    return delete_entity(ctx, &group_entity, in, err);
}

static int list_groups(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    struct listing l = {.out = group_out};
    return list_stored(ctx, in, BARGE_KIND_IAM_GROUP, &l, "Groups", out, err);
}

/* Adds the user to the group (add) or removes it. */
static int membership(struct barge_api_ctx *ctx, const json_t *in, bool add,
                      struct barge_error **err)
{
    const char *gname = barge_json_str(in, "GroupName", "");
    const char *uname = barge_json_str(in, "UserName", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *group = NULL, *user = NULL;
    if (entity_open(ctx, true, &group_entity, gname, &tx, &group, err) < 0 ||
        entity_load(tx, &user_entity, uname, &user, err) < 0)
        return -1;
    _cleanup_free_ char *key = lower(gname);
    json_t *list = member(user, "_groups", true);
    bool there = in_group(user, key);
    if (add == there)
        return add ? barge_store_commit(barge_steal(&tx), err)
                   : barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NoSuchEntity",
                                          "The user with name %s is not in group %s.", uname,
                                          gname);
    if (add) {
        json_array_append_new(list, json_string(key));
    } else {
        for (size_t i = 0; i < json_array_size(list); i++)
            if (barge_streq(json_string_value(json_array_get(list, i)), key))
                json_array_remove(list, i--);
    }
    return entity_save(&tx, &user_entity, user, err);
}

static int add_user_to_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    (void)out;
    return membership(ctx, in, true, err);
}

static int remove_user_from_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    (void)out;
    return membership(ctx, in, false, err);
}

static int list_groups_for_user(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *user = NULL;
    if (entity_open(ctx, false, &user_entity, barge_json_str(in, "UserName", ""), &tx, &user, err) <
        0)
        return -1;
    json_t *groups = json_array();
    *out = json_pack("{s:o, s:b}", "Groups", groups, "IsTruncated", false);
    size_t i;
    json_t *g;
    json_array_foreach(barge_json_array(user, "_groups"), i, g)
    {
        _cleanup_json_ json_t *group = NULL;
        if (barge_store_get(tx, BARGE_KIND_IAM_GROUP, json_string_value(g), &group, err) < 0)
            return -1;
        if (group)
            json_array_append_new(groups, group_out(group));
    }
    return 0;
}

/* The handler of an operation that is fn on the users or on the roles. */
#define ENTITY_OP(handler, fn, entity)                                      \
    static int handler(struct barge_api_ctx *ctx, json_t *in, json_t **out, \
                       struct barge_error **err)                            \
    {                                                                       \
        return fn(ctx, &entity, in, out, err);                              \
    }

ENTITY_OP(put_user_policy, put_policy, user_entity)
ENTITY_OP(get_user_policy, get_policy, user_entity)
ENTITY_OP(delete_user_policy, delete_policy, user_entity)
ENTITY_OP(list_user_policies, list_policies, user_entity)
ENTITY_OP(put_role_policy, put_policy, role_entity)
ENTITY_OP(get_role_policy, get_policy, role_entity)
ENTITY_OP(delete_role_policy, delete_policy, role_entity)
ENTITY_OP(list_role_policies, list_policies, role_entity)
ENTITY_OP(attach_user_policy, attach_policy, user_entity)
ENTITY_OP(detach_user_policy, detach_policy, user_entity)
ENTITY_OP(attach_role_policy, attach_policy, role_entity)
ENTITY_OP(detach_role_policy, detach_policy, role_entity)
ENTITY_OP(list_attached_user_policies, list_attached, user_entity)
ENTITY_OP(list_attached_role_policies, list_attached, role_entity)
ENTITY_OP(put_group_policy, put_policy, group_entity)
ENTITY_OP(get_group_policy, get_policy, group_entity)
ENTITY_OP(delete_group_policy, delete_policy, group_entity)
ENTITY_OP(list_group_policies, list_policies, group_entity)
ENTITY_OP(attach_group_policy, attach_policy, group_entity)
ENTITY_OP(detach_group_policy, detach_policy, group_entity)
ENTITY_OP(list_attached_group_policies, list_attached, group_entity)

static const struct barge_api_op iam_ops[] = {
    {"CreateRole", create_role},
    {"GetRole", get_role},
    {"DeleteRole", delete_role},
    {"ListRoles", list_roles},
    {"UpdateAssumeRolePolicy", update_assume_role_policy},
    {"CreateUser", create_user},
    {"GetUser", get_user},
    {"DeleteUser", delete_user},
    {"ListUsers", list_users},
    {"CreateAccessKey", create_access_key},
    {"DeleteAccessKey", delete_access_key},
    {"ListAccessKeys", list_access_keys},
    {"UpdateAccessKey", update_access_key},
    {"PutUserPolicy", put_user_policy},
    {"GetUserPolicy", get_user_policy},
    {"DeleteUserPolicy", delete_user_policy},
    {"ListUserPolicies", list_user_policies},
    {"PutRolePolicy", put_role_policy},
    {"GetRolePolicy", get_role_policy},
    {"DeleteRolePolicy", delete_role_policy},
    {"ListRolePolicies", list_role_policies},
    {"CreatePolicy", create_policy},
    {"GetPolicy", get_managed_policy},
    {"GetPolicyVersion", get_policy_version},
    {"DeletePolicy", delete_managed_policy},
    {"ListPolicies", list_managed_policies},
    {"AttachUserPolicy", attach_user_policy},
    {"DetachUserPolicy", detach_user_policy},
    {"AttachRolePolicy", attach_role_policy},
    {"DetachRolePolicy", detach_role_policy},
    {"ListAttachedUserPolicies", list_attached_user_policies},
    {"ListAttachedRolePolicies", list_attached_role_policies},
    {"CreateGroup", create_group},
    {"GetGroup", get_group},
    {"DeleteGroup", delete_group},
    {"ListGroups", list_groups},
    {"AddUserToGroup", add_user_to_group},
    {"RemoveUserFromGroup", remove_user_from_group},
    {"ListGroupsForUser", list_groups_for_user},
    {"PutGroupPolicy", put_group_policy},
    {"GetGroupPolicy", get_group_policy},
    {"DeleteGroupPolicy", delete_group_policy},
    {"ListGroupPolicies", list_group_policies},
    {"AttachGroupPolicy", attach_group_policy},
    {"DetachGroupPolicy", detach_group_policy},
    {"ListAttachedGroupPolicies", list_attached_group_policies},
    {NULL, NULL},
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
