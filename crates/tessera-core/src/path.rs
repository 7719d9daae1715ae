//! Request-path normalisation and scope matching for access-token checks.
//!
//! The token check on the hot path uses this module to decide whether an
//! access token's scope allows a request path. Every doubtful input is
//! refused (fails closed) *before* any scope is consulted: a path that cannot
//! be brought into one unambiguous normal form never becomes a [`NormalPath`],
//! and only a [`NormalPath`] can be matched against a [`PathRule`] or an
//! [`EndpointRule`].
//!
//! Normal form (see [`Normaliser::normalise`]): starts with `/`, ASCII
//! lowercased, percent-escapes decoded exactly once, one web-service root
//! stripped, query and fragment dropped, repeated `/` collapsed, no trailing
//! `/` except for the root path `/` itself.

use std::borrow::Cow;
use std::fmt;

/// The web-service roots that [`Normaliser::default`] strips, already in
/// normal form.
const DEFAULT_ROOTS: [&str; 2] = ["/commandcenter/api", "/webconsole/api"];

/// Why a request path (or a rule, or a web-service root) is refused before any
/// scope is consulted.
///
/// Every variant means "refuse": callers must treat any error as a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path (after cutting query and fragment) does not start with `/`;
    /// this includes the empty string.
    #[error("path must be absolute (start with '/')")]
    NotAbsolute,
    /// A `%` is not followed by two hexadecimal digits.
    #[error("path contains a malformed percent-escape ('%' not followed by two hex digits)")]
    BadEscape,
    /// A percent-escape decodes to a path separator (`%2F` → `/` or `%5C` → `\`),
    /// which back ends disagree about.
    #[error("path contains an encoded path separator (%2F or %5C)")]
    EncodedSeparator,
    /// A raw backslash, which some back ends treat as a separator.
    #[error("path contains a backslash")]
    Backslash,
    /// A NUL byte, raw or percent-encoded (`%00`).
    #[error("path contains a NUL byte")]
    Nul,
    /// A `.` or `..` segment (also when percent-encoded, and also followed by
    /// `;` as in Tomcat's `..;` trick), or any other all-dots segment.
    #[error("path contains a dot segment ('.' or '..')")]
    DotSegment,
    /// The percent-decoded bytes are not valid UTF-8 (this also catches
    /// overlong encodings such as `%C0%AE`).
    #[error("path is not valid UTF-8 after percent-decoding")]
    InvalidUtf8,
    /// After one round of decoding the path still holds an escape for `.`,
    /// `/`, `\`, NUL or `%` (such as `%252e` → `%2e`), which a back end that
    /// decodes twice would turn into something dangerous.
    #[error("path contains a double-encoded escape (such as %252e)")]
    DoubleEncoding,
    /// A path rule or web-service root contains a query (`?`) or fragment
    /// (`#`); only request paths may carry those (they are dropped).
    #[error("a rule or web-service root must not contain a query ('?') or fragment ('#')")]
    QueryOrFragment,
    /// A web-service root normalises to `/`, which would name no root at all.
    #[error("a web-service root must name at least one path segment")]
    EmptyRoot,
    /// A raw `#` anywhere in a request target. A client never sends a
    /// fragment, and upstreams disagree on where a path ends around one
    /// (`/Client#/../Admin`), so it is refused rather than cut.
    #[error("the request target contains a raw '#'")]
    Fragment,
    /// A control character (U+0001 to U+001F, U+007F) in the path, raw or
    /// percent-encoded: upstreams that trim or truncate at one would see
    /// another path than the one checked.
    #[error("path contains a control character")]
    ControlCharacter,
}

/// A request path in normal form, produced only by [`Normaliser::normalise`].
///
/// It starts with `/`, is ASCII-lowercased, has its percent-escapes decoded
/// once, its web-service root stripped, its query and fragment dropped,
/// repeated `/` collapsed and no trailing `/` (except the root path `/`
/// itself). Because the field is private, holding a `NormalPath` proves the
/// path passed every check; that is what makes rule matching safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalPath(String);

impl NormalPath {
    /// The normal form as text, e.g. `"/client/5"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NormalPath {
    /// Writes the normal form, for logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Brings request paths (and rules) into normal form, stripping the
/// configured web-service roots.
///
/// The same normaliser must be used for requests and for the rules they are
/// checked against, so that both sides are compared in the same form. The
/// default strips `/commandcenter/api` and `/webconsole/api`.
#[derive(Debug, Clone)]
pub struct Normaliser {
    /// Web-service roots in normal form (never `/`), longest first so that the
    /// most specific root is the one stripped when roots overlap.
    roots: Vec<String>,
}

impl Default for Normaliser {
    /// A normaliser that strips the two standard web-service roots,
    /// `/commandcenter/api` and `/webconsole/api`.
    fn default() -> Self {
        Normaliser {
            roots: DEFAULT_ROOTS.iter().map(|r| (*r).to_owned()).collect(),
        }
    }
}

impl Normaliser {
    /// A normaliser that strips no root: for rules (Custom entries, scope
    /// prefixes), which are written without one.
    pub fn without_roots() -> Self {
        Normaliser { roots: Vec::new() }
    }

    /// Builds a normaliser that strips the given web-service roots.
    ///
    /// Each root is normalised like a request path (cut, checks, decoding,
    /// collapsing, lowercasing) but without root stripping. A root holding a
    /// query or fragment is refused ([`PathError::QueryOrFragment`]), as is a
    /// root that normalises to `/` ([`PathError::EmptyRoot`]). An empty list is
    /// fine: nothing is stripped.
    pub fn new<I, S>(roots: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut normal_roots = Vec::new();
        for root in roots {
            let root = root.as_ref();
            if root.contains(['?', '#']) {
                return Err(PathError::QueryOrFragment);
            }
            let root = normalise_unrooted(root)?;
            if root == "/" {
                return Err(PathError::EmptyRoot);
            }
            if !normal_roots.contains(&root) {
                normal_roots.push(root);
            }
        }
        normal_roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        Ok(Normaliser {
            roots: normal_roots,
        })
    }

    /// Brings a raw request path (as sent, possibly with query and fragment)
    /// into normal form, or says why it must be refused.
    ///
    /// Rules, in order:
    /// 1. a raw `#` anywhere is refused ([`PathError::Fragment`]); cut at
    ///    the first `?`; the rest must start with `/`
    ///    ([`PathError::NotAbsolute`]);
    /// 2. a raw `\` ([`PathError::Backslash`]), NUL ([`PathError::Nul`]) or
    ///    other control character ([`PathError::ControlCharacter`]) is refused;
    /// 3. percent-escapes are decoded exactly once; malformed escapes, encoded
    ///    separators, encoded NUL or control characters, invalid UTF-8 and
    ///    escapes that survive decoding as an escape of `.`, `/`, `\`, NUL or
    ///    `%` are refused;
    /// 4. the path is split on `/`, empty segments dropped; any segment of
    ///    dots, alone or with whitespace (`.`, `..`, `..%20`, `%20..`, also
    ///    followed by `;…`), is refused;
    /// 5. ASCII letters are lowercased and the segments joined as `/a/b`
    ///    (`/` when there are none);
    /// 6. one web-service root is stripped if the path equals it or continues
    ///    after it with `/`.
    ///
    /// Normalising a result again is not always a no-op: a second pass strips
    /// a further root (`/commandcenter/api/commandcenter/api/x`), and decoded
    /// `%`, `?` or `#` characters are read afresh. Callers must normalise raw
    /// input exactly once.
    pub fn normalise(&self, raw: &str) -> Result<NormalPath, PathError> {
        let mut path = normalise_unrooted(raw)?;
        self.strip_root(&mut path);
        Ok(NormalPath(path))
    }

    /// `path` without the longest configured root that it equals (then `/`)
    /// or that is followed by `/` in it (whole segments only); `path` as is
    /// when none is. For a path already in normal form but for its root,
    /// such as the router's case-folded, slash-collapsed request path, so
    /// that the router strips roots exactly as the check does.
    pub fn without_root<'a>(&self, path: &'a str) -> &'a str {
        match self.root_len(path) {
            0 => path,
            n if n == path.len() => "/",
            n => &path[n..],
        }
    }

    /// The length of the root [`Normaliser::without_root`] strips (0: none).
    fn root_len(&self, path: &str) -> usize {
        self.roots
            .iter()
            .find(|root| match path.strip_prefix(root.as_str()) {
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            })
            .map_or(0, |root| root.len())
    }

    /// Strips the root [`Normaliser::without_root`] names, in place.
    fn strip_root(&self, path: &mut String) {
        match self.root_len(path) {
            0 => {}
            n if n == path.len() => {
                path.clear();
                path.push('/');
            }
            n => {
                path.drain(..n);
            }
        }
    }
}

/// Steps 1–5 of normalisation (everything except root stripping).
///
/// The common case (no `%` escape) takes one pass over the bytes; anything
/// unusual, including every refusal, goes through [`normalise_careful`], the
/// reference implementation, so both always agree on the answer.
fn normalise_unrooted(raw: &str) -> Result<String, PathError> {
    let end = raw.bytes().position(|b| b == b'?').unwrap_or(raw.len());
    // `?` is ASCII, so `end` is a character boundary.
    let path = &raw[..end];
    if !path.starts_with('/')
        || path
            .bytes()
            .any(|b| b == b'%' || b == b'\\' || b == b'#' || b == 0 || is_control(b))
        || raw[end..].contains('#')
    {
        return normalise_careful(raw);
    }
    let mut out = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if is_dot_segment(segment) {
            return normalise_careful(raw);
        }
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out.make_ascii_lowercase();
    Ok(out)
}

/// Steps 1–5, step by step: the reference for [`normalise_unrooted`].
fn normalise_careful(raw: &str) -> Result<String, PathError> {
    // 1. No raw '#' at all; cut the query; what is left must be absolute.
    if raw.contains('#') {
        return Err(PathError::Fragment);
    }
    let path = raw.split('?').next().unwrap_or(raw);
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // 2. Raw backslash, NUL and other control characters.
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    if path.bytes().any(is_control) {
        return Err(PathError::ControlCharacter);
    }
    // 3. Decode once, then refuse anything that still looks like a dangerous escape.
    let decoded = percent_decode(path)?;
    if decoded.bytes().any(is_control) {
        return Err(PathError::ControlCharacter);
    }
    if has_dangerous_escape(&decoded) {
        return Err(PathError::DoubleEncoding);
    }
    // 4 and 5. Split, check segments, join, lowercase.
    let mut out = String::with_capacity(decoded.len() + 1);
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if is_dot_segment(segment) {
            return Err(PathError::DotSegment);
        }
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out.make_ascii_lowercase();
    Ok(out)
}

/// Decodes every `%XX` escape once. Borrows when there is nothing to decode.
///
/// Refuses malformed escapes, escapes of `/` or `\` and of NUL, and decoded
/// bytes that are not UTF-8.
fn percent_decode(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.contains('%') {
        return Ok(Cow::Borrowed(path));
    }
    let mut out = Vec::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            out.push(byte);
            continue;
        }
        let decoded = match (bytes.next(), bytes.next()) {
            (Some(hi), Some(lo)) => hex_pair(hi, lo).ok_or(PathError::BadEscape)?,
            _ => return Err(PathError::BadEscape),
        };
        match decoded {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            0 => return Err(PathError::Nul),
            _ => out.push(decoded),
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::InvalidUtf8)
}

/// The byte that the escape `%<hi><lo>` stands for, if both are hex digits.
fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_digit(hi)? << 4 | hex_digit(lo)?)
}

/// The value of one ASCII hex digit (either case).
fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether already-decoded text still holds an escape that a second decoding
/// would turn into `.`, `/`, `\`, NUL, or `%` (the start of yet another layer).
fn has_dangerous_escape(decoded: &str) -> bool {
    decoded.as_bytes().windows(3).any(|w| match *w {
        [b'%', hi, lo] => matches!(hex_pair(hi, lo), Some(b'.' | b'/' | b'\\' | 0 | b'%')),
        _ => false,
    })
}

/// Whether a decoded segment is a dot segment: before any `;` (path
/// parameters, which Tomcat strips) it holds at least one dot and nothing
/// but dots and whitespace.
///
/// This covers `.`, `..`, `..;`, `..;jsessionid=x`, the forms an upstream
/// that trims whitespace turns into `..` (`.. `, ` ..`, `..\t` once decoded,
/// also Unicode whitespace) and, failing closed, `...` and longer, which some
/// file-system back ends treat specially.
fn is_dot_segment(segment: &str) -> bool {
    let head = match segment.split_once(';') {
        Some((head, _)) => head,
        None => segment,
    };
    head.contains('.') && head.chars().all(|c| c == '.' || c.is_whitespace())
}

/// A C0 control character other than NUL (reported on its own), or DEL.
fn is_control(b: u8) -> bool {
    (1..0x20).contains(&b) || b == 0x7f
}

/// A path-prefix rule that matches on whole segments.
///
/// `/client` allows `/client` and `/client/5` but not `/clientgroup` or
/// `/clients`. The rule `/` matches every path. Rules are normalised exactly
/// like requests (including root stripping), so `/CommandCenter/API/Client`
/// and `/Client` are the same rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule(NormalPath);

impl PathRule {
    /// Parses a rule with the same normalisation as requests (web-service root
    /// stripped too). A query or fragment in a rule is refused
    /// ([`PathError::QueryOrFragment`]) rather than silently dropped.
    pub fn parse(normaliser: &Normaliser, raw: &str) -> Result<Self, PathError> {
        if raw.contains(['?', '#']) {
            return Err(PathError::QueryOrFragment);
        }
        normaliser.normalise(raw).map(PathRule)
    }

    /// Whether `path` is this rule's path or lies below it (whole segments).
    pub fn matches(&self, path: &NormalPath) -> bool {
        let rule = self.0.as_str();
        if rule == "/" {
            return true;
        }
        match path.as_str().strip_prefix(rule) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The rule's path in normal form, e.g. `"/client"`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for PathRule {
    /// Writes the rule's normal form, for logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP methods that an entry of a Custom token's `apiEndpoints` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `HEAD`
    Head,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// Every method, in declaration order.
    const ALL: [Method; 7] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
        Method::Head,
        Method::Options,
    ];

    /// Parses a method name, ASCII case-insensitively (`"get"`, `"GET"`,
    /// `"Get"`); `None` for any other text, including surrounding spaces.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }

    /// The method's canonical upper-case name, e.g. `"GET"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    /// Writes the canonical upper-case name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an entry of a Custom token's `apiEndpoints` is refused.
///
/// Messages quote the entry (escaped, as Rust string literals) so that a user
/// can find it in the token's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The entry is empty or only whitespace.
    #[error("API endpoint entry is empty")]
    Empty,
    /// The entry's first word is not one of the supported HTTP methods.
    #[error("API endpoint entry {entry:?}: unknown HTTP method {method:?} (expected one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS)")]
    UnknownMethod {
        /// The entry as written, trimmed.
        entry: String,
        /// The word that is not a method.
        method: String,
    },
    /// The entry names a method but no path (e.g. `"GET"`).
    #[error(
        "API endpoint entry {entry:?}: a method must be followed by a path, as in \"GET /Client\""
    )]
    MissingPath {
        /// The entry as written, trimmed.
        entry: String,
    },
    /// The entry has more than a method and a path (e.g. `"GET /a /b"`);
    /// spaces inside a path must be written as `%20`.
    #[error("API endpoint entry {entry:?}: expected \"PATH\" or \"METHOD PATH\" (write spaces in a path as %20)")]
    TooManyParts {
        /// The entry as written, trimmed.
        entry: String,
    },
    /// The entry's path is refused by path normalisation.
    #[error("API endpoint entry {entry:?}: {reason}")]
    Path {
        /// The entry as written, trimmed.
        entry: String,
        /// Why the path is refused.
        reason: PathError,
    },
}

/// One entry of a Custom token's `apiEndpoints`: `"/Client"` (any method) or
/// `"GET /Client"` (that method only), with the path matched as a
/// [`PathRule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRule {
    /// The only method allowed, or `None` for any method.
    method: Option<Method>,
    /// The path prefix allowed.
    rule: PathRule,
    /// The entry as the user wrote it, trimmed.
    original: String,
}

impl EndpointRule {
    /// Parses `"PATH"` or `"METHOD PATH"` (method ASCII case-insensitive,
    /// words separated by any whitespace, surrounding whitespace ignored).
    ///
    /// A single word that is a method (`"GET"`) is [`EndpointError::MissingPath`];
    /// a single word that is not is taken as a path (so `"Client"` fails as
    /// [`PathError::NotAbsolute`]).
    pub fn parse(normaliser: &Normaliser, entry: &str) -> Result<Self, EndpointError> {
        let trimmed = entry.trim();
        let mut words = trimmed.split_whitespace();
        let (first, second) = match (words.next(), words.next(), words.next()) {
            (None, _, _) => return Err(EndpointError::Empty),
            (Some(first), second, None) => (first, second),
            (Some(_), _, Some(_)) => {
                return Err(EndpointError::TooManyParts {
                    entry: trimmed.to_owned(),
                })
            }
        };
        let (method, raw_path) = match second {
            None => match Method::parse(first) {
                Some(_) => {
                    return Err(EndpointError::MissingPath {
                        entry: trimmed.to_owned(),
                    })
                }
                None => (None, first),
            },
            Some(_) if first.starts_with('/') => {
                // "/a /b" or "/a GET": a path must come last and alone.
                return Err(EndpointError::TooManyParts {
                    entry: trimmed.to_owned(),
                });
            }
            Some(path) => match Method::parse(first) {
                Some(method) => (Some(method), path),
                None => {
                    return Err(EndpointError::UnknownMethod {
                        entry: trimmed.to_owned(),
                        method: first.to_owned(),
                    })
                }
            },
        };
        let rule = PathRule::parse(normaliser, raw_path).map_err(|reason| EndpointError::Path {
            entry: trimmed.to_owned(),
            reason,
        })?;
        Ok(EndpointRule {
            method,
            rule,
            original: trimmed.to_owned(),
        })
    }

    /// Whether a request with this method (as sent; compared ASCII
    /// case-insensitively) and path is allowed by this entry. An unknown
    /// request method is allowed only by entries that name no method.
    pub fn allows(&self, method: &str, path: &NormalPath) -> bool {
        let method_ok = match self.method {
            None => true,
            Some(wanted) => Method::parse(method) == Some(wanted),
        };
        method_ok && self.rule.matches(path)
    }

    /// The entry as the user wrote it, trimmed; for messages and audit logs.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The only method this entry allows, or `None` for any method.
    pub fn method(&self) -> Option<Method> {
        self.method
    }

    /// The path prefix this entry allows.
    pub fn path(&self) -> &PathRule {
        &self.rule
    }
}

impl fmt::Display for EndpointRule {
    /// Writes the entry as the user wrote it, trimmed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---------- helpers ----------

    fn bare() -> Normaliser {
        Normaliser::new(Vec::<&str>::new()).unwrap()
    }

    fn norm(raw: &str) -> Result<String, PathError> {
        Normaliser::default()
            .normalise(raw)
            .map(|p| p.as_str().to_owned())
    }

    fn np(raw: &str) -> NormalPath {
        Normaliser::default().normalise(raw).unwrap()
    }

    fn rule(raw: &str) -> PathRule {
        PathRule::parse(&Normaliser::default(), raw).unwrap()
    }

    fn endpoint(entry: &str) -> EndpointRule {
        EndpointRule::parse(&Normaliser::default(), entry).unwrap()
    }

    // ---------- normalisation: accepted inputs ----------

    #[test]
    fn normalise_lowercases_and_strips_trailing_slash() {
        assert_eq!(norm("/CLIENT/5/"), Ok("/client/5".to_owned()));
        assert_eq!(norm("/Client"), Ok("/client".to_owned()));
    }

    #[test]
    fn normalise_root_path() {
        assert_eq!(norm("/"), Ok("/".to_owned()));
        assert_eq!(norm("//"), Ok("/".to_owned()));
        assert_eq!(norm("/?x=1"), Ok("/".to_owned()));
    }

    #[test]
    fn normalise_strips_query_and_fragment_and_root() {
        assert_eq!(
            norm("/commandcenter/api/Client/5?x=1"),
            Ok("/client/5".to_owned())
        );
        // Whatever follows the cut is not inspected.
        assert_eq!(norm("/Client?a=\\..%2f%00%zz"), Ok("/client".to_owned()));
    }

    #[test]
    fn normalise_collapses_slashes_and_strips_webconsole_root() {
        assert_eq!(
            norm("/webconsole/api//V4//AccessToken/"),
            Ok("/v4/accesstoken".to_owned())
        );
        assert_eq!(norm("//webconsole//API//x"), Ok("/x".to_owned()));
    }

    #[test]
    fn root_is_stripped_only_on_whole_segments() {
        assert_eq!(
            norm("/commandcenter/apix/y"),
            Ok("/commandcenter/apix/y".to_owned())
        );
        assert_eq!(
            norm("/CommandCenter/APIx/Y"),
            Ok("/commandcenter/apix/y".to_owned())
        );
        assert_eq!(norm("/commandcenter/api"), Ok("/".to_owned()));
        assert_eq!(norm("/commandcenter/api/"), Ok("/".to_owned()));
        assert_eq!(norm("/COMMANDCENTER/Api/Client"), Ok("/client".to_owned()));
        // Not at the start: kept.
        assert_eq!(
            norm("/x/commandcenter/api/y"),
            Ok("/x/commandcenter/api/y".to_owned())
        );
        assert_eq!(norm("/commandcenter"), Ok("/commandcenter".to_owned()));
    }

    #[test]
    fn only_one_root_is_stripped() {
        assert_eq!(
            norm("/commandcenter/api/commandcenter/api/x"),
            Ok("/commandcenter/api/x".to_owned())
        );
        assert_eq!(
            norm("/webconsole/api/commandcenter/api"),
            Ok("/commandcenter/api".to_owned())
        );
    }

    #[test]
    fn bare_normaliser_strips_nothing() {
        assert_eq!(
            bare()
                .normalise("/commandcenter/api/Client")
                .unwrap()
                .as_str(),
            "/commandcenter/api/client"
        );
    }

    #[test]
    fn normalise_decodes_once() {
        assert_eq!(norm("/%43lient/%35"), Ok("/client/5".to_owned()));
        assert_eq!(norm("/a%20b"), Ok("/a b".to_owned()));
        // A literal '%' that is not an escape of anything dangerous survives.
        assert_eq!(norm("/a%2541"), Ok("/a%41".to_owned()));
        assert_eq!(norm("/100%25"), Ok("/100%".to_owned()));
        // Encoded '?' and '#' are data, not query/fragment.
        assert_eq!(norm("/a%3Fb"), Ok("/a?b".to_owned()));
        // Non-ASCII is kept as is (not lowercased).
        assert_eq!(norm("/%C3%89t%C3%A9"), Ok("/Été".to_owned()));
        assert_eq!(norm("/ÉTÉ/X"), Ok("/ÉtÉ/x".to_owned()));
        // Decoded slash-free text is split only on raw '/'.
        assert_eq!(norm("/a%2Eb"), Ok("/a.b".to_owned()));
    }

    #[test]
    fn normalise_allows_dots_inside_segments() {
        assert_eq!(norm("/v1.2/a..b/.x/x."), Ok("/v1.2/a..b/.x/x.".to_owned()));
        assert_eq!(norm("/a;b/c"), Ok("/a;b/c".to_owned()));
    }

    // ---------- normalisation: every error ----------

    #[test]
    fn not_absolute() {
        assert_eq!(norm(""), Err(PathError::NotAbsolute));
        assert_eq!(norm("Client"), Err(PathError::NotAbsolute));
        assert_eq!(norm("?/x"), Err(PathError::NotAbsolute));
        assert_eq!(norm("#/x"), Err(PathError::Fragment));
        assert_eq!(norm("%2FClient"), Err(PathError::NotAbsolute));
        assert_eq!(norm(" /Client"), Err(PathError::NotAbsolute));
        assert_eq!(norm("http://h/Client"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn backslash() {
        assert_eq!(norm("/Client\\Job"), Err(PathError::Backslash));
        assert_eq!(norm("/Client\\..\\Job"), Err(PathError::Backslash));
        assert_eq!(norm("/\\"), Err(PathError::Backslash));
    }

    #[test]
    fn nul() {
        assert_eq!(norm("/Client%00"), Err(PathError::Nul));
        assert_eq!(norm("/Client\0"), Err(PathError::Nul));
        assert_eq!(norm("/Cli\0ent/5"), Err(PathError::Nul));
    }

    #[test]
    fn encoded_separator() {
        assert_eq!(norm("/Client%2fJob"), Err(PathError::EncodedSeparator));
        assert_eq!(norm("/Client%2FJob"), Err(PathError::EncodedSeparator));
        assert_eq!(norm("/Client%5cJob"), Err(PathError::EncodedSeparator));
        assert_eq!(norm("/Client%5CJob"), Err(PathError::EncodedSeparator));
        assert_eq!(
            norm("/commandcenter%2fapi/x"),
            Err(PathError::EncodedSeparator)
        );
    }

    #[test]
    fn bad_escape() {
        assert_eq!(norm("/%zz"), Err(PathError::BadEscape));
        assert_eq!(norm("/%4"), Err(PathError::BadEscape));
        assert_eq!(norm("/%"), Err(PathError::BadEscape));
        assert_eq!(norm("/%4g"), Err(PathError::BadEscape));
        assert_eq!(norm("/%g4"), Err(PathError::BadEscape));
        assert_eq!(norm("/%u002e"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%%2e"), Err(PathError::BadEscape));
        assert_eq!(norm("/%é"), Err(PathError::BadEscape));
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(norm("/%ff"), Err(PathError::InvalidUtf8));
        assert_eq!(norm("/%C3"), Err(PathError::InvalidUtf8));
        // Overlong encoding of '.'.
        assert_eq!(norm("/%c0%ae%c0%ae/x"), Err(PathError::InvalidUtf8));
    }

    #[test]
    fn double_encoding() {
        assert_eq!(norm("/a/%252e%252e/b"), Err(PathError::DoubleEncoding));
        assert_eq!(norm("/a/%252E"), Err(PathError::DoubleEncoding));
        assert_eq!(norm("/Client%252fJob"), Err(PathError::DoubleEncoding));
        assert_eq!(norm("/Client%255cJob"), Err(PathError::DoubleEncoding));
        assert_eq!(norm("/Client%2500"), Err(PathError::DoubleEncoding));
        // Triple encoding leaves an escaped '%' after one decoding.
        assert_eq!(norm("/a/%25252e"), Err(PathError::DoubleEncoding));
        assert_eq!(norm("/a%2525"), Err(PathError::DoubleEncoding));
        // A raw '%' next to an escaped one assembles a dangerous escape.
        assert_eq!(norm("/a%252%65"), Err(PathError::DoubleEncoding));
    }

    #[test]
    fn dot_segments() {
        for raw in [
            "/Client/../Job",
            "/Client/%2e%2e/Job",
            "/Client/%2E%2e/Job",
            "/Client/%2e%2E/Job",
            "/Client/.%2e/Job",
            "/Client/%2e./Job",
            "/Client/..;/Job",
            "/Client/..;jsessionid=1/Job",
            "/Client/%2e%2e;/Job",
            "/Client/.;/Job",
            "/Client/./Job",
            "/Client/%2e/Job",
            "/..",
            "/.",
            "/Client/..",
            "/Client/../",
            "/Client/...",
            "/commandcenter/api/../x",
        ] {
            assert_eq!(norm(raw), Err(PathError::DotSegment), "{raw}");
        }
    }

    #[test]
    fn dots_with_whitespace_are_dot_segments() {
        for raw in [
            "/Client/..%20/Job",
            "/Client/%20../Job",
            "/Client/.. /Job",
            "/Client/%20..%20/Job",
            "/Client/..%09/Job",
            "/Client/..%C2%A0/Job",
            "/Client/. ./Job",
            "/Client/..%20;x/Job",
        ] {
            assert!(
                matches!(
                    norm(raw),
                    Err(PathError::DotSegment | PathError::ControlCharacter)
                ),
                "{raw}: {:?}",
                norm(raw)
            );
        }
        assert_eq!(norm("/Client/..%20/Job"), Err(PathError::DotSegment));
        assert_eq!(norm("/Client/%20../Job"), Err(PathError::DotSegment));
        // Dots beside other characters stay ordinary.
        assert_eq!(norm("/a/.x/%20b"), Ok("/a/.x/ b".to_owned()));
    }

    #[test]
    fn raw_fragment_is_refused_anywhere() {
        for raw in [
            "/Client/5#frag",
            "/Client#/../Admin",
            "/Client?x=#",
            "#",
            "/a%23b#",
        ] {
            assert_eq!(norm(raw), Err(PathError::Fragment), "{raw}");
        }
        // An encoded '#' is an ordinary character of a segment.
        assert_eq!(norm("/a%23b"), Ok("/a#b".to_owned()));
    }

    #[test]
    fn control_characters_are_refused() {
        for raw in [
            "/Client/5\t",
            "/Client/%09",
            "/Client%0d%0a/x",
            "/a\x7f",
            "/a%7F",
            "/a\r\n",
        ] {
            assert_eq!(norm(raw), Err(PathError::ControlCharacter), "{raw:?}");
        }
        // In the query, which is dropped, they are not looked at.
        assert_eq!(norm("/Client?x=%09\t"), Ok("/client".to_owned()));
    }

    #[test]
    fn raw_checks_come_before_decoding() {
        // Cut first: a backslash in the query is not seen.
        assert_eq!(norm("/a?\\"), Ok("/a".to_owned()));
        // Backslash is reported even if a bad escape comes earlier.
        assert_eq!(norm("/%zz\\"), Err(PathError::Backslash));
        // Decoding errors come before dot-segment checks.
        assert_eq!(norm("/../%zz"), Err(PathError::BadEscape));
    }

    // ---------- Normaliser::new ----------

    #[test]
    fn new_normalises_roots() {
        let n = Normaliser::new(["/Foo//Bar/", "/%62az"]).unwrap();
        assert_eq!(n.normalise("/foo/bar/x").unwrap().as_str(), "/x");
        assert_eq!(n.normalise("/FOO/BAR").unwrap().as_str(), "/");
        assert_eq!(n.normalise("/baz/y").unwrap().as_str(), "/y");
        assert_eq!(
            n.normalise("/commandcenter/api/x").unwrap().as_str(),
            "/commandcenter/api/x"
        );
    }

    #[test]
    fn new_prefers_longest_root() {
        let n = Normaliser::new(["/a", "/a/b"]).unwrap();
        assert_eq!(n.normalise("/a/b/c").unwrap().as_str(), "/c");
        assert_eq!(n.normalise("/a/bc").unwrap().as_str(), "/bc");
        let n = Normaliser::new(["/a/b", "/a"]).unwrap();
        assert_eq!(n.normalise("/a/b/c").unwrap().as_str(), "/c");
    }

    #[test]
    fn without_root_strips_what_normalise_strips() {
        let n = Normaliser::new(["/a", "/a/b", "/commandcenter/api"]).unwrap();
        assert_eq!(n.without_root("/a/b/c"), "/c");
        assert_eq!(n.without_root("/a/bc"), "/bc");
        assert_eq!(n.without_root("/a"), "/");
        assert_eq!(n.without_root("/commandcenter/api/login"), "/login");
        assert_eq!(
            n.without_root("/commandcenter/apix/login"),
            "/commandcenter/apix/login"
        );
        assert_eq!(n.without_root("/x/a"), "/x/a");
        assert_eq!(Normaliser::without_roots().without_root("/a/b"), "/a/b");
        for raw in ["/a/b/c", "/a/bc", "/a", "/commandcenter/api/x", "/x"] {
            assert_eq!(
                n.normalise(raw).unwrap().as_str(),
                n.without_root(raw),
                "{raw}"
            );
        }
    }

    #[test]
    fn new_rejects_bad_roots() {
        assert_eq!(
            Normaliser::new(["/ok", "api"]).unwrap_err(),
            PathError::NotAbsolute
        );
        assert_eq!(Normaliser::new(["/"]).unwrap_err(), PathError::EmptyRoot);
        assert_eq!(Normaliser::new(["//"]).unwrap_err(), PathError::EmptyRoot);
        assert_eq!(
            Normaliser::new(["/api?x"]).unwrap_err(),
            PathError::QueryOrFragment
        );
        assert_eq!(
            Normaliser::new(["/api#x"]).unwrap_err(),
            PathError::QueryOrFragment
        );
        assert_eq!(
            Normaliser::new(["/a/../b"]).unwrap_err(),
            PathError::DotSegment
        );
    }

    #[test]
    fn default_matches_new_with_default_roots() {
        let explicit = Normaliser::new(["/CommandCenter/API", "/WebConsole/API"]).unwrap();
        let default = Normaliser::default();
        for raw in [
            "/commandcenter/api/x",
            "/webconsole/api",
            "/webconsole/apix",
            "/x",
        ] {
            assert_eq!(explicit.normalise(raw), default.normalise(raw), "{raw}");
        }
    }

    #[test]
    fn errors_have_messages() {
        let all = [
            PathError::NotAbsolute,
            PathError::BadEscape,
            PathError::EncodedSeparator,
            PathError::Backslash,
            PathError::Nul,
            PathError::DotSegment,
            PathError::InvalidUtf8,
            PathError::DoubleEncoding,
            PathError::QueryOrFragment,
            PathError::EmptyRoot,
            PathError::Fragment,
            PathError::ControlCharacter,
        ];
        let messages: Vec<String> = all.iter().map(ToString::to_string).collect();
        for (i, m) in messages.iter().enumerate() {
            assert!(!m.is_empty());
            assert!(!messages[..i].contains(m), "duplicate message {m}");
        }
    }

    // ---------- PathRule ----------

    #[test]
    fn rule_matches_whole_segments() {
        let r = rule("/Client");
        assert_eq!(r.as_str(), "/client");
        assert!(r.matches(&np("/client")));
        assert!(r.matches(&np("/client/5")));
        assert!(r.matches(&np("/CLIENT/5/x")));
        assert!(r.matches(&np("/commandcenter/api/Client/5?x")));
        assert!(!r.matches(&np("/clientgroup")));
        assert!(!r.matches(&np("/clients")));
        assert!(!r.matches(&np("/clientx")));
        assert!(!r.matches(&np("/")));
        assert!(!r.matches(&np("/x/client")));
        assert!(!r.matches(&np("/clien")));
    }

    #[test]
    fn slash_rule_matches_everything() {
        let r = rule("/");
        assert_eq!(r.as_str(), "/");
        for raw in ["/", "/client", "/a/b/c", "/clientgroup/1"] {
            assert!(r.matches(&np(raw)), "{raw}");
        }
        // The bare root of the web service is the same rule.
        assert_eq!(rule("/commandcenter/api/"), r);
    }

    #[test]
    fn multi_segment_rule() {
        let r = rule("/V4/ServerGroup");
        assert!(r.matches(&np("/v4/servergroup/3")));
        assert!(r.matches(&np("/v4/servergroup")));
        assert!(!r.matches(&np("/v4/server")));
        assert!(!r.matches(&np("/v4/servergroups")));
        assert!(!r.matches(&np("/v4")));
    }

    #[test]
    fn rule_is_normalised_like_requests() {
        assert_eq!(rule("/webconsole/api//Client/").as_str(), "/client");
        assert_eq!(rule("/%43lient").as_str(), "/client");
    }

    #[test]
    fn rule_rejects_query_fragment_and_bad_paths() {
        let n = Normaliser::default();
        assert_eq!(
            PathRule::parse(&n, "/Client?x=1"),
            Err(PathError::QueryOrFragment)
        );
        assert_eq!(
            PathRule::parse(&n, "/Client#x"),
            Err(PathError::QueryOrFragment)
        );
        assert_eq!(
            PathRule::parse(&n, "/Client/.."),
            Err(PathError::DotSegment)
        );
        assert_eq!(PathRule::parse(&n, "Client"), Err(PathError::NotAbsolute));
        assert_eq!(PathRule::parse(&n, ""), Err(PathError::NotAbsolute));
        // An encoded '?' is data, not a query.
        assert_eq!(PathRule::parse(&n, "/a%3fb").unwrap().as_str(), "/a?b");
    }

    // ---------- Method ----------

    #[test]
    fn method_parse_and_as_str() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Some(m));
            assert_eq!(Method::parse(&m.as_str().to_ascii_lowercase()), Some(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(Method::parse("gEt"), Some(Method::Get));
        assert_eq!(Method::parse("Options"), Some(Method::Options));
        assert_eq!(Method::parse("FETCH"), None);
        assert_eq!(Method::parse(" GET"), None);
        assert_eq!(Method::parse(""), None);
        assert_eq!(Method::parse("GETS"), None);
    }

    // ---------- EndpointRule ----------

    #[test]
    fn endpoint_with_method() {
        let e = endpoint("GET /Client");
        assert_eq!(e.method(), Some(Method::Get));
        assert_eq!(e.path().as_str(), "/client");
        assert_eq!(e.original(), "GET /Client");
        let p = np("/client/5");
        assert!(e.allows("GET", &p));
        assert!(e.allows("get", &p));
        assert!(e.allows("Get", &p));
        assert!(!e.allows("POST", &p));
        assert!(!e.allows("HEAD", &p));
        assert!(!e.allows("FETCH", &p));
        assert!(!e.allows("", &p));
        assert!(!e.allows(" GET", &p));
        assert!(!e.allows("GET", &np("/clientgroup/5")));
    }

    #[test]
    fn endpoint_without_method_allows_any_method() {
        let e = endpoint("/Client");
        assert_eq!(e.method(), None);
        let p = np("/client/5");
        for m in ["GET", "post", "DELETE", "FETCH", "BREW", ""] {
            assert!(e.allows(m, &p), "{m}");
        }
        assert!(!e.allows("GET", &np("/clients")));
    }

    #[test]
    fn endpoint_lowercase_method_and_extra_spaces() {
        let e = endpoint("  GET   /Client  ");
        assert_eq!(e.method(), Some(Method::Get));
        assert_eq!(e.original(), "GET   /Client");
        assert!(e.allows("GET", &np("/client")));
        let e = endpoint("\tpatch\t/V4/X\n");
        assert_eq!(e.method(), Some(Method::Patch));
        assert_eq!(e.path().as_str(), "/v4/x");
        assert_eq!(e.to_string(), "patch\t/V4/X");
    }

    #[test]
    fn endpoint_errors() {
        let n = Normaliser::default();
        assert_eq!(EndpointRule::parse(&n, ""), Err(EndpointError::Empty));
        assert_eq!(EndpointRule::parse(&n, "   "), Err(EndpointError::Empty));
        assert_eq!(
            EndpointRule::parse(&n, " FETCH /x "),
            Err(EndpointError::UnknownMethod {
                entry: "FETCH /x".to_owned(),
                method: "FETCH".to_owned(),
            })
        );
        assert_eq!(
            EndpointRule::parse(&n, "GET"),
            Err(EndpointError::MissingPath {
                entry: "GET".to_owned()
            })
        );
        assert_eq!(
            EndpointRule::parse(&n, " get "),
            Err(EndpointError::MissingPath {
                entry: "get".to_owned()
            })
        );
        assert_eq!(
            EndpointRule::parse(&n, "GET /a /b"),
            Err(EndpointError::TooManyParts {
                entry: "GET /a /b".to_owned()
            })
        );
        assert_eq!(
            EndpointRule::parse(&n, "/a GET"),
            Err(EndpointError::TooManyParts {
                entry: "/a GET".to_owned()
            })
        );
        assert_eq!(
            EndpointRule::parse(&n, "Client"),
            Err(EndpointError::Path {
                entry: "Client".to_owned(),
                reason: PathError::NotAbsolute
            })
        );
        assert_eq!(
            EndpointRule::parse(&n, "GET /Client/../Job"),
            Err(EndpointError::Path {
                entry: "GET /Client/../Job".to_owned(),
                reason: PathError::DotSegment
            })
        );
        assert_eq!(
            EndpointRule::parse(&n, "GET /Client?x"),
            Err(EndpointError::Path {
                entry: "GET /Client?x".to_owned(),
                reason: PathError::QueryOrFragment
            })
        );
    }

    #[test]
    fn endpoint_error_messages_quote_the_entry() {
        let n = Normaliser::default();
        let msg = EndpointRule::parse(&n, "FETCH /x").unwrap_err().to_string();
        assert!(
            msg.contains("\"FETCH /x\"") && msg.contains("\"FETCH\""),
            "{msg}"
        );
        let msg = EndpointRule::parse(&n, "GET").unwrap_err().to_string();
        assert!(msg.contains("\"GET\""), "{msg}");
        let msg = EndpointRule::parse(&n, "GET /a/..")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("\"GET /a/..\""), "{msg}");
        assert!(msg.contains(&PathError::DotSegment.to_string()), "{msg}");
        let msg = EndpointRule::parse(&n, "/a /b").unwrap_err().to_string();
        assert!(msg.contains("\"/a /b\""), "{msg}");
        assert!(!EndpointError::Empty.to_string().is_empty());
        // Control characters in an entry are escaped, not written raw to logs.
        let msg = EndpointRule::parse(&n, "X\u{1b}[31m /a")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains('\u{1b}'), "{msg}");
    }

    // ---------- property tests ----------

    /// A segment that normalises to itself apart from case.
    fn plain_segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_~-]{1,8}"
    }

    /// A valid absolute path from `segments`, with random separators and an
    /// optional trailing slash.
    fn plain_path() -> impl Strategy<Value = String> {
        (
            prop::collection::vec((plain_segment(), prop::bool::ANY), 0..6),
            prop::bool::ANY,
        )
            .prop_map(|(segs, trailing)| {
                let mut s = String::new();
                for (seg, double) in segs {
                    s.push_str(if double { "//" } else { "/" });
                    s.push_str(&seg);
                }
                if trailing || s.is_empty() {
                    s.push('/');
                }
                s
            })
    }

    /// Random text built from pieces that exercise every rule.
    fn messy_input() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => plain_segment(),
            4 => Just("/".to_owned()),
            1 => Just("//".to_owned()),
            1 => Just(".".to_owned()),
            1 => Just("..".to_owned()),
            1 => Just(";".to_owned()),
            1 => Just("%2e".to_owned()),
            1 => Just("%2E".to_owned()),
            1 => Just("%41".to_owned()),
            1 => Just("%25".to_owned()),
            1 => Just("%2f".to_owned()),
            1 => Just("%5C".to_owned()),
            1 => Just("%00".to_owned()),
            1 => Just("%3f".to_owned()),
            1 => Just("%23".to_owned()),
            1 => Just("%c3%a9".to_owned()),
            1 => Just("%ff".to_owned()),
            1 => Just("%".to_owned()),
            1 => Just("?".to_owned()),
            1 => Just("#".to_owned()),
            1 => Just("\\".to_owned()),
            1 => Just("É".to_owned()),
            1 => Just("%20".to_owned()),
            1 => Just(" ".to_owned()),
            1 => Just("%09".to_owned()),
            2 => Just("/commandcenter/api".to_owned()),
            2 => Just("/WebConsole/API/".to_owned()),
        ];
        (
            prop::bool::weighted(0.9),
            prop::collection::vec(piece, 0..10),
        )
            .prop_map(|(slash, pieces)| {
                let mut s = if slash { "/".to_owned() } else { String::new() };
                s.extend(pieces);
                s
            })
    }

    /// Inputs made to take the one-pass fast path of `normalise_unrooted`:
    /// absolute, with mixed case, repeated and trailing '/', dots and ';'
    /// inside segments, spaces and non-ASCII letters, web-service roots, and
    /// a query of (nearly) anything. One in five gets one piece that sends it
    /// to the reference instead (a dot segment, '%', '\\', '#', a control
    /// character), so that where the fast path stops is checked too.
    fn fast_input() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            6 => plain_segment(),
            4 => Just("/".to_owned()),
            2 => Just("//".to_owned()),
            1 => "[a-zA-Z]{1,3}\\.[a-zA-Z]{0,3}",
            1 => Just("..x".to_owned()),
            1 => Just(".well-known".to_owned()),
            1 => Just("...a".to_owned()),
            1 => Just("a;b=1".to_owned()),
            1 => Just(";".to_owned()),
            1 => Just(" ".to_owned()),
            1 => Just("É".to_owned()),
            1 => Just("\u{a0}".to_owned()),
            2 => Just("/CommandCenter/API".to_owned()),
            1 => Just("/webconsole/api/".to_owned()),
        ];
        let query = prop::option::weighted(0.3, "[a-zA-Z0-9=&%/.\\\\ ?]{0,12}");
        let stop = prop_oneof![
            Just("/.."),
            Just("/."),
            Just("/.. "),
            Just("/..;x"),
            Just("%41"),
            Just("%2e"),
            Just("\\"),
            Just("\t"),
            Just("\u{7f}"),
            Just("#"),
            Just("?#"),
        ];
        (
            prop::collection::vec(piece, 0..10),
            query,
            prop::option::weighted(0.2, (stop, any::<prop::sample::Index>())),
        )
            .prop_map(|(pieces, query, stop)| {
                let mut s = "/".to_owned();
                s.extend(pieces);
                if let Some(q) = query {
                    s.push('?');
                    s.push_str(&q);
                }
                match stop {
                    Some((piece, at)) => insert_at(&s, at, piece),
                    None => s,
                }
            })
    }

    /// Whether `normalise_unrooted` answers `raw` on its fast path (the
    /// conditions it checks before handing over to the reference).
    fn takes_fast_path(raw: &str) -> bool {
        let path = raw.split('?').next().unwrap_or(raw);
        path.starts_with('/')
            && !raw.contains('#')
            && !path
                .bytes()
                .any(|b| b == b'%' || b == b'\\' || b == 0 || is_control(b))
            && !path.split('/').any(is_dot_segment)
    }

    /// Whether a normal form holds characters that a second normalisation
    /// reads differently (decoded '%', '?', '#').
    fn rereads_differently(p: &str) -> bool {
        p.contains(['%', '?', '#'])
    }

    /// Strips one default root from an already-normal path, as a second
    /// `Normaliser::default().normalise` pass would.
    fn strip_default_root(p: &str) -> String {
        for root in DEFAULT_ROOTS {
            if p == root {
                return "/".to_owned();
            }
            if let Some(rest) = p.strip_prefix(root) {
                if rest.starts_with('/') {
                    return rest.to_owned();
                }
            }
        }
        p.to_owned()
    }

    /// Percent-encodes '.' in random case, or leaves it raw.
    fn dot() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("."), Just("%2e"), Just("%2E")]
    }

    /// A dot segment: ".", ".." (each dot raw or encoded), maybe with ";…".
    fn dot_segment() -> impl Strategy<Value = String> {
        (
            dot(),
            prop::option::of(dot()),
            prop::option::of("[a-z0-9=]{0,6}"),
        )
            .prop_map(|(a, b, params)| {
                let mut s = format!("{a}{}", b.unwrap_or(""));
                if let Some(p) = params {
                    s.push(';');
                    s.push_str(&p);
                }
                s
            })
    }

    /// The one-pass fast path and the step-by-step reference agree, answers
    /// and refusals alike, on inputs most of which take the fast path: an
    /// input that goes to the reference on both sides proves nothing, so
    /// the share that took it is asserted too.
    #[test]
    fn fast_path_agrees_with_reference() {
        use std::cell::Cell;
        let (cases, fast) = (Cell::new(0u32), Cell::new(0u32));
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 512,
            ..ProptestConfig::default()
        });
        runner
            .run(&fast_input(), |raw| {
                cases.set(cases.get() + 1);
                fast.set(fast.get() + u32::from(takes_fast_path(&raw)));
                prop_assert_eq!(normalise_unrooted(&raw), normalise_careful(&raw));
                Ok(())
            })
            .unwrap();
        let (cases, fast) = (cases.get(), fast.get());
        println!("{fast} of {cases} inputs took the fast path");
        assert!(
            fast * 10 >= cases * 7,
            "only {fast} of {cases} inputs took the fast path"
        );
        assert!(fast < cases, "no input went to the reference");
    }

    /// Inserts `piece` into `path` at a char boundary chosen by `at`, after
    /// the leading '/'.
    fn insert_at(path: &str, at: prop::sample::Index, piece: &str) -> String {
        let boundaries: Vec<usize> = (1..=path.len())
            .filter(|&i| path.is_char_boundary(i))
            .collect();
        let i = boundaries[at.index(boundaries.len())];
        format!("{}{piece}{}", &path[..i], &path[i..])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The same on inputs of any characters, with '/' made common.
        #[test]
        fn fast_path_agrees_on_anything(raw in "(/|[a-zA-Z.;%?#\\\\\x00\t é\u{a0}]){0,24}") {
            prop_assert_eq!(normalise_unrooted(&raw), normalise_careful(&raw));
        }

        /// (a) Without roots, a normal form is a fixed point, except that
        /// decoded '%', '?' and '#' are read afresh by a second pass.
        #[test]
        fn idempotent_without_roots(raw in messy_input()) {
            let n = bare();
            if let Ok(p) = n.normalise(&raw) {
                if !rereads_differently(p.as_str()) {
                    prop_assert_eq!(n.normalise(p.as_str()), Ok(p));
                }
            }
        }

        /// (a) Plain paths always normalise, and their normal form is a fixed point.
        #[test]
        fn plain_paths_are_idempotent(raw in plain_path()) {
            let n = bare();
            let p = n.normalise(&raw);
            prop_assert!(p.is_ok(), "{raw:?} refused: {p:?}");
            let p = p.unwrap();
            let segs: Vec<String> = raw
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            prop_assert_eq!(p.as_str(), format!("/{}", segs.join("/")));
            prop_assert_eq!(n.normalise(p.as_str()), Ok(p));
        }

        /// (a) With roots, a second pass is not a no-op: it strips one more
        /// root when the result still starts with one, and otherwise returns
        /// the same path. The result is always a fixed point of a rootless
        /// normaliser (up to '%', '?', '#').
        #[test]
        fn second_pass_with_roots_strips_at_most_one_more_root(raw in messy_input()) {
            let n = Normaliser::default();
            if let Ok(p) = n.normalise(&raw) {
                if !rereads_differently(p.as_str()) {
                    prop_assert_eq!(bare().normalise(p.as_str()), Ok(p.clone()));
                    let again = n.normalise(p.as_str());
                    let expected = strip_default_root(p.as_str());
                    prop_assert_eq!(again.as_ref().map(NormalPath::as_str), Ok(expected.as_str()));
                    if expected == p.as_str() {
                        prop_assert_eq!(again, Ok(p));
                    }
                }
            }
        }

        /// (a) With roots: a path that still starts with a root after one
        /// pass (because it was sent with the root twice) loses that root on a
        /// second pass, so normalising twice is not the same as once.
        #[test]
        fn doubled_root_is_stripped_again(
            first in prop_oneof![Just("/commandcenter/api"), Just("/WEBCONSOLE/api/")],
            second in prop_oneof![Just("/CommandCenter/Api"), Just("//webconsole/api")],
            rest in plain_path(),
        ) {
            let n = Normaliser::default();
            let raw = format!("{first}{second}{rest}");
            let once = n.normalise(&raw).unwrap();
            let rest_normal = n.normalise(&rest).unwrap();
            let expected_once = if rest_normal.as_str() == "/" {
                second.trim_start_matches('/').to_ascii_lowercase()
            } else {
                format!("{}{}", second.trim_start_matches('/').to_ascii_lowercase(), rest_normal.as_str())
            };
            prop_assert_eq!(once.as_str(), format!("/{expected_once}"));
            prop_assert_eq!(n.normalise(once.as_str()), Ok(rest_normal));
        }

        /// (b) A dot segment anywhere is refused.
        #[test]
        fn dot_segments_never_normalise(
            segs in prop::collection::vec(plain_segment(), 0..5),
            at in any::<prop::sample::Index>(),
            bad in dot_segment(),
            trailing in prop::bool::ANY,
        ) {
            let mut segs = segs;
            let i = at.index(segs.len() + 1);
            segs.insert(i, bad);
            let mut raw = format!("/{}", segs.join("/"));
            if trailing {
                raw.push('/');
            }
            prop_assert_eq!(bare().normalise(&raw), Err(PathError::DotSegment));
            prop_assert_eq!(Normaliser::default().normalise(&raw), Err(PathError::DotSegment));
            let prefixed = format!("/commandcenter/api{raw}");
            prop_assert_eq!(Normaliser::default().normalise(&prefixed), Err(PathError::DotSegment));
        }

        /// (b) An encoded separator anywhere in the path is refused.
        #[test]
        fn encoded_separators_never_normalise(
            path in plain_path(),
            at in any::<prop::sample::Index>(),
            bad in prop_oneof![Just("%2f"), Just("%2F"), Just("%5c"), Just("%5C")],
        ) {
            let raw = insert_at(&path, at, bad);
            prop_assert_eq!(Normaliser::default().normalise(&raw), Err(PathError::EncodedSeparator));
            prop_assert_eq!(bare().normalise(&raw), Err(PathError::EncodedSeparator));
        }

        /// (b) A NUL anywhere in the path, raw or encoded, is refused.
        #[test]
        fn nul_never_normalises(
            path in plain_path(),
            at in any::<prop::sample::Index>(),
            bad in prop_oneof![Just("\0"), Just("%00")],
        ) {
            let raw = insert_at(&path, at, bad);
            prop_assert_eq!(Normaliser::default().normalise(&raw), Err(PathError::Nul));
            prop_assert_eq!(bare().normalise(&raw), Err(PathError::Nul));
        }

        /// (b) A raw backslash anywhere in the path is refused.
        #[test]
        fn backslash_never_normalises(path in plain_path(), at in any::<prop::sample::Index>()) {
            let raw = insert_at(&path, at, "\\");
            prop_assert_eq!(Normaliser::default().normalise(&raw), Err(PathError::Backslash));
        }

        /// (c) "/client" never matches a first segment that merely starts with "client".
        #[test]
        fn client_rule_needs_whole_segment(
            first in prop_oneof![
                Just("clientgroup".to_owned()),
                Just("clients".to_owned()),
                "[a-z0-9]{1,8}".prop_map(|s| format!("client{s}")),
            ],
            upper in prop::collection::vec(prop::bool::ANY, 16),
            rest in prop::collection::vec(plain_segment(), 0..4),
            root in prop_oneof![Just(""), Just("/commandcenter/api"), Just("/WebConsole/Api")],
        ) {
            let first: String = first
                .chars()
                .zip(upper.iter().copied().chain(std::iter::repeat(false)))
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            let mut raw = format!("{root}/{first}");
            for seg in &rest {
                raw.push('/');
                raw.push_str(seg);
            }
            let n = Normaliser::default();
            let r = PathRule::parse(&n, "/client").unwrap();
            let p = n.normalise(&raw);
            prop_assert!(p.is_ok(), "{raw:?} refused: {p:?}");
            prop_assert!(!r.matches(&p.unwrap()), "{raw:?}");
        }

        /// (d) A path is matched by the rule made of any prefix of its segments,
        /// and not by a rule with one more segment than the path has.
        #[test]
        fn prefix_rules_match(
            segs in prop::collection::vec(plain_segment(), 1..6),
            k in any::<prop::sample::Index>(),
            extra in plain_segment(),
        ) {
            let n = Normaliser::default();
            let k = k.index(segs.len() + 1);
            let path = n.normalise(&format!("/{}", segs.join("/"))).unwrap();
            let rule_raw = format!("/{}", segs[..k].join("/").to_ascii_uppercase());
            let r = PathRule::parse(&n, &rule_raw).unwrap();
            prop_assert!(r.matches(&path), "rule {rule_raw:?} vs {path:?}");
            let longer = PathRule::parse(&n, &format!("/{}/{extra}", segs.join("/"))).unwrap();
            prop_assert!(!longer.matches(&path));
            let with_method = EndpointRule::parse(&n, &format!("get {rule_raw}")).unwrap();
            prop_assert!(with_method.allows("GET", &path));
            prop_assert!(!with_method.allows("POST", &path));
        }
    }
}
