/* Manifest parsing (see manifest.h). */
#include "registry/manifest.h"

#include <jansson.h>
#include <string.h>

#include "common/json.h"
#include "registry/ref.h"

bool barge_manifest_type_supported(const char *media_type)
{
    return barge_streq(media_type, BARGE_MT_DOCKER_MANIFEST) ||
           barge_streq(media_type, BARGE_MT_DOCKER_LIST) ||
           barge_streq(media_type, BARGE_MT_OCI_MANIFEST) ||
           barge_streq(media_type, BARGE_MT_OCI_INDEX);
}

static bool is_index_type(const char *mt)
{
    return strcmp(mt, BARGE_MT_DOCKER_LIST) == 0 || strcmp(mt, BARGE_MT_OCI_INDEX) == 0;
}

/* The media type without parameters; NULL for a generic type that says
 * nothing about which manifest this is. Caller frees. */
static char *specific_type(const char *content_type)
{
    if (!content_type)
        return NULL;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && content_type[n - 1] == ' ')
        n--;
    char *t = barge_xstrndup(content_type, n);
    if (n == 0 || strcmp(t, "application/json") == 0 ||
        strcmp(t, "application/octet-stream") == 0) {
        free(t);
        return NULL;
    }
    return t;
}

static int descriptor(const json_t *j, const char *where, struct barge_descriptor *d,
                      struct barge_error **err)
{
    if (!json_is_object(j))
        return barge_error_set(err, BARGE_ERR_INVALID, "%s is not a descriptor object", where);
    const char *mt = barge_json_str(j, "mediaType", NULL);
    const char *digest = barge_json_str(j, "digest", NULL);
    json_t *size = json_object_get(j, "size");
    if (!mt || !*mt)
        return barge_error_set(err, BARGE_ERR_INVALID, "%s has no mediaType", where);
    if (!digest)
        return barge_error_set(err, BARGE_ERR_INVALID, "%s has no digest", where);
    if (barge_digest_check(digest) != BARGE_DIGEST_OK)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "%s has digest '%s': only sha256 digests are accepted", where,
                               digest);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return barge_error_set(err, BARGE_ERR_INVALID, "%s has no valid size", where);
    d->media_type = barge_xstrdup(mt);
    d->digest = barge_xstrdup(digest);
    d->size = json_integer_value(size);
    json_t *urls = json_object_get(j, "urls");
    d->foreign = json_is_array(urls) && json_array_size(urls) > 0;
    return 0;
}

static int descriptor_list(const json_t *arr, const char *what, struct barge_descriptor **out,
                           size_t *n, struct barge_error **err)
{
    if (!json_is_array(arr))
        return barge_error_set(err, BARGE_ERR_INVALID, "manifest has no '%s' array", what);
    *n = json_array_size(arr);
    *out = barge_xcalloc(*n ? *n : 1, sizeof(**out));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char where[64];
        snprintf(where, sizeof(where), "%s[%zu]", what, i);
        if (descriptor(v, where, &(*out)[i], err) < 0)
            return -1;
    }
    return 0;
}

int barge_manifest_parse(const char *body, size_t len, const char *content_type,
                         struct barge_manifest *out, struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    _cleanup_json_ json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return barge_error_set(err, BARGE_ERR_INVALID, "manifest is not valid JSON: %s", jerr.text);
    if (!json_is_object(doc))
        return barge_error_set(err, BARGE_ERR_INVALID, "manifest is not a JSON object");
    json_t *sv = json_object_get(doc, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2)
        return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                               "manifest schemaVersion must be 2; schema 1 manifests are not "
                               "accepted");

    _cleanup_free_ char *ct = specific_type(content_type);
    const char *own = barge_json_str(doc, "mediaType", NULL);
    const char *mt = ct ? ct : own;
    if (ct && own && strcmp(ct, own) != 0)
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "manifest mediaType '%s' does not match its Content-Type '%s'", own,
                               ct);
    if (!mt) {
        /* OCI lets mediaType be absent; the shape says which document it is. */
        if (json_object_get(doc, "manifests"))
            mt = BARGE_MT_OCI_INDEX;
        else if (json_object_get(doc, "config"))
            mt = BARGE_MT_OCI_MANIFEST;
        else
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "manifest has neither a mediaType nor config or manifests");
    }
    if (!barge_manifest_type_supported(mt))
        return barge_error_set(err, BARGE_ERR_UNSUPPORTED,
                               "manifest media type '%s' is not "
                               "supported",
                               mt);
    out->media_type = barge_xstrdup(mt);
    out->is_index = is_index_type(mt);

    if (out->is_index) {
        if (descriptor_list(json_object_get(doc, "manifests"), "manifests", &out->children,
                            &out->n_children, err) < 0)
            goto fail;
        for (size_t i = 0; i < out->n_children; i++)
            if (!barge_manifest_type_supported(out->children[i].media_type)) {
                barge_error_set(err, BARGE_ERR_INVALID,
                                "manifests[%zu] has media type '%s', which is not a manifest", i,
                                out->children[i].media_type);
                goto fail;
            }
    } else {
        if (descriptor(json_object_get(doc, "config"), "config", &out->config, err) < 0 ||
            descriptor_list(json_object_get(doc, "layers"), "layers", &out->layers, &out->n_layers,
                            err) < 0)
            goto fail;
        const char *at = barge_json_str(doc, "artifactType", NULL);
        out->artifact_type = barge_xstrdup(at ? at : out->config.media_type);
    }
    json_t *subject = json_object_get(doc, "subject");
    if (subject) {
        struct barge_descriptor s = {0};
        int r = descriptor(subject, "subject", &s, err);
        if (r == 0)
            out->subject = barge_steal(&s.digest);
        free(s.media_type);
        free(s.digest);
        if (r < 0)
            goto fail;
    }
    return 0;
fail:
    barge_manifest_release(out);
    return -1;
}

static void descriptors_free(struct barge_descriptor *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].media_type);
        free(d[i].digest);
    }
    free(d);
}

void barge_manifest_release(struct barge_manifest *m)
{
    free(m->media_type);
    free(m->artifact_type);
    free(m->config.media_type);
    free(m->config.digest);
    descriptors_free(m->layers, m->n_layers);
    descriptors_free(m->children, m->n_children);
    free(m->subject);
    memset(m, 0, sizeof(*m));
}
