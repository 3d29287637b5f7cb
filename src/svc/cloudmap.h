/* Cloud Map (AWS Cloud Map, `aws servicediscovery`) as the rest of barged
 * sees it: the scheduler registers a service's tasks as instances of the
 * Cloud Map services its serviceRegistries name, and the agents' DNS servers
 * read the records of the private DNS namespaces (through the API file,
 * api/cloudmap.c). Documents are kept per region: namespaces and services
 * under "<region>|<id>", instances under "<region>|<service id>|<instance
 * id>". */
#ifndef BARGE_SVC_CLOUDMAP_H
#define BARGE_SVC_CLOUDMAP_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "store/store.h"

#define CLOUDMAP_KIND_NAMESPACE "cmnamespace"
#define CLOUDMAP_KIND_SERVICE   "cmservice"
#define CLOUDMAP_KIND_INSTANCE  "cminstance"
#define CLOUDMAP_KIND_OPERATION "cmoperation"

/* The id of an id or of an ARN naming it (".../ns-abc" -> "ns-abc");
 * borrowed from s. */
const char *barge_cloudmap_id_of(const char *s);
/* The store key "<region>|<id>" of a namespace, service or operation, and
 * "<region>|<service id>|<instance id>" of an instance; caller frees. */
char *barge_cloudmap_key(const char *region, const char *id);
char *barge_cloudmap_instance_key(const char *region, const char *service_id,
                                  const char *instance_id);
/* The document of kind with id in region: 1 with *out (new reference), 0
 * when there is none, -1 with err. */
int barge_cloudmap_get(struct barge_tx *tx, const char *kind, const char *region, const char *id,
                       json_t **out, struct barge_error **err);
/* Bumps the service's InstancesRevision (DiscoverInstancesRevision) and
 * stores svc. */
int barge_cloudmap_bump_revision(struct barge_tx *tx, const char *region, json_t *svc,
                                 struct barge_error **err);
/* The region of a Cloud Map ARN (new string), or NULL. */
char *barge_cloudmap_arn_region(const char *arn);
/* A store scan callback collecting the documents (as stored) into the array
 * ud. */
int barge_cloudmap_collect(const char *key, json_t *doc, void *ud, struct barge_error **err);

/* Makes the instances ECS registered in the Cloud Map service registry_arn
 * names exactly want ({instance id: {attribute: value}}), in tx; instances
 * registered through the API are left alone. A registry that does not exist
 * (any more) is ignored. Returns 1 when something changed, 0, or -1 with
 * err. */
int barge_cloudmap_ecs_sync(struct barge_tx *tx, const char *registry_arn, const json_t *want,
                            struct barge_error **err);

/* The Cloud Map service an ARN names: 1 with *svc and *ns (its namespace;
 * new references), 0 when there is none, -1 with err. */
int barge_cloudmap_service_find(struct barge_tx *tx, const char *arn, json_t **svc, json_t **ns,
                                struct barge_error **err);
/* Whether the service svc (a Cloud Map service document) has a DNS record
 * of type ("A", "SRV", ...). */
bool barge_cloudmap_has_record(const json_t *svc, const char *type);
#endif
