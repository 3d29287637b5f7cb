/* The OCI distribution API under /v2/ (pull, push, tags, catalog, deletes),
 * served as a streaming route of barged's HTTP server: the start callback
 * authenticates and parses each request before any of its body is read and,
 * for blob uploads, takes the upload the body will be appended to; blob bytes
 * then flow from the socket into the upload file and the running digest
 * without being held in memory; blobs go out with the file-descriptor
 * response (sendfile). Errors are the distribution spec's
 * {"errors":[{"code","message","detail"}]} bodies. */
#include <string.h>
#include <time.h>

#include "common/isotime.h"
#include "common/json.h"
#include "common/log.h"
#include "registry/internal.h"
#include "registry/manifest.h"
#include "registry/ref.h"

/* Per-request state, made by start and freed by done. */
struct dist_req {
    struct barge_registry_path path;
    struct barge_registry_auth auth;
    struct barge_upload *upload; /* held for the whole request */
    bool monolithic;             /* POST ...?digest=: the upload lives only in this request */
    char *digest;                /* ?digest= of a completing upload */
    bool has_range;              /* a Content-Range came with the chunk */
    uint64_t range_start, range_end;
    uint64_t received;
    struct barge_error *write_err;
};

static void set_common(struct barge_http_resp *resp)
{
    barge_http_resp_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
}

static void dist_error(struct barge_http_resp *resp, int status, const char *code,
                       const char *message, json_t *detail)
{
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (detail)
        json_object_set_new(e, "detail", detail);
    json_t *body = json_pack("{s:[o]}", "errors", e);
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_set(resp, status, "application/json", text, strlen(text));
}

/* Translates a registry error (ECR exception names, see images.c). */
static void dist_from_err(struct barge_http_resp *resp, const struct barge_error *e)
{
    static const struct {
        const char *type;
        int status;
        const char *code;
    } map[] = {
        {"RepositoryNotFoundException", 404, "NAME_UNKNOWN"},
        {"ImageNotFoundException", 404, "MANIFEST_UNKNOWN"},
        {"LayersNotFoundException", 400, "MANIFEST_BLOB_UNKNOWN"},
        {"ReferencedImagesNotFoundException", 400, "MANIFEST_BLOB_UNKNOWN"},
        {"ImageTagAlreadyExistsException", 400, "TAG_INVALID"},
        {"ImageDigestDoesNotMatchException", 400, "DIGEST_INVALID"},
        {"ImageReferencedByManifestList", 409, "DENIED"},
        {"InvalidParameterException", 400, "MANIFEST_INVALID"},
    };
    for (size_t i = 0; e->type && i < BARGE_ARRAY_SIZE(map); i++)
        if (strcmp(e->type, map[i].type) == 0) {
            dist_error(resp, map[i].status, map[i].code, e->message, NULL);
            return;
        }
    if (e->code == BARGE_ERR_INVALID || e->code == BARGE_ERR_UNSUPPORTED) {
        dist_error(resp, 400, "UNSUPPORTED", e->message, NULL);
        return;
    }
    barge_err("registry request failed: %s (%s:%d)", e->message, e->file, e->line);
    dist_error(resp, 500, "UNKNOWN",
               "an internal error occurred; see the barged log for the request id", NULL);
}

/* The 401 answer, with a challenge for each scheme barged takes: Basic (the
 * ECR way: user AWS and the token) and Bearer, whose realm is the token
 * endpoint on the host the client used. */
static void unauthorized(struct barge_registry *reg, const struct barge_http_req *req,
                         const struct dist_req *dr, struct barge_http_resp *resp)
{
    _cleanup_free_ char *proxy = barge_registry_proxy_endpoint(reg);
    _cleanup_free_ char *service = barge_registry_host(reg);
    const char *host = barge_http_req_header(req, "Host");
    /* Behind a TLS-terminating proxy the client reached us over https. */
    const char *scheme = barge_http_req_header(req, "X-Forwarded-Proto");
    _cleanup_free_ char *realm =
        host ? barge_xasprintf("%s://%s/v2/token", scheme ? scheme : "http", host)
             : barge_xasprintf("%s/v2/token", proxy);
    _cleanup_free_ char *basic =
        barge_xasprintf("Basic realm=\"%s/\",service=\"%s\"", proxy, service);
    _cleanup_free_ char *scope = NULL;
    if (dr->path.name) {
        bool read = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
        scope = barge_xasprintf(",scope=\"repository:%s:%s\"", dr->path.name,
                                read ? "pull" : "pull,push");
    }
    _cleanup_free_ char *bearer =
        barge_xasprintf("Bearer realm=\"%s\",service=\"%s\"%s", realm, service, scope ? scope : "");
    barge_http_resp_header(resp, "WWW-Authenticate", basic);
    barge_http_resp_header(resp, "WWW-Authenticate", bearer);
    dist_error(resp, 401, "UNAUTHORIZED", "authentication required", NULL);
}

static bool method_is(const struct barge_http_req *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static void upload_headers(struct barge_http_resp *resp, const char *name, const char *id,
                           uint64_t size)
{
    _cleanup_free_ char *loc = barge_xasprintf("/v2/%s/blobs/uploads/%s", name, id);
    char range[48];
    snprintf(range, sizeof(range), "0-%llu", (unsigned long long)(size ? size - 1 : 0));
    barge_http_resp_header(resp, "Location", loc);
    barge_http_resp_header(resp, "Range", range);
    barge_http_resp_header(resp, "Docker-Upload-UUID", id);
}

static void blob_created(struct barge_http_resp *resp, const char *name, const char *digest)
{
    _cleanup_free_ char *loc = barge_xasprintf("/v2/%s/blobs/%s", name, digest);
    resp->status = 201;
    barge_http_resp_header(resp, "Location", loc);
    barge_http_resp_header(resp, "Docker-Content-Digest", digest);
}

/* Blob operations that make a blob visible or mark it used hold the
 * collector's lock shared: a sweep that has already looked at an old blob's
 * mtime must not remove it just after it was refreshed. */
static int commit_upload(struct barge_registry *reg, struct barge_upload *up, const char *digest,
                         struct barge_error **err)
{
    pthread_rwlock_rdlock(&reg->gc_lock);
    int r = barge_blobstore_upload_commit(reg->blobs, up, digest, err);
    pthread_rwlock_unlock(&reg->gc_lock);
    if (r < 0)
        return -1;
    /* Acknowledged only once every barged of the store can serve it. */
    return barge_registry_blob_share(reg, digest, err);
}

/* Whether a repository exists: 1, 0 (with err set to
 * RepositoryNotFoundException), or -1. */
static int repo_lookup(struct barge_registry *reg, const char *name, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(reg->store, false, &tx, err) < 0)
        return -1;
    int r = barge_registry_repo_load(tx, name, &doc, err);
    if (r < 0)
        return (*err)->code == BARGE_ERR_NOT_FOUND ? 0 : -1;
    return 1;
}

/* 1 when the repository exists; 0 with resp filled (NAME_UNKNOWN or 500). */
static int repo_exists(struct barge_registry *reg, const char *name, struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    if (repo_lookup(reg, name, &err) == 1)
        return 1;
    dist_from_err(resp, err);
    return 0;
}

/* Checks a digest from the client; 0 with resp filled when it is unusable. */
static int digest_ok(const char *digest, struct barge_http_resp *resp)
{
    switch (barge_digest_check(digest)) {
    case BARGE_DIGEST_OK:
        return 1;
    case BARGE_DIGEST_UNSUPPORTED:
        dist_error(resp, 400, "DIGEST_INVALID", "only sha256 digests are supported",
                   json_pack("{s:s}", "digest", digest));
        return 0;
    default:
        dist_error(resp, 400, "DIGEST_INVALID", "invalid digest",
                   json_pack("{s:s}", "digest", digest ? digest : ""));
        return 0;
    }
}

/* A container instance's pull token only reads, and only the repositories
 * its tasks use: one host's token must not overwrite the images every host
 * runs, nor read another host's. 1 when allowed, else 0 with resp filled
 * (403 DENIED, or 500). */
static int instance_allowed(struct barge_registry *reg, const struct barge_http_req *req,
                            const struct dist_req *dr, struct barge_http_resp *resp)
{
    bool read = method_is(req, "GET") || method_is(req, "HEAD");
    if (read && (dr->path.route == BARGE_REG_BASE || dr->path.route == BARGE_REG_TOKEN))
        return 1;
    bool repo_read = read && (dr->path.route == BARGE_REG_MANIFEST ||
                              dr->path.route == BARGE_REG_BLOB || dr->path.route == BARGE_REG_TAGS);
    if (!repo_read) {
        dist_error(resp, 403, "DENIED",
                   "requested access to the resource is denied: a container instance's registry "
                   "token only pulls",
                   NULL);
        return 0;
    }
    _cleanup_error_ struct barge_error *err = NULL;
    int r = reg->cfg.instance_may_pull(dr->auth.instance, dr->path.name, reg->cfg.lookup_ud, &err);
    if (r < 0) {
        dist_from_err(resp, err);
        return 0;
    }
    if (r == 0) {
        _cleanup_free_ char *msg = barge_xasprintf(
            "requested access to the resource is denied: no task of container instance '%s' "
            "uses repository '%s'",
            dr->auth.instance, dr->path.name);
        dist_error(resp, 403, "DENIED", msg, json_pack("{s:s}", "name", dr->path.name));
        return 0;
    }
    return 1;
}

/* The ECR action a request of an access key's token performs, as ECR's
 * policies name it; NULL for what needs no permission (the base, tokens). */
static const char *key_action(const struct barge_http_req *req, const struct dist_req *dr)
{
    bool get = method_is(req, "GET");
    bool head = method_is(req, "HEAD");
    bool del = method_is(req, "DELETE");
    switch (dr->path.route) {
    case BARGE_REG_CATALOG:
        return "ecr:DescribeRepositories";
    case BARGE_REG_TAGS:
        return "ecr:ListImages";
    case BARGE_REG_MANIFEST:
        return get || head ? "ecr:BatchGetImage" : del ? "ecr:BatchDeleteImage" : "ecr:PutImage";
    case BARGE_REG_BLOB:
        return get    ? "ecr:GetDownloadUrlForLayer"
               : head ? "ecr:BatchCheckLayerAvailability"
                      : "ecr:BatchDeleteImage";
    case BARGE_REG_UPLOADS:
        return "ecr:InitiateLayerUpload";
    case BARGE_REG_UPLOAD:
        return method_is(req, "PUT") ? "ecr:CompleteLayerUpload" : "ecr:UploadLayerPart";
    default:
        return NULL;
    }
}

/* Whether the key may perform action on repo; 1, else 0 with resp filled
 * (403 DENIED naming the action, or 500). */
static int key_may(struct barge_registry *reg, const struct barge_http_req *req,
                   const struct dist_req *dr, const char *action, const char *repo,
                   struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    if (reg->cfg.key_may(dr->auth.access_key_id, action, repo, req->remote_addr, reg->cfg.lookup_ud,
                         &err) == 0)
        return 1;
    if (err->code != BARGE_ERR_ACCESS_DENIED) {
        dist_from_err(resp, err);
        return 0;
    }
    dist_error(resp, 403, "DENIED", err->message,
               repo ? json_pack("{s:s, s:s}", "name", repo, "action", action)
                    : json_pack("{s:s}", "action", action));
    return 0;
}

/* An IAM principal's token or key pair does what its identity policies
 * allow on each repository, as in ECR: pulls need ecr:BatchGetImage and
 * ecr:GetDownloadUrlForLayer, pushes ecr:InitiateLayerUpload,
 * ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage (and
 * ecr:BatchCheckLayerAvailability for the existence checks before them).
 * A blob HEAD is also allowed to a principal that may download the layer,
 * and a cross-repository mount needs that on the repository it reads. */
static int principal_allowed(struct barge_registry *reg, const struct barge_http_req *req,
                             const struct dist_req *dr, struct barge_http_resp *resp)
{
    const char *action = key_action(req, dr);
    if (!action || !reg->cfg.key_may)
        return 1;
    if (dr->path.route == BARGE_REG_BLOB && method_is(req, "HEAD")) {
        _cleanup_error_ struct barge_error *err = NULL;
        if (reg->cfg.key_may(dr->auth.access_key_id, "ecr:GetDownloadUrlForLayer", dr->path.name,
                             req->remote_addr, reg->cfg.lookup_ud, &err) == 0)
            return 1;
    }
    if (!key_may(reg, req, dr, action, dr->path.name, resp))
        return 0;
    _cleanup_free_ char *from = dr->path.route == BARGE_REG_UPLOADS && method_is(req, "POST")
                                    ? barge_http_req_query(req, "from")
                                    : NULL;
    _cleanup_free_ char *mount = from ? barge_http_req_query(req, "mount") : NULL;
    if (from && mount && barge_registry_repo_name_valid(from) &&
        !key_may(reg, req, dr, "ecr:GetDownloadUrlForLayer", from, resp))
        return 0;
    return 1;
}

/* Sets up the upload side of a request in start. */
static enum barge_http_body_mode start_upload(struct barge_registry *reg,
                                              struct barge_http_req *req, struct dist_req *dr,
                                              struct barge_http_resp *resp)
{
    _cleanup_error_ struct barge_error *err = NULL;
    const char *name = dr->path.name;
    if (dr->path.route == BARGE_REG_UPLOADS) {
        /* Only a monolithic POST (?digest=) carries blob bytes; a plain POST
         * or a mount has no body worth streaming. */
        dr->digest = barge_http_req_query(req, "digest");
        if (!method_is(req, "POST") || !dr->digest)
            return BARGE_HTTP_BODY_BUFFER;
        if (!digest_ok(dr->digest, resp) || !repo_exists(reg, name, resp))
            return BARGE_HTTP_BODY_REFUSE;
        char id[37];
        if (barge_blobstore_upload_new(reg->blobs, name, id, &err) < 0 ||
            barge_blobstore_upload_get(reg->blobs, id, name, &dr->upload, &err) < 0) {
            dist_from_err(resp, err);
            return BARGE_HTTP_BODY_REFUSE;
        }
        dr->monolithic = true;
        return BARGE_HTTP_BODY_STREAM;
    }

    int r = barge_blobstore_upload_get(reg->blobs, dr->path.ref, name, &dr->upload, &err);
    if (r < 0) {
        dist_error(resp, 400, "BLOB_UPLOAD_INVALID", err->message, NULL);
        return BARGE_HTTP_BODY_REFUSE;
    }
    if (r == 0) {
        dist_error(resp, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry",
                   json_pack("{s:s}", "uuid", dr->path.ref));
        return BARGE_HTTP_BODY_REFUSE;
    }
    if (!method_is(req, "PATCH") && !method_is(req, "PUT"))
        return BARGE_HTTP_BODY_BUFFER;
    if (method_is(req, "PUT")) {
        dr->digest = barge_http_req_query(req, "digest");
        if (!digest_ok(dr->digest, resp))
            return BARGE_HTTP_BODY_REFUSE;
    }
    const char *cr = barge_http_req_header(req, "Content-Range");
    if (cr) {
        uint64_t size = barge_upload_size(dr->upload);
        const char *cl = barge_http_req_header(req, "Content-Length");
        if (barge_registry_content_range_parse(cr, &dr->range_start, &dr->range_end) < 0) {
            dist_error(resp, 400, "BLOB_UPLOAD_INVALID", "malformed Content-Range", NULL);
            return BARGE_HTTP_BODY_REFUSE;
        }
        if (dr->range_start != size ||
            (cl && strtoull(cl, NULL, 10) != dr->range_end - dr->range_start + 1)) {
            upload_headers(resp, name, dr->path.ref, size);
            dist_error(resp, 416, "BLOB_UPLOAD_INVALID",
                       "the chunk does not continue the upload where it stands", NULL);
            return BARGE_HTTP_BODY_REFUSE;
        }
        dr->has_range = true;
    }
    return BARGE_HTTP_BODY_STREAM;
}

/* Gives the request's upload back. This happens before the answer is
 * queued, not when the request is over: a client that has read the answer
 * may already be sending its next chunk on another connection. */
static void release_upload(struct barge_registry *reg, struct dist_req *dr, bool handled)
{
    if (!dr->upload)
        return;
    /* A monolithic upload the client broke off leaves nothing behind; a
     * broken-off chunk stays, and the client can ask where it stands. */
    if (dr->monolithic && !handled)
        barge_blobstore_upload_cancel(reg->blobs, dr->upload);
    barge_blobstore_upload_put(reg->blobs, dr->upload);
    dr->upload = NULL;
}

enum barge_http_body_mode barge_registry_http_start(struct barge_registry *reg,
                                                    struct barge_http_req *req,
                                                    struct barge_http_resp *resp)
{
    struct dist_req *dr = barge_xcalloc(1, sizeof(*dr));
    req->stream_ud = dr;
    set_common(resp);
    bool parsed = barge_registry_path_parse(req->path, &dr->path) == 0;

    _cleanup_error_ struct barge_error *err = NULL;
    int ok = barge_registry_authorize(reg, barge_http_req_header(req, "Authorization"), time(NULL),
                                      &dr->auth, &err);
    if (ok < 0) {
        dist_from_err(resp, err);
        return BARGE_HTTP_BODY_REFUSE;
    }
    if (ok == 0) {
        unauthorized(reg, req, dr, resp);
        return BARGE_HTTP_BODY_REFUSE;
    }
    if (!parsed) {
        dist_error(resp, 404, "NOT_FOUND", "no such endpoint of the distribution API", NULL);
        return BARGE_HTTP_BODY_REFUSE;
    }
    if (dr->path.name && !barge_registry_repo_name_valid(dr->path.name)) {
        dist_error(resp, 400, "NAME_INVALID", "invalid repository name",
                   json_pack("{s:s}", "name", dr->path.name));
        return BARGE_HTTP_BODY_REFUSE;
    }
    if (dr->auth.instance && !instance_allowed(reg, req, dr, resp))
        return BARGE_HTTP_BODY_REFUSE;
    if (!dr->auth.instance && !principal_allowed(reg, req, dr, resp))
        return BARGE_HTTP_BODY_REFUSE;
    if (dr->path.route == BARGE_REG_UPLOADS || dr->path.route == BARGE_REG_UPLOAD) {
        enum barge_http_body_mode mode = start_upload(reg, req, dr, resp);
        if (mode == BARGE_HTTP_BODY_REFUSE)
            release_upload(reg, dr, false);
        return mode;
    }
    return BARGE_HTTP_BODY_BUFFER;
}

int barge_registry_http_data(struct barge_registry *reg, struct barge_http_req *req,
                             const char *buf, size_t len)
{
    struct dist_req *dr = req->stream_ud;
    if (!dr || !dr->upload)
        return 0;
    if (barge_upload_write(dr->upload, buf, len, &dr->write_err) < 0)
        return -1;
    dr->received += len;
    return 0;
}

void barge_registry_http_done(struct barge_registry *reg, struct barge_http_req *req, bool handled)
{
    struct dist_req *dr = req->stream_ud;
    if (!dr)
        return;
    release_upload(reg, dr, handled);
    barge_registry_path_release(&dr->path);
    barge_registry_auth_release(&dr->auth);
    barge_error_free(dr->write_err);
    free(dr->digest);
    free(dr);
    req->stream_ud = NULL;
}

/* --- handlers --- */

static void serve_token(struct barge_registry *reg, struct dist_req *dr,
                        struct barge_http_resp *resp)
{
    time_t now = time(NULL), expires = dr->auth.expires;
    /* A token presented is handed back as it is, so that a bearer token never
     * outlives the credentials it came from; a key pair gets a new one. */
    _cleanup_free_ char *token =
        dr->auth.token ? barge_xstrdup(dr->auth.token)
                       : barge_registry_token_issue(reg, dr->auth.access_key_id, now, &expires);
    char issued[BARGE_ISOTIME_MAX];
    barge_isotime_format((double)now, 0, "Z", issued);
    json_t *body = json_pack("{s:s, s:s, s:I, s:s}", "token", token, "access_token", token,
                             "expires_in", (json_int_t)(expires - now), "issued_at", issued);
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_set(resp, 200, "application/json", text, strlen(text));
}

/* Reads n and last of a paginated listing; 0 with resp filled when invalid. */
static int paging(const struct barge_http_req *req, size_t *n, char **last,
                  struct barge_http_resp *resp)
{
    _cleanup_free_ char *ns = barge_http_req_query(req, "n");
    *last = barge_http_req_query(req, "last");
    *n = 1000;
    if (ns) {
        char *end;
        long long v = strtoll(ns, &end, 10);
        if (!*ns || *end || v < 0 || v > 10000) {
            free(*last);
            *last = NULL;
            dist_error(resp, 400, "PAGINATION_NUMBER_INVALID", "invalid number of results",
                       json_pack("{s:s}", "n", ns));
            return 0;
        }
        *n = (size_t)v;
    }
    return 1;
}

struct listing {
    json_t *items;
    size_t skip; /* length of the key prefix to drop */
    size_t max;
    bool more;
};

static int list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct listing *l = ud;
    if (json_array_size(l->items) == l->max) {
        l->more = true;
        return 1;
    }
    json_array_append_new(l->items, json_string(key + l->skip));
    return 0;
}

static void serve_list(struct barge_registry *reg, const struct barge_http_req *req,
                       const char *name, struct barge_http_resp *resp)
{
    size_t n;
    _cleanup_free_ char *last = NULL;
    if (!paging(req, &n, &last, resp))
        return;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    if (barge_store_begin(reg->store, false, &tx, &err) < 0 ||
        (name && barge_registry_repo_load(tx, name, &repo, &err) < 0)) {
        dist_from_err(resp, err);
        return;
    }
    _cleanup_free_ char *prefix = name ? barge_xasprintf("%s:", name) : barge_xstrdup("");
    _cleanup_free_ char *after = last ? barge_xasprintf("%s%s", prefix, last) : NULL;
    struct listing l = {.items = json_array(), .skip = strlen(prefix), .max = n};
    if (n > 0 && barge_store_scan(tx, name ? BARGE_REGISTRY_KIND_TAG : BARGE_REGISTRY_KIND_REPO,
                                  prefix, after, false, n + 1, list_one, &l, &err) < 0) {
        json_decref(l.items);
        dist_from_err(resp, err);
        return;
    }
    json_t *body = name ? json_pack("{s:s, s:o}", "name", name, "tags", l.items)
                        : json_pack("{s:o}", "repositories", l.items);
    if (l.more) {
        json_t *items = json_object_get(body, name ? "tags" : "repositories");
        const char *tail = json_string_value(json_array_get(items, json_array_size(items) - 1));
        _cleanup_free_ char *base =
            name ? barge_xasprintf("/v2/%s/tags/list", name) : barge_xstrdup("/v2/_catalog");
        _cleanup_free_ char *link =
            barge_xasprintf("<%s?n=%zu&last=%s>; rel=\"next\"", base, n, tail);
        barge_http_resp_header(resp, "Link", link);
    }
    char *text = barge_json_dump(body);
    json_decref(body);
    barge_http_resp_set(resp, 200, "application/json", text, strlen(text));
}

/* Splits a manifest reference into a tag or a digest; 0 with resp filled
 * when it is neither. */
static int reference(const char *ref, const char **tag, const char **digest,
                     struct barge_http_resp *resp)
{
    *tag = *digest = NULL;
    if (strchr(ref, ':')) {
        if (!digest_ok(ref, resp))
            return 0;
        *digest = ref;
        return 1;
    }
    if (!barge_registry_tag_valid(ref)) {
        dist_error(resp, 400, "TAG_INVALID", "invalid tag", json_pack("{s:s}", "tag", ref));
        return 0;
    }
    *tag = ref;
    return 1;
}

static void serve_manifest_get(struct barge_registry *reg, const char *name, const char *ref,
                               struct barge_http_resp *resp)
{
    const char *tag, *digest;
    if (!reference(ref, &tag, &digest, resp))
        return;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL, *img = NULL;
    int r;
    if (barge_store_begin(reg->store, false, &tx, &err) < 0 ||
        barge_registry_repo_load(tx, name, &repo, &err) < 0 ||
        (r = barge_registry_image_find(tx, name, tag, digest, &img, &err)) < 0) {
        dist_from_err(resp, err);
        return;
    }
    if (r == 0) {
        dist_error(resp, 404, "MANIFEST_UNKNOWN", "manifest unknown",
                   json_pack("{s:s}", tag ? "tag" : "digest", ref));
        return;
    }
    barge_store_abort(barge_steal(&tx));
    /* A pull is under way: its blobs count as used, so the collector will not
     * take them from under it even if the image goes meanwhile. */
    size_t i;
    json_t *b;
    pthread_rwlock_rdlock(&reg->gc_lock);
    json_array_foreach(barge_json_array(img, "blobs"), i, b)
        barge_blobstore_touch(reg->blobs, json_string_value(b));
    pthread_rwlock_unlock(&reg->gc_lock);
    json_t *m = json_object_get(img, "imageManifest");
    const char *d = barge_json_str(img, "imageDigest", "");
    _cleanup_free_ char *etag = barge_xasprintf("\"%s\"", d);
    barge_http_resp_set(resp, 200, barge_json_str(img, "imageManifestMediaType", ""),
                        barge_xstrndup(json_string_value(m), json_string_length(m)),
                        json_string_length(m));
    barge_http_resp_header(resp, "Docker-Content-Digest", d);
    barge_http_resp_header(resp, "ETag", etag);
}

static void serve_manifest_put(struct barge_registry *reg, const struct barge_http_req *req,
                               const char *name, const char *ref, struct barge_http_resp *resp)
{
    const char *tag, *digest;
    if (!reference(ref, &tag, &digest, resp))
        return;
    if (req->body_len == 0) {
        dist_error(resp, 400, "MANIFEST_INVALID", "empty manifest", NULL);
        return;
    }
    struct barge_registry_push p = {
        .repo = name,
        .manifest = req->body,
        .len = req->body_len,
        .media_type = barge_http_req_header(req, "Content-Type"),
        .tag = tag,
        .digest = digest,
    };
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_json_ json_t *img = NULL;
    if (barge_registry_image_put(reg, &p, &img, &err) < 0) {
        dist_from_err(resp, err);
        return;
    }
    const char *d = barge_json_str(img, "imageDigest", "");
    _cleanup_free_ char *loc = barge_xasprintf("/v2/%s/manifests/%s", name, d);
    resp->status = 201;
    barge_http_resp_header(resp, "Location", loc);
    barge_http_resp_header(resp, "Docker-Content-Digest", d);
    const char *subject = barge_json_str(img, "subject", NULL);
    if (subject)
        barge_http_resp_header(resp, "OCI-Subject", subject);
}

static void serve_manifest_delete(struct barge_registry *reg, const char *name, const char *ref,
                                  struct barge_http_resp *resp)
{
    const char *tag, *digest;
    if (!reference(ref, &tag, &digest, resp))
        return;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    int r;
    if (barge_store_begin(reg->store, true, &tx, &err) < 0 ||
        barge_registry_repo_load(tx, name, &repo, &err) < 0 ||
        (r = digest ? barge_registry_image_delete(tx, name, digest, &err)
                    : barge_registry_tag_remove(tx, name, tag, &err)) < 0 ||
        (r > 0 && barge_store_commit(barge_steal(&tx), &err) < 0)) {
        dist_from_err(resp, err);
        return;
    }
    if (r == 0) {
        dist_error(resp, 404, "MANIFEST_UNKNOWN", "manifest unknown",
                   json_pack("{s:s}", tag ? "tag" : "digest", ref));
        return;
    }
    barge_info("deleted %s '%s' from '%s'", digest ? "image" : "tag", ref, name);
    resp->status = 202;
}

static void serve_blob(struct barge_registry *reg, const struct barge_http_req *req,
                       const char *name, const char *digest, struct barge_http_resp *resp)
{
    if (!digest_ok(digest, resp) || !repo_exists(reg, name, resp))
        return;
    _cleanup_error_ struct barge_error *err = NULL;
    int fd = -1;
    uint64_t size = 0;
    if (barge_registry_blob_local(reg, digest, &size, &err) < 0) {
        dist_from_err(resp, err);
        return;
    }
    pthread_rwlock_rdlock(&reg->gc_lock);
    int r = barge_blobstore_open_blob(reg->blobs, digest, &fd, &size, &err);
    pthread_rwlock_unlock(&reg->gc_lock);
    if (r < 0) {
        dist_from_err(resp, err);
        return;
    }
    if (r == 0) {
        dist_error(resp, 404, "BLOB_UNKNOWN", "blob unknown to registry",
                   json_pack("{s:s}", "digest", digest));
        return;
    }
    uint64_t start = 0, end = size ? size - 1 : 0;
    int rr = barge_registry_range_parse(barge_http_req_header(req, "Range"), size, &start, &end);
    if (rr < 0) {
        close(fd);
        char cr[48];
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
        barge_http_resp_header(resp, "Content-Range", cr);
        dist_error(resp, 416, "BLOB_UNKNOWN", "requested range not satisfiable", NULL);
        return;
    }
    _cleanup_free_ char *etag = barge_xasprintf("\"%s\"", digest);
    resp->status = 200;
    if (rr > 0) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)start,
                 (unsigned long long)end, (unsigned long long)size);
        barge_http_resp_header(resp, "Content-Range", cr);
        resp->status = 206;
    }
    barge_http_resp_header(resp, "Content-Type", "application/octet-stream");
    barge_http_resp_header(resp, "Docker-Content-Digest", digest);
    barge_http_resp_header(resp, "Accept-Ranges", "bytes");
    barge_http_resp_header(resp, "ETag", etag);
    resp->fd = fd;
    resp->fd_offset = (off_t)start;
    resp->fd_len = size ? (size_t)(end - start + 1) : 0;
}

/* POST /v2/<name>/blobs/uploads/: a mount, a monolithic upload or the start
 * of a chunked one. */
static void serve_uploads(struct barge_registry *reg, const struct barge_http_req *req,
                          struct dist_req *dr, struct barge_http_resp *resp)
{
    const char *name = dr->path.name;
    _cleanup_error_ struct barge_error *err = NULL;
    if (dr->monolithic) {
        if (dr->write_err) {
            dist_from_err(resp, dr->write_err);
            return;
        }
        if (commit_upload(reg, dr->upload, dr->digest, &err) < 0) {
            if (err->code == BARGE_ERR_INVALID)
                dist_error(resp, 400, "DIGEST_INVALID", err->message,
                           json_pack("{s:s}", "digest", dr->digest));
            else
                dist_from_err(resp, err);
            return;
        }
        blob_created(resp, name, dr->digest);
        return;
    }
    if (!repo_exists(reg, name, resp))
        return;
    _cleanup_free_ char *mount = barge_http_req_query(req, "mount");
    _cleanup_free_ char *from = barge_http_req_query(req, "from");
    /* A mount that cannot be done becomes an ordinary upload, as the spec
     * asks. Blobs are shared by every repository of the registry, so a mount
     * only needs the blob and a real source repository. */
    if (mount && barge_digest_check(mount) == BARGE_DIGEST_OK && from &&
        barge_registry_repo_name_valid(from)) {
        uint64_t size;
        if (repo_lookup(reg, from, &err) == 1 &&
            barge_registry_blob_local(reg, mount, &size, &err) > 0) {
            pthread_rwlock_rdlock(&reg->gc_lock);
            if (barge_blobstore_stat(reg->blobs, mount, &size, &err) > 0) {
                barge_blobstore_touch(reg->blobs, mount);
                blob_created(resp, name, mount);
            }
            pthread_rwlock_unlock(&reg->gc_lock);
        }
        barge_error_free(barge_steal(&err));
        if (resp->status == 201)
            return;
    }
    char id[37];
    if (barge_blobstore_upload_new(reg->blobs, name, id, &err) < 0) {
        dist_from_err(resp, err);
        return;
    }
    resp->status = 202;
    upload_headers(resp, name, id, 0);
}

static void serve_upload(struct barge_registry *reg, const struct barge_http_req *req,
                         struct dist_req *dr, struct barge_http_resp *resp)
{
    const char *name = dr->path.name, *id = dr->path.ref;
    _cleanup_error_ struct barge_error *err = NULL;
    if (dr->write_err) {
        dist_from_err(resp, dr->write_err);
        return;
    }
    if (dr->has_range && dr->received != dr->range_end - dr->range_start + 1) {
        upload_headers(resp, name, id, barge_upload_size(dr->upload));
        dist_error(resp, 416, "BLOB_UPLOAD_INVALID",
                   "the chunk's length does not match its Content-Range", NULL);
        return;
    }
    if (method_is(req, "GET")) {
        resp->status = 204;
        upload_headers(resp, name, id, barge_upload_size(dr->upload));
    } else if (method_is(req, "PATCH")) {
        resp->status = 202;
        upload_headers(resp, name, id, barge_upload_size(dr->upload));
    } else if (method_is(req, "PUT")) {
        if (commit_upload(reg, dr->upload, dr->digest, &err) < 0) {
            if (err->code == BARGE_ERR_INVALID)
                dist_error(resp, 400, "DIGEST_INVALID", err->message,
                           json_pack("{s:s}", "digest", dr->digest));
            else
                dist_from_err(resp, err);
            return;
        }
        blob_created(resp, name, dr->digest);
    } else if (method_is(req, "DELETE")) {
        barge_blobstore_upload_cancel(reg->blobs, dr->upload);
        resp->status = 204;
    } else {
        dist_error(resp, 405, "UNSUPPORTED", "method not allowed", NULL);
    }
}

void barge_registry_http_handle(struct barge_registry *reg, struct barge_http_req *req,
                                struct barge_http_resp *resp)
{
    struct dist_req *dr = req->stream_ud;
    set_common(resp);
    if (!dr) {
        dist_error(resp, 500, "UNKNOWN", "request was not set up", NULL);
        return;
    }
    bool get = method_is(req, "GET") || method_is(req, "HEAD");
    const char *name = dr->path.name, *ref = dr->path.ref;
    switch (dr->path.route) {
    case BARGE_REG_BASE:
        if (get) {
            barge_http_resp_set(resp, 200, "application/json", barge_xstrdup("{}"), 2);
            return;
        }
        break;
    case BARGE_REG_TOKEN:
        if (get) {
            serve_token(reg, dr, resp);
            return;
        }
        break;
    case BARGE_REG_CATALOG:
        if (get) {
            serve_list(reg, req, NULL, resp);
            return;
        }
        break;
    case BARGE_REG_TAGS:
        if (get) {
            serve_list(reg, req, name, resp);
            return;
        }
        break;
    case BARGE_REG_MANIFEST:
        if (get) {
            serve_manifest_get(reg, name, ref, resp);
            return;
        }
        if (method_is(req, "PUT")) {
            serve_manifest_put(reg, req, name, ref, resp);
            return;
        }
        if (method_is(req, "DELETE")) {
            serve_manifest_delete(reg, name, ref, resp);
            return;
        }
        break;
    case BARGE_REG_BLOB:
        if (get) {
            serve_blob(reg, req, name, ref, resp);
            return;
        }
        if (method_is(req, "DELETE")) {
            dist_error(resp, 405, "UNSUPPORTED",
                       "blobs are not deleted directly: delete the images, and unreferenced "
                       "blobs are garbage-collected",
                       NULL);
            return;
        }
        break;
    case BARGE_REG_UPLOADS:
        if (method_is(req, "POST")) {
            serve_uploads(reg, req, dr, resp);
            release_upload(reg, dr, true);
            return;
        }
        break;
    case BARGE_REG_UPLOAD:
        serve_upload(reg, req, dr, resp);
        release_upload(reg, dr, true);
        return;
    }
    dist_error(resp, 405, "UNSUPPORTED", "method not allowed", NULL);
}
