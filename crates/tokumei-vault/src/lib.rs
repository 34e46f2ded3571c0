//! The operator side of Tokumei: the operator home (keys, configuration, audit, users and roles),
//! sealed receipt of provider packages, the identity vault, the clinical store, the opt-out registry
//! with purges of held records, and exports from the identified zone under the two-person rule.
//!
//! - [`home`]: `init` (a data-encryption key wrapped by the operator's passphrase with scrypt, the age
//!   X25519 receiving identity and the Ed25519 operator key sealed under the data key), configuration
//!   with its layout version, `migrate`, the audit log of the home;
//! - [`lock`]: the writer lock (one command changes the vault at a time; reads take none);
//!   [`intent`]: a receipt or release declares itself before it writes, commits, then records its
//!   outcome, and the next writer completes or rolls back what a killed command left; [`fault`]:
//!   named crash points for tests; [`check`]: the home check; [`auditlog`]: the audit log's
//!   operations (verify, checkpoint, a provider's export with proofs and its verification);
//! - [`access`]: users and roles, Ed25519 user keys wrapped by each user's passphrase, sessions by
//!   challenge signature, grants; [`users`]: registering, listing, revoking and reviewing users,
//!   one call each; [`authz`]: users and providers signed by the operator under a
//!   signed head bound to the audit log; [`provider`]: registration and two-person key rotation;
//! - [`package`] and [`sealed`]: the provider side (signed manifest, tar, age) and the one
//!   age-encrypted tar writer; [`unpack`]: the hostile package reader (manifest and signature first,
//!   raw tar entries, plain files only, limits before a byte is read); [`receive`]: decrypt, verify,
//!   refuse, read through `formats::any`, check counts, apply the opt-out registry and the notice
//!   period, split identities from clinical events, quarantine, keep the original, commit by the
//!   receipt row, audit; [`images`]: DICOM files of an extract read as hostile bytes, tied to their
//!   patient's record by the provider's patient id, sealed in the identified zone and indexed in the
//!   clinical zone (no identifying value);
//! - [`store`]: the identity vault (XChaCha20-Poly1305 under the data key) and the clinical store
//!   (Parquet keyed by opaque record ids); [`catalog`]: SQLite (providers, receipts, users, opt-out
//!   registry, export requests);
//! - [`optout`]: the registry (blind indexes of identifiers, keyed fingerprints of persons);
//!   [`purge`]: purges of held records (whole persons are `tokumei-link`'s); [`export`]: exports
//!   from the identified zone under the two-person rule; [`quarantine`]: the listing of
//!   quarantined records for a technician.

pub mod access;
pub mod auditlog;
pub mod authz;
pub mod catalog;
pub mod check;
pub mod export;
pub mod fault;
pub mod home;
pub mod images;
pub mod intent;
pub mod lock;
pub mod optout;
pub mod package;
pub mod passkey;
pub mod provider;
pub mod purge;
pub mod quarantine;
pub mod receive;
pub mod sealed;
pub mod store;
pub mod unpack;
pub mod users;
pub mod webauth;

pub use home::{init, open, Home, VaultError};
