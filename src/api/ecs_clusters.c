/* ECS clusters: CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
 * UpdateClusterSettings and DeleteCluster. A deleted cluster stays describable
 * as INACTIVE, as in ECS, and CreateCluster of its name brings it back. */
#include <string.h>

#include "api/ecs.h"
#include "api/metrics.h"
#include "common/json.h"

static int validate_settings(const json_t *settings, struct barge_error **err)
{
    size_t i;
    json_t *s;
    json_array_foreach(settings, i, s)
    {
        const char *v = barge_json_str(s, "value", NULL);
        if (!v ||
            (strcmp(v, "enabled") != 0 && strcmp(v, "disabled") != 0 && strcmp(v, "enhanced") != 0))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "Invalid value '%s' for cluster setting '%s': use enabled, "
                                   "disabled or enhanced.",
                                   v ? v : "null", barge_json_str(s, "name", "?"));
    }
    return 0;
}

/* Replaces or appends each setting of update in doc's settings. */
static void merge_settings(json_t *doc, const json_t *update)
{
    json_t *cur = barge_json_array(doc, "settings");
    if (!cur) {
        cur = json_array();
        json_object_set_new(doc, "settings", cur);
    }
    size_t i, j;
    json_t *u, *c;
    json_array_foreach(update, i, u)
    {
        bool replaced = false;
        json_array_foreach(cur, j, c)
        {
            if (barge_streq(barge_json_str(c, "name", NULL), barge_json_str(u, "name", NULL))) {
                json_array_set(cur, j, u);
                replaced = true;
                break;
            }
        }
        if (!replaced)
            json_array_append(cur, u);
    }
}

struct counts {
    json_int_t instances, running, pending, services, draining_services;
    json_int_t running_ec2, running_fargate, pending_ec2, pending_fargate;
};

static int count_instance(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct counts *c = ud;
    const char *st = barge_json_str(doc, "status", "");
    if (strcmp(st, "INACTIVE") != 0 && strcmp(st, "DEREGISTERING") != 0)
        c->instances++;
    return 0;
}

static int count_task(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct counts *c = ud;
    const char *last = barge_json_str(doc, "lastStatus", "");
    bool fargate = barge_streq(barge_json_str(doc, "launchType", NULL), "FARGATE");
    if (strcmp(last, "RUNNING") == 0) {
        c->running++;
        fargate ? c->running_fargate++ : c->running_ec2++;
    } else if (strcmp(last, "STOPPED") != 0 && strcmp(last, "DELETED") != 0) {
        c->pending++;
        fargate ? c->pending_fargate++ : c->pending_ec2++;
    }
    return 0;
}

static int count_service(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct counts *c = ud;
    const char *st = barge_json_str(doc, "status", "");
    if (strcmp(st, "ACTIVE") == 0)
        c->services++;
    else if (strcmp(st, "DRAINING") == 0)
        c->draining_services++;
    return 0;
}

static int cluster_counts(struct barge_tx *tx, const char *name, struct counts *c,
                          struct barge_error **err)
{
    memset(c, 0, sizeof(*c));
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", name);
    if (barge_store_scan(tx, ECS_KIND_INSTANCE, prefix, NULL, false, 0, count_instance, c, err) <
            0 ||
        barge_store_scan(tx, ECS_KIND_TASK, prefix, NULL, false, 0, count_task, c, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_SERVICE, prefix, NULL, false, 0, count_service, c, err) < 0)
        return -1;
    return 0;
}

static void add_stat(json_t *stats, const char *name, json_int_t v)
{
    _cleanup_free_ char *s = barge_xasprintf("%lld", (long long)v);
    json_array_append_new(stats, json_pack("{s:s, s:s}", "name", name, "value", s));
}

enum { INC_SETTINGS = 1, INC_CONFIGURATIONS = 2, INC_TAGS = 4, INC_STATISTICS = 8 };
#define INC_ALL (INC_SETTINGS | INC_CONFIGURATIONS | INC_TAGS)

static unsigned include_flags(const json_t *include)
{
    static const char *names[] = {"SETTINGS", "CONFIGURATIONS", "TAGS", "STATISTICS"};
    unsigned flags = 0;
    size_t i;
    json_t *v;
    json_array_foreach(include, i, v)
    {
        for (size_t n = 0; n < BARGE_ARRAY_SIZE(names); n++)
            if (barge_streq(json_string_value(v), names[n]))
                flags |= 1u << n;
    }
    return flags;
}

/* The Cluster shape of a stored cluster, with counts and the parts include
 * asks for. Returns a new reference. */
static json_t *render(struct barge_tx *tx, const json_t *doc, unsigned include,
                      struct barge_error **err)
{
    json_t *out = json_deep_copy(doc);
    const char *name = barge_json_str(doc, "clusterName", "");
    struct counts c;
    if (cluster_counts(tx, name, &c, err) < 0) {
        json_decref(out);
        return NULL;
    }
    bool active = strcmp(barge_json_str(doc, "status", ""), "ACTIVE") == 0;
    json_object_set_new(out, "registeredContainerInstancesCount",
                        json_integer(active ? c.instances : 0));
    json_object_set_new(out, "runningTasksCount", json_integer(active ? c.running : 0));
    json_object_set_new(out, "pendingTasksCount", json_integer(active ? c.pending : 0));
    json_object_set_new(out, "activeServicesCount", json_integer(active ? c.services : 0));
    json_object_set_new(out, "statistics", json_array());
    if (include & INC_STATISTICS) {
        json_t *stats = json_object_get(out, "statistics");
        add_stat(stats, "runningEC2TasksCount", c.running_ec2);
        add_stat(stats, "runningFargateTasksCount", c.running_fargate);
        add_stat(stats, "pendingEC2TasksCount", c.pending_ec2);
        add_stat(stats, "pendingFargateTasksCount", c.pending_fargate);
        add_stat(stats, "activeEC2ServiceCount", c.services);
        add_stat(stats, "drainingEC2ServiceCount", c.draining_services);
        if (barge_metrics_cluster_statistics(tx, name, stats, err) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    if (!(include & INC_SETTINGS))
        json_object_del(out, "settings");
    if (!(include & INC_CONFIGURATIONS))
        json_object_del(out, "configuration");
    json_object_set_new(out, "tags", json_array());
    if (include & INC_TAGS) {
        json_t *tags;
        if (ecs_tags_get(tx, barge_json_str(doc, "clusterArn", ""), &tags, err) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "tags", tags);
    }
    return out;
}

json_t *ecs_cluster_doc_new(const struct barge_server *srv, const char *name)
{
    _cleanup_free_ char *arn = ecs_arn(srv, "cluster/%s", name);
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:[], s:[]}", "clusterArn", arn,
                     "clusterName", name, "status", "ACTIVE", "settings", "name",
                     "containerInsights", "value", "disabled", "capacityProviders",
                     "defaultCapacityProviderStrategy");
}

static int create_cluster(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *name = barge_json_str(in, "clusterName", "default");
    if (!ecs_name_valid(name))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "Invalid cluster name '%s': up to 255 letters (uppercase and "
                               "lowercase), numbers, hyphens and underscores are allowed.",
                               name);
    json_t *settings = barge_json_array(in, "settings");
    json_t *tags = barge_json_array(in, "tags");
    if ((settings && validate_settings(settings, err) < 0) ||
        (tags && ecs_tags_validate(tags, err) < 0))
        return -1;

    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int r = barge_store_get(tx, ECS_KIND_CLUSTER, name, &doc, err);
    if (r < 0)
        return -1;
    if (r == 0 || strcmp(barge_json_str(doc, "status", ""), "ACTIVE") != 0) {
        json_decref(doc);
        doc = ecs_cluster_doc_new(ctx->srv, name);
        const char *arn = barge_json_str(doc, "clusterArn", "");
        if (settings)
            merge_settings(doc, settings);
        const char *copy[] = {"configuration", "serviceConnectDefaults", "capacityProviders",
                              "defaultCapacityProviderStrategy"};
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
            json_t *v = json_object_get(in, copy[i]);
            if (v)
                json_object_set(doc, copy[i], v);
        }
        if (ecs_tags_drop(tx, arn, err) < 0 || (tags && ecs_tags_add(tx, arn, tags, err) < 0) ||
            barge_store_put(tx, ECS_KIND_CLUSTER, name, doc, err) < 0)
            return -1;
    }
    json_t *cluster = render(tx, doc, INC_ALL, err);
    if (!cluster)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(cluster);
        return -1;
    }
    *out = json_pack("{s:o}", "cluster", cluster);
    return 0;
}

static int describe_clusters(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    json_t *idents = barge_json_array(in, "clusters");
    unsigned include = include_flags(barge_json_array(in, "include"));
    _cleanup_json_ json_t *dflt = NULL;
    if (!idents || json_array_size(idents) == 0)
        idents = dflt = json_pack("[s]", "default");
    if (json_array_size(idents) > 100)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "clusters can name at most 100 clusters; %zu were given.",
                               json_array_size(idents));

    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *clusters = json_array(), *failures = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(idents, i, v)
    {
        const char *ident = json_string_value(v);
        _cleanup_free_ char *name = NULL;
        _cleanup_json_ json_t *doc = NULL;
        _cleanup_free_ char *arn = NULL;
        struct barge_error *e = NULL;
        if (ecs_cluster_name(ctx->srv, ident, &name, &e) < 0) {
            barge_error_free(e);
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn", ident, "reason", "MISSING"));
            continue;
        }
        int r = barge_store_get(tx, ECS_KIND_CLUSTER, name, &doc, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            arn = ecs_arn(ctx->srv, "cluster/%s", name);
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn", arn, "reason", "MISSING"));
            continue;
        }
        json_t *c = render(tx, doc, include, err);
        if (!c)
            return -1;
        json_array_append_new(clusters, c);
    }
    *out = json_pack("{s:O, s:O}", "clusters", clusters, "failures", failures);
    return 0;
}

static int list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (strcmp(barge_json_str(doc, "status", ""), "ACTIVE") != 0)
        return 0;
    return barge_api_page_add(ud, key, json_string(barge_json_str(doc, "clusterArn", "")));
}

static int list_clusters(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_api_page_init(&pg, in, "maxResults", 100, 100, "nextToken", err) < 0 ||
        barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_CLUSTER, "", pg.after, false, 0, list_one, &pg, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "clusterArns", "nextToken");
    return 0;
}

/* Loads the cluster for an update, applies fn, stores it and renders it. */
static int update_with(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       void (*apply)(json_t *doc, const json_t *in), struct barge_error **err)
{
    json_t *settings = barge_json_array(in, "settings");
    if (settings && validate_settings(settings, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &doc, err) < 0)
        return -1;
    apply(doc, in);
    if (barge_store_put(tx, ECS_KIND_CLUSTER, barge_json_str(doc, "clusterName", ""), doc, err) < 0)
        return -1;
    json_t *c = render(tx, doc, INC_ALL, err);
    if (!c)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(c);
        return -1;
    }
    *out = json_pack("{s:o}", "cluster", c);
    return 0;
}

static void apply_update(json_t *doc, const json_t *in)
{
    json_t *settings = barge_json_array(in, "settings");
    if (settings)
        merge_settings(doc, settings);
    const char *copy[] = {"configuration", "serviceConnectDefaults"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(in, copy[i]);
        if (v)
            json_object_set(doc, copy[i], v);
    }
}

static void apply_settings(json_t *doc, const json_t *in)
{
    merge_settings(doc, barge_json_array(in, "settings"));
}

static int update_cluster(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    return update_with(ctx, in, out, apply_update, err);
}

static int update_cluster_settings(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    return update_with(ctx, in, out, apply_settings, err);
}

static int delete_cluster(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &doc, err) < 0)
        return -1;
    const char *name = barge_json_str(doc, "clusterName", "");
    struct counts c;
    if (cluster_counts(tx, name, &c, err) < 0)
        return -1;
    if (c.services + c.draining_services > 0)
        return barge_error_set_type(
            err, BARGE_ERR_CONFLICT, "ClusterContainsServicesException",
            "The cluster '%s' cannot be deleted while services are active: %lld service(s) "
            "remain. Delete them first.",
            name, (long long)(c.services + c.draining_services));
    if (c.instances > 0)
        return barge_error_set_type(
            err, BARGE_ERR_CONFLICT, "ClusterContainsContainerInstancesException",
            "The cluster '%s' cannot be deleted while container instances are active or "
            "draining: %lld instance(s) remain. Deregister them first.",
            name, (long long)c.instances);
    if (c.running + c.pending > 0)
        return barge_error_set_type(
            err, BARGE_ERR_CONFLICT, "ClusterContainsTasksException",
            "The cluster '%s' cannot be deleted while tasks are active: %lld task(s) remain. "
            "Stop them first.",
            name, (long long)(c.running + c.pending));
    json_object_set_new(doc, "status", json_string("INACTIVE"));
    if (barge_store_put(tx, ECS_KIND_CLUSTER, name, doc, err) < 0)
        return -1;
    json_t *cl = render(tx, doc, INC_ALL, err);
    if (!cl)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(cl);
        return -1;
    }
    *out = json_pack("{s:o}", "cluster", cl);
    return 0;
}

const struct barge_api_op ecs_cluster_ops[] = {
    {"CreateCluster", create_cluster},
    {"DescribeClusters", describe_clusters},
    {"ListClusters", list_clusters},
    {"UpdateCluster", update_cluster},
    {"UpdateClusterSettings", update_cluster_settings},
    {"DeleteCluster", delete_cluster},
    {NULL, NULL},
};
