/* A subset of IAM: roles (CreateRole, GetRole, DeleteRole, ListRoles) with
 * their trust policy (checked by AssumeRole), users with long-term access keys, and
 * inline and managed identity policies of users, groups and roles, which barged
 * evaluates on every request of their keys and sessions (access.c). */
#ifndef BARGE_API_IAM_H
#define BARGE_API_IAM_H

#include <jansson.h>

#include "api/api.h"
#include "store/store.h"

/* Store kind of roles, keyed by the role name in lower case (IAM names are
 * unique regardless of case). */
#define BARGE_KIND_IAM_ROLE "iamrole"
/* Store kinds of users and customer managed policies, keyed likewise. */
#define BARGE_KIND_IAM_USER   "iamuser"
#define BARGE_KIND_IAM_POLICY "iampolicy"
/* Store kind of groups, keyed likewise; a user's groups are the keys listed
 * in its "_groups". */
#define BARGE_KIND_IAM_GROUP "iamgroup"

/* Loads the role called name (any case) into *out (new reference; NULL when
 * there is none). Returns 0, or -1 with err set. */
int barge_api_iam_role_get(struct barge_tx *tx, const char *name, json_t **out,
                           struct barge_error **err);

/* The policy documents (text) of the stored user or role doc, inline and
 * attached managed ones, and for a user those of its groups, as a new JSON
 * array in *out. */
int barge_api_iam_policies(struct barge_tx *tx, const json_t *doc, json_t **out,
                           struct barge_error **err);

/* Loads the user called name (any case) like barge_api_iam_role_get. */
int barge_api_iam_user_get(struct barge_tx *tx, const char *name, json_t **out,
                           struct barge_error **err);

/* A random IAM unique id: prefix ("AROA", "AIDA") and 17 characters. Caller
 * frees. */
char *barge_api_iam_unique_id(const char *prefix);

extern const struct barge_api_service barge_api_iam;

#endif
