-- 0008: serving. A deployment is a platform row (its platform id is an object of kind
-- 'dep' in the objects table, which records the instance holding it and the tool's id) with
-- what the API answers while the tool is slow or down: the spec as asked, the last state
-- the tool reported, its URL, the traffic split and the canary. Every transition is a row
-- of deployment_audit (who, when, what, before, after, why).
--
-- Concurrent writers (the API's workers, the background process's watch and canary
-- rollback) each change only the columns they own in one UPDATE, and every UPDATE bumps
-- `version`: a writer that read the row first writes WHERE version = what it read, and
-- reads again when another writer came between, so no change is lost.
CREATE TABLE deployments (
    id             text PRIMARY KEY REFERENCES objects (id),
    environment    text NOT NULL,
    name           text NOT NULL CHECK (name ~ '^[a-z]([-a-z0-9]*[a-z0-9])?$'
                                        AND length(name) <= 63),
    instance       text NOT NULL,
    -- the create body as the API took it (model, runtime, cpu, memory, env, args, replicas,
    -- autoscaling, gpu_type, gpu_count) and the GPU as resolved: {resource_name,
    -- node_selector, mig_profile} or null
    spec           jsonb NOT NULL,
    gpu            jsonb,
    -- what capacity counts: gpu_count x replicas_max, and as much again while a canary runs
    gpu_type       text,
    gpu_count      integer NOT NULL DEFAULT 0 CHECK (gpu_count BETWEEN 0 AND 64),
    replicas_max   integer NOT NULL CHECK (replicas_max BETWEEN 1 AND 100),
    state          text NOT NULL DEFAULT 'progressing'
                   CHECK (state IN ('progressing', 'ready', 'failed', 'deleting', 'deleted')),
    reason         text,
    url            text,
    ready_replicas integer NOT NULL DEFAULT 0,
    traffic        jsonb NOT NULL DEFAULT '{"stable": 100, "canary": 0}',
    canary         jsonb,
    links          jsonb NOT NULL DEFAULT '{}',
    version        bigint NOT NULL DEFAULT 1,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
-- A name is unique in its environment among the live deployments; a deleted one frees it.
CREATE UNIQUE INDEX deployments_live_name ON deployments (environment, name)
    WHERE state <> 'deleted';
CREATE INDEX deployments_env ON deployments (environment, created_at, id);
-- What the capacity check sums, per (environment, GPU type).
CREATE INDEX deployments_gpu ON deployments (environment, gpu_type) WHERE state <> 'deleted';

CREATE TABLE deployment_audit (
    id            bigserial PRIMARY KEY,
    deployment_id text NOT NULL REFERENCES deployments (id),
    environment   text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    action        text NOT NULL CHECK (action IN ('create', 'ready', 'failed', 'scale', 'canary',
                                                  'traffic', 'promote', 'rollback', 'delete')),
    before        jsonb,
    after         jsonb,
    reason        text
);
CREATE INDEX deployment_audit_deployment ON deployment_audit (deployment_id, id);

-- Running training jobs count against a GPU type's capacity too.
CREATE INDEX training_jobs_gpu ON training_jobs (environment, gpu_type)
    WHERE status = 'RUNNING';
