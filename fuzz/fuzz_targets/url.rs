//! Page URL and referrer normalisation: any input never panics, and what comes out is
//! cleaned (no control characters in host or path).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = s.split_at(
        s.char_indices()
            .nth(s.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    let page = pixeltrack::enrich::page::parse(a, "ptclid");
    for v in [&page.host, &page.path] {
        assert!(
            !v.chars().any(char::is_control),
            "control character in {v:?}"
        );
    }
    let r = pixeltrack::enrich::referrer::classify(b, &page.host, "example.com");
    assert!(
        !r.host.chars().any(char::is_control),
        "control character in {:?}",
        r.host
    );
    let _ = pixeltrack::token::destination(s);
    let _ = pixeltrack::enrich::page::clean_text(s, 200);
});
