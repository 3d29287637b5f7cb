/* Service helpers the commands share: describing the config's service,
 * ecspresso's status block and deployment lines, registering task
 * definitions, and waiting for a stable service. The wait polls
 * DescribeServices, prints each new event once (tracked by event id, so
 * clock skew between client and server does not matter), logs deployment
 * lines when they change, draws a live status line on a terminal, and, unlike
 * ecspresso, stops at once when the deployment it waits for fails or is rolled
 * back by the circuit breaker. */
#include <string.h>

#include "cli/cli.h"
#include "common/json.h"

int barge_cli_describe_service(struct barge_cli_app *app, json_t **svc, struct barge_error **err)
{
    *svc = NULL;
    if (!app->cfg->service)
        return barge_error_set(err, BARGE_ERR_INVALID, "service is not set in the config");
    _cleanup_json_ json_t *in = json_pack("{s:s, s:[s], s:[s]}", "cluster", app->cfg->cluster,
                                          "services", app->cfg->service, "include", "TAGS");
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(app, "ecs", "DescribeServices", in, &out, err) < 0)
        return -1;
    json_t *s = json_array_get(json_object_get(out, "services"), 0);
    if (s && !barge_streq(barge_json_str(s, "status", NULL), "INACTIVE"))
        *svc = json_incref(s);
    return 0;
}

char *barge_cli_td_name(const char *arn)
{
    if (!arn)
        return barge_xstrdup("");
    const char *slash = strrchr(arn, '/');
    return barge_xstrdup(slash ? slash + 1 : arn);
}

char *barge_cli_td_family(const char *arn)
{
    _cleanup_free_ char *name = barge_cli_td_name(arn);
    char *colon = strrchr(name, ':');
    if (colon)
        *colon = '\0';
    return barge_xstrdup(name);
}

char *barge_cli_format_deployment(const json_t *dep)
{
    _cleanup_free_ char *td = barge_cli_td_name(barge_json_str(dep, "taskDefinition", NULL));
    const char *rollout = barge_json_str(dep, "rolloutState", NULL);
    _cleanup_free_ char *tail =
        rollout ? barge_xasprintf(" %s(%s)", rollout, barge_json_str(dep, "rolloutStateReason", ""))
                : barge_xstrdup("");
    return barge_xasprintf("%8s %s desired:%lld pending:%lld running:%lld%s",
                           barge_json_str(dep, "status", ""), td,
                           (long long)barge_json_int(dep, "desiredCount", 0),
                           (long long)barge_json_int(dep, "pendingCount", 0),
                           (long long)barge_json_int(dep, "runningCount", 0), tail);
}

static void print_event(struct barge_cli_app *app, const json_t *ev)
{
    char ts[20];
    barge_cli_fmt_time(json_number_value(json_object_get(ev, "createdAt")), ts);
    barge_cli_out(app, "%s %s\n", ts, barge_json_str(ev, "message", ""));
}

static void print_autoscaling(struct barge_cli_app *app, const json_t *svc)
{
    _cleanup_free_ char *rid =
        barge_xasprintf("service/%s/%s", app->cfg->cluster, barge_json_str(svc, "serviceName", ""));
    _cleanup_json_ json_t *in =
        json_pack("{s:s, s:[s]}", "ServiceNamespace", "ecs", "ResourceIds", rid);
    _cleanup_json_ json_t *out = NULL;
    _cleanup_error_ struct barge_error *err = NULL;
    /* Optional: a server without Application Auto Scaling just has none. */
    if (barge_cli_call(app, "application-autoscaling", "DescribeScalableTargets", in, &out, &err) <
        0)
        return;
    json_t *t = json_array_get(json_object_get(out, "ScalableTargets"), 0);
    if (!t)
        return;
    json_t *ss = json_object_get(t, "SuspendedState");
    barge_cli_out(app, "AutoScaling:\n  Capacity min:%lld max:%lld\n",
                  (long long)barge_json_int(t, "MinCapacity", 0),
                  (long long)barge_json_int(t, "MaxCapacity", 0));
    barge_cli_out(app, "  Suspended in:%s out:%s scheduled:%s\n",
                  barge_json_bool(ss, "DynamicScalingInSuspended", false) ? "true" : "false",
                  barge_json_bool(ss, "DynamicScalingOutSuspended", false) ? "true" : "false",
                  barge_json_bool(ss, "ScheduledScalingSuspended", false) ? "true" : "false");
    _cleanup_json_ json_t *pin =
        json_pack("{s:s, s:s}", "ServiceNamespace", "ecs", "ResourceId", rid);
    _cleanup_json_ json_t *pout = NULL;
    _cleanup_error_ struct barge_error *perr = NULL;
    if (barge_cli_call(app, "application-autoscaling", "DescribeScalingPolicies", pin, &pout,
                       &perr) == 0) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(pout, "ScalingPolicies"), i, p)
        {
            barge_cli_out(app, "  Policy name:%s type:%s\n", barge_json_str(p, "PolicyName", ""),
                          barge_json_str(p, "PolicyType", ""));
        }
    }
}

void barge_cli_print_status(struct barge_cli_app *app, const json_t *svc, int events)
{
    _cleanup_free_ char *td = barge_cli_td_name(barge_json_str(svc, "taskDefinition", NULL));
    barge_cli_out(app, "Service: %s\nCluster: %s\nTaskDefinition: %s\n",
                  barge_json_str(svc, "serviceName", ""), app->cfg->cluster, td);
    json_t *deps = json_object_get(svc, "deployments");
    if (json_array_size(deps)) {
        barge_cli_out(app, "Deployments:\n");
        size_t i;
        json_t *d;
        json_array_foreach(deps, i, d)
        {
            _cleanup_free_ char *line = barge_cli_format_deployment(d);
            barge_cli_out(app, "  %s\n", line);
        }
    }
    print_autoscaling(app, svc);
    barge_cli_print_target_health(app, svc);
    barge_cli_out(app, "Events:\n");
    json_t *evs = json_object_get(svc, "events");
    size_t n = json_array_size(evs);
    size_t show = events < 0 ? 0 : (size_t)events < n ? (size_t)events : n;
    /* The API lists events newest first; print the newest `show`, oldest first. */
    for (size_t i = show; i > 0; i--)
        print_event(app, json_array_get(evs, i - 1));
}

char *barge_cli_register(struct barge_cli_app *app, const json_t *td, struct barge_error **err)
{
    barge_cli_log(app, "Registering a new task definition...");
    _cleanup_json_ json_t *in = barge_cli_json_prune(td);
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(app, "ecs", "RegisterTaskDefinition", in, &out, err) < 0) {
        barge_error_wrap(err, "cannot register the task definition");
        return NULL;
    }
    const char *arn =
        barge_json_str(json_object_get(out, "taskDefinition"), "taskDefinitionArn", NULL);
    if (!arn) {
        barge_error_set(err, BARGE_ERR_INTERNAL, "RegisterTaskDefinition returned no ARN");
        return NULL;
    }
    _cleanup_free_ char *name = barge_cli_td_name(arn);
    barge_cli_log(app, "Task definition is registered %s", name);
    return barge_xstrdup(arn);
}

char *barge_cli_latest_taskdef(struct barge_cli_app *app, const char *family,
                               struct barge_error **err)
{
    /* DescribeTaskDefinition with a bare family names its latest ACTIVE
     * revision exactly, where ListTaskDefinitions' familyPrefix would also
     * match "web-api" for "web". */
    _cleanup_json_ json_t *in = json_pack("{s:s}", "taskDefinition", family);
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", in, &out, err) < 0) {
        barge_error_wrap(err, "no active revision of task definition family '%s'", family);
        return NULL;
    }
    return barge_xstrdup(
        barge_json_str(json_object_get(out, "taskDefinition"), "taskDefinitionArn", ""));
}

static char *fmt_elapsed(double s)
{
    long t = (long)s;
    if (t >= 3600)
        return barge_xasprintf("%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    return barge_xasprintf("%ld:%02ld", t / 60, t % 60);
}

char *barge_cli_fmt_duration(double s)
{
    long t = (long)s;
    if (t >= 3600)
        return barge_xasprintf("%ldh%ldm%lds", t / 3600, (t / 60) % 60, t % 60);
    if (t >= 60)
        return barge_xasprintf("%ldm%lds", t / 60, t % 60);
    return barge_xasprintf("%lds", t);
}

const json_t *barge_cli_primary_deployment(const json_t *svc)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(svc, "deployments"), i, d)
    {
        if (barge_streq(barge_json_str(d, "status", NULL), "PRIMARY"))
            return d;
    }
    return json_array_get(json_object_get(svc, "deployments"), 0);
}

/* The live status line: counts, rollout state and time since the wait began. */
static void draw(struct barge_cli_app *app, const json_t *svc, const json_t *primary, double start)
{
    _cleanup_free_ char *el = fmt_elapsed(barge_cli_now_mono() - start);
    barge_cli_progress(app, "%s/%s desired:%lld running:%lld pending:%lld %s %s", app->cfg->service,
                       app->cfg->cluster, (long long)barge_json_int(svc, "desiredCount", 0),
                       (long long)barge_json_int(svc, "runningCount", 0),
                       (long long)barge_json_int(svc, "pendingCount", 0),
                       barge_json_str(primary, "rolloutState", "-"), el);
}

static const json_t *find_deployment(const json_t *svc, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(svc, "deployments"), i, d)
    {
        if (barge_streq(barge_json_str(d, "id", NULL), id))
            return d;
    }
    return NULL;
}

static char *event_key(const json_t *ev)
{
    const char *id = barge_json_str(ev, "id", NULL);
    return id ? barge_xstrdup(id)
              : barge_xasprintf("%f %s", json_number_value(json_object_get(ev, "createdAt")),
                                barge_json_str(ev, "message", ""));
}

/* The error for a deployment that failed or was replaced: its reason from
 * the deployment or, once it is gone, from the service's events. */
static int deployment_failed(const json_t *svc, const char *id, const json_t *dep,
                             const json_t *primary, const char *td, struct barge_error **err)
{
    _cleanup_free_ char *reason = NULL;
    if (dep && barge_json_str(dep, "rolloutStateReason", NULL))
        reason = barge_xstrdup(barge_json_str(dep, "rolloutStateReason", NULL));
    _cleanup_free_ char *tag = barge_xasprintf("(deployment %s) deployment failed: ", id);
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(svc, "events"), i, ev)
    {
        const char *m = strstr(barge_json_str(ev, "message", ""), tag);
        if (!reason && m)
            reason = barge_xstrdup(m + strlen(tag));
    }
    if (!reason)
        reason = barge_xstrdup(dep ? "the deployment failed" : "the deployment was replaced");
    /* The deployment's own reason and the service event say the same in two
     * forms; print one, whichever the last DescribeServices showed. */
    static const char cb_prefix[] = "ECS deployment circuit breaker: ";
    if (barge_str_has_prefix(reason, cb_prefix))
        memmove(reason, reason + strlen(cb_prefix), strlen(reason + strlen(cb_prefix)) + 1);
    size_t rn = strlen(reason);
    if (rn > 0 && reason[rn - 1] == '.')
        reason[rn - 1] = '\0';
    bool rolled_back = primary && dep != primary;
    _cleanup_free_ char *back = barge_cli_td_name(barge_json_str(primary, "taskDefinition", NULL));
    if (rolled_back)
        return barge_error_set(err, BARGE_ERR_CONFLICT,
                               "deployment %s of %s failed: %s; the circuit breaker rolled the "
                               "service back to %s",
                               id, td && *td ? td : "the new task definition", reason, back);
    return barge_error_set(err, BARGE_ERR_CONFLICT, "deployment %s of %s failed: %s", id,
                           td && *td ? td : "the new task definition", reason);
}

int barge_cli_wait_stable(struct barge_cli_app *app, const json_t *before, const json_t *deployment,
                          struct barge_error **err)
{
    const char *deployment_id = barge_json_str(deployment, "id", NULL);
    _cleanup_free_ char *dep_td =
        barge_cli_td_name(barge_json_str(deployment, "taskDefinition", NULL));
    barge_cli_log(app, "Waiting for service stable...(it will take a few minutes)");
    double start = barge_cli_now_mono();
    _cleanup_json_ json_t *seen = json_object();
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(before, "events"), k, e)
    {
        _cleanup_free_ char *key = event_key(e);
        json_object_set_new(seen, key, json_true());
    }
    _cleanup_free_ char *last_lines = NULL;
    /* Poll every 2 s: fast enough to follow barged's seconds-long rollouts,
     * gentle enough for ECS's DescribeServices rate limit. */
    const double poll = 2.0;
    for (;;) {
        if (barge_cli_interrupted())
            return barge_error_set(err, BARGE_ERR_IO, "interrupted");
        _cleanup_json_ json_t *svc = NULL;
        if (barge_cli_describe_service(app, &svc, err) < 0)
            return barge_error_wrap(err, "failed to wait for service stable");
        if (!svc)
            return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                                   "failed to wait for service stable: service '%s' is missing "
                                   "or inactive",
                                   app->cfg->service);
        if (barge_streq(barge_json_str(svc, "status", NULL), "DRAINING"))
            return barge_error_set(err, BARGE_ERR_CONFLICT,
                                   "failed to wait for service stable: service '%s' is draining",
                                   app->cfg->service);
        /* Events newer than the wait's start, oldest first. */
        json_t *evs = json_object_get(svc, "events");
        for (size_t i = json_array_size(evs); i > 0; i--) {
            json_t *ev = json_array_get(evs, i - 1);
            _cleanup_free_ char *key = event_key(ev);
            if (json_object_get(seen, key))
                continue;
            json_object_set_new(seen, key, json_true());
            print_event(app, ev);
        }
        char *lines = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&lines, &len);
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(svc, "deployments"), i, d)
        {
            _cleanup_free_ char *l = barge_cli_format_deployment(d);
            fprintf(o, "%s\n", l);
        }
        fclose(o);
        if (!last_lines || strcmp(lines, last_lines) != 0) {
            char *save = NULL;
            _cleanup_free_ char *copy = barge_xstrdup(lines);
            for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                barge_cli_log(app, "%s", l);
            free(last_lines);
            last_lines = lines;
        } else {
            free(lines);
        }
        if (deployment_id) {
            const json_t *dep = find_deployment(svc, deployment_id);
            const json_t *primary = barge_cli_primary_deployment(svc);
            if (dep) {
                free(dep_td);
                dep_td = barge_cli_td_name(barge_json_str(dep, "taskDefinition", NULL));
            }
            if (!dep || barge_streq(barge_json_str(dep, "rolloutState", NULL), "FAILED")) {
                barge_cli_progress_clear(app);
                return deployment_failed(svc, deployment_id, dep, primary, dep_td, err);
            }
        }
        size_t n_deps = json_array_size(json_object_get(svc, "deployments"));
        json_int_t running = barge_json_int(svc, "runningCount", 0);
        json_int_t desired = barge_json_int(svc, "desiredCount", 0);
        const json_t *primary = barge_cli_primary_deployment(svc);
        /* Drawn at every poll, the last one included, so that a terminal
         * always saw the state the wait ended on. */
        draw(app, svc, primary, start);
        if (n_deps == 1 && running == desired) {
            barge_cli_progress_clear(app);
            return 0;
        }
        double elapsed = barge_cli_now_mono() - start;
        if (elapsed > app->timeout) {
            barge_cli_progress_clear(app);
            _cleanup_free_ char *t = barge_cli_fmt_duration(app->timeout);
            return barge_error_set(err, BARGE_ERR_IO,
                                   "failed to wait for service stable: timed out after %s", t);
        }
        for (double slept = 0; slept < poll && !barge_cli_interrupted(); slept += 0.5) {
            barge_cli_sleep(0.5);
            draw(app, svc, primary, start);
        }
    }
}
