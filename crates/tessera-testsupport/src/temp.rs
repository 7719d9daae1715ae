//! A temporary directory, removed (with everything in it) when dropped.

use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/<label>-<16 hex digits>`; panics if it cannot.
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{label}-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
