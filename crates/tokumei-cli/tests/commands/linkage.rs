//! End-to-end tests of `tokumei linkage` on small generated tables.

use std::path::Path;

use assert_cmd::Command;

fn tokumei() -> Command {
    Command::cargo_bin("tokumei").expect("binary")
}

const GIVEN: [&str; 12] = [
    "james", "mary", "john", "linda", "robert", "susan", "michael", "karen", "david", "lisa",
    "thomas", "nancy",
];
const SURNAME: [&str; 12] = [
    "smith", "brown", "taylor", "wilson", "martin", "walker", "white", "young", "king", "wright",
    "scott", "green",
];

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes a.csv, b.csv (a corrupted copy of 300 of the 400 people of a) and truth.csv.
fn write_inputs(dir: &Path) {
    let mut rng = Rng(7);
    let header = "rec_id,given_name,surname,date_of_birth,postcode,soc_sec_id\n";
    let (mut a, mut b, mut truth) = (
        String::from(header),
        String::from(header),
        String::from("a,b\n"),
    );
    for i in 0..400u64 {
        let given = GIVEN[rng.below(12) as usize];
        let surname = SURNAME[rng.below(12) as usize];
        let dob = format!(
            "19{:02}{:02}{:02}",
            rng.below(90) + 10,
            rng.below(12) + 1,
            rng.below(28) + 1
        );
        let postcode = format!("{}", 2000 + rng.below(40));
        let ssn = format!("{}", 1_000_000 + i * 7919 % 8_999_999);
        a.push_str(&format!("a{i},{given},{surname},{dob},{postcode},{ssn}\n"));
        if i < 300 {
            let mut fields = [
                given.to_string(),
                surname.to_string(),
                dob.clone(),
                postcode.clone(),
                ssn.clone(),
            ];
            let f = rng.below(5) as usize;
            let v = &mut fields[f];
            if rng.below(2) == 0 {
                v.clear();
            } else {
                let mut c: Vec<char> = v.chars().collect();
                let k = rng.below(c.len() as u64) as usize;
                c[k] = if c[k].is_ascii_digit() { '0' } else { 'x' };
                *v = c.into_iter().collect();
            }
            b.push_str(&format!("b{i},{}\n", fields.join(",")));
            truth.push_str(&format!("a{i},b{i}\n"));
        }
    }
    std::fs::write(dir.join("a.csv"), a).expect("write a");
    std::fs::write(dir.join("b.csv"), b).expect("write b");
    std::fs::write(dir.join("truth.csv"), truth).expect("write truth");
}

const SETTINGS: &str = r#"
link_type = "link"
id_column = "rec_id"

[columns]
given_name = "name"
surname = "name"
date_of_birth = "date"
postcode = "postal"
soc_sec_id = "digits"

[clustering]
one_to_one = true

[[blocking]]
on = ["soc_sec_id"]

[[blocking]]
on = ["date_of_birth"]

[[blocking]]
on = ["surname", "postcode"]

[[comparisons]]
name = "given_name"
columns = ["given_name"]
tf_adjust = true
levels = [{ kind = "null" }, { kind = "exact" }, { kind = "jaro_winkler", threshold = 0.85 }, { kind = "else" }]

[[comparisons]]
name = "surname"
columns = ["surname"]
tf_adjust = true
levels = [{ kind = "null" }, { kind = "exact" }, { kind = "jaro_winkler", threshold = 0.85 }, { kind = "else" }]

[[comparisons]]
name = "date_of_birth"
columns = ["date_of_birth"]
levels = [{ kind = "null" }, { kind = "exact" }, { kind = "date_typo" }, { kind = "else" }]

[[comparisons]]
name = "postcode"
columns = ["postcode"]
levels = [{ kind = "null" }, { kind = "exact" }, { kind = "else" }]

[[comparisons]]
name = "soc_sec_id"
columns = ["soc_sec_id"]
levels = [{ kind = "null" }, { kind = "exact" }, { kind = "levenshtein", max = 1 }, { kind = "else" }]
"#;

fn value_after(text: &str, key: &str) -> f64 {
    let start = text.find(key).expect("key in output") + key.len();
    text[start..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("number after key")
}

#[test]
fn run_then_evaluate_finds_the_true_pairs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_inputs(d);
    std::fs::write(d.join("s.toml"), SETTINGS).expect("settings");
    let out = d.join("out");
    tokumei()
        .args(["linkage", "run", "--settings"])
        .arg(d.join("s.toml"))
        .arg("--left")
        .arg(d.join("a.csv"))
        .arg("--right")
        .arg(d.join("b.csv"))
        .arg("--out")
        .arg(&out)
        .args(["--seed", "3"])
        .assert()
        .success();
    let pairs = std::fs::read_to_string(out.join("pairs.csv")).expect("pairs");
    assert!(pairs.starts_with(
        "left_id,right_id,probability,given_name,surname,date_of_birth,postcode,soc_sec_id\n"
    ));
    let clusters = std::fs::read_to_string(out.join("clusters.csv")).expect("clusters");
    assert!(clusters.starts_with("cluster_id,record_id,side\n"));
    assert_eq!(clusters.lines().count(), 1 + 400 + 300);
    let report = std::fs::read_to_string(out.join("report.html")).expect("report");
    assert!(report.contains("<svg") && report.contains("Record linkage report"));

    let eval = tokumei()
        .args(["linkage", "evaluate", "--pairs"])
        .arg(out.join("pairs.csv"))
        .arg("--truth")
        .arg(d.join("truth.csv"))
        .arg("--clusters")
        .arg(out.join("clusters.csv"))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&eval.get_output().stdout).to_string();
    assert!(value_after(&text, "best F1") > 0.95, "{text}");
    assert!(value_after(&text, "precision") > 0.9, "{text}");
    assert!(
        value_after(&text, "cluster pairs: precision") > 0.9,
        "{text}"
    );

    // Same inputs and seed: byte-identical outputs.
    let again = d.join("again");
    tokumei()
        .args(["linkage", "run", "--settings"])
        .arg(d.join("s.toml"))
        .arg("--left")
        .arg(d.join("a.csv"))
        .arg("--right")
        .arg(d.join("b.csv"))
        .arg("--out")
        .arg(&again)
        .args(["--seed", "3"])
        .assert()
        .success();
    for f in ["pairs.csv", "clusters.csv", "report.html"] {
        assert_eq!(
            std::fs::read(out.join(f)).expect("first"),
            std::fs::read(again.join(f)).expect("second"),
            "{f} differs between runs"
        );
    }
}

fn run_failing(d: &Path, settings: &str, left: &str) -> String {
    std::fs::write(d.join("bad.toml"), settings).expect("settings");
    let out = tokumei()
        .args(["linkage", "run", "--settings"])
        .arg(d.join("bad.toml"))
        .arg("--left")
        .arg(d.join(left))
        .arg("--right")
        .arg(d.join("b.csv"))
        .arg("--out")
        .arg(d.join("out"))
        .assert()
        .failure()
        .code(1);
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

#[test]
fn missing_column_names_file_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_inputs(d);
    let a = std::fs::read_to_string(d.join("a.csv")).expect("a");
    std::fs::write(d.join("a2.csv"), a.replacen("postcode", "zip", 1)).expect("write");
    let err = run_failing(d, SETTINGS, "a2.csv");
    assert!(err.contains("a2.csv"), "{err}");
    assert!(err.contains("missing column `postcode`"), "{err}");
}

#[test]
fn unknown_column_in_settings_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_inputs(d);
    let bad = SETTINGS.replacen(
        "on = [\"surname\", \"postcode\"]",
        "on = [\"surname\", \"zipcode\"]",
        1,
    );
    let err = run_failing(d, &bad, "a.csv");
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("unknown column `zipcode`"), "{err}");
    assert!(err.contains("blocking[2]"), "{err}");
}

#[test]
fn non_utf8_csv_names_file_line_and_column_not_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_inputs(d);
    let mut bytes = b"rec_id,given_name,surname,date_of_birth,postcode,soc_sec_id\n".to_vec();
    bytes.extend_from_slice(b"a1,james,smith,19800101,2000,1234567\n");
    // 佐藤 in Shift_JIS.
    bytes.extend_from_slice(b"a2,mary,\x8d\xb2\x93\xa1,19800102,2001,1234568\n");
    std::fs::write(d.join("sjis.csv"), &bytes).expect("write");
    let err = run_failing(d, SETTINGS, "sjis.csv");
    assert!(err.contains("sjis.csv"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("column `surname`"), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");

    // Declared as Shift_JIS, the same file is read.
    let sjis = format!("encoding = \"shift_jis\"\n{SETTINGS}");
    std::fs::write(d.join("sjis.toml"), sjis).expect("settings");
    tokumei()
        .args(["linkage", "run", "--settings"])
        .arg(d.join("sjis.toml"))
        .arg("--left")
        .arg(d.join("sjis.csv"))
        .arg("--right")
        .arg(d.join("b.csv"))
        .arg("--out")
        .arg(d.join("out-sjis"))
        .assert()
        .success();
}

#[test]
fn an_engine_this_build_lacks_or_a_bad_address_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_inputs(d);
    std::fs::write(d.join("s.toml"), SETTINGS).expect("settings");
    let mut cases = vec![
        ("spark://x:7077", "ballista://HOST:PORT"),
        ("ballista://x", "port is missing"),
    ];
    if !cfg!(feature = "distributed") {
        cases.push(("ballista://localhost:50050", "--features distributed"));
        cases.push(("datafusion", "--features distributed"));
    }
    for (engine, message) in cases {
        let out = tokumei()
            .args(["linkage", "run", "--settings"])
            .arg(d.join("s.toml"))
            .arg("--left")
            .arg(d.join("a.csv"))
            .arg("--right")
            .arg(d.join("b.csv"))
            .arg("--out")
            .arg(d.join("out"))
            .args(["--engine", engine])
            .assert()
            .failure()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(message), "{engine}: {err}");
        assert!(!d.join("out").exists(), "nothing written for {engine}");
    }
}
