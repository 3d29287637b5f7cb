/* The syntax of the distribution API, with no I/O: digests ("sha256:<hex>"),
 * repository names, tags, the paths under /v2/ and the Range and
 * Content-Range headers. Everything the registry takes from a client passes
 * through here before it names a file or a store key, so these checks are also
 * what keeps a name from escaping the blob directory. */
#ifndef BARGE_REGISTRY_REF_H
#define BARGE_REGISTRY_REF_H

#include <stdint.h>

#include "common/util.h"

/* "sha256:" + 64 hex digits + NUL. */
#define BARGE_DIGEST_MAX 72

enum barge_digest_check {
    BARGE_DIGEST_OK = 0,          /* sha256:<64 lower-case hex> */
    BARGE_DIGEST_MALFORMED = -1,  /* not algorithm:hex at all */
    BARGE_DIGEST_UNSUPPORTED = -2 /* well-formed, but an algorithm other than sha256 */
};

/* Classifies a digest string; only sha256 is stored (the OCI spec requires
 * it and makes the others optional). */
enum barge_digest_check barge_digest_check(const char *s);
/* The sha256 digest of data, "sha256:<hex>". */
void barge_digest_of(const void *data, size_t len, char out[BARGE_DIGEST_MAX]);
/* True when digest names exactly these bytes. */
bool barge_digest_matches(const char *digest, const void *data, size_t len);

/* ECR's repository name rule: 2-256 characters, '/'-separated components of
 * lower-case letters and digits joined by '.', '_', '__' or runs of '-'. */
bool barge_registry_repo_name_valid(const char *name);
/* The distribution spec's tag rule: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool barge_registry_tag_valid(const char *tag);

/* What a path under /v2/ asks for. */
enum barge_registry_route {
    BARGE_REG_BASE,     /* /v2/ */
    BARGE_REG_TOKEN,    /* /v2/token */
    BARGE_REG_CATALOG,  /* /v2/_catalog */
    BARGE_REG_TAGS,     /* /v2/<name>/tags/list */
    BARGE_REG_MANIFEST, /* /v2/<name>/manifests/<reference> */
    BARGE_REG_BLOB,     /* /v2/<name>/blobs/<digest> */
    BARGE_REG_UPLOADS,  /* /v2/<name>/blobs/uploads/ (start one) */
    BARGE_REG_UPLOAD,   /* /v2/<name>/blobs/uploads/<id> */
};

struct barge_registry_path {
    enum barge_registry_route route;
    char *name; /* repository name, or NULL */
    char *ref;  /* tag, digest or upload id, or NULL */
};

/* Splits a decoded path starting with "/v2/" into out (strings owned by out;
 * release with barge_registry_path_release). The repository name is not
 * validated here, only located. Returns 0, or -1 when the path is none of the
 * routes above. */
int barge_registry_path_parse(const char *path, struct barge_registry_path *out);
void barge_registry_path_release(struct barge_registry_path *p);

/* A Range request header against a blob of size bytes. Returns 1 with the
 * inclusive range in *start and *end when it names one satisfiable range, 0 when
 * it should be ignored and the whole blob sent (absent, not "bytes=", several
 * ranges, malformed), -1 when it cannot be satisfied (416). */
int barge_registry_range_parse(const char *header, uint64_t size, uint64_t *start, uint64_t *end);
/* The Content-Range of an upload chunk: "<start>-<end>" as the distribution
 * spec writes it, also with a "bytes " or "bytes=" prefix as some clients
 * send. Returns 0, or -1 when malformed or end < start. */
int barge_registry_content_range_parse(const char *header, uint64_t *start, uint64_t *end);

#endif
