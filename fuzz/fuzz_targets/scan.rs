//! `pixeltrack scan`: any bytes, as a page and as an email, scan or fail cleanly, and
//! the report adds up (every finding has a reason; the counts match the groups).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pixeltrack::scan::patterns::Patterns;
use pixeltrack::scan::{scan_email, scan_html, Report};

fn check(r: &Report) {
    assert_eq!(r.found, !r.vendors.is_empty());
    assert_eq!(r.trackers, r.vendors.len());
    let n: usize = r.vendors.iter().map(|v| v.findings.len()).sum();
    assert_eq!(r.findings, n);
    for f in r.vendors.iter().flat_map(|v| &v.findings) {
        assert!(!f.reasons.is_empty(), "a finding without a reason");
        assert!(f.count >= 1);
    }
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static PATTERNS: Patterns = Patterns::builtin().expect("built-in patterns");
    }
    PATTERNS.with(|p| {
        if let Ok(r) = scan_html(p, "fuzz", &String::from_utf8_lossy(data), None) {
            check(&r);
        }
        if let Ok(r) = scan_email(p, "fuzz", data) {
            check(&r);
        }
    });
});
