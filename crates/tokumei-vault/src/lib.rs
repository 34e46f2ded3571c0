//! The operator side of Tokumei: the operator home (keys, configuration, audit), and — as the issue
//! lands in increments — sealed receipt of provider packages, the identity vault, the clinical store
//! and the opt-out registry.

pub mod catalog;
pub mod home;
pub mod optout;
pub mod package;
pub mod receive;
pub mod store;

pub use home::{init, open, Home, VaultError};
