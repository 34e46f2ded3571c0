//! ZIP archives of native files (SS-MIX2 storage, 特定健診 submissions), written in parts so that
//! memory stays bounded whatever the population.
//!
//! A ZIP writer keeps one central-directory record per entry until the archive is finished, so an
//! archive left open for a whole run costs memory in proportion to the population. Two limits bound
//! it:
//!
//! * a part holds at most [`ArchiveLimits::part_entries`] entries and
//!   [`ArchiveLimits::part_bytes`] bytes of entries; the next entry of a full archive goes to a new
//!   part file next to the first, `<stem>-0002.zip`, `<stem>-0003.zip`, … (the first part keeps the
//!   archive's own name, so a region whose archives fit in one part is what it always was);
//! * at most [`ArchiveLimits::open_entries`] entries are pending over all the archives being
//!   written: before that budget is exceeded the open part with the most entries is finished, and
//!   that archive continues in a new part when it next receives a record.
//!
//! Parts are cut between records only (a record's entries, e.g. a whole SS-MIX2 patient folder, are
//! always in one part), so every part is read on its own with the same record counts. Where the
//! parts are cut depends only on the sequence of records, so the output stays deterministic.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::SynthError;

/// Default most entries in one part file.
pub const PART_ENTRIES: u64 = 200_000;

/// Default most entries pending over all archives being written.
pub const OPEN_ENTRIES: u64 = 400_000;

/// Buffer of each open part file.
const PART_BUFFER: usize = 64 * 1024;

/// How large the parts of an archive may grow and how many entries may be pending in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Most entries in one part file.
    pub part_entries: u64,
    /// Most bytes of entries in one part file (half of what a reader accepts of one archive,
    /// [`tokumei_formats::archive::MAX_TOTAL`]).
    pub part_bytes: u64,
    /// Most entries pending (in parts not yet finished) over all archives: what bounds memory.
    pub open_entries: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            part_entries: PART_ENTRIES,
            part_bytes: tokumei_formats::archive::MAX_TOTAL / 2,
            open_entries: OPEN_ENTRIES,
        }
    }
}

impl ArchiveLimits {
    /// Checks that every limit is at least 1.
    pub fn validate(&self) -> Result<(), SynthError> {
        if self.part_entries == 0 || self.part_bytes == 0 || self.open_entries == 0 {
            return Err(SynthError::InvalidArgument(
                "archive part limits must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Path (relative to the region folder) of part `part` (1-based) of the archive `base`:
/// `base` itself for the first part, `<stem>-NNNN.zip` after it (the parts of a table are named
/// alike: [`tokumei_model::table::part_path`]).
pub fn part_path(base: &str, part: u32) -> String {
    tokumei_model::table::part_path(Path::new(base), part)
        .to_string_lossy()
        .into_owned()
}

/// One archive: its open part, if any, and the numbering that goes on across parts.
struct Archive {
    /// Number of the open part, or of the next part to open (1-based).
    part: u32,
    writer: Option<zip::ZipWriter<BufWriter<File>>>,
    /// Entries in the open part.
    entries: u64,
    /// Bytes of entries in the open part.
    bytes: u64,
    /// Last document number given in the archive (over all its parts).
    serial: u64,
}

/// Every archive of a region being written.
pub struct Archives {
    root: PathBuf,
    limits: ArchiveLimits,
    archives: BTreeMap<String, Archive>,
    /// Entries in open parts over all archives.
    pending: u64,
    /// Part files finished.
    finished: u64,
    /// Entries written.
    entries: u64,
}

impl Archives {
    /// Archives under the region folder `root`.
    pub fn new(root: &Path, limits: ArchiveLimits) -> Self {
        Archives {
            root: root.to_path_buf(),
            limits,
            archives: BTreeMap::new(),
            pending: 0,
            finished: 0,
            entries: 0,
        }
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Entries pending in open parts (what the writers hold in memory).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Adds one record's entries to the archive `base` (relative path of its first part). Names
    /// containing `{serial}` get the archive's next document number (6 digits), and so does `link`.
    /// Returns `PART#LINK`: the part the entries went to and the entry (or folder) linked.
    pub fn add(
        &mut self,
        base: &str,
        link: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<String, SynthError> {
        let n = files.len() as u64;
        let bytes: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
        let limits = self.limits;
        let full = self.archives.get(base).is_some_and(|a| {
            a.writer.is_some()
                && a.entries > 0
                && (a.entries + n > limits.part_entries || a.bytes + bytes > limits.part_bytes)
        });
        if full {
            self.finish_part(base)?;
        }
        while self.pending > 0 && self.pending + n > limits.open_entries {
            self.finish_largest()?;
        }
        let archive = self.archives.entry(base.to_string()).or_insert(Archive {
            part: 1,
            writer: None,
            entries: 0,
            bytes: 0,
            serial: 0,
        });
        let rel = part_path(base, archive.part);
        let path = self.root.join(&rel);
        let zip = match &mut archive.writer {
            Some(zip) => zip,
            None => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| SynthError::io(dir, e))?;
                }
                let f = File::create(&path).map_err(|e| SynthError::io(&path, e))?;
                archive
                    .writer
                    .insert(zip::ZipWriter::new(BufWriter::with_capacity(
                        PART_BUFFER,
                        f,
                    )))
            }
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default());
        let mut link = link.to_string();
        for (name, data) in files {
            // Document numbers within the archive, given in order ({serial}, 6 digits).
            let name = if name.contains("{serial}") {
                archive.serial += 1;
                let s = format!("{:06}", archive.serial % 1_000_000);
                link = link.replace("{serial}", &s);
                name.replace("{serial}", &s)
            } else {
                name.clone()
            };
            zip.start_file(name.as_str(), options)
                .map_err(|e| SynthError::io(&path, std::io::Error::other(e)))?;
            zip.write_all(data).map_err(|e| SynthError::io(&path, e))?;
        }
        archive.entries += n;
        archive.bytes += bytes;
        self.pending += n;
        self.entries += n;
        Ok(format!("{rel}#{link}"))
    }

    /// Finishes the open part with the most entries (the first such archive in path order).
    fn finish_largest(&mut self) -> Result<(), SynthError> {
        let mut largest: Option<(&String, u64)> = None;
        for (base, a) in &self.archives {
            if a.writer.is_some() && largest.is_none_or(|(_, n)| a.entries > n) {
                largest = Some((base, a.entries));
            }
        }
        match largest.map(|(base, _)| base.clone()) {
            Some(base) => self.finish_part(&base),
            None => Err(SynthError::Internal(
                "entries pending without an open archive",
            )),
        }
    }

    /// Finishes the open part of `base`; its next entries go to the next part.
    fn finish_part(&mut self, base: &str) -> Result<(), SynthError> {
        let Some(archive) = self.archives.get_mut(base) else {
            return Ok(());
        };
        let Some(zip) = archive.writer.take() else {
            return Ok(());
        };
        let path = self.root.join(part_path(base, archive.part));
        let mut inner = zip
            .finish()
            .map_err(|e| SynthError::io(&path, std::io::Error::other(e)))?;
        inner.flush().map_err(|e| SynthError::io(&path, e))?;
        self.pending -= archive.entries;
        self.finished += 1;
        archive.part += 1;
        archive.entries = 0;
        archive.bytes = 0;
        Ok(())
    }

    /// Finishes every open part; returns the number of part files written.
    pub fn finish(mut self) -> Result<u64, SynthError> {
        let open: Vec<String> = self
            .archives
            .iter()
            .filter(|(_, a)| a.writer.is_some())
            .map(|(base, _)| base.clone())
            .collect();
        for base in open {
            self.finish_part(&base)?;
        }
        Ok(self.finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_part_keeps_the_archive_name() {
        assert_eq!(
            part_path("sources/H01/ssmix2.zip", 1),
            "sources/H01/ssmix2.zip"
        );
        assert_eq!(
            part_path("sources/H01/ssmix2.zip", 2),
            "sources/H01/ssmix2-0002.zip"
        );
        assert_eq!(
            part_path("sources/K01/kenshin/a_b_2022033110_1.zip", 12),
            "sources/K01/kenshin/a_b_2022033110_1-0012.zip"
        );
    }

    fn names(path: &Path) -> Vec<String> {
        let f = File::open(path).expect("part");
        let zip = zip::ZipArchive::new(f).expect("a readable archive");
        zip.file_names().map(str::to_string).collect()
    }

    #[test]
    fn parts_are_cut_between_records_and_pending_entries_stay_within_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = ArchiveLimits {
            part_entries: 5,
            part_bytes: 1 << 20,
            open_entries: 7,
        };
        let mut archives = Archives::new(dir.path(), limits);
        let mut linked = Vec::new();
        for i in 0..30 {
            // Records of two entries, spread over three archives.
            let base = format!("a{}.zip", i % 3);
            let files = vec![
                (format!("r{i}/{{serial}}.txt"), vec![b'x'; 10]),
                (format!("r{i}/b.txt"), vec![b'y'; 10]),
            ];
            linked.push(archives.add(&base, "r{serial}", &files).expect("add"));
            assert!(
                archives.pending() <= limits.open_entries,
                "{}",
                archives.pending()
            );
        }
        assert_eq!(archives.entries(), 60);
        let parts = archives.finish().expect("finish");
        let mut seen = std::collections::BTreeSet::new();
        let mut files = 0;
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let path = entry.expect("entry").path();
            let names = names(&path);
            assert!(!names.is_empty() && names.len() <= 4, "{path:?}: {names:?}");
            // A record's two entries are in the same part.
            assert_eq!(names.len() % 2, 0, "{names:?}");
            for n in names {
                assert!(seen.insert(n.clone()), "{n} twice");
            }
            files += 1;
        }
        assert_eq!(files, parts);
        assert_eq!(seen.len(), 60);
        assert!(parts >= 15, "{parts} parts");
        // Each link names the part its record is in, with the document number given.
        for (i, link) in linked.iter().enumerate() {
            let (part, entry) = link.split_once('#').expect("PART#ENTRY");
            assert!(part.starts_with(&format!("a{}", i % 3)), "{link}");
            let names = names(&dir.path().join(part));
            assert!(
                names.iter().any(|n| n.starts_with(&format!("r{i}/"))),
                "{link}: {names:?}"
            );
            let serial = i / 3 + 1;
            assert_eq!(entry, format!("r{serial:06}"), "{link}");
        }
    }

    #[test]
    fn a_record_larger_than_a_part_is_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = ArchiveLimits {
            part_entries: 2,
            part_bytes: 1 << 20,
            open_entries: 100,
        };
        let mut archives = Archives::new(dir.path(), limits);
        let big: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("f{i}"), vec![1])).collect();
        assert_eq!(archives.add("s.zip", "x", &big).expect("add"), "s.zip#x");
        let one = vec![("g".to_string(), vec![1])];
        assert_eq!(
            archives.add("s.zip", "y", &one).expect("add"),
            "s-0002.zip#y"
        );
        assert_eq!(archives.finish().expect("finish"), 2);
        assert_eq!(names(&dir.path().join("s.zip")).len(), 5);
        assert_eq!(names(&dir.path().join("s-0002.zip")), vec!["g".to_string()]);
    }

    #[test]
    fn limits_of_zero_are_refused() {
        let zero = ArchiveLimits {
            part_entries: 0,
            ..ArchiveLimits::default()
        };
        assert!(zero.validate().is_err());
        assert!(ArchiveLimits::default().validate().is_ok());
    }
}
