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
               "METHOD_NOT_ALLOWED", "CONFLICT", "PRECONDITION_FAILED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
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
RO_IN_BODY = (" The read-only members of a GET answer may be sent back: environment and created_at must then"
              " equal the object's (a different value is a 400 VALIDATION_FAILED naming the member);"
              " updated_at is not compared.")
gpu_replace = {
    "type": "object",
    "description": "The full GpuType for PUT. name may be omitted; if given it must equal the {name} of the path." + RO_IN_BODY,
    "required": [k for k in required_input if k != "name"],
    "additionalProperties": False,
    "properties": {**copy.deepcopy(gpu_props), **copy.deepcopy(ro_props)},
}
gpu_patch = {
    "type": "object",
    "description": "Some GpuType members for PATCH; name cannot be changed." + RO_IN_BODY,
    "additionalProperties": False,
    "properties": {**{k: copy.deepcopy(v) for k, v in gpu_props.items() if k != "name"},
                   **copy.deepcopy(ro_props)},
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
                  "description": "Stable error codes. INVALID_JSON, VALIDATION_FAILED 400; UNAUTHENTICATED 401; FORBIDDEN 403; NOT_FOUND 404; METHOD_NOT_ALLOWED 405; CONFLICT 409; PRECONDITION_FAILED 412; PAYLOAD_TOO_LARGE 413; UNSUPPORTED_MEDIA_TYPE 415; INTERNAL 500; TOOL_ERROR 502; DATABASE_UNAVAILABLE, TOOL_UNAVAILABLE 503. TOOL_ERROR and TOOL_UNAVAILABLE come from plugins."},
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
            "state": {"type": "string", "enum": ["degraded", "failed", "pending", "done", "dead", "discarded"],
                      "description": "GET /llm-ops/v1/integrations/{name}/health, 502/503: failed when the instance is not running, degraded when its health probe failed. POST /llm-ops/v1/outbox/{id}/retry and /discard, 409: the row's state (pending, done or discarded), which is not dead; /discard, 409 with operation create_run: dead, but a run's creation cannot be discarded."},
            "id": {"type": "string",
                   "description": "POST /llm-ops/v1/experiments, 409: the platform id of the experiment that has the name, when the platform knows it."},
            "latency_ms": {"type": "number",
                           "description": "GET /llm-ops/v1/integrations/{name}/health, 502/503 after a probe: how long the failed probe took, in milliseconds."},
            "tool_status": {"type": "integer",
                            "description": "GET /llm-ops/v1/integrations/{name}/health, 502/503 after a probe: the tool's HTTP status, 0 when it did not answer. Experiment and run routes: the tool's HTTP status, when the plugin reported one."},
            "instance": {"type": "string",
                         "description": "Experiment and run routes, training jobs: the plugin instance that failed, is not running, or holds the object."},
            "operation": {"type": "string",
                          "description": "Experiment and run routes: the plugin operation that failed (create_run, log_batch, search_runs, ...). POST /llm-ops/v1/outbox/{id}/discard, 409: create_run, which cannot be discarded."},
            "retryable": {"type": "boolean",
                          "description": "Experiment and run routes: whether the plugin said that the same call may succeed later."},
            "batches_done": {"type": "integer", "minimum": 0,
                             "description": "POST /llm-ops/v1/runs/{id}/log: how many batches were stored before the one that failed. Sending the same body again is safe."},
            "batches": {"type": "integer", "minimum": 1,
                        "description": "POST /llm-ops/v1/runs/{id}/log: how many batches the body was split into."},
            "tracking_state": {"type": "string", "enum": ["pending"],
                               "description": "409 of an experiment or run route: the object has a platform id but is not created in its tool yet (a training job's run waiting in the outbox)."},
            "capacity": {"type": "integer",
                         "description": "POST /llm-ops/v1/training-jobs, 400 on gpu_count: the GPUs of that type in the environment."},
            "from": {"type": "string",
                     "description": "PATCH /llm-ops/v1/training-jobs/{id}, 409: the job's status."},
            "to": {"type": "string",
                   "description": "PATCH /llm-ops/v1/training-jobs/{id}, 409: the status asked for."},
            "etag": {"type": "string",
                     "description": "412 of a GPU type route: the type's current entity tag (also in the ETag header)."},
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
                       "description": "The effective flag before the change, as read in the transaction that made it (so it is the after of the previous change of that flag); null when none was set."},
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
                    "abi": "1.1", "category": "experiment_tracking", "tool_version": "2.14.1",
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
    "PreconditionFailed": err_response("PRECONDITION_FAILED: If-Match names none of the GPU type's current entity tag (data.error.etag and the ETag header carry it), another write under the same tag came first, or there is no such GPU type. Nothing was written.",
                                       ["PRECONDITION_FAILED"], {"ETag": ref("headers", "GpuTypeETag")}),
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
    "GpuTypeETag": {"description": "Entity tag of this GPU type (strong): it changes with every write of the type. Send it in If-Match to make a PUT, PATCH or DELETE conditional.",
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
    "If-Match": {
        "name": "If-Match", "in": "header", "required": False,
        "description": "One or more entity tags of the GPU type (from its ETag), or *: the write is made only while the type's current tag is one of them (strong comparison), else 412 PRECONDITION_FAILED and nothing is written.",
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
                "201": ok("Created.", "GpuTypeEnvelope", {"ETag": ref("headers", "GpuTypeETag")}),
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
            "parameters": P_ITEM + [ref("parameters", "If-None-Match")],
            "responses": merge({
                "200": ok("The GPU type.", "GpuTypeEnvelope", {"ETag": ref("headers", "GpuTypeETag")}),
                "304": {"description": "Not Modified: If-None-Match equals the type's current ETag. No body.",
                        "headers": {**RID, "ETag": ref("headers", "GpuTypeETag")}},
                "400": R("BadQuery"),
                "404": R("NotFound"),
            }, AUTH, COMMON_TAIL),
        },
        "put": {
            "operationId": "replaceGpuType",
            "tags": ["gpu-types"],
            "summary": "Replace a GPU type",
            "x-min-role": "operator",
            "parameters": P_ITEM + [ref("parameters", "If-Match")],
            "requestBody": body("GpuTypeReplace", "The full GpuType; name may be omitted and must equal {name} if given."),
            "responses": merge({
                "200": ok("The replaced GPU type.", "GpuTypeEnvelope", {"ETag": ref("headers", "GpuTypeETag")}),
                "400": R("BadRequest"),
                "404": R("NotFound"),
                "409": err_response("CONFLICT: without If-Match, the type was changed by other writers 10 times between this request's read and its write; send it again.", ["CONFLICT"]),
                "412": R("PreconditionFailed"),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, COMMON_TAIL),
        },
        "patch": {
            "operationId": "updateGpuType",
            "tags": ["gpu-types"],
            "summary": "Change some members of a GPU type",
            "x-min-role": "operator",
            "parameters": P_ITEM + [ref("parameters", "If-Match")],
            "requestBody": body("GpuTypePatch", "Some GpuType members, not name. The members are merged into the type as it is when written: a concurrent PATCH of other members keeps its change."),
            "responses": merge({
                "200": ok("The updated GPU type.", "GpuTypeEnvelope", {"ETag": ref("headers", "GpuTypeETag")}),
                "400": R("BadRequest"),
                "404": R("NotFound"),
                "409": err_response("CONFLICT: without If-Match, the type was changed by other writers 10 times between this request's read and its write; send it again.", ["CONFLICT"]),
                "412": R("PreconditionFailed"),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, COMMON_TAIL),
        },
        "delete": {
            "operationId": "deleteGpuType",
            "tags": ["gpu-types"],
            "summary": "Delete a GPU type",
            "x-min-role": "operator",
            "parameters": P_ITEM + [ref("parameters", "If-Match")],
            "responses": merge({
                "200": ok("Deleted; data is null.", "NullEnvelope"),
                "400": R("BadQuery"),
                "404": R("NotFound"),
                "412": R("PreconditionFailed"),
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
            "description": "The fallback becomes the active instance; the candidate and its rollout are cleared; the fallback stays. Stored and audited (action rollback) like a PUT; every worker of the host applies it from the next request after this answer. Takes no query parameters.",
            "x-min-role": "operator",
            "parameters": P_FLAG,
            "requestBody": body("FlagRollback", "The reason for the rollback."),
            "responses": merge({
                "200": ok("Rolled back: the new effective flag and its audit row.", "FlagChangeEnvelope"),
                "400": err_response("INVALID_JSON or VALIDATION_FAILED: {env} or {category} unknown, a member other than reason, a query parameter, or reason missing or not 1-500 bytes.",
                                    ["INVALID_JSON", "VALIDATION_FAILED"]),
                "409": err_response("CONFLICT: the flag has no fallback, or it is already served by its fallback with no candidate (decided on the flag as stored, under a lock: of concurrent rollbacks one succeeds, the others get this).",
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

# ------------------------------------------------------------------ experiment tracking

TRACKING_NAME = {"type": "string", "minLength": 1, "maxLength": 250,
                 "description": "1-250 bytes (UTF-8)."}
TRACK_KEY = {"type": "string", "minLength": 1, "maxLength": 250}
TAGS = {"type": "object",
        
        "additionalProperties": {"oneOf": [{"type": "string", "maxLength": 5000},
                                           {"type": "number"}, {"type": "boolean"}]},
        "description": "Tag key (1-250 bytes) -> value (a string of at most 5000 bytes; a number or boolean is stored as its text). The key llmops.idempotency_key is reserved.",
        "example": {"team": "nlp", "purpose": "baseline"}}
TAGS_OUT = {"type": "object", "additionalProperties": {"type": "string"},
            "description": "Tag key -> value. Includes the tags the tool sets itself (MLflow's mlflow.runName, ...), never llmops.idempotency_key."}
PARAMS = {"type": "object",
          
          "additionalProperties": {"oneOf": [{"type": "string", "maxLength": 6000},
                                             {"type": "number"}, {"type": "boolean"}]},
          "description": "Param key (1-250 bytes) -> value (a string of at most 6000 bytes; a number or boolean is stored as its text, e.g. 0.001 as \"0.001\", true as \"true\"). A logged param never changes: logging another value for it is a 409.",
          "example": {"learning_rate": "0.0003", "epochs": 3}}
PLATFORM_ID_DESC = "Platform id: %s_ and 24 lowercase hex digits. Objects made in the tool by other clients get one (are adopted) the first time the platform lists them."
STATUS_RUN = {"type": "string", "enum": ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"],
              "description": "SCHEDULED only appears on runs other MLflow clients made."}
LIFECYCLE = {"type": "string", "enum": ["active", "deleted"]}
MS = {"type": "integer", "format": "int64", "description": "Milliseconds since the epoch."}

schemas.update({
    "MetricValue": {
        "description": "A JSON number, or exactly one of the strings \"NaN\", \"Infinity\", \"-Infinity\" (JSON has no such numbers). Values read back as written.",
        "oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}],
        "example": 0.4312,
    },
    "Metric": {
        "type": "object",
        "description": "One point of a metric.",
        "required": ["key", "value", "timestamp_ms", "step"],
        "additionalProperties": False,
        "properties": {
            "key": TRACK_KEY,
            "value": ref("schemas", "MetricValue"),
            "timestamp_ms": MS,
            "step": {"type": "integer", "format": "int64", "description": "May be negative."},
        },
        "example": {"key": "loss", "value": 0.4312, "timestamp_ms": 1795000000000, "step": 100},
    },
    "MetricInput": {
        "type": "object",
        "description": "One point to log. Unknown members are a 400 naming them (metrics[i].member).",
        "required": ["key", "value"],
        "additionalProperties": False,
        "properties": {
            "key": TRACK_KEY,
            "value": ref("schemas", "MetricValue"),
            "timestamp_ms": {**MS, "description": "Milliseconds since the epoch; default: when this same body was first received for the run (remembered until it has not been sent for 24 hours), so a resend makes the same points, which are stored once."},
            "step": {"type": "integer", "format": "int64", "default": 0},
        },
        "example": {"key": "loss", "value": "NaN", "step": 7},
    },
    "Experiment": {
        "type": "object",
        "description": "An experiment, in the instance that holds it.",
        "required": ["id", "external_id", "instance", "name", "lifecycle", "tags"],
        "properties": {
            "id": {"type": "string", "pattern": "^exp_[0-9a-f]{24}$", "description": PLATFORM_ID_DESC % "exp"},
            "external_id": {"type": "string", "description": "The tool's id (MLflow: a decimal string; \"0\" is Default)."},
            "instance": {**INSTANCE, "description": "The experiment_tracking instance that holds it."},
            "name": TRACKING_NAME,
            "lifecycle": LIFECYCLE,
            "tags": TAGS_OUT,
            "created_ms": MS,
            "updated_ms": MS,
            "links": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "URLs into the tool, e.g. ui."},
            "tool": {"type": "object", "description": "Tool-specific members."},
        },
        "example": {"id": "exp_3f1c0a9e5b7d2c4e6a8b0d1f", "external_id": "17",
                    "instance": "mlflow-prod", "name": "llama-sft", "lifecycle": "active",
                    "tags": {"team": "nlp"}, "created_ms": 1795000000000,
                    "updated_ms": 1795000000000,
                    "links": {"ui": "https://mlflow.example.internal/#/experiments/17"}},
    },
    "ExperimentCreate": {
        "type": "object",
        "description": "Unknown members are a 400 VALIDATION_FAILED naming them.",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {"name": TRACKING_NAME, "tags": TAGS},
        "example": {"name": "llama-sft", "tags": {"team": "nlp"}},
    },
    "ExperimentPatch": {
        "type": "object",
        "description": "Sets (adds or replaces) tags; the others stay. Needs a module with set_experiment_tags (tracking-pg has it; otherwise 400).",
        "required": ["tags"],
        "additionalProperties": False,
        "properties": {"tags": {**TAGS, "minProperties": 1, "maxProperties": 100}},
        "example": {"tags": {"status": "frozen"}},
    },
    "ExperimentList": {
        "type": "object",
        "required": ["experiments", "instance", "sources", "next_page_token"],
        "additionalProperties": False,
        "properties": {
            "experiments": {"type": "array", "items": ref("schemas", "Experiment")},
            "instance": {**INSTANCE, "description": "The active instance of the environment's flag (or the one ?instance= named); each experiment names the instance that holds it."},
            "sources": ref("schemas", "Sources"),
            "next_page_token": {"type": "string", "nullable": True,
                                "description": "Pass as page_token for the next page; null on the last page. Opaque: it keeps each source's position, so no experiment comes twice and a source that was unavailable is asked again on the pages that follow (a source down alone makes no next page)."},
        },
    },
    "Deleted": {
        "type": "object",
        "required": ["id", "deleted"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "deleted": {"type": "boolean", "description": "false when it was deleted already."},
        },
    },
    "Run": {
        "type": "object",
        "description": "A run: its info, params, tags, and the latest point of each metric.",
        "required": ["id", "external_id", "experiment_id", "experiment_external_id", "instance",
                     "name", "status", "lifecycle", "start_time_ms", "params", "tags", "metrics"],
        "properties": {
            "id": {"type": "string", "pattern": "^run_[0-9a-f]{24}$", "description": PLATFORM_ID_DESC % "run"},
            "external_id": {"type": "string", "description": "The tool's run id (MLflow: 32 hex digits)."},
            "experiment_id": {"type": "string", "nullable": True, "pattern": "^exp_[0-9a-f]{24}$",
                              "description": "The platform id of the run's experiment."},
            "experiment_external_id": {"type": "string", "description": "The tool's id of the run's experiment."},
            "instance": {**INSTANCE, "description": "The experiment_tracking instance that holds it."},
            "name": {"type": "string", "description": "A run created without one gets a name from the tool."},
            "status": STATUS_RUN,
            "lifecycle": LIFECYCLE,
            "start_time_ms": MS,
            "end_time_ms": {**MS, "description": "Set once the run ended."},
            "user": {"type": "string", "description": "Who the run is for."},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
            "tool": {"type": "object", "description": "Tool-specific members (mlflow: artifact_uri)."},
            "params": {"type": "object", "additionalProperties": {"type": "string"}},
            "tags": TAGS_OUT,
            "metrics": {"type": "array", "items": ref("schemas", "Metric"),
                        "description": "The latest point of each metric key."},
        },
    },
    "RunCreate": {
        "type": "object",
        "description": "Every member is optional ({} is a valid body). Unknown members are a 400 VALIDATION_FAILED naming them.",
        "additionalProperties": False,
        "properties": {
            "name": TRACKING_NAME,
            "tags": TAGS,
            "user": {"type": "string", "maxLength": 255,
                     "description": "Who the run is for; default: the caller's token name."},
            "start_time_ms": {**MS, "description": "Default: now."},
        },
        "example": {"name": "lr-3e-4", "tags": {"purpose": "sweep"}},
    },
    "RunPatch": {
        "type": "object",
        "description": "At least one member. A status other than RUNNING without end_time_ms sets end_time_ms to now.",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "status": {"type": "string", "enum": ["RUNNING", "FINISHED", "FAILED", "KILLED"]},
            "name": TRACKING_NAME,
            "end_time_ms": MS,
        },
        "example": {"status": "FINISHED"},
    },
    "LogBatch": {
        "type": "object",
        "description": "Metric points, params and tags, each optional. The server checks everything first (nothing is logged when a member is wrong), then splits the body into batches within the tool's limits (at most 1000 metric points, 100 params, 100 tags, 1000 entries per batch): params and tags first, then the points in the order given. The body itself is limited by [server] max_body_bytes. Unknown members are a 400 VALIDATION_FAILED naming them.",
        "additionalProperties": False,
        "properties": {
            "metrics": {"type": "array", "items": ref("schemas", "MetricInput")},
            "params": PARAMS,
            "tags": TAGS,
        },
        "example": {"metrics": [{"key": "loss", "value": 0.43, "step": 100},
                                {"key": "grad_norm", "value": "Infinity", "step": 100}],
                    "params": {"learning_rate": 0.0003}, "tags": {"stage": "sft"}},
    },
    "LogResult": {
        "type": "object",
        "required": ["id", "metrics", "params", "tags", "batches"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "description": "The run (or training job) the values were for."},
            "metrics": {"type": "integer", "description": "Metric points."},
            "params": {"type": "integer"},
            "tags": {"type": "integer"},
            "batches": {"type": "integer", "minimum": 1,
                        "description": "How many batches (plugin calls, or outbox rows) the body became."},
        },
        "example": {"id": "run_9a0b1c2d3e4f5a6b7c8d9e0f", "metrics": 2, "params": 1, "tags": 1,
                    "batches": 1},
    },
    "MetricHistory": {
        "type": "object",
        "required": ["id", "key", "metrics", "next_page_token"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "description": "The run."},
            "key": TRACK_KEY,
            "metrics": {"type": "array", "items": ref("schemas", "Metric"),
                        "description": "By step, then timestamp_ms. A key never logged gives an empty list."},
            "next_page_token": {"type": "string", "nullable": True,
                                "description": "Pass as page_token for the next page; null on the last page."},
        },
    },
    "RunSearch": {
        "type": "object",
        "description": "Unknown members are a 400 VALIDATION_FAILED naming them. The filter language and order_by are in doc/api.md.",
        "required": ["experiment_ids"],
        "additionalProperties": False,
        "properties": {
            "experiment_ids": {"type": "array", "minItems": 1, "maxItems": 100,
                               "items": {"type": "string", "pattern": "^exp_[0-9a-f]{24}$"},
                               "description": "Platform ids of experiments; they may be held by different instances: each is asked for the runs of its experiments and the pages are merged in the search's order."},
            "filter": {"type": "string",
                       "description": "clause { AND clause }, at most 20 clauses; clause := FIELD op value; FIELD := metric.KEY | param.KEY | tag.KEY | attribute.NAME | NAME (also metrics. params. tags. attributes.; NAME: status, name, start_time_ms, end_time_ms; KEY: [A-Za-z0-9_.:/-]+ or `any` in backquotes); op := < <= = != >= > LIKE ILIKE; value := a number or a string in '' or \"\" (a doubled quote stands for itself). Metrics compare with < <= = != >= > and a number (the latest point), params, tags and name with = != LIKE ILIKE and a string, status with = != and RUNNING, SCHEDULED, FINISHED, FAILED or KILLED, times with < <= = != >= > and an integer. No OR. Empty: every run.",
                       "example": "metrics.loss < 0.5 AND params.learning_rate = '0.0003' AND status = 'FINISHED'"},
            "order_by": {"type": "array", "maxItems": 3,
                         "items": {"type": "string", "description": "FIELD [ASC|DESC], FIELD as in filter; DESC by default."},
                         "description": "Absent or empty: start_time_ms DESC.",
                         "example": ["metrics.loss ASC", "start_time_ms DESC"]},
            "lifecycle": {"type": "string", "enum": ["active", "deleted", "all"], "default": "active"},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            "page_token": {"type": "string", "description": "next_page_token of the previous page."},
        },
    },
    "RunList": {
        "type": "object",
        "required": ["runs", "sources", "next_page_token"],
        "additionalProperties": False,
        "properties": {
            "runs": {"type": "array", "items": ref("schemas", "Run")},
            "sources": ref("schemas", "Sources"),
            "next_page_token": {"type": "string", "nullable": True,
                                "description": "Pass as page_token for the next page; null on the last page. It keeps each instance's own position (opaque)."},
        },
    },
    "Sources": {
        "type": "object",
        "description": "What each instance asked for this page did: ok (answered), unavailable (down or a tool error: the page has the others' objects only, and a later page asks it again from where it stood) or not_asked (the page was full before it).",
        "additionalProperties": {"type": "string", "enum": ["ok", "unavailable", "not_asked"]},
        "example": {"tracking-pg": "ok", "mlflow": "unavailable"},
    },
    "RunComparisonRow": {
        "type": "object",
        "required": ["id", "name", "status", "experiment_id", "instance", "params", "metrics"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^run_[0-9a-f]{24}$"},
            "name": {"type": "string"},
            "status": STATUS_RUN,
            "experiment_id": {"type": "string", "nullable": True},
            "instance": INSTANCE,
            "params": {"type": "object", "additionalProperties": {"type": "string"}},
            "metrics": {"type": "object", "additionalProperties": ref("schemas", "MetricValue"),
                        "description": "The latest value of each metric key (only the keys asked for with keys=)."},
        },
    },
    "RunComparison": {
        "type": "object",
        "required": ["runs", "metric_keys"],
        "additionalProperties": False,
        "properties": {
            "runs": {"type": "array", "items": ref("schemas", "RunComparisonRow"),
                     "description": "In the order of run_ids."},
            "metric_keys": {"type": "array", "items": {"type": "string"},
                            "description": "Every metric key of the runs (or of keys=), each once."},
            "histories": {"type": "object",
                          "additionalProperties": {"type": "object", "additionalProperties": {
                              "type": "array", "items": ref("schemas", "Metric")}},
                          "description": "Only with history=true: key -> run id -> every point of that metric (at most about 100000 per run and key)."},
        },
    },
    "ExperimentEnvelope": success_envelope(ref("schemas", "Experiment"), "Envelope whose data is one Experiment."),
    "ExperimentListEnvelope": success_envelope(ref("schemas", "ExperimentList"), "Envelope whose data is a page of experiments."),
    "DeletedEnvelope": success_envelope(ref("schemas", "Deleted"), "Envelope whose data says what was deleted."),
    "RunEnvelope": success_envelope(ref("schemas", "Run"), "Envelope whose data is one Run."),
    "RunListEnvelope": success_envelope(ref("schemas", "RunList"), "Envelope whose data is a page of runs."),
    "RunComparisonEnvelope": success_envelope(ref("schemas", "RunComparison"), "Envelope whose data compares runs."),
    "LogResultEnvelope": success_envelope(ref("schemas", "LogResult"), "Envelope whose data counts what was logged or queued."),
    "MetricHistoryEnvelope": success_envelope(ref("schemas", "MetricHistory"), "Envelope whose data is a page of a metric's history."),
})

# ------------------------------------------------------------------ training jobs and the outbox

JOB_STATUS = {"type": "string", "enum": ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]}
TS_MS = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, with milliseconds."}

schemas.update({
    "TrainingJobCreate": {
        "type": "object",
        "description": "Unknown members are a 400 VALIDATION_FAILED naming them. The job's environment is ?env=.",
        "required": ["name", "experiment", "base_model", "dataset", "gpu_type", "gpu_count"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 250},
            "experiment": {"type": "string", "minLength": 1, "maxLength": 250,
                           "description": "The experiment's name in the tracker: found, or created when the run is delivered. A deleted experiment of that name dead-letters the run."},
            "base_model": {"type": "string", "minLength": 1, "maxLength": 512},
            "dataset": {"type": "string", "minLength": 1, "maxLength": 2048},
            "gpu_type": {"type": "string", "minLength": 1, "maxLength": 63,
                         "description": "A GPU type of the environment, enabled."},
            "gpu_count": {"type": "integer", "minimum": 1, "maximum": 1024,
                          "description": "At most the capacity of the GPU type in the environment."},
            "hyperparameters": {"type": "object", "maxProperties": 500,
                                
                                "additionalProperties": {"oneOf": [{"type": "string", "maxLength": 6000},
                                                                   {"type": "number"}, {"type": "boolean"}]},
                                "description": "Name -> value (string, number or boolean). Kept as given on the job; logged to the run as params (as text)."},
            "description": {"type": "string", "minLength": 1, "maxLength": 4096},
        },
        "example": {"name": "llama3-8b-sft-v2", "experiment": "llama-sft",
                    "base_model": "meta-llama/Meta-Llama-3-8B", "dataset": "s3://datasets/sft/v2",
                    "gpu_type": "nvidia-a100-80gb", "gpu_count": 8,
                    "hyperparameters": {"learning_rate": 0.0003, "epochs": 3, "lora": True}},
    },
    "TrainingJobPatch": {
        "type": "object",
        "description": "QUEUED -> RUNNING, SUCCEEDED, FAILED or CANCELLED; RUNNING -> SUCCEEDED, FAILED or CANCELLED. The same status again is a 200 that changes nothing. Each change queues the run's update (RUNNING, FINISHED, FAILED or KILLED, with end_time_ms for the last three).",
        "required": ["status"],
        "additionalProperties": False,
        "properties": {"status": JOB_STATUS},
        "example": {"status": "SUCCEEDED"},
    },
    "JobTracking": {
        "type": "object",
        "description": "Where the job's run stands in the tracker.",
        "required": ["state", "instance", "run_external_id", "last_error", "queued", "blocked_by", "links"],
        "additionalProperties": False,
        "properties": {
            "state": {"type": "string", "enum": ["pending", "syncing", "ready", "dead"],
                      "description": "pending: the run is not created in the tracker yet; syncing: it is, and values or status changes are still queued; ready: everything queued was delivered; dead: an outbox row of the run was dead-lettered, and the rows after it wait until an admin retries it (POST /llm-ops/v1/outbox/retry) or discards it (POST /llm-ops/v1/outbox/{id}/discard); blocked_by names it."},
            "instance": {**INSTANCE, "description": "The experiment_tracking instance that holds (or will hold) the run: the one the flag chose when the job was created."},
            "run_external_id": {"type": "string", "nullable": True,
                                "description": "The tracker's run id; null while pending."},
            "last_error": {"type": "string", "nullable": True,
                           "description": "The error of the oldest undelivered row that failed, if any."},
            "queued": {"type": "integer", "minimum": 0,
                       "description": "Outbox rows of the run still pending."},
            "blocked_by": {"allOf": [ref("schemas", "JobBlockedBy")], "nullable": True,
                           "description": "The run's first dead outbox row, which holds the rows behind it back; null when none is dead."},
            "links": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "ui: the run in the tracker's UI, once created."},
        },
    },
    "JobBlockedBy": {
        "type": "object",
        "required": ["outbox_id", "operation", "last_error", "dead_since", "blocked_rows"],
        "additionalProperties": False,
        "properties": {
            "outbox_id": {"type": "integer", "format": "int64", "description": "Retry or discard this row (admin)."},
            "operation": {"type": "string", "enum": ["create_run", "log_batch", "update_run"]},
            "last_error": {"type": "string", "nullable": True},
            "dead_since": TS_MS,
            "blocked_rows": {"type": "integer", "minimum": 0,
                             "description": "Pending rows of the run behind it."},
        },
    },
    "TrainingJob": {
        "type": "object",
        "required": ["id", "environment", "name", "experiment", "base_model", "dataset",
                     "gpu_type", "gpu_count", "hyperparameters", "description", "status",
                     "run_id", "experiment_id", "links", "created_at", "updated_at",
                     "created_by", "tracking"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^job_[0-9a-f]{24}$"},
            "environment": {"type": "string"},
            "name": {"type": "string"},
            "experiment": {"type": "string", "description": "The experiment's name."},
            "base_model": {"type": "string"},
            "dataset": {"type": "string"},
            "gpu_type": {"type": "string"},
            "gpu_count": {"type": "integer"},
            "hyperparameters": {"type": "object"},
            "description": {"type": "string", "nullable": True},
            "status": JOB_STATUS,
            "run_id": {"type": "string", "pattern": "^run_[0-9a-f]{24}$",
                       "description": "The platform id of the job's run, given when the job is created; GET /llm-ops/v1/runs/{id} reads it once tracking.state is no longer pending (409 before)."},
            "experiment_id": {"type": "string", "nullable": True, "pattern": "^exp_[0-9a-f]{24}$",
                              "description": "The platform id of the experiment; null until the run is created."},
            "links": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "ui: the run in the tracker's UI, once created."},
            "created_at": TS_MS,
            "updated_at": TS_MS,
            "created_by": {"type": "string", "description": "The token name of the creator."},
            "tracking": ref("schemas", "JobTracking"),
        },
        "example": {"id": "job_5e6f7a8b9c0d1e2f3a4b5c6d", "environment": "prod",
                    "name": "llama3-8b-sft-v2", "experiment": "llama-sft",
                    "base_model": "meta-llama/Meta-Llama-3-8B", "dataset": "s3://datasets/sft/v2",
                    "gpu_type": "nvidia-a100-80gb", "gpu_count": 8,
                    "hyperparameters": {"learning_rate": 0.0003, "epochs": 3, "lora": True},
                    "description": None, "status": "QUEUED",
                    "run_id": "run_9a0b1c2d3e4f5a6b7c8d9e0f", "experiment_id": None, "links": {},
                    "created_at": "2026-11-26T10:15:00.123Z", "updated_at": "2026-11-26T10:15:00.123Z",
                    "created_by": "alice",
                    "tracking": {"state": "pending", "instance": "mlflow-prod",
                                 "run_external_id": None, "last_error": None, "queued": 2,
                                 "links": {}}},
    },
    "TrainingJobList": {
        "type": "object",
        "required": ["training_jobs", "next_cursor"],
        "additionalProperties": False,
        "properties": {
            "training_jobs": {"type": "array", "items": ref("schemas", "TrainingJob"),
                              "description": "Oldest first."},
            "next_cursor": {"type": "string", "nullable": True,
                            "description": "Pass as after= for the next page (a job id); null on the last page."},
        },
    },
    "OutboxRow": {
        "type": "object",
        "description": "One tool write waiting for, or done by, the jobs process (llm-opsd --jobs). The payload is not shown.",
        "required": ["id", "object_id", "environment", "operation", "state", "attempts",
                     "next_attempt_at", "last_error", "created_at", "updated_at", "instance",
                     "external_id", "training_job_id", "metric_points", "blocked_by", "discarded"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer", "format": "int64", "description": "Increases with every row; rows of one object are delivered in id order."},
            "object_id": {"type": "string", "description": "The platform id of the object written (a run)."},
            "environment": {"type": "string"},
            "operation": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$",
                          "description": "An operation of the object's category: create_run, log_batch or update_run for experiment tracking, the only category with outbox rows today."},
            "state": {"type": "string", "enum": ["pending", "done", "dead", "discarded"],
                      "description": "pending: to deliver (now, or after its backoff); done: delivered; dead: failed for good (a permanent error, or [outbox] max_attempts attempts); later rows of the same object wait until it is retried or discarded; discarded: a dead row an admin skipped, never delivered, holding nothing back."},
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt_at": {**TS_MS, "description": "When a pending row is due, RFC 3339 UTC."},
            "last_error": {"type": "string", "nullable": True,
                           "description": "The error of the last failed attempt, with the instance."},
            "created_at": TS_MS,
            "updated_at": TS_MS,
            "instance": {**INSTANCE, "description": "The instance the row is delivered to: the one that holds the object."},
            "external_id": {"type": "string", "nullable": True,
                            "description": "The tool's id of the object; null until create_run is delivered."},
            "training_job_id": {"type": "string", "nullable": True,
                                "description": "The training job whose run it is, if any."},
            "metric_points": {"type": "integer", "minimum": 0,
                              "description": "log_batch: the metric points it carries."},
            "blocked_by": {"type": "integer", "format": "int64", "nullable": True,
                           "description": "A pending row: the dead row of its object before it that holds it back; else null."},
            "discarded": {"type": "object", "nullable": True, "additionalProperties": False,
                          "required": ["by", "at", "reason"],
                          "properties": {"by": {"type": "string", "description": "The admin's token name."},
                                         "at": TS_MS, "reason": {"type": "string"}},
                          "description": "A discarded row: who discarded it, when and why; else null."},
        },
        "example": {"id": 42, "object_id": "run_9a0b1c2d3e4f5a6b7c8d9e0f", "environment": "prod",
                    "operation": "create_run", "state": "pending", "attempts": 3,
                    "next_attempt_at": "2026-11-26T10:15:09.500Z",
                    "last_error": "cannot connect to https://mlflow.example.internal (instance mlflow-prod)",
                    "created_at": "2026-11-26T10:15:00.123Z", "updated_at": "2026-11-26T10:15:05.500Z",
                    "instance": "mlflow-prod", "external_id": None,
                    "training_job_id": "job_5e6f7a8b9c0d1e2f3a4b5c6d", "metric_points": 0,
                    "blocked_by": None, "discarded": None},
    },
    "OutboxCounts": {
        "type": "object",
        "required": ["pending", "dead", "discarded", "oldest_pending_seconds"],
        "additionalProperties": False,
        "properties": {
            "pending": {"type": "integer", "minimum": 0},
            "dead": {"type": "integer", "minimum": 0},
            "discarded": {"type": "integer", "minimum": 0},
            "oldest_pending_seconds": {"type": "number", "minimum": 0,
                                       "description": "Age of the oldest pending row; 0 when none is pending."},
        },
    },
    "OutboxList": {
        "type": "object",
        "required": ["rows", "next_cursor", "counts"],
        "additionalProperties": False,
        "properties": {
            "rows": {"type": "array", "items": ref("schemas", "OutboxRow"), "description": "By id."},
            "next_cursor": {"type": "integer", "nullable": True,
                            "description": "Pass as after= for the next page (an outbox id); null on the last page."},
            "counts": {"allOf": [ref("schemas", "OutboxCounts")],
                       "description": "Over the whole outbox (or ?env=), whatever state= and the page."},
        },
    },
    "OutboxRetry": {
        "type": "object",
        "description": "Which dead rows to retry: those of ids, those of env, both conditions, or every dead row ({}). Rows that are not dead are left alone. Unknown members are a 400 VALIDATION_FAILED naming them.",
        "additionalProperties": False,
        "properties": {
            "ids": {"type": "array", "maxItems": 10000, "items": {"type": "integer", "format": "int64"}},
            "env": {"type": "string", "description": "One of the configured environments."},
        },
        "example": {"env": "prod"},
    },
    "OutboxDiscard": {
        "type": "object",
        "required": ["reason"],
        "additionalProperties": False,
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": 500,
                       "description": "Why the row is skipped, 1-500 characters; kept with the row."},
        },
        "example": {"reason": "lr was logged twice; the first value stands"},
    },
    "OutboxDiscarded": {
        "type": "object",
        "required": ["discarded", "object_id", "by", "reason", "released"],
        "additionalProperties": False,
        "properties": {
            "discarded": {"type": "integer", "format": "int64", "description": "The row discarded."},
            "object_id": {"type": "string", "description": "The object (run) whose rows it held back."},
            "by": {"type": "string", "description": "The admin's token name."},
            "reason": {"type": "string"},
            "released": {"type": "integer", "minimum": 0,
                         "description": "Pending rows of the object behind it, up to its next dead row: they go out now, in order."},
        },
    },
    "OutboxRetried": {
        "type": "object",
        "required": ["retried"],
        "additionalProperties": False,
        "properties": {
            "retried": {"type": "array", "items": {"type": "integer", "format": "int64"},
                        "description": "The rows set back to pending (attempts 0, due now)."},
        },
    },
    "TrainingJobEnvelope": success_envelope(ref("schemas", "TrainingJob"), "Envelope whose data is one TrainingJob."),
    "TrainingJobListEnvelope": success_envelope(ref("schemas", "TrainingJobList"), "Envelope whose data is a page of training jobs."),
    "OutboxListEnvelope": success_envelope(ref("schemas", "OutboxList"), "Envelope whose data is a page of outbox rows and the counts."),
    "OutboxRetriedEnvelope": success_envelope(ref("schemas", "OutboxRetried"), "Envelope whose data lists the rows retried."),
    "OutboxDiscardedEnvelope": success_envelope(ref("schemas", "OutboxDiscarded"), "Envelope whose data says which row was discarded and how many rows it released."),
})

parameters.update({
    "expId": {
        "name": "id", "in": "path", "required": True,
        "description": "The experiment's platform id; anything else is a 404.",
        "schema": {"type": "string", "pattern": "^exp_[0-9a-f]{24}$", "example": "exp_3f1c0a9e5b7d2c4e6a8b0d1f"},
    },
    "runId": {
        "name": "id", "in": "path", "required": True,
        "description": "The run's platform id; anything else is a 404.",
        "schema": {"type": "string", "pattern": "^run_[0-9a-f]{24}$", "example": "run_9a0b1c2d3e4f5a6b7c8d9e0f"},
    },
    "jobId": {
        "name": "id", "in": "path", "required": True,
        "description": "The training job's id; anything else is a 404.",
        "schema": {"type": "string", "pattern": "^job_[0-9a-f]{24}$", "example": "job_5e6f7a8b9c0d1e2f3a4b5c6d"},
    },
    "outboxId": {
        "name": "id", "in": "path", "required": True,
        "description": "The outbox row's id; anything else is a 404.",
        "schema": {"type": "integer", "format": "int64", "minimum": 1},
    },
    "trackingInstance": {
        "name": "instance", "in": "query", "required": False,
        "description": "List this experiment_tracking instance instead of the active instance of the environment's flag (400 when no such instance is configured).",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$", "example": "tracking-pg"},
    },
    "expName": {
        "name": "name", "in": "query", "required": False,
        "description": "Only the experiment of exactly this name.",
        "schema": {"type": "string"},
    },
    "expNamePrefix": {
        "name": "name_prefix", "in": "query", "required": False,
        "description": "Only the experiments whose name starts with this literal text (% and _ are not wildcards).",
        "schema": {"type": "string"},
    },
    "lifecycle": {
        "name": "lifecycle", "in": "query", "required": False,
        "description": "active (the default), deleted or all.",
        "schema": {"type": "string", "enum": ["active", "deleted", "all"], "default": "active"},
    },
    "maxResults": {
        "name": "max_results", "in": "query", "required": False,
        "description": "Page size.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    "pageToken": {
        "name": "page_token", "in": "query", "required": False,
        "description": "next_page_token of the previous page (opaque; an invalid one is a 400).",
        "schema": {"type": "string"},
    },
    "historyKey": {
        "name": "key", "in": "query", "required": True,
        "description": "The metric key, 1-250 bytes.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 250, "example": "loss"},
    },
    "historyMaxResults": {
        "name": "max_results", "in": "query", "required": False,
        "description": "Page size, in points.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 25000, "default": 1000},
    },
    "runIds": {
        "name": "run_ids", "in": "query", "required": True,
        "description": "1 to 20 run platform ids, separated by commas; the runs may be held by different instances.",
        "schema": {"type": "string", "example": "run_9a0b1c2d3e4f5a6b7c8d9e0f,run_0f1e2d3c4b5a69788796a5b4"},
    },
    "compareKeys": {
        "name": "keys", "in": "query", "required": False,
        "description": "Only these metric keys, separated by commas. Absent: every key of the runs.",
        "schema": {"type": "string", "example": "loss,eval_accuracy"},
    },
    "compareHistory": {
        "name": "history", "in": "query", "required": False,
        "description": "true: add every point of each metric (data.histories).",
        "schema": {"type": "string", "enum": ["true", "false"], "default": "false"},
    },
    "jobStatus": {
        "name": "status", "in": "query", "required": False,
        "description": "Only the jobs of this status.",
        "schema": JOB_STATUS,
    },
    "pageLimit": {
        "name": "limit", "in": "query", "required": False,
        "description": "Page size.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    "jobAfter": {
        "name": "after", "in": "query", "required": False,
        "description": "next_cursor of the previous page: the jobs created after this job. Anything else (not a job id, or no job of this environment) is a 400 VALIDATION_FAILED with field after.",
        "schema": {"type": "string", "pattern": "^job_[0-9a-f]{24}$"},
    },
    "outboxEnv": {
        "name": "env", "in": "query", "required": False,
        "description": "Only the rows (and counts) of this environment, one of the configured ones (any other value is a 400 VALIDATION_FAILED that lists them). Absent: every environment.",
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$", "example": "prod"},
    },
    "outboxState": {
        "name": "state", "in": "query", "required": False,
        "description": "Only the rows in this state.",
        "schema": {"type": "string", "enum": ["pending", "done", "dead", "discarded"]},
    },
    "outboxAfter": {
        "name": "after", "in": "query", "required": False,
        "description": "next_cursor of the previous page: the rows whose id is greater. Anything but an integer of 0 or more is a 400 VALIDATION_FAILED with field after.",
        "schema": {"type": "integer", "format": "int64", "minimum": 0, "default": 0},
    },
})

RID_P = ref("parameters", "X-Request-Id")
OTHER = "Other methods: 405 METHOD_NOT_ALLOWED with an Allow header."
PLUGIN_MAP = " Plugin errors map as in doc/api.md (invalid or unsupported 400, not found 404, conflict 409, tool error 502, unavailable 503, anything else 500); data.error then has instance, operation, retryable and, when the tool answered, tool_status."
TRACK_502 = err_response("TOOL_ERROR: the tool answered with an error, or answered no id when it created something (data.error.instance, operation, retryable, tool_status).",
                         ["TOOL_ERROR"])
TRACK_503 = err_response("TOOL_UNAVAILABLE: the instance that serves the request (or holds the object) is not running in the worker that answered, or its tool cannot be reached or timed out (data.error.instance). DATABASE_UNAVAILABLE: PostgreSQL cannot be reached or is at another schema version, or the platform ids cannot be read or recorded.",
                         ["TOOL_UNAVAILABLE", "DATABASE_UNAVAILABLE"])
TRACK_TAIL = {"500": R("Internal"), "502": TRACK_502, "503": TRACK_503}
PENDING_409 = "CONFLICT with data.error.tracking_state pending: the object has a platform id but is not created in its tool yet (a training job's run still in the outbox; GET /llm-ops/v1/training-jobs/{id} tells why)."

def not_found(what):
    return err_response("NOT_FOUND: no %s of that id (data.error.field id), or the tool no longer has it." % what, ["NOT_FOUND"])

def bad(desc):
    return err_response(desc, ["INVALID_JSON", "VALIDATION_FAILED"])

def bad_query(desc):
    return err_response(desc, ["VALIDATION_FAILED"])

paths.update({
    "/llm-ops/v1/experiments": {
        "summary": "Experiments of the experiment_tracking instance that serves an environment",
        "description": OTHER,
        "get": {
            "operationId": "listExperiments",
            "tags": ["experiments"],
            "summary": "List the experiments of the environment across its instances, a page at a time",
            "description": "Lists every instance that holds experiments of the environment (the active instance of its experiment_tracking flag first, then the fallback, then earlier owners from the objects table, each to its end), or only the instance named by ?instance=. One instance down answers 200 with the others' and says so in sources. Experiments that other clients made in the tool are adopted: they get a platform id the first time they are listed, and keep it." + PLUGIN_MAP,
            "x-min-role": "reader",
            "parameters": [ref("parameters", "env"), ref("parameters", "trackingInstance"),
                           ref("parameters", "expName"), ref("parameters", "expNamePrefix"),
                           ref("parameters", "lifecycle"), ref("parameters", "maxResults"),
                           ref("parameters", "pageToken"), RID_P],
            "responses": merge({
                "200": ok("A page of experiments.", "ExperimentListEnvelope"),
                "400": bad_query("VALIDATION_FAILED: an unknown query parameter or env; max_results not an integer 1-1000; lifecycle not active, deleted or all; instance= not a configured experiment_tracking instance; no instance serves experiment_tracking in the environment (field env: set the flag); a page_token the tool refuses."),
            }, AUTH, TRACK_TAIL),
        },
        "post": {
            "operationId": "createExperiment",
            "tags": ["experiments"],
            "summary": "Create an experiment where the environment's flag sends new objects",
            "description": "The instance is the flag's candidate for the caller's bucket, else its active instance (doc/api.md, feature flags); the experiment stays with that instance after the flag changes. A platform id is reserved first under a key derived from the instance and the name, which is also the tool's idempotency key: the retry of a create whose worker was killed reuses that id and gets 201 with the experiment, whether the tool had made it or not." + PLUGIN_MAP,
            "x-min-role": "operator",
            "parameters": P_ENV,
            "requestBody": body("ExperimentCreate", "The name and tags of the new experiment."),
            "responses": merge({
                "201": ok("Created; Location names it.", "ExperimentEnvelope",
                          {"Location": ref("headers", "Location")}),
                "400": bad("INVALID_JSON or VALIDATION_FAILED (data.error.field names the culprit): an unknown member or query parameter or env; name missing or not 1-250 bytes; tags not an object, a key not 1-250 bytes, a value not a string (number, boolean) of at most 5000 bytes, or the reserved key llmops.idempotency_key; no instance serves experiment_tracking in the environment (field env)."),
                "409": err_response("CONFLICT: the tool has an experiment of that name already (MLflow keeps the names of deleted experiments); data.error.id is its platform id when the platform knows it (an earlier create of the name answered).", ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, TRACK_TAIL),
        },
    },
    "/llm-ops/v1/experiments/{id}": {
        "summary": "One experiment, read from the instance that holds it",
        "description": OTHER,
        "get": {
            "operationId": "getExperiment",
            "tags": ["experiments"],
            "summary": "Read an experiment",
            "description": "Takes no query parameters." + PLUGIN_MAP,
            "x-min-role": "reader",
            "parameters": [ref("parameters", "expId"), RID_P],
            "responses": merge({
                "200": ok("The experiment.", "ExperimentEnvelope"),
                "400": R("BadQuery"),
                "404": not_found("experiment"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
            }, AUTH, TRACK_TAIL),
        },
        "patch": {
            "operationId": "setExperimentTags",
            "tags": ["experiments"],
            "summary": "Set tags of an experiment",
            "description": "Adds or replaces the tags given; the others stay. Needs a module with set_experiment_tags (optional in the interface)." + PLUGIN_MAP,
            "x-min-role": "operator",
            "parameters": [ref("parameters", "expId"), RID_P],
            "requestBody": body("ExperimentPatch", "The tags to set."),
            "responses": merge({
                "200": ok("The experiment with its tags.", "ExperimentEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED: a member other than tags, a query parameter; tags missing, empty, more than 100, or a key or value out of its limits; the experiment is deleted; the instance's module cannot set experiment tags."),
                "404": not_found("experiment"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, TRACK_TAIL),
        },
        "delete": {
            "operationId": "deleteExperiment",
            "tags": ["experiments"],
            "summary": "Delete an experiment (its lifecycle becomes deleted)",
            "description": "The tool marks it deleted; it is still read with GET and listed with lifecycle=deleted. MLflow keeps its name taken. Deleting it again is a 200 with deleted false. Needs a module with delete_experiment (optional in the interface)." + PLUGIN_MAP,
            "x-min-role": "operator",
            "parameters": [ref("parameters", "expId"), RID_P],
            "responses": merge({
                "200": ok("Deleted, or deleted already (data.deleted false).", "DeletedEnvelope"),
                "400": bad_query("VALIDATION_FAILED: a query parameter; the instance's module cannot delete experiments."),
                "404": not_found("experiment"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
            }, AUTH, TRACK_TAIL),
        },
    },
    "/llm-ops/v1/experiments/{id}/runs": {
        "summary": "Runs of one experiment",
        "description": OTHER,
        "post": {
            "operationId": "createRun",
            "tags": ["runs"],
            "summary": "Start a run (RUNNING) in an experiment",
            "description": "The run is created in the instance that holds the experiment, whatever the flag says now, and belongs to the experiment's environment. A platform id is reserved first and sent to the tool as the idempotency key. Takes no query parameters." + PLUGIN_MAP,
            "x-min-role": "operator",
            "parameters": [ref("parameters", "expId"), RID_P],
            "requestBody": body("RunCreate", "Optional name, tags, user and start time."),
            "responses": merge({
                "201": ok("Created; Location names the run.", "RunEnvelope",
                          {"Location": ref("headers", "Location")}),
                "400": bad("INVALID_JSON or VALIDATION_FAILED: an unknown member, a query parameter; name not 1-250 bytes; user not a string of at most 255 bytes; start_time_ms not an integer; a tag out of its limits; the experiment is deleted."),
                "404": not_found("experiment"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, TRACK_TAIL),
        },
    },
    "/llm-ops/v1/runs/search": {
        "summary": "Search the runs of experiments",
        "description": OTHER,
        "post": {
            "operationId": "searchRuns",
            "tags": ["runs"],
            "summary": "Runs of some experiments that match a filter, in an order, a page at a time",
            "description": "A POST because the query is a JSON body; it writes nothing but platform ids for runs other clients made (adopted), hence the reader role. The experiments may be held by different instances: each is asked, and the runs are merged in the search's order (order_by; default start_time_ms descending), with sources saying how each answered. The filter is parsed by the core into the plugin interface's clauses; no raw tool filter reaches the tool." + PLUGIN_MAP,
            "x-min-role": "reader",
            "parameters": [RID_P],
            "requestBody": body("RunSearch", "The experiments, filter, order, lifecycle and page."),
            "responses": merge({
                "200": ok("A page of runs.", "RunListEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED: an unknown member, a query parameter; experiment_ids missing, empty, over 100 or not strings; a page_token this search did not give; filter, lifecycle or page_token not a string; a filter that does not parse (field filter; the message names the character position: 'filter: at character 13: expected an operator (< <= = != >= > LIKE ILIKE), found ...'); order_by not an array of at most 3 \"FIELD [ASC|DESC]\" (field order_by); lifecycle not active, deleted or all; max_results not an integer 1-1000; a value or page_token the tool cannot take."),
                "404": err_response("NOT_FOUND: an experiment id that is not an experiment (data.error.field id).", ["NOT_FOUND"]),
                "409": err_response(PENDING_409, ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, TRACK_TAIL),
        },
    },
    "/llm-ops/v1/runs/compare": {
        "summary": "Runs side by side",
        "description": OTHER,
        "get": {
            "operationId": "compareRuns",
            "tags": ["runs"],
            "summary": "The params and latest metrics of up to 20 runs, optionally with every point",
            "description": "Each run is read from the instance that holds it, so runs of different instances compare." + PLUGIN_MAP,
            "x-min-role": "reader",
            "parameters": [ref("parameters", "runIds"), ref("parameters", "compareKeys"),
                           ref("parameters", "compareHistory"), RID_P],
            "responses": merge({
                "200": ok("The runs, in the order given.", "RunComparisonEnvelope"),
                "400": bad_query("VALIDATION_FAILED: an unknown query parameter; run_ids missing, empty or more than 20; history not true or false."),
                "404": not_found("run"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
            }, AUTH, TRACK_TAIL),
        },
    },
    "/llm-ops/v1/runs/{id}": {
        "summary": "One run, read from the instance that holds it",
        "description": OTHER,
        "get": {
            "operationId": "getRun",
            "tags": ["runs"],
            "summary": "Read a run: info, params, tags, latest metrics",
            "description": "Takes no query parameters. A training job's run answers 409 until the outbox has created it." + PLUGIN_MAP,
            "x-min-role": "reader",
            "parameters": [ref("parameters", "runId"), RID_P],
            "responses": merge({
                "200": ok("The run.", "RunEnvelope"),
                "400": R("BadQuery"),
                "404": not_found("run"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
            }, AUTH, TRACK_TAIL),
        },
        "patch": {
            "operationId": "updateRun",
            "tags": ["runs"],
            "summary": "End a run, or rename it",
            "description": "A status other than RUNNING without end_time_ms ends the run now. Answers the run as read back from the tool." + PLUGIN_MAP,
            "x-min-role": "operator",
            "parameters": [ref("parameters", "runId"), RID_P],
            "requestBody": body("RunPatch", "status, name, end_time_ms: at least one."),
            "responses": merge({
                "200": ok("The updated run.", "RunEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED: an unknown member, a query parameter, an empty body; status not RUNNING, FINISHED, FAILED or KILLED (data.error.valid); name not 1-250 bytes; end_time_ms not an integer; the run is deleted."),
                "404": not_found("run"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, TRACK_TAIL),
        },
        "delete": {
            "operationId": "deleteRun",
            "tags": ["runs"],
            "summary": "Delete a run (its lifecycle becomes deleted)",
            "description": "Deleting it again is a 200 with deleted false. Needs a module with delete_run (optional in the interface)." + PLUGIN_MAP,
            "x-min-role": "operator",
            "parameters": [ref("parameters", "runId"), RID_P],
            "responses": merge({
                "200": ok("Deleted, or deleted already (data.deleted false).", "DeletedEnvelope"),
                "400": bad_query("VALIDATION_FAILED: a query parameter; the instance's module cannot delete runs."),
                "404": not_found("run"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
            }, AUTH, TRACK_TAIL),
        },
    },
    "/llm-ops/v1/runs/{id}/log": {
        "summary": "Log metrics, params and tags to a run",
        "description": OTHER,
        "post": {
            "operationId": "logRun",
            "tags": ["runs"],
            "summary": "Log metric points, params and tags, split into batches the tool accepts",
            "description": "The body is checked whole, then sent as one or more log_batch calls (at most 1000 points, 100 params, 100 tags, 1000 entries each), in order. If a batch fails, the earlier ones are stored: the error says how many (data.error.batches_done of batches), and sending the same body again is safe, since a point equal in key, value, timestamp_ms and step to a stored one is not added twice and params keep their value. Takes no query parameters." + PLUGIN_MAP,
            "x-min-role": "operator",
            "parameters": [ref("parameters", "runId"), RID_P],
            "requestBody": body("LogBatch", "metrics, params, tags."),
            "responses": merge({
                "200": ok("Logged; data counts what was sent and in how many batches.", "LogResultEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED (data.error.field, e.g. metrics[3].value): a member other than metrics, params, tags; metrics not an array of {key, value, timestamp_ms, step}; a key not 1-250 bytes; a value not a number or \"NaN\", \"Infinity\", \"-Infinity\"; timestamp_ms or step not an integer; a param value over 6000 bytes or a tag value over 5000 (or not a string, number or boolean); the reserved tag llmops.idempotency_key; the run is deleted."),
                "404": not_found("run"),
                "409": err_response("CONFLICT: a param already has another value (params never change; data.error.batches_done says what was stored), or " + PENDING_409, ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, TRACK_TAIL),
        },
    },
    "/llm-ops/v1/runs/{id}/metric-history": {
        "summary": "Every point of one metric of a run",
        "description": OTHER,
        "get": {
            "operationId": "getMetricHistory",
            "tags": ["runs"],
            "summary": "A metric's points by step then timestamp, a page at a time",
            "description": "A key never logged gives an empty list." + PLUGIN_MAP,
            "x-min-role": "reader",
            "parameters": [ref("parameters", "runId"), ref("parameters", "historyKey"),
                           ref("parameters", "historyMaxResults"), ref("parameters", "pageToken"), RID_P],
            "responses": merge({
                "200": ok("A page of points.", "MetricHistoryEnvelope"),
                "400": bad_query("VALIDATION_FAILED: an unknown query parameter; key missing or not 1-250 bytes; max_results not an integer 1-25000; a page_token the tool refuses."),
                "404": not_found("run"),
                "409": err_response(PENDING_409, ["CONFLICT"]),
            }, AUTH, TRACK_TAIL),
        },
    },
})

JOB_503 = err_response("DATABASE_UNAVAILABLE: PostgreSQL cannot be reached or is at another schema version, or the job cannot be read or stored. Nothing was changed.",
                       ["DATABASE_UNAVAILABLE"])
OUTBOX_503 = err_response("DATABASE_UNAVAILABLE: PostgreSQL cannot be reached or is at another schema version, or the outbox cannot be read or changed.",
                          ["DATABASE_UNAVAILABLE"])
JOB_404 = err_response("NOT_FOUND: no training job of that id (data.error.field id).", ["NOT_FOUND"])

paths.update({
    "/llm-ops/v1/training-jobs": {
        "summary": "The training jobs of one environment",
        "description": OTHER,
        "get": {
            "operationId": "listTrainingJobs",
            "tags": ["training-jobs"],
            "summary": "List the training jobs of an environment, oldest first, a page at a time",
            "description": "Reads only PostgreSQL: no tracker is called, and each job's tracking state comes from the outbox.",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "env"), ref("parameters", "jobStatus"),
                           ref("parameters", "pageLimit"), ref("parameters", "jobAfter"), RID_P],
            "responses": merge({
                "200": ok("A page of jobs.", "TrainingJobListEnvelope"),
                "400": bad_query("VALIDATION_FAILED: an unknown query parameter or env; status not QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED (data.error.valid); limit not an integer 1-1000; after not a job of this environment (field after)."),
            }, AUTH, {"500": R("Internal"), "503": JOB_503}),
        },
        "post": {
            "operationId": "createTrainingJob",
            "tags": ["training-jobs"],
            "summary": "Create a training job and queue its tracking run",
            "description": "Never waits for the tracker: the job, the platform id of its run and the outbox rows that open the run (create_run, then the hyperparameters as params) are written in one statement, and the jobs process (llm-opsd --jobs) delivers them. So a job is created while the tracker is down or slow; its tracking.state is pending until the run exists. The run goes to the instance the environment's experiment_tracking flag picks for the caller now, which must be running in the worker (it is not called). The run carries the tags llmops.job_id, llmops.job_name, llmops.base_model, llmops.dataset, llmops.gpu_type and llmops.environment.",
            "x-min-role": "operator",
            "parameters": P_ENV,
            "requestBody": body("TrainingJobCreate", "The job."),
            "responses": merge({
                "201": ok("Created (status QUEUED); Location names it.", "TrainingJobEnvelope",
                          {"Location": ref("headers", "Location")}),
                "400": bad("INVALID_JSON or VALIDATION_FAILED (data.error.field): an unknown member, query parameter or env; name or experiment not 1-250 bytes, base_model not 1-512, dataset not 1-2048, gpu_type not 1-63, description not 1-4096; gpu_count not an integer 1-1024; gpu_type not an enabled GPU type of the environment (data.error.valid lists the enabled ones); hyperparameters not an object of at most 500 strings, numbers or booleans, or a name or value out of the param limits; no instance serves experiment_tracking in the environment (field env)."),
                "409": err_response("CONFLICT: gpu_count is more than the GPUs of the type free now: data.error gpu_type, requested, free, capacity (the rule of POST /llm-ops/v1/deployments: RUNNING jobs and live deployments share the capacity; a QUEUED job holds none yet, and its move to RUNNING is checked again).", ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
                "500": R("Internal"),
                "503": err_response("TOOL_UNAVAILABLE: the instance the flag picks is not running in this worker (data.error.instance). DATABASE_UNAVAILABLE: PostgreSQL cannot be reached or is at another schema version, or the job cannot be stored (the job and its outbox rows are one statement: all or none) or read back.",
                                    ["TOOL_UNAVAILABLE", "DATABASE_UNAVAILABLE"]),
            }, AUTH),
        },
    },
    "/llm-ops/v1/training-jobs/{id}": {
        "summary": "One training job",
        "description": OTHER,
        "get": {
            "operationId": "getTrainingJob",
            "tags": ["training-jobs"],
            "summary": "Read a training job and the tracking state of its run",
            "description": "Takes no query parameters. Reads only PostgreSQL.",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "jobId"), RID_P],
            "responses": merge({
                "200": ok("The job.", "TrainingJobEnvelope"),
                "400": R("BadQuery"),
                "404": JOB_404,
            }, AUTH, {"500": R("Internal"), "503": JOB_503}),
        },
        "patch": {
            "operationId": "updateTrainingJob",
            "tags": ["training-jobs"],
            "summary": "Change a job's status; its run follows through the outbox",
            "description": "The status change and the outbox row that updates the run are one statement. SUCCEEDED ends the run FINISHED, FAILED FAILED, CANCELLED KILLED (with end_time_ms); RUNNING keeps it RUNNING.",
            "x-min-role": "operator",
            "parameters": [ref("parameters", "jobId"), RID_P],
            "requestBody": body("TrainingJobPatch", "The new status."),
            "responses": merge({
                "200": ok("The job (unchanged when the status was the same).", "TrainingJobEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED: a member other than status, a query parameter; status missing or not QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED (data.error.valid)."),
                "404": JOB_404,
                "409": err_response("CONFLICT: the job is SUCCEEDED, FAILED or CANCELLED already, or the status asked for is QUEUED (data.error.from and to); or the status changed meanwhile (read it again); or, for RUNNING, not enough GPUs of its type are free (data.error gpu_type, requested, free, capacity).", ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, {"500": R("Internal"), "503": JOB_503}),
        },
    },
    "/llm-ops/v1/training-jobs/{id}/log": {
        "summary": "Log metrics, params and tags to a job's run",
        "description": OTHER,
        "post": {
            "operationId": "logTrainingJob",
            "tags": ["training-jobs"],
            "summary": "Queue metric points, params and tags for the job's run",
            "description": "Checked and split like POST /llm-ops/v1/runs/{id}/log, then queued as outbox rows (one per batch) in one statement, whether the run exists yet or not; the jobs process delivers them in order after the run's earlier rows. Reads only PostgreSQL.",
            "x-min-role": "operator",
            "parameters": [ref("parameters", "jobId"), RID_P],
            "requestBody": body("LogBatch", "metrics, params, tags."),
            "responses": merge({
                "202": ok("Queued; data counts what was queued and in how many batches (outbox rows).", "LogResultEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED (data.error.field, e.g. metrics[3].value): as for POST /llm-ops/v1/runs/{id}/log."),
                "404": JOB_404,
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, {"500": R("Internal"), "503": JOB_503}),
        },
    },
    "/llm-ops/v1/outbox": {
        "summary": "The outbox of tool writes delivered by the jobs process",
        "description": OTHER,
        "get": {
            "operationId": "listOutbox",
            "tags": ["outbox"],
            "summary": "Outbox rows by id, a page at a time, with the pending and dead counts",
            "x-min-role": "operator",
            "parameters": [ref("parameters", "outboxEnv"), ref("parameters", "outboxState"),
                           ref("parameters", "pageLimit"), ref("parameters", "outboxAfter"), RID_P],
            "responses": merge({
                "200": ok("A page of rows and the counts.", "OutboxListEnvelope"),
                "400": bad_query("VALIDATION_FAILED: an unknown query parameter or env; state not pending, done, dead or discarded (data.error.valid); limit not an integer 1-1000; after not an integer of 0 or more."),
            }, AUTH, {"500": R("Internal"), "503": OUTBOX_503}),
        },
    },
    "/llm-ops/v1/outbox/retry": {
        "summary": "Retry dead outbox rows",
        "description": OTHER,
        "post": {
            "operationId": "retryOutbox",
            "tags": ["outbox"],
            "summary": "Set dead rows back to pending: by id, by environment, or all",
            "description": "Each dead row chosen gets state pending, attempts 0 and is due now; the jobs process is woken. Rows that are not dead are left alone. Fix the cause first (a deleted experiment restored, a tool back up): a row that fails again goes through its max_attempts anew.",
            "x-min-role": "admin",
            "parameters": [RID_P],
            "requestBody": body("OutboxRetry", "{\"ids\": [...]}, {\"env\": \"...\"}, both, or {} for every dead row."),
            "responses": merge({
                "200": ok("The rows retried (possibly none).", "OutboxRetriedEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED: a member other than ids and env, a query parameter; ids not an array of at most 10000 integers; env not a configured environment."),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, {"500": R("Internal"), "503": OUTBOX_503}),
        },
    },
    "/llm-ops/v1/outbox/{id}/retry": {
        "summary": "Retry one dead outbox row",
        "description": OTHER,
        "post": {
            "operationId": "retryOutboxRow",
            "tags": ["outbox"],
            "summary": "Set one dead row back to pending",
            "description": "Takes no body and no query parameters.",
            "x-min-role": "admin",
            "parameters": [ref("parameters", "outboxId"), RID_P],
            "responses": merge({
                "200": ok("Retried: data.retried is [id] (or [] if the row left the dead state meanwhile).", "OutboxRetriedEnvelope"),
                "400": R("BadQuery"),
                "404": err_response("NOT_FOUND: no outbox row of that id (data.error.field id).", ["NOT_FOUND"]),
                "409": err_response("CONFLICT: the row is not dead; data.error.state is pending, done or discarded.", ["CONFLICT"]),
            }, AUTH, {"500": R("Internal"), "503": OUTBOX_503}),
        },
    },
    "/llm-ops/v1/outbox/{id}/discard": {
        "summary": "Skip one dead outbox row, so the rows behind it flow",
        "description": OTHER,
        "post": {
            "operationId": "discardOutboxRow",
            "tags": ["outbox"],
            "summary": "Discard a dead row (audited: who, when, why)",
            "description": "The row becomes discarded, with discarded_by (the admin's token name), discarded_at and the reason kept on it and logged; it is never delivered and no longer holds its object's later rows back, which go out in order. A run's create_run cannot be discarded (the rows behind it need the run): fix its cause and retry it. Takes no query parameters.",
            "x-min-role": "admin",
            "parameters": [ref("parameters", "outboxId"), RID_P],
            "requestBody": body("OutboxDiscard", "{\"reason\": \"...\"}"),
            "responses": merge({
                "200": ok("Discarded.", "OutboxDiscardedEnvelope"),
                "400": bad("INVALID_JSON or VALIDATION_FAILED: reason missing, empty or over 500 characters; a member other than reason; a query parameter."),
                "404": err_response("NOT_FOUND: no outbox row of that id (data.error.field id).", ["NOT_FOUND"]),
                "409": err_response("CONFLICT: the row is not dead (data.error.state pending, done or discarded), or it is a create_run (data.error.operation).", ["CONFLICT"]),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, {"500": R("Internal"), "503": OUTBOX_503}),
        },
    },
})

# ------------------------------------------------------------------ long operations

schemas.update({
    "Operation": {
        "type": "object",
        "description": "A long operation (a [jobs] op of a plugin: an import, an export, a checkout) run by the operations lane of the background process (llm-opsd --background).",
        "required": ["id", "environment", "category", "operation", "instance", "object_id", "state",
                     "progress", "error", "result", "cancel_requested", "attempts", "created",
                     "started", "updated", "finished", "created_by", "cancelled_by"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "environment": {"type": "string"},
            "category": {"type": "string", "description": "The plugin category, e.g. model_registry."},
            "operation": {"type": "string", "description": "The op called, e.g. import_version."},
            "instance": INSTANCE,
            "object_id": {"type": "string", "nullable": True, "description": "The platform object it works on, if any."},
            "state": {"type": "string", "enum": ["pending", "running", "succeeded", "failed", "cancelled"],
                      "description": "pending: waiting for a background process (also after a SIGTERM or a retryable failure: it resumes from its checkpoint); running: a process holds its lease; succeeded, failed, cancelled: final."},
            "progress": {"type": "object", "additionalProperties": False, "required": ["done", "total", "unit"],
                         "properties": {"done": {"type": "integer", "format": "int64", "nullable": True},
                                        "total": {"type": "integer", "format": "int64", "nullable": True,
                                                  "description": "null while the op does not know it."},
                                        "unit": {"type": "string", "nullable": True, "maxLength": 15,
                                                 "description": "bytes, files, steps, ..."}},
                         "description": "As the op last reported it."},
            "error": {"type": "string", "nullable": True, "description": "Why it failed or was cancelled; the last retryable error while pending."},
            "result": {"type": "object", "nullable": True, "description": "The op's answer once succeeded."},
            "cancel_requested": {"type": "boolean"},
            "attempts": {"type": "integer", "minimum": 0, "description": "How many times a process started it (a resume counts)."},
            "created": TS_MS,
            "started": {**TS_MS, "nullable": True},
            "updated": TS_MS,
            "finished": {**TS_MS, "nullable": True},
            "created_by": {"type": "string"},
            "cancelled_by": {"type": "string", "nullable": True, "description": "The token name that asked for the cancel."},
        },
    },
    "OperationList": {
        "type": "object", "additionalProperties": False, "required": ["operations", "next_cursor"],
        "properties": {
            "operations": {"type": "array", "items": ref("schemas", "Operation"), "description": "By id."},
            "next_cursor": {"type": "integer", "format": "int64", "nullable": True,
                            "description": "Pass as after= for the next page; null on the last page."},
        },
    },
    "OperationEnvelope": success_envelope(ref("schemas", "Operation"), "Envelope whose data is one operation."),
    "OperationListEnvelope": success_envelope(ref("schemas", "OperationList"), "Envelope whose data is a page of operations."),
})

parameters.update({
    "operationId": {
        "name": "id", "in": "path", "required": True,
        "description": "The operation's id; anything else is a 404.",
        "schema": {"type": "integer", "format": "int64", "minimum": 1},
    },
    "operationsEnv": {
        "name": "env", "in": "query", "required": False,
        "description": "Only the operations of this environment, one of the configured ones. Absent: every environment.",
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"},
    },
    "operationsState": {
        "name": "state", "in": "query", "required": False,
        "description": "Only the operations in this state.",
        "schema": {"type": "string", "enum": ["pending", "running", "succeeded", "failed", "cancelled"]},
    },
    "operationsAfter": {
        "name": "after", "in": "query", "required": False,
        "description": "next_cursor of the previous page: the operations whose id is greater. Anything but an integer of 0 or more is a 400 VALIDATION_FAILED with field after.",
        "schema": {"type": "integer", "format": "int64", "minimum": 0, "default": 0},
    },
})

OPERATIONS_503 = err_response("DATABASE_UNAVAILABLE: PostgreSQL cannot be reached or is at another schema version.",
                              ["DATABASE_UNAVAILABLE"])
OP_404 = err_response("NOT_FOUND: no operation of that id (data.error.field id).", ["NOT_FOUND"])

paths.update({
    "/llm-ops/v1/operations": {
        "summary": "Long operations run by the background process",
        "description": OTHER,
        "get": {
            "operationId": "listOperations",
            "tags": ["operations"],
            "summary": "Operations by id, a page at a time",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "operationsEnv"), ref("parameters", "operationsState"),
                           ref("parameters", "pageLimit"), ref("parameters", "operationsAfter"), RID_P],
            "responses": merge({
                "200": ok("A page of operations.", "OperationListEnvelope"),
                "400": bad_query("VALIDATION_FAILED: an unknown query parameter or env; state not pending, running, succeeded, failed or cancelled (data.error.valid); limit not an integer 1-1000; after not an integer of 0 or more."),
            }, AUTH, {"500": R("Internal"), "503": OPERATIONS_503}),
        },
    },
    "/llm-ops/v1/operations/{id}": {
        "summary": "One long operation",
        "description": OTHER,
        "get": {
            "operationId": "getOperation",
            "tags": ["operations"],
            "summary": "State, progress, error and result of an operation",
            "description": "Takes no query parameters.",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "operationId"), RID_P],
            "responses": merge({
                "200": ok("The operation.", "OperationEnvelope"),
                "400": R("BadQuery"),
                "404": OP_404,
            }, AUTH, {"500": R("Internal"), "503": OPERATIONS_503}),
        },
    },
    "/llm-ops/v1/operations/{id}/cancel": {
        "summary": "Cancel a long operation",
        "description": OTHER,
        "post": {
            "operationId": "cancelOperation",
            "tags": ["operations"],
            "summary": "Cancel a pending operation at once, or ask a running one to stop",
            "description": "A pending operation becomes cancelled at once. A running one gets cancel_requested: its op sees cancelled() at its next report (ops report at least once a second) and it becomes cancelled within a second. Takes no body and no query parameters.",
            "x-min-role": "operator",
            "parameters": [ref("parameters", "operationId"), RID_P],
            "responses": merge({
                "202": ok("Cancel requested (data.state is cancelled for an operation that was pending).", "OperationEnvelope"),
                "400": R("BadQuery"),
                "404": OP_404,
                "409": err_response("CONFLICT: the operation is final already; data.error.state is succeeded, failed or cancelled.", ["CONFLICT"]),
            }, AUTH, {"500": R("Internal"), "503": OPERATIONS_503}),
        },
    },
})

# ------------------------------------------------------------------ Alertmanager's webhook

STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
schemas.update({
    "AlertmanagerAlert": {
        "type": "object",
        "description": "One alert of Alertmanager's webhook message (notify/webhook, version 4). Members not listed are ignored.",
        "required": ["status", "labels", "startsAt", "fingerprint"],
        "properties": {
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "labels": {**STR_MAP, "description": "llmops_env with llmops_category rolls that flag back to its fallback; llmops_env with llmops_deployment rolls that deployment's canary back (when the serving core registered its target)."},
            "annotations": {**STR_MAP, "description": "summary (else description, else message) goes into the audit reason."},
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string"},
            "fingerprint": {"type": "string", "pattern": "^[A-Za-z0-9]{1,64}$",
                            "description": "With startsAt and status, what makes a repeat of the same alert act only once."},
        },
    },
    "AlertmanagerMessage": {
        "type": "object",
        "description": "Alertmanager's webhook message, version \"4\" (any other version is a 400 VALIDATION_FAILED with field version). Members not listed are ignored; those listed must have their type (else 400 naming the member, e.g. field alerts[2].startsAt).",
        "required": ["version", "status", "alerts"],
        "properties": {
            "version": {"type": "string", "enum": ["4"]},
            "groupKey": {"type": "string"},
            "truncatedAlerts": {"type": "integer", "minimum": 0},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "receiver": {"type": "string"},
            "groupLabels": STR_MAP,
            "commonLabels": STR_MAP,
            "commonAnnotations": STR_MAP,
            "externalURL": {"type": "string"},
            "alerts": {"type": "array", "maxItems": 1000, "items": ref("schemas", "AlertmanagerAlert")},
        },
    },
    "AlertAction": {
        "type": "object", "additionalProperties": False,
        "required": ["action", "target", "result", "message"],
        "properties": {
            "action": {"type": "string", "description": "flag_rollback, deployment_rollback (a registered target), or none."},
            "target": {"type": "string", "nullable": True, "description": "ENV/CATEGORY or ENV/DEPLOYMENT."},
            "result": {"type": "string", "enum": ["done", "noop", "failed", "error"]},
            "message": {"type": "string"},
        },
    },
    "AlertOutcome": {
        "type": "object",
        "required": ["id", "fingerprint", "alertname", "status", "starts_at", "repeat", "result", "actions"],
        "properties": {
            "id": {"type": "string", "nullable": True, "description": "The record's id (GET /alerts); null when it could not be recorded."},
            "fingerprint": {"type": "string"},
            "alertname": {"type": "string"},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "starts_at": {"type": "string"},
            "repeat": {"type": "boolean", "description": "true: this alert was received before; nothing was done again (unless its earlier result was error)."},
            "result": {"type": "string", "enum": ["done", "noop", "ignored", "failed", "error", "pending"],
                       "description": "The worst of its actions: done (rolled back), noop (nothing to roll back), ignored (resolved, or no llmops_* label), failed (refused: unknown environment, category or deployment, no fallback, no llmops_env), error (could not be done now: done when Alertmanager sends it again), pending (a repeat only: another delivery of the same alert is acting on it now)."},
            "actions": {"type": "array", "items": ref("schemas", "AlertAction")},
            "message": {"type": "string"},
        },
    },
    "AlertsReceived": {
        "type": "object", "additionalProperties": False,
        "required": ["receiver", "status", "truncated_alerts", "alerts"],
        "properties": {
            "receiver": {"type": "string"},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "truncated_alerts": {"type": "integer"},
            "alerts": {"type": "array", "items": ref("schemas", "AlertOutcome"), "description": "In the message's order."},
        },
    },
    "AlertRecord": {
        "type": "object",
        "required": ["id", "fingerprint", "alertname", "status", "starts_at", "ends_at", "receiver", "group_key",
                     "labels", "annotations", "generator_url", "received_by", "result", "actions",
                     "times_received", "first_received_at", "last_received_at"],
        "properties": {
            "id": {"type": "string"}, "fingerprint": {"type": "string"}, "alertname": {"type": "string"},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "starts_at": TS_MS, "ends_at": {**TS_MS, "nullable": True},
            "receiver": {"type": "string"}, "group_key": {"type": "string"},
            "labels": STR_MAP, "annotations": STR_MAP, "generator_url": {"type": "string"},
            "received_by": {"type": "string", "description": "The token's name."},
            "result": {"type": "string", "enum": ["pending", "done", "noop", "ignored", "failed", "error"]},
            "actions": {"type": "array", "items": ref("schemas", "AlertAction")},
            "times_received": {"type": "integer", "minimum": 1, "description": "Alertmanager's repeats included."},
            "first_received_at": TS_MS, "last_received_at": TS_MS,
        },
    },
    "AlertsReceivedEnvelope": success_envelope(ref("schemas", "AlertsReceived"), "Envelope whose data says what was done per alert."),
    "AlertRecordListEnvelope": success_envelope({"type": "object", "additionalProperties": False, "required": ["alerts"],
                                                 "properties": {"alerts": {"type": "array", "items": ref("schemas", "AlertRecord"),
                                                                           "description": "Last received first."}}},
                                                "Envelope whose data is the alerts received."),
})

parameters.update({
    "alertsStatus": {"name": "status", "in": "query", "required": False,
                     "description": "Only firing or only resolved alerts.",
                     "schema": {"type": "string", "enum": ["firing", "resolved"]}},
    "alertsFingerprint": {"name": "fingerprint", "in": "query", "required": False,
                          "description": "Only the alert of this fingerprint.", "schema": {"type": "string"}},
})

ALERTS_503 = err_response("DATABASE_UNAVAILABLE: PostgreSQL cannot be reached (POST: no alert of the message could be recorded; Alertmanager sends it again).",
                          ["DATABASE_UNAVAILABLE"])

paths.update({
    "/llm-ops/v1/alerts": {
        "summary": "Alertmanager's webhook receiver, and what it received",
        "description": OTHER,
        "post": {
            "operationId": "receiveAlerts",
            "tags": ["alerts"],
            "summary": "Receive Alertmanager's webhook: firing alerts roll flags (and deployments) back",
            "description": "Point an Alertmanager webhook_config at this URL with http_config.authorization (a token of the alerts role: it may call only this route; operator and admin tokens are accepted too). A firing alert whose labels carry llmops_env and llmops_category rolls that flag back to its fallback (as POST /flags/{env}/{category}/rollback; audited with actor alertmanager:<alertname>); one with llmops_env and llmops_deployment rolls that deployment's canary back. Each alert is recorded once per (fingerprint, startsAt, status): a repeat does nothing again. Resolved alerts are recorded and counted, nothing more. The answer is 200 when at least one alert was recorded, whatever was done (per alert in data.alerts); 503 only when none could be.",
            "x-min-role": "operator",
            "x-also-role": "alerts",
            "parameters": [RID_P],
            "requestBody": body("AlertmanagerMessage", "Alertmanager's webhook message, version 4 (Content-Type application/json)."),
            "responses": merge({
                "200": ok("What was done per alert.", "AlertsReceivedEnvelope"),
                "400": bad("INVALID_JSON: the body is not JSON; VALIDATION_FAILED: not version 4, or a member of the wrong type (data.error.field names it, e.g. alerts[0].fingerprint)."),
                "413": R("PayloadTooLarge"),
                "415": R("UnsupportedMediaType"),
            }, AUTH, {"500": R("Internal"), "503": ALERTS_503}),
        },
        "get": {
            "operationId": "listAlerts",
            "tags": ["alerts"],
            "summary": "The alerts received, last first, with what was done",
            "x-min-role": "reader",
            "parameters": [ref("parameters", "alertsStatus"), ref("parameters", "alertsFingerprint"),
                           ref("parameters", "pageLimit"), RID_P],
            "responses": merge({
                "200": ok("The alerts received.", "AlertRecordListEnvelope"),
                "400": bad_query("VALIDATION_FAILED: an unknown query parameter; status not firing or resolved; limit not an integer 1-1000."),
            }, AUTH, {"500": R("Internal"), "503": ALERTS_503}),
        },
    },
})
# ---------------------------------------------------------------------------------- deployments

MODEL = {"type": "object", "additionalProperties": False, "required": ["uri", "format"],
         "properties": {
             "uri": {"type": "string", "minLength": 1, "maxLength": 2048, "example": "hf://meta-llama/Llama-3-8B-Instruct",
                     "description": "hf://, s3://, gs:// or pvc://CLAIM/PATH (a module refuses a scheme its tool cannot fetch)."},
             "format": {"type": "string", "minLength": 1, "maxLength": 64, "example": "huggingface"},
             "format_version": {"type": "string", "maxLength": 64}}}
REPLICAS = {"type": "object", "additionalProperties": False, "required": ["min", "max"],
            "description": "0 <= min <= max, 1 <= max <= 100; min < max needs autoscaling.",
            "properties": {"min": {"type": "integer", "minimum": 0, "maximum": 100},
                           "max": {"type": "integer", "minimum": 1, "maximum": 100}}}
AUTOSCALING = {"type": "object", "additionalProperties": False, "required": ["metric", "target"],
               "description": "metric one of the instance's autoscaling_metrics (kserve cpu, memory, concurrency, rps; serving-k8s cpu, memory; rayserve ongoing_requests).",
               "properties": {"metric": {"type": "string", "minLength": 1, "maxLength": 64},
                              "target": {"type": "integer", "minimum": 1, "maximum": 1000000}}}
ENVMAP = {"type": "object", "maxProperties": 256, "additionalProperties": {"type": "string", "maxLength": 32768}}
ARGS = {"type": "array", "maxItems": 256, "items": {"type": "string", "maxLength": 4096}}
CANARY = {"type": "object", "properties": {
    "model": MODEL, "args": ARGS, "env": ENVMAP,
    "traffic_percent": {"type": "integer", "nullable": True},
    "canary_replicas": {"type": "integer", "nullable": True},
    "state": {"type": "string", "enum": ["progressing", "ready", "failed"]},
    "reason": {"type": "string", "nullable": True},
    "ready_replicas": {"type": "integer"}}}

schemas.update({
    "DeploymentCreate": {
        "type": "object", "additionalProperties": False, "required": ["name", "model"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 63, "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
                     "description": "A DNS-1035 label, unique among the live deployments of the environment."},
            "model": MODEL,
            "runtime": {"type": "string", "minLength": 1, "maxLength": 253, "example": "vllm"},
            "gpu_type": {"type": "string", "minLength": 1, "maxLength": 63,
                         "description": "An enabled GPU type of the environment (GET /llm-ops/v1/gpu-types)."},
            "gpu_count": {"type": "integer", "minimum": 1, "maximum": 64, "description": "Per replica; needs gpu_type (default 1 with one)."},
            "cpu": {"type": "string", "minLength": 1, "maxLength": 64, "example": "4"},
            "memory": {"type": "string", "minLength": 1, "maxLength": 64, "example": "16Gi"},
            "replicas": REPLICAS, "autoscaling": AUTOSCALING, "env": ENVMAP, "args": ARGS,
        },
    },
    "DeploymentPatch": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {"replicas": REPLICAS,
                       "autoscaling": dict(AUTOSCALING, nullable=True, description="null removes it.")},
    },
    "CanaryCreate": {
        "type": "object", "additionalProperties": False,
        "description": "At least one of model, args, env (the others are the stable spec's); exactly one of traffic_percent (feature canary_percent) and canary_replicas (feature canary_by_replicas).",
        "properties": {"model": MODEL, "args": ARGS, "env": ENVMAP,
                       "traffic_percent": {"type": "integer", "minimum": 1, "maximum": 99},
                       "canary_replicas": {"type": "integer", "minimum": 1, "maximum": 100}},
    },
    "CanaryPatch": {
        "type": "object", "additionalProperties": False,
        "properties": {"traffic_percent": {"type": "integer", "minimum": 0, "maximum": 100},
                       "canary_replicas": {"type": "integer", "minimum": 0, "maximum": 100}},
    },
    "Rollback": {"type": "object", "additionalProperties": False,
                 "properties": {"reason": {"type": "string", "maxLength": 1000}}},
    "Deployment": {
        "type": "object",
        "required": ["id", "name", "environment", "instance", "state", "traffic", "canary", "created_at"],
        "properties": {
            "id": {"type": "string", "pattern": "^dep_[0-9a-f]{24}$"},
            "name": {"type": "string"}, "environment": {"type": "string"},
            "instance": {"type": "string", "description": "The serving instance that holds it."},
            "state": {"type": "string", "enum": ["progressing", "ready", "failed", "deleting"]},
            "reason": {"type": "string", "nullable": True, "description": "The tool's reason (REASON: message) while not ready."},
            "url": {"type": "string", "nullable": True},
            "ready_replicas": {"type": "integer"},
            "model": MODEL, "runtime": {"type": "string", "nullable": True},
            "gpu_type": {"type": "string", "nullable": True}, "gpu_count": {"type": "integer", "nullable": True},
            "gpu": {"type": "object", "nullable": True, "properties": {
                "resource_name": {"type": "string", "example": "nvidia.com/mig-1g.10gb"},
                "node_selector": {"type": "object", "additionalProperties": {"type": "string"}},
                "mig_profile": {"type": "string", "nullable": True}}},
            "cpu": {"type": "string", "nullable": True}, "memory": {"type": "string", "nullable": True},
            "replicas": REPLICAS, "autoscaling": dict(AUTOSCALING, nullable=True),
            "env": ENVMAP, "args": ARGS,
            "traffic": {"type": "object", "properties": {"stable": {"type": "integer"}, "canary": {"type": "integer"}}},
            "canary": dict(CANARY, nullable=True),
            "links": {"type": "object", "properties": {"ui": {"type": "string"}}},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"},
            "version": {"type": "integer", "description": "Bumped by every change of the row."},
        },
    },
    "DeploymentEnvelope": success_envelope(ref("schemas", "Deployment"), "Envelope whose data is one Deployment."),
    "DeploymentListEnvelope": success_envelope({
        "type": "object", "required": ["deployments", "next"],
        "properties": {"deployments": {"type": "array", "items": ref("schemas", "Deployment")},
                       "next": {"type": "string", "nullable": True, "description": "The after of the next page, or null."},
                       "next_cursor": {"type": "string", "nullable": True, "description": "The same as next (the name /training-jobs uses)."}}},
        "Envelope whose data is a page of deployments."),
    "DeploymentAuditEnvelope": success_envelope({
        "type": "object", "required": ["id", "audit"],
        "properties": {"id": {"type": "string"}, "audit": {"type": "array", "items": {
            "type": "object", "required": ["at", "actor", "action"],
            "properties": {"at": {"type": "string", "format": "date-time"},
                           "actor": {"type": "string", "description": "The token's name; llm-ops-background for what the background process did (a failed canary rolled back, a state it saw), llm-ops for a state a read saw first."},
                           "action": {"type": "string", "enum": ["create", "ready", "failed", "scale", "canary", "traffic", "promote", "rollback", "delete"]},
                           "before": {"nullable": True}, "after": {"nullable": True},
                           "reason": {"type": "string", "nullable": True}}}}}},
        "Envelope whose data is the deployment's audit, oldest first (at most 1000 rows)."),
    "PredictEnvelope": success_envelope({
        "type": "object", "properties": {
            "status": {"type": "integer", "description": "The model server's HTTP status (also the answer's)."},
            "body": {"description": "The model server's JSON (a string when it was not JSON)."},
            "content_type": {"type": "string"}, "instance": {"type": "string"}}},
        "Envelope whose data is the model server's answer."),
})

parameters.update({
    "deploymentId": {"name": "id", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": "^dep_[0-9a-f]{24}$"}},
    "deploymentState": {"name": "state", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": ["progressing", "ready", "failed", "deleting"]}},
    "deploymentAfter": {"name": "after", "in": "query", "required": False,
                        "description": "next of the previous page: a deployment id of this environment.",
                        "schema": {"type": "string", "pattern": "^dep_[0-9a-f]{24}$"}},
    "predictPath": {"name": "path", "in": "query", "required": False,
                    "description": "Appended to the deployment's URL; default /v1/models/NAME:predict (KServe's v1 protocol).",
                    "schema": {"type": "string", "pattern": "^/", "maxLength": 2048}},
})

DEP_404 = err_response("NOT_FOUND: no deployment of that id, or it was deleted (data.error.field id).", ["NOT_FOUND"])
DEP_503 = err_response("TOOL_UNAVAILABLE: the instance holding the deployment is not running or its tool cannot be reached (data.error.instance). DATABASE_UNAVAILABLE: PostgreSQL cannot be reached.",
                       ["TOOL_UNAVAILABLE", "DATABASE_UNAVAILABLE"])
CAPACITY_409 = ("CONFLICT: not enough GPUs of the type: data.error gpu_type, requested, free, capacity "
                "(the sum of gpu_count x replicas.max of live deployments, twice while a canary runs, "
                "and gpu_count of RUNNING training jobs never exceeds the capacity).")
DEP_TAIL = {"500": R("Internal"), "502": TRACK_502, "503": DEP_503}
DEP_P = [ref("parameters", "deploymentId"), RID_P]

def dep_op(op_id, summary, desc, role, extra, body_schema=None, params=None):
    o = {"operationId": op_id, "tags": ["deployments"], "summary": summary, "description": desc,
         "x-min-role": role, "parameters": params or DEP_P,
         "responses": merge(extra, AUTH, DEP_TAIL)}
    if body_schema:
        o["requestBody"] = body(body_schema, summary)
    return o

paths.update({
    "/llm-ops/v1/deployments": {
        "summary": "The model deployments of one environment",
        "description": OTHER,
        "get": dep_op("listDeployments", "List the live deployments, oldest first, a page at a time",
                      "Reads only PostgreSQL (the rows the background process keeps in step with the tools).",
                      "reader", {"200": ok("A page of deployments.", "DeploymentListEnvelope"),
                                 "400": bad_query("VALIDATION_FAILED: an unknown query parameter or env; state not one of progressing, ready, failed, deleting; limit not 1-1000; after not a deployment of this environment.")},
                      params=[ref("parameters", "env"), ref("parameters", "deploymentState"),
                              ref("parameters", "pageLimit"), ref("parameters", "deploymentAfter"), RID_P]),
        "post": dep_op("createDeployment", "Deploy a model on the instance the serving flag picks",
                       "Answers 201 at once with state progressing; the background process watches it to ready (url, ready_replicas) or failed (reason). The row, its audit, its outbox row and its watch are one transaction, under the GPU type's lock with the capacity check; the request then tries the tool once, and when the tool is down (or its breaker open) the outbox delivers the create later, exactly one object in the tool (idempotency key). The same name with the same body again: 200 with the existing deployment.",
                       "operator", {"201": ok("Created, progressing; Location names it.", "DeploymentEnvelope", {"Location": ref("headers", "Location")}),
                                    "200": ok("A deployment of that name and body exists: it.", "DeploymentEnvelope"),
                                    "400": bad("INVALID_JSON or VALIDATION_FAILED (data.error.field): a member out of its bounds; name not a DNS-1035 label; gpu_type unknown or disabled (data.error.valid lists the enabled ones); gpu_count without gpu_type; replicas.min > max, min < max without autoscaling or autoscaling with min = max; what the tool refused (INVALID) or cannot do (UNSUPPORTED, data.error.feature)."),
                                    "409": err_response("CONFLICT: a live deployment of that name with another spec; or " + CAPACITY_409, ["CONFLICT"]),
                                    "413": R("PayloadTooLarge"), "415": R("UnsupportedMediaType")},
                       "DeploymentCreate", [ref("parameters", "env"), RID_P]),
    },
    "/llm-ops/v1/deployments/{id}": {
        "summary": "One deployment",
        "description": OTHER,
        "get": dep_op("getDeployment", "Read a deployment, refreshed from its tool",
                      "Asks the tool (get_deployment) and stores what it answers; when the tool does not answer, the stored row (the message says so).",
                      "reader", {"200": ok("The deployment.", "DeploymentEnvelope"), "400": R("BadQuery"), "404": DEP_404}),
        "patch": dep_op("updateDeployment", "Scale a deployment or change its autoscaling",
                        "update_deployment with the new replicas and/or autoscaling; raising replicas.max takes GPUs under the type's lock first. The deployment is progressing until the tool has rolled it out. Audited (scale).",
                        "operator", {"200": ok("The deployment.", "DeploymentEnvelope"),
                                     "400": bad("VALIDATION_FAILED: no member, a member out of bounds, min > max, min < max without autoscaling, or what the tool refused."),
                                     "404": DEP_404,
                                     "409": err_response("CONFLICT: the deployment is not created in its tool yet; or " + CAPACITY_409, ["CONFLICT"]),
                                     "413": R("PayloadTooLarge"), "415": R("UnsupportedMediaType")}, "DeploymentPatch"),
        "delete": dep_op("deleteDeployment", "Delete a deployment in its tool",
                         "delete_deployment (a tool that no longer has it is fine); the row is kept as deleted, gone from lists and reads, its name and GPUs free. A create still in the outbox is not delivered. Audited (delete).",
                         "operator", {"204": {"description": "Deleted.", "headers": RID}, "404": DEP_404}),
    },
    "/llm-ops/v1/deployments/{id}/audit": {
        "summary": "A deployment's transitions",
        "description": OTHER,
        "get": dep_op("getDeploymentAudit", "Every transition of a deployment: who, when, what, before, after, why",
                      "Also for a deleted deployment.", "reader",
                      {"200": ok("The audit.", "DeploymentAuditEnvelope"), "404": DEP_404}),
    },
    "/llm-ops/v1/deployments/{id}/canary": {
        "summary": "The deployment's canary",
        "description": OTHER,
        "post": dep_op("createCanary", "Start a canary beside the stable spec",
                       "create_canary; its GPUs (as many as the stable spec may take) are checked under the type's lock. One canary at a time. The background process watches it; a canary the tool reports failed is rolled back by it (audited, actor llm-ops-background).",
                       "operator", {"201": ok("The deployment with its canary, progressing.", "DeploymentEnvelope"),
                                    "400": bad("VALIDATION_FAILED: none of model, args, env; not exactly one of traffic_percent and canary_replicas; the instance makes no canaries or cannot split that way (data.error.feature: canary, canary_percent, canary_by_replicas)."),
                                    "404": DEP_404,
                                    "409": err_response("CONFLICT: a canary exists already, or the deployment is not created in its tool yet; or " + CAPACITY_409, ["CONFLICT"]),
                                    "413": R("PayloadTooLarge"), "415": R("UnsupportedMediaType")}, "CanaryCreate"),
        "patch": dep_op("setCanaryTraffic", "Change the canary's share of the traffic",
                        "set_canary_traffic. Audited (traffic).", "operator",
                        {"200": ok("The deployment.", "DeploymentEnvelope"),
                         "400": bad("VALIDATION_FAILED: not exactly one of traffic_percent (0-100) and canary_replicas, or the instance cannot split that way (data.error.feature)."),
                         "404": DEP_404, "409": err_response("CONFLICT: the deployment has no canary.", ["CONFLICT"]),
                         "413": R("PayloadTooLarge"), "415": R("UnsupportedMediaType")}, "CanaryPatch"),
    },
    "/llm-ops/v1/deployments/{id}/promote": {
        "summary": "Promote the canary",
        "description": OTHER,
        "post": dep_op("promoteCanary", "The canary becomes the stable spec at 100 %",
                       "promote_canary; the canary's model, args and env become the stable spec, canary null. Takes no body (an empty object is accepted). Audited (promote).",
                       "operator", {"200": ok("The deployment, progressing until the tool has rolled the promoted spec out.", "DeploymentEnvelope"),
                                    "400": bad("VALIDATION_FAILED: a body member."),
                                    "404": DEP_404, "409": err_response("CONFLICT: the deployment has no canary.", ["CONFLICT"])}),
    },
    "/llm-ops/v1/deployments/{id}/rollback": {
        "summary": "Roll the canary back",
        "description": OTHER,
        "post": dep_op("rollbackCanary", "All traffic back to the stable revision, the canary removed",
                       "rollback_canary; the body is optional ({reason}). Audited (rollback, with the reason). The alert webhook reaches the same rollback by name (serving_rollback_by_name).",
                       "operator", {"200": ok("The deployment without a canary.", "DeploymentEnvelope"),
                                    "400": bad("VALIDATION_FAILED: a member other than reason."),
                                    "404": DEP_404, "409": err_response("CONFLICT: the deployment has no canary.", ["CONFLICT"])},
                       "Rollback"),
    },
    "/llm-ops/v1/deployments/{id}/predict": {
        "summary": "One inference request, passed through",
        "description": OTHER,
        "post": dep_op("predict", "Send one JSON request to the deployment's model server",
                       "Through the module's predict op where it has one, else one POST to the deployment's URL + path (no retry), at most 1 MiB each way and 30 s. The model server's status is the answer's: 2xx is a success envelope, anything else the error envelope TOOL_ERROR with the same data (data.error.tool_status, body). Streaming (server-sent events, chunked token streams) is not proxied.",
                       "operator", {"200": ok("The model server's answer (its 2xx status kept).", "PredictEnvelope"),
                                    "400": bad("VALIDATION_FAILED: path not beginning with '/', or holding '..', spaces or control characters."),
                                    "404": DEP_404,
                                    "409": err_response("CONFLICT: the deployment is not ready or has no URL yet (data.error.state).", ["CONFLICT"]),
                                    "413": R("PayloadTooLarge"), "415": R("UnsupportedMediaType")},
                       "PredictBody", [ref("parameters", "deploymentId"), ref("parameters", "predictPath"), RID_P]),
    },
})
schemas["PredictBody"] = {"type": "object", "description": "The inference request, as the model server takes it."}

headers["Location"] = {"description": "The path of the object created, e.g. /llm-ops/v1/runs/run_9a0b1c2d3e4f5a6b7c8d9e0f.",
                       "schema": {"type": "string"}}

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
        {"name": "experiments", "description": "Experiments in the experiment_tracking instances, under platform ids (exp_...)."},
        {"name": "runs", "description": "Runs of experiments: create, read, end, log metrics, params and tags, search, compare, metric histories."},
        {"name": "training-jobs", "description": "The platform's training jobs; each opens a tracking run through the outbox, so jobs are created even while the tracker is down."},
        {"name": "outbox", "description": "Tool writes that can wait, delivered by the background process (llm-opsd --background) with backoff; dead letters and their retry."},
        {"name": "operations", "description": "Long operations ([jobs] ops of plugins) run by the background process: state, progress, cancel."},
        {"name": "alerts", "description": "Alertmanager's webhook: firing alerts roll flags and deployments back, once per alert; the record of what was received."},
        {"name": "deployments", "description": "Model deployments on the serving instances (kserve, rayserve, serving-k8s): create, watch to ready, scale, canary, promote, rollback, audit, predict; GPU types resolved and their capacity enforced."},
    ],
    "security": [{"bearerAuth": []}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token created with llm-opsctl token create; each token has a role: reader, operator or admin, or alerts (only POST /llm-ops/v1/alerts).",
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
