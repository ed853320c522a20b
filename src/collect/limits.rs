//! Rate limits on web hits (pixels and tracker events): per client IP and per site,
//! with `governor` (GCRA, keyed). A limited hit still gets its answer — the image, or
//! a `429` for the tracker — and is counted as `rate_limited`; it is not stored.
//! Email opens and clicks are not limited: Apple's and Google's proxies fetch for
//! thousands of recipients from a few addresses.
//!
//! Memory: one entry per key seen within its window, dropped by `forget_idle` (a
//! server job, every minute).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;
use crate::model::DropReason;

pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_site: Option<DefaultKeyedRateLimiter<i64>>,
}

impl RateLimits {
    pub fn new(c: &LimitsConfig) -> RateLimits {
        RateLimits {
            per_ip: NonZeroU32::new(c.per_ip_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            per_site: NonZeroU32::new(c.per_site_per_second)
                .map(|n| RateLimiter::keyed(Quota::per_second(n))),
        }
    }

    /// Takes one hit from the client's and the site's allowance.
    pub fn check(&self, ip: IpAddr, site_id: i64) -> Result<(), DropReason> {
        if let Some(l) = &self.per_ip {
            if l.check_key(&ip).is_err() {
                return Err(DropReason::RateLimited);
            }
        }
        if let Some(l) = &self.per_site {
            if l.check_key(&site_id).is_err() {
                return Err(DropReason::RateLimited);
            }
        }
        Ok(())
    }

    /// Forgets clients and sites whose allowance is full again (as if never seen).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_site {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Clients and sites currently tracked.
    pub fn len(&self) -> usize {
        self.per_ip.as_ref().map_or(0, |l| l.len()) + self.per_site.as_ref().map_or(0, |l| l.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: u32, per_site: u32) -> RateLimits {
        let mut c = crate::config::Config::default().limits;
        c.per_ip_per_minute = per_ip;
        c.per_site_per_second = per_site;
        RateLimits::new(&c)
    }

    #[test]
    fn one_client_is_held_to_its_allowance_others_are_not() {
        let l = limits(10, 0);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let passed = (0..50).filter(|_| l.check(a, 1).is_ok()).count();
        assert_eq!(passed, 10, "the burst is one minute's allowance");
        assert_eq!(l.check(a, 1), Err(DropReason::RateLimited));
        assert_eq!(l.check(b, 1), Ok(()), "another client is not affected");
    }

    #[test]
    fn a_site_limit_caps_all_clients_together() {
        let l = limits(0, 5);
        let passed = (0..20u8)
            .filter(|i| l.check(IpAddr::from([203, 0, 113, *i]), 7).is_ok())
            .count();
        assert_eq!(passed, 5);
        assert!(
            l.check(IpAddr::from([203, 0, 113, 99]), 8).is_ok(),
            "other sites are not"
        );
    }

    #[test]
    fn zero_switches_a_limit_off() {
        let l = limits(0, 0);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        assert!((0..10_000).all(|_| l.check(a, 1).is_ok()));
        assert!(l.is_empty());
    }
}
