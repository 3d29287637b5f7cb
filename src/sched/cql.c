/* The cluster query language (see cql.h): a recursive-descent parser into a
 * flat array of nodes, and an evaluator over struct barge_sched_instance.
 * The lexer is driven by the parser because what a character means depends
 * on where it stands: '!' is "not" before a predicate and part of an operator
 * after a subject, and '(' groups before a predicate but belongs to the value
 * after =~. Values are checked and converted (numbers, dates, regular
 * expressions) at parse time, so evaluation never fails. */
#include "sched/cql.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

#include "common/isotime.h"

enum subject {
    SUBJ_AGENT_CONNECTED,
    SUBJ_AGENT_VERSION,
    SUBJ_ATTRIBUTE,
    SUBJ_EC2_ID,
    SUBJ_REGISTERED_AT,
    SUBJ_RUNNING_TASKS,
    SUBJ_TASK_GROUP,
};

enum op {
    OP_EQ,
    OP_NE,
    OP_GT,
    OP_GE,
    OP_LT,
    OP_LE,
    OP_EXISTS,
    OP_NOT_EXISTS,
    OP_IN,
    OP_NOT_IN,
    OP_MATCHES,
    OP_NOT_MATCHES,
};

static const struct {
    const char *sym; /* NULL: only the word form exists */
    const char *word;
} op_names[] = {
    [OP_EQ] = {"==", "equals"},       [OP_NE] = {"!=", "not_equals"},
    [OP_GT] = {">", "greater_than"},  [OP_GE] = {">=", "greater_than_equal"},
    [OP_LT] = {"<", "less_than"},     [OP_LE] = {"<=", "less_than_equal"},
    [OP_EXISTS] = {NULL, "exists"},   [OP_NOT_EXISTS] = {"!exists", "not_exists"},
    [OP_IN] = {NULL, "in"},           [OP_NOT_IN] = {"!in", "not_in"},
    [OP_MATCHES] = {"=~", "matches"}, [OP_NOT_MATCHES] = {"!~", "not_matches"},
};

#define BIT(op) (1u << (op))
#define SET_OPS \
    (BIT(OP_EQ) | BIT(OP_NE) | BIT(OP_IN) | BIT(OP_NOT_IN) | BIT(OP_MATCHES) | BIT(OP_NOT_MATCHES))
#define ORDER_OPS (BIT(OP_EQ) | BIT(OP_NE) | BIT(OP_GT) | BIT(OP_GE) | BIT(OP_LT) | BIT(OP_LE))
#define ALL_OPS   (SET_OPS | ORDER_OPS | BIT(OP_EXISTS) | BIT(OP_NOT_EXISTS))

/* The operators ECS documents for each subject (task:group also takes
 * exists: "has any task"). */
static const struct {
    const char *name;
    unsigned ops;
} subjects[] = {
    [SUBJ_AGENT_CONNECTED] = {"agentConnected", SET_OPS},
    [SUBJ_AGENT_VERSION] = {"agentVersion", ORDER_OPS},
    [SUBJ_ATTRIBUTE] = {"attribute:", ALL_OPS},
    [SUBJ_EC2_ID] = {"ec2InstanceId", SET_OPS},
    [SUBJ_REGISTERED_AT] = {"registeredAt", ORDER_OPS},
    [SUBJ_RUNNING_TASKS] = {"runningTasksCount", ORDER_OPS},
    [SUBJ_TASK_GROUP] = {"task:group", SET_OPS | BIT(OP_EXISTS) | BIT(OP_NOT_EXISTS)},
};

struct pred {
    enum subject subj;
    enum op op;
    char *attr;  /* attribute name (SUBJ_ATTRIBUTE) */
    char **vals; /* the argument(s), normalised */
    size_t n_vals;
    regex_t re;
    bool has_re;
    int64_t num; /* runningTasksCount argument */
    double when; /* registeredAt argument */
    bool by_day; /* registeredAt compares whole days */
};

enum kind { N_AND, N_OR, N_NOT, N_PRED };

struct node {
    enum kind kind;
    int a, b; /* children (N_AND, N_OR: both; N_NOT: a) */
    struct pred p;
};

struct barge_cql {
    char *text;
    struct node *nodes;
    size_t n, cap;
    int root;
    bool uses_tasks;
    uint64_t serial;
};

#define MAX_DEPTH 100

struct parser {
    const char *s;
    size_t len, pos;
    struct barge_cql *q;
    struct barge_error **err;
    int depth;
};

static atomic_uint_fast64_t serials;

/* --- errors and small lexing helpers ------------------------------------ */

static int fail(struct parser *p, size_t at, const char *fmt, ...) BARGE_PRINTF(3, 4);

static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(p->err, BARGE_ERR_INVALID, "InvalidParameterException",
                                "%s at position %zu in '%s'", msg, at + 1, p->s);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
        p->pos++;
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("_:.-/@", c));
}

/* Matches a keyword (case-insensitively) that ends at a word boundary and
 * consumes it. */
static bool eat_word(struct parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || strncasecmp(p->s + p->pos, w, n) != 0 ||
        ident_char(p->s[p->pos + n]))
        return false;
    p->pos += n;
    return true;
}

static bool eat_sym(struct parser *p, const char *sym)
{
    size_t n = strlen(sym);
    if (strncmp(p->s + p->pos, sym, n) != 0)
        return false;
    p->pos += n;
    return true;
}

/* A short excerpt of the text at pos, for "unexpected '...'" messages. */
static char *excerpt(const struct parser *p, size_t pos)
{
    size_t n = 0;
    while (pos + n < p->len && n < 20 && !isspace((unsigned char)p->s[pos + n]))
        n++;
    return barge_xstrndup(p->s + pos, n ? n : 1);
}

static int new_node(struct parser *p, enum kind kind, int a, int b)
{
    struct barge_cql *q = p->q;
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 8;
        q->nodes = barge_xrealloc(q->nodes, q->cap * sizeof(*q->nodes));
    }
    struct node *nd = &q->nodes[q->n];
    memset(nd, 0, sizeof(*nd));
    nd->kind = kind;
    nd->a = a;
    nd->b = b;
    return (int)q->n++;
}

/* --- values --------------------------------------------------------------- */

/* Reads a quoted or bare value at the cursor: 1 with *out (caller frees), 0
 * when there is none, -1 on an unterminated quote. A bare value ends at white
 * space, at && or ||, or at a ')' ']' ',' that closes nothing it opened, so
 * `=~ (t2|m5)\..*` keeps its parentheses. */
static int read_value(struct parser *p, char **out)
{
    *out = NULL;
    skip_ws(p);
    if (p->pos >= p->len)
        return 0;
    char c = p->s[p->pos];
    if (c == '\'' || c == '"') {
        size_t start = p->pos++;
        char *v = barge_xmalloc(p->len - p->pos + 1);
        size_t n = 0;
        while (p->pos < p->len && p->s[p->pos] != c) {
            if (p->s[p->pos] == '\\' && p->pos + 1 < p->len &&
                (p->s[p->pos + 1] == c || p->s[p->pos + 1] == '\\'))
                p->pos++;
            v[n++] = p->s[p->pos++];
        }
        if (p->pos >= p->len) {
            free(v);
            return fail(p, start, "unterminated quoted value");
        }
        p->pos++;
        v[n] = '\0';
        *out = v;
        return 1;
    }
    size_t start = p->pos;
    int depth = 0;
    while (p->pos < p->len) {
        c = p->s[p->pos];
        if (isspace((unsigned char)c))
            break;
        if (depth == 0 && (c == ')' || c == ']' || c == ','))
            break;
        if ((c == '&' && p->s[p->pos + 1] == '&') || (c == '|' && p->s[p->pos + 1] == '|'))
            break;
        if (c == '(' || c == '[')
            depth++;
        else if (c == ')' || c == ']')
            depth--;
        p->pos++;
    }
    if (p->pos == start)
        return 0;
    *out = barge_xstrndup(p->s + start, p->pos - start);
    return 1;
}

/* 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 and
 * 2018-06-18, all UTC unless an offset says otherwise; whole seconds only. */
static bool parse_date(const char *v, double *when, bool *by_day)
{
    struct barge_isotime t;
    if (barge_isotime_parse(v, strlen(v), &t) < 0 || t.has_fraction)
        return false;
    *when = barge_isotime_epoch(&t);
    *by_day = !t.has_time;
    return true;
}

/* --- Java regular expressions as POSIX extended ones ---------------------- */

/* glibc's regcomp copies a repeated piece once per repetition ({m,n} n
 * times, + twice) and walks the empty paths of nested repetitions over and
 * over, so such patterns compile for minutes into gigabytes:
 * (((((a*)+)+)+)+)+, (((){1,15}){1,15}){1,15} or (a{1,100}){1,100}.
 * Empty alternatives do the same: ((x|||||){1,15}){1,15} took gigabytes.
 * java_to_posix follows the pattern as regcomp builds it and refuses one
 * that repeats what can match nothing (an empty group, a group with an empty
 * alternative, a starred piece), nests repetitions more than MAX_RE_NESTING
 * deep or is larger than MAX_RE_SIZE nodes, all far beyond what a placement
 * constraint needs. */
#define MAX_RE_SIZE    4000
#define MAX_RE_NESTING 3

struct re_size {
    /* per open group ([0]: the whole pattern): its size so far and how deep
     * the repetitions inside it nest */
    double *size;
    int *nesting;
    size_t *atoms; /* characters and classes, which an empty group lacks */
    /* per open group: whether an alternative that ended can match nothing,
     * whether the current one can so far, and (for a group) whether what
     * came before it in its parent could */
    bool *alt_null, *cur_null, *open_null;
    size_t depth;
    double last; /* the size of the last piece, which a quantifier repeats */
    int last_nesting;
    size_t last_atoms;
    bool last_null;   /* the last piece can match nothing */
    bool before_last; /* cur_null of its group before the last piece */
};

static void re_piece(struct re_size *z)
{
    z->size[z->depth] += 1;
    z->atoms[z->depth] += 1;
    z->last = 1;
    z->last_nesting = 0;
    z->last_atoms = 1;
    z->before_last = z->cur_null[z->depth];
    z->cur_null[z->depth] = false;
    z->last_null = false;
}

static void re_open(struct re_size *z)
{
    z->open_null[z->depth + 1] = z->cur_null[z->depth];
    z->depth++;
    z->alt_null[z->depth] = false;
    z->cur_null[z->depth] = true;
    z->size[z->depth] = 0;
    z->nesting[z->depth] = 0;
    z->atoms[z->depth] = 0;
    z->last = 0;
    z->last_nesting = 0;
    z->last_atoms = 0;
}

static void re_close(struct re_size *z)
{
    double group = z->size[z->depth] + 1; /* and the group's own node */
    int nesting = z->nesting[z->depth];
    size_t atoms = z->atoms[z->depth];
    bool null = z->alt_null[z->depth] || z->cur_null[z->depth];
    z->before_last = z->open_null[z->depth];
    z->depth--;
    z->cur_null[z->depth] = z->before_last && null;
    z->last_null = null;
    z->size[z->depth] += group;
    z->atoms[z->depth] += atoms;
    z->last = group;
    z->last_nesting = nesting;
    z->last_atoms = atoms;
}

/* '|' in the current group. */
static void re_alternative(struct re_size *z)
{
    z->size[z->depth] += 1;
    z->alt_null[z->depth] = z->alt_null[z->depth] || z->cur_null[z->depth];
    z->cur_null[z->depth] = true;
    z->last = 0;
    z->last_nesting = 0;
    z->last_atoms = 0;
    z->last_null = false;
}

/* A quantifier repeating the last piece times times (1 for * and ?);
 * optional: it may match the piece no times at all.
 * Returns what makes the pattern unsupported, or NULL. */
static const char *re_repeat(struct re_size *z, double times, bool optional)
{
    if (z->last_atoms == 0)
        return "repeating an empty group";
    if (z->last_null)
        return "repeating what can match nothing";
    if (optional) {
        z->cur_null[z->depth] = z->before_last;
        z->last_null = true;
    }
    if (times > 1)
        z->size[z->depth] += z->last * (times - 1);
    z->size[z->depth] += 1;
    z->last = z->last * fmax(times, 1) + 1;
    z->last_nesting++;
    if (z->last_nesting > z->nesting[z->depth])
        z->nesting[z->depth] = z->last_nesting;
    return z->last_nesting > MAX_RE_NESTING ? "repetitions nested this deep" : NULL;
}

static double re_total(const struct re_size *z)
{
    double sum = 0;
    for (size_t i = 0; i <= z->depth; i++)
        sum += z->size[i];
    return sum;
}

/* Returns the POSIX form of a Java pattern anchored at both ends, or NULL with
 * *why naming the unsupported construct. */
static char *java_to_posix(const char *src, int *cflags, const char **why)
{
    struct barge_buf b = {0};
    barge_buf_adds(&b, "^(");
    if (strncmp(src, "(?i)", 4) == 0) {
        *cflags |= REG_ICASE;
        src += 4;
    }
    _cleanup_free_ double *sizes = barge_xcalloc(strlen(src) + 1, sizeof(*sizes));
    _cleanup_free_ int *nestings = barge_xcalloc(strlen(src) + 1, sizeof(*nestings));
    _cleanup_free_ size_t *atoms = barge_xcalloc(strlen(src) + 1, sizeof(*atoms));
    _cleanup_free_ bool *nulls = barge_xcalloc(3 * (strlen(src) + 2), sizeof(*nulls));
    struct re_size z = {.size = sizes,
                        .nesting = nestings,
                        .atoms = atoms,
                        .alt_null = nulls,
                        .cur_null = nulls + strlen(src) + 2,
                        .open_null = nulls + 2 * (strlen(src) + 2)};
    z.cur_null[0] = true;
    double times = 1;
    bool optional = false;
    bool in_bracket = false, bracket_dash = false;
    for (const char *s = src; *s; s++) {
        char c = *s;
        if (in_bracket) {
            if (c == '\\' && s[1]) {
                char x = *++s;
                if (x == 'd')
                    barge_buf_adds(&b, "0-9");
                else if (x == 'w')
                    barge_buf_adds(&b, "A-Za-z0-9_");
                else if (x == 's')
                    barge_buf_adds(&b, "[:space:]");
                else if (x == 'D' || x == 'W' || x == 'S' || x == 'p' || x == 'P') {
                    *why = "negated or named classes inside [...]";
                    goto bad;
                } else if (x == ']') {
                    *why = "an escaped ']' inside [...] (put ']' first instead)";
                    goto bad;
                } else if (x == '-')
                    bracket_dash = true; /* a literal '-' goes last */
                else
                    barge_buf_addc(&b, x);
            } else if (c == ']') {
                if (bracket_dash)
                    barge_buf_addc(&b, '-');
                barge_buf_addc(&b, ']');
                in_bracket = bracket_dash = false;
            } else {
                barge_buf_addc(&b, c);
            }
            continue;
        }
        switch (c) {
        case '\\': {
            char x = s[1];
            if (!x) {
                *why = "a trailing backslash";
                goto bad;
            }
            s++;
            re_piece(&z);
            if (x == 'd')
                barge_buf_adds(&b, "[0-9]");
            else if (x == 'D')
                barge_buf_adds(&b, "[^0-9]");
            else if (x == 'w')
                barge_buf_adds(&b, "[A-Za-z0-9_]");
            else if (x == 'W')
                barge_buf_adds(&b, "[^A-Za-z0-9_]");
            else if (x == 's')
                barge_buf_adds(&b, "[[:space:]]");
            else if (x == 'S')
                barge_buf_adds(&b, "[^[:space:]]");
            else if (x == 't')
                barge_buf_addc(&b, '\t');
            else if (x == 'n')
                barge_buf_addc(&b, '\n');
            else if (isdigit((unsigned char)x)) {
                *why = "back references";
                goto bad;
            } else if (isalpha((unsigned char)x)) {
                *why = "this escape sequence";
                goto bad;
            } else {
                barge_buf_addc(&b, '\\');
                barge_buf_addc(&b, x);
            }
            break;
        }
        case '[':
            re_piece(&z);
            in_bracket = true;
            barge_buf_addc(&b, '[');
            if (s[1] == '^')
                barge_buf_addc(&b, *++s);
            if (s[1] == ']')
                barge_buf_addc(&b, *++s);
            break;
        case '(':
            if (s[1] == '?') {
                if (s[2] != ':') {
                    *why = "look-around and inline flags";
                    goto bad;
                }
                s += 2;
            }
            re_open(&z);
            barge_buf_addc(&b, '(');
            break;
        case ')':
            /* (one would close the group the pattern is wrapped in) */
            if (z.depth == 0) {
                *why = "an unmatched ')'";
                goto bad;
            }
            re_close(&z);
            barge_buf_addc(&b, c);
            break;
        case '|':
            re_alternative(&z);
            barge_buf_addc(&b, c);
            break;
        case '{': {
            /* A counted repetition {m}, {m,}, {m,n} or glibc's {,n};
             * any other brace is a literal one, escaped, since regcomp
             * would read {,} as * and repeat what this check never saw. */
            const char *q = s + 1;
            char *end;
            bool digits = isdigit((unsigned char)*q);
            times = digits ? (double)strtoul(q, &end, 10) : 0;
            optional = times == 0;
            if (digits)
                q = end;
            if (*q == ',') {
                q++;
                if (isdigit((unsigned char)*q)) {
                    times = fmax(times, (double)strtoul(q, &end, 10));
                    q = end;
                    digits = true;
                } else {
                    times += 1; /* {m,}: m copies and a starred one */
                }
            }
            if (!digits || *q != '}') {
                re_piece(&z);
                barge_buf_adds(&b, "\\{");
                break;
            }
            for (; s < q; s++)
                barge_buf_addc(&b, *s);
            c = '}';
            goto repeat;
        }
        case '+':
        case '*':
        case '?':
            times = c == '+' ? 2 : 1;
            optional = c != '+';
repeat:
            if ((*why = re_repeat(&z, times, optional)))
                goto bad;
            /* fall through */
        case '}':
            barge_buf_addc(&b, c);
            /* A lazy quantifier finds a whole-value match exactly when the
             * greedy one does. */
            if (s[1] == '?')
                s++;
            else if (s[1] == '+') {
                *why = "possessive quantifiers";
                goto bad;
            }
            break;
        default:
            re_piece(&z);
            barge_buf_addc(&b, c);
        }
    }
    if (in_bracket) {
        *why = "an unclosed '['";
        goto bad;
    }
    if (re_total(&z) > MAX_RE_SIZE) {
        *why = "nested repetitions this large";
        goto bad;
    }
    barge_buf_adds(&b, ")$");
    return b.data;
bad:
    free(b.data);
    return NULL;
}

/* --- the grammar ---------------------------------------------------------- */

static int parse_or(struct parser *p, int *out);

static int convert_value(struct parser *p, struct pred *pr, const char *opname, size_t at, char **v)
{
    if (pr->op == OP_MATCHES || pr->op == OP_NOT_MATCHES) {
        int cflags = REG_EXTENDED | REG_NOSUB;
        const char *why = NULL;
        _cleanup_free_ char *posix = java_to_posix(*v, &cflags, &why);
        if (!posix)
            return fail(p, at, "unsupported regular expression '%s': barge does not support %s", *v,
                        why);
        int rc = regcomp(&pr->re, posix, cflags);
        if (rc != 0) {
            char buf[128];
            regerror(rc, &pr->re, buf, sizeof(buf));
            return fail(p, at, "invalid regular expression '%s' (%s)", *v, buf);
        }
        pr->has_re = true;
        return 0;
    }
    switch (pr->subj) {
    case SUBJ_RUNNING_TASKS: {
        char *end;
        long long n = strtoll(*v, &end, 10);
        if (*end || end == *v || n < 0)
            return fail(p, at, "expected a whole number after '%s', not '%s'", opname, *v);
        pr->num = n;
        break;
    }
    case SUBJ_REGISTERED_AT:
        if (!parse_date(*v, &pr->when, &pr->by_day))
            return fail(p, at,
                        "invalid date '%s' (use 2018-06-18T22:28:28+00:00, "
                        "2018-06-18T22:28:28Z, 2018-06-18T22:28:28 or 2018-06-18)",
                        *v);
        break;
    case SUBJ_AGENT_CONNECTED:
        if (strcasecmp(*v, "true") != 0 && strcasecmp(*v, "false") != 0)
            return fail(p, at, "agentConnected is true or false, not '%s'", *v);
        for (char *c = *v; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        break;
    default:
        break;
    }
    return 0;
}

static void add_value(struct pred *pr, char *v)
{
    pr->vals = barge_xrealloc(pr->vals, (pr->n_vals + 1) * sizeof(char *));
    pr->vals[pr->n_vals++] = v;
}

static int parse_operator(struct parser *p, enum op *op)
{
    /* Longest symbols first; "!exists" and "!in" end at a word boundary. */
    static const enum op by_sym[] = {OP_NOT_EXISTS, OP_NOT_IN,  OP_EQ,          OP_NE, OP_GE,
                                     OP_LE,         OP_MATCHES, OP_NOT_MATCHES, OP_GT, OP_LT};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(by_sym); i++) {
        const char *sym = op_names[by_sym[i]].sym;
        bool found;
        if (sym[0] == '!' && isalpha((unsigned char)sym[1])) {
            size_t save = p->pos;
            found = p->s[p->pos] == '!' && (p->pos++, eat_word(p, sym + 1));
            if (!found)
                p->pos = save;
        } else {
            found = eat_sym(p, sym);
        }
        if (found) {
            *op = by_sym[i];
            return 1;
        }
    }
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(op_names); i++) {
        if (eat_word(p, op_names[i].word)) {
            *op = (enum op)i;
            return 1;
        }
    }
    return 0;
}

static int parse_predicate(struct parser *p, int *out)
{
    skip_ws(p);
    size_t at = p->pos;
    while (p->pos < p->len && !isspace((unsigned char)p->s[p->pos]) &&
           !strchr("()[],!=<>~&|'\"", p->s[p->pos]))
        p->pos++;
    size_t n = p->pos - at;
    if (n == 0) {
        if (at >= p->len)
            return fail(p, at, "expected a subject");
        _cleanup_free_ char *u = excerpt(p, at);
        return fail(p, at, "expected a subject, not '%s'", u);
    }
    _cleanup_free_ char *name = barge_xstrndup(p->s + at, n);
    int idx = new_node(p, N_PRED, -1, -1);
    struct pred *pr = &p->q->nodes[idx].p;
    bool found = false;
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(subjects); i++) {
        if (i == SUBJ_ATTRIBUTE ? barge_str_has_prefix(name, subjects[i].name)
                                : strcmp(name, subjects[i].name) == 0) {
            pr->subj = (enum subject)i;
            found = true;
            break;
        }
    }
    if (!found)
        return fail(p, at,
                    "unknown subject '%s' (expected agentConnected, agentVersion, "
                    "attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount or "
                    "task:group)",
                    name);
    if (pr->subj == SUBJ_ATTRIBUTE) {
        if (!name[strlen("attribute:")])
            return fail(p, at, "'attribute:' needs an attribute name");
        pr->attr = barge_xstrdup(name + strlen("attribute:"));
    }
    if (pr->subj == SUBJ_TASK_GROUP || pr->subj == SUBJ_RUNNING_TASKS)
        p->q->uses_tasks = true;
    skip_ws(p);
    size_t op_at = p->pos;
    if (!parse_operator(p, &pr->op)) {
        if (p->pos >= p->len)
            return fail(p, p->pos, "expected an operator after '%s'", name);
        _cleanup_free_ char *u = excerpt(p, p->pos);
        return fail(p, p->pos, "expected an operator after '%s', not '%s'", name, u);
    }
    _cleanup_free_ char *opname = barge_xstrndup(p->s + op_at, p->pos - op_at);
    if (!(subjects[pr->subj].ops & BIT(pr->op)))
        return fail(p, op_at, "operator '%s' cannot be used with %s", opname,
                    pr->subj == SUBJ_ATTRIBUTE ? name : subjects[pr->subj].name);
    *out = idx;
    if (pr->op == OP_EXISTS || pr->op == OP_NOT_EXISTS)
        return 0;
    if (pr->op == OP_IN || pr->op == OP_NOT_IN) {
        skip_ws(p);
        if (p->s[p->pos] != '[')
            return fail(p, p->pos, "expected '[' after '%s'", opname);
        p->pos++;
        for (;;) {
            char *v;
            skip_ws(p);
            size_t v_at = p->pos;
            int r = read_value(p, &v);
            if (r < 0)
                return -1;
            if (r == 0)
                return fail(p, p->pos, "expected a value in the list after '%s'", opname);
            if (convert_value(p, pr, opname, v_at, &v) < 0) {
                free(v);
                return -1;
            }
            add_value(pr, v);
            skip_ws(p);
            if (p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->s[p->pos] == ']') {
                p->pos++;
                return 0;
            }
            return fail(p, p->pos, "expected ',' or ']' in the list after '%s'", opname);
        }
    }
    char *v;
    skip_ws(p);
    size_t v_at = p->pos;
    int r = read_value(p, &v);
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(p, v_at, "expected a value after '%s'", opname);
    if (convert_value(p, pr, opname, v_at, &v) < 0) {
        free(v);
        return -1;
    }
    add_value(pr, v);
    return 0;
}

static int parse_unary(struct parser *p, int *out)
{
    if (++p->depth > MAX_DEPTH)
        return fail(p, p->pos, "the expression nests more than %d levels deep", MAX_DEPTH);
    skip_ws(p);
    int r;
    bool bang = p->s[p->pos] == '!';
    if (bang || eat_word(p, "not")) {
        if (bang)
            p->pos++;
        int child;
        r = parse_unary(p, &child);
        if (r == 0)
            *out = new_node(p, N_NOT, child, -1);
    } else if (p->s[p->pos] == '(') {
        size_t open = p->pos++;
        r = parse_or(p, out);
        if (r == 0) {
            skip_ws(p);
            if (p->s[p->pos] != ')') {
                if (p->pos >= p->len)
                    r = fail(p, p->pos, "expected ')' (to close the '(' at position %zu)",
                             open + 1);
                else {
                    _cleanup_free_ char *u = excerpt(p, p->pos);
                    r = fail(p, p->pos, "expected ')' (to close the '(' at position %zu), not '%s'",
                             open + 1, u);
                }
            } else {
                p->pos++;
            }
        }
    } else {
        r = parse_predicate(p, out);
    }
    p->depth--;
    return r;
}

static int parse_and(struct parser *p, int *out)
{
    if (parse_unary(p, out) < 0)
        return -1;
    for (;;) {
        skip_ws(p);
        if (!eat_sym(p, "&&") && !eat_word(p, "and"))
            return 0;
        int rhs;
        if (parse_unary(p, &rhs) < 0)
            return -1;
        *out = new_node(p, N_AND, *out, rhs);
    }
}

static int parse_or(struct parser *p, int *out)
{
    if (parse_and(p, out) < 0)
        return -1;
    for (;;) {
        skip_ws(p);
        if (!eat_sym(p, "||") && !eat_word(p, "or"))
            return 0;
        int rhs;
        if (parse_and(p, &rhs) < 0)
            return -1;
        *out = new_node(p, N_OR, *out, rhs);
    }
}

int barge_cql_parse(const char *text, struct barge_cql **out, struct barge_error **err)
{
    *out = NULL;
    size_t len = strlen(text);
    if (len > BARGE_CQL_MAX_LENGTH)
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "the expression is %zu characters long; at most %d are "
                                    "allowed",
                                    len, BARGE_CQL_MAX_LENGTH);
    struct barge_cql *q = barge_xcalloc(1, sizeof(*q));
    q->text = barge_xstrdup(text);
    q->serial = atomic_fetch_add(&serials, 1) + 1;
    struct parser p = {.s = q->text, .len = len, .q = q, .err = err};
    skip_ws(&p);
    if (p.pos == len) {
        barge_cql_free(q);
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "the expression is empty");
    }
    if (parse_or(&p, &q->root) < 0) {
        barge_cql_free(q);
        return -1;
    }
    skip_ws(&p);
    if (p.pos < len) {
        _cleanup_free_ char *u = excerpt(&p, p.pos);
        fail(&p, p.pos, "unexpected '%s' (expected 'and', 'or', ')' or the end)", u);
        barge_cql_free(q);
        return -1;
    }
    *out = q;
    return 0;
}

void barge_cql_free(struct barge_cql *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++) {
        struct pred *pr = &q->nodes[i].p;
        if (q->nodes[i].kind != N_PRED)
            continue;
        free(pr->attr);
        for (size_t k = 0; k < pr->n_vals; k++)
            free(pr->vals[k]);
        free(pr->vals);
        if (pr->has_re)
            regfree(&pr->re);
    }
    free(q->nodes);
    free(q->text);
    free(q);
}

bool barge_cql_uses_tasks(const struct barge_cql *q)
{
    return q->uses_tasks;
}

const char *barge_cql_text(const struct barge_cql *q)
{
    return q->text;
}

uint64_t barge_cql_serial(const struct barge_cql *q)
{
    return q->serial;
}

/* --- evaluation ----------------------------------------------------------- */

int barge_cql_version_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0' && isdigit((unsigned char)a[1]))
                a++;
            while (*b == '0' && isdigit((unsigned char)b[1]))
                b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la]))
                la++;
            while (isdigit((unsigned char)b[lb]))
                lb++;
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c)
                return c < 0 ? -1 : 1;
            a += la;
            b += lb;
        } else {
            if (*a != *b)
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return (*a != '\0') - (*b != '\0');
}

static bool as_number(const char *s, double *d)
{
    char *end;
    if (!*s)
        return false;
    *d = strtod(s, &end);
    return *end == '\0' && isfinite(*d);
}

/* Orders an attribute value against an argument. */
static int value_cmp(const char *v, const char *arg)
{
    double x, y;
    if (as_number(v, &x) && as_number(arg, &y))
        return x < y ? -1 : x > y;
    return barge_cql_version_cmp(v, arg);
}

static bool order_holds(enum op op, int c)
{
    switch (op) {
    case OP_EQ:
        return c == 0;
    case OP_NE:
        return c != 0;
    case OP_GT:
        return c > 0;
    case OP_GE:
        return c >= 0;
    case OP_LT:
        return c < 0;
    case OP_LE:
        return c <= 0;
    default:
        return false;
    }
}

/* The positive form of an equality, list or match operator on one value. */
static bool set_op_holds(const struct pred *pr, const char *v)
{
    switch (pr->op) {
    case OP_EQ:
    case OP_NE:
        return strcmp(v, pr->vals[0]) == 0;
    case OP_IN:
    case OP_NOT_IN:
        for (size_t i = 0; i < pr->n_vals; i++)
            if (strcmp(v, pr->vals[i]) == 0)
                return true;
        return false;
    case OP_MATCHES:
    case OP_NOT_MATCHES:
        return regexec(&pr->re, v, 0, NULL, 0) == 0;
    default:
        return false;
    }
}

static bool negative(enum op op)
{
    return op == OP_NE || op == OP_NOT_IN || op == OP_NOT_MATCHES || op == OP_NOT_EXISTS;
}

static bool eval_pred(const struct pred *pr, const struct barge_sched_instance *in)
{
    switch (pr->subj) {
    case SUBJ_ATTRIBUTE: {
        bool present;
        const char *v = barge_sched_instance_attr(in, pr->attr, &present);
        if (pr->op == OP_EXISTS || pr->op == OP_NOT_EXISTS)
            return present != negative(pr->op);
        if (pr->op >= OP_GT && pr->op <= OP_LE)
            return v && order_holds(pr->op, value_cmp(v, pr->vals[0]));
        return (v && set_op_holds(pr, v)) != negative(pr->op);
    }
    case SUBJ_AGENT_CONNECTED:
        return set_op_holds(pr, in->agent_connected ? "true" : "false") != negative(pr->op);
    case SUBJ_EC2_ID:
        return set_op_holds(pr, in->ec2_instance_id ? in->ec2_instance_id : "") != negative(pr->op);
    case SUBJ_AGENT_VERSION:
        return order_holds(
            pr->op, barge_cql_version_cmp(in->agent_version ? in->agent_version : "", pr->vals[0]));
    case SUBJ_RUNNING_TASKS:
        return order_holds(pr->op, in->running_tasks < pr->num   ? -1
                                   : in->running_tasks > pr->num ? 1
                                                                 : 0);
    case SUBJ_REGISTERED_AT: {
        double t = floor(in->registered_at);
        if (pr->by_day)
            t = floor(t / 86400.0) * 86400.0;
        return order_holds(pr->op, t < pr->when ? -1 : t > pr->when);
    }
    case SUBJ_TASK_GROUP: {
        bool any = false;
        for (size_t i = 0; i < in->n_groups && !any; i++) {
            if (in->groups[i].count == 0)
                continue;
            any = pr->op == OP_EXISTS || pr->op == OP_NOT_EXISTS ||
                  set_op_holds(pr, in->groups[i].group);
        }
        return any != negative(pr->op);
    }
    }
    return false;
}

static bool eval_node(const struct barge_cql *q, int idx, const struct barge_sched_instance *in)
{
    const struct node *nd = &q->nodes[idx];
    switch (nd->kind) {
    case N_AND:
        return eval_node(q, nd->a, in) && eval_node(q, nd->b, in);
    case N_OR:
        return eval_node(q, nd->a, in) || eval_node(q, nd->b, in);
    case N_NOT:
        return !eval_node(q, nd->a, in);
    case N_PRED:
        return eval_pred(&nd->p, in);
    }
    return false;
}

bool barge_cql_eval(const struct barge_cql *q, const struct barge_sched_instance *in)
{
    return eval_node(q, q->root, in);
}
