/* verify: checks that what the definitions refer to exists before a deploy
 * needs it: images in their registries, secrets and parameters, environment
 * files in S3, log groups (by writing a test event), roles, load balancers'
 * target groups and the health of their targets, and the cluster.
 * Prints ecspresso's tree of "--> [OK]" / "[NG] reason" / "[SKIP] reason"
 * results. Unlike ecspresso it goes on after the first NG, so one run lists
 * every problem; it still fails when any check did. */
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/ids.h"
#include "common/json.h"

struct verify {
    struct barge_cli_app *app;
    bool get_secrets, put_logs, cache;
    json_t *done; /* image and log-group results already computed */
    int ng;
};

enum outcome { OK, NG, SKIP };

static void item(struct verify *v, int depth, const char *fmt, ...) BARGE_PRINTF(3, 4);
static void item(struct verify *v, int depth, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *s = barge_xvasprintf(fmt, ap);
    va_end(ap);
    barge_cli_out(v->app, "%*s%s\n", depth * 2, "", s);
}

static enum outcome result(struct verify *v, int depth, enum outcome o, const char *msg,
                           bool cached)
{
    static const char *const names[] = {"OK", "NG", "SKIP"};
    static const char *const colors[] = {"\033[32m", "\033[31m", "\033[33m"};
    const char *on = barge_cli_color(v->app, true, colors[o]);
    const char *off = *on ? "\033[0m" : "";
    barge_cli_out(v->app, "%*s--> %s[%s]%s%s%s%s\n", depth * 2, "", on, names[o], off,
                  msg && *msg ? " " : "", msg ? msg : "", cached ? " (cached)" : "");
    if (o == NG)
        v->ng++;
    return o;
}

/* The result line of a group of checks: NG when any check inside was. */
static void group_result(struct verify *v, int depth, int ng_before)
{
    int ng = v->ng;
    result(v, depth, ng > ng_before ? NG : OK, NULL, false);
    v->ng = ng;
}

/* Runs a check whose error (if any) becomes the NG message. */
static enum outcome from_err(struct verify *v, int depth, int rc, struct barge_error *err)
{
    enum outcome o = result(v, depth, rc < 0 ? NG : OK, rc < 0 && err ? err->message : NULL, false);
    barge_error_free(err);
    return o;
}

static enum outcome check_role(struct verify *v, int depth, const char *kind, const char *arn)
{
    item(v, depth, "%s[%s]", kind, arn);
    const char *slash = strrchr(arn, '/');
    const char *name = slash ? slash + 1 : arn;
    struct barge_error *err = NULL;
    struct barge_aws_client *iam = barge_cli_client(v->app, "iam", &err);
    if (!iam)
        return from_err(v, depth, -1, err);
    _cleanup_free_ char *ename = barge_aws_uri_encode(name, false);
    _cleanup_free_ char *body =
        barge_xasprintf("Action=GetRole&Version=2010-05-08&RoleName=%s", ename);
    struct barge_kv hdrs[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
    struct barge_aws_response r;
    if (barge_aws_request(iam, "POST", "/", NULL, hdrs, 1, body, strlen(body), &r, &err) < 0)
        return result(v, depth, SKIP, "IAM cannot be reached", false);
    barge_error_free(err);
    enum outcome o;
    if (r.status == 200 && strstr(r.body, "<GetRoleResponse")) {
        /* The trust policy must let ECS tasks assume the role. */
        o = strstr(r.body, "ecs-tasks.amazonaws.com")
                ? result(v, depth, OK, NULL, false)
                : result(v, depth, NG, "its trust policy does not allow ecs-tasks.amazonaws.com",
                         false);
    } else if (strstr(r.body, "NoSuchEntity")) {
        o = result(v, depth, NG, "the role does not exist", false);
    } else {
        o = result(v, depth, SKIP, "IAM is not available at this endpoint", false);
    }
    barge_aws_response_release(&r);
    return o;
}

static enum outcome check_image(struct verify *v, int depth, const char *image)
{
    item(v, depth, "Image[%s]", image);
    _cleanup_free_ char *key = barge_xasprintf("image\x1f%s", image);
    json_t *prev = json_object_get(v->done, key);
    if (prev && v->cache) {
        const char *msg = json_string_value(prev);
        return result(v, depth, *msg ? NG : OK, msg, true);
    }
    struct barge_error *err = NULL;
    int rc = barge_cli_image_check(v->app, image, &err);
    json_object_set_new(v->done, key, json_string(rc < 0 && err ? err->message : ""));
    return from_err(v, depth, rc, err);
}

/* SSM parameter name from a valueFrom: an ARN or a name. */
static char *parameter_name(const char *value_from)
{
    const char *p = strstr(value_from, ":parameter");
    if (!barge_str_has_prefix(value_from, "arn:") || !p)
        return barge_xstrdup(value_from);
    p += strlen(":parameter");
    /* parameter/name is "name"; parameter/a/b is the path "/a/b". */
    if (strchr(p + 1, '/'))
        return barge_xstrdup(p);
    return barge_xstrdup(p + 1);
}

static enum outcome check_secret(struct verify *v, int depth, const char *name,
                                 const char *value_from)
{
    item(v, depth, "Secret %s[%s]", name, value_from);
    if (!v->get_secrets)
        return result(v, depth, SKIP, "--no-get-secrets", false);
    struct barge_error *err = NULL;
    if (barge_str_has_prefix(value_from, "arn:aws:secretsmanager:")) {
        /* arn:aws:secretsmanager:region:account:secret:name[:json-key[:stage[:id]]] */
        _cleanup_free_ char *copy = barge_xstrdup(value_from);
        char *parts[10] = {0};
        size_t n = 0;
        char *save = NULL;
        for (char *t = strtok_r(copy, ":", &save); t && n < 10; t = strtok_r(NULL, ":", &save))
            parts[n++] = t;
        if (n < 7)
            return result(v, depth, NG, "malformed secret ARN", false);
        _cleanup_free_ char *id = barge_xasprintf("%s:%s:%s:%s:%s:%s:%s", parts[0], parts[1],
                                                  parts[2], parts[3], parts[4], parts[5], parts[6]);
        _cleanup_json_ json_t *in = json_pack("{s:s}", "SecretId", id);
        if (n > 8 && *parts[8])
            json_object_set_new(in, "VersionStage", json_string(parts[8]));
        if (n > 9 && *parts[9])
            json_object_set_new(in, "VersionId", json_string(parts[9]));
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call(v->app, "secretsmanager", "GetSecretValue", in, &out, &err) < 0)
            return from_err(v, depth, -1, err);
        if (n > 7 && *parts[7]) {
            _cleanup_json_ json_t *doc =
                json_loads(barge_json_str(out, "SecretString", ""), 0, NULL);
            if (!json_object_get(doc, parts[7])) {
                _cleanup_free_ char *m =
                    barge_xasprintf("the secret has no JSON key '%s'", parts[7]);
                return result(v, depth, NG, m, false);
            }
        }
        return result(v, depth, OK, NULL, false);
    }
    _cleanup_free_ char *pname = parameter_name(value_from);
    _cleanup_json_ json_t *in = json_pack("{s:[s], s:b}", "Names", pname, "WithDecryption", 1);
    _cleanup_json_ json_t *out = NULL;
    if (barge_cli_call(v->app, "ssm", "GetParameters", in, &out, &err) < 0)
        return from_err(v, depth, -1, err);
    if (json_array_size(json_object_get(out, "InvalidParameters")) ||
        !json_array_size(json_object_get(out, "Parameters"))) {
        _cleanup_free_ char *m = barge_xasprintf("parameter '%s' is not found", pname);
        return result(v, depth, NG, m, false);
    }
    return result(v, depth, OK, NULL, false);
}

static enum outcome check_logs(struct verify *v, int depth, const char *container, const json_t *lc)
{
    const char *driver = barge_json_str(lc, "logDriver", "");
    item(v, depth, "LogConfiguration[%s]", driver);
    if (strcmp(driver, "awslogs") != 0)
        return result(v, depth, SKIP, "only awslogs is checked", false);
    json_t *o = json_object_get(lc, "options");
    const char *group = barge_json_str(o, "awslogs-group", NULL);
    const char *region = barge_json_str(o, "awslogs-region", NULL);
    if (!group)
        return result(v, depth, NG, "awslogs-group is not set", false);
    struct barge_error *err = NULL;
    if (barge_streq(barge_json_str(o, "awslogs-create-group", NULL), "true")) {
        _cleanup_json_ json_t *in = json_pack("{s:s}", "logGroupName", group);
        if (barge_cli_call_in(v->app, "logs", region, "CreateLogGroup", in, NULL, &err) < 0) {
            if (!barge_streq(err->type, "ResourceAlreadyExistsException"))
                return from_err(v, depth, -1, err);
            barge_error_free(err);
            err = NULL;
        }
    }
    if (!v->put_logs) {
        _cleanup_json_ json_t *in = json_pack("{s:s}", "logGroupNamePrefix", group);
        _cleanup_json_ json_t *out = NULL;
        if (barge_cli_call_in(v->app, "logs", region, "DescribeLogGroups", in, &out, &err) < 0)
            return from_err(v, depth, -1, err);
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(out, "logGroups"), i, g)
        {
            if (barge_streq(barge_json_str(g, "logGroupName", NULL), group))
                return result(v, depth, OK, NULL, false);
        }
        _cleanup_free_ char *m = barge_xasprintf("log group '%s' does not exist", group);
        return result(v, depth, NG, m, false);
    }
    /* Writing an event is the only proof that the group is writable. */
    char suffix[33];
    barge_id_hex32(suffix);
    const char *prefix = barge_json_str(o, "awslogs-stream-prefix", "barge");
    _cleanup_free_ char *stream =
        barge_xasprintf("%s/%s/barge-verify-%.8s", prefix, container, suffix);
    _cleanup_json_ json_t *cin =
        json_pack("{s:s, s:s}", "logGroupName", group, "logStreamName", stream);
    if (barge_cli_call_in(v->app, "logs", region, "CreateLogStream", cin, NULL, &err) < 0)
        return from_err(v, depth, -1, err);
    _cleanup_json_ json_t *pin = json_pack(
        "{s:s, s:s, s:[{s:I, s:s}]}", "logGroupName", group, "logStreamName", stream, "logEvents",
        "timestamp", (json_int_t)time(NULL) * 1000, "message", "barge verify");
    int rc = barge_cli_call_in(v->app, "logs", region, "PutLogEvents", pin, NULL, &err);
    _cleanup_error_ struct barge_error *derr = NULL;
    barge_cli_call_in(v->app, "logs", region, "DeleteLogStream", cin, NULL, &derr);
    return from_err(v, depth, rc, err);
}

static enum outcome check_envfile(struct verify *v, int depth, const json_t *ef)
{
    const char *value = barge_json_str(ef, "value", "");
    item(v, depth, "EnvironmentFile[%s]", value);
    if (!barge_streq(barge_json_str(ef, "type", "s3"), "s3"))
        return result(v, depth, SKIP, "only s3 environment files are checked", false);
    const char *p = strstr(value, ":::");
    if (!barge_str_has_prefix(value, "arn:") || !p)
        return result(v, depth, NG, "not an S3 object ARN", false);
    p += 3;
    size_t bn = strcspn(p, "/");
    if (!p[bn])
        return result(v, depth, NG, "the ARN names no object", false);
    _cleanup_free_ char *bucket = barge_xstrndup(p, bn);
    _cleanup_free_ char *eb = barge_aws_uri_encode(bucket, false);
    _cleanup_free_ char *ek = barge_aws_uri_encode(p + bn + 1, true);
    _cleanup_free_ char *path = barge_xasprintf("/%s/%s", eb, ek);
    struct barge_error *err = NULL;
    struct barge_aws_client *s3 = barge_cli_client(v->app, "s3", &err);
    struct barge_aws_response r;
    if (!s3 || barge_aws_request(s3, "HEAD", path, NULL, NULL, 0, NULL, 0, &r, &err) < 0)
        return from_err(v, depth, -1, err);
    long status = r.status;
    barge_aws_response_release(&r);
    if (status == 200)
        return result(v, depth, OK, NULL, false);
    _cleanup_free_ char *m =
        status == 404
            ? barge_xasprintf("s3://%s/%s is not found", bucket, p + bn + 1)
            : barge_xasprintf("s3://%s/%s: S3 answered HTTP %ld", bucket, p + bn + 1, status);
    return result(v, depth, NG, m, false);
}

static enum outcome check_container(struct verify *v, int depth, const json_t *c, const json_t *td)
{
    const char *name = barge_json_str(c, "name", "");
    item(v, depth, "ContainerDefinition[%s]", name);
    int before = v->ng;
    check_image(v, depth + 1, barge_json_str(c, "image", ""));
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(c, "secrets"), i, s)
    {
        check_secret(v, depth + 1, barge_json_str(s, "name", ""),
                     barge_json_str(s, "valueFrom", ""));
    }
    json_t *lc = json_object_get(c, "logConfiguration");
    if (lc) {
        check_logs(v, depth + 1, name, lc);
        json_array_foreach(json_object_get(lc, "secretOptions"), i, s)
        {
            check_secret(v, depth + 1, barge_json_str(s, "name", ""),
                         barge_json_str(s, "valueFrom", ""));
        }
    }
    json_array_foreach(json_object_get(c, "environmentFiles"), i, s)
    {
        check_envfile(v, depth + 1, s);
    }
    if (barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc")) {
        json_array_foreach(json_object_get(c, "portMappings"), i, s)
        {
            json_t *hp = json_object_get(s, "hostPort");
            if (hp && json_integer_value(hp) != barge_json_int(s, "containerPort", -1)) {
                item(v, depth + 1, "PortMapping[%lld]",
                     (long long)barge_json_int(s, "containerPort", 0));
                result(v, depth + 1, NG, "awsvpc requires hostPort == containerPort", false);
            }
        }
    }
    group_result(v, depth, before);
    return v->ng > before ? NG : OK;
}

static void verify_taskdef(struct verify *v, const json_t *td)
{
    item(v, 1, "TaskDefinition");
    int before = v->ng;
    const char *er = barge_json_str(td, "executionRoleArn", NULL);
    if (er)
        check_role(v, 2, "ExecutionRole", er);
    const char *tr = barge_json_str(td, "taskRoleArn", NULL);
    if (tr)
        check_role(v, 2, "TaskRole", tr);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, c)
    {
        check_container(v, 2, c, td);
    }
    group_result(v, 1, before);
}

/* A load balancer's target group: it exists, and none of its targets
 * fails its health checks (targets still starting or draining are fine). */
static void check_target_group(struct verify *v, int depth, const char *arn)
{
    if (!arn) {
        result(v, depth - 1, SKIP, "no targetGroupArn", false);
        return;
    }
    _cleanup_free_ char *name = NULL;
    _cleanup_json_ json_t *targets = NULL;
    struct barge_error *err = NULL;
    if (barge_cli_target_health(v->app, arn, &name, &targets, &err) < 0) {
        if (err->code == BARGE_ERR_NOT_FOUND)
            result(v, depth - 1, NG, err->message, false);
        else
            result(v, depth - 1, SKIP, err->message, false);
        barge_error_free(err);
        return;
    }
    result(v, depth - 1, OK, NULL, false);
    item(v, depth, "TargetGroup[%s]", name);
    size_t i, healthy = 0;
    json_t *t;
    _cleanup_free_ char *bad = NULL;
    json_array_foreach(targets, i, t)
    {
        const char *state = barge_json_str(t, "state", "");
        healthy += strcmp(state, "healthy") == 0;
        if (strcmp(state, "unhealthy") == 0 || strcmp(state, "unavailable") == 0) {
            _cleanup_free_ char *line = barge_cli_format_target(t);
            char *joined = barge_xasprintf("%s%s%s", bad ? bad : "", bad ? ", " : "", line);
            free(bad);
            bad = joined;
        }
    }
    _cleanup_free_ char *msg = NULL;
    if (bad)
        msg = barge_xasprintf("%zu of %zu targets healthy: %s", healthy, json_array_size(targets),
                              bad);
    else if (json_array_size(targets))
        msg = barge_xasprintf("%zu of %zu targets healthy", healthy, json_array_size(targets));
    else
        msg = barge_xstrdup("no targets registered");
    result(v, depth, bad ? NG : json_array_size(targets) ? OK : SKIP, msg, false);
}

static void verify_servicedef(struct verify *v, const json_t *sd, const json_t *td)
{
    item(v, 1, "ServiceDefinition");
    int before = v->ng;
    if (barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc") &&
        !json_object_get(json_object_get(sd, "networkConfiguration"), "awsvpcConfiguration")) {
        item(v, 2, "NetworkConfiguration");
        result(v, 2, NG, "the awsvpc network mode requires networkConfiguration", false);
    }
    json_t *lbs = json_object_get(sd, "loadBalancers");
    size_t i;
    json_t *lb;
    json_array_foreach(lbs, i, lb)
    {
        const char *cname = barge_json_str(lb, "containerName", "");
        json_int_t port = barge_json_int(lb, "containerPort", 0);
        item(v, 2, "LoadBalancer[%s:%lld]", cname, (long long)port);
        bool found = false;
        size_t j, k;
        json_t *c, *pm;
        json_array_foreach(json_object_get(td, "containerDefinitions"), j, c)
        {
            if (!barge_streq(barge_json_str(c, "name", NULL), cname))
                continue;
            json_array_foreach(json_object_get(c, "portMappings"), k, pm)
            {
                found = found || barge_json_int(pm, "containerPort", -1) == port;
            }
        }
        if (!found) {
            result(v, 2, NG, "no such container and port in the task definition", false);
            continue;
        }
        check_target_group(v, 3, barge_json_str(lb, "targetGroupArn", NULL));
    }
    if (!json_array_size(lbs) && json_object_get(sd, "healthCheckGracePeriodSeconds")) {
        item(v, 2, "HealthCheckGracePeriodSeconds");
        result(v, 2, NG, "healthCheckGracePeriodSeconds needs a load balancer", false);
    }
    group_result(v, 1, before);
}

static void verify_cluster(struct verify *v)
{
    item(v, 1, "Cluster");
    _cleanup_json_ json_t *in = json_pack("{s:[s]}", "clusters", v->app->cfg->cluster);
    _cleanup_json_ json_t *out = NULL;
    struct barge_error *err = NULL;
    if (barge_cli_call(v->app, "ecs", "DescribeClusters", in, &out, &err) < 0) {
        from_err(v, 1, -1, err);
        return;
    }
    json_t *c = json_array_get(json_object_get(out, "clusters"), 0);
    if (!barge_streq(barge_json_str(c, "status", NULL), "ACTIVE")) {
        _cleanup_free_ char *m =
            barge_xasprintf("cluster '%s' is not found or not ACTIVE", v->app->cfg->cluster);
        result(v, 1, NG, m, false);
        return;
    }
    result(v, 1, OK, NULL, false);
}

int barge_cli_cmd_verify(struct barge_cli_app *app, int argc, char **argv)
{
    struct verify v = {.app = app, .get_secrets = true, .put_logs = true, .cache = true};
    const struct barge_cli_opt opts[] = {
        {"get-secrets", BARGE_CLI_OPT_BOOL, &v.get_secrets, NULL,
         "read secrets and parameters (default)", true, NULL},
        {"put-logs", BARGE_CLI_OPT_BOOL, &v.put_logs, NULL,
         "write a test event to each log group (default)", true, NULL},
        {"cache", BARGE_CLI_OPT_BOOL, &v.cache, NULL, "check each image once (default)", true,
         NULL},
        {NULL},
    };
    int code;
    if (barge_cli_start(app, "barge verify [options]",
                        "Check that the images, secrets, parameters, environment files, log "
                        "groups, roles and the cluster the definitions use exist.",
                        opts, argc, argv, true, 0, NULL, NULL, &code) < 0)
        return code;
    struct barge_error *err = NULL;
    barge_cli_log(app, "Starting verify");
    _cleanup_json_ json_t *td = NULL;
    if (barge_cli_load_taskdef(app, NULL, &td, &err) < 0)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *sd = NULL;
    if (app->cfg->service_definition && barge_cli_load_servicedef(app, &sd, &err) < 0)
        return barge_cli_fail(app, err);
    _cleanup_json_ json_t *done = json_object();
    v.done = done;
    verify_taskdef(&v, td);
    if (sd)
        verify_servicedef(&v, sd, td);
    verify_cluster(&v);
    if (v.ng) {
        barge_error_set(&err, BARGE_ERR_INVALID, "verify failed: %d check%s NG", v.ng,
                        v.ng == 1 ? " is" : "s are");
        return barge_cli_fail(app, err);
    }
    barge_cli_log(app, "Verify OK!");
    return 0;
}
