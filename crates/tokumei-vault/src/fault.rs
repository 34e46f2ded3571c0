//! Named crash points for tests of recovery: when `TOKUMEI_FAULT_POINT` names a point, the process
//! aborts there (no destructor, no flush: as a kill or a power cut would stop it). Unset, a point
//! costs one environment look-up.

/// Aborts the process if `TOKUMEI_FAULT_POINT` is `name`.
pub fn point(name: &str) {
    if std::env::var_os("TOKUMEI_FAULT_POINT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}
