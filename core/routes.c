/* The API: every route of /llm-ops/v1. doc/openapi.json must list exactly these (a test
 * checks it). */
#include "handlers.h"
#include "router.h"
#include "util.h"

static const char *const q_env[] = {"env", NULL};
static const char *const q_audit[] = {"env", "limit", NULL};

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
};

const struct route *route_table(size_t *count)
{
    *count = UTIL_ARRAY_LEN(routes);
    return routes;
}
