//! The session file and private files in general: where the session is kept
//! (`$XDG_CONFIG_HOME/tessera/session.json`, else
//! `$HOME/.config/tessera/session.json`), written atomically with mode 0600
//! from the moment it exists, and refused when group or others may read it
//! (as ssh refuses such a key).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use tessera_core::secret::Secret;

use super::ClientError;

/// A session as kept between commands: the server logged in to, who, and
/// the `Authtoken` value (`QSDK tess_ss_…`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Session {
    /// The server's base URL, as `tessera login` was given it.
    pub server: String,
    /// The user name the server answered.
    pub username: String,
    /// The `Authtoken` header value.
    #[serde(with = "kept_secret")]
    pub token: Secret,
}

/// The core's [`Secret`] is not `Serialize` (nothing secret is serialised by
/// accident): the session file is the one place this one is written, as text.
mod kept_secret {
    use serde::{Deserialize, Deserializer, Serializer};
    use tessera_core::secret::Secret;

    pub fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::from_presented)
    }
}

/// Where the session is kept; an error when neither XDG_CONFIG_HOME nor
/// HOME says where the configuration lives.
pub(super) fn path() -> Result<PathBuf, ClientError> {
    // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
    let from = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = from("XDG_CONFIG_HOME")
        .or_else(|| from("HOME").map(|h| h.join(".config")))
        .ok_or(ClientError::NoConfigDir)?;
    Ok(base.join("tessera").join("session.json"))
}

/// Reads the session; [`ClientError::NotLoggedIn`] when there is none, and
/// a refusal when the file is readable by group or others.
pub(super) fn load() -> Result<Session, ClientError> {
    let path = path()?;
    let text = match read_private(&path) {
        Ok(text) => text,
        Err(ClientError::File { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(ClientError::NotLoggedIn)
        }
        Err(e) => return Err(e),
    };
    serde_json::from_str(&text).map_err(|e| ClientError::BadSession {
        path,
        reason: e.to_string(),
    })
}

/// Keeps `session`: the directory made 0700 if missing, the file written
/// atomically with mode 0600.
pub(super) fn save(session: &Session) -> Result<PathBuf, ClientError> {
    let path = path()?;
    let dir = path.parent().expect("the session path has a directory");
    create_private_dir(dir).map_err(|source| ClientError::File {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut text = serde_json::to_string_pretty(session).expect("a session serialises");
    text.push('\n');
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// Removes the session file; `Ok(false)` when there was none.
pub(super) fn remove(path: &Path) -> Result<bool, ClientError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ClientError::File {
            action: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the session file, refusing it when group or others have any
/// access to it (the mode is read from the open file, not the path).
fn read_private(path: &Path) -> Result<String, ClientError> {
    let (text, loose) = read_secret_file(path)?;
    match loose {
        Some(mode) => Err(ClientError::UnsafeSession {
            path: path.to_path_buf(),
            mode,
        }),
        None => Ok(text),
    }
}

/// Reads a file that holds secrets, and its permission bits when group or
/// others have any access to it.
pub(super) fn read_secret_file(path: &Path) -> Result<(String, Option<u32>), ClientError> {
    let fail = |source| ClientError::File {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(fail)?;
    let loose = loose_mode(&file.metadata().map_err(fail)?);
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(fail)?;
    Ok((text, loose))
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it,
/// created with mode 0600 (never widened, then narrowed), synced, then
/// renamed over it. A reader sees the old content or the new, never a part.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(
        ".{}.tmp-{:016x}",
        name.as_deref().unwrap_or("tessera"),
        rand::rngs::OsRng.gen::<u64>()
    ));
    let written = (|| -> io::Result<()> {
        let mut file = private_options().open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    written.map_err(|source| {
        let _ = fs::remove_file(&temp);
        ClientError::File {
            action: "write",
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Options that create a new file only the user may read and write.
fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Creates `dir` (and missing parents) with mode 0700.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// The permission bits when group or others have any access.
#[cfg(unix)]
fn loose_mode(meta: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Elsewhere the file's access is the system's business.
#[cfg(not(unix))]
fn loose_mode(_: &fs::Metadata) -> Option<u32> {
    None
}
