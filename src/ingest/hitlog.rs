//! The hit log: where an acknowledged hit is durable before SQLite has it.
//!
//! Under concurrent load the writer thread appends each batch of hits to the log
//! (one `write` of a checksummed record), answers them, and hands them to the
//! indexer thread, which commits what arrived over up to `ingest.log_hold_ms` in one
//! SQLite transaction: a few large transactions instead of many small ones, and no
//! answer waits for one. Each record has a sequence number; the transaction that
//! commits a record's events stores its number (`hit_log` table), so after a crash
//! the records above it are replayed — each exactly once. A log file is deleted as
//! soon as every record in it is committed, so the log holds at most the last
//! fraction of a second of hits.
//!
//! A write is durable across a process crash (`kill -9`) once `write` returns, as
//! SQLite's WAL frames are with `synchronous = normal`; with `synchronous = full`
//! each record is also synced to disk before its hits are answered.
//!
//! Files: `hits-<first sequence number, 20 digits>.log` in the data directory.
//! Record: magic `PTHL` (4 bytes), sequence number (u64), payload length (u32),
//! CRC-32 of the sequence number, length and payload (u32), payload; little-endian.
//! Payload: event count (u32), then each event ([`encode`]). A record cut short by a
//! crash, or one whose checksum fails, ends the file: its hits were never answered.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::model::{AdFields, BotReason, Device, EmailFields, Event, Utm, Verdict};

const MAGIC: &[u8; 4] = b"PTHL";
const HEADER: usize = 4 + 8 + 4 + 4;
/// A file this large starts the next one (so committed hits leave the disk early).
const FILE_BYTES: u64 = 4 << 20;
/// The largest payload read back: anything longer is a damaged header.
const MAX_PAYLOAD: usize = 256 << 20;

/// The log the writer thread appends to.
pub struct HitLog {
    dir: PathBuf,
    /// The file being appended to, its path, size and the last record's number.
    file: Option<(File, PathBuf, u64)>,
    /// Files holding records, oldest first, with the number of their last record.
    files: Vec<(PathBuf, u64)>,
    next_seq: u64,
    sync: bool,
}

/// Records found in the log when it was opened: hits answered before a crash (or
/// a failed commit), for the indexer to commit if the store does not have them.
pub struct Leftover {
    pub dir: PathBuf,
    pub records: Vec<(u64, Vec<Event>)>,
    pub files: Vec<PathBuf>,
}

fn file_name(first_seq: u64) -> String {
    format!("hits-{first_seq:020}.log")
}

fn log_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hits-") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    Ok(files)
}

impl HitLog {
    /// Opens the log in `dir`: the records already there are returned to be replayed;
    /// new records are numbered after them and after `committed` (the store's mark).
    pub fn open(dir: &Path, committed: u64, sync: bool) -> std::io::Result<(HitLog, Leftover)> {
        let files = log_files(dir)?;
        let mut records = Vec::new();
        let mut last = committed;
        for f in &files {
            for (seq, events) in read_file(f, true)? {
                last = last.max(seq);
                if seq > committed {
                    records.push((seq, events));
                }
            }
        }
        let log = HitLog {
            dir: dir.to_owned(),
            file: None,
            files: Vec::new(),
            next_seq: last + 1,
            sync,
        };
        Ok((
            log,
            Leftover {
                dir: dir.to_owned(),
                records,
                files,
            },
        ))
    }

    /// Appends `events` as one record; returns its number once the record is written
    /// (and synced, with `synchronous = full`).
    pub fn append(&mut self, events: &[Event]) -> std::io::Result<u64> {
        let seq = self.next_seq;
        let mut payload = Vec::with_capacity(64 + events.len() * 320);
        payload.extend_from_slice(&(events.len() as u32).to_le_bytes());
        for e in events {
            encode(e, &mut payload);
        }
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(MAGIC);
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&seq.to_le_bytes());
        crc.update(&(payload.len() as u32).to_le_bytes());
        crc.update(&payload);
        record.extend_from_slice(&crc.finalize().to_le_bytes());
        record.extend_from_slice(&payload);
        if self
            .file
            .as_ref()
            .is_some_and(|(_, _, size)| *size >= FILE_BYTES)
        {
            self.file = None;
        }
        if self.file.is_none() {
            let path = self.dir.join(file_name(seq));
            let f = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            self.files.push((path.clone(), seq));
            self.file = Some((f, path, 0));
        }
        let (f, _, size) = self.file.as_mut().expect("opened above");
        if let Err(e) = f.write_all(&record) {
            // Whatever part of it was written fails its checksum: never replayed. The
            // next record goes to a new file, under the next number (a file is named by
            // its first record's).
            self.file = None;
            self.next_seq += 1;
            return Err(e);
        }
        if self.sync {
            if let Err(e) = f.sync_data() {
                // Its hits now wait for their commit: the record goes, or a restart would
                // store them a second time. If it cannot go, they are answered from it.
                if f.set_len(*size).is_ok() {
                    self.file = None;
                    self.next_seq += 1;
                    return Err(e);
                }
                tracing::error!(error = %e, "syncing the hit log failed: the record stays, its hits are answered");
            }
        }
        *size += record.len() as u64;
        self.next_seq += 1;
        self.files.last_mut().expect("a file is open").1 = seq;
        Ok(seq)
    }

    /// Deletes the files whose records are all committed (`committed`: the store's
    /// mark). The file being appended to goes too when it is fully committed: the next
    /// record starts a new one.
    pub fn release(&mut self, committed: u64) {
        let keep = self
            .files
            .iter()
            .position(|(_, last)| *last > committed)
            .unwrap_or(self.files.len());
        if keep == 0 {
            return;
        }
        for (path, _) in self.files.drain(..keep) {
            if self.file.as_ref().is_some_and(|(_, p, _)| *p == path) {
                self.file = None;
            }
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(error = %e, path = %path.display(), "removing a committed hit log file failed");
            }
        }
    }

    /// Whether a record is written that the store has not committed.
    pub fn holds_uncommitted(&self, committed: u64) -> bool {
        self.files.iter().any(|(_, last)| *last > committed)
    }
}

/// The records in `dir` after `committed`, oldest first. Read again after each failed
/// commit of answered hits, so a record cut short is not reported here: the start
/// reported those a crash left, and the writer thread the append that failed.
pub fn records_after(dir: &Path, committed: u64) -> std::io::Result<Vec<(u64, Vec<Event>)>> {
    let mut out = Vec::new();
    for f in log_files(dir)? {
        out.extend(
            read_file(&f, false)?
                .into_iter()
                .filter(|(seq, _)| *seq > committed),
        );
    }
    out.sort_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// The records of one file, up to the first one cut short or damaged (`say_torn`:
/// logged).
fn read_file(path: &Path, say_torn: bool) -> std::io::Result<Vec<(u64, Vec<Event>)>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let h = &bytes[at..at + HEADER];
        if &h[..4] != MAGIC {
            break;
        }
        let seq = u64::from_le_bytes(h[4..12].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes")) as usize;
        let sum = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes"));
        if len > MAX_PAYLOAD || bytes.len() - at - HEADER < len {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h[4..16]);
        crc.update(payload);
        if crc.finalize() != sum {
            break;
        }
        let Some(events) = decode_batch(payload) else {
            break;
        };
        out.push((seq, events));
        at += HEADER + len;
    }
    if say_torn && at < bytes.len() {
        tracing::warn!(
            path = %path.display(),
            bytes = bytes.len() - at,
            "the hit log ends with a record cut short (a crash or a failed write while it was written: its hits were not answered)"
        );
    }
    Ok(out)
}

fn decode_batch(payload: &[u8]) -> Option<Vec<Event>> {
    let mut r = Reader(payload);
    let n = r.u32()? as usize;
    let mut events = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        events.push(decode(&mut r)?);
    }
    r.0.is_empty().then_some(events)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_opt(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_i64(out, v);
        }
    }
}

/// One event, every field (`decode` reads it back equal).
pub fn encode(e: &Event, out: &mut Vec<u8>) {
    put_i64(out, e.site_id);
    put_i64(out, e.ts_ms);
    put_i64(out, e.visitor_id);
    put_i64(out, e.session_id);
    for s in [
        e.name.as_str(),
        e.host.as_str(),
        e.path.as_str(),
        e.query.as_str(),
        e.title.as_str(),
        e.referrer.as_str(),
        e.referrer_host.as_str(),
        e.source.as_str(),
        e.medium.as_str(),
        e.utm.source.as_str(),
        e.utm.medium.as_str(),
        e.utm.campaign.as_str(),
        e.utm.term.as_str(),
        e.utm.content.as_str(),
        e.click_id.as_str(),
        e.browser.as_str(),
        e.browser_version.as_str(),
        e.os.as_str(),
        e.os_version.as_str(),
        e.currency.as_str(),
        e.order_id.as_str(),
        e.props.as_str(),
        e.country.as_str(),
        e.region.as_str(),
        e.city.as_str(),
        e.as_org.as_str(),
    ] {
        put_str(out, s);
    }
    put_str(out, e.device.as_str());
    put_str(out, e.bot.map_or("", BotReason::as_str));
    put_opt(out, e.value_minor);
    put_opt(out, e.scroll_pct);
    put_opt(out, e.engaged_ms);
    put_opt(out, e.screen_width);
    out.extend_from_slice(&e.asn.to_le_bytes());
    match &e.ip {
        None => out.push(0),
        Some(ip) => {
            out.push(1);
            put_str(out, ip);
        }
    }
    match &e.email {
        None => out.push(0),
        Some(m) => {
            out.push(1);
            put_i64(out, m.campaign_id);
            put_str(out, &m.recipient);
            put_str(out, &m.link);
            put_str(out, m.verdict.as_str());
            put_str(out, m.reason);
            put_str(out, m.client);
        }
    }
    match &e.ad {
        None => out.push(0),
        Some(a) => {
            out.push(1);
            put_i64(out, a.campaign_id);
            put_str(out, &a.ad);
            put_str(out, &a.placement);
            put_str(out, &a.link);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn opt(&mut self) -> Option<Option<i64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.i64()?)),
            _ => None,
        }
    }
}

fn decode(r: &mut Reader<'_>) -> Option<Event> {
    let site_id = r.i64()?;
    let ts_ms = r.i64()?;
    let visitor_id = r.i64()?;
    let session_id = r.i64()?;
    let mut s = || r.string();
    let (name, host, path, query, title) = (s()?, s()?, s()?, s()?, s()?);
    let (referrer, referrer_host, source, medium) = (s()?, s()?, s()?, s()?);
    let utm = Utm {
        source: s()?,
        medium: s()?,
        campaign: s()?,
        term: s()?,
        content: s()?,
    };
    let (click_id, browser, browser_version, os, os_version) = (s()?, s()?, s()?, s()?, s()?);
    let (currency, order_id, props) = (s()?, s()?, s()?);
    let (country, region, city, as_org) = (s()?, s()?, s()?, s()?);
    let device = Device::parse(&s()?);
    let bot = s()?;
    let bot = if bot.is_empty() {
        None
    } else {
        Some(BotReason::parse(&bot)?)
    };
    let value_minor = r.opt()?;
    let scroll_pct = r.opt()?;
    let engaged_ms = r.opt()?;
    let screen_width = r.opt()?;
    let asn = r.u32()?;
    let ip = match r.u8()? {
        0 => None,
        1 => Some(r.string()?),
        _ => return None,
    };
    let email = match r.u8()? {
        0 => None,
        1 => Some(EmailFields {
            campaign_id: r.i64()?,
            recipient: r.string()?,
            link: r.string()?,
            verdict: Verdict::parse(&r.string()?)?,
            reason: crate::store::sqlite::intern_reason(&r.string()?),
            client: crate::store::sqlite::intern_client(&r.string()?),
        }),
        _ => return None,
    };
    let ad = match r.u8()? {
        0 => None,
        1 => Some(AdFields {
            campaign_id: r.i64()?,
            ad: r.string()?,
            placement: r.string()?,
            link: r.string()?,
        }),
        _ => return None,
    };
    Some(Event {
        site_id,
        ts_ms,
        name: name.into(),
        visitor_id,
        session_id,
        host: host.into(),
        path,
        query,
        title,
        referrer,
        referrer_host: referrer_host.into(),
        source: source.into(),
        medium: medium.into(),
        utm,
        click_id,
        browser: browser.into(),
        browser_version: browser_version.into(),
        os: os.into(),
        os_version: os_version.into(),
        device,
        bot,
        value_minor,
        currency: currency.into(),
        order_id,
        props: props.into(),
        ip,
        email,
        scroll_pct,
        engaged_ms,
        screen_width,
        ad,
        country: country.into(),
        region: region.into(),
        city: city.into(),
        asn,
        as_org,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Event {
        Event {
            site_id: 3,
            ts_ms: 1_700_000_000_123,
            name: "signup".into(),
            visitor_id: -77,
            session_id: 9,
            host: "shop.example".into(),
            path: "/p/é".into(),
            query: "a=1".into(),
            title: "Title \"quoted\" <b>".into(),
            referrer: "https://news.example/x".into(),
            referrer_host: "news.example".into(),
            source: "News".into(),
            medium: "referral".into(),
            utm: Utm {
                source: "s".into(),
                medium: "m".into(),
                campaign: "c".into(),
                term: "t".into(),
                content: "x".into(),
            },
            click_id: "ptc_1".into(),
            browser: "Chrome".into(),
            browser_version: "124".into(),
            os: "Windows".into(),
            os_version: "10".into(),
            device: Device::Mobile,
            bot: Some(BotReason::Crawler),
            value_minor: Some(1999),
            currency: "EUR".into(),
            order_id: "o-1".into(),
            props: r#"{"plan":"pro"}"#.into(),
            ip: Some("203.0.113.0".into()),
            email: Some(EmailFields {
                campaign_id: 4,
                recipient: "r-1".into(),
                link: "https://x.example/".into(),
                verdict: Verdict::Scanner,
                reason: crate::model::EMAIL_REASONS[1].0,
                client: "Gmail",
            }),
            scroll_pct: Some(80),
            engaged_ms: Some(12_000),
            screen_width: Some(390),
            ad: Some(AdFields {
                campaign_id: 5,
                ad: "a".into(),
                placement: "p".into(),
                link: "https://l.example/".into(),
            }),
            country: "DE".into(),
            region: "DE-BY".into(),
            city: "München".into(),
            asn: 3320,
            as_org: "Telekom".into(),
        }
    }

    #[test]
    fn an_event_reads_back_equal_with_every_field_set_or_empty() {
        for e in [full(), Event::default()] {
            let mut b = Vec::new();
            encode(&e, &mut b);
            let mut r = Reader(&b);
            assert_eq!(decode(&mut r).as_ref(), Some(&e));
            assert!(r.0.is_empty(), "nothing left over");
            // Cut anywhere, it does not decode (and does not panic).
            for cut in 0..b.len() {
                assert!(decode(&mut Reader(&b[..cut])).is_none());
            }
        }
    }

    #[test]
    fn records_read_back_up_to_a_torn_or_damaged_one_and_committed_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, left) = HitLog::open(dir.path(), 0, false).unwrap();
        assert!(left.records.is_empty());
        let a = log.append(&[full()]).unwrap();
        let b = log.append(&[Event::default(), full()]).unwrap();
        assert_eq!((a, b), (1, 2));
        assert!(log.holds_uncommitted(1));
        drop(log);

        // Reopened: both records, numbered on from the last.
        let (mut log, left) = HitLog::open(dir.path(), 0, false).unwrap();
        assert_eq!(left.records.len(), 2);
        assert_eq!(left.records[1], (2, vec![Event::default(), full()]));
        assert_eq!(log.append(&[full()]).unwrap(), 3);
        // A store that committed up to 2 is handed record 3 only.
        let (_, left) = HitLog::open(dir.path(), 2, false).unwrap();
        assert_eq!(left.records.iter().map(|r| r.0).collect::<Vec<_>>(), [3]);

        // A record cut short ends its file (its hits were never answered), and so does
        // a damaged one; record 3 is in a file of its own (the second opening's).
        assert_eq!(left.files.len(), 2);
        let path = &left.files[0];
        let len = std::fs::metadata(path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len - 3).unwrap();
        let (_, left) = HitLog::open(dir.path(), 0, false).unwrap();
        assert_eq!(left.records.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 3]);
        let mut bytes = std::fs::read(path).unwrap();
        bytes[HEADER + 10] ^= 0xff; // inside record 1's payload
        std::fs::write(path, &bytes).unwrap();
        let (_, left) = HitLog::open(dir.path(), 0, false).unwrap();
        assert_eq!(left.records.iter().map(|r| r.0).collect::<Vec<_>>(), [3]);

        // Files go once all their records are committed.
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = HitLog::open(dir.path(), 10, false).unwrap();
        assert_eq!(log.append(&[full()]).unwrap(), 11);
        log.release(10);
        assert_eq!(
            log_files(dir.path()).unwrap().len(),
            1,
            "11 is not committed"
        );
        log.release(11);
        assert!(log_files(dir.path()).unwrap().is_empty());
        assert!(!log.holds_uncommitted(11));
        assert_eq!(log.append(&[full()]).unwrap(), 12, "a new file");
        assert_eq!(log_files(dir.path()).unwrap().len(), 1);
    }
}
