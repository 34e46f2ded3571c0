//! Applications and the committee through the binary.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{add_user, stderr, stdout};

const PASS: &str = "correct horse battery staple";

fn cmd() -> Command {
    let mut c = Command::cargo_bin("tokumei").expect("binary");
    c.env("TOKUMEI_PASSPHRASE", PASS)
        .env_remove("TOKUMEI_USER_KEY")
        .env_remove("TOKUMEI_USER_PASSPHRASE");
    c
}

fn as_user(keys: &Path, name: &str) -> Command {
    let mut c = cmd();
    c.env("TOKUMEI_USER_KEY", keys.join(format!("{name}.key")))
        .env("TOKUMEI_USER_PASSPHRASE", format!("{name} passphrase 2026"));
    c
}

#[test]
fn an_application_is_reviewed_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let keys = dir.path().join("keys");
    cmd()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .assert()
        .success();
    for (name, role) in [
        ("chair", "committee"),
        ("ext", "committee"),
        ("ethics", "committee"),
        ("res", "researcher"),
    ] {
        let pass = format!("{name} passphrase 2026");
        add_user(cmd(), &home, &keys, name, role, &pass);
    }
    for (name, field, flags) in [
        ("chair", "medical", vec!["--chair"]),
        ("ext", "law-ethics", vec!["--external"]),
        ("ethics", "citizen", vec![]),
    ] {
        cmd()
            .args([
                "committee",
                "add-member",
                "--member",
                name,
                "--display-name",
            ])
            .arg(format!("委員 {name}"))
            .args(["--affiliation", "架空大学", "--field", field])
            .args(flags)
            .arg("--home")
            .arg(&home)
            .assert()
            .success();
    }
    let roster = stdout(
        &cmd()
            .args(["committee", "roster", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(
        roster.contains("chair") && roster.contains("external"),
        "{roster}"
    );

    // The other operator's recipient stands in for the research institution's key.
    let other = dir.path().join("other");
    cmd()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&other)
        .assert()
        .success();
    let recipient = std::fs::read_to_string(other.join("operator.recipient")).expect("recipient");
    let file = dir.path().join("a.toml");
    let application = format!(
        r#"title = "Prescribing in type 2 diabetes"
kind = "anonymized"
purpose = "Describe first-line prescribing"
period_from = "2021-04-01"
period_to = "2024-03-31"
contract_expiry = "2099-03-31"
recipient_key = "{}"
security_plan = "isolated workstation"

[applicant]
organisation = "架空大学"
certification = "none"
responsible_researcher = "研究 責任者"

[[items]]
table = "diagnoses"
columns = ["icd10", "date"]
"#,
        recipient.trim()
    );
    std::fs::write(&file, &application).expect("write");
    // A bad application names its problem and records nothing.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, application.replace("\"icd10\"", "\"surname_kanji\"")).expect("write");
    let a = as_user(&keys, "res")
        .args(["application", "submit", "--file"])
        .arg(&bad)
        .arg("--home")
        .arg(&home)
        .assert()
        .code(2);
    assert!(
        stderr(&a).contains("diagnoses.surname_kanji"),
        "{}",
        stderr(&a)
    );
    let a = as_user(&keys, "res")
        .args(["application", "submit", "--file"])
        .arg(&file)
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    assert!(stdout(&a).contains("A-0001"), "{}", stdout(&a));
    // A researcher cannot vote; a committee member can.
    let meeting = stdout(
        &as_user(&keys, "chair")
            .args([
                "committee",
                "meeting",
                "--date",
                "2026-06-01",
                "--present",
                "chair,ext,ethics",
            ])
            .arg("--home")
            .arg(&home)
            .assert()
            .success(),
    );
    let m = meeting
        .split_whitespace()
        .nth(1)
        .expect("meeting id")
        .to_string();
    as_user(&keys, "res")
        .args([
            "committee",
            "vote",
            "--meeting",
            &m,
            "--application",
            "A-0001",
            "approve",
        ])
        .arg("--home")
        .arg(&home)
        .assert()
        .code(1);
    as_user(&keys, "ethics")
        .args([
            "committee",
            "conflict",
            "--meeting",
            &m,
            "--application",
            "A-0001",
        ])
        .args(["--reason", "共同研究者"])
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    for name in ["chair", "ext"] {
        as_user(&keys, name)
            .args([
                "committee",
                "vote",
                "--meeting",
                &m,
                "--application",
                "A-0001",
                "approve",
            ])
            .arg("--home")
            .arg(&home)
            .assert()
            .success();
    }
    let a = as_user(&keys, "ethics")
        .args([
            "committee",
            "vote",
            "--meeting",
            &m,
            "--application",
            "A-0001",
            "approve",
        ])
        .arg("--home")
        .arg(&home)
        .assert()
        .code(1);
    assert!(stderr(&a).contains("conflict"), "{}", stderr(&a));
    as_user(&keys, "chair")
        .args([
            "committee",
            "decide",
            "--meeting",
            &m,
            "--application",
            "A-0001",
        ])
        .args([
            "--decision",
            "approve-with-conditions",
            "--reason",
            "医学研究に資する",
        ])
        .args([
            "--condition",
            "公表前に事務局の確認を受ける",
            "--drop-item",
            "diagnoses.date",
        ])
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    let shown = stdout(
        &cmd()
            .args(["application", "show", "A-0001", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(shown.contains("approve-with-conditions"), "{shown}");
    assert!(
        shown.contains("items approved   diagnoses.icd10\n"),
        "{shown}"
    );
    assert!(shown.contains("recused: ethics"), "{shown}");
    let listed = stdout(
        &cmd()
            .args(["application", "list", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(listed.contains("A-0001"), "{listed}");
    cmd()
        .args(["release", "list", "--home"])
        .arg(&home)
        .assert()
        .success();
    cmd()
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .assert()
        .success();
}
