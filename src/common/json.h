/* JSON helpers over jansson: cleanup attribute, typed getters that tolerate a
 * missing or wrongly-typed member, and a compact dump. */
#ifndef BARGE_COMMON_JSON_H
#define BARGE_COMMON_JSON_H

#include <jansson.h>

#include "common/util.h"

static inline void barge_json_decrefp(json_t **j)
{
    if (*j)
        json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(barge_json_decrefp)))

/* Member getters: return the member's value, or dflt when it is missing or of
 * another type. Strings are borrowed from the object. */
const char *barge_json_str(const json_t *obj, const char *key, const char *dflt);
json_int_t barge_json_int(const json_t *obj, const char *key, json_int_t dflt);
bool barge_json_bool(const json_t *obj, const char *key, bool dflt);
/* The member if it is an array (or object), else NULL; borrowed. */
json_t *barge_json_array(const json_t *obj, const char *key);
json_t *barge_json_object(const json_t *obj, const char *key);
/* The first element of list whose string member key is value, or NULL;
 * borrowed. */
json_t *barge_json_find(const json_t *list, const char *key, const char *value);
/* Whether the array list has the string s. */
bool barge_json_has_string(const json_t *list, const char *s);
/* Compact serialisation with sorted keys off; the caller frees the string. */
char *barge_json_dump(const json_t *j);
/* Sets key to a string only when value is not NULL. */
void barge_json_set_str(json_t *obj, const char *key, const char *value);

#endif
