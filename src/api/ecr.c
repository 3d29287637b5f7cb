/* The ECR API (AmazonEC2ContainerRegistry_V20150921) over barged's embedded
 * registry: repositories (create, describe, delete, tags, tag mutability,
 * lifecycle policies), images (list, describe, get, put, delete), layer
 * availability and the authorization token that logs docker, podman and
 * skopeo in to /v2/. The rules a push obeys live in src/registry/images.c so
 * that PutImage and a manifest PUT on /v2/ cannot drift apart; this file
 * speaks ECR's shapes and exceptions. */
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/server.h"
#include "common/arn.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "registry/lifecycle.h"
#include "registry/ref.h"
#include "registry/registry.h"

#define MAX_TAGS 50

static char *repo_arn(const struct barge_server *srv, const char *name)
{
    _cleanup_free_ char *res = barge_xasprintf("repository/%s", name);
    return barge_arn_make("ecr", barge_server_region(srv), srv->cfg.account_id, res);
}

/* ECR answers for one registry only: another registryId names repositories
 * that do not exist here. */
static int check_registry(struct barge_api_ctx *ctx, const json_t *in, const char *name,
                          struct barge_error **err)
{
    const char *id = barge_json_str(in, "registryId", NULL);
    if (!id || strcmp(id, ctx->srv->cfg.account_id) == 0)
        return 0;
    return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "RepositoryNotFoundException",
                                "The repository with name '%s' does not exist in the registry "
                                "with id '%s'",
                                name ? name : "", id);
}

static int check_name(const char *name, struct barge_error **err)
{
    if (barge_registry_repo_name_valid(name))
        return 0;
    return barge_error_set_type(
        err, BARGE_ERR_INVALID, "InvalidParameterException",
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy "
        "regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' "
        "(value '%s')",
        name);
}

/* Loads the repository named by input's repositoryName (new reference). */
static int load_repo(struct barge_api_ctx *ctx, struct barge_tx *tx, const json_t *in,
                     json_t **repo, struct barge_error **err)
{
    const char *name = barge_json_str(in, "repositoryName", "");
    if (check_registry(ctx, in, name, err) < 0 || check_name(name, err) < 0)
        return -1;
    return barge_registry_repo_load(tx, name, repo, err);
}

/* The Repository shape of a stored repository. */
static json_t *render_repo(const struct barge_server *srv, const json_t *doc)
{
    json_t *out = json_deep_copy(doc);
    json_object_del(out, "tags");
    json_object_del(out, "lifecyclePolicyText");
    json_object_del(out, "lifecycleEvaluatedAt");
    char *uri = barge_registry_repo_uri(srv->registry, barge_json_str(doc, "repositoryName", ""));
    json_object_set_new(out, "repositoryUri", json_string(uri));
    free(uri);
    return out;
}

static int validate_tags(const json_t *tags, struct barge_error **err)
{
    if (json_array_size(tags) > MAX_TAGS)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "TooManyTagsException",
                                    "A resource can have at most %d tags; %zu were given.",
                                    MAX_TAGS, json_array_size(tags));
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        const char *k = barge_json_str(t, "Key", NULL);
        if (!k || !*k || strlen(k) > 128 || barge_str_has_prefix(k, "aws:"))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidTagParameterException",
                                        "Invalid tag key '%s': 1 to 128 characters, not "
                                        "starting with 'aws:'.",
                                        k ? k : "");
        if (strlen(barge_json_str(t, "Value", "")) > 256)
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidTagParameterException",
                                        "The value of tag '%s' is longer than 256 characters.", k);
    }
    return 0;
}

static int check_mutability(const json_t *in, struct barge_error **err)
{
    const char *m = barge_json_str(in, "imageTagMutability", "MUTABLE");
    json_t *filters = barge_json_array(in, "imageTagMutabilityExclusionFilters");
    bool with = barge_str_has_suffix(m, "_WITH_EXCLUSION");
    if (with && json_array_size(filters) == 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "imageTagMutability '%s' needs "
                                    "imageTagMutabilityExclusionFilters.",
                                    m);
    if (!with && json_array_size(filters) > 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "imageTagMutabilityExclusionFilters are only allowed with "
                                    "IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION.");
    return 0;
}

static int create_repository(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    const char *name = barge_json_str(in, "repositoryName", "");
    json_t *tags = barge_json_array(in, "tags");
    if (check_registry(ctx, in, name, err) < 0 || check_name(name, err) < 0 ||
        (tags && validate_tags(tags, err) < 0) || check_mutability(in, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *existing = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        return -1;
    int r = barge_store_get(tx, BARGE_REGISTRY_KIND_REPO, name, &existing, err);
    if (r < 0)
        return -1;
    if (r > 0)
        return barge_error_set_type(err, BARGE_ERR_EXISTS, "RepositoryAlreadyExistsException",
                                    "The repository with name '%s' already exists in the "
                                    "registry with id '%s'",
                                    name, ctx->srv->cfg.account_id);
    _cleanup_free_ char *arn = repo_arn(ctx->srv, name);
    json_t *scan = json_object_get(in, "imageScanningConfiguration");
    json_t *enc = json_object_get(in, "encryptionConfiguration");
    _cleanup_json_ json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:f, s:s, s:o, s:o, s:[]}", "repositoryArn", arn, "registryId",
        ctx->srv->cfg.account_id, "repositoryName", name, "createdAt", barge_now(),
        "imageTagMutability", barge_json_str(in, "imageTagMutability", "MUTABLE"),
        "imageScanningConfiguration",
        scan ? json_deep_copy(scan) : json_pack("{s:b}", "scanOnPush", 0),
        "encryptionConfiguration",
        enc ? json_deep_copy(enc) : json_pack("{s:s}", "encryptionType", "AES256"), "tags");
    json_t *filters = barge_json_array(in, "imageTagMutabilityExclusionFilters");
    if (filters)
        json_object_set(doc, "imageTagMutabilityExclusionFilters", filters);
    if (tags)
        barge_api_tags_merge(doc, tags);
    if (barge_store_put(tx, BARGE_REGISTRY_KIND_REPO, name, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("created repository '%s'", name);
    *out = json_pack("{s:o}", "repository", render_repo(ctx->srv, doc));
    return 0;
}

struct repo_page {
    const struct barge_server *srv;
    json_t *repos;
    int max;
    char *last;
    bool more;
};

static int page_repo(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct repo_page *p = ud;
    if ((int)json_array_size(p->repos) == p->max) {
        p->more = true;
        return 1;
    }
    json_array_append_new(p->repos, render_repo(p->srv, doc));
    free(p->last);
    p->last = barge_xstrdup(key);
    return 0;
}

static void set_next_token(json_t *out, bool more, const char *last)
{
    if (!more || !last)
        return;
    char *tok = barge_api_token_encode(last);
    json_object_set_new(out, "nextToken", json_string(tok));
    free(tok);
}

static int describe_repositories(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                 struct barge_error **err)
{
    json_t *names = barge_json_array(in, "repositoryNames");
    if (check_registry(ctx, in, names ? json_string_value(json_array_get(names, 0)) : NULL, err) <
        0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    if (names && json_array_size(names) > 0) {
        if (json_object_get(in, "nextToken") || json_object_get(in, "maxResults"))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "maxResults and nextToken cannot be used with "
                                        "repositoryNames.");
        _cleanup_json_ json_t *repos = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(names, i, v)
        {
            const char *name = json_string_value(v);
            json_t *doc = NULL;
            if (check_name(name, err) < 0 || barge_registry_repo_load(tx, name, &doc, err) < 0)
                return -1;
            json_array_append_new(repos, render_repo(ctx->srv, doc));
            json_decref(doc);
        }
        *out = json_pack("{s:O}", "repositories", repos);
        return 0;
    }
    struct repo_page p = {.srv = ctx->srv};
    _cleanup_free_ char *after = NULL;
    if (barge_api_max_results(in, "maxResults", 100, 1000, &p.max, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, "nextToken", NULL), &after, err) < 0)
        return -1;
    p.repos = json_array();
    if (barge_store_scan(tx, BARGE_REGISTRY_KIND_REPO, "", after, false, 0, page_repo, &p, err) <
        0) {
        json_decref(p.repos);
        free(p.last);
        return -1;
    }
    *out = json_pack("{s:o}", "repositories", p.repos);
    set_next_token(*out, p.more, p.last);
    free(p.last);
    return 0;
}

static int delete_repository(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    const char *name = barge_json_str(in, "repositoryName", "");
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0 ||
        barge_registry_repo_delete(tx, name, barge_json_bool(in, "force", false), err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("deleted repository '%s'", name);
    *out = json_pack("{s:o}", "repository", render_repo(ctx->srv, repo));
    return 0;
}

/* The ImageDetail shape of a stored image. */
static json_t *render_detail(const struct barge_server *srv, const json_t *img)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:O, s:O, s:s}", "registryId", srv->cfg.account_id,
                          "repositoryName", barge_json_str(img, "repositoryName", ""),
                          "imageDigest", barge_json_str(img, "imageDigest", ""), "imageSizeInBytes",
                          json_object_get(img, "imageSizeInBytes"), "imagePushedAt",
                          json_object_get(img, "imagePushedAt"), "imageManifestMediaType",
                          barge_json_str(img, "imageManifestMediaType", ""));
    json_t *tags = barge_json_array(img, "imageTags");
    if (json_array_size(tags) > 0)
        json_object_set(d, "imageTags", tags);
    barge_json_set_str(d, "artifactMediaType", barge_json_str(img, "artifactMediaType", NULL));
    barge_json_set_str(d, "subjectManifestDigest", barge_json_str(img, "subject", NULL));
    json_object_set_new(d, "imageStatus", json_string("ACTIVE"));
    return d;
}

/* tagStatus of a filter: "TAGGED", "UNTAGGED" or "ANY" (the default). */
static const char *tag_status(const json_t *in)
{
    return barge_json_str(barge_json_object(in, "filter"), "tagStatus", "ANY");
}

static bool status_keeps(const char *status, const json_t *img)
{
    size_t n = json_array_size(barge_json_array(img, "imageTags"));
    if (strcmp(status, "TAGGED") == 0)
        return n > 0;
    if (strcmp(status, "UNTAGGED") == 0)
        return n == 0;
    return true;
}

struct image_page {
    const struct barge_server *srv;
    const char *status;
    json_t *items;
    bool details; /* DescribeImages: ImageDetail; ListImages: ImageIdentifier per tag */
    int max;
    char *last;
    bool more;
};

static int page_image(const char *key, json_t *img, void *ud, struct barge_error **err)
{
    struct image_page *p = ud;
    if (!status_keeps(p->status, img))
        return 0;
    if ((int)json_array_size(p->items) >= p->max) {
        p->more = true;
        return 1;
    }
    const char *digest = barge_json_str(img, "imageDigest", "");
    if (p->details) {
        json_array_append_new(p->items, render_detail(p->srv, img));
    } else {
        json_t *tags = barge_json_array(img, "imageTags");
        size_t i;
        json_t *t;
        if (json_array_size(tags) > 0 && strcmp(p->status, "UNTAGGED") != 0) {
            json_array_foreach(tags, i, t) json_array_append_new(
                p->items, json_pack("{s:s, s:O}", "imageDigest", digest, "imageTag", t));
        } else {
            json_array_append_new(p->items, json_pack("{s:s}", "imageDigest", digest));
        }
    }
    free(p->last);
    p->last = barge_xstrdup(key);
    return 0;
}

static int page_images(struct barge_api_ctx *ctx, json_t *in, bool details, const char *member,
                       json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    struct image_page p = {.srv = ctx->srv, .status = tag_status(in), .details = details};
    _cleanup_free_ char *after = NULL;
    if (barge_api_max_results(in, "maxResults", 100, 1000, &p.max, err) < 0 ||
        barge_api_token_decode(barge_json_str(in, "nextToken", NULL), &after, err) < 0 ||
        barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0)
        return -1;
    const char *name = barge_json_str(in, "repositoryName", "");
    _cleanup_free_ char *prefix = barge_xasprintf("%s@", name);
    if (after && !barge_str_has_prefix(after, prefix))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid nextToken for repository '%s'.", name);
    p.items = json_array();
    if (barge_store_scan(tx, BARGE_REGISTRY_KIND_IMAGE, prefix, after, false, 0, page_image, &p,
                         err) < 0) {
        json_decref(p.items);
        free(p.last);
        return -1;
    }
    *out = json_pack("{s:o}", member, p.items);
    set_next_token(*out, p.more, p.last);
    free(p.last);
    return 0;
}

static int list_images(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    return page_images(ctx, in, false, "imageIds", out, err);
}

/* Resolves an ImageIdentifier. Returns 1 with the image (new reference), or 0
 * with *code and *reason describing the failure (ECR's ImageFailureCode). */
static int resolve_id(struct barge_tx *tx, const char *repo, const json_t *id, json_t **img,
                      const char **code, char **reason, struct barge_error **err)
{
    const char *tag = barge_json_str(id, "imageTag", NULL);
    const char *digest = barge_json_str(id, "imageDigest", NULL);
    *img = NULL;
    if (!tag && !digest) {
        *code = "MissingDigestAndTag";
        *reason = barge_xstrdup("Missing image digest and image tag");
        return 0;
    }
    if (digest && barge_digest_check(digest) != BARGE_DIGEST_OK) {
        *code = "InvalidImageDigest";
        *reason = barge_xasprintf("Invalid request parameters: image digest '%s' should satisfy "
                                  "the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
                                  digest);
        return 0;
    }
    if (tag && !barge_registry_tag_valid(tag)) {
        *code = "InvalidImageTag";
        *reason = barge_xasprintf("Invalid image tag '%s'", tag);
        return 0;
    }
    int r = barge_registry_image_find(tx, repo, tag, NULL, img, err);
    if (tag && !digest && r == 0) {
        *code = "ImageNotFound";
        *reason = barge_xstrdup("Requested image not found");
        return 0;
    }
    if (r < 0)
        return -1;
    if (tag && digest && r > 0 && strcmp(barge_json_str(*img, "imageDigest", ""), digest) != 0) {
        json_decref(*img);
        *img = NULL;
        *code = "ImageTagDoesNotMatchDigest";
        *reason = barge_xstrdup("Invalid request parameters: given tag and digest do not match");
        return 0;
    }
    if (r == 0) {
        r = tag ? 0 : barge_registry_image_find(tx, repo, NULL, digest, img, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            *code = "ImageNotFound";
            *reason = barge_xstrdup("Requested image not found");
            return 0;
        }
    }
    return 1;
}

static json_t *failure(const json_t *id, const char *code, const char *reason)
{
    return json_pack("{s:O, s:s, s:s}", "imageId", id, "failureCode", code, "failureReason",
                     reason);
}

static int describe_images(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    json_t *ids = barge_json_array(in, "imageIds");
    if (!ids || json_array_size(ids) == 0)
        return page_images(ctx, in, true, "imageDetails", out, err);
    if (json_object_get(in, "nextToken") || json_object_get(in, "maxResults"))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "maxResults and nextToken cannot be used with imageIds.");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL, *details = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0)
        return -1;
    const char *name = barge_json_str(in, "repositoryName", "");
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        json_t *img = NULL;
        const char *code = NULL;
        _cleanup_free_ char *reason = NULL;
        int r = resolve_id(tx, name, id, &img, &code, &reason, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            if (strcmp(code, "ImageNotFound") == 0)
                return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "ImageNotFoundException",
                                            "The image with imageId {imageDigest:'%s', "
                                            "imageTag:'%s'} does not exist within the "
                                            "repository with name '%s' in the registry with id "
                                            "'%s'",
                                            barge_json_str(id, "imageDigest", "null"),
                                            barge_json_str(id, "imageTag", "null"), name,
                                            ctx->srv->cfg.account_id);
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException", "%s",
                                        reason);
        }
        if (status_keeps(tag_status(in), img))
            json_array_append_new(details, render_detail(ctx->srv, img));
        json_decref(img);
    }
    *out = json_pack("{s:O}", "imageDetails", details);
    return 0;
}

static bool media_type_accepted(const json_t *accepted, const char *mt)
{
    if (json_array_size(accepted) == 0)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(accepted, i, v)
    {
        if (barge_streq(json_string_value(v), mt))
            return true;
    }
    return false;
}

static json_t *render_image(const struct barge_server *srv, const char *repo, const json_t *img,
                            const char *tag)
{
    json_t *id = json_pack("{s:s}", "imageDigest", barge_json_str(img, "imageDigest", ""));
    barge_json_set_str(id, "imageTag", tag);
    return json_pack("{s:s, s:s, s:o, s:O, s:s}", "registryId", srv->cfg.account_id,
                     "repositoryName", repo, "imageId", id, "imageManifest",
                     json_object_get(img, "imageManifest"), "imageManifestMediaType",
                     barge_json_str(img, "imageManifestMediaType", ""));
}

static int batch_get_image(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    json_t *ids = barge_json_array(in, "imageIds");
    json_t *accepted = barge_json_array(in, "acceptedMediaTypes");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL, *images = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0)
        return -1;
    const char *name = barge_json_str(in, "repositoryName", "");
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        _cleanup_json_ json_t *img = NULL;
        const char *code = NULL;
        _cleanup_free_ char *reason = NULL;
        int r = resolve_id(tx, name, id, &img, &code, &reason, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            json_array_append_new(failures, failure(id, code, reason));
            continue;
        }
        const char *mt = barge_json_str(img, "imageManifestMediaType", "");
        if (!media_type_accepted(accepted, mt)) {
            _cleanup_free_ char *why = barge_xasprintf(
                "The image's manifest media type '%s' is not among acceptedMediaTypes", mt);
            json_array_append_new(failures, failure(id, "ImageNotFound", why));
            continue;
        }
        json_array_append_new(
            images, render_image(ctx->srv, name, img, barge_json_str(id, "imageTag", NULL)));
    }
    *out = json_pack("{s:O, s:O}", "images", images, "failures", failures);
    return 0;
}

static int batch_delete_image(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    json_t *ids = barge_json_array(in, "imageIds");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL, *deleted = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0)
        return -1;
    const char *name = barge_json_str(in, "repositoryName", "");
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        _cleanup_json_ json_t *img = NULL;
        const char *code = NULL;
        _cleanup_free_ char *reason = NULL;
        int r = resolve_id(tx, name, id, &img, &code, &reason, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            json_array_append_new(failures, failure(id, code, reason));
            continue;
        }
        const char *digest = barge_json_str(img, "imageDigest", "");
        const char *tag = barge_json_str(id, "imageTag", NULL);
        json_t *tags = barge_json_array(img, "imageTags");
        /* A tag alone removes that tag; the image goes with its last tag, as
         * in ECR. A digest removes the image and every tag it has. */
        if (tag && !barge_json_str(id, "imageDigest", NULL) && json_array_size(tags) > 1) {
            if (barge_registry_tag_remove(tx, name, tag, err) < 0)
                return -1;
            json_array_append_new(deleted,
                                  json_pack("{s:s, s:s}", "imageDigest", digest, "imageTag", tag));
            continue;
        }
        struct barge_error *e = NULL;
        if (barge_registry_image_delete(tx, name, digest, &e) < 0) {
            if (e->code != BARGE_ERR_CONFLICT) {
                *err = e;
                return -1;
            }
            json_array_append_new(failures,
                                  failure(id, "ImageReferencedByManifestList", e->message));
            barge_error_free(e);
            continue;
        }
        size_t j;
        json_t *t;
        if (json_array_size(tags) == 0)
            json_array_append_new(deleted, json_pack("{s:s}", "imageDigest", digest));
        json_array_foreach(tags, j, t) json_array_append_new(
            deleted, json_pack("{s:s, s:O}", "imageDigest", digest, "imageTag", t));
    }
    if (barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_pack("{s:O, s:O}", "imageIds", deleted, "failures", failures);
    return 0;
}

static int put_image(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    const char *name = barge_json_str(in, "repositoryName", "");
    if (check_registry(ctx, in, name, err) < 0 || check_name(name, err) < 0)
        return -1;
    json_t *manifest = json_object_get(in, "imageManifest");
    const char *digest = barge_json_str(in, "imageDigest", NULL);
    if (digest && barge_digest_check(digest) != BARGE_DIGEST_OK)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid parameter at 'imageDigest' failed to satisfy "
                                    "constraint: 'a sha256 digest' (value '%s')",
                                    digest);
    struct barge_registry_push p = {
        .repo = name,
        .manifest = json_string_value(manifest),
        .len = json_string_length(manifest),
        .media_type = barge_json_str(in, "imageManifestMediaType", NULL),
        .tag = barge_json_str(in, "imageTag", NULL),
        .digest = digest,
        .refuse_unchanged = true,
    };
    _cleanup_json_ json_t *img = NULL;
    if (barge_registry_image_put(ctx->srv->registry, &p, &img, err) < 0)
        return -1;
    *out = json_pack("{s:o}", "image", render_image(ctx->srv, name, img, p.tag));
    return 0;
}

static int get_authorization_token(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    size_t i;
    json_t *id;
    json_array_foreach(barge_json_array(in, "registryIds"), i, id)
    {
        if (!barge_streq(json_string_value(id), ctx->srv->cfg.account_id))
            return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                        "Unknown registry id '%s': this registry is '%s'.",
                                        json_string_value(id), ctx->srv->cfg.account_id);
    }
    time_t expires;
    _cleanup_free_ char *token = barge_registry_token_issue(
        ctx->srv->registry, ctx->who.access_key_id, time(NULL), &expires);
    _cleanup_free_ char *pair = barge_xasprintf("AWS:%s", token);
    size_t len = strlen(pair);
    _cleanup_free_ char *b64 = barge_xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pair, (int)len);
    _cleanup_free_ char *proxy = barge_registry_proxy_endpoint(ctx->srv->registry);
    *out = json_pack("{s:[{s:s, s:I, s:s}]}", "authorizationData", "authorizationToken", b64,
                     "expiresAt", (json_int_t)expires, "proxyEndpoint", proxy);
    return 0;
}

/* Applies fn to the repository named in the input and stores it. */
static int update_repo(struct barge_api_ctx *ctx, json_t *in, json_t **repo_out,
                       int (*fn)(json_t *repo, const json_t *in, struct barge_error **err),
                       struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0 || fn(repo, in, err) < 0 ||
        barge_store_put(tx, BARGE_REGISTRY_KIND_REPO, barge_json_str(repo, "repositoryName", ""),
                        repo, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *repo_out = json_incref(repo);
    return 0;
}

static int apply_policy(json_t *repo, const json_t *in, struct barge_error **err)
{
    const char *text = barge_json_str(in, "lifecyclePolicyText", "");
    struct barge_lifecycle_policy p;
    if (barge_lifecycle_parse(text, &p, err) < 0)
        return -1;
    barge_lifecycle_release(&p);
    json_object_set_new(repo, "lifecyclePolicyText", json_string(text));
    json_object_del(repo, "lifecycleEvaluatedAt");
    return 0;
}

static int put_lifecycle_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    _cleanup_json_ json_t *repo = NULL;
    if (update_repo(ctx, in, &repo, apply_policy, err) < 0)
        return -1;
    *out = json_pack("{s:s, s:O, s:O}", "registryId", ctx->srv->cfg.account_id, "repositoryName",
                     json_object_get(repo, "repositoryName"), "lifecyclePolicyText",
                     json_object_get(repo, "lifecyclePolicyText"));
    return 0;
}

static int policy_out(struct barge_api_ctx *ctx, const json_t *repo, json_t **out,
                      struct barge_error **err)
{
    if (!barge_json_str(repo, "lifecyclePolicyText", NULL))
        return barge_error_set_type(err, BARGE_ERR_NOT_FOUND, "LifecyclePolicyNotFoundException",
                                    "Lifecycle policy does not exist for the repository with "
                                    "name '%s' in the registry with id '%s'",
                                    barge_json_str(repo, "repositoryName", ""),
                                    ctx->srv->cfg.account_id);
    *out = json_pack("{s:s, s:O, s:O}", "registryId", ctx->srv->cfg.account_id, "repositoryName",
                     json_object_get(repo, "repositoryName"), "lifecyclePolicyText",
                     json_object_get(repo, "lifecyclePolicyText"));
    json_t *at = json_object_get(repo, "lifecycleEvaluatedAt");
    if (at)
        json_object_set(*out, "lastEvaluatedAt", at);
    return 0;
}

static int get_lifecycle_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0)
        return -1;
    return policy_out(ctx, repo, out, err);
}

static int delete_lifecycle_policy(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                   struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL, *result = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0 || policy_out(ctx, repo, &result, err) < 0)
        return -1;
    json_object_del(repo, "lifecyclePolicyText");
    json_object_del(repo, "lifecycleEvaluatedAt");
    if (barge_store_put(tx, BARGE_REGISTRY_KIND_REPO, barge_json_str(repo, "repositoryName", ""),
                        repo, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = barge_steal(&result);
    return 0;
}

static int apply_mutability(json_t *repo, const json_t *in, struct barge_error **err)
{
    if (check_mutability(in, err) < 0)
        return -1;
    json_object_set_new(repo, "imageTagMutability",
                        json_string(barge_json_str(in, "imageTagMutability", "MUTABLE")));
    json_t *filters = barge_json_array(in, "imageTagMutabilityExclusionFilters");
    if (filters)
        json_object_set(repo, "imageTagMutabilityExclusionFilters", filters);
    else
        json_object_del(repo, "imageTagMutabilityExclusionFilters");
    return 0;
}

static int put_image_tag_mutability(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                    struct barge_error **err)
{
    _cleanup_json_ json_t *repo = NULL;
    if (update_repo(ctx, in, &repo, apply_mutability, err) < 0)
        return -1;
    *out = json_pack("{s:s, s:O, s:O}", "registryId", ctx->srv->cfg.account_id, "repositoryName",
                     json_object_get(repo, "repositoryName"), "imageTagMutability",
                     json_object_get(repo, "imageTagMutability"));
    json_t *filters = json_object_get(repo, "imageTagMutabilityExclusionFilters");
    if (filters)
        json_object_set(*out, "imageTagMutabilityExclusionFilters", filters);
    return 0;
}

static int batch_check_layer_availability(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL, *layers = json_array(), *failures = json_array();
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load_repo(ctx, tx, in, &repo, err) < 0)
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(barge_json_array(in, "layerDigests"), i, v)
    {
        const char *d = json_string_value(v);
        if (barge_digest_check(d) != BARGE_DIGEST_OK) {
            json_array_append_new(failures, json_pack("{s:s, s:s, s:s}", "layerDigest", d,
                                                      "failureCode", "InvalidLayerDigest",
                                                      "failureReason", "Invalid layer digest"));
            continue;
        }
        uint64_t size = 0;
        int r = barge_registry_blob_size(ctx->srv->registry, d, &size, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            json_array_append_new(failures, json_pack("{s:s, s:s, s:s}", "layerDigest", d,
                                                      "failureCode", "MissingLayerDigest",
                                                      "failureReason", "Layer not found"));
            continue;
        }
        json_array_append_new(layers,
                              json_pack("{s:s, s:s, s:I}", "layerDigest", d, "layerAvailability",
                                        "AVAILABLE", "layerSize", (json_int_t)size));
    }
    *out = json_pack("{s:O, s:O}", "layers", layers, "failures", failures);
    return 0;
}

/* Tagging works on repository ARNs. */
static int repo_by_arn(struct barge_api_ctx *ctx, struct barge_tx *tx, const char *arn,
                       json_t **repo, struct barge_error **err)
{
    struct barge_arn a;
    if (barge_arn_parse(arn, &a) < 0)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid resource ARN '%s'.", arn);
    bool ok = strcmp(a.service, "ecr") == 0 &&
              strcmp(a.region, barge_server_region(ctx->srv)) == 0 &&
              strcmp(a.account, ctx->srv->cfg.account_id) == 0 &&
              barge_str_has_prefix(a.resource, "repository/");
    _cleanup_free_ char *name = ok ? barge_xstrdup(a.resource + strlen("repository/")) : NULL;
    barge_arn_release(&a);
    if (!ok)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "Invalid resource ARN '%s': not a repository of this "
                                    "registry.",
                                    arn);
    return barge_registry_repo_load(tx, name, repo, err);
}

static int tag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                        struct barge_error **err)
{
    json_t *tags = barge_json_array(in, "tags");
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    if (validate_tags(tags, err) < 0 || barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        repo_by_arn(ctx, tx, barge_json_str(in, "resourceArn", ""), &repo, err) < 0)
        return -1;
    barge_api_tags_merge(repo, tags);
    if (validate_tags(barge_json_array(repo, "tags"), err) < 0 ||
        barge_store_put(tx, BARGE_REGISTRY_KIND_REPO, barge_json_str(repo, "repositoryName", ""),
                        repo, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int untag_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                          struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        repo_by_arn(ctx, tx, barge_json_str(in, "resourceArn", ""), &repo, err) < 0)
        return -1;
    barge_api_tags_remove(repo, barge_json_array(in, "tagKeys"));
    if (barge_store_put(tx, BARGE_REGISTRY_KIND_REPO, barge_json_str(repo, "repositoryName", ""),
                        repo, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int list_tags_for_resource(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                  struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *repo = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        repo_by_arn(ctx, tx, barge_json_str(in, "resourceArn", ""), &repo, err) < 0)
        return -1;
    json_t *tags = barge_json_array(repo, "tags");
    *out = json_pack("{s:o}", "tags", tags ? json_incref(tags) : json_array());
    return 0;
}

static const struct barge_api_op ecr_ops[] = {
    {"CreateRepository", create_repository},
    {"DescribeRepositories", describe_repositories},
    {"DeleteRepository", delete_repository},
    {"ListImages", list_images},
    {"DescribeImages", describe_images},
    {"BatchGetImage", batch_get_image},
    {"BatchDeleteImage", batch_delete_image},
    {"PutImage", put_image},
    {"GetAuthorizationToken", get_authorization_token},
    {"PutLifecyclePolicy", put_lifecycle_policy},
    {"GetLifecyclePolicy", get_lifecycle_policy},
    {"DeleteLifecyclePolicy", delete_lifecycle_policy},
    {"PutImageTagMutability", put_image_tag_mutability},
    {"BatchCheckLayerAvailability", batch_check_layer_availability},
    {"TagResource", tag_resource},
    {"UntagResource", untag_resource},
    {"ListTagsForResource", list_tags_for_resource},
    {NULL, NULL},
};

static const struct barge_api_op *const ecr_op_tables[] = {
    ecr_ops,
    NULL,
};

const struct barge_api_service barge_api_ecr = {
    .model = "ecr",
    .message_key = "message",
    .invalid_type = "InvalidParameterException",
    .client_type = "InvalidParameterException",
    .server_type = "ServerException",
    .not_found_type = "RepositoryNotFoundException",
    .op_tables = ecr_op_tables,
};
