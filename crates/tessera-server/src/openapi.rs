//! `/openapi.json`: the OpenAPI 3 description of every call (being written).

/// The OpenAPI document.
pub fn document() -> serde_json::Value {
    serde_json::json!({"openapi": "3.1.0", "info": {"title": "Tessera", "version": env!("CARGO_PKG_VERSION")}, "paths": {}})
}
