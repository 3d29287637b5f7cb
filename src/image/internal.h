/* Shared between the files of src/image only: the registry client (http.c)
 * used by the pull logic (pull.c). Not part of the module's interface. */
#ifndef BARGE_IMAGE_INTERNAL_H
#define BARGE_IMAGE_INTERNAL_H

#include <curl/curl.h>
#include <openssl/evp.h>

#include "image/image.h"

/* A client for one repository of one registry, used by one thread. */
struct reg_client {
    const struct barge_image_pull_opts *opts;
    const char *image; /* normalised reference, for messages (borrowed) */
    const char *domain;
    const char *repository;
    char *base_url; /* "https://host/v2/<repository>/" */
    CURL *curl;
    char *token; /* bearer token once fetched */
    bool basic;  /* the registry asked for basic auth */
    int max_attempts;
    int retry_delay_ms;
};

/* What came back. Set fd (>= 0) to stream a 2xx body into a file (at most
 * limit bytes when limit is set); otherwise it is kept in body
 * (body.data NUL-terminated, NULL when empty), up to limit bytes (0: 64 KiB). sha holds the SHA-256
 * of the received body. */
struct reg_response {
    int fd;
    size_t limit;
    long status;
    struct barge_buf body;
    uint64_t received;
    char *content_type;
    char *digest; /* Docker-Content-Digest */
    char *www_authenticate;
    char *location;
    EVP_MD_CTX *sha;
    CURL *curl;
    bool too_large;
    int io_errno;
};

void reg_client_init(struct reg_client *c, const struct barge_image_pull_opts *opts,
                     const char *image, const char *domain, const char *repository);
void reg_client_release(struct reg_client *c);
/* method on base_url + path ("manifests/latest", "blobs/sha256:..."), with
 * authentication and retries. Returns 0 with any HTTP status in r->status
 * (401 when the credentials were refused), -1 when no answer came. */
int reg_request(struct reg_client *c, const char *method, const char *path, const char *accept,
                struct reg_response *r, struct barge_error **err);
void reg_response_release(struct reg_response *r);
/* "registry answered 404: MANIFEST_UNKNOWN: manifest unknown"; caller frees. */
char *reg_answer(const struct reg_response *r);
/* Splits a WWW-Authenticate challenge into its scheme and the realm, service
 * and scope parameters; each output is newly allocated or NULL. */
void reg_parse_challenge(const char *header, char **scheme, char **realm, char **service,
                         char **scope);
/* Sends a progress line to the caller's callback and the debug log. */
void reg_progress(struct reg_client *c, const char *fmt, ...) BARGE_PRINTF(2, 3);

#endif
