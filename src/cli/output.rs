//! Output helpers shared by commands: CSV cells that spreadsheets cannot execute,
//! terminal tables whose cells cannot move the cursor, and number formatting.

pub use crate::report::export::{csv_cell, csv_line};

/// Makes a stored string safe for a terminal: control characters (ESC sequences,
/// carriage returns) become `�`, and long values are cut to `max` characters.
pub fn term_cell(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
}

/// A plain text table with a header row; numbers right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let fmt_row = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate().take(cols) {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if i > 0
                && c.chars()
                    .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == '%' || ch == 's')
            {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            }
        }
        line.trim_end().to_owned() + "\n"
    };
    let mut out = fmt_row(header.to_vec());
    out.push_str(&fmt_row(
        width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for r in rows {
        out.push_str(&fmt_row(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("plain"), "plain");
    }

    #[test]
    fn terminal_cells_cannot_carry_escapes() {
        assert_eq!(term_cell("\u{1b}[31mred", 20), "\u{fffd}[31mred");
        assert_eq!(term_cell("abcdef", 4), "abc…");
    }
}
