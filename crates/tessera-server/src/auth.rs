//! Who is calling: the credential in the headers, and the client's address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;
use warp::http::HeaderMap;

use crate::error::ApiError;

/// A credential as presented, before any check.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// A login session (`Authtoken: QSDK <secret>`, or a bare session secret).
    Session(String),
    /// An access token (`Authorization: Bearer …` or `Authtoken: Bearer …`).
    Access(String),
    /// Nothing usable.
    None,
    /// Credential headers that cannot be taken at their word: one sent
    /// twice, holding bytes that are not visible ASCII, or `Authorization`
    /// and `Authtoken` naming different credentials. Refused, never resolved
    /// by picking one.
    Ambiguous,
}

impl std::fmt::Debug for Presented {
    /// Never shows the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Presented::Session(_) => "Session(<redacted>)",
            Presented::Access(_) => "Access(<redacted>)",
            Presented::None => "None",
            Presented::Ambiguous => "Ambiguous",
        })
    }
}

/// Splits `<scheme> <value>` when the scheme matches (ASCII case-insensitive).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.trim().split_once(char::is_whitespace)?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// One copy of a credential header: `Ok(None)` when absent, `Err(())` when
/// repeated or unreadable.
fn one_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    value.to_str().map(Some).map_err(|_| ())
}

/// What `Authorization` carries for us: a bearer token, or nothing (absent,
/// or another scheme, which belongs to someone else).
fn from_authorization(value: &str) -> Presented {
    match strip_scheme(value, "Bearer") {
        Some(t) => Presented::Access(t.to_string()),
        None => Presented::None,
    }
}

/// What `Authtoken` carries: `Bearer <access>`, `QSDK <session>`, or a bare
/// value (an access secret by its prefix, else a session or legacy token).
fn from_authtoken(value: &str) -> Presented {
    if let Some(t) = strip_scheme(value, "Bearer") {
        return Presented::Access(t.to_string());
    }
    if let Some(t) = strip_scheme(value, "QSDK") {
        return Presented::Session(t.to_string());
    }
    match value.trim() {
        "" => Presented::None,
        bare if bare.starts_with("tess_at_") => Presented::Access(bare.to_string()),
        bare => Presented::Session(bare.to_string()),
    }
}

/// The credential of a request: `Authorization: Bearer …` or `Authtoken: …`.
/// Both may be sent only if they say the same; a repeated or unreadable one
/// is [`Presented::Ambiguous`].
pub fn presented(headers: &HeaderMap) -> Presented {
    let (Ok(authorization), Ok(authtoken)) = (
        one_header(headers, "authorization"),
        one_header(headers, "authtoken"),
    ) else {
        return Presented::Ambiguous;
    };
    let a = authorization.map_or(Presented::None, from_authorization);
    let b = authtoken.map_or(Presented::None, from_authtoken);
    match (a, b) {
        (Presented::None, b) => b,
        (a, Presented::None) => a,
        (a, b) if a == b => a,
        _ => Presented::Ambiguous,
    }
}

/// Which forwarded header carries the client's address (`--client-ip-header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`, read right to left past trusted proxies: safe with
    /// every proxy that appends the peer it saw (nginx's
    /// `$proxy_add_x_forwarded_for`, HAProxy, Traefik, Caddy, Envoy).
    #[default]
    XForwardedFor,
    /// `X-Real-IP`, for a proxy that overwrites it (nginx's
    /// `proxy_set_header X-Real-IP $remote_addr`). Behind a proxy that does
    /// not, a client writes it: never the default.
    XRealIp,
}

/// Where the client's address comes from: the peer, or forwarded headers
/// from trusted proxies only.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    /// Proxies whose forwarded header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Which header they set.
    pub header: ClientIpHeader,
}

impl Addressing {
    /// The client's address (CONTRACT §6 `allowedIPs`). The peer's, unless the
    /// peer is a trusted proxy; then:
    /// * `X-Forwarded-For`: every line of it joined in order, read right to
    ///   left; hops that are trusted proxies are passed, the first one that
    ///   is not is the client (all trusted: the left-most). A hop that does
    ///   not parse ends the walk with a refusal: skipping it would hand the
    ///   choice to whatever the client wrote beside it.
    /// * `X-Real-IP`: its one value; two copies or an unparsable one refuse.
    /// * the header absent: the peer itself (a request the proxy host made).
    ///
    /// The other header is never read. Without a peer (not over TCP) it is
    /// 0.0.0.0, which no address list admits.
    pub fn client(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Result<IpAddr, ApiError> {
        let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
            return Ok(IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)));
        };
        if !self.trusts(&peer) {
            return Ok(peer);
        }
        match self.header {
            ClientIpHeader::XRealIp => {
                let mut values = headers.get_all("x-real-ip").iter();
                let Some(value) = values.next() else {
                    return Ok(peer);
                };
                if values.next().is_some() {
                    return Err(unreadable("X-Real-IP", "sent more than once"));
                }
                value
                    .to_str()
                    .ok()
                    .and_then(parse_hop)
                    .ok_or_else(|| unreadable("X-Real-IP", "not an address"))
            }
            ClientIpHeader::XForwardedFor => {
                let lines = headers.get_all("x-forwarded-for");
                let mut hops = Vec::new();
                for line in lines.iter() {
                    let text = line
                        .to_str()
                        .map_err(|_| unreadable("X-Forwarded-For", "not visible ASCII"))?;
                    hops.extend(text.split(','));
                }
                if hops.is_empty() {
                    return Ok(peer);
                }
                let mut client = peer;
                for hop in hops.iter().rev() {
                    client = parse_hop(hop).ok_or_else(|| {
                        unreadable(
                            "X-Forwarded-For",
                            &format!("{:?} is not an address", hop.trim()),
                        )
                    })?;
                    if !self.trusts(&client) {
                        break;
                    }
                }
                Ok(client)
            }
        }
    }

    fn trusts(&self, ip: &IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }
}

/// The refusal of a request whose client address cannot be read (400):
/// it is never given another address instead.
fn unreadable(header: &str, what: &str) -> ApiError {
    ApiError::bad(
        Some(header),
        format!("{header}: {what}; the client address cannot be read"),
    )
}

/// One forwarded hop: an address, optionally with a port (`1.2.3.4:80`,
/// `[::1]:80`) or in brackets (`[::1]`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<std::net::Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
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
        // Another scheme in Authorization is someone else's: Authtoken counts.
        assert_eq!(
            presented(&headers(&[
                ("authorization", "Basic x"),
                ("authtoken", "QSDK s")
            ])),
            Presented::Session("s".into())
        );
        // The same credential twice is fine.
        assert_eq!(
            presented(&headers(&[
                ("authorization", "Bearer abc"),
                ("authtoken", "Bearer abc")
            ])),
            Presented::Access("abc".into())
        );
        assert!(!format!("{:?}", Presented::Access("secret".into())).contains("secret"));
    }

    fn multi(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, warp::http::HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn credentials_are_never_picked_among() {
        for pairs in [
            &[
                ("authorization", &b"Bearer a"[..]),
                ("authorization", b"Bearer b"),
            ][..],
            &[("authtoken", b"QSDK a"), ("authtoken", b"QSDK a")],
            &[("authorization", b"Bearer a"), ("authtoken", b"Bearer b")],
            &[("authorization", b"Bearer a"), ("authtoken", b"QSDK s")],
            &[
                ("authorization", b"Bearer \xff"),
                ("authtoken", b"Bearer b"),
            ],
            &[("authtoken", b"QSDK \xc3\xa9")],
        ] {
            assert_eq!(presented(&multi(pairs)), Presented::Ambiguous, "{pairs:?}");
        }
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let xff = Addressing {
            trusted_proxies: vec![
                "127.0.0.1/32".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ],
            header: ClientIpHeader::XForwardedFor,
        };
        let proxy = Some("127.0.0.1:5000".parse().unwrap());
        let stranger = Some("192.0.2.9:5000".parse().unwrap());
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7, 10.1.1.1"),
            ("x-real-ip", "198.51.100.1"),
        ]);
        assert_eq!(
            xff.client(proxy, &h).ok(),
            Some(ip("203.0.113.7")),
            "X-Real-IP is not read"
        );
        assert_eq!(xff.client(stranger, &h).ok(), Some(ip("192.0.2.9")));
        assert_eq!(
            xff.client(proxy, &HeaderMap::new()).ok(),
            Some(ip("127.0.0.1"))
        );
        // A client's X-Real-IP behind a proxy that only appends X-Forwarded-For.
        let h = headers(&[
            ("x-real-ip", "10.0.0.1"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(xff.client(proxy, &h).ok(), Some(ip("198.51.100.4")));
        // All hops trusted: the left-most.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(xff.client(proxy, &h).ok(), Some(ip("10.0.0.5")));
        let mapped = Some("[::ffff:192.0.2.9]:1".parse().unwrap());
        assert_eq!(
            Addressing::default().client(mapped, &HeaderMap::new()).ok(),
            Some(ip("192.0.2.9"))
        );
        assert_eq!(
            Addressing::default().client(None, &HeaderMap::new()).ok(),
            Some(IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)))
        );
        // Ports and brackets, as some proxies write hops.
        for (hop, want) in [
            ("198.51.100.4:443", "198.51.100.4"),
            ("[2001:db8::1]:80", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("::ffff:198.51.100.4", "198.51.100.4"),
        ] {
            let h = multi(&[("x-forwarded-for", hop.as_bytes())]);
            assert_eq!(xff.client(proxy, &h).ok(), Some(ip(want)), "{hop}");
        }
    }

    #[test]
    fn every_forwarded_line_counts_and_bad_hops_refuse() {
        let xff = Addressing {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            header: ClientIpHeader::XForwardedFor,
        };
        let proxy = Some("127.0.0.1:5000".parse().unwrap());
        // Two lines: the client's own, then the proxy's (HAProxy adds a line).
        let h = multi(&[
            ("x-forwarded-for", b"10.1.1.1"),
            ("x-forwarded-for", b"198.51.100.4"),
        ]);
        assert_eq!(xff.client(proxy, &h).ok(), Some(ip("198.51.100.4")));
        // An unparsable right-most hop is not skipped in favour of the forged one.
        for bad in [
            &b"10.1.1.1, garbage"[..],
            b"10.1.1.1,",
            b"10.1.1.1, , 198.51.100.4x",
            b"",
            b"unknown",
            b"10.1.1.1, 198.51.100.\xff",
        ] {
            let h = multi(&[("x-forwarded-for", bad)]);
            assert!(
                xff.client(proxy, &h).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // What lies left of the client's hop is never read.
        let h = multi(&[("x-forwarded-for", b"garbage, 198.51.100.4")]);
        assert_eq!(xff.client(proxy, &h).ok(), Some(ip("198.51.100.4")));
        // From an untrusted peer, nothing of it is read.
        let h = multi(&[("x-forwarded-for", b"garbage")]);
        let stranger = Some("192.0.2.9:5000".parse().unwrap());
        assert_eq!(xff.client(stranger, &h).ok(), Some(ip("192.0.2.9")));
    }

    #[test]
    fn x_real_ip_when_the_operator_says_so() {
        let real = Addressing {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            header: ClientIpHeader::XRealIp,
        };
        let proxy = Some("127.0.0.1:5000".parse().unwrap());
        let h = headers(&[
            ("x-real-ip", "198.51.100.1"),
            ("x-forwarded-for", "10.0.0.1"),
        ]);
        assert_eq!(
            real.client(proxy, &h).ok(),
            Some(ip("198.51.100.1")),
            "X-Forwarded-For is not read"
        );
        let h = multi(&[("x-real-ip", b"198.51.100.1"), ("x-real-ip", b"10.0.0.1")]);
        assert!(real.client(proxy, &h).is_err(), "two copies");
        let h = multi(&[("x-real-ip", b"10.0.0.1, 198.51.100.1")]);
        assert!(real.client(proxy, &h).is_err(), "a list");
        assert_eq!(
            real.client(proxy, &HeaderMap::new()).ok(),
            Some(ip("127.0.0.1"))
        );
    }
}
