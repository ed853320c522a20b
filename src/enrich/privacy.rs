//! The privacy rules applied to every hit before it is stored: whether it may carry
//! identifiers at all (site mode, consent, Global Privacy Control, Do Not Track), how
//! a hit without that permission is reduced to an anonymous count, and the removal of
//! email addresses from URLs, titles and props.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::model::{DropReason, Event, Privacy, PrivacyMode, RawHit, WithoutConsent};

/// `Ok(true)`: store with identifiers; `Ok(false)`: store reduced; `Err`: drop.
pub fn may_identify(hit: &RawHit, p: &Privacy) -> Result<bool, DropReason> {
    if p.mode == PrivacyMode::Off {
        return Err(DropReason::TrackingOff);
    }
    let opted_out = (p.honour_gpc && hit.gpc) || (p.honour_dnt && hit.dnt);
    let consent = hit.params.consent.as_deref().map(str::trim);
    let allowed = !opted_out
        && match p.mode {
            PrivacyMode::Anonymous => consent != Some("0"),
            PrivacyMode::Consented => consent == Some("1"),
            PrivacyMode::Off => false,
        };
    match (allowed, p.without_consent) {
        (true, _) => Ok(true),
        (false, WithoutConsent::Aggregate) => Ok(false),
        (false, WithoutConsent::Drop) => Err(DropReason::NoConsent),
    }
}

/// Strips everything that could single out a person: no visitor (so no session and no
/// unique count), no full referrer URL, no click or order id, no IP.
pub fn reduce(e: &mut Event) {
    e.visitor_id = 0;
    e.referrer.clear();
    e.click_id.clear();
    e.order_id.clear();
    e.ip = None;
    e.browser_version.clear();
    e.os_version.clear();
}

fn email_pattern() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    // Linear-time engine; a local part, `@` (or %40), a domain with a dot.
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)[a-z0-9._%+\-]+(?:@|%40)[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}")
            .expect("valid regex")
    })
}

/// Replaces anything shaped like an email address by `[email]`.
pub fn redact(s: &str) -> Cow<'_, str> {
    // Every match holds `@` or `%40`, so most fields skip the regex on one byte scan
    // (it ran on twelve fields of every hit).
    if memchr::memchr2(b'@', b'%', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    email_pattern().replace_all(s, "[email]")
}

/// Redacts email addresses in every free-text field that comes from a URL or a page.
pub fn redact_emails(e: &mut Event) {
    for f in [
        &mut e.path,
        &mut e.query,
        &mut e.title,
        &mut e.referrer,
        &mut e.utm.source,
        &mut e.utm.medium,
        &mut e.utm.campaign,
        &mut e.utm.term,
        &mut e.utm.content,
        &mut e.order_id,
    ] {
        if let Cow::Owned(r) = redact(f) {
            *f = r;
        }
    }
    if let Cow::Owned(r) = redact(&e.source) {
        e.source = r.into();
    }
    if let Cow::Owned(r) = redact(&e.props) {
        e.props = r.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HitParams;

    fn hit(gpc: bool, dnt: bool, consent: Option<&str>) -> RawHit {
        RawHit {
            received_ms: 0,
            ip: "203.0.113.77".parse().unwrap(),
            user_agent: String::new(),
            referer_header: None,
            gpc,
            dnt,
            cdn_country: None,
            params: HitParams {
                consent: consent.map(str::to_owned),
                ..HitParams::default()
            },
        }
    }

    #[test]
    fn modes_signals_and_consent() {
        let anon = Privacy::default();
        assert_eq!(may_identify(&hit(false, false, None), &anon), Ok(true));
        assert_eq!(
            may_identify(&hit(true, false, None), &anon),
            Ok(false),
            "GPC honoured by default"
        );
        assert_eq!(
            may_identify(&hit(false, true, None), &anon),
            Ok(true),
            "DNT off by default"
        );
        assert_eq!(
            may_identify(&hit(false, false, Some("0")), &anon),
            Ok(false)
        );
        let dnt = Privacy {
            honour_dnt: true,
            ..anon.clone()
        };
        assert_eq!(may_identify(&hit(false, true, None), &dnt), Ok(false));
        let consented = Privacy {
            mode: PrivacyMode::Consented,
            ..anon.clone()
        };
        assert_eq!(
            may_identify(&hit(false, false, None), &consented),
            Ok(false)
        );
        assert_eq!(
            may_identify(&hit(false, false, Some("1")), &consented),
            Ok(true)
        );
        assert_eq!(
            may_identify(&hit(true, false, Some("1")), &consented),
            Ok(false),
            "GPC wins"
        );
        let drop = Privacy {
            without_consent: WithoutConsent::Drop,
            ..consented
        };
        assert_eq!(
            may_identify(&hit(false, false, None), &drop),
            Err(DropReason::NoConsent)
        );
        let off = Privacy {
            mode: PrivacyMode::Off,
            ..anon
        };
        assert_eq!(
            may_identify(&hit(false, false, Some("1")), &off),
            Err(DropReason::TrackingOff)
        );
    }

    #[test]
    fn emails_are_redacted() {
        assert_eq!(
            redact("/u/jane.doe+x@mail.example.com/profile"),
            "/u/[email]/profile"
        );
        assert_eq!(redact("utm_source=a%40b.com"), "utm_source=[email]");
        assert_eq!(redact("no email here @ all"), "no email here @ all");
        let mut e = Event {
            title: "Welcome bob@example.org".into(),
            props: r#"{"who":"ann@example.net"}"#.into(),
            ..Event::default()
        };
        redact_emails(&mut e);
        assert_eq!(e.title, "Welcome [email]");
        assert_eq!(e.props, r#"{"who":"[email]"}"#);
    }
}
