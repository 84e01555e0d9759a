-- Every timestamp stockflow stores it must be able to read back: Python's datetime ends at
-- year 9999 and starts at year 1, Postgres' timestamptz goes far beyond both, and a value
-- outside (say year 10000 once converted to UTC) used to fail every read of its row. The edge
-- now refuses such times; rows written before are moved to the nearest readable instant,
-- which keeps their meaning: a line that expired in year 0 is due, one in year 10000 is not.
UPDATE reservations SET expires_at = '0001-01-02T00:00:00Z'
 WHERE expires_at < '0001-01-02T00:00:00Z';
UPDATE reservations SET expires_at = '9999-01-01T00:00:00Z'
 WHERE expires_at > '9999-01-01T00:00:00Z';
ALTER TABLE reservations ADD CONSTRAINT reservations_expires_at_readable
    CHECK (expires_at BETWEEN '0001-01-02T00:00:00Z' AND '9999-01-01T00:00:00Z');
