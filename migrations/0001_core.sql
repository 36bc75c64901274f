-- 0001: the core schema: API tokens, GPU types, cache invalidation notifications.

-- Every worker LISTENs on llmops_invalidate; the payload names the table that changed, so a
-- change reaches each worker's cache at its next request.
CREATE FUNCTION llmops_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('llmops_invalidate', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$'),
    role         text NOT NULL CHECK (role IN ('reader', 'operator', 'admin')),
    token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);

-- A name is unique among the tokens not revoked, so a revoked name can be issued again.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TRIGGER api_tokens_notify AFTER INSERT OR UPDATE OR DELETE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION llmops_notify_change();

-- The integration configuration the back end owns: GPU types per environment.
CREATE TABLE gpu_types (
    id                  bigserial PRIMARY KEY,
    environment         text NOT NULL,
    name                text NOT NULL,
    vendor              text NOT NULL CHECK (vendor IN ('nvidia', 'amd', 'intel')),
    model               text NOT NULL,
    memory_gib          integer NOT NULL CHECK (memory_gib BETWEEN 1 AND 4096),
    resource_name       text NOT NULL,
    node_selector_key   text NOT NULL,
    node_selector_value text NOT NULL,
    mig_profile         text,
    capacity            integer NOT NULL CHECK (capacity BETWEEN 0 AND 100000),
    enabled             boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (environment, name)
);

CREATE TRIGGER gpu_types_notify AFTER INSERT OR UPDATE OR DELETE ON gpu_types
    FOR EACH STATEMENT EXECUTE FUNCTION llmops_notify_change();

-- The API representation of one GPU type (doc/api.md, GpuType).
CREATE FUNCTION gpu_type_json(g gpu_types) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'name', g.name,
        'environment', g.environment,
        'vendor', g.vendor,
        'model', g.model,
        'memory_gib', g.memory_gib,
        'resource_name', g.resource_name,
        'node_selector', json_build_object('key', g.node_selector_key,
                                           'value', g.node_selector_value),
        'mig_profile', g.mig_profile,
        'capacity', g.capacity,
        'enabled', g.enabled,
        'created_at', to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'updated_at', to_char(g.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
