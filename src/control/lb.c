/* Keeps one HAProxy process per load balancer that has listeners in step
 * with the store (svc/elbv2.h). A pass builds each load balancer's
 * description (listeners, target groups, targets), starts HAProxy where none
 * runs, replaces it (-sf: the old one finishes its connections) when
 * listeners or health checks changed, and otherwise applies target changes
 * through the admin socket: a new target is added with its health down, so
 * that it takes traffic only once its checks pass; a deregistered one is
 * drained and its deregistration completes (it leaves the store, then
 * HAProxy) when it has no connection left or after the target group's deregistration delay.
 *
 * barged stopping, or losing the leadership to another barged (whose own
 * processes then take the ports), stops its HAProxy processes. A barged that
 * was killed leaves them serving; the next one finds them through their pid
 * files and takes over with -sf, so traffic is not cut then either. */
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "control/control.h"
#include "ecs/ecs.h"
#include "net/haproxy.h"
#include "svc/acm.h"
#include "svc/elbv2.h"

struct lb_proc {
    char *name;
    pid_t pid;
    char *shape;      /* the configuration without servers it was started with */
    json_t *servers;  /* {backend: {server: {"drain": bool}}} as it runs now */
    int64_t retry_at; /* after an exit, no new start before (monotonic ms) */
    struct lb_proc *next;
};

static struct lb_proc *procs;
static pthread_mutex_t procs_lock = PTHREAD_MUTEX_INITIALIZER;
static bool adopted;    /* the pid files of a previous barged were looked at */
static json_t *stale;   /* {lb name: pid} of HAProxy left by a killed barged */
static json_t *retired; /* [pid]: replaced processes still finishing */

static void reap_retired(void)
{
    for (size_t i = 0; i < json_array_size(retired);) {
        pid_t pid = (pid_t)json_integer_value(json_array_get(retired, i));
        if (waitpid(pid, NULL, WNOHANG) != 0)
            json_array_remove(retired, i);
        else
            i++;
    }
}

static bool alive(pid_t pid)
{
    int status;
    return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

static char *path_of(struct barge_server *srv, const char *name, const char *ext)
{
    _cleanup_free_ char *dir = barge_elb_dir(srv);
    return barge_xasprintf("%s/%s.%s", dir, name, ext);
}

/* A pid file's process, when it is still an HAProxy running cfg_path. */
static pid_t stale_pid(const char *pid_path, const char *cfg_path)
{
    _cleanup_free_ char *text = barge_read_file(pid_path, NULL);
    pid_t pid = text ? (pid_t)atoi(text) : 0;
    if (pid <= 0)
        return 0;
    _cleanup_free_ char *cmd_path = barge_xasprintf("/proc/%d/cmdline", (int)pid);
    size_t len = 0;
    _cleanup_free_ char *cmd = barge_read_file(cmd_path, &len);
    if (!cmd)
        return 0;
    bool haproxy = false, ours = false;
    for (size_t off = 0; off < len; off += strlen(cmd + off) + 1) {
        haproxy |= barge_str_has_suffix(cmd + off, "haproxy") && off == 0;
        ours |= barge_streq(cmd + off, cfg_path);
    }
    return haproxy && ours ? pid : 0;
}

static void adopt_previous(struct barge_server *srv)
{
    stale = json_object();
    retired = json_array();
    _cleanup_free_ char *dir = barge_elb_dir(srv);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!barge_str_has_suffix(e->d_name, ".pid"))
            continue;
        _cleanup_free_ char *name = barge_xstrndup(e->d_name, strlen(e->d_name) - 4);
        _cleanup_free_ char *pid_path = path_of(srv, name, "pid");
        _cleanup_free_ char *cfg_path = path_of(srv, name, "cfg");
        pid_t pid = stale_pid(pid_path, cfg_path);
        if (pid > 0) {
            barge_info("load balancer %s: taking over HAProxy %d of a previous barged", name,
                       (int)pid);
            json_object_set_new(stale, name, json_integer(pid));
        }
    }
    closedir(d);
}

static struct lb_proc *find_proc(const char *name)
{
    for (struct lb_proc *p = procs; p; p = p->next)
        if (barge_streq(p->name, name))
            return p;
    return NULL;
}

static void proc_free(struct lb_proc *p)
{
    free(p->name);
    free(p->shape);
    json_decref(p->servers);
    free(p);
}

/* Removes the files in dir (the certificates of a load balancer). */
static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *path = barge_xasprintf("%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void stop_proc(struct barge_server *srv, struct lb_proc *p, bool wait)
{
    if (alive(p->pid)) {
        kill(p->pid, SIGTERM);
        if (wait)
            waitpid(p->pid, NULL, 0);
        else
            json_array_append_new(retired, json_integer(p->pid));
    }
    const char *const exts[] = {"pid", "cfg", "sock"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(exts); i++) {
        _cleanup_free_ char *path = path_of(srv, p->name, exts[i]);
        unlink(path);
    }
    _cleanup_free_ char *tls = path_of(srv, p->name, "tls");
    clear_dir(tls);
    rmdir(tls);
}

/* ---- the desired state ---- */

struct snapshot {
    json_t *lbs, *tgs, *listeners, *rules;
    json_t *certs; /* {ARN: ACM certificate document} */
    json_t *hosts; /* {EC2 instance id: address}: where instance targets are */
};

static int collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    json_array_append(ud, doc);
    return 0;
}

static int collect_host(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    const char *addr = barge_json_str(doc, "_address", NULL);
    if (addr)
        json_object_set_new(ud, barge_json_str(doc, "ec2InstanceId", ""), json_string(addr));
    return 0;
}

static int collect_cert(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)key;
    (void)err;
    json_object_set(ud, barge_json_str(doc, "arn", ""), doc);
    return 0;
}

static int load_region(struct barge_server *srv, struct snapshot *s, const char *region,
                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    size_t first_tg = json_array_size(s->tgs);
    if (barge_store_begin(srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_INSTANCE, "", NULL, false, 0, collect_host, s->hosts, err) <
            0 ||
        barge_store_scan(tx, ELB_KIND_LB, "", NULL, false, 0, collect, s->lbs, err) < 0 ||
        barge_store_scan(tx, ELB_KIND_TG, "", NULL, false, 0, collect, s->tgs, err) < 0 ||
        barge_store_scan(tx, ELB_KIND_LISTENER, "", NULL, false, 0, collect, s->listeners, err) <
            0 ||
        barge_store_scan(tx, ELB_KIND_RULE, "", NULL, false, 0, collect, s->rules, err) < 0 ||
        barge_store_scan(tx, ACM_KIND_CERT, "", NULL, false, 0, collect_cert, s->certs, err) < 0)
        return -1;
    /* Where finish_draining writes a target group back. */
    for (size_t i = first_tg; i < json_array_size(s->tgs); i++)
        json_object_set_new(json_array_get(s->tgs, i), "_region", json_string(region));
    return 0;
}

/* The load balancers of every region: their HAProxy processes share this
 * host's ports, and are named by region and name (barge_elb_proc_name). */
static int load_snapshot(struct barge_server *srv, struct snapshot *s, struct barge_error **err)
{
    s->lbs = json_array();
    s->tgs = json_array();
    s->listeners = json_array();
    s->rules = json_array();
    s->hosts = json_object();
    s->certs = json_object();
    _cleanup_json_ json_t *regions = NULL;
    if (barge_store_regions(srv->store, &regions, err) < 0)
        return -1;
    size_t i;
    json_t *r;
    int ret = 0;
    json_array_foreach(regions, i, r)
    {
        barge_store_use_region(json_string_value(r));
        if ((ret = load_region(srv, s, json_string_value(r), err)) < 0)
            break;
    }
    barge_store_use_region(NULL);
    return ret;
}

static void snapshot_release(struct snapshot *s)
{
    json_decref(s->lbs);
    json_decref(s->tgs);
    json_decref(s->listeners);
    json_decref(s->rules);
    json_decref(s->hosts);
    json_decref(s->certs);
}

static const json_t *tg_by_arn(const struct snapshot *s, const char *arn)
{
    size_t i;
    json_t *tg;
    json_array_foreach(s->tgs, i, tg)
    {
        if (barge_streq(barge_json_str(tg, "TargetGroupArn", ""), arn))
            return tg;
    }
    return NULL;
}

static json_t *backend_of(const struct snapshot *s, const json_t *tg)
{
    bool instance = barge_streq(barge_json_str(tg, "TargetType", ""), "instance");
    const char *hc_port = barge_json_str(tg, "HealthCheckPort", "traffic-port");
    json_t *check = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "enabled",
                              barge_json_bool(tg, "HealthCheckEnabled", true), "protocol",
                              barge_json_str(tg, "HealthCheckProtocol", "HTTP"), "path",
                              barge_json_str(tg, "HealthCheckPath", "/"), "interval",
                              barge_json_int(tg, "HealthCheckIntervalSeconds", 30), "timeout",
                              barge_json_int(tg, "HealthCheckTimeoutSeconds", 5), "rise",
                              barge_json_int(tg, "HealthyThresholdCount", 5), "fall",
                              barge_json_int(tg, "UnhealthyThresholdCount", 2), "codes",
                              barge_json_str(barge_json_object(tg, "Matcher"), "HttpCode", "200"));
    if (strcmp(hc_port, "traffic-port") != 0)
        json_object_set_new(check, "port", json_integer(atoi(hc_port)));
    json_t *servers = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(tg, "_targets"), i, t)
    {
        const char *addr = instance ? barge_json_str(s->hosts, barge_json_str(t, "Id", ""), NULL)
                                    : barge_json_str(t, "Id", "");
        if (!addr)
            continue; /* an instance whose address barged does not know */
        _cleanup_free_ char *name =
            barge_elb_server_name(barge_json_str(t, "Id", ""), barge_json_int(t, "Port", 0));
        json_object_set_new(servers, name,
                            json_pack("{s:s, s:I, s:b}", "addr", addr, "port",
                                      barge_json_int(t, "Port", 0), "drain",
                                      barge_streq(barge_json_str(t, "State", ""), "draining")));
    }
    return json_pack("{s:o, s:o}", "check", check, "servers", servers);
}

static int by_priority(const void *a, const void *b)
{
    json_int_t x = barge_json_int(*(json_t *const *)a, "_priority", 0);
    json_int_t y = barge_json_int(*(json_t *const *)b, "_priority", 0);
    return x < y ? -1 : x > y;
}

/* The values of the rule's condition on field ([] when it has none). */
static json_t *condition(const json_t *rule, const char *field)
{
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(rule, "Conditions"), i, c)
    {
        if (barge_streq(barge_json_str(c, "Field", ""), field))
            return json_incref(barge_json_array(c, "Values"));
    }
    return json_array();
}

/* The rule's conditions beyond paths and hosts, as the spec has them:
 * "headers" [{"name", "values"}] and "queries" [[{"key"?, "value"}]] (one
 * entry per condition: each must match), "methods" and "sources" (values). */
static void other_conditions(const json_t *rule, json_t *out)
{
    json_t *headers = json_array(), *queries = json_array();
    json_t *methods = json_array(), *sources = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(rule, "Conditions"), i, c)
    {
        const char *field = barge_json_str(c, "Field", "");
        if (barge_streq(field, "http-header")) {
            json_t *cfg = barge_json_object(c, "HttpHeaderConfig");
            json_array_append_new(headers, json_pack("{s:s, s:O}", "name",
                                                     barge_json_str(cfg, "HttpHeaderName", ""),
                                                     "values", barge_json_array(cfg, "Values")));
        } else if (barge_streq(field, "query-string")) {
            json_t *pairs = json_array();
            size_t j;
            json_t *p;
            json_array_foreach(
                barge_json_array(barge_json_object(c, "QueryStringConfig"), "Values"), j, p)
            {
                json_t *pair = json_pack("{s:s}", "value", barge_json_str(p, "Value", ""));
                if (json_object_get(p, "Key"))
                    json_object_set_new(pair, "key", json_string(barge_json_str(p, "Key", "")));
                json_array_append_new(pairs, pair);
            }
            json_array_append_new(queries, pairs);
        } else if (barge_streq(field, "http-request-method")) {
            json_array_extend(
                methods,
                barge_json_array(barge_json_object(c, "HttpRequestMethodConfig"), "Values"));
        } else if (barge_streq(field, "source-ip")) {
            json_array_extend(sources,
                              barge_json_array(barge_json_object(c, "SourceIpConfig"), "Values"));
        }
    }
    json_object_set_new(out, "headers", headers);
    json_object_set_new(out, "queries", queries);
    json_object_set_new(out, "methods", methods);
    json_object_set_new(out, "sources", sources);
}

/* What the listener or rule doc forwards to, as the spec has it
 * ([{"backend", "weight"}]); the backends it uses join backends, and those
 * of a sticky forward get the stickiness duration ("sticky"). NULL when none
 * of its target groups exists. */
static json_t *forward_of(const struct snapshot *s, const json_t *doc, json_t *backends)
{
    json_t *groups = barge_json_array(doc, "_forward");
    _cleanup_json_ json_t *one = NULL;
    if (!json_array_size(groups)) {
        one = json_pack("[{s:s, s:i}]", "TargetGroupArn", barge_json_str(doc, "_tg", ""), "Weight",
                        1);
        groups = one;
    }
    json_t *sticky = barge_json_object(doc, "_stickiness");
    json_int_t duration = barge_json_bool(sticky, "Enabled", false)
                              ? barge_json_int(sticky, "DurationSeconds", 3600)
                              : 0;
    json_t *out = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        const json_t *tg = tg_by_arn(s, barge_json_str(g, "TargetGroupArn", ""));
        if (!tg)
            continue;
        _cleanup_free_ char *be = barge_elb_backend_name(barge_json_str(tg, "TargetGroupName", ""));
        json_t *b = json_object_get(backends, be);
        if (!b) {
            b = backend_of(s, tg);
            json_object_set_new(backends, be, b);
        }
        if (duration > barge_json_int(b, "sticky", 0))
            json_object_set_new(b, "sticky", json_integer(duration));
        json_array_append_new(
            out, json_pack("{s:s, s:I}", "backend", be, "weight", barge_json_int(g, "Weight", 1)));
    }
    if (!json_array_size(out)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* What the listener or rule doc answers itself, as the spec has it
 * ({"redirect": ...} or {"fixed": ...}, a new reference), or NULL when it
 * forwards. */
static json_t *answer_of(const json_t *doc)
{
    json_t *r = json_object_get(doc, "_redirect");
    if (r)
        return json_pack("{s:O}", "redirect", r);
    json_t *f = json_object_get(doc, "_fixed");
    if (f)
        return json_pack("{s:O}", "fixed", f);
    return NULL;
}

/* The listener's rules in priority order as the spec has them
 * ({"forward", "sticky", "paths", "hosts", "headers", "queries", "methods",
 * "sources"}, and "redirect" or "fixed" for
 * those that answer themselves); the backends they use join
 * backends. */
static json_t *listener_rules(const struct snapshot *s, const json_t *listener, json_t *backends)
{
    json_t *mine = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(s->rules, i, r)
    {
        if (barge_streq(barge_json_str(r, "_listener", ""),
                        barge_json_str(listener, "ListenerArn", "")))
            json_array_append(mine, r);
    }
    size_t n = json_array_size(mine);
    json_t **items = barge_xcalloc(n ? n : 1, sizeof(*items));
    for (i = 0; i < n; i++)
        items[i] = json_array_get(mine, i);
    qsort(items, n, sizeof(*items), by_priority);
    json_t *out = json_array();
    for (i = 0; i < n; i++) {
        json_t *answer = answer_of(items[i]);
        json_t *fwd = answer ? json_array() : forward_of(s, items[i], backends);
        if (!fwd)
            continue;
        json_t *rule = json_pack(
            "{s:o, s:b, s:o, s:o}", "forward", fwd, "sticky",
            barge_json_bool(barge_json_object(items[i], "_stickiness"), "Enabled", false), "paths",
            condition(items[i], "path-pattern"), "hosts", condition(items[i], "host-header"));
        other_conditions(items[i], rule);
        if (answer)
            json_object_update(rule, answer);
        json_decref(answer);
        json_array_append_new(out, rule);
    }
    free(items);
    json_decref(mine);
    return out;
}

/* The load balancer's idle_timeout.timeout_seconds attribute (ELB's 60 by
 * default). */
static json_int_t idle_timeout(const json_t *lb)
{
    return atoll(
        barge_json_str(barge_json_object(lb, "_attributes"), "idle_timeout.timeout_seconds", "60"));
}

/* The "tls" of an HTTPS or TLS listener l of the load balancer proc_name:
 * its certificates, default first, each in a file under
 * "<proc_name>.tls/", and its security policy. NULL when l is plain, or when
 * a certificate is gone (the listener is left out then). */
static json_t *listener_tls(struct barge_server *srv, const struct snapshot *s, const json_t *l,
                            const char *proc_name, bool *broken)
{
    *broken = false;
    const char *proto = barge_json_str(l, "Protocol", "");
    if (!barge_streq(proto, "HTTPS") && !barge_streq(proto, "TLS"))
        return NULL;
    const struct barge_elb_ssl_policy *policy =
        barge_elb_ssl_policy(barge_json_str(l, "SslPolicy", BARGE_ELB_DEFAULT_SSL_POLICY));
    if (!policy)
        policy = barge_elb_ssl_policy(BARGE_ELB_DEFAULT_SSL_POLICY);
    _cleanup_json_ json_t *arns = json_array();
    json_array_append(arns, json_object_get(json_array_get(barge_json_array(l, "Certificates"), 0),
                                            "CertificateArn"));
    json_array_extend(arns, barge_json_array(l, "_certs"));
    if (!json_array_size(arns)) {
        barge_warn("load balancer %s: listener %s has no certificate", proc_name,
                   barge_json_str(l, "ListenerArn", ""));
        *broken = true;
        return NULL;
    }
    _cleanup_free_ char *dir = path_of(srv, proc_name, "tls");
    json_t *certs = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(arns, i, a)
    {
        const json_t *cert = json_object_get(s->certs, json_string_value(a));
        if (!cert) {
            barge_warn("load balancer %s: listener %s: certificate '%s' not found", proc_name,
                       barge_json_str(l, "ListenerArn", ""), json_string_value(a));
            json_decref(certs);
            *broken = true;
            return NULL;
        }
        _cleanup_free_ char *path =
            barge_xasprintf("%s/%lld-%zu.pem", dir, (long long)barge_json_int(l, "Port", 0), i);
        json_array_append_new(certs, json_pack("{s:s, s:O, s:I}", "path", path, "arn", a, "seq",
                                               barge_json_int(cert, "seq", 0)));
    }
    json_t *tls =
        json_pack("{s:o, s:s, s:s, s:s}", "certs", certs, "min_version", policy->min_version,
                  "max_version", policy->max_version, "ciphers", policy->ciphers);
    if (policy->ciphersuites)
        json_object_set_new(tls, "ciphersuites", json_string(policy->ciphersuites));
    return tls;
}

/* The response header a "routing.http.response.<name>.header_value"
 * attribute sets: "strict_transport_security" is Strict-Transport-Security.
 * The caller frees it. */
static char *header_name(const char *key)
{
    const char *from = key + strlen("routing.http.response.");
    char *out = barge_xstrndup(from, strlen(from) - strlen(".header_value"));
    bool start = true;
    for (char *c = out; *c; c++) {
        if (*c == '_')
            *c = '-';
        else if (start)
            *c = (char)toupper((unsigned char)*c);
        start = *c == '-';
    }
    return out;
}

/* Adds the listener attributes of l to its spec ls; the TCP idle timeout
 * goes to the backends of fwd (their tunnel timeout: the longest of the
 * listeners that use one). */
static void listener_attributes(const json_t *l, json_t *ls, const json_t *fwd, json_t *backends)
{
    json_t *attrs = barge_json_object(l, "_attributes");
    const char *k;
    json_t *v;
    json_object_foreach(attrs, k, v)
    {
        const char *value = json_string_value(v);
        if (!value || !*value)
            continue;
        if (barge_streq(k, "routing.http.response.server.enabled"))
            json_object_set_new(ls, "server_header", json_boolean(barge_streq(value, "true")));
        else if (barge_str_has_prefix(k, "routing.http.response.") &&
                 barge_str_has_suffix(k, ".header_value")) {
            _cleanup_free_ char *name = header_name(k);
            json_array_append_new(barge_json_array(ls, "headers"),
                                  json_pack("[s, s]", name, value));
        }
    }
    const char *proto = barge_json_str(l, "Protocol", "");
    if (!barge_streq(proto, "TCP") && !barge_streq(proto, "TLS"))
        return;
    json_int_t idle = atoll(barge_json_str(attrs, "tcp.idle_timeout.seconds", "350"));
    size_t i;
    json_t *f;
    json_array_foreach((json_t *)fwd, i, f)
    {
        json_t *b = json_object_get(backends, barge_json_str(f, "backend", ""));
        if (b && idle > barge_json_int(b, "tunnel", 0))
            json_object_set_new(b, "tunnel", json_integer(idle));
    }
}

/* {process name: spec} for every load balancer with a listener. */
static json_t *desired(struct barge_server *srv, const struct snapshot *s)
{
    json_t *out = json_object();
    size_t i, j;
    json_t *lb, *l;
    json_array_foreach(s->lbs, i, lb)
    {
        const char *arn = barge_json_str(lb, "LoadBalancerArn", "");
        _cleanup_free_ char *name = barge_elb_proc_name(arn);
        json_t *listeners = json_array();
        json_t *backends = json_object();
        json_array_foreach(s->listeners, j, l)
        {
            if (!barge_streq(barge_json_str(l, "LoadBalancerArn", ""), arn))
                continue;
            bool broken;
            json_t *tls = listener_tls(srv, s, l, name, &broken);
            json_t *answer = broken ? NULL : answer_of(l);
            json_t *fwd = broken ? NULL : answer ? json_array() : forward_of(s, l, backends);
            if (!fwd) {
                json_decref(tls);
                continue;
            }
            json_t *ls = json_pack(
                "{s:I, s:o, s:b, s:o, s:[]}", "port", barge_json_int(l, "Port", 0), "forward", fwd,
                "sticky", barge_json_bool(barge_json_object(l, "_stickiness"), "Enabled", false),
                "rules", listener_rules(s, l, backends), "headers");
            if (tls)
                json_object_set_new(ls, "tls", tls);
            if (answer)
                json_object_update(ls, answer);
            json_decref(answer);
            listener_attributes(l, ls, fwd, backends);
            json_array_append_new(listeners, ls);
        }
        if (!json_array_size(listeners)) {
            json_decref(listeners);
            json_decref(backends);
            continue;
        }
        _cleanup_free_ char *sock = barge_elb_socket(srv, arn);
        json_object_set_new(
            out, name,
            json_pack(
                "{s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "name", name, "address",
                srv->cfg.lb_address ? srv->cfg.lb_address : "127.0.0.1", "socket", sock, "mode",
                barge_streq(barge_json_str(lb, "Type", ""), "network") ? "tcp" : "http",
                "idle_timeout", idle_timeout(lb), "listeners", listeners, "backends", backends));
    }
    return out;
}

/* ---- applying it ---- */

static json_t *running_servers(const json_t *spec)
{
    json_t *out = json_object();
    const char *be, *sname;
    json_t *b, *srv;
    json_object_foreach(barge_json_object(spec, "backends"), be, b)
    {
        json_t *servers = json_object();
        json_object_foreach(barge_json_object(b, "servers"), sname, srv)
        {
            json_object_set_new(servers, sname,
                                json_pack("{s:b}", "drain", barge_json_bool(srv, "drain", false)));
        }
        json_object_set_new(out, be, servers);
    }
    return out;
}

static int command(const char *sock, const char *name, struct barge_error **err, const char *fmt,
                   ...) BARGE_PRINTF(4, 5);
static int command(const char *sock, const char *name, struct barge_error **err, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *cmd = barge_xvasprintf(fmt, ap);
    va_end(ap);
    _cleanup_free_ char *reply = NULL;
    if (barge_haproxy_command(sock, cmd, &reply, err) < 0)
        return -1;
    /* The admin socket answers in words: nothing, or one of these, is success. */
    const char *r = reply;
    while (*r == '\n' || *r == ' ')
        r++;
    if (*r && !barge_str_has_prefix(r, "New server registered") &&
        !barge_str_has_prefix(r, "Server deleted"))
        return barge_error_set(err, BARGE_ERR_IO, "load balancer %s: '%s' failed: %.200s", name,
                               cmd, r);
    barge_debug("load balancer %s: %s", name, cmd);
    return 0;
}

/* Brings p's servers in line with spec through the admin socket. */
static void apply_servers(struct lb_proc *p, const json_t *spec)
{
    const char *sock = barge_json_str(spec, "socket", "");
    /* A process just started has no socket yet, or the socket is still
     * the old process's (which serves until the new one is ready, and must
     * keep its servers): the next pass applies. */
    if (access(sock, F_OK) != 0)
        return;
    _cleanup_error_ struct barge_error *perr = NULL;
    if (barge_haproxy_pid(sock, &perr) != p->pid)
        return;
    const char *be, *sname;
    json_t *b, *srv;
    json_object_foreach(barge_json_object(spec, "backends"), be, b)
    {
        json_t *have = json_object_get(p->servers, be);
        json_object_foreach(barge_json_object(b, "servers"), sname, srv)
        {
            _cleanup_error_ struct barge_error *err = NULL;
            json_t *cur = json_object_get(have, sname);
            bool drain = barge_json_bool(srv, "drain", false);
            if (!cur) {
                if (drain)
                    continue;
                _cleanup_free_ char *args = barge_haproxy_server_args(b, srv);
                bool check = barge_json_bool(json_object_get(b, "check"), "enabled", true);
                if (command(sock, p->name, &err, "add server %s/%s %s", be, sname, args) < 0 ||
                    (check && command(sock, p->name, &err, "enable health %s/%s", be, sname) < 0) ||
                    (check &&
                     command(sock, p->name, &err, "set server %s/%s health down", be, sname) < 0) ||
                    command(sock, p->name, &err, "enable server %s/%s", be, sname) < 0) {
                    barge_warn("%s", err->message);
                    continue;
                }
                json_object_set_new(have, sname, json_pack("{s:b}", "drain", false));
            } else if (barge_json_bool(cur, "drain", false) != drain) {
                if (command(sock, p->name, &err, "set server %s/%s state %s", be, sname,
                            drain ? "drain" : "ready") < 0) {
                    barge_warn("%s", err->message);
                    continue;
                }
                json_object_set_new(cur, "drain", json_boolean(drain));
            }
        }
        /* Servers whose targets left the store: out of rotation, then gone
         * (HAProxy refuses while a connection is open; a later pass tries
         * again). */
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(have, tmp, k, v)
        {
            if (json_object_get(barge_json_object(b, "servers"), k))
                continue;
            _cleanup_error_ struct barge_error *err = NULL;
            if (command(sock, p->name, &err, "set server %s/%s state maint", be, k) < 0 ||
                command(sock, p->name, &err, "del server %s/%s", be, k) < 0) {
                barge_debug("%s", err->message);
                continue;
            }
            json_object_del(have, k);
        }
    }
}

/* Writes the certificates spec's listeners serve (certificate, chain and
 * private key, mode 0600) where its configuration names them, replacing
 * what an earlier configuration had there: a running process has read its
 * own already. HAProxy reads the key from a file like any TLS server, so the
 * key is in clear on this host while a listener uses it. */
static int write_certs(struct barge_server *srv, const struct snapshot *s, const char *name,
                       const json_t *spec, struct barge_error **err)
{
    _cleanup_free_ char *dir = path_of(srv, name, "tls");
    clear_dir(dir);
    size_t i, j;
    json_t *l, *c;
    json_array_foreach(barge_json_array(spec, "listeners"), i, l)
    {
        json_array_foreach(barge_json_array(json_object_get(l, "tls"), "certs"), j, c)
        {
            if (barge_mkdir_p(dir, 0700) < 0)
                return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", dir);
            const json_t *doc = json_object_get(s->certs, barge_json_str(c, "arn", ""));
            char *pem = NULL;
            size_t len = 0;
            if (barge_acm_cert_pem(&srv->master_key, doc, &pem, &len, err) < 0)
                return -1;
            const char *path = barge_json_str(c, "path", "");
            int r = barge_write_file_atomic(path, pem, len, 0600);
            barge_crypto_free(pem, len);
            if (r < 0)
                return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
        }
    }
    return 0;
}

static void start_proc(struct barge_server *srv, const struct snapshot *s, const char *name,
                       const json_t *spec, const char *shape)
{
    struct lb_proc *p = find_proc(name);
    pid_t old = p && alive(p->pid) ? p->pid : 0;
    if (!old)
        old = (pid_t)barge_json_int(stale, name, 0);
    _cleanup_free_ char *cfg_path = path_of(srv, name, "cfg");
    _cleanup_free_ char *log_path = path_of(srv, name, "log");
    _cleanup_free_ char *pid_path = path_of(srv, name, "pid");
    _cleanup_free_ char *config = barge_haproxy_config(spec, true);
    _cleanup_error_ struct barge_error *err = NULL;
    if (write_certs(srv, s, name, spec, &err) < 0) {
        barge_warn("load balancer %s: %s", name, err->message);
        return;
    }
    pid_t pid = barge_haproxy_start(cfg_path, config, log_path, old,
                                    barge_json_str(spec, "socket", NULL), &err);
    if (pid < 0) {
        barge_warn("load balancer %s: %s", name, err->message);
        return;
    }
    barge_info("load balancer %s: HAProxy %d serves it%s", name, (int)pid,
               old ? " (taking over from the previous one)" : "");
    json_object_del(stale, name);
    if (old && p && old == p->pid)
        json_array_append_new(retired, json_integer(old));
    _cleanup_free_ char *pid_text = barge_xasprintf("%d\n", (int)pid);
    if (barge_write_file_atomic(pid_path, pid_text, strlen(pid_text), 0600) < 0)
        barge_warn("load balancer %s: cannot write '%s': %s", name, pid_path, strerror(errno));
    if (!p) {
        p = barge_xcalloc(1, sizeof(*p));
        p->name = barge_xstrdup(name);
        p->next = procs;
        procs = p;
    }
    p->pid = pid;
    free(p->shape);
    p->shape = barge_xstrdup(shape);
    json_decref(p->servers);
    p->servers = running_servers(spec);
}

/* Completes the deregistration of draining targets that HAProxy no longer
 * serves anything through (or whose delay is over): they leave the store. */
static void finish_draining(struct barge_server *srv, const struct snapshot *s, json_t *want)
{
    _cleanup_json_ json_t *stats = json_object(); /* {lb name: show stat} */
    size_t i;
    json_t *tg;
    double now = barge_now();
    json_array_foreach(s->tgs, i, tg)
    {
        _cleanup_json_ json_t *done = json_array();
        const char *tg_name = barge_json_str(tg, "TargetGroupName", "");
        _cleanup_free_ char *be = barge_elb_backend_name(tg_name);
        size_t j;
        json_t *t;
        json_array_foreach(barge_json_array(tg, "_targets"), j, t)
        {
            if (!barge_streq(barge_json_str(t, "State", ""), "draining"))
                continue;
            _cleanup_free_ char *sname =
                barge_elb_server_name(barge_json_str(t, "Id", ""), barge_json_int(t, "Port", 0));
            bool busy = false;
            const char *lb_name;
            json_t *spec;
            json_object_foreach(want, lb_name, spec)
            {
                if (!json_object_get(barge_json_object(spec, "backends"), be))
                    continue;
                struct lb_proc *p = find_proc(lb_name);
                json_t *have = p ? json_object_get(json_object_get(p->servers, be), sname) : NULL;
                if (!have)
                    continue;
                if (!barge_json_bool(have, "drain", false)) {
                    busy = true; /* not drained yet */
                    continue;
                }
                json_t *st = json_object_get(stats, lb_name);
                if (!st) {
                    /* Only the process barged started last tells: an old
                     * one still finishing serves with its own servers. */
                    _cleanup_error_ struct barge_error *err = NULL;
                    const char *sock = barge_json_str(spec, "socket", "");
                    st = barge_haproxy_pid(sock, &err) == p->pid ? barge_haproxy_servers(sock, &err)
                                                                 : NULL;
                    if (!st)
                        st = json_object();
                    json_object_set_new(stats, lb_name, st);
                }
                json_t *row = json_object_get(json_object_get(st, be), sname);
                if (!row || atoi(barge_json_str(row, "scur", "1")) > 0 ||
                    atoi(barge_json_str(row, "qcur", "1")) > 0)
                    busy = true;
            }
            double since = json_number_value(json_object_get(t, "Since"));
            if (!busy || now - since >= (double)barge_elb_deregistration_delay(tg))
                json_array_append(done, t);
        }
        if (!json_array_size(done))
            continue;
        _cleanup_error_ struct barge_error *err = NULL;
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_json_ json_t *cur = NULL;
        barge_store_use_region(barge_json_str(tg, "_region", NULL));
        int r = barge_store_begin(srv->store, true, &tx, &err);
        barge_store_use_region(NULL);
        if (r < 0 || barge_store_get(tx, ELB_KIND_TG, tg_name, &cur, &err) < 0) {
            barge_warn("target group %s: %s", tg_name, err->message);
            continue;
        }
        json_t *targets = barge_json_array(cur, "_targets");
        bool changed = false;
        for (size_t k = 0; k < json_array_size(targets);) {
            json_t *x = json_array_get(targets, k);
            bool gone = false;
            size_t d;
            json_t *y;
            json_array_foreach(done, d, y)
            {
                gone |= barge_streq(barge_json_str(x, "Id", ""), barge_json_str(y, "Id", "")) &&
                        barge_json_int(x, "Port", 0) == barge_json_int(y, "Port", 0) &&
                        barge_streq(barge_json_str(x, "State", ""), "draining");
            }
            if (gone) {
                json_array_remove(targets, k);
                changed = true;
            } else {
                k++;
            }
        }
        if (changed && (barge_store_put(tx, ELB_KIND_TG, tg_name, cur, &err) < 0 ||
                        barge_store_commit(barge_steal(&tx), &err) < 0)) {
            barge_warn("target group %s: %s", tg_name, err->message);
            continue;
        }
        if (changed) {
            barge_info("target group %s: %zu target(s) deregistered", tg_name,
                       json_array_size(done));
            barge_server_wake(srv);
        }
    }
}

void barge_lb_step(struct barge_server *srv)
{
    _cleanup_error_ struct barge_error *err = NULL;
    struct snapshot s = {0};
    if (load_snapshot(srv, &s, &err) < 0) {
        barge_warn("load balancers: %s", err->message);
        snapshot_release(&s);
        return;
    }
    pthread_mutex_lock(&procs_lock);
    if (!adopted) {
        adopted = true;
        adopt_previous(srv);
    }
    reap_retired();
    _cleanup_json_ json_t *want = desired(srv, &s);
    if (json_object_size(want)) {
        _cleanup_free_ char *dir = barge_elb_dir(srv);
        barge_mkdir_p(dir, 0700);
    }
    /* Load balancers that lost their last listener, or were deleted. */
    for (struct lb_proc **pp = &procs; *pp;) {
        struct lb_proc *p = *pp;
        if (json_object_get(want, p->name)) {
            pp = &p->next;
            continue;
        }
        barge_info("load balancer %s: stopping HAProxy %d", p->name, (int)p->pid);
        stop_proc(srv, p, false);
        *pp = p->next;
        proc_free(p);
    }
    const char *name;
    json_t *spec;
    json_object_foreach(want, name, spec)
    {
        struct lb_proc *p = find_proc(name);
        _cleanup_free_ char *shape = barge_haproxy_config(spec, false);
        if (p && p->pid > 0 && !alive(p->pid)) {
            /* Reaped: forget the pid before the system reuses it. A port
             * another program holds makes HAProxy exit at once; retrying
             * every few seconds keeps the log readable. */
            barge_warn("load balancer %s: HAProxy %d has exited (see %s/lb/%s.log)", name,
                       (int)p->pid, srv->cfg.data_dir, name);
            p->pid = 0;
            p->retry_at = barge_monotonic_ms() + 5000;
        }
        if (p && p->pid == 0 && barge_monotonic_ms() < p->retry_at)
            continue;
        if (!p || p->pid == 0 || strcmp(p->shape, shape) != 0) {
            start_proc(srv, &s, name, spec, shape);
        } else {
            apply_servers(p, spec);
        }
    }
    /* HAProxy left by a killed barged for load balancers that are gone. */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(stale, tmp, k, v)
    {
        kill((pid_t)json_integer_value(v), SIGTERM);
        json_object_del(stale, k);
    }
    finish_draining(srv, &s, want);
    pthread_mutex_unlock(&procs_lock);
    snapshot_release(&s);
}

void barge_lb_stop_all(struct barge_server *srv)
{
    pthread_mutex_lock(&procs_lock);
    while (procs) {
        struct lb_proc *p = procs;
        procs = p->next;
        barge_info("load balancer %s: stopping HAProxy %d", p->name, (int)p->pid);
        stop_proc(srv, p, true);
        proc_free(p);
    }
    for (size_t i = 0; i < json_array_size(retired); i++) {
        pid_t pid = (pid_t)json_integer_value(json_array_get(retired, i));
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    json_decref(retired);
    json_decref(stale);
    retired = stale = NULL;
    adopted = false;
    pthread_mutex_unlock(&procs_lock);
}
