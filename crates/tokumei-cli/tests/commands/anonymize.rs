//! End-to-end tests of `tokumei anonymize` and `tokumei risk`, including bad configurations.

use std::path::Path;

use assert_cmd::Command;

const DIAGNOSES: [&str; 4] = ["flu", "asthma", "diabetes", "fracture"];

/// A deterministic table of 240 people with a direct identifier, three quasi-identifiers and a sensitive
/// attribute, plus ARX-format hierarchies.
fn fixture(dir: &Path) {
    let mut csv = String::from("id,age,sex,zip,diagnosis\n");
    for i in 0..240u32 {
        let age = 20 + (i * 7) % 60;
        let sex = if i % 3 == 0 { "F" } else { "M" };
        let zip = format!("03{}-08{:02}", i % 4, i % 10);
        let d = DIAGNOSES[((i * 5) / 3 % 4) as usize];
        csv.push_str(&format!("P{i:04},{age},{sex},{zip},{d}\n"));
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    let mut age = String::new();
    for a in 0..=120 {
        age.push_str(&format!(
            "{a};{}-{};{}-{};*\n",
            a / 10 * 10,
            a / 10 * 10 + 9,
            a / 20 * 20,
            a / 20 * 20 + 19
        ));
    }
    std::fs::write(dir.join("age.csv"), age).unwrap();
    std::fs::write(dir.join("sex.csv"), "F;*\nM;*\n").unwrap();
    let mut zip = String::new();
    for p in 0..4 {
        for s in 0..10 {
            zip.push_str(&format!("03{p}-08{s:02};03{p};*\n"));
        }
    }
    std::fs::write(dir.join("zip.csv"), zip).unwrap();
}

fn tokumei() -> Command {
    Command::cargo_bin("tokumei").unwrap()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn flags_form_writes_table_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fixture(d);
    let out = d.join("out");
    tokumei()
        .arg("anonymize")
        .arg("--input")
        .arg(d.join("people.csv"))
        .arg("--out")
        .arg(&out)
        .arg("--qi")
        .arg(format!("age={}", d.join("age.csv").display()))
        .arg("--qi")
        .arg(format!("sex={}", d.join("sex.csv").display()))
        .arg("--qi")
        .arg(format!("zip={}", d.join("zip.csv").display()))
        .args([
            "--sensitive",
            "diagnosis",
            "--identifier",
            "id",
            "--k",
            "5",
            "--l",
            "2",
        ])
        .args(["--suppression-limit", "0.05", "--metric", "loss"])
        .assert()
        .success();
    let r = report(&out);
    assert!(r["min_class_size"].as_u64().unwrap() >= 5);
    assert!(r["suppressed_records"].as_u64().unwrap() <= 12);
    assert_eq!(r["rows"], 240);
    assert_eq!(r["removed_columns"][0], "id");
    assert!(r["transformation"]["age"].as_u64().is_some());
    assert!(r["risk_after"]["prosecutor_max"].as_f64().unwrap() <= 0.2);
    assert!(r["risk_before"]["prosecutor_max"].as_f64().unwrap() > 0.2);
    let table = std::fs::read_to_string(out.join("people.csv")).unwrap();
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("age,sex,zip,diagnosis"));
    assert_eq!(lines.count(), 240);
    assert!(!table.contains("P0001"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("Class size distribution")
            && html.contains("等価クラス")
    );
}

#[test]
fn config_form_with_parquet_and_given_levels() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fixture(d);
    // Parquet input from the CSV.
    let text = std::fs::read(d.join("people.csv")).unwrap();
    let t = tokumei_anonymize::Table::read_csv_bytes(&text, b',', "people.csv").unwrap();
    t.write_parquet(&d.join("people.parquet")).unwrap();
    std::fs::write(
        d.join("anon.toml"),
        r#"
suppression_limit = 0.0
metric = { name = "entropy" }

[[attributes]]
name = "id"
role = "identifying"

[[attributes]]
name = "age"
role = "quasi_identifying"
hierarchy = { builder = "ages", top = 70 }

[[attributes]]
name = "sex"
role = "quasi_identifying"
hierarchy = { file = "sex.csv" }

[[attributes]]
name = "zip"
role = "quasi_identifying"
hierarchy = { builder = "postal" }

[[models]]
type = "k_anonymity"
k = 4
"#,
    )
    .unwrap();
    let out = d.join("out");
    tokumei()
        .arg("anonymize")
        .arg("--input")
        .arg(d.join("people.parquet"))
        .arg("--config")
        .arg(d.join("anon.toml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let r = report(&out);
    assert_eq!(r["suppressed_records"], 0);
    assert!(r["min_class_size"].as_u64().unwrap() >= 4);
    assert!(out.join("people.parquet").exists());
    // The same configuration with a given transformation: the report says whether it is valid.
    let out2 = d.join("out2");
    tokumei()
        .arg("anonymize")
        .arg("--input")
        .arg(d.join("people.parquet"))
        .arg("--config")
        .arg(d.join("anon.toml"))
        .arg("--out")
        .arg(&out2)
        .args(["--levels", "age=4,sex=1,zip=2"])
        .assert()
        .success();
    let r2 = report(&out2);
    assert_eq!(r2["transformation_vector"], serde_json::json!([4, 1, 2]));
    assert_eq!(r2["classes"], 1);
    assert_eq!(r2["valid"], true);
    assert!(r2["search"].is_null());
}

fn bad(args: &[String], needle: &str) {
    let out = tokumei().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "`{needle}` not in: {err}");
}

#[test]
fn bad_configurations_fail_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fixture(d);
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "anonymize".into(),
            "--input".into(),
            d.join("people.csv").display().to_string(),
            "--out".into(),
            d.join("out").display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let age = format!("age={}", d.join("age.csv").display());
    let sex = format!("sex={}", d.join("sex.csv").display());
    // Unknown column.
    bad(
        &base(&[
            "--qi",
            &format!("nosuch={}", d.join("sex.csv").display()),
            "--k",
            "2",
        ]),
        "nosuch",
    );
    // A value in the data missing from the hierarchy.
    std::fs::write(d.join("sex_short.csv"), "F;*\n").unwrap();
    bad(
        &base(&[
            "--qi",
            &format!("sex={}", d.join("sex_short.csv").display()),
            "--k",
            "2",
        ]),
        "`M`",
    );
    // k larger than the table.
    bad(
        &base(&["--qi", &age, "--k", "1000"]),
        "larger than the table",
    );
    // l-diversity asking for more values than exist.
    bad(
        &base(&["--qi", &sex, "--sensitive", "diagnosis", "--l", "9"]),
        "contradictory",
    );
    // l without a sensitive column.
    bad(&base(&["--qi", &sex, "--l", "2"]), "--sensitive");
    // Suppression limit outside [0, 1].
    bad(
        &base(&["--qi", &sex, "--k", "2", "--suppression-limit", "1.5"]),
        "suppression limit",
    );
    // No privacy model.
    bad(&base(&["--qi", &sex]), "no privacy model");
    // A level above the hierarchy.
    bad(
        &base(&["--qi", &sex, "--k", "2", "--levels", "sex=3"]),
        "exceeds",
    );
    assert!(
        !d.join("out").exists(),
        "nothing is written on a configuration error"
    );
}

#[test]
fn risk_assessment_leaves_the_table_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fixture(d);
    let out = tokumei()
        .args(["risk", "--input"])
        .arg(d.join("people.csv"))
        .args(["--qi", "age,sex", "--json", "--population-size", "100000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["records"], 240);
    assert!(r["prosecutor_max"].as_f64().unwrap() > 0.0);
    assert!(r["population_uniqueness_zayatz"].as_f64().is_some());
    tokumei()
        .args(["risk", "--input"])
        .arg(d.join("people.csv"))
        .args(["--qi", "nosuch"])
        .assert()
        .code(2);
}

#[test]
fn the_output_folder_is_written_whole_and_replaced_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fixture(d);
    let out = d.join("out");
    let run = |out: &Path, extra: &[&str]| {
        tokumei()
            .arg("anonymize")
            .arg("--input")
            .arg(d.join("people.csv"))
            .arg("--out")
            .arg(out)
            .arg("--qi")
            .arg(format!("age={}", d.join("age.csv").display()))
            .args(["--k", "5", "--identifier", "id"])
            .args(extra)
            .output()
            .unwrap()
    };
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("mine.txt"), "kept").unwrap();
    let refused = run(&out, &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(out.join("mine.txt")).unwrap(),
        "kept"
    );
    assert!(!out.join("report.json").exists());
    let forced = run(&out, &["--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["people.csv", "report.html", "report.json"]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html><html lang=\"ja\">"));
    assert!(html.contains("匿名加工レポート / Anonymization report"));
    // The input's own folder is never the output, even with --force.
    let same = run(d, &["--force"]);
    assert_eq!(same.status.code(), Some(2));
    assert!(d.join("people.csv").exists());
    // Nothing is left under a staging name.
    assert!(std::fs::read_dir(d).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("staging")));
}
