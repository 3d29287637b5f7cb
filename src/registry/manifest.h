/* Image manifests: which media types the registry stores and what a manifest
 * refers to. A manifest is accepted only when everything it names is already
 * in the registry, so that a pull by tag or digest never finds a hole; this
 * parser pulls those references out (config and layers of an image manifest,
 * child manifests of an index) without judging the rest of the document. Pure
 * computation. */
#ifndef BARGE_REGISTRY_MANIFEST_H
#define BARGE_REGISTRY_MANIFEST_H

#include <stdint.h>

#include "common/error.h"

#define BARGE_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BARGE_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define BARGE_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define BARGE_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"

struct barge_descriptor {
    char *media_type;
    char *digest; /* sha256:<hex> (other algorithms are refused) */
    int64_t size;
    bool foreign; /* carries urls: a non-distributable layer the registry need not hold */
};

struct barge_manifest {
    char *media_type;    /* one of the four BARGE_MT_* types */
    char *artifact_type; /* artifactType, else the config's media type; NULL for indexes */
    bool is_index;
    struct barge_descriptor config; /* image manifests only */
    struct barge_descriptor *layers;
    size_t n_layers;
    struct barge_descriptor *children; /* indexes only */
    size_t n_children;
    char *subject; /* digest of the subject (OCI referrers), or NULL */
};

/* True for the four manifest media types above. */
bool barge_manifest_type_supported(const char *media_type);

/* Parses a manifest sent with content_type (parameters such as ";charset"
 * are ignored; NULL, "" or a generic JSON type means: take the document's own
 * mediaType, or infer it). A document whose mediaType contradicts a specific
 * content_type is refused, as are schema 1 manifests. Fills out (release with
 * barge_manifest_release). Errors are BARGE_ERR_INVALID with a message saying
 * what is wrong, or BARGE_ERR_UNSUPPORTED for a media type barge does not
 * store. */
int barge_manifest_parse(const char *body, size_t len, const char *content_type,
                         struct barge_manifest *out, struct barge_error **err);
void barge_manifest_release(struct barge_manifest *m);

#endif
