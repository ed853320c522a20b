//! The tracker's `POST /e` body: any bytes give parameters or a refusal, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = pixeltrack::collect::web::event_params(data) {
        assert!(p.site.is_some(), "a body without a site is refused");
    }
});
