/* appspec: prints the CodeDeploy AppSpec (YAML) that deploys the service's
 * task definition, as ecspresso's appspec command does, for pipelines that
 * hand it to CodeDeploy themselves. barge's own deploys are ECS rolling
 * updates; this only writes the document. The service's attributes come from
 * the service definition (or, with --no-update-service, from the running
 * service); the hooks from the config's appspec.Hooks. */
#include <string.h>

#include "cli/cli.h"
#include "cli/yaml.h"
#include "common/json.h"

/* The task definition ARN --task-definition names: the service's current
 * one, the family's latest ACTIVE revision, or an ARN given as is. Caller
 * frees. */
static char *appspec_taskdef(struct barge_cli_app *app, const json_t *svc, const char *which,
                             struct barge_error **err)
{
    const char *current = barge_json_str(svc, "taskDefinition", "");
    if (strcmp(which, "current") == 0)
        return barge_xstrdup(current);
    if (strcmp(which, "latest") == 0) {
        _cleanup_free_ char *family = barge_cli_td_family(current);
        return barge_cli_latest_taskdef(app, family, err);
    }
    if (!barge_str_has_prefix(which, "arn:") || !strstr(which, ":task-definition/")) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "--task-definition requires current, latest or a task definition ARN, "
                        "not '%s'",
                        which);
        return NULL;
    }
    return barge_xstrdup(which);
}

/* AppSpec's TargetService properties from a service (described, or a
 * definition): CodeDeploy's PascalCase names for the ECS fields it takes. */
static json_t *target_properties(const json_t *svc, const char *td, struct barge_error **err)
{
    json_t *lb = json_array_get(json_object_get(svc, "loadBalancers"), 0);
    if (!lb) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "appspec requires loadBalancers in the service: CodeDeploy shifts "
                        "traffic through a load balancer");
        return NULL;
    }
    json_t *p = json_pack("{s:s, s:{s:s, s:I}}", "TaskDefinition", td, "LoadBalancerInfo",
                          "ContainerName", barge_json_str(lb, "containerName", ""), "ContainerPort",
                          (json_int_t)barge_json_int(lb, "containerPort", 0));
    const char *pv = barge_json_str(svc, "platformVersion", NULL);
    if (pv && *pv)
        json_object_set_new(p, "PlatformVersion", json_string(pv));
    json_t *vpc =
        json_object_get(json_object_get(svc, "networkConfiguration"), "awsvpcConfiguration");
    if (json_is_object(vpc)) {
        json_t *a = json_object();
        json_t *v;
        if ((v = json_object_get(vpc, "subnets")) && json_array_size(v))
            json_object_set(a, "Subnets", v);
        if ((v = json_object_get(vpc, "securityGroups")) && json_array_size(v))
            json_object_set(a, "SecurityGroups", v);
        const char *pub = barge_json_str(vpc, "assignPublicIp", NULL);
        if (pub)
            json_object_set_new(a, "AssignPublicIp", json_string(pub));
        json_object_set_new(p, "NetworkConfiguration",
                            json_pack("{s:o}", "AwsvpcConfiguration", a));
    }
    json_t *cps = json_object_get(svc, "capacityProviderStrategy");
    if (json_array_size(cps)) {
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(cps, i, e)
        {
            json_t *item =
                json_pack("{s:s}", "CapacityProvider", barge_json_str(e, "capacityProvider", ""));
            json_object_set_new(item, "Base", json_integer(barge_json_int(e, "base", 0)));
            json_object_set_new(item, "Weight", json_integer(barge_json_int(e, "weight", 0)));
            json_array_append_new(out, item);
        }
        json_object_set_new(p, "CapacityProviderStrategy", out);
    }
    return p;
}

int barge_cli_cmd_appspec(struct barge_cli_app *app, int argc, char **argv)
{
    const char *which = "latest";
    bool update_service = true;
    const struct barge_cli_opt opts[] = {
        {"task-definition", BARGE_CLI_OPT_STR, &which, "latest|current|ARN",
         "the task definition in the AppSpec (default latest)", false, NULL},
        {"update-service", BARGE_CLI_OPT_BOOL, &update_service, NULL,
         "take the service's attributes from the service definition (default); "
         "--no-update-service uses the running service's",
         true, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge appspec [options]",
                        "Print the CodeDeploy AppSpec (YAML) for the service's task definition.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (!app->cfg->service) {
        barge_error_set(&err, BARGE_ERR_INVALID, "service is not set in the config");
        return barge_cli_fail(app, err);
    }
    _cleanup_json_ json_t *svc = NULL;
    if (barge_cli_describe_service(app, &svc, &err) < 0)
        return barge_cli_fail(app, err);
    if (!svc) {
        barge_error_set(&err, BARGE_ERR_NOT_FOUND, "service '%s' is not found in cluster '%s'",
                        app->cfg->service, app->cfg->cluster);
        return barge_cli_fail(app, err);
    }
    _cleanup_free_ char *td = appspec_taskdef(app, svc, which, &err);
    if (!td)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *def = NULL;
    if (update_service && barge_cli_load_servicedef(app, &def, &err) < 0)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *props = target_properties(def ? def : svc, td, &err);
    if (!props)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *spec =
        json_pack("{s:s, s:[{s:{s:s, s:O}}]}", "version", "0.0", "Resources", "TargetService",
                  "Type", "AWS::ECS::Service", "Properties", props);
    json_t *hooks = json_object_get(json_object_get(app->cfg->doc, "appspec"), "Hooks");
    if (json_array_size(hooks))
        json_object_set(spec, "Hooks", hooks);
    _cleanup_free_ char *text = barge_cli_yaml_emit(spec);
    barge_cli_out(app, "%s", text);
    return 0;
}
