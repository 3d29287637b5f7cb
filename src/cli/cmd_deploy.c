/* deploy, scale, refresh, rollback and wait: ecspresso's rolling-update
 * pipeline. deploy creates the service when it is missing, otherwise picks
 * the task definition (registered from the file, a given revision, the
 * latest, or the current one), updates the service's attributes when the
 * service definition differs from the service, sets the desired count and
 * waits for stability; scale and refresh are deploy with presets, as in
 * ecspresso. */
#include <string.h>

#include "cli/cli.h"
#include "common/json.h"

struct deploy_opts {
    bool dry_run;
    long tasks; /* -1: keep */
    bool skip_task_definition;
    long revision;
    bool latest_task_definition;
    bool force_new_deployment;
    bool wait;
    bool update_service;
    bool suspend_auto_scaling, resume_auto_scaling;
    long auto_scaling_min, auto_scaling_max; /* -1: keep */
    const char *rollback_events;
    bool refresh; /* refresh: keep the desired count whatever the definition says */
};

static int scaling(struct barge_cli_app *app, const struct deploy_opts *o, struct barge_error **err)
{
    if (!o->suspend_auto_scaling && !o->resume_auto_scaling && o->auto_scaling_min < 0 &&
        o->auto_scaling_max < 0)
        return 0;
    if (o->suspend_auto_scaling && o->resume_auto_scaling)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "--suspend-auto-scaling and --resume-auto-scaling are exclusive");
    _cleanup_free_ char *rid =
        barge_xasprintf("service/%s/%s", app->cfg->cluster, app->cfg->service);
    _cleanup_json_ json_t *din =
        json_pack("{s:s, s:[s], s:s}", "ServiceNamespace", "ecs", "ResourceIds", rid,
                  "ScalableDimension", "ecs:service:DesiredCount");
    _cleanup_json_ json_t *dout = NULL;
    if (barge_cli_call(app, "application-autoscaling", "DescribeScalableTargets", din, &dout, err) <
        0)
        return barge_error_wrap(err, "auto scaling");
    if (!json_array_size(json_object_get(dout, "ScalableTargets"))) {
        barge_cli_logl(app, BARGE_CLI_INFO, "no scalable target for %s: auto scaling unchanged",
                       rid);
        return 0;
    }
    json_t *in = json_pack("{s:s, s:s, s:s}", "ServiceNamespace", "ecs", "ResourceId", rid,
                           "ScalableDimension", "ecs:service:DesiredCount");
    if (o->suspend_auto_scaling || o->resume_auto_scaling) {
        bool s = o->suspend_auto_scaling;
        json_object_set_new(in, "SuspendedState",
                            json_pack("{s:b, s:b, s:b}", "DynamicScalingInSuspended", s,
                                      "DynamicScalingOutSuspended", s, "ScheduledScalingSuspended",
                                      s));
        barge_cli_log(app, "%s auto scaling", s ? "Suspending" : "Resuming");
    }
    if (o->auto_scaling_min >= 0)
        json_object_set_new(in, "MinCapacity", json_integer(o->auto_scaling_min));
    if (o->auto_scaling_max >= 0)
        json_object_set_new(in, "MaxCapacity", json_integer(o->auto_scaling_max));
    int rc = 0;
    if (!o->dry_run)
        rc =
            barge_cli_call(app, "application-autoscaling", "RegisterScalableTarget", in, NULL, err);
    json_decref(in);
    return rc;
}

/* The task definition ARN this deploy uses; NULL with *err on failure. In a
 * dry run of a register, returns "" after printing the definition. */
static char *taskdef_for_deploy(struct barge_cli_app *app, const struct deploy_opts *o,
                                const json_t *svc, struct barge_error **err)
{
    if (o->revision > 0 && o->latest_task_definition) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "--revision and --latest-task-definition are exclusive");
        return NULL;
    }
    if (o->revision > 0 || o->latest_task_definition) {
        _cleanup_free_ char *family = NULL;
        if (app->cfg->task_definition) {
            _cleanup_json_ json_t *td = NULL;
            if (barge_cli_load_taskdef(app, NULL, &td, err) < 0)
                return NULL;
            family = barge_xstrdup(barge_json_str(td, "family", ""));
        } else if (svc) {
            family = barge_cli_td_family(barge_json_str(svc, "taskDefinition", ""));
        } else {
            barge_error_set(err, BARGE_ERR_INVALID, "task_definition is not set in the config");
            return NULL;
        }
        if (o->revision > 0) {
            _cleanup_free_ char *name = barge_xasprintf("%s:%ld", family, o->revision);
            _cleanup_json_ json_t *in = json_pack("{s:s}", "taskDefinition", name);
            _cleanup_json_ json_t *out = NULL;
            if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", in, &out, err) < 0)
                return NULL;
            return barge_xstrdup(
                barge_json_str(json_object_get(out, "taskDefinition"), "taskDefinitionArn", name));
        }
        return barge_cli_latest_taskdef(app, family, err);
    }
    if (o->skip_task_definition) {
        if (svc)
            return barge_xstrdup(barge_json_str(svc, "taskDefinition", ""));
        _cleanup_json_ json_t *td = NULL;
        if (barge_cli_load_taskdef(app, NULL, &td, err) < 0)
            return NULL;
        return barge_cli_latest_taskdef(app, barge_json_str(td, "family", ""), err);
    }
    _cleanup_json_ json_t *td = NULL;
    if (barge_cli_load_taskdef(app, NULL, &td, err) < 0)
        return NULL;
    if (o->dry_run) {
        _cleanup_free_ char *text = barge_cli_json_api_dump(td);
        barge_cli_progress_clear(app);
        fputs(text, stderr);
        barge_cli_log(app, "task definition %s will be registered",
                      barge_json_str(td, "family", ""));
        return barge_xstrdup("");
    }
    return barge_cli_register(app, td, err);
}

static void finish_message(struct barge_cli_app *app, const struct deploy_opts *o)
{
    if (o->dry_run)
        barge_cli_log(app, "DRY RUN OK");
    else if (!o->wait)
        barge_cli_log(app, "Service is deployed.");
    else
        barge_cli_log(app, "Service is stable now. Completed!");
}

static const json_t *primary_of(const json_t *resp)
{
    return barge_cli_primary_deployment(json_object_get(resp, "service"));
}

static int create_service(struct barge_cli_app *app, const struct deploy_opts *o,
                          struct barge_error **err)
{
    if (!app->cfg->service_definition)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                               "service '%s' is not found in cluster '%s', and service_definition "
                               "is not set to create it",
                               app->cfg->service, app->cfg->cluster);
    if (o->dry_run)
        barge_cli_log(app, "Service %s is not found; it will be created", app->cfg->service);
    else
        barge_cli_log(app, "Service %s is not found. Creating a new service...", app->cfg->service);
    _cleanup_json_ json_t *def = NULL;
    if (barge_cli_load_servicedef(app, &def, err) < 0)
        return -1;
    _cleanup_free_ char *td = taskdef_for_deploy(app, o, NULL, err);
    if (!td)
        return -1;
    _cleanup_json_ json_t *in = barge_cli_model_project(def, "CreateServiceRequest");
    json_object_set_new(in, "cluster", json_string(app->cfg->cluster));
    json_object_set_new(in, "serviceName", json_string(app->cfg->service));
    if (*td)
        json_object_set_new(in, "taskDefinition", json_string(td));
    const char *strategy = barge_json_str(def, "schedulingStrategy", "REPLICA");
    if (o->tasks >= 0)
        json_object_set_new(in, "desiredCount", json_integer(o->tasks));
    else if (!json_object_get(in, "desiredCount") && strcmp(strategy, "DAEMON") != 0)
        json_object_set_new(in, "desiredCount", json_integer(0));
    if (strcmp(strategy, "DAEMON") == 0)
        json_object_del(in, "desiredCount");
    json_t *dc = json_object_get(in, "desiredCount");
    if (dc)
        barge_cli_log(app, "desired count: %lld", (long long)json_integer_value(dc));
    _cleanup_json_ json_t *pruned = barge_cli_json_prune(in);
    if (o->dry_run) {
        barge_cli_log(app, "service %s will be created", app->cfg->service);
        finish_message(app, o);
        return 0;
    }
    _cleanup_json_ json_t *resp = NULL;
    if (barge_cli_call(app, "ecs", "CreateService", pruned, &resp, err) < 0)
        return barge_error_wrap(err, "cannot create service '%s'", app->cfg->service);
    barge_cli_log(app, "Service is created");
    if (o->wait) {
        barge_cli_sleep(1);
        if (barge_cli_wait_stable(app, NULL, primary_of(resp), err) < 0)
            return -1;
    }
    finish_message(app, o);
    return 0;
}

/* Tags of the definition applied to the service: added, changed and removed
 * ones, as ecspresso manages them. */
static int sync_tags(struct barge_cli_app *app, const json_t *svc, const json_t *def,
                     struct barge_error **err)
{
    json_t *want = json_object_get(def, "tags");
    if (!json_is_array(want))
        return 0;
    json_t *have = json_object_get(svc, "tags");
    _cleanup_json_ json_t *add = json_array();
    _cleanup_json_ json_t *remove = json_array();
    size_t i, j;
    json_t *t, *h;
    json_array_foreach(want, i, t)
    {
        if (barge_cli_tag_ignored(app, barge_json_str(t, "key", "")))
            continue;
        bool same = false;
        json_array_foreach(have, j, h)
        {
            if (barge_streq(barge_json_str(t, "key", NULL), barge_json_str(h, "key", NULL)) &&
                barge_streq(barge_json_str(t, "value", ""), barge_json_str(h, "value", "")))
                same = true;
        }
        if (!same)
            json_array_append(add, t);
    }
    json_array_foreach(have, j, h)
    {
        bool kept = false;
        json_array_foreach(want, i, t)
        {
            if (barge_streq(barge_json_str(t, "key", NULL), barge_json_str(h, "key", NULL)))
                kept = true;
        }
        /* aws:* and ecs:* tags are managed by the service itself. */
        const char *key = barge_json_str(h, "key", "");
        if (!kept && !barge_str_has_prefix(key, "aws:") && !barge_str_has_prefix(key, "ecs:") &&
            !barge_cli_tag_ignored(app, key))
            json_array_append_new(remove, json_string(key));
    }
    const char *arn = barge_json_str(svc, "serviceArn", "");
    if (json_array_size(add)) {
        barge_cli_log(app, "Tagging the service with %zu tag(s)", json_array_size(add));
        _cleanup_json_ json_t *in = json_pack("{s:s, s:O}", "resourceArn", arn, "tags", add);
        if (barge_cli_call(app, "ecs", "TagResource", in, NULL, err) < 0)
            return -1;
    }
    if (json_array_size(remove)) {
        barge_cli_log(app, "Untagging %zu tag(s) from the service", json_array_size(remove));
        _cleanup_json_ json_t *in = json_pack("{s:s, s:O}", "resourceArn", arn, "tagKeys", remove);
        if (barge_cli_call(app, "ecs", "UntagResource", in, NULL, err) < 0)
            return -1;
    }
    return 0;
}

static int deploy(struct barge_cli_app *app, const struct deploy_opts *o, const char *what,
                  struct barge_error **err)
{
    if (!app->cfg->service)
        return barge_error_set(err, BARGE_ERR_INVALID, "service is not set in the config");
    barge_cli_log(app, "Starting %s%s", what, o->dry_run ? " DRY RUN" : "");
    if (o->rollback_events)
        barge_cli_logl(app, BARGE_CLI_WARN,
                       "--rollback-events is for CodeDeploy, which barge does not use; ignored");
    _cleanup_json_ json_t *svc = NULL;
    if (barge_cli_describe_service(app, &svc, err) < 0)
        return -1;
    if (!svc) {
        if (strcmp(what, "deploy") != 0)
            return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                                   "service '%s' is not found in cluster '%s'", app->cfg->service,
                                   app->cfg->cluster);
        return create_service(app, o, err);
    }
    barge_cli_print_status(app, svc, 0);
    const char *ctype = barge_json_str(json_object_get(svc, "deploymentController"), "type", "ECS");
    if (strcmp(ctype, "ECS") != 0)
        return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                               "unsupported deployment controller type: %s", ctype);
    _cleanup_free_ char *td = taskdef_for_deploy(app, o, svc, err);
    if (!td)
        return -1;
    barge_cli_logl(app, BARGE_CLI_INFO, "deployment by ECS rolling update");
    _cleanup_json_ json_t *in =
        json_pack("{s:s, s:s}", "cluster", app->cfg->cluster, "service", app->cfg->service);
    _cleanup_json_ json_t *def = NULL;
    if (o->update_service && app->cfg->service_definition) {
        if (barge_cli_load_servicedef(app, &def, err) < 0)
            return -1;
        _cleanup_json_ json_t *a = barge_cli_service_for_diff(svc, def);
        _cleanup_json_ json_t *b = barge_cli_service_for_diff(def, def);
        json_object_del(a, "tags");
        json_object_del(b, "tags");
        json_object_del(a, "desiredCount");
        json_object_del(b, "desiredCount");
        if (!json_equal(a, b) && o->dry_run) {
            _cleanup_free_ char *at = barge_cli_json_api_dump(a);
            _cleanup_free_ char *bt = barge_cli_json_api_dump(b);
            _cleanup_free_ char *d = barge_cli_diff_unified(
                at, bt, barge_json_str(svc, "serviceArn", ""), app->cfg->service_definition, 3);
            barge_cli_log(app, "service attributes will change");
            barge_cli_progress_clear(app);
            fputs(d ? d : "", stderr);
        } else if (!json_equal(a, b)) {
            barge_cli_log(app, "Updating service attributes...");
            /* The normalised form, ECS's defaults included, so that what
             * diff showed is what the service becomes. */
            _cleanup_json_ json_t *attrs = barge_cli_model_project(b, "UpdateServiceRequest");
            json_object_del(attrs, "desiredCount");
            json_object_del(attrs, "service");
            json_object_del(attrs, "cluster");
            json_object_del(attrs, "taskDefinition");
            json_object_update(in, attrs);
        } else {
            barge_cli_log(app, "service attributes will not change");
        }
    }
    bool daemon = barge_streq(barge_json_str(svc, "schedulingStrategy", NULL), "DAEMON");
    json_t *count = NULL;
    if (!daemon && !o->refresh) {
        if (o->tasks >= 0)
            count = json_integer(o->tasks);
        else if (def && json_is_integer(json_object_get(def, "desiredCount")))
            count = json_incref(json_object_get(def, "desiredCount"));
    }
    if (count) {
        barge_cli_log(app, "desired count: %lld", (long long)json_integer_value(count));
        json_object_set_new(in, "desiredCount", count);
    } else {
        barge_cli_log(app, "desired count: unchanged");
    }
    if (*td)
        json_object_set_new(in, "taskDefinition", json_string(td));
    if (o->force_new_deployment)
        json_object_set_new(in, "forceNewDeployment", json_true());
    if (scaling(app, o, err) < 0)
        return -1;
    if (o->dry_run) {
        finish_message(app, o);
        return 0;
    }
    barge_cli_log(app, "Updating service tasks...");
    _cleanup_json_ json_t *pruned = barge_cli_json_prune(in);
    _cleanup_json_ json_t *resp = NULL;
    if (barge_cli_call(app, "ecs", "UpdateService", pruned, &resp, err) < 0)
        return barge_error_wrap(err, "cannot update service '%s'", app->cfg->service);
    if (def && sync_tags(app, svc, def, err) < 0)
        return -1;
    if (o->wait) {
        barge_cli_sleep(1);
        if (barge_cli_wait_stable(app, svc, primary_of(resp), err) < 0)
            return -1;
    }
    finish_message(app, o);
    return 0;
}

int barge_cli_deploy_run(struct barge_cli_app *app, long tasks, bool wait, bool force_new,
                         struct barge_error **err)
{
    struct deploy_opts o = {.tasks = tasks,
                            .wait = wait,
                            .update_service = true,
                            .force_new_deployment = force_new,
                            .auto_scaling_min = -1,
                            .auto_scaling_max = -1};
    return deploy(app, &o, "deploy", err);
}

#define SCALING_OPTS(o)                                                    \
    {"suspend-auto-scaling",                                               \
     BARGE_CLI_OPT_BOOL,                                                   \
     &(o).suspend_auto_scaling,                                            \
     NULL,                                                                 \
     "suspend application auto scaling of the service",                    \
     false,                                                                \
     NULL},                                                                \
        {"resume-auto-scaling",                                            \
         BARGE_CLI_OPT_BOOL,                                               \
         &(o).resume_auto_scaling,                                         \
         NULL,                                                             \
         "resume application auto scaling of the service",                 \
         false,                                                            \
         NULL},                                                            \
        {"auto-scaling-min",                                               \
         BARGE_CLI_OPT_INT,                                                \
         &(o).auto_scaling_min,                                            \
         "N",                                                              \
         "minimum capacity of the scalable target",                        \
         false,                                                            \
         NULL},                                                            \
    {                                                                      \
        "auto-scaling-max", BARGE_CLI_OPT_INT, &(o).auto_scaling_max, "N", \
            "maximum capacity of the scalable target", false, NULL         \
    }

int barge_cli_cmd_deploy(struct barge_cli_app *app, int argc, char **argv)
{
    struct deploy_opts o = {.tasks = -1,
                            .wait = true,
                            .update_service = true,
                            .auto_scaling_min = -1,
                            .auto_scaling_max = -1};
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &o.dry_run, NULL, "show what would change, change nothing",
         false, NULL},
        {"tasks", BARGE_CLI_OPT_INT, &o.tasks, "N", "desired count (default: the definition's)",
         false, NULL},
        {"skip-task-definition", BARGE_CLI_OPT_BOOL, &o.skip_task_definition, NULL,
         "keep the service's task definition", false, NULL},
        {"revision", BARGE_CLI_OPT_INT, &o.revision, "N",
         "deploy this revision of the family instead of registering", false, NULL},
        {"latest-task-definition", BARGE_CLI_OPT_BOOL, &o.latest_task_definition, NULL,
         "deploy the family's latest revision instead of registering", false, NULL},
        {"force-new-deployment", BARGE_CLI_OPT_BOOL, &o.force_new_deployment, NULL,
         "start a new deployment even when nothing changed", false, NULL},
        {"wait", BARGE_CLI_OPT_BOOL, &o.wait, NULL, "wait for the service to be stable", true,
         NULL},
        {"update-service", BARGE_CLI_OPT_BOOL, &o.update_service, NULL,
         "apply the service definition's attributes", true, NULL},
        SCALING_OPTS(o),
        {"rollback-events", BARGE_CLI_OPT_STR, &o.rollback_events, "LIST",
         "CodeDeploy only; accepted and ignored", false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge deploy [options]",
                        "Register the task definition and deploy it to the service (created when "
                        "missing), then wait until it is stable.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (deploy(app, &o, "deploy", &err) < 0)
        return barge_cli_fail(app, err);
    return 0;
}

int barge_cli_cmd_scale(struct barge_cli_app *app, int argc, char **argv)
{
    struct deploy_opts o = {.tasks = -1,
                            .wait = true,
                            .skip_task_definition = true,
                            .auto_scaling_min = -1,
                            .auto_scaling_max = -1};
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &o.dry_run, NULL, "show what would change, change nothing",
         false, NULL},
        {"tasks", BARGE_CLI_OPT_INT, &o.tasks, "N", "desired count (default: unchanged)", false,
         NULL},
        {"wait", BARGE_CLI_OPT_BOOL, &o.wait, NULL, "wait for the service to be stable", true,
         NULL},
        SCALING_OPTS(o),
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge scale [--tasks N] [options]",
                        "Change the service's desired count and wait until it is stable.", opts,
                        argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    /* Without --tasks the desired count stays as it is (ecspresso 2): scale
     * then only applies the auto scaling flags, or waits. */
    struct barge_error *err = NULL;
    if (deploy(app, &o, "scale", &err) < 0)
        return barge_cli_fail(app, err);
    return 0;
}

int barge_cli_cmd_refresh(struct barge_cli_app *app, int argc, char **argv)
{
    struct deploy_opts o = {.tasks = -1,
                            .wait = true,
                            .skip_task_definition = true,
                            .force_new_deployment = true,
                            .refresh = true,
                            .auto_scaling_min = -1,
                            .auto_scaling_max = -1};
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &o.dry_run, NULL, "show what would change, change nothing",
         false, NULL},
        {"wait", BARGE_CLI_OPT_BOOL, &o.wait, NULL, "wait for the service to be stable", true,
         NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge refresh [options]",
                        "Replace the service's tasks with new ones (force a new deployment) and "
                        "wait until it is stable.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (deploy(app, &o, "refresh", &err) < 0)
        return barge_cli_fail(app, err);
    return 0;
}

/* The revision before `current` among the family's ACTIVE revisions. */
static char *rollback_target(struct barge_cli_app *app, const char *current,
                             struct barge_error **err)
{
    _cleanup_free_ char *family = barge_cli_td_family(current);
    _cleanup_free_ char *token = NULL;
    bool found = false;
    for (;;) {
        _cleanup_json_ json_t *in =
            json_pack("{s:s, s:s, s:s, s:i}", "familyPrefix", family, "sort", "DESC", "status",
                      "ACTIVE", "maxResults", 100);
        if (token)
            json_object_set_new(in, "nextToken", json_string(token));
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "ListTaskDefinitions", in, &out, err) < 0)
            return NULL;
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(out, "taskDefinitionArns"), i, a)
        {
            const char *arn = json_string_value(a);
            _cleanup_free_ char *f = barge_cli_td_family(arn);
            /* familyPrefix also lists "web-api" for "web". */
            if (strcmp(f, family) != 0)
                continue;
            if (found)
                return barge_xstrdup(arn);
            if (strcmp(arn, current) == 0)
                found = true;
        }
        free(token);
        token = NULL;
        const char *next = barge_json_str(out, "nextToken", NULL);
        if (!next)
            break;
        token = barge_xstrdup(next);
    }
    barge_error_set(err, BARGE_ERR_NOT_FOUND,
                    "rollback target is not found: no ACTIVE revision "
                    "of '%s' before '%s'",
                    family, current);
    return NULL;
}

int barge_cli_cmd_rollback(struct barge_cli_app *app, int argc, char **argv)
{
    bool dry_run = false, deregister = true, wait = true;
    const char *rollback_events = NULL;
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &dry_run, NULL, "show what would change, change nothing",
         false, NULL},
        {"deregister-task-definition", BARGE_CLI_OPT_BOOL, &deregister, NULL,
         "deregister the rolled-back task definition", true, NULL},
        {"wait", BARGE_CLI_OPT_BOOL, &wait, NULL, "wait for the service to be stable", true, NULL},
        {"rollback-events", BARGE_CLI_OPT_STR, &rollback_events, "LIST",
         "CodeDeploy only; accepted and ignored", false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge rollback [options]",
                        "Roll the service back to the previous revision of its task definition.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (deregister && !wait) {
        barge_error_set(&err, BARGE_ERR_INVALID,
                        "--deregister-task-definition needs waiting: add "
                        "--no-deregister-task-definition to use --no-wait");
        return barge_cli_fail(app, err);
    }
    barge_cli_log(app, "Starting rollback%s", dry_run ? " DRY RUN" : "");
    _cleanup_json_ json_t *svc = NULL;
    if (barge_cli_describe_service(app, &svc, &err) < 0)
        return barge_cli_fail(app, err);
    if (!svc) {
        barge_error_set(&err, BARGE_ERR_NOT_FOUND, "service '%s' is not found in cluster '%s'",
                        app->cfg->service, app->cfg->cluster);
        return barge_cli_fail(app, err);
    }
    barge_cli_print_status(app, svc, 0);
    const char *current = barge_json_str(svc, "taskDefinition", "");
    _cleanup_free_ char *target = rollback_target(app, current, &err);
    if (!target)
        return barge_cli_fail(app, err);
    _cleanup_free_ char *tname = barge_cli_td_name(target);
    _cleanup_free_ char *cname = barge_cli_td_name(current);
    barge_cli_log(app, "Rolling back to %s", tname);
    if (dry_run) {
        if (deregister)
            barge_cli_log(app, "%s will be deregistered", cname);
        barge_cli_log(app, "DRY RUN OK");
        return 0;
    }
    _cleanup_json_ json_t *in = json_pack("{s:s, s:s, s:s}", "cluster", app->cfg->cluster,
                                          "service", app->cfg->service, "taskDefinition", target);
    _cleanup_json_ json_t *resp = NULL;
    if (barge_cli_call(app, "ecs", "UpdateService", in, &resp, &err) < 0)
        return barge_cli_fail(app, err);
    if (wait) {
        barge_cli_sleep(1);
        if (barge_cli_wait_stable(app, svc, primary_of(resp), &err) < 0)
            return barge_cli_fail(app, err);
    }
    if (deregister) {
        barge_cli_log(app, "Deregistering the rolled-back task definition %s", cname);
        _cleanup_json_ json_t *din = json_pack("{s:s}", "taskDefinition", current);
        if (barge_cli_call(app, "ecs", "DeregisterTaskDefinition", din, NULL, &err) < 0)
            return barge_cli_fail(app, err);
        barge_cli_log(app, "%s was deregistered successfully", cname);
    }
    barge_cli_log(app, wait ? "Service is stable now. Completed!" : "Service is deployed.");
    return 0;
}

int barge_cli_cmd_wait(struct barge_cli_app *app, int argc, char **argv)
{
    int code;
    if (barge_cli_start(app, "barge wait [options]",
                        "Wait until the service is stable (one deployment, running == desired).",
                        NULL, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (barge_cli_describe_service(app, &svc, &err) < 0)
        return barge_cli_fail(app, err);
    if (!svc) {
        barge_error_set(&err, BARGE_ERR_NOT_FOUND, "service '%s' is not found in cluster '%s'",
                        app->cfg->service, app->cfg->cluster);
        return barge_cli_fail(app, err);
    }
    const json_t *dep = barge_cli_primary_deployment(svc);
    if (barge_cli_wait_stable(
            app, svc,
            barge_streq(barge_json_str(dep, "rolloutState", NULL), "IN_PROGRESS") ? dep : NULL,
            &err) < 0)
        return barge_cli_fail(app, err);
    barge_cli_log(app, "Service is stable now. Completed!");
    return 0;
}
