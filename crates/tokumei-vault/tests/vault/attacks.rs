//! Attacks on the operator home, each as an attacker or a careless operator would try it: crafted
//! packages (signed with a registered provider's key, or made with the public receiving key
//! alone), concurrent commands, a provider's key replaced without a second technician. Each test
//! fails on a home without the defence it names.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use tokumei_vault::access::{self, Role, Session, User};
use tokumei_vault::catalog::Provider;
use tokumei_vault::home::{init, Home};
use tokumei_vault::package::{Manifest, ManifestFile, MANIFEST_FORMAT};
use tokumei_vault::receive::{receive, Outcome};
use tokumei_vault::VaultError;

const PASS: &str = "correct horse battery staple";

const DEATHS: &str =
    "municipality_code,record_kind,name_kanji,name_kana,birth_date,sex,last_address,\
postal_code,removal_reason,removal_date,death_date,notified_date,resident_number\r\n\
022012,除票,試験　花子,シケン　ハナコ,1940-04-12,2,青森県青森市新町１丁目２－３,030-0801,死亡,\
2024-02-03,2024-02-03,2024-02-05,0000000001\r\n";

struct Lab {
    dir: tempfile::TempDir,
    home: Home,
    provider: SigningKey,
    recipient: age::x25519::Recipient,
}

fn technician(home: &Home) -> Session {
    let key = access::open_user_key(&home.default_user_key().expect("default user"), PASS)
        .expect("user key");
    access::authenticate(home, &key).expect("session")
}

/// A second technician (`tech2`) registered in the lab's home, with their session.
fn second_technician(lab: &Lab) -> Session {
    let (wrapped, public) = access::new_user_key("second passphrase!", Some(4)).expect("key");
    let now = "2026-01-01T00:00:00Z".to_string();
    lab.home
        .catalog()
        .expect("catalog")
        .add_user(&User {
            name: "tech2".into(),
            role: Role::Technician,
            provider_id: None,
            public_key: public,
            requested_by: "a".into(),
            approved_by: "b".into(),
            granted_at: now.clone(),
            reviewed_at: now,
            revoked_at: None,
        })
        .expect("tech2");
    let path = lab.dir.path().join("tech2.key");
    std::fs::write(&path, wrapped).expect("write");
    access::authenticate(
        &lab.home,
        &access::open_user_key(&path, "second passphrase!").expect("key"),
    )
    .expect("session")
}

fn provider_details(id: &str, key: &SigningKey) -> Provider {
    Provider {
        id: id.into(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        name: "青森市".into(),
        address: "青森県青森市".into(),
        representative: "市長".into(),
        acquisition: "住民基本台帳事務".into(),
        notice_filing: Some("F-1".into()),
        notice_start: Some("2020-01-06".into()),
    }
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = init(&dir.path().join("home"), PASS, Some(4))
        .expect("init")
        .home;
    let provider = tokumei_audit::generate_key().expect("key");
    tokumei_vault::provider::register(
        &home,
        &technician(&home),
        &provider_details("M022012", &provider),
    )
    .expect("register");
    let recipient = home.recipient().expect("recipient").parse().expect("age");
    Lab {
        dir,
        home,
        provider,
        recipient,
    }
}

/// One tar entry as an attacker writes it: any type, any name, any declared size.
struct Raw {
    name: Vec<u8>,
    kind: tar::EntryType,
    body: Vec<u8>,
}

fn raw(name: &str, body: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        body: body.to_vec(),
    }
}

fn manifest(id: &str, files: &[(&str, &[u8])]) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT.into(),
        package_id: id.into(),
        provider_id: "M022012".into(),
        extracted_on: "2025-06-01".into(),
        period_from: None,
        period_to: None,
        notice_filing: None,
        notice_start: None,
        files: files
            .iter()
            .map(|(p, b)| ManifestFile {
                path: (*p).into(),
                sha256: hex::encode(Sha256::digest(b)),
                bytes: b.len() as u64,
                format: None,
                records: None,
            })
            .collect(),
    }
}

/// The manifest and its signature as the first two entries.
fn signed(m: &Manifest, key: &SigningKey) -> Vec<Raw> {
    let bytes = serde_json::to_vec_pretty(m).expect("json");
    let sig = hex::encode(key.sign(&bytes).to_bytes());
    vec![
        raw("manifest.json", &bytes),
        raw("manifest.sig", sig.as_bytes()),
    ]
}

/// Writes the entries as a tar stream encrypted to the operator: what anyone holding the public
/// receiving key can make.
fn seal(lab: &Lab, name: &str, entries: &[Raw]) -> PathBuf {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(&e.name);
        h.set_entry_type(e.kind);
        h.set_mode(0o600);
        h.set_size(e.body.len() as u64);
        if e.kind == tar::EntryType::GNUSparse {
            // A 1 GiB file of holes with no data stored: expanded on reading by a tar library.
            let gnu = h.as_gnu_mut().expect("gnu");
            gnu.set_real_size(1 << 30);
            gnu.sparse[0].set_offset(1 << 30);
            gnu.sparse[0].set_length(0);
        }
        h.set_cksum();
        tar.append(&h, e.body.as_slice()).expect("append");
    }
    let plain = tar.into_inner().expect("tar");
    let dir = lab.dir.path().join("sent");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join(name);
    let enc =
        age::Encryptor::with_recipients(std::iter::once(&lab.recipient as &dyn age::Recipient))
            .expect("encryptor");
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).expect("wrap");
    std::io::Write::write_all(&mut w, &plain).expect("write");
    w.finish().expect("finish");
    std::fs::write(&path, out).expect("write");
    path
}

fn try_receive(lab: &Lab, pkg: &Path) -> Result<Outcome, VaultError> {
    let key = lab.home.unlock_data_key(PASS).expect("unlock");
    receive(&lab.home, pkg, "operator", &key)
}

fn refusal(r: Result<Outcome, VaultError>) -> String {
    match r {
        Err(VaultError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn tree_of(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

fn audit_intact(home: &Home) -> u64 {
    home.verify_audit(None).expect("audit verifies").entries
}

/// Row 1: a registered provider's manifest names `../../../../victim` as its package id.
#[test]
fn a_package_id_that_climbs_out_of_the_home_is_refused_and_nothing_outside_is_touched() {
    let lab = lab();
    let victim = lab.dir.path().join("victim");
    std::fs::create_dir(&victim).expect("mkdir");
    std::fs::write(victim.join("precious.txt"), "keep").expect("write");
    let outside_before = tree_of(lab.dir.path());
    for id in ["../../../../victim", "../victim", "/tmp/victim", "a/b"] {
        let m = manifest(id, &[("death/deaths.csv", DEATHS.as_bytes())]);
        let mut entries = signed(&m, &lab.provider);
        entries.push(raw("files/death/deaths.csv", DEATHS.as_bytes()));
        let pkg = seal(&lab, "climb.tkm", &entries);
        let why = refusal(try_receive(&lab, &pkg));
        assert!(why.contains("package id"), "{why}");
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("precious.txt")).expect("victim"),
        "keep"
    );
    let outside_after: Vec<PathBuf> = tree_of(lab.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(&lab.home.root) && !p.starts_with(lab.dir.path().join("sent")))
        .collect();
    let outside_before: Vec<PathBuf> = outside_before
        .into_iter()
        .filter(|p| !p.starts_with(&lab.home.root) && !p.starts_with(lab.dir.path().join("sent")))
        .collect();
    assert_eq!(outside_before, outside_after);
    assert_eq!(
        tokumei_vault::catalog::Catalog::open(&lab.home.root.join("catalog/catalog.sqlite"))
            .expect("catalog")
            .receipts()
            .expect("n"),
        0
    );
    audit_intact(&lab.home);
}

/// Row 2: a dotted package id once made the next receipt's recovery delete a received package.
#[test]
fn a_dotted_package_id_is_refused_and_received_packages_survive_recovery() {
    let lab = lab();
    let good = manifest("batch1", &[("death/deaths.csv", DEATHS.as_bytes())]);
    let mut entries = signed(&good, &lab.provider);
    entries.push(raw("files/death/deaths.csv", DEATHS.as_bytes()));
    let pkg = seal(&lab, "good.tkm", &entries);
    assert!(matches!(
        try_receive(&lab, &pkg).expect("received"),
        Outcome::Received { .. }
    ));
    let m = manifest("2026.batch1", &[("death/deaths.csv", DEATHS.as_bytes())]);
    let mut entries = signed(&m, &lab.provider);
    entries.push(raw("files/death/deaths.csv", DEATHS.as_bytes()));
    let pkg2 = seal(&lab, "dotted.tkm", &entries);
    assert!(refusal(try_receive(&lab, &pkg2)).contains("package id"));
    // A stray dotted file under the home is no package's: recovery leaves it and every package.
    std::fs::write(lab.home.root.join("packages/batch1.old.age"), "x").expect("write");
    let again = try_receive(&lab, &pkg).expect("again");
    assert!(
        matches!(again, Outcome::AlreadyReceived { .. }),
        "{again:?}"
    );
    assert!(lab.home.root.join("packages/batch1.age").exists());
    assert!(lab
        .home
        .root
        .join("vault/identity/batch1.parquet.enc")
        .exists());
    assert!(lab.home.root.join("packages/batch1.old.age").exists());
    audit_intact(&lab.home);
}

/// Row 3: made with the public receiving key alone, entries before the manifest were buffered.
#[test]
fn nothing_is_read_into_memory_before_the_signature_is_checked() {
    let lab = lab();
    // A 1 GiB sparse entry first: refused at its header, before the manifest.
    let sparse = Raw {
        name: b"files/a.csv".to_vec(),
        kind: tar::EntryType::GNUSparse,
        body: Vec::new(),
    };
    let pkg = seal(&lab, "sparse-first.tkm", &[sparse]);
    let why = refusal(try_receive(&lab, &pkg));
    assert!(why.contains("sparse"), "{why}");
    // A manifest signed by an unknown key, followed by 64 MiB: refused at the signature; the
    // file's bytes are never kept.
    let stranger = tokumei_audit::generate_key().expect("key");
    let big = vec![b'x'; 64 << 20];
    let m = manifest("p1", &[("big.csv", &big)]);
    let mut entries = signed(&m, &stranger);
    entries.push(raw("files/big.csv", &big));
    let pkg = seal(&lab, "unsigned.tkm", &entries);
    let why = refusal(try_receive(&lab, &pkg));
    assert!(why.contains("not signed"), "{why}");
    // Signed by the registered provider, then a sparse entry: refused before it is expanded.
    let m = manifest("p2", &[("a.csv", b"")]);
    let mut entries = signed(&m, &lab.provider);
    entries.push(Raw {
        name: b"files/a.csv".to_vec(),
        kind: tar::EntryType::GNUSparse,
        body: Vec::new(),
    });
    let pkg = seal(&lab, "sparse.tkm", &entries);
    assert!(refusal(try_receive(&lab, &pkg)).contains("sparse"));
    // Links and extension headers are refused too.
    for kind in [
        tar::EntryType::Symlink,
        tar::EntryType::Link,
        tar::EntryType::XHeader,
        tar::EntryType::GNULongLink,
        tar::EntryType::Directory,
    ] {
        let m = manifest("p3", &[("a.csv", b"")]);
        let mut entries = signed(&m, &lab.provider);
        entries.push(Raw {
            name: b"files/a.csv".to_vec(),
            kind,
            body: Vec::new(),
        });
        let pkg = seal(&lab, "kind.tkm", &entries);
        assert!(
            refusal(try_receive(&lab, &pkg)).contains("only plain files"),
            "{kind:?}"
        );
    }
    audit_intact(&lab.home);
}

/// Row 12: a second entry of the same name, not covered by the manifest, had its records stored.
#[test]
fn duplicate_unlisted_and_resized_entries_are_refused() {
    let lab = lab();
    let m = manifest("dup", &[("death/deaths.csv", DEATHS.as_bytes())]);
    let other = DEATHS.replace("花子", "花子子");
    let cases: Vec<(Vec<Raw>, &str)> = vec![
        (
            vec![
                raw("files/death/deaths.csv", DEATHS.as_bytes()),
                raw("files/death/deaths.csv", other.as_bytes()),
            ],
            "twice",
        ),
        (
            vec![
                raw("files/death/deaths.csv", DEATHS.as_bytes()),
                raw("files/death/more.csv", other.as_bytes()),
            ],
            "does not list",
        ),
        (
            vec![raw("files/death/deaths.csv", other.as_bytes())],
            "size",
        ),
        (vec![], "missing"),
    ];
    for (files, what) in cases {
        let mut entries = signed(&m, &lab.provider);
        entries.extend(files);
        let pkg = seal(&lab, "dup.tkm", &entries);
        let why = refusal(try_receive(&lab, &pkg));
        assert!(why.contains(what), "{what}: {why}");
    }
    // The manifest must come first.
    let mut entries = vec![raw("files/death/deaths.csv", DEATHS.as_bytes())];
    entries.extend(signed(&m, &lab.provider));
    let pkg = seal(&lab, "late.tkm", &entries);
    assert!(refusal(try_receive(&lab, &pkg)).contains("must begin"));
    audit_intact(&lab.home);
}

/// The home's limits hold before a byte of a file is read.
#[test]
fn a_package_over_the_homes_limits_is_refused_from_its_manifest() {
    let lab = lab();
    let config = lab.home.root.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}max_package_bytes = 1000\n")).expect("write");
    let home = tokumei_vault::open(&lab.home.root).expect("open");
    let big = vec![b'x'; 600];
    let m = manifest("over", &[("a.csv", &big), ("b.csv", &big)]);
    let mut entries = signed(&m, &lab.provider);
    entries.push(raw("files/a.csv", &big));
    entries.push(raw("files/b.csv", &big));
    let pkg = seal(&lab, "over.tkm", &entries);
    let key = home.unlock_data_key(PASS).expect("unlock");
    let why = refusal(receive(&home, &pkg, "operator", &key));
    assert!(why.contains("limit"), "{why}");
}

/// Row 4: two receipts at once appended the same sequence number and one's recovery deleted the
/// other's staged files.
#[test]
fn two_receipts_at_once_both_land_and_the_log_stays_intact() {
    let lab = lab();
    let pkgs: Vec<PathBuf> = (0..4)
        .map(|i| {
            let m = manifest(&format!("c{i}"), &[("death/deaths.csv", DEATHS.as_bytes())]);
            let mut entries = signed(&m, &lab.provider);
            entries.push(raw("files/death/deaths.csv", DEATHS.as_bytes()));
            seal(&lab, &format!("c{i}.tkm"), &entries)
        })
        .collect();
    std::thread::scope(|scope| {
        for pair in pkgs.chunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .map(|p| {
                    let home = tokumei_vault::open(&lab.home.root).expect("open");
                    scope.spawn(move || {
                        let key = home.unlock_data_key(PASS).expect("unlock");
                        receive(&home, p, "operator", &key)
                    })
                })
                .collect();
            for h in handles {
                assert!(matches!(
                    h.join().expect("thread").expect("received"),
                    Outcome::Received { .. }
                ));
            }
        }
    });
    for i in 0..4 {
        assert!(lab
            .home
            .root
            .join(format!("vault/identity/c{i}.parquet.enc"))
            .exists());
    }
    audit_intact(&lab.home);
}

/// Row 5: `provider add` on an existing id replaced its key with no credentials.
#[test]
fn a_providers_key_changes_only_by_a_rotation_two_technicians_approve() {
    let lab = lab();
    let first = technician(&lab.home);
    let attacker = tokumei_audit::generate_key().expect("key");
    let why = match tokumei_vault::provider::register(
        &lab.home,
        &first,
        &provider_details("M022012", &attacker),
    ) {
        Err(VaultError::Refused(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(why.contains("already registered"), "{why}");
    // A researcher cannot register a provider at all.
    let (wrapped, public) = access::new_user_key("researcher passphrase", Some(4)).expect("key");
    let catalog = lab.home.catalog().expect("catalog");
    let now = "2026-01-01T00:00:00Z".to_string();
    let user = |name: &str, role: Role, public: String| User {
        name: name.into(),
        role,
        provider_id: None,
        public_key: public,
        requested_by: "a".into(),
        approved_by: "b".into(),
        granted_at: now.clone(),
        reviewed_at: now.clone(),
        revoked_at: None,
    };
    catalog
        .add_user(&user("res", Role::Researcher, public))
        .expect("researcher");
    std::fs::write(lab.dir.path().join("res.key"), wrapped).expect("write");
    let res_key = access::open_user_key(&lab.dir.path().join("res.key"), "researcher passphrase")
        .expect("key");
    let res = access::authenticate(&lab.home, &res_key).expect("session");
    assert!(matches!(
        tokumei_vault::provider::register(&lab.home, &res, &provider_details("X1", &attacker)),
        Err(VaultError::Denied(_))
    ));
    // A rotation requested and approved by the same technician is denied.
    let new = tokumei_audit::generate_key().expect("key");
    let new_hex = hex::encode(new.verifying_key().to_bytes());
    tokumei_vault::provider::request_rotation(&lab.home, &first, "M022012", &new_hex)
        .expect("request");
    assert!(matches!(
        tokumei_vault::provider::approve_rotation(&lab.home, &first, "M022012"),
        Err(VaultError::Denied(_))
    ));
    // A package signed with the new key is refused until a second technician approves.
    let m = manifest("rot", &[("death/deaths.csv", DEATHS.as_bytes())]);
    let mut entries = signed(&m, &new);
    entries.push(raw("files/death/deaths.csv", DEATHS.as_bytes()));
    let pkg = seal(&lab, "rot.tkm", &entries);
    assert!(refusal(try_receive(&lab, &pkg)).contains("not signed"));
    let second = second_technician(&lab);
    tokumei_vault::provider::approve_rotation(&lab.home, &second, "M022012").expect("approve");
    assert!(matches!(
        try_receive(&lab, &pkg).expect("received"),
        Outcome::Received { .. }
    ));
    let log = std::fs::read_to_string(lab.home.audit_dir().join("entries.jsonl")).expect("log");
    assert!(log.contains("provider.rotate.approve"));
    assert!(log.contains("refused: already registered"));
    audit_intact(&lab.home);
}

/// Row 11: `UPDATE users SET revoked_at = NULL` (or a role) in the catalog went unnoticed.
#[test]
fn an_edited_or_rolled_back_catalog_opens_no_session_and_is_audited() {
    let lab = lab();
    let catalog = lab.home.catalog().expect("catalog");
    let (wrapped, public) = access::new_user_key("researcher passphrase", Some(4)).expect("key");
    let now = "2026-01-01T00:00:00Z".to_string();
    catalog
        .add_user(&User {
            name: "res".into(),
            role: Role::Researcher,
            provider_id: None,
            public_key: public,
            requested_by: "a".into(),
            approved_by: "b".into(),
            granted_at: now.clone(),
            reviewed_at: now,
            revoked_at: None,
        })
        .expect("researcher");
    drop(catalog);
    let key_file = lab.dir.path().join("res.key");
    std::fs::write(&key_file, wrapped).expect("write");
    let res_key = access::open_user_key(&key_file, "researcher passphrase").expect("key");
    access::authenticate(&lab.home, &res_key).expect("a session opens");
    let db_path = lab.home.root.join("catalog/catalog.sqlite");
    let before_revocation = std::fs::read(&db_path).expect("copy");
    lab.home
        .catalog()
        .expect("catalog")
        .revoke_user("res")
        .expect("revoke");
    assert!(matches!(
        access::authenticate(&lab.home, &res_key),
        Err(VaultError::Denied(_))
    ));
    let sql = |q: &str| {
        let db = rusqlite::Connection::open(&db_path).expect("db");
        db.execute_batch(q).expect("sql");
    };
    let tampered = |what: &str| {
        let r = access::authenticate(&lab.home, &res_key);
        assert!(matches!(r, Err(VaultError::Tampered(_))), "{what}: {r:?}");
    };
    // The revocation undone.
    sql("UPDATE users SET revoked_at = NULL WHERE name = 'res'");
    tampered("revocation undone");
    // A role raised.
    sql("UPDATE users SET role = 'technician' WHERE name = 'res'");
    tampered("role raised");
    // The whole catalog rolled back to its validly signed state before the revocation.
    std::fs::write(&db_path, &before_revocation).expect("restore");
    let _ = std::fs::remove_file(lab.home.root.join("catalog/catalog.sqlite-wal"));
    tampered("rolled back");
    // A provider's key swapped: its packages are refused, not received.
    let attacker = tokumei_audit::generate_key().expect("key");
    sql(&format!(
        "UPDATE providers SET public_key = '{}' WHERE id = 'M022012'",
        hex::encode(attacker.verifying_key().to_bytes())
    ));
    let m = manifest("swap", &[("death/deaths.csv", DEATHS.as_bytes())]);
    let mut entries = signed(&m, &attacker);
    entries.push(raw("files/death/deaths.csv", DEATHS.as_bytes()));
    let pkg = seal(&lab, "swap.tkm", &entries);
    let key = lab.home.unlock_data_key(PASS).expect("unlock");
    assert!(matches!(
        receive(&lab.home, &pkg, "operator", &key),
        Err(VaultError::Tampered(_))
    ));
    let log = std::fs::read_to_string(lab.home.audit_dir().join("entries.jsonl")).expect("log");
    assert!(
        log.lines()
            .filter(|l| l.contains("session.open") && l.contains("tampered"))
            .count()
            >= 3,
        "every refused session is audited"
    );
}

/// A path over 100 bytes travels as a GNU long name: received; a long name over the limit, or one
/// that names nothing, is refused.
#[test]
fn long_paths_are_received_and_oversized_long_names_refused() {
    let lab = lab();
    let extract = lab.dir.path().join("extract");
    let deep = extract
        .join(format!("death/{}", "d".repeat(60)))
        .join("e".repeat(60));
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("deaths.csv"), DEATHS).expect("write");
    let pkg = lab.dir.path().join("long.tkm");
    let recipient = lab.home.recipient().expect("recipient");
    tokumei_vault::package::package(
        &lab.provider,
        "M022012",
        &recipient,
        &extract,
        &pkg,
        &tokumei_vault::package::PackageOptions::default(),
    )
    .expect("package");
    let Outcome::Received { report, .. } = try_receive(&lab, &pkg).expect("received") else {
        panic!("not received");
    };
    assert_eq!(report.stored, 1);
    let m = manifest("ln", &[("a.csv", b"x")]);
    for body in [vec![b'a'; 2000], b"files/a.csv".to_vec()] {
        let mut entries = signed(&m, &lab.provider);
        entries.push(Raw {
            name: b"././@LongLink".to_vec(),
            kind: tar::EntryType::GNULongName,
            body,
        });
        let pkg = seal(&lab, "ln.tkm", &entries);
        let why = refusal(try_receive(&lab, &pkg));
        assert!(why.contains("long name"), "{why}");
    }
}

/// A provider's recruitment key swapped in the database (so that its patient lists would be sealed
/// to an attacker): refused on reading, and the catalog's signed head no longer matches.
#[test]
fn a_swapped_recruitment_key_is_refused() {
    let lab = lab();
    let catalog = lab.home.catalog().expect("catalog");
    let ours = age::x25519::Identity::generate().to_public().to_string();
    catalog
        .put_recruit_recipient("M022012", &ours, "operator", false)
        .expect("registered");
    assert_eq!(
        catalog.recruit_recipient("M022012").expect("read"),
        Some(ours.clone())
    );
    assert!(matches!(
        catalog.put_recruit_recipient("M022012", &ours, "operator", false),
        Err(VaultError::Refused(_))
    ));
    drop(catalog);
    let theirs = age::x25519::Identity::generate().to_public().to_string();
    let db = rusqlite::Connection::open(lab.home.root.join("catalog/catalog.sqlite")).expect("db");
    db.execute(
        "UPDATE provider_recruit_keys SET recipient = ?1 WHERE provider_id = 'M022012'",
        [&theirs],
    )
    .expect("swap");
    let r = lab
        .home
        .catalog()
        .and_then(|c| c.recruit_recipient("M022012"));
    assert!(matches!(r, Err(VaultError::Tampered(_))), "{r:?}");
    // The row removed: the head's digest no longer matches.
    db.execute("DELETE FROM provider_recruit_keys", [])
        .expect("remove");
    assert!(matches!(lab.home.catalog(), Err(VaultError::Tampered(_))));
}

/// A recruitment key is replaced only by two technicians: the requester cannot approve, and the
/// approver names the key (a request slipped into the database is not approved unseen).
#[test]
fn a_recruitment_key_is_replaced_by_two_technicians_naming_it() {
    use tokumei_vault::provider::{approve_recruit_key, set_recruit_key, RecruitKey};
    let lab = lab();
    let first = technician(&lab.home);
    let key = |_: ()| age::x25519::Identity::generate().to_public().to_string();
    let (old, new) = (key(()), key(()));
    let set = set_recruit_key(&lab.home, &first, "M022012", &old).expect("registered");
    assert_eq!(set, RecruitKey::Registered);
    let set = set_recruit_key(&lab.home, &first, "M022012", &new).expect("requested");
    assert_eq!(set, RecruitKey::Requested);
    let current = |_: ()| {
        lab.home
            .catalog()
            .and_then(|c| c.recruit_recipient("M022012"))
            .expect("read")
    };
    assert_eq!(current(()), Some(old.clone()));
    assert!(matches!(
        approve_recruit_key(&lab.home, &first, "M022012", &new),
        Err(VaultError::Denied(_))
    ));
    let second = second_technician(&lab);
    // Another key than the one requested: refused.
    assert!(matches!(
        approve_recruit_key(&lab.home, &second, "M022012", &key(())),
        Err(VaultError::Refused(_))
    ));
    approve_recruit_key(&lab.home, &second, "M022012", &new).expect("approved");
    assert_eq!(current(()), Some(new));
    let log = std::fs::read_to_string(lab.home.audit_dir().join("entries.jsonl")).expect("log");
    assert!(log.contains("provider.recruit-key.approve"));
    audit_intact(&lab.home);
}
