/* Images: the agent's side of OCI images. Parses Docker-style references,
 * pulls manifests, configs and layers from any OCI distribution registry
 * (anonymous, basic or bearer-token auth), verifies every blob against its
 * digest, and unpacks layers once per host into a content-addressed cache whose
 * directories stack as overlayfs lower layers. Layer unpacking refuses entries
 * that would escape the layer directory. Thread-safe: any number of threads may
 * pull into the same cache at once; a layer wanted by several is fetched once.
 *
 * Cache layout under opts->cache_dir:
 *   blobs/sha256/<hex>   verified manifests, indexes and configs (small JSON)
 *   layers/<hex>/        an unpacked layer, named by its (compressed) blob digest
 *   tmp/                 downloads and unpacks in progress; never read from */
#ifndef BARGE_IMAGE_IMAGE_H
#define BARGE_IMAGE_IMAGE_H

#include <jansson.h>

#include "common/error.h"

/* A parsed image reference. Every string is owned by the struct. */
struct barge_image_ref {
    char *domain;     /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
    char *repository; /* "library/busybox" */
    char *tag;        /* "latest"; NULL when only a digest was given */
    char *digest;     /* "sha256:<64 hex>" or NULL */
};

/* Parses reference the way Docker does: "busybox" is
 * docker.io/library/busybox:latest; a first component with a '.' or ':' or
 * "localhost" is a registry host; "name@sha256:..." and "name:tag@sha256:..."
 * carry a digest (which wins over the tag when pulling). Fills *out, which the
 * caller releases with barge_image_ref_release(). Errors: BARGE_ERR_INVALID. */
int barge_image_ref_parse(const char *reference, struct barge_image_ref *out,
                          struct barge_error **err);
void barge_image_ref_release(struct barge_image_ref *ref);
/* The normalised form "domain/repository[:tag][@digest]"; the caller frees it. */
char *barge_image_ref_format(const struct barge_image_ref *ref);

/* Progress and log lines of a pull ("pulling layer sha256:... (1234 bytes)").
 * Called on the pulling thread; message is only valid during the call. */
typedef void (*barge_image_progress_fn)(void *ud, const char *message);

struct barge_image_pull_opts {
    const char *cache_dir; /* e.g. /var/lib/barge-agent/images; created if missing */
    /* Credentials for basic auth and for the bearer-token exchange; both NULL
     * for anonymous pulls. Never logged or put into error messages. */
    const char *username;
    const char *password;
    /* Registry hosts ("host" or "host:port") to reach over plain HTTP. Loopback
     * hosts (localhost, 127.0.0.0/8, ::1) always use plain HTTP, as Docker does. */
    const char *const *insecure_registries;
    size_t n_insecure_registries;
    barge_image_progress_fn progress; /* optional */
    void *progress_ud;
    /* Platform picked from an index; NULL means "linux" and the host's
     * architecture (and variant, e.g. arm64/v8). */
    const char *os;
    const char *arch;
    const char *variant;
    /* Attempts per request on connection errors, 429 and 5xx (0: 4), and the
     * first back-off delay in milliseconds, doubled each time (0: 500). */
    int max_attempts;
    int retry_delay_ms;
    /* Limits on unpacking (see struct barge_image_unpack_limits); zeros take
     * the defaults below. */
    uint64_t max_layer_bytes;
    uint64_t min_free_bytes;
};

/* A compressed layer can expand a thousandfold (a gzip of zeros), so the
 * bytes a layer unpacks to are capped, and the disk under the cache must keep
 * some room while it unpacks. */
#define BARGE_IMAGE_MAX_LAYER_BYTES_DEFAULT (8ULL << 30)   /* 8 GiB */
#define BARGE_IMAGE_MIN_FREE_BYTES_DEFAULT  (256ULL << 20) /* 256 MiB */

/* A pulled image. Every member is owned by the struct. */
struct barge_image {
    char *reference;  /* normalised reference as asked for */
    char *registry;   /* the ref's domain */
    char *repository; /* "library/busybox" */
    /* What the reference resolved to: the index's digest for a multi-platform
     * image (what ECS reports as imageDigest), else the manifest's. */
    char *digest;
    char *manifest_digest; /* digest of the platform manifest: "sha256:..." */
    char *config_digest;   /* the image id: "sha256:..." */
    /* The image config (OCI/Docker): "config" holds Env, Cmd, Entrypoint,
     * WorkingDir, User, ExposedPorts, Labels... */
    json_t *config;
    char **layers; /* absolute paths of the unpacked layer directories, lowest first */
    size_t n_layers;
    uint64_t size; /* bytes of the config and the compressed layers, per the manifest */
};

/* Pulls reference into opts->cache_dir and returns the image in *out, which
 * the caller frees with barge_image_free(). Layers already in the cache are not
 * fetched again; an image pulled by digest whose manifest is cached needs no
 * network at all. On failure the message names the image and what the
 * registry answered (it becomes the ECS "CannotPullContainerError: ..."
 * reason); codes: BARGE_ERR_INVALID (bad reference or manifest),
 * BARGE_ERR_NOT_FOUND (no such repository, tag or platform),
 * BARGE_ERR_ACCESS_DENIED (authentication refused), BARGE_ERR_IO (network,
 * disk, digest or diff_id mismatch, unsafe layer), BARGE_ERR_LIMIT (a layer
 * past max_layer_bytes, a disk short of min_free_bytes). A layer that fails
 * leaves nothing in the cache. */
int barge_image_pull(const struct barge_image_pull_opts *opts, const char *reference,
                     struct barge_image **out, struct barge_error **err);
void barge_image_free(struct barge_image *img);

struct barge_image_unpack_limits {
    /* Most bytes the uncompressed tar stream may have; 0: no limit. */
    uint64_t max_bytes;
    /* Free bytes the filesystem of dir must keep, checked before unpacking
     * (with room for the compressed size on top) and as it goes; 0: no check. */
    uint64_t min_free;
};

/* Unpacks one layer tarball (uncompressed, gzip or zstd) from the open file
 * descriptor fd into the existing, empty directory dir, within limits (NULL:
 * none). When diff_id is not NULL it receives "sha256:<hex>" of the whole
 * uncompressed tar stream (what an image config lists in rootfs.diff_ids). OCI whiteouts become
 * overlayfs whiteouts (".wh.name" a 0/0 character device "name"; ".wh..wh..opq"
 * the xattr trusted.overlay.opaque=y on its directory). Ownership, modes,
 * xattrs, devices and timestamps are preserved. Entries with a ".."
 * component, writes through a symlink and hard links to anything outside dir
 * are refused with BARGE_ERR_IO; absolute names are taken as relative to dir.
 * A stream past limits->max_bytes or a disk short of limits->min_free fails
 * with BARGE_ERR_LIMIT. The caller owns fd (read from its current offset) and, on failure, removes
 * what was written. Thread-safe: never uses the working directory. */
int barge_image_layer_unpack(int fd, const char *dir,
                             const struct barge_image_unpack_limits *limits, char diff_id[72],
                             struct barge_error **err);

/* Removes path recursively without following symlinks; a missing path is not
 * an error. Returns 0 or -1 with errno set. */
int barge_image_remove_tree(const char *path);

/* Mounts an overlayfs at target with layers (lowest first) as lower
 * directories and upper_dir/work_dir (existing, on the same filesystem) for
 * writes; with upper_dir NULL the mount is read-only. Errors: BARGE_ERR_IO,
 * BARGE_ERR_INVALID when the option string would exceed the kernel's limit. */
int barge_image_mount_rootfs(char *const *layers, size_t n_layers, const char *upper_dir,
                             const char *work_dir, const char *target, struct barge_error **err);

#endif
