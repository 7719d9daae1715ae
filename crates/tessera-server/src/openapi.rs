//! `/openapi.json`: the OpenAPI 3.1 description of every call of SPEC §5,
//! with the request and response schemas of each status it can answer.
//!
//! Routing is a hand-written dispatcher (`api::dispatch`), so the paths are
//! built here with utoipa's builders, one [`Call`] per route and method; the
//! body schemas are derived from the serde types of [`crate::wire`] (so a
//! renamed field renames its schema property), plus the few answers the
//! handlers build inline (health, the RFC 7009 `{}`). The end-to-end test
//! `tests/openapi.rs` checks every answer of a real server against this
//! document.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, ComponentsBuilder, KnownFormat,
    ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder, SecurityRequirement, ServerBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use crate::wire::*;

/// The security scheme of a login session: `Authtoken: QSDK <session>`.
pub const AUTHTOKEN: &str = "Authtoken";
/// The security scheme of an access token: `Authorization: Bearer <token>`.
pub const BEARER: &str = "bearer";

const DESCRIPTION: &str = "Tessera issues, renews, checks and revokes scoped access tokens \
for a REST API, speaking Commvault's V4 JSON.\n\n\
Paths match case-insensitively (`/v4/accesstoken` is `/V4/AccessToken`), repeated slashes \
count as one and a trailing slash is insignificant. Every path is also served under each \
web-service root, by default `/commandcenter/api` and `/webconsole/api` (e.g. \
`/commandcenter/api/V4/AccessToken`), since Commvault clients are configured with such a base URL.\n\n\
Request bodies are JSON (`application/json` or any `+json` type; an empty body counts as `{}`); \
unknown request fields are ignored; numbers may also be sent as numeric strings and lists as \
one comma-separated string. Errors answer the envelope `ErrorReply` with a fitting status, except \
a failed or locked login (`LoginFailure`) and the forward-auth check (empty bodies). Any other \
path answers 404, and another method on a known path 405, both with `ErrorReply`. A secret is \
shown once, at creation or renewal, and never again.";

/// The OpenAPI document, as served at `/openapi.json`.
pub fn document() -> serde_json::Value {
    serde_json::to_value(spec()).unwrap_or_else(|e| {
        // Serialising utoipa's model cannot fail; answer a minimal valid
        // document rather than panic if it ever did.
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "Tessera", "version": env!("CARGO_PKG_VERSION")},
            "paths": {}
        })
    })
}

/// The OpenAPI document as utoipa's model.
pub fn spec() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for call in calls() {
        paths = paths.path(
            call.path,
            PathItem::new(call.method.clone(), call.operation()),
        );
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tessera")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .build(),
        )
        .servers(Some([
            ServerBuilder::new()
                .url("/")
                .description(Some("the root"))
                .build(),
            ServerBuilder::new()
                .url("/commandcenter/api")
                .description(Some("Command Center's web-service root (default)"))
                .build(),
            ServerBuilder::new()
                .url("/webconsole/api")
                .description(Some("Web Console's web-service root (default)"))
                .build(),
        ]))
        .tags(Some([
            tag("session", "Log in and out; who is calling."),
            tag(
                "tokens",
                "Access tokens: create, list, edit, revoke, renew; the validity policy.",
            ),
            tag("users", "User administration (admins only)."),
            tag(
                "check",
                "Checking a request: forward auth, RFC 7662 and RFC 7009.",
            ),
            tag("operations", "Health, metrics, this document."),
        ]))
        .paths(paths.build())
        .components(Some(components()))
        .build()
}

fn tag(name: &str, description: &str) -> utoipa::openapi::Tag {
    TagBuilder::new()
        .name(name)
        .description(Some(description))
        .build()
}

// ---- components -----------------------------------------------------------------

fn components() -> utoipa::openapi::Components {
    let mut c = ComponentsBuilder::new()
        .schema_from::<LoginRequest>()
        .schema_from::<LoginReply>()
        .schema_from::<LoginFailure>()
        .schema_from::<ErrListEntry>()
        .schema_from::<ErrorInfo>()
        .schema_from::<ErrorReply>()
        .schema_from::<WhoAmIReply>()
        .schema_from::<UserRef>()
        .schema_from::<TokenBody>()
        .schema_from::<TokenInfo>()
        .schema_from::<TokenReply>()
        .schema_from::<TokenList>()
        .schema_from::<TokenPolicy>()
        .schema_from::<ValidityWindow>()
        .schema_from::<FixedExpiry>()
        .schema_from::<RenewBody>()
        .schema_from::<RenewReply>()
        .schema_from::<UserBody>()
        .schema_from::<UserCreated>()
        .schema_from::<UserInfo>()
        .schema_from::<UserList>()
        .schema_from::<Introspection>()
        .schema_from::<TokenParam>()
        .schema(
            "Health",
            ObjectBuilder::new()
                .description(Some("`GET /health/live` and `GET /health/ready`."))
                .property(
                    "status",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["ok", "ready", "unavailable"]))
                        .description(Some(
                            "`ok` (live), `ready`, or `unavailable` (the store cannot be reached)",
                        )),
                )
                .required("status"),
        )
        .schema(
            "Empty",
            ObjectBuilder::new()
                .description(Some("`{}`: the RFC 7009 revocation answer."))
                .additional_properties(Some(AdditionalProperties::FreeForm(false))),
        )
        .security_scheme(
            AUTHTOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authtoken",
                "A login session, as `POST /Login` returns it: `QSDK <session>`. \
                 (`Authtoken: Bearer <access token>` is read as the bearer scheme.)",
            ))),
        )
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tess_at_…")
                    .description(Some(
                        "An access token: `Authorization: Bearer <access token>`. As a caller \
                         of the API its scope must cover the very call.",
                    ))
                    .build(),
            ),
        );
    // The request fields that also take a numeric string, and the lists that
    // also take one comma- or line-separated string (see `wire`).
    let mut token_body = TokenBody::schema();
    if let RefOr::T(Schema::Object(obj)) = &mut token_body {
        for (name, prop) in obj.properties.iter_mut() {
            let description = match prop {
                RefOr::T(Schema::Object(o)) => {
                    // `#[serde(default)]` makes utoipa write `"default": null`,
                    // which says nothing and which utoipa's own model cannot
                    // read back (it takes null for "absent").
                    if o.default == Some(serde_json::Value::Null) {
                        o.default = None;
                    }
                    o.description.clone()
                }
                RefOr::T(Schema::Array(a)) => a.description.clone(),
                _ => None,
            };
            let lenient: Option<RefOr<Schema>> = match name.as_str() {
                "tokenType" => Some(lenient_number(
                    int64().minimum(Some(0)).maximum(Some(5)),
                    &format!(r"^{WS}*(\+?0*[0-5]|-0+)?{WS}*$"),
                    description,
                )),
                "renewableUntilTimestamp" | "tokenExpiryTimestamp" | "userId" => {
                    Some(lenient_number(int64(), &any_i64_text(), description))
                }
                "tokenName" => Some(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .pattern(Some(name_pattern()))
                        .description(description)
                        .into(),
                ),
                "apiEndpoints" | "allowedIPs" => Some(
                    OneOfBuilder::new()
                        .item(
                            ArrayBuilder::new()
                                .items(ObjectBuilder::new().schema_type(Type::String)),
                        )
                        .item(ObjectBuilder::new().schema_type(Type::String))
                        .item(ObjectBuilder::new().schema_type(Type::Null))
                        .description(description)
                        .into(),
                ),
                _ => None,
            };
            if let Some(l) = lenient {
                *prop = l;
            }
        }
    }
    c = c.schema(TokenBody::name(), token_body);
    c = c.schema(
        "NewTokenBody",
        AllOfBuilder::new()
            .item(schema_ref("TokenBody"))
            .item(
                ObjectBuilder::new()
                    .property("tokenName", name())
                    .required("tokenName")
                    // 0 (or none) is the caller; no negative id.
                    .property(
                        "userId",
                        lenient_number(
                            int64().minimum(Some(0)),
                            &format!(r"^{WS}*(\+?0*[0-9]{{1,18}}|-0+)?{WS}*$"),
                            None,
                        ),
                    ),
            )
            .description(Some(
                "`POST /V4/AccessToken`: the fields of `TokenBody`, `tokenName` required, \
                 `userId` not negative.",
            )),
    );
    // What the handlers require of the request bodies (serde sees every
    // field as optional, so that a missing one is a 400 naming it).
    let mut login = LoginRequest::schema();
    require(&mut login, "username", non_blank());
    c = c.schema(LoginRequest::name(), login);
    let mut renew = RenewBody::schema();
    for field in ["accessToken", "refreshToken"] {
        require(
            &mut renew,
            field,
            ObjectBuilder::new().schema_type(Type::String),
        );
    }
    c = c.schema(RenewBody::name(), renew);
    let mut user = UserBody::schema();
    require(&mut user, "userName", name());
    for (field, values) in [("role", ["user", "admin"]), ("kind", ["person", "service"])] {
        restrict(
            &mut user,
            field,
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .enum_values(Some(
                    values
                        .iter()
                        .map(|v| serde_json::json!(v))
                        .chain([serde_json::json!(""), serde_json::Value::Null]),
                )),
        );
    }
    restrict(
        &mut user,
        "password",
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .pattern(Some(format!(
                "^{WS}*(([A-Za-z0-9+/]{{4}})*([A-Za-z0-9+/]{{2}}==|[A-Za-z0-9+/]{{3}}=)?){WS}*$"
            ))),
    );
    if let RefOr::T(Schema::Object(obj)) = &mut user {
        obj.description = Some(
            "`POST /V4/User` body. A person (the default `kind`) needs a `password`, base64 \
             of a non-empty UTF-8 password; a service account has none (absent, null or blank). \
             `userName` must be free (else 409)."
                .into(),
        );
    }
    c = c.schema(UserBody::name(), user);
    let mut param = TokenParam::schema();
    require(
        &mut param,
        "token",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1)),
    );
    c = c.schema(TokenParam::name(), param);
    c.build()
}

/// The characters Rust's `str::trim` removes (Unicode `White_Space`), as a
/// regular-expression class: the same in ECMA-262, Python and Rust syntax.
const WS: &str = r"[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// Some character outside [`WS`]: not blank once trimmed.
fn non_blank_pattern() -> String {
    format!("[^{}]", &WS[1..WS.len() - 1])
}

/// A string that is not blank once trimmed (the handlers trim names).
fn non_blank() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(non_blank_pattern()))
}

/// A token or user name as the policy takes it: once trimmed, not empty and
/// without control characters (`char::is_control`: U+0000–U+001F,
/// U+007F–U+009F). The length limit is configuration, not said here.
fn name_pattern() -> String {
    let ws = &WS[1..WS.len() - 1];
    let visible = format!(r"[^{ws}\x00-\x1F\x7F-\x9F]");
    format!(r"^{WS}*{visible}([^\x00-\x1F\x7F-\x9F]*{visible})?{WS}*$")
}

/// A required name (see [`name_pattern`]).
fn name() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(name_pattern()))
}

fn int64() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

/// Text that `str::trim` then `i64::from_str` read, within 18 digits (every
/// such number fits), or blank (the field absent).
fn any_i64_text() -> String {
    format!(r"^{WS}*([+-]?0*[0-9]{{1,18}})?{WS}*$")
}

/// A number field of a request body (`wire::lenient_i64`): a JSON integer
/// as `integer` says, its digits as text (`text` is the pattern), or null.
fn lenient_number(
    integer: ObjectBuilder,
    text: &str,
    description: Option<String>,
) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(integer)
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(text)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(description)
        .into()
}

/// Replaces the property `name` of the derived object schema `schema` with
/// `value` (keeping its description).
fn restrict(schema: &mut RefOr<Schema>, name: &str, value: ObjectBuilder) {
    if let RefOr::T(Schema::Object(obj)) = schema {
        let description = match obj.properties.get(name) {
            Some(RefOr::T(Schema::Object(o))) => o.description.clone(),
            _ => None,
        };
        obj.properties
            .insert(name.to_string(), value.description(description).into());
    }
}

/// As [`restrict`], and the property becomes required.
fn require(schema: &mut RefOr<Schema>, name: &str, value: ObjectBuilder) {
    restrict(schema, name, value);
    if let RefOr::T(Schema::Object(obj)) = schema {
        if !obj.required.iter().any(|r| r == name) {
            obj.required.push(name.to_string());
        }
    }
}

// ---- the calls ----------------------------------------------------------------------

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Auth {
    /// No credential (or one in the body).
    None,
    /// A login session only (an access token answers 403).
    Session,
    /// A session or an access token whose scope covers the call.
    SessionOrToken,
}

/// One route and method: what it takes and every answer it can give.
struct Call {
    method: HttpMethod,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    auth: Auth,
    params: Vec<utoipa::openapi::path::Parameter>,
    body: Option<utoipa::openapi::request_body::RequestBody>,
    responses: Vec<(u16, utoipa::openapi::Response)>,
}

impl Call {
    fn operation(self) -> utoipa::openapi::path::Operation {
        let mut op = OperationBuilder::new()
            .operation_id(Some(self.id))
            .tag(self.tag)
            .summary(Some(self.summary))
            .description(Some(self.description))
            .parameters(Some(self.params))
            .request_body(self.body);
        op = match self.auth {
            Auth::None => op.securities(Some(Vec::<SecurityRequirement>::new())),
            Auth::Session => op.security(SecurityRequirement::new(AUTHTOKEN, Vec::<String>::new())),
            Auth::SessionOrToken => op
                .security(SecurityRequirement::new(AUTHTOKEN, Vec::<String>::new()))
                .security(SecurityRequirement::new(BEARER, Vec::<String>::new())),
        };
        for (status, mut response) in self.responses {
            // Every answer, whatever its route (the connection layer adds it).
            response.headers.insert(
                "X-Content-Type-Options".into(),
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["nosniff"])),
                    )
                    .description(Some("Always `nosniff`, on every answer."))
                    .build(),
            );
            if status == 405 {
                response.headers.insert(
                    "Allow".into(),
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .pattern(Some("^[A-Z]+(, [A-Z]+)*$")),
                        )
                        .description(Some(
                            "The methods this path answers (those this document lists for it).",
                        ))
                        .build(),
                );
            }
            op = op.response(status.to_string(), response);
        }
        op.build()
    }
}

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// A JSON answer whose body is the component `schema`.
fn json(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(schema_ref(schema)))
                .build(),
        )
        .build()
}

/// An optional JSON request body of the component `schema` (none is `{}`).
fn json_body(description: &str, schema: &str) -> utoipa::openapi::request_body::RequestBody {
    body_of(description, schema, Required::False)
}

/// A JSON request body of the component `schema` that has required fields
/// (none is `{}`, which lacks them: 400).
fn required_json_body(
    description: &str,
    schema: &str,
) -> utoipa::openapi::request_body::RequestBody {
    body_of(description, schema, Required::True)
}

fn body_of(
    description: &str,
    schema: &str,
    required: Required,
) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .description(Some(description))
        .required(Some(required))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(schema_ref(schema)))
                .build(),
        )
        .build()
}

/// The error envelope with the usual meaning of `status`.
fn error(status: u16) -> (u16, utoipa::openapi::Response) {
    let description = match status {
        400 => "Malformed JSON, a body that is not one JSON object (an array, trailing data), a field of the wrong type, or a value the policy refuses; `field` names the request field when known.",
        401 => "No valid credential: none sent, or an unknown, expired or revoked session or token.",
        403 => "Not allowed: the caller lacks the right (SPEC §4), or an access token's scope or address list does not cover this call.",
        404 => "No such token or user.",
        405 => "This path exists, not with this method; `Allow` lists those it answers.",
        409 => "Conflict with the current state.",
        413 => "The body is larger than 64 KiB.",
        415 => "The body is not JSON (`application/json` or `+json`).",
        500 => "Internal error (details are logged, not sent).",
        503 => "The token store is unavailable; try again shortly.",
        _ => "Error.",
    };
    (status, json(description, "ErrorReply"))
}

/// The error envelope with a specific description.
fn error_because(status: u16, description: &str) -> (u16, utoipa::openapi::Response) {
    (status, json(description, "ErrorReply"))
}

/// 503 for a call that hashes or verifies a password: the store is
/// unavailable, or the hashing queue is full (then with `Retry-After`).
fn busy() -> (u16, utoipa::openapi::Response) {
    (
        503,
        ResponseBuilder::new()
            .description(
                "The token store is unavailable, or the password-hashing queue is full \
                 (then with `Retry-After`); try again shortly.",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(schema_ref("ErrorReply")))
                    .build(),
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(integer_id())
                    .description(Some("Seconds to wait (when the hashing queue is full)."))
                    .build(),
            )
            .build(),
    )
}

fn errors(statuses: &[u16]) -> Vec<(u16, utoipa::openapi::Response)> {
    statuses.iter().map(|s| error(*s)).collect()
}

fn integer_id() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
}

fn path_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(integer_id()))
        .build()
}

fn header_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// An original request's URI, as forward auth reads it: one copy of
/// visible ASCII, no whitespace.
fn uri_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    let mut p = header_param(name, description);
    p.schema = Some(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[!-~]+$"))
            .into(),
    );
    p
}

/// An original request's method: an HTTP token of at most 32 characters.
fn method_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    let mut p = header_param(name, description);
    p.schema = Some(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$"))
            .into(),
    );
    p
}

fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

fn empty(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(description).build()
}

/// The RFC 7662/7009 body: a form or JSON.
fn token_param_body(description: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .description(Some(description))
        .required(Some(Required::True))
        .content(
            "application/x-www-form-urlencoded",
            ContentBuilder::new()
                .schema(Some(schema_ref("TokenParam")))
                .build(),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(schema_ref("TokenParam")))
                .build(),
        )
        .build()
}

/// `/WhoAmI` answers GET and POST alike.
fn whoami(method: HttpMethod, id: &'static str) -> Call {
    Call {
        method,
        path: "/WhoAmI",
        id,
        tag: "session",
        summary: "Who is calling",
        description: "The caller's name and id (GET or POST).",
        auth: Auth::SessionOrToken,
        params: vec![],
        body: None,
        responses: [
            vec![(200, json("The caller.", "WhoAmIReply"))],
            errors(&[401, 403, 405, 500, 503]),
        ]
        .concat(),
    }
}

/// Every route and method `api::dispatch` answers.
fn calls() -> Vec<Call> {
    use HttpMethod::*;
    let token_id = || path_param("tokenId", "The token's id.");
    vec![
    Call {
        method: Post,
        path: "/Login",
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
                        ContentBuilder::new().schema(Some(schema_ref("LoginFailure"))).build(),
                    )
                    .header("Retry-After", HeaderBuilder::new().schema(integer_id()).description(Some("Seconds until attempts are accepted again.")).build())
                    .build(),
            )],
            errors(&[500]),
            vec![busy()],
        ]
        .concat(),
    },
    Call {
        method: Post,
        path: "/Logout",
        id: "logout",
        tag: "session",
        summary: "Log out",
        description: "Ends the session sent in `Authtoken`; it stops working at once.",
        auth: Auth::Session,
        params: vec![],
        body: None,
        responses: [
            vec![(200, json("Logged out.", "ErrorInfo"))],
            vec![error_because(401, "No session sent, or not a valid session.")],
            errors(&[405, 500, 503]),
        ]
        .concat(),
    },
    whoami(Get, "whoAmIGet"),
    whoami(Post, "whoAmI"),

    // Tokens.
    Call {
        method: Get,
        path: "/V4/AccessToken",
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
    },
    Call {
        method: Get,
        path: "/V4/AccessToken/Policy",
        id: "tokenPolicy",
        tag: "tokens",
        summary: "Validity policy",
        description: "The validity figures this server applies (SPEC §2; each is server configuration, e.g. `--renewable-default`, `--renewable-max`), in seconds: the default and the latest `renewableUntilTimestamp` of the refreshable scopes and `tokenExpiryTimestamp` of SCIM (1) and 1-Touch (4), each counted from the token's creation; the access token's life and the renewal grace. Read-only; for clients that fill in defaults and show limits.",
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
    },
    Call {
        method: Post,
        path: "/V4/AccessToken",
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
    },
    Call {
        method: Put,
        path: "/V4/AccessToken/{tokenId}",
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
    },
    Call {
        method: Delete,
        path: "/V4/AccessToken/{tokenId}",
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
    },
    Call {
        method: Post,
        path: "/V4/AccessToken/Renew",
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
    },

    // Users.
    Call {
        method: Get,
        path: "/V4/User",
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
    },
    Call {
        method: Post,
        path: "/V4/User",
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
    },
    Call {
        method: Delete,
        path: "/V4/User/{userId}",
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
    },

    // The check.
    Call {
        method: Get,
        path: "/auth/check",
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
            (503, empty("The token store is unavailable. Empty body.")),
        ],
    },
    Call {
        method: Post,
        path: "/oauth/introspect",
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
    },
    Call {
        method: Post,
        path: "/oauth/revoke",
        id: "oauthRevoke",
        tag: "check",
        summary: "RFC 7009 revocation",
        description: "The token (access or refresh) is its own credential; an unknown token is not an error.",
        auth: Auth::None,
        params: vec![],
        body: Some(token_param_body("`token=…` as a form (the default content type) or `{\"token\": …}` as JSON.")),
        responses: [
            vec![(200, json("Revoked, or nothing to revoke.", "Empty"))],
            vec![error_because(400, "No `token`, or a malformed body.")],
            errors(&[405, 413]),
            vec![error_because(415, "Neither a form nor JSON.")],
            errors(&[500, 503]),
        ]
        .concat(),
    },

    // Operations.
    Call {
        method: Get,
        path: "/health/live",
        id: "live",
        tag: "operations",
        summary: "Liveness",
        description: "The process answers (any method).",
        auth: Auth::None,
        params: vec![],
        body: None,
        responses: vec![(200, json("`{\"status\": \"ok\"}`.", "Health"))],
    },
    Call {
        method: Get,
        path: "/health/ready",
        id: "ready",
        tag: "operations",
        summary: "Readiness",
        description: "The store answers (any method).",
        auth: Auth::None,
        params: vec![],
        body: None,
        responses: vec![
            (200, json("`{\"status\": \"ready\"}`.", "Health")),
            (503, json("`{\"status\": \"unavailable\"}`: the store cannot be reached.", "Health")),
        ],
    },
    Call {
        method: Get,
        path: "/metrics",
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
    },
    Call {
        method: Get,
        path: "/openapi.json",
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
    },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ref_resolves_and_every_operation_answers() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = part.split('"').next().unwrap();
            let name = target.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas.contains_key(name), "{target}");
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    !op["responses"].as_object().unwrap().is_empty(),
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn lenient_request_fields_are_described() {
        let doc = document();
        let props = &doc["components"]["schemas"]["TokenBody"]["properties"];
        for f in [
            "tokenType",
            "renewableUntilTimestamp",
            "tokenExpiryTimestamp",
            "userId",
            "apiEndpoints",
            "allowedIPs",
        ] {
            assert!(props[f]["oneOf"].is_array(), "{f}: {}", props[f]);
        }
    }
}
