/* The application: global options, the config, AWS clients made on demand,
 * the template functions (defaults plus the ssm, secretsmanager and tfstate
 * plugins), and loading files through Jsonnet and templates. */
#include <string.h>

#include "cli/cli.h"
#include "cli/yaml.h"
#include "common/json.h"

/* ---- global options ---- */

static bool opt_color = true;

int barge_cli_parse(struct barge_cli_app *app, const char *usage, const char *summary,
                    const struct barge_cli_opt *opts, int argc, char **argv, char ***pos,
                    size_t *n_pos, int *exit_code)
{
    const struct barge_cli_opt global[] = {
        {"config", BARGE_CLI_OPT_STR, &app->config_path, "FILE",
         "config file (default: ecspresso.yml, .yaml, .json or .jsonnet; $ECSPRESSO_CONFIG)", false,
         &app->config_given},
        {"debug", BARGE_CLI_OPT_BOOL, &app->debug, NULL, "show debug messages", false, NULL},
        {"envfile", BARGE_CLI_OPT_LIST, &app->envfiles, "FILE",
         "export KEY=VALUE lines of FILE first (repeatable)", false, NULL},
        {"ext-str", BARGE_CLI_OPT_LIST, &app->ext_str_list, "KEY=VALUE",
         "Jsonnet external string variable (repeatable)", false, NULL},
        {"ext-code", BARGE_CLI_OPT_LIST, &app->ext_code_list, "KEY=CODE",
         "Jsonnet external code variable (repeatable)", false, NULL},
        {"timeout", BARGE_CLI_OPT_STR, &app->timeout_opt, "DURATION",
         "timeout for waits (overrides the config's; e.g. 10m)", false, NULL},
        {"profile", BARGE_CLI_OPT_STR, &app->profile, "NAME",
         "AWS profile (default: $AWS_PROFILE, else 'barge' if present, else default)", false, NULL},
        {"region", BARGE_CLI_OPT_STR, &app->region_opt, "REGION",
         "AWS region (overrides the config's)", false, NULL},
        {"endpoint-url", BARGE_CLI_OPT_STR, &app->endpoint_url, "URL",
         "endpoint for every API (default: $AWS_ENDPOINT_URL_<SERVICE>, $AWS_ENDPOINT_URL, the "
         "profile's)",
         false, NULL},
        {"assume-role-arn", BARGE_CLI_OPT_STR, &app->assume_role_arn, "ARN",
         "call AWS as this role (STS AssumeRole; $ECSPRESSO_ASSUME_ROLE_ARN)", false, NULL},
        {"color", BARGE_CLI_OPT_BOOL, &opt_color, NULL,
         "colour on a terminal (never with NO_COLOR set)", true, NULL},
        {NULL},
    };
    const struct barge_cli_opt *tables[] = {opts, global};
    bool help = false;
    opt_color = true;
    _cleanup_error_ struct barge_error *err = NULL;
    if (barge_cli_opts_parse(tables, 2, argc, argv, pos, n_pos, &help, &err) < 0) {
        fprintf(stderr, "barge: %s (see '%s --help')\n", err->message, usage);
        *exit_code = 2;
        return -1;
    }
    if (help) {
        printf("Usage: %s\n%s\n", usage, summary);
        if (opts && opts->name) {
            printf("\nOptions:\n");
            barge_cli_opts_help(stdout, opts);
        }
        printf("\nGlobal options:\n");
        barge_cli_opts_help(stdout, global);
        *exit_code = 0;
        return 1;
    }
    app->no_color = !opt_color;
    return 0;
}

int barge_cli_start(struct barge_cli_app *app, const char *usage, const char *summary,
                    const struct barge_cli_opt *opts, int argc, char **argv, bool need_config,
                    size_t max_pos, char ***pos, size_t *n_pos, int *exit_code)
{
    char **p = NULL;
    size_t n = 0;
    int rc = barge_cli_parse(app, usage, summary, opts, argc, argv, &p, &n, exit_code);
    if (rc != 0) {
        free(p);
        return -1;
    }
    if (n > max_pos) {
        fprintf(stderr, "barge: unexpected argument '%s' (see '%s --help')\n", p[max_pos], usage);
        free(p);
        *exit_code = 2;
        return -1;
    }
    if (pos) {
        *pos = p;
        *n_pos = n;
    } else {
        free(p);
    }
    struct barge_error *err = NULL;
    if (barge_cli_app_init(app, need_config, &err) < 0) {
        if (pos) {
            free(*pos);
            *pos = NULL;
        }
        *exit_code = barge_cli_fail(app, err);
        return -1;
    }
    return 0;
}

/* ---- plugins ---- */

static const char *cache_get(struct barge_cli_app *app, const char *fn, const char *arg)
{
    _cleanup_free_ char *k = barge_xasprintf("%s\x1f%s", fn, arg);
    return json_string_value(json_object_get(app->cache, k));
}

static void cache_put(struct barge_cli_app *app, const char *fn, const char *arg, const char *v)
{
    _cleanup_free_ char *k = barge_xasprintf("%s\x1f%s", fn, arg);
    json_object_set_new(app->cache, k, json_string(v));
}

static int fn_ssm(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                  struct barge_error **err)
{
    struct barge_cli_app *app = ud;
    if (a[0].kind != BARGE_CLI_TV_STR)
        return barge_error_set(err, BARGE_ERR_INVALID, "ssm takes a parameter name");
    const char *name = a[0].s;
    long index = -1;
    if (n > 1) {
        if (a[1].kind == BARGE_CLI_TV_INT)
            index = (long)a[1].i;
        else if (a[1].kind == BARGE_CLI_TV_STR)
            index = strtol(a[1].s, NULL, 10);
        else
            return barge_error_set(err, BARGE_ERR_INVALID, "ssm index must be a number");
    }
    const char *type = cache_get(app, "ssm-type", name);
    const char *value = cache_get(app, "ssm", name);
    if (!value) {
        _cleanup_json_ json_t *in = json_pack("{s:s, s:b}", "Name", name, "WithDecryption", 1);
        _cleanup_json_ json_t *resp = NULL;
        if (barge_cli_call(app, "ssm", "GetParameter", in, &resp, err) < 0)
            return barge_error_wrap(err, "ssm parameter '%s'", name);
        json_t *p = json_object_get(resp, "Parameter");
        cache_put(app, "ssm", name, barge_json_str(p, "Value", ""));
        cache_put(app, "ssm-type", name, barge_json_str(p, "Type", "String"));
        type = cache_get(app, "ssm-type", name);
        value = cache_get(app, "ssm", name);
    }
    if (strcmp(type, "StringList") == 0) {
        if (index < 0)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "the index of ssm parameter '%s' is required", name);
        const char *p = value;
        for (long i = 0; i < index && p; i++) {
            p = strchr(p, ',');
            p = p ? p + 1 : NULL;
        }
        if (!p)
            return barge_error_set(err, BARGE_ERR_INVALID, "ssm parameter '%s' has no index %ld",
                                   name, index);
        *out = barge_cli_tv_str_take(barge_xstrndup(p, strcspn(p, ",")));
        return 0;
    }
    if (n > 1)
        return barge_error_set(err, BARGE_ERR_INVALID, "ssm parameter '%s' is not StringList",
                               name);
    *out = barge_cli_tv_str(value);
    return 0;
}

static int fn_ssm_list(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                       struct barge_error **err)
{
    return fn_ssm(ud, a, 2, out, err);
}

static int fn_secretsmanager_arn(void *ud, const struct barge_cli_tv *a, size_t n,
                                 struct barge_cli_tv *out, struct barge_error **err)
{
    struct barge_cli_app *app = ud;
    if (a[0].kind != BARGE_CLI_TV_STR)
        return barge_error_set(err, BARGE_ERR_INVALID, "secretsmanager_arn takes a secret name");
    const char *arn = cache_get(app, "secretsmanager_arn", a[0].s);
    if (!arn) {
        _cleanup_json_ json_t *in = json_pack("{s:s}", "SecretId", a[0].s);
        _cleanup_json_ json_t *resp = NULL;
        if (barge_cli_call(app, "secretsmanager", "DescribeSecret", in, &resp, err) < 0)
            return barge_error_wrap(err, "secret '%s'", a[0].s);
        cache_put(app, "secretsmanager_arn", a[0].s, barge_json_str(resp, "ARN", ""));
        arn = cache_get(app, "secretsmanager_arn", a[0].s);
    }
    *out = barge_cli_tv_str(arn);
    return 0;
}

struct tfplugin {
    struct barge_cli_app *app;
    char *source; /* a local path, file://, s3:// */
    json_t *state;
};

static int tfstate_load(struct tfplugin *tp, struct barge_error **err)
{
    if (tp->state)
        return 0;
    _cleanup_free_ char *text = NULL;
    const char *src = tp->source;
    if (barge_str_has_prefix(src, "s3://")) {
        const char *bk = src + 5;
        size_t bn = strcspn(bk, "/");
        _cleanup_free_ char *bucket = barge_xstrndup(bk, bn);
        _cleanup_free_ char *key = barge_aws_uri_encode(bk[bn] ? bk + bn + 1 : "", true);
        _cleanup_free_ char *ebucket = barge_aws_uri_encode(bucket, false);
        _cleanup_free_ char *path = barge_xasprintf("/%s/%s", ebucket, key);
        struct barge_aws_client *s3 = barge_cli_client(tp->app, "s3", err);
        struct barge_aws_response r;
        if (!s3 || barge_aws_request(s3, "GET", path, NULL, NULL, 0, NULL, 0, &r, err) < 0)
            return barge_error_wrap(err, "tfstate '%s'", src);
        if (r.status != 200) {
            barge_error_set(err, BARGE_ERR_NOT_FOUND, "tfstate '%s': S3 answered %ld", src,
                            r.status);
            barge_aws_response_release(&r);
            return -1;
        }
        text = barge_steal(&r.body);
        barge_aws_response_release(&r);
    } else {
        if (barge_str_has_prefix(src, "file://"))
            src += 7;
        else if (strstr(src, "://"))
            return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                                   "tfstate '%s': only local paths, file:// and s3:// are "
                                   "supported",
                                   src);
        text = barge_read_file(src, NULL);
        if (!text)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read tfstate '%s'", src);
    }
    json_error_t jerr;
    tp->state = json_loads(text, 0, &jerr);
    if (!tp->state)
        return barge_error_set(err, BARGE_ERR_SERIALIZATION, "tfstate '%s' is not JSON: %s", src,
                               jerr.text);
    return 0;
}

static int fn_tfstate(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                      struct barge_error **err)
{
    struct tfplugin *tp = ud;
    if (tfstate_load(tp, err) < 0)
        return -1;
    _cleanup_free_ char *addr = barge_cli_tv_format(&a[0]);
    char *v;
    if (barge_cli_tfstate_lookup(tp->state, addr, &v, err) < 0)
        return -1;
    *out = barge_cli_tv_str_take(v);
    return 0;
}

static int fn_tfstatef(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                       struct barge_error **err)
{
    if (a[0].kind != BARGE_CLI_TV_STR)
        return barge_error_set(err, BARGE_ERR_INVALID, "tfstatef takes a format string");
    struct barge_cli_tv addr = barge_cli_tv_str_take(barge_cli_go_sprintf(a[0].s, a + 1, n - 1));
    int rc = fn_tfstate(ud, &addr, 1, out, err);
    barge_cli_tv_release(&addr);
    return rc;
}

static int install_plugins(struct barge_cli_app *app, struct barge_error **err)
{
    barge_cli_funcs_add(app->funcs, "ssm", fn_ssm, app, 1, 2, 1);
    barge_cli_funcs_add(app->funcs, "ssm_list", fn_ssm_list, app, 2, 2, 2);
    barge_cli_funcs_add(app->funcs, "secretsmanager_arn", fn_secretsmanager_arn, app, 1, 1, 1);
    size_t i;
    json_t *p;
    json_array_foreach(app->cfg->plugins, i, p)
    {
        const char *name = barge_json_str(p, "name", "");
        const char *prefix = barge_json_str(p, "func_prefix", "");
        json_t *conf = json_object_get(p, "config");
        /* ssm and secretsmanager are always there; an instance with a
         * func_prefix adds prefixed names for the same functions. */
        if (strcmp(name, "ssm") == 0) {
            if (*prefix) {
                _cleanup_free_ char *fn = barge_xasprintf("%sssm", prefix);
                barge_cli_funcs_add(app->funcs, fn, fn_ssm, app, 1, 2, 1);
            }
            continue;
        }
        if (strcmp(name, "secretsmanager") == 0) {
            if (*prefix) {
                _cleanup_free_ char *fn = barge_xasprintf("%ssecretsmanager_arn", prefix);
                barge_cli_funcs_add(app->funcs, fn, fn_secretsmanager_arn, app, 1, 1, 1);
            }
            continue;
        }
        if (strcmp(name, "tfstate") != 0) {
            barge_cli_logl(app, BARGE_CLI_WARN, "plugin '%s' is not supported; ignored", name);
            continue;
        }
        const char *path = barge_json_str(conf, "path", NULL);
        const char *url = barge_json_str(conf, "url", NULL);
        if (!path && !url)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "tfstate plugin requires config.path or config.url");
        _cleanup_free_ char *fn = barge_xasprintf("%stfstate", prefix);
        _cleanup_free_ char *fnf = barge_xasprintf("%stfstatef", prefix);
        if (barge_cli_funcs_has(app->funcs, fn))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "template function %s already exists. set func_prefix to "
                                   "tfstate plugin",
                                   fn);
        struct tfplugin *tp = barge_xcalloc(1, sizeof(*tp));
        tp->app = app;
        if (path && path[0] != '/' && app->cfg->dir && strcmp(app->cfg->dir, ".") != 0)
            tp->source = barge_xasprintf("%s/%s", app->cfg->dir, path);
        else
            tp->source = barge_xstrdup(path ? path : url);
        app->plugins = barge_xrealloc(app->plugins, (app->n_plugins + 1) * sizeof(void *));
        app->plugins[app->n_plugins++] = tp;
        barge_cli_funcs_add(app->funcs, fn, fn_tfstate, tp, 1, 1, 1);
        barge_cli_funcs_add(app->funcs, fnf, fn_tfstatef, tp, 1, -1, 0);
    }
    return 0;
}

/* ---- init ---- */

static json_t *kv_object(const json_t *list, const char *env, const char *what,
                         struct barge_error **err)
{
    json_t *o = json_object();
    json_t *all = json_array();
    const char *e = getenv(env);
    if (e && *e) {
        _cleanup_free_ char *copy = barge_xstrdup(e);
        char *save = NULL;
        for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save))
            json_array_append_new(all, json_string(t));
    }
    json_array_extend(all, (json_t *)list);
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v)
    {
        const char *s = json_string_value(v);
        const char *eq = strchr(s, '=');
        if (!eq) {
            barge_error_set(err, BARGE_ERR_INVALID, "%s '%s' is not KEY=VALUE", what, s);
            json_decref(o);
            json_decref(all);
            return NULL;
        }
        _cleanup_free_ char *k = barge_xstrndup(s, (size_t)(eq - s));
        json_object_set_new(o, k, json_string(eq + 1));
    }
    json_decref(all);
    return o;
}

static const char *find_config(void)
{
    static const char *const names[] = {"ecspresso.yml", "ecspresso.yaml", "ecspresso.json",
                                        "ecspresso.jsonnet"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(names); i++)
        if (access(names[i], F_OK) == 0)
            return names[i];
    return NULL;
}

int barge_cli_app_init(struct barge_cli_app *app, bool need_config, struct barge_error **err)
{
    const char *nc = getenv("NO_COLOR");
    bool color = !app->no_color && !(nc && *nc);
    app->color_err = color && isatty(2);
    app->color_out = color && isatty(1);
    app->tty_err = isatty(2);
    app->started = barge_cli_now_mono();
    app->cache = json_object();
    const char *dbg = getenv("ECSPRESSO_DEBUG");
    if (dbg && *dbg && strcmp(dbg, "false") != 0 && strcmp(dbg, "0") != 0)
        app->debug = true;

    const char *envfile_env = getenv("ECSPRESSO_ENVFILE");
    if (envfile_env && *envfile_env) {
        _cleanup_free_ char *copy = barge_xstrdup(envfile_env);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (barge_cli_envfile_load(t, err) < 0)
                return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(app->envfiles, i, v)
    {
        if (barge_cli_envfile_load(json_string_value(v), err) < 0)
            return -1;
    }
    app->ext_str = kv_object(app->ext_str_list, "ECSPRESSO_EXT_STR", "--ext-str", err);
    if (!app->ext_str)
        return -1;
    app->ext_code = kv_object(app->ext_code_list, "ECSPRESSO_EXT_CODE", "--ext-code", err);
    if (!app->ext_code)
        return -1;
    app->funcs = barge_cli_funcs_new();
    barge_cli_funcs_add_defaults(app->funcs);

    const char *path = app->config_given ? app->config_path : getenv("ECSPRESSO_CONFIG");
    if (!path || !*path)
        path = find_config();
    if (path && !app->config_is_output &&
        (app->config_given || need_config || access(path, F_OK) == 0)) {
        app->jsonnet_json = true;
        int rc = barge_cli_config_load(app, path, &app->cfg, err);
        app->jsonnet_json = false;
        if (rc < 0)
            return -1;
    } else if (need_config) {
        return barge_error_set(err, BARGE_ERR_NOT_FOUND,
                               "no config file: ecspresso.yml, .yaml, .json or .jsonnet is not "
                               "found (use --config)");
    } else {
        app->cfg = barge_xcalloc(1, sizeof(*app->cfg));
        app->cfg->cluster = barge_xstrdup("default");
        app->cfg->timeout = 600;
        app->cfg->plugins = json_array();
    }
    const char *t = app->timeout_opt ? app->timeout_opt : getenv("ECSPRESSO_TIMEOUT");
    app->timeout = app->cfg->timeout;
    if (t && *t && barge_cli_parse_duration(t, &app->timeout, err) < 0)
        return barge_error_wrap(err, "--timeout");

    struct barge_aws_opts ao = {
        .profile = app->profile,
        .region = app->region_opt ? app->region_opt : app->cfg->region,
        .endpoint_url = app->endpoint_url,
        .preferred_profile = "barge",
    };
    if (barge_aws_config_load(&ao, &app->aws, err) < 0)
        return -1;
    const char *role =
        app->assume_role_arn ? app->assume_role_arn : getenv("ECSPRESSO_ASSUME_ROLE_ARN");
    if (role && *role && barge_cli_assume_role(app, role, err) < 0)
        return -1;
    barge_cli_logl(app, BARGE_CLI_DEBUG, "AWS profile %s, region %s, credentials from %s",
                   app->aws->profile ? app->aws->profile : "(none)",
                   app->aws->region ? app->aws->region : "(none)",
                   app->aws->credentials_source ? app->aws->credentials_source : "nowhere");
    return install_plugins(app, err);
}

void barge_cli_app_release(struct barge_cli_app *app)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(app->clients); i++)
        barge_aws_client_free(app->clients[i]);
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(app->region_clients); i++) {
        barge_aws_client_free(app->region_clients[i]);
        if (app->region_cfgs[i])
            free(app->region_cfgs[i]->region); /* the rest is aws's */
        free(app->region_cfgs[i]);
    }
    for (size_t i = 0; i < app->n_plugins; i++) {
        struct tfplugin *tp = app->plugins[i];
        free(tp->source);
        json_decref(tp->state);
        free(tp);
    }
    free(app->plugins);
    barge_aws_config_free(app->aws);
    barge_cli_config_free(app->cfg);
    barge_cli_funcs_free(app->funcs);
    json_decref(app->cache);
    json_decref(app->ext_str);
    json_decref(app->ext_code);
    json_decref(app->envfiles);
    json_decref(app->ext_str_list);
    json_decref(app->ext_code_list);
    json_decref(app->taskdef_doc);
    json_decref(app->servicedef_doc);
}

struct barge_aws_client *barge_cli_client(struct barge_cli_app *app, const char *service,
                                          struct barge_error **err)
{
    size_t i;
    for (i = 0; i < BARGE_ARRAY_SIZE(app->clients) && app->clients[i]; i++)
        if (strcmp(app->client_names[i], service) == 0)
            return app->clients[i];
    if (i == BARGE_ARRAY_SIZE(app->clients))
        abort();
    struct barge_aws_client *c = barge_aws_client_new(app->aws, service, err);
    if (!c)
        return NULL;
    app->clients[i] = c;
    app->client_names[i] = service;
    return c;
}

/* Calls op on client c, logging the call with --debug. */
static int call_logged(struct barge_cli_app *app, struct barge_aws_client *c, const char *service,
                       const char *op, const json_t *in, json_t **out, struct barge_error **err)
{
    if (app->debug) {
        _cleanup_free_ char *s = in ? json_dumps(in, JSON_COMPACT) : barge_xstrdup("{}");
        const char *region = barge_aws_client_region(c);
        barge_cli_logl(app, BARGE_CLI_DEBUG, "%s %s (%s) %s", service, op,
                       region ? region : "no region", s);
    }
    return barge_aws_call(c, op, in, out, err);
}

int barge_cli_call(struct barge_cli_app *app, const char *service, const char *op, const json_t *in,
                   json_t **out, struct barge_error **err)
{
    struct barge_aws_client *c = barge_cli_client(app, service, err);
    return c ? call_logged(app, c, service, op, in, out, err) : -1;
}

int barge_cli_call_in(struct barge_cli_app *app, const char *service, const char *region,
                      const char *op, const json_t *in, json_t **out, struct barge_error **err)
{
    if (!region || !region[0] || barge_streq(region, app->aws->region))
        return barge_cli_call(app, service, op, in, out, err);
    size_t i;
    for (i = 0; i < BARGE_ARRAY_SIZE(app->region_clients) && app->region_clients[i]; i++)
        if (strcmp(app->region_services[i], service) == 0 &&
            strcmp(app->region_cfgs[i]->region, region) == 0)
            break;
    if (i == BARGE_ARRAY_SIZE(app->region_clients))
        return barge_error_set(err, BARGE_ERR_INVALID, "too many regions to call %s in", service);
    if (!app->region_clients[i]) {
        struct barge_aws_config *cfg = barge_xcalloc(1, sizeof(*cfg));
        *cfg = *app->aws;
        cfg->region = barge_xstrdup(region);
        struct barge_aws_client *c = barge_aws_client_new(cfg, service, err);
        if (!c) {
            free(cfg->region);
            free(cfg);
            return -1;
        }
        app->region_clients[i] = c;
        app->region_cfgs[i] = cfg;
        app->region_services[i] = service;
    }
    return call_logged(app, app->region_clients[i], service, op, in, out, err);
}

/* ---- files ---- */

int barge_cli_render_file(struct barge_cli_app *app, const char *path, char **out,
                          struct barge_error **err)
{
    *out = NULL;
    _cleanup_free_ char *text = NULL;
    if (barge_str_has_suffix(path, ".jsonnet") ||
        (app->jsonnet_json && barge_str_has_suffix(path, ".json"))) {
        struct barge_cli_jsonnet j = {app->ext_str, app->ext_code, app->funcs};
        if (access(path, R_OK) < 0)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
        if (barge_cli_jsonnet_eval_file(&j, path, &text, err) < 0)
            return -1;
    } else {
        text = barge_read_file(path, NULL);
        if (!text)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
    }
    const char *base = strrchr(path, '/');
    return barge_cli_template_render(text, base ? base + 1 : path, app->funcs, out, err);
}

int barge_cli_load_file(struct barge_cli_app *app, const char *path, json_t **out,
                        struct barge_error **err)
{
    *out = NULL;
    _cleanup_free_ char *text = NULL;
    if (barge_cli_render_file(app, path, &text, err) < 0)
        return -1;
    if (barge_str_has_suffix(path, ".yml") || barge_str_has_suffix(path, ".yaml"))
        return barge_cli_yaml_parse(text, strlen(text), path, out, err);
    json_error_t jerr;
    *out = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!*out)
        return barge_error_set(err, BARGE_ERR_SERIALIZATION, "%s:%d: %s", path, jerr.line,
                               jerr.text);
    return 0;
}

bool barge_cli_tag_ignored(struct barge_cli_app *app, const char *key)
{
    json_t *keys = json_object_get(json_object_get(app->cfg->doc, "ignore"), "tags");
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (barge_streq(json_string_value(k), key))
            return true;
    }
    return false;
}

void barge_cli_ignore_tags(struct barge_cli_app *app, json_t *obj)
{
    json_t *tags = json_object_get(obj, "tags");
    for (size_t i = json_array_size(tags); i > 0; i--)
        if (barge_cli_tag_ignored(app, barge_json_str(json_array_get(tags, i - 1), "key", "")))
            json_array_remove(tags, i - 1);
    if (tags && json_array_size(tags) == 0)
        json_object_del(obj, "tags");
}

struct warn_ctx {
    struct barge_cli_app *app;
    const char *file;
};

static void warn_unknown(void *ud, const char *path)
{
    struct warn_ctx *w = ud;
    barge_cli_logl(w->app, BARGE_CLI_WARN, "unknown field \"%s\" in '%s'; ignored", path, w->file);
}

int barge_cli_load_taskdef(struct barge_cli_app *app, const char *path, json_t **out,
                           struct barge_error **err)
{
    *out = NULL;
    if (!path && app->taskdef_doc) {
        *out = json_deep_copy(app->taskdef_doc);
        return 0;
    }
    if (!path)
        path = app->cfg->task_definition;
    if (!path)
        return barge_error_set(err, BARGE_ERR_INVALID, "task_definition is not set in the config");
    _cleanup_json_ json_t *doc = NULL;
    if (barge_cli_load_file(app, path, &doc, err) < 0)
        return barge_error_wrap(err, "cannot load task definition");
    if (!json_is_object(doc))
        return barge_error_set(err, BARGE_ERR_INVALID, "task definition '%s' is not an object",
                               path);
    struct warn_ctx w = {app, path};
    *out = barge_cli_taskdef_from_file(doc, warn_unknown, &w);
    return 0;
}

int barge_cli_load_servicedef(struct barge_cli_app *app, json_t **out, struct barge_error **err)
{
    *out = NULL;
    if (app->servicedef_doc) {
        *out = json_deep_copy(app->servicedef_doc);
        return 0;
    }
    const char *path = app->cfg->service_definition;
    if (!path)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "service_definition is not set in the config");
    json_t *doc = NULL;
    if (barge_cli_load_file(app, path, &doc, err) < 0)
        return barge_error_wrap(err, "cannot load service definition");
    if (!json_is_object(doc)) {
        json_decref(doc);
        return barge_error_set(err, BARGE_ERR_INVALID, "service definition '%s' is not an object",
                               path);
    }
    struct warn_ctx w = {app, path};
    barge_cli_servicedef_conform(doc, warn_unknown, &w);
    *out = doc;
    return 0;
}
