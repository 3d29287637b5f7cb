/* Pulling: resolves a reference to a platform manifest (through an OCI index
 * or Docker manifest list when there is one), fetches the config and every
 * layer not yet in the host's cache, verifies each against its digest before
 * it is used, and unpacks layers into the content-addressed layer cache.
 *
 * Atomicity: a layer is downloaded to tmp/, verified, unpacked into a fresh
 * directory under tmp/, synced, and only then renamed to layers/<hex>; a
 * crash leaves litter in tmp/ (swept by later pulls) but never a partial
 * layer under layers/. Manifests and configs are written by temporary name
 * and rename as well.
 *
 * Concurrency: threads of this process pulling the same layer wait for the one
 * that started it (an in-flight table under one mutex), so a layer is fetched
 * once; other processes sharing the cache only race on the final rename, which
 * the loser detects and backs out of. */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "image/internal.h"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_V1       "application/vnd.docker.distribution.manifest.v1"

static const char accept_all[] =
    MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST;

/* Manifests are small; Docker refuses those over 4 MiB too. */
#define MANIFEST_LIMIT (4u * 1024 * 1024)
#define CONFIG_LIMIT   (16u * 1024 * 1024)

struct pull {
    const struct barge_image_pull_opts *opts;
    struct barge_image_ref ref;
    char *image; /* normalised reference */
    struct reg_client client;
};

static bool valid_digest(const char *d)
{
    if (!d || !barge_str_has_prefix(d, "sha256:") || strlen(d) != 71)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void digest_of(EVP_MD_CTX *sha, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(sha, md, &n);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < n && i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[71] = '\0';
}

static void digest_buf(const void *data, size_t len, char out[72])
{
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    EVP_DigestUpdate(sha, data, len);
    digest_of(sha, out);
    EVP_MD_CTX_free(sha);
}

static char *cache_path(const struct pull *p, const char *sub, const char *digest)
{
    return barge_xasprintf("%s/%s/%s", p->opts->cache_dir, sub, digest + 7);
}

/* A verified JSON blob (manifest, index, config) from the cache, or NULL. A
 * blob that no longer matches its name is dropped and fetched again. */
static char *cache_read_blob(const struct pull *p, const char *digest, size_t *len)
{
    _cleanup_free_ char *path = cache_path(p, "blobs/sha256", digest);
    char *data = barge_read_file(path, len);
    if (!data)
        return NULL;
    char got[72];
    digest_buf(data, *len, got);
    if (strcmp(got, digest) != 0) {
        barge_warn("image cache: '%s' does not match its digest, dropping it", path);
        unlink(path);
        free(data);
        return NULL;
    }
    return data;
}

static void cache_write_blob(const struct pull *p, const char *digest, const char *data, size_t len)
{
    _cleanup_free_ char *path = cache_path(p, "blobs/sha256", digest);
    /* Only an optimisation: a failure costs a download next time. */
    if (barge_write_file_atomic(path, data, len, 0644) < 0)
        barge_warn("image cache: cannot write '%s': %s", path, strerror(errno));
}

/* The kind of a manifest document: from its mediaType, else from the
 * Content-Type it came with, else from its shape. */
static const char *manifest_kind(json_t *doc, const char *content_type)
{
    const char *mt = barge_json_str(doc, "mediaType", NULL);
    if (!mt && content_type) {
        static const char *known[] = {MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_OCI_MANIFEST,
                                      MT_OCI_INDEX};
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(known); i++)
            if (barge_str_has_prefix(content_type, known[i]))
                mt = known[i];
    }
    if (!mt) {
        if (barge_json_array(doc, "manifests"))
            mt = MT_OCI_INDEX;
        else if (barge_json_array(doc, "layers"))
            mt = MT_OCI_MANIFEST;
        else if (json_integer_value(json_object_get(doc, "schemaVersion")) == 1)
            mt = MT_DOCKER_V1;
    }
    return mt;
}

/* Fails the pull with the registry's answer, worded like Docker's messages. */
static int registry_error(struct pull *p, const char *what, struct reg_response *r,
                          struct barge_error **err)
{
    _cleanup_free_ char *answer = reg_answer(r);
    bool name_unknown = r->body.data && strstr(r->body.data, "NAME_UNKNOWN");
    if (r->status == 401 || r->status == 403 || name_unknown)
        return barge_error_set(err,
                               r->status == 404 ? BARGE_ERR_NOT_FOUND : BARGE_ERR_ACCESS_DENIED,
                               "pull access denied for '%s/%s', repository does not exist or may "
                               "require authorization: %s",
                               p->ref.domain, p->ref.repository, answer);
    if (r->status == 404 && strcmp(what, "manifest") == 0)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "manifest for '%s' not found: %s",
                               p->image, answer);
    if (r->status == 404)
        return barge_error_set(err, BARGE_ERR_NOT_FOUND, "failed to pull '%s': %s not found: %s",
                               p->image, what, answer);
    return barge_error_set(err, BARGE_ERR_IO, "failed to pull '%s': cannot fetch %s: %s", p->image,
                           what, answer);
}

/* Fetches the manifest (or index) named by ref, a tag or a digest. With a
 * digest (expected non-NULL) the cache is tried first and the body must hash
 * to it. For a tag, a HEAD learns the digest so that a cached manifest is
 * reused. Returns the parsed document; *digest_out receives its digest. */
static json_t *fetch_manifest(struct pull *p, const char *ref, const char *expected,
                              char digest_out[72], struct barge_error **err)
{
    _cleanup_free_ char *path = barge_xasprintf("manifests/%s", ref);
    const char *want = expected;
    struct reg_response head = {.fd = -1};
    if (!want) {
        if (reg_request(&p->client, "HEAD", path, accept_all, &head, err) < 0) {
            reg_response_release(&head);
            return NULL;
        }
        if (head.status == 200 && valid_digest(head.digest))
            want = head.digest;
        /* other statuses: the GET below gets the error document to report */
    }
    if (want) {
        size_t len;
        _cleanup_free_ char *data = cache_read_blob(p, want, &len);
        if (data) {
            json_t *doc = json_loadb(data, len, 0, NULL);
            if (json_is_object(doc)) {
                snprintf(digest_out, 72, "%s", want);
                reg_response_release(&head);
                return doc;
            }
            json_decref(doc);
        }
    }

    struct reg_response r = {.fd = -1, .limit = MANIFEST_LIMIT};
    json_t *doc = NULL;
    if (reg_request(&p->client, "GET", path, accept_all, &r, err) < 0)
        goto out;
    if (r.status != 200) {
        registry_error(p, "manifest", &r, err);
        goto out;
    }
    char got[72];
    digest_of(r.sha, got);
    /* By tag, the digest the registry claims (HEAD or GET) must be what came. */
    const char *claimed = expected ? expected : valid_digest(r.digest) ? r.digest : want;
    if (claimed && strcmp(claimed, got) != 0) {
        barge_error_set(err, BARGE_ERR_IO,
                        "failed to pull '%s': manifest failed digest verification: expected "
                        "'%s', got '%s'",
                        p->image, claimed, got);
        goto out;
    }
    json_error_t jerr;
    doc = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, &jerr);
    if (!json_is_object(doc)) {
        barge_error_set(err, BARGE_ERR_INVALID, "failed to pull '%s': manifest is not JSON: %s",
                        p->image, jerr.text);
        json_decref(doc);
        doc = NULL;
        goto out;
    }
    cache_write_blob(p, got, r.body.data ? r.body.data : "", r.body.len);
    snprintf(digest_out, 72, "%s", got);
out:
    reg_response_release(&r);
    reg_response_release(&head);
    return doc;
}

static void host_platform(const struct barge_image_pull_opts *o, const char **os, const char **arch,
                          const char **variant)
{
    *os = o->os ? o->os : "linux";
    if (o->arch) {
        *arch = o->arch;
        *variant = o->variant;
        return;
    }
    *variant = NULL;
#if defined(__x86_64__)
    *arch = "amd64";
#elif defined(__aarch64__)
    *arch = "arm64";
    *variant = "v8";
#elif defined(__arm__)
    *arch = "arm";
    *variant = "v7";
#elif defined(__i386__)
    *arch = "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    *arch = "ppc64le";
#elif defined(__s390x__)
    *arch = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    *arch = "riscv64";
#else
    *arch = "unknown";
#endif
}

/* Picks the entry for our platform from an index: os and architecture must
 * match; an exact variant wins over an entry without one. */
static const char *pick_platform(struct pull *p, json_t *index, struct barge_error **err)
{
    const char *os, *arch, *variant;
    host_platform(p->opts, &os, &arch, &variant);
    json_t *list = barge_json_array(index, "manifests");
    const char *best = NULL;
    int best_score = -1;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        json_t *plat = barge_json_object(m, "platform");
        if (!barge_streq(barge_json_str(plat, "os", ""), os) ||
            !barge_streq(barge_json_str(plat, "architecture", ""), arch))
            continue;
        const char *v = barge_json_str(plat, "variant", NULL);
        int score;
        if (variant && v)
            score = strcmp(variant, v) == 0 ? 2 : -1;
        else
            score = 1;
        if (score > best_score && valid_digest(barge_json_str(m, "digest", NULL))) {
            best = barge_json_str(m, "digest", NULL);
            best_score = score;
        }
    }
    if (!best)
        barge_error_set(err, BARGE_ERR_NOT_FOUND,
                        "failed to pull '%s': no matching manifest for %s/%s%s%s in the manifest "
                        "list entries",
                        p->image, os, arch, variant ? "/" : "", variant ? variant : "");
    return best;
}

static int fetch_config(struct pull *p, const char *digest, json_t **out, struct barge_error **err)
{
    size_t len;
    _cleanup_free_ char *data = cache_read_blob(p, digest, &len);
    if (!data) {
        _cleanup_free_ char *path = barge_xasprintf("blobs/%s", digest);
        struct reg_response r = {.fd = -1, .limit = CONFIG_LIMIT};
        if (reg_request(&p->client, "GET", path, NULL, &r, err) < 0) {
            reg_response_release(&r);
            return -1;
        }
        if (r.status != 200) {
            registry_error(p, "image config", &r, err);
            reg_response_release(&r);
            return -1;
        }
        char got[72];
        digest_of(r.sha, got);
        if (strcmp(got, digest) != 0) {
            reg_response_release(&r);
            return barge_error_set(err, BARGE_ERR_IO,
                                   "failed to pull '%s': image config failed digest verification: "
                                   "expected '%s', got '%s'",
                                   p->image, digest, got);
        }
        cache_write_blob(p, digest, r.body.data ? r.body.data : "", r.body.len);
        data = barge_buf_steal(&r.body, &len);
        reg_response_release(&r);
    }
    json_error_t jerr;
    *out = json_loadb(data, len, 0, &jerr);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "failed to pull '%s': image config is not a JSON object: %s",
                               p->image, jerr.text);
    }
    return 0;
}

/* Layers being fetched by some thread of this process, by cache path. */
struct inflight {
    char *path;
    struct inflight *next;
};
static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inflight_done = PTHREAD_COND_INITIALIZER;
static struct inflight *inflight_head;

static bool inflight_has(const char *path)
{
    for (struct inflight *i = inflight_head; i; i = i->next)
        if (strcmp(i->path, path) == 0)
            return true;
    return false;
}

static void inflight_remove(const char *path)
{
    pthread_mutex_lock(&inflight_lock);
    for (struct inflight **pp = &inflight_head; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->path, path) == 0) {
            struct inflight *dead = *pp;
            *pp = dead->next;
            free(dead->path);
            free(dead);
            break;
        }
    }
    pthread_cond_broadcast(&inflight_done);
    pthread_mutex_unlock(&inflight_lock);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Downloads, verifies and unpacks one layer, checks that its uncompressed
 * stream is the diff_id the image config names, then renames it into place
 * with the diff_id beside it ("<final>.diff_id") for later pulls to check. */
static int fetch_layer(struct pull *p, const char *digest, json_int_t size, const char *diff_id,
                       const char *final, struct barge_error **err)
{
    char rnd[33];
    barge_id_hex32(rnd);
    _cleanup_free_ char *blob = barge_xasprintf("%s/tmp/%ld-%s-%.12s.blob", p->opts->cache_dir,
                                                (long)getpid(), rnd, digest + 7);
    _cleanup_free_ char *dir = barge_xasprintf("%s/tmp/%ld-%s-%.12s.dir", p->opts->cache_dir,
                                               (long)getpid(), rnd, digest + 7);
    _cleanup_free_ char *path = barge_xasprintf("blobs/%s", digest);
    _cleanup_free_ char *layers = barge_xasprintf("%s/layers", p->opts->cache_dir);
    _cleanup_free_ char *sidecar = barge_xasprintf("%s.diff_id", final);
    int rc = -1;
    int fd = open(blob, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return barge_error_set_errno(err, BARGE_ERR_IO, "cannot create '%s'", blob);
    unlink(blob); /* anonymous from here on: nothing to clean up after a crash */

    reg_progress(&p->client, "pulling layer %s (%lld bytes)", digest, (long long)size);
    struct reg_response r = {.fd = fd, .limit = size > 0 ? (size_t)size : 0};
    if (reg_request(&p->client, "GET", path, NULL, &r, err) < 0)
        goto out;
    if (r.status != 200) {
        registry_error(p, "layer", &r, err);
        goto out;
    }
    char got[72];
    digest_of(r.sha, got);
    if (strcmp(got, digest) != 0) {
        barge_error_set(err, BARGE_ERR_IO,
                        "failed to pull '%s': layer '%s' failed digest verification: got '%s' "
                        "(%llu bytes)",
                        p->image, digest, got, (unsigned long long)r.received);
        goto out;
    }
    if (size > 0 && r.received != (uint64_t)size) {
        barge_error_set(err, BARGE_ERR_IO,
                        "failed to pull '%s': layer '%s' has %llu bytes, the manifest says %lld",
                        p->image, digest, (unsigned long long)r.received, (long long)size);
        goto out;
    }
    if (lseek(fd, 0, SEEK_SET) < 0 || mkdir(dir, 0755) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot prepare unpacking of layer '%s'", digest);
        goto out;
    }
    struct barge_image_unpack_limits limits = {
        .max_bytes = p->opts->max_layer_bytes ? p->opts->max_layer_bytes
                                              : BARGE_IMAGE_MAX_LAYER_BYTES_DEFAULT,
        .min_free =
            p->opts->min_free_bytes ? p->opts->min_free_bytes : BARGE_IMAGE_MIN_FREE_BYTES_DEFAULT,
    };
    char unpacked[72];
    if (barge_image_layer_unpack(fd, dir, &limits, unpacked, err) < 0) {
        barge_error_wrap(err, "failed to pull '%s': layer '%s'", p->image, digest);
        goto out_dir;
    }
    if (strcmp(unpacked, diff_id) != 0) {
        barge_error_set(err, BARGE_ERR_IO,
                        "failed to pull '%s': layer '%s' failed diff_id verification: the image "
                        "config lists '%s', the layer unpacks to '%s'",
                        p->image, digest, diff_id, unpacked);
        goto out_dir;
    }
    if (barge_write_file_atomic(sidecar, diff_id, strlen(diff_id), 0644) < 0) {
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot write '%s'", sidecar);
        goto out_dir;
    }
    /* Contents on disk before the name: a crash after the rename must not
     * leave an empty or truncated layer under its final name. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        syncfs(dfd);
        close(dfd);
    }
    if (rename(dir, final) < 0) {
        if ((errno == EEXIST || errno == ENOTEMPTY) && is_dir(final)) {
            rc = 0; /* another process got there first: theirs is as good */
            goto out_dir;
        }
        barge_error_set_errno(err, BARGE_ERR_IO, "cannot move layer '%s' into place", digest);
        goto out_dir;
    }
    fsync_dir(layers);
    reg_progress(&p->client, "layer %s unpacked", digest);
    rc = 0;
    goto out;
out_dir:
    if (barge_image_remove_tree(dir) < 0)
        barge_warn("image cache: cannot remove '%s': %s", dir, strerror(errno));
out:
    reg_response_release(&r);
    close(fd);
    return rc;
}

/* A cached layer's recorded diff_id must be the one this image's config
 * names: the compressed digest fixes the content, so a config naming another
 * is wrong about it. Layers cached before diff_ids were recorded pass. */
static int check_cached_diff_id(struct pull *p, const char *digest, const char *diff_id,
                                const char *final, struct barge_error **err)
{
    _cleanup_free_ char *sidecar = barge_xasprintf("%s.diff_id", final);
    _cleanup_free_ char *known = barge_read_file(sidecar, NULL);
    if (known && strcmp(known, diff_id) != 0)
        return barge_error_set(err, BARGE_ERR_IO,
                               "failed to pull '%s': layer '%s' failed diff_id verification: the "
                               "image config lists '%s', the layer unpacks to '%s'",
                               p->image, digest, diff_id, known);
    return 0;
}

/* Makes sure layers/<hex> exists, fetching it unless another thread is. */
static int ensure_layer(struct pull *p, const char *digest, json_int_t size, const char *diff_id,
                        char **out, struct barge_error **err)
{
    char *final = cache_path(p, "layers", digest);
    pthread_mutex_lock(&inflight_lock);
    for (;;) {
        if (is_dir(final)) {
            pthread_mutex_unlock(&inflight_lock);
            if (check_cached_diff_id(p, digest, diff_id, final, err) < 0) {
                free(final);
                return -1;
            }
            reg_progress(&p->client, "layer %s already present", digest);
            *out = final;
            return 0;
        }
        if (!inflight_has(final))
            break;
        pthread_cond_wait(&inflight_done, &inflight_lock);
    }
    struct inflight *mine = barge_xcalloc(1, sizeof(*mine));
    mine->path = barge_xstrdup(final);
    mine->next = inflight_head;
    inflight_head = mine;
    pthread_mutex_unlock(&inflight_lock);

    int rc = fetch_layer(p, digest, size, diff_id, final, err);
    inflight_remove(final);
    if (rc < 0) {
        free(final);
        return -1;
    }
    *out = final;
    return 0;
}

/* Removes what crashed pulls left in tmp/: names start with the pid of their
 * process, and a pid that no longer exists cannot be pulling. */
static void sweep_tmp(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end != '-' || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        _cleanup_free_ char *path = barge_xasprintf("%s/%s", tmp, de->d_name);
        barge_image_remove_tree(path);
    }
    closedir(d);
}

static bool is_layer_type(const char *mt)
{
    /* compression is detected from the bytes; the type only has to be a layer */
    return !mt || barge_str_has_prefix(mt, "application/vnd.oci.image.layer.") ||
           barge_str_has_prefix(mt, "application/vnd.docker.image.rootfs.");
}

int barge_image_pull(const struct barge_image_pull_opts *opts, const char *reference,
                     struct barge_image **out, struct barge_error **err)
{
    *out = NULL;
    if (!opts || !opts->cache_dir || !*opts->cache_dir)
        return barge_error_set(err, BARGE_ERR_INVALID, "image pull needs a cache directory");
    struct pull p = {.opts = opts};
    if (barge_image_ref_parse(reference, &p.ref, err) < 0)
        return -1;
    p.image = barge_image_ref_format(&p.ref);
    reg_client_init(&p.client, opts, p.image, p.ref.domain, p.ref.repository);

    int rc = -1;
    json_t *doc = NULL;
    json_t *config = NULL;
    struct barge_image *img = NULL;
    {
        const char *subdirs[] = {"blobs/sha256", "layers", "tmp"};
        for (size_t i = 0; i < BARGE_ARRAY_SIZE(subdirs); i++) {
            _cleanup_free_ char *d = barge_xasprintf("%s/%s", opts->cache_dir, subdirs[i]);
            if (barge_mkdir_p(d, 0700) < 0) {
                barge_error_set_errno(err, BARGE_ERR_IO, "cannot create image cache '%s'", d);
                goto out;
            }
        }
        _cleanup_free_ char *tmp = barge_xasprintf("%s/tmp", opts->cache_dir);
        sweep_tmp(tmp);
    }

    char top_digest[72], digest[72];
    doc =
        fetch_manifest(&p, p.ref.digest ? p.ref.digest : p.ref.tag, p.ref.digest, top_digest, err);
    if (!doc)
        goto out;
    snprintf(digest, sizeof(digest), "%s", top_digest);
    const char *kind = manifest_kind(doc, NULL);
    if (kind && (strcmp(kind, MT_OCI_INDEX) == 0 || strcmp(kind, MT_DOCKER_LIST) == 0)) {
        const char *child = pick_platform(&p, doc, err);
        if (!child)
            goto out;
        _cleanup_free_ char *child_digest = barge_xstrdup(child);
        json_decref(doc);
        doc = fetch_manifest(&p, child_digest, child_digest, digest, err);
        if (!doc)
            goto out;
        kind = manifest_kind(doc, NULL);
    }
    if (kind && barge_str_has_prefix(kind, MT_DOCKER_V1)) {
        barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                        "failed to pull '%s': Docker schema 1 manifests are not supported",
                        p.image);
        goto out;
    }
    if (!kind || !(strcmp(kind, MT_OCI_MANIFEST) == 0 || strcmp(kind, MT_DOCKER_MANIFEST) == 0)) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "failed to pull '%s': unsupported manifest media type '%s'", p.image,
                        kind ? kind : "unknown");
        goto out;
    }

    json_t *cfg_desc = barge_json_object(doc, "config");
    const char *cfg_digest = barge_json_str(cfg_desc, "digest", NULL);
    json_t *layers = barge_json_array(doc, "layers");
    if (!valid_digest(cfg_digest) || !layers) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "failed to pull '%s': manifest '%s' lacks a config or layers", p.image,
                        digest);
        goto out;
    }
    reg_progress(&p.client, "resolved to %s", digest);
    if (fetch_config(&p, cfg_digest, &config, err) < 0)
        goto out;
    json_t *diff_ids = barge_json_array(barge_json_object(config, "rootfs"), "diff_ids");
    if (json_array_size(diff_ids) != json_array_size(layers)) {
        barge_error_set(err, BARGE_ERR_INVALID,
                        "failed to pull '%s': image config '%s' lists %zu diff_ids for %zu layers",
                        p.image, cfg_digest, json_array_size(diff_ids), json_array_size(layers));
        goto out;
    }

    img = barge_xcalloc(1, sizeof(*img));
    img->reference = barge_xstrdup(p.image);
    img->registry = barge_xstrdup(p.ref.domain);
    img->repository = barge_xstrdup(p.ref.repository);
    img->digest = barge_xstrdup(top_digest);
    img->manifest_digest = barge_xstrdup(digest);
    img->config_digest = barge_xstrdup(cfg_digest);
    img->size = (uint64_t)barge_json_int(cfg_desc, "size", 0);
    img->layers = barge_xcalloc(json_array_size(layers) + 1, sizeof(char *));
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        const char *ld = barge_json_str(l, "digest", NULL);
        const char *mt = barge_json_str(l, "mediaType", NULL);
        json_int_t size = barge_json_int(l, "size", 0);
        const char *diff_id = json_string_value(json_array_get(diff_ids, i));
        if (!valid_digest(diff_id)) {
            barge_error_set(err, BARGE_ERR_INVALID,
                            "failed to pull '%s': image config has no valid sha256 diff_id for "
                            "layer %zu",
                            p.image, i);
            goto out;
        }
        if (!valid_digest(ld)) {
            barge_error_set(err, BARGE_ERR_INVALID,
                            "failed to pull '%s': layer %zu has no valid sha256 digest", p.image,
                            i);
            goto out;
        }
        if (!is_layer_type(mt)) {
            barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                            "failed to pull '%s': layer '%s' has unsupported media type '%s'",
                            p.image, ld, mt);
            goto out;
        }
        if (ensure_layer(&p, ld, size, diff_id, &img->layers[img->n_layers], err) < 0)
            goto out;
        img->n_layers++;
        img->size += size > 0 ? (uint64_t)size : 0;
    }
    img->config = barge_steal(&config);
    *out = barge_steal(&img);
    rc = 0;
out:
    json_decref(doc);
    json_decref(config);
    barge_image_free(img);
    reg_client_release(&p.client);
    barge_image_ref_release(&p.ref);
    free(p.image);
    return rc;
}

void barge_image_free(struct barge_image *img)
{
    if (!img)
        return;
    free(img->reference);
    free(img->registry);
    free(img->repository);
    free(img->digest);
    free(img->manifest_digest);
    free(img->config_digest);
    json_decref(img->config);
    for (size_t i = 0; i < img->n_layers; i++)
        free(img->layers[i]);
    free(img->layers);
    free(img);
}
