//! Access-log lines as hits, for `pixeltrack import`: the pixel's requests as a web
//! server logged them (nginx and Apache "combined", Caddy's JSON access log), and our
//! own NDJSON export. Pure: a line in, a [`RawHit`] with the line's own time, IP,
//! user agent and `Referer` (or, for NDJSON, an already enriched [`Event`]) out — or
//! why the line is skipped. The pixel's query goes through the same parser as a live
//! hit (`collect::query`), and the same size limits apply; enrichment, sessions and
//! rollups then run as for a live hit.
//!
//! Only `GET /p.gif` and `GET /p.png` (under any path prefix) are imported from access
//! logs: `POST /e` bodies are not in access logs, and email opens and clicks
//! (`/o/…`, `/c/…`) take their verdicts from live signals a log cannot replay.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::Millis;
use crate::config::LimitsConfig;
use crate::enrich::{page, MAX_ORDER_ID, MAX_TITLE};
use crate::model::{BotReason, Device, DropReason, Event, HitParams, RawHit};

/// The formats `pixeltrack import --format` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// nginx's `combined` log format (also with fields appended after the user agent).
    Nginx,
    /// Apache's `combined` log format (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`).
    Apache,
    /// Caddy's JSON access log (`log { format json }`, the default).
    CaddyJson,
    /// pixeltrack's own export (`pixeltrack export --format ndjson`).
    Ndjson,
}

/// Why a line was not turned into a hit. Every skipped line is counted by its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A request for something other than the pixel (pages, assets, `HEAD`…).
    NotAPixelHit,
    /// A pixeltrack route a log cannot replay: `/e` (its body is not logged), email
    /// opens and clicks (`/o/…`, `/c/…`), and exported email or ad events.
    Unsupported,
    /// A pixel request the server answered with an error (4xx, 5xx).
    ErrorStatus,
    /// Not a line of the format (or not UTF-8, or an IP that is not an address).
    BadLine,
    /// A pixel hit of another site (its `s=` names another key).
    OtherSite,
    /// A line the collector would have refused, by the collector's reason.
    Drop(DropReason),
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotAPixelHit => "not_a_pixel_hit",
            Skip::Unsupported => "unsupported_route",
            Skip::ErrorStatus => "error_status",
            Skip::BadLine => "bad_line",
            Skip::OtherSite => "other_site",
            Skip::Drop(r) => r.as_str(),
        }
    }
}

/// What a line holds. Not boxed: a line's hit is moved into its batch once, and a
/// box would be one more allocation per line on the import's hot path.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// A pixel request, to be enriched like a live one.
    Hit(RawHit),
    /// An exported event (already enriched), with its page host for the host check.
    Event(Box<Event>),
}

/// Parses one line (without its line break).
pub fn parse_line(format: Format, line: &str, limits: &LimitsConfig) -> Result<Parsed, Skip> {
    match format {
        Format::Nginx | Format::Apache => combined(line, limits),
        Format::CaddyJson => caddy(line, limits),
        Format::Ndjson => restore(line).map(|e| Parsed::Event(Box::new(e))),
    }
}

/// The parts of an access-log line a hit is made of.
struct Access<'a> {
    ip: &'a str,
    time_ms: Millis,
    method: &'a str,
    target: &'a str,
    status: u16,
    referer: Option<String>,
    user_agent: String,
    gpc: bool,
    dnt: bool,
}

fn hit(a: Access<'_>, limits: &LimitsConfig) -> Result<Parsed, Skip> {
    // An absolute-form target (`GET http://host/p.gif?…`) names the same path.
    let target = match a.target.find("://") {
        Some(i) if a.target[..i].bytes().all(|b| b.is_ascii_alphabetic()) => {
            let rest = &a.target[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        _ => a.target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pixel = path.ends_with("/p.gif") || path.ends_with("/p.png");
    if !pixel {
        let ours = path == "/e"
            || path.starts_with("/o/") && path.ends_with(".gif")
            || path.starts_with("/c/");
        return Err(if ours {
            Skip::Unsupported
        } else {
            Skip::NotAPixelHit
        });
    }
    if a.method != "GET" {
        // HEAD records nothing live either.
        return Err(Skip::NotAPixelHit);
    }
    if !(200..400).contains(&a.status) {
        return Err(Skip::ErrorStatus);
    }
    let ip: IpAddr = a.ip.parse().map_err(|_| Skip::BadLine)?;
    if query.len() > limits.max_query_bytes
        || a.user_agent.len() > limits.max_ua_bytes
        || a.referer
            .as_ref()
            .is_some_and(|r| r.len() > limits.max_query_bytes)
    {
        return Err(Skip::Drop(DropReason::Oversized));
    }
    let params: HitParams = super::query::parse(query).map_err(Skip::Drop)?;
    Ok(Parsed::Hit(RawHit {
        received_ms: a.time_ms,
        ip,
        user_agent: a.user_agent,
        referer_header: a.referer,
        gpc: a.gpc,
        dnt: a.dnt,
        params,
        // An access log has no CDN country header.
        cdn_country: None,
    }))
}

/// A field of a combined-format line: bare, `[bracketed]` or `"quoted"`.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    fn bare(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start_matches(' ');
        if s.is_empty() {
            return None;
        }
        let end = s.find(' ').unwrap_or(s.len());
        self.rest = &s[end..];
        Some(&s[..end])
    }

    fn bracketed(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start_matches(' ').strip_prefix('[')?;
        let end = s.find(']')?;
        self.rest = &s[end + 1..];
        Some(&s[..end])
    }

    /// A quoted field, unescaped: nginx writes `"` and non-printable bytes as `\xHH`,
    /// Apache as `\"`, `\\` and `\xhh`. `None` when unterminated or not UTF-8.
    fn quoted(&mut self) -> Option<String> {
        let s = self.rest.trim_start_matches(' ').strip_prefix('"')?;
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len().min(256));
        let mut i = 0;
        loop {
            // Up to the next quote or backslash in one copy: most fields have neither
            // inside them.
            let run = b[i..].iter().position(|&c| c == b'"' || c == b'\\')?;
            out.extend_from_slice(&b[i..i + run]);
            i += run;
            if b[i] == b'"' {
                break;
            }
            // A backslash.
            match *b.get(i + 1)? {
                b'x' => {
                    let hex = s.get(i + 2..i + 4)?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 4;
                }
                c @ (b'"' | b'\\') => {
                    out.push(c);
                    i += 2;
                }
                _ => {
                    // An escape we do not know stays as written.
                    out.push(b'\\');
                    i += 1;
                }
            }
        }
        self.rest = &s[i + 1..];
        String::from_utf8(out).ok()
    }
}

/// `-` is how both servers log an absent header.
fn present(s: String) -> Option<String> {
    (!s.is_empty() && s != "-").then_some(s)
}

fn combined(line: &str, limits: &LimitsConfig) -> Result<Parsed, Skip> {
    let mut f = Fields { rest: line };
    let bad = Skip::BadLine;
    let ip = f.bare().ok_or(bad)?;
    let _ident = f.bare().ok_or(bad)?;
    // The user may contain spaces in Apache (quoted by nobody): read to the `[`.
    let open = f.rest.find(" [").ok_or(bad)?;
    f.rest = &f.rest[open..];
    let time = f.bracketed().ok_or(bad)?;
    let request = f.quoted().ok_or(bad)?;
    let status = f.bare().and_then(|s| s.parse().ok()).ok_or(bad)?;
    let _bytes = f.bare().ok_or(bad)?;
    let referer = f.quoted().ok_or(bad)?;
    let user_agent = f.quoted().ok_or(bad)?;
    let time_ms = clf_time(time).ok_or(bad)?;
    let mut parts = request.splitn(3, ' ');
    let method = parts.next().unwrap_or("");
    let Some(target) = parts.next() else {
        // "-" or a garbage request line (a TLS handshake on the HTTP port…).
        return Err(Skip::NotAPixelHit);
    };
    hit(
        Access {
            ip,
            time_ms,
            method,
            target,
            status,
            referer: present(referer),
            user_agent: present(user_agent).unwrap_or_default(),
            gpc: false,
            dnt: false,
        },
        limits,
    )
}

/// `10/Oct/2000:13:55:36 -0700` (Common Log Format time) as Unix milliseconds.
fn clf_time(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == &s[3..6])? as u32 + 1;
    let date = chrono::NaiveDate::from_ymd_opt(num(7..11)? as i32, month, num(0..2)? as u32)?;
    let time = date.and_hms_opt(
        num(12..14)? as u32,
        num(15..17)? as u32,
        num(18..20)? as u32,
    )?;
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset_s = sign * (num(22..24)? * 3600 + num(24..26)? * 60);
    Some((time.and_utc().timestamp() - offset_s) * 1000)
}

#[derive(Deserialize)]
struct CaddyLine {
    ts: Option<Value>,
    request: Option<CaddyRequest>,
    status: Option<u16>,
}

#[derive(Deserialize)]
struct CaddyRequest {
    remote_ip: Option<String>,
    /// Caddy 2.7+: the client as its `trusted_proxies` make it out.
    client_ip: Option<String>,
    method: String,
    uri: String,
    #[serde(default)]
    headers: Map<String, Value>,
}

fn caddy(line: &str, limits: &LimitsConfig) -> Result<Parsed, Skip> {
    let l: CaddyLine = serde_json::from_str(line).map_err(|_| Skip::BadLine)?;
    // Caddy's other log lines (startup, TLS…) carry no request.
    let Some(req) = l.request else {
        return Err(Skip::NotAPixelHit);
    };
    let header = |name: &str| -> Option<String> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| match v {
                Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
    };
    let time_ms = l.ts.as_ref().and_then(json_time).ok_or(Skip::BadLine)?;
    let ip = req
        .client_ip
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(req.remote_ip.as_deref())
        .ok_or(Skip::BadLine)?;
    let flag = |name: &str| header(name).is_some_and(|v| v.trim() == "1");
    hit(
        Access {
            ip,
            time_ms,
            method: &req.method,
            target: &req.uri,
            status: l.status.ok_or(Skip::BadLine)?,
            referer: header("Referer").filter(|r| !r.is_empty()),
            user_agent: header("User-Agent").unwrap_or_default(),
            gpc: flag("Sec-Gpc"),
            dnt: flag("Dnt"),
        },
        limits,
    )
}

/// Caddy's `ts`: Unix seconds as a float (the default), milliseconds or nanoseconds
/// (`time_format unix_milli_float`, `unix_nano`), or an RFC 3339 / ISO 8601 string.
fn json_time(v: &Value) -> Option<Millis> {
    match v {
        Value::Number(n) => {
            let x = n.as_f64()?;
            let ms = if x < 1e11 {
                x * 1000.0
            } else if x < 1e14 {
                x
            } else {
                x / 1e6
            };
            (ms.is_finite() && (0.0..1e15).contains(&ms)).then_some(ms as Millis)
        }
        Value::String(s) => rfc3339(s),
        _ => None,
    }
}

fn rfc3339(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Longest text kept from an exported field with no limit of its own (hosts, paths,
/// referrers, browser names): as the live path keeps URLs.
const MAX_FIELD: usize = 2048;

/// An exported event (one NDJSON line of `pixeltrack export`) back into an [`Event`]:
/// every field checked and cleaned as enrichment would have left it, the page's query
/// reduced to the allowlist again. The visitor id is kept (its salt is gone: it can no
/// longer be recomputed), the session is recomputed by the writer, and the IP column is
/// never imported. Email and ad events are refused: their campaigns are another
/// installation's.
fn restore(line: &str) -> Result<Event, Skip> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) else {
        return Err(Skip::BadLine);
    };
    let text = |k: &str, max: usize| -> Result<String, Skip> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(page::clean_text(s, max)),
            Some(_) => Err(Skip::Drop(DropReason::InvalidInput)),
        }
    };
    let int = |k: &str| -> Result<Option<i64>, Skip> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or(Skip::Drop(DropReason::InvalidInput)),
        }
    };
    if int("campaign_id")?.is_some() || m.get("verdict").is_some_and(|v| !v.is_null()) {
        return Err(Skip::Unsupported);
    }
    let ts_ms = m
        .get("time")
        .and_then(Value::as_str)
        .and_then(rfc3339)
        .ok_or(Skip::BadLine)?;
    let name = text("name", crate::enrich::MAX_EVENT_NAME)?;
    if !crate::enrich::valid_event_name(&name) {
        return Err(Skip::Drop(DropReason::InvalidInput));
    }
    let host = text("host", 253)?.to_ascii_lowercase();
    let path = text("path", MAX_FIELD)?;
    let query = text("query", MAX_FIELD)?;
    // The page again through the live page parser: the allowlist, UTM and click ids.
    let url = format!(
        "https://{}{}{}{}",
        if host.is_empty() { "invalid" } else { &host },
        if path.starts_with('/') { "" } else { "/" },
        path,
        if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.trim_start_matches('?'))
        }
    );
    let p = page::parse(&url, "ptclid");
    let country = text("country", 2)?;
    let currency = text("currency", 3)?;
    let value_minor = int("value_minor")?;
    if value_minor.is_some_and(|v| v < 0)
        || value_minor.is_some()
            && !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(Skip::Drop(DropReason::InvalidAmount));
    }
    let props = match m.get("props") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Some(_) => return Err(Skip::Drop(DropReason::InvalidInput)),
    };
    let bot = match m.get("bot") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(BotReason::parse(s).unwrap_or(BotReason::Crawler)),
        Some(_) => return Err(Skip::Drop(DropReason::InvalidInput)),
    };
    Ok(Event {
        site_id: 0,
        ts_ms,
        name: name.into(),
        visitor_id: int("visitor_id")?.unwrap_or(0),
        session_id: 0,
        host: if host.is_empty() {
            host.into()
        } else {
            p.host.into()
        },
        path: if p.path.is_empty() { path } else { p.path },
        query: p.query,
        title: text("title", MAX_TITLE)?,
        referrer: text("referrer", MAX_FIELD)?,
        referrer_host: text("referrer_host", 253)?.to_ascii_lowercase().into(),
        source: text("source", 256)?.into(),
        medium: text("medium", 64)?.into(),
        utm: p.utm,
        click_id: if p.click_id.is_empty() {
            text("click_id", 256)?
        } else {
            p.click_id
        },
        browser: text("browser", 64)?.into(),
        browser_version: text("browser_version", 64)?.into(),
        os: text("os", 64)?.into(),
        os_version: text("os_version", 64)?.into(),
        device: Device::parse(&text("device", 16)?),
        bot,
        value_minor,
        currency: if value_minor.is_some() {
            currency.into()
        } else {
            String::new().into()
        },
        order_id: text("order_id", MAX_ORDER_ID)?,
        props: crate::enrich::props_json(&props),
        ip: None,
        email: None,
        scroll_pct: int("scroll_pct")?.map(|s| s.clamp(0, 100)),
        engaged_ms: int("engaged_ms")?.map(|s| s.clamp(0, 86_400_000)),
        screen_width: int("screen_width")?.filter(|w| (1..=100_000).contains(w)),
        ad: None,
        country: if country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()) {
            country.into()
        } else {
            String::new().into()
        },
        // Places as the exporting installation resolved them (its database, not ours).
        region: text("region", 128)?.into(),
        city: text("city", 128)?.into(),
        asn: int("asn")?.and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
        as_org: text("as_org", 256)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_unescape_as_nginx_and_apache_write_them() {
        let q = |s: &str| {
            let mut f = Fields { rest: s };
            f.quoted().map(|v| (v, f.rest.to_owned()))
        };
        let some = |v: &str, rest: &str| Some((v.to_owned(), rest.to_owned()));
        assert_eq!(q(r#" "plain" next"#), some("plain", " next"));
        assert_eq!(q("\"\""), some("", ""));
        assert_eq!(q(r#""a\x22b\x5Cc" x"#), some("a\"b\\c", " x"), "nginx");
        assert_eq!(q(r#""a\"b\\c" x"#), some("a\"b\\c", " x"), "Apache");
        assert_eq!(
            q(r#""tab\tstays""#),
            some("tab\\tstays", ""),
            "unknown escape"
        );
        assert_eq!(
            q(r#""\xc3\xa9t\xc3\xa9""#),
            some("été", ""),
            "UTF-8 in escapes"
        );
        assert_eq!(q(r#""unterminated"#), None);
        assert_eq!(q(r#""ends in \"#), None);
        assert_eq!(q(r#""short \x2"#), None);
        assert_eq!(q(r#""bad \xzz""#), None);
        assert_eq!(q(r#""lone \xff""#), None, "not UTF-8");
        assert_eq!(q("bare"), None, "not quoted");
    }

    fn limits() -> LimitsConfig {
        crate::config::Config::default().limits
    }

    fn parse(format: Format, line: &str) -> Result<Parsed, Skip> {
        parse_line(format, line, &limits())
    }

    fn raw(format: Format, line: &str) -> RawHit {
        match parse(format, line) {
            Ok(Parsed::Hit(h)) => h,
            other => panic!("not a hit: {other:?}"),
        }
    }

    #[test]
    fn an_nginx_combined_line_gives_time_ip_ua_referer_and_the_pixel_query() {
        let h = raw(
            Format::Nginx,
            r#"203.0.113.7 - - [10/Oct/2023:13:55:36 -0700] "GET /p.gif?s=k1&u=https%3A%2F%2Fexample.com%2Fa&t=A%20%5Cx22title HTTP/1.1" 200 43 "https://example.com/a" "Mozilla/5.0 (X11) \x22quoted\x22" "-""#,
        );
        assert_eq!(h.ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        // 13:55:36 at -07:00 is 20:55:36 UTC.
        assert_eq!(h.received_ms, 1_696_971_336_000);
        assert_eq!(h.user_agent, "Mozilla/5.0 (X11) \"quoted\"");
        assert_eq!(h.referer_header.as_deref(), Some("https://example.com/a"));
        assert_eq!(h.params.site.as_deref(), Some("k1"));
        assert_eq!(h.params.url.as_deref(), Some("https://example.com/a"));
    }

    #[test]
    fn an_apache_line_with_escaped_quotes_and_dash_fields() {
        let h = raw(
            Format::Apache,
            r#"2001:db8::1 - frank [01/Jan/2024:00:00:00 +0100] "GET /pt/p.png?s=k1&e=signup HTTP/1.0" 200 - "-" "curl/8.0 \"x\"""#,
        );
        assert_eq!(h.received_ms, 1_704_063_600_000);
        assert_eq!(h.referer_header, None);
        assert_eq!(h.user_agent, "curl/8.0 \"x\"");
        assert_eq!(h.params.event.as_deref(), Some("signup"));
    }

    #[test]
    fn lines_that_are_not_pixel_hits_say_why() {
        let l = |req: &str, status: u16| {
            format!(r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "{req}" {status} 1 "-" "UA""#)
        };
        let cases = [
            (l("GET /index.html HTTP/1.1", 200), Skip::NotAPixelHit),
            (l("HEAD /p.gif?s=k1 HTTP/1.1", 200), Skip::NotAPixelHit),
            (l("GET /p.gif?s=k1 HTTP/1.1", 502), Skip::ErrorStatus),
            (l("POST /e HTTP/1.1", 202), Skip::Unsupported),
            (l("GET /o/abc.gif HTTP/1.1", 200), Skip::Unsupported),
            (l("GET /c/abc HTTP/1.1", 302), Skip::Unsupported),
            (l("\\x16\\x03\\x01", 400), Skip::NotAPixelHit),
            (l("GET /p.gif?s=%FF HTTP/1.1", 200), Skip::Drop(DropReason::InvalidInput)),
            ("garbage".to_owned(), Skip::BadLine),
            (String::new(), Skip::BadLine),
            (
                r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET /p.gif?s=k1 HTTP/1.1" 200 1 "-" "unterminated"#.to_owned(),
                Skip::BadLine,
            ),
            (
                r#"host.example - - [10/Oct/2023:13:55:36 +0000] "GET /p.gif?s=k1 HTTP/1.1" 200 1 "-" "UA""#.to_owned(),
                Skip::BadLine,
            ),
            (
                r#"1.2.3.4 - - [32/Oct/2023:13:55:36 +0000] "GET /p.gif?s=k1 HTTP/1.1" 200 1 "-" "UA""#.to_owned(),
                Skip::BadLine,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(Format::Nginx, &line).err(), Some(want), "{line}");
        }
    }

    #[test]
    fn a_caddy_access_line_reads_client_ip_headers_and_float_seconds() {
        let h = raw(
            Format::CaddyJson,
            r#"{"level":"info","ts":1700000000.5,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"10.0.0.1","remote_port":"5","client_ip":"198.51.100.4","proto":"HTTP/2.0","method":"GET","host":"px.example","uri":"/p.gif?s=k1&u=https%3A%2F%2Fexample.com%2F","headers":{"User-Agent":["Mozilla/5.0"],"Referer":["https://example.com/"],"Sec-Gpc":["1"]}},"status":200,"size":43}"#,
        );
        assert_eq!(h.received_ms, 1_700_000_000_500);
        assert_eq!(h.ip, "198.51.100.4".parse::<IpAddr>().unwrap());
        assert_eq!(h.user_agent, "Mozilla/5.0");
        assert!(h.gpc && !h.dnt);
        assert_eq!(
            parse(Format::CaddyJson, r#"{"level":"info","msg":"serving"}"#).err(),
            Some(Skip::NotAPixelHit)
        );
        assert_eq!(
            parse(Format::CaddyJson, "{not json").err(),
            Some(Skip::BadLine)
        );
        let iso = raw(
            Format::CaddyJson,
            r#"{"ts":"2023-11-14T22:13:20Z","request":{"remote_ip":"198.51.100.4","method":"GET","uri":"/p.gif?s=k1","headers":{}},"status":200}"#,
        );
        assert_eq!(iso.received_ms, 1_700_000_000_000);
    }

    #[test]
    fn an_exported_event_comes_back_cleaned_and_without_its_ip() {
        let line = r#"{"time":"2024-03-01T10:00:00.000Z","name":"pageview","visitor_id":42,"session_id":9,"host":"Example.com","path":"/a","query":"utm_source=x&secret=1","title":"T\u0007","referrer":"","referrer_host":"","source":"x","medium":"campaign","browser":"Chrome","device":"desktop","country":"DE","bot":null,"value_minor":null,"currency":"","order_id":"","props":{"plan":"pro","n":3},"ip":"203.0.113.0","campaign_id":null,"verdict":null}"#;
        let Ok(Parsed::Event(e)) = parse(Format::Ndjson, line) else {
            panic!("not restored")
        };
        assert_eq!(e.ts_ms, 1_709_287_200_000);
        assert_eq!((e.host.as_str(), e.path.as_str()), ("example.com", "/a"));
        assert_eq!(e.query, "utm_source=x", "the query allowlist applies again");
        assert_eq!(e.title, "T ", "control characters become spaces, as live");
        assert_eq!(e.visitor_id, 42);
        assert_eq!(e.ip, None);
        assert_eq!(e.props, r#"{"n":"3","plan":"pro"}"#);
        let email = line.replace(r#""campaign_id":null"#, r#""campaign_id":3"#);
        assert_eq!(parse(Format::Ndjson, &email).err(), Some(Skip::Unsupported));
        let name = line.replace(r#""name":"pageview""#, r#""name":"""#);
        assert_eq!(
            parse(Format::Ndjson, &name).err(),
            Some(Skip::Drop(DropReason::InvalidInput))
        );
        assert_eq!(parse(Format::Ndjson, "[1]").err(), Some(Skip::BadLine));
    }

    use proptest::prelude::*;

    proptest! {
        /// Any line parses or is skipped with a reason, in every format: never a panic.
        #[test]
        fn parse_line_is_total(line in "[ -~]{0,300}", tail in "\\PC{0,40}") {
            let line = format!("{line}{tail}");
            for f in [Format::Nginx, Format::Apache, Format::CaddyJson, Format::Ndjson] {
                let _ = parse(f, &line);
            }
            let shaped = format!(r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET /p.gif?{line} HTTP/1.1" 200 1 "{tail}" "{line}""#);
            let _ = parse(Format::Nginx, &shaped);
        }
    }
}
