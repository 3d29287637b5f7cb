/* Express Gateway services: from one request (an image and a few settings)
 * to a URL. CreateExpressGatewayService registers a task definition, creates
 * an ELBv2 target group, an application load balancer with an HTTP listener
 * on a free port of barged's --lb-address, and a service behind it, calling
 * the RegisterTaskDefinition, Create* and CreateService handlers as a client
 * would; the URL (the ingress path's endpoint) answers from the containers
 * once the target group sees them healthy. UpdateExpressGatewayService rolls
 * a new configuration out as a deployment of the service;
 * DeleteExpressGatewayService drains the service and removes the load
 * balancer and target group. Each express service keeps a record ("express",
 * "<cluster>/<service>") of its configurations and of what was made for it;
 * its status is the service's. barge runs the tasks in bridge mode with a
 * dynamic host port on container instances (not Fargate); scalingTarget's
 * minTaskCount is the first desired count, and with a maxTaskCount above it
 * Application Auto Scaling tracks the CPU or memory target between the two. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <ctype.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "api/autoscaling.h"
#include "api/ecs.h"
#include "api/elbv2.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define KIND_EXPRESS    "express"
#define CONTAINER       "Main"
#define DEFAULT_PATH    "/ping"
#define DEFAULT_CPU     "256"
#define DEFAULT_MEMORY  "512"
#define DEFAULT_PORT    80
#define DEREGISTER_SECS "30"

static int invalid(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int invalid(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException", "%s", msg);
}

/* Calls operation op of service svc with in, as its handler would be called
 * for a request of the same caller. *out is the handler's (caller frees). */
static int call(struct barge_api_ctx *ctx, const struct barge_api_service *svc, const char *op,
                json_t *in, json_t **out, struct barge_error **err)
{
    const struct barge_api_op *o = barge_api_find_op(svc, op);
    if (!o)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "no operation '%s'", op);
    struct barge_api_ctx sub = *ctx;
    sub.service = svc;
    sub.operation = op;
    json_t *res = NULL;
    int r = o->handler(&sub, in, &res, err);
    if (out)
        *out = res;
    else
        json_decref(res);
    return r;
}

/* A port nothing listens on at addr now, for the new listener. */
static int free_port(const char *addr, json_int_t *port, struct barge_error **err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "socket");
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        close(fd);
        return barge_error_set_errno(err, BARGE_ERR_INTERNAL, "finding a free port on %s", addr);
    }
    close(fd);
    *port = ntohs(sa.sin_port);
    return 0;
}

/* The configuration a request asks for, over base (the current one, or
 * NULL): ExpressGatewayServiceConfiguration members. New reference. */
static json_t *configuration(const json_t *in, const json_t *base)
{
    json_t *cfg = base ? json_deep_copy(base) : json_object();
    static const char *const keys[] = {"cpu",
                                       "memory",
                                       "executionRoleArn",
                                       "taskRoleArn",
                                       "healthCheckPath",
                                       "networkConfiguration",
                                       "primaryContainer",
                                       "scalingTarget"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keys); i++) {
        json_t *v = json_object_get(in, keys[i]);
        if (v)
            json_object_set(cfg, keys[i], v);
    }
    if (!json_object_get(cfg, "cpu"))
        json_object_set_new(cfg, "cpu", json_string(DEFAULT_CPU));
    if (!json_object_get(cfg, "memory"))
        json_object_set_new(cfg, "memory", json_string(DEFAULT_MEMORY));
    if (!json_object_get(cfg, "healthCheckPath"))
        json_object_set_new(cfg, "healthCheckPath", json_string(DEFAULT_PATH));
    json_t *pc = barge_json_object(cfg, "primaryContainer");
    if (pc && !json_object_get(pc, "containerPort"))
        json_object_set_new(pc, "containerPort", json_integer(DEFAULT_PORT));
    json_t *st = barge_json_object(cfg, "scalingTarget");
    if (!st)
        json_object_set_new(cfg, "scalingTarget", st = json_object());
    if (!json_object_get(st, "minTaskCount"))
        json_object_set_new(st, "minTaskCount", json_integer(1));
    if (!json_object_get(st, "maxTaskCount"))
        json_object_set(st, "maxTaskCount", json_object_get(st, "minTaskCount"));
    if (!json_object_get(st, "autoScalingMetric"))
        json_object_set_new(st, "autoScalingMetric", json_string("AVERAGE_CPU"));
    if (!json_object_get(st, "autoScalingTargetValue"))
        json_object_set_new(st, "autoScalingTargetValue", json_integer(60));
    return cfg;
}

static int check_configuration(const json_t *cfg, struct barge_error **err)
{
    const json_t *pc = barge_json_object(cfg, "primaryContainer");
    json_int_t port = barge_json_int(pc, "containerPort", DEFAULT_PORT);
    if (port < 1 || port > 65535)
        return invalid(err,
                       "primaryContainer.containerPort must be between 1 and 65535; '%lld' "
                       "was given.",
                       (long long)port);
    const char *path = barge_json_str(cfg, "healthCheckPath", DEFAULT_PATH);
    if (path[0] != '/')
        return invalid(err, "healthCheckPath '%s' must start with '/'.", path);
    const json_t *st = barge_json_object(cfg, "scalingTarget");
    json_int_t lo = barge_json_int(st, "minTaskCount", 1),
               hi = barge_json_int(st, "maxTaskCount", lo);
    if (lo < 0 || hi < lo)
        return invalid(err,
                       "scalingTarget: minTaskCount ('%lld') must not be negative nor above "
                       "maxTaskCount ('%lld').",
                       (long long)lo, (long long)hi);
    const char *metric = barge_json_str(st, "autoScalingMetric", "AVERAGE_CPU");
    if (hi > lo && strcmp(metric, "AVERAGE_CPU") != 0 && strcmp(metric, "AVERAGE_MEMORY") != 0)
        return invalid(err,
                       "scalingTarget.autoScalingMetric '%s' is not supported by barge (it has "
                       "no load balancer request metrics); use AVERAGE_CPU or AVERAGE_MEMORY.",
                       metric);
    return 0;
}

/* RegisterTaskDefinition's input for the configuration. New reference. */
static json_t *task_definition_input(const char *family, const json_t *cfg)
{
    const json_t *pc = barge_json_object(cfg, "primaryContainer");
    json_t *c =
        json_pack("{s:s, s:s, s:b, s:[{s:I, s:s}]}", "name", CONTAINER, "image",
                  barge_json_str(pc, "image", ""), "essential", 1, "portMappings", "containerPort",
                  barge_json_int(pc, "containerPort", DEFAULT_PORT), "protocol", "tcp");
    static const char *const copy[] = {"command", "environment", "secrets",
                                       "repositoryCredentials"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(pc, copy[i]);
        if (v)
            json_object_set(c, copy[i], v);
    }
    const json_t *logs = barge_json_object(pc, "awsLogsConfiguration");
    if (logs)
        json_object_set_new(c, "logConfiguration",
                            json_pack("{s:s, s:{s:s, s:s, s:s}}", "logDriver", "awslogs", "options",
                                      "awslogs-group", barge_json_str(logs, "logGroup", ""),
                                      "awslogs-stream-prefix",
                                      barge_json_str(logs, "logStreamPrefix", ""),
                                      "awslogs-create-group", "true"));
    json_t *in =
        json_pack("{s:s, s:s, s:s, s:s, s:[o]}", "family", family, "networkMode", "bridge", "cpu",
                  barge_json_str(cfg, "cpu", DEFAULT_CPU), "memory",
                  barge_json_str(cfg, "memory", DEFAULT_MEMORY), "containerDefinitions", c);
    static const char *const roles[] = {"executionRoleArn", "taskRoleArn"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(roles); i++) {
        json_t *v = json_object_get(cfg, roles[i]);
        if (v)
            json_object_set(in, roles[i], v);
    }
    return in;
}

static int register_td(struct barge_api_ctx *ctx, const char *family, const json_t *cfg, char **arn,
                       struct barge_error **err)
{
    _cleanup_json_ json_t *in = task_definition_input(family, cfg), *out = NULL;
    if (call(ctx, &barge_api_ecs, "RegisterTaskDefinition", in, &out, err) < 0)
        return -1;
    *arn = barge_xstrdup(
        barge_json_str(barge_json_object(out, "taskDefinition"), "taskDefinitionArn", ""));
    return 0;
}

static json_t *load_balancers(const char *tg_arn, const json_t *cfg)
{
    return json_pack(
        "[{s:s, s:s, s:I}]", "targetGroupArn", tg_arn, "containerName", CONTAINER, "containerPort",
        barge_json_int(barge_json_object(cfg, "primaryContainer"), "containerPort", DEFAULT_PORT));
}

/* Auto scaling of the service as scalingTarget says: between minTaskCount
 * and maxTaskCount, tracking the metric's target value, through Application
 * Auto Scaling (a scalable target and a target tracking policy). Equal
 * bounds mean no scaling: a target registered before is removed. */
static int apply_scaling(struct barge_api_ctx *ctx, const char *cluster, const char *name,
                         const json_t *cfg, struct barge_error **err)
{
    const json_t *st = barge_json_object(cfg, "scalingTarget");
    json_int_t lo = barge_json_int(st, "minTaskCount", 1);
    json_int_t hi = barge_json_int(st, "maxTaskCount", lo);
    _cleanup_free_ char *rid = barge_xasprintf("service/%s/%s", cluster, name);
    if (hi <= lo) {
        _cleanup_json_ json_t *in =
            json_pack("{s:s, s:s, s:s}", "ServiceNamespace", "ecs", "ResourceId", rid,
                      "ScalableDimension", AAS_DIMENSION);
        _cleanup_error_ struct barge_error *e = NULL;
        if (call(ctx, &barge_api_autoscaling, "DeregisterScalableTarget", in, NULL, &e) < 0 &&
            e->code != BARGE_ERR_NOT_FOUND) {
            *err = barge_steal(&e);
            return -1;
        }
        return 0;
    }
    bool memory = barge_streq(barge_json_str(st, "autoScalingMetric", NULL), "AVERAGE_MEMORY");
    _cleanup_free_ char *policy = barge_xasprintf("%s-express-scaling", name);
    _cleanup_json_ json_t *target =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "ServiceNamespace", "ecs", "ResourceId", rid,
                  "ScalableDimension", AAS_DIMENSION, "MinCapacity", lo, "MaxCapacity", hi);
    _cleanup_json_ json_t *pol = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:{s:f, s:{s:s}}}", "PolicyName", policy, "ServiceNamespace",
        "ecs", "ResourceId", rid, "ScalableDimension", AAS_DIMENSION, "PolicyType",
        "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration", "TargetValue",
        (double)barge_json_int(st, "autoScalingTargetValue", 60), "PredefinedMetricSpecification",
        "PredefinedMetricType",
        memory ? "ECSServiceAverageMemoryUtilization" : "ECSServiceAverageCPUUtilization");
    if (call(ctx, &barge_api_autoscaling, "RegisterScalableTarget", target, NULL, err) < 0 ||
        call(ctx, &barge_api_autoscaling, "PutScalingPolicy", pol, NULL, err) < 0)
        return -1;
    return 0;
}

/* The ECSExpressGatewayService shape of a record and its service (NULL when
 * the service is gone). New reference. */
static json_t *render(const struct barge_server *srv, const json_t *rec, const json_t *svc)
{
    const char *status = svc ? barge_json_str(svc, "status", "INACTIVE") : "INACTIVE";
    json_t *out =
        json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:{s:s}}", "serviceArn",
                  json_object_get(rec, "serviceArn"), "serviceName",
                  json_object_get(rec, "serviceName"), "cluster", json_object_get(rec, "cluster"),
                  "infrastructureRoleArn", json_object_get(rec, "infrastructureRoleArn"),
                  "createdAt", json_object_get(rec, "createdAt"), "updatedAt",
                  json_object_get(rec, "updatedAt"), "status", "statusCode", status);
    /* The configurations the service's deployments still run, newest
     * first. */
    json_t *active = json_array();
    json_t *deps = barge_json_array(svc, "deployments");
    size_t i, j;
    json_t *c, *d;
    json_array_foreach(barge_json_array(rec, "_configurations"), i, c)
    {
        json_array_foreach(deps, j, d)
        {
            if (barge_streq(barge_json_str(d, "taskDefinition", NULL),
                            barge_json_str(c, "_taskDefinition", ""))) {
                json_t *pub = ecs_public(c);
                const char *rev = barge_json_str(d, "_revision", NULL);
                if (rev) {
                    char *arn = ecs_arn(srv, "service-revision/%s/%s/%s",
                                        barge_json_str(svc, "_cluster", ""),
                                        barge_json_str(svc, "serviceName", ""), rev);
                    json_object_set_new(pub, "serviceRevisionArn", json_string(arn));
                    free(arn);
                }
                json_array_insert_new(active, 0, pub);
                break;
            }
        }
    }
    json_object_set_new(out, "activeConfigurations", active);
    const char *sd = barge_json_str(json_array_get(deps, 0), "_sd", NULL);
    if (sd) {
        char *arn = ecs_arn(srv, "service-deployment/%s/%s/%s", barge_json_str(svc, "_cluster", ""),
                            barge_json_str(svc, "serviceName", ""), sd);
        json_object_set_new(out, "currentDeployment", json_string(arn));
        free(arn);
    }
    return out;
}

static int load(struct barge_tx *tx, const struct barge_server *srv, const char *arn, json_t **rec,
                json_t **svc, char **key, struct barge_error **err)
{
    *key = ecs_arn_path(srv, arn, "service", 2);
    if (!*key)
        return invalid(err, "Invalid service ARN '%s'.", arn);
    if (barge_store_get(tx, KIND_EXPRESS, *key, rec, err) < 0 ||
        barge_store_get(tx, ECS_KIND_SERVICE, *key, svc, err) < 0)
        return -1;
    return 0;
}

/* Loads an express service to change: its record, its service (which must
 * be ACTIVE) and their key. */
static int load_active(struct barge_api_ctx *ctx, const char *arn, json_t **rec, json_t **svc,
                       char **key, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(tx, ctx->srv, arn, rec, svc, key, err) < 0)
        return -1;
    const char *status = barge_json_str(*svc, "status", "INACTIVE");
    if (!*rec || strcmp(status, "INACTIVE") == 0)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ServiceNotFoundException",
                                    "Express service '%s' not found.", arn);
    if (strcmp(status, "ACTIVE") != 0)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ServiceNotActiveException",
                                    "Express service '%s' is being deleted.", arn);
    return 0;
}

/* Removes what a failed or deleted express service had made (each may be
 * gone already); errors are logged, not returned. */
static void remove_infrastructure(struct barge_api_ctx *ctx, const json_t *rec)
{
    static const char *const steps[][2] = {{"DeleteLoadBalancer", "LoadBalancerArn"},
                                           {"DeleteTargetGroup", "TargetGroupArn"}};
    static const char *const fields[] = {"_loadBalancerArn", "_targetGroupArn"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(steps); i++) {
        const char *arn = barge_json_str(rec, fields[i], NULL);
        if (!arn)
            continue;
        _cleanup_json_ json_t *in = json_pack("{s:s}", steps[i][1], arn);
        _cleanup_error_ struct barge_error *e = NULL;
        if (call(ctx, &barge_api_elbv2, steps[i][0], in, NULL, &e) < 0 &&
            e->code != BARGE_ERR_NOT_FOUND)
            barge_warn("express service %s: %s %s: %s", barge_json_str(rec, "serviceName", ""),
                       steps[i][0], arn, e->message);
    }
}

/* Makes the target group, the load balancer and its listener; their ARNs
 * and the endpoint go into rec. */
static int make_infrastructure(struct barge_api_ctx *ctx, json_t *rec, const json_t *cfg,
                               struct barge_error **err)
{
    char hex[9];
    unsigned char r[4];
    barge_random_bytes(r, sizeof(r));
    snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    _cleanup_free_ char *tg_name = barge_xasprintf("ecs-express-tg-%s", hex);
    _cleanup_free_ char *lb_name = barge_xasprintf("ecs-express-lb-%s", hex);
    _cleanup_json_ json_t *tg_in = json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:i, s:i, s:i, s:i}", "Name", tg_name, "Protocol", "HTTP",
        "Port", barge_json_int(barge_json_object(cfg, "primaryContainer"), "containerPort", 80),
        "TargetType", "ip", "HealthCheckPath", barge_json_str(cfg, "healthCheckPath", "/"),
        "HealthCheckIntervalSeconds", 5, "HealthCheckTimeoutSeconds", 2, "HealthyThresholdCount", 2,
        "UnhealthyThresholdCount", 2);
    _cleanup_json_ json_t *tg_out = NULL, *lb_out = NULL;
    if (call(ctx, &barge_api_elbv2, "CreateTargetGroup", tg_in, &tg_out, err) < 0)
        return -1;
    const char *tg_arn = barge_json_str(json_array_get(barge_json_array(tg_out, "TargetGroups"), 0),
                                        "TargetGroupArn", "");
    json_object_set_new(rec, "_targetGroupArn", json_string(tg_arn));
    _cleanup_json_ json_t *attrs =
        json_pack("{s:s, s:[{s:s, s:s}]}", "TargetGroupArn", tg_arn, "Attributes", "Key",
                  "deregistration_delay.timeout_seconds", "Value", DEREGISTER_SECS);
    _cleanup_json_ json_t *lb_in = json_pack("{s:s, s:s, s:s}", "Name", lb_name, "Type",
                                             "application", "Scheme", "internet-facing");
    if (call(ctx, &barge_api_elbv2, "ModifyTargetGroupAttributes", attrs, NULL, err) < 0 ||
        call(ctx, &barge_api_elbv2, "CreateLoadBalancer", lb_in, &lb_out, err) < 0)
        return -1;
    json_t *lb = json_array_get(barge_json_array(lb_out, "LoadBalancers"), 0);
    json_object_set_new(rec, "_loadBalancerArn",
                        json_string(barge_json_str(lb, "LoadBalancerArn", "")));
    const char *host = barge_json_str(lb, "DNSName", "127.0.0.1");
    json_int_t port = 0;
    if (free_port(host, &port, err) < 0)
        return -1;
    _cleanup_json_ json_t *l_in =
        json_pack("{s:s, s:s, s:I, s:[{s:s, s:s}]}", "LoadBalancerArn",
                  barge_json_str(lb, "LoadBalancerArn", ""), "Protocol", "HTTP", "Port", port,
                  "DefaultActions", "Type", "forward", "TargetGroupArn", tg_arn);
    if (call(ctx, &barge_api_elbv2, "CreateListener", l_in, NULL, err) < 0)
        return -1;
    _cleanup_free_ char *url = barge_xasprintf("http://%s:%lld/", host, (long long)port);
    json_object_set_new(rec, "_endpoint", json_string(url));
    return 0;
}

static json_t *ingress_paths(const json_t *rec)
{
    return json_pack("[{s:s, s:s}]", "accessType", "PUBLIC", "endpoint",
                     barge_json_str(rec, "_endpoint", ""));
}

static int create_express_gateway_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                          struct barge_error **err)
{
    const char *image = barge_json_str(barge_json_object(in, "primaryContainer"), "image", "");
    if (!*image)
        return invalid(err, "primaryContainer.image is required.");
    _cleanup_json_ json_t *cfg = configuration(in, NULL);
    if (check_configuration(cfg, err) < 0)
        return -1;
    _cleanup_free_ char *name = NULL;
    if (barge_json_str(in, "serviceName", NULL)) {
        name = barge_xstrdup(barge_json_str(in, "serviceName", ""));
    } else {
        /* ECS names it: the image's repository, and a random suffix. */
        const char *base = strrchr(image, '/') ? strrchr(image, '/') + 1 : image;
        size_t n = strcspn(base, ":@");
        unsigned char r[3];
        barge_random_bytes(r, sizeof(r));
        name =
            barge_xasprintf("%.*s-%02x%02x%02x", (int)(n > 200 ? 200 : n), base, r[0], r[1], r[2]);
        for (char *c = name; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
                *c = '-';
    }
    if (!ecs_name_valid(name))
        return invalid(err,
                       "Invalid service name '%s': up to 255 letters (uppercase and lowercase), "
                       "numbers, underscores and hyphens are allowed.",
                       name);
    _cleanup_json_ json_t *cluster = NULL, *existing = NULL;
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
            ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
            return -1;
        _cleanup_free_ char *skey =
            barge_xasprintf("%s/%s", barge_json_str(cluster, "clusterName", ""), name);
        if (barge_store_get(tx, ECS_KIND_SERVICE, skey, &existing, err) < 0)
            return -1;
        if (existing && !barge_streq(barge_json_str(existing, "status", NULL), "INACTIVE"))
            return invalid(err, "Service '%s' already exists in cluster '%s'.", name,
                           barge_json_str(cluster, "clusterName", ""));
    }
    const char *cname = barge_json_str(cluster, "clusterName", "");
    _cleanup_free_ char *svc_arn = ecs_arn(ctx->srv, "service/%s/%s", cname, name);
    double now = barge_now();
    _cleanup_json_ json_t *rec =
        json_pack("{s:s, s:s, s:s, s:O, s:f, s:f, s:[]}", "serviceArn", svc_arn, "serviceName",
                  name, "cluster", barge_json_str(cluster, "clusterArn", ""),
                  "infrastructureRoleArn", json_object_get(in, "infrastructureRoleArn"),
                  "createdAt", now, "updatedAt", now, "_configurations");
    _cleanup_free_ char *td_arn = NULL;
    _cleanup_json_ json_t *svc_out = NULL;
    if (register_td(ctx, name, cfg, &td_arn, err) < 0 ||
        make_infrastructure(ctx, rec, cfg, err) < 0) {
        remove_infrastructure(ctx, rec);
        return -1;
    }
    json_t *st = barge_json_object(cfg, "scalingTarget");
    _cleanup_json_ json_t *svc_in = json_pack(
        "{s:s, s:s, s:s, s:I, s:o, s:i, s:{s:{s:b, s:b}}, s:s}", "cluster", cname, "serviceName",
        name, "taskDefinition", td_arn, "desiredCount", barge_json_int(st, "minTaskCount", 1),
        "loadBalancers", load_balancers(barge_json_str(rec, "_targetGroupArn", ""), cfg),
        "healthCheckGracePeriodSeconds", 30, "deploymentConfiguration", "deploymentCircuitBreaker",
        "enable", 1, "rollback", 1, "propagateTags", "SERVICE");
    json_t *tags = barge_json_array(in, "tags");
    if (json_array_size(tags))
        json_object_set(svc_in, "tags", tags);
    if (call(ctx, &barge_api_ecs, "CreateService", svc_in, &svc_out, err) < 0) {
        remove_infrastructure(ctx, rec);
        return -1;
    }
    if (apply_scaling(ctx, cname, name, cfg, err) < 0) {
        _cleanup_json_ json_t *del =
            json_pack("{s:s, s:s, s:b}", "cluster", cname, "service", name, "force", 1);
        _cleanup_error_ struct barge_error *e = NULL;
        if (call(ctx, &barge_api_ecs, "DeleteService", del, NULL, &e) < 0)
            barge_warn("express service %s: DeleteService: %s", name, e->message);
        remove_infrastructure(ctx, rec);
        return -1;
    }
    json_object_set_new(cfg, "createdAt", json_real(now));
    json_object_set_new(cfg, "ingressPaths", ingress_paths(rec));
    json_object_set_new(cfg, "_taskDefinition", json_string(td_arn));
    json_array_append(barge_json_array(rec, "_configurations"), cfg);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL;
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, name);
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_put(tx, KIND_EXPRESS, key, rec, err) < 0 ||
        barge_store_get(tx, ECS_KIND_SERVICE, key, &svc, err) < 0)
        return -1;
    json_t *o = render(ctx->srv, rec, svc);
    if (json_array_size(tags))
        json_object_set(o, "tags", tags);
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(o);
        return -1;
    }
    barge_info("express service %s serves %s", name, barge_json_str(rec, "_endpoint", ""));
    *out = json_pack("{s:o}", "service", o);
    return 0;
}

static int describe_express_gateway_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                            struct barge_error **err)
{
    const char *arn = barge_json_str(in, "serviceArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *rec = NULL, *svc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(tx, ctx->srv, arn, &rec, &svc, &key, err) < 0)
        return -1;
    if (!rec)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                    "Express service '%s' not found.", arn);
    json_t *o = render(ctx->srv, rec, svc);
    if (ecs_include_tags(in)) {
        json_t *tags;
        if (ecs_tags_get(tx, arn, &tags, err) < 0) {
            json_decref(o);
            return -1;
        }
        json_object_set_new(o, "tags", tags);
    }
    *out = json_pack("{s:o}", "service", o);
    return 0;
}

static int update_express_gateway_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                          struct barge_error **err)
{
    const char *arn = barge_json_str(in, "serviceArn", "");
    _cleanup_json_ json_t *rec = NULL, *svc = NULL, *cfg = NULL;
    _cleanup_free_ char *key = NULL;
    if (load_active(ctx, arn, &rec, &svc, &key, err) < 0)
        return -1;
    json_t *configs = barge_json_array(rec, "_configurations");
    json_t *current = json_array_get(configs, json_array_size(configs) - 1);
    _cleanup_json_ json_t *base = ecs_public(current);
    json_object_del(base, "createdAt");
    cfg = configuration(in, base);
    if (check_configuration(cfg, err) < 0)
        return -1;
    /* The target group checks the new path from now on. */
    const char *path = barge_json_str(cfg, "healthCheckPath", DEFAULT_PATH);
    if (!barge_streq(path, barge_json_str(current, "healthCheckPath", NULL))) {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        bool in_use = false;
        _cleanup_json_ json_t *tg = NULL;
        if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
            !(tg = barge_elb_tg_find(tx, barge_json_str(rec, "_targetGroupArn", ""), &in_use, err)))
            return -1;
        json_object_set_new(tg, "HealthCheckPath", json_string(path));
        if (barge_store_put(tx, ELB_KIND_TG, barge_json_str(tg, "TargetGroupName", ""), tg, err) <
                0 ||
            barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
        barge_server_wake(ctx->srv);
    }
    _cleanup_free_ char *td_arn = NULL;
    if (register_td(ctx, barge_json_str(rec, "serviceName", ""), cfg, &td_arn, err) < 0)
        return -1;
    _cleanup_json_ json_t *svc_in =
        json_pack("{s:s, s:s, s:s, s:o}", "cluster", barge_json_str(svc, "_cluster", ""), "service",
                  barge_json_str(svc, "serviceName", ""), "taskDefinition", td_arn, "loadBalancers",
                  load_balancers(barge_json_str(rec, "_targetGroupArn", ""), cfg));
    /* A new scaling target sets the count; else auto scaling keeps it. */
    json_t *scaling = barge_json_object(in, "scalingTarget");
    if (scaling)
        json_object_set_new(svc_in, "desiredCount",
                            json_integer(barge_json_int(barge_json_object(cfg, "scalingTarget"),
                                                        "minTaskCount", 1)));
    if (call(ctx, &barge_api_ecs, "UpdateService", svc_in, NULL, err) < 0 ||
        (scaling && apply_scaling(ctx, barge_json_str(svc, "_cluster", ""),
                                  barge_json_str(svc, "serviceName", ""), cfg, err) < 0))
        return -1;
    double now = barge_now();
    json_object_set_new(cfg, "createdAt", json_real(now));
    json_object_set_new(cfg, "ingressPaths", ingress_paths(rec));
    json_object_set_new(cfg, "_taskDefinition", json_string(td_arn));
    json_array_append(configs, cfg);
    json_object_set_new(rec, "updatedAt", json_real(now));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_put(tx, KIND_EXPRESS, key, rec, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack(
        "{s:{s:O, s:O, s:O, s:O, s:O, s:{s:s}, s:o}}", "service", "serviceArn",
        json_object_get(rec, "serviceArn"), "serviceName", json_object_get(rec, "serviceName"),
        "cluster", json_object_get(rec, "cluster"), "createdAt", json_object_get(rec, "createdAt"),
        "updatedAt", json_object_get(rec, "updatedAt"), "status", "statusCode", "ACTIVE",
        "targetConfiguration", ecs_public(cfg));
    return 0;
}

static int delete_express_gateway_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                          struct barge_error **err)
{
    const char *arn = barge_json_str(in, "serviceArn", "");
    _cleanup_json_ json_t *rec = NULL, *svc = NULL;
    _cleanup_free_ char *key = NULL;
    if (load_active(ctx, arn, &rec, &svc, &key, err) < 0)
        return -1;
    _cleanup_json_ json_t *svc_in =
        json_pack("{s:s, s:s, s:b}", "cluster", barge_json_str(svc, "_cluster", ""), "service",
                  barge_json_str(svc, "serviceName", ""), "force", 1);
    _cleanup_json_ json_t *no_scaling =
        json_pack("{s:{s:i, s:i}}", "scalingTarget", "minTaskCount", 0, "maxTaskCount", 0);
    if (apply_scaling(ctx, barge_json_str(svc, "_cluster", ""),
                      barge_json_str(svc, "serviceName", ""), no_scaling, err) < 0 ||
        call(ctx, &barge_api_ecs, "DeleteService", svc_in, NULL, err) < 0)
        return -1;
    /* Its tasks' targets leave with the target group: they stop at once. */
    remove_infrastructure(ctx, rec);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *after = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_get(tx, ECS_KIND_SERVICE, key, &after, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "service", render(ctx->srv, rec, after));
    return 0;
}

const struct barge_api_op ecs_express_ops[] = {
    {"CreateExpressGatewayService", create_express_gateway_service},
    {"DescribeExpressGatewayService", describe_express_gateway_service},
    {"UpdateExpressGatewayService", update_express_gateway_service},
    {"DeleteExpressGatewayService", delete_express_gateway_service},
    {NULL, NULL},
};
