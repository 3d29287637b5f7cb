/* Encryption at rest: AES-256-GCM envelopes round-trip, refuse tampering, a
 * wrong key or another record's label; the master key file is created once
 * with mode 0600 and read back; base64 and the S3 checksums match known
 * vectors. */
/* cmocka needs these system headers first. */
/* clang-format off */
#include <sys/stat.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "common/crypto.h"

static struct barge_crypto_key test_key(unsigned char fill)
{
    struct barge_crypto_key k;
    memset(k.bytes, fill, sizeof(k.bytes));
    return k;
}

static void test_round_trip(void **state)
{
    struct barge_crypto_key k = test_key(7);
    const char *secret = "s3cr3t-p@ssw0rd";
    char *env = barge_crypto_seal(&k, secret, strlen(secret), "ssm|us-east-1|/db/pass|1");
    assert_null(strstr(env, secret));
    char *out = NULL;
    size_t len = 0;
    struct barge_error *err = NULL;
    assert_int_equal(barge_crypto_open(&k, env, "ssm|us-east-1|/db/pass|1", &out, &len, &err), 0);
    assert_int_equal(len, strlen(secret));
    assert_string_equal(out, secret);
    barge_crypto_free(out, len);
    /* Two seals of one value differ (random nonce). */
    char *env2 = barge_crypto_seal(&k, secret, strlen(secret), "ssm|us-east-1|/db/pass|1");
    assert_string_not_equal(env, env2);
    free(env);
    free(env2);
}

static void test_empty_and_binary(void **state)
{
    struct barge_crypto_key k = test_key(1);
    char *env = barge_crypto_seal(&k, "", 0, "");
    char *out = NULL;
    size_t len = 9;
    struct barge_error *err = NULL;
    assert_int_equal(barge_crypto_open(&k, env, "", &out, &len, &err), 0);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    barge_crypto_free(out, len);
    free(env);
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (unsigned char)i;
    env = barge_crypto_seal(&k, bin, sizeof(bin), "b");
    assert_int_equal(barge_crypto_open(&k, env, "b", &out, &len, &err), 0);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(out, bin, sizeof(bin));
    barge_crypto_free(out, len);
    free(env);
}

static void expect_open_fails(const struct barge_crypto_key *k, const char *env, const char *aad)
{
    char *out = (char *)"untouched";
    size_t len = 0;
    struct barge_error *err = NULL;
    assert_int_equal(barge_crypto_open(k, env, aad, &out, &len, &err), -1);
    assert_null(out);
    assert_non_null(err);
    assert_non_null(strstr(err->message, "cannot decrypt"));
    barge_error_free(err);
}

static void test_tamper_detection(void **state)
{
    struct barge_crypto_key k = test_key(3), other = test_key(4);
    char *env = barge_crypto_seal(&k, "value", 5, "label");
    expect_open_fails(&other, env, "label"); /* wrong key */
    expect_open_fails(&k, env, "label2");    /* another record's envelope */
    expect_open_fails(&k, "not base64!", "label");
    expect_open_fails(&k, "AAAA", "label"); /* too short */
    /* Flip one bit of every byte position in turn: each must be caught. */
    size_t n = 0;
    unsigned char *raw = barge_base64_decode(env, &n);
    assert_non_null(raw);
    for (size_t i = 0; i < n; i++) {
        raw[i] ^= 0x01;
        char *bad = barge_base64_encode(raw, n);
        expect_open_fails(&k, bad, "label");
        free(bad);
        raw[i] ^= 0x01;
    }
    /* A truncated tag fails too. */
    char *shorter = barge_base64_encode(raw, n - 1);
    expect_open_fails(&k, shorter, "label");
    free(shorter);
    free(raw);
    free(env);
}

static void test_key_file(void **state)
{
    char dir[] = "/tmp/barge-crypto-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/master.key", dir);
    struct barge_crypto_key k1, k2;
    bool created = false;
    struct barge_error *err = NULL;
    unsetenv("BARGE_TEST_MASTER_KEY");
    assert_int_equal(
        barge_crypto_key_load("BARGE_TEST_MASTER_KEY", path, false, &k1, &created, &err), -1);
    barge_error_free(err);
    err = NULL;
    assert_int_equal(
        barge_crypto_key_load("BARGE_TEST_MASTER_KEY", path, true, &k1, &created, &err), 0);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(
        barge_crypto_key_load("BARGE_TEST_MASTER_KEY", path, true, &k2, &created, &err), 0);
    assert_false(created);
    assert_memory_equal(k1.bytes, k2.bytes, sizeof(k1.bytes));

    /* The environment wins over the file, in hex or base64. */
    setenv("BARGE_TEST_MASTER_KEY",
           "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    assert_int_equal(
        barge_crypto_key_load("BARGE_TEST_MASTER_KEY", path, true, &k2, &created, &err), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(k2.bytes[i], i);
    setenv("BARGE_TEST_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1);
    struct barge_crypto_key k3;
    assert_int_equal(
        barge_crypto_key_load("BARGE_TEST_MASTER_KEY", path, true, &k3, &created, &err), 0);
    assert_memory_equal(k2.bytes, k3.bytes, 32);
    setenv("BARGE_TEST_MASTER_KEY", "too short", 1);
    assert_int_equal(
        barge_crypto_key_load("BARGE_TEST_MASTER_KEY", path, true, &k3, &created, &err), -1);
    assert_null(strstr(err->message, "too short"));
    barge_error_free(err);
    unsetenv("BARGE_TEST_MASTER_KEY");
    unlink(path);
    rmdir(dir);
}

static void test_base64(void **state)
{
    char *e = barge_base64_encode("foobar", 6);
    assert_string_equal(e, "Zm9vYmFy");
    free(e);
    e = barge_base64_encode("fo", 2);
    assert_string_equal(e, "Zm8=");
    size_t n = 0;
    unsigned char *d = barge_base64_decode(e, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "fo", 2);
    free(d);
    free(e);
    assert_null(barge_base64_decode("Zm8", &n));
    d = barge_base64_decode("", &n);
    assert_int_equal(n, 0);
    free(d);
}

static void test_checksums(void **state)
{
    assert_int_equal(barge_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(barge_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Continuation equals one pass. */
    uint32_t c = barge_crc32(0, "1234", 4);
    assert_int_equal(barge_crc32(c, "56789", 5), 0xCBF43926u);
    assert_int_equal(barge_crc32(0, "", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_empty_and_binary),
        cmocka_unit_test(test_tamper_detection), cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_base64),           cmocka_unit_test(test_checksums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
