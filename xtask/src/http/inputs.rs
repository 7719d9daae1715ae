//! The files wrk's Lua scripts read, written from the pre-fill: check
//! lines, a malformed token and two unknown ones, renewal pairs per run and thread,
//! the admin's session. Throw-away secrets of a store deleted at the end;
//! never printed.

use std::fs;
use std::path::{Path, PathBuf};

use tessera_core::model::TokenId;
use tessera_core::secret::{self, SecretKind};

use super::prefill::Prefilled;
use super::Sizes;

/// Where the inputs are, and the two refused tokens (for the sanity checks).
pub struct Inputs {
    dir: PathBuf,
    /// `token \t method \t uri` lines, each allowed.
    pub check: PathBuf,
    /// One line with a token whose checksum fails.
    pub malformed: PathBuf,
    /// One line with a well-formed token whose id lies above every stored
    /// token's.
    pub unknown: PathBuf,
    /// One line with a well-formed token whose id lies below the highest
    /// stored one but is no token's.
    pub unknown_below: PathBuf,
    /// The malformed token.
    pub malformed_token: String,
    /// The unknown token.
    pub unknown_token: String,
    /// The unknown token below the highest id.
    pub unknown_below_token: String,
}

/// Writes `lines` to `path`, one a line.
fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) -> Result<(), String> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

impl Inputs {
    /// Writes every input but the session into `dir`.
    pub fn write(dir: &Path, pre: &Prefilled, sizes: &Sizes) -> Result<Inputs, String> {
        let check = dir.join("check.txt");
        write_lines(&check, pre.check_lines.iter().cloned())?;
        let any_access = pre
            .check_lines
            .first()
            .and_then(|l| l.split('\t').next())
            .ok_or("no check token")?;
        let mut malformed_token = any_access.to_string();
        let last = malformed_token.pop().ok_or("empty token")?;
        malformed_token.push(if last == 'A' { 'B' } else { 'A' });
        let malformed = dir.join("malformed.txt");
        write_lines(&malformed, [format!("{malformed_token}\tGET\t/Client/5")])?;
        let unknown_token = secret::generate(SecretKind::Access, Some(TokenId(987_654_321)))
            .map_err(|e| format!("no randomness: {e}"))?
            .expose()
            .to_string();
        let unknown = dir.join("unknown.txt");
        write_lines(&unknown, [format!("{unknown_token}\tGET\t/Client/5")])?;
        let unknown_below_token = secret::generate(SecretKind::Access, Some(pre.absent_id))
            .map_err(|e| format!("no randomness: {e}"))?
            .expose()
            .to_string();
        let unknown_below = dir.join("unknown-below.txt");
        write_lines(
            &unknown_below,
            [format!("{unknown_below_token}\tGET\t/Client/5")],
        )?;
        for (run, per_thread) in sizes.renew_runs().iter().zip(&pre.renew_pairs) {
            for (t, pairs) in per_thread.iter().enumerate() {
                let f = dir.join(format!("renew-{run}.{}.txt", t + 1));
                write_lines(&f, pairs.iter().map(|(a, r)| format!("{a}\t{r}")))?;
            }
        }
        Ok(Inputs {
            dir: dir.to_path_buf(),
            check,
            malformed,
            unknown,
            unknown_below,
            malformed_token,
            unknown_token,
            unknown_below_token,
        })
    }

    /// The prefix of the renewal files of a run (`warmup`, `measured`), to
    /// which the script adds `.N.txt` for its thread N.
    pub fn renewals(&self) -> impl Fn(&str) -> String + 'static {
        let dir = self.dir.clone();
        move |run| dir.join(format!("renew-{run}")).display().to_string()
    }

    /// Writes the session the creation case uses; its file.
    pub fn session(&self, session: &str) -> Result<PathBuf, String> {
        let path = self.dir.join("session.txt");
        write_lines(&path, [session.to_string()])?;
        Ok(path)
    }
}
