/* The part of Elastic Load Balancing v2 that puts a stable address in front
 * of a set of targets: load balancers (application and network), target
 * groups with their health checks, listeners that forward to target groups,
 * redirect or answer a fixed response, rules that do so for some paths, host
 * names, headers, query strings, methods or client addresses, target
 * registration and health. Served over the query protocol
 * (query.c). What is stored here is the desired state; src/control/lb.c makes
 * HAProxy (src/net/haproxy.c) match it, and DescribeTargetHealth reads the
 * running HAProxy's view of each target. */
#include "api/elbv2.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ecs.h"
#include "common/arn.h"
#include "common/ids.h"
#include "common/json.h"
#include "svc/acm.h"

static int invalid(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int invalid(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError", "%s", msg);
}

static int typed(struct barge_error **err, int code, const char *type, const char *fmt, ...)
    BARGE_PRINTF(4, 5);
static int typed(struct barge_error **err, int code, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, code, type, "%s", msg);
}

/* ELB names: 1-32 letters, digits and hyphens, no hyphen at either end. */
static int check_name(const char *what, const char *name, struct barge_error **err)
{
    size_t n = strlen(name);
    bool ok = n >= 1 && n <= 32 && name[0] != '-' && name[n - 1] != '-';
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || name[i] == '-';
    if (!ok)
        return invalid(err,
                       "%s name '%s' can have at most 32 characters, only alphanumeric characters "
                       "and hyphens, and must not begin or end with a hyphen",
                       what, name);
    if (!strcmp(what, "Load balancer") && barge_str_has_prefix(name, "internal-"))
        return invalid(err, "Load balancer name '%s' cannot begin with 'internal-'", name);
    return 0;
}

static char *new_id(void)
{
    char hex[33];
    barge_id_hex32(hex);
    hex[16] = 0;
    return barge_xstrdup(hex);
}

/* The element of an ARN's resource path at index i ("loadbalancer/app/NAME/ID"
 * has NAME at 2), or NULL when arn is not an ELB ARN of that kind. The caller
 * frees it. */
static json_t *load_lb(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    return barge_elb_load_by_arn(tx, ELB_KIND_LB, "loadbalancer", 2, "LoadBalancerArn", arn,
                                 "LoadBalancerNotFound", "Load balancer", err);
}

/* "listener/app/LB/LBID/ID": the store key "LB/ID". */
static char *listener_key(const char *arn)
{
    _cleanup_free_ char *lb = barge_elb_arn_part(arn, "listener", 2);
    _cleanup_free_ char *id = barge_elb_arn_part(arn, "listener", 4);
    return lb && id ? barge_xasprintf("%s/%s", lb, id) : NULL;
}

static json_t *load_listener(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    _cleanup_free_ char *key = listener_key(arn);
    return barge_elb_load_keyed(tx, ELB_KIND_LISTENER, key, "ListenerArn", arn, "ListenerNotFound",
                                "Listener", err);
}

/* An ARN of this region and account for the ELB resource res. */
static char *elb_arn(const struct barge_api_ctx *ctx, const char *res)
{
    return barge_arn_make("elasticloadbalancing", barge_server_region(ctx->srv),
                          ctx->srv->cfg.account_id, res);
}

/* Puts doc at key and commits the write (stealing *tx). */
static int save(struct barge_tx **tx, const char *kind, const char *key, const json_t *doc,
                struct barge_error **err)
{
    if (barge_store_put(*tx, kind, key, doc, err) < 0)
        return -1;
    return barge_store_commit(barge_steal(tx), err);
}

/* The documents of kind that belong to owner (a load balancer's name or a
 * listener's key): their keys start with "<owner>/". */
static json_t *scan_under(struct barge_tx *tx, const char *kind, const char *owner,
                          struct barge_error **err)
{
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", owner);
    return barge_elb_scan_all(tx, kind, prefix, err);
}

/* ELB fails a Describe that names something missing: the first of asked
 * (strings) that no document of all has as its field, in the message
 * "<msg[0]><name><msg[1]>". */
static int check_found(const json_t *asked, const json_t *all, const char *field,
                       const char *not_found, const char *const msg[2], struct barge_error **err)
{
    size_t i, j;
    json_t *v, *doc;
    json_array_foreach((json_t *)asked, i, v)
    {
        bool hit = false;
        json_array_foreach((json_t *)all, j, doc) hit |=
            barge_streq(barge_json_str(doc, field, ""), json_string_value(v));
        if (!hit)
            return typed(err, BARGE_ERR_NOT_FOUND, not_found, "%s%s%s", msg[0],
                         json_string_value(v), msg[1]);
    }
    return 0;
}

/* A document without the fields only barged reads (those starting with '_'). */
static json_t *public_doc(const json_t *doc)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        if (k[0] != '_')
            json_object_set(o, k, v);
    }
    return o;
}

/* "listener-rule/app/LB/LBID/LID/RID": the store key "LB/LID/RID". */
static char *rule_key(const char *arn)
{
    _cleanup_free_ char *lb = barge_elb_arn_part(arn, "listener-rule", 2);
    _cleanup_free_ char *lid = barge_elb_arn_part(arn, "listener-rule", 4);
    _cleanup_free_ char *rid = barge_elb_arn_part(arn, "listener-rule", 5);
    return lb && lid && rid ? barge_xasprintf("%s/%s/%s", lb, lid, rid) : NULL;
}

/* Deletes the documents of kind that belong to owner (see scan_under), each
 * at the key that key_of makes of its arn_field. */
static int delete_under(struct barge_tx *tx, const char *kind, const char *owner,
                        const char *arn_field, char *(*key_of)(const char *arn),
                        struct barge_error **err)
{
    _cleanup_json_ json_t *docs = scan_under(tx, kind, owner, err);
    if (!docs)
        return -1;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        _cleanup_free_ char *key = key_of(barge_json_str(d, arn_field, ""));
        if (key && barge_store_del(tx, kind, key, err) < 0)
            return -1;
    }
    return 0;
}

static int delete_rules(struct barge_tx *tx, const char *owner, struct barge_error **err)
{
    return delete_under(tx, ELB_KIND_RULE, owner, "RuleArn", rule_key, err);
}

/* Checks a TagList as ELB does: keys of 1-128 characters outside the
 * reserved 'aws:' prefix, values of at most 256, each key once. */
static int check_tags(const json_t *tags, struct barge_error **err)
{
    size_t i, j;
    json_t *t, *u;
    json_array_foreach((json_t *)tags, i, t)
    {
        const char *key = barge_json_str(t, "Key", "");
        const char *value = barge_json_str(t, "Value", "");
        if (!*key || strlen(key) > 128)
            return invalid(err, "Tag key '%s' must have from 1 to 128 characters", key);
        if (barge_str_has_prefix(key, "aws:"))
            return invalid(err, "Tag key '%s' cannot begin with the reserved prefix 'aws:'", key);
        if (strlen(value) > 256)
            return invalid(err, "The value of tag '%s' can have at most 256 characters", key);
        json_array_foreach((json_t *)tags, j, u)
        {
            if (j < i && barge_streq(barge_json_str(u, "Key", ""), key))
                return typed(err, BARGE_ERR_INVALID, "DuplicateTagKeys",
                             "Tag key '%s' is given more than once", key);
        }
    }
    if (json_array_size(tags) > 50)
        return typed(err, BARGE_ERR_LIMIT, "TooManyTags",
                     "A resource can have at most 50 tags; %zu were given", json_array_size(tags));
    return 0;
}

/* The TagList of a Create call (checked with check_tags before), kept for
 * the tag calls (a new reference). */
static json_t *tags_of(const json_t *in)
{
    json_t *tags = barge_json_array(in, "Tags");
    return tags ? json_deep_copy(tags) : json_array();
}

/* Cuts the list out[field] to the page that Marker and PageSize (default
 * and at most 400) ask for; a NextMarker names the last item returned by its
 * arn_field. */
static int paginate(json_t *out, const char *field, const char *arn_field, const json_t *in,
                    struct barge_error **err)
{
    json_t *all = json_object_get(out, field);
    size_t size = (size_t)barge_json_int(in, "PageSize", 400), start = 0;
    const char *marker = barge_json_str(in, "Marker", NULL);
    if (marker) {
        _cleanup_error_ struct barge_error *derr = NULL;
        _cleanup_free_ char *after = NULL;
        if (barge_api_token_decode(marker, &after, &derr) < 0)
            return invalid(err, "Invalid Marker '%s'", marker);
        bool hit = false;
        for (size_t i = 0; i < json_array_size(all) && !hit; i++) {
            if (barge_streq(barge_json_str(json_array_get(all, i), arn_field, ""), after)) {
                start = i + 1;
                hit = true;
            }
        }
        if (!hit)
            return invalid(err, "Marker '%s' does not name an item of this listing any more",
                           marker);
    }
    json_t *page = json_array();
    for (size_t i = start; i < json_array_size(all) && json_array_size(page) < size; i++)
        json_array_append(page, json_array_get(all, i));
    if (start + json_array_size(page) < json_array_size(all)) {
        char *next = barge_api_token_encode(
            barge_json_str(json_array_get(page, json_array_size(page) - 1), arn_field, ""));
        json_object_set_new(out, "NextMarker", json_string(next));
        free(next);
    }
    json_object_set_new(out, field, page);
    return 0;
}

/* What a Describe call lists, and how it asks for some: by ARN (arns_param,
 * matched against arn_field) and, where name_field is set, by "Names". */
struct listing {
    const char *field; /* the list in the answer */
    const char *arns_param;
    const char *arn_field;
    const char *name_field;
    const char *not_found;       /* the error for an ARN or name that is missing */
    const char *missing_arn[2];  /* its message, around the ARN */
    const char *missing_name[2]; /* and around the name */
};

static const struct listing lb_listing = {
    .field = "LoadBalancers",
    .arns_param = "LoadBalancerArns",
    .arn_field = "LoadBalancerArn",
    .name_field = "LoadBalancerName",
    .not_found = "LoadBalancerNotFound",
    .missing_arn = {"Load balancer '", "' not found"},
    .missing_name = {"Load balancers '[", "]' not found"},
};

static const struct listing tg_listing = {
    .field = "TargetGroups",
    .arns_param = "TargetGroupArns",
    .arn_field = "TargetGroupArn",
    .name_field = "TargetGroupName",
    .not_found = "TargetGroupNotFound",
    .missing_arn = {"One or more target groups not found: '", "'"},
    .missing_name = {"One or more target groups not found: '", "'"},
};

static const struct listing listener_listing = {
    .field = "Listeners",
    .arns_param = "ListenerArns",
    .arn_field = "ListenerArn",
    .not_found = "ListenerNotFound",
    .missing_arn = {"One or more listeners not found: '", "'"},
};

static const struct listing rule_listing = {
    .field = "Rules",
    .arns_param = "RuleArns",
    .arn_field = "RuleArn",
    .not_found = "RuleNotFound",
    .missing_arn = {"One or more rules not found: '", "'"},
};

/* Whether the Describe call in asks for doc: all when it names none. */
static bool asked_for(const struct listing *l, const json_t *in, const json_t *doc)
{
    json_t *arns = barge_json_array(in, l->arns_param);
    json_t *names = l->name_field ? barge_json_array(in, "Names") : NULL;
    return (!json_array_size(arns) ||
            barge_json_has_string(arns, barge_json_str(doc, l->arn_field, ""))) &&
           (!json_array_size(names) ||
            barge_json_has_string(names, barge_json_str(doc, l->name_field, "")));
}

/* Starts the answer of a Describe call in *out; returns its (borrowed) list. */
static json_t *start_listing(const struct listing *l, json_t **out)
{
    json_t *found = json_array();
    *out = json_pack("{s:o}", l->field, found);
    return found;
}

/* Ends the answer out of the Describe call in: an error when it names
 * something missing from all, else the list cut to the page asked for. */
static int end_listing(const struct listing *l, const json_t *in, const json_t *all, json_t *out,
                       struct barge_error **err)
{
    if (check_found(barge_json_array(in, l->arns_param), all, l->arn_field, l->not_found,
                    l->missing_arn, err) < 0 ||
        (l->name_field && check_found(barge_json_array(in, "Names"), all, l->name_field,
                                      l->not_found, l->missing_name, err) < 0))
        return -1;
    return paginate(out, l->field, l->arn_field, in, err);
}

/* Answers a Describe call with the documents of all that it asks for. */
static int answer_listing(const struct listing *l, const json_t *in, const json_t *all,
                          json_t **out, struct barge_error **err)
{
    json_t *found = start_listing(l, out);
    size_t i;
    json_t *doc;
    json_array_foreach((json_t *)all, i, doc)
    {
        if (asked_for(l, in, doc))
            json_array_append_new(found, public_doc(doc));
    }
    return end_listing(l, in, all, *out, err);
}

/* ---- load balancers ---- */

static int create_load_balancer(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    if (check_tags(barge_json_array(in, "Tags"), err) < 0)
        return -1;
    const char *name = barge_json_str(in, "Name", "");
    const char *type = barge_json_str(in, "Type", "application");
    if (check_name("Load balancer", name, err) < 0)
        return -1;
    if (strcmp(type, "application") != 0 && strcmp(type, "network") != 0)
        return invalid(err,
                       "Load balancer type '%s' is not supported by barge: use "
                       "'application' or 'network'",
                       type);
    if (barge_streq(barge_json_str(in, "IpAddressType", "ipv4"), "dualstack"))
        return invalid(err, "IpAddressType 'dualstack' is not supported by barge: use 'ipv4'");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *old = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ELB_KIND_LB, name, &old, err) < 0)
        return -1;
    if (old)
        return typed(err, BARGE_ERR_EXISTS, "DuplicateLoadBalancerName",
                     "A load balancer with the name '%s' already exists", name);
    _cleanup_free_ char *id = new_id();
    _cleanup_free_ char *res = barge_xasprintf("loadbalancer/%s/%s/%s",
                                               !strcmp(type, "network") ? "net" : "app", name, id);
    _cleanup_free_ char *arn = elb_arn(ctx, res);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:s, s:f, s:s, s:s, s:{s:s}, s:s, s:s, s:[], s:s, s:[], s:o}",
                  "LoadBalancerArn", arn, "LoadBalancerName", name, "DNSName",
                  ctx->srv->cfg.lb_address ? ctx->srv->cfg.lb_address : "127.0.0.1", "CreatedTime",
                  barge_now(), "Scheme", barge_json_str(in, "Scheme", "internet-facing"), "Type",
                  type, "State", "Code", "active", "IpAddressType", "ipv4", "VpcId", "vpc-barge",
                  "AvailabilityZones", "CanonicalHostedZoneId", "ZBARGE", "SecurityGroups", "_tags",
                  tags_of(in));
    if (save(&tx, ELB_KIND_LB, name, doc, err) < 0)
        return -1;
    *out = json_pack("{s:[o]}", "LoadBalancers", public_doc(doc));
    return 0;
}

static int describe_load_balancers(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *all = barge_elb_scan_all(tx, ELB_KIND_LB, "", err);
    if (!all)
        return -1;
    return answer_listing(&lb_listing, in, all, out, err);
}

static int delete_load_balancer(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    const char *arn = barge_json_str(in, "LoadBalancerArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *doc = load_lb(tx, arn, err);
    if (!doc) {
        /* Deleting a load balancer that is gone already succeeds. */
        if ((*err)->code != BARGE_ERR_NOT_FOUND)
            return -1;
        barge_error_free(barge_steal(err));
        *out = json_object();
        return 0;
    }
    if (barge_streq(barge_json_str(barge_json_object(doc, "_attributes"),
                                   "deletion_protection.enabled", "false"),
                    "true"))
        return typed(err, BARGE_ERR_CONFLICT, "OperationNotPermitted",
                     "Load balancer '%s' cannot be deleted because deletion protection is "
                     "enabled",
                     arn);
    const char *name = barge_json_str(doc, "LoadBalancerName", "");
    if (delete_under(tx, ELB_KIND_LISTENER, name, "ListenerArn", listener_key, err) < 0 ||
        delete_rules(tx, name, err) < 0 || barge_store_del(tx, ELB_KIND_LB, name, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_object();
    return 0;
}

/* ---- target groups ---- */

/* "200", "200,202" or "200-299", each code within 200-499. */
static bool matcher_ok(const char *codes)
{
    const char *p = codes;
    if (!*p)
        return false;
    while (*p) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p)
            return false;
        if (*end == '-') {
            const char *q = end + 1;
            hi = strtol(q, &end, 10);
            if (end == q)
                return false;
        }
        if (lo < 200 || hi > 499 || lo > hi)
            return false;
        if (*end == ',')
            end++;
        else if (*end)
            return false;
        p = end;
    }
    return true;
}

/* Sets the health check of the target group doc from the call in: what in
 * gives, else what doc has, else ELB's defaults for doc's Protocol. */
static int apply_health_check(json_t *doc, const json_t *in, struct barge_error **err)
{
    const char *proto = barge_json_str(doc, "Protocol", "HTTP");
    bool http = !strcmp(proto, "HTTP");
    _cleanup_free_ char *hc_proto = barge_xstrdup(barge_json_str(
        in, "HealthCheckProtocol", barge_json_str(doc, "HealthCheckProtocol", proto)));
    if (strcmp(hc_proto, "HTTP") != 0 && strcmp(hc_proto, "TCP") != 0)
        return invalid(err, "Health check protocol '%s' is not supported by barge", hc_proto);
    if (http && strcmp(hc_proto, "HTTP") != 0)
        return invalid(err,
                       "Health check protocol '%s' is not supported for target groups with "
                       "the HTTP protocol",
                       hc_proto);
    bool hc_http = !strcmp(hc_proto, "HTTP");
    const char *given_path = barge_json_str(in, "HealthCheckPath", NULL);
    if (given_path && !hc_http)
        return invalid(err,
                       "A health check path cannot be set with the '%s' health check "
                       "protocol",
                       hc_proto);
    if (given_path && given_path[0] != '/')
        return invalid(err, "Health check path '%s' must begin with a '/'", given_path);
    _cleanup_free_ char *path =
        barge_xstrdup(given_path ? given_path : barge_json_str(doc, "HealthCheckPath", "/"));
    _cleanup_free_ char *hc_port = barge_xstrdup(barge_json_str(
        in, "HealthCheckPort", barge_json_str(doc, "HealthCheckPort", "traffic-port")));
    if (strcmp(hc_port, "traffic-port") != 0) {
        char *end;
        long p = strtol(hc_port, &end, 10);
        if (*end || p < 1 || p > 65535)
            return invalid(err,
                           "Health check port '%s' must be 'traffic-port' or a port from 1 "
                           "to 65535",
                           hc_port);
    }
    json_int_t interval = barge_json_int(in, "HealthCheckIntervalSeconds",
                                         barge_json_int(doc, "HealthCheckIntervalSeconds", 30));
    json_int_t timeout =
        barge_json_int(in, "HealthCheckTimeoutSeconds",
                       barge_json_int(doc, "HealthCheckTimeoutSeconds", http ? 5 : 10));
    json_int_t healthy = barge_json_int(in, "HealthyThresholdCount",
                                        barge_json_int(doc, "HealthyThresholdCount", 5));
    json_int_t unhealthy = barge_json_int(in, "UnhealthyThresholdCount",
                                          barge_json_int(doc, "UnhealthyThresholdCount", 2));
    if (interval < 5 || interval > 300)
        return invalid(err, "Health check interval '%lld' must be from 5 to 300 seconds",
                       (long long)interval);
    if (timeout < 2 || timeout > 120)
        return invalid(err, "Health check timeout '%lld' must be from 2 to 120 seconds",
                       (long long)timeout);
    if (timeout >= interval)
        return invalid(err,
                       "Health check timeout '%lld' must be smaller than the interval "
                       "'%lld'",
                       (long long)timeout, (long long)interval);
    if (healthy < 2 || healthy > 10 || unhealthy < 2 || unhealthy > 10)
        return invalid(err,
                       "Healthy threshold '%lld' and unhealthy threshold '%lld' must be from 2 "
                       "to 10",
                       (long long)healthy, (long long)unhealthy);
    json_t *matcher = barge_json_object(in, "Matcher");
    if (json_object_get(matcher, "GrpcCode"))
        return invalid(err, "Matcher GrpcCode is not supported by barge: use HttpCode");
    _cleanup_free_ char *codes = barge_xstrdup(barge_json_str(
        matcher, "HttpCode", barge_json_str(barge_json_object(doc, "Matcher"), "HttpCode", "200")));
    if (!matcher_ok(codes))
        return invalid(err,
                       "Health check matcher HTTP code '%s' must be within '200-499' "
                       "(\"200\", \"200,202\" or \"200-299\")",
                       codes);
    json_object_set_new(doc, "HealthCheckProtocol", json_string(hc_proto));
    json_object_set_new(doc, "HealthCheckPort", json_string(hc_port));
    json_object_set_new(
        doc, "HealthCheckEnabled",
        json_boolean(barge_json_bool(in, "HealthCheckEnabled",
                                     barge_json_bool(doc, "HealthCheckEnabled", true))));
    json_object_set_new(doc, "HealthCheckIntervalSeconds", json_integer(interval));
    json_object_set_new(doc, "HealthCheckTimeoutSeconds", json_integer(timeout));
    json_object_set_new(doc, "HealthyThresholdCount", json_integer(healthy));
    json_object_set_new(doc, "UnhealthyThresholdCount", json_integer(unhealthy));
    if (hc_http) {
        json_object_set_new(doc, "HealthCheckPath", json_string(path));
        json_object_set_new(doc, "Matcher", json_pack("{s:s}", "HttpCode", codes));
    } else {
        json_object_del(doc, "HealthCheckPath");
        json_object_del(doc, "Matcher");
    }
    return 0;
}

static int create_target_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    if (check_tags(barge_json_array(in, "Tags"), err) < 0)
        return -1;
    const char *name = barge_json_str(in, "Name", "");
    const char *type = barge_json_str(in, "TargetType", "instance");
    const char *proto = barge_json_str(in, "Protocol", NULL);
    if (check_name("Target group", name, err) < 0)
        return -1;
    if (strcmp(type, "instance") != 0 && strcmp(type, "ip") != 0)
        return invalid(err, "Target type '%s' is not supported by barge: use 'ip' or 'instance'",
                       type);
    if (!proto)
        return invalid(err, "A protocol must be specified");
    if (!json_object_get(in, "Port"))
        return invalid(err, "A port must be specified");
    if (strcmp(proto, "HTTP") != 0 && strcmp(proto, "TCP") != 0)
        return invalid(err,
                       "Protocol '%s' is not supported by barge: use 'HTTP' (application load "
                       "balancers) or 'TCP' (network load balancers)",
                       proto);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *old = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, ELB_KIND_TG, name, &old, err) < 0)
        return -1;
    if (old)
        return typed(err, BARGE_ERR_EXISTS, "DuplicateTargetGroupName",
                     "A target group with the same name '%s' exists", name);
    _cleanup_free_ char *id = new_id();
    _cleanup_free_ char *res = barge_xasprintf("targetgroup/%s/%s", name, id);
    _cleanup_free_ char *arn = elb_arn(ctx, res);
    _cleanup_json_ json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:I, s:s, s:[], s:s, s:[], s:o}", "TargetGroupArn", arn, "TargetGroupName",
        name, "Protocol", proto, "Port", barge_json_int(in, "Port", 0), "TargetType", type,
        "LoadBalancerArns", "VpcId", "vpc-barge", "_targets", "_tags", tags_of(in));
    if (apply_health_check(doc, in, err) < 0)
        return -1;
    if (!strcmp(proto, "HTTP"))
        json_object_set_new(doc, "ProtocolVersion", json_string("HTTP1"));
    json_object_set_new(doc, "IpAddressType", json_string("ipv4"));
    if (save(&tx, ELB_KIND_TG, name, doc, err) < 0)
        return -1;
    *out = json_pack("{s:[o]}", "TargetGroups", public_doc(doc));
    return 0;
}

/* Begins a transaction (write or read) and loads the target group that the
 * call in names by TargetGroupArn. */
static json_t *begin_tg(struct barge_api_ctx *ctx, const json_t *in, bool write,
                        struct barge_tx **tx, struct barge_error **err)
{
    if (barge_store_begin(ctx->srv->store, write, tx, err) < 0)
        return NULL;
    return barge_elb_load_tg(*tx, barge_json_str(in, "TargetGroupArn", ""), err);
}

static int describe_target_groups(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    const char *lb_arn = barge_json_str(in, "LoadBalancerArn", NULL);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    if (lb_arn) {
        _cleanup_json_ json_t *lb = load_lb(tx, lb_arn, err);
        if (!lb)
            return -1;
    }
    _cleanup_json_ json_t *all = barge_elb_scan_all(tx, ELB_KIND_TG, "", err);
    _cleanup_json_ json_t *listeners = all ? barge_elb_scan_users(tx, err) : NULL;
    if (!listeners)
        return -1;
    json_t *found = start_listing(&tg_listing, out);
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        json_t *lbs =
            barge_elb_tg_load_balancers(listeners, barge_json_str(doc, "TargetGroupArn", ""));
        if (!asked_for(&tg_listing, in, doc) || (lb_arn && !barge_json_has_string(lbs, lb_arn))) {
            json_decref(lbs);
            continue;
        }
        json_t *pub = public_doc(doc);
        json_object_set_new(pub, "LoadBalancerArns", lbs);
        json_array_append_new(found, pub);
    }
    return end_listing(&tg_listing, in, all, *out, err);
}

static int delete_target_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    const char *arn = barge_json_str(in, "TargetGroupArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = begin_tg(ctx, in, true, &tx, err);
    _cleanup_json_ json_t *listeners = doc ? barge_elb_scan_users(tx, err) : NULL;
    if (!listeners)
        return -1;
    size_t i;
    json_t *l;
    json_array_foreach(listeners, i, l)
    {
        if (barge_elb_forwards_to(l, arn))
            return typed(err, BARGE_ERR_CONFLICT, "ResourceInUse",
                         "Target group '%s' is currently in use by a listener or a rule", arn);
    }
    if (barge_store_del(tx, ELB_KIND_TG, barge_json_str(doc, "TargetGroupName", ""), err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int modify_target_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *tg = begin_tg(ctx, in, true, &tx, err);
    if (!tg || apply_health_check(tg, in, err) < 0)
        return -1;
    _cleanup_json_ json_t *lbs =
        barge_elb_scan_tg_load_balancers(tx, barge_json_str(tg, "TargetGroupArn", ""), err);
    if (!lbs)
        return -1;
    json_t *pub = public_doc(tg);
    json_object_set(pub, "LoadBalancerArns", lbs);
    if (save(&tx, ELB_KIND_TG, barge_json_str(tg, "TargetGroupName", ""), tg, err) < 0) {
        json_decref(pub);
        return -1;
    }
    /* The data plane's next pass restarts the HAProxy processes that use it
     * with the new checks (a graceful takeover). */
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:[o]}", "TargetGroups", pub);
    return 0;
}

/* ---- listeners ---- */

/* The forward action action, as {"TargetGroups": [{TargetGroupArn, Weight}], "Stickiness":
 * {Enabled, DurationSeconds}} (a new reference), or NULL with err set. A plain TargetGroupArn is
 * one group of weight 1. */
static json_t *read_forward(const json_t *action, struct barge_error **err)
{
    const char *tg_arn = barge_json_str(action, "TargetGroupArn", NULL);
    json_t *config = barge_json_object(action, "ForwardConfig");
    json_t *given = barge_json_array(config, "TargetGroups");
    _cleanup_json_ json_t *groups = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(given, i, g)
    {
        const char *arn = barge_json_str(g, "TargetGroupArn", "");
        json_int_t weight = barge_json_int(g, "Weight", 1);
        if (weight < 0 || weight > 999) {
            invalid(err, "Weight '%lld' of target group '%s' must be from 0 to 999",
                    (long long)weight, arn);
            return NULL;
        }
        size_t j;
        json_t *h;
        json_array_foreach(groups, j, h)
        {
            if (barge_streq(barge_json_str(h, "TargetGroupArn", ""), arn)) {
                invalid(err, "Target group '%s' is given more than once in the forward action",
                        arn);
                return NULL;
            }
        }
        json_array_append_new(groups,
                              json_pack("{s:s, s:I}", "TargetGroupArn", arn, "Weight", weight));
    }
    if (json_array_size(groups) > 5) {
        invalid(err, "A forward action can have at most 5 target groups; %zu were given",
                json_array_size(groups));
        return NULL;
    }
    if (tg_arn && json_array_size(groups) &&
        (json_array_size(groups) > 1 ||
         !barge_streq(barge_json_str(json_array_get(groups, 0), "TargetGroupArn", ""), tg_arn))) {
        invalid(err, "TargetGroupArn '%s' and ForwardConfig must name the same target group",
                tg_arn);
        return NULL;
    }
    if (tg_arn && !json_array_size(groups))
        json_array_append_new(groups,
                              json_pack("{s:s, s:i}", "TargetGroupArn", tg_arn, "Weight", 1));
    if (!json_array_size(groups)) {
        invalid(err, "A target group ARN must be specified for the forward action");
        return NULL;
    }
    json_t *sticky = barge_json_object(config, "TargetGroupStickinessConfig");
    bool enabled = barge_json_bool(sticky, "Enabled", false);
    json_int_t duration = barge_json_int(sticky, "DurationSeconds", 3600);
    if (enabled && (duration < 1 || duration > 604800)) {
        invalid(err, "Target group stickiness duration '%lld' must be from 1 to 604800 seconds",
                (long long)duration);
        return NULL;
    }
    json_t *out =
        json_pack("{s:O, s:{s:b}}", "TargetGroups", groups, "Stickiness", "Enabled", enabled);
    if (enabled)
        json_object_set_new(json_object_get(out, "Stickiness"), "DurationSeconds",
                            json_integer(duration));
    return out;
}

/* The protocol a listener of proto speaks to its targets: HTTPS and TLS
 * listeners end TLS and forward plain HTTP and TCP. */
static const char *backend_protocol(const char *proto)
{
    if (barge_streq(proto, "HTTPS"))
        return "HTTP";
    if (barge_streq(proto, "TLS"))
        return "TCP";
    return proto;
}

static bool secure(const char *proto)
{
    return barge_streq(proto, "HTTPS") || barge_streq(proto, "TLS");
}

/* Checks that fwd's target groups exist and speak what a listener of proto
 * forwards. */
static int check_forward(struct barge_tx *tx, const json_t *fwd, const char *proto,
                         struct barge_error **err)
{
    size_t i;
    json_t *g;
    json_array_foreach(barge_json_array(fwd, "TargetGroups"), i, g)
    {
        _cleanup_json_ json_t *tg =
            barge_elb_load_tg(tx, barge_json_str(g, "TargetGroupArn", ""), err);
        if (!tg)
            return -1;
        if (!barge_streq(barge_json_str(tg, "Protocol", ""), backend_protocol(proto)))
            return typed(err, BARGE_ERR_INVALID, "IncompatibleProtocols",
                         "Listener protocol '%s' is not compatible with target group protocol "
                         "'%s'",
                         proto, barge_json_str(tg, "Protocol", ""));
    }
    return 0;
}

/* The wire form of the forward action fwd (from read_forward). */
static json_t *forward_action(const json_t *fwd)
{
    json_t *groups = barge_json_array(fwd, "TargetGroups");
    json_t *action =
        json_pack("{s:s, s:{s:O, s:O}}", "Type", "forward", "ForwardConfig", "TargetGroups", groups,
                  "TargetGroupStickinessConfig", json_object_get(fwd, "Stickiness"));
    if (json_array_size(groups) == 1)
        json_object_set(action, "TargetGroupArn",
                        json_object_get(json_array_get(groups, 0), "TargetGroupArn"));
    return json_pack("[o]", action);
}

/* Stores what fwd forwards to in the listener or rule doc. */
static void set_forward(json_t *doc, const json_t *fwd)
{
    json_t *groups = barge_json_array(fwd, "TargetGroups");
    json_object_set(doc, "_forward", groups);
    json_object_set(doc, "_stickiness", json_object_get(fwd, "Stickiness"));
    json_object_set(doc, "_tg", json_object_get(json_array_get(groups, 0), "TargetGroupArn"));
}

/* Whether text has only the #{...} placeholders of allowed (a text of
 * names, e.g. "host path port"), and no control character or space. */
static bool template_ok(const char *text, const char *allowed)
{
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
        if (strncmp(p, "#{", 2) != 0)
            continue;
        const char *end = strchr(p, '}');
        if (!end)
            return false;
        _cleanup_free_ char *name = barge_xasprintf("%.*s", (int)(end - p - 2), p + 2);
        const char *at = strstr(allowed, name);
        size_t n = strlen(name);
        if (!n || !at || (at != allowed && at[-1] != ' ') || (at[n] && at[n] != ' '))
            return false;
        p = end;
    }
    return true;
}

/* A RedirectConfig member field of config, text of min..128 characters with
 * only the placeholders allowed, or def when absent; NULL with err set. */
static const char *redirect_part(const json_t *config, const char *field, size_t min,
                                 const char *def, const char *allowed, struct barge_error **err)
{
    json_t *v = json_object_get(config, field);
    if (!v)
        return def;
    const char *text = json_string_value(v);
    if (!text || strlen(text) < min || strlen(text) > 128 || !template_ok(text, allowed)) {
        invalid(err,
                "RedirectConfig %s '%s' is not valid: %zu to 128 characters without spaces, "
                "with no placeholder other than %s",
                field, text ? text : "", min, allowed);
        return NULL;
    }
    return text;
}

/* The redirect action's config as {"Public": RedirectConfig with ELB's
 * defaults filled, "Spec": what the data plane takes (haproxy.h)}, or NULL
 * with err set. */
static json_t *read_redirect(const json_t *action, struct barge_error **err)
{
    json_t *c = barge_json_object(action, "RedirectConfig");
    if (!c) {
        invalid(err, "A redirect action needs a RedirectConfig");
        return NULL;
    }
    const char *code = barge_json_str(c, "StatusCode", "");
    if (!barge_streq(code, "HTTP_301") && !barge_streq(code, "HTTP_302")) {
        invalid(err, "RedirectConfig StatusCode '%s' must be 'HTTP_301' or 'HTTP_302'", code);
        return NULL;
    }
    const char *proto = barge_json_str(c, "Protocol", "#{protocol}");
    if (!barge_streq(proto, "HTTP") && !barge_streq(proto, "HTTPS") &&
        !barge_streq(proto, "#{protocol}")) {
        invalid(err, "RedirectConfig Protocol '%s' must be 'HTTP', 'HTTPS' or '#{protocol}'",
                proto);
        return NULL;
    }
    const char *port = barge_json_str(c, "Port", "#{port}");
    if (!barge_streq(port, "#{port}")) {
        char *end;
        long n = strtol(port, &end, 10);
        if (!isdigit((unsigned char)*port) || *end || n < 1 || n > 65535) {
            invalid(err, "RedirectConfig Port '%s' must be from 1 to 65535 or '#{port}'", port);
            return NULL;
        }
    }
    const char *host = redirect_part(c, "Host", 1, "#{host}", "host", err);
    const char *path = host ? redirect_part(c, "Path", 1, "/#{path}", "host path port", err) : NULL;
    const char *query =
        path ? redirect_part(c, "Query", 0, "#{query}", "protocol host port path query", err)
             : NULL;
    if (!query)
        return NULL;
    if (path[0] != '/') {
        invalid(err, "RedirectConfig Path '%s' must start with '/'", path);
        return NULL;
    }
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:i}}",
                     "Public", "Protocol", proto, "Port", port, "Host", host, "Path", path, "Query",
                     query, "StatusCode", code, "Spec", "protocol", proto, "port", port, "host",
                     host, "path", path, "query", query, "code",
                     barge_streq(code, "HTTP_301") ? 301 : 302);
}

/* The fixed-response action's config as {"Public", "Spec"} (see
 * read_redirect), or NULL with err set. */
static json_t *read_fixed(const json_t *action, struct barge_error **err)
{
    json_t *c = barge_json_object(action, "FixedResponseConfig");
    if (!c) {
        invalid(err, "A fixed-response action needs a FixedResponseConfig");
        return NULL;
    }
    const char *code = barge_json_str(c, "StatusCode", "");
    if (strlen(code) != 3 || !strchr("245", code[0]) || !isdigit((unsigned char)code[1]) ||
        !isdigit((unsigned char)code[2])) {
        invalid(err, "FixedResponseConfig StatusCode '%s' must be a 2XX, 4XX or 5XX code", code);
        return NULL;
    }
    static const char *const types[] = {"text/plain", "text/css", "text/html",
                                        "application/javascript", "application/json"};
    const char *type = barge_json_str(c, "ContentType", NULL);
    size_t i;
    for (i = 0; type && i < BARGE_ARRAY_SIZE(types); i++) {
        if (barge_streq(type, types[i]))
            break;
    }
    if (type && i == BARGE_ARRAY_SIZE(types)) {
        invalid(err,
                "FixedResponseConfig ContentType '%s' must be one of text/plain, text/css, "
                "text/html, application/javascript, application/json",
                type);
        return NULL;
    }
    json_t *body = json_object_get(c, "MessageBody");
    if (body && !json_is_string(body)) {
        invalid(err, "FixedResponseConfig MessageBody must be a string");
        return NULL;
    }
    const char *text = body ? json_string_value(body) : "";
    size_t chars = 0;
    for (const char *p = text; *p; p++)
        chars += ((unsigned char)*p & 0xc0) != 0x80;
    if (chars > 1024) {
        invalid(err, "FixedResponseConfig MessageBody has %zu characters; at most 1024 are allowed",
                chars);
        return NULL;
    }
    json_t *pub = json_pack("{s:s}", "StatusCode", code);
    json_t *spec = json_pack("{s:i, s:s}", "status", atoi(code), "body", text);
    if (type) {
        json_object_set_new(pub, "ContentType", json_string(type));
        json_object_set_new(spec, "content_type", json_string(type));
    }
    if (body)
        json_object_set_new(pub, "MessageBody", json_string(text));
    return json_pack("{s:o, s:o}", "Public", pub, "Spec", spec);
}

/* The actions of a listener or rule: one forward, redirect or
 * fixed-response action (barge has no authenticate-* actions to go before
 * it), as {"Type", "Order" (when given), "Forward" (read_forward) or
 * "Redirect"/"Fixed" (read_redirect, read_fixed)}; a new reference, or NULL
 * with err set. */
static json_t *read_actions(const json_t *actions, struct barge_error **err)
{
    if (!json_array_size(actions)) {
        invalid(err, "At least one action must be specified");
        return NULL;
    }
    size_t i;
    json_t *a;
    json_array_foreach((json_t *)actions, i, a)
    {
        const char *type = barge_json_str(a, "Type", "");
        if (barge_str_has_prefix(type, "authenticate-") || barge_streq(type, "jwt-validation")) {
            typed(err, BARGE_ERR_INVALID, "InvalidLoadBalancerAction",
                  "Action type '%s' is not supported by barge: it has no Cognito, OIDC or JWT "
                  "authentication; use 'forward', 'redirect' or 'fixed-response'",
                  type);
            return NULL;
        }
        if (!barge_streq(type, "forward") && !barge_streq(type, "redirect") &&
            !barge_streq(type, "fixed-response")) {
            invalid(err,
                    "Action type '%s' is not valid: use 'forward', 'redirect' or "
                    "'fixed-response'",
                    type);
            return NULL;
        }
        json_t *order = json_object_get(a, "Order");
        if (order && (!json_is_integer(order) || json_integer_value(order) < 1 ||
                      json_integer_value(order) > 50000)) {
            invalid(err, "Action Order '%lld' must be from 1 to 50000",
                    (long long)json_integer_value(order));
            return NULL;
        }
    }
    if (json_array_size(actions) > 1) {
        typed(err, BARGE_ERR_INVALID, "InvalidLoadBalancerAction",
              "A listener or rule takes exactly one forward, redirect or fixed-response action; "
              "%zu actions were given",
              json_array_size(actions));
        return NULL;
    }
    a = json_array_get(actions, 0);
    const char *type = barge_json_str(a, "Type", "");
    json_t *out = json_pack("{s:s}", "Type", type);
    if (json_object_get(a, "Order"))
        json_object_set(out, "Order", json_object_get(a, "Order"));
    json_t *config = barge_streq(type, "forward")    ? read_forward(a, err)
                     : barge_streq(type, "redirect") ? read_redirect(a, err)
                                                     : read_fixed(a, err);
    if (!config) {
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out,
                        barge_streq(type, "forward")    ? "Forward"
                        : barge_streq(type, "redirect") ? "Redirect"
                                                        : "Fixed",
                        config);
    return out;
}

/* Checks the actions acts (read_actions) for a listener of proto on port:
 * target groups that exist and speak the listener's protocol, redirects and
 * fixed responses on application load balancers only, and no redirect to
 * where the request came from. */
static int check_actions(struct barge_tx *tx, const json_t *acts, const char *proto,
                         json_int_t port, struct barge_error **err)
{
    json_t *fwd = json_object_get(acts, "Forward");
    if (fwd)
        return check_forward(tx, fwd, proto, err);
    if (!barge_streq(backend_protocol(proto), "HTTP"))
        return invalid(err,
                       "Action type '%s' is valid only for HTTP and HTTPS listeners; this "
                       "listener's protocol is '%s': use 'forward'",
                       barge_json_str(acts, "Type", ""), proto);
    json_t *r = barge_json_object(json_object_get(acts, "Redirect"), "Public");
    if (!r)
        return 0;
    const char *to = barge_json_str(r, "Protocol", "");
    if (barge_streq(proto, "HTTPS") && barge_streq(to, "HTTP"))
        return typed(err, BARGE_ERR_INVALID, "InvalidLoadBalancerAction",
                     "A redirect from HTTPS to HTTP is not allowed");
    const char *to_port = barge_json_str(r, "Port", "");
    if ((barge_streq(to, "#{protocol}") || barge_streq(to, proto)) &&
        (barge_streq(to_port, "#{port}") || atoll(to_port) == port) &&
        barge_streq(barge_json_str(r, "Host", ""), "#{host}") &&
        barge_streq(barge_json_str(r, "Path", ""), "/#{path}"))
        return typed(err, BARGE_ERR_INVALID, "InvalidLoadBalancerAction",
                     "The redirect would loop back to the listener: change at least one of "
                     "Protocol, Port, Host or Path");
    return 0;
}

/* Stores the actions acts (read_actions) in the listener or rule doc: their
 * wire form under field, and what the data plane reads ("_forward",
 * "_stickiness" and "_tg", or "_redirect", or "_fixed"). */
static void set_actions(json_t *doc, const char *field, const json_t *acts)
{
    json_object_del(doc, "_forward");
    json_object_del(doc, "_stickiness");
    json_object_del(doc, "_tg");
    json_object_del(doc, "_redirect");
    json_object_del(doc, "_fixed");
    json_t *fwd = json_object_get(acts, "Forward");
    json_t *wire;
    if (fwd) {
        wire = forward_action(fwd);
        set_forward(doc, fwd);
    } else {
        bool redirect = json_object_get(acts, "Redirect") != NULL;
        json_t *config = json_object_get(acts, redirect ? "Redirect" : "Fixed");
        wire = json_pack("[{s:s, s:O}]", "Type", redirect ? "redirect" : "fixed-response",
                         redirect ? "RedirectConfig" : "FixedResponseConfig",
                         json_object_get(config, "Public"));
        json_object_set(doc, redirect ? "_redirect" : "_fixed", json_object_get(config, "Spec"));
    }
    if (json_object_get(acts, "Order"))
        json_object_set(json_array_get(wire, 0), "Order", json_object_get(acts, "Order"));
    json_object_set_new(doc, field, wire);
}

/* Every region's load balancers listen on this host's one address: fails
 * when a listener of another region has port. */
static int check_port_elsewhere(struct barge_api_ctx *ctx, json_int_t port,
                                struct barge_error **err)
{
    _cleanup_json_ json_t *regions = NULL;
    if (barge_store_regions(ctx->srv->store, &regions, err) < 0)
        return -1;
    size_t i, j;
    json_t *r, *l;
    json_array_foreach(regions, i, r)
    {
        if (barge_streq(json_string_value(r), barge_server_region(ctx->srv)))
            continue;
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin_in(ctx->srv->store, json_string_value(r), false, &tx, err) < 0)
            return -1;
        _cleanup_json_ json_t *all = barge_elb_scan_all(tx, ELB_KIND_LISTENER, "", err);
        if (!all)
            return -1;
        json_array_foreach(all, j, l)
        {
            if (barge_json_int(l, "Port", 0) == port)
                return typed(err, BARGE_ERR_INVALID, "InvalidConfigurationRequest",
                             "Port %lld is already used by a listener of load balancer '%s'",
                             (long long)port, barge_json_str(l, "LoadBalancerArn", ""));
        }
    }
    return 0;
}

/* Checks that the ACM certificate arn exists in this region. */
static int check_certificate(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    _cleanup_json_ json_t *cert = NULL;
    int r = barge_acm_cert_get(tx, arn, &cert, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return typed(err, BARGE_ERR_NOT_FOUND, "CertificateNotFound", "Certificate '%s' not found",
                     arn);
    return 0;
}

/* Applies the Certificates and SslPolicy of in to the listener doc, whose
 * protocol is proto: HTTPS and TLS listeners need one default certificate
 * (kept when in names none on a listener that has one) and take ELB's
 * default policy; other listeners have neither. */
static int apply_tls(struct barge_tx *tx, const json_t *in, const char *proto, json_t *doc,
                     struct barge_error **err)
{
    json_t *certs = barge_json_array(in, "Certificates");
    const char *policy = barge_json_str(in, "SslPolicy", NULL);
    if (!secure(proto)) {
        if (json_array_size(certs) || policy)
            return invalid(err,
                           "Certificates and SslPolicy apply to HTTPS and TLS listeners "
                           "only; this listener's protocol is '%s'",
                           proto);
        json_object_del(doc, "Certificates");
        json_object_del(doc, "SslPolicy");
        json_object_del(doc, "_certs");
        return 0;
    }
    if (certs) {
        if (json_array_size(certs) != 1)
            return invalid(err,
                           "A %s listener takes exactly one default certificate; %zu were "
                           "given (add others with AddListenerCertificates)",
                           proto, json_array_size(certs));
        const char *arn = barge_json_str(json_array_get(certs, 0), "CertificateArn", "");
        if (!*arn)
            return invalid(err, "A certificate ARN must be specified for %s listeners", proto);
        if (check_certificate(tx, arn, err) < 0)
            return -1;
        json_object_set_new(doc, "Certificates", json_pack("[{s:s}]", "CertificateArn", arn));
    } else if (!json_array_size(barge_json_array(doc, "Certificates"))) {
        return typed(err, BARGE_ERR_INVALID, "CertificateNotFound",
                     "A certificate must be specified for %s listeners", proto);
    }
    if (policy && !barge_elb_ssl_policy(policy))
        return typed(err, BARGE_ERR_NOT_FOUND, "SSLPolicyNotFound", "SSL policy '%s' not found",
                     policy);
    if (policy || !barge_json_str(doc, "SslPolicy", NULL))
        json_object_set_new(doc, "SslPolicy",
                            json_string(policy ? policy : BARGE_ELB_DEFAULT_SSL_POLICY));
    return 0;
}

static int create_listener(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    if (check_tags(barge_json_array(in, "Tags"), err) < 0)
        return -1;
    const char *lb_arn = barge_json_str(in, "LoadBalancerArn", "");
    _cleanup_json_ json_t *acts = read_actions(barge_json_array(in, "DefaultActions"), err);
    if (!acts || check_port_elsewhere(ctx, barge_json_int(in, "Port", 0), err) < 0)
        return -1;

    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *lb = load_lb(tx, lb_arn, err);
    if (!lb)
        return -1;
    bool network = barge_streq(barge_json_str(lb, "Type", ""), "network");
    const char *proto = barge_json_str(in, "Protocol", network ? "TCP" : "HTTP");
    if (!json_object_get(in, "Port"))
        return invalid(err, "A listener port must be specified");
    json_int_t port = barge_json_int(in, "Port", 0);
    if (strcmp(backend_protocol(proto), network ? "TCP" : "HTTP") != 0)
        return invalid(err,
                       "Listener protocol '%s' is not supported by barge for %s load "
                       "balancers: use %s",
                       proto, network ? "network" : "application",
                       network ? "'TCP' or 'TLS'" : "'HTTP' or 'HTTPS'");
    if (check_actions(tx, acts, proto, port, err) < 0)
        return -1;
    /* Every load balancer listens on the same address, so a port is taken
     * by whichever listener has it. */
    _cleanup_json_ json_t *all = barge_elb_scan_all(tx, ELB_KIND_LISTENER, "", err);
    if (!all)
        return -1;
    size_t i;
    json_t *l;
    json_array_foreach(all, i, l)
    {
        if (barge_json_int(l, "Port", 0) != port)
            continue;
        if (barge_streq(barge_json_str(l, "LoadBalancerArn", ""), lb_arn))
            return typed(err, BARGE_ERR_EXISTS, "DuplicateListener",
                         "A listener already exists on port %lld of this load balancer",
                         (long long)port);
        return typed(err, BARGE_ERR_INVALID, "InvalidConfigurationRequest",
                     "Port %lld is already used by a listener of load balancer '%s'",
                     (long long)port, barge_json_str(l, "LoadBalancerArn", ""));
    }
    const char *lb_name = barge_json_str(lb, "LoadBalancerName", "");
    _cleanup_free_ char *lb_id = barge_elb_arn_part(lb_arn, "loadbalancer", 3);
    _cleanup_free_ char *id = new_id();
    _cleanup_free_ char *res =
        barge_xasprintf("listener/%s/%s/%s/%s", network ? "net" : "app", lb_name, lb_id, id);
    _cleanup_free_ char *arn = elb_arn(ctx, res);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:I, s:s, s:o}", "ListenerArn", arn, "LoadBalancerArn", lb_arn,
                  "Port", port, "Protocol", proto, "_tags", tags_of(in));
    set_actions(doc, "DefaultActions", acts);
    if (apply_tls(tx, in, proto, doc, err) < 0)
        return -1;
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", lb_name, id);
    if (save(&tx, ELB_KIND_LISTENER, key, doc, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:[o]}", "Listeners", public_doc(doc));
    return 0;
}

static int describe_listeners(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    json_t *arns = barge_json_array(in, "ListenerArns");
    const char *lb_arn = barge_json_str(in, "LoadBalancerArn", NULL);
    if (!lb_arn && !json_array_size(arns))
        return invalid(err, "You must specify either listener ARNs or a load balancer ARN");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *lb = lb_arn ? load_lb(tx, lb_arn, err) : NULL;
    if (lb_arn && !lb)
        return -1;
    _cleanup_json_ json_t *all =
        lb ? scan_under(tx, ELB_KIND_LISTENER, barge_json_str(lb, "LoadBalancerName", ""), err)
           : barge_elb_scan_all(tx, ELB_KIND_LISTENER, "", err);
    if (!all)
        return -1;
    return answer_listing(&listener_listing, in, all, out, err);
}

static int delete_listener(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    const char *arn = barge_json_str(in, "ListenerArn", "");
    _cleanup_free_ char *key = listener_key(arn);
    if (!key)
        return invalid(err, "'%s' is not a valid listener ARN", arn);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *doc = load_listener(tx, arn, err);
    if (!doc)
        return -1;
    if (delete_rules(tx, key, err) < 0 || barge_store_del(tx, ELB_KIND_LISTENER, key, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_object();
    return 0;
}

/* ---- targets ---- */

/* Reads the Targets of a Register/Deregister call against tg: each target's
 * Id and Port (the group's port by default), checked. */
static json_t *read_targets(const json_t *in, const json_t *tg, struct barge_error **err)
{
    json_t *list = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(in, "Targets"), i, t)
    {
        const char *id = barge_json_str(t, "Id", "");
        bool instance = barge_streq(barge_json_str(tg, "TargetType", ""), "instance");
        if (instance && !json_object_get(t, "Port") && !json_object_get(tg, "Port")) {
            invalid(err, "A port must be given for instance target '%s'", id);
            json_decref(list);
            return NULL;
        }
        struct in_addr a;
        if (!instance && inet_pton(AF_INET, id, &a) != 1) {
            invalid(err, "The IP address '%s' is not a valid IPv4 address", id);
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list,
                              json_pack("{s:s, s:I}", "Id", id, "Port",
                                        barge_json_int(t, "Port", barge_json_int(tg, "Port", 0))));
    }
    return list;
}

static int collect_ec2_id(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    if (!barge_streq(barge_json_str(doc, "status", ""), "INACTIVE"))
        json_array_append_new(ud, json_string(barge_json_str(doc, "ec2InstanceId", "")));
    return 0;
}

/* Instance targets must name registered container instances (their EC2
 * instance ids): the data plane sends their traffic to the instance's host. */
static int check_instances(struct barge_tx *tx, const json_t *targets, struct barge_error **err)
{
    _cleanup_json_ json_t *ids = json_array();
    if (barge_store_scan(tx, ECS_KIND_INSTANCE, "", NULL, false, 0, collect_ec2_id, ids, err) < 0)
        return -1;
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)targets, i, t)
    {
        if (!barge_json_has_string(ids, barge_json_str(t, "Id", "")))
            return typed(err, BARGE_ERR_INVALID, "InvalidTarget",
                         "The following targets are not valid instances: '%s' (barge knows "
                         "the EC2 instance ids of its ACTIVE container instances)",
                         barge_json_str(t, "Id", ""));
    }
    return 0;
}

static json_t *find_target(const json_t *targets, const json_t *t, size_t *at)
{
    size_t i;
    json_t *x;
    json_array_foreach((json_t *)targets, i, x)
    {
        if (barge_streq(barge_json_str(x, "Id", ""), barge_json_str(t, "Id", "")) &&
            barge_json_int(x, "Port", 0) == barge_json_int(t, "Port", 0)) {
            if (at)
                *at = i;
            return x;
        }
    }
    return NULL;
}

/* RegisterTargets (add) and DeregisterTargets. */
static int change_targets(struct barge_api_ctx *ctx, json_t *in, json_t **out, bool add,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *tg = begin_tg(ctx, in, true, &tx, err);
    if (!tg)
        return -1;
    _cleanup_json_ json_t *want = read_targets(in, tg, err);
    if (!want)
        return -1;
    if (add && barge_streq(barge_json_str(tg, "TargetType", ""), "instance") &&
        check_instances(tx, want, err) < 0)
        return -1;
    json_t *targets = barge_json_array(tg, "_targets");
    if (!targets) {
        targets = json_array();
        json_object_set_new(tg, "_targets", targets);
    }
    size_t i;
    json_t *t;
    json_array_foreach(want, i, t)
    {
        json_t *cur = find_target(targets, t, NULL);
        if (add) {
            if (cur) {
                /* Registering a draining target again puts it back. */
                json_object_set_new(cur, "State", json_string("registered"));
                continue;
            }
            if (json_array_size(targets) >= 1000)
                return typed(err, BARGE_ERR_LIMIT, "TooManyTargets",
                             "You have reached the maximum number of targets (1000) in target "
                             "group '%s'",
                             barge_json_str(tg, "TargetGroupName", ""));
            json_object_set_new(t, "State", json_string("registered"));
            json_object_set_new(t, "Since", json_real(barge_now()));
            json_array_append(targets, t);
        } else {
            if (!cur)
                return typed(err, BARGE_ERR_INVALID, "InvalidTarget",
                             "The target '%s' on port %lld is not registered in target group "
                             "'%s'",
                             barge_json_str(t, "Id", ""), (long long)barge_json_int(t, "Port", 0),
                             barge_json_str(tg, "TargetGroupName", ""));
            if (!barge_streq(barge_json_str(cur, "State", ""), "draining")) {
                json_object_set_new(cur, "State", json_string("draining"));
                json_object_set_new(cur, "Since", json_real(barge_now()));
            }
        }
    }
    if (save(&tx, ELB_KIND_TG, barge_json_str(tg, "TargetGroupName", ""), tg, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_object();
    return 0;
}

static int register_targets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    return change_targets(ctx, in, out, true, err);
}

static int deregister_targets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    return change_targets(ctx, in, out, false, err);
}

static int describe_target_health(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *tg = begin_tg(ctx, in, false, &tx, err);
    _cleanup_json_ json_t *lbs =
        tg ? barge_elb_scan_tg_load_balancers(tx, barge_json_str(in, "TargetGroupArn", ""), err)
           : NULL;
    if (!lbs)
        return -1;
    barge_store_abort(barge_steal(&tx));
    _cleanup_json_ json_t *asked = NULL;
    if (json_object_get(in, "Targets")) {
        asked = read_targets(in, tg, err);
        if (!asked)
            return -1;
    }
    _cleanup_json_ json_t *be = barge_elb_backend_stats(ctx->srv, tg, lbs, true);
    json_t *list = json_array();
    *out = json_pack("{s:o}", "TargetHealthDescriptions", list);
    json_t *targets = barge_json_array(tg, "_targets");
    const char *hc_port = barge_json_str(tg, "HealthCheckPort", "traffic-port");
    size_t i;
    json_t *t;
    json_array_foreach(asked ? asked : targets, i, t)
    {
        json_t *cur = find_target(targets, t, NULL);
        json_t *target = json_pack("{s:s, s:I}", "Id", barge_json_str(t, "Id", ""), "Port",
                                   barge_json_int(t, "Port", 0));
        _cleanup_free_ char *port_text =
            barge_xasprintf("%lld", (long long)barge_json_int(t, "Port", 0));
        json_t *h;
        if (!cur) {
            h = barge_elb_health("unavailable", "Target.NotRegistered", "Target is not registered");
        } else {
            _cleanup_free_ char *sname =
                barge_elb_server_name(barge_json_str(t, "Id", ""), barge_json_int(t, "Port", 0));
            h = barge_elb_target_health(tg, cur, json_array_size(lbs) > 0,
                                        json_object_get(be, sname));
        }
        json_array_append_new(list,
                              json_pack("{s:o, s:s, s:o}", "Target", target, "HealthCheckPort",
                                        strcmp(hc_port, "traffic-port") ? hc_port : port_text,
                                        "TargetHealth", h));
    }
    return 0;
}

/* ---- target group attributes ---- */

/* The attributes barge honours, with ELB's defaults. The values stay in the
 * target group's "_attributes" ({key: value string}). */
static const struct {
    const char *key;
    const char *value;
} tg_attribute_defaults[] = {
    {"deregistration_delay.timeout_seconds", "300"},
    {"stickiness.enabled", "false"},
};

static json_t *tg_attributes(const json_t *tg)
{
    json_t *list = json_array();
    json_t *mine = barge_json_object(tg, "_attributes");
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(tg_attribute_defaults); i++) {
        const char *key = tg_attribute_defaults[i].key;
        json_array_append_new(list,
                              json_pack("{s:s, s:s}", "Key", key, "Value",
                                        barge_json_str(mine, key, tg_attribute_defaults[i].value)));
    }
    return list;
}

/* Checks one Modify attribute; 0 when barge can honour it. */
static int check_tg_attribute(const char *key, const char *value, struct barge_error **err)
{
    if (barge_streq(key, "deregistration_delay.timeout_seconds")) {
        char *end;
        long n = strtol(value, &end, 10);
        if (!*value || *end || n < 0 || n > 3600)
            return invalid(err,
                           "Attribute 'deregistration_delay.timeout_seconds' value '%s' must be "
                           "an integer from 0 to 3600",
                           value);
        return 0;
    }
    if (barge_streq(key, "stickiness.enabled")) {
        if (!barge_streq(value, "false"))
            return invalid(err,
                           "Attribute 'stickiness.enabled' value '%s' is not supported by barge: "
                           "only 'false'",
                           value);
        return 0;
    }
    return invalid(err, "Target group attribute key '%s' is not recognized by barge", key);
}

static int describe_target_group_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                            struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *tg = begin_tg(ctx, in, false, &tx, err);
    if (!tg)
        return -1;
    *out = json_pack("{s:o}", "Attributes", tg_attributes(tg));
    return 0;
}

/* Keeps the Attributes (checked) of a Modify call in doc's "_attributes"
 * ({key: value}). */
static void keep_attributes(json_t *doc, const json_t *attrs)
{
    json_t *mine = barge_json_object(doc, "_attributes");
    if (!mine) {
        mine = json_object();
        json_object_set_new(doc, "_attributes", mine);
    }
    size_t i;
    json_t *a;
    json_array_foreach((json_t *)attrs, i, a)
    {
        json_object_set_new(mine, barge_json_str(a, "Key", ""),
                            json_string(barge_json_str(a, "Value", "")));
    }
}

static int modify_target_group_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                          struct barge_error **err)
{
    json_t *attrs = barge_json_array(in, "Attributes");
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (check_tg_attribute(barge_json_str(a, "Key", ""), barge_json_str(a, "Value", ""), err) <
            0)
            return -1;
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *tg = begin_tg(ctx, in, true, &tx, err);
    if (!tg)
        return -1;
    keep_attributes(tg, attrs);
    if (save(&tx, ELB_KIND_TG, barge_json_str(tg, "TargetGroupName", ""), tg, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:o}", "Attributes", tg_attributes(tg));
    return 0;
}

/* ---- rules ---- */

/* A condition's values: Values, or the field's own config. */
static json_t *condition_values(const json_t *c, const char *config)
{
    json_t *v = barge_json_array(c, "Values");
    if (json_array_size(v))
        return v;
    return barge_json_array(barge_json_object(c, config), "Values");
}

/* The condition fields barge knows, with the config that carries their
 * values; ELB allows the ones that are not repeatable once per rule. */
static const struct {
    const char *field, *config;
    bool repeatable, legacy_values;
} condition_fields[] = {
    {"path-pattern", "PathPatternConfig", false, true},
    {"host-header", "HostHeaderConfig", false, true},
    {"http-header", "HttpHeaderConfig", true, false},
    {"query-string", "QueryStringConfig", true, false},
    {"http-request-method", "HttpRequestMethodConfig", false, false},
    {"source-ip", "SourceIpConfig", false, false},
};

/* The wildcards in s; with escapes (query strings), a '*' or '?' after a
 * backslash is a literal one. */
static size_t count_wildcards(const char *s, bool escapes)
{
    size_t n = 0;
    for (; s && *s; s++) {
        if (escapes && s[0] == '\\' && (s[1] == '*' || s[1] == '?'))
            s++;
        else
            n += *s == '*' || *s == '?';
    }
    return n;
}

/* Whether s is 1-max visible ASCII characters (ELB matches no control
 * character). */
static bool visible_ascii(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= max;
    for (size_t k = 0; ok && k < n; k++)
        ok = s[k] >= 0x20 && s[k] < 0x7f;
    return ok;
}

/* An IPv4 or IPv6 address block in CIDR notation. */
static bool valid_cidr(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || (size_t)(slash - s) >= INET6_ADDRSTRLEN)
        return false;
    char addr[INET6_ADDRSTRLEN];
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    unsigned char buf[16];
    int max;
    if (inet_pton(AF_INET, addr, buf) == 1)
        max = 32;
    else if (inet_pton(AF_INET6, addr, buf) == 1)
        max = 128;
    else
        return false;
    const char *p = slash + 1;
    if (!isdigit((unsigned char)*p) || strlen(p) > 3)
        return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    return atoi(p) <= max;
}

/* Checks one value of a path-pattern, host-header, http-header,
 * http-request-method or source-ip condition. */
static int check_condition_value(const char *field, const json_t *v, struct barge_error **err)
{
    const char *text = json_string_value(v);
    const char *shown = text ? text : "";
    if (!strcmp(field, "path-pattern") || !strcmp(field, "host-header")) {
        bool path = field[0] == 'p';
        size_t n = text ? strlen(text) : 0;
        bool ok = n >= 1 && n <= 128 && (!path || text[0] == '/' || text[0] == '*');
        for (size_t k = 0; ok && k < n; k++)
            ok = isalnum((unsigned char)text[k]) || strchr(path ? "_-.$/~@:+&*?" : "-.*?", text[k]);
        if (!ok)
            return invalid(err, "Condition value '%s' is not a valid %s", shown,
                           path ? "path pattern (1-128 characters among A-Z a-z 0-9 _ - . $ / ~ "
                                  "@ : + & * ?, starting with '/')"
                                : "host name pattern (1-128 characters among A-Z a-z 0-9 - . * ?)");
    } else if (!strcmp(field, "http-header")) {
        if (!visible_ascii(text, 128))
            return invalid(err,
                           "Condition value '%s' is not a valid HTTP header value (1-128 visible "
                           "ASCII characters)",
                           shown);
    } else if (!strcmp(field, "http-request-method")) {
        size_t n = text ? strlen(text) : 0;
        bool ok = n >= 1 && n <= 40;
        for (size_t k = 0; ok && k < n; k++)
            ok = (text[k] >= 'A' && text[k] <= 'Z') || text[k] == '_' || text[k] == '-';
        if (!ok)
            return invalid(err,
                           "Condition value '%s' is not a valid HTTP request method (1-40 "
                           "characters among A-Z _ -)",
                           shown);
    } else if (!text || !valid_cidr(text)) {
        return invalid(err, "Condition value '%s' is not a valid IP address block in CIDR notation",
                       shown);
    }
    return 0;
}

/* An HTTP header name: an RFC 9110 token of at most 40 characters. */
static bool valid_header_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= 40;
    for (size_t k = 0; ok && k < n; k++)
        ok = isalnum((unsigned char)s[k]) || strchr("!#$%&'*+-.^_`|~", s[k]);
    return ok;
}

/* Checks a query-string condition's {Key?, Value} pairs; *values and
 * *wildcards count what they add to the rule's limits. Returns its config. */
static json_t *read_query_pairs(const json_t *pairs, size_t *wildcards, struct barge_error **err)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach((json_t *)pairs, i, p)
    {
        json_t *key = json_object_get(p, "Key");
        const char *value = barge_json_str(p, "Value", NULL);
        if (!visible_ascii(value, 128) || strchr(value, '&') ||
            (key && (!visible_ascii(json_string_value(key), 128) ||
                     strpbrk(json_string_value(key), "&=")))) {
            invalid(err,
                    "Query string condition pair '%s=%s' is not valid: a Value and an optional "
                    "Key of 1-128 visible ASCII characters, without '&' (nor '=' in the key)",
                    key ? barge_json_str(p, "Key", "") : "", value ? value : "");
            json_decref(out);
            return NULL;
        }
        *wildcards += count_wildcards(value, true) +
                      (key ? count_wildcards(json_string_value(key), true) : 0);
        json_array_append_new(out, key ? json_pack("{s:O, s:s}", "Key", key, "Value", value)
                                       : json_pack("{s:s}", "Value", value));
    }
    return out;
}

/* Checks the conditions and returns them in the form ELB answers with. As
 * ELB: each field but http-header and query-string at most once, 1-3 values
 * per condition, at most 5 values and 5 wildcards in all. */
static json_t *read_conditions(const json_t *in, struct barge_error **err)
{
    json_t *out = json_array();
    bool seen[BARGE_ARRAY_SIZE(condition_fields)] = {false};
    size_t values_total = 0, wildcards = 0;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(in, "Conditions"), i, c)
    {
        const char *field = barge_json_str(c, "Field", "");
        size_t f;
        for (f = 0; f < BARGE_ARRAY_SIZE(condition_fields); f++)
            if (!strcmp(field, condition_fields[f].field))
                break;
        if (f == BARGE_ARRAY_SIZE(condition_fields)) {
            invalid(err,
                    "Condition field '%s' is not valid: use 'path-pattern', 'host-header', "
                    "'http-header', 'query-string', 'http-request-method' or 'source-ip'",
                    field);
            goto fail;
        }
        if (seen[f] && !condition_fields[f].repeatable) {
            invalid(err, "Condition field '%s' can be given only once per rule", field);
            goto fail;
        }
        seen[f] = true;
        const char *config = condition_fields[f].config;
        if (json_array_size(barge_json_array(c, "RegexValues")) ||
            json_array_size(barge_json_array(barge_json_object(c, config), "RegexValues"))) {
            invalid(err, "Condition field '%s': RegexValues are not supported by barge", field);
            goto fail;
        }
        json_t *values = condition_values(c, config);
        if (!condition_fields[f].legacy_values && json_array_size(barge_json_array(c, "Values"))) {
            invalid(err, "Condition field '%s' takes its values in %s, not in Values", field,
                    config);
            goto fail;
        }
        if (!json_array_size(values) || json_array_size(values) > 3) {
            invalid(err, "Condition field '%s' needs between 1 and 3 values", field);
            goto fail;
        }
        values_total += json_array_size(values);
        if (values_total > 5) {
            invalid(err, "A rule can have at most 5 condition values in all; '%s' brings it to %zu",
                    field, values_total);
            goto fail;
        }
        json_t *cond;
        if (!strcmp(field, "query-string")) {
            json_t *pairs = read_query_pairs(values, &wildcards, err);
            if (!pairs)
                goto fail;
            cond = json_pack("{s:s, s:{s:o}}", "Field", field, config, "Values", pairs);
        } else {
            size_t j;
            json_t *v;
            json_array_foreach(values, j, v)
            {
                if (check_condition_value(field, v, err) < 0)
                    goto fail;
                if (strcmp(field, "http-request-method") != 0 && strcmp(field, "source-ip") != 0)
                    wildcards += count_wildcards(json_string_value(v), false);
            }
            if (condition_fields[f].legacy_values) {
                cond = json_pack("{s:s, s:O, s:{s:O}}", "Field", field, "Values", values, config,
                                 "Values", values);
            } else if (!strcmp(field, "http-header")) {
                const char *name =
                    barge_json_str(barge_json_object(c, config), "HttpHeaderName", NULL);
                if (!valid_header_name(name)) {
                    invalid(err,
                            "HttpHeaderName '%s' is not a valid HTTP header name (1-40 token "
                            "characters)",
                            name ? name : "");
                    goto fail;
                }
                cond = json_pack("{s:s, s:{s:s, s:O}}", "Field", field, config, "HttpHeaderName",
                                 name, "Values", values);
            } else {
                cond = json_pack("{s:s, s:{s:O}}", "Field", field, config, "Values", values);
            }
        }
        if (wildcards > 5) {
            json_decref(cond);
            invalid(err,
                    "A rule can have at most 5 wildcards in its condition values; '%s' "
                    "brings it to %zu",
                    field, wildcards);
            goto fail;
        }
        json_array_append_new(out, cond);
    }
    if (!json_array_size(out)) {
        invalid(err, "A rule needs at least one condition");
        goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static int create_rule(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    if (check_tags(barge_json_array(in, "Tags"), err) < 0)
        return -1;
    const char *listener_arn = barge_json_str(in, "ListenerArn", "");
    json_int_t priority = barge_json_int(in, "Priority", 0);
    _cleanup_json_ json_t *acts = read_actions(barge_json_array(in, "Actions"), err);
    if (!acts)
        return -1;
    _cleanup_json_ json_t *conditions = read_conditions(in, err);
    if (!conditions)
        return -1;
    _cleanup_free_ char *lkey = listener_key(listener_arn);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *listener = load_listener(tx, listener_arn, err);
    if (!listener)
        return -1;
    if (!barge_streq(backend_protocol(barge_json_str(listener, "Protocol", "")), "HTTP"))
        return invalid(err, "Rules with conditions need an HTTP listener; '%s' is %s", listener_arn,
                       barge_json_str(listener, "Protocol", ""));
    if (check_actions(tx, acts, barge_json_str(listener, "Protocol", ""),
                      barge_json_int(listener, "Port", 0), err) < 0)
        return -1;
    _cleanup_json_ json_t *rules = scan_under(tx, ELB_KIND_RULE, lkey, err);
    if (!rules)
        return -1;
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (barge_json_int(r, "_priority", 0) == priority)
            return typed(err, BARGE_ERR_CONFLICT, "PriorityInUse",
                         "Priority '%lld' is currently in use", (long long)priority);
    }
    if (json_array_size(rules) >= 100)
        return typed(err, BARGE_ERR_LIMIT, "TooManyRules", "A listener can have at most 100 rules");
    _cleanup_free_ char *lb_name = barge_elb_arn_part(listener_arn, "listener", 2);
    _cleanup_free_ char *lb_id = barge_elb_arn_part(listener_arn, "listener", 3);
    _cleanup_free_ char *lid = barge_elb_arn_part(listener_arn, "listener", 4);
    _cleanup_free_ char *id = new_id();
    _cleanup_free_ char *res =
        barge_xasprintf("listener-rule/app/%s/%s/%s/%s", lb_name, lb_id, lid, id);
    _cleanup_free_ char *arn = elb_arn(ctx, res);
    _cleanup_free_ char *prio = barge_xasprintf("%lld", (long long)priority);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:O, s:b, s:I, s:s, s:s, s:o}", "RuleArn", arn, "Priority", prio,
                  "Conditions", conditions, "IsDefault", 0, "_priority", priority, "_lb",
                  barge_json_str(listener, "LoadBalancerArn", ""), "_listener", listener_arn,
                  "_tags", tags_of(in));
    set_actions(doc, "Actions", acts);
    _cleanup_free_ char *key = barge_xasprintf("%s/%s", lkey, id);
    if (save(&tx, ELB_KIND_RULE, key, doc, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:[o]}", "Rules", public_doc(doc));
    return 0;
}

/* The listener behind a default rule's ARN ("listener-rule/.../default"),
 * which the caller owns, or NULL. */
static char *default_rule_listener(const char *rule_arn)
{
    const char *tail = strstr(rule_arn, ":listener-rule/");
    if (!tail || !barge_str_has_suffix(rule_arn, "/default"))
        return NULL;
    const char *rest = tail + strlen(":listener-rule/");
    return barge_xasprintf("%.*s:listener/%.*s", (int)(tail - rule_arn), rule_arn,
                           (int)(strlen(rest) - strlen("/default")), rest);
}

/* Points the forward action of the rule (or listener, for a default rule)
 * doc, kept in its actions_field, at the one target group tg_arn: 1 when
 * that changed the document, 0 when it forwarded only there already. The
 * load balancer step applies it. */
static int point_forward(json_t *doc, const char *actions_field, const char *tg_arn)
{
    json_t *groups = barge_json_array(doc, "_forward");
    if (json_array_size(groups) == 1 &&
        barge_streq(barge_json_str(json_array_get(groups, 0), "TargetGroupArn", ""), tg_arn))
        return 0;
    _cleanup_json_ json_t *fwd =
        json_pack("{s:[{s:s, s:i}], s:{s:b}}", "TargetGroups", "TargetGroupArn", tg_arn, "Weight",
                  1, "Stickiness", "Enabled", 0);
    _cleanup_json_ json_t *acts = json_pack("{s:s, s:O}", "Type", "forward", "Forward", fwd);
    set_actions(doc, actions_field, acts);
    return 1;
}

/* The stored document that holds the rule rule_arn's actions (the caller
 * owns it): the rule's, or its listener's for a default rule; *key (the
 * caller's) and *kind say where it is stored. NULL with err set. */
static json_t *load_rule_doc(struct barge_tx *tx, const char *rule_arn, char **key,
                             const char **kind, struct barge_error **err)
{
    _cleanup_free_ char *larn = default_rule_listener(rule_arn);
    *kind = larn ? ELB_KIND_LISTENER : ELB_KIND_RULE;
    *key = larn ? listener_key(larn) : rule_key(rule_arn);
    return larn ? load_listener(tx, larn, err)
                : barge_elb_load_keyed(tx, ELB_KIND_RULE, *key, "RuleArn", rule_arn, "RuleNotFound",
                                       "Rule", err);
}

static const char *actions_field(const char *kind)
{
    return strcmp(kind, ELB_KIND_LISTENER) == 0 ? "DefaultActions" : "Actions";
}

int barge_elb_rule_forward(struct barge_tx *tx, const char *rule_arn, const char *tg_arn,
                           struct barge_error **err)
{
    _cleanup_free_ char *key = NULL;
    const char *kind;
    _cleanup_json_ json_t *doc = load_rule_doc(tx, rule_arn, &key, &kind, err);
    if (!doc)
        return -1;
    int changed = point_forward(doc, actions_field(kind), tg_arn);
    if (changed && barge_store_put(tx, kind, key, doc, err) < 0)
        return -1;
    return changed;
}

int barge_elb_rule_check(struct barge_tx *tx, const char *rule_arn, struct barge_error **err)
{
    _cleanup_free_ char *key = NULL;
    const char *kind;
    _cleanup_json_ json_t *doc = load_rule_doc(tx, rule_arn, &key, &kind, err);
    return doc ? 0 : -1;
}

/* Sets the actions that ModifyRule or ModifyListener gives, checked
 * against the listener's protocol and port, in the rule or listener doc's
 * actions_field. */
static int modify_actions(struct barge_tx *tx, json_t *doc, const char *actions_field,
                          const json_t *actions, const char *proto, json_int_t port,
                          struct barge_error **err)
{
    _cleanup_json_ json_t *acts = read_actions(actions, err);
    if (!acts || check_actions(tx, acts, proto, port, err) < 0)
        return -1;
    set_actions(doc, actions_field, acts);
    return 0;
}

/* ModifyRule: new actions and/or conditions for a rule; the default rule's
 * actions are its listener's default actions. */
static int modify_rule(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    const char *arn = barge_json_str(in, "RuleArn", "");
    json_t *actions = barge_json_array(in, "Actions");
    _cleanup_free_ char *larn = default_rule_listener(arn);
    _cleanup_json_ json_t *conditions = NULL;
    if (json_object_get(in, "Conditions")) {
        if (larn)
            return typed(err, BARGE_ERR_CONFLICT, "OperationNotPermitted",
                         "The conditions of default rule '%s' cannot be modified", arn);
        conditions = read_conditions(in, err);
        if (!conditions)
            return -1;
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_free_ char *key = NULL;
    const char *kind;
    _cleanup_json_ json_t *doc = load_rule_doc(tx, arn, &key, &kind, err);
    if (!doc)
        return -1;
    /* A rule's actions are checked against its listener's protocol and
     * port. */
    _cleanup_json_ json_t *listener =
        larn ? json_incref(doc) : load_listener(tx, barge_json_str(doc, "_listener", ""), err);
    if (!listener)
        return -1;
    if (actions && modify_actions(tx, doc, actions_field(kind), actions,
                                  barge_json_str(listener, "Protocol", "HTTP"),
                                  barge_json_int(listener, "Port", 0), err) < 0)
        return -1;
    if (conditions)
        json_object_set(doc, "Conditions", conditions);
    if (save(&tx, kind, key, doc, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    json_t *rule = larn ? json_pack("{s:s, s:s, s:[], s:O, s:b}", "RuleArn", arn, "Priority",
                                    "default", "Conditions", "Actions",
                                    json_object_get(doc, "DefaultActions"), "IsDefault", 1)
                        : public_doc(doc);
    *out = json_pack("{s:[o]}", "Rules", rule);
    return 0;
}

/* Checks the redirects of the rules of the listener doc (stored under key)
 * again for its new protocol proto. */
static int check_rule_redirects(struct barge_tx *tx, const char *key, const char *proto,
                                const json_t *doc, struct barge_error **err)
{
    _cleanup_json_ json_t *rules = scan_under(tx, ELB_KIND_RULE, key, err);
    if (!rules)
        return -1;
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (!json_object_get(r, "_redirect"))
            continue;
        _cleanup_json_ json_t *acts = read_actions(barge_json_array(r, "Actions"), err);
        if (!acts || check_actions(tx, acts, proto, barge_json_int(doc, "Port", 0), err) < 0)
            return barge_error_wrap(err, "rule '%s'", barge_json_str(r, "RuleArn", ""));
    }
    return 0;
}

/* ModifyListener: barge's listeners change their default actions, their
 * certificate and security policy, and their protocol between HTTP and HTTPS
 * or TCP and TLS; a new port is refused rather than ignored. */
static int modify_listener(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    const char *arn = barge_json_str(in, "ListenerArn", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *doc = load_listener(tx, arn, err);
    if (!doc)
        return -1;
    if (json_object_get(in, "Port") &&
        barge_json_int(in, "Port", 0) != barge_json_int(doc, "Port", 0))
        return invalid(err,
                       "barge cannot change the port of listener '%s' (%lld); create a new "
                       "listener instead",
                       arn, (long long)barge_json_int(doc, "Port", 0));
    _cleanup_free_ char *old = barge_xstrdup(barge_json_str(doc, "Protocol", "HTTP"));
    const char *proto = barge_json_str(in, "Protocol", old);
    if (!barge_streq(backend_protocol(proto), backend_protocol(old)))
        return invalid(err,
                       "barge cannot change the protocol of listener '%s' from '%s' to '%s'; "
                       "only between HTTP and HTTPS, or TCP and TLS",
                       arn, old, proto);
    json_object_set_new(doc, "Protocol", json_string(proto));
    if (apply_tls(tx, in, proto, doc, err) < 0)
        return -1;
    /* A new protocol can turn the actions kept into a loop (a redirect to
     * HTTPS on an HTTPS listener): they are checked again. */
    _cleanup_json_ json_t *actions = json_deep_copy(barge_json_array(in, "DefaultActions"));
    if (!actions && !barge_streq(proto, old))
        actions = json_deep_copy(barge_json_array(doc, "DefaultActions"));
    if (actions && modify_actions(tx, doc, "DefaultActions", actions, proto,
                                  barge_json_int(doc, "Port", 0), err) < 0)
        return -1;
    _cleanup_free_ char *key = listener_key(arn);
    if (!barge_streq(proto, old) && check_rule_redirects(tx, key, proto, doc, err) < 0)
        return -1;
    if (save(&tx, ELB_KIND_LISTENER, key, doc, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:[o]}", "Listeners", public_doc(doc));
    return 0;
}

/* ---- listener certificates ---- */

#define MAX_LISTENER_CERTS 25

/* The listener of in's ListenerArn for a change of its certificates, which
 * only HTTPS and TLS listeners have; *key is its store key. */
static json_t *begin_secure_listener(struct barge_api_ctx *ctx, const json_t *in, bool write,
                                     struct barge_tx **tx, char **key, struct barge_error **err)
{
    const char *arn = barge_json_str(in, "ListenerArn", "");
    if (barge_store_begin(ctx->srv->store, write, tx, err) < 0)
        return NULL;
    json_t *doc = load_listener(*tx, arn, err);
    if (doc && !secure(barge_json_str(doc, "Protocol", ""))) {
        invalid(err,
                "Listener '%s' uses protocol '%s'; only HTTPS and TLS listeners have "
                "certificates",
                arn, barge_json_str(doc, "Protocol", ""));
        json_decref(doc);
        return NULL;
    }
    *key = listener_key(arn);
    return doc;
}

static json_t *listener_certificates(const json_t *doc, bool with_default)
{
    json_t *list = json_array();
    if (with_default)
        json_array_append_new(
            list, json_pack("{s:s, s:b}", "CertificateArn",
                            barge_json_str(json_array_get(barge_json_array(doc, "Certificates"), 0),
                                           "CertificateArn", ""),
                            "IsDefault", 1));
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(doc, "_certs"), i, c)
        json_array_append_new(list, json_pack("{s:O, s:b}", "CertificateArn", c, "IsDefault", 0));
    return list;
}

static int change_listener_certificates(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                        bool add, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *key = NULL;
    _cleanup_json_ json_t *doc = begin_secure_listener(ctx, in, true, &tx, &key, err);
    if (!doc)
        return -1;
    json_t *extra = barge_json_array(doc, "_certs");
    if (!extra)
        json_object_set_new(doc, "_certs", extra = json_array());
    const char *def = barge_json_str(json_array_get(barge_json_array(doc, "Certificates"), 0),
                                     "CertificateArn", "");
    _cleanup_json_ json_t *changed = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(in, "Certificates"), i, c)
    {
        const char *arn = barge_json_str(c, "CertificateArn", "");
        if (!add && barge_streq(arn, def))
            return typed(err, BARGE_ERR_CONFLICT, "OperationNotPermitted",
                         "Certificate '%s' is the listener's default certificate; change it with "
                         "ModifyListener",
                         arn);
        if (add && check_certificate(tx, arn, err) < 0)
            return -1;
        bool have = barge_json_has_string(extra, arn) || barge_streq(arn, def);
        if (add && !have)
            json_array_append_new(extra, json_string(arn));
        for (size_t j = 0; !add && j < json_array_size(extra); j++) {
            if (barge_streq(json_string_value(json_array_get(extra, j)), arn)) {
                json_array_remove(extra, j);
                break;
            }
        }
        json_array_append_new(changed, json_pack("{s:s, s:b}", "CertificateArn", arn, "IsDefault",
                                                 barge_streq(arn, def)));
    }
    if (json_array_size(extra) + 1 > MAX_LISTENER_CERTS)
        return typed(err, BARGE_ERR_LIMIT, "TooManyCertificates",
                     "A listener can have at most %d certificates", MAX_LISTENER_CERTS);
    if (save(&tx, ELB_KIND_LISTENER, key, doc, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = add ? json_pack("{s:O}", "Certificates", changed) : json_object();
    return 0;
}

static int add_listener_certificates(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                     struct barge_error **err)
{
    return change_listener_certificates(ctx, in, out, true, err);
}

static int remove_listener_certificates(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                        struct barge_error **err)
{
    return change_listener_certificates(ctx, in, out, false, err);
}

static int describe_listener_certificates(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *key = NULL;
    _cleanup_json_ json_t *doc = begin_secure_listener(ctx, in, false, &tx, &key, err);
    if (!doc)
        return -1;
    *out = json_pack("{s:o}", "Certificates", listener_certificates(doc, true));
    return 0;
}

/* ---- listener attributes ---- */

/* The listener attributes barge applies, by the listeners they are for
 * ('t': TCP and TLS, 'h': HTTP and HTTPS), with ELB's defaults and domains
 * (as lb_attribute_defaults). The *.header_value ones add that header to
 * every response (nothing when empty). */
static const struct {
    char which;
    const char *key;
    const char *value;
    const char *domain;
} listener_attribute_defaults[] = {
    {'t', "tcp.idle_timeout.seconds", "350", "int:60:6000"},
    {'h', "routing.http.response.server.enabled", "true", "bool"},
    {'h', "routing.http.response.strict_transport_security.header_value", "", NULL},
    {'h', "routing.http.response.access_control_allow_origin.header_value", "", NULL},
    {'h', "routing.http.response.access_control_allow_methods.header_value", "", NULL},
    {'h', "routing.http.response.access_control_allow_headers.header_value", "", NULL},
    {'h', "routing.http.response.access_control_allow_credentials.header_value", "", NULL},
    {'h', "routing.http.response.access_control_expose_headers.header_value", "", NULL},
    {'h', "routing.http.response.access_control_max_age.header_value", "", NULL},
    {'h', "routing.http.response.content_security_policy.header_value", "", NULL},
    {'h', "routing.http.response.x_content_type_options.header_value", "", NULL},
    {'h', "routing.http.response.x_frame_options.header_value", "", NULL},
};

static bool in_domain(const char *domain, const char *value);

static char listener_class(const json_t *doc)
{
    return barge_streq(backend_protocol(barge_json_str(doc, "Protocol", "")), "TCP") ? 't' : 'h';
}

static json_t *listener_attributes(const json_t *doc)
{
    json_t *list = json_array();
    json_t *mine = barge_json_object(doc, "_attributes");
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(listener_attribute_defaults); i++) {
        if (listener_attribute_defaults[i].which != listener_class(doc))
            continue;
        const char *key = listener_attribute_defaults[i].key;
        json_array_append_new(
            list, json_pack("{s:s, s:s}", "Key", key, "Value",
                            barge_json_str(mine, key, listener_attribute_defaults[i].value)));
    }
    return list;
}

static int check_listener_attribute(const json_t *doc, const char *key, const char *value,
                                    struct barge_error **err)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(listener_attribute_defaults); i++) {
        if (!barge_streq(listener_attribute_defaults[i].key, key))
            continue;
        if (listener_attribute_defaults[i].which != listener_class(doc))
            return invalid(err, "Listener attribute key '%s' is not valid for %s listeners", key,
                           barge_json_str(doc, "Protocol", ""));
        const char *domain = listener_attribute_defaults[i].domain;
        if (!in_domain(domain, value))
            return invalid(err, "Listener attribute '%s' value '%s' is not valid%s%s", key, value,
                           domain ? ": use " : "", domain ? domain : "");
        /* A header value goes into HAProxy's configuration in double quotes. */
        for (const char *c = value; !domain && *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '"' || *c == '\\')
                return invalid(err,
                               "Listener attribute '%s' value '%s' may not hold control "
                               "characters, '\"' or '\\'",
                               key, value);
        return 0;
    }
    if (barge_str_has_prefix(key, "routing.http.request.x_amzn_"))
        return invalid(err,
                       "Listener attribute key '%s' is not supported by barge: its listeners "
                       "do no mutual TLS and add no TLS headers",
                       key);
    return invalid(err, "Listener attribute key '%s' is not recognized", key);
}

static int describe_listener_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                        struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *doc = load_listener(tx, barge_json_str(in, "ListenerArn", ""), err);
    if (!doc)
        return -1;
    *out = json_pack("{s:o}", "Attributes", listener_attributes(doc));
    return 0;
}

static int modify_listener_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                      struct barge_error **err)
{
    const char *arn = barge_json_str(in, "ListenerArn", "");
    json_t *attrs = barge_json_array(in, "Attributes");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *doc = load_listener(tx, arn, err);
    if (!doc)
        return -1;
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (check_listener_attribute(doc, barge_json_str(a, "Key", ""),
                                     barge_json_str(a, "Value", ""), err) < 0)
            return -1;
    }
    keep_attributes(doc, attrs);
    _cleanup_free_ char *key = listener_key(arn);
    if (save(&tx, ELB_KIND_LISTENER, key, doc, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:o}", "Attributes", listener_attributes(doc));
    return 0;
}

static int by_priority(const void *a, const void *b)
{
    json_int_t x = barge_json_int(*(json_t *const *)a, "_priority", 0);
    json_int_t y = barge_json_int(*(json_t *const *)b, "_priority", 0);
    return x < y ? -1 : x > y;
}

/* The listener's rules by priority, then its default rule. */
static json_t *listener_rules(struct barge_tx *tx, const json_t *listener, struct barge_error **err)
{
    const char *larn = barge_json_str(listener, "ListenerArn", "");
    _cleanup_free_ char *lkey = listener_key(larn);
    json_t *rules = scan_under(tx, ELB_KIND_RULE, lkey ? lkey : "", err);
    if (!rules)
        return NULL;
    size_t n = json_array_size(rules);
    json_t **items = barge_xcalloc(n ? n : 1, sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(rules, i));
    qsort(items, n, sizeof(*items), by_priority);
    json_array_clear(rules);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(rules, items[i]);
    free(items);
    /* The default rule's ARN: the listener's, as a rule named "default". */
    const char *tail = strstr(larn, ":listener/");
    _cleanup_free_ char *default_arn =
        tail ? barge_xasprintf("%.*s:listener-rule/%s/default", (int)(tail - larn), larn,
                               tail + strlen(":listener/"))
             : barge_xstrdup(larn);
    json_array_append_new(rules,
                          json_pack("{s:s, s:s, s:[], s:O, s:b}", "RuleArn", default_arn,
                                    "Priority", "default", "Conditions", "Actions",
                                    json_object_get(listener, "DefaultActions"), "IsDefault", 1));
    return rules;
}

static int describe_rules(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *larn = barge_json_str(in, "ListenerArn", NULL);
    json_t *arns = barge_json_array(in, "RuleArns");
    if (!larn && !json_array_size(arns))
        return invalid(err, "You must specify either listener ARNs or rule ARNs");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *listeners = NULL;
    if (larn) {
        json_t *l = load_listener(tx, larn, err);
        if (!l)
            return -1;
        listeners = json_pack("[o]", l);
    } else {
        listeners = barge_elb_scan_all(tx, ELB_KIND_LISTENER, "", err);
        if (!listeners)
            return -1;
    }
    _cleanup_json_ json_t *all = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(listeners, i, l)
    {
        _cleanup_json_ json_t *rules = listener_rules(tx, l, err);
        if (!rules)
            return -1;
        json_array_extend(all, rules);
    }
    return answer_listing(&rule_listing, in, all, out, err);
}

static int delete_rule(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    const char *arn = barge_json_str(in, "RuleArn", "");
    if (barge_str_has_suffix(arn, "/default"))
        return typed(err, BARGE_ERR_CONFLICT, "OperationNotPermitted",
                     "Default rule '%s' cannot be deleted", arn);
    _cleanup_free_ char *key = rule_key(arn);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *doc =
        barge_elb_load_keyed(tx, ELB_KIND_RULE, key, "RuleArn", arn, "RuleNotFound", "Rule", err);
    if (!doc)
        return -1;
    if (barge_store_del(tx, ELB_KIND_RULE, key, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_object();
    return 0;
}

static int set_rule_priorities(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    json_t *asked = barge_json_array(in, "RulePriorities");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *changed = json_array(); /* [[key, doc]] */
    size_t i;
    json_t *p;
    json_array_foreach(asked, i, p)
    {
        const char *arn = barge_json_str(p, "RuleArn", "");
        json_int_t priority = barge_json_int(p, "Priority", 0);
        if (barge_str_has_suffix(arn, "/default"))
            return typed(err, BARGE_ERR_CONFLICT, "OperationNotPermitted",
                         "The priority of default rule '%s' cannot be changed", arn);
        if (priority < 1 || priority > 50000)
            return invalid(err, "Priority '%lld' of rule '%s' must be from 1 to 50000",
                           (long long)priority, arn);
        _cleanup_free_ char *key = rule_key(arn);
        json_t *doc = barge_elb_load_keyed(tx, ELB_KIND_RULE, key, "RuleArn", arn, "RuleNotFound",
                                           "Rule", err);
        if (!doc)
            return -1;
        _cleanup_free_ char *prio = barge_xasprintf("%lld", (long long)priority);
        json_object_set_new(doc, "_priority", json_integer(priority));
        json_object_set_new(doc, "Priority", json_string(prio));
        json_array_append_new(changed, json_pack("[s, o]", key, doc));
    }
    /* Each listener's priorities stay unique once all are applied. */
    json_t *c;
    json_array_foreach(changed, i, c)
    {
        json_t *doc = json_array_get(c, 1);
        _cleanup_free_ char *lkey = listener_key(barge_json_str(doc, "_listener", ""));
        _cleanup_json_ json_t *rules = scan_under(tx, ELB_KIND_RULE, lkey ? lkey : "", err);
        if (!rules)
            return -1;
        size_t j;
        json_t *r;
        json_array_foreach(rules, j, r)
        {
            json_t *now = r;
            size_t k;
            json_t *d;
            json_array_foreach(changed, k, d)
            {
                if (barge_streq(barge_json_str(json_array_get(d, 1), "RuleArn", ""),
                                barge_json_str(r, "RuleArn", "")))
                    now = json_array_get(d, 1);
            }
            if (!barge_streq(barge_json_str(now, "RuleArn", ""),
                             barge_json_str(doc, "RuleArn", "")) &&
                barge_json_int(now, "_priority", 0) == barge_json_int(doc, "_priority", 0))
                return typed(err, BARGE_ERR_CONFLICT, "PriorityInUse",
                             "Priority '%lld' is currently in use",
                             (long long)barge_json_int(doc, "_priority", 0));
        }
    }
    json_t *list = json_array();
    json_array_foreach(changed, i, c)
    {
        if (barge_store_put(tx, ELB_KIND_RULE, json_string_value(json_array_get(c, 0)),
                            json_array_get(c, 1), err) < 0) {
            json_decref(list);
            return -1;
        }
        json_array_append_new(list, public_doc(json_array_get(c, 1)));
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(list);
        return -1;
    }
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:o}", "Rules", list);
    return 0;
}

/* ---- tags ---- */

/* Where a taggable resource's document is: its store kind and key, the
 * field that holds its ARN, the error and the word for one that is missing. */
struct resource {
    const char *kind;
    char *key;
    const char *arn_field;
    const char *not_found;
    const char *what;
};

static int resource_of(const char *arn, struct resource *r, struct barge_error **err)
{
    *r = (struct resource){0};
    if ((r->key = barge_elb_arn_part(arn, "loadbalancer", 2)))
        *r = (struct resource){ELB_KIND_LB, r->key, "LoadBalancerArn", "LoadBalancerNotFound",
                               "Load balancer"};
    else if ((r->key = barge_elb_arn_part(arn, "targetgroup", 1)))
        *r = (struct resource){ELB_KIND_TG, r->key, "TargetGroupArn", "TargetGroupNotFound",
                               "Target group"};
    else if ((r->key = listener_key(arn)))
        *r = (struct resource){ELB_KIND_LISTENER, r->key, "ListenerArn", "ListenerNotFound",
                               "Listener"};
    else if ((r->key = rule_key(arn)))
        *r = (struct resource){ELB_KIND_RULE, r->key, "RuleArn", "RuleNotFound", "Rule"};
    else
        return invalid(err,
                       "'%s' is not the ARN of a load balancer, target group, listener or rule",
                       arn ? arn : "");
    return 0;
}

/* The document of the resource arn (the caller owns it) and where it is
 * (*r, released by the caller), or NULL with err set. */
static json_t *load_resource(struct barge_tx *tx, const char *arn, struct resource *r,
                             struct barge_error **err)
{
    if (resource_of(arn, r, err) < 0)
        return NULL;
    return barge_elb_load_keyed(tx, r->kind, r->key, r->arn_field, arn, r->not_found, r->what, err);
}

/* AddTags (add) and RemoveTags: every resource named, in one transaction. */
static int change_tags(struct barge_api_ctx *ctx, const json_t *in, bool add,
                       struct barge_error **err)
{
    json_t *arns = barge_json_array(in, "ResourceArns");
    json_t *tags = barge_json_array(in, "Tags");
    json_t *keys = barge_json_array(in, "TagKeys");
    if (add && check_tags(tags, err) < 0)
        return -1;
    if (json_array_size(arns) > 20)
        return invalid(err, "At most 20 resource ARNs can be given; %zu were given",
                       json_array_size(arns));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    size_t i;
    json_t *a;
    json_array_foreach(arns, i, a)
    {
        struct resource r;
        _cleanup_json_ json_t *doc = load_resource(tx, json_string_value(a), &r, err);
        _cleanup_free_ char *key = r.key;
        if (!doc)
            return -1;
        json_t *cur = barge_json_array(doc, "_tags");
        json_t *holder = json_pack("{s:o}", "tags", cur ? json_incref(cur) : json_array());
        if (add)
            barge_api_tags_merge(holder, tags);
        else
            barge_api_tags_remove(holder, keys);
        json_object_set(doc, "_tags", json_object_get(holder, "tags"));
        json_decref(holder);
        if (json_array_size(barge_json_array(doc, "_tags")) > 50)
            return typed(err, BARGE_ERR_LIMIT, "TooManyTags",
                         "Resource '%s' would have more than 50 tags", json_string_value(a));
        if (barge_store_put(tx, r.kind, key, doc, err) < 0)
            return -1;
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    return 0;
}

static int add_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    if (change_tags(ctx, in, true, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int remove_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    if (change_tags(ctx, in, false, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int describe_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    json_t *arns = barge_json_array(in, "ResourceArns");
    if (json_array_size(arns) > 20)
        return invalid(err, "At most 20 resource ARNs can be given; %zu were given",
                       json_array_size(arns));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *list = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(arns, i, a)
    {
        struct resource r;
        _cleanup_json_ json_t *doc = load_resource(tx, json_string_value(a), &r, err);
        free(r.key);
        if (!doc)
            return -1;
        json_t *tags = barge_json_array(doc, "_tags");
        json_array_append_new(list, json_pack("{s:O, s:o}", "ResourceArn", a, "Tags",
                                              tags ? json_incref(tags) : json_array()));
    }
    *out = json_pack("{s:O}", "TagDescriptions", list);
    return 0;
}

/* ---- load balancer attributes ---- */

/* The attributes of a load balancer of either type (network: which_type
 * 'n', application: 'a', both: 0) with ELB's defaults and the values each
 * takes ("bool", "int:lo:hi", a list "a|b|c", or NULL for any text). barge
 * honours deletion_protection.enabled (DeleteLoadBalancer) and
 * idle_timeout.timeout_seconds (HAProxy's client and server timeouts); the
 * others are kept and answered. */
static const struct {
    char which_type;
    const char *key;
    const char *value;
    const char *domain;
} lb_attribute_defaults[] = {
    {0, "deletion_protection.enabled", "false", "bool"},
    {0, "access_logs.s3.enabled", "false", "bool"},
    {0, "access_logs.s3.bucket", "", NULL},
    {0, "access_logs.s3.prefix", "", NULL},
    {0, "load_balancing.cross_zone.enabled", NULL, "bool"},
    {'a', "idle_timeout.timeout_seconds", "60", "int:1:4000"},
    {'a', "routing.http2.enabled", "true", "bool"},
    {'a', "routing.http.drop_invalid_header_fields.enabled", "false", "bool"},
    {'a', "routing.http.desync_mitigation_mode", "defensive", "monitor|defensive|strictest"},
    {'a', "routing.http.preserve_host_header.enabled", "false", "bool"},
    {'a', "routing.http.x_amzn_tls_version_and_cipher_suite.enabled", "false", "bool"},
    {'a', "routing.http.xff_client_port.enabled", "false", "bool"},
    {'a', "routing.http.xff_header_processing.mode", "append", "append|preserve|remove"},
    {'a', "waf.fail_open.enabled", "false", "bool"},
    {'n', "dns_record.client_routing_policy", "any_availability_zone",
     "availability_zone_affinity|partial_availability_zone_affinity|any_availability_zone"},
};

static bool lb_attribute_applies(size_t i, const json_t *lb)
{
    char t = barge_streq(barge_json_str(lb, "Type", ""), "network") ? 'n' : 'a';
    return !lb_attribute_defaults[i].which_type || lb_attribute_defaults[i].which_type == t;
}

static json_t *lb_attributes(const json_t *lb)
{
    json_t *list = json_array();
    json_t *mine = barge_json_object(lb, "_attributes");
    bool network = barge_streq(barge_json_str(lb, "Type", ""), "network");
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(lb_attribute_defaults); i++) {
        if (!lb_attribute_applies(i, lb))
            continue;
        const char *key = lb_attribute_defaults[i].key;
        /* Cross-zone balancing is on by default for application load
         * balancers only. */
        const char *def = lb_attribute_defaults[i].value ? lb_attribute_defaults[i].value
                                                         : (network ? "false" : "true");
        json_array_append_new(
            list, json_pack("{s:s, s:s}", "Key", key, "Value", barge_json_str(mine, key, def)));
    }
    return list;
}

/* Whether value is within domain (see lb_attribute_defaults). */
static bool in_domain(const char *domain, const char *value)
{
    if (!domain)
        return strlen(value) <= 1024;
    if (barge_streq(domain, "bool"))
        return barge_streq(value, "true") || barge_streq(value, "false");
    long lo, hi;
    if (sscanf(domain, "int:%ld:%ld", &lo, &hi) == 2) {
        char *end;
        long n = strtol(value, &end, 10);
        return *value && !*end && n >= lo && n <= hi;
    }
    size_t n = strlen(value);
    for (const char *p = domain; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n && len == n && !strncmp(p, value, n))
            return true;
        p = e ? e + 1 : p + len;
    }
    return false;
}

static int check_lb_attribute(const json_t *lb, const char *key, const char *value,
                              struct barge_error **err)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(lb_attribute_defaults); i++) {
        if (!barge_streq(lb_attribute_defaults[i].key, key))
            continue;
        if (!lb_attribute_applies(i, lb))
            return invalid(err,
                           "Load balancer attribute key '%s' is not valid for %s load "
                           "balancers",
                           key, barge_json_str(lb, "Type", ""));
        if (!in_domain(lb_attribute_defaults[i].domain, value))
            return invalid(err, "Load balancer attribute '%s' value '%s' is not valid%s%s", key,
                           value, lb_attribute_defaults[i].domain ? ": use " : "",
                           lb_attribute_defaults[i].domain ? lb_attribute_defaults[i].domain : "");
        return 0;
    }
    return invalid(err, "Load balancer attribute key '%s' is not recognized", key);
}

static json_t *begin_lb(struct barge_api_ctx *ctx, const json_t *in, bool write,
                        struct barge_tx **tx, struct barge_error **err)
{
    if (barge_store_begin(ctx->srv->store, write, tx, err) < 0)
        return NULL;
    return load_lb(*tx, barge_json_str(in, "LoadBalancerArn", ""), err);
}

static int describe_load_balancer_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                             struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *lb = begin_lb(ctx, in, false, &tx, err);
    if (!lb)
        return -1;
    *out = json_pack("{s:o}", "Attributes", lb_attributes(lb));
    return 0;
}

static int modify_load_balancer_attributes(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                           struct barge_error **err)
{
    json_t *attrs = barge_json_array(in, "Attributes");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *lb = begin_lb(ctx, in, true, &tx, err);
    if (!lb)
        return -1;
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (check_lb_attribute(lb, barge_json_str(a, "Key", ""), barge_json_str(a, "Value", ""),
                               err) < 0)
            return -1;
    }
    keep_attributes(lb, attrs);
    if (save(&tx, ELB_KIND_LB, barge_json_str(lb, "LoadBalancerName", ""), lb, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:o}", "Attributes", lb_attributes(lb));
    return 0;
}

/* SetSecurityGroups, SetSubnets and SetIpAddressType: barge has no VPC, so
 * these are kept and answered. */
static int set_security_groups(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    json_t *groups = barge_json_array(in, "SecurityGroups");
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        if (!barge_str_has_prefix(json_string_value(g) ? json_string_value(g) : "", "sg-"))
            return typed(err, BARGE_ERR_INVALID, "InvalidSecurityGroup",
                         "Security group '%s' is not valid: security group ids begin with 'sg-'",
                         json_string_value(g) ? json_string_value(g) : "");
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *lb = begin_lb(ctx, in, true, &tx, err);
    if (!lb)
        return -1;
    json_object_set_new(lb, "SecurityGroups", groups ? json_incref(groups) : json_array());
    if (save(&tx, ELB_KIND_LB, barge_json_str(lb, "LoadBalancerName", ""), lb, err) < 0)
        return -1;
    *out = json_pack("{s:O}", "SecurityGroupIds", json_object_get(lb, "SecurityGroups"));
    return 0;
}

static int set_subnets(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    _cleanup_json_ json_t *zones = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(in, "Subnets"), i, v)
    {
        json_array_append_new(zones,
                              json_pack("{s:s, s:O}", "ZoneName", "barge-1a", "SubnetId", v));
    }
    json_array_foreach(barge_json_array(in, "SubnetMappings"), i, v)
    {
        json_array_append_new(zones, json_pack("{s:s, s:s}", "ZoneName", "barge-1a", "SubnetId",
                                               barge_json_str(v, "SubnetId", "")));
    }
    json_array_foreach(zones, i, v)
    {
        if (!barge_str_has_prefix(barge_json_str(v, "SubnetId", ""), "subnet-"))
            return typed(err, BARGE_ERR_INVALID, "InvalidSubnet",
                         "Subnet '%s' is not valid: subnet ids begin with 'subnet-'",
                         barge_json_str(v, "SubnetId", ""));
    }
    if (barge_streq(barge_json_str(in, "IpAddressType", "ipv4"), "dualstack"))
        return invalid(err, "IpAddressType 'dualstack' is not supported by barge: use 'ipv4'");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *lb = begin_lb(ctx, in, true, &tx, err);
    if (!lb)
        return -1;
    json_object_set(lb, "AvailabilityZones", zones);
    if (save(&tx, ELB_KIND_LB, barge_json_str(lb, "LoadBalancerName", ""), lb, err) < 0)
        return -1;
    *out = json_pack("{s:O, s:s}", "AvailabilityZones", zones, "IpAddressType", "ipv4");
    return 0;
}

static int set_ip_address_type(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    const char *type = barge_json_str(in, "IpAddressType", "");
    if (strcmp(type, "ipv4") != 0)
        return invalid(err, "IpAddressType '%s' is not supported by barge: use 'ipv4'", type);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *lb = begin_lb(ctx, in, false, &tx, err);
    if (!lb)
        return -1;
    *out = json_pack("{s:s}", "IpAddressType", "ipv4");
    return 0;
}

/* ---- account limits and SSL policies ---- */

static int describe_account_limits(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    (void)ctx;
    (void)in;
    (void)err;
    /* The limits that barge enforces, and ELB's defaults for the others. */
    static const struct {
        const char *name;
        const char *max;
    } limits[] = {
        {"application-load-balancers", "50"},
        {"network-load-balancers", "50"},
        {"target-groups", "3000"},
        {"targets-per-application-load-balancer", "1000"},
        {"targets-per-network-load-balancer", "500"},
        {"listeners-per-application-load-balancer", "50"},
        {"listeners-per-network-load-balancer", "50"},
        {"rules-per-application-load-balancer", "100"},
        {"target-groups-per-action-on-application-load-balancer", "5"},
        {"certificates-per-application-load-balancer", "25"},
        {"condition-values-per-alb-rule", "5"},
        {"condition-wildcards-per-alb-rule", "5"},
    };
    json_t *list = json_array();
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(limits); i++)
        json_array_append_new(
            list, json_pack("{s:s, s:s}", "Name", limits[i].name, "Max", limits[i].max));
    *out = json_pack("{s:o}", "Limits", list);
    return 0;
}

static int describe_ssl_policies(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    (void)ctx;
    json_t *asked = barge_json_array(in, "Names");
    size_t i;
    json_t *n;
    json_array_foreach(asked, i, n)
    {
        if (!barge_elb_ssl_policy(json_string_value(n)))
            return typed(err, BARGE_ERR_NOT_FOUND, "SSLPolicyNotFound", "SSL policy '%s' not found",
                         json_string_value(n) ? json_string_value(n) : "");
    }
    static const char *const versions[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    static const char *const haproxy_versions[] = {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    json_t *list = json_array();
    for (const struct barge_elb_ssl_policy *p = barge_elb_ssl_policies; p->name; p++) {
        if (json_array_size(asked) && !barge_json_has_string(asked, p->name))
            continue;
        json_t *protocols = json_array();
        bool on = false;
        for (size_t k = 0; k < BARGE_ARRAY_SIZE(versions); k++) {
            on |= barge_streq(haproxy_versions[k], p->min_version);
            if (on)
                json_array_append_new(protocols, json_string(versions[k]));
            if (barge_streq(haproxy_versions[k], p->max_version))
                break;
        }
        json_t *ciphers = json_array();
        int prio = 1;
        for (int pass = 0; pass < 2; pass++) {
            const char *text = pass ? p->ciphers : p->ciphersuites;
            for (const char *c = text; c && *c;) {
                size_t len = strcspn(c, ":");
                json_array_append_new(ciphers,
                                      json_pack("{s:s%, s:i}", "Name", c, len, "Priority", prio++));
                c += len + (c[len] == ':');
            }
        }
        json_array_append_new(list,
                              json_pack("{s:s, s:o, s:o, s:[s, s]}", "Name", p->name,
                                        "SslProtocols", protocols, "Ciphers", ciphers,
                                        "SupportedLoadBalancerTypes", "application", "network"));
    }
    *out = json_pack("{s:o}", "SslPolicies", list);
    return 0;
}

static const struct barge_api_op elbv2_ops[] = {
    {"CreateLoadBalancer", create_load_balancer},
    {"DescribeLoadBalancers", describe_load_balancers},
    {"DeleteLoadBalancer", delete_load_balancer},
    {"CreateTargetGroup", create_target_group},
    {"DescribeTargetGroups", describe_target_groups},
    {"DeleteTargetGroup", delete_target_group},
    {"ModifyTargetGroup", modify_target_group},
    {"CreateListener", create_listener},
    {"DescribeListeners", describe_listeners},
    {"DeleteListener", delete_listener},
    {"RegisterTargets", register_targets},
    {"DeregisterTargets", deregister_targets},
    {"DescribeTargetHealth", describe_target_health},
    {"DescribeTargetGroupAttributes", describe_target_group_attributes},
    {"ModifyTargetGroupAttributes", modify_target_group_attributes},
    {"CreateRule", create_rule},
    {"DescribeRules", describe_rules},
    {"DeleteRule", delete_rule},
    {"SetRulePriorities", set_rule_priorities},
    {"AddTags", add_tags},
    {"RemoveTags", remove_tags},
    {"DescribeTags", describe_tags},
    {"DescribeLoadBalancerAttributes", describe_load_balancer_attributes},
    {"ModifyLoadBalancerAttributes", modify_load_balancer_attributes},
    {"SetSecurityGroups", set_security_groups},
    {"SetSubnets", set_subnets},
    {"SetIpAddressType", set_ip_address_type},
    {"DescribeAccountLimits", describe_account_limits},
    {"DescribeSSLPolicies", describe_ssl_policies},
    {"ModifyRule", modify_rule},
    {"ModifyListener", modify_listener},
    {"AddListenerCertificates", add_listener_certificates},
    {"RemoveListenerCertificates", remove_listener_certificates},
    {"DescribeListenerCertificates", describe_listener_certificates},
    {"DescribeListenerAttributes", describe_listener_attributes},
    {"ModifyListenerAttributes", modify_listener_attributes},
    {NULL, NULL},
};

static const struct barge_api_op *const elbv2_op_tables[] = {elbv2_ops, NULL};

const struct barge_api_service barge_api_elbv2 = {
    .model = "elbv2",
    .message_key = "Message",
    .invalid_type = "ValidationError",
    .client_type = "ValidationError",
    .server_type = "InternalFailure",
    .not_found_type = "ValidationError",
    .op_tables = elbv2_op_tables,
};
