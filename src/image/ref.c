/* Image references: Docker's grammar and normalisation ("busybox" is
 * docker.io/library/busybox:latest). Kept strict because a reference ends up in
 * URLs and cache paths: anything outside the grammar is refused here rather
 * than escaped later. */
#include <ctype.h>
#include <string.h>

#include "image/image.h"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool valid_component(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        /* a separator, then at least one alphanumeric */
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == n || !is_lower_alnum(s[i]))
            return false;
    }
    return true;
}

static bool valid_repository(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 255)
        return false;
    const char *p = s;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!valid_component(p, n))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

static bool valid_tag(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 128)
        return false;
    if (!(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

static bool valid_digest(const char *s)
{
    if (!barge_str_has_prefix(s, "sha256:") || strlen(s) != 7 + 64)
        return false;
    for (const char *p = s + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* host[:port] where host is a DNS name, an IPv4 address or [IPv6]. */
static bool valid_domain(const char *s)
{
    const char *p = s;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || close == p + 1)
            return false;
        for (const char *q = p + 1; q < close; q++)
            if (!(isxdigit((unsigned char)*q) || *q == ':' || *q == '.'))
                return false;
        p = close + 1;
    } else {
        if (!isalnum((unsigned char)*p))
            return false;
        while (isalnum((unsigned char)*p) || *p == '.' || *p == '-')
            p++;
        if (p[-1] == '.' || p[-1] == '-')
            return false;
    }
    if (*p == ':') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

static bool is_domain_component(const char *s, size_t n)
{
    if (n == 9 && strncmp(s, "localhost", 9) == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' || s[i] == ':' || (s[i] >= 'A' && s[i] <= 'Z'))
            return true;
    return false;
}

int barge_image_ref_parse(const char *reference, struct barge_image_ref *out,
                          struct barge_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!reference || !*reference)
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid reference format: empty");
    if (strlen(reference) > 1024)
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid reference format: too long");

    _cleanup_free_ char *work = barge_xstrdup(reference);
    char *at = strchr(work, '@');
    if (at) {
        *at = '\0';
        if (!valid_digest(at + 1))
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "invalid reference format '%s': digest must be sha256:<64 "
                                   "lower-case hex>",
                                   reference);
        out->digest = barge_xstrdup(at + 1);
    }

    char *name = work;
    const char *slash = strchr(name, '/');
    if (slash && is_domain_component(name, (size_t)(slash - name))) {
        out->domain = barge_xstrndup(name, (size_t)(slash - name));
        name += slash - name + 1;
    }
    /* A ':' after the last '/' starts the tag (a ':' before it is a port). */
    char *last_slash = strrchr(name, '/');
    char *colon = strrchr(last_slash ? last_slash : name, ':');
    if (colon) {
        *colon = '\0';
        if (!valid_tag(colon + 1)) {
            barge_image_ref_release(out);
            return barge_error_set(err, BARGE_ERR_INVALID, "invalid reference format '%s': bad tag",
                                   reference);
        }
        out->tag = barge_xstrdup(colon + 1);
    }

    if (!out->domain || strcmp(out->domain, "index.docker.io") == 0) {
        free(out->domain);
        out->domain = barge_xstrdup("docker.io");
    }
    if (!valid_domain(out->domain)) {
        barge_image_ref_release(out);
        return barge_error_set(err, BARGE_ERR_INVALID,
                               "invalid reference format '%s': bad registry host", reference);
    }
    if (strcmp(out->domain, "docker.io") == 0 && !strchr(name, '/'))
        out->repository = barge_xasprintf("library/%s", name);
    else
        out->repository = barge_xstrdup(name);
    if (!valid_repository(out->repository)) {
        bool upper = false;
        for (const char *p = name; *p; p++)
            upper |= (*p >= 'A' && *p <= 'Z');
        barge_image_ref_release(out);
        if (upper)
            return barge_error_set(err, BARGE_ERR_INVALID,
                                   "invalid reference format '%s': repository name must be "
                                   "lowercase",
                                   reference);
        return barge_error_set(err, BARGE_ERR_INVALID, "invalid reference format '%s'", reference);
    }
    if (!out->tag && !out->digest)
        out->tag = barge_xstrdup("latest");
    return 0;
}

void barge_image_ref_release(struct barge_image_ref *ref)
{
    if (!ref)
        return;
    free(ref->domain);
    free(ref->repository);
    free(ref->tag);
    free(ref->digest);
    memset(ref, 0, sizeof(*ref));
}

char *barge_image_ref_format(const struct barge_image_ref *ref)
{
    return barge_xasprintf("%s/%s%s%s%s%s", ref->domain, ref->repository, ref->tag ? ":" : "",
                           ref->tag ? ref->tag : "", ref->digest ? "@" : "",
                           ref->digest ? ref->digest : "");
}
