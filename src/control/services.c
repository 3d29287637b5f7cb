/* The service scheduler. For each ACTIVE or DRAINING service it reads the
 * service's tasks (the "stask" index), counts failures of the primary
 * deployment for the circuit breaker, replaces unhealthy tasks, asks the pure
 * planner (sched/deploy) what to start and stop within the deployment's
 * bounds, places new tasks as RunTask does, and keeps the deployments,
 * counts, rollout states and events of the service document up to date.
 * Each service is handled in one write transaction, so an UpdateService
 * racing with the scheduler is never lost. */
#include <arpa/inet.h>

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "control/control.h"
#include "ecs/bluegreen.h"
#include "ecs/ecs.h"
#include "sched/deploy.h"
#include "svc/cloudmap.h"
#include "svc/cloudwatch.h"
#include "svc/elbv2.h"

static struct barge_control_config config = {60, 30, 15};

/* Everything one pass over a service needs. */
struct pass {
    struct barge_server *srv;
    struct barge_tx *tx;
    json_t *svc;
    json_t *cluster;
    const char *cname;
    const char *sname;
    json_t *tasks;     /* active tasks: [{key, doc, dep, skey}] */
    json_t *tds;       /* task definition docs by ARN */
    json_t *insts;     /* instance docs by id */
    json_t *tgs;       /* target group docs by ARN (null: gone) */
    json_t *tgs_dirty; /* [ARN] of the ones changed */
    json_t *lb_states; /* {target group ARN: {server: TargetHealth state}} */
    int draining;      /* tasks deregistering before they stop */
    bool changed;      /* something worth waking agents for */
    double now;
};

static json_t *td_for(struct pass *p, const char *arn, struct barge_error **err)
{
    json_t *td = json_object_get(p->tds, arn);
    if (td)
        return td;
    _cleanup_free_ char *key = NULL;
    if (ecs_taskdef_find(p->tx, p->srv, arn, &td, &key, err) < 0)
        return NULL;
    if (!td)
        td = json_null();
    json_object_set_new(p->tds, arn, td);
    return td;
}

static json_t *instance_for(struct pass *p, const char *id, struct barge_error **err)
{
    json_t *doc = json_object_get(p->insts, id);
    if (doc)
        return doc;
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", p->cname, id);
    if (barge_store_get(p->tx, ECS_KIND_INSTANCE, key, &doc, err) < 0)
        return NULL;
    if (!doc)
        doc = json_null();
    json_object_set_new(p->insts, id, doc);
    return doc;
}

static bool has_health_checks(const json_t *td)
{
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        if (barge_json_bool(c, "essential", true) && barge_json_object(c, "healthCheck"))
            return true;
    }
    return false;
}

static int deployment_index(const json_t *svc, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(barge_json_array(svc, "deployments"), i, d)
    {
        if (barge_streq(barge_json_str(d, "id", NULL), id))
            return (int)i;
    }
    return -1;
}

static json_t *primary(const json_t *svc)
{
    return json_array_get(barge_json_array(svc, "deployments"), 0);
}

static bool in_progress(const json_t *dep)
{
    return barge_streq(barge_json_str(dep, "rolloutState", NULL), "IN_PROGRESS");
}

/* A primary-deployment task that stopped by itself counts against the
 * circuit breaker until some task of the deployment has proven stable. */
static void count_failure(struct pass *p, const json_t *task)
{
    json_t *dep = primary(p->svc);
    if (!dep ||
        !barge_streq(barge_json_str(task, "startedBy", NULL), barge_json_str(dep, "id", "")))
        return;
    if (!in_progress(dep) || barge_json_bool(dep, "_proven", false))
        return;
    json_object_set_new(dep, "failedTasks",
                        json_integer(barge_json_int(dep, "failedTasks", 0) + 1));
    json_object_set_new(p->svc, "_consecutiveFailures",
                        json_integer(barge_json_int(p->svc, "_consecutiveFailures", 0) + 1));
}

static bool stopped_by_itself(const json_t *task)
{
    const char *code = barge_json_str(task, "stopCode", "");
    return strcmp(code, "EssentialContainerExited") == 0 ||
           strcmp(code, "TaskFailedToStart") == 0 ||
           (strcmp(code, "ServiceSchedulerInitiated") == 0 &&
            strstr(barge_json_str(task, "stoppedReason", ""), "health checks"));
}

/* ---- load balancers (the service's loadBalancers) ---- */

/* The target group with arn as this pass sees it (borrowed; NULL when it is
 * gone). Changes are written back by save_target_groups. */
static json_t *tg_for(struct pass *p, const char *arn, struct barge_error **err)
{
    json_t *tg = json_object_get(p->tgs, arn);
    if (tg)
        return json_is_null(tg) ? NULL : tg;
    bool in_use = false;
    _cleanup_error_ struct barge_error *e = NULL;
    tg = barge_elb_tg_find(p->tx, arn, &in_use, &e);
    if (!tg && e->code != BARGE_ERR_NOT_FOUND && e->code != BARGE_ERR_INVALID) {
        *err = barge_steal(&e);
        return NULL;
    }
    json_object_set_new(p->tgs, arn, tg ? tg : json_null());
    return tg;
}

static int save_target_groups(struct pass *p, struct barge_error **err)
{
    size_t i;
    json_t *arn;
    json_array_foreach(p->tgs_dirty, i, arn)
    {
        json_t *tg = json_object_get(p->tgs, json_string_value(arn));
        if (json_is_object(tg) &&
            barge_store_put(p->tx, ELB_KIND_TG, barge_json_str(tg, "TargetGroupName", ""), tg,
                            err) < 0)
            return -1;
    }
    return 0;
}

static json_t *tg_target(json_t *tg, const char *id, json_int_t port)
{
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(tg, "_targets"), i, t)
    {
        if (barge_streq(barge_json_str(t, "Id", ""), id) && barge_json_int(t, "Port", 0) == port)
            return t;
    }
    return NULL;
}

static void mark_dirty(struct pass *p, const char *arn)
{
    size_t i;
    json_t *v;
    json_array_foreach(p->tgs_dirty, i, v)
    {
        if (barge_streq(json_string_value(v), arn))
            return;
    }
    json_array_append_new(p->tgs_dirty, json_string(arn));
}

/* The TargetHealth state of a target ("" when it cannot be read; "unused"
 * when its group is gone). */
static const char *target_state(struct pass *p, const char *arn, const char *id, json_int_t port)
{
    json_t *states = json_object_get(p->lb_states, arn);
    if (!states) {
        _cleanup_error_ struct barge_error *err = NULL;
        json_t *tg = tg_for(p, arn, &err);
        if (!tg && !err)
            return "unused";
        states = tg ? barge_elb_target_states(p->srv, p->tx, tg, &err) : NULL;
        if (!states) {
            barge_warn("service %s: target health in '%s': %s", p->sname, arn, err->message);
            return "";
        }
        json_object_set_new(p->lb_states, arn, states);
    }
    _cleanup_free_ char *sname = barge_elb_server_name(id, port);
    return barge_json_str(states, sname, "");
}

/* Where the load balancer reaches containerPort port of the task's
 * container cname: the host port that maps it, on the address barged sees
 * the task's host at (HAProxy runs on barged's host) or, for an instance
 * target group, as the container instance's EC2 id; or the task's own
 * address in awsvpc mode. *addr is the caller's. */
static bool task_address(struct pass *p, const json_t *task, const char *cname, json_int_t port,
                         bool instance, char **addr, json_int_t *host_port)
{
    _cleanup_error_ struct barge_error *err = NULL;
    json_t *inst = instance_for(p, barge_json_str(task, "_instanceId", ""), &err);
    size_t i, j;
    json_t *c, *b;
    json_array_foreach(barge_json_array(task, "containers"), i, c)
    {
        if (!barge_streq(barge_json_str(c, "name", NULL), cname))
            continue;
        json_array_foreach(barge_json_array(c, "networkBindings"), j, b)
        {
            if (barge_json_int(b, "containerPort", -1) != port ||
                barge_json_int(b, "hostPort", 0) <= 0)
                continue;
            const char *ip = barge_json_str(b, "bindIP", "");
            const char *host = barge_json_str(inst, "_address", "127.0.0.1");
            struct in_addr a;
            if (inet_pton(AF_INET, host, &a) != 1)
                host = "127.0.0.1";
            bool any = !*ip || !strcmp(ip, "0.0.0.0") || inet_pton(AF_INET, ip, &a) != 1;
            if (instance && !barge_json_str(inst, "ec2InstanceId", NULL))
                return false;
            *addr = barge_xstrdup(instance ? barge_json_str(inst, "ec2InstanceId", "")
                                  : any    ? host
                                           : ip);
            *host_port = barge_json_int(b, "hostPort", 0);
            return true;
        }
    }
    if (instance)
        return false;
    json_array_foreach(barge_json_array(task, "attachments"), i, c)
    {
        json_array_foreach(barge_json_array(c, "details"), j, b)
        {
            if (barge_streq(barge_json_str(b, "name", NULL), "privateIPv4Address") &&
                *barge_json_str(b, "value", "")) {
                *addr = barge_xstrdup(barge_json_str(b, "value", ""));
                *host_port = port;
                return true;
            }
        }
    }
    return false;
}

/* The task set a task of an EXTERNAL service belongs to (borrowed; NULL when
 * it has none). */
static json_t *taskset_of(struct pass *p, const json_t *task)
{
    const char *by = barge_json_str(task, "startedBy", "");
    size_t i;
    json_t *ts;
    json_array_foreach(barge_json_array(p->svc, "taskSets"), i, ts)
    {
        if (barge_streq(barge_json_str(ts, "id", NULL), by))
            return ts;
    }
    return NULL;
}

/* The loadBalancers a task is registered with: its task set's in an
 * EXTERNAL service, else the service's. */
static json_t *lbs_of(struct pass *p, const json_t *task)
{
    if (!ecs_service_external(p->svc))
        return barge_json_array(p->svc, "loadBalancers");
    return barge_json_array(taskset_of(p, task), "loadBalancers");
}

/* Registers a RUNNING task (healthy, when it has container health checks)
 * in its target groups once; "_lbTargets" remembers where. */
static int register_task(struct pass *p, json_t *task, const char *tkey, struct barge_error **err)
{
    json_t *lbs = lbs_of(p, task);
    if (!json_array_size(lbs) || json_object_get(task, "_lbTargets") ||
        !barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING"))
        return 0;
    json_t *td = td_for(p, barge_json_str(task, "taskDefinitionArn", ""), err);
    if (!td)
        return -1;
    if (has_health_checks(td) &&
        !barge_streq(barge_json_str(task, "healthStatus", NULL), "HEALTHY"))
        return 0;
    /* Blue/green: a deployment's tasks serve its side's target groups; the
     * tasks of a deployment that is gone (rolled back) register nowhere. */
    bool bg = ecs_bluegreen(p->svc);
    int di = deployment_index(p->svc, barge_json_str(task, "startedBy", ""));
    if (bg && di < 0)
        return 0;
    json_t *dep =
        json_array_get(barge_json_array(p->svc, "deployments"), (size_t)(di < 0 ? 0 : di));
    _cleanup_json_ json_t *targets = json_array();
    size_t i;
    json_t *lb;
    json_array_foreach(lbs, i, lb)
    {
        _cleanup_free_ char *addr = NULL;
        json_int_t port = 0;
        const char *tg_arn =
            bg ? ecs_bluegreen_target_group(lb, dep) : barge_json_str(lb, "targetGroupArn", "");
        json_t *tg = tg_for(p, tg_arn, err);
        if (!tg && *err)
            return -1;
        bool instance = barge_streq(barge_json_str(tg, "TargetType", NULL), "instance");
        /* Its bindings not reported yet: a later pass registers it. */
        if (!task_address(p, task, barge_json_str(lb, "containerName", ""),
                          barge_json_int(lb, "containerPort", 0), instance, &addr, &port))
            return 0;
        json_array_append_new(targets,
                              json_pack("{s:s, s:s, s:I}", "tg", tg_arn, "id", addr, "port", port));
    }
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *arn = barge_json_str(t, "tg", "");
        json_t *tg = tg_for(p, arn, err);
        if (!tg) {
            if (*err)
                return -1;
            continue; /* deleted since CreateService */
        }
        const char *id = barge_json_str(t, "id", "");
        json_int_t port = barge_json_int(t, "port", 0);
        json_t *cur = tg_target(tg, id, port);
        if (!cur) {
            json_t *list = barge_json_array(tg, "_targets");
            if (!list) {
                list = json_array();
                json_object_set_new(tg, "_targets", list);
            }
            cur = json_pack("{s:s, s:I}", "Id", id, "Port", port);
            json_array_append_new(list, cur);
        }
        json_object_set_new(cur, "State", json_string("registered"));
        json_object_set_new(cur, "Since", json_real(p->now));
        mark_dirty(p, arn);
        barge_info("service %s: task %s registered as %s:%lld in %s", p->sname,
                   barge_json_str(task, "_id", ""), id, (long long)port,
                   barge_json_str(tg, "TargetGroupName", ""));
    }
    json_object_set(task, "_lbTargets", targets);
    p->changed = true;
    return barge_store_put(p->tx, ECS_KIND_TASK, tkey, task, err);
}

/* Starts the deregistration of the task's targets that are still
 * registered; the longest deregistration delay among its target groups. */
static json_int_t deregister_task(struct pass *p, const json_t *task, struct barge_error **err)
{
    json_int_t delay = 0;
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(task, "_lbTargets"), i, t)
    {
        const char *arn = barge_json_str(t, "tg", "");
        json_t *tg = tg_for(p, arn, err);
        json_t *cur =
            tg ? tg_target(tg, barge_json_str(t, "id", ""), barge_json_int(t, "port", 0)) : NULL;
        if (!cur)
            continue;
        json_int_t d = barge_elb_deregistration_delay(tg);
        delay = d > delay ? d : delay;
        if (barge_streq(barge_json_str(cur, "State", ""), "draining"))
            continue;
        json_object_set_new(cur, "State", json_string("draining"));
        json_object_set_new(cur, "Since", json_real(p->now));
        mark_dirty(p, arn);
    }
    return delay;
}

/* Whether all of a draining task's targets have left their groups. */
static bool deregistered(struct pass *p, const json_t *task, struct barge_error **err)
{
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(task, "_lbTargets"), i, t)
    {
        json_t *tg = tg_for(p, barge_json_str(t, "tg", ""), err);
        if (tg && tg_target(tg, barge_json_str(t, "id", ""), barge_json_int(t, "port", 0)))
            return false;
    }
    return true;
}

/* Stops a service task; one registered with load balancers is first
 * deregistered, and stopped once its targets have drained or the
 * deregistration delay is over (ECS's connection draining). */
static int stop_or_drain(struct pass *p, json_t *task, const char *tkey, const char *code,
                         const char *reason, struct barge_error **err)
{
    if (!json_array_size(barge_json_array(task, "_lbTargets"))) {
        ecs_task_request_stop(task, code, reason);
    } else if (!json_object_get(task, "_drainUntil")) {
        json_int_t delay = deregister_task(p, task, err);
        if (*err)
            return -1;
        json_object_set_new(task, "_drainUntil", json_real(p->now + (double)delay));
        json_object_set_new(task, "_drainCode", json_string(code));
        json_object_set_new(task, "_drainReason", json_string(reason));
        p->draining++;
    }
    p->changed = true;
    return barge_store_put(p->tx, ECS_KIND_TASK, tkey, task, err);
}

/* A draining task: stopped when its drain is over. */
static int drain_step(struct pass *p, json_t *task, const char *tkey, struct barge_error **err)
{
    double until = json_number_value(json_object_get(task, "_drainUntil"));
    bool done = p->now >= until || deregistered(p, task, err);
    if (*err)
        return -1;
    if (!done) {
        p->draining++;
        return 0;
    }
    ecs_task_request_stop(task, barge_json_str(task, "_drainCode", "ServiceSchedulerInitiated"),
                          barge_json_str(task, "_drainReason", ""));
    p->changed = true;
    return barge_store_put(p->tx, ECS_KIND_TASK, tkey, task, err);
}

/* The target group of the task's first target that failed its load
 * balancer's health checks, or NULL. */
static const char *failed_target_group(struct pass *p, const json_t *task)
{
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(task, "_lbTargets"), i, t)
    {
        const char *arn = barge_json_str(t, "tg", "");
        if (barge_streq(
                target_state(p, arn, barge_json_str(t, "id", ""), barge_json_int(t, "port", 0)),
                "unhealthy"))
            return arn;
    }
    return NULL;
}

/* A task behind load balancers counts as healthy once it is registered and
 * every target group sees it healthy (or cannot tell: checks disabled, or no
 * load balancer uses the group any more). */
static bool targets_healthy(struct pass *p, const json_t *task)
{
    if (!json_array_size(lbs_of(p, task)))
        return true;
    json_t *targets = barge_json_array(task, "_lbTargets");
    if (!targets)
        return false;
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *s = target_state(p, barge_json_str(t, "tg", ""), barge_json_str(t, "id", ""),
                                     barge_json_int(t, "port", 0));
        if (strcmp(s, "healthy") != 0 && strcmp(s, "unavailable") != 0 && strcmp(s, "unused") != 0)
            return false;
    }
    return true;
}

/* ---- service discovery (the service's serviceRegistries) ---- */

/* The task's own address in awsvpc mode, or NULL. Borrowed from task. */
static const char *task_private_ip(const json_t *task)
{
    size_t i, j;
    json_t *a, *d;
    json_array_foreach(barge_json_array(task, "attachments"), i, a)
    {
        json_array_foreach(barge_json_array(a, "details"), j, d)
        {
            if (barge_streq(barge_json_str(d, "name", NULL), "privateIPv4Address") &&
                *barge_json_str(d, "value", ""))
                return barge_json_str(d, "value", NULL);
        }
    }
    return NULL;
}

/* The Cloud Map attributes of a task for one serviceRegistries entry, as ECS
 * registers them: an awsvpc task at its own address (and the registry's port
 * or container port), others at their host's address and the host port
 * mapping containerName:containerPort. NULL while the address is not known
 * yet. */
static json_t *registry_attributes(struct pass *p, const json_t *task, const json_t *reg)
{
    const char *cname = barge_json_str(reg, "containerName", NULL);
    json_int_t cport = barge_json_int(reg, "containerPort", 0);
    json_int_t port = barge_json_int(reg, "port", 0);
    _cleanup_free_ char *addr = NULL;
    const char *ip = task_private_ip(task);
    if (ip) {
        addr = barge_xstrdup(ip);
        if (!port)
            port = cport;
    } else if (cname && cport) {
        if (!task_address(p, task, cname, cport, false, &addr, &port))
            return NULL;
    } else {
        _cleanup_error_ struct barge_error *e = NULL;
        json_t *inst = instance_for(p, barge_json_str(task, "_instanceId", ""), &e);
        addr = barge_xstrdup(barge_json_str(inst, "_address", "127.0.0.1"));
    }
    const char *family = barge_json_str(task, "taskDefinitionArn", "");
    const char *slash = strrchr(family, '/');
    _cleanup_free_ char *fam =
        barge_xstrndup(slash ? slash + 1 : family, strcspn(slash ? slash + 1 : family, ":"));
    json_t *attrs =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "AWS_INSTANCE_IPV4", addr, "ECS_CLUSTER_NAME",
                  p->cname, "ECS_SERVICE_NAME", p->sname, "ECS_TASK_DEFINITION_FAMILY", fam,
                  "AWS_INIT_HEALTH_STATUS", "HEALTHY");
    if (port > 0) {
        _cleanup_free_ char *ps = barge_xasprintf("%lld", (long long)port);
        json_object_set_new(attrs, "AWS_INSTANCE_PORT", json_string(ps));
    }
    const char *az = barge_json_str(task, "availabilityZone", NULL);
    if (az)
        json_object_set_new(attrs, "AVAILABILITY_ZONE", json_string(az));
    return attrs;
}

/* Keeps each Cloud Map service the service's serviceRegistries (and
 * Service Connect services) name holding
 * exactly its tasks that are RUNNING (and HEALTHY, with container health
 * checks) and not on their way out (stopping or draining), by task id. */
static int sync_registries(struct pass *p, struct barge_error **err)
{
    size_t i, j;
    json_t *reg, *e;
    /* Service Connect's discovery services too (the API resolved their port
     * names): its endpoints are the tasks' container ports. */
    _cleanup_json_ json_t *regs = json_deep_copy(barge_json_array(p->svc, "serviceRegistries"));
    if (!regs)
        regs = json_array();
    json_array_foreach(barge_json_array(p->svc, "_scServices"), i, e)
    {
        json_array_append_new(
            regs, json_pack("{s:s, s:s, s:I}", "registryArn", barge_json_str(e, "discoveryArn", ""),
                            "containerName", barge_json_str(e, "containerName", ""),
                            "containerPort", barge_json_int(e, "containerPort", 0)));
    }
    /* Registries an UpdateService replaced lose the service's tasks. */
    _cleanup_json_ json_t *none = json_object();
    json_array_foreach(barge_json_array(p->svc, "_staleRegistries"), i, reg)
    {
        if (barge_cloudmap_ecs_sync(p->tx, json_string_value(reg), none, err) < 0)
            return -1;
    }
    json_object_del(p->svc, "_staleRegistries");
    json_array_foreach(regs, i, reg)
    {
        _cleanup_json_ json_t *want = json_object();
        json_array_foreach(p->tasks, j, e)
        {
            json_t *task = json_object_get(e, "doc");
            if (!barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING") ||
                barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED") ||
                json_object_get(task, "_drainUntil"))
                continue;
            json_t *td = td_for(p, barge_json_str(task, "taskDefinitionArn", ""), err);
            if (!td)
                return -1;
            if (has_health_checks(td) &&
                !barge_streq(barge_json_str(task, "healthStatus", NULL), "HEALTHY"))
                continue;
            json_t *attrs = registry_attributes(p, task, reg);
            if (attrs)
                json_object_set_new(want, barge_json_str(task, "_id", ""), attrs);
        }
        int r = barge_cloudmap_ecs_sync(p->tx, barge_json_str(reg, "registryArn", ""), want, err);
        if (r < 0)
            return -1;
        p->changed |= r > 0;
    }
    return 0;
}

struct gather {
    struct pass *p;
    json_t *entries;
};

static int collect_stask(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct gather *g = ud;
    json_array_append_new(
        g->entries, json_pack("{s:s, s:s}", "skey", key, "task", barge_json_str(doc, "task", "")));
    return 0;
}

static void task_id_list(json_t *docs, char *buf, size_t len)
{
    size_t off = 0, i;
    json_t *t;
    buf[0] = '\0';
    json_array_foreach(docs, i, t)
    {
        const char *id = barge_json_str(t, "_id", "");
        int w = snprintf(buf + off, len - off, "%s(task %s)", off ? " " : "", id);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
}

/* Reads the service's tasks: accounts the stopped ones (and forgets them),
 * stops unhealthy ones past the grace period, and collects the active ones. */
static int gather_tasks(struct pass *p, struct barge_error **err)
{
    _cleanup_json_ json_t *entries = json_array();
    struct gather g = {p, entries};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/%s/", p->cname, p->sname);
    if (barge_store_scan(p->tx, ECS_KIND_STASK, prefix, NULL, false, 0, collect_stask, &g, err) < 0)
        return -1;
    json_int_t grace = barge_json_int(p->svc, "healthCheckGracePeriodSeconds", 0);
    _cleanup_json_ json_t *unhealthy = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        _cleanup_json_ json_t *task = NULL;
        const char *tkey = barge_json_str(e, "task", "");
        if (barge_store_get(p->tx, ECS_KIND_TASK, tkey, &task, err) < 0)
            return -1;
        bool gone = !task || barge_streq(barge_json_str(task, "lastStatus", NULL), "STOPPED");
        /* A task that stopped, or is being stopped, leaves its groups. */
        if (gone || barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED")) {
            deregister_task(p, task, err);
            if (*err)
                return -1;
        }
        if (gone) {
            if (task && stopped_by_itself(task))
                count_failure(p, task);
            else if (task)
                json_object_set_new(p->svc, "_consecutiveFailures", json_integer(0));
            if (barge_store_del(p->tx, ECS_KIND_STASK, barge_json_str(e, "skey", ""), err) < 0)
                return -1;
            continue;
        }
        if (barge_streq(barge_json_str(task, "desiredStatus", NULL), "STOPPED"))
            continue;
        if (json_object_get(task, "_drainUntil")) {
            if (drain_step(p, task, tkey, err) < 0)
                return -1;
            continue;
        }
        json_t *started = json_object_get(task, "startedAt");
        bool running = barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING");
        bool past_grace = json_is_number(started) && p->now - json_number_value(started) >= grace;
        const char *failed_tg = running && past_grace ? failed_target_group(p, task) : NULL;
        if (running && past_grace &&
            (barge_streq(barge_json_str(task, "healthStatus", NULL), "UNHEALTHY") || failed_tg)) {
            _cleanup_free_ char *why =
                failed_tg ? barge_xasprintf("Task failed ELB health checks in (target-group %s)",
                                            failed_tg)
                          : barge_xstrdup("Task failed container health checks");
            if (stop_or_drain(p, task, tkey, "ServiceSchedulerInitiated", why, err) < 0)
                return -1;
            json_array_append(unhealthy, task);
            continue;
        }
        if (register_task(p, task, tkey, err) < 0)
            return -1;
        json_array_append_new(p->tasks, json_pack("{s:s, s:O, s:s}", "key", tkey, "doc", task,
                                                  "skey", barge_json_str(e, "skey", "")));
    }
    if (json_array_size(unhealthy)) {
        char ids[2048];
        task_id_list(unhealthy, ids, sizeof(ids));
        ecs_service_event(p->svc, "has stopped %zu running tasks: %s.", json_array_size(unhealthy),
                          ids);
    }
    return 0;
}

/* The end of ECS's "closest matching container-instance ..." sentence for a
 * placement failure reason. Caller frees. */
static char *placement_message(const char *reason)
{
    if (strcmp(reason, "RESOURCE:CPU") == 0)
        return barge_xstrdup("has insufficient CPU units available.");
    if (strcmp(reason, "RESOURCE:MEMORY") == 0)
        return barge_xstrdup("has insufficient memory available.");
    if (strcmp(reason, "RESOURCE:PORTS") == 0)
        return barge_xstrdup("is already using a port required by your task.");
    return barge_xasprintf("encountered error \"%s\".", reason);
}

/* Adds an event unless the same message is the newest one and recent. */
static void event_once(struct pass *p, const char *msg)
{
    json_t *last = json_array_get(barge_json_array(p->svc, "events"), 0);
    _cleanup_free_ char *full = barge_xasprintf("(service %s) %s", p->sname, msg);
    if (last && barge_streq(barge_json_str(last, "message", NULL), full) &&
        p->now - json_number_value(json_object_get(last, "createdAt")) < 300)
        return;
    ecs_service_event(p->svc, "%s", msg);
}

/* Starts count tasks of dep, a deployment of the service or one of its task
 * sets: its task definition, and its launch type, capacity providers and
 * network configuration when it has them (a task set does), else the
 * service's. */
static int start_tasks_of(struct pass *p, json_t *dep, int count, const char *target_instance,
                          json_t *started, struct barge_error **err)
{
    const char *td_arn = barge_json_str(dep, "taskDefinition", "");
    json_t *td = td_for(p, td_arn, err);
    if (!td)
        return -1;
    if (json_is_null(td)) {
        event_once(p, "was unable to place a task because its task definition is gone.");
        return 0;
    }
    /* A daemon's tasks form a group of their own (not a service's). */
    const char *own_group = barge_json_str(p->svc, "_group", NULL);
    _cleanup_free_ char *group =
        own_group ? barge_xstrdup(own_group) : barge_xasprintf("service:%s", p->sname);
    _cleanup_json_ json_t *params =
        json_pack("{s:s, s:s}", "startedBy", barge_json_str(dep, "id", ""), "group", group);
    if (target_instance)
        json_object_set_new(params, "_targetInstance", json_string(target_instance));
    const char *placement[] = {"placementStrategy",        "placementConstraints",
                               "capacityProviderStrategy", "networkConfiguration",
                               "platformVersion",          "launchType",
                               "enableExecuteCommand"};
    bool own = json_object_get(dep, "taskSetArn") != NULL;
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(placement); i++) {
        json_t *v = json_object_get(own && i >= 2 ? dep : p->svc, placement[i]);
        if (v && !(json_is_array(v) && json_array_size(v) == 0))
            json_object_set(params, placement[i], v);
    }
    /* Tasks per capacity provider so far, for the strategy's base and weight. */
    json_t *counts = json_object();
    size_t ti;
    json_t *te;
    json_array_foreach(p->tasks, ti, te)
    {
        const char *cp = barge_json_str(json_object_get(te, "doc"), "capacityProviderName", NULL);
        if (cp && !barge_json_bool(te, "stopped", false))
            json_object_set_new(counts, cp, json_integer(barge_json_int(counts, cp, 0) + 1));
    }
    json_object_set_new(params, "_providerCounts", counts);
    struct ecs_placement *pl = ecs_placement_new(p->tx);
    int ret = 0;
    for (int k = 0; k < count; k++) {
        json_t *task = NULL;
        _cleanup_free_ char *reason = NULL;
        struct barge_error *e = NULL;
        int r = ecs_task_place_one(pl, p->srv, p->cluster, td, params, &task, &reason, &e);
        if (r < 0 && e->code != BARGE_ERR_INVALID) {
            *err = e;
            ret = -1;
            break;
        }
        if (r <= 0) {
            _cleanup_free_ char *tail = e ? NULL : placement_message(reason);
            _cleanup_free_ char *msg =
                e ? barge_xstrdup("was unable to place a task because no container instance is "
                                  "registered in the cluster.")
                  : barge_xasprintf("was unable to place a task because no container instance "
                                    "met all of its requirements. The closest matching "
                                    "container-instance %s",
                                    tail);
            barge_error_free(e);
            event_once(p, msg);
            break;
        }
        const char *id = barge_json_str(task, "_id", "");
        _cleanup_free_ char *skey = barge_xasprintf("%s/%s/%s", p->cname, p->sname, id);
        _cleanup_free_ char *tkey = barge_xasprintf("%s/%s", p->cname, id);
        _cleanup_json_ json_t *idx =
            json_pack("{s:s, s:s}", "task", tkey, "deployment", barge_json_str(dep, "id", ""));
        if (barge_store_put(p->tx, ECS_KIND_STASK, skey, idx, err) < 0) {
            json_decref(task);
            ret = -1;
            break;
        }
        const char *cp = barge_json_str(task, "capacityProviderName", NULL);
        if (cp)
            json_object_set_new(counts, cp, json_integer(barge_json_int(counts, cp, 0) + 1));
        json_array_append_new(started, task);
        p->changed = true;
    }
    ecs_placement_free(pl);
    return ret;
}

static int start_tasks(struct pass *p, int count, const char *target_instance, json_t *started,
                       struct barge_error **err)
{
    return start_tasks_of(p, primary(p->svc), count, target_instance, started, err);
}

static int stop_task_at(struct pass *p, json_t *entry, const char *reason, json_t *stopped,
                        struct barge_error **err)
{
    json_t *task = json_object_get(entry, "doc");
    if (stop_or_drain(p, task, barge_json_str(entry, "key", ""), "ServiceSchedulerInitiated",
                      reason, err) < 0)
        return -1;
    json_array_append(stopped, task);
    return 0;
}

static void report_started_stopped(struct pass *p, json_t *started, json_t *stopped)
{
    char ids[2048];
    if (json_array_size(stopped)) {
        task_id_list(stopped, ids, sizeof(ids));
        ecs_service_event(p->svc, "has stopped %zu running tasks: %s.", json_array_size(stopped),
                          ids);
    }
    if (json_array_size(started)) {
        task_id_list(started, ids, sizeof(ids));
        ecs_service_event(p->svc, "has started %zu tasks: %s.", json_array_size(started), ids);
    }
}

static bool task_healthy(struct pass *p, const json_t *task, struct barge_error **err)
{
    if (!barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING"))
        return false;
    json_t *td = td_for(p, barge_json_str(task, "taskDefinitionArn", ""), err);
    if (td && has_health_checks(td) &&
        !barge_streq(barge_json_str(task, "healthStatus", NULL), "HEALTHY"))
        return false;
    return targets_healthy(p, task);
}

static bool instance_draining(struct pass *p, const json_t *task, struct barge_error **err)
{
    json_t *inst = instance_for(p, barge_json_str(task, "_instanceId", ""), err);
    return inst && !json_is_null(inst) &&
           !barge_streq(barge_json_str(inst, "status", NULL), "ACTIVE");
}

/* ---- blue/green (deploymentConfiguration.strategy BLUE_GREEN) ---- */

/* Points each load balancer's listener rule (production or test, by field)
 * at the target group of side alt. */
static int point_rules(struct pass *p, const char *field, bool alt, struct barge_error **err)
{
    _cleanup_json_ json_t *side = json_pack("{s:b}", "_alt", alt);
    size_t i;
    json_t *lb;
    json_array_foreach(barge_json_array(p->svc, "loadBalancers"), i, lb)
    {
        const char *rule =
            barge_json_str(barge_json_object(lb, "advancedConfiguration"), field, NULL);
        if (!rule)
            continue;
        const char *tg = ecs_bluegreen_target_group(lb, side);
        int r = barge_elb_rule_forward(p->tx, rule, tg, err);
        if (r < 0) {
            /* A rule deleted under the service: say so, keep scheduling. */
            if ((*err)->code != BARGE_ERR_NOT_FOUND && (*err)->code != BARGE_ERR_INVALID)
                return -1;
            _cleanup_free_ char *msg = barge_xasprintf(
                "was unable to shift traffic: listener rule %s: %s.", rule, (*err)->message);
            barge_error_free(barge_steal(err));
            event_once(p, msg);
            continue;
        }
        if (r > 0) {
            barge_info("service %s: %s %s now forwards to %s", p->sname, field, rule, tg);
            p->changed = true;
        }
    }
    return 0;
}

/* Whether a load balancer has checked the task's targets: green goes into
 * production only when its health is known, not merely "unused". */
static bool targets_checked(struct pass *p, const json_t *task)
{
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(task, "_lbTargets"), i, t)
    {
        const char *arn = barge_json_str(t, "tg", "");
        if (strcmp(target_state(p, arn, barge_json_str(t, "id", ""), barge_json_int(t, "port", 0)),
                   "unused") == 0) {
            _cleanup_free_ char *msg =
                barge_xasprintf("was unable to shift traffic: no listener forwards to target group "
                                "%s, so the health of the new tasks cannot be checked. Give the "
                                "load balancer a testListenerRule.",
                                arn);
            event_once(p, msg);
            return false;
        }
    }
    return true;
}

static void set_stage(struct pass *p, json_t *dep, const char *stage)
{
    if (barge_streq(barge_json_str(dep, "_stage", NULL), stage))
        return;
    json_object_set_new(dep, "_stage", json_string(stage));
    json_object_set_new(dep, "updatedAt", json_real(p->now));
    ecs_service_event(p->svc, "(deployment %s) entered lifecycle stage %s.",
                      barge_json_str(dep, "id", ""), stage);
}

/* Moves a blue/green deployment through its stages: green scales up beside
 * blue, the test rules forwarding to it; once every green task is healthy (as
 * a load balancer checks it) the production rules forward to green; after
 * the bake time blue may go (the planner stops it). Returns whether blue
 * must keep running, or -1. The rules are reconciled on every pass, so a
 * rollback puts production back on blue at once. */
static int bluegreen_step(struct pass *p, const struct barge_deploy_task *dt,
                          struct barge_error **err)
{
    json_t *dep = primary(p->svc);
    if (!json_object_get(dep, "_alt")) {
        bool live = barge_json_bool(p->svc, "_liveAlt", false);
        /* The first deployment serves production on its own. */
        bool alt = json_array_size(barge_json_array(p->svc, "deployments")) > 1 ? !live : live;
        json_object_set_new(dep, "_alt", json_boolean(alt));
        json_object_set_new(p->svc, "_liveAlt", json_boolean(live));
    }
    /* A service being deleted keeps nothing. */
    bool both =
        ecs_bluegreen_both(p->svc) && barge_streq(barge_json_str(p->svc, "status", NULL), "ACTIVE");
    int keep = 0;
    if (both) {
        const char *stage = barge_json_str(dep, "_stage", "SCALE_UP");
        if (strcmp(stage, "SCALE_UP") == 0) {
            json_int_t desired = barge_json_int(p->svc, "desiredCount", 0);
            json_int_t healthy = 0;
            for (size_t i = 0; i < json_array_size(p->tasks); i++)
                if (dt[i].deployment == 0 && dt[i].healthy &&
                    targets_checked(p, json_object_get(json_array_get(p->tasks, i), "doc")))
                    healthy++;
            set_stage(p, dep, "SCALE_UP");
            if (healthy >= desired) {
                set_stage(p, dep, "TEST_TRAFFIC_SHIFT");
                set_stage(p, dep, "PRODUCTION_TRAFFIC_SHIFT");
                json_object_set_new(p->svc, "_liveAlt",
                                    json_boolean(barge_json_bool(dep, "_alt", false)));
                json_object_set_new(dep, "_shiftedAt", json_real(p->now));
                set_stage(p, dep, "BAKE_TIME");
                stage = "BAKE_TIME";
            }
        }
        if (strcmp(stage, "BAKE_TIME") == 0) {
            json_int_t bake = barge_json_int(barge_json_object(p->svc, "deploymentConfiguration"),
                                             "bakeTimeInMinutes", 0);
            double since = json_number_value(json_object_get(dep, "_shiftedAt"));
            if (p->now - since >= (double)bake * 60)
                set_stage(p, dep, "CLEAN_UP");
        }
        keep = !barge_streq(barge_json_str(dep, "_stage", NULL), "CLEAN_UP");
    }
    /* Production goes to the live side; test traffic to the primary
     * deployment's from the start, which also puts green's target groups
     * under HAProxy's health checks while it scales up. */
    if (point_rules(p, "productionListenerRule", barge_json_bool(p->svc, "_liveAlt", false), err) <
            0 ||
        point_rules(p, "testListenerRule", barge_json_bool(dep, "_alt", false), err) < 0)
        return -1;
    return keep;
}

/* REPLICA services: plan with sched/deploy and apply. */
static int replica_pass(struct pass *p, bool *steady, struct barge_error **err)
{
    json_t *dep = primary(p->svc);
    json_t *dcfg = barge_json_object(p->svc, "deploymentConfiguration");
    bool draining = !barge_streq(barge_json_str(p->svc, "status", NULL), "ACTIVE");
    size_t n = json_array_size(p->tasks);
    struct barge_deploy_task *dt = barge_xcalloc(n + 1, sizeof(*dt));
    size_t i;
    json_t *e;
    json_array_foreach(p->tasks, i, e)
    {
        json_t *task = json_object_get(e, "doc");
        int idx = deployment_index(p->svc, barge_json_str(task, "startedBy", ""));
        dt[i].deployment = idx < 0 ? 1000 : idx;
        dt[i].healthy = task_healthy(p, task, err);
        dt[i].must_move = instance_draining(p, task, err);
        /* Protection holds off scale-in and deployments, not a deletion. */
        dt[i].protected = draining ? false : ecs_task_protected(task, p->now);
        json_t *started = json_object_get(task, "startedAt");
        if (idx == 0 && dt[i].healthy && json_is_number(started) &&
            p->now - json_number_value(started) >= config.task_stable_seconds &&
            !barge_json_bool(dep, "_proven", false)) {
            json_object_set_new(dep, "_proven", json_true());
            json_object_set_new(dep, "failedTasks", json_integer(0));
            json_object_set_new(p->svc, "_consecutiveFailures", json_integer(0));
        }
    }
    bool frozen = barge_streq(barge_json_str(dep, "rolloutState", NULL), "FAILED");
    /* Throttle: after failures in a row, wait longer before the next launch. */
    json_int_t fails = barge_json_int(p->svc, "_consecutiveFailures", 0);
    json_t *until = json_object_get(p->svc, "_throttleUntil");
    if (fails >= 3 && (!json_is_number(until) || json_number_value(until) < p->now)) {
        double delay = fmin(900, pow(2, (double)(fails - 3)));
        json_object_set_new(p->svc, "_throttleUntil", json_real(p->now + delay));
        if (fails == 6)
            event_once(p, "is unable to consistently start tasks successfully.");
    }
    until = json_object_get(p->svc, "_throttleUntil");
    bool throttled = json_is_number(until) && json_number_value(until) > p->now;

    int keep_old = ecs_bluegreen(p->svc) ? bluegreen_step(p, dt, err) : 0;
    if (keep_old < 0) {
        free(dt);
        return -1;
    }
    struct barge_deploy_input in = {
        .keep_old = keep_old,
        .desired = (int)barge_json_int(p->svc, "desiredCount", 0),
        .minimum_healthy_percent = (int)barge_json_int(dcfg, "minimumHealthyPercent", 100),
        .maximum_percent = (int)barge_json_int(dcfg, "maximumPercent", 200),
        .primary_frozen = frozen || throttled,
        .tasks = dt,
        .n_tasks = n,
    };
    struct barge_deploy_plan plan;
    barge_deploy_plan(&in, &plan);
    _cleanup_json_ json_t *started = json_array(), *stopped = json_array();
    _cleanup_free_ char *why = barge_xasprintf("Scaling activity initiated by (deployment %s)",
                                               barge_json_str(dep, "id", ""));
    int ret = 0;
    for (size_t k = 0; k < plan.n_stop && ret == 0; k++) {
        json_t *entry = json_array_get(p->tasks, plan.stop[k]);
        ret = stop_task_at(p, entry, why, stopped, err);
        json_object_set_new(entry, "stopped", json_true());
    }
    if (ret == 0 && plan.start > 0)
        ret = start_tasks(p, plan.start, NULL, started, err);
    if (ret == 0) {
        report_started_stopped(p, started, stopped);
        if (plan.protected_kept > 0) {
            _cleanup_free_ char *msg = barge_xasprintf(
                "was unable to scale in due to (reason: %d tasks under protection).",
                plan.protected_kept);
            event_once(p, msg);
        }
        if (plan.stuck)
            event_once(p, "was unable to stop or start tasks during a deployment because of the "
                          "service deployment configuration. Update the minimumHealthyPercent "
                          "or maximumPercent value and try again.");
        json_array_foreach(started, i, e)
        {
            json_array_append_new(p->tasks, json_pack("{s:O}", "doc", e));
        }
        *steady = plan.steady && json_array_size(started) == 0;
    }
    free(plan.stop);
    free(dt);
    return ret;
}

struct inst_list {
    json_t *docs;
};

static int collect_inst(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct inst_list *l = ud;
    json_array_append(l->docs, doc);
    return 0;
}

/* The capacity provider (host group) an instance joined, or NULL. */
static const char *instance_provider(const json_t *inst)
{
    size_t i;
    json_t *a;
    json_array_foreach(barge_json_array(inst, "attributes"), i, a)
    {
        if (barge_streq(barge_json_str(a, "name", NULL), "barge.capacity-provider"))
            return barge_json_str(a, "value", NULL);
    }
    return NULL;
}

/* Does the daemon (or DAEMON service) run on inst? A daemon runs on the
 * instances of its capacity providers ("_capacityProviders", names) only. */
static bool daemon_runs_on(struct pass *p, const json_t *inst)
{
    json_t *providers = barge_json_array(p->svc, "_capacityProviders");
    if (!providers)
        return true;
    const char *mine = instance_provider(inst);
    size_t i;
    json_t *v;
    json_array_foreach(providers, i, v)
    {
        if (barge_streq(json_string_value(v), mine))
            return true;
    }
    return false;
}

/* DAEMON services and daemons: one primary task on every ACTIVE connected
 * instance they run on. */
static int daemon_pass(struct pass *p, bool *steady, struct barge_error **err)
{
    json_t *dep = primary(p->svc);
    _cleanup_json_ json_t *insts = json_array(), *started = json_array(), *stopped = json_array();
    struct inst_list l = {insts};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", p->cname);
    if (barge_store_scan(p->tx, ECS_KIND_INSTANCE, prefix, NULL, false, 0, collect_inst, &l, err) <
        0)
        return -1;
    _cleanup_free_ char *why = barge_xasprintf("Scaling activity initiated by (deployment %s)",
                                               barge_json_str(dep, "id", ""));
    bool draining_service = !barge_streq(barge_json_str(p->svc, "status", NULL), "ACTIVE");
    int eligible = 0, healthy_primary = 0;
    size_t i, j;
    json_t *inst, *e;
    /* Tasks on instances that are no longer ACTIVE or no longer the
     * daemon's, or of old deployments. */
    json_array_foreach(p->tasks, j, e)
    {
        json_t *task = json_object_get(e, "doc");
        int idx = deployment_index(p->svc, barge_json_str(task, "startedBy", ""));
        json_t *host = instance_for(p, barge_json_str(task, "_instanceId", ""), err);
        bool elsewhere = json_is_object(host) && !daemon_runs_on(p, host);
        if (draining_service || idx != 0 || instance_draining(p, task, err) || elsewhere) {
            if (stop_task_at(p, e, why, stopped, err) < 0)
                return -1;
            json_object_set_new(e, "stopped", json_true());
        }
    }
    bool frozen = barge_streq(barge_json_str(dep, "rolloutState", NULL), "FAILED");
    json_array_foreach(insts, i, inst)
    {
        if (draining_service || !barge_streq(barge_json_str(inst, "status", NULL), "ACTIVE") ||
            !ecs_instance_connected(inst) || !daemon_runs_on(p, inst))
            continue;
        eligible++;
        const char *id = barge_json_str(inst, "_id", "");
        bool has = false;
        json_array_foreach(p->tasks, j, e)
        {
            json_t *task = json_object_get(e, "doc");
            if (barge_streq(barge_json_str(task, "_instanceId", NULL), id) &&
                !barge_json_bool(e, "stopped", false)) {
                has = true;
                if (task_healthy(p, task, err))
                    healthy_primary++;
            }
        }
        if (!has && !frozen && start_tasks(p, 1, id, started, err) < 0)
            return -1;
    }
    json_object_set_new(p->svc, "desiredCount", json_integer(eligible));
    json_object_set_new(dep, "desiredCount", json_integer(eligible));
    report_started_stopped(p, started, stopped);
    json_array_foreach(started, i, e)
    {
        json_array_append_new(p->tasks, json_pack("{s:O}", "doc", e));
    }
    *steady = json_array_size(started) == 0 && json_array_size(stopped) == 0 &&
              healthy_primary == eligible;
    return 0;
}

/* EXTERNAL services: each task set keeps its computedDesiredCount of tasks
 * (its scale of the service's desiredCount); the counts and stabilityStatus
 * of every set, and the service's totals, follow its tasks. A DRAINING set
 * (DeleteTaskSet) goes once its tasks are gone. No rolling deployments: the
 * external controller shifts scale from set to set itself. */
static int taskset_pass(struct pass *p, struct barge_error **err)
{
    json_t *sets = barge_json_array(p->svc, "taskSets");
    ecs_service_tasksets_compute(p->svc);
    _cleanup_json_ json_t *started = json_array(), *stopped = json_array();
    bool deleting = !barge_streq(barge_json_str(p->svc, "status", NULL), "ACTIVE");
    size_t i, j;
    json_t *ts, *e;
    /* Tasks of no (remaining) task set. */
    json_array_foreach(p->tasks, j, e)
    {
        if (!taskset_of(p, json_object_get(e, "doc"))) {
            if (stop_task_at(p, e, "Task set deleted", stopped, err) < 0)
                return -1;
            json_object_set_new(e, "stopped", json_true());
        }
    }
    json_int_t total_running = 0, total_pending = 0;
    json_array_foreach(sets, i, ts)
    {
        const char *id = barge_json_str(ts, "id", "");
        json_int_t desired = barge_json_int(ts, "computedDesiredCount", 0);
        _cleanup_free_ char *why =
            barge_xasprintf("Scaling activity initiated by (task set %s)", id);
        /* Count the set's tasks, then stop those on DRAINING instances
         * (replaced elsewhere) and, newest first, those above its count. */
        json_int_t have = 0, healthy = 0;
        bool moving = false;
        for (int step = 0; step < 2; step++) {
            for (j = json_array_size(p->tasks); j > 0; j--) {
                e = json_array_get(p->tasks, j - 1);
                json_t *task = json_object_get(e, "doc");
                if (barge_json_bool(e, "stopped", false) ||
                    !barge_streq(barge_json_str(task, "startedBy", NULL), id))
                    continue;
                bool must_move = instance_draining(p, task, err);
                if (step == 0) {
                    have++;
                    moving |= must_move;
                    continue;
                }
                bool protect = !deleting && ecs_task_protected(task, p->now) && !must_move;
                if ((have > desired && !protect) || must_move) {
                    if (stop_task_at(p, e, why, stopped, err) < 0)
                        return -1;
                    json_object_set_new(e, "stopped", json_true());
                    have--;
                }
            }
        }
        if (have < desired && start_tasks_of(p, ts, (int)(desired - have), NULL, started, err) < 0)
            return -1;
        json_int_t running = 0, pending = 0;
        json_array_foreach(p->tasks, j, e)
        {
            json_t *task = json_object_get(e, "doc");
            if (barge_json_bool(e, "stopped", false) ||
                !barge_streq(barge_json_str(task, "startedBy", NULL), id))
                continue;
            if (barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING"))
                running++;
            else
                pending++;
            if (task_healthy(p, task, err))
                healthy++;
        }
        json_t *e2;
        json_array_foreach(started, j, e2)
        {
            if (barge_streq(barge_json_str(e2, "startedBy", NULL), id))
                pending++;
        }
        if (running != barge_json_int(ts, "runningCount", -1) ||
            pending != barge_json_int(ts, "pendingCount", -1)) {
            json_object_set_new(ts, "runningCount", json_integer(running));
            json_object_set_new(ts, "pendingCount", json_integer(pending));
            json_object_set_new(ts, "updatedAt", json_real(p->now));
        }
        bool steady = running == desired && pending == 0 && healthy == running && !moving;
        const char *stability = steady ? "STEADY_STATE" : "STABILIZING";
        if (!barge_streq(barge_json_str(ts, "stabilityStatus", NULL), stability)) {
            json_object_set_new(ts, "stabilityStatus", json_string(stability));
            json_object_set_new(ts, "stabilityStatusAt", json_real(p->now));
        }
        total_running += running;
        total_pending += pending;
    }
    report_started_stopped(p, started, stopped);
    json_array_foreach(started, j, e)
    {
        json_array_append_new(p->tasks, json_pack("{s:O}", "doc", e));
    }
    /* A deleted set leaves once its tasks have stopped. */
    for (i = json_array_size(sets); i > 0; i--) {
        ts = json_array_get(sets, i - 1);
        if (barge_streq(barge_json_str(ts, "status", NULL), "DRAINING") &&
            barge_json_int(ts, "runningCount", 0) + barge_json_int(ts, "pendingCount", 0) == 0)
            json_array_remove(sets, i - 1);
    }
    json_object_set_new(p->svc, "runningCount", json_integer(total_running));
    json_object_set_new(p->svc, "pendingCount", json_integer(total_pending));
    return 0;
}

/* Fails the primary deployment's rollout (reason: its rolloutStateReason;
 * event: what the service event says failed; by: who rolls back; alarms:
 * the deployment alarms that went off, NULL for the circuit breaker) and, when
 * rollback is set, rolls back to the last completed deployment. Returns
 * whether another deployment now leads (a roll back, or blue again). */
static bool fail_rollout(struct pass *p, json_t *dep, const char *reason, const char *event,
                         const char *by, bool rollback, json_t *alarms)
{
    if (alarms)
        json_object_set(dep, "_alarmsTriggered", alarms);
    json_t *deps = barge_json_array(p->svc, "deployments");
    const char *id = barge_json_str(dep, "id", "");
    json_object_set_new(dep, "rolloutState", json_string("FAILED"));
    json_object_set_new(dep, "rolloutStateReason", json_string(reason));
    json_object_set_new(dep, "updatedAt", json_real(p->now));
    ecs_service_event(p->svc, "(deployment %s) deployment failed: %s.", id, event);
    p->changed = true;
    /* Blue still runs: it serves production again at once, whatever
     * rollback says (there is nothing to redeploy). */
    if (ecs_bluegreen(p->svc) && json_array_size(deps) > 1) {
        _cleanup_free_ char *why =
            barge_xasprintf("%s: production traffic returned to the blue deployment.", by);
        ecs_bluegreen_rollback(p->svc, why, true);
        return true;
    }
    const char *last = barge_json_str(p->svc, "_lastCompletedTaskDefinition", NULL);
    if (!rollback || !last || barge_streq(last, barge_json_str(dep, "taskDefinition", NULL)))
        return false;
    _cleanup_free_ char *why = barge_xasprintf(
        "%s: rolling back to the last completed deployment (task definition %s).", by, last);
    json_t *nd = ecs_deployment_new(p->svc, last, barge_json_int(p->svc, "desiredCount", 0), why);
    ecs_service_event(p->svc, "(deployment %s) rolling back to %s.", id, last);
    ecs_service_deployment_rollback(dep, nd, barge_json_str(p->svc, "_lastCompletedRevision", NULL),
                                    !alarms);
    if (alarms)
        json_object_set(nd, "_alarmsTriggered", alarms);
    ecs_service_push_deployment(p->svc, nd);
    json_object_set_new(p->svc, "_consecutiveFailures", json_integer(0));
    json_object_del(p->svc, "_throttleUntil");
    return true;
}

/* The names of the deployment alarms (deploymentConfiguration.alarms) in
 * ALARM state, comma-separated, or NULL; *bake is the longest time one of
 * them takes to go off (period x evaluation periods), how long a steady
 * rollout is watched before it completes. */
static char *alarms_in_alarm(struct pass *p, const json_t *alarms, int *bake, json_t *names)
{
    *bake = 0;
    char *firing = NULL;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(alarms, "alarmNames"), i, n)
    {
        const char *name = json_string_value(n);
        _cleanup_json_ json_t *alarm = NULL;
        _cleanup_error_ struct barge_error *err = NULL;
        if (!name || barge_store_get(p->tx, CW_KIND_ALARM, name, &alarm, &err) <= 0)
            continue;
        int t = (int)(barge_json_int(alarm, "Period", 60) *
                      barge_json_int(alarm, "EvaluationPeriods", 1));
        if (t > *bake)
            *bake = t;
        if (!barge_streq(barge_json_str(alarm, "StateValue", NULL), "ALARM"))
            continue;
        json_array_append_new(names, json_string(name));
        char *more = firing ? barge_xasprintf("%s, %s", firing, name) : barge_xstrdup(name);
        free(firing);
        firing = more;
    }
    return firing;
}

/* Updates deployment counts, drops drained deployments, completes or fails
 * the rollout and rolls back when the circuit breaker or the deployment
 * alarms say so. */
static void update_deployments(struct pass *p, bool steady)
{
    json_t *deps = barge_json_array(p->svc, "deployments");
    json_t *dep = primary(p->svc);
    size_t i, j;
    json_t *d, *e;
    json_int_t total_running = 0, total_pending = 0;
    json_array_foreach(deps, i, d)
    {
        json_int_t running = 0, pending = 0;
        json_array_foreach(p->tasks, j, e)
        {
            json_t *task = json_object_get(e, "doc");
            if (barge_json_bool(e, "stopped", false) ||
                !barge_streq(barge_json_str(task, "startedBy", NULL), barge_json_str(d, "id", "")))
                continue;
            if (barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING"))
                running++;
            else
                pending++;
        }
        if (running != barge_json_int(d, "runningCount", -1) ||
            pending != barge_json_int(d, "pendingCount", -1)) {
            json_object_set_new(d, "runningCount", json_integer(running));
            json_object_set_new(d, "pendingCount", json_integer(pending));
            json_object_set_new(d, "updatedAt", json_real(p->now));
        }
        total_running += running;
        total_pending += pending;
    }
    json_object_set_new(p->svc, "runningCount", json_integer(total_running));
    json_object_set_new(p->svc, "pendingCount", json_integer(total_pending));
    /* Old deployments whose tasks are all gone disappear, as in ECS. */
    for (i = json_array_size(deps); i > 1; i--) {
        d = json_array_get(deps, i - 1);
        if (barge_json_int(d, "runningCount", 0) + barge_json_int(d, "pendingCount", 0) == 0)
            json_array_remove(deps, i - 1);
    }
    json_t *dcfg = barge_json_object(p->svc, "deploymentConfiguration");
    json_t *cb = barge_json_object(dcfg, "deploymentCircuitBreaker");
    int threshold = barge_deploy_failure_threshold((int)barge_json_int(p->svc, "desiredCount", 0));
    if (in_progress(dep) && barge_json_bool(cb, "enable", false) &&
        barge_json_int(dep, "failedTasks", 0) >= threshold) {
        if (fail_rollout(p, dep, "ECS deployment circuit breaker: tasks failed to start.",
                         "tasks failed to start", "ECS deployment circuit breaker",
                         barge_json_bool(cb, "rollback", false), NULL))
            return;
    }
    json_t *alarms = barge_json_object(dcfg, "alarms");
    /* A roll back is not watched: its alarm may well still be going off. */
    bool watch = in_progress(dep) && barge_json_bool(alarms, "enable", false) &&
                 !barge_json_bool(dep, "_rollback", false);
    int bake = 0;
    if (watch) {
        _cleanup_json_ json_t *names = json_array();
        _cleanup_free_ char *firing = alarms_in_alarm(p, alarms, &bake, names);
        if (firing) {
            _cleanup_free_ char *reason =
                barge_xasprintf("ECS deployment alarms: alarm(s) in ALARM state: %s.", firing);
            _cleanup_free_ char *event = barge_xasprintf("alarm(s) %s in ALARM state", firing);
            _cleanup_free_ char *by = barge_xasprintf("ECS deployment alarm(s) %s", firing);
            if (fail_rollout(p, dep, reason, event, by, barge_json_bool(alarms, "rollback", false),
                             names))
                return;
        }
    }
    bool was_steady = barge_json_bool(p->svc, "_steady", false);
    steady = steady && json_array_size(deps) == 1;
    /* With deployment alarms a rolling update bakes once steady: it stays
     * IN_PROGRESS, its alarms watched, for as long as they take to go off
     * (blue/green watches them through its own bake time). */
    if (steady && watch && bake > 0 && !ecs_bluegreen(p->svc)) {
        double until = json_number_value(json_object_get(dep, "_bakeUntil"));
        if (until == 0) {
            until = p->now + bake;
            json_object_set_new(dep, "_bakeUntil", json_real(until));
            p->changed = true;
        }
        if (p->now < until)
            steady = false;
    }
    if (steady && in_progress(dep)) {
        const char *id = barge_json_str(dep, "id", "");
        _cleanup_free_ char *reason = barge_xasprintf("ECS deployment %s completed.", id);
        json_object_set_new(dep, "rolloutState", json_string("COMPLETED"));
        json_object_set_new(dep, "rolloutStateReason", json_string(reason));
        json_object_set_new(dep, "updatedAt", json_real(p->now));
        json_object_set(p->svc, "_lastCompletedTaskDefinition",
                        json_object_get(dep, "taskDefinition"));
        ecs_service_event(p->svc, "(deployment %s) deployment completed.", id);
    }
    if (steady && !was_steady)
        ecs_service_event(p->svc, "has reached a steady state.");
    json_object_set_new(p->svc, "_steady", json_boolean(steady));
}

/* One pass over the service (kind ECS_KIND_SERVICE) or daemon
 * (ECS_KIND_DAEMON, scheduled as a DAEMON service) stored under key. */
static int service_pass(struct barge_server *srv, const char *kind, const char *key, bool *changed,
                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *cluster = NULL, *tasks = json_array(), *tds = json_object(),
                          *insts = json_object(), *tgs = json_object(), *tgs_dirty = json_array(),
                          *lb_states = json_object();
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, kind, key, &svc, err) < 0)
        return -1;
    if (!svc || barge_streq(barge_json_str(svc, "status", NULL), "INACTIVE"))
        return 0;
    const char *cname = barge_json_str(svc, "_cluster", "");
    if (barge_store_get(tx, ECS_KIND_CLUSTER, cname, &cluster, err) < 0)
        return -1;
    if (!cluster)
        return 0;
    _cleanup_json_ json_t *before = json_deep_copy(svc);
    struct pass p = {.srv = srv,
                     .tx = tx,
                     .svc = svc,
                     .cluster = cluster,
                     .cname = cname,
                     .sname =
                         barge_json_str(svc, "_schedName", barge_json_str(svc, "serviceName", "")),
                     .tasks = tasks,
                     .tds = tds,
                     .insts = insts,
                     .tgs = tgs,
                     .tgs_dirty = tgs_dirty,
                     .lb_states = lb_states,
                     .now = barge_now()};
    if (gather_tasks(&p, err) < 0)
        return -1;
    bool steady = false;
    bool daemon = barge_streq(barge_json_str(svc, "schedulingStrategy", NULL), "DAEMON");
    if (ecs_service_external(svc)) {
        if (taskset_pass(&p, err) < 0)
            return -1;
    } else {
        if ((daemon ? daemon_pass(&p, &steady, err) : replica_pass(&p, &steady, err)) < 0)
            return -1;
        update_deployments(&p, steady && p.draining == 0);
    }
    if (sync_registries(&p, err) < 0 || save_target_groups(&p, err) < 0)
        return -1;
    bool is_daemon = strcmp(kind, ECS_KIND_DAEMON) == 0;
    if ((is_daemon ? ecs_daemon_sync(tx, srv, svc, err)
                   : ecs_service_deployment_sync(tx, srv, svc, err)) < 0)
        return -1;
    if (!barge_streq(barge_json_str(svc, "status", NULL), "ACTIVE") && p.draining == 0 &&
        barge_json_int(svc, "runningCount", 0) + barge_json_int(svc, "pendingCount", 0) == 0) {
        json_object_set_new(svc, "status", json_string("INACTIVE"));
        ecs_service_event(svc, "was deleted.");
    }
    if (json_equal(before, svc) && !p.changed && !json_array_size(tgs_dirty))
        return 0;
    if (barge_store_put(tx, kind, key, svc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *changed = *changed || p.changed;
    return 0;
}

struct pass_keys {
    json_t *list; /* [[kind, key]] */
    const char *kind;
};

static int collect_service_key(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct pass_keys *k = ud;
    if (!barge_streq(barge_json_str(doc, "status", NULL), "INACTIVE"))
        json_array_append_new(k->list, json_pack("[s, s]", k->kind, key));
    return 0;
}

/* Instances whose agents have been silent past the grace period lose their
 * tasks, so that services replace them elsewhere. */
static int collect_lost(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (barge_streq(barge_json_str(doc, "status", NULL), "INACTIVE") || ecs_instance_connected(doc))
        return 0;
    json_t *seen = json_object_get(doc, "_lastSeen");
    /* A new leader (after a failover or a restart of the control plane) first
     * gives agents the same time to reach it as silence would get. */
    if (!json_is_number(seen) || barge_now() - fmax(json_number_value(seen), barge_leader_since()) <
                                     ecs_agent_timeout_seconds + config.host_grace_seconds)
        return 0;
    json_array_append_new(ud, json_pack("{s:s, s:s}", "id", barge_json_str(doc, "_id", ""), "ec2",
                                        barge_json_str(doc, "ec2InstanceId", "")));
    return 0;
}

static int lost_instances_pass(struct barge_server *srv, bool *changed, struct barge_error **err)
{
    _cleanup_json_ json_t *lost = json_array();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_INSTANCE, "", NULL, false, 0, collect_lost, lost, err) < 0)
        return -1;
    size_t i;
    json_t *l;
    int n = 0;
    json_array_foreach(lost, i, l)
    {
        _cleanup_free_ char *reason =
            barge_xasprintf("Host EC2 (instance %s) lost contact: its agent stopped responding",
                            barge_json_str(l, "ec2", ""));
        int r = ecs_instance_orphan_tasks(tx, barge_json_str(l, "id", ""), reason, err);
        if (r < 0)
            return -1;
        if (r > 0)
            barge_warn("container instance %s is unreachable; its %d task(s) were stopped",
                       barge_json_str(l, "id", ""), r);
        n += r;
    }
    if (n == 0)
        return 0;
    *changed = true;
    return barge_store_commit(barge_steal(&tx), err);
}

void barge_control_step(struct barge_server *srv)
{
    _cleanup_error_ struct barge_error *err = NULL;
    bool changed = false;
    if (lost_instances_pass(srv, &changed, &err) < 0) {
        barge_warn("checking container instances: %s", err->message);
        barge_error_free(barge_steal(&err));
    }
    _cleanup_json_ json_t *keys = json_array();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    struct pass_keys svcs = {keys, ECS_KIND_SERVICE}, daemons = {keys, ECS_KIND_DAEMON};
    if (barge_store_begin(srv->store, false, &tx, &err) < 0 ||
        barge_store_scan(tx, ECS_KIND_SERVICE, "", NULL, false, 0, collect_service_key, &svcs,
                         &err) < 0 ||
        barge_store_scan(tx, ECS_KIND_DAEMON, "", NULL, false, 0, collect_service_key, &daemons,
                         &err) < 0) {
        barge_warn("listing services: %s", err->message);
        return;
    }
    barge_store_abort(barge_steal(&tx));
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (!barge_leader_active())
            break;
        const char *kind = json_string_value(json_array_get(k, 0));
        const char *key = json_string_value(json_array_get(k, 1));
        if (service_pass(srv, kind, key, &changed, &err) < 0) {
            barge_warn("scheduling %s %s: %s", kind, key, err->message);
            barge_error_free(barge_steal(&err));
        }
    }
    if (changed)
        barge_server_notify(srv);
}

static pthread_t control_thread;
static volatile bool control_running;
static struct barge_server *control_srv;

static void *control_main(void *ud)
{
    struct barge_server *srv = ud;
    uint64_t gen = barge_server_generation(srv);
    int64_t next_scale = 0;
    while (control_running) {
        if (barge_leader_active()) {
            bool scale = barge_monotonic_ms() >= next_scale;
            _cleanup_json_ json_t *regions = NULL;
            _cleanup_error_ struct barge_error *err = NULL;
            if (barge_store_regions(srv->store, &regions, &err) < 0)
                barge_warn("listing regions: %s", err->message);
            /* Each region's clusters, alarms and scalable targets in a
             * pass of their own: the store shows one region at a time. */
            size_t i;
            json_t *r;
            json_array_foreach(regions, i, r)
            {
                barge_store_use_region(json_string_value(r));
                barge_control_step(srv);
                /* Alarms keep their own time (each is due once a period); a
                 * SetAlarmState wakes the loop so that its actions run now. */
                barge_alarms_step(srv);
                if (scale)
                    barge_autoscale_step(srv);
            }
            barge_store_use_region(NULL);
            barge_lb_step(srv);
            if (scale)
                next_scale = barge_monotonic_ms() + (int64_t)config.autoscale_interval * 1000;
        } else {
            /* A barged that lost the leadership stops its load balancers:
             * the new leader starts its own, which must find their ports
             * free where both run on one host. */
            barge_lb_stop_all(srv);
        }
        gen = barge_server_wait(srv, gen, 1000);
        /* Let a burst of reports settle before the next pass. */
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int barge_control_start(struct barge_server *srv, const struct barge_control_config *cfg,
                        struct barge_error **err)
{
    config = *cfg;
    control_srv = srv;
    control_running = true;
    if (pthread_create(&control_thread, NULL, control_main, srv) != 0)
        return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "cannot start the control thread");
    return barge_stacks_start(srv, err);
}

void barge_control_stop(void)
{
    if (!control_running)
        return;
    barge_stacks_stop();
    control_running = false;
    barge_server_notify(control_srv);
    pthread_join(control_thread, NULL);
    barge_lb_stop_all(control_srv);
}
