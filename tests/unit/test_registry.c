/* The registry's pure pieces and its blob store: digests and their
 * verification, names, tags and /v2/ paths, Range and Content-Range parsing,
 * manifest reference extraction, lifecycle policies, and uploads that only
 * become visible blobs when their digest matches. */
#include <sys/stat.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
// clang-format on

#include "registry/blobstore.h"
#include "registry/lifecycle.h"
#include "registry/manifest.h"
#include "registry/ref.h"

#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256   "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_digest_check(void **state)
{
    assert_int_equal(barge_digest_check(ABC_SHA256), BARGE_DIGEST_OK);
    assert_int_equal(barge_digest_check("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9"
                                        "CB410FF61F20015AD"),
                     BARGE_DIGEST_MALFORMED);
    assert_int_equal(barge_digest_check("sha256:abc"), BARGE_DIGEST_MALFORMED);
    assert_int_equal(barge_digest_check("sha256:../../../../etc/passwd"), BARGE_DIGEST_MALFORMED);
    assert_int_equal(barge_digest_check("sha512:abcdef"), BARGE_DIGEST_UNSUPPORTED);
    assert_int_equal(barge_digest_check("latest"), BARGE_DIGEST_MALFORMED);
    assert_int_equal(barge_digest_check(":abc"), BARGE_DIGEST_MALFORMED);
    assert_int_equal(barge_digest_check(NULL), BARGE_DIGEST_MALFORMED);
}

static void test_digest_of_and_matches(void **state)
{
    char d[BARGE_DIGEST_MAX];
    barge_digest_of("abc", 3, d);
    assert_string_equal(d, ABC_SHA256);
    barge_digest_of("", 0, d);
    assert_string_equal(d, EMPTY_SHA256);
    assert_true(barge_digest_matches(ABC_SHA256, "abc", 3));
    assert_false(barge_digest_matches(ABC_SHA256, "abd", 3));
    assert_false(barge_digest_matches("sha512:00", "abc", 3));
}

static void test_names_and_tags(void **state)
{
    const char *good[] = {"ab", "busybox", "team/app", "a.b_c__d--e/f-1", "x1/y2/z3"};
    const char *bad[] = {"a",    "Busybox", "/app",  "app/", "a//b", "a..b", "a._b",
                         "-app", "app-",    "a___b", "a b",  "a@b",  "a:b",  "../etc"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(barge_registry_repo_name_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(barge_registry_repo_name_valid(bad[i]));
    char long_name[300];
    memset(long_name, 'a', 257);
    long_name[257] = '\0';
    assert_false(barge_registry_repo_name_valid(long_name));

    assert_true(barge_registry_tag_valid("latest"));
    assert_true(barge_registry_tag_valid("v1.2.3-rc_1"));
    assert_true(barge_registry_tag_valid("_x"));
    assert_false(barge_registry_tag_valid(".x"));
    assert_false(barge_registry_tag_valid("-x"));
    assert_false(barge_registry_tag_valid("a/b"));
    assert_false(barge_registry_tag_valid(""));
    char long_tag[200];
    memset(long_tag, 't', 129);
    long_tag[129] = '\0';
    assert_false(barge_registry_tag_valid(long_tag));
}

static void check_path(const char *path, enum barge_registry_route route, const char *name,
                       const char *ref)
{
    struct barge_registry_path p;
    assert_int_equal(barge_registry_path_parse(path, &p), 0);
    assert_int_equal(p.route, route);
    if (name)
        assert_string_equal(p.name, name);
    else
        assert_null(p.name);
    if (ref)
        assert_string_equal(p.ref, ref);
    else
        assert_null(p.ref);
    barge_registry_path_release(&p);
}

static void test_paths(void **state)
{
    check_path("/v2/", BARGE_REG_BASE, NULL, NULL);
    check_path("/v2/token", BARGE_REG_TOKEN, NULL, NULL);
    check_path("/v2/_catalog", BARGE_REG_CATALOG, NULL, NULL);
    check_path("/v2/a/b/tags/list", BARGE_REG_TAGS, "a/b", NULL);
    check_path("/v2/app/manifests/latest", BARGE_REG_MANIFEST, "app", "latest");
    check_path("/v2/team/app/manifests/" ABC_SHA256, BARGE_REG_MANIFEST, "team/app", ABC_SHA256);
    check_path("/v2/x/manifests/manifests/v1", BARGE_REG_MANIFEST, "x/manifests", "v1");
    check_path("/v2/app/blobs/" ABC_SHA256, BARGE_REG_BLOB, "app", ABC_SHA256);
    check_path("/v2/app/blobs/uploads/", BARGE_REG_UPLOADS, "app", NULL);
    check_path("/v2/app/blobs/uploads", BARGE_REG_UPLOADS, "app", NULL);
    check_path("/v2/app/blobs/uploads/1234-abcd", BARGE_REG_UPLOAD, "app", "1234-abcd");
    struct barge_registry_path p;
    assert_int_equal(barge_registry_path_parse("/v2/app", &p), -1);
    assert_int_equal(barge_registry_path_parse("/v2/app/manifests/", &p), -1);
    assert_int_equal(barge_registry_path_parse("/v2/app/other/x", &p), -1);
    assert_int_equal(barge_registry_path_parse("/v3/app/manifests/x", &p), -1);
}

static void test_range(void **state)
{
    uint64_t s, e;
    assert_int_equal(barge_registry_range_parse(NULL, 100, &s, &e), 0);
    assert_int_equal(barge_registry_range_parse("bytes=0-9", 100, &s, &e), 1);
    assert_true(s == 0 && e == 9);
    assert_int_equal(barge_registry_range_parse("bytes=90-", 100, &s, &e), 1);
    assert_true(s == 90 && e == 99);
    assert_int_equal(barge_registry_range_parse("bytes=90-500", 100, &s, &e), 1);
    assert_true(s == 90 && e == 99);
    assert_int_equal(barge_registry_range_parse("bytes=-10", 100, &s, &e), 1);
    assert_true(s == 90 && e == 99);
    assert_int_equal(barge_registry_range_parse("bytes=-1000", 100, &s, &e), 1);
    assert_true(s == 0 && e == 99);
    assert_int_equal(barge_registry_range_parse("bytes=100-", 100, &s, &e), -1);
    assert_int_equal(barge_registry_range_parse("bytes=-0", 100, &s, &e), -1);
    assert_int_equal(barge_registry_range_parse("bytes=0-", 0, &s, &e), -1);
    /* ignored: not bytes, several ranges, reversed, garbage */
    assert_int_equal(barge_registry_range_parse("items=0-9", 100, &s, &e), 0);
    assert_int_equal(barge_registry_range_parse("bytes=0-9,20-29", 100, &s, &e), 0);
    assert_int_equal(barge_registry_range_parse("bytes=9-0", 100, &s, &e), 0);
    assert_int_equal(barge_registry_range_parse("bytes=x-y", 100, &s, &e), 0);
    assert_int_equal(barge_registry_range_parse("bytes=99999999999999999999-", 100, &s, &e), 0);
}

static void test_content_range(void **state)
{
    uint64_t s, e;
    assert_int_equal(barge_registry_content_range_parse("0-99", &s, &e), 0);
    assert_true(s == 0 && e == 99);
    assert_int_equal(barge_registry_content_range_parse("bytes 100-199", &s, &e), 0);
    assert_true(s == 100 && e == 199);
    assert_int_equal(barge_registry_content_range_parse("bytes=100-199/*", &s, &e), 0);
    assert_int_equal(barge_registry_content_range_parse("199-100", &s, &e), -1);
    assert_int_equal(barge_registry_content_range_parse("100", &s, &e), -1);
    assert_int_equal(barge_registry_content_range_parse("a-b", &s, &e), -1);
}

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static const char docker_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" BARGE_MT_DOCKER_MANIFEST "\","
    "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
    "\"digest\":\"" D1 "\",\"size\":10},"
    "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
    "\"digest\":\"" D2 "\",\"size\":20},"
    "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
    "\"digest\":\"" D3 "\",\"size\":30,\"urls\":[\"https://example.com/layer\"]}]}";

static void test_manifest_docker(void **state)
{
    struct barge_manifest m;
    struct barge_error *err = NULL;
    assert_int_equal(barge_manifest_parse(docker_manifest, strlen(docker_manifest),
                                          BARGE_MT_DOCKER_MANIFEST, &m, &err),
                     0);
    assert_string_equal(m.media_type, BARGE_MT_DOCKER_MANIFEST);
    assert_false(m.is_index);
    assert_string_equal(m.config.digest, D1);
    assert_int_equal(m.config.size, 10);
    assert_string_equal(m.artifact_type, "application/vnd.docker.container.image.v1+json");
    assert_int_equal(m.n_layers, 2);
    assert_string_equal(m.layers[0].digest, D2);
    assert_false(m.layers[0].foreign);
    assert_string_equal(m.layers[1].digest, D3);
    assert_true(m.layers[1].foreign);
    assert_null(m.subject);
    barge_manifest_release(&m);
}

static void test_manifest_oci_inferred_and_subject(void **state)
{
    /* No mediaType member and a generic Content-Type: the shape decides. */
    const char *body =
        "{\"schemaVersion\":2,\"artifactType\":\"application/vnd.example.sbom\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" D1 "\","
        "\"size\":2},\"layers\":[],"
        "\"subject\":{\"mediaType\":\"" BARGE_MT_OCI_MANIFEST "\",\"digest\":\"" D3 "\","
        "\"size\":100}}";
    struct barge_manifest m;
    struct barge_error *err = NULL;
    assert_int_equal(
        barge_manifest_parse(body, strlen(body), "application/json; charset=utf-8", &m, &err), 0);
    assert_string_equal(m.media_type, BARGE_MT_OCI_MANIFEST);
    assert_string_equal(m.artifact_type, "application/vnd.example.sbom");
    assert_int_equal(m.n_layers, 0);
    assert_string_equal(m.subject, D3);
    barge_manifest_release(&m);
}

static void test_manifest_index(void **state)
{
    const char *body = "{\"schemaVersion\":2,\"mediaType\":\"" BARGE_MT_OCI_INDEX "\","
                       "\"manifests\":[{\"mediaType\":\"" BARGE_MT_OCI_MANIFEST "\","
                       "\"digest\":\"" D1 "\",\"size\":500,\"platform\":{\"os\":\"linux\","
                       "\"architecture\":\"amd64\"}},{\"mediaType\":\"" BARGE_MT_DOCKER_MANIFEST
                       "\",\"digest\":\"" D2 "\",\"size\":600}]}";
    struct barge_manifest m;
    struct barge_error *err = NULL;
    assert_int_equal(barge_manifest_parse(body, strlen(body), NULL, &m, &err), 0);
    assert_true(m.is_index);
    assert_null(m.artifact_type);
    assert_int_equal(m.n_children, 2);
    assert_string_equal(m.children[0].digest, D1);
    assert_string_equal(m.children[1].digest, D2);
    assert_int_equal(m.n_layers, 0);
    barge_manifest_release(&m);
}

static void expect_bad(const char *body, const char *ct, enum barge_errcode code,
                       const char *needle)
{
    struct barge_manifest m;
    struct barge_error *err = NULL;
    assert_int_equal(barge_manifest_parse(body, strlen(body), ct, &m, &err), -1);
    assert_non_null(err);
    assert_int_equal(err->code, code);
    if (!strstr(err->message, needle))
        fail_msg("'%s' does not mention '%s'", err->message, needle);
    barge_error_free(err);
}

static void test_manifest_invalid(void **state)
{
    expect_bad("{not json", NULL, BARGE_ERR_INVALID, "not valid JSON");
    expect_bad("[]", NULL, BARGE_ERR_INVALID, "not a JSON object");
    expect_bad("{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}", NULL, BARGE_ERR_UNSUPPORTED,
               "schema 1");
    expect_bad(docker_manifest, BARGE_MT_OCI_MANIFEST, BARGE_ERR_INVALID, "does not match");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.foo\"}", NULL,
               BARGE_ERR_UNSUPPORTED, "application/vnd.foo");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" BARGE_MT_OCI_MANIFEST "\",\"layers\":[]}",
               NULL, BARGE_ERR_INVALID, "config");
    expect_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:12\","
               "\"size\":1},\"layers\":[]}",
               NULL, BARGE_ERR_INVALID, "sha256:12");
    expect_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\","
               "\"size\":-1},\"layers\":[]}",
               NULL, BARGE_ERR_INVALID, "size");
    expect_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\","
               "\"size\":1}}",
               NULL, BARGE_ERR_INVALID, "layers");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" BARGE_MT_OCI_INDEX "\",\"manifests\":"
               "[{\"mediaType\":\"application/octet-stream\",\"digest\":\"" D1 "\",\"size\":1}]}",
               NULL, BARGE_ERR_INVALID, "not a manifest");
    /* Duplicate keys could make two readers see two different manifests. */
    expect_bad("{\"schemaVersion\":2,\"schemaVersion\":2}", NULL, BARGE_ERR_INVALID, "JSON");
}

/* --- lifecycle --- */

static const char *const tags_prod1[] = {"prod-1"};
static const char *const tags_prod2[] = {"prod-2", "stable"};
static const char *const tags_dev[] = {"dev-7"};

static void policy(const char *text, struct barge_lifecycle_policy *p)
{
    struct barge_error *err = NULL;
    if (barge_lifecycle_parse(text, p, &err) < 0)
        fail_msg("policy rejected: %s", err->message);
}

static void test_lifecycle_count(void **state)
{
    struct barge_lifecycle_policy p;
    policy("{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\","
           "\"countType\":\"imageCountMoreThan\",\"countNumber\":2},"
           "\"action\":{\"type\":\"expire\"}}]}",
           &p);
    struct barge_lifecycle_image imgs[] = {
        {.pushed_at = 100}, {.pushed_at = 400}, {.pushed_at = 200}, {.pushed_at = 300}};
    barge_lifecycle_evaluate(&p, imgs, 4, 1000);
    assert_true(imgs[0].expire);  /* oldest */
    assert_false(imgs[1].expire); /* newest */
    assert_true(imgs[2].expire);
    assert_false(imgs[3].expire);
    barge_lifecycle_release(&p);
}

static void test_lifecycle_since_pushed_and_claims(void **state)
{
    struct barge_lifecycle_policy p;
    /* Rule 1 keeps the newest prod image and claims every prod image; rule 2
     * expires untagged images older than 1 day; rule 3 would expire anything
     * older than 3 days, but cannot touch what rule 1 claimed. */
    policy("{\"rules\":["
           "{\"rulePriority\":30,\"selection\":{\"tagStatus\":\"any\",\"countType\":"
           "\"sinceImagePushed\",\"countUnit\":\"days\",\"countNumber\":3},"
           "\"action\":{\"type\":\"expire\"}},"
           "{\"rulePriority\":1,\"description\":\"prod\",\"selection\":{\"tagStatus\":\"tagged\","
           "\"tagPrefixList\":[\"prod\"],\"countType\":\"imageCountMoreThan\",\"countNumber\":5},"
           "\"action\":{\"type\":\"expire\"}},"
           "{\"rulePriority\":2,\"selection\":{\"tagStatus\":\"untagged\",\"countType\":"
           "\"sinceImagePushed\",\"countUnit\":\"days\",\"countNumber\":1},"
           "\"action\":{\"type\":\"expire\"}}]}",
           &p);
    assert_int_equal(p.n_rules, 3);
    assert_int_equal(p.rules[0].priority, 1);
    double day = 86400, now = 100 * day;
    struct barge_lifecycle_image imgs[] = {
        {.pushed_at = now - 10 * day, .tags = tags_prod1, .n_tags = 1},
        {.pushed_at = now - 9 * day, .tags = tags_prod2, .n_tags = 2},
        {.pushed_at = now - 2 * day},                                  /* untagged, old */
        {.pushed_at = now - 0.5 * day},                                /* untagged, new */
        {.pushed_at = now - 4 * day, .tags = tags_dev, .n_tags = 1},   /* rule 3 */
        {.pushed_at = now - 2.5 * day, .tags = tags_dev, .n_tags = 1}, /* rule 3, young */
    };
    barge_lifecycle_evaluate(&p, imgs, 6, now);
    assert_false(imgs[0].expire);
    assert_false(imgs[1].expire);
    assert_true(imgs[2].expire);
    assert_false(imgs[3].expire);
    assert_true(imgs[4].expire);
    assert_false(imgs[5].expire);
    barge_lifecycle_release(&p);
}

static void test_lifecycle_patterns_all_must_match(void **state)
{
    struct barge_lifecycle_policy p;
    policy("{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"tagged\","
           "\"tagPatternList\":[\"prod-*\",\"stable\"],\"countType\":\"imageCountMoreThan\","
           "\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}",
           &p);
    static const char *const a[] = {"prod-1", "stable"};
    static const char *const b[] = {"prod-2", "stable"};
    static const char *const c[] = {"prod-3"};
    struct barge_lifecycle_image imgs[] = {
        {.pushed_at = 1, .tags = a, .n_tags = 2},
        {.pushed_at = 2, .tags = b, .n_tags = 2},
        {.pushed_at = 0, .tags = c, .n_tags = 1}, /* lacks "stable": not selected */
    };
    barge_lifecycle_evaluate(&p, imgs, 3, 10);
    assert_true(imgs[0].expire);
    assert_false(imgs[1].expire);
    assert_false(imgs[2].expire);
    barge_lifecycle_release(&p);
}

static void bad_policy(const char *text, const char *needle)
{
    struct barge_lifecycle_policy p;
    struct barge_error *err = NULL;
    assert_int_equal(barge_lifecycle_parse(text, &p, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    if (!strstr(err->message, needle))
        fail_msg("'%s' does not mention '%s'", err->message, needle);
    barge_error_free(err);
}

#define RULE(prio, sel) \
    "{\"rulePriority\":" #prio ",\"selection\":{" sel "},\"action\":{\"type\":\"expire\"}}"

static void test_lifecycle_invalid(void **state)
{
    bad_policy("nope", "not a JSON object");
    bad_policy("{\"rules\":[]}", "non-empty rules");
    bad_policy("{\"rules\":[" RULE(1, "\"tagStatus\":\"tagged\",\"countType\":"
                                      "\"imageCountMoreThan\",\"countNumber\":1") "]}",
               "tagPrefixList or tagPatternList");
    bad_policy("{\"rules\":[" RULE(1,
                                   "\"tagStatus\":\"untagged\",\"tagPrefixList\":[\"a\"],"
                                   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
               "only allowed with tagStatus tagged");
    bad_policy("{\"rules\":[" RULE(1, "\"tagStatus\":\"any\",\"countType\":\"sinceImagePushed\","
                                      "\"countNumber\":1") "]}",
               "countUnit days");
    bad_policy("{\"rules\":[" RULE(1, "\"tagStatus\":\"any\",\"countType\":"
                                      "\"imageCountMoreThan\",\"countUnit\":\"days\","
                                      "\"countNumber\":1") "]}",
               "countUnit is not allowed");
    bad_policy("{\"rules\":[" RULE(1, "\"tagStatus\":\"any\",\"countType\":"
                                      "\"imageCountMoreThan\",\"countNumber\":0") "]}",
               "countNumber");
    bad_policy(
        "{\"rules\":[" RULE(
            1,
            "\"tagStatus\":\"any\",\"countType\":"
            "\"imageCountMoreThan\",\"countNumber\":1") "," RULE(1,
                                                                 "\"tagStatus\":\"untagged\",\"countType\":\"imageCountMoreThan\","
                                                                 "\"countNumber\":1") "]}",
        "unique");
    bad_policy(
        "{\"rules\":[" RULE(
            1,
            "\"tagStatus\":\"any\",\"countType\":"
            "\"imageCountMoreThan\",\"countNumber\":1") "," RULE(2,
                                                                 "\"tagStatus\":\"untagged\",\"countType\":\"imageCountMoreThan\","
                                                                 "\"countNumber\":1") "]}",
        "highest rulePriority");
    bad_policy("{\"rules\":[" RULE(1, "\"tagStatus\":\"tagged\",\"tagPatternList\":"
                                      "[\"*a*b*c*d*e\"],\"countType\":\"imageCountMoreThan\","
                                      "\"countNumber\":1") "]}",
               "more than 4 wildcards");
}

/* --- blob store --- */

static char root[64];

static int bs_setup(void **state)
{
    strcpy(root, "/tmp/barge-blobs-XXXXXX");
    assert_non_null(mkdtemp(root));
    struct barge_blobstore *bs = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_blobstore_open(root, &bs, &err), 0);
    *state = bs;
    return 0;
}

static int bs_teardown(void **state)
{
    barge_blobstore_close(*state);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static size_t count_files(const char *sub)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "find '%s/%s' -type f | wc -l", root, sub);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    unsigned long n = 0;
    assert_int_equal(fscanf(f, "%lu", &n), 1);
    pclose(f);
    return n;
}

static struct barge_upload *start(struct barge_blobstore *bs, const char *repo)
{
    char id[37];
    struct barge_upload *up = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_blobstore_upload_new(bs, repo, id, &err), 0);
    assert_int_equal(barge_blobstore_upload_get(bs, id, repo, &up, &err), 1);
    return up;
}

static void test_upload_commit(void **state)
{
    struct barge_blobstore *bs = *state;
    struct barge_error *err = NULL;
    struct barge_upload *up = start(bs, "app");
    assert_int_equal(barge_upload_write(up, "a", 1, &err), 0);
    assert_int_equal(barge_upload_write(up, "bc", 2, &err), 0);
    assert_int_equal(barge_upload_size(up), 3);
    uint64_t size = 0;
    assert_int_equal(barge_blobstore_stat(bs, ABC_SHA256, &size, &err), 0);
    assert_int_equal(barge_blobstore_upload_commit(bs, up, ABC_SHA256, &err), 0);
    barge_blobstore_upload_put(bs, up);
    assert_int_equal(barge_blobstore_stat(bs, ABC_SHA256, &size, &err), 1);
    assert_int_equal(size, 3);
    int fd = -1;
    assert_int_equal(barge_blobstore_open_blob(bs, ABC_SHA256, &fd, &size, &err), 1);
    char buf[8] = {0};
    assert_int_equal(read(fd, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "abc");
    close(fd);
    assert_int_equal(count_files("uploads"), 0);
    assert_int_equal(barge_blobstore_uploads_count(bs), 0);
}

static void test_upload_wrong_digest_leaves_nothing(void **state)
{
    struct barge_blobstore *bs = *state;
    struct barge_error *err = NULL;
    struct barge_upload *up = start(bs, "app");
    assert_int_equal(barge_upload_write(up, "abd", 3, &err), 0);
    assert_int_equal(barge_blobstore_upload_commit(bs, up, ABC_SHA256, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    assert_non_null(strstr(err->message, ABC_SHA256));
    barge_error_free(err);
    err = NULL;
    barge_blobstore_upload_put(bs, up);
    uint64_t size;
    assert_int_equal(barge_blobstore_stat(bs, ABC_SHA256, &size, &err), 0);
    assert_int_equal(count_files("uploads"), 0);
    assert_int_equal(count_files("blobs"), 0);
}

static void test_upload_exclusive_cancel_and_expire(void **state)
{
    struct barge_blobstore *bs = *state;
    struct barge_error *err = NULL;
    char id[37];
    struct barge_upload *up = NULL, *again = NULL;
    assert_int_equal(barge_blobstore_upload_new(bs, "app", id, &err), 0);
    /* another repository does not see it */
    assert_int_equal(barge_blobstore_upload_get(bs, id, "other", &again, &err), 0);
    assert_int_equal(barge_blobstore_upload_get(bs, id, "app", &up, &err), 1);
    assert_int_equal(barge_blobstore_upload_get(bs, id, "app", &again, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_CONFLICT);
    barge_error_free(err);
    err = NULL;
    assert_int_equal(barge_upload_write(up, "xyz", 3, &err), 0);
    /* a held upload is never expired */
    assert_int_equal(barge_blobstore_uploads_expire(bs, 0), 0);
    barge_blobstore_upload_put(bs, up);
    assert_int_equal(count_files("uploads"), 1);
    assert_int_equal(barge_blobstore_uploads_expire(bs, 3600 * 1000), 0);
    assert_int_equal(barge_blobstore_uploads_expire(bs, 0), 1);
    assert_int_equal(count_files("uploads"), 0);
    assert_int_equal(barge_blobstore_upload_get(bs, id, "app", &up, &err), 0);

    up = start(bs, "app");
    assert_int_equal(barge_upload_write(up, "abc", 3, &err), 0);
    barge_blobstore_upload_cancel(bs, up);
    barge_blobstore_upload_put(bs, up);
    assert_int_equal(barge_blobstore_uploads_count(bs), 0);
    assert_int_equal(count_files("uploads"), 0);
    assert_int_equal(count_files("blobs"), 0);
}

static bool keep_abc(const char *digest, void *ud)
{
    return strcmp(digest, ABC_SHA256) == 0;
}

static void test_sweep(void **state)
{
    struct barge_blobstore *bs = *state;
    struct barge_error *err = NULL;
    struct barge_upload *up = start(bs, "app");
    assert_int_equal(barge_upload_write(up, "abc", 3, &err), 0);
    assert_int_equal(barge_blobstore_upload_commit(bs, up, ABC_SHA256, &err), 0);
    barge_blobstore_upload_put(bs, up);
    up = start(bs, "app");
    assert_int_equal(barge_blobstore_upload_commit(bs, up, EMPTY_SHA256, &err), 0);
    barge_blobstore_upload_put(bs, up);
    assert_int_equal(count_files("blobs"), 2);

    struct barge_blobstore_sweep_stats st;
    /* within the grace period nothing goes */
    assert_int_equal(barge_blobstore_sweep(bs, time(NULL) - 60, keep_abc, NULL, &st, &err), 0);
    assert_int_equal(st.removed, 0);
    assert_int_equal(st.kept, 2);
    /* past it, only the unmarked blob goes */
    assert_int_equal(barge_blobstore_sweep(bs, time(NULL) + 60, keep_abc, NULL, &st, &err), 0);
    assert_int_equal(st.removed, 1);
    assert_int_equal(st.kept, 1);
    uint64_t size;
    assert_int_equal(barge_blobstore_stat(bs, EMPTY_SHA256, &size, &err), 0);
    assert_int_equal(barge_blobstore_stat(bs, ABC_SHA256, &size, &err), 1);
}

static void test_leftover_uploads_removed_on_open(void **state)
{
    struct barge_blobstore *bs = *state;
    struct barge_error *err = NULL;
    struct barge_upload *up = start(bs, "app");
    assert_int_equal(barge_upload_write(up, "ab", 2, &err), 0);
    barge_blobstore_upload_put(bs, up);
    barge_blobstore_close(bs);
    assert_int_equal(count_files("uploads"), 1);
    assert_int_equal(barge_blobstore_open(root, &bs, &err), 0);
    *state = bs;
    assert_int_equal(count_files("uploads"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_check),
        cmocka_unit_test(test_digest_of_and_matches),
        cmocka_unit_test(test_names_and_tags),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_content_range),
        cmocka_unit_test(test_manifest_docker),
        cmocka_unit_test(test_manifest_oci_inferred_and_subject),
        cmocka_unit_test(test_manifest_index),
        cmocka_unit_test(test_manifest_invalid),
        cmocka_unit_test(test_lifecycle_count),
        cmocka_unit_test(test_lifecycle_since_pushed_and_claims),
        cmocka_unit_test(test_lifecycle_patterns_all_must_match),
        cmocka_unit_test(test_lifecycle_invalid),
        cmocka_unit_test_setup_teardown(test_upload_commit, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(test_upload_wrong_digest_leaves_nothing, bs_setup,
                                        bs_teardown),
        cmocka_unit_test_setup_teardown(test_upload_exclusive_cancel_and_expire, bs_setup,
                                        bs_teardown),
        cmocka_unit_test_setup_teardown(test_sweep, bs_setup, bs_teardown),
        cmocka_unit_test_setup_teardown(test_leftover_uploads_removed_on_open, bs_setup,
                                        bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
