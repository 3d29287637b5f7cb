/* The resource types CloudFormation stacks can hold in barge. Each is made,
 * changed and removed by calling barged's own operation handlers (validated
 * against their models, as a request would be), never by HTTP to itself;
 * properties are mapped onto an operation's input through its model (member
 * names compared without regard to case, scalars converted), so the few
 * differences between CloudFormation's and the API's names are all that the
 * code below spells out. EC2 networking, which barge has no API for, is
 * recorded with AWS-shaped ids so that templates that declare it work. Ref
 * and Fn::GetAtt give what CloudFormation documents for each type. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/cfn.h"
#include "api/model.h"
#include "api/s3.h"
#include "common/ids.h"
#include "common/json.h"

extern const struct barge_api_service barge_api_ecs, barge_api_logs, barge_api_ssm,
    barge_api_secretsmanager, barge_api_ecr, barge_api_iam, barge_api_autoscaling, barge_api_elbv2;

/* --- calling operations ----------------------------------------------------- */

static int call(struct barge_cfn_prov *p, const struct barge_api_service *svc, const char *op,
                const json_t *in, json_t **out, struct barge_error **err)
{
    json_t *ignored = NULL;
    if (!out)
        out = &ignored;
    *out = NULL;
    const struct barge_api_op *h = barge_api_find_op(svc, op);
    const struct barge_model *m = barge_model_get(svc->model);
    if (!h || !m)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "no operation %s in %s", op, svc->model);
    if (barge_model_validate_input(m, op, in, err) < 0)
        return -1;
    struct barge_api_ctx ctx = {.srv = p->srv, .service = svc, .operation = op, .who = p->who};
    int rc = h->handler(&ctx, (json_t *)in, out, err);
    json_decref(ignored);
    return rc;
}

static const json_t *shape(const struct barge_api_service *svc, const char *name)
{
    const json_t *raw = barge_model_raw(barge_model_get(svc->model));
    return json_object_get(json_object_get(raw, "shapes"), name);
}

/* v (CloudFormation's form) as the API's shape sh wants it; NULL when it
 * cannot be. */
static json_t *convert(const struct barge_api_service *svc, const json_t *sh, const json_t *v)
{
    const char *t = barge_json_str(sh, "type", "string");
    if (!strcmp(t, "structure")) {
        if (!json_is_object(v))
            return NULL;
        json_t *out = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            const char *mk;
            json_t *m;
            json_object_foreach(json_object_get(sh, "members"), mk, m)
            {
                if (strcasecmp(mk, k) != 0)
                    continue;
                json_t *c = convert(svc, shape(svc, barge_json_str(m, "shape", "")), x);
                if (c)
                    json_object_set_new(out, mk, c);
                break;
            }
        }
        return out;
    }
    if (!strcmp(t, "list")) {
        if (!json_is_array(v))
            return NULL;
        const json_t *esh = shape(svc, barge_json_str(json_object_get(sh, "member"), "shape", ""));
        json_t *out = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            json_t *c = convert(svc, esh, x);
            if (c)
                json_array_append_new(out, c);
        }
        return out;
    }
    if (!strcmp(t, "map")) {
        if (!json_is_object(v))
            return NULL;
        const json_t *vsh = shape(svc, barge_json_str(json_object_get(sh, "value"), "shape", ""));
        json_t *out = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            json_t *c = convert(svc, vsh, x);
            if (c)
                json_object_set_new(out, k, c);
        }
        return out;
    }
    if (!strcmp(t, "integer") || !strcmp(t, "long")) {
        if (json_is_string(v)) {
            char *end;
            long long n = strtoll(json_string_value(v), &end, 10);
            return *end ? json_incref((json_t *)v) : json_integer(n);
        }
        return json_incref((json_t *)v);
    }
    if (!strcmp(t, "double") || !strcmp(t, "float")) {
        if (json_is_string(v))
            return json_real(strtod(json_string_value(v), NULL));
        return json_incref((json_t *)v);
    }
    if (!strcmp(t, "boolean")) {
        if (json_is_string(v))
            return json_boolean(!strcasecmp(json_string_value(v), "true"));
        return json_incref((json_t *)v);
    }
    if (json_is_integer(v))
        return json_sprintf("%lld", (long long)json_integer_value(v));
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "true" : "false");
    if (json_is_object(v) || json_is_array(v)) {
        /* Policy documents and the like: the API takes them as JSON text. */
        char *s = barge_json_dump(v);
        json_t *out = json_string(s);
        free(s);
        return out;
    }
    return json_incref((json_t *)v);
}

/* props mapped onto the input of svc's operation op. New reference. */
static json_t *input(const struct barge_api_service *svc, const char *op, const json_t *props)
{
    const json_t *raw = barge_model_raw(barge_model_get(svc->model));
    const char *in =
        barge_json_str(json_object_get(json_object_get(raw, "operations"), op), "input", "");
    json_t *out = convert(svc, shape(svc, in), props);
    return out ? out : json_object();
}

/* A name CloudFormation would make: "<stack>-<logical>-<random>", at most max
 * characters, lower case when lower. Caller frees. */
static char *gen_name(const struct barge_cfn_prov *p, size_t max, bool lower)
{
    char rnd[33];
    barge_id_hex32(rnd);
    for (char *c = rnd; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    rnd[12] = '\0';
    size_t room = max > 14 ? max - 14 : 1;
    size_t sl = strlen(p->stack_name), ll = strlen(p->logical);
    size_t take_s = sl < room / 2 ? sl : room / 2;
    size_t take_l = ll < room - take_s ? ll : room - take_s;
    char *s =
        barge_xasprintf("%.*s-%.*s-%s", (int)take_s, p->stack_name, (int)take_l, p->logical, rnd);
    if (lower)
        for (char *c = s; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    return s;
}

static char *name_or_gen(const struct barge_cfn_prov *p, const json_t *props, const char *key,
                         size_t max, bool lower)
{
    const char *n = barge_json_str(props, key, NULL);
    return n ? barge_xstrdup(n) : gen_name(p, max, lower);
}

static bool not_found(const struct barge_error *e)
{
    return e && (e->code == BARGE_ERR_NOT_FOUND ||
                 (e->type && (strstr(e->type, "NotFound") || strstr(e->type, "NoSuch"))));
}

/* Runs a delete call; the resource being gone already counts as done. */
static int gone_ok(int rc, struct barge_error **err)
{
    if (rc < 0 && not_found(*err)) {
        barge_error_free(barge_steal(err));
        return 0;
    }
    return rc;
}

/* Whether old and props have the same value (or none) for key. */
static bool same(const json_t *old, const json_t *props, const char *key)
{
    json_t *a = json_object_get(old, key), *b = json_object_get(props, key);
    return (!a && !b) || (a && b && json_equal(a, b));
}

/* Replaces props[key] with name (for the input to an API). */
static json_t *with(const json_t *props, const char *key, const char *value)
{
    json_t *c = json_deep_copy(props);
    json_object_set_new(c, key, json_string(value));
    return c;
}

/* --- types ------------------------------------------------------------------ */

struct type {
    const char *name;
    int (*create)(struct barge_cfn_prov *p, const json_t *props, char **physical, json_t **attrs,
                  struct barge_error **err);
    /* 0 done, 1 when the change needs a new resource (replacement), -1
     * failed; NULL: every change replaces the resource. */
    int (*update)(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                  const json_t *props, json_t **attrs, struct barge_error **err);
    int (*remove)(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                  struct barge_error **err);
};

/* Logs */

static char *log_group_arn(const struct barge_cfn_prov *p, const char *name)
{
    return barge_xasprintf("arn:aws:logs:%s:%s:log-group:%s:*", barge_server_region(p->srv),
                           p->srv->cfg.account_id, name);
}

static int retention(struct barge_cfn_prov *p, const char *name, const json_t *props,
                     struct barge_error **err)
{
    json_t *days = json_object_get(props, "RetentionInDays");
    _cleanup_json_ json_t *in = json_pack("{s:s}", "logGroupName", name);
    if (!days)
        return call(p, &barge_api_logs, "DeleteRetentionPolicy", in, NULL, err);
    json_object_set_new(in, "retentionInDays",
                        json_integer(json_is_string(days) ? atoi(json_string_value(days))
                                                          : json_integer_value(days)));
    return call(p, &barge_api_logs, "PutRetentionPolicy", in, NULL, err);
}

static int log_group_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                            json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "LogGroupName", 512, false);
    _cleanup_json_ json_t *in = json_pack("{s:s}", "logGroupName", name);
    if (call(p, &barge_api_logs, "CreateLogGroup", in, NULL, err) < 0 ||
        (json_object_get(props, "RetentionInDays") && retention(p, name, props, err) < 0))
        return -1;
    _cleanup_free_ char *arn = log_group_arn(p, name);
    *attrs = json_pack("{s:s}", "Arn", arn);
    *physical = barge_steal(&name);
    return 0;
}

static int log_group_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                            const json_t *props, json_t **attrs, struct barge_error **err)
{
    if (!same(old, props, "LogGroupName"))
        return 1; /* replace */
    _cleanup_free_ char *arn = log_group_arn(p, physical);
    *attrs = json_pack("{s:s}", "Arn", arn);
    return retention(p, physical, props, err);
}

static int log_group_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                            struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "logGroupName", physical);
    return gone_ok(call(p, &barge_api_logs, "DeleteLogGroup", in, NULL, err), err);
}

/* SSM */

static int ssm_put(struct barge_cfn_prov *p, const char *name, const json_t *props, bool overwrite,
                   struct barge_error **err)
{
    _cleanup_json_ json_t *src = with(props, "Name", name);
    _cleanup_json_ json_t *in = input(&barge_api_ssm, "PutParameter", src);
    if (overwrite)
        json_object_set_new(in, "Overwrite", json_true());
    if (overwrite)
        json_object_del(in, "Tags");
    return call(p, &barge_api_ssm, "PutParameter", in, NULL, err);
}

static int ssm_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                      json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = NULL;
    if (barge_json_str(props, "Name", NULL))
        name = barge_xstrdup(barge_json_str(props, "Name", ""));
    else {
        _cleanup_free_ char *g = gen_name(p, 200, false);
        name = barge_xasprintf("CFN-%s", g);
    }
    if (ssm_put(p, name, props, false, err) < 0)
        return -1;
    *attrs = json_pack("{s:s, s:O}", "Type", barge_json_str(props, "Type", "String"), "Value",
                       json_object_get(props, "Value"));
    *physical = barge_steal(&name);
    return 0;
}

static int ssm_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                      const json_t *props, json_t **attrs, struct barge_error **err)
{
    if (!same(old, props, "Name"))
        return 1;
    *attrs = json_pack("{s:s, s:O}", "Type", barge_json_str(props, "Type", "String"), "Value",
                       json_object_get(props, "Value"));
    return ssm_put(p, physical, props, true, err);
}

static int ssm_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                      struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "Name", physical);
    return gone_ok(call(p, &barge_api_ssm, "DeleteParameter", in, NULL, err), err);
}

/* Secrets Manager */

static int secret_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                         json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "Name", 256, false);
    _cleanup_json_ json_t *src = with(props, "Name", name);
    _cleanup_json_ json_t *in = input(&barge_api_secretsmanager, "CreateSecret", src), *out = NULL;
    if (!json_object_get(in, "SecretString") && !json_object_get(in, "SecretBinary")) {
        /* GenerateSecretString: a random password, as a JSON member when a
         * template is given. */
        char rnd[33];
        barge_id_hex32(rnd);
        const json_t *gen = json_object_get(props, "GenerateSecretString");
        const char *tmpl = barge_json_str(gen, "SecretStringTemplate", NULL);
        const char *key = barge_json_str(gen, "GenerateStringKey", NULL);
        _cleanup_json_ json_t *obj = tmpl ? json_loads(tmpl, 0, NULL) : NULL;
        if (json_is_object(obj) && key) {
            json_object_set_new(obj, key, json_string(rnd));
            char *s = barge_json_dump(obj);
            json_object_set_new(in, "SecretString", json_string(s));
            free(s);
        } else {
            json_object_set_new(in, "SecretString", json_string(rnd));
        }
    }
    if (call(p, &barge_api_secretsmanager, "CreateSecret", in, &out, err) < 0)
        return -1;
    *physical = barge_xstrdup(barge_json_str(out, "ARN", name));
    *attrs = json_pack("{s:s}", "Id", *physical);
    return 0;
}

static int secret_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                         struct barge_error **err)
{
    _cleanup_json_ json_t *in =
        json_pack("{s:s, s:b}", "SecretId", physical, "ForceDeleteWithoutRecovery", 1);
    return gone_ok(call(p, &barge_api_secretsmanager, "DeleteSecret", in, NULL, err), err);
}

/* ECR */

static int repo_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                       json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "RepositoryName", 200, true);
    _cleanup_json_ json_t *src = with(props, "RepositoryName", name);
    _cleanup_json_ json_t *in = input(&barge_api_ecr, "CreateRepository", src), *out = NULL;
    if (call(p, &barge_api_ecr, "CreateRepository", in, &out, err) < 0)
        return -1;
    json_t *repo = json_object_get(out, "repository");
    *attrs = json_pack("{s:s, s:s}", "Arn", barge_json_str(repo, "repositoryArn", ""),
                       "RepositoryUri", barge_json_str(repo, "repositoryUri", ""));
    const char *lp =
        barge_json_str(json_object_get(props, "LifecyclePolicy"), "LifecyclePolicyText", NULL);
    if (lp) {
        _cleanup_json_ json_t *lin =
            json_pack("{s:s, s:s}", "repositoryName", name, "lifecyclePolicyText", lp);
        if (call(p, &barge_api_ecr, "PutLifecyclePolicy", lin, NULL, err) < 0)
            return -1;
    }
    *physical = barge_steal(&name);
    return 0;
}

static int repo_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                       struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s, s:b}", "repositoryName", physical, "force",
                                          json_is_true(json_object_get(props, "EmptyOnDelete")));
    return gone_ok(call(p, &barge_api_ecr, "DeleteRepository", in, NULL, err), err);
}

/* S3 */

static json_t *bucket_attrs(const struct barge_cfn_prov *p, const char *name)
{
    _cleanup_free_ char *arn = barge_xasprintf("arn:aws:s3:::%s", name);
    _cleanup_free_ char *dn = barge_xasprintf("%s.s3.amazonaws.com", name);
    _cleanup_free_ char *rdn =
        barge_xasprintf("%s.s3.%s.amazonaws.com", name, barge_server_region(p->srv));
    return json_pack("{s:s, s:s, s:s, s:s}", "Arn", arn, "DomainName", dn, "RegionalDomainName",
                     rdn, "DualStackDomainName", rdn);
}

static int bucket_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                         json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "BucketName", 63, true);
    if (barge_api_s3_bucket_create(p->srv, name, err) < 0)
        return -1;
    *attrs = bucket_attrs(p, name);
    *physical = barge_steal(&name);
    return 0;
}

static int bucket_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                         const json_t *props, json_t **attrs, struct barge_error **err)
{
    if (!same(old, props, "BucketName"))
        return 1;
    *attrs = bucket_attrs(p, physical);
    return 0;
}

static int bucket_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                         struct barge_error **err)
{
    return barge_api_s3_bucket_delete(p->srv, physical, err);
}

/* Types recorded without an API behind them: the id is made here. */
static int record_create(struct barge_cfn_prov *p, const char *prefix, char **physical)
{
    char rnd[33];
    barge_id_hex32(rnd);
    *physical = barge_xasprintf("%s%.17s", prefix, rnd);
    return 0;
}

static int record_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                         const json_t *props, json_t **attrs, struct barge_error **err)
{
    return 0;
}

static int record_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                         struct barge_error **err)
{
    return 0;
}

static int bucket_policy_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                                json_t **attrs, struct barge_error **err)
{
    *physical = barge_xstrdup(barge_json_str(props, "Bucket", p->logical));
    *attrs = json_object();
    return 0;
}

/* Renames key from to to in a copy of props. */
static json_t *renamed(const json_t *props, const char *from, const char *to)
{
    json_t *c = json_deep_copy(props);
    json_t *v = json_object_get(c, from);
    if (v) {
        json_object_set(c, to, v);
        json_object_del(c, from);
    }
    return c;
}

/* The last path segment of an ARN ("…/name"). */
static const char *arn_tail(const char *arn)
{
    const char *slash = strrchr(arn, '/');
    return slash ? slash + 1 : arn;
}

/* ECS */

static int cluster_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                          json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "ClusterName", 255, false);
    _cleanup_json_ json_t *src = renamed(props, "ClusterSettings", "settings");
    json_object_set_new(src, "ClusterName", json_string(name));
    _cleanup_json_ json_t *in = input(&barge_api_ecs, "CreateCluster", src), *out = NULL;
    if (call(p, &barge_api_ecs, "CreateCluster", in, &out, err) < 0)
        return -1;
    *attrs = json_pack("{s:s}", "Arn",
                       barge_json_str(json_object_get(out, "cluster"), "clusterArn", ""));
    *physical = barge_steal(&name);
    return 0;
}

/* How long a cluster's removal waits for the tasks of its deleted services
 * to stop. */
#define CLUSTER_DRAIN_MS (5 * 60 * 1000)

static int cluster_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                          struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "cluster", physical);
    for (int waited = 0;; waited += 500) {
        if (call(p, &barge_api_ecs, "DeleteCluster", in, NULL, err) == 0)
            return 0;
        /* The services of the stack are gone; their tasks are stopping. */
        if (waited >= CLUSTER_DRAIN_MS || !(*err)->type ||
            strcmp((*err)->type, "ClusterContainsTasksException") != 0 || !barge_cfn_pause(500))
            return gone_ok(-1, err);
        barge_error_free(barge_steal(err));
    }
}

static int taskdef_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                          json_t **attrs, struct barge_error **err)
{
    _cleanup_json_ json_t *src = json_deep_copy(props);
    if (!json_object_get(src, "Family")) {
        char rnd[33];
        barge_id_hex32(rnd);
        json_object_set_new(src, "Family",
                            json_sprintf("%s%s%.8s", p->stack_name, p->logical, rnd));
    }
    _cleanup_json_ json_t *in = input(&barge_api_ecs, "RegisterTaskDefinition", src), *out = NULL;
    if (call(p, &barge_api_ecs, "RegisterTaskDefinition", in, &out, err) < 0)
        return -1;
    const char *arn =
        barge_json_str(json_object_get(out, "taskDefinition"), "taskDefinitionArn", "");
    *attrs = json_pack("{s:s}", "TaskDefinitionArn", arn);
    *physical = barge_xstrdup(arn);
    return 0;
}

static int taskdef_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                          struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "taskDefinition", physical);
    return gone_ok(call(p, &barge_api_ecs, "DeregisterTaskDefinition", in, NULL, err), err);
}

static const char *cluster_of(const json_t *props)
{
    return barge_json_str(props, "Cluster", "default");
}

static json_t *service_attrs(const char *arn)
{
    return json_pack("{s:s, s:s}", "ServiceArn", arn, "Name", arn_tail(arn));
}

/* How long a stack waits for a service to settle, as CloudFormation does
 * before it counts the service made or changed. */
#define SERVICE_WAIT_MS (30 * 60 * 1000)

/* The service arn of cluster as DescribeServices shows it; NULL when gone. */
static int service_get(struct barge_cfn_prov *p, const char *cluster, const char *arn, json_t **svc,
                       struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s, s:[s]}", "cluster", cluster, "services", arn);
    _cleanup_json_ json_t *out = NULL;
    if (call(p, &barge_api_ecs, "DescribeServices", in, &out, err) < 0)
        return -1;
    json_t *s = json_array_get(json_object_get(out, "services"), 0);
    *svc = s ? json_incref(s) : NULL;
    return 0;
}

/* Waits until the service's primary deployment completed (0) or failed (-1
 * with the reason), or until it is gone when gone is true. */
static int service_wait(struct barge_cfn_prov *p, const char *cluster, const char *arn, bool gone,
                        struct barge_error **err)
{
    for (int waited = 0; waited < SERVICE_WAIT_MS; waited += 500) {
        _cleanup_json_ json_t *svc = NULL;
        if (service_get(p, cluster, arn, &svc, err) < 0)
            return -1;
        const char *status = barge_json_str(svc, "status", "INACTIVE");
        if (gone && !strcmp(status, "INACTIVE"))
            return 0;
        if (!gone) {
            size_t i;
            json_t *d;
            json_array_foreach(json_object_get(svc, "deployments"), i, d)
            {
                if (!barge_streq(barge_json_str(d, "status", ""), "PRIMARY"))
                    continue;
                const char *rollout = barge_json_str(d, "rolloutState", "");
                if (!strcmp(rollout, "COMPLETED"))
                    return 0;
                if (!strcmp(rollout, "FAILED"))
                    return barge_error_set_type(
                        err, BARGE_ERR_CONFLICT, "GeneralServiceException",
                        "Error occurred during operation 'ECS Deployment Circuit Breaker was "
                        "triggered': %s",
                        barge_json_str(d, "rolloutStateReason", ""));
            }
        }
        if (!barge_cfn_pause(500))
            break;
    }
    return barge_error_set(err, BARGE_ERR_CONFLICT, "service '%s' did not %s in time",
                           arn_tail(arn), gone ? "drain" : "stabilize");
}

static int service_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                          json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "ServiceName", 255, false);
    _cleanup_json_ json_t *src = renamed(props, "PlacementStrategies", "placementStrategy");
    json_object_set_new(src, "ServiceName", json_string(name));
    if (!json_object_get(src, "DesiredCount") &&
        !barge_streq(barge_json_str(src, "SchedulingStrategy", ""), "DAEMON"))
        json_object_set_new(src, "DesiredCount", json_integer(1));
    _cleanup_json_ json_t *in = input(&barge_api_ecs, "CreateService", src), *out = NULL;
    if (call(p, &barge_api_ecs, "CreateService", in, &out, err) < 0)
        return -1;
    const char *arn = barge_json_str(json_object_get(out, "service"), "serviceArn", "");
    *attrs = service_attrs(arn);
    *physical = barge_xstrdup(arn);
    return service_wait(p, cluster_of(props), arn, false, err);
}

static int service_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                          const json_t *props, json_t **attrs, struct barge_error **err)
{
    static const char *const fixed[] = {"ServiceName", "Cluster", "LaunchType",
                                        "SchedulingStrategy", "Role"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(fixed); i++)
        if (!same(old, props, fixed[i]))
            return 1;
    _cleanup_json_ json_t *src = renamed(props, "PlacementStrategies", "placementStrategy");
    static const char *const create_only[] = {
        "ServiceName", "LaunchType",           "SchedulingStrategy", "Role",
        "Tags",        "EnableECSManagedTags", "PropagateTags",      "DeploymentController"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(create_only); i++)
        json_object_del(src, create_only[i]);
    _cleanup_json_ json_t *in = input(&barge_api_ecs, "UpdateService", src);
    json_object_set_new(in, "service", json_string(physical));
    json_object_set_new(in, "cluster", json_string(cluster_of(props)));
    if (call(p, &barge_api_ecs, "UpdateService", in, NULL, err) < 0)
        return -1;
    *attrs = service_attrs(physical);
    return service_wait(p, cluster_of(props), physical, false, err);
}

static int service_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                          struct barge_error **err)
{
    _cleanup_json_ json_t *in =
        json_pack("{s:s, s:s, s:b}", "cluster", cluster_of(props), "service", physical, "force", 1);
    if (call(p, &barge_api_ecs, "DeleteService", in, NULL, err) < 0)
        return gone_ok(-1, err);
    return service_wait(p, cluster_of(props), physical, true, err);
}

static int capacity_provider_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                                    json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "Name", 255, false);
    _cleanup_json_ json_t *src = with(props, "Name", name);
    _cleanup_json_ json_t *in = input(&barge_api_ecs, "CreateCapacityProvider", src);
    if (call(p, &barge_api_ecs, "CreateCapacityProvider", in, NULL, err) < 0)
        return -1;
    *physical = barge_steal(&name);
    return 0;
}

static int capacity_provider_remove(struct barge_cfn_prov *p, const char *physical,
                                    const json_t *props, struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "capacityProvider", physical);
    return gone_ok(call(p, &barge_api_ecs, "DeleteCapacityProvider", in, NULL, err), err);
}

static int associations_put(struct barge_cfn_prov *p, const json_t *props, bool clear,
                            struct barge_error **err)
{
    _cleanup_json_ json_t *in = input(&barge_api_ecs, "PutClusterCapacityProviders", props);
    if (clear || !json_object_get(in, "capacityProviders"))
        json_object_set_new(in, "capacityProviders", json_array());
    if (clear || !json_object_get(in, "defaultCapacityProviderStrategy"))
        json_object_set_new(in, "defaultCapacityProviderStrategy", json_array());
    return call(p, &barge_api_ecs, "PutClusterCapacityProviders", in, NULL, err);
}

static int associations_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                               json_t **attrs, struct barge_error **err)
{
    if (associations_put(p, props, false, err) < 0)
        return -1;
    *physical = barge_xstrdup(barge_json_str(props, "Cluster", ""));
    return 0;
}

static int associations_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                               const json_t *props, json_t **attrs, struct barge_error **err)
{
    if (!same(old, props, "Cluster"))
        return 1;
    return associations_put(p, props, false, err);
}

static int associations_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                               struct barge_error **err)
{
    return gone_ok(associations_put(p, props, true, err), err);
}

/* IAM */

static int role_policies(struct barge_cfn_prov *p, const char *role, const json_t *old,
                         const json_t *props, struct barge_error **err)
{
    /* Inline policies: put the new ones, delete those gone. */
    size_t i;
    json_t *pol;
    json_array_foreach(json_object_get(props, "Policies"), i, pol)
    {
        _cleanup_json_ json_t *in = input(&barge_api_iam, "PutRolePolicy", pol);
        json_object_set_new(in, "RoleName", json_string(role));
        if (call(p, &barge_api_iam, "PutRolePolicy", in, NULL, err) < 0)
            return -1;
    }
    json_array_foreach(json_object_get(old, "Policies"), i, pol)
    {
        const char *name = barge_json_str(pol, "PolicyName", "");
        bool kept = false;
        size_t j;
        json_t *n;
        json_array_foreach(json_object_get(props, "Policies"), j,
                           n) if (barge_streq(barge_json_str(n, "PolicyName", ""), name)) kept =
            true;
        _cleanup_json_ json_t *in = json_pack("{s:s, s:s}", "RoleName", role, "PolicyName", name);
        if (!kept && gone_ok(call(p, &barge_api_iam, "DeleteRolePolicy", in, NULL, err), err) < 0)
            return -1;
    }
    /* Managed policies: attach the new, detach those gone. */
    json_t *arn;
    json_array_foreach(json_object_get(props, "ManagedPolicyArns"), i, arn)
    {
        bool had = false;
        size_t j;
        json_t *o;
        json_array_foreach(json_object_get(old, "ManagedPolicyArns"), j, o) if (json_equal(o, arn))
            had = true;
        _cleanup_json_ json_t *in = json_pack("{s:s, s:O}", "RoleName", role, "PolicyArn", arn);
        if (!had && call(p, &barge_api_iam, "AttachRolePolicy", in, NULL, err) < 0)
            return -1;
    }
    json_array_foreach(json_object_get(old, "ManagedPolicyArns"), i, arn)
    {
        bool kept = false;
        size_t j;
        json_t *n;
        json_array_foreach(json_object_get(props, "ManagedPolicyArns"), j,
                           n) if (json_equal(n, arn)) kept = true;
        _cleanup_json_ json_t *in = json_pack("{s:s, s:O}", "RoleName", role, "PolicyArn", arn);
        if (!kept && gone_ok(call(p, &barge_api_iam, "DetachRolePolicy", in, NULL, err), err) < 0)
            return -1;
    }
    return 0;
}

static int role_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                       json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "RoleName", 64, false);
    _cleanup_json_ json_t *src = with(props, "RoleName", name);
    _cleanup_json_ json_t *in = input(&barge_api_iam, "CreateRole", src), *out = NULL;
    _cleanup_json_ json_t *none = json_object();
    if (call(p, &barge_api_iam, "CreateRole", in, &out, err) < 0)
        return -1;
    json_t *role = json_object_get(out, "Role");
    *attrs = json_pack("{s:s, s:s}", "Arn", barge_json_str(role, "Arn", ""), "RoleId",
                       barge_json_str(role, "RoleId", ""));
    *physical = barge_steal(&name);
    return role_policies(p, *physical, none, props, err);
}

static int role_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                       const json_t *props, json_t **attrs, struct barge_error **err)
{
    if (!same(old, props, "RoleName") || !same(old, props, "Path"))
        return 1;
    _cleanup_json_ json_t *in = json_pack("{s:s}", "RoleName", physical), *out = NULL;
    if (call(p, &barge_api_iam, "GetRole", in, &out, err) < 0)
        return -1;
    json_t *role = json_object_get(out, "Role");
    *attrs = json_pack("{s:s, s:s}", "Arn", barge_json_str(role, "Arn", ""), "RoleId",
                       barge_json_str(role, "RoleId", ""));
    return role_policies(p, physical, old, props, err);
}

static int role_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                       struct barge_error **err)
{
    _cleanup_json_ json_t *none = json_object();
    if (gone_ok(role_policies(p, physical, props, none, err), err) < 0)
        return -1;
    /* Policies attached from elsewhere (AWS::IAM::Policy of this stack is
     * removed first, by dependency order). */
    _cleanup_json_ json_t *in = json_pack("{s:s}", "RoleName", physical);
    return gone_ok(call(p, &barge_api_iam, "DeleteRole", in, NULL, err), err);
}

/* AWS::IAM::Policy: an inline policy on each of Roles. */
static int policy_roles(struct barge_cfn_prov *p, const char *name, const json_t *props, bool put,
                        struct barge_error **err)
{
    size_t i;
    json_t *role;
    json_array_foreach(json_object_get(props, "Roles"), i, role)
    {
        _cleanup_json_ json_t *in = json_pack("{s:O, s:s}", "RoleName", role, "PolicyName", name);
        if (put) {
            const json_t *doc = json_object_get(props, "PolicyDocument");
            if (json_is_string(doc)) {
                json_object_set(in, "PolicyDocument", (json_t *)doc);
            } else {
                char *text = barge_json_dump(doc);
                json_object_set_new(in, "PolicyDocument", json_string(text));
                free(text);
            }
            if (call(p, &barge_api_iam, "PutRolePolicy", in, NULL, err) < 0)
                return -1;
        } else if (gone_ok(call(p, &barge_api_iam, "DeleteRolePolicy", in, NULL, err), err) < 0) {
            return -1;
        }
    }
    if (json_array_size(json_object_get(props, "Users")) ||
        json_array_size(json_object_get(props, "Groups")))
        return put ? barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "ValidationError",
                                          "AWS::IAM::Policy on Users or Groups is not supported "
                                          "by barge")
                   : 0;
    return 0;
}

static int policy_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                         json_t **attrs, struct barge_error **err)
{
    const char *name = barge_json_str(props, "PolicyName", p->logical);
    if (policy_roles(p, name, props, true, err) < 0)
        return -1;
    _cleanup_free_ char *g = gen_name(p, 128, false);
    *physical = barge_xasprintf("%s|%s", name, g);
    return 0;
}

static int policy_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                         const json_t *props, json_t **attrs, struct barge_error **err)
{
    const char *name = barge_json_str(props, "PolicyName", p->logical);
    if (!barge_streq(barge_json_str(old, "PolicyName", p->logical), name))
        return 1;
    return policy_roles(p, name, old, false, err) < 0 || policy_roles(p, name, props, true, err) < 0
               ? -1
               : 0;
}

static int policy_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                         struct barge_error **err)
{
    const char *name = barge_json_str(props, "PolicyName", p->logical);
    return policy_roles(p, name, props, false, err);
}

static int managed_policy_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                                 json_t **attrs, struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "ManagedPolicyName", 128, false);
    _cleanup_json_ json_t *src = renamed(props, "ManagedPolicyName", "PolicyName");
    json_object_set_new(src, "PolicyName", json_string(name));
    _cleanup_json_ json_t *in = input(&barge_api_iam, "CreatePolicy", src), *out = NULL;
    if (call(p, &barge_api_iam, "CreatePolicy", in, &out, err) < 0)
        return -1;
    const char *arn = barge_json_str(json_object_get(out, "Policy"), "Arn", "");
    *physical = barge_xstrdup(arn);
    *attrs = json_pack("{s:s, s:s}", "PolicyArn", arn, "PolicyId",
                       barge_json_str(json_object_get(out, "Policy"), "PolicyId", ""));
    size_t i;
    json_t *role;
    json_array_foreach(json_object_get(props, "Roles"), i, role)
    {
        _cleanup_json_ json_t *a = json_pack("{s:O, s:s}", "RoleName", role, "PolicyArn", arn);
        if (call(p, &barge_api_iam, "AttachRolePolicy", a, NULL, err) < 0)
            return -1;
    }
    return 0;
}

static int managed_policy_remove(struct barge_cfn_prov *p, const char *physical,
                                 const json_t *props, struct barge_error **err)
{
    size_t i;
    json_t *role;
    json_array_foreach(json_object_get(props, "Roles"), i, role)
    {
        _cleanup_json_ json_t *a = json_pack("{s:O, s:s}", "RoleName", role, "PolicyArn", physical);
        if (gone_ok(call(p, &barge_api_iam, "DetachRolePolicy", a, NULL, err), err) < 0)
            return -1;
    }
    _cleanup_json_ json_t *in = json_pack("{s:s}", "PolicyArn", physical);
    return gone_ok(call(p, &barge_api_iam, "DeletePolicy", in, NULL, err), err);
}

/* Application Auto Scaling */

static int target_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                         json_t **attrs, struct barge_error **err)
{
    _cleanup_json_ json_t *in = input(&barge_api_autoscaling, "RegisterScalableTarget", props);
    json_object_del(in, "RoleARN");
    if (call(p, &barge_api_autoscaling, "RegisterScalableTarget", in, NULL, err) < 0)
        return -1;
    *physical = barge_xasprintf("%s|%s|%s", barge_json_str(props, "ResourceId", ""),
                                barge_json_str(props, "ScalableDimension", ""),
                                barge_json_str(props, "ServiceNamespace", ""));
    return 0;
}

static int target_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                         const json_t *props, json_t **attrs, struct barge_error **err)
{
    static const char *const key[] = {"ResourceId", "ScalableDimension", "ServiceNamespace"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(key); i++)
        if (!same(old, props, key[i]))
            return 1;
    _cleanup_json_ json_t *in = input(&barge_api_autoscaling, "RegisterScalableTarget", props);
    json_object_del(in, "RoleARN");
    return call(p, &barge_api_autoscaling, "RegisterScalableTarget", in, NULL, err);
}

/* Splits "resource|dimension|namespace" into in's members. */
static void target_id(json_t *in, const char *id)
{
    const char *a = strchr(id, '|'), *b = a ? strchr(a + 1, '|') : NULL;
    if (!b)
        return;
    json_object_set_new(in, "ResourceId", json_stringn(id, (size_t)(a - id)));
    json_object_set_new(in, "ScalableDimension", json_stringn(a + 1, (size_t)(b - a - 1)));
    json_object_set_new(in, "ServiceNamespace", json_string(b + 1));
}

static int target_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                         struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_object();
    target_id(in, physical);
    return gone_ok(call(p, &barge_api_autoscaling, "DeregisterScalableTarget", in, NULL, err), err);
}

static json_t *scaling_input(const json_t *props)
{
    json_t *in = input(&barge_api_autoscaling, "PutScalingPolicy", props);
    const char *tid = barge_json_str(props, "ScalingTargetId", NULL);
    if (tid)
        target_id(in, tid);
    return in;
}

static int scaling_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                          json_t **attrs, struct barge_error **err)
{
    _cleanup_json_ json_t *in = scaling_input(props), *out = NULL;
    if (call(p, &barge_api_autoscaling, "PutScalingPolicy", in, &out, err) < 0)
        return -1;
    *physical = barge_xstrdup(barge_json_str(out, "PolicyARN", ""));
    *attrs = json_pack("{s:s}", "Arn", *physical);
    return 0;
}

static int scaling_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                          const json_t *props, json_t **attrs, struct barge_error **err)
{
    static const char *const key[] = {"PolicyName", "ScalingTargetId", "ResourceId"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(key); i++)
        if (!same(old, props, key[i]))
            return 1;
    _cleanup_json_ json_t *in = scaling_input(props);
    *attrs = json_pack("{s:s}", "Arn", physical);
    return call(p, &barge_api_autoscaling, "PutScalingPolicy", in, NULL, err);
}

static int scaling_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                          struct barge_error **err)
{
    _cleanup_json_ json_t *full = scaling_input(props);
    _cleanup_json_ json_t *in = json_object();
    static const char *const key[] = {"PolicyName", "ResourceId", "ScalableDimension",
                                      "ServiceNamespace"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(key); i++)
        if (json_object_get(full, key[i]))
            json_object_set(in, key[i], json_object_get(full, key[i]));
    return gone_ok(call(p, &barge_api_autoscaling, "DeleteScalingPolicy", in, NULL, err), err);
}

/* Elastic Load Balancing v2 */

/* "app/name/id" from a load balancer or target group ARN's resource part. */
static const char *full_name(const char *arn)
{
    const char *c = strstr(arn, ":loadbalancer/");
    if (c)
        return c + strlen(":loadbalancer/");
    c = strstr(arn, ":targetgroup/");
    return c ? c + 1 : arn;
}

static int lb_create(struct barge_cfn_prov *p, const json_t *props, char **physical, json_t **attrs,
                     struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "Name", 32, false);
    _cleanup_json_ json_t *src = with(props, "Name", name);
    _cleanup_json_ json_t *in = input(&barge_api_elbv2, "CreateLoadBalancer", src), *out = NULL;
    if (call(p, &barge_api_elbv2, "CreateLoadBalancer", in, &out, err) < 0)
        return -1;
    json_t *lb = json_array_get(json_object_get(out, "LoadBalancers"), 0);
    const char *arn = barge_json_str(lb, "LoadBalancerArn", "");
    json_t *sgs = json_object_get(lb, "SecurityGroups");
    *attrs = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "LoadBalancerArn", arn, "DNSName",
                       barge_json_str(lb, "DNSName", ""), "LoadBalancerName", name,
                       "LoadBalancerFullName", full_name(arn), "CanonicalHostedZoneID",
                       barge_json_str(lb, "CanonicalHostedZoneId", "Z35SXDOTRQ7X7K"),
                       "SecurityGroups", sgs ? sgs : json_object_get(props, "SecurityGroups")
                                                        ?: json_array());
    *physical = barge_xstrdup(arn);
    return 0;
}

static int lb_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                     const json_t *props, json_t **attrs, struct barge_error **err)
{
    /* Attributes, subnets and security groups are kept as declared; the
     * name, scheme and type need a new load balancer. */
    static const char *const key[] = {"Name", "Scheme", "Type"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(key); i++)
        if (!same(old, props, key[i]))
            return 1;
    return 0;
}

static int lb_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                     struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "LoadBalancerArn", physical);
    return gone_ok(call(p, &barge_api_elbv2, "DeleteLoadBalancer", in, NULL, err), err);
}

static int tg_attributes(struct barge_cfn_prov *p, const char *arn, const json_t *props,
                         struct barge_error **err)
{
    json_t *attrs = json_object_get(props, "TargetGroupAttributes");
    if (!json_array_size(attrs))
        return 0;
    _cleanup_json_ json_t *in = json_pack("{s:s}", "TargetGroupArn", arn);
    json_t *list = json_array();
    json_object_set_new(in, "Attributes", list);
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
        json_array_append_new(list, json_pack("{s:s, s:s}", "Key", barge_json_str(a, "Key", ""),
                                              "Value", barge_json_str(a, "Value", "")));
    return call(p, &barge_api_elbv2, "ModifyTargetGroupAttributes", in, NULL, err);
}

static int tg_create(struct barge_cfn_prov *p, const json_t *props, char **physical, json_t **attrs,
                     struct barge_error **err)
{
    _cleanup_free_ char *name = name_or_gen(p, props, "Name", 32, false);
    _cleanup_json_ json_t *src = with(props, "Name", name);
    _cleanup_json_ json_t *in = input(&barge_api_elbv2, "CreateTargetGroup", src), *out = NULL;
    if (call(p, &barge_api_elbv2, "CreateTargetGroup", in, &out, err) < 0)
        return -1;
    json_t *tg = json_array_get(json_object_get(out, "TargetGroups"), 0);
    const char *arn = barge_json_str(tg, "TargetGroupArn", "");
    *physical = barge_xstrdup(arn);
    *attrs = json_pack("{s:s, s:s, s:s, s:[]}", "TargetGroupArn", arn, "TargetGroupName", name,
                       "TargetGroupFullName", full_name(arn), "LoadBalancerArns");
    return tg_attributes(p, arn, props, err);
}

static int tg_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                     const json_t *props, json_t **attrs, struct barge_error **err)
{
    static const char *const key[] = {"Name", "Port", "Protocol", "VpcId", "TargetType"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(key); i++)
        if (!same(old, props, key[i]))
            return 1;
    *attrs = json_pack("{s:s, s:s, s:s, s:[]}", "TargetGroupArn", physical, "TargetGroupName",
                       barge_json_str(props, "Name", ""), "TargetGroupFullName",
                       full_name(physical), "LoadBalancerArns");
    return tg_attributes(p, physical, props, err);
}

static int tg_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                     struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "TargetGroupArn", physical);
    return gone_ok(call(p, &barge_api_elbv2, "DeleteTargetGroup", in, NULL, err), err);
}

static int listener_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                           json_t **attrs, struct barge_error **err)
{
    _cleanup_json_ json_t *in = input(&barge_api_elbv2, "CreateListener", props), *out = NULL;
    if (call(p, &barge_api_elbv2, "CreateListener", in, &out, err) < 0)
        return -1;
    const char *arn =
        barge_json_str(json_array_get(json_object_get(out, "Listeners"), 0), "ListenerArn", "");
    *physical = barge_xstrdup(arn);
    *attrs = json_pack("{s:s}", "ListenerArn", arn);
    return 0;
}

static int listener_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                           struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "ListenerArn", physical);
    return gone_ok(call(p, &barge_api_elbv2, "DeleteListener", in, NULL, err), err);
}

static int listener_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                           const json_t *props, json_t **attrs, struct barge_error **err)
{
    /* Another load balancer or port means another listener (barge's
     * ModifyListener keeps a listener's port), the old one first removed so
     * that the port is free; anything else is changed in place, so its
     * rules stay. */
    if (!same(old, props, "LoadBalancerArn") || !same(old, props, "Port")) {
        if (listener_remove(p, physical, old, err) < 0)
            return -1;
        return 1;
    }
    _cleanup_json_ json_t *in = input(&barge_api_elbv2, "ModifyListener", props);
    json_object_set_new(in, "ListenerArn", json_string(physical));
    if (call(p, &barge_api_elbv2, "ModifyListener", in, NULL, err) < 0)
        return -1;
    *attrs = json_pack("{s:s}", "ListenerArn", physical);
    return 0;
}

static int rule_create(struct barge_cfn_prov *p, const json_t *props, char **physical,
                       json_t **attrs, struct barge_error **err)
{
    _cleanup_json_ json_t *in = input(&barge_api_elbv2, "CreateRule", props), *out = NULL;
    if (call(p, &barge_api_elbv2, "CreateRule", in, &out, err) < 0)
        return -1;
    const char *arn =
        barge_json_str(json_array_get(json_object_get(out, "Rules"), 0), "RuleArn", "");
    *physical = barge_xstrdup(arn);
    *attrs = json_pack("{s:s, s:b}", "RuleArn", arn, "IsDefault", 0);
    return 0;
}

static int rule_remove(struct barge_cfn_prov *p, const char *physical, const json_t *props,
                       struct barge_error **err)
{
    _cleanup_json_ json_t *in = json_pack("{s:s}", "RuleArn", physical);
    return gone_ok(call(p, &barge_api_elbv2, "DeleteRule", in, NULL, err), err);
}

static int rule_update(struct barge_cfn_prov *p, const char *physical, const json_t *old,
                       const json_t *props, json_t **attrs, struct barge_error **err)
{
    if (rule_remove(p, physical, old, err) < 0)
        return -1;
    return 1;
}

/* EC2: ids recorded, with the attributes templates read. */
static int ec2_create(struct barge_cfn_prov *p, const char *prefix, const json_t *props,
                      char **physical, json_t **attrs)
{
    record_create(p, prefix, physical);
    *attrs = json_object();
    if (!strcmp(prefix, "vpc-")) {
        char sg[33];
        barge_id_hex32(sg);
        _cleanup_free_ char *dsg = barge_xasprintf("sg-%.17s", sg);
        json_object_set_new(*attrs, "VpcId", json_string(*physical));
        json_object_set_new(*attrs, "DefaultSecurityGroup", json_string(dsg));
        json_object_set_new(*attrs, "CidrBlock",
                            json_string(barge_json_str(props, "CidrBlock", "10.0.0.0/16")));
        json_object_set_new(*attrs, "CidrBlockAssociations", json_array());
        json_object_set_new(*attrs, "Ipv6CidrBlocks", json_array());
    } else if (!strcmp(prefix, "subnet-")) {
        json_object_set_new(*attrs, "SubnetId", json_string(*physical));
        json_object_set_new(*attrs, "VpcId", json_string(barge_json_str(props, "VpcId", "")));
        json_object_set_new(
            *attrs, "AvailabilityZone",
            json_string(barge_json_str(props, "AvailabilityZone", barge_server_region(p->srv))));
        json_object_set_new(*attrs, "CidrBlock",
                            json_string(barge_json_str(props, "CidrBlock", "")));
        json_object_set_new(*attrs, "NetworkAclAssociationId",
                            json_sprintf("aclassoc-%.17s", *physical + 7));
        json_object_set_new(*attrs, "Ipv6CidrBlocks", json_array());
    } else if (!strcmp(prefix, "sg-")) {
        json_object_set_new(*attrs, "GroupId", json_string(*physical));
        json_object_set_new(*attrs, "VpcId", json_string(barge_json_str(props, "VpcId", "")));
    } else if (!strcmp(prefix, "eipalloc-")) {
        json_object_set_new(*attrs, "AllocationId", json_string(*physical));
        json_object_set_new(*attrs, "PublicIp", json_string("127.0.0.1"));
    } else if (!strcmp(prefix, "igw-")) {
        json_object_set_new(*attrs, "InternetGatewayId", json_string(*physical));
    } else if (!strcmp(prefix, "rtb-")) {
        json_object_set_new(*attrs, "RouteTableId", json_string(*physical));
    } else if (!strcmp(prefix, "nat-")) {
        json_object_set_new(*attrs, "NatGatewayId", json_string(*physical));
    }
    return 0;
}

#define EC2(fn, prefix)                                                                           \
    static int fn(struct barge_cfn_prov *p, const json_t *props, char **physical, json_t **attrs, \
                  struct barge_error **err)                                                       \
    {                                                                                             \
        return ec2_create(p, prefix, props, physical, attrs);                                     \
    }
EC2(vpc_create, "vpc-")
EC2(subnet_create, "subnet-")
EC2(sg_create, "sg-")
EC2(sgrule_create, "sgr-")
EC2(rtb_create, "rtb-")
EC2(route_create, "r-")
EC2(rtbassoc_create, "rtbassoc-")
EC2(igw_create, "igw-")
EC2(attach_create, "igw-attach-")
EC2(nat_create, "nat-")
EC2(eip_create, "eipalloc-")

static const struct type types[] = {
    {"AWS::ECS::Cluster", cluster_create, NULL, cluster_remove},
    {"AWS::ECS::TaskDefinition", taskdef_create, NULL, taskdef_remove},
    {"AWS::ECS::Service", service_create, service_update, service_remove},
    {"AWS::ECS::CapacityProvider", capacity_provider_create, NULL, capacity_provider_remove},
    {"AWS::ECS::ClusterCapacityProviderAssociations", associations_create, associations_update,
     associations_remove},
    {"AWS::IAM::Role", role_create, role_update, role_remove},
    {"AWS::IAM::Policy", policy_create, policy_update, policy_remove},
    {"AWS::IAM::ManagedPolicy", managed_policy_create, NULL, managed_policy_remove},
    {"AWS::ApplicationAutoScaling::ScalableTarget", target_create, target_update, target_remove},
    {"AWS::ApplicationAutoScaling::ScalingPolicy", scaling_create, scaling_update, scaling_remove},
    {"AWS::ElasticLoadBalancingV2::LoadBalancer", lb_create, lb_update, lb_remove},
    {"AWS::ElasticLoadBalancingV2::TargetGroup", tg_create, tg_update, tg_remove},
    {"AWS::ElasticLoadBalancingV2::Listener", listener_create, listener_update, listener_remove},
    {"AWS::ElasticLoadBalancingV2::ListenerRule", rule_create, rule_update, rule_remove},
    {"AWS::Logs::LogGroup", log_group_create, log_group_update, log_group_remove},
    {"AWS::SSM::Parameter", ssm_create, ssm_update, ssm_remove},
    {"AWS::SecretsManager::Secret", secret_create, NULL, secret_remove},
    {"AWS::ECR::Repository", repo_create, NULL, repo_remove},
    {"AWS::S3::Bucket", bucket_create, bucket_update, bucket_remove},
    {"AWS::S3::BucketPolicy", bucket_policy_create, record_update, record_remove},
    {"AWS::EC2::VPC", vpc_create, record_update, record_remove},
    {"AWS::EC2::Subnet", subnet_create, record_update, record_remove},
    {"AWS::EC2::SecurityGroup", sg_create, record_update, record_remove},
    {"AWS::EC2::SecurityGroupIngress", sgrule_create, record_update, record_remove},
    {"AWS::EC2::SecurityGroupEgress", sgrule_create, record_update, record_remove},
    {"AWS::EC2::RouteTable", rtb_create, record_update, record_remove},
    {"AWS::EC2::Route", route_create, record_update, record_remove},
    {"AWS::EC2::SubnetRouteTableAssociation", rtbassoc_create, record_update, record_remove},
    {"AWS::EC2::InternetGateway", igw_create, record_update, record_remove},
    {"AWS::EC2::VPCGatewayAttachment", attach_create, record_update, record_remove},
    {"AWS::EC2::NatGateway", nat_create, record_update, record_remove},
    {"AWS::EC2::EIP", eip_create, record_update, record_remove},
};

static const struct type *find(const char *name)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(types); i++)
        if (!strcmp(types[i].name, name))
            return &types[i];
    return NULL;
}

bool barge_cfn_type_known(const char *type)
{
    return find(type) != NULL;
}

int barge_cfn_resource_create(struct barge_cfn_prov *p, const char *type, const json_t *props,
                              char **physical, json_t **attrs, struct barge_error **err)
{
    const struct type *t = find(type);
    *physical = NULL;
    *attrs = NULL;
    if (!t)
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "ValidationError",
                                    "Resource type '%s' is not supported by barge", type);
    if (t->create(p, props, physical, attrs, err) < 0)
        return -1;
    if (!*attrs)
        *attrs = json_object();
    return 0;
}

int barge_cfn_resource_update(struct barge_cfn_prov *p, const char *type, const char *physical,
                              const json_t *old_props, const json_t *props, char **new_physical,
                              json_t **attrs, struct barge_error **err)
{
    const struct type *t = find(type);
    *new_physical = NULL;
    *attrs = NULL;
    if (!t)
        return barge_error_set_type(err, BARGE_ERR_UNSUPPORTED, "ValidationError",
                                    "Resource type '%s' is not supported by barge", type);
    _cleanup_json_ json_t *empty = json_object();
    int rc =
        t->update ? t->update(p, physical, old_props ? old_props : empty, props, attrs, err) : 1;
    if (rc < 0)
        return -1;
    if (rc == 0) {
        *new_physical = barge_xstrdup(physical);
        if (!*attrs)
            *attrs = json_object();
        return 0;
    }
    /* Replacement: a new resource; the engine removes the old one. */
    json_decref(barge_steal(attrs));
    return barge_cfn_resource_create(p, type, props, new_physical, attrs, err);
}

int barge_cfn_resource_delete(struct barge_cfn_prov *p, const char *type, const char *physical,
                              const json_t *props, struct barge_error **err)
{
    const struct type *t = find(type);
    if (!t)
        return 0;
    _cleanup_json_ json_t *empty = json_object();
    return t->remove(p, physical, props ? props : empty, err);
}
