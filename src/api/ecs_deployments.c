/* Service deployment history: ListServiceDeployments,
 * DescribeServiceDeployments, DescribeServiceRevisions and
 * StopServiceDeployment. The scheduler works with the deployments array of
 * the service document (ecs_services.c, control/services.c); the domain
 * layer (ecs/deployment.c) keeps ECS's durable view of it. Each deployment a user starts
 * (CreateService, UpdateService) gets a service revision (what the service runs: task definition,
 * launch type, network, load balancers...) and a service deployment record from the running
 * revisions to the new one. A rollback (by the circuit breaker or StopServiceDeployment) is a new
 * internal deployment that serves the same record, whose status then follows the rollback. Records
 * and revisions are stored under "<cluster>/<service>/<id>", the id starting with the creation time
 * so that a descending scan lists the newest first. */
#include <string.h>

#include "api/ecs.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "ecs/bluegreen.h"

#define MAX_DESCRIBE 20

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

/* --- pruning -------------------------------------------------------------- */

/* What the history may lose: finished deployment records that ended before
 * the cutoff, unless the service still runs them (its latest deployment stays
 * describable), and revisions made before it that neither a kept record nor
 * the service itself (its deployments, its last completed revision, which a
 * rollback returns to) names. Keys of both are "<cluster>/<service>/<id>". */
struct prune {
    double cutoff;
    json_t *records;   /* keys to delete */
    json_t *kept_revs; /* revision key -> true */
    json_t *revisions; /* keys to delete */
    json_t *kept_recs; /* record key -> true: the services' current deployments */
};

static void keep_rev_arn(struct prune *p, const char *arn)
{
    const char *k = arn ? strstr(arn, ":service-revision/") : NULL;
    if (k)
        json_object_set_new(p->kept_revs, k + strlen(":service-revision/"), json_true());
}

static void keep_rev_id(struct prune *p, const char *prefix, const char *id)
{
    if (!id)
        return;
    _cleanup_free_ char *key = barge_xasprintf("%s%s", prefix, id);
    json_object_set_new(p->kept_revs, key, json_true());
}

static int prune_record(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    struct prune *p = ud;
    json_t *end = json_object_get(doc, "finishedAt");
    if (ecs_service_deployment_finished(doc) && json_is_number(end) &&
        json_number_value(end) < p->cutoff && !json_object_get(p->kept_recs, key)) {
        json_array_append_new(p->records, json_string(key));
        return 0;
    }
    keep_rev_arn(p, barge_json_str(json_object_get(doc, "targetServiceRevision"), "arn", NULL));
    size_t i;
    json_t *src;
    json_array_foreach(barge_json_array(doc, "sourceServiceRevisions"), i, src)
    {
        keep_rev_arn(p, barge_json_str(src, "arn", NULL));
    }
    const char *slash = strrchr(key, '/');
    _cleanup_free_ char *prefix = barge_xstrndup(key, slash ? (size_t)(slash - key + 1) : 0);
    keep_rev_id(p, prefix, barge_json_str(doc, "_sourceRevision", NULL));
    return 0;
}

static int prune_service(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    struct prune *p = ud;
    _cleanup_free_ char *prefix = barge_xasprintf("%s/%s/", barge_json_str(doc, "_cluster", ""),
                                                  barge_json_str(doc, "serviceName", ""));
    keep_rev_id(p, prefix, barge_json_str(doc, "_lastCompletedRevision", NULL));
    size_t i;
    json_t *d;
    json_array_foreach(barge_json_array(doc, "deployments"), i, d)
    {
        keep_rev_id(p, prefix, barge_json_str(d, "_revision", NULL));
        const char *sd = barge_json_str(d, "_sd", NULL);
        if (sd) {
            _cleanup_free_ char *rkey = barge_xasprintf("%s%s", prefix, sd);
            json_object_set_new(p->kept_recs, rkey, json_true());
        }
    }
    return 0;
}

static int prune_revision(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    struct prune *p = ud;
    json_t *at = json_object_get(doc, "createdAt");
    if (json_is_number(at) && json_number_value(at) < p->cutoff &&
        !json_object_get(p->kept_revs, key))
        json_array_append_new(p->revisions, json_string(key));
    return 0;
}

static int prune_find(struct barge_tx *tx, struct prune *p, struct barge_error **err)
{
    json_array_clear(p->records);
    json_array_clear(p->revisions);
    json_object_clear(p->kept_revs);
    json_object_clear(p->kept_recs);
    if (barge_store_scan(tx, ECS_KIND_SERVICE, "", NULL, false, 0, prune_service, p, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_SDEPLOY, "", NULL, false, 0, prune_record, p, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_SREVISION, "", NULL, false, 0, prune_revision, p, err) < 0)
        return -1;
    return 0;
}

int barge_ecs_deployments_reap(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_json_ json_t *records = json_array(), *kept = json_object(), *revs = json_array(),
                          *current = json_object();
    struct prune p = {barge_now() - srv->cfg.deployment_retention, records, kept, revs, current};
    /* Look with a reader first: most of the time there is nothing to prune
     * and the writer lock stays free. */
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, err) < 0 || prune_find(tx, &p, err) < 0)
        return -1;
    barge_store_abort(barge_steal(&tx));
    if (json_array_size(records) == 0 && json_array_size(revs) == 0)
        return 0;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 || prune_find(tx, &p, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(records, i, k)
    {
        if (barge_store_del(tx, ECS_KIND_SDEPLOY, json_string_value(k), err) < 0)
            return -1;
    }
    json_array_foreach(revs, i, k)
    {
        if (barge_store_del(tx, ECS_KIND_SREVISION, json_string_value(k), err) < 0)
            return -1;
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_debug("pruned %zu service deployments and %zu service revisions older than %d s",
                json_array_size(records), json_array_size(revs), srv->cfg.deployment_retention);
    return 0;
}

const struct barge_api_op ecs_deployment_ops[] = {
    {"ContinueServiceDeployment", continue_service_deployment},
    {"ListServiceDeployments", list_service_deployments},
    {"DescribeServiceDeployments", describe_service_deployments},
    {"DescribeServiceRevisions", describe_service_revisions},
    {"StopServiceDeployment", stop_service_deployment},
    {NULL, NULL},
};
