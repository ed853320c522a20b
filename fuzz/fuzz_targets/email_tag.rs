//! The email tagger: any HTML tags or fails cleanly, and the recipient id never
//! appears in clear in what it writes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pixeltrack::tag::{Recipient, Tagger};
use pixeltrack::token::Keyring;

fuzz_target!(|data: &[u8]| {
    let Ok(html) = std::str::from_utf8(data) else {
        return;
    };
    let ring = Keyring::from_masters(vec![(1, [9u8; 32])]);
    let tagger = Tagger {
        keyring: &ring,
        base: "https://t.example",
        site_id: 1,
        campaign_id: 1,
    };
    if let Ok(t) = tagger.tag(html, Recipient::Id("zq7-recipient")) {
        let before = html.matches("zq7-recipient").count();
        assert!(
            t.html.matches("zq7-recipient").count() <= before,
            "the recipient id leaked into the tagged HTML"
        );
    }
});
