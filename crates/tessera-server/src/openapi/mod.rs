//! `/openapi.json`: the OpenAPI 3.1 description of every call of CONTRACT §5,
//! with the request and response schemas of each status it can answer.
//!
//! The paths and methods are the route table's (`crate::routes::ROUTES`),
//! each route naming its operation (`ops`), built with utoipa's builders
//! (`parts`); the body schemas (`schemas`) are derived from the serde
//! types of [`crate::wire`] (so a renamed field renames its schema
//! property), plus the few answers the handlers build inline (health, the
//! RFC 7009 `{}`). The document is built once ([`served`]). The end-to-end
//! test `tests/openapi.rs` checks every answer of a real server against
//! this document.

pub(crate) mod ops;
mod parts;
mod schemas;

use std::sync::LazyLock;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::OperationBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, SecurityRequirement,
    ServerBuilder,
};
use warp::http::Method;

use crate::routes::ROUTES;

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

/// `/openapi.json` as served: [`document`] built and written out once, on
/// first use (the server asks for it before taking requests).
pub fn served() -> &'static str {
    static SERVED: LazyLock<String> = LazyLock::new(|| document().to_string());
    &SERVED
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(spec()).unwrap_or_else(|e| {
        // Serialising utoipa's model cannot fail; answer a minimal valid
        // document rather than panic if it ever did.
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "Tessera", "version": env!("CARGO_PKG_VERSION")},
            "paths": {}
        })
    });
    // OpenAPI 3.1's webhooks (utoipa has no model of them): what Tessera
    // posts to each `--webhook` receiver (CONTRACT §6.13).
    doc["webhooks"] = serde_json::json!({
        "notice": {"post": {
            "summary": "A webhook notice",
            "description": "token.reuse_detected, token.expiring, token.new_address or login.locked, \
                posted to every --webhook receiver, at least once (drop an id already handled). \
                Signed as Standard Webhooks v1: webhook-signature is v1,<base64 of \
                HMAC-SHA256(secret, \"<webhook-id>.<webhook-timestamp>.<raw body>\")>.",
            "parameters": [
                {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"},
                 "description": "The notice's key (its `id`), the same for every attempt."},
                {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "integer"},
                 "description": "Unix seconds of this attempt."},
                {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"},
                 "description": "v1,<base64 HMAC-SHA256>."}
            ],
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Notice"}}}},
            "responses": {"2XX": {"description": "Taken: the notice is not sent again."},
                          "default": {"description": "Not taken: retried with a doubling wait."}}
        }}
    });
    doc
}

/// The OpenAPI document as utoipa's model: one operation for each route
/// of the table that names one.
pub fn spec() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        if let Some(doc) = route.doc {
            let method = http_method(route.method.as_ref().unwrap_or(&Method::GET));
            paths = paths.path(route.path, PathItem::new(method, doc().operation()));
        }
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
        .components(Some(schemas::components()))
        .build()
}

fn tag(name: &str, description: &str) -> utoipa::openapi::Tag {
    TagBuilder::new()
        .name(name)
        .description(Some(description))
        .build()
}

/// utoipa's name for a route's method (the table has no other).
fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

/// Who may call an operation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth {
    /// No credential (or one in the body).
    None,
    /// A login session only (an access token answers 403).
    Session,
    /// A session or an access token whose scope covers the call.
    SessionOrToken,
}

/// One route's OpenAPI operation, but for its path and method (those are
/// the route table's): what it takes and every answer it can give.
pub(crate) struct Doc {
    /// `operationId`.
    pub id: &'static str,
    /// Its tag (see [`spec`]).
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// What it does, at length.
    pub description: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// Path, query and header parameters.
    pub params: Vec<utoipa::openapi::path::Parameter>,
    /// The request body, if it takes one.
    pub body: Option<utoipa::openapi::request_body::RequestBody>,
    /// Every status it can answer, with its answer.
    pub responses: Vec<(u16, utoipa::openapi::Response)>,
}

impl Doc {
    /// utoipa's operation.
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
