/* AWS TagLists ([{"Key": ..., "Value": ...}]) kept under a document's "tags":
 * the tag bookkeeping ECR, SSM and Secrets Manager share. (ECS keeps its
 * lower-case key/value tags in documents of their own: ecs_tags.c.) */
#include "api/api.h"
#include "common/json.h"

void barge_api_tags_merge(json_t *doc, const json_t *add)
{
    json_t *cur = barge_json_array(doc, "tags");
    if (!cur)
        json_object_set_new(doc, "tags", cur = json_array());
    size_t i, j;
    json_t *t, *c;
    json_array_foreach((json_t *)add, i, t)
    {
        const char *k = barge_json_str(t, "Key", "");
        json_t *entry = json_pack("{s:s, s:s}", "Key", k, "Value", barge_json_str(t, "Value", ""));
        bool replaced = false;
        json_array_foreach(cur, j, c)
        {
            if (barge_streq(barge_json_str(c, "Key", NULL), k)) {
                json_array_set(cur, j, entry);
                replaced = true;
                break;
            }
        }
        if (!replaced)
            json_array_append(cur, entry);
        json_decref(entry);
    }
}

void barge_api_tags_remove(json_t *doc, const json_t *keys)
{
    json_t *cur = barge_json_array(doc, "tags");
    size_t i;
    json_t *k;
    json_array_foreach((json_t *)keys, i, k)
    {
        for (size_t j = 0; j < json_array_size(cur);) {
            if (barge_streq(barge_json_str(json_array_get(cur, j), "Key", NULL),
                            json_string_value(k)))
                json_array_remove(cur, j);
            else
                j++;
        }
    }
}
