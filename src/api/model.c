/* The API models: loads a botocore service model (embedded by models.c) once
 * into a compiled form and checks request input against it the way AWS's own
 * front end (Coral) does before an operation runs.
 *
 * Loading turns every shape into a struct shape whose references to other
 * shapes are plain pointers, whose members sit in a small open-addressing hash
 * table, whose enum values are sorted for bsearch and whose enum and limit
 * messages are prepared. Validation then walks the input and the shapes
 * together without hashing shape names or allocating, except to format a
 * message once something is wrong; the path of the current value is kept as a
 * stack of frames and only rendered into text for a violation.
 *
 * Two kinds of failure, as in AWS: a value of the wrong JSON type stops at once
 * with a SerializationException-style message (BARGE_ERR_SERIALIZATION); broken
 * constraints (required, enum, length, range) are all counted and the first
 * few reported in one "N validation errors detected: ..." message
 * (BARGE_ERR_INVALID). Values of shapes botocore marks sensitive are never
 * echoed. */
#include "api/model.h"

#include <float.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/models.h"
#include "common/json.h"
#include "common/log.h"

/* Deeper input than this (possible only through recursive shapes such as SSM's
 * aggregators) is refused rather than risking the stack. */
#define MAX_DEPTH 100
/* AWS lists every violation; more than a handful only makes the message
 * unreadable, so the rest are counted but not spelled out. */
#define MAX_REPORTED 10
/* Bytes of an offending value echoed in a message, so that a megabyte string
 * does not come back in the error. */
#define RENDER_LIMIT 256

enum shape_type {
    T_ANY, /* a type this code does not know: accepted as is */
    T_STRUCTURE,
    T_LIST,
    T_MAP,
    T_STRING,
    T_INTEGER,
    T_LONG,
    T_FLOAT,
    T_DOUBLE,
    T_BOOLEAN,
    T_TIMESTAMP,
    T_BLOB,
};

static const struct {
    const char *model_name;
    const char *java_name; /* as Coral names the target of a failed conversion */
} type_names[] = {
    [T_ANY] = {"", "Value"},
    [T_STRUCTURE] = {"structure", "Structure"},
    [T_LIST] = {"list", "List"},
    [T_MAP] = {"map", "Map"},
    [T_STRING] = {"string", "String"},
    [T_INTEGER] = {"integer", "Integer"},
    [T_LONG] = {"long", "Long"},
    [T_FLOAT] = {"float", "Float"},
    [T_DOUBLE] = {"double", "Double"},
    [T_BOOLEAN] = {"boolean", "Boolean"},
    [T_TIMESTAMP] = {"timestamp", "Timestamp"},
    [T_BLOB] = {"blob", "Blob"},
};

struct shape;

struct member {
    char *name;      /* on the wire */
    size_t name_len; /* names are plain ASCII, but compare with lengths anyway */
    char *path_name; /* in messages: Java-bean style, "MaxResults" -> "maxResults" */
    uint32_t hash;
    const struct shape *shape; /* NULL only for a required name without a member */
};

struct enum_value {
    const char *s;
    size_t len;
};

struct shape {
    enum shape_type type;
    bool sensitive;
    bool has_min, has_max;
    json_int_t imin, imax; /* lengths, or values of integer/long shapes */
    double dmin, dmax;     /* values of float/double shapes */

    /* structure */
    struct member *members;
    size_t n_members;
    uint16_t *table; /* member index + 1, 0 = empty; size table_mask + 1 */
    uint32_t table_mask;
    struct member **required;
    size_t n_required;

    /* list (member), map (key, value) */
    const struct shape *member, *key, *value;

    /* string enum */
    struct enum_value *enums; /* sorted by (bytes, length) */
    size_t n_enums;
    char *enum_text; /* "[bridge, host, awsvpc, none]", in model order */
};

struct operation {
    char *name;
    const struct shape *input; /* NULL for an operation without input */
};

struct barge_model {
    char *service;
    char *target_prefix;
    char *signing_name;
    struct shape *shapes;
    size_t n_shapes;
    struct operation *ops; /* sorted by name */
    size_t n_ops;
    json_t *raw; /* the model as loaded, for the query protocol's codec */
};

/* Whole numbers without a fraction or exponent, others in the shortest text
 * that reads back as the same double. */
static void buf_add_double(struct barge_buf *b, double d)
{
    char tmp[40];
    if (d == (double)(long long)d && d > -1e15 && d < 1e15) {
        barge_buf_addf(b, "%lld", (long long)d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    barge_buf_adds(b, tmp);
}

/* ---- loading ---- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: short keys, good enough spread */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Coral reports members by their Java property names: the first letter lower
 * cased unless the name starts with two capitals (java.beans.Introspector). */
static char *decapitalize(const char *name)
{
    char *p = barge_xstrdup(name);
    if (p[0] >= 'A' && p[0] <= 'Z' && !(p[1] >= 'A' && p[1] <= 'Z'))
        p[0] = (char)(p[0] - 'A' + 'a');
    return p;
}

static int enum_cmp(const void *a, const void *b)
{
    const struct enum_value *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int op_cmp(const void *a, const void *b)
{
    const struct operation *x = a, *y = b;
    return strcmp(x->name, y->name);
}

struct loader {
    struct barge_model *m;
    json_t *index; /* shape name -> position in m->shapes */
    const char *service;
    struct barge_error **err;
};

static const struct shape *resolve(struct loader *l, const json_t *ref, const char *where)
{
    const char *name = json_string_value(json_object_get(ref, "shape"));
    json_t *pos = name ? json_object_get(l->index, name) : NULL;
    if (!pos) {
        barge_error_set(l->err, BARGE_ERR_INTERNAL, "model '%s': %s refers to unknown shape '%s'",
                        l->service, where, name ? name : "(none)");
        return NULL;
    }
    return &l->m->shapes[json_integer_value(pos)];
}

static void read_limits(struct shape *s, const json_t *def)
{
    json_t *min = json_object_get(def, "min"), *max = json_object_get(def, "max");
    if (json_is_number(min)) {
        s->has_min = true;
        s->dmin = json_number_value(min);
        s->imin = json_is_integer(min) ? json_integer_value(min) : (json_int_t)s->dmin;
    }
    if (json_is_number(max)) {
        s->has_max = true;
        s->dmax = json_number_value(max);
        s->imax = json_is_integer(max) ? json_integer_value(max) : (json_int_t)s->dmax;
    }
}

static int load_enum(struct loader *l, struct shape *s, const json_t *list, const char *name)
{
    size_t n = json_array_size(list);
    struct barge_buf text = {0};
    s->enums = barge_xcalloc(n, sizeof(*s->enums));
    barge_buf_adds(&text, "[");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_string(v)) {
            free(text.data);
            return barge_error_set(l->err, BARGE_ERR_INTERNAL,
                                   "model '%s': enum of '%s' holds a non-string", l->service, name);
        }
        size_t len = json_string_length(v);
        s->enums[i].s = barge_xstrndup(json_string_value(v), len);
        s->enums[i].len = len;
        if (i)
            barge_buf_adds(&text, ", ");
        barge_buf_addn(&text, s->enums[i].s, len);
    }
    barge_buf_adds(&text, "]");
    s->n_enums = n;
    s->enum_text = text.data;
    qsort(s->enums, n, sizeof(*s->enums), enum_cmp);
    return 0;
}

static int load_structure(struct loader *l, struct shape *s, const json_t *def, const char *name)
{
    json_t *members = json_object_get(def, "members");
    size_t n = json_object_size(members);
    if (n > UINT16_MAX - 1)
        return barge_error_set(l->err, BARGE_ERR_INTERNAL, "model '%s': '%s' has too many members",
                               l->service, name);
    s->members = barge_xcalloc(n, sizeof(*s->members));
    s->n_members = n;
    size_t size = 4;
    while (size < 2 * n)
        size *= 2;
    s->table = barge_xcalloc(size, sizeof(*s->table));
    s->table_mask = (uint32_t)(size - 1);

    const char *mname;
    json_t *mdef;
    size_t i = 0;
    json_object_foreach(members, mname, mdef)
    {
        struct member *mb = &s->members[i];
        mb->name = barge_xstrdup(mname);
        mb->name_len = strlen(mname);
        mb->path_name = decapitalize(mname);
        mb->hash = hash_bytes(mb->name, mb->name_len);
        mb->shape = resolve(l, mdef, mname);
        if (!mb->shape)
            return -1;
        uint32_t slot = mb->hash & s->table_mask;
        while (s->table[slot])
            slot = (slot + 1) & s->table_mask;
        s->table[slot] = (uint16_t)(i + 1);
        i++;
    }

    json_t *required = json_object_get(def, "required");
    s->n_required = json_array_size(required);
    s->required = barge_xcalloc(s->n_required, sizeof(*s->required));
    for (size_t r = 0; r < s->n_required; r++) {
        const char *rname = json_string_value(json_array_get(required, r));
        if (!rname)
            return barge_error_set(l->err, BARGE_ERR_INTERNAL,
                                   "model '%s': '%s' has a non-string required entry", l->service,
                                   name);
        struct member *found = NULL;
        for (size_t k = 0; k < n && !found; k++)
            if (strcmp(s->members[k].name, rname) == 0)
                found = &s->members[k];
        if (!found)
            return barge_error_set(l->err, BARGE_ERR_INTERNAL,
                                   "model '%s': '%s' requires unknown member '%s'", l->service,
                                   name, rname);
        s->required[r] = found;
    }
    return 0;
}

static int load_shape(struct loader *l, struct shape *s, const char *name, const json_t *def)
{
    const char *type = json_string_value(json_object_get(def, "type"));
    s->type = T_ANY;
    for (size_t t = 1; type && t < BARGE_ARRAY_SIZE(type_names); t++)
        if (strcmp(type, type_names[t].model_name) == 0)
            s->type = (enum shape_type)t;
    if (s->type == T_ANY)
        barge_debug("model '%s': shape '%s' has unknown type '%s'; not validated", l->service, name,
                    type ? type : "(none)");
    s->sensitive = json_is_true(json_object_get(def, "sensitive"));
    read_limits(s, def);

    switch (s->type) {
    case T_STRUCTURE:
        return load_structure(l, s, def, name);
    case T_LIST:
        s->member = resolve(l, json_object_get(def, "member"), name);
        return s->member ? 0 : -1;
    case T_MAP:
        s->key = resolve(l, json_object_get(def, "key"), name);
        s->value = resolve(l, json_object_get(def, "value"), name);
        return s->key && s->value ? 0 : -1;
    case T_STRING:
        if (json_is_array(json_object_get(def, "enum")))
            return load_enum(l, s, json_object_get(def, "enum"), name);
        return 0;
    default:
        return 0;
    }
}

static struct barge_model *model_load(const char *service, const char *text, size_t len,
                                      struct barge_error **err)
{
    json_error_t jerr;
    _cleanup_json_ json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) {
        barge_error_set(err, BARGE_ERR_INTERNAL, "model '%s': line %d: %s", service, jerr.line,
                        jerr.text);
        return NULL;
    }
    json_t *md = json_object_get(root, "metadata");
    json_t *shapes = json_object_get(root, "shapes");
    json_t *ops = json_object_get(root, "operations");
    const char *prefix = json_string_value(json_object_get(md, "targetPrefix"));
    /* Query-only services (elbv2, STS, IAM, EC2) have no JSON target prefix. */
    const char *protocol = json_string_value(json_object_get(md, "protocol"));
    if (!prefix && (barge_streq(protocol, "query") || barge_streq(protocol, "ec2")))
        prefix = "";
    const char *signing = json_string_value(json_object_get(md, "signingName"));
    if (!signing)
        signing = json_string_value(json_object_get(md, "endpointPrefix"));
    if (!json_is_object(shapes) || !json_is_object(ops) || !prefix || !signing) {
        barge_error_set(err, BARGE_ERR_INTERNAL,
                        "model '%s': metadata, shapes or operations missing", service);
        return NULL;
    }

    /* Built in full before it is published; a failure leaks the partial
     * model, which only happens with a broken embedded file (a build bug). */
    struct barge_model *m = barge_xcalloc(1, sizeof(*m));
    m->service = barge_xstrdup(service);
    m->target_prefix = barge_xstrdup(prefix);
    m->signing_name = barge_xstrdup(signing);
    m->n_shapes = json_object_size(shapes);
    m->shapes = barge_xcalloc(m->n_shapes, sizeof(*m->shapes));

    _cleanup_json_ json_t *index = json_object();
    struct loader l = {.m = m, .index = index, .service = service, .err = err};
    const char *name;
    json_t *def;
    json_int_t i = 0;
    json_object_foreach(shapes, name, def)
    {
        json_object_set_new(index, name, json_integer(i++));
    }
    i = 0;
    json_object_foreach(shapes, name, def)
    {
        if (load_shape(&l, &m->shapes[i++], name, def) < 0)
            return NULL;
    }

    m->n_ops = json_object_size(ops);
    m->ops = barge_xcalloc(m->n_ops, sizeof(*m->ops));
    i = 0;
    json_object_foreach(ops, name, def)
    {
        struct operation *op = &m->ops[i++];
        op->name = barge_xstrdup(name);
        const char *in = json_string_value(json_object_get(def, "input"));
        if (in) {
            json_t *pos = json_object_get(index, in);
            if (!pos) {
                barge_error_set(err, BARGE_ERR_INTERNAL,
                                "model '%s': operation '%s' has unknown input '%s'", service, name,
                                in);
                return NULL;
            }
            op->input = &m->shapes[json_integer_value(pos)];
        }
    }
    qsort(m->ops, m->n_ops, sizeof(*m->ops), op_cmp);
    m->raw = json_incref(root);
    return m;
}

static struct slot {
    const char *service;
    struct barge_model *model; /* published with release, read with acquire */
} slots[] = {
    {"ecs", NULL},
    {"ssm", NULL},
    {"secretsmanager", NULL},
    {"logs", NULL},
    {"ecr", NULL},
    {"application-autoscaling", NULL},
    {"cloudwatch", NULL},
    {"elbv2", NULL},
    {"sts", NULL},
    {"iam", NULL},
    {"servicediscovery", NULL},
    {"cloudformation", NULL},
    {"ec2", NULL},
    {"acm", NULL},
};
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

const struct barge_model *barge_model_get(const char *service)
{
    struct slot *slot = NULL;
    for (size_t i = 0; service && i < BARGE_ARRAY_SIZE(slots) && !slot; i++)
        if (strcmp(slots[i].service, service) == 0)
            slot = &slots[i];
    if (!slot)
        return NULL;

    /* Double-checked: every request after the first takes only the acquire
     * load; the mutex serialises the one-time parse. */
    struct barge_model *m = __atomic_load_n(&slot->model, __ATOMIC_ACQUIRE);
    if (m)
        return m;
    pthread_mutex_lock(&slots_lock);
    m = slot->model;
    if (!m) {
        size_t len = 0;
        const char *text = barge_model_embedded_get(service, &len);
        _cleanup_error_ struct barge_error *err = NULL;
        m = text ? model_load(service, text, len, &err) : NULL;
        if (!m) {
            /* The embedded models are part of the build; one that does not
             * load is a bug no request can work around. */
            barge_err("%s", err ? err->message : "model not embedded");
            abort();
        }
        __atomic_store_n(&slot->model, m, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&slots_lock);
    return m;
}

const char *barge_model_target_prefix(const struct barge_model *m)
{
    return m->target_prefix;
}

const char *barge_model_signing_name(const struct barge_model *m)
{
    return m->signing_name;
}

const json_t *barge_model_raw(const struct barge_model *m)
{
    return m->raw;
}

static const struct operation *find_op(const struct barge_model *m, const char *name)
{
    struct operation key = {.name = (char *)name};
    return bsearch(&key, m->ops, m->n_ops, sizeof(*m->ops), op_cmp);
}

bool barge_model_has_operation(const struct barge_model *m, const char *operation)
{
    return m && operation && find_op(m, operation);
}

/* ---- validation ---- */

enum frame_kind { F_MEMBER, F_INDEX, F_KEY };

struct frame {
    enum frame_kind kind;
    const char *s; /* member path name, or map key */
    size_t len;    /* map key length; list index */
};

struct vctx {
    size_t depth;
    size_t violations;
    bool serialization;
    struct barge_buf msg; /* the joined violations, or the serialization message */
    struct frame frames[MAX_DEPTH];
};

static void add_escaped(struct barge_buf *b, const char *s, size_t n, size_t limit, bool *full)
{
    /* NUL would end the C string of the message early; show it instead. */
    while (n && !*full) {
        const char *nul = memchr(s, '\0', n);
        size_t seg = nul ? (size_t)(nul - s) : n;
        if (seg > limit - (b->len < limit ? b->len : limit)) {
            /* Cut on a UTF-8 character boundary. */
            size_t room = limit > b->len ? limit - b->len : 0;
            while (room && ((unsigned char)s[room] & 0xC0) == 0x80)
                room--;
            barge_buf_addn(b, s, room);
            *full = true;
            return;
        }
        barge_buf_addn(b, s, seg);
        if (!nul)
            return;
        barge_buf_adds(b, "\\u0000");
        s += seg + 1;
        n -= seg + 1;
    }
}

static void add_path(struct barge_buf *b, const struct vctx *c)
{
    for (size_t i = 0; i < c->depth; i++) {
        const struct frame *f = &c->frames[i];
        switch (f->kind) {
        case F_MEMBER:
            if (i)
                barge_buf_addn(b, ".", 1);
            barge_buf_adds(b, f->s);
            break;
        case F_INDEX:
            barge_buf_addf(b, ".%zu.member", f->len + 1);
            break;
        case F_KEY: {
            bool full = false;
            barge_buf_addn(b, ".", 1);
            add_escaped(b, f->s, f->len, b->len + RENDER_LIMIT, &full);
            if (full)
                barge_buf_adds(b, "...");
            break;
        }
        }
    }
}

static const struct shape *struct_member_shape(const struct shape *s, const char *key, size_t len);

/* Appends v in Java's toString manner ('[a, b]', '{k=v}'), stopping at limit
 * (an absolute length of b) and hiding sensitive shapes. s may be NULL. */
static void render(struct barge_buf *b, const struct shape *s, const json_t *v, size_t limit,
                   bool *full)
{
    if (*full)
        return;
    if (b->len >= limit) {
        *full = true;
        return;
    }
    if (s && s->sensitive) {
        barge_buf_adds(b, "***");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        add_escaped(b, json_string_value(v), json_string_length(v), limit, full);
        break;
    case JSON_INTEGER:
        barge_buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        buf_add_double(b, json_real_value(v));
        break;
    case JSON_TRUE:
        barge_buf_adds(b, "true");
        break;
    case JSON_FALSE:
        barge_buf_adds(b, "false");
        break;
    case JSON_NULL:
        barge_buf_adds(b, "null");
        break;
    case JSON_ARRAY: {
        const struct shape *ms = s && s->type == T_LIST ? s->member : NULL;
        barge_buf_addn(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v) && !*full; i++) {
            if (i)
                barge_buf_adds(b, ", ");
            render(b, ms, json_array_get(v, i), limit, full);
        }
        if (!*full)
            barge_buf_addn(b, "]", 1);
        break;
    }
    case JSON_OBJECT: {
        bool first = true;
        barge_buf_addn(b, "{", 1);
        for (void *it = json_object_iter((json_t *)v); it && !*full;
             it = json_object_iter_next((json_t *)v, it)) {
            const char *k = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            const struct shape *vs = NULL;
            if (s && s->type == T_MAP) {
                vs = s->value;
            } else if (s && s->type == T_STRUCTURE) {
                /* Members the model does not know are not part of the value. */
                vs = struct_member_shape(s, k, klen);
                if (!vs)
                    continue;
            }
            if (!first)
                barge_buf_adds(b, ", ");
            first = false;
            add_escaped(b, k, klen, limit, full);
            barge_buf_addn(b, "=", 1);
            render(b, vs, json_object_iter_value(it), limit, full);
        }
        if (!*full)
            barge_buf_addn(b, "}", 1);
        break;
    }
    }
}

/* Records one broken constraint on v (NULL for a missing value) of shape s at
 * the current path; constraint is the text after "Member must ...". */
static void violation(struct vctx *c, const struct shape *s, const json_t *v,
                      const char *constraint)
{
    if (++c->violations > MAX_REPORTED)
        return;
    struct barge_buf *b = &c->msg;
    if (c->violations > 1)
        barge_buf_adds(b, "; ");
    if (!v || json_is_null(v)) {
        barge_buf_adds(b, "Value null");
    } else if (s && s->sensitive) {
        /* AWS drops the value of a sensitive member altogether. */
        barge_buf_adds(b, "Value");
    } else {
        bool full = false;
        barge_buf_adds(b, "Value '");
        render(b, s, v, b->len + RENDER_LIMIT, &full);
        barge_buf_adds(b, full ? "...'" : "'");
    }
    barge_buf_adds(b, " at '");
    add_path(b, c);
    barge_buf_adds(b, "' failed to satisfy constraint: ");
    barge_buf_adds(b, constraint);
}

static const char *article(const char *word)
{
    return strchr("AEIOU", word[0]) ? "an" : "a";
}

/* A value of the wrong JSON type: Coral fails the whole request while
 * deserialising, before any constraint is looked at. */
static int type_error(struct vctx *c, const struct shape *s, const json_t *v, const char *detail)
{
    struct barge_buf *b = &c->msg;
    b->len = 0;
    c->serialization = true;
    if (detail) {
        barge_buf_adds(b, detail);
    } else if (json_is_object(v)) {
        barge_buf_adds(b, "Start of structure or map found where not expected");
    } else if (json_is_array(v)) {
        barge_buf_adds(b, "Start of list found where not expected");
    } else {
        const char *token = json_is_string(v)    ? "STRING_VALUE"
                            : json_is_number(v)  ? "NUMBER_VALUE"
                            : json_is_boolean(v) ? "BOOLEAN_VALUE"
                                                 : "NULL_VALUE";
        const char *target = type_names[s->type].java_name;
        barge_buf_addf(b, "%s can not be converted to %s %s", token, article(target), target);
    }
    if (c->depth) {
        barge_buf_adds(b, " at '");
        add_path(b, c);
        barge_buf_adds(b, "'");
    }
    return -1;
}

static const struct member *find_member(const struct shape *s, const char *key, size_t len)
{
    uint32_t h = hash_bytes(key, len);
    for (uint32_t slot = h & s->table_mask;; slot = (slot + 1) & s->table_mask) {
        uint16_t idx = s->table[slot];
        if (!idx)
            return NULL;
        const struct member *mb = &s->members[idx - 1];
        if (mb->hash == h && mb->name_len == len && memcmp(mb->name, key, len) == 0)
            return mb;
    }
}

static const struct shape *struct_member_shape(const struct shape *s, const char *key, size_t len)
{
    const struct member *mb = find_member(s, key, len);
    return mb ? mb->shape : NULL;
}

static bool push(struct vctx *c, enum frame_kind kind, const char *s, size_t len)
{
    if (c->depth == MAX_DEPTH)
        return false;
    c->frames[c->depth++] = (struct frame){.kind = kind, .s = s, .len = len};
    return true;
}

static int check(struct vctx *c, const struct shape *s, const json_t *v);

/* Checks a list element or map value, where null is not a way to leave a
 * member out but a missing value. */
static int check_child(struct vctx *c, const struct shape *s, const json_t *v)
{
    if (json_is_null(v)) {
        violation(c, s, NULL, "Member must not be null");
        return 0;
    }
    return check(c, s, v);
}

static void check_length(struct vctx *c, const struct shape *s, const json_t *v, size_t n)
{
    char text[96];
    if (s->has_min && (json_int_t)n < s->imin) {
        snprintf(text, sizeof(text),
                 "Member must have length greater than or equal to %" JSON_INTEGER_FORMAT, s->imin);
        violation(c, s, v, text);
    }
    if (s->has_max && (json_int_t)n > s->imax) {
        snprintf(text, sizeof(text),
                 "Member must have length less than or equal to %" JSON_INTEGER_FORMAT, s->imax);
        violation(c, s, v, text);
    }
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}

static void check_string(struct vctx *c, const struct shape *s, const json_t *v, const char *str,
                         size_t len)
{
    if (s->n_enums) {
        struct enum_value key = {.s = str, .len = len};
        if (!bsearch(&key, s->enums, s->n_enums, sizeof(*s->enums), enum_cmp)) {
            char *text = barge_xasprintf("Member must satisfy enum value set: %s", s->enum_text);
            violation(c, s, v, text);
            free(text);
        }
    }
    if (!s->has_min && !s->has_max)
        return;
    /* A string has at most as many characters as bytes and at least a quarter
     * as many, so the characters need counting only when the byte length
     * alone does not settle both limits. */
    json_int_t bytes = (json_int_t)len;
    bool count = (s->has_max && bytes > s->imax) ||
                 (s->has_min && bytes >= s->imin && (bytes + 3) / 4 < s->imin);
    check_length(c, s, v, count ? utf8_chars(str, len) : len);
}

static void check_int_range(struct vctx *c, const struct shape *s, const json_t *v, json_int_t n)
{
    char text[96];
    if (s->has_min && n < s->imin) {
        snprintf(text, sizeof(text),
                 "Member must have value greater than or equal to %" JSON_INTEGER_FORMAT, s->imin);
        violation(c, s, v, text);
    }
    if (s->has_max && n > s->imax) {
        snprintf(text, sizeof(text),
                 "Member must have value less than or equal to %" JSON_INTEGER_FORMAT, s->imax);
        violation(c, s, v, text);
    }
}

static void check_double_range(struct vctx *c, const struct shape *s, const json_t *v, double d)
{
    struct barge_buf text = {0};
    if (s->has_min && d < s->dmin) {
        barge_buf_adds(&text, "Member must have value greater than or equal to ");
        buf_add_double(&text, s->dmin);
        violation(c, s, v, text.data);
        text.len = 0;
    }
    if (s->has_max && d > s->dmax) {
        barge_buf_adds(&text, "Member must have value less than or equal to ");
        buf_add_double(&text, s->dmax);
        violation(c, s, v, text.data);
    }
    free(text.data);
}

static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* ISO-8601 as clients other than botocore send it: a date, optionally a time
 * (T, t or space) with optional fraction, optionally Z or an offset. */
static bool iso8601_valid(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h, mi, sec = 0;
    if (len < 10 || !digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    if (p == end)
        return true;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return false;
    p++;
    if (end - p < 5 || !digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
        return false;
    if (p < end && *p == ':') {
        p++;
        if (end - p < 2 || !digits(&p, 2, &sec))
            return false;
        if (p < end && (*p == '.' || *p == ',')) {
            p++;
            const char *f = p;
            while (p < end && *p >= '0' && *p <= '9')
                p++;
            if (p == f)
                return false;
        }
    }
    if (h > 24 || mi > 59 || sec > 60)
        return false;
    if (p == end)
        return true;
    if ((*p == 'Z' || *p == 'z') && p + 1 == end)
        return true;
    if (*p != '+' && *p != '-')
        return false;
    p++;
    int oh, om = 0;
    if (end - p < 2 || !digits(&p, 2, &oh))
        return false;
    if (p < end && *p == ':')
        p++;
    if (p < end && (end - p != 2 || !digits(&p, 2, &om)))
        return false;
    return p == end && oh <= 23 && om <= 59;
}

/* Standard base64 with or without padding; *decoded gets the byte count. */
static bool base64_valid(const char *s, size_t len, size_t *decoded)
{
    size_t pad = 0;
    while (len && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (pad && (len + pad) % 4)
        return false;
    if (len % 4 == 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return false;
    }
    *decoded = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    return true;
}

static int check_structure(struct vctx *c, const struct shape *s, const json_t *v)
{
    json_t *obj = (json_t *)v; /* iteration does not modify it */
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        json_t *mv = json_object_iter_value(it);
        if (json_is_null(mv))
            continue; /* Coral reads null as absent */
        const struct member *mb =
            find_member(s, json_object_iter_key(it), json_object_iter_key_len(it));
        if (!mb)
            continue;
        if (!push(c, F_MEMBER, mb->path_name, 0))
            return type_error(c, s, v, "Input nested too deeply");
        int r = check(c, mb->shape, mv);
        c->depth--;
        if (r < 0)
            return -1;
    }
    for (size_t i = 0; i < s->n_required; i++) {
        const struct member *mb = s->required[i];
        json_t *mv = json_object_getn(v, mb->name, mb->name_len);
        if (mv && !json_is_null(mv))
            continue;
        if (!push(c, F_MEMBER, mb->path_name, 0))
            return type_error(c, s, v, "Input nested too deeply");
        violation(c, mb->shape, NULL, "Member must not be null");
        c->depth--;
    }
    return 0;
}

static int check(struct vctx *c, const struct shape *s, const json_t *v)
{
    switch (s->type) {
    case T_ANY:
        return 0;
    case T_STRUCTURE:
        if (!json_is_object(v))
            return type_error(c, s, v, NULL);
        return check_structure(c, s, v);
    case T_LIST: {
        if (!json_is_array(v))
            return type_error(c, s, v, NULL);
        size_t n = json_array_size(v);
        check_length(c, s, v, n);
        for (size_t i = 0; i < n; i++) {
            if (!push(c, F_INDEX, NULL, i))
                return type_error(c, s, v, "Input nested too deeply");
            int r = check_child(c, s->member, json_array_get(v, i));
            c->depth--;
            if (r < 0)
                return -1;
        }
        return 0;
    }
    case T_MAP: {
        if (!json_is_object(v))
            return type_error(c, s, v, NULL);
        json_t *obj = (json_t *)v;
        check_length(c, s, v, json_object_size(v));
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            const char *k = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            if (!push(c, F_KEY, k, klen))
                return type_error(c, s, v, "Input nested too deeply");
            /* A key is always a string; its constraints are checked on a
             * temporary value only when it has any, to keep the common
             * case free of allocation. */
            if (s->key->type == T_STRING &&
                (s->key->n_enums || s->key->has_min || s->key->has_max)) {
                json_t *kv = json_stringn_nocheck(k, klen);
                check_string(c, s->key, kv, k, klen);
                json_decref(kv);
            }
            int r = check_child(c, s->value, json_object_iter_value(it));
            c->depth--;
            if (r < 0)
                return -1;
        }
        return 0;
    }
    case T_STRING:
        if (!json_is_string(v))
            return type_error(c, s, v, NULL);
        check_string(c, s, v, json_string_value(v), json_string_length(v));
        return 0;
    case T_INTEGER:
    case T_LONG: {
        if (!json_is_integer(v))
            return type_error(c, s, v, NULL);
        json_int_t n = json_integer_value(v);
        if (s->type == T_INTEGER && (n < INT32_MIN || n > INT32_MAX)) {
            char text[96];
            snprintf(text, sizeof(text),
                     "Numeric value (%" JSON_INTEGER_FORMAT ") out of range of int", n);
            return type_error(c, s, v, text);
        }
        check_int_range(c, s, v, n);
        return 0;
    }
    case T_FLOAT:
    case T_DOUBLE: {
        if (!json_is_number(v))
            return type_error(c, s, v, NULL);
        double d = json_number_value(v);
        if (s->type == T_FLOAT && (d > FLT_MAX || d < -FLT_MAX))
            return type_error(c, s, v, "Numeric value out of range of float");
        check_double_range(c, s, v, d);
        return 0;
    }
    case T_BOOLEAN:
        if (!json_is_boolean(v))
            return type_error(c, s, v, NULL);
        return 0;
    case T_TIMESTAMP:
        if (json_is_number(v))
            return 0;
        if (json_is_string(v) && iso8601_valid(json_string_value(v), json_string_length(v)))
            return 0;
        return type_error(c, s, v, NULL);
    case T_BLOB: {
        size_t bytes = 0;
        if (!json_is_string(v) ||
            !base64_valid(json_string_value(v), json_string_length(v), &bytes))
            return type_error(c, s, v, NULL);
        check_length(c, s, v, bytes);
        return 0;
    }
    }
    return 0;
}

int barge_model_validate_input(const struct barge_model *m, const char *operation,
                               const json_t *input, struct barge_error **err)
{
    if (!m || !operation)
        return barge_error_set(err, BARGE_ERR_INTERNAL, "validation without a model or operation");
    const struct operation *op = find_op(m, operation);
    if (!op)
        return barge_error_set(err, BARGE_ERR_UNKNOWN_OP, "operation '%s' is not part of '%s'",
                               operation, m->service);
    if (!json_is_object(input)) {
        if (!input)
            return barge_error_set(err, BARGE_ERR_SERIALIZATION, "the request body is not JSON");
        struct vctx c;
        c.depth = 0;
        c.msg = (struct barge_buf){0};
        static const struct shape any_structure = {.type = T_STRUCTURE};
        type_error(&c, &any_structure, input, NULL);
        barge_error_set(err, BARGE_ERR_SERIALIZATION, "%s", c.msg.data);
        free(c.msg.data);
        return -1;
    }
    if (!op->input)
        return 0;

    /* frames stays uninitialised: only the first depth entries are read. */
    struct vctx c;
    c.depth = 0;
    c.violations = 0;
    c.serialization = false;
    c.msg = (struct barge_buf){0};
    check(&c, op->input, input);
    int ret = 0;
    if (c.serialization) {
        ret = barge_error_set(err, BARGE_ERR_SERIALIZATION, "%s", c.msg.data);
    } else if (c.violations) {
        ret = barge_error_set(err, BARGE_ERR_INVALID, "%zu validation error%s detected: %s",
                              c.violations, c.violations == 1 ? "" : "s", c.msg.data);
    }
    free(c.msg.data);
    return ret;
}
