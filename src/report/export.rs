//! Raw events as named, typed fields: the one representation behind every export
//! (CLI NDJSON/CSV, the API's subject export). The CSV header and rows both come from
//! [`fields`], so they cannot drift apart.

use std::io::Write;

use serde_json::Value;

use crate::model::Event;

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// One event as named, typed fields: the single source of both formats, so the CSV
/// header and its rows cannot drift apart.
pub fn fields(e: &Event) -> Vec<(&'static str, Value)> {
    let s = |v: &str| Value::String(v.to_owned());
    let n = |v: Option<i64>| v.map(Value::from).unwrap_or(Value::Null);
    let m = e.email.as_ref();
    let ad = e.ad.as_ref();
    let email = |f: fn(&crate::model::EmailFields) -> String| {
        m.map(|m| Value::String(f(m))).unwrap_or(Value::Null)
    };
    vec![
        ("time", s(&time(e.ts_ms))),
        ("name", s(&e.name)),
        ("visitor_id", Value::from(e.visitor_id)),
        ("session_id", Value::from(e.session_id)),
        ("host", s(&e.host)),
        ("path", s(&e.path)),
        ("query", s(&e.query)),
        ("title", s(&e.title)),
        ("referrer", s(&e.referrer)),
        ("referrer_host", s(&e.referrer_host)),
        ("source", s(&e.source)),
        ("medium", s(&e.medium)),
        ("utm_source", s(&e.utm.source)),
        ("utm_medium", s(&e.utm.medium)),
        ("utm_campaign", s(&e.utm.campaign)),
        ("utm_term", s(&e.utm.term)),
        ("utm_content", s(&e.utm.content)),
        ("click_id", s(&e.click_id)),
        ("browser", s(&e.browser)),
        ("browser_version", s(&e.browser_version)),
        ("os", s(&e.os)),
        ("os_version", s(&e.os_version)),
        ("device", s(e.device.as_str())),
        ("country", s(&e.country)),
        ("region", s(&e.region)),
        ("city", s(&e.city)),
        ("asn", n((e.asn != 0).then_some(i64::from(e.asn)))),
        ("as_org", s(&e.as_org)),
        ("bot", e.bot.map(|b| s(b.as_str())).unwrap_or(Value::Null)),
        ("value_minor", n(e.value_minor)),
        ("currency", s(&e.currency)),
        ("order_id", s(&e.order_id)),
        (
            "props",
            serde_json::from_str(&e.props).unwrap_or_else(|_| serde_json::json!({})),
        ),
        ("ip", e.ip.as_deref().map(s).unwrap_or(Value::Null)),
        (
            "campaign_id",
            n(m.map(|m| m.campaign_id).or(ad.map(|a| a.campaign_id))),
        ),
        ("recipient", email(|m| m.recipient.clone())),
        (
            "link",
            m.map(|m| s(&m.link))
                .or(ad.map(|a| s(&a.link)))
                .unwrap_or(Value::Null),
        ),
        ("verdict", email(|m| m.verdict.as_str().to_owned())),
        ("verdict_reason", email(|m| m.reason.to_owned())),
        ("email_client", email(|m| m.client.to_owned())),
        ("scroll_pct", n(e.scroll_pct)),
        ("engaged_ms", n(e.engaged_ms)),
        ("screen_width", n(e.screen_width)),
        ("ad", ad.map(|a| s(&a.ad)).unwrap_or(Value::Null)),
        (
            "placement",
            ad.map(|a| s(&a.placement)).unwrap_or(Value::Null),
        ),
    ]
}

pub fn columns() -> Vec<String> {
    fields(&Event::default())
        .into_iter()
        .map(|(k, _)| k.to_owned())
        .collect()
}

/// CSV cells: strings as they are, numbers and props as JSON text, nulls empty.
pub fn cells(e: &Event) -> Vec<String> {
    fields(e)
        .into_iter()
        .map(|(_, v)| match v {
            Value::Null => String::new(),
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

/// An event as one JSON object (the NDJSON line).
pub fn json(e: &Event) -> Value {
    Value::Object(
        fields(e)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// A CSV cell, quoted per RFC 4180 and neutralised per OWASP "CSV injection": a cell
/// starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'` so no spreadsheet
/// evaluates it as a formula.
pub fn csv_cell(s: &str) -> String {
    let neutral = match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

pub fn csv_line(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The two formats of a raw export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

/// Writes every event of `site` in `[from_ms, to_ms)` to `out`, row by row (a CSV
/// starts with its header); returns how many. Shared by `pixeltrack export` and the
/// API's streamed export.
pub fn write(
    store: &dyn crate::store::Store,
    site: &crate::model::Site,
    from_ms: i64,
    to_ms: i64,
    format: Format,
    out: &mut dyn std::io::Write,
) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::new(out);
    if format == Format::Csv {
        out.write_all(csv_line(&columns()).as_bytes())?;
    }
    let mut write_err = None;
    let n = store
        .for_each_event(site.id, from_ms, to_ms, &mut |e| {
            let r = match format {
                Format::Ndjson => serde_json::to_writer(&mut out, &json(&e))
                    .map_err(std::io::Error::from)
                    .and_then(|_| out.write_all(b"\n")),
                Format::Csv => out.write_all(csv_line(&cells(&e)).as_bytes()),
            };
            if let Err(e) = &r {
                write_err = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
            r
        })
        .map_err(|e| {
            write_err
                .take()
                .unwrap_or_else(|| std::io::Error::other(e.to_string()))
        })?;
    if let Some(e) = write_err {
        return Err(e);
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_column_with_types() {
        let e = Event {
            name: "pageview".into(),
            title: "=cmd|' /C calc'!A0".into(),
            props: r#"{"a":"1"}"#.into(),
            value_minor: Some(1999),
            ..Event::default()
        };
        let j = json(&e);
        assert_eq!(j.as_object().unwrap().len(), 45);
        for c in columns() {
            assert!(j.get(&c).is_some(), "{c}");
        }
        assert_eq!(j["value_minor"], 1999);
        assert_eq!(j["props"]["a"], "1");
        assert_eq!(j["ip"], serde_json::Value::Null);
        assert_eq!(j["campaign_id"], serde_json::Value::Null);
        // An ad click exports its campaign, ad, placement and landing page.
        let click = Event {
            ad: Some(crate::model::AdFields {
                campaign_id: 7,
                ad: "banner".into(),
                placement: "top".into(),
                link: "https://s.example/".into(),
            }),
            country: "DE".into(),
            region: "DE-BY".into(),
            city: "=HYPERLINK(\"x\")".into(),
            asn: 3320,
            ..Event::default()
        };
        let k = json(&click);
        assert_eq!(
            (k["region"].as_str(), k["city"].as_str(), k["asn"].as_i64()),
            (Some("DE-BY"), Some("=HYPERLINK(\"x\")"), Some(3320))
        );
        assert_eq!(j["asn"], serde_json::Value::Null);
        // A city name from the database is data in CSV too, never a formula.
        assert!(csv_line(&cells(&click)).contains("'=HYPERLINK"));
        assert_eq!(
            (
                k["campaign_id"].as_i64(),
                k["ad"].as_str(),
                k["placement"].as_str()
            ),
            (Some(7), Some("banner"), Some("top"))
        );
        assert_eq!(
            (
                k["link"].as_str(),
                k["country"].as_str(),
                k["recipient"].as_str()
            ),
            (Some("https://s.example/"), Some("DE"), None)
        );
        assert_eq!(j["visitor_id"], 0);
        // CSV neutralises the formula; JSON keeps the string as data.
        assert!(csv_line(&cells(&e)).contains("'=cmd"));
        let c = cells(&e);
        assert_eq!(
            c[columns().iter().position(|k| k == "value_minor").unwrap()],
            "1999"
        );
        assert_eq!(
            c[columns().iter().position(|k| k == "props").unwrap()],
            r#"{"a":"1"}"#
        );
        assert_eq!(c[columns().iter().position(|k| k == "bot").unwrap()], "");
    }
}
