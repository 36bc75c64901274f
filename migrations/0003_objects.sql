-- 0003: which instance holds each object the platform created through a plugin.
-- A platform id maps to (instance, external id), so after a flag flips, old objects are
-- still read from the tool that holds them; only new objects go to the new active instance.

CREATE TABLE objects (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z]+_[0-9a-f]{24}$'),
    kind        text NOT NULL,
    environment text NOT NULL,
    category    text NOT NULL,
    instance    text NOT NULL,
    external_id text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);

CREATE UNIQUE INDEX objects_instance_external ON objects (instance, kind, external_id);
CREATE INDEX objects_env_kind ON objects (environment, kind, created_at);
