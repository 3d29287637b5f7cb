/* Secrets Manager (AWS JSON 1.1, target prefix secretsmanager): CreateSecret,
 * GetSecretValue, PutSecretValue, UpdateSecret, DescribeSecret, ListSecrets,
 * ListSecretVersionIds, DeleteSecret, RestoreSecret, TagResource and
 * UntagResource.
 *
 * One document per secret and region (kind "smsecret", key
 * "<region>|<name>") with all its versions. Version values are encrypted
 * under the master key, each bound to the secret's ARN and the version id.
 * Staging follows AWS: a new version takes AWSCURRENT unless told otherwise,
 * the version that had it becomes AWSPREVIOUS, and versions left without a
 * stage are kept (deprecated) up to 100 in all. DeleteSecret schedules
 * deletion after a recovery window; barged's housekeeping removes the secret
 * when the window has passed (barge_api_secretsmanager_reap). */
#include <string.h>
#include <strings.h>

#include "api/access.h"
#include "api/api.h"
#include "api/secrets.h"
#include "api/server.h"
#include "common/arn.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define KIND_SECRET "smsecret"
/* Secrets scheduled for deletion, same keys: housekeeping reads only these. */
#define KIND_PURGE      "smpurge"
#define MAX_VERSIONS    100
#define MAX_VALUE_BYTES 65536
#define MAX_TAGS        50
#define DAY             86400.0

static int invalid_param(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int invalid_param(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException", "%s", msg);
}

static int invalid_request(struct barge_error **err, const char *msg)
{
    return barge_error_set_type(err, BARGE_ERR_CLIENT, "InvalidRequestException", "%s", msg);
}

static int not_found(struct barge_error **err)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                "Secrets Manager can't find the specified secret.");
}

static bool name_valid(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= 512 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+=.@-") ==
               n;
}

static char *secret_key(const char *region, const char *name)
{
    return barge_xasprintf("%s|%s", region, name);
}

static char *version_aad(const json_t *doc, const char *vid)
{
    return barge_xasprintf("secretsmanager|%s|%s", barge_json_str(doc, "arn", ""), vid);
}

static bool is_deleted(const json_t *doc)
{
    return json_is_number(json_object_get(doc, "deletedDate"));
}

/* Resolves a SecretId (name, full ARN or partial ARN without the random
 * suffix) in the caller's region. Returns 1 with *doc and *key (new), 0 when
 * there is no such secret. */
static int find(struct barge_api_ctx *ctx, struct barge_tx *tx, const char *id, json_t **doc,
                char **key, struct barge_error **err)
{
    *doc = NULL;
    *key = NULL;
    if (!barge_str_has_prefix(id, "arn:")) {
        *key = secret_key(ctx->who.region, id);
        int r = barge_store_get(tx, KIND_SECRET, *key, doc, err);
        if (r <= 0) {
            free(*key);
            *key = NULL;
        }
        return r;
    }
    struct barge_arn a;
    if (barge_arn_parse(id, &a) < 0)
        return 0;
    bool ok = strcmp(a.service, "secretsmanager") == 0 && strcmp(a.region, ctx->who.region) == 0 &&
              strcmp(a.account, ctx->srv->cfg.account_id) == 0 &&
              barge_str_has_prefix(a.resource, "secret:") && a.resource[7];
    _cleanup_free_ char *rid = ok ? barge_xstrdup(a.resource + 7) : NULL;
    barge_arn_release(&a);
    if (!ok)
        return 0;
    /* Either the partial ARN of a secret named rid, or the full ARN of one
     * named rid less its "-XXXXXX". */
    for (int pass = 0; pass < 2; pass++) {
        _cleanup_free_ char *name = barge_xstrdup(rid);
        if (pass == 1) {
            char *dash = strrchr(name, '-');
            if (!dash || strlen(dash + 1) != 6)
                return 0;
            *dash = '\0';
        }
        _cleanup_free_ char *k = secret_key(ctx->who.region, name);
        json_t *d = NULL;
        int r = barge_store_get(tx, KIND_SECRET, k, &d, err);
        if (r < 0)
            return -1;
        if (r && (pass == 0 || barge_streq(barge_json_str(d, "arn", NULL), id))) {
            *doc = d;
            *key = barge_steal(&k);
            return 1;
        }
        json_decref(d);
    }
    return 0;
}

/* The ARN to check access against before the secret is found: the given ARN,
 * or the partial ARN of a name. */
static char *request_arn(struct barge_api_ctx *ctx, const char *id)
{
    if (barge_str_has_prefix(id, "arn:"))
        return barge_xstrdup(id);
    return barge_xasprintf("arn:aws:secretsmanager:%s:%s:secret:%s", ctx->who.region,
                           ctx->srv->cfg.account_id, id);
}

/* find() plus the access check on the secret found (or, when there is none,
 * on the name asked for, so that a caller without access learns nothing). */
static int load(struct barge_api_ctx *ctx, struct barge_tx *tx, const char *action, const char *id,
                json_t **doc, char **key, struct barge_error **err)
{
    int r = find(ctx, tx, id, doc, key, err);
    if (r < 0)
        return -1;
    _cleanup_free_ char *arn =
        r ? barge_xstrdup(barge_json_str(*doc, "arn", "")) : request_arn(ctx, id);
    if (barge_api_authorize(ctx->srv, &ctx->who, action, arn, err) < 0)
        return -1;
    return r ? 0 : not_found(err);
}

static int save(struct barge_tx **tx, const char *key, const json_t *doc, struct barge_error **err)
{
    if (barge_store_put(*tx, KIND_SECRET, key, doc, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(tx), err);
}

/* --- versions ------------------------------------------------------------ */

struct value {
    const char *string;    /* SecretString, or NULL */
    unsigned char *binary; /* decoded SecretBinary, or NULL */
    size_t len;
};

static void value_release(struct value *v)
{
    if (v->binary)
        barge_crypto_free(v->binary, v->len);
    v->binary = NULL;
}

/* Takes SecretString / SecretBinary from in. Returns 1 when a value was
 * given, 0 when none. */
static int take_value(const json_t *in, struct value *v, struct barge_error **err)
{
    memset(v, 0, sizeof(*v));
    const char *s = barge_json_str(in, "SecretString", NULL);
    const char *b = barge_json_str(in, "SecretBinary", NULL);
    if (s && b)
        return invalid_param(err, "You can't specify both a binary secret value and a string "
                                  "secret value in the same secret.");
    if (s) {
        v->string = s;
        v->len = strlen(s);
    } else if (b) {
        v->binary = barge_base64_decode(b, &v->len);
        if (!v->binary)
            return invalid_param(err, "SecretBinary must be base64-encoded.");
    } else {
        return 0;
    }
    if (v->len > MAX_VALUE_BYTES) {
        value_release(v);
        return invalid_param(err, "The secret value is larger than 65536 bytes.");
    }
    return 1;
}

/* Opens version ver of doc. *plain (wipe and free with barge_crypto_free)
 * holds *len bytes; *binary tells which kind it was. */
static int open_version(struct barge_api_ctx *ctx, const json_t *doc, const char *vid,
                        const json_t *ver, char **plain, size_t *len, struct barge_error **err)
{
    _cleanup_free_ char *aad = version_aad(doc, vid);
    return barge_crypto_open(&ctx->srv->master_key, barge_json_str(ver, "value", ""), aad, plain,
                             len, err);
}

static bool has_stage(const json_t *ver, const char *stage)
{
    size_t i;
    json_t *s;
    json_array_foreach(barge_json_array(ver, "stages"), i, s)
    {
        if (barge_streq(json_string_value(s), stage))
            return true;
    }
    return false;
}

static void drop_stage(json_t *ver, const char *stage)
{
    json_t *stages = barge_json_array(ver, "stages");
    size_t i;
    json_t *s;
    json_array_foreach(stages, i, s)
    {
        if (barge_streq(json_string_value(s), stage)) {
            json_array_remove(stages, i);
            return;
        }
    }
}

/* The version of doc that carries stage, or NULL; *vid its id (borrowed). */
static json_t *staged(const json_t *doc, const char *stage, const char **vid)
{
    const char *k;
    json_t *v;
    json_object_foreach(barge_json_object(doc, "versions"), k, v)
    {
        if (has_stage(v, stage)) {
            *vid = k;
            return v;
        }
    }
    return NULL;
}

/* Moves stage onto the version vid. */
static void move_stage(json_t *doc, const char *vid, const char *stage)
{
    json_t *versions = barge_json_object(doc, "versions");
    const char *old_vid = NULL;
    json_t *old = staged(doc, stage, &old_vid);
    if (old && strcmp(old_vid, vid) == 0)
        return;
    if (old) {
        drop_stage(old, stage);
        if (strcmp(stage, "AWSCURRENT") == 0) {
            const char *prev_vid = NULL;
            json_t *prev = staged(doc, "AWSPREVIOUS", &prev_vid);
            if (prev)
                drop_stage(prev, "AWSPREVIOUS");
            json_array_append_new(barge_json_array(old, "stages"), json_string("AWSPREVIOUS"));
        }
    }
    json_t *ver = json_object_get(versions, vid);
    if (strcmp(stage, "AWSPREVIOUS") != 0 || !has_stage(ver, stage))
        drop_stage(ver, stage);
    json_array_append_new(barge_json_array(ver, "stages"), json_string(stage));
}

/* Drops the oldest versions without a stage beyond AWS's 100. */
static void prune(json_t *doc)
{
    json_t *versions = barge_json_object(doc, "versions");
    while (json_object_size(versions) > MAX_VERSIONS) {
        const char *k, *oldest = NULL;
        json_t *v;
        json_int_t oldest_seq = 0;
        json_object_foreach(versions, k, v)
        {
            if (json_array_size(barge_json_array(v, "stages")) == 0 &&
                (!oldest || barge_json_int(v, "seq", 0) < oldest_seq)) {
                oldest = k;
                oldest_seq = barge_json_int(v, "seq", 0);
            }
        }
        if (!oldest)
            break;
        json_object_del(versions, oldest);
    }
}

/* Adds version vid with value v and stages (NULL: AWSCURRENT). An existing
 * vid is fine when it holds the same value (a retried request), else a
 * ResourceExistsException. *created tells which. */
static int add_version(struct barge_api_ctx *ctx, json_t *doc, const char *vid,
                       const struct value *v, const json_t *stages, bool *created,
                       struct barge_error **err)
{
    *created = false;
    json_t *versions = barge_json_object(doc, "versions");
    json_t *existing = json_object_get(versions, vid);
    const void *bytes = v->string ? (const void *)v->string : v->binary;
    if (existing) {
        char *plain = NULL;
        size_t len = 0;
        if (open_version(ctx, doc, vid, existing, &plain, &len, err) < 0)
            return -1;
        bool same = len == v->len && memcmp(plain, bytes, len) == 0 &&
                    barge_json_bool(existing, "binary", false) == (v->binary != NULL);
        barge_crypto_free(plain, len);
        if (!same)
            return barge_error_set_type(err, BARGE_ERR_EXISTS, "ResourceExistsException",
                                        "You can't modify an existing version, you can only "
                                        "create new versions.");
        return 0;
    }
    _cleanup_free_ char *aad = version_aad(doc, vid);
    _cleanup_free_ char *sealed = barge_crypto_seal(&ctx->srv->master_key, bytes, v->len, aad);
    json_int_t seq = barge_json_int(doc, "seq", 0) + 1;
    json_object_set_new(doc, "seq", json_integer(seq));
    json_object_set_new(versions, vid,
                        json_pack("{s:s, s:b, s:[], s:f, s:I}", "value", sealed, "binary",
                                  v->binary != NULL, "stages", "createdDate", barge_now(), "seq",
                                  seq));
    if (json_array_size(stages) == 0) {
        move_stage(doc, vid, "AWSCURRENT");
    } else {
        size_t i;
        json_t *s;
        json_array_foreach((json_t *)stages, i, s) move_stage(doc, vid, json_string_value(s));
    }
    prune(doc);
    json_object_set_new(doc, "lastChangedDate", json_real(barge_now()));
    *created = true;
    return 0;
}

static const char *request_token(const json_t *in, char uuid[37])
{
    const char *tok = barge_json_str(in, "ClientRequestToken", NULL);
    if (tok)
        return tok;
    barge_id_uuid(uuid);
    return uuid;
}

static json_t *stages_of(const json_t *doc, const char *vid)
{
    json_t *v = json_object_get(barge_json_object(doc, "versions"), vid);
    json_t *s = barge_json_array(v, "stages");
    return s ? json_deep_copy(s) : json_array();
}

static json_t *versions_to_stages(const json_t *doc, bool include_unstaged)
{
    json_t *map = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(barge_json_object(doc, "versions"), k, v)
    {
        json_t *s = barge_json_array(v, "stages");
        if (json_array_size(s) || include_unstaged)
            json_object_set_new(map, k, s ? json_deep_copy(s) : json_array());
    }
    return map;
}

/* --- operations ---------------------------------------------------------- */

static int check_tags(const json_t *tags, struct barge_error **err)
{
    if (json_array_size(tags) > MAX_TAGS)
        return invalid_param(err, "A secret can have at most %d tags; %zu were given.", MAX_TAGS,
                             json_array_size(tags));
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)tags, i, t)
    {
        const char *k = barge_json_str(t, "Key", NULL);
        if (!k || !*k)
            return invalid_param(err, "Tag keys must not be empty.");
        if (strncasecmp(k, "aws:", 4) == 0)
            return invalid_param(err, "Tag key '%s' is invalid: the 'aws:' prefix is reserved.", k);
    }
    return 0;
}

static void random_suffix(char out[7])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char buf[6];
    barge_random_bytes(buf, sizeof(buf));
    for (int i = 0; i < 6; i++)
        out[i] = alphabet[buf[i] % (sizeof(alphabet) - 1)];
    out[6] = '\0';
}

/* CreateSecret once the input is checked; v is NULL when no value was
 * given. */
static int create(struct barge_api_ctx *ctx, const json_t *in, const char *name,
                  const struct value *v, json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = secret_key(ctx->who.region, name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_SECRET, key, &doc, err) < 0)
        return -1;
    char uuid[37];
    const char *vid = request_token(in, uuid);
    bool created = false;
    if (doc) {
        if (is_deleted(doc))
            return invalid_request(err, "You can't create this secret because a secret with "
                                        "this name is already scheduled for deletion.");
        struct barge_error *retry = NULL;
        if (v && json_object_get(barge_json_object(doc, "versions"), vid) &&
            add_version(ctx, doc, vid, v, NULL, &created, &retry) == 0) {
            /* A retry of the same CreateSecret: answer as the first time. */
            *out = json_pack("{s:s, s:s, s:s, s:[]}", "ARN", barge_json_str(doc, "arn", ""), "Name",
                             name, "VersionId", vid, "ReplicationStatus");
            return 0;
        }
        barge_error_free(retry);
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "ResourceExistsException",
                                    "The operation failed because the secret %s already exists.",
                                    name);
    }
    char suffix[7];
    random_suffix(suffix);
    _cleanup_free_ char *arn =
        barge_xasprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", ctx->who.region,
                        ctx->srv->cfg.account_id, name, suffix);
    double now = barge_now();
    doc = json_pack("{s:s, s:s, s:s, s:f, s:f, s:{}, s:[], s:I}", "name", name, "region",
                    ctx->who.region, "arn", arn, "createdDate", now, "lastChangedDate", now,
                    "versions", "tags", "seq", (json_int_t)0);
    barge_json_set_str(doc, "description", barge_json_str(in, "Description", NULL));
    barge_json_set_str(doc, "kmsKeyId", barge_json_str(in, "KmsKeyId", NULL));
    barge_json_set_str(doc, "type", barge_json_str(in, "Type", NULL));
    json_t *tags = barge_json_array(in, "Tags");
    if (tags)
        barge_api_tags_merge(doc, tags);
    if ((v && add_version(ctx, doc, vid, v, NULL, &created, err) < 0) ||
        save(&tx, key, doc, err) < 0)
        return -1;
    barge_info("secretsmanager: created secret %s", arn);
    *out = json_pack("{s:s, s:s, s:[]}", "ARN", arn, "Name", name, "ReplicationStatus");
    if (v)
        json_object_set_new(*out, "VersionId", json_string(vid));
    return 0;
}

static int create_secret(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    const char *name = barge_json_str(in, "Name", "");
    if (!name_valid(name))
        return invalid_param(err,
                             "Invalid name '%s'. Must be a valid name containing "
                             "alphanumeric characters, or any of the following: -/_+=.@!",
                             name);
    _cleanup_free_ char *partial = request_arn(ctx, name);
    if (barge_api_authorize(ctx->srv, &ctx->who, "secretsmanager:CreateSecret", partial, err) < 0)
        return -1;
    json_t *tags = barge_json_array(in, "Tags");
    if (tags && check_tags(tags, err) < 0)
        return -1;
    if (json_array_size(barge_json_array(in, "AddReplicaRegions")))
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "InvalidRequestException",
                                    "barge does not replicate secrets across regions.");
    struct value v;
    int has_value = take_value(in, &v, err);
    if (has_value < 0)
        return -1;
    int r = create(ctx, in, name, has_value ? &v : NULL, out, err);
    value_release(&v);
    return r;
}

static int get_secret_value(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    const char *id = barge_json_str(in, "SecretId", "");
    const char *want_vid = barge_json_str(in, "VersionId", NULL);
    const char *want_stage = barge_json_str(in, "VersionStage", NULL);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:GetSecretValue", id, &doc, &key, err) < 0)
        return -1;
    if (is_deleted(doc))
        return invalid_request(err, "You can't perform this operation on the secret because it "
                                    "was marked for deletion.");
    const char *vid = NULL;
    json_t *ver = NULL;
    if (want_vid) {
        ver = json_object_get(barge_json_object(doc, "versions"), want_vid);
        vid = want_vid;
        if (ver && want_stage && !has_stage(ver, want_stage))
            return invalid_param(err, "You provided a VersionStage that is not associated to "
                                      "the provided VersionId.");
    } else {
        ver = staged(doc, want_stage ? want_stage : "AWSCURRENT", &vid);
    }
    if (!ver)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                    "Secrets Manager can't find the specified secret value for "
                                    "%s: %s",
                                    want_vid ? "VersionId" : "staging label",
                                    want_vid     ? want_vid
                                    : want_stage ? want_stage
                                                 : "AWSCURRENT");
    char *plain = NULL;
    size_t len = 0;
    if (open_version(ctx, doc, vid, ver, &plain, &len, err) < 0)
        return -1;
    json_t *value;
    bool binary = barge_json_bool(ver, "binary", false);
    if (binary) {
        char *b64 = barge_base64_encode(plain, len);
        value = json_string(b64);
        barge_crypto_free_str(b64);
    } else {
        value = json_stringn(plain, len);
    }
    barge_crypto_free(plain, len);
    if (!value)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "secret '%s' holds invalid UTF-8", id);
    *out = json_pack("{s:s, s:s, s:s, s:o, s:o, s:O}", "ARN", barge_json_str(doc, "arn", ""),
                     "Name", barge_json_str(doc, "name", ""), "VersionId", vid,
                     binary ? "SecretBinary" : "SecretString", value, "VersionStages",
                     stages_of(doc, vid), "CreatedDate", json_object_get(ver, "createdDate"));
    /* LastAccessedDate is a day, as AWS keeps it; write at most once a day. */
    double today = (double)((long long)(barge_now() / DAY)) * DAY;
    if (json_number_value(json_object_get(doc, "lastAccessedDate")) < today) {
        barge_store_abort(barge_steal(&tx));
        _cleanup_json_ json_t *fresh = NULL;
        _cleanup_free_ char *k2 = NULL;
        _cleanup_error_ struct barge_error *e2 = NULL;
        if (barge_store_begin(ctx->srv->store, true, &tx, &e2) == 0 &&
            find(ctx, tx, id, &fresh, &k2, &e2) > 0) {
            json_object_set_new(fresh, "lastAccessedDate", json_real(today));
            if (save(&tx, k2, fresh, &e2) < 0)
                barge_warn("secretsmanager: recording access to %s: %s", key, e2->message);
        }
    }
    return 0;
}

static int put_secret_value(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    const char *id = barge_json_str(in, "SecretId", "");
    struct value v;
    int has_value = take_value(in, &v, err);
    if (has_value < 0)
        return -1;
    int r = -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (!has_value) {
        invalid_param(err, "You must provide either SecretString or SecretBinary.");
        goto out;
    }
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:PutSecretValue", id, &doc, &key, err) < 0)
        goto out;
    if (is_deleted(doc)) {
        invalid_request(err, "You can't perform this operation on the secret because it was "
                             "marked for deletion.");
        goto out;
    }
    char uuid[37];
    const char *vid = request_token(in, uuid);
    bool created = false;
    if (add_version(ctx, doc, vid, &v, barge_json_array(in, "VersionStages"), &created, err) < 0 ||
        (created && save(&tx, key, doc, err) < 0))
        goto out;
    *out = json_pack("{s:s, s:s, s:s, s:o}", "ARN", barge_json_str(doc, "arn", ""), "Name",
                     barge_json_str(doc, "name", ""), "VersionId", vid, "VersionStages",
                     stages_of(doc, vid));
    r = 0;
out:
    value_release(&v);
    return r;
}

static int update_secret(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    const char *id = barge_json_str(in, "SecretId", "");
    struct value v;
    int has_value = take_value(in, &v, err);
    if (has_value < 0)
        return -1;
    int r = -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:UpdateSecret", id, &doc, &key, err) < 0)
        goto out;
    if (is_deleted(doc)) {
        invalid_request(err, "You can't perform this operation on the secret because it was "
                             "marked for deletion.");
        goto out;
    }
    if (json_object_get(in, "Description"))
        json_object_set_new(doc, "description", json_string(barge_json_str(in, "Description", "")));
    if (json_object_get(in, "KmsKeyId"))
        json_object_set_new(doc, "kmsKeyId", json_string(barge_json_str(in, "KmsKeyId", "")));
    barge_json_set_str(doc, "type", barge_json_str(in, "Type", NULL));
    char uuid[37];
    const char *vid = has_value ? request_token(in, uuid) : NULL;
    bool created = false;
    if (vid && add_version(ctx, doc, vid, &v, NULL, &created, err) < 0)
        goto out;
    json_object_set_new(doc, "lastChangedDate", json_real(barge_now()));
    if (save(&tx, key, doc, err) < 0)
        goto out;
    *out = json_pack("{s:s, s:s}", "ARN", barge_json_str(doc, "arn", ""), "Name",
                     barge_json_str(doc, "name", ""));
    if (vid)
        json_object_set_new(*out, "VersionId", json_string(vid));
    r = 0;
out:
    value_release(&v);
    return r;
}

/* The fields DescribeSecret and ListSecrets share. */
static json_t *render(const json_t *doc, const char *stages_key)
{
    json_t *o = json_pack("{s:s, s:s, s:O, s:O, s:b, s:o}", "ARN", barge_json_str(doc, "arn", ""),
                          "Name", barge_json_str(doc, "name", ""), "CreatedDate",
                          json_object_get(doc, "createdDate"), "LastChangedDate",
                          json_object_get(doc, "lastChangedDate"), "RotationEnabled", 0, stages_key,
                          versions_to_stages(doc, false));
    barge_json_set_str(o, "Description", barge_json_str(doc, "description", NULL));
    barge_json_set_str(o, "KmsKeyId", barge_json_str(doc, "kmsKeyId", NULL));
    barge_json_set_str(o, "Type", barge_json_str(doc, "type", NULL));
    const char *dates[][2] = {{"lastAccessedDate", "LastAccessedDate"},
                              {"deletedDate", "DeletedDate"}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(dates); i++)
        if (json_object_get(doc, dates[i][0]))
            json_object_set(o, dates[i][1], json_object_get(doc, dates[i][0]));
    json_t *tags = barge_json_array(doc, "tags");
    if (json_array_size(tags))
        json_object_set(o, "Tags", tags);
    return o;
}

static int describe_secret(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:DescribeSecret", barge_json_str(in, "SecretId", ""), &doc,
             &key, err) < 0)
        return -1;
    *out = render(doc, "VersionIdsToStages");
    return 0;
}

static int list_versions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:ListSecretVersionIds", barge_json_str(in, "SecretId", ""),
             &doc, &key, err) < 0)
        return -1;
    bool deprecated = barge_json_bool(in, "IncludeDeprecated", false);
    json_t *list = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(barge_json_object(doc, "versions"), k, v)
    {
        json_t *stages = barge_json_array(v, "stages");
        if (!json_array_size(stages) && !deprecated)
            continue;
        json_array_append_new(list,
                              json_pack("{s:s, s:O, s:O}", "VersionId", k, "VersionStages", stages,
                                        "CreatedDate", json_object_get(v, "createdDate")));
    }
    *out = json_pack("{s:s, s:s, s:o}", "ARN", barge_json_str(doc, "arn", ""), "Name",
                     barge_json_str(doc, "name", ""), "Versions", list);
    return 0;
}

/* --- ListSecrets --------------------------------------------------------- */

static bool prefix_match(const char *field, const char *value, bool nocase)
{
    if (!field)
        return false;
    size_t n = strlen(value);
    return nocase ? strncasecmp(field, value, n) == 0 : strncmp(field, value, n) == 0;
}

static bool filter_value_matches(const json_t *doc, const char *key, const char *value)
{
    const char *name = barge_json_str(doc, "name", "");
    const char *desc = barge_json_str(doc, "description", NULL);
    size_t i;
    json_t *t;
    if (strcmp(key, "name") == 0)
        return prefix_match(name, value, false);
    if (strcmp(key, "description") == 0)
        return prefix_match(desc, value, true);
    if (strcmp(key, "tag-key") == 0 || strcmp(key, "tag-value") == 0) {
        json_array_foreach(barge_json_array(doc, "tags"), i, t)
        {
            if (prefix_match(barge_json_str(t, key[4] == 'k' ? "Key" : "Value", NULL), value,
                             false))
                return true;
        }
        return false;
    }
    if (strcmp(key, "primary-region") == 0 || strcmp(key, "owning-service") == 0)
        return false;
    /* "all": any attribute, case-insensitively. */
    if (prefix_match(name, value, true) || prefix_match(desc, value, true))
        return true;
    json_array_foreach(barge_json_array(doc, "tags"), i, t)
    {
        if (prefix_match(barge_json_str(t, "Key", NULL), value, true) ||
            prefix_match(barge_json_str(t, "Value", NULL), value, true))
            return true;
    }
    return false;
}

static bool filters_match(const json_t *in, const json_t *doc)
{
    size_t i, j;
    json_t *f, *v;
    json_array_foreach(barge_json_array(in, "Filters"), i, f)
    {
        const char *key = barge_json_str(f, "Key", "all");
        bool any = false;
        json_array_foreach(barge_json_array(f, "Values"), j, v)
        {
            const char *value = json_string_value(v);
            bool negate = value && value[0] == '!';
            bool m = value && filter_value_matches(doc, key, negate ? value + 1 : value);
            if (negate ? !m : m)
                any = true;
        }
        if (!any)
            return false;
    }
    return true;
}

struct collected {
    const json_t *in;
    bool include_deleted;
    json_t *docs;
};

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct collected *c = ud;
    if ((c->include_deleted || !is_deleted(doc)) && filters_match(c->in, doc))
        json_array_append(c->docs, doc);
    return 0;
}

struct sort {
    const char *field;
    bool desc;
};

static int compare(const void *a, const void *b, void *ud)
{
    const struct sort *s = ud;
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c;
    if (strcmp(s->field, "name") == 0) {
        c = strcmp(barge_json_str(x, "name", ""), barge_json_str(y, "name", ""));
    } else {
        double dx = json_number_value(json_object_get(x, s->field));
        double dy = json_number_value(json_object_get(y, s->field));
        c = dx < dy   ? -1
            : dx > dy ? 1
                      : strcmp(barge_json_str(x, "name", ""), barge_json_str(y, "name", ""));
    }
    return s->desc ? -c : c;
}

static int list_secrets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    _cleanup_free_ char *all = barge_xasprintf("arn:aws:secretsmanager:%s:%s:secret:*",
                                               ctx->who.region, ctx->srv->cfg.account_id);
    int max;
    if (barge_api_authorize(ctx->srv, &ctx->who, "secretsmanager:ListSecrets", all, err) < 0 ||
        barge_api_max_results(in, "MaxResults", 100, 100, &max, err) < 0)
        return -1;
    long long offset = 0;
    const char *token = barge_json_str(in, "NextToken", NULL);
    if (token) {
        _cleanup_free_ char *t = NULL;
        if (barge_api_token_decode(token, &t, err) < 0 || strspn(t, "0123456789") != strlen(t))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidNextTokenException",
                                        "The NextToken value is invalid.");
        offset = atoll(t);
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *docs = json_array();
    struct collected c = {.in = in,
                          .include_deleted = barge_json_bool(in, "IncludePlannedDeletion", false),
                          .docs = docs};
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", ctx->who.region);
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, KIND_SECRET, prefix, NULL, false, 0, collect, &c, err) < 0)
        return -1;
    size_t n = json_array_size(docs);
    json_t **v = barge_xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(docs, i);
    const char *by = barge_json_str(in, "SortBy", "created-date");
    struct sort order = {
        .field = strcmp(by, "name") == 0                 ? "name"
                 : strcmp(by, "last-accessed-date") == 0 ? "lastAccessedDate"
                 : strcmp(by, "last-changed-date") == 0  ? "lastChangedDate"
                                                         : "createdDate",
        .desc = strcmp(barge_json_str(in, "SortOrder", "desc"), "desc") == 0,
    };
    qsort_r(v, n, sizeof(*v), compare, &order);
    json_t *list = json_array();
    size_t i = (size_t)offset;
    for (; i < n && (int)json_array_size(list) < max; i++)
        json_array_append_new(list, render(v[i], "SecretVersionsToStages"));
    free(v);
    *out = json_pack("{s:o}", "SecretList", list);
    if (i < n) {
        _cleanup_free_ char *off = barge_xasprintf("%zu", i);
        _cleanup_free_ char *tok = barge_api_token_encode(off);
        json_object_set_new(*out, "NextToken", json_string(tok));
    }
    return 0;
}

/* --- deletion ------------------------------------------------------------ */

static int delete_secret(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    bool force = barge_json_bool(in, "ForceDeleteWithoutRecovery", false);
    json_t *window = json_object_get(in, "RecoveryWindowInDays");
    if (force && window)
        return invalid_param(err, "You can't use ForceDeleteWithoutRecovery in conjunction with "
                                  "RecoveryWindowInDays.");
    json_int_t days = window ? json_integer_value(window) : 30;
    if (days < 7 || days > 30)
        return invalid_param(err,
                             "The RecoveryWindowInDays value must be between 7 and 30 days "
                             "(inclusive); '%lld' was given.",
                             (long long)days);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:DeleteSecret", barge_json_str(in, "SecretId", ""), &doc, &key,
             err) < 0)
        return -1;
    if (is_deleted(doc) && !force)
        return invalid_request(err, "You can't perform this operation on the secret because it "
                                    "was already scheduled for deletion.");
    double when = force ? barge_now() : barge_now() + (double)days * DAY;
    if (force) {
        if (barge_store_del(tx, KIND_SECRET, key, err) < 0 ||
            barge_store_del(tx, KIND_PURGE, key, err) < 0 ||
            barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
        barge_info("secretsmanager: deleted secret %s", barge_json_str(doc, "arn", ""));
    } else {
        json_object_set_new(doc, "deletedDate", json_real(when));
        _cleanup_json_ json_t *purge = json_pack("{s:f}", "at", when);
        if (barge_store_put(tx, KIND_PURGE, key, purge, err) < 0 || save(&tx, key, doc, err) < 0)
            return -1;
        barge_info("secretsmanager: secret %s scheduled for deletion in %lld days",
                   barge_json_str(doc, "arn", ""), (long long)days);
    }
    *out = json_pack("{s:s, s:s, s:f}", "ARN", barge_json_str(doc, "arn", ""), "Name",
                     barge_json_str(doc, "name", ""), "DeletionDate", when);
    return 0;
}

static int restore_secret(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:RestoreSecret", barge_json_str(in, "SecretId", ""), &doc,
             &key, err) < 0)
        return -1;
    json_object_del(doc, "deletedDate");
    if (barge_store_del(tx, KIND_PURGE, key, err) < 0 || save(&tx, key, doc, err) < 0)
        return -1;
    *out = json_pack("{s:s, s:s}", "ARN", barge_json_str(doc, "arn", ""), "Name",
                     barge_json_str(doc, "name", ""));
    return 0;
}

/* --- tags ---------------------------------------------------------------- */

static int tag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    json_t *tags = barge_json_array(in, "Tags");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (check_tags(tags, err) < 0 || barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:TagResource", barge_json_str(in, "SecretId", ""), &doc, &key,
             err) < 0)
        return -1;
    barge_api_tags_merge(doc, tags);
    if (json_array_size(barge_json_array(doc, "tags")) > MAX_TAGS)
        return invalid_param(err, "A secret can have at most %d tags.", MAX_TAGS);
    if (save(&tx, key, doc, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int untag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, "secretsmanager:UntagResource", barge_json_str(in, "SecretId", ""), &doc,
             &key, err) < 0)
        return -1;
    barge_api_tags_remove(doc, barge_json_array(in, "TagKeys"));
    if (save(&tx, key, doc, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

/* --- housekeeping -------------------------------------------------------- */

static int collect_expired(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (json_number_value(json_object_get(doc, "at")) <= barge_now())
        json_array_append_new(ud, json_string(key));
    return 0;
}

int barge_api_secretsmanager_reap(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_json_ json_t *doomed = json_array();
    {
        _cleanup_tx_ struct barge_tx *rtx = NULL;
        if (barge_store_begin(srv->store, false, &rtx, err) < 0 ||
            barge_store_scan(rtx, KIND_PURGE, "", NULL, false, 0, collect_expired, doomed, err) < 0)
            return -1;
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
        const char *key = json_string_value(k);
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_get(tx, KIND_SECRET, key, &doc, err) < 0 ||
            barge_store_del(tx, KIND_PURGE, key, err) < 0)
            return -1;
        /* Restored (or deleted and re-created) since: keep it. */
        json_t *when = json_object_get(doc, "deletedDate");
        if (!json_is_number(when) || json_number_value(when) > barge_now())
            continue;
        if (barge_store_del(tx, KIND_SECRET, key, err) < 0)
            return -1;
        barge_info("secretsmanager: the recovery window of %s ended; secret removed",
                   barge_json_str(doc, "arn", key));
    }
    return barge_store_commit(barge_steal(&tx), err);
}

static const struct barge_api_op sm_ops[] = {
    {"CreateSecret", create_secret},         {"GetSecretValue", get_secret_value},
    {"PutSecretValue", put_secret_value},    {"UpdateSecret", update_secret},
    {"DescribeSecret", describe_secret},     {"ListSecrets", list_secrets},
    {"ListSecretVersionIds", list_versions}, {"DeleteSecret", delete_secret},
    {"RestoreSecret", restore_secret},       {"TagResource", tag_resource},
    {"UntagResource", untag_resource},       {NULL, NULL},
};

static const struct barge_api_op *const sm_tables[] = {sm_ops, NULL};

const struct barge_api_service barge_api_secretsmanager = {
    .model = "secretsmanager",
    .message_key = "Message",
    .invalid_type = "InvalidParameterException",
    .client_type = "InvalidRequestException",
    .server_type = "InternalServiceError",
    .not_found_type = "ResourceNotFoundException",
    .op_tables = sm_tables,
};
