/* The template engine behind template.h: a lexer that splits text from
 * actions (handling trim markers and comments), a recursive-descent parser
 * into a small tree, and an evaluator over a function table. Function names
 * are checked at parse time, as Go does, so a typo fails even in an untaken
 * branch; values are only computed on the taken path. */
#include "cli/template.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>

/* ---- values ---- */

void barge_cli_tv_release(struct barge_cli_tv *v)
{
    if (v->kind == BARGE_CLI_TV_STR)
        free(v->s);
    memset(v, 0, sizeof(*v));
}

struct barge_cli_tv barge_cli_tv_str(const char *s)
{
    return (struct barge_cli_tv){.kind = BARGE_CLI_TV_STR, .s = barge_xstrdup(s ? s : "")};
}

struct barge_cli_tv barge_cli_tv_str_take(char *s)
{
    return (struct barge_cli_tv){.kind = BARGE_CLI_TV_STR, .s = s ? s : barge_xstrdup("")};
}

static struct barge_cli_tv tv_copy(const struct barge_cli_tv *v)
{
    struct barge_cli_tv c = *v;
    if (v->kind == BARGE_CLI_TV_STR)
        c.s = barge_xstrdup(v->s);
    return c;
}

static char *fmt_float(double f)
{
    char buf[400];
    double a = fabs(f);
    /* Go's %v: the shortest form that reads back the same, in plain
     * notation unless the exponent is below -4 or at least 21. */
    if (f != 0 && (a < 1e-4 || a >= 1e21)) {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof(buf), "%.*e", prec - 1, f);
            if (strtod(buf, NULL) == f)
                break;
        }
        return barge_xstrdup(buf);
    }
    for (int dec = 0; dec <= 20; dec++) {
        snprintf(buf, sizeof(buf), "%.*f", dec, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    return barge_xstrdup(buf);
}

char *barge_cli_tv_format(const struct barge_cli_tv *v)
{
    switch (v->kind) {
    case BARGE_CLI_TV_STR:
        return barge_xstrdup(v->s);
    case BARGE_CLI_TV_BOOL:
        return barge_xstrdup(v->b ? "true" : "false");
    case BARGE_CLI_TV_INT:
        return barge_xasprintf("%lld", v->i);
    case BARGE_CLI_TV_FLOAT:
        return fmt_float(v->f);
    case BARGE_CLI_TV_NIL:
        break;
    }
    return barge_xstrdup("<no value>");
}

static bool truth(const struct barge_cli_tv *v)
{
    switch (v->kind) {
    case BARGE_CLI_TV_STR:
        return v->s[0] != '\0';
    case BARGE_CLI_TV_BOOL:
        return v->b;
    case BARGE_CLI_TV_INT:
        return v->i != 0;
    case BARGE_CLI_TV_FLOAT:
        return v->f != 0;
    case BARGE_CLI_TV_NIL:
        break;
    }
    return false;
}

static const char *kind_name(enum barge_cli_tv_kind k)
{
    static const char *names[] = {"nil", "string", "bool", "int", "float64"};
    return names[k];
}

/* ---- function table ---- */

struct func {
    char *name;
    barge_cli_tmpl_fn fn;
    void *ud;
    int min_args, max_args, native_arity;
};

struct barge_cli_funcs {
    struct func *v;
    size_t n;
};

void barge_cli_funcs_add(struct barge_cli_funcs *f, const char *name, barge_cli_tmpl_fn fn,
                         void *ud, int min_args, int max_args, int native_arity)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->v[i].name, name) == 0) {
            f->v[i].fn = fn;
            f->v[i].ud = ud;
            f->v[i].min_args = min_args;
            f->v[i].max_args = max_args;
            f->v[i].native_arity = native_arity;
            return;
        }
    }
    f->v = barge_xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
    f->v[f->n++] = (struct func){barge_xstrdup(name), fn, ud, min_args, max_args, native_arity};
}

static const struct func *func_find(const struct barge_cli_funcs *f, const char *name)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(f->v[i].name, name) == 0)
            return &f->v[i];
    return NULL;
}

bool barge_cli_funcs_has(const struct barge_cli_funcs *f, const char *name)
{
    return func_find(f, name) != NULL;
}

size_t barge_cli_funcs_count(const struct barge_cli_funcs *f)
{
    return f->n;
}

struct barge_cli_func_info barge_cli_funcs_at(const struct barge_cli_funcs *f, size_t i)
{
    return (struct barge_cli_func_info){f->v[i].name, f->v[i].native_arity};
}

void barge_cli_funcs_free(struct barge_cli_funcs *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].name);
    free(f->v);
    free(f);
}

static int call_func(const struct func *fn, const struct barge_cli_tv *args, size_t n,
                     struct barge_cli_tv *out, struct barge_error **err)
{
    if ((int)n < fn->min_args || (fn->max_args >= 0 && (int)n > fn->max_args)) {
        if (fn->min_args == fn->max_args)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "wrong number of args for %s: want %d got %zu", fn->name,
                                   fn->min_args, n);
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "wrong number of args for %s: want at least %d got %zu", fn->name,
                               fn->min_args, n);
    }
    memset(out, 0, sizeof(*out));
    if (fn->fn(fn->ud, args, n, out, err) < 0)
        return barge_error_wrap(err, "error calling %s", fn->name);
    return 0;
}

int barge_cli_funcs_call(const struct barge_cli_funcs *f, const char *name,
                         const struct barge_cli_tv *args, size_t n, struct barge_cli_tv *out,
                         struct barge_error **err)
{
    const struct func *fn = func_find(f, name);
    if (!fn)
        return barge_error_set(err, BARGE_ERR_INVALID, "function \"%s\" not defined", name);
    return call_func(fn, args, n, out, err);
}

/* ---- Go formatting ---- */

static void quote_into(FILE *o, const char *s)
{
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", o);
            break;
        case '\\':
            fputs("\\\\", o);
            break;
        case '\n':
            fputs("\\n", o);
            break;
        case '\t':
            fputs("\\t", o);
            break;
        case '\r':
            fputs("\\r", o);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(o, "\\x%02x", *p);
            else
                fputc(*p, o);
        }
    }
    fputc('"', o);
}

char *barge_cli_go_sprintf(const char *fmt, const struct barge_cli_tv *args, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    size_t ai = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            fputc(*p, o);
            continue;
        }
        const char *start = p++;
        while (*p && strchr("+-# 0", *p))
            p++;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p))
                p++;
        }
        if (!*p) {
            fputs("%!(NOVERB)", o);
            break;
        }
        char verb = *p;
        if (verb == '%') {
            fputc('%', o);
            continue;
        }
        if (ai >= n) {
            fprintf(o, "%%!%c(MISSING)", verb);
            continue;
        }
        const struct barge_cli_tv *a = &args[ai++];
        /* The C format for this directive, with the same flags and width. */
        char spec[32];
        size_t sl = (size_t)(p - start);
        if (sl > 20)
            sl = 20;
        memcpy(spec, start, sl);
        spec[sl] = '\0';
        char cfmt[40];
        switch (verb) {
        case 'v':
        case 's': {
            if (verb == 's' && a->kind != BARGE_CLI_TV_STR) {
                _cleanup_free_ char *s = barge_cli_tv_format(a);
                fprintf(o, "%%!s(%s=%s)", kind_name(a->kind), s);
                break;
            }
            _cleanup_free_ char *s = barge_cli_tv_format(a);
            snprintf(cfmt, sizeof(cfmt), "%ss", spec);
            fprintf(o, cfmt, s);
            break;
        }
        case 'q':
            if (a->kind == BARGE_CLI_TV_STR) {
                quote_into(o, a->s);
            } else {
                _cleanup_free_ char *s = barge_cli_tv_format(a);
                fprintf(o, "%%!q(%s=%s)", kind_name(a->kind), s);
            }
            break;
        case 't':
            if (a->kind == BARGE_CLI_TV_BOOL)
                fputs(a->b ? "true" : "false", o);
            else {
                _cleanup_free_ char *s = barge_cli_tv_format(a);
                fprintf(o, "%%!t(%s=%s)", kind_name(a->kind), s);
            }
            break;
        case 'd':
        case 'x':
        case 'X':
        case 'o':
            if (a->kind == BARGE_CLI_TV_INT) {
                snprintf(cfmt, sizeof(cfmt), "%sll%c", spec, verb);
                fprintf(o, cfmt, a->i);
            } else if (a->kind == BARGE_CLI_TV_STR && verb != 'd' && verb != 'o') {
                for (const unsigned char *q = (const unsigned char *)a->s; *q; q++)
                    fprintf(o, verb == 'x' ? "%02x" : "%02X", *q);
            } else {
                _cleanup_free_ char *s = barge_cli_tv_format(a);
                fprintf(o, "%%!%c(%s=%s)", verb, kind_name(a->kind), s);
            }
            break;
        case 'f':
        case 'F':
        case 'e':
        case 'g':
            if (a->kind == BARGE_CLI_TV_FLOAT || a->kind == BARGE_CLI_TV_INT) {
                snprintf(cfmt, sizeof(cfmt), "%s%c", spec, verb == 'F' ? 'f' : verb);
                fprintf(o, cfmt, a->kind == BARGE_CLI_TV_INT ? (double)a->i : a->f);
            } else {
                _cleanup_free_ char *s = barge_cli_tv_format(a);
                fprintf(o, "%%!%c(%s=%s)", verb, kind_name(a->kind), s);
            }
            break;
        default: {
            _cleanup_free_ char *s = barge_cli_tv_format(a);
            fprintf(o, "%%!%c(%s=%s)", verb, kind_name(a->kind), s);
        }
        }
    }
    if (ai < n) {
        fputs("%!(EXTRA ", o);
        for (size_t i = ai; i < n; i++) {
            _cleanup_free_ char *s = barge_cli_tv_format(&args[i]);
            fprintf(o, "%s%s=%s", i > ai ? ", " : "", kind_name(args[i].kind), s);
        }
        fputc(')', o);
    }
    fclose(o);
    return buf;
}

/* ---- builtins ---- */

static int cmp_values(const struct barge_cli_tv *a, const struct barge_cli_tv *b, int *out,
                      struct barge_error **err)
{
    bool an = a->kind == BARGE_CLI_TV_INT || a->kind == BARGE_CLI_TV_FLOAT;
    bool bn = b->kind == BARGE_CLI_TV_INT || b->kind == BARGE_CLI_TV_FLOAT;
    if (an && bn) {
        double x = a->kind == BARGE_CLI_TV_INT ? (double)a->i : a->f;
        double y = b->kind == BARGE_CLI_TV_INT ? (double)b->i : b->f;
        if (a->kind == BARGE_CLI_TV_INT && b->kind == BARGE_CLI_TV_INT)
            *out = a->i < b->i ? -1 : a->i > b->i;
        else
            *out = x < y ? -1 : x > y;
        return 0;
    }
    if (a->kind != b->kind)
        return barge_error_set(err, BARGE_ERR_INVALID, "incompatible types for comparison");
    switch (a->kind) {
    case BARGE_CLI_TV_STR:
        *out = strcmp(a->s, b->s);
        *out = *out < 0 ? -1 : *out > 0;
        return 0;
    case BARGE_CLI_TV_BOOL:
        *out = a->b == b->b ? 0 : 2; /* equal or not; bools have no order */
        return 0;
    default:
        *out = 0;
        return 0;
    }
}

static int fn_eq(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                 struct barge_error **err)
{
    bool eq = false;
    for (size_t i = 1; i < n && !eq; i++) {
        int c;
        if (cmp_values(&a[0], &a[i], &c, err) < 0)
            return -1;
        eq = c == 0;
    }
    *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_BOOL, .b = eq};
    return 0;
}

static int fn_ne(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                 struct barge_error **err)
{
    int c;
    if (cmp_values(&a[0], &a[1], &c, err) < 0)
        return -1;
    *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_BOOL, .b = c != 0};
    return 0;
}

static int ordered(const struct barge_cli_tv *a, int *c, struct barge_error **err)
{
    if (cmp_values(&a[0], &a[1], c, err) < 0)
        return -1;
    if (*c == 2 || a[0].kind == BARGE_CLI_TV_BOOL || a[0].kind == BARGE_CLI_TV_NIL)
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid type for comparison");
    return 0;
}

#define ORDER_FN(name, expr)                                                                    \
    static int name(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out, \
                    struct barge_error **err)                                                   \
    {                                                                                           \
        int c;                                                                                  \
        if (ordered(a, &c, err) < 0)                                                            \
            return -1;                                                                          \
        *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_BOOL, .b = (expr)};                   \
        return 0;                                                                               \
    }
ORDER_FN(fn_lt, c < 0)
ORDER_FN(fn_le, c <= 0)
ORDER_FN(fn_gt, c > 0)
ORDER_FN(fn_ge, c >= 0)

static int fn_not(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                  struct barge_error **err)
{
    *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_BOOL, .b = !truth(&a[0])};
    return 0;
}

static int fn_len(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                  struct barge_error **err)
{
    if (a[0].kind != BARGE_CLI_TV_STR)
        return barge_error_set(err, BARGE_ERR_INVALID, "len of type %s", kind_name(a[0].kind));
    *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_INT, .i = (long long)strlen(a[0].s)};
    return 0;
}

static int fn_print(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                    struct barge_error **err)
{
    bool ln = ud != NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    for (size_t i = 0; i < n; i++) {
        /* Sprint puts a space between operands when neither is a string;
         * Sprintln always does. */
        if (i > 0 && (ln || (a[i - 1].kind != BARGE_CLI_TV_STR && a[i].kind != BARGE_CLI_TV_STR)))
            fputc(' ', o);
        _cleanup_free_ char *s = barge_cli_tv_format(&a[i]);
        fputs(s, o);
    }
    if (ln)
        fputc('\n', o);
    fclose(o);
    *out = barge_cli_tv_str_take(buf);
    return 0;
}

static int fn_printf(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                     struct barge_error **err)
{
    if (a[0].kind != BARGE_CLI_TV_STR)
        return barge_error_set(err, BARGE_ERR_INVALID, "printf format is not a string");
    *out = barge_cli_tv_str_take(barge_cli_go_sprintf(a[0].s, a + 1, n - 1));
    return 0;
}

/* and/or are evaluated lazily by the evaluator; these are never called. */
static int fn_lazy(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                   struct barge_error **err)
{
    return barge_error_set(err, BARGE_ERR_INTERNAL, "lazy builtin called directly");
}

struct barge_cli_funcs *barge_cli_funcs_new(void)
{
    struct barge_cli_funcs *f = barge_xcalloc(1, sizeof(*f));
    barge_cli_funcs_add(f, "and", fn_lazy, NULL, 1, -1, 0);
    barge_cli_funcs_add(f, "or", fn_lazy, NULL, 1, -1, 0);
    barge_cli_funcs_add(f, "not", fn_not, NULL, 1, 1, 0);
    barge_cli_funcs_add(f, "eq", fn_eq, NULL, 2, -1, 0);
    barge_cli_funcs_add(f, "ne", fn_ne, NULL, 2, 2, 0);
    barge_cli_funcs_add(f, "lt", fn_lt, NULL, 2, 2, 0);
    barge_cli_funcs_add(f, "le", fn_le, NULL, 2, 2, 0);
    barge_cli_funcs_add(f, "gt", fn_gt, NULL, 2, 2, 0);
    barge_cli_funcs_add(f, "ge", fn_ge, NULL, 2, 2, 0);
    barge_cli_funcs_add(f, "len", fn_len, NULL, 1, 1, 0);
    barge_cli_funcs_add(f, "print", fn_print, NULL, 0, -1, 0);
    barge_cli_funcs_add(f, "println", fn_print, (void *)1, 0, -1, 0);
    barge_cli_funcs_add(f, "printf", fn_printf, NULL, 1, -1, 0);
    return f;
}

/* ---- default functions (go-config's) ---- */

static int fn_env(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                  struct barge_error **err)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].kind != BARGE_CLI_TV_STR)
            return barge_error_set(err, BARGE_ERR_INVALID, "env takes strings");
    const char *v = getenv(a[0].s);
    if (!v || !*v)
        v = n > 1 ? a[1].s : "";
    *out = barge_cli_tv_str(v);
    return 0;
}

static int fn_must_env(void *ud, const struct barge_cli_tv *a, size_t n, struct barge_cli_tv *out,
                       struct barge_error **err)
{
    if (a[0].kind != BARGE_CLI_TV_STR)
        return barge_error_set(err, BARGE_ERR_INVALID, "must_env takes a string");
    const char *v = getenv(a[0].s);
    if (!v)
        return barge_error_set(err, BARGE_ERR_INVALID, "environment variable '%s' is not defined",
                               a[0].s);
    *out = barge_cli_tv_str(v);
    return 0;
}

static int fn_json_escape(void *ud, const struct barge_cli_tv *a, size_t n,
                          struct barge_cli_tv *out, struct barge_error **err)
{
    _cleanup_free_ char *s = barge_cli_tv_format(&a[0]);
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    /* What Go's json.Marshal writes between the quotes, HTML escaping
     * included, so that output matches ecspresso's byte for byte. */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", o);
            break;
        case '\\':
            fputs("\\\\", o);
            break;
        case '\n':
            fputs("\\n", o);
            break;
        case '\r':
            fputs("\\r", o);
            break;
        case '\t':
            fputs("\\t", o);
            break;
        case '<':
        case '>':
        case '&':
            fprintf(o, "\\u%04x", *p);
            break;
        default:
            if (*p < 0x20)
                fprintf(o, "\\u%04x", *p);
            else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
                fprintf(o, "\\u20%s", p[2] == 0xa8 ? "28" : "29");
                p += 2;
            } else
                fputc(*p, o);
        }
    }
    fclose(o);
    *out = barge_cli_tv_str_take(buf);
    return 0;
}

void barge_cli_funcs_add_defaults(struct barge_cli_funcs *f)
{
    barge_cli_funcs_add(f, "env", fn_env, NULL, 1, 2, 2);
    barge_cli_funcs_add(f, "must_env", fn_must_env, NULL, 1, 1, 1);
    barge_cli_funcs_add(f, "json_escape", fn_json_escape, NULL, 1, 1, 1);
}

/* ---- lexer ---- */

enum tok_kind {
    T_EOF,
    T_TEXT,
    T_LEFT,
    T_RIGHT,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_VAR,
    T_DOT,
    T_LPAREN,
    T_RPAREN,
    T_PIPE,
    T_DECLARE,
    T_ASSIGN,
};

struct tok {
    enum tok_kind kind;
    char *text; /* TEXT: the text; STRING: the unquoted value; others: the lexeme */
    int line;
};

struct lexer {
    const char *name;
    const char *src;
    size_t pos;
    int line;
    struct tok *toks;
    size_t n, cap;
    bool trim_next; /* the previous action ended with " -}}" */
};

static void push(struct lexer *lx, enum tok_kind k, char *text, int line)
{
    if (lx->n == lx->cap) {
        lx->cap = lx->cap ? lx->cap * 2 : 64;
        lx->toks = barge_xrealloc(lx->toks, lx->cap * sizeof(*lx->toks));
    }
    lx->toks[lx->n++] = (struct tok){k, text, line};
}

static int count_lines(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += s[i] == '\n';
    return c;
}

static int lex_error(struct lexer *lx, int line, struct barge_error **err, const char *what)
{
    return barge_error_set(err, BARGE_ERR_INVALID, "template: %s:%d: %s", lx->name, line, what);
}

/* Decodes a Go double-quoted string starting after the quote; returns the
 * value or NULL when malformed. Advances *pp past the closing quote. */
static char *unquote(const char **pp)
{
    const char *p = *pp;
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    for (;;) {
        char c = *p++;
        if (!c || c == '\n') {
            fclose(o);
            free(buf);
            return NULL;
        }
        if (c == '"')
            break;
        if (c != '\\') {
            fputc(c, o);
            continue;
        }
        c = *p++;
        switch (c) {
        case 'n':
            fputc('\n', o);
            break;
        case 't':
            fputc('\t', o);
            break;
        case 'r':
            fputc('\r', o);
            break;
        case 'a':
            fputc('\a', o);
            break;
        case 'b':
            fputc('\b', o);
            break;
        case 'f':
            fputc('\f', o);
            break;
        case 'v':
            fputc('\v', o);
            break;
        case '\\':
        case '"':
        case '\'':
            fputc(c, o);
            break;
        case 'x': {
            char hex[3] = {p[0], p[0] ? p[1] : 0, 0};
            if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1])) {
                fclose(o);
                free(buf);
                return NULL;
            }
            fputc((int)strtol(hex, NULL, 16), o);
            p += 2;
            break;
        }
        case 'u':
        case 'U': {
            int nd = c == 'u' ? 4 : 8;
            unsigned long cp = 0;
            for (int i = 0; i < nd; i++) {
                if (!isxdigit((unsigned char)p[i])) {
                    fclose(o);
                    free(buf);
                    return NULL;
                }
                char h[2] = {p[i], 0};
                cp = cp * 16 + (unsigned long)strtol(h, NULL, 16);
            }
            p += nd;
            /* UTF-8 encode */
            if (cp < 0x80) {
                fputc((int)cp, o);
            } else if (cp < 0x800) {
                fputc((int)(0xc0 | (cp >> 6)), o);
                fputc((int)(0x80 | (cp & 0x3f)), o);
            } else if (cp < 0x10000) {
                fputc((int)(0xe0 | (cp >> 12)), o);
                fputc((int)(0x80 | ((cp >> 6) & 0x3f)), o);
                fputc((int)(0x80 | (cp & 0x3f)), o);
            } else {
                fputc((int)(0xf0 | (cp >> 18)), o);
                fputc((int)(0x80 | ((cp >> 12) & 0x3f)), o);
                fputc((int)(0x80 | ((cp >> 6) & 0x3f)), o);
                fputc((int)(0x80 | (cp & 0x3f)), o);
            }
            break;
        }
        default:
            fclose(o);
            free(buf);
            return NULL;
        }
    }
    fclose(o);
    *pp = p;
    return buf;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Lexes the inside of one action, from just after "{{" (and its trim
 * marker). */
static int lex_action(struct lexer *lx, struct barge_error **err)
{
    const char *s = lx->src;
    for (;;) {
        while (is_space(s[lx->pos])) {
            if (s[lx->pos] == '\n')
                lx->line++;
            /* " -}}" closes with a trim marker. */
            if (s[lx->pos + 1] == '-' && s[lx->pos + 2] == '}' && s[lx->pos + 3] == '}') {
                lx->pos += 4;
                lx->trim_next = true;
                push(lx, T_RIGHT, NULL, lx->line);
                return 0;
            }
            lx->pos++;
        }
        const char *p = s + lx->pos;
        int line = lx->line;
        if (!*p)
            return lex_error(lx, line, err, "unclosed action");
        if (p[0] == '}' && p[1] == '}') {
            lx->pos += 2;
            push(lx, T_RIGHT, NULL, line);
            return 0;
        }
        if (*p == '"') {
            const char *q = p + 1;
            char *v = unquote(&q);
            if (!v)
                return lex_error(lx, line, err, "unterminated quoted string");
            push(lx, T_STRING, v, line);
            lx->pos = (size_t)(q - s);
            continue;
        }
        if (*p == '`') {
            const char *end = strchr(p + 1, '`');
            if (!end)
                return lex_error(lx, line, err, "unterminated raw quoted string");
            push(lx, T_STRING, barge_xstrndup(p + 1, (size_t)(end - p - 1)), line);
            lx->line += count_lines(p, (size_t)(end - p));
            lx->pos = (size_t)(end + 1 - s);
            continue;
        }
        if (*p == '(' || *p == ')' || *p == '|') {
            push(lx, *p == '(' ? T_LPAREN : *p == ')' ? T_RPAREN : T_PIPE, NULL, line);
            lx->pos++;
            continue;
        }
        if (p[0] == ':' && p[1] == '=') {
            push(lx, T_DECLARE, NULL, line);
            lx->pos += 2;
            continue;
        }
        if (*p == '=') {
            push(lx, T_ASSIGN, NULL, line);
            lx->pos++;
            continue;
        }
        if (*p == '$') {
            size_t n = 1;
            while (isalnum((unsigned char)p[n]) || p[n] == '_')
                n++;
            push(lx, T_VAR, barge_xstrndup(p, n), line);
            lx->pos += n;
            continue;
        }
        if (*p == '.' && !isdigit((unsigned char)p[1])) {
            if (isalpha((unsigned char)p[1]))
                return lex_error(lx, line, err, "fields (.Name) are not supported");
            push(lx, T_DOT, NULL, line);
            lx->pos++;
            continue;
        }
        if (isdigit((unsigned char)*p) || ((*p == '-' || *p == '+' || *p == '.') &&
                                           (isdigit((unsigned char)p[1]) || p[1] == '.'))) {
            size_t n = 1;
            while (isalnum((unsigned char)p[n]) || p[n] == '.' || p[n] == '_' ||
                   ((p[n] == '-' || p[n] == '+') && (p[n - 1] == 'e' || p[n - 1] == 'E')))
                n++;
            push(lx, T_NUMBER, barge_xstrndup(p, n), line);
            lx->pos += n;
            continue;
        }
        if (isalpha((unsigned char)*p) || *p == '_') {
            size_t n = 1;
            while (isalnum((unsigned char)p[n]) || p[n] == '_')
                n++;
            push(lx, T_IDENT, barge_xstrndup(p, n), line);
            lx->pos += n;
            continue;
        }
        char what[64];
        snprintf(what, sizeof(what), "unexpected '%c' in action", *p);
        return lex_error(lx, line, err, what);
    }
}

static void push_text(struct lexer *lx, const char *start, size_t n, int line, bool trim_right)
{
    if (lx->trim_next) {
        while (n > 0 && is_space(*start)) {
            start++;
            n--;
        }
        lx->trim_next = false;
    }
    if (trim_right)
        while (n > 0 && is_space(start[n - 1]))
            n--;
    if (n > 0)
        push(lx, T_TEXT, barge_xstrndup(start, n), line);
}

static int lex(struct lexer *lx, struct barge_error **err)
{
    const char *s = lx->src;
    for (;;) {
        const char *p = s + lx->pos;
        const char *open = strstr(p, "{{");
        if (!open) {
            push_text(lx, p, strlen(p), lx->line, false);
            push(lx, T_EOF, NULL, lx->line);
            return 0;
        }
        bool trim_left = open[2] == '-' && is_space(open[3]);
        push_text(lx, p, (size_t)(open - p), lx->line, trim_left);
        lx->line += count_lines(p, (size_t)(open - p));
        lx->pos = (size_t)(open - s) + 2 + (trim_left ? 2 : 0);
        /* A comment is the whole action: the braces hold nothing but a
         * C-style comment, with optional trim markers. */
        const char *q = s + lx->pos;
        if (q[0] == '/' && q[1] == '*') {
            const char *end = strstr(q + 2, "*/");
            if (!end)
                return lex_error(lx, lx->line, err, "unclosed comment");
            lx->line += count_lines(q, (size_t)(end - q));
            const char *after = end + 2;
            if (after[0] == ' ' && after[1] == '-' && after[2] == '}' && after[3] == '}') {
                lx->trim_next = true;
                after += 4;
            } else if (after[0] == '}' && after[1] == '}') {
                after += 2;
            } else {
                return lex_error(lx, lx->line, err, "comment ends before closing delimiter");
            }
            lx->pos = (size_t)(after - s);
            continue;
        }
        push(lx, T_LEFT, NULL, lx->line);
        if (lex_action(lx, err) < 0)
            return -1;
    }
}

/* ---- parser ---- */

struct pipe;

enum arg_kind { A_STR, A_INT, A_FLOAT, A_BOOL, A_NIL, A_FUNC, A_VAR, A_PIPE, A_DOT };

struct arg {
    enum arg_kind kind;
    char *s; /* STR value, FUNC or VAR name (borrowed from the token) */
    long long i;
    double f;
    bool b;
    struct pipe *pipe;
};

struct cmd {
    struct arg *args;
    size_t n;
};

struct pipe {
    const char *decl; /* "$x" for "$x := ..." or "$x = ..." */
    bool declare;
    struct cmd *cmds;
    size_t n;
    int line;
};

enum node_kind { N_TEXT, N_ACTION, N_IF, N_WITH };

struct node;

struct list {
    struct node **v;
    size_t n;
};

struct node {
    enum node_kind kind;
    const char *text;
    struct pipe *pipe;
    struct list then_, else_;
    int line;
};

struct parser {
    struct lexer *lx;
    size_t i;
    const struct barge_cli_funcs *funcs;
    const char *name;
};

static void pipe_free(struct pipe *p);

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct node *nd = l->v[i];
        pipe_free(nd->pipe);
        list_free(&nd->then_);
        list_free(&nd->else_);
        free(nd);
    }
    free(l->v);
}

static void pipe_free(struct pipe *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        for (size_t j = 0; j < p->cmds[i].n; j++)
            pipe_free(p->cmds[i].args[j].pipe);
        free(p->cmds[i].args);
    }
    free(p->cmds);
    free(p);
}

static void list_add(struct list *l, struct node *nd)
{
    l->v = barge_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = nd;
}

static struct tok *peek(struct parser *ps)
{
    return &ps->lx->toks[ps->i];
}

static struct tok *next(struct parser *ps)
{
    struct tok *t = &ps->lx->toks[ps->i];
    if (t->kind != T_EOF)
        ps->i++;
    return t;
}

static int perr(struct parser *ps, int line, struct barge_error **err, const char *fmt, ...)
    BARGE_PRINTF(4, 5);
static int perr(struct parser *ps, int line, struct barge_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *m = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set(err, BARGE_ERR_INVALID, "template: %s:%d: %s", ps->name, line, m);
}

static struct pipe *parse_pipe(struct parser *ps, enum tok_kind end, struct barge_error **err);

static int parse_operand(struct parser *ps, struct arg *a, struct barge_error **err)
{
    struct tok *t = next(ps);
    memset(a, 0, sizeof(*a));
    switch (t->kind) {
    case T_STRING:
        a->kind = A_STR;
        a->s = t->text;
        return 0;
    case T_NUMBER: {
        char *end;
        errno = 0;
        long long v = strtoll(t->text, &end, 0);
        if (!*end && errno == 0) {
            a->kind = A_INT;
            a->i = v;
            return 0;
        }
        double d = strtod(t->text, &end);
        if (*end)
            return perr(ps, t->line, err, "bad number syntax: \"%s\"", t->text);
        a->kind = A_FLOAT;
        a->f = d;
        return 0;
    }
    case T_IDENT:
        if (strcmp(t->text, "true") == 0 || strcmp(t->text, "false") == 0) {
            a->kind = A_BOOL;
            a->b = t->text[0] == 't';
            return 0;
        }
        if (strcmp(t->text, "nil") == 0) {
            a->kind = A_NIL;
            return 0;
        }
        if (!barge_cli_funcs_has(ps->funcs, t->text))
            return perr(ps, t->line, err, "function \"%s\" not defined", t->text);
        a->kind = A_FUNC;
        a->s = t->text;
        return 0;
    case T_VAR:
        a->kind = A_VAR;
        a->s = t->text;
        return 0;
    case T_DOT:
        a->kind = A_DOT;
        return 0;
    case T_LPAREN:
        a->kind = A_PIPE;
        a->pipe = parse_pipe(ps, T_RPAREN, err);
        return a->pipe ? 0 : -1;
    default:
        return perr(ps, t->line, err, "unexpected %s in operand",
                    t->kind == T_RIGHT    ? "\"}}\""
                    : t->kind == T_RPAREN ? "\")\""
                    : t->kind == T_PIPE   ? "\"|\""
                                          : "token");
    }
}

/* Parses a pipeline up to (and consuming) the end token: T_RIGHT for an
 * action, T_RPAREN for a parenthesised one. */
static struct pipe *parse_pipe(struct parser *ps, enum tok_kind end, struct barge_error **err)
{
    struct pipe *p = barge_xcalloc(1, sizeof(*p));
    p->line = peek(ps)->line;
    if (peek(ps)->kind == T_VAR &&
        (ps->lx->toks[ps->i + 1].kind == T_DECLARE || ps->lx->toks[ps->i + 1].kind == T_ASSIGN)) {
        p->decl = next(ps)->text;
        p->declare = next(ps)->kind == T_DECLARE;
    }
    for (;;) {
        struct cmd c = {0};
        while (peek(ps)->kind != T_PIPE && peek(ps)->kind != end) {
            if (peek(ps)->kind == T_EOF || peek(ps)->kind == T_RIGHT ||
                (peek(ps)->kind == T_RPAREN && end != T_RPAREN)) {
                perr(ps, peek(ps)->line, err, "unexpected %s",
                     peek(ps)->kind == T_RPAREN ? "\")\"" : "end of action");
                free(c.args);
                pipe_free(p);
                return NULL;
            }
            c.args = barge_xrealloc(c.args, (c.n + 1) * sizeof(*c.args));
            if (parse_operand(ps, &c.args[c.n], err) < 0) {
                free(c.args);
                pipe_free(p);
                return NULL;
            }
            c.n++;
        }
        if (c.n == 0) {
            perr(ps, peek(ps)->line, err, "missing value for command");
            pipe_free(p);
            return NULL;
        }
        p->cmds = barge_xrealloc(p->cmds, (p->n + 1) * sizeof(*p->cmds));
        p->cmds[p->n++] = c;
        if (next(ps)->kind == end)
            return p;
    }
}

static int parse_list(struct parser *ps, struct list *l, const char **stopped_by,
                      struct barge_error **err);

/* After "{{ if" or "{{ with": the pipeline, the body, an optional else
 * (or else-if chain) and the end. */
static struct node *parse_branch(struct parser *ps, enum node_kind kind, int line,
                                 struct barge_error **err)
{
    struct node *nd = barge_xcalloc(1, sizeof(*nd));
    nd->kind = kind;
    nd->line = line;
    nd->pipe = parse_pipe(ps, T_RIGHT, err);
    if (!nd->pipe)
        goto fail;
    const char *stop = NULL;
    if (parse_list(ps, &nd->then_, &stop, err) < 0)
        goto fail;
    if (!stop) {
        perr(ps, line, err, "unexpected EOF: missing {{ end }}");
        goto fail;
    }
    if (strcmp(stop, "else") == 0) {
        if (peek(ps)->kind == T_IDENT &&
            (strcmp(peek(ps)->text, "if") == 0 || strcmp(peek(ps)->text, "with") == 0)) {
            /* "else if" is an if nested in the else branch, sharing our end. */
            struct tok *kw = next(ps);
            struct node *inner =
                parse_branch(ps, kw->text[0] == 'i' ? N_IF : N_WITH, kw->line, err);
            if (!inner)
                goto fail;
            list_add(&nd->else_, inner);
            return nd;
        }
        if (next(ps)->kind != T_RIGHT) {
            perr(ps, line, err, "unexpected token after else");
            goto fail;
        }
        stop = NULL;
        if (parse_list(ps, &nd->else_, &stop, err) < 0)
            goto fail;
        if (!stop || strcmp(stop, "end") != 0) {
            perr(ps, line, err, stop ? "expected end; found else" : "missing {{ end }}");
            goto fail;
        }
    }
    return nd;
fail:
    pipe_free(nd->pipe);
    list_free(&nd->then_);
    list_free(&nd->else_);
    free(nd);
    return NULL;
}

/* Parses nodes until EOF or a "{{ end }}" / "{{ else" (whose keyword is
 * returned in *stopped_by; "end" consumes its "}}", "else" does not). */
static int parse_list(struct parser *ps, struct list *l, const char **stopped_by,
                      struct barge_error **err)
{
    *stopped_by = NULL;
    for (;;) {
        struct tok *t = next(ps);
        if (t->kind == T_EOF)
            return 0;
        if (t->kind == T_TEXT) {
            struct node *nd = barge_xcalloc(1, sizeof(*nd));
            nd->kind = N_TEXT;
            nd->text = t->text;
            list_add(l, nd);
            continue;
        }
        /* T_LEFT */
        struct tok *kw = peek(ps);
        if (kw->kind == T_IDENT) {
            const char *k = kw->text;
            if (strcmp(k, "end") == 0) {
                next(ps);
                if (next(ps)->kind != T_RIGHT)
                    return perr(ps, kw->line, err, "unexpected token after end");
                *stopped_by = "end";
                return 0;
            }
            if (strcmp(k, "else") == 0) {
                next(ps);
                *stopped_by = "else";
                return 0;
            }
            if (strcmp(k, "if") == 0 || strcmp(k, "with") == 0) {
                next(ps);
                struct node *nd = parse_branch(ps, k[0] == 'i' ? N_IF : N_WITH, kw->line, err);
                if (!nd)
                    return -1;
                list_add(l, nd);
                continue;
            }
            if (strcmp(k, "range") == 0 || strcmp(k, "define") == 0 || strcmp(k, "template") == 0 ||
                strcmp(k, "block") == 0 || strcmp(k, "break") == 0 || strcmp(k, "continue") == 0)
                return perr(ps, kw->line, err, "{{ %s }} is not supported", k);
        }
        struct node *nd = barge_xcalloc(1, sizeof(*nd));
        nd->kind = N_ACTION;
        nd->line = kw->line;
        nd->pipe = parse_pipe(ps, T_RIGHT, err);
        if (!nd->pipe) {
            free(nd);
            return -1;
        }
        list_add(l, nd);
    }
}

/* ---- evaluator ---- */

struct var {
    const char *name;
    struct barge_cli_tv value;
};

struct eval {
    const struct barge_cli_funcs *funcs;
    const char *name;
    FILE *out;
    struct var *vars;
    size_t n_vars;
    struct barge_cli_tv dot;
};

static int eval_pipe(struct eval *ev, const struct pipe *p, struct barge_cli_tv *out,
                     struct barge_error **err);

static int eval_arg(struct eval *ev, const struct arg *a, struct barge_cli_tv *out,
                    struct barge_error **err);

static int call_named(struct eval *ev, const char *name, const struct arg *args, size_t n,
                      const struct barge_cli_tv *piped, struct barge_cli_tv *out,
                      struct barge_error **err)
{
    bool is_and = strcmp(name, "and") == 0, is_or = strcmp(name, "or") == 0;
    if (is_and || is_or) {
        size_t total = n + (piped ? 1 : 0);
        if (total == 0)
            return barge_error_set(err, BARGE_ERR_INVALID, "wrong number of args for %s", name);
        /* Returns the first falsy (and) or truthy (or) argument, else the
         * last, evaluating no further than needed. */
        for (size_t i = 0; i < total; i++) {
            struct barge_cli_tv v = {0};
            if (i < n) {
                if (eval_arg(ev, &args[i], &v, err) < 0)
                    return -1;
            } else {
                v = tv_copy(piped);
            }
            if (i == total - 1 || truth(&v) != is_and) {
                *out = v;
                return 0;
            }
            barge_cli_tv_release(&v);
        }
    }
    size_t total = n + (piped ? 1 : 0);
    struct barge_cli_tv *vals = barge_xcalloc(total ? total : 1, sizeof(*vals));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = eval_arg(ev, &args[i], &vals[i], err);
    if (rc == 0 && piped)
        vals[n] = tv_copy(piped);
    if (rc == 0)
        rc = call_func(func_find(ev->funcs, name), vals, total, out, err);
    for (size_t i = 0; i < total; i++)
        barge_cli_tv_release(&vals[i]);
    free(vals);
    return rc;
}

static int eval_arg(struct eval *ev, const struct arg *a, struct barge_cli_tv *out,
                    struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    switch (a->kind) {
    case A_STR:
        *out = barge_cli_tv_str(a->s);
        return 0;
    case A_INT:
        *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_INT, .i = a->i};
        return 0;
    case A_FLOAT:
        *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_FLOAT, .f = a->f};
        return 0;
    case A_BOOL:
        *out = (struct barge_cli_tv){.kind = BARGE_CLI_TV_BOOL, .b = a->b};
        return 0;
    case A_NIL:
        return 0;
    case A_DOT:
        *out = tv_copy(&ev->dot);
        return 0;
    case A_VAR:
        for (size_t i = ev->n_vars; i > 0; i--) {
            if (strcmp(ev->vars[i - 1].name, a->s) == 0) {
                *out = tv_copy(&ev->vars[i - 1].value);
                return 0;
            }
        }
        return barge_error_set(err, BARGE_ERR_INVALID, "undefined variable: %s", a->s);
    case A_FUNC:
        /* A function in argument position is called without arguments. */
        return call_named(ev, a->s, NULL, 0, NULL, out, err);
    case A_PIPE:
        return eval_pipe(ev, a->pipe, out, err);
    }
    return -1;
}

static int eval_pipe(struct eval *ev, const struct pipe *p, struct barge_cli_tv *out,
                     struct barge_error **err)
{
    struct barge_cli_tv cur = {0};
    bool have = false;
    for (size_t i = 0; i < p->n; i++) {
        const struct cmd *c = &p->cmds[i];
        struct barge_cli_tv v = {0};
        int rc;
        if (c->args[0].kind == A_FUNC) {
            rc = call_named(ev, c->args[0].s, c->args + 1, c->n - 1, have ? &cur : NULL, &v, err);
        } else {
            if (c->n > 1 || have)
                rc = barge_error_set(err, BARGE_ERR_INVALID, "can't give argument to non-function");
            else
                rc = eval_arg(ev, &c->args[0], &v, err);
        }
        barge_cli_tv_release(&cur);
        if (rc < 0)
            return -1;
        cur = v;
        have = true;
    }
    if (p->decl) {
        bool found = false;
        if (!p->declare) {
            for (size_t i = ev->n_vars; i > 0 && !found; i--) {
                if (strcmp(ev->vars[i - 1].name, p->decl) == 0) {
                    barge_cli_tv_release(&ev->vars[i - 1].value);
                    ev->vars[i - 1].value = tv_copy(&cur);
                    found = true;
                }
            }
            if (!found) {
                barge_cli_tv_release(&cur);
                return barge_error_set(err, BARGE_ERR_INVALID, "undefined variable: %s", p->decl);
            }
        } else {
            ev->vars = barge_xrealloc(ev->vars, (ev->n_vars + 1) * sizeof(*ev->vars));
            ev->vars[ev->n_vars++] = (struct var){p->decl, tv_copy(&cur)};
        }
    }
    *out = cur;
    return 0;
}

static void pop_vars(struct eval *ev, size_t mark)
{
    while (ev->n_vars > mark)
        barge_cli_tv_release(&ev->vars[--ev->n_vars].value);
}

static int eval_list(struct eval *ev, const struct list *l, struct barge_error **err)
{
    size_t mark = ev->n_vars;
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        const struct node *nd = l->v[i];
        switch (nd->kind) {
        case N_TEXT:
            fputs(nd->text, ev->out);
            break;
        case N_ACTION: {
            struct barge_cli_tv v = {0};
            rc = eval_pipe(ev, nd->pipe, &v, err);
            if (rc < 0)
                barge_error_wrap(err, "template: %s:%d", ev->name, nd->line);
            if (rc == 0 && !nd->pipe->decl) {
                _cleanup_free_ char *s = barge_cli_tv_format(&v);
                fputs(s, ev->out);
            }
            barge_cli_tv_release(&v);
            break;
        }
        case N_IF:
        case N_WITH: {
            size_t inner = ev->n_vars;
            struct barge_cli_tv v = {0};
            rc = eval_pipe(ev, nd->pipe, &v, err);
            if (rc < 0) {
                barge_error_wrap(err, "template: %s:%d", ev->name, nd->line);
                break;
            }
            if (truth(&v)) {
                if (nd->kind == N_WITH) {
                    struct barge_cli_tv saved = ev->dot;
                    ev->dot = v;
                    rc = eval_list(ev, &nd->then_, err);
                    ev->dot = saved;
                } else {
                    rc = eval_list(ev, &nd->then_, err);
                }
            } else {
                rc = eval_list(ev, &nd->else_, err);
            }
            barge_cli_tv_release(&v);
            pop_vars(ev, inner);
            break;
        }
        }
    }
    pop_vars(ev, mark);
    return rc;
}

int barge_cli_template_render(const char *text, const char *name, const struct barge_cli_funcs *f,
                              char **out, struct barge_error **err)
{
    *out = NULL;
    struct lexer lx = {.name = name, .src = text, .line = 1};
    struct parser ps = {.lx = &lx, .funcs = f, .name = name};
    struct list root = {0};
    int rc = lex(&lx, err);
    if (rc == 0) {
        const char *stop = NULL;
        rc = parse_list(&ps, &root, &stop, err);
        if (rc == 0 && stop)
            rc = barge_error_set(err, BARGE_ERR_INVALID, "template: %s: unexpected {{ %s }}", name,
                                 stop);
    }
    if (rc == 0) {
        char *buf = NULL;
        size_t len = 0;
        struct eval ev = {.funcs = f, .name = name, .out = open_memstream(&buf, &len)};
        rc = eval_list(&ev, &root, err);
        fclose(ev.out);
        pop_vars(&ev, 0);
        free(ev.vars);
        if (rc == 0)
            *out = buf;
        else
            free(buf);
    }
    list_free(&root);
    for (size_t i = 0; i < lx.n; i++)
        free(lx.toks[i].text);
    free(lx.toks);
    return rc;
}
