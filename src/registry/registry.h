/* barged's embedded image registry: the OCI distribution API under /v2/ and
 * the model the ECR API (src/api/ecr.c) works on.
 *
 * Blobs live in the blob store (blobstore.h) under <data_dir>/registry;
 * repositories, images (manifests, kept whole) and tags are documents in the
 * store:
 *   "ecr-repo"  key <name>           the repository (ECR's Repository shape,
 *                                    plus tags and the lifecycle policy)
 *   "ecr-image" key <name>@<digest>  an image: manifest text, media types,
 *                                    size, push time, tags, and the blobs and
 *                                    child manifests it refers to
 *   "ecr-tag"   key <name>:<tag>     which digest a tag names
 * ('@' and ':' cannot occur in repository names, so a repository's images and
 * tags are each one prefix scan away.)
 *
 * Credentials: clients log in with basic auth, user "AWS" and the password
 * from GetAuthorizationToken (an HMAC-signed, expiring token naming the access
 * key it was issued to), or an access key id and its secret; bearer tokens
 * from /v2/token carry the same signed token. Agents get pull tokens instead
 * (barge_registry_pull_token_issue), which name their container instance and
 * only read the repositories its tasks use.
 *
 * Garbage collection is mark-and-sweep: every blob an image refers to is
 * marked, and the others are removed once unused for a grace period. A lock
 * keeps a manifest push (which checks its blobs exist and then records them)
 * from interleaving with a sweep.
 *
 * The module sits below src/api; it takes the request and response types of
 * the HTTP server (http/http.h), so that the distribution API can be a
 * streaming route. */
#ifndef BARGE_REGISTRY_REGISTRY_H
#define BARGE_REGISTRY_REGISTRY_H

#include <jansson.h>
#include <time.h>

#include "common/sigv4.h"
#include "http/http.h"
#include "store/store.h"

#define BARGE_REGISTRY_KIND_REPO  "ecr-repo"
#define BARGE_REGISTRY_KIND_IMAGE "ecr-image"
#define BARGE_REGISTRY_KIND_TAG   "ecr-tag"

/* Lifetime of an authorization token, as in ECR. */
#define BARGE_REGISTRY_TOKEN_TTL (12 * 3600)

struct barge_registry_config {
    const char *root;       /* "<data_dir>/registry" */
    const char *account_id; /* registryId */
    const char *region;
    const char *host;           /* NULL, or a DNS suffix: repositories are then
                                   <account>.dkr.ecr.<region>.<host>/<name> */
    int gc_interval_seconds;    /* how often lifecycle policies and the collector run */
    int gc_grace_seconds;       /* an unreferenced blob is kept this long after its last use */
    int upload_timeout_seconds; /* an idle upload is dropped after this long */
    /* Access keys, to check basic-auth key pairs and that a token's key still exists. */
    barge_sigv4_lookup_fn lookup;
    /* Whether a container instance (its store key) may pull repository repo
     * now, or with repo NULL whether it is still registered: 1, 0, or -1. */
    int (*instance_may_pull)(const char *instance, const char *repo, void *ud,
                             struct barge_error **err);
    /* Whether the IAM principal of access key akid (a key pair's, or a
     * token's from ecr:GetAuthorizationToken) may perform action
     * ("ecr:PutImage") on repository repo (NULL: the registry as a whole)
     * from source_ip: 0, or -1 with err (BARGE_ERR_ACCESS_DENIED: refused,
     * worded as IAM words it). NULL: every key may do everything. */
    int (*key_may)(const char *akid, const char *action, const char *repo, const char *source_ip,
                   void *ud, struct barge_error **err);
    void *lookup_ud; /* passed to lookup, instance_may_pull and key_may */
};

struct barge_registry;

/* Opens the blob store, loads (or creates) the token-signing secret. The
 * registry keeps store borrowed; the caller frees the registry. */
int barge_registry_new(const struct barge_registry_config *cfg, struct barge_store *store,
                       struct barge_registry **out, struct barge_error **err);
void barge_registry_free(struct barge_registry *reg);

/* The host:port clients reach the listener at ("127.0.0.1:4566"), used in
 * repository URIs when no registry host is configured. Set once, before
 * requests arrive. */
void barge_registry_set_endpoint(struct barge_registry *reg, const char *hostport);
/* The registry host for URIs: "<account>.dkr.ecr.<region>.<host>" or the
 * endpoint. Caller frees. */
char *barge_registry_host(const struct barge_registry *reg);
/* "https://<registry host>" with a configured host (it is expected to sit
 * behind TLS), else "http://<host:port>". Caller frees. */
char *barge_registry_proxy_endpoint(const struct barge_registry *reg);
/* "<registry host>/<name>". Caller frees. */
char *barge_registry_repo_uri(const struct barge_registry *reg, const char *name);
const struct barge_registry_config *barge_registry_config(const struct barge_registry *reg);

/* A new authorization token for access_key_id, valid until *expires.
 * Caller frees. */
char *barge_registry_token_issue(struct barge_registry *reg, const char *access_key_id, time_t now,
                                 time_t *expires);
/* A pull-only token for a container instance (its store key
 * "<cluster>/<id>"), valid until *expires while the instance stays
 * registered. Caller frees. */
char *barge_registry_pull_token_issue(struct barge_registry *reg, const char *instance, time_t now,
                                      time_t *expires);
/* Who a request comes from, by its Authorization header. */
struct barge_registry_auth {
    char access_key_id[129]; /* empty for a pull token */
    char *instance;          /* a pull token's container instance (owned), or NULL */
    char *token;             /* the token presented (owned), or NULL for a key pair */
    time_t expires;          /* the token's expiry */
};
/* Checks an Authorization header value (Basic or Bearer). Returns 1 and fills
 * out when it is valid, 0 when absent or invalid, -1 on error. Release out
 * with barge_registry_auth_release. */
int barge_registry_authorize(struct barge_registry *reg, const char *authorization, time_t now,
                             struct barge_registry_auth *out, struct barge_error **err);
void barge_registry_auth_release(struct barge_registry_auth *a);

/* Loads a repository document (new reference). A missing one is a
 * RepositoryNotFoundException naming it. */
int barge_registry_repo_load(struct barge_tx *tx, const char *name, json_t **doc,
                             struct barge_error **err);
/* Deletes a repository with its images and tags; without force, one that
 * holds images is a RepositoryNotEmptyException. */
int barge_registry_repo_delete(struct barge_tx *tx, const char *name, bool force,
                               struct barge_error **err);

/* A manifest push, from the distribution API or ECR's PutImage. */
struct barge_registry_push {
    const char *repo;
    const char *manifest;
    size_t len;
    const char *media_type; /* Content-Type / imageManifestMediaType, or NULL */
    const char *tag;        /* or NULL */
    const char *digest;     /* the digest the client names, or NULL */
    bool refuse_unchanged;  /* an identical push is ImageAlreadyExistsException (PutImage) */
};

/* Stores a manifest after checking that its digest is what the client named
 * (ImageDigestDoesNotMatchException), that it parses (InvalidParameterException),
 * that every blob it names is present (LayersNotFoundException) and every
 * child manifest is an image of the repository
 * (ReferencedImagesNotFoundException), and that an immutable tag is not moved
 * (ImageTagAlreadyExistsException). Returns the image document (new
 * reference) in *image. */
int barge_registry_image_put(struct barge_registry *reg, const struct barge_registry_push *p,
                             json_t **image, struct barge_error **err);
/* Finds an image by tag and/or digest (when both, they must agree). Returns 1
 * with a new reference in *doc, 0 when there is none, -1 on error. */
int barge_registry_image_find(struct barge_tx *tx, const char *repo, const char *tag,
                              const char *digest, json_t **doc, struct barge_error **err);
/* Deletes an image and its tags. An image that an index in the repository
 * still lists cannot go (BARGE_ERR_CONFLICT, "ImageReferencedByManifestList"). */
int barge_registry_image_delete(struct barge_tx *tx, const char *repo, const char *digest,
                                struct barge_error **err);
/* Removes one tag; the image stays (untagged if it was the last one). Returns
 * 1 when the tag existed, 0 when not. */
int barge_registry_tag_remove(struct barge_tx *tx, const char *repo, const char *tag,
                              struct barge_error **err);

/* Whether the registry holds a blob: 1 with its size, 0 when not, -1 on
 * error. digest must have passed barge_digest_check. */
int barge_registry_blob_size(struct barge_registry *reg, const char *digest, uint64_t *size,
                             struct barge_error **err);

/* Runs lifecycle policies over every repository that has one (deleting the
 * images they expire). */
int barge_registry_lifecycle_run(struct barge_registry *reg, struct barge_error **err);
/* One garbage collection: mark the blobs images refer to, sweep the others
 * that have been unused for the grace period. */
struct barge_registry_gc_stats {
    size_t marked, kept, removed;
    uint64_t bytes_removed;
};
/* shared: also collect the store's copies of blobs (shared.c); only the
 * leader does, while every barged sweeps its own files. */
int barge_registry_gc(struct barge_registry *reg, bool shared,
                      struct barge_registry_gc_stats *stats, struct barge_error **err);
/* Called from every barged's housekeeping loop: drops idle uploads, and every
 * gc_interval_seconds runs the collector (and, in the leader, lifecycle
 * policies and the collection of the store's copies). */
void barge_registry_housekeeping(struct barge_registry *reg, bool leader);

/* The distribution API (distribution.c), as the callbacks of a streaming
 * route (see http.h): start authenticates and parses the request and takes
 * the upload it writes to; data appends blob bytes; handle answers; done lets
 * go of what start took. */
enum barge_http_body_mode barge_registry_http_start(struct barge_registry *reg,
                                                    struct barge_http_req *req,
                                                    struct barge_http_resp *resp);
int barge_registry_http_data(struct barge_registry *reg, struct barge_http_req *req,
                             const char *buf, size_t len);
void barge_registry_http_handle(struct barge_registry *reg, struct barge_http_req *req,
                                struct barge_http_resp *resp);
void barge_registry_http_done(struct barge_registry *reg, struct barge_http_req *req, bool handled);

#endif
