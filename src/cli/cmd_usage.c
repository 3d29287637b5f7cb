/* barge usage: what FARGATE tasks cost, as barged meters them (per second
 * with a one-minute minimum, from image pull start to stop). barged serves the
 * records at GET /barge/v1/usage; this command asks for them with the same
 * credentials and endpoint as every other command and prints a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/awsapi.h"
#include "common/json.h"

int barge_cli_cmd_usage(struct barge_cli_app *app, int argc, char **argv)
{
    const char *cluster = NULL, *service = NULL, *since = NULL, *output = "table";
    const struct barge_cli_opt opts[] = {
        {"cluster", BARGE_CLI_OPT_STR, &cluster, "NAME",
         "only this cluster (default: the config's, or every cluster)", false, NULL},
        {"service", BARGE_CLI_OPT_STR, &service, "NAME", "only this service's tasks", false, NULL},
        {"since", BARGE_CLI_OPT_STR, &since, "DURATION",
         "only tasks running in the last 24h, 30m ...", false, NULL},
        {"output", BARGE_CLI_OPT_STR, &output, "table|json", "output format (default table)", false,
         NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge usage [options]",
                        "Show the metered usage and cost of FARGATE tasks.", opts, argc, argv,
                        false, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        barge_error_set(&err, BARGE_ERR_INVALID, "--output takes table or json, not '%s'", output);
        return barge_cli_fail(app, err);
    }
    if (!cluster && app->cfg)
        cluster = app->cfg->cluster;
    double since_s = 0;
    if (since) {
        double d;
        if (barge_cli_parse_duration(since, &d, &err) < 0)
            return barge_cli_fail(app, err);
        since_s = (double)time(NULL) - d;
    }
    char query[1024] = "";
    size_t off = 0;
    if (cluster) {
        _cleanup_free_ char *e = barge_aws_uri_encode(cluster, false);
        off += (size_t)snprintf(query + off, sizeof(query) - off, "cluster=%s", e);
    }
    if (service) {
        _cleanup_free_ char *e = barge_aws_uri_encode(service, false);
        off +=
            (size_t)snprintf(query + off, sizeof(query) - off, "%sservice=%s", off ? "&" : "", e);
    }
    if (since)
        off += (size_t)snprintf(query + off, sizeof(query) - off, "%ssince=%.0f", off ? "&" : "",
                                since_s);
    struct barge_aws_client *c = barge_cli_client(app, "ecs", &err);
    if (!c)
        return barge_cli_fail(app, err);
    struct barge_aws_response resp = {0};
    if (barge_aws_request(c, "GET", "/barge/v1/usage", query, NULL, 0, NULL, 0, &resp, &err) < 0)
        return barge_cli_fail(app, err);
    json_error_t jerr;
    _cleanup_json_ json_t *body = json_loads(resp.body ? resp.body : "", 0, &jerr);
    long status = resp.status;
    barge_aws_response_release(&resp);
    if (status != 200 || !body) {
        barge_error_set(&err, BARGE_ERR_CLIENT,
                        "usage: the endpoint answered %ld: %s (is this barged? real AWS has no "
                        "such endpoint; use Cost Explorer there)",
                        status, barge_json_str(body, "message", "no message"));
        return barge_cli_fail(app, err);
    }
    if (strcmp(output, "json") == 0) {
        char *text = json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", text);
        free(text);
        return 0;
    }
    printf("%-34s %-20s %5s %6s %6s %9s %9s %10s\n", "TASK", "SERVICE", "SPOT", "VCPU", "GB",
           "SECONDS", "BILLED", "COST USD");
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(body, "usage"), i, u)
    {
        const char *arn = barge_json_str(u, "taskArn", "");
        const char *slash = strrchr(arn, '/');
        printf("%-34s %-20s %5s %6.2f %6.2f %9lld %9lld %10.6f%s\n", slash ? slash + 1 : arn,
               barge_json_str(u, "service", "-"), barge_json_bool(u, "spot", false) ? "yes" : "no",
               json_number_value(json_object_get(u, "vcpu")),
               json_number_value(json_object_get(u, "memoryGB")),
               (long long)barge_json_int(u, "seconds", 0),
               (long long)barge_json_int(u, "billedSeconds", 0),
               json_number_value(json_object_get(u, "cost")),
               barge_json_bool(u, "running", false) ? "  (running)" : "");
    }
    json_t *t = json_object_get(body, "totals");
    printf("%d task(s): %lld billed seconds, %.1f vCPU-seconds, %.1f GB-seconds, %.6f USD\n",
           (int)barge_json_int(t, "tasks", 0), (long long)barge_json_int(t, "billedSeconds", 0),
           json_number_value(json_object_get(t, "vcpuSeconds")),
           json_number_value(json_object_get(t, "gbSeconds")),
           json_number_value(json_object_get(t, "cost")));
    return 0;
}
