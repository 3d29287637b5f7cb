/* Option parsing for the CLI: long options only (plus -h), kong-style, so
 * global options may come before or after the command and negatable booleans
 * take --no-NAME, as ecspresso's flags do. getopt_long is not used because
 * it cannot express --no-NAME for every boolean or merge per-command tables
 * with the global one without copying them. */
#include <errno.h>
#include <string.h>

#include "cli/cli.h"

static const struct barge_cli_opt *find(const struct barge_cli_opt *const *tables, size_t n,
                                        const char *name, size_t len, bool *negated)
{
    *negated = false;
    for (size_t t = 0; t < n; t++) {
        for (const struct barge_cli_opt *o = tables[t]; o && o->name; o++) {
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
            if (o->type == BARGE_CLI_OPT_BOOL && len > 3 && strncmp(name, "no-", 3) == 0 &&
                strlen(o->name) == len - 3 && strncmp(o->name, name + 3, len - 3) == 0) {
                *negated = true;
                return o;
            }
        }
    }
    return NULL;
}

static int set_value(const struct barge_cli_opt *o, const char *v, struct barge_error **err)
{
    switch (o->type) {
    case BARGE_CLI_OPT_STR:
        *(const char **)o->target = v;
        break;
    case BARGE_CLI_OPT_INT: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (!*v || *end || errno)
            return barge_error_set(err, BARGE_ERR_INVALID, "--%s: '%s' is not a number", o->name,
                                   v);
        *(long *)o->target = n;
        break;
    }
    case BARGE_CLI_OPT_LIST: {
        json_t **arr = o->target;
        if (!*arr)
            *arr = json_array();
        json_array_append_new(*arr, json_string(v));
        break;
    }
    case BARGE_CLI_OPT_BOOL: {
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)o->target = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)o->target = false;
        else
            return barge_error_set(err, BARGE_ERR_INVALID, "--%s: '%s' is not true or false",
                                   o->name, v);
        break;
    }
    }
    if (o->seen)
        *o->seen = true;
    return 0;
}

int barge_cli_opts_parse(const struct barge_cli_opt *const *tables, size_t n_tables, int argc,
                         char **argv, char ***pos, size_t *n_pos, bool *help,
                         struct barge_error **err)
{
    *pos = barge_xcalloc((size_t)argc + 1, sizeof(char *));
    *n_pos = 0;
    *help = false;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            (*pos)[(*n_pos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            continue;
        }
        if (a[1] != '-')
            return barge_error_set(err, BARGE_ERR_INVALID, "unknown flag '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        bool negated;
        const struct barge_cli_opt *o = find(tables, n_tables, name, len, &negated);
        if (!o)
            return barge_error_set(err, BARGE_ERR_INVALID, "unknown flag '--%.*s'", (int)len, name);
        if (o->type == BARGE_CLI_OPT_BOOL) {
            if (eq) {
                if (negated)
                    return barge_error_set(err, BARGE_ERR_INVALID, "--%.*s takes no value",
                                           (int)len, name);
                if (set_value(o, eq + 1, err) < 0)
                    return -1;
            } else {
                *(bool *)o->target = !negated;
                if (o->seen)
                    *o->seen = true;
            }
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc)
                return barge_error_set(err, BARGE_ERR_INVALID, "--%s needs a value", o->name);
            v = argv[++i];
        }
        if (set_value(o, v, err) < 0)
            return -1;
    }
    return 0;
}

void barge_cli_opts_help(FILE *f, const struct barge_cli_opt *opts)
{
    for (const struct barge_cli_opt *o = opts; o && o->name; o++) {
        char left[80];
        if (o->type != BARGE_CLI_OPT_BOOL)
            snprintf(left, sizeof(left), "--%s=%s", o->name, o->metavar ? o->metavar : "VALUE");
        else
            snprintf(left, sizeof(left), "--%s%s", o->negatable ? "[no-]" : "", o->name);
        if (strlen(left) > 28)
            fprintf(f, "  %s\n  %-28s %s\n", left, "", o->help ? o->help : "");
        else
            fprintf(f, "  %-28s %s\n", left, o->help ? o->help : "");
    }
}
