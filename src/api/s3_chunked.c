/* The aws-chunked upload encoding (see s3.h). Newer SDKs send it for
 * streaming uploads with trailing checksums, and several S3 clients sign each
 * chunk: string to sign "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous
 * signature>\n<hash of "">\n<hash of chunk>", the trailer likewise with
 * "AWS4-HMAC-SHA256-TRAILER" and the hash of the trailing headers. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

#include "api/s3.h"
#include "common/json.h"
#include "common/sigv4.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int incomplete(struct barge_error **err, const char *what)
{
    return barge_error_set_type(err, BARGE_ERR_INVALID, "IncompleteBody",
                                "The aws-chunked body is malformed: %s.", what);
}

static void chunk_signature(const struct barge_s3_chunk_signer *s, const char *kind,
                            const char *prev, const char *hash_line, const char *data_hash,
                            char out[65])
{
    _cleanup_free_ char *sts =
        hash_line
            ? barge_xasprintf("%s\n%s\n%s\n%s\n%s\n%s", kind, s->amz_date, s->scope, prev,
                              hash_line, data_hash)
            : barge_xasprintf("%s\n%s\n%s\n%s\n%s", kind, s->amz_date, s->scope, prev, data_hash);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), s->key, sizeof(s->key), (const unsigned char *)sts, strlen(sts), mac,
              &mac_len))
        abort();
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static int check_sig(const char *want, const char *got, struct barge_error **err)
{
    if (!got || strlen(got) != 64 || CRYPTO_memcmp(want, got, 64) != 0)
        return barge_error_set_type(err, BARGE_ERR_AUTH_SIGNATURE, "SignatureDoesNotMatch",
                                    "The chunk signature we calculated does not match the "
                                    "signature you provided.");
    return 0;
}

/* The next line (up to CRLF) starting at *pos; NULL when there is none. */
static const char *next_line(const char *body, size_t len, size_t *pos, size_t *line_len)
{
    if (*pos >= len)
        return NULL;
    const char *start = body + *pos;
    const char *cr = memmem(start, len - *pos, "\r\n", 2);
    if (!cr)
        return NULL;
    *line_len = (size_t)(cr - start);
    *pos += *line_len + 2;
    return start;
}

int barge_s3_chunked_decode(const char *body, size_t len,
                            const struct barge_s3_chunk_signer *signer, char **out, size_t *out_len,
                            json_t **trailers, struct barge_error **err)
{
    *out = NULL;
    *out_len = 0;
    *trailers = NULL;
    size_t pos = 0, cap = len + 1, olen = 0;
    char *data = barge_xmalloc(cap);
    json_t *tr = json_object();
    /* Declared before the first goto: cleanups must never see garbage. */
    _cleanup_free_ char *canonical = NULL, *trailer_sig = NULL;
    char prev[65] = "";
    if (signer)
        memcpy(prev, signer->seed, sizeof(prev));
    bool last = false;
    while (!last) {
        size_t n;
        const char *line = next_line(body, len, &pos, &n);
        if (!line) {
            incomplete(err, "a chunk header is missing");
            goto fail;
        }
        _cleanup_free_ char *hdr = barge_xstrndup(line, n);
        char *semi = strchr(hdr, ';');
        const char *sig = NULL;
        if (semi) {
            *semi = '\0';
            if (!barge_str_has_prefix(semi + 1, "chunk-signature=")) {
                incomplete(err, "unknown chunk extension");
                goto fail;
            }
            sig = semi + 1 + strlen("chunk-signature=");
        }
        if (!*hdr || strspn(hdr, "0123456789abcdefABCDEF") != strlen(hdr) || strlen(hdr) > 15) {
            incomplete(err, "a chunk size is not hexadecimal");
            goto fail;
        }
        size_t size = (size_t)strtoull(hdr, NULL, 16);
        if (size > len - pos) {
            incomplete(err, "a chunk is shorter than its size");
            goto fail;
        }
        if (signer) {
            char hash[65], want[65];
            barge_sha256_hex(body + pos, size, hash);
            chunk_signature(signer, "AWS4-HMAC-SHA256-PAYLOAD", prev, EMPTY_SHA256, hash, want);
            if (check_sig(want, sig, err) < 0)
                goto fail;
            memcpy(prev, want, sizeof(prev));
        } else if (sig) {
            barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidRequest",
                                 "A chunk signature was sent for an unsigned payload.");
            goto fail;
        }
        memcpy(data + olen, body + pos, size);
        olen += size;
        pos += size;
        if (size == 0) {
            last = true;
            break;
        }
        if (len - pos < 2 || memcmp(body + pos, "\r\n", 2) != 0) {
            incomplete(err, "a chunk does not end with CRLF");
            goto fail;
        }
        pos += 2;
    }
    /* Trailing headers up to an empty line (which some clients leave out at
     * the very end of the body). */
    canonical = barge_xstrdup("");
    for (;;) {
        size_t n;
        const char *line = next_line(body, len, &pos, &n);
        if (!line) {
            if (pos < len) {
                incomplete(err, "a trailing header does not end with CRLF");
                goto fail;
            }
            break;
        }
        if (n == 0)
            break;
        const char *colon = memchr(line, ':', n);
        if (!colon) {
            incomplete(err, "a trailing header has no ':'");
            goto fail;
        }
        _cleanup_free_ char *name = barge_xstrndup(line, (size_t)(colon - line));
        _cleanup_free_ char *value = barge_xstrndup(colon + 1, n - (size_t)(colon + 1 - line));
        for (char *p = name; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        char *v = value;
        while (*v == ' ')
            v++;
        if (strcmp(name, "x-amz-trailer-signature") == 0) {
            free(trailer_sig);
            trailer_sig = barge_xstrdup(v);
            continue;
        }
        char *joined = barge_xasprintf("%s%s:%s\n", canonical, name, v);
        free(canonical);
        canonical = joined;
        json_object_set_new(tr, name, json_string(v));
    }
    if (pos != len) {
        incomplete(err, "data follows the trailing headers");
        goto fail;
    }
    if (signer && json_object_size(tr) > 0) {
        char hash[65], want[65];
        barge_sha256_hex(canonical, strlen(canonical), hash);
        chunk_signature(signer, "AWS4-HMAC-SHA256-TRAILER", prev, NULL, hash, want);
        if (check_sig(want, trailer_sig, err) < 0)
            goto fail;
    }
    data[olen] = '\0';
    *out = data;
    *out_len = olen;
    *trailers = tr;
    return 0;
fail:
    free(data);
    json_decref(tr);
    return -1;
}
