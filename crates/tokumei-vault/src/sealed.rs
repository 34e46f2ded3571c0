//! An age-encrypted tar archive written to a file: the one way packages, exports and releases are
//! sealed to their recipient. Entries carry a fixed mode and no timestamp, so the plaintext is the
//! same for the same entries; the encryption's nonce is random.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

/// An age-encrypted tar being written.
pub struct SealedTar {
    mode: u32,
    tar: tar::Builder<age::stream::StreamWriter<BufWriter<File>>>,
}

impl SealedTar {
    /// Creates `path` (truncated if present) encrypted to `recipient`; entries get `mode`.
    pub fn create(
        path: &Path,
        recipient: &age::x25519::Recipient,
        mode: u32,
    ) -> std::io::Result<SealedTar> {
        let file = File::create(path)?;
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .map_err(std::io::Error::other)?;
        let writer = encryptor.wrap_output(BufWriter::new(file))?;
        Ok(SealedTar {
            mode,
            tar: tar::Builder::new(writer),
        })
    }

    /// Appends an entry of `size` bytes read from `data`.
    pub fn append(&mut self, name: &str, size: u64, data: impl Read) -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(self.mode);
        h.set_mtime(0);
        h.set_cksum();
        self.tar.append_data(&mut h, name, data)
    }

    /// Appends an entry held in memory.
    pub fn append_bytes(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.append(name, bytes.len() as u64, bytes)
    }

    /// Finishes the archive and the encryption, and syncs the file to disk; returns its size.
    pub fn finish(self) -> std::io::Result<u64> {
        let writer = self.tar.into_inner()?;
        let mut buffered = writer.finish()?;
        buffered.flush()?;
        let file = buffered
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_it_and_entries_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.tar.age");
        let identity = age::x25519::Identity::generate();
        let mut t = SealedTar::create(&path, &identity.to_public(), 0o600).expect("create");
        t.append_bytes("a/b.txt", b"hello").expect("append");
        t.append("c.bin", 3, &[1u8, 2, 3][..]).expect("append");
        let size = t.finish().expect("finish");
        let sealed = std::fs::read(&path).expect("read");
        assert_eq!(size, sealed.len() as u64);
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        let other = age::x25519::Identity::generate();
        let refused = age::Decryptor::new_buffered(sealed.as_slice())
            .expect("age")
            .decrypt(std::iter::once(&other as &dyn age::Identity));
        assert!(refused.is_err());
        let reader = age::Decryptor::new_buffered(sealed.as_slice())
            .expect("age")
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .expect("opens");
        let mut archive = tar::Archive::new(reader);
        let mut seen = Vec::new();
        for e in archive.entries().expect("entries") {
            let mut e = e.expect("entry");
            let mut body = Vec::new();
            e.read_to_end(&mut body).expect("body");
            assert_eq!(e.header().mode().expect("mode"), 0o600);
            seen.push((e.path().expect("path").to_string_lossy().to_string(), body));
        }
        assert_eq!(
            seen,
            vec![
                ("a/b.txt".to_string(), b"hello".to_vec()),
                ("c.bin".to_string(), vec![1, 2, 3])
            ]
        );
    }
}
