-- Who caused each movement and when it happened in the business's own time: the cause
-- event's `source` (an API write's is `api-key:<name>`) and its `time`, beside
-- recorded_at (when the processor applied it). Rows written before this migration keep
-- NULL in both: their cause's source and time were not kept.
ALTER TABLE ledger ADD COLUMN actor text, ADD COLUMN event_time timestamptz;
