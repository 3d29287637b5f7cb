/* Service deployment records (ecs.h): each deployment a user starts gets a
 * service revision (what the service runs) and a service deployment record
 * from the running revisions to the new one, which this file opens, keeps
 * up to date as the scheduler works (control/services.c), and rolls back.
 * The API that lists and describes them is api/ecs_deployments.c. */
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "ecs/ecs.h"
#include "sched/deploy.h"

char *ecs_time_id(void)
{
    unsigned char r[4];
    barge_random_bytes(r, sizeof(r));
    unsigned long n =
        ((unsigned long)r[0] << 24 | (unsigned long)r[1] << 16 | (unsigned long)r[2] << 8 | r[3]) %
        1000000UL;
    return barge_xasprintf("%013lld%06lu", (long long)(barge_now() * 1000), n);
}

static char *record_key(const json_t *svc, const char *id)
{
    return barge_xasprintf("%s/%s/%s", barge_json_str(svc, "_cluster", ""),
                           barge_json_str(svc, "serviceName", ""), id);
}

/* The ARN of the service revision dep deploys (in *buf, caller frees), or
 * NULL when it has none (a deployment older than the history). */
static const char *dep_revision_arn(const struct barge_server *srv, const json_t *svc,
                                    const json_t *dep, char **buf)
{
    const char *rev = barge_json_str(dep, "_revision", NULL);
    if (!rev)
        return NULL;
    *buf = ecs_arn(srv, "service-revision/%s/%s/%s", barge_json_str(svc, "_cluster", ""),
                   barge_json_str(svc, "serviceName", ""), rev);
    return *buf;
}

static json_t *revision_summary(const struct barge_server *srv, const json_t *svc,
                                const json_t *dep, json_int_t requested)
{
    _cleanup_free_ char *arn = NULL;
    if (!dep_revision_arn(srv, svc, dep, &arn))
        return NULL;
    return json_pack("{s:s, s:I, s:I, s:I}", "arn", arn, "requestedTaskCount", requested,
                     "runningTaskCount", barge_json_int(dep, "runningCount", 0), "pendingTaskCount",
                     barge_json_int(dep, "pendingCount", 0));
}

/* Stores the service revision of dep: the service's settings as the
 * deployment starts them. */
static int store_revision(struct barge_tx *tx, const struct barge_server *srv, const json_t *svc,
                          json_t *dep, struct barge_error **err)
{
    _cleanup_free_ char *id = ecs_time_id();
    _cleanup_free_ char *key = record_key(svc, id);
    _cleanup_free_ char *arn =
        ecs_arn(srv, "service-revision/%s/%s/%s", barge_json_str(svc, "_cluster", ""),
                barge_json_str(svc, "serviceName", ""), id);
    const char *td_arn = barge_json_str(dep, "taskDefinition", "");
    _cleanup_json_ json_t *rev = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:b}", "serviceRevisionArn", arn, "serviceArn",
        barge_json_str(svc, "serviceArn", ""), "clusterArn", barge_json_str(svc, "clusterArn", ""),
        "taskDefinition", td_arn, "createdAt", barge_now(), "guardDutyEnabled", 0);
    const char *copy[] = {
        "launchType",    "capacityProviderStrategy", "platformVersion",     "platformFamily",
        "loadBalancers", "serviceRegistries",        "networkConfiguration"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(svc, copy[i]);
        if (v)
            json_object_set(rev, copy[i], v);
    }
    json_t *sc = json_object_get(svc, "_serviceConnect");
    if (sc)
        json_object_set(rev, "serviceConnectConfiguration", sc);
    _cleanup_json_ json_t *td = NULL;
    _cleanup_free_ char *tdkey = NULL;
    if (ecs_taskdef_find(tx, srv, td_arn, &td, &tdkey, err) < 0)
        return -1;
    json_t *images = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        json_array_append_new(images, json_pack("{s:s, s:s}", "containerName",
                                                barge_json_str(c, "name", ""), "image",
                                                barge_json_str(c, "image", "")));
    }
    json_object_set_new(rev, "containerImages", images);
    if (barge_store_put(tx, ECS_KIND_SREVISION, key, rev, err) < 0)
        return -1;
    json_object_set_new(dep, "_revision", json_string(id));
    return 0;
}

bool ecs_service_deployment_finished(const json_t *rec)
{
    const char *st = barge_json_str(rec, "status", "");
    return strcmp(st, "PENDING") != 0 && strcmp(st, "IN_PROGRESS") != 0 &&
           strcmp(st, "ROLLBACK_REQUESTED") != 0 && strcmp(st, "ROLLBACK_IN_PROGRESS") != 0 &&
           strcmp(st, "STOP_REQUESTED") != 0;
}

static json_t *circuit_breaker(const json_t *svc, const json_t *dep, bool triggered)
{
    json_t *cb = barge_json_object(barge_json_object(svc, "deploymentConfiguration"),
                                   "deploymentCircuitBreaker");
    int threshold = barge_deploy_failure_threshold((int)barge_json_int(svc, "desiredCount", 0));
    const char *status = !barge_json_bool(cb, "enable", false) ? "DISABLED"
                         : triggered                           ? "TRIGGERED"
                         : barge_streq(barge_json_str(dep, "rolloutState", NULL), "IN_PROGRESS")
                             ? "MONITORING"
                             : "MONITORING_COMPLETE";
    return json_pack("{s:s, s:I, s:i}", "status", status, "failureCount",
                     barge_json_int(dep, "failedTasks", 0), "threshold", threshold);
}

/* The record's "alarms": the deployment alarms of svc's configuration and
 * which of them failed dep (its "_alarmsTriggered", set by the scheduler). */
static json_t *deployment_alarms(const json_t *svc, const json_t *dep)
{
    json_t *cfg = barge_json_object(barge_json_object(svc, "deploymentConfiguration"), "alarms");
    json_t *triggered = json_object_get(dep, "_alarmsTriggered");
    const char *status = triggered                                ? "TRIGGERED"
                         : !barge_json_bool(cfg, "enable", false) ? "DISABLED"
                         : barge_streq(barge_json_str(dep, "rolloutState", NULL), "IN_PROGRESS")
                             ? "MONITORING"
                             : "MONITORING_COMPLETE";
    json_t *out = json_pack("{s:s}", "status", status);
    json_t *names = json_object_get(cfg, "alarmNames");
    if (json_array_size(names))
        json_object_set(out, "alarmNames", names);
    if (triggered)
        json_object_set(out, "triggeredAlarmNames", triggered);
    return out;
}

/* Ends the record id of svc (a deployment that a newer one replaced) as
 * STOPPED unless it has already finished. */
static int supersede(struct barge_tx *tx, const json_t *svc, const char *id, const char *by,
                     struct barge_error **err)
{
    _cleanup_free_ char *key = record_key(svc, id);
    _cleanup_json_ json_t *rec = NULL;
    if (barge_store_get(tx, ECS_KIND_SDEPLOY, key, &rec, err) < 0)
        return -1;
    if (!rec || ecs_service_deployment_finished(rec))
        return 0;
    double now = barge_now();
    _cleanup_free_ char *why = barge_xasprintf("Superseded by service deployment %s.", by);
    json_object_set_new(rec, "status", json_string("STOPPED"));
    json_object_set_new(rec, "statusReason", json_string(why));
    json_object_set_new(rec, "stoppedAt", json_real(now));
    json_object_set_new(rec, "finishedAt", json_real(now));
    json_object_set_new(rec, "updatedAt", json_real(now));
    return barge_store_put(tx, ECS_KIND_SDEPLOY, key, rec, err);
}

int ecs_service_deployment_open(struct barge_tx *tx, const struct barge_server *srv, json_t *svc,
                                struct barge_error **err)
{
    json_t *deps = barge_json_array(svc, "deployments");
    json_t *dep = json_array_get(deps, 0);
    if (store_revision(tx, srv, svc, dep, err) < 0)
        return -1;
    _cleanup_free_ char *id = ecs_time_id();
    _cleanup_free_ char *key = record_key(svc, id);
    _cleanup_free_ char *arn =
        ecs_arn(srv, "service-deployment/%s/%s/%s", barge_json_str(svc, "_cluster", ""),
                barge_json_str(svc, "serviceName", ""), id);
    json_t *sources = json_array();
    for (size_t i = 1; i < json_array_size(deps); i++) {
        json_t *d = json_array_get(deps, i);
        const char *old = barge_json_str(d, "_sd", NULL);
        if (old && supersede(tx, svc, old, id, err) < 0) {
            json_decref(sources);
            return -1;
        }
        json_t *s = revision_summary(srv, svc, d,
                                     barge_json_int(d, "runningCount", 0) +
                                         barge_json_int(d, "pendingCount", 0));
        if (s)
            json_array_append_new(sources, s);
    }
    double now = barge_now();
    _cleanup_json_ json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:f, s:f, s:f, s:o, s:o*, s:s, s:O, s:o}", "serviceDeploymentArn", arn,
        "serviceArn", barge_json_str(svc, "serviceArn", ""), "clusterArn",
        barge_json_str(svc, "clusterArn", ""), "createdAt", now, "startedAt", now, "updatedAt", now,
        "sourceServiceRevisions", sources, "targetServiceRevision",
        revision_summary(srv, svc, dep, barge_json_int(dep, "desiredCount", 0)), "status",
        "IN_PROGRESS", "deploymentConfiguration", json_object_get(svc, "deploymentConfiguration"),
        "deploymentCircuitBreaker", circuit_breaker(svc, dep, false));
    json_object_set_new(rec, "alarms", deployment_alarms(svc, dep));
    const char *last = barge_json_str(svc, "_lastCompletedRevision", NULL);
    if (last)
        json_object_set_new(rec, "_sourceRevision", json_string(last));
    if (barge_store_put(tx, ECS_KIND_SDEPLOY, key, rec, err) < 0)
        return -1;
    json_object_set_new(dep, "_sd", json_string(id));
    return 0;
}

void ecs_service_deployment_rollback(const json_t *failed, json_t *dep, const char *revision,
                                     bool circuit_breaker)
{
    json_t *sd = json_object_get(failed, "_sd");
    if (!sd)
        return;
    json_object_set(dep, "_sd", sd);
    json_object_set_new(dep, "_rollback", json_true());
    if (circuit_breaker)
        json_object_set_new(dep, "_circuitBreaker", json_true());
    if (revision)
        json_object_set_new(dep, "_revision", json_string(revision));
}

/* The record status of svc's primary deployment dep. */
static const char *status_of(const json_t *dep)
{
    const char *rollout = barge_json_str(dep, "rolloutState", "IN_PROGRESS");
    bool rollback = barge_json_bool(dep, "_rollback", false);
    if (strcmp(rollout, "COMPLETED") == 0)
        return rollback ? "ROLLBACK_SUCCESSFUL" : "SUCCESSFUL";
    if (strcmp(rollout, "FAILED") == 0)
        return rollback ? "ROLLBACK_FAILED" : "STOPPED";
    return rollback ? "ROLLBACK_IN_PROGRESS" : "IN_PROGRESS";
}

int ecs_service_deployment_sync(struct barge_tx *tx, const struct barge_server *srv, json_t *svc,
                                struct barge_error **err)
{
    json_t *deps = barge_json_array(svc, "deployments");
    json_t *dep = json_array_get(deps, 0);
    const char *id = barge_json_str(dep, "_sd", NULL);
    if (!id)
        return 0;
    if (barge_streq(barge_json_str(dep, "rolloutState", NULL), "COMPLETED") &&
        json_object_get(dep, "_revision"))
        json_object_set(svc, "_lastCompletedRevision", json_object_get(dep, "_revision"));
    const char *status = status_of(dep);
    /* Write only when something the record shows has changed. */
    _cleanup_free_ char *sig =
        barge_xasprintf("%s/%lld/%s", status, (long long)barge_json_int(dep, "failedTasks", 0),
                        barge_json_str(dep, "_stage", ""));
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        char *more =
            barge_xasprintf("%s/%lld.%lld", sig, (long long)barge_json_int(d, "runningCount", 0),
                            (long long)barge_json_int(d, "pendingCount", 0));
        free(sig);
        sig = more;
    }
    if (barge_streq(barge_json_str(dep, "_sdSig", NULL), sig))
        return 0;
    json_object_set_new(dep, "_sdSig", json_string(sig));
    _cleanup_free_ char *key = record_key(svc, id);
    _cleanup_json_ json_t *rec = NULL;
    if (barge_store_get(tx, ECS_KIND_SDEPLOY, key, &rec, err) < 0)
        return -1;
    if (!rec || ecs_service_deployment_finished(rec))
        return 0;
    double now = barge_now();
    bool rollback = barge_json_bool(dep, "_rollback", false);
    json_object_set_new(rec, "status", json_string(status));
    json_object_set_new(rec, "updatedAt", json_real(now));
    /* A blue/green deployment's stage (control/services.c). */
    const char *stage = barge_json_str(dep, "_stage", NULL);
    if (stage)
        json_object_set_new(rec, "lifecycleStage", json_string(stage));
    json_t *cb = circuit_breaker(svc, dep, false);
    if (rollback) {
        if (!json_object_get(rec, "rollback")) {
            _cleanup_free_ char *rev = NULL;
            json_t *rb = json_pack("{s:s, s:f}", "reason",
                                   barge_json_str(dep, "rolloutStateReason", ""), "startedAt", now);
            if (dep_revision_arn(srv, svc, dep, &rev))
                json_object_set_new(rb, "serviceRevisionArn", json_string(rev));
            json_object_set_new(rec, "rollback", rb);
            json_object_set_new(rec, "statusReason",
                                json_string(barge_json_str(dep, "rolloutStateReason", "")));
        }
        /* The circuit breaker's count is the failed deployment's. */
        json_decref(cb);
        cb = json_incref(json_object_get(rec, "deploymentCircuitBreaker"));
        bool tripped = barge_json_bool(dep, "_circuitBreaker", false);
        bool found = false;
        json_array_foreach(deps, i, d)
        {
            if (tripped && barge_streq(barge_json_str(d, "_sd", NULL), id) &&
                !barge_json_bool(d, "_rollback", false)) {
                json_decref(cb);
                cb = circuit_breaker(svc, d, true);
                found = true;
            }
        }
        /* A blue/green rollback drops the failed (green) deployment; blue
         * keeps its failure count. */
        if (tripped && !found && json_object_get(dep, "_cbFailures")) {
            json_decref(cb);
            cb = circuit_breaker(svc, dep, true);
            json_object_set(cb, "failureCount", json_object_get(dep, "_cbFailures"));
        }
    } else if (strcmp(status, "STOPPED") == 0) {
        json_object_set_new(rec, "statusReason",
                            json_string(barge_json_str(dep, "rolloutStateReason", "")));
        json_object_set_new(rec, "stoppedAt", json_real(now));
        json_object_set_new(cb, "status", json_string("TRIGGERED"));
    }
    json_object_set_new(rec, "deploymentCircuitBreaker", cb);
    json_object_set_new(rec, "alarms", deployment_alarms(svc, dep));
    /* The target revision's tasks are those of the deployment the record
     * opened; the source revisions' those of every deployment running them,
     * a rollback included. */
    json_t *target = json_object_get(rec, "targetServiceRevision");
    json_int_t running = 0, pending = 0;
    json_array_foreach(deps, i, d)
    {
        if (barge_streq(barge_json_str(d, "_sd", NULL), id) &&
            !barge_json_bool(d, "_rollback", false)) {
            running += barge_json_int(d, "runningCount", 0);
            pending += barge_json_int(d, "pendingCount", 0);
        }
    }
    json_object_set_new(target, "runningTaskCount", json_integer(running));
    json_object_set_new(target, "pendingTaskCount", json_integer(pending));
    json_object_set_new(target, "requestedTaskCount",
                        json_integer(rollback ? 0 : barge_json_int(dep, "desiredCount", 0)));
    json_t *src;
    json_array_foreach(barge_json_array(rec, "sourceServiceRevisions"), i, src)
    {
        running = pending = 0;
        size_t j;
        json_array_foreach(deps, j, d)
        {
            _cleanup_free_ char *arn = NULL;
            if (dep_revision_arn(srv, svc, d, &arn) &&
                barge_streq(arn, barge_json_str(src, "arn", NULL))) {
                running += barge_json_int(d, "runningCount", 0);
                pending += barge_json_int(d, "pendingCount", 0);
            }
        }
        json_object_set_new(src, "runningTaskCount", json_integer(running));
        json_object_set_new(src, "pendingTaskCount", json_integer(pending));
    }
    if (ecs_service_deployment_finished(rec))
        json_object_set_new(rec, "finishedAt", json_real(now));
    return barge_store_put(tx, ECS_KIND_SDEPLOY, key, rec, err);
}
