/* AWS Cloud Map (`aws servicediscovery`, JSON 1.1, target prefix
 * Route53AutoNaming_v20170314): namespaces (private DNS and HTTP; public DNS
 * is refused, barge serves no public zone), services, instances,
 * DiscoverInstances, custom health status, operations and tags.
 *
 * Everything lives per region, one document per namespace, service,
 * instance and operation (svc/cloudmap.c). Cloud Map's writes are
 * asynchronous operations; barge applies them at once and records an
 * operation that GetOperation reports as SUCCESS. The records of private
 * DNS namespaces are served by the agents' DNS servers (agent/dns.c),
 * which read them through barge_cloudmap_dns_records; ECS services with
 * serviceRegistries keep their tasks registered through
 * barge_cloudmap_ecs_sync. */
#include "api/cloudmap.h"

#include <string.h>

#include "api/api.h"
#include "api/server.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define MAX_ATTRIBUTES 30
#define MAX_TAGS       50

static int invalid(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int invalid(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidInput", "%s", msg);
}

static const char *region_of(const struct barge_api_ctx *ctx)
{
    return ctx->who.region;
}

/* "ns-" / "srv-" and 16 random lower-case letters and digits, as Cloud Map. */
static char *new_id(const char *prefix)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[16];
    char tail[17];
    barge_random_bytes(raw, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        tail[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
    tail[16] = '\0';
    return barge_xasprintf("%s%s", prefix, tail);
}

/* A namespace or service by id or ARN, else Cloud Map's not-found error
 * (type, naming what). */
static int must_get(struct barge_tx *tx, const char *kind, const char *type, const char *what,
                    const char *region, const char *id, json_t **out, struct barge_error **err)
{
    int r = barge_cloudmap_get(tx, kind, region, barge_cloudmap_id_of(id), out, err);
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, type, "%s '%s' not found", what, id);
    return r < 0 ? -1 : 0;
}

static int namespace_get(struct barge_tx *tx, const char *region, const char *id, json_t **out,
                         struct barge_error **err)
{
    return must_get(tx, CLOUDMAP_KIND_NAMESPACE, "NamespaceNotFound", "namespace", region, id, out,
                    err);
}

static int service_get(struct barge_tx *tx, const char *region, const char *id, json_t **out,
                       struct barge_error **err)
{
    return must_get(tx, CLOUDMAP_KIND_SERVICE, "ServiceNotFound", "service", region, id, out, err);
}

/* Records a finished operation and answers {"OperationId": ...}; an
 * instance's operation also names its service (service_id). */
static int operation_of(struct barge_tx *tx, const char *region, const char *type,
                        const char *target_kind, const char *target, const char *service_id,
                        json_t **out, struct barge_error **err)
{
    char hex[33];
    barge_id_hex32(hex);
    double now = barge_now();
    json_t *op =
        json_pack("{s:s, s:s, s:s, s:f, s:f, s:{s:s}}", "Id", hex, "Type", type, "Status",
                  "SUCCESS", "CreateDate", now, "UpdateDate", now, "Targets", target_kind, target);
    if (service_id)
        json_object_set_new(json_object_get(op, "Targets"), "SERVICE", json_string(service_id));
    _cleanup_free_ char *key = barge_cloudmap_key(region, hex);
    int r = barge_store_put(tx, CLOUDMAP_KIND_OPERATION, key, op, err);
    json_decref(op);
    if (r < 0)
        return -1;
    *out = json_pack("{s:s}", "OperationId", hex);
    return 0;
}

static int operation(struct barge_tx *tx, const char *region, const char *type,
                     const char *target_kind, const char *target, json_t **out,
                     struct barge_error **err)
{
    return operation_of(tx, region, type, target_kind, target, NULL, out, err);
}

static int commit(struct barge_tx **tx, struct barge_error **err)
{
    return barge_store_commit(barge_steal(tx), err);
}

/* Commits a change to what the agents' DNS servers answer, and wakes their
 * long polls (/agent/dns). */
static int commit_dns(struct barge_api_ctx *ctx, struct barge_tx **tx, struct barge_error **err)
{
    if (commit(tx, err) < 0)
        return -1;
    barge_server_notify(ctx->srv);
    return 0;
}

/* Public fields of a stored document: everything but "_..." and "tags". */
static json_t *public_copy(const json_t *doc)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        if (k[0] != '_' && strcmp(k, "tags") != 0)
            json_object_set(out, k, v);
    }
    return out;
}

/* ---- namespaces ---- */

struct find_name {
    const char *field;
    const char *value;
    const char *field2; /* also to match, or NULL */
    const char *value2;
    json_t *found; /* borrowed copy owner */
};

static int match_name(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    struct find_name *f = ud;
    if (!barge_streq(barge_json_str(doc, f->field, NULL), f->value))
        return 0;
    if (f->field2 && !barge_streq(barge_json_str(doc, f->field2, NULL), f->value2))
        return 0;
    f->found = json_deep_copy(doc);
    return 1;
}

struct counter {
    const char *field;
    const char *value;
    json_int_t n;
};

static int count_match(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    struct counter *c = ud;
    c->n += barge_streq(barge_json_str(doc, c->field, NULL), c->value);
    return 0;
}

/* How many documents of kind in region have field == value. */
static int count_where(struct barge_tx *tx, const char *kind, const char *region, const char *field,
                       const char *value, json_int_t *n, struct barge_error **err)
{
    struct counter c = {field, value, 0};
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", region);
    int r = barge_store_scan(tx, kind, prefix, NULL, false, 0, count_match, &c, err);
    *n = c.n;
    return r;
}

static int create_namespace(struct barge_api_ctx *ctx, json_t *in, json_t **out, const char *type,
                            struct barge_error **err)
{
    const char *region = region_of(ctx);
    const char *name = barge_json_str(in, "Name", "");
    /* DNS names are matched without a trailing dot and case-insensitively,
     * but Cloud Map keeps the name as given. */
    if (strcmp(type, "HTTP") != 0 &&
        (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
             strlen(name) ||
         name[0] == '.' || strstr(name, "..")))
        return invalid(err, "namespace name '%s' is not a valid DNS name", name);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    struct find_name f = {.field = "Name", .value = name};
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", region);
    if (barge_store_scan(tx, CLOUDMAP_KIND_NAMESPACE, prefix, NULL, false, 0, match_name, &f, err) <
        0)
        return -1;
    if (f.found) {
        const char *crid = barge_json_str(in, "CreatorRequestId", NULL);
        bool same = crid && barge_streq(barge_json_str(f.found, "CreatorRequestId", NULL), crid);
        _cleanup_free_ char *id = barge_xstrdup(barge_json_str(f.found, "Id", ""));
        json_decref(f.found);
        if (same) /* a retried request */
            return operation(tx, region, "CREATE_NAMESPACE", "NAMESPACE", id, out, err) < 0
                       ? -1
                       : commit(&tx, err);
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "NamespaceAlreadyExists",
                                    "namespace '%s' already exists as '%s'", name, id);
    }
    _cleanup_free_ char *id = new_id("ns-");
    _cleanup_free_ char *arn = barge_xasprintf("arn:aws:servicediscovery:%s:%s:namespace/%s",
                                               region, ctx->srv->cfg.account_id, id);
    json_t *props =
        json_pack("{s:{}, s:{s:s}}", "DnsProperties", "HttpProperties", "HttpName", name);
    if (strcmp(type, "HTTP") != 0) {
        _cleanup_free_ char *zone = new_id("Z");
        json_int_t ttl = barge_json_int(
            barge_json_object(
                barge_json_object(barge_json_object(in, "Properties"), "DnsProperties"), "SOA"),
            "TTL", 15);
        json_object_set_new(props, "DnsProperties",
                            json_pack("{s:s, s:{s:I}}", "HostedZoneId", zone, "SOA", "TTL", ttl));
    }
    _cleanup_json_ json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:f, s:s}", "Id", id, "Arn", arn, "Name", name, "Type", type,
        "Properties", props, "CreateDate", barge_now(), "ResourceOwner", ctx->srv->cfg.account_id);
    const char *copy[] = {"Description", "CreatorRequestId"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++)
        if (json_object_get(in, copy[i]))
            json_object_set(doc, copy[i], json_object_get(in, copy[i]));
    if (barge_json_array(in, "Tags"))
        barge_api_tags_merge(doc, barge_json_array(in, "Tags"));
    _cleanup_free_ char *key = barge_cloudmap_key(region, id);
    if (barge_store_put(tx, CLOUDMAP_KIND_NAMESPACE, key, doc, err) < 0 ||
        operation(tx, region, "CREATE_NAMESPACE", "NAMESPACE", id, out, err) < 0)
        return -1;
    barge_info("cloud map: namespace %s (%s, %s) created", name, id, type);
    return commit_dns(ctx, &tx, err);
}

static int create_private_dns_namespace(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                        struct barge_error **err)
{
    return create_namespace(ctx, in, out, "DNS_PRIVATE", err);
}

static int create_http_namespace(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    return create_namespace(ctx, in, out, "HTTP", err);
}

static int create_public_dns_namespace(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    (void)ctx;
    (void)out;
    return invalid(err,
                   "public DNS namespace '%s' cannot be created: barge serves no public DNS "
                   "zone; use a private DNS or HTTP namespace",
                   barge_json_str(in, "Name", ""));
}

static json_t *namespace_view(struct barge_tx *tx, const char *region, const json_t *doc,
                              struct barge_error **err)
{
    json_int_t n = 0;
    if (count_where(tx, CLOUDMAP_KIND_SERVICE, region, "NamespaceId", barge_json_str(doc, "Id", ""),
                    &n, err) < 0)
        return NULL;
    json_t *v = public_copy(doc);
    json_object_set_new(v, "ServiceCount", json_integer(n));
    return v;
}

/* GetNamespace and GetService: {field: view of the document Id names}. */
static int
get_one(struct barge_api_ctx *ctx, const json_t *in, const char *field,
        int (*get)(struct barge_tx *, const char *, const char *, json_t **, struct barge_error **),
        json_t *(*view)(struct barge_tx *, const char *, const json_t *, struct barge_error **),
        json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        get(tx, region_of(ctx), barge_json_str(in, "Id", ""), &doc, err) < 0)
        return -1;
    json_t *v = view(tx, region_of(ctx), doc, err);
    if (!v)
        return -1;
    *out = json_pack("{s:o}", field, v);
    return 0;
}

static int get_namespace(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    return get_one(ctx, in, "Namespace", namespace_get, namespace_view, out, err);
}

/* Whether value passes a filter {Name, Values, Condition} (EQ, IN,
 * BEGINS_WITH). */
static bool filter_match(const json_t *filter, const char *value)
{
    const char *cond = barge_json_str(filter, "Condition", "EQ");
    json_t *values = barge_json_array(filter, "Values");
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v)
    {
        const char *want = json_string_value(v);
        if (!want || !value)
            continue;
        if (strcmp(cond, "BEGINS_WITH") == 0 ? barge_str_has_prefix(value, want)
                                             : strcmp(value, want) == 0)
            return true;
        if (strcmp(cond, "IN") != 0 && strcmp(cond, "BEGINS_WITH") != 0)
            break; /* EQ takes one value */
    }
    return false;
}

/* Checks filters: each names a field of fields (filter name -> field) and a
 * condition among conds. */
static int check_filters(const json_t *filters, const char *const *conds, struct barge_error **err)
{
    size_t i;
    json_t *f;
    json_array_foreach((json_t *)filters, i, f)
    {
        const char *cond = barge_json_str(f, "Condition", "EQ");
        bool ok = false;
        for (const char *const *c = conds; *c; c++)
            ok |= strcmp(*c, cond) == 0;
        if (!ok)
            return invalid(err, "condition '%s' is not supported for filter '%s'", cond,
                           barge_json_str(f, "Name", ""));
        size_t n = json_array_size(barge_json_array(f, "Values"));
        if (strcmp(cond, "EQ") == 0 && n != 1)
            return invalid(err, "filter '%s' with condition EQ takes exactly one value",
                           barge_json_str(f, "Name", ""));
    }
    return 0;
}

struct lister {
    struct barge_api_page *pg;
    const json_t *filters;
    struct barge_tx *tx;
    const char *region;
    int (*matches)(const json_t *doc, const json_t *filter);
    json_t *(*view)(struct lister *l, const json_t *doc, struct barge_error **err);
};

static int list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct lister *l = ud;
    size_t i;
    json_t *f;
    json_array_foreach((json_t *)l->filters, i, f)
    {
        if (!l->matches(doc, f))
            return 0;
    }
    json_t *v = l->view(l, doc, err);
    if (!v)
        return -1;
    return barge_api_page_add(l->pg, key, v);
}

static int list_kind(struct barge_api_ctx *ctx, json_t *in, json_t **out, const char *kind,
                     struct lister *l, const char *field, struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg;
    if (barge_api_page_init(&pg, in, "MaxResults", 100, 100, "NextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    l->pg = &pg;
    l->tx = tx;
    l->region = region_of(ctx);
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", l->region);
    if (barge_store_scan(tx, kind, prefix, pg.after, false, 0, list_one, l, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, field, "NextToken");
    return 0;
}

static int namespace_matches(const json_t *doc, const json_t *f)
{
    const char *name = barge_json_str(f, "Name", "");
    if (strcmp(name, "TYPE") == 0)
        return filter_match(f, barge_json_str(doc, "Type", NULL));
    if (strcmp(name, "NAME") == 0)
        return filter_match(f, barge_json_str(doc, "Name", NULL));
    if (strcmp(name, "HTTP_NAME") == 0)
        return filter_match(f,
                            barge_json_str(barge_json_object(barge_json_object(doc, "Properties"),
                                                             "HttpProperties"),
                                           "HttpName", NULL));
    if (strcmp(name, "RESOURCE_OWNER") == 0)
        return filter_match(f, "SELF");
    return 1;
}

static json_t *namespace_summary(struct lister *l, const json_t *doc, struct barge_error **err)
{
    return namespace_view(l->tx, l->region, doc, err);
}

static int list_namespaces(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    static const char *const conds[] = {"EQ", "IN", "BEGINS_WITH", NULL};
    const json_t *filters = barge_json_array(in, "Filters");
    if (check_filters(filters, conds, err) < 0)
        return -1;
    struct lister l = {.filters = filters, .matches = namespace_matches, .view = namespace_summary};
    return list_kind(ctx, in, out, CLOUDMAP_KIND_NAMESPACE, &l, "Namespaces", err);
}

static int delete_namespace(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                            struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        namespace_get(tx, region, barge_json_str(in, "Id", ""), &doc, err) < 0)
        return -1;
    const char *id = barge_json_str(doc, "Id", "");
    json_int_t n = 0;
    if (count_where(tx, CLOUDMAP_KIND_SERVICE, region, "NamespaceId", id, &n, err) < 0)
        return -1;
    if (n > 0)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ResourceInUse",
                                    "namespace '%s' has %lld service(s); delete them first", id,
                                    (long long)n);
    _cleanup_free_ char *key = barge_cloudmap_key(region, id);
    if (barge_store_del(tx, CLOUDMAP_KIND_NAMESPACE, key, err) < 0 ||
        operation(tx, region, "DELETE_NAMESPACE", "NAMESPACE", id, out, err) < 0)
        return -1;
    return commit_dns(ctx, &tx, err);
}

/* ---- services ---- */

static bool dns_namespace(const json_t *ns)
{
    return !barge_streq(barge_json_str(ns, "Type", NULL), "HTTP");
}

/* A DnsConfig (or DnsConfigChange) names each record type once and SRV only
 * alone or with nothing else (Cloud Map's rule: SRV with A/AAAA is fine,
 * CNAME stands alone). */
static int check_dns_records(const json_t *records, struct barge_error **err)
{
    bool seen[4] = {false};
    static const char *const types[] = {"A", "AAAA", "SRV", "CNAME"};
    size_t i;
    json_t *r;
    json_array_foreach((json_t *)records, i, r)
    {
        const char *t = barge_json_str(r, "Type", "");
        for (size_t k = 0; k < 4; k++) {
            if (strcmp(types[k], t) != 0)
                continue;
            if (seen[k])
                return invalid(err, "DnsConfig.DnsRecords names type '%s' more than once", t);
            seen[k] = true;
        }
    }
    if (seen[3] && json_array_size(records) > 1)
        return invalid(err, "DnsConfig.DnsRecords: a 'CNAME' record cannot be combined with "
                            "other record types");
    return 0;
}

static int create_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *region = region_of(ctx);
    const char *name = barge_json_str(in, "Name", "");
    json_t *dns = barge_json_object(in, "DnsConfig");
    const char *ns_id = barge_json_str(in, "NamespaceId", barge_json_str(dns, "NamespaceId", NULL));
    if (!ns_id)
        return invalid(err, "NamespaceId is required");
    if (json_object_get(in, "HealthCheckConfig") && json_object_get(in, "HealthCheckCustomConfig"))
        return invalid(err, "HealthCheckConfig and HealthCheckCustomConfig cannot both be given");
    if (json_object_get(in, "HealthCheckConfig"))
        return invalid(err, "HealthCheckConfig (Route 53 health checks) is not supported by "
                            "barge; use HealthCheckCustomConfig");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *ns = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        namespace_get(tx, region, ns_id, &ns, err) < 0)
        return -1;
    const char *type = barge_json_str(in, "Type", NULL);
    if (!dns_namespace(ns) && dns)
        return invalid(err, "namespace '%s' is an HTTP namespace; DnsConfig is not allowed",
                       barge_json_str(ns, "Id", ""));
    if (dns_namespace(ns) && !dns && !type)
        return invalid(err, "DnsConfig is required for a service in DNS namespace '%s'",
                       barge_json_str(ns, "Id", ""));
    if (dns && check_dns_records(barge_json_array(dns, "DnsRecords"), err) < 0)
        return -1;
    const char *nid = barge_json_str(ns, "Id", "");
    struct find_name f = {.field = "Name", .value = name, .field2 = "NamespaceId", .value2 = nid};
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", region);
    if (barge_store_scan(tx, CLOUDMAP_KIND_SERVICE, prefix, NULL, false, 0, match_name, &f, err) <
        0)
        return -1;
    if (f.found) {
        _cleanup_free_ char *sid = barge_xstrdup(barge_json_str(f.found, "Id", ""));
        json_decref(f.found);
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "ServiceAlreadyExists",
                                    "service '%s' already exists in namespace '%s' as '%s'", name,
                                    nid, sid);
    }
    _cleanup_free_ char *id = new_id("srv-");
    _cleanup_free_ char *arn = barge_xasprintf("arn:aws:servicediscovery:%s:%s:service/%s", region,
                                               ctx->srv->cfg.account_id, id);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:I}", "Id", id, "Arn", arn, "Name",
                  name, "NamespaceId", nid, "Type",
                  type                ? type
                  : dns_namespace(ns) ? "DNS_HTTP"
                                      : "HTTP",
                  "CreateDate", barge_now(), "ResourceOwner", ctx->srv->cfg.account_id,
                  "CreatedByAccount", ctx->srv->cfg.account_id, "_revision", (json_int_t)1);
    if (dns && (!type || strcmp(type, "HTTP") != 0)) {
        json_t *d = json_deep_copy(dns);
        json_object_del(d, "NamespaceId");
        if (!json_object_get(d, "RoutingPolicy"))
            json_object_set_new(d, "RoutingPolicy", json_string("MULTIVALUE"));
        json_object_set_new(doc, "DnsConfig", d);
    }
    const char *copy[] = {"Description", "CreatorRequestId", "HealthCheckCustomConfig"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(copy); i++)
        if (json_object_get(in, copy[i]))
            json_object_set(doc, copy[i], json_object_get(in, copy[i]));
    if (barge_json_array(in, "Tags"))
        barge_api_tags_merge(doc, barge_json_array(in, "Tags"));
    _cleanup_free_ char *key = barge_cloudmap_key(region, id);
    if (barge_store_put(tx, CLOUDMAP_KIND_SERVICE, key, doc, err) < 0 || commit(&tx, err) < 0)
        return -1;
    json_t *v = public_copy(doc);
    json_object_set_new(v, "InstanceCount", json_integer(0));
    *out = json_pack("{s:o}", "Service", v);
    return 0;
}

static json_t *service_view(struct barge_tx *tx, const char *region, const json_t *doc,
                            struct barge_error **err)
{
    _cleanup_free_ char *prefix = barge_xasprintf("%s|%s|", region, barge_json_str(doc, "Id", ""));
    int64_t n = 0;
    if (barge_store_count(tx, CLOUDMAP_KIND_INSTANCE, prefix, &n, err) < 0)
        return NULL;
    json_t *v = public_copy(doc);
    json_object_set_new(v, "InstanceCount", json_integer(n));
    return v;
}

static int get_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    return get_one(ctx, in, "Service", service_get, service_view, out, err);
}

static int service_matches(const json_t *doc, const json_t *f)
{
    const char *name = barge_json_str(f, "Name", "");
    if (strcmp(name, "NAMESPACE_ID") == 0) {
        /* Values may be ids or ARNs. */
        json_t *values = barge_json_array(f, "Values");
        size_t i;
        json_t *v;
        json_array_foreach(values, i, v)
        {
            if (barge_streq(barge_cloudmap_id_of(json_string_value(v) ? json_string_value(v) : ""),
                            barge_json_str(doc, "NamespaceId", NULL)))
                return 1;
        }
        return 0;
    }
    if (strcmp(name, "RESOURCE_OWNER") == 0)
        return filter_match(f, "SELF");
    return 1;
}

static json_t *service_summary(struct lister *l, const json_t *doc, struct barge_error **err)
{
    json_t *v = service_view(l->tx, l->region, doc, err);
    if (v) {
        json_object_del(v, "NamespaceId");
        json_object_del(v, "CreatorRequestId");
    }
    return v;
}

static int list_services(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    static const char *const conds[] = {"EQ", "IN", NULL};
    const json_t *filters = barge_json_array(in, "Filters");
    if (check_filters(filters, conds, err) < 0)
        return -1;
    struct lister l = {.filters = filters, .matches = service_matches, .view = service_summary};
    return list_kind(ctx, in, out, CLOUDMAP_KIND_SERVICE, &l, "Services", err);
}

static int update_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *region = region_of(ctx);
    json_t *change = barge_json_object(in, "Service");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "Id", ""), &doc, err) < 0)
        return -1;
    if (json_object_get(change, "HealthCheckConfig"))
        return invalid(err, "HealthCheckConfig (Route 53 health checks) is not supported by "
                            "barge; use HealthCheckCustomConfig");
    json_t *dns = barge_json_object(change, "DnsConfig");
    if (dns) {
        if (!json_object_get(doc, "DnsConfig"))
            return invalid(err, "service '%s' has no DnsConfig to update",
                           barge_json_str(doc, "Id", ""));
        if (check_dns_records(barge_json_array(dns, "DnsRecords"), err) < 0)
            return -1;
        json_object_set(barge_json_object(doc, "DnsConfig"), "DnsRecords",
                        barge_json_array(dns, "DnsRecords"));
    }
    if (json_object_get(change, "Description"))
        json_object_set(doc, "Description", json_object_get(change, "Description"));
    const char *id = barge_json_str(doc, "Id", "");
    _cleanup_free_ char *key = barge_cloudmap_key(region, id);
    if (barge_store_put(tx, CLOUDMAP_KIND_SERVICE, key, doc, err) < 0 ||
        operation(tx, region, "UPDATE_SERVICE", "SERVICE", id, out, err) < 0)
        return -1;
    return commit_dns(ctx, &tx, err);
}

static int delete_service(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "Id", ""), &doc, err) < 0)
        return -1;
    const char *id = barge_json_str(doc, "Id", "");
    _cleanup_free_ char *prefix = barge_xasprintf("%s|%s|", region, id);
    int64_t n = 0;
    if (barge_store_count(tx, CLOUDMAP_KIND_INSTANCE, prefix, &n, err) < 0)
        return -1;
    if (n > 0)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ResourceInUse",
                                    "service '%s' has %lld registered instance(s); deregister "
                                    "them first",
                                    id, (long long)n);
    _cleanup_free_ char *key = barge_cloudmap_key(region, id);
    if (barge_store_del(tx, CLOUDMAP_KIND_SERVICE, key, err) < 0 || commit(&tx, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

/* ---- instances ---- */

/* The attributes a service's DNS records need (Cloud Map's InvalidInput). */
static int check_attributes(const json_t *svc, const json_t *attrs, struct barge_error **err)
{
    if (json_object_size(attrs) > MAX_ATTRIBUTES)
        return invalid(err, "an instance has at most %d attributes; '%zu' were given",
                       MAX_ATTRIBUTES, json_object_size(attrs));
    if ((barge_cloudmap_has_record(svc, "A") || barge_cloudmap_has_record(svc, "SRV")) &&
        !json_object_get(attrs, "AWS_INSTANCE_IPV4") &&
        !json_object_get(attrs, "AWS_INSTANCE_IPV6"))
        return invalid(err,
                       "service '%s' has A or SRV records: attribute AWS_INSTANCE_IPV4 is "
                       "required",
                       barge_json_str(svc, "Id", ""));
    if (barge_cloudmap_has_record(svc, "SRV") && !json_object_get(attrs, "AWS_INSTANCE_PORT"))
        return invalid(err,
                       "service '%s' has an SRV record: attribute AWS_INSTANCE_PORT is "
                       "required",
                       barge_json_str(svc, "Id", ""));
    if (barge_cloudmap_has_record(svc, "CNAME") && !json_object_get(attrs, "AWS_INSTANCE_CNAME"))
        return invalid(err,
                       "service '%s' has a CNAME record: attribute AWS_INSTANCE_CNAME is "
                       "required",
                       barge_json_str(svc, "Id", ""));
    const char *ip = barge_json_str(attrs, "AWS_INSTANCE_IPV4", NULL);
    if (ip) {
        unsigned a, b, c, d;
        char tail;
        if (sscanf(ip, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
            c > 255 || d > 255)
            return invalid(err, "AWS_INSTANCE_IPV4 '%s' is not an IPv4 address", ip);
    }
    const char *port = barge_json_str(attrs, "AWS_INSTANCE_PORT", NULL);
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535)
            return invalid(err, "AWS_INSTANCE_PORT '%s' is not a port (1-65535)", port);
    }
    return 0;
}

static int register_instance(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "ServiceId", ""), &svc, err) < 0)
        return -1;
    json_t *attrs = barge_json_object(in, "Attributes");
    if (check_attributes(svc, attrs, err) < 0)
        return -1;
    const char *sid = barge_json_str(svc, "Id", "");
    const char *iid = barge_json_str(in, "InstanceId", "");
    const char *init = barge_json_str(attrs, "AWS_INIT_HEALTH_STATUS", "HEALTHY");
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:O, s:s, s:s}", "Id", iid, "Attributes", attrs, "CreatedByAccount",
                  ctx->srv->cfg.account_id, "_health",
                  json_object_get(svc, "HealthCheckCustomConfig") ? init : "HEALTHY");
    if (json_object_get(in, "CreatorRequestId"))
        json_object_set(doc, "CreatorRequestId", json_object_get(in, "CreatorRequestId"));
    _cleanup_free_ char *key = barge_cloudmap_instance_key(region, sid, iid);
    if (barge_store_put(tx, CLOUDMAP_KIND_INSTANCE, key, doc, err) < 0 ||
        barge_cloudmap_bump_revision(tx, region, svc, err) < 0 ||
        operation_of(tx, region, "REGISTER_INSTANCE", "INSTANCE", iid, sid, out, err) < 0)
        return -1;
    return commit_dns(ctx, &tx, err);
}

static int instance_get(struct barge_tx *tx, const char *region, const char *service_id,
                        const char *instance_id, json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *key = barge_cloudmap_instance_key(region, service_id, instance_id);
    int r = barge_store_get(tx, CLOUDMAP_KIND_INSTANCE, key, out, err);
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "InstanceNotFound",
                                    "instance '%s' not found in service '%s'", instance_id,
                                    service_id);
    return r < 0 ? -1 : 0;
}

static int deregister_instance(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                               struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *inst = NULL;
    const char *iid = barge_json_str(in, "InstanceId", "");
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "ServiceId", ""), &svc, err) < 0)
        return -1;
    const char *sid = barge_json_str(svc, "Id", "");
    if (instance_get(tx, region, sid, iid, &inst, err) < 0)
        return -1;
    _cleanup_free_ char *key = barge_cloudmap_instance_key(region, sid, iid);
    if (barge_store_del(tx, CLOUDMAP_KIND_INSTANCE, key, err) < 0 ||
        barge_cloudmap_bump_revision(tx, region, svc, err) < 0 ||
        operation_of(tx, region, "DEREGISTER_INSTANCE", "INSTANCE", iid, sid, out, err) < 0)
        return -1;
    return commit_dns(ctx, &tx, err);
}

static int get_instance(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *inst = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "ServiceId", ""), &svc, err) < 0 ||
        instance_get(tx, region, barge_json_str(svc, "Id", ""),
                     barge_json_str(in, "InstanceId", ""), &inst, err) < 0)
        return -1;
    *out = json_pack("{s:o, s:s}", "Instance", public_copy(inst), "ResourceOwner",
                     ctx->srv->cfg.account_id);
    return 0;
}

static int page_instance(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    json_t *v = public_copy(doc);
    json_object_del(v, "CreatorRequestId");
    return barge_api_page_add(ud, key, v);
}

static int list_instances(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_page_ struct barge_api_page pg;
    if (barge_api_page_init(&pg, in, "MaxResults", 100, 100, "NextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "ServiceId", ""), &svc, err) < 0)
        return -1;
    _cleanup_free_ char *prefix = barge_xasprintf("%s|%s|", region, barge_json_str(svc, "Id", ""));
    if (barge_store_scan(tx, CLOUDMAP_KIND_INSTANCE, prefix, pg.after, false, 0, page_instance, &pg,
                         err) < 0)
        return -1;
    *out = json_pack("{s:s}", "ResourceOwner", ctx->srv->cfg.account_id);
    barge_api_page_finish(&pg, *out, "Instances", "NextToken");
    return 0;
}

/* The namespace and service DiscoverInstances names, by their HTTP names. */
static int discover_target(struct barge_api_ctx *ctx, struct barge_tx *tx, const json_t *in,
                           json_t **svc, struct barge_error **err)
{
    const char *region = region_of(ctx);
    const char *ns_name = barge_json_str(in, "NamespaceName", "");
    struct find_name f = {.field = "Name", .value = ns_name};
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", region);
    if (barge_store_scan(tx, CLOUDMAP_KIND_NAMESPACE, prefix, NULL, false, 0, match_name, &f, err) <
        0)
        return -1;
    if (!f.found)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "NamespaceNotFound",
                                    "namespace '%s' not found", ns_name);
    _cleanup_json_ json_t *ns = f.found;
    struct find_name g = {.field = "Name",
                          .value = barge_json_str(in, "ServiceName", ""),
                          .field2 = "NamespaceId",
                          .value2 = barge_json_str(ns, "Id", "")};
    if (barge_store_scan(tx, CLOUDMAP_KIND_SERVICE, prefix, NULL, false, 0, match_name, &g, err) <
        0)
        return -1;
    if (!g.found)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ServiceNotFound",
                                    "service '%s' not found in namespace '%s'",
                                    barge_json_str(in, "ServiceName", ""), ns_name);
    *svc = g.found;
    return 0;
}

static bool attrs_match(const json_t *attrs, const json_t *want)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        if (!barge_streq(barge_json_str(attrs, k, NULL), json_string_value(v)))
            return false;
    }
    return true;
}

static int discover_instances(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    const char *region = region_of(ctx);
    int max = 0;
    if (barge_api_max_results(in, "MaxResults", 100, 1000, &max, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *all = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        discover_target(ctx, tx, in, &svc, err) < 0)
        return -1;
    _cleanup_free_ char *prefix = barge_xasprintf("%s|%s|", region, barge_json_str(svc, "Id", ""));
    if (barge_store_scan(tx, CLOUDMAP_KIND_INSTANCE, prefix, NULL, false, 0, barge_cloudmap_collect,
                         all, err) < 0)
        return -1;
    const char *want = barge_json_str(in, "HealthStatus", "HEALTHY");
    json_t *query = barge_json_object(in, "QueryParameters");
    json_t *optional = barge_json_object(in, "OptionalParameters");
    _cleanup_json_ json_t *matched = json_array();
    size_t i;
    json_t *inst;
    json_array_foreach(all, i, inst)
    {
        if (attrs_match(barge_json_object(inst, "Attributes"), query))
            json_array_append(matched, inst);
    }
    /* OptionalParameters narrow the result only when something matches them. */
    if (optional) {
        _cleanup_json_ json_t *narrowed = json_array();
        json_array_foreach(matched, i, inst)
        {
            if (attrs_match(barge_json_object(inst, "Attributes"), optional))
                json_array_append(narrowed, inst);
        }
        if (json_array_size(narrowed)) {
            json_decref(matched);
            matched = json_incref(narrowed);
        }
    }
    bool any_healthy = false;
    json_array_foreach(matched, i, inst)
    {
        any_healthy |= barge_streq(barge_json_str(inst, "_health", NULL), "HEALTHY");
    }
    bool all_ok =
        strcmp(want, "ALL") == 0 || (strcmp(want, "HEALTHY_OR_ELSE_ALL") == 0 && !any_healthy);
    if (strcmp(want, "HEALTHY_OR_ELSE_ALL") == 0 && any_healthy)
        want = "HEALTHY";
    json_t *list = json_array();
    json_array_foreach(matched, i, inst)
    {
        const char *health = barge_json_str(inst, "_health", "HEALTHY");
        if (!all_ok && strcmp(health, want) != 0)
            continue;
        if ((int)json_array_size(list) >= max)
            break;
        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:s, s:O, s:s}", "InstanceId", barge_json_str(inst, "Id", ""),
                      "NamespaceName", barge_json_str(in, "NamespaceName", ""), "ServiceName",
                      barge_json_str(svc, "Name", ""), "Attributes",
                      barge_json_object(inst, "Attributes"), "HealthStatus",
                      json_object_get(svc, "HealthCheckCustomConfig") ? health : "UNKNOWN"));
    }
    *out = json_pack("{s:o, s:I}", "Instances", list, "InstancesRevision",
                     barge_json_int(svc, "_revision", 1));
    return 0;
}

static int discover_instances_revision(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        discover_target(ctx, tx, in, &svc, err) < 0)
        return -1;
    *out = json_pack("{s:I}", "InstancesRevision", barge_json_int(svc, "_revision", 1));
    return 0;
}

static int get_instances_health_status(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                       struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_page_ struct barge_api_page pg;
    if (barge_api_page_init(&pg, in, "MaxResults", 100, 100, "NextToken", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *all = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "ServiceId", ""), &svc, err) < 0)
        return -1;
    _cleanup_free_ char *prefix = barge_xasprintf("%s|%s|", region, barge_json_str(svc, "Id", ""));
    if (barge_store_scan(tx, CLOUDMAP_KIND_INSTANCE, prefix, NULL, false, 0, barge_cloudmap_collect,
                         all, err) < 0)
        return -1;
    bool custom = json_object_get(svc, "HealthCheckCustomConfig") != NULL;
    json_t *only = barge_json_array(in, "Instances");
    json_t *status = json_object();
    size_t i, j;
    json_t *inst, *name;
    bool started = !pg.after;
    json_array_foreach(all, i, inst)
    {
        const char *id = barge_json_str(inst, "Id", "");
        if (!started) {
            started = strcmp(id, pg.after) == 0;
            continue;
        }
        bool wanted = !only;
        json_array_foreach(only, j, name)
        {
            wanted |= barge_streq(json_string_value(name), id);
        }
        if (!wanted)
            continue;
        if ((int)json_object_size(status) >= pg.max) {
            pg.more = true;
            break;
        }
        json_object_set_new(
            status, id,
            json_string(custom ? barge_json_str(inst, "_health", "HEALTHY") : "UNKNOWN"));
        free(pg.last);
        pg.last = barge_xstrdup(id);
    }
    *out = json_pack("{s:o}", "Status", status);
    if (pg.more && pg.last) {
        _cleanup_free_ char *tok = barge_api_token_encode(pg.last);
        json_object_set_new(*out, "NextToken", json_string(tok));
    }
    return 0;
}

static int update_instance_custom_health_status(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                                struct barge_error **err)
{
    const char *region = region_of(ctx);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *svc = NULL, *inst = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        service_get(tx, region, barge_json_str(in, "ServiceId", ""), &svc, err) < 0)
        return -1;
    const char *sid = barge_json_str(svc, "Id", "");
    const char *iid = barge_json_str(in, "InstanceId", "");
    if (instance_get(tx, region, sid, iid, &inst, err) < 0)
        return -1;
    if (!json_object_get(svc, "HealthCheckCustomConfig"))
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "CustomHealthNotFound",
                                    "service '%s' has no HealthCheckCustomConfig", sid);
    json_object_set(inst, "_health", json_object_get(in, "Status"));
    _cleanup_free_ char *key = barge_cloudmap_instance_key(region, sid, iid);
    if (barge_store_put(tx, CLOUDMAP_KIND_INSTANCE, key, inst, err) < 0 ||
        barge_cloudmap_bump_revision(tx, region, svc, err) < 0 || commit_dns(ctx, &tx, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

/* ---- operations ---- */

static int get_operation(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                         struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *op = NULL;
    const char *id = barge_json_str(in, "OperationId", "");
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    int r = barge_cloudmap_get(tx, CLOUDMAP_KIND_OPERATION, region_of(ctx), id, &op, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "OperationNotFound",
                                    "operation '%s' not found", id);
    json_object_set_new(op, "OwnerAccount", json_string(ctx->srv->cfg.account_id));
    *out = json_pack("{s:O}", "Operation", op);
    return 0;
}

static int operation_matches(const json_t *op, const json_t *f)
{
    const char *name = barge_json_str(f, "Name", "");
    json_t *targets = barge_json_object(op, "Targets");
    if (strcmp(name, "NAMESPACE_ID") == 0)
        return filter_match(f, barge_json_str(targets, "NAMESPACE", NULL));
    if (strcmp(name, "SERVICE_ID") == 0)
        return filter_match(f, barge_json_str(targets, "SERVICE", NULL));
    if (strcmp(name, "STATUS") == 0)
        return filter_match(f, barge_json_str(op, "Status", NULL));
    if (strcmp(name, "TYPE") == 0)
        return filter_match(f, barge_json_str(op, "Type", NULL));
    if (strcmp(name, "UPDATE_DATE") == 0) {
        json_t *v = barge_json_array(f, "Values");
        double t = json_number_value(json_object_get(op, "UpdateDate"));
        const char *lo = json_string_value(json_array_get(v, 0));
        const char *hi = json_string_value(json_array_get(v, 1));
        return lo && hi && t >= strtod(lo, NULL) && t <= strtod(hi, NULL);
    }
    return 1;
}

static json_t *operation_summary(struct lister *l, const json_t *op, struct barge_error **err)
{
    (void)l;
    (void)err;
    return json_pack("{s:s, s:s}", "Id", barge_json_str(op, "Id", ""), "Status",
                     barge_json_str(op, "Status", ""));
}

static int list_operations(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    static const char *const conds[] = {"EQ", "IN", "BETWEEN", NULL};
    const json_t *filters = barge_json_array(in, "Filters");
    if (check_filters(filters, conds, err) < 0)
        return -1;
    size_t i;
    json_t *f;
    json_array_foreach((json_t *)filters, i, f)
    {
        bool date = barge_streq(barge_json_str(f, "Name", NULL), "UPDATE_DATE");
        bool between = barge_streq(barge_json_str(f, "Condition", NULL), "BETWEEN");
        if (date != between)
            return invalid(err, "filter '%s': UPDATE_DATE takes BETWEEN, the others EQ or IN",
                           barge_json_str(f, "Name", ""));
        if (between && json_array_size(barge_json_array(f, "Values")) != 2)
            return invalid(err, "filter 'UPDATE_DATE' with BETWEEN takes two values");
    }
    struct lister l = {.filters = filters, .matches = operation_matches, .view = operation_summary};
    return list_kind(ctx, in, out, CLOUDMAP_KIND_OPERATION, &l, "Operations", err);
}

/* ---- tags ---- */

/* The namespace or service an ARN names (its kind in *kind, store key in
 * *key). */
static int tagged_get(struct barge_api_ctx *ctx, struct barge_tx *tx, const char *arn,
                      const char **kind, char **key, json_t **doc, struct barge_error **err)
{
    const char *id = barge_cloudmap_id_of(arn);
    *kind = strstr(arn, ":namespace/") ? CLOUDMAP_KIND_NAMESPACE
            : strstr(arn, ":service/") ? CLOUDMAP_KIND_SERVICE
                                       : NULL;
    *key = barge_cloudmap_key(region_of(ctx), id);
    int r = *kind ? barge_store_get(tx, *kind, *key, doc, err) : 0;
    if (r < 0)
        return -1;
    if (r == 0 || !barge_streq(barge_json_str(*doc, "Arn", NULL), arn))
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                                    "resource '%s' not found", arn);
    return 0;
}

static int list_tags_for_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    const char *kind;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        tagged_get(ctx, tx, barge_json_str(in, "ResourceARN", ""), &kind, &key, &doc, err) < 0)
        return -1;
    json_t *tags = barge_json_array(doc, "tags");
    *out = json_pack("{s:o}", "Tags", tags ? json_incref(tags) : json_array());
    return 0;
}

static int change_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out, bool add,
                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    const char *kind;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        tagged_get(ctx, tx, barge_json_str(in, "ResourceARN", ""), &kind, &key, &doc, err) < 0)
        return -1;
    if (add)
        barge_api_tags_merge(doc, barge_json_array(in, "Tags"));
    else
        barge_api_tags_remove(doc, barge_json_array(in, "TagKeys"));
    if (json_array_size(barge_json_array(doc, "tags")) > MAX_TAGS)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "TooManyTagsException",
                                    "resource '%s' would have more than %d tags",
                                    barge_json_str(in, "ResourceARN", ""), MAX_TAGS);
    if (barge_store_put(tx, kind, key, doc, err) < 0 || commit(&tx, err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int tag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    return change_tags(ctx, in, out, true, err);
}

static int untag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    return change_tags(ctx, in, out, false, err);
}

/* ---- for the scheduler and the DNS servers ---- */
struct ns_services {
    const char *ns_id;
    json_t *arns;
};

static int collect_ns_service(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    struct ns_services *n = ud;
    if (barge_streq(barge_json_str(doc, "NamespaceId", NULL), n->ns_id))
        json_array_append_new(n->arns, json_string(barge_json_str(doc, "Arn", "")));
    return 0;
}

int barge_cloudmap_namespace_find(struct barge_tx *tx, const char *region, const char *name_or_arn,
                                  json_t **ns, json_t **service_arns, struct barge_error **err)
{
    *ns = *service_arns = NULL;
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", region);
    if (barge_str_has_prefix(name_or_arn, "arn:")) {
        _cleanup_free_ char *r = barge_cloudmap_arn_region(name_or_arn);
        if (!r || !strstr(name_or_arn, ":namespace/"))
            return 0;
        int got = barge_cloudmap_get(tx, CLOUDMAP_KIND_NAMESPACE, r,
                                     barge_cloudmap_id_of(name_or_arn), ns, err);
        if (got <= 0)
            return got;
        free(prefix);
        prefix = barge_xasprintf("%s|", r);
    } else {
        struct find_name f = {.field = "Name", .value = name_or_arn};
        if (barge_store_scan(tx, CLOUDMAP_KIND_NAMESPACE, prefix, NULL, false, 0, match_name, &f,
                             err) < 0)
            return -1;
        if (!f.found)
            return 0;
        *ns = f.found;
    }
    struct ns_services n = {barge_json_str(*ns, "Id", ""), json_array()};
    if (barge_store_scan(tx, CLOUDMAP_KIND_SERVICE, prefix, NULL, false, 0, collect_ns_service, &n,
                         err) < 0) {
        json_decref(n.arns);
        json_decref(*ns);
        *ns = NULL;
        return -1;
    }
    *service_arns = n.arns;
    return 1;
}

int barge_cloudmap_service_ensure(struct barge_tx *tx, const char *region, const char *account,
                                  const json_t *ns, const char *name, json_t **svc,
                                  struct barge_error **err)
{
    *svc = NULL;
    const char *nid = barge_json_str(ns, "Id", "");
    struct find_name f = {.field = "Name", .value = name, .field2 = "NamespaceId", .value2 = nid};
    _cleanup_free_ char *prefix = barge_xasprintf("%s|", region);
    if (barge_store_scan(tx, CLOUDMAP_KIND_SERVICE, prefix, NULL, false, 0, match_name, &f, err) <
        0)
        return -1;
    if (f.found) {
        *svc = f.found;
        return 0;
    }
    _cleanup_free_ char *id = new_id("srv-");
    _cleanup_free_ char *arn =
        barge_xasprintf("arn:aws:servicediscovery:%s:%s:service/%s", region, account, id);
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:I, s:{s:i}}", "Id", id, "Arn", arn,
                  "Name", name, "NamespaceId", nid, "Type", "HTTP", "CreateDate", barge_now(),
                  "ResourceOwner", account, "CreatedByAccount", account, "_revision", (json_int_t)1,
                  "HealthCheckCustomConfig", "FailureThreshold", 1);
    _cleanup_free_ char *key = barge_cloudmap_key(region, id);
    if (barge_store_put(tx, CLOUDMAP_KIND_SERVICE, key, doc, err) < 0) {
        json_decref(doc);
        return -1;
    }
    *svc = doc;
    return 1;
}

struct dns_walk {
    struct barge_tx *tx;
    char *hosts;
    size_t len;
    json_t *domains;
    json_t *srv;        /* [[name, target, port], ...] */
    json_t *namespaces; /* {"<region>|<id>": name} of DNS namespaces */
};

static int walk_namespace(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    struct dns_walk *w = ud;
    if (!dns_namespace(doc))
        return 0;
    json_object_set_new(w->namespaces, key, json_string(barge_json_str(doc, "Name", "")));
    json_array_append_new(w->domains, json_string(barge_json_str(doc, "Name", "")));
    return 0;
}

static void add_host(struct dns_walk *w, const char *ip, const char *name)
{
    _cleanup_free_ char *line = barge_xasprintf("%s %s\n", ip, name);
    size_t n = strlen(line);
    w->hosts = barge_xrealloc(w->hosts, w->len + n + 1);
    memcpy(w->hosts + w->len, line, n + 1);
    w->len += n;
}

/* A service's A record answers <service>.<namespace> with each healthy
 * instance's address; its SRV record answers it with "1 1 port
 * <instance id>.<service>.<namespace>", a name Cloud Map gives an A record
 * of the instance's address. */
static int walk_service(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct dns_walk *w = ud;
    bool a = barge_cloudmap_has_record(doc, "A"), srv = barge_cloudmap_has_record(doc, "SRV");
    if (!a && !srv)
        return 0;
    const char *bar = strchr(key, '|');
    _cleanup_free_ char *region = barge_xstrndup(key, (size_t)(bar - key));
    _cleanup_free_ char *nskey = barge_cloudmap_key(region, barge_json_str(doc, "NamespaceId", ""));
    const char *ns = json_string_value(json_object_get(w->namespaces, nskey));
    if (!ns)
        return 0;
    _cleanup_json_ json_t *all = json_array();
    _cleanup_free_ char *prefix = barge_xasprintf("%s|%s|", region, barge_json_str(doc, "Id", ""));
    if (barge_store_scan(w->tx, CLOUDMAP_KIND_INSTANCE, prefix, NULL, false, 0,
                         barge_cloudmap_collect, all, err) < 0)
        return -1;
    _cleanup_free_ char *name = barge_xasprintf("%s.%s", barge_json_str(doc, "Name", ""), ns);
    size_t i;
    json_t *inst;
    json_array_foreach(all, i, inst)
    {
        json_t *attrs = barge_json_object(inst, "Attributes");
        const char *ip = barge_json_str(attrs, "AWS_INSTANCE_IPV4", NULL);
        if (!ip || !barge_streq(barge_json_str(inst, "_health", "HEALTHY"), "HEALTHY"))
            continue;
        if (a)
            add_host(w, ip, name);
        long port = strtol(barge_json_str(attrs, "AWS_INSTANCE_PORT", "0"), NULL, 10);
        if (!srv || port < 1 || port > 65535)
            continue;
        _cleanup_free_ char *target =
            barge_xasprintf("%s.%s", barge_json_str(inst, "Id", ""), name);
        add_host(w, ip, target);
        json_array_append_new(w->srv, json_pack("[s, s, i]", name, target, (int)port));
    }
    return 0;
}

int barge_cloudmap_dns_records(struct barge_tx *tx, char **hosts, json_t **domains, json_t **srv,
                               struct barge_error **err)
{
    struct dns_walk w = {
        .tx = tx, .hosts = barge_xstrdup(""), .domains = json_array(), .srv = json_array()};
    w.namespaces = json_object();
    int r =
        barge_store_scan(tx, CLOUDMAP_KIND_NAMESPACE, "", NULL, false, 0, walk_namespace, &w, err);
    if (r >= 0)
        r = barge_store_scan(tx, CLOUDMAP_KIND_SERVICE, "", NULL, false, 0, walk_service, &w, err);
    json_decref(w.namespaces);
    if (r < 0) {
        free(w.hosts);
        json_decref(w.domains);
        json_decref(w.srv);
        return -1;
    }
    *hosts = w.hosts;
    *domains = w.domains;
    *srv = w.srv;
    return 0;
}

static const struct barge_api_op cloudmap_ops[] = {
    {"CreatePrivateDnsNamespace", create_private_dns_namespace},
    {"CreatePublicDnsNamespace", create_public_dns_namespace},
    {"CreateHttpNamespace", create_http_namespace},
    {"GetNamespace", get_namespace},
    {"ListNamespaces", list_namespaces},
    {"DeleteNamespace", delete_namespace},
    {"CreateService", create_service},
    {"GetService", get_service},
    {"ListServices", list_services},
    {"UpdateService", update_service},
    {"DeleteService", delete_service},
    {"RegisterInstance", register_instance},
    {"DeregisterInstance", deregister_instance},
    {"GetInstance", get_instance},
    {"ListInstances", list_instances},
    {"DiscoverInstances", discover_instances},
    {"DiscoverInstancesRevision", discover_instances_revision},
    {"GetInstancesHealthStatus", get_instances_health_status},
    {"UpdateInstanceCustomHealthStatus", update_instance_custom_health_status},
    {"GetOperation", get_operation},
    {"ListOperations", list_operations},
    {"ListTagsForResource", list_tags_for_resource},
    {"TagResource", tag_resource},
    {"UntagResource", untag_resource},
    {NULL, NULL},
};

static const struct barge_api_op *const cloudmap_tables[] = {cloudmap_ops, NULL};

const struct barge_api_service barge_api_cloudmap = {
    .model = "servicediscovery",
    .message_key = "Message",
    .invalid_type = "InvalidInput",
    .client_type = "InvalidInput",
    .server_type = "InternalFailure",
    .not_found_type = "ServiceNotFound",
    .op_tables = cloudmap_tables,
};
