//! Token scopes: the five `tokenType`s and what each may call.
//!
//! Paths are compared in normal form (see [`crate::path`]): a request path is
//! normalised once per check, then matched against prefix rules on whole
//! segments. SCIM, 1-Touch and Hyperscale rules come from the policy
//! configuration ([`ScopeRules`]); Custom rules are the token's own entries.

use crate::path::{EndpointError, EndpointRule, NormalPath, Normaliser, PathError, PathRule};

/// The scope families of CONTRACT §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// Every path of the protected API (`tokenType` 0 or 2).
    All,
    /// The SCIM prefixes (`tokenType` 1).
    Scim,
    /// The token's own endpoint list (`tokenType` 3).
    Custom,
    /// The 1-Touch recovery paths (`tokenType` 4).
    OneTouch,
    /// The Hyperscale prefixes (`tokenType` 5).
    Hyperscale,
}

impl ScopeKind {
    /// Whether tokens of this kind get a refresh token and are renewed.
    pub fn refreshable(self) -> bool {
        matches!(
            self,
            ScopeKind::All | ScopeKind::Custom | ScopeKind::Hyperscale
        )
    }

    /// Whether tokens of this kind carry their own `apiEndpoints` (Custom):
    /// every other kind's paths come from the configuration.
    pub fn takes_endpoints(self) -> bool {
        self == ScopeKind::Custom
    }

    /// A human name, for messages.
    pub fn label(self) -> &'static str {
        match self {
            ScopeKind::All => "All",
            ScopeKind::Scim => "Microsoft SCIM",
            ScopeKind::Custom => "Custom",
            ScopeKind::OneTouch => "1-Touch recovery",
            ScopeKind::Hyperscale => "Hyperscale",
        }
    }
}

/// The wire number of a scope (`tokenType`). Both 0 and 2 mean All; the
/// number a client sent is kept so that it reads back what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenType(u8);

impl TokenType {
    /// All, as Tessera writes it when a client names none.
    pub const ALL: TokenType = TokenType(2);
    /// Microsoft SCIM.
    pub const SCIM: TokenType = TokenType(1);
    /// Custom.
    pub const CUSTOM: TokenType = TokenType(3);
    /// 1-Touch recovery.
    pub const ONE_TOUCH: TokenType = TokenType(4);
    /// Hyperscale.
    pub const HYPERSCALE: TokenType = TokenType(5);

    /// The highest wire number.
    const MAX: u8 = 5;

    /// Accepts the wire numbers 0 to 5.
    pub fn from_number(n: i64) -> Option<Self> {
        u8::try_from(n)
            .ok()
            .filter(|n| *n <= Self::MAX)
            .map(TokenType)
    }

    /// Every wire number a client may send, in order: what a client that
    /// offers a choice of scopes lists (`GET /V4/AccessToken/Policy`).
    pub fn every() -> impl Iterator<Item = TokenType> {
        (0..=Self::MAX).map(TokenType)
    }

    /// The lowest number of the same scope family, when that is another
    /// number: 2 is the same as 0 (both All). `None` for every other number.
    pub fn same_as(self) -> Option<TokenType> {
        TokenType::every()
            .find(|t| t.kind() == self.kind())
            .filter(|t| *t != self)
    }

    /// The wire number.
    pub fn number(self) -> u8 {
        self.0
    }

    /// The scope family.
    pub fn kind(self) -> ScopeKind {
        match self.0 {
            1 => ScopeKind::Scim,
            3 => ScopeKind::Custom,
            4 => ScopeKind::OneTouch,
            5 => ScopeKind::Hyperscale,
            _ => ScopeKind::All,
        }
    }
}

/// The configured path rules of the fixed scopes, parsed once at start.
#[derive(Debug, Clone)]
pub struct ScopeRules {
    scim: Vec<PathRule>,
    one_touch: Vec<PathRule>,
    hyperscale: Vec<PathRule>,
}

impl ScopeRules {
    /// Parses the SCIM, 1-Touch and Hyperscale path lists.
    pub fn new(
        scim: &[String],
        one_touch: &[String],
        hyperscale: &[String],
    ) -> Result<Self, PathError> {
        let parse = |list: &[String]| -> Result<Vec<PathRule>, PathError> {
            let n = Normaliser::without_roots();
            list.iter().map(|p| PathRule::parse(&n, p)).collect()
        };
        Ok(ScopeRules {
            scim: parse(scim)?,
            one_touch: parse(one_touch)?,
            hyperscale: parse(hyperscale)?,
        })
    }
}

/// What a token may call: its type and, for Custom, its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    token_type: TokenType,
    endpoints: Vec<EndpointRule>,
}

impl Scope {
    /// A scope of `token_type` with `endpoints` (kept only for Custom). The
    /// policy has checked the entries' number; this only assembles.
    pub fn new(token_type: TokenType, endpoints: Vec<EndpointRule>) -> Self {
        let endpoints = if token_type.kind().takes_endpoints() {
            endpoints
        } else {
            Vec::new()
        };
        Scope {
            token_type,
            endpoints,
        }
    }

    /// Rebuilds a scope from what a store kept: the wire number and the
    /// entries as written. A store that returns something unparsable is
    /// corrupt; the caller fails closed.
    pub fn from_stored(token_type: i64, endpoints: &[String]) -> Result<Self, ScopeError> {
        let t = TokenType::from_number(token_type).ok_or(ScopeError::UnknownType(token_type))?;
        let endpoints = parse_endpoints(endpoints)?;
        Ok(Scope::new(t, endpoints))
    }

    /// The wire number.
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }

    /// The scope family.
    pub fn kind(&self) -> ScopeKind {
        self.token_type.kind()
    }

    /// Custom entries (empty for other kinds).
    pub fn endpoints(&self) -> &[EndpointRule] {
        &self.endpoints
    }

    /// The Custom entries as written, for stores and answers.
    pub fn endpoint_strings(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|e| e.original().to_string())
            .collect()
    }

    /// Whether this scope allows `method` on the normalised `path`.
    pub fn allows(&self, rules: &ScopeRules, method: &str, path: &NormalPath) -> bool {
        let any = |list: &[PathRule]| list.iter().any(|r| r.matches(path));
        match self.kind() {
            ScopeKind::All => true,
            ScopeKind::Scim => any(&rules.scim),
            ScopeKind::OneTouch => any(&rules.one_touch),
            ScopeKind::Hyperscale => any(&rules.hyperscale),
            ScopeKind::Custom => self.endpoints.iter().any(|e| e.allows(method, path)),
        }
    }
}

/// Parses Custom entries. Rules are parsed without stripping web-service
/// roots (the policy refuses entries that start with one), so that a stored
/// rule means the same whatever the server's root configuration.
pub fn parse_endpoints(entries: &[String]) -> Result<Vec<EndpointRule>, ScopeError> {
    let n = Normaliser::without_roots();
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| EndpointRule::parse(&n, e).map_err(|err| ScopeError::Endpoint(i, err)))
        .collect()
}

/// Why a stored or requested scope is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A `tokenType` outside 0–5.
    #[error("unknown tokenType {0} (expected 0 to 5)")]
    UnknownType(i64),
    /// A bad Custom entry, with its index.
    #[error("apiEndpoints[{0}]: {1}")]
    Endpoint(usize, EndpointError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_is_listed_and_only_two_is_an_alias() {
        let numbers: Vec<u8> = TokenType::every().map(TokenType::number).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5]);
        assert!(TokenType::every().all(|t| TokenType::from_number(t.number().into()) == Some(t)));
        assert_eq!(TokenType::from_number(6), None);
        let aliases: Vec<(u8, u8)> = TokenType::every()
            .filter_map(|t| t.same_as().map(|s| (t.number(), s.number())))
            .collect();
        assert_eq!(aliases, [(2, 0)]);
    }

    #[test]
    fn only_custom_takes_endpoints() {
        let takes: Vec<u8> = TokenType::every()
            .filter(|t| t.kind().takes_endpoints())
            .map(TokenType::number)
            .collect();
        assert_eq!(takes, [3]);
        let refreshable: Vec<u8> = TokenType::every()
            .filter(|t| t.kind().refreshable())
            .map(TokenType::number)
            .collect();
        assert_eq!(refreshable, [0, 2, 3, 5]);
    }
}
