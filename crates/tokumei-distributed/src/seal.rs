//! Values sealed for a job: XChaCha20-Poly1305 under a key made for the job, with a synthetic nonce
//! (an HMAC of the value), so that equal values have equal sealed bytes. Executors compare values
//! for equality without opening them and open one only when a similarity needs its text: the
//! values are clear only in an executor's memory, never in the job's files or in shuffle files.
//! Equal values being recognisable to someone holding the files is the price, paid inside the
//! identified zone for the life of one job.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the nonce in front of every sealed value.
const NONCE: usize = 24;

/// Seals and opens the values of one job.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    nonce_key: [u8; 32],
}

/// HMAC-SHA-256 of `label` under `key` (HMAC takes keys of any length, so it never fails).
fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(label);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

impl Sealer {
    /// The sealer of a job key.
    pub fn new(job_key: &[u8]) -> Self {
        let k = derive(job_key, b"tokumei job values: cipher");
        Sealer {
            cipher: XChaCha20Poly1305::new(&k.into()),
            nonce_key: derive(job_key, b"tokumei job values: nonce"),
        }
    }

    /// The sealed bytes of `value`: nonce, then ciphertext and tag.
    pub fn seal(&self, value: &str) -> Vec<u8> {
        let nonce = derive(&self.nonce_key, value.as_bytes());
        let nonce = XNonce::from_slice(&nonce[..NONCE]);
        let mut out = nonce.to_vec();
        // Encryption into a vector cannot fail for values under the cipher's limit (256 GiB).
        if let Ok(ct) = self.cipher.encrypt(nonce, value.as_bytes()) {
            out.extend(ct);
        }
        out
    }

    /// The value of sealed bytes (none when they were not sealed under this key).
    pub fn open(&self, sealed: &[u8]) -> Option<String> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let clear = self.cipher.decrypt(XNonce::from_slice(nonce), ct).ok()?;
        String::from_utf8(clear).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_is_deterministic_per_key_and_opens() {
        let s = Sealer::new(b"job key one");
        assert_eq!(s.seal("sato"), s.seal("sato"));
        assert_ne!(s.seal("sato"), s.seal("satoh"));
        assert_eq!(s.open(&s.seal("佐藤")).as_deref(), Some("佐藤"));
        let other = Sealer::new(b"job key two");
        assert_ne!(s.seal("sato"), other.seal("sato"));
        assert_eq!(other.open(&s.seal("sato")), None);
        let mut bad = s.seal("sato");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(s.open(&bad), None);
        assert_eq!(s.open(b"short"), None);
        assert!(!s.seal("sato").windows(4).any(|w| w == b"sato"));
    }
}
