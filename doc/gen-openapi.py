#!/usr/bin/env python3
"""Writes doc/openapi.json: the OpenAPI 3.0.3 description of every route in core/routes.c.

Run it after changing a route or a response: python3 doc/gen-openapi.py
(Python 3 standard library only). tests/unit/check_router.c (test_openapi_matches_table)
checks that the document lists exactly the routes of the table, with the same minimum role.
"""
import copy
import json
import os

ERROR_CODES = ["INVALID_JSON", "VALIDATION_FAILED", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND",
               "METHOD_NOT_ALLOWED", "CONFLICT", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
               "INTERNAL", "TOOL_ERROR", "DATABASE_UNAVAILABLE", "TOOL_UNAVAILABLE"]

def ref(kind, name):
    return {"$ref": "#/components/%s/%s" % (kind, name)}

RID = {"X-Request-Id": ref("headers", "X-Request-Id")}

def success_envelope(data_schema, desc):
    return {
        "type": "object",
        "description": desc,
        "required": ["status", "message", "data"],
        "additionalProperties": False,
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "message": {"type": "string"},
            "data": data_schema,
        },
    }

def error_envelope_with(codes):
    return {
        "allOf": [
            ref("schemas", "ErrorEnvelope"),
            {"type": "object", "properties": {"data": {"type": "object", "properties": {
                "error": {"type": "object", "properties": {
                    "code": {"type": "string", "enum": codes}}}}}}},
        ]
    }

def err_response(desc, codes, extra_headers=None):
    h = dict(RID)
    if extra_headers:
        h.update(extra_headers)
    return {"description": desc, "headers": h,
            "content": {"application/json": {"schema": error_envelope_with(codes)}}}

gpu_props = {
    "name": {"type": "string", "minLength": 1, "maxLength": 63,
             "pattern": "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
             "description": "Unique per environment.", "example": "nvidia-a100-80gb"},
    "vendor": {"type": "string", "enum": ["nvidia", "amd", "intel"]},
    "model": {"type": "string", "minLength": 1, "maxLength": 128, "example": "A100 80GB"},
    "memory_gib": {"type": "integer", "minimum": 1, "maximum": 4096, "example": 80},
    "resource_name": {"type": "string", "minLength": 1, "maxLength": 253,
                      "pattern": "^[A-Za-z0-9./_-]+$",
                      "description": "The Kubernetes extended resource, e.g. nvidia.com/gpu, nvidia.com/mig-1g.10gb, amd.com/gpu.",
                      "example": "nvidia.com/gpu"},
    "node_selector": ref("schemas", "NodeSelector"),
    "mig_profile": {"type": "string", "nullable": True, "default": None,
                    "description": "MIG profile of a GPU slice, e.g. 1g.10gb; null for a whole GPU.",
                    "example": "1g.10gb"},
    "capacity": {"type": "integer", "minimum": 0, "maximum": 100000,
                 "description": "GPUs available in that environment.", "example": 8},
    "enabled": {"type": "boolean", "default": True},
}
ro_props = {
    "environment": {"type": "string", "readOnly": True, "example": "prod"},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True,
                   "description": "RFC 3339, UTC."},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True,
                   "description": "RFC 3339, UTC."},
}
required_input = ["name", "vendor", "model", "memory_gib", "resource_name", "node_selector", "capacity"]

gpu_type = {
    "type": "object",
    "description": "A GPU type offered in one environment. Unknown members are a 400 VALIDATION_FAILED naming them. environment, created_at and updated_at are read-only: they appear in responses.",
    "required": required_input + ["environment", "created_at", "updated_at"],
    "additionalProperties": False,
    "properties": {**copy.deepcopy(gpu_props), **copy.deepcopy(ro_props)},
}
gpu_replace = {
    "type": "object",
    "description": "The full GpuType for PUT. name may be omitted; if given it must equal the {name} of the path.",
    "required": [k for k in required_input if k != "name"],
    "additionalProperties": False,
    "properties": copy.deepcopy(gpu_props),
}
gpu_patch = {
    "type": "object",
    "description": "Some GpuType members for PATCH; name cannot be changed.",
    "additionalProperties": False,
    "properties": {k: copy.deepcopy(v) for k, v in gpu_props.items() if k != "name"},
}
# defaults only mean something for full objects
for k in ("mig_profile", "enabled"):
    gpu_patch["properties"][k].pop("default", None)

CATEGORIES = ["experiment_tracking", "serving", "orchestration", "model_registry", "data_versioning"]
INSTANCE = {"type": "string", "minLength": 1, "maxLength": 63,
            "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$", "example": "mlflow-prod"}
REASON = {"type": "string", "minLength": 1, "maxLength": 500,
          "description": "Why, for the audit log: 1 to 500 bytes (UTF-8)."}

schemas = {
    "Envelope": {
        "type": "object",
        "description": "Every response body, success or error: one JSON object with exactly these three keys.",
        "required": ["status", "message", "data"],
        "additionalProperties": False,
        "properties": {
            "status": {"type": "string", "enum": ["success", "error"]},
            "message": {"type": "string"},
            "data": {"description": "The result (any JSON value, null included); for an error, {\"error\": Error}."},
        },
    },
    "ErrorCode": {"type": "string", "enum": ERROR_CODES,
                  "description": "Stable error codes. INVALID_JSON, VALIDATION_FAILED 400; UNAUTHENTICATED 401; FORBIDDEN 403; NOT_FOUND 404; METHOD_NOT_ALLOWED 405; CONFLICT 409; PAYLOAD_TOO_LARGE 413; UNSUPPORTED_MEDIA_TYPE 415; INTERNAL 500; TOOL_ERROR 502; DATABASE_UNAVAILABLE, TOOL_UNAVAILABLE 503. TOOL_ERROR and TOOL_UNAVAILABLE come from plugins."},
    "Error": {
        "type": "object",
        "required": ["code", "request_id"],
        "properties": {
            "code": ref("schemas", "ErrorCode"),
            "request_id": {"type": "string", "description": "The X-Request-Id of the response."},
            "field": {"type": "string", "description": "The offending parameter or JSON member."},
            "valid": {"type": "array", "items": {"type": "string"}, "description": "The accepted values."},
            "line": {"type": "integer", "description": "JSON syntax errors: line of the error."},
            "column": {"type": "integer", "description": "JSON syntax errors: column of the error."},
            "limit": {"type": "integer", "description": "Size limits: the limit that was exceeded."},
            "allow": {"type": "string", "description": "405: the methods the path allows."},
            "required_role": {"type": "string", "enum": ["reader", "operator", "admin"],
                              "description": "403: the lowest role the route accepts."},
            "role": {"type": "string", "enum": ["reader", "operator", "admin"],
                     "description": "403: the role of the token that was sent."},
            "health": {"allOf": [ref("schemas", "Health")],
                       "description": "GET /llm-ops/v1/health, 503: the health data, with database down or schema_mismatch."},
            "state": {"type": "string", "enum": ["degraded", "failed"],
                      "description": "GET /llm-ops/v1/integrations/{name}/health, 502/503: failed when the instance is not running, degraded when its health probe failed."},
            "latency_ms": {"type": "number",
                           "description": "GET /llm-ops/v1/integrations/{name}/health, 502/503 after a probe: how long the failed probe took, in milliseconds."},
            "tool_status": {"type": "integer",
                            "description": "GET /llm-ops/v1/integrations/{name}/health, 502/503 after a probe: the tool's HTTP status, 0 when it did not answer."},
        },
    },
    "ErrorEnvelope": {
        "type": "object",
        "required": ["status", "message", "data"],
        "additionalProperties": False,
        "properties": {
            "status": {"type": "string", "enum": ["error"]},
            "message": {"type": "string"},
            "data": {
                "type": "object",
                "required": ["error"],
                "additionalProperties": False,
                "properties": {"error": ref("schemas", "Error")},
            },
        },
        "example": {
            "status": "error",
            "message": "unknown environment 'qa'; valid: dev, stg, prod",
            "data": {"error": {"code": "VALIDATION_FAILED", "request_id": "5f0c9d2ab1e34c7f8a6d0e2b9c4f1a37",
                               "field": "env", "valid": ["dev", "stg", "prod"]}},
        },
    },
    "Health": {
        "type": "object",
        "description": "The server and its database. On 200, database is up; on 503 the same object is data.error.health, with database down or schema_mismatch.",
        "required": ["version", "database", "schema_version", "schema_version_needed",
                     "uptime_seconds", "pid"],
        "additionalProperties": False,
        "properties": {
            "version": {"type": "string", "description": "llm-opsd's version.", "example": "0.1.0"},
            "database": {"type": "string", "enum": ["up", "down", "schema_mismatch"],
                         "description": "up: reachable, at the schema this build needs; down: cannot be reached (within 1 s); schema_mismatch: reachable, at another schema version (llm-opsctl migrate brings an older one up to date)."},
            "schema_version": {"type": "integer", "minimum": -1,
                               "description": "The database's core schema version: the highest core migration applied, 0 when none is, -1 when the database is down."},
            "schema_version_needed": {"type": "integer", "minimum": 1,
                                      "description": "The core schema version this build needs."},
            "uptime_seconds": {"type": "integer", "description": "Seconds since the worker that answered started (in spawned mode, since it last re-read its configuration)."},
            "pid": {"type": "integer", "description": "The process ID of the worker that answered."},
        },
    },
    "HealthEnvelope": success_envelope(ref("schemas", "Health"), "200 answer of GET /llm-ops/v1/health."),
    "NodeSelector": {
        "type": "object",
        "description": "The node label that schedules on this GPU type.",
        "required": ["key", "value"],
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string", "minLength": 1, "maxLength": 253, "example": "nvidia.com/gpu.product"},
            "value": {"type": "string", "minLength": 0, "maxLength": 63, "example": "NVIDIA-A100-SXM4-80GB"},
        },
    },
    "GpuType": gpu_type,
    "GpuTypeReplace": gpu_replace,
    "GpuTypePatch": gpu_patch,
    "GpuTypeList": {
        "type": "object",
        "required": ["environment", "gpu_types"],
        "properties": {
            "environment": {"type": "string"},
            "gpu_types": {"type": "array", "items": ref("schemas", "GpuType")},
        },
    },
    "GpuTypeEnvelope": success_envelope(ref("schemas", "GpuType"), "Envelope whose data is one GpuType."),
    "GpuTypeListEnvelope": success_envelope(ref("schemas", "GpuTypeList"), "Envelope whose data lists the GPU types of one environment."),
    "NullEnvelope": success_envelope({"type": "object", "nullable": True, "enum": [None],
                                       "description": "Always null."}, "Envelope whose data is null."),
    "Category": {"type": "string", "enum": CATEGORIES,
                 "description": "The five categories; each has one plugin interface."},
    "Flag": {
        "type": "object",
        "description": "The effective flag of one (environment, category): the configuration's [flags \"ENV\"] default, or the override stored in PostgreSQL when there is one. active null: no instance serves the category there.",
        "required": ["environment", "category", "active", "fallback", "candidate",
                     "rollout_percent", "source", "updated_by", "updated_at"],
        "additionalProperties": False,
        "properties": {
            "environment": {"type": "string", "example": "prod"},
            "category": ref("schemas", "Category"),
            "active": {**INSTANCE, "nullable": True, "description": "The instance that serves the category."},
            "fallback": {**INSTANCE, "nullable": True, "description": "Where a rollback (or the circuit breaker) moves the traffic."},
            "candidate": {**INSTANCE, "nullable": True, "description": "An instance that rollout_percent of the subjects are sent to instead of active."},
            "rollout_percent": {"type": "integer", "minimum": 0, "maximum": 100,
                                "description": "The share of subjects sent to the candidate, bucketed stably on the subject (the project, else the caller's token name)."},
            "source": {"type": "string", "enum": ["config", "override"],
                       "description": "config: the configuration's default; override: a change stored in PostgreSQL."},
            "updated_by": {"type": "string", "nullable": True,
                           "description": "Overrides: who made the last change (a token name, cli:USER for llm-opsctl, or circuit-breaker). Null for config."},
            "updated_at": {"type": "string", "format": "date-time", "nullable": True,
                           "description": "Overrides: when, RFC 3339 UTC. Null for config."},
        },
        "example": {"environment": "prod", "category": "experiment_tracking",
                    "active": "mlflow-prod", "fallback": "tracking-pg", "candidate": None,
                    "rollout_percent": 0, "source": "override", "updated_by": "alice",
                    "updated_at": "2026-11-26T10:15:00Z"},
    },
    "FlagList": {
        "type": "object",
        "required": ["environment", "flags"],
        "additionalProperties": False,
        "properties": {
            "environment": {"type": "string"},
            "flags": {"type": "array", "minItems": 5, "maxItems": 5,
                      "items": ref("schemas", "Flag"),
                      "description": "One flag per category, in the order experiment_tracking, serving, orchestration, model_registry, data_versioning."},
        },
    },
    "FlagChange": {
        "type": "object",
        "description": "The whole new flag: members left out become empty (no fallback, no candidate, rollout 0). Every instance named must be a configured instance of this category whose module is loaded. Unknown members are a 400 VALIDATION_FAILED naming them; null counts as absent.",
        "required": ["active", "reason"],
        "additionalProperties": False,
        "properties": {
            "active": {**INSTANCE, "description": "The instance that serves the category."},
            "fallback": {**INSTANCE, "nullable": True},
            "candidate": {**INSTANCE, "nullable": True},
            "rollout_percent": {"type": "integer", "minimum": 0, "maximum": 100, "default": 0,
                                "nullable": True,
                                "description": "Above 0 it needs a candidate."},
            "reason": REASON,
        },
        "example": {"active": "mlflow-prod", "fallback": "tracking-pg",
                    "candidate": "mlflow-next", "rollout_percent": 10,
                    "reason": "try MLflow 2.14 on 10% of the projects"},
    },
    "FlagRollback": {
        "type": "object",
        "description": "Unknown members are a 400 VALIDATION_FAILED naming them.",
        "required": ["reason"],
        "additionalProperties": False,
        "properties": {"reason": REASON},
        "example": {"reason": "mlflow-prod answers 502 since 10:40"},
    },
    "FlagState": {
        "type": "object",
        "description": "A flag as the audit log records it. before also carries source (where the replaced value came from); after does not.",
        "required": ["environment", "category", "active", "fallback", "candidate", "rollout_percent"],
        "additionalProperties": False,
        "properties": {
            "environment": {"type": "string"},
            "category": ref("schemas", "Category"),
            "active": {**INSTANCE, "nullable": True},
            "fallback": {**INSTANCE, "nullable": True},
            "candidate": {**INSTANCE, "nullable": True},
            "rollout_percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "source": {"type": "string", "enum": ["config", "override"]},
        },
    },
    "AuditEntry": {
        "type": "object",
        "description": "One change of a flag. Rows are only ever added.",
        "required": ["id", "at", "actor", "action", "environment", "category", "before", "after", "reason"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer", "description": "Increases with every change."},
            "at": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."},
            "actor": {"type": "string",
                      "description": "Who: the token's name (API), cli:USER (llm-opsctl), or circuit-breaker."},
            "action": {"type": "string", "enum": ["set", "rollback", "breaker_trip", "breaker_restore"],
                       "description": "set: PUT or llm-opsctl flags set; rollback: POST .../rollback or llm-opsctl flags rollback; breaker_trip: the circuit breaker of an instance moved its traffic away; breaker_restore: with [breaker] auto_close, it gave the traffic back."},
            "environment": {"type": "string"},
            "category": ref("schemas", "Category"),
            "before": {"allOf": [ref("schemas", "FlagState")], "nullable": True,
                       "description": "The effective flag before the change; null when none was set."},
            "after": ref("schemas", "FlagState"),
            "reason": {"type": "string"},
        },
    },
    "FlagChangeResult": {
        "type": "object",
        "required": ["flag", "audit"],
        "additionalProperties": False,
        "properties": {
            "flag": ref("schemas", "Flag"),
            "audit": ref("schemas", "AuditEntry"),
        },
    },
    "AuditList": {
        "type": "object",
        "required": ["entries"],
        "additionalProperties": False,
        "properties": {
            "entries": {"type": "array", "items": ref("schemas", "AuditEntry"),
                        "description": "Newest first."},
        },
    },
    "IntegrationRole": {
        "type": "object",
        "required": ["environment", "category", "role"],
        "additionalProperties": False,
        "properties": {
            "environment": {"type": "string"},
            "category": ref("schemas", "Category"),
            "role": {"type": "string", "enum": ["active", "candidate", "fallback"]},
        },
    },
    "Integration": {
        "type": "object",
        "description": "One configured instance ([plugin \"NAME\"]). state, reason, tool_version and breaker are those of the worker that answered: each worker loads its own instances and keeps its own breaker.",
        "required": ["name", "module", "module_version", "abi", "category", "tool_version",
                     "state", "reason", "breaker", "serves", "metrics"],
        "additionalProperties": False,
        "properties": {
            "name": {**INSTANCE, "description": "The instance's name."},
            "module": {"type": "string", "nullable": True,
                       "description": "The module key: the instance runs plugin_dir/MODULE.so."},
            "module_version": {"type": "string", "nullable": True,
                               "description": "The module's own version; null when the module is not loaded."},
            "abi": {"type": "string", "nullable": True, "pattern": "^[0-9]+\\.[0-9]+$",
                    "description": "The plugin ABI the module was built with, MAJOR.MINOR; null when the module is not loaded."},
            "category": {"allOf": [ref("schemas", "Category")], "nullable": True,
                         "description": "The category the module serves; null when the module is not loaded."},
            "tool_version": {"type": "string", "nullable": True,
                             "description": "The tool's version as the last health probe in this worker reported it; null before any probe."},
            "state": {"type": "string", "enum": ["ok", "degraded", "failed"],
                      "description": "ok: running; degraded: running, but its last health probe failed or the tool's version is outside the module's range; failed: not running (module refused, configuration problem, init failed) or, with unsupported_version = refuse, a tool version outside the range."},
            "reason": {"type": "string", "nullable": True,
                       "description": "Why the state is not ok; null when it is."},
            "breaker": {"type": "string", "enum": ["closed", "open", "half_open"],
                        "description": "The instance's circuit breaker in this worker."},
            "serves": {"type": "array", "items": ref("schemas", "IntegrationRole"),
                       "description": "Every (environment, category) whose effective flag names this instance, and as what."},
            "metrics": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                        "description": "The counters the plugin keeps through host->metric_add, in the worker that answered."},
        },
        "example": {"name": "mlflow-prod", "module": "mlflow", "module_version": "1.0.0",
                    "abi": "1.0", "category": "experiment_tracking", "tool_version": "2.14.1",
                    "state": "ok", "reason": None, "breaker": "closed",
                    "serves": [{"environment": "prod", "category": "experiment_tracking",
                                "role": "active"}], "metrics": {"runs_created": 12.0}},
    },
    "IntegrationList": {
        "type": "object",
        "required": ["integrations"],
        "additionalProperties": False,
        "properties": {
            "integrations": {"type": "array", "items": ref("schemas", "Integration"),
                             "description": "Every configured instance, in configuration order, running or not."},
        },
    },
    "IntegrationHealth": {
        "type": "object",
        "description": "The answer of a live health probe of the instance's tool.",
        "required": ["name", "state", "tool_version", "supported", "latency_ms", "info"],
        "additionalProperties": False,
        "properties": {
            "name": INSTANCE,
            "state": {"type": "string", "enum": ["ok", "degraded", "failed"],
                      "description": "ok, or, when the tool's version is outside the module's range, degraded (unsupported_version = degrade, the default) or failed (unsupported_version = refuse)."},
            "tool_version": {"type": "string", "nullable": True,
                             "description": "The version the tool reported; null when the module reported none."},
            "supported": {"type": "boolean",
                          "description": "false when tool_version is outside the module's tool_version_min..tool_version_max (compared as dotted numbers); true when it is inside or unknown."},
            "latency_ms": {"type": "number", "description": "How long the probe took, to 0.01 ms."},
            "info": {"type": "object", "additionalProperties": True,
                     "description": "What the module's health method returned (at least tool_version when the tool answered); module-specific."},
        },
        "example": {"name": "mlflow-prod", "state": "ok", "tool_version": "2.14.1",
                    "supported": True, "latency_ms": 12.34,
                    "info": {"tool_version": "2.14.1"}},
    },
    "FlagListEnvelope": success_envelope(ref("schemas", "FlagList"), "Envelope whose data lists the flags of one environment."),
    "FlagChangeEnvelope": success_envelope(ref("schemas", "FlagChangeResult"), "Envelope whose data is the new effective flag and its audit row."),
    "AuditListEnvelope": success_envelope(ref("schemas", "AuditList"), "Envelope whose data lists flag changes."),
    "IntegrationListEnvelope": success_envelope(ref("schemas", "IntegrationList"), "Envelope whose data lists the configured instances."),
    "IntegrationHealthEnvelope": success_envelope(ref("schemas", "IntegrationHealth"), "Envelope whose data is the result of a health probe."),
}

responses = {
    "BadRequest": err_response("INVALID_JSON (the body is not JSON; message names line and column) or VALIDATION_FAILED (a parameter or member is missing, unknown, of the wrong type or out of range).",
                               ["INVALID_JSON", "VALIDATION_FAILED"]),
    "BadQuery": err_response("VALIDATION_FAILED: a query parameter the route does not declare, or an env that is not one of the configured environments (data.error.valid lists them).",
                             ["VALIDATION_FAILED"]),
    "Unauthenticated": err_response("UNAUTHENTICATED: no token, or an unknown, revoked or expired token.",
                                    ["UNAUTHENTICATED"], {"WWW-Authenticate": ref("headers", "WWW-Authenticate")}),
    "Forbidden": err_response("FORBIDDEN: the token's role is below the route's.", ["FORBIDDEN"]),
    "NotFound": err_response("NOT_FOUND: no such route or object.", ["NOT_FOUND"]),
    "MethodNotAllowed": err_response("METHOD_NOT_ALLOWED: the path exists, the method does not.",
                                     ["METHOD_NOT_ALLOWED"], {"Allow": ref("headers", "Allow")}),
    "Conflict": err_response("CONFLICT: the object exists already.", ["CONFLICT"]),
    "PayloadTooLarge": err_response("PAYLOAD_TOO_LARGE: the body is over [server] max_body_bytes (data.error.limit).",
                                    ["PAYLOAD_TOO_LARGE"]),
    "UnsupportedMediaType": err_response("UNSUPPORTED_MEDIA_TYPE: a body without Content-Type: application/json.",
                                         ["UNSUPPORTED_MEDIA_TYPE"]),
    "Internal": err_response("INTERNAL: a bug; the log line with the request id says more.", ["INTERNAL"]),
    "DatabaseUnavailable": err_response("DATABASE_UNAVAILABLE: PostgreSQL cannot be reached, or its schema is not the one this build needs.",
                                        ["DATABASE_UNAVAILABLE"]),
}

headers = {
    "X-Request-Id": {
        "description": "On every response: the client's X-Request-Id when it is 1-128 characters of [A-Za-z0-9._:-], otherwise a generated 32-hex-digit id.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    },
    "ETag": {"description": "Entity tag of the list of GPU types of the environment.",
             "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "Bearer realm=\"llm-ops\"", "schema": {"type": "string"}},
    "Allow": {"description": "The methods the path allows, e.g. GET, POST.", "schema": {"type": "string"}},
}

parameters = {
    "env": {
        "name": "env", "in": "query", "required": False,
        "description": "One of the configured environments ([server] environments); when absent, [server] default_environment applies. Any other value is a 400 VALIDATION_FAILED that lists the valid ones.",
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$", "example": "dev"},
    },
    "name": {
        "name": "name", "in": "path", "required": True,
        "description": "The GPU type's name.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 63,
                   "pattern": "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"},
    },
    "auditEnv": {
        "name": "env", "in": "query", "required": False,
        "description": "Only the changes of this environment, one of the configured ones (any other value is a 400 VALIDATION_FAILED that lists them). Absent: the changes of every environment.",
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$", "example": "prod"},
    },
    "limit": {
        "name": "limit", "in": "query", "required": False,
        "description": "At most this many entries, the newest first.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    "flagEnv": {
        "name": "env", "in": "path", "required": True,
        "description": "One of the configured environments; any other is a 400 VALIDATION_FAILED (field env) whose message lists them.",
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$", "example": "prod"},
    },
    "category": {
        "name": "category", "in": "path", "required": True,
        "description": "One of the five categories; any other is a 400 VALIDATION_FAILED (field category) whose message lists them.",
        "schema": ref("schemas", "Category"),
    },
    "instance": {
        "name": "name", "in": "path", "required": True,
        "description": "The instance's name, as in [plugin \"NAME\"].",
        "schema": {"type": "string", "minLength": 1, "maxLength": 63,
                   "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$", "example": "mlflow-prod"},
    },
    "X-Request-Id": {
        "name": "X-Request-Id", "in": "header", "required": False,
        "description": "Kept and echoed when it is 1-128 characters of [A-Za-z0-9._:-]; any other value is replaced by a generated id.",
        "schema": {"type": "string"},
    },
    "If-None-Match": {
        "name": "If-None-Match", "in": "header", "required": False,
        "description": "An entity tag from an earlier ETag; when it equals the current one the answer is 304 with no body.",
        "schema": {"type": "string"},
    },
}

def ok(desc, schema, extra_headers=None):
    h = dict(RID)
    if extra_headers:
        h.update(extra_headers)
    return {"description": desc, "headers": h,
            "content": {"application/json": {"schema": ref("schemas", schema)}}}

def body(schema, desc):
    return {"required": True, "description": desc,
            "content": {"application/json": {"schema": ref("schemas", schema)}}}

HEALTH_503 = copy.deepcopy(error_envelope_with(["DATABASE_UNAVAILABLE"]))
HEALTH_503["allOf"][1]["properties"]["data"]["properties"]["error"]["required"] = ["health"]
HEALTH_503["allOf"][1]["properties"]["data"]["properties"]["error"]["properties"]["health"] = ref("schemas", "Health")
HEALTH_503["example"] = {
    "status": "error",
    "message": "the database schema is at version 2; this llm-opsd needs 3 (run llm-opsctl migrate)",
    "data": {"error": {"code": "DATABASE_UNAVAILABLE", "request_id": "5f0c9d2ab1e34c7f8a6d0e2b9c4f1a37",
                       "health": {"version": "0.1.0", "database": "schema_mismatch",
                                  "schema_version": 2, "schema_version_needed": 3,
                                  "uptime_seconds": 5, "pid": 4242}}},
}

def R(name):
    return ref("responses", name)

AUTH = {"401": R("Unauthenticated"), "403": R("Forbidden")}
COMMON_TAIL = {"500": R("Internal"), "503": R("DatabaseUnavailable")}

def merge(*ds):
    out = {}
    for d in ds:
        out.update(d)
    return dict(sorted(out.items()))

P_ENV = [ref("parameters", "env"), ref("parameters", "X-Request-Id")]
P_ITEM = [ref("parameters", "name")] + P_ENV

paths = {
    "/llm-ops/v1/health": {
        "summary": "Liveness and database state",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "get": {
            "operationId": "getHealth",
            "tags": ["health"],
            "summary": "Server version, database state, schema version, uptime and pid",
            "description": "Public: no token needed. Takes no query parameters.",
            "x-min-role": "public",
            "security": [],
            "parameters": [ref("parameters", "X-Request-Id")],
            "responses": {
                "200": ok("Healthy.", "HealthEnvelope"),
                "400": R("BadQuery"),
                "500": R("Internal"),
                "503": {
                    "description": "DATABASE_UNAVAILABLE: PostgreSQL cannot be reached within a second (data.error.health.database is down, schema_version -1), or its core schema is not the version this build needs (database is schema_mismatch; compare schema_version with schema_version_needed, and run llm-opsctl migrate when it is older). data.error.health holds the whole health object.",
                    "headers": dict(RID),
                    "content": {"application/json": {"schema": HEALTH_503}},
                },
            },
        },
    },
    "/llm-ops/v1/gpu-types": {
        "summary": "The GPU types of one environment",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "get": {
            "operationId": "listGpuTypes",
            "tags": ["gpu-types"],
            "summary": "List the GPU types of an environment",
            "x-min-role": "reader",
            "parameters": P_ENV + [ref("parameters", "If-None-Match")],
            "responses": merge({
                "200": ok("The GPU types of the environment.", "GpuTypeListEnvelope",
                          {"ETag": ref("headers", "ETag")}),
                "304": {"description": "Not Modified: If-None-Match equals the current ETag. No body.",
                        "headers": {**RID, "ETag": ref("headers", "ETag")}},
                "400": R("BadQuery"),
            }, AUTH, COMMON_TAIL),
        },
        "post": {
            "operationId": "createGpuType",
            "tags": ["gpu-types"],
            "summary": "Create a GPU type in an environment",
            "x-min-role": "operator",
            "parameters": P_ENV,
            "requestBody": body("GpuType", "A full GpuType (read-only members are not sent)."),
            "responses": merge({
                "201": ok("Created.", "GpuTypeEnvelope"),
                "400": R("BadRequest"),
                "409": R("Conflict"),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, COMMON_TAIL),
        },
    },
    "/llm-ops/v1/gpu-types/{name}": {
        "summary": "One GPU type of one environment",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "get": {
            "operationId": "getGpuType",
            "tags": ["gpu-types"],
            "summary": "Read a GPU type",
            "x-min-role": "reader",
            "parameters": P_ITEM,
            "responses": merge({
                "200": ok("The GPU type.", "GpuTypeEnvelope"),
                "400": R("BadQuery"),
                "404": R("NotFound"),
            }, AUTH, COMMON_TAIL),
        },
        "put": {
            "operationId": "replaceGpuType",
            "tags": ["gpu-types"],
            "summary": "Replace a GPU type",
            "x-min-role": "operator",
            "parameters": P_ITEM,
            "requestBody": body("GpuTypeReplace", "The full GpuType; name may be omitted and must equal {name} if given."),
            "responses": merge({
                "200": ok("The replaced GPU type.", "GpuTypeEnvelope"),
                "400": R("BadRequest"),
                "404": R("NotFound"),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, COMMON_TAIL),
        },
        "patch": {
            "operationId": "updateGpuType",
            "tags": ["gpu-types"],
            "summary": "Change some members of a GPU type",
            "x-min-role": "operator",
            "parameters": P_ITEM,
            "requestBody": body("GpuTypePatch", "Some GpuType members, not name."),
            "responses": merge({
                "200": ok("The updated GPU type.", "GpuTypeEnvelope"),
                "400": R("BadRequest"),
                "404": R("NotFound"),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, COMMON_TAIL),
        },
        "delete": {
            "operationId": "deleteGpuType",
            "tags": ["gpu-types"],
            "summary": "Delete a GPU type",
            "x-min-role": "operator",
            "parameters": P_ITEM,
            "responses": merge({
                "200": ok("Deleted; data is null.", "NullEnvelope"),
                "400": R("BadQuery"),
                "404": R("NotFound"),
            }, AUTH, COMMON_TAIL),
        },
    },
}

P_FLAG = [ref("parameters", "flagEnv"), ref("parameters", "category"), ref("parameters", "X-Request-Id")]
FLAG_BAD = err_response(
    "INVALID_JSON (the body is not JSON) or VALIDATION_FAILED (data.error.field names the culprit when there is one): "
    "{env} or {category} unknown; an unknown member or query parameter; active or reason missing; "
    "an instance name that is not a string of 1-63 characters; rollout_percent not an integer 0-100, or above 0 "
    "without a candidate; reason not 1-500 bytes; an instance that is not configured, whose module is not loaded, "
    "or that serves another category (the message lists the instances of the category).",
    ["INVALID_JSON", "VALIDATION_FAILED"])
FLAG_503 = err_response(
    "DATABASE_UNAVAILABLE: PostgreSQL cannot be reached or is at another schema version, or the flags "
    "cannot be read or stored. Nothing was changed.", ["DATABASE_UNAVAILABLE"])

paths.update({
    "/llm-ops/v1/flags": {
        "summary": "The feature flags of one environment",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "get": {
            "operationId": "listFlags",
            "tags": ["flags"],
            "summary": "Which instance serves each category in an environment",
            "description": "The effective flag of each of the five categories: the configuration's default ([flags \"ENV\"]) or, where there is one, the override stored in PostgreSQL (source tells which). A category that no flag names has active null.",
            "x-min-role": "reader",
            "parameters": P_ENV,
            "responses": merge({
                "200": ok("The five flags of the environment.", "FlagListEnvelope"),
                "400": R("BadQuery"),
            }, AUTH, COMMON_TAIL),
        },
    },
    "/llm-ops/v1/flags/audit": {
        "summary": "The audit log of flag changes",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "get": {
            "operationId": "listFlagAudit",
            "tags": ["flags"],
            "summary": "Who changed which flag, when, from what to what, and why",
            "description": "Every change made through the API, llm-opsctl or the circuit breaker, newest first.",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "auditEnv"), ref("parameters", "limit"),
                           ref("parameters", "X-Request-Id")],
            "responses": merge({
                "200": ok("The changes, newest first.", "AuditListEnvelope"),
                "400": err_response("VALIDATION_FAILED: a query parameter other than env and limit, an env that is not one of the configured environments (data.error.valid lists them), or a limit that is not an integer 1-1000 (field limit).",
                                    ["VALIDATION_FAILED"]),
            }, AUTH, {"500": R("Internal"),
                      "503": err_response("DATABASE_UNAVAILABLE: PostgreSQL cannot be reached or is at another schema version, or the audit log cannot be read.",
                                          ["DATABASE_UNAVAILABLE"])}),
        },
    },
    "/llm-ops/v1/flags/{env}/{category}": {
        "summary": "The feature flag of one (environment, category)",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "put": {
            "operationId": "setFlag",
            "tags": ["flags"],
            "summary": "Set which instance serves a category in an environment",
            "description": "Stores an override of the configuration's default in PostgreSQL, together with its audit row (one statement: both or neither). Every worker applies it at its next request. Takes no query parameters.",
            "x-min-role": "operator",
            "parameters": P_FLAG,
            "requestBody": body("FlagChange", "The whole new flag and the reason for the change."),
            "responses": merge({
                "200": ok("Changed: the new effective flag (source override) and its audit row.", "FlagChangeEnvelope"),
                "400": FLAG_BAD,
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, {"500": R("Internal"), "503": FLAG_503}),
        },
    },
    "/llm-ops/v1/flags/{env}/{category}/rollback": {
        "summary": "Roll a flag back to its fallback",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "post": {
            "operationId": "rollbackFlag",
            "tags": ["flags"],
            "summary": "Serve a category from its fallback instance, now",
            "description": "The fallback becomes the active instance; the candidate and its rollout are cleared; the fallback stays. Stored and audited (action rollback) like a PUT; every worker applies it at its next request. Takes no query parameters.",
            "x-min-role": "operator",
            "parameters": P_FLAG,
            "requestBody": body("FlagRollback", "The reason for the rollback."),
            "responses": merge({
                "200": ok("Rolled back: the new effective flag and its audit row.", "FlagChangeEnvelope"),
                "400": err_response("INVALID_JSON or VALIDATION_FAILED: {env} or {category} unknown, a member other than reason, a query parameter, or reason missing or not 1-500 bytes.",
                                    ["INVALID_JSON", "VALIDATION_FAILED"]),
                "409": err_response("CONFLICT: the flag has no fallback, or it is already served by its fallback with no candidate.",
                                    ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, {"500": R("Internal"), "503": FLAG_503}),
        },
    },
    "/llm-ops/v1/integrations": {
        "summary": "The configured plugin instances",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "get": {
            "operationId": "listIntegrations",
            "tags": ["integrations"],
            "summary": "Every instance: module, versions, state, breaker, what it serves",
            "description": "Calls no tool. Takes no query parameters.",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "X-Request-Id")],
            "responses": merge({
                "200": ok("Every configured instance, running or not.", "IntegrationListEnvelope"),
                "400": R("BadQuery"),
            }, AUTH, COMMON_TAIL),
        },
    },
    "/llm-ops/v1/integrations/{name}/health": {
        "summary": "A live health probe of one instance's tool",
        "description": "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header.",
        "get": {
            "operationId": "getIntegrationHealth",
            "tags": ["integrations"],
            "summary": "Probe the tool behind an instance now",
            "description": "Calls the module's health method, which asks the tool, within the instance's timeouts. The outcome updates the instance's state and feeds its circuit breaker. A reported tool version outside the module's supported range is answered 200 with supported false and state degraded or failed (the instance's unsupported_version). Takes no query parameters; does not need the database, except to check the token.",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "instance"), ref("parameters", "X-Request-Id")],
            "responses": merge({
                "200": ok("The tool answered.", "IntegrationHealthEnvelope"),
                "400": R("BadQuery"),
                "404": err_response("NOT_FOUND: no instance of that name is configured (data.error.field is name).",
                                    ["NOT_FOUND"]),
                "502": err_response("TOOL_ERROR: the tool answered the probe with an error. data.error has state degraded, latency_ms and tool_status (the tool's HTTP status).",
                                    ["TOOL_ERROR"]),
                "503": err_response("TOOL_UNAVAILABLE: the instance is not running (data.error.state failed; the message says why), or its tool could not be reached or timed out, or the probe failed otherwise (state degraded, with latency_ms and tool_status, 0 when there was no answer). DATABASE_UNAVAILABLE: the token could not be checked.",
                                    ["TOOL_UNAVAILABLE", "DATABASE_UNAVAILABLE"]),
            }, AUTH, {"500": R("Internal")}),
        },
    },
})

doc = {
    "openapi": "3.0.3",
    "info": {
        "title": "llm-ops core API",
        "version": "0.1.0",
        "description": "The REST API of llm-opsd, base path /llm-ops/v1 (doc/api.md). Every response body, success or error, is the envelope {\"status\", \"message\", \"data\"}; errors carry data.error with a stable code. Every response carries X-Request-Id and Content-Type: application/json. Authentication is Authorization: Bearer <token>, with roles reader < operator < admin; x-min-role on each operation names the lowest role it accepts (public: no token). Each route declares its query parameters; any other is a 400 VALIDATION_FAILED naming it. An unknown path is a 404 NOT_FOUND; a known path with another method is a 405 METHOD_NOT_ALLOWED with an Allow header.",
    },
    "tags": [
        {"name": "health", "description": "Liveness, for load balancers and monitoring."},
        {"name": "gpu-types", "description": "The GPU types each environment offers."},
        {"name": "flags", "description": "Per-environment feature flags: which plugin instance serves each category, rollouts, rollbacks and their audit log."},
        {"name": "integrations", "description": "The configured plugin instances and their tools' health."},
    ],
    "security": [{"bearerAuth": []}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token created with llm-opsctl token create; each token has a role: reader, operator or admin.",
            },
        },
        "parameters": parameters,
        "headers": headers,
        "responses": responses,
        "schemas": schemas,
    },
}

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.json")
with open(OUT, "w") as f:
    json.dump(doc, f, indent=2, ensure_ascii=False)
    f.write("\n")
