//! What commands share: the global flags and the context built from them (the layered
//! configuration, the store it names, the clock), `--from`/`--to` as a date range, and
//! `--site` with the one rule for picking a site by key or domain. Commands flatten
//! these instead of declaring their own, so the flags read and behave alike everywhere.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::clock::{day_of, Clock, Millis};
use crate::config::{Config, Runtime};
use crate::model::Site;
use crate::report::DateRange;
use crate::store::{SiteStore, SqliteStore};

/// Flags every command takes.
#[derive(clap::Args, Debug)]
pub struct Global {
    /// Data directory (overrides `data_dir` from the config file and PIXELTRACK_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Configuration file (TOML). See README "Configuration".
    #[arg(long, global = true, value_name = "FILE", env = "PIXELTRACK_CONFIG")]
    config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

/// What a command runs with: the global flags and the clock.
pub struct Ctx {
    global: Global,
    /// `--json`: machine-readable output.
    pub json: bool,
    pub clock: Clock,
}

impl Ctx {
    pub fn new(global: Global, clock: Clock) -> Ctx {
        let json = global.json;
        Ctx {
            global,
            json,
            clock,
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The configuration, checked: defaults, the file, the environment, `--data`, then
    /// the command's own `flags`.
    pub fn runtime_with(&self, flags: &[(&str, toml::Value)]) -> anyhow::Result<Runtime> {
        let mut overrides: Vec<(&str, toml::Value)> = flags.to_vec();
        if let Some(d) = &self.global.data {
            overrides.push(("data_dir", toml::Value::String(d.display().to_string())));
        }
        let env = std::env::vars().filter(|(k, _)| k != "PIXELTRACK_CONFIG");
        Ok(Config::load(self.global.config.as_deref(), env, &overrides)?.validate()?)
    }

    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        self.runtime_with(&[])
    }

    /// The configuration and the store in its data directory. The CLI picks the backend
    /// here; commands that use SQLite-only operations (the writer, checkpoints,
    /// accounts) keep the concrete SQLite store, the others take the store traits.
    pub fn open(&self) -> anyhow::Result<(Runtime, SqliteStore)> {
        let rt = self.runtime()?;
        let store = SqliteStore::open(&rt.config.data_dir).with_context(|| {
            format!(
                "opening the data directory {}",
                rt.config.data_dir.display()
            )
        })?;
        Ok((rt, store))
    }

    /// The store, for commands that need nothing else from the configuration.
    pub fn store(&self) -> anyhow::Result<SqliteStore> {
        Ok(self.open()?.1)
    }
}

/// `--source`: where a reading command takes events and rollups from.
#[derive(clap::Args, Debug)]
pub struct ReadFrom {
    /// Where events and rollups are read from: `sqlite` (this data directory) or
    /// `clickhouse` (what was forwarded there; needs `store.backend = "clickhouse"`).
    /// Sites, campaigns and settings are read from the data directory either way.
    #[arg(long, value_enum, default_value_t = Source::Sqlite)]
    source: Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Sqlite,
    Clickhouse,
}

impl ReadFrom {
    /// `store`, reading its events and rollups from ClickHouse when asked to.
    pub fn apply(&self, rt: &Runtime, store: SqliteStore) -> anyhow::Result<SqliteStore> {
        Ok(match self.source {
            Source::Sqlite => store,
            Source::Clickhouse => {
                if rt.config.store.backend != crate::config::Backend::Clickhouse {
                    bail!("--source clickhouse needs store.backend = \"clickhouse\" (and its url, database, user, password) in the configuration");
                }
                let reader =
                    crate::store::clickhouse::reader::ClickHouseReader::new(&rt.config.store)?;
                store.with_reads_from(Box::new(reader))
            }
        })
    }
}

/// `--from` and `--to`: whole UTC days, both included.
#[derive(clap::Args, Debug)]
pub struct Days {
    /// First day, YYYY-MM-DD (UTC). Default: 29 days before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC), included. Default: today.
    #[arg(long)]
    pub to: Option<String>,
}

impl Days {
    /// The range: `--to` or today, `--from` or `default_days` before it.
    pub fn range(&self, now: Millis, default_days: i64) -> anyhow::Result<DateRange> {
        let day = |s: &str, flag: &str| {
            DateRange::parse_date(s)
                .with_context(|| format!("{flag} {s:?} is not a date like 2026-01-31"))
        };
        let to_day = match &self.to {
            Some(t) => day(t, "--to")?,
            None => day_of(now),
        };
        let from_day = match &self.from {
            Some(f) => day(f, "--from")?,
            None => to_day - default_days,
        };
        if from_day > to_day {
            bail!("--from is after --to");
        }
        Ok(DateRange { from_day, to_day })
    }
}

/// `--site SITE`, required.
#[derive(clap::Args, Debug)]
pub struct SiteArg {
    /// Site key or domain.
    #[arg(long)]
    pub site: String,
}

impl SiteArg {
    pub fn find(&self, store: &(impl SiteStore + ?Sized)) -> anyhow::Result<Site> {
        pick_site(store, Some(&self.site))
    }
}

/// `--site SITE`, which may be left out when there is one site.
#[derive(clap::Args, Debug)]
pub struct SiteOrOnly {
    /// Site key or domain (optional when there is one site).
    #[arg(long)]
    pub site: Option<String>,
}

impl SiteOrOnly {
    pub fn find(&self, store: &(impl SiteStore + ?Sized)) -> anyhow::Result<Site> {
        pick_site(store, self.site.as_deref())
    }
}

/// Finds a site by key or domain (`Site::find`); with no argument, the only site.
pub fn pick_site(store: &(impl SiteStore + ?Sized), wanted: Option<&str>) -> anyhow::Result<Site> {
    let sites = store.sites()?;
    match wanted {
        Some(w) => Site::find(&sites, w)
            .cloned()
            .with_context(|| format!("no site '{w}': list sites with 'pixeltrack site list' or create it with 'pixeltrack site add {w}'")),
        None => match sites.len() {
            0 => bail!("no sites yet: create one with 'pixeltrack site add example.com'"),
            1 => Ok(sites.into_iter().next().expect("one site")),
            _ => bail!(
                "there are {} sites; pick one with --site ({})",
                sites.len(),
                sites.iter().map(|s| s.domain.as_str()).collect::<Vec<_>>().join(", ")
            ),
        },
    }
}

/// `Some(site id)` when `site` names one.
pub fn site_id(
    store: &(impl SiteStore + ?Sized),
    site: Option<&str>,
) -> anyhow::Result<Option<i64>> {
    site.map(|s| pick_site(store, Some(s)).map(|s| s.id.0))
        .transpose()
}
