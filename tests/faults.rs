//! Faults the server must survive without losing or corrupting what it acknowledged:
//! a full disk (a small tmpfs this suite mounts, so it needs root). `#[ignore]`d in
//! plain `cargo test`; `.ci/run` runs it as root with `--ignored`, and it fails, never
//! skips, when it cannot mount.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{metric, wait_until, Server, CHROME};

/// A tmpfs of `mb` MiB mounted on `dir` for the guard's lifetime.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Tmpfs {
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(
            st.success(),
            "mounting a tmpfs needs root (.ci/run runs as root)"
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A 24 MiB tmpfs mounted on `dir` (for [`fill`]), holding a data directory with one
/// site: the data directory and the site's key.
fn small_disk(dir: &Path) -> (Tmpfs, std::path::PathBuf, String) {
    let fs = Tmpfs::mount(dir, 24);
    let data = dir.join("d");
    std::fs::create_dir(&data).unwrap();
    let key = common::add_site(&data, "example.com");
    (fs, data, key)
}

/// The server's settings on a small disk: hits from many addresses, a short busy timeout.
const SMALL_DISK_ENV: [(&str, &str); 2] = [
    ("PIXELTRACK_TRUSTED_PROXIES", "127.0.0.1/32"),
    ("PIXELTRACK_INGEST__BUSY_TIMEOUT_MS", "500"),
];

/// Fills the file system holding `path` until a write fails; returns the filler.
fn fill(path: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let filler = path.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0xA5u8; 64 << 10];
    while f.write_all(&block).is_ok() && f.sync_all().is_ok() {}
    filler
}

/// The disk fills under load: hits keep being answered (with a reason while nothing
/// can be written), `/readyz` says not ready, nothing acknowledged is lost; space
/// comes back and writes resume without a restart; the store is intact.
#[test]
#[ignore]
fn a_full_disk_loses_nothing_acknowledged_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_fs, data, key) = small_disk(dir.path());
    let server = Server::start(&data, &SMALL_DISK_ENV);
    let mut n = 0u32;
    let mut hit = || {
        n += 1;
        let r = server.get(
            &format!(
                "/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2Fp{}&t=Page%20{n}",
                n % 50
            ),
            &[
                ("User-Agent", CHROME),
                (
                    "X-Forwarded-For",
                    &format!("198.51.{}.{}", n / 250 % 250, n % 250 + 1),
                ),
            ],
        );
        assert_eq!(r.status, 200, "always answered");
        assert_eq!(r.body, pixeltrack::collect::image::GIF);
        r.header("x-pixel-reason").map(str::to_owned)
    };
    let mut acked = 0u64;
    for _ in 0..200 {
        acked += u64::from(hit().is_none());
    }
    assert_eq!(acked, 200);
    let filler = fill(dir.path());
    // Until the space left in pages SQLite already has runs out, some may still store.
    let refused = wait_until(
        "writes refused on the full disk",
        Duration::from_secs(60),
        || match hit() {
            None => {
                acked += 1;
                None
            }
            Some(reason) => Some(reason),
        },
    );
    assert!(
        ["store_error", "timeout"].contains(&refused.as_str()),
        "refused with a reason: {refused}"
    );
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 503, "not ready while writes fail");
    for _ in 0..50 {
        if hit().is_none() {
            acked += 1;
        }
    }
    std::fs::remove_file(&filler).unwrap();
    wait_until("writes resume", Duration::from_secs(30), || match hit() {
        None => {
            acked += 1;
            Some(())
        }
        Some(_) => None,
    });
    for _ in 0..100 {
        acked += u64::from(hit().is_none());
    }
    assert_eq!(
        server.get("/readyz", &[]).status,
        200,
        "ready again, no restart"
    );
    let m = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    assert!(
        metric(
            &m,
            "pixeltrack_events_dropped_total{reason=\"store_error\"}"
        ) + metric(&m, "pixeltrack_events_dropped_total{reason=\"timeout\"}")
            >= 1.0
    );
    let (status, log) = server.terminate_keeping_log();
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Intact, and exactly what was acknowledged.
    let store = pixeltrack::store::SqliteStore::open(&data).unwrap();
    store.check_integrity().expect("the store is intact");
    let stored: u64 =
        serde_json::from_str::<serde_json::Value>(&common::cli(&data, &["site", "list", "--json"]))
            .unwrap()[0]["events"]
            .as_u64()
            .unwrap();
    assert_eq!(stored, acked, "every acknowledged hit stored, nothing else");
}

/// kill -9 under load while another process holds the database's write lock: after
/// the restart every acknowledged hit is stored exactly once, and no hit answered
/// `timeout` ever is. Without the hit log the writer is stuck behind the lock, so hits
/// that come meanwhile are answered `timeout`.
#[test]
#[ignore]
fn kill_9_under_load_with_a_held_lock_loses_nothing_acknowledged() {
    kill_9_under_load_with_a_held_lock(false, false);
}

/// The same with the hit log (the default): hits that come while the lock is held are
/// answered from the log, none times out, and the kill leaves them in the log only (the
/// indexer is stuck behind the lock): the restart stores each of them exactly once. The
/// load counts as light here, so a batch that finds nothing else in flight waits for
/// its commit: the writer must not hold the hits behind it up when that commit stalls.
#[test]
#[ignore]
fn kill_9_under_load_with_a_held_lock_stores_what_the_log_answered() {
    kill_9_under_load_with_a_held_lock(true, true);
}

/// The same, restarted with the hit log turned off (`ingest.log_hold_ms = 0`): the
/// setting stops new appends only, and the start still stores what the log answered.
#[test]
#[ignore]
fn a_start_with_the_hit_log_off_stores_what_it_answered_before_a_kill_9() {
    kill_9_under_load_with_a_held_lock(true, false);
}

/// `log`: the killed server's hit log is on; `log_again`: the restarted one's.
fn kill_9_under_load_with_a_held_lock(log: bool, log_again: bool) {
    let (_dir, data, key) = common::site_dir("example.com");
    let env = [
        ("PIXELTRACK_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("PIXELTRACK_INGEST__COMMIT_TIMEOUT_MS", "300"),
        (
            "PIXELTRACK_INGEST__LOG_HOLD_MS",
            if log { "50" } else { "0" },
        ),
        // Light however fast the clients go: batches with nothing else in flight wait
        // for their commit (on a slow machine they did; on a fast one never).
        ("PIXELTRACK_INGEST__LIGHT_LOAD_PER_SECOND", "100000000"),
    ];
    let mut server = Server::start(&data, &env);
    let addr = server.addr;
    let answers: Answers = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(addr, &key, &answers, &stop);
    std::thread::sleep(Duration::from_millis(700));
    // Another process takes the write lock; the kill comes while it holds it.
    let locker = rusqlite::Connection::open(data.join("pixeltrack.db")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The writer is now stuck in a batch (whose hits wait for its outcome); hits sent
    // now queue behind it and must be answered `timeout` within the 300 ms.
    std::thread::sleep(Duration::from_millis(200));
    let late: Vec<_> = (0..4)
        .map(|n| {
            let (answers, key) = (answers.clone(), key.clone());
            std::thread::spawn(move || {
                let id = format!("late-{n}");
                let target = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F&p.n={id}");
                if let Ok(r) = common::http(addr, "GET", &target, &[("User-Agent", CHROME)]) {
                    let reason = r.header("x-pixel-reason").map(str::to_owned);
                    answers.lock().unwrap().insert(id, reason);
                }
            })
        })
        .collect();
    for t in late {
        t.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    locker.execute_batch("COMMIT").unwrap();
    let stored_before: i64 = locker
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    let stored_before = stored_before as usize;
    drop(locker);
    let mut env = env;
    env[2].1 = if log_again { "50" } else { "0" };
    let again = Server::start(&data, &env);
    assert!(again.terminate().success());
    let stored = stored_ids(&data);
    let answers = answers.lock().unwrap();
    let acked: Vec<&String> = answers
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(k, _)| k)
        .collect();
    let timed_out: Vec<&String> = answers
        .iter()
        .filter(|(_, r)| r.as_deref() == Some("timeout"))
        .map(|(k, _)| k)
        .collect();
    assert!(acked.len() > 100, "load before the lock: {}", acked.len());
    // The lock is held for less than the busy timeout: hits wait for it, none fails.
    let failed: Vec<&String> = answers
        .iter()
        .filter(|(_, r)| r.as_deref() == Some("store_error"))
        .map(|(k, _)| k)
        .collect();
    assert!(
        failed.is_empty(),
        "answered store_error under a short lock: {failed:?}"
    );
    if log {
        assert!(timed_out.is_empty(), "answered timeout: {timed_out:?}");
        let late_acked = acked.iter().filter(|id| id.starts_with("late-")).count();
        assert_eq!(late_acked, 4, "hits during the lock answered from the log");
        assert!(
            stored_before < acked.len(),
            "the kill left answered hits in the log only ({stored_before} stored of {})",
            acked.len()
        );
    } else {
        assert!(
            !timed_out.is_empty(),
            "the lock outlived the commit timeout"
        );
    }
    for id in &acked {
        assert_eq!(stored.get(*id), Some(&1), "acknowledged {id}");
    }
    for id in &timed_out {
        assert_eq!(stored.get(*id), None, "answered timeout, yet stored: {id}");
    }
}

/// Each hit's id (its `n` prop) and its answer: `None` acknowledged, else the reason.
type Answers = Arc<Mutex<HashMap<String, Option<String>>>>;

/// Eight clients sending hits one after another, each with its own id, until `stop`:
/// concurrent load, so the writer answers from the hit log. Answers go to `answers`.
fn load(
    addr: std::net::SocketAddr,
    key: &str,
    answers: &Answers,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..8)
        .map(|c| {
            let (answers, stop, key) = (answers.clone(), stop.clone(), key.to_owned());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = format!("c{c}-{i}");
                    let target = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F&p.n={id}");
                    let ip = format!("198.51.{c}.{}", i % 200 + 1);
                    let Ok(r) = common::http(
                        addr,
                        "GET",
                        &target,
                        &[("User-Agent", CHROME), ("X-Forwarded-For", &ip)],
                    ) else {
                        continue; // killed mid-request: no answer, no promise
                    };
                    if r.status == 200 {
                        let reason = r.header("x-pixel-reason").map(str::to_owned);
                        answers.lock().unwrap().insert(id, reason);
                    }
                }
            })
        })
        .collect()
}

/// How many events each hit id has in the store.
fn stored_ids(data: &Path) -> HashMap<String, usize> {
    let mut stored: HashMap<String, usize> = HashMap::new();
    for e in common::export(data, "example.com") {
        let props: serde_json::Value = match &e["props"] {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        };
        if let Some(n) = props["n"].as_str() {
            *stored.entry(n.to_owned()).or_default() += 1;
        }
    }
    stored
}

/// The disk fills under concurrent load, with the hit log on (the default): appends to
/// the log and commits both fail. Hits keep being answered; when space comes back the
/// server stores, without a restart, every hit it acknowledged exactly once (those the
/// log answered and whose commit failed are read back from it) and none it refused.
#[test]
#[ignore]
fn a_full_disk_under_concurrent_load_stores_each_acknowledged_hit_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_fs, data, key) = small_disk(dir.path());
    let server = Server::start(&data, &SMALL_DISK_ENV);
    let answers: Answers = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(server.addr, &key, &answers, &stop);
    std::thread::sleep(Duration::from_millis(700));
    let before = answers.lock().unwrap().len();
    let filler = fill(dir.path());
    wait_until(
        "hits refused on the full disk",
        Duration::from_secs(60),
        || {
            answers
                .lock()
                .unwrap()
                .values()
                .any(Option::is_some)
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.get("/readyz", &[]).status,
        503,
        "not ready while writes fail"
    );
    std::fs::remove_file(&filler).unwrap();
    let refused = answers.lock().unwrap().len();
    wait_until("writes resume", Duration::from_secs(30), || {
        (server.get("/readyz", &[]).status == 200).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let m = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    let (status, log) = server.terminate_keeping_log();
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let store = pixeltrack::store::SqliteStore::open(&data).unwrap();
    store.check_integrity().expect("the store is intact");
    let stored = stored_ids(&data);
    let answers = answers.lock().unwrap();
    let acked: Vec<&String> = answers
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(k, _)| k)
        .collect();
    let reasons: Vec<(&String, &str)> = answers
        .iter()
        .filter_map(|(k, r)| r.as_deref().map(|r| (k, r)))
        .collect();
    assert!(before > 100, "load before the disk filled: {before}");
    assert!(
        answers.len() > refused,
        "hits answered after the space came back"
    );
    assert!(!reasons.is_empty());
    for (id, reason) in &reasons {
        assert!(
            ["store_error", "timeout"].contains(reason),
            "{id}: {reason}"
        );
        assert_eq!(stored.get(*id), None, "answered {reason}, yet stored: {id}");
    }
    for id in &acked {
        assert_eq!(stored.get(*id), Some(&1), "acknowledged {id}");
    }
    assert_eq!(
        stored.values().sum::<usize>(),
        acked.len(),
        "nothing stored that was not acknowledged"
    );
    assert!(
        metric(
            &m,
            "pixeltrack_events_dropped_total{reason=\"store_error\"}"
        ) + metric(&m, "pixeltrack_events_dropped_total{reason=\"timeout\"}")
            >= 1.0
    );
}
