/* JSON helpers (see json.h). */
#include "common/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *barge_json_str(const json_t *obj, const char *key, const char *dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

json_int_t barge_json_int(const json_t *obj, const char *key, json_int_t dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

bool barge_json_bool(const json_t *obj, const char *key, bool dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

json_t *barge_json_array(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_array(v) ? v : NULL;
}

json_t *barge_json_object(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_object(v) ? v : NULL;
}

json_t *barge_json_find(const json_t *list, const char *key, const char *value)
{
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)list, i, c)
    {
        if (barge_streq(barge_json_str(c, key, NULL), value))
            return c;
    }
    return NULL;
}

bool barge_json_has_string(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)list, i, v)
    {
        if (barge_streq(json_string_value(v), s))
            return true;
    }
    return false;
}

/* A compact encoder writing exactly what json_dumps(JSON_COMPACT |
 * JSON_ENCODE_ANY) writes, for the common case, at a fraction of its cost:
 * jansson's dumper formats every object's address with snprintf and enters
 * it in a hashtable to detect cycles, and formats every integer with
 * snprintf, which made encoding an API answer cost more than finding it.
 * Anything unusual (invalid UTF-8, deep nesting, which includes cycles) is
 * left to jansson, so both agree on every answer. */
struct enc {
    char *buf;
    size_t len, cap;
};

static __attribute__((noinline)) void enc_grow(struct enc *e, size_t n)
{
    /* Most answers fit the first buffer. */
    size_t cap = e->cap ? e->cap : 2048;
    while (cap < e->len + n)
        cap *= 2;
    char *b = realloc(e->buf, cap);
    if (!b)
        abort();
    e->buf = b;
    e->cap = cap;
}

static inline void enc_reserve(struct enc *e, size_t n)
{
    if (e->len + n > e->cap)
        enc_grow(e, n);
}

static void enc_add(struct enc *e, const char *s, size_t n)
{
    enc_reserve(e, n);
    memcpy(e->buf + e->len, s, n);
    e->len += n;
}

static void enc_addc(struct enc *e, char c)
{
    enc_reserve(e, 1);
    e->buf[e->len++] = c;
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), 0 when it is
 * not one (the same rules as jansson's utf8_check_full). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

/* Whether none of the 8 bytes in w needs more than copying into a JSON
 * string: no control character, '"', '\\' or byte of a multi-byte sequence.
 * Each term sets a byte's high bit for one kind (the first for bytes below
 * 0x20, the next two for the bytes equal to '"' and '\\', the last for
 * bytes from 0x80); a borrow may also mark a byte after a marked one, which
 * only sends the word to the byte-wise path. */
static inline bool word_plain(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t marked = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w;
    return (marked & highs) == 0;
}

static bool enc_string(struct enc *e, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    enc_reserve(e, n + 2);
    e->buf[e->len++] = '"';
    size_t run = 0; /* bytes of s[i - run, i) still to copy */
    for (size_t i = 0; i < n;) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (word_plain(w)) {
                i += 8, run += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++, run++;
            continue;
        }
        if (c >= 0x80) {
            size_t m = utf8_len(s + i, n - i);
            if (!m)
                return false;
            i += m, run += m;
            continue;
        }
        enc_add(e, str + i - run, run);
        run = 0;
        char esc[6] = {'\\', 0};
        size_t esc_len = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        enc_add(e, esc, esc_len);
        i++;
    }
    enc_add(e, str + n - run, run);
    enc_addc(e, '"');
    return true;
}

static void enc_integer(struct enc *e, json_int_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    enc_add(e, tmp + i, sizeof(tmp) - i);
}

/* Formatting a double costs more than the rest of a timestamp's encoding,
 * and answers repeat the same few timestamps: each thread keeps the texts of
 * the last ones it wrote, by their bits. */
#define REAL_TEXTS 64
struct real_text {
    uint64_t bits;
    uint8_t len; /* 0: empty */
    char text[31];
};
static __thread struct real_text real_texts[REAL_TEXTS];

/* As jansson's jsonp_dtostr with its default precision of 17. */
static bool enc_real(struct enc *e, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    struct real_text *rt = &real_texts[((bits ^ (bits >> 29)) * 0x9E3779B97F4A7C15ULL) >> 58];
    if (rt->len && rt->bits == bits) {
        enc_add(e, rt->text, rt->len);
        return true;
    }
    char tmp[48];
    int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof(tmp) - 3 || strpbrk(tmp, "in")) /* inf, nan */
        return false;
    size_t len = (size_t)n;
    if (!strchr(tmp, '.') && !strchr(tmp, 'e')) {
        memcpy(tmp + len, ".0", 3);
        len += 2;
    }
    char *start = strchr(tmp, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - tmp) + 1);
            len -= (size_t)(end - start);
        }
    }
    enc_add(e, tmp, len);
    if (len < sizeof(rt->text)) {
        rt->bits = bits;
        rt->len = (uint8_t)len;
        memcpy(rt->text, tmp, len);
    }
    return true;
}

static bool enc_value(struct enc *e, const json_t *j, int depth)
{
    if (depth > 2048)
        return false;
    switch (json_typeof(j)) {
    case JSON_NULL:
        enc_add(e, "null", 4);
        return true;
    case JSON_TRUE:
        enc_add(e, "true", 4);
        return true;
    case JSON_FALSE:
        enc_add(e, "false", 5);
        return true;
    case JSON_INTEGER:
        enc_integer(e, json_integer_value(j));
        return true;
    case JSON_REAL:
        return enc_real(e, json_real_value(j));
    case JSON_STRING:
        return enc_string(e, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        enc_addc(e, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                enc_addc(e, ',');
            if (!enc_value(e, json_array_get(j, i), depth + 1))
                return false;
        }
        enc_addc(e, ']');
        return true;
    }
    case JSON_OBJECT: {
        enc_addc(e, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            if (!first)
                enc_addc(e, ',');
            first = false;
            if (!enc_string(e, json_object_iter_key(it), json_object_iter_key_len(it)))
                return false;
            enc_addc(e, ':');
            if (!enc_value(e, json_object_iter_value(it), depth + 1))
                return false;
        }
        enc_addc(e, '}');
        return true;
    }
    }
    return false;
}

char *barge_json_dump(const json_t *j)
{
    struct enc e = {0};
    if (j && enc_value(&e, j, 0)) {
        enc_addc(&e, '\0');
        return e.buf;
    }
    free(e.buf);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

void barge_json_set_str(json_t *obj, const char *key, const char *value)
{
    if (value)
        json_object_set_new(obj, key, json_string(value));
}
