-- 0004: training jobs, and the outbox of tool writes that can wait.
--
-- A training job is the platform's own row; the tracking run it opens is an outbox row
-- written in the same statement, so a job exists even while the tracker is down. The jobs
-- process (llm-opsd --jobs) delivers outbox rows in id order per object, with backoff,
-- and dead-letters what keeps failing.

CREATE TABLE training_jobs (
    id              text PRIMARY KEY CHECK (id ~ '^job_[0-9a-f]{24}$'),
    environment     text NOT NULL,
    name            text NOT NULL,
    experiment      text NOT NULL,
    base_model      text NOT NULL,
    dataset         text NOT NULL,
    gpu_type        text NOT NULL,
    gpu_count       integer NOT NULL CHECK (gpu_count BETWEEN 1 AND 1024),
    hyperparameters jsonb NOT NULL DEFAULT '{}',
    description     text,
    status          text NOT NULL DEFAULT 'QUEUED'
                    CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    run_id          text NOT NULL REFERENCES objects (id),
    experiment_id   text REFERENCES objects (id),
    run_ui_url      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL
);

CREATE INDEX training_jobs_env_created ON training_jobs (environment, created_at, id);

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    object_id       text NOT NULL REFERENCES objects (id),
    environment     text NOT NULL,
    operation       text NOT NULL CHECK (operation IN ('create_run', 'log_batch', 'update_run')),
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz
);

-- The rows still to deliver (or dead), by object, in order: what the jobs process scans.
CREATE INDEX outbox_open ON outbox (object_id, id) WHERE state <> 'done';
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state, id);

-- Wakes the jobs process as soon as a row is committed.
CREATE FUNCTION llmops_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('llmops_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT OR UPDATE OF state ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION llmops_outbox_notify();
