/* The barge CLI's shared state and helpers: the application (global options,
 * the loaded config, AWS clients, template functions), option parsing,
 * ecspresso-style logging and progress output, file loading through
 * templates and Jsonnet, and the service helpers the commands share (status,
 * waiting for a stable service). Internal to src/cli. */
#ifndef BARGE_CLI_CLI_H
#define BARGE_CLI_CLI_H

#include <jansson.h>

#include "cli/defs.h"
#include "cli/jsonnet.h"
#include "cli/template.h"
#include "common/awsapi.h"

#define BARGE_CLI_VERSION "0.1.0"
/* The ecspresso release whose behaviour this CLI follows; `required_version`
 * constraints in ecspresso configs are checked against it, since they were
 * written for ecspresso. */
#define BARGE_CLI_ECSPRESSO_VERSION "2.3.0"

/* ---- options ---- */

enum barge_cli_opt_type {
    BARGE_CLI_OPT_BOOL, /* bool *; negatable ones also take --no-NAME */
    BARGE_CLI_OPT_STR,  /* const char ** (borrowed from argv) */
    BARGE_CLI_OPT_INT,  /* long * */
    BARGE_CLI_OPT_LIST, /* json_t ** array of strings, repeatable (created on first use) */
};

struct barge_cli_opt {
    const char *name; /* NULL ends a table */
    enum barge_cli_opt_type type;
    void *target;
    const char *metavar;
    const char *help;
    bool negatable;
    bool *seen; /* optional: set when the option is given */
};

/* Parses argv (no program or command name) against the tables (NULL-name
 * terminated), in any order, "--name value" or "--name=value"; "--" ends
 * options. Positional arguments are returned in *pos (argv's strings; the
 * array is the caller's to free). Sets *help on --help/-h. */
int barge_cli_opts_parse(const struct barge_cli_opt *const *tables, size_t n_tables, int argc,
                         char **argv, char ***pos, size_t *n_pos, bool *help,
                         struct barge_error **err);
void barge_cli_opts_help(FILE *f, const struct barge_cli_opt *opts);

/* ---- config ---- */

struct barge_cli_config {
    char *path; /* the file read; NULL when there is none */
    char *dir;  /* its directory: definition and plugin paths are relative to it */
    char *region;
    char *cluster;            /* "default" when not set */
    char *service;            /* NULL when not set */
    char *service_definition; /* resolved against dir; NULL when not set */
    char *task_definition;
    double timeout; /* seconds; 600 when not set */
    char *required_version;
    json_t *plugins; /* as written */
    json_t *doc;     /* the whole rendered config */
};

void barge_cli_config_free(struct barge_cli_config *cfg);

struct barge_cli_app;
/* Reads the config file at path (see barge_cli_load_file), checks its keys
 * (unknown ones are warned about) and required_version. *out is the
 * caller's. */
int barge_cli_config_load(struct barge_cli_app *app, const char *path,
                          struct barge_cli_config **out, struct barge_error **err);
/* Exports KEY=VALUE lines of an envfile into the environment. */
int barge_cli_envfile_load(const char *path, struct barge_error **err);

/* Parses a Go duration ("10m", "1h30m", "300s", "1.5s") or a number of
 * nanoseconds into seconds. */
int barge_cli_parse_duration(const char *s, double *seconds, struct barge_error **err);
/* Checks version against a hashicorp/go-version constraint list
 * (">= 2.0.0, < 3", "~> 2.3"). Returns 1 when satisfied, 0 when not, -1
 * (with *err) when the constraint is malformed. */
int barge_cli_version_check(const char *constraint, const char *version, struct barge_error **err);

/* Looks address up in a terraform state (version 4): "aws_vpc.main.id",
 * "data.aws_subnet.x['a'].id", "module.m.aws_lb.this[0].arn",
 * "output.vpc_id". Strings come back as they are, other values as JSON.
 * *out is the caller's. */
int barge_cli_tfstate_lookup(const json_t *state, const char *address, char **out,
                             struct barge_error **err);

/* ---- the application ---- */

enum barge_cli_level { BARGE_CLI_DEBUG, BARGE_CLI_INFO, BARGE_CLI_WARN, BARGE_CLI_ERROR };

struct barge_cli_app {
    /* global options, borrowed from argv */
    const char *config_path;
    bool config_given;
    bool config_is_output; /* init: --config names the file to write, not to read */
    bool debug;
    bool no_color;
    json_t *envfiles;
    json_t *ext_str_list, *ext_code_list;
    const char *timeout_opt;
    const char *profile, *region_opt, *endpoint_url;
    const char *assume_role_arn;

    /* derived */
    json_t *ext_str, *ext_code; /* {name: value} */
    struct barge_cli_config *cfg;
    struct barge_aws_config *aws;
    struct barge_aws_client *clients[16];
    const char *client_names[16];
    /* Clients of another region than aws's (barge_cli_call_in): their
     * configurations are aws's with the region changed. */
    struct barge_aws_client *region_clients[8];
    struct barge_aws_config *region_cfgs[8];
    const char *region_services[8];
    struct barge_cli_funcs *funcs; /* defaults, ssm, secretsmanager, tfstate plugins */
    json_t *cache;                 /* plugin look-ups, by function and argument */
    void **plugins;                /* tfstate plugin instances, owned */
    size_t n_plugins;
    bool jsonnet_json; /* evaluate .json through Jsonnet too (config files) */
    /* Definitions made in memory (compose up) instead of read from files. */
    json_t *taskdef_doc, *servicedef_doc;
    double timeout;
    bool color_err, color_out; /* colour on stderr / stdout */
    bool tty_err;              /* a live progress line may be drawn on stderr */
    bool progress_shown;
    double started; /* monotonic seconds at start, for elapsed times */
};

/* Reads the envfiles, the ext vars and the config (unless need_config is
 * false and no --config was given and no default file exists), resolves the
 * AWS configuration and installs the template functions. */
int barge_cli_app_init(struct barge_cli_app *app, bool need_config, struct barge_error **err);
void barge_cli_app_release(struct barge_cli_app *app);

/* The client of an AWS service ("ecs", "logs", "ssm", ...), made on first
 * use and owned by the app. */
struct barge_aws_client *barge_cli_client(struct barge_cli_app *app, const char *service,
                                          struct barge_error **err);
/* barge_aws_call through barge_cli_client. */
int barge_cli_call(struct barge_cli_app *app, const char *service, const char *op, const json_t *in,
                   json_t **out, struct barge_error **err);

/* The same in region (NULL or the configured one: barge_cli_call), e.g. a
 * container's awslogs-region: same endpoint and credentials, the request
 * signed for region. */
int barge_cli_call_in(struct barge_cli_app *app, const char *service, const char *region,
                      const char *op, const json_t *in, json_t **out, struct barge_error **err);

/* Reads a file the way ecspresso reads definitions: .jsonnet is evaluated
 * first, then the text goes through the template engine, then it is parsed
 * as JSON (or YAML for .yml/.yaml). *out is a new reference. */
int barge_cli_load_file(struct barge_cli_app *app, const char *path, json_t **out,
                        struct barge_error **err);
/* The same, returning the rendered text instead (render). */
int barge_cli_render_file(struct barge_cli_app *app, const char *path, char **out,
                          struct barge_error **err);
/* The task definition of the config (or path), as RegisterTaskDefinition
 * input; unknown fields are warned about. */
int barge_cli_load_taskdef(struct barge_cli_app *app, const char *path, json_t **out,
                           struct barge_error **err);
int barge_cli_load_servicedef(struct barge_cli_app *app, json_t **out, struct barge_error **err);

/* Removes from obj's "tags" the keys the config's ignore.tags lists (tags
 * managed elsewhere, e.g. by Terraform), so diff and deploy leave them be. */
void barge_cli_ignore_tags(struct barge_cli_app *app, json_t *obj);
bool barge_cli_tag_ignored(struct barge_cli_app *app, const char *key);

/* STS AssumeRole of arn with the credentials found; its temporary
 * credentials replace them for every client (--assume-role-arn). An
 * endpoint that does not serve STS (barged today) is an error that says so
 * (BARGE_ERR_UNSUPPORTED). */
int barge_cli_assume_role(struct barge_cli_app *app, const char *arn, struct barge_error **err);
/* The credentials in an AssumeRole answer (XML, HTTP status); on an error
 * answer, the error it reports. The strings are the caller's. */
int barge_cli_sts_parse_credentials(const char *xml, long status, char **akid, char **secret,
                                    char **token, struct barge_error **err);

/* ---- output ---- */

/* ecspresso's log line on stderr: "2006/01/02 15:04:05 <service>/<cluster>
 * [LEVEL] message" (no level for plain progress messages, level 0 below). */
void barge_cli_log(struct barge_cli_app *app, const char *fmt, ...) BARGE_PRINTF(2, 3);
void barge_cli_logl(struct barge_cli_app *app, enum barge_cli_level level, const char *fmt, ...)
    BARGE_PRINTF(3, 4);
/* Writes a line to stdout (clearing a live progress line first). */
void barge_cli_out(struct barge_cli_app *app, const char *fmt, ...) BARGE_PRINTF(2, 3);
/* Draws the live one-line status on a terminal; does nothing otherwise. */
void barge_cli_progress(struct barge_cli_app *app, const char *fmt, ...) BARGE_PRINTF(2, 3);
void barge_cli_progress_clear(struct barge_cli_app *app);
/* Whole seconds as Go prints a time.Duration ("10m0s", "1h0m0s", "45s");
 * caller frees. */
char *barge_cli_fmt_duration(double seconds);
/* "2006/01/02 15:04:05" in local time for epoch seconds; out[20]. */
void barge_cli_fmt_time(double epoch, char out[20]);
/* ANSI colour codes, or "" when colour is off for that stream. */
const char *barge_cli_color(struct barge_cli_app *app, bool out, const char *code);
/* Asks a yes/no question on the terminal; false when stdin is not one. */
bool barge_cli_confirm(struct barge_cli_app *app, const char *question);

/* Makes SIGINT/SIGTERM set a flag instead of killing the process, so that
 * waits end cleanly and report "Interrupted". */
void barge_cli_signals_install(void);
/* True once SIGINT/SIGTERM arrived; waits stop early. */
bool barge_cli_interrupted(void);
/* Sleeps up to seconds, returning early on interruption. */
void barge_cli_sleep(double seconds);
double barge_cli_now_mono(void);

/* ---- services ---- */

/* DescribeServices of the config's service (with tags). *svc is NULL when
 * the service does not exist or is INACTIVE. */
int barge_cli_describe_service(struct barge_cli_app *app, json_t **svc, struct barge_error **err);
/* The status block (Service:, Cluster:, TaskDefinition:, Deployments:,
 * AutoScaling:, LoadBalancers:, Events:) with the last n events. */
void barge_cli_print_status(struct barge_cli_app *app, const json_t *svc, int events);
/* targets.c: the text of the first <tag>...</tag> in [b, e) with XML's
 * predefined entities decoded, or NULL (for the few fixed elements read from
 * query-protocol answers). Caller frees. */
char *barge_cli_xml_text(const char *b, const char *e, const char *tag);
/* The targets of a target group and their health (ELBv2
 * DescribeTargetGroups and DescribeTargetHealth): *tg_name and *targets
 * ([{id, port, state, reason?, description?}]) are the caller's; a group
 * that does not exist is BARGE_ERR_NOT_FOUND. */
int barge_cli_target_health(struct barge_cli_app *app, const char *tg_arn, char **tg_name,
                            json_t **targets, struct barge_error **err);
/* "10.0.0.5:80 unhealthy (Target.Timeout)"; caller frees. */
char *barge_cli_format_target(const json_t *target);
/* The LoadBalancers: block of the status: each target group of the
 * service's loadBalancers with its targets' health (nothing where ELB cannot
 * be asked). */
void barge_cli_print_target_health(struct barge_cli_app *app, const json_t *svc);
/* "   PRIMARY web:3 desired:2 pending:0 running:2 COMPLETED(...)"; caller frees. */
char *barge_cli_format_deployment(const json_t *dep);
/* "web:3" from an ARN; caller frees. */
char *barge_cli_td_name(const char *arn);
/* "web" from an ARN or "web:3"; caller frees. */
char *barge_cli_td_family(const char *arn);
/* The PRIMARY deployment of a described service (borrowed), or NULL. */
const json_t *barge_cli_primary_deployment(const json_t *svc);
/* Waits until the service is stable (one deployment, running == desired),
 * printing events that `before` (the service described before the change;
 * NULL: none) did not have and deployment changes, up to the timeout. When
 * deployment (as CreateService/UpdateService returned it) is set and fails
 * (circuit breaker) or is
 * replaced by a rollback, fails at once with a message saying so. */
int barge_cli_wait_stable(struct barge_cli_app *app, const json_t *before, const json_t *deployment,
                          struct barge_error **err);
/* The ARN of the newest ACTIVE revision of family; caller frees. */
char *barge_cli_latest_taskdef(struct barge_cli_app *app, const char *family,
                               struct barge_error **err);
/* Registers td (RegisterTaskDefinition input) and returns the new ARN. */
char *barge_cli_register(struct barge_cli_app *app, const json_t *td, struct barge_error **err);

/* Checks that an image reference exists in its registry (a manifest
 * request with the registry's auth; ECR credentials for ECR and barged
 * registries). Errors: BARGE_ERR_NOT_FOUND, ACCESS_DENIED, IO. */
int barge_cli_image_check(struct barge_cli_app *app, const char *reference,
                          struct barge_error **err);

/* deploy's pipeline with its defaults (register, update or create, wait),
 * for commands that build definitions themselves (compose up). tasks -1
 * keeps the definition's desired count. */
int barge_cli_deploy_run(struct barge_cli_app *app, long tasks, bool wait, bool force_new,
                         struct barge_error **err);

/* ---- commands ---- */

typedef int (*barge_cli_cmd_fn)(struct barge_cli_app *app, int argc, char **argv);

int barge_cli_cmd_deploy(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_scale(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_refresh(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_rollback(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_wait(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_status(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_delete(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_register(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_deregister(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_revisions(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_diff(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_render(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_verify(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_init(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_run(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_tasks(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_exec(struct barge_cli_app *app, int argc, char **argv);
/* Lets the user choose one of tasks (described) as `tasks --find` does;
 * its index, or -1 with err. */
long barge_cli_tasks_pick(struct barge_cli_app *app, const json_t *tasks, struct barge_error **err);
int barge_cli_cmd_usage(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_join_token(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_logs(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_compose(struct barge_cli_app *app, int argc, char **argv);
int barge_cli_cmd_appspec(struct barge_cli_app *app, int argc, char **argv);

/* Parses a command's options plus the global ones; prints help and returns
 * 1 (with *exit_code 0) on --help, -1 (with *exit_code 2 and a message) on a
 * usage error, 0 to go on. usage is "barge deploy [options]", summary one
 * line. */
int barge_cli_parse(struct barge_cli_app *app, const char *usage, const char *summary,
                    const struct barge_cli_opt *opts, int argc, char **argv, char ***pos,
                    size_t *n_pos, int *exit_code);
/* barge_cli_parse, then a check that at most max_pos positional arguments
 * were given, then barge_cli_app_init. Returns 0 to go on; otherwise the
 * command returns *exit_code. *pos (may be NULL when not wanted) is the
 * caller's to free. */
int barge_cli_start(struct barge_cli_app *app, const char *usage, const char *summary,
                    const struct barge_cli_opt *opts, int argc, char **argv, bool need_config,
                    size_t max_pos, char ***pos, size_t *n_pos, int *exit_code);
/* Reports err ("[ERROR] FAILED. <message>") and returns 1. */
int barge_cli_fail(struct barge_cli_app *app, struct barge_error *err);

#endif
