//! `pixeltrack scan`: which trackers a page or an email carries, and what they learn.
//! Pure: a document's bytes and the vendor patterns in, a [`Report`] out (findings grouped
//! by vendor, each with the element, the URL, why it matched and the risk). `fetch` is the
//! one part that touches the network, and it only produces the bytes.
//!
//! - `html.rs` reads a document: every URL it loads or links to, with its element, size
//!   and visibility, and the code of inline scripts.
//! - `eml.rs` decodes an email into its HTML and text bodies (MIME by `mail-parser`).
//! - `patterns.rs` loads the vendor list (`data/trackers.toml`, plus `--patterns`).
//! - `pii.rs` finds personal data and identifiers in URLs.
//! - `fetch.rs` fetches one page for `--url`, refusing non-public addresses.
//!
//! What is reported (the rule, also in the README):
//! 1. a URL that matches a known vendor, used the way the rule says (loaded, or clicked);
//! 2. a URL that carries personal data (an email address, name, phone number, hashed
//!    email or recipient id; see `pii.rs`), whatever element uses it;
//! 3. an image, frame or CSS background that is tiny (≤ 1×1) or hidden, when its URL says
//!    who loads it: an identifier (an id-named parameter, an id-like value, an opaque
//!    token in the query or path), or, when the document's own host is known, another
//!    site's host with a query that is more than versions and cache-busters;
//! 4. a link that wraps another URL in a parameter (a redirect) and carries an identifier.
//!
//! A 1×1 spacer GIF with no identifier (`/spacer.gif`, `spacer.gif?v=2`) is layout, not a
//! tracker: size or hiding alone never makes a finding.

pub mod eml;
pub mod fetch;
pub mod html;
pub mod patterns;
pub mod pii;

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use url::Url;

use html::{Extracted, Resource};
use patterns::{On, Patterns, Vendor};
use pii::Leak;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read the HTML: {0}")]
    Html(String),
    #[error("not an email: it has no headers (to scan it as a page, pass --as html)")]
    NotEmail,
}

/// What was scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Medium {
    Page,
    Email,
}

impl Medium {
    fn reader(self) -> &'static str {
        match self {
            Medium::Page => "visitor",
            Medium::Email => "recipient",
        }
    }

    fn opened(self) -> &'static str {
        match self {
            Medium::Page => "the page is viewed",
            Medium::Email => "the email is opened",
        }
    }
}

/// Why a finding was made: a stable code (for `--json` and CI) and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub text: String,
}

fn reason(code: &'static str, text: impl Into<String>) -> Reason {
    Reason {
        code,
        text: text.into(),
    }
}

/// One element using one URL (repeats counted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `img`, `noscript > img`, `script src`, `inline script`, `a href`, `td background`…
    pub element: String,
    /// The URL as written in the document; none for a finding in inline code.
    pub url: Option<String>,
    /// The part of an email it was found in.
    pub part: Option<String>,
    pub count: usize,
    pub reasons: Vec<Reason>,
    /// What this finding risks.
    pub risk: String,
}

/// The findings of one vendor, or of one unrecognised host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VendorReport {
    pub vendor: String,
    /// A category of `data/trackers.toml`, or `unrecognised`.
    pub category: String,
    /// Whether the vendor is in the patterns (else `vendor` is the host).
    pub known: bool,
    pub learns: String,
    pub risk: String,
    /// Account ids seen (a GA4 measurement id, a Meta pixel id…).
    pub accounts: Vec<String>,
    pub findings: Vec<Finding>,
}

/// The result of a scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The file, `-`, or the URL fetched.
    pub source: String,
    pub kind: Medium,
    /// The document's own host (the page's, or the sender's domain), by which third
    /// parties are told; `null` when the document does not say.
    pub first_party: Option<String>,
    /// The parts of an email that were scanned.
    pub parts: Vec<String>,
    /// For `--url`: the addresses redirected from, in order.
    pub redirects: Vec<String>,
    pub found: bool,
    /// How many vendor groups, and how many findings in all.
    pub trackers: usize,
    pub findings: usize,
    pub vendors: Vec<VendorReport>,
}

/// The base for relative URLs when a document does not say where it lives.
const NOWHERE: &str = "https://this-document.invalid/";

/// What a host's site is, roughly the registrable domain: the last two labels, or three
/// under a country's second level (`shop.example.co.uk` → `example.co.uk`). IP addresses
/// stand for themselves.
fn site(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return host;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    if n <= 2 {
        return host;
    }
    const SECOND_LEVEL: &[&str] = &[
        "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "gob", "nic", "ltd",
        "plc", "sch", "mil",
    ];
    let take = if labels[n - 1].len() == 2 && SECOND_LEVEL.contains(&labels[n - 2]) {
        3
    } else {
        2
    };
    labels[n.saturating_sub(take)..].join(".")
}

static TEXT_URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)https?://[^\s<>"'()\[\]]+"#).unwrap());

/// Who is told: the vendor's name, else the host.
enum Who<'a> {
    Vendor(&'a Vendor),
    Host(String),
}

struct Builder<'p> {
    patterns: &'p Patterns,
    medium: Medium,
    first_party: Option<String>,
    groups: Vec<VendorReport>,
    /// (vendor, part, inline script index) already reported from a script's URLs.
    script_hits: Vec<(String, Option<String>, usize)>,
}

impl<'p> Builder<'p> {
    fn new(patterns: &'p Patterns, medium: Medium, first_party: Option<String>) -> Self {
        Builder {
            patterns,
            medium,
            first_party,
            groups: Vec::new(),
            script_hits: Vec::new(),
        }
    }

    /// `Some(true)` for the document's own site, `Some(false)` for another, `None` when
    /// the document's host is not known.
    fn own(&self, host: &str) -> Option<bool> {
        if host == "this-document.invalid" {
            return Some(true);
        }
        self.first_party.as_deref().map(|fp| site(fp) == site(host))
    }

    fn document(&mut self, x: &Extracted, base: &Url, part: Option<&str>) {
        for r in &x.resources {
            self.resource(r, base, part, x);
        }
        for (i, script) in x.scripts.iter().enumerate() {
            for v in self.patterns.vendors() {
                let Some(marker) = v.marker_in(&script.code) else {
                    continue;
                };
                let already = self
                    .script_hits
                    .iter()
                    .any(|(name, p, s)| name == &v.name && p.as_deref() == part && *s == i);
                if already {
                    continue;
                }
                let finding = Finding {
                    element: "inline script".into(),
                    url: None,
                    part: part.map(str::to_owned),
                    count: 1,
                    reasons: vec![reason(
                        "inline_code",
                        format!("inline script calls `{marker}`, the code of {}", v.name),
                    )],
                    risk: v.risk.clone(),
                };
                self.add(Who::Vendor(v), finding, v.account_ids(&script.code));
            }
        }
    }

    fn text_links(&mut self, text: &str, part: Option<&str>) {
        let base = Url::parse(NOWHERE).expect("a valid base");
        let x = Extracted {
            resources: TEXT_URL
                .find_iter(text)
                .map(|m| Resource {
                    on: On::Click,
                    element: "text link".into(),
                    url: m
                        .as_str()
                        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
                        .to_owned(),
                    tiny: false,
                    hidden: None,
                    sized: false,
                    noscript: false,
                    attrs: Vec::new(),
                    script: None,
                })
                .collect(),
            ..Extracted::default()
        };
        self.document(&x, &base, part);
    }

    fn resource(&mut self, r: &Resource, base: &Url, part: Option<&str>, x: &Extracted) {
        let Some(url) = base
            .join(&r.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            return;
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let own = self.own(&host);
        let vendor = self.patterns.match_url(&url, r.on, &r.attrs);
        let leaks = pii::leaks(&url);
        let pixel_like = r.sized && r.on == On::Load && (r.tiny || r.hidden.is_some());
        let ident = pii::identifier(&url);
        let mut reasons = Vec::new();
        let mut why = Vec::new();
        let mut unknown_kind = None;
        if let Some((v, rule)) = vendor {
            reasons.push(match r.on {
                On::Click => reason(
                    "tracked_link",
                    format!("click-tracking link of {} ({})", v.name, rule.describe()),
                ),
                _ => reason(
                    "known_tracker",
                    format!("loads {} ({})", v.name, rule.describe()),
                ),
            });
        } else if pixel_like {
            let telling = own == Some(false) && pii::has_telling_query(&url);
            if let Some(i) = &ident {
                why.push(reason("identifier", i.clone()));
            } else if telling {
                why.push(reason(
                    "third_party_query",
                    format!(
                        "on {host}, another site than the {}'s ({}), with a query string",
                        match self.medium {
                            Medium::Page => "page",
                            Medium::Email => "sender",
                        },
                        self.first_party.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if !why.is_empty() {
                unknown_kind = Some("pixel");
            }
        } else if r.on == On::Click {
            if let (Some(param), Some(i)) = (pii::wrapped_url(&url), &ident) {
                why.push(reason(
                    "redirect",
                    format!("wraps the destination in parameter `{param}`: a redirect that records the click"),
                ));
                why.push(reason("identifier", i.clone()));
                unknown_kind = Some("redirect");
            }
        }
        if vendor.is_none() && unknown_kind.is_none() && leaks.is_empty() {
            return;
        }
        if r.sized && r.tiny {
            reasons.push(reason("tiny_image", "1×1 image"));
        }
        if let Some(h) = r.hidden.as_ref().filter(|_| r.sized) {
            reasons.push(reason("hidden", format!("hidden: {h}")));
        }
        if r.noscript {
            reasons.push(reason(
                "noscript",
                "inside <noscript>: loads where scripts do not run (email clients, script blockers)",
            ));
        }
        // Personal data says more than an identifier: one reason, not two, for `uid=42`.
        reasons.extend(
            why.into_iter()
                .filter(|w| leaks.is_empty() || w.code != "identifier"),
        );
        reasons.extend(leaks.iter().map(|l| reason(l.code(), l.describe())));
        let who = match vendor {
            Some((v, _)) => Who::Vendor(v),
            None => Who::Host(host.clone()),
        };
        let risk = self.risk(&who, &leaks, &host, own, unknown_kind);
        let mut accounts = Vec::new();
        if let Some((v, _)) = vendor {
            accounts = v.account_ids(url.as_str());
            if let Some(i) = r.script {
                if let Some(s) = x.scripts.get(i) {
                    accounts.extend(v.account_ids(&s.code));
                }
                self.script_hits
                    .push((v.name.clone(), part.map(str::to_owned), i));
            }
        }
        let finding = Finding {
            element: r.element.clone(),
            url: Some(r.url.clone()),
            part: part.map(str::to_owned),
            count: 1,
            reasons,
            risk,
        };
        self.add(who, finding, accounts);
    }

    fn risk(
        &self,
        who: &Who<'_>,
        leaks: &[Leak],
        host: &str,
        own: Option<bool>,
        unknown_kind: Option<&str>,
    ) -> String {
        let reader = self.medium.reader();
        let name = match who {
            Who::Vendor(v) => v.name.clone(),
            Who::Host(h) => h.clone(),
        };
        let worst = [
            "email address",
            "hashed email address",
            "name",
            "phone number",
            "recipient id",
        ]
        .iter()
        .find_map(|w| leaks.iter().find(|l| l.what() == *w));
        if let Some(leak) = worst {
            let what = leak.what();
            if let Leak::MergeTag { tag, .. } = leak {
                return format!(
                    "once the sending platform fills {tag}, sends the {reader}'s {what} in clear to {name}{}",
                    if own == Some(false) { ", a third party" } else { "" }
                );
            }
            if matches!(leak, Leak::HashedEmail(_)) {
                return format!(
                    "sends a hash of the {reader}'s email address to {name}: the same id for the person on every site and list that uses it"
                );
            }
            return match own {
                Some(false) => format!("sends the {reader}'s {what} in clear to {name}, a third party"),
                Some(true) => format!(
                    "puts the {reader}'s {what} in clear in a URL of {}, where server logs, proxies, browser history and Referer headers keep it",
                    if host == "this-document.invalid" { "this document's own host" } else { host }
                ),
                None => format!("sends the {reader}'s {what} in clear to {name}"),
            };
        }
        match (who, unknown_kind) {
            (Who::Vendor(v), _) => v.risk.clone(),
            (Who::Host(h), Some("redirect")) => format!(
                "routes the click through {h}, which can record who clicked which link before forwarding"
            ),
            (Who::Host(h), _) => format!(
                "tells {h} when {}, from which IP address and device, tied to what its URL identifies",
                self.medium.opened()
            ),
        }
    }

    fn add(&mut self, who: Who<'_>, finding: Finding, accounts: Vec<String>) {
        let (name, known) = match &who {
            Who::Vendor(v) => (v.name.clone(), true),
            Who::Host(h) if h == "this-document.invalid" => {
                ("this document's own host".to_owned(), false)
            }
            Who::Host(h) => (h.clone(), false),
        };
        let index = match self
            .groups
            .iter()
            .position(|g| g.vendor == name && g.known == known)
        {
            Some(i) => i,
            None => {
                let (category, learns, risk) = match &who {
                    Who::Vendor(v) => (v.category.clone(), v.learns.clone(), v.risk.clone()),
                    Who::Host(_) => (
                        "unrecognised".to_owned(),
                        "whatever its URLs carry, with the time, IP address and device of each load or click"
                            .to_owned(),
                        finding.risk.clone(),
                    ),
                };
                self.groups.push(VendorReport {
                    vendor: name,
                    category,
                    known,
                    learns,
                    risk,
                    accounts: Vec::new(),
                    findings: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[index];
        for a in accounts {
            if !group.accounts.contains(&a) {
                group.accounts.push(a);
            }
        }
        match group.findings.iter_mut().find(|f| {
            f.element == finding.element && f.url == finding.url && f.part == finding.part
        }) {
            Some(f) => f.count += 1,
            None => group.findings.push(finding),
        }
    }

    fn finish(self, source: &str, parts: Vec<String>) -> Report {
        let mut vendors = self.groups;
        // Known vendors first, each list in the order first seen.
        vendors.sort_by_key(|g| !g.known);
        let findings = vendors.iter().map(|v| v.findings.len()).sum();
        Report {
            source: source.to_owned(),
            kind: self.medium,
            first_party: self.first_party,
            parts,
            redirects: Vec::new(),
            found: !vendors.is_empty(),
            trackers: vendors.len(),
            findings,
            vendors,
        }
    }
}

fn host_of(u: &Url) -> Option<String> {
    u.host_str()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
}

/// Scans an HTML page. `page_url` is where it was fetched from, if it was; otherwise its
/// `<link rel=canonical>`, `og:url` or `<base href>` tell its host, if they do.
pub fn scan_html(
    patterns: &Patterns,
    source: &str,
    html: &str,
    page_url: Option<&Url>,
) -> Result<Report, ScanError> {
    let x = html::extract(html).map_err(|e| ScanError::Html(e.to_string()))?;
    let nowhere = Url::parse(NOWHERE).expect("a valid base");
    let declared = |s: &Option<String>| {
        s.as_deref()
            .and_then(|u| Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    };
    let page = page_url
        .cloned()
        .or_else(|| declared(&x.page_url))
        .or_else(|| declared(&x.base));
    let base = match (&x.base, &page) {
        (Some(b), Some(p)) => p.join(b).unwrap_or_else(|_| p.clone()),
        (Some(b), None) => nowhere.join(b).unwrap_or_else(|_| nowhere.clone()),
        (None, Some(p)) => p.clone(),
        (None, None) => nowhere.clone(),
    };
    let first_party = page.as_ref().and_then(host_of);
    let mut b = Builder::new(patterns, Medium::Page, first_party);
    b.document(&x, &base, None);
    Ok(b.finish(source, Vec::new()))
}

/// Scans an email: every HTML body as a document, every text body for links.
pub fn scan_email(patterns: &Patterns, source: &str, raw: &[u8]) -> Result<Report, ScanError> {
    let email = eml::read(raw).ok_or(ScanError::NotEmail)?;
    let mut b = Builder::new(patterns, Medium::Email, email.from_domain.clone());
    let nowhere = Url::parse(NOWHERE).expect("a valid base");
    let mut parts = Vec::new();
    for body in &email.bodies {
        parts.push(body.label.clone());
        if body.html {
            let x = html::extract(&body.text).map_err(|e| ScanError::Html(e.to_string()))?;
            let base = x
                .base
                .as_deref()
                .and_then(|u| nowhere.join(u).ok())
                .unwrap_or_else(|| nowhere.clone());
            b.document(&x, &base, Some(&body.label));
        } else {
            b.text_links(&body.text, Some(&body.label));
        }
    }
    Ok(b.finish(source, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns() -> Patterns {
        Patterns::builtin().unwrap()
    }

    fn page(html: &str) -> Report {
        scan_html(&patterns(), "t.html", html, None).unwrap()
    }

    fn codes(r: &Report) -> Vec<(String, Vec<&'static str>)> {
        r.vendors
            .iter()
            .flat_map(|v| {
                v.findings
                    .iter()
                    .map(|f| (v.vendor.clone(), f.reasons.iter().map(|r| r.code).collect()))
            })
            .collect()
    }

    #[test]
    fn sites_are_roughly_registrable_domains() {
        assert_eq!(site("www.shop.example"), "shop.example");
        assert_eq!(site("mail.shop.example.co.uk"), "example.co.uk");
        assert_eq!(site("shop.example"), "shop.example");
        assert_eq!(site("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn spacers_are_layout_and_pixels_say_who_loads_them() {
        let head = "<link rel=canonical href=\"https://shop.example/\">";
        let cases: &[(&str, &[&str])] = &[
            // Spacers: no identifier, no telling query, whatever their size or host.
            ("<img src=\"/img/spacer.gif\" width=\"1\" height=\"1\">", &[]),
            ("<img src=\"https://cdn.other.example/s.gif?v=3\" width=1 height=1>", &[]),
            ("<img src=\"https://www.shop.example/1x1.gif?campaign=spring\" width=1 height=1>", &[]),
            // A visible image is no pixel, but an id in clear is still a leak.
            ("<img src=\"/x.gif?uid=42\" width=\"600\" height=\"80\">", &["pii_recipient_id"]),
            ("<div style=\"display:none\">Preheader <img src=\"/s.gif\"></div>", &[]),
            // Pixels: an identifier, or another site's host with a telling query.
            ("<img src=\"/o.gif?uid=42\" width=\"1\" height=\"1\">", &["tiny_image", "pii_recipient_id"]),
            ("<img src=\"/o.gif?e=a81bc81b\" width=\"1\" height=\"1\">", &["tiny_image", "identifier"]),
            ("<img src=\"https://t.other.example/open/8f14e45f-ceea-467f-a8b2-0a0b7c1d2e3f.gif\" style=\"display:none\">", &["hidden", "identifier"]),
            ("<img src=\"https://t.other.example/p.gif?campaign=spring\" width=1 height=1>", &["tiny_image", "third_party_query"]),
            ("<table><tr><td background=\"https://t.other.example/b.gif?k=Zm9vYmFy1234abcd5678efgh\" width=1 height=1></td></tr></table>", &["tiny_image", "identifier"]),
        ];
        for (body, want) in cases {
            let r = page(&format!(
                "<html><head>{head}</head><body>{body}</body></html>"
            ));
            let got: Vec<&str> = codes(&r).into_iter().flat_map(|(_, c)| c).collect();
            assert_eq!(got, *want, "{body}");
            assert_eq!(r.found, !want.is_empty());
        }
    }

    #[test]
    fn without_a_known_host_another_site_cannot_be_told() {
        let r =
            page("<img src=\"https://t.other.example/p.gif?campaign=spring\" width=1 height=1>");
        assert!(!r.found, "{r:#?}");
        assert_eq!(r.first_party, None);
    }

    #[test]
    fn known_trackers_are_grouped_with_accounts_and_inline_code() {
        let r = page(
            r#"<html><head>
<script async src="https://www.googletagmanager.com/gtag/js?id=G-ABC123XYZ"></script>
<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}gtag('js',new Date());gtag('config','G-ABC123XYZ');</script>
<script>!function(f,b,e,v){}(window,document,'script','https://connect.facebook.net/en_US/fbevents.js');fbq('init','1234567890');fbq('track','PageView');</script>
<noscript><img height="1" width="1" style="display:none" src="https://www.facebook.com/tr?id=1234567890&amp;ev=PageView&amp;noscript=1"/></noscript>
</head><body><a href="https://www.facebook.com/shop">Follow us</a></body></html>"#,
        );
        let names: Vec<&str> = r.vendors.iter().map(|v| v.vendor.as_str()).collect();
        assert_eq!(names, ["Google Analytics", "Meta Pixel"]);
        let ga = &r.vendors[0];
        assert_eq!(ga.accounts, ["G-ABC123XYZ"]);
        assert_eq!(ga.findings.len(), 2, "{:#?}", ga.findings);
        assert_eq!(ga.findings[1].reasons[0].code, "inline_code");
        let meta = &r.vendors[1];
        assert_eq!(meta.accounts, ["1234567890"]);
        // The inline snippet's URL makes the finding; its fbq( is not counted again.
        assert_eq!(meta.findings.len(), 2, "{:#?}", meta.findings);
        assert_eq!(meta.findings[0].element, "inline script");
        let noscript = &meta.findings[1];
        assert_eq!(noscript.element, "noscript > img");
        let c: Vec<&str> = noscript.reasons.iter().map(|r| r.code).collect();
        assert_eq!(c, ["known_tracker", "tiny_image", "hidden", "noscript"]);
    }

    #[test]
    fn personal_data_in_links_is_reported_with_who_gets_it() {
        let mail = "From: News <news@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n\
<a href=\"https://partner.example/offer?email=alice%40example.com\">offer</a>\
<a href=\"https://www.shop.example/prefs?email=alice%40example.com\">prefs</a>\
<a href=\"https://www.shop.example/?utm_source=news\">shop</a>";
        let r = scan_email(&patterns(), "m.eml", mail.as_bytes()).unwrap();
        assert_eq!(r.first_party.as_deref(), Some("shop.example"));
        assert_eq!(r.trackers, 2, "{r:#?}");
        assert_eq!(
            r.vendors[0].findings[0].risk,
            "sends the recipient's email address in clear to partner.example, a third party"
        );
        assert!(r.vendors[1].findings[0].risk.starts_with(
            "puts the recipient's email address in clear in a URL of www.shop.example"
        ));
    }

    #[test]
    fn repeated_urls_are_counted_once() {
        let r = page(
            "<a href=\"https://x.example/?email=a%40b.example\">1</a><a href=\"https://x.example/?email=a%40b.example\">2</a>",
        );
        assert_eq!(r.findings, 1);
        assert_eq!(r.vendors[0].findings[0].count, 2);
    }
}
