//! `tokumei demo` end to end at its default size: a synthetic region of 20,000 people through receipt,
//! linkage, the committee and a release under the exact `jp-anonymized` preset (k = 10, 5 %
//! suppression, rare codes, trajectories), then the preset's rules checked again here on the release's
//! Parquet tables, the re-identification figures, and the audit log.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow_array::{Array, StringArray};
use assert_cmd::Command;

fn cmd() -> Command {
    let mut c = Command::cargo_bin("tokumei").expect("binary");
    c.env_remove("TOKUMEI_PASSPHRASE")
        .env("TOKUMEI_LOG", "warn");
    c
}

/// A Parquet table of the release as rows of optional strings, with its column names.
fn parquet(path: &Path) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let file = std::fs::File::open(path).expect("parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("reader")
        .build()
        .expect("build");
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        names = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let cols: Vec<&StringArray> = batch
            .columns()
            .iter()
            .map(|c| c.as_any().downcast_ref::<StringArray>().expect("text"))
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| (!c.is_null(i)).then(|| c.value(i).to_string()))
                    .collect(),
            );
        }
    }
    (names, rows)
}

fn is_year_month(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit)
}

#[test]
fn demo_on_an_engine_this_build_lacks_or_a_bad_address_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let mut cases = vec![("ballista://x", "port is missing")];
    if !cfg!(feature = "distributed") {
        cases.push(("datafusion", "--features distributed"));
    }
    for (engine, message) in cases {
        let out = cmd()
            .arg("demo")
            .arg("--dir")
            .arg(&demo)
            .args(["--people", "50", "--engine", engine])
            .assert()
            .failure()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(message), "{engine}: {err}");
        assert!(!demo.exists(), "nothing written for {engine}");
    }
}

#[test]
fn demo_releases_under_the_exact_jp_anonymized_preset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let out = cmd().arg("demo").arg("--dir").arg(&demo).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("step 7/7"), "{stdout}");
    assert!(!stdout.contains("release refused"), "{stdout}");
    // The summary names the preset's k (jp-anonymized: 10), not a constant of the demo.
    assert!(stdout.contains("suppressed for k = 10,"), "{stdout}");

    let release = demo.join("release");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(release.join("report.json")).expect("report"))
            .expect("json");
    assert_eq!(report["preset"], "jp-anonymized");
    let persons_released = report["persons"].as_u64().expect("persons");
    assert!(persons_released >= 500, "{report}");
    demo_images(&release, &report["images"]);

    // The preset's rules, checked independently on the Parquet tables.
    let (cols, persons) = parquet(&release.join("tables/persons.parquet"));
    assert_eq!(persons.len() as u64, persons_released);
    for forbidden in ["birth_date", "town", "chome", "postal_code", "name"] {
        assert!(!cols.iter().any(|c| c == forbidden), "{cols:?}");
    }
    let col = |name: &str| cols.iter().position(|c| c == name);
    let mut classes: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    for r in &persons {
        *classes.entry(r[1..].to_vec()).or_default() += 1;
    }
    assert!(
        classes.values().all(|n| *n >= 10),
        "every equivalence class holds at least 10 persons: {:?}",
        classes.values().min()
    );
    if let Some(a) = col("age") {
        for v in persons.iter().filter_map(|r| r[a].as_deref()) {
            // Ages are released as bands below 90 or top-coded as 90+, never an exact age of 90 or more.
            let top = v
                .split('-')
                .next_back()
                .and_then(|x| x.trim_end_matches('+').parse::<u32>().ok());
            assert!(v == "90+" || v == "*" || top.is_some_and(|t| t < 90), "{v}");
        }
    }
    if let Some(m) = col("municipality") {
        for v in persons.iter().filter_map(|r| r[m].as_deref()) {
            // At most the municipality: a 6-digit municipality code or a 2-digit prefecture.
            assert!(
                v == "*"
                    || ((v.len() == 6 || v.len() == 2) && v.bytes().all(|b| b.is_ascii_digit())),
                "{v}"
            );
        }
    }
    if let Some(b) = col("birth_year_month") {
        // Year-month at the finest (or a year, or a band of years), never a day.
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        for v in persons.iter().filter_map(|r| r[b].as_deref()) {
            let band = v
                .split_once('-')
                .is_some_and(|(a, z)| a.len() == 4 && z.len() == 4 && digits(a) && digits(z));
            assert!(
                v == "*" || is_year_month(v) || (v.len() == 4 && digits(v)) || band,
                "{v}"
            );
        }
    }
    for table in ["diagnoses", "prescriptions"] {
        let (cols, rows) = parquet(&release.join(format!("tables/{table}.parquet")));
        assert!(!rows.is_empty(), "{table} is released");
        let date = cols.iter().position(|c| c == "date").expect("date");
        // Year-month at the finest; (k, k^m) may generalize to a quarter, a year or `*`.
        let quarter = |v: &str| v.len() == 7 && v[4..6] == *"-Q";
        let year = |v: &str| v.len() == 4 && v.bytes().all(|c| c.is_ascii_digit());
        assert!(
            rows.iter()
                .filter_map(|r| r[date].as_deref())
                .all(|v| is_year_month(v) || quarter(v) || year(v) || v == "*"),
            "{table}: dates are year-month or coarser"
        );
        let code = cols
            .iter()
            .position(|c| c == "icd10" || c == "code")
            .expect("code");
        let mut holders: HashMap<&str, HashSet<&str>> = HashMap::new();
        for r in &rows {
            if let (Some(c), Some(p)) = (r[code].as_deref(), r[0].as_deref()) {
                if c != "*" {
                    holders.entry(c).or_default().insert(p);
                }
            }
        }
        assert!(
            holders.values().all(|h| h.len() >= 10),
            "{table}: no code is held by fewer than 10 persons"
        );
    }

    // The re-identification figures: the attack against the vault's population re-identifies at
    // most 5 % of the release, and most of the same persons unprocessed.
    let figure = |path: &[&str]| -> f64 {
        let mut v = &report;
        for p in path {
            v = &v[*p];
        }
        v.as_f64().unwrap_or_else(|| panic!("{path:?} in {report}"))
    };
    let released = figure(&["reid", "attack_success"]);
    let unprocessed = figure(&["reid_initial", "attack_success"]);
    eprintln!(
        "demo release: {persons_released} persons; linkage attack {released:.4} (unprocessed \
         {unprocessed:.4}); membership advantage {:.4}; unique trajectories {:.4}",
        figure(&["reid", "membership_advantage"]),
        figure(&["reid", "trajectory_unique"])
    );
    assert!(released <= 0.05, "{report}");
    assert!(unprocessed > 0.5, "{report}");
    assert!(figure(&["reid", "membership_advantage"]) <= 0.05);
    // Persons with their events under (k, k^m), m = 2: the intruder who knows the quasi-identifiers
    // and two events singles out at most 5 %, far less than on the unprocessed data; the release
    // keeps more event rows than the previous 1 % trajectory rule would.
    let attack = |key: &str| report[key][1]["share_correct"].as_f64().expect("m = 2");
    assert!(attack("event_attack") <= 0.05, "{report}");
    assert!(
        attack("event_attack_initial") > attack("event_attack"),
        "{report}"
    );
    let released_rows = report["events"]["rows_released"].as_u64().expect("rows");
    let previous_rows: u64 = ["diagnoses", "prescriptions"]
        .iter()
        .filter_map(|t| report["previous_rule"]["rows"][*t].as_u64())
        .sum();
    assert!(released_rows > previous_rows, "{report}");
    assert!(figure(&["reid", "prosecutor_max"]) <= 0.1);

    feasibility_counts(&demo);
    web_users(&demo);
    crate::browser::walk(&demo);

    // Every step is audited and the log verifies.
    let verify = cmd()
        .args(["audit", "verify", "--home"])
        .arg(demo.join("home"))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&verify.get_output().stdout).to_string();
    assert!(text.contains("intact") || text.contains("ok"), "{text}");
}

/// The demo's users can sign in on the web with what `web-users.txt` (owner-only) holds.
fn web_users(demo: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let file = demo.join("web-users.txt");
    let mode = std::fs::metadata(&file)
        .expect("web users")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "owner-only");
    let text = std::fs::read_to_string(&file).expect("read");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("user\t"))
        .map(|l| l.split('\t').collect())
        .collect();
    let mut roles: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    roles.sort();
    roles.dedup();
    assert_eq!(
        roles,
        [
            "auditor",
            "committee",
            "provider-admin",
            "researcher",
            "technician"
        ]
    );
    let pass = std::fs::read_to_string(demo.join("passphrase.txt")).expect("passphrase");
    let home = tokumei_vault::open(&demo.join("home")).expect("home");
    let key = home.unlock_data_key(pass.trim()).expect("unlock");
    let web = tokumei_vault::webauth::WebAuth::open(&home).expect("web");
    let chair = rows.iter().find(|r| r[0] == "chair").expect("chair");
    let now = chrono::Utc::now().timestamp();
    let code = tokumei_vault::webauth::current_code(chair[3], now).expect("code");
    let s = web
        .sign_in(&key, "chair", chair[2], &code, now)
        .expect("the chair signs in");
    assert_eq!(s.role, tokumei_vault::access::Role::Committee);
}

/// Every count in an answer (`{"shown": "count", "value", "range"}`), with its path.
fn shown_counts(v: &serde_json::Value, path: &str, out: &mut Vec<(String, u64, [u64; 2])>) {
    match v {
        serde_json::Value::Object(m)
            if m.get("shown").and_then(|s| s.as_str()) == Some("count") =>
        {
            let n = m["value"].as_u64().expect("value");
            let r = [
                m["range"][0].as_u64().expect("lo"),
                m["range"][1].as_u64().expect("hi"),
            ];
            out.push((path.to_string(), n, r));
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                shown_counts(x, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                shown_counts(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `tokumei feasibility count` on the demo's vault: under the NDB-like policy no count of 1–9 is
/// shown and every answer spends ε from the user's budget; the same query again gets the same
/// answer from the cache at no cost; with a nearly noiseless policy the attrition never grows and
/// the breakdowns add up to the total; a third fresh count beyond a quota of two is refused, and
/// so is a count beyond the budget; an edited or cut budget ledger refuses every count; each query
/// is one audit entry naming the definition's hash, never its text.
fn feasibility_counts(demo: &Path) {
    let definition = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tokumei-feasibility/cohorts/t2dm-metformin.toml");
    let count = |policy: Option<&Path>| {
        let mut c = feasibility(demo, &definition, policy);
        if policy.is_some() {
            c.arg("--report").arg(demo.join("feasibility.html"));
        }
        let out = c.arg("--json").assert().success();
        serde_json::from_slice::<serde_json::Value>(&out.get_output().stdout).expect("json")
    };
    // An engine this build lacks or a bad address: refused before anything is counted or spent.
    let mut engines = vec![("spark://x:7077", "ballista://HOST:PORT")];
    if !cfg!(feature = "distributed") {
        engines.push(("datafusion", "--features distributed"));
    }
    for (engine, message) in engines {
        let out = feasibility(demo, &definition, None)
            .args(["--engine", engine])
            .assert()
            .failure()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(message), "{engine}: {err}");
    }
    let ndb = count(None);
    // The same query on the same data: the same answer, from the cache.
    let again = count(None);
    assert_eq!(again["cached"], true, "{again}");
    assert_eq!(again["steps"], ndb["steps"]);
    assert_eq!(ndb["cached"], false);
    assert_eq!(ndb["epsilon"], 1.0, "{ndb}");
    assert_eq!(ndb["ledger_row"], 1, "{ndb}");
    assert_eq!(again["balance"]["user_spent"], 1.0, "{again}");
    let mut shown = Vec::new();
    shown_counts(&ndb, "", &mut shown);
    assert!(!shown.is_empty(), "{ndb}");
    for (path, n, range) in &shown {
        assert!(*n == 0 || *n >= 10, "{path}: {n} in {ndb}");
        // The 95 % interval holds the rounding's range and the noise's width around it.
        assert!(range[0] <= *n && *n <= range[1], "{path}: {n} {range:?}");
        assert!(*n == 0 || range[1] - range[0] > 10, "{path}: {range:?}");
    }
    let exact = demo.join("exact.toml");
    std::fs::write(
        &exact,
        // ε 1000 per answer: noise of scale 0.005, zero but with probability about e^-200.
        "name = \"exact\"\nmin_cell = 1\nrounding = 1\nmin_sites = 1\nmin_site_persons = 1\n\
         max_per_minute = 100\nmax_per_week = 100\nepsilon_per_count = 1000.0\n\
         epsilon_per_application = 10000.0\nepsilon_per_user = 10000.0\n",
    )
    .expect("policy");
    let a = count(Some(&exact));
    let html = std::fs::read_to_string(demo.join("feasibility.html")).expect("report");
    assert!(
        html.contains("Attrition") && html.contains("<svg"),
        "{html}"
    );
    let steps: Vec<u64> = a["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["persons"]["value"].as_u64().expect("exact"))
        .collect();
    assert!(steps.windows(2).all(|w| w[0] >= w[1]), "{a}");
    assert!(steps[0] > steps[steps.len() - 1], "{a}");
    let total = a["total"]["value"].as_u64().expect("total");
    for b in ["sex", "age_band", "area", "provider"] {
        let sum: u64 = a[b]["cells"]
            .as_object()
            .expect("cells")
            .values()
            .map(|c| c["value"].as_u64().expect("exact"))
            .sum();
        assert_eq!(sum, total, "{b}: {a}");
    }
    // A policy allowing two counts a week: the user had two, the third is refused and audited.
    let tight = demo.join("tight.toml");
    let text = std::fs::read_to_string(&exact).expect("policy");
    std::fs::write(
        &tight,
        text.replace("max_per_week = 100", "max_per_week = 2"),
    )
    .expect("policy");
    let refused = feasibility(demo, &definition, Some(&tight))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("at most 2 counts in 7 days"), "{err}");
    let log = std::fs::read_to_string(demo.join("home/audit/entries.jsonl")).expect("log");
    let hash = ndb["definition_hash"].as_str().expect("hash");
    let entries: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("feasibility.count"))
        .collect();
    assert_eq!(entries.len(), 4);
    assert!(entries
        .iter()
        .all(|e| e.contains(hash) && !e.contains("metformin")));
    assert!(
        entries[1].contains("\"outcome\":\"cached"),
        "{}",
        entries[1]
    );
    assert!(entries[3].contains("refused: quota"), "{}", entries[3]);
    feasibility_budget(demo, &definition, &exact);
    feasibility_application(demo, &definition);
    recruitment(demo);
}

/// Recruitment: hospital H01 registers a recruitment key; a recruitment protocol approved by the
/// committee gives H01 the list of its own patients who match, sealed so that only its key opens
/// it, without the patients who asked to stop (the demo's first five of H01), recorded in the
/// provision ledger.
fn recruitment(demo: &Path) {
    let home = demo.join("home");
    let pass = ["--passphrase-file", "passphrase.txt"];
    let identity = age::x25519::Identity::generate();
    cmd()
        .current_dir(demo)
        .args(["provider", "recruit-key", "--id", "H01", "--recipient"])
        .arg(identity.to_public().to_string())
        .arg("--home")
        .arg(&home)
        .args(pass)
        .assert()
        .success();
    let file = demo.join("recruitment-application.toml");
    let text = std::fs::read_to_string(demo.join("feasibility-application.toml"))
        .expect("application")
        .replace("epsilon = 3.0", "recruitment = true");
    std::fs::write(&file, text).expect("application");
    as_demo_user(demo, "researcher")
        .args(["application", "submit", "--file"])
        .arg(&file)
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    approve_at_a_meeting(demo, "A-0003");
    let definition = demo.join("recruit.toml");
    std::fs::write(
        &definition,
        "name = \"t2dm-recruit\"\n[concept_sets]\nt2dm = { icd10 = [\"E11\"] }\n\
         [index]\nconcept = \"t2dm\"\nfrom = \"2022-04-01\"\nto = \"2024-03-31\"\n\
         [demographics]\nage = { min = 40, max = 74 }\n",
    )
    .expect("definition");
    let built = cmd()
        .current_dir(demo)
        .args([
            "recruit",
            "build",
            "--json",
            "--application",
            "A-0003",
            "--out",
            "lists",
        ])
        .arg("--definition")
        .arg(&definition)
        .arg("--home")
        .arg(&home)
        .args(pass)
        .assert()
        .success();
    let built: serde_json::Value =
        serde_json::from_slice(&built.get_output().stdout).expect("json");
    let lists = built.as_array().expect("lists");
    assert_eq!(lists.len(), 1, "{built}");
    assert_eq!(lists[0]["provider"], "H01");
    let sealed = std::fs::read(demo.join("lists/A-0003-H01.json.age")).expect("sealed");
    // Another key cannot open it.
    let stranger = age::x25519::Identity::generate();
    assert!(age::decrypt(&stranger, &sealed).is_err());
    let list: serde_json::Value =
        serde_json::from_slice(&age::decrypt(&identity, &sealed).expect("opens")).expect("json");
    let patients: HashSet<String> = list["patients"]
        .as_array()
        .expect("patients")
        .iter()
        .map(|p| p.as_str().expect("id").to_string())
        .collect();
    assert_eq!(list["basis"], "own-records");
    assert_eq!(
        patients.len() as u64,
        lists[0]["patients"].as_u64().expect("n")
    );
    assert!(!patients.is_empty(), "{list}");
    // Every id is one of H01's; the first five (who asked to stop) never appear.
    let h01: Vec<String> = tokumei_synth::writer::read_table::<
        tokumei_model::identity::IdentityRecord,
    >(&demo.join("region/sources/H01/identities.parquet"))
    .expect("identities")
    .into_iter()
    .filter_map(|r| r.local_patient_id)
    .collect();
    assert!(patients.iter().all(|p| h01.contains(p)));
    let mut opted = Vec::new();
    for id in &h01 {
        if opted.len() < 5 && !opted.contains(id) {
            opted.push(id.clone());
        }
    }
    assert!(opted.iter().all(|o| !patients.contains(o)), "{opted:?}");
    let ledger = cmd()
        .args(["recruit", "list", "--json", "--home"])
        .arg(&home)
        .current_dir(demo)
        .args(pass)
        .assert()
        .success();
    let ledger: serde_json::Value =
        serde_json::from_slice(&ledger.get_output().stdout).expect("json");
    assert_eq!(ledger[0]["recipient"], "H01", "{ledger}");
    assert_eq!(ledger[0]["kind"], "recruitment");
    // A feasibility application that is not a recruitment protocol gives no lists.
    let refused = cmd()
        .current_dir(demo)
        .args([
            "recruit",
            "build",
            "--application",
            "A-0002",
            "--out",
            "lists2",
        ])
        .arg("--definition")
        .arg(&definition)
        .arg("--home")
        .arg(&home)
        .args(pass)
        .assert()
        .failure();
    let e = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(e.contains("not a recruitment protocol"), "{e}");
}

/// The definition under another name (a fresh query for the cache: it costs budget), written
/// beside the demo as `<name>.toml`.
fn renamed_definition(demo: &Path, definition: &Path, name: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(definition).expect("definition");
    let path = demo.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        text.replace("name = \"t2dm-metformin\"", &format!("name = \"{name}\"")),
    )
    .expect("definition");
    path
}

/// A command as one of the demo's users (their keys are under the demo's passphrase).
fn as_demo_user(demo: &Path, name: &str) -> Command {
    let pass = std::fs::read_to_string(demo.join("passphrase.txt")).expect("passphrase");
    let mut c = cmd();
    c.env(
        "TOKUMEI_USER_KEY",
        demo.join(format!("home/keys/users/{name}.key")),
    )
    .env("TOKUMEI_USER_PASSPHRASE", pass.trim());
    c
}

/// A feasibility application: the researcher asks nothing before the committee approves it, asks
/// only under it and inside its period, and its own budget (ε 3, under the policy's 20) refuses the
/// fourth fresh answer; a release cannot be built from it.
fn feasibility_application(demo: &Path, definition: &Path) {
    let home = demo.join("home");
    let file = demo.join("feasibility-application.toml");
    std::fs::write(
        &file,
        r#"title = "治験の実施可能性 / Feasibility of a metformin trial"
kind = "feasibility"
purpose = "How many patients a phase III trial could recruit in the region"
period_from = "2022-04-01"
period_to = "2024-03-31"
contract_expiry = "2099-03-31"

[applicant]
organisation = "架空製薬 (synthetic)"
certification = "none"
responsible_researcher = "治験 担当者"

[feasibility]
users = ["researcher"]
epsilon = 3.0
"#,
    )
    .expect("application");
    let submitted = as_demo_user(demo, "researcher")
        .args(["application", "submit", "--file"])
        .arg(&file)
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    let out = String::from_utf8_lossy(&submitted.get_output().stdout).to_string();
    assert!(out.contains("A-0002"), "{out}");
    // The NDB-like policy but for its quota of 3 counts a minute, which this test would meet first.
    let policy = demo.join("researcher-policy.toml");
    std::fs::write(
        &policy,
        include_str!("../../../tokumei-feasibility/policies/ndb.toml")
            .replace("max_per_minute = 3", "max_per_minute = 10"),
    )
    .expect("policy");
    let ask = |def: &Path, application: Option<&str>| {
        let mut c = as_demo_user(demo, "researcher");
        c.args(["feasibility", "count", "--json", "--home"])
            .arg(&home)
            .arg("--definition")
            .arg(def)
            .arg("--policy")
            .arg(&policy)
            .arg("--passphrase-file")
            .arg(demo.join("passphrase.txt"));
        if let Some(a) = application {
            c.args(["--application", a]);
        }
        c.assert()
    };
    let err = |a: assert_cmd::assert::Assert| {
        String::from_utf8_lossy(&a.failure().get_output().stderr).to_string()
    };
    let e = err(ask(definition, Some("A-0002")));
    assert!(e.contains("not decided"), "{e}");
    approve_at_a_meeting(demo, "A-0002");
    let e = err(ask(definition, None));
    assert!(
        e.contains("under an approved feasibility application"),
        "{e}"
    );
    let original = std::fs::read_to_string(definition).expect("definition");
    let outside = demo.join("outside.toml");
    std::fs::write(
        &outside,
        original.replace("from = \"2022-04-01\"", "from = \"2020-04-01\""),
    )
    .expect("definition");
    let e = err(ask(&outside, Some("A-0002")));
    assert!(e.contains("inside the application's period"), "{e}");
    for i in 0..3 {
        let renamed = renamed_definition(demo, definition, &format!("asked-{i}"));
        let a = ask(&renamed, Some("A-0002")).success();
        let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).expect("json");
        assert_eq!(v["balance"]["application"], "A-0002", "{v}");
        assert_eq!(v["balance"]["application_left"], 2.0 - i as f64, "{v}");
    }
    let renamed = renamed_definition(demo, definition, "asked-3");
    let e = err(ask(&renamed, Some("A-0002")));
    assert!(e.contains("application's privacy budget is spent"), "{e}");
    // Counts only: no release is built from a feasibility application.
    let refused = cmd()
        .args([
            "release",
            "build",
            "--dry-run",
            "--application",
            "A-0002",
            "--home",
        ])
        .arg(&home)
        .arg("--passphrase-file")
        .arg(demo.join("passphrase.txt"))
        .assert()
        .failure();
    let e = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(e.contains("never a release"), "{e}");
}

/// The demo's committee (chair, external, member) meets, all approve `application`, the chair
/// records the approval.
fn approve_at_a_meeting(demo: &Path, application: &str) {
    let home = demo.join("home");
    let today = chrono::Utc::now().date_naive().to_string();
    let meeting = as_demo_user(demo, "chair")
        .args(["committee", "meeting", "--date", &today])
        .args([
            "--present",
            "chair",
            "--present",
            "external",
            "--present",
            "member",
        ])
        .arg("--home")
        .arg(&home)
        .assert()
        .success();
    let out = String::from_utf8_lossy(&meeting.get_output().stdout).to_string();
    let m = out
        .split_whitespace()
        .nth(1)
        .expect("meeting id")
        .to_string();
    for name in ["chair", "external", "member"] {
        as_demo_user(demo, name)
            .args([
                "committee",
                "vote",
                "--meeting",
                &m,
                "--application",
                application,
            ])
            .args(["--vote", "approve", "--home"])
            .arg(&home)
            .assert()
            .success();
    }
    as_demo_user(demo, "chair")
        .args([
            "committee",
            "decide",
            "--meeting",
            &m,
            "--application",
            application,
        ])
        .args([
            "--decision",
            "approve",
            "--reason",
            "治験の計画に資する",
            "--home",
        ])
        .arg(&home)
        .assert()
        .success();
}

/// `tokumei feasibility count` on the demo's home with the passphrase and a policy file.
fn feasibility(demo: &Path, definition: &Path, policy: Option<&Path>) -> assert_cmd::Command {
    let mut c = cmd();
    c.args(["feasibility", "count", "--home"])
        .arg(demo.join("home"))
        .arg("--definition")
        .arg(definition)
        .arg("--passphrase-file")
        .arg(demo.join("passphrase.txt"));
    if let Some(p) = policy {
        c.arg("--policy").arg(p);
    }
    c
}

/// The privacy budget: spent answers are in the ledger; beyond the budget a fresh count is refused
/// (a cached one is still given); an edited ledger row, or rows cut off its end, refuse every count
/// until the ledger is put back.
fn feasibility_budget(demo: &Path, definition: &Path, exact: &Path) {
    let budget = |policy: &Path| {
        let out = cmd()
            .args(["feasibility", "budget", "--json", "--home"])
            .arg(demo.join("home"))
            .arg("--passphrase-file")
            .arg(demo.join("passphrase.txt"))
            .arg("--policy")
            .arg(policy)
            .assert()
            .success();
        serde_json::from_slice::<serde_json::Value>(&out.get_output().stdout).expect("json")
    };
    // Spent so far: 1 (NDB) + 1000 (the nearly exact policy).
    let b = budget(exact);
    assert_eq!(b["user_spent"], 1001.0, "{b}");
    assert_eq!(b["user_left"], 8999.0, "{b}");
    // A budget of 1001.5: one more fresh answer would exceed it.
    let small = demo.join("small-budget.toml");
    let text = include_str!("../../../tokumei-feasibility/policies/ndb.toml")
        .replace("epsilon_per_user = 50.0", "epsilon_per_user = 1001.5")
        .replace("max_per_week = 50", "max_per_week = 500");
    std::fs::write(&small, text).expect("policy");
    let renamed = renamed_definition(demo, definition, "t2dm-metformin-2");
    let refused = feasibility(demo, &renamed, Some(&small)).assert().failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("privacy budget is spent"), "{err}");
    // The answer given before is still given: it discloses nothing new.
    feasibility(demo, definition, None).assert().success();

    // The ledger edited in the database: every count is refused, cached or not.
    let db = rusqlite::Connection::open(demo.join("home/catalog/feasibility.sqlite")).expect("db");
    db.execute(
        "UPDATE budget_ledger SET micro_epsilon = 1 WHERE seq = 2",
        [],
    )
    .expect("edit");
    let refused = feasibility(demo, definition, None).assert().failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("changed outside"), "{err}");
    db.execute(
        "UPDATE budget_ledger SET micro_epsilon = 1000000000 WHERE seq = 2",
        [],
    )
    .expect("put back");
    feasibility(demo, definition, None).assert().success();
    // The last row cut off (a budget "refunded"): the audit log names it, so counts are refused.
    let row: (String, String, String, i64, String, String) = db
        .query_row(
            "SELECT at, user, application, micro_epsilon, definition_hash, mac FROM budget_ledger \
             WHERE seq = 2",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .expect("row");
    db.execute("DELETE FROM budget_ledger WHERE seq = 2", [])
        .expect("cut");
    let refused = feasibility(demo, definition, None).assert().failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("ledger row 2"), "{err}");
    db.execute(
        "INSERT INTO budget_ledger VALUES (2, ?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![row.0, row.1, row.2, row.3, row.4, row.5],
    )
    .expect("put back");
    feasibility(demo, definition, None).assert().success();
}

/// The demo's chest and abdomen CR and CT: released de-identified with dates at the month, the
/// burned-in ones withheld for that reason only, and no finding in any file.
fn demo_images(release: &Path, summary: &serde_json::Value) {
    use dicom_core::Tag;
    let released = summary["released"].as_u64().expect("released");
    assert!(released > 0, "{summary}");
    assert_eq!(
        summary["findings"].as_array().map(Vec::len),
        Some(0),
        "{summary}"
    );
    for reason in summary["withheld"].as_object().expect("withheld").keys() {
        assert!(
            reason.contains("Burned In Annotation") || reason.contains("(OCR)"),
            "{reason}"
        );
    }
    let files: Vec<_> = crate::common::tree(&release.join("images"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    assert_eq!(files.len() as u64, released);
    for (path, bytes) in files {
        let f = tokumei_dicom::parse(&bytes, &tokumei_dicom::Limits::default()).expect("reads");
        let modality = f.body.text_ascii(Tag(0x0008, 0x0060)).unwrap_or_default();
        assert!(
            ["CR", "CT"].contains(&modality.as_str()),
            "{}",
            path.display()
        );
        let date = f.body.text_ascii(Tag(0x0008, 0x0020)).unwrap_or_default();
        assert!(
            date.is_empty() || date.ends_with("01"),
            "{}: {date}",
            path.display()
        );
        assert_eq!(
            f.body.text_ascii(Tag(0x0012, 0x0062)).as_deref(),
            Some("YES")
        );
    }
}
