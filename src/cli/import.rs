//! `pixeltrack import`: pixel hits from web-server access logs (nginx, Apache, Caddy)
//! and events from our own NDJSON export, into a site — through the same enrichment as
//! live hits, each with its line's own time, and the same writer as the server (as
//! `demo` does), so sessions, rollups and unique visitors follow the original times.
//!
//! Salts: a day whose salt the store still holds (today, yesterday) uses it, so an
//! imported visitor is the same visitor as a live one; any other day gets a random salt
//! for this run, never stored — the privacy rule of the live salts.
//!
//! Re-importing adds nothing: every imported line leaves an import key in the
//! transaction that stores its event (`import_keys`, schema 17): the first 8 bytes of
//! SHA-256 of the line and its occurrence number among identical lines of the same
//! second (two identical pixel loads in one second are two events). The keys of a batch
//! are looked up with one range read over the batch's times before enrichment, so a
//! duplicate never reaches sessions or rollups. Lines not stored (skipped or dropped)
//! leave no key and are skipped again, for the same reason, next time.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::args::{Ctx, SiteArg};
use crate::clock::{day_of, Millis};
use crate::collect::logs::{parse_line, Format, Parsed, Skip};
use crate::config::LimitsConfig;
use crate::enrich::{Enricher, Outcome, Salt};
use crate::ingest::EventWriter;
use crate::metrics::Metrics;
use crate::model::{DropReason, Event, Site};
use crate::store::sqlite::{ImportKey, ImportLookup};
use crate::store::{CampaignStore, SqliteStore};

/// Lines per transaction. Large enough that a commit is a small part of the time,
/// small enough that a stop loses little work (a re-run skips what was committed).
const BATCH: usize = 8_192;
/// What a failed batch says: the store keeps whole batches, a re-run skips them.
const WRITE_FAILED: &str = "writing to the store failed (see the log above); what was committed before stays, and running the same import again continues after it";
/// How often the WAL is copied into the database during an import.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How long a written batch may wait for the next one before it is committed alone.
const HOLD_AT_MOST: Duration = Duration::from_millis(200);
/// With `--follow`: what has arrived is committed at least this often.
const FOLLOW_COMMIT: Duration = Duration::from_millis(500);

/// `pixeltrack import`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Only the pixel's requests are imported (GET /p.gif and /p.png, under any path prefix, \
answered 2xx/3xx); everything else is counted as skipped, by reason. Re-importing a file \
(or a longer version of it, or its .gz) adds nothing. Give rotated logs oldest first \
(access.log.2.gz access.log.1 access.log): sessions and unique visitors are computed in \
time order. See README \"Importing logs\".")]
pub struct ImportArgs {
    /// The log format: nginx or apache ("combined"), caddy-json, or ndjson (pixeltrack export).
    #[arg(long, value_enum)]
    format: Format,
    #[command(flatten)]
    site: SiteArg,
    /// Log files, oldest first; `-` reads standard input; `.gz` files are decompressed.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// After the last file, keep reading what is appended to it (also across a
    /// rotation), committing what it read within a second, until interrupted (Ctrl-C).
    #[arg(long)]
    follow: bool,
}

/// What an import did: lines read, events stored, and skipped lines by reason.
#[derive(Debug, Default)]
pub struct Summary {
    pub lines: u64,
    pub imported: u64,
    pub bots: u64,
    pub skipped: BTreeMap<&'static str, u64>,
}

impl Summary {
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }
}

/// A sentence per skip reason, for the text summary.
fn explain(reason: &str) -> &'static str {
    match reason {
        "not_a_pixel_hit" => "requests for other things than the pixel (pages, assets, HEAD)",
        "unsupported_route" => {
            "/e, email opens and clicks, exported email and ad events: not importable"
        }
        "error_status" => "pixel requests answered with an error status",
        "bad_line" => "lines that are not in the format",
        "other_site" => "pixel hits of another site (import them with its --site)",
        "duplicate" => "imported before",
        "missing_site" => "pixel hits without s=",
        "host_not_allowed" => "pages on hosts the site does not own",
        "referrer_spam" => "referrers on the spam list",
        "no_consent" | "tracking_off" => "not recorded under the site's privacy settings",
        "unknown_campaign" => "impressions of a campaign not on this site",
        _ => "refused as the collector would refuse them",
    }
}

impl ImportArgs {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        if self.follow
            && (self.files.iter().any(|f| is_gz(f))
                || self.files.last().is_some_and(|f| f.as_os_str() == "-"))
        {
            bail!("--follow tails the last file: it cannot be standard input or a .gz file");
        }
        let (rt, store) = ctx.open()?;
        let site = self.site.find(&store)?;
        let started = Instant::now();
        let total: u64 = self
            .files
            .iter()
            .filter(|f| f.as_os_str() != "-")
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum();
        let progress = Arc::new(Progress::new(
            total,
            self.files.iter().any(|f| f.as_os_str() == "-"),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        if self.follow {
            on_interrupt(stop.clone())?;
        }
        // Three threads on two cores, left to the scheduler: the reader (reading, parsing,
        // looking up, enriching the next batches), this one (sessionizing a batch) and a
        // thread of `write_imported` (committing the batch before it).
        // The live days' salts, read once: the reader enriches with them (other days get
        // a salt of this run), the writer stores only those days' unique-visitor keys.
        let salts = store.salts()?;
        let mut writer =
            import_writer(&store, &rt)?.with_stored_key_days(salts.iter().map(|s| s.day));
        let reader = Reader::new(&store, &rt, site.clone(), self.format, salts)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Prepared>(2);
        // Written batches' buffers go back to the reader: a batch is megabytes, which
        // the allocator would otherwise take fresh (zeroed by the kernel) each time.
        let (spent_tx, spent_rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(3);
        let (files, follow) = (self.files.clone(), self.follow);
        let reading = {
            let progress = progress.clone();
            std::thread::Builder::new()
                .name("pixeltrack-import-reader".into())
                .spawn(move || reader.run(&files, follow, &progress, &stop, &tx, spent_rx))
                .context("starting the reader thread")?
        };
        // The WAL is copied into the database beside the writer, as the server's is
        // (`server/jobs.rs`): the writer, the import's bound, only starts it over.
        let (done, stopped) = std::sync::mpsc::channel::<()>();
        let (imported, bots) = std::thread::scope(|s| {
            let store = &store;
            s.spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    if let Err(e) = store.checkpoint_passive() {
                        tracing::warn!(error = %e, "checkpoint failed");
                    }
                }
            });
            let mut write = || -> anyhow::Result<(u64, u64)> {
                let (mut imported, mut bots) = (0, 0);
                loop {
                    // The batch written last is held while the next is sessionized (see
                    // `write_imported`); with no next batch soon (a followed log, a slow
                    // pipe), it is written now.
                    use std::sync::mpsc::RecvTimeoutError;
                    let mut batch = match rx.recv_timeout(HOLD_AT_MOST) {
                        Ok(b) => b,
                        Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            if !writer.finish_import() {
                                bail!(WRITE_FAILED);
                            }
                            match rx.recv() {
                                Ok(b) => b,
                                Err(_) => break,
                            }
                        }
                    };
                    let n = batch.events.len() as u64;
                    let b = batch.events.iter().filter(|e| e.bot.is_some()).count() as u64;
                    let written = writer.write_imported(&mut batch.events, &batch.keys);
                    batch.events.clear();
                    let _ = spent_tx.try_send(batch.events);
                    if !written {
                        bail!(WRITE_FAILED);
                    }
                    imported += n;
                    bots += b;
                    // Sessions idle past the timeout at the newest line's time can end.
                    writer.evict_idle(batch.newest_ms);
                }
                if !writer.finish_import() {
                    bail!(WRITE_FAILED);
                }
                Ok((imported, bots))
            };
            let written = write();
            // The writing ended (whatever its outcome): the checkpoints stop.
            drop(done);
            written
        })?;
        let mut summary = match reading.join() {
            Ok(result) => result?,
            Err(_) => bail!("the reader thread stopped unexpectedly"),
        };
        summary.imported = imported;
        summary.bots = bots;
        progress.finish();
        store.checkpoint()?;
        print_summary(ctx.json, &site, &summary, started.elapsed());
        Ok(())
    }
}

/// The import's writer: the server's writer (sessions, rollups, unique visitors) on a
/// connection of its own beside the server's, knowing the visitors counted today.
fn import_writer(store: &SqliteStore, rt: &crate::config::Runtime) -> anyhow::Result<EventWriter> {
    let cfg = &rt.config;
    let timeout = i64::from(cfg.enrich.session_timeout_minutes) * 60_000;
    let mut writer = EventWriter::new(
        store
            .writer(cfg.ingest.synchronous)?
            .with_busy_timeout(Duration::from_millis(cfg.ingest.busy_timeout_ms))?
            .beside_server(),
        timeout,
        Arc::new(Metrics::default()),
    )
    .with_dedupe_window(i64::from(cfg.ads.dedupe_days) * crate::clock::DAY_MS)
    .with_memory_bounds(cfg.ingest.max_unique_keys, cfg.ingest.max_open_sessions);
    writer.load_unique_keys()?;
    Ok(writer)
}

fn is_gz(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}

/// Ctrl-C (SIGINT) and SIGTERM set `stop`; the import commits what it read and exits
/// with its summary.
fn on_interrupt(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    std::thread::spawn(move || {
        rt.block_on(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
        })
    });
    Ok(())
}

/// The progress bar on stderr (only when it is a terminal): bytes read of the files'
/// sizes (compressed bytes for `.gz`), lines per second and the time left.
struct Progress {
    bar: indicatif::ProgressBar,
    read: AtomicU64,
}

impl Progress {
    fn new(total: u64, stdin: bool) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let bar = if stdin || total == 0 {
                indicatif::ProgressBar::new_spinner()
            } else {
                indicatif::ProgressBar::new(total)
            };
            let template = if stdin || total == 0 {
                "{spinner} {msg}"
            } else {
                "[{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        Progress {
            bar,
            read: AtomicU64::new(0),
        }
    }

    fn bytes(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
        self.bar.inc(n);
    }

    fn lines(&self, lines: u64, per_second: f64) {
        self.bar
            .set_message(format!("{lines} lines, {per_second:.0} lines/s"));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Counts the bytes read through it (the progress bar's position).
struct Counted<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes(n as u64);
        Ok(n)
    }
}

/// One line waiting for its batch to be written.
struct Pending {
    key: ImportKey,
    parsed: Parsed,
}

/// A batch ready to be written: its events, enriched and in time order, with the
/// import keys of the lines they came from.
struct Prepared {
    events: Vec<Event>,
    keys: Vec<ImportKey>,
    /// The newest line's time read so far.
    newest_ms: Millis,
}

/// The reading side of an import: the site, parsing, the lookup of earlier imports,
/// enrichment and the current batch. Runs on a thread of its own and hands each batch
/// to the writer.
struct Reader {
    site: Site,
    format: Format,
    limits: LimitsConfig,
    enricher: Enricher,
    lookup: ImportLookup,
    /// Live salts from the store, and this run's random ones for other days.
    salts: HashMap<i64, Salt>,
    /// The site's campaign ids (impressions must name one).
    campaigns: Vec<i64>,
    batch: Vec<Pending>,
    /// Occurrences of identical lines within the same second, for their keys (keyed by
    /// a hash already: a fast hasher).
    seen: HashMap<(Millis, [u8; 8]), u32, foldhash::fast::RandomState>,
    newest_ms: Millis,
    started: Instant,
    summary: Summary,
    /// Where batches go (the writer). Set while running.
    out: Option<std::sync::mpsc::SyncSender<Prepared>>,
    /// Buffers of written batches, back from the writer to be filled again.
    spent: Option<std::sync::mpsc::Receiver<Vec<Event>>>,
}

impl Reader {
    fn new(
        store: &SqliteStore,
        rt: &crate::config::Runtime,
        site: Site,
        format: Format,
        salts: Vec<Salt>,
    ) -> anyhow::Result<Reader> {
        let cfg = &rt.config;
        let enricher = Enricher::configured(cfg)?;
        // The operator's referrer-spam additions, as the server reads them.
        let spam = cfg.data_dir.join(crate::server::jobs::SPAM_FILE);
        if let Ok(text) = std::fs::read_to_string(&spam) {
            enricher.spam.set_extra(crate::enrich::spam::parse(&text));
        }
        let salts = salts.into_iter().map(|s| (s.day, s)).collect();
        let campaigns = store
            .campaigns(Some(site.id))?
            .into_iter()
            .map(|c| c.id)
            .collect();
        Ok(Reader {
            site,
            format,
            limits: cfg.limits.clone(),
            enricher,
            lookup: store.import_lookup()?,
            salts,
            campaigns,
            batch: Vec::with_capacity(BATCH),
            seen: HashMap::default(),
            newest_ms: Millis::MIN,
            started: Instant::now(),
            summary: Summary::default(),
            out: None,
            spent: None,
        })
    }

    /// Reads every file in turn (the last one followed with `follow`), sending each
    /// batch to `out`; returns what it read and skipped.
    fn run(
        mut self,
        files: &[PathBuf],
        follow: bool,
        progress: &Progress,
        stop: &AtomicBool,
        out: &std::sync::mpsc::SyncSender<Prepared>,
        spent: std::sync::mpsc::Receiver<Vec<Event>>,
    ) -> anyhow::Result<Summary> {
        self.out = Some(out.clone());
        self.spent = Some(spent);
        for (i, file) in files.iter().enumerate() {
            let follow = follow && i + 1 == files.len();
            self.file(file, progress, follow, stop)
                .with_context(|| format!("importing {}", file.display()))?;
        }
        self.flush()?;
        Ok(self.summary)
    }

    /// Reads one file (or stdin) to its end — and with `follow`, on until `stop`.
    fn file(
        &mut self,
        path: &Path,
        progress: &Progress,
        follow: bool,
        stop: &AtomicBool,
    ) -> anyhow::Result<()> {
        if path.as_os_str() == "-" {
            let stdin = std::io::stdin().lock();
            return self.lines(
                BufReader::new(Counted {
                    inner: stdin,
                    progress,
                }),
                progress,
            );
        }
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        if is_gz(path) {
            let gz = flate2::read::MultiGzDecoder::new(Counted {
                inner: BufReader::new(file),
                progress,
            });
            return self.lines(BufReader::with_capacity(256 * 1024, gz), progress);
        }
        if !follow {
            return self.lines(
                BufReader::with_capacity(
                    256 * 1024,
                    Counted {
                        inner: file,
                        progress,
                    },
                ),
                progress,
            );
        }
        self.follow(path, file, progress, stop)
    }

    /// Every complete line of `r`; a last line without a line break counts too.
    fn lines(&mut self, mut r: impl BufRead, progress: &Progress) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            self.line(&buf)?;
            if self.summary.lines % 4096 == 0 {
                progress.lines(self.summary.lines, self.rate());
            }
        }
    }

    /// `tail -F`: reads what is appended, hands it to the writer every half second, and starts
    /// over at the path's new file when the log is rotated (or truncated).
    fn follow(
        &mut self,
        path: &Path,
        mut file: std::fs::File,
        progress: &Progress,
        stop: &AtomicBool,
    ) -> anyhow::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let mut partial: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 256 * 1024];
        let mut pos: u64 = 0;
        let mut last_commit = Instant::now();
        loop {
            let n = file.read(&mut chunk)?;
            if n > 0 {
                pos += n as u64;
                progress.bytes(n as u64);
                partial.extend_from_slice(&chunk[..n]);
                let mut start = 0;
                while let Some(i) = partial[start..].iter().position(|&b| b == b'\n') {
                    let end = start + i + 1;
                    let line = partial[start..end].to_vec();
                    self.line(&line)?;
                    start = end;
                }
                partial.drain(..start);
                progress.lines(self.summary.lines, self.rate());
                continue;
            }
            if last_commit.elapsed() >= FOLLOW_COMMIT {
                self.flush()?;
                last_commit = Instant::now();
            }
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
            // Rotated (another file at the path) or truncated: read the rest of the
            // old file first (done above), then the new one from its start.
            let here = file.metadata()?;
            let rotated = match std::fs::metadata(path) {
                Ok(now) => now.ino() != here.ino() || now.dev() != here.dev() || now.len() < pos,
                Err(_) => false,
            };
            if rotated {
                if let Ok(f) = std::fs::File::open(path) {
                    if !partial.is_empty() {
                        let line = std::mem::take(&mut partial);
                        self.line(&line)?;
                    }
                    file = f;
                    pos = 0;
                }
            }
        }
    }

    fn rate(&self) -> f64 {
        self.summary.lines as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// One line: parsed, keyed and queued for its batch; a full batch goes on to the
    /// writer.
    fn line(&mut self, raw: &[u8]) -> anyhow::Result<()> {
        self.queue(raw);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Parses and keys one line, and queues it for its batch (or counts why not).
    fn queue(&mut self, raw: &[u8]) {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.summary.lines += 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            self.summary.skip(Skip::BadLine.as_str());
            return;
        };
        let parsed = match parse_line(self.format, text, &self.limits) {
            Ok(p) => p,
            Err(s) => {
                self.summary.skip(s.as_str());
                return;
            }
        };
        let ts_ms = match &parsed {
            Parsed::Hit(h) => {
                match h.params.site.as_deref() {
                    None | Some("") => {
                        self.summary.skip(DropReason::MissingSite.as_str());
                        return;
                    }
                    Some(k) if k != self.site.key.as_str() => {
                        self.summary.skip(Skip::OtherSite.as_str());
                        return;
                    }
                    Some(_) => {}
                }
                h.received_ms
            }
            Parsed::Event(e) => e.ts_ms,
        };
        let digest: [u8; 8] = Sha256::digest(raw)[..8].try_into().unwrap_or_default();
        let n = self.seen.entry((ts_ms, digest)).or_insert(0);
        let occurrence = *n;
        *n += 1;
        let key = if occurrence == 0 {
            i64::from_be_bytes(digest)
        } else {
            let mut h = Sha256::new();
            h.update(raw);
            h.update(occurrence.to_be_bytes());
            i64::from_be_bytes(h.finalize()[..8].try_into().unwrap_or_default())
        };
        self.newest_ms = self.newest_ms.max(ts_ms);
        if self.seen.len() > 100_000 {
            // Identical lines share their second; logs are in time order, so lines
            // older than five minutes cannot come again.
            let horizon = self.newest_ms - 300_000;
            self.seen.retain(|(t, _), _| *t >= horizon);
        }
        self.batch.push(Pending {
            key: ImportKey {
                site_id: self.site.id.0,
                ts_ms,
                key,
            },
            parsed,
        });
    }

    /// Looks the batch up among earlier imports, enriches what is new and hands it to
    /// the writer, with the keys of the lines it will store.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // The batch's buffer is kept for the next one (see `spent`).
        let mut batch = std::mem::take(&mut self.batch);
        let keys: Vec<ImportKey> = batch.iter().map(|p| p.key).collect();
        let before = self.lookup.imported(&keys)?;
        // Logs are written in time order: sorting is the exception.
        if !batch.is_sorted_by_key(|p| p.key.ts_ms) {
            batch.sort_by_key(|p| p.key.ts_ms);
        }
        let mut events = self
            .spent
            .as_ref()
            .and_then(|r| r.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(batch.len()));
        let mut stored = Vec::with_capacity(batch.len());
        for p in batch.drain(..) {
            if before.contains(&p.key) {
                self.summary.skip(DropReason::Duplicate.as_str());
                continue;
            }
            match self.event(p.parsed) {
                Ok(e) => {
                    events.push(e);
                    stored.push(p.key);
                }
                Err(r) => self.summary.skip(r.as_str()),
            }
        }
        self.batch = batch;
        let prepared = Prepared {
            events,
            keys: stored,
            newest_ms: self.newest_ms,
        };
        let sent = self.out.as_ref().is_some_and(|o| o.send(prepared).is_ok());
        if !sent {
            bail!("the writer stopped");
        }
        Ok(())
    }

    fn event(&mut self, parsed: Parsed) -> Result<Event, DropReason> {
        match parsed {
            Parsed::Hit(hit) => {
                let day = day_of(hit.received_ms);
                let salt = self.salts.entry(day).or_insert_with(|| Salt::random(day));
                let event = match self.enricher.enrich(&hit, &self.site, salt) {
                    Outcome::Keep(e) => *e,
                    Outcome::Drop(r) => return Err(r),
                };
                if let Some(ad) = &event.ad {
                    if !self.campaigns.contains(&ad.campaign_id) {
                        return Err(DropReason::UnknownCampaign);
                    }
                }
                Ok(event)
            }
            Parsed::Event(mut e) => {
                if !e.host.is_empty() && !self.site.owns_host(&e.host) {
                    return Err(DropReason::HostNotAllowed);
                }
                if self.enricher.spam.is_spam(&e.referrer_host) {
                    return Err(DropReason::ReferrerSpam);
                }
                e.site_id = self.site.id.0;
                Ok(*e)
            }
        }
    }
}

fn print_summary(json: bool, site: &Site, s: &Summary, took: Duration) {
    let skipped: u64 = s.skipped.values().sum();
    let per_second = s.lines as f64 / took.as_secs_f64().max(1e-3);
    if json {
        println!(
            "{}",
            json!({
                "site": site.domain, "lines": s.lines, "imported": s.imported, "bots": s.bots,
                "skipped": skipped, "skipped_by_reason": s.skipped,
                "seconds": (took.as_secs_f64() * 1000.0).round() / 1000.0,
                "lines_per_second": per_second.round(),
            })
        );
        return;
    }
    println!(
        "Imported {} of {} lines into {} ({} of them bots), in {:.1} s ({:.0} lines/s).",
        s.imported,
        s.lines,
        super::output::term_cell(&site.domain, 80),
        s.bots,
        took.as_secs_f64(),
        per_second
    );
    if skipped > 0 {
        println!("Skipped {skipped}:");
        let width = s.skipped.keys().map(|k| k.len()).max().unwrap_or(0);
        for (reason, n) in &s.skipped {
            println!("  {reason:<width$}  {n:>9}  {}", explain(reason));
        }
    }
}
