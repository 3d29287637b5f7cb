/* docker-compose to ECS, after ecs-cli compose: every compose service becomes
 * a container of one task definition named after the project, compose keys
 * map to container-definition fields (see compose.h and docs/cli.md), and
 * ecs-params.yml adds what compose cannot say (task size, network mode,
 * roles, secrets, essential flags, placement). Variables are interpolated in
 * string values after parsing, so a value cannot break the YAML around it. */
#include "cli/compose.h"

#include <ctype.h>
#include <libgen.h>
#include <math.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/yaml.h"
#include "common/json.h"

struct ctx {
    const struct barge_cli_compose_opts *o;
    json_t *dotenv; /* {name: value} from .env */
    char *dir;      /* the first compose file's directory */
    struct barge_error **err;
    bool failed;
};

static void warn(struct ctx *c, const char *fmt, ...) BARGE_PRINTF(2, 3);
static void warn(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = barge_xvasprintf(fmt, ap);
    va_end(ap);
    if (c->o->warn)
        c->o->warn(c->o->ud, m);
}

static int fail(struct ctx *c, const char *fmt, ...) BARGE_PRINTF(2, 3);
static int fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = barge_xvasprintf(fmt, ap);
    va_end(ap);
    c->failed = true;
    return barge_error_set(c->err, BARGE_ERR_INVALID, "%s", m);
}

/* ---- values ---- */

long long barge_cli_compose_bytes(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    char *end;
    double d = strtod(s, &end);
    if (end == s || d < 0)
        return -1;
    while (*end == ' ')
        end++;
    double mult = 1;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'b':
        end++;
        break;
    case 'k':
        mult = 1024.0;
        end++;
        break;
    case 'm':
        mult = 1024.0 * 1024;
        end++;
        break;
    case 'g':
        mult = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 't':
        mult = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    default:
        return -1;
    }
    if (mult > 1 && (*end == 'b' || *end == 'B'))
        end++;
    if (mult > 1 && (*end == 'i' || *end == 'I') && (end[1] == 'b' || end[1] == 'B'))
        end += 2;
    return *end ? -1 : (long long)(d * mult);
}

static long long mib(const json_t *v)
{
    long long b = barge_cli_compose_bytes(v);
    return b < 0 ? -1 : (b + 1024 * 1024 - 1) / (1024 * 1024);
}

/* A scalar as a string (numbers and booleans as YAML wrote them); caller
 * frees; NULL for null and containers. */
static char *scalar(const json_t *v)
{
    if (json_is_string(v))
        return barge_xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return barge_xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_real(v)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%g", json_real_value(v));
        return barge_xstrdup(buf);
    }
    if (json_is_boolean(v))
        return barge_xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

/* Seconds in a compose duration ("1m30s", "10s", 10). */
static long seconds(struct ctx *c, const char *what, const json_t *v)
{
    if (json_is_number(v))
        return (long)json_number_value(v);
    double s;
    _cleanup_error_ struct barge_error *e = NULL;
    if (!json_is_string(v) || barge_cli_parse_duration(json_string_value(v), &s, &e) < 0) {
        _cleanup_free_ char *t = scalar(v);
        warn(c, "%s: '%s' is not a duration; ignored", what, t ? t : "?");
        return -1;
    }
    return (long)ceil(s);
}

/* Splits a command string as a POSIX shell would split words (quotes and
 * backslashes; no expansion), as compose does. */
static json_t *shell_split(const char *s)
{
    json_t *out = json_array();
    char *buf = barge_xmalloc(strlen(s) + 1);
    size_t n = 0;
    bool in_word = false;
    char quote = 0;
    for (const char *p = s;; p++) {
        char ch = *p;
        if (!ch) {
            if (in_word) {
                buf[n] = '\0';
                json_array_append_new(out, json_string(buf));
            }
            break;
        }
        if (quote) {
            if (ch == quote) {
                quote = 0;
            } else if (ch == '\\' && quote == '"' && p[1] && strchr("\"\\$`", p[1])) {
                buf[n++] = *++p;
            } else {
                buf[n++] = ch;
            }
            continue;
        }
        if (ch == '\'' || ch == '"') {
            quote = ch;
            in_word = true;
        } else if (ch == '\\' && p[1]) {
            buf[n++] = *++p;
            in_word = true;
        } else if (isspace((unsigned char)ch)) {
            if (in_word) {
                buf[n] = '\0';
                json_array_append_new(out, json_string(buf));
                n = 0;
                in_word = false;
            }
        } else {
            buf[n++] = ch;
            in_word = true;
        }
    }
    free(buf);
    return out;
}

static json_t *string_list(struct ctx *c, const char *what, const json_t *v, bool split)
{
    if (json_is_string(v))
        return split ? shell_split(json_string_value(v)) : json_pack("[s]", json_string_value(v));
    if (!json_is_array(v)) {
        warn(c, "%s must be a string or a list; ignored", what);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        char *s = scalar(e);
        if (s)
            json_array_append_new(out, json_string(s));
        free(s);
    }
    return out;
}

/* ---- interpolation ---- */

static const char *lookup(struct ctx *c, const char *name)
{
    const char *v = getenv(name);
    return v ? v : json_string_value(json_object_get(c->dotenv, name));
}

static char *interpolate(struct ctx *c, const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    for (const char *p = s; *p; p++) {
        if (*p != '$') {
            fputc(*p, o);
            continue;
        }
        if (p[1] == '$') {
            fputc('$', o);
            p++;
            continue;
        }
        if (p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end) {
                fputc('$', o);
                continue;
            }
            _cleanup_free_ char *expr = barge_xstrndup(p + 2, (size_t)(end - p - 2));
            size_t nl = strspn(expr, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_");
            _cleanup_free_ char *name = barge_xstrndup(expr, nl);
            const char *op = expr + nl;
            const char *val = lookup(c, name);
            if (!*op) {
                if (!val)
                    warn(c, "variable '%s' is not set; using an empty string", name);
                fputs(val ? val : "", o);
            } else if (strncmp(op, ":-", 2) == 0) {
                fputs(val && *val ? val : op + 2, o);
            } else if (*op == '-') {
                fputs(val ? val : op + 1, o);
            } else if (strncmp(op, ":?", 2) == 0 || *op == '?') {
                const char *msg = op + (op[0] == ':' ? 2 : 1);
                if (!val || (op[0] == ':' && !*val)) {
                    fclose(o);
                    free(buf);
                    fail(c, "required variable '%s' is missing a value%s%s", name, *msg ? ": " : "",
                         msg);
                    return NULL;
                }
                fputs(val, o);
            } else if (strncmp(op, ":+", 2) == 0) {
                fputs(val && *val ? op + 2 : "", o);
            } else if (*op == '+') {
                fputs(val ? op + 1 : "", o);
            } else {
                fputs(val ? val : "", o);
            }
            p = end;
            continue;
        }
        size_t nl = 0;
        while (isalnum((unsigned char)p[1 + nl]) || p[1 + nl] == '_')
            nl++;
        if (!nl || isdigit((unsigned char)p[1])) {
            fputc('$', o);
            continue;
        }
        _cleanup_free_ char *name = barge_xstrndup(p + 1, nl);
        const char *val = lookup(c, name);
        if (!val)
            warn(c, "variable '%s' is not set; using an empty string", name);
        fputs(val ? val : "", o);
        p += nl;
    }
    fclose(o);
    return buf;
}

/* Interpolates every string value in place. */
static int interpolate_all(struct ctx *c, json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, e)
        {
            if (json_is_string(e)) {
                char *s = interpolate(c, json_string_value(e));
                if (!s)
                    return -1;
                json_object_set_new(v, k, json_string(s));
                free(s);
            } else if (interpolate_all(c, e) < 0) {
                return -1;
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (json_is_string(e)) {
                char *s = interpolate(c, json_string_value(e));
                if (!s)
                    return -1;
                json_array_set_new(v, i, json_string(s));
                free(s);
            } else if (interpolate_all(c, e) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* KEY=VALUE lines (env_file and .env). */
static json_t *read_env_file(struct ctx *c, const char *path, bool required)
{
    _cleanup_free_ char *text = barge_read_file(path, NULL);
    if (!text) {
        if (required)
            barge_error_set_errno(c->err, BARGE_ERR_IO, "cannot read env_file '%s'", path);
        if (required)
            c->failed = true;
        return required ? NULL : json_object();
    }
    json_t *o = json_object();
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (isspace((unsigned char)*line))
            line++;
        if (!*line || *line == '#')
            continue;
        if (strncmp(line, "export ", 7) == 0)
            line += 7;
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || isspace((unsigned char)line[n - 1])))
            line[--n] = '\0';
        char *eq = strchr(line, '=');
        if (!eq) {
            /* "KEY" alone takes the value from the environment, if any. */
            const char *v = getenv(line);
            if (v)
                json_object_set_new(o, line, json_string(v));
            continue;
        }
        *eq = '\0';
        char *val = eq + 1;
        size_t vn = strlen(val);
        if (vn >= 2 && (val[0] == '"' || val[0] == '\'') && val[vn - 1] == val[0]) {
            val[vn - 1] = '\0';
            val++;
        }
        json_object_set_new(o, line, json_string(val));
    }
    return o;
}

/* ---- containers ---- */

static char *resolve_path(struct ctx *c, const char *p)
{
    if (p[0] == '/')
        return barge_xstrdup(p);
    if (p[0] == '~' && p[1] == '/')
        return barge_xasprintf("%s%s", getenv("HOME") ? getenv("HOME") : "", p + 1);
    _cleanup_free_ char *rel = barge_xasprintf("%s/%s", c->dir, p);
    char *real = realpath(rel, NULL);
    return real ? real : barge_steal(&rel);
}

static int environment(struct ctx *c, const char *svc, const json_t *s, json_t *cdef)
{
    json_t *env = json_object();
    json_t *ef = json_object_get(s, "env_file");
    json_t *files = json_is_string(ef) ? json_pack("[O]", ef) : json_incref(ef);
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *path =
            json_is_string(f) ? json_string_value(f) : barge_json_str(f, "path", NULL);
        bool required = json_is_string(f) ? true : barge_json_bool(f, "required", true);
        if (!path)
            continue;
        _cleanup_free_ char *full = resolve_path(c, path);
        json_t *vars = read_env_file(c, full, required);
        if (!vars) {
            json_decref(files);
            json_decref(env);
            return -1;
        }
        json_object_update(env, vars);
        json_decref(vars);
    }
    json_decref(files);
    json_t *e = json_object_get(s, "environment");
    if (json_is_object(e)) {
        const char *k;
        json_t *v;
        json_object_foreach(e, k, v)
        {
            char *val = scalar(v);
            if (!val && getenv(k))
                val = barge_xstrdup(getenv(k));
            if (!val) {
                warn(c, "service '%s': environment '%s' has no value; using an empty string", svc,
                     k);
                val = barge_xstrdup("");
            }
            json_object_set_new(env, k, json_string(val));
            free(val);
        }
    } else if (json_is_array(e)) {
        json_array_foreach(e, i, f)
        {
            _cleanup_free_ char *kv = scalar(f);
            if (!kv)
                continue;
            char *eq = strchr(kv, '=');
            if (eq) {
                *eq = '\0';
                json_object_set_new(env, kv, json_string(eq + 1));
            } else if (getenv(kv)) {
                json_object_set_new(env, kv, json_string(getenv(kv)));
            } else {
                warn(c, "service '%s': environment '%s' has no value; using an empty string", svc,
                     kv);
                json_object_set_new(env, kv, json_string(""));
            }
        }
    }
    if (json_object_size(env)) {
        json_t *list = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(env, k, v)
        {
            json_array_append_new(list, json_pack("{s:s, s:O}", "name", k, "value", v));
        }
        json_object_set_new(cdef, "environment", list);
    }
    json_decref(env);
    return 0;
}

static void add_port(json_t *pms, long host, long container, const char *proto)
{
    json_t *pm = json_pack("{s:I, s:s}", "containerPort", (json_int_t)container, "protocol", proto);
    if (host >= 0)
        json_object_set_new(pm, "hostPort", json_integer(host));
    json_array_append_new(pms, pm);
}

/* "80", "8080:80", "127.0.0.1:8080:80/udp", "8000-8001:8000-8001", or the
 * long form. hostPort -1 means "not given". */
static int ports(struct ctx *c, const char *svc, const json_t *s, json_t *cdef)
{
    json_t *ps = json_object_get(s, "ports");
    if (!ps)
        return 0;
    json_t *pms = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p)
    {
        if (json_is_object(p)) {
            long target = (long)barge_json_int(p, "target", -1);
            json_t *pub = json_object_get(p, "published");
            long published = -1;
            if (json_is_integer(pub))
                published = (long)json_integer_value(pub);
            else if (json_is_string(pub))
                published = strtol(json_string_value(pub), NULL, 10);
            if (target < 0)
                return fail(c, "service '%s': a long-form port needs a target", svc);
            if (barge_json_str(p, "host_ip", NULL))
                warn(c, "service '%s': port host_ip is not supported; ignored", svc);
            add_port(pms, published, target, barge_json_str(p, "protocol", "tcp"));
            continue;
        }
        _cleanup_free_ char *spec = scalar(p);
        if (!spec)
            continue;
        const char *proto = "tcp";
        char *slash = strchr(spec, '/');
        if (slash) {
            *slash = '\0';
            proto = slash + 1;
        }
        /* Split from the right: the last part is the container's port. */
        char *last = strrchr(spec, ':');
        const char *cpart = last ? last + 1 : spec;
        char *hpart = NULL;
        if (last) {
            *last = '\0';
            char *ip = strrchr(spec, ':');
            if (ip) {
                warn(c, "service '%s': the host IP of port '%s' is not supported; ignored", svc,
                     spec);
                hpart = ip + 1;
            } else {
                hpart = spec;
            }
        }
        long c0, c1, h0 = -1, h1 = -1;
        char *end;
        c0 = strtol(cpart, &end, 10);
        c1 = *end == '-' ? strtol(end + 1, &end, 10) : c0;
        if (*end || c0 <= 0 || c1 < c0)
            return fail(c, "service '%s': invalid port '%s'", svc,
                        json_string_value(p) ? json_string_value(p) : cpart);
        if (hpart && *hpart) {
            h0 = strtol(hpart, &end, 10);
            h1 = *end == '-' ? strtol(end + 1, &end, 10) : h0;
            if (*end || h0 < 0 || h1 - h0 != c1 - c0)
                return fail(c, "service '%s': invalid host port in '%s'", svc, hpart);
        }
        for (long k = 0; k <= c1 - c0; k++)
            add_port(pms, h0 < 0 ? -1 : h0 + k, c0 + k, proto);
    }
    json_object_set_new(cdef, "portMappings", pms);
    return 0;
}

static void healthcheck(struct ctx *c, const char *svc, const json_t *h, json_t *cdef)
{
    if (!json_is_object(h) || barge_json_bool(h, "disable", false))
        return;
    json_t *test = json_object_get(h, "test");
    json_t *cmd;
    if (json_is_string(test)) {
        cmd = json_pack("[s,s]", "CMD-SHELL", json_string_value(test));
    } else if (json_is_array(test)) {
        cmd = string_list(c, "healthcheck.test", test, false);
        const char *first = json_string_value(json_array_get(cmd, 0));
        if (barge_streq(first, "NONE")) {
            json_decref(cmd);
            return;
        }
    } else {
        warn(c, "service '%s': healthcheck without a test; ignored", svc);
        return;
    }
    json_t *hc = json_pack("{s:o}", "command", cmd);
    static const struct {
        const char *from, *to;
    } durations[] = {
        {"interval", "interval"}, {"timeout", "timeout"}, {"start_period", "startPeriod"}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(durations); i++) {
        json_t *v = json_object_get(h, durations[i].from);
        if (!v)
            continue;
        _cleanup_free_ char *what =
            barge_xasprintf("service '%s': healthcheck.%s", svc, durations[i].from);
        long secs = seconds(c, what, v);
        if (secs >= 0)
            json_object_set_new(hc, durations[i].to, json_integer(secs));
    }
    if (json_is_integer(json_object_get(h, "retries")))
        json_object_set(hc, "retries", json_object_get(h, "retries"));
    if (json_object_get(h, "start_interval"))
        warn(c, "service '%s': healthcheck.start_interval is not supported; ignored", svc);
    json_object_set_new(cdef, "healthCheck", hc);
}

static json_t *linux_params(json_t *cdef)
{
    json_t *lp = json_object_get(cdef, "linuxParameters");
    if (!lp) {
        lp = json_object();
        json_object_set_new(cdef, "linuxParameters", lp);
    }
    return lp;
}

static json_t *caps(struct ctx *c, const json_t *v)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        if (!s)
            continue;
        json_array_append_new(out, json_string(strncmp(s, "CAP_", 4) == 0 ? s + 4 : s));
    }
    return out;
}

static int tmpfs(struct ctx *c, const char *svc, const json_t *v, json_t *cdef)
{
    json_t *list = json_is_string(v) ? json_pack("[O]", v) : json_incref((json_t *)v);
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *spec = json_string_value(e);
        if (!spec)
            continue;
        _cleanup_free_ char *copy = barge_xstrdup(spec);
        char *colon = strchr(copy, ':');
        long long size = -1;
        json_t *opts = json_array();
        if (colon) {
            *colon = '\0';
            char *save = NULL;
            for (char *o = strtok_r(colon + 1, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                if (strncmp(o, "size=", 5) == 0) {
                    _cleanup_json_ json_t *sv = json_string(o + 5);
                    size = mib(sv);
                } else {
                    json_array_append_new(opts, json_string(o));
                }
            }
        }
        if (size <= 0) {
            warn(c, "service '%s': tmpfs '%s' has no size; ECS needs one, using 64 MiB", svc, copy);
            size = 64;
        }
        json_t *t = json_pack("{s:s, s:I}", "containerPath", copy, "size", (json_int_t)size);
        if (json_array_size(opts))
            json_object_set_new(t, "mountOptions", opts);
        else
            json_decref(opts);
        json_array_append_new(out, t);
    }
    json_decref(list);
    json_object_set_new(linux_params(cdef), "tmpfs", out);
    return 0;
}

/* Volumes: bind mounts become host volumes named volume-N, named volumes
 * keep their names (docker-managed, task scope), anonymous ones get a name
 * and no host path. */
static int volumes(struct ctx *c, const char *svc, const json_t *s, json_t *cdef,
                   json_t *task_volumes, const json_t *top_volumes)
{
    json_t *vs = json_object_get(s, "volumes");
    if (!vs)
        return 0;
    json_t *mps = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v)
    {
        _cleanup_free_ char *source = NULL, *target = NULL;
        bool ro = false;
        const char *type = NULL;
        if (json_is_object(v)) {
            type = barge_json_str(v, "type", "volume");
            if (strcmp(type, "tmpfs") == 0) {
                _cleanup_json_ json_t *t = json_string(barge_json_str(v, "target", ""));
                tmpfs(c, svc, t, cdef);
                continue;
            }
            if (strcmp(type, "bind") != 0 && strcmp(type, "volume") != 0) {
                warn(c, "service '%s': volume type '%s' is not supported; ignored", svc, type);
                continue;
            }
            source = barge_json_str(v, "source", NULL)
                         ? barge_xstrdup(barge_json_str(v, "source", NULL))
                         : NULL;
            target = barge_xstrdup(barge_json_str(v, "target", ""));
            ro = barge_json_bool(v, "read_only", false);
        } else {
            _cleanup_free_ char *spec = scalar(v);
            if (!spec)
                continue;
            char *parts[3] = {0};
            size_t n = 0;
            char *save = NULL;
            for (char *t = strtok_r(spec, ":", &save); t && n < 3; t = strtok_r(NULL, ":", &save))
                parts[n++] = t;
            if (n == 1) {
                target = barge_xstrdup(parts[0]);
            } else {
                source = barge_xstrdup(parts[0]);
                target = barge_xstrdup(parts[1]);
                if (n == 3) {
                    ro = strstr(parts[2], "ro") != NULL;
                    if (strstr(parts[2], "z") || strstr(parts[2], "Z"))
                        warn(c, "service '%s': SELinux volume labels are ignored", svc);
                }
            }
        }
        if (!*target)
            return fail(c, "service '%s': a volume needs a target", svc);
        bool bind = source && (source[0] == '/' || source[0] == '.' || source[0] == '~' ||
                               (type && strcmp(type, "bind") == 0));
        _cleanup_free_ char *name = NULL;
        if (bind) {
            _cleanup_free_ char *host = resolve_path(c, source);
            /* One task volume per host path, shared by containers that mount it. */
            size_t j;
            json_t *tv;
            json_array_foreach(task_volumes, j, tv)
            {
                if (barge_streq(barge_json_str(json_object_get(tv, "host"), "sourcePath", NULL),
                                host))
                    name = barge_xstrdup(barge_json_str(tv, "name", ""));
            }
            if (!name) {
                name = barge_xasprintf("volume-%zu", json_array_size(task_volumes));
                json_array_append_new(task_volumes, json_pack("{s:s, s:{s:s}}", "name", name,
                                                              "host", "sourcePath", host));
            }
        } else if (source) {
            if (top_volumes && !json_object_get(top_volumes, source))
                warn(c, "service '%s': volume '%s' is not declared under top-level volumes", svc,
                     source);
            name = barge_xstrdup(source);
            bool exists = false;
            size_t j;
            json_t *tv;
            json_array_foreach(task_volumes, j, tv)
            {
                exists = exists || barge_streq(barge_json_str(tv, "name", NULL), name);
            }
            if (!exists)
                json_array_append_new(task_volumes, json_pack("{s:s, s:{s:s, s:b}}", "name", name,
                                                              "dockerVolumeConfiguration", "scope",
                                                              "shared", "autoprovision", 1));
        } else {
            name = barge_xasprintf("volume-%zu", json_array_size(task_volumes));
            json_array_append_new(task_volumes, json_pack("{s:s}", "name", name));
        }
        json_array_append_new(mps, json_pack("{s:s, s:s, s:b}", "sourceVolume", name,
                                             "containerPath", target, "readOnly", ro));
    }
    json_object_set_new(cdef, "mountPoints", mps);
    return 0;
}

static json_t *kv_map(const json_t *v)
{
    json_t *out = json_object();
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            _cleanup_free_ char *s = scalar(e);
            json_object_set_new(out, k, json_string(s ? s : ""));
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            _cleanup_free_ char *s = scalar(e);
            if (!s)
                continue;
            char *eq = strchr(s, '=');
            if (eq)
                *eq = '\0';
            json_object_set_new(out, s, json_string(eq ? eq + 1 : ""));
        }
    }
    return out;
}

static const char *condition(const char *compose)
{
    if (barge_streq(compose, "service_healthy"))
        return "HEALTHY";
    if (barge_streq(compose, "service_completed_successfully"))
        return "SUCCESS";
    return "START";
}

/* Keys of a compose service this converter reads. */
static const char *const known[] = {
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "mem_limit",
    "mem_reservation",
    "cpu_shares",
    "healthcheck",
    "ulimits",
    "cap_add",
    "cap_drop",
    "tmpfs",
    "volumes",
    "labels",
    "logging",
    "user",
    "working_dir",
    "stop_grace_period",
    "depends_on",
    "hostname",
    "privileged",
    "read_only",
    "tty",
    "dns",
    "dns_search",
    "extra_hosts",
    "links",
    "shm_size",
    "devices",
    "init",
    "deploy",
    "security_opt",
    "log_driver",
    "log_opt",
    "container_name",
    "stdin_open",
    "volumes_from",
};

/* volumes_from: "svc", "svc:ro", "container:name[:ro|rw]" (v1/v2). ECS can
 * only take volumes from another container of the same task, that is from
 * another compose service. */
static int volumes_from(struct ctx *c, const char *svc, const json_t *s, const json_t *services,
                        json_t *cdef)
{
    json_t *vf = json_object_get(s, "volumes_from");
    if (!vf)
        return 0;
    if (!json_is_array(vf))
        return fail(c, "service '%s': volumes_from must be a list", svc);
    json_t *out = json_array();
    json_object_set_new(cdef, "volumesFrom", out);
    size_t i;
    json_t *e;
    json_array_foreach(vf, i, e)
    {
        const char *spec = json_string_value(e);
        if (!spec || !*spec)
            return fail(c, "service '%s': volumes_from entries must be strings", svc);
        _cleanup_free_ char *copy = barge_xstrdup(spec);
        char *src = copy;
        if (barge_str_has_prefix(src, "container:"))
            src += strlen("container:");
        char *mode = strchr(src, ':');
        if (mode)
            *mode++ = '\0';
        if (mode && strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0)
            return fail(c, "service '%s': volumes_from '%s': mode '%s' is not ro or rw", svc, spec,
                        mode);
        if (!json_object_get(services, src))
            return fail(c,
                        "service '%s': volumes_from '%s': '%s' is not a service of this file "
                        "(an ECS container takes volumes only from its own task)",
                        svc, spec, src);
        if (strcmp(src, svc) == 0)
            return fail(c, "service '%s': volumes_from '%s' names the service itself", svc, spec);
        json_array_append_new(out, json_pack("{s:s, s:b}", "sourceContainer", src, "readOnly",
                                             mode && strcmp(mode, "ro") == 0));
    }
    return 0;
}

/* logging (and v1's log_driver/log_opt) become logConfiguration; ECS needs
 * a driver and string options, so anything else is refused rather than
 * dropped. */
static int logging(struct ctx *c, const char *svc, const json_t *s, json_t *cdef)
{
    json_t *lg = json_object_get(s, "logging");
    const char *what = lg ? "logging" : "log_driver";
    json_t *driver = lg ? NULL : json_object_get(s, "log_driver");
    json_t *opt = lg ? NULL : json_object_get(s, "log_opt");
    if (lg) {
        if (!json_is_object(lg))
            return fail(c, "service '%s': logging must be a mapping with driver and options", svc);
        const char *k;
        json_t *v;
        json_object_foreach(lg, k, v)
        {
            if (strcmp(k, "driver") != 0 && strcmp(k, "options") != 0)
                return fail(c, "service '%s': logging.%s is not a logging key (driver, options)",
                            svc, k);
        }
        driver = json_object_get(lg, "driver");
        opt = json_object_get(lg, "options");
    }
    if (!driver && !opt)
        return 0;
    if (!driver)
        return fail(c, "service '%s': %s options need a driver (ECS requires logDriver)", svc,
                    lg ? "logging" : "log_opt");
    if (!json_is_string(driver) || !*json_string_value(driver))
        return fail(c, "service '%s': %s%s must be a driver name", svc, what, lg ? ".driver" : "");
    json_t *lc = json_pack("{s:s}", "logDriver", json_string_value(driver));
    json_object_set_new(cdef, "logConfiguration", lc);
    if (!opt || json_is_null(opt))
        return 0;
    const char *optname = lg ? "logging.options" : "log_opt";
    if (!json_is_object(opt))
        return fail(c, "service '%s': %s must be a mapping", svc, optname);
    const char *k;
    json_t *v;
    json_object_foreach(opt, k, v)
    {
        if (json_is_object(v) || json_is_array(v))
            return fail(c, "service '%s': %s.%s must be a string", svc, optname, k);
    }
    json_object_set_new(lc, "options", kv_map(opt));
    return 0;
}

static json_t *container(struct ctx *c, const char *name, const json_t *s, json_t *task_volumes,
                         const json_t *top_volumes, const json_t *services)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(known); i++)
            ok = ok || strcmp(k, known[i]) == 0;
        if (!ok && strncmp(k, "x-", 2) != 0)
            warn(c, "service '%s': '%s' is not supported; ignored", name, k);
    }
    json_t *cdef = json_pack("{s:s, s:b}", "name", name, "essential", 1);
    const char *image = barge_json_str(s, "image", NULL);
    if (!image) {
        fail(c, "service '%s' has no image (build is not supported: build and push first)", name);
        json_decref(cdef);
        return NULL;
    }
    json_object_set_new(cdef, "image", json_string(image));
    if (json_object_get(s, "container_name"))
        warn(c, "service '%s': container_name is ignored; ECS names containers by service", name);
    if ((v = json_object_get(s, "command")) && (v = string_list(c, "command", v, true)))
        json_object_set_new(cdef, "command", v);
    if ((v = json_object_get(s, "entrypoint")) && (v = string_list(c, "entrypoint", v, true)))
        json_object_set_new(cdef, "entryPoint", v);
    if (environment(c, name, s, cdef) < 0 || ports(c, name, s, cdef) < 0) {
        json_decref(cdef);
        return NULL;
    }
    json_t *limits =
        json_object_get(json_object_get(json_object_get(s, "deploy"), "resources"), "limits");
    json_t *reserv =
        json_object_get(json_object_get(json_object_get(s, "deploy"), "resources"), "reservations");
    json_t *mem = json_object_get(s, "mem_limit");
    if (!mem)
        mem = json_object_get(limits, "memory");
    json_t *memr = json_object_get(s, "mem_reservation");
    if (!memr)
        memr = json_object_get(reserv, "memory");
    if (mem) {
        long long m = mib(mem);
        if (m < 0)
            warn(c, "service '%s': mem_limit is not a size; ignored", name);
        else
            json_object_set_new(cdef, "memory", json_integer(m));
    }
    if (memr) {
        long long m = mib(memr);
        if (m < 0)
            warn(c, "service '%s': mem_reservation is not a size; ignored", name);
        else
            json_object_set_new(cdef, "memoryReservation", json_integer(m));
    }
    if (json_is_integer(json_object_get(s, "cpu_shares"))) {
        json_object_set(cdef, "cpu", json_object_get(s, "cpu_shares"));
    } else if (json_object_get(limits, "cpus")) {
        _cleanup_free_ char *cpus = scalar(json_object_get(limits, "cpus"));
        json_object_set_new(cdef, "cpu", json_integer((json_int_t)(strtod(cpus, NULL) * 1024)));
    }
    json_t *deploy = json_object_get(s, "deploy");
    json_object_foreach(deploy, k, v)
    {
        if (strcmp(k, "resources") != 0 && strcmp(k, "replicas") != 0)
            warn(c, "service '%s': deploy.%s is not supported; ignored", name, k);
    }
    healthcheck(c, name, json_object_get(s, "healthcheck"), cdef);
    json_t *ul = json_object_get(s, "ulimits");
    if (json_is_object(ul)) {
        json_t *list = json_array();
        json_object_foreach(ul, k, v)
        {
            json_int_t soft, hard;
            if (json_is_integer(v)) {
                soft = hard = json_integer_value(v);
            } else {
                soft = barge_json_int(v, "soft", 0);
                hard = barge_json_int(v, "hard", soft);
            }
            json_array_append_new(list, json_pack("{s:s, s:I, s:I}", "name", k, "softLimit", soft,
                                                  "hardLimit", hard));
        }
        json_object_set_new(cdef, "ulimits", list);
    }
    if ((v = json_object_get(s, "cap_add")) || json_object_get(s, "cap_drop")) {
        json_t *cp = json_object();
        if (json_is_array(v))
            json_object_set_new(cp, "add", caps(c, v));
        if (json_is_array(json_object_get(s, "cap_drop")))
            json_object_set_new(cp, "drop", caps(c, json_object_get(s, "cap_drop")));
        json_object_set_new(linux_params(cdef), "capabilities", cp);
    }
    if ((v = json_object_get(s, "tmpfs")))
        tmpfs(c, name, v, cdef);
    if (json_object_get(s, "shm_size")) {
        long long m = mib(json_object_get(s, "shm_size"));
        if (m > 0)
            json_object_set_new(linux_params(cdef), "sharedMemorySize", json_integer(m));
    }
    if (json_is_true(json_object_get(s, "init")))
        json_object_set_new(linux_params(cdef), "initProcessEnabled", json_true());
    if ((v = json_object_get(s, "devices"))) {
        json_t *devs = json_array();
        size_t i;
        json_t *d;
        json_array_foreach(v, i, d)
        {
            _cleanup_free_ char *spec = scalar(d);
            if (!spec)
                continue;
            char *parts[3] = {0};
            size_t n = 0;
            char *save = NULL;
            for (char *t = strtok_r(spec, ":", &save); t && n < 3; t = strtok_r(NULL, ":", &save))
                parts[n++] = t;
            json_t *dev = json_pack("{s:s}", "hostPath", parts[0]);
            if (n > 1)
                json_object_set_new(dev, "containerPath", json_string(parts[1]));
            if (n > 2) {
                json_t *perms = json_array();
                if (strchr(parts[2], 'r'))
                    json_array_append_new(perms, json_string("read"));
                if (strchr(parts[2], 'w'))
                    json_array_append_new(perms, json_string("write"));
                if (strchr(parts[2], 'm'))
                    json_array_append_new(perms, json_string("mknod"));
                json_object_set_new(dev, "permissions", perms);
            }
            json_array_append_new(devs, dev);
        }
        json_object_set_new(linux_params(cdef), "devices", devs);
    }
    if (volumes(c, name, s, cdef, task_volumes, top_volumes) < 0) {
        json_decref(cdef);
        return NULL;
    }
    if ((v = json_object_get(s, "labels")))
        json_object_set_new(cdef, "dockerLabels", kv_map(v));
    if (volumes_from(c, name, s, services, cdef) < 0 || logging(c, name, s, cdef) < 0) {
        json_decref(cdef);
        return NULL;
    }
    static const struct {
        const char *from, *to;
    } strings[] = {{"user", "user"}, {"working_dir", "workingDirectory"}, {"hostname", "hostname"}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(strings); i++) {
        _cleanup_free_ char *sv = scalar(json_object_get(s, strings[i].from));
        if (sv && *sv)
            json_object_set_new(cdef, strings[i].to, json_string(sv));
    }
    static const struct {
        const char *from, *to;
    } bools[] = {{"privileged", "privileged"},
                 {"read_only", "readonlyRootFilesystem"},
                 {"tty", "pseudoTerminal"},
                 {"stdin_open", "interactive"}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(bools); i++)
        if (json_is_boolean(json_object_get(s, bools[i].from)))
            json_object_set(cdef, bools[i].to, json_object_get(s, bools[i].from));
    static const struct {
        const char *from, *to;
    } lists[] = {{"dns", "dnsServers"},
                 {"dns_search", "dnsSearchDomains"},
                 {"links", "links"},
                 {"security_opt", "dockerSecurityOptions"}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(lists); i++) {
        json_t *lv = json_object_get(s, lists[i].from);
        if (lv && (lv = string_list(c, lists[i].from, lv, false)))
            json_object_set_new(cdef, lists[i].to, lv);
    }
    if ((v = json_object_get(s, "extra_hosts"))) {
        json_t *hosts = json_array();
        json_t *m = kv_map(v);
        /* The list form is "host:ip" (or "host=ip"); kv_map split on '='. */
        json_object_foreach(m, k, v)
        {
            _cleanup_free_ char *hk = barge_xstrdup(k);
            const char *ip = json_string_value(v);
            char *colon = !*ip ? strchr(hk, ':') : NULL;
            if (colon) {
                *colon = '\0';
                ip = colon + 1;
            }
            json_array_append_new(hosts, json_pack("{s:s, s:s}", "hostname", hk, "ipAddress", ip));
        }
        json_decref(m);
        json_object_set_new(cdef, "extraHosts", hosts);
    }
    if ((v = json_object_get(s, "stop_grace_period"))) {
        _cleanup_free_ char *what = barge_xasprintf("service '%s': stop_grace_period", name);
        long secs = seconds(c, what, v);
        if (secs >= 0)
            json_object_set_new(cdef, "stopTimeout", json_integer(secs));
    }
    if ((v = json_object_get(s, "depends_on"))) {
        json_t *deps = json_array();
        if (json_is_array(v)) {
            size_t i;
            json_t *d;
            json_array_foreach(v, i, d)
            {
                if (json_is_string(d))
                    json_array_append_new(
                        deps, json_pack("{s:O, s:s}", "containerName", d, "condition", "START"));
            }
        } else {
            json_t *d;
            json_object_foreach(v, k, d)
            {
                json_array_append_new(deps,
                                      json_pack("{s:s, s:s}", "containerName", k, "condition",
                                                condition(barge_json_str(d, "condition", NULL))));
            }
        }
        json_object_set_new(cdef, "dependsOn", deps);
    }
    return cdef;
}

/* ---- ecs-params.yml ---- */

static long long task_size(const json_t *v, bool memory)
{
    /* Plain numbers are CPU units or MiB; strings may carry units
     * ("1GB", "0.5 vCPU"). */
    if (json_is_integer(v))
        return json_integer_value(v);
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    char *end;
    double d = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (!*end)
        return (long long)d;
    if (!memory && strncasecmp(end, "vcpu", 4) == 0)
        return (long long)(d * 1024);
    return memory ? mib(v) : -1;
}

static int apply_ecs_params(struct ctx *c, const json_t *p, json_t *td, json_t *sd)
{
    json_t *t = json_object_get(p, "task_definition");
    const char *mode = barge_json_str(t, "ecs_network_mode", NULL);
    if (mode)
        json_object_set_new(td, "networkMode", json_string(mode));
    static const struct {
        const char *from, *to;
    } strings[] = {{"task_role_arn", "taskRoleArn"},
                   {"task_execution_role", "executionRoleArn"},
                   {"pid_mode", "pidMode"},
                   {"ipc_mode", "ipcMode"}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(strings); i++) {
        const char *v = barge_json_str(t, strings[i].from, NULL);
        if (v)
            json_object_set_new(td, strings[i].to, json_string(v));
    }
    json_t *size = json_object_get(t, "task_size");
    if (size) {
        long long cpu = task_size(json_object_get(size, "cpu_limit"), false);
        long long mem = task_size(json_object_get(size, "mem_limit"), true);
        if (cpu > 0)
            json_object_set_new(td, "cpu", json_sprintf("%lld", cpu));
        if (mem > 0)
            json_object_set_new(td, "memory", json_sprintf("%lld", mem));
    }
    if (json_object_get(t, "placement_constraints"))
        json_object_set(td, "placementConstraints", json_object_get(t, "placement_constraints"));
    json_t *svcs = json_object_get(t, "services");
    const char *name;
    json_t *s;
    json_object_foreach(svcs, name, s)
    {
        json_t *cdef = NULL;
        size_t i;
        json_t *cd;
        json_array_foreach(json_object_get(td, "containerDefinitions"), i, cd)
        {
            if (barge_streq(barge_json_str(cd, "name", NULL), name))
                cdef = cd;
        }
        if (!cdef)
            return fail(c, "ecs-params: service '%s' is not in the compose file", name);
        if (json_is_boolean(json_object_get(s, "essential")))
            json_object_set(cdef, "essential", json_object_get(s, "essential"));
        if (json_is_integer(json_object_get(s, "cpu_shares")))
            json_object_set(cdef, "cpu", json_object_get(s, "cpu_shares"));
        if (json_object_get(s, "mem_limit"))
            json_object_set_new(cdef, "memory", json_integer(mib(json_object_get(s, "mem_limit"))));
        if (json_object_get(s, "mem_reservation"))
            json_object_set_new(cdef, "memoryReservation",
                                json_integer(mib(json_object_get(s, "mem_reservation"))));
        if (json_is_true(json_object_get(s, "init_process_enabled")))
            json_object_set_new(linux_params(cdef), "initProcessEnabled", json_true());
        json_t *hc = json_object_get(s, "healthcheck");
        if (hc) {
            json_t *old = json_object_get(cdef, "healthCheck");
            json_t *tmp = json_object();
            healthcheck(c, name, hc, tmp);
            json_t *nh = json_object_get(tmp, "healthCheck");
            if (old && nh)
                json_object_update(old, nh);
            else if (nh)
                json_object_set(cdef, "healthCheck", nh);
            json_decref(tmp);
        }
        json_t *secrets = json_object_get(s, "secrets");
        if (json_is_array(secrets)) {
            json_t *list = json_array();
            json_t *sec;
            json_array_foreach(secrets, i, sec)
            {
                json_array_append_new(list, json_pack("{s:s, s:s}", "name",
                                                      barge_json_str(sec, "name", ""), "valueFrom",
                                                      barge_json_str(sec, "value_from", "")));
            }
            json_object_set_new(cdef, "secrets", list);
        }
        json_t *deps = json_object_get(s, "depends_on");
        if (json_is_array(deps)) {
            json_t *list = json_array();
            json_t *d;
            json_array_foreach(deps, i, d)
            {
                json_array_append_new(list, json_pack("{s:s, s:s}", "containerName",
                                                      barge_json_str(d, "container_name", ""),
                                                      "condition",
                                                      barge_json_str(d, "condition", "START")));
            }
            json_object_set_new(cdef, "dependsOn", list);
        }
        const char *cred = barge_json_str(json_object_get(s, "repository_credentials"),
                                          "credentials_parameter", NULL);
        if (cred)
            json_object_set_new(cdef, "repositoryCredentials",
                                json_pack("{s:s}", "credentialsParameter", cred));
        json_t *so = json_object_get(json_object_get(s, "logging"), "secret_options");
        json_t *lc = json_object_get(cdef, "logConfiguration");
        if (json_is_array(so) && lc) {
            json_t *list = json_array();
            json_t *o;
            json_array_foreach(so, i, o)
            {
                json_array_append_new(list,
                                      json_pack("{s:s, s:s}", "name", barge_json_str(o, "name", ""),
                                                "valueFrom", barge_json_str(o, "value_from", "")));
            }
            json_object_set_new(lc, "secretOptions", list);
        }
    }
    json_t *rp = json_object_get(p, "run_params");
    json_t *awsvpc =
        json_object_get(json_object_get(rp, "network_configuration"), "awsvpc_configuration");
    if (awsvpc && barge_streq(barge_json_str(td, "networkMode", NULL), "awsvpc")) {
        json_t *cfg = json_object();
        if (json_object_get(awsvpc, "subnets"))
            json_object_set(cfg, "subnets", json_object_get(awsvpc, "subnets"));
        if (json_object_get(awsvpc, "security_groups"))
            json_object_set(cfg, "securityGroups", json_object_get(awsvpc, "security_groups"));
        const char *pub = barge_json_str(awsvpc, "assign_public_ip", NULL);
        if (pub)
            json_object_set_new(cfg, "assignPublicIp", json_string(pub));
        json_object_set_new(sd, "networkConfiguration",
                            json_pack("{s:o}", "awsvpcConfiguration", cfg));
    }
    json_t *tp = json_object_get(rp, "task_placement");
    if (json_object_get(tp, "strategy"))
        json_object_set(sd, "placementStrategy", json_object_get(tp, "strategy"));
    if (json_object_get(tp, "constraints"))
        json_object_set(sd, "placementConstraints", json_object_get(tp, "constraints"));
    return 0;
}

/* ---- the whole file ---- */

/* Deep merge for several -f files: maps merge, everything else replaces. */
static void merge(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v)
    {
        json_t *d = json_object_get(dst, k);
        if (json_is_object(d) && json_is_object(v))
            merge(d, v);
        else
            json_object_set_new(dst, k, json_deep_copy(v));
    }
}

static char *project_name(struct ctx *c, const json_t *doc)
{
    const char *p = c->o->project;
    if (!p)
        p = barge_json_str(doc, "name", NULL);
    if (!p)
        p = getenv("COMPOSE_PROJECT_NAME");
    _cleanup_free_ char *real = realpath(c->dir, NULL);
    if (!p || !*p) {
        const char *slash = real ? strrchr(real, '/') : NULL;
        p = slash && slash[1] ? slash + 1 : "default";
    }
    /* Compose's rule: lower case letters, digits, dashes and underscores. */
    char *out = barge_xstrdup(p);
    size_t n = 0;
    for (const char *q = p; *q; q++) {
        char ch = (char)tolower((unsigned char)*q);
        if (isalnum((unsigned char)ch) || ch == '-' || ch == '_')
            out[n++] = ch;
    }
    out[n] = '\0';
    if (!n) {
        free(out);
        out = barge_xstrdup("default");
    }
    return out;
}

int barge_cli_compose_convert(const struct barge_cli_compose_opts *opts, json_t **taskdef,
                              json_t **servicedef, char **project, struct barge_error **err)
{
    *taskdef = *servicedef = NULL;
    *project = NULL;
    if (!opts->n_files)
        return barge_error_set(err, BARGE_ERR_INVALID, "no compose file");
    struct ctx c = {.o = opts, .err = err};
    _cleanup_free_ char *first = barge_xstrdup(opts->files[0]);
    /* Absolute, because host paths of bind mounts are resolved against it. */
    c.dir = realpath(dirname(first), NULL);
    if (!c.dir)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", opts->files[0]);
    _cleanup_free_ char *dotenv_path = barge_xasprintf("%s/.env", c.dir);
    c.dotenv = read_env_file(&c, dotenv_path, false);
    _cleanup_json_ json_t *doc = json_object();
    int rc = -1;
    json_t *td = NULL, *sd = NULL;
    for (size_t i = 0; i < opts->n_files; i++) {
        size_t len = 0;
        _cleanup_free_ char *text = barge_read_file(opts->files[i], &len);
        if (!text) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", opts->files[i]);
            goto out;
        }
        _cleanup_json_ json_t *one = NULL;
        if (barge_cli_yaml_parse(text, len, opts->files[i], &one, err) < 0)
            goto out;
        if (!json_is_object(one)) {
            barge_error_set(err, BARGE_ERR_INVALID, "'%s' is not a compose file", opts->files[i]);
            goto out;
        }
        if (interpolate_all(&c, one) < 0)
            goto out;
        merge(doc, one);
    }
    const char *k;
    json_t *v;
    json_t *services = json_object_get(doc, "services");
    const char *version = barge_json_str(doc, "version", NULL);
    /* Version 1 files have neither a version nor a services key: every
     * top-level key is a service. */
    bool v1 = !services && (!json_object_get(doc, "version") || barge_streq(version, "1"));
    if (v1) {
        json_object_del(doc, "version");
        services = doc;
        json_object_foreach(doc, k, v)
        {
            if (!json_is_object(v)) {
                barge_error_set(err, BARGE_ERR_INVALID,
                                "'%s': top-level '%s' is not a service (a version 1 file has "
                                "only services; later versions put them under services:)",
                                opts->files[0], k);
                goto out;
            }
        }
    } else {
        json_object_foreach(doc, k, v)
        {
            if (strcmp(k, "version") != 0 && strcmp(k, "services") != 0 &&
                strcmp(k, "volumes") != 0 && strcmp(k, "name") != 0 && strncmp(k, "x-", 2) != 0)
                warn(&c, "top-level '%s' is not supported; ignored", k);
        }
    }
    if (!json_is_object(services) || !json_object_size(services)) {
        barge_error_set(err, BARGE_ERR_INVALID, "'%s' has no services", opts->files[0]);
        goto out;
    }
    json_t *top_volumes = v1 ? NULL : json_object_get(doc, "volumes");
    json_object_foreach(top_volumes, k, v)
    {
        /* A volume made outside the project has no ECS counterpart: a task
         * definition's volumes are made for (or with) the task. */
        json_t *ext = json_object_get(v, "external");
        if (ext && !json_is_false(ext) && !json_is_null(ext)) {
            barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                            "volume '%s' is external: barge cannot mount a volume created "
                            "outside the task; remove 'external' to let the task create it, or "
                            "use a host path",
                            k);
            goto out;
        }
    }
    *project = project_name(&c, v1 ? NULL : doc);
    td = json_pack("{s:s, s:[]}", "family", *project, "containerDefinitions");
    sd = json_object();
    json_t *task_volumes = json_array();
    json_int_t replicas = 0;
    json_object_foreach(services, k, v)
    {
        json_t *cdef = container(&c, k, v, task_volumes, top_volumes, services);
        if (!cdef) {
            json_decref(task_volumes);
            goto out;
        }
        json_array_append_new(json_object_get(td, "containerDefinitions"), cdef);
        json_t *r = json_object_get(json_object_get(v, "deploy"), "replicas");
        if (json_is_integer(r) && json_integer_value(r) > replicas)
            replicas = json_integer_value(r);
    }
    if (json_array_size(task_volumes))
        json_object_set_new(td, "volumes", task_volumes);
    else
        json_decref(task_volumes);
    if (opts->ecs_params) {
        size_t len = 0;
        _cleanup_free_ char *text = barge_read_file(opts->ecs_params, &len);
        if (!text) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", opts->ecs_params);
            goto out;
        }
        _cleanup_json_ json_t *params = NULL;
        if (barge_cli_yaml_parse(text, len, opts->ecs_params, &params, err) < 0 ||
            interpolate_all(&c, params) < 0 || apply_ecs_params(&c, params, td, sd) < 0)
            goto out;
    }
    const char *mode = barge_json_str(td, "networkMode", "bridge");
    bool has_task_memory = json_object_get(td, "memory") != NULL;
    size_t i;
    json_t *cd;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, cd)
    {
        /* host and awsvpc publish the container's port itself. */
        json_t *pm;
        size_t j;
        json_array_foreach(json_object_get(cd, "portMappings"), j, pm)
        {
            json_t *hp = json_object_get(pm, "hostPort");
            if (strcmp(mode, "host") == 0 || strcmp(mode, "awsvpc") == 0) {
                if (hp && json_integer_value(hp) != barge_json_int(pm, "containerPort", -1))
                    warn(&c,
                         "container '%s': %s network mode publishes port %lld as itself; "
                         "host port %lld ignored",
                         barge_json_str(cd, "name", ""), mode,
                         (long long)barge_json_int(pm, "containerPort", 0),
                         (long long)json_integer_value(hp));
                json_object_set(pm, "hostPort", json_object_get(pm, "containerPort"));
            } else if (!hp) {
                json_object_set_new(pm, "hostPort", json_integer(0));
            }
        }
        json_t *m = json_object_get(cd, "memory"), *mr = json_object_get(cd, "memoryReservation");
        if (m && mr && json_integer_value(m) < json_integer_value(mr)) {
            barge_error_set(err, BARGE_ERR_INVALID,
                            "container '%s': mem_limit must not be less than mem_reservation",
                            barge_json_str(cd, "name", ""));
            goto out;
        }
        /* ECS needs a memory figure somewhere; ecs-cli's default is 512 MiB. */
        if (!m && !mr && !has_task_memory)
            json_object_set_new(cd, "memory", json_integer(512));
    }
    json_object_set_new(td, "networkMode", json_string(mode));
    json_object_set_new(sd, "desiredCount", json_integer(replicas > 0 ? replicas : 1));
    if (c.failed)
        goto out;
    *taskdef = td;
    *servicedef = sd;
    td = sd = NULL;
    rc = 0;
out:
    json_decref(td);
    json_decref(sd);
    json_decref(c.dotenv);
    free(c.dir);
    if (rc < 0) {
        free(*project);
        *project = NULL;
        if (err && !*err)
            barge_error_set(err, BARGE_ERR_INVALID, "cannot convert the compose file");
    }
    return rc;
}
