-- 0009: Alertmanager's webhook (POST /llm-ops/v1/alerts). A token role of its own that may
-- only post alerts, and a record of every alert received and what was done about it.

ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('reader', 'operator', 'admin', 'alerts'));

-- One row per alert as Alertmanager identifies it (fingerprint: its label set; starts_at: this
-- firing of it) and status: a repeat of the same group (every repeat_interval, after a
-- restart) only bumps times_received, so a firing alert acts once. actions holds what was
-- done, one member per target the alert's labels named: {action, target, result, message}.
-- result is the worst of them: done (a rollback was made), noop (nothing to roll back),
-- ignored (resolved, or no llmops_* label), failed (refused: unknown deployment, no
-- fallback...) or error (the action could not be made now: tried again on the next repeat);
-- pending while a delivery acts on it.
CREATE TABLE alert_events (
    id               bigserial PRIMARY KEY,
    fingerprint      text NOT NULL CHECK (fingerprint ~ '^[A-Za-z0-9]{1,64}$'),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz,
    status           text NOT NULL CHECK (status IN ('firing', 'resolved')),
    alertname        text NOT NULL DEFAULT '',
    receiver         text NOT NULL DEFAULT '',
    group_key        text NOT NULL DEFAULT '',
    labels           jsonb NOT NULL,
    annotations      jsonb NOT NULL,
    generator_url    text NOT NULL DEFAULT '',
    received_by      text NOT NULL,
    result           text NOT NULL DEFAULT 'pending'
                     CHECK (result IN ('pending', 'done', 'noop', 'ignored', 'failed', 'error')),
    actions          jsonb NOT NULL DEFAULT '[]',
    -- when a delivery took the alert to act on it: a repeat while it is pending does not act
    -- too, unless that delivery is 60 s old (its worker died): then the repeat takes it over
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    times_received   integer NOT NULL DEFAULT 1,
    first_received_at timestamptz NOT NULL DEFAULT now(),
    last_received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (fingerprint, starts_at, status)
);
CREATE INDEX alert_events_recent ON alert_events (last_received_at DESC, id DESC);
