/* Terraform state look-ups for the tfstate plugin: parses an address such as
 * module.app.data.aws_subnet.private["a"].tags.Name into the module path,
 * the resource (mode, type, name, instance key) and an attribute path, then
 * walks the version-4 state's resources and instances. */
#include <ctype.h>
#include <string.h>

#include "cli/cli.h"
#include "common/json.h"

/* One path step: a key (".name" or ["name"]) or an index ([0]). */
struct step {
    char *key;
    long index;
    bool is_index;
};

struct addr {
    char *module; /* "module.a.module.b[\"x\"]" as the state writes it; "" for root */
    bool data;
    char *type, *name;
    bool has_key;
    struct step key; /* the instance key */
    struct step *path;
    size_t n_path;
};

static void addr_release(struct addr *a)
{
    free(a->module);
    free(a->type);
    free(a->name);
    free(a->key.key);
    for (size_t i = 0; i < a->n_path; i++)
        free(a->path[i].key);
    free(a->path);
}

static char *ident(const char **pp)
{
    const char *p = *pp;
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '-')
        n++;
    if (!n)
        return NULL;
    *pp = p + n;
    return barge_xstrndup(p, n);
}

/* "[0]", "['a']" or "[\"a\"]" at *pp. */
static int bracket(const char **pp, struct step *s)
{
    const char *p = *pp;
    if (*p != '[')
        return -1;
    p++;
    memset(s, 0, sizeof(*s));
    if (*p == '\'' || *p == '"') {
        char q = *p++;
        const char *end = strchr(p, q);
        if (!end || end[1] != ']')
            return -1;
        s->key = barge_xstrndup(p, (size_t)(end - p));
        *pp = end + 2;
        return 0;
    }
    char *end;
    s->index = strtol(p, &end, 10);
    if (end == p || *end != ']')
        return -1;
    s->is_index = true;
    *pp = end + 1;
    return 0;
}

static int parse_addr(const char *address, struct addr *a, struct barge_error **err)
{
    memset(a, 0, sizeof(*a));
    const char *p = address;
    char *mod = NULL;
    size_t mlen = 0;
    FILE *m = open_memstream(&mod, &mlen);
    while (strncmp(p, "module.", 7) == 0) {
        p += 7;
        _cleanup_free_ char *name = ident(&p);
        if (!name)
            goto bad;
        fprintf(m, "%smodule.%s", ftell(m) > 0 ? "." : "", name);
        if (*p == '[') {
            struct step s;
            if (bracket(&p, &s) < 0)
                goto bad;
            if (s.is_index)
                fprintf(m, "[%ld]", s.index);
            else
                fprintf(m, "[\"%s\"]", s.key);
            free(s.key);
        }
        if (*p != '.')
            goto bad;
        p++;
    }
    fclose(m);
    m = NULL;
    a->module = mod;
    if (strncmp(p, "data.", 5) == 0) {
        a->data = true;
        p += 5;
    }
    a->type = ident(&p);
    if (!a->type || *p != '.')
        goto bad;
    p++;
    a->name = ident(&p);
    if (!a->name)
        goto bad;
    if (*p == '[') {
        if (bracket(&p, &a->key) < 0)
            goto bad;
        a->has_key = true;
    }
    while (*p) {
        struct step s = {0};
        if (*p == '.') {
            p++;
            s.key = ident(&p);
            if (!s.key)
                goto bad;
        } else if (bracket(&p, &s) < 0) {
            goto bad;
        }
        a->path = barge_xrealloc(a->path, (a->n_path + 1) * sizeof(*a->path));
        a->path[a->n_path++] = s;
    }
    return 0;
bad:
    if (m) {
        fclose(m);
        free(mod);
    }
    addr_release(a);
    return barge_error_set(err, BARGE_ERR_INVALID, "invalid tfstate address '%s'", address);
}

static json_t *walk(json_t *v, const struct step *path, size_t n)
{
    for (size_t i = 0; i < n && v; i++) {
        if (path[i].is_index)
            v = json_array_get(v, (size_t)path[i].index);
        else
            v = json_object_get(v, path[i].key);
    }
    return v;
}

static char *value_text(const json_t *v)
{
    if (json_is_string(v))
        return barge_xstrdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int barge_cli_tfstate_lookup(const json_t *state, const char *address, char **out,
                             struct barge_error **err)
{
    *out = NULL;
    if (strncmp(address, "output.", 7) == 0) {
        const char *p = address + 7;
        _cleanup_free_ char *name = ident(&p);
        json_t *o = name ? json_object_get(json_object_get(state, "outputs"), name) : NULL;
        if (!o)
            return barge_error_set(err, BARGE_ERR_NOT_FOUND, "tfstate: '%s' is not found", address);
        json_t *v = json_object_get(o, "value");
        if (*p) {
            _cleanup_free_ char *synthetic = barge_xasprintf("x.y%s", p);
            struct addr a;
            if (parse_addr(synthetic, &a, err) < 0)
                return -1;
            if (a.has_key) {
                /* x.y[0] parsed the first index as an instance key. */
                a.path = barge_xrealloc(a.path, (a.n_path + 1) * sizeof(*a.path));
                memmove(a.path + 1, a.path, a.n_path * sizeof(*a.path));
                a.path[0] = a.key;
                a.key.key = NULL;
                a.n_path++;
            }
            v = walk(v, a.path, a.n_path);
            addr_release(&a);
        }
        if (!v)
            return barge_error_set(err, BARGE_ERR_NOT_FOUND, "tfstate: '%s' is not found", address);
        *out = value_text(v);
        return 0;
    }
    struct addr a;
    if (parse_addr(address, &a, err) < 0)
        return -1;
    size_t i;
    json_t *r;
    json_t *found = NULL;
    json_array_foreach(json_object_get(state, "resources"), i, r)
    {
        if (!barge_streq(barge_json_str(r, "mode", "managed"), a.data ? "data" : "managed") ||
            !barge_streq(barge_json_str(r, "type", ""), a.type) ||
            !barge_streq(barge_json_str(r, "name", ""), a.name) ||
            !barge_streq(barge_json_str(r, "module", ""), a.module))
            continue;
        size_t j;
        json_t *inst;
        json_array_foreach(json_object_get(r, "instances"), j, inst)
        {
            json_t *k = json_object_get(inst, "index_key");
            bool match;
            if (!a.has_key)
                match = !k;
            else if (a.key.is_index)
                match = json_is_integer(k) && json_integer_value(k) == a.key.index;
            else
                match = json_is_string(k) && strcmp(json_string_value(k), a.key.key) == 0;
            if (match) {
                found = json_object_get(inst, "attributes");
                break;
            }
        }
        if (found)
            break;
    }
    json_t *v = found ? walk(found, a.path, a.n_path) : NULL;
    addr_release(&a);
    if (!v)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "tfstate: '%s' is not found", address);
    *out = value_text(v);
    return 0;
}
