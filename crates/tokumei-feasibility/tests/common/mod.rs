//! What the feasibility tests share.

pub mod region;
