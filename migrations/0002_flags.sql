-- 0002: feature-flag overrides per (environment, category) and their audit trail.
-- The configuration's [flags "ENV"] sections are the defaults; a row here overrides one.

CREATE TABLE flag_overrides (
    environment     text NOT NULL,
    category        text NOT NULL CHECK (category IN ('experiment_tracking', 'serving',
                        'orchestration', 'model_registry', 'data_versioning')),
    active          text NOT NULL,
    fallback        text,
    candidate       text,
    rollout_percent integer NOT NULL DEFAULT 0 CHECK (rollout_percent BETWEEN 0 AND 100),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text NOT NULL,
    PRIMARY KEY (environment, category)
);

CREATE TRIGGER flag_overrides_notify AFTER INSERT OR UPDATE OR DELETE ON flag_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION llmops_notify_change();

CREATE TABLE flag_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL CHECK (action IN ('set', 'rollback', 'breaker_trip',
                    'breaker_restore')),
    environment text NOT NULL,
    category    text NOT NULL,
    before      jsonb,
    after       jsonb NOT NULL,
    reason      text NOT NULL
);

CREATE INDEX flag_audit_env_at ON flag_audit (environment, at DESC);
