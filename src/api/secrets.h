/* barged's entry points for the secret stores and S3, for main.c and
 * server.c: the master key's start-up check, housekeeping, and the HTTP
 * handler that sends "/" requests without X-Amz-Target to S3. */
#ifndef BARGE_API_SECRETS_H
#define BARGE_API_SECRETS_H

#include "api/server.h"
#include "http/http.h"

/* Loads the master key into srv->master_key (BARGE_MASTER_KEY, else
 * cfg.master_key_file, else <data_dir>/master.key, created on first start)
 * and checks it against the store: data encrypted under another key would
 * otherwise only fail when a secret is read. */
int barge_server_master_key_init(struct barge_server *srv, struct barge_error **err);

/* Removes the secrets whose recovery window has ended; barged's housekeeping
 * loop calls it. */
int barge_api_secretsmanager_reap(struct barge_server *srv, struct barge_error **err);

/* The HTTP handler for everything under "/" that is not another route: AWS
 * JSON 1.1 when X-Amz-Target is present, Smithy RPC v2 CBOR when
 * smithy-protocol is, the query protocol (CloudWatch) for a form posted to
 * "/", else S3 (REST-XML). */
void barge_api_root_handle(struct barge_http_req *req, struct barge_http_resp *resp);

/* The S3 REST-XML handler (path style, and virtual-host style under
 * cfg.s3_host). */
void barge_api_s3_handle(struct barge_http_req *req, struct barge_http_resp *resp);

#endif
