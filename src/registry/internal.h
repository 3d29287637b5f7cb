/* What the files of the registry module share among themselves and nobody
 * else sees: the layout of struct barge_registry. */
#ifndef BARGE_REGISTRY_INTERNAL_H
#define BARGE_REGISTRY_INTERNAL_H

#include <pthread.h>

#include "registry/blobstore.h"
#include "registry/registry.h"

struct barge_registry {
    struct barge_registry_config cfg; /* strings owned (copied) */
    struct barge_store *store;        /* borrowed */
    struct barge_blobstore *blobs;
    /* Held shared by a manifest push from its blob checks to its commit and
     * by every blob operation that refreshes a blob's mtime (upload commit,
     * GET/HEAD, mount, manifest GET), and exclusively by a collection: so a
     * sweep never removes a blob a manifest is being recorded as using, nor
     * one refreshed after the sweep looked at it. Never taken recursively. */
    pthread_rwlock_t gc_lock;
    unsigned char secret[32]; /* signs authorization tokens */
    char *endpoint;           /* listener host:port */
    int64_t next_gc_ms;       /* monotonic time of the next lifecycle + collection */
};

/* Blobs shared through the store when several barged share it (shared.c). */
/* Copies a committed local blob into the store (nothing on an unshared one). */
int barge_registry_blob_share(struct barge_registry *reg, const char *digest,
                              struct barge_error **err);
/* Whether the blob is here, fetching it from the store when only the store
 * has it: 1 with *size, 0 when nowhere, -1 on error. Takes no lock. */
int barge_registry_blob_local(struct barge_registry *reg, const char *digest, uint64_t *size,
                              struct barge_error **err);
/* Removes the store's copies not kept by keep and stored before older_than. */
int barge_registry_shared_sweep(struct barge_registry *reg, double older_than,
                                bool (*keep)(const char *digest, void *ud), void *ud,
                                size_t *removed, struct barge_error **err);

#endif
