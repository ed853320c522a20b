//! Login throttling, in memory: per username and per client address. The first few
//! failures are free (typos); after that each further failure doubles a lockout, capped,
//! so online guessing runs at a handful of tries per hour. Per-address limits are looser
//! than per-name ones (offices share an address); IPv6 clients are counted per /64,
//! since one host can use a whole /64. A restart forgets everything, which costs an
//! attacker a restart they cannot cause.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::clock::{Millis, HOUR_MS};

/// Failures per username before lockouts start (OWASP suggests a small number).
pub const USER_FREE_FAILURES: u32 = 5;
/// Failures per client address (IPv4, or IPv6 /64) before lockouts start.
pub const IP_FREE_FAILURES: u32 = 20;
/// The first lockout; each further failure doubles it.
pub const BASE_LOCK_MS: Millis = 60_000;
/// The longest lockout.
pub const MAX_LOCK_MS: Millis = 15 * 60_000;
/// A key with no failure for this long starts from zero again.
const FORGET_AFTER_MS: Millis = HOUR_MS;
/// Bound on remembered keys, so a flood of made-up names cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Net(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last_ms: Millis,
    locked_until_ms: Millis,
}

#[derive(Default)]
pub struct Throttle {
    keys: Mutex<HashMap<Key, Entry>>,
}

fn user_key(username: &str) -> Key {
    Key::User(username.trim().to_lowercase())
}

fn net_key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Key::Net(IpAddr::V4(v4)),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                Key::Net(IpAddr::from(o))
            }
        },
        v4 => Key::Net(v4),
    }
}

fn lock_for(failures: u32, free: u32) -> Millis {
    if failures < free {
        return 0;
    }
    let doublings = (failures - free).min(20);
    BASE_LOCK_MS.saturating_mul(1 << doublings).min(MAX_LOCK_MS)
}

impl Throttle {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The map holds counters only; one half-updated by a panicking thread is harmless.
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an attempt for `username` from `ip` must be refused now.
    pub fn locked(&self, username: &str, ip: IpAddr, now: Millis) -> bool {
        let keys = self.entries();
        [user_key(username), net_key(ip)]
            .iter()
            .any(|k| keys.get(k).is_some_and(|e| e.locked_until_ms > now))
    }

    /// Counts a failed (or refused) attempt against the name and the address.
    pub fn failed(&self, username: &str, ip: IpAddr, now: Millis) {
        let mut keys = self.entries();
        if keys.len() >= MAX_KEYS {
            keys.retain(|_, e| e.locked_until_ms > now || now - e.last_ms < FORGET_AFTER_MS);
            if keys.len() >= MAX_KEYS {
                // Still full: forget the stalest key rather than grow without bound.
                if let Some(k) = keys
                    .iter()
                    .min_by_key(|(_, e)| e.last_ms)
                    .map(|(k, _)| k.clone())
                {
                    keys.remove(&k);
                }
            }
        }
        for (key, free) in [
            (user_key(username), USER_FREE_FAILURES),
            (net_key(ip), IP_FREE_FAILURES),
        ] {
            let e = keys.entry(key).or_insert(Entry {
                failures: 0,
                last_ms: now,
                locked_until_ms: 0,
            });
            if e.locked_until_ms <= now && now - e.last_ms >= FORGET_AFTER_MS {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_ms = now;
            let lock = lock_for(e.failures, free);
            if lock > 0 {
                e.locked_until_ms = e.locked_until_ms.max(now + lock);
            }
        }
    }

    /// A successful sign-in clears the name's count (not the address's: one good
    /// account must not reset an address that is guessing at others).
    pub fn succeeded(&self, username: &str) {
        self.entries().remove(&user_key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    #[test]
    fn five_failures_lock_the_name_with_doubling_capped_lockouts() {
        let t = Throttle::default();
        for i in 0..USER_FREE_FAILURES - 1 {
            t.failed("Ann", IP, i as Millis);
            assert!(!t.locked("ann", IP, i as Millis));
        }
        t.failed("ann ", IP, 10);
        assert!(t.locked("ANN", IP, 10));
        assert!(t.locked("ann", "203.0.113.1".parse().unwrap(), 10 + BASE_LOCK_MS - 1));
        assert!(!t.locked("ann", IP, 10 + BASE_LOCK_MS));
        assert!(
            !t.locked("bob", IP, 10),
            "another name from the same address is free"
        );
        t.failed("ann", IP, 10 + BASE_LOCK_MS);
        assert!(t.locked("ann", IP, 10 + 3 * BASE_LOCK_MS - 1), "doubled");
        assert_eq!(lock_for(100, 5), MAX_LOCK_MS);
        assert_eq!(lock_for(u32::MAX, 5), MAX_LOCK_MS);
    }

    #[test]
    fn an_address_guessing_many_names_is_locked() {
        let t = Throttle::default();
        for i in 0..IP_FREE_FAILURES {
            t.failed(&format!("user{i}"), IP, 1);
        }
        assert!(t.locked("someone-new", IP, 2));
        assert!(!t.locked("someone-new", "198.51.100.8".parse().unwrap(), 2));
    }

    #[test]
    fn ipv6_counts_per_64_and_success_clears_the_name_only() {
        let t = Throttle::default();
        for i in 0..IP_FREE_FAILURES {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            t.failed(&format!("u{i}"), ip, 1);
        }
        assert!(t.locked("x", "2001:db8::ffff".parse().unwrap(), 2));
        assert!(!t.locked("x", "2001:db8:0:1::1".parse().unwrap(), 2));
        for _ in 0..USER_FREE_FAILURES {
            t.failed("ann", IP, 1);
        }
        t.succeeded("ann");
        assert!(!t.locked("ann", IP, 2));
    }

    #[test]
    fn quiet_keys_start_over() {
        let t = Throttle::default();
        for _ in 0..USER_FREE_FAILURES - 1 {
            t.failed("ann", IP, 0);
        }
        t.failed("ann", IP, FORGET_AFTER_MS + 1);
        assert!(!t.locked("ann", IP, FORGET_AFTER_MS + 1));
    }
}
