//! Configuration, layered: built-in defaults → TOML file (`--config`) →
//! `PIXELTRACK_*` environment variables → command-line flags. All layers merge into
//! one TOML table which is deserialized once with `deny_unknown_fields`, so an unknown
//! or mistyped key fails at start with the key's name, whatever layer it came from.
//!
//! Environment names: `PIXELTRACK_<KEY>` for top-level keys and
//! `PIXELTRACK_<SECTION>__<KEY>` for sections, e.g. `PIXELTRACK_INGEST__DURABILITY=async`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Folder holding the SQLite database and nothing else.
    pub data_dir: PathBuf,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `pixeltrack=debug`.
    pub log_level: String,
    /// CIDRs of reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Write the client IP into the events table (off by default; see docs/privacy.md).
    pub store_ip: bool,
    /// With `store_ip`: keep only the network part (/24, /48). Off stores full addresses.
    pub store_ip_truncate: bool,
    /// The URL this server is reached at from the outside, used in snippets and in
    /// tagged emails (e.g. `https://t.example.com`). Default: `http://<listen>`.
    pub public_url: String,
    /// What this server is for: `all` (collects, and reports from its own database);
    /// in a scaled-out installation (needs `store.backend = "clickhouse"`), `admin`
    /// (the dashboard and API: reports read what every collector forwarded; sites,
    /// keys, salts and consent are published from here) or `collector` (collects and
    /// forwards only; takes sites, keys, salts and consent from the admin through
    /// ClickHouse). See docs/scale-out.md.
    pub role: Role,
    /// Threads answering HTTP. 0: one for each CPU this process may use.
    pub http_threads: usize,
    pub ingest: IngestConfig,
    pub limits: LimitsConfig,
    pub enrich: EnrichConfig,
    pub email: EmailConfig,
    pub ads: AdsConfig,
    pub store: StoreConfig,
    pub geo: GeoConfig,
    pub reports: ReportsConfig,
}

/// How a serving process keeps filtered views fast (see README, "Filtered views").
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// How many past days of each site's web events the server holds in memory, column
    /// by column (refreshed in the background when a day changes), so that a filtered
    /// view nobody asked for before is counted from memory, not from the raw events.
    /// 0: none (a new filter's first load reads the events). The default holds the
    /// dashboard's default 30 days and the 30 days it is compared with.
    pub segment_days: u32,
    /// The most memory (MiB) those days may take; past it older days are let go.
    pub segment_memory_mb: u64,
}

/// Geolocation beyond the registries' countries (see README, "Geolocation").
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// A MaxMind-format city database (GeoLite2-City, DB-IP Lite City, IPinfo Lite),
    /// e.g. `/var/lib/GeoIP/GeoLite2-City.mmdb`: country, region and city of each hit,
    /// looked up in memory before the IP is dropped. Re-read within seconds when the
    /// file is replaced. Empty: countries from the registries' data only.
    pub mmdb: String,
    /// A MaxMind-format ASN database (GeoLite2-ASN; IPinfo Lite carries ASNs in the
    /// city file already): the network's AS number and organisation. Empty: none.
    pub asn_mmdb: String,
    /// Headers a CDN puts the visitor's country in; believed only when the request
    /// comes from one of `trusted_proxies` (which must then strip them from clients),
    /// and only when they name a country (`XX`, `T1` are unknown). Empty: none.
    pub country_headers: Vec<String>,
}

/// Where events go besides the embedded SQLite database (see docs/scale-out.md).
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite`: events stay in the embedded database. `clickhouse`: every committed
    /// event is also forwarded to ClickHouse, exactly once, from the local spool.
    pub backend: Backend,
    /// ClickHouse HTTP URL for schema changes and reads, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// ClickHouse database (created if missing).
    pub database: String,
    pub user: String,
    pub password: String,
    /// HTTP URLs of the shards events are written to, one per shard (a visitor's events
    /// all go to one). Empty: `url` is the only shard.
    pub shards: Vec<String>,
    /// The cluster name (in ClickHouse's `remote_servers`) of `shards`, for the
    /// Distributed table reports read. Empty: a single server.
    pub cluster: String,
    /// Most events shipped in one insert.
    pub batch_rows: usize,
    /// Most committed events waiting to be shipped; past it hits are answered with
    /// `X-Pixel-Reason: spool_full`, not stored, and `/readyz` says not ready.
    pub spool_max_events: u64,
    /// How long one insert or query to ClickHouse may take before it is retried.
    pub timeout_ms: u64,
}

/// The password never reaches a log or a panic message.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("shards", &self.shards)
            .field("cluster", &self.cluster)
            .field("batch_rows", &self.batch_rows)
            .field("spool_max_events", &self.spool_max_events)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    All,
    Admin,
    Collector,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Clickhouse,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdsConfig {
    /// The landing-page parameter ad links append with the click id.
    pub click_param: String,
    /// Which click a conversion is credited to.
    pub attribution: Attribution,
    /// Clicks older than this before a conversion are not credited.
    pub lookback_days: u32,
    /// A conversion repeating an order id counted this recently is a duplicate.
    pub dedupe_days: u32,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    LastClick,
    FirstClick,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Networks whose opens and clicks are security scanners (CIDRs), on top of the
    /// shipped lists (`data/scanner-networks.toml`: Microsoft, Mimecast, Proofpoint,
    /// Barracuda, Cisco; public clouds) and the operator's `DATA/scanner-networks.toml`.
    pub scanner_networks: Vec<String>,
    /// A click this soon after the email's first request (its delivery, as far as
    /// known) with no open by a person is probably a scanner; so is an image fetched
    /// by a browser (not a mail app) this soon after the send.
    pub min_human_seconds: u32,
    /// A click with no open by a person this soon after sending is uncertain: probably
    /// a person with images off, shown apart in reports.
    pub click_without_open_seconds: u32,
    /// This many distinct links of one message clicked within `burst_seconds` is a scanner.
    pub burst_links: u32,
    pub burst_seconds: u32,
    /// One IP clicking for this many recipients within `shared_ip_seconds` is a scanner.
    pub shared_ip_recipients: u32,
    pub shared_ip_seconds: u32,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// `commit`: answer after the event is committed. `async`: answer at once.
    pub durability: Durability,
    /// Events waiting for the writer; when full, new hits are dropped as `overload`.
    pub queue_capacity: usize,
    /// Most events written in one transaction.
    pub batch_max: usize,
    /// Under concurrent load, how long (µs) the writer may wait for hits that other
    /// handlers are still working on to join its batch, until it holds half of the hits
    /// in flight: fewer, larger commits write fewer bytes and cost less CPU an event.
    /// A lone client never waits. Under a heavy load the writer takes the queue every
    /// 250 µs instead (no hand-off wakes it). 0: take whatever is queued at once.
    pub gather_us: u64,
    /// Under concurrent load, a hit is answered once it is in the hit log
    /// (`ingest::hitlog`), and the indexer commits what arrived over up to this long
    /// (ms) in one transaction: fewer, larger transactions. Reports lag by at most this.
    /// 0: nothing is appended, every hit waits for its commit (what an earlier run left
    /// in the log is still committed at the start).
    pub log_hold_ms: u64,
    /// How long a hit waits for the writer to take it; past that it is answered with
    /// `X-Pixel-Reason: timeout` and never written (a taken hit waits for its commit).
    pub commit_timeout_ms: u64,
    /// How long the writer waits for a database lock held by another process (a
    /// backup, a long CLI write) before the batch fails as `store_error`.
    pub busy_timeout_ms: u64,
    /// Under load, how long the sessions, rollups and unique-visitor keys of committed
    /// events may wait in memory to be written together (reports lag by at most this;
    /// a quiet server writes them with every batch). 0: always with the batch.
    pub index_interval_ms: u64,
    /// The most derived rows held in memory before they are written regardless.
    pub index_max_rows: usize,
    /// Below this many events a second, a pause in the load (no hit in flight) writes
    /// the derived rows at once, so reports are exact at every answer; above it they
    /// gather up to `index_interval_ms`. 0: never on a pause.
    pub light_load_per_second: u64,
    /// The most open sessions the writer holds (≈ 0.5 KB each); past it the sessions
    /// idle longest end early (counted in `pixeltrack_sessions_cut_total`).
    pub max_open_sessions: usize,
    /// The most unique-visitor keys the writer holds (10–30 bytes each); past it the
    /// store decides new keys, exactly, a visitor's together (`visitor_uniques`): about
    /// a page written for each visitor with a new key in a write of derived rows.
    pub max_unique_keys: usize,
    /// SQLite `synchronous`: `normal` survives a process crash (SIGKILL);
    /// `full` also survives power loss, at the cost of an fsync per commit.
    pub synchronous: Synchronous,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    Commit,
    Async,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Normal,
    Full,
}

/// The longest `limits.header_timeout_secs`: a day (a longer wait is no timeout; 0 says so).
pub const MAX_HEADER_TIMEOUT_SECS: u64 = 86_400;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// A pixel query string longer than this is dropped as `oversized`.
    pub max_query_bytes: usize,
    /// A `User-Agent` longer than this is dropped as `oversized` (no browser sends one).
    pub max_ua_bytes: usize,
    /// User agents are truncated to this many bytes before parsing.
    pub ua_parse_bytes: usize,
    /// Largest request head (request line + headers) the server reads; larger ones
    /// are answered 431. Each connection may buffer this much, so it bounds memory per
    /// connection (browsers send a few KiB; nginx's default is 4 × 8 KiB).
    pub max_header_bytes: usize,
    /// A connection is closed once it has gone this long (up to a quarter more) without
    /// a request head arriving while none of its answers is being sent: a client that
    /// sends its head slowly (slowloris) or keeps an idle connection. Behind a load
    /// balancer, keep it above the balancer's idle timeout. 0: never (not advised); at
    /// most [`MAX_HEADER_TIMEOUT_SECS`].
    pub header_timeout_secs: u64,
    /// Web hits (pixels, tracker events) one client IP may send per minute; more are
    /// answered but not stored (`rate_limited`). 0: no limit. Email opens and clicks
    /// are never limited (mail proxies fetch for many recipients from few addresses).
    pub per_ip_per_minute: u32,
    /// Web hits one site may receive per second, all clients together. 0: no limit.
    pub per_site_per_second: u32,
    /// HTTP connections open at once; more are closed on arrival. 0: what the
    /// open-files limit allows (raised to its hard limit at start), less 256.
    pub max_connections: usize,
    /// HTTP connections from one client address (trusted proxies exempt). 0: no limit.
    pub max_connections_per_ip: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// Parsed user agents kept in memory.
    pub ua_cache_size: usize,
    /// Inactivity that ends a session.
    pub session_timeout_minutes: u32,
    /// How long a day's visitor salt outlives its day before it is destroyed.
    pub salt_grace_minutes: u32,
}

impl Config {
    /// The HTTP threads to start: `http_threads`, or by default one for each CPU. (One
    /// less than the CPUs, to leave the writer and indexer threads a core, cut the HTTP
    /// threads' CPU a hit on two cores but not the rate: docs/benchmarks.md.)
    pub fn http_threads(&self) -> usize {
        if self.http_threads > 0 {
            return self.http_threads;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./pixeltrack-data"),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            trusted_proxies: Vec::new(),
            store_ip: false,
            store_ip_truncate: true,
            public_url: String::new(),
            role: Role::All,
            http_threads: 0,
            ingest: IngestConfig {
                durability: Durability::Commit,
                queue_capacity: 65_536,
                batch_max: 4_096,
                gather_us: 1_000,
                log_hold_ms: 50,
                commit_timeout_ms: 2_000,
                busy_timeout_ms: 10_000,
                index_interval_ms: 1_000,
                index_max_rows: 200_000,
                light_load_per_second: 1_000,
                max_open_sessions: 200_000,
                max_unique_keys: 4_000_000,
                synchronous: Synchronous::Normal,
            },
            limits: LimitsConfig {
                max_query_bytes: 16 * 1024,
                max_ua_bytes: 4 * 1024,
                ua_parse_bytes: 512,
                max_header_bytes: 64 * 1024,
                header_timeout_secs: 30,
                per_ip_per_minute: 1_200,
                per_site_per_second: 0,
                max_connections: 0,
                max_connections_per_ip: 256,
            },
            enrich: EnrichConfig {
                ua_cache_size: 10_000,
                session_timeout_minutes: 30,
                salt_grace_minutes: 60,
            },
            email: EmailConfig {
                scanner_networks: Vec::new(),
                min_human_seconds: 10,
                click_without_open_seconds: 60,
                burst_links: 3,
                burst_seconds: 2,
                shared_ip_recipients: 3,
                shared_ip_seconds: 60,
            },
            ads: AdsConfig {
                click_param: "ptclid".into(),
                attribution: Attribution::LastClick,
                lookback_days: 30,
                dedupe_days: 30,
            },
            store: StoreConfig {
                backend: Backend::Sqlite,
                url: "http://127.0.0.1:8123".into(),
                database: "pixeltrack".into(),
                user: "default".into(),
                password: String::new(),
                shards: Vec::new(),
                cluster: String::new(),
                batch_rows: 10_000,
                spool_max_events: 20_000_000,
                timeout_ms: 30_000,
            },
            geo: GeoConfig {
                mmdb: String::new(),
                asn_mmdb: String::new(),
                country_headers: vec!["CF-IPCountry".into(), "CloudFront-Viewer-Country".into()],
            },
            reports: ReportsConfig {
                segment_days: 62,
                segment_memory_mb: 512,
            },
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub config: Config,
    pub listen: SocketAddr,
    pub trusted_proxies: Vec<IpNet>,
    pub scanner_networks: Vec<IpNet>,
    /// `public_url` without a trailing slash.
    pub public_url: String,
    /// `geo.country_headers`, as header names.
    pub country_headers: Vec<axum::http::HeaderName>,
}

impl Config {
    /// Builds the layered configuration. `env` is passed in so tests need not touch the
    /// process environment; `overrides` are flags already in `key.path = value` form.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(&str, toml::Value)],
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let layer: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            merge(&mut table, layer);
        }
        for (name, raw) in env {
            let Some(key) = name.strip_prefix("PIXELTRACK_") else {
                continue;
            };
            let path: Vec<String> = key.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            set_path(&mut table, &path, env_value(&raw))
                .map_err(|e| ConfigError::Invalid(format!("environment variable {name}: {e}")))?;
        }
        for (key, value) in overrides {
            let path: Vec<&str> = key.split('.').collect();
            set_path(&mut table, &path, value.clone()).map_err(ConfigError::Invalid)?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        Ok(config)
    }

    /// Checks values that types alone cannot, and resolves them for the server.
    pub fn validate(self) -> Result<Runtime, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "listen = {:?} is not an address:port such as 127.0.0.1:8080",
                self.listen
            ))
        })?;
        let trusted = parse_nets("trusted_proxies", &self.trusted_proxies)?;
        let scanner_networks = parse_nets("email.scanner_networks", &self.email.scanner_networks)?;
        let public_url = if self.public_url.is_empty() {
            format!("http://{listen}")
        } else {
            let u = url::Url::parse(&self.public_url).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.query().is_none()
            });
            if u.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "public_url = {:?} is not an http(s) URL such as https://t.example.com",
                    self.public_url
                )));
            }
            self.public_url.trim_end_matches('/').to_owned()
        };
        let positive = [
            ("ingest.queue_capacity", self.ingest.queue_capacity),
            ("ingest.batch_max", self.ingest.batch_max),
            ("ingest.index_max_rows", self.ingest.index_max_rows),
            ("ingest.max_open_sessions", self.ingest.max_open_sessions),
            ("ingest.max_unique_keys", self.ingest.max_unique_keys),
            ("limits.max_query_bytes", self.limits.max_query_bytes),
            ("limits.max_ua_bytes", self.limits.max_ua_bytes),
            ("limits.ua_parse_bytes", self.limits.ua_parse_bytes),
            ("enrich.ua_cache_size", self.enrich.ua_cache_size),
            ("store.batch_rows", self.store.batch_rows),
            (
                "store.spool_max_events",
                self.store.spool_max_events as usize,
            ),
            ("store.timeout_ms", self.store.timeout_ms as usize),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        // One link is not a burst, one recipient not an address shared by several.
        for (key, v) in [
            ("email.burst_links", self.email.burst_links),
            (
                "email.shared_ip_recipients",
                self.email.shared_ip_recipients,
            ),
        ] {
            if v < 2 {
                return Err(ConfigError::Invalid(format!(
                    "{key} = {v} must be at least 2 (with fewer every click would be a scanner's)"
                )));
            }
        }
        if self.limits.max_header_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "limits.max_header_bytes must be at least 8192".into(),
            ));
        }
        if self.limits.header_timeout_secs > MAX_HEADER_TIMEOUT_SECS {
            return Err(ConfigError::Invalid(format!(
                "limits.header_timeout_secs = {} must be at most {MAX_HEADER_TIMEOUT_SECS} (a day; 0: never)",
                self.limits.header_timeout_secs
            )));
        }
        if !crate::model::valid_ad_id(&self.ads.click_param)
            || self.ads.click_param.starts_with("utm_")
        {
            return Err(ConfigError::Invalid(format!(
                "ads.click_param = {:?} must be 1-64 characters of A-Z a-z 0-9 . _ ~ : - (not utm_*)",
                self.ads.click_param
            )));
        }
        if self.ads.lookback_days == 0 {
            return Err(ConfigError::Invalid(
                "ads.lookback_days must be at least 1".into(),
            ));
        }
        if self.enrich.session_timeout_minutes == 0 {
            return Err(ConfigError::Invalid(
                "enrich.session_timeout_minutes must be at least 1".into(),
            ));
        }
        if self.store.backend == Backend::Clickhouse {
            validate_clickhouse(&self.store)?;
        }
        if self.role != Role::All && self.store.backend != Backend::Clickhouse {
            return Err(ConfigError::Invalid(format!(
                "role = \"{}\" is part of a scaled-out installation that shares ClickHouse: set store.backend = \"clickhouse\" and its url, database, user and password",
                if self.role == Role::Admin { "admin" } else { "collector" }
            )));
        }
        let country_headers = self
            .geo
            .country_headers
            .iter()
            .map(|h| {
                axum::http::HeaderName::try_from(h.trim()).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "geo.country_headers: {h:?} is not a header name such as CF-IPCountry"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // geo.mmdb and geo.asn_mmdb are read (and a missing or broken file refused, with
        // the setting named) where they are used, by `serve` and `demo`: commands that
        // only read reports do not need the file.
        if self
            .log_level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "log_level = {:?} is not a tracing filter such as \"info\"",
                self.log_level
            )));
        }
        Ok(Runtime {
            config: self,
            listen,
            trusted_proxies: trusted,
            scanner_networks,
            public_url,
            country_headers,
        })
    }
}

/// The ClickHouse settings that must hold before anything is sent: http(s) URLs
/// without credentials in them, names that can be spliced into SQL.
fn validate_clickhouse(c: &StoreConfig) -> Result<(), ConfigError> {
    let url_ok = |key: &str, u: &str| {
        let ok = url::Url::parse(u).ok().is_some_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
        });
        if ok {
            Ok(())
        } else {
            Err(ConfigError::Invalid(format!(
                "{key} = {u:?} is not an http(s) URL such as http://127.0.0.1:8123 (user and password go in store.user and store.password)"
            )))
        }
    };
    url_ok("store.url", &c.url)?;
    for s in &c.shards {
        url_ok("store.shards", s)?;
    }
    if c.shards.len() > 256 {
        return Err(ConfigError::Invalid("store.shards: at most 256".into()));
    }
    if crate::store::clickhouse::sql::name(&c.database).is_none() {
        return Err(ConfigError::Invalid(format!(
            "store.database = {:?} must be 1-64 characters of A-Z a-z 0-9 _, not starting with a digit",
            c.database
        )));
    }
    if !c.cluster.is_empty() && crate::store::clickhouse::sql::name(&c.cluster).is_none() {
        return Err(ConfigError::Invalid(format!(
            "store.cluster = {:?} must be 1-64 characters of A-Z a-z 0-9 _, not starting with a digit",
            c.cluster
        )));
    }
    if c.shards.len() > 1 && c.cluster.is_empty() {
        return Err(ConfigError::Invalid(
            "store.shards lists several shards: store.cluster must name their cluster".into(),
        ));
    }
    Ok(())
}

fn parse_nets(key: &str, list: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .map(|cidr| {
            cidr.parse::<IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::Invalid(format!(
                        "{key}: {cidr:?} is not a CIDR such as 10.0.0.0/8 or an IP"
                    ))
                })
        })
        .collect()
}

/// Environment values are TOML when they parse as a TOML value (numbers, booleans,
/// arrays), otherwise plain strings.
fn env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (k, v) in layer {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[&str], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for p in parents {
        match cur.get_mut(*p) {
            Some(toml::Value::Table(t)) => cur = t,
            _ => return Err(format!("unknown section `{p}`")),
        }
    }
    if !cur.contains_key(*last) {
        return Err(format!("unknown key `{}`", path.join(".")));
    }
    // A list may be given as a comma-separated string (PIXELTRACK_TRUSTED_PROXIES=a,b).
    let value = match (cur.get(*last), value) {
        (Some(toml::Value::Array(_)), toml::Value::String(s)) => toml::Value::Array(
            s.split(',')
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(|p| toml::Value::String(p.into()))
                .collect(),
        ),
        (_, v) => v,
    };
    cur.insert((*last).to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let rt = Config::load(None, Vec::new(), &[])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(rt.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(rt.config.data_dir, PathBuf::from("./pixeltrack-data"));
        assert_eq!(rt.config.ingest.durability, Durability::Commit);
        assert!(!rt.config.store_ip);
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nstore_ip = true\n[ingest]\nbatch_max = 7\n",
        )
        .unwrap();
        let env = vec![
            ("PIXELTRACK_INGEST__BATCH_MAX".to_string(), "9".to_string()),
            (
                "PIXELTRACK_TRUSTED_PROXIES".to_string(),
                "10.0.0.0/8, ::1".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let flags = [("listen", toml::Value::String("127.0.0.1:9100".into()))];
        let c = Config::load(Some(&file), env, &flags).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9100");
        assert!(c.store_ip);
        assert_eq!(c.ingest.batch_max, 9);
        assert_eq!(c.trusted_proxies, vec!["10.0.0.0/8", "::1"]);
        let rt = c.validate().unwrap();
        assert_eq!(rt.trusted_proxies.len(), 2);
    }

    #[test]
    fn a_header_timeout_past_a_day_is_refused() {
        let load = |v: &str| {
            let env = vec![(
                "PIXELTRACK_LIMITS__HEADER_TIMEOUT_SECS".to_string(),
                v.to_string(),
            )];
            Config::load(None, env, &[]).unwrap().validate()
        };
        assert_eq!(load("0").unwrap().config.limits.header_timeout_secs, 0);
        assert_eq!(
            load("86400").unwrap().config.limits.header_timeout_secs,
            86_400
        );
        let err = load("9223372036854775807")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("limits.header_timeout_secs") && err.contains("at most 86400"),
            "{err}"
        );
        assert!(load("86401").is_err(), "a second past a day");
    }

    #[test]
    fn http_threads_are_the_cpus_unless_set() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        let auto = Config::load(None, Vec::new(), &[]).unwrap();
        assert_eq!(auto.http_threads, 0);
        assert_eq!(auto.http_threads(), cpus);
        let env = vec![("PIXELTRACK_HTTP_THREADS".to_string(), "3".to_string())];
        assert_eq!(Config::load(None, env, &[]).unwrap().http_threads(), 3);
    }

    #[test]
    fn the_admin_role_needs_clickhouse() {
        let env = |backend: &str| {
            vec![
                ("PIXELTRACK_ROLE".to_string(), "admin".to_string()),
                ("PIXELTRACK_STORE__BACKEND".to_string(), backend.to_string()),
                (
                    "PIXELTRACK_STORE__URL".to_string(),
                    "http://127.0.0.1:8123".to_string(),
                ),
                ("PIXELTRACK_STORE__USER".to_string(), "pt".to_string()),
            ]
        };
        let err = Config::load(None, env("sqlite"), &[])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.backend = \"clickhouse\""), "{err}");
        let rt = Config::load(None, env("clickhouse"), &[])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(rt.config.role, Role::Admin);
        let err = Config::load(None, vec![("PIXELTRACK_ROLE".into(), "boss".into())], &[])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("boss") && err.contains("`collector`"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[ingest]\nbatch_maxx = 3\n").unwrap();
        let err = Config::load(Some(&file), Vec::new(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_maxx"), "{err}");

        let env = vec![("PIXELTRACK_LISTN".to_string(), "x".to_string())];
        let err = Config::load(None, env, &[]).unwrap_err().to_string();
        assert!(
            err.contains("PIXELTRACK_LISTN") && err.contains("listn"),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_are_explained() {
        let bad = |k: &str, v: toml::Value| {
            Config::load(None, Vec::new(), &[(k, v)])
                .and_then(Config::validate)
                .unwrap_err()
                .to_string()
        };
        assert!(bad("listen", "localhost".into()).contains("listen"));
        assert!(bad(
            "trusted_proxies",
            toml::Value::Array(vec!["10.0.0.0/99".into()])
        )
        .contains("10.0.0.0/99"));
        assert!(bad("ingest.durability", "maybe".into()).contains("maybe"));
        assert!(bad("ingest.batch_max", 0.into()).contains("batch_max"));
        assert!(bad("email.burst_links", 1.into()).contains("email.burst_links = 1"));
        assert!(bad("email.shared_ip_recipients", 0.into()).contains("shared_ip_recipients"));
        assert!(bad(
            "email.scanner_networks",
            toml::Value::Array(vec!["104.47.0.0/33".into()])
        )
        .contains("104.47.0.0/33"));
    }

    #[test]
    fn geolocation_settings_come_from_every_layer_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("City.mmdb");
        std::fs::write(&db, b"checked when read").unwrap();
        let rt = Config::load(
            None,
            vec![
                (
                    "PIXELTRACK_GEO__MMDB".to_string(),
                    db.to_string_lossy().into_owned(),
                ),
                (
                    "PIXELTRACK_GEO__COUNTRY_HEADERS".to_string(),
                    "CF-IPCountry".to_string(),
                ),
            ],
            &[],
        )
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(rt.config.geo.mmdb, db.to_string_lossy());
        assert_eq!(rt.config.geo.asn_mmdb, "");
        assert_eq!(rt.country_headers, vec!["cf-ipcountry"]);
        let defaults = Config::load(None, Vec::new(), &[])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(defaults.config.geo.mmdb, "");
        assert_eq!(defaults.country_headers.len(), 2);

        let bad = |k: &str, v: toml::Value| {
            Config::load(None, Vec::new(), &[(k, v)])
                .and_then(Config::validate)
                .unwrap_err()
                .to_string()
        };
        // A missing file is refused where it is read (`enrich::geo`), naming the setting.
        let missing = dir.path().join("GeoLite2-City.mmdb");
        let c = Config::load(
            None,
            Vec::new(),
            &[("geo.asn_mmdb", missing.to_string_lossy().as_ref().into())],
        )
        .unwrap()
        .validate()
        .unwrap();
        let err = crate::enrich::geo::Geo::open(&c.config.geo.mmdb, &c.config.geo.asn_mmdb)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("geo.asn_mmdb") && err.contains("GeoLite2-City.mmdb"),
            "{err}"
        );
        let err = bad(
            "geo.country_headers",
            toml::Value::Array(vec!["CF IPCountry".into()]),
        );
        assert!(err.contains("CF IPCountry"), "{err}");
    }

    #[test]
    fn scanner_networks_default_to_none_on_top_of_the_shipped_lists() {
        let rt = Config::load(None, Vec::new(), &[])
            .unwrap()
            .validate()
            .unwrap();
        assert!(rt.scanner_networks.is_empty());
        let rt = Config::load(
            None,
            Vec::new(),
            &[(
                "email.scanner_networks",
                toml::Value::Array(vec!["198.51.100.0/24".into(), "192.0.2.7".into()]),
            )],
        )
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(rt.scanner_networks.len(), 2);
    }
}
