//! `campaign`, `email tag`, `key` and `report --campaign`: the email side of the CLI.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context};

use super::output::{csv_line, table, term_cell};
use super::pick_site;
use crate::clock::{Clock, Millis};
use crate::config::Runtime;
use crate::model::Campaign;
use crate::report::email::CampaignReport;
use crate::store::{SqliteStore, Store};
use crate::tag::{Recipient, Tagger};

pub fn parse_time(s: &str) -> anyhow::Result<Millis> {
    if s == "now" {
        return Ok(Clock::System.now_ms());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Some(day) = crate::report::DateRange::parse_date(s) {
        return Ok(day * crate::clock::DAY_MS);
    }
    bail!("{s:?} is not a time: use 'now', 2026-11-29 or 2026-11-29T10:00:00Z")
}

pub fn fmt_time(ms: Option<Millis>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

pub fn campaign_by_id(store: &SqliteStore, id: i64) -> anyhow::Result<Campaign> {
    store
        .campaign(id)?
        .with_context(|| format!("no campaign {id}: list them with 'pixeltrack campaign list'"))
}

fn campaign_json(c: &Campaign) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "site_id": c.site_id, "name": c.name,
        "sent_at": c.sent_ms.map(|m| fmt_time(Some(m))), "delivered": c.delivered,
    })
}

pub fn create(store: &SqliteStore, site: &str, name: &str, json: bool) -> anyhow::Result<()> {
    let site = pick_site(store, Some(site))?;
    if !crate::model::valid_name(name) {
        bail!("a campaign name is 1 to 200 characters without control characters");
    }
    let name = name.trim();
    let c = store.add_campaign(site.id.0, name, Clock::System.now_ms())?;
    if json {
        println!("{}", campaign_json(&c));
    } else {
        println!(
            "Created campaign {} ({}) for {}.",
            c.id,
            term_cell(&c.name, 80),
            site.domain
        );
        println!("Tag an email:  pixeltrack email tag --campaign {} --recipient <id> < email.html > tagged.html", c.id);
        println!(
            "When sent:     pixeltrack campaign sent {} --count <delivered>",
            c.id
        );
        println!(
            "For ads:       pixeltrack link create --site {} --campaign {} --ad <ad> <landing URL>",
            site.key, c.id
        );
    }
    Ok(())
}

pub fn list(store: &SqliteStore, site: Option<&str>, json: bool) -> anyhow::Result<()> {
    let site_id = match site {
        Some(s) => Some(pick_site(store, Some(s))?.id.0),
        None => None,
    };
    let list = store.campaigns(site_id)?;
    if json {
        println!(
            "{}",
            serde_json::Value::Array(list.iter().map(campaign_json).collect())
        );
    } else if list.is_empty() {
        println!("No campaigns yet: create one with 'pixeltrack campaign create --site <site> --name <name>'.");
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    term_cell(&c.name, 50),
                    fmt_time(c.sent_ms),
                    c.delivered
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        print!("{}", table(&["id", "name", "sent", "delivered"], &rows));
    }
    Ok(())
}

pub fn sent(
    store: &SqliteStore,
    id: i64,
    count: Option<i64>,
    at: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    campaign_by_id(store, id)?;
    if count.is_some_and(|c| c < 0) {
        bail!("--count cannot be negative");
    }
    let at = parse_time(at.unwrap_or("now"))?;
    store.set_campaign_sent(id, count, Some(at))?;
    let c = campaign_by_id(store, id)?;
    if json {
        println!("{}", campaign_json(&c));
    } else {
        println!(
            "Campaign {} sent at {} to {} recipients.",
            c.id,
            fmt_time(c.sent_ms),
            c.delivered
                .map(|d| d.to_string())
                .unwrap_or_else(|| "an unknown number of".into())
        );
    }
    Ok(())
}

pub fn tagger_parts(
    store: &SqliteStore,
    campaign: i64,
) -> anyhow::Result<(Campaign, crate::token::Keyring)> {
    let c = campaign_by_id(store, campaign)?;
    let ring = crate::token::Keyring::from_masters(store.token_keys(Clock::System.now_ms())?);
    Ok((c, ring))
}

pub struct TagArgs<'a> {
    pub campaign: i64,
    pub recipient: Option<&'a str>,
    pub recipients: Option<&'a Path>,
    pub out_dir: Option<&'a Path>,
    pub merge_tag: Option<&'a str>,
    pub input: Option<&'a Path>,
}

fn safe_file_name(i: usize, recipient: &str) -> String {
    let cleaned: String = recipient
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{:05}-{cleaned}.html", i + 1)
}

/// Reads recipient ids from a CSV: the column named `recipient`, `id`, `email` or
/// `subscriber_id` if there is a header with one of those, else the first column.
fn read_recipients(path: &Path) -> anyhow::Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut rows = rdr.records();
    let mut out = Vec::new();
    let mut col = 0;
    if let Some(first) = rows.next() {
        let first = first.with_context(|| format!("reading {}", path.display()))?;
        let names = ["recipient", "id", "email", "subscriber_id"];
        match first
            .iter()
            .position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()))
        {
            Some(i) => col = i,
            None => out.extend(first.get(0).map(|s| s.trim().to_owned())),
        }
    }
    for row in rows {
        let row = row.with_context(|| format!("reading {}", path.display()))?;
        if let Some(v) = row.get(col) {
            out.push(v.trim().to_owned());
        }
    }
    out.retain(|r| !r.is_empty());
    Ok(out)
}

pub fn tag(rt: &Runtime, store: &SqliteStore, a: TagArgs<'_>, json: bool) -> anyhow::Result<()> {
    let (campaign, ring) = tagger_parts(store, a.campaign)?;
    let tagger = Tagger {
        keyring: &ring,
        base: &rt.public_url,
        site_id: campaign.site_id,
        campaign_id: campaign.id,
    };
    let mut html = String::new();
    match a.input {
        Some(p) => {
            html = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut html)
                .context("reading the email HTML from standard input")?;
        }
    }
    let warn = |refused: &[String]| {
        for r in refused {
            eprintln!(
                "warning: left a link untracked, it is not safe to redirect to: {}",
                term_cell(r, 120)
            );
        }
    };
    match (a.recipient, a.recipients, a.merge_tag) {
        (Some(r), None, None) => {
            let out = tagger.tag(&html, Recipient::Id(r))?;
            warn(&out.refused);
            std::io::stdout().lock().write_all(out.html.as_bytes())?;
        }
        (None, None, Some(tag)) => {
            let out = tagger.tag(&html, Recipient::MergeTag(tag))?;
            warn(&out.refused);
            std::io::stdout().lock().write_all(out.html.as_bytes())?;
        }
        (None, Some(file), None) => {
            let dir = a.out_dir.context("--recipients needs --out-dir DIR")?;
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let list = read_recipients(file)?;
            if list.is_empty() {
                bail!("no recipients in {}", file.display());
            }
            let bar = indicatif::ProgressBar::new(list.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("tagging [{bar:30}] {pos}/{len} {msg}")
                    .context("progress bar template")?,
            );
            let mut index = String::from("recipient,file\n");
            let mut links = 0;
            for (i, r) in list.iter().enumerate() {
                let out = tagger.tag(&html, Recipient::Id(r)).with_context(|| format!("recipient {:?}", term_cell(r, 60)))?;
                if i == 0 {
                    warn(&out.refused);
                }
                links = out.links;
                let name = safe_file_name(i, r);
                std::fs::write(dir.join(&name), out.html).with_context(|| format!("writing {name}"))?;
                index.push_str(&csv_line(&[r.clone(), name]));
                bar.inc(1);
            }
            bar.finish_and_clear();
            std::fs::write(dir.join("index.csv"), index)?;
            if json {
                println!("{}", serde_json::json!({"emails": list.len(), "links_per_email": links, "out_dir": dir.display().to_string()}));
            } else {
                println!("Tagged {} emails ({links} links each) into {} (see index.csv).", list.len(), dir.display());
            }
        }
        _ => bail!("give exactly one of --recipient ID, --recipients FILE --out-dir DIR, or --merge-tag PLACEHOLDER"),
    }
    Ok(())
}

pub fn keys(store: &SqliteStore, action: &super::KeyCommand, json: bool) -> anyhow::Result<()> {
    let now = Clock::System.now_ms();
    match action {
        super::KeyCommand::List => {
            let ids: Vec<u8> = store
                .token_keys(now)?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"keys": ids, "signing": ids.last()})
                );
            } else {
                for id in &ids {
                    let role = if Some(id) == ids.last() {
                        "signs and verifies"
                    } else {
                        "verifies"
                    };
                    println!("key {id}: {role}");
                }
            }
        }
        super::KeyCommand::Rotate => {
            store.token_keys(now)?;
            let id = store.rotate_token_key(now)?;
            if json {
                println!("{}", serde_json::json!({"signing": id}));
            } else {
                println!("Key {id} now signs new links; older keys still verify. A running server picks it up within a minute.");
            }
        }
        super::KeyCommand::Retire { id } => {
            if !store.retire_token_key(*id)? {
                bail!("no key {id}: see 'pixeltrack key list'");
            }
            if json {
                println!("{}", serde_json::json!({"retired": id}));
            } else {
                println!("Key {id} retired: links signed with it no longer work.");
            }
        }
    }
    Ok(())
}

pub fn report(
    rt: &Runtime,
    store: &SqliteStore,
    id: i64,
    recipients: bool,
    csv: bool,
    json: bool,
) -> anyhow::Result<()> {
    let c = campaign_by_id(store, id)?;
    let model = crate::report::ads::Model::from_config(&rt.config.ads);
    let r = crate::report::campaign(store, &c, model, Clock::System.now_ms(), recipients)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
    } else if csv {
        write_csv(&mut out, &r, recipients)?;
    } else {
        out.write_all(render(&r, recipients).as_bytes())?;
    }
    Ok(())
}

fn opt_pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into())
}

fn render(r: &CampaignReport, recipients: bool) -> String {
    let ads = r
        .ads
        .as_ref()
        .map(super::ads::render_ads)
        .unwrap_or_default();
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
        o.total, o.unique, o.unique_human, opt_pct(o.rate_human), opt_pct(o.rate_all)
    ));
    let k = &r.clicks;
    s.push_str(&format!(
        "clicks  total {}   unique {}   unique human {}   CTR {}   click-to-open {}\n",
        k.total,
        k.unique,
        k.unique_human,
        opt_pct(k.ctr),
        opt_pct(k.click_to_open)
    ));
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
    if !r.links.is_empty() {
        s.push_str("\nLinks\n");
        let rows: Vec<Vec<String>> = r
            .links
            .iter()
            .map(|l| {
                vec![
                    term_cell(&l.url, 70),
                    l.total.to_string(),
                    l.unique.to_string(),
                    l.unique_human.to_string(),
                ]
            })
            .collect();
        s.push_str(&table(&["url", "clicks", "unique", "unique human"], &rows));
    }
    for (title, list) in [("Email clients", &r.clients), ("Devices", &r.devices)] {
        if list.is_empty() {
            continue;
        }
        s.push_str(&format!("\n{title}\n"));
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|x| {
                vec![
                    term_cell(&x.value, 40),
                    x.opens.to_string(),
                    x.human_opens.to_string(),
                ]
            })
            .collect();
        s.push_str(&table(&["value", "opens", "human-triggered"], &rows));
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
        let rows: Vec<Vec<String>> = r
            .recipients
            .iter()
            .map(|x| {
                vec![
                    term_cell(&x.recipient, 40),
                    fmt_time(x.first_open),
                    fmt_time(x.last_open),
                    x.opens.to_string(),
                    x.clicks.to_string(),
                    x.human_clicks.to_string(),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "recipient",
                "first open",
                "last open",
                "opens",
                "clicks",
                "human clicks",
            ],
            &rows,
        ));
    }
    s.push_str(&ads);
    s
}

fn write_csv(out: &mut impl Write, r: &CampaignReport, recipients: bool) -> std::io::Result<()> {
    if recipients {
        out.write_all(
            csv_line(
                &[
                    "recipient",
                    "first_open",
                    "last_open",
                    "opens",
                    "human_opens",
                    "clicks",
                    "human_clicks",
                ]
                .map(String::from),
            )
            .as_bytes(),
        )?;
        for x in &r.recipients {
            out.write_all(
                csv_line(&[
                    x.recipient.clone(),
                    fmt_time(x.first_open),
                    fmt_time(x.last_open),
                    x.opens.to_string(),
                    x.human_opens.to_string(),
                    x.clicks.to_string(),
                    x.human_clicks.to_string(),
                ])
                .as_bytes(),
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
        (
            "click_to_open",
            r.clicks
                .click_to_open
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
    ];
    for (k, v) in pairs {
        out.write_all(csv_line(&[k.to_string(), v]).as_bytes())?;
    }
    Ok(())
}
