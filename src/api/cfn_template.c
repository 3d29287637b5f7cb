/* CloudFormation templates: reading them (JSON, or YAML with the short-form
 * tags such as !Ref and !GetAtt, which become the long forms), resolving
 * parameters, evaluating conditions and intrinsic functions, and ordering
 * resources by what they depend on. Pure: no store, no I/O. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "api/cfn.h"
#include "common/crypto.h"
#include "common/json.h"

#define MAX_DEPTH 256

int barge_cfn_error(struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "ValidationError", "%s", msg);
}

/* --- YAML ---------------------------------------------------------------- */

static json_t *plain_scalar(const char *s, size_t len)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null"))
        return json_null();
    char *end;
    long long n = strtoll(s, &end, 10);
    /* Leading zeros ("0123") stay text: they are usually ids. */
    if (*s && !*end && (s[0] != '0' || len == 1) && (s[0] != '-' || s[1] != '0'))
        return json_integer(n);
    return json_stringn(s, len);
}

static json_t *yaml_node(yaml_document_t *doc, yaml_node_t *node, int depth,
                         struct barge_error **err);

/* The long form of a short-form tag ("!GetAtt" on v). */
static json_t *tagged(const char *tag, json_t *v)
{
    const char *name = tag + 1;
    if (!strcmp(name, "Ref") || !strcmp(name, "Condition"))
        return json_pack("{s:o}", name, v);
    if (!strcmp(name, "GetAtt") && json_is_string(v)) {
        const char *s = json_string_value(v), *dot = strchr(s, '.');
        json_t *pair = dot ? json_pack("[s#, s]", s, (int)(dot - s), dot + 1) : json_pack("[O]", v);
        json_decref(v);
        return json_pack("{s:o}", "Fn::GetAtt", pair);
    }
    _cleanup_free_ char *fn = barge_xasprintf("Fn::%s", name);
    return json_pack("{s:o}", fn, v);
}

static json_t *yaml_node(yaml_document_t *doc, yaml_node_t *node, int depth,
                         struct barge_error **err)
{
    if (!node)
        return json_null();
    if (depth > MAX_DEPTH) {
        barge_cfn_error(err, "Template format error: the template nests too deeply");
        return NULL;
    }
    json_t *v = NULL;
    switch (node->type) {
    case YAML_SCALAR_NODE: {
        const char *s = (const char *)node->data.scalar.value;
        size_t len = node->data.scalar.length;
        v = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(s, len)
                                                               : json_stringn(s, len);
        break;
    }
    case YAML_SEQUENCE_NODE:
        v = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            json_t *e = yaml_node(doc, yaml_document_get_node(doc, *it), depth + 1, err);
            if (!e) {
                json_decref(v);
                return NULL;
            }
            json_array_append_new(v, e);
        }
        break;
    case YAML_MAPPING_NODE:
        v = json_object();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = yaml_document_get_node(doc, p->key);
            if (!kn || kn->type != YAML_SCALAR_NODE) {
                json_decref(v);
                barge_cfn_error(
                    err, "Template format error: YAML mapping keys must be scalars (line %zu)",
                    kn ? kn->start_mark.line + 1 : 0);
                return NULL;
            }
            json_t *e = yaml_node(doc, yaml_document_get_node(doc, p->value), depth + 1, err);
            if (!e) {
                json_decref(v);
                return NULL;
            }
            json_object_set_new(v, (const char *)kn->data.scalar.value, e);
        }
        break;
    default:
        return json_null();
    }
    const char *tag = (const char *)node->tag;
    if (tag && tag[0] == '!' && tag[1])
        return tagged(tag, v);
    return v;
}

static int parse_yaml(const char *body, size_t len, json_t **out, struct barge_error **err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)body, len);
    if (!yaml_parser_load(&parser, &doc)) {
        barge_cfn_error(err, "Template format error: YAML not well-formed. (line %zu, column %zu)",
                        parser.problem_mark.line + 1, parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    *out = root ? yaml_node(&doc, root, 0, err) : json_null();
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return *out ? 0 : -1;
}

int barge_cfn_template_parse(const char *body, size_t len, json_t **out, struct barge_error **err)
{
    *out = NULL;
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", body[i]))
        i++;
    _cleanup_json_ json_t *tpl = NULL;
    if (i < len && body[i] == '{') {
        json_error_t jerr;
        tpl = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!tpl)
            return barge_cfn_error(
                err, "Template format error: JSON not well-formed. (line %d, column %d)", jerr.line,
                jerr.column);
    } else if (parse_yaml(body, len, &tpl, err) < 0) {
        return -1;
    }
    if (!json_is_object(tpl))
        return barge_cfn_error(err,
                               "Template format error: the template must be a JSON or YAML object");
    json_t *res = json_object_get(tpl, "Resources");
    if (!json_is_object(res) || !json_object_size(res))
        return barge_cfn_error(
            err, "Template format error: At least one Resources member must be defined.");
    const char *k;
    json_t *r;
    json_object_foreach(res, k, r)
    {
        if (!json_is_object(r) || !json_is_string(json_object_get(r, "Type")))
            return barge_cfn_error(err,
                                   "Template format error: [/Resources/%s] Every Resources object "
                                   "must contain a Type member.",
                                   k);
        json_t *props = json_object_get(r, "Properties");
        if (props && !json_is_object(props))
            return barge_cfn_error(
                err, "Template format error: [/Resources/%s/Properties] must be an object", k);
    }
    json_t *o;
    json_object_foreach(json_object_get(tpl, "Outputs"), k, o)
    {
        if (!json_is_object(o) || !json_object_get(o, "Value"))
            return barge_cfn_error(
                err,
                "Template format error: Every Outputs member must contain a Value "
                "object, the Output %s does not",
                k);
    }
    static const char *const sections[] = {"Parameters", "Conditions", "Mappings", "Outputs"};
    for (size_t s = 0; s < BARGE_ARRAY_SIZE(sections); s++) {
        json_t *v = json_object_get(tpl, sections[s]);
        if (v && !json_is_object(v))
            return barge_cfn_error(err, "Template format error: %s must be an object", sections[s]);
    }
    *out = barge_steal(&tpl);
    return 0;
}

/* --- evaluation ---------------------------------------------------------- */

/* A null of its own, compared by address; its reference count is jansson's
 * "never free" value, as json_null()'s is. */
static json_t novalue = {JSON_NULL, (size_t)-1};

json_t *barge_cfn_novalue(void)
{
    return &novalue;
}

static bool is_novalue(const json_t *v)
{
    return v == &novalue;
}

/* The text of a scalar (strings, numbers, booleans); NULL for others. Caller
 * frees. */
static char *scalar_text(const json_t *v)
{
    if (json_is_string(v))
        return barge_xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return barge_xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return barge_xasprintf("%.15g", json_real_value(v));
    if (json_is_boolean(v))
        return barge_xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

static json_t *eval(const struct barge_cfn_eval *ev, const json_t *node, int depth,
                    struct barge_error **err);

static const char *pseudo(const struct barge_cfn_eval *ev, const char *name)
{
    if (!strcmp(name, "AWS::Region"))
        return ev->region;
    if (!strcmp(name, "AWS::AccountId"))
        return ev->account;
    if (!strcmp(name, "AWS::StackName"))
        return ev->stack_name;
    if (!strcmp(name, "AWS::StackId"))
        return ev->stack_id;
    if (!strcmp(name, "AWS::Partition"))
        return "aws";
    if (!strcmp(name, "AWS::URLSuffix"))
        return "amazonaws.com";
    return NULL;
}

static json_t *ref(const struct barge_cfn_eval *ev, const char *name, struct barge_error **err)
{
    const char *p = pseudo(ev, name);
    if (p)
        return json_string(p);
    if (!strcmp(name, "AWS::NoValue"))
        return barge_cfn_novalue();
    if (!strcmp(name, "AWS::NotificationARNs"))
        return json_array();
    json_t *v = json_object_get(ev->params, name);
    if (v)
        return json_incref(v);
    json_t *r = json_object_get(ev->resources, name);
    if (r && json_object_get(r, "physical"))
        return json_incref(json_object_get(r, "physical"));
    barge_cfn_error(
        err,
        "Template format error: Unresolved resource dependencies [%s] in the Resources block "
        "of the template",
        name);
    return NULL;
}

static json_t *getatt(const struct barge_cfn_eval *ev, const char *res, const char *attr,
                      struct barge_error **err)
{
    json_t *r = json_object_get(ev->resources, res);
    if (!r) {
        barge_cfn_error(
            err, "Template error: instance of Fn::GetAtt references undefined resource %s", res);
        return NULL;
    }
    json_t *v = json_object_get(json_object_get(r, "attrs"), attr);
    if (!v) {
        barge_cfn_error(
            err, "Template error: resource %s does not support attribute type %s in Fn::GetAtt",
            res, attr);
        return NULL;
    }
    return json_incref(v);
}

/* args of fn evaluated, which must be an array of n (0: any) members. */
static json_t *eval_args(const struct barge_cfn_eval *ev, const char *fn, const json_t *args,
                         size_t n, int depth, struct barge_error **err)
{
    json_t *v = eval(ev, args, depth + 1, err);
    if (!v)
        return NULL;
    if (!json_is_array(v) || (n && json_array_size(v) != n)) {
        json_decref(v);
        if (n)
            barge_cfn_error(err, "Template error: %s requires a list of %zu arguments", fn, n);
        else
            barge_cfn_error(err, "Template error: %s requires a list argument", fn);
        return NULL;
    }
    return v;
}

static json_t *sub(const struct barge_cfn_eval *ev, const json_t *args, int depth,
                   struct barge_error **err)
{
    const char *text;
    _cleanup_json_ json_t *vars = NULL;
    if (json_is_string(args)) {
        text = json_string_value(args);
    } else if (json_is_array(args) && json_array_size(args) == 2 &&
               json_is_string(json_array_get(args, 0))) {
        text = json_string_value(json_array_get(args, 0));
        vars = eval(ev, json_array_get(args, 1), depth + 1, err);
        if (!vars)
            return NULL;
        if (!json_is_object(vars)) {
            barge_cfn_error(err, "Template error: the variables of Fn::Sub must be an object");
            return NULL;
        }
    } else {
        barge_cfn_error(
            err, "Template error: Fn::Sub takes a string or a list of a string and an object");
        return NULL;
    }
    struct barge_buf b = {0};
    for (const char *s = text; *s;) {
        const char *open = strstr(s, "${");
        if (!open) {
            barge_buf_adds(&b, s);
            break;
        }
        barge_buf_addn(&b, s, (size_t)(open - s));
        const char *close = strchr(open, '}');
        if (!close) {
            barge_buf_adds(&b, open);
            break;
        }
        _cleanup_free_ char *name = barge_xstrndup(open + 2, (size_t)(close - open - 2));
        s = close + 1;
        if (name[0] == '!') {
            barge_buf_addf(&b, "${%s}", name + 1);
            continue;
        }
        _cleanup_json_ json_t *v = NULL;
        char *dot = strchr(name, '.');
        if (json_object_get(vars, name))
            v = json_incref(json_object_get(vars, name));
        else if (dot && !pseudo(ev, name)) {
            *dot = '\0';
            v = getatt(ev, name, dot + 1, err);
        } else
            v = ref(ev, name, err);
        _cleanup_free_ char *t = v ? scalar_text(v) : NULL;
        if (!t) {
            if (v)
                barge_cfn_error(err, "Template error: variable ${%s} in Fn::Sub is not a string",
                                name);
            barge_buf_release(&b);
            return NULL;
        }
        barge_buf_adds(&b, t);
    }
    json_t *out = json_string(b.data ? b.data : "");
    barge_buf_release(&b);
    return out;
}

static int truth(const struct barge_cfn_eval *ev, const json_t *node, int depth, bool *out,
                 struct barge_error **err)
{
    _cleanup_json_ json_t *v = eval(ev, node, depth + 1, err);
    if (!v)
        return -1;
    if (!json_is_boolean(v))
        return barge_cfn_error(
            err, "Template error: a condition function must evaluate to true or false");
    *out = json_is_true(v);
    return 0;
}

static json_t *condition(const struct barge_cfn_eval *ev, const char *name,
                         struct barge_error **err)
{
    json_t *c = json_object_get(ev->conditions, name);
    if (!json_is_boolean(c)) {
        barge_cfn_error(err, "Template error: unresolved condition dependency %s", name);
        return NULL;
    }
    return json_incref(c);
}

static json_t *function(const struct barge_cfn_eval *ev, const char *fn, const json_t *args,
                        int depth, struct barge_error **err)
{
    if (!strcmp(fn, "Ref")) {
        if (!json_is_string(args)) {
            barge_cfn_error(err, "Template error: Ref takes the name of a parameter or resource");
            return NULL;
        }
        return ref(ev, json_string_value(args), err);
    }
    if (!strcmp(fn, "Condition")) {
        if (!json_is_string(args)) {
            barge_cfn_error(err, "Template error: Condition takes the name of a condition");
            return NULL;
        }
        return condition(ev, json_string_value(args), err);
    }
    if (!strcmp(fn, "Fn::GetAtt")) {
        _cleanup_json_ json_t *a = NULL;
        if (json_is_string(args)) {
            const char *s = json_string_value(args), *dot = strchr(s, '.');
            if (dot)
                a = json_pack("[s#, s]", s, (int)(dot - s), dot + 1);
        } else if (json_is_array(args) && json_array_size(args) == 2) {
            a = eval(ev, args, depth + 1, err);
            if (!a)
                return NULL;
        }
        if (!a || !json_is_string(json_array_get(a, 0)) || !json_is_string(json_array_get(a, 1))) {
            barge_cfn_error(
                err, "Template error: Fn::GetAtt takes a resource name and an attribute name");
            return NULL;
        }
        return getatt(ev, json_string_value(json_array_get(a, 0)),
                      json_string_value(json_array_get(a, 1)), err);
    }
    if (!strcmp(fn, "Fn::Sub"))
        return sub(ev, args, depth, err);
    if (!strcmp(fn, "Fn::Join")) {
        _cleanup_json_ json_t *a = eval_args(ev, fn, args, 2, depth, err);
        if (!a)
            return NULL;
        const char *delim = json_string_value(json_array_get(a, 0));
        json_t *list = json_array_get(a, 1);
        if (!delim || !json_is_array(list)) {
            barge_cfn_error(err,
                            "Template error: Fn::Join takes a delimiter and a list of strings");
            return NULL;
        }
        struct barge_buf b = {0};
        barge_buf_adds(&b, "");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            _cleanup_free_ char *t = scalar_text(e);
            if (!t) {
                barge_buf_release(&b);
                barge_cfn_error(err, "Template error: every value of Fn::Join must be a string");
                return NULL;
            }
            if (i)
                barge_buf_adds(&b, delim);
            barge_buf_adds(&b, t);
        }
        json_t *out = json_string(b.data);
        barge_buf_release(&b);
        return out;
    }
    if (!strcmp(fn, "Fn::Select")) {
        _cleanup_json_ json_t *a = eval_args(ev, fn, args, 2, depth, err);
        if (!a)
            return NULL;
        _cleanup_free_ char *t = scalar_text(json_array_get(a, 0));
        json_t *list = json_array_get(a, 1);
        char *end = NULL;
        long idx = t ? strtol(t, &end, 10) : -1;
        if (!t || *end || idx < 0 || !json_is_array(list) || (size_t)idx >= json_array_size(list)) {
            barge_cfn_error(err, "Template error: Fn::Select cannot select index %s of its list",
                            t ? t : "(not a number)");
            return NULL;
        }
        return json_incref(json_array_get(list, (size_t)idx));
    }
    if (!strcmp(fn, "Fn::Split")) {
        _cleanup_json_ json_t *a = eval_args(ev, fn, args, 2, depth, err);
        if (!a)
            return NULL;
        const char *delim = json_string_value(json_array_get(a, 0));
        const char *s = json_string_value(json_array_get(a, 1));
        if (!delim || !*delim || !s) {
            barge_cfn_error(err, "Template error: Fn::Split takes a delimiter and a string");
            return NULL;
        }
        json_t *out = json_array();
        for (;;) {
            const char *at = strstr(s, delim);
            if (!at) {
                json_array_append_new(out, json_string(s));
                break;
            }
            json_array_append_new(out, json_stringn(s, (size_t)(at - s)));
            s = at + strlen(delim);
        }
        return out;
    }
    if (!strcmp(fn, "Fn::If")) {
        if (!json_is_array(args) || json_array_size(args) != 3 ||
            !json_is_string(json_array_get(args, 0))) {
            barge_cfn_error(err, "Template error: Fn::If takes a condition name and two values");
            return NULL;
        }
        _cleanup_json_ json_t *c = condition(ev, json_string_value(json_array_get(args, 0)), err);
        if (!c)
            return NULL;
        return eval(ev, json_array_get(args, json_is_true(c) ? 1 : 2), depth + 1, err);
    }
    if (!strcmp(fn, "Fn::Equals")) {
        _cleanup_json_ json_t *a = eval_args(ev, fn, args, 2, depth, err);
        if (!a)
            return NULL;
        _cleanup_free_ char *x = scalar_text(json_array_get(a, 0));
        _cleanup_free_ char *y = scalar_text(json_array_get(a, 1));
        if (x && y)
            return json_boolean(!strcmp(x, y));
        return json_boolean(json_equal(json_array_get(a, 0), json_array_get(a, 1)));
    }
    if (!strcmp(fn, "Fn::Not") || !strcmp(fn, "Fn::And") || !strcmp(fn, "Fn::Or")) {
        bool not = !strcmp(fn, "Fn::Not"), and = !strcmp(fn, "Fn::And");
        size_t n = json_array_size(args);
        if (!json_is_array(args) || (not &&n != 1) || (!not &&(n < 2 || n > 10))) {
            barge_cfn_error(err, "Template error: %s takes %s", fn,
                            not ? "a list of one condition" : "a list of 2 to 10 conditions");
            return NULL;
        }
        bool acc = and;
        for (size_t i = 0; i < n; i++) {
            bool b = false;
            if (truth(ev, json_array_get(args, i), depth, &b, err) < 0)
                return NULL;
            if (not )
                acc = !b;
            else
                acc = and? acc && b : acc || b;
        }
        return json_boolean(acc);
    }
    if (!strcmp(fn, "Fn::FindInMap")) {
        _cleanup_json_ json_t *a = eval_args(ev, fn, args, 3, depth, err);
        if (!a)
            return NULL;
        const char *m = json_string_value(json_array_get(a, 0));
        _cleanup_free_ char *k1 = scalar_text(json_array_get(a, 1));
        _cleanup_free_ char *k2 = scalar_text(json_array_get(a, 2));
        json_t *v = m && k1 && k2
                        ? json_object_get(json_object_get(json_object_get(ev->mappings, m), k1), k2)
                        : NULL;
        if (!v) {
            barge_cfn_error(err, "Template error: Fn::FindInMap finds no value for [%s, %s, %s]",
                            m ? m : "?", k1 ? k1 : "?", k2 ? k2 : "?");
            return NULL;
        }
        return json_incref(v);
    }
    if (!strcmp(fn, "Fn::GetAZs")) {
        _cleanup_json_ json_t *a = eval(ev, args, depth + 1, err);
        if (!a)
            return NULL;
        const char *region = json_string_value(a);
        if (!region || !*region)
            region = ev->region;
        return json_pack("[s+, s+, s+]", region, "a", region, "b", region, "c");
    }
    if (!strcmp(fn, "Fn::Base64")) {
        _cleanup_json_ json_t *a = eval(ev, args, depth + 1, err);
        if (!a)
            return NULL;
        if (!json_is_string(a)) {
            barge_cfn_error(err, "Template error: Fn::Base64 takes a string");
            return NULL;
        }
        char *b64 = barge_base64_encode(json_string_value(a), json_string_length(a));
        json_t *out = json_string(b64);
        free(b64);
        return out;
    }
    if (!strcmp(fn, "Fn::ImportValue")) {
        _cleanup_json_ json_t *a = eval(ev, args, depth + 1, err);
        if (!a)
            return NULL;
        json_t *v = json_is_string(a) ? json_object_get(ev->exports, json_string_value(a)) : NULL;
        if (!v) {
            barge_cfn_error(err, "No export named %s found.",
                            json_is_string(a) ? json_string_value(a) : "?");
            return NULL;
        }
        if (ev->imports)
            json_object_set_new(ev->imports, json_string_value(a), json_true());
        return json_incref(v);
    }
    barge_cfn_error(err, "Template format error: Unrecognized function '%s'", fn);
    return NULL;
}

static bool is_function(const char *key)
{
    return !strcmp(key, "Ref") || !strcmp(key, "Condition") || barge_str_has_prefix(key, "Fn::");
}

static json_t *eval(const struct barge_cfn_eval *ev, const json_t *node, int depth,
                    struct barge_error **err)
{
    if (depth > MAX_DEPTH) {
        barge_cfn_error(err, "Template error: the template nests too deeply");
        return NULL;
    }
    if (json_is_object(node)) {
        const char *k;
        json_t *v;
        if (json_object_size(node) == 1) {
            json_object_foreach((json_t *)node, k, v)
            {
                /* "Condition" is a function only inside conditions; elsewhere
                 * (a resource's attribute) it is a plain key. */
                if (is_function(k) && (strcmp(k, "Condition") != 0 || json_is_string(v)))
                    return function(ev, k, v, depth, err);
            }
        }
        json_t *out = json_object();
        json_object_foreach((json_t *)node, k, v)
        {
            json_t *e = eval(ev, v, depth + 1, err);
            if (!e) {
                json_decref(out);
                return NULL;
            }
            if (!is_novalue(e))
                json_object_set_new(out, k, e);
        }
        return out;
    }
    if (json_is_array(node)) {
        json_t *out = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            json_t *e = eval(ev, v, depth + 1, err);
            if (!e) {
                json_decref(out);
                return NULL;
            }
            if (!is_novalue(e))
                json_array_append_new(out, e);
        }
        return out;
    }
    return json_incref((json_t *)node);
}

json_t *barge_cfn_eval(const struct barge_cfn_eval *ev, const json_t *node,
                       struct barge_error **err)
{
    if (!node) {
        barge_cfn_error(err, "Template format error: a value is missing");
        return NULL;
    }
    return eval(ev, node, 0, err);
}

int barge_cfn_conditions(const struct barge_cfn_eval *ev, const json_t *tpl, json_t **out,
                         struct barge_error **err)
{
    json_t *decl = json_object_get(tpl, "Conditions");
    json_t *done = json_object();
    struct barge_cfn_eval e = *ev;
    e.conditions = done;
    /* Conditions may name each other in any order: evaluate in rounds until
     * none is left or a round makes no progress (a cycle or a missing one). */
    for (size_t round = 0; round <= json_object_size(decl); round++) {
        bool progress = false, left = false;
        const char *k;
        json_t *v;
        json_object_foreach(decl, k, v)
        {
            if (json_object_get(done, k))
                continue;
            struct barge_error *e1 = NULL;
            bool b = false;
            if (truth(&e, v, 0, &b, &e1) < 0) {
                if (strstr(e1->message, "unresolved condition dependency") &&
                    round < json_object_size(decl)) {
                    barge_error_free(e1);
                    left = true;
                    continue;
                }
                json_decref(done);
                *err = e1;
                return barge_error_wrap(err, "condition %s", k);
            }
            json_object_set_new(done, k, json_boolean(b));
            progress = true;
        }
        if (!left)
            break;
        if (!progress) {
            json_decref(done);
            return barge_cfn_error(err,
                                   "Template error: the Conditions refer to each other in a cycle");
        }
    }
    *out = done;
    return 0;
}

/* --- dependencies -------------------------------------------------------- */

/* Adds to deps the names node refers to with Ref, Fn::GetAtt and Fn::Sub. */
static void refs(const json_t *node, json_t *deps, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) refs(v, deps, depth + 1);
        return;
    }
    if (!json_is_object(node))
        return;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)node, k, v)
    {
        if (!strcmp(k, "Ref") && json_is_string(v)) {
            json_object_set_new(deps, json_string_value(v), json_true());
        } else if (!strcmp(k, "Fn::GetAtt")) {
            const char *s =
                json_is_array(v) ? json_string_value(json_array_get(v, 0)) : json_string_value(v);
            if (s) {
                const char *dot = json_is_string(v) ? strchr(s, '.') : NULL;
                _cleanup_free_ char *name =
                    dot ? barge_xstrndup(s, (size_t)(dot - s)) : barge_xstrdup(s);
                json_object_set_new(deps, name, json_true());
            }
        } else if (!strcmp(k, "Fn::Sub")) {
            const char *s =
                json_is_array(v) ? json_string_value(json_array_get(v, 0)) : json_string_value(v);
            const json_t *vars = json_is_array(v) ? json_array_get(v, 1) : NULL;
            for (const char *p = s ? strstr(s, "${") : NULL; p; p = strstr(p + 2, "${")) {
                size_t n = strcspn(p + 2, ".}");
                if (p[2] == '!' || !p[2 + n])
                    continue;
                _cleanup_free_ char *name = barge_xstrndup(p + 2, n);
                if (!json_object_get(vars, name))
                    json_object_set_new(deps, name, json_true());
            }
            if (vars)
                refs(vars, deps, depth + 1);
            continue;
        }
        refs(v, deps, depth + 1);
    }
}

int barge_cfn_order(const json_t *tpl, const json_t *conds, json_t **out, struct barge_error **err)
{
    json_t *res = json_object_get(tpl, "Resources");
    json_t *params = json_object_get(tpl, "Parameters");
    _cleanup_json_ json_t *deps = json_object(); /* logical -> {resource deps} */
    const char *k;
    json_t *r;
    json_object_foreach(res, k, r)
    {
        _cleanup_json_ json_t *names = json_object();
        refs(json_object_get(r, "Properties"), names, 0);
        json_t *dep = json_object_get(r, "DependsOn");
        if (json_is_string(dep))
            json_object_set_new(names, json_string_value(dep), json_true());
        size_t i;
        json_t *d;
        json_array_foreach(dep, i, d) if (json_is_string(d))
            json_object_set_new(names, json_string_value(d), json_true());
        json_t *mine = json_object();
        const char *n;
        json_t *x;
        json_object_foreach(names, n, x)
        {
            if (json_object_get(res, n)) {
                if (!strcmp(n, k)) {
                    json_decref(mine);
                    return barge_cfn_error(err, "Circular dependency between resources: [%s]", k);
                }
                json_object_set_new(mine, n, json_true());
            } else if (!json_object_get(params, n) && !barge_str_has_prefix(n, "AWS::")) {
                json_decref(mine);
                return barge_cfn_error(
                    err,
                    "Template format error: Unresolved resource dependencies [%s] in "
                    "the Resources block of the template",
                    n);
            }
        }
        json_object_set_new(deps, k, mine);
    }
    json_t *order = json_array();
    _cleanup_json_ json_t *placed = json_object();
    while (json_object_size(placed) < json_object_size(res)) {
        bool progress = false;
        json_object_foreach(res, k, r)
        {
            if (json_object_get(placed, k))
                continue;
            bool ready = true;
            const char *n;
            json_t *x;
            json_object_foreach(json_object_get(deps, k), n, x) if (!json_object_get(placed, n))
                ready = false;
            if (!ready)
                continue;
            json_object_set_new(placed, k, json_true());
            progress = true;
            const char *cond = barge_json_str(r, "Condition", NULL);
            if (cond && !json_object_get(conds, cond)) {
                json_decref(order);
                return barge_cfn_error(
                    err,
                    "Template format error: Unresolved condition dependency %s in "
                    "resource %s",
                    cond, k);
            }
            if (!cond || json_is_true(json_object_get(conds, cond)))
                json_array_append_new(order, json_string(k));
        }
        if (!progress) {
            struct barge_buf b = {0};
            json_object_foreach(res, k, r) if (!json_object_get(placed, k))
                barge_buf_addf(&b, "%s%s", b.len ? ", " : "", k);
            json_decref(order);
            barge_cfn_error(err, "Circular dependency between resources: [%s]", b.data);
            barge_buf_release(&b);
            return -1;
        }
    }
    *out = order;
    return 0;
}

/* --- parameters ---------------------------------------------------------- */

static bool list_type(const char *type)
{
    return barge_str_has_prefix(type, "List<") || !strcmp(type, "CommaDelimitedList") ||
           barge_str_has_prefix(type, "AWS::SSM::Parameter::Value<List<") ||
           !strcmp(type, "AWS::SSM::Parameter::Value<CommaDelimitedList>");
}

static json_t *split_commas(const char *s)
{
    json_t *out = json_array();
    if (!*s)
        return out;
    for (;;) {
        const char *c = strchr(s, ',');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        while (n && *s == ' ') {
            s++;
            n--;
        }
        json_array_append_new(out, json_stringn(s, n));
        if (!c)
            break;
        s = c + 1;
    }
    return out;
}

static int check_value(const char *name, const json_t *decl, const char *value,
                       struct barge_error **err)
{
    const char *type = barge_json_str(decl, "Type", "String");
    if (!strcmp(type, "Number")) {
        char *end;
        strtod(value, &end);
        if (!*value || *end)
            return barge_cfn_error(err, "Parameter '%s' must be a number", name);
    }
    json_t *allowed = json_object_get(decl, "AllowedValues");
    if (json_is_array(allowed)) {
        bool ok = false;
        size_t i;
        json_t *a;
        json_array_foreach(allowed, i, a)
        {
            _cleanup_free_ char *t = scalar_text(a);
            if (t && !strcmp(t, value))
                ok = true;
        }
        if (!ok)
            return barge_cfn_error(err, "Parameter '%s' must be one of AllowedValues", name);
    }
    json_int_t minl = barge_json_int(decl, "MinLength", -1),
               maxl = barge_json_int(decl, "MaxLength", -1);
    if ((minl >= 0 && (json_int_t)strlen(value) < minl) ||
        (maxl >= 0 && (json_int_t)strlen(value) > maxl))
        return barge_cfn_error(
            err, "Parameter '%s' must contain %s %lld characters", name,
            minl >= 0 && (json_int_t)strlen(value) < minl ? "at least" : "at most",
            (long long)(minl >= 0 && (json_int_t)strlen(value) < minl ? minl : maxl));
    return 0;
}

int barge_cfn_parameters(const json_t *tpl, const json_t *given, const json_t *previous,
                         json_t **values, json_t **listed, struct barge_error **err)
{
    json_t *decls = json_object_get(tpl, "Parameters");
    size_t i;
    json_t *g;
    json_array_foreach(given, i, g)
    {
        const char *key = barge_json_str(g, "ParameterKey", "");
        if (!json_object_get(decls, key))
            return barge_cfn_error(err, "Parameters: [%s] do not exist in the template", key);
    }
    _cleanup_json_ json_t *vals = json_object(), *list = json_array();
    struct barge_buf missing = {0};
    const char *name;
    json_t *decl;
    json_object_foreach(decls, name, decl)
    {
        const json_t *found = NULL;
        json_array_foreach(
            given, i, g) if (barge_streq(barge_json_str(g, "ParameterKey", ""), name)) found = g;
        _cleanup_free_ char *value = NULL;
        if (found && json_is_true(json_object_get(found, "UsePreviousValue"))) {
            const char *prev = barge_json_str(previous, name, NULL);
            if (!prev) {
                barge_buf_release(&missing);
                return barge_cfn_error(err, "Parameter '%s' has no previous value to use", name);
            }
            value = barge_xstrdup(prev);
        } else if (found && json_object_get(found, "ParameterValue")) {
            value = barge_xstrdup(barge_json_str(found, "ParameterValue", ""));
        } else if (json_object_get(decl, "Default")) {
            value = scalar_text(json_object_get(decl, "Default"));
            if (!value)
                value = barge_xstrdup("");
        } else {
            barge_buf_addf(&missing, "%s%s", missing.len ? ", " : "", name);
            continue;
        }
        if (check_value(name, decl, value, err) < 0) {
            barge_buf_release(&missing);
            return -1;
        }
        json_object_set_new(vals, name, json_string(value));
        bool noecho = json_is_true(json_object_get(decl, "NoEcho")) ||
                      barge_streq(barge_json_str(decl, "NoEcho", ""), "true");
        json_array_append_new(list, json_pack("{s:s, s:s}", "ParameterKey", name, "ParameterValue",
                                              noecho ? "****" : value));
    }
    if (missing.len) {
        barge_cfn_error(err, "Parameters: [%s] must have values", missing.data);
        barge_buf_release(&missing);
        return -1;
    }
    *values = barge_steal(&vals);
    *listed = barge_steal(&list);
    return 0;
}

/* The value a parameter stands for in templates: Lists split. */
json_t *barge_cfn_param_value(const char *type, const char *value)
{
    return list_type(type) ? split_commas(value) : json_string(value);
}
