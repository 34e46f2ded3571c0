//! The CLI's integration tests, one binary: each module drives `tokumei` as an operator, provider or
//! auditor would (and `architecture` checks the code map and the length of functions).

mod anonymize;
mod architecture;
mod backup;
mod browser;
mod cli;
mod common;
mod demo;
mod dicom;
mod frictions;
mod hardening;
mod linkage;
mod pipeline;
mod review;
mod serve;
