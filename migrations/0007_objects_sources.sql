-- 0007: the sources of a list across instances. GET /experiments asks, per request, which
-- instances hold objects of the environment (SELECT the distinct instances of (environment,
-- category, kind)); objects_env_kind (environment, kind, created_at) made that a walk of every
-- object of the kind. With this index the query (core/tracking_http.c, list_sources) skips
-- from one instance to the next: one index probe per instance, whatever the row count.

CREATE INDEX objects_env_kind_instance ON objects (environment, category, kind, instance);
