//! How writers of the source formats spell dates. The eras themselves (their first days, the codes
//! `GYYMMDD` and `GYYMM`) are `tokumei_japan::era`.

pub use tokumei_japan::era::{era_ym, era_ymd, parse_era_ym, parse_era_ymd};

/// How a writer spells dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateStyle {
    /// Gregorian: `YYYYMMDD`, `YYYYMM` (current claims), `YYYY-MM-DD` (CSV).
    #[default]
    Gregorian,
    /// Era-coded: `GYYMMDD`, `GYYMM` (claims before the 2020 revision, legacy systems).
    Era,
}
