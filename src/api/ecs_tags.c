/* Tags for every taggable ECS resource, kept apart from the resources
 * themselves (kind "tags", keyed by ARN): TagResource, UntagResource,
 * ListTagsForResource, and the helpers the Create and Register operations use. */
#include <string.h>
#include <strings.h>

#include "api/ecs.h"
#include "common/arn.h"
#include "common/json.h"

/* Checks that arn names an existing ECS resource of this server. */
static int resource_exists(struct barge_tx *tx, const struct barge_server *srv, const char *arn,
                           struct barge_error **err)
{
    struct barge_arn a;
    if (barge_arn_parse(arn, &a) < 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid resource ARN '%s'.", arn);
    int ret = -1;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    const char *kind = NULL;
    const char *slash = strchr(a.resource, '/');
    if (strcmp(a.service, "ecs") != 0 || strcmp(a.region, barge_server_region(srv)) != 0 ||
        strcmp(a.account, srv->cfg.account_id) != 0 || !slash) {
        barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                             "Invalid resource ARN '%s': not an ECS resource of region '%s' and "
                             "account '%s'.",
                             arn, barge_server_region(srv), srv->cfg.account_id);
        goto out;
    }
    size_t tl = (size_t)(slash - a.resource);
    const char *rest = slash + 1;
    int r = 0;
    if (strncmp(a.resource, "cluster", tl) == 0 && tl == 7) {
        r = barge_store_get(tx, ECS_KIND_CLUSTER, rest, &doc, err);
        if (r > 0 && strcmp(barge_json_str(doc, "status", ""), "ACTIVE") != 0)
            r = 0;
    } else if ((strncmp(a.resource, "task-definition", tl) == 0 && tl == 15) ||
               (strncmp(a.resource, "daemon-task-definition", tl) == 0 && tl == 22)) {
        r = ecs_taskdef_find(tx, srv, arn, &doc, &key, err);
    } else if (strncmp(a.resource, "task-set", tl) == 0 && tl == 8) {
        /* "<cluster>/<service>/<set id>": the set lives in its service. */
        const char *s1 = strchr(rest, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        _cleanup_free_ char *skey = s2 ? barge_xstrndup(rest, (size_t)(s2 - rest)) : NULL;
        r = skey ? barge_store_get(tx, ECS_KIND_SERVICE, skey, &doc, err) : 0;
        if (r > 0) {
            r = 0;
            size_t i;
            json_t *ts;
            json_array_foreach(barge_json_array(doc, "taskSets"), i, ts)
            {
                r |= barge_streq(barge_json_str(ts, "taskSetArn", NULL), arn) &&
                     !barge_streq(barge_json_str(ts, "status", NULL), "DRAINING");
            }
        }
    } else {
        if (tl == 7 && strncmp(a.resource, "service", tl) == 0)
            kind = ECS_KIND_SERVICE;
        else if (tl == 4 && strncmp(a.resource, "task", tl) == 0)
            kind = ECS_KIND_TASK;
        else if (tl == 18 && strncmp(a.resource, "container-instance", tl) == 0)
            kind = ECS_KIND_INSTANCE;
        else if (tl == 6 && strncmp(a.resource, "daemon", tl) == 0)
            kind = ECS_KIND_DAEMON;
        if (!kind) {
            barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                 "Invalid resource ARN '%s': this resource type cannot be "
                                 "tagged.",
                                 arn);
            goto out;
        }
        r = barge_store_get(tx, kind, rest, &doc, err);
        if (r > 0 && strcmp(kind, ECS_KIND_DAEMON) == 0 &&
            barge_streq(barge_json_str(doc, "status", NULL), "INACTIVE"))
            r = 0;
    }
    if (r < 0)
        goto out;
    if (r == 0) {
        barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                             "The specified resource '%s' could not be found.", arn);
        goto out;
    }
    ret = 0;
out:
    barge_arn_release(&a);
    return ret;
}

static int tag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    const char *arn = barge_json_str(in, "resourceArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        resource_exists(tx, ctx->srv, arn, err) < 0 ||
        ecs_tags_add(tx, arn, barge_json_array(in, "tags"), err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int untag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *arn = barge_json_str(in, "resourceArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cur = NULL, *kept = json_array();
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        resource_exists(tx, ctx->srv, arn, err) < 0 || ecs_tags_get(tx, arn, &cur, err) < 0)
        return -1;
    json_t *drop = barge_json_array(in, "tagKeys");
    size_t i, j;
    json_t *t, *k;
    json_array_foreach(cur, i, t)
    {
        bool dropped = false;
        json_array_foreach(drop, j, k)
        {
            if (barge_streq(json_string_value(k), barge_json_str(t, "key", NULL)))
                dropped = true;
        }
        if (!dropped)
            json_array_append(kept, t);
    }
    if (ecs_tags_put(tx, arn, kept, err) < 0 || barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int list_tags_for_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    const char *arn = barge_json_str(in, "resourceArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    json_t *tags;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        resource_exists(tx, ctx->srv, arn, err) < 0 || ecs_tags_get(tx, arn, &tags, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "tags", tags);
    return 0;
}

const struct barge_api_op ecs_tag_ops[] = {
    {"TagResource", tag_resource},
    {"UntagResource", untag_resource},
    {"ListTagsForResource", list_tags_for_resource},
    {NULL, NULL},
};
