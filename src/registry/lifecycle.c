/* Lifecycle policy parsing and evaluation (see lifecycle.h). */
#include "registry/lifecycle.h"

#include <fnmatch.h>
#include <jansson.h>
#include <string.h>

#include "common/json.h"

#define MAX_RULES 50

static int fail(struct barge_error **err, const char *what)
{
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                "Invalid parameter at 'LifecyclePolicyText' failed to satisfy "
                                "constraint: 'Lifecycle policy validation failure: %s'",
                                what);
}

static int string_list(const json_t *arr, const char *name, char ***out, size_t *n,
                       struct barge_error **err)
{
    if (!arr)
        return 0;
    char msg[160];
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        snprintf(msg, sizeof(msg), "%s must be a non-empty list of strings", name);
        return fail(err, msg);
    }
    *n = json_array_size(arr);
    *out = barge_xcalloc(*n, sizeof(char *));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || !*s) {
            snprintf(msg, sizeof(msg), "%s must be a non-empty list of strings", name);
            return fail(err, msg);
        }
        (*out)[i] = barge_xstrdup(s);
    }
    return 0;
}

static int stars(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '*';
    return n;
}

static int parse_rule(const json_t *j, struct barge_lifecycle_rule *r, struct barge_error **err)
{
    char msg[200];
    if (!json_is_object(j))
        return fail(err, "each rule must be an object");
    json_t *prio = json_object_get(j, "rulePriority");
    if (!json_is_integer(prio) || json_integer_value(prio) < 1)
        return fail(err, "rulePriority must be a positive integer");
    r->priority = json_integer_value(prio);
    json_t *desc = json_object_get(j, "description");
    if (desc && !json_is_string(desc))
        return fail(err, "description must be a string");
    json_t *sel = json_object_get(j, "selection");
    if (!json_is_object(sel))
        return fail(err, "a rule must have a selection object");

    const char *ts = barge_json_str(sel, "tagStatus", NULL);
    if (barge_streq(ts, "tagged"))
        r->tag_status = BARGE_LC_TAGGED;
    else if (barge_streq(ts, "untagged"))
        r->tag_status = BARGE_LC_UNTAGGED;
    else if (barge_streq(ts, "any"))
        r->tag_status = BARGE_LC_ANY;
    else
        return fail(err, "tagStatus must be one of tagged, untagged or any");
    json_t *prefixes = json_object_get(sel, "tagPrefixList");
    json_t *patterns = json_object_get(sel, "tagPatternList");
    if (string_list(prefixes, "tagPrefixList", &r->prefixes, &r->n_prefixes, err) < 0 ||
        string_list(patterns, "tagPatternList", &r->patterns, &r->n_patterns, err) < 0)
        return -1;
    if (r->tag_status == BARGE_LC_TAGGED && !prefixes && !patterns)
        return fail(err, "a rule with tagStatus tagged needs tagPrefixList or tagPatternList");
    if (prefixes && patterns)
        return fail(err, "tagPrefixList and tagPatternList cannot both be given");
    if (r->tag_status != BARGE_LC_TAGGED && (prefixes || patterns))
        return fail(err, "tagPrefixList and tagPatternList are only allowed with tagStatus "
                         "tagged");
    for (size_t i = 0; i < r->n_patterns; i++)
        if (stars(r->patterns[i]) > 4) {
            snprintf(msg, sizeof(msg), "tag pattern '%.100s' has more than 4 wildcards",
                     r->patterns[i]);
            return fail(err, msg);
        }

    const char *ct = barge_json_str(sel, "countType", NULL);
    const char *unit = barge_json_str(sel, "countUnit", NULL);
    if (barge_streq(ct, "imageCountMoreThan")) {
        r->count_type = BARGE_LC_COUNT_MORE_THAN;
        if (json_object_get(sel, "countUnit"))
            return fail(err, "countUnit is not allowed with countType imageCountMoreThan");
    } else if (barge_streq(ct, "sinceImagePushed")) {
        r->count_type = BARGE_LC_SINCE_PUSHED;
        if (!barge_streq(unit, "days"))
            return fail(err, "countType sinceImagePushed needs countUnit days");
    } else {
        return fail(err, "countType must be imageCountMoreThan or sinceImagePushed");
    }
    json_t *count = json_object_get(sel, "countNumber");
    if (!json_is_integer(count) || json_integer_value(count) < 1)
        return fail(err, "countNumber must be a positive integer");
    r->count = json_integer_value(count);

    json_t *action = json_object_get(j, "action");
    if (!json_is_object(action) || !barge_streq(barge_json_str(action, "type", NULL), "expire"))
        return fail(err, "action type must be expire");
    return 0;
}

static int by_priority(const void *a, const void *b)
{
    const struct barge_lifecycle_rule *x = a, *y = b;
    return x->priority < y->priority ? -1 : x->priority > y->priority;
}

int barge_lifecycle_parse(const char *text, struct barge_lifecycle_policy *out,
                          struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    _cleanup_json_ json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc))
        return fail(err, "the policy is not a JSON object");
    json_t *rules = json_object_get(doc, "rules");
    if (!json_is_array(rules) || json_array_size(rules) == 0)
        return fail(err, "the policy needs a non-empty rules list");
    if (json_array_size(rules) > MAX_RULES)
        return fail(err, "a policy has at most 50 rules");
    out->n_rules = json_array_size(rules);
    out->rules = barge_xcalloc(out->n_rules, sizeof(*out->rules));
    size_t i;
    json_t *v;
    json_array_foreach(rules, i, v)
    {
        if (parse_rule(v, &out->rules[i], err) < 0)
            goto bad;
    }
    qsort(out->rules, out->n_rules, sizeof(*out->rules), by_priority);
    for (i = 0; i + 1 < out->n_rules; i++) {
        if (out->rules[i].priority == out->rules[i + 1].priority) {
            fail(err, "rulePriority values must be unique");
            goto bad;
        }
        if (out->rules[i].tag_status == BARGE_LC_ANY) {
            fail(err, "a rule with tagStatus any must have the highest rulePriority");
            goto bad;
        }
    }
    return 0;
bad:
    barge_lifecycle_release(out);
    return -1;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

void barge_lifecycle_release(struct barge_lifecycle_policy *p)
{
    for (size_t i = 0; p->rules && i < p->n_rules; i++) {
        free_list(p->rules[i].prefixes, p->rules[i].n_prefixes);
        free_list(p->rules[i].patterns, p->rules[i].n_patterns);
    }
    free(p->rules);
    memset(p, 0, sizeof(*p));
}

/* Every entry of the list must match one of the image's tags. */
static bool all_match(char *const *list, size_t n, const struct barge_lifecycle_image *img,
                      bool prefix)
{
    for (size_t i = 0; i < n; i++) {
        bool any = false;
        for (size_t t = 0; t < img->n_tags && !any; t++)
            any = prefix ? barge_str_has_prefix(img->tags[t], list[i])
                         : fnmatch(list[i], img->tags[t], 0) == 0;
        if (!any)
            return false;
    }
    return true;
}

static bool selects(const struct barge_lifecycle_rule *r, const struct barge_lifecycle_image *img)
{
    switch (r->tag_status) {
    case BARGE_LC_UNTAGGED:
        return img->n_tags == 0;
    case BARGE_LC_ANY:
        return true;
    case BARGE_LC_TAGGED:
        if (img->n_tags == 0)
            return false;
        return r->n_prefixes ? all_match(r->prefixes, r->n_prefixes, img, true)
                             : all_match(r->patterns, r->n_patterns, img, false);
    }
    return false;
}

static int newest_first(const void *a, const void *b)
{
    const struct barge_lifecycle_image *x = *(struct barge_lifecycle_image *const *)a;
    const struct barge_lifecycle_image *y = *(struct barge_lifecycle_image *const *)b;
    return x->pushed_at > y->pushed_at ? -1 : x->pushed_at < y->pushed_at;
}

void barge_lifecycle_evaluate(const struct barge_lifecycle_policy *p,
                              struct barge_lifecycle_image *images, size_t n, double now)
{
    if (n == 0)
        return;
    struct barge_lifecycle_image **order = barge_xcalloc(n, sizeof(*order));
    bool *claimed = barge_xcalloc(n, sizeof(bool));
    for (size_t i = 0; i < n; i++) {
        images[i].expire = false;
        order[i] = &images[i];
    }
    qsort(order, n, sizeof(*order), newest_first);
    for (size_t r = 0; r < p->n_rules; r++) {
        const struct barge_lifecycle_rule *rule = &p->rules[r];
        long long seen = 0;
        for (size_t i = 0; i < n; i++) {
            if (claimed[i] || !selects(rule, order[i]))
                continue;
            claimed[i] = true;
            if (rule->count_type == BARGE_LC_COUNT_MORE_THAN)
                order[i]->expire = ++seen > rule->count;
            else
                order[i]->expire = order[i]->pushed_at < now - (double)rule->count * 86400.0;
        }
    }
    free(claimed);
    free(order);
}
