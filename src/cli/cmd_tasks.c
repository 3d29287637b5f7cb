/* tasks: the running tasks of the service's task definition family (what
 * ecspresso delegates to ecsta), as a table, JSON lines or TSV; --find picks
 * one interactively (through $ECSPRESSO_FILTER_COMMAND such as peco or fzf
 * when set, else a numbered prompt) and --stop stops the chosen task. */
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/json.h"

static char *short_id(const char *arn)
{
    const char *slash = strrchr(arn ? arn : "", '/');
    return barge_xstrdup(slash ? slash + 1 : arn ? arn : "");
}

/* The row of a task: ID, TASKDEFINITION, INSTANCE, LASTSTATUS, DESIREDSTATUS,
 * CREATEDAT, GROUP, TYPE. */
static json_t *row_of(const json_t *t)
{
    _cleanup_free_ char *id = short_id(barge_json_str(t, "taskArn", ""));
    _cleanup_free_ char *td = barge_cli_td_name(barge_json_str(t, "taskDefinitionArn", ""));
    _cleanup_free_ char *inst = short_id(barge_json_str(t, "containerInstanceArn", ""));
    char created[40] = "";
    json_t *c = json_object_get(t, "createdAt");
    if (json_is_number(c)) {
        time_t ts = (time_t)json_number_value(c);
        struct tm tm;
        localtime_r(&ts, &tm);
        strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S%z", &tm);
    }
    return json_pack("[s,s,s,s,s,s,s,s]", id, td, inst, barge_json_str(t, "lastStatus", ""),
                     barge_json_str(t, "desiredStatus", ""), created,
                     barge_json_str(t, "group", ""), barge_json_str(t, "launchType", ""));
}

static void print_table(struct barge_cli_app *app, const json_t *rows)
{
    static const char *const heads[] = {
        "ID",        "TASKDEFINITION", "INSTANCE", "LASTSTATUS", "DESIREDSTATUS",
        "CREATEDAT", "GROUP",          "TYPE"};
    size_t w[8];
    for (size_t k = 0; k < 8; k++)
        w[k] = strlen(heads[k]);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        for (size_t k = 0; k < 8; k++) {
            size_t n = strlen(json_string_value(json_array_get(r, k)));
            w[k] = n > w[k] ? n : w[k];
        }
    }
    char line[2048];
    size_t off = 0;
    for (size_t k = 0; k < 8; k++)
        off += (size_t)snprintf(line + off, sizeof(line) - off, "| %-*s ", (int)w[k], heads[k]);
    barge_cli_out(app, "%s|\n", line);
    off = 0;
    for (size_t k = 0; k < 8 && off < sizeof(line) - 1; k++) {
        line[off++] = k ? '+' : '|';
        for (size_t d = 0; d < w[k] + 2 && off < sizeof(line) - 2; d++)
            line[off++] = '-';
    }
    line[off] = '\0';
    barge_cli_out(app, "%s|\n", line);
    json_array_foreach(rows, i, r)
    {
        off = 0;
        for (size_t k = 0; k < 8; k++)
            off += (size_t)snprintf(line + off, sizeof(line) - off, "| %-*s ", (int)w[k],
                                    json_string_value(json_array_get(r, k)));
        barge_cli_out(app, "%s|\n", line);
    }
}

/* Lets the user pick one task; returns its index or -1. */
static long pick(struct barge_cli_app *app, const json_t *rows, struct barge_error **err)
{
    const char *filter = getenv("ECSPRESSO_FILTER_COMMAND");
    if (filter && *filter) {
        char tmpl[] = "/tmp/barge-tasks-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot create a temporary file");
            return -1;
        }
        FILE *f = fdopen(fd, "w");
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r)
        {
            fprintf(f, "%s\t%s\t%s\n", json_string_value(json_array_get(r, 0)),
                    json_string_value(json_array_get(r, 1)),
                    json_string_value(json_array_get(r, 3)));
        }
        fclose(f);
        _cleanup_free_ char *cmd = barge_xasprintf("%s < '%s'", filter, tmpl);
        FILE *p = popen(cmd, "r");
        char line[512] = "";
        if (!p || !fgets(line, sizeof(line), p))
            line[0] = '\0';
        if (p)
            pclose(p);
        unlink(tmpl);
        line[strcspn(line, "\t\r\n")] = '\0';
        json_array_foreach(rows, i, r)
        {
            if (*line && strcmp(line, json_string_value(json_array_get(r, 0))) == 0)
                return (long)i;
        }
        barge_error_set(err, BARGE_ERR_INVALID, "no task was chosen");
        return -1;
    }
    if (!isatty(0)) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "--find needs a terminal or ECSPRESSO_FILTER_COMMAND; use --id instead");
        return -1;
    }
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        fprintf(stderr, "%3zu) %s %s %s\n", i + 1, json_string_value(json_array_get(r, 0)),
                json_string_value(json_array_get(r, 1)), json_string_value(json_array_get(r, 3)));
    }
    fprintf(stderr, "Enter the number of a task: ");
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof(line), stdin)) {
        barge_error_set(err, BARGE_ERR_INVALID, "no task was chosen");
        return -1;
    }
    long n = strtol(line, NULL, 10);
    if (n < 1 || (size_t)n > json_array_size(rows)) {
        barge_error_set(err, BARGE_ERR_INVALID, "no task was chosen");
        return -1;
    }
    return n - 1;
}

long barge_cli_tasks_pick(struct barge_cli_app *app, const json_t *tasks, struct barge_error **err)
{
    _cleanup_json_ json_t *rows = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        json_array_append_new(rows, row_of(t));
    }
    return pick(app, rows, err);
}

int barge_cli_cmd_tasks(struct barge_cli_app *app, int argc, char **argv)
{
    const char *id = NULL, *output = "table";
    bool find = false, stop = false, force = false, trace = false;
    const struct barge_cli_opt opts[] = {
        {"id", BARGE_CLI_OPT_STR, &id, "ID", "only this task", false, NULL},
        {"output", BARGE_CLI_OPT_STR, &output, "table|json|tsv", "format (default table)", false,
         NULL},
        {"find", BARGE_CLI_OPT_BOOL, &find, NULL, "choose a task interactively", false, NULL},
        {"stop", BARGE_CLI_OPT_BOOL, &stop, NULL, "stop the chosen task", false, NULL},
        {"force", BARGE_CLI_OPT_BOOL, &force, NULL, "stop without asking", false, NULL},
        {"trace", BARGE_CLI_OPT_BOOL, &trace, NULL, "not supported (ecsta's trace)", false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge tasks [options]",
                        "List the running tasks of the service's task definition family; find "
                        "or stop one.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0 && strcmp(output, "tsv") != 0) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--output: '%s' is not table, json or tsv",
                        output);
        return barge_cli_fail(app, err);
    }
    if (trace)
        barge_cli_logl(app, BARGE_CLI_WARN, "--trace is not supported; ignored");
    if (stop && !id && !find) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--stop needs --id or --find");
        return barge_cli_fail(app, err);
    }
    _cleanup_json_ json_t *arns = json_array();
    if (id) {
        json_array_append_new(arns, json_string(id));
    } else {
        _cleanup_free_ char *family = NULL;
        _cleanup_json_ json_t *svc = NULL;
        if (app->cfg->service && barge_cli_describe_service(app, &svc, &err) < 0)
            return barge_cli_fail(app, err);
        if (svc) {
            family = barge_cli_td_family(barge_json_str(svc, "taskDefinition", ""));
        } else {
            _cleanup_json_ json_t *td = NULL;
            if (barge_cli_load_taskdef(app, NULL, &td, &err) < 0)
                return barge_cli_fail(app, err);
            family = barge_xstrdup(barge_json_str(td, "family", ""));
        }
        _cleanup_free_ char *token = NULL;
        do {
            _cleanup_json_ json_t *in =
                json_pack("{s:s, s:s}", "cluster", app->cfg->cluster, "family", family);
            if (token)
                json_object_set_new(in, "nextToken", json_string(token));
            _cleanup_json_ json_t *out = NULL;
            if (barge_cli_call(app, "ecs", "ListTasks", in, &out, &err) < 0)
                return barge_cli_fail(app, err);
            json_array_extend(arns, json_object_get(out, "taskArns"));
            free(token);
            const char *next = barge_json_str(out, "nextToken", NULL);
            token = next ? barge_xstrdup(next) : NULL;
        } while (token);
    }
    _cleanup_json_ json_t *tasks = json_array();
    for (size_t off = 0; off < json_array_size(arns); off += 100) {
        json_t *chunk = json_array();
        for (size_t i = off; i < off + 100 && i < json_array_size(arns); i++)
            json_array_append(chunk, json_array_get(arns, i));
        _cleanup_json_ json_t *in = json_pack("{s:s, s:o, s:[s]}", "cluster", app->cfg->cluster,
                                              "tasks", chunk, "include", "TAGS");
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(app, "ecs", "DescribeTasks", in, &out, &err) < 0)
            return barge_cli_fail(app, err);
        json_array_extend(tasks, json_object_get(out, "tasks"));
        json_t *f = json_array_get(json_object_get(out, "failures"), 0);
        if (id && f) {
            barge_error_set(&err, BARGE_ERR_NOT_FOUND, "task '%s': %s", id,
                            barge_json_str(f, "reason", "not found"));
            return barge_cli_fail(app, err);
        }
    }
    _cleanup_json_ json_t *rows = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        json_array_append_new(rows, row_of(t));
    }
    if (find) {
        if (!json_array_size(rows)) {
            barge_error_set(&err, BARGE_ERR_NOT_FOUND, "no tasks to choose from");
            return barge_cli_fail(app, err);
        }
        long k = pick(app, rows, &err);
        if (k < 0)
            return barge_cli_fail(app, err);
        json_t *one = json_array();
        json_array_append(one, json_array_get(tasks, (size_t)k));
        json_decref(tasks);
        tasks = one;
        json_t *r = json_array();
        json_array_append(r, json_array_get(rows, (size_t)k));
        json_decref(rows);
        rows = r;
    }
    if (strcmp(output, "table") == 0) {
        print_table(app, rows);
    } else if (strcmp(output, "tsv") == 0) {
        json_array_foreach(rows, i, t)
        {
            for (size_t k = 0; k < 8; k++)
                barge_cli_out(app, "%s%s", k ? "\t" : "", json_string_value(json_array_get(t, k)));
            barge_cli_out(app, "\n");
        }
    } else {
        json_array_foreach(tasks, i, t)
        {
            _cleanup_json_ json_t *p = barge_cli_json_prune(t);
            _cleanup_free_ char *line = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
            barge_cli_out(app, "%s\n", line);
        }
    }
    if (stop) {
        json_array_foreach(tasks, i, t)
        {
            const char *arn = barge_json_str(t, "taskArn", "");
            if (!force) {
                _cleanup_free_ char *q = barge_xasprintf("Stop task %s?", arn);
                if (!barge_cli_confirm(app, q)) {
                    barge_error_set(&err, BARGE_ERR_INVALID,
                                    "not confirmed (use --force when not on a terminal)");
                    return barge_cli_fail(app, err);
                }
            }
            _cleanup_json_ json_t *in = json_pack("{s:s, s:s, s:s}", "cluster", app->cfg->cluster,
                                                  "task", arn, "reason", "Task stopped by barge");
            if (barge_cli_call(app, "ecs", "StopTask", in, NULL, &err) < 0)
                return barge_cli_fail(app, err);
            barge_cli_log(app, "Task %s is stopping", arn);
        }
    }
    return 0;
}
