/* The Jsonnet bridge (ext vars, ext code, native functions, imports) and the
 * YAML reader and writer the CLI uses for configs and compose files. */
#include <sys/stat.h>

#include <string.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
// clang-format on

#include "cli/jsonnet.h"
#include "cli/yaml.h"
#include "common/json.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/barge-jsonnet-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static json_t *eval(const struct barge_cli_jsonnet *j, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *out = NULL;
    struct barge_error *err = NULL;
    if (barge_cli_jsonnet_eval_file(j, path, &out, &err) < 0)
        fail_msg("%s: %s", name, err->message);
    json_t *v = json_loads(out, 0, NULL);
    assert_non_null(v);
    free(out);
    return v;
}

static void test_ext_vars_and_imports(void **state)
{
    write_file("td.jsonnet", "local c = import 'lib/container.libsonnet';\n"
                             "{ family: std.extVar('family'), cpu: std.extVar('cpu') * 256,\n"
                             "  containerDefinitions: [c.container('app')] }");
    char libdir[128];
    snprintf(libdir, sizeof(libdir), "%s/lib", dir);
    mkdir(libdir, 0755);
    write_file("lib/container.libsonnet",
               "{ container(name):: { name: name, image: 'busybox', essential: true } }");
    json_t *es = json_pack("{s:s}", "family", "web");
    json_t *ec = json_pack("{s:s}", "cpu", "1+1");
    struct barge_cli_jsonnet j = {es, ec, NULL};
    json_t *v = eval(&j, "td.jsonnet");
    assert_string_equal(json_string_value(json_object_get(v, "family")), "web");
    assert_int_equal(json_integer_value(json_object_get(v, "cpu")), 512);
    json_t *c = json_array_get(json_object_get(v, "containerDefinitions"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "app");
    json_decref(v);
    json_decref(es);
    json_decref(ec);
}

static void test_natives(void **state)
{
    struct barge_cli_funcs *f = barge_cli_funcs_new();
    barge_cli_funcs_add_defaults(f);
    setenv("BARGE_J_TAG", "v9", 1);
    unsetenv("BARGE_J_NONE");
    write_file("n.jsonnet", "local env = std.native('env'), must = std.native('must_env');\n"
                            "{ tag: must('BARGE_J_TAG'), dflt: env('BARGE_J_NONE', 'x'),\n"
                            "  count: std.parseInt(env('BARGE_J_NONE', '3')) }");
    struct barge_cli_jsonnet j = {NULL, NULL, f};
    json_t *v = eval(&j, "n.jsonnet");
    assert_string_equal(json_string_value(json_object_get(v, "tag")), "v9");
    assert_string_equal(json_string_value(json_object_get(v, "dflt")), "x");
    assert_int_equal(json_integer_value(json_object_get(v, "count")), 3);
    json_decref(v);
    /* A failing native is a Jsonnet error carrying its message. */
    write_file("bad.jsonnet", "{ x: std.native('must_env')('BARGE_J_NONE') }");
    char path[256];
    snprintf(path, sizeof(path), "%s/bad.jsonnet", dir);
    char *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_jsonnet_eval_file(&j, path, &out, &err), -1);
    assert_non_null(strstr(err->message, "BARGE_J_NONE"));
    barge_error_free(err);
    err = NULL;
    /* A syntax error names the file. */
    assert_int_equal(barge_cli_jsonnet_eval_snippet(&j, "s.jsonnet", "{ x: ", &out, &err), -1);
    assert_non_null(strstr(err->message, "s.jsonnet"));
    barge_error_free(err);
    barge_cli_funcs_free(f);
}

static void test_yaml(void **state)
{
    const char *text = "base: &b\n"
                       "  image: busybox\n"
                       "  mem: 64\n"
                       "web:\n"
                       "  <<: *b\n"
                       "  mem: 128\n"
                       "types: [1, -2, 0x10, 0o17, 1.5, .5, true, False, null, ~, '', \"3\", "
                       "yes, 1e3, 8080:80]\n"
                       "empty:\n"
                       "list:\n"
                       "  - a\n"
                       "  - {k: v}\n";
    json_t *v = NULL;
    struct barge_error *err = NULL;
    if (barge_cli_yaml_parse(text, strlen(text), "t.yml", &v, &err) < 0)
        fail_msg("%s", err->message);
    json_t *web = json_object_get(v, "web");
    assert_string_equal(json_string_value(json_object_get(web, "image")), "busybox");
    assert_int_equal(json_integer_value(json_object_get(web, "mem")), 128);
    json_t *t = json_object_get(v, "types");
    assert_int_equal(json_integer_value(json_array_get(t, 0)), 1);
    assert_int_equal(json_integer_value(json_array_get(t, 1)), -2);
    assert_int_equal(json_integer_value(json_array_get(t, 2)), 16);
    assert_int_equal(json_integer_value(json_array_get(t, 3)), 15);
    assert_true(json_real_value(json_array_get(t, 4)) == 1.5);
    assert_true(json_real_value(json_array_get(t, 5)) == 0.5);
    assert_true(json_is_true(json_array_get(t, 6)));
    assert_true(json_is_false(json_array_get(t, 7)));
    assert_true(json_is_null(json_array_get(t, 8)));
    assert_true(json_is_null(json_array_get(t, 9)));
    assert_string_equal(json_string_value(json_array_get(t, 10)), "");
    assert_string_equal(json_string_value(json_array_get(t, 11)), "3");
    assert_string_equal(json_string_value(json_array_get(t, 12)), "yes"); /* YAML 1.2 */
    assert_true(json_real_value(json_array_get(t, 13)) == 1000);
    assert_string_equal(json_string_value(json_array_get(t, 14)), "8080:80");
    assert_true(json_is_null(json_object_get(v, "empty")));

    /* Written back, it reads the same. */
    char *y = barge_cli_yaml_emit(v);
    json_t *back = NULL;
    if (barge_cli_yaml_parse(y, strlen(y), "back.yml", &back, &err) < 0)
        fail_msg("%s\n%s", err->message, y);
    assert_true(json_equal(v, back));
    free(y);
    json_decref(back);
    json_decref(v);

    /* Strings that look like other types are quoted. */
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:i}", "a", "true", "b", "10", "c", "", "d",
                          "plain", "e", 5);
    y = barge_cli_yaml_emit(s);
    assert_string_equal(y, "a: \"true\"\nb: \"10\"\nc: \"\"\nd: plain\ne: 5\n");
    free(y);
    json_decref(s);

    assert_int_equal(barge_cli_yaml_parse("a: [1", 5, "bad.yml", &v, &err), -1);
    assert_non_null(strstr(err->message, "bad.yml:"));
    barge_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ext_vars_and_imports),
        cmocka_unit_test(test_natives),
        cmocka_unit_test(test_yaml),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
