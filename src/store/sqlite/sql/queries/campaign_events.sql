-- Every open and click of one campaign, oldest first.
SELECT ts_ms, name, recipient, link, verdict, email_client, device, verdict_reason
FROM events
WHERE campaign_id = ?1 AND verdict != ''
ORDER BY ts_ms, id
