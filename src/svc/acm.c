/* The stored form of Certificate Manager's certificates (svc/acm.h), shared by
 * the API and the load balancers' data plane. */
#include "svc/acm.h"

#include <stdio.h>
#include <string.h>

#include "common/arn.h"
#include "common/json.h"
#include "common/util.h"

char *barge_acm_cert_key(const char *arn)
{
    struct barge_arn a = {0};
    char *out = NULL;
    if (arn && barge_arn_parse(arn, &a) == 0 && barge_streq(a.service, "acm") && a.resource &&
        barge_str_has_prefix(a.resource, "certificate/") && strlen(a.resource + 12) == 36 &&
        strspn(a.resource + 12, "0123456789abcdef-") == 36)
        out = barge_xstrdup(a.resource + 12);
    barge_arn_release(&a);
    return out;
}

char *barge_acm_key_aad(const char *arn)
{
    return barge_xasprintf("acm|%s", arn);
}

int barge_acm_cert_get(struct barge_tx *tx, const char *arn, json_t **doc, struct barge_error **err)
{
    *doc = NULL;
    _cleanup_free_ char *key = barge_acm_cert_key(arn);
    if (!key)
        return 0;
    json_t *d = NULL;
    int r = barge_store_get(tx, ACM_KIND_CERT, key, &d, err);
    if (r <= 0)
        return r;
    /* Another region's certificate has the same id only by its ARN. */
    if (!barge_streq(barge_json_str(d, "arn", ""), arn)) {
        json_decref(d);
        return 0;
    }
    *doc = d;
    return 1;
}

int barge_acm_cert_pem(const struct barge_crypto_key *master, const json_t *doc, char **pem,
                       size_t *len, struct barge_error **err)
{
    _cleanup_free_ char *aad = barge_acm_key_aad(barge_json_str(doc, "arn", ""));
    char *key = NULL;
    size_t key_len = 0;
    if (barge_crypto_open(master, barge_json_str(doc, "key", ""), aad, &key, &key_len, err) < 0)
        return -1;
    const char *cert = barge_json_str(doc, "certificate", "");
    const char *chain = barge_json_str(doc, "chain", "");
    size_t n = strlen(cert) + strlen(chain) + key_len + 3;
    char *out = barge_xmalloc(n + 1);
    int w = snprintf(out, n + 1, "%s%s%s%s%s", cert, barge_str_has_suffix(cert, "\n") ? "" : "\n",
                     chain, *chain && !barge_str_has_suffix(chain, "\n") ? "\n" : "", key);
    barge_crypto_free(key, key_len);
    *pem = out;
    *len = (size_t)w;
    return 0;
}
