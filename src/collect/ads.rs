//! Ad clicks (`/c/<token>` with an ad link token) and the campaign check every ad
//! event passes. A click is recorded like any hit, with a freshly minted click id that
//! the redirect appends to the landing page URL (`?ptclid=…`): the landing page's
//! tracker and the conversion pixel carry it back, which is what attribution joins on.
//! The visitor is never kept waiting on a failure: the redirect happens regardless.

use axum::http::request::Parts;

use super::{peer_ip, Collector};
use crate::enrich::Outcome;
use crate::ingest::Submitted;
use crate::model::{AdFields, DropReason, Event, HitParams};
use crate::token::{Action, EmailToken};

/// `url` with `param=id` appended to its query (before any fragment), the rest of the
/// URL byte for byte as signed.
pub fn with_click_id(url: &str, param: &str, id: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut out = format!("{base}{sep}{}={}", enc(param), enc(id));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl Collector {
    /// Ad events must name a campaign of their own site.
    pub(super) async fn check_campaign(&self, e: &Event) -> Result<(), DropReason> {
        let Some(ad) = &e.ad else {
            return Ok(());
        };
        match self.campaign(ad.campaign_id).await {
            Some(c) if c.site_id == e.site_id => Ok(()),
            _ => Err(self.count(DropReason::UnknownCampaign)),
        }
    }

    /// Records an ad click; returns the click id to append to the landing URL, if the
    /// click was stored with one.
    pub(super) async fn record_ad_click(
        &self,
        parts: &Parts,
        token: &EmailToken,
    ) -> Result<Option<String>, DropReason> {
        let Action::AdClick { url, ad, placement } = &token.action else {
            return Err(self.count(DropReason::BadToken));
        };
        let site = self
            .site_by_id(token.site_id)
            .await
            .ok_or_else(|| self.count(DropReason::UnknownSite))?;
        let params = HitParams {
            site: Some(site.key.to_string()),
            event: Some(crate::enrich::AD_CLICK.into()),
            ..HitParams::default()
        };
        let hit = self
            .raw_hit(&parts.headers, peer_ip(&parts.extensions), params)
            .map_err(|r| self.count(r))?;
        let salt = self
            .salt(crate::clock::day_of(hit.received_ms))
            .await
            .ok_or_else(|| self.count(DropReason::StoreError))?;
        let fields = AdFields {
            campaign_id: token.campaign_id,
            ad: ad.clone(),
            placement: placement.clone(),
            link: url.clone(),
        };
        let click_id = crate::token::new_click_id();
        let event = match self
            .enricher
            .enrich_ad_click(&hit, &site, &salt, fields, &click_id)
        {
            Outcome::Keep(e) => e,
            Outcome::Drop(r) => return Err(self.count(r)),
        };
        self.check_campaign(&event).await?;
        let minted = !event.click_id.is_empty();
        match self.ingest.submit(event).await {
            Submitted::Stored => Ok(minted.then_some(click_id)),
            Submitted::Dropped(r) => Err(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_id_goes_into_the_query_before_the_fragment() {
        let cases = [
            ("https://s.example/", "https://s.example/?ptclid=abc"),
            (
                "https://s.example/p?a=1",
                "https://s.example/p?a=1&ptclid=abc",
            ),
            ("https://s.example/p?", "https://s.example/p?ptclid=abc"),
            (
                "https://s.example/p#top",
                "https://s.example/p?ptclid=abc#top",
            ),
            (
                "https://s.example/p?a=%20b#x?y",
                "https://s.example/p?a=%20b&ptclid=abc#x?y",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(with_click_id(url, "ptclid", "abc"), want);
        }
    }
}
