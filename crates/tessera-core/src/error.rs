//! The core's errors. The server maps [`Error`] to HTTP in exactly one place;
//! stores report [`StoreError`].

/// Everything the core refuses or fails with. Each variant corresponds to one
/// HTTP status (noted), chosen by the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad input; names the field and the limit or rule (400).
    #[error("{field}: {message}")]
    Invalid {
        /// The request field concerned, as on the wire (`renewableUntilTimestamp`).
        field: String,
        /// What is wrong, with the limit where there is one.
        message: String,
    },
    /// No valid credential, or a renewal past a limit (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid credential that may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such token or user, or not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is stored: a legacy token's edit, a taken name (409).
    #[error("{0}")]
    Conflict(String),
    /// The store cannot be reached or answered too late (503). Never an allow.
    #[error("the token store is unavailable: {0}")]
    Unavailable(String),
    /// The server has more of some costly work waiting than it takes on
    /// (password hashing under a login flood): 503 with `Retry-After`.
    #[error("{0}")]
    Busy(String),
    /// A fault on our side: a corrupt record, a failed random source (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A 400 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// What a storage backend reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, timed out or shutting down; callers answer 503 and retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken (a user name or token id already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A record that cannot be read back into the model (fail closed).
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Error::Unavailable(m),
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Corrupt(m) => Error::Internal(m),
        }
    }
}

/// Shorthand for core results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
