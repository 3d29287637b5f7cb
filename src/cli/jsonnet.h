/* The Jsonnet bridge: evaluates .jsonnet (and .json) files with libjsonnet,
 * with ecspresso's external variables (--ext-str / --ext-code) and the
 * template functions exported as native functions, so that
 * std.native('env')('TAG', 'latest') and std.native('must_env')('TAG') work
 * in any file barge reads. */
#ifndef BARGE_CLI_JSONNET_H
#define BARGE_CLI_JSONNET_H

#include <jansson.h>

#include "cli/template.h"

struct barge_cli_jsonnet {
    const json_t *ext_str;  /* {name: string value}; may be NULL */
    const json_t *ext_code; /* {name: Jsonnet code}; may be NULL */
    /* Functions whose native_arity > 0 become std.native(name) functions
     * taking that many arguments (strings; numbers and booleans are
     * formatted, null is nil) and returning a string. May be NULL. */
    const struct barge_cli_funcs *funcs;
};

/* Evaluates the file at path (imports relative to it) and returns the JSON
 * text in *out (the caller frees). Errors carry libjsonnet's message. */
int barge_cli_jsonnet_eval_file(const struct barge_cli_jsonnet *j, const char *path, char **out,
                                struct barge_error **err);
/* The same for text read elsewhere; filename names it in messages and
 * anchors relative imports. */
int barge_cli_jsonnet_eval_snippet(const struct barge_cli_jsonnet *j, const char *filename,
                                   const char *text, char **out, struct barge_error **err);

#endif
