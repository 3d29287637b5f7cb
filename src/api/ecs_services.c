/* ECS services: CreateService, UpdateService, DeleteService, DescribeServices
 * and ListServices. These only record what the user wants (desired count,
 * task definition, deployment configuration) and open deployments; the
 * service scheduler (src/control/services.c) makes it so, keeps the counts
 * and writes the events. A service is stored under "<cluster>/<name>". */
#include <stdarg.h>
#include <string.h>

#include "api/access.h"
#include "api/cloudmap.h"
#include "api/ecs.h"
#include "api/elbv2.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

int ecs_service_load(struct barge_tx *tx, struct barge_server *srv, const json_t *cluster,
                     const char *ident, json_t **svc, char **key, struct barge_error **err)
{
    _cleanup_free_ char *name = ecs_resource_id(srv, ident, "service", err);
    if (!name)
        return -1;
    *key = barge_xasprintf("%s/%s", barge_json_str(cluster, "clusterName", ""), name);
    int r = barge_store_get(tx, ECS_KIND_SERVICE, *key, svc, err);
    if (r < 0)
        return -1;
    if (r == 0 || strcmp(barge_json_str(*svc, "status", ""), "INACTIVE") == 0) {
        json_decref(*svc);
        *svc = NULL;
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ServiceNotFoundException",
                                    "Service '%s' not found in cluster '%s'.", ident,
                                    barge_json_str(cluster, "clusterName", ""));
    }
    if (strcmp(barge_json_str(*svc, "status", ""), "ACTIVE") != 0) {
        json_decref(*svc);
        *svc = NULL;
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ServiceNotActiveException",
                                    "Service '%s' is being deleted.", ident);
    }
    return 0;
}

static int check_deployment_configuration(json_t *cfg, bool daemon, struct barge_error **err)
{
    json_t *max = json_object_get(cfg, "maximumPercent");
    json_t *min = json_object_get(cfg, "minimumHealthyPercent");
    if (!max)
        json_object_set_new(cfg, "maximumPercent", json_integer(daemon ? 100 : 200));
    if (!min)
        json_object_set_new(cfg, "minimumHealthyPercent", json_integer(daemon ? 0 : 100));
    json_int_t mx = barge_json_int(cfg, "maximumPercent", 200);
    json_int_t mn = barge_json_int(cfg, "minimumHealthyPercent", 100);
    if (mn < 0 || mn > 100)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "minimumHealthyPercent must be between 0 and 100; '%lld' was "
                                    "given.",
                                    (long long)mn);
    if (mx < 100 || mx > 1000)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "maximumPercent must be between 100 and 1000; '%lld' was "
                                    "given.",
                                    (long long)mx);
    if (daemon && mx != 100)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The daemon scheduling strategy requires maximumPercent 100; "
                                    "'%lld' was given.",
                                    (long long)mx);
    if (!json_object_get(cfg, "deploymentCircuitBreaker"))
        json_object_set_new(cfg, "deploymentCircuitBreaker",
                            json_pack("{s:b, s:b}", "enable", 0, "rollback", 0));
    return 0;
}

static int lb_invalid(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);

/* The target group arn (the caller owns it), which a load balancer must
 * forward to, or NULL with err set. */
static json_t *used_target_group(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    bool in_use = false;
    _cleanup_error_ struct barge_error *tg_err = NULL;
    json_t *tg = barge_elb_tg_find(tx, arn, &in_use, &tg_err);
    if (!tg) {
        if (tg_err->code != BARGE_ERR_NOT_FOUND && tg_err->code != BARGE_ERR_INVALID)
            *err = barge_steal(&tg_err);
        else
            lb_invalid(err, "The target group '%s' does not exist.", arn);
        return NULL;
    }
    if (!in_use) {
        json_decref(tg);
        lb_invalid(err,
                   "The target group with targetGroupArn %s does not have an associated "
                   "load balancer.",
                   arn);
        return NULL;
    }
    return tg;
}

/* The settings of a BLUE_GREEN deployment: a bake time ECS accepts, every
 * load balancer with an advancedConfiguration whose alternate target group
 * serves the same load balancer, and no lifecycle hook (hooks invoke Lambda
 * functions, which barge does not have; refusing them is more honest than a
 * deployment that skips them). */
static int check_strategy(struct barge_tx *tx, const json_t *dcfg, const json_t *lbs,
                          struct barge_error **err)
{
    const char *strategy = barge_json_str(dcfg, "strategy", "ROLLING");
    if (strcmp(strategy, "LINEAR") == 0 || strcmp(strategy, "CANARY") == 0)
        return lb_invalid(err,
                          "The %s deployment strategy is not supported by barge: use ROLLING or "
                          "BLUE_GREEN.",
                          strategy);
    if (strcmp(strategy, "ROLLING") != 0 && strcmp(strategy, "BLUE_GREEN") != 0)
        return lb_invalid(err,
                          "Invalid deploymentConfiguration.strategy '%s': the valid values are "
                          "ROLLING, BLUE_GREEN, LINEAR and CANARY.",
                          strategy);
    json_t *bake = json_object_get(dcfg, "bakeTimeInMinutes");
    if (bake &&
        (!json_is_integer(bake) || json_integer_value(bake) < 0 || json_integer_value(bake) > 1440))
        return lb_invalid(err, "bakeTimeInMinutes must be between 0 and 1440; '%lld' was given.",
                          (long long)json_integer_value(bake));
    if (json_array_size(barge_json_array(dcfg, "lifecycleHooks")))
        return lb_invalid(
            err,
            "deploymentConfiguration.lifecycleHooks: barge cannot invoke hook "
            "targets (it has no AWS Lambda); '%s' cannot be called.",
            barge_json_str(json_array_get(barge_json_array(dcfg, "lifecycleHooks"), 0),
                           "hookTargetArn", ""));
    bool bg = strcmp(strategy, "BLUE_GREEN") == 0;
    size_t i;
    json_t *lb;
    json_array_foreach((json_t *)lbs, i, lb)
    {
        json_t *adv = json_object_get(lb, "advancedConfiguration");
        if (!adv && !bg)
            continue;
        if (!bg)
            return lb_invalid(err,
                              "loadBalancers[%zu].advancedConfiguration is only valid with the "
                              "BLUE_GREEN deployment strategy.",
                              i);
        if (!adv)
            return lb_invalid(err,
                              "loadBalancers[%zu]: advancedConfiguration is required for the "
                              "BLUE_GREEN deployment strategy.",
                              i);
        const char *alt = barge_json_str(adv, "alternateTargetGroupArn", NULL);
        const char *prod = barge_json_str(adv, "productionListenerRule", NULL);
        if (!alt || !prod || !barge_json_str(adv, "roleArn", NULL))
            return lb_invalid(err,
                              "loadBalancers[%zu].advancedConfiguration: alternateTargetGroupArn, "
                              "productionListenerRule and roleArn are required.",
                              i);
        if (barge_streq(alt, barge_json_str(lb, "targetGroupArn", "")))
            return lb_invalid(err,
                              "loadBalancers[%zu].advancedConfiguration: the alternate target "
                              "group must differ from targetGroupArn '%s'.",
                              i, alt);
        _cleanup_json_ json_t *tg = used_target_group(tx, alt, err);
        if (!tg)
            return -1;
        const char *rules[] = {prod, barge_json_str(adv, "testListenerRule", NULL)};
        for (size_t k = 0; k < 2; k++) {
            if (!rules[k])
                continue;
            _cleanup_error_ struct barge_error *rule_err = NULL;
            int r = barge_elb_rule_check(tx, rules[k], &rule_err);
            if (r < 0) {
                if (rule_err->code != BARGE_ERR_NOT_FOUND && rule_err->code != BARGE_ERR_INVALID) {
                    *err = barge_steal(&rule_err);
                    return -1;
                }
                return lb_invalid(err,
                                  "loadBalancers[%zu].advancedConfiguration: the listener "
                                  "rule '%s' does not exist.",
                                  i, rules[k]);
            }
        }
    }
    if (bg && !json_array_size(lbs))
        return lb_invalid(err, "The BLUE_GREEN deployment strategy needs loadBalancers with an "
                               "advancedConfiguration.");
    return 0;
}

static json_t *render_service(struct barge_tx *tx, const json_t *svc, bool tags,
                              struct barge_error **err)
{
    json_t *out = ecs_public(svc);
    /* The scheduler's and the deployment history's notes on each deployment
     * stay inside too. */
    size_t i;
    json_t *d;
    json_array_foreach(barge_json_array(out, "deployments"), i, d)
    {
        json_t *copy = ecs_public(d);
        json_array_set_new(barge_json_array(out, "deployments"), i, copy);
    }
    json_array_foreach(barge_json_array(out, "taskSets"), i, d)
    {
        json_array_set_new(barge_json_array(out, "taskSets"), i, ecs_public(d));
    }
    if (tags) {
        json_t *t;
        if (ecs_tags_get(tx, barge_json_str(svc, "serviceArn", ""), &t, err) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "tags", t);
    }
    return out;
}

static int lb_invalid(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException", "%s", msg);
}

int ecs_service_check_load_balancers(struct barge_tx *tx, const json_t *lbs, const json_t *td,
                                     struct barge_error **err)
{
    if (json_array_size(lbs) > 5)
        return lb_invalid(err, "A service can have at most 5 loadBalancers; %zu were given.",
                          json_array_size(lbs));
    bool awsvpc = barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc");
    size_t i;
    json_t *lb;
    json_array_foreach((json_t *)lbs, i, lb)
    {
        const char *arn = barge_json_str(lb, "targetGroupArn", NULL);
        const char *cname = barge_json_str(lb, "containerName", NULL);
        if (!arn)
            return lb_invalid(err,
                              "loadBalancers[%zu]: targetGroupArn is required (barge has no "
                              "Classic Load Balancers, so loadBalancerName is not supported).",
                              i);
        if (!cname || !json_object_get(lb, "containerPort"))
            return lb_invalid(err,
                              "loadBalancers[%zu]: containerName and containerPort are required "
                              "with a target group.",
                              i);
        json_int_t port = barge_json_int(lb, "containerPort", 0);
        _cleanup_json_ json_t *tg = used_target_group(tx, arn, err);
        if (!tg)
            return -1;
        const char *type = barge_json_str(tg, "TargetType", "instance");
        if (awsvpc && !barge_streq(type, "ip"))
            return lb_invalid(err,
                              "The provided target group %s has target type %s, which is "
                              "incompatible with the awsvpc network mode specified in the task "
                              "definition.",
                              arn, type);
        const json_t *container = NULL;
        size_t j;
        json_t *c;
        json_array_foreach(barge_json_array(td, "containerDefinitions"), j, c)
        {
            if (barge_streq(barge_json_str(c, "name", NULL), cname))
                container = c;
        }
        if (!container)
            return lb_invalid(err, "The container %s does not exist in the task definition.",
                              cname);
        bool mapped = false;
        json_t *pm;
        json_array_foreach(barge_json_array(container, "portMappings"), j, pm)
        {
            mapped |= barge_json_int(pm, "containerPort", -1) == port;
        }
        if (!mapped)
            return lb_invalid(err, "The container %s did not have a container port %lld defined.",
                              cname, (long long)port);
    }
    return 0;
}

/* Checks a service's serviceRegistries against Cloud Map and the task
 * definition td as ECS does: one registry at most, an existing Cloud Map
 * service, and for its SRV records a port: containerName and containerPort
 * (a container of td) in bridge and host mode, those or port in awsvpc. */
static int check_service_registries(struct barge_tx *tx, const json_t *regs, const json_t *td,
                                    struct barge_error **err)
{
    if (json_array_size(regs) > 1)
        return lb_invalid(err,
                          "A service can have at most one serviceRegistries entry; %zu "
                          "were given.",
                          json_array_size(regs));
    json_t *reg = json_array_get(regs, 0);
    if (!reg)
        return 0;
    const char *arn = barge_json_str(reg, "registryArn", "");
    _cleanup_json_ json_t *cm = NULL, *ns = NULL;
    int r = barge_cloudmap_service_find(tx, arn, &cm, &ns, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return lb_invalid(err, "serviceRegistries: the Cloud Map service '%s' does not exist.",
                          arn);
    const char *cname = barge_json_str(reg, "containerName", NULL);
    bool has_cport = json_object_get(reg, "containerPort") != NULL;
    if (!cname != !has_cport)
        return lb_invalid(err, "serviceRegistries: containerName and containerPort go together.");
    bool awsvpc = barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc");
    if (barge_cloudmap_has_record(cm, "SRV") && !cname &&
        (!awsvpc || !json_object_get(reg, "port")))
        return lb_invalid(err,
                          "serviceRegistries: the Cloud Map service '%s' has an SRV record: "
                          "give containerName and containerPort%s.",
                          arn, awsvpc ? ", or port" : "");
    if (!cname)
        return 0;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        if (barge_streq(barge_json_str(c, "name", NULL), cname))
            return 0;
    }
    return lb_invalid(err, "The container %s does not exist in the task definition.", cname);
}

/* ---- Service Connect ---- */

#define DNS_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

/* The port mapping of td named port_name, with its container's name in
 * *cname; NULL when there is none. Borrowed from td. */
static const json_t *named_port(const json_t *td, const char *port_name, const char **cname)
{
    size_t i, j;
    json_t *c, *pm;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        json_array_foreach(barge_json_array(c, "portMappings"), j, pm)
        {
            if (barge_streq(barge_json_str(pm, "name", NULL), port_name)) {
                *cname = barge_json_str(c, "name", "");
                return pm;
            }
        }
    }
    return NULL;
}

static bool dns_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 253 && !name[strspn(name, DNS_CHARS)] && name[0] != '.' &&
           name[0] != '-' && name[n - 1] != '.';
}

struct sc_taken {
    const char *self; /* the service's ARN */
    json_t *by;       /* {"arn:<discoveryArn>" or "alias:<dnsName:port>": service ARN} */
};

static int collect_taken(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    struct sc_taken *t = ud;
    const char *arn = barge_json_str(doc, "serviceArn", "");
    if (!barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE") || barge_streq(arn, t->self))
        return 0;
    size_t i, j;
    json_t *e, *a;
    json_array_foreach(barge_json_array(doc, "_scServices"), i, e)
    {
        _cleanup_free_ char *k = barge_xasprintf("arn:%s", barge_json_str(e, "discoveryArn", ""));
        json_object_set_new(t->by, k, json_string(arn));
        json_array_foreach(barge_json_array(e, "aliases"), j, a)
        {
            _cleanup_free_ char *ak =
                barge_xasprintf("alias:%s:%lld", barge_json_str(a, "dnsName", ""),
                                (long long)barge_json_int(a, "port", 0));
            json_object_set_new(t->by, ak, json_string(arn));
        }
    }
    return 0;
}

/* Checks an enabled serviceConnectConfiguration (cfg, namespace filled in)
 * against Cloud Map and the task definition td as ECS does, and returns in
 * *resolved what the scheduler and the agents' proxies use: one entry per
 * services[] item, {"discoveryName", "discoveryArn" (the Cloud Map service,
 * created in the namespace when missing), "containerName", "containerPort",
 * "aliases": [{"dnsName", "port"}]}. */
static int resolve_service_connect(struct barge_tx *tx, struct barge_server *srv, const char *self,
                                   const json_t *cfg, const json_t *td, json_t **resolved,
                                   struct barge_error **err)
{
    /* What other services serve: a discovery service has one owner, and
     * every host's proxy serves every alias, so an alias has one too. */
    _cleanup_json_ json_t *taken_by = json_object();
    struct sc_taken taken = {.self = self, .by = taken_by};
    if (barge_store_scan(tx, ECS_KIND_SERVICE, "", NULL, false, 0, collect_taken, &taken, err) < 0)
        return -1;
    const char *region = barge_server_region(srv);
    const char *ns_name = barge_json_str(cfg, "namespace", "");
    _cleanup_json_ json_t *ns = NULL, *arns = NULL;
    int r = barge_cloudmap_namespace_find(tx, region, ns_name, &ns, &arns, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return lb_invalid(err,
                          "serviceConnectConfiguration.namespace: the Cloud Map namespace '%s' "
                          "does not exist.",
                          ns_name);
    const char *mode = barge_json_str(td, "networkMode", "bridge");
    if (!barge_streq(mode, "bridge") && !barge_streq(mode, "awsvpc"))
        return lb_invalid(err,
                          "serviceConnectConfiguration: Service Connect needs the bridge or awsvpc "
                          "network mode; task definition '%s' uses '%s'.",
                          barge_json_str(td, "taskDefinitionArn", ""), mode);
    _cleanup_json_ json_t *out = json_array(), *seen = json_object(), *names = json_object();
    size_t i, j;
    json_t *s, *alias;
    json_array_foreach(barge_json_array(cfg, "services"), i, s)
    {
        const char *port_name = barge_json_str(s, "portName", NULL);
        if (!port_name || !*port_name)
            return lb_invalid(err,
                              "serviceConnectConfiguration.services[%zu].portName is "
                              "required.",
                              i);
        const char *cname = NULL;
        const json_t *pm = named_port(td, port_name, &cname);
        if (!pm)
            return lb_invalid(err,
                              "serviceConnectConfiguration.services[%zu].portName '%s' does not "
                              "name a port mapping of task definition '%s'.",
                              i, port_name, barge_json_str(td, "taskDefinitionArn", ""));
        const char *discovery = barge_json_str(s, "discoveryName", port_name);
        if (!dns_name_ok(discovery))
            return lb_invalid(err,
                              "serviceConnectConfiguration.services[%zu].discoveryName '%s' is "
                              "not a DNS name.",
                              i, discovery);
        if (json_object_get(names, discovery))
            return lb_invalid(err,
                              "serviceConnectConfiguration.services: discoveryName '%s' is given "
                              "twice.",
                              discovery);
        json_object_set_new(names, discovery, json_true());
        json_t *ingress = json_object_get(s, "ingressPortOverride");
        if (ingress && (json_integer_value(ingress) < 1 || json_integer_value(ingress) > 65535))
            return lb_invalid(err,
                              "serviceConnectConfiguration.services[%zu].ingressPortOverride "
                              "'%lld' is not between 1 and 65535.",
                              i, (long long)json_integer_value(ingress));
        json_t *aliases = json_array();
        _cleanup_json_ json_t *entry =
            json_pack("{s:s, s:s, s:I, s:o}", "discoveryName", discovery, "containerName", cname,
                      "containerPort", barge_json_int(pm, "containerPort", 0), "aliases", aliases);
        json_array_foreach(barge_json_array(s, "clientAliases"), j, alias)
        {
            json_int_t port = barge_json_int(alias, "port", 0);
            if (port < 1 || port > 65535)
                return lb_invalid(err,
                                  "serviceConnectConfiguration.services[%zu].clientAliases[%zu]."
                                  "port '%lld' is not between 1 and 65535.",
                                  i, j, (long long)port);
            _cleanup_free_ char *def =
                barge_xasprintf("%s.%s", discovery, barge_json_str(ns, "Name", ""));
            const char *dns = barge_json_str(alias, "dnsName", def);
            if (!dns_name_ok(dns))
                return lb_invalid(err,
                                  "serviceConnectConfiguration.services[%zu].clientAliases[%zu]."
                                  "dnsName '%s' is not a DNS name.",
                                  i, j, dns);
            _cleanup_free_ char *key = barge_xasprintf("%s:%lld", dns, (long long)port);
            if (json_object_get(seen, key))
                return lb_invalid(err,
                                  "serviceConnectConfiguration: the client alias '%s' is given "
                                  "twice.",
                                  key);
            json_object_set_new(seen, key, json_true());
            _cleanup_free_ char *tk = barge_xasprintf("alias:%s", key);
            const char *owner = barge_json_str(taken_by, tk, NULL);
            if (owner)
                return lb_invalid(err,
                                  "serviceConnectConfiguration: the client alias '%s' is served "
                                  "by service '%s' already.",
                                  key, owner);
            json_array_append_new(aliases, json_pack("{s:s, s:I}", "dnsName", dns, "port", port));
        }
        _cleanup_json_ json_t *cm = NULL;
        if (barge_cloudmap_service_ensure(tx, region, srv->cfg.account_id, ns, discovery, &cm,
                                          err) < 0)
            return -1;
        _cleanup_free_ char *tk = barge_xasprintf("arn:%s", barge_json_str(cm, "Arn", ""));
        const char *owner = barge_json_str(taken_by, tk, NULL);
        if (owner)
            return lb_invalid(err,
                              "serviceConnectConfiguration.services[%zu].discoveryName '%s' is "
                              "used by service '%s' in namespace '%s' already.",
                              i, discovery, owner, barge_json_str(ns, "Name", ""));
        json_object_set_new(entry, "discoveryArn", json_string(barge_json_str(cm, "Arn", "")));
        json_array_append(out, entry);
    }
    *resolved = barge_steal(&out);
    return 0;
}

/* Records what a CreateService or UpdateService input's
 * serviceConnectConfiguration says (cfg NULL: nothing to change) for the
 * task definition td the next deployments run (NULL: unchanged, and
 * nothing to check again): the configuration, with the namespace filled in
 * from the cluster's serviceConnectDefaults when it names none, goes to the
 * next deployments; the namespace (in "_namespace") is what
 * ListServicesByNamespace matches; "_scServices" what
 * resolve_service_connect found. The Cloud Map services the service no
 * longer registers in join "_staleRegistries". Returns 1 when the
 * configuration changed, 0 when not, -1 on error. */
static int set_service_connect(struct barge_tx *tx, struct barge_server *srv, json_t *svc,
                               const json_t *cluster, const json_t *cfg, const json_t *td,
                               struct barge_error **err)
{
    bool changed = cfg && !json_equal(cfg, json_object_get(svc, "_serviceConnect"));
    if (!changed && !td)
        return 0;
    if (!changed)
        cfg = json_object_get(svc, "_serviceConnect");
    if (!cfg)
        return 0;
    _cleanup_json_ json_t *copy = json_deep_copy(cfg), *resolved = NULL;
    if (json_is_true(json_object_get(cfg, "enabled"))) {
        const char *ns = barge_json_str(cfg, "namespace", NULL);
        if (!ns)
            ns = barge_json_str(barge_json_object(cluster, "serviceConnectDefaults"), "namespace",
                                NULL);
        if (!ns || !*ns)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "serviceConnectConfiguration.namespace is required: "
                                        "cluster '%s' has no serviceConnectDefaults namespace.",
                                        barge_json_str(cluster, "clusterName", ""));
        json_object_set_new(copy, "namespace", json_string(ns));
        if (resolve_service_connect(tx, srv, barge_json_str(svc, "serviceArn", ""), copy, td,
                                    &resolved, err) < 0)
            return -1;
        json_object_set_new(svc, "_namespace", json_string(ns));
    } else {
        json_object_del(svc, "_namespace");
    }
    size_t i, j;
    json_t *old, *now;
    json_array_foreach(barge_json_array(svc, "_scServices"), i, old)
    {
        const char *arn = barge_json_str(old, "discoveryArn", "");
        bool kept = false;
        json_array_foreach(resolved, j, now)
        {
            kept |= barge_streq(barge_json_str(now, "discoveryArn", NULL), arn);
        }
        if (kept)
            continue;
        json_t *stale = barge_json_array(svc, "_staleRegistries");
        if (!stale)
            json_object_set_new(svc, "_staleRegistries", stale = json_array());
        json_array_append_new(stale, json_string(arn));
    }
    if (resolved)
        json_object_set(svc, "_scServices", resolved);
    else
        json_object_del(svc, "_scServices");
    json_object_set(svc, "_serviceConnect", copy);
    return changed;
}

/* A new deployment of svc: its serviceConnectResources are the Cloud Map
 * services its tasks register in, as ECS shows them. */
static json_t *new_deployment_of(json_t *svc, const char *td_arn)
{
    json_t *dep = ecs_deployment_new(svc, td_arn, barge_json_int(svc, "desiredCount", 0), NULL);
    json_t *res = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(barge_json_array(svc, "_scServices"), i, e)
    {
        if (!res)
            json_object_set_new(dep, "serviceConnectResources", res = json_array());
        json_array_append_new(res, json_pack("{s:s, s:s}", "discoveryName",
                                             barge_json_str(e, "discoveryName", ""), "discoveryArn",
                                             barge_json_str(e, "discoveryArn", "")));
    }
    return dep;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct alias_walk {
    struct barge_tx *tx;
    json_t *by_key; /* {"dnsName:port": {"dnsName", "port", "endpoints": {"addr:port": [addr,
                       port]}}} */
};

/* The healthy instances of the Cloud Map service arn as {"addr:port":
 * [addr, port]} in into. */
static int add_endpoints(struct barge_tx *tx, const char *arn, json_t *into,
                         struct barge_error **err)
{
    _cleanup_json_ json_t *cm = NULL, *ns = NULL, *all = json_array();
    int r = barge_cloudmap_service_find(tx, arn, &cm, &ns, err);
    if (r <= 0)
        return r;
    _cleanup_free_ char *region = barge_cloudmap_arn_region(arn);
    _cleanup_free_ char *prefix =
        barge_xasprintf("%s|%s|", region ? region : "", barge_json_str(cm, "Id", ""));
    if (barge_store_scan(tx, CLOUDMAP_KIND_INSTANCE, prefix, NULL, false, 0, barge_cloudmap_collect,
                         all, err) < 0)
        return -1;
    size_t i;
    json_t *inst;
    json_array_foreach(all, i, inst)
    {
        json_t *attrs = barge_json_object(inst, "Attributes");
        const char *ip = barge_json_str(attrs, "AWS_INSTANCE_IPV4", NULL);
        long port = strtol(barge_json_str(attrs, "AWS_INSTANCE_PORT", "0"), NULL, 10);
        if (!ip || port < 1 || port > 65535 ||
            !barge_streq(barge_json_str(inst, "_health", "HEALTHY"), "HEALTHY"))
            continue;
        _cleanup_free_ char *key = barge_xasprintf("%s:%ld", ip, port);
        json_object_set_new(into, key, json_pack("[s, i]", ip, (int)port));
    }
    return 0;
}

static int alias_service(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    struct alias_walk *w = ud;
    if (!barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE"))
        return 0;
    size_t i, j;
    json_t *e, *alias;
    json_array_foreach(barge_json_array(doc, "_scServices"), i, e)
    {
        json_array_foreach(barge_json_array(e, "aliases"), j, alias)
        {
            const char *dns = barge_json_str(alias, "dnsName", "");
            json_int_t port = barge_json_int(alias, "port", 0);
            _cleanup_free_ char *k = barge_xasprintf("%s:%lld", dns, (long long)port);
            json_t *a = json_object_get(w->by_key, k);
            if (!a) {
                a = json_pack("{s:s, s:I, s:{}}", "dnsName", dns, "port", port, "endpoints");
                json_object_set_new(w->by_key, k, a);
            }
            if (add_endpoints(w->tx, barge_json_str(e, "discoveryArn", ""),
                              json_object_get(a, "endpoints"), err) < 0)
                return -1;
        }
    }
    return 0;
}

int ecs_service_connect_aliases(struct barge_tx *tx, json_t **out, struct barge_error **err)
{
    _cleanup_json_ json_t *by_key = json_object();
    struct alias_walk w = {.tx = tx, .by_key = by_key};
    if (barge_store_scan(tx, ECS_KIND_SERVICE, "", NULL, false, 0, alias_service, &w, err) < 0)
        return -1;
    /* Sorted (jansson keeps insertion order; the scan's is the keys'), so
     * that the same aliases make the same answer. */
    json_t *list = json_array();
    const char **keys = barge_xcalloc(json_object_size(by_key) + 1, sizeof(*keys));
    size_t n = 0;
    const char *k;
    json_t *a;
    json_object_foreach(by_key, k, a)
    {
        keys[n++] = k;
    }
    qsort(keys, n, sizeof(*keys), by_string);
    for (size_t i = 0; i < n; i++) {
        a = json_object_get(by_key, keys[i]);
        json_t *eps = json_object_get(a, "endpoints");
        const char **ek = barge_xcalloc(json_object_size(eps) + 1, sizeof(*ek));
        size_t m = 0;
        json_t *ep;
        json_object_foreach(eps, k, ep)
        {
            ek[m++] = k;
        }
        qsort(ek, m, sizeof(*ek), by_string);
        json_t *sorted = json_array();
        for (size_t j = 0; j < m; j++)
            json_array_append(sorted, json_object_get(eps, ek[j]));
        free(ek);
        json_array_append_new(list,
                              json_pack("{s:O, s:O, s:o}", "dnsName", json_object_get(a, "dnsName"),
                                        "port", json_object_get(a, "port"), "endpoints", sorted));
    }
    free(keys);
    *out = list;
    return 0;
}

int ecs_service_check_launch(const json_t *in, bool *fargate, struct barge_error **err)
{
    const char *lt = barge_json_str(in, "launchType", NULL);
    json_t *strategy = barge_json_array(in, "capacityProviderStrategy");
    if (lt && strcmp(lt, "EC2") != 0 && strcmp(lt, "FARGATE") != 0)
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "InvalidParameterException",
                                    "launchType '%s' is not available in barge; use EC2 or "
                                    "FARGATE.",
                                    lt);
    if (lt && json_array_size(strategy))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Specifying both a launchType and capacityProviderStrategy "
                                    "is not supported.");
    *fargate = barge_streq(lt, "FARGATE");
    size_t i;
    json_t *v;
    json_array_foreach(strategy, i, v)
    {
        *fargate |= ecs_capacity_is_fargate(barge_json_str(v, "capacityProvider", ""));
    }
    return 0;
}

/* With the EXTERNAL deployment controller, task sets (CreateTaskSet) hold
 * what tasks run and how; a CreateService or UpdateService input must leave
 * those to them. */
static int check_external_input(const json_t *in, struct barge_error **err)
{
    static const char *const owned[] = {
        "taskDefinition",           "launchType",
        "capacityProviderStrategy", "loadBalancers",
        "serviceRegistries",        "networkConfiguration",
        "platformVersion",          "serviceConnectConfiguration",
        "forceNewDeployment",
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(owned); i++) {
        json_t *v = json_object_get(in, owned[i]);
        if (v && !json_is_null(v) && !json_is_false(v))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "%s cannot be given for a service with the EXTERNAL "
                                        "deployment controller; task sets (CreateTaskSet) set "
                                        "it.",
                                        owned[i]);
    }
    return 0;
}

static int create_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *name = barge_json_str(in, "serviceName", "");
    if (!ecs_name_valid(name))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid service name '%s': up to 255 letters (uppercase and "
                                    "lowercase), numbers, underscores and hyphens are allowed.",
                                    name);
    const char *strategy = barge_json_str(in, "schedulingStrategy", "REPLICA");
    bool daemon = strcmp(strategy, "DAEMON") == 0;
    json_t *desired = json_object_get(in, "desiredCount");
    if (daemon && desired)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "desiredCount cannot be given for a service with the DAEMON "
                                    "scheduling strategy.");
    if (!daemon && !desired)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "desiredCount is required for a service with the REPLICA "
                                    "scheduling strategy.");
    if (desired && json_integer_value(desired) < 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "desiredCount must not be negative.");
    if (daemon && json_array_size(barge_json_array(in, "placementStrategy")))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Placement strategies are not supported with the DAEMON "
                                    "scheduling strategy.");
    const char *lt = barge_json_str(in, "launchType", NULL);
    json_t *strategy_in = barge_json_array(in, "capacityProviderStrategy");
    bool fargate = false;
    if (ecs_service_check_launch(in, &fargate, err) < 0)
        return -1;
    if (daemon && fargate)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The DAEMON scheduling strategy is not supported with "
                                    "Fargate.");
    const char *ctl = barge_json_str(barge_json_object(in, "deploymentController"), "type", "ECS");
    bool external = strcmp(ctl, "EXTERNAL") == 0;
    if (strcmp(ctl, "ECS") != 0 && !external)
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "InvalidParameterException",
                                    "Only the ECS and EXTERNAL deployment controllers are "
                                    "supported; '%s' was asked for.",
                                    ctl);
    if (external && daemon)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The DAEMON scheduling strategy is not supported with the "
                                    "EXTERNAL deployment controller.");
    if (external && check_external_input(in, err) < 0)
        return -1;
    json_t *tags = barge_json_array(in, "tags");
    if ((tags && ecs_tags_validate(tags, err) < 0) || ecs_placement_validate(in, err) < 0)
        return -1;
    _cleanup_json_ json_t *dcfg = json_deep_copy(barge_json_object(in, "deploymentConfiguration"));
    if (!dcfg)
        dcfg = json_object();
    if (check_deployment_configuration(dcfg, daemon, err) < 0)
        return -1;

    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *td = NULL, *existing = NULL;
    _cleanup_free_ char *tdkey = NULL;
    _cleanup_json_ json_t *caller = NULL;
    if (barge_api_caller(ctx->srv, &ctx->who, &caller, err) < 0)
        return -1;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    const char *ident = barge_json_str(in, "taskDefinition", NULL);
    if (!ident && !external)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "taskDefinition is required for the ECS deployment "
                                    "controller.");
    int r = external ? 1 : ecs_taskdef_find(tx, ctx->srv, ident, &td, &tdkey, err);
    if (r < 0)
        return -1;
    if (!external && (r == 0 || strcmp(barge_json_str(td, "status", ""), "ACTIVE") != 0))
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "TaskDefinition '%s' not found or not ACTIVE.", ident);
    if (ecs_service_check_load_balancers(tx, barge_json_array(in, "loadBalancers"), td, err) < 0 ||
        check_strategy(tx, dcfg, barge_json_array(in, "loadBalancers"), err) < 0 ||
        check_service_registries(tx, barge_json_array(in, "serviceRegistries"), td, err) < 0)
        return -1;
    if ((fargate && ecs_fargate_check(td, in, err) < 0) ||
        (json_array_size(strategy_in) &&
         ecs_capacity_check_strategy(tx, ctx->srv, strategy_in, err) < 0))
        return -1;
    const char *cname = barge_json_str(cluster, "clusterName", "");
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", cname, name);
    if (barge_store_get(tx, ECS_KIND_SERVICE, key, &existing, err) < 0)
        return -1;
    if (existing && strcmp(barge_json_str(existing, "status", ""), "INACTIVE") != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Creation of service was not idempotent: service '%s' "
                                    "already exists in cluster '%s'.",
                                    name, cname);
    _cleanup_free_ char *arn = ecs_arn(ctx->srv, "service/%s/%s", cname, name);
    /* ECS names an assumed role as the creator; long-term keys are the account's. */
    _cleanup_free_ char *by =
        barge_json_str(caller, "roleArn", NULL)
            ? barge_xstrdup(barge_json_str(caller, "roleArn", ""))
            : barge_xasprintf("arn:aws:iam::%s:root", ctx->srv->cfg.account_id);
    json_t *svc = json_pack(
        "{s:s, s:s, s:s, s:[], s:[], s:s, s:I, s:i, s:i, s:s, s:s, s:O, s:[], s:[], s:f, s:s, "
        "s:{s:s}, s:s, s:b, s:s, s:b, s:s}",
        "serviceArn", arn, "serviceName", name, "clusterArn",
        barge_json_str(cluster, "clusterArn", ""), "loadBalancers", "serviceRegistries", "status",
        "ACTIVE", "desiredCount", daemon ? (json_int_t)0 : json_integer_value(desired),
        "runningCount", 0, "pendingCount", 0, "launchType", lt ? lt : "EC2", "taskDefinition",
        barge_json_str(td, "taskDefinitionArn", ""), "deploymentConfiguration", dcfg, "deployments",
        "events", "createdAt", barge_now(), "schedulingStrategy", strategy, "deploymentController",
        "type", ctl, "createdBy", by, "enableECSManagedTags",
        barge_json_bool(in, "enableECSManagedTags", false), "propagateTags",
        barge_json_str(in, "propagateTags", "NONE"), "enableExecuteCommand",
        barge_json_bool(in, "enableExecuteCommand", false), "_cluster", cname);
    const char *copy[] = {"placementConstraints",    "placementStrategy",
                          "networkConfiguration",    "healthCheckGracePeriodSeconds",
                          "loadBalancers",           "serviceRegistries",
                          "platformVersion",         "role",
                          "capacityProviderStrategy"};
    if (json_array_size(strategy_in))
        json_object_del(svc, "launchType");
    if (fargate) {
        json_object_set_new(svc, "platformVersion",
                            json_string(barge_json_str(in, "platformVersion", "LATEST")));
        json_object_set_new(svc, "platformFamily", json_string("Linux"));
    }
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(in, copy[i]);
        if (v)
            json_object_set(svc, copy[i], v);
    }
    if (!json_object_get(svc, "placementConstraints"))
        json_object_set_new(svc, "placementConstraints", json_array());
    if (!json_object_get(svc, "placementStrategy"))
        json_object_set_new(svc, "placementStrategy", json_array());
    if (!external &&
        set_service_connect(tx, ctx->srv, svc, cluster,
                            json_object_get(in, "serviceConnectConfiguration"), td, err) < 0) {
        json_decref(svc);
        return -1;
    }
    if (external) {
        /* Its primary task set names them (UpdateServicePrimaryTaskSet). */
        json_object_del(svc, "taskDefinition");
        json_object_del(svc, "launchType");
        json_object_set_new(svc, "taskSets", json_array());
    } else {
        ecs_service_push_deployment(
            svc, new_deployment_of(svc, barge_json_str(td, "taskDefinitionArn", "")));
    }
    if (ecs_tags_drop(tx, arn, err) < 0 || (tags && ecs_tags_add(tx, arn, tags, err) < 0) ||
        (!external && ecs_service_deployment_open(tx, ctx->srv, svc, err) < 0) ||
        barge_store_put(tx, ECS_KIND_SERVICE, key, svc, err) < 0) {
        json_decref(svc);
        return -1;
    }
    json_t *o = render_service(tx, svc, true, err);
    json_decref(svc);
    if (!o)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(o);
        return -1;
    }
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:o}", "service", o);
    return 0;
}

static int update_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *svc = NULL, *td = NULL;
    _cleanup_free_ char *key = NULL, *tdkey = NULL;
    if (ecs_placement_validate(in, err) < 0)
        return -1;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0 ||
        ecs_service_load(tx, ctx->srv, cluster, barge_json_str(in, "service", ""), &svc, &key,
                         err) < 0)
        return -1;
    bool daemon = barge_streq(barge_json_str(svc, "schedulingStrategy", NULL), "DAEMON");
    bool external = ecs_service_external(svc);
    if (external && check_external_input(in, err) < 0)
        return -1;
    bool new_deployment = barge_json_bool(in, "forceNewDeployment", false);
    json_t *desired = json_object_get(in, "desiredCount");
    if (desired) {
        if (daemon)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "desiredCount cannot be changed for a DAEMON service.");
        if (json_integer_value(desired) < 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "desiredCount must not be negative.");
        json_object_set(svc, "desiredCount", desired);
        json_t *primary = json_array_get(barge_json_array(svc, "deployments"), 0);
        if (primary)
            json_object_set(primary, "desiredCount", desired);
        ecs_service_tasksets_compute(svc);
    }
    json_t *dcfg_in = barge_json_object(in, "deploymentConfiguration");
    if (dcfg_in) {
        json_t *dcfg = barge_json_object(svc, "deploymentConfiguration");
        json_object_update(dcfg, dcfg_in);
        if (check_deployment_configuration(dcfg, daemon, err) < 0)
            return -1;
    }
    const char *ident = barge_json_str(in, "taskDefinition", NULL);
    if (ident) {
        int r = ecs_taskdef_find(tx, ctx->srv, ident, &td, &tdkey, err);
        if (r < 0)
            return -1;
        if (r == 0 || strcmp(barge_json_str(td, "status", ""), "ACTIVE") != 0)
            return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                        "TaskDefinition '%s' not found or not ACTIVE.", ident);
        if (!barge_streq(barge_json_str(td, "taskDefinitionArn", NULL),
                         barge_json_str(svc, "taskDefinition", NULL)))
            new_deployment = true;
    }
    json_t *strategy = barge_json_array(in, "capacityProviderStrategy");
    if (json_array_size(strategy) && ecs_capacity_check_strategy(tx, ctx->srv, strategy, err) < 0)
        return -1;
    /* The load balancers (new or kept) must fit the task definition (new or
     * kept). */
    json_t *lbs_in = barge_json_array(in, "loadBalancers");
    json_t *lbs = lbs_in ? lbs_in : barge_json_array(svc, "loadBalancers");
    if (json_array_size(lbs) && (lbs_in || td)) {
        _cleanup_json_ json_t *cur_td = NULL;
        _cleanup_free_ char *cur_key = NULL;
        if (!td && ecs_taskdef_find(tx, ctx->srv, barge_json_str(svc, "taskDefinition", ""),
                                    &cur_td, &cur_key, err) < 0)
            return -1;
        if (ecs_service_check_load_balancers(tx, lbs, td ? td : cur_td, err) < 0)
            return -1;
    }
    if ((dcfg_in || lbs_in) &&
        check_strategy(tx, barge_json_object(svc, "deploymentConfiguration"), lbs, err) < 0)
        return -1;
    if (lbs_in && !json_equal(lbs_in, json_object_get(svc, "loadBalancers"))) {
        json_object_set(svc, "loadBalancers", lbs_in);
        new_deployment = true;
    }
    /* So must the service registries; new tasks register in the new ones
     * (the scheduler deregisters the tasks of the old ones as they stop). */
    json_t *regs_in = barge_json_array(in, "serviceRegistries");
    if (regs_in && !json_equal(regs_in, json_object_get(svc, "serviceRegistries"))) {
        _cleanup_json_ json_t *cur_td = NULL;
        _cleanup_free_ char *cur_key = NULL;
        if (!td && ecs_taskdef_find(tx, ctx->srv, barge_json_str(svc, "taskDefinition", ""),
                                    &cur_td, &cur_key, err) < 0)
            return -1;
        if (check_service_registries(tx, regs_in, td ? td : cur_td, err) < 0)
            return -1;
        json_t *stale = barge_json_array(svc, "_staleRegistries");
        if (!stale)
            json_object_set_new(svc, "_staleRegistries", stale = json_array());
        size_t i;
        json_t *old;
        json_array_foreach(barge_json_array(svc, "serviceRegistries"), i, old)
            json_array_append(stale, json_object_get(old, "registryArn"));
        json_object_set(svc, "serviceRegistries", regs_in);
        new_deployment = true;
    }
    const char *copy[] = {"placementConstraints",     "placementStrategy",
                          "networkConfiguration",     "healthCheckGracePeriodSeconds",
                          "capacityProviderStrategy", "platformVersion",
                          "enableExecuteCommand"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++) {
        json_t *v = json_object_get(in, copy[i]);
        if (v && !json_equal(v, json_object_get(svc, copy[i]))) {
            json_object_set(svc, copy[i], v);
            if (strcmp(copy[i], "healthCheckGracePeriodSeconds") != 0)
                new_deployment = true;
        }
    }
    /* Service Connect's ports must be in the task definition (new or kept). */
    json_t *sc_in = json_object_get(in, "serviceConnectConfiguration");
    _cleanup_json_ json_t *sc_td = NULL;
    _cleanup_free_ char *sc_key = NULL;
    if (sc_in && !td && !external &&
        ecs_taskdef_find(tx, ctx->srv, barge_json_str(svc, "taskDefinition", ""), &sc_td, &sc_key,
                         err) < 0)
        return -1;
    int sc =
        external ? 0 : set_service_connect(tx, ctx->srv, svc, cluster, sc_in, td ? td : sc_td, err);
    if (sc < 0)
        return -1;
    if (sc > 0)
        new_deployment = true;
    if (new_deployment) {
        const char *arn = td ? barge_json_str(td, "taskDefinitionArn", "")
                             : barge_json_str(svc, "taskDefinition", "");
        ecs_service_push_deployment(svc, new_deployment_of(svc, arn));
        if (ecs_service_deployment_open(tx, ctx->srv, svc, err) < 0)
            return -1;
    }
    if (barge_store_put(tx, ECS_KIND_SERVICE, key, svc, err) < 0)
        return -1;
    json_t *o = render_service(tx, svc, false, err);
    if (!o)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(o);
        return -1;
    }
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:o}", "service", o);
    return 0;
}

static int delete_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *svc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0 ||
        ecs_service_load(tx, ctx->srv, cluster, barge_json_str(in, "service", ""), &svc, &key,
                         err) < 0)
        return -1;
    bool daemon = barge_streq(barge_json_str(svc, "schedulingStrategy", NULL), "DAEMON");
    if (!daemon && barge_json_int(svc, "desiredCount", 0) > 0 &&
        !barge_json_bool(in, "force", false))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The service cannot be stopped while it is scaled above 0. "
                                    "Set desiredCount to 0 first, or pass force.");
    json_object_set_new(svc, "status", json_string("DRAINING"));
    json_object_set_new(svc, "desiredCount", json_integer(0));
    size_t i;
    json_t *d;
    json_array_foreach(barge_json_array(svc, "deployments"), i, d)
    {
        json_object_set_new(d, "desiredCount", json_integer(0));
    }
    ecs_service_tasksets_compute(svc);
    if (barge_store_put(tx, ECS_KIND_SERVICE, key, svc, err) < 0)
        return -1;
    json_t *o = render_service(tx, svc, false, err);
    if (!o)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(o);
        return -1;
    }
    barge_server_notify(ctx->srv);
    *out = json_pack("{s:o}", "service", o);
    return 0;
}

static int describe_services(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    json_t *idents = barge_json_array(in, "services");
    if (json_array_size(idents) > 10)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "services can name at most 10 services; %zu were given.",
                                    json_array_size(idents));
    bool tags = ecs_include_tags(in);
    size_t i;
    json_t *v;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL, *list = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    json_array_foreach(idents, i, v)
    {
        const char *ident = json_string_value(v);
        struct barge_error *e = NULL;
        _cleanup_free_ char *name = ecs_resource_id(ctx->srv, ident, "service", &e);
        barge_error_free(e);
        _cleanup_json_ json_t *svc = NULL;
        if (name) {
            _cleanup_free_ char *key =
                barge_xasprintf("%s/%s", barge_json_str(cluster, "clusterName", ""), name);
            if (barge_store_get(tx, ECS_KIND_SERVICE, key, &svc, err) < 0)
                return -1;
        }
        if (!svc) {
            _cleanup_free_ char *arn =
                name ? ecs_arn(ctx->srv, "service/%s/%s",
                               barge_json_str(cluster, "clusterName", ""), name)
                     : barge_xstrdup(ident);
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "arn", arn, "reason", "MISSING"));
            continue;
        }
        json_t *o = render_service(tx, svc, tags, err);
        if (!o)
            return -1;
        json_array_append_new(list, o);
    }
    *out = json_pack("{s:O, s:O}", "services", list, "failures", failures);
    return 0;
}

struct list_filter {
    struct barge_api_page *pg;
    const char *launch_type, *strategy;
};

static int list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct list_filter *lf = ud;
    if (strcmp(barge_json_str(doc, "status", ""), "ACTIVE") != 0)
        return 0;
    if (lf->launch_type && !barge_streq(barge_json_str(doc, "launchType", NULL), lf->launch_type))
        return 0;
    if (lf->strategy && !barge_streq(barge_json_str(doc, "schedulingStrategy", NULL), lf->strategy))
        return 0;
    return barge_api_page_add(lf->pg, key, json_string(barge_json_str(doc, "serviceArn", "")));
}

static int list_services(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    struct list_filter lf = {.pg = &pg,
                             .launch_type = barge_json_str(in, "launchType", NULL),
                             .strategy = barge_json_str(in, "schedulingStrategy", NULL)};
    if (barge_api_page_init(&pg, in, "maxResults", 10, 100, "nextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cluster = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        ecs_cluster_load(tx, ctx->srv, barge_json_str(in, "cluster", NULL), &cluster, err) < 0)
        return -1;
    _cleanup_free_ char *prefix =
        barge_xasprintf("%s/", barge_json_str(cluster, "clusterName", ""));
    if (barge_store_scan(tx, ECS_KIND_SERVICE, prefix, pg.after, false, 0, list_one, &lf, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "serviceArns", "nextToken");
    return 0;
}

/* Whether a service registers its tasks in one of the Cloud Map services
 * arns. */
static bool registers_in(const json_t *svc, const json_t *arns)
{
    size_t i, j;
    json_t *reg, *arn;
    json_array_foreach(barge_json_array(svc, "serviceRegistries"), i, reg)
    {
        json_array_foreach((json_t *)arns, j, arn)
        {
            if (barge_streq(barge_json_str(reg, "registryArn", NULL), json_string_value(arn)))
                return true;
        }
    }
    return false;
}

struct ns_filter {
    struct barge_api_page *pg;
    const char *ns;
    const json_t *registries; /* ARNs of the namespace's Cloud Map services */
    bool known;               /* some service or cluster uses the namespace */
};

static int ns_service(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct ns_filter *f = ud;
    if (!barge_streq(barge_json_str(doc, "_namespace", NULL), f->ns) &&
        !registers_in(doc, f->registries))
        return 0;
    f->known = true;
    if (!barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE"))
        return 0;
    return barge_api_page_add(f->pg, key, json_string(barge_json_str(doc, "serviceArn", "")));
}

static int ns_cluster(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct ns_filter *f = ud;
    const char *ns =
        barge_json_str(barge_json_object(doc, "serviceConnectDefaults"), "namespace", NULL);
    if (barge_streq(ns, f->ns) && barge_streq(barge_json_str(doc, "status", NULL), "ACTIVE")) {
        f->known = true;
        return 1;
    }
    return 0;
}

/* Services of every cluster whose Service Connect namespace is the one asked
 * for (by name, or by its Cloud Map ARN), or whose serviceRegistries name a
 * Cloud Map service of it. A namespace exists in Cloud Map, or while a
 * cluster's defaults or a service name it; any other is a
 * NamespaceNotFoundException. */
static int list_services_by_namespace(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                      struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    struct ns_filter f = {.pg = &pg, .ns = barge_json_str(in, "namespace", "")};
    if (!*f.ns)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "namespace must not be empty.");
    if (barge_api_page_init(&pg, in, "maxResults", 10, 100, "nextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cm = NULL, *registries = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    int found = barge_cloudmap_namespace_find(tx, ctx->who.region, f.ns, &cm, &registries, err);
    if (found < 0)
        return -1;
    if (found) {
        f.ns = barge_json_str(cm, "Name", f.ns);
        f.registries = registries;
        f.known = true;
    }
    if (barge_store_scan(tx, ECS_KIND_SERVICE, "", pg.after, false, 0, ns_service, &f, err) < 0)
        return -1;
    if (!f.known && !pg.after &&
        barge_store_scan(tx, ECS_KIND_CLUSTER, "", NULL, false, 0, ns_cluster, &f, err) < 0)
        return -1;
    if (!f.known && !pg.after)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NamespaceNotFoundException",
                                    "Namespace '%s' was not found: it is not a Cloud Map "
                                    "namespace, and no cluster's serviceConnectDefaults and no "
                                    "service use it.",
                                    f.ns);
    *out = json_object();
    barge_api_page_finish(&pg, *out, "serviceArns", "nextToken");
    return 0;
}

const struct barge_api_op ecs_service_ops[] = {
    {"CreateService", create_service},
    {"UpdateService", update_service},
    {"DeleteService", delete_service},
    {"DescribeServices", describe_services},
    {"ListServices", list_services},
    {"ListServicesByNamespace", list_services_by_namespace},
    {NULL, NULL},
};
