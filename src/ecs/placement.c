/* The placement adapter between the store and the pure scheduler
 * (sched/place.h): it reads a cluster's instances and the tasks they hold
 * into a snapshot, asks the scheduler where a task fits (making room on the
 * Fargate pool by interrupting FARGATE_SPOT tasks), and builds and stores the
 * task it places. RunTask and StartTask (api/ecs_tasks.c) and the service
 * scheduler (control/services.c) place tasks through it (ecs.h). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "ecs/ecs.h"
#include "sched/place.h"

/* --- placement -------------------------------------------------------- */

/* The cluster as the scheduler sees it: a snapshot of its instances (index i
 * of the snapshot is docs[i], the stored instance document). */
struct candidates {
    struct barge_sched_snapshot *snap;
    json_t **docs;
    size_t n, cap;
    struct barge_tx *tx;
    const char *cluster;
};

struct itask_scan {
    struct candidates *c;
    size_t idx;
};

/* The host ports a reservation holds (at most BARGE_SCHED_MAX_PORTS). */
static size_t reserved_ports(const json_t *res, uint16_t ports[BARGE_SCHED_MAX_PORTS])
{
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(barge_json_array(res, "ports"), i, p)
    {
        if (n < BARGE_SCHED_MAX_PORTS)
            ports[n++] = (uint16_t)json_integer_value(p);
    }
    return n;
}

/* Records one task of an instance's index in the snapshot: what it holds and
 * its group (read from the task when an older index entry lacks it). An
 * interrupted Spot task holds nothing: its room went to the task that
 * interrupted it. */
static int add_itask(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct itask_scan *sc = ud;
    if (barge_json_bool(doc, "interrupted", false))
        return 0;
    json_t *res = barge_json_object(doc, "reserved");
    uint16_t ports[BARGE_SCHED_MAX_PORTS];
    size_t n_ports = reserved_ports(res, ports);
    _cleanup_json_ json_t *task = NULL;
    const char *group = barge_json_str(doc, "group", NULL);
    if (!group) {
        _cleanup_free_ char *tkey =
            barge_xasprintf("%s/%s", sc->c->cluster, barge_json_str(doc, "task", ""));
        if (barge_store_get(sc->c->tx, ECS_KIND_TASK, tkey, &task, err) < 0)
            return -1;
        group = barge_json_str(task, "group", NULL);
    }
    barge_sched_snapshot_add_task(sc->c->snap, sc->idx, group, barge_json_int(res, "cpu", 0),
                                  barge_json_int(res, "memory", 0), ports, n_ports,
                                  barge_json_bool(doc, "running", false));
    return 0;
}

/* Adds a stored instance and the tasks of its index to the snapshot. */
static int add_instance(struct candidates *c, json_t *doc, struct barge_error **err)
{
    if (strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0)
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->docs = barge_xrealloc(c->docs, c->cap * sizeof(*c->docs));
    }
    json_t *total = barge_json_object(doc, "_total");
    json_t *attrs = barge_json_array(doc, "attributes"),
           *reserved = barge_json_array(total, "ports");
    struct barge_sched_attr *av = barge_xcalloc(json_array_size(attrs) + 1, sizeof(*av));
    uint16_t *ports = barge_xcalloc(json_array_size(reserved) + 1, sizeof(*ports));
    struct barge_sched_instance in = {
        .id = barge_json_str(doc, "_id", ""),
        .arn = barge_json_str(doc, "containerInstanceArn", ""),
        .ec2_instance_id = barge_json_str(doc, "ec2InstanceId", NULL),
        .agent_version =
            barge_json_str(barge_json_object(doc, "versionInfo"), "agentVersion", NULL),
        .attrs = av,
        .registered_at = json_number_value(json_object_get(doc, "registeredAt")),
        .active = strcmp(barge_json_str(doc, "status", ""), "ACTIVE") == 0,
        .agent_connected = ecs_instance_connected(doc),
        .cpu = barge_json_int(total, "cpu", 0),
        .memory = barge_json_int(total, "memory", 0),
        .ports = ports,
    };
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        av[in.n_attrs].name = barge_json_str(a, "name", "");
        av[in.n_attrs++].value = barge_json_str(a, "value", NULL);
    }
    json_array_foreach(reserved, i, a)
    {
        long port = strtol(json_is_string(a) ? json_string_value(a) : "0", NULL, 10);
        if (port > 0 && port < 65536)
            ports[in.n_ports++] = (uint16_t)port;
    }
    struct itask_scan sc = {c, barge_sched_snapshot_add(c->snap, &in)};
    free(av);
    free(ports);
    c->docs[c->n++] = json_incref(doc);
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", in.id);
    return barge_store_scan(c->tx, ECS_KIND_ITASK, prefix, NULL, false, 0, add_itask, &sc, err);
}

static int collect_doc(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append(ud, doc);
    return 0;
}

/* The cluster's instances into the snapshot. Their documents are read first:
 * the store cannot run a scan (of each one's tasks) inside another. */
static int collect_cluster(struct candidates *c, struct barge_error **err)
{
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", c->cluster);
    _cleanup_json_ json_t *docs = json_array();
    if (barge_store_scan(c->tx, ECS_KIND_INSTANCE, prefix, NULL, false, 0, collect_doc, docs, err) <
        0)
        return -1;
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        if (add_instance(c, doc, err) < 0)
            return -1;
    }
    return 0;
}

static int collect_spot(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (barge_json_bool(doc, "spot", false) && !barge_json_bool(doc, "interrupted", false))
        json_array_append(ud, doc);
    return 0;
}

/* Adds (or takes away) what a task of the index holds on instance idx. */
static void snapshot_itask(struct barge_sched_snapshot *snap, size_t idx, const json_t *doc,
                           bool add)
{
    json_t *res = barge_json_object(doc, "reserved");
    uint16_t ports[BARGE_SCHED_MAX_PORTS];
    size_t n_ports = reserved_ports(res, ports);
    void (*apply)(struct barge_sched_snapshot *, size_t, const char *, int64_t, int64_t,
                  const uint16_t *, size_t, bool) =
        add ? barge_sched_snapshot_add_task : barge_sched_snapshot_remove_task;
    apply(snap, idx, barge_json_str(doc, "group", NULL), barge_json_int(res, "cpu", 0),
          barge_json_int(res, "memory", 0), ports, n_ports, barge_json_bool(doc, "running", false));
}

/* Asks a Spot task of instance inst's index to stop with Fargate's stop code
 * and reason, and marks its index entry interrupted so that its room counts
 * as free. */
static int interrupt_spot(struct candidates *c, const char *inst, json_t *idx,
                          struct barge_error **err)
{
    _cleanup_json_ json_t *task = NULL;
    const char *id = barge_json_str(idx, "task", "");
    _cleanup_free_ char *tkey = barge_xasprintf("%s/%s", barge_json_str(idx, "cluster", ""), id);
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", inst, id);
    if (barge_store_get(c->tx, ECS_KIND_TASK, tkey, &task, err) < 0)
        return -1;
    if (task && !barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED")) {
        ecs_task_request_stop(task, "SpotInterruption", "Your Spot Task was interrupted.");
        barge_info("interrupting Spot task %s to make room", id);
        if (barge_store_put(c->tx, ECS_KIND_TASK, tkey, task, err) < 0)
            return -1;
    }
    json_object_set_new(idx, "interrupted", json_true());
    return barge_store_put(c->tx, ECS_KIND_ITASK, ikey, idx, err);
}

/* On-demand Fargate tasks take the room of Spot ones, as Fargate reclaims
 * Spot capacity: finds an instance of the pool where req fits once some of
 * its Spot tasks are gone, interrupts just those (the agent gives them the
 * two-minute warning: SIGTERM, and SIGKILL only after 120 s) and commits req
 * there at once. *pick is the instance's index, or -1 when no instance can
 * make room (then nothing is interrupted). */
static int make_room(struct candidates *c, const struct barge_sched_request *req, ssize_t *pick,
                     struct barge_error **err)
{
    *pick = -1;
    for (size_t i = 0; i < c->n && *pick < 0; i++) {
        _cleanup_json_ json_t *spots = json_array();
        const char *inst = barge_json_str(c->docs[i], "_id", "");
        _cleanup_free_ char *prefix = barge_xasprintf("%s/", inst);
        if (barge_store_scan(c->tx, ECS_KIND_ITASK, prefix, NULL, false, 0, collect_spot, spots,
                             err) < 0)
            return -1;
        size_t taken = 0;
        while (taken < json_array_size(spots) &&
               barge_sched_check(c->snap, i, req) != BARGE_SCHED_FITS)
            snapshot_itask(c->snap, i, json_array_get(spots, taken++), false);
        if (barge_sched_check(c->snap, i, req) != BARGE_SCHED_FITS) {
            while (taken > 0)
                snapshot_itask(c->snap, i, json_array_get(spots, --taken), true);
            continue;
        }
        for (size_t k = 0; k < taken; k++)
            if (interrupt_spot(c, inst, json_array_get(spots, k), err) < 0)
                return -1;
        barge_sched_commit(c->snap, i, req);
        *pick = (ssize_t)i;
    }
    return 0;
}

static void candidates_release(struct candidates *c)
{
    for (size_t i = 0; i < c->n; i++)
        json_decref(c->docs[i]);
    free(c->docs);
    barge_sched_snapshot_free(c->snap);
    memset(c, 0, sizeof(*c));
}

/* The snapshots placements of one transaction share: the cluster's
 * instances and the Fargate pool, each read from the store when first needed
 * and then kept up to date by committing every placement into it. Reading
 * them once per task made placing N tasks cost N reads of every instance and
 * of every task on it. */
/* Placement decisions since barged started (ecs_placement_decisions). */
static atomic_uint_fast64_t decisions_placed, decisions_unplaceable;

void ecs_placement_decisions(uint64_t *placed, uint64_t *unplaceable)
{
    *placed = atomic_load(&decisions_placed);
    *unplaceable = atomic_load(&decisions_unplaceable);
}

struct ecs_placement {
    struct barge_tx *tx;
    struct candidates cand[2]; /* [0] the cluster's instances, [1] the pool */
    bool built[2];
};

struct ecs_placement *ecs_placement_new(struct barge_tx *tx)
{
    struct ecs_placement *pl = barge_xcalloc(1, sizeof(*pl));
    pl->tx = tx;
    return pl;
}

void ecs_placement_free(struct ecs_placement *pl)
{
    if (!pl)
        return;
    for (size_t i = 0; i < 2; i++)
        if (pl->built[i])
            candidates_release(&pl->cand[i]);
    free(pl);
}

/* The snapshot of the cluster (or of the pool), built on first use. */
static struct candidates *placement_candidates(struct ecs_placement *pl, const json_t *cluster,
                                               bool pool, struct barge_error **err)
{
    struct candidates *c = &pl->cand[pool];
    if (pl->built[pool])
        return c;
    *c = (struct candidates){.snap = barge_sched_snapshot_new(),
                             .tx = pl->tx,
                             .cluster = pool ? ECS_FARGATE_POOL
                                             : barge_json_str(cluster, "clusterName", "")};
    pl->built[pool] = true;
    if (collect_cluster(c, err) < 0) {
        candidates_release(c);
        pl->built[pool] = false;
        return NULL;
    }
    return c;
}

/* The placement policy of a task: params' placementStrategy and
 * placementConstraints (RunTask's, or a service's), then the task
 * definition's constraints; service tasks without strategies get ECS's
 * default spread. Invalid ones are an InvalidParameterException. */
static int placement_policy(const json_t *td, const json_t *params, const char *group,
                            struct barge_sched_policy *p, struct barge_error **err)
{
    barge_sched_policy_init(p);
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(params, "placementStrategy"), i, v)
    {
        if (barge_sched_policy_add_strategy(p, barge_json_str(v, "type", NULL),
                                            barge_json_str(v, "field", NULL), err) < 0)
            goto fail;
    }
    json_array_foreach(barge_json_array(params, "placementConstraints"), i, v)
    {
        if (barge_sched_policy_add_constraint(p, barge_json_str(v, "type", NULL),
                                              barge_json_str(v, "expression", NULL), false,
                                              err) < 0)
            goto fail;
    }
    json_array_foreach(barge_json_array(td, "placementConstraints"), i, v)
    {
        if (barge_sched_policy_add_constraint(p, barge_json_str(v, "type", NULL),
                                              barge_json_str(v, "expression", NULL), true,
                                              err) < 0) {
            barge_error_wrap(err, "task definition placement constraint");
            goto fail;
        }
    }
    if (barge_str_has_prefix(group, "service:"))
        barge_sched_policy_default_service(p);
    return 0;
fail:
    barge_sched_policy_release(p);
    return -1;
}

int ecs_placement_validate(const json_t *params, struct barge_error **err)
{
    struct barge_sched_policy p;
    if (placement_policy(NULL, params, "", &p, err) < 0)
        return -1;
    barge_sched_policy_release(&p);
    return 0;
}

/* The effective container definitions of a task: the definition's containers
 * with the run's containerOverrides applied. New reference. */
static json_t *apply_overrides(const json_t *td, const json_t *overrides)
{
    json_t *containers = json_deep_copy(barge_json_array(td, "containerDefinitions"));
    size_t i;
    json_t *o;
    json_array_foreach(barge_json_array(overrides, "containerOverrides"), i, o)
    {
        json_t *c = barge_json_find(containers, "name", barge_json_str(o, "name", ""));
        if (!c)
            continue;
        const char *simple[] = {"command", "cpu", "memory", "memoryReservation"};
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(simple); k++) {
            json_t *v = json_object_get(o, simple[k]);
            if (v)
                json_object_set(c, simple[k], v);
        }
        json_t *env = barge_json_array(o, "environment");
        if (env) {
            json_t *cur = barge_json_array(c, "environment");
            if (!cur) {
                cur = json_array();
                json_object_set_new(c, "environment", cur);
            }
            size_t j;
            json_t *e;
            json_array_foreach(env, j, e)
            {
                json_t *have = barge_json_find(cur, "name", barge_json_str(e, "name", ""));
                if (have)
                    json_object_set(have, "value", json_object_get(e, "value"));
                else
                    json_array_append(cur, e);
            }
        }
    }
    return containers;
}

/* What a task reserves on its instance. */
static void task_request(const json_t *td, const json_t *containers, const json_t *overrides,
                         struct barge_sched_request *req)
{
    memset(req, 0, sizeof(*req));
    const char *cpu = barge_json_str(overrides, "cpu", barge_json_str(td, "cpu", NULL));
    const char *mem = barge_json_str(overrides, "memory", barge_json_str(td, "memory", NULL));
    size_t i, j;
    json_t *c, *pm;
    json_array_foreach((json_t *)containers, i, c)
    {
        if (!cpu)
            req->cpu += barge_json_int(c, "cpu", 0);
        if (!mem) {
            json_int_t m = barge_json_int(c, "memoryReservation", 0);
            req->memory += m ? m : barge_json_int(c, "memory", 0);
        }
        const char *mode = barge_json_str(td, "networkMode", "bridge");
        if (strcmp(mode, "awsvpc") == 0 || strcmp(mode, "none") == 0)
            continue;
        json_array_foreach(barge_json_array(c, "portMappings"), j, pm)
        {
            json_int_t hp = barge_json_int(pm, "hostPort", 0);
            if (strcmp(mode, "host") == 0 && hp == 0)
                hp = barge_json_int(pm, "containerPort", 0);
            if (hp > 0 && req->n_ports < BARGE_SCHED_MAX_PORTS)
                req->ports[req->n_ports++] = (uint16_t)hp;
        }
    }
    if (cpu)
        req->cpu = strtoll(cpu, NULL, 10);
    if (mem)
        req->memory = strtoll(mem, NULL, 10);
}

/* The ENI attachment of an awsvpc task, as ECS shows it before the agent
 * has wired the network; the agent reports it ATTACHED with its address. */
static json_t *eni_attachment(const json_t *in)
{
    json_t *vpc =
        barge_json_object(barge_json_object(in, "networkConfiguration"), "awsvpcConfiguration");
    char id[37];
    barge_id_uuid(id);
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s?}]}", "id", id, "type",
                     "ElasticNetworkInterface", "status", "PRECREATED", "details", "name",
                     "subnetId", "value",
                     json_string_value(json_array_get(barge_json_array(vpc, "subnets"), 0)));
}

/* Builds and stores a new task for td on instance (a stored instance doc). */
static int create_task(struct barge_server *srv, struct barge_tx *tx, const json_t *in,
                       const json_t *cluster, const json_t *td, const json_t *instance,
                       const struct barge_sched_request *req, const json_t *containers,
                       json_t **out, struct barge_error **err)
{
    const char *cname = barge_json_str(cluster, "clusterName", "");
    char id[33];
    barge_id_hex32(id);
    _cleanup_free_ char *arn = ecs_arn(srv, "task/%s/%s", cname, id);
    const char *family = barge_json_str(td, "family", "");
    _cleanup_free_ char *dflt_group = barge_xasprintf("family:%s", family);
    json_t *overrides = barge_json_object(in, "overrides");
    _cleanup_free_ char *cpu = barge_xasprintf("%lld", (long long)req->cpu);
    _cleanup_free_ char *mem = barge_xasprintf("%lld", (long long)req->memory);
    double now = barge_now();
    const char *az = NULL;
    size_t i;
    json_t *a, *c;
    json_array_foreach(barge_json_array(instance, "attributes"), i, a)
    {
        if (barge_streq(barge_json_str(a, "name", NULL), "ecs.availability-zone"))
            az = barge_json_str(a, "value", NULL);
    }
    json_t *task = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:i, s:[], s:s, s:b, s:[], s:s, "
        "s:s, s:s}",
        "taskArn", arn, "clusterArn", barge_json_str(cluster, "clusterArn", ""),
        "taskDefinitionArn", barge_json_str(td, "taskDefinitionArn", ""), "containerInstanceArn",
        barge_json_str(instance, "containerInstanceArn", ""), "lastStatus", "PENDING",
        "desiredStatus", "RUNNING", "cpu", cpu, "memory", mem, "launchType", "EC2", "createdAt",
        now, "version", 1, "attachments", "group", barge_json_str(in, "group", dflt_group),
        "enableExecuteCommand", barge_json_bool(in, "enableExecuteCommand", false),
        "inferenceAccelerators", "_id", id, "_cluster", cname, "_family", family);
    if (az)
        json_object_set_new(task, "availabilityZone", json_string(az));
    if (barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc"))
        json_array_append_new(json_object_get(task, "attachments"), eni_attachment(in));
    const char *started_by = barge_json_str(in, "startedBy", NULL);
    if (started_by)
        json_object_set_new(task, "startedBy", json_string(started_by));
    json_object_set_new(task, "_instanceId", json_string(barge_json_str(instance, "_id", "")));
    const char *provider = barge_json_str(in, "_provider", NULL);
    bool pool = barge_json_bool(in, "_pool", false);
    if (provider)
        json_object_set_new(task, "capacityProviderName", json_string(provider));
    if (pool) {
        /* Fargate tasks run on capacity nobody sees or picks. */
        json_object_set_new(task, "launchType", json_string("FARGATE"));
        json_object_del(task, "containerInstanceArn");
        const char *pv = barge_json_str(in, "platformVersion", "LATEST");
        json_object_set_new(task, "platformVersion",
                            json_string(strcmp(pv, "LATEST") == 0 ? "1.4.0" : pv));
        json_object_set_new(task, "platformFamily", json_string("Linux"));
        /* The agent gives the task a filesystem of this size (20 GiB when
         * neither the run's overrides nor the definition say). */
        json_t *eph = barge_json_object(overrides, "ephemeralStorage");
        if (!eph)
            eph = barge_json_object(td, "ephemeralStorage");
        json_int_t gib = barge_json_int(eph, "sizeInGiB", 20);
        json_object_set_new(task, "ephemeralStorage", json_pack("{s:I}", "sizeInGiB", gib));
        json_object_set_new(task, "fargateEphemeralStorage", json_pack("{s:I}", "sizeInGiB", gib));
        const char *public_ip = barge_json_str(
            barge_json_object(barge_json_object(in, "networkConfiguration"), "awsvpcConfiguration"),
            "assignPublicIp", "DISABLED");
        json_object_set_new(task, "_assignPublicIp", json_string(public_ip));
    }
    json_t *ov = overrides ? json_deep_copy(overrides) : json_object();
    if (!json_object_get(ov, "containerOverrides"))
        json_object_set_new(ov, "containerOverrides", json_array());
    json_object_set_new(ov, "inferenceAcceleratorOverrides", json_array());
    json_object_set_new(task, "overrides", ov);
    json_t *list = json_array();
    json_array_foreach((json_t *)containers, i, c)
    {
        char cid[37];
        barge_id_uuid(cid);
        _cleanup_free_ char *carn = ecs_arn(srv, "container/%s/%s/%s", cname, id, cid);
        _cleanup_free_ char *ccpu = barge_xasprintf("%lld", (long long)barge_json_int(c, "cpu", 0));
        json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:s, s:s}", "containerArn", carn,
                                  "taskArn", arn, "name", barge_json_str(c, "name", ""), "image",
                                  barge_json_str(c, "image", ""), "lastStatus", "PENDING",
                                  "networkInterfaces", "healthStatus", "UNKNOWN", "cpu", ccpu);
        if (json_object_get(c, "memory")) {
            _cleanup_free_ char *m =
                barge_xasprintf("%lld", (long long)barge_json_int(c, "memory", 0));
            json_object_set_new(entry, "memory", json_string(m));
        }
        if (json_object_get(c, "memoryReservation")) {
            _cleanup_free_ char *m =
                barge_xasprintf("%lld", (long long)barge_json_int(c, "memoryReservation", 0));
            json_object_set_new(entry, "memoryReservation", json_string(m));
        }
        json_array_append_new(list, entry);
    }
    json_object_set_new(task, "containers", list);

    _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, id);
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", barge_json_str(instance, "_id", ""), id);
    json_t *ports = json_array();
    for (size_t p = 0; p < req->n_ports; p++)
        json_array_append_new(ports, json_integer(req->ports[p]));
    _cleanup_json_ json_t *idx = json_pack(
        "{s:s, s:s, s:{s:I, s:I, s:o}, s:b, s:s, s:b}", "cluster", cname, "task", id, "reserved",
        "cpu", (json_int_t)req->cpu, "memory", (json_int_t)req->memory, "ports", ports, "running",
        false, "group", barge_json_str(in, "group", dflt_group), "spot",
        barge_streq(provider, "FARGATE_SPOT"));
    json_t *tags = barge_json_array(in, "tags");
    if (barge_store_put(tx, ECS_KIND_TASK, key, task, err) < 0 ||
        barge_store_put(tx, ECS_KIND_ITASK, ikey, idx, err) < 0 ||
        (tags && ecs_tags_add(tx, arn, tags, err) < 0)) {
        json_decref(task);
        return -1;
    }
    *out = task;
    return 0;
}

/* Fargate's rules for a task about to be placed on the pool. */
int ecs_fargate_check(const json_t *td, const json_t *params, struct barge_error **err)
{
    bool compatible = false;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "compatibilities"), i, c)
    {
        if (barge_streq(json_string_value(c), "FARGATE"))
            compatible = true;
    }
    if (!compatible)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "Task definition does not support launch_type FARGATE: "
                                    "register it with requiresCompatibilities [\"FARGATE\"].");
    json_t *vpc =
        barge_json_object(barge_json_object(params, "networkConfiguration"), "awsvpcConfiguration");
    if (!json_array_size(barge_json_array(vpc, "subnets")))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Network Configuration must be provided when networkMode "
                                    "'awsvpc' is specified (awsvpcConfiguration with subnets).");
    const char *pv = barge_json_str(params, "platformVersion", "LATEST");
    if (strcmp(pv, "LATEST") != 0 && strcmp(pv, "1.4.0") != 0 && strcmp(pv, "1.3.0") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "PlatformUnknownException",
                                    "The specified platform version '%s' does not exist: use "
                                    "LATEST, 1.4.0 or 1.3.0.",
                                    pv);
    return 0;
}

json_t *ecs_task_launch_params(const json_t *cluster, const json_t *td, const json_t *in,
                               json_t *counts, struct barge_error **err)
{
    json_t *params = json_deep_copy(in);
    const char *lt = barge_json_str(in, "launchType", NULL);
    json_t *strategy = barge_json_array(in, "capacityProviderStrategy");
    if (!lt && !json_array_size(strategy))
        strategy = barge_json_array(cluster, "defaultCapacityProviderStrategy");
    const char *provider = NULL;
    if (!lt && json_array_size(strategy))
        provider = ecs_capacity_pick(strategy, counts);
    bool pool = barge_streq(lt, "FARGATE") || ecs_capacity_is_fargate(provider);
    if (provider)
        json_object_set_new(params, "_provider", json_string(provider));
    json_object_set_new(params, "_pool", json_boolean(pool));
    if (pool && ecs_fargate_check(td, in, err) < 0) {
        json_decref(params);
        return NULL;
    }
    if (provider && !pool) {
        json_t *cons = barge_json_array(params, "placementConstraints");
        if (!cons)
            json_object_set_new(params, "placementConstraints", cons = json_array());
        _cleanup_free_ char *expr =
            barge_xasprintf("attribute:barge.capacity-provider == %s", provider);
        json_array_append_new(cons,
                              json_pack("{s:s, s:s}", "type", "memberOf", "expression", expr));
    }
    return params;
}

/* The task group a RunTask or StartTask input in names, by default
 * "family:<the task definition's family>"; caller frees. */
static char *task_group(const json_t *td, const json_t *in)
{
    const char *group = barge_json_str(in, "group", NULL);
    return group ? barge_xstrdup(group)
                 : barge_xasprintf("family:%s", barge_json_str(td, "family", ""));
}

int ecs_task_place(struct ecs_placement *pl, struct barge_server *srv, const json_t *cluster,
                   const json_t *td, const json_t *params, json_int_t count, json_t *placed,
                   json_t *failures, char **closest, struct barge_error **err)
{
    _cleanup_json_ json_t *containers = apply_overrides(td, barge_json_object(params, "overrides"));
    struct barge_sched_request req;
    task_request(td, containers, barge_json_object(params, "overrides"), &req);
    _cleanup_free_ char *group = task_group(td, params);
    struct barge_sched_policy policy;
    if (placement_policy(td, params, group, &policy, err) < 0)
        return -1;
    req.group = group;
    req.policy = &policy;
    bool pool = barge_json_bool(params, "_pool", false);
    struct candidates *cand = placement_candidates(pl, cluster, pool, err);
    int ret = 0;
    if (!cand) {
        ret = -1;
    } else if (cand->n == 0 && pool) {
        ret = barge_error_set_type(
            err, BARGE_ERR_INVALID, "InvalidParameterException",
            "No Fargate capacity is available in '%s': enrol a host with 'barge-agent "
            "--capacity fargate --region %s' (barged --dev runs one for each region that holds "
            "something, a few seconds after its first resource).",
            barge_server_region(srv), barge_server_region(srv));
    } else if (cand->n == 0) {
        ret = barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                   "No Container Instances were found in your cluster.");
    }
    /* The service scheduler places DAEMON tasks on a given instance. */
    const char *target = barge_json_str(params, "_targetInstance", NULL);
    for (json_int_t k = 0; ret == 0 && k < count; k++) {
        uint64_t rnd;
        barge_random_bytes(&rnd, sizeof(rnd));
        struct barge_sched_failure why;
        ssize_t pick;
        if (target) {
            pick = barge_sched_snapshot_find(cand->snap, target);
            why.closest = pick;
            why.reason = pick < 0 ? BARGE_SCHED_NOT_ELIGIBLE
                                  : barge_sched_check(cand->snap, (size_t)pick, &req);
            if (why.reason == BARGE_SCHED_FITS)
                barge_sched_commit(cand->snap, (size_t)pick, &req);
            else
                pick = -1;
        } else {
            pick = barge_sched_place(cand->snap, &req, rnd, &why);
        }
        if (pick < 0 && pool &&
            !barge_streq(barge_json_str(params, "_provider", NULL), "FARGATE_SPOT") &&
            make_room(cand, &req, &pick, err) < 0) {
            ret = -1;
            break;
        }
        atomic_fetch_add(pick >= 0 ? &decisions_placed : &decisions_unplaceable, 1);
        if (pick < 0) {
            for (size_t i = 0; i < cand->n; i++) {
                if (target && (ssize_t)i != why.closest)
                    continue;
                enum barge_sched_verdict v = barge_sched_check(cand->snap, i, &req);
                json_array_append_new(
                    failures, json_pack("{s:s, s:s}", "arn",
                                        barge_json_str(cand->docs[i], "containerInstanceArn", ""),
                                        "reason", barge_sched_verdict_reason(v)));
            }
            if (closest)
                *closest = barge_xstrdup(barge_sched_verdict_reason(why.reason));
            break;
        }
        json_t *task;
        if (create_task(srv, pl->tx, params, cluster, td, cand->docs[pick], &req, containers, &task,
                        err) < 0) {
            ret = -1;
            break;
        }
        json_array_append_new(placed, task);
    }
    barge_sched_policy_release(&policy);
    return ret;
}

int ecs_task_place_one(struct ecs_placement *pl, struct barge_server *srv, const json_t *cluster,
                       const json_t *td, const json_t *params, json_t **task, char **reason,
                       struct barge_error **err)
{
    *task = NULL;
    *reason = NULL;
    _cleanup_json_ json_t *placed = json_array(), *failures = json_array();
    _cleanup_json_ json_t *counts = json_deep_copy(barge_json_object(params, "_providerCounts"));
    if (!counts)
        counts = json_object();
    _cleanup_json_ json_t *lp = ecs_task_launch_params(cluster, td, params, counts, err);
    if (!lp || ecs_task_place(pl, srv, cluster, td, lp, 1, placed, failures, reason, err) < 0)
        return -1;
    if (json_array_size(placed) == 1) {
        free(*reason);
        *reason = NULL;
        *task = json_incref(json_array_get(placed, 0));
        return 1;
    }
    if (!*reason)
        *reason = barge_xstrdup("AGENT");
    return 0;
}

int ecs_task_start(struct barge_server *srv, struct barge_tx *tx, const json_t *cluster,
                   const json_t *td, const json_t *in, json_t *placed, json_t *failures,
                   struct barge_error **err)
{
    json_t *targets = barge_json_array(in, "containerInstances");
    _cleanup_json_ json_t *containers = apply_overrides(td, barge_json_object(in, "overrides"));
    struct barge_sched_request req;
    task_request(td, containers, barge_json_object(in, "overrides"), &req);
    /* StartTask places where it is told, but still not where the task cannot
     * fit or where its task definition's memberOf constraints do not hold. */
    _cleanup_free_ char *group = task_group(td, in);
    struct barge_sched_policy policy;
    if (placement_policy(td, NULL, group, &policy, err) < 0)
        return -1;
    req.group = group;
    req.policy = &policy;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    struct candidates cand = {.snap = barge_sched_snapshot_new(), .tx = tx, .cluster = cname};
    int ret = 0;
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *ident = json_string_value(t);
        _cleanup_free_ char *id = ecs_resource_id(srv, ident, "container-instance", err);
        if (!id) {
            ret = -1;
            break;
        }
        _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, id);
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_get(tx, ECS_KIND_INSTANCE, key, &doc, err) < 0) {
            ret = -1;
            break;
        }
        if (!doc || strcmp(barge_json_str(doc, "status", ""), "INACTIVE") == 0) {
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn", ident, "reason", "MISSING"));
            continue;
        }
        ssize_t at = barge_sched_snapshot_find(cand.snap, id);
        if (at < 0) {
            if (add_instance(&cand, doc, err) < 0) {
                ret = -1;
                break;
            }
            at = (ssize_t)cand.n - 1;
        }
        enum barge_sched_verdict v = barge_sched_check(cand.snap, (size_t)at, &req);
        if (v != BARGE_SCHED_FITS) {
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn",
                                            barge_json_str(doc, "containerInstanceArn", ""),
                                            "reason", barge_sched_verdict_reason(v)));
            continue;
        }
        barge_sched_commit(cand.snap, (size_t)at, &req);
        json_t *task;
        if (create_task(srv, tx, in, cluster, td, doc, &req, containers, &task, err) < 0) {
            ret = -1;
            break;
        }
        json_array_append_new(placed, task);
    }
    candidates_release(&cand);
    barge_sched_policy_release(&policy);
    return ret;
}
