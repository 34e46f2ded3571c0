//! The code map enforces itself: every dependency edge between workspace crates, as `cargo metadata`
//! reports it, must be one ARCHITECTURE.md allows (`Imports:`, and `Tests also import:` for
//! dev-dependencies), and four rules hold whatever the map says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// A crate's allowed imports from the map.
#[derive(Debug, Default)]
struct Allowed {
    imports: BTreeSet<String>,
    tests: BTreeSet<String>,
    everything: bool,
}

fn crate_names(line: &str) -> BTreeSet<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| n.starts_with("tokumei-"))
        .map(str::to_string)
        .collect()
}

/// The map of ARCHITECTURE.md: `### \`crate\`` headings with their `Imports:` lines (which may run
/// onto the next line).
fn read_map(text: &str) -> BTreeMap<String, Allowed> {
    let mut map: BTreeMap<String, Allowed> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut field: Option<&str> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            current = crate_names(h).into_iter().next();
            if let Some(c) = &current {
                map.entry(c.clone()).or_default();
            }
            field = None;
            continue;
        }
        let Some(c) = &current else { continue };
        let entry = map.entry(c.clone()).or_default();
        if let Some(rest) = line.strip_prefix("Imports:") {
            entry.everything = rest.contains("every crate above");
            entry.imports.extend(crate_names(rest));
            field = Some("imports");
        } else if let Some(rest) = line.strip_prefix("Tests also import:") {
            entry.tests.extend(crate_names(rest));
            field = Some("tests");
        } else if line.contains(':') || line.is_empty() || line.starts_with('#') {
            field = None;
        } else if field == Some("imports") {
            entry.imports.extend(crate_names(line));
        } else if field == Some("tests") {
            entry.tests.extend(crate_names(line));
        }
    }
    map
}

/// (crate, dependency, is a dev-dependency) for every edge between workspace crates.
fn edges(root: &Path) -> Vec<(String, String, bool)> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let mut edges = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        for d in p["dependencies"].as_array().expect("dependencies") {
            let dep = d["name"].as_str().unwrap_or_default();
            if dep.starts_with("tokumei-") {
                let dev = d["kind"].as_str() == Some("dev");
                edges.push((name.clone(), dep.to_string(), dev));
            }
        }
    }
    edges
}

/// Why an edge is not allowed, if it is not.
fn refusal(
    map: &BTreeMap<String, Allowed>,
    from: &str,
    to: &str,
    dev: bool,
) -> Option<&'static str> {
    const ENGINES: [&str; 2] = ["tokumei-linkage", "tokumei-anonymize"];
    if to == "tokumei-cli" {
        return Some("nothing imports the CLI");
    }
    if to == "tokumei-demo" && from != "tokumei-cli" {
        return Some("only the CLI imports the demo");
    }
    if ENGINES.contains(&from) && to == "tokumei-vault" {
        return Some("engines never import the vault");
    }
    if from == "tokumei-vault" && ENGINES.contains(&to) {
        return Some("the vault never imports an engine");
    }
    let Some(allowed) = map.get(from) else {
        return Some("the crate is not in the map");
    };
    let listed =
        allowed.everything || allowed.imports.contains(to) || (dev && allowed.tests.contains(to));
    (!listed).then_some("the map does not list this edge")
}

#[test]
fn every_dependency_edge_is_one_the_map_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let map = read_map(&text);
    let edges = edges(&root);
    assert!(
        edges.len() > 20,
        "cargo metadata lists the workspace's edges"
    );
    let bad: Vec<String> = edges
        .iter()
        .filter_map(|(from, to, dev)| {
            refusal(&map, from, to, *dev).map(|why| format!("{from} → {to}: {why}"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "edges the code map does not allow:\n{}",
        bad.join("\n")
    );
    let crates: BTreeSet<&String> = edges.iter().map(|(f, _, _)| f).collect();
    for c in crates {
        assert!(
            map.contains_key(c.as_str()),
            "{c} has no section in ARCHITECTURE.md"
        );
    }
}

#[test]
fn the_rules_refuse_the_edges_they_name() {
    let map = read_map(
        "### `tokumei-vault`\nImports: `tokumei-linkage`, `tokumei-model`\n\n\
         ### `tokumei-linkage`\nImports: `tokumei-vault`\n\n### `tokumei-x`\nImports: `tokumei-cli`\n",
    );
    assert!(refusal(&map, "tokumei-vault", "tokumei-model", false).is_none());
    assert!(refusal(&map, "tokumei-vault", "tokumei-linkage", false).is_some());
    assert!(refusal(&map, "tokumei-linkage", "tokumei-vault", false).is_some());
    assert!(refusal(&map, "tokumei-x", "tokumei-cli", false).is_some());
    assert!(refusal(&map, "tokumei-vault", "tokumei-audit", false).is_some());
    assert!(refusal(&map, "tokumei-y", "tokumei-model", false).is_some());
    let map = read_map(
        "### `tokumei-cli`\nImports: every crate above.\n\n\
         ### `tokumei-release`\nImports: `tokumei-demo`\n",
    );
    assert!(refusal(&map, "tokumei-cli", "tokumei-demo", false).is_none());
    assert!(refusal(&map, "tokumei-release", "tokumei-demo", false).is_some());
}

#[test]
fn the_map_reads_continued_import_lines() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ARCHITECTURE.md"),
    )
    .expect("ARCHITECTURE.md");
    let map = read_map(&text);
    let release = map.get("tokumei-release").expect("release in the map");
    assert!(release.imports.contains("tokumei-japan"), "{release:?}");
    assert!(map.get("tokumei-cli").is_some_and(|c| c.everything));
    let demo = map.get("tokumei-demo").expect("demo in the map");
    assert!(
        demo.imports.contains("tokumei-release") && demo.imports.contains("tokumei-fs"),
        "{demo:?}"
    );
    assert!(map
        .get("tokumei-linkage")
        .is_some_and(|c| c.tests.contains("tokumei-synth")));
}
