-- The webhook outbox (issue 14): one row per notice and receiver, kept
-- until a node delivered it (or gave up) and then until the audit sweep
-- passes keep_until. receiver is a digest of the receiver's address (an
-- address may carry a capability); dedupe is the notice's key, the same
-- for every receiver and attempt, taken once per receiver. due_at is when
-- it is next due: a claim moves it to the lease's end under its nonce
-- (claim), so a node that dies holding it lets another send it then.
-- The event's columns are those of events.
CREATE TABLE webhook_outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver       TEXT    NOT NULL,
    dedupe         TEXT    NOT NULL,
    at             INTEGER  NOT NULL,
    kind           TEXT    NOT NULL,
    token_id       INTEGER,
    user_id        INTEGER,
    actor_user_id  INTEGER,
    actor_token_id INTEGER,
    address        TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    deadline       INTEGER,
    keep_until     INTEGER  NOT NULL,
    due_at         INTEGER  NOT NULL,
    attempts       INTEGER  NOT NULL DEFAULT 0,
    claim          INTEGER,
    settled        INTEGER  NOT NULL DEFAULT 0,
    UNIQUE (receiver, dedupe)
);
-- The claim: what is due for a receiver, oldest first.
CREATE INDEX webhook_outbox_due ON webhook_outbox (receiver, settled, due_at, id);
-- The sweep of settled rows.
CREATE INDEX webhook_outbox_kept ON webhook_outbox (settled, keep_until);
