//! Frictions a new operator met doing the job by hand with only the README and `--help`, each fixed
//! and held here: providers are listed, and one cannot be registered without the date its notice
//! began (receipt would refuse every package of it).

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{stderr, stdout};

const PASS: &str = "correct horse battery staple";

fn tokumei() -> Command {
    let mut c = Command::cargo_bin("tokumei").expect("binary");
    c.env("TOKUMEI_PASSPHRASE", PASS);
    c
}

fn home() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let keys = dir.path().join("keys");
    tokumei()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .assert()
        .success();
    tokumei()
        .args(["provider", "init", "--id", "H01", "--out"])
        .arg(&keys)
        .assert()
        .success();
    (dir, home, keys)
}

fn add(home: &Path, keys: &Path, notice: Option<&str>) -> assert_cmd::assert::Assert {
    let mut c = tokumei();
    c.args(["provider", "add", "--id", "H01", "--name", "架空病院"])
        .args(["--address", "青森県青森市", "--representative", "院長"])
        .args(["--acquisition", "診療の過程で取得", "--home"])
        .arg(home)
        .arg("--public-key")
        .arg(keys.join("H01.pub"));
    if let Some(n) = notice {
        c.args(["--notice-start", n]);
    }
    c.assert()
}

#[test]
fn a_provider_needs_its_notice_start_and_is_listed() {
    let (_dir, home, keys) = home();
    let out = add(&home, &keys, None).code(2);
    assert!(stderr(&out).contains("--notice-start"), "{}", stderr(&out));
    add(&home, &keys, Some("2020-01-06")).success();
    let list = tokumei()
        .args(["provider", "list", "--home"])
        .arg(&home)
        .assert()
        .success();
    let text = stdout(&list);
    let mut lines = text.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("id\tname")),
        "{text}"
    );
    assert_eq!(
        lines.next(),
        Some("H01\t架空病院\t2020-01-06\t—\t0"),
        "{text}"
    );
    let json = tokumei()
        .args(["provider", "list", "--json", "--home"])
        .arg(&home)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
    assert_eq!(v[0]["id"], "H01");
    assert_eq!(v[0]["notice_start"], "2020-01-06");
    assert_eq!(v[0]["receipts"], 0);
    let log = std::fs::read_to_string(home.join("audit/entries.jsonl")).expect("log");
    assert!(log.contains("\"provider.list\""), "the listing is audited");
}
