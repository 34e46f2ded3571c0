//! Plain-text tables: a header row and rows, columns padded by display width (a kanji or kana
//! takes two columns of a terminal, a Latin letter one), so that Japanese text lines up.

use unicode_width::UnicodeWidthStr;

/// Gap between columns.
const GAP: &str = "  ";

/// A table to print.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty; control characters become spaces).
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        self.rows
            .push(cells.iter().map(|c| clean(c.as_ref())).collect());
    }

    /// The table as lines: the header, then every row; the last column is not padded.
    pub fn render(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i > 0 {
                    line.push_str(GAP);
                }
                line.push_str(cell);
                if i + 1 < widths.len() {
                    line.push_str(&" ".repeat(width - cell.width()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(cell.width()),
                    None => widths.push(cell.width()),
                }
            }
        }
        widths
    }
}

/// A cell without tabs, line breaks or other control characters (they would break the columns).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The display column at which `needle` starts on `line`.
    fn column(line: &str, needle: &str) -> usize {
        let at = line.find(needle).expect("needle");
        line[..at].width()
    }

    #[test]
    fn japanese_text_lines_up_by_display_width() {
        let mut t = Table::new(&["user", "name", "affiliation"]);
        t.row(&["chair", "委員長 山田", "架空大学"]);
        t.row(&["ext", "Smith", "弁護士会"]);
        t.row(&["m3", "ｶﾅ", "-"]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "user   name         affiliation");
        // The third column starts at the same display column on every line, although the second
        // holds 11 bytes of kanji, 5 Latin letters or 2 half-width kana.
        let at = column(lines[0], "affiliation");
        assert_eq!(column(lines[1], "架空大学"), at, "{text}");
        assert_eq!(column(lines[2], "弁護士会"), at, "{text}");
        assert_eq!(column(lines[3], "-"), at, "{text}");
        assert_eq!(lines[1], "chair  委員長 山田  架空大学");
    }

    #[test]
    fn the_last_column_is_not_padded_and_control_characters_are_spaces() {
        let mut t = Table::new(&["a", "reason"]);
        t.row(&["long value", "line one\nline\ttwo"]);
        t.row(&["x"]);
        let text = t.render();
        assert_eq!(
            text, "a           reason\nlong value  line one line two\nx\n",
            "{text}"
        );
    }
}
