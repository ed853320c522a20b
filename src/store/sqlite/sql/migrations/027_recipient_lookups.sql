-- Schema 27: an email campaign's storm writes its events near one another.
--
-- `events_campaign` was keyed (campaign_id, recipient, ts_ms) for every event of a
-- campaign, so each open landed at its recipient's place among the list's: a commit of
-- ~25 hits of a campaign's prefetch storm dirtied ~25 index pages scattered over the
-- whole list (6.3 KB written an email event, three times a page view's). What needs a
-- recipient's events is narrower:
--   * "did this recipient open before" (a click's signal): human-triggered opens;
--   * re-labelling after a scanner's burst, a shared IP or a landing page view: clicks,
--     and opens still labelled human.
-- Apple's prefetches and scanners' fetches (the storm itself) are neither: they now go
-- to `events_campaign`, keyed by time, where a storm appends. Queries reading
-- `events_recipient` repeat its condition (`reclassify.sql`, `HUMAN_OPEN` in `events.rs`),
-- so that SQLite can prove the index holds every row they may select.
DROP INDEX events_campaign;
CREATE INDEX events_campaign ON events (campaign_id, ts_ms) WHERE campaign_id IS NOT NULL;
CREATE INDEX events_recipient ON events (campaign_id, recipient, ts_ms)
    WHERE campaign_id IS NOT NULL
      AND (name = 'email_click' OR verdict IN ('human', 'gmail_proxy', 'yahoo_proxy', 'other_proxy'));
