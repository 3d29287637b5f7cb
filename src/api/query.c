/* The AWS query protocol, as CloudWatch speaks it: a form-encoded POST of
 * Action, Version and the input members flattened into dotted keys, answered
 * in XML in the service's namespace. EC2 speaks a variant of it (protocol
 * "ec2"): keys are the members' queryName or capitalised locationName, every
 * list is flattened, answers carry requestId and the output members right
 * under <ActionResponse>, and errors come in <Response><Errors>. Nothing here knows an operation:
 * the decoder walks the model's input shape along each key and the encoder its output shape along
 * the handler's JSON, so a handler is the same function it would be under JSON 1.1 (timestamps as
 * epoch seconds). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/model.h"
#include "api/pipeline.h"
#include "api/xml.h"
#include "common/isotime.h"
#include "common/json.h"

extern const struct barge_api_service barge_api_cloudwatch;
extern const struct barge_api_service barge_api_elbv2;
extern const struct barge_api_service barge_api_sts;
extern const struct barge_api_service barge_api_iam;
extern const struct barge_api_service barge_api_cloudformation;
extern const struct barge_api_service barge_api_ec2;

static const struct barge_api_service *services[] = {
    &barge_api_cloudwatch, &barge_api_elbv2,          &barge_api_sts,
    &barge_api_iam,        &barge_api_cloudformation, &barge_api_ec2};

struct codec {
    const json_t *shapes;
    const char *key; /* the whole form key, for messages */
    bool ec2;        /* the EC2 variant of the protocol */
};

static bool is_ec2(const json_t *raw)
{
    return barge_streq(barge_json_str(json_object_get(raw, "metadata"), "protocol", ""), "ec2");
}

static const json_t *shape_of(const struct codec *c, const json_t *ref)
{
    return json_object_get(c->shapes, barge_json_str(ref, "shape", ""));
}

static const char *type_of(const json_t *shape)
{
    return barge_json_str(shape, "type", "string");
}

static bool composite(const json_t *shape)
{
    const char *t = type_of(shape);
    return !strcmp(t, "structure") || !strcmp(t, "list") || !strcmp(t, "map");
}

/* A member's name on the wire. */
static const char *wire_name(const char *name, const json_t *member)
{
    return barge_json_str(member, "locationName", name);
}

/* A member's name in an EC2 request, as botocore writes it. */
static bool ec2_input_name_is(const char *name, const json_t *member, const char *seg)
{
    const char *q = barge_json_str(member, "queryName", NULL);
    if (q)
        return !strcmp(q, seg);
    const char *loc = barge_json_str(member, "locationName", NULL);
    if (!loc)
        return !strcmp(name, seg);
    return toupper((unsigned char)loc[0]) == seg[0] && loc[0] && !strcmp(loc + 1, seg + 1);
}

static bool parse_time(const char *s, double *out)
{
    char *end;
    double epoch = strtod(s, &end);
    if (*s && !*end) {
        *out = epoch;
        return true;
    }
    struct barge_isotime t;
    if (barge_isotime_parse(s, strlen(s), &t) < 0 || !t.has_time || !t.has_zone)
        return false;
    *out = barge_isotime_epoch(&t);
    return true;
}

static int bad_value(const struct codec *c, const char *value, const char *what,
                     struct barge_error **err)
{
    return barge_error_set(err, BARGE_ERR_SERIALIZATION,
                           "Value '%s' for parameter %s is not a valid %s.", value, c->key, what);
}

static int scalar(const struct codec *c, const json_t *shape, const char *value, json_t **out,
                  struct barge_error **err)
{
    const char *t = type_of(shape);
    char *end;
    if (!strcmp(t, "integer") || !strcmp(t, "long")) {
        long long n = strtoll(value, &end, 10);
        if (!*value || *end)
            return bad_value(c, value, "integer", err);
        *out = json_integer(n);
    } else if (!strcmp(t, "double") || !strcmp(t, "float")) {
        double d = strtod(value, &end);
        if (!*value || *end)
            return bad_value(c, value, "number", err);
        *out = json_real(d);
    } else if (!strcmp(t, "boolean")) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return bad_value(c, value, "boolean", err);
        *out = json_boolean(!strcmp(value, "true"));
    } else if (!strcmp(t, "timestamp")) {
        double when;
        if (!parse_time(value, &when))
            return bad_value(c, value, "timestamp", err);
        *out = json_real(when);
    } else {
        *out = json_string(value);
    }
    return 0;
}

static int put(const struct codec *c, const json_t *shape, json_t *node, char **segs, size_t n,
               const char *value, struct barge_error **err);

/* Stores value under node[key], a child of shape. */
static int put_child(const struct codec *c, const json_t *shape, json_t *node, const char *key,
                     char **segs, size_t n, const char *value, struct barge_error **err)
{
    if (!composite(shape)) {
        if (n)
            return 0; /* deeper than the model goes: not a member */
        json_t *v = NULL;
        if (scalar(c, shape, value, &v, err) < 0)
            return -1;
        json_object_set_new(node, key, v);
        return 0;
    }
    json_t *child = json_object_get(node, key);
    if (!json_is_object(child)) {
        child = json_object();
        json_object_set_new(node, key, child);
    }
    return n ? put(c, shape, child, segs, n, value, err) : 0;
}

static bool index_ok(const char *s)
{
    char *end;
    long i = strtol(s, &end, 10);
    return *s && !*end && i >= 1 && i <= 100000;
}

/* Lists and maps are collected as objects keyed by their 1-based index and
 * turned into arrays and objects by finish(). */
static int put(const struct codec *c, const json_t *shape, json_t *node, char **segs, size_t n,
               const char *value, struct barge_error **err)
{
    const char *t = type_of(shape);
    if (!strcmp(t, "structure")) {
        const char *name;
        json_t *m;
        json_object_foreach((json_t *)barge_json_object(shape, "members"), name, m)
        {
            if (c->ec2 ? ec2_input_name_is(name, m, segs[0]) : !strcmp(wire_name(name, m), segs[0]))
                return put_child(c, shape_of(c, m), node, name, segs + 1, n - 1, value, err);
        }
        return 0; /* not a member: ignored, as JSON input's unknown members are */
    }
    bool flat = c->ec2 || barge_json_bool(shape, "flattened", false);
    if (!strcmp(t, "list")) {
        const json_t *item = json_object_get(shape, "member");
        if (!flat) {
            if (strcmp(segs[0], barge_json_str(item, "locationName", "member")) != 0)
                return 0;
            segs++;
            n--;
        }
        if (!n || !index_ok(segs[0]))
            return bad_value(c, n ? segs[0] : "", "list index", err);
        return put_child(c, shape_of(c, item), node, segs[0], segs + 1, n - 1, value, err);
    }
    if (!flat) {
        if (strcmp(segs[0], "entry") != 0)
            return 0;
        segs++;
        n--;
    }
    if (n < 2 || !index_ok(segs[0]))
        return bad_value(c, n ? segs[0] : "", "map entry", err);
    const json_t *ref = NULL;
    if (!strcmp(segs[1], barge_json_str(json_object_get(shape, "key"), "locationName", "key")))
        ref = json_object_get(shape, "key");
    else if (!strcmp(segs[1],
                     barge_json_str(json_object_get(shape, "value"), "locationName", "value")))
        ref = json_object_get(shape, "value");
    if (!ref)
        return 0;
    json_t *entry = json_object_get(node, segs[0]);
    if (!entry) {
        entry = json_object();
        json_object_set_new(node, segs[0], entry);
    }
    return put_child(c, shape_of(c, ref), entry, ref == json_object_get(shape, "key") ? "k" : "v",
                     segs + 2, n - 2, value, err);
}

static int index_cmp(const void *a, const void *b)
{
    long x = atol(*(const char *const *)a), y = atol(*(const char *const *)b);
    return x < y ? -1 : x > y;
}

static json_t *finish(const struct codec *c, const json_t *shape, json_t *v)
{
    const char *t = type_of(shape);
    if (!json_is_object(v))
        return json_incref(v);
    if (!strcmp(t, "structure")) {
        json_t *out = json_object();
        const char *name;
        json_t *child;
        json_object_foreach(v, name, child)
        {
            json_t *m = json_object_get(barge_json_object(shape, "members"), name);
            json_object_set_new(out, name, finish(c, shape_of(c, m), child));
        }
        return out;
    }
    size_t n = json_object_size(v), i = 0;
    const char **keys = barge_xcalloc(n + 1, sizeof(*keys));
    const char *k;
    json_t *child;
    json_object_foreach(v, k, child)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), index_cmp);
    json_t *out;
    if (!strcmp(t, "list")) {
        out = json_array();
        const json_t *item = shape_of(c, json_object_get(shape, "member"));
        for (i = 0; i < n; i++)
            json_array_append_new(out, finish(c, item, json_object_get(v, keys[i])));
    } else {
        out = json_object();
        const json_t *vs = shape_of(c, json_object_get(shape, "value"));
        for (i = 0; i < n; i++) {
            json_t *e = json_object_get(v, keys[i]);
            const char *key = json_string_value(json_object_get(e, "k"));
            json_t *val = json_object_get(e, "v");
            if (key && val)
                json_object_set_new(out, key, finish(c, vs, val));
        }
    }
    free(keys);
    return out;
}

/* Splits the form into decoded (key, value) pairs; '+' is a space. */
static json_t *parse_form(const char *form, size_t len)
{
    json_t *pairs = json_array();
    const char *p = form, *end = form + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t plen = amp ? (size_t)(amp - p) : (size_t)(end - p);
        _cleanup_free_ char *raw = barge_xstrndup(p, plen);
        for (char *q = raw; *q; q++)
            if (*q == '+')
                *q = ' ';
        char *eq = strchr(raw, '=');
        size_t klen = eq ? (size_t)(eq - raw) : strlen(raw);
        _cleanup_free_ char *k = barge_http_unescape(raw, klen);
        _cleanup_free_ char *v = eq ? barge_http_unescape(eq + 1, strlen(eq + 1)) : NULL;
        if (*k)
            json_array_append_new(pairs, json_pack("[s, s]", k, v ? v : ""));
        p += plen + 1;
    }
    return pairs;
}

int barge_api_query_decode(const struct barge_model *model, const char *operation, const char *form,
                           size_t len, json_t **out, struct barge_error **err)
{
    const json_t *raw = barge_model_raw(model);
    struct codec c = {.shapes = json_object_get(raw, "shapes"), .ec2 = is_ec2(raw)};
    const json_t *op = json_object_get(json_object_get(raw, "operations"), operation);
    const json_t *in = json_object_get(c.shapes, barge_json_str(op, "input", ""));
    _cleanup_json_ json_t *pairs = parse_form(form ? form : "", form ? len : 0);
    _cleanup_json_ json_t *tree = json_object();
    size_t i;
    json_t *pair;
    json_array_foreach(pairs, i, pair)
    {
        const char *k = json_string_value(json_array_get(pair, 0));
        if (!in || !strcmp(k, "Action") || !strcmp(k, "Version"))
            continue;
        _cleanup_free_ char *copy = barge_xstrdup(k);
        char *segs[64];
        size_t n = 0;
        for (char *s = copy, *save = NULL, *tok;
             n < BARGE_ARRAY_SIZE(segs) && (tok = strtok_r(s, ".", &save)); s = NULL)
            segs[n++] = tok;
        c.key = k;
        if (n && put(&c, in, tree, segs, n, json_string_value(json_array_get(pair, 1)), err) < 0)
            return -1;
    }
    *out = in ? finish(&c, in, tree) : json_object();
    return 0;
}

static void add_number(struct barge_buf *b, double d)
{
    char text[40];
    snprintf(text, sizeof(text), "%.15g", d);
    if (strtod(text, NULL) != d)
        snprintf(text, sizeof(text), "%.17g", d);
    barge_buf_adds(b, text);
}

static void encode(const struct codec *c, struct barge_buf *b, const json_t *shape,
                   const json_t *v);

static void encode_member(const struct codec *c, struct barge_buf *b, const char *tag,
                          const json_t *ref, const json_t *v)
{
    const json_t *shape = shape_of(c, ref);
    if (!strcmp(type_of(shape), "list") && barge_json_bool(shape, "flattened", false)) {
        size_t i;
        json_t *item;
        json_array_foreach((json_t *)v, i, item)
        {
            barge_buf_addf(b, "<%s>", tag);
            encode(c, b, shape_of(c, json_object_get(shape, "member")), item);
            barge_buf_addf(b, "</%s>", tag);
        }
        return;
    }
    barge_buf_addf(b, "<%s>", tag);
    encode(c, b, shape, v);
    barge_buf_addf(b, "</%s>", tag);
}

static void encode(const struct codec *c, struct barge_buf *b, const json_t *shape, const json_t *v)
{
    const char *t = type_of(shape);
    if (!strcmp(t, "structure")) {
        const char *name;
        json_t *m;
        json_object_foreach((json_t *)barge_json_object(shape, "members"), name, m)
        {
            json_t *mv = json_object_get(v, name);
            if (mv && !json_is_null(mv))
                encode_member(c, b, wire_name(name, m), m, mv);
        }
    } else if (!strcmp(t, "list")) {
        const json_t *ref = json_object_get(shape, "member");
        const char *tag = barge_json_str(ref, "locationName", "member");
        size_t i;
        json_t *item;
        json_array_foreach((json_t *)v, i, item)
        {
            encode_member(c, b, tag, ref, item);
        }
    } else if (!strcmp(t, "map")) {
        const char *k;
        json_t *item;
        json_object_foreach((json_t *)v, k, item)
        {
            barge_buf_adds(b, "<entry>");
            barge_xml_elem(b, barge_json_str(json_object_get(shape, "key"), "locationName", "key"),
                           k);
            encode_member(c, b,
                          barge_json_str(json_object_get(shape, "value"), "locationName", "value"),
                          json_object_get(shape, "value"), item);
            barge_buf_adds(b, "</entry>");
        }
    } else if (!strcmp(t, "timestamp") && json_is_number(v)) {
        char text[BARGE_ISOTIME_MAX];
        barge_buf_adds(b, barge_isotime_format(json_number_value(v), 3, "Z", text));
    } else if (json_is_boolean(v)) {
        barge_buf_adds(b, json_is_true(v) ? "true" : "false");
    } else if (json_is_integer(v)) {
        barge_buf_addf(b, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        add_number(b, json_real_value(v));
    } else if (json_is_string(v)) {
        barge_xml_text(b, json_string_value(v));
    }
}

char *barge_api_query_encode(const struct barge_model *model, const char *operation,
                             const json_t *out, const char *request_id)
{
    const json_t *raw = barge_model_raw(model);
    struct codec c = {.shapes = json_object_get(raw, "shapes")};
    const json_t *op = json_object_get(json_object_get(raw, "operations"), operation);
    const char *ns = barge_json_str(json_object_get(raw, "metadata"), "xmlNamespace", "");
    const char *wrapper = barge_json_str(op, "resultWrapper", NULL);
    const json_t *shape = json_object_get(c.shapes, barge_json_str(op, "output", ""));
    struct barge_buf b = {0};
    barge_buf_addf(&b, "<%sResponse xmlns=\"", operation);
    barge_xml_text(&b, ns);
    barge_buf_adds(&b, "\">");
    if (is_ec2(raw)) {
        barge_xml_elem(&b, "requestId", request_id);
        if (shape)
            encode(&c, &b, shape, out);
        barge_buf_addf(&b, "</%sResponse>\n", operation);
        return b.data;
    }
    if (wrapper && shape) {
        barge_buf_addf(&b, "<%s>", wrapper);
        encode(&c, &b, shape, out);
        barge_buf_addf(&b, "</%s>", wrapper);
    }
    barge_buf_adds(&b, "<ResponseMetadata>");
    barge_xml_elem(&b, "RequestId", request_id);
    barge_buf_addf(&b, "</ResponseMetadata></%sResponse>\n", operation);
    return b.data;
}

static void error_response(const struct barge_api_service *svc, const struct barge_model *model,
                           const struct barge_error *err, const char *request_id,
                           struct barge_http_resp *resp)
{
    const char *type, *msg;
    int status;
    barge_api_error_wire(svc, err, &type, &status, &msg);
    /* Query services name input they cannot read as an invalid value. */
    if (err->code == BARGE_ERR_SERIALIZATION && svc)
        type = svc->client_type;
    /* Query services name a bad or expired token in their own words. */
    if (err->code == BARGE_ERR_AUTH_UNKNOWN_KEY)
        type = "InvalidClientTokenId";
    else if (err->code == BARGE_ERR_AUTH_EXPIRED)
        type = "ExpiredToken";
    const char *ns = model ? barge_json_str(json_object_get(barge_model_raw(model), "metadata"),
                                            "xmlNamespace", "")
                           : "";
    struct barge_buf b = {0};
    if (model && is_ec2(barge_model_raw(model))) {
        /* EC2 names refused credentials and rights in words of its own. */
        if (err->code >= BARGE_ERR_AUTH_MISSING && err->code <= BARGE_ERR_AUTH_EXPIRED) {
            type =
                err->code == BARGE_ERR_AUTH_MISSING ? "MissingAuthenticationToken" : "AuthFailure";
            status = 401;
        } else if (err->code == BARGE_ERR_ACCESS_DENIED) {
            type = "UnauthorizedOperation";
            status = 403;
        } else if (!strcmp(type, "DryRunOperation")) {
            status = 412;
        }
        barge_buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>");
        barge_xml_elem(&b, "Code", type);
        barge_xml_elem(&b, "Message", msg);
        barge_buf_adds(&b, "</Error></Errors>");
        barge_xml_elem(&b, "RequestID", request_id);
        barge_buf_adds(&b, "</Response>\n");
        barge_http_resp_set(resp, status, "text/xml", b.data, b.len);
        return;
    }
    barge_buf_adds(&b, "<ErrorResponse xmlns=\"");
    barge_xml_text(&b, ns);
    barge_buf_adds(&b, "\"><Error>");
    barge_xml_elem(&b, "Type", status >= 500 ? "Receiver" : "Sender");
    barge_xml_elem(&b, "Code", type);
    barge_xml_elem(&b, "Message", msg);
    barge_buf_adds(&b, "</Error>");
    barge_xml_elem(&b, "RequestId", request_id);
    barge_buf_adds(&b, "</ErrorResponse>\n");
    barge_http_resp_set(resp, status, "text/xml", b.data, b.len);
}

static const struct barge_api_service *find_service(const char *version)
{
    for (size_t i = 0; version && i < BARGE_ARRAY_SIZE(services); i++) {
        const json_t *md =
            json_object_get(barge_model_raw(barge_model_get(services[i]->model)), "metadata");
        if (barge_streq(barge_json_str(md, "apiVersion", NULL), version))
            return services[i];
    }
    return NULL;
}

static char *form_value(const json_t *pairs, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach((json_t *)pairs, i, p)
    {
        if (barge_streq(json_string_value(json_array_get(p, 0)), name))
            return barge_xstrdup(json_string_value(json_array_get(p, 1)));
    }
    return NULL;
}

static int proto_route(struct barge_api_call *call, struct barge_error **err)
{
    const struct barge_http_req *req = call->req;
    _cleanup_json_ json_t *pairs = parse_form(req->body ? req->body : "", req->body_len);
    _cleanup_free_ char *version = form_value(pairs, "Version");
    call->op = call->data = form_value(pairs, "Action");
    call->svc = find_service(version);
    if (!call->svc)
        return barge_error_set(err, BARGE_ERR_UNKNOWN_OP, "unknown API version '%s'",
                               version ? version : "");
    return 0;
}

static void proto_unknown_op(const struct barge_api_call *call, struct barge_error **err)
{
    barge_error_set_type(err, BARGE_ERR_UNKNOWN_OP, "InvalidAction",
                         "The action %s is not valid for this web service.",
                         call->op ? call->op : "(none)");
}

static int proto_decode(const struct barge_api_call *call, json_t **input, struct barge_error **err)
{
    return barge_api_query_decode(call->model, call->op, call->req->body, call->req->body_len,
                                  input, err);
}

static void proto_encode(const struct barge_api_call *call, const json_t *out,
                         struct barge_http_resp *resp)
{
    char *text = barge_api_query_encode(call->model, call->op, out, call->req->request_id);
    barge_http_resp_set(resp, 200, "text/xml", text, strlen(text));
}

static void proto_error(const struct barge_api_call *call, const struct barge_error *err,
                        struct barge_http_resp *resp)
{
    error_response(call->svc, call->model, err, call->req->request_id, resp);
}

static const struct barge_api_protocol query = {
    .route = proto_route,
    .unknown_op = proto_unknown_op,
    .unknown_op_type = "InvalidAction",
    .decode = proto_decode,
    .encode = proto_encode,
    .error = proto_error,
};

void barge_api_query_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    barge_api_pipeline_run(&query, req, resp);
}
