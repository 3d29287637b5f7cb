/* Naming ECS resources: the ARNs of this server's region and account, the
 * names and identifiers callers pass (names, ARNs, family:revision) turned
 * into store keys, and the lookups of clusters, cluster members and task
 * definitions by them (ecs.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/arn.h"
#include "common/json.h"
#include "ecs/ecs.h"

char *ecs_arn(const struct barge_server *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *res = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_arn_make("ecs", barge_server_region(srv), srv->cfg.account_id, res);
}

bool ecs_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

/* Takes "arn:aws:ecs:<region>:<account>:<type>/<rest>" apart, checking that it
 * is an ECS ARN of this region and account; returns rest (caller frees). */
static char *ecs_arn_rest(const struct barge_server *srv, const char *arn, const char *type)
{
    struct barge_arn a;
    if (barge_arn_parse(arn, &a) < 0)
        return NULL;
    char *rest = NULL;
    size_t tl = strlen(type);
    if (strcmp(a.service, "ecs") == 0 && strcmp(a.region, barge_server_region(srv)) == 0 &&
        strcmp(a.account, srv->cfg.account_id) == 0 && strncmp(a.resource, type, tl) == 0 &&
        a.resource[tl] == '/')
        rest = barge_xstrdup(a.resource + tl + 1);
    barge_arn_release(&a);
    return rest;
}

char *ecs_arn_path(const struct barge_server *srv, const char *arn, const char *type, int parts)
{
    _cleanup_free_ char *prefix = ecs_arn(srv, "%s/", type);
    if (!arn || !barge_str_has_prefix(arn, prefix))
        return NULL;
    const char *rest = arn + strlen(prefix);
    int n = 1;
    for (const char *c = rest; *c; c++) {
        if (*c == '/') {
            if (c == rest || c[1] == '/' || c[1] == '\0')
                return NULL;
            n++;
        }
    }
    return *rest && n == parts ? barge_xstrdup(rest) : NULL;
}

int ecs_cluster_name(const struct barge_server *srv, const char *ident, char **name,
                     struct barge_error **err)
{
    if (!ident || !*ident) {
        *name = barge_xstrdup("default");
        return 0;
    }
    if (barge_str_has_prefix(ident, "arn:")) {
        *name = ecs_arn_rest(srv, ident, "cluster");
        if (!*name || !ecs_name_valid(*name)) {
            free(*name);
            *name = NULL;
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Invalid cluster ARN '%s'.", ident);
        }
        return 0;
    }
    *name = barge_xstrdup(ident);
    return 0;
}

int ecs_cluster_load(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                     json_t **doc, struct barge_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (ecs_cluster_name(srv, ident, &name, err) < 0)
        return -1;
    int r = barge_store_get(tx, ECS_KIND_CLUSTER, name, doc, err);
    if (r < 0)
        return -1;
    if (r == 0 || strcmp(barge_json_str(*doc, "status", ""), "ACTIVE") != 0) {
        json_decref(*doc);
        *doc = NULL;
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ClusterNotFoundException",
                                    "Cluster not found: '%s'.", ident ? ident : "default");
    }
    return 0;
}

json_t *ecs_public(const json_t *doc)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)doc, k, v)
    {
        if (k[0] != '_')
            json_object_set_new(out, k, json_deep_copy(v));
    }
    return out;
}

char *ecs_resource_id(const struct barge_server *srv, const char *ident, const char *type,
                      struct barge_error **err)
{
    if (!barge_str_has_prefix(ident, "arn:"))
        return barge_xstrdup(ident);
    char *rest = ecs_arn_rest(srv, ident, type);
    if (!rest) {
        barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                             "Invalid %s ARN '%s'.", type, ident);
        return NULL;
    }
    char *slash = strrchr(rest, '/');
    char *id = barge_xstrdup(slash ? slash + 1 : rest);
    free(rest);
    return id;
}

int ecs_cluster_find(struct barge_tx *tx, const struct barge_server *srv, const char *kind,
                     const char *type, const char *cluster, const char *ident, json_t **doc,
                     char **key, struct barge_error **err)
{
    *doc = NULL;
    *key = NULL;
    _cleanup_free_ char *id = ecs_resource_id(srv, ident, type, err);
    if (!id)
        return -1;
    *key = barge_xasprintf("%s/%s", cluster, id);
    int r = barge_store_get(tx, kind, *key, doc, err);
    if (r <= 0) {
        free(*key);
        *key = NULL;
    }
    return r;
}

char *ecs_taskdef_key(const char *family, long long revision)
{
    return barge_xasprintf("%s!%010lld", family, revision);
}

struct latest {
    json_t *doc;
    char *key;
    bool shared;       /* keep the store's shared document instead of a copy */
    const char *exact; /* take only this key */
};

static int take_latest_active(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct latest *l = ud;
    if (l->exact ? strcmp(key, l->exact) != 0
                 : strcmp(barge_json_str(doc, "status", ""), "ACTIVE") != 0)
        return 0;
    /* doc is shared with other readers (the store caches task definitions) */
    l->doc = l->shared ? json_incref(doc) : json_deep_copy(doc);
    if (!l->doc)
        abort();
    l->key = barge_xstrdup(key);
    return 1;
}

/* A lookup of the shared kind: the latest ACTIVE revision of a family (the
 * name "family!") or one revision ("family!0000000003") as [key, doc]: task
 * definitions are read far more often than registered or deregistered. */
static bool memo_find(struct barge_tx *tx, const char *kind, const char *name, json_t **doc,
                      char **key)
{
    _cleanup_json_ json_t *memo = barge_store_memo_get(tx, kind, name);
    if (!memo)
        return false;
    *doc = json_incref(json_array_get(memo, 1));
    *key = barge_xstrdup(json_string_value(json_array_get(memo, 0)));
    return true;
}

static int taskdef_find(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                        bool shared, json_t **doc, char **key, struct barge_error **err)
{
    *doc = NULL;
    *key = NULL;
    _cleanup_free_ char *spec = NULL;
    const char *kind = ECS_KIND_TASKDEF;
    if (barge_str_has_prefix(ident, "arn:")) {
        spec = ecs_arn_rest(srv, ident, "task-definition");
        /* A daemon's tasks name their daemon task definition. */
        if (!spec && (spec = ecs_arn_rest(srv, ident, "daemon-task-definition")))
            kind = ECS_KIND_DTASKDEF;
        if (!spec)
            return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                        "Invalid task definition ARN '%s'.", ident);
    } else {
        spec = barge_xstrdup(ident);
    }
    struct latest l = {.shared = shared};
    _cleanup_free_ char *prefix = NULL;
    char *colon = strchr(spec, ':');
    if (colon) {
        *colon = '\0';
        char *end;
        long long rev = strtoll(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end || rev < 1 || !ecs_name_valid(spec))
            return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                        "Invalid revision number. Number: '%s'.", colon + 1);
        prefix = ecs_taskdef_key(spec, rev);
        if (!shared) {
            int r = barge_store_get(tx, kind, prefix, doc, err);
            if (r > 0)
                *key = barge_steal(&prefix);
            return r;
        }
        /* The exact key sorts first among the keys it prefixes. */
        l.exact = prefix;
        if (memo_find(tx, kind, prefix, doc, key))
            return 1;
        if (barge_store_scan(tx, kind, prefix, NULL, false, 1, take_latest_active, &l, err) < 0)
            return -1;
    } else {
        if (!ecs_name_valid(spec))
            return 0;
        prefix = barge_xasprintf("%s!", spec);
        if (shared && memo_find(tx, kind, prefix, doc, key))
            return 1;
        if (barge_store_scan(tx, kind, prefix, NULL, true, 0, take_latest_active, &l, err) < 0)
            return -1;
    }
    if (!l.doc)
        return 0;
    if (shared) {
        _cleanup_json_ json_t *memo = json_pack("[sO]", l.key, l.doc);
        barge_store_memo_put(tx, kind, prefix, memo);
    }
    *doc = l.doc;
    *key = l.key;
    return 1;
}

int ecs_taskdef_find(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                     json_t **doc, char **key, struct barge_error **err)
{
    return taskdef_find(tx, srv, ident, false, doc, key, err);
}

int ecs_taskdef_find_shared(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                            const json_t **doc, char **key, struct barge_error **err)
{
    json_t *d = NULL;
    int r = taskdef_find(tx, srv, ident, true, &d, key, err);
    *doc = d;
    return r;
}
