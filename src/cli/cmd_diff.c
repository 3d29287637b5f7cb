/* diff and render. diff compares the local service and task definitions with
 * what runs, both normalised the same way and written as API-style JSON, and
 * prints unified diffs headed by the remote ARN and the local path; render
 * prints what barge reads after templates and Jsonnet. */
#include <string.h>

#include "cli/cli.h"
#include "cli/yaml.h"
#include "common/json.h"

static void print_diff(struct barge_cli_app *app, const char *text)
{
    const char *red = barge_cli_color(app, true, "\033[31m");
    const char *green = barge_cli_color(app, true, "\033[32m");
    const char *cyan = barge_cli_color(app, true, "\033[36m");
    const char *off = *red ? "\033[0m" : "";
    _cleanup_free_ char *copy = barge_xstrdup(text);
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *on = "";
        if (barge_str_has_prefix(l, "@@"))
            on = cyan;
        else if (l[0] == '-')
            on = red;
        else if (l[0] == '+')
            on = green;
        barge_cli_out(app, "%s%s%s\n", on, l, *on ? off : "");
    }
}

static int diff_texts(struct barge_cli_app *app, const char *a, const char *b, const char *from,
                      const char *to, bool unified)
{
    /* --no-unified shows the whole file with its changes. */
    int context = unified ? 3 : 1 << 30;
    _cleanup_free_ char *d = barge_cli_diff_unified(a, b, from, to, context);
    if (d)
        print_diff(app, d);
    return d ? 1 : 0;
}

int barge_cli_cmd_diff(struct barge_cli_app *app, int argc, char **argv)
{
    bool unified = true;
    const struct barge_cli_opt opts[] = {
        {"unified", BARGE_CLI_OPT_BOOL, &unified, NULL,
         "unified diff with context (default); --no-unified shows whole files", true, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge diff [options]",
                        "Show the differences between the local service and task definitions and "
                        "the running service.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (app->cfg->service) {
        if (barge_cli_describe_service(app, &svc, &err) < 0)
            return barge_cli_fail(app, err);
        if (!svc)
            barge_cli_log(app, "service %s will be created", app->cfg->service);
    }
    if (app->cfg->service && app->cfg->service_definition) {
        _cleanup_json_ json_t *local = NULL;
        if (barge_cli_load_servicedef(app, &local, &err) < 0)
            return barge_cli_fail(app, err);
        /* A service to be created is shown as the user wrote it (what
         * CreateService gets), not narrowed to what UpdateService can change
         * nor padded with ECS's defaults. */
        _cleanup_json_ json_t *l =
            svc ? barge_cli_service_for_diff(local, local) : json_deep_copy(local);
        barge_cli_ignore_tags(app, l);
        _cleanup_free_ char *lt = barge_cli_json_api_dump(l);
        _cleanup_free_ char *rt = NULL;
        if (svc) {
            _cleanup_json_ json_t *r = barge_cli_service_for_diff(svc, local);
            barge_cli_ignore_tags(app, r);
            rt = barge_cli_json_api_dump(r);
        }
        diff_texts(app, rt ? rt : "", lt, svc ? barge_json_str(svc, "serviceArn", "") : "/dev/null",
                   app->cfg->service_definition, unified);
    }
    if (app->cfg->task_definition) {
        _cleanup_json_ json_t *local = NULL;
        if (barge_cli_load_taskdef(app, NULL, &local, &err) < 0)
            return barge_cli_fail(app, err);
        _cleanup_free_ char *name = NULL;
        if (svc)
            name = barge_xstrdup(barge_json_str(svc, "taskDefinition", ""));
        else
            name = barge_xstrdup(barge_json_str(local, "family", ""));
        _cleanup_json_ json_t *in =
            json_pack("{s:s, s:[s]}", "taskDefinition", name, "include", "TAGS");
        _cleanup_json_ json_t *out = NULL;
        _cleanup_error_ struct barge_error *derr = NULL;
        json_t *remote = NULL;
        if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", in, &out, &derr) == 0) {
            remote = json_object_get(out, "taskDefinition");
            json_t *tags = json_object_get(out, "tags");
            if (json_array_size(tags))
                json_object_set(remote, "tags", tags);
        } else if (derr->code != BARGE_ERR_CLIENT && derr->code != BARGE_ERR_NOT_FOUND &&
                   derr->code != BARGE_ERR_INVALID) {
            err = barge_steal(&derr);
            return barge_cli_fail(app, err);
        }
        _cleanup_json_ json_t *l = barge_cli_taskdef_for_diff(local);
        barge_cli_ignore_tags(app, l);
        _cleanup_free_ char *lt = barge_cli_json_api_dump(l);
        _cleanup_free_ char *rt = NULL;
        if (remote) {
            _cleanup_json_ json_t *r = barge_cli_taskdef_for_diff(remote);
            barge_cli_ignore_tags(app, r);
            rt = barge_cli_json_api_dump(r);
        }
        diff_texts(app, rt ? rt : "", lt,
                   remote ? barge_json_str(remote, "taskDefinitionArn", "") : "/dev/null",
                   app->cfg->task_definition, unified);
    }
    return 0;
}

/* The config as barge resolved it, as ecspresso's render prints its Config:
 * the region from the environment or profile when the file has none, the
 * cluster and timeout defaults filled in, in ecspresso's key order, other
 * keys as written. */
static json_t *resolved_config(struct barge_cli_app *app)
{
    static const char *const order[] = {
        "required_version", "region",  "cluster", "service",        "service_definition",
        "task_definition",  "plugins", "appspec", "filter_command", "timeout"};
    const json_t *doc = app->cfg->doc;
    json_t *c = json_object();
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(order); i++) {
        const char *k = order[i];
        json_t *v = json_object_get(doc, k);
        if (strcmp(k, "region") == 0 && app->aws->region)
            json_object_set_new(c, k, json_string(app->aws->region));
        else if (strcmp(k, "cluster") == 0)
            json_object_set_new(c, k, json_string(app->cfg->cluster));
        else if (strcmp(k, "timeout") == 0) {
            _cleanup_free_ char *t = barge_cli_fmt_duration(app->timeout);
            json_object_set_new(c, k, json_string(t));
        } else if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
            json_object_set(c, k, v);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        if (!json_object_get(c, k) && !json_is_null(v))
            json_object_set(c, k, v);
    }
    return c;
}

int barge_cli_cmd_render(struct barge_cli_app *app, int argc, char **argv)
{
    bool jsonnet = false;
    const struct barge_cli_opt opts[] = {
        {"jsonnet", BARGE_CLI_OPT_BOOL, &jsonnet, NULL,
         "print the config as Jsonnet (JSON) instead of YAML", false, NULL},
        {NULL},
    };
    int code;
    char **pos = NULL;
    size_t n = 0;
    if (barge_cli_start(app, "barge render [options] config|servicedef|taskdef ...",
                        "Print the config, service definition or task definition as barge reads "
                        "it: after Jsonnet and templates, normalised to API JSON.",
                        opts, argc, argv, true, 16, &pos, &n, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    int rc = 0;
    if (n == 0) {
        barge_error_set(&err, BARGE_ERR_INVALID,
                        "what to render: config, service-definition (servicedef) or "
                        "task-definition (taskdef)");
        rc = barge_cli_fail(app, err);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *t = pos[i];
        if (strcmp(t, "config") == 0) {
            _cleanup_json_ json_t *doc = resolved_config(app);
            _cleanup_free_ char *text =
                jsonnet ? barge_cli_json_api_dump(doc) : barge_cli_yaml_emit(doc);
            barge_cli_out(app, "%s", text);
        } else if (strcmp(t, "service-definition") == 0 || strcmp(t, "servicedef") == 0) {
            _cleanup_json_ json_t *def = NULL;
            if (barge_cli_load_servicedef(app, &def, &err) < 0) {
                rc = barge_cli_fail(app, err);
                break;
            }
            /* As ecspresso reads it: the service's name is the config's. */
            if (app->cfg->service)
                json_object_set_new(def, "serviceName", json_string(app->cfg->service));
            _cleanup_free_ char *text = barge_cli_json_api_dump(def);
            barge_cli_out(app, "%s", text);
        } else if (strcmp(t, "task-definition") == 0 || strcmp(t, "taskdef") == 0) {
            _cleanup_json_ json_t *td = NULL;
            if (barge_cli_load_taskdef(app, NULL, &td, &err) < 0) {
                rc = barge_cli_fail(app, err);
                break;
            }
            _cleanup_free_ char *text = barge_cli_json_api_dump(td);
            barge_cli_out(app, "%s", text);
        } else {
            barge_error_set(&err, BARGE_ERR_INVALID,
                            "unknown render target '%s' (config, servicedef, taskdef)", t);
            rc = barge_cli_fail(app, err);
        }
    }
    free(pos);
    return rc;
}
