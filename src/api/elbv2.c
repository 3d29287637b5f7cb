/* The part of Elastic Load Balancing v2 that puts a stable address in front
 * of a set of targets: load balancers (application and network), target
 * groups with their health checks, listeners that forward to one target
 * group, rules that send some paths or host names to another, target
 * registration and health. Served over the query protocol
 * (query.c). What is stored here is the desired state; src/control/lb.c makes
 * HAProxy (src/net/haproxy.c) match it, and DescribeTargetHealth reads the
 * running HAProxy's view of each target. */
#include "api/elbv2.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ecs.h"
#include "common/arn.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "net/haproxy.h"

char *barge_elb_dir(const struct barge_server *srv)
{
    return barge_xasprintf("%s/lb", srv->cfg.data_dir);
}

char *barge_elb_socket(const struct barge_server *srv, const char *lb_name)
{
    return barge_xasprintf("%s/lb/%s.sock", srv->cfg.data_dir, lb_name);
}

char *barge_elb_backend_name(const char *tg_name)
{
    return barge_xasprintf("tg-%s", tg_name);
}

char *barge_elb_server_name(const char *id, json_int_t port)
{
    return barge_xasprintf("%s-%lld", id, (long long)port);
}

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
static char *arn_part(const char *arn, const char *kind, size_t i)
{
    struct barge_arn a = {0};
    if (!arn || barge_arn_parse(arn, &a) < 0)
        return NULL;
    char *out = NULL;
    if (barge_streq(a.service, "elasticloadbalancing") && a.resource &&
        barge_str_has_prefix(a.resource, kind) && a.resource[strlen(kind)] == '/') {
        const char *p = a.resource;
        for (size_t k = 0; k < i && p; k++) {
            p = strchr(p, '/');
            if (p)
                p++;
        }
        if (p) {
            const char *e = strchr(p, '/');
            out = e ? barge_xstrndup(p, (size_t)(e - p)) : barge_xstrdup(p);
        }
    }
    barge_arn_release(&a);
    return out;
}

/* The document stored under key whose arn_field is arn, or NULL with err set
 * to not_found ("<what> '<arn>' not found"), as it is when key is NULL. */
static json_t *load_keyed(struct barge_tx *tx, const char *store_kind, const char *key,
                          const char *arn_field, const char *arn, const char *not_found,
                          const char *what, struct barge_error **err)
{
    json_t *doc = NULL;
    if (key && barge_store_get(tx, store_kind, key, &doc, err) < 0)
        return NULL;
    if (!doc || !barge_streq(barge_json_str(doc, arn_field, ""), arn)) {
        json_decref(doc);
        typed(err, BARGE_ERR_NOT_FOUND, not_found, "%s '%s' not found", what, arn);
        return NULL;
    }
    return doc;
}

/* The stored document with arn (of kind, its name at index name_at), or NULL
 * with err set: not_found, or ValidationError for what is not such an ARN. */
static json_t *load_by_arn(struct barge_tx *tx, const char *store_kind, const char *arn_kind,
                           size_t name_at, const char *arn_field, const char *arn,
                           const char *not_found, const char *what, struct barge_error **err)
{
    _cleanup_free_ char *name = arn_part(arn, arn_kind, name_at);
    if (!name) {
        invalid(err, "'%s' is not a valid %s ARN", arn ? arn : "", what);
        return NULL;
    }
    return load_keyed(tx, store_kind, name, arn_field, arn, not_found, what, err);
}

static json_t *load_lb(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    return load_by_arn(tx, ELB_KIND_LB, "loadbalancer", 2, "LoadBalancerArn", arn,
                       "LoadBalancerNotFound", "Load balancer", err);
}

static json_t *load_tg(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    return load_by_arn(tx, ELB_KIND_TG, "targetgroup", 1, "TargetGroupArn", arn,
                       "TargetGroupNotFound", "Target group", err);
}

/* "listener/app/LB/LBID/ID": the store key "LB/ID". */
static char *listener_key(const char *arn)
{
    _cleanup_free_ char *lb = arn_part(arn, "listener", 2);
    _cleanup_free_ char *id = arn_part(arn, "listener", 4);
    return lb && id ? barge_xasprintf("%s/%s", lb, id) : NULL;
}

static json_t *load_listener(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    _cleanup_free_ char *key = listener_key(arn);
    return load_keyed(tx, ELB_KIND_LISTENER, key, "ListenerArn", arn, "ListenerNotFound",
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

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    json_array_append(ud, doc);
    return 0;
}

static json_t *scan_all(struct barge_tx *tx, const char *kind, const char *prefix,
                        struct barge_error **err)
{
    json_t *all = json_array();
    if (barge_store_scan(tx, kind, prefix, NULL, false, 0, collect, all, err) < 0) {
        json_decref(all);
        return NULL;
    }
    return all;
}

/* The documents of kind that belong to owner (a load balancer's name or a
 * listener's key): their keys start with "<owner>/". */
static json_t *scan_under(struct barge_tx *tx, const char *kind, const char *owner,
                          struct barge_error **err)
{
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", owner);
    return scan_all(tx, kind, prefix, err);
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

static bool listed(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)list, i, v)
    {
        if (barge_streq(json_string_value(v), s))
            return true;
    }
    return false;
}

/* "listener-rule/app/LB/LBID/LID/RID": the store key "LB/LID/RID". */
static char *rule_key(const char *arn)
{
    _cleanup_free_ char *lb = arn_part(arn, "listener-rule", 2);
    _cleanup_free_ char *lid = arn_part(arn, "listener-rule", 4);
    _cleanup_free_ char *rid = arn_part(arn, "listener-rule", 5);
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

/* The TagList of a Create call, kept for the tag calls to come (a new
 * reference). */
static json_t *tags_of(const json_t *in)
{
    json_t *tags = json_object_get(in, "Tags");
    return tags ? json_incref(tags) : json_array();
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
    return (!json_array_size(arns) || listed(arns, barge_json_str(doc, l->arn_field, ""))) &&
           (!json_array_size(names) || listed(names, barge_json_str(doc, l->name_field, "")));
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
    _cleanup_json_ json_t *all = scan_all(tx, ELB_KIND_LB, "", err);
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

static int create_target_group(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
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
    bool http = !strcmp(proto, "HTTP");
    const char *hc_proto = barge_json_str(in, "HealthCheckProtocol", proto);
    if (strcmp(hc_proto, "HTTP") != 0 && strcmp(hc_proto, "TCP") != 0)
        return invalid(err, "Health check protocol '%s' is not supported by barge", hc_proto);
    if (http && strcmp(hc_proto, "HTTP") != 0)
        return invalid(err,
                       "Health check protocol '%s' is not supported for target groups with "
                       "the HTTP protocol",
                       hc_proto);
    bool hc_http = !strcmp(hc_proto, "HTTP");
    const char *path = barge_json_str(in, "HealthCheckPath", NULL);
    if (path && !hc_http)
        return invalid(err,
                       "A health check path cannot be set with the '%s' health check "
                       "protocol",
                       hc_proto);
    if (path && path[0] != '/')
        return invalid(err, "Health check path '%s' must begin with a '/'", path);
    const char *hc_port = barge_json_str(in, "HealthCheckPort", "traffic-port");
    if (strcmp(hc_port, "traffic-port") != 0) {
        char *end;
        long p = strtol(hc_port, &end, 10);
        if (*end || p < 1 || p > 65535)
            return invalid(err,
                           "Health check port '%s' must be 'traffic-port' or a port from 1 "
                           "to 65535",
                           hc_port);
    }
    json_int_t interval = barge_json_int(in, "HealthCheckIntervalSeconds", 30);
    json_int_t timeout = barge_json_int(in, "HealthCheckTimeoutSeconds", http ? 5 : 10);
    if (timeout >= interval)
        return invalid(err,
                       "Health check timeout '%lld' must be smaller than the interval "
                       "'%lld'",
                       (long long)timeout, (long long)interval);
    const char *codes = barge_json_str(barge_json_object(in, "Matcher"), "HttpCode", "200");
    if (json_object_get(barge_json_object(in, "Matcher"), "GrpcCode"))
        return invalid(err, "Matcher GrpcCode is not supported by barge: use HttpCode");
    if (!matcher_ok(codes))
        return invalid(err,
                       "Health check matcher HTTP code '%s' must be within '200-499' "
                       "(\"200\", \"200,202\" or \"200-299\")",
                       codes);

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
        "{s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:s, s:[], s:s, s:[], s:o}",
        "TargetGroupArn", arn, "TargetGroupName", name, "Protocol", proto, "Port",
        barge_json_int(in, "Port", 0), "TargetType", type, "HealthCheckProtocol", hc_proto,
        "HealthCheckEnabled", barge_json_bool(in, "HealthCheckEnabled", true),
        "HealthCheckIntervalSeconds", interval, "HealthCheckTimeoutSeconds", timeout,
        "HealthyThresholdCount", barge_json_int(in, "HealthyThresholdCount", 5),
        "UnhealthyThresholdCount", barge_json_int(in, "UnhealthyThresholdCount", 2),
        "HealthCheckPort", hc_port, "LoadBalancerArns", "VpcId", "vpc-barge", "_targets", "_tags",
        tags_of(in));
    if (hc_http) {
        json_object_set_new(doc, "HealthCheckPath", json_string(path ? path : "/"));
        json_object_set_new(doc, "Matcher", json_pack("{s:s}", "HttpCode", codes));
    }
    if (http)
        json_object_set_new(doc, "ProtocolVersion", json_string("HTTP1"));
    json_object_set_new(doc, "IpAddressType", json_string("ipv4"));
    if (save(&tx, ELB_KIND_TG, name, doc, err) < 0)
        return -1;
    *out = json_pack("{s:[o]}", "TargetGroups", public_doc(doc));
    return 0;
}

/* The ARNs of the load balancers whose listeners or rules (users, from
 * scan_users) forward to tg_arn. */
static json_t *tg_load_balancers(const json_t *users, const char *tg_arn)
{
    json_t *arns = json_array();
    size_t i;
    json_t *l;
    json_array_foreach((json_t *)users, i, l)
    {
        const char *lb = barge_json_str(l, "LoadBalancerArn", barge_json_str(l, "_lb", ""));
        if (barge_streq(barge_json_str(l, "_tg", ""), tg_arn) && !listed(arns, lb))
            json_array_append_new(arns, json_string(lb));
    }
    return arns;
}

/* Every listener and rule: what forwards to target groups. */
static json_t *scan_users(struct barge_tx *tx, struct barge_error **err)
{
    json_t *all = scan_all(tx, ELB_KIND_LISTENER, "", err);
    _cleanup_json_ json_t *rules = all ? scan_all(tx, ELB_KIND_RULE, "", err) : NULL;
    if (!rules) {
        json_decref(all);
        return NULL;
    }
    json_array_extend(all, rules);
    return all;
}

/* Begins a transaction (write or read) and loads the target group that the
 * call in names by TargetGroupArn. */
static json_t *begin_tg(struct barge_api_ctx *ctx, const json_t *in, bool write,
                        struct barge_tx **tx, struct barge_error **err)
{
    if (barge_store_begin(ctx->srv->store, write, tx, err) < 0)
        return NULL;
    return load_tg(*tx, barge_json_str(in, "TargetGroupArn", ""), err);
}

/* The ARNs of the load balancers that forward to tg_arn (a new reference),
 * or NULL with err set. */
static json_t *scan_tg_load_balancers(struct barge_tx *tx, const char *tg_arn,
                                      struct barge_error **err)
{
    _cleanup_json_ json_t *users = scan_users(tx, err);
    return users ? tg_load_balancers(users, tg_arn) : NULL;
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
    _cleanup_json_ json_t *all = scan_all(tx, ELB_KIND_TG, "", err);
    _cleanup_json_ json_t *listeners = all ? scan_users(tx, err) : NULL;
    if (!listeners)
        return -1;
    json_t *found = start_listing(&tg_listing, out);
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        json_t *lbs = tg_load_balancers(listeners, barge_json_str(doc, "TargetGroupArn", ""));
        if (!asked_for(&tg_listing, in, doc) || (lb_arn && !listed(lbs, lb_arn))) {
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
    _cleanup_json_ json_t *listeners = doc ? scan_users(tx, err) : NULL;
    if (!listeners)
        return -1;
    size_t i;
    json_t *l;
    json_array_foreach(listeners, i, l)
    {
        if (barge_streq(barge_json_str(l, "_tg", ""), arn))
            return typed(err, BARGE_ERR_CONFLICT, "ResourceInUse",
                         "Target group '%s' is currently in use by a listener or a rule", arn);
    }
    if (barge_store_del(tx, ELB_KIND_TG, barge_json_str(doc, "TargetGroupName", ""), err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

/* ---- listeners ---- */

/* The target group of actions, which must be one forward action (borrowed
 * from actions), or NULL with err set. */
static const char *forward_target(const json_t *actions, struct barge_error **err)
{
    if (json_array_size(actions) != 1) {
        invalid(err, "barge supports exactly one action (forward); %zu were given",
                json_array_size(actions));
        return NULL;
    }
    json_t *action = json_array_get(actions, 0);
    const char *atype = barge_json_str(action, "Type", "");
    if (strcmp(atype, "forward") != 0) {
        invalid(err, "Action type '%s' is not supported by barge: use 'forward'", atype);
        return NULL;
    }
    const char *tg_arn = barge_json_str(action, "TargetGroupArn", NULL);
    json_t *fwd_groups =
        barge_json_array(barge_json_object(action, "ForwardConfig"), "TargetGroups");
    if (json_array_size(fwd_groups) > 1) {
        invalid(err, "Forwarding to several target groups is not supported by barge yet");
        return NULL;
    }
    if (!tg_arn && json_array_size(fwd_groups) == 1)
        tg_arn = barge_json_str(json_array_get(fwd_groups, 0), "TargetGroupArn", NULL);
    if (!tg_arn)
        invalid(err, "A target group ARN must be specified for the forward action");
    return tg_arn;
}

/* The wire form of a forward action to tg_arn. */
static json_t *forward_action(const char *tg_arn)
{
    return json_pack("[{s:s, s:s, s:{s:[{s:s, s:i}]}}]", "Type", "forward", "TargetGroupArn",
                     tg_arn, "ForwardConfig", "TargetGroups", "TargetGroupArn", tg_arn, "Weight",
                     1);
}

static int create_listener(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    const char *lb_arn = barge_json_str(in, "LoadBalancerArn", "");
    const char *tg_arn = forward_target(barge_json_array(in, "DefaultActions"), err);
    if (!tg_arn)
        return -1;

    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *lb = load_lb(tx, lb_arn, err);
    if (!lb)
        return -1;
    _cleanup_json_ json_t *tg = load_tg(tx, tg_arn, err);
    if (!tg)
        return -1;
    bool network = barge_streq(barge_json_str(lb, "Type", ""), "network");
    const char *proto = barge_json_str(in, "Protocol", network ? "TCP" : "HTTP");
    if (!json_object_get(in, "Port"))
        return invalid(err, "A listener port must be specified");
    json_int_t port = barge_json_int(in, "Port", 0);
    if (strcmp(proto, network ? "TCP" : "HTTP") != 0)
        return invalid(err,
                       "Listener protocol '%s' is not supported by barge for %s load "
                       "balancers: use '%s'",
                       proto, network ? "network" : "application", network ? "TCP" : "HTTP");
    if (!barge_streq(barge_json_str(tg, "Protocol", ""), proto))
        return typed(err, BARGE_ERR_INVALID, "IncompatibleProtocols",
                     "Listener protocol '%s' is not compatible with target group protocol '%s'",
                     proto, barge_json_str(tg, "Protocol", ""));
    /* Every load balancer listens on the same address, so a port is taken
     * by whichever listener has it. */
    _cleanup_json_ json_t *all = scan_all(tx, ELB_KIND_LISTENER, "", err);
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
    _cleanup_free_ char *lb_id = arn_part(lb_arn, "loadbalancer", 3);
    _cleanup_free_ char *id = new_id();
    _cleanup_free_ char *res =
        barge_xasprintf("listener/%s/%s/%s/%s", network ? "net" : "app", lb_name, lb_id, id);
    _cleanup_free_ char *arn = elb_arn(ctx, res);
    _cleanup_json_ json_t *doc = json_pack(
        "{s:s, s:s, s:I, s:s, s:o, s:s}", "ListenerArn", arn, "LoadBalancerArn", lb_arn, "Port",
        port, "Protocol", proto, "DefaultActions", forward_action(tg_arn), "_tg", tg_arn);
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
           : scan_all(tx, ELB_KIND_LISTENER, "", err);
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
        if (!listed(ids, barge_json_str(t, "Id", "")))
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

static json_t *health(const char *state, const char *reason, const char *desc)
{
    json_t *h = json_pack("{s:s}", "State", state);
    if (reason)
        json_object_set_new(h, "Reason", json_string(reason));
    if (desc)
        json_object_set_new(h, "Description", json_string(desc));
    return h;
}

/* A target's health as HAProxy (srv: its `show stat` row, or NULL) sees it. */
static json_t *target_health(const json_t *tg, const json_t *t, bool in_use, const json_t *srv)
{
    if (barge_streq(barge_json_str(t, "State", ""), "draining"))
        return health("draining", "Target.DeregistrationInProgress",
                      "Target deregistration is in progress");
    if (!in_use)
        return health("unused", "Target.NotInUse",
                      "Target group is not configured to receive traffic from the load balancer");
    if (!barge_json_bool(tg, "HealthCheckEnabled", true))
        return health("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled");
    if (!srv)
        return health("initial", "Elb.RegistrationInProgress",
                      "Target registration is in progress");
    const char *status = barge_json_str(srv, "status", "");
    const char *check = barge_json_str(srv, "check_status", "");
    if (!strcmp(check, "INI") || barge_str_has_prefix(status, "MAINT"))
        return health("initial", "Elb.InitialHealthChecking", "Initial health checking");
    if (barge_str_has_prefix(status, "UP"))
        return health("healthy", NULL, NULL);
    /* Down while its checks pass: still short of the healthy threshold. */
    if (!strcmp(check, "L7OK") || !strcmp(check, "L4OK") || !strcmp(check, "L6OK"))
        return health("initial", "Elb.InitialHealthChecking", "Initial health checking");
    if (!strcmp(check, "L7STS"))
        return health("unhealthy", "Target.ResponseCodeMismatch",
                      "Health checks failed with a response code that does not match");
    if (!strcmp(check, "L4TOUT") || !strcmp(check, "L7TOUT"))
        return health("unhealthy", "Target.Timeout", "Request timed out");
    return health("unhealthy", "Target.FailedHealthChecks", "Health checks failed");
}

/* The `show stat` rows ({server name: row}) of tg's servers in the HAProxy
 * of the first of lbs, the load balancers that forward to tg (a new
 * reference), or NULL. A failed read is logged when log_failure. */
static json_t *backend_stats(struct barge_server *srv, const json_t *tg, const json_t *lbs,
                             bool log_failure)
{
    if (!json_array_size(lbs))
        return NULL;
    _cleanup_free_ char *lb_name =
        arn_part(json_string_value(json_array_get(lbs, 0)), "loadbalancer", 2);
    _cleanup_free_ char *sock = barge_elb_socket(srv, lb_name ? lb_name : "");
    _cleanup_error_ struct barge_error *herr = NULL;
    _cleanup_json_ json_t *stats = barge_haproxy_servers(sock, &herr);
    if (!stats && log_failure)
        barge_debug("reading target health of '%s': %s", barge_json_str(tg, "TargetGroupArn", ""),
                    herr->message);
    _cleanup_free_ char *backend =
        barge_elb_backend_name(barge_json_str(tg, "TargetGroupName", ""));
    return json_incref(json_object_get(stats, backend));
}

static int describe_target_health(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *tg = begin_tg(ctx, in, false, &tx, err);
    _cleanup_json_ json_t *lbs =
        tg ? scan_tg_load_balancers(tx, barge_json_str(in, "TargetGroupArn", ""), err) : NULL;
    if (!lbs)
        return -1;
    barge_store_abort(barge_steal(&tx));
    _cleanup_json_ json_t *asked = NULL;
    if (json_object_get(in, "Targets")) {
        asked = read_targets(in, tg, err);
        if (!asked)
            return -1;
    }
    _cleanup_json_ json_t *be = backend_stats(ctx->srv, tg, lbs, true);
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
            h = health("unavailable", "Target.NotRegistered", "Target is not registered");
        } else {
            _cleanup_free_ char *sname =
                barge_elb_server_name(barge_json_str(t, "Id", ""), barge_json_int(t, "Port", 0));
            h = target_health(tg, cur, json_array_size(lbs) > 0, json_object_get(be, sname));
        }
        json_array_append_new(list,
                              json_pack("{s:o, s:s, s:o}", "Target", target, "HealthCheckPort",
                                        strcmp(hc_port, "traffic-port") ? hc_port : port_text,
                                        "TargetHealth", h));
    }
    return 0;
}

json_t *barge_elb_tg_find(struct barge_tx *tx, const char *arn, bool *in_use,
                          struct barge_error **err)
{
    json_t *tg = load_tg(tx, arn, err);
    if (!tg)
        return NULL;
    _cleanup_json_ json_t *lbs = scan_tg_load_balancers(tx, arn, err);
    if (!lbs) {
        json_decref(tg);
        return NULL;
    }
    *in_use = json_array_size(lbs) > 0;
    return tg;
}

json_t *barge_elb_target_states(struct barge_server *srv, struct barge_tx *tx, const json_t *tg,
                                struct barge_error **err)
{
    _cleanup_json_ json_t *lbs =
        scan_tg_load_balancers(tx, barge_json_str(tg, "TargetGroupArn", ""), err);
    if (!lbs)
        return NULL;
    _cleanup_json_ json_t *be = backend_stats(srv, tg, lbs, false);
    json_t *out = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(tg, "_targets"), i, t)
    {
        _cleanup_free_ char *sname =
            barge_elb_server_name(barge_json_str(t, "Id", ""), barge_json_int(t, "Port", 0));
        _cleanup_json_ json_t *h =
            target_health(tg, t, json_array_size(lbs) > 0, json_object_get(be, sname));
        json_object_set_new(out, sname, json_string(barge_json_str(h, "State", "")));
    }
    return out;
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

json_int_t barge_elb_deregistration_delay(const json_t *tg)
{
    const char *v = barge_json_str(barge_json_object(tg, "_attributes"),
                                   "deregistration_delay.timeout_seconds", "300");
    return atoll(v);
}

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
    json_t *mine = barge_json_object(tg, "_attributes");
    if (!mine) {
        mine = json_object();
        json_object_set_new(tg, "_attributes", mine);
    }
    json_array_foreach(attrs, i, a)
    {
        json_object_set_new(mine, barge_json_str(a, "Key", ""),
                            json_string(barge_json_str(a, "Value", "")));
    }
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

/* Checks the conditions (path-pattern and host-header, each at most once)
 * and returns them in the form ELB answers with. */
static json_t *read_conditions(const json_t *in, struct barge_error **err)
{
    json_t *out = json_array();
    bool seen_path = false, seen_host = false;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(in, "Conditions"), i, c)
    {
        const char *field = barge_json_str(c, "Field", "");
        bool path = !strcmp(field, "path-pattern");
        if (!path && strcmp(field, "host-header") != 0) {
            invalid(err,
                    "Condition field '%s' is not supported by barge: use 'path-pattern' or "
                    "'host-header'",
                    field);
            goto fail;
        }
        if (path ? seen_path : seen_host) {
            invalid(err, "Condition field '%s' can be given only once per rule", field);
            goto fail;
        }
        if (path)
            seen_path = true;
        else
            seen_host = true;
        const char *config = path ? "PathPatternConfig" : "HostHeaderConfig";
        json_t *values = condition_values(c, config);
        if (!json_array_size(values) || json_array_size(values) > 5) {
            invalid(err, "Condition field '%s' needs between 1 and 5 values", field);
            goto fail;
        }
        size_t j;
        json_t *v;
        json_array_foreach(values, j, v)
        {
            const char *text = json_string_value(v);
            size_t n = text ? strlen(text) : 0;
            bool ok = n >= 1 && n <= 128 && (!path || text[0] == '/' || text[0] == '*');
            for (size_t k = 0; ok && k < n; k++)
                ok = isalnum((unsigned char)text[k]) ||
                     strchr(path ? "_-.$/~@:+&*?" : "-.*?", text[k]);
            if (!ok) {
                invalid(err, "Condition value '%s' is not a valid %s", text ? text : "",
                        path ? "path pattern (1-128 characters among A-Z a-z 0-9 _ - . $ / ~ @ : "
                               "+ & * ?, starting with '/')"
                             : "host name pattern (1-128 characters among A-Z a-z 0-9 - . * ?)");
                goto fail;
            }
        }
        json_array_append_new(out, json_pack("{s:s, s:O, s:{s:O}}", "Field", field, "Values",
                                             values, config, "Values", values));
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
    const char *listener_arn = barge_json_str(in, "ListenerArn", "");
    json_int_t priority = barge_json_int(in, "Priority", 0);
    const char *tg_arn = forward_target(barge_json_array(in, "Actions"), err);
    if (!tg_arn)
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
    if (!barge_streq(barge_json_str(listener, "Protocol", ""), "HTTP"))
        return invalid(err, "Rules with conditions need an HTTP listener; '%s' is %s", listener_arn,
                       barge_json_str(listener, "Protocol", ""));
    _cleanup_json_ json_t *tg = load_tg(tx, tg_arn, err);
    if (!tg)
        return -1;
    if (!barge_streq(barge_json_str(tg, "Protocol", ""), "HTTP"))
        return typed(err, BARGE_ERR_INVALID, "IncompatibleProtocols",
                     "Listener protocol 'HTTP' is not compatible with target group protocol '%s'",
                     barge_json_str(tg, "Protocol", ""));
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
    _cleanup_free_ char *lb_name = arn_part(listener_arn, "listener", 2);
    _cleanup_free_ char *lb_id = arn_part(listener_arn, "listener", 3);
    _cleanup_free_ char *lid = arn_part(listener_arn, "listener", 4);
    _cleanup_free_ char *id = new_id();
    _cleanup_free_ char *res =
        barge_xasprintf("listener-rule/app/%s/%s/%s/%s", lb_name, lb_id, lid, id);
    _cleanup_free_ char *arn = elb_arn(ctx, res);
    _cleanup_free_ char *prio = barge_xasprintf("%lld", (long long)priority);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:O, s:o, s:b, s:I, s:s, s:s, s:s}", "RuleArn", arn, "Priority", prio,
                  "Conditions", conditions, "Actions", forward_action(tg_arn), "IsDefault", 0,
                  "_priority", priority, "_tg", tg_arn, "_lb",
                  barge_json_str(listener, "LoadBalancerArn", ""), "_listener", listener_arn);
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
 * at tg: the store document changes and the load balancer step applies it. */
static int set_forward(json_t *doc, const char *actions_field, const char *tg_arn)
{
    if (barge_streq(barge_json_str(doc, "_tg", NULL), tg_arn))
        return 0;
    json_object_set_new(doc, actions_field, forward_action(tg_arn));
    json_object_set_new(doc, "_tg", json_string(tg_arn));
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
                : load_keyed(tx, ELB_KIND_RULE, *key, "RuleArn", rule_arn, "RuleNotFound", "Rule",
                             err);
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
    int changed = set_forward(doc, actions_field(kind), tg_arn);
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

/* The target group of a forward action that ModifyRule or ModifyListener
 * sets, checked against the listener's protocol. */
static const char *modified_target(struct barge_tx *tx, const json_t *actions, const char *proto,
                                   struct barge_error **err)
{
    const char *tg_arn = forward_target(actions, err);
    if (!tg_arn)
        return NULL;
    _cleanup_json_ json_t *tg = load_tg(tx, tg_arn, err);
    if (!tg)
        return NULL;
    if (!barge_streq(barge_json_str(tg, "Protocol", ""), proto)) {
        typed(err, BARGE_ERR_INVALID, "IncompatibleProtocols",
              "Listener protocol '%s' is not compatible with target group protocol '%s'", proto,
              barge_json_str(tg, "Protocol", ""));
        return NULL;
    }
    return tg_arn;
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
    /* Rules exist on HTTP listeners only. */
    const char *proto = barge_json_str(doc, "Protocol", "HTTP");
    if (actions) {
        const char *tg_arn = modified_target(tx, actions, proto, err);
        if (!tg_arn)
            return -1;
        set_forward(doc, actions_field(kind), tg_arn);
    }
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

/* ModifyListener: barge's listeners change their default actions; a new
 * port or protocol is refused rather than ignored. */
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
    const char *proto = barge_json_str(doc, "Protocol", "HTTP");
    if (json_object_get(in, "Protocol") && !barge_streq(barge_json_str(in, "Protocol", ""), proto))
        return invalid(err, "barge cannot change the protocol of listener '%s' (%s)", arn, proto);
    json_t *actions = barge_json_array(in, "DefaultActions");
    if (actions) {
        const char *tg_arn = modified_target(tx, actions, proto, err);
        if (!tg_arn)
            return -1;
        set_forward(doc, "DefaultActions", tg_arn);
    }
    _cleanup_free_ char *key = listener_key(arn);
    if (save(&tx, ELB_KIND_LISTENER, key, doc, err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_pack("{s:[o]}", "Listeners", public_doc(doc));
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
        listeners = scan_all(tx, ELB_KIND_LISTENER, "", err);
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
        load_keyed(tx, ELB_KIND_RULE, key, "RuleArn", arn, "RuleNotFound", "Rule", err);
    if (!doc)
        return -1;
    if (barge_store_del(tx, ELB_KIND_RULE, key, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_server_wake(ctx->srv);
    *out = json_object();
    return 0;
}

static const struct barge_api_op elbv2_ops[] = {
    {"CreateLoadBalancer", create_load_balancer},
    {"DescribeLoadBalancers", describe_load_balancers},
    {"DeleteLoadBalancer", delete_load_balancer},
    {"CreateTargetGroup", create_target_group},
    {"DescribeTargetGroups", describe_target_groups},
    {"DeleteTargetGroup", delete_target_group},
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
    {"ModifyRule", modify_rule},
    {"ModifyListener", modify_listener},
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
