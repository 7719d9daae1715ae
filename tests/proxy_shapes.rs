//! Forward auth as Traefik and Envoy send it: each client request is turned
//! into the check request the proxy would send, byte for byte, following
//! the proxy's own code and documentation (below), and sent raw to a real
//! `tessera` started with that proxy's `--forward-auth` convention. Neither
//! proxy is packaged for this machine, so these are request-shape tests;
//! nginx and Caddy run for real in `nginx.rs` and `caddy.rs`.
//!
//! Both proxies let the request reach the API only on a 2xx from Tessera
//! (Envoy: exactly 200), so every trick a client can write must get a
//! refusal: the path tricks of CONTRACT §6, raw bytes, headers of the other
//! conventions, forged addresses, doubled credentials.

mod common;

use std::net::Ipv4Addr;

use common::proxy::{exchange, TRAVERSALS};
use common::{spawn, Server};
use serde_json::json;

/// A client's request as it reaches the proxy.
#[derive(Debug, Clone)]
struct Incoming {
    method: &'static str,
    /// The request target as the client wrote it.
    target: Vec<u8>,
    /// Header lines in order, names as the client wrote them.
    headers: Vec<(String, Vec<u8>)>,
    /// The address the proxy sees the client connect from.
    peer: Ipv4Addr,
}

impl Incoming {
    fn new(method: &'static str, target: impl AsRef<[u8]>) -> Incoming {
        Incoming {
            method,
            target: target.as_ref().to_vec(),
            headers: vec![("Host".into(), b"api.example.com".to_vec())],
            peer: Ipv4Addr::new(127, 0, 0, 2),
        }
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Incoming {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    fn bearer(self, token: &str) -> Incoming {
        self.header("Authorization", format!("Bearer {token}"))
    }

    fn from(mut self, peer: Ipv4Addr) -> Incoming {
        self.peer = peer;
        self
    }
}

/// A check request as the proxy sends it to Tessera.
#[derive(Clone)]
struct Check {
    method: String,
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Check {
    /// As it goes on the wire (bytes that are not text shown lossily).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.method,
            String::from_utf8_lossy(&self.target)
        )?;
        for (k, v) in &self.headers {
            write!(f, " | {k}: {}", String::from_utf8_lossy(v))?;
        }
        Ok(())
    }
}

impl Check {
    /// Replaces every line of `name` (Go's `Header.Set`, Envoy's overwrite).
    fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.as_ref().to_vec()));
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

// ---- Traefik ---------------------------------------------------------------

/// Traefik's `ForwardAuth` middleware (v3, `pkg/middlewares/auth/forward.go`,
/// `ServeHTTP` and `writeHeader`) with docs/PROXIES.md's configuration
/// (`address: http://tessera/auth/check`, `trustForwardHeader: false`, no
/// `authRequestHeaders`):
/// * the auth request is a `GET` to the address, or the client's method
///   with `preserveRequestMethod: true`;
/// * every client header is copied, less the hop-by-hop ones (`Connection`,
///   `Keep-Alive`, `Te`, `Trailers`, `Transfer-Encoding`, `Upgrade`) and
///   those `Connection` names;
/// * `X-Forwarded-For` is *set* to the client's address (the client's own
///   lines are replaced), and so are `X-Forwarded-Method` (the client's
///   method), `X-Forwarded-Proto`, `X-Forwarded-Host` (its Host) and
///   `X-Forwarded-Uri` (Go's `URL.RequestURI()` of the target);
/// * Go's client adds `User-Agent` when none was copied, and
///   `Accept-Encoding: gzip`.
fn traefik(req: &Incoming, preserve_method: bool) -> Check {
    let named_by_connection: Vec<String> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let hop = [
        "connection",
        "keep-alive",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    ];
    let mut check = Check {
        method: if preserve_method { req.method } else { "GET" }.into(),
        target: b"/auth/check".to_vec(),
        headers: req
            .headers
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                !hop.contains(&k.as_str()) && !named_by_connection.contains(&k) && k != "host"
            })
            .cloned()
            .collect(),
    };
    let host = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    check.set("X-Forwarded-For", req.peer.to_string());
    check.set("X-Forwarded-Method", req.method);
    check.set("X-Forwarded-Proto", "http");
    check.set("X-Forwarded-Host", host);
    check.set("X-Forwarded-Uri", go_request_uri(&req.target));
    if check.get("user-agent").is_none() {
        check.set("User-Agent", "Go-http-client/1.1");
    }
    check.set("Accept-Encoding", "gzip");
    check
}

/// Go's `url.ParseRequestURI(target).RequestURI()`: the path as sent when
/// it is a valid encoding of itself (`EscapedPath`), else decoded and
/// escaped again the way Go escapes a path; the query as sent.
fn go_request_uri(target: &[u8]) -> Vec<u8> {
    let split = target.iter().position(|&b| b == b'?');
    let (path, query) = match split {
        Some(i) => (&target[..i], Some(&target[i..])),
        None => (target, None),
    };
    // Go's shouldEscape(c, encodePath) is false for these, and validEncoded
    // also lets '!', '\'', '(', ')', '*', '[', ']' and '%' stand.
    let keeps = |b: u8| b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@!'()*[]".contains(&b);
    let mut out = if path.iter().all(|&b| keeps(b) || b == b'%') {
        path.to_vec()
    } else {
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < path.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match (path[i], path.get(i + 1), path.get(i + 2)) {
                (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                    decoded.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    decoded.push(b);
                    i += 1;
                }
            }
        }
        decoded
            .iter()
            .flat_map(|&b| {
                if keeps(b) && !b"!'()*[]".contains(&b) {
                    vec![b]
                } else {
                    format!("%{b:02X}").into_bytes()
                }
            })
            .collect()
    };
    if let Some(q) = query {
        out.extend_from_slice(q);
    }
    out
}

// ---- Envoy -----------------------------------------------------------------

/// What docs/PROXIES.md's Envoy configuration sets, and the variants the
/// tests also try.
#[derive(Debug, Clone)]
struct EnvoyConfig {
    /// `authorization_request.allowed_headers`, lower case: an entry ending
    /// in `*` is a `prefix` matcher, the others `exact`.
    allowed: Vec<&'static str>,
    /// `authorization_request.headers_to_add`: `x-real-ip:
    /// "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"`; `Some(false)` for an
    /// Envoy that sends the text without evaluating it.
    real_ip: Option<bool>,
    /// The address Envoy's own async client appends to `x-forwarded-for`
    /// (its node's `local_info` address).
    node: Ipv4Addr,
}

impl EnvoyConfig {
    /// docs/PROXIES.md's configuration.
    fn documented() -> EnvoyConfig {
        EnvoyConfig {
            allowed: vec!["authtoken"],
            real_ip: Some(true),
            node: Ipv4Addr::new(127, 0, 0, 9),
        }
    }

    fn allows(&self, name: &str) -> bool {
        // Envoy always adds these four to the user's matchers.
        [":method", ":path", ":authority", "authorization"].contains(&name)
            || self.allowed.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => *a == name,
            })
    }
}

/// Envoy's HTTP `ext_authz` (`ext_authz_http_impl.cc`,
/// `RawHttpClientImpl::check`; `http_service.path_prefix: /auth/check`):
/// * the connection manager, with `use_remote_address: true`, appends the
///   peer to the client's `x-forwarded-for` before any filter runs;
/// * the filter's `CheckRequest` holds one entry per header name, repeated
///   headers joined with `,`;
/// * the check request starts with `content-length: 0`, then takes the
///   entries `allowed_headers` match (`:method`, `:path`, `:authority` and
///   `authorization` always): the client's method, the path prefix followed
///   by the client's whole `:path` (query included), its Host;
/// * `headers_to_add` are set, overwriting a client's of the same name;
/// * the async client marks it `x-envoy-internal: true` and appends its
///   node's address to `x-forwarded-for`; the router adds
///   `x-envoy-expected-rq-timeout-ms`.
///
/// A target with a fragment (`#`) never gets that far: the connection
/// manager answers 400 itself (`http_reject_path_with_fragment`, on by
/// default), or, where an operator turned that off, strips the fragment for
/// the check and the upstream alike. `None` is Envoy's own refusal.
fn envoy(req: &Incoming, config: &EnvoyConfig) -> Option<Check> {
    if req.target.contains(&b'#') {
        return None;
    }
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, value: &[u8]| match entries.iter_mut().find(|(k, _)| *k == name) {
        Some((_, v)) => {
            v.push(b',');
            v.extend_from_slice(value);
        }
        None => entries.push((name, value.to_vec())),
    };
    for (k, v) in &req.headers {
        let k = k.to_ascii_lowercase();
        let k = if k == "host" { ":authority".into() } else { k };
        add(k, v);
    }
    add("x-forwarded-for".into(), req.peer.to_string().as_bytes());
    let mut check = Check {
        method: req.method.into(),
        target: [b"/auth/check".as_slice(), &req.target].concat(),
        headers: vec![("content-length".into(), b"0".to_vec())],
    };
    for (k, v) in entries {
        if !config.allows(&k) {
            continue;
        }
        match k.as_str() {
            ":authority" => check.headers.push(("host".into(), v)),
            ":method" | ":path" | "content-length" => {}
            _ => check.headers.push((k, v)),
        }
    }
    match config.real_ip {
        Some(true) => check.set("x-real-ip", req.peer.to_string()),
        Some(false) => check.set("x-real-ip", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
        None => {}
    }
    check
        .headers
        .push(("x-envoy-internal".into(), b"true".to_vec()));
    let node = config.node.to_string();
    match check
        .headers
        .iter_mut()
        .find(|(k, _)| k == "x-forwarded-for")
    {
        Some((_, v)) => v.extend_from_slice(format!(",{node}").as_bytes()),
        None => check.set("x-forwarded-for", node),
    }
    check
        .headers
        .push(("x-envoy-expected-rq-timeout-ms".into(), b"200".to_vec()));
    Some(check)
}

// ---- the wire ----------------------------------------------------------------

/// Sends `check` to Tessera byte for byte from 127.0.0.1 (the proxy's
/// address) and returns the status, or `None` when the connection closed
/// without an answer (which both proxies treat as a refusal).
async fn send(s: &Server, check: &Check) -> Option<u16> {
    let mut req = Vec::new();
    req.extend_from_slice(check.method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(&check.target);
    req.extend_from_slice(b" HTTP/1.1\r\n");
    if check.get("host").is_none() {
        req.extend_from_slice(format!("Host: {}\r\n", s.addr()).as_bytes());
    }
    for (k, v) in &check.headers {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    let port = s.addr().rsplit(':').next().unwrap().parse().unwrap();
    exchange(port, Ipv4Addr::LOCALHOST, &req)
        .await
        .map(|r| r.status)
}

/// The tokens a suite checks with: one for `GET /Client` and all of
/// `/Job`, one that may be used from 127.0.0.3 only.
struct Tokens {
    custom: String,
    pinned: String,
}

async fn tokens(s: &Server) -> Tokens {
    let admin = s.admin().await;
    let custom = s
        .token(
            &admin,
            json!({"tokenName": "c", "tokenType": 3, "apiEndpoints": ["GET /Client", "/Job"]}),
        )
        .await
        .access;
    let pinned = s
        .token(
            &admin,
            json!({"tokenName": "pinned", "tokenType": 2, "allowedIPs": ["127.0.0.3"]}),
        )
        .await
        .access;
    Tokens { custom, pinned }
}

/// What every convention must answer alike, with `shape` turning a client
/// request into that proxy's check request.
async fn common_corpus(
    s: &Server,
    t: &Tokens,
    shape: &dyn Fn(&Incoming) -> Option<Check>,
    name: &str,
) {
    // The proxy's own refusal (`None` from the shape) is its 400.
    let status = |req: Incoming| {
        let check = shape(&req);
        async move {
            match check {
                Some(check) => (send(s, &check).await, Some(check)),
                None => (Some(400), None),
            }
        }
    };
    // In scope, also under a web-service root and with the Commvault header.
    for target in ["/Client/5", "/commandcenter/api/Client/5?x=1", "/Job/1"] {
        let (got, check) = status(Incoming::new("GET", target).bearer(&t.custom)).await;
        assert_eq!(got, Some(200), "{name}: GET {target} as {check:?}");
    }
    let (got, _) =
        status(Incoming::new("POST", "/Job/7").header("Authtoken", format!("Bearer {}", t.custom)))
            .await;
    assert_eq!(got, Some(200), "{name}: Authtoken: Bearer");
    // Out of scope: the method counts, the path counts.
    for (method, target) in [
        ("DELETE", "/Client/5"),
        ("POST", "/Client/5"),
        ("GET", "/Admin/1"),
        ("HEAD", "/Admin/1"),
    ] {
        let (got, _) = status(Incoming::new(method, target).bearer(&t.custom)).await;
        assert_eq!(got, Some(403), "{name}: {method} {target}");
    }
    // The path tricks, as written on the wire.
    for target in TRAVERSALS {
        let (got, check) = status(Incoming::new("GET", target).bearer(&t.custom)).await;
        assert!(
            matches!(got, Some(400 | 403 | 404) | None),
            "{name}: {target} answered {got:?}, sent as {:?}",
            check.map(|c| String::from_utf8_lossy(&c.target).into_owned())
        );
    }
    // Raw bytes in the target.
    for target in [
        &b"/Admin/5?q=\xc3\xa9"[..],
        b"/V4/AccessToken?\xff",
        b"/Job/\xc3\xa9/../../Admin",
    ] {
        let (got, _) = status(Incoming::new("GET", target).bearer(&t.custom)).await;
        assert_ne!(
            got,
            Some(200),
            "{name}: {}",
            String::from_utf8_lossy(target)
        );
    }
    // A client's own headers of every convention, naming an allowed
    // request while it asks for another: never believed.
    for forged in [
        vec![
            ("X-Original-URI", "/Client/5"),
            ("X-Original-Method", "GET"),
        ],
        vec![
            ("X-Forwarded-Uri", "/Client/5"),
            ("X-Forwarded-Method", "GET"),
        ],
        vec![
            ("X-Original-URI", "/Client/5"),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Uri", "/Client/5"),
            ("X-Forwarded-Method", "GET"),
        ],
    ] {
        let mut req = Incoming::new("DELETE", "/Admin/1").bearer(&t.custom);
        for (k, v) in &forged {
            req = req.header(k, v);
        }
        let (got, check) = status(req).await;
        assert!(
            matches!(got, Some(400 | 403)),
            "{name}: {forged:?} answered {got:?} as {check:?}"
        );
    }
    // Credentials: none, malformed, two different ones.
    let (got, _) = status(Incoming::new("GET", "/Client/5")).await;
    assert_eq!(got, Some(401), "{name}: no token");
    let (got, _) = status(Incoming::new("GET", "/Client/5").bearer("not-a-token")).await;
    assert_eq!(got, Some(401), "{name}: a malformed token");
    let (got, _) = status(
        Incoming::new("GET", "/Client/5")
            .bearer(&t.custom)
            .bearer(&t.pinned),
    )
    .await;
    assert_eq!(got, Some(401), "{name}: two tokens");
    // Addresses: the pinned token from its address only, whatever the
    // client claims.
    let (got, _) = status(
        Incoming::new("GET", "/Job/1")
            .bearer(&t.pinned)
            .from(Ipv4Addr::new(127, 0, 0, 3)),
    )
    .await;
    assert_eq!(got, Some(200), "{name}: the pinned token from 127.0.0.3");
    for forged in [
        vec![("X-Forwarded-For", "127.0.0.3")],
        vec![
            ("X-Forwarded-For", "127.0.0.3"),
            ("X-Forwarded-For", "127.0.0.3"),
        ],
        vec![("X-Forwarded-For", "127.0.0.3, garbage")],
        vec![("X-Real-IP", "127.0.0.3")],
        vec![("X-Real-IP", "127.0.0.3"), ("X-Forwarded-For", "127.0.0.3")],
    ] {
        let mut req = Incoming::new("GET", "/Job/1").bearer(&t.pinned);
        for (k, v) in &forged {
            req = req.header(k, v);
        }
        let (got, check) = status(req).await;
        assert!(
            matches!(got, Some(400 | 403)),
            "{name}: {forged:?} from 127.0.0.2 answered {got:?} as {check:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth_as_traefik_sends_it() {
    let store = common::sqlite();
    let s = spawn(
        &store,
        &[
            "--forward-auth",
            "traefik",
            "--trusted-proxies",
            "127.0.0.1",
        ],
    );
    let t = tokens(&s).await;
    for preserve in [false, true] {
        let name = format!("traefik (preserveRequestMethod: {preserve})");
        common_corpus(&s, &t, &|r| Some(traefik(r, preserve)), &name).await;
    }
    // The shape itself: what the check above decided on.
    let check = traefik(
        &Incoming::new("DELETE", b"/Client\\..\\Job?x=\xc3\xa9")
            .header("X-Forwarded-Uri", "/Client/5")
            .header("Connection", "X-Original-URI")
            .header("X-Original-URI", "/Client/5"),
        false,
    );
    assert_eq!(check.method, "GET");
    assert_eq!(check.get("x-forwarded-method"), Some(&b"DELETE"[..]));
    assert_eq!(
        check.get("x-forwarded-uri"),
        Some("/Client%5C..%5CJob?x=\u{e9}".as_bytes())
    );
    assert_eq!(check.get("x-original-uri"), None, "named by Connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_ext_authz_as_envoy_sends_it() {
    let store = common::sqlite();
    // docs/PROXIES.md: the client's address is the x-real-ip Envoy sets.
    let s = spawn(
        &store,
        &[
            "--forward-auth",
            "envoy",
            "--trusted-proxies",
            "127.0.0.1",
            "--client-ip-header",
            "x-real-ip",
        ],
    );
    let t = tokens(&s).await;
    let documented = EnvoyConfig::documented();
    common_corpus(&s, &t, &|r| envoy(r, &documented), "envoy").await;
    // An older or looser configuration that passes every `x-` header on
    // (a common example): the client's own X-Original-* and X-Forwarded-*
    // arrive beside the path and must agree with it.
    let loose = EnvoyConfig {
        allowed: vec!["authtoken", "x-*"],
        ..EnvoyConfig::documented()
    };
    common_corpus(&s, &t, &|r| envoy(r, &loose), "envoy (allowed x-*)").await;
    // An Envoy that sends headers_to_add's operator unevaluated: no address
    // is read, so nothing is allowed.
    let literal = EnvoyConfig {
        real_ip: Some(false),
        ..EnvoyConfig::documented()
    };
    let req = Incoming::new("GET", "/Client/5").bearer(&t.custom);
    assert_eq!(send(&s, &envoy(&req, &literal).unwrap()).await, Some(400));
    // `OPTIONS *` becomes "/auth/check*": not a check of anything.
    let req = Incoming::new("OPTIONS", "*").bearer(&t.custom);
    let got = send(&s, &envoy(&req, &documented).unwrap()).await;
    assert!(matches!(got, Some(400 | 404) | None), "OPTIONS *: {got:?}");
    // The shape itself.
    let check = envoy(
        &Incoming::new("DELETE", "/Client/5?x=1")
            .bearer(&t.custom)
            .header("Authorization", "Bearer other")
            .header("X-Original-URI", "/Job/1")
            .header("X-Forwarded-For", "10.9.9.9"),
        &documented,
    )
    .unwrap();
    assert_eq!(check.method, "DELETE");
    assert_eq!(check.target, b"/auth/check/Client/5?x=1");
    assert_eq!(check.get("x-original-uri"), None, "not allowed_headers");
    assert_eq!(
        check.get("authorization"),
        Some(format!("Bearer {},Bearer other", t.custom).as_bytes()),
        "repeated headers joined"
    );
    assert_eq!(check.get("x-real-ip"), Some(&b"127.0.0.2"[..]));
    drop(s);

    // The x-forwarded-for variant: the chain ends with Envoy's own node
    // address, which must be trusted as well as the connection's.
    let s = spawn(
        &store,
        &[
            "--forward-auth",
            "envoy",
            "--trusted-proxies",
            "127.0.0.1,127.0.0.9",
        ],
    );
    let xff = EnvoyConfig {
        allowed: vec!["authtoken", "x-forwarded-for"],
        real_ip: None,
        ..EnvoyConfig::documented()
    };
    common_corpus(&s, &t, &|r| envoy(r, &xff), "envoy (x-forwarded-for)").await;
    drop(s);
    // Trusting only the connection's address makes every client Envoy's
    // node: the pinned token then answers 403 even from its own address,
    // a refusal rather than a wrong allow.
    let s = spawn(
        &store,
        &["--forward-auth", "envoy", "--trusted-proxies", "127.0.0.1"],
    );
    let req = Incoming::new("GET", "/Job/1")
        .bearer(&t.pinned)
        .from(Ipv4Addr::new(127, 0, 0, 3));
    assert_eq!(send(&s, &envoy(&req, &xff).unwrap()).await, Some(403));
}
