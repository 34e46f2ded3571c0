//! The engine on in-memory tables.

use tokumei_linkage::{link, Dataset, LinkType, LinkageError, Settings};

fn table(name: &str, header: &[&str], rows: &[&[&str]]) -> Dataset {
    let mut ds = Dataset::new(name, header);
    for r in rows {
        let values: Vec<Option<&str>> = r.iter().map(|v| (!v.is_empty()).then_some(*v)).collect();
        ds.push_row(&values).expect("row");
    }
    ds
}

const PEOPLE: &str = r#"
link_type = "dedupe"
id_column = "id"

[columns]
name = "kana"
birth = "date"
sex = "sex"
card = "digits"

[thresholds]
match = 0.5
review_lower = 0.01

[training]
u_sample_pairs = 20000
prior = 0.001

[clustering]
conflict_if_all_differ = ["birth", "sex"]

[[deterministic]]
name = "card + birth"
columns = ["card", "birth"]

[[blocking]]
on = ["name"]

[[blocking]]
on = ["card"]

[[comparisons]]
name = "name"
columns = ["name"]
levels = [{ kind = "null" }, { kind = "exact", m = 0.9, u = 0.001 }, { kind = "else", m = 0.1, u = 0.999 }]

[[comparisons]]
name = "birth"
columns = ["birth"]
levels = [{ kind = "null" }, { kind = "exact", m = 0.9, u = 0.001 }, { kind = "else", m = 0.1, u = 0.999 }]

[[comparisons]]
name = "sex"
columns = ["sex"]
levels = [{ kind = "null" }, { kind = "exact", m = 0.98, u = 0.5 }, { kind = "else", m = 0.02, u = 0.5 }]

[[comparisons]]
name = "card"
columns = ["card"]
levels = [{ kind = "null" }, { kind = "exact", m = 0.9, u = 0.0001 }, { kind = "else", m = 0.1, u = 0.9999 }]
"#;

fn filler(n: usize) -> Vec<[String; 5]> {
    (0..n)
        .map(|i| {
            [
                format!("f{i}"),
                format!("ナマエ{i}"),
                format!("19{:02}-0{}-1{}", i % 90 + 10, i % 9 + 1, i % 10),
                (if i % 2 == 0 { "M" } else { "F" }).to_string(),
                format!("{}", 5_000_000 + i),
            ]
        })
        .collect()
}

fn people(extra: &[[&str; 5]]) -> Dataset {
    let header = ["id", "name", "birth", "sex", "card"];
    let fill = filler(200);
    let mut rows: Vec<Vec<&str>> = fill
        .iter()
        .map(|r| r.iter().map(|s| s.as_str()).collect())
        .collect();
    rows.extend(extra.iter().map(|r| r.to_vec()));
    let refs: Vec<&[&str]> = rows.iter().map(|r| r.as_slice()).collect();
    table("people", &header, &refs)
}

fn cluster_of(out: &tokumei_linkage::LinkOutput, id: &str) -> u32 {
    let row = out.left_ids.iter().position(|x| x == id).expect("id");
    out.left_clusters[row]
}

#[test]
fn dedupe_joins_spelling_variants_and_keeps_conflicts_apart() {
    let settings = Settings::parse(PEOPLE, "<test>").expect("settings");
    assert_eq!(settings.link_type, LinkType::Dedupe);
    let ds = people(&[
        // One person, written three ways (hiragana, half-width katakana, long vowel).
        ["p1", "さとう はなこ", "昭和50年1月2日", "女", "1234567"],
        ["p2", "ｻﾄｳﾊﾅｺ", "1975-01-02", "F", ""],
        ["p3", "サトーハナコ", "S50.1.2", "2", "1234567"],
        // Same name, other birth date and sex: a different person who must not be chained in.
        ["q1", "サトウハナコ", "1990-05-05", "M", ""],
    ]);
    let out = tokumei_linkage::link_seeded(&settings, &ds, None, Some(1)).expect("link");
    assert_eq!(cluster_of(&out, "p1"), cluster_of(&out, "p2"));
    assert_eq!(cluster_of(&out, "p1"), cluster_of(&out, "p3"));
    assert_ne!(cluster_of(&out, "p1"), cluster_of(&out, "q1"));
    // p1 and p3 share card and birth date: a deterministic match.
    let p1 = out.left_ids.iter().position(|x| x == "p1").expect("p1") as u32;
    let p3 = out.left_ids.iter().position(|x| x == "p3").expect("p3") as u32;
    let pair = out
        .pairs
        .iter()
        .find(|p| p.left_row == p1 && p.right_row == p3)
        .expect("pair p1-p3");
    assert!(pair.deterministic);
    assert_eq!(pair.probability, 1.0);
    // Filler records stay alone.
    assert_ne!(cluster_of(&out, "f1"), cluster_of(&out, "f2"));
}

#[test]
fn identical_records_are_one_node_and_their_pairs_are_written() {
    let settings = Settings::parse(PEOPLE, "<test>").expect("settings");
    let ds = people(&[
        ["d1", "ヤマダタロウ", "1960-03-04", "M", "7654321"],
        ["d2", "ヤマダタロウ", "1960-03-04", "M", "7654321"],
        ["d3", "ヤマダタロウ", "1960-03-04", "M", "7654321"],
    ]);
    let out = link(&settings, &ds, None).expect("link");
    assert_eq!(out.nodes, vec![ds.len() - 2]);
    assert_eq!(cluster_of(&out, "d1"), cluster_of(&out, "d3"));
    let rows: Vec<u32> = ["d1", "d2", "d3"]
        .iter()
        .map(|id| out.left_ids.iter().position(|x| x == id).expect("id") as u32)
        .collect();
    let written = out
        .pairs
        .iter()
        .filter(|p| rows.contains(&p.left_row) && rows.contains(&p.right_row))
        .count();
    assert_eq!(written, 3);
}

/// Records that carry only a birth date and a sex (claims without names) are not collapsed into one
/// node: three different people born the same day are three persons unless the model joins them.
#[test]
fn records_agreeing_on_the_few_values_they_carry_are_not_collapsed() {
    let settings = Settings::parse(PEOPLE, "<test>").expect("settings");
    let ds = people(&[
        ["b1", "", "1960-03-04", "M", ""],
        ["b2", "", "1960-03-04", "M", ""],
        ["b3", "", "1960-03-04", "M", ""],
    ]);
    let out = link(&settings, &ds, None).expect("link");
    assert_eq!(out.nodes, vec![ds.len()], "no row collapsed");
    assert_ne!(cluster_of(&out, "b1"), cluster_of(&out, "b2"));
    assert_ne!(cluster_of(&out, "b2"), cluster_of(&out, "b3"));
}

#[test]
fn giant_blocks_are_skipped_and_reported() {
    let text = PEOPLE.replace(
        "[[comparisons]]\nname = \"name\"",
        "[limits]\nmax_block_pairs = 10\n\n[[comparisons]]\nname = \"name\"",
    );
    let settings = Settings::parse(&text, "<test>").expect("settings");
    let ds = people(
        &[["g", "スズキ", "1950-01-01", "M", ""]; 8]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut r = *r;
                r[0] = ["g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"][i];
                r[2] = [
                    "1950-01-01",
                    "1951-01-01",
                    "1952-01-01",
                    "1953-01-01",
                    "1954-01-01",
                    "1955-01-01",
                    "1956-01-01",
                    "1957-01-01",
                ][i];
                r
            })
            .collect::<Vec<_>>(),
    );
    let out = link(&settings, &ds, None).expect("link");
    let name_rule = out
        .blocking
        .iter()
        .find(|r| r.name.contains("name"))
        .expect("name rule");
    assert_eq!(name_rule.skipped_blocks, 1);
    assert_eq!(name_rule.skipped_pairs, 28);
    assert_eq!(name_rule.largest_skipped_block, 8);
}

#[test]
fn link_mode_works_on_in_memory_tables() {
    let text = PEOPLE.replace("link_type = \"dedupe\"", "link_type = \"link\"");
    let settings = Settings::parse(&text, "<test>").expect("settings");
    let left = people(&[["x", "タナカイチロウ", "1970-07-07", "M", "1111111"]]);
    let right = table(
        "right",
        &["id", "name", "birth", "sex", "card"],
        &[
            &["r1", "たなか いちろう", "1970-07-07", "男", ""],
            &["r2", "ナカタジロウ", "1980-01-01", "M", ""],
        ],
    );
    let out = link(&settings, &left, Some(&right)).expect("link");
    let x = left.len() - 1;
    assert_eq!(out.left_clusters[x], out.right_clusters[0]);
    assert_ne!(out.left_clusters[x], out.right_clusters[1]);
    // Dedupe settings with two tables, and link settings with one, are refused.
    assert!(matches!(
        link(&settings, &left, None),
        Err(LinkageError::Input { .. })
    ));
}

#[test]
fn settings_errors_are_typed() {
    let unknown_col = PEOPLE.replace("on = [\"card\"]", "on = [\"cardd\"]");
    match Settings::parse(&unknown_col, "s.toml") {
        Err(LinkageError::UnknownColumn {
            file,
            column,
            place,
        }) => {
            assert_eq!(file, "s.toml");
            assert_eq!(column, "cardd");
            assert_eq!(place, "blocking[1]");
        }
        other => panic!("expected UnknownColumn, got {other:?}"),
    }
    let bad_norm = PEOPLE.replace("sex = \"sex\"", "sex = \"gender\"");
    assert!(matches!(
        Settings::parse(&bad_norm, "s.toml"),
        Err(LinkageError::Settings { .. })
    ));
    let bad_kind = PEOPLE.replacen(
        "{ kind = \"exact\", m = 0.9",
        "{ kind = \"fuzzy\", m = 0.9",
        1,
    );
    assert!(matches!(
        Settings::parse(&bad_kind, "s.toml"),
        Err(LinkageError::Settings { .. })
    ));
    let missing = table("t.csv", &["id", "name"], &[&["1", "a"]]);
    let settings = Settings::parse(PEOPLE, "s.toml").expect("settings");
    match link(&settings, &missing, None) {
        Err(LinkageError::MissingColumn { file, column }) => {
            assert_eq!(file, "t.csv");
            assert!(["birth", "card", "sex"].contains(&column.as_str()));
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
}

#[test]
fn shipped_settings_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../settings/linkage");
    for f in [
        "febrl.toml",
        "febrl_dedupe.toml",
        "febrl_scale.toml",
        "febrl_10m.toml",
    ] {
        Settings::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn cannot_link_pairs_stay_apart_directly_and_through_others() {
    let settings = Settings::parse(PEOPLE, "<test>").expect("settings");
    let ds = people(&[
        ["p1", "さとう はなこ", "昭和50年1月2日", "女", "1234567"],
        ["p2", "ｻﾄｳﾊﾅｺ", "1975-01-02", "F", ""],
        // The same record as p1 once normalized: one node with it.
        ["p3", "サトーハナコ", "S50.1.2", "2", "1234567"],
        // Like both, without sex or card.
        ["p4", "サトウ ハナコ", "1975-01-02", "", ""],
    ]);
    let row = |id: &str| -> u32 {
        (0..ds.len())
            .find(|&r| ds.require("id").ok().and_then(|c| c.get(r)) == Some(id))
            .expect("row") as u32
    };
    // Unconstrained, the four are one person.
    let free = tokumei_linkage::link_seeded(&settings, &ds, None, Some(1)).expect("link");
    for id in ["p2", "p3", "p4"] {
        assert_eq!(cluster_of(&free, "p1"), cluster_of(&free, id), "{id}");
    }
    // A clerk rejected p1–p2: they end apart, p3 stays with p1, and p4 (like both) joins one side only.
    let out =
        tokumei_linkage::link_constrained(&settings, &ds, None, Some(1), &[(row("p1"), row("p2"))])
            .expect("link");
    assert_ne!(cluster_of(&out, "p1"), cluster_of(&out, "p2"));
    assert_eq!(cluster_of(&out, "p1"), cluster_of(&out, "p3"));
    let p4 = cluster_of(&out, "p4");
    assert!(p4 == cluster_of(&out, "p1") || p4 == cluster_of(&out, "p2"));
}
