/* Service deployment history: ListServiceDeployments,
 * DescribeServiceDeployments, DescribeServiceRevisions and
 * StopServiceDeployment. The scheduler works with the deployments array of
 * the service document (ecs_services.c, control/services.c); this file keeps
 * ECS's durable view of it. Each deployment a user starts (CreateService,
 * UpdateService) gets a service revision (what the service runs: task
 * definition, launch type, network, load balancers...) and a service
 * deployment record from the running revisions to the new one. A rollback (by
 * the circuit breaker or StopServiceDeployment) is a new internal deployment
 * that serves the same record, whose status then follows the rollback.
 * Records and revisions are stored under "<cluster>/<service>/<id>", the id
 * starting with the creation time so that a descending scan lists the newest
 * first. */
#include <string.h>

#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "ecs/bluegreen.h"
#include "sched/deploy.h"

#define MAX_DESCRIBE 20

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

static int check_arn_list(const json_t *list, const char *field, struct barge_error **err)
{
    size_t n = json_array_size(list);
    if (n == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "%s must name at least one ARN.", field);
    if (n > MAX_DESCRIBE)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "%s can name at most %d ARNs; %zu were given.", field,
                                    MAX_DESCRIBE, n);
    return 0;
}

int ecs_records_describe(struct barge_api_ctx *ctx, json_t *in, json_t **out, const char *field,
                         const char *kind, const char *type, const char *out_field,
                         struct barge_error **err)
{
    json_t *arns = barge_json_array(in, field);
    if (check_arn_list(arns, field, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *found = json_array(), *failures = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(arns, i, v)
    {
        const char *arn = json_string_value(v);
        _cleanup_free_ char *key = ecs_arn_path(ctx->srv, arn, type, 3);
        if (!key)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Invalid %s ARN '%s'.", type, arn ? arn : "");
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_get(tx, kind, key, &doc, err) < 0)
            return -1;
        if (!doc) {
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s, s:s}", "arn", arn, "reason", "MISSING",
                                            "detail", "The resource does not exist."));
            continue;
        }
        json_array_append_new(found, ecs_public(doc));
    }
    *out = json_pack("{s:O, s:O}", out_field, found, "failures", failures);
    return 0;
}

static int describe_service_deployments(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                        struct barge_error **err)
{
    return ecs_records_describe(ctx, in, out, "serviceDeploymentArns", ECS_KIND_SDEPLOY,
                                "service-deployment", "serviceDeployments", err);
}

static int describe_service_revisions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                      struct barge_error **err)
{
    return ecs_records_describe(ctx, in, out, "serviceRevisionArns", ECS_KIND_SREVISION,
                                "service-revision", "serviceRevisions", err);
}

static const char *const statuses[] = {
    "PENDING",
    "SUCCESSFUL",
    "STOPPED",
    "STOP_REQUESTED",
    "IN_PROGRESS",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_SUCCESSFUL",
    "ROLLBACK_FAILED",
};

struct list_filter {
    struct barge_api_page *pg;
    const json_t *status;
    json_t *before, *after;
};

bool ecs_record_matches(const json_t *doc, const json_t *status, const json_t *before,
                        const json_t *after)
{
    const char *st = barge_json_str(doc, "status", "");
    if (json_array_size(status)) {
        bool match = false;
        size_t i;
        json_t *v;
        json_array_foreach((json_t *)status, i, v)
        {
            match = match || barge_streq(json_string_value(v), st);
        }
        if (!match)
            return false;
    }
    double created = json_number_value(json_object_get(doc, "createdAt"));
    return !(before && created >= json_number_value(before)) &&
           !(after && created <= json_number_value(after));
}

static int list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct list_filter *f = ud;
    if (!ecs_record_matches(doc, f->status, f->before, f->after))
        return 0;
    const char *st = barge_json_str(doc, "status", "");
    json_t *brief = json_pack("{s:s, s:s, s:s, s:O, s:s}", "serviceDeploymentArn",
                              barge_json_str(doc, "serviceDeploymentArn", ""), "serviceArn",
                              barge_json_str(doc, "serviceArn", ""), "clusterArn",
                              barge_json_str(doc, "clusterArn", ""), "createdAt",
                              json_object_get(doc, "createdAt"), "status", st);
    const char *copy[] = {"startedAt", "finishedAt", "statusReason"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(doc, copy[i]);
        if (v)
            json_object_set(brief, copy[i], v);
    }
    const char *target =
        barge_json_str(barge_json_object(doc, "targetServiceRevision"), "arn", NULL);
    if (target)
        json_object_set_new(brief, "targetServiceRevisionArn", json_string(target));
    return barge_api_page_add(f->pg, key, brief);
}

static int check_time(json_t *v, const char *field, struct barge_error **err)
{
    if (v && !json_is_number(v))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "%s must be a timestamp.", field);
    return 0;
}

/* Newest first; only deployments of a service that exists (or existed) in
 * the cluster. */
static int list_service_deployments(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    json_t *status = json_object_get(in, "status");
    size_t i;
    json_t *v;
    json_array_foreach(status, i, v)
    {
        bool known = false;
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(statuses); k++)
            known = known || barge_streq(json_string_value(v), statuses[k]);
        if (!known)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Invalid status '%s': use one of PENDING, SUCCESSFUL, "
                                        "STOPPED, STOP_REQUESTED, IN_PROGRESS, ROLLBACK_REQUESTED, "
                                        "ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL, "
                                        "ROLLBACK_FAILED.",
                                        json_string_value(v) ? json_string_value(v) : "");
    }
    json_t *created = barge_json_object(in, "createdAt");
    _cleanup_page_ struct barge_api_page pg = {0};
    struct list_filter f = {.pg = &pg,
                            .status = status,
                            .before = json_object_get(created, "before"),
                            .after = json_object_get(created, "after")};
    if (check_time(f.before, "createdAt.before", err) < 0 ||
        check_time(f.after, "createdAt.after", err) < 0 ||
        barge_api_page_init(&pg, in, "maxResults", 20, 100, "nextToken", err) < 0)
        return -1;
    const char *ident = barge_json_str(in, "service", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *svc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    _cleanup_free_ char *name = ecs_resource_id(ctx->srv, ident, "service", err);
    if (!name)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    _cleanup_free_ char *skey = barge_xasprintf("%s/%s", cname, name);
    if (barge_store_get(tx, ECS_KIND_SERVICE, skey, &svc, err) < 0)
        return -1;
    if (!svc)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ServiceNotFoundException",
                                    "Service '%s' not found in cluster '%s'.", ident, cname);
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", skey);
    if (pg.after && !barge_str_has_prefix(pg.after, prefix))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "nextToken is not one of service '%s'.", ident);
    if (barge_store_scan(tx, ECS_KIND_SDEPLOY, prefix, pg.after, true, 0, list_one, &f, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "serviceDeployments", "nextToken");
    return 0;
}

/* Starts the deployment that rolls svc back from dep (the primary, serving
 * the record rec of ARN arn) to the revision it ran before. */
static int redeploy_source(struct barge_tx *tx, json_t *svc, json_t *dep, const json_t *rec,
                           const char *skey, const char *arn, struct barge_error **err)
{
    _cleanup_json_ json_t *rev = NULL;
    const char *source = barge_json_str(rec, "_sourceRevision", NULL);
    if (!source)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ConflictException",
                                    "Service deployment '%s' has no earlier completed service "
                                    "revision to roll back to.",
                                    arn);
    _cleanup_free_ char *rkey = barge_xasprintf("%s/%s", skey, source);
    if (barge_store_get(tx, ECS_KIND_SREVISION, rkey, &rev, err) < 0)
        return -1;
    if (!rev)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ConflictException",
                                    "The service revision to roll back to is gone.");
    const char *td = barge_json_str(rev, "taskDefinition", "");
    _cleanup_free_ char *reason = barge_xasprintf(
        "Service deployment rolled back by StopServiceDeployment to service revision %s.",
        barge_json_str(rev, "serviceRevisionArn", ""));
    json_t *nd = ecs_deployment_new(svc, td, barge_json_int(svc, "desiredCount", 0), reason);
    ecs_service_deployment_rollback(dep, nd, source, false);
    ecs_service_event(svc, "(deployment %s) rolling back to %s.", barge_json_str(dep, "id", ""),
                      td);
    ecs_service_push_deployment(svc, nd);
    json_object_set_new(svc, "_consecutiveFailures", json_integer(0));
    json_object_del(svc, "_throttleUntil");
    return 0;
}

/* Rolls the service back to the revision it ran before the deployment: a new
 * internal deployment of that revision's task definition serves the record,
 * whose status follows it (ROLLBACK_IN_PROGRESS, then ROLLBACK_SUCCESSFUL or
 * ROLLBACK_FAILED). A blue/green deployment whose blue still runs rolls back
 * by making blue primary again (ecs/bluegreen.c). */
static int stop_service_deployment(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    const char *arn = barge_json_str(in, "serviceDeploymentArn", "");
    const char *type = barge_json_str(in, "stopType", "ROLLBACK");
    if (strcmp(type, "ROLLBACK") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid stopType '%s': the valid value is ROLLBACK.", type);
    _cleanup_free_ char *key = ecs_arn_path(ctx->srv, arn, "service-deployment", 3);
    if (!key)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid service-deployment ARN '%s'.", arn);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *rec = NULL, *svc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_SDEPLOY, key, &rec, err) < 0)
        return -1;
    if (!rec)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ServiceDeploymentNotFoundException",
                                    "Service deployment '%s' not found.", arn);
    if (ecs_service_deployment_finished(rec) ||
        strcmp(barge_json_str(rec, "status", ""), "IN_PROGRESS") != 0)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ConflictException",
                                    "Service deployment '%s' is %s; only an IN_PROGRESS "
                                    "deployment can be stopped.",
                                    arn, barge_json_str(rec, "status", ""));
    char *slash = strrchr(key, '/');
    _cleanup_free_ char *skey = barge_xstrndup(key, (size_t)(slash - key));
    const char *id = slash + 1;
    if (barge_store_get(tx, ECS_KIND_SERVICE, skey, &svc, err) < 0)
        return -1;
    json_t *dep = json_array_get(barge_json_array(svc, "deployments"), 0);
    if (!svc || !barge_streq(barge_json_str(svc, "status", NULL), "ACTIVE") ||
        !barge_streq(barge_json_str(dep, "_sd", NULL), id))
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ConflictException",
                                    "Service deployment '%s' is no longer the service's current "
                                    "deployment.",
                                    arn);
    /* Blue/green with blue still running: production goes back to blue at
     * once and green's tasks stop. */
    if (ecs_bluegreen(svc) && json_array_size(barge_json_array(svc, "deployments")) > 1)
        ecs_bluegreen_rollback(svc,
                               "Service deployment rolled back by StopServiceDeployment: "
                               "production traffic returned to the blue deployment.",
                               false);
    else if (redeploy_source(tx, svc, dep, rec, skey, arn, err) < 0)
        return -1;
    if (ecs_service_deployment_sync(tx, ctx->srv, svc, err) < 0 ||
        barge_store_put(tx, ECS_KIND_SERVICE, skey, svc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:s}", "serviceDeploymentArn", arn);
    return 0;
}

/* Continues or rolls back a deployment paused at a PAUSE lifecycle hook of
 * a BLUE_GREEN deployment. barge refuses lifecycle hooks (their targets are
 * Lambda functions), so no deployment ever waits at one: a known deployment
 * gets ECS's answer for a hook that is not AWAITING_ACTION. */
static int continue_service_deployment(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    const char *arn = barge_json_str(in, "serviceDeploymentArn", "");
    const char *hook = barge_json_str(in, "hookId", "");
    const char *action = barge_json_str(in, "action", "CONTINUE");
    if (strcmp(action, "CONTINUE") != 0 && strcmp(action, "ROLLBACK") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid action '%s': the valid values are CONTINUE and "
                                    "ROLLBACK.",
                                    action);
    if (!*hook)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "hookId must not be empty.");
    _cleanup_free_ char *key = ecs_arn_path(ctx->srv, arn, "service-deployment", 3);
    if (!key)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid service-deployment ARN '%s'.", arn);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *rec = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_SDEPLOY, key, &rec, err) < 0)
        return -1;
    if (!rec)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ServiceDeploymentNotFoundException",
                                    "Service deployment '%s' not found.", arn);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                "Lifecycle hook '%s' of service deployment '%s' is not in "
                                "AWAITING_ACTION status: the deployment (%s) is not paused at a "
                                "lifecycle hook.",
                                hook, arn, barge_json_str(rec, "status", ""));
}

const struct barge_api_op ecs_deployment_ops[] = {
    {"ContinueServiceDeployment", continue_service_deployment},
    {"ListServiceDeployments", list_service_deployments},
    {"DescribeServiceDeployments", describe_service_deployments},
    {"DescribeServiceRevisions", describe_service_revisions},
    {"StopServiceDeployment", stop_service_deployment},
    {NULL, NULL},
};
