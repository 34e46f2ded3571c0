//! The engine's integration tests, one binary: the anchors of ANCHORS.md, parity with ARX, the
//! privacy models and the property tests.

mod anchors;
mod arx_parity;
mod common;
mod models;
mod properties;
mod setvalued;
