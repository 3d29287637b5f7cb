/* Cloud Map as the rest of barged sees it (svc/cloudmap.h): the store
 * layout of namespaces, services and instances (per region, keys
 * "<region>|<id>", instances "<region>|<service id>|<instance id>"), the
 * registration of ECS service tasks the scheduler keeps in line, and the
 * lookups of services. The API is api/cloudmap.c. */
#include "svc/cloudmap.h"

#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

const char *barge_cloudmap_id_of(const char *s)
{
    const char *slash = barge_str_has_prefix(s, "arn:") ? strrchr(s, '/') : NULL;
    return slash ? slash + 1 : s;
}

char *barge_cloudmap_key(const char *region, const char *id)
{
    return barge_xasprintf("%s|%s", region, id);
}

int barge_cloudmap_get(struct barge_tx *tx, const char *kind, const char *region, const char *id,
                       json_t **out, struct barge_error **err)
{
    _cleanup_free_ char *key = barge_cloudmap_key(region, id);
    return barge_store_get(tx, kind, key, out, err);
}

int barge_cloudmap_bump_revision(struct barge_tx *tx, const char *region, json_t *svc,
                                 struct barge_error **err)
{
    json_object_set_new(svc, "_revision", json_integer(barge_json_int(svc, "_revision", 1) + 1));
    _cleanup_free_ char *key = barge_cloudmap_key(region, barge_json_str(svc, "Id", ""));
    return barge_store_put(tx, CLOUDMAP_KIND_SERVICE, key, svc, err);
}

char *barge_cloudmap_instance_key(const char *region, const char *service_id,
                                  const char *instance_id)
{
    return barge_xasprintf("%s|%s|%s", region, service_id, instance_id);
}

int barge_cloudmap_collect(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    (void)err;
    (void)key;
    json_array_append(ud, doc);
    return 0;
}

char *barge_cloudmap_arn_region(const char *arn)
{
    /* arn:aws:servicediscovery:REGION:ACCOUNT:... */
    if (!barge_str_has_prefix(arn, "arn:"))
        return NULL;
    const char *p = arn;
    for (int i = 0; i < 3 && p; i++) {
        p = strchr(p, ':');
        p = p ? p + 1 : NULL;
    }
    const char *end = p ? strchr(p, ':') : NULL;
    return end ? barge_xstrndup(p, (size_t)(end - p)) : NULL;
}

int barge_cloudmap_ecs_sync(struct barge_tx *tx, const char *registry_arn, const json_t *want,
                            struct barge_error **err)
{
    _cleanup_free_ char *region = barge_cloudmap_arn_region(registry_arn);
    if (!region)
        return 0;
    _cleanup_json_ json_t *svc = NULL;
    int r = barge_cloudmap_get(tx, CLOUDMAP_KIND_SERVICE, region,
                               barge_cloudmap_id_of(registry_arn), &svc, err);
    if (r <= 0)
        return r;
    const char *sid = barge_json_str(svc, "Id", "");
    _cleanup_free_ char *prefix = barge_xasprintf("%s|%s|", region, sid);
    _cleanup_json_ json_t *all = json_array();
    if (barge_store_scan(tx, CLOUDMAP_KIND_INSTANCE, prefix, NULL, false, 0, barge_cloudmap_collect,
                         all, err) < 0)
        return -1;
    bool changed = false;
    size_t i;
    json_t *inst;
    json_array_foreach(all, i, inst)
    {
        const char *iid = barge_json_str(inst, "Id", "");
        if (!barge_json_bool(inst, "_ecs", false) || json_object_get(want, iid))
            continue;
        _cleanup_free_ char *key = barge_cloudmap_instance_key(region, sid, iid);
        if (barge_store_del(tx, CLOUDMAP_KIND_INSTANCE, key, err) < 0)
            return -1;
        barge_info("cloud map: task %s deregistered from %s", iid, sid);
        changed = true;
    }
    const char *iid;
    json_t *attrs;
    json_object_foreach((json_t *)want, iid, attrs)
    {
        _cleanup_json_ json_t *cur = NULL;
        _cleanup_free_ char *key = barge_cloudmap_instance_key(region, sid, iid);
        if (barge_store_get(tx, CLOUDMAP_KIND_INSTANCE, key, &cur, err) < 0)
            return -1;
        if (cur && json_equal(barge_json_object(cur, "Attributes"), attrs))
            continue;
        _cleanup_json_ json_t *doc = json_pack("{s:s, s:O, s:s, s:b}", "Id", iid, "Attributes",
                                               attrs, "_health", "HEALTHY", "_ecs", 1);
        if (barge_store_put(tx, CLOUDMAP_KIND_INSTANCE, key, doc, err) < 0)
            return -1;
        barge_info("cloud map: task %s registered in %s as %s", iid, sid,
                   barge_json_str(attrs, "AWS_INSTANCE_IPV4", "?"));
        changed = true;
    }
    if (changed && barge_cloudmap_bump_revision(tx, region, svc, err) < 0)
        return -1;
    return changed;
}

int barge_cloudmap_service_find(struct barge_tx *tx, const char *arn, json_t **svc, json_t **ns,
                                struct barge_error **err)
{
    *svc = *ns = NULL;
    _cleanup_free_ char *region = barge_cloudmap_arn_region(arn);
    if (!region || !strstr(arn, ":service/"))
        return 0;
    int r =
        barge_cloudmap_get(tx, CLOUDMAP_KIND_SERVICE, region, barge_cloudmap_id_of(arn), svc, err);
    if (r <= 0)
        return r;
    if (!barge_streq(barge_json_str(*svc, "Arn", NULL), arn) ||
        barge_cloudmap_get(tx, CLOUDMAP_KIND_NAMESPACE, region,
                           barge_json_str(*svc, "NamespaceId", ""), ns, err) <= 0) {
        json_decref(*svc);
        *svc = NULL;
        return *err ? -1 : 0;
    }
    return 1;
}

bool barge_cloudmap_has_record(const json_t *svc, const char *type)
{
    size_t i;
    json_t *r;
    json_array_foreach(barge_json_array(barge_json_object(svc, "DnsConfig"), "DnsRecords"), i, r)
    {
        if (barge_streq(barge_json_str(r, "Type", NULL), type))
            return true;
    }
    return false;
}
