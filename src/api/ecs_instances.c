/* ECS container instances: the hosts whose agents run tasks.
 * RegisterContainerInstance (and the agent channel's registration, which
 * shares ecs_instance_register), DescribeContainerInstances,
 * ListContainerInstances, DeregisterContainerInstance,
 * UpdateContainerInstancesState, and the attribute operations. Remaining
 * resources are never stored: they are computed from the tasks an instance
 * holds, so they cannot drift. */
#include <stdio.h>
#include <string.h>

#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"
#include "sched/cql.h"

static int add_usage(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct ecs_usage *u = ud;
    json_t *res = barge_json_object(doc, "reserved");
    u->cpu += barge_json_int(res, "cpu", 0);
    u->memory += barge_json_int(res, "memory", 0);
    size_t i;
    json_t *p;
    json_array_foreach(barge_json_array(res, "ports"), i, p)
    {
        if (u->n_ports < BARGE_ARRAY_SIZE(u->ports))
            u->ports[u->n_ports++] = (uint16_t)json_integer_value(p);
    }
    if (barge_json_bool(doc, "running", false))
        u->running++;
    else
        u->pending++;
    return 0;
}

int ecs_instance_usage(struct barge_tx *tx, const char *instance_id, struct ecs_usage *u,
                       struct barge_error **err)
{
    memset(u, 0, sizeof(*u));
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", instance_id);
    return barge_store_scan(tx, ECS_KIND_ITASK, prefix, NULL, false, 0, add_usage, u, err);
}

static json_t *resource(const char *name, json_int_t v)
{
    return json_pack("{s:s, s:s, s:f, s:i, s:I}", "name", name, "type", "INTEGER", "doubleValue",
                     0.0, "longValue", 0, "integerValue", v);
}

static json_t *port_set(const char *name, const json_t *base, const struct ecs_usage *u)
{
    json_t *set = json_array();
    size_t i;
    json_t *p;
    json_array_foreach((json_t *)base, i, p)
    {
        json_array_append(set, p);
    }
    for (size_t k = 0; u && k < u->n_ports; k++) {
        char buf[8];
        snprintf(buf, sizeof(buf), "%u", u->ports[k]);
        json_array_append_new(set, json_string(buf));
    }
    return json_pack("{s:s, s:s, s:f, s:i, s:i, s:o}", "name", name, "type", "STRINGSET",
                     "doubleValue", 0.0, "longValue", 0, "integerValue", 0, "stringSetValue", set);
}

json_t *ecs_instance_render(struct barge_tx *tx, const json_t *doc, bool tags,
                            struct barge_error **err)
{
    struct ecs_usage u;
    const char *id = barge_json_str(doc, "_id", "");
    if (ecs_instance_usage(tx, id, &u, err) < 0)
        return NULL;
    json_t *out = ecs_public(doc);
    json_t *total = barge_json_object(doc, "_total");
    json_int_t cpu = barge_json_int(total, "cpu", 0), mem = barge_json_int(total, "memory", 0);
    json_t *reserved_ports = barge_json_array(total, "ports");
    json_object_set_new(out, "registeredResources",
                        json_pack("[o, o, o, o]", resource("CPU", cpu), resource("MEMORY", mem),
                                  port_set("PORTS", reserved_ports, NULL),
                                  port_set("PORTS_UDP", NULL, NULL)));
    json_object_set_new(
        out, "remainingResources",
        json_pack("[o, o, o, o]", resource("CPU", cpu - u.cpu), resource("MEMORY", mem - u.memory),
                  port_set("PORTS", reserved_ports, &u), port_set("PORTS_UDP", NULL, NULL)));
    json_object_set_new(out, "runningTasksCount", json_integer(u.running));
    json_object_set_new(out, "pendingTasksCount", json_integer(u.pending));
    bool active = strcmp(barge_json_str(doc, "status", ""), "INACTIVE") != 0;
    json_object_set_new(out, "agentConnected", json_boolean(active && ecs_instance_connected(doc)));
    json_object_set_new(out, "tags", json_array());
    if (tags) {
        json_t *t;
        if (ecs_tags_get(tx, barge_json_str(doc, "containerInstanceArn", ""), &t, err) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "tags", t);
    }
    return out;
}

static void set_attribute(json_t *attrs, const char *name, const char *value)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (barge_streq(barge_json_str(a, "name", NULL), name)) {
            if (value)
                json_object_set_new(a, "value", json_string(value));
            else
                json_object_del(a, "value");
            return;
        }
    }
    json_t *n = json_pack("{s:s}", "name", name);
    if (value)
        json_object_set_new(n, "value", json_string(value));
    json_array_append_new(attrs, n);
}

int ecs_instance_register(struct barge_tx *tx, struct barge_server *srv, const json_t *cluster_doc,
                          const json_t *info, const char *token_hash, json_t **out,
                          struct barge_error **err)
{
    const char *cluster = barge_json_str(cluster_doc, "clusterName", "");
    char id[33];
    barge_id_hex32(id);
    _cleanup_free_ char *arn = ecs_arn(srv, "container-instance/%s/%s", cluster, id);
    char ec2id[20];
    snprintf(ec2id, sizeof(ec2id), "i-%.17s", id);
    json_int_t cpu = barge_json_int(info, "cpu", 1024), mem = barge_json_int(info, "memory", 1024);
    const char *az = barge_json_str(info, "availabilityZone", NULL);
    _cleanup_free_ char *default_az = barge_xasprintf("%sa", barge_server_region(srv));
    json_t *attrs = json_array();
    set_attribute(attrs, "ecs.os-type", "linux");
    set_attribute(attrs, "ecs.os-family", "LINUX");
    set_attribute(attrs, "ecs.cpu-architecture", barge_json_str(info, "architecture", "x86_64"));
    set_attribute(attrs, "ecs.availability-zone", az ? az : default_az);
    set_attribute(attrs, "ecs.instance-type", barge_json_str(info, "instanceType", "barge.host"));
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(info, "attributes"), i, a)
    {
        set_attribute(attrs, barge_json_str(a, "name", ""), barge_json_str(a, "value", NULL));
    }
    json_t *ports = json_array();
    json_array_foreach(barge_json_array(info, "reservedPorts"), i, a)
    {
        char buf[8];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(a));
        json_array_append_new(ports, json_string(buf));
    }
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:i, s:{s:s, s:s, s:s}, s:s, s:o, s:f, s:[], s:s, s:{s:I, s:I, s:o}}",
        "containerInstanceArn", arn, "ec2InstanceId", ec2id, "_id", id, "version", 1, "versionInfo",
        "agentVersion", barge_json_str(info, "agentVersion", "0.1.0"), "agentHash",
        barge_json_str(info, "agentHash", "barge"), "dockerVersion",
        barge_json_str(info, "runtime", "DockerVersion: 0.0.0 (barge)"), "status", "ACTIVE",
        "attributes", attrs, "registeredAt", barge_now(), "attachments", "_cluster", cluster,
        "_total", "cpu", cpu, "memory", mem, "ports", ports);
    if (token_hash)
        json_object_set_new(doc, "_tokenHash", json_string(token_hash));
    const char *hostname = barge_json_str(info, "hostname", NULL);
    if (hostname)
        json_object_set_new(doc, "_hostname", json_string(hostname));
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", cluster, id);
    if (barge_store_put(tx, ECS_KIND_INSTANCE, key, doc, err) < 0) {
        json_decref(doc);
        return -1;
    }
    *out = doc;
    return 0;
}

static int register_container_instance(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *doc = NULL, *info = json_object();
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    size_t i;
    json_t *r;
    json_array_foreach(barge_json_array(in, "totalResources"), i, r)
    {
        const char *name = barge_json_str(r, "name", "");
        json_int_t v = barge_json_int(r, "integerValue", 0);
        if (strcmp(name, "CPU") == 0)
            json_object_set_new(info, "cpu", json_integer(v));
        else if (strcmp(name, "MEMORY") == 0)
            json_object_set_new(info, "memory", json_integer(v));
    }
    json_t *attrs = barge_json_array(in, "attributes");
    if (attrs)
        json_object_set(info, "attributes", attrs);
    json_t *vi = barge_json_object(in, "versionInfo");
    if (vi)
        json_object_set_new(info, "agentVersion",
                            json_string(barge_json_str(vi, "agentVersion", "0.1.0")));
    json_t *tags = barge_json_array(in, "tags");
    if ((tags && ecs_tags_validate(tags, err) < 0) ||
        ecs_instance_register(tx, ctx->srv, cluster, info, NULL, &doc, err) < 0 ||
        (tags && ecs_tags_add(tx, barge_json_str(doc, "containerInstanceArn", ""), tags, err) < 0))
        return -1;
    json_t *ci = ecs_instance_render(tx, doc, true, err);
    if (!ci)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(ci);
        return -1;
    }
    *out = json_pack("{s:o}", "containerInstance", ci);
    return 0;
}

static int describe_container_instances(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                        struct barge_error **err)
{
    json_t *idents = barge_json_array(in, "containerInstances");
    if (json_array_size(idents) > 100)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "containerInstances can name at most 100 instances; %zu were "
                               "given.",
                               json_array_size(idents));
    bool tags = ecs_include_tags(in);
    size_t i;
    json_t *v;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *list = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    json_array_foreach(idents, i, v)
    {
        _cleanup_json_ json_t *doc = NULL;
        _cleanup_free_ char *key = NULL;
        struct barge_error *e = NULL;
        int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_INSTANCE, "container-instance", cname,
                                 json_string_value(v), &doc, &key, &e);
        if (r < 0 && e && e->code != BARGE_ERR_INVALID) {
            *err = e;
            return -1;
        }
        barge_error_free(e);
        if (r <= 0) {
            json_array_append_new(failures, json_pack("{s:s, s:s}", "arn", json_string_value(v),
                                                      "reason", "MISSING"));
            continue;
        }
        json_t *ci = ecs_instance_render(tx, doc, tags, err);
        if (!ci)
            return -1;
        json_array_append_new(list, ci);
    }
    *out = json_pack("{s:O, s:O}", "containerInstances", list, "failures", failures);
    return 0;
}

struct list_state {
    struct barge_api_page *pg;
    const char *status;
    /* ListContainerInstances' filter (cluster query language), or NULL */
    const struct barge_cql *filter;
    struct barge_tx *tx;
    const char *cluster;
    json_t *matching; /* with a filter: {key, doc} of the instances to test */
};

/* --- filter: the cluster query language over stored instances ---------- */

struct group_scan {
    struct barge_tx *tx;
    const char *cluster;
    struct barge_sched_group_count *groups;
    size_t n;
    json_t *names; /* keeps the group strings alive */
};

static int count_group(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct group_scan *gs = ud;
    const char *group = barge_json_str(doc, "group", NULL);
    _cleanup_json_ json_t *task = NULL;
    if (!group) { /* index entries written before groups were recorded there */
        _cleanup_free_ char *tkey =
            barge_xasprintf("%s/%s", gs->cluster, barge_json_str(doc, "task", ""));
        if (barge_store_get(gs->tx, ECS_KIND_TASK, tkey, &task, err) < 0)
            return -1;
        group = barge_json_str(task, "group", NULL);
    }
    if (!group)
        return 0;
    for (size_t i = 0; i < gs->n; i++) {
        if (strcmp(gs->groups[i].group, group) == 0) {
            gs->groups[i].count++;
            return 0;
        }
    }
    json_array_append_new(gs->names, json_string(group));
    gs->groups = barge_xrealloc(gs->groups, (gs->n + 1) * sizeof(*gs->groups));
    gs->groups[gs->n].group = json_string_value(json_array_get(gs->names, gs->n));
    gs->groups[gs->n++].count = 1;
    return 0;
}

/* Does the stored instance doc satisfy the list's filter? */
static int filter_holds(struct list_state *ls, json_t *doc, bool *holds, struct barge_error **err)
{
    json_t *attrs = barge_json_array(doc, "attributes");
    _cleanup_free_ struct barge_sched_attr *av =
        barge_xcalloc(json_array_size(attrs) + 1, sizeof(*av));
    bool inactive = strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0;
    struct barge_sched_instance in = {
        .id = barge_json_str(doc, "_id", ""),
        .arn = barge_json_str(doc, "containerInstanceArn", ""),
        .ec2_instance_id = barge_json_str(doc, "ec2InstanceId", NULL),
        .agent_version =
            barge_json_str(barge_json_object(doc, "versionInfo"), "agentVersion", NULL),
        .attrs = av,
        .registered_at = json_number_value(json_object_get(doc, "registeredAt")),
        .active = strcmp(barge_json_str(doc, "status", ""), "ACTIVE") == 0,
        .agent_connected = !inactive && ecs_instance_connected(doc),
    };
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        av[in.n_attrs].name = barge_json_str(a, "name", "");
        av[in.n_attrs++].value = barge_json_str(a, "value", NULL);
    }
    _cleanup_json_ json_t *names = json_array();
    struct group_scan gs = {ls->tx, ls->cluster, NULL, 0, names};
    if (barge_cql_uses_tasks(ls->filter)) {
        struct ecs_usage u;
        _cleanup_free_ char *prefix = barge_xasprintf("%s/", in.id);
        if (ecs_instance_usage(ls->tx, in.id, &u, err) < 0 ||
            barge_store_scan(ls->tx, ECS_KIND_ITASK, prefix, NULL, false, 0, count_group, &gs,
                             err) < 0) {
            free(gs.groups);
            return -1;
        }
        in.running_tasks = (uint32_t)u.running;
        in.pending_tasks = (uint32_t)u.pending;
        in.groups = gs.groups;
        in.n_groups = gs.n;
    }
    *holds = barge_cql_eval(ls->filter, &in);
    free(gs.groups);
    return 0;
}

/* --- end of filter ----------------------------------------------------- */

static int list_add(struct list_state *ls, const char *key, const json_t *doc);

static int list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct list_state *ls = ud;
    const char *st = barge_json_str(doc, "status", "");
    if (ls->status ? strcmp(st, ls->status) != 0 : strcmp(st, "INACTIVE") == 0)
        return 0;
    if (ls->filter) {
        /* Evaluated after the scan: the filter reads the instance's tasks,
         * and the store cannot run a scan inside another. */
        json_array_append_new(ls->matching, json_pack("{s:s, s:O}", "key", key, "doc", doc));
        return 0;
    }
    return list_add(ls, key, doc);
}

static int list_add(struct list_state *ls, const char *key, const json_t *doc)
{
    return barge_api_page_add(ls->pg, key,
                              json_string(barge_json_str(doc, "containerInstanceArn", "")));
}

static int list_container_instances(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    struct list_state ls = {.pg = &pg, .status = barge_json_str(in, "status", NULL)};
    if (barge_api_page_init(&pg, in, "maxResults", 100, 100, "nextToken", err) < 0)
        return -1;
    struct barge_cql *filter = NULL;
    const char *ftext = barge_json_str(in, "filter", "");
    if (*ftext && barge_cql_parse(ftext, &filter, err) < 0)
        return barge_error_wrap(err, "invalid filter");
    ls.filter = filter;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0) {
        barge_cql_free(filter);
        return -1;
    }
    ls.tx = tx;
    ls.cluster = barge_json_str(cluster, "clusterName", "");
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", ls.cluster);
    _cleanup_json_ json_t *matching = json_array();
    ls.matching = matching;
    int r = barge_store_scan(tx, ECS_KIND_INSTANCE, prefix, pg.after, false, 0, list_one, &ls, err);
    size_t i;
    json_t *m;
    json_array_foreach(matching, i, m)
    {
        bool holds;
        json_t *doc = json_object_get(m, "doc");
        if (r < 0 || (r = filter_holds(&ls, doc, &holds, err)) < 0)
            break;
        if (holds && list_add(&ls, barge_json_str(m, "key", ""), doc) > 0)
            break;
    }
    barge_cql_free(filter);
    if (r < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "containerInstanceArns", "nextToken");
    return 0;
}

static int deregister_container_instance(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                         struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *doc = NULL;
    _cleanup_free_ char *key = NULL;
    const char *ident = barge_json_str(in, "containerInstance", "");
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_INSTANCE, "container-instance",
                             barge_json_str(cluster, "clusterName", ""), ident, &doc, &key, err);
    if (r < 0)
        return -1;
    if (r == 0 || strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Container instance '%s' not found in cluster '%s'.", ident,
                                    barge_json_str(cluster, "clusterName", ""));
    const char *id = barge_json_str(doc, "_id", "");
    struct ecs_usage u;
    if (ecs_instance_usage(tx, id, &u, err) < 0)
        return -1;
    if (u.running + u.pending > 0 && !barge_json_bool(in, "force", false))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Container instance '%s' still has %d task(s). Stop them "
                                    "first, or pass force to deregister it anyway.",
                                    ident, u.running + u.pending);
    if (ecs_instance_orphan_tasks(tx, id, "Container instance deregistration forced by user", err) <
        0)
        return -1;
    json_object_set_new(doc, "status", json_string("INACTIVE"));
    json_object_set_new(doc, "version", json_integer(barge_json_int(doc, "version", 1) + 1));
    if (barge_store_put(tx, ECS_KIND_INSTANCE, key, doc, err) < 0)
        return -1;
    json_t *ci = ecs_instance_render(tx, doc, false, err);
    if (!ci)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(ci);
        return -1;
    }
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:o}", "containerInstance", ci);
    return 0;
}

static int update_container_instances_state(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                            struct barge_error **err)
{
    const char *status = barge_json_str(in, "status", "");
    if (strcmp(status, "ACTIVE") != 0 && strcmp(status, "DRAINING") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Container instances can only be set to ACTIVE or "
                                    "DRAINING; '%s' was given.",
                                    status);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *list = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(in, "containerInstances"), i, v)
    {
        _cleanup_json_ json_t *doc = NULL;
        _cleanup_free_ char *key = NULL;
        struct barge_error *e = NULL;
        int r = ecs_cluster_find(tx, ctx->srv, ECS_KIND_INSTANCE, "container-instance",
                                 barge_json_str(cluster, "clusterName", ""), json_string_value(v),
                                 &doc, &key, &e);
        barge_error_free(e);
        if (r <= 0 || strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0) {
            json_array_append_new(failures, json_pack("{s:s, s:s}", "arn", json_string_value(v),
                                                      "reason", "MISSING"));
            continue;
        }
        if (strcmp(barge_json_str(doc, "status", ""), status) != 0) {
            json_object_set_new(doc, "status", json_string(status));
            json_object_set_new(doc, "version",
                                json_integer(barge_json_int(doc, "version", 1) + 1));
            if (barge_store_put(tx, ECS_KIND_INSTANCE, key, doc, err) < 0)
                return -1;
        }
        json_t *ci = ecs_instance_render(tx, doc, false, err);
        if (!ci)
            return -1;
        json_array_append_new(list, ci);
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:O, s:O}", "containerInstances", list, "failures", failures);
    return 0;
}

/* Attributes live on the instance document; targetId is an instance ARN or id. */
static int change_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out, bool put,
                             struct barge_error **err)
{
    json_t *attrs = barge_json_array(in, "attributes");
    if (json_array_size(attrs) > 10)
        return barge_error_set_type(err, BARGE_ERR_LIMIT, "AttributeLimitExceededException",
                                    "At most 10 attributes can be changed in one call; %zu "
                                    "were given.",
                                    json_array_size(attrs));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *result = json_array();
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        const char *name = barge_json_str(a, "name", "");
        const char *target = barge_json_str(a, "targetId", NULL);
        const char *type = barge_json_str(a, "targetType", "container-instance");
        if (strcmp(type, "container-instance") != 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Invalid targetType '%s': only container-instance is "
                                        "supported.",
                                        type);
        if (!target)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Attribute '%s' needs a targetId (a container instance "
                                        "ARN or id).",
                                        name);
        size_t nl = strlen(name);
        if (nl == 0 || nl > 128 ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789-_./@") != nl)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Invalid attribute name '%s': up to 128 letters, "
                                        "numbers, hyphens, underscores, periods, at signs and "
                                        "slashes are allowed.",
                                        name);
        _cleanup_json_ json_t *doc = NULL;
        _cleanup_free_ char *key = NULL;
        int r =
            ecs_cluster_find(tx, ctx->srv, ECS_KIND_INSTANCE, "container-instance",
                             barge_json_str(cluster, "clusterName", ""), target, &doc, &key, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "TargetNotFoundException",
                                        "Could not find the container instance '%s'.", target);
        json_t *list = barge_json_array(doc, "attributes");
        if (put) {
            set_attribute(list, name, barge_json_str(a, "value", NULL));
        } else {
            size_t j;
            json_t *x;
            json_array_foreach(list, j, x)
            {
                if (barge_streq(barge_json_str(x, "name", NULL), name)) {
                    json_array_remove(list, j);
                    break;
                }
            }
        }
        if (barge_store_put(tx, ECS_KIND_INSTANCE, key, doc, err) < 0)
            return -1;
        json_t *echo = json_deep_copy(a);
        json_object_set_new(echo, "targetId",
                            json_string(barge_json_str(doc, "containerInstanceArn", "")));
        json_object_set_new(echo, "targetType", json_string("container-instance"));
        json_array_append_new(result, echo);
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O}", "attributes", result);
    return 0;
}

static int put_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    return change_attributes(ctx, in, out, true, err);
}

static int delete_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    return change_attributes(ctx, in, out, false, err);
}

struct attr_list {
    json_t *out;
    const char *name, *value;
    int max;
    char *last;
    bool more;
};

static int list_attrs_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct attr_list *al = ud;
    if (strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0)
        return 0;
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(doc, "attributes"), i, a)
    {
        if (al->name && !barge_streq(barge_json_str(a, "name", NULL), al->name))
            continue;
        if (al->value && !barge_streq(barge_json_str(a, "value", NULL), al->value))
            continue;
        json_t *e = json_deep_copy(a);
        json_object_set_new(e, "targetId",
                            json_string(barge_json_str(doc, "containerInstanceArn", "")));
        json_object_set_new(e, "targetType", json_string("container-instance"));
        json_array_append_new(al->out, e);
    }
    if ((int)json_array_size(al->out) >= al->max) {
        free(al->last);
        al->last = barge_xstrdup(key);
        al->more = true;
        return 1;
    }
    return 0;
}

static int list_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    const char *type = barge_json_str(in, "targetType", "");
    if (strcmp(type, "container-instance") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid targetType '%s': only container-instance is "
                                    "supported.",
                                    type);
    struct attr_list al = {.name = barge_json_str(in, "attributeName", NULL),
                           .value = barge_json_str(in, "attributeValue", NULL)};
    if (al.value && !al.name)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "attributeValue can only be given with attributeName.");
    _cleanup_free_ char *after = NULL;
    if (barge_api_max_results(in, "maxResults", 100, 100, &al.max, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, "nextToken", NULL), &after, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    _cleanup_free_ char *prefix =
        barge_xasprintf("%s/", barge_json_str(cluster, "clusterName", ""));
    al.out = json_array();
    if (barge_store_scan(tx, ECS_KIND_INSTANCE, prefix, after, false, 0, list_attrs_one, &al, err) <
        0) {
        json_decref(al.out);
        free(al.last);
        return -1;
    }
    *out = json_pack("{s:o}", "attributes", al.out);
    if (al.more) {
        char *tok = barge_api_token_encode(al.last);
        json_object_set_new(*out, "nextToken", json_string(tok));
        free(tok);
    }
    free(al.last);
    return 0;
}

const struct barge_api_op ecs_instance_ops[] = {
    {"RegisterContainerInstance", register_container_instance},
    {"DescribeContainerInstances", describe_container_instances},
    {"ListContainerInstances", list_container_instances},
    {"DeregisterContainerInstance", deregister_container_instance},
    {"UpdateContainerInstancesState", update_container_instances_state},
    {"PutAttributes", put_attributes},
    {"DeleteAttributes", delete_attributes},
    {"ListAttributes", list_attributes},
    {NULL, NULL},
};
