/* The Application Auto Scaling API (autoscaling.c); its store layout and
 * domain helpers are in svc/autoscaling.h. */
#ifndef BARGE_API_AUTOSCALING_H
#define BARGE_API_AUTOSCALING_H

#include "api/server.h"
#include "svc/autoscaling.h"

/* The Application Auto Scaling API (autoscaling.c), for callers that build
 * on it (Express Gateway services). */
extern const struct barge_api_service barge_api_autoscaling;

#endif
