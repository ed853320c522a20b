//! `pixeltrack serve`: the server (pixels, API, dashboard, health and metrics), with
//! its listen address and logging taken from flags over the configuration.

use anyhow::Context;
use clap::ValueEnum;

use super::args::Ctx;
use crate::config::{LogFormat, Runtime};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8080.
    #[arg(long)]
    listen: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Log filter, e.g. `info` or `pixeltrack=debug`.
    #[arg(long)]
    log_level: Option<String>,
    /// `all` (default: collect and report from this data directory); in a scaled-out
    /// installation, `admin` (dashboard and API over what every collector forwarded to
    /// ClickHouse; publishes sites, keys, salts and consent) or `collector` (collects
    /// and forwards; takes those from the admin). Overrides `role` in the configuration.
    #[arg(long, value_enum)]
    role: Option<RoleArg>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    All,
    Admin,
    Collector,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

impl ServeArgs {
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let mut flags: Vec<(&str, toml::Value)> = Vec::new();
        if let Some(l) = &self.listen {
            flags.push(("listen", toml::Value::String(l.clone())));
        }
        if let Some(f) = self.log_format {
            let f = match f {
                LogFormatArg::Text => "text",
                LogFormatArg::Json => "json",
            };
            flags.push(("log_format", toml::Value::String(f.into())));
        }
        if let Some(l) = &self.log_level {
            flags.push(("log_level", toml::Value::String(l.clone())));
        }
        if let Some(r) = self.role {
            let r = match r {
                RoleArg::All => "all",
                RoleArg::Admin => "admin",
                RoleArg::Collector => "collector",
            };
            flags.push(("role", toml::Value::String(r.into())));
        }
        let rt = ctx.runtime_with(&flags)?;
        init_logging(&rt);
        serve(rt, ctx)
    }
}

fn serve(rt: Runtime, ctx: &Ctx) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(rt.config.http_threads())
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let clock = ctx.clock.clone();
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(rt.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is another server running? try --listen 127.0.0.1:8081)",
                    rt.listen
                )
            })?;
        crate::server::serve(rt, clock, listener, crate::server::shutdown_signal()).await
    });
    // Everything queued is written by now; a periodic job still waiting for a database
    // lock another process holds (up to its busy timeout) must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn init_logging(rt: &Runtime) {
    let filter = tracing_subscriber::EnvFilter::new(&rt.config.log_level);
    // Colours only for a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match rt.config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
