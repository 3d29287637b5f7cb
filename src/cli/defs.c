/* Definition handling behind defs.h. The ECS model (botocore's, embedded in
 * the binary for barged's request validation) drives key checks and
 * projections, so a field ECS adds tomorrow is known as soon as the model is
 * regenerated, with no list here to update. */
#include "cli/defs.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "api/models.h"
#include "common/json.h"

/* ---- API-style JSON ---- */

json_t *barge_cli_json_prune(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if (json_is_null(e))
                continue;
            json_t *p = barge_cli_json_prune(e);
            if (json_is_array(p) && json_array_size(p) == 0) {
                json_decref(p);
                continue;
            }
            json_object_set_new(o, k, p);
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            json_array_append_new(a, barge_cli_json_prune(e));
        }
        return a;
    }
    return json_deep_copy(v);
}

char *barge_cli_json_api_dump(const json_t *v)
{
    _cleanup_json_ json_t *p = barge_cli_json_prune(v);
    _cleanup_free_ char *s =
        json_dumps(p, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    return barge_xasprintf("%s\n", s ? s : "null");
}

/* ---- the ECS model ---- */

static json_t *ecs_shapes;
static pthread_once_t shapes_once = PTHREAD_ONCE_INIT;

static void load_shapes(void)
{
    size_t len = 0;
    const char *text = barge_model_embedded_get("ecs", &len);
    json_t *m = text ? json_loadb(text, len, 0, NULL) : NULL;
    /* The model is part of the build; one that does not parse is a bug. */
    if (!m)
        abort();
    ecs_shapes = json_incref(json_object_get(m, "shapes"));
    json_decref(m);
}

static json_t *shape(const char *name)
{
    pthread_once(&shapes_once, load_shapes);
    return name ? json_object_get(ecs_shapes, name) : NULL;
}

/* The shape name of member `key` of structure s, or NULL. */
static const char *member_shape(json_t *s, const char *key)
{
    json_t *m = json_object_get(json_object_get(s, "members"), key);
    return m ? barge_json_str(m, "shape", NULL) : NULL;
}

static void conform(json_t *value, const char *shape_name, const char *ro_name, const char *path,
                    barge_cli_warn_fn warn, void *ud)
{
    json_t *s = shape(shape_name);
    const char *type = barge_json_str(s, "type", "");
    if (strcmp(type, "list") == 0 && json_is_array(value)) {
        const char *ms = barge_json_str(json_object_get(s, "member"), "shape", NULL);
        const char *ro_ms =
            ro_name ? barge_json_str(json_object_get(shape(ro_name), "member"), "shape", NULL)
                    : NULL;
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e)
        {
            _cleanup_free_ char *p = barge_xasprintf("%s[%zu]", path, i);
            conform(e, ms, ro_ms, p, warn, ud);
        }
        return;
    }
    if (strcmp(type, "map") == 0 && json_is_object(value)) {
        const char *vs = barge_json_str(json_object_get(s, "value"), "shape", NULL);
        const char *k;
        json_t *e;
        json_object_foreach(value, k, e)
        {
            _cleanup_free_ char *p = barge_xasprintf("%s.%s", path, k);
            conform(e, vs, NULL, p, warn, ud);
        }
        return;
    }
    if (strcmp(type, "structure") != 0 || !json_is_object(value))
        return;
    json_t *ro = shape(ro_name);
    /* Collect first: renaming while iterating would disturb the iteration. */
    _cleanup_json_ json_t *keys = json_array();
    const char *k;
    json_t *e;
    json_object_foreach(value, k, e)
    {
        json_array_append_new(keys, json_string(k));
    }
    size_t i;
    json_array_foreach(keys, i, e)
    {
        const char *key = json_string_value(e);
        const char *ms = member_shape(s, key);
        const char *name = key;
        char lowered[256];
        if (!ms && isupper((unsigned char)key[0]) && strlen(key) < sizeof(lowered)) {
            snprintf(lowered, sizeof(lowered), "%s", key);
            lowered[0] = (char)tolower((unsigned char)lowered[0]);
            if (member_shape(s, lowered) || member_shape(ro, lowered)) {
                json_t *v = json_incref(json_object_get(value, key));
                json_object_del(value, key);
                json_object_set_new(value, lowered, v);
                name = lowered;
                ms = member_shape(s, lowered);
            }
        }
        _cleanup_free_ char *p = *path ? barge_xasprintf("%s.%s", path, name) : barge_xstrdup(name);
        if (ms) {
            conform(json_object_get(value, name), ms, member_shape(ro, name), p, warn, ud);
            continue;
        }
        if (!member_shape(ro, name) && warn)
            warn(ud, p);
        json_object_del(value, name);
    }
}

void barge_cli_model_conform(json_t *value, const char *shape_name, const char *readonly_shape,
                             barge_cli_warn_fn warn, void *ud)
{
    conform(value, shape_name, readonly_shape, "", warn, ud);
}

json_t *barge_cli_model_project(const json_t *value, const char *shape_name)
{
    json_t *s = shape(shape_name);
    json_t *out = json_object();
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)value, k, e)
    {
        if (member_shape(s, k))
            json_object_set(out, k, e);
    }
    return out;
}

/* ---- definitions ---- */

json_t *barge_cli_taskdef_from_file(json_t *doc, barge_cli_warn_fn warn, void *ud)
{
    json_t *td = json_object_get(doc, "taskDefinition");
    if (!json_is_object(td))
        td = json_object_get(doc, "TaskDefinition");
    json_t *out;
    if (json_is_object(td)) {
        /* describe-task-definition --include TAGS puts tags next to the
         * definition, not inside it. */
        out = json_deep_copy(td);
        json_t *tags = json_object_get(doc, "tags");
        if (json_is_array(tags) && !json_object_get(out, "tags"))
            json_object_set(out, "tags", tags);
    } else {
        out = json_deep_copy(doc);
    }
    barge_cli_model_conform(out, "RegisterTaskDefinitionRequest", "TaskDefinition", warn, ud);
    json_t *tags = json_object_get(out, "tags");
    if (json_is_array(tags) && json_array_size(tags) == 0)
        json_object_del(out, "tags");
    return out;
}

void barge_cli_servicedef_conform(json_t *doc, barge_cli_warn_fn warn, void *ud)
{
    /* Keys of CreateServiceRequest that a described Service lacks ("role",
     * "clientToken") are not errors, so conform against the union: first
     * the create input with Service as the read-only side, which keeps
     * every member of either. */
    json_t *create_only = json_object();
    json_t *s = shape("CreateServiceRequest");
    const char *k;
    json_t *e;
    json_object_foreach(json_object_get(s, "members"), k, e)
    {
        json_t *v = json_object_get(doc, k);
        if (v && !member_shape(shape("Service"), k))
            json_object_set(create_only, k, v);
    }
    barge_cli_model_conform(doc, "Service", "CreateServiceRequest", warn, ud);
    json_object_update_missing(doc, create_only);
    json_decref(create_only);
}

/* ---- normalisation for diff ---- */

static int cmp_json_text(const void *a, const void *b)
{
    _cleanup_free_ char *x = json_dumps(*(json_t *const *)a, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_free_ char *y = json_dumps(*(json_t *const *)b, JSON_COMPACT | JSON_SORT_KEYS);
    return strcmp(x ? x : "", y ? y : "");
}

static const char *sort_key;

static int cmp_by_key(const void *a, const void *b)
{
    const char *x = barge_json_str(*(json_t *const *)a, sort_key, "");
    const char *y = barge_json_str(*(json_t *const *)b, sort_key, "");
    int c = strcmp(x, y);
    return c ? c : cmp_json_text(a, b);
}

/* Sorts an array member in place, by a string member or by JSON text. */
static void sort_array(json_t *obj, const char *member, const char *by)
{
    json_t *arr = json_object_get(obj, member);
    size_t n = json_array_size(arr);
    if (n < 2)
        return;
    json_t **v = barge_xmalloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    sort_key = by;
    qsort(v, n, sizeof(*v), by ? cmp_by_key : cmp_json_text);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(
        json_string_value(*(json_t *const *)a) ? json_string_value(*(json_t *const *)a) : "",
        json_string_value(*(json_t *const *)b) ? json_string_value(*(json_t *const *)b) : "");
}

static void sort_strings(json_t *obj, const char *member)
{
    json_t *arr = json_object_get(obj, member);
    size_t n = json_array_size(arr);
    if (n < 2)
        return;
    json_t **v = barge_xmalloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_strings);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
}

/* "0.25 vCPU" -> "256", "1 GB" -> "1024", numbers -> their string. */
static void units_to_string(json_t *td, const char *key, double per_unit, const char *unit)
{
    json_t *v = json_object_get(td, key);
    if (json_is_integer(v)) {
        json_object_set_new(td, key, json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v)));
        return;
    }
    const char *s = json_string_value(v);
    if (!s)
        return;
    char *end;
    double d = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (end != s && *end && strcasecmp(end, unit) == 0)
        json_object_set_new(td, key, json_sprintf("%.0f", d * per_unit));
}

json_t *barge_cli_taskdef_for_diff(const json_t *td_in)
{
    json_t *td = barge_cli_model_project(td_in, "RegisterTaskDefinitionRequest");
    json_t *copy = json_deep_copy(td);
    json_decref(td);
    td = copy;
    units_to_string(td, "cpu", 1024, "vCPU");
    units_to_string(td, "memory", 1024, "GB");
    bool awsvpc = barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc");
    bool host = barge_streq(barge_json_str(td, "networkMode", NULL), "host");
    size_t i, j;
    json_t *c, *pm;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, c)
    {
        if (!json_object_get(c, "essential"))
            json_object_set_new(c, "essential", json_true());
        if (json_integer_value(json_object_get(c, "cpu")) == 0)
            json_object_del(c, "cpu");
        json_array_foreach(json_object_get(c, "portMappings"), j, pm)
        {
            if (!json_object_get(pm, "protocol"))
                json_object_set_new(pm, "protocol", json_string("tcp"));
            if ((awsvpc || host) && !json_object_get(pm, "hostPort") &&
                json_object_get(pm, "containerPort"))
                json_object_set(pm, "hostPort", json_object_get(pm, "containerPort"));
        }
        sort_array(c, "environment", "name");
        sort_array(c, "secrets", "name");
        sort_array(c, "environmentFiles", NULL);
        sort_array(c, "mountPoints", NULL);
        sort_array(c, "portMappings", NULL);
        sort_array(c, "volumesFrom", NULL);
    }
    sort_array(td, "containerDefinitions", "name");
    sort_array(td, "placementConstraints", NULL);
    sort_strings(td, "requiresCompatibilities");
    sort_array(td, "volumes", "name");
    sort_array(td, "tags", "key");
    json_t *pc = json_object_get(td, "proxyConfiguration");
    if (pc)
        sort_array(pc, "properties", "name");
    json_t *pruned = barge_cli_json_prune(td);
    json_decref(td);
    return pruned;
}

/* The attributes UpdateService can change, which are what diff compares (the
 * rest of a described service is state, not configuration). */
static const char *const service_diff_keys[] = {
    "capacityProviderStrategy",
    "deploymentConfiguration",
    "desiredCount",
    "enableECSManagedTags",
    "enableExecuteCommand",
    "healthCheckGracePeriodSeconds",
    "loadBalancers",
    "networkConfiguration",
    "placementConstraints",
    "placementStrategy",
    "platformVersion",
    "propagateTags",
    "serviceConnectConfiguration",
    "serviceRegistries",
    "volumeConfigurations",
    "tags",
};

json_t *barge_cli_service_for_diff(const json_t *svc, const json_t *local)
{
    json_t *out = json_object();
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(service_diff_keys); i++) {
        json_t *v = json_object_get(svc, service_diff_keys[i]);
        if (v)
            json_object_set_new(out, service_diff_keys[i], json_deep_copy(v));
    }
    const char *strategy = barge_json_str(svc, "schedulingStrategy", "REPLICA");
    bool daemon = strcmp(strategy, "DAEMON") == 0;
    if (daemon)
        json_object_del(out, "placementStrategy");
    if (local && !json_object_get(local, "desiredCount"))
        json_object_del(out, "desiredCount");
    if (daemon)
        json_object_del(out, "desiredCount");
    /* ECS's defaults, so that a file that leaves them out matches. */
    json_t *dc = json_object_get(out, "deploymentConfiguration");
    if (!dc) {
        dc = json_object();
        json_object_set_new(out, "deploymentConfiguration", dc);
    }
    if (!json_object_get(dc, "maximumPercent"))
        json_object_set_new(dc, "maximumPercent", json_integer(daemon ? 100 : 200));
    if (!json_object_get(dc, "minimumHealthyPercent"))
        json_object_set_new(dc, "minimumHealthyPercent", json_integer(daemon ? 0 : 100));
    if (!daemon) {
        json_t *cb = json_object_get(dc, "deploymentCircuitBreaker");
        if (!cb) {
            cb = json_object();
            json_object_set_new(dc, "deploymentCircuitBreaker", cb);
        }
        if (!json_object_get(cb, "enable"))
            json_object_set_new(cb, "enable", json_false());
        if (!json_object_get(cb, "rollback"))
            json_object_set_new(cb, "rollback", json_false());
    }
    if (barge_streq(barge_json_str(svc, "launchType", NULL), "FARGATE") &&
        !json_object_get(out, "platformVersion"))
        json_object_set_new(out, "platformVersion", json_string("LATEST"));
    json_t *awsvpc =
        json_object_get(json_object_get(out, "networkConfiguration"), "awsvpcConfiguration");
    if (awsvpc) {
        if (!json_object_get(awsvpc, "assignPublicIp"))
            json_object_set_new(awsvpc, "assignPublicIp", json_string("DISABLED"));
        sort_strings(awsvpc, "subnets");
        sort_strings(awsvpc, "securityGroups");
    }
    if (!json_object_get(out, "propagateTags"))
        json_object_set_new(out, "propagateTags", json_string("NONE"));
    if (!json_object_get(out, "enableECSManagedTags"))
        json_object_set_new(out, "enableECSManagedTags", json_false());
    if (!json_object_get(out, "enableExecuteCommand"))
        json_object_set_new(out, "enableExecuteCommand", json_false());
    sort_array(out, "placementConstraints", NULL);
    sort_array(out, "placementStrategy", NULL);
    sort_array(out, "tags", "key");
    json_t *pruned = barge_cli_json_prune(out);
    json_decref(out);
    return pruned;
}
