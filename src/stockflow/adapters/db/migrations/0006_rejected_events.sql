-- Inputs the processor rejected on the state of their key (negative_result) or failed on
-- (processing_error), by event id, written in the batch's transaction beside the DLQ
-- message: the HTTP API's ?wait answers with them instead of waiting in vain. A rejection
-- is not remembered as applied (the contract): a re-sent event is judged again, and a
-- second rejection overwrites the first.
CREATE TABLE rejected_events (
    event_id    text PRIMARY KEY,
    key         text NOT NULL,
    reason      text NOT NULL,
    message     text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
