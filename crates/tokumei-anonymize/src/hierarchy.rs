//! Generalization hierarchies: ARX's CSV format (`value;level1;level2;...`) and built-in builders for dates,
//! ages, Japanese addresses, postal codes, ICD-10 codes and numeric intervals.
//!
//! A hierarchy is a table with one row per original value; column 0 is the value itself and column `i` its
//! generalization at level `i`. Every row has the same number of levels; the last level is usually `*`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{AnonError, Result};

/// A materialized generalization hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    rows: Vec<Vec<String>>,
}

impl Hierarchy {
    /// Builds a hierarchy from rows; every row must have the same, non-zero length and the values of column 0
    /// must be distinct.
    pub fn from_rows(name: &str, rows: Vec<Vec<String>>) -> Result<Self> {
        let Some(first) = rows.first() else {
            return Err(AnonError::hierarchy(name, "no rows"));
        };
        let width = first.len();
        if width == 0 {
            return Err(AnonError::hierarchy(name, "empty row"));
        }
        let mut seen = HashSet::new();
        for (i, r) in rows.iter().enumerate() {
            if r.len() != width {
                return Err(AnonError::hierarchy(
                    name,
                    format!("row {} has {} levels, row 1 has {width}", i + 1, r.len()),
                ));
            }
            if !seen.insert(r[0].as_str()) {
                return Err(AnonError::hierarchy(
                    name,
                    format!("value `{}` is listed twice", r[0]),
                ));
            }
        }
        // A label must not be generalized inconsistently: two rows sharing a label at level l must share it
        // at every level above l, or the lattice is not a hierarchy.
        for l in 1..width {
            let mut parent: HashMap<&str, &[String]> = HashMap::new();
            for r in &rows {
                match parent.get(r[l].as_str()) {
                    Some(up) if *up != &r[l..] => {
                        return Err(AnonError::hierarchy(
                            name,
                            format!(
                                "label `{}` at level {l} generalizes to different values",
                                r[l]
                            ),
                        ))
                    }
                    Some(_) => {}
                    None => {
                        parent.insert(r[l].as_str(), &r[l..]);
                    }
                }
            }
        }
        Ok(Hierarchy { rows })
    }

    /// Parses ARX's hierarchy CSV (no header, `;` by default).
    pub fn from_arx_csv(name: &str, text: &str, delimiter: u8) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| AnonError::hierarchy(name, e.to_string()))?;
            if rec.len() == 1 && rec.get(0).is_some_and(|f| f.is_empty()) {
                continue;
            }
            rows.push(rec.iter().map(|s| s.to_string()).collect());
        }
        Hierarchy::from_rows(name, rows)
    }

    /// Reads an ARX hierarchy file; the delimiter is `;` unless the first line has none and has commas.
    pub fn read_arx_csv(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AnonError::io(name.clone(), e))?;
        let first = text.lines().next().unwrap_or("");
        let delimiter = if first.contains(';') {
            b';'
        } else if first.contains('\t') {
            b'\t'
        } else {
            b','
        };
        Hierarchy::from_arx_csv(&name, &text, delimiter)
    }

    /// Writes the hierarchy in ARX's format.
    pub fn to_arx_csv(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            out.push_str(&r.join(";"));
            out.push('\n');
        }
        out
    }

    /// The rows of the hierarchy.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// Number of levels including level 0.
    pub fn levels(&self) -> usize {
        self.rows.first().map(Vec::len).unwrap_or(0)
    }

    /// Highest generalization level (levels − 1).
    pub fn height(&self) -> usize {
        self.levels().saturating_sub(1)
    }

    /// The generalization of `value` at `level`, if the value is in the hierarchy.
    pub fn generalize(&self, value: &str, level: usize) -> Option<&str> {
        self.rows
            .iter()
            .find(|r| r[0] == value)
            .and_then(|r| r.get(level))
            .map(String::as_str)
    }

    /// A hierarchy that only suppresses: `value → *`.
    pub fn flat<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let rows = distinct(values)
            .into_iter()
            .map(|v| vec![v, "*".to_string()])
            .collect();
        Hierarchy::from_rows("flat", rows)
    }

    /// Dates `YYYY-MM-DD` (also `YYYY/MM/DD` and `YYYYMMDD`): day → month → year → 5-year band → `*`.
    pub fn dates<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let Some((y, m, _d)) = parse_date(&v) else {
                return Err(AnonError::hierarchy(
                    "dates",
                    format!("`{v}` is not a date (YYYY-MM-DD)"),
                ));
            };
            let b = y - y.rem_euclid(5);
            rows.push(vec![
                v.clone(),
                format!("{y:04}-{m:02}"),
                format!("{y:04}"),
                format!("{b:04}-{:04}", b + 4),
                "*".to_string(),
            ]);
        }
        Hierarchy::from_rows("dates", rows)
    }

    /// Ages in whole years: 1 → 5 → 10 → 20 years → `*`, with every age at or above `top` coded as `top+`
    /// (for example `90+`) from level 1 upwards. A value already top-coded (`90+` when `top` is 90) is
    /// `top+` at every level below `*`.
    pub fn ages<S: AsRef<str>>(values: &[S], top: Option<u32>) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let coded = top.filter(|t| v.trim() == format!("{t}+"));
            let a: u32 = match coded {
                Some(t) => t,
                None => v.trim().parse().map_err(|_| {
                    AnonError::hierarchy("ages", format!("`{v}` is not an age in years"))
                })?,
            };
            let band = |w: u32| -> String {
                match top {
                    Some(t) if a >= t => format!("{t}+"),
                    _ => {
                        let lo = a - a % w;
                        let hi = match top {
                            Some(t) => (lo + w - 1).min(t - 1),
                            None => lo + w - 1,
                        };
                        format!("{lo}-{hi}")
                    }
                }
            };
            rows.push(vec![
                v.clone(),
                band(5),
                band(10),
                band(20),
                "*".to_string(),
            ]);
        }
        Hierarchy::from_rows("ages", rows)
    }

    /// Years `YYYY`: year → 5-year band → 10-year band → `*` (bands `1950-1954`, `1950-1959`).
    pub fn years<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let y = parse_year(&v).ok_or_else(|| {
                AnonError::hierarchy("years", format!("`{v}` is not a year (YYYY)"))
            })?;
            rows.push(vec![v, year_band(y, 5), year_band(y, 10), "*".to_string()]);
        }
        Hierarchy::from_rows("years", rows)
    }

    /// Year-months `YYYY-MM`: month → year → 5-year band → 10-year band → `*`.
    pub fn year_months<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let y = v
                .split_once('-')
                .filter(|(_, m)| {
                    m.len() == 2 && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
                })
                .and_then(|(y, _)| parse_year(y))
                .ok_or_else(|| {
                    AnonError::hierarchy(
                        "year-months",
                        format!("`{v}` is not a year-month (YYYY-MM)"),
                    )
                })?;
            rows.push(vec![
                v,
                format!("{y:04}"),
                year_band(y, 5),
                year_band(y, 10),
                "*".to_string(),
            ]);
        }
        Hierarchy::from_rows("year-months", rows)
    }

    /// Event months `YYYY-MM`: month → quarter (`2022-Q1`) → year → `*`.
    pub fn calendar_months<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let (y, m) = parse_year_month(&v).ok_or_else(|| {
                AnonError::hierarchy("months", format!("`{v}` is not a year-month (YYYY-MM)"))
            })?;
            rows.push(vec![
                v,
                format!("{y:04}-Q{}", (m - 1) / 3 + 1),
                format!("{y:04}"),
                "*".to_string(),
            ]);
        }
        Hierarchy::from_rows("months", rows)
    }

    /// Days relative to an index date (integers, negative before it): day → 30-day → 90-day →
    /// 365-day band (`0-29`, `-90--1`) → `*`.
    pub fn day_offsets<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let d: i64 = v.parse().map_err(|_| {
                AnonError::hierarchy("days", format!("`{v}` is not a whole number of days"))
            })?;
            let band = |w: i64| {
                let lo = d - d.rem_euclid(w);
                format!("{lo}-{}", lo + w - 1)
            };
            rows.push(vec![v, band(30), band(90), band(365), "*".to_string()]);
        }
        Hierarchy::from_rows("days", rows)
    }

    /// Drug codes by their class: a 12-character 薬価基準収載医薬品コード or YJ code (`2149046F3026`, the
    /// first four digits its 薬効分類) → ingredient (first 7 characters) → 薬効分類 (4 digits) → its
    /// 3-digit group → `*`. A 9-digit レセ電 医薬品コード climbs the same levels through its
    /// 薬価基準収載医薬品コード (`tokumei_japan::drug`), so that claims and hospital records of one
    /// ingredient meet at its first level. A code of another form, or a レセ電 code the table lacks,
    /// carries no class: it stays itself up to `*`.
    pub fn drug_codes<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        use tokumei_japan::drug::{is_yj, yj_of};
        let rows = distinct(values)
            .into_iter()
            .map(|v| {
                let class = if is_yj(&v) {
                    Some(v.as_str())
                } else {
                    yj_of(&v)
                };
                let up: Vec<String> = match class {
                    Some(c) => vec![c[..7].to_string(), c[..4].to_string(), c[..3].to_string()],
                    None => vec![v.clone(); 3],
                };
                std::iter::once(v.clone())
                    .chain(up)
                    .chain(std::iter::once("*".to_string()))
                    .collect()
            })
            .collect();
        Hierarchy::from_rows("drugs", rows)
    }

    /// Municipality codes (全国地方公共団体コード, 6 digits with the check digit or the 5 without):
    /// municipality → prefecture code (JIS X 0401, its first two digits) → `*`.
    pub fn municipality_codes<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let valid = matches!(v.len(), 5 | 6) && v.bytes().all(|b| b.is_ascii_digit());
            let pref = tokumei_japan::place::prefecture_of_code(&v).filter(|_| valid);
            let Some(pref) = pref else {
                return Err(AnonError::hierarchy(
                    "municipalities",
                    format!("`{v}` is not a municipality code"),
                ));
            };
            rows.push(vec![v, pref.code.to_string(), "*".to_string()]);
        }
        Hierarchy::from_rows("municipalities", rows)
    }

    /// Prefecture codes (JIS X 0401, `01`–`47`): prefecture → `*`.
    pub fn prefecture_codes<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            if v.len() != 2 || tokumei_japan::place::prefecture_of_code(&v).is_none() {
                return Err(AnonError::hierarchy(
                    "prefectures",
                    format!("`{v}` is not a prefecture code"),
                ));
            }
            rows.push(vec![v, "*".to_string()]);
        }
        Hierarchy::from_rows("prefectures", rows)
    }

    /// This hierarchy with a row for a missing value: `missing` at every level below the top, `*` at
    /// the top (a missing value stays missing until the attribute is suppressed).
    pub fn with_missing(self, missing: &str) -> Result<Self> {
        let name = "missing";
        let width = self.rows.first().map_or(2, Vec::len).max(2);
        let mut rows = self.rows;
        if rows.iter().any(|r| r[0] == missing) {
            return Err(AnonError::hierarchy(
                name,
                "the missing value is already listed",
            ));
        }
        let mut row = vec![missing.to_string(); width - 1];
        row.push("*".to_string());
        rows.push(row);
        Hierarchy::from_rows(name, rows)
    }

    /// Numeric intervals of the given increasing widths (each a multiple of the previous one), then `*`.
    /// Values below `bottom` or at/above `top` are coded `<bottom` and `>=top` at every level ≥ 1.
    pub fn intervals<S: AsRef<str>>(
        values: &[S],
        widths: &[f64],
        bottom: Option<f64>,
        top: Option<f64>,
    ) -> Result<Self> {
        if widths.is_empty() || widths.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(AnonError::hierarchy(
                "intervals",
                "widths must be positive numbers",
            ));
        }
        let mut rows = Vec::new();
        for v in distinct(values) {
            let x: f64 = v
                .trim()
                .parse()
                .map_err(|_| AnonError::hierarchy("intervals", format!("`{v}` is not a number")))?;
            let mut row = vec![v.clone()];
            for w in widths {
                let label = match (bottom, top) {
                    (Some(b), _) if x < b => format!("<{}", fmt_num(b)),
                    (_, Some(t)) if x >= t => format!(">={}", fmt_num(t)),
                    _ => {
                        let lo = (x / w).floor() * w;
                        format!("[{}, {})", fmt_num(lo), fmt_num(lo + w))
                    }
                };
                row.push(label);
            }
            row.push("*".to_string());
            rows.push(row);
        }
        Hierarchy::from_rows("intervals", rows)
    }

    /// Japanese postal codes (`0300801` or `030-0801`): 7 digits → first 3 digits → `*`.
    pub fn postal_codes<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 7 {
                return Err(AnonError::hierarchy(
                    "postal",
                    format!("`{v}` is not a 7-digit postal code"),
                ));
            }
            rows.push(vec![v.clone(), digits[..3].to_string(), "*".to_string()]);
        }
        Hierarchy::from_rows("postal", rows)
    }

    /// ICD-10 codes (`C341`, `C34.1`, `C34`): 4 characters → 3 characters → block → chapter → `*`, using the
    /// built-in WHO ICD-10 chapter and block ranges.
    pub fn icd10<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let code: String = v
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_uppercase();
            let valid = code.len() >= 3
                && code.as_bytes()[0].is_ascii_uppercase()
                && code.as_bytes()[1].is_ascii_digit()
                && code.as_bytes()[2].is_ascii_digit();
            if !valid {
                return Err(AnonError::hierarchy(
                    "icd10",
                    format!("`{v}` is not an ICD-10 code"),
                ));
            }
            let three = &code[..3];
            let block = tokumei_japan::icd10::block_of(three).ok_or_else(|| {
                AnonError::hierarchy("icd10", format!("`{v}`: no ICD-10 block contains {three}"))
            })?;
            let chapter = tokumei_japan::icd10::chapter_of(three).ok_or_else(|| {
                AnonError::hierarchy(
                    "icd10",
                    format!("`{v}`: no ICD-10 chapter contains {three}"),
                )
            })?;
            rows.push(vec![
                v.clone(),
                three.to_string(),
                block.to_string(),
                chapter.to_string(),
                "*".to_string(),
            ]);
        }
        Hierarchy::from_rows("icd10", rows)
    }

    /// Japanese addresses: 番地 → 丁目 → 町名 → 市区町村 → 二次医療圏 → 都道府県 → 地方 → `*`.
    ///
    /// The address is split into prefecture (都道府県), municipality (市区町村, including the ward of a
    /// designated city), town (町名), 丁目 and the rest (番地). The secondary medical area (二次医療圏) of each
    /// municipality comes from `areas`, since it is data, not code.
    pub fn japanese_addresses<S: AsRef<str>>(values: &[S], areas: &AreaTable) -> Result<Self> {
        let mut rows = Vec::new();
        for v in distinct(values) {
            let a = split_address(&v).ok_or_else(|| {
                AnonError::hierarchy("address", format!("`{v}` does not start with a prefecture"))
            })?;
            let muni = format!("{}{}", a.prefecture, a.municipality);
            let area = areas
                .medical_area(&a.prefecture, &a.municipality)
                .ok_or_else(|| {
                    AnonError::hierarchy(
                        "address",
                        format!("no 二次医療圏 for municipality `{muni}` in the area table"),
                    )
                })?;
            let region = areas.region(&a.prefecture).ok_or_else(|| {
                AnonError::hierarchy("address", format!("unknown prefecture `{}`", a.prefecture))
            })?;
            let town = format!("{muni}{}", a.town);
            let chome = format!("{town}{}", a.chome);
            rows.push(vec![
                v.clone(),
                chome,
                town,
                muni,
                area.to_string(),
                a.prefecture.clone(),
                region.to_string(),
                "*".to_string(),
            ]);
        }
        Hierarchy::from_rows("address", rows)
    }
}

/// The mapping from municipalities to secondary medical areas (二次医療圏) and from prefectures to regions
/// (地方). The regions default to the usual eight; the medical areas must be supplied.
#[derive(Debug, Clone, Default)]
pub struct AreaTable {
    areas: HashMap<(String, String), String>,
    regions: HashMap<String, String>,
}

impl AreaTable {
    /// An empty table with the default prefecture → region mapping (`tokumei_japan::place`).
    pub fn new() -> Self {
        let regions = tokumei_japan::place::PREFECTURES
            .iter()
            .map(|p| (p.name.to_string(), p.region.to_string()))
            .collect();
        AreaTable {
            areas: HashMap::new(),
            regions,
        }
    }

    /// The table shipped with Tokumei (`tokumei_japan::place::medical_areas`), to which an operator's
    /// rows may be added.
    pub fn shipped() -> Self {
        let mut t = AreaTable::new();
        for m in tokumei_japan::place::medical_areas() {
            if let Some(p) = tokumei_japan::place::prefecture_of_code(m.code6) {
                t.insert(p.name, m.municipality, m.area);
            }
        }
        t
    }

    /// Adds a municipality's secondary medical area.
    pub fn insert(&mut self, prefecture: &str, municipality: &str, medical_area: &str) {
        self.areas.insert(
            (prefecture.to_string(), municipality.to_string()),
            medical_area.to_string(),
        );
    }

    /// Parses CSV rows `prefecture,municipality,medical_area[,region]` (header optional).
    pub fn from_csv(text: &str) -> Result<Self> {
        let mut t = AreaTable::new();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| AnonError::hierarchy("area table", e.to_string()))?;
            if rec.len() < 3 {
                return Err(AnonError::hierarchy(
                    "area table",
                    format!("row {} has fewer than 3 fields", i + 1),
                ));
            }
            if i == 0
                && rec
                    .get(0)
                    .is_some_and(|f| f.eq_ignore_ascii_case("prefecture"))
            {
                continue;
            }
            t.insert(&rec[0], &rec[1], &rec[2]);
            if let Some(r) = rec.get(3).filter(|r| !r.is_empty()) {
                t.regions.insert(rec[0].to_string(), r.to_string());
            }
        }
        Ok(t)
    }

    fn medical_area(&self, prefecture: &str, municipality: &str) -> Option<&str> {
        self.areas
            .get(&(prefecture.to_string(), municipality.to_string()))
            .map(String::as_str)
    }

    fn region(&self, prefecture: &str) -> Option<&str> {
        self.regions.get(prefecture).map(String::as_str)
    }
}

struct AddressParts {
    prefecture: String,
    municipality: String,
    town: String,
    chome: String,
}

fn split_address(addr: &str) -> Option<AddressParts> {
    let (pref, rest) = tokumei_japan::place::strip_prefecture(addr.trim())?;
    let prefecture = pref.name.to_string();
    let chars: Vec<char> = rest.chars().collect();
    let rest = &chars[..];
    // Municipality: 郡 … 町/村, or … 市 (followed by … 区 in designated cities), or … 区 / 町 / 村.
    let mut end = 0;
    if let Some(g) = rest.iter().position(|&c| c == '郡') {
        if let Some(p) = rest[g + 1..].iter().position(|&c| c == '町' || c == '村') {
            end = g + 1 + p + 1;
        }
    }
    if end == 0 {
        let p = rest
            .iter()
            .position(|&c| c == '市' || c == '区' || c == '町' || c == '村')?;
        end = p + 1;
        if rest[p] == '市' {
            if let Some(w) = rest[end..].iter().take(5).position(|&c| c == '区') {
                end += w + 1;
            }
        }
    }
    let municipality: String = rest[..end].iter().collect();
    let after = &rest[end..];
    let is_num = |c: char| {
        c.is_ascii_digit() || ('０'..='９').contains(&c) || "一二三四五六七八九十".contains(c)
    };
    let town_end = after.iter().position(|&c| is_num(c)).unwrap_or(after.len());
    let town: String = after[..town_end].iter().collect();
    let tail = &after[town_end..];
    let chome = match tail.iter().position(|&c| c == '丁') {
        Some(p) if tail.get(p + 1) == Some(&'目') => tail[..p + 2].iter().collect(),
        _ => String::new(),
    };
    Some(AddressParts {
        prefecture,
        municipality,
        town,
        chome,
    })
}

fn parse_date(s: &str) -> Option<(i32, u32, u32)> {
    let s = s.trim();
    let parts: Vec<&str> = if s.contains('-') {
        s.split('-').collect()
    } else if s.contains('/') {
        s.split('/').collect()
    } else if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        vec![&s[..4], &s[4..6], &s[6..]]
    } else {
        return None;
    };
    if parts.len() != 3 {
        return None;
    }
    let y: i32 = parts[0].parse().ok()?;
    let m: u32 = parts[1].parse().ok()?;
    let d: u32 = parts[2].parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

fn parse_year(s: &str) -> Option<i32> {
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn parse_year_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.split_once('-')?;
    let m: u32 = (m.len() == 2).then(|| m.parse().ok()).flatten()?;
    Some((parse_year(y)?, m)).filter(|_| (1..=12).contains(&m))
}

fn year_band(y: i32, w: i32) -> String {
    let lo = y - y.rem_euclid(w);
    format!("{lo:04}-{:04}", lo + w - 1)
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn distinct<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for v in values {
        if seen.insert(v.as_ref()) {
            out.push(v.as_ref().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arx_format_round_trip() {
        let h = Hierarchy::from_arx_csv("t", "a;x;*\nb;x;*\nc;y;*\n", b';').unwrap();
        assert_eq!(h.height(), 2);
        assert_eq!(h.generalize("c", 1), Some("y"));
        assert_eq!(
            Hierarchy::from_arx_csv("t", &h.to_arx_csv(), b';').unwrap(),
            h
        );
    }

    #[test]
    fn inconsistent_hierarchy_is_rejected() {
        let e = Hierarchy::from_arx_csv("t", "a;x;1\nb;x;2\n", b';').unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
        assert!(Hierarchy::from_arx_csv("t", "a;x\nb\n", b';').is_err());
    }

    #[test]
    fn event_builders() {
        let m = Hierarchy::calendar_months(&["2022-03", "2022-11"]).unwrap();
        assert_eq!(m.rows()[0], vec!["2022-03", "2022-Q1", "2022", "*"]);
        assert_eq!(m.rows()[1], vec!["2022-11", "2022-Q4", "2022", "*"]);
        assert!(Hierarchy::calendar_months(&["2022-13"]).is_err());
        let d = Hierarchy::day_offsets(&["0", "45", "-1"]).unwrap();
        assert_eq!(d.rows()[1], vec!["45", "30-59", "0-89", "0-364", "*"]);
        assert_eq!(d.rows()[2], vec!["-1", "-30--1", "-90--1", "-365--1", "*"]);
        let g = Hierarchy::drug_codes(&["2149046F3026", "622242401", "622239501", "622239599"])
            .unwrap();
        let row = |code: &str| g.rows().iter().find(|r| r[0] == code).unwrap().clone();
        assert_eq!(
            row("2149046F3026"),
            vec!["2149046F3026", "2149046", "2149", "214", "*"]
        );
        // The claims code of the same product (アバプロ錠２００ｍｇ) meets it at the ingredient.
        assert_eq!(
            row("622242401"),
            vec!["622242401", "2149046", "2149", "214", "*"]
        );
        assert_eq!(
            row("622239501"),
            vec!["622239501", "2171022", "2171", "217", "*"]
        );
        assert_eq!(
            row("622239599"),
            vec!["622239599", "622239599", "622239599", "622239599", "*"]
        );
    }

    #[test]
    fn builders() {
        let h = Hierarchy::ages(&["3", "37", "94"], Some(90)).unwrap();
        assert_eq!(h.rows()[1], vec!["37", "35-39", "30-39", "20-39", "*"]);
        assert_eq!(h.rows()[2], vec!["94", "90+", "90+", "90+", "*"]);
        let d = Hierarchy::dates(&["2023-04-17"]).unwrap();
        assert_eq!(
            d.rows()[0],
            vec!["2023-04-17", "2023-04", "2023", "2020-2024", "*"]
        );
        let p = Hierarchy::postal_codes(&["030-0801"]).unwrap();
        assert_eq!(p.rows()[0], vec!["030-0801", "030", "*"]);
        let i = Hierarchy::icd10(&["C34.1", "I219"]).unwrap();
        assert_eq!(i.rows()[0], vec!["C34.1", "C34", "C30-C39", "II", "*"]);
        assert_eq!(i.rows()[1], vec!["I219", "I21", "I20-I25", "IX", "*"]);
        let a = Hierarchy::ages(&["90+", "89"], Some(90)).unwrap();
        assert_eq!(a.rows()[0], vec!["90+", "90+", "90+", "90+", "*"]);
        assert_eq!(a.rows()[1], vec!["89", "85-89", "80-89", "80-89", "*"]);
        assert!(Hierarchy::ages(&["80+"], Some(90)).is_err());
        let y = Hierarchy::years(&["1953"]).unwrap();
        assert_eq!(y.rows()[0], vec!["1953", "1950-1954", "1950-1959", "*"]);
        let m = Hierarchy::year_months(&["1953-04"]).unwrap();
        assert_eq!(
            m.rows()[0],
            vec!["1953-04", "1953", "1950-1954", "1950-1959", "*"]
        );
        assert!(Hierarchy::year_months(&["1953-13"]).is_err());
        assert!(Hierarchy::years(&["53"]).is_err());
        let mu = Hierarchy::municipality_codes(&["022012", "13101"]).unwrap();
        assert_eq!(mu.rows()[0], vec!["022012", "02", "*"]);
        assert_eq!(mu.rows()[1], vec!["13101", "13", "*"]);
        assert!(Hierarchy::municipality_codes(&["992012"]).is_err());
        assert!(Hierarchy::municipality_codes(&["02x01"]).is_err());
        let pr = Hierarchy::prefecture_codes(&["02"]).unwrap();
        assert_eq!(pr.rows()[0], vec!["02", "*"]);
        let with = pr.with_missing("").unwrap();
        assert_eq!(with.rows()[1], vec!["", "*"]);
        let only = Hierarchy::years(&["1953"])
            .unwrap()
            .with_missing("")
            .unwrap();
        assert_eq!(only.rows()[1], vec!["", "", "", "*"]);
        assert!(only.with_missing("").is_err());
        let n = Hierarchy::intervals(&["12.5", "-1"], &[10.0, 20.0], Some(0.0), None).unwrap();
        assert_eq!(n.rows()[0], vec!["12.5", "[10, 20)", "[0, 20)", "*"]);
        assert_eq!(n.rows()[1][1], "<0");
    }

    #[test]
    fn japanese_addresses() {
        let mut areas = AreaTable::new();
        areas.insert("青森県", "青森市", "青森地域");
        areas.insert("北海道", "札幌市中央区", "札幌");
        let h = Hierarchy::japanese_addresses(
            &[
                "青森県青森市新町一丁目3番7号",
                "北海道札幌市中央区北一条西2丁目1",
            ],
            &areas,
        )
        .unwrap();
        assert_eq!(
            h.rows()[0][1..],
            [
                "青森県青森市新町一丁目",
                "青森県青森市新町",
                "青森県青森市",
                "青森地域",
                "青森県",
                "東北地方",
                "*"
            ]
        );
        assert_eq!(h.rows()[1][3], "北海道札幌市中央区");
        assert!(Hierarchy::japanese_addresses(&["青森県弘前市1"], &areas).is_err());
    }
}
