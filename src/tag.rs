//! Tagging an email: insert the open pixel and turn every `http(s)` link into a
//! signed click link. Uses lol_html, a streaming HTML rewriter that parses like a
//! browser, so malformed HTML is handled and everything we do not touch stays
//! byte-identical. `mailto:`, `tel:`, anchors, relative links and links marked
//! `data-pixeltrack="off"` are left alone.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use lol_html::html_content::ContentType;
use lol_html::{element, end, rewrite_str, RewriteStrSettings};

use crate::token::{destination, Action, EmailToken, Keyring, MAX_RECIPIENT};

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("recipient id must be 1 to {MAX_RECIPIENT} characters without control characters")]
    BadRecipient,
    #[error("no token key available")]
    NoKey,
    #[error("cannot parse the HTML: {0}")]
    Html(String),
}

/// Why links under `base` (the public URL) would not reach this server from a
/// recipient's mail client, if they would not: a loopback, private, link-local or
/// unspecified address, or `localhost`. Tagging then needs an explicit opt-in
/// (`email tag --allow-local`), since such emails track nothing once sent.
pub fn local_base(base: &str) -> Option<String> {
    let u = url::Url::parse(base).ok()?;
    let why = match u.host()? {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            (d == "localhost" || d.ends_with(".localhost")).then_some("a local host name")?
        }
        url::Host::Ipv4(a) => {
            if a.is_loopback() {
                "a loopback address"
            } else if a.is_private() || a.octets()[0] == 100 && (64..128).contains(&a.octets()[1]) {
                "a private address"
            } else if a.is_link_local() {
                "a link-local address"
            } else if a.is_unspecified() {
                "an unspecified address"
            } else {
                return None;
            }
        }
        url::Host::Ipv6(a) => {
            let first = a.segments()[0];
            if a.is_loopback() {
                "a loopback address"
            } else if first & 0xfe00 == 0xfc00 {
                "a private address"
            } else if first & 0xffc0 == 0xfe80 {
                "a link-local address"
            } else if a.is_unspecified() {
                "an unspecified address"
            } else if let Some(v4) = a.to_ipv4_mapped() {
                return local_base(&format!("http://{v4}/"));
            } else {
                return None;
            }
        }
    };
    Some(format!(
        "the links would point at {base}, {why}: recipients' mail clients cannot reach it"
    ))
}

/// Why an ad link cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum AdLinkError {
    #[error("{0} must be 1-64 characters of A-Z a-z 0-9 . _ ~ : -")]
    BadId(&'static str),
    #[error(transparent)]
    Destination(#[from] crate::token::BadDestination),
    #[error("no token key available: run 'pixeltrack key rotate'")]
    NoKey,
}

/// A signed ad link `<base>/c/<token>` to `url` for a campaign (and optionally an ad
/// and a placement), as `pixeltrack link create` and the API make them.
pub fn ad_link(
    keyring: &Keyring,
    base: &str,
    site_id: i64,
    campaign_id: i64,
    ad: Option<&str>,
    placement: Option<&str>,
    url: &str,
) -> Result<(String, String), AdLinkError> {
    let id = |what: &'static str, v: Option<&str>| match v.map(str::trim).filter(|v| !v.is_empty())
    {
        None => Ok(String::new()),
        Some(v) if crate::model::valid_ad_id(v) => Ok(v.to_owned()),
        Some(_) => Err(AdLinkError::BadId(what)),
    };
    let url = destination(url)?;
    let token = EmailToken {
        site_id,
        campaign_id,
        recipient: None,
        action: Action::AdClick {
            url: url.clone(),
            ad: id("the ad", ad)?,
            placement: id("the placement", placement)?,
        },
    };
    let sealed = keyring.seal_email(&token).ok_or(AdLinkError::NoKey)?;
    Ok((format!("{base}/c/{sealed}"), url))
}

/// A link with this `href` becomes the recipient's consent-withdrawal link.
pub const WITHDRAW_PLACEHOLDER: &str = "pixeltrack:withdraw";

/// Who the email is for.
#[derive(Clone, Copy, Debug)]
pub enum Recipient<'a> {
    /// A recipient id, sealed into every token.
    Id(&'a str),
    /// A sending platform's merge tag such as `{{subscriber_id}}`, appended as `?r=`.
    /// Anyone can change that parameter: per-recipient numbers from merge-tag links are
    /// only as trustworthy as the people who receive the email.
    MergeTag(&'a str),
}

pub struct Tagger<'a> {
    pub keyring: &'a Keyring,
    /// Public base URL of the server, without a trailing slash.
    pub base: &'a str,
    pub site_id: i64,
    pub campaign_id: i64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tagged {
    pub html: String,
    pub links: usize,
    /// `http(s)` links left alone because they are not safe to redirect to.
    pub refused: Vec<String>,
}

/// Decodes the character references that appear in attribute values.
pub(crate) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let ch = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn valid_recipient(r: &str) -> bool {
    !r.is_empty() && r.len() <= MAX_RECIPIENT && !r.chars().any(char::is_control)
}

impl Tagger<'_> {
    fn token(&self, recipient: Recipient<'_>, action: Action) -> Result<String, TagError> {
        let t = EmailToken {
            site_id: self.site_id,
            campaign_id: self.campaign_id,
            recipient: match recipient {
                Recipient::Id(r) => Some(r.to_owned()),
                Recipient::MergeTag(_) => None,
            },
            action,
        };
        self.keyring.seal_email(&t).ok_or(TagError::NoKey)
    }

    fn suffix(recipient: Recipient<'_>) -> String {
        match recipient {
            Recipient::Id(_) => String::new(),
            Recipient::MergeTag(tag) => format!("?r={tag}"),
        }
    }

    /// The open pixel's URL.
    pub fn open_url(&self, recipient: Recipient<'_>) -> Result<String, TagError> {
        let t = self.token(recipient, Action::Open)?;
        Ok(format!(
            "{}/o/{t}.gif{}",
            self.base,
            Self::suffix(recipient)
        ))
    }

    /// The recipient's consent-withdrawal URL (not for merge tags: it must be signed).
    pub fn withdraw_url(&self, recipient: &str) -> Result<String, TagError> {
        let t = self.token(Recipient::Id(recipient), Action::Withdraw)?;
        Ok(format!("{}/u/{t}", self.base))
    }

    /// A click URL for `dest` (validated).
    pub fn click_url(
        &self,
        recipient: Recipient<'_>,
        dest: &str,
    ) -> Result<Option<String>, TagError> {
        let Ok(dest) = destination(dest) else {
            return Ok(None);
        };
        let t = self.token(recipient, Action::Click(dest))?;
        Ok(Some(format!(
            "{}/c/{t}{}",
            self.base,
            Self::suffix(recipient)
        )))
    }

    pub fn tag(&self, html: &str, recipient: Recipient<'_>) -> Result<Tagged, TagError> {
        if let Recipient::Id(r) = recipient {
            if !valid_recipient(r) {
                return Err(TagError::BadRecipient);
            }
        }
        let pixel = format!(
            "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">",
            self.open_url(recipient)?
        );
        let placed = Rc::new(Cell::new(false));
        let links = Rc::new(Cell::new(0usize));
        let refused = Rc::new(RefCell::new(Vec::new()));
        let failure: Rc<RefCell<Option<TagError>>> = Rc::new(RefCell::new(None));
        let (p1, p2) = (placed.clone(), placed.clone());
        let (px1, px2) = (pixel.clone(), pixel);
        let (l, rf, f) = (links.clone(), refused.clone(), failure.clone());
        let settings = RewriteStrSettings::new()
            .append_element_content_handler(element!("a[href]", move |el| {
                if el
                    .get_attribute("data-pixeltrack")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"))
                {
                    return Ok(());
                }
                let href = decode_entities(&el.get_attribute("href").unwrap_or_default());
                let trimmed = href.trim();
                if trimmed.eq_ignore_ascii_case(WITHDRAW_PLACEHOLDER) {
                    if let Recipient::Id(r) = recipient {
                        match self.withdraw_url(r) {
                            Ok(url) => el.set_attribute("href", &url)?,
                            Err(e) => *f.borrow_mut() = Some(e),
                        }
                    }
                    return Ok(());
                }
                let lower = trimmed.to_ascii_lowercase();
                if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                    return Ok(());
                }
                match self.click_url(recipient, trimmed) {
                    Ok(Some(url)) => {
                        el.set_attribute("href", &url)?;
                        l.set(l.get() + 1);
                    }
                    Ok(None) => rf.borrow_mut().push(trimmed.chars().take(200).collect()),
                    Err(e) => *f.borrow_mut() = Some(e),
                }
                Ok(())
            }))
            .append_element_content_handler(element!("body", move |el| {
                if !p1.get() {
                    el.append(&px1, ContentType::Html);
                    p1.set(true);
                }
                Ok(())
            }))
            .append_document_content_handler(end!(move |end| {
                if !p2.get() {
                    end.append(&px2, ContentType::Html);
                }
                Ok(())
            }));
        let html = rewrite_str(html, settings).map_err(|e| TagError::Html(e.to_string()))?;
        if let Some(e) = failure.take() {
            return Err(e);
        }
        let refused = refused.take();
        Ok(Tagged {
            html,
            links: links.get(),
            refused,
        })
    }
}

/// The file batch mode writes besides one email per recipient: `recipient,file` rows.
pub const BATCH_INDEX: &str = "index.csv";

/// Reads a batch's recipient ids from a CSV: the column named `recipient`, `id`,
/// `email` or `subscriber_id` (any case) if the first row has one, else the first
/// column; cells are trimmed, blank ones skipped, a leading byte-order mark ignored.
/// What `email tag --recipients FILE` and the dashboard's batch form read.
pub fn read_recipients(input: impl std::io::Read) -> Result<Vec<String>, csv::Error> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut rows = rdr.records();
    let mut out = Vec::new();
    let mut col = 0;
    if let Some(first) = rows.next() {
        let first = first?;
        let names = ["recipient", "id", "email", "subscriber_id"];
        let cell = |h: &str| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase();
        match first.iter().position(|h| names.contains(&cell(h).as_str())) {
            Some(i) => col = i,
            None => out.extend(
                first
                    .get(0)
                    .map(|s| s.trim_start_matches('\u{feff}').trim().to_owned()),
            ),
        }
    }
    for row in rows {
        if let Some(v) = row?.get(col) {
            out.push(v.trim().to_owned());
        }
    }
    out.retain(|r| !r.is_empty());
    Ok(out)
}

/// Batch mode's file name for recipient number `i` (from 0): the number, then the id
/// with every character but `A-Z a-z 0-9 . - _ @` made `_` (and a dot right after a
/// dot, or last, too), cut at 64 characters. Ids are whatever a list holds, so the name is never
/// a path: no `/` or `\`, no `..`, no control character, and unique by its number.
pub fn batch_file_name(i: usize, recipient: &str) -> String {
    let mut cleaned = String::new();
    let mut last = '_';
    for c in recipient.chars().take(64) {
        let c =
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@') || c == '.' && last != '.'
            {
                c
            } else {
                '_'
            };
        cleaned.push(c);
        last = c;
    }
    // Nor a dot before the extension's.
    if cleaned.ends_with('.') {
        cleaned.pop();
        cleaned.push('_');
    }
    format!("{:05}-{cleaned}.html", i + 1)
}

/// What a batch wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub emails: usize,
    /// Click links in each email.
    pub links: usize,
    /// Links left untracked (the same in every email).
    pub refused: Vec<String>,
}

/// Why a batch stopped.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("recipient {number} ({recipient:?}): {source}")]
    Recipient {
        /// From 1, in the list's order.
        number: usize,
        /// The id, cut at 60 characters.
        recipient: String,
        source: TagError,
    },
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

impl Tagger<'_> {
    /// Batch mode: `html` tagged for each recipient, handed to `write` as (file name,
    /// contents) — one file per recipient, named by [`batch_file_name`], then
    /// [`BATCH_INDEX`], whose cells are CSV-injection-safe (`report::export::csv_line`).
    /// Every id is checked before anything is written, so a bad one writes nothing.
    pub fn tag_batch(
        &self,
        html: &str,
        recipients: &[String],
        mut write: impl FnMut(&str, &[u8]) -> std::io::Result<()>,
    ) -> Result<Batch, BatchError> {
        let bad = |i: usize, r: &str, source: TagError| BatchError::Recipient {
            number: i + 1,
            recipient: r.chars().take(60).collect(),
            source,
        };
        if let Some((i, r)) = recipients
            .iter()
            .enumerate()
            .find(|(_, r)| !valid_recipient(r))
        {
            return Err(bad(i, r, TagError::BadRecipient));
        }
        let mut index = String::from("recipient,file\n");
        let mut batch = Batch::default();
        for (i, r) in recipients.iter().enumerate() {
            let out = self.tag(html, Recipient::Id(r)).map_err(|e| bad(i, r, e))?;
            let name = batch_file_name(i, r);
            write(&name, out.html.as_bytes())?;
            index.push_str(&crate::report::export::csv_line(&[r.clone(), name]));
            if i == 0 {
                batch.refused = out.refused;
            }
            batch.links = out.links;
            batch.emails += 1;
        }
        write(BATCH_INDEX, index.as_bytes())?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Key, TokenRoute};

    #[test]
    fn links_to_local_or_private_addresses_are_told_apart_from_public_ones() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://app.localhost",
            "http://10.1.2.3",
            "http://192.168.1.5:8080",
            "http://172.20.0.1",
            "http://169.254.169.254",
            "http://0.0.0.0:8080",
            "http://[::1]:8080",
            "http://[fd00::1]",
            "http://[::ffff:127.0.0.1]",
        ] {
            assert!(local_base(local).is_some(), "{local}");
        }
        for public in [
            "https://t.example.com",
            "http://203.0.113.9",
            "https://[2001:db8::1]",
            "https://localhost.example.com",
        ] {
            assert_eq!(local_base(public), None, "{public}");
        }
    }

    fn ring() -> Keyring {
        Keyring::new(vec![Key::new(1, &[7; 32])])
    }

    fn tagger(r: &Keyring) -> Tagger<'_> {
        Tagger {
            keyring: r,
            base: "https://t.example",
            site_id: 1,
            campaign_id: 9,
        }
    }

    const EMAIL: &str = r##"<!doctype html>
<html><head><title>Hi</title></head>
<body>
<p>Hello <b>there</b> — see <a href="https://example.com/pricing?a=1&amp;b=2">pricing</a>,
<a class=x href=HTTP://Example.com/UP>shouting</a>,
<a href="mailto:sales@example.com">mail</a>, <a href="tel:+123">call</a>,
<a href="#top">top</a>, <a href="/relative">rel</a>,
<a data-pixeltrack="off" href="https://example.com/unsubscribe">unsubscribe</a>,
<a href="javascript:alert(1)">js</a>, <a href="https://user@evil.example/">creds</a>.</p>
</body></html>
"##;

    #[test]
    fn links_and_pixel_and_nothing_else() {
        let r = ring();
        let t = tagger(&r);
        let out = t.tag(EMAIL, Recipient::Id("alice@example.com")).unwrap();
        assert_eq!(out.links, 2);
        assert_eq!(out.refused, vec!["https://user@evil.example/".to_string()]);
        assert!(!out.html.contains("alice"));
        assert_eq!(out.html.matches("https://t.example/c/").count(), 2);
        assert_eq!(out.html.matches("https://t.example/o/").count(), 1);
        for untouched in [
            "mailto:sales@example.com",
            "tel:+123",
            "href=\"#top\"",
            "href=\"/relative\"",
            "data-pixeltrack=\"off\" href=\"https://example.com/unsubscribe\"",
            "javascript:alert(1)",
            "<p>Hello <b>there</b> — see ",
            "<!doctype html>\n<html><head><title>Hi</title></head>\n<body>\n",
        ] {
            assert!(out.html.contains(untouched), "{untouched}");
        }
        // The pixel sits at the end of the body.
        assert!(out.html.contains(".gif\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\"></body>"));
        // The click tokens carry the decoded destination.
        let href = out
            .html
            .split("href=\"https://t.example/c/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let tok = r.open_email(href, crate::token::TokenRoute::Click).unwrap();
        assert_eq!(
            tok.action,
            Action::Click("https://example.com/pricing?a=1&b=2".into())
        );
        assert_eq!(tok.recipient.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn unchanged_parts_stay_byte_identical() {
        let r = ring();
        let t = tagger(&r);
        let html =
            "<body><p>caf\u{e9} &nbsp; <i>x</i></p><!-- c --><a href=\"mailto:a@b\">m</a></body>";
        let out = t.tag(html, Recipient::Id("r1")).unwrap().html;
        let without_pixel = out.replace(
            &out[out.find("<img").unwrap()..out.find("</body>").unwrap()],
            "",
        );
        assert_eq!(without_pixel, html);
    }

    #[test]
    fn malformed_html_and_no_body() {
        let r = ring();
        let t = tagger(&r);
        for html in [
            "<p>unclosed <a href=https://example.com/x>link",
            "<a href='https://example.com/'><div></a>",
            "",
            "plain text",
        ] {
            let out = t.tag(html, Recipient::Id("r1")).unwrap();
            assert_eq!(out.html.matches("/o/").count(), 1, "{html}");
            if html.contains("href") {
                assert_eq!(out.links, 1, "{html}");
            }
        }
    }

    #[test]
    fn merge_tags_append_the_placeholder() {
        let r = ring();
        let t = tagger(&r);
        let out = t
            .tag(
                "<body><a href=\"https://example.com/\">x</a></body>",
                Recipient::MergeTag("{{subscriber_id}}"),
            )
            .unwrap();
        assert!(out.html.contains(".gif?r={{subscriber_id}}\""));
        assert!(out.html.contains("?r={{subscriber_id}}\">x</a>"));
        assert!(t.tag("x", Recipient::Id("")).is_err());
        assert!(t.tag("x", Recipient::Id("a\nb")).is_err());
    }

    #[test]
    fn entities_decode() {
        assert_eq!(
            decode_entities("a&amp;b&#38;c&#x26;d&lt;&bogus;&"),
            "a&b&c&d<&bogus;&"
        );
    }

    #[test]
    fn recipients_come_from_the_named_column_or_the_first() {
        let read = |csv: &str| read_recipients(csv.as_bytes()).unwrap();
        assert_eq!(
            read("name,Email\nAl,al@x.example\nBo, bo@x.example \nCy,\n"),
            ["al@x.example", "bo@x.example"]
        );
        assert_eq!(
            read("\u{feff}id\n7\n8"),
            ["7", "8"],
            "a BOM before the header"
        );
        assert_eq!(
            read("\u{feff}u1\nu2,extra\n\n u3"),
            ["u1", "u2", "u3"],
            "no header: the first column"
        );
        assert_eq!(read("\"a,b\",x\n"), ["a,b"], "quoted cells");
        assert!(read("").is_empty());
        let err = read_recipients(&b"id\n\xff\xfe\n"[..]).unwrap_err();
        assert!(
            err.to_string().contains("UTF-8") || err.to_string().contains("utf-8"),
            "{err}"
        );
    }

    #[test]
    fn batch_file_names_are_never_paths() {
        for (i, r) in [
            "../../x<script>",
            "..",
            "a/b\\c",
            "x\u{0}y\u{7f}\n",
            "ü…/../",
            "...",
            &"a".repeat(300),
        ]
        .into_iter()
        .enumerate()
        {
            let name = batch_file_name(i, r);
            assert!(
                name.starts_with(&format!("{:05}-", i + 1)) && name.ends_with(".html"),
                "{name}"
            );
            assert!(
                !name.contains("..")
                    && !name.contains(['/', '\\'])
                    && !name.chars().any(|c| c.is_control() || !c.is_ascii()),
                "{r:?} became {name:?}"
            );
            assert!(name.len() <= 5 + 1 + 64 + 5, "{name}");
        }
        assert_eq!(
            batch_file_name(0, "al.b@x.example"),
            "00001-al.b@x.example.html"
        );
    }

    #[test]
    fn a_batch_tags_each_recipient_and_indexes_them_safely() {
        let r = ring();
        let t = tagger(&r);
        let list: Vec<String> = [
            "al@x.example",
            "../../x<script>",
            "=cmd|' /C calc'!A0",
            "say \"hi\"",
        ]
        .map(String::from)
        .into();
        let mut files: Vec<(String, String)> = Vec::new();
        let batch = t
            .tag_batch(EMAIL, &list, |name, body| {
                files.push((name.to_owned(), String::from_utf8(body.to_vec()).unwrap()));
                Ok(())
            })
            .unwrap();
        assert_eq!(batch.emails, 4);
        assert_eq!(batch.links, 2);
        assert_eq!(batch.refused.len(), 1, "{:?}", batch.refused);
        assert_eq!(files.len(), 5);
        let (index_name, index) = files.last().unwrap();
        assert_eq!(index_name, BATCH_INDEX);
        let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(index.as_bytes())
            .records()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 4);
        for (i, (recipient, (name, html))) in list.iter().zip(&files).enumerate() {
            assert_eq!(&rows[i][1], name);
            let shown = if recipient.starts_with('=') {
                format!("'{recipient}")
            } else {
                recipient.clone()
            };
            assert_eq!(rows[i][0], shown, "the index cell of {recipient:?}");
            // Every token in the file opens to this file's recipient.
            for (marker, route) in [("/o/", TokenRoute::Open), ("/c/", TokenRoute::Click)] {
                let at =
                    html.find(&format!("https://t.example{marker}")).unwrap() + 17 + marker.len();
                let token = html[at..].split(['.', '"', '?']).next().unwrap();
                let opened = r.open_email(token, route).unwrap();
                assert_eq!(
                    opened.recipient.as_deref(),
                    Some(recipient.as_str()),
                    "{name}"
                );
            }
        }
        // A bad id anywhere writes nothing, and says which.
        let bad = vec!["ok".to_owned(), "a\u{7}b".to_owned()];
        let mut wrote = 0;
        let err = t
            .tag_batch(EMAIL, &bad, |_, _| {
                wrote += 1;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(wrote, 0);
        assert!(err.to_string().starts_with("recipient 2 "), "{err}");
    }
}
