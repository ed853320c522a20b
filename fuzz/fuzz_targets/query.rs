//! The pixel's query-string parser: arbitrary bytes (as the HTTP layer would pass
//! them, when UTF-8) never panic, and a parsed hit holds no NUL.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = pixeltrack::collect::query::parse(q) {
        for v in [&p.site, &p.url, &p.referrer, &p.title, &p.event]
            .into_iter()
            .flatten()
        {
            assert!(!v.contains('\0'), "NUL accepted in {v:?}");
        }
    }
    let _ = pixeltrack::collect::query::param(q, "s");
});
