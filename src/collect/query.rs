//! Pixel query strings, decoded byte-exactly: invalid UTF-8 and NUL bytes are
//! refused rather than silently replaced, so garbage is counted, never stored.

use std::borrow::Cow;

use crate::model::{DropReason, HitParams};

/// Custom props are `p.<key>=<value>`.
const PROP_PREFIX: &str = "p.";

pub(crate) fn decode(raw: &str) -> Result<Cow<'_, str>, DropReason> {
    let b = raw.as_bytes();
    let special = |c: &u8| matches!(c, b'%' | b'+' | 0);
    let Some(first) = b.iter().position(special) else {
        // Nothing to decode (most keys, many values): no copy until one is kept.
        return Ok(Cow::Borrowed(raw));
    };
    // `+` is a space; `%XY` is the byte 0xXY (so `%2B` is a `+`, not a space); a `%`
    // not followed by two hex digits stays as it is. Runs of other bytes are copied
    // whole.
    let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16)).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..first]);
    let mut i = first;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                (Some(0), Some(0)) => return Err(DropReason::InvalidInput),
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            0 => return Err(DropReason::InvalidInput),
            _ => {
                let run = b[i..].iter().position(special).map_or(b.len(), |n| i + n);
                out.extend_from_slice(&b[i..run]);
                i = run;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DropReason::InvalidInput)
}

/// The first value of one parameter.
pub fn param(query: &str, name: &str) -> Result<Option<String>, DropReason> {
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(k)? == name {
            return decode(v).map(|v| Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// Parses the pixel's query. Unknown keys (cache busters like `rnd`) are ignored;
/// for repeated keys the first one wins.
pub fn parse(query: &str) -> Result<HitParams, DropReason> {
    let mut p = HitParams::default();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k)?;
        let value = decode(v)?;
        let slot = match &*key {
            "s" => &mut p.site,
            "cmp" => &mut p.campaign,
            "ad" => &mut p.ad,
            "pl" => &mut p.placement,
            "clid" => &mut p.click,
            "e" => &mut p.event,
            "u" => &mut p.url,
            "r" => &mut p.referrer,
            "t" => &mut p.title,
            "v" => &mut p.value,
            "cur" => &mut p.currency,
            "id" => &mut p.id,
            "consent" => &mut p.consent,
            other => {
                if let Some(prop) = other.strip_prefix(PROP_PREFIX) {
                    if !p.props.iter().any(|(k, _)| k == prop) {
                        p.props.push((prop.to_owned(), value.into_owned()));
                    }
                }
                continue;
            }
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder as first written (map every byte, then refuse NULs and invalid
    /// UTF-8): what the one-pass `decode` must equal.
    fn decode_bytewise(raw: &str) -> Result<String, DropReason> {
        let b = raw.as_bytes();
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        if out.contains(&0) {
            return Err(DropReason::InvalidInput);
        }
        String::from_utf8(out).map_err(|_| DropReason::InvalidInput)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn decoding_in_runs_equals_decoding_byte_by_byte(
            raw in "([a-zA-Z0-9+%\\x00é/=:.-]|%[0-9a-fA-F]{2}|%[0-9a-fA-F]|%[c-fC-F][0-9a-fA-F]%[89abAB][0-9a-fA-F]){0,12}"
        ) {
            proptest::prop_assert_eq!(
                decode(&raw).map(|c| c.into_owned()),
                decode_bytewise(&raw)
            );
        }
    }

    #[test]
    fn every_parameter_is_read() {
        let p = parse("s=k1&cmp=7&ad=banner-1&pl=top&clid=abc&e=signup&u=https%3A%2F%2Fa.example%2Fx%3Fy%3D1&r=https://b.example/&t=Hello+World&v=9.99&cur=EUR&id=o-1&p.plan=pro&p.seats=3&rnd=123").unwrap();
        assert_eq!(p.site.as_deref(), Some("k1"));
        assert_eq!(p.campaign.as_deref(), Some("7"));
        assert_eq!(p.ad.as_deref(), Some("banner-1"));
        assert_eq!(p.placement.as_deref(), Some("top"));
        assert_eq!(p.click.as_deref(), Some("abc"));
        assert_eq!(p.event.as_deref(), Some("signup"));
        assert_eq!(p.url.as_deref(), Some("https://a.example/x?y=1"));
        assert_eq!(p.referrer.as_deref(), Some("https://b.example/"));
        assert_eq!(p.title.as_deref(), Some("Hello World"));
        assert_eq!(p.value.as_deref(), Some("9.99"));
        assert_eq!(p.currency.as_deref(), Some("EUR"));
        assert_eq!(p.id.as_deref(), Some("o-1"));
        assert_eq!(
            p.props,
            vec![("plan".into(), "pro".into()), ("seats".into(), "3".into())]
        );
    }

    #[test]
    fn first_value_wins() {
        let p = parse("s=a&s=b&p.x=1&p.x=2").unwrap();
        assert_eq!(p.site.as_deref(), Some("a"));
        assert_eq!(p.props, vec![("x".into(), "1".into())]);
    }

    #[test]
    fn invalid_utf8_and_nul_are_refused() {
        assert_eq!(parse("s=k&t=%FF%FE"), Err(DropReason::InvalidInput));
        assert_eq!(parse("s=k&t=a%00b"), Err(DropReason::InvalidInput));
        assert_eq!(parse("s=k%C0"), Err(DropReason::InvalidInput));
    }

    #[test]
    fn empty_and_odd_queries_do_not_fail() {
        assert_eq!(parse("").unwrap(), HitParams::default());
        assert_eq!(parse("&&=&s").unwrap().site.as_deref(), Some(""));
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any query string parses or is refused as invalid input — never a panic,
        /// and nothing decoded ever carries a NUL.
        #[test]
        fn parse_is_total(q in "[ -~]{0,300}") {
            match parse(&q) {
                Ok(p) => {
                    let all = [&p.site, &p.event, &p.url, &p.referrer, &p.title, &p.value, &p.currency, &p.id];
                    prop_assert!(all.iter().all(|f| f.as_deref().is_none_or(|s| !s.contains('\0'))));
                }
                Err(r) => prop_assert_eq!(r, DropReason::InvalidInput),
            }
        }

        /// The one-pass decoder answers exactly what `+` → space, then the
        /// `percent_encoding` crate's decoding, then the UTF-8 and NUL checks answer.
        #[test]
        fn decode_matches_the_crate(v in "([ -~]|%[0-9a-fA-F]{2}|%|%[0-9]|\\PC){0,40}") {
            let reference = || {
                let bytes: Vec<u8> =
                    percent_encoding::percent_decode_str(&v.replace('+', " ")).collect();
                match String::from_utf8(bytes) {
                    Ok(s) if !s.contains('\0') => Ok(s),
                    _ => Err(DropReason::InvalidInput),
                }
            };
            prop_assert_eq!(decode(&v).map(Cow::into_owned), reference());
        }

        #[test]
        fn encoded_values_round_trip(v in "\\PC{0,40}") {
            let enc = percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC).to_string();
            let p = parse(&format!("s=k&t={enc}")).unwrap();
            prop_assert_eq!(p.title.as_deref(), Some(v.as_str()));
        }
    }
}
