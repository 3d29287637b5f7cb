/* Pull against a real registry, driven from tests/e2e/test_image_pull.py,
 * which starts docker-registry, pushes test images and runs this binary with
 * the environment below. Without BARGE_TEST_REGISTRY it skips, so `make unit`
 * passes on its own.
 *
 *   BARGE_TEST_REGISTRY   host:port of the registry (required)
 *   BARGE_TEST_IMAGE      reference to pull (default <registry>/busybox:latest)
 *   BARGE_TEST_CACHE      cache directory (default: a temporary one, removed)
 *   BARGE_TEST_USERNAME / BARGE_TEST_PASSWORD   credentials
 *   BARGE_TEST_EXPECT_ERROR   the pull must fail with this in its message
 *   BARGE_TEST_THREADS    pull the image this many times at once (default 1)
 *   BARGE_TEST_ARCH / BARGE_TEST_VARIANT   platform to pick from an index
 *   BARGE_TEST_MAX_LAYER_BYTES / BARGE_TEST_MIN_FREE_BYTES   unpacking limits
 *
 * It prints one JSON line to stdout with what was pulled (or the error) and
 * the progress lines of the pull(s), for the Python side to check further. */
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* cmocka.h needs these three before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "common/json.h"
#include "image/image.h"

struct run {
    struct barge_image_pull_opts opts;
    const char *image;
    struct barge_image *img;
    struct barge_error *err;
};

static pthread_mutex_t lines_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *lines;

static void on_progress(void *ud, const char *message)
{
    pthread_mutex_lock(&lines_lock);
    json_array_append_new(lines, json_string(message));
    pthread_mutex_unlock(&lines_lock);
}

static void *pull_thread(void *arg)
{
    struct run *r = arg;
    barge_image_pull(&r->opts, r->image, &r->img, &r->err);
    return NULL;
}

static json_t *describe(const struct barge_image *img)
{
    json_t *layers = json_array();
    for (size_t i = 0; i < img->n_layers; i++)
        json_array_append_new(layers, json_string(img->layers[i]));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:o, s:I}", "reference", img->reference,
                     "registry", img->registry, "repository", img->repository, "digest",
                     img->digest, "manifest_digest", img->manifest_digest, "config_digest",
                     img->config_digest, "config", img->config, "layers", layers, "size",
                     (json_int_t)img->size);
}

static uint64_t env_u64(const char *name)
{
    const char *v = getenv(name);
    return v ? strtoull(v, NULL, 10) : 0;
}

static void test_pull(void **state)
{
    const char *registry = getenv("BARGE_TEST_REGISTRY");
    if (!registry || !*registry)
        skip();
    _cleanup_free_ char *dflt = barge_xasprintf("%s/busybox:latest", registry);
    const char *image = getenv("BARGE_TEST_IMAGE") ? getenv("BARGE_TEST_IMAGE") : dflt;
    const char *expect_error = getenv("BARGE_TEST_EXPECT_ERROR");
    int threads = getenv("BARGE_TEST_THREADS") ? atoi(getenv("BARGE_TEST_THREADS")) : 1;
    if (threads < 1 || threads > 64)
        threads = 1;

    char tmp_cache[] = "/tmp/barge-pull-XXXXXX";
    const char *cache = getenv("BARGE_TEST_CACHE");
    if (!cache) {
        assert_non_null(mkdtemp(tmp_cache));
        cache = tmp_cache;
    }
    lines = json_array();
    struct run *runs = barge_xcalloc((size_t)threads, sizeof(*runs));
    pthread_t *tids = barge_xcalloc((size_t)threads, sizeof(*tids));
    for (int i = 0; i < threads; i++) {
        runs[i].image = image;
        runs[i].opts = (struct barge_image_pull_opts){
            .cache_dir = cache,
            .username = getenv("BARGE_TEST_USERNAME"),
            .password = getenv("BARGE_TEST_PASSWORD"),
            .progress = on_progress,
            .arch = getenv("BARGE_TEST_ARCH"),
            .variant = getenv("BARGE_TEST_VARIANT"),
            .max_attempts = 3,
            .retry_delay_ms = 50,
            .max_layer_bytes = env_u64("BARGE_TEST_MAX_LAYER_BYTES"),
            .min_free_bytes = env_u64("BARGE_TEST_MIN_FREE_BYTES"),
        };
        assert_int_equal(pthread_create(&tids[i], NULL, pull_thread, &runs[i]), 0);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);

    json_t *out = json_object();
    json_object_set_new(out, "progress", lines);
    bool ok = true;
    for (int i = 0; i < threads; i++) {
        if (runs[i].err) {
            json_object_set_new(out, "error", json_string(runs[i].err->message));
            json_object_set_new(out, "code", json_string(barge_errcode_name(runs[i].err->code)));
            if (!expect_error || !strstr(runs[i].err->message, expect_error)) {
                fprintf(stderr, "pull %d of '%s' failed: %s\n", i, image, runs[i].err->message);
                ok = false;
            }
            continue;
        }
        if (expect_error) {
            fprintf(stderr, "pull %d of '%s' succeeded, expected '%s'\n", i, image, expect_error);
            ok = false;
        }
        struct barge_image *img = runs[i].img;
        /* every layer is a directory; every thread saw the same image */
        for (size_t l = 0; l < img->n_layers; l++) {
            struct stat st;
            if (lstat(img->layers[l], &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "layer '%s' is not a directory\n", img->layers[l]);
                ok = false;
            }
        }
        if (!json_is_object(json_object_get(img->config, "config")))
            ok = false;
        if (i > 0 && runs[0].img && strcmp(runs[0].img->manifest_digest, img->manifest_digest))
            ok = false;
        if (i == 0)
            json_object_set_new(out, "image", describe(img));
    }
    char *dump = barge_json_dump(out);
    printf("%s\n", dump);
    fflush(stdout);
    free(dump);
    json_decref(out);
    for (int i = 0; i < threads; i++) {
        barge_image_free(runs[i].img);
        barge_error_free(runs[i].err);
    }
    free(runs);
    free(tids);
    if (cache == tmp_cache)
        assert_int_equal(barge_image_remove_tree(tmp_cache), 0);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
