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
    let Ok(url) = url::Url::parse(raw.trim()) else {
        return Page::default();
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Page::default();
    }
    let mut page = Page {
        host: url
            .host_str()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        path: super::ua::truncate(url.path(), MAX_PATH).to_owned(),
        ..Page::default()
    };
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in url.query_pairs() {
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
mod tests {
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
