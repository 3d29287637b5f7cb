/* Elastic Load Balancing v2 as the rest of barged sees it (svc/elbv2.h):
 * the store layout, loading resources by ARN, which load balancers forward
 * to a target group, and its targets' health as the load balancers' HAProxy
 * reports it. The API is api/elbv2.c; the data plane (control/lb.c,
 * net/haproxy.c) and the service scheduler (control/services.c) read the
 * same documents. */
#include "svc/elbv2.h"

#include <stdlib.h>
#include <string.h>

#include "common/arn.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sigv4.h"
#include "net/haproxy.h"

#define ECDHE_GCM                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
    "ECDHE-RSA-AES256-GCM-SHA384"
#define ECDHE_CBC_SHA2                                                             \
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:" \
    "ECDHE-RSA-AES256-SHA384"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* ELB's policies by the protocol versions and ciphers each allows. */
const struct barge_elb_ssl_policy barge_elb_ssl_policies[] = {
    {"ELBSecurityPolicy-TLS13-1-2-2021-06", "TLSv1.2", "TLSv1.3", ECDHE_GCM ":" ECDHE_CBC_SHA2,
     TLS13_SUITES},
    {"ELBSecurityPolicy-2016-08", "TLSv1.0", "TLSv1.2",
     ECDHE_GCM ":" ECDHE_CBC_SHA2
               ":ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
               "ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA:"
               "AES256-GCM-SHA384:AES256-SHA256:AES256-SHA",
     NULL},
    {"ELBSecurityPolicy-TLS-1-2-2017-01", "TLSv1.2", "TLSv1.2",
     ECDHE_GCM ":" ECDHE_CBC_SHA2
               ":AES128-GCM-SHA256:AES128-SHA256:AES256-GCM-SHA384:AES256-SHA256",
     NULL},
    {"ELBSecurityPolicy-FS-1-2-Res-2020-10", "TLSv1.2", "TLSv1.2", ECDHE_GCM, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

const struct barge_elb_ssl_policy *barge_elb_ssl_policy(const char *name)
{
    for (const struct barge_elb_ssl_policy *p = barge_elb_ssl_policies; name && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

bool barge_elb_listener_uses_cert(const json_t *doc, const char *cert_arn)
{
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(doc, "Certificates"), i, c)
    {
        if (barge_streq(barge_json_str(c, "CertificateArn", ""), cert_arn))
            return true;
    }
    return barge_json_has_string(barge_json_array(doc, "_certs"), cert_arn);
}

char *barge_elb_dir(const struct barge_server *srv)
{
    return barge_xasprintf("%s/lb", srv->cfg.data_dir);
}

char *barge_elb_proc_name(const char *lb_arn)
{
    struct barge_arn a = {0};
    char *out = NULL;
    if (lb_arn && barge_arn_parse(lb_arn, &a) == 0 && a.resource) {
        /* "loadbalancer/app/NAME/ID": neither a region nor a name has a dot. */
        const char *p = strchr(a.resource, '/');
        p = p ? strchr(p + 1, '/') : NULL;
        const char *e = p ? strchr(p + 1, '/') : NULL;
        if (e)
            out = barge_xasprintf("%s.%.*s", a.region ? a.region : "", (int)(e - p - 1), p + 1);
    }
    barge_arn_release(&a);
    return out ? out : barge_xstrdup("invalid");
}

char *barge_elb_socket(const struct barge_server *srv, const char *lb_arn)
{
    _cleanup_free_ char *name = barge_elb_proc_name(lb_arn);
    _cleanup_free_ char *path = barge_xasprintf("%s/lb/%s.sock", srv->cfg.data_dir, name);
    return barge_haproxy_socket_path(path, "lb");
}

bool barge_elb_forwards_to(const json_t *doc, const char *tg_arn)
{
    size_t i;
    json_t *f;
    json_array_foreach(barge_json_array(doc, "_forward"), i, f)
    {
        if (barge_streq(barge_json_str(f, "TargetGroupArn", ""), tg_arn))
            return true;
    }
    return barge_streq(barge_json_str(doc, "_tg", ""), tg_arn);
}

char *barge_elb_backend_name(const char *tg_name)
{
    return barge_xasprintf("tg-%s", tg_name);
}

char *barge_elb_server_name(const char *id, json_int_t port)
{
    return barge_xasprintf("%s-%lld", id, (long long)port);
}

json_int_t barge_elb_deregistration_delay(const json_t *tg)
{
    const char *v = barge_json_str(barge_json_object(tg, "_attributes"),
                                   "deregistration_delay.timeout_seconds", "300");
    return atoll(v);
}

char *barge_elb_arn_part(const char *arn, const char *kind, size_t i)
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

json_t *barge_elb_load_keyed(struct barge_tx *tx, const char *store_kind, const char *key,
                             const char *arn_field, const char *arn, const char *not_found,
                             const char *what, struct barge_error **err)
{
    json_t *doc = NULL;
    if (key && barge_store_get(tx, store_kind, key, &doc, err) < 0)
        return NULL;
    if (!doc || !barge_streq(barge_json_str(doc, arn_field, ""), arn)) {
        json_decref(doc);
        barge_error_set_type(err, BARGE_ERR_NOT_FOUND, not_found, "%s '%s' not found", what, arn);
        return NULL;
    }
    return doc;
}

json_t *barge_elb_load_by_arn(struct barge_tx *tx, const char *store_kind, const char *arn_kind,
                              size_t name_at, const char *arn_field, const char *arn,
                              const char *not_found, const char *what, struct barge_error **err)
{
    _cleanup_free_ char *name = barge_elb_arn_part(arn, arn_kind, name_at);
    if (!name) {
        barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                             "'%s' is not a valid %s ARN", arn ? arn : "", what);
        return NULL;
    }
    return barge_elb_load_keyed(tx, store_kind, name, arn_field, arn, not_found, what, err);
}

json_t *barge_elb_load_tg(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    return barge_elb_load_by_arn(tx, ELB_KIND_TG, "targetgroup", 1, "TargetGroupArn", arn,
                                 "TargetGroupNotFound", "Target group", err);
}

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    json_array_append(ud, doc);
    return 0;
}

json_t *barge_elb_scan_all(struct barge_tx *tx, const char *kind, const char *prefix,
                           struct barge_error **err)
{
    json_t *all = json_array();
    if (barge_store_scan(tx, kind, prefix, NULL, false, 0, collect, all, err) < 0) {
        json_decref(all);
        return NULL;
    }
    return all;
}

json_t *barge_elb_tg_load_balancers(const json_t *users, const char *tg_arn)
{
    json_t *arns = json_array();
    size_t i;
    json_t *l;
    json_array_foreach((json_t *)users, i, l)
    {
        const char *lb = barge_json_str(l, "LoadBalancerArn", barge_json_str(l, "_lb", ""));
        if (barge_elb_forwards_to(l, tg_arn) && !barge_json_has_string(arns, lb))
            json_array_append_new(arns, json_string(lb));
    }
    return arns;
}

json_t *barge_elb_scan_users(struct barge_tx *tx, struct barge_error **err)
{
    json_t *all = barge_elb_scan_all(tx, ELB_KIND_LISTENER, "", err);
    _cleanup_json_ json_t *rules = all ? barge_elb_scan_all(tx, ELB_KIND_RULE, "", err) : NULL;
    if (!rules) {
        json_decref(all);
        return NULL;
    }
    json_array_extend(all, rules);
    return all;
}

json_t *barge_elb_scan_tg_load_balancers(struct barge_tx *tx, const char *tg_arn,
                                         struct barge_error **err)
{
    _cleanup_json_ json_t *users = barge_elb_scan_users(tx, err);
    return users ? barge_elb_tg_load_balancers(users, tg_arn) : NULL;
}

json_t *barge_elb_health(const char *state, const char *reason, const char *desc)
{
    json_t *h = json_pack("{s:s}", "State", state);
    if (reason)
        json_object_set_new(h, "Reason", json_string(reason));
    if (desc)
        json_object_set_new(h, "Description", json_string(desc));
    return h;
}

json_t *barge_elb_target_health(const json_t *tg, const json_t *t, bool in_use, const json_t *srv)
{
    if (barge_streq(barge_json_str(t, "State", ""), "draining"))
        return barge_elb_health("draining", "Target.DeregistrationInProgress",
                                "Target deregistration is in progress");
    if (!in_use)
        return barge_elb_health(
            "unused", "Target.NotInUse",
            "Target group is not configured to receive traffic from the load balancer");
    if (!barge_json_bool(tg, "HealthCheckEnabled", true))
        return barge_elb_health("unavailable", "Target.HealthCheckDisabled",
                                "Health checks are disabled");
    if (!srv)
        return barge_elb_health("initial", "Elb.RegistrationInProgress",
                                "Target registration is in progress");
    const char *status = barge_json_str(srv, "status", "");
    const char *check = barge_json_str(srv, "check_status", "");
    if (!strcmp(check, "INI") || barge_str_has_prefix(status, "MAINT"))
        return barge_elb_health("initial", "Elb.InitialHealthChecking", "Initial health checking");
    if (barge_str_has_prefix(status, "UP"))
        return barge_elb_health("healthy", NULL, NULL);
    /* Down while its checks pass: still short of the healthy threshold. */
    if (!strcmp(check, "L7OK") || !strcmp(check, "L4OK") || !strcmp(check, "L6OK"))
        return barge_elb_health("initial", "Elb.InitialHealthChecking", "Initial health checking");
    if (!strcmp(check, "L7STS"))
        return barge_elb_health("unhealthy", "Target.ResponseCodeMismatch",
                                "Health checks failed with a response code that does not match");
    if (!strcmp(check, "L4TOUT") || !strcmp(check, "L7TOUT"))
        return barge_elb_health("unhealthy", "Target.Timeout", "Request timed out");
    return barge_elb_health("unhealthy", "Target.FailedHealthChecks", "Health checks failed");
}

json_t *barge_elb_backend_stats(struct barge_server *srv, const json_t *tg, const json_t *lbs,
                                bool log_failure)
{
    if (!json_array_size(lbs))
        return NULL;
    _cleanup_free_ char *sock = barge_elb_socket(srv, json_string_value(json_array_get(lbs, 0)));
    _cleanup_error_ struct barge_error *herr = NULL;
    _cleanup_json_ json_t *stats = barge_haproxy_servers(sock, &herr);
    if (!stats && log_failure)
        barge_debug("reading target health of '%s': %s", barge_json_str(tg, "TargetGroupArn", ""),
                    herr->message);
    _cleanup_free_ char *backend =
        barge_elb_backend_name(barge_json_str(tg, "TargetGroupName", ""));
    return json_incref(json_object_get(stats, backend));
}

json_t *barge_elb_tg_find(struct barge_tx *tx, const char *arn, bool *in_use,
                          struct barge_error **err)
{
    json_t *tg = barge_elb_load_tg(tx, arn, err);
    if (!tg)
        return NULL;
    _cleanup_json_ json_t *lbs = barge_elb_scan_tg_load_balancers(tx, arn, err);
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
        barge_elb_scan_tg_load_balancers(tx, barge_json_str(tg, "TargetGroupArn", ""), err);
    if (!lbs)
        return NULL;
    _cleanup_json_ json_t *be = barge_elb_backend_stats(srv, tg, lbs, false);
    json_t *out = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(tg, "_targets"), i, t)
    {
        _cleanup_free_ char *sname =
            barge_elb_server_name(barge_json_str(t, "Id", ""), barge_json_int(t, "Port", 0));
        _cleanup_json_ json_t *h =
            barge_elb_target_health(tg, t, json_array_size(lbs) > 0, json_object_get(be, sname));
        json_object_set_new(out, sname, json_string(barge_json_str(h, "State", "")));
    }
    return out;
}
