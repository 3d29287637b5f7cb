/* Cloud Map (AWS Cloud Map, `aws servicediscovery`) as the rest of barged
 * sees it: the scheduler registers a service's tasks as instances of the
 * Cloud Map services its serviceRegistries name, and the agents' DNS servers
 * read the records of the private DNS namespaces (cloudmap.c). */
#ifndef BARGE_API_CLOUDMAP_H
#define BARGE_API_CLOUDMAP_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "store/store.h"

#define CLOUDMAP_KIND_NAMESPACE "cmnamespace"
#define CLOUDMAP_KIND_SERVICE   "cmservice"
#define CLOUDMAP_KIND_INSTANCE  "cminstance"
#define CLOUDMAP_KIND_OPERATION "cmoperation"

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
/* The Cloud Map namespace of region that name_or_arn names (by its name or
 * its ARN): 1 with *ns (new reference) and *service_arns (a new array of the
 * ARNs of its services), 0 when there is none, -1 with err. */
int barge_cloudmap_namespace_find(struct barge_tx *tx, const char *region, const char *name_or_arn,
                                  json_t **ns, json_t **service_arns, struct barge_error **err);

/* The DNS records of every private DNS namespace, for a DNS server: *hosts
 * is a new string of hosts-file lines ("IPV4 service.namespace"), one per
 * healthy instance with an AWS_INSTANCE_IPV4 of a service with an A record,
 * and *domains a new JSON array of the namespaces' names (answered locally,
 * never forwarded). */
int barge_cloudmap_dns_records(struct barge_tx *tx, char **hosts, json_t **domains,
                               struct barge_error **err);

#endif
