//! A campaign's report (`campaign show`, `report --campaign`): opens and clicks, human
//! and machine side by side, links, clients, the first 48 hours, recipients, and the
//! ads part (impressions, clicks, conversions, cost per acquisition); as text, CSV or
//! JSON.

use std::fmt::Write as _;
use std::io::Write;

use super::args::Ctx;
use super::campaign::{campaign_by_id, fmt_time};
use super::output::{money, pct, table, table_of, term_cell, write_csv_row};
use crate::config::Runtime;
use crate::report::ads::{AdLine, AdReport};
use crate::report::email::CampaignReport;
use crate::store::Store;

/// Prints campaign `id`'s report.
pub fn show(
    rt: &Runtime,
    store: &dyn Store,
    ctx: &Ctx,
    id: i64,
    recipients: bool,
    csv: bool,
) -> anyhow::Result<()> {
    let c = campaign_by_id(store, id)?;
    let model = crate::report::ads::Model::from_config(&rt.config.ads);
    let r = crate::report::campaign(store, &c, model, ctx.now(), recipients)?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
    } else if csv {
        write_csv(&mut out, &r, recipients)?;
    } else {
        out.write_all(render(&r, recipients).as_bytes())?;
    }
    Ok(())
}

fn render(r: &CampaignReport, recipients: bool) -> String {
    let ads = r.ads.as_ref().map(render_ads).unwrap_or_default();
    if r.opens.total + r.clicks.total == 0 && r.sent_ms.is_none() && !ads.is_empty() {
        // An ad campaign: no email part to show.
        return format!("Campaign {} — {}\n{ads}", r.id, term_cell(&r.name, 80));
    }
    let mut s = format!(
        "Campaign {} — {}\nsent {}   delivered {}\n\n",
        r.id,
        term_cell(&r.name, 80),
        fmt_time(r.sent_ms),
        r.delivered
            .map(|d| d.to_string())
            .unwrap_or_else(|| "unknown (set it with 'campaign sent --count')".into())
    );
    let o = &r.opens;
    s.push_str(&format!(
        "opens   total {}   unique {}   unique human {}   open rate human {}   (all, machines included: {})\n",
        o.total, o.unique, o.unique_human, pct(o.rate_human), pct(o.rate_all)
    ));
    let k = &r.clicks;
    s.push_str(&format!(
        "clicks  total {}   unique {}   unique human {}   CTR {}   click-to-open {}\n",
        k.total,
        k.unique,
        k.unique_human,
        pct(k.ctr),
        pct(k.click_to_open)
    ));
    if k.uncertain.total > 0 {
        s.push_str(&format!(
            "uncertain clicks (apart)   total {}   recipients {} (probably people {}, probably machines {})   CTR with them {}\n",
            k.uncertain.total,
            k.uncertain.unique,
            k.uncertain.probably_human.unique,
            k.uncertain.probably_machine.unique,
            pct(k.ctr_with_uncertain)
        ));
    }
    let verdict_rows = |m: &std::collections::BTreeMap<
        &'static str,
        crate::report::email::Counted,
    >|
     -> Vec<Vec<String>> {
        m.iter()
            .map(|(v, c)| vec![v.to_string(), c.total.to_string(), c.unique.to_string()])
            .collect()
    };
    s.push_str(
        "\nOpens by verdict (human-triggered: human, gmail_proxy, yahoo_proxy, other_proxy)\n",
    );
    s.push_str(&table(
        &["verdict", "total", "unique"],
        &verdict_rows(&o.by_verdict),
    ));
    s.push_str("\nClicks by verdict\n");
    s.push_str(&table(
        &["verdict", "total", "unique"],
        &verdict_rows(&k.by_verdict),
    ));
    for (title, rows) in [
        ("Why: opens by reason", &o.by_reason),
        ("Why: clicks by reason", &k.by_reason),
    ] {
        if rows.is_empty() {
            continue;
        }
        s.push_str(&format!("\n{title}\n"));
        let header = ["verdict", "confidence", "total", "unique", "reason"];
        s.push_str(&table_of(&header, rows, |x| {
            vec![
                x.verdict.to_string(),
                x.confidence.to_string(),
                x.total.to_string(),
                x.unique.to_string(),
                term_cell(&x.explanation, 110),
            ]
        }));
    }
    if !r.links.is_empty() {
        s.push_str("\nLinks\n");
        let header = ["url", "clicks", "unique", "unique human", "uncertain"];
        s.push_str(&table_of(&header, &r.links, |l| {
            vec![
                term_cell(&l.url, 70),
                l.total.to_string(),
                l.unique.to_string(),
                l.unique_human.to_string(),
                l.unique_uncertain.to_string(),
            ]
        }));
    }
    for (title, list) in [("Email clients", &r.clients), ("Devices", &r.devices)] {
        if list.is_empty() {
            continue;
        }
        s.push_str(&format!("\n{title}\n"));
        let header = ["value", "opens", "human-triggered"];
        s.push_str(&table_of(&header, list, |x| {
            vec![
                term_cell(&x.value, 40),
                x.opens.to_string(),
                x.human_opens.to_string(),
            ]
        }));
    }
    let busy: Vec<Vec<String>> = r
        .first_48h
        .iter()
        .filter(|h| h.human_opens + h.machine_opens > 0)
        .map(|h| {
            vec![
                format!("+{}h", h.hour),
                h.human_opens.to_string(),
                h.machine_opens.to_string(),
            ]
        })
        .collect();
    if !busy.is_empty() {
        s.push_str("\nOpens in the first 48 hours after sending (hours without opens left out)\n");
        s.push_str(&table(&["hour", "human", "machine"], &busy));
    }
    if recipients {
        s.push_str("\nRecipients\n");
        let header = [
            "recipient",
            "first open",
            "last open",
            "opens",
            "clicks",
            "human clicks",
            "uncertain",
        ];
        s.push_str(&table_of(&header, &r.recipients, |x| {
            vec![
                term_cell(&x.recipient, 40),
                fmt_time(x.first_open),
                fmt_time(x.last_open),
                x.opens.to_string(),
                x.clicks.to_string(),
                x.human_clicks.to_string(),
                x.uncertain_clicks.to_string(),
            ]
        }));
    }
    s.push_str(&ads);
    s
}

fn write_csv(out: &mut impl Write, r: &CampaignReport, recipients: bool) -> std::io::Result<()> {
    if recipients {
        write_csv_row(
            out,
            &[
                "recipient",
                "first_open",
                "last_open",
                "opens",
                "human_opens",
                "clicks",
                "human_clicks",
                "uncertain_clicks",
            ]
            .map(String::from),
        )?;
        for x in &r.recipients {
            write_csv_row(
                out,
                &[
                    x.recipient.clone(),
                    fmt_time(x.first_open),
                    fmt_time(x.last_open),
                    x.opens.to_string(),
                    x.human_opens.to_string(),
                    x.clicks.to_string(),
                    x.human_clicks.to_string(),
                    x.uncertain_clicks.to_string(),
                ],
            )?;
        }
        return Ok(());
    }
    out.write_all(b"metric,value\n")?;
    let pairs = [
        (
            "delivered",
            r.delivered.map(|d| d.to_string()).unwrap_or_default(),
        ),
        ("opens_total", r.opens.total.to_string()),
        ("opens_unique", r.opens.unique.to_string()),
        ("opens_unique_human", r.opens.unique_human.to_string()),
        (
            "open_rate_human",
            r.opens
                .rate_human
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
        (
            "open_rate_all",
            r.opens.rate_all.map(|p| p.to_string()).unwrap_or_default(),
        ),
        ("clicks_total", r.clicks.total.to_string()),
        ("clicks_unique", r.clicks.unique.to_string()),
        ("clicks_unique_human", r.clicks.unique_human.to_string()),
        (
            "ctr",
            r.clicks.ctr.map(|p| p.to_string()).unwrap_or_default(),
        ),
        ("clicks_uncertain", r.clicks.uncertain.total.to_string()),
        (
            "clicks_uncertain_unique",
            r.clicks.uncertain.unique.to_string(),
        ),
        (
            "ctr_with_uncertain",
            r.clicks
                .ctr_with_uncertain
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
        (
            "click_to_open",
            r.clicks
                .click_to_open
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
    ];
    for (k, v) in pairs {
        write_csv_row(out, &[k.to_string(), v])?;
    }
    Ok(())
}

fn ad_row(label: &str, l: &AdLine) -> Vec<String> {
    vec![
        term_cell(label, 40),
        l.impressions.to_string(),
        l.clicks.to_string(),
        pct(l.ctr),
        l.conversions.to_string(),
        pct(l.conversion_rate),
        money(&l.revenue),
        money(&l.average_order_value),
    ]
}

/// The ads section of a campaign report, as text.
fn render_ads(r: &AdReport) -> String {
    let t = &r.total;
    if t.impressions + t.bot_impressions + t.clicks + t.bot_clicks + t.conversions == 0
        && r.cost.is_none()
    {
        return String::new();
    }
    let mut s = format!(
        "\nAds ({} attribution, {}-day lookback; bots not counted: {} impressions, {} clicks)\n",
        r.attribution.replace('_', "-"),
        r.lookback_days,
        t.bot_impressions,
        t.bot_clicks
    );
    let mut rows = vec![ad_row("all ads", t)];
    for l in &r.ads {
        rows.push(ad_row(
            if l.ad.is_empty() { "(no ad id)" } else { &l.ad },
            l,
        ));
    }
    s.push_str(&table(
        &[
            "ad",
            "impressions",
            "clicks",
            "CTR",
            "conversions",
            "conv. rate",
            "revenue",
            "avg order",
        ],
        &rows,
    ));
    if r.email_conversions > 0 {
        let _ = writeln!(
            s,
            "conversions credited to this campaign's email clicks: {}",
            r.email_conversions
        );
    }
    if let Some(c) = &r.cost {
        let _ = writeln!(
            s,
            "cost {} {}   cost per acquisition {}",
            c.amount,
            c.currency,
            r.cost_per_acquisition
                .as_ref()
                .map(|m| format!("{} {}", m.amount, m.currency))
                .unwrap_or_else(|| "- (no conversions yet)".into())
        );
    }
    s
}
