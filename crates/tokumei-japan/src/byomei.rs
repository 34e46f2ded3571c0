//! 傷病名コード (the 7-digit disease codes of レセプト電算処理システム claims) and their ICD-10 codes, as
//! the 社会保険診療報酬支払基金 傷病名マスター gives them.
//!
//! The table is data (`data/byomei_icd10.tsv`: `byomei_code`, `icd10`, `name_ja`), and holds only rows
//! read in the master (see `data/SOURCES.md`); a code not in it has no ICD-10 here, and the uncoded
//! disease name `0000999` (未コード化傷病名) never has one. An operator who needs more codes replaces the
//! table with the master's rows.

use std::collections::HashMap;
use std::sync::LazyLock;

const TABLE: &str = include_str!("../data/byomei_icd10.tsv");

/// One row of the shipped table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Byomei {
    /// 傷病名コード, 7 digits (`8840107`).
    pub code: &'static str,
    /// The master's ICD-10 code, without a dot (`I10`, `E785`).
    pub icd10: &'static str,
    /// The master's 傷病名 as written there (full-width characters, `本態性高血圧症`).
    pub name: &'static str,
}

/// A row of the table, or `None` if it is not three fields of the expected forms.
fn parse_row(line: &'static str) -> Option<Byomei> {
    let [code, icd10, name] = crate::three_fields(line)?;
    let row = Byomei { code, icd10, name };
    let code_ok = row.code.len() == 7 && row.code.bytes().all(|b| b.is_ascii_digit());
    let icd_ok = crate::icd10::category(row.icd10).is_some_and(|c| row.icd10.starts_with(&c))
        && row.icd10.len() <= 5
        && row.icd10.bytes().all(|b| b.is_ascii_alphanumeric());
    (code_ok && icd_ok && !row.name.is_empty()).then_some(row)
}

/// The rows of a table text: the header line and comment lines (`#`) are skipped, and so is any row
/// that does not parse.
fn parse(text: &'static str) -> Vec<Byomei> {
    crate::data_lines(text).filter_map(parse_row).collect()
}

static ROWS: LazyLock<Vec<Byomei>> = LazyLock::new(|| parse(TABLE));

static BY_CODE: LazyLock<HashMap<&'static str, &'static Byomei>> =
    LazyLock::new(|| ROWS.iter().map(|r| (r.code, r)).collect());

/// The shipped rows, in file order (code order).
pub fn rows() -> &'static [Byomei] {
    &ROWS
}

/// The ICD-10 code of a 傷病名コード (`8840107` → `I10`), or `None` for a code not in the table.
pub fn icd10_of(byomei_code: &str) -> Option<&'static str> {
    BY_CODE.get(byomei_code).map(|r| r.icd10)
}

/// The master's 傷病名 of a 傷病名コード, or `None` for a code not in the table.
pub fn name_of(byomei_code: &str) -> Option<&'static str> {
    BY_CODE.get(byomei_code).map(|r| r.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses_completely() {
        let lines = crate::data_lines(TABLE).count();
        assert_eq!(rows().len(), lines, "every data line is a valid row");
        assert_eq!(rows().len(), 23);
        let mut codes: Vec<&str> = rows().iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), rows().len(), "codes are unique");
        assert!(rows()
            .iter()
            .all(|r| crate::icd10::chapter_of_code(r.icd10).is_some()));
    }

    #[test]
    fn codes_map_to_the_masters_icd10() {
        assert_eq!(icd10_of("8840107"), Some("I10"));
        assert_eq!(icd10_of("2500015"), Some("E11"));
        assert_eq!(icd10_of("8842549"), Some("G309"));
        assert_eq!(name_of("8840107"), Some("本態性高血圧症"));
        assert_eq!(icd10_of("0000999"), None, "未コード化傷病名 has no ICD-10");
        assert_eq!(icd10_of("8833421"), None);
        assert_eq!(icd10_of(""), None);
        assert_eq!(icd10_of(" 8840107"), None);
        assert_eq!(name_of("1234567"), None);
    }

    #[test]
    fn malformed_lines_are_skipped_without_panic() {
        let text = "byomei_code\ticd10\tname_ja\n\
                    8840107\tI10\t本態性高血圧症\n\
                    \n\
                    884010\tI10\t短い\n\
                    8840108\t\t空\n\
                    8840109\tI10\n\
                    8840110\tD619\t名\t余分\n\
                    88401１1\tI10\t全角\n\
                    8840112\t10I\t逆\n\
                    8840113\tI10.0\t点\n\
                    8840114\tI10\t\n\
                    # comment\n\
                    2500015\tE11\t２型糖尿病";
        let rows = parse(text);
        let codes: Vec<&str> = rows.iter().map(|r| r.code).collect();
        assert_eq!(codes, ["8840107", "2500015"]);
        assert!(parse("").is_empty());
        assert!(parse("byomei_code\ticd10\tname_ja").is_empty());
    }
}
