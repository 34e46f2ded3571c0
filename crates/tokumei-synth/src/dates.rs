//! Date helpers for the simulation.

use chrono::{Datelike, Months, NaiveDate};

/// The simulated period: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub start: NaiveDate,
    /// Day after the last day.
    pub end: NaiveDate,
    /// Number of months.
    pub months: u32,
}

impl Period {
    /// A period of `months` months from the first day of `year`-`month`.
    pub fn new(year: i32, month: u32, months: u32) -> Option<Self> {
        let start = NaiveDate::from_ymd_opt(year, month, 1)?;
        let end = start.checked_add_months(Months::new(months))?;
        Some(Period { start, end, months })
    }

    /// First day of month `m` (0-based) of the period.
    pub fn month_start(&self, m: u32) -> NaiveDate {
        self.start
            .checked_add_months(Months::new(m))
            .unwrap_or(self.end)
    }

    /// Whether a date falls in the period.
    pub fn contains(&self, d: NaiveDate) -> bool {
        d >= self.start && d < self.end
    }

    /// Number of days.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }
}

pub use tokumei_model::age_on;

/// Age in fractional years.
pub fn age_years(birth: NaiveDate, on: NaiveDate) -> f64 {
    (on - birth).num_days() as f64 / 365.2425
}

/// The date `years` years after `birth` (29 February maps to 1 March in common years).
pub fn birthday(birth: NaiveDate, years: i32) -> NaiveDate {
    let y = birth.year() + years;
    NaiveDate::from_ymd_opt(y, birth.month(), birth.day())
        .or_else(|| NaiveDate::from_ymd_opt(y, 3, 1))
        .unwrap_or(birth)
}

/// First day of the month of `d`.
pub fn month_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// Adds days.
pub fn plus_days(d: NaiveDate, days: i64) -> NaiveDate {
    d.checked_add_signed(chrono::Duration::days(days))
        .unwrap_or(d)
}

/// Parses `YYYY-MM`.
pub fn parse_year_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.split_once('-')?;
    let y: i32 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    ((1900..=2100).contains(&y) && (1..=12).contains(&m)).then_some((y, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_birthdays() {
        let b = NaiveDate::from_ymd_opt(1980, 4, 12).unwrap();
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2021, 4, 11).unwrap()), 40);
        assert_eq!(age_on(b, NaiveDate::from_ymd_opt(2021, 4, 12).unwrap()), 41);
        let leap = NaiveDate::from_ymd_opt(1948, 2, 29).unwrap();
        assert_eq!(
            birthday(leap, 75),
            NaiveDate::from_ymd_opt(2023, 3, 1).unwrap()
        );
        assert_eq!(parse_year_month("2021-04"), Some((2021, 4)));
        assert_eq!(parse_year_month("2021-13"), None);
        let p = Period::new(2021, 4, 36).unwrap();
        assert_eq!(p.end, NaiveDate::from_ymd_opt(2024, 4, 1).unwrap());
    }
}
