/* Unit tests of the registry client's pure parts: which scheme and endpoint a
 * registry gets, WWW-Authenticate parsing, and how registry errors are
 * worded. The network side is covered by tests/e2e/test_image_pull.py. */
#include <string.h>

/* cmocka.h needs these three before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "image/internal.h"

static void check_url(const struct barge_image_pull_opts *opts, const char *domain,
                      const char *want)
{
    struct reg_client c;
    reg_client_init(&c, opts, "img", domain, "ns/app");
    assert_string_equal(c.base_url, want);
    reg_client_release(&c);
}

static void test_endpoints(void **state)
{
    struct barge_image_pull_opts none = {.cache_dir = "/nonexistent"};
    check_url(&none, "docker.io", "https://registry-1.docker.io/v2/ns/app/");
    check_url(&none, "registry.example.com:5000", "https://registry.example.com:5000/v2/ns/app/");
    /* loopback is plain HTTP, as with Docker */
    check_url(&none, "localhost:5000", "http://localhost:5000/v2/ns/app/");
    check_url(&none, "localhost", "http://localhost/v2/ns/app/");
    check_url(&none, "127.0.0.1:35000", "http://127.0.0.1:35000/v2/ns/app/");
    check_url(&none, "127.1.2.3", "http://127.1.2.3/v2/ns/app/");
    check_url(&none, "[::1]:5000", "http://[::1]:5000/v2/ns/app/");
    check_url(&none, "localhost.example.com", "https://localhost.example.com/v2/ns/app/");
    check_url(&none, "127.example.com", "https://127.example.com/v2/ns/app/");
    check_url(&none, "1270.example.com", "https://1270.example.com/v2/ns/app/");

    const char *insecure[] = {"reg.internal:5000", "plain.internal"};
    struct barge_image_pull_opts some = {
        .cache_dir = "/nonexistent", .insecure_registries = insecure, .n_insecure_registries = 2};
    check_url(&some, "reg.internal:5000", "http://reg.internal:5000/v2/ns/app/");
    check_url(&some, "reg.internal:6000", "https://reg.internal:6000/v2/ns/app/");
    check_url(&some, "plain.internal:6000", "http://plain.internal:6000/v2/ns/app/");
    check_url(&some, "other.internal", "https://other.internal/v2/ns/app/");
}

static void test_challenge(void **state)
{
    char *scheme, *realm, *service, *scope;
    reg_parse_challenge("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker."
                        "io\",scope=\"repository:library/busybox:pull\"",
                        &scheme, &realm, &service, &scope);
    assert_string_equal(scheme, "Bearer");
    assert_string_equal(realm, "https://auth.docker.io/token");
    assert_string_equal(service, "registry.docker.io");
    assert_string_equal(scope, "repository:library/busybox:pull");
    free(scheme), free(realm), free(service), free(scope);

    /* unquoted values, spaces, escapes, unknown keys, no scope */
    reg_parse_challenge("Bearer  error=\"insufficient_scope\", realm=http://h/t?x=1 , "
                        "service=\"a \\\"b\\\"\"",
                        &scheme, &realm, &service, &scope);
    assert_string_equal(scheme, "Bearer");
    assert_string_equal(realm, "http://h/t?x=1");
    assert_string_equal(service, "a \"b\"");
    assert_null(scope);
    free(scheme), free(realm), free(service), free(scope);

    reg_parse_challenge("Basic realm=\"Registry Realm\"", &scheme, &realm, &service, &scope);
    assert_string_equal(scheme, "Basic");
    assert_string_equal(realm, "Registry Realm");
    assert_null(service);
    free(scheme), free(realm), free(service), free(scope);

    reg_parse_challenge("Bearer realm=\"unterminated", &scheme, &realm, &service, &scope);
    assert_string_equal(realm, "unterminated");
    free(scheme), free(realm), free(service), free(scope);
}

static void test_answer(void **state)
{
    char body[] = "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"requested access to the "
                  "resource is denied\"},{\"code\":\"X\",\"message\":\"y\"}]}";
    struct reg_response r = {.status = 403, .body = {body, strlen(body), 0}};
    char *a = reg_answer(&r);
    assert_string_equal(a, "registry answered 403: DENIED: requested access to the resource is "
                           "denied; X: y");
    free(a);

    char text[] = "Service Unavailable\nmore lines";
    r = (struct reg_response){.status = 503, .body = {text, strlen(text), 0}};
    a = reg_answer(&r);
    assert_string_equal(a, "registry answered 503: Service Unavailable");
    free(a);

    r = (struct reg_response){.status = 404};
    a = reg_answer(&r);
    assert_string_equal(a, "registry answered 404: no details");
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_challenge),
        cmocka_unit_test(test_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
