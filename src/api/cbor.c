/* Smithy RPC v2 CBOR, the protocol recent AWS SDKs prefer for CloudWatch:
 * POST /service/<target prefix>/operation/<operation> with a CBOR body and
 * "smithy-protocol: rpc-v2-cbor", answered in CBOR. The decoder turns any
 * CBOR into the JSON a handler sees everywhere (timestamps, tag 1, as epoch
 * seconds; byte strings as base64); the encoder walks the operation's output
 * shape in the model so that timestamps go out tagged and numbers with the
 * model's type. Errors carry the query protocol's code in
 * x-amzn-query-error, as CloudWatch is query-compatible. */
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#include "api/api.h"
#include "api/model.h"
#include "api/pipeline.h"
#include "common/json.h"

extern const struct barge_api_service barge_api_cloudwatch;

static const struct barge_api_service *services[] = {&barge_api_cloudwatch};

#define MAX_DEPTH 64

struct reader {
    const unsigned char *p, *end;
    int depth;
};

static int bad(struct barge_error **err, const char *what)
{
    return barge_error_set(err, BARGE_ERR_SERIALIZATION, "malformed CBOR request body: %s", what);
}

/* The argument of a head byte's additional information; *indef for 31. */
static int read_arg(struct reader *r, unsigned info, uint64_t *out, bool *indef,
                    struct barge_error **err)
{
    *indef = false;
    if (info < 24) {
        *out = info;
        return 0;
    }
    if (info == 31) {
        *indef = true;
        return 0;
    }
    if (info > 27)
        return bad(err, "reserved additional information");
    size_t n = (size_t)1 << (info - 24);
    if ((size_t)(r->end - r->p) < n)
        return bad(err, "truncated");
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | r->p[i];
    r->p += n;
    *out = v;
    return 0;
}

static double half_to_double(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v = exp == 0    ? ldexp(mant, -24)
               : exp == 31 ? (mant ? NAN : INFINITY)
                           : ldexp(mant + 1024, exp - 25);
    return h & 0x8000 ? -v : v;
}

static int read_item(struct reader *r, json_t **out, struct barge_error **err);

/* A definite or indefinite (chunked) string; bytes are returned raw. */
static int read_string(struct reader *r, unsigned major, unsigned info, char **s, size_t *len,
                       struct barge_error **err)
{
    uint64_t n;
    bool indef;
    if (read_arg(r, info, &n, &indef, err) < 0)
        return -1;
    if (!indef) {
        if (n > (uint64_t)(r->end - r->p))
            return bad(err, "truncated string");
        /* not strndup: a text or byte string may hold NUL bytes */
        *s = barge_xmalloc((size_t)n + 1);
        memcpy(*s, r->p, (size_t)n);
        (*s)[n] = '\0';
        *len = (size_t)n;
        r->p += n;
        return 0;
    }
    struct barge_buf acc = {0};
    while (r->p < r->end && *r->p != 0xff) {
        unsigned head = *r->p++;
        char *chunk;
        size_t clen;
        if (head >> 5 != major || (head & 31) == 31 ||
            read_string(r, major, head & 31, &chunk, &clen, err) < 0) {
            barge_buf_release(&acc);
            return (*err) ? -1 : bad(err, "bad string chunk");
        }
        barge_buf_addn(&acc, chunk, clen);
        free(chunk);
    }
    if (r->p >= r->end) {
        barge_buf_release(&acc);
        return bad(err, "unterminated string");
    }
    r->p++;
    *s = barge_buf_steal(&acc, len);
    return 0;
}

static bool at_break(struct reader *r)
{
    if (r->p < r->end && *r->p == 0xff) {
        r->p++;
        return true;
    }
    return false;
}

static int read_item(struct reader *r, json_t **out, struct barge_error **err)
{
    if (r->p >= r->end)
        return bad(err, "truncated");
    if (++r->depth > MAX_DEPTH)
        return bad(err, "nested too deeply");
    unsigned head = *r->p++, major = head >> 5, info = head & 31;
    uint64_t n = 0;
    bool indef = false;
    int ret = 0;
    *out = NULL;
    switch (major) {
    case 0:
    case 1:
        if (read_arg(r, info, &n, &indef, err) < 0 || indef || n > INT64_MAX)
            return *err ? -1 : bad(err, "integer out of range");
        *out = json_integer(major == 0 ? (json_int_t)n : -1 - (json_int_t)n);
        break;
    case 2:
    case 3: {
        char *s;
        size_t len;
        if (read_string(r, major, info, &s, &len, err) < 0)
            return -1;
        if (major == 3) {
            *out = json_stringn(s, len);
            if (!*out) {
                free(s);
                return bad(err, "a text string is not UTF-8");
            }
        } else {
            char *b64 = barge_xmalloc(4 * ((len + 2) / 3) + 1);
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)s, (int)len);
            *out = json_string(b64);
            free(b64);
        }
        free(s);
        break;
    }
    case 4:
    case 5:
        if (read_arg(r, info, &n, &indef, err) < 0)
            return -1;
        *out = major == 4 ? json_array() : json_object();
        for (uint64_t i = 0; indef ? !at_break(r) : i < n; i++) {
            json_t *k = NULL, *v = NULL;
            if (major == 5 && (read_item(r, &k, err) < 0 || !json_is_string(k))) {
                json_decref(k);
                ret = *err ? -1 : bad(err, "a map key is not a string");
                break;
            }
            if (read_item(r, &v, err) < 0) {
                json_decref(k);
                ret = -1;
                break;
            }
            if (major == 4)
                json_array_append_new(*out, v);
            else if (!json_is_null(v))
                json_object_set_new(*out, json_string_value(k), v);
            else
                json_decref(v);
            json_decref(k);
        }
        break;
    case 6: {
        if (read_arg(r, info, &n, &indef, err) < 0 || indef)
            return *err ? -1 : bad(err, "indefinite tag");
        json_t *v;
        if (read_item(r, &v, err) < 0)
            return -1;
        if (n == 1 && !json_is_number(v)) {
            json_decref(v);
            return bad(err, "a timestamp (tag 1) is not a number");
        }
        *out = n == 1 ? json_real(json_number_value(v)) : json_incref(v);
        json_decref(v);
        break;
    }
    default:
        if (info == 20 || info == 21) {
            *out = json_boolean(info == 21);
        } else if (info == 22 || info == 23) {
            *out = json_null();
        } else if (info >= 25 && info <= 27) {
            if (read_arg(r, info, &n, &indef, err) < 0)
                return -1;
            double d;
            if (info == 25) {
                d = half_to_double((uint16_t)n);
            } else if (info == 26) {
                uint32_t u = (uint32_t)n;
                float f;
                memcpy(&f, &u, sizeof(f));
                d = f;
            } else {
                memcpy(&d, &n, sizeof(d));
            }
            *out = json_real(d);
        } else {
            return bad(err, "unsupported simple value");
        }
    }
    r->depth--;
    if (ret < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return ret;
}

int barge_api_cbor_decode(const void *body, size_t len, json_t **out, struct barge_error **err)
{
    if (len == 0) {
        *out = json_object();
        return 0;
    }
    struct reader r = {body, (const unsigned char *)body + len, 0};
    if (read_item(&r, out, err) < 0)
        return -1;
    if (r.p != r.end || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return bad(err, r.p != r.end ? "trailing bytes" : "the input is not a map");
    }
    return 0;
}

/* --- encoding --------------------------------------------------------------- */

struct writer {
    struct barge_buf out;
    const json_t *shapes;
};

static void put_bytes(struct writer *w, const void *b, size_t n)
{
    barge_buf_addn(&w->out, b, n);
}

static void put_head(struct writer *w, unsigned major, uint64_t v)
{
    unsigned char b[9];
    size_t n;
    if (v < 24) {
        b[0] = (unsigned char)(major << 5 | v);
        n = 1;
    } else {
        int bytes = v < 0x100 ? 1 : v < 0x10000 ? 2 : v < 0x100000000ULL ? 4 : 8;
        b[0] = (unsigned char)(major << 5 | (bytes == 1   ? 24
                                             : bytes == 2 ? 25
                                             : bytes == 4 ? 26
                                                          : 27));
        for (int i = 0; i < bytes; i++)
            b[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
        n = (size_t)bytes + 1;
    }
    put_bytes(w, b, n);
}

static void put_text(struct writer *w, const char *s, size_t n)
{
    put_head(w, 3, n);
    put_bytes(w, s, n);
}

static void put_double(struct writer *w, double d)
{
    unsigned char b[9] = {0xfb};
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(u >> (8 * (7 - i)));
    put_bytes(w, b, 9);
}

static void put_int(struct writer *w, json_int_t v)
{
    if (v >= 0)
        put_head(w, 0, (uint64_t)v);
    else
        put_head(w, 1, (uint64_t)(-1 - v));
}

static const json_t *shape_of(const struct writer *w, const json_t *ref)
{
    return json_object_get(w->shapes, barge_json_str(ref, "shape", ""));
}

static void encode(struct writer *w, const json_t *shape, const json_t *v)
{
    const char *t = barge_json_str(shape, "type", "");
    if (json_is_object(v)) {
        bool structure = !strcmp(t, "structure");
        const json_t *members = barge_json_object(shape, "members");
        size_t n = 0;
        const char *k;
        json_t *item;
        json_object_foreach((json_t *)v, k, item)
        {
            n += !json_is_null(item) && (!structure || json_object_get(members, k));
        }
        put_head(w, 5, n);
        json_object_foreach((json_t *)v, k, item)
        {
            if (json_is_null(item) || (structure && !json_object_get(members, k)))
                continue;
            put_text(w, k, strlen(k));
            encode(w,
                   structure ? shape_of(w, json_object_get(members, k))
                             : shape_of(w, json_object_get(shape, "value")),
                   item);
        }
    } else if (json_is_array(v)) {
        put_head(w, 4, json_array_size(v));
        const json_t *item_shape = shape_of(w, json_object_get(shape, "member"));
        size_t i;
        json_t *item;
        json_array_foreach((json_t *)v, i, item)
        {
            encode(w, item_shape, item);
        }
    } else if (json_is_number(v) && !strcmp(t, "timestamp")) {
        put_head(w, 6, 1);
        put_double(w, json_number_value(v));
    } else if (json_is_number(v) &&
               (!strcmp(t, "double") || !strcmp(t, "float") || (!*t && json_is_real(v)))) {
        put_double(w, json_number_value(v));
    } else if (json_is_number(v)) {
        put_int(w, json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_real_value(v));
    } else if (json_is_boolean(v)) {
        unsigned char b = json_is_true(v) ? 0xf5 : 0xf4;
        put_bytes(w, &b, 1);
    } else if (json_is_string(v)) {
        put_text(w, json_string_value(v), json_string_length(v));
    } else {
        unsigned char b = 0xf6;
        put_bytes(w, &b, 1);
    }
}

void *barge_api_cbor_encode(const struct barge_model *model, const char *operation,
                            const json_t *out, size_t *len)
{
    const json_t *raw = barge_model_raw(model);
    struct writer w = {.shapes = json_object_get(raw, "shapes")};
    const json_t *op = json_object_get(json_object_get(raw, "operations"), operation);
    const json_t *shape = json_object_get(w.shapes, barge_json_str(op, "output", ""));
    _cleanup_json_ json_t *empty = json_object();
    encode(&w, shape, out ? out : empty);
    return barge_buf_steal(&w.out, len);
}

/* --- the handler -------------------------------------------------------------- */

static void error_response(const struct barge_api_service *svc, const struct barge_error *err,
                           struct barge_http_resp *resp)
{
    const char *type, *msg;
    int status;
    barge_api_error_wire(svc, err, &type, &status, &msg);
    if (err->code == BARGE_ERR_SERIALIZATION && svc)
        type = svc->client_type;
    _cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "__type", type, "message", msg);
    struct writer w = {0};
    encode(&w, NULL, body);
    if (svc && svc->query_compatible) {
        _cleanup_free_ char *query_error =
            barge_xasprintf("%s;%s", type, status >= 500 ? "Receiver" : "Sender");
        barge_http_resp_header(resp, "x-amzn-query-error", query_error);
    }
    barge_http_resp_header(resp, "smithy-protocol", "rpc-v2-cbor");
    barge_http_resp_set(resp, status, "application/cbor", w.out.data, w.out.len);
}

/* /service/<target prefix>/operation/<operation> */
static int proto_route(struct barge_api_call *call, struct barge_error **err)
{
    const struct barge_http_req *req = call->req;
    const char *path = req->path ? req->path : "";
    const char *ops = strstr(path, "/operation/");
    if (strcmp(req->method, "POST") != 0 || !barge_str_has_prefix(path, "/service/") || !ops)
        return barge_error_set(err, BARGE_ERR_UNKNOWN_OP,
                               "expected a POST to /service/<service>/operation/<operation>");
    size_t plen = (size_t)(ops - (path + 9));
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(services) && !call->svc; i++) {
        const char *prefix = barge_model_target_prefix(barge_model_get(services[i]->model));
        if (strlen(prefix) == plen && memcmp(prefix, path + 9, plen) == 0)
            call->svc = services[i];
    }
    call->op = ops + strlen("/operation/");
    if (!call->svc)
        return barge_error_set(err, BARGE_ERR_UNKNOWN_OP, "unknown operation '%s'", path);
    return 0;
}

static void proto_unknown_op(const struct barge_api_call *call, struct barge_error **err)
{
    barge_error_set(err, BARGE_ERR_UNKNOWN_OP, "unknown operation '%s'", call->op);
}

static int proto_decode(const struct barge_api_call *call, json_t **input, struct barge_error **err)
{
    return barge_api_cbor_decode(call->req->body, call->req->body_len, input, err);
}

static void proto_encode(const struct barge_api_call *call, const json_t *out,
                         struct barge_http_resp *resp)
{
    size_t len;
    void *body = barge_api_cbor_encode(call->model, call->op, out, &len);
    barge_http_resp_header(resp, "smithy-protocol", "rpc-v2-cbor");
    barge_http_resp_set(resp, 200, "application/cbor", body, len);
}

static void proto_error(const struct barge_api_call *call, const struct barge_error *err,
                        struct barge_http_resp *resp)
{
    error_response(call->svc, err, resp);
}

static const struct barge_api_protocol cbor = {
    .route = proto_route,
    .unknown_op = proto_unknown_op,
    .decode = proto_decode,
    .encode = proto_encode,
    .error = proto_error,
};

void barge_api_cbor_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    barge_api_pipeline_run(&cbor, req, resp);
}
