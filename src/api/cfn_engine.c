/* The CloudFormation engine: carries out a stack's pending operation
 * (CREATE, UPDATE, DELETE, recorded by cloudformation.c) in the leader's
 * control loop. Resources are made in dependency order, each step saved to the
 * stack's document with its events, so DescribeStackResources and
 * DescribeStackEvents follow the work as it happens. A failure rolls back what
 * the operation did: a new stack's resources are removed again
 * (ROLLBACK_COMPLETE), an update's changes are undone
 * (UPDATE_ROLLBACK_COMPLETE). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/cfn.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

static volatile bool stopping;

void barge_cfn_set_stopping(bool value)
{
    stopping = value;
}

bool barge_cfn_pause(int ms)
{
    if (stopping)
        return false;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return !stopping;
}

static char *noecho_aad(const char *key)
{
    return barge_xasprintf("cloudformation-parameter:%s", key);
}

void barge_cfn_values_seal(struct barge_server *srv, const json_t *tpl, json_t *values)
{
    json_t *decls = json_object_get(tpl, "Parameters");
    const char *k;
    json_t *v;
    json_object_foreach(values, k, v)
    {
        json_t *ne = json_object_get(json_object_get(decls, k), "NoEcho");
        if (!json_is_string(v) || !(json_is_true(ne) || barge_streq(json_string_value(ne), "true")))
            continue;
        _cleanup_free_ char *aad = noecho_aad(k);
        char *env =
            barge_crypto_seal(&srv->master_key, json_string_value(v), json_string_length(v), aad);
        json_object_set_new(values, k, json_pack("{s:s}", "sealed", env));
        free(env);
    }
}

json_t *barge_cfn_values_open(struct barge_server *srv, const json_t *values,
                              struct barge_error **err)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)values, k, v)
    {
        const char *env = barge_json_str(v, "sealed", NULL);
        if (!env) {
            json_object_set(out, k, v);
            continue;
        }
        _cleanup_free_ char *aad = noecho_aad(k);
        char *plain = NULL;
        size_t len = 0;
        if (barge_crypto_open(&srv->master_key, env, aad, &plain, &len, err) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, json_stringn(plain, len));
        barge_crypto_free(plain, len);
    }
    return out;
}

int barge_cfn_event_add(struct barge_tx *tx, const json_t *stack, const char *logical,
                        const char *physical, const char *type, const char *status,
                        const char *reason, struct barge_error **err)
{
    int64_t seq;
    if (barge_store_counter_next(tx, CFN_KIND_EVENT, &seq, err) < 0)
        return -1;
    char uuid[37];
    barge_id_uuid(uuid);
    const char *stack_id = barge_json_str(stack, "StackId", "");
    _cleanup_json_ json_t *ev =
        json_pack("{s:s, s:s, s:O, s:s, s:s, s:f, s:s}", "EventId", uuid, "StackId", stack_id,
                  "StackName", json_object_get(stack, "StackName"), "LogicalResourceId", logical,
                  "ResourceType", type, "Timestamp", barge_now(), "ResourceStatus", status);
    if (physical)
        json_object_set_new(ev, "PhysicalResourceId", json_string(physical));
    if (reason)
        json_object_set_new(ev, "ResourceStatusReason", json_string(reason));
    _cleanup_free_ char *key = barge_xasprintf("%s/%016lld", stack_id, (long long)seq);
    return barge_store_put(tx, CFN_KIND_EVENT, key, ev, err);
}

struct run {
    struct barge_server *srv;
    json_t *doc;     /* the stack, saved after every step */
    json_t *tpl;     /* the template being applied */
    json_t *params;  /* its parameter values as templates see them */
    json_t *conds;   /* its conditions */
    json_t *exports; /* every stack's exports {name: value} */
    json_t *imports; /* the exports this stack uses */
    struct barge_cfn_prov prov;
};

/* Saves the stack and, with status, an event of logical (the stack itself
 * when logical is NULL). Failing to save is logged: the work goes on. */
static void save(struct run *r, const char *logical, const char *type, const char *physical,
                 const char *status, const char *reason)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    const char *id = barge_json_str(r->doc, "StackId", "");
    if (!logical) {
        logical = barge_json_str(r->doc, "StackName", "");
        type = "AWS::CloudFormation::Stack";
        physical = id;
    }
    if (barge_store_begin(r->srv->store, true, &tx, &err) < 0 ||
        barge_store_put(tx, CFN_KIND_STACK, id, r->doc, &err) < 0 ||
        (status &&
         barge_cfn_event_add(tx, r->doc, logical, physical, type, status, reason, &err) < 0) ||
        barge_store_commit(barge_steal(&tx), &err) < 0)
        barge_warn("cloudformation: saving stack %s: %s", id, err->message);
}

static void stack_status(struct run *r, const char *status, const char *reason)
{
    json_object_set_new(r->doc, "StackStatus", json_string(status));
    /* A rollback's outcome keeps the reason it started for. */
    if (reason)
        json_object_set_new(r->doc, "StackStatusReason", json_string(reason));
    else if (!strstr(status, "ROLLBACK") && !barge_str_has_suffix(status, "_FAILED"))
        json_object_del(r->doc, "StackStatusReason");
    save(r, NULL, NULL, NULL, status, reason);
}

static json_t *resources(struct run *r)
{
    json_t *res = json_object_get(r->doc, "resources");
    if (!json_is_object(res)) {
        res = json_object();
        json_object_set_new(r->doc, "resources", res);
    }
    return res;
}

static void set_resource(struct run *r, const char *logical, const char *type_in,
                         const char *physical_in, const char *status, const char *reason_in)
{
    /* The strings may belong to the entry about to change. */
    _cleanup_free_ char *type = barge_xstrdup(type_in);
    _cleanup_free_ char *physical = physical_in ? barge_xstrdup(physical_in) : NULL;
    _cleanup_free_ char *reason = reason_in ? barge_xstrdup(reason_in) : NULL;
    json_t *res = resources(r);
    json_t *e = json_object_get(res, logical);
    if (!e) {
        e = json_object();
        json_object_set_new(res, logical, e);
    }
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "status", json_string(status));
    json_object_set_new(e, "time", json_real(barge_now()));
    if (physical)
        json_object_set_new(e, "physical", json_string(physical));
    if (reason)
        json_object_set_new(e, "reason", json_string(reason));
    else
        json_object_del(e, "reason");
    save(r, logical, type, physical, status, reason);
}

static struct barge_cfn_eval evaluator(struct run *r)
{
    return (struct barge_cfn_eval){.params = r->params,
                                   .conditions = r->conds,
                                   .mappings = json_object_get(r->tpl, "Mappings"),
                                   .resources = resources(r),
                                   .region = barge_server_region(r->srv),
                                   .account = r->srv->cfg.account_id,
                                   .stack_name = barge_json_str(r->doc, "StackName", ""),
                                   .stack_id = barge_json_str(r->doc, "StackId", ""),
                                   .exports = r->exports,
                                   .imports = r->imports};
}

static int collect_export(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_object_set(ud, key, json_object_get(doc, "Value"));
    return 0;
}

/* Loads what evaluating src (a stack document or its "next") needs. */
static int load(struct run *r, const json_t *src, struct barge_error **err)
{
    json_decref(r->tpl);
    json_decref(r->params);
    json_decref(r->conds);
    r->tpl = json_incref(json_object_get(src, "template"));
    r->params = json_object();
    r->conds = NULL;
    json_t *decls = json_object_get(r->tpl, "Parameters");
    json_t *resolved = json_object_get(src, "resolved");
    _cleanup_json_ json_t *values =
        barge_cfn_values_open(r->srv, json_object_get(src, "paramValues"), err);
    if (!values)
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach(values, k, v)
    {
        const char *type = barge_json_str(json_object_get(decls, k), "Type", "String");
        json_object_set_new(
            r->params, k,
            barge_cfn_param_value(type, barge_json_str(resolved, k, json_string_value(v))));
    }
    if (!r->exports) {
        r->exports = json_object();
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(r->srv->store, false, &tx, err) < 0 ||
            barge_store_scan(tx, CFN_KIND_EXPORT, "", NULL, false, 0, collect_export, r->exports,
                             err) < 0)
            return -1;
    }
    struct barge_cfn_eval ev = evaluator(r);
    return barge_cfn_conditions(&ev, r->tpl, &r->conds, err);
}

static const char *short_reason(const struct barge_error *err)
{
    return err && err->message ? err->message : "unknown error";
}

/* Makes logical (declared as decl) anew: 0 done, -1 failed (event written). */
static int create_one(struct run *r, const char *logical, const json_t *decl,
                      const char *event_status)
{
    const char *type = barge_json_str(decl, "Type", "");
    set_resource(r, logical, type, NULL, "CREATE_IN_PROGRESS", NULL);
    _cleanup_error_ struct barge_error *err = NULL;
    if (!strcmp(type, "AWS::CDK::Metadata") ||
        !strcmp(type, "AWS::CloudFormation::WaitConditionHandle")) {
        char id[33];
        barge_id_hex32(id);
        json_object_set_new(json_object_get(resources(r), logical), "attrs", json_object());
        set_resource(r, logical, type, id, event_status, NULL);
        return 0;
    }
    if (!barge_cfn_type_known(type)) {
        _cleanup_free_ char *why =
            barge_xasprintf("Resource type '%s' is not supported by barge", type);
        set_resource(r, logical, type, NULL, "CREATE_FAILED", why);
        return -1;
    }
    struct barge_cfn_eval ev = evaluator(r);
    json_t *raw = json_object_get(decl, "Properties");
    _cleanup_json_ json_t *props = raw ? barge_cfn_eval(&ev, raw, &err) : json_object();
    _cleanup_free_ char *physical = NULL;
    _cleanup_json_ json_t *attrs = NULL;
    r->prov.logical = logical;
    if (!props || barge_cfn_resource_create(&r->prov, type, props, &physical, &attrs, &err) < 0) {
        /* A resource made before its setup failed is recorded, so that the
         * rollback removes it. */
        if (physical)
            json_object_set(json_object_get(resources(r), logical), "props", props);
        set_resource(r, logical, type, physical, "CREATE_FAILED", short_reason(err));
        return -1;
    }
    json_t *e = json_object_get(resources(r), logical);
    json_object_set(e, "props", props);
    json_object_set(e, "attrs", attrs ? attrs : json_object());
    set_resource(r, logical, type, physical, event_status, NULL);
    return 0;
}

static bool retained(struct run *r, const char *logical, const json_t *decl)
{
    if (barge_streq(barge_json_str(decl, "DeletionPolicy", ""), "Retain"))
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r->doc, "retain"), i,
                       v) if (barge_streq(json_string_value(v), logical)) return true;
    return false;
}

/* Removes the resource entry e (logical) made from decl; 0 or -1 (event
 * written). */
static int delete_one(struct run *r, const char *logical, json_t *e, const json_t *decl)
{
    /* e goes with its entry: keep what is needed after. */
    _cleanup_json_ json_t *keep = json_incref(e);
    (void)keep;
    _cleanup_free_ char *type = barge_xstrdup(barge_json_str(e, "type", ""));
    const char *physical = barge_json_str(e, "physical", NULL);
    const char *status = barge_json_str(e, "status", "");
    if (!physical || !strcmp(status, "DELETE_COMPLETE")) {
        json_object_del(resources(r), logical);
        save(r, logical, type, physical, "DELETE_COMPLETE", NULL);
        return 0;
    }
    _cleanup_free_ char *phys = barge_xstrdup(physical);
    if (retained(r, logical, decl)) {
        json_object_del(resources(r), logical);
        save(r, logical, type, phys, "DELETE_SKIPPED", NULL);
        return 0;
    }
    set_resource(r, logical, type, phys, "DELETE_IN_PROGRESS", NULL);
    _cleanup_error_ struct barge_error *err = NULL;
    r->prov.logical = logical;
    if (strcmp(type, "AWS::CDK::Metadata") != 0 &&
        strcmp(type, "AWS::CloudFormation::WaitConditionHandle") != 0 &&
        barge_cfn_type_known(type) &&
        barge_cfn_resource_delete(&r->prov, type, phys, json_object_get(e, "props"), &err) < 0) {
        set_resource(r, logical, type, phys, "DELETE_FAILED", short_reason(err));
        return -1;
    }
    json_object_del(resources(r), logical);
    save(r, logical, type, phys, "DELETE_COMPLETE", NULL);
    return 0;
}

/* The stack's resources in the order to remove them: the template's order
 * reversed, then any not in it. New array. */
static json_t *removal_order(struct run *r)
{
    json_t *out = json_array();
    _cleanup_json_ json_t *all = json_object(), *order = NULL;
    const char *k;
    json_t *c;
    json_object_foreach(json_object_get(r->tpl, "Conditions"), k, c)
        json_object_set_new(all, k, json_true());
    _cleanup_error_ struct barge_error *err = NULL;
    if (r->tpl && barge_cfn_order(r->tpl, all, &order, &err) == 0)
        for (size_t i = json_array_size(order); i-- > 0;) {
            const char *l = json_string_value(json_array_get(order, i));
            if (json_object_get(resources(r), l))
                json_array_append_new(out, json_string(l));
        }
    json_t *e;
    json_object_foreach(resources(r), k, e)
    {
        bool listed = false;
        size_t i;
        json_t *x;
        json_array_foreach(out, i, x) if (barge_streq(json_string_value(x), k)) listed = true;
        if (!listed)
            json_array_append_new(out, json_string(k));
    }
    return out;
}

static int delete_all(struct run *r)
{
    _cleanup_json_ json_t *order = removal_order(r);
    json_t *decls = json_object_get(r->tpl, "Resources");
    int rc = 0;
    size_t i;
    json_t *l;
    json_array_foreach(order, i, l)
    {
        const char *logical = json_string_value(l);
        json_t *e = json_object_get(resources(r), logical);
        if (e && delete_one(r, logical, e, json_object_get(decls, logical)) < 0)
            rc = -1;
    }
    return rc;
}

/* Evaluates the Outputs into the stack document and returns the exports
 * they declare ({name: value}) in *exports. */
static int outputs(struct run *r, json_t **exports, struct barge_error **err)
{
    json_t *list = json_array();
    json_object_set_new(r->doc, "Outputs", list);
    *exports = json_object();
    struct barge_cfn_eval ev = evaluator(r);
    const char *k;
    json_t *o;
    json_object_foreach(json_object_get(r->tpl, "Outputs"), k, o)
    {
        const char *cond = barge_json_str(o, "Condition", NULL);
        if (cond && !json_is_true(json_object_get(r->conds, cond)))
            continue;
        _cleanup_json_ json_t *v = barge_cfn_eval(&ev, json_object_get(o, "Value"), err);
        if (!v)
            return barge_error_wrap(err, "output %s", k);
        _cleanup_free_ char *text = NULL;
        if (json_is_array(v)) {
            struct barge_buf b = {0};
            barge_buf_adds(&b, "");
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) barge_buf_addf(
                &b, "%s%s", i ? "," : "", json_is_string(x) ? json_string_value(x) : "");
            text = barge_buf_steal(&b, NULL);
        } else if (json_is_string(v)) {
            text = barge_xstrdup(json_string_value(v));
        } else if (json_is_integer(v)) {
            text = barge_xasprintf("%lld", (long long)json_integer_value(v));
        } else if (json_is_boolean(v)) {
            text = barge_xstrdup(json_is_true(v) ? "true" : "false");
        } else {
            return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                        "Template format error: the Value of output %s must be "
                                        "a string",
                                        k);
        }
        json_t *out = json_pack("{s:s, s:s}", "OutputKey", k, "OutputValue", text);
        if (json_is_string(json_object_get(o, "Description")))
            json_object_set(out, "Description", json_object_get(o, "Description"));
        json_t *exp = json_object_get(o, "Export");
        if (exp) {
            _cleanup_json_ json_t *name = barge_cfn_eval(&ev, json_object_get(exp, "Name"), err);
            if (!name)
                return -1;
            if (!json_is_string(name))
                return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                            "Template format error: the Export Name of output "
                                            "%s must be a string",
                                            k);
            json_object_set(out, "ExportName", name);
            json_object_set_new(*exports, json_string_value(name), json_string(text));
        }
        json_array_append_new(list, out);
    }
    return 0;
}

struct export_scan {
    const char *stack_id;
    const json_t *wanted;
    json_t *mine;   /* names this stack exports now */
    char *conflict; /* an export name held by another stack */
};

static int check_export(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct export_scan *s = ud;
    if (barge_streq(barge_json_str(doc, "ExportingStackId", ""), s->stack_id))
        json_object_set_new(s->mine, key, json_true());
    else if (json_object_get(s->wanted, key) && !s->conflict)
        s->conflict = barge_xstrdup(key);
    return 0;
}

struct import_scan {
    const char *stack_id;
    const json_t *names;
    char *user; /* "export by stack" of the first user found */
};

static int check_import(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct import_scan *s = ud;
    if (barge_streq(key, s->stack_id) ||
        barge_streq(barge_json_str(doc, "StackStatus", ""), "DELETE_COMPLETE"))
        return 0;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(doc, "imports"), name, v)
    {
        if (json_object_get(s->names, name)) {
            s->user = barge_xasprintf("Export %s cannot be deleted as it is in use by %s", name,
                                      barge_json_str(doc, "StackName", ""));
            return 1;
        }
    }
    return 0;
}

/* Replaces this stack's exports with exports ({name: value}); one another
 * stack exports already, or one removed that another stack imports, fails. */
static int set_exports(struct run *r, const json_t *exports, struct barge_error **err)
{
    const char *id = barge_json_str(r->doc, "StackId", "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *mine = json_object();
    struct export_scan s = {id, exports, mine, NULL};
    if (barge_store_begin(r->srv->store, true, &tx, err) < 0 ||
        barge_store_scan(tx, CFN_KIND_EXPORT, "", NULL, false, 0, check_export, &s, err) < 0)
        return -1;
    if (s.conflict) {
        int rc = barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError",
                                      "Export with name %s is already exported by another stack",
                                      s.conflict);
        free(s.conflict);
        return rc;
    }
    _cleanup_json_ json_t *gone = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(mine, k, v) if (!json_object_get(exports, k))
        json_object_set_new(gone, k, json_true());
    struct import_scan is = {id, gone, NULL};
    if (json_object_size(gone) &&
        barge_store_scan(tx, CFN_KIND_STACK, "", NULL, false, 0, check_import, &is, err) < 0)
        return -1;
    if (is.user) {
        int rc = barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError", "%s", is.user);
        free(is.user);
        return rc;
    }
    json_object_foreach(gone, k, v) if (barge_store_del(tx, CFN_KIND_EXPORT, k, err) < 0) return -1;
    json_object_foreach((json_t *)exports, k, v)
    {
        _cleanup_json_ json_t *doc =
            json_pack("{s:s, s:s, s:O}", "ExportingStackId", id, "Name", k, "Value", v);
        if (barge_store_put(tx, CFN_KIND_EXPORT, k, doc, err) < 0)
            return -1;
    }
    return barge_store_commit(barge_steal(&tx), err);
}

static void finish_change_set(struct run *r, const char *status)
{
    const char *cs_id = barge_json_str(r->doc, "ChangeSetId", NULL);
    if (!cs_id)
        return;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *cs = NULL;
    if (barge_store_begin(r->srv->store, true, &tx, &err) < 0 ||
        barge_store_get(tx, CFN_KIND_CHANGESET, cs_id, &cs, &err) < 0)
        return;
    if (cs) {
        json_object_set_new(cs, "ExecutionStatus", json_string(status));
        if (barge_store_put(tx, CFN_KIND_CHANGESET, cs_id, cs, &err) < 0 ||
            barge_store_commit(barge_steal(&tx), &err) < 0)
            barge_warn("cloudformation: change set %s: %s", cs_id, err->message);
    }
}

/* barged stopping cut the operation short: nothing is undone (the
 * resources stay as they are), the stack says what happened. */
#define INTERRUPTED "barged stopped while the operation was in progress"

static void run_create(struct run *r)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *order = NULL, *exports = NULL;
    bool ok = load(r, r->doc, &err) == 0 && barge_cfn_order(r->tpl, r->conds, &order, &err) == 0;
    if (!ok) {
        stack_status(r, "ROLLBACK_IN_PROGRESS", short_reason(err));
        stack_status(r, "ROLLBACK_COMPLETE", NULL);
        return;
    }
    json_t *decls = json_object_get(r->tpl, "Resources");
    size_t i;
    json_t *l;
    const char *failed = NULL;
    json_array_foreach(order, i, l)
    {
        if (create_one(r, json_string_value(l), json_object_get(decls, json_string_value(l)),
                       "CREATE_COMPLETE") < 0) {
            failed = json_string_value(l);
            break;
        }
    }
    if (!failed && (outputs(r, &exports, &err) < 0 || set_exports(r, exports, &err) < 0)) {
        _cleanup_free_ char *why = barge_xstrdup(short_reason(err));
        json_object_set_new(r->doc, "Outputs", json_array());
        stack_status(r,
                     barge_json_bool(r->doc, "DisableRollback", false) ? "CREATE_FAILED"
                                                                       : "ROLLBACK_IN_PROGRESS",
                     why);
    } else if (failed) {
        _cleanup_free_ char *why =
            barge_xasprintf("The following resource(s) failed to create: [%s]. ", failed);
        stack_status(r,
                     barge_json_bool(r->doc, "DisableRollback", false) ? "CREATE_FAILED"
                                                                       : "ROLLBACK_IN_PROGRESS",
                     why);
    } else {
        json_object_set(r->doc, "imports", r->imports);
        finish_change_set(r, "EXECUTE_COMPLETE");
        stack_status(r, "CREATE_COMPLETE", NULL);
        return;
    }
    finish_change_set(r, "EXECUTE_FAILED");
    if (stopping) {
        stack_status(r, "CREATE_FAILED", INTERRUPTED);
        return;
    }
    if (barge_json_bool(r->doc, "DisableRollback", false))
        return;
    if (delete_all(r) < 0)
        stack_status(r, "ROLLBACK_FAILED", "The following resource(s) failed to delete.");
    else
        stack_status(r, "ROLLBACK_COMPLETE", NULL);
}

static void run_delete(struct run *r)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *none = json_object();
    if (load(r, r->doc, &err) < 0 || set_exports(r, none, &err) < 0) {
        stack_status(r, "DELETE_FAILED", short_reason(err));
        return;
    }
    if (delete_all(r) < 0) {
        stack_status(r, "DELETE_FAILED", "The following resource(s) failed to delete.");
        return;
    }
    json_object_set_new(r->doc, "DeletionTime", json_real(barge_now()));
    json_object_set_new(r->doc, "Outputs", json_array());
    stack_status(r, "DELETE_COMPLETE", NULL);
}

/* What an update did to one resource, to undo it. */
enum undo_kind { UNDO_CREATED, UNDO_UPDATED };

static void run_update(struct run *r)
{
    _cleanup_error_ struct barge_error *err = NULL;
    json_t *next = json_object_get(r->doc, "next");
    _cleanup_json_ json_t *before = json_deep_copy(resources(r));
    _cleanup_json_ json_t *old_tpl = json_incref(json_object_get(r->doc, "template"));
    _cleanup_json_ json_t *order = NULL, *exports = NULL;
    _cleanup_json_ json_t *undo = json_array();    /* [[logical, kind]] in the order done */
    _cleanup_json_ json_t *cleanup = json_array(); /* [{logical, type, physical, props}] */
    const char *failed = NULL;
    if (load(r, next, &err) < 0 || barge_cfn_order(r->tpl, r->conds, &order, &err) < 0) {
        failed = "";
        goto rollback;
    }
    json_t *decls = json_object_get(r->tpl, "Resources");
    size_t i;
    json_t *l;
    json_array_foreach(order, i, l)
    {
        const char *logical = json_string_value(l);
        json_t *decl = json_object_get(decls, logical);
        const char *type = barge_json_str(decl, "Type", "");
        json_t *old = json_object_get(before, logical);
        if (!old || !barge_streq(barge_json_str(old, "type", ""), type)) {
            if (old)
                json_array_append_new(cleanup,
                                      json_pack("{s:s, s:O}", "logical", logical, "entry", old));
            json_object_del(resources(r), logical);
            if (create_one(r, logical, decl, "CREATE_COMPLETE") < 0) {
                failed = logical;
                break;
            }
            json_array_append_new(undo, json_pack("[s, i]", logical, UNDO_CREATED));
            continue;
        }
        struct barge_cfn_eval ev = evaluator(r);
        json_t *raw = json_object_get(decl, "Properties");
        _cleanup_json_ json_t *props = raw ? barge_cfn_eval(&ev, raw, &err) : json_object();
        if (!props) {
            set_resource(r, logical, type, barge_json_str(old, "physical", NULL), "UPDATE_FAILED",
                         short_reason(err));
            failed = logical;
            break;
        }
        json_t *old_props = json_object_get(old, "props");
        if ((old_props ? json_equal(props, old_props) : !json_object_size(props)) ||
            !strcmp(type, "AWS::CDK::Metadata"))
            continue;
        const char *physical = barge_json_str(old, "physical", "");
        set_resource(r, logical, type, physical, "UPDATE_IN_PROGRESS", NULL);
        _cleanup_free_ char *new_physical = NULL;
        _cleanup_json_ json_t *attrs = NULL;
        r->prov.logical = logical;
        if (barge_cfn_resource_update(&r->prov, type, physical, old_props, props, &new_physical,
                                      &attrs, &err) < 0) {
            set_resource(r, logical, type, physical, "UPDATE_FAILED", short_reason(err));
            failed = logical;
            break;
        }
        json_t *e = json_object_get(resources(r), logical);
        json_object_set(e, "props", props);
        if (attrs)
            json_object_set(e, "attrs", attrs);
        if (new_physical && strcmp(new_physical, physical) != 0)
            json_array_append_new(cleanup,
                                  json_pack("{s:s, s:O}", "logical", logical, "entry", old));
        set_resource(r, logical, type, new_physical ? new_physical : physical, "UPDATE_COMPLETE",
                     NULL);
        json_array_append_new(undo, json_pack("[s, i]", logical, UNDO_UPDATED));
    }
    if (!failed && (outputs(r, &exports, &err) < 0 || set_exports(r, exports, &err) < 0))
        failed = "";
    if (!failed) {
        /* Resources the new template no longer has go in the cleanup. */
        const char *k;
        json_t *e;
        json_object_foreach(before, k, e)
        {
            bool kept = false;
            json_array_foreach(order, i, l) if (barge_streq(json_string_value(l), k)) kept = true;
            if (!kept)
                json_array_append_new(cleanup, json_pack("{s:s, s:O}", "logical", k, "entry", e));
        }
        stack_status(r, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", NULL);
        json_t *c;
        json_array_foreach(cleanup, i, c)
        {
            const char *logical = barge_json_str(c, "logical", "");
            json_t *entry = json_object_get(c, "entry");
            const char *type = barge_json_str(entry, "type", "");
            const char *physical = barge_json_str(entry, "physical", NULL);
            _cleanup_error_ struct barge_error *e2 = NULL;
            r->prov.logical = logical;
            json_t *odecl = json_object_get(json_object_get(old_tpl, "Resources"), logical);
            if (!physical || retained(r, logical, odecl) || !barge_cfn_type_known(type))
                continue;
            if (barge_cfn_resource_delete(&r->prov, type, physical, json_object_get(entry, "props"),
                                          &e2) < 0)
                save(r, logical, type, physical, "DELETE_FAILED", short_reason(e2));
            else
                save(r, logical, type, physical, "DELETE_COMPLETE", NULL);
            if (!json_object_get(json_object_get(r->tpl, "Resources"), logical) ||
                !json_object_get(resources(r), logical)) {
                json_t *cur = json_object_get(resources(r), logical);
                if (cur && barge_streq(barge_json_str(cur, "physical", ""), physical))
                    json_object_del(resources(r), logical);
            }
        }
        const char *nk;
        json_t *nv;
        json_object_foreach(next, nk, nv) if (strcmp(nk, "StackName") && strcmp(nk, "StackId"))
            json_object_set(r->doc, nk, nv);
        json_object_del(r->doc, "next");
        json_object_set(r->doc, "imports", r->imports);
        finish_change_set(r, "EXECUTE_COMPLETE");
        stack_status(r, "UPDATE_COMPLETE", NULL);
        return;
    }
rollback:;
    _cleanup_free_ char *why =
        failed && *failed
            ? barge_xasprintf("The following resource(s) failed to update: [%s]. ", failed)
            : barge_xstrdup(short_reason(err));
    finish_change_set(r, "EXECUTE_FAILED");
    if (stopping) {
        stack_status(r, "UPDATE_ROLLBACK_FAILED", INTERRUPTED);
        return;
    }
    stack_status(r, "UPDATE_ROLLBACK_IN_PROGRESS", why);
    bool rollback_failed = false;
    for (size_t j = json_array_size(undo); j-- > 0;) {
        json_t *u = json_array_get(undo, j);
        const char *logical = json_string_value(json_array_get(u, 0));
        int kind = (int)json_integer_value(json_array_get(u, 1));
        _cleanup_json_ json_t *cur = json_incref(json_object_get(resources(r), logical));
        json_t *old = json_object_get(before, logical);
        if (kind == UNDO_CREATED) {
            if (cur && delete_one(r, logical, cur, NULL) < 0)
                rollback_failed = true;
            if (old)
                json_object_set(resources(r), logical, old);
            continue;
        }
        _cleanup_free_ char *type = barge_xstrdup(barge_json_str(cur, "type", ""));
        _cleanup_free_ char *physical = barge_xstrdup(barge_json_str(cur, "physical", ""));
        _cleanup_error_ struct barge_error *e2 = NULL;
        _cleanup_free_ char *back = NULL;
        _cleanup_json_ json_t *attrs = NULL;
        r->prov.logical = logical;
        set_resource(r, logical, type, physical, "UPDATE_IN_PROGRESS", NULL);
        if (barge_cfn_resource_update(&r->prov, type, physical, json_object_get(cur, "props"),
                                      json_object_get(old, "props"), &back, &attrs, &e2) < 0) {
            set_resource(r, logical, type, physical, "UPDATE_FAILED", short_reason(e2));
            rollback_failed = true;
            continue;
        }
        if (back && strcmp(back, barge_json_str(old, "physical", "")) != 0 &&
            strcmp(back, physical) != 0) {
            /* A replacement made yet another resource: the old one stays. */
            _cleanup_error_ struct barge_error *e3 = NULL;
            barge_cfn_resource_delete(&r->prov, type, back, json_object_get(old, "props"), &e3);
        }
        if (strcmp(physical, barge_json_str(old, "physical", "")) != 0) {
            _cleanup_error_ struct barge_error *e3 = NULL;
            barge_cfn_resource_delete(&r->prov, type, physical, json_object_get(cur, "props"), &e3);
        }
        json_object_set(resources(r), logical, old);
        set_resource(r, logical, type, barge_json_str(old, "physical", NULL), "UPDATE_COMPLETE",
                     NULL);
    }
    /* Entries the failed update left (its own failed resource) go. */
    const char *k;
    json_t *e;
    void *tmp;
    json_object_foreach_safe(resources(r), tmp, k, e) if (!json_object_get(before, k))
        json_object_del(resources(r), k);
    json_object_foreach(before, k, e) json_object_set(resources(r), k, e);
    json_object_del(r->doc, "next");
    stack_status(r, rollback_failed ? "UPDATE_ROLLBACK_FAILED" : "UPDATE_ROLLBACK_COMPLETE", NULL);
}

struct scan {
    json_t *pending;   /* ids of stacks with work to do */
    json_t *abandoned; /* ids of stacks left in progress by a barged that stopped */
};

static int collect_pending(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct scan *s = ud;
    const char *status = barge_json_str(doc, "StackStatus", "");
    if (json_object_get(doc, "pending"))
        json_array_append_new(s->pending, json_string(key));
    else if (s->abandoned && barge_str_has_suffix(status, "_IN_PROGRESS") &&
             strcmp(status, "REVIEW_IN_PROGRESS") != 0)
        json_array_append_new(s->abandoned, json_string(key));
    return 0;
}

/* The failed state a stack abandoned in status ends in. */
static const char *abandoned_status(const char *status)
{
    if (barge_str_has_prefix(status, "CREATE") || !strcmp(status, "ROLLBACK_IN_PROGRESS"))
        return "ROLLBACK_FAILED";
    if (barge_str_has_prefix(status, "DELETE"))
        return "DELETE_FAILED";
    return "UPDATE_ROLLBACK_FAILED";
}

/* Stacks a barged left in progress when it stopped or died (an operation
 * runs from start to end in one process) are marked failed, once per
 * process, so that they can be deleted or updated again. */
static void recover(struct barge_server *srv, const json_t *ids)
{
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        _cleanup_error_ struct barge_error *err = NULL;
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_json_ json_t *doc = NULL;
        if (barge_store_begin(srv->store, true, &tx, &err) < 0 ||
            barge_store_get(tx, CFN_KIND_STACK, json_string_value(id), &doc, &err) <= 0)
            continue;
        const char *status = abandoned_status(barge_json_str(doc, "StackStatus", ""));
        json_object_set_new(doc, "StackStatus", json_string(status));
        json_object_set_new(doc, "StackStatusReason", json_string(INTERRUPTED));
        json_object_del(doc, "next");
        if (barge_store_put(tx, CFN_KIND_STACK, json_string_value(id), doc, &err) < 0 ||
            barge_cfn_event_add(tx, doc, barge_json_str(doc, "StackName", ""),
                                json_string_value(id), "AWS::CloudFormation::Stack", status,
                                INTERRUPTED, &err) < 0 ||
            barge_store_commit(barge_steal(&tx), &err) < 0)
            barge_warn("cloudformation: marking stack %s failed: %s", json_string_value(id),
                       err->message);
        else
            barge_warn("cloudformation: stack %s was left in progress: now %s",
                       json_string_value(id), status);
    }
}

static void run_one(struct barge_server *srv, const char *id)
{
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *doc = NULL;
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, false, &tx, &err) < 0 ||
            barge_store_get(tx, CFN_KIND_STACK, id, &doc, &err) <= 0)
            return;
    }
    _cleanup_json_ json_t *pending = json_incref(json_object_get(doc, "pending"));
    if (!pending)
        return;
    json_object_del(doc, "pending");
    struct run r = {.srv = srv, .doc = doc, .imports = json_object()};
    r.prov.srv = srv;
    r.prov.stack_name = barge_json_str(doc, "StackName", "");
    /* An update acts with the rights its request gave (the service role). */
    const json_t *next = json_object_get(doc, "next");
    snprintf(r.prov.who.access_key_id, sizeof r.prov.who.access_key_id, "%s",
             barge_json_str(next, "akid", barge_json_str(doc, "akid", "")));
    snprintf(r.prov.who.region, sizeof r.prov.who.region, "%s", barge_server_region(srv));
    const char *op = barge_json_str(pending, "op", "");
    barge_info("cloudformation: %s of stack %s", op, r.prov.stack_name);
    if (!strcmp(op, "CREATE"))
        run_create(&r);
    else if (!strcmp(op, "UPDATE"))
        run_update(&r);
    else
        run_delete(&r);
    json_decref(r.tpl);
    json_decref(r.params);
    json_decref(r.conds);
    json_decref(r.exports);
    json_decref(r.imports);
    barge_server_notify(srv);
}

void barge_cfn_step(struct barge_server *srv)
{
    static bool recovered;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *ids = json_array(), *abandoned = recovered ? NULL : json_array();
    struct scan sc = {ids, abandoned};
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(srv->store, false, &tx, &err) < 0 ||
            barge_store_scan(tx, CFN_KIND_STACK, "", NULL, false, 0, collect_pending, &sc, &err) <
                0) {
            barge_warn("cloudformation: listing stacks: %s", err->message);
            return;
        }
    }
    if (!recovered) {
        recover(srv, abandoned);
        recovered = true;
    }
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) run_one(srv, json_string_value(id));
}
