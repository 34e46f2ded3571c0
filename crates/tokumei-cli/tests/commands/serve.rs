//! `tokumei serve` as an operator starts it: it says where it listens, writes the certificate it
//! made for localhost, answers on that port, stops on Ctrl-C (SIGINT) with its start and stop in
//! the audit log, and the log still verifies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;

const PASS: &str = "correct horse battery staple";

/// The binary, with the home passphrase in its environment.
fn tokumei() -> Command {
    let mut c = Command::new(cargo_bin("tokumei"));
    c.env("TOKUMEI_PASSPHRASE", PASS);
    c
}

/// The audit log's files as text.
fn audit_text(home: &std::path::Path) -> String {
    std::fs::read_dir(home.join("audit"))
        .expect("audit")
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

#[test]
fn serve_listens_writes_its_certificate_and_stops_on_interrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let init = tokumei()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .output()
        .expect("init");
    assert!(init.status.success());
    let mut child = tokumei()
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(&home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("text");
    let address = first
        .strip_prefix("serving https://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    let second = lines.next().expect("a line").expect("text");
    assert!(second.contains("web/localhost.crt"), "{second}");
    let cert = std::fs::read_to_string(home.join("web/localhost.crt")).expect("certificate");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        std::fs::read_dir(home.join("web")).expect("dir").count() == 1,
        "only the certificate is written: the key stays in memory"
    );
    std::net::TcpStream::connect(&address).expect("it listens");
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "a clean stop on interrupt: {status}");
    let verify = tokumei()
        .args(["audit", "verify", "--json", "--home"])
        .arg(&home)
        .output()
        .expect("verify");
    assert!(verify.status.success());
    let log = audit_text(&home);
    assert!(log.contains("web.serve") && log.contains("web.stop"));
}

#[test]
fn user_invite_prints_a_token_once_and_its_issuer_cannot_approve_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let init = tokumei()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .output()
        .expect("init");
    assert!(init.status.success());
    let out = tokumei()
        .args([
            "user", "invite", "--name", "operator", "--hours", "2", "--home",
        ])
        .arg(&home)
        .output()
        .expect("invite");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .split_whitespace()
        .find(|w| w.starts_with("I-"))
        .expect("an invitation id")
        .to_string();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token (give it to the user; shown once): "))
        .expect("a token");
    assert_eq!(token.len(), 40);
    let out = tokumei()
        .args(["user", "approve-invitation", "--id", &id, "--home"])
        .arg(&home)
        .output()
        .expect("approve");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("second technician"));
    let log = audit_text(&home);
    assert!(
        log.contains("web.invite") && !log.contains(token),
        "the token is never logged"
    );
}
