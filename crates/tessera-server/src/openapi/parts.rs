//! Pieces of operations: answers, request bodies and parameters, as the
//! operations of [`super::ops`] put them together.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr, Required, ResponseBuilder};

pub(super) fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// Content of the component `schema`.
pub(super) fn content_of(schema: &str) -> utoipa::openapi::content::Content {
    ContentBuilder::new()
        .schema(Some(schema_ref(schema)))
        .build()
}

/// A JSON answer whose body is the component `schema`.
pub(super) fn json(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content_of(schema))
        .build()
}

/// An optional JSON request body of the component `schema` (none is `{}`).
pub(super) fn json_body(
    description: &str,
    schema: &str,
) -> utoipa::openapi::request_body::RequestBody {
    body_of(description, schema, Required::False)
}

/// A JSON request body of the component `schema` that has required fields
/// (none is `{}`, which lacks them: 400).
pub(super) fn required_json_body(
    description: &str,
    schema: &str,
) -> utoipa::openapi::request_body::RequestBody {
    body_of(description, schema, Required::True)
}

pub(super) fn body_of(
    description: &str,
    schema: &str,
    required: Required,
) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .description(Some(description))
        .required(Some(required))
        .content("application/json", content_of(schema))
        .build()
}

/// The error envelope with the usual meaning of `status`.
pub(super) fn error(status: u16) -> (u16, utoipa::openapi::Response) {
    let description = match status {
        400 => "Malformed JSON, a body that is not one JSON object (an array, trailing data), a field of the wrong type, or a value the policy refuses; `field` names the request field when known.",
        401 => "No valid credential: none sent, or an unknown, expired or revoked session or token.",
        403 => "Not allowed: the caller lacks the right (CONTRACT §4), or an access token's scope or address list does not cover this call.",
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
pub(super) fn error_because(status: u16, description: &str) -> (u16, utoipa::openapi::Response) {
    (status, json(description, "ErrorReply"))
}

/// 503 for a call that hashes or verifies a password: the store is
/// unavailable, or the hashing queue is full (then with `Retry-After`).
pub(super) fn busy() -> (u16, utoipa::openapi::Response) {
    (
        503,
        ResponseBuilder::new()
            .description(
                "The token store is unavailable, or the password-hashing queue is full \
                 (then with `Retry-After`); try again shortly.",
            )
            .content("application/json", content_of("ErrorReply"))
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

pub(super) fn errors(statuses: &[u16]) -> Vec<(u16, utoipa::openapi::Response)> {
    statuses.iter().map(|s| error(*s)).collect()
}

pub(super) fn integer_id() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
}

pub(super) fn path_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(integer_id()))
        .build()
}

pub(super) fn header_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
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
pub(super) fn uri_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
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
pub(super) fn method_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    let mut p = header_param(name, description);
    p.schema = Some(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$"))
            .into(),
    );
    p
}

pub(super) fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

pub(super) fn empty(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(description).build()
}

/// The RFC 7662/7009 body: a form or JSON.
pub(super) fn token_param_body(description: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .description(Some(description))
        .required(Some(Required::True))
        .content(
            "application/x-www-form-urlencoded",
            content_of("TokenParam"),
        )
        .content("application/json", content_of("TokenParam"))
        .build()
}
