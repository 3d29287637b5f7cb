/* The template engine: the part of Go's text/template that ecspresso users
 * write in their config and definition files, over a table of functions.
 *
 * Syntax: text with {{ actions }}, "{{-" and "-}}" trimming the whitespace
 * next to them, comments as Go writes them (a C-style comment right inside
 * the braces); pipelines "a | b x | c" where the value
 * of each stage is the last argument of the next; parenthesised calls;
 * strings in double quotes (Go escapes) or backticks (raw); numbers, true,
 * false, nil; "$x := pipeline" and "$x" variables; {{ if }} / {{ else if }} /
 * {{ else }} / {{ end }} and {{ with }} (which sets "."). Builtins: and, or
 * (short-circuit), not, eq, ne, lt, le, gt, ge, len, print, printf, println.
 * Untaken branches are not evaluated, so `must_env` inside them is harmless. */
#ifndef BARGE_CLI_TEMPLATE_H
#define BARGE_CLI_TEMPLATE_H

#include "common/error.h"

enum barge_cli_tv_kind {
    BARGE_CLI_TV_NIL = 0,
    BARGE_CLI_TV_STR,
    BARGE_CLI_TV_BOOL,
    BARGE_CLI_TV_INT,
    BARGE_CLI_TV_FLOAT,
};

/* A template value. s is owned by the value (STR only). */
struct barge_cli_tv {
    enum barge_cli_tv_kind kind;
    char *s;
    bool b;
    long long i;
    double f;
};

void barge_cli_tv_release(struct barge_cli_tv *v);
struct barge_cli_tv barge_cli_tv_str(const char *s);
/* Takes ownership of s. */
struct barge_cli_tv barge_cli_tv_str_take(char *s);
/* Formats v as Go's %v does; the caller frees. */
char *barge_cli_tv_format(const struct barge_cli_tv *v);

/* A function: args (borrowed) are the call's arguments, the piped value last.
 * On success fills *out (owned by the caller) and returns 0; on failure fills
 * *err and returns -1. */
typedef int (*barge_cli_tmpl_fn)(void *ud, const struct barge_cli_tv *args, size_t n,
                                 struct barge_cli_tv *out, struct barge_error **err);

struct barge_cli_funcs;

/* A function table with the builtins and nothing else. */
struct barge_cli_funcs *barge_cli_funcs_new(void);
void barge_cli_funcs_free(struct barge_cli_funcs *f);
/* Adds (or replaces) a function. min/max are the argument counts (max -1:
 * any). native_arity > 0 also exports it to Jsonnet as std.native(name) with
 * that many string parameters. name is copied; ud is borrowed. */
void barge_cli_funcs_add(struct barge_cli_funcs *f, const char *name, barge_cli_tmpl_fn fn,
                         void *ud, int min_args, int max_args, int native_arity);
bool barge_cli_funcs_has(const struct barge_cli_funcs *f, const char *name);

/* One exported function, for the Jsonnet bridge. */
struct barge_cli_func_info {
    const char *name;
    int native_arity;
};
size_t barge_cli_funcs_count(const struct barge_cli_funcs *f);
struct barge_cli_func_info barge_cli_funcs_at(const struct barge_cli_funcs *f, size_t i);
/* Calls a function by name with string arguments; *out is owned by the
 * caller. */
int barge_cli_funcs_call(const struct barge_cli_funcs *f, const char *name,
                         const struct barge_cli_tv *args, size_t n, struct barge_cli_tv *out,
                         struct barge_error **err);

/* Renders text (name is used in messages, e.g. the file name). Returns a new
 * string in *out, or -1 with *err ("template: ecspresso.yml:3: ..."). */
int barge_cli_template_render(const char *text, const char *name, const struct barge_cli_funcs *f,
                              char **out, struct barge_error **err);

/* The default functions of every file: env NAME [DEFAULT], must_env NAME,
 * json_escape S. */
void barge_cli_funcs_add_defaults(struct barge_cli_funcs *f);

/* Go-style formatting of %s %v %d %q %t %x %f %% with args; used by printf
 * and tfstatef. The caller frees. Errors like Go's "%!d(string=x)" are
 * written inline, as Go does. */
char *barge_cli_go_sprintf(const char *fmt, const struct barge_cli_tv *args, size_t n);

#endif
