//! ZIP archives written in parts. With tiny part limits the archives of a region are split into
//! several part files next to the first (`<stem>-0002.zip`, ...): every entry is in exactly one part,
//! the truth links name the part that holds their record, reading the parts gives the record counts
//! that reading whole archives gives, and the output stays the same for the same seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokumei_model::truth::NativeLink;
use tokumei_synth::archives::ArchiveLimits;
use tokumei_synth::writer::read_table;
use tokumei_synth::{generate, Config, Summary};

const PEOPLE: u64 = 1500;

/// Parts of at most this many entries.
const PART_ENTRIES: u64 = 300;

struct Regions {
    /// Archives in one part each (the default limits).
    whole: PathBuf,
    /// The same people in small parts.
    split: PathBuf,
    whole_summary: Summary,
    split_summary: Summary,
}

fn tiny() -> ArchiveLimits {
    ArchiveLimits {
        part_entries: PART_ENTRIES,
        part_bytes: 1 << 30,
        // Less than the archives hold between them, so parts are also finished to keep the budget.
        open_entries: 1000,
    }
}

fn generate_into(root: &Path, archives: ArchiveLimits) -> Summary {
    let config = Config {
        people: PEOPLE,
        seed: 3,
        out: root.to_path_buf(),
        force: true,
        archives,
        ..Config::default()
    };
    generate(&config, &|_| {}).expect("generate")
}

fn regions() -> &'static Regions {
    static R: OnceLock<Regions> = OnceLock::new();
    R.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth-archive-parts");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove the previous run's regions");
        }
        let whole = dir.join("whole");
        let split = dir.join("split");
        let whole_summary = generate_into(&whole, ArchiveLimits::default());
        let split_summary = generate_into(&split, tiny());
        Regions {
            whole,
            split,
            whole_summary,
            split_summary,
        }
    })
}

type Entries = Vec<(String, Vec<u8>)>;

/// Every ZIP file under `root`, by path relative to `root`, with its entries in archive order.
fn archives(root: &Path) -> BTreeMap<String, Entries> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.join("sources")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("folder") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "zip") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .to_string();
                let mut entries = Vec::new();
                let f = std::fs::File::open(&path).expect("archive");
                tokumei_formats::archive::for_each_entry(f, |name, bytes| {
                    entries.push((name.to_string(), bytes))
                })
                .expect("a readable archive");
                out.insert(rel, entries);
            }
        }
    }
    out
}

/// The archive a part file belongs to, and the part's number: `x-0002.zip` → (`x.zip`, 2).
fn base_of(part: &str) -> (String, u32) {
    if let Some((stem, n)) = part.strip_suffix(".zip").and_then(|s| s.rsplit_once('-')) {
        if n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = n.parse::<u32>() {
                return (format!("{stem}.zip"), n);
            }
        }
    }
    (part.to_string(), 1)
}

/// The SS-MIX2 patient folder of an entry (`a/b/pid/...` → `a/b/pid`); a checkup document is its
/// own record.
fn record_of(entry: &str) -> String {
    entry.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

#[test]
fn the_archives_are_split_into_parts_that_hold_every_entry_once() {
    let r = regions();
    let whole = archives(&r.whole);
    let split = archives(&r.split);
    // The parts of each archive, in part order.
    let mut parts: BTreeMap<String, BTreeMap<u32, &Entries>> = BTreeMap::new();
    for (rel, entries) in &split {
        let (base, n) = base_of(rel);
        parts.entry(base).or_default().insert(n, entries);
    }
    assert_eq!(
        parts.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>(),
        "the same archives"
    );
    let split_ssmix2 = split.keys().filter(|p| p.contains("/ssmix2-")).count();
    let split_kenshin = split
        .keys()
        .filter(|p| p.contains("/kenshin/") && base_of(p).1 > 1)
        .count();
    assert!(
        split_ssmix2 >= 5,
        "{split_ssmix2} later parts of SS-MIX2 storage"
    );
    assert!(
        split_kenshin >= 1,
        "{split_kenshin} later parts of submissions"
    );
    for (base, numbered) in &parts {
        let numbers: Vec<u32> = numbered.keys().copied().collect();
        let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
        assert_eq!(
            numbers, expected,
            "{base}: parts numbered from 1 without gaps"
        );
        // The parts, one after the other, are the whole archive: every entry once, same bytes.
        let joined: Entries = numbered.values().flat_map(|e| e.iter().cloned()).collect();
        assert!(
            joined == whole[base],
            "{base}: the parts hold the archive's entries"
        );
        for (n, entries) in numbered {
            let records: std::collections::BTreeSet<String> =
                entries.iter().map(|(name, _)| record_of(name)).collect();
            assert!(
                entries.len() as u64 <= PART_ENTRIES || records.len() == 1,
                "{base} part {n}: {} entries",
                entries.len()
            );
        }
    }
    // Part files count as native files.
    assert_eq!(
        r.split_summary.native_files - r.whole_summary.native_files,
        (split.len() - whole.len()) as u64
    );
}

#[test]
fn truth_links_name_the_part_that_holds_the_record() {
    let r = regions();
    let split = archives(&r.split);
    let links = |root: &Path| -> BTreeMap<String, NativeLink> {
        read_table::<NativeLink>(&root.join("truth/native_links.parquet"))
            .expect("native links")
            .into_iter()
            .map(|l| (l.record_id.clone(), l))
            .collect()
    };
    let whole_links = links(&r.whole);
    let split_links = links(&r.split);
    assert_eq!(whole_links.len(), split_links.len());
    let mut in_later_parts = 0;
    for (id, l) in &split_links {
        let w = &whole_links[id];
        let Some((part, entry)) = l.path.split_once('#') else {
            assert_eq!(l.path, w.path, "files other than archives are not split");
            continue;
        };
        let (base, n) = base_of(part);
        in_later_parts += usize::from(n > 1);
        assert_eq!(format!("{base}#{entry}"), w.path, "{id}");
        let entries = split.get(part).unwrap_or_else(|| panic!("{part} exists"));
        let prefix = format!("{entry}/");
        assert!(
            entries
                .iter()
                .any(|(name, _)| *name == entry || name.starts_with(&prefix)),
            "{}: the part holds the record",
            l.path
        );
    }
    assert!(
        in_later_parts > 100,
        "{in_later_parts} records in later parts"
    );
}

#[test]
fn the_parts_read_back_to_the_same_records_and_the_rest_is_unchanged() {
    let r = regions();
    // Per provider: records read, units (read or rejected) and entries, over all its archives.
    let counts = |root: &Path| -> BTreeMap<String, (usize, usize, usize)> {
        let mut out: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for rel in archives(root).keys() {
            let provider = rel
                .split('/')
                .nth(1)
                .expect("sources/<provider>/...")
                .to_string();
            let bytes = std::fs::read(root.join(rel)).expect("archive");
            let read = tokumei_formats::any::read_file(rel, &bytes, &provider).expect("readable");
            let c = out.entry(provider).or_default();
            c.0 += read.records.len();
            c.1 += read.units();
            c.2 += read.entries;
        }
        out
    };
    let whole = counts(&r.whole);
    assert!(
        whole.values().map(|c| c.0).sum::<usize>() > 1000,
        "{whole:?}"
    );
    assert_eq!(counts(&r.split), whole);
    // Only the archives, the links to them and the count of native files differ.
    for rel in [
        "region.json",
        "truth/persons.parquet",
        "truth/record_links.parquet",
        "truth/noise.parquet",
        "sources/H01/identities.parquet",
        "sources/H01/encounters.parquet",
        "sources/K01/lab_results.parquet",
    ] {
        let a = std::fs::read(r.whole.join(rel)).expect("whole");
        let b = std::fs::read(r.split.join(rel)).expect("split");
        assert!(a == b, "{rel} is the same");
    }
}

#[test]
fn the_same_seed_gives_the_same_parts() {
    let r = regions();
    let dir = tempfile::tempdir().expect("tempdir");
    let again = dir.path().join("again");
    generate_into(&again, tiny());
    let a = archives(&r.split);
    let b = archives(&again);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (rel, entries) in &a {
        let x = std::fs::read(r.split.join(rel)).expect("part");
        let y = std::fs::read(again.join(rel)).expect("part");
        assert!(x == y, "{rel}: {} entries, same bytes", entries.len());
    }
    let links = "truth/native_links.parquet";
    assert!(std::fs::read(r.split.join(links)).ok() == std::fs::read(again.join(links)).ok());
}
