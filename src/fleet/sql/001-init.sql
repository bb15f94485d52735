-- espstation fleet schema, version 1: every station's boards and runs in one database.
-- Applied by `espstation db init URL` inside one transaction, after which
-- espstation_schema holds version 1. Later versions are new files (002-*.sql), never edits of
-- this one: a database at version N gets N+1.. applied in order.

-- A run: one `espstation run` (or a shift of `run --continuous`) on one station. Its counts are
-- rewritten as the run goes (the latest state wins, by updated_at).
CREATE TABLE runs (
    station     text        NOT NULL,  -- the station id (--station, else the host name)
    run_id      text        NOT NULL,  -- the run directory's name (reports/<run_id>)
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,           -- NULL while the run goes on
    total       integer     NOT NULL DEFAULT 0,
    passed      integer     NOT NULL DEFAULT 0,
    failed      integer     NOT NULL DEFAULT 0,
    interrupted integer     NOT NULL DEFAULT 0,
    profiles    jsonb       NOT NULL,  -- [{"name":..., "sha256":...}], as in run.json
    tool_version text       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station, run_id)
);

-- A board: one finished session, a row per report. record_key is the idempotency key that makes
-- a record delivered twice (the station died after the insert, before it forgot the record)
-- land once: station/run_id/slot/mac/start, where start (ms since the epoch) tells apart two
-- sessions of the same board on the same slot in one continuous run.
CREATE TABLE boards (
    id             bigserial   PRIMARY KEY,
    record_key     text        NOT NULL UNIQUE,
    station        text        NOT NULL,
    run_id         text        NOT NULL,
    slot           text        NOT NULL,  -- the slot's stable name (USB location or port)
    mac            macaddr,               -- NULL: the board failed before its MAC was read
    chip           text,
    profile_name   text,
    profile_sha256 text,                  -- the profile file's SHA-256, hex
    result         text        NOT NULL CHECK (result IN ('pass', 'fail', 'interrupted')),
    phase          text,                  -- where it failed (NULL on a pass)
    error_code     text,                  -- es_code_name() (NULL on a pass)
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    -- An earlier passing board with this MAC and profile from another run or station, found
    -- when this row was inserted (NULL: none).
    duplicate_of   bigint      REFERENCES boards (id),
    report         jsonb       NOT NULL,  -- the device report, whole
    inserted_at    timestamptz NOT NULL DEFAULT now()
);

-- "Was this MAC already flashed with this profile?" asked before each flash and on insert.
CREATE INDEX boards_pass_mac ON boards (mac, profile_name) WHERE result = 'pass';
-- `espstation fleet`'s time windows.
CREATE INDEX boards_ended ON boards (ended_at);
