//! Page URL → host, path and an allowlisted query string. Everything outside the
//! allowlist (tokens, emails, session ids) is dropped before anything is stored.

use crate::model::Utm;

/// Query parameters kept from page URLs.
pub const QUERY_ALLOWLIST: &[&str] = &[
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "msclkid",
    "ref",
];

/// Longest path stored; longer ones are cut.
pub const MAX_PATH: usize = 2048;
/// Longest value of an allowlisted parameter.
pub const MAX_PARAM: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub host: String,
    pub path: String,
    pub query: String,
    pub utm: Utm,
    /// `ptclid:…` (our own ad click id), or the ad platform's `gclid:…`, `fbclid:…`,
    /// `msclkid:…`. Ours wins when a URL carries several.
    pub click_id: String,
    /// The `ref` parameter (GoatCounter/Liwan convention for a source).
    pub ref_param: String,
}

/// Prefix of our own click ids in `click_id`, whatever the URL parameter is named.
pub const OWN_CLICK_PREFIX: &str = "ptclid:";

/// Parses an absolute page URL. Anything that is not http(s) yields an empty page.
/// `click_param` names the parameter our ad links append (`ptclid` by default).
pub fn parse(raw: &str, click_param: &str) -> Page {
    let raw = raw.trim();
    match Simple::split(raw) {
        Some(u) if u.scheme != "android-app" => from_parts(u.host, u.path, u.query, click_param),
        Some(_) => Page::default(),
        None => parse_with_url_crate(raw, click_param),
    }
}

/// [`parse`] by the `url` crate alone: what a URL that [`Simple::split`] does not take
/// goes through, and what the tests hold the split to.
fn parse_with_url_crate(raw: &str, click_param: &str) -> Page {
    let Ok(url) = url::Url::parse(raw) else {
        return Page::default();
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Page::default();
    }
    from_parts(
        url.host_str().unwrap_or(""),
        url.path(),
        url.query(),
        click_param,
    )
}

/// An absolute URL whose parts the `url` crate (the WHATWG URL standard) would give
/// exactly as they are written: `http://` or `https://` (or `android-app://`, for
/// referrers), a lower-case host name of letters, digits, dots and hyphens that is no
/// IP address nor punycode, no port or user, a path without dot segments, and only
/// printable ASCII that the standard leaves unencoded. Nearly every page and referrer
/// is one: taking its parts in place skips the `url` crate's parse (a copy of the whole
/// URL, host and path normalisation), about 4,000 instructions a hit. Anything else
/// goes to the `url` crate.
pub(super) struct Simple<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    /// `/` when the URL has none, as the `url` crate gives it.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The URL up to the end of its path (`None`: an http(s) URL without a path, which
    /// the `url` crate's serialisation gives a `/` after the host).
    pub up_to_path: Option<&'a str>,
}

/// Bytes the standard takes as they are in a path or a query: printable ASCII but
/// what it percent-encodes there, or reads otherwise (a backslash as `/`). Tabs and newlines,
/// which it strips anywhere, are not printable.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = true;
        b += 1;
    }
    let encoded = b"\"<>`{}^|\\'[]";
    let mut i = 0;
    while i < encoded.len() {
        t[encoded[i] as usize] = false;
        i += 1;
    }
    t
};

impl<'a> Simple<'a> {
    pub fn split(raw: &'a str) -> Option<Simple<'a>> {
        let bytes = raw.as_bytes();
        if !bytes.iter().all(|&b| PLAIN[b as usize]) {
            return None;
        }
        let (scheme, start) = if raw.starts_with("https://") {
            ("https", 8)
        } else if raw.starts_with("http://") {
            ("http", 7)
        } else if raw.starts_with("android-app://") {
            ("android-app", 14)
        } else {
            return None;
        };
        // The host: a name the standard takes as it is. Lower case (no mapping), no
        // empty label but a final dot, no punycode to check, not ending in a number
        // (an IPv4 address); no port, user or IPv6 address, whose `:`, `@` and `[`
        // end the name where only `/`, `?`, `#` or the end may.
        let mut i = start;
        let mut label = start;
        let mut last_label = start;
        while i < bytes.len() {
            match bytes[i] {
                b'a'..=b'z' | b'0'..=b'9' | b'-' => {}
                b'.' => {
                    if i == label || bytes[label..i].starts_with(b"xn--") {
                        return None;
                    }
                    last_label = label;
                    label = i + 1;
                }
                b'/' | b'?' | b'#' => break,
                _ => return None,
            }
            i += 1;
        }
        let host_end = i;
        if label < host_end {
            // The last label (the name has no final dot).
            if bytes[label..host_end].starts_with(b"xn--") {
                return None;
            }
            last_label = label;
        } else if label == start || bytes[label - 1] != b'.' || label - 1 == start {
            return None;
        }
        if host_end == start || !bytes[last_label].is_ascii_lowercase() {
            return None;
        }
        let host = &raw[start..host_end];
        // The URL up to its fragment: path, then query.
        let rest = &raw[host_end..];
        let rest = &rest[..rest.find('#').unwrap_or(rest.len())];
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        // Dot segments (`/./`, `/../`, also percent-encoded) are resolved by the
        // standard; a path with any of them, or anything like them, goes to it.
        let p = path.as_bytes();
        for j in 1..p.len() {
            if (p[j] == b'.' && p[j - 1] == b'/')
                || (p[j - 1] == b'%'
                    && p[j] == b'2'
                    && p.get(j + 1).is_some_and(|b| b | 0x20 == b'e'))
            {
                return None;
            }
        }
        let end = host_end + path.len();
        // A URL of a special scheme (http, https) always has a path, `/` at least; one
        // of another scheme (android-app) may have none.
        let special = scheme != "android-app";
        Some(Simple {
            scheme,
            host,
            path: if path.is_empty() && special {
                "/"
            } else {
                path
            },
            query,
            up_to_path: (!path.is_empty() || !special).then(|| &raw[..end]),
        })
    }
}

/// The page of a parsed URL: its host, path and allowlisted query.
fn from_parts(host: &str, path: &str, query: Option<&str>, click_param: &str) -> Page {
    let mut page = Page {
        host: host.trim_end_matches('.').to_ascii_lowercase(),
        path: super::ua::truncate(path, MAX_PATH).to_owned(),
        ..Page::default()
    };
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !click_param.is_empty() && k == click_param {
            let v = clean_text(&v, MAX_PARAM);
            if crate::model::valid_ad_id(&v) {
                page.click_id = format!("{OWN_CLICK_PREFIX}{v}");
                kept.append_pair(click_param, &v);
                any = true;
            }
            continue;
        }
        let Some(key) = QUERY_ALLOWLIST.iter().find(|a| **a == k) else {
            continue;
        };
        let v = clean_text(&v, MAX_PARAM);
        if v.is_empty() {
            continue;
        }
        let slot = match *key {
            "utm_source" => &mut page.utm.source,
            "utm_medium" => &mut page.utm.medium,
            "utm_campaign" => &mut page.utm.campaign,
            "utm_term" => &mut page.utm.term,
            "utm_content" => &mut page.utm.content,
            "ref" => &mut page.ref_param,
            id => {
                if page.click_id.is_empty() {
                    page.click_id = format!("{id}:{v}");
                }
                kept.append_pair(key, &v);
                any = true;
                continue;
            }
        };
        if slot.is_empty() {
            *slot = v.clone();
        }
        kept.append_pair(key, &v);
        any = true;
    }
    if any {
        page.query = kept.finish();
    }
    page
}

/// Trims, replaces control characters by spaces and caps the length of a text field.
pub fn clean_text(s: &str, max: usize) -> String {
    // One allocation: the characters that fit, each control character a space.
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn host_path_and_allowlisted_query() {
        let p = parse("https://Example.com/pricing?utm_source=news&utm_medium=email&email=a%40b.com&token=x&gclid=G1#top", "ptclid");
        assert_eq!(p.host, "example.com");
        assert_eq!(p.path, "/pricing");
        assert_eq!(p.query, "utm_source=news&utm_medium=email&gclid=G1");
        assert_eq!(p.utm.source, "news");
        assert_eq!(p.utm.medium, "email");
        assert_eq!(p.click_id, "gclid:G1");
    }

    #[test]
    fn only_allowlisted_parameters_survive() {
        let p = parse(
            "https://example.com/?email=a%40b.com&token=x&utm_source=n",
            "ptclid",
        );
        assert_eq!(p.query, "utm_source=n");
    }

    #[test]
    fn every_utm_field_and_ref() {
        let p = parse("http://a.example/x?utm_campaign=spring&utm_term=shoes&utm_content=hero&ref=hn&fbclid=F", "ptclid");
        assert_eq!(p.utm.campaign, "spring");
        assert_eq!(p.utm.term, "shoes");
        assert_eq!(p.utm.content, "hero");
        assert_eq!(p.ref_param, "hn");
        assert_eq!(p.click_id, "fbclid:F");
    }

    #[test]
    fn our_click_id_wins_under_its_configured_name() {
        let p = parse(
            "https://shop.example/land?gclid=G&ptclid=abc123&x=1",
            "ptclid",
        );
        assert_eq!(p.click_id, "ptclid:abc123");
        assert_eq!(p.query, "gclid=G&ptclid=abc123");
        let p = parse("https://shop.example/land?ref_id=abc123", "ref_id");
        assert_eq!(p.click_id, "ptclid:abc123");
        // Under another name it is just an unknown parameter; a hostile value is dropped.
        assert_eq!(
            parse("https://shop.example/?ptclid=abc", "ref_id").click_id,
            ""
        );
        assert_eq!(
            parse("https://shop.example/?ptclid=%3Cscript%3E", "ptclid").click_id,
            ""
        );
    }

    #[test]
    fn non_http_urls_are_empty() {
        assert_eq!(parse("javascript:alert(1)", "ptclid"), Page::default());
        assert_eq!(parse("/relative", "ptclid"), Page::default());
        assert_eq!(parse("", "ptclid"), Page::default());
    }

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(clean_text(" a\r\nb\t ", 10), "a  b");
        assert_eq!(clean_text("abcdef", 3), "abc");
        // A character that would not fit whole is left out, also a C1 control
        // character (two bytes) that becomes a space (one).
        assert_eq!(clean_text("abé", 3), "ab");
        assert_eq!(clean_text("a\u{85}bc", 3), "a b");
    }

    /// URL-like strings built from pieces that the `url` crate reads in every way it
    /// can: schemes in any case or without slashes, hosts in upper case, with empty
    /// labels, numbers, punycode, ports, users and IPv6; paths with dot segments
    /// (also encoded), backslashes, characters it encodes, non-ASCII; queries,
    /// fragments, spaces and controls.
    /// Half of them are made mostly of plain pieces, so that many are taken in place.
    pub(crate) fn url_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        fn made_of(
            schemes: Vec<&'static str>,
            labels: Vec<&'static str>,
            segments: Vec<&'static str>,
            queries: Vec<&'static str>,
            fragments: Vec<&'static str>,
        ) -> impl Strategy<Value = String> {
            let host =
                prop::collection::vec(prop::sample::select(labels), 1..4).prop_map(|l| l.join("."));
            let path = prop::collection::vec(prop::sample::select(segments), 0..4)
                .prop_map(|s| s.concat());
            (
                prop::sample::select(schemes),
                host,
                prop::sample::select(vec!["", "", "."]),
                path,
                prop::sample::select(queries),
                prop::sample::select(fragments),
            )
                .prop_map(|(s, h, d, p, q, f)| format!("{s}{h}{d}{p}{q}{f}"))
        }
        // Queries both kinds draw from; each adds its own.
        const QUERIES: [&str; 8] = [
            "",
            "?",
            "?utm_source=news",
            "?utm_source=a+b&ref=hn",
            "?gclid=G&x=1",
            "?ptclid=abc",
            "?q=1?2/3",
            "?utm_medium=%E9",
        ];
        let wild = made_of(
            vec![
                "http://",
                "https://",
                "HTTP://",
                "Https://",
                "http:/",
                "http:",
                "ftp://",
                "android-app://",
                "javascript:",
                "",
                " http://",
                "\thttp://",
            ],
            vec![
                "a",
                "example",
                "com",
                "B",
                "www",
                "xn--bcher-kva",
                "xn--",
                "1",
                "0x1f",
                "255",
                "-",
                "a-b",
                "",
                "%41",
                "\u{e9}",
                "a_b",
                "user@h",
                "h:80",
                "h:",
                "[::1]",
                "h:99999",
            ],
            vec![
                "/",
                "/a",
                "/.",
                "/..",
                "/%2e",
                "/%2E",
                "/.well-known",
                "//",
                "\\",
                "/a b",
                "/\u{e9}",
                "/^",
                "/'",
                "/|",
                "/%",
                "/%41",
                "/a.b",
                "/{x}",
                "/\t",
                "/x\n",
                "/;p=1",
                "/@",
                "/:",
            ],
            [&QUERIES[..], &["?a='b'", "?a=%20", "?a b", "?\u{e9}=1"]].concat(),
            vec!["", "#", "#top", "#a b", "#\u{e9}", "#?utm_source=x"],
        );
        let plain = made_of(
            vec![
                "http://",
                "https://",
                "https://",
                "android-app://",
                "HTTPS://",
            ],
            vec![
                "a", "example", "com", "www", "co", "uk", "a-b", "-x", "x-", "9a", "a9", "1", "B",
            ],
            vec![
                "/",
                "/a",
                "/pricing",
                "/a.b",
                "//",
                "/%",
                "/%41",
                "/%zz",
                "/~u",
                "/a;b",
                "/@",
                "/:",
                "/!$&()*+,=",
                "/.",
                "/-_",
            ],
            [
                &QUERIES[..],
                &["?ptclid=a%3Cb", "?=&&=x", "?utm_campaign=%41%42"],
            ]
            .concat(),
            vec!["", "", "#", "#top", "#a b", "#\u{e9}"],
        );
        prop_oneof![wild, plain]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// A URL whose parts are taken in place gives the page the `url` crate gives,
        /// and its parts are the crate's.
        #[test]
        fn the_parts_taken_in_place_are_the_url_crates(raw in url_like()) {
            proptest::prop_assert_eq!(parse(&raw, "ptclid"), parse_with_url_crate(raw.trim(), "ptclid"));
            if let Some(u) = Simple::split(raw.trim()) {
                let url = url::Url::parse(raw.trim()).expect("a URL the split takes parses");
                proptest::prop_assert_eq!(u.scheme, url.scheme());
                proptest::prop_assert_eq!(Some(u.host), url.host_str());
                proptest::prop_assert_eq!(u.path, url.path());
                proptest::prop_assert_eq!(u.query, url.query());
                if let Some(up_to_path) = u.up_to_path {
                    proptest::prop_assert_eq!(up_to_path, &url[..url::Position::AfterPath]);
                }
            }
        }
    }

    /// Found by the proptest: the URL's end of path was counted from the end of the
    /// string without its fragment.
    #[test]
    fn a_fragment_is_not_part_of_the_url_up_to_its_path() {
        let u = Simple::split("http://a/%#").unwrap();
        assert_eq!(
            (u.path, u.query, u.up_to_path),
            ("/%", None, Some("http://a/%"))
        );
        let u = Simple::split("https://b.example/x?q=1#top").unwrap();
        assert_eq!(u.up_to_path, Some("https://b.example/x"));
        assert_eq!(u.query, Some("q=1"));
    }

    #[test]
    fn common_pages_are_taken_in_place() {
        for raw in [
            "https://www.example.com/pricing?utm_source=news#top",
            "http://shop.example/a/b.html",
            "https://example.com",
            "https://blog.example.co.uk/2024/05/post-1?ref=hn&gclid=G1",
        ] {
            assert!(Simple::split(raw).is_some(), "{raw}");
        }
        for raw in [
            "https://Example.com/",
            "https://127.0.0.1/",
            "https://example.com:8443/",
            "https://xn--bcher-kva.example/",
            "https://example.com/a/../b",
            "https://example.com/caf\u{e9}",
            "https://example.com/a b",
        ] {
            assert!(Simple::split(raw).is_none(), "{raw}");
        }
    }

    proptest::proptest! {
        /// The same text as mapping every character, then cutting at the last
        /// character boundary that fits.
        #[test]
        fn cleaned_text_is_the_mapped_text_cut_to_fit(s in "(\\PC|\\p{Cc}){0,24}", max in 0usize..40) {
            let mapped: String = s
                .trim()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            proptest::prop_assert_eq!(clean_text(&s, max), crate::enrich::ua::truncate(&mapped, max));
        }
    }
}
