/* Certificate Manager as the rest of barged sees it: where the API
 * (api/acm.c) stores an imported certificate and how the load balancers'
 * data plane (control/lb.c) gets the PEM HAProxy serves, with its private
 * key opened from the sealed copy in the store. */
#ifndef BARGE_SVC_ACM_H
#define BARGE_SVC_ACM_H

#include <jansson.h>

#include "common/crypto.h"
#include "common/error.h"
#include "store/store.h"

/* One document per certificate and region, keyed by the certificate id (the
 * UUID of its ARN): "arn", the parsed facts of the certificate, "certificate"
 * and "chain" (PEM), "key" (the private key's PEM sealed under the master key,
 * bound to barge_acm_key_aad), "seq" (counts imports). */
#define ACM_KIND_CERT "acm-cert"

/* The store key of the certificate arn (any region: the caller checks), or
 * NULL when arn is not an ACM certificate ARN. The caller frees it. */
char *barge_acm_cert_key(const char *arn);
/* The associated data the private key of the certificate arn is sealed with;
 * the caller frees it. */
char *barge_acm_key_aad(const char *arn);
/* The certificate arn of the transaction's region in *doc (the caller owns
 * it): 1, 0 when there is none, -1 with err set. */
int barge_acm_cert_get(struct barge_tx *tx, const char *arn, json_t **doc,
                       struct barge_error **err);
/* The PEM HAProxy loads for doc: certificate, chain and private key, in
 * *pem (*len bytes; the caller wipes and frees it with barge_crypto_free),
 * or -1 with err set. */
int barge_acm_cert_pem(const struct barge_crypto_key *master, const json_t *doc, char **pem,
                       size_t *len, struct barge_error **err);

#endif
