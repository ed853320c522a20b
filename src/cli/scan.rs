//! `pixeltrack scan`: the tracking pixels, tracker scripts and personal data in URLs of a
//! page or an email — a file, standard input, or one page fetched with `--url` — as a
//! report grouped by vendor, or JSON. For CI, the exit status says what was found: 0
//! none, 1 some, 2 an error (`cli::main` sets 2 for this command's errors). Every string
//! from the scanned document is made inert with `term_cell` before it reaches a terminal.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use super::args::Ctx;
use super::output::term_cell;
use crate::scan::fetch::{self, Policy};
use crate::scan::patterns::Patterns;
use crate::scan::{eml, scan_email, scan_html, Report};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 when nothing is found, 1 when something is, 2 on an error \
(an unreadable file, a refused or failed fetch, a bad pattern file).\n\
See README \"Auditing pages and emails\" for what is reported and why."
)]
pub struct ScanArgs {
    /// An .html page or an .eml email; `-` reads standard input.
    #[arg(
        value_name = "FILE|-",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    input: Option<PathBuf>,
    /// Fetch one page over HTTP(S) instead: redirects followed (at most 5), every address
    /// checked; loopback, private, link-local and other non-public addresses refused.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// What the input is (default: from the file name's extension, else from its content).
    #[arg(long = "as", value_enum, value_name = "KIND")]
    kind: Option<Kind>,
    /// More vendor patterns, in the format of data/trackers.toml (repeatable); a vendor
    /// with a built-in name replaces the built-in one.
    #[arg(long, value_name = "FILE")]
    patterns: Vec<PathBuf>,
    /// Let --url reach loopback, private, link-local and other non-public addresses.
    #[arg(long)]
    allow_private: bool,
    /// Let --url reach this network although it is not public, e.g. 10.0.0.5/32
    /// (repeatable); other non-public addresses stay refused, redirects included.
    #[arg(long, value_name = "CIDR")]
    allow_net: Vec<ipnet::IpNet>,
    /// Give up on --url after this many seconds, redirects included.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,
    /// Refuse a fetched page larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 5 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_bytes: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An HTML page (or an email's HTML on its own).
    Html,
    /// An email with its headers (RFC 5322, MIME).
    Eml,
}

/// Findings shown per vendor in the text report; `--json` has them all.
const SHOWN: usize = 8;

impl ScanArgs {
    /// Scans and prints the report; the exit code is 1 when something was found, else 0.
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<i32> {
        let patterns = self.patterns()?;
        let report = match &self.url {
            Some(url) => self.scan_url(url, &patterns)?,
            None => self.scan_input(&patterns)?,
        };
        let text = if ctx.json {
            serde_json::to_string(&report)? + "\n"
        } else {
            render(&report)
        };
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            // A reader that stopped early (`| head`) changes nothing about what was found.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
        Ok(i32::from(report.found))
    }

    fn patterns(&self) -> anyhow::Result<Patterns> {
        let mut patterns =
            Patterns::builtin().context("the built-in patterns (data/trackers.toml)")?;
        for file in &self.patterns {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the pattern file {}", file.display()))?;
            let more = Patterns::parse(&text)
                .with_context(|| format!("the pattern file {}", file.display()))?;
            patterns.extend(more);
        }
        Ok(patterns)
    }

    fn scan_input(&self, patterns: &Patterns) -> anyhow::Result<Report> {
        let input = self
            .input
            .as_deref()
            .context("give a FILE, - or --url URL")?;
        let (source, bytes) = if input.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
            ("-".to_owned(), bytes)
        } else {
            let bytes =
                std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
            (input.display().to_string(), bytes)
        };
        let ext = input
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let kind = self.kind.unwrap_or(match ext.as_deref() {
            Some("eml") => Kind::Eml,
            Some("html" | "htm" | "xhtml") => Kind::Html,
            _ if eml::looks_like_email(&bytes) => Kind::Eml,
            _ => Kind::Html,
        });
        Ok(match kind {
            Kind::Eml => scan_email(patterns, &source, &bytes)
                .with_context(|| format!("scanning {source}"))?,
            Kind::Html => scan_html(patterns, &source, &String::from_utf8_lossy(&bytes), None)
                .with_context(|| format!("scanning {source}"))?,
        })
    }

    fn scan_url(&self, url: &str, patterns: &Patterns) -> anyhow::Result<Report> {
        let policy = Policy {
            timeout: Duration::from_secs(self.timeout),
            max_bytes: self.max_bytes,
            allow_private: self.allow_private,
            allow_nets: self.allow_net.clone(),
        };
        let page = fetch::fetch(url, &policy)?;
        let source = page.url.to_string();
        let ctype = page.content_type.as_deref().map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let kind = match (self.kind, ctype.as_deref()) {
            (Some(k), _) => k,
            (None, Some("message/rfc822")) => Kind::Eml,
            (None, None | Some("text/html" | "application/xhtml+xml" | "text/plain" | "")) => {
                Kind::Html
            }
            (None, Some(other)) => bail!(
                "{} is {}, not an HTML page or an email (pass --as html to scan it anyway)",
                term_cell(&source, 200),
                term_cell(other, 80)
            ),
        };
        let mut report = match kind {
            Kind::Eml => scan_email(patterns, &source, &page.body)?,
            Kind::Html => scan_html(
                patterns,
                &source,
                &String::from_utf8_lossy(&page.body),
                Some(&page.url),
            )?,
        };
        report.redirects = page.redirects;
        Ok(report)
    }
}

/// The text report; every string from the document through `term_cell`.
fn render(r: &Report) -> String {
    let mut out = String::new();
    let kind = match r.kind {
        crate::scan::Medium::Page => "page",
        crate::scan::Medium::Email => "email",
    };
    let mut about = vec![kind.to_owned()];
    if let Some(fp) = &r.first_party {
        about.push(format!("own host {}", term_cell(fp, 80)));
    }
    if !r.parts.is_empty() {
        about.push(format!(
            "{} part{} read",
            r.parts.len(),
            if r.parts.len() == 1 { "" } else { "s" }
        ));
    }
    out.push_str(&format!(
        "Scanned {} ({})",
        term_cell(&r.source, 200),
        about.join(", ")
    ));
    for from in &r.redirects {
        out.push_str(&format!("\n  redirected from {}", term_cell(from, 200)));
    }
    if !r.found {
        out.push_str("\nNo tracking pixels, tracker scripts or personal data in URLs found.\n");
        return out;
    }
    out.push_str(&format!(
        "\nFound {} tracker{} ({} finding{}).\n",
        r.trackers,
        if r.trackers == 1 { "" } else { "s" },
        r.findings,
        if r.findings == 1 { "" } else { "s" }
    ));
    for v in &r.vendors {
        let name = if v.known {
            term_cell(&v.vendor, 80)
        } else {
            format!("{} (not a known vendor)", term_cell(&v.vendor, 80))
        };
        out.push_str(&format!("\n{} [{}]\n", name, term_cell(&v.category, 40)));
        out.push_str(&format!("  learns: {}\n", term_cell(&v.learns, 400)));
        out.push_str(&format!("  risk:   {}\n", term_cell(&v.risk, 400)));
        if !v.accounts.is_empty() {
            let ids: Vec<String> = v.accounts.iter().map(|a| term_cell(a, 60)).collect();
            out.push_str(&format!("  accounts: {}\n", ids.join(", ")));
        }
        for f in v.findings.iter().take(SHOWN) {
            let mut head = format!("  - {}", term_cell(&f.element, 60));
            if let Some(part) = &f.part {
                head.push_str(&format!(" in {}", term_cell(part, 80)));
            }
            if f.count > 1 {
                head.push_str(&format!(" (×{})", f.count));
            }
            out.push_str(&head);
            out.push('\n');
            if let Some(url) = &f.url {
                out.push_str(&format!("      {}\n", term_cell(url, 160)));
            }
            let why: Vec<String> = f.reasons.iter().map(|r| term_cell(&r.text, 200)).collect();
            out.push_str(&format!("      why: {}\n", why.join("; ")));
            if f.risk != v.risk {
                out.push_str(&format!("      risk: {}\n", term_cell(&f.risk, 400)));
            }
        }
        if v.findings.len() > SHOWN {
            out.push_str(&format!(
                "  … and {} more (--json lists every one)\n",
                v.findings.len() - SHOWN
            ));
        }
    }
    out
}
