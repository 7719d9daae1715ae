//! The document's components: the body schemas, derived from the serde
//! types of [`crate::wire`] (so a renamed field renames its schema property)
//! and tightened where the handlers require more than serde does, and the
//! security schemes.

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, ArrayBuilder, ComponentsBuilder, KnownFormat,
    ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::parts::schema_ref;
use super::{AUTHTOKEN, BEARER};
use crate::wire::*;

/// The schemas and security schemes the operations refer to.
pub(super) fn components() -> utoipa::openapi::Components {
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
        .schema_from::<RateLimitInfo>()
        .schema_from::<EventInfo>()
        .schema_from::<EventList>()
        .schema_from::<Notice>()
        .schema_from::<TokenPolicy>()
        .schema_from::<ScopeInfo>()
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
                "rateLimit" => Some(
                    OneOfBuilder::new()
                        .item(
                            ObjectBuilder::new()
                                .schema_type(Type::Object)
                                .property(
                                    "requests",
                                    lenient_number(int64(), &any_i64_text(), None),
                                )
                                .property(
                                    "perSeconds",
                                    lenient_number(int64(), &any_i64_text(), None),
                                ),
                        )
                        .item(ObjectBuilder::new().schema_type(Type::Null))
                        .description(Some(
                            "`{\"requests\": N, \"perSeconds\": S}`: at most N allowed checks in each \
                             window of S seconds (N 1 to 1,000,000; S 1 to 86,400; else 400); `null`: \
                             none (an edit without the field keeps the token's).",
                        ))
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
    // The password calls: base64 of a non-empty password, each field a
    // 400 naming it when missing.
    let b64 = || {
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(format!(
            "^{WS}*(([A-Za-z0-9+/]{{4}})*([A-Za-z0-9+/]{{2}}==|[A-Za-z0-9+/]{{3}}=)|([A-Za-z0-9+/]{{4}})+){WS}*$"
        )))
    };
    let mut change = PasswordBody::schema();
    require(&mut change, "oldPassword", b64());
    require(&mut change, "newPassword", b64());
    c = c.schema("PasswordChange", change);
    let mut reset = PasswordBody::schema();
    require(&mut reset, "newPassword", b64());
    if let RefOr::T(Schema::Object(obj)) = &mut reset {
        obj.properties.remove("oldPassword");
    }
    c = c.schema("PasswordReset", reset);
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
pub(super) const WS: &str =
    r"[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

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
