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

/// `bytes` encrypted with age to `recipient`, in memory: a small secret or list sealed to one
/// holder (a provider's recruitment list, a backup repository's password for the relocation site).
pub fn seal_bytes(recipient: &age::x25519::Recipient, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut sealed = Vec::new();
    let mut w = encryptor.wrap_output(&mut sealed)?;
    w.write_all(bytes)?;
    w.finish()?;
    Ok(sealed)
}

/// A new age X25519 key pair for a recipient: the secret identity (`AGE-SECRET-KEY-1…`, to keep
/// owner-only) and its public recipient (`age1…`, to give to the operator).
pub fn new_identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    (identity.to_string().expose_secret().to_string(), recipient)
}

/// Writes a new key pair as `DIR/NAME.key` (owner-only) and `DIR/NAME.recipient`; refuses to
/// replace either. Returns both paths and the recipient.
pub fn write_identity(
    dir: &std::path::Path,
    name: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf, String), crate::VaultError> {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.recipient"));
    for p in [&key, &public] {
        if p.exists() {
            return Err(crate::VaultError::Refused(format!(
                "{} exists; a key is never replaced",
                p.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| crate::home::io(dir, e))?;
    let (secret, recipient) = new_identity();
    crate::home::write_secret(&key, format!("{secret}\n").as_bytes())?;
    tokumei_fs::write_atomic(&public, format!("{recipient}\n").as_bytes())?;
    Ok((key, public, recipient))
}

/// Decrypts a sealed archive with the identity in `identity_file` and extracts it into `out`
/// (absent or empty), whole or not at all, as hostile input ([`crate::unpack::extract_plain`]).
pub fn open_archive(
    archive: &std::path::Path,
    identity_file: &std::path::Path,
    out: &std::path::Path,
    limits: &crate::unpack::Limits,
) -> Result<Vec<(String, u64)>, crate::VaultError> {
    use std::str::FromStr;
    let text =
        std::fs::read_to_string(identity_file).map_err(|e| crate::home::io(identity_file, e))?;
    let identity = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .and_then(|l| age::x25519::Identity::from_str(l).ok())
        .ok_or_else(|| {
            crate::VaultError::Refused("the identity file holds no age identity".into())
        })?;
    let file = std::fs::File::open(archive).map_err(|e| crate::home::io(archive, e))?;
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(file))
        .map_err(|_| crate::VaultError::Refused("not an age-encrypted file".into()))?;
    let stream = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|_| crate::VaultError::Refused("this identity does not open the file".into()))?;
    let staged = tokumei_fs::StagedDir::new(out, false)?;
    let files = crate::unpack::extract_plain(stream, staged.path(), limits)
        .map_err(|e| crate::VaultError::Refused(e.0))?;
    staged.commit()?;
    Ok(files)
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

    #[test]
    fn a_recipient_opens_what_was_sealed_to_it_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, _, recipient) = write_identity(dir.path(), "r").expect("identity");
        assert!(write_identity(dir.path(), "r").is_err(), "never replaced");
        let to: age::x25519::Recipient = recipient.parse().expect("recipient");
        let sealed = dir.path().join("p.age");
        let mut t = SealedTar::create(&sealed, &to, 0o600).expect("create");
        t.append_bytes("tables/a.csv", b"x,y\n").expect("append");
        t.append_bytes("report.html", b"<p>").expect("append");
        t.finish().expect("finish");
        let out = dir.path().join("out");
        let limits = crate::unpack::Limits::default();
        let files = open_archive(&sealed, &key, &out, &limits).expect("open");
        assert_eq!(
            files,
            vec![
                ("tables/a.csv".to_string(), 4),
                ("report.html".to_string(), 3)
            ]
        );
        assert_eq!(
            std::fs::read(out.join("tables/a.csv")).expect("read"),
            b"x,y\n"
        );
        let (other, _, _) = write_identity(dir.path(), "o").expect("identity");
        let out2 = dir.path().join("out2");
        assert!(open_archive(&sealed, &other, &out2, &limits).is_err());
        assert!(!out2.exists(), "nothing is left of a refused open");
        let small = crate::unpack::Limits { file: 3, ..limits };
        let out3 = dir.path().join("out3");
        assert!(open_archive(&sealed, &key, &out3, &small).is_err());
        assert!(!out3.exists());
    }
}
