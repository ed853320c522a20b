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
}

impl Dim {
    pub const ALL: [Dim; 26] = [
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

/// The dimensions raw events can answer exactly, in [`Dim::ALL`] order: what
/// [`Filter::DIMS`](super::Filter::DIMS) is.
pub(super) const FILTERABLE: [Dim; 19] = subset(Subset::Filterable);

/// A list of dimensions drawn from [`Dim::ALL`].
#[derive(Clone, Copy)]
enum Subset {
    /// All but the total and what only rollups count (bots, outbound links,
    /// downloads, event props).
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
