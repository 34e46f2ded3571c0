//! レセ電 医薬品コード (the 9-digit drug codes of レセプト電算処理システム claims) and their
//! 薬価基準収載医薬品コード (the 12-character codes whose first digits are the drug's class: 薬効分類),
//! as the 社会保険診療報酬支払基金 医薬品マスター gives them.
//!
//! The table is data (`data/drug_yj.tsv`: `receipt_code`, `yj_code`, `name_ja`) and holds only rows
//! read in the master (see `data/SOURCES.md`); a code not in it has no class here. An operator who
//! needs more codes replaces the table with the master's rows (its 医薬品コード and
//! 薬価基準収載医薬品コード columns).

use std::collections::HashMap;
use std::sync::LazyLock;

const TABLE: &str = include_str!("../data/drug_yj.tsv");

/// One row of the shipped table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drug {
    /// レセ電 医薬品コード, 9 digits (`622242501`).
    pub code: &'static str,
    /// 薬価基準収載医薬品コード, 12 characters (`3962002F3023`).
    pub yj: &'static str,
    /// The master's 漢字名称 (`メトグルコ錠５００ｍｇ`).
    pub name: &'static str,
}

/// Whether `code` has the form of a 薬価基準収載医薬品コード or YJ code: 12 ASCII letters and digits,
/// the first four digits (the 薬効分類).
pub fn is_yj(code: &str) -> bool {
    code.len() == 12
        && code.bytes().all(|b| b.is_ascii_alphanumeric())
        && code.as_bytes()[..4].iter().all(u8::is_ascii_digit)
}

fn parse_row(line: &'static str) -> Option<Drug> {
    let [code, yj, name] = crate::three_fields(line)?;
    let row = Drug { code, yj, name };
    let code_ok = row.code.len() == 9 && row.code.bytes().all(|b| b.is_ascii_digit());
    (code_ok && is_yj(row.yj) && !row.name.is_empty()).then_some(row)
}

static ROWS: LazyLock<Vec<Drug>> =
    LazyLock::new(|| crate::data_lines(TABLE).filter_map(parse_row).collect());

static BY_CODE: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| ROWS.iter().map(|r| (r.code, r.yj)).collect());

/// The shipped rows, in file order (code order).
pub fn rows() -> &'static [Drug] {
    &ROWS
}

/// The 薬価基準収載医薬品コード of a レセ電 医薬品コード (`622242501` → `3962002F3023`), or `None` for a
/// code not in the table.
pub fn yj_of(receipt_code: &str) -> Option<&'static str> {
    BY_CODE.get(receipt_code).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses_completely() {
        let lines = crate::data_lines(TABLE).count();
        assert_eq!(rows().len(), lines, "every data line is a valid row");
        assert_eq!(rows().len(), 31);
        let codes: Vec<&str> = rows().iter().map(|r| r.code).collect();
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "sorted, each code once"
        );
        assert_eq!(yj_of("622242501"), Some("3962002F3023"));
        assert_eq!(yj_of("622242502"), None);
        assert!(is_yj("2149046F3026") && !is_yj("622242501") && !is_yj("21490４6F3026"));
    }
}
