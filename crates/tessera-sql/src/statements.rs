//! The SQL both backends run, written once with `?` parameters.
//!
//! SQLite takes `?` as it is; PostgreSQL wants `$1`, `$2`, …, so
//! `Statements::get` numbers them once per process (the first call) and
//! hands out `&'static str`s from then on: no string is built per call, and
//! the check's look-up costs a match on a constant.
//!
//! Every statement here is the same text in both dialects but for its
//! parameters; what differs otherwise is a [`Dialect`](crate::Dialect) item.

use std::sync::OnceLock;

/// The token columns, in `StoredToken` order, for every `SELECT`/`RETURNING`
/// (a macro so that `concat!` builds each statement as a static string, here
/// and in the backends' own statements).
#[macro_export]
macro_rules! token_columns {
    () => {
        "id, user_id, user_name, name, token_type, api_endpoints, allowed_ips, created_at, access_expires_at, \
         renewable_until, ends_at, access_digest, refresh_digest, legacy, revoked_at, \
         COALESCE((SELECT at FROM token_usage WHERE token_id = tokens.id), last_used_at) AS last_used_at, \
         (SELECT address FROM token_usage WHERE token_id = tokens.id) AS last_used_ip, \
         rate_requests, rate_per"
    };
}

/// The check's look-up: the token columns of the row whose access digest is
/// the one parameter. SQLite's check readers run it as it is.
pub const TOKEN_BY_ACCESS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE access_digest = ?"
);

/// A token by id, the token columns: the cache's read on a miss
/// (`TokenStore::token_for_check`) and `TokenStore::token`. SQLite's check
/// readers run it as it is.
pub const TOKEN_BY_ID: &str = concat!("SELECT ", token_columns!(), " FROM tokens WHERE id = ?");

/// The start of every read of the trail: its columns.
macro_rules! event_select {
    () => {
        "SELECT id, at, kind, token_id, user_id, actor_user_id, actor_token_id, address, detail \
         FROM events "
    };
}

/// The outbox columns every claim answers.
macro_rules! outbox_columns {
    () => {
        "id, receiver, dedupe, at, kind, token_id, user_id, actor_user_id, actor_token_id, \
         address, detail, deadline, keep_until, attempts"
    };
}

/// How a dialect writes a statement's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `?` for each, bound in order (SQLite).
    QuestionMarks,
    /// `$1`, `$2`, … in order (PostgreSQL).
    Numbered,
}

/// Declares [`Statements`], one field a statement, and its `?` form.
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        /// Every shared statement, in one dialect's placeholders.
        #[derive(Debug)]
        pub(crate) struct Statements {
            $($(#[$doc])* pub(crate) $name: &'static str,)*
        }

        impl Statements {
            /// As written: `?` parameters.
            const QUESTION_MARKS: Statements = Statements {
                $($name: $sql,)*
            };

            /// With `$n` parameters (built once, kept for the process).
            fn numbered() -> Statements {
                Statements {
                    $($name: Box::leak(number($sql).into_boxed_str()),)*
                }
            }
        }
    };
}

statements! {
    /// A new user (name, role, kind, owner, password hash, creation), returned whole.
    insert_user = "INSERT INTO users (name, role, kind, owner_id, password_hash, created_at) \
                   VALUES (?, ?, ?, ?, ?, ?) RETURNING *";
    /// A user by id.
    user_by_id = "SELECT * FROM users WHERE id = ?";
    /// A user by name.
    user_by_name = "SELECT * FROM users WHERE name = ?";
    /// Every user, in id order.
    list_users = "SELECT * FROM users ORDER BY id";
    /// Whether any user exists (column `any`).
    has_users = "SELECT EXISTS (SELECT 1 FROM users) AS any";
    /// The user (the first statement of `delete_user`'s transaction: its write).
    delete_user = "DELETE FROM users WHERE id = ?";
    /// The user's sessions.
    delete_sessions_of_user = "DELETE FROM sessions WHERE user_id = ?";
    /// A user's new password hash (param 1).
    set_password = "UPDATE users SET password_hash = ? WHERE id = ?";
    /// The user's sessions but one (param 2, the digest kept).
    delete_other_sessions_of_user = "DELETE FROM sessions WHERE user_id = ? AND digest <> ?";
    /// Revokes (at param 1) the live tokens of the user.
    revoke_tokens_of_user =
        "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL";
    /// A new session.
    insert_session =
        "INSERT INTO sessions (digest, user_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)";
    /// A session by digest.
    session = "SELECT * FROM sessions WHERE digest = ?";
    /// A session, by digest.
    delete_session = "DELETE FROM sessions WHERE digest = ?";
    /// A token, every column (the 16 of `StoredToken`, in its order).
    insert_token = "INSERT INTO tokens (id, user_id, user_name, name, token_type, api_endpoints, allowed_ips, created_at, \
                    access_expires_at, renewable_until, ends_at, access_digest, refresh_digest, legacy, revoked_at, last_used_at, \
                    rate_requests, rate_per) \
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// See [`TOKEN_BY_ID`].
    token = TOKEN_BY_ID;
    /// The highest id of a stored token, in column `value` (NULL: none).
    highest_token_id = "SELECT MAX(id) AS value FROM tokens";
    /// See [`TOKEN_BY_ACCESS`].
    token_by_access = TOKEN_BY_ACCESS;
    /// A user's live tokens, in id order.
    tokens_of_user = concat!(
        "SELECT ",
        token_columns!(),
        " FROM tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY id"
    );
    /// A live token's changeable columns.
    update_token = "UPDATE tokens SET name = ?, token_type = ?, api_endpoints = ?, allowed_ips = ?, \
                    access_expires_at = ?, renewable_until = ?, ends_at = ?, rate_requests = ?, rate_per = ? \
                    WHERE id = ? AND revoked_at IS NULL";
    /// A token by its current refresh digest.
    token_by_refresh = concat!("SELECT ", token_columns!(), " FROM tokens WHERE refresh_digest = ?");
    /// A spent refresh digest, of any token.
    spent_refresh = "SELECT token_id, rotated_at FROM spent_refresh WHERE digest = ?";
    /// A spent refresh digest of one token: when it was rotated out.
    spent_refresh_of_token =
        "SELECT rotated_at FROM spent_refresh WHERE digest = ? AND token_id = ?";
    /// Revokes (at param 1) a live token.
    revoke_token = "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";
    /// An event (the columns of `StoredEvent`).
    insert_event = "INSERT INTO events (at, kind, token_id, user_id, actor_user_id, actor_token_id, \
                    address, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    /// The trail, newest first: at or after param 1, below id param 2, at
    /// most param 3. The four `events_*` read the same columns with a
    /// filter each (one statement per shape, so each has its index).
    events_all = concat!(event_select!(), "WHERE at >= ? AND id < ? ORDER BY id DESC LIMIT ?");
    /// The same, concerning user param 1 or done by user param 2.
    events_of_user = concat!(
        event_select!(),
        "WHERE (user_id = ? OR actor_user_id = ?) AND at >= ? AND id < ? ORDER BY id DESC LIMIT ?"
    );
    /// The same, concerning token param 1.
    events_of_token = concat!(
        event_select!(),
        "WHERE token_id = ? AND at >= ? AND id < ? ORDER BY id DESC LIMIT ?"
    );
    /// The same, concerning user params 1/2 and token param 3.
    events_of_user_token = concat!(
        event_select!(),
        "WHERE (user_id = ? OR actor_user_id = ?) AND token_id = ? AND at >= ? AND id < ? \
         ORDER BY id DESC LIMIT ?"
    );
    /// How many addresses token param 1 was used from (column `n`).
    addresses_of_token = "SELECT COUNT(*) AS n FROM token_addresses WHERE token_id = ?";
    /// Token param 1 used from address param 2 at param 3, unless known or
    /// the token (param 4) is gone.
    insert_token_address = "INSERT INTO token_addresses (token_id, address, first_seen) \
                            SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM tokens WHERE id = ?) \
                            ON CONFLICT (token_id, address) DO NOTHING";
    /// A webhook delivery (the columns of `Delivery`), unless its
    /// (receiver, key) is held: due at once (`due_at` = its event's time).
    enqueue = "INSERT INTO webhook_outbox (receiver, dedupe, at, kind, token_id, user_id, \
               actor_user_id, actor_token_id, address, detail, deadline, keep_until, due_at) \
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
               ON CONFLICT (receiver, dedupe) DO NOTHING";
    /// Claims for param 2 (the nonce) until param 1 (the lease's end) at
    /// most param 5 deliveries to receiver param 3 due at param 4 (and 6:
    /// the same). The outer test of `due_at` is what makes two concurrent
    /// claims exclusive on PostgreSQL: the one that waited for the other's
    /// row lock re-tests the row as the other left it, leased, and skips it.
    claim = concat!(
        "UPDATE webhook_outbox SET due_at = ?, claim = ? WHERE id IN (SELECT id FROM webhook_outbox \
         WHERE receiver = ? AND settled = 0 AND due_at <= ? ORDER BY id LIMIT ?) \
         AND settled = 0 AND due_at <= ? RETURNING ",
        outbox_columns!()
    );
    /// Settles delivery param 1 held by claim param 2 as done (sent or given up).
    settle_done = "UPDATE webhook_outbox SET settled = 1, claim = NULL, attempts = attempts + 1 \
                   WHERE id = ? AND claim = ? AND settled = 0";
    /// Makes delivery param 2 held by claim param 3 due again at param 1.
    settle_retry = "UPDATE webhook_outbox SET due_at = ?, claim = NULL, attempts = attempts + 1 \
                    WHERE id = ? AND claim = ? AND settled = 0";
    /// What waits, per receiver (columns `receiver`, `n`, `oldest`).
    backlog = "SELECT receiver, COUNT(*) AS n, MIN(at) AS oldest FROM webhook_outbox \
               WHERE settled = 0 GROUP BY receiver";
    /// Settled deliveries kept until before param 1, and unsettled ones
    /// whose event happened before param 2.
    sweep_outbox = "DELETE FROM webhook_outbox WHERE (settled = 1 AND keep_until < ?) \
                    OR (settled = 0 AND at < ?)";
    /// Events before param 1 (the audit retention).
    sweep_events = "DELETE FROM events WHERE at < ?";
    /// Tokens revoked before param 1, or ended before param 2 (the sweep's
    /// first statement: its write).
    sweep_tokens =
        "DELETE FROM tokens WHERE (revoked_at IS NOT NULL AND revoked_at < ?) OR ends_at < ?";
    /// Param 3 more checks of token param 1 in window param 2 (ending at
    /// param 4): the count after them (column `count`).
    count_use = "INSERT INTO token_rate (token_id, win, count, until) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (token_id, win) DO UPDATE SET count = token_rate.count + excluded.count \
                 RETURNING count";
    /// Rate-limit windows that ended before param 1.
    sweep_rate = "DELETE FROM token_rate WHERE until < ?";
    /// Sessions last seen before param 1.
    sweep_sessions = "DELETE FROM sessions WHERE last_seen_at < ?";
    /// The store's liveness probe: one cheap read of a real table.
    ping = "SELECT id FROM users ORDER BY id LIMIT 1";
}

impl Statements {
    /// The statements in `style`'s placeholders, built on the first call.
    pub(crate) fn get(style: Placeholders) -> &'static Statements {
        static QUESTION_MARKS: Statements = Statements::QUESTION_MARKS;
        static NUMBERED: OnceLock<Statements> = OnceLock::new();
        match style {
            Placeholders::QuestionMarks => &QUESTION_MARKS,
            Placeholders::Numbered => NUMBERED.get_or_init(Statements::numbered),
        }
    }
}

/// `sql` with its `?` parameters numbered `$1`, `$2`, … (a `?` in a quoted
/// literal or identifier is left alone).
pub(crate) fn number(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quote = None;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parameters_in_order_outside_quotes() {
        assert_eq!(
            number("UPDATE t SET a = ?, b = '?' WHERE \"c?\" = ? AND d = ?"),
            "UPDATE t SET a = $1, b = '?' WHERE \"c?\" = $2 AND d = $3"
        );
        assert_eq!(number("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn numbered_statements_are_postgres_forms() {
        let n = Statements::get(Placeholders::Numbered);
        assert_eq!(
            n.revoke_token,
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
        );
        assert!(n.insert_token.ends_with("$17, $18)"));
        assert!(Statements::get(Placeholders::QuestionMarks)
            .insert_token
            .ends_with("?, ?)"));
    }
}
