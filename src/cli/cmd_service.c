/* status and delete: the service as it is, and its removal. */
#include <string.h>

#include "cli/cli.h"
#include "common/json.h"

static int not_found(struct barge_cli_app *app)
{
    struct barge_error *err = NULL;
    barge_error_set(&err, BARGE_ERR_NOT_FOUND, "service '%s' is not found in cluster '%s'",
                    app->cfg->service, app->cfg->cluster);
    return barge_cli_fail(app, err);
}

int barge_cli_cmd_status(struct barge_cli_app *app, int argc, char **argv)
{
    long events = 10;
    const struct barge_cli_opt opts[] = {
        {"events", BARGE_CLI_OPT_INT, &events, "N", "how many recent events to show (default 10)",
         false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge status [options]",
                        "Show the service, its deployments and its recent events.", opts, argc,
                        argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (barge_cli_describe_service(app, &svc, &err) < 0)
        return barge_cli_fail(app, err);
    if (!svc)
        return not_found(app);
    barge_cli_print_status(app, svc, (int)events);
    return 0;
}

int barge_cli_cmd_delete(struct barge_cli_app *app, int argc, char **argv)
{
    bool dry_run = false, force = false, terminate = false;
    const struct barge_cli_opt opts[] = {
        {"dry-run", BARGE_CLI_OPT_BOOL, &dry_run, NULL, "show what would be deleted", false, NULL},
        {"force", BARGE_CLI_OPT_BOOL, &force, NULL, "do not ask for the service name", false, NULL},
        {"terminate", BARGE_CLI_OPT_BOOL, &terminate, NULL,
         "delete even with running tasks, stopping them", false, NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge delete [options]", "Delete the service.", opts, argc, argv,
                        true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    barge_cli_log(app, "Deleting service%s", dry_run ? " DRY RUN" : "");
    _cleanup_json_ json_t *svc = NULL;
    if (barge_cli_describe_service(app, &svc, &err) < 0)
        return barge_cli_fail(app, err);
    if (!svc)
        return not_found(app);
    barge_cli_print_status(app, svc, 3);
    if (dry_run) {
        barge_cli_log(app, "DRY RUN OK");
        return 0;
    }
    if (!force) {
        if (!isatty(0)) {
            barge_error_set(&err, BARGE_ERR_INVALID,
                            "not a terminal to confirm on: use --force to delete '%s'",
                            app->cfg->service);
            return barge_cli_fail(app, err);
        }
        fprintf(stderr, "Enter the service name to DELETE: ");
        fflush(stderr);
        char line[256] = "";
        if (!fgets(line, sizeof(line), stdin))
            line[0] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, app->cfg->service) != 0) {
            barge_cli_log(app, "Aborted");
            barge_error_set(&err, BARGE_ERR_INVALID, "confirmation failed");
            return barge_cli_fail(app, err);
        }
    }
    _cleanup_json_ json_t *in = json_pack("{s:s, s:s, s:b}", "cluster", app->cfg->cluster,
                                          "service", app->cfg->service, "force", terminate);
    if (barge_cli_call(app, "ecs", "DeleteService", in, NULL, &err) < 0)
        return barge_cli_fail(app, err);
    barge_cli_log(app, "Service is deleted");
    return 0;
}
