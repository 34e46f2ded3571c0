//! The Japanese eras (元号) from 明治 to 令和, with the exact day each began.
//!
//! An era year is counted from the era's first day: 昭和64年 is 1989 only up to 1 月 7 日, and
//! 平成元年 begins on 1 月 8 日 of the same year. A date outside its era's span (昭和64年1月8日,
//! 平成元年1月7日, 大正15年12月25日) does not exist and is refused in both directions. 明治 is
//! counted from 1868-01-25 (明治元年1月1日 of the lunisolar calendar, to which the era was made to
//! reach back); dates before the calendar reform of 1873 are taken as Gregorian.

use chrono::{Datelike, NaiveDate};

/// One era.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Era {
    /// 明治 (M, 1).
    Meiji,
    /// 大正 (T, 2).
    Taisho,
    /// 昭和 (S, 3).
    Showa,
    /// 平成 (H, 4).
    Heisei,
    /// 令和 (R, 5).
    Reiwa,
}

impl Era {
    /// Every era, oldest first.
    pub const ALL: [Era; 5] = [Era::Meiji, Era::Taisho, Era::Showa, Era::Heisei, Era::Reiwa];

    /// The era's first day.
    pub fn start(self) -> NaiveDate {
        let (y, m, d) = match self {
            Era::Meiji => (1868, 1, 25),
            Era::Taisho => (1912, 7, 30),
            Era::Showa => (1926, 12, 25),
            Era::Heisei => (1989, 1, 8),
            Era::Reiwa => (2019, 5, 1),
        };
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
    }

    /// The era's last day; `None` for the current era.
    pub fn end(self) -> Option<NaiveDate> {
        self.next().and_then(|n| n.start().pred_opt())
    }

    /// The era after this one.
    pub fn next(self) -> Option<Era> {
        let i = Era::ALL.iter().position(|e| *e == self)?;
        Era::ALL.get(i + 1).copied()
    }

    /// The era's name in kanji (`昭和`).
    pub fn kanji(self) -> &'static str {
        match self {
            Era::Meiji => "明治",
            Era::Taisho => "大正",
            Era::Showa => "昭和",
            Era::Heisei => "平成",
            Era::Reiwa => "令和",
        }
    }

    /// The era's initial (`S`), as written in `S50.1.2`.
    pub fn letter(self) -> char {
        match self {
            Era::Meiji => 'M',
            Era::Taisho => 'T',
            Era::Showa => 'S',
            Era::Heisei => 'H',
            Era::Reiwa => 'R',
        }
    }

    /// The era's digit in claims and legacy codes (`3` for 昭和).
    pub fn digit(self) -> char {
        match self {
            Era::Meiji => '1',
            Era::Taisho => '2',
            Era::Showa => '3',
            Era::Heisei => '4',
            Era::Reiwa => '5',
        }
    }

    /// The era of a code digit.
    pub fn from_digit(c: char) -> Option<Era> {
        Era::ALL.into_iter().find(|e| e.digit() == c)
    }

    /// The era of an initial, either case.
    pub fn from_letter(c: char) -> Option<Era> {
        let c = c.to_ascii_uppercase();
        Era::ALL.into_iter().find(|e| e.letter() == c)
    }

    /// The era whose kanji name begins `s`, with the rest of `s`.
    pub fn strip_kanji(s: &str) -> Option<(Era, &str)> {
        Era::ALL
            .into_iter()
            .find_map(|e| s.strip_prefix(e.kanji()).map(|rest| (e, rest)))
    }

    /// The Gregorian year of the era's year 1 (元年).
    fn first_year(self) -> i32 {
        self.start().year()
    }

    /// Whether `d` falls within the era.
    pub fn contains(self, d: NaiveDate) -> bool {
        d >= self.start() && self.end().is_none_or(|e| d <= e)
    }
}

/// The era and era year of a date; `None` before 明治.
pub fn era_of(d: NaiveDate) -> Option<(Era, u32)> {
    let era = Era::ALL.into_iter().rev().find(|e| d >= e.start())?;
    Some((era, (d.year() - era.first_year() + 1) as u32))
}

/// The date of an era date (`昭和64年1月7日` is `(Showa, 64, 1, 7)`); `None` when the day is not a
/// calendar day or lies outside the era.
pub fn from_era(era: Era, year: u32, month: u32, day: u32) -> Option<NaiveDate> {
    if year == 0 {
        return None;
    }
    let y = era
        .first_year()
        .checked_add(i32::try_from(year).ok()? - 1)?;
    NaiveDate::from_ymd_opt(y, month, day).filter(|d| era.contains(*d))
}

/// The first day of an era month (`平成元年1月` is 1989-01-01, a month shared with 昭和); `None` when
/// no day of the month lies within the era.
pub fn from_era_month(era: Era, year: u32, month: u32) -> Option<NaiveDate> {
    if year == 0 {
        return None;
    }
    let y = era
        .first_year()
        .checked_add(i32::try_from(year).ok()? - 1)?;
    let first = NaiveDate::from_ymd_opt(y, month, 1)?;
    let last = first
        .checked_add_months(chrono::Months::new(1))?
        .pred_opt()?;
    let inside = last >= era.start() && era.end().is_none_or(|e| first <= e);
    inside.then_some(first)
}

/// `GYYMMDD`; `None` before 明治 or beyond era year 99.
pub fn era_ymd(d: NaiveDate) -> Option<String> {
    let (e, y) = era_of(d).filter(|(_, y)| *y <= 99)?;
    Some(format!("{}{y:02}{:02}{:02}", e.digit(), d.month(), d.day()))
}

/// `GYYMM` of the month of `d`, in the era of the month's first day.
pub fn era_ym(d: NaiveDate) -> Option<String> {
    let first = d.with_day(1)?;
    let (e, y) = era_of(first).filter(|(_, y)| *y <= 99)?;
    Some(format!("{}{y:02}{:02}", e.digit(), first.month()))
}

fn two(s: &str, at: usize) -> Option<u32> {
    s.get(at..at + 2)?.parse().ok()
}

/// Reads `GYYMMDD` (era digit, era year, month, day); `None` unless the day exists in that era.
pub fn parse_era_ymd(s: &str) -> Option<NaiveDate> {
    if s.len() != 7 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let era = Era::from_digit(s.chars().next()?)?;
    from_era(era, two(s, 1)?, two(s, 3)?, two(s, 5)?)
}

/// Reads `GYYMM`; the month's first day, `None` unless some day of the month lies in that era.
pub fn parse_era_ym(s: &str) -> Option<NaiveDate> {
    if s.len() != 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let era = Era::from_digit(s.chars().next()?)?;
    from_era_month(era, two(s, 1)?, two(s, 3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    /// Every boundary day, in both directions: the last day of each era and the first of the next.
    #[test]
    fn every_boundary_day_both_directions() {
        let cases = [
            (Era::Meiji, 1, d(1868, 1, 25)),
            (Era::Meiji, 45, d(1912, 7, 29)),
            (Era::Taisho, 1, d(1912, 7, 30)),
            (Era::Taisho, 15, d(1926, 12, 24)),
            (Era::Showa, 1, d(1926, 12, 25)),
            (Era::Showa, 64, d(1989, 1, 7)),
            (Era::Heisei, 1, d(1989, 1, 8)),
            (Era::Heisei, 31, d(2019, 4, 30)),
            (Era::Reiwa, 1, d(2019, 5, 1)),
        ];
        for (era, year, day) in cases {
            assert_eq!(era_of(day), Some((era, year)), "{day} to its era");
            assert_eq!(
                from_era(era, year, day.month(), day.day()),
                Some(day),
                "{}{year} {}/{} to its day",
                era.kanji(),
                day.month(),
                day.day()
            );
            let code = era_ymd(day).unwrap_or_default();
            assert_eq!(parse_era_ymd(&code), Some(day), "{code}");
        }
    }

    /// The day after an era ends does not exist in it, nor the day before an era begins.
    #[test]
    fn days_outside_their_era_are_refused() {
        for era in Era::ALL {
            let start = era.start();
            let prev = start.pred_opt().unwrap_or_default();
            assert_eq!(from_era(era, 1, prev.month(), prev.day()), None, "{era:?}");
            if let Some(end) = era.end() {
                let after = end.succ_opt().unwrap_or_default();
                let (_, y) = era_of(end).unwrap_or((era, 0));
                assert_eq!(from_era(era, y, after.month(), after.day()), None);
            }
        }
        // The two sides of the week of 1989-01-07/08.
        assert_eq!(from_era(Era::Showa, 64, 1, 8), None);
        assert_eq!(from_era(Era::Heisei, 1, 1, 7), None);
        assert_eq!(from_era(Era::Showa, 65, 1, 1), None);
        assert_eq!(from_era(Era::Showa, 0, 1, 1), None);
        assert_eq!(parse_era_ymd("3640108"), None);
        assert_eq!(parse_era_ymd("4010107"), None);
        assert_eq!(parse_era_ymd("5010430"), None);
        assert_eq!(parse_era_ymd("4310501"), None);
        assert_eq!(era_of(d(1868, 1, 24)), None);
    }

    #[test]
    fn era_months_shared_by_two_eras() {
        assert_eq!(parse_era_ym("36401"), Some(d(1989, 1, 1)));
        assert_eq!(parse_era_ym("40101"), Some(d(1989, 1, 1)));
        assert_eq!(parse_era_ym("36402"), None);
        assert_eq!(parse_era_ym("40112"), Some(d(1989, 12, 1)));
        assert_eq!(parse_era_ym("43104"), Some(d(2019, 4, 1)));
        assert_eq!(parse_era_ym("43105"), None);
        assert_eq!(parse_era_ym("50104"), None);
        assert_eq!(parse_era_ym("50105"), Some(d(2019, 5, 1)));
        assert_eq!(era_ym(d(2018, 11, 20)).as_deref(), Some("43011"));
        assert_eq!(era_ym(d(1989, 1, 20)).as_deref(), Some("36401"));
    }

    #[test]
    fn codes_round_trip() {
        assert_eq!(era_ymd(d(1995, 2, 8)).as_deref(), Some("4070208"));
        assert_eq!(era_ymd(d(1981, 4, 18)).as_deref(), Some("3560418"));
        assert_eq!(era_ymd(d(1850, 1, 1)), None);
        let mut day = d(1868, 1, 25);
        while day < d(2030, 1, 1) {
            if let Some(code) = era_ymd(day) {
                assert_eq!(parse_era_ymd(&code), Some(day), "{code}");
            }
            day = day.succ_opt().unwrap_or(NaiveDate::MAX);
        }
    }

    #[test]
    fn names_letters_and_digits() {
        for e in Era::ALL {
            assert_eq!(Era::from_digit(e.digit()), Some(e));
            assert_eq!(Era::from_letter(e.letter().to_ascii_lowercase()), Some(e));
            assert_eq!(
                Era::strip_kanji(&format!("{}3年", e.kanji())),
                Some((e, "3年"))
            );
        }
    }
}
