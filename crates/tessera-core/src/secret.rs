//! The secret format: how access tokens, refresh tokens and sessions are made,
//! recognised, and reduced to the digest that stores keep.
//!
//! A Tessera secret looks like `tess_at_42_<43 base62 chars><6 base62 chars>`:
//!
//! * `tess_at_` / `tess_rt_` / `tess_ss_` — the kind (access, refresh, session),
//!   so that a secret scanner or a person recognises it and a refresh token
//!   presented as an access token is refused without a store look-up;
//! * `42_` — the token id, in decimal (access and refresh only). It is public:
//!   it lets a store that shards by token (Redis Cluster) find the token's slot
//!   without a global index. Knowing it grants nothing;
//! * 43 base62 characters drawn from the OS CSPRNG: 43 × log2(62) ≈ 256.03 bits;
//! * a 6-character base62 CRC-32 of everything before it, so a mistyped or
//!   truncated secret is refused before any store is asked.
//!
//! Only [`Digest`]s (SHA-256 of the whole secret string) are ever stored.
//! Both [`Secret`] and [`Digest`] redact themselves in `Debug` and `Display`.

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::model::TokenId;

/// Common start of every Tessera secret; anything else is a legacy token or garbage.
pub const PREFIX: &str = "tess_";

/// Number of random base62 characters in a secret (≥ 256 bits of entropy).
const RANDOM_LEN: usize = 43;
/// Number of base62 characters of the CRC-32 checksum (62^6 > 2^32).
const CHECKSUM_LEN: usize = 6;
/// Longest decimal token id we accept (u64::MAX has 20 digits).
const MAX_ID_DIGITS: usize = 20;
/// Longest secret string we even look at; longer input is malformed at once.
pub const MAX_SECRET_LEN: usize = 128;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a secret is for. The kind is part of the secret's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// An access token: the bearer credential for the protected API.
    Access,
    /// A refresh token: renews an access token, nothing else.
    Refresh,
    /// A login session (the `Authtoken: QSDK …` value).
    Session,
}

impl SecretKind {
    /// The kind tag that follows [`PREFIX`].
    fn tag(self) -> &'static str {
        match self {
            SecretKind::Access => "at_",
            SecretKind::Refresh => "rt_",
            SecretKind::Session => "ss_",
        }
    }

    /// Access and refresh secrets carry their token's id; sessions do not.
    fn carries_id(self) -> bool {
        !matches!(self, SecretKind::Session)
    }
}

/// A secret in clear. It exists only between its creation and the answer that
/// shows it once; it never reaches a store or a log (its `Debug`/`Display`
/// print a redaction). Read it deliberately with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's text, for the one answer that shows it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Wraps a secret that came from outside (a request, an import file).
    pub fn from_presented(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The digest a store keeps for this secret.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// SHA-256 of a secret's full text: the only form in which a store holds a
/// secret. 256 bits of input entropy make a plain (unsalted, fast) hash the
/// right tool here — unlike passwords, these cannot be guessed.
///
/// Compared in constant time; `Debug`/`Display` redact it (no hash in logs).
#[derive(Clone, Copy, Eq)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `text`.
    pub fn of(text: &str) -> Self {
        Digest(Sha256::digest(text.as_bytes()).into())
    }

    /// Wraps 32 raw bytes read back from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// Parses 64 hex digits (either case), as in a legacy import file.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Digest(out))
    }

    /// The raw bytes, for a store's key or column.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, for a store's key or column (never for a log).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        s
    }
}

impl PartialEq for Digest {
    /// Constant time, so a comparison never leaks how many bytes matched.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for Digest {
    /// Consistent with `eq`: equal digests have equal bytes. One `write` of
    /// the 32 bytes, so [`DigestHasher`] can take them as they are.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// A `Hasher` for maps keyed by [`Digest`]: a digest is already a uniformly
/// random 256-bit value, so its first 8 bytes are a perfect hash and SipHash
/// would only cost time on the hot path. (HashDoS needs attacker-chosen keys
/// *stored*; stored digests come from server-made random secrets.)
#[derive(Debug, Default, Clone, Copy)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Fold in whatever comes (only digests should): first 8 bytes, mixed
        // with any state so far so that other keys still hash sensibly.
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word) ^ bytes.len() as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// `BuildHasher` for maps keyed by [`Digest`].
pub type DigestBuildHasher = std::hash::BuildHasherDefault<DigestHasher>;

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(<redacted>)")
    }
}

/// Why a presented string is not a well-formed Tessera secret of the expected kind.
/// Decided from the text alone, with no store access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Empty, too long, or not of the `tess_<kind>_…` shape.
    #[error("not a Tessera secret")]
    Shape,
    /// A well-formed secret of another kind (say, a refresh token sent as an access token).
    #[error("a Tessera secret of another kind")]
    WrongKind,
    /// The checksum does not match: a mistyped or truncated secret.
    #[error("the secret's checksum does not match")]
    Checksum,
}

/// A presented secret that passed every text check: its kind, its token id
/// (access and refresh) and its digest, ready for one store look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretKey {
    /// The kind written in the secret.
    pub kind: SecretKind,
    /// The token id written in the secret (`None` for sessions and legacy tokens).
    pub token_id: Option<TokenId>,
    /// SHA-256 of the whole presented text.
    pub digest: Digest,
}

/// Makes a fresh secret of `kind` (with `token_id` for access and refresh secrets).
///
/// Fails only when the OS random source fails, which callers must treat as the
/// service being unavailable rather than fall back to anything weaker.
pub fn generate(kind: SecretKind, token_id: Option<TokenId>) -> Result<Secret, rand::Error> {
    let mut text = String::with_capacity(MAX_SECRET_LEN);
    text.push_str(PREFIX);
    text.push_str(kind.tag());
    if kind.carries_id() {
        let id = token_id.map_or(0, |id| id.0);
        text.push_str(&id.to_string());
        text.push('_');
    }
    // Rejection sampling: bytes ≥ 248 would bias `% 62`, so they are drawn again.
    let mut filled = 0;
    let mut buf = [0u8; 64];
    while filled < RANDOM_LEN {
        OsRng.try_fill_bytes(&mut buf)?;
        for &b in &buf {
            if filled == RANDOM_LEN {
                break;
            }
            if b < 248 {
                text.push(BASE62[usize::from(b % 62)] as char);
                filled += 1;
            }
        }
    }
    let crc = checksum(text.as_bytes());
    text.push_str(&crc);
    Ok(Secret(text))
}

/// Base62 CRC-32 of `body`, left-padded to [`CHECKSUM_LEN`] characters.
fn checksum(body: &[u8]) -> String {
    let mut n = crc32fast::hash(body);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    // Every byte comes from BASE62, so this is ASCII.
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks the CRC of `body` against the 6 base62 characters in `sum` without allocating.
fn checksum_matches(body: &[u8], sum: &[u8]) -> bool {
    let mut n = crc32fast::hash(body);
    for &c in sum.iter().rev() {
        if c != BASE62[(n % 62) as usize] {
            return false;
        }
        n /= 62;
    }
    true
}

/// True when `text` begins like a Tessera secret (so it is never a legacy token).
pub fn has_tessera_prefix(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// Recognises a presented Tessera secret of kind `expected`, with no store access:
/// shape, kind, id, random part and checksum. On success the digest is computed
/// (the one SHA-256 of the check). On failure nothing is hashed.
pub fn parse(text: &str, expected: SecretKind) -> Result<SecretKey, Malformed> {
    let b = text.as_bytes();
    if b.len() > MAX_SECRET_LEN || b.len() < PREFIX.len() + 3 + RANDOM_LEN + CHECKSUM_LEN {
        return Err(Malformed::Shape);
    }
    if &b[..PREFIX.len()] != PREFIX.as_bytes() {
        return Err(Malformed::Shape);
    }
    let kind = match &b[PREFIX.len()..PREFIX.len() + 3] {
        b"at_" => SecretKind::Access,
        b"rt_" => SecretKind::Refresh,
        b"ss_" => SecretKind::Session,
        _ => return Err(Malformed::Shape),
    };
    let mut i = PREFIX.len() + 3;
    let token_id = if kind.carries_id() {
        // Decimal, no leading zero, at most u64::MAX, then '_'.
        let start = i;
        let mut id: u64 = 0;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            id = id
                .checked_mul(10)
                .and_then(|id| id.checked_add(u64::from(d - b'0')))
                .ok_or(Malformed::Shape)?;
            i += 1;
        }
        let digits = i - start;
        if digits == 0
            || digits > MAX_ID_DIGITS
            || (digits > 1 && b[start] == b'0')
            || b.get(i) != Some(&b'_')
        {
            return Err(Malformed::Shape);
        }
        i += 1;
        Some(TokenId(id))
    } else {
        None
    };
    let tail = &b[i..];
    if tail.len() != RANDOM_LEN + CHECKSUM_LEN || !all_base62(tail) {
        return Err(Malformed::Shape);
    }
    let split = b.len() - CHECKSUM_LEN;
    if !checksum_matches(&b[..split], &b[split..]) {
        return Err(Malformed::Checksum);
    }
    if kind != expected {
        return Err(Malformed::WrongKind);
    }
    Ok(SecretKey {
        kind,
        token_id,
        digest: Digest::of(text),
    })
}

/// Whether every byte is an ASCII letter or digit. Written without early exit
/// so the compiler can check many bytes at once.
fn all_base62(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &c| {
        ok & (c.is_ascii_digit() | ((c | 0x20).wrapping_sub(b'a') < 26))
    })
}

/// Password hashing (Argon2id with the crate's recommended parameters). Passwords
/// are low-entropy, so unlike token secrets they get a slow, salted hash.
pub mod password {
    use std::fmt;

    use argon2::password_hash::rand_core::OsRng as PhOsRng;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    use argon2::Argon2;

    /// An Argon2id hash in PHC string form, as stored. Redacted in `Debug`.
    #[derive(Clone, PartialEq, Eq)]
    pub struct PasswordHash(String);

    impl PasswordHash {
        /// Wraps a PHC string read back from a store.
        pub fn from_phc(phc: impl Into<String>) -> Self {
            PasswordHash(phc.into())
        }

        /// The PHC string, for a store's column.
        pub fn as_phc(&self) -> &str {
            &self.0
        }
    }

    impl fmt::Debug for PasswordHash {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("PasswordHash(<redacted>)")
        }
    }

    /// Why a password could not be hashed (the OS random source or Argon2 failed).
    #[derive(Debug, thiserror::Error)]
    #[error("password hashing failed")]
    pub struct HashFailed;

    /// Hashes `password` with a fresh salt.
    pub fn hash(password: &str) -> Result<PasswordHash, HashFailed> {
        let salt = SaltString::generate(&mut PhOsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHash(h.to_string()))
            .map_err(|_| HashFailed)
    }

    /// True when `password` matches `stored` (Argon2's comparison is constant time).
    /// A stored value that does not parse matches nothing.
    pub fn verify(password: &str, stored: &PasswordHash) -> bool {
        match argon2::PasswordHash::new(&stored.0) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Why a hash or verification handed to a [`PasswordWork`] was not done.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    pub enum WorkError {
        /// Too much hashing is waiting already: answer "busy, retry", never
        /// queue without bound (a login flood must not starve the check).
        #[error("too many password checks are waiting; try again shortly")]
        Busy,
        /// The OS random source or Argon2 failed.
        #[error("password hashing failed")]
        Failed,
    }

    /// Where Argon2 runs. A verification costs tens of milliseconds of CPU:
    /// on an async worker it would stall every request that worker holds,
    /// checks included. The service hands every hash and verification to
    /// one of these; the server's runs them on a few low-priority threads
    /// behind a bounded queue. [`Inline`] runs them on the calling thread
    /// (tests, one-shot commands).
    #[async_trait::async_trait]
    pub trait PasswordWork: Send + Sync {
        /// [`hash`], somewhere.
        async fn hash(&self, password: String) -> Result<PasswordHash, WorkError>;
        /// [`verify`], somewhere.
        async fn verify(&self, password: String, stored: PasswordHash) -> Result<bool, WorkError>;
    }

    /// Hashing on the calling thread.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Inline;

    #[async_trait::async_trait]
    impl PasswordWork for Inline {
        async fn hash(&self, password: String) -> Result<PasswordHash, WorkError> {
            hash(&password).map_err(|_| WorkError::Failed)
        }

        async fn verify(&self, password: String, stored: PasswordHash) -> Result<bool, WorkError> {
            Ok(verify(&password, &stored))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_back_with_their_id_and_digest() {
        let s = generate(SecretKind::Access, Some(TokenId(42))).unwrap();
        assert!(s.expose().starts_with("tess_at_42_"));
        let key = parse(s.expose(), SecretKind::Access).unwrap();
        assert_eq!(key.token_id, Some(TokenId(42)));
        assert_eq!(key.digest, s.digest());
        let r = generate(SecretKind::Refresh, Some(TokenId(7))).unwrap();
        assert_eq!(
            parse(r.expose(), SecretKind::Refresh).unwrap().token_id,
            Some(TokenId(7))
        );
        let ss = generate(SecretKind::Session, None).unwrap();
        assert!(ss.expose().starts_with("tess_ss_"));
        assert_eq!(
            parse(ss.expose(), SecretKind::Session).unwrap().token_id,
            None
        );
    }

    #[test]
    fn secrets_are_distinct_and_long_enough() {
        let a = generate(SecretKind::Access, Some(TokenId(1))).unwrap();
        let b = generate(SecretKind::Access, Some(TokenId(1))).unwrap();
        assert_ne!(a, b);
        let random = &a.expose()["tess_at_1_".len()..a.expose().len() - CHECKSUM_LEN];
        assert_eq!(random.len(), RANDOM_LEN);
        // 43 base62 characters carry at least 256 bits.
        assert!((RANDOM_LEN as f64) * 62f64.log2() >= 256.0);
    }

    #[test]
    fn every_single_character_typo_is_refused_without_a_store() {
        let s = generate(SecretKind::Access, Some(TokenId(1234))).unwrap();
        let text = s.expose();
        let start = "tess_at_1234_".len();
        for i in start..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(
                parse(&typo, SecretKind::Access),
                Err(Malformed::Checksum),
                "typo at {i}"
            );
        }
        // A changed id is caught by the checksum too.
        let other_id = text.replacen("_1234_", "_1235_", 1);
        assert_eq!(
            parse(&other_id, SecretKind::Access),
            Err(Malformed::Checksum)
        );
    }

    #[test]
    fn shapes_and_kinds_are_checked() {
        let r = generate(SecretKind::Refresh, Some(TokenId(3))).unwrap();
        assert_eq!(
            parse(r.expose(), SecretKind::Access),
            Err(Malformed::WrongKind)
        );
        for bad in [
            "",
            "tess_",
            "tess_at_",
            "tess_at_1_short",
            "tess_xx_1_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tess_at__aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tess_at_01_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tess_at_x1_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tess_at_1_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-",
            "Bearer tess_at_1_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(
                parse(bad, SecretKind::Access),
                Err(Malformed::Shape),
                "{bad}"
            );
        }
        let long = "tess_at_1_".to_string() + &"a".repeat(200);
        assert_eq!(parse(&long, SecretKind::Access), Err(Malformed::Shape));
        // An id past u64 is refused, not wrapped.
        let big = "tess_at_99999999999999999999_".to_string() + &"a".repeat(49);
        assert_eq!(parse(&big, SecretKind::Access), Err(Malformed::Shape));
    }

    #[test]
    fn debug_and_display_never_show_a_secret_or_digest() {
        let s = generate(SecretKind::Access, Some(TokenId(9))).unwrap();
        let text = s.expose().to_string();
        let random = &text["tess_at_9_".len()..];
        for shown in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{:?}", s.digest()),
        ] {
            assert!(!shown.contains(random), "{shown}");
            assert!(!shown.contains(&s.digest().to_hex()), "{shown}");
        }
        let key = parse(&text, SecretKind::Access).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(random) && !shown.contains(&key.digest.to_hex()));
        let h = password::hash("hunter2").unwrap();
        assert!(!format!("{h:?}").contains(h.as_phc()));
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let d = Digest::of("abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex(&d.to_hex().to_uppercase()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        assert_eq!(Digest::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = password::hash("correct horse").unwrap();
        assert!(password::verify("correct horse", &h));
        assert!(!password::verify("correct horsE", &h));
        assert!(!password::verify(
            "x",
            &password::PasswordHash::from_phc("garbage")
        ));
    }
}
