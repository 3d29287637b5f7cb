/* The aws-chunked decoder: unsigned chunks with a trailing checksum, signed
 * chunks whose signatures chain from the request's (checked against values
 * computed independently here), and the malformed bodies it must refuse. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "api/s3.h"
#include "common/json.h"
#include "common/sigv4.h"

static int decode(const char *body, const struct barge_s3_chunk_signer *signer, char **out,
                  size_t *len, json_t **trailers, const char **code)
{
    struct barge_error *err = NULL;
    int r = barge_s3_chunked_decode(body, strlen(body), signer, out, len, trailers, &err);
    *code = NULL;
    if (r < 0) {
        static char type[64];
        snprintf(type, sizeof(type), "%s", err->type ? err->type : "?");
        *code = type;
        barge_error_free(err);
    }
    return r;
}

static void test_unsigned_with_trailer(void **state)
{
    const char *body = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    char *out;
    size_t len;
    json_t *tr;
    const char *code;
    assert_int_equal(decode(body, NULL, &out, &len, &tr, &code), 0);
    assert_int_equal(len, 11);
    assert_string_equal(out, "hello world");
    assert_string_equal(barge_json_str(tr, "x-amz-checksum-crc32", ""), "DUoRhQ==");
    free(out);
    json_decref(tr);
    /* Without trailers, and without the final empty line some clients omit. */
    assert_int_equal(decode("3\r\nabc\r\n0\r\n\r\n", NULL, &out, &len, &tr, &code), 0);
    assert_string_equal(out, "abc");
    assert_int_equal(json_object_size(tr), 0);
    free(out);
    json_decref(tr);
    assert_int_equal(decode("3\r\nabc\r\n0\r\n", NULL, &out, &len, &tr, &code), 0);
    free(out);
    json_decref(tr);
    /* Binary data with CR LF inside a chunk is data, not framing. */
    assert_int_equal(decode("4\r\n\r\n\r\n\r\n0\r\n\r\n", NULL, &out, &len, &tr, &code), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "\r\n\r\n", 4);
    free(out);
    json_decref(tr);
}

static void test_malformed(void **state)
{
    const char *bad[] = {
        "",                                         /* nothing */
        "zz\r\nabc\r\n0\r\n\r\n",                   /* not hex */
        "10\r\nabc\r\n0\r\n\r\n",                   /* shorter than its size */
        "3\r\nabcX\r\n0\r\n\r\n",                   /* no CRLF after the data */
        "3\r\nabc\r\n",                             /* no last chunk */
        "3\r\nabc\r\n0\r\nbroken\r\n\r\n",          /* trailer without ':' */
        "3\r\nabc\r\n0\r\n\r\ntrailing",            /* data after the end */
        "3;chunk-signature=00\r\nabc\r\n0\r\n\r\n", /* a signature on an unsigned upload */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = NULL;
        size_t len;
        json_t *tr = NULL;
        const char *code;
        if (decode(bad[i], NULL, &out, &len, &tr, &code) != -1)
            fail_msg("accepted malformed body %zu", i);
        assert_null(out);
        assert_null(tr);
    }
}

/* Independent computation of a chunk signature (the AWS docs' formula). */
static void sign(const unsigned char key[32], const char *kind, const char *date, const char *scope,
                 const char *prev, const char *mid, const char *data, size_t len, char out[65])
{
    char hash[65];
    barge_sha256_hex(data, len, hash);
    char sts[1024];
    if (mid)
        snprintf(sts, sizeof(sts), "%s\n%s\n%s\n%s\n%s\n%s", kind, date, scope, prev, mid, hash);
    else
        snprintf(sts, sizeof(sts), "%s\n%s\n%s\n%s\n%s", kind, date, scope, prev, hash);
    unsigned char mac[32];
    unsigned int n;
    HMAC(EVP_sha256(), key, 32, (unsigned char *)sts, strlen(sts), mac, &n);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", mac[i]);
}

#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_signed_chunks(void **state)
{
    struct barge_s3_chunk_signer s = {0};
    barge_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1",
                            "s3", s.key);
    strcpy(s.amz_date, "20130524T000000Z");
    strcpy(s.scope, "20130524/us-east-1/s3/aws4_request");
    strcpy(s.seed, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    char s1[65], s2[65], s3[65], tsig[65];
    sign(s.key, "AWS4-HMAC-SHA256-PAYLOAD", s.amz_date, s.scope, s.seed, EMPTY, "hello", 5, s1);
    sign(s.key, "AWS4-HMAC-SHA256-PAYLOAD", s.amz_date, s.scope, s1, EMPTY, " world", 6, s2);
    sign(s.key, "AWS4-HMAC-SHA256-PAYLOAD", s.amz_date, s.scope, s2, EMPTY, "", 0, s3);
    const char *trailer = "x-amz-checksum-crc32:DUoRhQ==\n";
    sign(s.key, "AWS4-HMAC-SHA256-TRAILER", s.amz_date, s.scope, s3, NULL, trailer, strlen(trailer),
         tsig);
    char body[2048];
    snprintf(body, sizeof(body),
             "5;chunk-signature=%s\r\nhello\r\n6;chunk-signature=%s\r\n world\r\n"
             "0;chunk-signature=%s\r\n\r\n",
             s1, s2, s3);
    char *out;
    size_t len;
    json_t *tr;
    const char *code;
    assert_int_equal(decode(body, &s, &out, &len, &tr, &code), 0);
    assert_string_equal(out, "hello world");
    free(out);
    json_decref(tr);

    snprintf(body, sizeof(body),
             "5;chunk-signature=%s\r\nhello\r\n6;chunk-signature=%s\r\n world\r\n"
             "0;chunk-signature=%s\r\nx-amz-checksum-crc32:DUoRhQ==\r\n"
             "x-amz-trailer-signature:%s\r\n\r\n",
             s1, s2, s3, tsig);
    assert_int_equal(decode(body, &s, &out, &len, &tr, &code), 0);
    assert_string_equal(barge_json_str(tr, "x-amz-checksum-crc32", ""), "DUoRhQ==");
    assert_null(json_object_get(tr, "x-amz-trailer-signature"));
    free(out);
    json_decref(tr);

    /* Chunks swapped, a missing signature, a tampered byte, a forged
     * trailer: each breaks the chain. */
    const char *fmts[] = {
        "6;chunk-signature=%s\r\n world\r\n5;chunk-signature=%s\r\nhello\r\n"
        "0;chunk-signature=%s\r\n\r\n",
        "5\r\nhello\r\n6;chunk-signature=%s\r\n world\r\n0;chunk-signature=%s%s\r\n\r\n",
        "5;chunk-signature=%s\r\nhellO\r\n6;chunk-signature=%s\r\n world\r\n"
        "0;chunk-signature=%s\r\n\r\n",
    };
    for (size_t i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), fmts[i], s1, s2, s3);
        assert_int_equal(decode(body, &s, &out, &len, &tr, &code), -1);
        assert_string_equal(code, "SignatureDoesNotMatch");
    }
    snprintf(body, sizeof(body),
             "5;chunk-signature=%s\r\nhello\r\n6;chunk-signature=%s\r\n world\r\n"
             "0;chunk-signature=%s\r\nx-amz-checksum-crc32:AAAAAA==\r\n"
             "x-amz-trailer-signature:%s\r\n\r\n",
             s1, s2, s3, tsig);
    assert_int_equal(decode(body, &s, &out, &len, &tr, &code), -1);
    assert_string_equal(code, "SignatureDoesNotMatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsigned_with_trailer),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_signed_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
