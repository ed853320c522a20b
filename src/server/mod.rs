//! `pixeltrack serve`: wires the stages together, serves HTTP, and shuts down in
//! order — stop accepting, finish in-flight requests, commit the queue, exit 0.

use std::net::SocketAddr;

use anyhow::Context;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::Service;

use crate::clock::Clock;
use crate::collect::{self, Collector};
use crate::config::Runtime;
use crate::enrich::salts::SaltKeeper;
use crate::enrich::Enricher;
use crate::ingest;
use crate::metrics::{Metrics, Route};
use crate::model::DropReason;
use crate::store::{SiteStore, SqliteStore, TokenStore};

pub mod conns;
pub mod jobs;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for the periodic jobs under way (a retention run over a big
/// store may take longer: then the stop goes on without them, and the next start reads
/// every page of the database).
const JOBS_STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<crate::config::Config>,
    pub public_url: String,
    pub collector: Arc<Collector>,
    pub metrics: Arc<Metrics>,
    pub draining: Arc<AtomicBool>,
}

/// A running pixeltrack: the router plus what must be stopped in order.
pub struct App {
    pub state: AppState,
    writer: std::thread::JoinHandle<ingest::Stopped>,
    /// With `store.backend = "clickhouse"`: ships the committed events.
    forwarder: Option<crate::forward::Forwarder>,
    /// An admin's or a collector's share of the installation's state.
    replicator: Option<crate::replicate::Replicator>,
}

/// A stop that lost events: `serve` exits non-zero with this message.
#[derive(Debug, thiserror::Error)]
#[error("{lost} acknowledged or queued events could not be written before the stop (see the store errors logged above)")]
pub struct LostEvents {
    pub lost: u64,
}

impl App {
    /// Opens the store, starts the writer thread, prepares salts and lookup tables.
    pub fn build(rt: &Runtime, clock: Clock) -> anyhow::Result<App> {
        let cfg = &rt.config;
        let mut store = SqliteStore::open(&cfg.data_dir)?;
        if !store.check_at_start()? {
            tracing::info!("the database is as its last clean stop left it: not read page by page");
        }
        if cfg.role == crate::config::Role::Admin {
            // Reports (dashboard, API) read what every collector forwarded; sites,
            // campaigns, settings, tokens and accounts stay in this data directory.
            let reader = crate::store::clickhouse::reader::ClickHouseReader::new(&cfg.store)?;
            store = store.with_reads_from(Box::new(reader));
        }
        // A collector reports nothing: it holds no days.
        let segment_days = match cfg.role {
            crate::config::Role::Collector => 0,
            _ => i64::from(cfg.reports.segment_days),
        };
        store.segments().configure(
            segment_days,
            usize::try_from(cfg.reports.segment_memory_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
        );
        let store = Arc::new(store);
        let metrics = Arc::new(Metrics::default());
        let timeout_ms = i64::from(cfg.enrich.session_timeout_minutes) * 60_000;
        let mut event_writer = ingest::EventWriter::new(
            store
                .writer(cfg.ingest.synchronous)?
                .with_busy_timeout(Duration::from_millis(cfg.ingest.busy_timeout_ms))?,
            timeout_ms,
            metrics.clone(),
        )
        .with_dedupe_window(i64::from(cfg.ads.dedupe_days) * crate::clock::DAY_MS)
        .with_index_bounds(
            Duration::from_millis(cfg.ingest.index_interval_ms),
            cfg.ingest.index_max_rows,
            cfg.ingest.light_load_per_second,
        )
        .with_memory_bounds(cfg.ingest.max_unique_keys, cfg.ingest.max_open_sessions);
        let forwarding = cfg.store.backend == crate::config::Backend::Clickhouse;
        if forwarding {
            event_writer = event_writer.with_spool_bound(cfg.store.spool_max_events);
        }
        // Sessions open at the last stop, and the derived rows of events a crash left
        // unindexed, exactly as they would have been.
        event_writer.recover(clock.now_ms())?;
        // The first start of forwarding snapshots every rollup row and visit in one
        // transaction: here, before anything else can write, not beside the writer and
        // the salts (on a store of millions of events it outlasts their busy timeout).
        let spool = if forwarding {
            let mut spool = store.spool()?;
            spool.state()?;
            Some(spool)
        } else {
            None
        };
        // Hits answered before a crash that the store does not have yet are replayed
        // from the hit log by the indexer before anything else — also when this start
        // has the log turned off (`ingest.log_hold_ms = 0`: nothing new is appended).
        let committed = event_writer.logged()?;
        let log = ingest::hitlog::HitLog::open(
            &cfg.data_dir,
            committed,
            cfg.ingest.synchronous == crate::config::Synchronous::Full,
        )?;
        let (ingest, writer) = ingest::start(event_writer, &cfg.ingest, clock.clone(), log);
        let forwarder =
            spool.map(|spool| crate::forward::Forwarder::start(spool, &cfg.store, metrics.clone()));
        if cfg.role == crate::config::Role::Collector {
            // Sites, keys and salts from the admin before the first hit, if it can be
            // had quickly; otherwise the copy at hand, and the replicator catches up.
            match crate::replicate::first_sync(
                store.clone(),
                &cfg.store,
                clock.clone(),
                Duration::from_secs(5),
            ) {
                Ok(true) => tracing::info!("sites, keys and salts taken from the admin"),
                Ok(false) => tracing::warn!("no admin has published sites, keys and salts to ClickHouse yet: start `serve --role admin`"),
                Err(e) => tracing::warn!(error = %e, "cannot reach ClickHouse for the admin's sites, keys and salts: serving with the copy at hand"),
            }
        }
        let salts = Arc::new(SaltKeeper::new(cfg.enrich.salt_grace_minutes));
        salts.rotate(&store, clock.now_ms())?;
        let enricher = Enricher::configured(cfg)?;
        let keys = store.token_keys(clock.now_ms())?;
        let email = collect::email::EmailState::new(
            crate::token::Keyring::from_masters(keys),
            crate::enrich::networks::NetworkLists::new(&rt.scanner_networks),
            cfg.email.clone(),
        );
        enricher.warm_up();
        let collector = Arc::new(Collector {
            sites: Arc::new(collect::sites::SiteCache::new(store.clone())),
            refusals: Arc::default(),
            salts,
            store,
            enricher,
            ingest,
            metrics: metrics.clone(),
            clock,
            limits: cfg.limits.clone(),
            trusted_proxies: rt.trusted_proxies.clone(),
            country_headers: rt.country_headers.clone(),
            email,
            rate_limits: collect::limits::RateLimits::new(&cfg.limits),
        });
        let replicator = match cfg.role {
            crate::config::Role::All => None,
            role => {
                let c = collector.clone();
                Some(crate::replicate::Replicator::start(
                    role,
                    c.store.clone(),
                    &cfg.store,
                    c.clock.clone(),
                    Box::new(move || {
                        let now = c.clock.now_ms();
                        c.email.reload_keys(c.store.as_ref(), now);
                        if let Err(e) = c.salts.rotate(&c.store, now) {
                            tracing::error!(error = %e, "salt rotation failed");
                        }
                    }),
                )?)
            }
        };
        Ok(App {
            state: AppState {
                config: Arc::new(cfg.clone()),
                public_url: rt.public_url.clone(),
                collector,
                metrics,
                draining: Arc::new(AtomicBool::new(false)),
            },
            writer,
            forwarder,
            replicator,
        })
    }

    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Commits everything queued and waits for the writer thread to finish.
    /// Fails when the writer could not write everything it had acknowledged or queued.
    pub async fn finish(self) -> Result<(), LostEvents> {
        self.state.draining.store(true, Ordering::SeqCst);
        self.state.collector.ingest.shutdown().await;
        let writer = self.writer;
        let forwarder = self.forwarder;
        let replicator = self.replicator;
        let lost = match tokio::task::spawn_blocking(move || {
            if let Some(r) = replicator {
                r.stop();
            }
            let stopped = writer.join();
            // What is not shipped stays in the spool for the next start.
            if let Some(f) = forwarder {
                f.stop();
            }
            stopped
        })
        .await
        {
            Ok(Ok(stopped)) => stopped.lost,
            // The writer thread panicked: whatever it held is gone, count it unknown.
            _ => self
                .state
                .metrics
                .queue_depth
                .load(Ordering::Relaxed)
                .max(1) as u64,
        };
        match lost {
            0 => Ok(()),
            lost => Err(LostEvents { lost }),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let api = crate::api::router(crate::api::ApiState {
        store: state.collector.store.clone(),
        public_url: state.public_url.clone(),
        ads: crate::report::ads::Model::from_config(&state.config.ads),
        clock: state.collector.clock.clone(),
    });
    let c = state.collector.clone();
    let mut web_state = crate::web::WebState::new(
        c.store.clone(),
        c.clock.clone(),
        &state.public_url,
        Arc::new(move |peer, headers: &axum::http::HeaderMap| {
            let xff = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            collect::ip::client_ip(peer, xff, &c.trusted_proxies)
        }),
    );
    web_state.ads = crate::report::ads::Model::from_config(&state.config.ads);
    web_state.refusals = state.collector.refusals.clone();
    let web = crate::web::router(web_state);
    let collect = Router::new()
        .route("/p.gif", get(collect::pixel_gif).head(collect::pixel_head))
        .route("/p.png", get(collect::pixel_png).head(collect::pixel_head))
        .route(
            "/o/{file}",
            get(collect::email::open_get).head(collect::email::open_head),
        )
        .route(
            "/c/{token}",
            get(collect::email::click_get).head(collect::email::click_head),
        )
        .route(
            "/e",
            axum::routing::post(collect::web::event).options(collect::web::preflight),
        )
        .route("/t.js", get(collect::web::script))
        // Drop-in endpoints for Matomo's and Plausible's trackers. `/api/event` is a
        // collector route, not the JSON API's (which lives under `/api/v1`). `HEAD` of
        // Matomo's gets the image's headers and records nothing, as the pixel's does.
        .route(
            "/matomo.php",
            get(collect::matomo::track)
                .post(collect::matomo::track)
                .head(collect::pixel_head),
        )
        .route(
            "/piwik.php",
            get(collect::matomo::track)
                .post(collect::matomo::track)
                .head(collect::pixel_head),
        )
        .route("/api/event", axum::routing::post(collect::plausible::event))
        .route(
            "/u/{token}",
            get(collect::email::withdraw_get).post(collect::email::withdraw_post),
        )
        .with_state(state.collector.clone())
        .layer(tower::layer::layer_fn({
            let ingest = state.collector.ingest.clone();
            move |inner| CountArrivals {
                inner,
                ingest: ingest.clone(),
            }
        }));
    let state_role = state.config.role;
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/privacy", get(privacy))
        .fallback(not_found)
        .with_state(state);
    // A collector collects: the dashboard and the API are the admin's (its own
    // database holds only its spool and a copy of the admin's sites).
    if state_role == crate::config::Role::Collector {
        return collect.merge(ops);
    }
    collect.merge(api).merge(web).merge(ops)
}

async fn healthz(State(s): State<AppState>) -> &'static str {
    s.metrics.request(Route::Health);
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> Response {
    s.metrics.request(Route::Health);
    if s.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if s.metrics.spool_full.load(Ordering::Relaxed) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: forwarding to ClickHouse is store.spool_max_events behind; hits are refused as spool_full\n",
        )
            .into_response()
    } else if s.metrics.store_failing.load(Ordering::Relaxed) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: writes to the store are failing (see the log)\n",
        )
            .into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    s.metrics.request(Route::Metrics);
    let mut text = s.metrics.render();
    geo_metrics(&mut text, &s.collector.enricher.geo.status());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The geolocation databases' age and failed reloads (only those configured), so an
/// operator can alert on a database that stopped updating.
fn geo_metrics(s: &mut String, status: &[(&'static str, Option<u64>, u64)]) {
    use std::fmt::Write;
    if status.is_empty() {
        return;
    }
    s.push_str("# HELP pixeltrack_geo_database_build_timestamp_seconds When the geolocation database in use was built (its metadata), by setting.\n# TYPE pixeltrack_geo_database_build_timestamp_seconds gauge\n");
    for (key, built, _) in status {
        if let Some(b) = built {
            let _ = writeln!(
                s,
                "pixeltrack_geo_database_build_timestamp_seconds{{setting=\"{key}\"}} {b}"
            );
        }
    }
    s.push_str("# HELP pixeltrack_geo_reload_failures_total Replaced geolocation database files that could not be read (the database in use stayed).\n# TYPE pixeltrack_geo_reload_failures_total counter\n");
    for (key, _, failures) in status {
        let _ = writeln!(
            s,
            "pixeltrack_geo_reload_failures_total{{setting=\"{key}\"}} {failures}"
        );
    }
}

/// The privacy statement, generated from the live configuration and site settings.
/// `GET /privacy[?site=<domain or key>]`: the statement for one site's visitors. Without
/// a site it says what holds for every site but names none: which sites an installation
/// tracks is the operator's business (`pixeltrack privacy report` lists them all).
async fn privacy(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    s.metrics.request(Route::Other);
    let store = s.collector.store.clone();
    let sites = tokio::task::spawn_blocking(move || store.sites()).await;
    let Ok(Ok(sites)) = sites else {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response();
    };
    let shown = match q.get("site") {
        Some(wanted) => match crate::model::Site::find(&sites, wanted) {
            Some(site) => Some(std::slice::from_ref(site)),
            None => return (StatusCode::NOT_FOUND, "no such site here\n").into_response(),
        },
        None => None,
    };
    let text = crate::report::privacy::statement(&s.config, shown);
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn not_found(State(s): State<AppState>, uri: axum::http::Uri) -> Response {
    s.metrics.request(Route::Other);
    if uri.path().starts_with("/api/") {
        return crate::api::ApiError::NotFound(
            "no such API endpoint; see /api/v1/openapi.json".into(),
        )
        .into_response();
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// With no users at all, creates `admin` and prints its password once, to stderr
/// directly: a JSON log may be shipped elsewhere, a password must not be.
async fn first_start(app: &App, rt: &Runtime, local: SocketAddr) -> anyhow::Result<()> {
    let store = app.state.collector.store.clone();
    let now = app.state.collector.clock.now_ms();
    let created =
        tokio::task::spawn_blocking(move || crate::web::accounts::ensure_first_admin(&store, now))
            .await??;
    if let Some(password) = created {
        let base = if rt.config.public_url.is_empty() {
            format!("http://{local}")
        } else {
            rt.public_url.clone()
        };
        let notice = format!("pixeltrack: created user 'admin' with password {password} — sign in at {base}/login and change it with 'pixeltrack user passwd admin'");
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("{notice}");
        } else {
            // Standard error is a log file or a journal here, which may be shipped and kept:
            // the password goes to a file only its owner can read.
            let path = rt.config.data_dir.join(ADMIN_PASSWORD_FILE);
            write_private(&path, &format!("{notice}\n"))?;
            tracing::warn!(file = %path.display(), login = %format!("{base}/login"), "created user 'admin'; its password is in the file (readable by its owner only): sign in, change it with 'pixeltrack user passwd admin', then delete the file");
        }
    }
    Ok(())
}

/// Where the first admin password goes when standard error is not a terminal.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password.txt";

/// Writes `text` to a new file only its owner can read (0600).
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing the admin password to {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Serves until `shutdown` resolves, then drains and stops.
pub async fn serve(
    rt: Runtime,
    clock: Clock,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let app = App::build(&rt, clock.clone())?;
    let router = app.router();
    let local = listener.local_addr()?;
    if rt.config.role != crate::config::Role::Collector {
        first_start(&app, &rt, local).await?;
    }
    // Before "serving" is said: whoever waits for that line (an operator's script, the
    // tests) finds the limits in force.
    let open_files = conns::raise_open_files_limit();
    let limits = conns::ConnLimits::new(
        conns::max_connections(rt.config.limits.max_connections, open_files),
        rt.config.limits.max_connections_per_ip,
        rt.trusted_proxies.clone(),
        app.state.metrics.conns.clone(),
    );
    tracing::info!(listen = %local, data_dir = %rt.config.data_dir.display(), durability = ?rt.config.ingest.durability, "pixeltrack serving");

    let jobs = jobs::start(&app.state.collector);

    let mut http = hyper::server::conn::http1::Builder::new();
    // No header read timeout of hyper's: it boxed a timer for every request and took the
    // timer wheel's lock to arm and drop it (2 % of the HTTP threads' instructions and an
    // allocation a request, `docs/benchmarks.md`); `serve_watched` holds one a connection.
    http.max_buf_size(rt.config.limits.max_header_bytes)
        .keep_alive(true)
        .header_read_timeout(None);
    let head_timeout = Duration::from_secs(rt.config.limits.header_timeout_secs);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Past a limit: closed before anything is read (and counted).
                let Some(admitted) = limits.admit(peer.ip()) else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let activity = Arc::new(ConnActivity::new(app.state.metrics.conns.clone()));
                let svc = connection_service(
                    router.clone(),
                    app.state.collector.clone(),
                    peer,
                    activity.clone(),
                );
                let conn = http.serve_connection(TokioIo::new(stream), svc);
                let fut = graceful.watch(conn);
                let metrics = app.state.metrics.clone();
                tokio::spawn(async move {
                    let _admitted = admitted;
                    // Requests the HTTP layer refused before any handler ran: hyper has
                    // already answered 414/431/400; count them like any other drop.
                    if let Some(Err(e)) = serve_watched(fut, &activity, head_timeout).await {
                        if e.is_parse_too_large() {
                            metrics.dropped(DropReason::Oversized);
                        } else if e.is_parse() {
                            metrics.dropped(DropReason::InvalidInput);
                        }
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutdown requested: draining");
    app.state.draining.store(true, Ordering::SeqCst);
    drop(listener);
    // Every request a handler has started is finished, its whole answer sent (up to
    // the drain timeout); a connection still sending its request head (a slow or stuck
    // client) does not hold the stop.
    let conns = app.state.metrics.conns.clone();
    let answered = async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        while conns.requests_in_progress.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = answered => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("some requests did not finish within the drain timeout");
        }
    }
    // A day segment refresh under way (a minute or more on a big store) ends at its
    // next day.
    app.state.collector.store.segments().stop();
    let jobs_ended = jobs.stop(JOBS_STOP_TIMEOUT).await;
    let store = app.state.collector.store.clone();
    if let Err(e) = app.finish().await {
        tracing::error!(lost = e.lost, "stopped, but events were lost");
        return Err(e.into());
    }
    // Nothing of this process writes any more: the next start need not read every
    // page of a file nothing touched since.
    let noted = if jobs_ended {
        tokio::task::spawn_blocking(move || store.mark_clean_stop())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
    } else {
        Ok(false)
    };
    match noted {
        Ok(true) => {}
        Ok(false) => tracing::info!("the database is in use: the next start reads every page"),
        Err(e) => {
            tracing::warn!(error = %e, "noting the clean stop failed: the next start reads every page")
        }
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Counts collector requests in flight, from routing until the handler answers, so the
/// writer can tell a pause in the load. A plain wrapper: axum's `from_fn` middleware
/// boxed a future and a clone of the routes' service for every request.
#[derive(Clone)]
struct CountArrivals<S> {
    inner: S,
    ingest: ingest::IngestHandle,
}

impl<S, R> Service<R> for CountArrivals<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Arrived<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        Arrived {
            _arrival: self.ingest.arrival(),
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// A collector request's handler, counted in flight until it answers.
    struct Arrived<F> {
        #[pin]
        inner: F,
        _arrival: ingest::InFlight,
    }
}

impl<F: std::future::Future> std::future::Future for Arrived<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// The service of one connection: hyper's own, whose `call` runs at once, as hyper
/// dispatches the request. A tower service behind hyper-util's adapter was called only
/// at the future's first poll, after hyper had already read ahead for the next request
/// while this one's head was still held: every request took a fresh read buffer (and
/// a clone of the service). See `docs/benchmarks.md`.
fn connection_service(
    router: Router,
    collector: Arc<collect::Collector>,
    peer: SocketAddr,
    activity: Arc<ConnActivity>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> {
    hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let guard = InProgress::start(activity.clone());
        // `GET /p.gif` and `/p.png` are nearly every request a collector gets: parsed
        // here and recorded without the router (its matching, boxing and extensions
        // were about 8 % of a hit's instructions), by the handlers' own code.
        let to = if let Some(kind) = pixel_kind(&req) {
            let arrival = collector.ingest.arrival();
            let hit = collector.pixel_hit(kind, req.uri(), req.headers(), peer.ip());
            To::Pixel(kind, hit, arrival, collector.clone())
        } else {
            req.extensions_mut().insert(ConnectInfo(peer));
            match direct_route(&req) {
                // The collector's other requests (`Direct`): their handlers without the
                // router, as the router would call them (counted in flight as
                // `CountArrivals` does).
                Some(route) => To::Direct(
                    route,
                    Box::new(req),
                    collector.ingest.arrival(),
                    collector.clone(),
                ),
                None => To::Router(router.clone(), Box::new(req)),
            }
        };
        async move {
            let res = match to {
                To::Pixel(kind, hit, arrival, c) => {
                    let res = c.pixel(kind, hit).await;
                    drop(arrival);
                    Ok(res)
                }
                To::Direct(route, req, arrival, c) => {
                    let res = direct(route, *req, c).await;
                    drop(arrival);
                    Ok(res)
                }
                To::Router(mut r, req) => r.call(req.map(axum::body::Body::new)).await,
            };
            // In progress until the body is sent (or the connection drops).
            res.map(|res| {
                res.map(|body| {
                    axum::body::Body::new(Guarded {
                        body,
                        _guard: guard,
                    })
                })
            })
        }
    })
}

/// Where the connection's service sends a request.
enum To {
    /// A pixel's hit, parsed, counted in flight until it is answered.
    Pixel(
        collect::Kind,
        Result<Box<crate::model::RawHit>, crate::model::DropReason>,
        ingest::InFlight,
        Arc<collect::Collector>,
    ),
    /// A collector request [`direct_route`] names (boxed, as below).
    Direct(
        Direct,
        Box<hyper::Request<hyper::body::Incoming>>,
        ingest::InFlight,
        Arc<collect::Collector>,
    ),
    /// Any other request (boxed: the pixel's future stays small).
    Router(Router, Box<hyper::Request<hyper::body::Incoming>>),
}

/// The collector's requests other than the pixel's, called without the router: its
/// matching, boxing and layers were a fifth of an email open's CPU on the HTTP threads
/// (`bench-pixel.sh --mix email`), 8 % of a tracker event's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direct {
    /// `GET /o/<file>`
    Open,
    /// `GET /c/<token>`
    Click,
    /// `POST /e`, the tracker's events.
    Event,
    /// `GET` or `POST /matomo.php` (or `/piwik.php`), Matomo's tracker.
    Matomo,
    /// `POST /api/event`, Plausible's tracker.
    Plausible,
}

/// Which of [`Direct`]'s routes the router would give this request to: for `/o/` and
/// `/c/`, one non-empty path segment, as their `Path` extractor takes it; one holding
/// a `%` goes to the router, which decodes it (a token never has one).
fn direct_route<B>(req: &hyper::Request<B>) -> Option<Direct> {
    let path = req.uri().path();
    let post = req.method() == hyper::Method::POST;
    if !post && req.method() != hyper::Method::GET {
        return None;
    }
    match path {
        "/matomo.php" | "/piwik.php" => return Some(Direct::Matomo),
        "/e" if post => return Some(Direct::Event),
        "/api/event" if post => return Some(Direct::Plausible),
        _ if post => return None,
        _ => {}
    }
    let route = match path.get(..3)? {
        "/o/" => Direct::Open,
        "/c/" => Direct::Click,
        _ => return None,
    };
    let segment = &path[3..];
    (!segment.is_empty() && !segment.contains(['/', '%'])).then_some(route)
}

/// Answers a request [`direct_route`] named, with the handler the router would call.
async fn direct(
    route: Direct,
    req: hyper::Request<hyper::body::Incoming>,
    c: Arc<collect::Collector>,
) -> Response {
    match route {
        Direct::Event => collect::web::event(State(c), req.map(axum::body::Body::new)).await,
        Direct::Matomo => collect::matomo::track(State(c), req.map(axum::body::Body::new)).await,
        Direct::Plausible => {
            collect::plausible::event(State(c), req.map(axum::body::Body::new)).await
        }
        Direct::Open | Direct::Click => {
            let (parts, _) = req.into_parts();
            let segment = &parts.uri.path()[3..];
            match route {
                Direct::Open => c.open(segment, &parts).await,
                _ => c.click(segment, &parts).await,
            }
        }
    }
}

/// Which pixel a request asks for, when it is a `GET` of one.
fn pixel_kind<B>(req: &hyper::Request<B>) -> Option<collect::Kind> {
    if req.method() != hyper::Method::GET {
        return None;
    }
    match req.uri().path() {
        "/p.gif" => Some(collect::Kind::Gif),
        "/p.png" => Some(collect::Kind::Png),
        _ => None,
    }
}

/// What one connection's requests are doing, for [`serve_watched`] (and the server's
/// count of requests in progress, which the drain waits for).
struct ConnActivity {
    stats: Arc<crate::metrics::ConnStats>,
    /// Requests whose head was read (handed to the service).
    started: AtomicU64,
    /// Of those, the ones whose answer is not sent yet.
    open: AtomicU64,
}

impl ConnActivity {
    fn new(stats: Arc<crate::metrics::ConnStats>) -> ConnActivity {
        ConnActivity {
            stats,
            started: AtomicU64::new(0),
            open: AtomicU64::new(0),
        }
    }
}

/// A request in progress, from its head until its answer is sent (or the connection
/// drops).
struct InProgress(Arc<ConnActivity>);

impl InProgress {
    fn start(c: Arc<ConnActivity>) -> InProgress {
        c.started.fetch_add(1, Ordering::Relaxed);
        c.open.fetch_add(1, Ordering::Relaxed);
        c.stats.requests_in_progress.fetch_add(1, Ordering::AcqRel);
        InProgress(c)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0
            .stats
            .requests_in_progress
            .fetch_sub(1, Ordering::AcqRel);
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves a connection until it ends — or closes it once it has gone `timeout` (up to a
/// quarter more) without a request head arriving while none of its answers was being
/// sent: a client sending its head slowly (slowloris) or holding an idle keep-alive
/// connection. One timer a connection, looked at four times a `timeout`, where hyper's
/// header timeout armed and dropped one a request. `None`: closed so. A `timeout` of
/// zero: never.
async fn serve_watched<F: std::future::Future>(
    conn: F,
    activity: &ConnActivity,
    timeout: Duration,
) -> Option<F::Output> {
    if timeout.is_zero() {
        return Some(conn.await);
    }
    let every = timeout / 4;
    let mut conn = std::pin::pin!(conn);
    let mut check = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = activity.started.load(Ordering::Relaxed);
    let mut active_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            out = &mut conn => return Some(out),
            now = check.tick() => {
                let started = activity.started.load(Ordering::Relaxed);
                if started != seen || activity.open.load(Ordering::Relaxed) > 0 {
                    seen = started;
                    active_at = now;
                } else if now.duration_since(active_at) >= timeout {
                    return None;
                }
            }
        }
    }
}

/// A response body that holds its request's [`InProgress`] until it is dropped.
struct Guarded {
    body: axum::body::Body,
    _guard: InProgress,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: hyper::Method, uri: &str) -> hyper::Request<()> {
        hyper::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
    }

    #[test]
    fn collector_hits_skip_the_router_only_where_it_would_call_their_handler() {
        use hyper::Method;
        let route = |m: Method, uri| direct_route(&req(m, uri));
        assert_eq!(route(Method::GET, "/o/abc.gif?r=x"), Some(Direct::Open));
        assert_eq!(route(Method::GET, "/c/abc"), Some(Direct::Click));
        assert_eq!(route(Method::POST, "/e"), Some(Direct::Event));
        assert_eq!(route(Method::POST, "/api/event"), Some(Direct::Plausible));
        for m in [Method::GET, Method::POST] {
            assert_eq!(route(m.clone(), "/matomo.php"), Some(Direct::Matomo));
            assert_eq!(route(m, "/piwik.php?idsite=1"), Some(Direct::Matomo));
        }
        // What the router would not give those handlers, or would decode first: left
        // to it.
        for uri in [
            "/o/",
            "/c/",
            "/o/a/b",
            "/c/a%2Fb",
            "/o",
            "/oo/a",
            "/x/o/a",
            "/e",
            "/api/event",
        ] {
            assert_eq!(route(Method::GET, uri), None, "{uri}");
        }
        assert_eq!(route(Method::HEAD, "/o/abc.gif"), None);
        assert_eq!(route(Method::POST, "/c/abc"), None);
        assert_eq!(route(Method::POST, "/e/"), None);
        assert_eq!(route(Method::OPTIONS, "/e"), None);
        assert_eq!(route(Method::HEAD, "/matomo.php"), None);
    }
}
