//! Who is calling: the credential in the headers, and the client's address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;
use warp::http::HeaderMap;

/// A credential as presented, before any check.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// A login session (`Authtoken: QSDK <secret>`, or a bare session secret).
    Session(String),
    /// An access token (`Authorization: Bearer …` or `Authtoken: Bearer …`).
    Access(String),
    /// Nothing usable.
    None,
}

impl std::fmt::Debug for Presented {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Presented::Session(_) => "Session(<redacted>)",
            Presented::Access(_) => "Access(<redacted>)",
            Presented::None => "None",
        })
    }
}

/// Splits `<scheme> <value>` when the scheme matches (ASCII case-insensitive).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.trim().split_once(char::is_whitespace)?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The credential of a request. `Authorization: Bearer` wins over `Authtoken`.
pub fn presented(headers: &HeaderMap) -> Presented {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(t) = strip_scheme(v, "Bearer") {
            return Presented::Access(t.to_string());
        }
    }
    if let Some(v) = headers.get("authtoken").and_then(|v| v.to_str().ok()) {
        if let Some(t) = strip_scheme(v, "Bearer") {
            return Presented::Access(t.to_string());
        }
        if let Some(t) = strip_scheme(v, "QSDK") {
            return Presented::Session(t.to_string());
        }
        let bare = v.trim();
        if !bare.is_empty() {
            return if bare.starts_with("tess_at_") {
                Presented::Access(bare.to_string())
            } else {
                Presented::Session(bare.to_string())
            };
        }
    }
    Presented::None
}

/// The client's address: the peer's, or — only when the peer is a trusted
/// proxy — its `X-Real-IP`, else the nearest untrusted address of
/// `X-Forwarded-For` (read right to left). Without a peer (not over TCP) it is 0.0.0.0,
/// which no address list admits.
pub fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // X-Real-IP first: proxies set it (overwriting whatever the client
    // sent), while X-Forwarded-For is often passed on with the client's own
    // entries in it.
    if let Some(ip) = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip.to_canonical();
    }
    if let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        let hops: Vec<IpAddr> = xff
            .split(',')
            .filter_map(|h| h.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        if let Some(ip) = hops.iter().rev().find(|ip| !is_trusted(ip)) {
            return *ip;
        }
        if let Some(first) = hops.first() {
            return *first;
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn credentials_in_every_form() {
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer abc")])),
            Presented::Access("abc".into())
        );
        assert_eq!(
            presented(&headers(&[("authtoken", "Bearer abc")])),
            Presented::Access("abc".into())
        );
        assert_eq!(
            presented(&headers(&[("authtoken", "QSDK s")])),
            Presented::Session("s".into())
        );
        assert_eq!(
            presented(&headers(&[("authtoken", "qsdk  s ")])),
            Presented::Session("s".into())
        );
        assert_eq!(
            presented(&headers(&[("authtoken", "tess_ss_x")])),
            Presented::Session("tess_ss_x".into())
        );
        assert_eq!(
            presented(&headers(&[("authtoken", "tess_at_1_x")])),
            Presented::Access("tess_at_1_x".into())
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Basic x")])),
            Presented::None
        );
        assert_eq!(presented(&HeaderMap::new()), Presented::None);
        assert!(!format!("{:?}", Presented::Access("secret".into())).contains("secret"));
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let proxy = Some("127.0.0.1:5000".parse().unwrap());
        let stranger = Some("192.0.2.9:5000".parse().unwrap());
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7, 10.1.1.1"),
            ("x-real-ip", "198.51.100.1"),
        ]);
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "X-Real-IP first"
        );
        let xff = headers(&[("x-forwarded-for", "203.0.113.7, 10.1.1.1")]);
        assert_eq!(
            client_ip(proxy, &xff, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(stranger, &h, &trusted),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("x-real-ip", "198.51.100.1")]);
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(proxy, &HeaderMap::new(), &trusted),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        let mapped = Some("[::ffff:192.0.2.9]:1".parse().unwrap());
        assert_eq!(
            client_ip(mapped, &HeaderMap::new(), &[]),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(None, &HeaderMap::new(), &[]),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }
}
