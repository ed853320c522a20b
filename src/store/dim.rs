//! Dimensions: the axes a rollup row and a report group by (page, source, browser, …).
//! Each is stored as a small integer in `rollups.dim`, so a variant's number never
//! changes; names are the allowlist that report, API and CLI parameters are parsed against.

/// A rolled-up dimension. Values are stored as small integers; never reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Total = 0,
    Page = 1,
    EntryPage = 2,
    ExitPage = 3,
    Source = 4,
    Referrer = 5,
    Medium = 6,
    UtmSource = 7,
    UtmMedium = 8,
    UtmCampaign = 9,
    UtmTerm = 10,
    UtmContent = 11,
    Browser = 12,
    Os = 13,
    Device = 14,
    Event = 15,
    /// Bot events by reason (bots are never in the other dimensions).
    Bot = 16,
    /// Bot events by source, and by page: machine traffic, reported apart.
    BotSource = 17,
    BotPage = 18,
    /// Outbound link clicks and file downloads, by URL.
    Outbound = 19,
    Download = 20,
    /// Custom event props, as `event: key=value`.
    EventProp = 21,
    /// The visit's country (ISO 3166-1 alpha-2).
    Country = 22,
    /// Page views by page title.
    Title = 23,
    /// The visit's region: ISO 3166-2 (`DE-BY`), or the English name when the
    /// geolocation database has no code (see `enrich/geo.rs`).
    Region = 24,
    /// The visit's city (English name).
    City = 25,
    /// Page views by screen size: the bucket ([`ScreenSize`]) of the screen width the JS
    /// tracker (or an import) reported; hits without a width have no row.
    Screen = 26,
}

/// Screen-size buckets of a CSS-pixel screen width (`screen.width`), with Plausible's
/// limits, so numbers compare: phone < 576, tablet 576–991, laptop 992–1439,
/// desktop ≥ 1440.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScreenSize {
    Phone,
    Tablet,
    Laptop,
    Desktop,
}

impl ScreenSize {
    pub const ALL: [ScreenSize; 4] = [
        ScreenSize::Phone,
        ScreenSize::Tablet,
        ScreenSize::Laptop,
        ScreenSize::Desktop,
    ];

    /// The bucket of a width in CSS pixels (`None` without one).
    pub fn of(width: Option<i64>) -> Option<ScreenSize> {
        Some(match width? {
            w if w <= 0 => return None,
            w if w < 576 => ScreenSize::Phone,
            w if w < 992 => ScreenSize::Tablet,
            w if w < 1440 => ScreenSize::Laptop,
            _ => ScreenSize::Desktop,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ScreenSize::Phone => "phone",
            ScreenSize::Tablet => "tablet",
            ScreenSize::Laptop => "laptop",
            ScreenSize::Desktop => "desktop",
        }
    }

    /// The widths of the bucket, for people.
    pub fn limits(self) -> &'static str {
        match self {
            ScreenSize::Phone => "< 576 px",
            ScreenSize::Tablet => "576–991 px",
            ScreenSize::Laptop => "992–1439 px",
            ScreenSize::Desktop => "≥ 1440 px",
        }
    }

    pub fn parse(s: &str) -> Option<ScreenSize> {
        Self::ALL.into_iter().find(|b| b.name() == s)
    }
}

impl Dim {
    pub const ALL: [Dim; 27] = [
        Dim::Total,
        Dim::Page,
        Dim::EntryPage,
        Dim::ExitPage,
        Dim::Source,
        Dim::Referrer,
        Dim::Medium,
        Dim::UtmSource,
        Dim::UtmMedium,
        Dim::UtmCampaign,
        Dim::UtmTerm,
        Dim::UtmContent,
        Dim::Browser,
        Dim::Os,
        Dim::Device,
        Dim::Event,
        Dim::Bot,
        Dim::BotSource,
        Dim::BotPage,
        Dim::Outbound,
        Dim::Download,
        Dim::EventProp,
        Dim::Country,
        Dim::Title,
        Dim::Region,
        Dim::City,
        Dim::Screen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dim::Total => "total",
            Dim::Page => "page",
            Dim::EntryPage => "entry_page",
            Dim::ExitPage => "exit_page",
            Dim::Source => "source",
            Dim::Referrer => "referrer",
            Dim::Medium => "medium",
            Dim::UtmSource => "utm_source",
            Dim::UtmMedium => "utm_medium",
            Dim::UtmCampaign => "utm_campaign",
            Dim::UtmTerm => "utm_term",
            Dim::UtmContent => "utm_content",
            Dim::Browser => "browser",
            Dim::Os => "os",
            Dim::Device => "device",
            Dim::Event => "event",
            Dim::Bot => "bot",
            Dim::BotSource => "bot_source",
            Dim::BotPage => "bot_page",
            Dim::Outbound => "outbound",
            Dim::Download => "download",
            Dim::EventProp => "event_prop",
            Dim::Country => "country",
            Dim::Title => "title",
            Dim::Region => "region",
            Dim::City => "city",
            Dim::Screen => "screen",
        }
    }

    /// The heading of this dimension's top list: one wording for the dashboard, the CLI
    /// and anything else that shows a breakdown.
    pub fn title(self) -> &'static str {
        match self {
            Dim::Total => "Total",
            Dim::Page => "Top pages",
            Dim::EntryPage => "Entry pages",
            Dim::ExitPage => "Exit pages",
            Dim::Source => "Sources",
            Dim::Referrer => "Referrers",
            Dim::Medium => "Media",
            Dim::UtmSource => "UTM sources",
            Dim::UtmMedium => "UTM media",
            Dim::UtmCampaign => "UTM campaigns",
            Dim::UtmTerm => "UTM terms",
            Dim::UtmContent => "UTM contents",
            Dim::Browser => "Browsers",
            Dim::Os => "Operating systems",
            Dim::Device => "Devices",
            Dim::Event => "Custom events",
            Dim::Bot => "Machine traffic by reason",
            Dim::BotSource => "Machine traffic by source",
            Dim::BotPage => "Machine traffic by page",
            Dim::Outbound => "Outbound links",
            Dim::Download => "Downloads",
            Dim::EventProp => "Custom event props",
            Dim::Country => "Countries",
            Dim::Title => "Page titles",
            Dim::Region => "Regions",
            Dim::City => "Cities",
            Dim::Screen => "Screen sizes",
        }
    }

    /// Dimensions where an empty value means "not set" and gets no row of its own (an
    /// empty source, by contrast, is direct traffic and is counted).
    /// How a row with an empty value is shown: no source is direct traffic, no country
    /// (region, city) is an address not in the registries' data (or the geolocation
    /// database, or none is configured), anything else is simply not set.
    pub fn empty_label(self) -> &'static str {
        match self {
            Dim::Source => "(direct)",
            Dim::Country | Dim::Region | Dim::City => "(unknown)",
            _ => "(none)",
        }
    }

    pub fn empty_means_unset(self) -> bool {
        matches!(
            self,
            Dim::Referrer
                | Dim::UtmSource
                | Dim::UtmMedium
                | Dim::UtmCampaign
                | Dim::UtmTerm
                | Dim::UtmContent
                | Dim::EntryPage
                | Dim::ExitPage
                | Dim::Title
        )
    }

    /// Parses a dimension name against the allowlist.
    pub fn parse(s: &str) -> Option<Dim> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// The dimensions a session carries from its first event, in [`Dim::ALL`] order.
pub const SESSION_DIMS: [Dim; 14] = subset(Subset::Session);

/// An event's values of the [`SESSION_DIMS`], in their order: what a visit it starts
/// begins with.
pub fn session_values(e: &crate::model::Event) -> [&str; SESSION_DIMS.len()] {
    SESSION_DIMS.map(|d| match d {
        Dim::Source => e.source.as_str(),
        Dim::Referrer => &e.referrer_host,
        Dim::Medium => &e.medium,
        Dim::UtmSource => &e.utm.source,
        Dim::UtmMedium => &e.utm.medium,
        Dim::UtmCampaign => &e.utm.campaign,
        Dim::UtmTerm => &e.utm.term,
        Dim::UtmContent => &e.utm.content,
        Dim::Browser => &e.browser,
        Dim::Os => &e.os,
        Dim::Device => e.device.as_str(),
        Dim::Country => &e.country,
        Dim::Region => &e.region,
        Dim::City => &e.city,
        _ => unreachable!("SESSION_DIMS holds session dimensions only"),
    })
}

/// The dimensions raw events can answer exactly, in [`Dim::ALL`] order: what
/// [`Filter::DIMS`](super::Filter::DIMS) is.
pub(super) const FILTERABLE: [Dim; 19] = subset(Subset::Filterable);

/// A list of dimensions drawn from [`Dim::ALL`].
#[derive(Clone, Copy)]
enum Subset {
    /// All but the total and what only rollups count (bots, outbound links,
    /// downloads, event props, screen sizes).
    Filterable,
    /// Where the visit came from, the client it came with and its place.
    Session,
}

impl Subset {
    const fn keeps(self, d: Dim) -> bool {
        match self {
            Subset::Filterable => !matches!(
                d,
                Dim::Total
                    | Dim::Bot
                    | Dim::BotSource
                    | Dim::BotPage
                    | Dim::Outbound
                    | Dim::Download
                    | Dim::EventProp
                    | Dim::Screen
            ),
            Subset::Session => matches!(
                d,
                Dim::Source
                    | Dim::Referrer
                    | Dim::Medium
                    | Dim::UtmSource
                    | Dim::UtmMedium
                    | Dim::UtmCampaign
                    | Dim::UtmTerm
                    | Dim::UtmContent
                    | Dim::Browser
                    | Dim::Os
                    | Dim::Device
                    | Dim::Country
                    | Dim::Region
                    | Dim::City
            ),
        }
    }
}

/// The dimensions of [`Dim::ALL`] that `which` keeps, in that order. Evaluated at
/// compile time: an `N` other than their number does not compile.
const fn subset<const N: usize>(which: Subset) -> [Dim; N] {
    let mut out = [Dim::Total; N];
    let (mut i, mut n) = (0, 0);
    while i < Dim::ALL.len() {
        if which.keeps(Dim::ALL[i]) {
            assert!(n < N, "more dimensions than N");
            out[n] = Dim::ALL[i];
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "fewer dimensions than N");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_widths_fall_in_stated_buckets() {
        for (w, want) in [
            (None, None),
            (Some(0), None),
            (Some(-5), None),
            (Some(360), Some("phone")),
            (Some(575), Some("phone")),
            (Some(576), Some("tablet")),
            (Some(991), Some("tablet")),
            (Some(992), Some("laptop")),
            (Some(1439), Some("laptop")),
            (Some(1440), Some("desktop")),
            (Some(3840), Some("desktop")),
        ] {
            assert_eq!(ScreenSize::of(w).map(ScreenSize::name), want, "{w:?}");
        }
        for s in ScreenSize::ALL {
            assert_eq!(ScreenSize::parse(s.name()), Some(s));
        }
    }

    #[test]
    fn every_dimension_has_a_name_and_a_heading_and_numbers_never_move() {
        for (i, d) in Dim::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "{d:?}");
            assert_eq!(Dim::parse(d.name()), Some(*d));
            assert!(!d.title().is_empty());
        }
        assert_eq!(Dim::Region as i64, 24);
        assert_eq!(Dim::City as i64, 25);
        assert_eq!(Dim::Screen as i64, 26);
    }
}
