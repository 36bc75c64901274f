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

void experiments_list(struct req *r);
void experiments_create(struct req *r);
void experiments_update(struct req *r);
void runs_create(struct req *r);
void runs_update(struct req *r);
void runs_log(struct req *r);
void runs_metric_history(struct req *r);
void runs_search(struct req *r);
void runs_compare(struct req *r);
void jobs_list(struct req *r);
void jobs_create(struct req *r);
void jobs_get(struct req *r);
void jobs_update(struct req *r);
void jobs_log(struct req *r);
void outbox_list(struct req *r);
void outbox_retry(struct req *r);
void outbox_retry_one(struct req *r);
void outbox_discard(struct req *r);
void operations_list(struct req *r);
void operations_get(struct req *r);
void operations_cancel(struct req *r);
void alerts_post(struct req *r);
void alerts_list(struct req *r);
void deployments_list(struct req *r);
void deployments_create(struct req *r);
void deployments_get(struct req *r);
void deployments_update(struct req *r);
void deployments_delete(struct req *r);
void deployments_canary_create(struct req *r);
void deployments_canary_update(struct req *r);
void deployments_promote(struct req *r);
void deployments_rollback(struct req *r);
void deployments_audit(struct req *r);
void deployments_predict(struct req *r);
#endif
