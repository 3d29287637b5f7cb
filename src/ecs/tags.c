/* The tag store of every taggable ECS resource, kept apart from the
 * resources themselves (kind "tags", keyed by ARN): what TagResource and the
 * Create and Register operations (api/ecs_tags.c and others) and task
 * placement write (ecs.h). */
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "ecs/ecs.h"

#define MAX_TAGS 50

int ecs_tags_validate(const json_t *tags, struct barge_error **err)
{
    if (json_array_size(tags) > MAX_TAGS)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "A resource can have at most %d tags; %zu were given.",
                                    MAX_TAGS, json_array_size(tags));
    size_t i, j;
    json_t *t, *u;
    json_array_foreach(tags, i, t)
    {
        const char *key = barge_json_str(t, "key", NULL);
        if (!key || !*key)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Tag keys must not be empty.");
        if (strncasecmp(key, "aws:", 4) == 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Tag key '%s' is invalid: the 'aws:' prefix is "
                                        "reserved for AWS use.",
                                        key);
        json_array_foreach(tags, j, u)
        {
            if (j < i && barge_streq(barge_json_str(u, "key", NULL), key))
                return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                            "Tag key '%s' appears more than once.", key);
        }
    }
    return 0;
}

int ecs_tags_get(struct barge_tx *tx, const char *arn, json_t **tags, struct barge_error **err)
{
    json_t *doc = NULL;
    if (barge_store_get(tx, ECS_KIND_TAGS, arn, &doc, err) < 0)
        return -1;
    json_t *list = doc ? json_incref(barge_json_array(doc, "tags")) : NULL;
    json_decref(doc);
    *tags = list ? list : json_array();
    return 0;
}

int ecs_tags_put(struct barge_tx *tx, const char *arn, json_t *list, struct barge_error **err)
{
    if (json_array_size(list) == 0)
        return barge_store_del(tx, ECS_KIND_TAGS, arn, err);
    _cleanup_json_ json_t *doc = json_pack("{s:O}", "tags", list);
    return barge_store_put(tx, ECS_KIND_TAGS, arn, doc, err);
}

int ecs_tags_add(struct barge_tx *tx, const char *arn, const json_t *tags, struct barge_error **err)
{
    if (ecs_tags_validate(tags, err) < 0)
        return -1;
    _cleanup_json_ json_t *cur = NULL;
    if (ecs_tags_get(tx, arn, &cur, err) < 0)
        return -1;
    size_t i, j;
    json_t *t, *c;
    json_array_foreach(tags, i, t)
    {
        const char *key = barge_json_str(t, "key", "");
        json_t *entry =
            json_pack("{s:s, s:s}", "key", key, "value", barge_json_str(t, "value", ""));
        bool replaced = false;
        json_array_foreach(cur, j, c)
        {
            if (barge_streq(barge_json_str(c, "key", NULL), key)) {
                json_array_set(cur, j, entry);
                replaced = true;
                break;
            }
        }
        if (!replaced)
            json_array_append(cur, entry);
        json_decref(entry);
    }
    if (json_array_size(cur) > MAX_TAGS)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "A resource can have at most %d tags; this request would "
                                    "give '%s' %zu.",
                                    MAX_TAGS, arn, json_array_size(cur));
    return ecs_tags_put(tx, arn, cur, err);
}

int ecs_tags_drop(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    return barge_store_del(tx, ECS_KIND_TAGS, arn, err);
}
