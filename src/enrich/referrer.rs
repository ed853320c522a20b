//! Referrer → host, source name and medium, from Snowplow's maintained referer-parser
//! database (vendored as `data/referers.json`), plus UTM overrides. Self-referrals
//! (the page's own host) count as no referrer.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::model::Short;

static REFERERS_JSON: &str = include_str!("../../data/referers.json");

#[derive(Deserialize)]
struct SourceEntry {
    domains: Vec<String>,
}

struct Db {
    /// `domain` or `domain/path-prefix` → (source, medium).
    by_key: HashMap<String, (String, &'static str)>,
}

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let raw: HashMap<String, HashMap<String, SourceEntry>> =
            serde_json::from_str(REFERERS_JSON).expect("vendored referers.json is valid");
        let mut by_key = HashMap::new();
        for (medium, sources) in raw {
            let medium = normalize_medium(&medium);
            for (source, entry) in sources {
                for d in entry.domains {
                    by_key.insert(d.to_ascii_lowercase(), (source.clone(), medium));
                }
            }
        }
        Db { by_key }
    })
}

pub fn warm_up() {
    db();
}

/// Our media: `search`, `social`, `email`, `paid`, `referral`, `direct`, `campaign`.
fn normalize_medium(m: &str) -> &'static str {
    match m {
        "search" => "search",
        "social" => "social",
        "email" => "email",
        "paid" => "paid",
        _ => "referral",
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referral {
    /// The referrer URL, without query string and fragment.
    pub url: String,
    /// Short: kept in place up to 24 bytes (see [`Short`]), as the event keeps them.
    pub host: Short,
    pub source: Short,
    pub medium: Short,
}

/// Looks `referrer` up. `page_host` and `site_domain` make self-referrals direct.
pub fn classify(referrer: &str, page_host: &str, site_domain: &str) -> Referral {
    let referrer = referrer.trim();
    match super::page::Simple::split(referrer) {
        Some(u) => {
            // Without its query and fragment.
            let url = || match u.up_to_path {
                Some(url) => url.to_owned(),
                None => format!("{}://{}/", u.scheme, u.host),
            };
            from_parts(u.host, u.path, url, page_host, site_domain)
        }
        None => classify_with_url_crate(referrer, page_host, site_domain),
    }
}

/// [`classify`] by the `url` crate alone (see `page::Simple`).
fn classify_with_url_crate(referrer: &str, page_host: &str, site_domain: &str) -> Referral {
    let Ok(url) = url::Url::parse(referrer) else {
        return direct();
    };
    if !matches!(url.scheme(), "http" | "https" | "android-app") {
        return direct();
    }
    let Some(host) = url.host_str() else {
        return direct();
    };
    // Without its query and fragment.
    let whole = || url[..url::Position::AfterPath].to_owned();
    from_parts(host, url.path(), whole, page_host, site_domain)
}

fn direct() -> Referral {
    Referral {
        medium: Short::const_new("direct"),
        ..Referral::default()
    }
}

/// The referral of a parsed referrer URL (`url` makes it without its query and
/// fragment, only for a referral: most referrers are the site's own pages).
fn from_parts(
    host: &str,
    path: &str,
    url: impl FnOnce() -> String,
    page_host: &str,
    site_domain: &str,
) -> Referral {
    let host = super::ascii_lower(host.trim_end_matches('.'));
    if is_same_site(&host, page_host) || is_same_site(&host, site_domain) {
        return direct();
    }
    let bare = Short::from(host.strip_prefix("www.").unwrap_or(&host));
    let (source, medium) = lookup(&host, path)
        .map(|(s, m)| (Short::const_new(s), Short::const_new(m)))
        .unwrap_or_else(|| (bare.clone(), Short::const_new("referral")));
    Referral {
        url: url(),
        host: bare,
        source,
        medium,
    }
}

/// Whether `host` is `other` or a subdomain of it, each without a leading `www.`, in
/// any case.
fn is_same_site(host: &str, other: &str) -> bool {
    let other = other.trim_end_matches('.');
    if other.is_empty() {
        return false;
    }
    fn strip(h: &str) -> &str {
        match h.get(..4) {
            Some(www) if www.eq_ignore_ascii_case("www.") => &h[4..],
            _ => h,
        }
    }
    crate::model::within_domain(strip(host), strip(other))
}

/// Tries `host/first-path-segment`, then the host, then the host without its
/// leftmost labels (`mail.google.com` → `google.com`), as referer-parser does.
fn lookup(host: &str, path: &str) -> Option<(&'static str, &'static str)> {
    let db = db();
    let first_segment = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let mut h = host;
    // `host/segment`, kept in place up to 24 bytes (most are shorter).
    let mut key = Short::default();
    loop {
        if !first_segment.is_empty() {
            key.clear();
            key.push_str(h);
            key.push('/');
            key.push_str(first_segment);
            if let Some((s, m)) = db.by_key.get(key.as_str()) {
                return Some((s.as_str(), m));
            }
        }
        if let Some((s, m)) = db.by_key.get(h) {
            return Some((s.as_str(), m));
        }
        match h.split_once('.') {
            Some((_, rest)) if rest.contains('.') => h = rest,
            _ => return None,
        }
    }
}

/// The medium a `utm_medium` value names, when it names one of ours.
pub fn utm_medium(m: &str) -> Option<&'static str> {
    let mut m = Short::from(m);
    m.make_ascii_lowercase();
    Some(match m.as_str() {
        "email" | "e-mail" | "newsletter" | "mail" => "email",
        "cpc" | "ppc" | "paid" | "paidsearch" | "paid_search" | "display" | "banner" | "cpm" => {
            "paid"
        }
        "social" | "social-network" | "social_media" | "sm" => "social",
        "organic" | "search" => "search",
        "referral" => "referral",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// A referrer taken in place is classified as the `url` crate's parse of it is.
        #[test]
        fn referrers_taken_in_place_are_classified_as_the_url_crate_reads_them(
            raw in crate::enrich::page::tests::url_like(),
            page in proptest::sample::select(vec!["", "example.com", "www.example.com", "b"]),
        ) {
            proptest::prop_assert_eq!(
                classify(&raw, page, "example.com"),
                classify_with_url_crate(raw.trim(), page, "example.com")
            );
        }
    }

    fn sm(r: &str) -> (String, String, String) {
        let c = classify(r, "example.com", "example.com");
        (c.host.into(), c.source.into(), c.medium.into())
    }

    #[test]
    fn known_sources_and_media() {
        let cases = [
            (
                "https://www.google.com/search?q=pixel",
                "google.com",
                "Google",
                "search",
            ),
            (
                "https://www.google.co.uk/",
                "google.co.uk",
                "Google",
                "search",
            ),
            (
                "https://www.bing.com/search?q=x",
                "bing.com",
                "Bing",
                "search",
            ),
            // A host in upper case is looked up, and kept, in lower case.
            (
                "https://WWW.Bing.COM./search?q=x",
                "bing.com",
                "Bing",
                "search",
            ),
            (
                "https://News.Example.ORG/a",
                "news.example.org",
                "news.example.org",
                "referral",
            ),
            (
                "https://duckduckgo.com/",
                "duckduckgo.com",
                "DuckDuckGo",
                "search",
            ),
            (
                "https://www.facebook.com/",
                "facebook.com",
                "Facebook",
                "social",
            ),
            ("https://t.co/abc", "t.co", "Twitter", "social"),
            (
                "https://www.linkedin.com/feed/",
                "linkedin.com",
                "LinkedIn",
                "social",
            ),
            (
                "https://www.reddit.com/r/rust/",
                "reddit.com",
                "Reddit",
                "social",
            ),
            (
                "https://news.ycombinator.com/item?id=1",
                "news.ycombinator.com",
                "Hacker News",
                "social",
            ),
            (
                "https://mail.google.com/mail/u/0/",
                "mail.google.com",
                "Gmail",
                "email",
            ),
            (
                "https://blog.example.org/post",
                "blog.example.org",
                "blog.example.org",
                "referral",
            ),
        ];
        for (r, host, source, medium) in cases {
            assert_eq!(sm(r), (host.into(), source.into(), medium.into()), "{r}");
        }
    }

    #[test]
    fn self_referrals_and_garbage_are_direct() {
        for r in [
            "https://example.com/other",
            "https://www.example.com/",
            "https://shop.example.com/cart",
            "",
            "not a url",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                sm(r),
                (String::new(), String::new(), "direct".into()),
                "{r}"
            );
        }
    }

    #[test]
    fn the_same_site_is_told_whatever_its_case_dots_or_www() {
        for (host, other) in [
            ("example.com", "example.com"),
            ("example.com", "WWW.Example.COM."),
            ("www.example.com", "example.com"),
            ("shop.example.com", "www.example.com"),
            ("a.b.example.com", "Example.com"),
        ] {
            assert!(is_same_site(host, other), "{host} is {other}'s");
        }
        for (host, other) in [
            ("notexample.com", "example.com"),
            ("example.com", "shop.example.com"),
            ("example.com.evil.test", "example.com"),
            ("example.com", ""),
            ("example.com", "..."),
            ("www.", "www."),
            ("xn--bcher-kva.example", "www."),
        ] {
            assert!(!is_same_site(host, other), "{host} is not {other}'s");
        }
    }

    #[test]
    fn referrer_url_loses_its_query() {
        let c = classify(
            "https://blog.example.org/p?token=secret#x",
            "example.com",
            "",
        );
        assert_eq!(c.url, "https://blog.example.org/p");
        let c = classify("https://blog.example.org/a/b#frag", "example.com", "");
        assert_eq!(c.url, "https://blog.example.org/a/b");
        let c = classify(
            "android-app://com.google.android.gm/?x=1",
            "example.com",
            "",
        );
        assert_eq!(c.url, "android-app://com.google.android.gm/");
    }

    #[test]
    fn utm_media_map_to_ours() {
        assert_eq!(utm_medium("Newsletter"), Some("email"));
        assert_eq!(utm_medium("cpc"), Some("paid"));
        assert_eq!(utm_medium("weird"), None);
    }
}
