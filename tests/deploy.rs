//! The systemd unit (`deploy/tessera.service`) stays valid and hardened:
//! `deploy/check.sh` runs `systemd-analyze verify` on it (pointed at this
//! build's binary, since verify checks that the command exists) and bounds
//! `systemd-analyze security`'s exposure score. systemd need not be
//! running. Without `systemd-analyze` it prints `SKIPPED` (a failure under
//! CI). The container image is checked by hand (see docs/DEPLOYMENT.md §7):
//! no container engine runs here.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn the_systemd_unit_verifies_clean_and_stays_hardened() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        tessera_core::testkit::skip("systemd-analyze not installed");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("sh")
        .arg(root.join("deploy/check.sh"))
        .arg(common::binary())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "deploy/check.sh: {text}");
    assert!(text.contains("systemd-analyze verify: clean"), "{text}");
}
