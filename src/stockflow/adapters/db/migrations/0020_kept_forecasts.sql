-- Each key's latest forecast and reorder suggestion, as `stockflow forecast` made them
-- (issue 28): the console's key page shows what the buyer's last run said rather than
-- forecasting on request (a one-key forecast calibrates its safety multiplier on that key
-- alone, and could disagree with the run that published). A run upserts every key it
-- planned (`--no-keep` leaves the table alone); a row is replaced only by a run made no
-- earlier than it, so two runs at once leave the later one.
CREATE TABLE kept_forecasts (
    key                text PRIMARY KEY,
    as_of              date NOT NULL,              -- the forecast's first day; the history ends the day before
    made_at            timestamptz NOT NULL,       -- when the run read the stock
    scope              text NOT NULL,              -- 'all', 'warehouse WH-1' or 'key': what the run covered
    run_keys           integer NOT NULL,           -- keys the run planned
    published          boolean NOT NULL,           -- the run published its reorder.suggested
    model              text NOT NULL,
    kind               text NOT NULL,              -- 'smooth' or 'intermittent'
    mean               double precision[] NOT NULL, -- units a day from as_of
    intervals          jsonb NOT NULL,             -- {"80": [[low...], [high...]], "95": ...}
    recent             double precision[] NOT NULL, -- demand a day (shipped + lost) of the days before as_of, oldest first
    lead_time_days     integer NOT NULL,
    review_days        integer NOT NULL,
    service_level      double precision NOT NULL,
    lead_time_demand   double precision NOT NULL,
    safety_stock       bigint NOT NULL,
    reorder_point      bigint NOT NULL,
    order_up_to        bigint NOT NULL,
    on_hand            bigint NOT NULL,
    available          bigint NOT NULL,
    in_transit         bigint NOT NULL,
    on_order           bigint NOT NULL,
    position           bigint NOT NULL,            -- available + in transit + on order
    suggested_quantity bigint NOT NULL,
    stock_version      bigint NOT NULL             -- the key's version the position was read at
);
