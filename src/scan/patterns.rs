//! The vendors `pixeltrack scan` knows, as data: `data/trackers.toml` (its format is
//! documented at its top and in the README), compiled in, plus any `--patterns FILE`.
//! Loading checks everything once (unknown keys, categories, empty rules, regexes), so a
//! scan only matches. Paths are globs or regexes run by the linear-time `regex` crate:
//! a pattern file cannot make a scan hang.

use regex::Regex;
use serde::Deserialize;
use url::Url;

/// The built-in vendor list.
pub const BUILTIN: &str = include_str!("../../data/trackers.toml");

/// The categories a vendor may have.
pub const CATEGORIES: [&str; 6] = [
    "analytics",
    "ads",
    "tag-manager",
    "session-replay",
    "email-service",
    "self-hosted",
];

#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("{0}")]
    Toml(String),
    #[error("vendor {vendor:?}: {problem}")]
    Invalid { vendor: String, problem: String },
}

/// What a URL is used for in the document: loaded with it, or followed when clicked.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum On {
    /// Images, scripts, frames, CSS, URLs in inline scripts.
    #[default]
    Load,
    /// Links.
    Click,
    /// Either.
    Any,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    vendor: Vec<VendorDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorDef {
    name: String,
    category: String,
    learns: String,
    risk: String,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    code: Vec<String>,
    #[serde(default, rename = "match")]
    rules: Vec<RuleDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    host: Option<String>,
    path: Option<String>,
    path_regex: Option<String>,
    #[serde(default)]
    params: Vec<String>,
    attr: Option<String>,
    #[serde(default)]
    on: On,
}

/// One known vendor.
#[derive(Debug)]
pub struct Vendor {
    pub name: String,
    pub category: String,
    pub learns: String,
    pub risk: String,
    ids: Vec<Regex>,
    code: Vec<String>,
    rules: Vec<Rule>,
}

/// One URL rule of a vendor.
#[derive(Debug)]
pub struct Rule {
    host: Option<String>,
    path: Option<(String, Regex)>,
    params: Vec<String>,
    attr: Option<String>,
    on: On,
}

/// The vendor list: the built-in one, extended by pattern files.
#[derive(Debug)]
pub struct Patterns {
    vendors: Vec<Vendor>,
}

fn invalid(vendor: &str, problem: impl Into<String>) -> PatternError {
    PatternError::Invalid {
        vendor: vendor.to_owned(),
        problem: problem.into(),
    }
}

/// A regex for a glob over a whole path: `*` matches any characters, the rest literally.
fn glob(pattern: &str) -> Result<Regex, regex::Error> {
    let body: Vec<String> = pattern.split('*').map(regex::escape).collect();
    Regex::new(&format!("^{}$", body.join(".*")))
}

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
}

impl Vendor {
    fn from_def(d: VendorDef) -> Result<Vendor, PatternError> {
        let name = d.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(invalid(&d.name, "name must be 1-60 characters"));
        }
        if !CATEGORIES.contains(&d.category.as_str()) {
            return Err(invalid(
                &name,
                format!(
                    "category {:?} is not one of {}",
                    d.category,
                    CATEGORIES.join(", ")
                ),
            ));
        }
        if d.rules.is_empty() && d.code.is_empty() {
            return Err(invalid(
                &name,
                "needs at least one match rule or code marker",
            ));
        }
        if d.code.iter().any(|c| c.trim().len() < 3) {
            return Err(invalid(&name, "code markers must be at least 3 characters"));
        }
        let ids = d
            .ids
            .iter()
            .map(|p| compile(p).map_err(|e| invalid(&name, format!("ids {p:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        let rules = d
            .rules
            .into_iter()
            .map(|r| Rule::from_def(&name, r))
            .collect::<Result<_, _>>()?;
        Ok(Vendor {
            name,
            category: d.category,
            learns: d.learns.trim().to_owned(),
            risk: d.risk.trim().to_owned(),
            ids,
            code: d.code,
            rules,
        })
    }

    /// The first rule that `url`, used as `on` by an element with the attributes `attrs`
    /// (lowercase names), matches.
    pub fn rule_for(&self, url: &Url, on: On, attrs: &[String]) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(url, on, attrs))
    }

    /// The first code marker found in an inline script.
    pub fn marker_in(&self, code: &str) -> Option<&str> {
        self.code
            .iter()
            .find(|m| code.contains(m.as_str()))
            .map(String::as_str)
    }

    /// Account ids in `text` (a URL or inline code): each `ids` regex's first group or
    /// whole match, in order, without repeats.
    pub fn account_ids(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for re in &self.ids {
            for c in re.captures_iter(text).take(10) {
                let m = c.get(1).or_else(|| c.get(0)).map(|m| m.as_str().to_owned());
                if let Some(m) = m.filter(|m| !out.contains(m)) {
                    out.push(m);
                }
            }
        }
        out
    }
}

impl Rule {
    fn from_def(vendor: &str, d: RuleDef) -> Result<Rule, PatternError> {
        let host = match d.host {
            Some(h) => {
                let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
                let ok = !h.is_empty()
                    && h.contains('.')
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !ok {
                    return Err(invalid(
                        vendor,
                        format!("host {h:?} must be a domain such as example.com"),
                    ));
                }
                Some(h)
            }
            None => None,
        };
        let path = match (d.path, d.path_regex) {
            (Some(_), Some(_)) => return Err(invalid(vendor, "give path or path_regex, not both")),
            (Some(p), None) => {
                if !p.starts_with('/') && !p.starts_with('*') {
                    return Err(invalid(
                        vendor,
                        format!("path {p:?} must start with / or *"),
                    ));
                }
                let re = glob(&p).map_err(|e| invalid(vendor, format!("path {p:?}: {e}")))?;
                Some((p, re))
            }
            (None, Some(p)) => {
                let re =
                    compile(&p).map_err(|e| invalid(vendor, format!("path_regex {p:?}: {e}")))?;
                Some((p, re))
            }
            (None, None) => None,
        };
        let attr = d.attr.map(|a| a.trim().to_ascii_lowercase());
        if host.is_none() && path.is_none() && attr.is_none() && d.params.is_empty() {
            return Err(invalid(
                vendor,
                "a match rule needs a host, a path, a path_regex, params or an attr",
            ));
        }
        Ok(Rule {
            host,
            path,
            params: d.params,
            attr,
            on: d.on,
        })
    }

    fn matches(&self, url: &Url, on: On, attrs: &[String]) -> bool {
        if !(self.on == On::Any || self.on == on) {
            return false;
        }
        if let Some(h) = &self.host {
            let Some(host) = url.host_str() else {
                return false;
            };
            let host = host.trim_end_matches('.');
            let sub = host.len() > h.len()
                && host.ends_with(h.as_str())
                && host.as_bytes()[host.len() - h.len() - 1] == b'.';
            if !(host.eq_ignore_ascii_case(h) || sub) {
                return false;
            }
        }
        if let Some((_, re)) = &self.path {
            if !re.is_match(url.path()) {
                return false;
            }
        }
        if !self.params.is_empty() {
            let names: Vec<_> = url.query_pairs().map(|(k, _)| k).collect();
            if !self.params.iter().all(|p| names.iter().any(|n| n == p)) {
                return false;
            }
        }
        if let Some(a) = &self.attr {
            if !attrs.iter().any(|x| x == a) {
                return false;
            }
        }
        true
    }

    /// The rule as evidence: `facebook.com /tr`, `any host */p.gif ?s`, `[data-site]`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (&self.host, &self.path) {
            (Some(h), _) => parts.push(h.clone()),
            (None, Some(_)) => parts.push("any host".to_owned()),
            (None, None) => {}
        }
        if let Some((p, _)) = &self.path {
            parts.push(p.clone());
        }
        if !self.params.is_empty() {
            parts.push(format!("?{}", self.params.join("&")));
        }
        if let Some(a) = &self.attr {
            parts.push(format!("[{a}]"));
        }
        parts.join(" ")
    }
}

impl Patterns {
    /// Parses one pattern file.
    pub fn parse(text: &str) -> Result<Patterns, PatternError> {
        let file: FileDef = toml::from_str(text).map_err(|e| PatternError::Toml(e.to_string()))?;
        let mut out = Patterns {
            vendors: Vec::new(),
        };
        for def in file.vendor {
            let v = Vendor::from_def(def)?;
            if out.vendors.iter().any(|o| o.name == v.name) {
                return Err(invalid(&v.name, "is listed twice"));
            }
            out.vendors.push(v);
        }
        Ok(out)
    }

    /// The built-in list (`data/trackers.toml`).
    pub fn builtin() -> Result<Patterns, PatternError> {
        Patterns::parse(BUILTIN)
    }

    /// Adds the vendors of `more`; one with a name already known replaces that vendor.
    pub fn extend(&mut self, more: Patterns) {
        for v in more.vendors {
            match self.vendors.iter_mut().find(|o| o.name == v.name) {
                Some(old) => *old = v,
                None => self.vendors.push(v),
            }
        }
    }

    pub fn vendors(&self) -> &[Vendor] {
        &self.vendors
    }

    /// The first vendor (in file order) with a rule that `url` matches.
    pub fn match_url(&self, url: &Url, on: On, attrs: &[String]) -> Option<(&Vendor, &Rule)> {
        self.vendors
            .iter()
            .find_map(|v| v.rule_for(url, on, attrs).map(|r| (v, r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Patterns {
        Patterns::builtin().expect("data/trackers.toml parses")
    }

    fn vendor_of(p: &Patterns, url: &str, on: On, attrs: &[&str]) -> Option<String> {
        let url = Url::parse(url).unwrap();
        let attrs: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
        p.match_url(&url, on, &attrs).map(|(v, _)| v.name.clone())
    }

    #[test]
    fn the_builtin_list_loads_and_covers_the_issue_s_vendors() {
        let p = builtin();
        for name in [
            "Meta Pixel",
            "Google Analytics",
            "Google Tag Manager",
            "LinkedIn Insight Tag",
            "TikTok Pixel",
            "X (Twitter) Pixel",
            "Microsoft UET",
            "Hotjar",
            "Matomo",
            "Plausible",
            "Umami",
            "GoatCounter",
            "pixeltrack",
            "Mailchimp",
            "SendGrid",
            "Mailgun",
            "Amazon SES",
            "HubSpot",
            "Klaviyo",
            "Brevo",
            "listmonk",
            "Mautic",
        ] {
            assert!(p.vendors().iter().any(|v| v.name == name), "{name}");
        }
    }

    #[test]
    fn urls_match_their_vendor_and_only_for_their_use() {
        let p = builtin();
        let token = "AQFabcdefghijklmnopqrstuvwxyz0123456789_-ABCDEFGH";
        let cases: &[(&str, On, &[&str], Option<&str>)] = &[
            ("https://www.facebook.com/tr?id=1&ev=PageView", On::Load, &[], Some("Meta Pixel")),
            ("https://www.facebook.com/tr/?id=1", On::Load, &[], Some("Meta Pixel")),
            // A link to a Facebook page is not the pixel.
            ("https://www.facebook.com/acme", On::Click, &[], None),
            ("https://www.facebook.com/tr?id=1", On::Click, &[], None),
            ("https://notfacebook.com/tr", On::Load, &[], None),
            ("https://connect.facebook.net/en_US/fbevents.js", On::Load, &[], Some("Meta Pixel")),
            ("https://www.googletagmanager.com/gtag/js?id=G-ABC123", On::Load, &[], Some("Google Analytics")),
            ("https://www.googletagmanager.com/gtm.js?id=GTM-AB12", On::Load, &[], Some("Google Tag Manager")),
            ("https://region1.google-analytics.com/g/collect?v=2", On::Load, &[], Some("Google Analytics")),
            ("https://u123.ct.sendgrid.net/wf/open?upn=abc", On::Load, &[], Some("SendGrid")),
            ("https://u123.ct.sendgrid.net/ls/click?upn=abc", On::Click, &[], Some("SendGrid")),
            ("https://u123.ct.sendgrid.net/ls/click?upn=abc", On::Load, &[], None),
            ("https://shop.us21.list-manage.com/track/open.php?u=1&id=2&e=3", On::Load, &[], Some("Mailchimp")),
            ("https://shop.example/p.gif?s=k3v9", On::Load, &[], Some("pixeltrack")),
            ("https://shop.example/p.gif", On::Load, &[], None),
            ("https://t.example/t.js", On::Load, &["data-site"], Some("pixeltrack")),
            ("https://t.example/t.js", On::Load, &[], None),
            (&format!("https://t.example/o/{token}.gif"), On::Load, &[], Some("pixeltrack")),
            (&format!("https://t.example/pt/c/{token}"), On::Click, &[], Some("pixeltrack")),
            ("https://t.example/o/About.gif", On::Load, &[], None),
            ("https://email.shop.example/c/eJxVjLEOgjAUAH_lpbOFtuUoRl", On::Click, &[], Some("Mailgun")),
            ("https://a.b/campaign/1b2c3d4e-0000-4000-8000-000000000001/1b2c3d4e-0000-4000-8000-000000000002/px.png", On::Load, &[], Some("listmonk")),
            ("https://m.shop.example/email/5f3e2a1b9c8d7.gif", On::Load, &[], Some("Mautic")),
            ("https://plausible.io/js/script.js", On::Load, &[], Some("Plausible")),
            ("https://stats.shop.example/js/script.js", On::Load, &["data-domain"], Some("Plausible")),
            ("https://stats.shop.example/js/script.js", On::Load, &[], None),
            ("https://shop.example/landing?_hsenc=p2AN&_hsmi=1", On::Click, &[], Some("HubSpot")),
        ];
        for (url, on, attrs, want) in cases {
            assert_eq!(
                vendor_of(&p, url, *on, attrs).as_deref(),
                *want,
                "{url} {on:?}"
            );
        }
    }

    #[test]
    fn account_ids_come_from_urls_and_code() {
        let p = builtin();
        let ga = p
            .vendors()
            .iter()
            .find(|v| v.name == "Google Analytics")
            .unwrap();
        assert_eq!(
            ga.account_ids("gtag('config', 'G-ABC123XYZ'); gtag('config', 'G-ABC123XYZ')"),
            vec!["G-ABC123XYZ"]
        );
        let meta = p.vendors().iter().find(|v| v.name == "Meta Pixel").unwrap();
        assert_eq!(
            meta.account_ids("fbq('init', '1234567890');"),
            vec!["1234567890"]
        );
        assert_eq!(
            meta.account_ids("https://www.facebook.com/tr?id=987654321&ev=PageView"),
            vec!["987654321"]
        );
    }

    #[test]
    fn bad_pattern_files_are_refused_with_the_vendor_named() {
        let ok_vendor = |extra: &str| {
            format!(
                "[[vendor]]\nname = \"X\"\ncategory = \"ads\"\nlearns = \"l\"\nrisk = \"r\"\n{extra}"
            )
        };
        for (text, needle) in [
            (
                ok_vendor("match = [{ host = \"x.com\", colour = 1 }]"),
                "unknown field",
            ),
            (ok_vendor("match = [{ on = \"click\" }]"), "needs a host"),
            (ok_vendor(""), "at least one match rule"),
            (ok_vendor("match = [{ path_regex = \"(\" }]"), "path_regex"),
            (
                ok_vendor("match = [{ host = \"http://x.com/\" }]"),
                "must be a domain",
            ),
            (ok_vendor("match = [{ path = \"tr\" }]"), "must start with"),
            (
                ok_vendor("match = [{ host = \"x.com\" }]").replace("ads", "spyware"),
                "category",
            ),
            (
                format!(
                    "{}\n{}",
                    ok_vendor("code = [\"xyz(\"]"),
                    ok_vendor("code = [\"xyz(\"]")
                ),
                "twice",
            ),
        ] {
            let err = Patterns::parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} (wanted {needle})");
        }
    }

    #[test]
    fn the_readme_s_pattern_example_loads_and_matches() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Auditing pages and emails").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + section[start..].find("```").unwrap();
        let p = Patterns::parse(&section[start..end]).unwrap();
        for (url, on, attrs) in [
            ("https://t.acme-mail.example/open/x", On::Load, &[][..]),
            ("https://acme-mail.example/c/abc", On::Click, &[]),
            (
                "https://mail.shop.example/t/0123456789abcdef0123456789abcdef.gif?r=1",
                On::Load,
                &[],
            ),
            (
                "https://shop.example/js/acme.js",
                On::Load,
                &["data-acme-id"],
            ),
        ] {
            assert_eq!(
                vendor_of(&p, url, on, attrs).as_deref(),
                Some("Acme Mail"),
                "{url}"
            );
        }
        let v = &p.vendors()[0];
        assert_eq!(
            v.account_ids("https://acme-mail.example/open/1?acct=42"),
            ["42"]
        );
    }

    #[test]
    fn a_pattern_file_adds_vendors_and_replaces_by_name() {
        let mut p = builtin();
        let n = p.vendors().len();
        p.extend(
            Patterns::parse(
                "[[vendor]]\nname = \"Meta Pixel\"\ncategory = \"ads\"\nlearns = \"l\"\nrisk = \"mine\"\nmatch = [{ host = \"facebook.com\" }]\n\
                 [[vendor]]\nname = \"Acme Mail\"\ncategory = \"email-service\"\nlearns = \"l\"\nrisk = \"r\"\nmatch = [{ host = \"acme-mail.test\", path = \"/open/*\" }]\n",
            )
            .unwrap(),
        );
        assert_eq!(p.vendors().len(), n + 1);
        assert_eq!(
            vendor_of(&p, "https://t.acme-mail.test/open/abc", On::Load, &[]).as_deref(),
            Some("Acme Mail")
        );
        let meta = p.vendors().iter().find(|v| v.name == "Meta Pixel").unwrap();
        assert_eq!(meta.risk, "mine");
    }
}
