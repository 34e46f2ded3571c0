//! Japanese era (和暦) dates as older claims files and legacy municipal systems write them: an era
//! digit (1 明治, 2 大正, 3 昭和, 4 平成, 5 令和) then the two-digit year of the era.

use chrono::{Datelike, NaiveDate};

/// How a writer spells dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateStyle {
    /// Gregorian: `YYYYMMDD`, `YYYYMM` (current claims), `YYYY-MM-DD` (CSV).
    #[default]
    Gregorian,
    /// Era-coded: `GYYMMDD`, `GYYMM` (claims before the 2020 revision, legacy systems).
    Era,
}

/// First day of each era with its digit and base year (Gregorian year = base + era year).
const ERAS: [(i32, u32, u32, u8, i32); 5] = [
    (2019, 5, 1, b'5', 2018),
    (1989, 1, 8, b'4', 1988),
    (1926, 12, 25, b'3', 1925),
    (1912, 7, 30, b'2', 1911),
    (1868, 1, 25, b'1', 1867),
];

/// The era digit and era year of a date; `None` before 明治.
pub fn era_of(d: NaiveDate) -> Option<(char, u32)> {
    ERAS.iter().find_map(|&(y, m, day, digit, base)| {
        let start = NaiveDate::from_ymd_opt(y, m, day)?;
        (d >= start).then(|| (digit as char, (d.year() - base) as u32))
    })
}

/// `GYYMMDD`; `None` before 明治 or beyond era year 99.
pub fn era_ymd(d: NaiveDate) -> Option<String> {
    let (g, y) = era_of(d).filter(|(_, y)| *y <= 99)?;
    Some(format!("{g}{y:02}{:02}{:02}", d.month(), d.day()))
}

/// `GYYMM` of the month of `d`, in the era of the month's first day.
pub fn era_ym(d: NaiveDate) -> Option<String> {
    let first = d.with_day(1)?;
    let (g, y) = era_of(first).filter(|(_, y)| *y <= 99)?;
    Some(format!("{g}{y:02}{:02}", first.month()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn era_boundaries() {
        assert_eq!(era_ymd(d(2019, 4, 30)).as_deref(), Some("4310430"));
        assert_eq!(era_ymd(d(2019, 5, 1)).as_deref(), Some("5010501"));
        assert_eq!(era_ymd(d(1989, 1, 7)).as_deref(), Some("3640107"));
        assert_eq!(era_ymd(d(1989, 1, 8)).as_deref(), Some("4010108"));
        assert_eq!(era_ymd(d(1995, 2, 8)).as_deref(), Some("4070208"));
        assert_eq!(era_ymd(d(1981, 4, 18)).as_deref(), Some("3560418"));
        assert_eq!(era_ymd(d(1912, 7, 29)).as_deref(), Some("1450729"));
        assert_eq!(era_ym(d(2018, 11, 20)).as_deref(), Some("43011"));
        assert_eq!(era_ymd(d(1850, 1, 1)), None);
    }
}
