/* run: a one-off task from the config's task definition (registered, a given
 * revision, or the latest), placed like the service's tasks (network
 * configuration, launch type, placement from the service definition), then
 * waited for while the watched container's awslogs stream is printed. Fails
 * when the task cannot start or the watched container exits non-zero, and
 * then exits with that container's exit code so scripts can tell why. */
#include <string.h>

#include "cli/cli.h"
#include "common/json.h"

struct run_opts {
    bool dry_run;
    const char *task_def;
    bool wait;
    const char *wait_until;
    const char *overrides, *overrides_file;
    bool skip_task_definition, latest_task_definition;
    long revision;
    long count;
    const char *watch_container;
    const char *propagate_tags;
    const char *tags;
    const char *client_token;
    bool ebs_delete_on_termination;
};

static char *task_id(const char *arn)
{
    const char *slash = strrchr(arn ? arn : "", '/');
    return barge_xstrdup(slash ? slash + 1 : arn ? arn : "");
}

static char *taskdef_for_run(struct barge_cli_app *app, const struct run_opts *o,
                             struct barge_error **err)
{
    _cleanup_json_ json_t *svc = NULL;
    if ((o->revision > 0 || o->latest_task_definition || o->skip_task_definition) &&
        app->cfg->service && barge_cli_describe_service(app, &svc, err) < 0)
        return NULL;
    if (o->revision > 0 && o->latest_task_definition)
        barge_cli_logl(app, BARGE_CLI_WARN,
                       "--revision and --latest-task-definition are both given; using "
                       "--revision");
    if (o->revision > 0 || o->latest_task_definition || o->skip_task_definition) {
        _cleanup_free_ char *family = NULL;
        if (svc) {
            if (o->skip_task_definition && o->revision <= 0)
                return barge_xstrdup(barge_json_str(svc, "taskDefinition", ""));
            family = barge_cli_td_family(barge_json_str(svc, "taskDefinition", ""));
        } else {
            _cleanup_json_ json_t *td = NULL;
            if (barge_cli_load_taskdef(app, o->task_def, &td, err) < 0)
                return NULL;
            family = barge_xstrdup(barge_json_str(td, "family", ""));
        }
        if (o->revision > 0)
            return barge_xasprintf("%s:%ld", family, o->revision);
        return barge_cli_latest_taskdef(app, family, err);
    }
    _cleanup_json_ json_t *td = NULL;
    if (barge_cli_load_taskdef(app, o->task_def, &td, err) < 0)
        return NULL;
    if (o->dry_run) {
        barge_cli_log(app, "task definition %s will be registered",
                      barge_json_str(td, "family", ""));
        return barge_xasprintf("%s", barge_json_str(td, "family", ""));
    }
    return barge_cli_register(app, td, err);
}

static json_t *parse_tags(const char *s, struct barge_error **err)
{
    json_t *tags = json_array();
    _cleanup_free_ char *copy = barge_xstrdup(s);
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            json_decref(tags);
            barge_error_set(err, BARGE_ERR_INVALID, "--tags: '%s' is not KEY=VALUE", kv);
            return NULL;
        }
        *eq = '\0';
        json_array_append_new(tags, json_pack("{s:s, s:s}", "key", kv, "value", eq + 1));
    }
    return tags;
}

/* {logGroupName, logStreamName: "<prefix>/<name>"} of container `name`'s
 * awslogs configuration, or NULL when it has none with a stream prefix. */
static json_t *awslogs_of(const json_t *td, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, c)
    {
        if (!barge_streq(barge_json_str(c, "name", NULL), name))
            continue;
        json_t *lc = json_object_get(c, "logConfiguration");
        json_t *opt = json_object_get(lc, "options");
        const char *prefix = barge_json_str(opt, "awslogs-stream-prefix", NULL);
        const char *group = barge_json_str(opt, "awslogs-group", NULL);
        if (!barge_streq(barge_json_str(lc, "logDriver", NULL), "awslogs") || !prefix || !group)
            return NULL;
        return json_pack("{s:s, s:s++, s:s?}", "logGroupName", group, "logStreamName", prefix, "/",
                         name, "region", barge_json_str(opt, "awslogs-region", NULL));
    }
    return NULL;
}

struct tail {
    json_t *stream; /* {logGroupName, logStreamName} or NULL */
    char *token;
    bool warned;
};

static void tail_logs(struct barge_cli_app *app, struct tail *t)
{
    if (!t->stream)
        return;
    for (int page = 0; page < 20; page++) {
        json_t *in = json_deep_copy(t->stream);
        json_object_del(in, "region");
        json_object_set_new(in, "startFromHead", json_true());
        if (t->token)
            json_object_set_new(in, "nextToken", json_string(t->token));
        _cleanup_json_ json_t *out = NULL;
        _cleanup_error_ struct barge_error *err = NULL;
        int rc = barge_cli_call_in(app, "logs", barge_json_str(t->stream, "region", NULL),
                                   "GetLogEvents", in, &out, &err);
        json_decref(in);
        if (rc < 0) {
            /* The stream appears only once the container has logged. */
            if (err->code != BARGE_ERR_NOT_FOUND && !t->warned) {
                barge_cli_logl(app, BARGE_CLI_DEBUG, "cannot read logs: %s", err->message);
                t->warned = true;
            }
            return;
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(out, "events"), i, e)
        {
            char ts[20];
            barge_cli_fmt_time((double)barge_json_int(e, "timestamp", 0) / 1000.0, ts);
            barge_cli_out(app, "%s %s\n", ts, barge_json_str(e, "message", ""));
        }
        const char *next = barge_json_str(out, "nextForwardToken", NULL);
        bool same = next && t->token && strcmp(next, t->token) == 0;
        free(t->token);
        t->token = next ? barge_xstrdup(next) : NULL;
        if (same || !json_array_size(json_object_get(out, "events")))
            return;
    }
}

/* Returns 0 when every task reached the wanted state, or -1. */
static int wait_tasks(struct barge_cli_app *app, const json_t *arns, bool until_running,
                      const char *watch, const json_t *td, json_t **final, struct barge_error **err)
{
    double start = barge_cli_now_mono();
    struct tail t = {0};
    _cleanup_free_ char *first_id = task_id(json_string_value(json_array_get(arns, 0)));
    json_t *stream = awslogs_of(td, watch);
    if (stream) {
        const char *s = barge_json_str(stream, "logStreamName", "");
        _cleanup_free_ char *full = barge_xasprintf("%s/%s", s, first_id);
        json_object_set_new(stream, "logStreamName", json_string(full));
        t.stream = stream;
    }
    _cleanup_free_ char *last_status = NULL;
    int rc = -1;
    for (;;) {
        _cleanup_json_ json_t *in =
            json_pack("{s:s, s:O}", "cluster", app->cfg->cluster, "tasks", arns);
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "DescribeTasks", in, &out, err) < 0)
            break;
        tail_logs(app, &t);
        json_t *tasks = json_object_get(out, "tasks");
        bool done = json_array_size(tasks) > 0;
        bool stopped_early = false;
        size_t i;
        json_t *task;
        json_array_foreach(tasks, i, task)
        {
            const char *st = barge_json_str(task, "lastStatus", "");
            if (until_running) {
                if (strcmp(st, "STOPPED") == 0)
                    stopped_early = true;
                else if (strcmp(st, "RUNNING") != 0)
                    done = false;
            } else if (strcmp(st, "STOPPED") != 0) {
                done = false;
            }
        }
        const char *st0 = barge_json_str(json_array_get(tasks, 0), "lastStatus", "");
        if (!last_status || strcmp(last_status, st0) != 0) {
            barge_cli_log(app, "Task status: %s", st0);
            free(last_status);
            last_status = barge_xstrdup(st0);
        }
        if (done || stopped_early) {
            tail_logs(app, &t);
            *final = json_incref(tasks);
            rc = 0;
            break;
        }
        double elapsed = barge_cli_now_mono() - start;
        if (elapsed > app->timeout) {
            barge_error_set(err, BARGE_ERR_IO, "failed to wait for the task: timed out after %.0fs",
                            app->timeout);
            break;
        }
        if (barge_cli_interrupted()) {
            barge_error_set(err, BARGE_ERR_IO, "interrupted");
            break;
        }
        barge_cli_progress(app, "task %s %s %lds", first_id, st0, (long)elapsed);
        barge_cli_sleep(2);
    }
    barge_cli_progress_clear(app);
    json_decref(t.stream);
    free(t.token);
    return rc;
}

/* Judges the finished tasks: returns the process exit code (0 success). */
static int judge(struct barge_cli_app *app, const json_t *tasks, const char *watch,
                 bool until_running, struct barge_error **err)
{
    size_t i;
    json_t *task;
    json_array_foreach(tasks, i, task)
    {
        _cleanup_free_ char *id = task_id(barge_json_str(task, "taskArn", ""));
        const char *code = barge_json_str(task, "stopCode", "");
        const char *reason = barge_json_str(task, "stoppedReason", "");
        if (strcmp(code, "TaskFailedToStart") == 0) {
            barge_error_set(err, BARGE_ERR_CONFLICT, "task %s failed to start: %s", id, reason);
            return 1;
        }
        if (until_running) {
            if (barge_streq(barge_json_str(task, "lastStatus", NULL), "STOPPED")) {
                barge_error_set(err, BARGE_ERR_CONFLICT,
                                "task %s stopped before it was running: %s", id, reason);
                return 1;
            }
            continue;
        }
        size_t j;
        json_t *c;
        json_array_foreach(json_object_get(task, "containers"), j, c)
        {
            if (!barge_streq(barge_json_str(c, "name", NULL), watch))
                continue;
            json_t *ec = json_object_get(c, "exitCode");
            const char *creason = barge_json_str(c, "reason", NULL);
            if (json_is_integer(ec) && json_integer_value(ec) != 0) {
                json_int_t n = json_integer_value(ec);
                if (creason)
                    barge_error_set(err, BARGE_ERR_CONFLICT,
                                    "task %s: container: %s, exit code: %lld, reason: %s", id,
                                    watch, (long long)n, creason);
                else
                    barge_error_set(err, BARGE_ERR_CONFLICT,
                                    "task %s: container: %s, exit code: %lld", id, watch,
                                    (long long)n);
                return n > 0 && n < 256 ? (int)n : 1;
            }
            if (!json_is_integer(ec)) {
                barge_error_set(err, BARGE_ERR_CONFLICT,
                                "task %s: container: %s has no exit code, reason: %s", id, watch,
                                creason   ? creason
                                : *reason ? reason
                                          : "unknown");
                return 1;
            }
        }
    }
    return 0;
}

int barge_cli_cmd_run(struct barge_cli_app *app, int argc, char **argv)
{
    struct run_opts o = {
        .wait = true, .wait_until = "stopped", .count = 1, .ebs_delete_on_termination = true};
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &o.dry_run, NULL, "show what would run, run nothing", false,
         NULL},
        {"task-def", BARGE_CLI_OPT_STR, &o.task_def, "FILE",
         "task definition file (default: the config's)", false, NULL},
        {"wait", BARGE_CLI_OPT_BOOL, &o.wait, NULL, "wait for the task", true, NULL},
        {"wait-until", BARGE_CLI_OPT_STR, &o.wait_until, "running|stopped",
         "what to wait for (default stopped)", false, NULL},
        {"overrides", BARGE_CLI_OPT_STR, &o.overrides, "JSON", "RunTask overrides as JSON", false,
         NULL},
        {"overrides-file", BARGE_CLI_OPT_STR, &o.overrides_file, "FILE",
         "RunTask overrides from a file (templates and Jsonnet allowed)", false, NULL},
        {"skip-task-definition", BARGE_CLI_OPT_BOOL, &o.skip_task_definition, NULL,
         "use the service's (or the latest) task definition", false, NULL},
        {"latest-task-definition", BARGE_CLI_OPT_BOOL, &o.latest_task_definition, NULL,
         "use the family's latest revision", false, NULL},
        {"revision", BARGE_CLI_OPT_INT, &o.revision, "N", "use this revision of the family", false,
         NULL},
        {"count", BARGE_CLI_OPT_INT, &o.count, "N", "how many tasks (1-10, default 1)", false,
         NULL},
        {"watch-container", BARGE_CLI_OPT_STR, &o.watch_container, "NAME",
         "container whose exit code decides (default: the first)", false, NULL},
        {"propagate-tags", BARGE_CLI_OPT_STR, &o.propagate_tags, "SERVICE|TASK_DEFINITION",
         "propagate tags to the task", false, NULL},
        {"tags", BARGE_CLI_OPT_STR, &o.tags, "K=V,...", "tags of the task", false, NULL},
        {"client-token", BARGE_CLI_OPT_STR, &o.client_token, "TOKEN", "idempotency token", false,
         NULL},
        {"ebs-delete-on-termination", BARGE_CLI_OPT_BOOL, &o.ebs_delete_on_termination, NULL,
         "accepted for compatibility", true, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge run [options]",
                        "Run a one-off task and wait for it; exits with the watched container's "
                        "exit code when it fails.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (strcmp(o.wait_until, "running") != 0 && strcmp(o.wait_until, "stopped") != 0) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--wait-until: '%s' is not running or stopped",
                        o.wait_until);
        return barge_cli_fail(app, err);
    }
    if (o.count < 1 || o.count > 10) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--count must be between 1 and 10");
        return barge_cli_fail(app, err);
    }
    barge_cli_log(app, "Running task%s", o.dry_run ? " DRY RUN" : "");
    _cleanup_free_ char *td_arn = taskdef_for_run(app, &o, &err);
    if (!td_arn)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *in = json_pack("{s:s, s:s, s:I}", "cluster", app->cfg->cluster,
                                          "taskDefinition", td_arn, "count", (json_int_t)o.count);
    if (app->cfg->service_definition) {
        _cleanup_json_ json_t *def = NULL;
        if (barge_cli_load_servicedef(app, &def, &err) < 0)
            return barge_cli_fail(app, err);
        static const char *const keys[] = {"networkConfiguration",     "launchType",
                                           "capacityProviderStrategy", "placementConstraints",
                                           "placementStrategy",        "platformVersion",
                                           "enableECSManagedTags",     "enableExecuteCommand"};
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(keys); i++) {
            json_t *v = json_object_get(def, keys[i]);
            if (v)
                json_object_set(in, keys[i], v);
        }
    }
    if (o.overrides || o.overrides_file) {
        json_t *ov = NULL;
        if (o.overrides) {
            json_error_t jerr;
            ov = json_loads(o.overrides, 0, &jerr);
            if (!ov) {
                barge_error_set(&err, BARGE_ERR_INVALID, "--overrides: %s", jerr.text);
                return barge_cli_fail(app, err);
            }
        } else if (barge_cli_load_file(app, o.overrides_file, &ov, &err) < 0) {
            return barge_cli_fail(app, err);
        }
        json_object_set_new(in, "overrides", ov);
    }
    if (o.propagate_tags)
        json_object_set_new(in, "propagateTags", json_string(o.propagate_tags));
    if (o.client_token)
        json_object_set_new(in, "clientToken", json_string(o.client_token));
    if (o.tags) {
        json_t *tags = parse_tags(o.tags, &err);
        if (!tags)
            return barge_cli_fail(app, err);
        json_object_set_new(in, "tags", tags);
    }
    if (o.dry_run) {
        _cleanup_free_ char *text = barge_cli_json_api_dump(in);
        barge_cli_progress_clear(app);
        fputs(text, stderr);
        barge_cli_log(app, "DRY RUN OK");
        return 0;
    }
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(app, "ecs", "RunTask", in, &out, &err) < 0)
        return barge_cli_fail(app, err);
    json_t *failures = json_object_get(out, "failures");
    if (json_array_size(failures)) {
        json_t *f = json_array_get(failures, 0);
        barge_error_set(&err, BARGE_ERR_CONFLICT, "failed to run task: %s %s",
                        barge_json_str(f, "reason", ""), barge_json_str(f, "arn", ""));
        return barge_cli_fail(app, err);
    }
    _cleanup_json_ json_t *arns = json_array();
    size_t i;
    json_t *task;
    json_array_foreach(json_object_get(out, "tasks"), i, task)
    {
        barge_cli_log(app, "Task ARN: %s", barge_json_str(task, "taskArn", ""));
        json_array_append_new(arns, json_string(barge_json_str(task, "taskArn", "")));
    }
    if (!json_array_size(arns)) {
        barge_error_set(&err, BARGE_ERR_CONFLICT, "RunTask started no task");
        return barge_cli_fail(app, err);
    }
    if (!o.wait) {
        barge_cli_log(app, "Run task invoked");
        return 0;
    }
    /* The task definition, for the watched container's default and logs. */
    _cleanup_json_ json_t *din = json_pack("{s:s}", "taskDefinition", td_arn);
    _cleanup_json_ json_t *dout = NULL;
    if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", din, &dout, &err) < 0)
        return barge_cli_fail(app, err);
    json_t *td = json_object_get(dout, "taskDefinition");
    const char *watch = o.watch_container;
    if (!watch)
        watch = barge_json_str(json_array_get(json_object_get(td, "containerDefinitions"), 0),
                               "name", "");
    bool until_running = strcmp(o.wait_until, "running") == 0;
    barge_cli_log(app, "Waiting for the task to be %s", until_running ? "running" : "stopped");
    _cleanup_json_ json_t *final = NULL;
    if (wait_tasks(app, arns, until_running, watch, td, &final, &err) < 0)
        return barge_cli_fail(app, err);
    int exit_code = judge(app, final, watch, until_running, &err);
    if (exit_code != 0) {
        barge_cli_fail(app, err);
        return exit_code;
    }
    barge_cli_log(app, "Run task completed!");
    return 0;
}
