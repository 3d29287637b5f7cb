/* The Elastic Load Balancing v2 API (elbv2.c); what it stores and the rest
 * of barged reads is in svc/elbv2.h. */
#ifndef BARGE_API_ELBV2_H
#define BARGE_API_ELBV2_H

#include "api/server.h"
#include "svc/elbv2.h"

/* The Elastic Load Balancing v2 API (elbv2.c), for callers that build on it
 * (Express Gateway services). */
extern const struct barge_api_service barge_api_elbv2;

#endif
