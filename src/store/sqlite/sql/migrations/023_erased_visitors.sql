-- Schema 23: visitors erased while the writer may still hold their open visit.
--
-- The writer keeps open visits in memory and writes their `sessions` rows in its next
-- flush (up to a second later, or when the visit's next hit comes). A visitor erased
-- in between would get the erased visit's row back: entry page, source, start time.
-- The erasure leaves the visitor's id here until the id can no longer occur (a
-- visitor id is one day's: two days is past any visit of it), and the writer writes no
-- session row of an id listed here. The id alone, not linked to anything after the
-- erasure: a suppression list, the kind the GDPR allows keeping.
CREATE TABLE erased_visitors (
    visitor_id  INTEGER PRIMARY KEY,
    until_ms    INTEGER NOT NULL
);
