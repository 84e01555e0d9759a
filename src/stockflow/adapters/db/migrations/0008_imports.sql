-- CSV imports: what each published, so `GET /v1/imports/{id}` can say how many of its rows
-- the processor has applied. A row's event id is `<import id>:<line>`. An id names one
-- file (its SHA-256): re-running an import with its id re-sends the same event ids, which
-- the processor counts as duplicates.
CREATE TABLE imports (
    id           text PRIMARY KEY,
    kind         text NOT NULL,
    actor        text NOT NULL,
    file_name    text NOT NULL,
    digest       text NOT NULL,
    lines        int[] NOT NULL,   -- the file line of each published row
    skipped      int NOT NULL,     -- bad rows left out (allow-partial)
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz       -- NULL until Kafka took the transaction
);
