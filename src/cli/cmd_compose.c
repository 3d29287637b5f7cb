/* compose: docker-compose import. `convert` prints the task and service
 * definitions (or writes them with an ecspresso.yml, so the project can move
 * on to barge deploy); `up` registers the task definition and deploys it as
 * the service named after the project (created when missing); `down` deletes
 * that service. */
#include <string.h>

#include "cli/cli.h"
#include "cli/compose.h"
#include "cli/yaml.h"
#include "common/json.h"

struct compose_opts {
    json_t *files;
    const char *ecs_params;
    const char *project;
    const char *output_dir;
    long tasks;
    bool wait;
    bool force;
};

static void warn_cb(void *ud, const char *message)
{
    barge_cli_logl(ud, BARGE_CLI_WARN, "%s", message);
}

static int convert(struct barge_cli_app *app, const struct compose_opts *o, json_t **td,
                   json_t **sd, char **project, struct barge_error **err)
{
    size_t n = json_array_size(o->files);
    const char **files = barge_xcalloc(n ? n : 1, sizeof(char *));
    static const char *const defaults[] = {"docker-compose.yml", "docker-compose.yaml",
                                           "compose.yml", "compose.yaml"};
    if (!n) {
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(defaults) && !n; i++)
            if (access(defaults[i], F_OK) == 0)
                files[n++] = defaults[i];
        if (!n) {
            free(files);
            return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                                   "no docker-compose.yml or compose.yml here (use -f)");
        }
    } else {
        for (size_t i = 0; i < n; i++)
            files[i] = json_string_value(json_array_get(o->files, i));
    }
    const char *params = o->ecs_params;
    if (!params && access("ecs-params.yml", F_OK) == 0)
        params = "ecs-params.yml";
    struct barge_cli_compose_opts co = {files, n, params, o->project, warn_cb, app};
    int rc = barge_cli_compose_convert(&co, td, sd, project, err);
    free(files);
    return rc;
}

static int write_out(struct barge_cli_app *app, const char *dir, const char *name, const char *text,
                     struct barge_error **err)
{
    _cleanup_free_ char *path = barge_xasprintf("%s/%s", dir, name);
    if (barge_mkdir_p(dir, 0755) < 0 || barge_write_file_atomic(path, text, strlen(text), 0644) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    barge_cli_log(app, "save %s", path);
    return 0;
}

int barge_cli_cmd_compose(struct barge_cli_app *app, int argc, char **argv)
{
    struct compose_opts o = {.tasks = -1, .wait = true};
    const struct barge_cli_opt opts[] = {
        {"file", BARGE_CLI_OPT_LIST, &o.files, "FILE",
         "compose file (repeatable; default docker-compose.yml or compose.yml)", false, NULL},
        {"ecs-params", BARGE_CLI_OPT_STR, &o.ecs_params, "FILE",
         "ECS parameters (default ecs-params.yml when present)", false, NULL},
        {"project-name", BARGE_CLI_OPT_STR, &o.project, "NAME",
         "project name: task definition family and service name (default: the directory)", false,
         NULL},
        {"output-dir", BARGE_CLI_OPT_STR, &o.output_dir, "DIR",
         "convert: write ecspresso.yml and the definitions there instead of printing", false, NULL},
        {"tasks", BARGE_CLI_OPT_INT, &o.tasks, "N",
         "up: desired count (default deploy.replicas, else 1)", false, NULL},
        {"wait", BARGE_CLI_OPT_BOOL, &o.wait, NULL, "up: wait for the service to be stable", true,
         NULL},
        {"force-new-deployment", BARGE_CLI_OPT_BOOL, &o.force, NULL,
         "up: replace the tasks even when nothing changed", false, NULL},
        {NULL},
    };
    /* -f and -p are compose's short options; map them to the long ones. */
    char **args = barge_xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0)
            args[i] = "--file";
        else if (strcmp(argv[i], "-p") == 0)
            args[i] = "--project-name";
        else
            args[i] = argv[i];
    }
    int code;
    char **pos = NULL;
    size_t n_pos = 0;
    int started = barge_cli_start(app, "barge compose convert|up|down [options]",
                                  "docker-compose import: convert prints (or writes) the task and "
                                  "service definitions, up registers and deploys them as the "
                                  "project's service, down deletes that service.",
                                  opts, argc, args, false, 1, &pos, &n_pos, &code);
    free(args);
    if (started < 0)
        return code;
    struct barge_error *err = NULL;
    const char *sub = n_pos ? pos[0] : NULL;
    free(pos);
    if (!sub ||
        (strcmp(sub, "convert") != 0 && strcmp(sub, "up") != 0 && strcmp(sub, "down") != 0)) {
        fprintf(stderr, "barge: compose needs convert, up or down (see 'barge compose --help')\n");
        json_decref(o.files);
        return 2;
    }
    json_t *td = NULL, *sd = NULL;
    char *project = NULL;
    int rc = 0;
    if (convert(app, &o, &td, &sd, &project, &err) < 0) {
        json_decref(o.files);
        return barge_cli_fail(app, err);
    }
    json_decref(o.files);
    if (o.tasks >= 0)
        json_object_set_new(sd, "desiredCount", json_integer(o.tasks));
    if (strcmp(sub, "convert") == 0) {
        if (o.output_dir) {
            _cleanup_free_ char *tdt = barge_cli_json_api_dump(td);
            _cleanup_free_ char *sdt = barge_cli_json_api_dump(sd);
            json_t *cfg =
                json_pack("{s:s, s:s, s:s, s:s, s:s}", "cluster", app->cfg->cluster, "service",
                          project, "service_definition", "ecs-service-def.json", "task_definition",
                          "ecs-task-def.json", "timeout", "10m0s");
            _cleanup_free_ char *cfgt = barge_cli_yaml_emit(cfg);
            json_decref(cfg);
            if (write_out(app, o.output_dir, "ecs-task-def.json", tdt, &err) < 0 ||
                write_out(app, o.output_dir, "ecs-service-def.json", sdt, &err) < 0 ||
                write_out(app, o.output_dir, "ecspresso.yml", cfgt, &err) < 0)
                rc = barge_cli_fail(app, err);
        } else {
            json_t *both = json_pack("{s:O, s:O}", "taskDefinition", td, "serviceDefinition", sd);
            _cleanup_free_ char *text = barge_cli_json_api_dump(both);
            json_decref(both);
            barge_cli_out(app, "%s", text);
        }
    } else {
        /* The project stands in for the config: its service and definitions. */
        free(app->cfg->service);
        app->cfg->service = barge_xstrdup(project);
        free(app->cfg->task_definition);
        app->cfg->task_definition = barge_xstrdup("docker-compose");
        free(app->cfg->service_definition);
        app->cfg->service_definition = barge_xstrdup("docker-compose");
        app->taskdef_doc = json_incref(td);
        app->servicedef_doc = json_incref(sd);
        if (strcmp(sub, "up") == 0) {
            if (barge_cli_deploy_run(app, o.tasks, o.wait, o.force, &err) < 0)
                rc = barge_cli_fail(app, err);
        } else {
            barge_cli_log(app, "Deleting service %s", project);
            _cleanup_json_ json_t *in = json_pack("{s:s, s:s, s:b}", "cluster", app->cfg->cluster,
                                                  "service", project, "force", 1);
            if (barge_cli_call(app, "ecs", "DeleteService", in, NULL, &err) < 0)
                rc = barge_cli_fail(app, err);
            else
                barge_cli_log(app, "Service is deleted");
        }
    }
    json_decref(td);
    json_decref(sd);
    free(project);
    return rc;
}
