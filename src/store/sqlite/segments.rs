//! This database's day segments (`store::segments`): which held ones are still right,
//! counting from them, and building the missing ones in the background.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Result, SqliteStore};
use crate::clock::{day_of, settled_days, Millis, DAY_MS};
use crate::model::SiteId;
use crate::store::segments::{DaySegment, Segments, KEY};
use crate::store::{EventStore, Filter, Group, KeptDays, SiteStore, Touch, WebCounts};

impl SqliteStore {
    pub fn segments(&self) -> &Segments {
        &self.segments
    }

    /// [`EventStore::web_counts_by_day`](crate::store::EventStore::web_counts_by_day):
    /// the days with a segment still right counted from it, the others read.
    pub(super) fn counts_by_day(
        &self,
        site_id: SiteId,
        days: &[i64],
        filters: &[Filter],
        groups: &[Group],
    ) -> Result<Vec<(i64, WebCounts)>> {
        let (held, rest) = self.held_segments(site_id, days)?;
        let mut out = match &self.reads_from {
            Some(other) => other.web_counts_by_day(site_id, &rest, filters, groups)?,
            None => crate::store::events::each_day(self, site_id, &rest, filters, groups)?,
        };
        out.extend(crate::store::events::on_cores(&held, |s| {
            Ok((s.day, s.count(filters, groups)?))
        })?);
        Ok(out)
    }

    /// The held segments of `days` whose day is unchanged since they were built, and
    /// the days without one.
    pub fn held_segments(
        &self,
        site_id: SiteId,
        days: &[i64],
    ) -> Result<(Vec<Arc<DaySegment>>, Vec<i64>)> {
        let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
            return Ok((Vec::new(), Vec::new()));
        };
        if self.segments.is_empty() {
            return Ok((Vec::new(), days.to_vec()));
        }
        let kept = self.kept_days(site_id, KEY, 0, *first, last + 1)?;
        let (mut held, mut rest) = (Vec::new(), Vec::new());
        for day in days {
            match self.segments.get(site_id.0, *day) {
                Some(s) if unchanged(&kept, &s) => held.push(s),
                _ => rest.push(*day),
            }
        }
        Ok((held, rest))
    }

    /// The touches of `[from, to)` that `keep` keeps: those of the whole days with a
    /// segment still right from it, the rest through `read` (once per stretch between
    /// them), in the order one read of the range gives. On an admin this spares
    /// ClickHouse the read of every event of today's conversions' lookback (the touch
    /// conditions are on string columns, so it reads them all: 0.2 s at 10 M events).
    pub(super) fn held_touches(
        &self,
        site_id: SiteId,
        from: Millis,
        to: Millis,
        keep: &dyn Fn(&Touch) -> bool,
        read: &mut dyn FnMut(Millis, Millis) -> Result<Vec<Touch>>,
    ) -> Result<Vec<Touch>> {
        // The whole days within the range.
        let (first, end) = (
            (from + DAY_MS - 1).div_euclid(DAY_MS),
            to.div_euclid(DAY_MS),
        );
        if first >= end || self.segments.is_empty() || !self.segments.holds_touches() {
            return read(from, to);
        }
        let days: Vec<i64> = (first..end).collect();
        let (mut held, _) = self.held_segments(site_id, &days)?;
        held.sort_by_key(|s| s.day);
        let mut out = Vec::new();
        let mut at = from;
        for seg in held {
            let start = seg.day * DAY_MS;
            // A day held without its touches (built before they were asked for) is read.
            let Some(touches) = seg.touches(keep) else {
                continue;
            };
            if at < start {
                out.extend(read(at, start)?);
            }
            out.extend(touches.cloned());
            at = start + DAY_MS;
        }
        if at < to {
            out.extend(read(at, to)?);
        }
        Ok(out)
    }

    /// Brings the held segments up to date at `now`: drops those whose day changed (a
    /// late event, retention, erasure, a removed site) or left the held range, then
    /// builds the missing ones, newest first, while the budget has room. Returns how
    /// many were built. Does nothing when no days are to be held. With events read from
    /// ClickHouse (an admin), the days are read from there, and checked against
    /// ClickHouse's own marks (`EventStore::day_marks`).
    pub fn refresh_segments(&self, now: Millis) -> Result<usize> {
        let days = self.segments.days();
        if days == 0 {
            self.segments.retain(|_, _| false);
            return Ok(0);
        }
        let today = day_of(now);
        let (first, end) = settled_days((today - days) * DAY_MS, now, now);
        let mut fresh = HashSet::new();
        let mut todo = Vec::new();
        for site in self.sites()? {
            let kept = self.kept_days(site.id, KEY, 0, first, end)?;
            for day in first..end {
                // A day without a mark has visits still being written: later.
                let Some(mark) = kept.marks.get(&day).copied() else {
                    continue;
                };
                match self.segments.get(site.id.0, day) {
                    Some(s) if unchanged(&kept, &s) => {
                        fresh.insert((site.id.0, day));
                    }
                    _ if self.segments.unfit(site.id.0, day, mark) => {}
                    _ => todo.push((site.id.0, day, mark)),
                }
            }
        }
        self.segments
            .retain(|site, s| fresh.contains(&(site, s.day)));
        todo.sort_by_key(|(site, day, _)| (std::cmp::Reverse(*day), *site));
        let mut built = 0;
        for (site, day, mark) in todo {
            if self.segments.stopped() {
                break;
            }
            let since = self.segments.generation();
            let mut readable = true;
            let seg = DaySegment::build(day, mark, |f| {
                readable = self.web_rows(SiteId(site), day * DAY_MS, (day + 1) * DAY_MS, f)?;
                Ok(())
            })?;
            if !readable {
                break;
            }
            let Some(seg) = seg else {
                self.segments.mark_unfit(site, day, mark);
                continue;
            };
            // Read after the mark too: a change since makes the segment unused.
            let seg = if self.segments.holds_touches() {
                seg.with_touches(self.read_touches(
                    SiteId(site),
                    day * DAY_MS,
                    (day + 1) * DAY_MS,
                )?)
            } else {
                seg
            };
            if !self.segments.insert(site, seg, since) {
                break;
            }
            // The row that says the segment is right; retention, erasure and removals
            // delete it with the day's other kept numbers.
            self.keep_days(SiteId(site), KEY, 0, &[(day, String::new(), mark)])?;
            built += 1;
        }
        Ok(built)
    }
}

/// Whether the day of `seg` is as it was read: its `report_days` row is still there
/// (removals delete it) with the day's mark now (late writes change it), and that mark
/// is the segment's own (another process may have read the day again since, and kept
/// the row with the newer mark).
fn unchanged(kept: &KeptDays, seg: &DaySegment) -> bool {
    kept.fresh.contains_key(&seg.day) && kept.marks.get(&seg.day) == Some(&seg.mark)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::clock::{Clock, DAY_MS, HOUR_MS};
    use crate::store::Touch;
    use crate::store::{Dim, EventStore, Filter, Group};

    /// A store with the demo's `days` of traffic, `visitors` a day.
    fn demo(
        days: u32,
        visitors: u32,
    ) -> (tempfile::TempDir, super::SqliteStore, crate::model::Site) {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::config::Config {
            data_dir: dir.path().to_owned(),
            ..crate::config::Config::default()
        }
        .validate()
        .unwrap();
        let store = super::SqliteStore::open(dir.path()).unwrap();
        let (site, _) =
            crate::cli::demo::run(&store, &rt, days, visitors, false, &Clock::System).unwrap();
        (dir, store, site)
    }

    /// A stop ends a refresh at its next day, so the server's stop need not wait for
    /// minutes of reading.
    #[test]
    fn a_stopped_refresh_reads_no_further_day() {
        let (_dir, store, _site) = demo(3, 50);
        let now = Clock::System.now_ms();
        store.segments().configure(62, 1 << 30);
        store.segments().stop();
        assert_eq!(store.refresh_segments(now).unwrap(), 0);
        assert_eq!(store.segments().held().0, 0);
    }

    /// The touches conversions are credited from come from held days as a read of the
    /// events gives them: all of a range that starts and ends within a day, and those
    /// of some visitors and click ids; and a day changed since is read again.
    #[test]
    fn held_days_give_the_touches_their_events_give() {
        let (_dir, store, site) = demo(5, 300);
        let now = Clock::System.now_ms();
        store.segments().configure(62, 1 << 30);
        let today = crate::clock::day_of(now);
        let (from, to) = ((today - 4) * DAY_MS + 5 * HOUR_MS, now);
        // Days held without their touches (SQLite's way) are read for them.
        assert!(store.refresh_segments(now).unwrap() >= 3);
        store.segments().hold_touches(true);
        assert_eq!(
            store.touches(site.id, from, to).unwrap(),
            store.read_touches(site.id, from, to).unwrap()
        );
        // As an admin reading ClickHouse holds them (`with_reads_from`).
        store.segments().retain(|_, _| false);
        assert!(store.refresh_segments(now).unwrap() >= 3);
        let days: Vec<i64> = (today - 3..today - 1).collect();
        let (held, _) = store.held_segments(site.id, &days).unwrap();
        assert_eq!(held.len(), 2, "the days are held");

        let all = store.read_touches(site.id, from, to).unwrap();
        let in_held = |t: &Touch| days.contains(&crate::clock::day_of(t.ts_ms));
        assert!(
            all.iter().filter(|t| in_held(t)).count() > 5,
            "the demo's ads and email bring touches to the held days"
        );
        assert_eq!(store.touches(site.id, from, to).unwrap(), all);

        // Some visitors and click ids, as today's conversions ask for them.
        let visitors: HashSet<i64> = all.iter().step_by(3).map(|t| t.visitor_id).collect();
        let click_ids: HashSet<String> = all
            .iter()
            .skip(1)
            .step_by(4)
            .map(|t| t.click_id.clone())
            .collect();
        let want = store
            .read_touches_of(site.id, from, to, &visitors, &click_ids)
            .unwrap();
        assert!(!want.is_empty() && want.len() < all.len());
        let got = store
            .touches_of(site.id, from, to, &visitors, &click_ids)
            .unwrap();
        assert_eq!(got, want);

        // A conversion written late into a held day: the day is read again, with it.
        let late = all.iter().find(|t| in_held(t)).unwrap();
        let conversion = crate::model::Event {
            site_id: site.id.0,
            ts_ms: late.ts_ms + 1,
            name: "conversion".into(),
            visitor_id: late.visitor_id,
            ..crate::model::Event::default()
        };
        let mut w = crate::ingest::EventWriter::for_tests(&store);
        assert!(w.write(vec![conversion], Vec::new()));
        let again = store.touches(site.id, from, to).unwrap();
        assert_eq!(again.len(), all.len() + 1);
        assert_eq!(again, store.read_touches(site.id, from, to).unwrap());
    }

    /// On the demo's traffic (page views with titles, engagement pings, custom events,
    /// bots, UTM tags, countries and regions, email and ad campaigns), every held day
    /// counts what its events count, for a filter on each dimension and every group.
    #[test]
    fn held_days_count_the_demo_traffic_as_its_events_do() {
        let (_dir, store, site) = demo(4, 150);
        let now = Clock::System.now_ms();
        store.segments().configure(62, 1 << 30);
        assert!(store.refresh_segments(now).unwrap() >= 3);
        let today = crate::clock::day_of(now);
        // The demo fills the days before today (and today so far).
        let days: Vec<i64> = (today - 3..today - 1).collect();
        let (held, rest) = store.held_segments(site.id, &days).unwrap();
        assert_eq!((held.len(), rest), (2, vec![]));
        assert!(
            held.iter().all(|s| s.events() > 100),
            "the demo days are full: {:?}",
            held.iter().map(|s| (s.day, s.events())).collect::<Vec<_>>()
        );
        let mut groups: Vec<Group> = Dim::ALL.iter().map(|d| Group::Dim(*d)).collect();
        groups.extend([
            Group::Total,
            Group::Hours(1),
            Group::Hours(24),
            Group::Hours(7),
        ]);
        // Each dimension filtered by a value it has, by its absence, and by a part.
        let mut views: Vec<Vec<Filter>> = vec![vec![]];
        let all = store
            .web_counts_by_day(site.id, &days, &[], &groups)
            .unwrap();
        for d in Filter::DIMS {
            let mut values: Vec<&String> = all
                .iter()
                .flat_map(|(_, c)| c.0.get(&Group::Dim(d)).into_iter().flat_map(|m| m.keys()))
                .collect();
            values.sort();
            let n = d.name();
            let Some(v) = values.get(values.len() / 2) else {
                continue;
            };
            let part: String = v.chars().skip(1).take(3).collect::<String>().to_uppercase();
            for f in [
                format!("{n}=={v}"),
                format!("{n}!={v}"),
                format!("{n}~{part}"),
            ] {
                views.push(vec![Filter::parse(&f).unwrap()]);
            }
        }
        views.push(vec![
            Filter::parse("device==Mobile").unwrap(),
            Filter::parse("page~/").unwrap(),
        ]);
        assert!(views.len() > 40, "{} views", views.len());
        for v in &views {
            let mut got = store.web_counts_by_day(site.id, &days, v, &groups).unwrap();
            let mut want =
                crate::store::events::each_day(&store, site.id, &days, v, &groups).unwrap();
            got.sort_by_key(|(d, _)| *d);
            want.sort_by_key(|(d, _)| *d);
            assert_eq!(got, want, "{v:?}");
        }
    }
}
