//! Output helpers shared by commands: CSV cells that spreadsheets cannot execute,
//! terminal tables whose cells cannot move the cursor, and number formatting.

use crate::report::ads::Money;
pub use crate::report::export::{csv_cell, csv_line};

/// A percentage with one decimal, or `-` when there is none (no denominator).
pub fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into())
}

/// Amounts in several currencies, or `-` for none.
pub fn money(m: &[Money]) -> String {
    Money::list(m, ", ", "-")
}

/// Makes a stored string safe for a terminal: control characters (ESC sequences,
/// carriage returns) and invisible format characters (bidi overrides such as U+202E
/// that make `gpj.exe` read as `exe.jpg`, zero-width spaces) become `�`, and long
/// values are cut to `max` characters.
pub fn term_cell(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_control() || is_format(c) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
}

/// Unicode's invisible format characters (general category Cf) that can reorder or
/// hide text: bidi controls, zero-width characters, the BOM, interlinear annotation
/// and tag characters.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// Writes one CSV record (cells made inert by [`csv_cell`]).
pub fn write_csv_row(out: &mut impl std::io::Write, cells: &[String]) -> std::io::Result<()> {
    out.write_all(csv_line(cells).as_bytes())
}

/// Prints a list: a JSON array with `--json`; else `empty` when there is nothing to
/// list (when given), or a table with `header`, a row per item.
pub fn print_list<T>(
    json: bool,
    items: &[T],
    as_json: impl Fn(&T) -> serde_json::Value,
    header: &[&str],
    as_row: impl Fn(&T) -> Vec<String>,
    empty: Option<&str>,
) {
    if json {
        let list = items.iter().map(as_json).collect();
        println!("{}", serde_json::Value::Array(list));
    } else if let (true, Some(message)) = (items.is_empty(), empty) {
        println!("{message}");
    } else {
        print!("{}", table_of(header, items, as_row));
    }
}

/// A table with `header` and a row per item.
pub fn table_of<T>(header: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) -> String {
    table(header, &items.iter().map(row).collect::<Vec<_>>())
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
        // A right-to-left override and a zero-width space cannot disguise a value.
        assert_eq!(term_cell("/dl/\u{202E}gpj.exe", 40), "/dl/\u{fffd}gpj.exe");
        assert_eq!(term_cell("pay\u{200B}pal", 40), "pay\u{fffd}pal");
        assert_eq!(
            term_cell("\u{2067}x\u{2069}\u{FEFF}", 40),
            "\u{fffd}x\u{fffd}\u{fffd}"
        );
        assert_eq!(term_cell("Zürich – ok", 40), "Zürich – ok");
    }
}
