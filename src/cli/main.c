/* barge: the CLI. An ecspresso-compatible deploy tool speaking only the
 * public, SigV4-signed APIs (so it works against barged and real AWS alike),
 * plus docker-compose import. This file finds the command (global options may
 * come before it) and dispatches; each command lives in src/cli/cmd_*.c.
 * Exit codes: 0 success, 1 failure, 2 usage error; `run` exits with its
 * watched container's exit code when that is what failed. */
#include <curl/curl.h>
#include <string.h>

#include "cli/cli.h"

struct command {
    const char *name;
    barge_cli_cmd_fn fn;
    const char *summary;
};

static int cmd_version(struct barge_cli_app *app, int argc, char **argv);

static const struct command commands[] = {
    {"deploy", barge_cli_cmd_deploy, "register and deploy; create the service when missing"},
    {"scale", barge_cli_cmd_scale, "change the desired count"},
    {"refresh", barge_cli_cmd_refresh, "replace the service's tasks"},
    {"rollback", barge_cli_cmd_rollback, "go back to the previous task definition"},
    {"status", barge_cli_cmd_status, "show the service, its deployments and events"},
    {"wait", barge_cli_cmd_wait, "wait until the service is stable"},
    {"register", barge_cli_cmd_register, "register the task definition"},
    {"deregister", barge_cli_cmd_deregister, "deregister task definition revisions"},
    {"revisions", barge_cli_cmd_revisions, "list the family's revisions"},
    {"diff", barge_cli_cmd_diff, "diff local definitions against the service"},
    {"verify", barge_cli_cmd_verify, "check images, secrets, log groups and the cluster"},
    {"render", barge_cli_cmd_render, "print the config or definitions after templates"},
    {"init", barge_cli_cmd_init, "write config and definitions from an existing service"},
    {"run", barge_cli_cmd_run, "run a one-off task and wait for it"},
    {"tasks", barge_cli_cmd_tasks, "list, find or stop the service's tasks"},
    {"exec", barge_cli_cmd_exec, "run a command in a container of a running task"},
    {"logs", barge_cli_cmd_logs, "show the service's container logs, or one task's (--task)"},
    {"delete", barge_cli_cmd_delete, "delete the service"},
    {"appspec", barge_cli_cmd_appspec, "print the CodeDeploy AppSpec for the service"},
    {"compose", barge_cli_cmd_compose, "docker-compose import: convert, up"},
    {"usage", barge_cli_cmd_usage, "metered usage and cost of FARGATE tasks"},
    {"join-token", barge_cli_cmd_join_token, "create, list or revoke tokens hosts join with"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: barge [global options] COMMAND [options]\n"
               "Deploy and operate services on barge (or Amazon ECS) with ecspresso's config "
               "files.\n\nCommands:\n");
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'barge COMMAND --help' for a command's options.\n");
}

static int cmd_version(struct barge_cli_app *app, int argc, char **argv)
{
    int code;
    char **pos = NULL;
    size_t n = 0;
    if (barge_cli_parse(app, "barge version", "Print barge's version.", NULL, argc, argv, &pos, &n,
                        &code) != 0) {
        free(pos);
        return code;
    }
    free(pos);
    printf("barge v%s (ecspresso %s compatible)\n", BARGE_CLI_VERSION, BARGE_CLI_ECSPRESSO_VERSION);
    return 0;
}

/* Global options that take a value, so that "barge --config x.yml deploy"
 * does not mistake "x.yml" for the command. */
static bool takes_value(const char *arg)
{
    static const char *const names[] = {"--config",       "--envfile", "--ext-str",
                                        "--ext-code",     "--timeout", "--profile",
                                        "--endpoint-url", "--region",  "--assume-role-arn"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(names); i++)
        if (strcmp(arg, names[i]) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    int ci = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (argv[i][0] != '-') {
            ci = i;
            break;
        }
        if (takes_value(argv[i]))
            i++;
    }
    if (ci < 0) {
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                usage(stdout);
                return 0;
            }
            if (strcmp(argv[i], "--version") == 0) {
                printf("barge v%s (ecspresso %s compatible)\n", BARGE_CLI_VERSION,
                       BARGE_CLI_ECSPRESSO_VERSION);
                return 0;
            }
        }
        usage(stderr);
        return 2;
    }
    const char *name = argv[ci];
    if (strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "barge: unknown command '%s' (see 'barge --help')\n", name);
        return 2;
    }
    /* The command sees every argument but its own name. */
    char **args = barge_xcalloc((size_t)argc, sizeof(char *));
    int n = 0;
    for (int i = 1; i < argc; i++)
        if (i != ci)
            args[n++] = argv[i];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    barge_cli_signals_install();
    struct barge_cli_app app = {0};
    int rc = cmd->fn(&app, n, args);
    barge_cli_app_release(&app);
    free(args);
    curl_global_cleanup();
    return rc;
}
