//! The OpenAPI operation of each route: what it takes and every answer it
//! can give. [`crate::routes::ROUTES`] names these; the path and method
//! come from there.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Required, ResponseBuilder};

use super::parts::*;
use super::schemas::WS;
use super::{Auth, Doc};

/// A token id in the path.
fn token_id() -> utoipa::openapi::path::Parameter {
    path_param("tokenId", "The token's id.")
}

/// `/WhoAmI` answers GET and POST alike.
fn whoami(id: &'static str) -> Doc {
    Doc {
        id,
        tag: "session",
        summary: "Who is calling",
        description: "The caller's name and id, and whether they are an admin (`isAdmin`: the admin-only calls answer them), for a client that offers admin views (GET or POST).",
        auth: Auth::SessionOrToken,
        params: vec![],
        body: None,
        responses: [
            vec![(200, json("The caller.", "WhoAmIReply"))],
            errors(&[401, 403, 405]),
            vec![error_because(429, "An access token whose rate limit is spent for this window (`Retry-After`, `RateLimit-*`).")],
            errors(&[500, 503]),
        ]
        .concat(),
    }
}

/// `GET /WhoAmI`.
pub fn whoami_get() -> Doc {
    whoami("whoAmIGet")
}

/// `POST /WhoAmI`.
pub fn whoami_post() -> Doc {
    whoami("whoAmI")
}

/// `POST /Login`: log in.
pub fn login() -> Doc {
    Doc {
        id: "login",
        tag: "session",
        summary: "Log in",
        description: "A new session for a person whose password matches. The `token` is the value of the `Authtoken` header for later calls. Failed logins are rate-limited per user and per address; a locked account answers 429 with `isAccountLocked` and `remainingLockTime`.",
        auth: Auth::None,
        params: vec![],
        body: Some(required_json_body(
            "`username` and `password` (base64 of the UTF-8 password).",
            "LoginRequest",
        )),
        responses: [
            vec![(200, json("Logged in.", "LoginReply"))],
            vec![error_because(400, "Malformed JSON, not one JSON object, or no `username` (or a blank one).")],
            vec![(
                401,
                json("Invalid user name or password.", "LoginFailure"),
            )],
            errors(&[405, 413, 415]),
            vec![(
                429,
                ResponseBuilder::new()
                    .description("Too many failed logins for this user or address; even the right password is refused until `remainingLockTime` has passed. Also (`isAccountLocked` false) when as many logins for this user or address as the limit allows are being verified at this moment.")
                    .content(
                        "application/json",
                        content_of("LoginFailure"),
                    )
                    .header("Retry-After", HeaderBuilder::new().schema(integer_id()).description(Some("Seconds until attempts are accepted again.")).build())
                    .build(),
            )],
            errors(&[500]),
            vec![busy()],
        ]
        .concat(),
    }
}

/// `POST /Logout`: log out.
pub fn logout() -> Doc {
    Doc {
        id: "logout",
        tag: "session",
        summary: "Log out",
        description: "Ends the session sent in `Authtoken`; it stops working at once.",
        auth: Auth::Session,
        params: vec![],
        body: None,
        responses: [
            vec![(200, json("Logged out.", "ErrorInfo"))],
            vec![error_because(
                401,
                "No session sent, or not a valid session.",
            )],
            errors(&[405, 500, 503]),
        ]
        .concat(),
    }
}

/// `GET /V4/AccessToken`: list tokens.
pub fn list_tokens() -> Doc {
    Doc {
        id: "listTokens",
        tag: "tokens",
        summary: "List tokens",
        description: "The tokens of `userId` (default: the caller), without secrets. Another user's tokens: admins, and owners of service accounts.",
        auth: Auth::Session,
        params: vec![ParameterBuilder::new()
            .name("userId")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("Whose tokens: a user id, possibly with whitespace around it; empty or blank for the caller's (the default). At most once; the parameter's name matches case-insensitively."))
            .schema(Some(
                AnyOfBuilder::new()
                    .item(integer_id())
                    .item(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            // Up to 19 digits: every such number is a u64.
                            .pattern(Some(format!(r"^{WS}*(\+?[0-9]{{1,19}}{WS}*)?$"))),
                    ),
            ))
            .build()],
        body: None,
        responses: [
            vec![(200, json("The tokens.", "TokenList"))],
            vec![error_because(400, "`userId` is not a number or is given more than once, or the query is malformed.")],
            errors(&[401, 403]),
            vec![error_because(404, "No such user.")],
            errors(&[405, 500, 503]),
        ]
        .concat(),
    }
}

/// A whole-number query parameter (0 to `i64::MAX`: up to 18 digits as text).
fn number_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    query_number(
        name,
        description,
        integer_id(),
        &format!(r"^{WS}*(\+?[0-9]{{1,18}}{WS}*)?$"),
    )
}

/// A query parameter that is a number or its text, within `integer`'s
/// bounds or matching `text`.
fn query_number(
    name: &str,
    description: &str,
    integer: ObjectBuilder,
    text: &str,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(
            AnyOfBuilder::new().item(integer).item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(text.to_string())),
            ),
        ))
        .build()
}

/// `GET /V4/AccessToken/Events`: the audit trail.
pub fn list_events() -> Doc {
    Doc {
        id: "listEvents",
        tag: "tokens",
        summary: "Audit trail",
        description: "Security-relevant events, newest first: logins (succeeded, failed, locked), sessions ended, tokens created, edited, renewed, revoked, refresh-token reuse, a token used from a new address, users created and deleted, password changes, legacy imports. A user reads the events that concern them or that they did (and a service account's they own, by `userId`); an admin reads everyone's. Page with `cursor`: each page's `nextCursor`, while there is one.",
        auth: Auth::Session,
        params: vec![
            number_param("userId", "Only the events that concern this user or that they did (default for a non-admin: the caller)."),
            number_param("tokenId", "Only the events that concern this token."),
            number_param("since", "Only the events at or after this time (Unix seconds)."),
            query_number(
                "limit",
                "At most this many (1 to 1000; default 100).",
                integer_id().minimum(Some(1)).maximum(Some(1000)),
                &format!(r"^{WS}*(\+?0*([1-9][0-9]{{0,2}}|1000){WS}*)?$"),
            ),
            number_param("cursor", "Only the events older than this one: the `nextCursor` of the previous page."),
        ],
        body: None,
        responses: [
            vec![(200, json("A page of the trail.", "EventList"))],
            vec![error_because(400, "A parameter is not a number, is out of range or is given more than once, or the query is malformed.")],
            errors(&[401]),
            vec![error_because(403, "Another user's events (not an admin, not the owner of that service account), or an access token instead of a session.")],
            errors(&[405, 500, 503]),
        ]
        .concat(),
    }
}

/// `GET /V4/AccessToken/Policy`: validity policy.
pub fn token_policy() -> Doc {
    Doc {
        id: "tokenPolicy",
        tag: "tokens",
        summary: "Validity policy",
        description: "The validity figures this server applies (CONTRACT §2; each is server configuration, e.g. `--renewable-default`, `--renewable-max`), in seconds: the default and the latest `renewableUntilTimestamp` of the refreshable scopes and `tokenExpiryTimestamp` of SCIM (1) and 1-Touch (4), each counted from the token's creation; the access token's life and the renewal grace; and `scopes`, every `tokenType` a token may be created with: its name, whether it is refreshable (a refresh token and `renewableUntilTimestamp`, else a fixed `tokenExpiryTimestamp`), whether `apiEndpoints` apply (Custom), and for an alias the number it is the same as (`sameAs`: 2 is 0, All). Read-only; for clients that fill in defaults, show limits and offer scopes.",
        auth: Auth::Session,
        params: vec![],
        body: None,
        responses: [
            vec![(200, json("The figures in force.", "TokenPolicy"))],
            errors(&[401]),
            vec![error_because(403, "An access token as caller: a session is needed.")],
            errors(&[405, 500, 503]),
        ]
        .concat(),
    }
}

/// `POST /V4/AccessToken`: create a token.
pub fn create_token() -> Doc {
    Doc {
        id: "createToken",
        tag: "tokens",
        summary: "Create a token",
        description: "A new token for `userId` (default: the caller). The answer holds `accessToken` (and `refreshToken` for refreshable scopes): shown this once only.",
        auth: Auth::Session,
        params: vec![],
        body: Some(required_json_body(
            "`tokenName` (required), `tokenType` 0–5 (default 2), the timestamps, `apiEndpoints` (Custom), `allowedIPs`, `userId`.",
            "NewTokenBody",
        )),
        responses: [
            vec![(200, json("Created; the secrets are in `tokenInfo`.", "TokenReply"))],
            errors(&[400, 401, 403]),
            vec![error_because(404, "No such owner (`userId`).")],
            errors(&[405, 413, 415, 500, 503]),
        ]
        .concat(),
    }
}

/// `PUT /V4/AccessToken/{tokenId}`: edit a token.
pub fn edit_token() -> Doc {
    Doc {
        id: "editToken",
        tag: "tokens",
        summary: "Edit a token",
        description: "Changes any of the create fields (not the owner). The answer holds no secret.",
        auth: Auth::Session,
        params: vec![token_id()],
        body: Some(json_body("Any of the create fields.", "TokenBody")),
        responses: [
            vec![(200, json("Edited.", "TokenReply"))],
            vec![error_because(400, "`tokenId` is not a number, malformed JSON, a body that is not one JSON object, or a refused value.")],
            errors(&[401, 403]),
            vec![error_because(404, "No such token (or not the caller's to see).")],
            errors(&[405]),
            vec![error_because(409, "A legacy token (imported from the older format) cannot be edited.")],
            errors(&[413, 415, 500, 503]),
        ]
        .concat(),
    }
}

/// `DELETE /V4/AccessToken/{tokenId}`: revoke a token.
pub fn revoke_token() -> Doc {
    Doc {
        id: "revokeToken",
        tag: "tokens",
        summary: "Revoke a token",
        description: "The token stops working at once.",
        auth: Auth::Session,
        params: vec![token_id()],
        body: None,
        responses: [
            vec![(200, json("Revoked.", "ErrorInfo"))],
            vec![error_because(400, "`tokenId` is not a number.")],
            errors(&[401, 403]),
            vec![error_because(404, "No such token, or already revoked.")],
            errors(&[405, 500, 503]),
        ]
        .concat(),
    }
}

/// `POST /V4/AccessToken/Renew`: renew a token.
pub fn renew_token() -> Doc {
    Doc {
        id: "renewToken",
        tag: "tokens",
        summary: "Renew a token",
        description: "Rotates both secrets of a refreshable token; the old pair stops at once. Presenting a rotated-out pair again revokes the whole token (reuse detection). The credentials are the body itself.",
        auth: Auth::None,
        params: vec![],
        body: Some(required_json_body("The current `accessToken` and `refreshToken`.", "RenewBody")),
        responses: [
            vec![(200, json("Renewed: the new pair.", "RenewReply"))],
            vec![error_because(400, "Malformed JSON, or `accessToken`/`refreshToken` missing.")],
            vec![error_because(401, "Not a current pair, a token that cannot be renewed, past its renewal limit, or a replay (which revokes the token).")],
            errors(&[405, 413, 415, 500, 503]),
        ]
        .concat(),
    }
}

/// `GET /V4/User`: list users.
pub fn list_users() -> Doc {
    Doc {
        id: "listUsers",
        tag: "users",
        summary: "List users",
        description: "Every user (admins only).",
        auth: Auth::Session,
        params: vec![],
        body: None,
        responses: [
            vec![(200, json("The users.", "UserList"))],
            errors(&[401, 403, 405, 500, 503]),
        ]
        .concat(),
    }
}

/// `POST /V4/User`: create a user.
pub fn create_user() -> Doc {
    Doc {
        id: "createUser",
        tag: "users",
        summary: "Create a user",
        description: "A person (with a password) or a service account (no password, cannot log in; its owner is the caller). Admins only.",
        auth: Auth::Session,
        params: vec![],
        body: Some(required_json_body(
            "`userName`, `password` (base64, people only), `role`, `kind`.",
            "UserBody",
        )),
        responses: [
            vec![(200, json("Created.", "UserCreated"))],
            errors(&[400, 401, 403, 405]),
            vec![error_because(409, "The user name is taken.")],
            errors(&[413, 415, 500]),
            vec![busy()],
        ]
        .concat(),
    }
}

/// `DELETE /V4/User/{userId}`: delete a user.
pub fn delete_user() -> Doc {
    Doc {
        id: "deleteUser",
        tag: "users",
        summary: "Delete a user",
        description: "Deletes a user with their sessions; every token of that user stops working. Admins only, not their own account.",
        auth: Auth::Session,
        params: vec![path_param("userId", "The user's id.")],
        body: None,
        responses: [
            vec![(200, json("Deleted.", "ErrorInfo"))],
            vec![error_because(400, "`userId` is not a number.")],
            errors(&[401, 403]),
            vec![error_because(404, "No such user.")],
            errors(&[405, 500, 503]),
        ]
        .concat(),
    }
}

/// `POST /V4/User/Password`: one's own password.
pub fn change_password() -> Doc {
    Doc {
        id: "changePassword",
        tag: "users",
        summary: "Change your password",
        description: "The caller's new password, given the old one (both base64 of UTF-8, as at login). Every other session of the caller ends; this one stays. A wrong old password counts as a failed login (per user and per address) and may lock.",
        auth: Auth::Session,
        params: vec![],
        body: Some(required_json_body(
            "`oldPassword` and `newPassword`.",
            "PasswordChange",
        )),
        responses: [
            vec![(200, json("Changed.", "ErrorInfo"))],
            vec![error_because(400, "A field is missing, empty or not base64 of UTF-8, or the caller is a service account.")],
            errors(&[401]),
            vec![error_because(403, "The old password does not match, or an access token instead of a session.")],
            errors(&[405, 413, 415]),
            vec![error_because(429, "Too many failed attempts: locked for a while (`remainingLockTime`).")],
            errors(&[500, 503]),
        ]
        .concat(),
    }
}

/// `POST /V4/User/{userId}/Password`: an admin's reset.
pub fn reset_password() -> Doc {
    Doc {
        id: "resetPassword",
        tag: "users",
        summary: "Set a user's password",
        description: "An admin sets another person's password (`newPassword`, base64 of UTF-8); every session of that user ends. Not one's own (use `POST /V4/User/Password`), not a service account's.",
        auth: Auth::Session,
        params: vec![path_param("userId", "The user's id.")],
        body: Some(required_json_body("`newPassword`.", "PasswordReset")),
        responses: [
            vec![(200, json("Set.", "ErrorInfo"))],
            vec![error_because(400, "`userId` is not a number, `newPassword` is missing, empty or not base64 of UTF-8, or the user is a service account.")],
            errors(&[401, 403]),
            vec![error_because(404, "No such user.")],
            errors(&[405, 413, 415, 500, 503]),
        ]
        .concat(),
    }
}

/// `/auth/check` (any method, documented as GET): forward auth.
pub fn forward_auth() -> Doc {
    Doc {
        id: "forwardAuth",
        tag: "check",
        summary: "Forward auth",
        description: "For nginx `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth` and Envoy `ext_authz`; accepts ANY method (documented as GET). The original method and URI come from exactly one place, the one the server's `--forward-auth` convention names: nginx (the default) `X-Original-Method`/`X-Original-URI`; Traefik and Caddy `X-Forwarded-Method`/`X-Forwarded-Uri`; Envoy this request's own method and its path after `/auth/check`. The chosen header missing, empty, repeated or unreadable is a 400, never a fallback; the other pair, when sent, must repeat the chosen values exactly or the check is refused (400). The token in `Authorization: Bearer` (or `Authtoken`, where a bare value may be a legacy token). Never 200 unless the check allowed; 503, never 200, when the store cannot be asked.",
        auth: Auth::None,
        params: vec![
            uri_param("X-Original-URI", "The original request's URI (path and query), for the nginx convention (required there)."),
            method_param("X-Original-Method", "The original request's method, for the nginx convention (required there)."),
            uri_param("X-Forwarded-Uri", "The original URI, for the Traefik and Caddy conventions (required there)."),
            method_param("X-Forwarded-Method", "The original method, for the Traefik and Caddy conventions (required there)."),
            header_param("Authorization", "`Bearer <access token>`."),
            header_param("Authtoken", "`Bearer <access token>`, or a bare legacy access token."),
        ],
        body: None,
        responses: vec![
            (
                200,
                ResponseBuilder::new()
                    .description("Allowed; who is calling. Empty body.")
                    .header("X-Tessera-User", string_header("The token owner's name (percent-encoded where not visible ASCII)."))
                    .header("X-Tessera-User-Id", HeaderBuilder::new().schema(integer_id()).description(Some("The token owner's id.")).build())
                    .header("X-Tessera-Token-Id", HeaderBuilder::new().schema(integer_id()).description(Some("The token's id.")).build())
                    .header("X-Tessera-Token-Expires", HeaderBuilder::new().schema(integer_id()).description(Some("When the access token expires (Unix seconds), for the proxy to pass on.")).build())
                    .header("X-Tessera-Renewable-Until", HeaderBuilder::new().schema(integer_id()).description(Some("Refreshable scopes only: until when the pair may be renewed (Unix seconds).")).build())
                    .header("RateLimit-Limit", HeaderBuilder::new().schema(integer_id()).description(Some("Rate-limited tokens only: allowed checks per window.")).build())
                    .header("RateLimit-Remaining", HeaderBuilder::new().schema(integer_id()).description(Some("Rate-limited tokens only: those left in this window.")).build())
                    .header("RateLimit-Reset", HeaderBuilder::new().schema(integer_id()).description(Some("Rate-limited tokens only: seconds until the window ends.")).build())
                    .build(),
            ),
            error_because(400, "The original request cannot be read: its header missing, empty, repeated or unreadable, contradicted by another, or the client address unreadable."),
            (
                401,
                ResponseBuilder::new()
                    .description("No valid token: missing, malformed, unknown, expired or revoked. Empty body.")
                    .header("WWW-Authenticate", string_header("`Bearer error=\"invalid_token\"`"))
                    .build(),
            ),
            (
                403,
                ResponseBuilder::new()
                    .description("A valid token whose scope or address list does not cover the original request, or a path refused by normalisation. Empty body.")
                    .header("WWW-Authenticate", string_header("`Bearer error=\"insufficient_scope\"`"))
                    .build(),
            ),
            (
                429,
                ResponseBuilder::new()
                    .description("The token's rate limit is spent for this window. Empty body.")
                    .header("Retry-After", HeaderBuilder::new().schema(integer_id()).description(Some("Seconds until the window ends.")).build())
                    .header("RateLimit-Limit", HeaderBuilder::new().schema(integer_id()).description(Some("Allowed checks per window.")).build())
                    .header("RateLimit-Remaining", HeaderBuilder::new().schema(integer_id()).description(Some("0.")).build())
                    .header("RateLimit-Reset", HeaderBuilder::new().schema(integer_id()).description(Some("Seconds until the window ends.")).build())
                    .build(),
            ),
            (503, empty("The token store is unavailable. Empty body.")),
        ],
    }
}

/// `POST /oauth/introspect`: RFC 7662 introspection.
pub fn introspect() -> Doc {
    Doc {
        id: "introspect",
        tag: "check",
        summary: "RFC 7662 introspection",
        description: "For resource servers; the caller authenticates with an admin's session. An unknown, expired or revoked token answers `{\"active\": false}`.",
        auth: Auth::Session,
        params: vec![],
        body: Some(token_param_body("`token=…` as a form (the default content type) or `{\"token\": …}` as JSON.")),
        responses: [
            vec![(200, json("The token's state.", "Introspection"))],
            vec![error_because(400, "No `token`, or a malformed body.")],
            vec![error_because(401, "No valid session.")],
            vec![error_because(403, "Not an admin's session.")],
            errors(&[405, 413]),
            vec![error_because(415, "Neither a form nor JSON.")],
            errors(&[500, 503]),
        ]
        .concat(),
    }
}

/// `POST /oauth/revoke`: RFC 7009 revocation.
pub fn oauth_revoke() -> Doc {
    Doc {
        id: "oauthRevoke",
        tag: "check",
        summary: "RFC 7009 revocation",
        description:
            "The token (access or refresh) is its own credential; an unknown token is not an error.",
        auth: Auth::None,
        params: vec![],
        body: Some(token_param_body(
            "`token=…` as a form (the default content type) or `{\"token\": …}` as JSON.",
        )),
        responses: [
            vec![(200, json("Revoked, or nothing to revoke.", "Empty"))],
            vec![error_because(400, "No `token`, or a malformed body.")],
            errors(&[405, 413]),
            vec![error_because(415, "Neither a form nor JSON.")],
            errors(&[500, 503]),
        ]
        .concat(),
    }
}

/// `/health/live` (any method): liveness.
pub fn live() -> Doc {
    Doc {
        id: "live",
        tag: "operations",
        summary: "Liveness",
        description: "The process answers (any method).",
        auth: Auth::None,
        params: vec![],
        body: None,
        responses: vec![(200, json("`{\"status\": \"ok\"}`.", "Health"))],
    }
}

/// `/health/ready` (any method): readiness.
pub fn ready() -> Doc {
    Doc {
        id: "ready",
        tag: "operations",
        summary: "Readiness",
        description: "The store answers (any method).",
        auth: Auth::None,
        params: vec![],
        body: None,
        responses: vec![
            (200, json("`{\"status\": \"ready\"}`.", "Health")),
            (
                503,
                json(
                    "`{\"status\": \"unavailable\"}`: the store cannot be reached.",
                    "Health",
                ),
            ),
        ],
    }
}

/// `/metrics` (any method): metrics.
pub fn metrics() -> Doc {
    Doc {
        id: "metrics",
        tag: "operations",
        summary: "Metrics",
        description: "Prometheus text exposition (any method).",
        auth: Auth::None,
        params: vec![],
        body: None,
        responses: vec![(
            200,
            ResponseBuilder::new()
                .description("Counters and histograms.")
                .content(
                    "text/plain",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .build(),
                )
                .build(),
        )],
    }
}

/// `/openapi.json` (any method): this document.
pub fn openapi() -> Doc {
    Doc {
        id: "openapi",
        tag: "operations",
        summary: "This document",
        description: "The OpenAPI 3.1 description of the API (any method).",
        auth: Auth::None,
        params: vec![],
        body: None,
        responses: vec![(
            200,
            ResponseBuilder::new()
                .description("The OpenAPI document.")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                        .build(),
                )
                .build(),
        )],
    }
}
