//! What an HTML document loads and links to, as the scanner needs it: every URL with the
//! element that uses it, whether that element is tiny (≤ 1×1) or hidden, and the code of
//! inline scripts. Parsed with lol_html, the streaming parser `tag.rs` rewrites email with,
//! here only reading (non-strict: markup that leaves the parser unsure is read on, not
//! refused, since a scan must not be dodged by odd HTML). `<noscript>` content, which the
//! parser sees as text, is parsed again as HTML with its elements marked.
//!
//! Hidden means: `display:none`, `visibility:hidden`, `opacity:0`, the `hidden`
//! attribute, a zero width or height, off-screen (`left`, `top` or a margin at -500 px or
//! beyond), clipped to nothing, `max-height:0`/`max-width:0` with `overflow:hidden`,
//! `mso-hide:all`, or inside an element that is. Only inline styles and attributes are
//! read: rules in style sheets are not applied to elements.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::LazyLock;

use lol_html::html_content::Element;
use lol_html::{element, text, HtmlRewriter, Settings};
use regex::Regex;

use super::patterns::On;
use crate::tag::decode_entities;

/// A URL the document uses, with what the scanner needs to judge it.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub on: On,
    /// The element and attribute: `img`, `script src`, `a href`, `td background`,
    /// `div style`, `style sheet`, `inline script`; `noscript > ` before those inside
    /// `<noscript>`.
    pub element: String,
    /// As written (entities decoded, trimmed).
    pub url: String,
    /// Width and height at most 1 px (each that is given; at least one given).
    pub tiny: bool,
    /// Why the element is hidden, if it is.
    pub hidden: Option<String>,
    /// Whether the element has a box whose size and visibility mean something (images,
    /// frames, elements with a background), as opposed to scripts, links, style sheets.
    pub sized: bool,
    pub noscript: bool,
    /// The element's attribute names (lowercase), for rules with `attr`.
    pub attrs: Vec<String>,
    /// The index of the inline script this URL was found in.
    pub script: Option<usize>,
}

/// The code of an inline `<script>`.
#[derive(Clone, Debug, PartialEq)]
pub struct InlineScript {
    pub code: String,
}

/// What a document uses.
#[derive(Debug, Default)]
pub struct Extracted {
    pub resources: Vec<Resource>,
    pub scripts: Vec<InlineScript>,
    /// `<base href>`.
    pub base: Option<String>,
    /// The page's own address: `<link rel=canonical>`, else `<meta property=og:url>`.
    pub page_url: Option<String>,
}

#[derive(Default)]
struct State {
    out: Extracted,
    /// Open hidden elements: (id, tag, why).
    hidden: Vec<(u64, String, String)>,
    next_id: u64,
    script_is_code: bool,
    script: String,
    style: String,
    noscript: String,
    noscripts: Vec<String>,
}

static CSS_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)url\(\s*(?:"([^"]*)"|'([^']*)'|([^'")\s]*))\s*\)"#).unwrap()
});

/// Absolute and protocol-relative URLs in script code.
static CODE_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(?:https?:)?//[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)+(?::\d{1,5})?(?:/[^\s'"`<>\\()]*)?"#).unwrap()
});

/// The `url(…)` values in CSS text.
pub fn css_urls(css: &str) -> Vec<String> {
    CSS_URL
        .captures_iter(css)
        .filter_map(|c| {
            c.iter()
                .skip(1)
                .flatten()
                .next()
                .map(|m| m.as_str().trim().to_owned())
        })
        .filter(|u| !u.is_empty())
        .collect()
}

/// The absolute or protocol-relative URLs in script code (`\/` unescaped first).
pub fn code_urls(code: &str) -> Vec<String> {
    let code = code.replace("\\/", "/");
    let mut out: Vec<String> = Vec::new();
    for m in CODE_URL.find_iter(&code) {
        let u = m.as_str().to_owned();
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// Inline style declarations, lowercase property names, values without `!important`.
pub fn declarations(style: &str) -> Vec<(String, String)> {
    let mut clean = String::with_capacity(style.len());
    let mut rest = style;
    while let Some(i) = rest.find("/*") {
        clean.push_str(&rest[..i]);
        rest = rest[i + 2..]
            .find("*/")
            .map_or("", |j| &rest[i + 2 + j + 2..]);
    }
    clean.push_str(rest);
    clean
        .split(';')
        .filter_map(|d| d.split_once(':'))
        .map(|(p, v)| {
            let v = v.trim();
            let v = v
                .strip_suffix("!important")
                .unwrap_or(v)
                .trim()
                .to_ascii_lowercase();
            (p.trim().to_ascii_lowercase(), v)
        })
        .collect()
}

/// A length in pixels: `1`, `1px`, `0`, `0%`, `0em`; `None` for anything relative.
fn px(v: &str) -> Option<f64> {
    let v = v.trim().to_ascii_lowercase();
    let num = v.strip_suffix("px").unwrap_or(&v).trim();
    if let Ok(n) = num.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    let zero = ["%", "em", "rem", "vw", "vh", "pt"]
        .iter()
        .any(|u| v.strip_suffix(u).and_then(|n| n.trim().parse::<f64>().ok()) == Some(0.0));
    zero.then_some(0.0)
}

fn style_value<'a>(style: &'a [(String, String)], prop: &str) -> Option<&'a str> {
    style
        .iter()
        .rev()
        .find(|(p, _)| p == prop)
        .map(|(_, v)| v.as_str())
}

/// The element's width and height in px, from its style or its attributes.
fn size(
    attr: impl Fn(&str) -> Option<String>,
    style: &[(String, String)],
) -> (Option<f64>, Option<f64>) {
    let dim = |name: &str| {
        style_value(style, name)
            .and_then(px)
            .or_else(|| attr(name).as_deref().and_then(px))
    };
    (dim("width"), dim("height"))
}

fn is_tiny(w: Option<f64>, h: Option<f64>) -> bool {
    let small = |d: Option<f64>| d.is_none_or(|d| d <= 1.0);
    (w.is_some() || h.is_some()) && small(w) && small(h)
}

/// Why an element is hidden by its own attributes and style, if it is.
fn hidden_by(
    attr: impl Fn(&str) -> Option<String>,
    style: &[(String, String)],
    (w, h): (Option<f64>, Option<f64>),
) -> Option<String> {
    if attr("hidden").is_some() {
        return Some("the hidden attribute".into());
    }
    let get = |p: &str| style_value(style, p);
    if get("display") == Some("none") {
        return Some("display:none".into());
    }
    if get("visibility").is_some_and(|v| v == "hidden" || v == "collapse") {
        return Some("visibility:hidden".into());
    }
    if get("opacity").and_then(|o| o.parse::<f64>().ok()) == Some(0.0) {
        return Some("opacity:0".into());
    }
    if get("mso-hide") == Some("all") {
        return Some("mso-hide:all".into());
    }
    if w == Some(0.0) {
        return Some("zero width".into());
    }
    if h == Some(0.0) {
        return Some("zero height".into());
    }
    for p in ["left", "top", "margin-left", "margin-top", "text-indent"] {
        if let Some(v) = get(p).filter(|v| px(v).is_some_and(|n| n <= -500.0)) {
            return Some(format!("off-screen ({p}:{v})"));
        }
    }
    if let Some(v) = get("clip").filter(|v| v.replace([' ', ','], "") == "rect(0000)") {
        return Some(format!("clipped to nothing (clip:{v})"));
    }
    let overflow_hidden = get("overflow") == Some("hidden");
    for p in ["max-height", "max-width"] {
        if overflow_hidden && get(p).and_then(px) == Some(0.0) {
            return Some(format!("{p}:0 with overflow:hidden"));
        }
    }
    None
}

/// Whether the start tag `next` ends an open `open` element whose end tag is optional
/// (HTML's rules for `p`, `li`, `dt`/`dd`, `td`/`th`, `tr`, `option`).
fn implicitly_closed_by(open: &str, next: &str) -> bool {
    const ENDS_P: &[&str] = &[
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "div",
        "dl",
        "fieldset",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "ul",
    ];
    match open {
        "p" => ENDS_P.contains(&next),
        "li" => next == "li",
        "dt" | "dd" => matches!(next, "dt" | "dd"),
        "td" | "th" => matches!(next, "td" | "th" | "tr" | "tbody" | "thead" | "tfoot"),
        "tr" => matches!(next, "tr" | "tbody" | "thead" | "tfoot"),
        "option" => matches!(next, "option" | "optgroup"),
        _ => false,
    }
}

/// Skips what is not a fetchable URL: anchors, `data:`, `javascript:`, `mailto:`, `cid:`…
fn worth_checking(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    !(lower.is_empty()
        || lower.starts_with('#')
        || [
            "data:",
            "javascript:",
            "mailto:",
            "tel:",
            "sms:",
            "cid:",
            "mid:",
            "about:",
            "blob:",
        ]
        .iter()
        .any(|s| lower.starts_with(s)))
}

/// Reads `html`; `in_noscript` marks everything found as inside `<noscript>` (and does
/// not look for inline scripts, which never run there).
fn read(html: &str, in_noscript: bool) -> Result<State, lol_html::errors::RewritingError> {
    let state = Rc::new(RefCell::new(State::default()));
    let (s1, s2, s3, s4) = (state.clone(), state.clone(), state.clone(), state.clone());
    let mut settings = Settings::new()
        .with_strict(false)
        .append_element_content_handler(element!("*", move |el| {
            on_element(&s1, el, in_noscript);
            Ok(())
        }))
        .append_element_content_handler(text!("style", move |t| {
            let mut s = s2.borrow_mut();
            s.style.push_str(t.as_str());
            if t.last_in_text_node() {
                let css = std::mem::take(&mut s.style);
                for url in css_urls(&css) {
                    push(
                        &mut s,
                        "style sheet",
                        url,
                        On::Load,
                        false,
                        false,
                        None,
                        in_noscript,
                        Vec::new(),
                        None,
                    );
                }
            }
            Ok(())
        }));
    if !in_noscript {
        settings = settings
            .append_element_content_handler(text!("script", move |t| {
                let mut s = s3.borrow_mut();
                if !s.script_is_code {
                    return Ok(());
                }
                s.script.push_str(t.as_str());
                if t.last_in_text_node() {
                    let code = std::mem::take(&mut s.script);
                    let index = s.out.scripts.len();
                    for url in code_urls(&code) {
                        push(
                            &mut s,
                            "inline script",
                            url,
                            On::Load,
                            false,
                            false,
                            None,
                            false,
                            Vec::new(),
                            Some(index),
                        );
                    }
                    s.out.scripts.push(InlineScript { code });
                }
                Ok(())
            }))
            .append_element_content_handler(text!("noscript", move |t| {
                let mut s = s4.borrow_mut();
                s.noscript.push_str(t.as_str());
                if t.last_in_text_node() {
                    let inner = std::mem::take(&mut s.noscript);
                    s.noscripts.push(inner);
                }
                Ok(())
            }));
    }
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    rewriter.write(html.as_bytes())?;
    rewriter.end()?;
    let taken = std::mem::take(&mut *state.borrow_mut());
    Ok(taken)
}

#[allow(clippy::too_many_arguments)]
fn push(
    s: &mut State,
    element: &str,
    url: String,
    on: On,
    tiny: bool,
    sized: bool,
    hidden: Option<String>,
    noscript: bool,
    attrs: Vec<String>,
    script: Option<usize>,
) {
    if !worth_checking(&url) || url.len() > 16 * 1024 {
        return;
    }
    let element = if noscript {
        format!("noscript > {element}")
    } else {
        element.to_owned()
    };
    s.out.resources.push(Resource {
        on,
        element,
        url: url.trim().to_owned(),
        tiny,
        hidden,
        sized,
        noscript,
        attrs,
        script,
    });
}

fn on_element(state: &Rc<RefCell<State>>, el: &mut Element, noscript: bool) {
    let tag = el.tag_name().to_ascii_lowercase();
    let attrs: Vec<(String, String)> = el
        .attributes()
        .iter()
        .map(|a| (a.name().to_ascii_lowercase(), decode_entities(&a.value())))
        .collect();
    let attr = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let names: Vec<String> = attrs.iter().map(|(k, _)| k.clone()).collect();
    let style = attr("style").map(|s| declarations(&s)).unwrap_or_default();
    let dims = size(attr, &style);
    let own_hidden = hidden_by(attr, &style, dims);
    let tiny = is_tiny(dims.0, dims.1);
    let mut s = state.borrow_mut();
    // A start tag that ends an open hidden element whose end tag may be left out (a new
    // <td> after a hidden one): the parser calls no end handler for it, so close it here.
    while s
        .hidden
        .last()
        .is_some_and(|(_, open, _)| implicitly_closed_by(open, &tag))
    {
        s.hidden.pop();
    }
    let hidden = own_hidden.clone().or_else(|| {
        s.hidden
            .last()
            .map(|(_, _, why)| format!("inside a hidden element ({why})"))
    });
    let add = |s: &mut State, what: &str, url: String, on: On, sized: bool| {
        push(
            s,
            what,
            url,
            on,
            tiny && sized,
            sized,
            if sized { hidden.clone() } else { None },
            noscript,
            names.clone(),
            None,
        )
    };
    let srcset = |v: Option<String>| -> Vec<String> {
        v.map(|v| {
            v.split(',')
                .filter_map(|c| c.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
    };
    match tag.as_str() {
        "img" => {
            let src = attr("src");
            for u in src.iter().cloned().chain(
                srcset(attr("srcset"))
                    .into_iter()
                    .filter(|u| Some(u) != src.as_ref()),
            ) {
                add(&mut s, "img", u, On::Load, true);
            }
        }
        "image" => {
            if let Some(u) = attr("href").or_else(|| attr("xlink:href")) {
                add(&mut s, "svg image", u, On::Load, true);
            }
        }
        "input" if attr("type").is_some_and(|t| t.eq_ignore_ascii_case("image")) => {
            if let Some(u) = attr("src") {
                add(&mut s, "input image", u, On::Load, true);
            }
        }
        "iframe" | "frame" | "embed" => {
            if let Some(u) = attr("src") {
                add(&mut s, &tag, u, On::Load, true);
            }
        }
        "object" => {
            if let Some(u) = attr("data") {
                add(&mut s, "object", u, On::Load, true);
            }
        }
        "video" | "audio" | "source" | "track" => {
            for u in attr("src")
                .into_iter()
                .chain(attr("poster"))
                .chain(srcset(attr("srcset")))
            {
                add(&mut s, &tag, u, On::Load, false);
            }
        }
        "script" => {
            let kind = attr("type").unwrap_or_default().to_ascii_lowercase();
            let js = kind.is_empty() || kind.contains("javascript") || kind == "module";
            match attr("src") {
                Some(u) => {
                    s.script_is_code = false;
                    add(&mut s, "script src", u, On::Load, false);
                }
                None => s.script_is_code = js,
            }
        }
        "link" => {
            let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
            let rels: Vec<&str> = rel.split_whitespace().collect();
            if rels.contains(&"canonical") {
                s.out.page_url = attr("href");
            } else if rels
                .iter()
                .any(|r| ["stylesheet", "preload", "prefetch", "modulepreload"].contains(r))
            {
                if let Some(u) = attr("href") {
                    add(&mut s, "link href", u, On::Load, false);
                }
            }
        }
        "meta" => {
            let prop = attr("property")
                .or_else(|| attr("name"))
                .unwrap_or_default();
            if prop.eq_ignore_ascii_case("og:url") && s.out.page_url.is_none() {
                s.out.page_url = attr("content");
            }
        }
        "base" if s.out.base.is_none() => s.out.base = attr("href"),
        "a" | "area" => {
            if let Some(u) = attr("href") {
                add(&mut s, &format!("{tag} href"), u, On::Click, false);
            }
        }
        _ => {}
    }
    if let Some(u) = attr("background") {
        add(&mut s, &format!("{tag} background"), u, On::Load, true);
    }
    if let Some(raw) = attr("style") {
        for u in css_urls(&raw) {
            add(&mut s, &format!("{tag} style"), u, On::Load, true);
        }
    }
    if let Some(why) = own_hidden {
        if let Some(handlers) = el.end_tag_handlers() {
            s.next_id += 1;
            let id = s.next_id;
            s.hidden.push((id, tag.clone(), why));
            let state = state.clone();
            handlers.push(Box::new(move |_end| {
                state.borrow_mut().hidden.retain(|(i, _, _)| *i != id);
                Ok(())
            }));
        }
    }
}

/// Everything `html` loads and links to, `<noscript>` content included.
pub fn extract(html: &str) -> Result<Extracted, lol_html::errors::RewritingError> {
    let mut state = read(html, false)?;
    for inner in std::mem::take(&mut state.noscripts) {
        let inside = read(&inner, true)?;
        state.out.resources.extend(inside.out.resources);
    }
    Ok(state.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(x: &'a Extracted, url: &str) -> &'a Resource {
        x.resources
            .iter()
            .find(|r| r.url == url)
            .unwrap_or_else(|| panic!("{url} not found in {:#?}", x.resources))
    }

    #[test]
    fn images_are_tiny_or_hidden_by_attributes_style_or_ancestors() {
        let html = r#"<html><head><link rel="canonical" href="https://shop.example/page"></head><body>
<img src="/a.gif" width="1" height="1">
<img src="/b.gif" style="width:1px;height:1px !important">
<img src="/c.gif" width="1">
<img src="/d.gif" width="600" height="1">
<img src="/e.gif" style="display:none">
<img src="/f.gif" width="0" height="0">
<img src="/g.gif" style="position:absolute;left:-9999px">
<div style="display: none"><p><img src="/h.gif"></p></div>
<img src="/i.gif">
<img hidden src="/j.gif?x=1&amp;y=2">
<table><tr><td background="/k.gif" width="1" height="1"></td>
<td style="background:url('/l.gif') no-repeat;visibility:hidden"></td></tr></table>
</body></html>"#;
        let x = extract(html).unwrap();
        assert_eq!(x.page_url.as_deref(), Some("https://shop.example/page"));
        let check = |u: &str, tiny: bool, hidden: Option<&str>| {
            let r = find(&x, u);
            assert_eq!((r.tiny, r.hidden.as_deref()), (tiny, hidden), "{u}");
        };
        check("/a.gif", true, None);
        check("/b.gif", true, None);
        check("/c.gif", true, None);
        check("/d.gif", false, None);
        check("/e.gif", false, Some("display:none"));
        check("/f.gif", true, Some("zero width"));
        check("/g.gif", false, Some("off-screen (left:-9999px)"));
        check(
            "/h.gif",
            false,
            Some("inside a hidden element (display:none)"),
        );
        // After the hidden div closed, nothing is hidden by it.
        check("/i.gif", false, None);
        check("/j.gif?x=1&y=2", false, Some("the hidden attribute"));
        check("/k.gif", true, None);
        assert_eq!(find(&x, "/k.gif").element, "td background");
        check("/l.gif", false, Some("visibility:hidden"));
        assert_eq!(find(&x, "/l.gif").element, "td style");
    }

    #[test]
    fn scripts_noscript_links_and_style_sheets_are_read() {
        let html = r##"<head>
<script async src="https://www.googletagmanager.com/gtag/js?id=G-ABC123"></script>
<script>
!function(f,b,e,v,n,t,s){t.src=v}(window,document,'script','https://connect.facebook.net/en_US/fbevents.js');
fbq('init', '1234567890');
var u = "https:\/\/api.example.net\/collect";
</script>
<script type="application/ld+json">{"logo": "https://shop.example/logo.png"}</script>
<style>.hero { background: url("https://cdn.example/hero.jpg") } @media print { body { background:url(https://t.example/print.gif?u=1) } }</style>
<noscript><img height="1" width="1" style="display:none" src="https://www.facebook.com/tr?id=1234567890&amp;ev=PageView&amp;noscript=1"/></noscript>
</head><body><a href="https://shop.example/x">x</a> <a href="mailto:a@b.example">m</a> <a href="#top">t</a>
<img src="data:image/gif;base64,R0lGOD"></body>"##;
        let x = extract(html).unwrap();
        assert_eq!(
            find(&x, "https://www.googletagmanager.com/gtag/js?id=G-ABC123").element,
            "script src"
        );
        let inline = find(&x, "https://connect.facebook.net/en_US/fbevents.js");
        assert_eq!(
            (inline.element.as_str(), inline.script),
            ("inline script", Some(0))
        );
        assert_eq!(
            find(&x, "https://api.example.net/collect").element,
            "inline script"
        );
        assert_eq!(x.scripts.len(), 1, "JSON-LD is not code");
        assert!(x.scripts[0].code.contains("fbq('init'"));
        assert_eq!(
            find(&x, "https://cdn.example/hero.jpg").element,
            "style sheet"
        );
        assert_eq!(
            find(&x, "https://t.example/print.gif?u=1").element,
            "style sheet"
        );
        let ns = find(
            &x,
            "https://www.facebook.com/tr?id=1234567890&ev=PageView&noscript=1",
        );
        assert_eq!(ns.element, "noscript > img");
        assert!(ns.noscript && ns.tiny);
        assert_eq!(ns.hidden.as_deref(), Some("display:none"));
        assert_eq!(find(&x, "https://shop.example/x").on, On::Click);
        assert!(!x.resources.iter().any(|r| r.url.starts_with("mailto:")
            || r.url.starts_with('#')
            || r.url.starts_with("data:")));
        assert!(!x.resources.iter().any(|r| r.url.contains("logo.png")));
    }

    #[test]
    fn a_hidden_element_ends_where_the_parser_ends_it_even_without_an_end_tag() {
        for html in [
            "<table><tr><td style=\"display:none\">x<td><img src=\"/a.gif\"></table><img src=\"/b.gif\">",
            "<p style=\"display:none\">x<p><img src=\"/a.gif\"><div><img src=\"/b.gif\"></div>",
            "<ul><li style=\"display:none\">x<li><img src=\"/a.gif\"></ul><img src=\"/b.gif\">",
            "<div style=\"display:none\"><span>x</div><img src=\"/a.gif\"><img src=\"/b.gif\">",
        ] {
            let x = extract(html).unwrap();
            for r in &x.resources {
                assert_eq!(r.hidden, None, "{html}: {}", r.url);
            }
        }
        let x = extract("<table><tr><td style=\"display:none\"><img src=\"/a.gif\"><td>").unwrap();
        assert!(x.resources[0].hidden.is_some());
    }

    #[test]
    fn hostile_markup_is_read_not_refused() {
        for html in [
            "<select><xmp><script>\"use strict\";</script></select>",
            "<img src=\"/a.gif\" width=\"1\" height=\"1",
            "<div style=\"display:none\"><img src=/x.gif>",
            "<noscript><noscript><img src=/y.gif></noscript>",
            "\u{0}\u{1b}[31m<img src=\"/\u{1b}]8;;x\u{7}.gif\">",
        ] {
            extract(html).unwrap();
        }
    }
}
