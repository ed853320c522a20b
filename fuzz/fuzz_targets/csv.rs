//! CSV cells: whatever the values (quotes, commas, newlines, formulas), a line reads
//! back as the same cells — each formula-looking one with its leading `'` — and no
//! cell starts with a formula character.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pixeltrack::report::export::csv_line;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Rows always have several columns (a lone empty cell is an empty line, which CSV
    // readers skip): a fixed first cell, then the fuzzed ones.
    let mut cells = vec!["ts".to_owned()];
    cells.extend(s.split('\u{1f}').map(str::to_owned));
    let line = csv_line(&cells);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let rec = r.records().next().expect("one record").expect("valid CSV");
    assert_eq!(rec.len(), cells.len(), "{line:?}");
    for (got, want) in rec.iter().zip(&cells) {
        let formula = want.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let expected = if formula {
            format!("'{want}")
        } else {
            want.clone()
        };
        assert_eq!(got, expected, "{line:?}");
        assert!(
            !got.starts_with(['=', '+', '-', '@']),
            "formula cell {got:?}"
        );
    }
});
