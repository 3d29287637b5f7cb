/* An S3 subset (REST-XML) for what an ECS stack keeps in S3, environment
 * files above all: buckets (Create, Delete, Head, List, GetBucketLocation),
 * objects (Put, Get with Range, Head, Delete, DeleteObjects, Copy,
 * ListObjects v1 and v2) and multipart uploads (what `aws s3 cp` uses for
 * files over 8 MB). Requests are addressed path style (/bucket/key), or
 * virtual-host style (bucket.<--s3-host>/key), and signed with SigV4 (header
 * or presigned query, S3's canonicalisation, aws-chunked bodies with signed or
 * unsigned chunks and trailing checksums).
 *
 * Object bytes are files under <data_dir>/s3/objects, one per object version
 * written, named by a random id: written to <data_dir>/s3/tmp, fsynced and
 * renamed before the metadata (kind "s3object", key "<bucket>/<key>") that
 * points at it is committed, so a reader sees either the old or the new object
 * in full. A replaced file is removed after the commit. Buckets are kind
 * "s3bucket"; multipart uploads "s3upload" with their parts as files under
 * <data_dir>/s3/uploads/<id>/. */
#include "api/s3.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/access.h"
#include "api/api.h"
#include "api/secrets.h"
#include "api/xml.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/isotime.h"
#include "common/json.h"
#include "common/log.h"

#define KIND_BUCKET    "s3bucket"
#define KIND_OBJECT    "s3object"
#define KIND_UPLOAD    "s3upload"
#define XMLNS          "http://s3.amazonaws.com/doc/2006-03-01/"
#define MAX_KEY_LEN    1024
#define MAX_LIST_KEYS  1000
#define MAX_PARTS      10000
#define MIN_PART_BYTES (5 * 1024 * 1024)

struct s3_req {
    struct barge_http_req *http;
    struct barge_http_resp *resp;
    struct barge_server *srv;
    struct barge_sigv4_identity who;
    char *bucket; /* NULL: the service itself */
    char *key;    /* NULL: the bucket itself */
};

/* --- text helpers -------------------------------------------------------- */

/* URL-encodes s as S3's encoding-type=url does (keeps '/'). */
static char *url_encode(const char *s)
{
    struct barge_buf b = {0};
    barge_buf_adds(&b, "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~/", *p))
            barge_buf_addn(&b, (const char *)p, 1);
        else
            barge_buf_addf(&b, "%%%02X", *p);
    }
    return b.data;
}

static void time_http(double t, char out[40])
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static bool parse_http_time(const char *s, double *out)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
    if (!end || *end)
        return false;
    *out = (double)timegm(&tm);
    return true;
}

/* The text of the first <tag>...</tag> in xml from *pos on, entities
 * decoded; moves *pos past it. NULL when there is none. */
static char *xml_next(const char *xml, const char *tag, const char **pos)
{
    _cleanup_free_ char *open = barge_xasprintf("<%s>", tag);
    _cleanup_free_ char *close = barge_xasprintf("</%s>", tag);
    const char *a = strstr(*pos ? *pos : xml, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *z = strstr(a, close);
    if (!z)
        return NULL;
    *pos = z + strlen(close);
    struct barge_buf b = {0};
    barge_buf_adds(&b, "");
    for (const char *p = a; p < z; p++) {
        if (*p != '&') {
            barge_buf_addn(&b, p, 1);
            continue;
        }
        static const char *ents[][2] = {
            {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
        bool done = false;
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(ents) && !done; i++) {
            size_t n = strlen(ents[i][0]);
            if ((size_t)(z - p) >= n && strncmp(p, ents[i][0], n) == 0) {
                barge_buf_adds(&b, ents[i][1]);
                p += n - 1;
                done = true;
            }
        }
        if (!done && p[1] == '#') {
            char *semi = memchr(p, ';', (size_t)(z - p));
            long c = semi ? strtol(p + 2 + (p[2] == 'x'), NULL, p[2] == 'x' ? 16 : 10) : -1;
            if (c > 0 && c < 128) {
                char ch = (char)c;
                barge_buf_addn(&b, &ch, 1);
                p = semi;
                done = true;
            }
        }
        if (!done)
            barge_buf_addn(&b, p, 1);
    }
    return b.data;
}

/* --- responses ----------------------------------------------------------- */

struct code_status {
    const char *code;
    int status;
};

static const struct code_status statuses[] = {
    {"NoSuchBucket", 404},         {"NoSuchKey", 404},
    {"NoSuchUpload", 404},         {"BucketAlreadyOwnedByYou", 409},
    {"BucketAlreadyExists", 409},  {"BucketNotEmpty", 409},
    {"InvalidRange", 416},         {"MethodNotAllowed", 405},
    {"NotImplemented", 501},       {"AccessDenied", 403},
    {"InvalidAccessKeyId", 403},   {"SignatureDoesNotMatch", 403},
    {"RequestTimeTooSkewed", 403}, {"PreconditionFailed", 412},
    {"MissingContentLength", 411}, {"InternalError", 500},
};

static int code_status(const char *code)
{
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(statuses); i++)
        if (strcmp(statuses[i].code, code) == 0)
            return statuses[i].status;
    return 400;
}

/* The S3 code for an error raised below or by the shared layers (SigV4,
 * access checks, the store). */
static const char *error_code(const struct barge_error *err, bool presigned)
{
    switch (err->code) {
    case BARGE_ERR_AUTH_MISSING:
    case BARGE_ERR_ACCESS_DENIED:
        return "AccessDenied";
    case BARGE_ERR_AUTH_UNKNOWN_KEY:
        return "InvalidAccessKeyId";
    case BARGE_ERR_AUTH_INCOMPLETE:
        return presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed";
    case BARGE_ERR_AUTH_EXPIRED:
        return presigned ? "AccessDenied" : "ExpiredToken";
    case BARGE_ERR_AUTH_SIGNATURE:
        if (err->type)
            return err->type;
        return strstr(err->message, "Signature expired") || strstr(err->message, "in the future")
                   ? "RequestTimeTooSkewed"
                   : "SignatureDoesNotMatch";
    case BARGE_ERR_INTERNAL:
    case BARGE_ERR_IO:
        return "InternalError";
    default:
        return err->type ? err->type : "InvalidRequest";
    }
}

static void reply_error(struct s3_req *r, const struct barge_error *err)
{
    bool presigned = strstr(r->http->raw_query, "X-Amz-Signature=") != NULL;
    const char *code = error_code(err, presigned);
    int status = code_status(code);
    const char *msg =
        status == 500 ? "We encountered an internal error. Please try again." : err->message;
    if (status == 500)
        barge_err("s3 %s %s failed: %s (%s:%d)", r->http->method, r->http->path, err->message,
                  err->file, err->line);
    else
        barge_debug("s3 %s %s rejected: %s %s", r->http->method, r->http->path, code, err->message);
    struct barge_buf b = {0};
    barge_buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    barge_xml_elem(&b, "Code", code);
    barge_xml_elem(&b, "Message", msg);
    if (r->key)
        barge_xml_elem(&b, "Key", r->key);
    if (r->bucket && (strcmp(code, "NoSuchBucket") == 0 || strcmp(code, "BucketNotEmpty") == 0 ||
                      strcmp(code, "BucketAlreadyOwnedByYou") == 0))
        barge_xml_elem(&b, "BucketName", r->bucket);
    barge_xml_elem(&b, "RequestId", r->http->request_id);
    barge_buf_adds(&b, "</Error>");
    barge_http_resp_set(r->resp, status, "application/xml", b.data, b.len);
}

static void reply_xml(struct s3_req *r, int status, struct barge_buf *b)
{
    barge_http_resp_set(r->resp, status, "application/xml", b->data, b->len);
    b->data = NULL;
}

static void reply_empty(struct s3_req *r, int status)
{
    barge_http_resp_set(r->resp, status, NULL, NULL, 0);
}

static int s3_err(struct barge_error **err, const char *code, const char *fmt, ...)
    BARGE_PRINTF(3, 4);
static int s3_err(struct barge_error **err, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    enum barge_errcode ec = code_status(code) == 404   ? BARGE_ERR_NOT_FOUND
                            : code_status(code) == 409 ? BARGE_ERR_CONFLICT
                                                       : BARGE_ERR_INVALID;
    return barge_error_set_type(err, ec, code, "%s", msg);
}

/* --- storage ------------------------------------------------------------- */

static char *s3_path(const struct s3_req *r, const char *fmt, ...) BARGE_PRINTF(2, 3);
static char *s3_path(const struct s3_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *rel = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_xasprintf("%s/s3/%s", r->srv->cfg.data_dir, rel);
}

static char *object_file(const struct s3_req *r, const char *id)
{
    return s3_path(r, "objects/%.2s/%s", id, id);
}

static char *object_key(const char *bucket, const char *key)
{
    return barge_xasprintf("%s/%s", bucket, key);
}

static void md5_hex(const unsigned char md[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A new object file: written under tmp/ (in pieces, so that large objects
 * never sit in memory whole), fsynced, renamed to objects/ by obj_finish. */
struct obj_writer {
    int fd;
    char id[33];
    char *tmp;
};

static int obj_begin(const struct s3_req *r, struct obj_writer *w, struct barge_error **err)
{
    barge_id_hex32(w->id);
    _cleanup_free_ char *tmpdir = s3_path(r, "tmp");
    if (barge_mkdir_p(tmpdir, 0700) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", tmpdir);
    w->tmp = barge_xasprintf("%s/%s", tmpdir, w->id);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", w->tmp);
        free(w->tmp);
        w->tmp = NULL;
        return -1;
    }
    return 0;
}

static void obj_abort(struct obj_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    free(w->tmp);
    w->fd = -1;
    w->tmp = NULL;
}

static int obj_write(struct obj_writer *w, const char *data, size_t len, struct barge_error **err)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = write(w->fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", w->tmp);
            obj_abort(w);
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Appends the bytes of the file at path. */
static int obj_copy_from(struct obj_writer *w, const char *path, struct barge_error **err)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s'", path);
        obj_abort(w);
        return -1;
    }
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
            close(in);
            obj_abort(w);
            return -1;
        }
        if (n == 0)
            break;
        if (obj_write(w, buf, (size_t)n, err) < 0) {
            close(in);
            return -1;
        }
    }
    close(in);
    return 0;
}

/* With several barged on one store, an object's bytes are also kept in the
 * store (store.h's byte strings, named "s3/<file id>"), so that any barged can
 * serve an object whichever one stored it: copied in before the object is
 * acknowledged, fetched into the local file on a barged that lacks it. */
static char *shared_name(const char *id)
{
    return barge_xasprintf("s3/%s", id);
}

static int share_object_file(const struct s3_req *r, const char *id, const char *path,
                             struct barge_error **err)
{
    if (!barge_store_shared(r->srv->store))
        return 0;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s'", path);
    /* The object's document, written after this, is what makes the chunks
     * visible. */
    _cleanup_free_ char *name = shared_name(id);
    if (barge_store_bytes_write_fd(r->srv->store, name, fd, err) < 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* Brings the store's copy of object file id here: 1 done, 0 when the store
 * has none (or is not shared), -1 on error. */
static int fetch_object_file(const struct s3_req *r, const char *id, struct barge_error **err)
{
    if (!barge_store_shared(r->srv->store))
        return 0;
    _cleanup_free_ char *dir = s3_path(r, "objects/%.2s", id);
    _cleanup_free_ char *tmpdir = s3_path(r, "tmp");
    if (barge_mkdir_p(dir, 0700) < 0 || barge_mkdir_p(tmpdir, 0700) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", dir);
    char rnd[33];
    barge_id_hex32(rnd);
    _cleanup_free_ char *tmp = barge_xasprintf("%s/%s", tmpdir, rnd);
    _cleanup_free_ char *final = object_file(r, id);
    _cleanup_free_ char *name = shared_name(id);
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", tmp);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    uint64_t size;
    int got = barge_store_begin(r->srv->store, false, &tx, err) < 0
                  ? -1
                  : barge_store_bytes_to_fd(tx, name, fd, &size, err);
    if (got > 0 && (fsync(fd) < 0 || rename(tmp, final) < 0))
        got = barge_error_set_errno(err, BARGE_ERR_IO, "cannot store '%s'", final);
    if (got <= 0)
        unlink(tmp);
    return got;
}

static int obj_finish(const struct s3_req *r, struct obj_writer *w, struct barge_error **err)
{
    _cleanup_free_ char *dir = s3_path(r, "objects/%.2s", w->id);
    _cleanup_free_ char *final = object_file(r, w->id);
    if (barge_mkdir_p(dir, 0700) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", dir);
        obj_abort(w);
        return -1;
    }
    int fd = w->fd;
    w->fd = -1;
    if (fsync(fd) < 0 || close(fd) < 0 || rename(w->tmp, final) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot store '%s'", final);
        obj_abort(w);
        return -1;
    }
    free(w->tmp);
    w->tmp = NULL;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return share_object_file(r, w->id, final, err);
}

/* A whole object from one buffer. */
static int write_object_file(const struct s3_req *r, const char *data, size_t len, char id[33],
                             struct barge_error **err)
{
    struct obj_writer w = {.fd = -1};
    if (obj_begin(r, &w, err) < 0 || obj_write(&w, data, len, err) < 0 ||
        obj_finish(r, &w, err) < 0)
        return -1;
    memcpy(id, w.id, 33);
    return 0;
}

static void remove_object_file(const struct s3_req *r, const char *id)
{
    if (!id || !*id)
        return;
    _cleanup_free_ char *path = object_file(r, id);
    if (unlink(path) < 0 && errno != ENOENT)
        barge_warn("s3: cannot remove '%s': %s", path, strerror(errno));
    if (!barge_store_shared(r->srv->store))
        return;
    _cleanup_error_ struct barge_error *err = NULL;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *name = shared_name(id);
    if (barge_store_begin(r->srv->store, true, &tx, &err) < 0 ||
        barge_store_bytes_del(tx, name, &err) < 0 || barge_store_commit(barge_steal(&tx), &err) < 0)
        barge_warn("s3: cannot remove the store's copy of '%s': %s", id, err->message);
}

static int load_bucket(struct s3_req *r, struct barge_tx *tx, json_t **doc,
                       struct barge_error **err)
{
    int n = barge_store_get(tx, KIND_BUCKET, r->bucket, doc, err);
    if (n < 0)
        return -1;
    if (n == 0)
        return s3_err(err, "NoSuchBucket", "The specified bucket does not exist");
    return 0;
}

static char *bucket_arn(const char *bucket)
{
    return barge_xasprintf("arn:aws:s3:::%s", bucket);
}

static char *object_arn(const char *bucket, const char *key)
{
    return barge_xasprintf("arn:aws:s3:::%s/%s", bucket, key);
}

static int authorize(struct s3_req *r, const char *action, struct barge_error **err)
{
    _cleanup_free_ char *arn = r->key      ? object_arn(r->bucket, r->key)
                               : r->bucket ? bucket_arn(r->bucket)
                                           : barge_xstrdup("arn:aws:s3:::*");
    return barge_api_authorize(r->srv, &r->who, action, arn, err);
}

static bool query_has(const struct s3_req *r, const char *name)
{
    _cleanup_free_ char *v = barge_http_req_query(r->http, name);
    return v != NULL;
}

/* --- buckets ------------------------------------------------------------- */

static bool bucket_name_valid(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
        return false;
    if (b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-' || strstr(b, "..") ||
        barge_str_has_prefix(b, "xn--") || barge_str_has_suffix(b, "-s3alias"))
        return false;
    int dots = 0;
    bool digits_only = true;
    for (const char *p = b; *p; p++) {
        dots += *p == '.';
        if (*p != '.' && (*p < '0' || *p > '9'))
            digits_only = false;
    }
    return !(dots == 3 && digits_only);
}

static int list_buckets(struct s3_req *r, struct barge_error **err);

struct bucket_list {
    struct barge_buf *b;
    const char *prefix;
};

static int add_bucket(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct bucket_list *l = ud;
    if (l->prefix && !barge_str_has_prefix(key, l->prefix))
        return 0;
    char ts[BARGE_ISOTIME_MAX];
    barge_isotime_format(json_number_value(json_object_get(doc, "created")), 3, "Z", ts);
    barge_buf_adds(l->b, "<Bucket>");
    barge_xml_elem(l->b, "Name", key);
    barge_xml_elem(l->b, "CreationDate", ts);
    barge_xml_elem(l->b, "BucketRegion", barge_json_str(doc, "region", ""));
    barge_buf_adds(l->b, "</Bucket>");
    return 0;
}

static int list_buckets(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:ListAllMyBuckets", err) < 0)
        return -1;
    _cleanup_free_ char *prefix = barge_http_req_query(r->http, "prefix");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    struct barge_buf b = {0};
    barge_buf_adds(
        &b,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"" XMLNS "\">");
    barge_buf_addf(&b, "<Owner><ID>%s</ID><DisplayName>barge</DisplayName></Owner><Buckets>",
                   r->srv->cfg.account_id);
    struct bucket_list l = {&b, prefix};
    if (barge_store_begin(r->srv->store, false, &tx, err) < 0 ||
        barge_store_scan(tx, KIND_BUCKET, "", NULL, false, 0, add_bucket, &l, err) < 0) {
        free(b.data);
        return -1;
    }
    barge_buf_adds(&b, "</Buckets></ListAllMyBucketsResult>");
    reply_xml(r, 200, &b);
    return 0;
}

static int create_bucket(struct s3_req *r, struct barge_error **err)
{
    if (!bucket_name_valid(r->bucket))
        return s3_err(err, "InvalidBucketName", "The specified bucket is not valid.");
    /* These would collide with barged's own routes in path style. */
    if (strcmp(r->bucket, "agent") == 0 || strcmp(r->bucket, "v2") == 0 ||
        strcmp(r->bucket, "metrics") == 0)
        return s3_err(err, "InvalidBucketName",
                      "The bucket name '%s' is reserved for barged's own endpoints.", r->bucket);
    if (authorize(r, "s3:CreateBucket", err) < 0)
        return -1;
    const char *region = r->who.region;
    _cleanup_free_ char *constraint = NULL;
    if (r->http->body_len > 0) {
        const char *pos = NULL;
        constraint = xml_next(r->http->body, "LocationConstraint", &pos);
        if (!strstr(r->http->body, "CreateBucketConfiguration"))
            return s3_err(err, "MalformedXML",
                          "The XML you provided was not well-formed or did not validate against "
                          "our published schema");
        if (constraint && *constraint)
            region = constraint;
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(r->srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_BUCKET, r->bucket, &doc, err) < 0)
        return -1;
    if (doc)
        return s3_err(err, "BucketAlreadyOwnedByYou",
                      "Your previous request to create the named bucket succeeded and you "
                      "already own it.");
    doc = json_pack("{s:s, s:f}", "region", region, "created", barge_now());
    if (barge_store_put(tx, KIND_BUCKET, r->bucket, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("s3: created bucket %s (%s)", r->bucket, region);
    _cleanup_free_ char *loc = barge_xasprintf("/%s", r->bucket);
    barge_http_resp_header(r->resp, "Location", loc);
    reply_empty(r, 200);
    return 0;
}

struct any {
    bool found;
};

static int found_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    ((struct any *)ud)->found = true;
    return 1;
}

static int delete_bucket(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:DeleteBucket", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", r->bucket);
    struct any objects = {false};
    if (barge_store_begin(r->srv->store, true, &tx, err) < 0 || load_bucket(r, tx, &doc, err) < 0 ||
        barge_store_scan(tx, KIND_OBJECT, prefix, NULL, false, 1, found_one, &objects, err) < 0)
        return -1;
    if (objects.found)
        return s3_err(err, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    if (barge_store_del(tx, KIND_BUCKET, r->bucket, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("s3: deleted bucket %s", r->bucket);
    reply_empty(r, 204);
    return 0;
}

static int head_bucket(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:ListBucket", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(r->srv->store, false, &tx, err) < 0 || load_bucket(r, tx, &doc, err) < 0)
        return -1;
    barge_http_resp_header(r->resp, "x-amz-bucket-region", barge_json_str(doc, "region", ""));
    reply_empty(r, 200);
    return 0;
}

static int bucket_location(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:GetBucketLocation", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(r->srv->store, false, &tx, err) < 0 || load_bucket(r, tx, &doc, err) < 0)
        return -1;
    const char *region = barge_json_str(doc, "region", "");
    struct barge_buf b = {0};
    barge_buf_adds(
        &b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"" XMLNS "\">");
    /* us-east-1 is the empty constraint, for historical reasons. */
    if (strcmp(region, "us-east-1") != 0)
        barge_xml_text(&b, region);
    barge_buf_adds(&b, "</LocationConstraint>");
    reply_xml(r, 200, &b);
    return 0;
}

/* --- listing ------------------------------------------------------------- */

struct listing {
    const char *bucket;
    const char *prefix;
    const char *delimiter;
    int max;
    bool url;
    bool owner;
    const char *account;
    struct barge_buf *contents;
    struct barge_buf *prefixes;
    int count;
    char *last;    /* token of the last entry returned: "K<key>" or "P<prefix>" */
    char *last_cp; /* the last common prefix returned */
    bool truncated;
};

static void add_key_elem(struct listing *l, struct barge_buf *b, const char *tag, const char *v)
{
    if (l->url) {
        _cleanup_free_ char *e = url_encode(v);
        barge_xml_elem(b, tag, e);
    } else {
        barge_xml_elem(b, tag, v);
    }
}

static int list_entry(const char *skey, json_t *doc, void *ud, struct barge_error **err)
{
    struct listing *l = ud;
    const char *key = skey + strlen(l->bucket) + 1;
    const char *rel = key + strlen(l->prefix);
    const char *d = l->delimiter && *l->delimiter ? strstr(rel, l->delimiter) : NULL;
    _cleanup_free_ char *cp =
        d ? barge_xstrndup(key, (size_t)(d - key) + strlen(l->delimiter)) : NULL;
    if (cp && l->last_cp && strcmp(cp, l->last_cp) == 0)
        return 0;
    if (l->count == l->max) {
        l->truncated = true;
        return 1;
    }
    l->count++;
    free(l->last);
    if (cp) {
        add_key_elem(l, l->prefixes, "Prefix", cp);
        l->last = barge_xasprintf("P%s", cp);
        free(l->last_cp);
        l->last_cp = barge_steal(&cp);
        return 0;
    }
    l->last = barge_xasprintf("K%s", key);
    char ts[BARGE_ISOTIME_MAX];
    barge_isotime_format(json_number_value(json_object_get(doc, "lastModified")), 3, "Z", ts);
    barge_buf_adds(l->contents, "<Contents>");
    add_key_elem(l, l->contents, "Key", key);
    barge_xml_elem(l->contents, "LastModified", ts);
    _cleanup_free_ char *etag = barge_xasprintf("\"%s\"", barge_json_str(doc, "etag", ""));
    barge_xml_elem(l->contents, "ETag", etag);
    barge_buf_addf(l->contents, "<Size>%lld</Size><StorageClass>STANDARD</StorageClass>",
                   (long long)barge_json_int(doc, "size", 0));
    if (l->owner)
        barge_buf_addf(l->contents, "<Owner><ID>%s</ID><DisplayName>barge</DisplayName></Owner>",
                       l->account);
    barge_buf_adds(l->contents, "</Contents>");
    return 0;
}

static int list_objects(struct s3_req *r, bool v2, struct barge_error **err)
{
    if (authorize(r, "s3:ListBucket", err) < 0)
        return -1;
    _cleanup_free_ char *prefix = barge_http_req_query(r->http, "prefix");
    _cleanup_free_ char *delim = barge_http_req_query(r->http, "delimiter");
    _cleanup_free_ char *max_s = barge_http_req_query(r->http, "max-keys");
    _cleanup_free_ char *enc = barge_http_req_query(r->http, "encoding-type");
    _cleanup_free_ char *token = barge_http_req_query(r->http, "continuation-token");
    _cleanup_free_ char *start = barge_http_req_query(r->http, v2 ? "start-after" : "marker");
    _cleanup_free_ char *fetch_owner = barge_http_req_query(r->http, "fetch-owner");
    int max = MAX_LIST_KEYS;
    if (max_s) {
        char *end;
        long m = strtol(max_s, &end, 10);
        if (!*max_s || *end || m < 0)
            return s3_err(err, "InvalidArgument",
                          "Provided max-keys not an integer or within "
                          "integer range");
        max = m > MAX_LIST_KEYS ? MAX_LIST_KEYS : (int)m;
    }
    if (enc && strcmp(enc, "url") != 0)
        return s3_err(err, "InvalidArgument", "Invalid Encoding Method specified in Request");
    /* Where to resume: a continuation token is "K<key>" or "P<prefix>"
     * base64url-encoded; after a common prefix, skip everything under it. */
    _cleanup_free_ char *after = NULL;
    if (token) {
        _cleanup_free_ char *t = NULL;
        struct barge_error *bad = NULL;
        if (barge_api_token_decode(*token ? token : NULL, &t, &bad) < 0 || !t ||
            (t[0] != 'K' && t[0] != 'P')) {
            barge_error_free(bad);
            return s3_err(err, "InvalidArgument", "The continuation token provided is incorrect");
        }
        after = t[0] == 'P' ? barge_xasprintf("%s/%s\xff", r->bucket, t + 1)
                            : barge_xasprintf("%s/%s", r->bucket, t + 1);
    } else if (start && *start) {
        /* A v1 marker may be a common prefix the last page ended on. */
        bool cp = !v2 && delim && *delim && barge_str_has_suffix(start, delim);
        after = barge_xasprintf("%s/%s%s", r->bucket, start, cp ? "\xff" : "");
    }
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(r->srv->store, false, &tx, err) < 0 || load_bucket(r, tx, &doc, err) < 0)
        return -1;
    struct barge_buf contents = {0}, prefixes = {0};
    barge_buf_adds(&contents, "");
    barge_buf_adds(&prefixes, "");
    struct listing l = {.bucket = r->bucket,
                        .prefix = prefix ? prefix : "",
                        .delimiter = delim,
                        .max = max,
                        .url = enc != NULL,
                        .owner = !v2 || (fetch_owner && strcmp(fetch_owner, "true") == 0),
                        .account = r->srv->cfg.account_id,
                        .contents = &contents,
                        .prefixes = &prefixes};
    _cleanup_free_ char *scan_prefix = barge_xasprintf("%s/%s", r->bucket, l.prefix);
    int rc = max == 0 ? 0
                      : barge_store_scan(tx, KIND_OBJECT, scan_prefix, after, false, 0, list_entry,
                                         &l, err);
    if (rc < 0) {
        free(contents.data);
        free(prefixes.data);
        free(l.last);
        free(l.last_cp);
        return -1;
    }
    struct barge_buf b = {0};
    barge_buf_adds(
        &b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"" XMLNS "\">");
    barge_xml_elem(&b, "Name", r->bucket);
    add_key_elem(&l, &b, "Prefix", l.prefix);
    if (delim)
        add_key_elem(&l, &b, "Delimiter", delim);
    barge_buf_addf(&b, "<MaxKeys>%d</MaxKeys>", max);
    if (enc)
        barge_xml_elem(&b, "EncodingType", enc);
    barge_buf_addf(&b, "<IsTruncated>%s</IsTruncated>", l.truncated ? "true" : "false");
    if (v2) {
        barge_buf_addf(&b, "<KeyCount>%d</KeyCount>", l.count);
        if (token)
            barge_xml_elem(&b, "ContinuationToken", token);
        if (start)
            add_key_elem(&l, &b, "StartAfter", start);
        if (l.truncated && l.last) {
            _cleanup_free_ char *next = barge_api_token_encode(l.last);
            barge_xml_elem(&b, "NextContinuationToken", next);
        }
    } else {
        add_key_elem(&l, &b, "Marker", start ? start : "");
        if (l.truncated && l.last && delim)
            add_key_elem(&l, &b, "NextMarker", l.last + 1);
    }
    barge_buf_adds(&b, contents.data);
    if (prefixes.len) {
        /* Each common prefix is its own element. */
        const char *p = prefixes.data;
        const char *pos = NULL;
        char *one;
        while ((one = xml_next(p, "Prefix", &pos))) {
            barge_buf_adds(&b, "<CommonPrefixes>");
            barge_xml_elem(&b, "Prefix", one);
            barge_buf_adds(&b, "</CommonPrefixes>");
            free(one);
        }
    }
    barge_buf_adds(&b, "</ListBucketResult>");
    free(contents.data);
    free(prefixes.data);
    free(l.last);
    free(l.last_cp);
    reply_xml(r, 200, &b);
    return 0;
}

/* --- objects: write ------------------------------------------------------ */

/* The body as the client meant it: aws-chunked decoded (signed chunks
 * checked), sizes checked. *data borrows the request body or is newly
 * allocated (*owned). Trailing checksum headers end up in *trailers. */
static int payload(struct s3_req *r, const char **data, size_t *len, char **owned,
                   json_t **trailers, struct barge_error **err)
{
    *owned = NULL;
    *trailers = NULL;
    *data = r->http->body;
    *len = r->http->body_len;
    const char *sha = barge_http_req_header(r->http, "x-amz-content-sha256");
    const char *ce = barge_http_req_header(r->http, "Content-Encoding");
    bool chunked =
        (sha && barge_str_has_prefix(sha, "STREAMING-")) || (ce && strstr(ce, "aws-chunked"));
    if (!chunked)
        return 0;
    struct barge_s3_chunk_signer signer = {0};
    bool is_signed = sha && barge_str_has_prefix(sha, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    if (is_signed) {
        /* Chunk signatures chain from the request's, with its key. */
        const char *auth = barge_http_req_header(r->http, "Authorization");
        const char *sig = auth ? strstr(auth, "Signature=") : NULL;
        const char *date = barge_http_req_header(r->http, "X-Amz-Date");
        const char *cred = auth ? strstr(auth, "Credential=") : NULL;
        if (!sig || !date || !cred || strlen(sig + 10) < 64 || strlen(date) != 16)
            return s3_err(err, "InvalidRequest",
                          "Signed aws-chunked uploads need an Authorization header.");
        memcpy(signer.seed, sig + 10, 64);
        memcpy(signer.amz_date, date, 16);
        const char *scope = strchr(cred, '/');
        size_t slen = scope ? strcspn(scope + 1, ", ") : 0;
        if (!scope || slen >= sizeof(signer.scope))
            return s3_err(err, "InvalidRequest", "Malformed credential scope.");
        memcpy(signer.scope, scope + 1, slen);
        struct barge_sigv4_credentials creds = {0};
        if (barge_server_lookup_key(r->who.access_key_id, r->srv, &creds, err) <= 0)
            return -1;
        char date8[9];
        memcpy(date8, signer.scope, 8);
        date8[8] = '\0';
        barge_sigv4_signing_key(creds.secret_access_key, date8, r->who.region, "s3", signer.key);
        barge_crypto_free_str((char *)creds.secret_access_key);
        free((char *)creds.access_key_id);
        barge_crypto_free_str((char *)creds.session_token);
    }
    int rc = barge_s3_chunked_decode(r->http->body, r->http->body_len, is_signed ? &signer : NULL,
                                     owned, len, trailers, err);
    explicit_bzero(signer.key, sizeof(signer.key));
    if (rc < 0)
        return -1;
    *data = *owned;
    const char *decoded = barge_http_req_header(r->http, "x-amz-decoded-content-length");
    if (decoded && strtoull(decoded, NULL, 10) != *len)
        return s3_err(err, "IncompleteBody",
                      "You did not provide the number of bytes specified by the "
                      "x-amz-decoded-content-length header.");
    return 0;
}

/* Checks the checksums the client sent (Content-MD5, x-amz-checksum-*, as
 * headers or trailers) and records the flexible one in doc. */
static int check_checksums(struct s3_req *r, const char *data, size_t len, const json_t *trailers,
                           const unsigned char md5[16], json_t *doc, struct barge_error **err)
{
    const char *cmd5 = barge_http_req_header(r->http, "Content-MD5");
    if (cmd5) {
        size_t n = 0;
        _cleanup_free_ unsigned char *want = barge_base64_decode(cmd5, &n);
        if (!want || n != 16)
            return s3_err(err, "InvalidDigest", "The Content-MD5 you specified is not valid.");
        if (memcmp(want, md5, 16) != 0)
            return s3_err(err, "BadDigest",
                          "The Content-MD5 you specified did not match what we received.");
    }
    static const char *algos[] = {"crc32", "crc32c", "sha1", "sha256"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(algos); i++) {
        _cleanup_free_ char *hname = barge_xasprintf("x-amz-checksum-%s", algos[i]);
        const char *want = barge_json_str(trailers, hname, NULL);
        if (!want)
            want = barge_http_req_header(r->http, hname);
        if (!want)
            continue;
        unsigned char raw[32];
        size_t rlen = 0;
        if (i < 2) {
            uint32_t c = i == 0 ? barge_crc32(0, data, len) : barge_crc32c(0, data, len);
            raw[0] = (unsigned char)(c >> 24);
            raw[1] = (unsigned char)(c >> 16);
            raw[2] = (unsigned char)(c >> 8);
            raw[3] = (unsigned char)c;
            rlen = 4;
        } else {
            unsigned int n = 0;
            if (!EVP_Digest(data, len, raw, &n, i == 2 ? EVP_sha1() : EVP_sha256(), NULL))
                abort();
            rlen = n;
        }
        _cleanup_free_ char *got = barge_base64_encode(raw, rlen);
        if (strcmp(got, want) != 0)
            return s3_err(err, "BadDigest",
                          "The %s you specified did not match the calculated "
                          "checksum.",
                          algos[i]);
        json_object_set_new(doc, "checksum",
                            json_pack("{s:s, s:s}", "algorithm", algos[i], "value", got));
        barge_http_resp_header(r->resp, hname, got);
    }
    return 0;
}

/* The request's payload (see payload()) with its MD5 and its checksums
 * checked; the checksums' values go to doc. */
static int checked_payload(struct s3_req *r, const char **data, size_t *len, char **owned,
                           unsigned char md5[16], json_t *doc, struct barge_error **err)
{
    _cleanup_json_ json_t *trailers = NULL;
    if (payload(r, data, len, owned, &trailers, err) < 0)
        return -1;
    unsigned int n = 0;
    if (!EVP_Digest(*data, *len, md5, &n, EVP_md5(), NULL))
        abort();
    return check_checksums(r, *data, *len, trailers, md5, doc, err);
}

/* The metadata an upload carries in its headers. */
static void take_metadata(struct s3_req *r, json_t *doc)
{
    json_t *meta = json_object();
    for (size_t i = 0; i < r->http->n_headers; i++) {
        const char *n = r->http->headers[i].name;
        if (strncasecmp(n, "x-amz-meta-", 11) == 0) {
            _cleanup_free_ char *lower = barge_xstrdup(n);
            for (char *p = lower; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            json_object_set_new(meta, lower, json_string(r->http->headers[i].value));
        }
    }
    json_object_set_new(doc, "meta", meta);
    const char *ct = barge_http_req_header(r->http, "Content-Type");
    json_object_set_new(doc, "contentType", json_string(ct ? ct : "binary/octet-stream"));
    static const char *keep[][2] = {{"Cache-Control", "cacheControl"},
                                    {"Content-Disposition", "contentDisposition"},
                                    {"Content-Language", "contentLanguage"},
                                    {"Expires", "expires"}};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keep); i++)
        barge_json_set_str(doc, keep[i][1], barge_http_req_header(r->http, keep[i][0]));
    /* aws-chunked is a transfer detail, not the object's encoding. */
    const char *ce = barge_http_req_header(r->http, "Content-Encoding");
    if (ce) {
        _cleanup_free_ char *rest = barge_xstrdup("");
        _cleanup_free_ char *copy = barge_xstrdup(ce);
        for (char *tok = strtok(copy, ", "); tok; tok = strtok(NULL, ", ")) {
            if (strcmp(tok, "aws-chunked") == 0)
                continue;
            char *joined = barge_xasprintf("%s%s%s", rest, *rest ? "," : "", tok);
            free(rest);
            rest = joined;
        }
        if (*rest)
            json_object_set_new(doc, "contentEncoding", json_string(rest));
    }
}

/* Stores doc (pointing at a new file) as the object, replacing and then
 * removing the old file. On failure removes the new file. */
static int commit_object(struct s3_req *r, json_t *doc, struct barge_error **err)
{
    _cleanup_free_ char *skey = object_key(r->bucket, r->key);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *bucket = NULL, *old = NULL;
    int rc = barge_store_begin(r->srv->store, true, &tx, err);
    if (rc == 0)
        rc = load_bucket(r, tx, &bucket, err);
    if (rc == 0)
        rc = barge_store_get(tx, KIND_OBJECT, skey, &old, err) < 0 ? -1 : 0;
    if (rc == 0)
        rc = barge_store_put(tx, KIND_OBJECT, skey, doc, err);
    if (rc == 0)
        rc = barge_store_commit(barge_steal(&tx), err);
    if (rc < 0) {
        remove_object_file(r, barge_json_str(doc, "file", NULL));
        return -1;
    }
    if (old)
        remove_object_file(r, barge_json_str(old, "file", NULL));
    return 0;
}

static int put_object(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:PutObject", err) < 0)
        return -1;
    {
        /* Fail before writing anything when the bucket is missing. */
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_json_ json_t *bucket = NULL;
        if (barge_store_begin(r->srv->store, false, &tx, err) < 0 ||
            load_bucket(r, tx, &bucket, err) < 0)
            return -1;
    }
    const char *data;
    size_t len;
    _cleanup_free_ char *owned = NULL;
    unsigned char md5[16];
    _cleanup_json_ json_t *doc = json_object();
    if (checked_payload(r, &data, &len, &owned, md5, doc, err) < 0)
        return -1;
    char id[33], etag[33];
    if (write_object_file(r, data, len, id, err) < 0)
        return -1;
    md5_hex(md5, etag);
    json_object_set_new(doc, "file", json_string(id));
    json_object_set_new(doc, "size", json_integer((json_int_t)len));
    json_object_set_new(doc, "etag", json_string(etag));
    json_object_set_new(doc, "lastModified", json_real(barge_now()));
    take_metadata(r, doc);
    if (commit_object(r, doc, err) < 0)
        return -1;
    barge_debug("s3: put %s/%s (%zu bytes)", r->bucket, r->key, len);
    _cleanup_free_ char *quoted = barge_xasprintf("\"%s\"", etag);
    barge_http_resp_header(r->resp, "ETag", quoted);
    reply_empty(r, 200);
    return 0;
}

/* Copies an object (x-amz-copy-source: [/]bucket/key, URL-encoded). */
static int copy_object(struct s3_req *r, const char *source, struct barge_error **err)
{
    const char *src = source[0] == '/' ? source + 1 : source;
    size_t n = strcspn(src, "?");
    _cleanup_free_ char *decoded = barge_http_unescape(src, n);
    char *slash = strchr(decoded, '/');
    if (!slash || slash == decoded || !slash[1])
        return s3_err(err, "InvalidArgument",
                      "Copy Source must mention the source bucket and "
                      "key: sourcebucket/sourcekey");
    *slash = '\0';
    const char *sbucket = decoded, *skey = slash + 1;
    _cleanup_free_ char *sarn = object_arn(sbucket, skey);
    if (authorize(r, "s3:PutObject", err) < 0 ||
        barge_api_authorize(r->srv, &r->who, "s3:GetObject", sarn, err) < 0)
        return -1;
    _cleanup_json_ json_t *sdoc = NULL;
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_free_ char *k = object_key(sbucket, skey);
        int found = barge_store_begin(r->srv->store, false, &tx, err) < 0
                        ? -1
                        : barge_store_get(tx, KIND_OBJECT, k, &sdoc, err);
        if (found < 0)
            return -1;
        if (!found)
            return s3_err(err, "NoSuchKey", "The specified key does not exist.");
    }
    const char *sfile = barge_json_str(sdoc, "file", "");
    _cleanup_free_ char *path = object_file(r, sfile);
    if (access(path, F_OK) < 0 && *sfile && fetch_object_file(r, sfile, err) < 0)
        return -1;
    struct obj_writer w = {.fd = -1};
    if (obj_begin(r, &w, err) < 0 || obj_copy_from(&w, path, err) < 0 || obj_finish(r, &w, err) < 0)
        return -1;
    const char *id = w.id;
    _cleanup_json_ json_t *doc = json_deep_copy(sdoc);
    double now = barge_now();
    json_object_set_new(doc, "file", json_string(id));
    json_object_set_new(doc, "lastModified", json_real(now));
    const char *directive = barge_http_req_header(r->http, "x-amz-metadata-directive");
    if (directive && strcmp(directive, "REPLACE") == 0)
        take_metadata(r, doc);
    if (commit_object(r, doc, err) < 0)
        return -1;
    char ts[BARGE_ISOTIME_MAX];
    barge_isotime_format(now, 3, "Z", ts);
    struct barge_buf b = {0};
    barge_buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult>");
    _cleanup_free_ char *etag = barge_xasprintf("\"%s\"", barge_json_str(doc, "etag", ""));
    barge_xml_elem(&b, "ETag", etag);
    barge_xml_elem(&b, "LastModified", ts);
    barge_buf_adds(&b, "</CopyObjectResult>");
    reply_xml(r, 200, &b);
    return 0;
}

/* --- objects: read ------------------------------------------------------- */

/* Parses a Range header against size. Returns 1 with [*from, *to] for a
 * satisfiable single range, 0 when the header is absent or not one the spec
 * asks us to honour (serve everything), -1 when unsatisfiable. */
static int parse_range(const char *h, long long size, long long *from, long long *to)
{
    if (!h || !barge_str_has_prefix(h, "bytes=") || strchr(h, ','))
        return 0;
    const char *spec = h + 6;
    char *end;
    if (*spec == '-') {
        long long n = strtoll(spec + 1, &end, 10);
        if (*end || spec[1] == '\0')
            return 0;
        if (n <= 0 || size == 0)
            return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return 1;
    }
    long long a = strtoll(spec, &end, 10);
    if (end == spec || *end != '-' || a < 0)
        return 0;
    const char *b = end + 1;
    long long z = size - 1;
    if (*b) {
        z = strtoll(b, &end, 10);
        if (*end || z < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *from = a;
    *to = z >= size ? size - 1 : z;
    return 1;
}

static int get_object(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:GetObject", err) < 0)
        return -1;
    _cleanup_json_ json_t *doc = NULL;
    int fd = -1;
    /* The file may be replaced between reading the metadata and opening it:
     * read again then. */
    for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_json_ json_t *bucket = NULL;
        _cleanup_free_ char *skey = object_key(r->bucket, r->key);
        json_decref(doc);
        doc = NULL;
        if (barge_store_begin(r->srv->store, false, &tx, err) < 0 ||
            load_bucket(r, tx, &bucket, err) < 0)
            return -1;
        int found = barge_store_get(tx, KIND_OBJECT, skey, &doc, err);
        if (found < 0)
            return -1;
        if (!found)
            return s3_err(err, "NoSuchKey", "The specified key does not exist.");
        const char *file = barge_json_str(doc, "file", "");
        _cleanup_free_ char *path = object_file(r, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot open '%s'", path);
        if (fd < 0 && *file) {
            int got = fetch_object_file(r, file, err);
            if (got < 0)
                return -1;
            if (got > 0)
                fd = open(path, O_RDONLY | O_CLOEXEC);
        }
    }
    if (fd < 0)
        return barge_error_set(err, BARGE_ERR_IO, "object '%s/%s' has no data file", r->bucket,
                               r->key);
    long long size = barge_json_int(doc, "size", 0);
    const char *etag = barge_json_str(doc, "etag", "");
    _cleanup_free_ char *quoted = barge_xasprintf("\"%s\"", etag);
    double mtime = json_number_value(json_object_get(doc, "lastModified"));

    /* Preconditions, in the order RFC 7232 gives. */
    const char *im = barge_http_req_header(r->http, "If-Match");
    const char *inm = barge_http_req_header(r->http, "If-None-Match");
    double t;
    int pre = 0;
    if (im && strcmp(im, "*") != 0 && !strstr(im, etag))
        pre = 412;
    else if (!im && parse_http_time(barge_http_req_header(r->http, "If-Unmodified-Since"), &t) &&
             (double)(long long)mtime > t)
        pre = 412;
    else if (inm && (strcmp(inm, "*") == 0 || strstr(inm, etag)))
        pre = 304;
    else if (!inm && parse_http_time(barge_http_req_header(r->http, "If-Modified-Since"), &t) &&
             (double)(long long)mtime <= t)
        pre = 304;
    if (pre) {
        close(fd);
        if (pre == 412)
            return s3_err(err, "PreconditionFailed",
                          "At least one of the pre-conditions you specified did not hold");
        barge_http_resp_header(r->resp, "ETag", quoted);
        reply_empty(r, 304);
        return 0;
    }

    char lm[40];
    time_http(mtime, lm);
    barge_http_resp_header(r->resp, "ETag", quoted);
    barge_http_resp_header(r->resp, "Last-Modified", lm);
    barge_http_resp_header(r->resp, "Accept-Ranges", "bytes");
    const char *meta_key;
    json_t *v;
    json_object_foreach(barge_json_object(doc, "meta"), meta_key, v)
        barge_http_resp_header(r->resp, meta_key, json_string_value(v));
    static const char *hdrs[][3] = {
        {"contentType", "Content-Type", "response-content-type"},
        {"cacheControl", "Cache-Control", "response-cache-control"},
        {"contentDisposition", "Content-Disposition", "response-content-disposition"},
        {"contentLanguage", "Content-Language", "response-content-language"},
        {"contentEncoding", "Content-Encoding", "response-content-encoding"},
        {"expires", "Expires", "response-expires"},
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(hdrs); i++) {
        _cleanup_free_ char *over = barge_http_req_query(r->http, hdrs[i][2]);
        const char *val = over ? over : barge_json_str(doc, hdrs[i][0], NULL);
        if (val)
            barge_http_resp_header(r->resp, hdrs[i][1], val);
    }
    long long from = 0, to = size - 1;
    int ranged = parse_range(barge_http_req_header(r->http, "Range"), size, &from, &to);
    if (ranged < 0) {
        close(fd);
        _cleanup_free_ char *cr = barge_xasprintf("bytes */%lld", size);
        barge_http_resp_header(r->resp, "Content-Range", cr);
        return s3_err(err, "InvalidRange", "The requested range is not satisfiable");
    }
    const char *mode = barge_http_req_header(r->http, "x-amz-checksum-mode");
    json_t *ck = barge_json_object(doc, "checksum");
    if (ck && !ranged && mode && strcasecmp(mode, "ENABLED") == 0) {
        _cleanup_free_ char *h =
            barge_xasprintf("x-amz-checksum-%s", barge_json_str(ck, "algorithm", ""));
        barge_http_resp_header(r->resp, h, barge_json_str(ck, "value", ""));
    }
    if (ranged) {
        _cleanup_free_ char *cr = barge_xasprintf("bytes %lld-%lld/%lld", from, to, size);
        barge_http_resp_header(r->resp, "Content-Range", cr);
    }
    if (!barge_json_str(doc, "contentType", NULL))
        barge_http_resp_header(r->resp, "Content-Type", "binary/octet-stream");
    r->resp->status = ranged ? 206 : 200;
    /* The body streams from the file (libmicrohttpd sends none for HEAD but
     * takes Content-Length from it). */
    r->resp->fd = fd;
    r->resp->fd_offset = (off_t)from;
    r->resp->fd_len = size == 0 ? 0 : (size_t)(to - from + 1);
    return 0;
}

static int delete_object(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:DeleteObject", err) < 0)
        return -1;
    _cleanup_free_ char *skey = object_key(r->bucket, r->key);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *bucket = NULL, *old = NULL;
    if (barge_store_begin(r->srv->store, true, &tx, err) < 0 ||
        load_bucket(r, tx, &bucket, err) < 0 ||
        barge_store_get(tx, KIND_OBJECT, skey, &old, err) < 0)
        return -1;
    if (old && (barge_store_del(tx, KIND_OBJECT, skey, err) < 0 ||
                barge_store_commit(barge_steal(&tx), err) < 0))
        return -1;
    if (old)
        remove_object_file(r, barge_json_str(old, "file", NULL));
    reply_empty(r, 204);
    return 0;
}

static int delete_objects(struct s3_req *r, struct barge_error **err)
{
    if (!strstr(r->http->body, "<Delete"))
        return s3_err(err, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our "
                      "published schema");
    const char *qpos = NULL;
    _cleanup_free_ char *quiet = xml_next(r->http->body, "Quiet", &qpos);
    bool is_quiet = quiet && strcmp(quiet, "true") == 0;
    struct barge_buf b = {0};
    barge_buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"" XMLNS
                       "\">");
    const char *pos = NULL;
    char *obj;
    int count = 0;
    while ((obj = xml_next(r->http->body, "Object", &pos))) {
        const char *kpos = NULL;
        char *key = xml_next(obj, "Key", &kpos);
        free(obj);
        if (!key)
            continue;
        if (++count > 1000) {
            free(key);
            free(b.data);
            return s3_err(err, "MalformedXML", "At most 1000 objects can be deleted at once.");
        }
        struct s3_req one = *r;
        struct barge_http_resp scratch = {.fd = -1};
        one.key = key;
        one.resp = &scratch;
        struct barge_error *e = NULL;
        if (delete_object(&one, &e) < 0) {
            barge_buf_adds(&b, "<Error>");
            barge_xml_elem(&b, "Key", key);
            barge_xml_elem(&b, "Code", error_code(e, false));
            barge_xml_elem(&b, "Message", e->message);
            barge_buf_adds(&b, "</Error>");
            barge_error_free(e);
        } else if (!is_quiet) {
            barge_buf_adds(&b, "<Deleted>");
            barge_xml_elem(&b, "Key", key);
            barge_buf_adds(&b, "</Deleted>");
        }
        for (size_t i = 0; i < scratch.n_headers; i++) {
            free(scratch.headers[i].name);
            free(scratch.headers[i].value);
        }
        free(scratch.headers);
        free(scratch.body);
        free(key);
    }
    barge_buf_adds(&b, "</DeleteResult>");
    reply_xml(r, 200, &b);
    return 0;
}

/* --- multipart uploads --------------------------------------------------- */

static int load_upload(struct s3_req *r, struct barge_tx *tx, const char *id, json_t **doc,
                       struct barge_error **err)
{
    int n = barge_store_get(tx, KIND_UPLOAD, id, doc, err);
    if (n < 0)
        return -1;
    if (n == 0 || !barge_streq(barge_json_str(*doc, "bucket", NULL), r->bucket) ||
        !barge_streq(barge_json_str(*doc, "key", NULL), r->key))
        return s3_err(err, "NoSuchUpload",
                      "The specified upload does not exist. The upload ID may be invalid, or the "
                      "upload may have been aborted or completed.");
    return 0;
}

static void remove_upload_dir(struct s3_req *r, const char *id)
{
    _cleanup_free_ char *dir = s3_path(r, "uploads/%s", id);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            _cleanup_free_ char *p = barge_xasprintf("%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int create_upload(struct s3_req *r, struct barge_error **err)
{
    if (authorize(r, "s3:PutObject", err) < 0)
        return -1;
    char id[33];
    barge_id_hex32(id);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *bucket = NULL;
    _cleanup_json_ json_t *doc = json_pack("{s:s, s:s, s:f, s:{}}", "bucket", r->bucket, "key",
                                           r->key, "initiated", barge_now(), "parts");
    take_metadata(r, doc);
    _cleanup_free_ char *dir = s3_path(r, "uploads/%s", id);
    if (barge_mkdir_p(dir, 0700) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", dir);
    if (barge_store_begin(r->srv->store, true, &tx, err) < 0 ||
        load_bucket(r, tx, &bucket, err) < 0 ||
        barge_store_put(tx, KIND_UPLOAD, id, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0) {
        rmdir(dir);
        return -1;
    }
    struct barge_buf b = {0};
    barge_buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult "
                       "xmlns=\"" XMLNS "\">");
    barge_xml_elem(&b, "Bucket", r->bucket);
    barge_xml_elem(&b, "Key", r->key);
    barge_xml_elem(&b, "UploadId", id);
    barge_buf_adds(&b, "</InitiateMultipartUploadResult>");
    reply_xml(r, 200, &b);
    return 0;
}

static int upload_part(struct s3_req *r, const char *upload_id, const char *part_s,
                       struct barge_error **err)
{
    if (authorize(r, "s3:PutObject", err) < 0)
        return -1;
    char *end;
    long part = strtol(part_s, &end, 10);
    if (!*part_s || *end || part < 1 || part > MAX_PARTS)
        return s3_err(err, "InvalidArgument",
                      "Part number must be an integer between 1 and 10000, inclusive");
    if (strspn(upload_id, "0123456789abcdef") != strlen(upload_id) || strlen(upload_id) != 32)
        return s3_err(err, "NoSuchUpload", "The specified upload does not exist.");
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        _cleanup_json_ json_t *up = NULL;
        if (barge_store_begin(r->srv->store, false, &tx, err) < 0 ||
            load_upload(r, tx, upload_id, &up, err) < 0)
            return -1;
    }
    const char *data;
    size_t len;
    _cleanup_free_ char *owned = NULL;
    unsigned char md5[16];
    _cleanup_json_ json_t *scratch = json_object();
    if (checked_payload(r, &data, &len, &owned, md5, scratch, err) < 0)
        return -1;
    _cleanup_free_ char *path = s3_path(r, "uploads/%s/%05ld", upload_id, part);
    if (barge_write_file_atomic(path, data, len, 0600) < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    char etag[33];
    md5_hex(md5, etag);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *up = NULL;
    if (barge_store_begin(r->srv->store, true, &tx, err) < 0 ||
        load_upload(r, tx, upload_id, &up, err) < 0)
        return -1;
    _cleanup_free_ char *pk = barge_xasprintf("%ld", part);
    json_object_set_new(barge_json_object(up, "parts"), pk,
                        json_pack("{s:s, s:I}", "etag", etag, "size", (json_int_t)len));
    if (barge_store_put(tx, KIND_UPLOAD, upload_id, up, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    _cleanup_free_ char *quoted = barge_xasprintf("\"%s\"", etag);
    barge_http_resp_header(r->resp, "ETag", quoted);
    reply_empty(r, 200);
    return 0;
}

static int complete_upload(struct s3_req *r, const char *upload_id, struct barge_error **err)
{
    if (authorize(r, "s3:PutObject", err) < 0)
        return -1;
    _cleanup_json_ json_t *up = NULL;
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(r->srv->store, false, &tx, err) < 0 ||
            load_upload(r, tx, upload_id, &up, err) < 0)
            return -1;
    }
    json_t *parts = barge_json_object(up, "parts");
    /* Concatenate the parts the client lists, in its order, checking each
     * ETag; the object's ETag is the MD5 of the parts' MD5s, "-" count. */
    struct obj_writer w = {.fd = -1};
    if (obj_begin(r, &w, err) < 0)
        return -1;
    size_t total = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_md5(), NULL))
        abort();
    const char *pos = NULL;
    char *part;
    long prev = 0;
    int count = 0, rc = 0;
    while (rc == 0 && (part = xml_next(r->http->body, "Part", &pos))) {
        const char *p2 = NULL, *p3 = NULL;
        _cleanup_free_ char *num = xml_next(part, "PartNumber", &p2);
        _cleanup_free_ char *etag = xml_next(part, "ETag", &p3);
        free(part);
        long pn = num ? strtol(num, NULL, 10) : 0;
        if (pn <= prev) {
            rc = s3_err(err, "InvalidPartOrder",
                        "The list of parts was not in ascending order. Parts must be ordered by "
                        "part number.");
            break;
        }
        prev = pn;
        _cleanup_free_ char *pk = barge_xasprintf("%ld", pn);
        json_t *info = json_object_get(parts, pk);
        const char *want = barge_json_str(info, "etag", "");
        if (!info || !etag || !strstr(etag, want)) {
            rc = s3_err(err, "InvalidPart",
                        "One or more of the specified parts could not be found. The part may "
                        "not have been uploaded, or the specified entity tag may not match the "
                        "part's entity tag.");
            break;
        }
        _cleanup_free_ char *path = s3_path(r, "uploads/%s/%05ld", upload_id, pn);
        if (obj_copy_from(&w, path, err) < 0) {
            rc = -1;
            break;
        }
        total += (size_t)barge_json_int(info, "size", 0);
        unsigned char raw[16];
        for (int i = 0; i < 16; i++) {
            unsigned int byte;
            sscanf(want + 2 * i, "%2x", &byte);
            raw[i] = (unsigned char)byte;
        }
        EVP_DigestUpdate(md, raw, 16);
        count++;
    }
    /* Every part but the last must be at least 5 MiB. */
    if (rc == 0 && count > 1) {
        const char *p = NULL;
        char *pp;
        int i = 0;
        while ((pp = xml_next(r->http->body, "Part", &p))) {
            const char *p2 = NULL;
            _cleanup_free_ char *num = xml_next(pp, "PartNumber", &p2);
            free(pp);
            json_t *info = json_object_get(parts, num ? num : "");
            if (++i < count && barge_json_int(info, "size", 0) < MIN_PART_BYTES) {
                rc = s3_err(err, "EntityTooSmall",
                            "Your proposed upload is smaller than the minimum allowed object "
                            "size.");
                break;
            }
        }
    }
    if (rc == 0 && count == 0)
        rc = s3_err(err, "MalformedXML", "You must specify at least one part");
    unsigned char digest[16];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, digest, &dl);
    EVP_MD_CTX_free(md);
    if (rc < 0) {
        obj_abort(&w);
        return -1;
    }
    if (obj_finish(r, &w, err) < 0)
        return -1;
    const char *id = w.id;
    char hex[33];
    md5_hex(digest, hex);
    _cleanup_free_ char *etag = barge_xasprintf("%s-%d", hex, count);
    _cleanup_json_ json_t *doc =
        json_pack("{s:s, s:I, s:s, s:f, s:O, s:s}", "file", id, "size", (json_int_t)total, "etag",
                  etag, "lastModified", barge_now(), "meta", json_object_get(up, "meta"),
                  "contentType", barge_json_str(up, "contentType", "binary/octet-stream"));
    const char *keep[] = {"cacheControl", "contentDisposition", "contentLanguage", "expires",
                          "contentEncoding"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(keep); i++)
        barge_json_set_str(doc, keep[i], barge_json_str(up, keep[i], NULL));
    if (commit_object(r, doc, err) < 0)
        return -1;
    {
        _cleanup_tx_ struct barge_tx *tx = NULL;
        if (barge_store_begin(r->srv->store, true, &tx, err) < 0 ||
            barge_store_del(tx, KIND_UPLOAD, upload_id, err) < 0 ||
            barge_store_commit(barge_steal(&tx), err) < 0)
            return -1;
    }
    remove_upload_dir(r, upload_id);
    struct barge_buf b = {0};
    barge_buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult "
                       "xmlns=\"" XMLNS "\">");
    _cleanup_free_ char *loc = barge_xasprintf("/%s/%s", r->bucket, r->key);
    barge_xml_elem(&b, "Location", loc);
    barge_xml_elem(&b, "Bucket", r->bucket);
    barge_xml_elem(&b, "Key", r->key);
    _cleanup_free_ char *quoted = barge_xasprintf("\"%s\"", etag);
    barge_xml_elem(&b, "ETag", quoted);
    barge_buf_adds(&b, "</CompleteMultipartUploadResult>");
    reply_xml(r, 200, &b);
    return 0;
}

static int abort_upload(struct s3_req *r, const char *upload_id, struct barge_error **err)
{
    if (authorize(r, "s3:AbortMultipartUpload", err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *up = NULL;
    if (barge_store_begin(r->srv->store, true, &tx, err) < 0 ||
        load_upload(r, tx, upload_id, &up, err) < 0 ||
        barge_store_del(tx, KIND_UPLOAD, upload_id, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    remove_upload_dir(r, upload_id);
    reply_empty(r, 204);
    return 0;
}

/* --- dispatch ------------------------------------------------------------ */

/* Query parameters that name sub-resources barge does not serve; answering
 * them as plain object or bucket requests would be wrong. */
static const char *const unsupported[] = {
    "acl",
    "tagging",
    "versioning",
    "policy",
    "cors",
    "lifecycle",
    "encryption",
    "website",
    "logging",
    "replication",
    "notification",
    "versions",
    "object-lock",
    "retention",
    "legal-hold",
    "torrent",
    "restore",
    "select",
    "accelerate",
    "requestPayment",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "ownershipControls",
    "publicAccessBlock",
    "policyStatus",
    "attributes",
};

static int dispatch(struct s3_req *r, struct barge_error **err)
{
    const char *m = r->http->method;
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(unsupported); i++)
        if (query_has(r, unsupported[i]))
            return s3_err(err, "NotImplemented", "barge does not implement the '%s' sub-resource.",
                          unsupported[i]);
    if (!r->bucket) {
        if (strcmp(m, "GET") == 0)
            return list_buckets(r, err);
        return s3_err(err, "MethodNotAllowed",
                      "The specified method is not allowed against this resource.");
    }
    if (!r->key) {
        if (strcmp(m, "PUT") == 0)
            return create_bucket(r, err);
        if (strcmp(m, "DELETE") == 0)
            return delete_bucket(r, err);
        if (strcmp(m, "HEAD") == 0)
            return head_bucket(r, err);
        if (strcmp(m, "POST") == 0 && query_has(r, "delete")) {
            if (authorize(r, "s3:DeleteObject", err) < 0)
                return -1;
            return delete_objects(r, err);
        }
        if (strcmp(m, "GET") == 0) {
            if (query_has(r, "location"))
                return bucket_location(r, err);
            if (query_has(r, "uploads"))
                return s3_err(err, "NotImplemented",
                              "barge does not list in-progress multipart uploads.");
            _cleanup_free_ char *lt = barge_http_req_query(r->http, "list-type");
            return list_objects(r, lt && strcmp(lt, "2") == 0, err);
        }
        return s3_err(err, "MethodNotAllowed",
                      "The specified method is not allowed against this resource.");
    }
    if (strlen(r->key) > MAX_KEY_LEN)
        return s3_err(err, "KeyTooLongError", "Your key is too long");
    _cleanup_free_ char *upload_id = barge_http_req_query(r->http, "uploadId");
    if (strcmp(m, "PUT") == 0) {
        _cleanup_free_ char *part = barge_http_req_query(r->http, "partNumber");
        if (upload_id && part)
            return upload_part(r, upload_id, part, err);
        const char *src = barge_http_req_header(r->http, "x-amz-copy-source");
        if (src)
            return copy_object(r, src, err);
        return put_object(r, err);
    }
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
        if (upload_id)
            return s3_err(err, "NotImplemented", "barge does not list the parts of an upload.");
        return get_object(r, err);
    }
    if (strcmp(m, "DELETE") == 0)
        return upload_id ? abort_upload(r, upload_id, err) : delete_object(r, err);
    if (strcmp(m, "POST") == 0) {
        if (query_has(r, "uploads"))
            return create_upload(r, err);
        if (upload_id)
            return complete_upload(r, upload_id, err);
    }
    return s3_err(err, "MethodNotAllowed",
                  "The specified method is not allowed against this resource.");
}

/* Splits the request into bucket and key: virtual-host style when the Host
 * is "<bucket>.<s3_host>", else path style. */
static void address(struct s3_req *r)
{
    const char *raw = r->http->raw_path;
    const char *host = barge_http_req_header(r->http, "Host");
    const char *s3_host = r->srv->cfg.s3_host;
    if (host && s3_host && *s3_host) {
        size_t hn = strcspn(host, ":");
        size_t sn = strlen(s3_host);
        if (hn > sn + 1 && host[hn - sn - 1] == '.' &&
            strncasecmp(host + hn - sn, s3_host, sn) == 0) {
            r->bucket = barge_xstrndup(host, hn - sn - 1);
            for (char *p = r->bucket; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            const char *k = raw[0] == '/' ? raw + 1 : raw;
            if (*k)
                r->key = barge_http_unescape(k, strlen(k));
            return;
        }
    }
    const char *p = raw[0] == '/' ? raw + 1 : raw;
    if (!*p)
        return;
    size_t bn = strcspn(p, "/");
    r->bucket = barge_http_unescape(p, bn);
    if (p[bn] == '/' && p[bn + 1])
        r->key = barge_http_unescape(p + bn + 1, strlen(p + bn + 1));
}

void barge_api_s3_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    struct s3_req r = {.http = req, .resp = resp, .srv = req->server};
    _cleanup_error_ struct barge_error *err = NULL;
    address(&r);
    barge_http_resp_header(resp, "x-amz-request-id", req->request_id);
    barge_http_resp_header(resp, "x-amz-id-2", req->request_id);
    const char *auth = barge_http_req_header(req, "Authorization");
    if ((auth && barge_str_has_prefix(auth, "AWS ")) || strstr(req->raw_query, "AWSAccessKeyId="))
        s3_err(&err, "InvalidRequest",
               "The authorization mechanism you have provided is not supported. Please use "
               "AWS4-HMAC-SHA256.");
    if (err || barge_api_authenticate_for(req, "s3", true, &r.who, &err) < 0 ||
        dispatch(&r, &err) < 0)
        reply_error(&r, err);
    else
        barge_debug("s3 %s %s ok", req->method, req->path);
    free(r.bucket);
    free(r.key);
}

void barge_api_root_handle(struct barge_http_req *req, struct barge_http_resp *resp)
{
    /* Every AWS JSON call names its operation in X-Amz-Target; S3 never
     * sends one. A JSON POST to "/" without it still goes to the JSON
     * dispatcher, which explains what is missing. */
    const char *ct = barge_http_req_header(req, "Content-Type");
    /* Smithy RPC v2 CBOR says so in a header no S3 client sends. */
    if (barge_http_req_header(req, "smithy-protocol")) {
        barge_api_cbor_handle(req, resp);
        return;
    }
    /* The query protocol (CloudWatch) posts a form to "/". */
    if (strcmp(req->method, "POST") == 0 && strcmp(req->raw_path, "/") == 0 && ct &&
        barge_str_has_prefix(ct, "application/x-www-form-urlencoded") &&
        !barge_http_req_header(req, "X-Amz-Target")) {
        barge_api_query_handle(req, resp);
        return;
    }
    if (barge_http_req_header(req, "X-Amz-Target") ||
        (strcmp(req->method, "POST") == 0 && strcmp(req->raw_path, "/") == 0 && ct &&
         barge_str_has_prefix(ct, "application/x-amz-json")))
        barge_api_json11_handle(req, resp);
    else
        barge_api_s3_handle(req, resp);
}

/* --- for CloudFormation ------------------------------------------------------ */

int barge_api_s3_object_read(struct barge_server *srv, const char *bucket, const char *key,
                             size_t max, char **data, size_t *len, struct barge_error **err)
{
    struct s3_req r = {.srv = srv, .bucket = (char *)bucket, .key = (char *)key};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *bdoc = NULL, *doc = NULL;
    _cleanup_free_ char *skey = object_key(bucket, key);
    if (barge_store_begin(srv->store, false, &tx, err) < 0 || load_bucket(&r, tx, &bdoc, err) < 0)
        return -1;
    int found = barge_store_get(tx, KIND_OBJECT, skey, &doc, err);
    if (found <= 0)
        return found < 0 ? -1 : s3_err(err, "NoSuchKey", "The specified key does not exist.");
    if ((size_t)barge_json_int(doc, "size", 0) > max)
        return s3_err(err, "EntityTooLarge", "the object '%s/%s' is larger than %zu bytes", bucket,
                      key, max);
    const char *file = barge_json_str(doc, "file", "");
    _cleanup_free_ char *path = object_file(&r, file);
    if (access(path, R_OK) != 0 && *file && fetch_object_file(&r, file, err) < 0)
        return -1;
    *data = barge_read_file(path, len);
    if (!*data)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read '%s'", path);
    return 0;
}

int barge_api_s3_bucket_create(struct barge_server *srv, const char *bucket,
                               struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_BUCKET, bucket, &doc, err) < 0)
        return -1;
    if (doc)
        return s3_err(err, "BucketAlreadyExists", "%s already exists", bucket);
    doc = json_pack("{s:s, s:f}", "region", srv->cfg.region, "created", barge_now());
    return barge_store_put(tx, KIND_BUCKET, bucket, doc, err) < 0 ||
                   barge_store_commit(barge_steal(&tx), err) < 0
               ? -1
               : 0;
}

int barge_api_s3_bucket_delete(struct barge_server *srv, const char *bucket,
                               struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_free_ char *prefix = barge_xasprintf("%s/", bucket);
    struct any objects = {false};
    if (barge_store_begin(srv->store, true, &tx, err) < 0 ||
        barge_store_scan(tx, KIND_OBJECT, prefix, NULL, false, 1, found_one, &objects, err) < 0)
        return -1;
    if (objects.found)
        return s3_err(err, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    return barge_store_del(tx, KIND_BUCKET, bucket, err) < 0 ||
                   barge_store_commit(barge_steal(&tx), err) < 0
               ? -1
               : 0;
}
