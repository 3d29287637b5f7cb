/* Daemons: one task on every container instance of some capacity providers,
 * managed apart from services. RegisterDaemonTaskDefinition,
 * DescribeDaemonTaskDefinition, ListDaemonTaskDefinitions and
 * DeleteDaemonTaskDefinition keep daemon task definitions (checked as task
 * definitions are, stored in a kind of their own with an ARN of type
 * daemon-task-definition); CreateDaemon, UpdateDaemon, DeleteDaemon,
 * DescribeDaemon and ListDaemons keep daemons, which the service scheduler
 * (src/control/services.c) runs as it runs DAEMON services, on the instances
 * whose barge.capacity-provider attribute names one of the daemon's
 * providers; each Create/UpdateDaemon records a daemon revision and a daemon
 * deployment (ListDaemonDeployments, DescribeDaemonDeployments,
 * DescribeDaemonRevisions) whose status follows the rollout. */
#include <stdarg.h>
#include <string.h>

#include "api/ecs.h"
#include "api/taskdef_check.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

static int invalid(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int invalid(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException", "%s", msg);
}

/* ---- daemon task definitions ---- */

/* The DaemonTaskDefinition shape of a stored definition. New reference. */
static json_t *render_dtd(const json_t *doc)
{
    static const char *const fields[] = {
        "daemonTaskDefinitionArn",
        "family",
        "revision",
        "taskRoleArn",
        "executionRoleArn",
        "containerDefinitions",
        "volumes",
        "cpu",
        "memory",
        "status",
        "registeredAt",
        "registeredBy",
        "deleteRequestedAt",
    };
    json_t *out = json_object();
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(fields); i++) {
        json_t *v = json_object_get(doc, fields[i]);
        if (v)
            json_object_set(out, fields[i], v);
    }
    return out;
}

/* Resolves a daemon task definition ("family", "family:revision" or its
 * ARN): 1 with *doc and *key, 0 when there is none. */
static int dtd_find(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                    json_t **doc, char **key, struct barge_error **err)
{
    _cleanup_free_ char *arn = barge_str_has_prefix(ident, "arn:")
                                   ? barge_xstrdup(ident)
                                   : ecs_arn(srv, "daemon-task-definition/%s", ident);
    if (!strstr(arn, ":daemon-task-definition/"))
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "Invalid daemon task definition ARN '%s'.", ident);
    return ecs_taskdef_find(tx, srv, arn, doc, key, err);
}

static int register_daemon_task_definition(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                           struct barge_error **err)
{
    json_t *tags = barge_json_array(in, "tags");
    _cleanup_json_ json_t *input = json_deep_copy(in), *td = NULL;
    json_object_del(input, "tags");
    if (barge_taskdef_check(input, &td, err) < 0 || (tags && ecs_tags_validate(tags, err) < 0))
        return -1;
    const char *family = barge_json_str(td, "family", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int64_t rev;
    _cleanup_free_ char *counter = barge_xasprintf("dtaskdef:%s", family);
    if (barge_store_counter_next(tx, counter, &rev, err) < 0)
        return -1;
    _cleanup_free_ char *arn =
        ecs_arn(ctx->srv, "daemon-task-definition/%s:%lld", family, (long long)rev);
    _cleanup_free_ char *by = barge_xasprintf("arn:aws:iam::%s:root", ctx->srv->cfg.account_id);
    /* taskDefinitionArn is what the daemon's tasks name, and what the
     * scheduler and agents look the definition up by. */
    json_object_set_new(td, "taskDefinitionArn", json_string(arn));
    json_object_set_new(td, "daemonTaskDefinitionArn", json_string(arn));
    json_object_set_new(td, "revision", json_integer(rev));
    json_object_set_new(td, "status", json_string("ACTIVE"));
    json_object_set_new(td, "registeredAt", json_real(barge_now()));
    json_object_set_new(td, "registeredBy", json_string(by));
    _cleanup_free_ char *key = ecs_taskdef_key(family, rev);
    if (barge_store_put(tx, ECS_KIND_DTASKDEF, key, td, err) < 0 ||
        (tags && ecs_tags_add(tx, arn, tags, err) < 0) ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:s}", "daemonTaskDefinitionArn", arn);
    return 0;
}

static int describe_daemon_task_definition(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                           struct barge_error **err)
{
    const char *ident = barge_json_str(in, "daemonTaskDefinition", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *td = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    int r = dtd_find(tx, ctx->srv, ident, &td, &key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "Unable to describe daemon task definition '%s'.", ident);
    *out = json_pack("{s:o}", "daemonTaskDefinition", render_dtd(td));
    return 0;
}

static int delete_daemon_task_definition(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                         struct barge_error **err)
{
    const char *ident = barge_json_str(in, "daemonTaskDefinition", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *td = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    /* ECS deletes one revision: the identifier must name it. */
    const char *spec = strstr(ident, ":daemon-task-definition/");
    if (!strchr(spec ? spec + strlen(":daemon-task-definition/") : ident, ':'))
        return invalid(err,
                       "daemonTaskDefinition '%s' must name a revision (family:revision or its "
                       "ARN).",
                       ident);
    int r = dtd_find(tx, ctx->srv, ident, &td, &key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "The specified daemon task definition '%s' does not exist.",
                                    ident);
    if (barge_streq(barge_json_str(td, "status", NULL), "ACTIVE")) {
        json_object_set_new(td, "status", json_string("DELETE_IN_PROGRESS"));
        json_object_set_new(td, "deleteRequestedAt", json_real(barge_now()));
        if (barge_store_put(tx, ECS_KIND_DTASKDEF, key, td, err) < 0 ||
            barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
    }
    *out = json_pack("{s:s}", "daemonTaskDefinitionArn",
                     barge_json_str(td, "daemonTaskDefinitionArn", ""));
    return 0;
}

struct dtd_list {
    struct barge_api_page *pg;
    const char *family, *prefix, *status;
    bool last_only, desc;
    /* LAST_REGISTERED: descending, the family already taken; ascending, the
     * newest revision seen of the current family, taken when the next family
     * (or the end) comes. */
    char *taken_family;
    char *pending_key;
    json_t *pending;
};

static json_t *dtd_summary(const json_t *doc)
{
    json_t *s =
        json_pack("{s:s, s:O, s:O, s:O}", "arn", barge_json_str(doc, "daemonTaskDefinitionArn", ""),
                  "registeredAt", json_object_get(doc, "registeredAt"), "registeredBy",
                  json_object_get(doc, "registeredBy"), "status", json_object_get(doc, "status"));
    if (json_object_get(doc, "deleteRequestedAt"))
        json_object_set(s, "deleteRequestedAt", json_object_get(doc, "deleteRequestedAt"));
    return s;
}

static int flush_pending(struct dtd_list *l)
{
    if (!l->pending)
        return 0;
    int r = barge_api_page_add(l->pg, l->pending_key, l->pending);
    l->pending = NULL;
    free(l->pending_key);
    l->pending_key = NULL;
    return r;
}

static int dtd_list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct dtd_list *l = ud;
    const char *family = barge_json_str(doc, "family", "");
    if ((l->family && strcmp(family, l->family) != 0) ||
        (l->prefix && !barge_str_has_prefix(family, l->prefix)))
        return 0;
    if (strcmp(l->status, "ALL") != 0 && !barge_streq(barge_json_str(doc, "status", ""), l->status))
        return 0;
    if (!l->last_only)
        return barge_api_page_add(l->pg, key, dtd_summary(doc));
    if (l->desc) {
        if (barge_streq(l->taken_family, family))
            return 0;
        free(l->taken_family);
        l->taken_family = barge_xstrdup(family);
        return barge_api_page_add(l->pg, key, dtd_summary(doc));
    }
    size_t n = strlen(family);
    if (l->pending_key && (strncmp(l->pending_key, family, n) != 0 || l->pending_key[n] != '!')) {
        int r = flush_pending(l);
        if (r)
            return r;
    }
    json_decref(l->pending);
    free(l->pending_key);
    l->pending = dtd_summary(doc);
    l->pending_key = barge_xstrdup(key);
    return 0;
}

static int list_daemon_task_definitions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                        struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    const char *revision = barge_json_str(in, "revision", NULL);
    struct dtd_list l = {
        .pg = &pg,
        .family = barge_json_str(in, "family", NULL),
        .prefix = barge_json_str(in, "familyPrefix", NULL),
        .status = barge_json_str(in, "status", "ACTIVE"),
        .last_only = barge_streq(revision, "LAST_REGISTERED"),
        .desc = barge_streq(barge_json_str(in, "sort", "ASC"), "DESC"),
    };
    if (l.family && l.prefix)
        return invalid(err, "family and familyPrefix cannot both be given.");
    if (barge_api_page_init(&pg, in, "maxResults", 100, 100, "nextToken", err) < 0)
        return -1;
    /* A descending page that ended within a family goes on with the next. */
    if (pg.after && strchr(pg.after, '!'))
        l.taken_family = barge_xstrndup(pg.after, (size_t)(strchr(pg.after, '!') - pg.after));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *prefix = l.family ? barge_xasprintf("%s!", l.family) : barge_xstrdup("");
    int r = barge_store_begin(ctx->srv->store, false, &tx, err) < 0
                ? -1
                : barge_store_scan(tx, ECS_KIND_DTASKDEF, prefix, pg.after, l.desc, 0, dtd_list_one,
                                   &l, err);
    if (r >= 0)
        flush_pending(&l);
    json_decref(l.pending);
    free(l.pending_key);
    free(l.taken_family);
    if (r < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "daemonTaskDefinitions", "nextToken");
    return 0;
}

/* ---- daemons ---- */

/* Loads the daemon named by its ARN: a malformed ARN is an
 * InvalidParameterException, an unknown or deleted daemon a
 * DaemonNotFoundException; active asks for an ACTIVE one
 * (DaemonNotActiveException otherwise). */
static int load_daemon(struct barge_tx *tx, const struct barge_server *srv, const char *arn,
                       bool active, json_t **doc, char **key, struct barge_error **err)
{
    *key = ecs_arn_path(srv, arn, "daemon", 2);
    if (!*key)
        return invalid(err, "Invalid daemon ARN '%s'.", arn);
    if (barge_store_get(tx, ECS_KIND_DAEMON, *key, doc, err) < 0)
        return -1;
    if (!*doc || barge_streq(barge_json_str(*doc, "status", NULL), "INACTIVE"))
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "DaemonNotFoundException",
                                    "Daemon '%s' not found.", arn);
    if (active && !barge_streq(barge_json_str(*doc, "status", NULL), "ACTIVE"))
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "DaemonNotActiveException",
                                    "Daemon '%s' is being deleted.", arn);
    return 0;
}

/* Checks capacityProviderArns (ARNs or names of host-group capacity
 * providers) and returns their names (new reference). */
static json_t *check_providers(struct barge_tx *tx, const struct barge_server *srv,
                               const json_t *list, struct barge_error **err)
{
    if (!json_array_size(list)) {
        invalid(err, "capacityProviderArns must name at least one capacity provider.");
        return NULL;
    }
    _cleanup_json_ json_t *names = json_array(), *strategy = json_array();
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)list, i, v)
    {
        const char *s = json_string_value(v);
        const char *slash = strrchr(s, '/');
        const char *name = barge_str_has_prefix(s, "arn:") && slash ? slash + 1 : s;
        if (ecs_capacity_is_fargate(name)) {
            invalid(err, "Daemons run on container instances; capacity provider '%s' is Fargate.",
                    s);
            return NULL;
        }
        json_array_append_new(names, json_string(name));
        json_array_append_new(strategy,
                              json_pack("{s:s, s:i}", "capacityProvider", name, "weight", 1));
    }
    if (ecs_capacity_check_strategy(tx, srv, strategy, err) < 0)
        return NULL;
    return json_incref(names);
}

static json_t *container_images(const json_t *td)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        json_array_append_new(out, json_pack("{s:s, s:s}", "containerName",
                                             barge_json_str(c, "name", ""), "image",
                                             barge_json_str(c, "image", "")));
    }
    return out;
}

static json_t *provider_arns(const struct barge_server *srv, const json_t *names)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)names, i, v)
    {
        char *arn = ecs_arn(srv, "capacity-provider/%s", json_string_value(v));
        json_array_append_new(out, json_string(arn));
        free(arn);
    }
    return out;
}

/* Records a new revision and deployment of the daemon (its task definition
 * td, the settings of in) and pushes the scheduler deployment that rolls it
 * out; a deployment still in progress is STOPPED. */
static int deploy(struct barge_tx *tx, const struct barge_server *srv, json_t *daemon,
                  const json_t *td, const json_t *in, struct barge_error **err)
{
    const char *cname = barge_json_str(daemon, "_cluster", "");
    const char *name = barge_json_str(daemon, "serviceName", "");
    double now = barge_now();
    _cleanup_free_ char *rid = ecs_time_id(), *did = ecs_time_id();
    _cleanup_free_ char *rkey = barge_xasprintf("%s/%s/%s", cname, name, rid);
    _cleanup_free_ char *dkey = barge_xasprintf("%s/%s/%s", cname, name, did);
    _cleanup_free_ char *rarn = ecs_arn(srv, "daemon-revision/%s", rkey);
    _cleanup_free_ char *darn = ecs_arn(srv, "daemon-deployment/%s", dkey);
    json_t *providers = barge_json_array(daemon, "capacityProviderArns");
    json_t *target_providers = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(providers, i, v)
    {
        json_array_append_new(target_providers, json_pack("{s:O}", "arn", v));
    }
    _cleanup_json_ json_t *rev = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:o, s:b, s:b, s:s, s:O}", "daemonRevisionArn", rarn,
        "clusterArn", barge_json_str(daemon, "clusterArn", ""), "daemonArn",
        barge_json_str(daemon, "daemonArn", ""), "daemonTaskDefinitionArn",
        barge_json_str(td, "daemonTaskDefinitionArn", ""), "createdAt", now, "containerImages",
        container_images(td), "enableECSManagedTags",
        barge_json_bool(daemon, "enableECSManagedTags", false), "enableExecuteCommand",
        barge_json_bool(daemon, "enableExecuteCommand", false), "propagateTags",
        barge_json_str(daemon, "propagateTags", "NONE"), "_capacityProviderArns", providers);
    json_t *sources = json_array();
    json_t *old = json_array_get(barge_json_array(daemon, "deployments"), 0);
    if (old && barge_json_str(old, "_revision", NULL)) {
        json_t *src = json_pack("{s:s}", "arn", barge_json_str(old, "_revision", ""));
        json_array_append_new(sources, src);
    }
    json_t *cfg = barge_json_object(in, "deploymentConfiguration");
    if (!cfg)
        cfg = barge_json_object(daemon, "_config");
    _cleanup_json_ json_t *no_cfg = json_object();
    _cleanup_json_ json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:f, s:{s:s, s:o, s:i}, s:o, s:O, s:{s:s, s:i, s:i}, "
        "s:{s:s}, s:s}",
        "daemonDeploymentArn", darn, "clusterArn", barge_json_str(daemon, "clusterArn", ""),
        "status", "IN_PROGRESS", "statusReason", "The daemon deployment is in progress.",
        "createdAt", now, "startedAt", now, "targetDaemonRevision", "arn", rarn,
        "capacityProviders", target_providers, "totalRunningInstanceCount", 0,
        "sourceDaemonRevisions", sources, "deploymentConfiguration", cfg ? cfg : no_cfg,
        "circuitBreaker", "status", "DISABLED", "failureCount", 0, "threshold", 0, "alarms",
        "status", "DISABLED", "_daemonArn", barge_json_str(daemon, "daemonArn", ""));
    /* The record the former deployment serves, if still in progress, ends. */
    const char *old_key = barge_json_str(old, "_dd", NULL);
    if (old_key) {
        _cleanup_json_ json_t *prev = NULL;
        if (barge_store_get(tx, ECS_KIND_DDEPLOY, old_key, &prev, err) < 0)
            return -1;
        if (prev && barge_streq(barge_json_str(prev, "status", NULL), "IN_PROGRESS")) {
            json_object_set_new(prev, "status", json_string("STOPPED"));
            json_object_set_new(prev, "statusReason",
                                json_string("Superseded by a newer daemon deployment."));
            json_object_set_new(prev, "stoppedAt", json_real(now));
            json_object_set_new(prev, "finishedAt", json_real(now));
            if (barge_store_put(tx, ECS_KIND_DDEPLOY, old_key, prev, err) < 0)
                return -1;
        }
    }
    json_t *dep = ecs_deployment_new(daemon, barge_json_str(td, "taskDefinitionArn", ""), 0, NULL);
    json_object_set_new(dep, "_dd", json_string(dkey));
    json_object_set_new(dep, "_revision", json_string(rarn));
    ecs_service_push_deployment(daemon, dep);
    json_object_set_new(daemon, "deploymentArn", json_string(darn));
    json_object_set(daemon, "daemonTaskDefinitionArn",
                    json_object_get(td, "daemonTaskDefinitionArn"));
    json_object_set_new(daemon, "updatedAt", json_real(now));
    if (barge_store_put(tx, ECS_KIND_DREVISION, rkey, rev, err) < 0 ||
        barge_store_put(tx, ECS_KIND_DDEPLOY, dkey, rec, err) < 0)
        return -1;
    return 0;
}

/* The answer of Create/Update/DeleteDaemon. New reference. */
static json_t *brief(const json_t *daemon)
{
    json_t *out = json_pack(
        "{s:O, s:O, s:O, s:O}", "daemonArn", json_object_get(daemon, "daemonArn"), "status",
        json_object_get(daemon, "status"), "createdAt", json_object_get(daemon, "createdAt"),
        "deploymentArn", json_object_get(daemon, "deploymentArn"));
    if (json_object_get(daemon, "updatedAt"))
        json_object_set(out, "updatedAt", json_object_get(daemon, "updatedAt"));
    return out;
}

/* Loads the ACTIVE daemon task definition a Create/UpdateDaemon names. */
static int load_dtd(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                    json_t **td, struct barge_error **err)
{
    _cleanup_free_ char *key = NULL;
    int r = dtd_find(tx, srv, ident, td, &key, err);
    if (r < 0)
        return -1;
    if (r == 0 || !barge_streq(barge_json_str(*td, "status", NULL), "ACTIVE"))
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "Daemon task definition '%s' not found or not ACTIVE.", ident);
    return 0;
}

static void set_options(json_t *daemon, const json_t *in)
{
    const char *keys[] = {"enableECSManagedTags", "enableExecuteCommand", "propagateTags"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keys); i++) {
        json_t *v = json_object_get(in, keys[i]);
        if (v)
            json_object_set(daemon, keys[i], v);
    }
    json_t *cfg = barge_json_object(in, "deploymentConfiguration");
    if (cfg)
        json_object_set(daemon, "_config", cfg);
}

static int check_config(const json_t *in, struct barge_error **err)
{
    json_t *cfg = barge_json_object(in, "deploymentConfiguration");
    json_t *drain = json_object_get(cfg, "drainPercent");
    if (drain && (json_number_value(drain) < 0 || json_number_value(drain) > 100))
        return invalid(err, "deploymentConfiguration.drainPercent must be between 0 and 100.");
    if (barge_json_int(cfg, "bakeTimeInMinutes", 0) < 0)
        return invalid(err, "deploymentConfiguration.bakeTimeInMinutes must not be negative.");
    return 0;
}

static int create_daemon(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    const char *name = barge_json_str(in, "daemonName", "");
    if (!ecs_name_valid(name))
        return invalid(err,
                       "Invalid daemon name '%s': up to 255 letters (uppercase and lowercase), "
                       "numbers, underscores and hyphens are allowed.",
                       name);
    json_t *tags = barge_json_array(in, "tags");
    if ((tags && ecs_tags_validate(tags, err) < 0) || check_config(in, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *td = NULL, *existing = NULL, *names = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "clusterArn", NULL), &cluster, err) < 0 ||
        load_dtd(tx, ctx->srv, barge_json_str(in, "daemonTaskDefinitionArn", ""), &td, err) < 0)
        return -1;
    names = check_providers(tx, ctx->srv, barge_json_array(in, "capacityProviderArns"), err);
    if (!names)
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, name);
    if (barge_store_get(tx, ECS_KIND_DAEMON, key, &existing, err) < 0)
        return -1;
    if (existing && !barge_streq(barge_json_str(existing, "status", NULL), "INACTIVE"))
        return invalid(err, "Daemon '%s' already exists in cluster '%s'.", name, cname);
    _cleanup_free_ char *arn = ecs_arn(ctx->srv, "daemon/%s/%s", cname, name);
    _cleanup_free_ char *sched = barge_xasprintf("daemon:%s", name);
    double now = barge_now();
    _cleanup_json_ json_t *daemon = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:f, s:o, s:O, s:b, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:i, "
        "s:[], s:[]}",
        "daemonArn", arn, "serviceName", name, "clusterArn",
        barge_json_str(cluster, "clusterArn", ""), "status", "ACTIVE", "createdAt", now,
        "updatedAt", now, "capacityProviderArns", provider_arns(ctx->srv, names),
        "_capacityProviders", names, "enableECSManagedTags", false, "enableExecuteCommand", false,
        "propagateTags", "NONE", "_cluster", cname, "_schedName", sched, "_group", sched,
        "schedulingStrategy", "DAEMON", "launchType", "EC2", "desiredCount", 0, "deployments",
        "events");
    set_options(daemon, in);
    if (deploy(tx, ctx->srv, daemon, td, in, err) < 0 || ecs_tags_drop(tx, arn, err) < 0 ||
        (tags && ecs_tags_add(tx, arn, tags, err) < 0) ||
        barge_store_put(tx, ECS_KIND_DAEMON, key, daemon, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    *out = brief(daemon);
    return 0;
}

static int update_daemon(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    if (check_config(in, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *daemon = NULL, *td = NULL, *names = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_daemon(tx, ctx->srv, barge_json_str(in, "daemonArn", ""), true, &daemon, &key, err) <
            0 ||
        load_dtd(tx, ctx->srv, barge_json_str(in, "daemonTaskDefinitionArn", ""), &td, err) < 0)
        return -1;
    names = check_providers(tx, ctx->srv, barge_json_array(in, "capacityProviderArns"), err);
    if (!names)
        return -1;
    json_object_set_new(daemon, "capacityProviderArns", provider_arns(ctx->srv, names));
    json_object_set(daemon, "_capacityProviders", names);
    set_options(daemon, in);
    if (deploy(tx, ctx->srv, daemon, td, in, err) < 0 ||
        barge_store_put(tx, ECS_KIND_DAEMON, key, daemon, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    *out = brief(daemon);
    return 0;
}

static int delete_daemon(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *daemon = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_daemon(tx, ctx->srv, barge_json_str(in, "daemonArn", ""), true, &daemon, &key, err) <
            0)
        return -1;
    /* The scheduler stops its tasks, then forgets it. */
    json_object_set_new(daemon, "status", json_string("DELETE_IN_PROGRESS"));
    json_object_set_new(daemon, "updatedAt", json_real(barge_now()));
    if (ecs_tags_drop(tx, barge_json_str(daemon, "daemonArn", ""), err) < 0 ||
        barge_store_put(tx, ECS_KIND_DAEMON, key, daemon, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    *out = brief(daemon);
    return 0;
}

struct running {
    struct barge_tx *tx;
    json_t *counts; /* {revision ARN: {provider name: running tasks}} */
    const json_t *daemon;
};

static int count_task(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct running *r = ud;
    _cleanup_json_ json_t *task = NULL, *inst = NULL;
    if (barge_store_get(r->tx, ECS_KIND_TASK, barge_json_str(doc, "task", ""), &task, err) < 0)
        return -1;
    if (!task || !barge_streq(barge_json_str(task, "lastStatus", NULL), "RUNNING"))
        return 0;
    const char *rev = NULL;
    size_t i;
    json_t *d, *a;
    json_array_foreach(barge_json_array(r->daemon, "deployments"), i, d)
    {
        if (barge_streq(barge_json_str(d, "id", NULL), barge_json_str(task, "startedBy", "")))
            rev = barge_json_str(d, "_revision", NULL);
    }
    _cleanup_free_ char *ikey = barge_xasprintf("%s/%s", barge_json_str(r->daemon, "_cluster", ""),
                                                barge_json_str(task, "_instanceId", ""));
    if (!rev || barge_store_get(r->tx, ECS_KIND_INSTANCE, ikey, &inst, err) < 0)
        return *err ? -1 : 0;
    const char *provider = NULL;
    json_array_foreach(barge_json_array(inst, "attributes"), i, a)
    {
        if (barge_streq(barge_json_str(a, "name", NULL), "barge.capacity-provider"))
            provider = barge_json_str(a, "value", NULL);
    }
    if (!provider)
        return 0;
    json_t *per = json_object_get(r->counts, rev);
    if (!per)
        json_object_set_new(r->counts, rev, per = json_object());
    json_object_set_new(per, provider, json_integer(barge_json_int(per, provider, 0) + 1));
    return 0;
}

static int describe_daemon(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *daemon = NULL, *counts = json_object();
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_daemon(tx, ctx->srv, barge_json_str(in, "daemonArn", ""), false, &daemon, &key, err) <
            0)
        return -1;
    struct running r = {tx, counts, daemon};
    _cleanup_free_ char *prefix = barge_xasprintf("%s/%s/", barge_json_str(daemon, "_cluster", ""),
                                                  barge_json_str(daemon, "_schedName", ""));
    if (barge_store_scan(tx, ECS_KIND_STASK, prefix, NULL, false, 0, count_task, &r, err) < 0)
        return -1;
    /* The revisions of its deployments, newest first: the target and those
     * still running somewhere. */
    json_t *revisions = json_array();
    size_t i, j;
    json_t *d, *p;
    json_array_foreach(barge_json_array(daemon, "deployments"), i, d)
    {
        const char *rev = barge_json_str(d, "_revision", NULL);
        if (!rev)
            continue;
        json_t *per = json_object_get(counts, rev);
        json_t *providers = json_array();
        json_int_t total = 0;
        json_array_foreach(barge_json_array(daemon, "_capacityProviders"), j, p)
        {
            json_int_t n = barge_json_int(per, json_string_value(p), 0);
            char *parn = ecs_arn(ctx->srv, "capacity-provider/%s", json_string_value(p));
            json_array_append_new(providers,
                                  json_pack("{s:s, s:I}", "arn", parn, "runningCount", n));
            free(parn);
            total += n;
        }
        json_array_append_new(revisions,
                              json_pack("{s:s, s:o, s:I}", "arn", rev, "capacityProviders",
                                        providers, "totalRunningCount", total));
    }
    json_t *detail = brief(daemon);
    json_object_set(detail, "clusterArn", json_object_get(daemon, "clusterArn"));
    json_object_set_new(detail, "currentRevisions", revisions);
    *out = json_pack("{s:o}", "daemon", detail);
    return 0;
}

struct daemon_list {
    struct barge_api_page *pg;
    json_t *providers; /* names to match, or NULL */
};

static int daemon_list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct daemon_list *l = ud;
    if (barge_streq(barge_json_str(doc, "status", NULL), "INACTIVE"))
        return 0;
    if (l->providers) {
        bool match = false;
        size_t i, j;
        json_t *a, *b;
        json_array_foreach(l->providers, i, a)
        {
            json_array_foreach(barge_json_array(doc, "_capacityProviders"), j, b)
            {
                match |= json_equal(a, b);
            }
        }
        if (!match)
            return 0;
    }
    return barge_api_page_add(
        l->pg, key,
        json_pack("{s:O, s:O, s:O, s:O}", "daemonArn", json_object_get(doc, "daemonArn"), "status",
                  json_object_get(doc, "status"), "createdAt", json_object_get(doc, "createdAt"),
                  "updatedAt", json_object_get(doc, "updatedAt")));
}

static int list_daemons(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    _cleanup_json_ json_t *providers = NULL, *cluster = NULL;
    json_t *want = barge_json_array(in, "capacityProviderArns");
    if (json_array_size(want)) {
        providers = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(want, i, v)
        {
            const char *s = json_string_value(v);
            const char *slash = strrchr(s, '/');
            json_array_append_new(
                providers, json_string(barge_str_has_prefix(s, "arn:") && slash ? slash + 1 : s));
        }
    }
    struct daemon_list l = {&pg, providers};
    if (barge_api_page_init(&pg, in, "maxResults", 100, 100, "nextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    const char *ident = barge_json_str(in, "clusterArn", NULL);
    _cleanup_free_ char *prefix = NULL;
    if (ident) {
        if (ecs_cluster_load(tx, ctx->srv, ident, &cluster, err) < 0)
            return -1;
        prefix = barge_xasprintf("%s/", barge_json_str(cluster, "clusterName", ""));
    }
    if (barge_store_scan(tx, ECS_KIND_DAEMON, prefix ? prefix : "", pg.after, false, 0,
                         daemon_list_one, &l, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "daemonSummariesList", "nextToken");
    return 0;
}

/* ---- deployments and revisions ---- */

static int describe_daemon_deployments(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    return ecs_records_describe(ctx, in, out, "daemonDeploymentArns", ECS_KIND_DDEPLOY,
                                "daemon-deployment", "daemonDeployments", err);
}

static int describe_daemon_revisions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                     struct barge_error **err)
{
    return ecs_records_describe(ctx, in, out, "daemonRevisionArns", ECS_KIND_DREVISION,
                                "daemon-revision", "daemonRevisions", err);
}

struct deploy_list {
    struct barge_api_page *pg;
    const json_t *status;
    json_t *before, *after;
};

static int deploy_list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct deploy_list *f = ud;
    if (!ecs_record_matches(doc, f->status, f->before, f->after))
        return 0;
    json_t *s = json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:s}", "daemonDeploymentArn",
        json_object_get(doc, "daemonDeploymentArn"), "daemonArn",
        json_object_get(doc, "_daemonArn"), "clusterArn", json_object_get(doc, "clusterArn"),
        "createdAt", json_object_get(doc, "createdAt"), "status", json_object_get(doc, "status"),
        "targetDaemonRevisionArn",
        barge_json_str(barge_json_object(doc, "targetDaemonRevision"), "arn", ""));
    const char *copy[] = {"startedAt", "stoppedAt", "finishedAt", "statusReason"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(doc, copy[i]);
        if (v)
            json_object_set(s, copy[i], v);
    }
    return barge_api_page_add(f->pg, key, s);
}

static int list_daemon_deployments(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    json_t *created = barge_json_object(in, "createdAt");
    struct deploy_list f = {&pg, barge_json_array(in, "status"), json_object_get(created, "before"),
                            json_object_get(created, "after")};
    static const char *const states[] = {"PENDING",
                                         "SUCCESSFUL",
                                         "STOPPED",
                                         "STOP_REQUESTED",
                                         "IN_PROGRESS",
                                         "ROLLBACK_IN_PROGRESS",
                                         "ROLLBACK_SUCCESSFUL",
                                         "ROLLBACK_FAILED"};
    size_t i;
    json_t *v;
    json_array_foreach(f.status, i, v)
    {
        bool known = false;
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(states); k++)
            known |= barge_streq(json_string_value(v), states[k]);
        if (!known)
            return invalid(err, "Invalid status '%s'.", json_string_value(v));
    }
    if (barge_api_page_init(&pg, in, "maxResults", 20, 100, "nextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *daemon = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_daemon(tx, ctx->srv, barge_json_str(in, "daemonArn", ""), false, &daemon, &key, err) <
            0)
        return -1;
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", key);
    if (pg.after && !barge_str_has_prefix(pg.after, prefix))
        return invalid(err, "nextToken is not one of daemon '%s'.",
                       barge_json_str(in, "daemonArn", ""));
    if (barge_store_scan(tx, ECS_KIND_DDEPLOY, prefix, pg.after, true, 0, deploy_list_one, &f,
                         err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "daemonDeployments", "nextToken");
    return 0;
}

const struct barge_api_op ecs_daemon_ops[] = {
    {"RegisterDaemonTaskDefinition", register_daemon_task_definition},
    {"DescribeDaemonTaskDefinition", describe_daemon_task_definition},
    {"ListDaemonTaskDefinitions", list_daemon_task_definitions},
    {"DeleteDaemonTaskDefinition", delete_daemon_task_definition},
    {"CreateDaemon", create_daemon},
    {"UpdateDaemon", update_daemon},
    {"DeleteDaemon", delete_daemon},
    {"DescribeDaemon", describe_daemon},
    {"ListDaemons", list_daemons},
    {"ListDaemonDeployments", list_daemon_deployments},
    {"DescribeDaemonDeployments", describe_daemon_deployments},
    {"DescribeDaemonRevisions", describe_daemon_revisions},
    {NULL, NULL},
};
