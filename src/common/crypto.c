/* AES-256-GCM envelopes, the master key file and base64/CRC helpers (see
 * crypto.h). The envelope layout is: 1 format byte (0x01), 12 bytes of nonce,
 * the ciphertext, 16 bytes of tag; all base64. A random nonce per value is
 * safe for far more values than barged will ever hold under one key. */
#include "common/crypto.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "common/ids.h"

#define FORMAT_V1 0x01
#define NONCE_LEN 12
#define TAG_LEN   16

char *barge_base64_encode(const void *data, size_t len)
{
    char *out = barge_xmalloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[n] = '\0';
    return out;
}

unsigned char *barge_base64_decode(const char *text, size_t *out_len)
{
    size_t len = strlen(text);
    if (len % 4 != 0)
        return NULL;
    unsigned char *out = barge_xmalloc(len / 4 * 3 + 1);
    if (len == 0) {
        out[0] = '\0';
        *out_len = 0;
        return out;
    }
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts padding as data. */
    for (size_t i = len; i > 0 && text[i - 1] == '='; i--)
        n--;
    out[n] = '\0';
    *out_len = (size_t)n;
    return out;
}

void barge_crypto_free(void *p, size_t len)
{
    if (!p)
        return;
    explicit_bzero(p, len);
    free(p);
}

void barge_crypto_free_str(char *s)
{
    if (s)
        barge_crypto_free(s, strlen(s));
}

char *barge_crypto_seal(const struct barge_crypto_key *key, const void *plain, size_t len,
                        const char *aad)
{
    size_t total = 1 + NONCE_LEN + len + TAG_LEN;
    unsigned char *buf = barge_xmalloc(total);
    buf[0] = FORMAT_V1;
    unsigned char *nonce = buf + 1, *ct = buf + 1 + NONCE_LEN, *tag = ct + len;
    barge_random_bytes(nonce, NONCE_LEN);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key->bytes, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        (len > 0 && EVP_EncryptUpdate(ctx, ct, &n, plain, (int)len) != 1) ||
        EVP_EncryptFinal_ex(ctx, ct + (len > 0 ? n : 0), &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        abort();
    EVP_CIPHER_CTX_free(ctx);
    char *out = barge_base64_encode(buf, total);
    barge_crypto_free(buf, total);
    return out;
}

int barge_crypto_open(const struct barge_crypto_key *key, const char *envelope, const char *aad,
                      char **out, size_t *out_len, struct barge_error **err)
{
    *out = NULL;
    size_t total = 0;
    unsigned char *buf = envelope ? barge_base64_decode(envelope, &total) : NULL;
    if (!buf || total < 1 + NONCE_LEN + TAG_LEN || buf[0] != FORMAT_V1) {
        free(buf);
        return barge_error_set(err, BARGE_ERR_INTERNAL,
                               "cannot decrypt the value of '%s': not an envelope barged made",
                               aad);
    }
    size_t len = total - 1 - NONCE_LEN - TAG_LEN;
    unsigned char *nonce = buf + 1, *ct = buf + 1 + NONCE_LEN, *tag = ct + len;
    unsigned char *plain = barge_xmalloc(len + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok = 0;
    if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key->bytes, nonce) != 1)
        abort();
    if (EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
        (len == 0 || EVP_DecryptUpdate(ctx, plain, &n, ct, (int)len) == 1) &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) {
        int m = 0;
        /* Final checks the tag: a wrong key, aad or any flipped bit fails. */
        ok = EVP_DecryptFinal_ex(ctx, plain + (len > 0 ? n : 0), &m) == 1;
    }
    EVP_CIPHER_CTX_free(ctx);
    barge_crypto_free(buf, total);
    if (!ok) {
        barge_crypto_free(plain, len + 1);
        return barge_error_set(err, BARGE_ERR_INTERNAL,
                               "cannot decrypt the value of '%s': wrong master key or tampered "
                               "data",
                               aad);
    }
    plain[len] = '\0';
    *out = (char *)plain;
    *out_len = len;
    return 0;
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

/* Accepts 64 hex characters or base64 of 32 bytes, surrounding whitespace
 * ignored; raw_ok also accepts exactly 32 bytes as they are. */
static int parse_key(const char *text, size_t len, bool raw_ok, struct barge_crypto_key *out)
{
    if (raw_ok && len == BARGE_CRYPTO_KEY_LEN) {
        memcpy(out->bytes, text, BARGE_CRYPTO_KEY_LEN);
        return 0;
    }
    while (len > 0 && strchr(" \t\r\n", text[len - 1]))
        len--;
    while (len > 0 && strchr(" \t\r\n", *text)) {
        text++;
        len--;
    }
    if (len == 2 * BARGE_CRYPTO_KEY_LEN) {
        for (size_t i = 0; i < BARGE_CRYPTO_KEY_LEN; i++) {
            int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
            if (hi < 0 || lo < 0)
                goto try_base64;
            out->bytes[i] = (unsigned char)(hi * 16 + lo);
        }
        return 0;
    }
try_base64:;
    _cleanup_free_ char *copy = barge_xstrndup(text, len);
    size_t n = 0;
    unsigned char *raw = barge_base64_decode(copy, &n);
    if (!raw || n != BARGE_CRYPTO_KEY_LEN) {
        if (raw)
            barge_crypto_free(raw, n);
        return -1;
    }
    memcpy(out->bytes, raw, BARGE_CRYPTO_KEY_LEN);
    barge_crypto_free(raw, n);
    return 0;
}

static int create_key_file(const char *path, struct barge_crypto_key *out, struct barge_error **err)
{
    barge_random_bytes(out->bytes, BARGE_CRYPTO_KEY_LEN);
    char text[2 * BARGE_CRYPTO_KEY_LEN + 2];
    for (size_t i = 0; i < BARGE_CRYPTO_KEY_LEN; i++)
        snprintf(text + 2 * i, 3, "%02x", out->bytes[i]);
    text[2 * BARGE_CRYPTO_KEY_LEN] = '\n';
    text[2 * BARGE_CRYPTO_KEY_LEN + 1] = '\0';
    /* O_EXCL: two barged starting on one data directory must not each make a
     * key; the loser reads the winner's. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        explicit_bzero(text, sizeof(text));
        return errno == EEXIST
                   ? 1
                   : barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", path);
    }
    size_t len = sizeof(text) - 1;
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    explicit_bzero(text, sizeof(text));
    if (close(fd) < 0)
        ok = false;
    if (!ok) {
        int saved = errno;
        unlink(path);
        errno = saved;
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", path);
    }
    return 0;
}

int barge_crypto_key_load(const char *env_name, const char *path, bool create,
                          struct barge_crypto_key *out, bool *created, struct barge_error **err)
{
    *created = false;
    const char *env = env_name ? getenv(env_name) : NULL;
    if (env && *env) {
        if (parse_key(env, strlen(env), false, out) < 0)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "%s must hold 64 hex characters or the base64 of 32 bytes",
                                   env_name);
        return 0;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t len = 0;
        char *text = barge_read_file(path, &len);
        if (text) {
            int r = parse_key(text, len, true, out);
            barge_crypto_free(text, len);
            if (r < 0)
                return barge_error_set(err, BARGE_ERR_INVALID,
                                       "master key file '%s' must hold 64 hex characters, the "
                                       "base64 of 32 bytes or 32 raw bytes",
                                       path);
            struct stat st;
            if (stat(path, &st) == 0 && (st.st_mode & 077))
                fprintf(stderr,
                        "barged: warning: master key file '%s' is readable by others (mode "
                        "%03o); chmod 600 it\n",
                        path, (unsigned)(st.st_mode & 0777));
            return 0;
        }
        if (errno != ENOENT || !create)
            return barge_error_set_errno(err, BARGE_ERR_IO, "cannot read master key file '%s'",
                                         path);
        int r = create_key_file(path, out, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            *created = true;
            return 0;
        }
        /* Lost a creation race: read the other one's key. */
    }
    return barge_error_set(err, BARGE_ERR_IO, "cannot read master key file '%s'", path);
}

static uint32_t crc_table[2][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    const uint32_t polys[2] = {0xEDB88320u, 0x82F63B78u}; /* reflected IEEE, Castagnoli */
    for (int t = 0; t < 2; t++)
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? polys[t] ^ (c >> 1) : c >> 1;
            crc_table[t][i] = c;
        }
}

static uint32_t crc_run(int t, uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[t][(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t barge_crc32(uint32_t crc, const void *data, size_t len)
{
    return crc_run(0, crc, data, len);
}

uint32_t barge_crc32c(uint32_t crc, const void *data, size_t len)
{
    return crc_run(1, crc, data, len);
}
