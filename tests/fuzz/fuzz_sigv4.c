/* Fuzzes SigV4 verification (src/common/sigv4.c) the way barged meets it: a
 * whole request from the network, its Authorization header or presigned
 * query parsed, the canonical request rebuilt, the signature checked against
 * a known key at the time the seeds were signed (so a seed passes, and the
 * fuzzer mutates from a valid request). The input is
 *
 *     METHOD PATH[?QUERY]
 *     Name: value            (one line per header)
 *                            (an empty line)
 *     body
 *
 * A first header line "x-fuzz-s3: 1" selects S3's rules. Also checks that a
 * request barge signs itself verifies. */
#include <ctype.h>
#include <stdio.h>

#include "common/sigv4.h"
#include "fuzz.h"

#define MAX_HEADERS 64
/* tests/fuzz/make_corpus.py signs the seeds at this time with these keys. */
#define SEED_TIME  ((time_t)1715949296LL)
#define AKID       "AKIDEXAMPLEBARGE0001"
#define SECRET     "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define AKID_TMP   "ASIATEMPORARYBARGE01"
#define SECRET_TMP "tmpSecret/0123456789+abcdefghijklmnopqrstu"
#define TOKEN      "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token=="

static int lookup(const char *akid, void *ud, struct barge_sigv4_credentials *out,
                  struct barge_error **err)
{
    if (strcmp(akid, AKID) == 0) {
        out->access_key_id = strdup(AKID);
        out->secret_access_key = strdup(SECRET);
        out->session_token = NULL;
        return 1;
    }
    if (strcmp(akid, AKID_TMP) == 0) {
        out->access_key_id = strdup(AKID_TMP);
        out->secret_access_key = strdup(SECRET_TMP);
        out->session_token = strdup(TOKEN);
        return 1;
    }
    if (strcmp(akid, "AKIDFAILINGLOOKUP") == 0)
        return barge_error_set(err, BARGE_ERR_IO, "key store unavailable");
    return 0;
}

/* Only what HTTP can carry: a token for a name, no control characters in a
 * value. Anything else is a request barge never signs. */
static bool sendable(const struct barge_kv *h)
{
    if (!*h->name)
        return false;
    for (const char *c = h->name; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("!#$%&'*+-.^_`|~", *c))
            return false;
    for (const unsigned char *c = (const unsigned char *)h->value; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

static void verify(const struct barge_sigv4_request *req, const char *region)
{
    struct barge_error *err = NULL;
    struct barge_sigv4_identity who;
    if (barge_sigv4_verify(req, region, SEED_TIME, 900, lookup, NULL, &who, &err) < 0) {
        if (!err || !err->message)
            abort(); /* a failure must say why */
        barge_error_free(err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *lines[MAX_HEADERS + 1];
    struct barge_kv headers[MAX_HEADERS + 1];
    size_t n_lines = 0, n = 0;
    bool s3 = false;

    char *start = fuzz_line(&data, &size);
    char *sp = strchr(start, ' ');
    const char *method = start, *target = "/";
    if (sp) {
        *sp = '\0';
        target = sp + 1;
    }
    char *path = strdup(target);
    char *q = strchr(path, '?');
    const char *query = "";
    if (q) {
        *q = '\0';
        query = q + 1;
    }
    while (size > 0 && n_lines < MAX_HEADERS) {
        char *line = fuzz_line(&data, &size);
        lines[n_lines++] = line;
        if (!*line)
            break;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        if (strcasecmp(line, "x-fuzz-s3") == 0) {
            s3 = true;
            continue;
        }
        headers[n++] = (struct barge_kv){line, value};
    }
    struct barge_sigv4_request req = {
        .method = method,
        .raw_path = path,
        .raw_query = query,
        .headers = headers,
        .n_headers = n,
        .body = data,
        .body_len = size,
        .s3 = s3,
    };
    verify(&req, "us-east-1");
    verify(&req, NULL);

    /* What barge signs, barge accepts: the request without its signature
     * (and without a payload hash, which the signer computes), signed again
     * with a known key. */
    struct barge_kv base[MAX_HEADERS], all[MAX_HEADERS + 8];
    size_t n_base = 0, k = 0;
    bool has_host = false, all_sendable = true;
    for (size_t i = 0; i < n; i++) {
        has_host |= strcasecmp(headers[i].name, "host") == 0;
        all_sendable &= sendable(&headers[i]);
        if (strcasecmp(headers[i].name, "authorization") != 0 &&
            strcasecmp(headers[i].name, "x-amz-date") != 0 &&
            strcasecmp(headers[i].name, "x-amz-security-token") != 0 &&
            strcasecmp(headers[i].name, "x-amz-content-sha256") != 0)
            base[n_base++] = headers[i];
    }
    /* A query carrying X-Amz-* parameters reads as a presigned URL, which
     * the header signature does not make. */
    if (!has_host || !all_sendable || *path != '/' || strcasestr(query, "x-amz-"))
        goto out;
    struct barge_kv *added = NULL;
    size_t n_added = 0;
    struct barge_error *err = NULL;
    struct barge_sigv4_credentials creds = {AKID, SECRET, NULL};
    struct barge_sigv4_request to_sign = req;
    to_sign.headers = base;
    to_sign.n_headers = n_base;
    if (barge_sigv4_sign(&to_sign, "us-east-1", s3 ? "s3" : "ecs", &creds, SEED_TIME, &added,
                         &n_added, &err) < 0) {
        barge_error_free(err);
        goto out;
    }
    /* the signer's headers replace any of the same name */
    for (size_t i = 0; i < n_base; i++) {
        bool replaced = false;
        for (size_t j = 0; j < n_added; j++)
            replaced |= strcasecmp(base[i].name, added[j].name) == 0;
        if (!replaced)
            all[k++] = base[i];
    }
    for (size_t j = 0; j < n_added; j++)
        all[k++] = added[j];
    to_sign.headers = all;
    to_sign.n_headers = k;
    struct barge_sigv4_identity who;
    if (barge_sigv4_verify(&to_sign, "us-east-1", SEED_TIME, 900, lookup, NULL, &who, &err) < 0) {
        fprintf(stderr, "barge refuses its own signature: %s\n", err->message);
        abort();
    }
    barge_sigv4_headers_free(added, n_added);
out:
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i]);
    free(path);
    free(start);
    return 0;
}
