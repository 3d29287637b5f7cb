/* The pure parts of the Logs API: filterPattern terms and phrases, and the
 * forward/backward tokens of GetLogEvents. Kept apart from logs.c so that unit
 * tests reach them without a store. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/logs.h"

enum term_kind { TERM_REQUIRED, TERM_OPTIONAL, TERM_EXCLUDED };

struct term {
    enum term_kind kind;
    char *text;
    size_t len;
};

struct barge_logs_pattern {
    struct term *terms;
    size_t n;
    bool has_optional;
};

void barge_logs_pattern_free(struct barge_logs_pattern *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->terms[i].text);
    free(p->terms);
    free(p);
}

static int invalid(struct barge_logs_pattern *p, struct barge_error **err, const char *text,
                   const char *why)
{
    barge_logs_pattern_free(p);
    return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                "Invalid filter pattern '%s': %s.", text, why);
}

int barge_logs_pattern_compile(const char *text, struct barge_logs_pattern **out,
                               struct barge_error **err)
{
    struct barge_logs_pattern *p = barge_xcalloc(1, sizeof(*p));
    *out = NULL;
    const char *s = text ? text : "";
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '{' || *s == '[')
        return invalid(p, err, text,
                       "JSON and space-delimited filter patterns are not supported by barge");
    if (*s == '%')
        return invalid(p, err, text,
                       "regular expression filter patterns are not supported by "
                       "barge");
    while (*s) {
        if (*s == ' ' || *s == '\t') {
            s++;
            continue;
        }
        enum term_kind kind = TERM_REQUIRED;
        if (*s == '?' || *s == '-') {
            kind = *s == '?' ? TERM_OPTIONAL : TERM_EXCLUDED;
            s++;
        }
        char *buf = barge_xmalloc(strlen(s) + 1);
        size_t len = 0;
        if (*s == '"') {
            /* A quoted phrase: spaces are part of it, \" and \\ escape. */
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                buf[len++] = *s++;
            }
            if (*s != '"') {
                free(buf);
                return invalid(p, err, text, "a quoted phrase is not closed");
            }
            s++;
            if (*s && *s != ' ' && *s != '\t') {
                free(buf);
                return invalid(p, err, text, "a quoted phrase must be followed by a space");
            }
        } else {
            while (*s && *s != ' ' && *s != '\t')
                buf[len++] = *s++;
        }
        buf[len] = '\0';
        if (len == 0) {
            free(buf);
            return invalid(p, err, text, "a term is empty");
        }
        p->terms = barge_xrealloc(p->terms, (p->n + 1) * sizeof(*p->terms));
        p->terms[p->n++] = (struct term){kind, buf, len};
        if (kind == TERM_OPTIONAL)
            p->has_optional = true;
    }
    *out = p;
    return 0;
}

static bool contains(const char *msg, size_t len, const struct term *t)
{
    return memmem(msg, len, t->text, t->len) != NULL;
}

bool barge_logs_pattern_match(const struct barge_logs_pattern *p, const char *msg, size_t len)
{
    if (!p)
        return true;
    bool any_optional = false;
    for (size_t i = 0; i < p->n; i++) {
        const struct term *t = &p->terms[i];
        bool found = contains(msg, len, t);
        switch (t->kind) {
        case TERM_REQUIRED:
            if (!found)
                return false;
            break;
        case TERM_EXCLUDED:
            if (found)
                return false;
            break;
        case TERM_OPTIONAL:
            any_optional |= found;
            break;
        }
    }
    return !p->has_optional || any_optional;
}

#define TOKEN_DIGITS 20

char *barge_logs_token_encode(const struct barge_logs_position *pos)
{
    return barge_xasprintf("%c/%0*" PRId64 "%0*" PRId64, pos->forward ? 'f' : 'b', TOKEN_DIGITS,
                           pos->ts < 0 ? 0 : pos->ts, TOKEN_DIGITS, pos->id < 0 ? 0 : pos->id);
}

static bool parse_digits(const char *s, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < TOKEN_DIGITS; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int barge_logs_token_decode(const char *token, struct barge_logs_position *out,
                            struct barge_error **err)
{
    if (!token || strlen(token) != 2 + 2 * TOKEN_DIGITS || (token[0] != 'f' && token[0] != 'b') ||
        token[1] != '/' || !parse_digits(token + 2, &out->ts) ||
        !parse_digits(token + 2 + TOKEN_DIGITS, &out->id))
        return barge_error_set_type(err, BARGE_ERR_INVALID, "InvalidParameterException",
                                    "The specified nextToken '%s' is invalid.", token ? token : "");
    out->forward = token[0] == 'f';
    return 0;
}
