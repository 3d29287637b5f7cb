/* The CLI's template engine (ecspresso's Go-template subset), Go-style
 * formatting, terraform state look-ups, durations and version constraints. */
#include <string.h>

/* cmocka needs these before it; keep clang-format from sorting it first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
// clang-format on

#include "cli/cli.h"
#include "cli/template.h"
#include "common/json.h"

static struct barge_cli_funcs *funcs(void)
{
    struct barge_cli_funcs *f = barge_cli_funcs_new();
    barge_cli_funcs_add_defaults(f);
    return f;
}

static char *render(const char *text)
{
    struct barge_cli_funcs *f = funcs();
    char *out = NULL;
    struct barge_error *err = NULL;
    if (barge_cli_template_render(text, "t.yml", f, &out, &err) < 0)
        fail_msg("render of '%s' failed: %s", text, err->message);
    barge_cli_funcs_free(f);
    return out;
}

static void expect(const char *text, const char *want)
{
    char *got = render(text);
    if (strcmp(got, want) != 0)
        fail_msg("'%s' rendered '%s', want '%s'", text, got, want);
    free(got);
}

static void expect_error(const char *text, const char *needle)
{
    struct barge_cli_funcs *f = funcs();
    char *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_template_render(text, "t.yml", f, &out, &err), -1);
    assert_null(out);
    if (!strstr(err->message, needle))
        fail_msg("'%s' not in '%s'", needle, err->message);
    barge_error_free(err);
    barge_cli_funcs_free(f);
}

static void test_env_functions(void **state)
{
    setenv("BARGE_T_TAG", "v1.2", 1);
    setenv("BARGE_T_EMPTY", "", 1);
    unsetenv("BARGE_T_UNSET");
    expect("image: app:{{ must_env `BARGE_T_TAG` }}", "image: app:v1.2");
    expect("{{ must_env \"BARGE_T_TAG\" }}", "v1.2");
    expect("{{ env `BARGE_T_UNSET` `latest` }}", "latest");
    expect("{{ env `BARGE_T_EMPTY` `dflt` }}", "dflt"); /* empty counts as unset */
    expect("{{ env `BARGE_T_UNSET` }}", "");
    expect("{{ must_env `BARGE_T_EMPTY` }}", ""); /* set but empty is fine */
    expect_error("x\n{{ must_env `BARGE_T_UNSET` }}",
                 "template: t.yml:2: error calling must_env: environment variable "
                 "'BARGE_T_UNSET' is not defined");
}

static void test_pipelines_and_calls(void **state)
{
    setenv("BARGE_T_JSON", "{\"a\": \"<b>\"}\n", 1);
    expect("{{ env `BARGE_T_JSON` | json_escape }}", "{\\\"a\\\": \\\"\\u003cb\\u003e\\\"}\\n");
    expect("{{ printf `%s-%d` (env `BARGE_T_UNSET` `x`) 3 }}", "x-3");
    expect("{{ `a` | printf `%s/%s` `b` }}", "b/a");
    expect("{{ printf \"%q %v %t\" `s` 1.5 true }}", "\"s\" 1.5 true");
    expect("{{ printf `%d` `str` }}", "%!d(string=str)");
    expect("{{ print 1 2 `a` `b` }}", "1 2ab");
    expect("{{ len `four` }}", "4");
    expect("{{ \"tab\\there\\u00e9\" }}", "tab\there\xc3\xa9");
}

static void test_control_flow(void **state)
{
    setenv("BARGE_T_ON", "1", 1);
    unsetenv("BARGE_T_OFF");
    expect("{{ if env `BARGE_T_ON` }}yes{{ else }}no{{ end }}", "yes");
    expect("{{ if (env `BARGE_T_OFF` ``) }}yes{{ else }}no{{ end }}", "no");
    expect("{{ if eq (env `BARGE_T_ON`) `2` }}a{{ else if eq (env `BARGE_T_ON`) `1` }}b{{ else "
           "}}c{{ end }}",
           "b");
    expect("{{ if and (env `BARGE_T_ON`) (not (env `BARGE_T_OFF`)) }}both{{ end }}", "both");
    expect("{{ or (env `BARGE_T_OFF`) `fallback` }}", "fallback");
    /* Untaken branches are not evaluated. */
    expect("{{ if false }}{{ must_env `BARGE_T_OFF` }}{{ end }}ok", "ok");
    expect("{{ and false (must_env `BARGE_T_OFF`) }}", "false");
    expect("{{ with env `BARGE_T_ON` }}got {{ . }}{{ else }}none{{ end }}", "got 1");
    expect("{{ $x := env `BARGE_T_ON` }}{{ $x }}{{ $x = `2` }}{{ $x }}", "12");
    expect("{{ if lt 1 2 }}lt{{ end }}{{ if ge `b` `a` }} ge{{ end }}", "lt ge");
}

static void test_syntax(void **state)
{
    expect("a  {{- `b` -}}  c", "abc");
    expect("a {{/* a comment */}}b", "a b");
    expect("a\n  {{- /* trimmed */ -}}\n  b", "ab");
    expect("no actions at all", "no actions at all");
    expect("{{ 42 }} {{ -1 }} {{ 0x10 }} {{ 1e3 }}", "42 -1 16 1000");
    expect_error("{{ nosuch `x` }}", "function \"nosuch\" not defined");
    /* Functions are checked even where they would not run. */
    expect_error("{{ if false }}{{ nosuch }}{{ end }}", "function \"nosuch\" not defined");
    expect_error("{{ env `X`", "unclosed action");
    expect_error("{{ if true }}x", "missing {{ end }}");
    expect_error("{{ end }}", "unexpected {{ end }}");
    expect_error("{{ env `X` `Y` `Z` }}", "wrong number of args for env");
    expect_error("{{ \"unterminated }}", "unterminated quoted string");
    expect_error("{{ range `x` }}{{ end }}", "not supported");
    expect_error("{{ `a` | `b` }}", "can't give argument to non-function");
}

static void test_go_sprintf(void **state)
{
    struct barge_cli_tv args[] = {barge_cli_tv_str("web"), {.kind = BARGE_CLI_TV_INT, .i = 7}};
    char *s = barge_cli_go_sprintf("aws_subnet.x['%s'].id %03d %%", args, 2);
    assert_string_equal(s, "aws_subnet.x['web'].id 007 %");
    free(s);
    s = barge_cli_go_sprintf("%s %s", args, 1);
    assert_string_equal(s, "web %!s(MISSING)");
    free(s);
    s = barge_cli_go_sprintf("%s", args, 2);
    assert_string_equal(s, "web%!(EXTRA int=7)");
    free(s);
    barge_cli_tv_release(&args[0]);
}

static const char *state_json =
    "{\"version\": 4, \"outputs\": {\"vpc\": {\"value\": \"vpc-1\"},"
    " \"ids\": {\"value\": [\"a\", \"b\"]}},"
    "\"resources\": ["
    "{\"mode\": \"managed\", \"type\": \"aws_vpc\", \"name\": \"main\", \"instances\": "
    "  [{\"attributes\": {\"id\": \"vpc-123\", \"tags\": {\"Name\": \"main\"}, \"cidrs\": [\"10.0.0.0/16\"]}}]},"
    "{\"mode\": \"data\", \"type\": \"aws_subnet\", \"name\": \"s\", \"each\": \"map\", \"instances\": "
    "  [{\"index_key\": \"a\", \"attributes\": {\"id\": \"subnet-a\"}},"
    "   {\"index_key\": \"b\", \"attributes\": {\"id\": \"subnet-b\"}}]},"
    "{\"module\": \"module.app\", \"mode\": \"managed\", \"type\": \"aws_lb\", \"name\": \"this\","
    "  \"instances\": [{\"index_key\": 0, \"attributes\": {\"arn\": \"arn:lb\", \"port\": 443}}]}"
    "]}";

static void lookup(const json_t *st, const char *addr, const char *want)
{
    char *out = NULL;
    struct barge_error *err = NULL;
    if (barge_cli_tfstate_lookup(st, addr, &out, &err) < 0)
        fail_msg("%s: %s", addr, err->message);
    assert_string_equal(out, want);
    free(out);
}

static void test_tfstate(void **state)
{
    json_t *st = json_loads(state_json, 0, NULL);
    assert_non_null(st);
    lookup(st, "aws_vpc.main.id", "vpc-123");
    lookup(st, "aws_vpc.main.tags.Name", "main");
    lookup(st, "aws_vpc.main.cidrs[0]", "10.0.0.0/16");
    lookup(st, "aws_vpc.main.tags", "{\"Name\":\"main\"}");
    lookup(st, "data.aws_subnet.s['b'].id", "subnet-b");
    lookup(st, "data.aws_subnet.s[\"a\"].id", "subnet-a");
    lookup(st, "module.app.aws_lb.this[0].arn", "arn:lb");
    lookup(st, "module.app.aws_lb.this[0].port", "443");
    lookup(st, "output.vpc", "vpc-1");
    lookup(st, "output.ids[1]", "b");
    char *out = NULL;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_tfstate_lookup(st, "aws_vpc.other.id", &out, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_NOT_FOUND);
    barge_error_free(err);
    err = NULL;
    /* A keyed resource needs its key. */
    assert_int_equal(barge_cli_tfstate_lookup(st, "data.aws_subnet.s.id", &out, &err), -1);
    barge_error_free(err);
    err = NULL;
    assert_int_equal(barge_cli_tfstate_lookup(st, "aws_vpc", &out, &err), -1);
    assert_int_equal(err->code, BARGE_ERR_INVALID);
    barge_error_free(err);
    json_decref(st);
}

static void test_duration_and_version(void **state)
{
    double s;
    struct barge_error *err = NULL;
    assert_int_equal(barge_cli_parse_duration("10m", &s, &err), 0);
    assert_true(s == 600);
    assert_int_equal(barge_cli_parse_duration("1h30m15s", &s, &err), 0);
    assert_true(s == 5415);
    assert_int_equal(barge_cli_parse_duration("1.5s", &s, &err), 0);
    assert_true(s == 1.5);
    assert_int_equal(barge_cli_parse_duration("300ms", &s, &err), 0);
    assert_true(s > 0.299 && s < 0.301);
    assert_int_equal(barge_cli_parse_duration("10m0s", &s, &err), 0);
    assert_true(s == 600);
    assert_int_equal(barge_cli_parse_duration("10", &s, &err), -1);
    barge_error_free(err);
    err = NULL;
    assert_int_equal(barge_cli_parse_duration("fast", &s, &err), -1);
    barge_error_free(err);
    err = NULL;

    assert_int_equal(barge_cli_version_check(">= 2.0.0, < 3", "2.3.0", &err), 1);
    assert_int_equal(barge_cli_version_check(">= 2.4.0", "2.3.0", &err), 0);
    assert_int_equal(barge_cli_version_check("~> 2.3", "2.9.1", &err), 1);
    assert_int_equal(barge_cli_version_check("~> 2.3", "3.0.0", &err), 0);
    assert_int_equal(barge_cli_version_check("~> 2.3.1", "2.3.5", &err), 1);
    assert_int_equal(barge_cli_version_check("~> 2.3.1", "2.4.0", &err), 0);
    assert_int_equal(barge_cli_version_check("v2.3.0", "2.3.0", &err), 1);
    assert_int_equal(barge_cli_version_check("!= 2.3.0", "2.3.0", &err), 0);
    assert_int_equal(barge_cli_version_check("> 2.3.0-rc1", "2.3.0", &err), 1);
    assert_int_equal(barge_cli_version_check("lots", "2.3.0", &err), -1);
    assert_non_null(strstr(err->message, "required_version has invalid format"));
    barge_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_functions),        cmocka_unit_test(test_pipelines_and_calls),
        cmocka_unit_test(test_control_flow),         cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_go_sprintf),           cmocka_unit_test(test_tfstate),
        cmocka_unit_test(test_duration_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
