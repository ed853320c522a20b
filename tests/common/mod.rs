//! Helpers for end-to-end tests: the real binary on an ephemeral port with a fresh
//! data dir, a tiny HTTP/1.1 client on std sockets, and file scans of the data dir;
//! `webdriver` drives headless Chromium for the browser suites.
#![allow(dead_code)]

pub mod geo;
pub mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pixeltrack")
}

/// Runs a CLI command on `data`; returns stdout, panics with stderr on failure.
pub fn cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("PIXELTRACK_CONFIG")
        .output()
        .expect("run pixeltrack");
    assert!(
        out.status.success(),
        "pixeltrack {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Adds a site and returns its key.
pub fn add_site(data: &Path, domain: &str) -> String {
    let out = cli(data, &["site", "add", domain, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["key"].as_str().expect("key").to_owned()
}

/// Creates the campaign `name` on the site `domain` and returns its id.
pub fn add_campaign(data: &Path, domain: &str, name: &str) -> i64 {
    let out = cli(
        data,
        &[
            "campaign", "create", "--site", domain, "--name", name, "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["id"].as_i64().expect("campaign id")
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Starts `pixeltrack serve` on 127.0.0.1:0 and waits until it listens.
    // The child is owned by `Server`, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start(data: &Path, extra_env: &[(&str, &str)]) -> Server {
        let log = data.with_extension(format!("log{}", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin());
        cmd.arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .env_remove("PIXELTRACK_CONFIG")
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn pixeltrack serve");
        Server::adopt(child, data, log)
    }

    /// A `serve` process started some other way (logging JSON to `log`), once it listens.
    pub fn adopt(child: Child, data: &Path, log: PathBuf) -> Server {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(addr) = listen_addr(&log) {
                return Server {
                    child,
                    addr,
                    data: data.to_owned(),
                    log,
                };
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http(self.addr, "GET", path, headers).expect("request")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        wait_timeout(&mut self.child, Duration::from_secs(30))
    }

    /// Sends SIGTERM, waits for the exit, and returns it with the whole log.
    pub fn terminate_keeping_log(self) -> (std::process::ExitStatus, String) {
        let log = self.log.clone();
        let status = self.terminate();
        (status, std::fs::read_to_string(log).unwrap_or_default())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it gives a value, for at most `limit`: a wait for something to
/// happen, with a deadline instead of a fixed sleep. Panics naming `what` on time-out.
pub fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listen_addr(log: &Path) -> Option<SocketAddr> {
    let f = std::fs::File::open(log).ok()?;
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(l) = v["fields"]["listen"].as_str() {
            return l.parse().ok();
        }
    }
    None
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; the raw target is sent as given,
/// so tests can send bytes a URL type would refuse.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    http_body(addr, method, target, headers, "")
}

/// [`http`] with a body, sent with its `Content-Length` unless it is empty.
pub fn http_body(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete response")
    })
}

pub fn parse_response(raw: &[u8], is_head: bool) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = raw[end + 4..].to_vec();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if let (Some(len), false) = (len, is_head) {
        if body.len() < len {
            return None; // cut off mid-body: not a complete response
        }
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Every file under `dir` (recursively), with its bytes.
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Raw events of a site, via the real `export` command.
pub fn export(data: &Path, site: &str) -> Vec<serde_json::Value> {
    cli(data, &["export", "--site", site, "--format", "ndjson"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson line"))
        .collect()
}

/// The value of a Prometheus sample line such as `name{label="x"}`.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no metric {sample}"))
}

/// A fresh, empty data dir `d` inside a temporary directory, which lives as long as the
/// returned guard.
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::create_dir_all(&data).unwrap();
    (dir, data)
}

/// A fresh data dir (as [`data_dir`]) with the site `domain` added; the third value is
/// the site's key.
pub fn site_dir(domain: &str) -> (tempfile::TempDir, PathBuf, String) {
    let (dir, data) = data_dir();
    let key = add_site(&data, domain);
    (dir, data, key)
}

/// A fresh data dir with site `shop.example` and campaign 1 named `name`.
pub fn site_with_campaign(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, data, _) = site_dir("shop.example");
    add_campaign(&data, "shop.example", name);
    (dir, data)
}

/// The rows of one breakdown of a `report --json` document.
pub fn report_rows(report: &serde_json::Value, dimension: &str) -> Vec<serde_json::Value> {
    report["breakdowns"]
        .as_array()
        .expect("breakdowns")
        .iter()
        .find(|b| b["dimension"] == dimension)
        .and_then(|b| b["rows"].as_array().cloned())
        .unwrap_or_default()
}

/// `POST /e` with a text/plain body, as `navigator.sendBeacon` sends it.
pub fn post(
    server: &Server,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<(String, String)>) {
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    let mut req = format!("POST /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, body.to_owned(), headers)
}

/// Asserts that every filterable dimension's rollup rows over `range` equal what the
/// raw events aggregate to (the filtered-report path), value by value; returns how many
/// dimensions had rows. Whole days, so no visit is cut by the range.
pub fn rollups_agree_with_raw_events(
    store: &dyn pixeltrack::store::Store,
    site_id: i64,
    range: pixeltrack::report::DateRange,
) -> usize {
    use pixeltrack::report::raw::{Aggregate, Group};
    use pixeltrack::store::{Dim, Filter};
    let site = pixeltrack::model::SiteId(site_id);
    let (h0, h1) = range.hours();
    let (m0, m1) = range.millis();
    let mut with_data = 0;
    for dim in Filter::DIMS {
        let rolled = store.rollup_sums(site, dim, h0, h1, 1000).unwrap();
        let raw = Aggregate::new(store, site, m0, m1, &[], &[Group::Dim(dim)])
            .unwrap()
            .sums(Group::Dim(dim), 1000);
        with_data += usize::from(!rolled.is_empty());
        let key = |r: &pixeltrack::store::RollupSum| {
            let c = &r.counts;
            let n = match dim {
                // Entry and exit pages count visits (a visit's other numbers live elsewhere).
                Dim::EntryPage | Dim::ExitPage => [0, c.visits, 0, 0, 0, 0, 0, 0],
                // Pages and events are counted per event; rollups keep no visits for them.
                // A page also has its engagement events' scroll depth and visible time.
                Dim::Page => [
                    c.visitors,
                    0,
                    c.pageviews,
                    c.events,
                    0,
                    c.scroll_sum,
                    c.scroll_n,
                    c.engaged_ms,
                ],
                Dim::Title | Dim::Event => [c.visitors, 0, c.pageviews, c.events, 0, 0, 0, 0],
                _ => [
                    c.visitors,
                    c.visits,
                    c.pageviews,
                    c.events,
                    c.bounces,
                    0,
                    0,
                    0,
                ],
            };
            (r.value.clone(), n)
        };
        let mut a: Vec<_> = rolled
            .iter()
            .map(key)
            .filter(|(_, n)| *n != [0; 8])
            .collect();
        let mut b: Vec<_> = raw.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{dim:?}");
    }
    with_data
}

/// An in-process setup for tests that drive `App` without a socket: a fresh data dir,
/// its validated config (with `extra` flags) and its store with the one site
/// `example.com` under `key`.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub rt: pixeltrack::config::Runtime,
    pub store: pixeltrack::store::SqliteStore,
    pub site: pixeltrack::model::Site,
}

impl InProcess {
    pub fn new(key: &str, extra: &[(&str, toml::Value)]) -> InProcess {
        use pixeltrack::store::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let mut flags = vec![(
            "data_dir",
            toml::Value::String(dir.path().display().to_string()),
        )];
        flags.extend(extra.iter().cloned());
        let rt = pixeltrack::config::Config::load(None, Vec::new(), &flags)
            .unwrap()
            .validate()
            .unwrap();
        let store = pixeltrack::store::SqliteStore::open(dir.path()).unwrap();
        let site = store
            .add_site(
                &pixeltrack::model::SiteKey::parse(key).unwrap(),
                "example.com",
                "Example",
                0,
            )
            .unwrap();
        InProcess {
            dir,
            rt,
            store,
            site,
        }
    }
}

/// One request through `router` without a socket, as if from `peer` (`ip:port`).
pub async fn oneshot(
    router: axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    peer: &str,
) -> axum::response::Response {
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(axum::body::Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    router.oneshot(req).await.unwrap()
}

/// Tags `html` for `recipients` (a CSV with an `email` column) with the real `email tag`
/// command into `dir/out`; returns the output folder.
pub fn tag_email(
    data: &Path,
    dir: &Path,
    campaign: &str,
    recipients_csv: &str,
    html: &str,
) -> PathBuf {
    let csv = dir.join("recipients.csv");
    std::fs::write(&csv, recipients_csv).unwrap();
    let input = dir.join("email.html");
    std::fs::write(&input, html).unwrap();
    let out = dir.join("out");
    cli(
        data,
        &[
            "email",
            "tag",
            "--allow-local",
            "--campaign",
            campaign,
            "--recipients",
            csv.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ],
    );
    out
}

/// The paths (`/o/…`, `/c/…`) of the tracked URLs starting with `prefix` in a tagged
/// email, in document order, without the server's base URL.
pub fn tracked(html: &str, prefix: &str) -> Vec<String> {
    html.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &html[i..];
            rest[..rest.find('"').unwrap()].replace("http://127.0.0.1:8080", "")
        })
        .collect()
}

/// An ad link for campaign 1 of shop.example, made by `pixeltrack link create`: its
/// path and query (`/c/<token>`), without the server's base URL.
pub fn ad_link(data: &Path, ad: &str, placement: &str, url: &str) -> String {
    let out = cli(
        data,
        &[
            "link",
            "create",
            "--site",
            "shop.example",
            "--campaign",
            "1",
            "--ad",
            ad,
            "--placement",
            placement,
            url,
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let url = v["url"].as_str().unwrap();
    url[url.find("/c/").expect("a click link")..].to_owned()
}
