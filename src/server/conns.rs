//! Connection limits: at most `limits.max_connections` open at once, at most
//! `limits.max_connections_per_ip` from one client address (trusted proxies exempt:
//! every visitor behind them shares their address). A connection past a limit is
//! closed at once, before anything is read, and counted. Also raises the process's
//! open-files limit, so the connection limit is what binds, not the descriptor table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

pub use crate::metrics::ConnStats;

/// Descriptors kept free for the database, logs and the listener.
const RESERVED_FDS: u64 = 256;

/// Raises the soft limit on open files to the hard limit (capped at 1 M) and returns
/// the limit in force.
pub fn raise_open_files_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // `None` is unlimited.
    let lim = getrlimit(Resource::Nofile);
    let before = lim.current.unwrap_or(u64::MAX);
    let want = lim.maximum.unwrap_or(u64::MAX).min(1 << 20);
    if want > before {
        let raised = Rlimit {
            current: Some(want),
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            tracing::info!(from = before, to = want, "raised the open-files limit");
            return want;
        }
    }
    before
}

/// The connection limit: `configured`, or (0) what the open-files limit allows.
pub fn max_connections(configured: usize, open_files: u64) -> usize {
    if configured > 0 {
        configured
    } else {
        open_files.saturating_sub(RESERVED_FDS).max(64) as usize
    }
}

pub struct ConnLimits {
    max: usize,
    per_ip: usize,
    exempt: Vec<IpNet>,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
    pub stats: Arc<ConnStats>,
}

/// An admitted connection; dropping it frees its place.
pub struct Admitted {
    limits: Arc<ConnLimits>,
    ip: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.limits.stats.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut m = self.limits.by_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        }
    }
}

impl ConnLimits {
    pub fn new(max: usize, per_ip: usize, exempt: Vec<IpNet>, stats: Arc<ConnStats>) -> Arc<Self> {
        Arc::new(ConnLimits {
            max,
            per_ip,
            exempt,
            by_ip: Mutex::new(HashMap::new()),
            stats,
        })
    }

    /// Admits a connection from `ip`, or None (counted) when a limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        if self.stats.open.load(Ordering::Acquire) >= self.max as i64 {
            self.stats.refused_total.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let counted = self.per_ip > 0 && !self.exempt.iter().any(|n| n.contains(&ip));
        if counted {
            let mut m = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_insert(0);
            if *n >= self.per_ip {
                self.stats.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            *n += 1;
        }
        self.stats.open.fetch_add(1, Ordering::AcqRel);
        Some(Admitted {
            limits: self.clone(),
            ip: counted.then_some(ip),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_overall_and_frees_on_drop() {
        let l = ConnLimits::new(5, 2, vec!["10.0.0.0/8".parse().unwrap()], Arc::default());
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let first = l.admit(a).unwrap();
        let _second = l.admit(a).unwrap();
        assert!(l.admit(a).is_none(), "a third from one address");
        drop(first);
        let _third = l.admit(a).expect("a place freed");
        // A trusted proxy carries many visitors: only the overall limit applies.
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let _p: Vec<_> = (0..3).map(|_| l.admit(proxy).unwrap()).collect();
        assert!(l.admit(proxy).is_none(), "the overall limit");
        assert_eq!(l.stats.refused_per_ip.load(Ordering::Relaxed), 1);
        assert_eq!(l.stats.refused_total.load(Ordering::Relaxed), 1);
        assert_eq!(l.stats.open.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn the_default_follows_the_open_files_limit() {
        assert_eq!(max_connections(0, 1024), 768);
        assert_eq!(max_connections(0, 100), 64);
        assert_eq!(max_connections(500, 1 << 20), 500);
    }
}
