//! Client-address restrictions for access tokens (`allowedIPs`).
//!
//! An access token may carry `allowedIPs`, a list of entries that restrict the
//! client addresses the token may be used from. An empty list means "any
//! address". The check runs on every request, so [`IpAllowList::parse`] does
//! all the work once, when the token's claims are read, and
//! [`IpAllowList::allows`] is a plain scan over pre-parsed rules with no
//! allocation.
//!
//! # Accepted entry forms
//!
//! Surrounding whitespace is trimmed from every entry (and from both ends of a
//! range, so `"10.0.0.1 - 10.0.0.9"` is fine). Anything else is refused.
//!
//! | form              | example                          | matches                          |
//! |-------------------|----------------------------------|----------------------------------|
//! | IPv4 address      | `10.1.2.3`                       | exactly that address             |
//! | IPv6 address      | `2001:db8::1`                    | exactly that address             |
//! | IPv4 CIDR         | `10.0.0.0/8`                     | every address in the block       |
//! | IPv6 CIDR         | `2001:db8::/32`                  | every address in the block       |
//! | range             | `10.0.0.1-10.0.0.9`              | both ends and everything between |
//!
//! Refused, with an [`AddressError`] naming the entry and its 0-based index:
//! empty entries, hostnames, wildcards (`*`), ports (`1.2.3.4:80`), brackets
//! (`[::1]`), IPv6 zone ids (`fe80::1%eth0`), IPv4 octets with leading zeros
//! (`010.0.0.1`, ambiguous with octal), extra slashes (`10.0.0.0/8/9`), a
//! prefix that is not plain decimal digits, a prefix length beyond the
//! family's width (`/33`, `/129`), ranges whose ends are of different families,
//! and ranges whose start is after their end. One bad entry refuses the whole
//! list: a token whose restriction cannot be understood must not be usable
//! (fail closed), rather than silently losing the bad entry.
//!
//! # Decisions
//!
//! * **CIDR with host bits set.** `"10.1.2.3/8"` is accepted and means the
//!   network `10.0.0.0/8` (the host bits are cleared, as ipnet's `trunc()`).
//!   This is what every common tool (and ipnet's own `contains`) does with such
//!   input, and the written form is still kept for display. It is not widened
//!   beyond what the prefix says, so it cannot admit more than the writer asked
//!   for by the prefix.
//! * **IPv4-mapped IPv6 (`::ffff:a.b.c.d`).** A dual-stack socket reports an
//!   IPv4 peer as `::ffff:a.b.c.d`. Such a client is treated as the IPv4
//!   address `a.b.c.d` before matching ([`IpAddr::to_canonical`]), so it
//!   matches IPv4 entries. For consistency, entries are canonicalised the same
//!   way: a mapped single address or range becomes IPv4, and an IPv6 CIDR lying
//!   wholly inside `::ffff:0:0/96` (prefix ≥ 96) becomes the equivalent IPv4
//!   CIDR (prefix − 96), so `"::ffff:0:0/96"` admits every IPv4 client. Any
//!   other IPv6 CIDR matches IPv6 clients only — in particular `"::/0"` does
//!   **not** admit IPv4 clients (nor mapped ones); write `"0.0.0.0/0"` as well
//!   for that. A range whose two ends canonicalise to different families is an
//!   error. Only the `::ffff:0:0/96` mapping is recognised; the deprecated
//!   IPv4-compatible form (`::a.b.c.d`) and NAT64 prefixes stay IPv6.
//! * **Families never cross.** An IPv4 client never matches an IPv6 rule and
//!   vice versa (after the canonicalisation above).
//! * **Error messages** quote the entry with Rust's debug escaping, so control
//!   characters in a hostile entry cannot forge log lines.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why an `allowedIPs` entry was refused.
///
/// Every variant names the entry's 0-based position in the list and (except
/// [`AddressError::Empty`]) the entry as written, trimmed, so the message can
/// be shown to whoever wrote the token's restrictions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The entry is empty or only whitespace; refused rather than skipped so
    /// that a list of blanks cannot turn into "any address".
    #[error("allowedIPs[{index}]: entry is empty")]
    Empty {
        /// 0-based position of the entry in the list.
        index: usize,
    },
    /// The entry is not an IP address, CIDR block or range (hostname, `*`,
    /// port, brackets, zone id, stray characters, ...).
    #[error(
        "allowedIPs[{index}] {entry:?}: not an IP address, CIDR block (addr/len) or range (start-end)"
    )]
    Invalid {
        /// 0-based position of the entry in the list.
        index: usize,
        /// The entry as written, trimmed.
        entry: String,
    },
    /// A CIDR block's prefix length is larger than its family allows.
    #[error("allowedIPs[{index}] {entry:?}: prefix length is out of range (at most {max})")]
    BadPrefix {
        /// 0-based position of the entry in the list.
        index: usize,
        /// The entry as written, trimmed.
        entry: String,
        /// Largest prefix length for the address family (32 or 128).
        max: u8,
    },
    /// A range's two ends are of different address families (after
    /// IPv4-mapped IPv6 ends are read as IPv4).
    #[error("allowedIPs[{index}] {entry:?}: range ends are of different address families")]
    MixedFamilies {
        /// 0-based position of the entry in the list.
        index: usize,
        /// The entry as written, trimmed.
        entry: String,
    },
    /// A range's start is after its end; refused rather than swapped, since
    /// the writer's intent is unclear.
    #[error("allowedIPs[{index}] {entry:?}: range start is after its end")]
    ReversedRange {
        /// 0-based position of the entry in the list.
        index: usize,
        /// The entry as written, trimmed.
        entry: String,
    },
}

/// One parsed `allowedIPs` entry, in canonical form.
///
/// Values built by [`IpAllowList::parse`] are canonical: IPv4-mapped IPv6
/// addresses and CIDRs inside `::ffff:0:0/96` have been turned into IPv4,
/// CIDR host bits are cleared, and a range's ends are of one family with
/// start ≤ end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressRule {
    /// Exactly one address.
    Single(IpAddr),
    /// Every address of a CIDR block.
    Net(IpNet),
    /// Every address from the first to the second, both included.
    Range(IpAddr, IpAddr),
}

impl AddressRule {
    /// Whether `client` is admitted by this rule.
    ///
    /// The client is canonicalised first (`::ffff:a.b.c.d` is read as
    /// `a.b.c.d`), matching what [`IpAllowList::allows`] does. Addresses of one
    /// family never match a rule of the other.
    pub fn matches(&self, client: IpAddr) -> bool {
        self.matches_canonical(client.to_canonical())
    }

    /// Match for a client that is already canonical (hot path: the caller
    /// canonicalises once per request, not once per rule).
    #[inline]
    fn matches_canonical(&self, client: IpAddr) -> bool {
        match *self {
            AddressRule::Single(addr) => addr == client,
            AddressRule::Net(net) => net.contains(&client),
            AddressRule::Range(start, end) => match (start, end, client) {
                (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(c)) => s <= c && c <= e,
                (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(c)) => s <= c && c <= e,
                _ => false,
            },
        }
    }

    /// Parses one trimmed, non-empty entry; `index` is only for the error.
    fn parse(index: usize, entry: &str) -> Result<Self, AddressError> {
        let invalid = || AddressError::Invalid {
            index,
            entry: entry.to_owned(),
        };

        // IP addresses never contain '-', so a '-' marks a range.
        if let Some((start, end)) = entry.split_once('-') {
            let start = parse_addr(start.trim()).ok_or_else(invalid)?;
            let end = parse_addr(end.trim()).ok_or_else(invalid)?;
            return match (start, end) {
                (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                    if start <= end {
                        Ok(AddressRule::Range(start, end))
                    } else {
                        Err(AddressError::ReversedRange {
                            index,
                            entry: entry.to_owned(),
                        })
                    }
                }
                _ => Err(AddressError::MixedFamilies {
                    index,
                    entry: entry.to_owned(),
                }),
            };
        }

        if let Some((addr, prefix)) = entry.split_once('/') {
            // Written exactly: no sign, no spaces, no further '/'.
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            // Parse the address as written (not canonicalised): the prefix
            // refers to the written family's width.
            let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
            let max = match addr {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            };
            let bad_prefix = || AddressError::BadPrefix {
                index,
                entry: entry.to_owned(),
                max,
            };
            // All digits, so a failed parse can only mean "too large".
            let len: u8 = prefix.parse().map_err(|_| bad_prefix())?;
            let net = match addr {
                IpAddr::V4(a) => Ipv4Net::new(a, len).map(IpNet::V4),
                IpAddr::V6(a) => Ipv6Net::new(a, len).map(IpNet::V6),
            }
            .map_err(|_| bad_prefix())?
            .trunc();
            return Ok(AddressRule::Net(canonical_net(net)));
        }

        parse_addr(entry)
            .map(AddressRule::Single)
            .ok_or_else(invalid)
    }
}

/// Parses a bare address (no port, brackets or zone id: std's parser refuses
/// them) and reads an IPv4-mapped IPv6 address as IPv4.
fn parse_addr(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

/// Turns an IPv6 CIDR lying wholly inside `::ffff:0:0/96` into the equivalent
/// IPv4 CIDR; any other block is returned unchanged.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        let len = v6.prefix_len();
        if len >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                if let Ok(n) = Ipv4Net::new(v4, len - 96) {
                    return IpNet::V4(n);
                }
            }
        }
    }
    net
}

/// A token's parsed `allowedIPs`: the rules used for matching, plus the
/// entries as written (trimmed) so they can be shown back unchanged.
///
/// The empty list (also [`Default`]) admits every address, as an absent or
/// empty `allowedIPs` claim means "no restriction".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowList {
    rules: Vec<AddressRule>,
    entries: Vec<String>,
}

impl IpAllowList {
    /// Parses `allowedIPs` entries (see the module docs for the forms).
    ///
    /// The whole list is refused if any entry is bad, with the error for the
    /// first bad entry: dropping it instead could widen the restriction, or
    /// even turn it into "any address".
    pub fn parse<I, S>(entries: I) -> Result<Self, AddressError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let iter = entries.into_iter();
        let (lower, _) = iter.size_hint();
        let mut rules = Vec::with_capacity(lower);
        let mut kept = Vec::with_capacity(lower);
        for (index, raw) in iter.enumerate() {
            let entry = raw.as_ref().trim();
            if entry.is_empty() {
                return Err(AddressError::Empty { index });
            }
            rules.push(AddressRule::parse(index, entry)?);
            kept.push(entry.to_owned());
        }
        Ok(IpAllowList {
            rules,
            entries: kept,
        })
    }

    /// Whether a request from `client` may use the token: true when the list
    /// is empty (no restriction) or some entry matches.
    ///
    /// `::ffff:a.b.c.d` clients are matched as `a.b.c.d`, so IPv4 peers seen
    /// through a dual-stack socket match IPv4 entries.
    pub fn allows(&self, client: IpAddr) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let client = client.to_canonical();
        self.rules.iter().any(|r| r.matches_canonical(client))
    }

    /// True when there are no entries, i.e. every address is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The entries as written (trimmed), in order, for display and for
    /// writing the claim back out.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The parsed rules, in the same order as [`IpAllowList::entries`], for
    /// callers that need to inspect what an entry was understood as.
    pub fn rules(&self) -> &[AddressRule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    /// The IPv4-mapped IPv6 form of an IPv4 address given as a `u32`.
    fn mapped(n: u32) -> IpAddr {
        IpAddr::V6(Ipv4Addr::from(n).to_ipv6_mapped())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn list(entries: &[&str]) -> IpAllowList {
        IpAllowList::parse(entries).unwrap()
    }

    fn err(entries: &[&str]) -> AddressError {
        IpAllowList::parse(entries).unwrap_err()
    }

    // ---- empty list -------------------------------------------------------

    #[test]
    fn empty_list_allows_everything() {
        let l = list(&[]);
        assert!(l.is_empty());
        assert!(l.entries().is_empty());
        for c in [
            "0.0.0.0",
            "10.1.2.3",
            "255.255.255.255",
            "::",
            "2001:db8::1",
        ] {
            assert!(l.allows(ip(c)), "{c}");
        }
        assert_eq!(IpAllowList::default(), l);
        assert!(IpAllowList::default().allows(ip("1.2.3.4")));
    }

    #[test]
    fn non_empty_list_is_not_empty() {
        let l = list(&["10.0.0.1"]);
        assert!(!l.is_empty());
        assert!(!l.allows(ip("10.0.0.2")));
    }

    // ---- single addresses -------------------------------------------------

    #[test]
    fn single_v4() {
        let l = list(&["10.1.2.3"]);
        assert!(l.allows(ip("10.1.2.3")));
        assert!(!l.allows(ip("10.1.2.4")));
        assert!(!l.allows(ip("10.1.2.2")));
        assert_eq!(l.rules(), &[AddressRule::Single(ip("10.1.2.3"))]);
    }

    #[test]
    fn single_v6() {
        let l = list(&["2001:db8::1"]);
        assert!(l.allows(ip("2001:db8::1")));
        assert!(l.allows(ip("2001:0db8:0:0:0:0:0:1")));
        assert!(!l.allows(ip("2001:db8::2")));
        assert!(!l.allows(ip("::1")));
    }

    #[test]
    fn families_never_cross_for_singles() {
        // ::1 and 0.0.0.1 share the low bits but are different families.
        assert!(!list(&["0.0.0.1"]).allows(ip("::1")));
        assert!(!list(&["::1"]).allows(ip("0.0.0.1")));
        // IPv4-compatible (deprecated) form is not mapped.
        assert!(!list(&["1.2.3.4"]).allows(ip("::1.2.3.4")));
        assert!(!list(&["::1.2.3.4"]).allows(ip("1.2.3.4")));
    }

    #[test]
    fn whitespace_is_trimmed_and_entries_kept_as_written() {
        let l = list(&["  10.0.0.1\t", " 10.1.2.3/8 ", "\n10.0.0.5 - 10.0.0.9 "]);
        assert_eq!(
            l.entries(),
            &["10.0.0.1", "10.1.2.3/8", "10.0.0.5 - 10.0.0.9"]
        );
        assert!(l.allows(ip("10.0.0.1")));
        assert!(l.allows(ip("10.200.0.1")));
        assert!(l.allows(ip("10.0.0.7")));
        // Owned strings work too.
        let owned = vec![String::from("::1")];
        assert!(IpAllowList::parse(&owned).unwrap().allows(ip("::1")));
        assert!(IpAllowList::parse(owned).unwrap().allows(ip("::1")));
    }

    // ---- CIDR blocks ------------------------------------------------------

    #[test]
    fn cidr_v4_boundaries() {
        let l = list(&["10.0.0.0/8"]);
        assert!(l.allows(ip("10.0.0.0")));
        assert!(l.allows(ip("10.255.255.255")));
        assert!(l.allows(ip("10.20.30.40")));
        assert!(!l.allows(ip("9.255.255.255")));
        assert!(!l.allows(ip("11.0.0.0")));

        let l = list(&["192.168.1.64/26"]);
        assert!(l.allows(ip("192.168.1.64")));
        assert!(l.allows(ip("192.168.1.127")));
        assert!(!l.allows(ip("192.168.1.63")));
        assert!(!l.allows(ip("192.168.1.128")));
    }

    #[test]
    fn cidr_v4_slash_0_and_32() {
        let all = list(&["0.0.0.0/0"]);
        assert!(all.allows(ip("0.0.0.0")));
        assert!(all.allows(ip("255.255.255.255")));
        assert!(all.allows(ip("::ffff:1.2.3.4")));
        assert!(!all.allows(ip("::")));
        assert!(!all.allows(ip("2001:db8::1")));

        let one = list(&["10.1.2.3/32"]);
        assert!(one.allows(ip("10.1.2.3")));
        assert!(!one.allows(ip("10.1.2.2")));
        assert!(!one.allows(ip("10.1.2.4")));
    }

    #[test]
    fn cidr_v6_boundaries() {
        let l = list(&["2001:db8::/32"]);
        assert!(l.allows(ip("2001:db8::")));
        assert!(l.allows(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!l.allows(ip("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!l.allows(ip("2001:db9::")));
    }

    #[test]
    fn cidr_v6_slash_0_and_128() {
        let all = list(&["::/0"]);
        assert!(all.allows(ip("::")));
        assert!(all.allows(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        // Decision: ::/0 does not admit IPv4 clients, mapped or not.
        assert!(!all.allows(ip("1.2.3.4")));
        assert!(!all.allows(ip("::ffff:1.2.3.4")));

        let one = list(&["2001:db8::5/128"]);
        assert!(one.allows(ip("2001:db8::5")));
        assert!(!one.allows(ip("2001:db8::4")));
        assert!(!one.allows(ip("2001:db8::6")));
    }

    #[test]
    fn cidr_host_bits_are_cleared() {
        let l = list(&["10.1.2.3/8"]);
        assert_eq!(
            l.rules(),
            &[AddressRule::Net("10.0.0.0/8".parse().unwrap())]
        );
        assert_eq!(l.entries(), &["10.1.2.3/8"]);
        assert!(l.allows(ip("10.0.0.0")));
        assert!(l.allows(ip("10.255.255.255")));
        assert!(!l.allows(ip("11.0.0.0")));

        let l = list(&["2001:db8::1/32"]);
        assert!(l.allows(ip("2001:db8::")));
        assert!(!l.allows(ip("2001:db9::")));
    }

    #[test]
    fn cidr_families_never_cross() {
        assert!(!list(&["0.0.0.0/0"]).allows(ip("::1")));
        assert!(!list(&["::/0"]).allows(ip("0.0.0.1")));
        assert!(!list(&["::/96"]).allows(ip("0.0.0.1")));
    }

    // ---- ranges -----------------------------------------------------------

    #[test]
    fn range_v4_inclusive() {
        let l = list(&["10.0.0.5-10.0.1.9"]);
        assert!(l.allows(ip("10.0.0.5")));
        assert!(l.allows(ip("10.0.1.9")));
        assert!(l.allows(ip("10.0.0.255")));
        assert!(!l.allows(ip("10.0.0.4")));
        assert!(!l.allows(ip("10.0.1.10")));
    }

    #[test]
    fn range_single_address() {
        let l = list(&["10.0.0.5-10.0.0.5"]);
        assert!(l.allows(ip("10.0.0.5")));
        assert!(!l.allows(ip("10.0.0.4")));
        assert!(!l.allows(ip("10.0.0.6")));
    }

    #[test]
    fn range_v4_extremes() {
        let l = list(&["0.0.0.0-255.255.255.255"]);
        assert!(l.allows(ip("0.0.0.0")));
        assert!(l.allows(ip("255.255.255.255")));
        assert!(!l.allows(ip("::")));
        assert!(!l.allows(ip("::1")));
    }

    #[test]
    fn range_v6_inclusive() {
        let l = list(&["2001:db8::10 - 2001:db8::1:0"]);
        assert!(l.allows(ip("2001:db8::10")));
        assert!(l.allows(ip("2001:db8::1:0")));
        assert!(l.allows(ip("2001:db8::ffff")));
        assert!(!l.allows(ip("2001:db8::f")));
        assert!(!l.allows(ip("2001:db8::1:1")));
        // v4 clients never match a v6 range, even "inside" it numerically.
        let l = list(&["::-::ffff:ffff"]);
        assert!(l.allows(ip("::1")));
        assert!(!l.allows(ip("0.0.0.1")));
    }

    #[test]
    fn range_whitespace_around_dash() {
        let l = list(&["10.0.0.1 -\t10.0.0.3"]);
        assert!(l.allows(ip("10.0.0.2")));
        assert_eq!(l.entries(), &["10.0.0.1 -\t10.0.0.3"]);
    }

    // ---- IPv4-mapped IPv6 -------------------------------------------------

    #[test]
    fn mapped_client_matches_v4_entries() {
        let l = list(&["10.1.2.3", "192.168.0.0/16", "172.16.0.1-172.16.0.9"]);
        assert!(l.allows(ip("::ffff:10.1.2.3")));
        assert!(l.allows(ip("::ffff:192.168.44.1")));
        assert!(l.allows(ip("::ffff:172.16.0.9")));
        assert!(!l.allows(ip("::ffff:10.1.2.4")));
        assert!(!l.allows(ip("::ffff:172.16.0.10")));
        assert!(AddressRule::Single(ip("10.1.2.3")).matches(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn mapped_entries_become_v4() {
        let l = list(&["::ffff:10.1.2.3"]);
        assert_eq!(l.rules(), &[AddressRule::Single(ip("10.1.2.3"))]);
        assert_eq!(l.entries(), &["::ffff:10.1.2.3"]);
        assert!(l.allows(ip("10.1.2.3")));
        assert!(l.allows(ip("::ffff:10.1.2.3")));
        assert!(!l.allows(ip("10.1.2.4")));

        let l = list(&["::ffff:10.0.0.1-::ffff:10.0.0.9"]);
        assert_eq!(
            l.rules(),
            &[AddressRule::Range(ip("10.0.0.1"), ip("10.0.0.9"))]
        );
        assert!(l.allows(ip("10.0.0.9")));
        assert!(!l.allows(ip("10.0.0.10")));

        // One mapped end, one plain v4 end: same family after canonicalising.
        let l = list(&["10.0.0.1-::ffff:10.0.0.9"]);
        assert!(l.allows(ip("10.0.0.5")));
    }

    #[test]
    fn mapped_cidr_becomes_v4() {
        let l = list(&["::ffff:10.0.0.0/104"]);
        assert_eq!(
            l.rules(),
            &[AddressRule::Net("10.0.0.0/8".parse().unwrap())]
        );
        assert!(l.allows(ip("10.255.255.255")));
        assert!(!l.allows(ip("11.0.0.0")));

        let l = list(&["::ffff:10.1.2.3/128"]);
        assert_eq!(
            l.rules(),
            &[AddressRule::Net("10.1.2.3/32".parse().unwrap())]
        );
        assert!(l.allows(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn mapped_slash_96_admits_all_v4() {
        let l = list(&["::ffff:0:0/96"]);
        assert_eq!(l.rules(), &[AddressRule::Net("0.0.0.0/0".parse().unwrap())]);
        for c in ["0.0.0.0", "1.2.3.4", "255.255.255.255", "::ffff:8.8.8.8"] {
            assert!(l.allows(ip(c)), "{c}");
        }
        assert!(!l.allows(ip("::1")));
        assert!(!l.allows(ip("2001:db8::1")));
    }

    #[test]
    fn wider_v6_cidr_over_mapped_space_stays_v6() {
        // Prefix < 96: not wholly inside ::ffff:0:0/96, so IPv6 only.
        let l = list(&["::ffff:0:0/95"]);
        assert!(!l.allows(ip("1.2.3.4")));
        assert!(l.allows(ip("::fffe:0:1")));
    }

    // ---- errors -----------------------------------------------------------

    #[test]
    fn error_empty() {
        let e = err(&["10.0.0.1", "", "10.0.0.2"]);
        assert_eq!(e, AddressError::Empty { index: 1 });
        assert_eq!(e.to_string(), "allowedIPs[1]: entry is empty");
        assert_eq!(err(&["   \t"]), AddressError::Empty { index: 0 });
    }

    #[test]
    fn error_invalid_forms() {
        let bad = [
            "localhost",
            "example.com",
            "*",
            "10.0.0.0/8/9",
            "1.2.3.4:80",
            "[::1]:80",
            "fe80::1%eth0",
            "fe80::1%1",
            "[::1]",
            "[::1]/128",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/+8",
            "10.0.0.0/-8",
            "10.0.0.0 / 8",
            "10.0.0.0/ 8",
            "10.0.0.1-",
            "-10.0.0.1",
            "-",
            "10.0.0.1-10.0.0.2-10.0.0.3",
            "10.0.0.0/8-10.1.0.0",
            "10.0.0.1,10.0.0.2",
            "10.0.0.1 10.0.0.2",
            "10.0.0",
            "256.0.0.1",
            "010.0.0.1",
            "1.2.3.4.5",
            ":::1",
            "10.0.0.x",
        ];
        for (i, entry) in bad.iter().enumerate() {
            let mut entries = vec!["10.0.0.1"; i];
            entries.push(entry);
            assert_eq!(
                err(&entries),
                AddressError::Invalid {
                    index: i,
                    entry: entry.trim().to_owned()
                },
                "{entry:?}"
            );
        }
        let e = err(&["10.0.0.1", "10.0.0.0/8/9"]);
        assert_eq!(
            e.to_string(),
            "allowedIPs[1] \"10.0.0.0/8/9\": not an IP address, CIDR block (addr/len) or range (start-end)"
        );
    }

    #[test]
    fn error_bad_prefix() {
        let e = err(&["10.0.0.0/33"]);
        assert_eq!(
            e,
            AddressError::BadPrefix {
                index: 0,
                entry: "10.0.0.0/33".into(),
                max: 32
            }
        );
        assert_eq!(
            e.to_string(),
            "allowedIPs[0] \"10.0.0.0/33\": prefix length is out of range (at most 32)"
        );
        let e = err(&["::1", "2001:db8::/129"]);
        assert_eq!(
            e,
            AddressError::BadPrefix {
                index: 1,
                entry: "2001:db8::/129".into(),
                max: 128
            }
        );
        assert_eq!(
            e.to_string(),
            "allowedIPs[1] \"2001:db8::/129\": prefix length is out of range (at most 128)"
        );
        // Too large for any integer type: still a prefix error, no panic.
        assert!(matches!(
            err(&["10.0.0.0/99999999999999999999999"]),
            AddressError::BadPrefix {
                index: 0,
                max: 32,
                ..
            }
        ));
        assert!(matches!(
            err(&["10.0.0.0/256"]),
            AddressError::BadPrefix { index: 0, .. }
        ));
        // Mapped CIDR prefixes are counted in IPv6 bits.
        assert!(matches!(
            err(&["::ffff:0:0/129"]),
            AddressError::BadPrefix { max: 128, .. }
        ));
        assert!(list(&["10.0.0.0/032"]).allows(ip("10.0.0.0")));
    }

    #[test]
    fn error_mixed_families() {
        let e = err(&["10.0.0.1", "10.0.0.1", "10.0.0.1-::1"]);
        assert_eq!(
            e,
            AddressError::MixedFamilies {
                index: 2,
                entry: "10.0.0.1-::1".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "allowedIPs[2] \"10.0.0.1-::1\": range ends are of different address families"
        );
        // A mapped end is IPv4, so mapped-to-v6 is mixed.
        assert!(matches!(
            err(&["::ffff:10.0.0.1-2001:db8::1"]),
            AddressError::MixedFamilies { index: 0, .. }
        ));
        assert!(matches!(
            err(&["::1 - 10.0.0.1"]),
            AddressError::MixedFamilies { index: 0, .. }
        ));
    }

    #[test]
    fn error_reversed_range() {
        let e = err(&["10.0.0.1", "::1", "10.0.0.9-10.0.0.1"]);
        assert_eq!(
            e,
            AddressError::ReversedRange {
                index: 2,
                entry: "10.0.0.9-10.0.0.1".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "allowedIPs[2] \"10.0.0.9-10.0.0.1\": range start is after its end"
        );
        assert!(matches!(
            err(&["2001:db8::2-2001:db8::1"]),
            AddressError::ReversedRange { index: 0, .. }
        ));
    }

    #[test]
    fn first_bad_entry_is_reported_and_whole_list_refused() {
        let e = err(&["10.0.0.1", "bogus", "10.0.0.9-10.0.0.1"]);
        assert_eq!(
            e,
            AddressError::Invalid {
                index: 1,
                entry: "bogus".into()
            }
        );
    }

    #[test]
    fn error_message_escapes_control_characters() {
        let e = err(&["evil\nallowedIPs[0] ok"]);
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("\\n"), "{msg}");
    }

    // ---- properties -------------------------------------------------------

    /// A client near `base` (within ±2, wrapping), to hit boundaries often.
    fn near(base: u32) -> impl Strategy<Value = u32> {
        (-2i64..=2).prop_map(move |d| (i64::from(base) + d).rem_euclid(1 << 32) as u32)
    }

    proptest! {
        #[test]
        fn v4_range_matches_oracle(
            (a, b, x) in (any::<u32>(), any::<u32>()).prop_flat_map(|(p, q)| {
                let (a, b) = (p.min(q), p.max(q));
                (Just(a), Just(b), prop_oneof![any::<u32>(), near(a), near(b)])
            }),
            write_mapped in any::<bool>(),
        ) {
            let entry = if write_mapped {
                format!("{} - {}", mapped(a), mapped(b))
            } else {
                format!("{}-{}", v4(a), v4(b))
            };
            let l = IpAllowList::parse([&entry]).unwrap();
            let expected = a <= x && x <= b;
            prop_assert_eq!(l.allows(v4(x)), expected);
            prop_assert_eq!(l.allows(mapped(x)), expected);
        }

        #[test]
        fn v4_cidr_matches_ipnet_oracle(
            (addr, len, x) in (any::<u32>(), 0u8..=32).prop_flat_map(|(addr, len)| {
                let net = Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap();
                let first = u32::from(net.network());
                let last = u32::from(net.broadcast());
                (Just(addr), Just(len), prop_oneof![any::<u32>(), near(first), near(last)])
            }),
            write_mapped in any::<bool>(),
        ) {
            let net = Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap();
            let entry = if write_mapped {
                format!("{}/{}", mapped(addr), u32::from(len) + 96)
            } else {
                format!("{}/{}", v4(addr), len)
            };
            let l = IpAllowList::parse([&entry]).unwrap();
            let expected = net.contains(&Ipv4Addr::from(x));
            prop_assert_eq!(l.allows(v4(x)), expected);
            prop_assert_eq!(l.allows(mapped(x)), expected);
            // IPv6 clients never match a v4 block.
            prop_assert!(!l.allows(IpAddr::V6(Ipv6Addr::from(u128::from(x)))));
        }

        #[test]
        fn v6_cidr_matches_ipnet_oracle(
            addr in any::<u128>(),
            len in 0u8..=128,
            x in any::<u128>(),
            keep_prefix in any::<bool>(),
        ) {
            let net = Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap();
            // Half the time, put the client inside the block.
            let x = if keep_prefix {
                let mask = u128::from(net.netmask());
                (addr & mask) | (x & !mask)
            } else {
                x
            };
            let client = Ipv6Addr::from(x);
            let l = IpAllowList::parse([format!("{net}")]).unwrap();
            // Mapped clients are read as IPv4, so match only v4-converted blocks.
            let expected = match client.to_ipv4_mapped() {
                Some(_) => len >= 96 && net.contains(&client),
                None => net.contains(&client),
            };
            prop_assert_eq!(l.allows(IpAddr::V6(client)), expected);
        }
    }
}
