//! End-to-end tests of the `tokumei` binary.

use crate::common;

use std::path::Path;

use assert_cmd::Command;
use common::tree;

fn tokumei() -> Command {
    Command::cargo_bin("tokumei").expect("binary")
}

fn synth(out: &Path, seed: &str) {
    tokumei()
        .args(["synth", "--people", "1500", "--seed", seed, "--out"])
        .arg(out)
        .assert()
        .success();
}

#[test]
fn same_seed_gives_byte_identical_output_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    synth(&a, "7");
    synth(&b, "7");
    synth(&c, "8");
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert!(ta.len() > 100, "only {} files", ta.len());
    assert!(ta.contains_key(Path::new("truth/persons.parquet")));
    assert!(ta.contains_key(Path::new("truth/record_links.parquet")));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(
            tb[k] == *v,
            "{} differs between two runs with one seed",
            k.display()
        );
    }
    assert_ne!(
        ta[Path::new("truth/persons.parquet")],
        tc[Path::new("truth/persons.parquet")]
    );
}

#[test]
fn bad_arguments_exit_with_code_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("x");
    for args in [
        vec!["synth", "--people", "-5", "--out"],
        vec!["synth", "--people", "0", "--out"],
        vec!["synth", "--people", "ten", "--out"],
        vec!["synth", "--people", "10", "--months", "0", "--out"],
        vec!["synth", "--people", "10", "--start", "2021-13", "--out"],
    ] {
        tokumei().args(&args).arg(&out).assert().code(2);
    }
    assert!(!out.exists(), "nothing is written on a usage error");
}

#[test]
fn existing_non_empty_folder_needs_force_and_is_left_intact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("x");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::write(out.join("keep.txt"), "mine").expect("write");
    let assert = tokumei()
        .args(["synth", "--people", "50", "--out"])
        .arg(&out)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).expect("read"),
        "mine"
    );
    tokumei()
        .args(["synth", "--people", "50", "--force", "--out"])
        .arg(&out)
        .assert()
        .success();
    assert!(!out.join("keep.txt").exists());
    assert!(out.join("truth/persons.parquet").exists());
    // No staging folder is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn unwritable_folder_is_a_clear_error_and_nothing_is_half_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let assert = tokumei()
        .args(["synth", "--people", "50", "--out"])
        .arg(file.join("out"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("cannot write"), "{stderr}");
    assert_eq!(std::fs::read_dir(tmp.path()).expect("read").count(), 1);
    // A path that is a file is refused too.
    tokumei()
        .args(["synth", "--people", "50", "--out"])
        .arg(&file)
        .assert()
        .code(2);
}

#[test]
fn demo_runs_and_reruns_in_its_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    for _ in 0..2 {
        let assert = tokumei()
            .args(["demo", "--people", "300", "--dir"])
            .arg(&dir)
            .assert()
            .success();
        let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
        assert!(stdout.contains("people 300"), "{stdout}");
        assert!(stdout.contains("step 7/7"), "{stdout}");
        assert!(
            stdout.contains("report.html") || stdout.contains("release refused by its checks"),
            "{stdout}"
        );
        assert!(stdout.contains("persons"), "{stdout}");
        assert!(stdout.contains("entries, intact"), "{stdout}");
        assert!(stdout.contains("demo finished"), "{stdout}");
        // Every record the manifests count is stored, quarantined or refused.
        let line = stdout
            .lines()
            .find(|l| l.contains("records in the manifests"))
            .expect("receipt totals");
        let n: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        // packages, files, records, stored, events, quarantined, opted out, too early, images
        // stored, images refused, seconds...
        assert!(n[2] > 0, "{line}");
        assert_eq!(n[2], n[3] + n[5] + n[6] + n[7] + n[8] + n[9], "{line}");
        assert!(
            n[6] > 0,
            "the demo's requests to stop refuse records: {line}"
        );
    }
    // A folder holding something else is not replaced.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "keep").expect("write");
    tokumei()
        .args(["demo", "--people", "10", "--dir"])
        .arg(&other)
        .assert()
        .code(2);
    assert!(other.join("notes.txt").exists());
}

#[test]
fn inspect_reports_format_counts_and_errors_with_positions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = tmp.path().join("RECEIPTC.UKE");
    std::fs::write(
        &good,
        include_bytes!("../../../tokumei-formats/tests/fixtures/RECEIPTC.UKE"),
    )
    .expect("write");
    let assert = tokumei().arg("inspect").arg(&good).assert().success();
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(out.contains("レセ電"), "{out}");
    assert!(out.contains("Shift_JIS"), "{out}");
    assert!(out.contains("1 read, 0 rejected"), "{out}");
    assert!(out.contains("SI 5"), "{out}");

    let utf8 = tmp.path().join("bad").join("RECEIPTC.UKE");
    std::fs::create_dir(tmp.path().join("bad")).expect("mkdir");
    std::fs::write(
        &utf8,
        include_bytes!("../../../tokumei-formats/tests/fixtures/RECEIPTC.UKE.utf8.txt"),
    )
    .expect("write");
    let assert = tokumei().arg("inspect").arg(tmp.path()).assert().code(1);
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(out.contains("line 1: file is UTF-8"), "{out}");
    assert!(out.contains("2 files inspected"), "{out}");
    // No name from the file appears in the report.
    assert!(!out.contains("試験"), "{out}");
}

/// `init` creates a home whose audit log verifies; tampering makes `audit verify` fail naming the
/// entry; a provider export verifies standalone and fails when altered.
#[test]
fn init_and_audit_verify_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let tokumei = || {
        let mut c = Command::cargo_bin("tokumei").expect("binary");
        c.env("TOKUMEI_PASSPHRASE", "correct horse battery staple");
        c
    };
    tokumei()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .assert()
        .success();
    let recipient = std::fs::read_to_string(home.join("operator.recipient")).expect("recipient");
    assert!(recipient.starts_with("age1"));
    // A second init on the same folder is refused (usage error), and so is a missing passphrase.
    tokumei()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .assert()
        .code(2);
    Command::cargo_bin("tokumei")
        .expect("binary")
        .env_remove("TOKUMEI_PASSPHRASE")
        .args(["init", "--home"])
        .arg(dir.path().join("other"))
        .assert()
        .code(2);
    tokumei()
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .assert()
        .success();
    let export = dir.path().join("export.json");
    tokumei()
        .args(["audit", "export", "--provider", "H01", "--out"])
        .arg(&export)
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    tokumei()
        .args(["audit", "export", "--provider", "H01", "--out"])
        .arg(dir.path().join("export2.json"))
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    let export2 = dir.path().join("export2.json");
    tokumei()
        .args(["audit", "verify-export"])
        .arg(&export2)
        .arg("--operator-key")
        .arg(home.join("audit.pub"))
        .assert()
        .success();
    let text = std::fs::read_to_string(&export2).expect("export");
    std::fs::write(&export2, text.replace("\"ok\"", "\"refused\"")).expect("write");
    tokumei()
        .args(["audit", "verify-export"])
        .arg(&export2)
        .arg("--operator-key")
        .arg(home.join("audit.pub"))
        .assert()
        .code(1);
    // Tamper with the fourth entry of the log (after home.init, the signed authorization head and
    // the first user's registration).
    let log = home.join("audit/entries.jsonl");
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    let tampered = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        lines[0],
        lines[1],
        lines[2],
        lines[3].replace("audit.export", "audit.exporT"),
        lines[4]
    );
    std::fs::write(&log, tampered).expect("write");
    let out = tokumei()
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("audit entry 3"), "{stderr}");
}

/// The end-to-end interface: provider keys, registration, package, receive (once), refusal of an
/// unregistered provider, and an audit log that verifies.
#[test]
fn package_and_receive_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let keys = dir.path().join("keys");
    let tokumei = || {
        let mut c = Command::cargo_bin("tokumei").expect("binary");
        c.env("TOKUMEI_PASSPHRASE", "correct horse battery staple");
        c
    };
    tokumei()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .assert()
        .success();
    for id in ["H01", "H02"] {
        tokumei()
            .args(["provider", "init", "--id", id, "--out"])
            .arg(&keys)
            .assert()
            .success();
    }
    tokumei()
        .args([
            "provider",
            "add",
            "--id",
            "H01",
            "--name",
            "架空病院",
            "--address",
            "青森県青森市",
        ])
        .args([
            "--representative",
            "院長",
            "--acquisition",
            "診療の過程で取得",
            "--notice-start",
            "2025-01-06",
        ])
        .arg("--home")
        .arg(&home)
        .arg("--public-key")
        .arg(keys.join("H01.pub"))
        .assert()
        .success();
    let source = dir.path().join("extract");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tokumei-formats/tests/fixtures/RECEIPTC.UKE"),
        source.join("RECEIPTC.UKE"),
    )
    .expect("copy");
    let recipient = std::fs::read_to_string(home.join("operator.recipient")).expect("recipient");
    for id in ["H01", "H02"] {
        tokumei()
            .args(["package", "--to", recipient.trim(), "--provider-key"])
            .arg(keys.join(format!("{id}.key")))
            .arg("--in")
            .arg(&source)
            .arg("--out")
            .arg(dir.path().join(format!("{id}.tkm")))
            .assert()
            .success();
    }
    let out = tokumei()
        .args(["receive", "--home"])
        .arg(&home)
        .arg(dir.path().join("H01.tkm"))
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("1 records stored"));
    let out = tokumei()
        .args(["receive", "--home"])
        .arg(&home)
        .arg(dir.path().join("H01.tkm"))
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("already received"));
    let out = tokumei()
        .args(["receive", "--home"])
        .arg(&home)
        .arg(dir.path().join("H02.tkm"))
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("not registered"));
    tokumei()
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .assert()
        .success();
}

/// Requests to stop through the CLI: one by patient id, a file by insurance; bad input is a usage
/// error; every request is audited and the log verifies.
#[test]
fn optout_add_and_import_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let tokumei = || {
        let mut c = Command::cargo_bin("tokumei").expect("binary");
        c.env("TOKUMEI_PASSPHRASE", "correct horse battery staple");
        c
    };
    tokumei()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .assert()
        .success();
    tokumei()
        .args([
            "optout",
            "add",
            "--provider",
            "H01",
            "--patient-id",
            "00012345",
        ])
        .args(["--requester", "self", "--received", "2025-04-01", "--home"])
        .arg(&home)
        .assert()
        .success();
    tokumei()
        .args([
            "optout",
            "add",
            "--provider",
            "H01",
            "--patient-id",
            "00012345",
        ])
        .args([
            "--requester",
            "someone",
            "--received",
            "2025-04-01",
            "--home",
        ])
        .arg(&home)
        .assert()
        .code(2);
    let csv = dir.path().join("optouts.csv");
    std::fs::write(
        &csv,
        "provider_id,local_patient_id,insurer_number,symbol,number,branch,requester,received_on,confirmed_on\n\
         ,,022012,05,1234567,00,bereaved,2025-02-01,2025-02-03\n\
         M022012,0123456789,,,,,guardian,2025-02-02,\n",
    )
    .expect("write");
    let out = tokumei()
        .args(["optout", "import", "--home"])
        .arg(&home)
        .arg(&csv)
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("2 request"));
    let log = std::fs::read_to_string(home.join("audit/entries.jsonl")).expect("log");
    assert_eq!(log.matches("optout.add").count(), 3);
    assert!(!log.contains("00012345") && !log.contains("1234567"));
    tokumei()
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .assert()
        .success();
}
