/* The awslogs driver's parsing and grouping (logparse.h). Events carry file
 * offsets so that the shipper can resume after a restart and barged can tell
 * a resent event from a new one: a complete event's offset is the end of its
 * last record; the leading pieces of a line too long for one event get
 * offsets just past the line's start, which still sort after everything
 * before the line and before its last piece. */
#include "agent/logparse.h"

#include <string.h>

#include "common/isotime.h"

/* --- records ------------------------------------------------------------- */

int barge_logparse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    struct barge_isotime t;
    if (barge_isotime_parse(s, len, &t) < 0 || !t.has_time || !t.has_zone)
        return -1;
    *ms = t.sec * 1000 + t.nsec / 1000000;
    return 0;
}

int barge_logparse_k8s_record(const char *line, size_t len, struct barge_logparse_record *out)
{
    const char *end = line + len;
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || barge_logparse_rfc3339(line, (size_t)(sp1 - line), &out->timestamp) < 0)
        return -1;
    const char *stream = sp1 + 1;
    const char *sp2 = memchr(stream, ' ', (size_t)(end - stream));
    if (!sp2)
        return -1;
    size_t slen = (size_t)(sp2 - stream);
    if (slen == 6 && memcmp(stream, "stdout", 6) == 0)
        out->is_stderr = false;
    else if (slen == 6 && memcmp(stream, "stderr", 6) == 0)
        out->is_stderr = true;
    else
        return -1;
    /* Tags are ':'-separated; the first is F (full) or P (partial). */
    const char *tags = sp2 + 1;
    if (tags >= end || (*tags != 'F' && *tags != 'P'))
        return -1;
    out->partial = *tags == 'P';
    const char *sp3 = memchr(tags, ' ', (size_t)(end - tags));
    if (sp3) {
        out->text = sp3 + 1;
        out->len = (size_t)(end - sp3 - 1);
    } else {
        out->text = end;
        out->len = 0;
    }
    return 0;
}

/* --- regular expressions ---------------------------------------------------- */

char *barge_logparse_regex_translate(const char *re)
{
    struct barge_buf b = {0};
    barge_buf_addn(&b, "", 0);
    bool in_bracket = false;
    for (const char *s = re; *s; s++) {
        if (in_bracket) {
            if (*s == ']') {
                in_bracket = false;
                barge_buf_addn(&b, s, 1);
            } else if (*s == '\\' && s[1]) {
                s++;
                switch (*s) {
                case 'd':
                    barge_buf_adds(&b, "0-9");
                    break;
                case 's':
                    barge_buf_adds(&b, "[:space:]");
                    break;
                case 'w':
                    barge_buf_adds(&b, "[:alnum:]_");
                    break;
                case 't':
                    barge_buf_adds(&b, "\t");
                    break;
                default:
                    barge_buf_addn(&b, s, 1); /* in a bracket, the character itself */
                }
            } else {
                barge_buf_addn(&b, s, 1);
            }
            continue;
        }
        if (*s == '[') {
            in_bracket = true;
            barge_buf_addn(&b, s, 1);
            /* A leading ^ or ] belongs to the bracket's syntax. */
            if (s[1] == '^') {
                barge_buf_addn(&b, ++s, 1);
            }
            if (s[1] == ']')
                barge_buf_addn(&b, ++s, 1);
            continue;
        }
        if (*s == '(' && s[1] == '?' && s[2] == ':') {
            barge_buf_adds(&b, "(");
            s += 2;
            continue;
        }
        if (*s == '\\' && s[1]) {
            s++;
            switch (*s) {
            case 'd':
                barge_buf_adds(&b, "[0-9]");
                break;
            case 'D':
                barge_buf_adds(&b, "[^0-9]");
                break;
            case 's':
                barge_buf_adds(&b, "[[:space:]]");
                break;
            case 'S':
                barge_buf_adds(&b, "[^[:space:]]");
                break;
            case 'w':
                barge_buf_adds(&b, "[[:alnum:]_]");
                break;
            case 'W':
                barge_buf_adds(&b, "[^[:alnum:]_]");
                break;
            case 't':
                barge_buf_adds(&b, "\t");
                break;
            default:
                barge_buf_addn(&b, s - 1, 2);
            }
            continue;
        }
        barge_buf_addn(&b, s, 1);
    }
    return b.data;
}

char *barge_logparse_datetime_regex(const char *fmt, struct barge_error **err)
{
    static const struct {
        char d;
        const char *re;
    } map[] = {
        {'a', "(Mon|Monday|Tue|Tuesday|Wed|Wednesday|Thu|Thursday|Fri|Friday|Sat|Saturday|Sun|"
              "Sunday)"},
        {'A', "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"},
        {'b', "(Jan|January|Feb|February|Mar|March|Apr|April|May|Jun|June|Jul|July|Aug|August|"
              "Sep|September|Oct|October|Nov|November|Dec|December)"},
        {'B', "(January|February|March|April|May|June|July|August|September|October|November|"
              "December)"},
        {'d', "(0[1-9]|[12][0-9]|3[01])"},
        {'f', "[0-9]{6}"},
        {'H', "([01][0-9]|2[0-3])"},
        {'I', "(0[0-9]|1[0-2])"},
        {'j', "(00[1-9]|0[1-9][0-9]|[12][0-9][0-9]|3[0-5][0-9]|36[0-6])"},
        {'L', "[.][0-9]{3}"},
        {'m', "(0[1-9]|1[0-2])"},
        {'M', "[0-5][0-9]"},
        {'p', "[AP]M"},
        {'S', "[0-5][0-9]"},
        {'U', "(0[0-9]|[1-4][0-9]|5[0-3])"},
        {'w', "[0-6]"},
        {'W', "(0[0-9]|[1-4][0-9]|5[0-3])"},
        {'y', "[0-9]{2}"},
        {'Y', "[0-9]{4}"},
        {'z', "[+-][0-9]{4}"},
        {'Z', "[A-Z]{1,4}T"},
    };
    struct barge_buf b = {0};
    barge_buf_adds(&b, "^");
    for (const char *s = fmt; *s; s++) {
        if (*s == '%') {
            s++;
            if (*s == '%') {
                barge_buf_adds(&b, "%");
                continue;
            }
            const char *re = NULL;
            for (size_t i = 0; i < BARGE_ARRAY_SIZE(map) && *s; i++)
                if (map[i].d == *s)
                    re = map[i].re;
            if (!re) {
                free(b.data);
                barge_error_set(err, BARGE_ERR_INVALID,
                                "awslogs-datetime-format '%s': unsupported directive '%%%c'", fmt,
                                *s ? *s : ' ');
                return NULL;
            }
            barge_buf_adds(&b, re);
        } else if (strchr(".[]{}()\\*+?|^$", *s)) {
            char esc[4] = {'[', *s, ']', 0};
            if (*s == '\\' || *s == '^' || *s == ']')
                esc[0] = '\\', esc[2] = 0;
            barge_buf_adds(&b, esc);
        } else {
            barge_buf_addn(&b, s, 1);
        }
    }
    return b.data;
}

int barge_logparse_compile(const char *datetime, const char *pattern, regex_t *re,
                           struct barge_error **err)
{
    _cleanup_free_ char *ere = datetime ? barge_logparse_datetime_regex(datetime, err)
                                        : barge_logparse_regex_translate(pattern);
    if (!ere)
        return -1;
    int rc = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[256];
        regerror(rc, re, msg, sizeof(msg));
        return barge_error_set(err, BARGE_ERR_INVALID, "%s '%s' is not a valid pattern: %s",
                               datetime ? "awslogs-datetime-format" : "awslogs-multiline-pattern",
                               datetime ? datetime : pattern, msg);
    }
    return 0;
}

/* --- UTF-8 ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t min;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    uint32_t cp = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

char *barge_logparse_utf8_clean(const char *s, size_t len, size_t *out_len)
{
    struct barge_buf b = {0};
    barge_buf_addn(&b, "", 0);
    size_t i = 0, run = 0;
    while (i < len) {
        size_t n = utf8_seq((const unsigned char *)s + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        barge_buf_addn(&b, s + run, i - run);
        barge_buf_adds(&b, "\xef\xbf\xbd");
        i++;
        run = i;
    }
    barge_buf_addn(&b, s + run, len - run);
    *out_len = b.len;
    return b.data;
}

/* --- events ---------------------------------------------------------------- */

void barge_logparse_events_clear(struct barge_logparse_events *evs)
{
    for (size_t i = 0; i < evs->n; i++)
        free(evs->v[i].message);
    free(evs->v);
    memset(evs, 0, sizeof(*evs));
}

void barge_logparse_events_shift(struct barge_logparse_events *evs, size_t n)
{
    if (n > evs->n)
        n = evs->n;
    for (size_t i = 0; i < n; i++)
        free(evs->v[i].message);
    memmove(evs->v, evs->v + n, (evs->n - n) * sizeof(*evs->v));
    evs->n -= n;
}

static void events_add(struct barge_logparse_events *evs, int64_t ts, const char *msg, size_t len,
                       uint64_t offset, uint64_t resume)
{
    if (evs->n == evs->cap) {
        evs->cap = evs->cap ? evs->cap * 2 : 64;
        evs->v = barge_xrealloc(evs->v, evs->cap * sizeof(*evs->v));
    }
    evs->v[evs->n++] = (struct barge_logparse_event){
        .timestamp = ts,
        .message = barge_xstrndup(msg, len),
        .len = len,
        .offset = offset,
        .resume = resume,
    };
}

struct barge_logparse_assembler {
    const regex_t *start;
    size_t max_event;
    /* The line being joined from partial records. */
    bool line_active;
    struct barge_buf line;
    int64_t line_ts;
    uint64_t line_start, line_end;
    /* The multi-line event being grouped. */
    bool ev_active;
    struct barge_buf ev;
    int64_t ev_ts;
    uint64_t ev_start, ev_end;
};

struct barge_logparse_assembler *barge_logparse_assembler_new(const regex_t *start,
                                                              size_t max_event)
{
    struct barge_logparse_assembler *a = barge_xcalloc(1, sizeof(*a));
    a->start = start;
    a->max_event = max_event ? max_event : BARGE_LOGPARSE_MAX_EVENT;
    return a;
}

void barge_logparse_assembler_free(struct barge_logparse_assembler *a)
{
    if (!a)
        return;
    free(a->line.data);
    free(a->ev.data);
    free(a);
}

void barge_logparse_assembler_reset(struct barge_logparse_assembler *a)
{
    a->line_active = a->ev_active = false;
    a->line.len = a->ev.len = 0;
}

bool barge_logparse_assembler_pending(const struct barge_logparse_assembler *a)
{
    return a->line_active || a->ev_active;
}

/* Emits text (valid UTF-8) occupying [start, end) of the file, in pieces of
 * at most max_event bytes cut at character boundaries. */
static void emit(struct barge_logparse_assembler *a, int64_t ts, const char *text, size_t len,
                 uint64_t start, uint64_t end, struct barge_logparse_events *out)
{
    if (len == 0)
        return;
    uint64_t piece = 0;
    while (len > a->max_event) {
        size_t cut = a->max_event;
        while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
            cut--;
        if (cut == 0)
            cut = a->max_event;
        uint64_t off = start + ++piece;
        if (off >= end)
            off = end - 1;
        events_add(out, ts, text, cut, off, start);
        text += cut;
        len -= cut;
    }
    events_add(out, ts, text, len, end, end);
}

static void flush_event(struct barge_logparse_assembler *a, struct barge_logparse_events *out)
{
    if (!a->ev_active)
        return;
    emit(a, a->ev_ts, a->ev.data, a->ev.len, a->ev_start, a->ev_end, out);
    a->ev_active = false;
    a->ev.len = 0;
}

/* A complete line, occupying [start, end). */
static void take_line(struct barge_logparse_assembler *a, const char *raw, size_t raw_len,
                      int64_t ts, uint64_t start, uint64_t end, struct barge_logparse_events *out)
{
    size_t len;
    _cleanup_free_ char *text = barge_logparse_utf8_clean(raw, raw_len, &len);
    if (!a->start) {
        emit(a, ts, text, len, start, end, out);
        return;
    }
    bool begins = regexec(a->start, text, 0, NULL, 0) == 0;
    if (begins || !a->ev_active) {
        flush_event(a, out);
        a->ev_active = true;
        a->ev_ts = ts;
        a->ev_start = start;
        a->ev.len = 0;
        barge_buf_addn(&a->ev, text, len);
    } else {
        barge_buf_addn(&a->ev, "\n", 1);
        barge_buf_addn(&a->ev, text, len);
    }
    a->ev_end = end;
    if (a->ev.len >= a->max_event)
        flush_event(a, out);
}

void barge_logparse_assembler_feed(struct barge_logparse_assembler *a,
                                   const struct barge_logparse_record *r, uint64_t start,
                                   uint64_t end, struct barge_logparse_events *out)
{
    if (!a->line_active) {
        a->line_active = true;
        a->line_ts = r->timestamp;
        a->line_start = start;
        a->line.len = 0;
    }
    barge_buf_addn(&a->line, r->text, r->len);
    a->line_end = end;
    /* A line without end would grow without bound: past one event's worth,
     * it is cut at this record (a boundary a restart can resume from). */
    if (r->partial && a->line.len < a->max_event)
        return;
    a->line_active = false;
    take_line(a, a->line.data, a->line.len, a->line_ts, a->line_start, end, out);
}

void barge_logparse_assembler_flush(struct barge_logparse_assembler *a,
                                    struct barge_logparse_events *out)
{
    if (a->line_active) {
        a->line_active = false;
        take_line(a, a->line.data, a->line.len, a->line_ts, a->line_start, a->line_end, out);
    }
    flush_event(a, out);
}
