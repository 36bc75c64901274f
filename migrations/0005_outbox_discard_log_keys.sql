-- 0005: an admin may discard a dead outbox row so the rows behind it flow; a resent log
-- body reuses the default timestamp of its first sending; a retried experiment create finds
-- the reservation its crashed first attempt left.

-- 'discarded': an admin skipped a dead row (POST /llm-ops/v1/outbox/{id}/discard). It is
-- never delivered, no longer holds the object's later rows back, and keeps who, when and why.
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('pending', 'done', 'dead', 'discarded'));
ALTER TABLE outbox ADD COLUMN discarded_by text;
ALTER TABLE outbox ADD COLUMN discarded_at timestamptz;
ALTER TABLE outbox ADD COLUMN discard_reason text;
ALTER TABLE outbox ADD CONSTRAINT outbox_discard_audited
    CHECK ((state = 'discarded') = (discarded_by IS NOT NULL AND discarded_at IS NOT NULL
                                    AND discard_reason IS NOT NULL));

-- What holds an object's rows back is a row still pending or dead before them.
DROP INDEX outbox_open;
CREATE INDEX outbox_open ON outbox (object_id, id) WHERE state IN ('pending', 'dead');

-- The default timestamp of the metric points of one log body sent to one run: the time it
-- was first received, reused by every resend of the same body (SHA-256 of its canonical
-- JSON) until it has not been sent for 24 hours (the jobs process prunes older rows), so a
-- resend makes the same points, which the tools store once.
CREATE TABLE log_bodies (
    object_id    text NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    body_sha256  text NOT NULL CHECK (body_sha256 ~ '^[0-9a-f]{64}$'),
    timestamp_ms bigint NOT NULL,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object_id, body_sha256)
);
CREATE INDEX log_bodies_seen ON log_bodies (seen_at);

-- The create key of an experiment reserved through the API: SHA-256 of (instance, name),
-- the idempotency key the tool keeps. A retry after a crashed create reuses the reservation.
ALTER TABLE objects ADD COLUMN create_key text;
CREATE INDEX objects_unbound_create_key ON objects (instance, kind, create_key)
    WHERE external_id IS NULL AND create_key IS NOT NULL;
