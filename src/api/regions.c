/* Every region on one barged: which store kinds are global, the move of a
 * store written before regions into the default region, and the region a
 * request works in. The mechanism itself is the store's (store.h, "Regions"):
 * a transaction works in its thread's region, which barge_api_authenticate
 * sets from the request's credential scope and loops over every region set
 * for each pass. */
#include <string.h>

#include "api/access.h"
#include "api/iam.h"
#include "api/server.h"
#include "registry/registry.h"

/* Kinds that are one namespace for the whole account: IAM and STS are
 * global, S3 bucket names are, and SSM parameters and Secrets Manager
 * secrets carry their region in their keys ("<region>|<name>"). The embedded
 * registry's repositories, images and blobs are one namespace too (one /v2/
 * endpoint serves them). A container's log requests and replies are keyed
 * by instance id, which no two regions share. Any kind not listed is
 * regional. */
static const char *const global_kinds[] = {
    "meta",
    BARGE_KIND_ACCESS_KEY,
    BARGE_KIND_IAM_ROLE,
    BARGE_KIND_IAM_USER,
    BARGE_KIND_IAM_POLICY,
    BARGE_KIND_IAM_GROUP,
    "consolesession",
    "s3bucket",
    "s3object",
    "s3upload",
    "ssmparam",
    "smsecret",
    "smpurge",
    "jointoken",
    BARGE_REGISTRY_KIND_REPO,
    BARGE_REGISTRY_KIND_IMAGE,
    BARGE_REGISTRY_KIND_TAG,
    "ecr-blob",
    "logreq",
    "logreply",
};

int barge_server_regions_init(struct barge_server *srv, struct barge_error **err)
{
    return barge_store_regions_init(srv->store, srv->cfg.region, global_kinds,
                                    BARGE_ARRAY_SIZE(global_kinds), err);
}
