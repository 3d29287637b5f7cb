/* Pieces of the S3 layer that are pure and tested on their own: decoding the
 * aws-chunked upload encoding. */
#ifndef BARGE_API_S3_H
#define BARGE_API_S3_H

#include <jansson.h>

#include "common/error.h"

/* What checking the chunk signatures of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD
 * upload needs, all from the request's own signature. */
struct barge_s3_chunk_signer {
    unsigned char key[32]; /* the request's SigV4 signing key */
    char amz_date[17];     /* its X-Amz-Date */
    char scope[160];       /* "date/region/s3/aws4_request" */
    char seed[65];         /* its signature: the first chunk chains from it */
};

/* Decodes an aws-chunked body (Content-Encoding: aws-chunked): chunks of
 * "HEX-SIZE[;chunk-signature=SIG]\r\nDATA\r\n", a last chunk of size 0, then
 * optional trailing headers ("x-amz-checksum-crc32:BASE64\r\n", and with
 * signed chunks "x-amz-trailer-signature:SIG\r\n") and "\r\n".
 *
 * signer non-NULL: every chunk (and the trailer) must carry the signature
 * that chains from the previous one; NULL: the unsigned forms
 * (STREAMING-UNSIGNED-PAYLOAD-TRAILER), where signatures are not allowed.
 * Returns 0 with the payload in *out and *out_len (newly allocated, NUL-terminated)
 * and the trailing headers as a new JSON object of lower-case name → value
 * in *trailers (without the trailer signature), or -1 with err typed as S3
 * would answer (IncompleteBody, InvalidRequest, SignatureDoesNotMatch). */
int barge_s3_chunked_decode(const char *body, size_t len,
                            const struct barge_s3_chunk_signer *signer, char **out, size_t *out_len,
                            json_t **trailers, struct barge_error **err);

struct barge_server;

/* For CloudFormation (templates from TemplateURL, AWS::S3::Bucket): reads
 * object key of bucket (at most max bytes) into *data (caller frees, NUL-
 * terminated) and *len; creates an empty bucket in barged's region; deletes
 * an empty bucket (one that is gone is not an error). S3 error types. */
int barge_api_s3_object_read(struct barge_server *srv, const char *bucket, const char *key,
                             size_t max, char **data, size_t *len, struct barge_error **err);
int barge_api_s3_bucket_create(struct barge_server *srv, const char *bucket,
                               struct barge_error **err);
int barge_api_s3_bucket_delete(struct barge_server *srv, const char *bucket,
                               struct barge_error **err);

#endif
