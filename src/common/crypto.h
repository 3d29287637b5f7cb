/* Encryption at rest for secret values (SSM parameters, Secrets Manager
 * versions): AES-256-GCM under one master key, through OpenSSL's EVP
 * interface. A sealed value is one opaque base64 string ("the envelope")
 * holding a format byte, a random 96-bit nonce, the ciphertext and the
 * 128-bit tag. Each value is sealed with "associated data" naming where it
 * belongs (say "ssm|us-east-1|/db/pass|3"), so an envelope copied onto another
 * record does not open. Also the master key's life cycle (created on first
 * start, or given by an environment variable or a file) and the base64 and
 * checksum helpers the S3 layer shares. */
#ifndef BARGE_COMMON_CRYPTO_H
#define BARGE_COMMON_CRYPTO_H

#include <stdint.h>

#include "common/error.h"

#define BARGE_CRYPTO_KEY_LEN 32

struct barge_crypto_key {
    unsigned char bytes[BARGE_CRYPTO_KEY_LEN];
};

/* Encrypts len bytes of plain under key, bound to aad (a NUL-terminated
 * label; may be ""), and returns the envelope (newly allocated; the caller
 * frees it). Never fails: OpenSSL errors on these fixed sizes are bugs and
 * abort. */
char *barge_crypto_seal(const struct barge_crypto_key *key, const void *plain, size_t len,
                        const char *aad);

/* Opens an envelope made by barge_crypto_seal with the same key and aad.
 * Returns 0 with *out a newly allocated buffer of *out_len bytes plus a NUL
 * (so text values are C strings; the caller wipes and frees it with
 * barge_crypto_free), or -1 with err set (BARGE_ERR_INTERNAL, "cannot decrypt
 * ...": a wrong key, a tampered envelope or another record's envelope). The
 * message never contains any part of the value. */
int barge_crypto_open(const struct barge_crypto_key *key, const char *envelope, const char *aad,
                      char **out, size_t *out_len, struct barge_error **err);

/* Overwrites len bytes of p with zeros in a way the compiler keeps, then frees
 * p. For buffers that held a secret; NULL is fine. */
void barge_crypto_free(void *p, size_t len);
/* Same for a NUL-terminated string. */
void barge_crypto_free_str(char *s);

/* Loads the master key, in this order: the environment variable env_name
 * (64 hex characters or base64 of 32 bytes) when set; else the file at path
 * (the same text forms, or 32 raw bytes), which is created with a new random
 * key (64 hex characters, mode 0600) when create is true and it does not
 * exist. *created tells whether a new key was made. */
int barge_crypto_key_load(const char *env_name, const char *path, bool create,
                          struct barge_crypto_key *out, bool *created, struct barge_error **err);

/* Standard base64 (with padding) of len bytes; newly allocated. */
char *barge_base64_encode(const void *data, size_t len);
/* Decodes standard base64 (padding required, no whitespace). Returns a newly
 * allocated buffer (NUL-terminated for convenience) and its length in
 * *out_len, or NULL when text is not base64. */
unsigned char *barge_base64_decode(const char *text, size_t *out_len);

/* Checksums S3 clients send (x-amz-checksum-*): CRC-32 (IEEE) and CRC-32C
 * (Castagnoli), continued from crc (start with 0). */
uint32_t barge_crc32(uint32_t crc, const void *data, size_t len);
uint32_t barge_crc32c(uint32_t crc, const void *data, size_t len);

#endif
