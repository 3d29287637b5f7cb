/* Blobs shared through the store, for several barged on one database.
 *
 * Each barged keeps blobs in its own blob store (local files, served with
 * sendfile). When the store is shared (PostgreSQL), a blob committed by one
 * barged is also copied into the store's byte strings before the client
 * hears that the upload is done, and a barged asked for a blob it does not
 * hold fetches it from there into its blob store, verifying the digest as
 * for any upload. So a push through one barged can be pulled, mounted or
 * named by a manifest through any other, and losing a barged loses no blob.
 *
 * A document "ecr-blob" <digest> {size, storedAt} says that the store holds a
 * blob; the leader's collection removes the ones no image refers to once
 * they are older than the grace period (registry.c). */
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "registry/internal.h"

#define KIND_SHARED_BLOB "ecr-blob"

static char *bytes_name(const char *digest)
{
    return barge_xasprintf("ecr-blob/%s", digest);
}

/* Refreshes the store's record of digest when it has one: 1 when it did, 0
 * when the store has no copy yet. One write transaction, so a collection
 * cannot remove the copy between the look and the refresh. */
static int refresh(struct barge_registry *reg, const char *digest, uint64_t size, bool create,
                   struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(reg->store, true, &tx, err) < 0 ||
        barge_store_get(tx, KIND_SHARED_BLOB, digest, &doc, err) < 0)
        return -1;
    if (!doc && !create)
        return 0;
    /* Stored again: its grace period starts anew, as a local blob's does. */
    _cleanup_json_ json_t *fresh =
        json_pack("{s:I, s:f}", "size", (json_int_t)size, "storedAt", barge_now());
    if (barge_store_put(tx, KIND_SHARED_BLOB, digest, fresh, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    return 1;
}

int barge_registry_blob_share(struct barge_registry *reg, const char *digest,
                              struct barge_error **err)
{
    if (!barge_store_shared(reg->store))
        return 0;
    int fd = -1;
    uint64_t size = 0;
    int r = barge_blobstore_open_blob(reg->blobs, digest, &fd, &size, err);
    if (r <= 0)
        return r < 0 ? -1 : barge_error_set(err, BARGE_ERR_INTERNAL, "blob '%s' vanished", digest);
    _cleanup_close_ int bfd = fd;
    r = refresh(reg, digest, size, false, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    /* The chunks go in first, in short transactions of their own; the
     * record that makes them visible (and collectable) comes last. Two barged
     * sharing one digest at once write the same bytes. */
    _cleanup_free_ char *name = bytes_name(digest);
    if (barge_store_bytes_write_fd(reg->store, name, bfd, err) < 0 ||
        refresh(reg, digest, size, true, err) < 0)
        return -1;
    barge_debug("registry: blob '%s' (%llu bytes) shared through the store", digest,
                (unsigned long long)size);
    return 0;
}

/* Copies the store's chunks of digest into a new upload and commits it, which
 * checks the digest. */
static int fetch(struct barge_registry *reg, struct barge_tx *tx, const char *digest,
                 struct barge_error **err)
{
    char id[37];
    struct barge_upload *up = NULL;
    if (barge_blobstore_upload_new(reg->blobs, "(shared)", id, err) < 0 ||
        barge_blobstore_upload_get(reg->blobs, id, "(shared)", &up, err) <= 0)
        return -1;
    _cleanup_free_ char *name = bytes_name(digest);
    for (int64_t seq = 0;; seq++) {
        _cleanup_free_ void *data = NULL;
        size_t len;
        int got = barge_store_bytes_get(tx, name, seq, &data, &len, err);
        if (got < 0 || (got > 0 && barge_upload_write(up, data, len, err) < 0)) {
            barge_blobstore_upload_cancel(reg->blobs, up);
            barge_blobstore_upload_put(reg->blobs, up);
            return -1;
        }
        if (got == 0)
            break;
    }
    _cleanup_error_ struct barge_error *bad = NULL;
    int r = barge_blobstore_upload_commit(reg->blobs, up, digest, &bad);
    barge_blobstore_upload_put(reg->blobs, up);
    if (r < 0) /* not the client's fault: the store's copy is damaged */
        return barge_error_set(err, BARGE_ERR_INTERNAL,
                               "registry: the store's copy of blob '%s' is damaged: %s", digest,
                               bad->message);
    return 0;
}

int barge_registry_blob_local(struct barge_registry *reg, const char *digest, uint64_t *size,
                              struct barge_error **err)
{
    int r = barge_blobstore_stat(reg->blobs, digest, size, err);
    if (r != 0 || !barge_store_shared(reg->store))
        return r;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    if (barge_store_begin(reg->store, false, &tx, err) < 0 ||
        barge_store_get(tx, KIND_SHARED_BLOB, digest, &doc, err) < 0)
        return -1;
    if (!doc)
        return 0;
    if (fetch(reg, tx, digest, err) < 0)
        return -1;
    barge_debug("registry: fetched blob '%s' from the store", digest);
    return barge_blobstore_stat(reg->blobs, digest, size, err);
}

struct shared_sweep {
    struct barge_registry *reg;
    bool (*keep)(const char *digest, void *ud);
    void *ud;
    double older_than;
    json_t *doomed;
};

static int consider(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct shared_sweep *s = ud;
    if (json_number_value(json_object_get(doc, "storedAt")) < s->older_than && !s->keep(key, s->ud))
        json_array_append_new(s->doomed, json_string(key));
    return 0;
}

int barge_registry_shared_sweep(struct barge_registry *reg, double older_than,
                                bool (*keep)(const char *digest, void *ud), void *ud,
                                size_t *removed, struct barge_error **err)
{
    *removed = 0;
    if (!barge_store_shared(reg->store))
        return 0;
    _cleanup_json_ json_t *doomed = json_array();
    struct shared_sweep s = {reg, keep, ud, older_than, doomed};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(reg->store, true, &tx, err) < 0 ||
        barge_store_scan(tx, KIND_SHARED_BLOB, "", NULL, false, 0, consider, &s, err) < 0)
        return -1;
    size_t i;
    json_t *d;
    json_array_foreach(doomed, i, d)
    {
        _cleanup_free_ char *name = bytes_name(json_string_value(d));
        if (barge_store_bytes_del(tx, name, err) < 0 ||
            barge_store_del(tx, KIND_SHARED_BLOB, json_string_value(d), err) < 0)
            return -1;
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *removed = json_array_size(doomed);
    return 0;
}
