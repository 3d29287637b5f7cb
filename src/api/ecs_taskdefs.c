/* ECS task definitions: RegisterTaskDefinition, DescribeTaskDefinition,
 * ListTaskDefinitions, ListTaskDefinitionFamilies, DeregisterTaskDefinition,
 * DeleteTaskDefinitions. Revisions come from a per-family counter in the store,
 * so a number is never handed out twice, even after every revision is gone.
 * Each family also has a small document counting its ACTIVE and remaining
 * revisions, so family listings never scan revisions. */
#include <string.h>

#include "api/ecs.h"
#include "api/taskdef_check.h"
#include "common/ids.h"
#include "common/json.h"

/* Adjusts the family's counts; removes the family document when no revision
 * remains. */
static int family_adjust(struct barge_tx *tx, const char *family, int d_active, int d_total,
                         struct barge_error **err)
{
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_get(tx, ECS_KIND_FAMILY, family, &doc, err) < 0)
        return -1;
    if (!doc)
        doc = json_pack("{s:s, s:i, s:i}", "family", family, "active", 0, "total", 0);
    json_int_t active = barge_json_int(doc, "active", 0) + d_active;
    json_int_t total = barge_json_int(doc, "total", 0) + d_total;
    if (total <= 0)
        return barge_store_del(tx, ECS_KIND_FAMILY, family, err);
    json_object_set_new(doc, "active", json_integer(active < 0 ? 0 : active));
    json_object_set_new(doc, "total", json_integer(total));
    return barge_store_put(tx, ECS_KIND_FAMILY, family, doc, err);
}

static int register_task_definition(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    _cleanup_json_ json_t *td = NULL;
    json_t *tags = barge_json_array(in, "tags");
    if (barge_taskdef_check(in, &td, err) < 0 || (tags && ecs_tags_validate(tags, err) < 0))
        return -1;
    const char *family = barge_json_str(td, "family", "");

    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int64_t rev;
    _cleanup_free_ char *counter = barge_xasprintf("taskdef:%s", family);
    if (barge_store_counter_next(tx, counter, &rev, err) < 0)
        return -1;
    _cleanup_free_ char *arn = ecs_arn(ctx->srv, "task-definition/%s:%lld", family, (long long)rev);
    _cleanup_free_ char *by = barge_xasprintf("arn:aws:iam::%s:root", ctx->srv->cfg.account_id);
    json_object_set_new(td, "taskDefinitionArn", json_string(arn));
    json_object_set_new(td, "revision", json_integer(rev));
    json_object_set_new(td, "status", json_string("ACTIVE"));
    json_object_set_new(td, "registeredAt", json_real(barge_now()));
    json_object_set_new(td, "registeredBy", json_string(by));
    _cleanup_free_ char *key = ecs_taskdef_key(family, rev);
    if (barge_store_put(tx, ECS_KIND_TASKDEF, key, td, err) < 0 ||
        family_adjust(tx, family, 1, 1, err) < 0 || (tags && ecs_tags_add(tx, arn, tags, err) < 0))
        return -1;
    json_t *all_tags;
    if (ecs_tags_get(tx, arn, &all_tags, err) < 0)
        return -1;
    if (barge_store_commit(barge_steal(&tx), err) < 0) {
        json_decref(all_tags);
        return -1;
    }
    *out = json_pack("{s:O, s:o}", "taskDefinition", td, "tags", all_tags);
    return 0;
}

static int not_found(struct barge_error **err, const char *ident)
{
    return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                "Unable to describe task definition '%s'.", ident);
}

static int describe_task_definition(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    const char *ident = barge_json_str(in, "taskDefinition", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    /* The answer only reads td, so it can hold the store's cached document
     * rather than a copy; nothing may change it after this. */
    const json_t *shared = NULL;
    int r = ecs_taskdef_find_shared(tx, ctx->srv, ident, &shared, &key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return not_found(err, ident);
    json_t *td = (json_t *)shared;
    *out = json_pack("{s:o}", "taskDefinition", td);
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(in, "include"), i, v)
    {
        if (barge_streq(json_string_value(v), "TAGS")) {
            json_t *tags;
            if (ecs_tags_get(tx, barge_json_str(td, "taskDefinitionArn", ""), &tags, err) < 0) {
                json_decref(*out);
                *out = NULL;
                return -1;
            }
            json_object_set_new(*out, "tags", tags);
        }
    }
    return 0;
}

struct list_filter {
    struct barge_api_page *pg;
    const char *status; /* taskdefs: ACTIVE / INACTIVE / DELETE_IN_PROGRESS; families: or ALL */
};

static int index_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append_new(ud, json_pack("[sss]", key, barge_json_str(doc, "status", ""),
                                        barge_json_str(doc, "taskDefinitionArn", "")));
    return 0;
}

/* Every revision of the region as [key, status, ARN] in key order: a memo of
 * the store (listings are read far more often than revisions registered), so
 * a listing reads no stored document while no revision changed. */
static json_t *taskdef_index(struct barge_tx *tx, struct barge_error **err)
{
    json_t *index = barge_store_memo_get(tx, ECS_KIND_TASKDEF, "index");
    if (index)
        return index;
    index = json_array();
    if (barge_store_scan(tx, ECS_KIND_TASKDEF, "", NULL, false, 0, index_one, index, err) < 0) {
        json_decref(index);
        return NULL;
    }
    barge_store_memo_put(tx, ECS_KIND_TASKDEF, "index", index);
    return index;
}

static int list_task_definitions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    const char *status = barge_json_str(in, "status", "ACTIVE");
    _cleanup_free_ char *prefix = NULL;
    if (barge_api_page_init(&pg, in, "maxResults", 100, 100, "nextToken", err) < 0)
        return -1;
    const char *fam = barge_json_str(in, "familyPrefix", NULL);
    prefix = fam ? barge_xasprintf("%s!", fam) : barge_xstrdup("");
    size_t plen = strlen(prefix);
    bool desc = barge_streq(barge_json_str(in, "sort", "ASC"), "DESC");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *index = taskdef_index(tx, err);
    if (!index)
        return -1;
    size_t n = json_array_size(index);
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(index, desc ? n - 1 - i : i);
        const char *key = json_string_value(json_array_get(row, 0));
        if (strncmp(key, prefix, plen) != 0 ||
            (pg.after && (desc ? strcmp(key, pg.after) >= 0 : strcmp(key, pg.after) <= 0)) ||
            strcmp(json_string_value(json_array_get(row, 1)), status) != 0)
            continue;
        if (barge_api_page_add(&pg, key, json_incref(json_array_get(row, 2))) != 0)
            break;
    }
    *out = json_object();
    barge_api_page_finish(&pg, *out, "taskDefinitionArns", "nextToken");
    return 0;
}

static int list_family_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct list_filter *lf = ud;
    json_int_t active = barge_json_int(doc, "active", 0);
    if ((strcmp(lf->status, "ACTIVE") == 0 && active == 0) ||
        (strcmp(lf->status, "INACTIVE") == 0 && active > 0))
        return 0;
    return barge_api_page_add(lf->pg, key, json_string(key));
}

static int list_task_definition_families(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                         struct barge_error **err)
{
    _cleanup_page_ struct barge_api_page pg = {0};
    struct list_filter lf = {&pg, barge_json_str(in, "status", "ALL")};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_api_page_init(&pg, in, "maxResults", 100, 100, "nextToken", err) < 0 ||
        barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_FAMILY, barge_json_str(in, "familyPrefix", ""), pg.after,
                         false, 0, list_family_one, &lf, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "families", "nextToken");
    return 0;
}

/* Loads a revision that must be named exactly (family:revision or ARN). */
static int load_revision(struct barge_tx *tx, const struct barge_server *srv, const char *ident,
                         json_t **td, char **key, struct barge_error **err)
{
    const char *tail = barge_str_has_prefix(ident, "arn:") ? strrchr(ident, '/') : ident;
    if (!tail || !strchr(tail, ':'))
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "The specified task definition identifier '%s' is invalid: "
                                    "name a revision as family:revision or by its ARN.",
                                    ident);
    int r = ecs_taskdef_find(tx, srv, ident, td, key, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, "ClientException",
                                    "The specified task definition '%s' does not exist.", ident);
    return 0;
}

static int deregister_task_definition(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                      struct barge_error **err)
{
    const char *ident = barge_json_str(in, "taskDefinition", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *td = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_revision(tx, ctx->srv, ident, &td, &key, err) < 0)
        return -1;
    if (strcmp(barge_json_str(td, "status", ""), "ACTIVE") == 0) {
        json_object_set_new(td, "status", json_string("INACTIVE"));
        json_object_set_new(td, "deregisteredAt", json_real(barge_now()));
        if (barge_store_put(tx, ECS_KIND_TASKDEF, key, td, err) < 0 ||
            family_adjust(tx, barge_json_str(td, "family", ""), -1, 0, err) < 0 ||
            barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
    }
    *out = json_pack("{s:O}", "taskDefinition", td);
    return 0;
}

static int delete_task_definitions(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    json_t *idents = barge_json_array(in, "taskDefinitions");
    if (json_array_size(idents) > 10)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "taskDefinitions can name at most 10 revisions; %zu were given.",
                               json_array_size(idents));
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    _cleanup_json_ json_t *done = json_array(), *failures = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(idents, i, v)
    {
        const char *ident = json_string_value(v);
        _cleanup_json_ json_t *td = NULL;
        _cleanup_free_ char *key = NULL;
        struct barge_error *e = NULL;
        if (load_revision(tx, ctx->srv, ident, &td, &key, &e) < 0) {
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s, s:s}", "arn", ident, "reason",
                                            "TASK_DEFINITION_NOT_FOUND", "detail", e->message));
            barge_error_free(e);
            continue;
        }
        const char *status = barge_json_str(td, "status", "");
        if (strcmp(status, "ACTIVE") == 0) {
            json_array_append_new(
                failures,
                json_pack("{s:s, s:s, s:s}", "arn", barge_json_str(td, "taskDefinitionArn", ""),
                          "reason", "TASK_DEFINITION_IS_ACTIVE", "detail",
                          "The task definition is ACTIVE: deregister it before deleting it."));
            continue;
        }
        if (strcmp(status, "INACTIVE") == 0) {
            json_object_set_new(td, "status", json_string("DELETE_IN_PROGRESS"));
            json_object_set_new(td, "deleteRequestedAt", json_real(barge_now()));
            if (barge_store_put(tx, ECS_KIND_TASKDEF, key, td, err) < 0)
                return -1;
        }
        json_array_append(done, td);
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O, s:O}", "taskDefinitions", done, "failures", failures);
    return 0;
}

struct reap_state {
    json_t *keys;
};

static int collect_deleting(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct reap_state *rs = ud;
    if (strcmp(barge_json_str(doc, "status", ""), "DELETE_IN_PROGRESS") == 0)
        json_array_append_new(rs->keys, json_pack("{s:s, s:s, s:s}", "key", key, "arn",
                                                  barge_json_str(doc, "taskDefinitionArn", ""),
                                                  "family", barge_json_str(doc, "family", "")));
    return 0;
}

struct ref_state {
    json_t *arns; /* object: arn -> true for referenced definitions */
};

static int collect_refs(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct ref_state *rs = ud;
    const char *arn = barge_json_str(doc, "taskDefinitionArn", NULL);
    if (arn && !barge_streq(barge_json_str(doc, "lastStatus", NULL), "STOPPED"))
        json_object_set_new(rs->arns, arn, json_true());
    size_t i;
    json_t *d;
    json_array_foreach(barge_json_array(doc, "deployments"), i, d)
    {
        const char *darn = barge_json_str(d, "taskDefinition", NULL);
        if (darn)
            json_object_set_new(rs->arns, darn, json_true());
    }
    json_array_foreach(barge_json_array(doc, "taskSets"), i, d)
    {
        const char *darn = barge_json_str(d, "taskDefinition", NULL);
        if (darn)
            json_object_set_new(rs->arns, darn, json_true());
    }
    return 0;
}

int barge_ecs_taskdefs_reap(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *keys = json_array(), *refs = json_object();
    struct reap_state rs = {keys};
    struct ref_state refst = {refs};
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_TASKDEF, "", NULL, false, 0, collect_deleting, &rs, err) < 0)
        return -1;
    if (json_array_size(keys) == 0)
        return 0;
    if (barge_store_scan(tx, ECS_KIND_TASK, "", NULL, false, 0, collect_refs, &refst, err) < 0 ||
        barge_store_scan(tx, ECS_KIND_SERVICE, "", NULL, false, 0, collect_refs, &refst, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *arn = barge_json_str(k, "arn", "");
        if (json_object_get(refs, arn))
            continue;
        if (barge_store_del(tx, ECS_KIND_TASKDEF, barge_json_str(k, "key", ""), err) < 0 ||
            ecs_tags_drop(tx, arn, err) < 0 ||
            family_adjust(tx, barge_json_str(k, "family", ""), 0, -1, err) < 0)
            return -1;
    }
    return barge_store_commit(barge_steal(&tx), err);
}

const struct barge_api_op ecs_taskdef_ops[] = {
    {"RegisterTaskDefinition", register_task_definition},
    {"DescribeTaskDefinition", describe_task_definition},
    {"ListTaskDefinitions", list_task_definitions},
    {"ListTaskDefinitionFamilies", list_task_definition_families},
    {"DeregisterTaskDefinition", deregister_task_definition},
    {"DeleteTaskDefinitions", delete_task_definitions},
    {NULL, NULL},
};
