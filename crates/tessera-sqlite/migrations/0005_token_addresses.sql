-- Where tokens are used from (issue 14). `token_usage.address` is the
-- client address of the latest use written (`lastUsedIp`; '' for none).
-- `token_addresses` holds every address a token was allowed from, once:
-- a check from an address not in it (of a token that has some) is the
-- audit event `token.new_address`. Rows go with their token.
ALTER TABLE token_usage ADD COLUMN address TEXT NOT NULL DEFAULT '';
CREATE TABLE token_addresses (
    token_id   INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    address    TEXT   NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (token_id, address)
);
