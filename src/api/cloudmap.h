/* The Cloud Map API (cloudmap.c) and the lookups of namespaces and DNS
 * records it serves the ECS API and the agent channel; the store layout and
 * what the scheduler uses are in svc/cloudmap.h. */
#ifndef BARGE_API_CLOUDMAP_H
#define BARGE_API_CLOUDMAP_H

#include "svc/cloudmap.h"

/* The Cloud Map namespace of region that name_or_arn names (by its name or
 * its ARN): 1 with *ns (new reference) and *service_arns (a new array of the
 * ARNs of its services), 0 when there is none, -1 with err. */
int barge_cloudmap_namespace_find(struct barge_tx *tx, const char *region, const char *name_or_arn,
                                  json_t **ns, json_t **service_arns, struct barge_error **err);

/* The Cloud Map service name of namespace ns (a namespace document of
 * region), created as an HTTP service (as ECS creates Service Connect's
 * discovery services) when there is none: 1 (created) or 0 (found) with
 * *svc (new reference), -1 with err. */
int barge_cloudmap_service_ensure(struct barge_tx *tx, const char *region, const char *account,
                                  const json_t *ns, const char *name, json_t **svc,
                                  struct barge_error **err);

/* The DNS records of every private DNS namespace, for a DNS server: *hosts
 * is a new string of hosts-file lines ("IPV4 service.namespace"), one per
 * healthy instance with an AWS_INSTANCE_IPV4 of a service with an A record,
 * and, for a service with an SRV record and an instance with an
 * AWS_INSTANCE_PORT too, "IPV4 instance.service.namespace"; *domains a new
 * JSON array of the namespaces' names (answered locally, never forwarded);
 * *srv a new JSON array of the SRV records, [name, target, port] each
 * (priority and weight are 1, as Cloud Map sets them). */
int barge_cloudmap_dns_records(struct barge_tx *tx, char **hosts, json_t **domains, json_t **srv,
                               struct barge_error **err);

#endif
