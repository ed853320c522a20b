//! End-to-end tests of the real binary: a child process on an ephemeral port with a
//! fresh data dir, spoken to over real sockets, killed and restarted for real.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{add_site, cli, contains, export, files, http, metric, wait_until, Server, CHROME};

fn data_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    (dir, data)
}

#[test]
fn readme_tutorial_site_pixel_report() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    // The CLI adds the site while the server runs; the server picks it up.
    let key = add_site(&data, "example.com");
    let url = format!("/p.gif?s={key}&u=https://example.com/pricing?utm_source=news");
    let res = server.get(&url, &[("User-Agent", CHROME)]);
    assert_eq!(res.status, 200);
    assert_eq!(res.body, pixeltrack::collect::image::GIF);
    // Plain curl: stored too, but as machine traffic.
    assert_eq!(
        server.get(&url, &[("User-Agent", "curl/8.5.0")]).status,
        200
    );

    let report: serde_json::Value =
        serde_json::from_str(&cli(&data, &["report", "--json"])).unwrap();
    assert_eq!(report["overview"]["visitors"], 1);
    assert_eq!(report["overview"]["pageviews"], 1);
    assert_eq!(report["overview"]["bot_events"], 1);
    let sources = report["breakdowns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["dimension"] == "source")
        .unwrap();
    assert_eq!(sources["rows"][0]["value"], "news");
    let text = cli(&data, &["report"]);
    assert!(text.contains("news") && text.contains("/pricing"), "{text}");
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn client_ip_never_reaches_the_disk_or_the_log() {
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[("PIXELTRACK_TRUSTED_PROXIES", "127.0.0.1/32")]);
    for i in 0..20 {
        let url = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2Fp{i}");
        let res = server.get(
            &url,
            &[("User-Agent", CHROME), ("X-Forwarded-For", "203.0.113.77")],
        );
        assert_eq!(res.status, 200);
        assert!(res.header("x-pixel-reason").is_none());
    }
    let check = |when: &str| {
        for (path, bytes) in files(&data) {
            assert!(
                !contains(&bytes, b"203.0.113.77"),
                "{when}: IP text in {}",
                path.display()
            );
            assert!(
                !contains(&bytes, &[203, 0, 113, 77]),
                "{when}: IP bytes in {}",
                path.display()
            );
        }
    };
    check("while running (WAL included)");
    let events = export(&data, &key);
    assert_eq!(events.len(), 20);
    // All 20 hits came from one forwarded IP: one visitor, so the header was used.
    let visitors: std::collections::HashSet<_> =
        events.iter().map(|e| e["visitor_id"].clone()).collect();
    assert_eq!(visitors.len(), 1);
    assert!(events.iter().all(|e| e["ip"].is_null()));
    let log = server.log_text();
    assert_eq!(server.terminate().code(), Some(0));
    check("after shutdown");
    assert!(!log.contains("203.0.113.77"));
}

#[test]
fn hostile_requests_over_the_socket_never_break_the_server() {
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[]);
    let addr = server.addr;
    let ok_image = |res: common::Response, reason: &str| {
        assert_eq!(res.status, 200);
        assert_eq!(res.header("x-pixel-reason"), Some(reason));
        assert_eq!(res.body, pixeltrack::collect::image::GIF);
    };
    // A 32 KiB user agent: read (under limits.max_header_bytes), refused as oversized.
    let long_ua = "A".repeat(32 << 10);
    ok_image(
        server.get(&format!("/p.gif?s={key}"), &[("User-Agent", &long_ua)]),
        "oversized",
    );
    // A 1 MiB user agent: past the 64 KiB head every connection may buffer, so the
    // HTTP layer answers 431 without buffering it (counted as oversized too). With the
    // earlier 2 MiB head limit this got the image, and 300 half-sent 1.9 MB heads held
    // 680 MB: the limit is what a connection may cost.
    let huge_ua = "A".repeat(1 << 20);
    let res = http(
        addr,
        "GET",
        &format!("/p.gif?s={key}"),
        &[("User-Agent", &huge_ua)],
    );
    assert!(
        res.as_ref().map_or(true, |r| r.status == 431),
        "a 1 MiB head is refused: {:?}",
        res.map(|r| r.status)
    );
    // Invalid UTF-8 and NUL, percent-encoded.
    ok_image(
        server.get(&format!("/p.gif?s={key}&t=%C3%28"), &[]),
        "invalid_input",
    );
    ok_image(
        server.get(&format!("/p.gif?s={key}&p.x=%00"), &[]),
        "invalid_input",
    );
    ok_image(server.get("/p.gif?s=does-not-exist", &[]), "unknown_site");
    // Raw non-UTF-8 bytes in a header value.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut req =
            format!("GET /p.gif?s={key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: ")
                .into_bytes();
        req.extend_from_slice(&[0xff, 0xfe, b'x']);
        req.extend_from_slice(b"\r\n\r\n");
        s.write_all(&req).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("x-pixel-reason: invalid_input"),
            "{text}"
        );
    }
    // A 100 KB query: more than an HTTP URI can hold (64 KiB), so the HTTP layer
    // answers 414 by itself; it is still counted.
    let long = format!("/p.gif?s={key}&t={}", "x".repeat(100 * 1024));
    let res = http(addr, "GET", &long, &[]).unwrap();
    assert_eq!(res.status, 414);
    // Still alive and counting.
    assert_eq!(server.get("/healthz", &[]).status, 200);
    // The 414 is counted by the connection task once it has answered.
    let m = wait_until(
        "the 431 and the 414 counted",
        Duration::from_secs(10),
        || {
            let m = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
            (metric(&m, "pixeltrack_events_dropped_total{reason=\"oversized\"}") >= 3.0)
                .then_some(m)
        },
    );
    assert_eq!(
        metric(&m, "pixeltrack_events_dropped_total{reason=\"oversized\"}"),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "pixeltrack_events_dropped_total{reason=\"invalid_input\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "pixeltrack_events_dropped_total{reason=\"unknown_site\"}"
        ),
        1.0
    );
    assert_eq!(metric(&m, "pixeltrack_events_stored_total"), 0.0);
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(server.terminate().code(), Some(0));
}

/// Referrer spam is answered with the image and a reason, never stored: from the
/// shipped list at once, and from the operator's `DATA/referrer-spam.txt` within
/// seconds of writing it, without a restart; a pixel on another site's page is refused.
#[test]
fn referrer_spam_and_foreign_pages_are_kept_out() {
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[]);
    let hit = |referrer: &str, page: &str| {
        server
            .get(
                &format!("/p.gif?s={key}&u={page}&r={referrer}"),
                &[("User-Agent", common::CHROME)],
            )
            .header("x-pixel-reason")
            .map(str::to_owned)
    };
    let home = "https%3A%2F%2Fexample.com%2F";
    assert_eq!(hit("https%3A%2F%2Fnews.example%2F", home), None);
    assert_eq!(
        hit("https%3A%2F%2Fwww.0-0.fr%2F", home).as_deref(),
        Some("referrer_spam"),
        "on the shipped list"
    );
    assert_eq!(hit("https%3A%2F%2Fmy-spam.example%2F", home), None);
    std::fs::write(data.join("referrer-spam.txt"), "# ours\nmy-spam.example\n").unwrap();
    // Until the list applies these are stored: count them.
    let mut stored_before = 1;
    wait_until(
        "the operator's list applied",
        Duration::from_secs(15),
        || {
            std::thread::sleep(Duration::from_millis(200));
            match hit("https%3A%2F%2Fmy-spam.example%2F", home).as_deref() {
                Some("referrer_spam") => Some(()),
                _ => {
                    stored_before += 1;
                    None
                }
            }
        },
    );
    assert_eq!(
        hit("", "https%3A%2F%2Fcopycat.example%2F").as_deref(),
        Some("host_not_allowed")
    );
    let (status, _) = server.terminate_keeping_log();
    assert!(status.success());
    let sources: Vec<String> = common::export(&data, "example.com")
        .iter()
        .map(|e| e["referrer_host"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(sources.iter().filter(|s| *s == "news.example").count(), 1);
    assert_eq!(
        sources.iter().filter(|s| *s == "my-spam.example").count(),
        stored_before,
        "only the hits before the list applied"
    );
    assert_eq!(sources.len(), 1 + stored_before, "{sources:?}");
}

/// Connections past `limits.max_connections_per_ip` from one address are closed on
/// arrival while the ones admitted keep working; the open-files soft limit is raised
/// at start; a client stuck half-way through its request head does not hold SIGTERM.
#[test]
fn connection_limits_hold_and_a_stuck_client_does_not_hold_the_stop() {
    use std::io::{Read, Write};
    let (_d, data, key) = common::site_dir("example.com");
    // Started with a low soft limit on open files, which the server raises.
    let server = {
        let log = data.with_extension("conn-log");
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -S -n 512 && exec '{}' --data '{}' serve --listen 127.0.0.1:0 --log-format json",
                common::bin(),
                data.display()
            ))
            .env("PIXELTRACK_LIMITS__MAX_CONNECTIONS_PER_IP", "4")
            .env_remove("PIXELTRACK_CONFIG")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        common::Server::adopt(child, &data, log)
    };
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(soft > 512, "the soft limit was raised: {soft}");
    let open = |n| -> Vec<std::net::TcpStream> {
        (0..n)
            .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
            .collect()
    };
    let mut held = open(4);
    let mut fifth = open(1).pop().unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = fifth.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n, 0,
        "the fifth connection from one address is closed unanswered"
    );
    // An admitted connection still works.
    let c = &mut held[0];
    c.write_all(
        format!("GET /p.gif?s={key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    drop(held);
    // Until the server has seen the held connections close, a poll from the same
    // address may itself be refused (and counted): those are counted here too.
    let mut refused_polls = 0.0;
    let m = wait_until(
        "places freed",
        Duration::from_secs(10),
        || match common::http(server.addr, "GET", "/metrics", &[]) {
            Ok(r) => {
                let m = String::from_utf8(r.body).unwrap();
                (metric(&m, "pixeltrack_connections_open") <= 1.0).then_some(m)
            }
            Err(_) => {
                refused_polls += 1.0;
                None
            }
        },
    );
    assert_eq!(
        metric(&m, "pixeltrack_connections_refused_total{limit=\"per_ip\"}"),
        1.0 + refused_polls
    );
    // A client stuck in the middle of its request head, then SIGTERM.
    let mut stuck = std::net::TcpStream::connect(server.addr).unwrap();
    stuck
        .write_all(b"GET /p.gif?s=x HTTP/1.1\r\nHost: x\r\nUser-Agent: sl")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stop waited {:?} for a stuck client (the drain timeout is 10 s)",
        started.elapsed()
    );
}

/// `limits.header_timeout_secs`: a connection whose head never completes and one left
/// idle after its answer are closed about that long after their last request; one that
/// keeps sending requests stays open well past it.
#[test]
fn slow_heads_and_idle_connections_are_closed_busy_ones_are_not() {
    use std::io::{Read, Write};
    use std::time::Instant;
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[("PIXELTRACK_LIMITS__HEADER_TIMEOUT_SECS", "1")]);
    // One answer on a keep-alive connection: its head, then as many body bytes as it says.
    fn answer(c: &mut std::net::TcpStream) -> String {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            assert_eq!(c.read(&mut byte).unwrap(), 1, "closed mid-answer");
            got.push(byte[0]);
        }
        let head = String::from_utf8(got).unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        c.read_exact(&mut body).unwrap();
        head
    }
    // Seconds until the server closes `c` (reads EOF), from `since`.
    fn closed_after(c: &mut std::net::TcpStream, since: Instant) -> f64 {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "nothing but the close");
        since.elapsed().as_secs_f64()
    }
    let addr = server.addr;
    let stuck = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let since = Instant::now();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: sl")
            .unwrap();
        closed_after(&mut c, since)
    });
    let idle = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(answer(&mut c).starts_with("HTTP/1.1 200"));
        closed_after(&mut c, Instant::now())
    });
    let busy = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let since = Instant::now();
        let mut answered = 0;
        while since.elapsed() < Duration::from_millis(2_600) {
            let req = format!(
                "GET /p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F HTTP/1.1\r\nHost: x\r\n\r\n"
            );
            c.write_all(req.as_bytes()).unwrap();
            assert!(
                answer(&mut c).starts_with("HTTP/1.1 200"),
                "answered on the same connection"
            );
            answered += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        answered
    });
    let stuck = stuck.join().unwrap();
    let idle = idle.join().unwrap();
    assert!(
        (0.9..4.0).contains(&stuck),
        "a head never finished is closed after about a second: {stuck:.2} s"
    );
    assert!(
        (0.7..4.0).contains(&idle),
        "an idle connection is closed after about a second: {idle:.2} s"
    );
    assert!(
        busy.join().unwrap() >= 7,
        "a connection sending a request every 0.3 s stays open for 2.6 s"
    );
}

/// Clients hammer the server; returns the ids that got a complete 200.
fn load(
    server_addr: std::net::SocketAddr,
    key: &str,
    stop: Arc<AtomicBool>,
    clients: usize,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    load_with(server_addr, key, stop, clients, |_, _, key, id| {
        (
            format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F&p.n={id}"),
            None,
        )
    })
}

/// Makes hit `i` of client `c` for site `key` carrying `p.n=<id>`: its path and query,
/// and the client IP to send as `X-Forwarded-For`, if any.
type Hit = fn(c: usize, i: u32, key: &str, id: &str) -> (String, Option<String>);

/// Like [`load`], with each hit made by `hit`.
fn load_with(
    server_addr: std::net::SocketAddr,
    key: &str,
    stop: Arc<AtomicBool>,
    clients: usize,
    hit: Hit,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..clients)
        .map(|c| {
            let (stop, key) = (stop.clone(), key.to_owned());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 5_000 {
                    let id = format!("c{c}-{i}");
                    let (url, ip) = hit(c, i, &key, &id);
                    let mut headers = vec![("User-Agent", CHROME)];
                    if let Some(ip) = &ip {
                        headers.push(("X-Forwarded-For", ip));
                    }
                    match http(server_addr, "GET", &url, &headers) {
                        Ok(r) if r.status == 200 && r.header("x-pixel-reason").is_none() => {
                            acked.push(id)
                        }
                        Ok(_) => {}
                        Err(_) => {
                            // Server gone (killed) or refusing: stop this client.
                            break;
                        }
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

/// Kills the server with SIGKILL, stops the clients and returns every acknowledged id.
fn kill_mid_load(
    server: &mut Server,
    stop: &AtomicBool,
    clients: Vec<std::thread::JoinHandle<Vec<String>>>,
) -> Vec<String> {
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect()
}

fn stored_ids(data: &std::path::Path, key: &str) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for e in export(data, key) {
        if let Some(n) = e["props"]["n"].as_str() {
            *count.entry(n.to_owned()).or_insert(0) += 1;
        }
    }
    count
}

#[test]
fn sigkill_mid_load_loses_no_acknowledged_event() {
    let (_d, data, key) = common::site_dir("example.com");
    let mut server = Server::start(&data, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(server.addr, &key, stop.clone(), 8);
    std::thread::sleep(Duration::from_millis(1500));
    let acked = kill_mid_load(&mut server, &stop, clients);
    assert!(
        acked.len() > 100,
        "too little load to prove anything: {}",
        acked.len()
    );

    // Restart on the same data: it must come up and serve.
    let again = Server::start(&data, &[]);
    assert_eq!(again.get("/readyz", &[]).status, 200);
    let stored = stored_ids(&data, &key);
    for id in &acked {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "acknowledged event {id} stored {:?} times",
            stored.get(id)
        );
    }
    assert!(
        stored.values().all(|n| *n == 1),
        "an event was stored twice"
    );
    assert_eq!(again.terminate().code(), Some(0));
}

#[test]
fn sigterm_drains_in_flight_hits_and_exits_zero() {
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[]);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(addr, &key, stop.clone(), 6);
    std::thread::sleep(Duration::from_millis(800));
    let status = server.terminate();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0");
    let acked: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(acked.len() > 50, "too little load: {}", acked.len());
    let stored = stored_ids(&data, &key);
    for id in &acked {
        assert_eq!(stored.get(id), Some(&1), "acknowledged {id}");
    }
    // After the drain nothing listens any more.
    assert!(http(addr, "GET", "/healthz", &[]).is_err());
}

/// A CLI command beside the server (another process opening and closing the database)
/// leaves the server's WAL alone, also after the checkpoint job has run: the server
/// keeps every lock SQLite holds for it. Closing *any* descriptor of the file drops all
/// of a process's POSIX locks on it: a checkpoint that synced the file through one it
/// opened and closed (tried 2026-12-05, see docs/benchmarks.md) let the next CLI
/// command, finding itself the only connection, checkpoint and delete the WAL and its
/// index under the server.
#[test]
fn a_cli_command_beside_the_server_leaves_its_wal_alone() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let key = add_site(&data, "example.com");
    let hit = |i: usize| {
        let url = format!("/p.gif?s={key}&u=https://example.com/{i}");
        assert_eq!(server.get(&url, &[("User-Agent", CHROME)]).status, 200);
    };
    (0..20).for_each(hit);
    // The checkpoint job runs every second: it has run twice by now.
    std::thread::sleep(Duration::from_millis(2_500));
    cli(&data, &["site", "list", "--json"]);
    for file in ["pixeltrack.db-wal", "pixeltrack.db-shm"] {
        assert!(
            data.join(file).exists(),
            "{file} was deleted under the server"
        );
    }
    (20..40).for_each(hit);
    assert_eq!(server.terminate().code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_str(&cli(&data, &["report", "--json"])).unwrap();
    assert_eq!(report["overview"]["pageviews"], 40);
}

/// The server answers `GET /p.gif` and `/p.png` itself, without its router: over the
/// socket they must do exactly what the routed handlers do — the image, the hit stored,
/// counted by route, limited by the client's own address — and `HEAD` records nothing.
#[test]
fn the_pixel_over_the_socket_is_recorded_counted_and_limited_by_client() {
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[("PIXELTRACK_LIMITS__PER_IP_PER_MINUTE", "6")]);
    let page = |p: &str| format!("s={key}&u=https%3A%2F%2Fexample.com%2F{p}");
    let gif = server.get(&format!("/p.gif?{}", page("a")), &[("User-Agent", CHROME)]);
    assert_eq!((gif.status, gif.header("x-pixel-reason")), (200, None));
    assert_eq!(gif.body, pixeltrack::collect::image::GIF);
    assert_eq!(gif.header("content-type"), Some("image/gif"));
    let png = server.get(&format!("/p.png?{}", page("b")), &[("User-Agent", CHROME)]);
    assert_eq!((png.status, png.header("x-pixel-reason")), (200, None));
    assert_eq!(png.header("content-type"), Some("image/png"));
    // HEAD answers like GET and records nothing (a link checker's request).
    let head = http(server.addr, "HEAD", &format!("/p.gif?{}", page("c")), &[]).unwrap();
    assert_eq!(
        (head.status, head.header("content-type")),
        (200, Some("image/gif"))
    );
    // A hit without a site: the image, the reason, nothing stored.
    let bad = server.get(
        "/p.gif?u=https%3A%2F%2Fexample.com%2F",
        &[("User-Agent", CHROME)],
    );
    assert_eq!(bad.status, 200);
    assert!(bad.header("x-pixel-reason").is_some(), "{:?}", bad.headers);
    // Six a minute from 127.0.0.1 (two taken above; a hit without a site is refused
    // before the limit): a forged X-Forwarded-For (no trusted proxy) does not move a
    // hit to another client's budget.
    let mut reasons = Vec::new();
    for i in 0..6 {
        let res = server.get(
            &format!("/p.gif?{}", page(&format!("d{i}"))),
            &[
                ("User-Agent", CHROME),
                ("X-Forwarded-For", &format!("203.0.113.{i}")),
            ],
        );
        assert_eq!(res.status, 200);
        reasons.push(res.header("x-pixel-reason").map(str::to_owned));
    }
    assert_eq!(
        reasons.iter().filter(|r| r.is_none()).count(),
        4,
        "{reasons:?}"
    );
    assert!(
        reasons[4..]
            .iter()
            .all(|r| r.as_deref() == Some("rate_limited")),
        "{reasons:?}"
    );
    let m = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    assert_eq!(
        metric(&m, "pixeltrack_http_requests_total{route=\"pixel_gif\"}"),
        8.0
    );
    assert_eq!(
        metric(&m, "pixeltrack_http_requests_total{route=\"pixel_png\"}"),
        1.0
    );
    assert_eq!(server.terminate().code(), Some(0));
    let paths: Vec<String> = export(&data, "example.com")
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["/a", "/b", "/d0", "/d1", "/d2", "/d3"]);
}

#[test]
fn health_ready_and_metrics_answer() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    assert_eq!(server.get("/readyz", &[]).status, 200);
    assert_eq!(server.get("/healthz", &[]).status, 200);
    let m = String::from_utf8(server.get("/metrics", &[]).body).unwrap();
    assert!(m.contains("# TYPE pixeltrack_commit_seconds histogram"));
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn bad_configuration_fails_at_start_with_the_key_named() {
    let (_d, data) = data_dir();
    let out = std::process::Command::new(common::bin())
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PIXELTRACK_INGEST__DURABILTY", "commit")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PIXELTRACK_INGEST__DURABILTY") && err.contains("ingest.durabilty"),
        "{err}"
    );

    let cfg = data.with_extension("toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\n[ingest]\ndurability = \"sometimes\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sometimes"), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (_d, data) = data_dir();
    let server = Server::start(&data, &[]);
    let log = server.log_text();
    assert_eq!(server.terminate().code(), Some(0));
    // The first-start admin password is not in the log at all (a shipped log must not
    // carry it; it is in an owner-only file): every line is a JSON object.
    assert!(!log.contains("created user 'admin' with password"), "{log}");
    for line in log.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string());
    }
}

/// Sends five async hits (answered `200`, no reason) while another connection holds the
/// store's write lock, stops the server with SIGTERM and releases the lock after it exited.
fn five_async_hits_then_stop_with_the_store_locked(
    server: Server,
    data: &std::path::Path,
    key: &str,
) -> (std::process::ExitStatus, String) {
    let locker = rusqlite::Connection::open(data.join("pixeltrack.db")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..5 {
        let res = server.get(
            &format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F{i}"),
            &[("User-Agent", CHROME)],
        );
        assert_eq!(res.status, 200);
        assert!(res.header("x-pixel-reason").is_none(), "async: told stored");
    }
    let stopped = server.terminate_keeping_log();
    locker.execute_batch("ROLLBACK").unwrap();
    stopped
}

/// SIGTERM with acknowledged events it cannot write (async durability with the hit log
/// off, the store locked by another process past the busy timeout): the exit is
/// non-zero and the log says how many were lost — never "stopped cleanly".
#[test]
fn sigterm_that_loses_acknowledged_events_exits_non_zero_and_says_so() {
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(
        &data,
        &[
            ("PIXELTRACK_INGEST__DURABILITY", "async"),
            ("PIXELTRACK_INGEST__BUSY_TIMEOUT_MS", "300"),
            // With the log on, async hits are in it: nothing is lost (the next test).
            ("PIXELTRACK_INGEST__LOG_HOLD_MS", "0"),
        ],
    );
    let (status, log) = five_async_hits_then_stop_with_the_store_locked(server, &data, &key);
    assert_ne!(status.code(), Some(0), "lost events must not exit 0: {log}");
    assert!(!log.contains("stopped cleanly"), "{log}");
    assert!(log.contains("events were lost"), "{log}");
}

/// The same stop with the hit log on (the default): async hits are logged once
/// answered, so the store's lock loses none of them — the stop says they wait in the
/// log, and the next start stores each once.
#[test]
fn async_hits_the_stop_cannot_commit_wait_in_the_log_for_the_next_start() {
    let (_d, data, key) = common::site_dir("example.com");
    let env = [
        ("PIXELTRACK_INGEST__DURABILITY", "async"),
        ("PIXELTRACK_INGEST__BUSY_TIMEOUT_MS", "300"),
    ];
    let server = Server::start(&data, &env);
    let (status, log) = five_async_hits_then_stop_with_the_store_locked(server, &data, &key);
    assert!(!log.contains("events were lost"), "{log}");
    assert!(log.contains("stored at the next start"), "{log}");
    assert_eq!(status.code(), Some(0), "{log}");
    let server = Server::start(&data, &env);
    assert_eq!(server.terminate().code(), Some(0));
    let conn = rusqlite::Connection::open(data.join("pixeltrack.db")).unwrap();
    let paths: Vec<String> = conn
        .prepare("SELECT path FROM events ORDER BY path")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(paths, ["/0", "/1", "/2", "/3", "/4"]);
}

/// kill -9 while sessions, rollups and unique keys of committed events are still
/// waiting to be written: after the restart every report number equals what the stored
/// events aggregate to, dimension by dimension, and every acknowledged hit is stored once.
#[test]
fn sigkill_with_unwritten_rollups_rebuilds_them_exactly() {
    let (_d, data, key) = common::site_dir("example.com");
    // Derived rows wait as long as possible: no bound is reached and no pause writes them.
    let env = [
        ("PIXELTRACK_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("PIXELTRACK_INGEST__INDEX_INTERVAL_MS", "600000"),
        ("PIXELTRACK_INGEST__LIGHT_LOAD_PER_SECOND", "0"),
    ];
    let mut server = Server::start(&data, &env);
    let stop = Arc::new(AtomicBool::new(false));
    // 24 clients, 41 visitors each, 13 pages with titles, referrers, UTM sources and a
    // custom event that sometimes starts a visit.
    let clients = load_with(server.addr, &key, stop.clone(), 24, |c, i, key, id| {
        let (event, referrer) = match i % 7 {
            0 => ("signup", "https%3A%2F%2Fwww.google.com%2F"),
            1 | 2 => ("pageview", "https%3A%2F%2Fnews.example%2Fa"),
            _ => ("pageview", ""),
        };
        let url = format!(
            "/p.gif?s={key}&e={event}&u=https%3A%2F%2Fexample.com%2Fp{}%3Futm_source%3Ds{}&r={referrer}&t=T{}&p.n={id}",
            i % 13,
            i % 3,
            i % 13
        );
        (url, Some(format!("198.51.{c}.{}", i % 41 + 1)))
    });
    std::thread::sleep(Duration::from_millis(2500));
    let acked = kill_mid_load(&mut server, &stop, clients);
    assert!(acked.len() > 200, "too little load: {}", acked.len());
    let db = rusqlite::Connection::open(data.join("pixeltrack.db")).unwrap();
    let unindexed: i64 = db
        .query_row("SELECT COUNT(*) FROM unindexed", [], |r| r.get(0))
        .unwrap();
    drop(db);
    assert!(
        unindexed > 0,
        "the kill came while derived rows were pending"
    );

    let again = Server::start(&data, &env);
    assert_eq!(again.terminate().code(), Some(0));
    let stored = stored_ids(&data, &key);
    for id in &acked {
        assert_eq!(stored.get(id), Some(&1), "acknowledged {id}");
    }
    let store = pixeltrack::store::SqliteStore::open(&data).unwrap();
    let today = pixeltrack::clock::day_of(chrono::Utc::now().timestamp_millis());
    let range = pixeltrack::report::DateRange {
        from_day: today - 1,
        to_day: today,
    };
    let dims = common::rollups_agree_with_raw_events(&store, 1, range);
    assert!(dims >= 8, "the load fills many dimensions ({dims})");
}

/// While every write fails (here: the database locked by another process past the
/// busy timeout), `/readyz` says not ready and the log carries one line, not one per
/// batch; once writes succeed again it is ready, without a restart.
#[test]
fn readyz_follows_the_store_and_failures_are_logged_once() {
    let (_d, data, key) = common::site_dir("example.com");
    let server = Server::start(&data, &[("PIXELTRACK_INGEST__BUSY_TIMEOUT_MS", "50")]);
    assert_eq!(server.get("/readyz", &[]).status, 200);
    let locker = rusqlite::Connection::open(data.join("pixeltrack.db")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..40 {
        let url = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2F{i}");
        let res = server.get(&url, &[("User-Agent", CHROME)]);
        assert_eq!(res.status, 200);
        assert_eq!(res.header("x-pixel-reason"), Some("store_error"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.get("/readyz", &[]).status != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "still ready while writes fail"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let res = server.get("/readyz", &[]);
    assert!(String::from_utf8_lossy(&res.body).contains("store"));
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    // No hit needed: the writer retries by itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.get("/readyz", &[]).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready after the lock went"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("/p.gif?s={key}&u=https%3A%2F%2Fexample.com%2Fafter");
    assert_eq!(server.get(&url, &[("User-Agent", CHROME)]).status, 200);
    let log = server.log_text();
    let failures = log.matches("writing to the store failed").count()
        + log.matches("writes to the store still failing").count();
    assert!(
        (1..=2).contains(&failures),
        "{failures} failure lines:\n{log}"
    );
    assert!(log.contains("writes to the store succeed again"), "{log}");
    assert_eq!(server.terminate().code(), Some(0));
    // The 40 refused hits count nowhere: the writer rebuilt its sessions and pending
    // rows from the store before writing again, so the one stored hit is all there is.
    let store = pixeltrack::store::SqliteStore::open(&data).unwrap();
    let today = pixeltrack::clock::day_of(chrono::Utc::now().timestamp_millis());
    let range = pixeltrack::report::DateRange {
        from_day: today - 1,
        to_day: today,
    };
    common::rollups_agree_with_raw_events(&store, 1, range);
    let report: serde_json::Value =
        serde_json::from_str(&cli(&data, &["report", "--json"])).unwrap();
    assert_eq!(report["overview"]["pageviews"], 1, "{report}");
}

/// `serve` with `data`: its exit status and what it wrote to stderr (it must not start).
fn serve_refused(data: &std::path::Path) -> (std::process::ExitStatus, String) {
    let out = std::process::Command::new(common::bin())
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("PIXELTRACK_CONFIG")
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reading every page before serving takes minutes on a store of several GB: a restart
/// after a clean stop skips it while the file is as that stop left it. After `kill -9`,
/// or once anything wrote to the file since, every page is read again (and a damaged
/// file is refused: the test below).
#[test]
fn a_clean_stop_spares_the_next_start_reading_every_page() {
    let (_d, data) = data_dir();
    let key = add_site(&data, "example.com");
    let skipped = "not read page by page";
    let mark = data.join("clean-stop");
    let hit = format!("/p.gif?s={key}");

    let server = Server::start(&data, &[]);
    assert!(
        !server.log_text().contains(skipped),
        "a first start reads every page"
    );
    assert_eq!(server.get(&hit, &[]).status, 200);
    assert_eq!(server.terminate().code(), Some(0));
    assert!(mark.exists(), "a clean stop is noted");

    let mut server = Server::start(&data, &[]);
    assert!(server.log_text().contains(skipped), "{}", server.log_text());
    assert!(!mark.exists(), "a note is used once");
    assert_eq!(server.get(&hit, &[]).status, 200);
    // kill -9: no note, every page read.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    assert!(!mark.exists());
    let server = Server::start(&data, &[]);
    assert!(!server.log_text().contains(skipped), "after kill -9");
    assert_eq!(server.get(&hit, &[]).status, 200);
    assert_eq!(server.terminate().code(), Some(0));

    // Written to after the clean stop (another command): every page read.
    assert!(mark.exists());
    add_site(&data, "other.example");
    let server = Server::start(&data, &[]);
    assert!(!server.log_text().contains(skipped), "after another write");
    assert_eq!(server.get(&hit, &[]).status, 200);
    assert_eq!(server.terminate().code(), Some(0));
}

/// The store holds the link-signing keys and the day's salts: a new data directory is
/// the owner's only (0700, the database 0600). A database emptied to zero bytes is not
/// taken for a new install, and one with damaged pages is refused before anything is
/// served — each said once, with the path and the way to recover.
#[test]
fn the_store_is_private_and_a_damaged_one_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, data) = data_dir();
    let key = add_site(&data, "example.com");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let db = data.join("pixeltrack.db");
    assert_eq!((mode(&data), mode(&db)), (0o700, 0o600));
    // Real rows spread over many pages, then damage in the middle of the file.
    cli(&data, &["demo", "--days", "2", "--visitors-per-day", "40"]);
    let server = Server::start(&data, &[]);
    assert_eq!(server.get(&format!("/p.gif?s={key}"), &[]).status, 200);
    assert_eq!(server.terminate().code(), Some(0));
    let mut bytes = std::fs::read(&db).unwrap();
    let pages = bytes.len() / 4096;
    assert!(pages > 20, "{pages} pages");
    for page in (pages / 2..pages).step_by(3) {
        bytes[page * 4096..page * 4096 + 64].fill(0xde);
    }
    std::fs::write(&db, &bytes).unwrap();
    let (status, err) = serve_refused(&data);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("pixeltrack.db") && err.contains("damaged"),
        "{err}"
    );
    assert!(err.contains(".recover"), "says how to recover: {err}");
    assert!(!err.contains("created user"), "no new install: {err}");
    assert_eq!(err.matches("damaged").count(), 1, "said once: {err}");

    std::fs::write(&db, b"").unwrap();
    let _ = std::fs::remove_file(data.join("pixeltrack.db-wal"));
    let (status, err) = serve_refused(&data);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("empty (0 bytes)") && err.contains("pixeltrack.db"),
        "{err}"
    );
    assert!(!err.contains("created user"), "no new install: {err}");
}
