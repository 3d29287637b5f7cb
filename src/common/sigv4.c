/* AWS Signature Version 4, both directions. The signer builds the canonical
 * request the way botocore does (so that a request barge signs is
 * indistinguishable from one boto3 signs) and the verifier rebuilds it from the
 * bytes barged received, using only the headers the client said it signed.
 * Check order and error texts follow what AWS services answer, as recorded in
 * shared/reference/ecs-api.md section 2. Secrets only ever live in the lookup
 * result and the HMAC key schedule, both wiped before they are freed; no
 * message built here quotes a secret key or a session token. */
#include "common/sigv4.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"

#define ALGORITHM        "AWS4-HMAC-SHA256"
#define TERMINATOR       "aws4_request"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* S3 refuses presigned URLs that live longer than a week. */
#define MAX_PRESIGN_EXPIRES 604800

#define MSG_MISSING   "Missing Authentication Token"
#define MSG_BAD_TOKEN "The security token included in the request is invalid."
#define MSG_MISMATCH                                                                             \
    "The request signature we calculated does not match the signature you provided. Check your " \
    "AWS Secret Access Key and signing method. Consult the service documentation for details."

/* ---- crypto -------------------------------------------------------------- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

/* SHA-256, fetched once: OpenSSL 3 looks the algorithm up again on every
 * EVP_sha256() digest or HMAC() call, which cost more than hashing a
 * request's few hundred bytes. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 of a followed by b. Fails only when OpenSSL itself is broken (no
 * SHA-256, no memory); there is no sensible way to go on signing then. */
static void sha256_two(const void *a, size_t a_len, const void *b, size_t b_len,
                       unsigned char out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    if (!sha256_md || !ctx || !EVP_DigestInit_ex(ctx, sha256_md, NULL) ||
        !EVP_DigestUpdate(ctx, a, a_len) || !EVP_DigestUpdate(ctx, b, b_len) ||
        !EVP_DigestFinal_ex(ctx, out, &out_len) || out_len != 32)
        abort();
    EVP_MD_CTX_free(ctx);
}

void barge_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    sha256_two(data ? data : "", len, "", 0, md);
    hex_encode(md, 32, out);
}

/* HMAC-SHA256 (RFC 2104) over the fetched digest. */
static void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                        unsigned char out[32])
{
    unsigned char k[64] = {0}, pad[64], inner[32];
    if (key_len > sizeof(k))
        sha256_two(key, key_len, "", 0, k);
    else
        memcpy(k, key, key_len);
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x36;
    sha256_two(pad, sizeof(pad), msg, msg_len, inner);
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x5c;
    sha256_two(pad, sizeof(pad), inner, sizeof(inner), out);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
}

/* Derived signing keys, cached: a key is fixed for a (secret, day, region,
 * service), and deriving it costs four of the five HMACs of a verification.
 * The cache lives in barged's memory, which holds the secrets anyway. */
#define KEY_CACHE_SIZE 16
struct key_cache_entry {
    char *secret;
    char date8[9];
    char region[64];
    char service[64];
    unsigned char key[32];
};
static struct key_cache_entry key_cache[KEY_CACHE_SIZE];
static unsigned key_cache_next;
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool key_cache_get(const char *secret, const char *date8, const char *region,
                          const char *service, unsigned char key[32])
{
    bool hit = false;
    pthread_mutex_lock(&key_cache_lock);
    for (size_t i = 0; i < KEY_CACHE_SIZE && !hit; i++) {
        struct key_cache_entry *e = &key_cache[i];
        if (e->secret && strcmp(e->date8, date8) == 0 && strcmp(e->region, region) == 0 &&
            strcmp(e->service, service) == 0 && strcmp(e->secret, secret) == 0) {
            memcpy(key, e->key, 32);
            hit = true;
        }
    }
    pthread_mutex_unlock(&key_cache_lock);
    return hit;
}

static void key_cache_put(const char *secret, const char *date8, const char *region,
                          const char *service, const unsigned char key[32])
{
    if (strlen(date8) >= sizeof(key_cache[0].date8) || strlen(region) >= 64 ||
        strlen(service) >= 64)
        return;
    pthread_mutex_lock(&key_cache_lock);
    struct key_cache_entry *e = &key_cache[key_cache_next++ % KEY_CACHE_SIZE];
    if (e->secret) {
        OPENSSL_cleanse(e->secret, strlen(e->secret));
        free(e->secret);
    }
    e->secret = barge_xstrdup(secret);
    strcpy(e->date8, date8);
    strcpy(e->region, region);
    strcpy(e->service, service);
    memcpy(e->key, key, 32);
    pthread_mutex_unlock(&key_cache_lock);
}

/* signature = hex(HMAC(kSigning, string_to_sign)) with the key chain
 * "AWS4"+secret → date → region → service → "aws4_request". Every
 * intermediate key is wiped: each is as good as the secret for a day. */
static void compute_signature(const char *secret, const char *date8, const char *region,
                              const char *service, const char *string_to_sign, char out[65])
{
    unsigned char k[32], sig[32];
    if (!key_cache_get(secret, date8, region, service, k)) {
        size_t secret_len = strlen(secret);
        size_t k0_len = 4 + secret_len;
        unsigned char *k0 = barge_xmalloc(k0_len);
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, secret, secret_len);
        hmac_sha256(k0, k0_len, date8, strlen(date8), k);
        OPENSSL_cleanse(k0, k0_len);
        free(k0);
        hmac_sha256(k, sizeof(k), region, strlen(region), k);
        hmac_sha256(k, sizeof(k), service, strlen(service), k);
        hmac_sha256(k, sizeof(k), TERMINATOR, strlen(TERMINATOR), k);
        key_cache_put(secret, date8, region, service, k);
    }
    hmac_sha256(k, sizeof(k), string_to_sign, strlen(string_to_sign), sig);
    OPENSSL_cleanse(k, sizeof(k));
    hex_encode(sig, sizeof(sig), out);
}

/* ---- encoding ------------------------------------------------------------ */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Percent-encodes everything outside A-Za-z0-9-_.~ (and '/' when keep_slash),
 * upper-case hex, as SigV4 requires and Python's quote() produces. */
static void uri_encode(struct barge_buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            barge_buf_addc(b, (char)c);
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 0xf]};
            barge_buf_addn(b, esc, 3);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one query component with the rules of an HTML form: %XX escapes, and
 * '+' as a space, because that is what an urlencode()d query (botocore's own
 * AWSRequest.params, most HTTP libraries) means by it; a literal '+' arrives as
 * %2B from every SigV4 client. A '%' that starts no valid escape stays as is.
 * Returns a new buffer (the caller frees it) and its length in *out_len, which
 * may include NUL bytes from %00. */
static char *query_decode(const char *s, size_t n, size_t *out_len)
{
    char *out = barge_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else if (s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* ---- canonical URI and query --------------------------------------------- */

/* botocore's normalize_url_path: drop empty and "." segments, resolve "..",
 * keep the leading slash, keep a trailing one when anything is left. The
 * segments are then encoded again although they arrive percent-encoded: AWS
 * services other than S3 sign the path double-encoded. S3 signs the path as
 * sent. */
static char *canonical_uri(const char *raw_path, bool s3)
{
    const char *path = raw_path && *raw_path ? raw_path : "/";
    if (s3)
        return barge_xstrdup(path);

    size_t n = strlen(path);
    /* Start offsets and lengths of the kept segments. */
    size_t *seg_off = barge_xcalloc(n + 1, sizeof(size_t));
    size_t *seg_len = barge_xcalloc(n + 1, sizeof(size_t));
    size_t nseg = 0;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 0 || (len == 1 && path[i] == '.')) {
            /* dropped */
        } else if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg > 0)
                nseg--;
        } else {
            seg_off[nseg] = i;
            seg_len[nseg] = len;
            nseg++;
        }
        i = j + 1;
    }

    struct barge_buf b = {0};
    if (path[0] == '/')
        barge_buf_addc(&b, '/');
    for (size_t k = 0; k < nseg; k++) {
        if (k > 0)
            barge_buf_addc(&b, '/');
        uri_encode(&b, path + seg_off[k], seg_len[k], true);
    }
    if (path[n - 1] == '/' && nseg > 0)
        barge_buf_addc(&b, '/');
    free(seg_off);
    free(seg_len);
    return barge_buf_steal(&b, NULL);
}

struct qpair {
    char *key; /* canonically encoded */
    char *value;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : strcmp(x->value, y->value);
}

/* Splits raw_query on '&', decodes each name and value, encodes them again
 * with the unreserved set and sorts by name then value. Whatever encoding the
 * client put on the wire, both sides end up with the same string. skip names a
 * (decoded) parameter left out: X-Amz-Signature of a presigned URL. */
static char *canonical_query(const char *raw_query, const char *skip)
{
    if (!raw_query || !*raw_query)
        return barge_xstrdup("");

    size_t cap = 8, n = 0;
    struct qpair *pairs = barge_xcalloc(cap, sizeof(*pairs));
    const char *p = raw_query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            size_t dk_len, dv_len;
            _cleanup_free_ char *dk = query_decode(p, klen, &dk_len);
            _cleanup_free_ char *dv =
                eq ? query_decode(eq + 1, len - klen - 1, &dv_len) : query_decode("", 0, &dv_len);
            if (!(skip && dk_len == strlen(skip) && memcmp(dk, skip, dk_len) == 0)) {
                if (n == cap) {
                    cap *= 2;
                    pairs = barge_xrealloc(pairs, cap * sizeof(*pairs));
                }
                struct barge_buf kb = {0}, vb = {0};
                uri_encode(&kb, dk, dk_len, false);
                uri_encode(&vb, dv, dv_len, false);
                pairs[n].key = barge_buf_steal(&kb, NULL);
                pairs[n].value = barge_buf_steal(&vb, NULL);
                n++;
            }
        }
        if (!amp)
            break;
        p = amp + 1;
    }

    qsort(pairs, n, sizeof(*pairs), qpair_cmp);
    struct barge_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            barge_buf_addc(&b, '&');
        barge_buf_adds(&b, pairs[i].key);
        barge_buf_addc(&b, '=');
        barge_buf_adds(&b, pairs[i].value);
        free(pairs[i].key);
        free(pairs[i].value);
    }
    free(pairs);
    return barge_buf_steal(&b, NULL);
}

/* The first value of the query parameter name (exact case), decoded, or NULL;
 * the caller frees it. */
static char *query_get(const char *raw_query, const char *name)
{
    if (!raw_query)
        return NULL;
    size_t name_len = strlen(name);
    const char *p = raw_query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        size_t dk_len, dv_len;
        _cleanup_free_ char *dk = query_decode(p, klen, &dk_len);
        if (dk_len == name_len && memcmp(dk, name, name_len) == 0)
            return eq ? query_decode(eq + 1, len - klen - 1, &dv_len) : barge_xstrdup("");
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

/* ---- headers ------------------------------------------------------------- */

/* Python's str.split() whitespace, restricted to ASCII: botocore trims and
 * collapses header values with it. */
static bool is_py_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Appends value trimmed, with inner whitespace runs collapsed to one space. */
static void add_trimmed(struct barge_buf *b, const char *value)
{
    bool any = false;
    const unsigned char *p = (const unsigned char *)value;
    while (*p) {
        const unsigned char *word = p;
        while (*p && !is_py_space(*p))
            p++;
        if (p > word) {
            if (any)
                barge_buf_addc(b, ' ');
            barge_buf_addn(b, (const char *)word, (size_t)(p - word));
            any = true;
        }
        while (*p && is_py_space(*p))
            p++;
    }
}

/* The canonical value of header name (any case): every occurrence trimmed,
 * joined with ',' in request order, as AWS does for repeated headers. NULL when
 * the header is absent; the caller frees the result. */
/* Whether add_trimmed would copy value unchanged. */
static bool is_trimmed(const char *value)
{
    const unsigned char *p = (const unsigned char *)value;
    if (*p == ' ')
        return false;
    for (; *p; p++)
        if (is_py_space(*p) && (*p != ' ' || p[1] == ' ' || p[1] == '\0'))
            return false;
    return true;
}

static char *header_get(const struct barge_sigv4_request *req, const char *name)
{
    /* The common case: the header once, with nothing to trim. */
    size_t count = 0, first = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i].name && strcasecmp(req->headers[i].name, name) == 0 && !count++)
            first = i;
    if (count == 0)
        return NULL;
    const char *v = req->headers[first].value ? req->headers[first].value : "";
    if (count == 1 && is_trimmed(v))
        return barge_xstrdup(v);
    struct barge_buf b = {0};
    bool found = false;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!req->headers[i].name || strcasecmp(req->headers[i].name, name) != 0)
            continue;
        if (found)
            barge_buf_addc(&b, ',');
        found = true;
        add_trimmed(&b, req->headers[i].value ? req->headers[i].value : "");
    }
    if (!found)
        return NULL;
    return barge_buf_steal(&b, NULL);
}

/* Headers a proxy may add, drop or rewrite, so no client signs them. */
static bool is_unsignable(const char *lname)
{
    static const char *const blacklist[] = {
        "authorization", "connection", "expect",     "keep-alive",        "te",
        "trailer",       "upgrade",    "user-agent", "transfer-encoding", "x-amzn-trace-id",
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(blacklist); i++)
        if (strcmp(lname, blacklist[i]) == 0)
            return true;
    return barge_str_has_prefix(lname, "proxy-");
}

static char *lower_dup(const char *s)
{
    char *l = barge_xstrdup(s);
    for (char *p = l; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return l;
}

struct sign_hdr {
    char *name; /* lower case */
    const char *value;
    size_t order; /* position in the request, to keep repeated values in order */
};

static int sign_hdr_cmp(const void *a, const void *b)
{
    const struct sign_hdr *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r)
        return r;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* ---- dates --------------------------------------------------------------- */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int atoi_n(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* timegm() that refuses dates which do not exist (Feb 30 …) instead of
 * normalising them. */
static bool make_time(int year, int mon, int mday, int hour, int min, int sec, time_t *out)
{
    if (year < 1970 || mon < 1 || mon > 12 || mday < 1 || mday > 31 || hour > 23 || min > 59 ||
        sec > 59)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = mday,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    struct tm check;
    if (t == (time_t)-1 || !gmtime_r(&t, &check) || check.tm_mday != mday ||
        check.tm_mon != mon - 1)
        return false;
    *out = t;
    return true;
}

/* ISO-8601 basic format, exactly "YYYYMMDDTHHMMSSZ". */
static bool parse_amz_date(const char *s, time_t *out)
{
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' || !all_digits(s, 8) ||
        !all_digits(s + 9, 6))
        return false;
    return make_time(atoi_n(s, 4), atoi_n(s + 4, 2), atoi_n(s + 6, 2), atoi_n(s + 9, 2),
                     atoi_n(s + 11, 2), atoi_n(s + 13, 2), out);
}

/* RFC 1123 ("Sun, 09 Jun 2013 10:00:15 GMT"); the weekday is optional and not
 * checked, the zone may be GMT, UTC or ±0000 (Python's formatdate() writes
 * "-0000"). Month names are matched by hand because strptime's %b follows the
 * locale. */
static bool parse_http_date(const char *s, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *comma = strchr(s, ',');
    if (comma)
        s = comma + 1;
    while (*s == ' ')
        s++;
    /* "09 Jun 2013 10:00:15 GMT" */
    size_t dlen = 0;
    while (s[dlen] >= '0' && s[dlen] <= '9')
        dlen++;
    if (dlen < 1 || dlen > 2 || s[dlen] != ' ')
        return false;
    int mday = atoi_n(s, dlen);
    s += dlen + 1;
    int mon = 0;
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months + 3 * i, 3) == 0)
            mon = i + 1;
    if (!mon || s[3] != ' ')
        return false;
    s += 4;
    if (!all_digits(s, 4) || s[4] != ' ')
        return false;
    int year = atoi_n(s, 4);
    s += 5;
    if (!all_digits(s, 2) || s[2] != ':' || !all_digits(s + 3, 2) || s[5] != ':' ||
        !all_digits(s + 6, 2) || s[8] != ' ')
        return false;
    int hour = atoi_n(s, 2), min = atoi_n(s + 3, 2), sec = atoi_n(s + 6, 2);
    s += 9;
    if (strcmp(s, "GMT") != 0 && strcmp(s, "UTC") != 0 && strcmp(s, "+0000") != 0 &&
        strcmp(s, "-0000") != 0)
        return false;
    return make_time(year, mon, mday, hour, min, sec, out);
}

/* ---- the canonical request and the string to sign ------------------------ */

/* CanonicalRequest = method \n uri \n query \n headers-block \n signed \n payload,
 * where the headers block ends in its own newline. Returns the string to sign
 * for it; the caller frees it. */
static char *string_to_sign(const char *method, const char *uri, const char *query,
                            const char *headers_block, const char *signed_headers,
                            const char *payload_hash, const char *amz_date, const char *scope)
{
    struct barge_buf cr = {0};
    for (const char *m = method; *m; m++)
        barge_buf_addc(&cr, (char)toupper((unsigned char)*m));
    barge_buf_addc(&cr, '\n');
    barge_buf_adds(&cr, uri);
    barge_buf_addc(&cr, '\n');
    barge_buf_adds(&cr, query);
    barge_buf_addc(&cr, '\n');
    barge_buf_adds(&cr, headers_block);
    barge_buf_addc(&cr, '\n');
    barge_buf_adds(&cr, signed_headers);
    barge_buf_addc(&cr, '\n');
    barge_buf_adds(&cr, payload_hash);

    char cr_hash[65];
    barge_sha256_hex(cr.data, cr.len, cr_hash);
    cr.len = 0;
    barge_buf_adds(&cr, ALGORITHM "\n");
    barge_buf_adds(&cr, amz_date);
    barge_buf_addc(&cr, '\n');
    barge_buf_adds(&cr, scope);
    barge_buf_addc(&cr, '\n');
    barge_buf_adds(&cr, cr_hash);
    return barge_buf_steal(&cr, NULL);
}

/* ---- signing ------------------------------------------------------------- */

void barge_sigv4_headers_free(struct barge_kv *headers, size_t n)
{
    if (!headers)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)headers[i].name);
        free((char *)headers[i].value);
    }
    free(headers);
}

/* The returned headers replace any of the same name in req: the caller sends
 * its own X-Amz-Date (and X-Amz-Security-Token, when creds has a token) no
 * more. An X-Amz-Content-SHA256 already in req is kept and not returned. */
int barge_sigv4_sign(const struct barge_sigv4_request *req, const char *region, const char *service,
                     const struct barge_sigv4_credentials *creds, time_t now, struct barge_kv **out,
                     size_t *n_out, struct barge_error **err)
{
    *out = NULL;
    *n_out = 0;
    if (!req || !req->method || !region || !service || !creds || !creds->access_key_id ||
        !creds->secret_access_key)
        return barge_error_set(err, BARGE_ERR_INVALID, "incomplete request or credentials to sign");

    _cleanup_free_ char *host = header_get(req, "host");
    if (!host)
        return barge_error_set(err, BARGE_ERR_INVALID, "request to sign has no 'host' header");

    char amz_date[17];
    barge_time_amz(now, amz_date);
    const char *token = creds->session_token;

    /* A payload hash the caller announces (UNSIGNED-PAYLOAD, STREAMING-…) is
     * signed as is, as botocore does for every service; otherwise the body's
     * hash is signed, and for S3 also announced. */
    _cleanup_free_ char *payload = header_get(req, "x-amz-content-sha256");
    bool add_content_sha = false;
    if (!payload) {
        payload = barge_xmalloc(65);
        barge_sha256_hex(req->body, req->body_len, payload);
        add_content_sha = req->s3;
    }

    /* Every header present is signed except the unsignable ones and those this
     * function replaces; the added ones join the sorted list. */
    size_t n = 0;
    struct sign_hdr *hs = barge_xcalloc(req->n_headers + 3, sizeof(*hs));
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!req->headers[i].name)
            continue;
        char *lname = lower_dup(req->headers[i].name);
        if (is_unsignable(lname) || strcmp(lname, "x-amz-date") == 0 ||
            (token && strcmp(lname, "x-amz-security-token") == 0)) {
            free(lname);
            continue;
        }
        hs[n++] = (struct sign_hdr){lname, req->headers[i].value ? req->headers[i].value : "", i};
    }
    hs[n++] = (struct sign_hdr){barge_xstrdup("x-amz-date"), amz_date, req->n_headers};
    if (token)
        hs[n++] =
            (struct sign_hdr){barge_xstrdup("x-amz-security-token"), token, req->n_headers + 1};
    if (add_content_sha)
        hs[n++] =
            (struct sign_hdr){barge_xstrdup("x-amz-content-sha256"), payload, req->n_headers + 2};
    qsort(hs, n, sizeof(*hs), sign_hdr_cmp);

    struct barge_buf block = {0}, names = {0};
    for (size_t i = 0; i < n; i++) {
        bool same_as_prev = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (same_as_prev) {
            barge_buf_addc(&block, ',');
        } else {
            if (i > 0) {
                barge_buf_addc(&block, '\n');
                barge_buf_addc(&names, ';');
            }
            barge_buf_adds(&block, hs[i].name);
            barge_buf_addc(&block, ':');
            barge_buf_adds(&names, hs[i].name);
        }
        add_trimmed(&block, hs[i].value);
    }
    barge_buf_addc(&block, '\n');
    for (size_t i = 0; i < n; i++)
        free(hs[i].name);
    free(hs);
    _cleanup_free_ char *headers_block = barge_buf_steal(&block, NULL);
    _cleanup_free_ char *signed_headers = barge_buf_steal(&names, NULL);

    _cleanup_free_ char *uri = canonical_uri(req->raw_path, req->s3);
    _cleanup_free_ char *query = canonical_query(req->raw_query, NULL);
    char date8[9];
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    _cleanup_free_ char *scope = barge_xasprintf("%s/%s/%s/" TERMINATOR, date8, region, service);
    _cleanup_free_ char *sts = string_to_sign(req->method, uri, query, headers_block,
                                              signed_headers, payload, amz_date, scope);
    char signature[65];
    compute_signature(creds->secret_access_key, date8, region, service, sts, signature);

    struct barge_kv *res = barge_xcalloc(4, sizeof(*res));
    size_t k = 0;
    res[k++] = (struct barge_kv){barge_xstrdup("X-Amz-Date"), barge_xstrdup(amz_date)};
    res[k++] = (struct barge_kv){
        barge_xstrdup("Authorization"),
        barge_xasprintf(ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                        creds->access_key_id, scope, signed_headers, signature)};
    if (token)
        res[k++] = (struct barge_kv){barge_xstrdup("X-Amz-Security-Token"), barge_xstrdup(token)};
    if (add_content_sha)
        res[k++] = (struct barge_kv){barge_xstrdup("X-Amz-Content-SHA256"), barge_xstrdup(payload)};
    *out = res;
    *n_out = k;
    return 0;
}

/* ---- verification -------------------------------------------------------- */

/* What the two forms (Authorization header, presigned query) have in common
 * once parsed. Strings are owned. */
struct sigv4_auth {
    bool presigned;
    char *algorithm;
    char *credential;
    char *signed_headers;
    char *signature;
    char *date;    /* as sent: X-Amz-Date, Date header or the query parameter */
    char *expires; /* presigned only */
    char *token;   /* X-Amz-Security-Token as sent, or NULL */
};

static void auth_release(struct sigv4_auth *a)
{
    free(a->algorithm);
    free(a->credential);
    free(a->signed_headers);
    free(a->signature);
    free(a->date);
    free(a->expires);
    free(a->token);
}

static void creds_release(struct barge_sigv4_credentials *c)
{
    if (c->secret_access_key) {
        OPENSSL_cleanse((char *)c->secret_access_key, strlen(c->secret_access_key));
        free((char *)c->secret_access_key);
    }
    if (c->session_token) {
        OPENSSL_cleanse((char *)c->session_token, strlen(c->session_token));
        free((char *)c->session_token);
    }
    free((char *)c->access_key_id);
    memset(c, 0, sizeof(*c));
}

/* Splits the parameters of "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
 * Signature=…" the way AWS tolerates them: separated by commas and/or spaces,
 * each name=value. */
static int parse_auth_header(const char *auth, struct sigv4_auth *a, struct barge_error **err)
{
    const char *p = auth;
    while (*p == ' ')
        p++;
    size_t alen = strcspn(p, " ");
    a->algorithm = barge_xstrndup(p, alen);
    p += alen;

    while (*p) {
        p += strspn(p, ", \t");
        if (!*p)
            break;
        size_t len = strcspn(p, ", \t");
        const char *eq = memchr(p, '=', len);
        if (!eq) {
            _cleanup_free_ char *name = barge_xstrndup(p, len);
            return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                                   "'%s' not a valid key=value pair (missing equal-sign) in "
                                   "Authorization header: '%s'.",
                                   name, auth);
        }
        size_t klen = (size_t)(eq - p);
        char **slot = NULL;
        if (klen == 10 && strncmp(p, "Credential", klen) == 0)
            slot = &a->credential;
        else if (klen == 13 && strncmp(p, "SignedHeaders", klen) == 0)
            slot = &a->signed_headers;
        else if (klen == 9 && strncmp(p, "Signature", klen) == 0)
            slot = &a->signature;
        if (slot) {
            free(*slot);
            *slot = barge_xstrndup(eq + 1, len - klen - 1);
        }
        p += len;
    }

    struct barge_buf msg = {0};
    if (!a->credential || !*a->credential)
        barge_buf_adds(&msg, "Authorization header requires 'Credential' parameter. ");
    if (!a->signature || !*a->signature)
        barge_buf_adds(&msg, "Authorization header requires 'Signature' parameter. ");
    if (!a->signed_headers)
        barge_buf_adds(&msg, "Authorization header requires 'SignedHeaders' parameter. ");
    if (!a->date)
        barge_buf_adds(
            &msg, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                  "header. ");
    if (msg.len) {
        _cleanup_free_ char *m = barge_buf_steal(&msg, NULL);
        return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE, "%sAuthorization=%s", m, auth);
    }
    return 0;
}

static int parse_auth_query(const struct barge_sigv4_request *req, struct sigv4_auth *a,
                            struct barge_error **err)
{
    const char *raw_query = req->raw_query;
    a->presigned = true;
    a->algorithm = query_get(raw_query, "X-Amz-Algorithm");
    a->credential = query_get(raw_query, "X-Amz-Credential");
    a->signed_headers = query_get(raw_query, "X-Amz-SignedHeaders");
    a->signature = query_get(raw_query, "X-Amz-Signature");
    a->date = query_get(raw_query, "X-Amz-Date");
    a->expires = query_get(raw_query, "X-Amz-Expires");
    a->token = query_get(raw_query, "X-Amz-Security-Token");
    if (!a->token)
        a->token = header_get(req, "x-amz-security-token");
    /* S3's wording; the query string itself is not quoted since it may carry
     * the session token. */
    if (!a->algorithm || !a->credential || !a->signed_headers || !a->signature || !a->date ||
        !a->expires)
        return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                               "Query-string authentication version 4 requires the "
                               "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                               "X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
    if (strcmp(a->algorithm, ALGORITHM) != 0)
        return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                               "X-Amz-Algorithm only supports \"" ALGORITHM "\"");
    return 0;
}

static void skew_text(int max_skew_seconds, char *buf, size_t len)
{
    if (max_skew_seconds % 60 == 0)
        snprintf(buf, len, "%d min.", max_skew_seconds / 60);
    else
        snprintf(buf, len, "%d sec.", max_skew_seconds);
}

static int check_not_future(time_t t, time_t now, int max_skew_seconds, struct barge_error **err)
{
    if (t <= now + max_skew_seconds)
        return 0;
    char a[17], b[17], c[17], skew[32];
    barge_time_amz(t, a);
    barge_time_amz(now + max_skew_seconds, b);
    barge_time_amz(now, c);
    skew_text(max_skew_seconds, skew, sizeof(skew));
    return barge_error_set(err, BARGE_ERR_AUTH_SIGNATURE,
                           "Signature not yet current: %s is still later than %s (%s + %s)", a, b,
                           c, skew);
}

static int check_skew(time_t t, time_t now, int max_skew_seconds, struct barge_error **err)
{
    if (t < now - max_skew_seconds) {
        char a[17], b[17], c[17], skew[32];
        barge_time_amz(t, a);
        barge_time_amz(now - max_skew_seconds, b);
        barge_time_amz(now, c);
        skew_text(max_skew_seconds, skew, sizeof(skew));
        return barge_error_set(err, BARGE_ERR_AUTH_SIGNATURE,
                               "Signature expired: %s is now earlier than %s (%s - %s)", a, b, c,
                               skew);
    }
    return check_not_future(t, now, max_skew_seconds, err);
}

static bool list_has(const char *semicolon_list, const char *name)
{
    const char *p = semicolon_list;
    size_t n = strlen(name);
    while (*p) {
        size_t len = strcspn(p, ";");
        if (len == n && strncasecmp(p, name, n) == 0)
            return true;
        p += len;
        if (*p == ';')
            p++;
    }
    return false;
}

/* Every x-amz-* header must be signed, as S3 requires of all requests: one
 * outside the signature (x-amz-acl, x-amz-copy-source, x-amz-content-sha256,
 * x-amz-security-token ...) could be added or changed by whoever relays a
 * signed request, or uses a presigned URL, without the signature noticing.
 * The presigned form's X-Amz-* query parameters are in the canonical query
 * and so always signed. */
static int check_amz_headers_signed(const struct barge_sigv4_request *req,
                                    const char *signed_headers, struct barge_error **err)
{
    struct barge_buf names = {0};
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name;
        if (strncasecmp(name, "x-amz-", 6) != 0 || list_has(signed_headers, name))
            continue;
        _cleanup_free_ char *lname = lower_dup(name);
        if (names.len)
            barge_buf_adds(&names, "', '");
        barge_buf_adds(&names, lname);
    }
    if (!names.len)
        return 0;
    _cleanup_free_ char *list = barge_buf_steal(&names, NULL);
    return barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                           "There were headers present in the request which were not signed: "
                           "'%s'",
                           list);
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (hexval(*p) < 0)
            return false;
    return true;
}

int barge_sigv4_verify(const struct barge_sigv4_request *req, const char *region, time_t now,
                       int max_skew_seconds, barge_sigv4_lookup_fn lookup, void *ud,
                       struct barge_sigv4_identity *who, struct barge_error **err)
{
    struct sigv4_auth a __attribute__((cleanup(auth_release))) = {0};

    _cleanup_free_ char *auth = header_get(req, "authorization");
    _cleanup_free_ char *q_alg = query_get(req->raw_query, "X-Amz-Algorithm");
    _cleanup_free_ char *q_cred = query_get(req->raw_query, "X-Amz-Credential");
    _cleanup_free_ char *q_sig = query_get(req->raw_query, "X-Amz-Signature");
    bool has_query_auth = q_alg || q_cred || q_sig;
    bool has_header_auth = auth && *auth;

    /* Like AWS, an Authorization header of another scheme (SigV2, Basic …)
     * counts as no SigV4 authentication at all. */
    if (has_header_auth && !barge_str_has_prefix(auth, "AWS4-"))
        has_header_auth = false;
    if (has_header_auth && has_query_auth)
        return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                               "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                               "parameter, Signature query string parameter or the Authorization "
                               "header should be specified");
    if (!has_header_auth && !has_query_auth)
        return barge_error_set(err, BARGE_ERR_AUTH_MISSING, MSG_MISSING);

    time_t t = 0;
    char amz_date[17];
    if (has_header_auth) {
        a.date = header_get(req, "x-amz-date");
        bool http_date = false;
        if (!a.date) {
            a.date = header_get(req, "date");
            http_date = a.date != NULL;
        }
        a.token = header_get(req, "x-amz-security-token");
        if (parse_auth_header(auth, &a, err) < 0)
            return -1;
        bool ok = http_date ? parse_http_date(a.date, &t) : parse_amz_date(a.date, &t);
        if (!ok)
            return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                                   "Date must be in ISO-8601 'basic format'. Got '%s'. See "
                                   "http://en.wikipedia.org/wiki/ISO_8601",
                                   a.date);
        if (check_skew(t, now, max_skew_seconds, err) < 0)
            return -1;
    } else {
        if (parse_auth_query(req, &a, err) < 0)
            return -1;
        if (!parse_amz_date(a.date, &t))
            return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                                   "X-Amz-Date must be in the ISO8601 Long Format "
                                   "\"yyyyMMdd'T'HHmmss'Z'\"");
        if (!all_digits(a.expires, strlen(a.expires)) || !*a.expires || strlen(a.expires) > 9)
            return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                                   a.expires[0] == '-' ? "X-Amz-Expires must be non-negative"
                                                       : "X-Amz-Expires should be a number");
        long expires = strtol(a.expires, NULL, 10);
        if (expires > MAX_PRESIGN_EXPIRES)
            return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                                   "X-Amz-Expires must be less than a week (in seconds) that is "
                                   "604800");
        if (check_not_future(t, now, max_skew_seconds, err) < 0)
            return -1;
        if (now > t + expires)
            return barge_error_set(err, BARGE_ERR_AUTH_EXPIRED, "Request has expired");
    }
    /* The canonical date is always the ISO basic form, also when the client
     * sent a Date header. */
    barge_time_amz(t, amz_date);

    if (!list_has(a.signed_headers, "host"))
        return barge_error_set(err, BARGE_ERR_AUTH_SIGNATURE,
                               "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    if (check_amz_headers_signed(req, a.signed_headers, err) < 0)
        return -1;
    if (strcmp(a.algorithm, ALGORITHM) != 0)
        return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                               "Unsupported AWS 'algorithm': '%s' (only " ALGORITHM " for now).",
                               a.algorithm);

    /* keyid/date/region/service/terminator; trailing slashes do not count. */
    _cleanup_free_ char *cred = barge_xstrdup(a.credential);
    size_t cred_len = strlen(cred);
    while (cred_len > 0 && cred[cred_len - 1] == '/')
        cred[--cred_len] = '\0';
    char *parts[5] = {0};
    size_t nparts = 0;
    for (char *s = cred;;) {
        if (nparts == 5) {
            nparts++; /* a sixth element */
            break;
        }
        parts[nparts++] = s;
        char *slash = strchr(s, '/');
        if (!slash)
            break;
        *slash = '\0';
        s = slash + 1;
    }
    if (nparts != 5) {
        if (a.presigned)
            return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                                   "Error parsing the X-Amz-Credential parameter; the Credential "
                                   "is mal-formed; expecting "
                                   "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
        return barge_error_set(err, BARGE_ERR_AUTH_INCOMPLETE,
                               "Credential must have exactly 5 slash-delimited elements, e.g. "
                               "keyid/date/region/service/term, got '%s'",
                               a.credential);
    }
    const char *akid = parts[0], *cdate = parts[1], *cregion = parts[2], *cservice = parts[3],
               *cterm = parts[4];

    struct barge_buf scope_msg = {0};
    /* region NULL: a service that serves every region (SSM, Secrets Manager,
     * S3) takes the scope's region as the one the caller addresses. */
    if (region ? strcmp(cregion, region) != 0
               : !*cregion || strlen(cregion) >= sizeof(who->region) ||
                     strspn(cregion, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(cregion)) {
        _cleanup_free_ char *m =
            barge_xasprintf("Credential should be scoped to a valid region, not '%s'. ", cregion);
        barge_buf_adds(&scope_msg, m);
    }
    if (strcmp(cterm, TERMINATOR) != 0) {
        _cleanup_free_ char *m = barge_xasprintf(
            "Credential should be scoped with a valid terminator: '" TERMINATOR "', not '%s'. ",
            cterm);
        barge_buf_adds(&scope_msg, m);
    }
    if (strncmp(cdate, amz_date, 8) != 0 || strlen(cdate) != 8) {
        _cleanup_free_ char *m =
            barge_xasprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                            "version of date from HTTP: '%s' != '%.8s', from '%s'. ",
                            cdate, amz_date, amz_date);
        barge_buf_adds(&scope_msg, m);
    }
    if (strlen(cservice) >= sizeof(who->service)) {
        _cleanup_free_ char *m =
            barge_xasprintf("Credential should be scoped to a valid service, not '%s'. ", cservice);
        barge_buf_adds(&scope_msg, m);
    }
    if (scope_msg.len) {
        scope_msg.data[--scope_msg.len] = '\0'; /* the last separating space */
        _cleanup_free_ char *m = barge_buf_steal(&scope_msg, NULL);
        return barge_error_set(err, BARGE_ERR_AUTH_SIGNATURE, "%s", m);
    }

    if (strlen(akid) >= sizeof(who->access_key_id))
        return barge_error_set(err, BARGE_ERR_AUTH_UNKNOWN_KEY, MSG_BAD_TOKEN);
    struct barge_sigv4_credentials creds __attribute__((cleanup(creds_release))) = {0};
    int found = lookup(akid, ud, &creds, err);
    if (found < 0) {
        if (err && !*err)
            barge_error_set(err, BARGE_ERR_INTERNAL, "looking up access key '%s' failed", akid);
        return -1;
    }
    if (found == 0 || !creds.secret_access_key)
        return barge_error_set(err, BARGE_ERR_AUTH_UNKNOWN_KEY, MSG_BAD_TOKEN);

    /* The payload hash: what the client announced, when it signed the
     * announcement (S3 clients always do, botocore does for unsigned payloads);
     * else the constant UNSIGNED-PAYLOAD for S3 presigned URLs, else the hash
     * of the bytes received. (An announcement present is signed: see
     * check_amz_headers_signed.) */
    _cleanup_free_ char *announced = header_get(req, "x-amz-content-sha256");
    /* Large S3 uploads are often UNSIGNED-PAYLOAD: hash only when it counts. */
    bool announced_hash = announced && is_hex64(announced);
    char body_hash[65] = "";
    if (announced_hash || (!announced && !(a.presigned && req->s3)))
        barge_sha256_hex(req->body, req->body_len, body_hash);
    const char *payload = announced                ? announced
                          : a.presigned && req->s3 ? UNSIGNED_PAYLOAD
                                                   : body_hash;

    /* Canonical headers in the client's SignedHeaders order and spelling: a
     * compliant client sent them sorted and in lower case, and anything else
     * would not have matched its own signature either. */
    struct barge_buf block = {0};
    for (const char *p = a.signed_headers; *p;) {
        size_t len = strcspn(p, ";");
        if (len > 0) {
            _cleanup_free_ char *name = barge_xstrndup(p, len);
            _cleanup_free_ char *value = header_get(req, name);
            barge_buf_adds(&block, name);
            barge_buf_addc(&block, ':');
            barge_buf_adds(&block, value ? value : "");
            barge_buf_addc(&block, '\n');
        }
        p += len;
        if (*p == ';')
            p++;
    }
    _cleanup_free_ char *headers_block = barge_buf_steal(&block, NULL);
    _cleanup_free_ char *uri = canonical_uri(req->raw_path, req->s3);
    _cleanup_free_ char *query =
        canonical_query(req->raw_query, a.presigned ? "X-Amz-Signature" : NULL);
    _cleanup_free_ char *scope = barge_xasprintf("%s/%s/%s/" TERMINATOR, cdate, cregion, cservice);
    _cleanup_free_ char *sts = string_to_sign(req->method, uri, query, headers_block,
                                              a.signed_headers, payload, amz_date, scope);
    char expected[65];
    compute_signature(creds.secret_access_key, cdate, cregion, cservice, sts, expected);
    if (strlen(a.signature) != 64 || CRYPTO_memcmp(expected, a.signature, 64) != 0)
        return barge_error_set(err, BARGE_ERR_AUTH_SIGNATURE, MSG_MISMATCH);

    /* A temporary key is only valid together with its token; a token sent with
     * a long-term key is not one barge issued. */
    if (creds.session_token || a.token) {
        size_t want = creds.session_token ? strlen(creds.session_token) : 0;
        size_t got = a.token ? strlen(a.token) : 0;
        if (!creds.session_token || !a.token || want != got ||
            CRYPTO_memcmp(creds.session_token, a.token, want) != 0)
            return barge_error_set(err, BARGE_ERR_AUTH_UNKNOWN_KEY, MSG_BAD_TOKEN);
    }

    /* The signature covers the announced hash; make sure the body is the one it
     * announced (S3's XAmzContentSHA256Mismatch). UNSIGNED-PAYLOAD and the
     * STREAMING-* forms leave the body to the caller: aws-chunked bodies carry
     * their own chunk signatures or trailing checksums, which only the S3
     * layer that decodes them can check. */
    if (announced_hash && strcasecmp(announced, body_hash) != 0)
        return barge_error_set_type(
            err, BARGE_ERR_AUTH_SIGNATURE, "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.");

    if (!who)
        return 0;
    memset(who, 0, sizeof(*who));
    barge_strlcpy(who->access_key_id, akid, sizeof(who->access_key_id));
    barge_strlcpy(who->region, cregion, sizeof(who->region));
    barge_strlcpy(who->service, cservice, sizeof(who->service));
    return 0;
}

void barge_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                             const char *service, unsigned char out[32])
{
    size_t secret_len = strlen(secret);
    size_t k0_len = 4 + secret_len;
    unsigned char *k0 = barge_xmalloc(k0_len);
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, secret_len);
    hmac_sha256(k0, k0_len, date8, strlen(date8), out);
    OPENSSL_cleanse(k0, k0_len);
    free(k0);
    hmac_sha256(out, 32, region, strlen(region), out);
    hmac_sha256(out, 32, service, strlen(service), out);
    hmac_sha256(out, 32, TERMINATOR, strlen(TERMINATOR), out);
}
