/* register, deregister and revisions: the task definition family's
 * lifecycle. A revision is "in use" while a task that is not STOPPED runs it
 * or a deployment of the service names it, and such revisions are never
 * deregistered. */
#include <string.h>

#include "cli/cli.h"
#include "common/json.h"

/* The family: the task definition file's, else the service's. */
static char *family_of(struct barge_cli_app *app, struct barge_error **err)
{
    if (app->cfg->task_definition) {
        _cleanup_json_ json_t *td = NULL;
        if (barge_cli_load_taskdef(app, NULL, &td, err) < 0)
            return NULL;
        const char *f = barge_json_str(td, "family", NULL);
        if (f)
            return barge_xstrdup(f);
    }
    if (app->cfg->service) {
        _cleanup_json_ json_t *svc = NULL;
        if (barge_cli_describe_service(app, &svc, err) < 0)
            return NULL;
        if (svc)
            return barge_cli_td_family(barge_json_str(svc, "taskDefinition", ""));
    }
    barge_error_set(err, BARGE_ERR_INVALID,
                    "no task definition family: set task_definition or "
                    "an existing service in the config");
    return NULL;
}

/* {"web:3": "RUNNING task" | "PRIMARY deployment"} */
static json_t *in_use(struct barge_cli_app *app, const char *family, struct barge_error **err)
{
    json_t *m = json_object();
    static const char *const statuses[] = {"RUNNING", "STOPPED"};
    for (size_t s = 0; s < 2; s++) {
        _cleanup_free_ char *token = NULL;
        do {
            _cleanup_json_ json_t *in = json_pack("{s:s, s:s, s:s}", "cluster", app->cfg->cluster,
                                                  "family", family, "desiredStatus", statuses[s]);
            if (token)
                json_object_set_new(in, "nextToken", json_string(token));
            _cleanup_json_ json_t *out = NULL;
            if (barge_cli_call(app, "ecs", "ListTasks", in, &out, err) < 0) {
                json_decref(m);
                return NULL;
            }
            free(token);
            token = barge_json_str(out, "nextToken", NULL)
                        ? barge_xstrdup(barge_json_str(out, "nextToken", NULL))
                        : NULL;
            json_t *arns = json_object_get(out, "taskArns");
            for (size_t off = 0; off < json_array_size(arns); off += 100) {
                json_t *chunk = json_array();
                for (size_t i = off; i < off + 100 && i < json_array_size(arns); i++)
                    json_array_append(chunk, json_array_get(arns, i));
                _cleanup_json_ json_t *din =
                    json_pack("{s:s, s:o}", "cluster", app->cfg->cluster, "tasks", chunk);
                _cleanup_json_ json_t *dout = NULL;
                if (barge_cli_call(app, "ecs", "DescribeTasks", din, &dout, err) < 0) {
                    json_decref(m);
                    return NULL;
                }
                size_t i;
                json_t *t;
                json_array_foreach(json_object_get(dout, "tasks"), i, t)
                {
                    const char *st = barge_json_str(t, "lastStatus", "");
                    if (strcmp(st, "STOPPED") == 0)
                        continue;
                    _cleanup_free_ char *name =
                        barge_cli_td_name(barge_json_str(t, "taskDefinitionArn", ""));
                    json_object_set_new(m, name, json_sprintf("%s task", st));
                }
            }
        } while (token);
    }
    if (app->cfg->service) {
        _cleanup_json_ json_t *svc = NULL;
        if (barge_cli_describe_service(app, &svc, err) < 0) {
            json_decref(m);
            return NULL;
        }
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(svc, "deployments"), i, d)
        {
            _cleanup_free_ char *name = barge_cli_td_name(barge_json_str(d, "taskDefinition", ""));
            json_object_set_new(m, name,
                                json_sprintf("%s deployment", barge_json_str(d, "status", "")));
        }
    }
    return m;
}

/* Every ACTIVE revision ARN of family, oldest first. */
static json_t *revisions(struct barge_cli_app *app, const char *family, struct barge_error **err)
{
    json_t *all = json_array();
    _cleanup_free_ char *token = NULL;
    do {
        _cleanup_json_ json_t *in =
            json_pack("{s:s, s:s, s:s}", "familyPrefix", family, "sort", "ASC", "status", "ACTIVE");
        if (token)
            json_object_set_new(in, "nextToken", json_string(token));
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "ListTaskDefinitions", in, &out, err) < 0) {
            json_decref(all);
            return NULL;
        }
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(out, "taskDefinitionArns"), i, a)
        {
            _cleanup_free_ char *f = barge_cli_td_family(json_string_value(a));
            if (strcmp(f, family) == 0)
                json_array_append(all, a);
        }
        free(token);
        const char *next = barge_json_str(out, "nextToken", NULL);
        token = next ? barge_xstrdup(next) : NULL;
    } while (token);
    return all;
}

int barge_cli_cmd_register(struct barge_cli_app *app, int argc, char **argv)
{
    bool dry_run = false, output = false;
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &dry_run, NULL, "print the definition, register nothing",
         false, NULL},
        {"output", BARGE_CLI_OPT_BOOL, &output, NULL, "print the registered definition as JSON",
         false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge register [options]",
                        "Register the config's task definition as a new revision.", opts, argc,
                        argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    barge_cli_log(app, "Starting register task definition%s", dry_run ? " DRY RUN" : "");
    _cleanup_json_ json_t *td = NULL;
    if (barge_cli_load_taskdef(app, NULL, &td, &err) < 0)
        return barge_cli_fail(app, err);
    if (dry_run) {
        _cleanup_free_ char *text = barge_cli_json_api_dump(td);
        barge_cli_out(app, "%s", text);
        barge_cli_log(app, "DRY RUN OK");
        return 0;
    }
    _cleanup_free_ char *arn = barge_cli_register(app, td, &err);
    if (!arn)
        return barge_cli_fail(app, err);
    if (output) {
        _cleanup_json_ json_t *in =
            json_pack("{s:s, s:[s]}", "taskDefinition", arn, "include", "TAGS");
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", in, &out, &err) < 0)
            return barge_cli_fail(app, err);
        _cleanup_free_ char *text = barge_cli_json_api_dump(out);
        barge_cli_out(app, "%s", text);
    }
    return 0;
}

static int chunked_delete(struct barge_cli_app *app, json_t *arns, struct barge_error **err)
{
    for (size_t off = 0; off < json_array_size(arns); off += 10) {
        json_t *chunk = json_array();
        for (size_t i = off; i < off + 10 && i < json_array_size(arns); i++)
            json_array_append(chunk, json_array_get(arns, i));
        _cleanup_json_ json_t *in = json_pack("{s:o}", "taskDefinitions", chunk);
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "DeleteTaskDefinitions", in, &out, err) < 0)
            return -1;
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(out, "failures"), i, f)
        {
            barge_cli_logl(app, BARGE_CLI_WARN, "cannot delete %s: %s",
                           barge_json_str(f, "arn", ""), barge_json_str(f, "reason", ""));
        }
        json_array_foreach(json_object_get(out, "taskDefinitions"), i, f)
        {
            _cleanup_free_ char *name =
                barge_cli_td_name(barge_json_str(f, "taskDefinitionArn", ""));
            barge_cli_log(app, "%s was deleted successfully", name);
        }
    }
    return 0;
}

int barge_cli_cmd_deregister(struct barge_cli_app *app, int argc, char **argv)
{
    bool dry_run = false, force = false, del = false;
    const char *revision = NULL;
    long keeps = -1;
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &dry_run, NULL, "show what would be deregistered", false,
         NULL},
        {"revision", BARGE_CLI_OPT_STR, &revision, "N|latest", "the revision to deregister", false,
         NULL},
        {"keeps", BARGE_CLI_OPT_INT, &keeps, "N",
         "deregister all but the newest N revisions not in use", false, NULL},
        {"force", BARGE_CLI_OPT_BOOL, &force, NULL, "do not ask for confirmation", false, NULL},
        {"delete", BARGE_CLI_OPT_BOOL, &del, NULL, "also delete them (DeleteTaskDefinitions)",
         false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge deregister (--revision N|latest | --keeps N) [options]",
                        "Deregister revisions of the task definition family that are not in use.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (!revision && keeps < 0) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--revision or --keeps is required");
        return barge_cli_fail(app, err);
    }
    _cleanup_free_ char *family = family_of(app, &err);
    if (!family)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *used = in_use(app, family, &err);
    if (!used)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *targets = json_array();
    if (revision) {
        _cleanup_free_ char *name = NULL;
        if (strcmp(revision, "latest") == 0) {
            _cleanup_free_ char *arn = barge_cli_latest_taskdef(app, family, &err);
            if (!arn)
                return barge_cli_fail(app, err);
            name = barge_cli_td_name(arn);
        } else {
            char *end;
            long r = strtol(revision, &end, 10);
            if (*end || r <= 0) {
                barge_error_set(&err, BARGE_ERR_INVALID, "--revision: '%s' is not a revision",
                                revision);
                return barge_cli_fail(app, err);
            }
            name = barge_xasprintf("%s:%ld", family, r);
        }
        const char *why = barge_json_str(used, name, NULL);
        if (why) {
            barge_error_set(&err, BARGE_ERR_CONFLICT, "%s is in use (%s)", name, why);
            return barge_cli_fail(app, err);
        }
        json_array_append_new(targets, json_string(name));
    } else {
        _cleanup_json_ json_t *all = revisions(app, family, &err);
        if (!all)
            return barge_cli_fail(app, err);
        _cleanup_json_ json_t *unused = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(all, i, a)
        {
            _cleanup_free_ char *name = barge_cli_td_name(json_string_value(a));
            if (json_object_get(used, name))
                barge_cli_log(app, "%s is in use; kept", name);
            else
                json_array_append_new(unused, json_string(name));
        }
        size_t n = json_array_size(unused);
        for (i = 0; n > (size_t)keeps && i < n - (size_t)keeps; i++)
            json_array_append(targets, json_array_get(unused, i));
    }
    if (json_array_size(targets) == 0) {
        barge_cli_log(app, "no revisions to deregister");
        return 0;
    }
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        barge_cli_log(app, "%s will be deregistered", json_string_value(t));
    }
    if (dry_run) {
        barge_cli_log(app, "DRY RUN OK");
        return 0;
    }
    if (!force) {
        _cleanup_free_ char *q =
            barge_xasprintf("Deregister %zu revision(s)?", json_array_size(targets));
        if (!barge_cli_confirm(app, q)) {
            barge_error_set(&err, BARGE_ERR_INVALID,
                            "not confirmed (use --force when not on a terminal)");
            return barge_cli_fail(app, err);
        }
    }
    _cleanup_json_ json_t *arns = json_array();
    json_array_foreach(targets, i, t)
    {
        _cleanup_json_ json_t *in = json_pack("{s:O}", "taskDefinition", t);
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "DeregisterTaskDefinition", in, &out, &err) < 0)
            return barge_cli_fail(app, err);
        barge_cli_log(app, "%s was deregistered successfully", json_string_value(t));
        json_array_append(
            arns, json_object_get(json_object_get(out, "taskDefinition"), "taskDefinitionArn"));
    }
    if (del && chunked_delete(app, arns, &err) < 0)
        return barge_cli_fail(app, err);
    return 0;
}

int barge_cli_cmd_revisions(struct barge_cli_app *app, int argc, char **argv)
{
    const char *revision = NULL, *output = "table";
    const struct barge_cli_opt opts[] = {
        {"revision", BARGE_CLI_OPT_STR, &revision, "N|current|latest",
         "print this revision's definition as JSON", false, NULL},
        {"output", BARGE_CLI_OPT_STR, &output, "table|json|tsv", "list format (default table)",
         false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge revisions [options]",
                        "List the task definition family's revisions and which are in use.", opts,
                        argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0 && strcmp(output, "tsv") != 0) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--output: '%s' is not table, json or tsv",
                        output);
        return barge_cli_fail(app, err);
    }
    _cleanup_free_ char *family = family_of(app, &err);
    if (!family)
        return barge_cli_fail(app, err);
    if (revision) {
        _cleanup_free_ char *name = NULL;
        if (strcmp(revision, "current") == 0) {
            _cleanup_json_ json_t *svc = NULL;
            if (barge_cli_describe_service(app, &svc, &err) < 0)
                return barge_cli_fail(app, err);
            if (!svc) {
                barge_error_set(&err, BARGE_ERR_NOT_FOUND, "service '%s' is not found",
                                app->cfg->service ? app->cfg->service : "");
                return barge_cli_fail(app, err);
            }
            name = barge_xstrdup(barge_json_str(svc, "taskDefinition", ""));
        } else if (strcmp(revision, "latest") == 0) {
            name = barge_xstrdup(family);
        } else {
            name = barge_xasprintf("%s:%s", family, revision);
        }
        _cleanup_json_ json_t *in =
            json_pack("{s:s, s:[s]}", "taskDefinition", name, "include", "TAGS");
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "DescribeTaskDefinition", in, &out, &err) < 0)
            return barge_cli_fail(app, err);
        _cleanup_free_ char *text = barge_cli_json_api_dump(out);
        barge_cli_out(app, "%s", text);
        return 0;
    }
    _cleanup_json_ json_t *used = in_use(app, family, &err);
    if (!used)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *all = revisions(app, family, &err);
    if (!all)
        return barge_cli_fail(app, err);
    size_t w1 = strlen("NAME"), w2 = strlen("IN USE");
    size_t i;
    json_t *a;
    /* Newest first, as ecspresso lists them. */
    _cleanup_json_ json_t *rows = json_array();
    for (i = json_array_size(all); i > 0; i--) {
        _cleanup_free_ char *name =
            barge_cli_td_name(json_string_value(json_array_get(all, i - 1)));
        const char *u = barge_json_str(used, name, "");
        json_array_append_new(rows, json_pack("{s:s, s:s}", "name", name, "inUse", u));
        w1 = strlen(name) > w1 ? strlen(name) : w1;
        w2 = strlen(u) > w2 ? strlen(u) : w2;
    }
    if (strcmp(output, "table") == 0) {
        barge_cli_out(app, "| %-*s | %-*s |\n", (int)w1, "NAME", (int)w2, "IN USE");
        char d1[256], d2[256];
        memset(d1, '-', sizeof(d1));
        memset(d2, '-', sizeof(d2));
        barge_cli_out(app, "|%.*s+%.*s|\n", (int)(w1 + 2 < 255 ? w1 + 2 : 255), d1,
                      (int)(w2 + 2 < 255 ? w2 + 2 : 255), d2);
    }
    json_array_foreach(rows, i, a)
    {
        const char *name = barge_json_str(a, "name", ""), *u = barge_json_str(a, "inUse", "");
        if (strcmp(output, "table") == 0)
            barge_cli_out(app, "| %-*s | %-*s |\n", (int)w1, name, (int)w2, u);
        else if (strcmp(output, "tsv") == 0)
            barge_cli_out(app, "%s\t%s\n", name, u);
        else {
            _cleanup_free_ char *line = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
            barge_cli_out(app, "%s\n", line);
        }
    }
    return 0;
}
