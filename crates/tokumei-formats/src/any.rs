//! One entry point for "read whatever this file is": a plain source file in any supported format, an
//! SS-MIX2 storage archive (read patient by patient), or a ZIP archive of source files such as a
//! 特定健診 submission (read entry by entry in each entry's own format).
//!
//! Inspection, packaging (record counts of the manifest) and receipt all read files through
//! [`read_file`], so the count a provider puts in its manifest is the count the operator reads back.

use tokumei_model::events::SourceRecord;

use crate::{archive, read, sniff, ssmix2, Format, Issue, Rejected, Severity};

/// What kind of file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A plain file in one format.
    File(Format),
    /// An SS-MIX2 standardized storage as a ZIP archive (records are patients).
    Ssmix2Archive,
    /// A ZIP archive of source files (records are those of its entries).
    Archive,
}

impl Kind {
    /// Human-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::File(f) => f.name(),
            Kind::Ssmix2Archive => "SS-MIX2 storage (ZIP archive)",
            Kind::Archive => "ZIP archive of source files",
        }
    }

    /// Short code (manifests).
    pub fn code(&self) -> &'static str {
        match self {
            Kind::File(Format::UkeMedical) => "uke",
            Kind::File(Format::DeathCsv) => "death-csv",
            Kind::File(Format::Ssmix2) => "ssmix2-message",
            Kind::File(Format::Kenshin) => "kenshin-cda",
            Kind::File(Format::Fhir) => "fhir",
            Kind::Ssmix2Archive => "ssmix2-zip",
            Kind::Archive => "zip",
        }
    }
}

/// A record that could not be read, with the archive entry it is in (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedIn {
    /// Archive entry (`None` for a plain file).
    pub entry: Option<String>,
    /// Lines and reason; lines 0 for a whole file or entry.
    pub rejected: Rejected,
}

/// What was read from one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRead {
    /// What the file is.
    pub kind: Kind,
    /// Archive entries read (0 for a plain file).
    pub entries: usize,
    /// Records read.
    pub records: Vec<SourceRecord>,
    /// Records (or messages, entries, the whole file) that could not be read.
    pub rejected: Vec<RejectedIn>,
    /// Every warning and error, with its archive entry.
    pub issues: Vec<(Option<String>, Issue)>,
    /// Encoding detected (plain files).
    pub encoding: Option<crate::encoding::Detected>,
    /// Lines by record type (plain files).
    pub line_counts: std::collections::BTreeMap<String, usize>,
}

impl FileRead {
    fn new(kind: Kind) -> FileRead {
        FileRead {
            kind,
            entries: 0,
            records: Vec::new(),
            rejected: Vec::new(),
            issues: Vec::new(),
            encoding: None,
            line_counts: Default::default(),
        }
    }

    /// Units the file holds: records read plus units rejected (the count a manifest states).
    pub fn units(&self) -> usize {
        self.records.len() + self.rejected.len()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.issues
            .iter()
            .filter(|(_, i)| i.severity == Severity::Warning)
            .count()
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.issues
            .iter()
            .filter(|(_, i)| i.severity == Severity::Error)
            .count()
    }

    fn reject_whole(&mut self, entry: Option<String>, reason: String) {
        self.issues.push((
            entry.clone(),
            Issue {
                severity: Severity::Error,
                position: crate::Position {
                    line: 0,
                    field: None,
                },
                message: reason.clone(),
            },
        ));
        self.rejected.push(RejectedIn {
            entry,
            rejected: Rejected {
                first_line: 0,
                last_line: 0,
                reason,
            },
        });
    }
}

/// Reads one file of a source extract. `name` is its path (only the last component and whether it
/// names SS-MIX2 storage, `ssmix2` in the name of an archive, matter). `None` when the file is in no supported format.
pub fn read_file(name: &str, bytes: &[u8], provider_id: &str) -> Option<FileRead> {
    let file_name = name.rsplit('/').next().unwrap_or(name);
    if archive::is_zip(bytes) {
        return Some(read_archive(file_name, bytes, provider_id));
    }
    let format = sniff(file_name, &bytes[..bytes.len().min(64)])?;
    let r = read(format, bytes, provider_id);
    let mut out = FileRead::new(Kind::File(format));
    out.encoding = r.encoding;
    out.line_counts = r.line_counts;
    out.issues = r.issues.into_iter().map(|i| (None, i)).collect();
    out.rejected = r
        .rejected
        .into_iter()
        .map(|rejected| RejectedIn {
            entry: None,
            rejected,
        })
        .collect();
    out.records = r.records.into_iter().map(|p| p.record).collect();
    // A file with errors but nothing read and nothing rejected (an unreadable encoding, a document
    // that is not one) is rejected whole.
    if out.records.is_empty() && out.rejected.is_empty() {
        if let Some((_, first)) = out
            .issues
            .iter()
            .find(|(_, i)| i.severity == Severity::Error)
        {
            let reason = first.message.clone();
            out.rejected.push(RejectedIn {
                entry: None,
                rejected: Rejected {
                    first_line: 0,
                    last_line: 0,
                    reason,
                },
            });
        }
    }
    Some(out)
}

fn read_archive(name: &str, bytes: &[u8], provider_id: &str) -> FileRead {
    let cursor = std::io::Cursor::new(bytes);
    if name.to_ascii_lowercase().contains("ssmix2") {
        let mut out = FileRead::new(Kind::Ssmix2Archive);
        match ssmix2::read_zip(cursor, provider_id) {
            Ok(reports) => {
                for p in reports {
                    for (path, fr) in p.files {
                        out.entries += 1;
                        out.rejected
                            .extend(fr.rejected.into_iter().map(|rejected| RejectedIn {
                                entry: Some(path.clone()),
                                rejected,
                            }));
                        out.issues
                            .extend(fr.issues.into_iter().map(|i| (Some(path.clone()), i)));
                    }
                    if let Some(rec) = p.record {
                        out.records.push(rec);
                    }
                }
            }
            Err(e) => out.reject_whole(None, e.to_string()),
        }
        return out;
    }
    let mut out = FileRead::new(Kind::Archive);
    let result = archive::for_each_entry(cursor, |entry, data| {
        out.entries += 1;
        let f = entry.rsplit('/').next().unwrap_or(entry);
        let Some(format) = sniff(f, &data[..data.len().min(64)]) else {
            out.reject_whole(Some(entry.to_string()), "not a supported format".into());
            return;
        };
        let r = read(format, &data, provider_id);
        let before = out.rejected.len();
        out.rejected
            .extend(r.rejected.into_iter().map(|rejected| RejectedIn {
                entry: Some(entry.to_string()),
                rejected,
            }));
        let errors = r
            .issues
            .iter()
            .find(|i| i.severity == Severity::Error)
            .map(|i| i.message.clone());
        out.issues
            .extend(r.issues.into_iter().map(|i| (Some(entry.to_string()), i)));
        if r.records.is_empty() && out.rejected.len() == before {
            if let Some(reason) = errors {
                out.rejected.push(RejectedIn {
                    entry: Some(entry.to_string()),
                    rejected: Rejected {
                        first_line: 0,
                        last_line: 0,
                        reason,
                    },
                });
            }
        }
        out.records.extend(r.records.into_iter().map(|p| p.record));
    });
    if let Err(e) = result {
        out.reject_whole(None, e.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_plain_file_is_none() {
        assert!(read_file("notes.txt", b"hello", "P").is_none());
    }

    #[test]
    fn broken_archive_is_rejected_whole() {
        // A ZIP local-file signature followed by garbage.
        let bytes = b"PK\x03\x04garbage that is not a zip archive";
        let r = read_file("x/ssmix2.zip", bytes, "P").expect("an archive");
        assert_eq!(r.kind, Kind::Ssmix2Archive);
        assert_eq!(r.rejected.len(), 1);
        assert_eq!(r.units(), 1);
        let r = read_file("x/other.zip", bytes, "P").expect("an archive");
        assert_eq!(r.kind, Kind::Archive);
        assert_eq!(r.rejected.len(), 1);
    }

    #[test]
    fn undecodable_file_is_rejected_whole() {
        // A death CSV header, then bytes that are neither UTF-8 nor Shift_JIS.
        let mut bytes = b"name_kanji,name_kana\n".to_vec();
        bytes.extend([0xff, 0xfe, 0xfd, 0x80, 0x81, b'\n']);
        let r = read_file("deaths.csv", &bytes, "P").expect("a death CSV");
        assert!(r.records.is_empty());
        assert!(!r.rejected.is_empty(), "{r:?}");
    }
}
