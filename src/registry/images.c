/* Repositories, images and tags in the store: the operations the distribution
 * API and the ECR API share, so that a push through either one obeys the same
 * rules (referenced blobs present, tag immutability) and leaves the same
 * documents behind. Errors carry ECR's exception names; the distribution API
 * translates them into its own codes. */
#include <fnmatch.h>
#include <string.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "registry/internal.h"
#include "registry/manifest.h"
#include "registry/ref.h"

int barge_registry_repo_load(struct barge_tx *tx, const char *name, json_t **doc,
                             struct barge_error **err)
{
    int r = barge_store_get(tx, BARGE_REGISTRY_KIND_REPO, name, doc, err);
    if (r < 0)
        return -1;
    if (r == 0)
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "RepositoryNotFoundException",
                                    "The repository with name '%s' does not exist in the "
                                    "registry.",
                                    name);
    return 0;
}

static int collect_key(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    json_array_append_new(ud, json_string(key));
    return 0;
}

static int delete_all(struct barge_tx *tx, const char *kind, const char *prefix,
                      struct barge_error **err)
{
    _cleanup_json_ json_t *keys = json_array();
    if (barge_store_scan(tx, kind, prefix, NULL, false, 0, collect_key, keys, err) < 0)
        return -1;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (barge_store_del(tx, kind, json_string_value(k), err) < 0)
            return -1;
    }
    return 0;
}

int barge_registry_repo_delete(struct barge_tx *tx, const char *name, bool force,
                               struct barge_error **err)
{
    _cleanup_json_ json_t *repo = NULL;
    if (barge_registry_repo_load(tx, name, &repo, err) < 0)
        return -1;
    _cleanup_free_ char *images = barge_xasprintf("%s@", name);
    _cleanup_free_ char *tags = barge_xasprintf("%s:", name);
    int64_t n = 0;
    if (barge_store_count(tx, BARGE_REGISTRY_KIND_IMAGE, images, &n, err) < 0)
        return -1;
    if (n > 0 && !force)
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "RepositoryNotEmptyException",
                                    "The repository with name '%s' cannot be deleted because "
                                    "it still contains %lld image(s); delete them first or use "
                                    "force.",
                                    name, (long long)n);
    if (delete_all(tx, BARGE_REGISTRY_KIND_IMAGE, images, err) < 0 ||
        delete_all(tx, BARGE_REGISTRY_KIND_TAG, tags, err) < 0)
        return -1;
    return barge_store_del(tx, BARGE_REGISTRY_KIND_REPO, name, err);
}

static char *tag_key(const char *repo, const char *tag)
{
    return barge_xasprintf("%s:%s", repo, tag);
}

static char *image_key(const char *repo, const char *digest)
{
    return barge_xasprintf("%s@%s", repo, digest);
}

int barge_registry_image_find(struct barge_tx *tx, const char *repo, const char *tag,
                              const char *digest, json_t **doc, struct barge_error **err)
{
    *doc = NULL;
    _cleanup_json_ json_t *t = NULL;
    if (tag) {
        _cleanup_free_ char *key = tag_key(repo, tag);
        int r = barge_store_get(tx, BARGE_REGISTRY_KIND_TAG, key, &t, err);
        if (r <= 0)
            return r;
        const char *tagged = barge_json_str(t, "imageDigest", "");
        if (digest && strcmp(digest, tagged) != 0)
            return 0;
        digest = tagged;
    }
    if (!digest)
        return 0;
    _cleanup_free_ char *key = image_key(repo, digest);
    return barge_store_get(tx, BARGE_REGISTRY_KIND_IMAGE, key, doc, err);
}

/* Whether pushing tag to another image is forbidden in repo. */
static bool tag_immutable(const json_t *repo, const char *tag)
{
    const char *mode = barge_json_str(repo, "imageTagMutability", "MUTABLE");
    bool excluded = false;
    size_t i;
    json_t *f;
    json_array_foreach(barge_json_array(repo, "imageTagMutabilityExclusionFilters"), i, f)
    {
        const char *pat = barge_json_str(f, "filter", NULL);
        if (pat && fnmatch(pat, tag, 0) == 0)
            excluded = true;
    }
    if (strcmp(mode, "IMMUTABLE") == 0)
        return true;
    if (strcmp(mode, "IMMUTABLE_WITH_EXCLUSION") == 0)
        return !excluded;
    if (strcmp(mode, "MUTABLE_WITH_EXCLUSION") == 0)
        return excluded;
    return false;
}

static void remove_string(json_t *arr, const char *s)
{
    for (size_t i = 0; i < json_array_size(arr);) {
        if (barge_streq(json_string_value(json_array_get(arr, i)), s))
            json_array_remove(arr, i);
        else
            i++;
    }
}

/* Checks the blobs a manifest names (shared gc lock held) and lists them. */
static int check_blobs(struct barge_registry *reg, const struct barge_manifest *m, json_t *blobs,
                       int64_t *size, struct barge_error **err)
{
    size_t n = m->is_index ? 0 : m->n_layers + 1;
    for (size_t i = 0; i < n; i++) {
        const struct barge_descriptor *d = i == 0 ? &m->config : &m->layers[i - 1];
        if (d->foreign)
            continue;
        uint64_t have = 0;
        int r = barge_registry_blob_local(reg, d->digest, &have, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "LayersNotFoundException",
                                        "The manifest refers to blob '%s', which is not in the "
                                        "registry.",
                                        d->digest);
        if (have != (uint64_t)d->size)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "The manifest gives blob '%s' a size of %lld bytes; it "
                                        "has %llu.",
                                        d->digest, (long long)d->size, (unsigned long long)have);
        json_array_append_new(blobs, json_string(d->digest));
        *size += d->size;
    }
    return 0;
}

/* Builds the document of a new image. */
static json_t *new_image(const struct barge_registry_push *p, const struct barge_manifest *m,
                         const char *digest, json_t *blobs, int64_t size)
{
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s%, s:I, s:f, s:[], s:O, s:[]}", "repositoryName", p->repo,
                  "imageDigest", digest, "imageManifestMediaType", m->media_type, "imageManifest",
                  p->manifest, p->len, "imageSizeInBytes", (json_int_t)size, "imagePushedAt",
                  barge_now(), "imageTags", "blobs", blobs, "children");
    barge_json_set_str(doc, "artifactMediaType", m->artifact_type);
    barge_json_set_str(doc, "subject", m->subject);
    json_t *children = json_object_get(doc, "children");
    for (size_t i = 0; i < m->n_children; i++)
        json_array_append_new(children, json_string(m->children[i].digest));
    return doc;
}

static int put_locked(struct barge_registry *reg, const struct barge_registry_push *p,
                      const struct barge_manifest *m, const char *digest, json_t **image,
                      struct barge_error **err)
{
    _cleanup_json_ json_t *blobs = json_array();
    int64_t size = 0;
    if (check_blobs(reg, m, blobs, &size, err) < 0)
        return -1;
    for (size_t i = 0; i < m->n_children; i++)
        size += m->children[i].size;

    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL, *existing = NULL, *tagdoc = NULL;
    if (barge_store_begin(reg->store, true, &tx, err) < 0 ||
        barge_registry_repo_load(tx, p->repo, &repo, err) < 0)
        return -1;
    for (size_t i = 0; i < m->n_children; i++) {
        _cleanup_json_ json_t *child = NULL;
        int r = barge_registry_image_find(tx, p->repo, NULL, m->children[i].digest, &child, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "ReferencedImagesNotFoundException",
                                        "The manifest list refers to manifest '%s', which is not "
                                        "in the repository '%s'.",
                                        m->children[i].digest, p->repo);
    }
    _cleanup_free_ char *ikey = image_key(p->repo, digest);
    _cleanup_free_ char *tkey = p->tag ? tag_key(p->repo, p->tag) : NULL;
    if (barge_store_get(tx, BARGE_REGISTRY_KIND_IMAGE, ikey, &existing, err) < 0 ||
        (tkey && barge_store_get(tx, BARGE_REGISTRY_KIND_TAG, tkey, &tagdoc, err) < 0))
        return -1;
    const char *old = tagdoc ? barge_json_str(tagdoc, "imageDigest", NULL) : NULL;
    bool moves = p->tag && !barge_streq(old, digest);
    if (p->refuse_unchanged && existing && !moves)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "ImageAlreadyExistsException",
                                    "Image with digest '%s'%s%s%s already exists in the "
                                    "repository with name '%s'.",
                                    digest, p->tag ? " and tag '" : "", p->tag ? p->tag : "",
                                    p->tag ? "'" : "", p->repo);
    if (moves && old && tag_immutable(repo, p->tag))
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ImageTagAlreadyExistsException",
                                    "The image tag '%s' already exists in the '%s' repository "
                                    "and cannot be overwritten because the tag is immutable.",
                                    p->tag, p->repo);
    json_t *doc = existing ? json_incref(existing) : new_image(p, m, digest, blobs, size);
    if (moves) {
        if (old) {
            _cleanup_json_ json_t *prev = NULL;
            _cleanup_free_ char *pkey = image_key(p->repo, old);
            int r = barge_store_get(tx, BARGE_REGISTRY_KIND_IMAGE, pkey, &prev, err);
            if (r < 0)
                goto fail;
            if (r > 0) {
                remove_string(barge_json_array(prev, "imageTags"), p->tag);
                if (barge_store_put(tx, BARGE_REGISTRY_KIND_IMAGE, pkey, prev, err) < 0)
                    goto fail;
            }
        }
        _cleanup_json_ json_t *t =
            json_pack("{s:s, s:f}", "imageDigest", digest, "taggedAt", barge_now());
        if (barge_store_put(tx, BARGE_REGISTRY_KIND_TAG, tkey, t, err) < 0)
            goto fail;
        json_array_append_new(barge_json_array(doc, "imageTags"), json_string(p->tag));
    }
    if (barge_store_put(tx, BARGE_REGISTRY_KIND_IMAGE, ikey, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        goto fail;
    /* Used now: the collector's grace period restarts for each blob. */
    size_t i;
    json_t *b;
    json_array_foreach(blobs, i, b) barge_blobstore_touch(reg->blobs, json_string_value(b));
    *image = doc;
    return 0;
fail:
    json_decref(doc);
    return -1;
}

int barge_registry_image_put(struct barge_registry *reg, const struct barge_registry_push *p,
                             json_t **image, struct barge_error **err)
{
    char digest[BARGE_DIGEST_MAX];
    barge_digest_of(p->manifest, p->len, digest);
    if (p->digest && strcmp(p->digest, digest) != 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "ImageDigestDoesNotMatchException",
                                    "The manifest has digest '%s', not '%s'.", digest, p->digest);
    if (p->tag && !barge_registry_tag_valid(p->tag))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid image tag '%s': up to 128 letters, digits, '_', "
                                    "'.' and '-', not starting with '.' or '-'.",
                                    p->tag);
    struct barge_manifest m;
    if (barge_manifest_parse(p->manifest, p->len, p->media_type, &m, err) < 0) {
        free((*err)->type);
        (*err)->type = barge_xstrdup("InvalidParameterException");
        return barge_error_wrap(err, "invalid image manifest");
    }
    pthread_rwlock_rdlock(&reg->gc_lock);
    int r = put_locked(reg, p, &m, digest, image, err);
    pthread_rwlock_unlock(&reg->gc_lock);
    barge_manifest_release(&m);
    if (r == 0)
        barge_info("pushed image '%s@%s'%s%s", p->repo, digest, p->tag ? " as " : "",
                   p->tag ? p->tag : "");
    return r;
}

struct index_check {
    const char *digest;
    char *by; /* the listing index's digest */
};

static int find_parent(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct index_check *ic = ud;
    size_t i;
    json_t *c;
    json_array_foreach(barge_json_array(doc, "children"), i, c)
    {
        if (barge_streq(json_string_value(c), ic->digest)) {
            ic->by = barge_xstrdup(strchr(key, '@') + 1);
            return 1;
        }
    }
    return 0;
}

int barge_registry_image_delete(struct barge_tx *tx, const char *repo, const char *digest,
                                struct barge_error **err)
{
    _cleanup_free_ char *ikey = image_key(repo, digest);
    _cleanup_json_ json_t *doc = NULL;
    int r = barge_store_get(tx, BARGE_REGISTRY_KIND_IMAGE, ikey, &doc, err);
    if (r <= 0)
        return r;
    _cleanup_free_ char *prefix = barge_xasprintf("%s@", repo);
    struct index_check ic = {.digest = digest};
    if (barge_store_scan(tx, BARGE_REGISTRY_KIND_IMAGE, prefix, NULL, false, 0, find_parent, &ic,
                         err) < 0)
        return -1;
    if (ic.by) {
        _cleanup_free_ char *by = ic.by;
        return barge_error_set_type(err, BARGE_ERR_CONFLICT, "ImageReferencedByManifestList",
                                    "The image '%s' is listed by the manifest list '%s'; "
                                    "delete that first.",
                                    digest, by);
    }
    size_t i;
    json_t *t;
    json_array_foreach(barge_json_array(doc, "imageTags"), i, t)
    {
        _cleanup_free_ char *tkey = tag_key(repo, json_string_value(t));
        if (barge_store_del(tx, BARGE_REGISTRY_KIND_TAG, tkey, err) < 0)
            return -1;
    }
    if (barge_store_del(tx, BARGE_REGISTRY_KIND_IMAGE, ikey, err) < 0)
        return -1;
    return 1;
}

int barge_registry_tag_remove(struct barge_tx *tx, const char *repo, const char *tag,
                              struct barge_error **err)
{
    _cleanup_free_ char *tkey = tag_key(repo, tag);
    _cleanup_json_ json_t *t = NULL, *img = NULL;
    int r = barge_store_get(tx, BARGE_REGISTRY_KIND_TAG, tkey, &t, err);
    if (r <= 0)
        return r;
    _cleanup_free_ char *ikey = image_key(repo, barge_json_str(t, "imageDigest", ""));
    if (barge_store_del(tx, BARGE_REGISTRY_KIND_TAG, tkey, err) < 0)
        return -1;
    r = barge_store_get(tx, BARGE_REGISTRY_KIND_IMAGE, ikey, &img, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        remove_string(barge_json_array(img, "imageTags"), tag);
        if (barge_store_put(tx, BARGE_REGISTRY_KIND_IMAGE, ikey, img, err) < 0)
            return -1;
    }
    return 1;
}
