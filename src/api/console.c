/* The web console: static pages embedded in the binary (console/ in the
 * tree, .incbin'd as models.c does with the API models), a sign-in with an
 * access key and its secret, and an API that runs AWS operations for the
 * signed-in key through the same pipeline as SigV4-signed calls (decode,
 * validate against the model, identity policies, handler), so the console
 * can do exactly what its key may do and nothing is implemented twice.
 *
 * A browser cannot sign requests on plain http (WebCrypto wants a secure
 * context), so the secret is checked once by POST /console/login, which
 * starts a session: a random token in an HttpOnly, SameSite=Strict cookie,
 * kept in the store only as its SHA-256 (so every barged sharing the store
 * knows it, and a copy of the store yields no usable token). Against
 * cross-site requests every POST must carry the session's CSRF token (derived
 * from the cookie's token, so nothing more is stored) in X-CSRF-Token, and a
 * POST whose Origin (or Sec-Fetch-Site) says another site sent it is refused
 * whatever it carries.
 *
 * Routes: GET /console/ and its files; POST /console/login {accessKeyId,
 * secretAccessKey}; GET /console/session; POST /console/logout; POST
 * /console/api/<service>/<Operation> with the operation's JSON input.
 *
 * The region an API call works in is the X-Barge-Region header's (the page's
 * region picker), else barged's default region: it plays the part of a
 * signed request's credential scope, so the call sees that region's state. */
#include <openssl/crypto.h>
#include <stdint.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/pipeline.h"
#include "api/secrets.h"
#include "api/server.h"
#include "common/crypto.h"
#include "common/embed.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

#define SESSION_KIND  "consolesession"
#define COOKIE_NAME   "barge_console"
#define TOKEN_BYTES   32
#define REGION_HEADER "X-Barge-Region"

__asm__(BARGE_EMBED("barge_console_index_html", "console/index.html"));
__asm__(BARGE_EMBED("barge_console_app_js", "console/app.js"));
__asm__(BARGE_EMBED("barge_console_app_css", "console/app.css"));

extern const char barge_console_index_html[];
extern const uint64_t barge_console_index_html_len;
extern const char barge_console_app_js[];
extern const uint64_t barge_console_app_js_len;
extern const char barge_console_app_css[];
extern const uint64_t barge_console_app_css_len;

static const struct {
    const char *path;
    const char *type;
    const char *data;
    const uint64_t *len;
} assets[] = {
    {"/console/", "text/html; charset=utf-8", barge_console_index_html,
     &barge_console_index_html_len},
    {"/console/app.js", "text/javascript; charset=utf-8", barge_console_app_js,
     &barge_console_app_js_len},
    {"/console/app.css", "text/css; charset=utf-8", barge_console_app_css,
     &barge_console_app_css_len},
};

extern const struct barge_api_service barge_api_ecs;
extern const struct barge_api_service barge_api_logs;
extern const struct barge_api_service barge_api_cloudwatch;
extern const struct barge_api_service barge_api_elbv2;

/* What the console calls, by model name. */
static const struct barge_api_service *services[] = {
    &barge_api_ecs,
    &barge_api_logs,
    &barge_api_cloudwatch,
    &barge_api_elbv2,
};

static void json_answer(struct barge_http_resp *resp, int status, json_t *body)
{
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_header(resp, "Cache-Control", "no-store");
    barge_http_resp_set(resp, status, "application/json", text, strlen(text));
}

static void fail(struct barge_http_resp *resp, int status, const char *type, const char *message)
{
    json_answer(resp, status, json_pack("{s:s, s:s}", "__type", type, "message", message));
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

/* The store key of a session token, and the CSRF token that goes with it. */
static void token_hash(const char *token, char out[65])
{
    barge_sha256_hex(token, strlen(token), out);
}

static void token_csrf(const char *token, char out[65])
{
    _cleanup_free_ char *s = barge_xasprintf("csrf:%s", token);
    barge_sha256_hex(s, strlen(s), out);
}

/* The session token from the Cookie header (caller frees), or NULL. */
static char *cookie_token(const struct barge_http_req *req)
{
    const char *h = barge_http_req_header(req, "Cookie");
    size_t nlen = strlen(COOKIE_NAME);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 * TOKEN_BYTES + nlen + 1 && strncmp(p, COOKIE_NAME "=", nlen + 1) == 0)
            return barge_xstrndup(p + nlen + 1, 2 * TOKEN_BYTES);
        p += len;
    }
    return NULL;
}

/* Refuses a request another site made the browser send: its Origin must be
 * this server (http or https with the Host the request came to), and
 * Sec-Fetch-Site, where browsers send it, same-origin. Requests without
 * either come from programs, not from a page of another site. */
static bool cross_origin(const struct barge_http_req *req, struct barge_http_resp *resp)
{
    const char *origin = barge_http_req_header(req, "Origin");
    const char *host = barge_http_req_header(req, "Host");
    const char *site = barge_http_req_header(req, "Sec-Fetch-Site");
    if (origin) {
        const char *rest = barge_str_has_prefix(origin, "http://")    ? origin + 7
                           : barge_str_has_prefix(origin, "https://") ? origin + 8
                                                                      : NULL;
        if (!host || !rest || strcmp(rest, host) != 0) {
            _cleanup_free_ char *msg = barge_xasprintf(
                "cross-origin request refused: origin '%s' is not this console's", origin);
            fail(resp, 403, "AccessDeniedException", msg);
            return true;
        }
    }
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0) {
        _cleanup_free_ char *msg =
            barge_xasprintf("cross-origin request refused: Sec-Fetch-Site is '%s'", site);
        fail(resp, 403, "AccessDeniedException", msg);
        return true;
    }
    return false;
}

/* The signed-in session of req: 1 with its stored document in *doc and the
 * CSRF token in csrf, 0 (resp filled) when there is none or it ended, -1 on
 * a store error (resp filled). */
static int session_get(struct barge_http_req *req, struct barge_http_resp *resp, json_t **doc,
                       char csrf[65])
{
    struct barge_server *srv = req->server;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_free_ char *token = cookie_token(req);
    char hash[65];
    *doc = NULL;
    if (!token) {
        fail(resp, 401, "MissingAuthenticationTokenException", "not signed in to the console");
        return 0;
    }
    token_hash(token, hash);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, false, &tx, &err) < 0 ||
        barge_store_get(tx, SESSION_KIND, hash, doc, &err) < 0) {
        barge_err("console session: %s", err->message);
        fail(resp, 500, "InternalFailure", "the console session could not be read");
        return -1;
    }
    if (!*doc || json_number_value(json_object_get(*doc, "expiresAt")) <= barge_now()) {
        json_decref(barge_steal(doc));
        fail(resp, 401, "ExpiredTokenException",
             "the console session has ended or expired; sign in again");
        return 0;
    }
    /* A key deleted or made Inactive since ends its sessions. */
    struct barge_sigv4_credentials creds = {0};
    int r = barge_server_lookup_key(barge_json_str(*doc, "accessKeyId", ""), srv, &creds, &err);
    free((char *)creds.access_key_id);
    barge_crypto_free_str((char *)creds.secret_access_key);
    free((char *)creds.session_token);
    if (r <= 0) {
        json_decref(barge_steal(doc));
        if (r < 0) {
            barge_err("console session key: %s", err->message);
            fail(resp, 500, "InternalFailure", "the console session could not be read");
            return -1;
        }
        fail(resp, 401, "ExpiredTokenException",
             "the access key of this console session no longer exists or is inactive");
        return 0;
    }
    token_csrf(token, csrf);
    return 1;
}

static bool csrf_ok(const struct barge_http_req *req, struct barge_http_resp *resp,
                    const char csrf[65])
{
    const char *sent = barge_http_req_header(req, "X-CSRF-Token");
    if (sent && strlen(sent) == 64 && CRYPTO_memcmp(sent, csrf, 64) == 0)
        return true;
    fail(resp, 403, "AccessDeniedException",
         sent ? "the X-CSRF-Token header does not match the console session"
              : "the X-CSRF-Token header is missing");
    return false;
}

static void session_info(struct barge_server *srv, const json_t *doc, const char *csrf, json_t *out)
{
    struct barge_sigv4_identity who = {0};
    snprintf(who.access_key_id, sizeof(who.access_key_id), "%s",
             barge_json_str(doc, "accessKeyId", ""));
    json_object_set_new(out, "accessKeyId", json_string(who.access_key_id));
    _cleanup_free_ char *arn = barge_api_caller_arn(srv, &who);
    json_object_set_new(out, "arn", json_string(arn));
    json_object_set_new(out, "region", json_string(srv->cfg.region));
    /* The regions that hold something, for the page's region picker. */
    _cleanup_error_ struct barge_error *err = NULL;
    json_t *regions = NULL;
    if (barge_store_regions(srv->store, &regions, &err) < 0) {
        barge_warn("console regions: %s", err->message);
        regions = json_pack("[s]", srv->cfg.region);
    }
    json_object_set_new(out, "regions", regions);
    json_object_set_new(out, "expiresAt",
                        json_real(json_number_value(json_object_get(doc, "expiresAt"))));
    json_object_set_new(out, "csrfToken", json_string(csrf));
}

static void handle_login(struct barge_http_req *req, struct barge_http_resp *resp)
{
    struct barge_server *srv = req->server;
    _cleanup_error_ struct barge_error *err = NULL;
    json_error_t jerr;
    _cleanup_json_ json_t *in = json_loadb(req->body, req->body_len, 0, &jerr);
    const char *akid = NULL, *secret = NULL;
    if (!in || json_unpack_ex(in, &jerr, JSON_STRICT, "{s:s, s:s}", "accessKeyId", &akid,
                              "secretAccessKey", &secret) < 0) {
        _cleanup_free_ char *msg = barge_xasprintf(
            "expected {\"accessKeyId\": \"...\", \"secretAccessKey\": \"...\"}: %s", jerr.text);
        fail(resp, 400, "ValidationException", msg);
        return;
    }
    struct barge_sigv4_credentials creds = {0};
    int r = barge_server_lookup_key(akid, srv, &creds, &err);
    bool ok = r > 0 && creds.secret_access_key &&
              strlen(creds.secret_access_key) == strlen(secret) &&
              CRYPTO_memcmp(creds.secret_access_key, secret, strlen(secret)) == 0;
    bool temporary = creds.session_token != NULL;
    free((char *)creds.access_key_id);
    barge_crypto_free_str((char *)creds.secret_access_key);
    free((char *)creds.session_token);
    if (r < 0) {
        barge_err("console sign-in: %s", err->message);
        fail(resp, 500, "InternalFailure", "the access key could not be read");
        return;
    }
    if (!ok) {
        /* One answer for an unknown key and a wrong secret. */
        _cleanup_free_ char *msg = barge_xasprintf(
            "the secret access key is wrong or the access key '%s' does not exist", akid);
        barge_info("console sign-in refused for '%s' from %s", akid,
                   req->remote_addr ? req->remote_addr : "?");
        fail(resp, 401, "UnrecognizedClientException", msg);
        return;
    }
    if (temporary) {
        _cleanup_free_ char *msg = barge_xasprintf(
            "the access key '%s' is temporary (it has a session token); sign in with a "
            "long-term access key",
            akid);
        fail(resp, 400, "ValidationException", msg);
        return;
    }

    unsigned char raw[TOKEN_BYTES];
    char token[2 * TOKEN_BYTES + 1], hash[65], csrf[65];
    barge_random_bytes(raw, sizeof(raw));
    to_hex(raw, sizeof(raw), token);
    token_hash(token, hash);
    token_csrf(token, csrf);
    double now = barge_now();
    _cleanup_json_ json_t *doc = json_pack("{s:s, s:f, s:f, s:s}", "accessKeyId", akid, "createdAt",
                                           now, "expiresAt", now + srv->cfg.console_session_ttl,
                                           "sourceIp", req->remote_addr ? req->remote_addr : "");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, &err) < 0 ||
        barge_store_put(tx, SESSION_KIND, hash, doc, &err) < 0 ||
        barge_store_commit(barge_steal(&tx), &err) < 0) {
        barge_err("console sign-in: %s", err->message);
        fail(resp, 500, "InternalFailure", "the console session could not be stored");
        return;
    }
    barge_info("console sign-in by '%s' from %s", akid, req->remote_addr ? req->remote_addr : "?");
    /* Behind an https proxy the page's origin says so: then the cookie
     * never travels over plain http. */
    const char *origin = barge_http_req_header(req, "Origin");
    bool secure = origin && barge_str_has_prefix(origin, "https://");
    _cleanup_free_ char *cookie =
        barge_xasprintf(COOKIE_NAME "=%s; Path=/console/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
                        token, srv->cfg.console_session_ttl, secure ? "; Secure" : "");
    barge_http_resp_header(resp, "Set-Cookie", cookie);
    json_t *out = json_object();
    session_info(srv, doc, csrf, out);
    json_answer(resp, 200, out);
}

static void handle_logout(struct barge_http_req *req, struct barge_http_resp *resp)
{
    struct barge_server *srv = req->server;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *doc = NULL;
    char csrf[65];
    if (session_get(req, resp, &doc, csrf) <= 0 || !csrf_ok(req, resp, csrf))
        return;
    _cleanup_free_ char *token = cookie_token(req);
    char hash[65];
    token_hash(token, hash);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, &err) < 0 ||
        barge_store_del(tx, SESSION_KIND, hash, &err) < 0 ||
        barge_store_commit(barge_steal(&tx), &err) < 0) {
        barge_err("console sign-out: %s", err->message);
        fail(resp, 500, "InternalFailure", "the console session could not be removed");
        return;
    }
    barge_http_resp_header(resp, "Set-Cookie",
                           COOKIE_NAME "=; Path=/console/; HttpOnly; SameSite=Strict; Max-Age=0");
    json_answer(resp, 200, json_object());
}

/* The console's wire: POST /console/api/<service>/<Operation>, JSON in and
 * out, errors as {__type, message} with the API's status. The signed-in
 * session reaches the pipeline's steps in req->stream_ud (the console's
 * route streams nothing, so the field is free). */
struct console_route {
    json_t *session;
};

static int proto_route(struct barge_api_call *call, struct barge_error **err)
{
    const char *rest = call->req->path + strlen("/console/api/");
    const char *slash = strchr(rest, '/');
    if (!slash || !slash[1] || strchr(slash + 1, '/'))
        return barge_error_set(err, BARGE_ERR_UNKNOWN_OP,
                               "expected /console/api/<service>/<Operation>, not '%s'",
                               call->req->path);
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(services); i++) {
        if (strlen(services[i]->model) == (size_t)(slash - rest) &&
            strncmp(services[i]->model, rest, (size_t)(slash - rest)) == 0) {
            call->svc = services[i];
            call->op = slash + 1;
            return 0;
        }
    }
    return barge_error_set(err, BARGE_ERR_UNKNOWN_OP,
                           "the console does not serve the service '%.*s' (ecs, logs, "
                           "cloudwatch and elbv2 only)",
                           (int)(slash - rest), rest);
}

static int proto_authenticate(const struct barge_api_call *call, const char *signing_name,
                              struct barge_sigv4_identity *who, struct barge_error **err)
{
    const struct console_route *cr = call->req->stream_ud;
    struct barge_server *srv = call->req->server;
    memset(who, 0, sizeof(*who));
    snprintf(who->access_key_id, sizeof(who->access_key_id), "%s",
             barge_json_str(cr->session, "accessKeyId", ""));
    const char *region = barge_http_req_header(call->req, REGION_HEADER);
    if (!region || !*region)
        region = srv->cfg.region;
    else if (!barge_store_region_valid(region))
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "the " REGION_HEADER " header names no region: '%.64s'", region);
    barge_store_use_region(region);
    snprintf(who->region, sizeof(who->region), "%s", region);
    snprintf(who->service, sizeof(who->service), "%s", signing_name);
    snprintf(who->source_ip, sizeof(who->source_ip), "%s",
             call->req->remote_addr ? call->req->remote_addr : "");
    return 0;
}

static void proto_unknown_op(const struct barge_api_call *call, struct barge_error **err)
{
    barge_error_set(err, BARGE_ERR_UNKNOWN_OP, "unknown operation '%s' of '%s'", call->op,
                    call->svc->model);
}

static int proto_decode(const struct barge_api_call *call, json_t **input, struct barge_error **err)
{
    const struct barge_http_req *req = call->req;
    json_error_t jerr;
    if (call->svc->max_request && req->body_len > call->svc->max_request)
        return barge_error_set_type(err, BARGE_ERR_CLIENT, call->svc->client_type,
                                    "request body of '%zu' bytes is larger than the '%zu' bytes "
                                    "this API accepts",
                                    req->body_len, call->svc->max_request);
    *input = req->body_len == 0 ? json_object() : json_loadb(req->body, req->body_len, 0, &jerr);
    if (!*input)
        return barge_error_set(err, BARGE_ERR_SERIALIZATION, "request body is not valid JSON: %s",
                               jerr.text);
    if (!json_is_object(*input))
        return barge_error_set(err, BARGE_ERR_SERIALIZATION, "request body must be a JSON object");
    return 0;
}

static void proto_encode(const struct barge_api_call *call, const json_t *out,
                         struct barge_http_resp *resp)
{
    (void)call;
    json_answer(resp, 200, out ? json_incref((json_t *)out) : json_object());
}

static void proto_error(const struct barge_api_call *call, const struct barge_error *err,
                        struct barge_http_resp *resp)
{
    const char *type, *message;
    int status;
    barge_api_error_wire(call->svc, err, &type, &status, &message);
    fail(resp, status, type, message);
}

static const struct barge_api_protocol console_protocol = {
    .route = proto_route,
    .authenticate = proto_authenticate,
    .unknown_op = proto_unknown_op,
    .decode = proto_decode,
    .encode = proto_encode,
    .error = proto_error,
};

static void handle_api(struct barge_http_req *req, struct barge_http_resp *resp)
{
    _cleanup_json_ json_t *doc = NULL;
    char csrf[65];
    if (session_get(req, resp, &doc, csrf) <= 0 || !csrf_ok(req, resp, csrf))
        return;
    struct console_route cr = {.session = doc};
    req->stream_ud = &cr;
    barge_api_pipeline_run(&console_protocol, req, resp);
    req->stream_ud = NULL;
}

static void serve_asset(struct barge_http_req *req, struct barge_http_resp *resp)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(assets); i++) {
        if (strcmp(req->path, assets[i].path) != 0)
            continue;
        size_t len = (size_t)*assets[i].len;
        char *body = barge_xmalloc(len + 1);
        memcpy(body, assets[i].data, len + 1);
        /* Nothing but the console's own files runs on its pages. */
        barge_http_resp_header(resp, "Content-Security-Policy",
                               "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
        barge_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
        barge_http_resp_header(resp, "Referrer-Policy", "no-referrer");
        barge_http_resp_header(resp, "Cache-Control", "no-cache");
        barge_http_resp_set(resp, 200, assets[i].type, body, len);
        if (strcmp(req->method, "HEAD") == 0)
            resp->body_len = 0;
        return;
    }
    _cleanup_free_ char *msg = barge_xasprintf("the console has no page '%s'", req->path);
    fail(resp, 404, "NotFoundException", msg);
}

void barge_api_console_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    const char *path = req->path;
    if (strcmp(path, "/console") != 0 && !barge_str_has_prefix(path, "/console/")) {
        barge_api_root_handle(req, resp);
        return;
    }
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;
    if (strcmp(path, "/console") == 0 && get) {
        barge_http_resp_header(resp, "Location", "/console/");
        barge_http_resp_set(resp, 301, "text/plain", barge_xstrdup(""), 0);
        return;
    }
    if (post && cross_origin(req, resp))
        return;
    if (post && strcmp(path, "/console/login") == 0) {
        handle_login(req, resp);
    } else if (post && strcmp(path, "/console/logout") == 0) {
        handle_logout(req, resp);
    } else if (post && barge_str_has_prefix(path, "/console/api/")) {
        handle_api(req, resp);
    } else if (get && strcmp(path, "/console/session") == 0) {
        /* Reading the CSRF token needs the cookie, and only pages of this
         * origin can read the answer (no CORS headers). */
        _cleanup_json_ json_t *doc = NULL;
        char csrf[65];
        if (session_get(req, resp, &doc, csrf) <= 0)
            return;
        json_t *out = json_object();
        session_info(req->server, doc, csrf, out);
        json_answer(resp, 200, out);
    } else if (get) {
        serve_asset(req, resp);
    } else {
        _cleanup_free_ char *msg =
            barge_xasprintf("method '%s' is not allowed on '%s'", req->method, path);
        barge_http_resp_header(resp, "Allow", "GET, HEAD, POST");
        fail(resp, 405, "MethodNotAllowedException", msg);
    }
}

static int reap_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    if (json_number_value(json_object_get(doc, "expiresAt")) <= barge_now())
        json_array_append_new(ud, json_string(key));
    return 0;
}

int barge_api_console_reap(struct barge_server *srv, struct barge_error **err)
{
    _cleanup_json_ json_t *expired = json_array();
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_scan(tx, SESSION_KIND, "", NULL, false, 0, reap_one, expired, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(expired, i, k) if (barge_store_del(tx, SESSION_KIND, json_string_value(k),
                                                          err) < 0) return -1;
    return json_array_size(expired) ? barge_store_commit(barge_steal(&tx), err) : 0;
}
