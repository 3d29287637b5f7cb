/* Capacity providers: the built-in FARGATE and FARGATE_SPOT (barged's managed
 * pool of agents) and named host groups (CreateCapacityProvider; agents join a
 * group with the attribute barge.capacity-provider=<name>, playing the part of
 * an auto scaling group), PutClusterCapacityProviders, and the choice of a
 * provider for each task of a capacityProviderStrategy by base and weight. */
#include <string.h>

#include "api/ecs.h"
#include "common/json.h"

#define KIND_PROVIDER "capacity-provider"

static json_t *builtin_doc(const struct barge_server *srv, const char *name)
{
    _cleanup_free_ char *arn = ecs_arn(srv, "capacity-provider/%s", name);
    return json_pack("{s:s, s:s, s:s, s:s, s:[]}", "capacityProviderArn", arn, "name", name,
                     "status", "ACTIVE", "type", "FARGATE", "tags");
}

static int load_provider(struct barge_tx *tx, const struct barge_server *srv, const char *name,
                         json_t **doc, struct barge_error **err)
{
    if (ecs_capacity_is_fargate(name)) {
        *doc = builtin_doc(srv, name);
        return 1;
    }
    const char *slash = strrchr(name, '/');
    return barge_store_get(tx, KIND_PROVIDER, slash ? slash + 1 : name, doc, err);
}

static int create_capacity_provider(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    const char *name = barge_json_str(in, "name", "");
    if (!ecs_name_valid(name) || strncasecmp(name, "aws", 3) == 0 ||
        strncasecmp(name, "ecs", 3) == 0 || strncasecmp(name, "fargate", 7) == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid capacity provider name '%s': up to 255 letters, "
                                    "numbers, underscores and hyphens, not starting with aws, "
                                    "ecs or fargate.",
                                    name);
    json_t *asg = barge_json_object(in, "autoScalingGroupProvider");
    if (!asg)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "autoScalingGroupProvider is required: its "
                                    "autoScalingGroupArn names the host group (agents started "
                                    "with --attribute barge.capacity-provider=%s).",
                                    name);
    json_t *tags = barge_json_array(in, "tags");
    if (tags && ecs_tags_validate(tags, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_PROVIDER, name, &doc, err) < 0)
        return -1;
    if (doc)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The capacity provider '%s' already exists.", name);
    _cleanup_free_ char *arn = ecs_arn(ctx->srv, "capacity-provider/%s", name);
    doc = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s}", "capacityProviderArn", arn, "name", name,
                    "status", "ACTIVE", "type", "EC2_AUTOSCALING", "autoScalingGroupProvider", asg,
                    "updateStatus", "UPDATE_COMPLETE");
    if (barge_store_put(tx, KIND_PROVIDER, name, doc, err) < 0 ||
        (tags && ecs_tags_add(tx, arn, tags, err) < 0) ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O}", "capacityProvider", doc);
    return 0;
}

static int update_capacity_provider(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    const char *name = barge_json_str(in, "name", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (ecs_capacity_is_fargate(name))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The capacity provider '%s' is built in and cannot be "
                                    "updated.",
                                    name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_PROVIDER, name, &doc, err) < 0)
        return -1;
    if (!doc)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The capacity provider '%s' does not exist.", name);
    json_t *asg = barge_json_object(in, "autoScalingGroupProvider");
    if (asg)
        json_object_update(barge_json_object(doc, "autoScalingGroupProvider"), asg);
    if (barge_store_put(tx, KIND_PROVIDER, name, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O}", "capacityProvider", doc);
    return 0;
}

struct in_use {
    const char *name;
    bool used;
};

static int provider_in_use(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct in_use *u = ud;
    size_t i;
    json_t *p;
    json_array_foreach(barge_json_array(doc, "capacityProviders"), i, p)
    {
        if (barge_streq(json_string_value(p), u->name) &&
            barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE"))
            u->used = true;
    }
    return u->used ? 1 : 0;
}

static int delete_capacity_provider(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    const char *ident = barge_json_str(in, "capacityProvider", "");
    const char *slash = strrchr(ident, '/');
    const char *name = slash ? slash + 1 : ident;
    if (ecs_capacity_is_fargate(name))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The capacity provider '%s' is built in and cannot be "
                                    "deleted.",
                                    name);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_PROVIDER, name, &doc, err) < 0)
        return -1;
    if (!doc)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The capacity provider '%s' does not exist.", name);
    struct in_use u = {name, false};
    if (barge_store_scan(tx, ECS_KIND_CLUSTER, "", NULL, false, 0, provider_in_use, &u, err) < 0)
        return -1;
    if (u.used)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ResourceInUseException",
                                    "The capacity provider '%s' is associated with a cluster: "
                                    "remove it with PutClusterCapacityProviders first.",
                                    name);
    json_object_set_new(doc, "status", json_string("INACTIVE"));
    json_object_set_new(doc, "updateStatus", json_string("DELETE_COMPLETE"));
    if (barge_store_del(tx, KIND_PROVIDER, name, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O}", "capacityProvider", doc);
    return 0;
}

static int collect_provider(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append(ud, doc);
    return 0;
}

static int describe_capacity_providers(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *list = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    json_t *names = barge_json_array(in, "capacityProviders");
    if (!json_array_size(names)) {
        json_array_append_new(list, builtin_doc(ctx->srv, "FARGATE"));
        json_array_append_new(list, builtin_doc(ctx->srv, "FARGATE_SPOT"));
        if (barge_store_scan(tx, KIND_PROVIDER, "", NULL, false, 0, collect_provider, list, err) <
            0)
            return -1;
    } else {
        size_t i;
        json_t *n;
        json_array_foreach(names, i, n)
        {
            json_t *doc = NULL;
            int r = load_provider(tx, ctx->srv, json_string_value(n), &doc, err);
            if (r < 0)
                return -1;
            if (r == 0) {
                json_array_append_new(failures, json_pack("{s:s, s:s}", "arn", json_string_value(n),
                                                          "reason", "MISSING"));
                continue;
            }
            json_array_append_new(list, doc);
        }
    }
    *out = json_pack("{s:O, s:O}", "capacityProviders", list, "failures", failures);
    return 0;
}

int ecs_capacity_check_strategy(struct barge_tx *tx, const struct barge_server *srv,
                                const json_t *strategy, struct barge_error **err)
{
    int with_base = 0;
    size_t i;
    json_t *s;
    json_array_foreach((json_t *)strategy, i, s)
    {
        const char *name = barge_json_str(s, "capacityProvider", "");
        _cleanup_json_ json_t *doc = NULL;
        int r = load_provider(tx, srv, name, &doc, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "The specified capacity provider '%s' does not exist.",
                                        name);
        if (barge_json_int(s, "base", 0) > 0)
            with_base++;
        if (barge_json_int(s, "weight", 0) < 0 || barge_json_int(s, "weight", 0) > 1000 ||
            barge_json_int(s, "base", 0) < 0 || barge_json_int(s, "base", 0) > 100000)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Invalid base or weight for capacity provider '%s'.", name);
    }
    if (with_base > 1)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Only one capacity provider in a strategy can have a base "
                                    "defined.");
    bool fargate = false, other = false;
    json_array_foreach((json_t *)strategy, i, s)
    {
        if (ecs_capacity_is_fargate(barge_json_str(s, "capacityProvider", "")))
            fargate = true;
        else
            other = true;
    }
    if (fargate && other)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "A capacity provider strategy cannot mix Fargate and "
                                    "Auto Scaling group capacity providers.");
    return 0;
}

static int put_cluster_capacity_providers(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    json_t *providers = barge_json_array(in, "capacityProviders");
    json_t *strategy = barge_json_array(in, "defaultCapacityProviderStrategy");
    size_t i;
    json_t *p;
    json_array_foreach(providers, i, p)
    {
        _cleanup_json_ json_t *doc = NULL;
        int r = load_provider(tx, ctx->srv, json_string_value(p), &doc, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "The specified capacity provider '%s' does not exist.",
                                        json_string_value(p));
    }
    json_array_foreach(strategy, i, p)
    {
        bool listed = false;
        size_t j;
        json_t *q;
        json_array_foreach(providers, j, q)
        {
            if (barge_streq(json_string_value(q), barge_json_str(p, "capacityProvider", NULL)))
                listed = true;
        }
        if (!listed)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "The default strategy names '%s', which is not one of "
                                        "the cluster's capacity providers.",
                                        barge_json_str(p, "capacityProvider", ""));
    }
    if (ecs_capacity_check_strategy(tx, ctx->srv, strategy, err) < 0)
        return -1;
    json_object_set(cluster, "capacityProviders", providers);
    json_object_set(cluster, "defaultCapacityProviderStrategy", strategy);
    if (barge_store_put(tx, ECS_KIND_CLUSTER, barge_json_str(cluster, "clusterName", ""), cluster,
                        err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:o}", "cluster", ecs_public(cluster));
    return 0;
}

const struct barge_api_op ecs_capacity_ops[] = {
    {"CreateCapacityProvider", create_capacity_provider},
    {"UpdateCapacityProvider", update_capacity_provider},
    {"DeleteCapacityProvider", delete_capacity_provider},
    {"DescribeCapacityProviders", describe_capacity_providers},
    {"PutClusterCapacityProviders", put_cluster_capacity_providers},
    {NULL, NULL},
};
