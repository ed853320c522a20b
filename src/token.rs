//! Opaque signed tokens for email opens and clicks, and for ad click links.
//!
//! A token is `base64url(version ‖ key id ‖ nonce ‖ ciphertext ‖ tag)`: the payload
//! (site, campaign, recipient, destination) is encrypted with ChaCha20 and the whole
//! is authenticated with HMAC-SHA256 (encrypt-then-MAC), so no recipient id or email
//! address is readable in a URL, and any changed byte fails the check, which is
//! constant-time. The nonce is synthetic (an HMAC of the plaintext), so the same link
//! always gives the same token and a nonce never repeats for different payloads.
//!
//! Keys rotate: every key in the ring verifies, the newest signs. Each 32-byte master
//! key yields separate encryption, nonce and MAC keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Longest token accepted before any decoding (a destination URL is at most 2 KiB).
pub const MAX_TOKEN_LEN: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("token signature does not match")]
    BadSignature,
    /// A valid token of another kind: an ad link on the open route, an open pixel
    /// on the click route. Each kind works only on its own route.
    #[error("token of another kind than this route takes")]
    WrongRoute,
}

/// One master key and the keys derived from it.
#[derive(Clone)]
pub struct Key {
    pub id: u8,
    enc: [u8; 32],
    iv: [u8; 32],
    mac: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key {{ id: {}, <secret> }}", self.id)
    }
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(master).expect("any key length");
    m.update(b"pixeltrack token v1 ");
    m.update(label);
    m.finalize().into_bytes().into()
}

impl Key {
    pub fn new(id: u8, master: &[u8; 32]) -> Key {
        Key {
            id,
            enc: derive(master, b"enc"),
            iv: derive(master, b"iv"),
            mac: derive(master, b"mac"),
        }
    }
}

/// The keys that verify; the last one signs.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// `keys` in any order; the highest id signs.
    pub fn new(mut keys: Vec<Key>) -> Keyring {
        keys.sort_by_key(|k| k.id);
        Keyring { keys }
    }

    /// A keyring from stored `(id, master key)` pairs.
    pub fn from_masters(keys: Vec<(u8, [u8; 32])>) -> Keyring {
        Keyring::new(keys.into_iter().map(|(id, k)| Key::new(id, &k)).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Seals `plaintext` with the newest key; None without a key, or when the token
    /// would be longer than [`open`](Self::open) accepts (found by fuzzing: a long
    /// enough plaintext sealed into a token that could never be opened).
    pub fn seal(&self, plaintext: &[u8]) -> Option<String> {
        let key = self.keys.last()?;
        let raw_len = 2 + NONCE_LEN + plaintext.len() + TAG_LEN;
        if raw_len.div_ceil(3) * 4 > MAX_TOKEN_LEN {
            return None;
        }
        let mut nonce_mac = HmacSha256::new_from_slice(&key.iv).expect("any key length");
        nonce_mac.update(plaintext);
        let full = nonce_mac.finalize().into_bytes();
        let nonce = &full[..NONCE_LEN];
        let mut out = Vec::with_capacity(2 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.push(key.id);
        out.extend_from_slice(nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let mut cipher = chacha20::ChaCha20::new(&key.enc.into(), nonce.into());
        cipher.apply_keystream(&mut out[start..]);
        let mut mac = HmacSha256::new_from_slice(&key.mac).expect("any key length");
        mac.update(&out);
        let tag = mac.finalize().into_bytes();
        out.extend_from_slice(&tag[..TAG_LEN]);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        if raw.len() < 2 + NONCE_LEN + TAG_LEN || raw[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == raw[1])
            .ok_or(TokenError::UnknownKey)?;
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut mac = HmacSha256::new_from_slice(&key.mac).expect("any key length");
        mac.update(body);
        // Constant-time comparison of the truncated tag.
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::BadSignature)?;
        let nonce = &body[2..2 + NONCE_LEN];
        let mut plain = body[2 + NONCE_LEN..].to_vec();
        let mut cipher = chacha20::ChaCha20::new(&key.enc.into(), nonce.into());
        cipher.apply_keystream(&mut plain);
        Ok(plain)
    }
}

/// A fresh random master key.
pub fn random_master() -> [u8; 32] {
    let mut k = [0u8; 32];
    crate::secret::fill_random(&mut k);
    k
}

/// What an email token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Open,
    /// A click to this (validated, normalised) destination.
    Click(String),
    /// The recipient's link to withdraw consent to tracking.
    Withdraw,
    /// An ad link (`pixeltrack link create`): no recipient; the ad and placement it
    /// was made for, and the validated destination.
    AdClick {
        url: String,
        ad: String,
        placement: String,
    },
}

/// The route a token is presented on: `/o/`, `/c/` or `/u/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRoute {
    Open,
    Click,
    Withdraw,
}

impl Action {
    /// The one route this kind of token works on.
    pub fn route(&self) -> TokenRoute {
        match self {
            Action::Open => TokenRoute::Open,
            Action::Click(_) | Action::AdClick { .. } => TokenRoute::Click,
            Action::Withdraw => TokenRoute::Withdraw,
        }
    }

    /// Where a click token redirects to.
    pub fn destination(&self) -> Option<&str> {
        match self {
            Action::Click(u) | Action::AdClick { url: u, .. } => Some(u),
            Action::Open | Action::Withdraw => None,
        }
    }
}

/// A fresh click id for an ad click: 16 characters of lowercase base32 (80 bits),
/// appended to the landing page URL so its pageview and conversion can name the click.
pub fn new_click_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    crate::secret::random_chars(ALPHABET, 16)
}

/// The payload of an open or click token. `recipient: None` is a merge-tag token:
/// the recipient comes from the URL's `r` parameter and is therefore forgeable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailToken {
    pub site_id: i64,
    pub campaign_id: i64,
    pub recipient: Option<String>,
    pub action: Action,
}

/// Longest recipient id and destination URL a token carries.
pub const MAX_RECIPIENT: usize = 256;
pub const MAX_DESTINATION: usize = 2048;

impl EmailToken {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let (kind, url, extra): (u8, &str, &[&str]) = match &self.action {
            Action::Open => (b'o', "", &[]),
            Action::Click(u) => (b'c', u.as_str(), &[]),
            Action::Withdraw => (b'u', "", &[]),
            Action::AdClick { url, ad, placement } => (b'a', url, &[ad, placement]),
        };
        out.push(kind);
        out.push(u8::from(self.recipient.is_some()));
        out.extend_from_slice(&self.site_id.to_le_bytes());
        out.extend_from_slice(&self.campaign_id.to_le_bytes());
        let fields = [self.recipient.as_deref().unwrap_or(""), url];
        for field in fields.iter().chain(extra) {
            out.extend_from_slice(&(field.len() as u16).to_le_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    fn decode(b: &[u8]) -> Option<EmailToken> {
        let kind = *b.first()?;
        let has_recipient = *b.get(1)? == 1;
        let site_id = i64::from_le_bytes(b.get(2..10)?.try_into().ok()?);
        let campaign_id = i64::from_le_bytes(b.get(10..18)?.try_into().ok()?);
        let mut rest = b.get(18..)?;
        let mut field = || -> Option<String> {
            let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
            let s = String::from_utf8(rest.get(2..2 + len)?.to_vec()).ok()?;
            rest = rest.get(2 + len..)?;
            Some(s)
        };
        let recipient = field()?;
        let url = field()?;
        let action = match kind {
            b'o' => Action::Open,
            b'c' => Action::Click(url),
            b'u' => Action::Withdraw,
            b'a' => Action::AdClick {
                url,
                ad: field()?,
                placement: field()?,
            },
            _ => return None,
        };
        Some(EmailToken {
            site_id,
            campaign_id,
            recipient: has_recipient.then_some(recipient),
            action,
        })
    }
}

impl Keyring {
    pub fn seal_email(&self, t: &EmailToken) -> Option<String> {
        self.seal(&t.encode())
    }

    /// Opens a token presented on `route`; a token of another kind is refused.
    pub fn open_email(&self, token: &str, route: TokenRoute) -> Result<EmailToken, TokenError> {
        let t = EmailToken::decode(&self.open(token)?).ok_or(TokenError::Malformed)?;
        if t.action.route() != route {
            return Err(TokenError::WrongRoute);
        }
        Ok(t)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("destination {0:?} refused: {1}")]
pub struct BadDestination(pub String, pub &'static str);

/// Validates a click destination when a link is made: absolute `http(s)` only, a
/// host, no credentials, no control characters (raw or percent-encoded CR, LF, NUL),
/// at most 2 KiB. Returns the normalised URL that is signed and later redirected to.
pub fn destination(raw: &str) -> Result<String, BadDestination> {
    let bad = |why| Err(BadDestination(raw.chars().take(200).collect(), why));
    if raw.len() > MAX_DESTINATION {
        return bad("longer than 2048 bytes");
    }
    if raw.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control characters or backslashes");
    }
    let lower = raw.to_ascii_lowercase();
    if ["%0d", "%0a", "%00"].iter().any(|e| lower.contains(e)) {
        return bad("encoded line breaks or NUL");
    }
    let Some(authority) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return bad("only absolute http:// and https:// links can be tracked");
    };
    if authority.starts_with('/') {
        return bad("no host after the scheme");
    }
    let Ok(url) = url::Url::parse(raw) else {
        return bad("not a valid URL");
    };
    if url.host_str().is_none_or(str::is_empty) {
        return bad("no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("credentials in the address (user@host) are not allowed");
    }
    let out = url.to_string();
    if out.len() > MAX_DESTINATION {
        return bad("longer than 2048 bytes");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[u8]) -> Keyring {
        Keyring::new(ids.iter().map(|i| Key::new(*i, &[*i; 32])).collect())
    }

    #[test]
    fn round_trip_and_opaque() {
        let r = ring(&[1]);
        let t = r.seal(b"recipient alice@example.com").unwrap();
        assert!(!t.contains("alice") && !t.contains('=') && !t.contains('+') && !t.contains('/'));
        assert_eq!(r.open(&t).unwrap(), b"recipient alice@example.com");
        assert_eq!(
            r.seal(b"recipient alice@example.com").unwrap(),
            t,
            "deterministic"
        );
        assert_ne!(r.seal(b"recipient bob@example.com").unwrap(), t);
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/token.rs`): every token `seal` gives can be
    /// opened; a plaintext too long for that is refused instead. The longest real
    /// click token (a 2 KiB destination, a long recipient, ad and placement) fits.
    #[test]
    fn every_sealed_token_opens_and_too_long_ones_are_not_sealed() {
        let r = ring(&[1]);
        for len in [0, 1, 2_000, 3_000, 3_032, 3_033, 3_100, 10_000] {
            let plain = vec![0xA5u8; len];
            match r.seal(&plain) {
                Some(t) => assert_eq!(r.open(&t).unwrap(), plain, "length {len}"),
                None => assert!(len > 3_000, "length {len} refused"),
            }
        }
        let longest = EmailToken {
            site_id: i64::MAX,
            campaign_id: i64::MAX,
            recipient: Some("r".repeat(256)),
            action: Action::AdClick {
                url: format!("https://example.com/{}", "a".repeat(MAX_DESTINATION - 20)),
                ad: "x".repeat(64),
                placement: "y".repeat(64),
            },
        };
        let t = r
            .seal_email(&longest)
            .expect("the longest real token is sealed");
        assert_eq!(r.open_email(&t, TokenRoute::Click), Ok(longest));
    }

    #[test]
    fn every_flipped_byte_is_rejected() {
        let r = ring(&[1]);
        let t = r
            .seal(b"site 1 campaign 2 recipient 3 https://example.com/")
            .unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = raw.clone();
                bad[i] ^= bit;
                let bad = URL_SAFE_NO_PAD.encode(&bad);
                assert!(r.open(&bad).is_err(), "flip of byte {i} accepted");
            }
        }
        assert_eq!(r.open("!!!"), Err(TokenError::Malformed));
        assert_eq!(r.open(""), Err(TokenError::Malformed));
        assert_eq!(
            r.open(&"A".repeat(MAX_TOKEN_LEN + 1)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn email_tokens_round_trip_and_cannot_be_spliced() {
        let r = ring(&[1]);
        let a = EmailToken {
            site_id: 1,
            campaign_id: 7,
            recipient: Some("alice@example.com".into()),
            action: Action::Click("https://example.com/a?x=1".into()),
        };
        let b = EmailToken {
            campaign_id: 8,
            recipient: Some("bob@example.com".into()),
            ..a.clone()
        };
        let (ta, tb) = (r.seal_email(&a).unwrap(), r.seal_email(&b).unwrap());
        assert_eq!(r.open_email(&ta, TokenRoute::Click).unwrap(), a);
        assert!(!ta.contains("alice") && !ta.contains("example"));
        // Campaign A's token with the recipient part of B's: every splice point fails.
        let (ra, rb) = (
            URL_SAFE_NO_PAD.decode(&ta).unwrap(),
            URL_SAFE_NO_PAD.decode(&tb).unwrap(),
        );
        for cut in 1..ra.len().min(rb.len()) {
            let mut spliced = ra[..cut].to_vec();
            spliced.extend_from_slice(&rb[cut..]);
            let spliced = URL_SAFE_NO_PAD.encode(&spliced);
            if spliced != tb {
                for route in [TokenRoute::Open, TokenRoute::Click, TokenRoute::Withdraw] {
                    assert!(
                        r.open_email(&spliced, route).is_err(),
                        "splice at {cut} accepted"
                    );
                }
            }
        }
        let merge = EmailToken {
            recipient: None,
            action: Action::Open,
            ..a
        };
        assert_eq!(
            r.open_email(&r.seal_email(&merge).unwrap(), TokenRoute::Open)
                .unwrap(),
            merge
        );
    }

    /// Each kind of token works on its own route only: an ad link presented to the
    /// open pixel (with any `?r=` recipient) must not record an open.
    #[test]
    fn a_token_works_only_on_its_own_route() {
        let r = ring(&[1]);
        let kinds = [
            Action::Open,
            Action::Click("https://example.com/".into()),
            Action::Withdraw,
            Action::AdClick {
                url: "https://example.com/".into(),
                ad: "a1".into(),
                placement: "p".into(),
            },
        ];
        for action in kinds {
            let t = EmailToken {
                site_id: 1,
                campaign_id: 2,
                recipient: None,
                action: action.clone(),
            };
            let sealed = r.seal_email(&t).unwrap();
            for route in [TokenRoute::Open, TokenRoute::Click, TokenRoute::Withdraw] {
                let opened = r.open_email(&sealed, route);
                if route == action.route() {
                    assert_eq!(opened.unwrap(), t);
                } else {
                    assert_eq!(
                        opened,
                        Err(TokenError::WrongRoute),
                        "{action:?} on {route:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn hostile_destinations_are_refused_at_creation() {
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "https://trusted.example@evil.example",
            "https://evil.example%0d%0aSet-Cookie:%20a=b",
            "/\\evil.example",
            "https://evil.example/\r\nSet-Cookie: a=b",
            "ftp://example.com/",
            "https:///nohost",
            "https://user:pw@example.com/",
            " https://example.com/",
        ] {
            assert!(destination(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            destination("https://Example.com/a b?q=1#x").unwrap(),
            "https://example.com/a%20b?q=1#x"
        );
        assert_eq!(
            destination("HTTP://example.com").unwrap(),
            "http://example.com/"
        );
    }

    #[test]
    fn rotation_old_keys_verify_newest_signs() {
        let old = ring(&[1]);
        let t_old = old.seal(b"x").unwrap();
        let rotated = ring(&[1, 2]);
        assert_eq!(rotated.open(&t_old).unwrap(), b"x");
        let t_new = rotated.seal(b"x").unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t_new).unwrap()[1], 2);
        assert_eq!(old.open(&t_new), Err(TokenError::UnknownKey));
        let retired = ring(&[2]);
        assert_eq!(retired.open(&t_old), Err(TokenError::UnknownKey));
        // Same id, different secret: forged.
        let forged = Keyring::new(vec![Key::new(1, &[9; 32])]);
        assert_eq!(forged.open(&t_old), Err(TokenError::BadSignature));
    }
}
