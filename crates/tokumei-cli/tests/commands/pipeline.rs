//! The operator pipeline end to end through the binary: synth → package per provider → receive,
//! with the opt-out registry, the notice period, the quarantine, purges, users and roles, the
//! two-person rule for exports, crash safety under SIGKILL and the plain-text check of the home.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{add_user, json, stderr, stdout, tree};
use tokumei_model::identity::IdentityRecord;
use tokumei_model::truth::{NativeLink, RecordLink, TruthNoise};

use common::PASS;
const TECH_B_PASS: &str = "second technician passphrase";
const AUDITOR_PASS: &str = "auditor passphrase 2026";

fn cmd() -> Command {
    common::operator()
}

/// As another user: their key file and passphrase.
fn as_user(key: &Path, pass: &str) -> Command {
    let mut c = cmd();
    c.env("TOKUMEI_USER_KEY", key)
        .env("TOKUMEI_USER_PASSPHRASE", pass);
    c
}

/// Copies a provider's native files (not its canonical Parquet tables) into an extract folder.
fn native_extract(region: &Path, provider: &str, out: &Path) {
    let src = region.join("sources").join(provider);
    for (rel, bytes) in tree(&src) {
        if rel.extension().is_some_and(|e| e == "parquet") {
            continue;
        }
        let to = out.join(&rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::write(to, bytes).expect("write");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let t = to.join(&rel);
        std::fs::create_dir_all(t.parent().expect("parent")).expect("mkdir");
        std::fs::write(&t, bytes).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(from.join(&rel))
                .expect("meta")
                .permissions()
                .mode();
            std::fs::set_permissions(&t, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
    for d in [
        "vault/identity",
        "vault/clinical",
        "packages",
        "quarantine",
        "audit",
    ] {
        std::fs::create_dir_all(to.join(d)).expect("mkdir");
    }
}

/// `N records in the manifest): S records stored, Q quarantined, O refused by opt-out, T refused by
/// the notice period; I images stored, R images refused …` → ((N, S, Q, O, T), I + R): a DICOM
/// file is a unit of the manifest too.
fn counts_with_images(line: &str) -> ((u64, u64, u64, u64, u64), u64) {
    let num_before = |marker: &str| -> u64 {
        let at = line
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {line}"));
        line[..at]
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a number before {marker} in {line}"))
    };
    (
        (
            num_before(" records in the manifest"),
            num_before(" records stored"),
            num_before(" quarantined"),
            num_before(" refused by opt-out"),
            num_before(" refused by the notice period"),
        ),
        num_before(" images stored") + num_before(" images refused"),
    )
}

fn receipt_ids(home: &Path) -> Vec<String> {
    tokumei_vault::catalog::Catalog::open(&home.join("catalog/catalog.sqlite"))
        .expect("catalog")
        .receipt_ids()
        .expect("receipts")
}

/// Whether every file of a received package is in place.
fn package_whole(home: &Path, id: &str) -> bool {
    let clinical = home.join(format!("vault/clinical/{id}"));
    home.join(format!("vault/identity/{id}.parquet.enc"))
        .is_file()
        && home.join(format!("packages/{id}.age")).is_file()
        && home.join(format!("quarantine/{id}.json.enc")).is_file()
        && [
            "encounters",
            "diagnoses",
            "prescriptions",
            "procedures",
            "lab_results",
            "deaths",
        ]
        .iter()
        .all(|t| clinical.join(format!("{t}.parquet")).is_file())
}

/// Final (not staging) files and folders of packages in the home (five per package).
fn final_files(home: &Path) -> usize {
    ["vault/identity", "vault/clinical", "packages", "quarantine"]
        .iter()
        .map(|d| {
            std::fs::read_dir(home.join(d))
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// A small deterministic generator for kill points (the seed is fixed: failures replay).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn vault_identities(home: &Path, package: &str) -> Vec<IdentityRecord> {
    let h = tokumei_vault::open(home).expect("home");
    let key = h.unlock_data_key(PASS).expect("key");
    tokumei_vault::store::read_identities(&h, &key, package).expect("identities")
}

/// The providers of the run. H06 began its notice five days ago: none of its patients may be
/// received yet.
const PROVIDERS: [&str; 4] = ["H01", "H06", "K02", "M022012"];

/// The places of the end-to-end run: the region, the home, the providers' and users' keys, and the
/// date H06's notice began.
struct Site {
    dir: tempfile::TempDir,
    region: PathBuf,
    home: PathBuf,
    keys: PathBuf,
    user_keys: PathBuf,
    recent: String,
    /// What `synth --json` printed.
    synth: serde_json::Value,
}

impl Site {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// As the second technician.
    fn tech_b(&self) -> Command {
        as_user(&self.user_keys.join("tech-b.key"), TECH_B_PASS)
    }

    /// As the auditor.
    fn aud(&self) -> Command {
        as_user(&self.user_keys.join("aud.key"), AUDITOR_PASS)
    }

    /// As a committee member or the researcher (`committee`).
    fn user(&self, name: &str) -> Command {
        as_user(
            &self.user_keys.join(format!("{name}.key")),
            &format!("{name} passphrase 2026"),
        )
    }

    /// The package received from provider `p`.
    fn package_of(&self, p: &str) -> String {
        let cat = tokumei_vault::catalog::Catalog::open(&self.home.join("catalog/catalog.sqlite"))
            .expect("catalog");
        receipt_ids(&self.home)
            .into_iter()
            .find(|id| cat.receipt(id).expect("receipt").expect("r").provider_id == p)
            .expect("package")
    }

    /// The operator's age recipient.
    fn recipient(&self) -> String {
        std::fs::read_to_string(self.home.join("operator.recipient")).expect("recipient")
    }

    /// The home's audit log.
    fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("audit/entries.jsonl")).expect("log")
    }
}

/// The region's truth: every identity record, the native files' links, the records malformed on
/// purpose and each record's true person.
struct Truth {
    identities: Vec<IdentityRecord>,
    links: Vec<NativeLink>,
    malformed: HashSet<String>,
    person_of: HashMap<String, String>,
}

impl Truth {
    fn read(region: &Path) -> Truth {
        let identities: Vec<IdentityRecord> =
            tokumei_synth::writer::read_sources(region).expect("identities");
        let links: Vec<NativeLink> =
            tokumei_synth::writer::read_table(&region.join("truth/native_links.parquet"))
                .expect("links");
        let malformed: HashSet<String> =
            tokumei_synth::writer::read_table::<TruthNoise>(&region.join("truth/noise.parquet"))
                .expect("noise")
                .into_iter()
                .filter(|n| n.kind.starts_with("malformed-"))
                .map(|n| n.record_id)
                .collect();
        let person_of: HashMap<String, String> = tokumei_synth::writer::read_table::<RecordLink>(
            &region.join("truth/record_links.parquet"),
        )
        .expect("record links")
        .into_iter()
        .map(|l| (l.record_id, l.person_id))
        .collect();
        Truth {
            identities,
            links,
            malformed,
            person_of,
        }
    }
}

/// The record counts of a receipt by provider: (manifest, stored, quarantined, opted out, too
/// early).
type Counts = BTreeMap<&'static str, (u64, u64, u64, u64, u64)>;

/// A record's identity as far as the truth can be told from it: (provider, kind, date, birth
/// date, ids).
type Key = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn key_of(r: &IdentityRecord) -> Key {
    (
        r.provider_id.clone(),
        r.source_kind.code().to_string(),
        r.recorded_on.to_string(),
        r.birth_date.map(|d| d.to_string()),
        r.local_patient_id.clone(),
        r.insured_number.clone(),
        r.insured_branch.clone(),
    )
}

fn read_mpi(home: &Path) -> tokumei_link::mpi::Mpi {
    let h = tokumei_vault::open(home).expect("home");
    let key = h.unlock_data_key(PASS).expect("key");
    tokumei_link::mpi::Mpi::read(&h, &key).expect("mpi")
}

#[test]
fn synth_package_receive_end_to_end() {
    let s = setup();
    let truth = Truth::read(&s.region);
    synth_counts_match_the_truth(&s, &truth);
    let opted = opt_out_before_receipt(&s, &truth);
    let packages = seal(&s);
    crash_safety(&s, &packages);
    let by_provider = receive_all(&s, &packages, &truth);
    receipts_are_kept(&s, &packages, &opted.0);
    quarantine_lists_broken_records(&s, &truth, &by_provider);
    let linked = linkage_against_truth(&s, &truth, &opted.1);
    clerical_review(&s);
    let victim = optout_after_receipt(&s, &linked);
    let other = roles_and_two_person_export(&s, &packages);
    let meeting = committee(&s);
    dry_run_writes_nothing(&s);
    let pseudonym_sets = two_releases(&s, &other);
    cross_release_linkability(&s);
    let hipaa = refused_killed_and_other_presets(&s);
    pseudonymized_release(&s, &meeting, &pseudonym_sets);
    images_release(&s, &meeting);
    reidentification_battery(&s, &linked, &victim, &opted.1);
    ledger(&s, &hipaa);
    revoked_users_and_the_audit_log(&s);
    nothing_identifying_in_plain_text(&s, &truth);
}

/// The region, the home, two more users (a technician and an auditor) and the providers.
fn setup() -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let region = dir.path().join("region");
    let synth = json(
        &cmd()
            // Small archive parts: the hospital's SS-MIX2 storage is packaged and received as
            // several part archives, as large extracts are.
            .args([
                "synth",
                "--people",
                "1500",
                "--seed",
                "7",
                "--archive-entries",
                "500",
                "--json",
                "--out",
            ])
            .arg(&region)
            .assert()
            .success(),
    );
    let home = dir.path().join("home");
    let keys = dir.path().join("keys");
    cmd()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&home)
        .assert()
        .success();
    let today = chrono::Utc::now().date_naive();
    let s = Site {
        region,
        home,
        keys,
        user_keys: dir.path().join("users"),
        recent: (today - chrono::Days::new(5)).to_string(),
        synth,
        dir,
    };
    users(&s);
    providers(&s);
    s
}

/// `synth --json` counts what the region holds.
fn synth_counts_match_the_truth(s: &Site, truth: &Truth) {
    assert_eq!(s.synth["people"], 1500, "{}", s.synth);
    assert_eq!(
        s.synth["rows"]["identities"].as_u64(),
        Some(truth.identities.len() as u64),
        "{}",
        s.synth
    );
    let folders = std::fs::read_dir(s.region.join("sources"))
        .expect("sources")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(s.synth["providers"].as_u64(), Some(folders as u64));
    let h01 = s.region.join("sources/H01");
    assert!(
        h01.join("ssmix2.zip").is_file() && h01.join("ssmix2-0002.zip").is_file(),
        "H01's storage is in parts"
    );
    assert!(
        truth
            .links
            .iter()
            .any(|l| l.path.starts_with("sources/H01/ssmix2-0002.zip#")),
        "records are linked to the later parts"
    );
}

/// Users: a second technician and an auditor, each with a key file and a passphrase.
fn users(s: &Site) {
    for (name, role, pass) in [
        ("tech-b", "technician", TECH_B_PASS),
        ("aud", "auditor", AUDITOR_PASS),
    ] {
        add_user(cmd(), &s.home, &s.user_keys, name, role, pass);
    }
    let listed = stdout(
        &cmd()
            .args(["user", "list", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(
        listed.contains("tech-b") && listed.contains("auditor"),
        "{listed}"
    );
    let listed = json(
        &cmd()
            .args(["user", "list", "--json", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    let grants: Vec<(&str, &str)> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or(""),
                u["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        grants,
        [
            ("aud", "auditor"),
            ("operator", "technician"),
            ("tech-b", "technician")
        ],
        "{listed}"
    );
    assert_eq!(listed[2]["requested_by"], "事務局", "{listed}");
    assert_eq!(listed[2]["review_due"], false, "{listed}");
}

/// The providers, H06 with a notice begun five days ago; a details file missing a required item is
/// refused, naming it.
fn providers(s: &Site) {
    for p in PROVIDERS {
        cmd()
            .args(["provider", "init", "--id", p, "--out"])
            .arg(&s.keys)
            .assert()
            .success();
        let details = s.path(&format!("{p}.toml"));
        std::fs::write(
            &details,
            format!(
                "name = \"架空 {p}\"\naddress = \"青森県青森市\"\nrepresentative = \"代表者\"\n\
                 acquisition = \"業務の過程で取得\"\nnotice_filing = \"届出-{p}\"\n\
                 notice_start = \"{}\"\n",
                if p == "H06" {
                    s.recent.as_str()
                } else {
                    "2020-01-06"
                }
            ),
        )
        .expect("details");
        cmd()
            .args(["provider", "add", "--id", p, "--details"])
            .arg(&details)
            .arg("--home")
            .arg(&s.home)
            .arg("--public-key")
            .arg(s.keys.join(format!("{p}.pub")))
            .assert()
            .success();
    }
    let bad = s.path("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\naddress = \"y\"\nrepresentative = \"z\"\n",
    )
    .expect("w");
    let out = cmd()
        .args(["provider", "add", "--id", "X01", "--details"])
        .arg(&bad)
        .arg("--home")
        .arg(&s.home)
        .arg("--public-key")
        .arg(s.keys.join("H01.pub"))
        .assert()
        .code(2);
    assert!(stderr(&out).contains("acquisition"), "{}", stderr(&out));
}

/// A request to stop that arrives before the receipt: an H01 patient who also has records at K02
/// or M022012 (those are purged once linked to the refused record's person). Returns the patient's
/// local id and true person.
fn opt_out_before_receipt(s: &Site, truth: &Truth) -> (String, String) {
    let elsewhere: HashSet<&String> = truth
        .identities
        .iter()
        .filter(|r| {
            (r.provider_id == "K02" || r.provider_id == "M022012")
                && !truth.malformed.contains(&r.record_id)
                && r.surname_kana.is_some()
        })
        .filter_map(|r| truth.person_of.get(&r.record_id))
        .collect();
    let (opted, opted_person) = truth
        .identities
        .iter()
        .filter(|r| r.provider_id == "H01" && !truth.malformed.contains(&r.record_id))
        .find_map(|r| {
            let p = truth.person_of.get(&r.record_id)?;
            let l = r.local_patient_id.clone()?;
            (elsewhere.contains(p) && r.surname_kana.is_some()).then(|| (l, p.clone()))
        })
        .expect("an H01 patient with records elsewhere");
    cmd()
        .args(["optout", "add", "--provider", "H01", "--patient-id", &opted])
        .args(["--requester", "self", "--received", "2025-01-10", "--home"])
        .arg(&s.home)
        .assert()
        .success();
    (opted, opted_person)
}

/// Every provider seals its native files.
fn seal(s: &Site) -> Vec<PathBuf> {
    let recipient = s.recipient();
    let mut packages = Vec::new();
    for p in PROVIDERS {
        let extract = s.path(&format!("extract-{p}"));
        native_extract(&s.region, p, &extract);
        let pkg = s.path(&format!("{p}.tkm"));
        cmd()
            .args(["package", "--to", recipient.trim(), "--provider-key"])
            .arg(s.keys.join(format!("{p}.key")))
            .arg("--in")
            .arg(&extract)
            .arg("--out")
            .arg(&pkg)
            .assert()
            .success();
        packages.push(pkg);
    }
    packages
}

/// Crash safety: copies of the home, each receiving the largest package and killed at a random
/// point. Afterwards the package is either whole with its receipt or absent once the next receipt
/// has cleaned up, and the audit log verifies.
fn crash_safety(s: &Site, packages: &[PathBuf]) {
    let base = s.path("base");
    copy_dir(&s.home, &base);
    let started = std::time::Instant::now();
    let probe = s.path("probe");
    copy_dir(&base, &probe);
    cmd()
        .args(["receive", "--home"])
        .arg(&probe)
        .arg(&packages[0])
        .assert()
        .success();
    let full_ms = (started.elapsed().as_millis() as u64).max(50);
    let mut rng = Lcg(2026);
    let mut whole = 0;
    for i in 0..8 {
        let h = s.path(&format!("crash-{i}"));
        copy_dir(&base, &h);
        let delay = rng.below(full_ms + full_ms / 4);
        whole += usize::from(killed_receipt(&h, &packages[0], delay));
        std::fs::remove_dir_all(&h).expect("cleanup");
    }
    eprintln!("crash runs: {whole} of 8 killed after the receipt (full receipt {full_ms} ms)");
}

/// Receives `package` into `h`, killed after `delay` ms; then the next receipt completes (or finds
/// it done), leaving exactly one whole package. Whether the killed receipt had landed.
fn killed_receipt(h: &Path, package: &Path, delay: u64) -> bool {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tokumei"))
        .env("TOKUMEI_PASSPHRASE", PASS)
        .env_remove("TOKUMEI_USER_KEY")
        .args(["receive", "--home"])
        .arg(h)
        .arg(package)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(delay));
    let _ = child.kill();
    let _ = child.wait();
    cmd()
        .args(["audit", "verify", "--home"])
        .arg(h)
        .assert()
        .success();
    let ids = receipt_ids(h);
    assert!(ids.len() <= 1, "kill after {delay} ms: {ids:?}");
    let landed = if let Some(id) = ids.first() {
        assert!(
            package_whole(h, id),
            "kill after {delay} ms: receipt without files"
        );
        true
    } else {
        false
    };
    let out = stdout(
        &cmd()
            .args(["receive", "--home"])
            .arg(h)
            .arg(package)
            .assert()
            .success(),
    );
    assert!(
        out.contains("records stored") || out.contains("already received"),
        "{out}"
    );
    let ids = receipt_ids(h);
    assert_eq!(ids.len(), 1);
    assert!(package_whole(h, &ids[0]));
    assert_eq!(final_files(h), 5, "kill after {delay} ms: leftovers");
    cmd()
        .args(["audit", "verify", "--home"])
        .arg(h)
        .assert()
        .success();
    landed
}

/// The real receipts: every unit the manifest counts is stored, quarantined or refused.
fn receive_all(s: &Site, packages: &[PathBuf], truth: &Truth) -> Counts {
    let mut by_provider: Counts = BTreeMap::new();
    for (p, pkg) in PROVIDERS.into_iter().zip(packages) {
        let out = stdout(
            &cmd()
                .args(["receive", "--home"])
                .arg(&s.home)
                .arg(pkg)
                .assert()
                .success(),
        );
        assert!(!out.contains("warning"), "{out}");
        let (c, images) = counts_with_images(&out);
        assert_eq!(c.0, c.1 + c.2 + c.3 + c.4 + images, "{p}: {out}");
        by_provider.insert(p, c);
    }
    // Line-based sources count one unit per record: the manifest equals the region's truth.
    for p in ["H06", "K02", "M022012"] {
        let n = truth.links.iter().filter(|l| l.provider_id == p).count() as u64;
        assert_eq!(by_provider[p].0, n, "{p}: manifest count vs truth");
    }
    assert!(
        by_provider["H01"].3 >= 1,
        "the opted-out H01 patient is refused"
    );
    let h06 = by_provider["H06"];
    assert_eq!(h06.1, 0, "H06: nobody is past the notice period");
    assert_eq!(h06.4, h06.0 - h06.2);
    by_provider
}

/// Receiving again changes nothing; the operator keeps every original package byte for byte; the
/// opted-out (`opted`) and too-early patients are absent from the vault.
fn receipts_are_kept(s: &Site, packages: &[PathBuf], opted: &str) {
    for pkg in packages {
        let out = stdout(
            &cmd()
                .args(["receive", "--home"])
                .arg(&s.home)
                .arg(pkg)
                .assert()
                .success(),
        );
        assert!(out.contains("already received"), "{out}");
    }
    let ids = receipt_ids(&s.home);
    assert_eq!(ids.len(), PROVIDERS.len());
    let mut kept: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| std::fs::read(s.home.join(format!("packages/{id}.age"))).expect("kept package"))
        .collect();
    let mut sent: Vec<Vec<u8>> = packages
        .iter()
        .map(|p| std::fs::read(p).expect("package"))
        .collect();
    kept.sort();
    sent.sort();
    assert!(kept == sent, "the kept originals are the packages received");
    let h01 = vault_identities(&s.home, &s.package_of("H01"));
    assert!(!h01.is_empty());
    assert!(h01
        .iter()
        .all(|r| r.local_patient_id.as_deref() != Some(opted)));
    assert!(vault_identities(&s.home, &s.package_of("H06")).is_empty());
}

/// The quarantine lists every record broken on purpose, at its line; `--json` lists the same
/// records with their package.
fn quarantine_lists_broken_records(s: &Site, truth: &Truth, by_provider: &Counts) {
    let listed = stdout(
        &cmd()
            .args(["quarantine", "list", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    // A table: the header, one row per record (package, file, lines, reason), then the count.
    let rows: Vec<&str> = listed.lines().collect();
    assert!(
        rows[0].starts_with("package") && rows[0].ends_with("reason"),
        "{listed}"
    );
    let entries: Vec<(String, u64)> = rows[1..rows.len() - 1]
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| {
                let first = f[2].split('-').next().and_then(|n| n.parse().ok());
                (f[1].to_string(), first.unwrap_or(u64::MAX))
            })
        })
        .collect();
    let quarantined: u64 = by_provider.values().map(|c| c.2).sum();
    assert_eq!(entries.len() as u64, quarantined, "{listed}");
    let mut checked = 0;
    for l in truth.links.iter().filter(|l| {
        PROVIDERS.contains(&l.provider_id.as_str()) && truth.malformed.contains(&l.record_id)
    }) {
        let rel = l
            .path
            .strip_prefix(&format!("sources/{}/", l.provider_id))
            .expect("a source path");
        let found = if rel.contains('#') {
            entries.iter().any(|(f, _)| f.starts_with(rel))
        } else {
            entries
                .iter()
                .any(|(f, line)| f == rel && (*line == l.first_line as u64 || *line == 0))
        };
        assert!(found, "{rel}:{} is not in the quarantine", l.first_line);
        checked += 1;
    }
    assert!(
        checked > 0,
        "the region has malformed records of these providers"
    );
    let listed = json(
        &cmd()
            .args(["quarantine", "list", "--json", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    let records = listed.as_array().expect("an array");
    assert_eq!(records.len() as u64, quarantined, "{listed}");
    let ids = receipt_ids(&s.home);
    for r in records {
        assert!(ids.iter().any(|id| r["package_id"] == id.as_str()), "{r}");
        assert!(r["reason"].as_str().is_some_and(|x| !x.is_empty()), "{r}");
    }
    let json_entries: Vec<(String, u64)> = records
        .iter()
        .map(|r| {
            let file = r["file"].as_str().expect("file").to_string();
            (file, r["first_line"].as_u64().expect("first line"))
        })
        .collect();
    let mut text_entries = entries.clone();
    let mut json_sorted = json_entries;
    text_entries.sort();
    json_sorted.sort();
    assert_eq!(json_sorted, text_entries, "{listed}");
}

/// The master person index after the first run, what the vault held then, and each record key's
/// true person (None where the key does not tell one person).
struct Linked {
    mpi: tokumei_link::mpi::Mpi,
    held: Vec<IdentityRecord>,
    person_by_key: HashMap<Key, Option<String>>,
}

/// Linkage (名寄せ) of everything held into the master person index, scored against the truth for
/// the records whose truth person is known by (provider, kind, date, birth date, ids); the
/// person who asked to stop (`opted_person`) is gone everywhere; linking again changes nothing.
fn linkage_against_truth(s: &Site, truth: &Truth, opted_person: &str) -> Linked {
    let mut person_by_key: HashMap<Key, Option<String>> = HashMap::new();
    for r in &truth.identities {
        let p = truth.person_of.get(&r.record_id).cloned();
        person_by_key
            .entry(key_of(r))
            .and_modify(|q| {
                if *q != p {
                    *q = None;
                }
            })
            .or_insert(p);
    }
    let out = stdout(
        &cmd()
            .args(["link", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(out.contains("master person index"), "{out}");
    let mpi = read_mpi(&s.home);
    let held: Vec<IdentityRecord> = receipt_ids(&s.home)
        .iter()
        .flat_map(|id| vault_identities(&s.home, id))
        .collect();
    assert_eq!(
        mpi.person_of.len(),
        held.len(),
        "every record held is in the index"
    );
    let linked = Linked {
        mpi,
        held,
        person_by_key,
    };
    precision_and_recall(&linked);
    // The H01 patient who asked to stop is gone everywhere, including at the other providers.
    assert!(
        !linked.held.iter().any(|r| {
            linked
                .person_by_key
                .get(&key_of(r))
                .cloned()
                .flatten()
                .as_deref()
                == Some(opted_person)
        }),
        "records of the opted-out person remain"
    );
    // Linking again changes nothing: person ids are stable.
    let again = stdout(
        &cmd()
            .args(["link", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(
        again.contains("0 persons created, 0 merges, 0 splits"),
        "{again}"
    );
    linked
}

/// The index's pairs of records against their true persons.
fn precision_and_recall(l: &Linked) {
    let known: Vec<(&str, String)> = l
        .held
        .iter()
        .filter_map(|r| {
            l.person_by_key
                .get(&key_of(r))
                .cloned()
                .flatten()
                .map(|p| (r.record_id.as_str(), p))
        })
        .collect();
    assert!(
        known.len() * 10 > l.held.len() * 9,
        "{} of {}",
        known.len(),
        l.held.len()
    );
    let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
    for i in 0..known.len() {
        for j in i + 1..known.len() {
            let same_truth = known[i].1 == known[j].1;
            let same_mpi = l.mpi.person_of[known[i].0] == l.mpi.person_of[known[j].0];
            match (same_truth, same_mpi) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fneg += 1,
                _ => {}
            }
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    eprintln!("vault linkage: {tp} true pairs, {fp} false, {fneg} missed; precision {precision:.4}, recall {recall:.4}");
    assert!(tp > 1000, "{tp}");
    assert!(
        precision >= 0.99 && recall >= 0.98,
        "precision {precision}, recall {recall}"
    );
}

/// Clerical review: a pair the engine linked and a technician rejects is never linked again, not
/// even through other records; a pair it left apart and a technician accepts is joined.
fn clerical_review(s: &Site) {
    let home = &s.home;
    let before = read_mpi(home);
    let pending = |same: bool| {
        before
            .review
            .iter()
            .filter(|p| p.status == "pending")
            .find(|p| (before.person_of.get(&p.left) == before.person_of.get(&p.right)) == same)
            .cloned()
    };
    let listing = stdout(
        &cmd()
            .args(["link", "review", "--home"])
            .arg(home)
            .assert()
            .success(),
    );
    let (joined, apart) = (pending(true), pending(false));
    assert!(joined.is_some() || apart.is_some(), "{listing}");
    if let Some(p) = &joined {
        assert!(listing.contains(&format!("pair {} ", p.id)), "{listing}");
        cmd()
            .args(["link", "review", "--reject", &p.id.to_string(), "--home"])
            .arg(home)
            .assert()
            .success();
    }
    if let Some(p) = &apart {
        cmd()
            .args(["link", "review", "--accept", &p.id.to_string(), "--home"])
            .arg(home)
            .assert()
            .success();
    }
    cmd().args(["link", "--home"]).arg(home).assert().success();
    let after = read_mpi(home);
    if let Some(p) = &joined {
        assert_ne!(
            after.person_of[&p.left], after.person_of[&p.right],
            "a rejected pair is linked again"
        );
    }
    if let Some(p) = &apart {
        assert_eq!(
            after.person_of[&p.left], after.person_of[&p.right],
            "an accepted pair stays apart"
        );
    }
    eprintln!(
        "clerical review: rejected a linked pair: {}, accepted a pair left apart: {}",
        joined.is_some(),
        apart.is_some()
    );
}

/// The person who asked to stop after receipt: a K02 record and its person in the first index.
struct Victim {
    record: IdentityRecord,
    person: String,
}

/// A request to stop after receipt, by insurance card, from a K02 checkup: every record of the
/// person, at every provider, is purged (the person is found through the index); purging again
/// finds nothing more.
fn optout_after_receipt(s: &Site, linked: &Linked) -> Victim {
    let mpi = &linked.mpi;
    let k02_pkg = s.package_of("K02");
    let k02 = vault_identities(&s.home, &k02_pkg);
    let victim = k02
        .iter()
        .filter(|r| r.insurer_number.is_some() && r.insured_number.is_some())
        .max_by_key(|r| mpi.records_of(&mpi.person_of[&r.record_id]).len())
        .expect("a K02 record with insurance")
        .clone();
    let victim_person = mpi.person_of[&victim.record_id].clone();
    let records: HashSet<String> = mpi.records_of(&victim_person).into_iter().collect();
    assert!(
        linked
            .held
            .iter()
            .any(|r| records.contains(&r.record_id) && r.provider_id != "K02"),
        "the chosen person has records at another provider"
    );
    let same_card = |r: &IdentityRecord| {
        r.insurer_number == victim.insurer_number
            && r.insured_symbol == victim.insured_symbol
            && r.insured_number == victim.insured_number
    };
    let removed: HashSet<String> = k02
        .iter()
        .filter(|r| same_card(r) || records.contains(&r.record_id))
        .map(|r| r.record_id.clone())
        .collect();
    let out = stdout(
        &optout_by_card(&victim)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(out.contains("purged"), "{out}");
    let after = vault_identities(&s.home, &k02_pkg);
    assert_eq!(after.len(), k02.len() - removed.len());
    assert!(!after.iter().any(same_card));
    let still: Vec<IdentityRecord> = receipt_ids(&s.home)
        .iter()
        .flat_map(|id| vault_identities(&s.home, id))
        .collect();
    assert!(
        !still.iter().any(|r| records.contains(&r.record_id)),
        "every record of the person is purged"
    );
    let encounters: Vec<tokumei_model::events::Encounter> = {
        let bytes = std::fs::read(
            s.home
                .join(format!("vault/clinical/{k02_pkg}/encounters.parquet")),
        )
        .expect("encounters");
        tokumei_vault::store::read_parquet(bytes).expect("parquet")
    };
    assert!(!encounters.is_empty());
    assert!(encounters.iter().all(|e| !removed.contains(&e.record_id)));
    let out = stdout(
        &cmd()
            .args(["optout", "purge", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(out.contains("0 record(s)"), "{out}");
    Victim {
        record: victim,
        person: victim_person,
    }
}

/// `optout add` of the insurance card on `victim`'s record, by the bereaved.
fn optout_by_card(victim: &IdentityRecord) -> Command {
    let mut add = cmd();
    add.args([
        "optout",
        "add",
        "--requester",
        "bereaved",
        "--received",
        "2025-06-01",
    ])
    .args([
        "--insurer",
        victim.insurer_number.as_deref().expect("insurer"),
    ])
    .args([
        "--number",
        victim.insured_number.as_deref().expect("number"),
    ]);
    if let Some(s) = &victim.insured_symbol {
        add.args(["--symbol", s]);
    }
    add
}

/// Another operator's home: its recipient stands in for the research institution's key, and its
/// identity opens what is encrypted to it.
struct Other {
    home: PathBuf,
    to: String,
    identity: age::x25519::Identity,
}

/// Roles: an auditor may not receive. The two-person rule: an export from the identified zone,
/// requested by one technician and approved by a second, runs once and opens with the named
/// recipient's key only.
fn roles_and_two_person_export(s: &Site, packages: &[PathBuf]) -> Other {
    let out = s
        .aud()
        .args(["receive", "--home"])
        .arg(&s.home)
        .arg(&packages[0])
        .assert()
        .code(1);
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));
    let other = s.path("other");
    cmd()
        .args(["init", "--scrypt-log-n", "10", "--home"])
        .arg(&other)
        .assert()
        .success();
    let to = std::fs::read_to_string(other.join("operator.recipient")).expect("recipient");
    let other_home = tokumei_vault::open(&other).expect("other home");
    let identity = other_home
        .operator_identity(&other_home.unlock_data_key(PASS).expect("unlock"))
        .expect("identity");
    let o = Other {
        home: other,
        to: to.trim().to_string(),
        identity,
    };
    let file = s.path("export.age");
    let id = two_person_export(s, &o, &file);
    let names = sealed_names(&std::fs::read(&file).expect("export"), &o.identity);
    assert!(names.contains("quarantine.json"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("files/")), "{names:?}");
    export_as_json(s, &o, &id);
    o
}

/// `export request|approve|run` of H01's quarantine to `o`, into `file`, with every refusal of the
/// two-person rule on the way; returns the request's id.
fn two_person_export(s: &Site, o: &Other, file: &Path) -> String {
    let h01_pkg = s.package_of("H01");
    let out = stdout(
        &cmd()
            .args([
                "export",
                "request",
                "--kind",
                "quarantine",
                "--package",
                &h01_pkg,
            ])
            .args(["--to", &o.to, "--purpose", "return broken records to H01"])
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    let id: String = out
        .split_whitespace()
        .nth(2)
        .expect("request id")
        .to_string();
    let run = |c: &mut Command| {
        c.args(["export", "run", &id, "--out"])
            .arg(file)
            .arg("--home")
            .arg(&s.home)
            .assert()
    };
    let approve = |c: &mut Command| {
        c.args(["export", "approve", &id, "--home"])
            .arg(&s.home)
            .assert()
    };
    let out = run(&mut cmd()).code(1);
    assert!(stderr(&out).contains("two-person"), "{}", stderr(&out));
    let out = approve(&mut cmd()).code(1);
    assert!(stderr(&out).contains("two-person"), "{}", stderr(&out));
    let out = approve(&mut s.aud()).code(1);
    assert!(stderr(&out).contains("technician"), "{}", stderr(&out));
    approve(&mut s.tech_b()).success();
    run(&mut s.aud()).code(1);
    assert!(!file.exists());
    run(&mut cmd()).success();
    run(&mut cmd()).code(1);
    id
}

/// The names in an age-encrypted tar that `identity` opens.
fn sealed_names(sealed: &[u8], identity: &age::x25519::Identity) -> BTreeSet<String> {
    let decryptor = age::Decryptor::new_buffered(sealed).expect("age");
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .expect("decrypts to the named recipient");
    let mut names = BTreeSet::new();
    let mut archive = tar::Archive::new(reader);
    for e in archive.entries().expect("tar") {
        names.insert(
            e.expect("entry")
                .path()
                .expect("path")
                .to_string_lossy()
                .to_string(),
        );
    }
    names
}

/// The export's steps with `--json`: a second request (the one after `first`), approved by the
/// second technician and run once.
fn export_as_json(s: &Site, o: &Other, first: &str) {
    let h01_pkg = s.package_of("H01");
    let requested = json(
        &cmd()
            .args(["export", "request", "--json", "--kind", "quarantine"])
            .args(["--package", &h01_pkg, "--to", &o.to])
            .args(["--purpose", "a second copy for H01", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    let first: i64 = first.parse().expect("a number");
    assert_eq!(requested["id"].as_i64(), Some(first + 1), "{requested}");
    let id = (first + 1).to_string();
    let approved = json(
        &s.tech_b()
            .args(["export", "approve", "--json", &id, "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert_eq!(approved["id"].as_i64(), Some(first + 1), "{approved}");
    assert_eq!(approved["kind"], "quarantine", "{approved}");
    assert_eq!(approved["package_id"], h01_pkg.as_str(), "{approved}");
    assert_eq!(approved["requested_by"], "operator", "{approved}");
    assert_eq!(approved["approved_by"], "tech-b", "{approved}");
    assert!(approved["executed_at"].is_null(), "{approved}");
    let file = s.path("export-2.age");
    let ran = json(
        &cmd()
            .args(["export", "run", "--json", &id, "--out"])
            .arg(&file)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    let size = std::fs::metadata(&file).expect("export").len();
    assert_eq!(ran["bytes"].as_u64(), Some(size), "{ran}");
    let names = sealed_names(&std::fs::read(&file).expect("export"), &o.identity);
    assert_eq!(ran["files"].as_u64(), Some(names.len() as u64), "{ran}");
    assert!(ran["request"]["executed_at"].is_string(), "{ran}");
}

/// A committee of three on the roster, and a researcher who submits the same application twice
/// (A-0001 and A-0002); A-0002 is never decided: it yields no release. Then a meeting, at which
/// the committee approves A-0001 without persons.municipality. Returns the meeting's id.
fn committee(s: &Site) -> String {
    for (name, role) in [
        ("chair", "committee"),
        ("ext", "committee"),
        ("m3", "committee"),
        ("res", "researcher"),
    ] {
        let pass = format!("{name} passphrase 2026");
        add_user(cmd(), &s.home, &s.user_keys, name, role, &pass);
    }
    for (name, flags) in [
        ("chair", vec!["--chair"]),
        ("ext", vec!["--external"]),
        ("m3", vec![]),
    ] {
        cmd()
            .args([
                "committee",
                "add-member",
                "--member",
                name,
                "--display-name",
                name,
            ])
            .args(["--affiliation", "架空大学", "--field", "medical"])
            .args(flags)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success();
    }
    roster_as_json(s);
    applications(s);
    let meeting = stdout(
        &s.user("chair")
            .args([
                "committee",
                "meeting",
                "--date",
                "2026-06-01",
                "--present",
                "chair,ext,m3",
            ])
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    let m = meeting
        .split_whitespace()
        .nth(1)
        .expect("meeting")
        .to_string();
    preview_before_the_decision(s, &m);
    approve(
        s,
        &m,
        "A-0001",
        "ok",
        &["--drop-item", "persons.municipality"],
    );
    m
}

/// `committee preview`: a technician's dry run of the undecided A-0001 with every requested item,
/// recorded for the docket; no release key, and a release still needs the decision.
fn preview_before_the_decision(s: &Site, meeting: &str) {
    let keys = || std::fs::read_dir(s.home.join("keys/releases")).map_or(0, |d| d.count());
    let before = keys();
    let p = json(
        &cmd()
            .args(["committee", "preview", "--application", "A-0001", "--json"])
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(
        p["persons"].as_u64() > Some(0) && p["cohort"].as_u64() >= p["persons"].as_u64(),
        "{p}"
    );
    let names: Vec<&str> = p["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for name in [
        "persons.min_class",
        "reid.journalist_max",
        "utility.rows_kept",
    ] {
        assert!(names.contains(&name), "{name} in {p}");
    }
    assert_eq!(keys(), before, "a preview draws no release key");
    let docket = json(
        &s.user("chair")
            .args(["committee", "docket", "--meeting", meeting, "--json"])
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    let item = docket
        .as_array()
        .and_then(|d| d.iter().find(|i| i["status"]["id"] == "A-0001"))
        .expect("A-0001 on the docket");
    assert_eq!(item["preview"]["persons"], p["persons"], "{item}");
    // A researcher cannot prepare one.
    s.user("res")
        .args(["committee", "preview", "--application", "A-0001"])
        .arg("--home")
        .arg(&s.home)
        .assert()
        .failure();
}

/// `committee roster --json`: the three members, the chair and the external one flagged.
fn roster_as_json(s: &Site) {
    let roster = json(
        &cmd()
            .args(["committee", "roster", "--json", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    let members: Vec<(&str, bool, bool)> = roster
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap_or(""),
                m["chair"].as_bool().unwrap_or(false),
                m["external"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(members.len(), 3, "{roster}");
    for expected in [
        ("chair", true, false),
        ("ext", false, true),
        ("m3", false, false),
    ] {
        assert!(members.contains(&expected), "{expected:?} in {roster}");
    }
    assert!(
        roster[0]["field"] == "medical" && roster[0]["left_at"].is_null(),
        "{roster}"
    );
}

/// The application submitted twice; A-0002 is never decided and yields no release.
fn applications(s: &Site) {
    let application = s.path("application.toml");
    std::fs::write(
        &application,
        format!(
            "title = \"Release test\"\nkind = \"anonymized\"\npurpose = \"test\"\n\
             period_from = \"2021-04-01\"\nperiod_to = \"2024-03-31\"\n\
             contract_expiry = \"2099-03-31\"\nrecipient_key = \"{}\"\nsecurity_plan = \"x\"\n\
             [applicant]\norganisation = \"架空大学\"\ncertification = \"none\"\n\
             responsible_researcher = \"r\"\n\
             [[items]]\ntable = \"persons\"\ncolumns = [\"sex\", \"age\", \"municipality\"]\n\
             [[items]]\ntable = \"diagnoses\"\ncolumns = [\"icd10\", \"date\"]\n",
            other_recipient(s)
        ),
    )
    .expect("application");
    for _ in 0..2 {
        s.user("res")
            .args(["application", "submit", "--file"])
            .arg(&application)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success();
    }
    let out = cmd()
        .args(["release", "build", "--application", "A-0002", "--out"])
        .arg(s.path("never"))
        .arg("--home")
        .arg(&s.home)
        .assert()
        .code(1);
    assert!(stderr(&out).contains("not decided"), "{}", stderr(&out));
    assert!(!s.path("never").exists());
}

/// The other home's recipient (the applications' recipient key).
fn other_recipient(s: &Site) -> String {
    std::fs::read_to_string(s.path("other/operator.recipient"))
        .expect("recipient")
        .trim()
        .to_string()
}

/// Every member votes for an application at meeting `m` and the chair records the approval.
fn approve(s: &Site, m: &str, application: &str, reason: &str, extra: &[&str]) {
    for name in ["chair", "ext", "m3"] {
        s.user(name)
            .args(["committee", "vote", "--meeting", m])
            .args(["--application", application, "--vote", "approve", "--home"])
            .arg(&s.home)
            .assert()
            .success();
    }
    s.user("chair")
        .args(["committee", "decide", "--meeting", m])
        .args(["--application", application, "--decision", "approve"])
        .args(["--reason", reason])
        .args(extra)
        .arg("--home")
        .arg(&s.home)
        .assert()
        .success();
}

/// `release build --dry-run` computes the build's figures (the persons with their events under
/// (k, k^m), what the previous rule would keep, the m-event intruder, the utility goals) and writes
/// writes nothing of a release: no output folder, no release key, no snapshot; its access to the
/// vault is one audit entry with counts only.
fn dry_run_writes_nothing(s: &Site) {
    let log_before = s.log();
    let keys = || std::fs::read_dir(s.home.join("keys/releases")).map_or(0, |d| d.count());
    let (keys_before, snapshots_before) = (keys(), snapshots(&s.home));
    let out = s.path("release-dry");
    let printed = stdout(
        &cmd()
            .args([
                "release",
                "build",
                "--dry-run",
                "--json",
                "--application",
                "A-0001",
            ])
            .args(["--k", "5", "--suppression-limit", "0.1"])
            .args([
                "--max-prosecutor-risk",
                "0.2",
                "--max-linkage-success",
                "0.1",
            ])
            .arg("--out")
            .arg(&out)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    let r: serde_json::Value = serde_json::from_str(&printed).expect("json");
    assert_eq!(r["dry_run"].as_bool(), Some(true), "{r}");
    let e = &r["events"];
    assert_eq!(
        (e["k"].as_u64(), e["m"].as_u64()),
        (Some(5), Some(2)),
        "{e}"
    );
    let (before, released) = (e["rows_before"].as_u64(), e["rows_released"].as_u64());
    assert!(released > Some(0) && released <= before, "{e}");
    // Beside it, the previous rule on the same cohort keeps far fewer event rows.
    let previous: u64 = r["previous_rule"]["rows"]
        .as_object()
        .expect("rows")
        .iter()
        .filter(|(t, _)| *t != "persons")
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    assert!(Some(previous) < released, "{r}");
    // The m-event intruder, m = 1, 2, 3, on the release and on the unprocessed data.
    let attack = |key: &str, m: usize| r[key][m - 1]["share_correct"].as_f64().expect("share");
    assert!(attack("event_attack", 2) <= 0.05, "{r}");
    assert!(
        attack("event_attack_initial", 2) > attack("event_attack", 2),
        "{r}"
    );
    assert!(
        r["utility"].as_array().is_some_and(|g| !g.is_empty()),
        "{r}"
    );
    assert!(!out.exists(), "a dry run writes no output folder");
    assert_eq!(
        (keys(), snapshots(&s.home)),
        (keys_before, snapshots_before)
    );
    let log = s.log();
    let added: Vec<&str> = log.lines().skip(log_before.lines().count()).collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(
        added[0].contains("\"action\":\"release.dry-run\""),
        "{added:?}"
    );
    assert_eq!(r["refusals"].as_array().map(Vec::len), Some(0), "{r}");
    dry_run_shows_why_a_build_would_refuse(s);
}

/// A dry run of a release the build would refuse (a prosecutor risk bound no class can meet)
/// prints every figure with the reason and exits 1; it writes nothing either.
fn dry_run_shows_why_a_build_would_refuse(s: &Site) {
    let keys = || std::fs::read_dir(s.home.join("keys/releases")).map_or(0, |d| d.count());
    let (keys_before, snapshots_before) = (keys(), snapshots(&s.home));
    let refused = cmd()
        .args(["release", "build", "--dry-run", "--json"])
        .args(["--application", "A-0001", "--k", "5"])
        .args(["--suppression-limit", "0.1", "--max-prosecutor-risk", "0"])
        .arg("--home")
        .arg(&s.home)
        .assert()
        .code(1);
    let printed = String::from_utf8_lossy(&refused.get_output().stdout).to_string();
    let r: serde_json::Value = serde_json::from_str(&printed).expect("json");
    let refusals = r["refusals"].as_array().expect("refusals");
    assert!(
        refusals.iter().any(|x| x
            .as_str()
            .is_some_and(|x| x.contains("re-identification test") && x.contains("prosecutor"))),
        "{r}"
    );
    // The figures are all there, as for a release that passes.
    assert!(r["events"]["rows_released"].as_u64() > Some(0), "{r}");
    assert!(
        r["utility"].as_array().is_some_and(|g| !g.is_empty()),
        "{r}"
    );
    assert_eq!(
        (keys(), snapshots(&s.home)),
        (keys_before, snapshots_before)
    );
}

/// Two releases of A-0001 (k = 5): each verifies against the operator's key only, holds the
/// approved items only, opens with the recipient's key only; they share no pseudonym. Returns
/// their pseudonym sets.
fn two_releases(s: &Site, o: &Other) -> Vec<HashSet<String>> {
    let mut pseudonym_sets = Vec::new();
    for i in 0..2 {
        let out_dir = s.path(&format!("release-{i}"));
        let built = stdout(
            &cmd()
                .args(["release", "build", "--application", "A-0001", "--k", "5"])
                .args(["--suppression-limit", "0.1", "--max-prosecutor-risk", "0.2"])
                .args(["--max-linkage-success", "0.1", "--evaluation-key"])
                .arg(s.path(&format!("key-{i}.csv")))
                .arg("--out")
                .arg(&out_dir)
                .arg("--home")
                .arg(&s.home)
                .assert()
                .success(),
        );
        assert!(built.contains("persons"), "{built}");
        recipient_verifies(s, o, &out_dir);
        let set = approved_items_only(&out_dir);
        recipient_opens(s, o, i, &out_dir);
        pseudonym_sets.push(set);
    }
    assert!(
        pseudonym_sets[0].is_disjoint(&pseudonym_sets[1]),
        "two releases share no pseudonym"
    );
    pseudonym_sets
}

/// The recipient checks that the release is the operator's: signed manifest, every file; a file
/// changed is named. `--json` counts the files of the manifest.
fn recipient_verifies(s: &Site, o: &Other, out_dir: &Path) {
    let verify = |key: &Path| {
        cmd()
            .args(["release", "verify"])
            .arg(out_dir)
            .arg("--operator-key")
            .arg(key)
            .assert()
    };
    verify(&s.home.join("audit.pub")).success();
    verify(&o.home.join("audit.pub")).code(1);
    let table = out_dir.join("tables/persons.csv");
    let kept = std::fs::read(&table).expect("table");
    std::fs::write(&table, [kept.as_slice(), b"Px,1,2\n"].concat()).expect("tamper");
    let out = verify(&s.home.join("audit.pub")).code(1);
    assert!(stderr(&out).contains("persons.csv"), "{}", stderr(&out));
    std::fs::write(&table, &kept).expect("restore");
    let verified = json(
        &cmd()
            .args(["release", "verify", "--json"])
            .arg(out_dir)
            .arg("--operator-key")
            .arg(s.home.join("audit.pub"))
            .assert()
            .success(),
    );
    assert_eq!(verified["files"].as_u64(), Some(manifest_files(out_dir)));
}

/// The number of files a release's manifest lists.
fn manifest_files(release: &Path) -> u64 {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(release.join("manifest.json")).expect("manifest"))
            .expect("json");
    manifest["files"].as_array().map_or(0, |f| f.len() as u64)
}

/// Only the approved items, every class of (sex, age) with at least k = 5 persons, year-month
/// dates. Returns the release's pseudonyms.
fn approved_items_only(out_dir: &Path) -> HashSet<String> {
    let persons = std::fs::read_to_string(out_dir.join("tables/persons.csv")).expect("persons");
    let header = persons.lines().next().expect("header");
    assert_eq!(header, "pseudonym,sex,age", "only approved items: {header}");
    assert!(!out_dir.join("tables/prescriptions.csv").exists());
    let set: HashSet<String> = persons
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or("").to_string())
        .collect();
    assert!(set.len() > 200, "{}", set.len());
    let mut classes: HashMap<String, usize> = HashMap::new();
    for l in persons.lines().skip(1) {
        *classes
            .entry(l.split_once(',').map(|x| x.1).unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert!(classes.values().all(|n| *n >= 5), "{classes:?}");
    let diagnoses = std::fs::read_to_string(out_dir.join("tables/diagnoses.csv")).expect("dx");
    // Dates at year-month or coarser (quarter, year, `*`), never days.
    let coarse = |d: &str| d == "*" || d.len() == 4 || (d.len() == 7 && d.as_bytes()[4] == b'-');
    assert!(
        diagnoses
            .lines()
            .skip(1)
            .all(|l| l.rsplit(',').next().is_some_and(coarse)),
        "{}",
        diagnoses.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    set
}

/// The package opens with the recipient's key only; the recipient opens it with tokumei alone:
/// decrypted, extracted and verified (`--json` counts the files verified); nothing is left of a
/// package that does not open.
fn recipient_opens(s: &Site, o: &Other, i: usize, out_dir: &Path) {
    let pkg = std::fs::read_dir(out_dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.age"))
        .expect("package");
    let names = sealed_names(&std::fs::read(&pkg).expect("package"), &o.identity);
    assert!(
        names.contains("tables/persons.parquet") && names.contains("manifest.json"),
        "{names:?}"
    );
    use age::secrecy::ExposeSecret;
    let id_file = s.path(&format!("recipient-{i}.key"));
    std::fs::write(&id_file, o.identity.to_string().expose_secret()).expect("identity");
    let open = |id: &Path, into: &Path, json: bool| {
        let mut c = cmd();
        c.args(["release", "open"])
            .arg(&pkg)
            .arg("--identity")
            .arg(id)
            .arg("--out")
            .arg(into)
            .arg("--operator-key")
            .arg(s.home.join("audit.pub"));
        if json {
            c.arg("--json");
        }
        c.assert()
    };
    let opened = s.path(&format!("opened-{i}"));
    open(&id_file, &opened, false).success();
    assert_eq!(
        std::fs::read(opened.join("tables/persons.csv")).expect("opened"),
        std::fs::read(out_dir.join("tables/persons.csv")).expect("built")
    );
    let stranger = s.path(&format!("stranger-{i}.key"));
    std::fs::write(
        &stranger,
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret(),
    )
    .expect("stranger");
    let refused = s.path(&format!("refused-{i}"));
    open(&stranger, &refused, false).code(1);
    assert!(
        !refused.exists(),
        "nothing is left of a package that does not open"
    );
    let again = json(&open(&id_file, &s.path(&format!("opened-json-{i}")), true).success());
    assert_eq!(
        again["files"].as_u64(),
        Some(manifest_files(out_dir)),
        "{again}"
    );
}

fn report_of(s: &Site, release: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(s.path(&format!("{release}/report.json"))).expect("report");
    serde_json::from_str(&text).expect("json")
}

/// The build joins each release to every earlier one of its kind (rule 72.7): release-1 to
/// release-0, with the same count as `reid-test --against` finds on the folders; every link the
/// build counted joins two pseudonyms of one person.
fn cross_release_linkability(s: &Site) {
    let (r0, r1) = (report_of(s, "release-0"), report_of(s, "release-1"));
    assert_eq!(
        r0["cross_release"].as_array().map(Vec::len),
        Some(0),
        "{r0}"
    );
    let cross = &r1["cross_release"][0];
    assert_eq!(cross["release_id"], r0["release_id"], "{r1}");
    let linked = cross["linkability"]["linked"].as_u64().expect("linked");
    let joined = stdout(
        &cmd()
            .args(["reid-test", "--json", "--release"])
            .arg(s.path("release-1"))
            .arg("--against")
            .arg(s.path("release-0"))
            .arg("--population")
            .arg(s.region.join("truth/persons.parquet"))
            .args(["--max-prosecutor-risk", "0.2", "--max-linkage-success", "1"])
            .assert()
            .success(),
    );
    let joined: serde_json::Value = serde_json::from_str(&joined).expect("json");
    assert_eq!(joined["cross_release"]["linked"].as_u64(), Some(linked));
    assert_eq!(
        cross["linkability"]["correct"].as_u64(),
        Some(linked),
        "{cross}"
    );
    let html = std::fs::read_to_string(s.path("release-1/report.html")).expect("html");
    assert!(
        html.contains("Cross-release linkability"),
        "report names the join"
    );
    // On this cohort a few persons stay linkable (about 1 %).
    assert!(linked > 0, "{cross}");
}

fn snapshots(home: &Path) -> usize {
    std::fs::read_dir(home.join("vault/releases")).map_or(0, |d| d.count())
}

/// A release the re-identification battery refuses writes and records nothing of it; a build
/// killed after writing its staging folder is rolled back by the next build; other presets as
/// data: HIPAA Safe Harbor (years only; built with `--json`) and a preset
/// file with days since each person's index date. Returns what `release build --json` printed.
fn refused_killed_and_other_presets(s: &Site) -> serde_json::Value {
    assert_eq!(snapshots(&s.home), 2, "one sealed snapshot per release");
    let refused = s.path("release-refused");
    let out = cmd()
        // A prosecutor risk no release of this cohort meets: the battery refuses it.
        .args(["release", "build", "--application", "A-0001", "--k", "5"])
        .args([
            "--suppression-limit",
            "0.1",
            "--max-prosecutor-risk",
            "0.001",
        ])
        .args(["--max-linkage-success", "0.1"])
        .arg("--out")
        .arg(&refused)
        .arg("--home")
        .arg(&s.home)
        .assert()
        .code(1);
    let err = stderr(&out);
    assert!(err.contains("prosecutor risk"), "{err}");
    assert!(!refused.exists(), "a refused release writes nothing");
    assert_eq!(snapshots(&s.home), 2, "a refused release keeps no snapshot");
    // A build killed after writing its staging folder, before its ledger entry: nothing is in
    // place, and the next build rolls it back and records that (below).
    let killed_early = s.path("release-killed-early");
    cmd()
        .env("TOKUMEI_FAULT_POINT", "release.written")
        .args(["release", "build", "--application", "A-0001", "--k", "5"])
        .args(["--suppression-limit", "0.1", "--max-prosecutor-risk", "0.2"])
        .args([
            "--max-linkage-success",
            "0.1",
            "--max-cross-release-linkable",
            "1",
        ])
        .arg("--out")
        .arg(&killed_early)
        .arg("--home")
        .arg(&s.home)
        .assert()
        .failure();
    assert!(
        !killed_early.exists(),
        "no release in place without its ledger entry"
    );
    let early_staging = s.path(".release-killed-early.staging");
    assert!(early_staging.exists());
    let built = hipaa_release(s);
    assert!(!early_staging.exists(), "rolled back by the next build");
    let release_keys = std::fs::read_dir(s.home.join("keys/releases")).map_or(0, |d| d.count());
    assert_eq!(
        release_keys,
        snapshots(&s.home),
        "no orphan release key: one per recorded release (refused and killed builds leave none)"
    );
    assert!(
        s.log()
            .lines()
            .any(|l| l.contains("\"action\":\"release.build\"")
                && l.contains("rolled back at recovery")),
        "the killed build's outcome is recorded"
    );
    relative_days_preset(s);
    built
}

/// Another preset, as data: HIPAA Safe Harbor releases years only, and joins them to the months
/// of release-0 and release-1 cut to years. Built with `--json`: the figures of its report and
/// its package.
fn hipaa_release(s: &Site) -> serde_json::Value {
    let hipaa = s.path("release-hipaa");
    let built = json(
        &cmd()
            .args([
                "release",
                "build",
                "--json",
                "--application",
                "A-0001",
                "--preset",
                "hipaa-safe-harbor",
            ])
            .arg("--out")
            .arg(&hipaa)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    let dx = std::fs::read_to_string(hipaa.join("tables/diagnoses.csv")).expect("dx");
    assert!(
        dx.lines()
            .skip(1)
            .all(|l| l.rsplit(',').next().is_some_and(|d| d.len() == 4)),
        "years only"
    );
    let hipaa_report = report_of(s, "release-hipaa");
    let against = hipaa_report["cross_release"].as_array().expect("cross");
    assert_eq!(against.len(), 2, "{hipaa_report}");
    for c in against {
        let l = &c["linkability"];
        eprintln!(
            "cross-release, years against months: {} of {} persons linked to {}",
            l["linked"], l["persons_a"], c["release_id"]
        );
        assert_eq!(l["correct"], l["linked"], "{c}");
    }
    for field in [
        "release_id",
        "persons",
        "cohort",
        "k",
        "preset",
        "min_class",
    ] {
        assert_eq!(built[field], hipaa_report[field], "{field}: {built}");
    }
    assert_eq!(built["preset"], "hipaa-safe-harbor", "{built}");
    assert_eq!(
        built["rows"]["diagnoses"].as_u64(),
        Some(dx.lines().count() as u64 - 1),
        "{built}"
    );
    let package = built["package"].as_str().expect("package");
    assert!(Path::new(package).is_file(), "{built}");
    assert_eq!(
        built["package_sha256"].as_str().map(str::len),
        Some(64),
        "{built}"
    );
    built
}

/// A preset file of the operator's own: event dates as days since each person's index date.
fn relative_days_preset(s: &Site) {
    let relative_preset = s.path("relative.toml");
    std::fs::write(
        &relative_preset,
        "name = \"relative-days\"\nkind = \"anonymized\"\ndates = \"relative\"\n\
         birth = \"year-month\"\ntop_code_age = 90\ngeography = \"municipality\"\n\
         free_text = \"remove\"\nk = 5\nsuppression_limit = 0.1\nrare_code_persons = 5\n\
         clip_percentile = 1\nmax_prosecutor_risk = 0.2\nmax_linkage_success = 0.1\n",
    )
    .expect("preset");
    let relative = s.path("release-relative");
    cmd()
        .args(["release", "build", "--application", "A-0001", "--preset"])
        .arg(&relative_preset)
        .arg("--out")
        .arg(&relative)
        .arg("--home")
        .arg(&s.home)
        .assert()
        .success();
    let dx = std::fs::read_to_string(relative.join("tables/diagnoses.csv")).expect("dx");
    let days: Vec<i64> = dx
        .lines()
        .skip(1)
        .map(|l| {
            l.rsplit(',')
                .next()
                .and_then(|d| d.parse().ok())
                .expect("a day offset")
        })
        .collect();
    assert!(
        !days.is_empty() && days.iter().all(|d| (0..=1100).contains(d)),
        "{dx}"
    );
    assert!(days.iter().any(|d| *d > 0), "offsets vary");
    let dictionary = std::fs::read_to_string(relative.join("dictionary.json")).expect("dict");
    assert!(dictionary.contains("days since"), "{dictionary}");
}

/// A pseudonymized release (仮名加工医療情報) goes to a certified user only: an uncertified
/// applicant cannot even submit one; a certified user's approved application yields day-level
/// dates and birth year-month without k, rare codes kept, under per-release pseudonyms.
fn pseudonymized_release(s: &Site, m: &str, pseudonym_sets: &[HashSet<String>]) {
    let to = other_recipient(s);
    let pseudo_app = |certification: &str| {
        format!(
            "title = \"Pseudonymized test\"\nkind = \"pseudonymized\"\npurpose = \"drug safety\"\n\
             period_from = \"2021-04-01\"\nperiod_to = \"2024-03-31\"\n\
             contract_expiry = \"2099-03-31\"\nrecipient_key = \"{}\"\nsecurity_plan = \"x\"\n\
             [applicant]\norganisation = \"架空製薬\"\n{certification}\nresponsible_researcher = \"r\"\n\
             [[items]]\ntable = \"persons\"\ncolumns = [\"sex\", \"birth_year_month\", \"municipality\"]\n\
             [[items]]\ntable = \"diagnoses\"\ncolumns = [\"icd10\", \"date\"]\n",
            to
        )
    };
    let uncertified = s.path("pseudo-uncertified.toml");
    std::fs::write(&uncertified, pseudo_app("certification = \"none\"")).expect("app");
    let out = s
        .user("res")
        .args(["application", "submit", "--file"])
        .arg(&uncertified)
        .arg("--home")
        .arg(&s.home)
        .assert()
        .failure();
    assert!(stderr(&out).contains("certified user"), "{}", stderr(&out));
    let certified = s.path("pseudo.toml");
    std::fs::write(
        &certified,
        pseudo_app(
            "certification = \"pseudo-user\"\ncertification_id = \"PU-0001\"\n\
             certification_valid_until = \"2099-03-31\"",
        ),
    )
    .expect("app");
    let submitted = stdout(
        &s.user("res")
            .args(["application", "submit", "--file"])
            .arg(&certified)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(submitted.contains("A-0003"), "{submitted}");
    approve(s, m, "A-0003", "certified user, drug safety", &[]);
    pseudonymized_tables(s, pseudonym_sets);
}

/// The pseudonymized release of A-0003: day-level dates, birth year-month, its own pseudonyms;
/// A-0001 (anonymized) is refused the pseudonymized preset.
fn pseudonymized_tables(s: &Site, pseudonym_sets: &[HashSet<String>]) {
    let pseudo = s.path("release-pseudo");
    let built = stdout(
        &cmd()
            .args(["release", "build", "--application", "A-0003", "--out"])
            .arg(&pseudo)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(built.contains("re-identification test"), "{built}");
    let persons = std::fs::read_to_string(pseudo.join("tables/persons.csv")).expect("persons");
    assert_eq!(
        persons.lines().next(),
        Some("pseudonym,sex,birth_year_month,municipality")
    );
    assert!(persons.lines().skip(1).all(|l| {
        let f: Vec<&str> = l.split(',').collect();
        f.len() == 4 && (f[2].is_empty() || f[2].len() == 7) && (f[3].is_empty() || f[3].len() == 6)
    }));
    let dx = std::fs::read_to_string(pseudo.join("tables/diagnoses.csv")).expect("dx");
    assert!(
        dx.lines()
            .skip(1)
            .all(|l| l.rsplit(',').next().is_some_and(|d| d.len() == 10)),
        "day-level dates"
    );
    let pseudo_set: HashSet<String> = persons
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or("").to_string())
        .collect();
    assert!(pseudo_set.len() > 200);
    assert!(pseudonym_sets.iter().all(|s| s.is_disjoint(&pseudo_set)));
    let out = cmd()
        .args([
            "release",
            "build",
            "--application",
            "A-0001",
            "--preset",
            "jp-pseudonymized",
        ])
        .arg("--out")
        .arg(s.path("release-wrong-kind"))
        .arg("--home")
        .arg(&s.home)
        .assert()
        .code(1);
    assert!(
        stderr(&out).contains("pseudonymized releases"),
        "{}",
        stderr(&out)
    );
}

/// The re-identification battery: an intruder holding the region's population register (the
/// synthetic truth) re-identifies at most 5 % of the release, and most of the same persons when
/// their sex, birth year-month and municipality are given unprocessed. Persons who asked to stop
/// are in no release built after.
fn reidentification_battery(s: &Site, linked: &Linked, victim: &Victim, opted_person: &str) {
    let cohort_truth = answer_key(s, linked);
    // Persons who asked to stop are in no release built after, although the application's cohort
    // (no criteria) would take everyone: the H01 patient refused at receipt, and the K02 person
    // purged after receipt, whose person id the index held before the purge.
    let victim_truth = linked
        .person_by_key
        .get(&key_of(&victim.record))
        .cloned()
        .flatten()
        .expect("the purged person's truth");
    for release_key in ["key-0.csv", "key-1.csv"] {
        let text = std::fs::read_to_string(s.path(release_key)).expect("key");
        assert!(
            text.lines()
                .skip(1)
                .all(|l| l.split_once(',').is_some_and(|(_, p)| p != victim.person)),
            "the purged person is in {release_key}"
        );
    }
    assert!(
        !cohort_truth
            .iter()
            .any(|(_, t)| *t == victim_truth || *t == opted_person),
        "a person who asked to stop is in the release"
    );
    let population = s.region.join("truth/persons.parquet");
    let released = reid(s, &s.path("release-0"), 0);
    let success = released["attack_success"].as_f64().expect("success");
    // Cross-release linkability: release-0 and release-1 of the same cohort joined on every value
    // but the pseudonym.
    let out = cmd()
        .args(["reid-test", "--json", "--release"])
        .arg(s.path("release-0"))
        .arg("--against")
        .arg(s.path("release-1"))
        .arg("--population")
        .arg(&population)
        .args(["--max-prosecutor-risk", "0.2"])
        .assert()
        .success();
    let joined: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let linkable = joined["cross_release"]["share"].as_f64().expect("share");
    eprintln!(
        "cross-release linkability: {linkable:.4} of release-0 joined to exactly one person of release-1"
    );
    assert!(joined["battery"]["persons"].as_u64().is_some(), "{joined}");
    // Two builds of one application hold the same tables at the same granularity: a person
    // linked across them gains nothing (reported, no breach), whatever the share.
    assert!(linkable > 0.0, "{joined}");
    assert_eq!(
        joined["cross_release"]["adds_information"].as_bool(),
        Some(false),
        "{joined}"
    );
    let raw = unprocessed_cohort(s, &cohort_truth);
    let unprocessed = reid(s, &raw, 1);
    let raw_success = unprocessed["attack_success"].as_f64().expect("success");
    eprintln!("linkage attack: {success:.4} of the release re-identified, {raw_success:.4} of the unprocessed cohort");
    assert!(success <= 0.05, "{released}");
    assert!(raw_success > 0.5, "{unprocessed}");
}

/// The answer key of release-0 (`pseudonym,person_id` of the synthetic truth) in `truth.csv`,
/// assembled from the build's evaluation key and the index; returns its pairs.
fn answer_key(s: &Site, linked: &Linked) -> Vec<(String, String)> {
    let mpi_now = read_mpi(&s.home);
    let mut truth_of_person: HashMap<String, String> = HashMap::new();
    for r in &linked.held {
        if let (Some(p), Some(t)) = (
            mpi_now.person_of.get(&r.record_id),
            linked.person_by_key.get(&key_of(r)).cloned().flatten(),
        ) {
            truth_of_person.entry(p.clone()).or_insert(t);
        }
    }
    let eval_key = std::fs::read_to_string(s.path("key-0.csv")).expect("evaluation key");
    let mut truth_csv = String::from("pseudonym,person_id\n");
    let mut cohort_truth = Vec::new();
    for line in eval_key.lines().skip(1) {
        let (ps, p) = line.split_once(',').expect("pair");
        if let Some(t) = truth_of_person.get(p) {
            truth_csv.push_str(&format!("{ps},{t}\n"));
            cohort_truth.push((ps.to_string(), t.clone()));
        }
    }
    assert!(cohort_truth.len() > 200, "{}", cohort_truth.len());
    std::fs::write(s.path("truth.csv"), &truth_csv).expect("truth");
    cohort_truth
}

/// `reid-test --json` of `release` against the population with the answer key, exiting `code`.
fn reid(s: &Site, release: &Path, code: i32) -> serde_json::Value {
    let out = cmd()
        .args(["reid-test", "--json", "--release"])
        .arg(release)
        .arg("--population")
        .arg(s.region.join("truth/persons.parquet"))
        .arg("--truth")
        .arg(s.path("truth.csv"))
        .args(["--max-prosecutor-risk", "0.2"])
        .assert()
        .code(code);
    serde_json::from_str(&stdout(&out)).expect("json")
}

/// The unprocessed cohort: the same persons with exact quasi-identifiers, as a release folder.
fn unprocessed_cohort(s: &Site, cohort_truth: &[(String, String)]) -> PathBuf {
    let raw = s.path("raw");
    std::fs::create_dir_all(raw.join("tables")).expect("mkdir");
    std::fs::copy(s.path("release-0/manifest.json"), raw.join("manifest.json")).expect("copy");
    let people: HashMap<String, tokumei_model::truth::TruthPerson> =
        tokumei_synth::writer::read_table::<tokumei_model::truth::TruthPerson>(
            &s.region.join("truth/persons.parquet"),
        )
        .expect("persons")
        .into_iter()
        .map(|p| (p.person_id.clone(), p))
        .collect();
    let mut raw_csv = String::from("pseudonym,sex,birth_year_month,municipality\n");
    for (ps, t) in cohort_truth {
        let p = &people[t];
        raw_csv.push_str(&format!(
            "{ps},{},{},{}\n",
            p.sex.code(),
            p.birth_date.format("%Y-%m"),
            p.municipality_code
        ));
    }
    std::fs::write(raw.join("tables/persons.csv"), raw_csv).expect("raw");
    raw
}

/// The provision ledger: four releases of A-0001 (and one of A-0003), the HIPAA one with the
/// package hash its build reported; a destruction certificate recorded for the first.
fn ledger(s: &Site, hipaa: &serde_json::Value) {
    let ledger = stdout(
        &cmd()
            .args(["release", "list", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert_eq!(ledger.matches("A-0001").count(), 4, "{ledger}");
    let first = ledger
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a release id")
        .to_string();
    let listed = json(
        &cmd()
            .args(["release", "list", "--json", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    let provisions = listed.as_array().expect("an array");
    let of = |a: &str| {
        provisions
            .iter()
            .filter(|p| p["application_id"] == a)
            .count()
    };
    assert_eq!((of("A-0001"), of("A-0003")), (4, 1), "{listed}");
    let entry = provisions
        .iter()
        .find(|p| p["release_id"] == hipaa["release_id"])
        .expect("the HIPAA release in the ledger");
    assert_eq!(entry["package_sha256"], hipaa["package_sha256"], "{entry}");
    assert!(entry["destroyed_at"].is_null(), "{entry}");
    let certificate = s.path("certificate.pdf");
    std::fs::write(&certificate, b"%PDF certificate of destruction").expect("write");
    cmd()
        .args(["release", "destroyed", "--release", &first, "--certificate"])
        .arg(&certificate)
        .arg("--home")
        .arg(&s.home)
        .assert()
        .success();
    let ledger = stdout(
        &cmd()
            .args(["release", "list", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert!(
        !ledger.lines().nth(1).unwrap_or("").contains(" - "),
        "{ledger}"
    );
}

/// A revoked user opens no session; everything was audited, and the log verifies (`--json`
/// counts its entries).
fn revoked_users_and_the_audit_log(s: &Site) {
    cmd()
        .args(["user", "revoke", "--name", "tech-b", "--home"])
        .arg(&s.home)
        .assert()
        .success();
    let out = s
        .tech_b()
        .args(["quarantine", "list", "--home"])
        .arg(&s.home)
        .assert()
        .code(1);
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    cmd()
        .args(["audit", "verify", "--home"])
        .arg(&s.home)
        .assert()
        .success();
    let log = s.log();
    let verified = json(
        &cmd()
            .args(["audit", "verify", "--json", "--home"])
            .arg(&s.home)
            .assert()
            .success(),
    );
    assert_eq!(
        verified["entries"].as_u64(),
        Some(log.lines().count() as u64),
        "{verified}"
    );
    // Members without the home passphrase sign their own entries; the operator's key is sealed.
    assert!(
        log.lines()
            .any(|l| l.contains("\"signer\":") && l.contains("\"action\":\"committee.")),
        "committee entries are signed with the member's own key"
    );
    assert!(!s.home.join("keys/audit.key").exists());
    for action in [
        "user.add",
        "optout.add",
        "optout.purge",
        "receive",
        "quarantine.list",
        "export.request",
        "export.approve",
        "export.run",
        "user.revoke",
        "session.open",
        "link.run",
        "release.build",
        "release.provide",
        "release.destroyed",
        "committee.decide",
    ] {
        assert!(
            log.contains(&format!("\"{action}\"")),
            "{action} is audited"
        );
    }
    assert!(log.contains("denied"));
}

/// No name, reading, birth date, address, insurance number or patient id of the region appears in
/// plain text anywhere under the home, after a build killed once its ledger entry is committed
/// has been moved into place by the next one. Numbers are looked for outside the clinical Parquet
/// files, whose code columns (disease, drug, procedure, facility codes) may hold the same digits.
fn nothing_identifying_in_plain_text(s: &Site, truth: &Truth) {
    let (words, numbers) = identifying_values(s, truth);
    build_killed_after_its_ledger_entry(s);
    let files = tree(&s.home);
    for (n, numeric) in words
        .iter()
        .map(|w| (w, false))
        .chain(numbers.iter().map(|n| (n, true)))
    {
        let finder = memchr::memmem::Finder::new(n.as_bytes());
        for (path, bytes) in &files {
            if numeric && path.extension().is_some_and(|e| e == "parquet") {
                continue;
            }
            // A number counts only as a whole token: the same digits inside a hex digest or an
            // opaque id are chance, not a leak.
            let leaked = finder.find_iter(bytes).any(|at| {
                !numeric
                    || (!bytes[..at].last().is_some_and(u8::is_ascii_alphanumeric)
                        && !bytes
                            .get(at + n.len())
                            .is_some_and(u8::is_ascii_alphanumeric))
            });
            assert!(
                !leaked,
                "an identifying value appears in plain text in {}",
                path.display()
            );
        }
    }
}

/// The identifying values of the providers' records: (words, numbers).
fn identifying_values(s: &Site, truth: &Truth) -> (BTreeSet<String>, BTreeSet<String>) {
    let test_dates: HashSet<String> = ["2025-01-10", "2025-06-01", "2020-01-06", s.recent.as_str()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut words: BTreeSet<String> = BTreeSet::new();
    let mut numbers: BTreeSet<String> = BTreeSet::new();
    for r in truth
        .identities
        .iter()
        .filter(|r| PROVIDERS.contains(&r.provider_id.as_str()))
    {
        if let (Some(s), Some(g)) = (&r.surname_kanji, &r.given_kanji) {
            words.insert(format!("{s}\u{3000}{g}"));
            words.insert(format!("{s}{g}"));
        }
        if let (Some(s), Some(g)) = (&r.surname_kana, &r.given_kana) {
            words.insert(format!("{s}{g}"));
        }
        if let Some(b) = r.birth_date.map(|b| b.to_string()) {
            if !test_dates.contains(&b) {
                words.insert(b);
            }
        }
        if let (Some(t), Some(c)) = (&r.town, &r.chome) {
            words.insert(format!("{t}{c}"));
        }
        if let Some(l) = &r.local_patient_id {
            numbers.insert(l.clone());
        }
        if let Some(n) = r.insured_number.as_ref().filter(|n| n.chars().count() >= 6) {
            numbers.insert(n.clone());
        }
    }
    assert!(
        words.len() > 500 && numbers.len() > 200,
        "{} {}",
        words.len(),
        numbers.len()
    );
    (words, numbers)
}

/// A build killed once its ledger entry is committed: the next build moves it into place and
/// records its outcome (no release without its ledger entry, none without its audit entry).
fn build_killed_after_its_ledger_entry(s: &Site) {
    let killed = s.path("release-killed");
    let hipaa_build = |out: &Path, fault: Option<&str>| {
        let mut c = cmd();
        if let Some(f) = fault {
            c.env("TOKUMEI_FAULT_POINT", f);
        }
        c.args(["release", "build", "--application", "A-0001"])
            .args([
                "--preset",
                "hipaa-safe-harbor",
                "--max-cross-release-linkable",
                "1",
            ])
            .arg("--out")
            .arg(out)
            .arg("--home")
            .arg(&s.home)
            .output()
            .expect("run")
    };
    assert!(!hipaa_build(&killed, Some("release.committed"))
        .status
        .success());
    assert!(!killed.exists());
    let later = hipaa_build(&s.path("release-after-kill"), None);
    assert!(
        later.status.success(),
        "{}",
        String::from_utf8_lossy(&later.stderr)
    );
    assert!(
        killed.join("report.json").exists(),
        "moved into place at recovery"
    );
    assert!(
        s.log()
            .lines()
            .any(|l| l.contains("\"action\":\"release.build\"")
                && l.contains("ok (recorded at recovery")),
        "the killed build's outcome is recorded"
    );
}

/// Images through the pipeline: the hospitals' DICOM studies were received with their extracts and
/// tied to their persons; a pseudonymized application asks for the images table with its files; the
/// release carries each image de-identified under the person's pseudonym, with no identifying value
/// of any person of the region in any file, and never the pixels of an image with burned-in text.
fn images_release(s: &Site, m: &str) {
    let app = s.path("images.toml");
    std::fs::write(
        &app,
        format!(
            "title = \"Images\"\nkind = \"pseudonymized\"\npurpose = \"imaging study\"\n\
             period_from = \"2018-04-01\"\nperiod_to = \"2025-03-31\"\n\
             contract_expiry = \"2099-03-31\"\nrecipient_key = \"{}\"\nsecurity_plan = \"x\"\n\
             [applicant]\norganisation = \"架空大学\"\ncertification = \"pseudo-user\"\n\
             certification_id = \"PU-0002\"\ncertification_valid_until = \"2099-03-31\"\n\
             responsible_researcher = \"r\"\n\
             [[items]]\ntable = \"persons\"\ncolumns = [\"sex\", \"birth_year_month\"]\n\
             [[items]]\ntable = \"images\"\n\
             columns = [\"modality\", \"body_part\", \"study_date\", \"file\"]\n\
             [images]\nmodalities = [\"CT\", \"MR\", \"CR\", \"US\"]\n",
            other_recipient(s)
        ),
    )
    .expect("application");
    let submitted = stdout(
        &s.user("res")
            .args(["application", "submit", "--file"])
            .arg(&app)
            .arg("--home")
            .arg(&s.home)
            .assert()
            .success(),
    );
    let id = submitted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.starts_with("A-"))
        .expect("application id")
        .to_string();
    approve(s, m, &id, "images for an imaging study", &[]);
    let out = s.path("release-images");
    cmd()
        .args(["release", "build", "--application", &id, "--out"])
        .arg(&out)
        .arg("--home")
        .arg(&s.home)
        .assert()
        .success();
    let report = report_of(s, "release-images");
    let summary = &report["images"];
    let released = summary["released"].as_u64().expect("released");
    let withheld: u64 = summary["withheld"]
        .as_object()
        .expect("withheld")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert!(released > 0, "{summary}");
    // Withheld for burned-in text only (flagged, or found by OCR), never because OCR failed.
    for reason in summary["withheld"].as_object().expect("reasons").keys() {
        assert!(
            reason.contains("Burned In Annotation") || reason.contains("(OCR)"),
            "{reason}"
        );
    }
    assert_eq!(summary["requested"].as_u64(), Some(released + withheld));
    let originals = region_images(s);
    assert!(
        originals.iter().any(|(t, _)| t.burned_in) && withheld > 0,
        "the region has images with burned-in text, and some are withheld: {summary}"
    );
    released_images_are_clean(&out, &originals, released);
}

/// The region's images with their truth, read from the providers' folders.
fn region_images(s: &Site) -> Vec<(tokumei_model::truth::TruthImage, tokumei_dicom::DicomFile)> {
    let truth: Vec<tokumei_model::truth::TruthImage> =
        tokumei_synth::writer::read_table(&s.region.join("truth/images.parquet")).expect("truth");
    truth
        .into_iter()
        .map(|t| {
            let path = s.region.join("sources").join(&t.provider_id).join(&t.path);
            let bytes = std::fs::read(&path).expect("image");
            let file = tokumei_dicom::parse(&bytes, &tokumei_dicom::Limits::default())
                .expect("a synthetic image reads");
            (t, file)
        })
        .collect()
}

/// Every identifying value of the region's images: each group and longer component of Patient's
/// Name (words), and the ids, birth dates and addresses (numbers and words).
fn image_identifiers(
    originals: &[(tokumei_model::truth::TruthImage, tokumei_dicom::DicomFile)],
) -> (Vec<tokumei_dicom::check::Identifier>, BTreeSet<String>) {
    use dicom_core::Tag;
    let mut words = Vec::new();
    let mut numbers = BTreeSet::new();
    for (_, f) in originals {
        let rep = f.body.repertoire(&Default::default()).expect("repertoire");
        let text = |tag| {
            f.body
                .text(tag, &rep)
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        for group in text(Tag(0x0010, 0x0010)).split('=') {
            let parts = group.split('^').filter(|p| !p.is_ascii() || p.len() >= 4);
            for v in std::iter::once(group).chain(parts) {
                words.push(tokumei_dicom::check::Identifier {
                    kind: "name".into(),
                    value: v.to_string(),
                });
            }
        }
        words.push(tokumei_dicom::check::Identifier {
            kind: "address".into(),
            value: text(Tag(0x0010, 0x1040)),
        });
        for tag in [
            Tag(0x0010, 0x0020),
            Tag(0x0010, 0x1000),
            Tag(0x0010, 0x0030),
        ] {
            numbers.extend(
                text(tag)
                    .split('\\')
                    .map(|v| v.trim().to_string())
                    .filter(|v| v.len() >= 4),
            );
        }
    }
    words.retain(|w| w.value.trim().chars().count() >= 2);
    (words, numbers)
}

/// Each released file: under its pseudonym, with the conformance attributes, no identifying value
/// of any person (names decoded in the file's character sets; numbers as whole tokens of its
/// bytes), and pixels unlike those of every original with burned-in text.
fn released_images_are_clean(
    out: &Path,
    originals: &[(tokumei_model::truth::TruthImage, tokumei_dicom::DicomFile)],
    released: u64,
) {
    use dicom_core::Tag;
    let (words, numbers) = image_identifiers(originals);
    let pixels =
        |f: &tokumei_dicom::DicomFile| f.body.bytes(Tag(0x7fe0, 0x0010)).map(<[u8]>::to_vec);
    let burned: HashSet<Vec<u8>> = originals
        .iter()
        .filter(|(t, _)| t.burned_in)
        .filter_map(|(_, f)| pixels(f))
        .collect();
    let files: Vec<(PathBuf, Vec<u8>)> = tree(&out.join("images"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert_eq!(files.len() as u64, released);
    let finders: Vec<(String, memchr::memmem::Finder<'_>)> = numbers
        .iter()
        .map(|n| (n.clone(), memchr::memmem::Finder::new(n.as_bytes())))
        .collect();
    for (path, bytes) in &files {
        let f = tokumei_dicom::parse(bytes, &tokumei_dicom::Limits::default()).expect("reads");
        let folder = path
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().to_string());
        assert_eq!(
            f.body.text_ascii(Tag(0x0010, 0x0020)),
            folder,
            "Patient ID is the pseudonym"
        );
        assert_eq!(
            f.body.text_ascii(Tag(0x0012, 0x0062)).as_deref(),
            Some("YES")
        );
        let found = tokumei_dicom::check::identifiers(&f, &words);
        assert!(found.is_empty(), "{}: {found:?}", path.display());
        for (n, finder) in &finders {
            let whole = finder.find_iter(bytes).any(|at| {
                !bytes[..at].last().is_some_and(u8::is_ascii_alphanumeric)
                    && !bytes
                        .get(at + n.len())
                        .is_some_and(u8::is_ascii_alphanumeric)
            });
            assert!(!whole, "an id or birth date in {}", path.display());
        }
        assert!(
            pixels(&f).is_none_or(|p| !burned.contains(&p)),
            "{}: the pixels of an image with burned-in text",
            path.display()
        );
    }
}
