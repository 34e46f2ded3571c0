//! ZIP archives of source files: 特定健診 submissions are ZIP archives by specification (送付用ファイル
//! アーカイブ仕様), and SS-MIX2 storage extracts travel as one archive of the storage tree.
//!
//! Reading is bounded: an entry larger than [`MAX_ENTRY`] bytes (whatever its header claims) and
//! archives with more than [`MAX_ENTRIES`] entries are refused, so a crafted archive cannot exhaust
//! memory.

use std::io::Read;

/// Largest entry read (64 MiB).
pub const MAX_ENTRY: u64 = 64 << 20;
/// Most entries read from one archive.
pub const MAX_ENTRIES: usize = 50_000_000;

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
}

/// Calls `f(name, bytes)` for every file entry of a ZIP archive, in archive order; directories are
/// skipped. Returns the number of files.
pub fn for_each_entry<R, F>(reader: R, mut f: F) -> Result<usize, ArchiveError>
where
    R: std::io::Read + std::io::Seek,
    F: FnMut(&str, Vec<u8>),
{
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| ArchiveError::Zip(e.to_string()))?;
    if zip.len() > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries(MAX_ENTRIES));
    }
    let mut n = 0;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| ArchiveError::Zip(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().replace('\\', "/");
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 20) as usize);
        (&mut entry)
            .take(MAX_ENTRY + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ArchiveError::Zip(e.to_string()))?;
        if bytes.len() as u64 > MAX_ENTRY {
            return Err(ArchiveError::TooLarge {
                index: i,
                limit: MAX_ENTRY,
            });
        }
        f(&name, bytes);
        n += 1;
    }
    Ok(n)
}

/// Whether bytes start like a ZIP archive.
pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}
