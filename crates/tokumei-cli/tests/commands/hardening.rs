//! Attacks on the operator home through the binary: kills at chosen points, edits of the audit log,
//! links in an extract, hostile bytes on the terminal, arguments a careless operator types. Each
//! test reproduces one failure found by trying to break the home and fails without its defence.

use crate::common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{stderr, stdout};

const PASS: &str = "correct horse battery staple";

fn tokumei() -> Command {
    let mut c = Command::cargo_bin("tokumei").expect("binary");
    c.env("TOKUMEI_PASSPHRASE", PASS)
        .env_remove("TOKUMEI_FAULT_POINT");
    c
}

struct Site {
    dir: tempfile::TempDir,
    home: PathBuf,
    keys: PathBuf,
}

impl Site {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A sealed package of `provider` holding the claims fixture (a fresh package id each time).
    fn package(&self, provider: &str, name: &str) -> PathBuf {
        let source = self.path("extract");
        std::fs::create_dir_all(&source).expect("mkdir");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tokumei-formats/tests/fixtures/RECEIPTC.UKE"),
            source.join("RECEIPTC.UKE"),
        )
        .expect("copy");
        let out = self.path(name);
        tokumei()
            .args(["package", "--extracted-on", "2025-06-01", "--to"])
            .arg(self.home.join("operator.recipient"))
            .arg("--provider-key")
            .arg(self.keys.join(format!("{provider}.key")))
            .arg("--in")
            .arg(&source)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        out
    }

    /// `tokumei package` of `source` with `key`, sealed to this home, written to `out`.
    fn package_cmd(&self, key: &Path, source: &Path, out: &Path) -> Command {
        let mut c = tokumei();
        c.args(["package", "--provider", "H01", "--to"])
            .arg(self.home.join("operator.recipient"))
            .arg("--provider-key")
            .arg(key)
            .arg("--in")
            .arg(source)
            .arg("--out")
            .arg(out);
        c
    }

    fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.home.join("audit/entries.jsonl"))
            .expect("log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    fn check(&self) -> assert_cmd::assert::Assert {
        tokumei()
            .args(["home", "check", "--home"])
            .arg(&self.home)
            .assert()
    }

    fn verify(&self) -> assert_cmd::assert::Assert {
        tokumei()
            .args(["audit", "verify", "--home"])
            .arg(&self.home)
            .assert()
    }
}

fn site() -> Site {
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
    tokumei()
        .args(["provider", "add", "--id", "H01", "--name", "架空病院"])
        .args(["--address", "青森県青森市", "--representative", "院長"])
        .args([
            "--acquisition",
            "診療の過程で取得",
            "--notice-start",
            "2020-01-06",
        ])
        .arg("--home")
        .arg(&home)
        .arg("--public-key")
        .arg(keys.join("H01.pub"))
        .assert()
        .success();
    Site { dir, home, keys }
}

/// The outcomes recorded for `action` on objects containing `object`.
fn outcomes(log: &[serde_json::Value], action: &str, object: &str) -> Vec<String> {
    log.iter()
        .filter(|e| e["action"] == action && e["object"].as_str().unwrap_or("").contains(object))
        .map(|e| e["outcome"].as_str().unwrap_or("").to_string())
        .collect()
}

fn package_id(s: &Site) -> String {
    let log = s.log();
    let begun = log
        .iter()
        .rev()
        .find(|e| e["action"] == "receive.begin")
        .expect("a receipt was begun");
    begun["object"]
        .as_str()
        .expect("object")
        .trim_start_matches("receive ")
        .to_string()
}

/// Row 9: a kill right after the receipt was committed left it with no audit entry for ever.
#[test]
fn a_receipt_killed_after_its_commit_is_audited_by_the_next_command() {
    let s = site();
    let pkg = s.package("H01", "p1.tkm");
    let killed = tokumei()
        .env("TOKUMEI_FAULT_POINT", "receive.committed")
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(&pkg)
        .output()
        .expect("run");
    assert!(!killed.status.success());
    let id = package_id(&s);
    assert!(outcomes(&s.log(), "receive", &id).is_empty());
    // The home check sees the interrupted receipt.
    let out = s.check().code(1);
    assert!(stdout(&out).contains("await recovery"), "{}", stdout(&out));
    // The next receipt (here: the same package again) records the first one's outcome first.
    let again = tokumei()
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(&pkg)
        .assert()
        .success();
    assert!(
        stdout(&again).contains("already received"),
        "{}",
        stdout(&again)
    );
    let found = outcomes(&s.log(), "receive", &id);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("ok (recorded at recovery"),
        "{found:?}"
    );
    assert!(found[1].starts_with("already received"), "{found:?}");
    assert!(!s.home.join(format!("intents/receive-{id}.json")).exists());
    s.verify().success();
    let out = s.check().success();
    assert!(stdout(&out).contains("0 problem(s)"), "{}", stdout(&out));
    // A stray file and a changed original are problems.
    std::fs::write(s.home.join("packages/x.age"), "x").expect("write");
    let original = s.home.join(format!("packages/{id}.age"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&original, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let mut bytes = std::fs::read(&original).expect("read");
    bytes[100] ^= 1;
    std::fs::write(&original, bytes).expect("write");
    let out = s.check().code(1);
    let text = stdout(&out);
    assert!(text.contains("packages/x.age"), "{text}");
    assert!(text.contains("hash differs"), "{text}");
    assert!(text.contains("2 problem(s)"), "{text}");
}

/// Row 9, the other side: killed before the commit, the receipt is rolled back and says so.
#[test]
fn a_receipt_killed_before_its_commit_is_rolled_back_and_audited() {
    let s = site();
    let pkg = s.package("H01", "p1.tkm");
    tokumei()
        .env("TOKUMEI_FAULT_POINT", "receive.landed")
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(&pkg)
        .assert()
        .failure();
    let id = package_id(&s);
    assert!(s.home.join(format!("packages/{id}.age")).exists());
    tokumei()
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(&pkg)
        .assert()
        .success();
    let found = outcomes(&s.log(), "receive", &id);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("rolled back at recovery"), "{found:?}");
    assert!(found[1].starts_with("ok:"), "{found:?}");
    s.verify().success();
}

/// Row 6 and 7: a log cut back, emptied, deleted, cut mid-line, or rewritten with the home's own
/// audit key verified as intact.
#[test]
fn audit_verify_catches_cuts_deletions_and_rewrites_against_a_checkpoint() {
    let s = site();
    let checkpoint = s.path("checkpoint.json");
    tokumei()
        .args(["audit", "checkpoint", "--home"])
        .arg(&s.home)
        .arg("--out")
        .arg(&checkpoint)
        .assert()
        .success();
    let verify_with = |cp: &Path| {
        tokumei()
            .args(["audit", "verify", "--home"])
            .arg(&s.home)
            .arg("--checkpoint")
            .arg(cp)
            .assert()
    };
    verify_with(&checkpoint).success();
    let path = s.home.join("audit/entries.jsonl");
    let original = std::fs::read_to_string(&path).expect("log");
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 3, "{}", lines.len());
    // Cut to its first lines: intact alone (a prefix), caught against the checkpoint.
    std::fs::write(&path, format!("{}\n", lines[..2].join("\n"))).expect("write");
    s.verify().success();
    let out = verify_with(&checkpoint).code(1);
    assert!(stderr(&out).contains("removed"), "{}", stderr(&out));
    // Emptied or deleted: a home's log begins with its creation.
    std::fs::write(&path, "").expect("write");
    s.verify().code(1);
    std::fs::remove_file(&path).expect("rm");
    let out = s.verify().code(1);
    assert!(stderr(&out).contains("creation"), "{}", stderr(&out));
    // The last line cut in half: reported, not taken for intact.
    let half = &original[..original.len() - 40];
    std::fs::write(&path, half).expect("write");
    let out = s.verify().code(1);
    assert!(stderr(&out).contains("cut short"), "{}", stderr(&out));
    // Entries removed and the rest re-signed with the home's audit key (an insider's rewrite).
    std::fs::write(&path, &original).expect("restore");
    verify_with(&checkpoint).success();
    // The insider holds the passphrase, so the operator's key (sealed under the data key).
    let insider = tokumei_vault::open(&s.home).expect("home");
    insider.unlock_data_key(PASS).expect("unlock");
    let key = insider.audit_signing_key().expect("key");
    let rewritten = s.path("rewritten");
    let mut log = tokumei_audit::AuditLog::open(&rewritten, key).expect("open");
    for (i, l) in lines.iter().enumerate() {
        if i == 1 {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        let mut e = tokumei_audit::Entry::now(
            v["actor"].as_str().unwrap_or(""),
            v["role"].as_str().unwrap_or(""),
            v["action"].as_str().unwrap_or(""),
            v["object"].as_str().unwrap_or(""),
            v["outcome"].as_str().unwrap_or(""),
            v["provider"].as_str(),
        );
        e.time = v["time"].as_str().unwrap_or("").to_string();
        log.append(e).expect("append");
    }
    std::fs::copy(rewritten.join("entries.jsonl"), &path).expect("swap");
    s.verify().success();
    verify_with(&checkpoint).code(1);
}

/// Row 5: `provider add` replaced a registered provider's key with no credentials; `audit export`
/// ran without any.
#[test]
fn a_registered_providers_key_is_not_replaced_and_exports_need_a_session() {
    let s = site();
    tokumei()
        .args(["provider", "init", "--id", "X", "--out"])
        .arg(s.path("attacker"))
        .assert()
        .success();
    let add = |cmd: &mut Command| {
        cmd.args(["provider", "add", "--id", "H01", "--name", "偽"])
            .args([
                "--address",
                "x",
                "--representative",
                "x",
                "--acquisition",
                "x",
                "--notice-start",
                "2024-01-01",
            ])
            .arg("--home")
            .arg(&s.home)
            .arg("--public-key")
            .arg(s.path("attacker").join("X.pub"))
            .assert()
    };
    let out = add(&mut tokumei()).code(1);
    assert!(
        stderr(&out).contains("already registered"),
        "{}",
        stderr(&out)
    );
    add(Command::cargo_bin("tokumei")
        .expect("binary")
        .env_remove("TOKUMEI_PASSPHRASE"))
    .code(2);
    Command::cargo_bin("tokumei")
        .expect("binary")
        .env_remove("TOKUMEI_PASSPHRASE")
        .args(["audit", "export", "--provider", "H01", "--out"])
        .arg(s.path("export.json"))
        .arg("--home")
        .arg(&s.home)
        .assert()
        .code(2);
    assert!(!s.path("export.json").exists());
    // A package signed with the attacker's key is still refused.
    std::fs::copy(
        s.path("attacker").join("X.key"),
        s.keys.join("H01-forged.key"),
    )
    .expect("cp");
    let source = s.path("extract2");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("notes.csv"), "a,b\n").expect("write");
    s.package_cmd(
        &s.keys.join("H01-forged.key"),
        &source,
        &s.path("forged.tkm"),
    )
    .assert()
    .success();
    let out = tokumei()
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(s.path("forged.tkm"))
        .assert()
        .code(1);
    assert!(stderr(&out).contains("not signed"), "{}", stderr(&out));
}

/// Row 13: an extract holding a link to /etc packed the system's files; `--out DIR` left its
/// temporary file behind.
#[cfg(unix)]
#[test]
fn packaging_refuses_links_and_a_folder_as_output() {
    let s = site();
    let source = s.path("extract");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("a.csv"), "x\n").expect("write");
    std::os::unix::fs::symlink("/etc", source.join("etc")).expect("symlink");
    let out = s
        .package_cmd(&s.keys.join("H01.key"), &source, &s.path("p.tkm"))
        .assert()
        .code(1);
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(!s.path("p.tkm").exists());
    std::fs::remove_file(source.join("etc")).expect("rm");
    let folder = s.path("outdir");
    std::fs::create_dir(&folder).expect("mkdir");
    s.package_cmd(&s.keys.join("H01.key"), &source, &folder)
        .assert()
        .code(2);
    let left: Vec<String> = std::fs::read_dir(s.dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Row 15: record types holding ESC and CR reached the terminal raw; `inspect … | head -1`
/// panicked with a backtrace.
#[test]
fn inspect_escapes_control_characters_and_ends_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("RECEIPTC.UKE");
    let mut bytes = b"\x1b[2J\x1b]0;owned\x07,1,2\r\nI\rR,1,02,1,0000000,,x\r\n".to_vec();
    bytes.extend(std::iter::repeat_n(b"XX,1\r\n".as_slice(), 20_000).flatten());
    std::fs::write(&f, &bytes).expect("write");
    let out = tokumei().arg("inspect").arg(&f).output().expect("run");
    assert!(!out.stdout.contains(&0x1b), "raw ESC on the terminal");
    assert!(!out.stdout.contains(&b'\r'), "raw CR on the terminal");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\u{1b}"));
    // A reader that goes away after the first line.
    let mut files = vec![dir.path().join("a")];
    for i in 0..200 {
        let p = dir.path().join(format!("f{i}.UKE"));
        std::fs::write(&p, &bytes).expect("write");
        files.push(p);
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tokumei"))
        .arg("inspect")
        .args(&files[1..])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Read;
        let mut first = [0u8; 16];
        let mut stdout = child.stdout.take().expect("stdout");
        stdout.read_exact(&mut first).expect("read");
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

/// Row 16: arguments that break the id grammar, dates that are not dates, outputs onto files and a
/// k of 0 were accepted, or failed with exit 1 where the README promises 2.
#[test]
fn bad_arguments_exit_2_before_any_work() {
    let s = site();
    let file = s.path("a-file");
    std::fs::write(&file, "x").expect("write");
    let cases: Vec<Vec<String>> = vec![
        vec!["provider", "init", "--id", "../../x y", "--out", "k"],
        vec!["provider", "init", "--id", "2026.batch1", "--out", "k"],
        vec![
            "package",
            "--extracted-on",
            "yesterday",
            "--to",
            "x",
            "--provider-key",
            "k",
        ],
        vec!["init", "--home", file.to_str().expect("utf8")],
        vec![
            "synth",
            "--people",
            "10",
            "--out",
            file.to_str().expect("utf8"),
        ],
        vec![
            "release",
            "build",
            "--application",
            "A-1",
            "--out",
            file.to_str().expect("utf8"),
        ],
        vec![
            "release",
            "build",
            "--application",
            "A-1",
            "--k",
            "0",
            "--out",
            "x",
        ],
        vec!["anonymize", "--input", "x.csv", "--k", "0", "--out", "o"],
        vec![
            "linkage",
            "run",
            "--settings",
            "s.toml",
            "--left",
            "l.csv",
            "--out",
        ],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    for mut args in cases {
        if args.last().map(String::as_str) == Some("--out") {
            args.push(file.to_string_lossy().to_string());
        }
        let mut c = tokumei();
        c.args(&args);
        if args[0] == "package" {
            c.args(["--in", ".", "--out", "p.tkm"]);
        }
        if args[0] == "release" {
            c.arg("--home").arg(&s.home);
        }
        let out = c.current_dir(s.dir.path()).assert().code(2);
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(&file).expect("file"), "x");
}

/// Row 4, through the binary: a command that finds the home busy says for whom, and gives up after
/// `TOKUMEI_LOCK_WAIT` without touching the home.
#[test]
fn a_second_writer_names_the_holder_and_gives_up() {
    let s = site();
    let pkg = s.package("H01", "p1.tkm");
    let home = tokumei_vault::open(&s.home).expect("home");
    let held =
        tokumei_vault::lock::writer(&home, "release build", std::time::Duration::ZERO, &|_| {})
            .expect("lock");
    let entries = s.log().len();
    let out = tokumei()
        .env("TOKUMEI_LOCK_WAIT", "1")
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(&pkg)
        .assert()
        .code(1);
    let err = stderr(&out);
    assert!(
        err.contains("busy") && err.contains("release build"),
        "{err}"
    );
    assert_eq!(
        s.log().len(),
        entries,
        "nothing was written while it waited"
    );
    drop(held);
    tokumei()
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(&pkg)
        .assert()
        .success();
}
