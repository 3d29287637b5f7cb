/* The blob store: content-addressed files under <root>/blobs/sha256/<2 hex>/
 * <64 hex>, and the uploads that fill it under <root>/uploads/<id>.
 *
 * A blob becomes visible only by a rename of a complete upload whose bytes
 * hashed to the digest the client named, after an fsync of the file (and of
 * the directory after the rename); so every visible blob is whole and
 * verified, and a crash or an abandoned upload leaves nothing visible. Upload
 * state (size, running SHA-256) lives in memory; uploads do not survive a
 * restart, and their files are removed when the store opens or when they sit
 * idle past a timeout. A blob's mtime records its last use (upload, HEAD, GET,
 * mount, being referenced by a manifest push), which is what the garbage
 * collector's grace period is measured against. */
#ifndef BARGE_REGISTRY_BLOBSTORE_H
#define BARGE_REGISTRY_BLOBSTORE_H

#include <stdint.h>
#include <time.h>

#include "common/error.h"

struct barge_blobstore;
struct barge_upload;

/* Opens (creating the directories as needed) the store rooted at root and
 * removes leftover uploads of an earlier run. The caller owns the store. */
int barge_blobstore_open(const char *root, struct barge_blobstore **out, struct barge_error **err);
void barge_blobstore_close(struct barge_blobstore *bs);

/* Whether a blob is present: 1 with *size, 0 when absent, -1 on error.
 * digest must have passed barge_digest_check. */
int barge_blobstore_stat(struct barge_blobstore *bs, const char *digest, uint64_t *size,
                         struct barge_error **err);
/* Opens a blob for reading and marks it used: 1 with an fd the caller closes
 * and its size, 0 when absent, -1 on error. */
int barge_blobstore_open_blob(struct barge_blobstore *bs, const char *digest, int *fd,
                              uint64_t *size, struct barge_error **err);
/* Marks a blob used now (its mtime), so that the collector leaves it for
 * another grace period; quietly does nothing when it is absent. */
void barge_blobstore_touch(struct barge_blobstore *bs, const char *digest);

/* Starts an upload for repository repo; fills id (a UUID). */
int barge_blobstore_upload_new(struct barge_blobstore *bs, const char *repo, char id[37],
                               struct barge_error **err);
/* Takes an upload for the calling request, so that no other request writes
 * it meanwhile: 1 with *out, 0 when there is no such upload for repo, -1 with
 * BARGE_ERR_CONFLICT when another request holds it. Give it back with
 * barge_blobstore_upload_put. */
int barge_blobstore_upload_get(struct barge_blobstore *bs, const char *id, const char *repo,
                               struct barge_upload **out, struct barge_error **err);
void barge_blobstore_upload_put(struct barge_blobstore *bs, struct barge_upload *up);
/* Bytes received so far. */
uint64_t barge_upload_size(const struct barge_upload *up);
/* Appends data. A failed write (disk full) spoils the upload: it is cancelled
 * when given back. */
int barge_upload_write(struct barge_upload *up, const void *data, size_t len,
                       struct barge_error **err);
/* Completes an upload as the blob digest: the bytes must hash to digest
 * (else BARGE_ERR_INVALID). Either way the upload is over. */
int barge_blobstore_upload_commit(struct barge_blobstore *bs, struct barge_upload *up,
                                  const char *digest, struct barge_error **err);
/* Abandons an upload and removes its data. */
void barge_blobstore_upload_cancel(struct barge_blobstore *bs, struct barge_upload *up);
/* Removes uploads nobody has used for timeout_ms; returns how many. */
int barge_blobstore_uploads_expire(struct barge_blobstore *bs, int64_t timeout_ms);
/* Number of uploads in progress (for logs and tests). */
size_t barge_blobstore_uploads_count(struct barge_blobstore *bs);

/* The sweep of a mark-and-sweep collection: removes each blob not used
 * since older_than for which keep(digest) says no. The caller makes sure no
 * manifest can start referring to a blob meanwhile. */
typedef bool (*barge_blobstore_keep_fn)(const char *digest, void *ud);
struct barge_blobstore_sweep_stats {
    size_t kept, removed;
    uint64_t bytes_removed;
};
int barge_blobstore_sweep(struct barge_blobstore *bs, time_t older_than,
                          barge_blobstore_keep_fn keep, void *ud,
                          struct barge_blobstore_sweep_stats *stats, struct barge_error **err);

#endif
