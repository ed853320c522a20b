//! Random secrets and their hashes, in one place: every key, salt, token, session id,
//! password and site key is drawn here from the operating system's CSPRNG; secrets
//! that are looked up (API tokens, share links, sessions) are stored only as their
//! SHA-256, which is enough because they carry 256 random bits; and presented secrets
//! are compared in constant time. Used by `enrich` (salts), `token` (master keys),
//! `model` (site keys), `api`, `web` and `cli`. The one function here that writes is
//! [`issue_api_token`], so the CLI and the dashboard issue API tokens alike.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::store::{ApiToken, Scope, StoreError, TokenStore};

/// Prefix of every API token, so leaked tokens are easy to recognise (and scan for).
pub const API_TOKEN_PREFIX: &str = "pt_";
/// Prefix of dashboard share-link secrets, which the API refuses (403).
pub const SHARE_PREFIX: &str = "pts_";

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // The OS generator failing is not recoverable: refusing to run beats weak secrets.
    getrandom::fill(buf).expect("operating system random generator failed");
}

/// 256 random bits, URL-safe base64 without padding (43 characters).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `len` characters drawn uniformly from `alphabet` (1 to 256 ASCII characters):
/// rejection sampling keeps every character equally likely.
pub fn random_chars(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut buf = [0u8; 32];
        fill_random(&mut buf);
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// SHA-256 as lowercase hex: how looked-up secrets are stored (no slow hash is needed
/// for 256 random bits), and the content hash in asset URLs.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    Sha256::digest(data.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time comparison, so a secret cannot be guessed byte by byte from timings
/// (the length is not secret).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Creates an API token (CLI and dashboard): stores only its hash and returns its id
/// and the secret, which is shown once. `Err` names what is wrong with the name.
pub fn issue_api_token(
    store: &dyn TokenStore,
    name: &str,
    scope: Scope,
    site_id: Option<i64>,
    now: Millis,
) -> Result<(i64, String), StoreError> {
    let name = name.trim();
    if name.len() > 200 || name.chars().any(char::is_control) {
        return Err(StoreError::Conflict(
            "a token name is at most 200 characters without control characters".into(),
        ));
    }
    let secret = format!("{API_TOKEN_PREFIX}{}", random_token());
    let t = ApiToken {
        id: 0,
        name: name.to_owned(),
        scope,
        site_id,
        created_ms: now,
    };
    let id = store.add_api_token(&t, &sha256_hex(&secret))?;
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(!constant_time_eq("", "x"));
    }

    #[test]
    fn random_strings_have_their_length_and_alphabet_and_differ() {
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token());
        let s = random_chars(b"ab2", 40);
        assert_eq!(s.len(), 40);
        assert!(s.bytes().all(|b| b"ab2".contains(&b)), "{s}");
        assert_eq!(sha256_hex("abc").len(), 64);
        assert_eq!(
            &sha256_hex("abc")[..16],
            "ba7816bf8f01cfea",
            "the FIPS 180-2 test vector"
        );
    }
}
