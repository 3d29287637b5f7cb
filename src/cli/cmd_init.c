/* init: writes a config, a service definition and a task definition from a
 * service (or a task definition) that already exists, so that barge (or
 * ecspresso) can take it over. The definitions are the described objects
 * projected onto the CreateService and RegisterTaskDefinition inputs, so
 * that deploying them right away changes nothing. */
#include <libgen.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/yaml.h"
#include "common/json.h"

/* Writes path (relative to dir) unless it exists and overwriting was not
 * allowed; asks on a terminal. */
static int save(struct barge_cli_app *app, const char *dir, const char *path, const char *what,
                const char *text, bool force, struct barge_error **err)
{
    _cleanup_free_ char *full = path[0] == '/' || !strcmp(dir, ".")
                                    ? barge_xstrdup(path)
                                    : barge_xasprintf("%s/%s", dir, path);
    if (!force && access(full, F_OK) == 0) {
        _cleanup_free_ char *q = barge_xasprintf("Overwrite existing file %s?", full);
        if (!barge_cli_confirm(app, q)) {
            barge_cli_log(app, "skip %s %s", what, full);
            return 0;
        }
    }
    _cleanup_free_ char *pdir = barge_xstrdup(full);
    if (barge_mkdir_p(dirname(pdir), 0755) < 0 ||
        barge_write_file_atomic(full, text, strlen(text), 0644) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", full);
    barge_cli_log(app, "save %s to %s", what, full);
    return 0;
}

static char *jsonnet_name(const char *path, bool jsonnet)
{
    if (jsonnet && barge_str_has_suffix(path, ".json"))
        return barge_xasprintf("%snet", path);
    return barge_xstrdup(path);
}

int barge_cli_cmd_init(struct barge_cli_app *app, int argc, char **argv)
{
    const char *cluster = "default", *service = NULL, *taskdef = NULL;
    const char *td_path = "ecs-task-def.json", *sd_path = "ecs-service-def.json";
    bool sort = false, force = false, jsonnet = false;
    const struct barge_cli_opt opts[] = {
        {"cluster", BARGE_CLI_OPT_STR, &cluster, "NAME", "cluster (default 'default')", false,
         NULL},
        {"service", BARGE_CLI_OPT_STR, &service, "NAME", "the service to take over", false, NULL},
        {"task-definition", BARGE_CLI_OPT_STR, &taskdef, "FAMILY:REV",
         "a task definition to take over, without a service", false, NULL},
        {"task-definition-path", BARGE_CLI_OPT_STR, &td_path, "FILE",
         "where to write the task definition (default ecs-task-def.json)", false, NULL},
        {"service-definition-path", BARGE_CLI_OPT_STR, &sd_path, "FILE",
         "where to write the service definition (default ecs-service-def.json)", false, NULL},
        {"sort", BARGE_CLI_OPT_BOOL, &sort, NULL,
         "sort containers, environment and the like in the task definition", true, NULL},
        {"force-overwrite", BARGE_CLI_OPT_BOOL, &force, NULL, "overwrite existing files", false,
         NULL},
        {"jsonnet", BARGE_CLI_OPT_BOOL, &jsonnet, NULL,
         "write .jsonnet definitions and a Jsonnet config", false, NULL},
        {NULL},
    };
    int code;
    app->config_is_output = true;
    if (barge_cli_start(app, "barge init (--service NAME | --task-definition FAMILY:REV) [options]",
                        "Write ecspresso.yml and the definitions from an existing service.", opts,
                        argc, argv, false, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (!service == !taskdef) {
        barge_error_set(&err, BARGE_ERR_INVALID,
                        "one of --service or --task-definition is "
                        "required");
        return barge_cli_fail(app, err);
    }
    const char *config_path = app->config_given ? app->config_path : getenv("ECSPRESSO_CONFIG");
    if (config_path && !*config_path)
        config_path = NULL;
    _cleanup_free_ char *cfg_name =
        config_path ? barge_xstrdup(config_path)
                    : barge_xstrdup(jsonnet ? "ecspresso.jsonnet" : "ecspresso.yml");
    _cleanup_free_ char *cfg_copy = barge_xstrdup(cfg_name);
    const char *dir = dirname(cfg_copy);
    /* Log as "<service>/<cluster>" like the other commands. */
    free(app->cfg->cluster);
    app->cfg->cluster = barge_xstrdup(cluster);
    free(app->cfg->service);
    app->cfg->service = service ? barge_xstrdup(service) : NULL;

    _cleanup_free_ char *td_name = NULL;
    _cleanup_json_ json_t *svcdef = NULL;
    if (service) {
        _cleanup_json_ json_t *svc = NULL;
        if (barge_cli_describe_service(app, &svc, &err) < 0)
            return barge_cli_fail(app, err);
        if (!svc) {
            barge_error_set(&err, BARGE_ERR_NOT_FOUND, "service '%s' is not found in cluster '%s'",
                            service, cluster);
            return barge_cli_fail(app, err);
        }
        td_name = barge_xstrdup(barge_json_str(svc, "taskDefinition", ""));
        svcdef = barge_cli_model_project(svc, "CreateServiceRequest");
        static const char *const drop[] = {"cluster", "serviceName", "taskDefinition",
                                           "clientToken", "role"};
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(drop); i++)
            json_object_del(svcdef, drop[i]);
        const char *pt = barge_json_str(svcdef, "propagateTags", "NONE");
        if (strcmp(pt, "SERVICE") != 0 && strcmp(pt, "TASK_DEFINITION") != 0)
            json_object_set_new(svcdef, "propagateTags", json_string("NONE"));
    } else {
        td_name = barge_xstrdup(taskdef);
    }
    _cleanup_json_ json_t *in =
        json_pack("{s:s, s:[s]}", "taskDefinition", td_name, "include", "TAGS");
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", in, &out, &err) < 0)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *td = barge_cli_taskdef_from_file(out, NULL, NULL);
    if (sort) {
        json_t *sorted = barge_cli_taskdef_for_diff(td);
        json_decref(td);
        td = sorted;
    }
    _cleanup_free_ char *tdp = jsonnet_name(td_path, jsonnet);
    _cleanup_free_ char *sdp = jsonnet_name(sd_path, jsonnet);
    json_t *cfg = json_object();
    if (app->aws->region)
        json_object_set_new(cfg, "region", json_string(app->aws->region));
    json_object_set_new(cfg, "cluster", json_string(cluster));
    if (service) {
        json_object_set_new(cfg, "service", json_string(service));
        json_object_set_new(cfg, "service_definition", json_string(sdp));
    }
    json_object_set_new(cfg, "task_definition", json_string(tdp));
    json_object_set_new(cfg, "timeout", json_string("10m0s"));
    _cleanup_free_ char *cfg_text = jsonnet ? barge_cli_json_api_dump(cfg) : NULL;
    if (!cfg_text) {
        /* YAML keeps the order above, the order ecspresso writes. */
        cfg_text = barge_cli_yaml_emit(cfg);
    }
    json_decref(cfg);
    if (svcdef) {
        _cleanup_free_ char *text = barge_cli_json_api_dump(svcdef);
        if (save(app, dir, sdp, "service definition", text, force, &err) < 0)
            return barge_cli_fail(app, err);
    }
    _cleanup_free_ char *td_text = barge_cli_json_api_dump(td);
    if (save(app, dir, tdp, "task definition", td_text, force, &err) < 0)
        return barge_cli_fail(app, err);
    if (save(app, ".", cfg_name, "config", cfg_text, force, &err) < 0)
        return barge_cli_fail(app, err);
    return 0;
}
