//! The operator home's integration tests, one binary: hostile packages, the home and its keys, the
//! opt-out registry and receipt.

mod attacks;
mod home;
mod optout;
mod passkey;
mod receive;
mod webauth;
