/* YAML <-> JSON over libyaml's document loader and event emitter. The loader
 * resolves anchors and aliases into shared nodes; this file resolves scalar
 * types (libyaml leaves every plain scalar a string) and merge keys. */
#include "cli/yaml.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <string.h>
#include <yaml.h>

#include "common/json.h"

#define MAX_DEPTH 512

static bool match(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static bool is_null(const char *s)
{
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static int as_bool(const char *s)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return 1;
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return 0;
    return -1;
}

/* The JSON value a plain scalar stands for. */
static json_t *resolve_plain(const char *s)
{
    if (is_null(s))
        return json_null();
    int b = as_bool(s);
    if (b >= 0)
        return json_boolean(b);
    if (match("^[-+]?[0-9]+$", s) || match("^0o[0-7]+$", s) || match("^0x[0-9a-fA-F]+$", s)) {
        errno = 0;
        const char *digits = s;
        int base = 10;
        if (strncmp(s, "0o", 2) == 0) {
            digits = s + 2;
            base = 8;
        } else if (strncmp(s, "0x", 2) == 0) {
            digits = s + 2;
            base = 16;
        }
        long long v = strtoll(digits, NULL, base);
        if (errno == 0)
            return json_integer(v);
        return json_real(strtod(s, NULL));
    }
    if (match("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$", s))
        return json_real(strtod(s, NULL));
    /* jansson cannot hold infinities or NaN; such values stay strings. */
    return json_string(s);
}

static bool resolves_to_string(const char *s)
{
    json_t *v = resolve_plain(s);
    bool str = json_is_string(v);
    json_decref(v);
    return str && !match("^[-+]?\\.(inf|Inf|INF|nan|NaN|NAN)$", s);
}

static json_t *convert(yaml_document_t *doc, yaml_node_t *node, int depth, const char *name,
                       struct barge_error **err);

static int merge_into(json_t *obj, json_t *src, const char *name, yaml_node_t *at,
                      struct barge_error **err)
{
    if (json_is_object(src)) {
        const char *k;
        json_t *v;
        json_object_foreach(src, k, v)
        {
            if (!json_object_get(obj, k))
                json_object_set(obj, k, v);
        }
        return 0;
    }
    if (json_is_array(src)) {
        size_t i;
        json_t *e;
        json_array_foreach(src, i, e)
        {
            if (merge_into(obj, e, name, at, err) < 0)
                return -1;
        }
        return 0;
    }
    return barge_error_set(err, BARGE_ERR_SERIALIZATION,
                           "%s:%zu: the value of a merge key must be a mapping", name,
                           at->start_mark.line + 1);
}

static json_t *convert(yaml_document_t *doc, yaml_node_t *node, int depth, const char *name,
                       struct barge_error **err)
{
    if (!node)
        return json_null();
    if (depth > MAX_DEPTH) {
        barge_error_set(err, BARGE_ERR_SERIALIZATION, "%s: the document nests too deeply", name);
        return NULL;
    }
    switch (node->type) {
    case YAML_SCALAR_NODE: {
        const char *s = (const char *)node->data.scalar.value;
        const char *tag = (const char *)node->tag;
        if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            return json_stringn(s, node->data.scalar.length);
        if (tag && strcmp(tag, YAML_STR_TAG) != 0) {
            /* Explicitly typed: resolve, then insist on the type. */
            json_t *v = resolve_plain(s);
            if (strcmp(tag, YAML_INT_TAG) == 0 && json_is_integer(v))
                return v;
            if (strcmp(tag, YAML_FLOAT_TAG) == 0 && json_is_number(v)) {
                double d = json_number_value(v);
                json_decref(v);
                return json_real(d);
            }
            if ((strcmp(tag, YAML_BOOL_TAG) == 0 && json_is_boolean(v)) ||
                (strcmp(tag, YAML_NULL_TAG) == 0 && json_is_null(v)))
                return v;
            json_decref(v);
            return json_stringn(s, node->data.scalar.length);
        }
        return resolve_plain(s);
    }
    case YAML_SEQUENCE_NODE: {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            json_t *v = convert(doc, yaml_document_get_node(doc, *it), depth + 1, name, err);
            if (!v) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        return arr;
    }
    case YAML_MAPPING_NODE: {
        json_t *obj = json_object();
        json_t *merges = json_array();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = yaml_document_get_node(doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(doc, p->value);
            json_t *v = convert(doc, vn, depth + 1, name, err);
            if (!v) {
                json_decref(obj);
                json_decref(merges);
                return NULL;
            }
            if (kn && kn->type == YAML_SCALAR_NODE &&
                kn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                strcmp((const char *)kn->data.scalar.value, "<<") == 0) {
                json_array_append_new(merges, v);
                continue;
            }
            _cleanup_free_ char *key = NULL;
            if (kn && kn->type == YAML_SCALAR_NODE) {
                key = barge_xstrdup((const char *)kn->data.scalar.value);
            } else {
                json_decref(v);
                json_decref(obj);
                json_decref(merges);
                barge_error_set(err, BARGE_ERR_SERIALIZATION,
                                "%s:%zu: mapping keys must be scalars", name,
                                kn ? kn->start_mark.line + 1 : 0);
                return NULL;
            }
            json_object_set_new(obj, key, v);
        }
        /* Explicit keys win over merged ones, whatever their order. */
        size_t i;
        json_t *m;
        json_array_foreach(merges, i, m)
        {
            if (merge_into(obj, m, name, node, err) < 0) {
                json_decref(obj);
                json_decref(merges);
                return NULL;
            }
        }
        json_decref(merges);
        return obj;
    }
    default:
        return json_null();
    }
}

int barge_cli_yaml_parse(const char *text, size_t len, const char *name, json_t **out,
                         struct barge_error **err)
{
    *out = NULL;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        barge_error_set(err, BARGE_ERR_SERIALIZATION, "%s:%zu:%zu: %s%s%s", name,
                        parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
                        parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    json_t *v = root ? convert(&doc, root, 0, name, err) : json_null();
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!v)
        return -1;
    *out = v;
    return 0;
}

/* ---- emitter ---- */

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    barge_buf_addn(data, buffer, size);
    return 1;
}

static void emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    /* Emitting into memory fails only on invalid event sequences: a bug. */
    if (!yaml_emitter_emit(em, ev))
        abort();
}

static void emit_scalar(yaml_emitter_t *em, const char *s, bool plain_ok)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (!plain_ok)
        style = strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, style);
    emit(em, &ev);
}

static void emit_value(yaml_emitter_t *em, const json_t *v)
{
    yaml_event_t ev;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        bool empty = json_object_size(v) == 0;
        yaml_mapping_start_event_initialize(
            &ev, NULL, NULL, 1, empty ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
        emit(em, &ev);
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            emit_scalar(em, k, *k && resolves_to_string(k) && !strchr(k, '\n'));
            emit_value(em, e);
        }
        yaml_mapping_end_event_initialize(&ev);
        emit(em, &ev);
        break;
    }
    case JSON_ARRAY: {
        bool empty = json_array_size(v) == 0;
        yaml_sequence_start_event_initialize(
            &ev, NULL, NULL, 1, empty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
        emit(em, &ev);
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            emit_value(em, e);
        }
        yaml_sequence_end_event_initialize(&ev);
        emit(em, &ev);
        break;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        emit_scalar(em, s, *s && resolves_to_string(s) && !strchr(s, '\n'));
        break;
    }
    case JSON_INTEGER: {
        char buf[32];
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        emit_scalar(em, buf, true);
        break;
    }
    case JSON_REAL: {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof(buf), "%.*g", prec, json_real_value(v));
            if (strtod(buf, NULL) == json_real_value(v))
                break;
        }
        if (!strpbrk(buf, ".eEn"))
            strcat(buf, ".0");
        emit_scalar(em, buf, true);
        break;
    }
    case JSON_TRUE:
        emit_scalar(em, "true", true);
        break;
    case JSON_FALSE:
        emit_scalar(em, "false", true);
        break;
    case JSON_NULL:
        emit_scalar(em, "null", true);
        break;
    }
}

char *barge_cli_yaml_emit(const json_t *doc)
{
    yaml_emitter_t em;
    struct barge_buf sink = {0};
    yaml_event_t ev;
    yaml_emitter_initialize(&em);
    yaml_emitter_set_output(&em, write_handler, &sink);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    emit(&em, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    emit(&em, &ev);
    emit_value(&em, doc);
    yaml_document_end_event_initialize(&ev, 1);
    emit(&em, &ev);
    yaml_stream_end_event_initialize(&ev);
    emit(&em, &ev);
    yaml_emitter_delete(&em);
    return barge_buf_steal(&sink, NULL);
}
