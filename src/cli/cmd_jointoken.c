/* barge join-token create|list|revoke: the tokens with which hosts register
 * their barge-agent without an access key (src/api/jointokens.c). barged
 * serves them under /barge/v1/join-tokens; these commands call it with the
 * same credentials and endpoint as every other command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/awsapi.h"
#include "common/isotime.h"
#include "common/json.h"

#define PATH "/barge/v1/join-tokens"

/* Sends one request and parses the answer; a refusal becomes err. */
static int call(struct barge_cli_app *app, const char *method, const char *path, const json_t *body,
                json_t **out, struct barge_error **err)
{
    struct barge_aws_client *c = barge_cli_client(app, "ecs", err);
    if (!c)
        return -1;
    _cleanup_free_ char *text = body ? barge_json_dump(body) : NULL;
    struct barge_kv hdrs[] = {{"Content-Type", "application/json"}};
    struct barge_aws_response resp = {0};
    if (barge_aws_request(c, method, path, "", text ? hdrs : NULL, text ? 1 : 0, text,
                          text ? strlen(text) : 0, &resp, err) < 0)
        return -1;
    json_error_t jerr;
    *out = json_loads(resp.body ? resp.body : "", 0, &jerr);
    long status = resp.status;
    barge_aws_response_release(&resp);
    if (status != 200 || !*out) {
        barge_error_set(err, BARGE_ERR_CLIENT,
                        "join-token: the endpoint answered %ld: %s (is this barged? real AWS has "
                        "no join tokens)",
                        status, barge_json_str(*out, "message", "no message"));
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static int print_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", text);
    free(text);
    return 0;
}

static bool output_ok(struct barge_cli_app *app, const char *output, int *code)
{
    if (strcmp(output, "table") == 0 || strcmp(output, "json") == 0)
        return true;
    struct barge_error *err = NULL;
    barge_error_set(&err, BARGE_ERR_INVALID, "--output takes table or json, not '%s'", output);
    *code = barge_cli_fail(app, err);
    return false;
}

static int cmd_create(struct barge_cli_app *app, int argc, char **argv)
{
    const char *cluster = NULL, *ttl = "24h", *output = "table";
    long uses = 0;
    const struct barge_cli_opt opts[] = {
        {"cluster", BARGE_CLI_OPT_STR, &cluster, "NAME",
         "hosts may only join this cluster (default: any cluster, and the Fargate pool)", false,
         NULL},
        {"ttl", BARGE_CLI_OPT_STR, &ttl, "DURATION",
         "how long the token is valid: 30m, 24h, 7d ... (default 24h)", false, NULL},
        {"uses", BARGE_CLI_OPT_INT, &uses, "N",
         "how many hosts may register with it (default: no limit)", false, NULL},
        {"output", BARGE_CLI_OPT_STR, &output, "table|json", "output format (default table)", false,
         NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge join-token create [options]",
                        "Create a join token, with which a host's barge-agent registers without "
                        "an access key (barge-agent --join-token-file FILE). The token is printed "
                        "once; barged keeps only its hash.",
                        opts, argc, argv, false, 0, NULL, NULL, &code) < 0)
        return code;
    if (!output_ok(app, output, &code))
        return code;
    struct barge_error *err = NULL;
    double seconds;
    if (barge_cli_parse_duration(ttl, &seconds, &err) < 0)
        return barge_cli_fail(app, err);
    if (uses < 0) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--uses wants a number of hosts, not %ld", uses);
        return barge_cli_fail(app, err);
    }
    _cleanup_json_ json_t *in = json_pack("{s:I, s:I}", "ttlSeconds", (json_int_t)seconds,
                                          "maxUses", (json_int_t)uses),
                          *out = NULL;
    if (cluster)
        json_object_set_new(in, "cluster", json_string(cluster));
    if (call(app, "POST", PATH, in, &out, &err) < 0)
        return barge_cli_fail(app, err);
    if (strcmp(output, "json") == 0)
        return print_json(out);
    char expires[BARGE_ISOTIME_MAX], limit[32] = "no use limit";
    barge_isotime_format(json_number_value(json_object_get(out, "expiresAt")), 0, "Z", expires);
    if (uses)
        snprintf(limit, sizeof(limit), "%ld use(s)", uses);
    printf("%s\n", barge_json_str(out, "token", ""));
    fprintf(stderr,
            "join token %s: cluster %s, expires %s, %s; give it to barge-agent with "
            "--join-token-file FILE or BARGE_JOIN_TOKEN\n",
            barge_json_str(out, "id", ""), barge_json_str(out, "cluster", "(any)"), expires, limit);
    return 0;
}

static int cmd_list(struct barge_cli_app *app, int argc, char **argv)
{
    const char *output = "table";
    const struct barge_cli_opt opts[] = {
        {"output", BARGE_CLI_OPT_STR, &output, "table|json", "output format (default table)", false,
         NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge join-token list [options]",
                        "List the join tokens (never their secrets) with their uses and status.",
                        opts, argc, argv, false, 0, NULL, NULL, &code) < 0)
        return code;
    if (!output_ok(app, output, &code))
        return code;
    struct barge_error *err = NULL;
    _cleanup_json_ json_t *out = NULL;
    if (call(app, "GET", PATH, NULL, &out, &err) < 0)
        return barge_cli_fail(app, err);
    if (strcmp(output, "json") == 0)
        return print_json(out);
    printf("%-20s %-20s %-9s %-20s %s\n", "ID", "CLUSTER", "USES", "EXPIRES", "STATUS");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(out, "joinTokens"), i, t)
    {
        char expires[BARGE_ISOTIME_MAX], uses[24];
        barge_isotime_format(json_number_value(json_object_get(t, "expiresAt")), 0, "Z", expires);
        json_int_t max = barge_json_int(t, "maxUses", 0);
        if (max)
            snprintf(uses, sizeof(uses), "%lld/%lld", (long long)barge_json_int(t, "uses", 0),
                     (long long)max);
        else
            snprintf(uses, sizeof(uses), "%lld", (long long)barge_json_int(t, "uses", 0));
        printf("%-20s %-20s %-9s %-20s %s\n", barge_json_str(t, "id", ""),
               barge_json_str(t, "cluster", "(any)"), uses, expires,
               barge_json_str(t, "status", ""));
    }
    return 0;
}

static int cmd_revoke(struct barge_cli_app *app, int argc, char **argv)
{
    int code;
    char **pos = NULL;
    size_t n_pos = 0;
    if (barge_cli_start(app, "barge join-token revoke ID",
                        "Revoke a join token: hosts can no longer register with it (those that "
                        "did stay registered).",
                        NULL, argc, argv, false, 1, &pos, &n_pos, &code) < 0)
        return code;
    const char *id = n_pos ? pos[0] : NULL;
    free(pos);
    if (!id) {
        fprintf(stderr, "barge: join-token revoke needs the token's ID (barge join-token list)\n");
        return 2;
    }
    struct barge_error *err = NULL;
    _cleanup_free_ char *enc = barge_aws_uri_encode(id, false);
    _cleanup_free_ char *path = barge_xasprintf("%s/%s", PATH, enc);
    _cleanup_json_ json_t *out = NULL;
    if (call(app, "DELETE", path, NULL, &out, &err) < 0)
        return barge_cli_fail(app, err);
    printf("revoked join token %s\n", barge_json_str(out, "id", id));
    return 0;
}

int barge_cli_cmd_join_token(struct barge_cli_app *app, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct barge_cli_app *app, int argc, char **argv);
    } subs[] = {{"create", cmd_create}, {"list", cmd_list}, {"revoke", cmd_revoke}};
    /* The first argument that names a subcommand is it; the others (global
     * options included) go to the subcommand's parser. */
    for (int i = 0; i < argc; i++) {
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(subs); k++) {
            if (strcmp(argv[i], subs[k].name) != 0)
                continue;
            char **args = barge_xcalloc((size_t)argc, sizeof(char *));
            int n = 0;
            for (int j = 0; j < argc; j++)
                if (j != i)
                    args[n++] = argv[j];
            int rc = subs[k].fn(app, n, args);
            free(args);
            return rc;
        }
    }
    bool help = false;
    for (int i = 0; i < argc; i++)
        help = help || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    fprintf(help ? stdout : stderr,
            "Usage: barge join-token create|list|revoke [options]\n"
            "Join tokens let a host's barge-agent register without an access key.\n\n"
            "  create   create a token (--cluster NAME, --ttl 24h, --uses N)\n"
            "  list     list the tokens with their uses and status\n"
            "  revoke   revoke a token by its ID\n\n"
            "Run 'barge join-token SUBCOMMAND --help' for its options.\n");
    return help ? 0 : 2;
}
