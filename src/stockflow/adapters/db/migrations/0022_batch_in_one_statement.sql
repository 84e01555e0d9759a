-- A stock batch is written by one statement (adapters/db/batches.py, `commit_batch`): its
-- positions' compare-and-set must fail that statement, not merely report a count, so a
-- fenced member's rows are never committed. The error's code is what the writer matches.
CREATE FUNCTION positions_advanced(moved bigint, wanted bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF moved <> wanted THEN
        RAISE EXCEPTION 'consumer positions moved under this member (% of % advanced)',
            moved, wanted USING ERRCODE = 'SF409';
    END IF;
    RETURN true;
END $$;

-- Every batch updates its keys' stock rows: room on each page lets an update stay on its
-- page (a HOT update: no new index entry, less WAL). Applies to pages written from now on.
ALTER TABLE stock SET (fillfactor = 80);
