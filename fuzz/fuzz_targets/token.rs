//! Email and ad link tokens: any string presented on any route, and any plaintext
//! sealed with a real key, opens to a token or an error — never a panic; a token
//! only opens on its own route.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pixeltrack::token::{Keyring, TokenRoute};

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::from_masters(vec![(1, [7u8; 32])]);
    if let Ok(s) = std::str::from_utf8(data) {
        for route in [TokenRoute::Open, TokenRoute::Click, TokenRoute::Withdraw] {
            let _ = ring.open_email(s, route);
        }
    }
    if let Some(sealed) = ring.seal(data) {
        assert_eq!(ring.open(&sealed).as_deref(), Ok(data), "seal then open");
        let mut opened = 0;
        for route in [TokenRoute::Open, TokenRoute::Click, TokenRoute::Withdraw] {
            opened += usize::from(ring.open_email(&sealed, route).is_ok());
        }
        assert!(opened <= 1, "a token opens on one route at most");
    }
});
