//! The operator side of Tokumei: the operator home (keys, configuration, audit, users and roles),
//! sealed receipt of provider packages, the identity vault, the clinical store, the opt-out registry
//! with purges of held records, and exports from the identified zone under the two-person rule.

pub mod access;
pub mod authz;
pub mod catalog;
pub mod check;
pub mod export;
pub mod fault;
pub mod home;
pub mod intent;
pub mod lock;
pub mod mpi;
pub mod optout;
pub mod package;
pub mod provider;
pub mod purge;
pub mod receive;
pub mod sealed;
pub mod store;
pub mod unpack;

pub use home::{init, open, Home, VaultError};
