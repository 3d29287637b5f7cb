/* Unified diff: Myers' O((N+M)D) shortest edit script over lines, kept
 * simple (the trace of each round is saved for the backtrack) because the
 * texts are definition files of a few hundred lines. Hunk headers follow
 * GNU diff: "-l,n" with ",n" left out when n is 1. */
#include <string.h>

#include "cli/defs.h"

struct lines {
    const char **v; /* pointers into the text */
    size_t *len;
    size_t n;
};

static void split(const char *s, struct lines *l)
{
    size_t cap = 16;
    l->v = barge_xmalloc(cap * sizeof(*l->v));
    l->len = barge_xmalloc(cap * sizeof(*l->len));
    l->n = 0;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        if (l->n == cap) {
            cap *= 2;
            l->v = barge_xrealloc(l->v, cap * sizeof(*l->v));
            l->len = barge_xrealloc(l->len, cap * sizeof(*l->len));
        }
        l->v[l->n] = s;
        l->len[l->n++] = n;
        s += n + (nl ? 1 : 0);
    }
}

static bool same(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
    return a->len[i] == b->len[j] && memcmp(a->v[i], b->v[j], a->len[i]) == 0;
}

enum op_kind { OP_EQ, OP_DEL, OP_INS };

struct op {
    enum op_kind kind;
    size_t a, b; /* line indexes in a (EQ, DEL) and b (EQ, INS) */
};

/* The edit script from a to b, in order. */
static struct op *myers(const struct lines *a, const struct lines *b, size_t *n_ops)
{
    long n = (long)a->n, m = (long)b->n, max = n + m;
    long off = max + 1;
    size_t width = (size_t)(2 * max + 3);
    long *v = barge_xcalloc(width, sizeof(long));
    long **trace = barge_xcalloc((size_t)max + 2, sizeof(long *));
    long d_end = 0;
    for (long d = 0; d <= max; d++) {
        trace[d] = barge_xmalloc(width * sizeof(long));
        memcpy(trace[d], v, width * sizeof(long));
        bool done = false;
        for (long k = -d; k <= d; k += 2) {
            long x;
            if (k == -d || (k != d && v[off + k - 1] < v[off + k + 1]))
                x = v[off + k + 1];
            else
                x = v[off + k - 1] + 1;
            long y = x - k;
            while (x < n && y < m && same(a, (size_t)x, b, (size_t)y)) {
                x++;
                y++;
            }
            v[off + k] = x;
            if (x >= n && y >= m) {
                done = true;
                break;
            }
        }
        if (done) {
            d_end = d;
            break;
        }
    }
    /* Backtrack from (n, m), collecting ops in reverse. */
    struct op *ops = barge_xmalloc(((size_t)max + 1) * sizeof(*ops));
    size_t cnt = 0;
    long x = n, y = m;
    for (long d = d_end; d >= 0; d--) {
        long *vd = trace[d];
        long k = x - y;
        long prev_k;
        if (d == 0)
            prev_k = 0;
        else if (k == -d || (k != d && vd[off + k - 1] < vd[off + k + 1]))
            prev_k = k + 1;
        else
            prev_k = k - 1;
        long prev_x = d == 0 ? 0 : vd[off + prev_k];
        long prev_y = prev_x - prev_k;
        while (x > prev_x && y > prev_y) {
            x--;
            y--;
            ops[cnt++] = (struct op){OP_EQ, (size_t)x, (size_t)y};
        }
        if (d > 0) {
            if (x == prev_x)
                ops[cnt++] = (struct op){OP_INS, (size_t)x, (size_t)(y - 1)};
            else
                ops[cnt++] = (struct op){OP_DEL, (size_t)(x - 1), (size_t)y};
        }
        x = prev_x;
        y = prev_y;
    }
    for (size_t i = 0; i < cnt / 2; i++) {
        struct op t = ops[i];
        ops[i] = ops[cnt - 1 - i];
        ops[cnt - 1 - i] = t;
    }
    for (long d = 0; d <= max + 1; d++)
        free(trace[d]);
    free(trace);
    free(v);
    *n_ops = cnt;
    return ops;
}

static void range(FILE *o, char sign, size_t start, size_t count)
{
    /* GNU: an empty range names the line before it. */
    if (count == 0)
        fprintf(o, " %c%zu,0", sign, start);
    else if (count == 1)
        fprintf(o, " %c%zu", sign, start + 1);
    else
        fprintf(o, " %c%zu,%zu", sign, start + 1, count);
}

char *barge_cli_diff_unified(const char *a_text, const char *b_text, const char *from,
                             const char *to, int context)
{
    struct lines a, b;
    split(a_text, &a);
    split(b_text, &b);
    size_t n_ops;
    struct op *ops = myers(&a, &b, &n_ops);
    bool changed = false;
    for (size_t i = 0; i < n_ops && !changed; i++)
        changed = ops[i].kind != OP_EQ;
    char *buf = NULL;
    if (changed) {
        size_t len = 0;
        FILE *o = open_memstream(&buf, &len);
        fprintf(o, "--- %s\n+++ %s\n", from, to);
        size_t ctx = context < 0 ? 0 : (size_t)context;
        size_t i = 0;
        while (i < n_ops) {
            while (i < n_ops && ops[i].kind == OP_EQ)
                i++;
            if (i == n_ops)
                break;
            /* A hunk: from ctx lines before this change to ctx lines after
             * the last change that is within 2*ctx equal lines of the next. */
            size_t start = i >= ctx ? i - ctx : 0;
            size_t end = i;
            for (;;) {
                while (end < n_ops && ops[end].kind != OP_EQ)
                    end++;
                size_t eq = end;
                while (eq < n_ops && ops[eq].kind == OP_EQ)
                    eq++;
                if (eq < n_ops && eq - end <= 2 * ctx) {
                    end = eq;
                    continue;
                }
                end = end + ctx < n_ops ? end + ctx : n_ops;
                if (end > eq)
                    end = eq;
                break;
            }
            size_t a_start = 0, b_start = 0, a_cnt = 0, b_cnt = 0;
            bool a_set = false, b_set = false;
            for (size_t j = start; j < end; j++) {
                if (ops[j].kind != OP_INS) {
                    if (!a_set) {
                        a_start = ops[j].a;
                        a_set = true;
                    }
                    a_cnt++;
                }
                if (ops[j].kind != OP_DEL) {
                    if (!b_set) {
                        b_start = ops[j].b;
                        b_set = true;
                    }
                    b_cnt++;
                }
            }
            if (!a_set)
                a_start = ops[start].a;
            if (!b_set)
                b_start = ops[start].b;
            fputs("@@", o);
            range(o, '-', a_start, a_cnt);
            range(o, '+', b_start, b_cnt);
            fputs(" @@\n", o);
            for (size_t j = start; j < end; j++) {
                const struct op *op = &ops[j];
                if (op->kind == OP_INS)
                    fprintf(o, "+%.*s\n", (int)b.len[op->b], b.v[op->b]);
                else
                    fprintf(o, "%c%.*s\n", op->kind == OP_EQ ? ' ' : '-', (int)a.len[op->a],
                            a.v[op->a]);
            }
            i = end;
        }
        fclose(o);
    }
    free(ops);
    free(a.v);
    free(a.len);
    free(b.v);
    free(b.len);
    return buf;
}
