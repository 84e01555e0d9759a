-- Lost demand beside what was shipped: a rejected reservation's ledger row records the
-- units it asked for, so demand history can tell sales from demand turned away.
ALTER TABLE ledger ADD COLUMN lost bigint CHECK (lost > 0);
