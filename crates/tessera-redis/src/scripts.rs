//! The Lua scripts: every operation that must be atomic runs as one script
//! on keys of one hash slot (on one server, the legacy import is one script
//! over many slots; on a Cluster it is staged, see `crate::import`).
//!
//! Every script that changes a token record announces it on the store's
//! change stream (`tessera_core::feed`) with `announce_record`, from inside
//! the script, so the message is atomic with the write: no subscriber can
//! read the new record before the message is on its way, and a failed write
//! announces nothing. `publish` (in [`PRELUDE`]) is the one place that
//! publishes, and [`crate::Keys::changes`] the one that names the channel.
//! Every write of a token record already was one of these scripts (insert,
//! edit, rotation, revocation, and through it a user's deletion, the sweep,
//! the legacy import), so none had to be moved into a script or a
//! `MULTI`/`EXEC` for it. The commands pipelined around them touch only
//! indexes, the legacy horizon and legacy pointers (their expiry; a
//! pointer is deleted only after its record, whose deletion was announced):
//! nothing that changes what `token_for_check` answers.
//!
//! Conventions: `KEYS` are named in each script's comment; numbers arrive as
//! decimal text and are stored as given (Lua only compares them); a record
//! that cannot be read raises an error whose code is `CORRUPT`, which the
//! client maps to `StoreError::Corrupt`. Key expiry always comes from
//! `expire_at`: never sooner than `retention` after the write, whatever the
//! record's timestamps say (see the crate docs, "Expiry").

use redis::Script;
use tessera_core::feed::MAX_IDS_PER_MESSAGE;

use crate::codec::TOKEN_FIELDS;

/// Helpers shared by the scripts that write token or session records.
/// `CHANNEL`, `MAX_IDS` and `origin` are defined before it (see [`Scripts::new`]).
///
/// `publish` uses plain `PUBLISH`, which a Redis Cluster forwards to every
/// node, whatever slot the script runs on. On a Cluster every message is
/// prefixed `c:<node id>:` by the master that ran the script (`origin`,
/// defined before the prelude), so a subscriber keeps each master's own
/// messages, from its connection to that master, and drops the copies the
/// bus forwards (see `crate::feed`).
const PRELUDE: &str = r#"
local function publish(message)
  redis.call('PUBLISH', CHANNEL, origin() .. message)
end
local function announce(ids)
  if #ids == 0 then return end
  if #ids > MAX_IDS then
    publish('all')
  else
    publish('t:' .. table.concat(ids, ','))
  end
end
local function announce_record(rec)
  local id = redis.call('HGET', rec, 'id')
  if id and string.match(id, '^%d+$') then
    announce({id})
  else
    publish('all')
  end
end
local function expire_at(deadline, retention)
  local now = tonumber(redis.call('TIME')[1])
  local base = deadline
  if base == nil or base < now then base = now end
  local at = base + retention
  if at > 253402300799 then at = 253402300799 end
  return string.format('%.0f', at)
end
local function token_deadline(key)
  local f = redis.call('HMGET', key, 'ends', 'rev')
  local ends = tonumber(f[1])
  if ends == nil then error({err = 'CORRUPT token record without a readable end of life'}) end
  local rev = tonumber(f[2])
  if rev ~= nil and rev < ends then return rev end
  return ends
end
local function set_token_expiry(rec, spent, retention)
  local at = expire_at(token_deadline(rec), retention)
  redis.call('EXPIREAT', rec, at)
  if spent then redis.call('EXPIREAT', spent, at) end
  return at
end
"#;

/// What a message starts with on one server: nothing.
const ORIGIN_SINGLE: &str = "local function origin() return '' end\n";

/// What a message starts with on a Cluster: `c:<node id>:`, the master
/// that ran the script.
const ORIGIN_CLUSTER: &str =
    "local function origin() return 'c:' .. redis.call('CLUSTER', 'MYID') .. ':' end\n";

/// KEYS: rec, ptr, spent. ARGV: retention, then field/value pairs.
/// Reply: `{'ok'}` or `{'conflict', owner-or-''}`.
const INSERT_TOKEN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'conflict', redis.call('HGET', KEYS[1], 'user') or ''}
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'conflict', ''} end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
set_token_expiry(KEYS[1], nil, tonumber(ARGV[1]))
announce_record(KEYS[1])
return {'ok'}
"#;

/// KEYS: rec, spent. ARGV: presented refresh digest.
/// Reply: `{'current', fields}`, `{'spent', rotated_at}` or `{'unknown'}`.
const LOOKUP_REFRESH: &str = r#"
local rd = redis.call('HGET', KEYS[1], 'rd')
if rd and rd == ARGV[1] then
  return {'current', redis.call('HMGET', KEYS[1], unpack(FIELDS))}
end
local s = redis.call('HGET', KEYS[2], ARGV[1])
if s then return {'spent', s} end
return {'unknown'}
"#;

/// KEYS: rec, spent. ARGV: presented, at, new access, new refresh,
/// access expiry, ends_at, retention.
/// Reply: `{'rotated', fields}`, `{'spent', rotated_at}`, `{'unknown'}` or `{'conflict'}`.
const ROTATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown'} end
local f = redis.call('HMGET', KEYS[1], 'rev', 'rd', 'ad')
if (not f[1]) and f[2] == ARGV[1] then
  if ARGV[3] == ARGV[4] or ARGV[3] == f[3] or ARGV[3] == ARGV[1] or ARGV[4] == ARGV[1]
    or redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1
    or redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then
    return {'conflict'}
  end
  redis.call('HSET', KEYS[1], 'ad', ARGV[3], 'rd', ARGV[4], 'exp', ARGV[5], 'ends', ARGV[6])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  set_token_expiry(KEYS[1], KEYS[2], tonumber(ARGV[7]))
  announce_record(KEYS[1])
  return {'rotated', redis.call('HMGET', KEYS[1], unpack(FIELDS))}
end
local s = redis.call('HGET', KEYS[2], ARGV[1])
if s then return {'spent', s} end
return {'unknown'}
"#;

/// The by-id preamble: a missing record under a `{t<id>}` tag may be a
/// legacy token, found through its pointer. KEYS: rec, ptr.
const BY_ID: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  local p = redis.call('GET', KEYS[2])
  if p then return {'moved', p} end
  return {'none'}
end
"#;

/// KEYS: rec, ptr, spent. ARGV: now, retention, owner-or-''.
/// Reply: `{'moved', hex}`, `{'none'}`, or
/// `{'revoked'|'already', expire_at-or-'', legacy, id}`.
const REVOKE: &str = r#"
local f = redis.call('HMGET', KEYS[1], 'user', 'rev', 'legacy', 'id')
if ARGV[3] ~= '' and f[1] ~= ARGV[3] then return {'none'} end
if f[2] then return {'already', '', f[3] or '0', f[4] or ''} end
redis.call('HSET', KEYS[1], 'rev', ARGV[1])
local at = set_token_expiry(KEYS[1], KEYS[3], tonumber(ARGV[2]))
announce_record(KEYS[1])
return {'revoked', at, f[3] or '0', f[4] or ''}
"#;

/// KEYS: rec, ptr, spent. ARGV: retention, name, type, endpoints, ips,
/// access expiry, renewable until (or ''), ends_at, rate-limit requests
/// (or '': none) and window.
/// Reply: `{'moved', hex}`, `{'none'}`, `{'revoked'}` or `{'updated', expire_at, legacy, id}`.
const UPDATE: &str = r#"
local f = redis.call('HMGET', KEYS[1], 'rev', 'legacy', 'id')
if f[1] then return {'revoked'} end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'type', ARGV[3], 'eps', ARGV[4], 'ips', ARGV[5],
  'exp', ARGV[6], 'ends', ARGV[8])
if ARGV[7] == '' then
  redis.call('HDEL', KEYS[1], 'ren')
else
  redis.call('HSET', KEYS[1], 'ren', ARGV[7])
end
if ARGV[9] == '' then
  redis.call('HDEL', KEYS[1], 'rl', 'rp')
else
  redis.call('HSET', KEYS[1], 'rl', ARGV[9], 'rp', ARGV[10])
end
local at = set_token_expiry(KEYS[1], KEYS[3], tonumber(ARGV[1]))
announce_record(KEYS[1])
return {'updated', at, f[2] or '0', f[3] or ''}
"#;

/// KEYS: rec, ptr. ARGV: when used, from which address. Keeps the latest
/// time, and the address that goes with it.
/// Reply: `{'moved', hex}`, `{'none'}` or `{'ok'}`.
/// Announces nothing: a last use decides no check (it is not
/// security-relevant), a node's cache keeps its own noted uses, and
/// announcing every flushed use would empty every node's cache each flush.
const LAST_USED: &str = r#"
local prev = tonumber(redis.call('HGET', KEYS[1], 'used'))
if prev == nil or prev <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'used', ARGV[1], 'uip', ARGV[2])
end
return {'ok'}
"#;

/// KEYS: horizon, token-id counter, users-indexed, then per token
/// `{t<id>}:rec`, `{t<id>}:ptr`, `{l<hex>}:rec`, user token index.
/// ARGV: retention, count, then per token: id, hex, access expiry, user id,
/// revoked ('' or not), number of field/value items, the items.
/// Reply: `{'ok'}` or `{'conflict', index}`.
const IMPORT_LEGACY: &str = r#"
local n = tonumber(ARGV[2])
local retention = tonumber(ARGV[1])
for i = 0, n - 1 do
  local k = 4 + 4 * i
  if redis.call('EXISTS', KEYS[k]) == 1 or redis.call('EXISTS', KEYS[k + 1]) == 1
    or redis.call('EXISTS', KEYS[k + 2]) == 1 then
    return {'conflict', tostring(i)}
  end
end
local a = 3
local ids = {}
for i = 0, n - 1 do
  local k = 4 + 4 * i
  local id, hex, exp, uid, rev = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local nf = tonumber(ARGV[a + 5])
  a = a + 6
  redis.call('HSET', KEYS[k + 2], unpack(ARGV, a, a + nf - 1))
  a = a + nf
  local at = set_token_expiry(KEYS[k + 2], nil, retention)
  redis.call('SET', KEYS[k + 1], hex)
  redis.call('EXPIREAT', KEYS[k + 1], at)
  if rev == '' then redis.call('ZADD', KEYS[1], exp, id) end
  redis.call('ZADD', KEYS[k + 3], id, 'l' .. id .. ':' .. hex)
  redis.call('ZADD', KEYS[3], 'NX', uid, uid)
  local c = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if c < tonumber(id) then redis.call('SET', KEYS[2], id) end
  ids[#ids + 1] = id
end
announce(ids)
return {'ok'}
"#;

/// A Cluster's legacy import, step 1 (see `crate::import`), in the digest's
/// slot. KEYS: legacy rec, staged rec. ARGV: seconds to keep the staged
/// record, then field/value pairs. Reply: `{'ok'}` or `{'conflict'}`.
const STAGE_LEGACY: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return {'conflict'}
end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[2], ARGV[1])
return {'ok'}
"#;

/// A Cluster's legacy import, step 1, in the id's slot: claims the id with
/// the legacy pointer (which leads nowhere until the record is published).
/// KEYS: rec, ptr. ARGV: hex, seconds to keep the claim.
/// Reply: `{'ok'}` or `{'conflict'}`.
const CLAIM_LEGACY_ID: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return {'conflict'}
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return {'ok'}
"#;

/// Undoes a claim of this import (only while it still points at `hex` and
/// no record took the id). KEYS: rec, ptr. ARGV: hex. Reply: 1 or 0.
const UNCLAIM_LEGACY_ID: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"#;

/// A Cluster's legacy import, step 3, in the digest's slot: the staged
/// record becomes the record (idempotent, so a roll-forward may repeat it).
/// KEYS: staged rec, legacy rec. ARGV: retention.
/// Reply: `{'ok', expire_at}` or `{'missing'}`.
const PUBLISH_LEGACY: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[2])
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])
  local at = set_token_expiry(KEYS[2], nil, tonumber(ARGV[1]))
  announce_record(KEYS[2])
  return {'ok', at}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'ok', tostring(redis.call('EXPIRETIME', KEYS[2]))}
end
return {'missing'}
"#;

/// A Cluster's legacy import, step 2, in the `{imports}` slot: the commit
/// point. KEYS: the import's marker, the pending set. ARGV: import id,
/// the marker's text. Reply: 1.
const COMMIT_IMPORT: &str = r#"
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"#;

/// A Cluster's legacy import, last step: the import is complete.
/// KEYS: the import's marker, the pending set. ARGV: import id. Reply: 1.
const FINISH_IMPORT: &str = r#"
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"#;

/// No keys. ARGV: a heartbeat's text. On a Cluster master only (else the
/// error `NOTMASTER`): publishes `n:<epoch>:<text>` (as every message on a
/// Cluster, after `c:<node id>:`), so that a subscriber knows which master
/// it came through and in which configuration (see `crate::feed`).
const BEAT_CLUSTER: &str = r#"
local me = redis.call('CLUSTER', 'MYID')
local master = false
for line in string.gmatch(redis.call('CLUSTER', 'NODES'), '[^\n]+') do
  local id, flags = string.match(line, '^(%S+) %S+ (%S+)')
  if id == me then
    master = string.find(',' .. flags .. ',', ',master,', 1, true) ~= nil
  end
end
if not master then
  return redis.error_reply('NOTMASTER this node serves no slots now')
end
local epoch = string.match(redis.call('CLUSTER', 'INFO'), 'cluster_current_epoch:(%d+)')
publish('n:' .. (epoch or '?') .. ':' .. ARGV[1])
return 1
"#;

/// KEYS: counter. ARGV: id. Moves the counter up to `id` (never down).
const BUMP_COUNTER: &str = r#"
local c = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"#;

/// KEYS: rec, spent. ARGV: before. Reply: 'gone', 'swept' or 'live'.
/// (A record already gone left by key expiry, dead by its own timestamps:
/// nothing to announce.)
const SWEEP_TOKEN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 'gone'
end
local f = redis.call('HMGET', KEYS[1], 'rev', 'ends')
local before = tonumber(ARGV[1])
local rev = tonumber(f[1])
local ends = tonumber(f[2])
if (rev ~= nil and rev < before) or (ends ~= nil and ends < before) then
  announce_record(KEYS[1])
  redis.call('DEL', KEYS[1], KEYS[2])
  return 'swept'
end
return 'live'
"#;

/// No keys. ARGV: a heartbeat's text. Publishes `b:<text>` on the change
/// stream: through `publish`, so it travels exactly as the changes do.
const BEAT: &str = r#"
publish('b:' .. ARGV[1])
return 1
"#;

/// KEYS: session. ARGV: user, created, last seen, retention. Reply: 1, or 0 when taken.
const CREATE_SESSION: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'created', ARGV[2], 'seen', ARGV[3])
redis.call('EXPIREAT', KEYS[1], expire_at(tonumber(ARGV[3]), tonumber(ARGV[4])))
return 1
"#;

/// KEYS: session. ARGV: now, retention. Keeps the latest time. Reply: 1, or 0 when absent.
const TOUCH_SESSION: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen'))
local now = tonumber(ARGV[1])
if seen == nil or seen < now then
  redis.call('HSET', KEYS[1], 'seen', ARGV[1])
  seen = now
end
redis.call('EXPIREAT', KEYS[1], expire_at(seen, tonumber(ARGV[2])))
return 1
"#;

/// KEYS: session. ARGV: owner-or-''. Reply: `{'deleted', user}` or `{'none'}`.
const DELETE_SESSION: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'none'} end
local u = redis.call('HGET', KEYS[1], 'user') or ''
if ARGV[1] ~= '' and u ~= ARGV[1] then return {'none'} end
redis.call('DEL', KEYS[1])
return {'deleted', u}
"#;

/// KEYS: session. ARGV: before. Reply: 'gone', 'swept' or 'live'.
const SWEEP_SESSION: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen'))
if seen ~= nil and seen < tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 'swept'
end
return 'live'
"#;

/// KEYS: user, name, all users, users-indexed. ARGV: id, then field/value pairs.
/// Reply: 1, or 0 when the name (or id) is taken.
const CREATE_USER: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[4], 'NX', ARGV[1], ARGV[1])
return 1
"#;

/// KEYS: user, name, all users. ARGV: id. Reply: 1, or 0 when already gone.
const DELETE_USER: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"#;

/// KEYS: a token's counter for one window (`{t<id>}:rate:<window>`).
/// ARGV: the window's end (the core's clock), a slack in seconds, how many
/// checks to count. Reply: the count. The key expires the slack after the
/// later of the window's end and the server's now, so a clock disagreement
/// never resets a count early.
const COUNT_USE: &str = r#"
local n = redis.call('INCRBY', KEYS[1], ARGV[3])
if n == tonumber(ARGV[3]) then
  local now = tonumber(redis.call('TIME')[1])
  local at = math.max(tonumber(ARGV[1]), now) + tonumber(ARGV[2])
  redis.call('EXPIREAT', KEYS[1], string.format('%.0f', at))
end
return n
"#;

/// KEYS: the user. ARGV: the new password hash. Reply: 1, or 0 when there
/// is no such user (nothing written).
const SET_PASSWORD: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'pw', ARGV[1])
return 1
"#;

/// KEYS: rec, ptr (a token id's slot), addrs. ARGV: the address.
/// Reply: `{added, first}` (1/0 each), or `{-1, 0}` when the token is gone.
/// The set expires with the record (or its legacy pointer) as it is now.
const NOTE_ADDRESS: &str = r#"
local owner = KEYS[1]
if redis.call('EXISTS', owner) == 0 then owner = KEYS[2] end
if redis.call('EXISTS', owner) == 0 then return {-1, 0} end
local first = 0
if redis.call('EXISTS', KEYS[3]) == 0 then first = 1 end
local added = redis.call('SADD', KEYS[3], ARGV[1])
local ttl = redis.call('PTTL', owner)
if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
return {added, first}
"#;

/// Every script, compiled once per store (a `Script` knows its SHA-1 and
/// loads itself on `NOSCRIPT`).
pub(crate) struct Scripts {
    /// See [`INSERT_TOKEN`].
    pub insert_token: Script,
    /// See [`LOOKUP_REFRESH`].
    pub lookup_refresh: Script,
    /// See [`ROTATE`].
    pub rotate: Script,
    /// See [`REVOKE`].
    pub revoke: Script,
    /// See [`UPDATE`].
    pub update: Script,
    /// See [`LAST_USED`].
    pub last_used: Script,
    /// See [`IMPORT_LEGACY`].
    pub import_legacy: Script,
    /// See [`BUMP_COUNTER`].
    pub bump_counter: Script,
    /// See [`SWEEP_TOKEN`].
    pub sweep_token: Script,
    /// See [`CREATE_SESSION`].
    pub create_session: Script,
    /// See [`TOUCH_SESSION`].
    pub touch_session: Script,
    /// See [`DELETE_SESSION`].
    pub delete_session: Script,
    /// See [`SWEEP_SESSION`].
    pub sweep_session: Script,
    /// See [`CREATE_USER`].
    pub create_user: Script,
    /// See [`DELETE_USER`].
    pub delete_user: Script,
    /// See [`BEAT`].
    pub beat: Script,
    /// See [`STAGE_LEGACY`].
    pub stage_legacy: Script,
    /// See [`CLAIM_LEGACY_ID`].
    pub claim_legacy_id: Script,
    /// See [`UNCLAIM_LEGACY_ID`].
    pub unclaim_legacy_id: Script,
    /// See [`PUBLISH_LEGACY`].
    pub publish_legacy: Script,
    /// See [`COMMIT_IMPORT`].
    pub commit_import: Script,
    /// See [`FINISH_IMPORT`].
    pub finish_import: Script,
    /// See [`COUNT_USE`].
    pub count_use: Script,
    /// See [`NOTE_ADDRESS`].
    pub note_address: Script,
    /// See [`SET_PASSWORD`].
    pub set_password: Script,
    /// See [`RECORD_EVENT`].
    pub record_event: Script,
    /// See [`SWEEP_EVENTS`].
    pub sweep_events: Script,
    /// See [`ENQUEUE`].
    pub enqueue: Script,
    /// See [`CLAIM`].
    pub claim: Script,
    /// See [`SETTLE`].
    pub settle: Script,
    /// See [`DROP_DELIVERIES`].
    pub drop_deliveries: Script,
    /// The source of [`BEAT_CLUSTER`] with the prelude: sent with `EVAL` to
    /// every master (a master that lost its script cache still runs it).
    pub beat_cluster: String,
}

impl Scripts {
    /// Assembles every script with the shared prelude, the field list and
    /// the change stream's `channel`; on a Cluster (`cluster`) each message
    /// names the master that published it.
    pub(crate) fn new(channel: &str, cluster: bool) -> Self {
        let fields = TOKEN_FIELDS
            .iter()
            .map(|f| format!("'{f}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let origin = if cluster {
            ORIGIN_CLUSTER
        } else {
            ORIGIN_SINGLE
        };
        let head = format!(
            "local FIELDS = {{{fields}}}\nlocal CHANNEL = {}\nlocal MAX_IDS = {MAX_IDS_PER_MESSAGE}\n{origin}{PRELUDE}",
            lua_string(channel)
        );
        let with = |body: &str| Script::new(&format!("{head}{body}"));
        let by_id = |body: &str| Script::new(&format!("{head}{BY_ID}{body}"));
        Scripts {
            insert_token: with(INSERT_TOKEN),
            lookup_refresh: with(LOOKUP_REFRESH),
            rotate: with(ROTATE),
            revoke: by_id(REVOKE),
            update: by_id(UPDATE),
            last_used: by_id(LAST_USED),
            import_legacy: with(IMPORT_LEGACY),
            bump_counter: Script::new(BUMP_COUNTER),
            sweep_token: with(SWEEP_TOKEN),
            create_session: with(CREATE_SESSION),
            touch_session: with(TOUCH_SESSION),
            delete_session: Script::new(DELETE_SESSION),
            sweep_session: Script::new(SWEEP_SESSION),
            create_user: Script::new(CREATE_USER),
            delete_user: Script::new(DELETE_USER),
            beat: with(BEAT),
            stage_legacy: Script::new(STAGE_LEGACY),
            claim_legacy_id: Script::new(CLAIM_LEGACY_ID),
            unclaim_legacy_id: Script::new(UNCLAIM_LEGACY_ID),
            publish_legacy: with(PUBLISH_LEGACY),
            commit_import: Script::new(COMMIT_IMPORT),
            finish_import: Script::new(FINISH_IMPORT),
            set_password: Script::new(SET_PASSWORD),
            note_address: Script::new(NOTE_ADDRESS),
            count_use: Script::new(COUNT_USE),
            record_event: Script::new(RECORD_EVENT),
            sweep_events: Script::new(SWEEP_EVENTS),
            enqueue: Script::new(ENQUEUE),
            claim: Script::new(CLAIM),
            settle: Script::new(SETTLE),
            drop_deliveries: Script::new(DROP_DELIVERIES),
            beat_cluster: format!("{head}{BEAT_CLUSTER}"),
        }
    }
}

/// Appends an event to the audit trail, every key in the `{events}` slot.
/// KEYS: the id counter, the bodies (hash), the trail (sorted set by id),
/// the times (sorted set by `at`), then the indexes of the users and the
/// token it concerns (sorted sets by id). ARGV: the encoded event, its
/// `at`. Returns the new id.
const RECORD_EVENT: &str = r#"
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], id, ARGV[1])
redis.call('ZADD', KEYS[3], id, id)
redis.call('ZADD', KEYS[4], ARGV[2], id)
for i = 5, #KEYS do redis.call('ZADD', KEYS[i], id, id) end
return id
"#;

/// Removes events from the trail. KEYS: the bodies, the trail, the times,
/// then every index an event of ARGV may be in. ARGV: the ids. Returns how
/// many bodies left.
const SWEEP_EVENTS: &str = r#"
local gone = redis.call('HDEL', KEYS[1], unpack(ARGV))
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], unpack(ARGV)) end
return gone
"#;

/// Adds webhook deliveries, every key in the `{outbox}` slot. KEYS: the id
/// counter, the bodies, the attempts, the (receiver, key) index, the
/// receivers, then for each delivery its receiver's due and pending sets.
/// ARGV: for each delivery its receiver, key, encoded body and event time.
/// A pair the index holds is skipped. Returns how many were added.
const ENQUEUE: &str = r#"
local added = 0
for i = 0, #ARGV / 4 - 1 do
  local r, k, body, at = ARGV[4*i+1], ARGV[4*i+2], ARGV[4*i+3], ARGV[4*i+4]
  local pair = r .. ' ' .. k
  if redis.call('HEXISTS', KEYS[4], pair) == 0 then
    local id = redis.call('INCR', KEYS[1])
    redis.call('HSET', KEYS[4], pair, id)
    redis.call('HSET', KEYS[2], id, body)
    redis.call('HSET', KEYS[3], id, 0)
    redis.call('SADD', KEYS[5], r)
    redis.call('ZADD', KEYS[6 + 2*i], at, id)
    redis.call('ZADD', KEYS[7 + 2*i], at, id)
    added = added + 1
  end
end
return added
"#;

/// Claims a receiver's due deliveries. KEYS: its due set, the claims, the
/// bodies, the attempts. ARGV: now, the lease's end, the nonce, the limit.
/// Each claimed one is due again at the lease's end. Returns
/// `id, body, attempts` for each, oldest due first.
const CLAIM: &str = r#"
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[4])
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
  redis.call('HSET', KEYS[2], id, ARGV[3])
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[4], id) or '0'
end
return out
"#;

/// Settles a claimed delivery. KEYS: the claims, the attempts, its
/// receiver's due and pending sets, the settled set. ARGV: the id, the
/// nonce, `done` or `retry`, the time (a retry's due time; keep until for
/// a settled one). Returns 1, or 0 when the claim is not held.
const SETTLE: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
end
return 1
"#;

/// Deletes deliveries: the settled ones the sweep found past their keep
/// time, or a receiver's unsettled ones past the retention. KEYS: the
/// bodies, the attempts, the claims, the (receiver, key) index, then every
/// set the ids are in. ARGV: the ids. Returns how many left.
const DROP_DELIVERIES: &str = r#"
for _, id in ipairs(ARGV) do
  local body = redis.call('HGET', KEYS[1], id)
  if body then
    local r, k = string.match(body, '^([^\n]*)\n([^\n]*)\n')
    if r then redis.call('HDEL', KEYS[4], r .. ' ' .. k) end
  end
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  for i = 5, #KEYS do redis.call('ZREM', KEYS[i], id) end
end
return #ARGV
"#;

/// `text` as a Lua string literal: every byte as a decimal escape, so that
/// no prefix (quotes, backslashes, newlines) can end the literal.
fn lua_string(text: &str) -> String {
    let escaped: String = text.bytes().map(|b| format!("\\{b}")).collect();
    format!("'{escaped}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_channel_name_is_one_lua_literal() {
        assert_eq!(lua_string("a'\\\n"), "'\\97\\39\\92\\10'");
        assert_eq!(lua_string(""), "''");
    }
}
