/* The Jsonnet bridge behind jsonnet.h. One VM per evaluation: a VM is cheap,
 * and a fresh one cannot leak ext vars or natives between files. */
#include "cli/jsonnet.h"

#include <libjsonnet.h>
#include <string.h>

struct native {
    struct JsonnetVm *vm;
    const struct barge_cli_funcs *funcs;
    const char *name;
    int arity;
};

static struct JsonnetJsonValue *native_call(void *ctx, const struct JsonnetJsonValue *const *argv,
                                            int *success)
{
    struct native *n = ctx;
    struct barge_cli_tv args[8] = {{0}};
    for (int i = 0; i < n->arity; i++) {
        const char *s = jsonnet_json_extract_string(n->vm, argv[i]);
        double d;
        int b;
        if (s)
            args[i] = barge_cli_tv_str(s);
        else if (jsonnet_json_extract_number(n->vm, argv[i], &d))
            args[i] = d == (long long)d
                          ? (struct barge_cli_tv){.kind = BARGE_CLI_TV_INT, .i = (long long)d}
                          : (struct barge_cli_tv){.kind = BARGE_CLI_TV_FLOAT, .f = d};
        else if ((b = jsonnet_json_extract_bool(n->vm, argv[i])) != 2)
            args[i] = (struct barge_cli_tv){.kind = BARGE_CLI_TV_BOOL, .b = b != 0};
    }
    struct barge_cli_tv out = {0};
    _cleanup_error_ struct barge_error *err = NULL;
    int rc = barge_cli_funcs_call(n->funcs, n->name, args, (size_t)n->arity, &out, &err);
    for (int i = 0; i < n->arity; i++)
        barge_cli_tv_release(&args[i]);
    if (rc < 0) {
        *success = 0;
        return jsonnet_json_make_string(n->vm, err->message);
    }
    _cleanup_free_ char *s = barge_cli_tv_format(&out);
    barge_cli_tv_release(&out);
    *success = 1;
    return jsonnet_json_make_string(n->vm, s);
}

static int evaluate(const struct barge_cli_jsonnet *j, const char *path, const char *text,
                    char **out, struct barge_error **err)
{
    static const char *const pnames[][9] = {
        {NULL},
        {"a", NULL},
        {"a", "b", NULL},
        {"a", "b", "c", NULL},
        {"a", "b", "c", "d", NULL},
        {"a", "b", "c", "d", "e", NULL},
        {"a", "b", "c", "d", "e", "f", NULL},
        {"a", "b", "c", "d", "e", "f", "g", NULL},
        {"a", "b", "c", "d", "e", "f", "g", "h", NULL},
    };
    *out = NULL;
    struct JsonnetVm *vm = jsonnet_make();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j->ext_str, k, v)
    {
        jsonnet_ext_var(vm, k, json_string_value(v) ? json_string_value(v) : "");
    }
    json_object_foreach((json_t *)j->ext_code, k, v)
    {
        jsonnet_ext_code(vm, k, json_string_value(v) ? json_string_value(v) : "null");
    }
    size_t nf = j->funcs ? barge_cli_funcs_count(j->funcs) : 0;
    struct native *natives = barge_xcalloc(nf ? nf : 1, sizeof(*natives));
    for (size_t i = 0; i < nf; i++) {
        struct barge_cli_func_info fi = barge_cli_funcs_at(j->funcs, i);
        if (fi.native_arity <= 0 || fi.native_arity > 8)
            continue;
        natives[i] = (struct native){vm, j->funcs, fi.name, fi.native_arity};
        jsonnet_native_callback(vm, fi.name, native_call, &natives[i], pnames[fi.native_arity]);
    }
    int error = 0;
    char *res = text ? jsonnet_evaluate_snippet(vm, path, text, &error)
                     : jsonnet_evaluate_file(vm, path, &error);
    int rc = 0;
    if (error) {
        size_t n = res ? strlen(res) : 0;
        while (n > 0 && (res[n - 1] == '\n' || res[n - 1] == ' '))
            n--;
        rc = barge_error_set(err, BARGE_ERR_INVALID, "jsonnet: %.*s", (int)n, res ? res : "");
    } else {
        *out = barge_xstrdup(res ? res : "");
    }
    if (res)
        jsonnet_realloc(vm, res, 0);
    jsonnet_destroy(vm);
    free(natives);
    return rc;
}

int barge_cli_jsonnet_eval_file(const struct barge_cli_jsonnet *j, const char *path, char **out,
                                struct barge_error **err)
{
    return evaluate(j, path, NULL, out, err);
}

int barge_cli_jsonnet_eval_snippet(const struct barge_cli_jsonnet *j, const char *filename,
                                   const char *text, char **out, struct barge_error **err)
{
    return evaluate(j, filename, text, out, err);
}
