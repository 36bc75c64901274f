-- 0006: the background process's generic work. The outbox is keyed by (category,
-- operation) like the objects it writes to, so any category's writes can wait in it.

-- Every row names its category; the operation is any op name of the category (the
-- deliverer's hook table, core/deliver.c, says which it can deliver; a row it cannot is
-- dead with a message naming the pair).
ALTER TABLE outbox ADD COLUMN category text;
UPDATE outbox o SET category = ob.category FROM objects ob WHERE ob.id = o.object_id;
ALTER TABLE outbox ALTER COLUMN category SET NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_category_check CHECK (category ~ '^[a-z][a-z_]{0,31}$');
ALTER TABLE outbox DROP CONSTRAINT outbox_operation_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_operation_check
    CHECK (operation ~ '^[a-z][a-z0-9_]{0,63}$');
-- A row that binds its object to the tool's id (tracking's create_run) is never discarded:
-- the rows behind it need the binding.
ALTER TABLE outbox ADD COLUMN binds_object boolean NOT NULL DEFAULT false;
UPDATE outbox SET binds_object = true WHERE operation = 'create_run';

-- Watches: objects whose state in the tool converges later (a deployment becoming ready, a
-- workflow finishing, an import done). The background process polls each with the
-- category's read op, with exponential backoff and jitter, until a terminal state or the
-- deadline. The row says how to read the answer, so a category needs no code to be
-- watched; a category may register a hook that updates its own platform row (core/watch.h).
CREATE TABLE watches (
    id            bigserial PRIMARY KEY,
    object_id     text NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    environment   text NOT NULL,
    category      text NOT NULL CHECK (category ~ '^[a-z][a-z_]{0,31}$'),
    read_op       text NOT NULL CHECK (read_op ~ '^[a-z][a-z0-9_]{0,63}$'),
    state_member  text NOT NULL DEFAULT 'state',
    ready_states  text[] NOT NULL,
    failed_states text[] NOT NULL DEFAULT '{}',
    state         text NOT NULL DEFAULT 'watching'
                  CHECK (state IN ('watching', 'ready', 'failed', 'timed_out')),
    tool_state    text,
    reason        text,
    polls         integer NOT NULL DEFAULT 0,
    base_delay_ms bigint NOT NULL DEFAULT 1000 CHECK (base_delay_ms BETWEEN 10 AND 3600000),
    max_delay_ms  bigint NOT NULL DEFAULT 60000 CHECK (max_delay_ms BETWEEN 10 AND 86400000),
    next_poll_at  timestamptz NOT NULL DEFAULT now(),
    deadline_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz
);
-- One open watch per object; the due ones are what the background process scans.
CREATE UNIQUE INDEX watches_open ON watches (object_id) WHERE state = 'watching';
CREATE INDEX watches_due ON watches (next_poll_at, id) WHERE state = 'watching';

-- What the platform saw happen to an object: a watched tool state that changed, and the
-- terminal outcome (ready, failed, timed_out), in order.
CREATE TABLE object_events (
    id          bigserial PRIMARY KEY,
    object_id   text NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    environment text NOT NULL,
    category    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('tool_state', 'ready', 'failed', 'timed_out')),
    tool_state  text,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX object_events_object ON object_events (object_id, id);

-- Long operations: a [jobs] op (an import, an export, a checkout) run by the background
-- process's operations lane, beside the outbox. Read at /llm-ops/v1/operations/{id}. A
-- process claims a pending one (or one whose lease ran out: its process died) with FOR
-- UPDATE SKIP LOCKED and renews the lease while the op reports; the checkpoint lets the
-- next claim resume where the last one stopped.
CREATE TABLE operations (
    id               bigserial PRIMARY KEY,
    environment      text NOT NULL,
    category         text NOT NULL CHECK (category ~ '^[a-z][a-z_]{0,31}$'),
    operation        text NOT NULL CHECK (operation ~ '^[a-z][a-z0-9_]{0,63}$'),
    instance         text NOT NULL,
    object_id        text REFERENCES objects (id) ON DELETE SET NULL,
    input            jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    progress_done    bigint,
    progress_total   bigint,
    progress_unit    text CHECK (length(progress_unit) <= 15),
    checkpoint       jsonb,
    result           jsonb,
    error            text,
    cancel_requested boolean NOT NULL DEFAULT false,
    cancelled_by     text,
    attempts         integer NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_until      timestamptz,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX operations_open ON operations (id) WHERE state IN ('pending', 'running');
CREATE INDEX operations_env ON operations (environment, id);

