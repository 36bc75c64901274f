/* Bearer tokens: stored as SHA-256, each with a role, a name and an optional expiry. */
#ifndef LLMOPS_AUTH_H
#define LLMOPS_AUTH_H

#include "http.h"

#define AUTH_TOKEN_PREFIX "llmops_"

/* Checks r->in->authorization against r->route->min_role. Returns 0 and fills r->who, or -1
 * after writing 401/403/503. */
int auth_check(struct req *r);
/* Creates a token string (prefix + 64 hex digits) into out[72] and its hash into hash[65]. */
int auth_new_token(char out[72], char hash[65]);

#endif
