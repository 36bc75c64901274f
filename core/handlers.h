/* Route handlers, one file per concern. */
#ifndef LLMOPS_HANDLERS_H
#define LLMOPS_HANDLERS_H

#include "http.h"

void health_get(struct req *r);
void gpu_list(struct req *r);
void gpu_create(struct req *r);
void gpu_get(struct req *r);
void gpu_replace(struct req *r);
void gpu_update(struct req *r);
void gpu_delete(struct req *r);
void flags_list(struct req *r);
void flags_put(struct req *r);
void flags_rollback(struct req *r);
void flags_audit(struct req *r);
void integrations_list(struct req *r);
void integration_health(struct req *r);

#endif
