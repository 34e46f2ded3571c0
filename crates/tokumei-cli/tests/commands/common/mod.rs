//! Helpers shared by the CLI's end-to-end tests (each test binary uses some of them).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::assert::Assert;
use assert_cmd::Command;

/// What a command printed on standard output.
pub fn stdout(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).to_string()
}

/// What a command printed on standard error.
pub fn stderr(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).to_string()
}

/// Registers a user through `tokumei user add` (run by `cmd`, which carries the home's passphrase):
/// their key is written to `keys/NAME.key`, wrapped by `pass`.
pub fn add_user(mut cmd: Command, home: &Path, keys: &Path, name: &str, role: &str, pass: &str) {
    cmd.env("TOKUMEI_NEW_USER_PASSPHRASE", pass)
        .args([
            "user",
            "add",
            "--scrypt-log-n",
            "10",
            "--name",
            name,
            "--role",
            role,
        ])
        .args([
            "--requested-by",
            "事務局",
            "--approved-by",
            "理事長",
            "--out",
        ])
        .arg(keys)
        .arg("--home")
        .arg(home)
        .assert()
        .success();
}

/// Every file under `root` with its bytes, by relative path.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("prefix").to_path_buf();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

/// What a command printed on standard output, as JSON (`--json`).
pub fn json(a: &Assert) -> serde_json::Value {
    serde_json::from_str(&stdout(a)).unwrap_or_else(|e| panic!("{e}: {}", stdout(a)))
}

/// The operator's home passphrase in these tests.
pub const PASS: &str = "correct horse battery staple";

/// `tokumei` as the operator: the home passphrase set, no user key or passphrase inherited.
pub fn operator() -> Command {
    let mut c = Command::cargo_bin("tokumei").expect("binary");
    c.env("TOKUMEI_PASSPHRASE", PASS)
        .env_remove("TOKUMEI_USER_KEY")
        .env_remove("TOKUMEI_USER_PASSPHRASE");
    c
}
