//! `pixeltrack export`: raw events as NDJSON or CSV, streamed row by row.

use std::io::Write;

use super::output::csv_line;
use super::ExportFormat;
use crate::model::{Event, Site};
use crate::store::{SqliteStore, Store};

const COLUMNS: &[&str] = &[
    "time",
    "name",
    "visitor_id",
    "session_id",
    "host",
    "path",
    "query",
    "title",
    "referrer",
    "referrer_host",
    "source",
    "medium",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "click_id",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "bot",
    "value_minor",
    "currency",
    "order_id",
    "props",
    "ip",
    "campaign_id",
    "recipient",
    "link",
    "verdict",
    "verdict_reason",
    "email_client",
    "scroll_pct",
    "engaged_ms",
    "screen_width",
];

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn cells(e: &Event) -> Vec<String> {
    vec![
        time(e.ts_ms),
        e.name.clone(),
        e.visitor_id.to_string(),
        e.session_id.to_string(),
        e.host.clone(),
        e.path.clone(),
        e.query.clone(),
        e.title.clone(),
        e.referrer.clone(),
        e.referrer_host.clone(),
        e.source.clone(),
        e.medium.clone(),
        e.utm.source.clone(),
        e.utm.medium.clone(),
        e.utm.campaign.clone(),
        e.utm.term.clone(),
        e.utm.content.clone(),
        e.click_id.clone(),
        e.browser.clone(),
        e.browser_version.clone(),
        e.os.clone(),
        e.os_version.clone(),
        e.device.as_str().to_owned(),
        e.bot.map(|b| b.as_str().to_owned()).unwrap_or_default(),
        e.value_minor.map(|v| v.to_string()).unwrap_or_default(),
        e.currency.clone(),
        e.order_id.clone(),
        e.props.clone(),
        e.ip.clone().unwrap_or_default(),
        e.email
            .as_ref()
            .map(|m| m.campaign_id.to_string())
            .unwrap_or_default(),
        e.email
            .as_ref()
            .map(|m| m.recipient.clone())
            .unwrap_or_default(),
        e.email.as_ref().map(|m| m.link.clone()).unwrap_or_default(),
        e.email
            .as_ref()
            .map(|m| m.verdict.as_str().to_owned())
            .unwrap_or_default(),
        e.email
            .as_ref()
            .map(|m| m.reason.to_owned())
            .unwrap_or_default(),
        e.email
            .as_ref()
            .map(|m| m.client.to_owned())
            .unwrap_or_default(),
        e.scroll_pct.map(|v| v.to_string()).unwrap_or_default(),
        e.engaged_ms.map(|v| v.to_string()).unwrap_or_default(),
        e.screen_width.map(|v| v.to_string()).unwrap_or_default(),
    ]
}

pub fn json(e: &Event) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, v) in COLUMNS.iter().zip(cells(e)) {
        let value = match *k {
            "visitor_id" | "session_id" => serde_json::json!(v.parse::<i64>().unwrap_or(0)),
            "value_minor" => e
                .value_minor
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
            "bot" => e
                .bot
                .map(|b| serde_json::Value::from(b.as_str()))
                .unwrap_or(serde_json::Value::Null),
            "props" => serde_json::from_str(&e.props).unwrap_or_else(|_| serde_json::json!({})),
            "campaign_id" => e
                .email
                .as_ref()
                .map(|m| serde_json::Value::from(m.campaign_id))
                .unwrap_or(serde_json::Value::Null),
            "scroll_pct" => e
                .scroll_pct
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
            "engaged_ms" => e
                .engaged_ms
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
            "screen_width" => e
                .screen_width
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
            "ip" => {
                e.ip.clone()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::String(v),
        };
        map.insert((*k).to_owned(), value);
    }
    serde_json::Value::Object(map)
}

/// Writes every event of `site` in `[from_ms, to_ms)`; returns how many.
pub fn export(
    store: &SqliteStore,
    site: &Site,
    from_ms: i64,
    to_ms: i64,
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(out);
    if format == ExportFormat::Csv {
        out.write_all(
            csv_line(&COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>()).as_bytes(),
        )?;
    }
    let mut write_err = None;
    let n = store.for_each_event(site.id.0, from_ms, to_ms, &mut |e| {
        let r = match format {
            ExportFormat::Ndjson => serde_json::to_writer(&mut out, &json(&e))
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n")),
            ExportFormat::Csv => out.write_all(csv_line(&cells(&e)).as_bytes()),
        };
        if let Err(e) = &r {
            write_err = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
        r
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_header_and_rows_have_the_same_columns() {
        assert_eq!(COLUMNS.len(), cells(&Event::default()).len());
    }

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
        for c in COLUMNS {
            assert!(j.get(*c).is_some(), "{c}");
        }
        assert_eq!(j["value_minor"], 1999);
        assert_eq!(j["props"]["a"], "1");
        assert_eq!(j["ip"], serde_json::Value::Null);
        assert_eq!(j["campaign_id"], serde_json::Value::Null);
        // CSV neutralises the formula; JSON keeps the string as data.
        assert!(csv_line(&cells(&e)).contains("'=cmd"));
    }
}
