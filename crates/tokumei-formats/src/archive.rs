//! ZIP archives of source files: 特定健診 submissions are ZIP archives by specification (送付用ファイル
//! アーカイブ仕様), and SS-MIX2 storage extracts travel as one archive of the storage tree.
//!
//! Reading is bounded, whatever the headers claim: an entry larger than [`MAX_ENTRY`] bytes, an
//! entry that expands more than [`MAX_RATIO`] times its compressed size (past [`RATIO_FLOOR`]),
//! an archive whose entries add up to more than [`MAX_TOTAL`] bytes and an archive with more than
//! [`MAX_ENTRIES`] entries are refused as they are read, so a crafted archive (a ZIP bomb) cannot
//! exhaust memory: what an archive can cost is at most [`MAX_RATIO`] times its own size.

use std::io::Read;

/// Largest entry read (64 MiB).
pub const MAX_ENTRY: u64 = 64 << 20;
/// Most entries read from one archive.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Largest sum of the entries of one archive (1 GiB).
pub const MAX_TOTAL: u64 = 1 << 30;
/// Largest expansion of an entry over its compressed size (text of the source formats deflates
/// about 5–30 times; zeros or one repeated byte about 1000 times).
pub const MAX_RATIO: u64 = 100;
/// Entries up to this size are not held to [`MAX_RATIO`] (1 MiB).
pub const RATIO_FLOOR: u64 = 1 << 20;

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a ZIP archive, or a damaged one.
    #[error("not a readable ZIP archive: {0}")]
    Zip(String),
    /// An entry or the archive exceeds a limit.
    #[error("archive entry {index} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Entry index.
        index: usize,
        /// Limit.
        limit: u64,
    },
    /// Too many entries.
    #[error("archive has more than {0} entries")]
    TooManyEntries(usize),
    /// An entry expands far more than text does (a ZIP bomb).
    #[error("archive entry {index} expands more than {MAX_RATIO} times its compressed size")]
    Ratio {
        /// Entry index.
        index: usize,
    },
    /// The entries add up to more than the archive limit.
    #[error("the archive's entries add up to more than {MAX_TOTAL} bytes")]
    TotalTooLarge,
}

/// Calls `f(name, bytes)` for every file entry of a ZIP archive, in archive order; directories are
/// skipped. Returns the number of files.
pub fn for_each_entry<R, F>(reader: R, f: F) -> Result<usize, ArchiveError>
where
    R: std::io::Read + std::io::Seek,
    F: FnMut(&str, Vec<u8>),
{
    for_each_entry_within(reader, MAX_TOTAL, f)
}

fn for_each_entry_within<R, F>(reader: R, max_total: u64, mut f: F) -> Result<usize, ArchiveError>
where
    R: std::io::Read + std::io::Seek,
    F: FnMut(&str, Vec<u8>),
{
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| ArchiveError::Zip(e.to_string()))?;
    if zip.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries(MAX_ENTRIES));
    }
    let mut n = 0;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| ArchiveError::Zip(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().replace('\\', "/");
        // The compressed size bounds what the entry's reader takes from the archive, so the ratio
        // limit holds however the sizes in the headers lie.
        let by_ratio = entry
            .compressed_size()
            .saturating_mul(MAX_RATIO)
            .max(RATIO_FLOOR);
        let limit = MAX_ENTRY.min(by_ratio).min(max_total - total);
        let mut bytes = Vec::with_capacity(entry.size().min(limit).min(1 << 20) as usize);
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ArchiveError::Zip(e.to_string()))?;
        if bytes.len() as u64 > limit {
            return Err(if limit == MAX_ENTRY {
                ArchiveError::TooLarge {
                    index: i,
                    limit: MAX_ENTRY,
                }
            } else if limit == by_ratio {
                ArchiveError::Ratio { index: i }
            } else {
                ArchiveError::TotalTooLarge
            });
        }
        total += bytes.len() as u64;
        f(&name, bytes);
        n += 1;
    }
    Ok(n)
}

/// Whether bytes start like a ZIP archive.
pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            w.start_file(*name, opts).expect("entry");
            w.write_all(bytes).expect("write");
        }
        w.finish().expect("finish");
        out.into_inner()
    }

    #[test]
    fn a_zip_bomb_is_refused_at_its_first_entry() {
        // 16 entries of 63 MiB of zeros (about 1 GiB) in an archive of about 1 MB.
        let zeros = vec![0u8; 63 << 20];
        let names: Vec<String> = (0..16).map(|i| format!("{i}.hl7")).collect();
        let entries: Vec<(&str, Vec<u8>)> =
            names.iter().map(|n| (n.as_str(), zeros.clone())).collect();
        drop(zeros);
        let bomb = zip_of(&entries);
        drop(entries);
        assert!(bomb.len() < 2 << 20, "{}", bomb.len());
        let mut seen = 0;
        let r = for_each_entry(std::io::Cursor::new(&bomb), |_, _| seen += 1);
        assert!(matches!(r, Err(ArchiveError::Ratio { index: 0 })), "{r:?}");
        assert_eq!(seen, 0);
        // 63 MiB of commas as a claims file.
        let commas = zip_of(&[("RECEIPTC.UKE", vec![b','; 63 << 20])]);
        let r = for_each_entry(std::io::Cursor::new(&commas), |_, _| {});
        assert!(matches!(r, Err(ArchiveError::Ratio { .. })), "{r:?}");
    }

    #[test]
    fn text_passes_and_the_total_is_bounded() {
        // Text that compresses like real messages (varied digits) is read whole.
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("OBX|{i}|NM|{}^x|{}\r", i * 7919 % 10007, i % 97).into_bytes())
            .collect();
        let archive = zip_of(&[("a.hl7", text.clone()), ("b.hl7", text.clone())]);
        let mut got = Vec::new();
        for_each_entry(std::io::Cursor::new(&archive), |n, b| {
            got.push((n.to_string(), b))
        })
        .expect("read");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, text);
        // Past the archive's total, the read stops with an error.
        let r = for_each_entry_within(
            std::io::Cursor::new(&archive),
            text.len() as u64 + 10,
            |_, _| {},
        );
        assert!(matches!(r, Err(ArchiveError::TotalTooLarge)), "{r:?}");
    }
}
