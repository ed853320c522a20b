//! Personal data and identifiers in a URL: what makes a link or pixel say who is reading.
//!
//! Leaks (reported wherever they appear): email addresses in clear, percent-encoded or
//! base64-encoded, in a query value or a path segment; hashed email addresses, names,
//! phone numbers and recipient ids in parameters named for them; merge tags that a
//! sending platform will fill with those (`?email=*|EMAIL|*`). Identifiers (evidence that
//! a tiny image is a per-reader pixel, not a spacer): a parameter named like a user or
//! recipient id, an id-like value of a short name (`e`, `id`, `cid`…), or an opaque token
//! (a UUID, or 20+ characters of mixed letters and digits) in a value or path segment.

use std::sync::LazyLock;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use percent_encoding::percent_decode_str;
use regex::Regex;
use url::Url;

/// Where in the URL a leak sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A query parameter, by its (decoded) name.
    Param(String),
    /// A path segment.
    Path,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Percent,
    Base64,
}

/// Personal data in a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leak {
    Email(Place, Encoding),
    HashedEmail(Place),
    Name(Place),
    Phone(Place),
    RecipientId(Place),
    /// A merge tag (`*|EMAIL|*`, `{{ email }}`) the sending platform fills with `what`.
    MergeTag {
        place: Place,
        tag: String,
        what: &'static str,
    },
}

impl Leak {
    /// What is leaked, for risk notes: "email address", "name"…
    pub fn what(&self) -> &'static str {
        match self {
            Leak::Email(..) => "email address",
            Leak::HashedEmail(_) => "hashed email address",
            Leak::Name(_) => "name",
            Leak::Phone(_) => "phone number",
            Leak::RecipientId(_) => "recipient id",
            Leak::MergeTag { what, .. } => what,
        }
    }

    /// A stable code for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Leak::Email(..) => "pii_email",
            Leak::HashedEmail(_) => "pii_hashed_email",
            Leak::Name(_) => "pii_name",
            Leak::Phone(_) => "pii_phone",
            Leak::RecipientId(_) => "pii_recipient_id",
            Leak::MergeTag { .. } => "pii_merge_tag",
        }
    }

    /// The reason as a sentence.
    pub fn describe(&self) -> String {
        let at = |p: &Place| match p {
            Place::Param(n) => format!("parameter `{n}`"),
            Place::Path => "the path".to_owned(),
        };
        match self {
            Leak::Email(p, Encoding::Plain) => {
                format!("{} carries an email address in clear", at(p))
            }
            Leak::Email(p, Encoding::Percent) => {
                format!(
                    "{} carries a percent-encoded email address (in clear once decoded)",
                    at(p)
                )
            }
            Leak::Email(p, Encoding::Base64) => {
                format!(
                    "{} carries a base64-encoded email address (in clear once decoded)",
                    at(p)
                )
            }
            Leak::HashedEmail(p) => format!(
                "{} carries a hashed email address (the same id for the person everywhere)",
                at(p)
            ),
            Leak::Name(p) => format!("{} carries a person's name", at(p)),
            Leak::Phone(p) => format!("{} carries a phone number", at(p)),
            Leak::RecipientId(p) => format!("{} carries a recipient id in clear", at(p)),
            Leak::MergeTag { place, tag, what } => format!(
                "{} is filled with the recipient's {what} by the merge tag {tag}",
                at(place)
            ),
        }
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+\-]{1,64}@(?:[a-z0-9\-]{1,63}\.)+([a-z]{2,24})\b").unwrap()
});

/// "Top-level domains" that are file extensions: `logo@2x.png` is not an address.
const NOT_TLDS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "css", "js", "mjs", "json",
    "htm", "html", "php", "asp", "aspx", "pdf", "txt", "xml", "woff", "woff2", "ttf", "mp4",
    "webm",
];

static MERGE_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:\{\{\s*([^{}]{1,60}?)\s*\}\}|\*\|([A-Za-z0-9_:]{1,60})\|\*|%%([A-Za-z0-9_ ]{1,60})%%|\{\$([A-Za-z0-9_.]{1,60})\}|\[([A-Za-z0-9_ ]{1,40})\])$",
    )
    .unwrap()
});

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").unwrap()
});

/// Parameter names (normalised: lowercase, no `_ - .`) of a recipient or user id.
const ID_NAMES: &[&str] = &[
    "uid",
    "userid",
    "subscriber",
    "subscriberid",
    "subid",
    "recipient",
    "recipientid",
    "rcpt",
    "contactid",
    "memberid",
    "customerid",
    "custid",
    "leadid",
    "mceid",
    "visitorid",
    "personid",
    "profileid",
    "emailid",
    "listmemberid",
    "subscriberuuid",
];

/// Short or generic names that carry an id when their value looks like one.
const WEAK_ID_NAMES: &[&str] = &[
    "e", "eid", "id", "cid", "rid", "sid", "u", "r", "user", "contact", "member", "mid", "k",
    "token", "t", "hash", "h", "x", "upn", "q",
];

const NAME_NAMES: &[&str] = &[
    "name",
    "fname",
    "firstname",
    "lname",
    "lastname",
    "fullname",
    "surname",
    "givenname",
    "familyname",
    "contactname",
    "customername",
];

const PHONE_NAMES: &[&str] = &[
    "phone",
    "tel",
    "telephone",
    "mobile",
    "msisdn",
    "phonenumber",
    "cell",
];

const HASH_NAMES: &[&str] = &[
    "em",
    "hem",
    "hashedemail",
    "emailhash",
    "sha256email",
    "emailsha256",
    "md5email",
    "emailmd5",
    "sha1email",
    "emailsha1",
];

/// A parameter name, normalised: `ud[em]` → `em`, `User_ID` → `userid`.
fn norm(name: &str) -> String {
    let inner = match (name.rfind('['), name.rfind(']')) {
        (Some(a), Some(b)) if a < b => &name[a + 1..b],
        _ => name,
    };
    inner
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn decode_form(s: &str) -> String {
    decode(&s.replace('+', " "))
}

fn has_email(s: &str) -> bool {
    EMAIL.captures_iter(s).any(|c| {
        let tld = c.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
        !NOT_TLDS.contains(&tld.as_str())
    })
}

static B64: LazyLock<[GeneralPurpose; 2]> = LazyLock::new(|| {
    let cfg = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    [
        GeneralPurpose::new(&base64::alphabet::STANDARD, cfg),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg),
    ]
});

/// Whether `s` is base64 (either alphabet) of UTF-8 text containing an email address.
fn base64_email(s: &str) -> bool {
    let s = s.trim();
    if s.len() < 8
        || s.len() > 4096
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
    {
        return false;
    }
    B64.iter().any(|e| {
        e.decode(s.trim_end_matches('='))
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .is_some_and(|text| has_email(&text))
    })
}

/// How a value carries an email address, if it does: `raw` as written in the URL.
fn email_in(raw: &str) -> Option<Encoding> {
    if has_email(raw) {
        return Some(Encoding::Plain);
    }
    let once = decode(raw);
    if has_email(&once) || has_email(&decode(&once)) {
        return Some(Encoding::Percent);
    }
    (base64_email(&once) || base64_email(raw)).then_some(Encoding::Base64)
}

fn is_hex_hash(v: &str) -> bool {
    matches!(v.len(), 32 | 40 | 64) && v.bytes().all(|b| b.is_ascii_hexdigit())
}

fn looks_like_name(v: &str) -> bool {
    let v = v.trim();
    let letters = v.chars().filter(|c| c.is_alphabetic()).count();
    (2..=60).contains(&v.chars().count())
        && letters >= 2
        && v.chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '.'))
}

fn looks_like_phone(v: &str) -> bool {
    let v = v.trim();
    let digits = v.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '(' | ')' | '-' | '.'))
}

/// A value that is nothing: ids of `0`, `null` and the like identify nobody.
fn is_blank(v: &str) -> bool {
    let v = v.trim();
    v.is_empty()
        || ["0", "null", "none", "undefined", "false", "true", "-"]
            .iter()
            .any(|b| v.eq_ignore_ascii_case(b))
}

/// Whether `s` is an opaque token: a UUID, or 20+ characters of letters, digits and
/// `_ - =` with at least two of each and four switches between letters and digits (so
/// `spacer_600x1_transparent` is not one).
pub fn is_token(s: &str) -> bool {
    if UUID.is_match(s) {
        return true;
    }
    if s.len() < 20
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'='))
    {
        return false;
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let letters = s.bytes().filter(u8::is_ascii_alphabetic).count();
    let switches = s
        .as_bytes()
        .windows(2)
        .filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit())
        .filter(|w| w.iter().all(u8::is_ascii_alphanumeric))
        .count();
    digits >= 2 && letters >= 2 && switches >= 4
}

/// The (raw name, raw value) pairs of the query, as written.
fn raw_pairs(url: &Url) -> Vec<(&str, &str)> {
    url.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// Every leak of personal data in `url`'s query and path.
pub fn leaks(url: &Url) -> Vec<Leak> {
    let mut out = Vec::new();
    for (raw_name, raw_value) in raw_pairs(url) {
        let name = decode_form(raw_name);
        let value = decode_form(raw_value);
        let key = norm(&name);
        let place = Place::Param(name.clone());
        if let Some(c) = MERGE_TAG.captures(value.trim()) {
            let inner = c
                .iter()
                .skip(1)
                .flatten()
                .next()
                .map_or(String::new(), |m| m.as_str().to_ascii_lowercase());
            let what = if inner.contains("mail") {
                Some("email address")
            } else if inner.contains("name") {
                Some("name")
            } else if ["id", "subscriber", "recipient", "contact", "uuid"]
                .iter()
                .any(|k| inner.contains(k))
            {
                Some("recipient id")
            } else {
                None
            };
            if let Some(what) = what {
                out.push(Leak::MergeTag {
                    place,
                    tag: value.trim().to_owned(),
                    what,
                });
            }
            continue;
        }
        if let Some(enc) = email_in(raw_value) {
            out.push(Leak::Email(place, enc));
        } else if (HASH_NAMES.contains(&key.as_str()) || key.contains("email"))
            && is_hex_hash(value.trim())
        {
            out.push(Leak::HashedEmail(place));
        } else if NAME_NAMES.contains(&key.as_str()) && looks_like_name(&value) {
            out.push(Leak::Name(place));
        } else if PHONE_NAMES.contains(&key.as_str()) && looks_like_phone(&value) {
            out.push(Leak::Phone(place));
        } else if ID_NAMES.contains(&key.as_str()) && !is_blank(&value) {
            out.push(Leak::RecipientId(place));
        }
    }
    if let Some(segments) = url.path_segments() {
        for seg in segments {
            if let Some(enc) = email_in(seg) {
                out.push(Leak::Email(Place::Path, enc));
                break;
            }
        }
    }
    out.dedup();
    out
}

/// Why the URL identifies its reader, if it does: a parameter named like an id, an
/// id-like value of a short name, or an opaque token in a value or the path. Evidence
/// that a tiny image is a pixel, not a spacer.
pub fn identifier(url: &Url) -> Option<String> {
    for (raw_name, raw_value) in raw_pairs(url) {
        let name = decode_form(raw_name);
        let value = decode_form(raw_value);
        let value = value.trim();
        let key = norm(&name);
        if is_blank(value) {
            continue;
        }
        if ID_NAMES.contains(&key.as_str()) {
            return Some(format!("parameter `{name}` names the reader"));
        }
        let id_like = value.len() >= 6
            && value.bytes().any(|b| b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'.'));
        if WEAK_ID_NAMES.contains(&key.as_str()) && id_like {
            return Some(format!("parameter `{name}` carries an id"));
        }
        if is_token(value) {
            return Some(format!("parameter `{name}` carries an opaque token"));
        }
    }
    let segments = url.path_segments()?;
    for seg in segments {
        let seg = decode(seg);
        let stem = match seg.rsplit_once('.') {
            Some((stem, ext)) if ext.len() <= 4 => stem,
            _ => seg.as_str(),
        };
        if is_token(stem) {
            return Some("the path carries an opaque token".to_owned());
        }
    }
    None
}

/// Whether the query holds more than versions and cache-busters (every value at most 13
/// digits and dots: `?v=2`, `?cb=1700000000000`).
pub fn has_telling_query(url: &Url) -> bool {
    raw_pairs(url).iter().any(|(_, v)| {
        let v = decode_form(v);
        !(v.len() <= 13 && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    })
}

/// The parameter whose value is another absolute http(s) URL: a redirect wrapping the
/// real destination.
pub fn wrapped_url(url: &Url) -> Option<String> {
    raw_pairs(url).into_iter().find_map(|(n, v)| {
        let v = decode_form(v).to_ascii_lowercase();
        (v.starts_with("http://") || v.starts_with("https://")).then(|| decode_form(n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn p(n: &str) -> Place {
        Place::Param(n.to_owned())
    }

    #[test]
    fn email_addresses_are_found_plain_percent_encoded_and_base64_encoded() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice@example.com");
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode("{\"email\":\"bob.smith+news@mail.example.co.uk\"}");
        let cases: Vec<(String, Vec<Leak>)> = vec![
            (
                "https://t.example/o?e=alice@example.com".into(),
                vec![Leak::Email(p("e"), Encoding::Plain)],
            ),
            (
                "https://t.example/o?email=alice%40example.com".into(),
                vec![Leak::Email(p("email"), Encoding::Percent)],
            ),
            (
                "https://t.example/o?u=https%253A%252F%252Fx%253Fm%253Dalice%2540example.com"
                    .into(),
                vec![Leak::Email(p("u"), Encoding::Percent)],
            ),
            (
                format!("https://t.example/o?d={}", b64.replace('=', "%3D")),
                vec![Leak::Email(p("d"), Encoding::Base64)],
            ),
            (
                format!("https://t.example/o?d={b64url}"),
                vec![Leak::Email(p("d"), Encoding::Base64)],
            ),
            (
                format!("https://t.example/open/{b64url}/x.gif"),
                vec![Leak::Email(Place::Path, Encoding::Base64)],
            ),
            (
                "https://t.example/u/alice%40example.com/open.gif".into(),
                vec![Leak::Email(Place::Path, Encoding::Percent)],
            ),
            // Not addresses: retina image names, a bare @, a mailto-free plain page.
            ("https://cdn.example/img/logo@2x.png?v=2".into(), vec![]),
            ("https://example.com/@alice".into(), vec![]),
            (
                "https://example.com/pricing?utm_source=news&utm_medium=email".into(),
                vec![],
            ),
        ];
        for (u, want) in cases {
            assert_eq!(leaks(&url(&u)), want, "{u}");
        }
    }

    #[test]
    fn names_phones_hashes_ids_and_merge_tags_are_found_by_parameter() {
        let h = "5d41402abc4b2a76b9719d911017c592";
        let cases: Vec<(String, Vec<Leak>)> = vec![
            (
                "https://x.example/?fname=Alice&last_name=O%27Brien".into(),
                vec![Leak::Name(p("fname")), Leak::Name(p("last_name"))],
            ),
            (
                "https://x.example/?phone=%2B44+20+7946+0958".into(),
                vec![Leak::Phone(p("phone"))],
            ),
            (
                format!("https://x.example/tr?ud[em]={h}"),
                vec![Leak::HashedEmail(p("ud[em]"))],
            ),
            (
                "https://x.example/?subscriber_id=8812&uid=0".into(),
                vec![Leak::RecipientId(p("subscriber_id"))],
            ),
            (
                "https://x.example/?email=*|EMAIL|*".into(),
                vec![Leak::MergeTag {
                    place: p("email"),
                    tag: "*|EMAIL|*".into(),
                    what: "email address",
                }],
            ),
            (
                "https://x.example/?n=%7B%7B%20first_name%20%7D%7D".into(),
                vec![Leak::MergeTag {
                    place: p("n"),
                    tag: "{{ first_name }}".into(),
                    what: "name",
                }],
            ),
            (
                "https://x.example/o.gif?r={{subscriber_id}}".into(),
                vec![Leak::MergeTag {
                    place: p("r"),
                    tag: "{{subscriber_id}}".into(),
                    what: "recipient id",
                }],
            ),
            // Names of things that are not people, and numbers that are not phones.
            (
                "https://x.example/?name=&phone=12&id=42&s=k3v9q2mzx7ab".into(),
                vec![],
            ),
            ("https://x.example/?name=Widget%202000".into(), vec![]),
        ];
        for (u, want) in cases {
            assert_eq!(leaks(&url(&u)), want, "{u}");
        }
    }

    #[test]
    fn identifiers_tell_a_pixel_from_a_spacer() {
        for u in [
            "https://t.example/open.gif?uid=42",
            "https://t.example/open.gif?e=a81bc81b",
            "https://t.example/open.gif?upn=u001.Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA",
            "https://t.example/o/8f14e45f-ceea-467f-a8b2-0a0b7c1d2e3f.gif",
            "https://t.example/track/q7Zk3mP9x2Lw8Rt4Vn6Y/open.gif",
        ] {
            assert!(identifier(&url(u)).is_some(), "{u}");
        }
        for u in [
            "https://cdn.example/spacer.gif",
            "https://cdn.example/spacer.gif?v=2",
            "https://cdn.example/img/spacer_600x1_transparent.gif",
            "https://cdn.example/pixel.gif?id=42",
            "https://cdn.example/s.gif?e=",
        ] {
            assert_eq!(identifier(&url(u)), None, "{u}");
        }
    }

    #[test]
    fn cache_busters_are_not_telling_and_wrapped_destinations_are_seen() {
        assert!(!has_telling_query(&url(
            "https://c.example/s.gif?v=2&cb=1700000000000"
        )));
        assert!(!has_telling_query(&url("https://c.example/s.gif")));
        assert!(has_telling_query(&url(
            "https://c.example/s.gif?campaign=spring"
        )));
        assert_eq!(
            wrapped_url(&url(
                "https://r.example/r?to=https%3A%2F%2Fshop.example%2F&rid=1"
            )),
            Some("to".to_owned())
        );
        assert_eq!(
            wrapped_url(&url("https://shop.example/?utm_source=x")),
            None
        );
    }
}
