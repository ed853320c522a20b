//! Login throttling, in memory. The first few failures are free (typos); after that
//! each further failure doubles a lockout, capped, so online guessing runs at a handful
//! of tries per hour. Three counters:
//! - per name *and* address: 5 free failures. Guessing a name from one address locks
//!   that address out of that name only — not the account's owner elsewhere, so no one
//!   can keep an account (say `admin`) locked out from their own address;
//! - per address, whatever the names: 20 (offices share an address);
//! - per name, from every address together: 100 — this slows a guessing botnet, and
//!   then refuses the name from every address *except those it signed in from before*
//!   (remembered for 30 days), so even that cannot lock the owner out.
//!
//! IPv6 clients are counted per /64, since one host can use a whole /64. A restart
//! forgets everything, which costs an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::clock::{Millis, HOUR_MS};

/// Failures per username and address before lockouts start (OWASP suggests a small
/// number).
pub const USER_FREE_FAILURES: u32 = 5;
/// Failures per username from all addresses together before unknown addresses are
/// locked out of it.
pub const NAME_FREE_FAILURES: u32 = 100;
/// How long an address a user signed in from stays known.
const KNOWN_FOR_MS: Millis = 30 * 24 * HOUR_MS;
/// Addresses remembered per user.
const KNOWN_PER_USER: usize = 16;
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
    Pair(String, IpAddr),
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
    /// Per username: the addresses (IPv4, IPv6 /64) it signed in from, and when.
    known: Mutex<HashMap<String, Vec<(IpAddr, Millis)>>>,
}

fn name(username: &str) -> String {
    username.trim().to_lowercase()
}

fn user_key(username: &str) -> Key {
    Key::User(name(username))
}

fn pair_key(username: &str, ip: IpAddr) -> Key {
    Key::Pair(name(username), net(ip))
}

fn net_key(ip: IpAddr) -> Key {
    Key::Net(net(ip))
}

/// The address as counted: IPv4 as is, IPv6 by its /64.
fn net(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
        },
        v4 => v4,
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
        let is_locked = |k: &Key| keys.get(k).is_some_and(|e| e.locked_until_ms > now);
        is_locked(&pair_key(username, ip))
            || is_locked(&net_key(ip))
            || (is_locked(&user_key(username)) && !self.known(username, ip, now))
    }

    /// Whether `username` signed in from `ip` (its /64) within `KNOWN_FOR_MS`.
    fn known(&self, username: &str, ip: IpAddr, now: Millis) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.get(&name(username)).is_some_and(|v| {
            v.iter()
                .any(|(n, at)| *n == net(ip) && now - *at < KNOWN_FOR_MS)
        })
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
            (pair_key(username, ip), USER_FREE_FAILURES),
            (net_key(ip), IP_FREE_FAILURES),
            (user_key(username), NAME_FREE_FAILURES),
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

    /// A successful sign-in clears the name's count from this address (not the
    /// address's: one good account must not reset an address that is guessing at
    /// others) and remembers the address as one the user signs in from.
    pub fn succeeded(&self, username: &str, ip: IpAddr, now: Millis) {
        self.entries().remove(&pair_key(username, ip));
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_KEYS && !known.contains_key(&name(username)) {
            return;
        }
        let v = known.entry(name(username)).or_default();
        v.retain(|(n, at)| *n != net(ip) && now - *at < KNOWN_FOR_MS);
        if v.len() >= KNOWN_PER_USER {
            v.remove(0);
        }
        v.push((net(ip), now));
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
        assert!(
            !t.locked("ann", "203.0.113.1".parse().unwrap(), 10),
            "only from the guessing address"
        );
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
        t.succeeded("ann", IP, 1);
        assert!(!t.locked("ann", IP, 2));
    }

    /// Guessing `admin` from many addresses slows the guessing, but never locks the
    /// owner out of an address they signed in from; one address guessing locks only
    /// itself out.
    #[test]
    fn no_one_can_keep_the_owner_locked_out() {
        let t = Throttle::default();
        let home: IpAddr = "192.0.2.10".parse().unwrap();
        t.succeeded("admin", home, 0);
        for i in 0..NAME_FREE_FAILURES + 10 {
            let attacker: IpAddr = format!("203.0.{}.{}", i / 200, i % 200 + 1)
                .parse()
                .unwrap();
            t.failed("admin", attacker, 1);
        }
        assert!(
            !t.locked("admin", home, 2),
            "the owner's address stays open"
        );
        assert!(
            t.locked("admin", "198.51.100.99".parse().unwrap(), 2),
            "an unknown address is refused after a distributed attack"
        );
        assert!(!t.locked("admin", home, KNOWN_FOR_MS - 1));
        let t = Throttle::default();
        for _ in 0..50 {
            t.failed("admin", IP, 1);
        }
        assert!(t.locked("admin", IP, 2));
        assert!(!t.locked("admin", "192.0.2.10".parse().unwrap(), 2));
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
