/* Digests, names, tags, /v2/ paths and ranges (see ref.h). */
#include "registry/ref.h"

#include <openssl/evp.h>
#include <string.h>

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

enum barge_digest_check barge_digest_check(const char *s)
{
    if (!s)
        return BARGE_DIGEST_MALFORMED;
    const char *colon = strchr(s, ':');
    if (!colon || colon == s || colon[1] == '\0')
        return BARGE_DIGEST_MALFORMED;
    /* algorithm: [a-z0-9]+([+._-][a-z0-9]+)*, per the OCI image spec */
    for (const char *p = s; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("+._-", *p)))
            return BARGE_DIGEST_MALFORMED;
    size_t alg_len = (size_t)(colon - s), hex_len = strlen(colon + 1);
    if (alg_len == 6 && memcmp(s, "sha256", 6) == 0)
        return hex_len == 64 && is_lower_hex(colon + 1, 64) ? BARGE_DIGEST_OK
                                                            : BARGE_DIGEST_MALFORMED;
    for (const char *p = colon + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '=' || *p == '_' || *p == '-'))
            return BARGE_DIGEST_MALFORMED;
    return BARGE_DIGEST_UNSUPPORTED;
}

void barge_digest_of(const void *data, size_t len, char out[BARGE_DIGEST_MAX])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[71] = '\0';
}

bool barge_digest_matches(const char *digest, const void *data, size_t len)
{
    if (barge_digest_check(digest) != BARGE_DIGEST_OK)
        return false;
    char got[BARGE_DIGEST_MAX];
    barge_digest_of(data, len, got);
    return strcmp(got, digest) == 0;
}

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: alnum runs joined by '.', '_', '__' or '-'+. */
static bool component_valid(const char *s, size_t n)
{
    if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n;) {
        if (lower_alnum(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !lower_alnum(s[j]))
            j++;
        size_t sep = j - i;
        bool ok = (sep == 1 && (s[i] == '.' || s[i] == '_')) ||
                  (sep == 2 && s[i] == '_' && s[i + 1] == '_') || strspn(s + i, "-") >= sep;
        if (!ok)
            return false;
        i = j;
    }
    return true;
}

bool barge_registry_repo_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 2 || n > 256)
        return false;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (!component_valid(p, len))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

bool barge_registry_tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tag[i];
        bool word =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!word && (i == 0 || (c != '.' && c != '-')))
            return false;
    }
    return true;
}

static bool cut_suffix(const char *s, size_t len, const char *suffix, size_t *rest)
{
    size_t sl = strlen(suffix);
    if (len <= sl || memcmp(s + len - sl, suffix, sl) != 0)
        return false;
    *rest = len - sl;
    return true;
}

int barge_registry_path_parse(const char *path, struct barge_registry_path *out)
{
    memset(out, 0, sizeof(*out));
    if (!barge_str_has_prefix(path, "/v2/"))
        return -1;
    const char *p = path + 4;
    size_t len = strlen(p), rest;
    if (len == 0) {
        out->route = BARGE_REG_BASE;
        return 0;
    }
    if (strcmp(p, "token") == 0) {
        out->route = BARGE_REG_TOKEN;
        return 0;
    }
    if (strcmp(p, "_catalog") == 0) {
        out->route = BARGE_REG_CATALOG;
        return 0;
    }
    if (cut_suffix(p, len, "/tags/list", &rest)) {
        out->route = BARGE_REG_TAGS;
        out->name = barge_xstrndup(p, rest);
        return 0;
    }
    if (cut_suffix(p, len, "/blobs/uploads/", &rest) ||
        cut_suffix(p, len, "/blobs/uploads", &rest)) {
        out->route = BARGE_REG_UPLOADS;
        out->name = barge_xstrndup(p, rest);
        return 0;
    }
    const char *slash = strrchr(p, '/');
    if (!slash || slash[1] == '\0')
        return -1;
    size_t before = (size_t)(slash - p);
    static const struct {
        const char *suffix;
        enum barge_registry_route route;
    } kinds[] = {
        {"/manifests", BARGE_REG_MANIFEST},
        {"/blobs/uploads", BARGE_REG_UPLOAD},
        {"/blobs", BARGE_REG_BLOB},
    };
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(kinds); i++) {
        if (cut_suffix(p, before, kinds[i].suffix, &rest)) {
            out->route = kinds[i].route;
            out->name = barge_xstrndup(p, rest);
            out->ref = barge_xstrdup(slash + 1);
            return 0;
        }
    }
    return -1;
}

void barge_registry_path_release(struct barge_registry_path *p)
{
    free(p->name);
    free(p->ref);
    p->name = p->ref = NULL;
}

/* Parses a decimal uint64 of at most 19 digits at *s, advancing it. */
static bool parse_u64(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9') {
        if (++n > 19)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (n == 0)
        return false;
    *s = p;
    *out = v;
    return true;
}

int barge_registry_range_parse(const char *header, uint64_t size, uint64_t *start, uint64_t *end)
{
    if (!header)
        return 0;
    const char *p = header;
    while (*p == ' ')
        p++;
    if (strncmp(p, "bytes=", 6) != 0)
        return 0;
    p += 6;
    if (strchr(p, ','))
        return 0;
    uint64_t a = 0, b = 0;
    if (*p == '-') {
        p++;
        if (!parse_u64(&p, &b) || *p)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *start = b >= size ? 0 : size - b;
        *end = size - 1;
        return 1;
    }
    if (!parse_u64(&p, &a) || *p != '-')
        return 0;
    p++;
    bool open_end = *p == '\0';
    if (!open_end && (!parse_u64(&p, &b) || *p || b < a))
        return 0;
    if (a >= size)
        return -1;
    *start = a;
    *end = open_end || b >= size ? size - 1 : b;
    return 1;
}

int barge_registry_content_range_parse(const char *header, uint64_t *start, uint64_t *end)
{
    const char *p = header;
    while (*p == ' ')
        p++;
    if (strncmp(p, "bytes", 5) == 0 && (p[5] == ' ' || p[5] == '='))
        p += 6;
    if (!parse_u64(&p, start) || *p != '-')
        return -1;
    p++;
    if (!parse_u64(&p, end) || (*p && *p != '/') || *end < *start)
        return -1;
    return 0;
}
