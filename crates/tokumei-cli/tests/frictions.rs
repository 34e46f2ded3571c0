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

/// Display width of ASCII and CJK text (a kanji or kana takes two columns).
fn unicode_width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
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
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells, ["H01", "架空病院", "2020-01-06", "—", "0"], "{text}");
    // Columns line up by display width: 架空病院 takes eight columns of a terminal.
    let at = |line: &str, word: &str| line.find(word).map(|i| unicode_width(&line[..i]));
    assert_eq!(
        at(lines[0], "notice start"),
        at(lines[1], "2020-01-06"),
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

#[test]
fn a_recipient_makes_its_key_with_tokumei_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let made = tokumei()
        .args(["key", "new", "--name", "univ", "--out"])
        .arg(&keys)
        .assert()
        .success();
    assert!(stdout(&made).contains("univ.recipient"));
    let recipient = std::fs::read_to_string(keys.join("univ.recipient")).expect("recipient");
    assert!(recipient.trim().starts_with("age1"), "{recipient}");
    let secret = std::fs::read_to_string(keys.join("univ.key")).expect("key");
    assert!(secret.starts_with("AGE-SECRET-KEY-1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join("univ.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the identity is owner-only");
    }
    let again = tokumei()
        .args(["key", "new", "--name", "univ", "--out"])
        .arg(&keys)
        .assert()
        .code(1);
    assert!(
        stderr(&again).contains("never replaced"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(keys.join("univ.key")).expect("key"),
        secret
    );
}

fn json_of(a: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_str(&stdout(a)).unwrap_or_else(|e| panic!("{e}: {}", stdout(a)))
}

/// `--json` of receive, link and opt-out: the shapes docs/json.md documents.
#[test]
fn receive_link_and_optout_report_as_json() {
    let (dir, home, keys) = home();
    add(&home, &keys, Some("2000-01-03")).success();
    let source = dir.path().join("extract");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tokumei-formats/tests/fixtures/RECEIPTC.UKE"),
        source.join("RECEIPTC.UKE"),
    )
    .expect("copy");
    let pkg = dir.path().join("p.tar.age");
    tokumei()
        .args(["package", "--extracted-on", "2027-01-04", "--to"])
        .arg(home.join("operator.recipient"))
        .arg("--provider-key")
        .arg(keys.join("H01.key"))
        .arg("--in")
        .arg(&source)
        .arg("--out")
        .arg(&pkg)
        .assert()
        .success();
    let receive = || {
        tokumei()
            .args(["receive", "--json", "--home"])
            .arg(&home)
            .arg(&pkg)
            .assert()
            .success()
    };
    let first = json_of(&receive());
    assert_eq!(first[0]["outcome"], "received", "{first}");
    assert_eq!(first[0]["provider_id"], "H01");
    let n = first[0]["records_in_manifest"].as_u64().expect("records");
    let accounted = [
        "stored",
        "quarantined",
        "refused_opted_out",
        "refused_notice_period",
    ]
    .iter()
    .map(|k| first[0][*k].as_u64().expect("count"))
    .sum::<u64>();
    assert_eq!(
        accounted, n,
        "every record is stored, quarantined or refused: {first}"
    );
    let again = json_of(&receive());
    assert_eq!(again[0]["outcome"], "already_received", "{again}");
    let link = json_of(
        &tokumei()
            .args(["link", "--json", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert_eq!(
        link["records"].as_u64(),
        first[0]["stored"].as_u64(),
        "{link}"
    );
    assert!(link["persons"].as_u64().is_some_and(|p| p >= 1), "{link}");
    let optout = json_of(
        &tokumei()
            .args([
                "optout",
                "add",
                "--json",
                "--provider",
                "H01",
                "--patient-id",
                "nobody-here",
            ])
            .args(["--requester", "self", "--received", "2025-04-01", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert_eq!(optout["requests"], 1, "{optout}");
    assert_eq!(optout["purged"]["records"], 0, "{optout}");
    let pending = json_of(
        &tokumei()
            .args(["link", "review", "--json", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(pending.is_array(), "{pending}");
}

/// A provider folder of the synthetic region holds canonical Parquet beside the native extract:
/// `package` names what receipt would quarantine, and `--exclude` leaves it out.
#[test]
fn package_names_files_in_no_source_format_and_leaves_out_what_is_excluded() {
    let (dir, home, keys) = home();
    let source = dir.path().join("extract");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tokumei-formats/tests/fixtures/RECEIPTC.UKE"),
        source.join("RECEIPTC.UKE"),
    )
    .expect("copy");
    std::fs::write(source.join("identities.parquet"), b"PAR1 canonical table").expect("write");
    let pack = |out: &str, extra: &[&str]| {
        tokumei()
            .args(["package", "--to"])
            .arg(home.join("operator.recipient"))
            .arg("--provider-key")
            .arg(keys.join("H01.key"))
            .arg("--in")
            .arg(&source)
            .arg("--out")
            .arg(dir.path().join(out))
            .args(extra)
            .assert()
            .success()
    };
    let all = pack("all.tar.age", &[]);
    assert!(stdout(&all).contains(": 2 files"), "{}", stdout(&all));
    assert!(
        stderr(&all).contains("identities.parquet") && stderr(&all).contains("--exclude"),
        "{}",
        stderr(&all)
    );
    let native = pack("native.tar.age", &["--exclude", "parquet"]);
    assert!(stdout(&native).contains(": 1 files"), "{}", stdout(&native));
    assert!(!stderr(&native).contains("warning"), "{}", stderr(&native));
}
