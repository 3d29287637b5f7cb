/* RegisterTaskDefinition's semantic checks and normal form (see
 * taskdef_check.h). The rules and their wording follow ECS's documented
 * behaviour; where ECS's exact message is not documented, the message says what
 * is wrong, with which container and value, and what to do instead. */
#include "api/taskdef_check.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/secretref.h"

#define MAX_CONTAINERS 10

static int client_err(struct barge_error **err, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int client_err(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException", "%s", msg);
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

/* Parses "<number>[ ]<unit>" with unit matched case-insensitively against
 * units[] (each with its multiplier); a bare number takes bare_mult. */
static long long parse_units(const char *s, double bare_mult, const char *const *units,
                             const double *mults, size_t n_units)
{
    if (!s || !*s)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    double mult = -1;
    if (*end == '\0') {
        mult = bare_mult;
    } else {
        for (size_t i = 0; i < n_units; i++)
            if (strcasecmp(end, units[i]) == 0)
                mult = mults[i];
    }
    if (mult < 0)
        return -1;
    double r = v * mult;
    if (r != floor(r) || r > 1e12)
        return -1;
    return (long long)r;
}

long long barge_taskdef_cpu_units(const char *s)
{
    static const char *const units[] = {"vcpu"};
    static const double mults[] = {1024};
    if (s && strspn(s, "0123456789") == strlen(s) && *s) {
        return strtoll(s, NULL, 10);
    }
    return parse_units(s, -1, units, mults, 1);
}

long long barge_taskdef_memory_mib(const char *s)
{
    static const char *const units[] = {"gb", "gib", "mb", "mib"};
    static const double mults[] = {1024, 1024, 1, 1};
    if (s && strspn(s, "0123456789") == strlen(s) && *s)
        return strtoll(s, NULL, 10);
    return parse_units(s, -1, units, mults, BARGE_ARRAY_SIZE(units));
}

bool barge_taskdef_fargate_size_valid(long long cpu, long long memory)
{
    switch (cpu) {
    case 256:
        return memory == 512 || memory == 1024 || memory == 2048;
    case 512:
        return memory >= 1024 && memory <= 4096 && memory % 1024 == 0;
    case 1024:
        return memory >= 2048 && memory <= 8192 && memory % 1024 == 0;
    case 2048:
        return memory >= 4096 && memory <= 16384 && memory % 1024 == 0;
    case 4096:
        return memory >= 8192 && memory <= 30720 && memory % 1024 == 0;
    case 8192:
        return memory >= 16384 && memory <= 61440 && memory % 4096 == 0;
    case 16384:
        return memory >= 32768 && memory <= 122880 && memory % 8192 == 0;
    default:
        return false;
    }
}

static bool has_compat(const json_t *in, const char *what)
{
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(in, "requiresCompatibilities"), i, v)
    {
        if (barge_streq(json_string_value(v), what))
            return true;
    }
    return false;
}

static json_t *find_container(const json_t *containers, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c)
    {
        if (barge_streq(barge_json_str(c, "name", NULL), name))
            return c;
    }
    return NULL;
}

static int check_health(json_t *c, const char *cname, struct barge_error **err)
{
    json_t *hc = barge_json_object(c, "healthCheck");
    if (!hc)
        return 0;
    json_t *cmd = barge_json_array(hc, "command");
    const char *first = json_string_value(json_array_get(cmd, 0));
    if (!first || (strcmp(first, "CMD") != 0 && strcmp(first, "CMD-SHELL") != 0 &&
                   strcmp(first, "NONE") != 0))
        return client_err(err,
                          "Invalid 'healthCheck' setting for container '%s': command must start "
                          "with CMD or CMD-SHELL, e.g. [\"CMD-SHELL\", \"curl -f "
                          "http://localhost/ || exit 1\"].",
                          cname);
    if (strcmp(first, "NONE") != 0 && json_array_size(cmd) < 2)
        return client_err(err,
                          "Invalid 'healthCheck' setting for container '%s': command '%s' needs "
                          "the command to run after it.",
                          cname, first);
    static const struct {
        const char *name;
        json_int_t lo, hi, dflt;
    } ranges[] = {
        {"interval", 5, 300, 30},
        {"timeout", 2, 60, 5},
        {"retries", 1, 10, 3},
        {"startPeriod", 0, 300, -1},
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(ranges); i++) {
        json_t *v = json_object_get(hc, ranges[i].name);
        if (!v || json_is_null(v)) {
            if (ranges[i].dflt >= 0)
                json_object_set_new(hc, ranges[i].name, json_integer(ranges[i].dflt));
            continue;
        }
        json_int_t n = json_integer_value(v);
        if (n < ranges[i].lo || n > ranges[i].hi)
            return client_err(
                err,
                "Invalid 'healthCheck' setting for container '%s': %s must be "
                "between %lld and %lld seconds%s; '%lld' was given.",
                cname, ranges[i].name, (long long)ranges[i].lo, (long long)ranges[i].hi,
                strcmp(ranges[i].name, "retries") == 0 ? " (times)" : "", (long long)n);
    }
    return 0;
}

static int check_ports(json_t *c, const char *cname, const char *mode, struct barge_error **err)
{
    json_t *pms = barge_json_array(c, "portMappings");
    if (!pms) {
        json_object_set_new(c, "portMappings", json_array());
        return 0;
    }
    bool same_port = strcmp(mode, "awsvpc") == 0 || strcmp(mode, "host") == 0;
    size_t i;
    json_t *pm;
    json_array_foreach(pms, i, pm)
    {
        json_t *cp = json_object_get(pm, "containerPort");
        json_t *hp = json_object_get(pm, "hostPort");
        const char *range = barge_json_str(pm, "containerPortRange", NULL);
        if (!cp && !range)
            return client_err(err,
                              "Invalid 'portMappings' setting for container '%s': each mapping "
                              "needs a containerPort (or a containerPortRange).",
                              cname);
        if (cp) {
            json_int_t port = json_integer_value(cp);
            if (port < 1 || port > 65535)
                return client_err(err,
                                  "Invalid 'portMappings' setting for container '%s': "
                                  "containerPort '%lld' must be between 1 and 65535.",
                                  cname, (long long)port);
        }
        if (hp) {
            json_int_t port = json_integer_value(hp);
            if (port < 0 || port > 65535)
                return client_err(err,
                                  "Invalid 'portMappings' setting for container '%s': hostPort "
                                  "'%lld' must be between 0 and 65535.",
                                  cname, (long long)port);
            if (same_port && cp && port != 0 && port != json_integer_value(cp))
                return client_err(err,
                                  "When networkMode=%s, the host ports and container ports in "
                                  "port mappings must match (container '%s': hostPort %lld, "
                                  "containerPort %lld).",
                                  mode, cname, (long long)port, (long long)json_integer_value(cp));
        }
        if (same_port && cp)
            json_object_set(pm, "hostPort", cp);
        if (!json_object_get(pm, "protocol"))
            json_object_set_new(pm, "protocol", json_string("tcp"));
    }
    return 0;
}

static int check_memory(json_t *c, const char *cname, long long task_mem, struct barge_error **err)
{
    json_t *mem = json_object_get(c, "memory");
    json_t *res = json_object_get(c, "memoryReservation");
    json_int_t m = mem ? json_integer_value(mem) : 0, r = res ? json_integer_value(res) : 0;
    if (!mem && !res && task_mem < 0)
        return client_err(err,
                          "Invalid setting for container '%s'. At least one of 'memory' or "
                          "'memoryReservation' must be specified (or set the task-level "
                          "'memory').",
                          cname);
    if (mem && m < 6)
        return client_err(err,
                          "Invalid 'memory' setting for container '%s': '%lld' MiB is below the "
                          "minimum of 6 MiB.",
                          cname, (long long)m);
    if (res && r < 6)
        return client_err(err,
                          "Invalid 'memoryReservation' setting for container '%s': '%lld' MiB is "
                          "below the minimum of 6 MiB.",
                          cname, (long long)r);
    if (mem && res && r > m)
        return client_err(err,
                          "Invalid setting for container '%s': 'memory' (%lld MiB) must be "
                          "greater than or equal to 'memoryReservation' (%lld MiB).",
                          cname, (long long)m, (long long)r);
    if (task_mem > 0 && mem && m > task_mem)
        return client_err(err,
                          "Invalid 'memory' setting for container '%s': %lld MiB is more than "
                          "the task's memory of %lld MiB.",
                          cname, (long long)m, task_mem);
    return 0;
}

static int check_dependencies(const json_t *containers, struct barge_error **err)
{
    size_t i, j;
    json_t *c, *d;
    json_array_foreach(containers, i, c)
    {
        const char *cname = barge_json_str(c, "name", "");
        json_array_foreach(barge_json_array(c, "dependsOn"), j, d)
        {
            const char *dep = barge_json_str(d, "containerName", "");
            const char *cond = barge_json_str(d, "condition", "");
            json_t *target = find_container(containers, dep);
            if (!target)
                return client_err(err,
                                  "Invalid 'dependsOn' setting for container '%s': container "
                                  "'%s' is not defined in the task definition.",
                                  cname, dep);
            if (strcmp(dep, cname) == 0)
                return client_err(err,
                                  "Invalid 'dependsOn' setting for container '%s': a container "
                                  "cannot depend on itself.",
                                  cname);
            if ((strcmp(cond, "COMPLETE") == 0 || strcmp(cond, "SUCCESS") == 0) &&
                barge_json_bool(target, "essential", true))
                return client_err(err,
                                  "Invalid 'dependsOn' setting for container '%s': condition %s "
                                  "on container '%s' requires '%s' to be non-essential "
                                  "(essential: false).",
                                  cname, cond, dep, dep);
            if (strcmp(cond, "HEALTHY") == 0 && !barge_json_object(target, "healthCheck"))
                return client_err(err,
                                  "Invalid 'dependsOn' setting for container '%s': condition "
                                  "HEALTHY on container '%s' requires '%s' to have a "
                                  "healthCheck.",
                                  cname, dep, dep);
        }
    }
    /* A cycle would block the task forever: a depth-first walk from each
     * container (at most 10) finds one. */
    size_t n = json_array_size(containers);
    for (size_t s = 0; s < n; s++) {
        /* Iterative DFS with an explicit stack of (node, edge index). */
        int state[MAX_CONTAINERS] = {0}; /* 0 new, 1 on path, 2 done */
        size_t stack_node[MAX_CONTAINERS + 1], stack_edge[MAX_CONTAINERS + 1];
        size_t top = 0;
        stack_node[0] = s;
        stack_edge[0] = 0;
        state[s] = 1;
        while (true) {
            size_t node = stack_node[top];
            json_t *deps = barge_json_array(json_array_get(containers, node), "dependsOn");
            if (stack_edge[top] < json_array_size(deps)) {
                const char *dep =
                    barge_json_str(json_array_get(deps, stack_edge[top]++), "containerName", "");
                size_t k;
                for (k = 0; k < n; k++)
                    if (barge_streq(barge_json_str(json_array_get(containers, k), "name", NULL),
                                    dep))
                        break;
                if (k == n || state[k] == 2)
                    continue;
                if (state[k] == 1)
                    return client_err(err,
                                      "Invalid 'dependsOn' settings: containers '%s' and '%s' "
                                      "depend on each other in a cycle.",
                                      barge_json_str(json_array_get(containers, node), "name", ""),
                                      dep);
                state[k] = 1;
                top++;
                stack_node[top] = k;
                stack_edge[top] = 0;
            } else {
                state[node] = 2;
                if (top == 0)
                    break;
                top--;
            }
        }
    }
    return 0;
}

/* A valueFrom must be one of the forms the agent can fetch (secretref.h);
 * the region and account used here only fill in bare names. */
static int check_value_from(const char *what, const char *cname, const char *name,
                            const char *value_from, struct barge_error **err)
{
    if (!*value_from)
        return client_err(err,
                          "Invalid '%s' setting for container '%s': '%s' needs a valueFrom (a "
                          "parameter name or ARN, or a secret ARN).",
                          what, cname, name);
    struct barge_secret_ref ref;
    struct barge_error *bad = NULL;
    if (barge_secret_ref_parse(value_from, "us-east-1", "000000000000", &ref, &bad) < 0) {
        int r = client_err(err, "Invalid '%s' setting for container '%s': %s.", what, cname,
                           bad->message);
        barge_error_free(bad);
        return r;
    }
    barge_secret_ref_release(&ref);
    return 0;
}

/* Names in list (objects with "name") must be unique. */
static int check_unique(const json_t *list, const char *what, const char *cname,
                        struct barge_error **err)
{
    size_t i, j;
    json_t *a, *b;
    json_array_foreach((json_t *)list, i, a)
    {
        json_array_foreach((json_t *)list, j, b)
        {
            if (j < i &&
                barge_streq(barge_json_str(b, "name", NULL), barge_json_str(a, "name", "")))
                return client_err(err,
                                  "Invalid '%s' setting for container '%s': the name '%s' is "
                                  "used twice.",
                                  what, cname, barge_json_str(a, "name", ""));
        }
    }
    return 0;
}

static int check_env(json_t *c, const char *cname, struct barge_error **err)
{
    json_t *files = barge_json_array(c, "environmentFiles");
    if (json_array_size(files) > 10)
        return client_err(err,
                          "Invalid 'environmentFiles' setting for container '%s': at most 10 "
                          "environment files are allowed; %zu were given.",
                          cname, json_array_size(files));
    size_t i, j;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *v = barge_json_str(f, "value", "");
        char *bucket = NULL, *key = NULL;
        struct barge_error *bad = NULL;
        if (barge_s3_object_arn_parse(v, &bucket, &key, &bad) < 0) {
            barge_error_free(bad);
            return client_err(err,
                              "Invalid 'environmentFiles' setting for container '%s': value "
                              "'%s' must be an S3 object ARN (arn:aws:s3:::bucket/key).",
                              cname, v);
        }
        free(bucket);
        free(key);
        if (!barge_streq(barge_json_str(f, "type", "s3"), "s3"))
            return client_err(err,
                              "Invalid 'environmentFiles' setting for container '%s': type "
                              "'%s' is not supported; use 's3'.",
                              cname, barge_json_str(f, "type", ""));
        json_t *g;
        json_array_foreach(files, j, g)
        {
            if (j < i && barge_streq(barge_json_str(g, "value", NULL), v))
                return client_err(err,
                                  "Invalid 'environmentFiles' setting for container '%s': "
                                  "'%s' is listed twice.",
                                  cname, v);
        }
    }
    json_array_foreach(barge_json_array(c, "environment"), i, f)
    {
        if (!*barge_json_str(f, "name", ""))
            return client_err(err, "Environment variable name cannot be null or blank.");
    }
    json_t *secrets = barge_json_array(c, "secrets");
    json_t *s, *t;
    if (check_unique(secrets, "secrets", cname, err) < 0)
        return -1;
    json_array_foreach(secrets, i, s)
    {
        const char *name = barge_json_str(s, "name", "");
        if (check_value_from("secrets", cname, name, barge_json_str(s, "valueFrom", ""), err) < 0)
            return -1;
        json_array_foreach(barge_json_array(c, "environment"), j, t)
        {
            if (barge_streq(barge_json_str(t, "name", NULL), name))
                return client_err(err,
                                  "The secret name must be unique and not shared with any new "
                                  "or existing environment variables set on the container, "
                                  "such as '%s'.",
                                  name);
        }
    }
    json_t *options = barge_json_array(barge_json_object(c, "logConfiguration"), "secretOptions");
    if (check_unique(options, "logConfiguration.secretOptions", cname, err) < 0)
        return -1;
    json_array_foreach(options, i, s)
    {
        if (check_value_from("logConfiguration.secretOptions", cname, barge_json_str(s, "name", ""),
                             barge_json_str(s, "valueFrom", ""), err) < 0)
            return -1;
    }
    return 0;
}

static int check_restart(json_t *c, const char *cname, struct barge_error **err)
{
    json_t *rp = barge_json_object(c, "restartPolicy");
    if (!rp)
        return 0;
    json_t *period = json_object_get(rp, "restartAttemptPeriod");
    if (period && (json_integer_value(period) < 60 || json_integer_value(period) > 1800))
        return client_err(err,
                          "Invalid 'restartPolicy' setting for container '%s': "
                          "restartAttemptPeriod must be between 60 and 1800 seconds; '%lld' was "
                          "given.",
                          cname, (long long)json_integer_value(period));
    if (json_array_size(barge_json_array(rp, "ignoredExitCodes")) > 50)
        return client_err(err,
                          "Invalid 'restartPolicy' setting for container '%s': at most 50 "
                          "ignoredExitCodes are allowed.",
                          cname);
    return 0;
}

static bool volume_defined(const json_t *volumes, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(volumes, i, v)
    {
        if (barge_streq(barge_json_str(v, "name", NULL), name))
            return true;
    }
    return false;
}

static int check_volumes(const json_t *volumes, const json_t *containers, bool fargate,
                         struct barge_error **err)
{
    size_t i, j;
    json_t *v, *w, *c, *m;
    json_array_foreach(volumes, i, v)
    {
        const char *name = barge_json_str(v, "name", "");
        if (!name_ok(name))
            return client_err(err,
                              "Invalid volume name '%s': up to 255 letters, numbers, hyphens "
                              "and underscores are allowed.",
                              name);
        json_array_foreach(volumes, j, w)
        {
            if (j < i && barge_streq(barge_json_str(w, "name", NULL), name))
                return client_err(err, "Invalid volumes: the name '%s' is used twice.", name);
        }
        if (fargate && barge_json_str(barge_json_object(v, "host"), "sourcePath", NULL))
            return client_err(err,
                              "Fargate does not support host volumes: volume '%s' sets "
                              "host.sourcePath. Use a task-scoped volume without a sourcePath.",
                              name);
    }
    json_array_foreach(containers, i, c)
    {
        const char *cname = barge_json_str(c, "name", "");
        json_array_foreach(barge_json_array(c, "mountPoints"), j, m)
        {
            const char *src = barge_json_str(m, "sourceVolume", "");
            if (!volume_defined(volumes, src))
                return client_err(err,
                                  "Invalid 'mountPoints' setting for container '%s': volume '%s' "
                                  "is not defined in the task definition's volumes.",
                                  cname, src);
            if (!barge_str_has_prefix(barge_json_str(m, "containerPath", ""), "/"))
                return client_err(err,
                                  "Invalid 'mountPoints' setting for container '%s': "
                                  "containerPath '%s' must be an absolute path.",
                                  cname, barge_json_str(m, "containerPath", ""));
        }
        json_array_foreach(barge_json_array(c, "volumesFrom"), j, m)
        {
            const char *src = barge_json_str(m, "sourceContainer", "");
            if (!find_container(containers, src) || strcmp(src, cname) == 0)
                return client_err(err,
                                  "Invalid 'volumesFrom' setting for container '%s': container "
                                  "'%s' is not another container of this task definition.",
                                  cname, src);
        }
    }
    return 0;
}

static void add_attr(json_t *attrs, const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (barge_streq(barge_json_str(a, "name", NULL), name))
            return;
    }
    json_array_append_new(attrs, json_pack("{s:s}", "name", name));
}

/* The capabilities an agent must advertise to run this task definition, named
 * as ECS names them. */
static json_t *required_attributes(const json_t *td)
{
    json_t *attrs = json_array();
    const char *mode = barge_json_str(td, "networkMode", "bridge");
    if (strcmp(mode, "awsvpc") == 0)
        add_attr(attrs, "ecs.capability.task-eni");
    size_t i, j;
    json_t *c, *s;
    json_array_foreach(barge_json_array(td, "containerDefinitions"), i, c)
    {
        if (barge_json_object(c, "healthCheck"))
            add_attr(attrs, "ecs.capability.container-health-check");
        if (json_array_size(barge_json_array(c, "dependsOn")))
            add_attr(attrs, "ecs.capability.container-ordering");
        if (json_array_size(barge_json_array(c, "environmentFiles")))
            add_attr(attrs, "ecs.capability.env-files.s3");
        if (barge_json_object(c, "restartPolicy"))
            add_attr(attrs, "ecs.capability.container-restart-policy");
        json_array_foreach(barge_json_array(c, "secrets"), j, s)
        {
            const char *from = barge_json_str(s, "valueFrom", "");
            add_attr(attrs, strstr(from, ":secretsmanager:")
                                ? "ecs.capability.secrets.asm.environment-variables"
                                : "ecs.capability.secrets.ssm.environment-variables");
        }
        const char *driver =
            barge_json_str(barge_json_object(c, "logConfiguration"), "logDriver", NULL);
        if (driver) {
            _cleanup_free_ char *a =
                barge_xasprintf("com.amazonaws.ecs.capability.logging-driver.%s", driver);
            add_attr(attrs, a);
        }
    }
    return attrs;
}

static const char *const container_defaults[] = {"environment", "mountPoints", "volumesFrom"};

int barge_taskdef_check(const json_t *input, json_t **out, struct barge_error **err)
{
    _cleanup_json_ json_t *td = json_deep_copy(input);
    json_object_del(td, "tags");
    /* Measured compact, so that a client's indentation does not count. */
    size_t len = json_dumpb(td, NULL, 0, JSON_COMPACT);
    if (len > BARGE_TASKDEF_MAX_BYTES)
        return client_err(err, "Actual length: '%zu'. Max allowed length is '%d' bytes.", len,
                          BARGE_TASKDEF_MAX_BYTES);
    const char *family = barge_json_str(td, "family", "");
    if (!name_ok(family))
        return client_err(err,
                          "Invalid family '%s': up to 255 letters (uppercase and lowercase), "
                          "numbers, underscores and hyphens are allowed.",
                          family);
    bool fargate = has_compat(td, "FARGATE");
    const char *mode = barge_json_str(td, "networkMode", NULL);
    if (fargate && !barge_streq(mode, "awsvpc"))
        return client_err(err,
                          "Fargate only supports network mode 'awsvpc'; this task "
                          "definition uses '%s'.",
                          mode ? mode : "bridge");

    long long task_cpu = -1, task_mem = -1;
    const char *cpu_s = barge_json_str(td, "cpu", NULL);
    const char *mem_s = barge_json_str(td, "memory", NULL);
    if (cpu_s) {
        task_cpu = barge_taskdef_cpu_units(cpu_s);
        if (task_cpu < 0)
            return client_err(err,
                              "Invalid 'cpu' setting for the task: '%s'. Use CPU units "
                              "(\"1024\") or vCPUs (\"1 vCPU\").",
                              cpu_s);
        if (!fargate && (task_cpu < 128 || task_cpu > 196608))
            return client_err(err,
                              "Invalid 'cpu' setting for the task: %lld units is outside the "
                              "allowed range of 128 to 196608 units.",
                              task_cpu);
        _cleanup_free_ char *norm = barge_xasprintf("%lld", task_cpu);
        json_object_set_new(td, "cpu", json_string(norm));
    }
    if (mem_s) {
        task_mem = barge_taskdef_memory_mib(mem_s);
        if (task_mem < 6)
            return client_err(err,
                              "Invalid 'memory' setting for the task: '%s'. Use MiB (\"2048\") "
                              "or GB (\"2 GB\"), at least 6 MiB.",
                              mem_s);
        _cleanup_free_ char *norm = barge_xasprintf("%lld", task_mem);
        json_object_set_new(td, "memory", json_string(norm));
    }
    if (fargate) {
        if (task_cpu < 0)
            return client_err(err, "Fargate requires that 'cpu' be defined at the task level.");
        if (task_mem < 0)
            return client_err(err, "Fargate requires that 'memory' be defined at the task level.");
        if (!barge_taskdef_fargate_size_valid(task_cpu, task_mem))
            return client_err(err,
                              "No Fargate configuration exists for given values: %lld CPU, %lld "
                              "memory. See the valid cpu/memory pairs in the ECS documentation "
                              "(e.g. 256 CPU with 512, 1024 or 2048 memory).",
                              task_cpu, task_mem);
        const char *pid = barge_json_str(td, "pidMode", NULL);
        if (pid && strcmp(pid, "task") != 0)
            return client_err(err, "Fargate only supports pidMode 'task'; '%s' was given.", pid);
        if (json_object_get(td, "ipcMode"))
            return client_err(err, "Fargate does not support ipcMode.");
    }
    json_t *eph = barge_json_object(td, "ephemeralStorage");
    if (eph) {
        json_int_t size = barge_json_int(eph, "sizeInGiB", 0);
        if (size < 21 || size > 200)
            return client_err(err,
                              "Invalid 'ephemeralStorage' setting: sizeInGiB must be between 21 "
                              "and 200; '%lld' was given.",
                              (long long)size);
    }

    json_t *containers = barge_json_array(td, "containerDefinitions");
    size_t n = json_array_size(containers);
    if (n == 0)
        return client_err(err, "Container list cannot be empty.");
    if (n > MAX_CONTAINERS)
        return client_err(err,
                          "Too many containers: a task definition may have at most %d; %zu were "
                          "given.",
                          MAX_CONTAINERS, n);
    bool any_essential = false;
    long long cpu_sum = 0, reserve_sum = 0;
    size_t i, j;
    json_t *c, *other;
    json_array_foreach(containers, i, c)
    {
        const char *cname = barge_json_str(c, "name", NULL);
        if (!cname || !name_ok(cname))
            return client_err(err,
                              "Invalid container name '%s': up to 255 letters (uppercase and "
                              "lowercase), numbers, hyphens and underscores are allowed.",
                              cname ? cname : "");
        json_array_foreach(containers, j, other)
        {
            if (j < i && barge_streq(barge_json_str(other, "name", NULL), cname))
                return client_err(err,
                                  "Duplicate container name '%s': container names must be "
                                  "unique within a task definition.",
                                  cname);
        }
        if (!*barge_json_str(c, "image", ""))
            return client_err(err,
                              "Container.image should not be null or empty (container "
                              "'%s').",
                              cname);
        if (!json_object_get(c, "essential"))
            json_object_set_new(c, "essential", json_true());
        if (json_is_true(json_object_get(c, "essential")))
            any_essential = true;
        if (!json_object_get(c, "cpu"))
            json_object_set_new(c, "cpu", json_integer(0));
        cpu_sum += barge_json_int(c, "cpu", 0);
        json_int_t mem = barge_json_int(c, "memory", 0),
                   res = barge_json_int(c, "memoryReservation", 0);
        reserve_sum += res ? res : mem;
        for (size_t d = 0; d < BARGE_ARRAY_SIZE(container_defaults); d++)
            if (!json_object_get(c, container_defaults[d]))
                json_object_set_new(c, container_defaults[d], json_array());
        if (fargate && barge_json_bool(c, "privileged", false))
            return client_err(
                err, "Fargate does not support privileged containers (container '%s').", cname);
        json_t *st = json_object_get(c, "stopTimeout");
        if (st && fargate && (json_integer_value(st) < 2 || json_integer_value(st) > 120))
            return client_err(err,
                              "Invalid 'stopTimeout' setting for container '%s': Fargate allows "
                              "2 to 120 seconds; '%lld' was given.",
                              cname, (long long)json_integer_value(st));
        if (st && json_integer_value(st) < 0)
            return client_err(err,
                              "Invalid 'stopTimeout' setting for container '%s': '%lld' is "
                              "negative.",
                              cname, (long long)json_integer_value(st));
        if (check_memory(c, cname, task_mem, err) < 0 ||
            check_ports(c, cname, mode ? mode : "bridge", err) < 0 ||
            check_health(c, cname, err) < 0 || check_env(c, cname, err) < 0 ||
            check_restart(c, cname, err) < 0)
            return -1;
    }
    if (!any_essential)
        return client_err(err, "At least one container in the task definition must be "
                               "essential (essential: true).");
    if (task_cpu > 0 && cpu_sum > task_cpu)
        return client_err(err,
                          "The sum of the containers' cpu (%lld units) is more than the task's "
                          "cpu (%lld units).",
                          cpu_sum, task_cpu);
    if (task_mem > 0 && reserve_sum > task_mem)
        return client_err(err,
                          "The sum of the containers' memory reservations (%lld MiB) is more than "
                          "the task's memory (%lld MiB).",
                          reserve_sum, task_mem);
    if (check_dependencies(containers, err) < 0)
        return -1;
    if (!json_object_get(td, "volumes"))
        json_object_set_new(td, "volumes", json_array());
    if (check_volumes(barge_json_array(td, "volumes"), containers, fargate, err) < 0)
        return -1;
    if (!json_object_get(td, "placementConstraints"))
        json_object_set_new(td, "placementConstraints", json_array());

    json_t *compat = json_pack("[s]", "EC2");
    json_array_foreach(barge_json_array(td, "requiresCompatibilities"), i, other)
    {
        const char *v = json_string_value(other);
        if (v && strcmp(v, "EC2") != 0)
            json_array_append_new(compat, json_string(v));
    }
    json_object_set_new(td, "compatibilities", compat);
    json_object_set_new(td, "requiresAttributes", required_attributes(td));
    *out = barge_steal(&td);
    return 0;
}
