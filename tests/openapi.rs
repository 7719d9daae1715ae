//! `/openapi.json` against the OpenAPI 3.1 schema and against what a real
//! `tessera` process answers.
//!
//! (a) The served document parses back into utoipa's model (and serialises to
//! the same JSON), validates against the official OpenAPI 3.1 JSON Schema
//! (vendored in `tests/data/`), and passes structural checks the schema
//! cannot make: every `$ref` resolves, every operation answers, path
//! parameters are declared, every call of CONTRACT §5 is there.
//!
//! (b) A full flow against a real server (SQLite, with a legacy token
//! imported by the CLI first): every answer's status must be declared for its
//! path and method, its declared headers present, and its body valid against
//! the declared schema with components resolved and every declared object
//! schema treated as closed (no undeclared property). A field renamed on the
//! wire but not in the document, a status the document does not list, or an
//! undocumented field fails the test.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use common::{spawn, Server};
use serde_json::{json, Value};

/// The OpenAPI Initiative's schema for 3.1 documents (see tests/data/README.md).
const OAS_31_SCHEMA: &str = include_str!("data/openapi-3.1-schema.json");

/// Every call the document must list (method, path).
const CALLS: &[(&str, &str)] = &[
    ("post", "/Login"),
    ("post", "/Logout"),
    ("get", "/WhoAmI"),
    ("post", "/WhoAmI"),
    ("get", "/V4/AccessToken"),
    ("get", "/V4/AccessToken/Policy"),
    ("get", "/V4/AccessToken/Events"),
    ("post", "/V4/AccessToken"),
    ("put", "/V4/AccessToken/{tokenId}"),
    ("delete", "/V4/AccessToken/{tokenId}"),
    ("post", "/V4/AccessToken/Renew"),
    ("get", "/V4/User"),
    ("post", "/V4/User"),
    ("delete", "/V4/User/{userId}"),
    ("post", "/V4/User/Password"),
    ("post", "/V4/User/{userId}/Password"),
    ("get", "/auth/check"),
    ("post", "/oauth/introspect"),
    ("post", "/oauth/revoke"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// Declared headers an answer may leave out (its description says when it
/// is sent); every other declared header must be in the answer.
const SOMETIMES_SENT: &[&str] = &[
    "X-Tessera-Renewable-Until",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

// ---- (a) the document ---------------------------------------------------------

/// Resolves a local `$ref` (`#/a/b`) in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` in `v`, with where it was found.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        out.push((at.to_string(), r.to_string()));
                    }
                }
                refs(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Where `a` and `b` differ, as JSON pointers.
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()).collect::<BTreeSet<_>>() {
                let here = format!("{at}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => differences(p, q, &here, out),
                    (p, q) => out.push(format!("{here}: {p:?} / {q:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{at}/{i}"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{at}: {a} / {b}")),
    }
}

/// The structural checks the OpenAPI schema cannot make; the problems found.
fn structural_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut found = Vec::new();
    refs(doc, "", &mut found);
    for (at, r) in &found {
        if !r.starts_with("#/components/") {
            problems.push(format!("{at}: $ref {r} is not a local component"));
        } else if resolve(doc, r).is_none() {
            problems.push(format!("{at}: $ref {r} does not resolve"));
        }
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut ids = BTreeSet::new();
    let Some(paths) = doc["paths"].as_object() else {
        return vec!["no paths".into()];
    };
    for (path, item) in paths {
        let templated: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let here = format!("{method} {path}");
            match op["responses"].as_object() {
                Some(r) if !r.is_empty() => {
                    for (status, resp) in r {
                        let ok = status.len() == 3
                            && status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s));
                        if !ok {
                            problems.push(format!("{here}: response key {status:?}"));
                        }
                        if !resp["description"].is_string() {
                            problems.push(format!("{here} {status}: no description"));
                        }
                        for (mime, media) in resp["content"].as_object().into_iter().flatten() {
                            if media.get("schema").is_none() {
                                problems.push(format!("{here} {status} {mime}: no schema"));
                            }
                        }
                    }
                }
                _ => problems.push(format!("{here}: no responses")),
            }
            match op["operationId"].as_str() {
                Some(id) if ids.insert(id.to_string()) => {}
                other => {
                    problems.push(format!("{here}: operationId {other:?} missing or repeated"))
                }
            }
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .inspect(|p| {
                    if p["required"] != true {
                        problems.push(format!("{here}: path parameter {} not required", p["name"]));
                    }
                })
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            if declared != templated {
                problems.push(format!(
                    "{here}: path parameters {declared:?}, template has {templated:?}"
                ));
            }
            for req in op["security"].as_array().into_iter().flatten() {
                for name in req.as_object().into_iter().flatten().map(|(k, _)| k) {
                    if !schemes.contains_key(name) {
                        problems.push(format!("{here}: unknown security scheme {name}"));
                    }
                }
            }
        }
    }
    problems
}

async fn served_document(s: &Server) -> Value {
    let r = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_3_1() {
    let store = common::sqlite();
    let s = spawn(&store, &[]);
    let doc = served_document(&s).await;
    // Served under a web-service root and case-insensitively too.
    let rooted = s
        .http
        .get(s.url("/CommandCenter/API//OpenAPI.json/"))
        .send()
        .await
        .unwrap();
    assert_eq!(rooted.json::<Value>().await.unwrap(), doc);

    // utoipa's own model reads it back, losslessly; it has no model of
    // 3.1's `webhooks`, whose one path item it reads as a path's.
    let mut without_webhooks = doc.clone();
    let webhooks = without_webhooks
        .as_object_mut()
        .unwrap()
        .remove("webhooks")
        .expect("the webhook notice is described");
    let model: utoipa::openapi::OpenApi =
        serde_json::from_value(without_webhooks.clone()).expect("utoipa reads the document");
    let mut lost = Vec::new();
    differences(
        &without_webhooks,
        &serde_json::to_value(&model).unwrap(),
        "",
        &mut lost,
    );
    let notice: utoipa::openapi::path::PathItem =
        serde_json::from_value(webhooks["notice"].clone()).expect("a path item");
    differences(
        &webhooks["notice"],
        &serde_json::to_value(&notice).unwrap(),
        "/webhooks/notice",
        &mut lost,
    );
    assert!(
        lost.is_empty(),
        "utoipa's model does not keep:\n{}",
        lost.join("\n")
    );

    // The official OpenAPI 3.1 schema.
    let meta: Value = serde_json::from_str(OAS_31_SCHEMA).unwrap();
    assert_eq!(
        meta["$id"],
        "https://spec.openapis.org/oas/3.1/schema/2022-10-07"
    );
    let validator = jsonschema::draft202012::new(&meta).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid OpenAPI 3.1:\n{}",
        errors.join("\n")
    );
    // … and the schema does catch a broken document (it is really applied).
    let mut broken = doc.clone();
    broken["paths"]["/Login"]["post"]["responses"]["200"] = json!({"content": 5});
    assert!(!validator.is_valid(&broken));

    // What the schema cannot see.
    let problems = structural_problems(&doc);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let mut dangling = doc.clone();
    dangling["paths"]["/Login"]["post"]["responses"]["200"]["content"]["application/json"]
        ["schema"] = json!({"$ref": "#/components/schemas/Nope"});
    assert!(!structural_problems(&dangling).is_empty());

    // Every call of CONTRACT §5, and nothing else.
    let listed: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    let wanted: BTreeSet<(String, String)> = CALLS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, wanted);

    // The security schemes, and the description of path matching.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["Authtoken"]["type"], "apiKey");
    assert_eq!(schemes["Authtoken"]["in"], "header");
    assert_eq!(schemes["Authtoken"]["name"], "Authtoken");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let description = doc["info"]["description"].as_str().unwrap();
    for needle in [
        "case-insensitively",
        "/commandcenter/api",
        "/webconsole/api",
    ] {
        assert!(description.contains(needle), "{needle}");
    }
    // The forward-auth headers.
    let check = &doc["paths"]["/auth/check"]["get"];
    let params: Vec<&str> = check["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for h in [
        "X-Original-URI",
        "X-Original-Method",
        "X-Forwarded-Uri",
        "X-Forwarded-Method",
        "Authorization",
    ] {
        assert!(params.contains(&h), "{h}");
    }
    for h in [
        "X-Tessera-User",
        "X-Tessera-User-Id",
        "X-Tessera-Token-Id",
        "X-Tessera-Token-Expires",
        "X-Tessera-Renewable-Until",
    ] {
        assert!(check["responses"]["200"]["headers"][h].is_object(), "{h}");
    }
    for status in ["401", "403"] {
        assert!(check["responses"][status]["headers"]["WWW-Authenticate"].is_object());
    }
}

// ---- (b) real answers against the document ------------------------------------

/// A raw answer.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A request body and its content type.
enum Body {
    None,
    Json(Value),
    Raw(&'static str, String),
}

async fn send(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = s.http.request(method, s.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb = match body {
        Body::None => rb,
        Body::Json(v) => rb
            .header("Content-Type", "application/json")
            .body(v.to_string()),
        Body::Raw(ct, text) => rb.header("Content-Type", ct).body(text),
    };
    let r = rb.send().await.expect("request");
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap_or_default(),
    }
}

/// `additionalProperties: false` on every object schema that declares
/// properties and says nothing of others: the answers must not carry an
/// undeclared field.
fn close(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), json!(false));
            }
            for (_, x) in m.iter_mut() {
                close(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(close),
        _ => {}
    }
}

/// The document, and what the flow has checked against it.
struct Contract {
    doc: Value,
    /// `components`, with every object schema closed.
    closed: Value,
    seen: Mutex<BTreeSet<(String, String, u16)>>,
}

impl Contract {
    fn new(doc: Value) -> Self {
        let mut closed = doc["components"].clone();
        close(&mut closed);
        Contract {
            doc,
            closed,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// Errors of `instance` against `schema` (an inline schema or a
    /// `$ref`), components resolved and closed.
    fn errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut root = schema.clone();
        close(&mut root);
        let Some(obj) = root.as_object_mut() else {
            return vec![format!("schema is not an object: {schema}")];
        };
        obj.insert("components".into(), self.closed.clone());
        obj.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {:?}", e, e.instance_path().as_str()))
            .collect()
    }

    /// Checks `r` as the answer of `method template` against the document:
    /// status declared, declared headers present and valid, body of the
    /// declared media type and schema (an empty body where none is declared).
    fn check(&self, method: &str, template: &str, r: &Reply) {
        let m = method.to_ascii_lowercase();
        let here = format!("{method} {template} → {}: {}", r.status, r.body);
        let op = &self.doc["paths"][template][m.as_str()];
        assert!(op.is_object(), "{here}: no such operation in the document");
        let declared = &op["responses"][r.status.to_string()];
        assert!(
            declared.is_object(),
            "{here}: the document does not declare this status"
        );
        self.check_response(declared, r, &here);
        self.seen
            .lock()
            .unwrap()
            .insert((m, template.to_string(), r.status));
    }

    /// For answers outside any operation (an unknown path; a method a path
    /// does not have): the document says they answer `ErrorReply`.
    fn check_outside(&self, what: &str, r: &Reply) {
        let here = format!("{what} → {}: {}", r.status, r.body);
        let ct = content_type(r);
        assert_eq!(ct, "application/json", "{here}");
        let errors = self.errors(
            &json!({"$ref": "#/components/schemas/ErrorReply"}),
            &r.json(),
        );
        assert!(errors.is_empty(), "{here}:\n{}", errors.join("\n"));
        // 405 is declared on each operation of a known path; they must agree.
        self.seen
            .lock()
            .unwrap()
            .insert(("*".into(), what.to_string(), r.status));
    }

    fn check_response(&self, declared: &Value, r: &Reply, here: &str) {
        for (name, h) in declared["headers"].as_object().into_iter().flatten() {
            let Some(v) = r.headers.get(name.as_str()) else {
                if SOMETIMES_SENT.contains(&name.as_str()) {
                    continue;
                }
                panic!("{here}: declared header {name} missing");
            };
            let text = v.to_str().unwrap();
            let value = if h["schema"]["type"] == "integer" {
                text.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(text.into()))
            } else {
                Value::String(text.into())
            };
            let errors = self.errors(&h["schema"], &value);
            assert!(
                errors.is_empty(),
                "{here}: header {name}: {}",
                errors.join("; ")
            );
        }
        match declared["content"].as_object() {
            None => assert!(r.body.is_empty(), "{here}: no body declared"),
            Some(content) => {
                let ct = content_type(r);
                let Some(media) = content.get(&ct) else {
                    panic!(
                        "{here}: content type {ct:?} not declared ({:?})",
                        content.keys()
                    );
                };
                let instance = if ct == "application/json" {
                    serde_json::from_str(&r.body)
                        .unwrap_or_else(|e| panic!("{here}: not JSON: {e}"))
                } else {
                    Value::String(r.body.clone())
                };
                let errors = self.errors(&media["schema"], &instance);
                assert!(
                    errors.is_empty(),
                    "{here}\ndoes not match the document:\n{}",
                    errors.join("\n")
                );
            }
        }
    }

    fn seen(&self) -> BTreeSet<(String, String, u16)> {
        self.seen.lock().unwrap().clone()
    }
}

fn content_type(r: &Reply) -> String {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn b64(s: &str) -> String {
    common::base64(s)
}

const FAR: i64 = 4_102_444_800; // 2100-01-01
const LEGACY: &str = "0123456789ABCDEFOLDTOKEN";

/// A fresh SQLite store holding one legacy token (imported with the CLI
/// while no server runs), and a server over it.
fn server_with_legacy_token() -> (common::StoreFixture, Server) {
    let store = common::sqlite();
    // The admin must exist first: a server's first start creates it.
    drop(spawn(&store, &[]));
    common::import_legacy(
        &store,
        &[
            json!({"userName": "admin", "tokenName": "old one", "tokenType": 4,
                 "tokenExpiryTimestamp": FAR, "accessToken": LEGACY}),
        ],
    );
    let s = spawn(&store, &[]);
    (store, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_a_full_flow_matches_the_document() {
    let (_store, s) = server_with_legacy_token();
    let c = Contract::new(served_document(&s).await);
    let none: &[(&str, &str)] = &[];

    // Operations.
    let r = send(&s, "GET", "/openapi.json", none, Body::None).await;
    c.check("GET", "/openapi.json", &r);
    for p in ["/health/live", "/health/ready"] {
        let r = send(&s, "GET", p, none, Body::None).await;
        assert_eq!(r.status, 200);
        c.check("GET", p, &r);
    }
    let r = send(&s, "GET", "/metrics", none, Body::None).await;
    assert_eq!(r.status, 200);
    c.check("GET", "/metrics", &r);

    // Log in; fail to.
    let login = |user: &str, pw: &str| json!({"username": user, "password": b64(pw)});
    let r = send(
        &s,
        "POST",
        "/Login",
        none,
        Body::Json(login("admin", common::ADMIN_PASSWORD)),
    )
    .await;
    assert_eq!(r.status, 200);
    c.check("POST", "/Login", &r);
    let admin = r.json()["token"].as_str().unwrap().to_string();
    let admin_id = r.json()["userId"].as_u64().unwrap();
    let as_admin = [("Authtoken", admin.as_str())];
    let r = send(
        &s,
        "POST",
        "/Login",
        none,
        Body::Json(login("admin", "wrong")),
    )
    .await;
    assert_eq!(r.status, 401);
    c.check("POST", "/Login", &r);
    let r = send(
        &s,
        "POST",
        "/Login",
        none,
        Body::Json(json!({"password": "eA=="})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "username");
    c.check("POST", "/Login", &r);
    let r = send(
        &s,
        "POST",
        "/Login",
        none,
        Body::Raw("text/plain", "admin".into()),
    )
    .await;
    assert_eq!(r.status, 415);
    c.check("POST", "/Login", &r);
    let big = json!({"username": "x".repeat(70 * 1024)});
    let r = send(&s, "POST", "/Login", none, Body::Json(big)).await;
    assert_eq!(r.status, 413);
    c.check("POST", "/Login", &r);

    // Who am I, both methods; unauthenticated.
    for m in ["GET", "POST"] {
        let r = send(&s, m, "/WhoAmI", &as_admin, Body::None).await;
        assert_eq!(r.status, 200);
        c.check(m, "/WhoAmI", &r);
    }
    let r = send(&s, "GET", "/WhoAmI", none, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("GET", "/WhoAmI", &r);

    // Tokens of several types, Custom with endpoints and allowedIPs.
    let bodies = [
        json!({"tokenName": "general"}),
        json!({"tokenName": "all", "tokenType": 0}),
        json!({"tokenName": "scim", "tokenType": "1"}),
        json!({"tokenName": "custom", "tokenType": 3,
               "apiEndpoints": ["GET /Client", "/Job/7"],
               "allowedIPs": ["127.0.0.1", "10.0.0.0/8", "::1"]}),
        json!({"tokenName": "one-touch", "tokenType": 4}),
        json!({"tokenName": "hyperscale", "tokenType": 5, "allowedIPs": "127.0.0.0/8, ::1",
               "mode": 4, "clientType": "x"}),
        json!({"tokenName": "elsewhere", "tokenType": 3, "apiEndpoints": ["/Client"],
               "allowedIPs": ["192.0.2.0/24"]}),
    ];
    let mut created = Vec::new();
    for body in bodies {
        let r = send(
            &s,
            "POST",
            "/V4/AccessToken",
            &as_admin,
            Body::Json(body.clone()),
        )
        .await;
        assert_eq!(r.status, 200, "{body}: {}", r.body);
        c.check("POST", "/V4/AccessToken", &r);
        created.push(r.json()["tokenInfo"].clone());
    }
    let custom = &created[3];
    assert_eq!(custom["apiEndpoints"].as_array().unwrap().len(), 2);
    assert_eq!(custom["allowedIPs"].as_array().unwrap().len(), 3);
    assert!(
        created[4].get("refreshToken").is_none(),
        "type 4 is not refreshable"
    );
    let access = |i: usize| created[i]["accessToken"].as_str().unwrap().to_string();
    let refresh = |i: usize| created[i]["refreshToken"].as_str().unwrap().to_string();
    let id = |i: usize| created[i]["tokenId"].as_u64().unwrap();

    // Refused creations: a value (400 naming the field), a wrong type, no
    // name, an unknown owner, no session, a token as caller, a non-JSON body.
    for (body, field) in [
        (
            json!({"tokenName": "bad", "tokenType": 9}),
            Some("tokenType"),
        ),
        (
            json!({"tokenName": "bad", "tokenType": {"a": 1}}),
            Some("tokenType"),
        ),
        (json!({"tokenType": 2}), None),
        (
            json!({"tokenName": "x", "allowedIPs": ["not an address"]}),
            Some("allowedIPs"),
        ),
    ] {
        let r = send(
            &s,
            "POST",
            "/V4/AccessToken",
            &as_admin,
            Body::Json(body.clone()),
        )
        .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        if let Some(f) = field {
            assert_eq!(r.json()["field"], f, "{}", r.body);
        }
        c.check("POST", "/V4/AccessToken", &r);
    }
    let r = send(
        &s,
        "POST",
        "/V4/AccessToken",
        &as_admin,
        Body::Json(json!({"tokenName": "x", "userId": 4242})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    c.check("POST", "/V4/AccessToken", &r);
    let r = send(
        &s,
        "POST",
        "/V4/AccessToken",
        none,
        Body::Json(json!({"tokenName": "x"})),
    )
    .await;
    assert_eq!(r.status, 401);
    c.check("POST", "/V4/AccessToken", &r);
    let bearer0 = format!("Bearer {}", access(1));
    let r = send(
        &s,
        "POST",
        "/V4/AccessToken",
        &[("Authorization", &bearer0)],
        Body::Json(json!({"tokenName": "x"})),
    )
    .await;
    assert_eq!(
        r.status, 403,
        "an access token cannot create tokens: {}",
        r.body
    );
    c.check("POST", "/V4/AccessToken", &r);
    let r = send(
        &s,
        "POST",
        "/V4/AccessToken",
        &as_admin,
        Body::Raw("text/plain", "x".into()),
    )
    .await;
    assert_eq!(r.status, 415);
    c.check("POST", "/V4/AccessToken", &r);
    let big = json!({"tokenName": "x".repeat(70 * 1024)});
    let r = send(&s, "POST", "/V4/AccessToken", &as_admin, Body::Json(big)).await;
    assert_eq!(r.status, 413);
    c.check("POST", "/V4/AccessToken", &r);

    // An access token as caller where its scope covers the call: WhoAmI.
    let r = send(
        &s,
        "POST",
        "/WhoAmI",
        &[("Authorization", &bearer0)],
        Body::None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    c.check("POST", "/WhoAmI", &r);
    let custom_bearer = format!("Bearer {}", access(3));
    let r = send(
        &s,
        "POST",
        "/WhoAmI",
        &[("Authorization", &custom_bearer)],
        Body::None,
    )
    .await;
    assert_eq!(
        r.status, 403,
        "GET /Client does not cover /WhoAmI: {}",
        r.body
    );
    c.check("POST", "/WhoAmI", &r);

    // List; by user; refused.
    for path in [
        "/V4/AccessToken".to_string(),
        format!("/V4/AccessToken?userId={admin_id}"),
        "//v4/accesstoken/?UserId=".to_string(),
    ] {
        let r = send(&s, "GET", &path, &as_admin, Body::None).await;
        assert_eq!(r.status, 200, "{path}");
        c.check("GET", "/V4/AccessToken", &r);
    }
    let listed = send(&s, "GET", "/V4/AccessToken", &as_admin, Body::None)
        .await
        .json();
    let tokens = listed["tokens"].as_array().unwrap();
    assert!(tokens.iter().all(|t| t.get("accessToken").is_none()));
    let legacy = tokens
        .iter()
        .find(|t| t["isLegacy"] == true)
        .expect("the legacy token");
    let legacy_id = legacy["tokenId"].as_u64().unwrap();
    for (path, status) in [
        ("/V4/AccessToken?userId=abc", 400),
        ("/V4/AccessToken?userId=4242", 404),
    ] {
        let r = send(&s, "GET", path, &as_admin, Body::None).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        c.check("GET", "/V4/AccessToken", &r);
    }
    let r = send(&s, "GET", "/V4/AccessToken", none, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("GET", "/V4/AccessToken", &r);

    // The validity policy: a session reads it; nothing else does.
    let pt = "/V4/AccessToken/Policy";
    for path in [pt, "/commandcenter/api//v4/accesstoken/POLICY/"] {
        let r = send(&s, "GET", path, &as_admin, Body::None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        c.check("GET", pt, &r);
    }
    let r = send(&s, "GET", pt, none, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("GET", pt, &r);
    let r = send(&s, "GET", pt, &[("Authorization", &bearer0)], Body::None).await;
    assert_eq!(r.status, 403, "an access token: {}", r.body);
    c.check("GET", pt, &r);

    // The audit trail: a page, the next one, refusals.
    let ev = "/V4/AccessToken/Events";
    let r = send(&s, "GET", &format!("{ev}?limit=2"), &as_admin, Body::None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    c.check("GET", ev, &r);
    let cursor = r.json()["nextCursor"].as_str().unwrap().to_string();
    let r = send(
        &s,
        "GET",
        &format!("{ev}?cursor={cursor}"),
        &as_admin,
        Body::None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    c.check("GET", ev, &r);
    for (query, headers, status) in [
        ("limit=0", &as_admin[..], 400),
        ("", none, 401),
        ("", &[("Authorization", bearer0.as_str())][..], 403),
    ] {
        let r = send(&s, "GET", &format!("{ev}?{query}"), headers, Body::None).await;
        assert_eq!(r.status, status, "{query}: {}", r.body);
        c.check("GET", ev, &r);
    }

    // Edit; refused edits: 400, 404, 409 (legacy), 401, 415.
    let edit = |tid: String| format!("/V4/AccessToken/{tid}");
    let t = "/V4/AccessToken/{tokenId}";
    let r = send(
        &s,
        "PUT",
        &edit(id(3).to_string()),
        &as_admin,
        Body::Json(json!({"tokenName": "renamed", "apiEndpoints": "GET /Client, /Job/8"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["tokenInfo"]["tokenName"], "renamed");
    c.check("PUT", t, &r);
    for (tid, body, status) in [
        ("abc".to_string(), json!({"tokenName": "x"}), 400),
        (id(3).to_string(), json!({"tokenExpiryTimestamp": []}), 400),
        ("4242".to_string(), json!({"tokenName": "x"}), 404),
        (legacy_id.to_string(), json!({"tokenName": "new"}), 409),
    ] {
        let r = send(&s, "PUT", &edit(tid.clone()), &as_admin, Body::Json(body)).await;
        assert_eq!(r.status, status, "PUT {tid}: {}", r.body);
        c.check("PUT", t, &r);
    }
    let r = send(
        &s,
        "PUT",
        &edit(id(3).to_string()),
        none,
        Body::Json(json!({})),
    )
    .await;
    assert_eq!(r.status, 401);
    c.check("PUT", t, &r);
    let r = send(
        &s,
        "PUT",
        &edit(id(3).to_string()),
        &as_admin,
        Body::Raw("application/xml", "<x/>".into()),
    )
    .await;
    assert_eq!(r.status, 415);
    c.check("PUT", t, &r);

    // Renew; a replay; missing fields; a non-refreshable token.
    let renew = "/V4/AccessToken/Renew";
    let pair = json!({"accessToken": access(0), "refreshToken": refresh(0)});
    let r = send(&s, "POST", renew, none, Body::Json(pair.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    c.check("POST", renew, &r);
    let r = send(&s, "POST", renew, none, Body::Json(pair)).await;
    assert_eq!(r.status, 401, "replay: {}", r.body);
    c.check("POST", renew, &r);
    let r = send(
        &s,
        "POST",
        renew,
        none,
        Body::Json(json!({"accessToken": access(4)})),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "refreshToken");
    c.check("POST", renew, &r);
    let r = send(
        &s,
        "POST",
        renew,
        none,
        Body::Json(json!({"accessToken": access(4), "refreshToken": "tess_rt_1_x"})),
    )
    .await;
    assert_eq!(r.status, 401);
    c.check("POST", renew, &r);
    let r = send(&s, "POST", renew, none, Body::Raw("text/plain", "x".into())).await;
    assert_eq!(r.status, 415);
    c.check("POST", renew, &r);

    // Forward auth: 200 with who, 401, 403, 400; the legacy token.
    let srv = &s;
    let check = |token: &str, method: &'static str, uri: &'static str| {
        let auth = format!("Bearer {token}");
        async move {
            send(
                srv,
                "GET",
                "/auth/check",
                &[
                    ("Authorization", &auth),
                    ("X-Original-Method", method),
                    ("X-Original-URI", uri),
                ],
                Body::None,
            )
            .await
        }
    };
    for (token, method, uri, status) in [
        (access(3), "GET", "/Client/5", 200),
        (access(3), "POST", "/Client/5", 403),
        (access(6), "GET", "/Client/5", 403),
        (access(2), "GET", "/scim/v2/Users", 200),
        (access(0), "GET", "/Job", 401),
        ("tess_at_1_nonsense".to_string(), "GET", "/Job", 401),
        (LEGACY.to_string(), "GET", "/Client/3", 200),
    ] {
        let r = check(&token, method, uri).await;
        assert_eq!(r.status, status, "{method} {uri}");
        c.check("GET", "/auth/check", &r);
    }
    let bearer = format!("Bearer {}", access(5));
    let r = send(
        &s,
        "PUT",
        "/auth/check",
        &[
            ("Authorization", &bearer),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/V4/Hyperscale/Nodes"),
        ],
        Body::None,
    )
    .await;
    assert_eq!(r.status, 200, "any check method");
    c.check("GET", "/auth/check", &r);
    // The server follows the nginx convention: Traefik's headers alone are
    // not the original request, and are never a fallback.
    let r = send(
        &s,
        "GET",
        "/auth/check",
        &[
            ("Authorization", &bearer),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/V4/Hyperscale/Nodes"),
        ],
        Body::None,
    )
    .await;
    assert_eq!(r.status, 400);
    c.check("GET", "/auth/check", &r);

    // Users: create (person, service), refuse, list, delete.
    let u = "/V4/User";
    let r = send(&s, "POST", u, &as_admin,
        Body::Json(json!({"userName": "alice", "password": b64("pw-alice"), "role": "user", "kind": "person"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    c.check("POST", u, &r);
    let alice_id = r.json()["userId"].as_u64().unwrap();
    let r = send(
        &s,
        "POST",
        u,
        &as_admin,
        Body::Json(json!({"userName": "robot", "kind": "service"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    c.check("POST", u, &r);
    let robot_id = r.json()["userId"].as_u64().unwrap();
    for (body, status) in [
        (json!({"userName": "alice", "password": b64("pw")}), 409),
        (
            json!({"userName": "bob", "password": b64("pw"), "role": "king"}),
            400,
        ),
        (json!({"password": b64("pw")}), 400),
    ] {
        let r = send(&s, "POST", u, &as_admin, Body::Json(body.clone())).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        c.check("POST", u, &r);
    }
    let r = send(&s, "GET", u, &as_admin, Body::None).await;
    assert_eq!(r.status, 200);
    c.check("GET", u, &r);
    let users = r.json()["users"].as_array().unwrap().clone();
    assert!(users
        .iter()
        .any(|x| x["userId"] == robot_id && x["ownerId"].is_u64()));
    let r = send(
        &s,
        "POST",
        "/Login",
        none,
        Body::Json(login("alice", "pw-alice")),
    )
    .await;
    assert_eq!(r.status, 200);
    let alice = r.json()["token"].as_str().unwrap().to_string();
    let as_alice = [("Authtoken", alice.as_str())];
    let r = send(&s, "GET", u, &as_alice, Body::None).await;
    assert_eq!(r.status, 403);
    c.check("GET", u, &r);
    let r = send(
        &s,
        "POST",
        u,
        &as_alice,
        Body::Json(json!({"userName": "mallory"})),
    )
    .await;
    assert_eq!(r.status, 403);
    c.check("POST", u, &r);
    let r = send(&s, "GET", u, none, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("GET", u, &r);
    // Alice may not see the admin's tokens, nor edit or delete them.
    let r = send(
        &s,
        "GET",
        &format!("/V4/AccessToken?userId={admin_id}"),
        &as_alice,
        Body::None,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    c.check("GET", "/V4/AccessToken", &r);
    let r = send(
        &s,
        "PUT",
        &edit(id(3).to_string()),
        &as_alice,
        Body::Json(json!({"tokenName": "x"})),
    )
    .await;
    assert!(matches!(r.status, 403 | 404), "{}", r.body);
    c.check("PUT", t, &r);
    let r = send(
        &s,
        "DELETE",
        &edit(id(3).to_string()),
        &as_alice,
        Body::None,
    )
    .await;
    assert!(matches!(r.status, 403 | 404), "{}", r.body);
    c.check("DELETE", t, &r);

    // Introspection (form and JSON), refused; RFC 7009 revocation.
    let form = |tok: &str| Body::Raw("application/x-www-form-urlencoded", format!("token={tok}"));
    let intro = "/oauth/introspect";
    let r = send(&s, "POST", intro, &as_admin, form(&access(3))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["active"], true);
    c.check("POST", intro, &r);
    let r = send(
        &s,
        "POST",
        intro,
        &as_admin,
        Body::Json(json!({"token": access(5), "token_type_hint": "access_token"})),
    )
    .await;
    assert_eq!(r.status, 200);
    c.check("POST", intro, &r);
    let r = send(&s, "POST", intro, &as_admin, form("tess_at_1_nonsense")).await;
    assert_eq!(r.json(), json!({"active": false}));
    c.check("POST", intro, &r);
    for (headers, body, status) in [
        (&as_alice[..], form(&access(3)), 403),
        (none, form(&access(3)), 401),
        (&as_admin[..], form(""), 400),
        (&as_admin[..], Body::Raw("text/plain", "x".into()), 415),
    ] {
        let r = send(&s, "POST", intro, headers, body).await;
        assert_eq!(r.status, status, "{}", r.body);
        c.check("POST", intro, &r);
    }
    let revoke = "/oauth/revoke";
    for body in [
        form("tess_at_1_nonsense"),
        form(&refresh(5)),
        Body::Json(json!({"token": access(2)})),
    ] {
        let r = send(&s, "POST", revoke, none, body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        c.check("POST", revoke, &r);
    }
    let r = check(&access(2), "GET", "/scim/v2/Users").await;
    assert_eq!(r.status, 401, "revoked by RFC 7009");
    for (body, status) in [
        (form(""), 400),
        (Body::Raw("text/plain", "token=x".into()), 415),
    ] {
        let r = send(&s, "POST", revoke, none, body).await;
        assert_eq!(r.status, status, "{}", r.body);
        c.check("POST", revoke, &r);
    }

    // Delete tokens: 200, then 404; 400; 401.
    for (tid, status) in [
        (id(4).to_string(), 200),
        (id(4).to_string(), 404),
        (legacy_id.to_string(), 200),
        ("x".into(), 400),
    ] {
        let r = send(&s, "DELETE", &edit(tid.clone()), &as_admin, Body::None).await;
        assert_eq!(r.status, status, "DELETE {tid}: {}", r.body);
        c.check("DELETE", t, &r);
    }
    let r = send(&s, "DELETE", &edit(id(3).to_string()), none, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("DELETE", t, &r);

    // Passwords: one's own (200, 403 wrong old password, 400, 401), an
    // admin's reset (200, 400, 403 for oneself, 404).
    let own = "/V4/User/Password";
    let pw = |old: &str, new: &str| {
        Body::Json(json!({"oldPassword": b64(old), "newPassword": b64(new)}))
    };
    for (headers, body, status) in [
        (&as_alice[..], pw("wrong", "x"), 403),
        (
            &as_alice[..],
            Body::Json(json!({"oldPassword": b64("pw-alice")})),
            400,
        ),
        (none, pw("pw-alice", "x"), 401),
        (&as_alice[..], pw("pw-alice", "pw-alice-2"), 200),
    ] {
        let r = send(&s, "POST", own, headers, body).await;
        assert_eq!(r.status, status, "{}", r.body);
        c.check("POST", own, &r);
    }
    let reset = "/V4/User/{userId}/Password";
    let new_pw = || Body::Json(json!({"newPassword": b64("pw-alice-3")}));
    for (uid, body, status) in [
        (alice_id.to_string(), new_pw(), 200),
        (alice_id.to_string(), Body::Json(json!({})), 400),
        (admin_id.to_string(), new_pw(), 403),
        ("987654".to_string(), new_pw(), 404),
    ] {
        let path = format!("/V4/User/{uid}/Password");
        let r = send(&s, "POST", &path, &as_admin, body).await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        c.check("POST", reset, &r);
    }

    // Delete users: 200, 404, 400, 403 (oneself), 401.
    let du = |uid: String| format!("/V4/User/{uid}");
    let ut = "/V4/User/{userId}";
    for (uid, status) in [
        (alice_id.to_string(), 200),
        (alice_id.to_string(), 404),
        ("abc".to_string(), 400),
        (admin_id.to_string(), 403),
    ] {
        let r = send(&s, "DELETE", &du(uid.clone()), &as_admin, Body::None).await;
        assert_eq!(r.status, status, "DELETE user {uid}: {}", r.body);
        c.check("DELETE", ut, &r);
    }
    let r = send(&s, "DELETE", &du(robot_id.to_string()), none, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("DELETE", ut, &r);

    // Outside any operation: an unknown path, a method a path lacks.
    let r = send(&s, "GET", "/V4/Nothing", &as_admin, Body::None).await;
    assert_eq!(r.status, 404);
    c.check_outside("GET /V4/Nothing", &r);
    for (m, p, template) in [
        ("PATCH", "/V4/AccessToken", "/V4/AccessToken"),
        ("GET", "/Login", "/Login"),
        ("POST", "/V4/AccessToken/5", "/V4/AccessToken/{tokenId}"),
        ("PUT", "/V4/User", "/V4/User"),
        ("POST", "/V4/AccessToken/Policy", "/V4/AccessToken/Policy"),
    ] {
        let r = send(&s, m, p, &as_admin, Body::None).await;
        assert_eq!(r.status, 405, "{m} {p}");
        c.check_outside(&format!("{m} {p}"), &r);
        // Every operation of that path declares the 405 it shares.
        for (_, op) in c.doc["paths"][template].as_object().unwrap() {
            assert!(op["responses"]["405"].is_object(), "{template}");
        }
    }

    // Log out; the session stops; no session to end.
    let r = send(
        &s,
        "POST",
        "/Logout",
        &[("Authtoken", "QSDK nonsense")],
        Body::None,
    )
    .await;
    assert_eq!(r.status, 401, "not a session: {}", r.body);
    c.check("POST", "/Logout", &r);
    let r = send(&s, "POST", "/Logout", &as_admin, Body::None).await;
    assert_eq!(r.status, 200);
    c.check("POST", "/Logout", &r);
    let r = send(&s, "GET", "/WhoAmI", &as_admin, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("GET", "/WhoAmI", &r);
    let r = send(&s, "POST", "/Logout", none, Body::None).await;
    assert_eq!(r.status, 401);
    c.check("POST", "/Logout", &r);

    // Last (it locks this address): failed logins until the lock-out.
    let mut locked = None;
    for _ in 0..10 {
        let r = send(
            &s,
            "POST",
            "/Login",
            none,
            Body::Json(login("admin", "wrong")),
        )
        .await;
        c.check("POST", "/Login", &r);
        if r.status == 429 {
            locked = Some(r);
            break;
        }
        assert_eq!(r.status, 401);
    }
    let locked = locked.expect("a lock-out");
    assert_eq!(locked.json()["isAccountLocked"], true);

    // What was covered.
    let seen = c.seen();
    let statuses: BTreeSet<u16> = seen.iter().map(|(_, _, s)| *s).collect();
    for s in [200, 400, 401, 403, 404, 405, 409, 413, 415, 429] {
        assert!(statuses.contains(&s), "status {s} never checked");
    }
    for (m, p) in CALLS {
        assert!(
            seen.iter().any(|(sm, sp, _)| sm == m && sp == p),
            "{m} {p} never exercised"
        );
    }
    eprintln!(
        "checked {} (method, path, status) triples against the document:",
        seen.len()
    );
    for (m, p, st) in &seen {
        eprintln!("  {m:6} {p:28} {st}");
    }
}
