/* Certificate Manager (AWS JSON 1.1, target prefix CertificateManager), the
 * part load balancers need: imported certificates. ImportCertificate (also
 * onto an existing ARN, which replaces the certificate in place),
 * DescribeCertificate, ListCertificates, GetCertificate, DeleteCertificate
 * and the tag operations. barge issues no certificates of its own.
 *
 * OpenSSL reads what is imported: the certificate must parse, be valid now,
 * use a key type ACM takes, and match the private key. The key is sealed
 * under the master key (common/crypto.h) before it is stored and is never
 * answered or logged; only the load balancers' data plane opens it
 * (svc/acm.h). A certificate a listener uses (svc/elbv2.h) cannot be
 * deleted. */
#include "svc/acm.h"

#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "api/server.h"
#include "common/arn.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "svc/elbv2.h"

#define MAX_TAGS 50

static int fail(struct barge_error **err, int code, const char *type, const char *fmt, ...)
    BARGE_PRINTF(4, 5);
static int fail(struct barge_error **err, int code, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = barge_xvasprintf(fmt, ap);
    va_end(ap);
    return barge_error_set_type(err, code, type, "%s", msg);
}

#define invalid_cert(err, ...) fail(err, BARGE_ERR_INVALID, "ValidationException", __VA_ARGS__)

/* ---- reading what is imported ---- */

static void x509_free(X509 **x)
{
    X509_free(*x);
}
static void pkey_free(EVP_PKEY **k)
{
    EVP_PKEY_free(*k);
}
static void bio_free(BIO **b)
{
    BIO_free(*b);
}
#define _cleanup_x509_ __attribute__((cleanup(x509_free)))
#define _cleanup_pkey_ __attribute__((cleanup(pkey_free)))
#define _cleanup_bio_  __attribute__((cleanup(bio_free)))

/* A blob member of the input, decoded (the caller frees it), or NULL with
 * err set naming field. */
static char *blob(const json_t *in, const char *field, size_t *len, struct barge_error **err)
{
    const char *b64 = barge_json_str(in, field, NULL);
    unsigned char *raw = b64 ? barge_base64_decode(b64, len) : NULL;
    if (!raw)
        fail(err, BARGE_ERR_INVALID, "InvalidParameterException", "%s must be base64-encoded",
             field);
    return (char *)raw;
}

/* The seconds since the epoch of an ASN.1 time. */
static double epoch_of(const ASN1_TIME *t)
{
    struct tm tm = {0};
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (double)timegm(&tm);
}

/* The text of the first entry nid of name, or NULL; the caller frees it. */
static char *name_entry(const X509_NAME *name, int nid)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0)
        return NULL;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0)
        return NULL;
    char *out = barge_xstrndup((const char *)utf8, (size_t)n);
    OPENSSL_free(utf8);
    return out;
}

/* name as "CN=a,O=b" (RFC 2253 order reversed, as ACM shows it). */
static char *name_text(const X509_NAME *name)
{
    _cleanup_bio_ BIO *b = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    return barge_xstrndup(data ? data : "", n > 0 ? (size_t)n : 0);
}

/* ACM's KeyAlgorithm of key, or NULL for a type ACM does not import. */
static const char *key_algorithm(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "RSA")) {
        switch (EVP_PKEY_get_bits(key)) {
        case 1024:
            return "RSA_1024";
        case 2048:
            return "RSA_2048";
        case 3072:
            return "RSA_3072";
        case 4096:
            return "RSA_4096";
        }
        return NULL;
    }
    char group[64];
    if (EVP_PKEY_is_a(key, "EC") &&
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) == 1) {
        if (strcmp(group, "prime256v1") == 0)
            return "EC_prime256v1";
        if (strcmp(group, "secp384r1") == 0)
            return "EC_secp384r1";
        if (strcmp(group, "secp521r1") == 0)
            return "EC_secp521r1";
    }
    return NULL;
}

/* The DNS names of cert's subjectAltName, after domain (which ACM lists
 * first). */
static json_t *alt_names(X509 *cert, const char *domain)
{
    json_t *out = json_array();
    if (domain)
        json_array_append_new(out, json_string(domain));
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
        _cleanup_free_ char *dns =
            barge_xstrndup((const char *)s, (size_t)ASN1_STRING_length(g->d.dNSName));
        if (!barge_json_has_string(out, dns))
            json_array_append_new(out, json_string(dns));
    }
    GENERAL_NAMES_free(names);
    return out;
}

/* The serial as ACM writes it: lower-case hex bytes joined by ':'. */
static char *serial_text(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    int n = BN_num_bytes(bn);
    unsigned char *bytes = barge_xmalloc(n > 0 ? (size_t)n : 1);
    BN_bn2bin(bn, bytes);
    BN_free(bn);
    char *out = barge_xmalloc(n > 0 ? (size_t)n * 3 : 3);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(out + (i ? 3 * i - 1 : 0), 4, "%s%02x", i ? ":" : "", bytes[i]);
    free(bytes);
    return out;
}

/* Reads one PEM certificate from text; NULL when there is none. */
static X509 *read_cert(BIO *b)
{
    return PEM_read_bio_X509(b, NULL, NULL, NULL);
}

/* Refuses a passphrase: ACM imports unencrypted keys only. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Checks the imported certificate, key and chain and fills doc with what
 * DescribeCertificate shows. */
static int parse_import(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                        const char *chain_pem, size_t chain_len, json_t *doc,
                        struct barge_error **err)
{
    _cleanup_bio_ BIO *cb = BIO_new_mem_buf(cert_pem, (int)cert_len);
    _cleanup_x509_ X509 *cert = read_cert(cb);
    if (!cert)
        return invalid_cert(err, "Unable to parse certificate. Please ensure the certificate is in "
                                 "PEM format.");
    _cleanup_x509_ X509 *extra = read_cert(cb);
    if (extra)
        return invalid_cert(err, "The certificate field contains more than one certificate. You "
                                 "can specify only one certificate in this field.");
    _cleanup_bio_ BIO *kb = BIO_new_mem_buf(key_pem, (int)key_len);
    _cleanup_pkey_ EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL);
    if (!key)
        return invalid_cert(err, "The private key is not supported: it must be an unencrypted "
                                 "PEM RSA or EC private key.");
    const char *alg = key_algorithm(key);
    if (!alg)
        return invalid_cert(err, "The private key is not supported: ACM imports RSA keys of "
                                 "1024, 2048, 3072 or 4096 bits and EC keys on prime256v1, "
                                 "secp384r1 or secp521r1.");
    if (X509_check_private_key(cert, key) != 1)
        return invalid_cert(err, "The private key does not match the public key in the "
                                 "certificate.");
    double nb = epoch_of(X509_get0_notBefore(cert)), na = epoch_of(X509_get0_notAfter(cert));
    double now = barge_now();
    if (na <= now)
        return invalid_cert(err, "The certificate has expired; its NotAfter date has passed.");
    if (nb > now)
        return invalid_cert(err, "The certificate is not valid yet; its NotBefore date is in the "
                                 "future.");
    if (chain_pem) {
        _cleanup_bio_ BIO *chb = BIO_new_mem_buf(chain_pem, (int)chain_len);
        int n = 0;
        X509 *c;
        while ((c = read_cert(chb))) {
            X509_free(c);
            n++;
        }
        if (n == 0)
            return invalid_cert(err, "Unable to parse the certificate chain. Please ensure the "
                                     "chain is in PEM format.");
    }
    _cleanup_free_ char *cn = name_entry(X509_get_subject_name(cert), NID_commonName);
    json_t *sans = alt_names(cert, cn);
    if (!json_array_size(sans)) {
        json_decref(sans);
        return invalid_cert(err, "The certificate names no domain: it has neither a common "
                                 "name nor a DNS subject alternative name.");
    }
    json_object_set_new(doc, "domain", json_incref(json_array_get(sans, 0)));
    json_object_set_new(doc, "sans", sans);
    _cleanup_free_ char *issuer = name_entry(X509_get_issuer_name(cert), NID_organizationName);
    if (!issuer)
        issuer = name_entry(X509_get_issuer_name(cert), NID_commonName);
    _cleanup_free_ char *issuer_text = name_text(X509_get_issuer_name(cert));
    _cleanup_free_ char *subject = name_text(X509_get_subject_name(cert));
    _cleanup_free_ char *serial = serial_text(cert);
    int md = 0, pk = 0;
    const char *md_name = "";
    if (X509_get_signature_info(cert, &md, &pk, NULL, NULL) == 1 && md != NID_undef)
        md_name = OBJ_nid2sn(md);
    _cleanup_free_ char *sig =
        barge_xasprintf("%sWITH%s", md_name, pk == EVP_PKEY_RSA ? "RSA" : "ECDSA");
    for (char *p = sig; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    json_object_set_new(doc, "issuer", json_string(issuer ? issuer : issuer_text));
    json_object_set_new(doc, "subject", json_string(subject));
    json_object_set_new(doc, "serial", json_string(serial));
    json_object_set_new(doc, "signatureAlgorithm", json_string(sig));
    json_object_set_new(doc, "keyAlgorithm", json_string(alg));
    json_object_set_new(doc, "notBefore", json_real(nb));
    json_object_set_new(doc, "notAfter", json_real(na));
    return 0;
}

/* ---- the store ---- */

static char *cert_arn(struct barge_api_ctx *ctx, const char *id)
{
    _cleanup_free_ char *res = barge_xasprintf("certificate/%s", id);
    return barge_arn_make("acm", barge_server_region(ctx->srv), ctx->srv->cfg.account_id, res);
}

/* The certificate the input's CertificateArn names, in *doc and its store
 * key in *key (both the caller's). */
static int load(struct barge_api_ctx *ctx, struct barge_tx *tx, const json_t *in, json_t **doc,
                char **key, struct barge_error **err)
{
    const char *arn = barge_json_str(in, "CertificateArn", "");
    *key = barge_acm_cert_key(arn);
    if (!*key)
        return fail(err, BARGE_ERR_INVALID, "InvalidArnException",
                    "'%s' is not a valid certificate ARN", arn);
    struct barge_arn a = {0};
    bool here = barge_arn_parse(arn, &a) == 0 &&
                barge_streq(a.region, barge_server_region(ctx->srv)) &&
                barge_streq(a.account, ctx->srv->cfg.account_id);
    barge_arn_release(&a);
    int r = here ? barge_acm_cert_get(tx, arn, doc, err) : 0;
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(err, BARGE_ERR_NOT_FOUND, "ResourceNotFoundException",
                    "Could not find certificate %s.", arn);
    return 0;
}

/* The load balancers whose listeners use the certificate arn. */
static json_t *in_use_by(struct barge_tx *tx, const char *arn, struct barge_error **err)
{
    _cleanup_json_ json_t *all = barge_elb_scan_all(tx, ELB_KIND_LISTENER, "", err);
    if (!all)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(all, i, l)
    {
        const char *lb = barge_json_str(l, "LoadBalancerArn", "");
        if (barge_elb_listener_uses_cert(l, arn) && !barge_json_has_string(out, lb))
            json_array_append_new(out, json_string(lb));
    }
    return out;
}

static const char *status_of(const json_t *doc)
{
    return json_number_value(json_object_get(doc, "notAfter")) <= barge_now() ? "EXPIRED"
                                                                              : "ISSUED";
}

static json_t *detail(const json_t *doc, json_t *users)
{
    return json_pack(
        "{s:s, s:s, s:O, s:s, s:s, s:s, s:s, s:O, s:O, s:O, s:O, s:s, s:s, s:s, "
        "s:o, s:s, s:{s:s}}",
        "CertificateArn", barge_json_str(doc, "arn", ""), "DomainName",
        barge_json_str(doc, "domain", ""), "SubjectAlternativeNames", json_object_get(doc, "sans"),
        "Serial", barge_json_str(doc, "serial", ""), "Subject", barge_json_str(doc, "subject", ""),
        "Issuer", barge_json_str(doc, "issuer", ""), "SignatureAlgorithm",
        barge_json_str(doc, "signatureAlgorithm", ""), "CreatedAt",
        json_object_get(doc, "createdAt"), "ImportedAt", json_object_get(doc, "importedAt"),
        "NotBefore", json_object_get(doc, "notBefore"), "NotAfter",
        json_object_get(doc, "notAfter"), "KeyAlgorithm", barge_json_str(doc, "keyAlgorithm", ""),
        "Status", status_of(doc), "Type", "IMPORTED", "InUseBy", users, "RenewalEligibility",
        "INELIGIBLE", "Options", "CertificateTransparencyLoggingPreference", "ENABLED");
}

static int check_tags(const json_t *tags, struct barge_error **err)
{
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)tags, i, t)
    {
        const char *k = barge_json_str(t, "Key", "");
        if (strncasecmp(k, "aws:", 4) == 0)
            return fail(err, BARGE_ERR_INVALID, "InvalidTagException",
                        "Tag key '%s' is invalid: the 'aws:' prefix is reserved", k);
    }
    return 0;
}

/* ---- operations ---- */

static int import_certificate(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    const char *reimport = barge_json_str(in, "CertificateArn", NULL);
    json_t *tags = barge_json_array(in, "Tags");
    if (reimport && tags)
        return fail(err, BARGE_ERR_INVALID, "InvalidParameterException",
                    "Tags cannot be specified when re-importing certificate '%s'", reimport);
    if (check_tags(tags, err) < 0)
        return -1;
    size_t cert_len = 0, key_len = 0, chain_len = 0;
    _cleanup_free_ char *cert = blob(in, "Certificate", &cert_len, err);
    if (!cert)
        return -1;
    char *key = blob(in, "PrivateKey", &key_len, err);
    if (!key)
        return -1;
    _cleanup_free_ char *chain = NULL;
    if (json_object_get(in, "CertificateChain") &&
        !(chain = blob(in, "CertificateChain", &chain_len, err))) {
        barge_crypto_free(key, key_len);
        return -1;
    }
    _cleanup_json_ json_t *facts = json_object();
    int r = parse_import(cert, cert_len, key, key_len, chain, chain_len, facts, err);
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *skey = NULL, *arn = NULL;
    if (r == 0 && barge_store_begin(ctx->srv->store, true, &tx, err) < 0)
        r = -1;
    if (r == 0 && reimport) {
        r = load(ctx, tx, in, &doc, &skey, err);
        arn = barge_xstrdup(reimport);
    } else if (r == 0) {
        char uuid[37];
        barge_id_uuid(uuid);
        skey = barge_xstrdup(uuid);
        arn = cert_arn(ctx, uuid);
        doc = json_pack("{s:s, s:f, s:[], s:I}", "arn", arn, "createdAt", barge_now(), "tags",
                        "seq", (json_int_t)0);
        if (tags)
            barge_api_tags_merge(doc, tags);
    }
    if (r < 0) {
        barge_crypto_free(key, key_len);
        return -1;
    }
    _cleanup_free_ char *aad = barge_acm_key_aad(arn);
    _cleanup_free_ char *sealed = barge_crypto_seal(&ctx->srv->master_key, key, key_len, aad);
    barge_crypto_free(key, key_len);
    json_object_update(doc, facts);
    json_object_set_new(doc, "certificate", json_stringn(cert, cert_len));
    if (chain)
        json_object_set_new(doc, "chain", json_stringn(chain, chain_len));
    else
        json_object_del(doc, "chain");
    json_object_set_new(doc, "key", json_string(sealed));
    json_object_set_new(doc, "importedAt", json_real(barge_now()));
    json_object_set_new(doc, "seq", json_integer(barge_json_int(doc, "seq", 0) + 1));
    if (!json_is_string(json_object_get(doc, "certificate")) ||
        (chain && !json_is_string(json_object_get(doc, "chain"))))
        return invalid_cert(err, "The certificate or its chain is not valid UTF-8 text.");
    if (barge_store_put(tx, ACM_KIND_CERT, skey, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("acm: %s certificate %s for %s", reimport ? "re-imported" : "imported", arn,
               barge_json_str(doc, "domain", ""));
    /* Listeners using it get the new certificate on the data plane's next
     * pass. */
    if (reimport)
        barge_server_wake(ctx->srv);
    *out = json_pack("{s:s}", "CertificateArn", arn);
    return 0;
}

static int describe_certificate(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                                struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(ctx, tx, in, &doc, &key, err) < 0)
        return -1;
    json_t *users = in_use_by(tx, barge_json_str(doc, "arn", ""), err);
    if (!users)
        return -1;
    *out = json_pack("{s:o}", "Certificate", detail(doc, users));
    return 0;
}

static int get_certificate(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                           struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(ctx, tx, in, &doc, &key, err) < 0)
        return -1;
    *out = json_pack("{s:s}", "Certificate", barge_json_str(doc, "certificate", ""));
    const char *chain = barge_json_str(doc, "chain", NULL);
    if (chain)
        json_object_set_new(*out, "CertificateChain", json_string(chain));
    return 0;
}

struct listing {
    struct barge_api_page *pg;
    struct barge_tx *tx;
    const json_t *statuses, *key_types;
};

static int list_one(const char *key, json_t *doc, void *ud, struct barge_error **err)
{
    struct listing *l = ud;
    const char *status = status_of(doc);
    if (json_array_size(l->statuses) && !barge_json_has_string(l->statuses, status))
        return 0;
    /* ACM lists RSA_1024 and RSA_2048 certificates unless keyTypes names
     * others. */
    const char *alg = barge_json_str(doc, "keyAlgorithm", "");
    if (json_array_size(l->key_types)
            ? !barge_json_has_string(l->key_types, alg)
            : !(strcmp(alg, "RSA_1024") == 0 || strcmp(alg, "RSA_2048") == 0))
        return 0;
    _cleanup_json_ json_t *users = in_use_by(l->tx, barge_json_str(doc, "arn", ""), err);
    if (!users)
        return -1;
    json_t *item = json_pack(
        "{s:s, s:s, s:O, s:b, s:s, s:s, s:b, s:O, s:O, s:O, s:O, s:s, s:[]}", "CertificateArn",
        barge_json_str(doc, "arn", ""), "DomainName", barge_json_str(doc, "domain", ""),
        "SubjectAlternativeNameSummaries", json_object_get(doc, "sans"),
        "HasAdditionalSubjectAlternativeNames", false, "Status", status, "Type", "IMPORTED",
        "InUse", json_array_size(users) > 0, "CreatedAt", json_object_get(doc, "createdAt"),
        "ImportedAt", json_object_get(doc, "importedAt"), "NotBefore",
        json_object_get(doc, "notBefore"), "NotAfter", json_object_get(doc, "notAfter"),
        "KeyAlgorithm", alg, "KeyUsages");
    return barge_api_page_add(l->pg, key, item);
}

static int list_certificates(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                             struct barge_error **err)
{
    json_t *includes = barge_json_object(in, "Includes");
    const char *filters[] = {"extendedKeyUsage", "keyUsage", "managedBy", "exportOption"};
    for (size_t i = 0; i < BARGE_ARRAY_SIZE(filters); i++) {
        if (json_object_get(includes, filters[i]))
            return fail(err, BARGE_ERR_INVALID, "ValidationException",
                        "barge filters certificates by keyTypes only; '%s' is not supported",
                        filters[i]);
    }
    if (json_object_get(in, "SortBy"))
        return fail(err, BARGE_ERR_INVALID, "ValidationException",
                    "barge lists certificates in the order of their ids; SortBy is not "
                    "supported");
    _cleanup_page_ struct barge_api_page pg = {0};
    _cleanup_tx_ struct barge_tx *tx = NULL;
    if (barge_api_page_init(&pg, in, "MaxItems", 1000, 1000, "NextToken", err) < 0 ||
        barge_store_begin(ctx->srv->store, false, &tx, err) < 0)
        return -1;
    struct listing l = {&pg, tx, barge_json_array(in, "CertificateStatuses"),
                        barge_json_array(includes, "keyTypes")};
    if (barge_store_scan(tx, ACM_KIND_CERT, "", pg.after, false, 0, list_one, &l, err) < 0)
        return -1;
    *out = json_object();
    barge_api_page_finish(&pg, *out, "CertificateSummaryList", "NextToken");
    return 0;
}

static int delete_certificate(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                              struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL, *users = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, in, &doc, &key, err) < 0)
        return -1;
    const char *arn = barge_json_str(doc, "arn", "");
    if (!(users = in_use_by(tx, arn, err)))
        return -1;
    if (json_array_size(users))
        return fail(err, BARGE_ERR_CONFLICT, "ResourceInUseException",
                    "Certificate %s is in use by %s", arn,
                    json_string_value(json_array_get(users, 0)));
    if (barge_store_del(tx, ACM_KIND_CERT, key, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    barge_info("acm: deleted certificate %s", arn);
    *out = json_object();
    return 0;
}

static int change_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out, bool add,
                       struct barge_error **err)
{
    json_t *tags = barge_json_array(in, "Tags");
    if (check_tags(tags, err) < 0)
        return -1;
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, true, &tx, err) < 0 ||
        load(ctx, tx, in, &doc, &key, err) < 0)
        return -1;
    if (add) {
        barge_api_tags_merge(doc, tags);
        if (json_array_size(barge_json_array(doc, "tags")) > MAX_TAGS)
            return fail(err, BARGE_ERR_INVALID, "TooManyTagsException",
                        "A certificate can have at most %d tags", MAX_TAGS);
    } else {
        /* A tag given with a value goes only when the value matches too. */
        json_t *cur = barge_json_array(doc, "tags");
        size_t i, j;
        json_t *t;
        json_array_foreach(tags, i, t)
        {
            const char *k = barge_json_str(t, "Key", "");
            const char *v = barge_json_str(t, "Value", NULL);
            for (j = 0; j < json_array_size(cur); j++) {
                json_t *c = json_array_get(cur, j);
                if (barge_streq(barge_json_str(c, "Key", ""), k) &&
                    (!v || barge_streq(barge_json_str(c, "Value", ""), v))) {
                    json_array_remove(cur, j);
                    break;
                }
            }
        }
    }
    if (barge_store_put(tx, ACM_KIND_CERT, key, doc, err) < 0 ||
        barge_store_commit(barge_steal(&tx), err) < 0)
        return -1;
    *out = json_object();
    return 0;
}

static int add_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    return change_tags(ctx, in, out, true, err);
}

static int remove_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out,
                       struct barge_error **err)
{
    return change_tags(ctx, in, out, false, err);
}

static int list_tags(struct barge_api_ctx *ctx, json_t *in, json_t **out, struct barge_error **err)
{
    _cleanup_tx_ struct barge_tx *tx = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *key = NULL;
    if (barge_store_begin(ctx->srv->store, false, &tx, err) < 0 ||
        load(ctx, tx, in, &doc, &key, err) < 0)
        return -1;
    json_t *tags = barge_json_array(doc, "tags");
    *out = json_pack("{s:o}", "Tags", tags ? json_deep_copy(tags) : json_array());
    return 0;
}

static const struct barge_api_op acm_ops[] = {
    {"ImportCertificate", import_certificate},
    {"DescribeCertificate", describe_certificate},
    {"GetCertificate", get_certificate},
    {"ListCertificates", list_certificates},
    {"DeleteCertificate", delete_certificate},
    {"AddTagsToCertificate", add_tags},
    {"RemoveTagsFromCertificate", remove_tags},
    {"ListTagsForCertificate", list_tags},
    {NULL, NULL},
};

static const struct barge_api_op *const acm_tables[] = {acm_ops, NULL};

const struct barge_api_service barge_api_acm = {
    .model = "acm",
    .message_key = "message",
    .invalid_type = "ValidationException",
    .client_type = "ValidationException",
    .server_type = "InternalFailure",
    .not_found_type = "ResourceNotFoundException",
    .op_tables = acm_tables,
};
