//! Backups, key escrow and the restore at another site, through the command line: the relocation
//! drill over SFTP to an `sshd` on loopback (the second site), damaged and older generations, and
//! processes killed during a backup and during a restore.
//!
//! Needs Debian's `restic` and `openssh-server` (scripts/test-deps.sh installs them).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use assert_cmd::Command;

use crate::common::{add_user, json, stderr, stdout};

const PASS: &str = "the-first-site-passphrase";
const NEW_PASS: &str = "the-second-site-passphrase";

fn base() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("tokumei"));
    c.env_remove("TOKUMEI_USER_KEY")
        .env_remove("TOKUMEI_USER_PASSPHRASE")
        .env_remove("TOKUMEI_FAULT_POINT")
        .env("TOKUMEI_PASSPHRASE", PASS);
    c
}

fn tokumei() -> Command {
    Command::from_std(base())
}

/// A command run as `user` (key and passphrase in `dir`) with the home passphrase `home_pass`.
fn user_std(dir: &Path, user: &str, home_pass: &str) -> std::process::Command {
    let mut c = base();
    c.env("TOKUMEI_PASSPHRASE", home_pass)
        .env("TOKUMEI_USER_KEY", dir.join(format!("keys/{user}.key")))
        .env("TOKUMEI_USER_PASSPHRASE", user_pass(user));
    c
}

fn as_user(dir: &Path, user: &str, home_pass: &str) -> Command {
    Command::from_std(user_std(dir, user, home_pass))
}

fn user_pass(user: &str) -> String {
    format!("passphrase-of-{user}")
}

fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// The second site: an OpenSSH server on loopback with its own host key, accepting one client key.
struct Sshd {
    child: Child,
    port: u16,
    identity: PathBuf,
    known_hosts: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client)")
        .success();
    assert!(ok);
}

fn sshd(dir: &Path) -> Sshd {
    std::fs::create_dir_all(dir).expect("dir");
    let host = dir.join("host_ed25519");
    let client = dir.join("client_ed25519");
    keygen(&host);
    keygen(&client);
    let authorized = dir.join("authorized_keys");
    std::fs::copy(client.with_extension("pub"), &authorized).expect("authorized_keys");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             Subsystem sftp internal-sftp\n",
            host.display(),
            authorized.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .expect("config");
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = std::process::Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd (openssh-server)");
    let public = std::fs::read_to_string(host.with_extension("pub")).expect("host key");
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {public}")).expect("known_hosts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Sshd {
        child,
        port,
        identity: client,
        known_hosts,
    }
}

fn login() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `--repo … --ssh-port … --ssh-identity … --known-hosts …` for an SFTP repository at `path`.
fn sftp_args(s: &Sshd, path: &Path) -> Vec<String> {
    vec![
        "--repo".into(),
        format!("sftp:{}@127.0.0.1:{}", login(), path.display()),
        "--ssh-port".into(),
        s.port.to_string(),
        "--ssh-identity".into(),
        s.identity.display().to_string(),
        "--known-hosts".into(),
        s.known_hosts.display().to_string(),
    ]
}

/// Every table of a SQLite database, row by row, as text.
fn tables(db: &Path) -> BTreeMap<String, Vec<String>> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("db");
    let names: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    names
        .into_iter()
        .map(|t| {
            let mut stmt = c
                .prepare(&format!("SELECT * FROM \"{t}\""))
                .expect("select");
            let n = stmt.column_count();
            let rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).map(|v| format!("{v:?}"))))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .and_then(|m| m.collect())
                .expect("rows");
            (t, rows)
        })
        .collect()
}

/// The files of `dir` (recursively) with their bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    crate::common::tree(dir)
}

/// What the drill compares between the two sites' homes: the master person index, every release's
/// cross-release snapshot, every table of the catalog (opt-out registry, receipts, users, ledger).
type State = (
    Vec<u8>,
    BTreeMap<PathBuf, Vec<u8>>,
    BTreeMap<String, Vec<String>>,
);

fn state(home: &Path) -> State {
    (
        std::fs::read(home.join("vault/mpi.json.enc")).expect("master person index"),
        files(&home.join("vault/releases")),
        tables(&home.join("catalog/catalog.sqlite")),
    )
}

fn restore_cmd(
    d: &Path,
    place: &[String],
    into: &Path,
    shares: &[(PathBuf, &str)],
) -> std::process::Command {
    let mut c = base();
    c.env_remove("TOKUMEI_PASSPHRASE")
        .args(["restore", "--site", "--target", "site2", "--into"])
        .arg(into)
        .args(place);
    for (file, who) in shares {
        c.arg("--share")
            .arg(file)
            .arg("--share-passphrase-file")
            .arg(d.join(format!("{who}.custody")));
    }
    for who in ["relo-a", "relo-b"] {
        c.arg("--technician-key")
            .arg(d.join(format!("keys/{who}.key")))
            .arg("--technician-passphrase-file")
            .arg(d.join(format!("{who}.pass")));
    }
    c.arg("--new-passphrase-file").arg(d.join("new.pass"));
    c
}

/// The release's figures that do not depend on random pseudonyms.
fn figures(v: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "persons": v["persons"],
        "cohort": v["cohort"],
        "suppressed": v["suppressed"],
        "opted_out": v["opted_out"],
        "rows": v["rows"],
        "min_class": v["min_class"],
        "transformation": v["transformation"],
        "events_released": v["events"]["rows_released"],
        "images": v["images"]["released"],
    })
}

/// A new package from provider C001, received and linked, then a third release: its figures.
fn new_package_and_release(
    d: &Path,
    home: &Path,
    user: &str,
    pass: &str,
    tag: &str,
) -> serde_json::Value {
    let pkg = d.join(format!("C001-second-{tag}.tkm"));
    tokumei()
        .args(["package", "--provider-key"])
        .arg(d.join("demo/providers/C001.key"))
        .arg("--to")
        .arg(home.join("operator.recipient"))
        .arg("--in")
        .arg(d.join("demo/region/sources/C001"))
        .args([
            "--exclude",
            "parquet",
            "--notice-filing",
            "demo-C001",
            "--notice-start",
            "2021-01-04",
        ])
        .arg("--out")
        .arg(&pkg)
        .assert()
        .success();
    as_user(d, user, pass)
        .args(["receive", "--home"])
        .arg(home)
        .arg(&pkg)
        .assert()
        .success();
    as_user(d, user, pass)
        .args(["link", "--home"])
        .arg(home)
        .assert()
        .success();
    let out = as_user(d, user, pass)
        .args([
            "release",
            "build",
            "--application",
            "A-0001",
            "--max-cross-release-linkable",
            "1",
            "--json",
            "--home",
        ])
        .arg(home)
        .arg("--out")
        .arg(d.join(format!("release-3-{tag}")))
        .assert()
        .success();
    figures(&json(&out))
}

/// Two technicians and an officer registered (their key files in `d/keys`, passphrases and
/// custody passphrases in files), and the home's keys in escrow among them, 2 of 3: the share files.
fn officers_and_escrow(d: &Path, home: &Path, pass: &str) -> Vec<PathBuf> {
    for (name, role) in [
        ("relo-a", "technician"),
        ("relo-b", "technician"),
        ("relo-officer", "auditor"),
    ] {
        let mut c = tokumei();
        c.env("TOKUMEI_PASSPHRASE", pass);
        add_user(c, home, &d.join("keys"), name, role, &user_pass(name));
        secret_file(d, &format!("{name}.pass"), &user_pass(name));
        let custody = format!("custody-secret-of-{name}");
        secret_file(d, &format!("{name}.custody"), &custody);
    }
    secret_file(d, "new.pass", NEW_PASS);
    let mut split = as_user(d, "relo-a", pass);
    split
        .args([
            "escrow",
            "split",
            "--scrypt-log-n",
            "10",
            "--threshold",
            "2",
        ])
        .arg("--home")
        .arg(home);
    for who in ["relo-a", "relo-b", "relo-officer"] {
        split
            .args(["--custodian", who, "--custodian-passphrase-file"])
            .arg(d.join(format!("{who}.custody")));
    }
    let split = split.arg("--out").arg(d.join("shares")).arg("--json");
    let split = json(&split.assert().success());
    (0..3)
        .map(|i| PathBuf::from(split["files"][i].as_str().expect("share file")))
        .collect()
}

/// The first site: the demo's home (received packages, linked persons, a release), a second
/// release, officers, and the keys in escrow among three custodians (two needed). Returns the
/// home passphrase and the share files.
fn first_site(d: &Path) -> (String, Vec<PathBuf>) {
    tokumei()
        .args(["demo", "--people", "2000", "--dir"])
        .arg(d.join("demo"))
        .assert()
        .success();
    let home = d.join("demo/home");
    let pass = std::fs::read_to_string(d.join("demo/passphrase.txt")).expect("passphrase");
    let pass = pass.trim().to_string();
    let shares = officers_and_escrow(d, &home, &pass);
    as_user(d, "relo-a", &pass)
        .args(["release", "build", "--application", "A-0001"])
        .args(["--max-cross-release-linkable", "1", "--home"])
        .arg(&home)
        .arg("--out")
        .arg(d.join("release-2"))
        .assert()
        .success();
    (pass, shares)
}

/// Two generations over SFTP to the second site (the second costs what changed), listed and
/// verified, with a checkpoint taken between them; nothing of the home readable on the target.
fn two_generations(
    d: &Path,
    pass: &str,
    place: &[String],
) -> (serde_json::Value, serde_json::Value) {
    let home = d.join("demo/home");
    as_user(d, "relo-a", pass)
        .args(["backup", "init", "--target", "site2", "--home"])
        .arg(&home)
        .args(place)
        .assert()
        .success();
    let run = |args: &[&str]| {
        let mut c = as_user(d, "relo-a", pass);
        c.arg("backup")
            .args(args)
            .args(["--target", "site2", "--json", "--home"]);
        json(&c.arg(&home).assert().success())
    };
    let first = run(&["create"]);
    tokumei()
        .env("TOKUMEI_PASSPHRASE", pass)
        .args(["audit", "checkpoint", "--home"])
        .arg(&home)
        .arg("--out")
        .arg(d.join("checkpoint.json"))
        .assert()
        .success();
    let second = run(&["create"]);
    let bytes = |v: &serde_json::Value, k: &str| v["summary"][k].as_u64().expect("bytes");
    let total = bytes(&second, "total_bytes_processed");
    assert!(bytes(&first, "data_added") > total / 2, "{first}");
    let added = bytes(&second, "data_added");
    assert!(
        added * 20 < total,
        "the second generation costs what changed: {added} of {total}"
    );
    let list = run(&["list"]);
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|g| g["recorded"] == true));
    assert_eq!(
        run(&["verify"])["generations"].as_array().map(Vec::len),
        Some(2)
    );
    // No plaintext on the target: no file named after the home's, no known plaintext of it.
    let audit_pub = std::fs::read(home.join("audit.pub")).expect("audit.pub");
    for (path, bytes) in files(&d.join("site2-repo")) {
        let p = path.display().to_string();
        assert!(!p.contains("vault") && !p.contains("catalog"), "{p}");
        let found = bytes.windows(audit_pub.len()).any(|w| w == &audit_pub[..]);
        assert!(!found, "{p}");
    }
    (first, second)
}

/// Restores refused: an older generation without both technicians' approval, one share alone.
fn refused_restores(d: &Path, place: &[String], shares: &[PathBuf], older: &str) {
    let s3 = d.join("site3");
    let given = [
        (shares[0].clone(), "relo-a"),
        (shares[2].clone(), "relo-officer"),
    ];
    let mut c = restore_cmd(d, place, &s3, &given);
    c.arg("--snapshot").arg(&older[..8]);
    let a = Command::from_std(c).assert().failure();
    assert!(stderr(&a).contains("older"), "{}", stderr(&a));
    assert!(!s3.exists());
    Command::from_std(restore_cmd(d, place, &s3, &[(shares[0].clone(), "relo-a")]))
        .assert()
        .failure();
    assert!(!s3.exists());
}

#[test]
fn relocation_drill_over_sftp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (pass, shares) = first_site(d);
    let home = d.join("demo/home");
    let site2 = sshd(&d.join("sshd"));
    let place = sftp_args(&site2, &d.join("site2-repo"));
    let (first, second) = two_generations(d, &pass, &place);

    // What the first site would do next, on a copy taken now; then the first site is destroyed.
    let before = state(&home);
    let clone = d.join("clone");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&home)
        .arg(&clone)
        .status();
    assert!(copied.expect("cp").success());
    std::fs::remove_dir_all(&home).expect("destroy the first site");
    std::fs::remove_file(d.join("demo/passphrase.txt")).expect("and its passphrase");
    refused_restores(
        d,
        &place,
        &shares,
        first["generation"]["snapshot"].as_str().expect("id"),
    );

    // The second site restores with two technicians and two custodians' shares.
    let s2 = d.join("site2-home");
    let given = [
        (shares[1].clone(), "relo-b"),
        (shares[2].clone(), "relo-officer"),
    ];
    let mut c = restore_cmd(d, &place, &s2, &given);
    c.arg("--checkpoint")
        .arg(d.join("checkpoint.json"))
        .arg("--json");
    let out = Command::from_std(c).assert().success();
    let restored = json(&out);
    assert_eq!(
        restored["generation"]["snapshot"],
        second["generation"]["snapshot"]
    );
    assert_eq!(restored["lost_entries"], 0);
    let verify = as_user(d, "relo-a", NEW_PASS)
        .args(["audit", "verify", "--home"])
        .arg(&s2)
        .assert();
    let verified = stdout(&verify.success());
    let entries = restored["entries"].as_u64().expect("entries");
    assert!(
        verified.contains(&format!("{} entries", entries + 1)),
        "{verified}"
    );
    assert!(restored["default_user_dropped"].is_string(), "{restored}");
    as_user(d, "relo-a", NEW_PASS)
        .args(["home", "check", "--home"])
        .arg(&s2)
        .assert()
        .success();
    assert!(
        state(&s2) == before,
        "the index, the releases and the catalog are intact"
    );

    // The same new package and the same release at both sites give the same figures.
    let there = new_package_and_release(d, &s2, "relo-a", NEW_PASS, "site2");
    let here = new_package_and_release(d, &clone, "relo-a", &pass, "clone");
    assert_eq!(there, here);
    assert!(there["persons"].as_u64().unwrap_or(0) > 0, "{there}");
}

/// A small home with two technicians and an officer, its keys in escrow (2 of 3), and a folder
/// target. Returns the share files.
fn small_site(d: &Path, home: &Path) -> Vec<PathBuf> {
    tokumei()
        .args(["init", "--scrypt-log-n", "10", "--user", "first", "--home"])
        .arg(home)
        .assert()
        .success();
    let shares = officers_and_escrow(d, home, PASS);
    tokumei()
        .args(["key", "new", "--name", "site2", "--out"])
        .arg(d.join("site"))
        .assert()
        .success();
    let recipient = std::fs::read_to_string(d.join("site/site2.recipient")).expect("recipient");
    as_user(d, "relo-a", PASS)
        .args(["backup", "init", "--target", "site2", "--home"])
        .arg(home)
        .arg("--repo")
        .arg(d.join("repo"))
        .args(["--site-recipient", recipient.trim(), "--site-key-out"])
        .arg(d.join("site/site2-repository.age"))
        .assert()
        .success();
    shares
}

/// The relocation site opens the target with its own age key alone (restic, without Tokumei).
fn site_opens_the_target(d: &Path) {
    use std::io::Read;
    let text = std::fs::read_to_string(d.join("site/site2.key")).expect("identity");
    let identity = text
        .lines()
        .find_map(|l| l.trim().parse::<age::x25519::Identity>().ok())
        .expect("an age identity");
    let sealed = std::fs::read(d.join("site/site2-repository.age")).expect("sealed password");
    let mut password = String::new();
    age::Decryptor::new_buffered(&sealed[..])
        .expect("age")
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .expect("sealed to the site")
        .read_to_string(&mut password)
        .expect("password");
    let out = std::process::Command::new("restic")
        .args(["--no-cache", "--json", "snapshots", "-r"])
        .arg(d.join("repo"))
        .env("RESTIC_PASSWORD", password)
        .output()
        .expect("restic");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
}

/// Delays (milliseconds) from a fixed seed: the kill points of a run are the same every time.
fn delays(seed: u64, n: usize, below: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % below
        })
        .collect()
}

/// Runs `c` in its own process group and kills the whole group (the command and the restic it
/// runs) with SIGKILL after `delay` milliseconds, as a job scheduler stopping the job would.
fn killed_after(mut c: std::process::Command, delay: u64) {
    use std::os::unix::process::CommandExt;
    let mut child = c
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(delay));
    let group = format!("-{}", child.id());
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &group])
        .status();
    let _ = child.wait();
}

fn generations(d: &Path, home: &Path) -> Vec<serde_json::Value> {
    let mut c = as_user(d, "relo-a", PASS);
    c.args(["backup", "list", "--target", "site2", "--json", "--home"])
        .arg(home);
    json(&c.assert().success())
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn killed_backups_leave_a_valid_target_and_the_next_run_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let home = d.join("home");
    small_site(d, &home);
    let create_std = || {
        let mut c = user_std(d, "relo-a", PASS);
        c.args(["backup", "create", "--target", "site2", "--json", "--home"])
            .arg(&home);
        c
    };
    let create = || Command::from_std(create_std());
    // Killed after the snapshot was written, before the log recorded it: not a generation yet;
    // the next run checks it is this home's and records it.
    create()
        .env("TOKUMEI_FAULT_POINT", "backup.after-snapshot")
        .assert()
        .failure();
    let gs = generations(d, &home);
    assert_eq!(gs.len(), 1);
    assert_eq!(gs[0]["recorded"], false);
    let next = json(&create().assert().success());
    assert_eq!(next["adopted"].as_array().map(Vec::len), Some(1), "{next}");
    assert!(generations(d, &home).iter().all(|g| g["recorded"] == true));
    // Killed at seeded points anywhere in a run: the target checks whole and a rerun completes.
    for delay in delays(20261207, 4, 2500) {
        killed_after(create_std(), delay);
        as_user(d, "relo-a", PASS)
            .args(["backup", "verify", "--target", "site2", "--home"])
            .arg(&home)
            .assert()
            .success();
        create().assert().success();
        assert!(
            generations(d, &home).iter().all(|g| g["recorded"] == true),
            "kill after {delay} ms"
        );
    }
    tokumei()
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .assert()
        .success();
}

#[test]
fn killed_restores_switch_nothing_and_a_rerun_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let home = d.join("home");
    let shares = small_site(d, &home);
    as_user(d, "relo-a", PASS)
        .args(["backup", "create", "--target", "site2", "--home"])
        .arg(&home)
        .assert()
        .success();
    let place = vec!["--repo".to_string(), d.join("repo").display().to_string()];
    let given = [(shares[0].clone(), "relo-a"), (shares[1].clone(), "relo-b")];
    let into = d.join("site2-home");
    // Killed after the restore's own audit entry, before the switch: nothing is in place.
    Command::from_std(restore_cmd(d, &place, &into, &given))
        .env("TOKUMEI_FAULT_POINT", "restore.before-switch")
        .assert()
        .failure();
    assert!(!into.exists());
    for delay in delays(7, 3, 4000) {
        killed_after(restore_cmd(d, &place, &into, &given), delay);
        if into.exists() {
            // The kill came after the switch: the home is whole.
            as_user(d, "relo-a", NEW_PASS)
                .args(["audit", "verify", "--home"])
                .arg(&into)
                .assert()
                .success();
            std::fs::remove_dir_all(&into).expect("again");
        }
        Command::from_std(restore_cmd(d, &place, &into, &given))
            .assert()
            .success();
        let v = as_user(d, "relo-a", NEW_PASS)
            .args(["audit", "verify", "--home"])
            .arg(&into)
            .assert();
        assert!(
            stdout(&v.success()).contains("intact"),
            "kill after {delay} ms"
        );
        std::fs::remove_dir_all(&into).expect("again");
    }
}

#[test]
fn a_damaged_chunk_is_named_and_the_restore_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let home = d.join("home");
    let shares = small_site(d, &home);
    for _ in 0..3 {
        as_user(d, "relo-a", PASS)
            .args(["backup", "create", "--target", "site2", "--home"])
            .arg(&home)
            .assert()
            .success();
    }
    // Retention by audit sequence: the two newest generations stay.
    let seqs = |gs: &[serde_json::Value]| gs.iter().map(|g| g["seq"].as_u64()).collect::<Vec<_>>();
    let all = seqs(&generations(d, &home));
    as_user(d, "relo-a", PASS)
        .args([
            "backup", "prune", "--keep", "2", "--target", "site2", "--home",
        ])
        .arg(&home)
        .assert()
        .success();
    assert_eq!(seqs(&generations(d, &home)), all[1..].to_vec());
    site_opens_the_target(d);
    // One byte of one data pack changed on the target.
    let packs: Vec<PathBuf> = files(&d.join("repo/data")).into_keys().collect();
    let victim = d.join("repo/data").join(&packs[packs.len() / 2]);
    let mut bytes = std::fs::read(&victim).expect("pack");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&victim, &bytes).expect("damage");
    let name = victim
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let v = as_user(d, "relo-a", PASS)
        .args(["backup", "verify", "--target", "site2", "--home"])
        .arg(&home)
        .assert()
        .failure();
    assert!(stderr(&v).contains(&name[..8]), "{}", stderr(&v));
    let place = vec!["--repo".to_string(), d.join("repo").display().to_string()];
    let given = [(shares[0].clone(), "relo-a"), (shares[1].clone(), "relo-b")];
    let into = d.join("site2-home");
    let r = Command::from_std(restore_cmd(d, &place, &into, &given))
        .assert()
        .failure();
    assert!(stderr(&r).contains("damaged repository"), "{}", stderr(&r));
    assert!(stderr(&r).contains(&name[..8]), "{}", stderr(&r));
    assert!(!into.exists());
    assert!(!d.join(".site2-home.restoring").exists());
}
