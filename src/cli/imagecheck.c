/* Whether an image exists in its registry, for verify: one manifest HEAD (GET
 * where HEAD is refused) over the OCI distribution API, with the registry's
 * authentication: anonymous, Basic, or a Bearer token fetched from the realm
 * its challenge names. ECR registries (and barged's, which the ECR endpoint
 * serves) get their credentials from ECR GetAuthorizationToken, as ECS
 * agents do. Nothing is downloaded but the manifest's headers. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "common/httpc.h"
#include "common/json.h"
#include "image/image.h"

static int http(const char *method, const char *url, const char *auth,
                struct barge_httpc_response *r, struct barge_error **err)
{
    struct barge_kv hdrs[] = {
        {"Accept", "application/vnd.oci.image.index.v1+json, "
                   "application/vnd.oci.image.manifest.v1+json, "
                   "application/vnd.docker.distribution.manifest.list.v2+json, "
                   "application/vnd.docker.distribution.manifest.v2+json"},
        {"Authorization", auth},
    };
    struct barge_httpc_request rq = {
        .method = method,
        .url = url,
        .headers = hdrs,
        .n_headers = auth ? 2 : 1,
        .timeout_s = 30,
        .max_response = 1 << 20,
        .keep_header = "WWW-Authenticate",
        .peer = "the registry",
    };
    return barge_httpc_perform(NULL, &rq, r, err);
}

/* The value of param in a challenge such as Bearer realm="x",service="y". */
static char *challenge_param(const char *ch, const char *param)
{
    size_t pl = strlen(param);
    for (const char *p = ch; (p = strstr(p, param)); p += pl) {
        if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[pl] == '=') {
            const char *v = p + pl + 1;
            if (*v == '"') {
                const char *end = strchr(v + 1, '"');
                return end ? barge_xstrndup(v + 1, (size_t)(end - v - 1)) : NULL;
            }
            return barge_xstrndup(v, strcspn(v, ","));
        }
    }
    return NULL;
}

static bool loopback(const char *domain)
{
    return barge_str_has_prefix(domain, "localhost") || barge_str_has_prefix(domain, "127.") ||
           barge_str_has_prefix(domain, "[::1]");
}

/* "Basic <base64 AWS:password>" from ECR GetAuthorizationToken, or NULL when
 * the registry is not ECR's (or barged's). */
static char *ecr_auth(struct barge_cli_app *app, const char *domain)
{
    bool ecr = strstr(domain, ".dkr.ecr.") != NULL;
    if (!ecr) {
        _cleanup_error_ struct barge_error *e = NULL;
        _cleanup_free_ char *ep = barge_aws_endpoint(app->aws, "ecr", &e);
        const char *host = ep ? strstr(ep, "://") : NULL;
        if (host) {
            host += 3;
            size_t n = strcspn(host, "/");
            ecr = strlen(domain) == n && strncmp(domain, host, n) == 0;
        }
    }
    if (!ecr)
        return NULL;
    _cleanup_json_ json_t *out = NULL;
    _cleanup_error_ struct barge_error *e = NULL;
    if (barge_cli_call(app, "ecr", "GetAuthorizationToken", NULL, &out, &e) < 0) {
        barge_cli_logl(app, BARGE_CLI_DEBUG, "no ECR token for %s: %s", domain, e->message);
        return NULL;
    }
    const char *tok = barge_json_str(json_array_get(json_object_get(out, "authorizationData"), 0),
                                     "authorizationToken", NULL);
    return tok ? barge_xasprintf("Basic %s", tok) : NULL;
}

int barge_cli_image_check(struct barge_cli_app *app, const char *reference,
                          struct barge_error **err)
{
    struct barge_image_ref ref;
    if (barge_image_ref_parse(reference, &ref, err) < 0)
        return -1;
    const char *domain = strcmp(ref.domain, "docker.io") == 0 ? "registry-1.docker.io" : ref.domain;
    bool plain = loopback(domain);
    if (!plain) {
        /* barged's registry shares the endpoint, plain HTTP included. */
        _cleanup_error_ struct barge_error *e = NULL;
        _cleanup_free_ char *ep = barge_aws_endpoint(app->aws, "ecr", &e);
        if (ep && barge_str_has_prefix(ep, "http://") && strstr(ep + 7, domain) == ep + 7)
            plain = true;
    }
    _cleanup_free_ char *url = barge_xasprintf("%s://%s/v2/%s/manifests/%s",
                                               plain ? "http" : "https", domain, ref.repository,
                                               ref.digest ? ref.digest
                                               : ref.tag  ? ref.tag
                                                          : "latest");
    _cleanup_free_ char *basic = ecr_auth(app, domain);
    _cleanup_free_ char *auth = basic ? barge_xstrdup(basic) : NULL;
    int rc = -1;
    struct barge_httpc_response r;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (http("HEAD", url, auth, &r, err) < 0)
            break;
        if (r.status == 405) {
            barge_httpc_response_release(&r);
            if (http("GET", url, auth, &r, err) < 0)
                break;
        }
        if (r.status == 200) {
            rc = 0;
            barge_httpc_response_release(&r);
            break;
        }
        if (r.status == 401 && r.header && attempt < 2) {
            const char *ch = r.header;
            if (strncasecmp(ch, "Bearer", 6) == 0) {
                _cleanup_free_ char *realm = challenge_param(ch, "realm");
                _cleanup_free_ char *service = challenge_param(ch, "service");
                _cleanup_free_ char *scope = challenge_param(ch, "scope");
                if (!scope)
                    scope = barge_xasprintf("repository:%s:pull", ref.repository);
                _cleanup_free_ char *es = barge_aws_uri_encode(service ? service : "", false);
                _cleanup_free_ char *esc = barge_aws_uri_encode(scope, false);
                _cleanup_free_ char *turl =
                    barge_xasprintf("%s%sservice=%s&scope=%s", realm ? realm : "",
                                    realm && strchr(realm, '?') ? "&" : "?", es, esc);
                struct barge_httpc_response tr;
                barge_httpc_response_release(&r);
                if (!realm || http("GET", turl, basic, &tr, err) < 0) {
                    if (!realm)
                        barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                                        "the registry's challenge has no realm");
                    break;
                }
                _cleanup_json_ json_t *tj = tr.body ? json_loads(tr.body, 0, NULL) : NULL;
                const char *tok = barge_json_str(tj, "token", NULL);
                if (!tok)
                    tok = barge_json_str(tj, "access_token", NULL);
                if (tr.status != 200 || !tok) {
                    barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                                    "the registry refused a token (HTTP %ld)", tr.status);
                    barge_httpc_response_release(&tr);
                    break;
                }
                free(auth);
                auth = barge_xasprintf("Bearer %s", tok);
                barge_httpc_response_release(&tr);
                continue;
            }
            if (strncasecmp(ch, "Basic", 5) == 0 && basic && (!auth || strcmp(auth, basic) != 0)) {
                free(auth);
                auth = barge_xstrdup(basic);
                barge_httpc_response_release(&r);
                continue;
            }
        }
        if (r.status == 404)
            barge_error_set(err, BARGE_ERR_NOT_FOUND, "%s is not found in %s", reference, domain);
        else if (r.status == 401 || r.status == 403)
            barge_error_set(err, BARGE_ERR_ACCESS_DENIED,
                            "%s: the registry denied access (HTTP %ld)", reference, r.status);
        else
            barge_error_set(err, BARGE_ERR_IO, "%s: the registry answered HTTP %ld", reference,
                            r.status);
        barge_httpc_response_release(&r);
        break;
    }
    barge_image_ref_release(&ref);
    return rc;
}
