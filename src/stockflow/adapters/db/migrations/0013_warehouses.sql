-- The warehouse registry (contract v1.1, Orders): the warehouses the order coordinator may
-- allocate across, and an append-only history of every change made to them. The limits
-- are those of `stockflow.domain.warehouses`; these checks hold them whoever writes.
CREATE TABLE warehouses (
    code       text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9._-]{1,64}$'),
    -- no control characters: names are printed in tables and logs
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200
                                    AND name !~ '[\x01-\x1F\x7F]'),
    priority   integer NOT NULL CHECK (priority BETWEEN 0 AND 1000000),  -- lower first
    active     boolean NOT NULL,
    lat        double precision CHECK (lat BETWEEN -90 AND 90),  -- NaN is outside too
    lon        double precision CHECK (lon BETWEEN -180 AND 180),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((lat IS NULL) = (lon IS NULL))  -- a location is both or neither
);
-- what allocation reads, in the order it ranks them
CREATE INDEX warehouses_active ON warehouses (priority, code) WHERE active;

-- One row per change, written by the statement that makes it: who, when, and each field
-- that changed with its value before and after ({"priority": {"old": 100, "new": 5}};
-- "location" is {"lat": .., "lon": ..} or null). A warehouse's first row, its addition,
-- has every old value null. Warehouses are never deleted (the key refuses it), only
-- deactivated.
CREATE TABLE warehouse_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order of changes
    code       text NOT NULL REFERENCES warehouses (code),
    actor      text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action     text NOT NULL CHECK (action IN ('added', 'changed')),
    changed_at timestamptz NOT NULL,
    changes    jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'object' AND changes <> '{}')
);
CREATE INDEX warehouse_changes_code ON warehouse_changes (code, id);

CREATE FUNCTION history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER warehouse_changes_no_update BEFORE UPDATE OR DELETE ON warehouse_changes
    FOR EACH ROW EXECUTE FUNCTION history_is_append_only();
CREATE TRIGGER warehouse_changes_no_truncate BEFORE TRUNCATE ON warehouse_changes
    FOR EACH STATEMENT EXECUTE FUNCTION history_is_append_only();
