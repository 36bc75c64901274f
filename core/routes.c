/* The API: every route of /llm-ops/v1. doc/openapi.json must list exactly these (a test
 * checks it). */
#include "handlers.h"
#include "router.h"
#include "util.h"

static const char *const q_env[] = {"env", NULL};
static const char *const q_audit[] = {"env", "limit", NULL};
static const char *const q_exp_list[] = {"env",       "instance",    "name",       "name_prefix",
                                         "lifecycle", "max_results", "page_token", NULL};
static const char *const q_history[] = {"key", "max_results", "page_token", NULL};
static const char *const q_compare[] = {"run_ids", "keys", "history", NULL};
static const char *const q_jobs[] = {"env", "status", "limit", "after", NULL};
static const char *const q_outbox[] = {"env", "state", "limit", "after", NULL};
static const char *const q_operations[] = {"env", "state", "limit", "after", NULL};

static const struct route routes[] = {
    {"GET", "/llm-ops/v1/health", health_get, ROLE_PUBLIC, 0, NULL},
    {"GET", "/llm-ops/v1/gpu-types", gpu_list, ROLE_READER, ROUTE_DB, q_env},
    {"POST", "/llm-ops/v1/gpu-types", gpu_create, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY, q_env},
    {"GET", "/llm-ops/v1/gpu-types/{name}", gpu_get, ROLE_READER, ROUTE_DB, q_env},
    {"PUT", "/llm-ops/v1/gpu-types/{name}", gpu_replace, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     q_env},
    {"PATCH", "/llm-ops/v1/gpu-types/{name}", gpu_update, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     q_env},
    {"DELETE", "/llm-ops/v1/gpu-types/{name}", gpu_delete, ROLE_OPERATOR, ROUTE_DB, q_env},
    {"GET", "/llm-ops/v1/flags", flags_list, ROLE_READER, ROUTE_DB, q_env},
    {"GET", "/llm-ops/v1/flags/audit", flags_audit, ROLE_READER, ROUTE_DB, q_audit},
    {"PUT", "/llm-ops/v1/flags/{env}/{category}", flags_put, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"POST", "/llm-ops/v1/flags/{env}/{category}/rollback", flags_rollback, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"GET", "/llm-ops/v1/integrations", integrations_list, ROLE_READER, ROUTE_DB, NULL},
    {"GET", "/llm-ops/v1/integrations/{name}/health", integration_health, ROLE_READER, 0, NULL},
    {"GET", "/llm-ops/v1/experiments", experiments_list, ROLE_READER, ROUTE_DB, q_exp_list},
    {"POST", "/llm-ops/v1/experiments", experiments_create, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, q_env},
    {"GET", "/llm-ops/v1/experiments/{id}", experiments_get, ROLE_READER, ROUTE_DB, NULL},
    {"PATCH", "/llm-ops/v1/experiments/{id}", experiments_update, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"DELETE", "/llm-ops/v1/experiments/{id}", experiments_delete, ROLE_OPERATOR, ROUTE_DB, NULL},
    {"POST", "/llm-ops/v1/experiments/{id}/runs", runs_create, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"POST", "/llm-ops/v1/runs/search", runs_search, ROLE_READER, ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"GET", "/llm-ops/v1/runs/compare", runs_compare, ROLE_READER, ROUTE_DB, q_compare},
    {"GET", "/llm-ops/v1/runs/{id}", runs_get, ROLE_READER, ROUTE_DB, NULL},
    {"PATCH", "/llm-ops/v1/runs/{id}", runs_update, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     NULL},
    {"DELETE", "/llm-ops/v1/runs/{id}", runs_delete, ROLE_OPERATOR, ROUTE_DB, NULL},
    {"POST", "/llm-ops/v1/runs/{id}/log", runs_log, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     NULL},
    {"GET", "/llm-ops/v1/runs/{id}/metric-history", runs_metric_history, ROLE_READER, ROUTE_DB,
     q_history},
    {"GET", "/llm-ops/v1/training-jobs", jobs_list, ROLE_READER, ROUTE_DB, q_jobs},
    {"POST", "/llm-ops/v1/training-jobs", jobs_create, ROLE_OPERATOR, ROUTE_DB | ROUTE_JSON_BODY,
     q_env},
    {"GET", "/llm-ops/v1/training-jobs/{id}", jobs_get, ROLE_READER, ROUTE_DB, NULL},
    {"PATCH", "/llm-ops/v1/training-jobs/{id}", jobs_update, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"POST", "/llm-ops/v1/training-jobs/{id}/log", jobs_log, ROLE_OPERATOR,
     ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"GET", "/llm-ops/v1/outbox", outbox_list, ROLE_OPERATOR, ROUTE_DB, q_outbox},
    {"POST", "/llm-ops/v1/outbox/retry", outbox_retry, ROLE_ADMIN, ROUTE_DB | ROUTE_JSON_BODY,
     NULL},
    {"POST", "/llm-ops/v1/outbox/{id}/retry", outbox_retry_one, ROLE_ADMIN, ROUTE_DB, NULL},
    {"POST", "/llm-ops/v1/outbox/{id}/discard", outbox_discard, ROLE_ADMIN,
     ROUTE_DB | ROUTE_JSON_BODY, NULL},
    {"GET", "/llm-ops/v1/operations", operations_list, ROLE_READER, ROUTE_DB, q_operations},
    {"GET", "/llm-ops/v1/operations/{id}", operations_get, ROLE_READER, ROUTE_DB, NULL},
    {"POST", "/llm-ops/v1/operations/{id}/cancel", operations_cancel, ROLE_OPERATOR, ROUTE_DB,
     NULL},
};

const struct route *route_table(size_t *count)
{
    *count = UTIL_ARRAY_LEN(routes);
    return routes;
}
