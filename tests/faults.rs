//! Faults the server must survive without losing or corrupting what it acknowledged:
//! a full disk (a small tmpfs this suite mounts, so it needs root). `#[ignore]`d in
//! plain `cargo test`; `.ci/run` runs it as root with `--ignored`, and it fails, never
//! skips, when it cannot mount.

mod common;

use std::path::Path;
use std::process::Command;
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
    let _fs = Tmpfs::mount(dir.path(), 24);
    let data = dir.path().join("d");
    std::fs::create_dir(&data).unwrap();
    let key = common::add_site(&data, "example.com");
    let server = Server::start(
        &data,
        &[
            ("PIXELTRACK_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("PIXELTRACK_INGEST__BUSY_TIMEOUT_MS", "500"),
        ],
    );
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
