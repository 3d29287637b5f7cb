/* The ecspresso config file: finding it, reading it through the template
 * engine (YAML) or Jsonnet and the template engine (JSON, Jsonnet), checking
 * its keys, required_version and timeout. Also the Go duration and
 * hashicorp version-constraint parsers those keys need. */
#include <ctype.h>
#include <libgen.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/yaml.h"
#include "common/json.h"

void barge_cli_config_free(struct barge_cli_config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->dir);
    free(c->region);
    free(c->cluster);
    free(c->service);
    free(c->service_definition);
    free(c->task_definition);
    free(c->required_version);
    json_decref(c->plugins);
    json_decref(c->doc);
    free(c);
}

int barge_cli_parse_duration(const char *s, double *seconds, struct barge_error **err)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ms", 1e-3},
                 {"s", 1},     {"m", 60},    {"h", 3600}};
    const char *p = s;
    double total = 0, sign = 1;
    if (*p == '-' || *p == '+')
        sign = *p++ == '-' ? -1 : 1;
    if (strcmp(p, "0") == 0) {
        *seconds = 0;
        return 0;
    }
    if (!*p)
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid duration '%s'", s);
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '.')
            return barge_error_set(err, BARGE_ERR_INVALID, "invalid duration '%s'", s);
        double v = strtod(p, &end);
        if (end == p)
            return barge_error_set(err, BARGE_ERR_INVALID, "invalid duration '%s'", s);
        p = end;
        size_t best = 0;
        double scale = 0;
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(units); i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0 && n > best) {
                best = n;
                scale = units[i].scale;
            }
        }
        if (!best)
            return barge_error_set(err, BARGE_ERR_INVALID, "missing unit in duration '%s'", s);
        p += best;
        total += v * scale;
    }
    *seconds = sign * total;
    return 0;
}

/* ---- versions ---- */

struct version {
    long seg[3];
    int n_seg;
    char pre[64];
};

static int parse_version(const char *s, struct version *v)
{
    memset(v, 0, sizeof(*v));
    while (isspace((unsigned char)*s))
        s++;
    if (*s == 'v')
        s++;
    while (v->n_seg < 3) {
        if (!isdigit((unsigned char)*s))
            return -1;
        char *end;
        v->seg[v->n_seg++] = strtol(s, &end, 10);
        s = end;
        if (*s != '.')
            break;
        s++;
    }
    if (*s == '-') {
        size_t n = strcspn(s + 1, "+ \t");
        snprintf(v->pre, sizeof(v->pre), "%.*s", (int)n, s + 1);
        s += 1 + n;
    }
    if (*s == '+')
        s += strcspn(s, " \t");
    while (isspace((unsigned char)*s))
        s++;
    return *s ? -1 : 0;
}

static int cmp_version(const struct version *a, const struct version *b)
{
    for (int i = 0; i < 3; i++)
        if (a->seg[i] != b->seg[i])
            return a->seg[i] < b->seg[i] ? -1 : 1;
    /* A pre-release sorts before its release. */
    if (!a->pre[0] != !b->pre[0])
        return a->pre[0] ? -1 : 1;
    int c = strcmp(a->pre, b->pre);
    return c < 0 ? -1 : c > 0;
}

int barge_cli_version_check(const char *constraint, const char *version, struct barge_error **err)
{
    struct version have;
    if (parse_version(version, &have) < 0)
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid version '%s'", version);
    _cleanup_free_ char *copy = barge_xstrdup(constraint);
    char *save = NULL;
    int ok = 1;
    bool any = false;
    for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*part))
            part++;
        const char *ops[] = {">=", "<=", "!=", "~>", "=", ">", "<"};
        const char *op = "=";
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(ops); i++) {
            if (strncmp(part, ops[i], strlen(ops[i])) == 0) {
                op = ops[i];
                part += strlen(ops[i]);
                break;
            }
        }
        struct version want;
        if (parse_version(part, &want) < 0)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "required_version has invalid format: '%s'", constraint);
        any = true;
        int c = cmp_version(&have, &want);
        bool sat;
        if (strcmp(op, ">=") == 0)
            sat = c >= 0;
        else if (strcmp(op, "<=") == 0)
            sat = c <= 0;
        else if (strcmp(op, "!=") == 0)
            sat = c != 0;
        else if (strcmp(op, ">") == 0)
            sat = c > 0;
        else if (strcmp(op, "<") == 0)
            sat = c < 0;
        else if (strcmp(op, "~>") == 0) {
            /* Pessimistic: >= want, and the segments before the last given
             * one stay the same ("~> 2.3" is >= 2.3, < 3; "~> 2.3.1" < 2.4). */
            sat = c >= 0;
            int keep = want.n_seg > 1 ? want.n_seg - 1 : 1;
            for (int i = 0; i < keep; i++)
                sat = sat && have.seg[i] == want.seg[i];
        } else
            sat = c == 0;
        if (!sat)
            ok = 0;
    }
    if (!any)
        return barge_error_set(err, BARGE_ERR_INVALID, "required_version has invalid format: '%s'",
                               constraint);
    return ok;
}

/* ---- the config file ---- */

static const char *const known_keys[] = {
    "region",           "cluster", "service", "service_definition", "task_definition", "timeout",
    "required_version", "plugins", "appspec", "filter_command",     "codedeploy",      "ignore",
};

static char *resolve(const char *dir, const char *p)
{
    if (!p || !*p)
        return NULL;
    if (p[0] == '/' || !dir || strcmp(dir, ".") == 0)
        return barge_xstrdup(p);
    return barge_xasprintf("%s/%s", dir, p);
}

int barge_cli_config_load(struct barge_cli_app *app, const char *path,
                          struct barge_cli_config **out, struct barge_error **err)
{
    *out = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_cli_load_file(app, path, &doc, err) < 0)
        return barge_error_wrap(err, "cannot load config '%s'", path);
    if (!json_is_object(doc))
        return barge_error_set(err, BARGE_ERR_INVALID, "config '%s' is not a mapping", path);
    struct barge_cli_config *c = barge_xcalloc(1, sizeof(*c));
    c->path = barge_xstrdup(path);
    _cleanup_free_ char *pcopy = barge_xstrdup(path);
    c->dir = barge_xstrdup(dirname(pcopy));
    c->doc = json_incref(doc);
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(known_keys); i++)
            known = known || strcmp(k, known_keys[i]) == 0;
        if (!known)
            barge_cli_logl(app, BARGE_CLI_WARN, "unknown field \"%s\" in config '%s'", k, path);
        else if (strcmp(k, "codedeploy") == 0)
            barge_cli_logl(app, BARGE_CLI_WARN,
                           "config '%s': \"%s\" is for CodeDeploy, which barge does not use; "
                           "ignored",
                           path, k);
        else if (strcmp(k, "filter_command") == 0)
            barge_cli_logl(app, BARGE_CLI_WARN,
                           "config '%s': filter_command is deprecated and ignored", path);
    }
    const char *region = barge_json_str(doc, "region", "");
    c->region = *region ? barge_xstrdup(region) : NULL;
    const char *cluster = barge_json_str(doc, "cluster", "");
    c->cluster = barge_xstrdup(*cluster ? cluster : "default");
    const char *svc = barge_json_str(doc, "service", NULL);
    c->service = svc && *svc ? barge_xstrdup(svc) : NULL;
    c->service_definition = resolve(c->dir, barge_json_str(doc, "service_definition", NULL));
    c->task_definition = resolve(c->dir, barge_json_str(doc, "task_definition", NULL));
    c->timeout = 600;
    json_t *t = json_object_get(doc, "timeout");
    if (json_is_string(t)) {
        if (barge_cli_parse_duration(json_string_value(t), &c->timeout, err) < 0) {
            barge_cli_config_free(c);
            return barge_error_wrap(err, "config '%s': timeout", path);
        }
    } else if (json_is_number(t)) {
        c->timeout = json_number_value(t) / 1e9;
    }
    const char *rv = barge_json_str(doc, "required_version", NULL);
    if (rv && *rv) {
        c->required_version = barge_xstrdup(rv);
        int ok = barge_cli_version_check(rv, BARGE_CLI_ECSPRESSO_VERSION, err);
        if (ok < 0) {
            barge_cli_config_free(c);
            return -1;
        }
        if (!ok) {
            barge_cli_config_free(c);
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "version %s (barge %s) does not satisfy constraints "
                                   "required_version: %s",
                                   BARGE_CLI_ECSPRESSO_VERSION, BARGE_CLI_VERSION, rv);
        }
    }
    json_t *plugins = json_object_get(doc, "plugins");
    c->plugins = json_is_array(plugins) ? json_incref(plugins) : json_array();
    *out = c;
    return 0;
}

/* KEY=VALUE lines, "export " allowed, quotes stripped, # comments. Later
 * files win, as ecspresso's --envfile does. */
int barge_cli_envfile_load(const char *path, struct barge_error **err)
{
    _cleanup_free_ char *text = barge_read_file(path, NULL);
    if (!text)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read envfile '%s'", path);
    char *save = NULL;
    int lineno = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (isspace((unsigned char)*line))
            line++;
        if (!*line || *line == '#')
            continue;
        if (strncmp(line, "export ", 7) == 0)
            line += 7;
        char *eq = strchr(line, '=');
        if (!eq)
            return barge_error_set(err, BARGE_ERR_INVALID, "envfile '%s' line %d: no '='", path,
                                   lineno);
        *eq = '\0';
        char *key = line, *val = eq + 1;
        size_t kn = strlen(key);
        while (kn > 0 && isspace((unsigned char)key[kn - 1]))
            key[--kn] = '\0';
        size_t vn = strlen(val);
        while (vn > 0 && (isspace((unsigned char)val[vn - 1]) || val[vn - 1] == '\r'))
            val[--vn] = '\0';
        if (vn >= 2 && (val[0] == '"' || val[0] == '\'') && val[vn - 1] == val[0]) {
            val[vn - 1] = '\0';
            val++;
        }
        setenv(key, val, 1);
    }
    return 0;
}
