-- The change stream's log (tessera_core::feed on SQLite; see src/feed.rs):
-- every row of `tokens` inserted, updated or deleted appends its id here,
-- in the writing statement's own transaction, so the entry commits (and
-- only if) the write does. Writers are serialised by SQLite, so `seq`
-- grows in commit order, without gaps (AUTOINCREMENT's counter is rolled
-- back with a rolled-back write). A node polling `data_version` reads the
-- entries past the last one it saw and forgets just those tokens: writes to
-- other tables (last-used flushes, sessions, events) change no entry and
-- empty no cache.
--
-- The log keeps its newest 100,000 entries. A subscription that finds the
-- entry after its last one gone (a gap) says "all" (the cache empties).
CREATE TABLE token_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL
);

CREATE TRIGGER tokens_log_insert AFTER INSERT ON tokens
BEGIN
    INSERT INTO token_changes (token_id) VALUES (NEW.id);
END;

CREATE TRIGGER tokens_log_update AFTER UPDATE ON tokens
BEGIN
    INSERT INTO token_changes (token_id) VALUES (NEW.id);
    INSERT INTO token_changes (token_id) SELECT OLD.id WHERE OLD.id <> NEW.id;
END;

CREATE TRIGGER tokens_log_delete AFTER DELETE ON tokens
BEGIN
    INSERT INTO token_changes (token_id) VALUES (OLD.id);
END;

-- Recursive triggers are off (SQLite's default), so this DELETE fires no
-- trigger of its own.
CREATE TRIGGER token_changes_prune AFTER INSERT ON token_changes
BEGIN
    DELETE FROM token_changes WHERE seq <= NEW.seq - 100000;
END;
