//! Opening the one store that a URL names, among the backends compiled in.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::store::Store;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL names a backend this binary was built without.
    #[error("the store URL {url:?} needs the `{feature}` feature; rebuild with `cargo build -p tessera-server --features {feature}`")]
    NotCompiled {
        /// The URL, with any password removed.
        url: String,
        /// The Cargo feature that would compile the backend in.
        feature: &'static str,
    },
    /// The URL's scheme is not one Tessera knows.
    #[error("unknown store URL {0:?}: expected sqlite://…, postgres://…, redis://… or redis+cluster://…")]
    UnknownScheme(String),
    /// The backend refused to open; its own error is the source.
    #[error("cannot open the store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Timeouts and retention handed to whichever backend opens.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bound on connecting.
    pub connect_timeout: Duration,
    /// Bound on each call (round trip).
    pub command_timeout: Duration,
    /// How long dead records stay listable (Redis key expiry).
    pub retention: Duration,
    /// Key prefix (Redis).
    pub redis_prefix: String,
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Opens the store `url` names.
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, OpenError> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Used only by the arms of backends that were not compiled in.
    #[allow(unused_variables)]
    let not_compiled = |feature| OpenError::NotCompiled {
        url: redact_url(url),
        feature,
    };
    match scheme.as_str() {
        "sqlite" => {
            #[cfg(feature = "sqlite")]
            {
                let config = tessera_sqlite::SqliteConfig {
                    command_timeout: options.command_timeout,
                    ..tessera_sqlite::SqliteConfig::new(url)
                };
                let store = tessera_sqlite::SqliteStore::open(&config)
                    .await
                    .map_err(|e| OpenError::Backend(e.into()))?;
                Ok(Arc::new(store))
            }
            #[cfg(not(feature = "sqlite"))]
            Err(not_compiled("sqlite"))
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            {
                let config = tessera_postgres::PostgresConfig {
                    connect_timeout: options.connect_timeout,
                    command_timeout: options.command_timeout,
                    ..tessera_postgres::PostgresConfig::new(url)
                };
                let store = tessera_postgres::PostgresStore::open(&config)
                    .await
                    .map_err(|e| OpenError::Backend(e.into()))?;
                Ok(Arc::new(store))
            }
            #[cfg(not(feature = "postgres"))]
            Err(not_compiled("postgres"))
        }
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {
            #[cfg(feature = "redis")]
            {
                let config = tessera_redis::RedisConfig {
                    url: url.to_string(),
                    connect_timeout: options.connect_timeout,
                    command_timeout: options.command_timeout,
                    retention: options.retention,
                    prefix: options.redis_prefix.clone(),
                };
                let store = tessera_redis::RedisStore::connect(config)
                    .await
                    .map_err(|e| OpenError::Backend(e.into()))?;
                Ok(Arc::new(store))
            }
            #[cfg(not(feature = "redis"))]
            Err(not_compiled("redis"))
        }
        _ => Err(OpenError::UnknownScheme(redact_url(url))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
