/* The CloudWatch Logs service (Logs_20140328): log groups (with retention and
 * tags), log streams, and events put, read page by page and filtered. Groups
 * and streams are store documents; events are rows of the store's log table
 * (see logs.h for the keys). Also the agent channel's way in: a container's
 * output, appended to the stream its task definition names.
 *
 * Timestamps are epoch milliseconds throughout, as in CloudWatch Logs. */
#include "api/logs.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "api/api.h"
#include "api/ecs.h"
#include "api/metrics.h"
#include "common/arn.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define DAY_MS            (86400LL * 1000)
#define EVENT_OVERHEAD    26
#define MAX_BATCH_BYTES   1048576
#define MAX_EVENT_BYTES   (1048576 - EVENT_OVERHEAD)
#define MAX_BATCH_SPAN_MS (24LL * 3600 * 1000)
#define TOO_NEW_MS        (2LL * 3600 * 1000)
#define TOO_OLD_MS        (14 * DAY_MS)
#define MAX_READ_BYTES    MAX_BATCH_BYTES
/* How many events one FilterLogEvents call examines before it returns what
 * it found with a nextToken, as CloudWatch does when a search takes long. */
#define FILTER_SCAN_BUDGET 200000

static int64_t now_ms(void)
{
    return (int64_t)llround(barge_now() * 1000.0);
}

static int invalid(struct barge_error **err, const char *fmt, const char *value)
{
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException", fmt, value);
}

static int group_not_found(struct barge_error **err)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                "The specified log group does not exist.");
}

static int stream_not_found(struct barge_error **err)
{
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                "The specified log stream does not exist.");
}

/* --- names, ARNs and keys ---------------------------------------------- */

static bool group_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 512)
        return false;
    return strspn(name, ".-_/#ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == n;
}

static bool stream_name_valid(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 512 && !strpbrk(name, ":*");
}

static int check_group_name(const char *name, struct barge_error **err)
{
    if (!group_name_valid(name))
        return invalid(err,
                       "1 validation error detected: Value '%s' at 'logGroupName' failed to "
                       "satisfy constraint: Member must satisfy regular expression pattern: "
                       "[\\.\\-_/#A-Za-z0-9]+",
                       name);
    return 0;
}

static int check_stream_name(const char *name, struct barge_error **err)
{
    if (!stream_name_valid(name))
        return invalid(err,
                       "1 validation error detected: Value '%s' at 'logStreamName' failed to "
                       "satisfy constraint: Member must satisfy regular expression pattern: "
                       "[^:*]*",
                       name);
    return 0;
}

static char *logs_arn(const struct barge_server *srv, const char *fmt, ...) BARGE_PRINTF(2, 3);
static char *logs_arn(const struct barge_server *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *res = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_arn_make("logs", barge_server_region(srv), srv->cfg.account_id, res);
}

static char *stream_key(const char *group, const char *stream)
{
    return barge_xasprintf("%s:%s", group, stream);
}

/* The group name of an ARN of a log group of this region and account
 * ("...:log-group:NAME" or "...:log-group:NAME:*"); NULL when it is not one.
 * Caller frees. */
static char *group_from_arn(const struct barge_server *srv, const char *arn)
{
    struct barge_arn a;
    if (barge_arn_parse(arn, &a) < 0)
        return NULL;
    char *name = NULL;
    if (strcmp(a.service, "logs") == 0 && strcmp(a.region, barge_server_region(srv)) == 0 &&
        strcmp(a.account, srv->cfg.account_id) == 0 &&
        barge_str_has_prefix(a.resource, "log-group:")) {
        const char *n = a.resource + strlen("log-group:");
        size_t len = strlen(n);
        if (barge_str_has_suffix(n, ":*"))
            len -= 2;
        name = barge_xstrndup(n, len);
        if (!group_name_valid(name)) {
            free(name);
            name = NULL;
        }
    }
    barge_arn_release(&a);
    return name;
}

/* The group an operation names, by logGroupName or logGroupIdentifier (a
 * name or an ARN); caller frees. */
static int group_ident(const struct barge_server *srv, const json_t *in, char **out,
                       struct barge_error **err)
{
    const char *name = barge_json_str(in, "logGroupName", NULL);
    const char *ident = barge_json_str(in, "logGroupIdentifier", NULL);
    *out = NULL;
    if (name && ident)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "LogGroupName and LogGroupIdentifier are mutually "
                                    "exclusive; specify only one.");
    if (!name && !ident)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Either LogGroupName or LogGroupIdentifier must be "
                                    "specified.");
    if (ident && barge_str_has_prefix(ident, "arn:")) {
        *out = group_from_arn(srv, ident);
        if (!*out)
            return invalid(err, "Invalid log group ARN '%s'.", ident);
        return 0;
    }
    const char *n = name ? name : ident;
    if (check_group_name(n, err) < 0)
        return -1;
    *out = barge_xstrdup(n);
    return 0;
}

static int load_group(struct barge_tx *tx, const char *name, json_t **doc, struct barge_error **err)
{
    int r = barge_store_get(tx, LOGS_KIND_GROUP, name, doc, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return group_not_found(err);
    return 0;
}

static int load_stream(struct barge_tx *tx, const char *group, const char *stream, json_t **doc,
                       struct barge_error **err)
{
    _cleanup_free_ char *key = stream_key(group, stream);
    int r = barge_store_get(tx, LOGS_KIND_STREAM, key, doc, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return stream_not_found(err);
    return 0;
}

/* --- tags --------------------------------------------------------------- */

static int validate_tags(const json_t *tags, struct barge_error **err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!*k || strlen(k) > 128)
            return invalid(err, "Invalid tag key '%s': keys are 1 to 128 characters.", k);
        if (barge_str_has_prefix(k, "aws:"))
            return invalid(err, "Invalid tag key '%s': the aws: prefix is reserved.", k);
        if (!json_is_string(v) || strlen(json_string_value(v)) > 256)
            return invalid(err, "Invalid value for tag '%s': values are up to 256 characters.", k);
    }
    return 0;
}

static int merge_tags(json_t *group, const json_t *tags, struct barge_error **err)
{
    if (validate_tags(tags, err) < 0)
        return -1;
    json_t *cur = barge_json_object(group, "_tags");
    if (!cur)
        json_object_set_new(group, "_tags", cur = json_object());
    _cleanup_json_ json_t *merged = json_deep_copy(cur);
    json_object_update(merged, (json_t *)tags);
    if (json_object_size(merged) > 50)
        return barge_error_set_type(err, BARGE_ERR_LIMIT, "TooManyTagsException",
                                    "A log group can have at most 50 tags; %zu were asked for.",
                                    json_object_size(merged));
    json_object_update(cur, (json_t *)tags);
    return 0;
}

/* --- rendering ----------------------------------------------------------- */

struct sum_bytes {
    json_int_t bytes;
};

static int add_stream_bytes(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct sum_bytes *s = ud;
    s->bytes += barge_json_int(doc, "storedBytes", 0);
    return 0;
}

static json_t *render_group(struct barge_tx *tx, const json_t *doc, struct barge_error **err)
{
    json_t *out = ecs_public(doc);
    struct sum_bytes s = {0};
    _cleanup_free_ char *prefix = barge_xasprintf("%s:", barge_json_str(doc, "logGroupName", ""));
    if (barge_store_scan(tx, LOGS_KIND_STREAM, prefix, NULL, false, 0, add_stream_bytes, &s, err) <
        0) {
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out, "storedBytes", json_integer(s.bytes));
    return out;
}

/* --- groups ------------------------------------------------------------- */

static json_t *group_doc_new(struct barge_server *srv, struct barge_tx *tx, const char *name,
                             struct barge_error **err)
{
    int64_t id;
    if (barge_store_counter_next(tx, "logs.id", &id, err) < 0)
        return NULL;
    _cleanup_free_ char *arn = logs_arn(srv, "log-group:%s:*", name);
    _cleanup_free_ char *garn = logs_arn(srv, "log-group:%s", name);
    return json_pack("{s:s, s:I, s:i, s:s, s:s, s:I, s:s, s:I, s:{}}", "logGroupName", name,
                     "creationTime", (json_int_t)now_ms(), "metricFilterCount", 0, "arn", arn,
                     "logGroupArn", garn, "storedBytes", (json_int_t)0, "logGroupClass", "STANDARD",
                     "_id", (json_int_t)id, "_tags");
}

static int create_log_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    const char *name = barge_json_str(in, "logGroupName", "");
    json_t *tags = barge_json_object(in, "tags");
    if (check_group_name(name, err) < 0 || (tags && validate_tags(tags, err) < 0))
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int r = barge_store_get(tx, LOGS_KIND_GROUP, name, &doc, err);
    if (r < 0)
        return -1;
    if (r > 0)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "ResourceAlreadyExistsException",
                                    "The specified log group already exists");
    doc = group_doc_new(ctx->srv, tx, name, err);
    if (!doc)
        return -1;
    barge_json_set_str(doc, "kmsKeyId", barge_json_str(in, "kmsKeyId", NULL));
    barge_json_set_str(doc, "logGroupClass", barge_json_str(in, "logGroupClass", NULL));
    if (tags && merge_tags(doc, tags, err) < 0)
        return -1;
    if (barge_store_put(tx, LOGS_KIND_GROUP, name, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("created log group %s", name);
    return 0;
}

struct key_list {
    json_t *keys;
};

static int collect_key(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct key_list *l = ud;
    json_array_append_new(l->keys, json_string(key));
    return 0;
}

static int delete_log_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    const char *name = barge_json_str(in, "logGroupName", "");
    if (check_group_name(name, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL, *keys = json_array();
    struct key_list l = {keys};
    _cleanup_free_ char *prefix = barge_xasprintf("%s:", name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_group(tx, name, &doc, err) < 0 ||
        barge_store_scan(tx, LOGS_KIND_STREAM, prefix, NULL, false, 0, collect_key, &l, err) < 0 ||
        barge_store_log_drop(tx, barge_json_int(doc, "_id", 0), 0, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (barge_store_del(tx, LOGS_KIND_STREAM, json_string_value(k), err) < 0)
            return -1;
    }
    if (barge_store_del(tx, LOGS_KIND_GROUP, name, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("deleted log group %s", name);
    return 0;
}

struct list_groups {
    json_t *docs; /* the page's group documents */
    const char *pattern;
    int limit;
    char *last;
    bool more;
};

static bool icase_contains(const char *hay, const char *needle)
{
    return !*needle || strcasestr(hay, needle) != NULL;
}

static int list_group(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct list_groups *l = ud;
    if (l->pattern && !icase_contains(key, l->pattern))
        return 0;
    if ((int)json_array_size(l->docs) == l->limit) {
        l->more = true;
        return 1;
    }
    json_array_append(l->docs, doc);
    free(l->last);
    l->last = barge_xstrdup(key);
    return 0;
}

static int describe_log_groups(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    const char *prefix = barge_json_str(in, "logGroupNamePrefix", NULL);
    const char *pattern = barge_json_str(in, "logGroupNamePattern", NULL);
    if (prefix && pattern)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "LogGroup name prefix and LogGroup name pattern are "
                                    "mutually exclusive parameters.");
    _cleanup_json_ json_t *docs = json_array();
    struct list_groups l = {.docs = docs, .pattern = pattern};
    _cleanup_free_ char *after = NULL;
    if (barge_api_max_results(in, "limit", 50, 50, &l.limit, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, "nextToken", NULL), &after, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    /* Rendering scans the group's streams: not while the groups' scan runs
     * (a transaction has one scan at a time). */
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, LOGS_KIND_GROUP, prefix ? prefix : "", after, false, 0, list_group, &l,
                         err) < 0) {
        free(l.last);
        return -1;
    }
    json_t *groups = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        json_t *g = render_group(tx, d, err);
        if (!g) {
            json_decref(groups);
            free(l.last);
            return -1;
        }
        json_array_append_new(groups, g);
    }
    *out = json_pack("{s:o}", "logGroups", groups);
    if (l.more) {
        _cleanup_free_ char *tok = barge_api_token_encode(l.last);
        json_object_set_new(*out, "nextToken", json_string(tok));
    }
    free(l.last);
    return 0;
}

static bool retention_valid(json_int_t days)
{
    static const int allowed[] = {1,   3,   5,   7,   14,   30,   60,   90,   120,  150,  180,
                                  365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(allowed); i++)
        if (allowed[i] == days)
            return true;
    return false;
}

/* Loads a group for an update, applies fn and stores it. */
static int update_group(struct barge_api_ctx *ctx, const char *name,
                        int (*apply)(json_t *doc, const json_t *in, struct barge_error **err),
                        const json_t *in, struct barge_error **err)
{
    if (check_group_name(name, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_group(tx, name, &doc, err) < 0 || apply(doc, in, err) < 0 ||
        barge_store_put(tx, LOGS_KIND_GROUP, name, doc, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(&tx), err);
}

static int apply_retention(json_t *doc, const json_t *in, struct barge_error **err)
{
    json_int_t days = barge_json_int(in, "retentionInDays", 0);
    if (!retention_valid(days)) {
        _cleanup_free_ char *v = barge_xasprintf("%lld", (long long)days);
        return invalid(err,
                       "1 validation error detected: Value '%s' at 'retentionInDays' failed to "
                       "satisfy constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, "
                       "30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, "
                       "2922, 3288, 3653]",
                       v);
    }
    json_object_set_new(doc, "retentionInDays", json_integer(days));
    return 0;
}

static int apply_no_retention(json_t *doc, const json_t *in, struct barge_error **err)
{
    json_object_del(doc, "retentionInDays");
    return 0;
}

static int put_retention_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    return update_group(ctx, barge_json_str(in, "logGroupName", ""), apply_retention, in, err);
}

static int delete_retention_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    return update_group(ctx, barge_json_str(in, "logGroupName", ""), apply_no_retention, in, err);
}

/* --- tags API -------------------------------------------------------------- */

static int apply_tags(json_t *doc, const json_t *in, struct barge_error **err)
{
    return merge_tags(doc, barge_json_object(in, "tags"), err);
}

static int apply_untag(json_t *doc, const json_t *in, struct barge_error **err)
{
    json_t *cur = barge_json_object(doc, "_tags");
    json_t *keys = barge_json_array(in, "tagKeys");
    if (!keys)
        keys = barge_json_array(in, "tags"); /* UntagLogGroup names them "tags" */
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (cur && json_is_string(k))
            json_object_del(cur, json_string_value(k));
    }
    return 0;
}

static int resource_group(struct barge_api_ctx *ctx, const json_t *in, char **name,
                          struct barge_error **err)
{
    const char *arn = barge_json_str(in, "resourceArn", "");
    *name = group_from_arn(ctx->srv, arn);
    if (!*name)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                    "The specified resource '%s' does not exist.", arn);
    return 0;
}

static int tag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (resource_group(ctx, in, &name, err) < 0)
        return -1;
    return update_group(ctx, name, apply_tags, in, err);
}

static int untag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (resource_group(ctx, in, &name, err) < 0)
        return -1;
    return update_group(ctx, name, apply_untag, in, err);
}

static int group_tags(struct barge_api_ctx *ctx, const char *name, json_t **out,
                      struct barge_error **err)
{
    if (check_group_name(name, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_group(tx, name, &doc, err) < 0)
        return -1;
    json_t *tags = barge_json_object(doc, "_tags");
    *out = json_pack("{s:o}", "tags", tags ? json_deep_copy(tags) : json_object());
    return 0;
}

static int list_tags_for_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (resource_group(ctx, in, &name, err) < 0)
        return -1;
    return group_tags(ctx, name, out, err);
}

static int tag_log_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    return update_group(ctx, barge_json_str(in, "logGroupName", ""), apply_tags, in, err);
}

static int untag_log_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    return update_group(ctx, barge_json_str(in, "logGroupName", ""), apply_untag, in, err);
}

static int list_tags_log_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    return group_tags(ctx, barge_json_str(in, "logGroupName", ""), out, err);
}

/* --- streams --------------------------------------------------------------- */

static json_t *stream_doc_new(struct barge_server *srv, struct barge_tx *tx, const char *group,
                              const char *name, struct barge_error **err)
{
    int64_t id;
    if (barge_store_counter_next(tx, "logs.id", &id, err) < 0)
        return NULL;
    _cleanup_free_ char *arn = logs_arn(srv, "log-group:%s:log-stream:%s", group, name);
    return json_pack("{s:s, s:I, s:s, s:I, s:I}", "logStreamName", name, "creationTime",
                     (json_int_t)now_ms(), "arn", arn, "storedBytes", (json_int_t)0, "_id",
                     (json_int_t)id);
}

static int create_log_stream(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    const char *group = barge_json_str(in, "logGroupName", "");
    const char *name = barge_json_str(in, "logStreamName", "");
    if (check_group_name(group, err) < 0 || check_stream_name(name, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL, *doc = NULL;
    _cleanup_free_ char *key = stream_key(group, name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_group(tx, group, &gdoc, err) < 0)
        return -1;
    int r = barge_store_get(tx, LOGS_KIND_STREAM, key, &doc, err);
    if (r < 0)
        return -1;
    if (r > 0)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "ResourceAlreadyExistsException",
                                    "The specified log stream already exists");
    doc = stream_doc_new(ctx->srv, tx, group, name, err);
    if (!doc || barge_store_put(tx, LOGS_KIND_STREAM, key, doc, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(&tx), err);
}

static int delete_log_stream(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    const char *group = barge_json_str(in, "logGroupName", "");
    const char *name = barge_json_str(in, "logStreamName", "");
    if (check_group_name(group, err) < 0 || check_stream_name(name, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL, *doc = NULL;
    _cleanup_free_ char *key = stream_key(group, name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_group(tx, group, &gdoc, err) < 0 || load_stream(tx, group, name, &doc, err) < 0 ||
        barge_store_log_drop(tx, barge_json_int(gdoc, "_id", 0), barge_json_int(doc, "_id", 0),
                             err) < 0 ||
        barge_store_del(tx, LOGS_KIND_STREAM, key, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(&tx), err);
}

struct stream_list {
    json_t *streams; /* every candidate, public form plus "_key" */
};

static int collect_stream(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct stream_list *l = ud;
    json_t *s = ecs_public(doc);
    json_object_set_new(s, "_key", json_string(key));
    json_array_append_new(l->streams, s);
    return 0;
}

static int cmp_last_event(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t tx = barge_json_int(x, "lastEventTimestamp", 0);
    json_int_t ty = barge_json_int(y, "lastEventTimestamp", 0);
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return strcmp(barge_json_str(x, "logStreamName", ""), barge_json_str(y, "logStreamName", ""));
}

/* The sort key of a stream in LastEventTime order, as a paging token carries
 * it: the zero-padded timestamp, then the name. Caller frees. */
static char *time_order_key(const json_t *s)
{
    return barge_xasprintf("%020lld/%s", (long long)barge_json_int(s, "lastEventTimestamp", 0),
                           barge_json_str(s, "logStreamName", ""));
}

static int describe_log_streams(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    const char *prefix = barge_json_str(in, "logStreamNamePrefix", NULL);
    bool by_time = barge_streq(barge_json_str(in, "orderBy", NULL), "LastEventTime");
    bool desc = barge_json_bool(in, "descending", false);
    if (by_time && prefix)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Cannot order by LastEventTime with a logStreamNamePrefix.");
    int limit;
    _cleanup_free_ char *group = NULL, *after = NULL;
    if (group_ident(ctx->srv, in, &group, err) < 0 ||
        barge_api_max_results(in, "limit", 50, 50, &limit, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, "nextToken", NULL), &after, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL, *all = json_array();
    struct stream_list l = {all};
    _cleanup_free_ char *scan_prefix = barge_xasprintf("%s:%s", group, prefix ? prefix : "");
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_group(tx, group, &gdoc, err) < 0)
        return -1;
    if (by_time) {
        if (barge_store_scan(tx, LOGS_KIND_STREAM, scan_prefix, NULL, false, 0, collect_stream, &l,
                             err) < 0)
            return -1;
        size_t n = json_array_size(all);
        json_t **v = barge_xcalloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++)
            v[i] = json_incref(json_array_get(all, i));
        qsort(v, n, sizeof(*v), cmp_last_event);
        json_array_clear(all);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(all, v[desc ? n - 1 - i : i]);
        free(v);
    } else {
        /* Keys are "<group>:<stream>", so the token holds the full key. */
        if (barge_store_scan(tx, LOGS_KIND_STREAM, scan_prefix, after, desc, (size_t)limit + 1,
                             collect_stream, &l, err) < 0)
            return -1;
    }
    json_t *page = json_array();
    _cleanup_free_ char *last = NULL;
    bool more = false;
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s)
    {
        _cleanup_free_ char *k =
            by_time ? time_order_key(s) : barge_xstrdup(barge_json_str(s, "_key", ""));
        if (by_time && after) {
            int c = strcmp(k, after);
            if (desc ? c >= 0 : c <= 0)
                continue;
        }
        if ((int)json_array_size(page) == limit) {
            more = true;
            break;
        }
        json_t *p = json_deep_copy(s);
        json_object_del(p, "_key");
        json_array_append_new(page, p);
        free(last);
        last = barge_steal(&k);
    }
    *out = json_pack("{s:o}", "logStreams", page);
    if (more) {
        _cleanup_free_ char *tok = barge_api_token_encode(last);
        json_object_set_new(*out, "nextToken", json_string(tok));
    }
    return 0;
}

/* --- putting events ------------------------------------------------------- */

/* Applies what an append did to a stream's document. */
static void stream_note_events(json_t *doc, const struct barge_store_log_event *evs, size_t n,
                               int64_t ingestion)
{
    if (n == 0)
        return;
    json_int_t first = barge_json_int(doc, "firstEventTimestamp", INT64_MAX);
    json_int_t last = barge_json_int(doc, "lastEventTimestamp", INT64_MIN);
    json_int_t bytes = barge_json_int(doc, "storedBytes", 0);
    for (size_t i = 0; i < n; i++) {
        if (evs[i].timestamp < first)
            first = evs[i].timestamp;
        if (evs[i].timestamp > last)
            last = evs[i].timestamp;
        bytes += (json_int_t)evs[i].message_len;
    }
    json_object_set_new(doc, "firstEventTimestamp", json_integer(first));
    json_object_set_new(doc, "lastEventTimestamp", json_integer(last));
    json_object_set_new(doc, "lastIngestionTime", json_integer(ingestion));
    json_object_set_new(doc, "storedBytes", json_integer(bytes));
    _cleanup_free_ char *seq = barge_xasprintf("%056lld", (long long)evs[n - 1].id);
    json_object_set_new(doc, "uploadSequenceToken", json_string(seq));
}

static int put_log_events(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *group = barge_json_str(in, "logGroupName", "");
    const char *name = barge_json_str(in, "logStreamName", "");
    json_t *events = barge_json_array(in, "logEvents");
    if (check_group_name(group, err) < 0 || check_stream_name(name, err) < 0)
        return -1;
    size_t n = json_array_size(events);
    int64_t total = 0, prev = INT64_MIN, first_ts = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        int64_t ts = barge_json_int(e, "timestamp", 0);
        size_t len = strlen(barge_json_str(e, "message", ""));
        if (len > MAX_EVENT_BYTES)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Log event too large: %zu bytes exceeds limit of %d", len,
                                        MAX_EVENT_BYTES);
        total += (int64_t)len + EVENT_OVERHEAD;
        if (ts < prev)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Log events in a single PutLogEvents request must be in "
                                        "chronological order.");
        if (i == 0)
            first_ts = ts;
        prev = ts;
    }
    if (total > MAX_BATCH_BYTES)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Upload too large: %lld bytes exceeds limit of %d",
                                    (long long)total, MAX_BATCH_BYTES);
    if (n > 0 && prev - first_ts > MAX_BATCH_SPAN_MS)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The batch of log events in a single PutLogEvents request "
                                    "cannot span more than 24 hours.");

    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL, *sdoc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_group(tx, group, &gdoc, err) < 0 || load_stream(tx, group, name, &sdoc, err) < 0)
        return -1;
    int64_t now = now_ms();
    json_int_t retention = barge_json_int(gdoc, "retentionInDays", 0);
    /* Events arrive sorted, so the rejected ones are a prefix (too old,
     * expired) and a suffix (too new); the indexes say where they end. */
    size_t too_old_end = 0, expired_end = 0, too_new_start = n;
    json_array_foreach(events, i, e)
    {
        int64_t ts = barge_json_int(e, "timestamp", 0);
        if (ts < now - TOO_OLD_MS)
            too_old_end = i + 1;
        if (retention && ts < now - retention * DAY_MS)
            expired_end = i + 1;
        if (ts > now + TOO_NEW_MS && too_new_start == n)
            too_new_start = i;
    }
    size_t from = too_old_end > expired_end ? too_old_end : expired_end;
    size_t to = too_new_start > from ? too_new_start : from;
    struct barge_store_log_event *evs = barge_xcalloc(to - from + 1, sizeof(*evs));
    for (size_t k = from; k < to; k++) {
        json_t *ev = json_array_get(events, k);
        const char *msg = barge_json_str(ev, "message", "");
        evs[k - from] = (struct barge_store_log_event){
            .timestamp = barge_json_int(ev, "timestamp", 0),
            .ingestion = now,
            .message = msg,
            .message_len = strlen(msg),
        };
    }
    int r = barge_store_log_append(tx, barge_json_int(gdoc, "_id", 0),
                                   barge_json_int(sdoc, "_id", 0), evs, to - from, err);
    if (r == 0) {
        stream_note_events(sdoc, evs, to - from, now);
        _cleanup_free_ char *key = stream_key(group, name);
        r = barge_store_put(tx, LOGS_KIND_STREAM, key, sdoc, err);
    }
    free(evs);
    if (r < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_metrics_logs_ingested((int64_t)(to - from), 0);
    *out = json_pack("{s:s}", "nextSequenceToken",
                     barge_json_str(sdoc, "uploadSequenceToken", "00000000000000000000"));
    if (too_old_end || expired_end || too_new_start < n) {
        json_t *rej = json_object();
        if (too_old_end)
            json_object_set_new(rej, "tooOldLogEventEndIndex",
                                json_integer((json_int_t)too_old_end));
        if (expired_end)
            json_object_set_new(rej, "expiredLogEventEndIndex",
                                json_integer((json_int_t)expired_end));
        if (too_new_start < n)
            json_object_set_new(rej, "tooNewLogEventStartIndex",
                                json_integer((json_int_t)too_new_start));
        json_object_set_new(*out, "rejectedLogEventsInfo", rej);
    }
    return 0;
}

/* --- reading events -------------------------------------------------------- */

struct page {
    json_t *events;
    size_t bytes;
    size_t limit;
    int64_t first_ts, first_id, last_ts, last_id;
    bool more; /* stopped because of the limit or the size cap */
};

static int collect_event(const struct barge_store_log_event *ev, void *ud, struct barge_error **err)
{
    struct page *p = ud;
    if (json_array_size(p->events) == p->limit ||
        (json_array_size(p->events) > 0 &&
         p->bytes + ev->message_len + EVENT_OVERHEAD > MAX_READ_BYTES)) {
        p->more = true;
        return 1;
    }
    json_t *e = json_pack("{s:I, s:s%, s:I}", "timestamp", (json_int_t)ev->timestamp, "message",
                          ev->message, ev->message_len, "ingestionTime", (json_int_t)ev->ingestion);
    if (!e)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "stored event %lld is not valid UTF-8",
                               (long long)ev->id);
    json_array_append_new(p->events, e);
    p->bytes += ev->message_len + EVENT_OVERHEAD;
    if (json_array_size(p->events) == 1) {
        p->first_ts = ev->timestamp;
        p->first_id = ev->id;
    }
    p->last_ts = ev->timestamp;
    p->last_id = ev->id;
    return 0;
}

static void reverse(json_t *arr)
{
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n / 2; i++) {
        json_t *a = json_incref(json_array_get(arr, i));
        json_array_set(arr, i, json_array_get(arr, n - 1 - i));
        json_array_set_new(arr, n - 1 - i, a);
    }
}

static void time_range(const json_t *in, int64_t *start, int64_t *end)
{
    json_t *s = json_object_get(in, "startTime"), *e = json_object_get(in, "endTime");
    *start = json_is_integer(s) ? json_integer_value(s) : 0;
    *end = json_is_integer(e) ? json_integer_value(e) : INT64_MAX;
}

/* GetLogEvents. Tokens name positions between events: a forward token the
 * events after it, a backward token those before it. A page read forward
 * (startFromHead, or a forward token) starts at the position; otherwise the
 * page is the newest `limit` events before it. When nothing is left in the
 * direction read, the token that came in goes out again: that is how clients
 * know they have reached the end. */
static int get_log_events(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *name = barge_json_str(in, "logStreamName", "");
    const char *token = barge_json_str(in, "nextToken", NULL);
    int limit;
    _cleanup_free_ char *group = NULL;
    struct barge_logs_position pos = {0};
    if (group_ident(ctx->srv, in, &group, err) < 0 || check_stream_name(name, err) < 0 ||
        barge_api_max_results(in, "limit", 10000, 10000, &limit, err) < 0 ||
        (token && barge_logs_token_decode(token, &pos, err) < 0))
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL, *sdoc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_group(tx, group, &gdoc, err) < 0 || load_stream(tx, group, name, &sdoc, err) < 0)
        return -1;
    int64_t stream = barge_json_int(sdoc, "_id", 0);
    struct barge_store_log_query q = {
        .group = barge_json_int(gdoc, "_id", 0),
        .streams = &stream,
        .n_streams = 1,
        .limit = (size_t)limit + 1,
    };
    time_range(in, &q.start, &q.end);
    bool forward = token ? pos.forward : barge_json_bool(in, "startFromHead", false);
    q.desc = !forward;
    if (token) {
        q.has_position = true;
        q.position_ts = pos.ts;
        q.position_id = pos.id;
    }
    struct page p = {.events = json_array(), .limit = (size_t)limit};
    if (barge_store_log_scan(tx, &q, collect_event, &p, err) < 0) {
        json_decref(p.events);
        return -1;
    }
    if (q.desc) {
        reverse(p.events);
        int64_t t = p.first_ts, id = p.first_id;
        p.first_ts = p.last_ts;
        p.first_id = p.last_id;
        p.last_ts = t;
        p.last_id = id;
    }
    struct barge_logs_position fwd = {true, 0, 0}, back = {false, 0, 0};
    _cleanup_free_ char *ftok = NULL, *btok = NULL;
    if (json_array_size(p.events) > 0) {
        fwd.ts = p.last_ts;
        fwd.id = p.last_id;
        back.ts = p.first_ts;
        back.id = p.first_id;
    } else if (token) {
        /* Nothing in the direction read: the same token again, and the other
         * direction starts from the same place. */
        fwd.ts = back.ts = pos.ts;
        fwd.id = back.id = pos.id;
        if (pos.forward && back.id < INT64_MAX)
            back.id++;
        else if (!pos.forward && fwd.id > 0)
            fwd.id--;
    }
    ftok = token && pos.forward && json_array_size(p.events) == 0 ? barge_xstrdup(token)
                                                                  : barge_logs_token_encode(&fwd);
    btok = token && !pos.forward && json_array_size(p.events) == 0 ? barge_xstrdup(token)
                                                                   : barge_logs_token_encode(&back);
    *out = json_pack("{s:o, s:s, s:s}", "events", p.events, "nextForwardToken", ftok,
                     "nextBackwardToken", btok);
    return 0;
}

struct filter_state {
    struct barge_logs_pattern *pattern;
    json_t *names; /* stream id (as a string) -> name */
    json_t *events;
    size_t limit;
    size_t bytes;
    size_t examined;
    int64_t last_ts, last_id; /* the last event examined */
    bool more;
};

static int filter_event(const struct barge_store_log_event *ev, void *ud, struct barge_error **err)
{
    struct filter_state *f = ud;
    if (json_array_size(f->events) == f->limit || f->examined == FILTER_SCAN_BUDGET ||
        (json_array_size(f->events) > 0 &&
         f->bytes + ev->message_len + EVENT_OVERHEAD > MAX_READ_BYTES)) {
        f->more = true;
        return 1;
    }
    f->examined++;
    f->last_ts = ev->timestamp;
    f->last_id = ev->id;
    if (!barge_logs_pattern_match(f->pattern, ev->message, ev->message_len))
        return 0;
    char sid[32], eid[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)ev->stream);
    snprintf(eid, sizeof(eid), "%020lld", (long long)ev->id);
    json_t *e =
        json_pack("{s:s, s:I, s:s%, s:I, s:s}", "logStreamName", barge_json_str(f->names, sid, ""),
                  "timestamp", (json_int_t)ev->timestamp, "message", ev->message, ev->message_len,
                  "ingestionTime", (json_int_t)ev->ingestion, "eventId", eid);
    if (!e)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "stored event %lld is not valid UTF-8",
                               (long long)ev->id);
    json_array_append_new(f->events, e);
    f->bytes += ev->message_len + EVENT_OVERHEAD;
    return 0;
}

struct stream_ids {
    json_t *names;        /* id -> name */
    const json_t *wanted; /* names, or NULL for all */
};

static int collect_stream_id(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct stream_ids *s = ud;
    const char *name = barge_json_str(doc, "logStreamName", "");
    if (s->wanted) {
        bool found = false;
        size_t i;
        json_t *w;
        json_array_foreach((json_t *)s->wanted, i, w)
        {
            if (barge_streq(json_string_value(w), name))
                found = true;
        }
        if (!found)
            return 0;
    }
    char sid[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)barge_json_int(doc, "_id", 0));
    json_object_set_new(s->names, sid, json_string(name));
    return 0;
}

static int filter_log_events(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    json_t *names = barge_json_array(in, "logStreamNames");
    const char *prefix = barge_json_str(in, "logStreamNamePrefix", NULL);
    if (names && prefix)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "logStreamNames and logStreamNamePrefix are mutually "
                                    "exclusive; specify only one.");
    int limit;
    _cleanup_free_ char *group = NULL, *tokkey = NULL;
    struct filter_state f = {0};
    if (group_ident(ctx->srv, in, &group, err) < 0 ||
        barge_api_max_results(in, "limit", 10000, 10000, &limit, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, "nextToken", NULL), &tokkey, err) < 0 ||
        barge_logs_pattern_compile(barge_json_str(in, "filterPattern", NULL), &f.pattern, err) < 0)
        return -1;
    long long tts = 0, tid = 0;
    int consumed = 0;
    if (tokkey && (sscanf(tokkey, "%lld/%lld%n", &tts, &tid, &consumed) != 2 ||
                   tokkey[consumed] != '\0' || tts < 0 || tid < 0)) {
        barge_logs_pattern_free(f.pattern);
        return invalid(err, "The specified nextToken '%s' is invalid.",
                       barge_json_str(in, "nextToken", ""));
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL, *ids = json_object();
    struct stream_ids si = {ids, names};
    _cleanup_free_ char *scan_prefix = barge_xasprintf("%s:%s", group, prefix ? prefix : "");
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_group(tx, group, &gdoc, err) < 0 ||
        barge_store_scan(tx, LOGS_KIND_STREAM, scan_prefix, NULL, false, 0, collect_stream_id, &si,
                         err) < 0) {
        barge_logs_pattern_free(f.pattern);
        return -1;
    }
    size_t n_ids = json_object_size(ids);
    int64_t *stream_ids = barge_xcalloc(n_ids + 1, sizeof(*stream_ids));
    json_t *searched = json_array();
    size_t k = 0;
    const char *sid;
    json_t *v;
    json_object_foreach(ids, sid, v)
    {
        stream_ids[k++] = strtoll(sid, NULL, 10);
    }
    struct barge_store_log_query q = {
        .group = barge_json_int(gdoc, "_id", 0),
        /* Without names or a prefix, the whole group: no IN list at all. */
        .streams = names || prefix ? stream_ids : NULL,
        .n_streams = n_ids,
        .has_position = tokkey != NULL,
        .position_ts = tts,
        .position_id = tid,
    };
    time_range(in, &q.start, &q.end);
    f.names = ids;
    f.events = json_array();
    f.limit = (size_t)limit;
    int r = barge_store_log_scan(tx, &q, filter_event, &f, err);
    free(stream_ids);
    barge_logs_pattern_free(f.pattern);
    if (r < 0) {
        json_decref(f.events);
        json_decref(searched);
        return -1;
    }
    json_object_foreach(ids, sid, v)
    {
        json_array_append_new(
            searched, json_pack("{s:O, s:b}", "logStreamName", v, "searchedCompletely", !f.more));
    }
    *out = json_pack("{s:o, s:o}", "events", f.events, "searchedLogStreams", searched);
    if (f.more) {
        _cleanup_free_ char *key =
            barge_xasprintf("%lld/%lld", (long long)f.last_ts, (long long)f.last_id);
        _cleanup_free_ char *tok = barge_api_token_encode(key);
        json_object_set_new(*out, "nextToken", json_string(tok));
    }
    return 0;
}

/* --- retention --------------------------------------------------------------- */

struct retention_work {
    json_t *groups; /* [name] of groups with a retention */
};

static int collect_retained(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct retention_work *w = ud;
    if (barge_json_int(doc, "retentionInDays", 0) > 0)
        json_array_append_new(w->groups, json_string(key));
    return 0;
}

struct stream_by_id {
    int64_t id;
    char *key;
};

static int find_stream_by_id(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct stream_by_id *s = ud;
    if (barge_json_int(doc, "_id", 0) == s->id) {
        s->key = barge_xstrdup(key);
        return 1;
    }
    return 0;
}

static int expire_group(struct barge_server *srv, const char *name, int64_t now,
                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0)
        return -1;
    int r = barge_store_get(tx, LOGS_KIND_GROUP, name, &gdoc, err);
    if (r <= 0)
        return r;
    json_int_t days = barge_json_int(gdoc, "retentionInDays", 0);
    if (days <= 0)
        return 0;
    struct barge_store_log_removed *rm = NULL;
    size_t n = 0;
    if (barge_store_log_expire(tx, barge_json_int(gdoc, "_id", 0), now - days * DAY_MS, &rm, &n,
                               err) < 0)
        return -1;
    int ret = 0;
    _cleanup_free_ char *prefix = barge_xasprintf("%s:", name);
    int64_t total = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct stream_by_id s = {rm[i].stream, NULL};
        _cleanup_json_ json_t *sdoc = NULL;
        total += rm[i].events;
        if (barge_store_scan(tx, LOGS_KIND_STREAM, prefix, NULL, false, 0, find_stream_by_id, &s,
                             err) < 0) {
            ret = -1;
            break;
        }
        if (!s.key)
            continue;
        if (barge_store_get(tx, LOGS_KIND_STREAM, s.key, &sdoc, err) < 0) {
            free(s.key);
            ret = -1;
            break;
        }
        json_int_t bytes = barge_json_int(sdoc, "storedBytes", 0) - rm[i].bytes;
        json_object_set_new(sdoc, "storedBytes", json_integer(bytes < 0 ? 0 : bytes));
        int64_t first, last;
        int b = barge_store_log_bounds(tx, rm[i].stream, &first, &last, err);
        if (b < 0) {
            ret = -1;
        } else {
            if (b > 0)
                json_object_set_new(sdoc, "firstEventTimestamp", json_integer(first));
            else
                json_object_del(sdoc, "firstEventTimestamp");
            ret = barge_store_put(tx, LOGS_KIND_STREAM, s.key, sdoc, err);
        }
        free(s.key);
    }
    free(rm);
    if (ret < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    if (total > 0)
        barge_info("log group %s: removed %lld events older than %lld days", name, (long long)total,
                   (long long)days);
    return 0;
}

int barge_logs_enforce_retention(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_json_ json_t *groups = json_array();
    struct retention_work w = {groups};
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
            barge_store_scan(tx, LOGS_KIND_GROUP, "", NULL, false, 0, collect_retained, &w, err) <
                0)
            return -1;
    }
    int64_t now = now_ms();
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        /* One transaction per group keeps the writer lock short. */
        if (expire_group(srv, json_string_value(g), now, err) < 0)
            return -1;
    }
    return 0;
}

/* --- the agent channel's way in -------------------------------------------- */

/* "<cluster>/<task id>", the store key of the task an ARN names
 * ("arn:aws:ecs:...:task/<cluster>/<id>"): an agent of the Fargate pool runs
 * tasks of every cluster, so its own cluster does not say. A bare id falls
 * back to dflt_cluster. Caller frees. */
static char *task_key(const char *arn, const char *dflt_cluster)
{
    const char *t = strstr(arn, ":task/");
    const char *slash = t ? strchr(t + 6, '/') : NULL;
    if (slash && slash[1])
        return barge_xstrdup(t + 6);
    const char *last = strrchr(arn, '/');
    return barge_xasprintf("%s/%s", dflt_cluster, last ? last + 1 : arn);
}

/* The awslogs destination of a task's container: group, stream, whether to
 * create the group and the awslogs-region (NULL when the option is not set).
 * Returns 0, or -1 with err (not found: the container has no awslogs
 * configuration). */
static int awslogs_destination(struct barge_tx *tx, struct barge_server *srv, const json_t *task,
                               const char *container, char **group, char **stream,
                               bool *create_group, char **region, struct barge_error **err)
{
    _cleanup_json_ json_t *td = NULL;
    _cleanup_free_ char *tdkey = NULL;
    int r =
        ecs_taskdef_find(tx, srv, barge_json_str(task, "taskDefinitionArn", ""), &td, &tdkey, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "the task definition of '%s' is gone",
                               barge_json_str(task, "taskArn", ""));
    const char *arn = barge_json_str(task, "taskArn", "");
    const char *task_id = strrchr(arn, '/') ? strrchr(arn, '/') + 1 : arn;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        if (!barge_streq(barge_json_str(c, "name", NULL), container))
            continue;
        json_t *lc = barge_json_object(c, "logConfiguration");
        json_t *opts = barge_json_object(lc, "options");
        if (!barge_streq(barge_json_str(lc, "logDriver", NULL), "awslogs"))
            break;
        const char *g = barge_json_str(opts, "awslogs-group", NULL);
        if (!g || !group_name_valid(g))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "container '%s' has no valid awslogs-group option", container);
        const char *reg = barge_json_str(opts, "awslogs-region", NULL);
        if (reg && *reg && !barge_store_region_valid(reg))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "container '%s' has an awslogs-region option that names no "
                                   "region: '%.64s'",
                                   container, reg);
        const char *prefix = barge_json_str(opts, "awslogs-stream-prefix", NULL);
        *region = reg && *reg ? barge_xstrdup(reg) : NULL;
        *group = barge_xstrdup(g);
        /* With a prefix, ECS's name; without one, the container's runtime
         * id, as Docker names streams by container id. */
        *stream = prefix && *prefix ? barge_xasprintf("%s/%s/%s", prefix, container, task_id)
                                    : barge_xasprintf("%s-%zu", task_id, i);
        *create_group = barge_streq(barge_json_str(opts, "awslogs-create-group", NULL), "true");
        return 0;
    }
    return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                           "container '%s' of task '%s' does not log with awslogs", container, arn);
}

static int agent_put(struct barge_server *srv, const char *cluster, const char *instance_id,
                     const json_t *in, json_t **out, struct barge_error **err)
{
    const char *arn = barge_json_str(in, "taskArn", "");
    const char *container = barge_json_str(in, "container", "");
    json_t *events = barge_json_array(in, "events");
    json_t *source = barge_json_object(in, "source");
    json_t *offsets = barge_json_array(source, "offsets");
    if (json_array_size(events) > 10000 ||
        (offsets && json_array_size(offsets) != json_array_size(events)))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "a log batch holds at most 10000 events, each with an offset");
    _cleanup_free_ char *tkey = task_key(arn, cluster);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *task = NULL, *gdoc = NULL, *sdoc = NULL;
    _cleanup_free_ char *group = NULL, *stream = NULL, *region = NULL;
    bool create_group = false;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_TASK, tkey, &task, err) < 0)
        return -1;
    if (!task)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "task '%s' is not known", arn);
    if (!barge_streq(barge_json_str(task, "_instanceId", NULL), instance_id))
        return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                               "task '%s' does not belong to this instance", arn);
    if (awslogs_destination(tx, srv, task, container, &group, &stream, &create_group, &region,
                            err) < 0)
        return -1;
    if (region && strcmp(region, barge_server_region(srv)) != 0) {
        barge_store_abort(barge_steal(&tx));
        barge_store_use_region(region);
        if (barge_store_begin(srv->store, true, &tx, err) < 0)
            return -1;
    }
    int r = barge_store_get(tx, LOGS_KIND_GROUP, group, &gdoc, err);
    if (r < 0)
        return -1;
    if (r == 0) {
        if (!create_group)
            return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                        "The specified log group '%s' does not exist.", group);
        gdoc = group_doc_new(srv, tx, group, err);
        if (!gdoc || barge_store_put(tx, LOGS_KIND_GROUP, group, gdoc, err) < 0)
            return -1;
        barge_info("created log group %s for task %s", group, arn);
    }
    _cleanup_free_ char *skey = stream_key(group, stream);
    r = barge_store_get(tx, LOGS_KIND_STREAM, skey, &sdoc, err);
    if (r < 0)
        return -1;
    if (r == 0) {
        sdoc = stream_doc_new(srv, tx, group, stream, err);
        if (!sdoc)
            return -1;
    }
    /* Resends after a lost answer carry events this stream has already:
     * skip those up to the stored position in the same source file. */
    const char *src = barge_json_str(source, "id", NULL);
    json_t *sources = barge_json_object(sdoc, "_sources");
    if (!sources)
        json_object_set_new(sdoc, "_sources", sources = json_object());
    json_int_t stored_to = src ? barge_json_int(barge_json_object(sources, src), "to", -1) : -1;
    int64_t now = now_ms();
    json_int_t retention = barge_json_int(gdoc, "retentionInDays", 0);
    int64_t oldest = now - (retention ? retention * DAY_MS : TOO_OLD_MS);
    size_t n = json_array_size(events), kept = 0, skipped = 0, expired = 0;
    struct barge_store_log_event *evs = barge_xcalloc(n + 1, sizeof(*evs));
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(events, i);
        if (offsets && json_integer_value(json_array_get(offsets, i)) <= stored_to) {
            skipped++;
            continue;
        }
        const char *msg = barge_json_str(e, "message", "");
        int64_t ts = barge_json_int(e, "timestamp", now);
        if (ts < oldest) {
            expired++;
            continue;
        }
        /* The file's order is the truth: a clock step back must not reorder. */
        if (ts < prev)
            ts = prev;
        prev = ts;
        if (!*msg)
            continue;
        evs[kept++] = (struct barge_store_log_event){
            .timestamp = ts,
            .ingestion = now,
            .message = msg,
            .message_len = strlen(msg),
        };
    }
    r = barge_store_log_append(tx, barge_json_int(gdoc, "_id", 0), barge_json_int(sdoc, "_id", 0),
                               evs, kept, err);
    if (r == 0) {
        stream_note_events(sdoc, evs, kept, now);
        if (src && json_is_integer(json_object_get(source, "to")) &&
            barge_json_int(source, "to", 0) > stored_to)
            json_object_set_new(sources, src,
                                json_pack("{s:I}", "to", barge_json_int(source, "to", 0)));
        r = barge_store_put(tx, LOGS_KIND_STREAM, skey, sdoc, err);
    }
    free(evs);
    if (r < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    json_int_t dropped = barge_json_int(in, "dropped", 0);
    barge_metrics_logs_ingested((int64_t)kept, dropped);
    if (dropped > 0)
        barge_warn("task %s container %s: the agent dropped %lld log lines (non-blocking mode)",
                   arn, container, (long long)dropped);
    if (expired)
        barge_debug("task %s container %s: %zu events older than the group's retention dropped",
                    arn, container, expired);
    *out = json_pack("{s:s, s:s, s:I, s:I}", "logGroupName", group, "logStreamName", stream,
                     "accepted", (json_int_t)kept, "duplicates", (json_int_t)skipped);
    return 0;
}

/* The task is read in the instance's region (the thread's); its events go to
 * the region its awslogs-region option names, as the awslogs driver sends
 * them to that region's endpoint. */
int barge_logs_agent_put(struct barge_server *srv, const char *cluster, const char *instance_id,
                         const json_t *in, json_t **out, struct barge_error **err)
{
    char was[BARGE_STORE_REGION_MAX];
    snprintf(was, sizeof(was), "%s", barge_store_thread_region() ?: "");
    int r = agent_put(srv, cluster, instance_id, in, out, err);
    barge_store_use_region(was[0] ? was : NULL);
    return r;
}

int barge_logs_append(struct barge_server *srv, const char *group, const char *stream,
                      const json_t *messages, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *gdoc = NULL, *sdoc = NULL;
    _cleanup_free_ char *skey = stream_key(group, stream);
    if (barge_store_begin(srv->store, true, &tx, err) < 0 || load_group(tx, group, &gdoc, err) < 0)
        return -1;
    int r = barge_store_get(tx, LOGS_KIND_STREAM, skey, &sdoc, err);
    if (r < 0)
        return -1;
    if (r == 0 && !(sdoc = stream_doc_new(srv, tx, group, stream, err)))
        return -1;
    int64_t now = now_ms();
    size_t n = json_array_size(messages), kept = 0;
    struct barge_store_log_event *evs = barge_xcalloc(n + 1, sizeof(*evs));
    for (size_t i = 0; i < n; i++) {
        const char *msg = json_string_value(json_array_get(messages, i));
        size_t len = msg ? strlen(msg) : 0;
        if (len == 0)
            continue;
        evs[kept++] = (struct barge_store_log_event){
            .timestamp = now,
            .ingestion = now,
            .message = msg,
            .message_len = len > MAX_EVENT_BYTES ? MAX_EVENT_BYTES : len,
        };
    }
    r = barge_store_log_append(tx, barge_json_int(gdoc, "_id", 0), barge_json_int(sdoc, "_id", 0),
                               evs, kept, err);
    if (r == 0) {
        stream_note_events(sdoc, evs, kept, now);
        r = barge_store_put(tx, LOGS_KIND_STREAM, skey, sdoc, err);
    }
    free(evs);
    if (r < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_metrics_logs_ingested((int64_t)kept, 0);
    return 0;
}

/* --- the service ----------------------------------------------------------- */

static const struct barge_api_op logs_ops[] = {
    {"CreateLogGroup", create_log_group},
    {"DeleteLogGroup", delete_log_group},
    {"DescribeLogGroups", describe_log_groups},
    {"PutRetentionPolicy", put_retention_policy},
    {"DeleteRetentionPolicy", delete_retention_policy},
    {"CreateLogStream", create_log_stream},
    {"DeleteLogStream", delete_log_stream},
    {"DescribeLogStreams", describe_log_streams},
    {"PutLogEvents", put_log_events},
    {"GetLogEvents", get_log_events},
    {"FilterLogEvents", filter_log_events},
    {"TagResource", tag_resource},
    {"UntagResource", untag_resource},
    {"ListTagsForResource", list_tags_for_resource},
    {"TagLogGroup", tag_log_group},
    {"UntagLogGroup", untag_log_group},
    {"ListTagsLogGroup", list_tags_log_group},
    {NULL, NULL},
};

static const struct barge_api_op *const logs_tables[] = {logs_ops, NULL};

const struct barge_api_service barge_api_logs = {
    .model = "logs",
    .message_key = "message",
    .invalid_type = "InvalidParameterException",
    .client_type = "InvalidParameterException",
    .server_type = "ServiceUnavailableException",
    .not_found_type = "ResourceNotFoundException",
    .op_tables = logs_tables,
};
