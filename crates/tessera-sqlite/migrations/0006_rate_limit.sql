-- A token's rate limit (issue 14): at most rate_requests allowed checks in
-- each window of rate_per seconds; both NULL when it has none.
ALTER TABLE tokens ADD COLUMN rate_requests INTEGER;
ALTER TABLE tokens ADD COLUMN rate_per INTEGER;
-- Allowed checks of rate-limited tokens, per window (its index: the time
-- divided by the window's length), counted by every node alike; a row may
-- go once its window has ended (`until`). No foreign key: the check's
-- write stays one row, and the sweep takes what is left.
CREATE TABLE token_rate (
    token_id INTEGER NOT NULL,
    win      INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    until    INTEGER NOT NULL,
    PRIMARY KEY (token_id, win)
);
