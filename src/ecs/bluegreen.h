#pragma once
/* Native blue/green deployments (deploymentConfiguration.strategy
 * BLUE_GREEN) on the service document: which target groups a deployment's
 * tasks serve, and the rollback that returns production to blue. */
#include <jansson.h>
#include <stdbool.h>

/* Whether svc deploys blue/green. */
bool ecs_bluegreen(const json_t *svc);
/* The target group that the tasks of deployment dep register in for
 * load balancer lb (one of svc's loadBalancers): the alternate one of its
 * advancedConfiguration when dep is on the alternate side. Borrowed. */
const char *ecs_bluegreen_target_group(const json_t *lb, const json_t *dep);
/* Whether svc's primary deployment is green while blue still runs: a
 * blue/green deployment that has not finished. */
bool ecs_bluegreen_both(const json_t *svc);
/* Returns production to blue at once: the green primary deployment leaves
 * (the scheduler stops its tasks), blue becomes primary again and serves the
 * green deployment's record as a successful rollback, with reason. */
void ecs_bluegreen_rollback(json_t *svc, const char *reason, bool circuit_breaker);
