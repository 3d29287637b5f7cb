/* Internal to src/api: access to the service models embedded in the binary by
 * models.c. model.c is the only user; everything else goes through model.h. */
#ifndef BARGE_API_MODELS_H
#define BARGE_API_MODELS_H

#include <stddef.h>

/* The embedded data/models/<service>.json text, NUL-terminated, and its length
 * (without the NUL) in *len; NULL for an unknown service. Static storage. */
const char *barge_model_embedded_get(const char *service, size_t *len);

#endif
