-- The audit trail (issue 14): who did it (a user or a token; neither for a
-- failed login), from which client address ('' when there was no request),
-- and a short word of detail (the name a failed login tried). Events
-- written before this migration keep no actor.
ALTER TABLE events ADD COLUMN actor_user_id BIGINT;
ALTER TABLE events ADD COLUMN actor_token_id BIGINT;
ALTER TABLE events ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN detail TEXT NOT NULL DEFAULT '';
-- A user's trail (what concerns them, what they did), a token's, and the
-- retention sweep by time; each read pages down by id.
CREATE INDEX events_by_user ON events (user_id, id);
CREATE INDEX events_by_actor ON events (actor_user_id, id);
CREATE INDEX events_by_token ON events (token_id, id);
CREATE INDEX events_by_time ON events (at);
