-- The values of each applied `stock.thresholds-set` (issue 27 point 5): the ledger keeps
-- when thresholds were set, not to what, so a key's forecast chart could draw only the
-- values in force now. The processor writes a row here for each one it applies, in the
-- batch's transaction (a replayed batch is a duplicate and writes none), keyed like the
-- ledger row it goes with. The values it replaced come along: they are the ones set by the
-- change before, which may predate this table (or be the defaults the key started with).
-- Rare rows: nothing is written for a batch without a thresholds-set.
CREATE TABLE threshold_history (
    key                    text NOT NULL,
    version                bigint NOT NULL,  -- the key's version the change made (its ledger row's)
    event_id               text NOT NULL,
    set_at                 timestamptz,      -- business time: the event's own time
    reorder_point          bigint NOT NULL,
    safety_stock           bigint NOT NULL,
    previous_reorder_point bigint NOT NULL,
    previous_safety_stock  bigint NOT NULL,
    recorded_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);
