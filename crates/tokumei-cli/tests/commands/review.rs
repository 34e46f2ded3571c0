//! Applications and the committee through the binary.

use crate::common;

use std::path::Path;

use assert_cmd::Command;
use common::{add_user, stderr, stdout};

use common::PASS;

fn cmd() -> Command {
    common::operator()
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
    committee_of_three(&home, &keys);
    submit_with_problems_named(dir.path(), &home, &keys);
    let m = vote_with_a_conflict(&home, &keys);
    decide_and_show(&home, &keys, &m);
}

/// A home with a researcher and a committee of three (members 委員 NAME) on the roster.
fn committee_of_three(home: &Path, keys: &Path) {
    cmd()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(home)
        .assert()
        .success();
    for (name, role) in [
        ("chair", "committee"),
        ("ext", "committee"),
        ("ethics", "committee"),
        ("res", "researcher"),
    ] {
        let pass = format!("{name} passphrase 2026");
        add_user(cmd(), home, keys, name, role, &pass);
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
            .arg(home)
            .assert()
            .success();
    }
    let roster = stdout(
        &cmd()
            .args(["committee", "roster", "--home"])
            .arg(home)
            .assert()
            .success(),
    );
    assert!(
        roster.contains("chair") && roster.contains("external"),
        "{roster}"
    );
}

/// A bad application names its problem and records nothing; the good one is A-0001. The other
/// operator's recipient stands in for the research institution's key.
fn submit_with_problems_named(dir: &Path, home: &Path, keys: &Path) {
    let other = dir.join("other");
    cmd()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&other)
        .assert()
        .success();
    let recipient = std::fs::read_to_string(other.join("operator.recipient")).expect("recipient");
    let file = dir.join("a.toml");
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
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, application.replace("\"icd10\"", "\"surname_kanji\"")).expect("write");
    let a = as_user(keys, "res")
        .args(["application", "submit", "--file"])
        .arg(&bad)
        .arg("--home")
        .arg(home)
        .assert()
        .code(2);
    assert!(
        stderr(&a).contains("diagnoses.surname_kanji"),
        "{}",
        stderr(&a)
    );
    let a = as_user(keys, "res")
        .args(["application", "submit", "--file"])
        .arg(&file)
        .arg("--home")
        .arg(home)
        .assert()
        .success();
    assert!(stdout(&a).contains("A-0001"), "{}", stdout(&a));
}

/// `committee vote` on A-0001 at meeting `m` as `name`.
fn vote(home: &Path, keys: &Path, name: &str, m: &str) -> assert_cmd::assert::Assert {
    as_user(keys, name)
        .args([
            "committee",
            "vote",
            "--meeting",
            m,
            "--application",
            "A-0001",
            "--vote",
            "approve",
        ])
        .arg("--home")
        .arg(home)
        .assert()
}

/// A meeting of the three: a researcher cannot vote; a committee member can, unless they declared
/// a conflict. Returns the meeting's id.
fn vote_with_a_conflict(home: &Path, keys: &Path) -> String {
    let meeting = stdout(
        &as_user(keys, "chair")
            .args([
                "committee",
                "meeting",
                "--date",
                "2026-06-01",
                "--present",
                "chair",
                "--present",
                "ext",
                "--present",
                "ethics",
            ])
            .arg("--home")
            .arg(home)
            .assert()
            .success(),
    );
    let m = meeting
        .split_whitespace()
        .nth(1)
        .expect("meeting id")
        .to_string();
    vote(home, keys, "res", &m).code(1);
    as_user(keys, "ethics")
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
        .arg(home)
        .assert()
        .success();
    for name in ["chair", "ext"] {
        vote(home, keys, name, &m).success();
    }
    let a = vote(home, keys, "ethics", &m).code(1);
    assert!(stderr(&a).contains("conflict"), "{}", stderr(&a));
    m
}

/// The chair records the approval with a condition and an item left out; `application show` and
/// `list` show it, the ledger lists, and the audit log verifies.
fn decide_and_show(home: &Path, keys: &Path, m: &str) {
    as_user(keys, "chair")
        .args([
            "committee",
            "decide",
            "--meeting",
            m,
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
        .arg(home)
        .assert()
        .success();
    let shown = stdout(
        &cmd()
            .args(["application", "show", "A-0001", "--home"])
            .arg(home)
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
            .arg(home)
            .assert()
            .success(),
    );
    assert!(listed.contains("A-0001"), "{listed}");
    cmd()
        .args(["release", "list", "--home"])
        .arg(home)
        .assert()
        .success();
    cmd()
        .args(["audit", "verify", "--home"])
        .arg(home)
        .assert()
        .success();
}

/// A home with a researcher and a committee of three on the roster (`ext` external).
fn committee_home(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let home = dir.join("home");
    let keys = dir.join("keys");
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
        add_user(
            cmd(),
            &home,
            &keys,
            name,
            role,
            &format!("{name} passphrase 2026"),
        );
    }
    for (name, display, field, flags) in [
        ("chair", "委員長 山田太郎", "medical", vec!["--chair"]),
        ("ext", "Smith", "law-ethics", vec!["--external"]),
        ("ethics", "佐藤", "citizen", vec![]),
    ] {
        cmd()
            .args(["committee", "add-member", "--member", name])
            .args(["--display-name", display, "--affiliation", "架空大学"])
            .args(["--field", field])
            .args(flags)
            .arg("--home")
            .arg(&home)
            .assert()
            .success();
    }
    (home, keys)
}

/// The committed example application.
fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/application.toml")
}

fn submit(keys: &Path, home: &Path, file: &Path) -> assert_cmd::assert::Assert {
    as_user(keys, "res")
        .args(["application", "submit", "--file"])
        .arg(file)
        .arg("--home")
        .arg(home)
        .assert()
}

/// The display column at which `needle` starts on `line` (kanji count two).
fn column(line: &str, needle: &str) -> usize {
    let at = line.find(needle).expect("needle");
    line[..at]
        .chars()
        .map(|c| if c.is_ascii() { 1 } else { 2 })
        .sum()
}

#[test]
fn the_template_and_the_example_document_the_file_and_every_problem_is_named_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, keys) = committee_home(dir.path());
    // The template: every field, commented; --out writes the same text and never overwrites.
    let printed = stdout(&cmd().args(["application", "template"]).assert().success());
    for key in [
        "title =",
        "kind =",
        "purpose =",
        "period_from =",
        "period_to =",
        "contract_expiry =",
        "recipient_key =",
        "security_plan =",
        "aggregate_dimensions =",
        "# revises =",
        "[applicant]",
        "certification =",
        "# certification_id =",
        "# certification_valid_until =",
        "responsible_researcher =",
        "# contact =",
        "[cohort]",
        "[[items]]",
        "columns =",
    ] {
        assert!(printed.contains(key), "template lacks {key}:\n{printed}");
    }
    let out = dir.path().join("new.toml");
    cmd()
        .args(["application", "template", "--out"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&out).expect("template"), printed);
    let again = cmd()
        .args(["application", "template", "--out"])
        .arg(&out)
        .assert()
        .code(2);
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    // The template as printed is refused for its placeholder key only.
    let refused = submit(&keys, &home, &out).code(2);
    let e = stderr(&refused);
    assert!(
        e.contains("1 problem(s)") && e.contains("recipient_key"),
        "{e}"
    );
    // The committed example is accepted as it stands.
    let ok = submit(&keys, &home, &example()).success();
    assert!(
        stdout(&ok).contains("application A-0001 submitted"),
        "{}",
        stdout(&ok)
    );
    // A file with several problems names every one of them in one run, and records nothing.
    let text = std::fs::read_to_string(example()).expect("example");
    let bad: String = text
        .lines()
        .filter(|l| !l.starts_with("purpose") && !l.starts_with("responsible_researcher"))
        .map(|l| match l {
            l if l.starts_with("period_to") => {
                "period_to = \"2020-01-01\"\ncolour = \"red\"".into()
            }
            l if l.starts_with("kind") => "kind = \"open\"".into(),
            l => l.to_string(),
        })
        .collect::<Vec<String>>()
        .join("\n")
        .replace("\"value_num\"", "\"surname_kanji\"");
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, bad).expect("write");
    let refused = submit(&keys, &home, &bad_file).code(2);
    let e = stderr(&refused);
    for problem in [
        "6 problem(s)",
        "  purpose: missing",
        "  applicant.responsible_researcher: missing",
        "  colour: unknown field",
        "  kind: unknown variant `open`",
        "  period_to: before period_from",
        "  items: lab_results.surname_kanji is not a releasable item",
        "application template",
    ] {
        assert!(e.contains(problem), "{problem} not in:\n{e}");
    }
    assert!(e.starts_with("error: "), "{e}");
    let listed = stdout(
        &cmd()
            .args(["application", "list", "--json", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

#[test]
fn votes_take_vote_and_meetings_take_repeated_present_and_refuse_nobody() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, keys) = committee_home(dir.path());
    submit(&keys, &home, &example()).success();
    let meeting = |present: &[&str]| {
        let mut c = as_user(&keys, "chair");
        c.args(["committee", "meeting", "--date", "2026-06-01"])
            .args(present)
            .arg("--home")
            .arg(&home);
        c.assert()
    };
    // Nobody present: refused as a usage error, whether --present is left out or empty.
    for present in [&[][..], &["--present", ""], &["--present", " , "]] {
        let a = meeting(present).code(2);
        assert!(stderr(&a).contains("--present"), "{}", stderr(&a));
    }
    // Repeated, or separated by commas: the same three members.
    let out = stdout(&meeting(&["--present", "chair", "--present", "ext,ethics"]).success());
    assert!(out.contains("meeting M-0001 opened"), "{out}");
    let vote = |name: &str, vote: &[&str]| {
        let mut c = as_user(&keys, name);
        c.args(["committee", "vote", "--meeting", "M-0001"])
            .args(["--application", "A-0001"])
            .args(vote)
            .arg("--home")
            .arg(&home);
        c.assert()
    };
    // The vote is --vote, like --decision; the positional form and unknown votes are refused.
    vote("chair", &["approve"]).code(2);
    let a = vote("chair", &["--vote", "maybe"]).code(2);
    assert!(stderr(&a).contains("approve"), "{}", stderr(&a));
    for name in ["chair", "ext", "ethics"] {
        vote(name, &["--vote", "approve"]).success();
    }
    // Everyone present counted for the quorum: the decision records three votes for.
    let decided = stdout(
        &as_user(&keys, "chair")
            .args(["committee", "decide", "--meeting", "M-0001"])
            .args(["--application", "A-0001", "--decision", "approve"])
            .args(["--reason", "医学研究に資する", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(decided.contains("approve"), "{decided}");
    let shown = stdout(
        &cmd()
            .args(["application", "show", "A-0001", "--json", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(
        shown["decision"]["tally"],
        serde_json::json!([3, 0, 0]),
        "{shown}"
    );
    assert_eq!(
        shown["decision"]["eligible"].as_array().map(Vec::len),
        Some(3)
    );
}

#[test]
fn application_committee_and_user_commands_take_the_passphrase_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, _) = committee_home(dir.path());
    let file = dir.path().join("passphrase.txt");
    std::fs::write(&file, format!("{PASS}\n")).expect("write");
    // The home's first technician's key opens with the home passphrase: without
    // TOKUMEI_PASSPHRASE, --passphrase-file gives it.
    let runs: [&[&str]; 6] = [
        &["application", "list"],
        &["committee", "roster"],
        &["user", "list"],
        &["user", "review", "--name", "res"],
        &["release", "list"],
        &["export", "approve", "1"],
    ];
    for args in runs {
        let without = cmd()
            .env_remove("TOKUMEI_PASSPHRASE")
            .args(args)
            .arg("--home")
            .arg(&home)
            .assert()
            .code(2);
        assert!(
            stderr(&without).contains("--passphrase-file"),
            "{args:?}: {}",
            stderr(&without)
        );
        let with = cmd()
            .env_remove("TOKUMEI_PASSPHRASE")
            .args(args)
            .arg("--passphrase-file")
            .arg(&file)
            .arg("--home")
            .arg(&home)
            .assert();
        // The export request does not exist: the session opened, then the request was not found.
        if args[0] == "export" {
            let a = with.code(1);
            assert!(!stderr(&a).contains("passphrase"), "{}", stderr(&a));
        } else {
            with.success();
        }
    }
}

#[test]
fn tables_have_headers_and_line_up_japanese_text_and_show_prints_no_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, keys) = committee_home(dir.path());
    let roster = stdout(
        &cmd()
            .args(["committee", "roster", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    let lines: Vec<&str> = roster.lines().collect();
    assert!(lines[0].starts_with("user "), "{roster}");
    let at = column(lines[0], "affiliation");
    for l in &lines[1..] {
        assert_eq!(column(l, "架空大学"), at, "{roster}");
    }
    let users = stdout(
        &cmd()
            .args(["user", "list", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    let lines: Vec<&str> = users.lines().collect();
    assert!(lines[0].contains("requested by") && lines[0].contains("approved by"));
    let at = column(lines[0], "approved by");
    let chair = lines
        .iter()
        .find(|l| l.starts_with("chair"))
        .expect("chair");
    assert!(chair.contains("事務局"), "{users}");
    assert_eq!(column(chair, "理事長"), at, "{users}");
    submit(&keys, &home, &example()).success();
    let listed = stdout(
        &cmd()
            .args(["application", "list", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(listed.starts_with("id "), "{listed}");
    assert!(listed.contains("A-0001  submitted"), "{listed}");
    let ledger = stdout(
        &cmd()
            .args(["release", "list", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(ledger.starts_with("release "), "{ledger}");
    let quarantine = stdout(
        &cmd()
            .args(["quarantine", "list", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(quarantine.starts_with("package "), "{quarantine}");
    // Absent values are shown as a dash, never as Rust's "None".
    let shown = stdout(
        &cmd()
            .args(["application", "show", "A-0001", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    assert!(!shown.contains("None"), "{shown}");
    assert!(
        shown.contains("  certification    not certified\n"),
        "{shown}"
    );
    assert!(shown.contains("  decision         —\n"), "{shown}");
    assert!(shown.contains("  withdrawn        —\n"), "{shown}");
    assert!(
        shown.contains("  contact          research-office@example.invalid\n"),
        "{shown}"
    );
    let json = stdout(
        &cmd()
            .args(["application", "show", "A-0001", "--json", "--home"])
            .arg(&home)
            .assert()
            .success(),
    );
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["state"], "submitted", "{json}");
    assert_eq!(json["application"]["applicant"]["certification"], "none");
    assert!(json["decision"].is_null(), "{json}");
}

/// A release folder by hand: a manifest and a persons table of `n` persons per class.
fn release(dir: &Path, classes: &[(&str, &str, &str, usize)]) -> std::path::PathBuf {
    let release = dir.join("release");
    std::fs::create_dir_all(release.join("tables")).expect("mkdir");
    std::fs::write(
        release.join("manifest.json"),
        r#"{"period_to": "2024-03-31"}"#,
    )
    .expect("manifest");
    let mut persons = String::from("pseudonym,sex,birth_year_month,municipality\n");
    let mut population = String::from("id,sex,birth_date,municipality_code\n");
    let mut i = 0;
    for (sex, month, muni, n) in classes {
        for _ in 0..*n {
            persons.push_str(&format!("P{i:04},{sex},{month},{muni}\n"));
            population.push_str(&format!("R{i:04},{sex},{month}-15,{muni}\n"));
            i += 1;
        }
    }
    std::fs::write(release.join("tables/persons.csv"), persons).expect("persons");
    std::fs::write(dir.join("population.csv"), population).expect("population");
    release
}

fn reid(release: &Path, population: &Path, extra: &[&str]) -> Command {
    let mut c = cmd();
    c.args(["reid-test", "--release"])
        .arg(release)
        .arg("--population")
        .arg(population)
        .args(extra);
    c
}

#[test]
fn reid_test_on_an_engine_this_build_lacks_or_a_bad_address_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = release(dir.path(), &[("M", "1950-04", "022012", 10)]);
    let population = dir.path().join("population.csv");
    let mut cases = vec![("spark://x:7077", "ballista://HOST:PORT")];
    if !cfg!(feature = "distributed") {
        cases.push(("datafusion", "--features distributed"));
    }
    for (engine, message) in cases {
        let out = reid(&r, &population, &["--engine", engine])
            .assert()
            .failure()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(message), "{engine}: {err}");
    }
    // The embedded default is the same with or without the flag.
    let loose = [
        "--json",
        "--max-prosecutor-risk",
        "1",
        "--max-linkage-success",
        "1",
    ];
    let plain = reid(&r, &population, &loose).assert().success();
    let named = reid(
        &r,
        &population,
        &[&loose[..], &["--engine", "embedded"]].concat(),
    )
    .assert()
    .success();
    assert_eq!(plain.get_output().stdout, named.get_output().stdout);
}

#[test]
fn reid_test_prints_a_verdict_per_threshold_and_overall() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = release(
        dir.path(),
        &[
            ("M", "1950-04", "022012", 10),
            ("F", "1960-07", "022021", 4),
        ],
    );
    let population = dir.path().join("population.csv");
    // Smallest class 4: prosecutor risk 0.25, within 0.3 and above 0.2.
    let pass = reid(
        &r,
        &population,
        &["--max-prosecutor-risk", "0.3", "--max-linkage-success", "1"],
    )
    .assert()
    .success();
    let out = stdout(&pass);
    // The thresholds' table follows the figures'.
    let line = |name: &str| {
        out.lines()
            .skip_while(|l| !l.starts_with("threshold"))
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{out}"))
            .to_string()
    };
    assert!(line("threshold").contains("result"), "{out}");
    assert!(line("prosecutor risk ").ends_with("PASS"), "{out}");
    assert!(line("prosecutor risk ").contains("0.2500"), "{out}");
    assert!(line("linkage-attack success ").ends_with("PASS"), "{out}");
    assert!(
        out.contains("not checked: membership-inference advantage"),
        "{out}"
    );
    assert_eq!(line("verdict"), "verdict: PASS (2 of 2 thresholds hold)");
    let fail = reid(
        &r,
        &population,
        &["--max-prosecutor-risk", "0.2", "--max-linkage-success", "1"],
    )
    .assert()
    .code(1);
    let out = stdout(&fail);
    let prosecutor = out
        .lines()
        .skip_while(|l| !l.starts_with("threshold"))
        .find(|l| l.starts_with("prosecutor risk "))
        .expect("prosecutor");
    assert!(prosecutor.ends_with("FAIL"), "{out}");
    assert!(
        out.contains("verdict: FAIL (1 of 2 thresholds broken)"),
        "{out}"
    );
    // --json keeps the figures for scripts; the breach goes to standard error.
    let json = reid(&r, &population, &["--json", "--max-prosecutor-risk", "0.2"])
        .assert()
        .code(1);
    let figures: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
    assert_eq!(figures["persons"], 14, "{figures}");
    assert_eq!(figures["min_class"], 4, "{figures}");
    assert!(
        stderr(&json).contains("prosecutor risk 0.2500 (at most 0.2)"),
        "{}",
        stderr(&json)
    );
    // Thresholds are shares.
    reid(&r, &population, &["--max-prosecutor-risk", "2"])
        .assert()
        .code(2);
}

#[test]
fn reid_test_help_says_what_the_truth_file_is_and_where_it_comes_from() {
    let help = stdout(&cmd().args(["reid-test", "--help"]).assert().success());
    for needed in [
        "pseudonym,person_id",
        "synthetic data only",
        "tokumei synth",
        "DIR/truth/persons.parquet",
        "--evaluation-key",
        "record_links.parquet",
        "--json",
    ] {
        assert!(help.contains(needed), "{needed} not in:\n{help}");
    }
}
