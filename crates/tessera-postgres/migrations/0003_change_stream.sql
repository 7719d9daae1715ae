-- The change stream (tessera_core::feed): every statement that inserts,
-- updates or deletes rows of `tokens` sends one NOTIFY naming their ids, in
-- the statement's own transaction, so it is delivered when (and only if) the
-- write commits, in commit order. One message per statement, listing the
-- ids as `t:1,2,3` (`Change::encode`), or `all` past 300 ids
-- (`MAX_IDS_PER_MESSAGE`: a payload ends at 8,000 bytes). A TRUNCATE sends
-- `all`. Writes to `token_usage` (last-used times) send nothing: they change
-- no token row.
--
-- The channel is per schema, so that stores sharing a database in different
-- schemas do not hear each other: `tessera_changes_<schema>`. A channel is
-- an identifier (63 bytes at most; `pg_notify` refuses a longer one), so a
-- schema name too long for that is replaced by its MD5 in hex:
-- `tessera_changes_md5_<32 hex digits>` (52 bytes), always the same for one
-- schema.
CREATE FUNCTION tessera_changes_channel(schema_name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN octet_length('tessera_changes_' || schema_name) <= 63
            THEN 'tessera_changes_' || schema_name
        ELSE 'tessera_changes_md5_' || md5(schema_name)
    END
$$;

-- The store reads its channel with this (the schema `tokens` resolves to,
-- the one its triggers name as TG_TABLE_SCHEMA).
CREATE VIEW tessera_changes AS
    SELECT tessera_changes_channel(n.nspname) AS channel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = 'tokens'::regclass;

-- One function for every trigger below; each names its transition tables
-- (`new_rows` for inserts, `old_rows` for deletes, both for updates).
-- `SET search_path FROM CURRENT`: it finds `tessera_changes_channel` in
-- this schema whatever the writing session's search path.
CREATE FUNCTION tessera_announce_tokens() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    ids bigint[];
    payload text;
BEGIN
    -- At most 301 ids are read: one more than a message names.
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(id ORDER BY id) INTO ids FROM (SELECT id FROM new_rows LIMIT 301) AS c;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(id ORDER BY id) INTO ids FROM (SELECT id FROM old_rows LIMIT 301) AS c;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(id ORDER BY id) INTO ids
            FROM (SELECT id FROM old_rows UNION SELECT id FROM new_rows LIMIT 301) AS c;
    END IF;
    IF TG_OP = 'TRUNCATE' OR cardinality(ids) > 300 THEN
        payload := 'all';
    ELSIF ids IS NULL THEN
        RETURN NULL; -- the statement changed no row: nothing to say
    ELSE
        payload := 't:' || array_to_string(ids, ',');
    END IF;
    PERFORM pg_notify(tessera_changes_channel(TG_TABLE_SCHEMA), payload);
    RETURN NULL;
END
$$;

-- Statement-level, with transition tables: one message per statement, not
-- per row. PostgreSQL allows transition tables only on a trigger of one event.
CREATE TRIGGER tokens_announce_insert AFTER INSERT ON tokens
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_announce_tokens();
CREATE TRIGGER tokens_announce_update AFTER UPDATE ON tokens
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_announce_tokens();
CREATE TRIGGER tokens_announce_delete AFTER DELETE ON tokens
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_announce_tokens();
CREATE TRIGGER tokens_announce_truncate AFTER TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_announce_tokens();
