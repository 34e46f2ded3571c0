//! Frictions a new operator met doing the job by hand with only the README and `--help`, each fixed
//! and held here: providers are listed, and one cannot be registered without the date its notice
//! began (receipt would refuse every package of it).

use crate::common;

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
    audit_and_home_check_report_as_json(dir.path(), &home);
}

/// The home's entries, one JSON value each.
fn entries(home: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(home.join("audit/entries.jsonl"))
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an entry"))
        .collect()
}

/// `--json` of audit verify, checkpoint, export and verify-export, and of home check, on a home
/// that received a package of H01: the counts the log and the home hold.
fn audit_and_home_check_report_as_json(dir: &Path, home: &Path) {
    // `audit SUBCOMMAND --json ARGS...`
    let audit = |args: &[&str]| {
        let mut c = tokumei();
        c.arg("audit")
            .args(&args[..1])
            .arg("--json")
            .args(&args[1..]);
        c
    };
    let log = entries(home);
    let verified = json_of(&audit(&["verify", "--home"]).arg(home).assert().success());
    assert_eq!(
        verified["entries"].as_u64(),
        Some(log.len() as u64),
        "{verified}"
    );
    assert_eq!(
        verified["root"].as_str().map(str::len),
        Some(64),
        "{verified}"
    );
    assert_eq!(verified["extends_checkpoint"], false, "{verified}");
    let checkpoint = dir.join("checkpoint.json");
    let head = json_of(
        &audit(&["checkpoint", "--home"])
            .arg(home)
            .arg("--out")
            .arg(&checkpoint)
            .assert()
            .success(),
    );
    assert_eq!(head["size"], verified["entries"], "{head}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).expect("checkpoint")).expect("json");
    assert_eq!(written, head);
    let extends = json_of(
        &audit(&["verify", "--home"])
            .arg(home)
            .arg("--checkpoint")
            .arg(&checkpoint)
            .assert()
            .success(),
    );
    assert_eq!(extends["extends_checkpoint"], true, "{extends}");
    let of_h01 = log.iter().filter(|e| e["provider"] == "H01").count();
    assert!(of_h01 >= 1, "the receipt names its provider");
    let export = dir.join("export.json");
    let exported = json_of(
        &audit(&["export", "--provider", "H01", "--home"])
            .arg(home)
            .arg("--out")
            .arg(&export)
            .assert()
            .success(),
    );
    assert_eq!(exported["provider"], "H01", "{exported}");
    assert_eq!(
        exported["entries"].as_u64(),
        Some(of_h01 as u64),
        "{exported}"
    );
    let proven = json_of(
        &audit(&["verify-export"])
            .arg(&export)
            .arg("--operator-key")
            .arg(home.join("audit.pub"))
            .assert()
            .success(),
    );
    assert_eq!(proven["entries"], exported["entries"], "{proven}");
    assert_eq!(proven["tree_size"], exported["tree_size"], "{proven}");
    let check = |code: i32| {
        json_of(
            &tokumei()
                .args(["home", "check", "--json", "--home"])
                .arg(home)
                .assert()
                .code(code),
        )
    };
    let sound = check(0);
    let findings = sound["findings"].as_array().expect("findings");
    assert!(!findings.is_empty() && findings.iter().all(|f| f["problem"] == false));
    assert_eq!(sound["problems"], 0, "{sound}");
    std::fs::write(home.join("vault/identity/stray.txt"), "x").expect("write");
    let unsound = check(1);
    let problems = unsound["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["problem"] == true)
        .count();
    assert!(problems >= 1, "{unsound}");
    assert_eq!(
        unsound["problems"].as_u64(),
        Some(problems as u64),
        "{unsound}"
    );
}

/// `inspect --json`: per file its format, encoding, counts by record type, records and issues
/// with their positions, and the totals; the exit code is the text mode's.
#[test]
fn inspect_reports_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tokumei-formats/tests/fixtures");
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).expect("mkdir");
    std::fs::copy(fixtures.join("RECEIPTC.UKE"), good.join("RECEIPTC.UKE")).expect("copy");
    std::fs::write(good.join("notes.txt"), "no source format").expect("write");
    let read = json_of(
        &tokumei()
            .args(["inspect", "--json"])
            .arg(&good)
            .assert()
            .success(),
    );
    assert_eq!(
        (
            &read["inspected"],
            &read["not_supported"],
            &read["with_errors"]
        ),
        (&1.into(), &1.into(), &0.into()),
        "{read}"
    );
    let f = &read["files"][0];
    assert!(
        f["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("RECEIPTC.UKE")),
        "{f}"
    );
    assert!(
        f["format"].as_str().is_some_and(|x| x.contains("レセ電")),
        "{f}"
    );
    assert_eq!(f["encoding"], "Shift_JIS", "{f}");
    assert_eq!(
        (&f["records"], &f["rejected"]),
        (&1.into(), &0.into()),
        "{f}"
    );
    assert_eq!(f["lines"]["SI"], 5, "{f}");
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::copy(
        fixtures.join("RECEIPTC.UKE.utf8.txt"),
        bad.join("RECEIPTC.UKE"),
    )
    .expect("copy");
    let out = tokumei()
        .args(["inspect", "--json"])
        .arg(&bad)
        .assert()
        .code(1);
    assert!(!stdout(&out).contains("試験"), "no name from the file");
    let read = json_of(&out);
    assert_eq!(read["with_errors"], 1, "{read}");
    let f = &read["files"][0];
    assert!(f["errors"].as_u64().is_some_and(|n| n >= 1), "{f}");
    let issue = &f["issues"][0];
    assert_eq!(
        (&issue["severity"], &issue["line"]),
        (&"error".into(), &1.into()),
        "{f}"
    );
    assert!(issue["entry"].is_null(), "{f}");
    assert!(
        issue["message"]
            .as_str()
            .is_some_and(|m| m.contains("UTF-8")),
        "{f}"
    );
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
    // `--json`: the signed manifest, the file in no source format without a format or a count.
    let sealed = pack("json.tar.age", &["--json"]);
    assert!(
        stderr(&sealed).contains("identities.parquet"),
        "{}",
        stderr(&sealed)
    );
    let manifest = json_of(&sealed);
    assert_eq!(manifest["provider_id"], "H01", "{manifest}");
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{manifest}");
    let uke = files
        .iter()
        .find(|f| f["path"] == "RECEIPTC.UKE")
        .expect("the claims file");
    assert_eq!(uke["records"], 1, "{manifest}");
    let parquet = files
        .iter()
        .find(|f| f["path"] == "identities.parquet")
        .expect("the table");
    assert!(
        parquet["format"].is_null() && parquet["records"].is_null(),
        "{manifest}"
    );
    assert_eq!(
        parquet["bytes"].as_u64(),
        Some(b"PAR1 canonical table".len() as u64)
    );
}
