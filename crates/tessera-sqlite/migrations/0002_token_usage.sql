-- Last-used times written by the checks' coalesced flushes, apart from the
-- wide token rows: a flush after a busy minute touches tens of thousands of
-- tokens, and rewriting each token row dirtied nearly every page of the
-- table. Here a row is an id and a time.
--
-- A token's last use is this table's `at` when it has a row, else
-- `tokens.last_used_at` (the value the token was inserted with, e.g. by an
-- import). A write here never goes below `tokens.last_used_at`, so the
-- time never moves back.
CREATE TABLE token_usage (
    token_id INTEGER PRIMARY KEY REFERENCES tokens (id) ON DELETE CASCADE,
    at       INTEGER NOT NULL
);
