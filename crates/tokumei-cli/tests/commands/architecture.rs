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

/// The longest a function may be without a reason written above it.
const LONGEST: usize = 150;

/// The marker of a reason, in a comment directly above the function (or its attributes).
const REASON: &str = "Over 150 lines because";

/// A function of a source file: name, first line (1-based) and length in lines.
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

/// A small Rust scanner: skips comments, strings (also raw), char literals and lifetimes, and
/// follows braces to find where each `fn NAME` with a body starts and ends.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Scanner<'_> {
    fn peek(&self, k: usize) -> u8 {
        self.s.get(self.i + k).copied().unwrap_or(0)
    }

    /// Advances by one byte, counting lines.
    fn bump(&mut self) {
        if self.peek(0) == b'\n' {
            self.line += 1;
        }
        self.i += 1;
    }

    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while self.i < self.s.len() {
            if self.peek(0) == b'/' && self.peek(1) == b'*' {
                depth += 1;
                self.i += 2;
            } else if self.peek(0) == b'*' && self.peek(1) == b'/' {
                depth -= 1;
                self.i += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.bump();
            }
        }
    }

    fn skip_string(&mut self) {
        self.i += 1;
        while self.i < self.s.len() && self.peek(0) != b'"' {
            if self.peek(0) == b'\\' {
                self.i += 1;
            }
            self.bump();
        }
        self.i += 1;
    }

    /// `r"…"`, `r#"…"#` (at the `r`; `b` before it already passed).
    fn skip_raw_string(&mut self) {
        self.i += 1;
        let mut hashes = 0;
        while self.peek(0) == b'#' {
            hashes += 1;
            self.i += 1;
        }
        self.i += 1;
        while self.i < self.s.len() {
            if self.peek(0) == b'"' && (1..=hashes).all(|k| self.peek(k) == b'#') {
                self.i += 1 + hashes;
                return;
            }
            self.bump();
        }
    }

    /// A char literal (`'a'`, `'\n'`, `'\u{1F600}'`, multi-byte) or a lifetime (`'a`).
    fn skip_quote(&mut self) {
        if self.peek(1) == b'\\' {
            self.i += 2;
            while self.i < self.s.len() && self.peek(0) != b'\'' {
                self.i += 1;
            }
            self.i += 1;
            return;
        }
        let width = match self.peek(1) {
            b if b < 0x80 => 1,
            b if b >= 0xF0 => 4,
            b if b >= 0xE0 => 3,
            _ => 2,
        };
        self.i += if self.peek(1 + width) == b'\'' {
            2 + width
        } else {
            1
        };
    }

    fn is_ident(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    /// At `fn` followed by a space and a name: the name.
    fn fn_name(&self) -> Option<String> {
        let before = self.i.checked_sub(1).map(|k| self.s[k]);
        if self.peek(0) != b'f' || self.peek(1) != b'n' || !self.peek(2).is_ascii_whitespace() {
            return None;
        }
        if before.is_some_and(Self::is_ident) {
            return None;
        }
        let mut k = self.i + 2;
        while self.s.get(k).is_some_and(u8::is_ascii_whitespace) {
            k += 1;
        }
        let start = k;
        while self.s.get(k).copied().is_some_and(Self::is_ident) {
            k += 1;
        }
        (k > start).then(|| String::from_utf8_lossy(&self.s[start..k]).into_owned())
    }
}

/// Every function with a body in a Rust source text.
fn functions(text: &str) -> Vec<Function> {
    let mut sc = Scanner {
        s: text.as_bytes(),
        i: 0,
        line: 1,
    };
    let (mut braces, mut parens) = (0usize, 0usize);
    let mut pending: Option<(String, usize, usize)> = None;
    let mut open: Vec<(String, usize, usize)> = Vec::new();
    let mut out = Vec::new();
    while sc.i < sc.s.len() {
        let (c, n) = (sc.peek(0), sc.peek(1));
        match c {
            b'/' if n == b'/' => {
                while sc.i < sc.s.len() && sc.peek(0) != b'\n' {
                    sc.i += 1;
                }
            }
            b'/' if n == b'*' => sc.skip_block_comment(),
            b'"' => sc.skip_string(),
            b'r' if (n == b'"' || n == b'#')
                && !sc
                    .i
                    .checked_sub(1)
                    .is_some_and(|k| Scanner::is_ident(sc.s[k])) =>
            {
                sc.skip_raw_string()
            }
            b'\'' => sc.skip_quote(),
            b'(' | b'[' => {
                parens += 1;
                sc.i += 1;
            }
            b')' | b']' => {
                parens = parens.saturating_sub(1);
                sc.i += 1;
            }
            b';' => {
                if pending.as_ref().is_some_and(|p| p.2 == parens) {
                    pending = None;
                }
                sc.i += 1;
            }
            b'{' => {
                if let Some((name, line, _)) = pending.take() {
                    open.push((name, line, braces));
                }
                braces += 1;
                sc.i += 1;
            }
            b'}' => {
                braces = braces.saturating_sub(1);
                if open.last().is_some_and(|o| o.2 == braces) {
                    if let Some((name, line, _)) = open.pop() {
                        out.push(Function {
                            name,
                            line,
                            lines: sc.line - line + 1,
                        });
                    }
                }
                sc.i += 1;
            }
            _ => {
                if let Some(name) = sc.fn_name() {
                    pending = Some((name, sc.line, parens));
                    sc.i += 2;
                } else {
                    sc.bump();
                }
            }
        }
    }
    out
}

/// Whether the comment or attribute lines directly above line `line` (1-based) give a reason.
fn has_reason(text: &str, line: usize) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines[..line.saturating_sub(1)]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//") || l.starts_with("#["))
        .any(|l| l.contains(REASON))
}

/// Functions over the limit with no reason above them: `path:line name (N lines)`.
fn too_long(path: &Path, text: &str) -> Vec<String> {
    functions(text)
        .into_iter()
        .filter(|f| f.lines > LONGEST && !has_reason(text, f.line))
        .map(|f| {
            format!(
                "{}:{} {} ({} lines)",
                path.display(),
                f.line,
                f.name,
                f.lines
            )
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target") {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_function_is_over_150_lines_without_a_reason_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    assert!(files.len() > 50, "the workspace's sources are found");
    let mut long = Vec::new();
    let mut counted = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("source");
        counted += functions(&text).len();
        long.extend(too_long(f.strip_prefix(&root).unwrap_or(f), &text));
    }
    assert!(
        counted > 1000,
        "the scanner finds the workspace's functions"
    );
    assert!(
        long.is_empty(),
        "functions over {LONGEST} lines with no `// {REASON} …` above them:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_scanner_measures_functions_and_reads_reasons() {
    let body = "    let x = 1;\n".repeat(LONGEST);
    let long = format!("fn long() {{\n{body}}}\n");
    let tricky = "fn short(a: [u8; 2]) -> &'static str {\n    let _c = '}';\n    let _s = \"}\";\n    \
                  let _r = r#\"}\"#;\n    // }\n    /* } */\n    \"x\"\n}\ntrait T {\n    fn decl(&self);\n}\n";
    let text = format!("{tricky}{long}");
    let found = functions(&text);
    assert_eq!(
        found,
        vec![
            Function {
                name: "short".into(),
                line: 1,
                lines: 8
            },
            Function {
                name: "long".into(),
                line: 12,
                lines: LONGEST + 2
            },
        ]
    );
    assert_eq!(too_long(Path::new("x.rs"), &text).len(), 1);
    let reasoned =
        format!("{tricky}// {REASON} one table row per arm.\n#[allow(dead_code)]\n{long}");
    assert!(too_long(Path::new("x.rs"), &reasoned).is_empty());
}
