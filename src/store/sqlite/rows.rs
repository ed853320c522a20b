//! Several rows to one `INSERT` statement. A statement run once per row pays, at
//! each row, for opening its table's and indexes' cursors, for resetting, and (on
//! `events`, an AUTOINCREMENT table) for writing `sqlite_sequence` back; with
//! [`ROWS`] rows to a statement, those are paid once per [`ROWS`]. The writer's bulk
//! inserts (events, import keys, sessions, visit ends, rollup deltas) go through
//! [`insert_each`].
//!
//! A statement here is written for one row, `VALUES (…)` with numbered parameters
//! `?1`…`?N` (and anything after the row, such as `ON CONFLICT … DO UPDATE`); for `k`
//! rows it becomes `VALUES (…), (…)…` in which row `r` numbers its parameters from
//! `r * N + 1`. SQLite applies a statement's rows in order, each seeing the ones before
//! it (an upsert's second row for a key updates the first's), as one statement per row
//! would (the test below holds it).

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{CachedStatement, Connection, Statement, ToSql};

use super::Result;

/// Rows a statement inserts at once. Measured on the 449,957 events of
/// `scripts/bench-import.sh 500000` inserted alone into a fresh store: 1.47 s with 8
/// to a statement, 1.51 s with 16, 1.76–1.92 s one by one (docs/benchmarks.md).
pub(super) const ROWS: usize = 8;

/// `sql` for `rows` rows (1 to [`ROWS`]), made once per process.
fn sql_for(sql: &'static str, rows: usize) -> &'static str {
    if rows == 1 {
        return sql;
    }
    static MADE: Mutex<Option<HashMap<(&'static str, usize), &'static str>>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    made.get_or_insert_with(HashMap::new)
        .entry((sql, rows))
        // A handful of statements, each in up to ROWS sizes: kept for the process.
        .or_insert_with(|| Box::leak(many(sql, rows).into_boxed_str()))
}

/// `sql` with its `VALUES` row repeated `rows` times, each repetition's parameters
/// shifted past the ones before.
fn many(sql: &str, rows: usize) -> String {
    let values = sql.find("VALUES").expect("an INSERT … VALUES statement") + "VALUES".len();
    let open = values + sql[values..].find('(').expect("a row after VALUES");
    let mut depth = 0;
    let close = open
        + sql[open..]
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .expect("the row's parentheses close")
            .0;
    let row = &sql[open..=close];
    let per_row = parameters(row).max().expect("a row of numbered parameters");
    let rows: Vec<String> = (0..rows).map(|r| shift(row, r * per_row)).collect();
    format!(
        "{} {}{}",
        &sql[..values],
        rows.join(", "),
        &sql[close + 1..]
    )
}

/// The numbers of the parameters `?N` in `sql`.
fn parameters(sql: &str) -> impl Iterator<Item = usize> + '_ {
    sql.split('?').skip(1).map(|s| {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        s[..digits].parse().expect("numbered parameters only (?N)")
    })
}

/// `sql` with every numbered parameter `?N` made `?(N + by)`.
fn shift(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 4);
    let mut parts = sql.split('?');
    out.push_str(parts.next().unwrap_or(""));
    for part in parts {
        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = part[..digits]
            .parse()
            .expect("numbered parameters only (?N)");
        out.push('?');
        out.push_str(&(n + by).to_string());
        out.push_str(&part[digits..]);
    }
    out
}

/// Runs `sql` (written for one row) for every item, [`ROWS`] items to a statement and
/// the rest in one statement of their number. `run(rows, items)` binds each item's
/// parameters (item `r` after parameter `r * N`, for a row of `N`, with [`bind!`]) and
/// executes the statement ([`Rows::execute`]). The items are taken as they come (a
/// slice's, or a filter's over the writer's tables): nothing is collected first.
pub(super) fn insert_each<I: IntoIterator>(
    conn: &Connection,
    sql: &'static str,
    items: I,
    mut run: impl FnMut(&mut Rows<'_, '_>, &[I::Item]) -> Result<()>,
) -> Result<()> {
    let mut chunk = Vec::with_capacity(ROWS);
    let mut full: Option<(CachedStatement<'_>, Vec<Bound>)> = None;
    for item in items {
        chunk.push(item);
        if chunk.len() == ROWS {
            let (st, bound) = match &mut full {
                Some(f) => f,
                None => full.insert(prepared(conn, sql_for(sql, ROWS))?),
            };
            run(&mut Rows { st, bound }, &chunk)?;
            chunk.clear();
        }
    }
    drop(full);
    if !chunk.is_empty() {
        let (mut st, mut bound) = prepared(conn, sql_for(sql, chunk.len()))?;
        run(
            &mut Rows {
                st: &mut st,
                bound: &mut bound,
            },
            &chunk,
        )?;
    }
    Ok(())
}

/// `sql` from the connection's cache, every parameter NULL: a new statement has them
/// so, and the cache clears a statement's bindings when it is given back.
fn prepared<'c>(conn: &'c Connection, sql: &str) -> Result<(CachedStatement<'c>, Vec<Bound>)> {
    let st = conn.prepare_cached(sql)?;
    let n = st.parameter_count();
    Ok((st, vec![Bound::Null; n]))
}

/// What a parameter holds, as far as [`Rows::bind`] can tell without keeping a copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bound {
    Null,
    Empty,
    Int(i64),
    /// Anything else (a non-empty text, a real, a blob): bound again every time.
    Other,
}

/// A statement of [`insert_each`] and what its parameters hold. SQLite keeps a
/// parameter's value from one execution to the next, so a value equal to the one
/// bound (a NULL, an empty text, an integer: most of an event's 47 values are one of
/// the three, and the same as the row before's) is not bound again: each bind of a
/// text is a call into SQLite that frees the value before.
pub(super) struct Rows<'s, 'c> {
    st: &'s mut Statement<'c>,
    bound: &'s mut Vec<Bound>,
}

impl Rows<'_, '_> {
    /// Binds parameter `i` (from 1) to `v` unless it holds that value already.
    pub(super) fn bind(&mut self, i: usize, v: impl ToSql) -> rusqlite::Result<()> {
        let out = v.to_sql()?;
        let now = match &out {
            ToSqlOutput::Borrowed(ValueRef::Null) | ToSqlOutput::Owned(Value::Null) => Bound::Null,
            ToSqlOutput::Borrowed(ValueRef::Text(b"")) => Bound::Empty,
            ToSqlOutput::Owned(Value::Text(t)) if t.is_empty() => Bound::Empty,
            ToSqlOutput::Borrowed(ValueRef::Integer(n)) | ToSqlOutput::Owned(Value::Integer(n)) => {
                Bound::Int(*n)
            }
            _ => Bound::Other,
        };
        let slot = &mut self.bound[i - 1];
        if now != Bound::Other && *slot == now {
            return Ok(());
        }
        // Unknown until the bind succeeds.
        *slot = Bound::Other;
        self.st.raw_bind_parameter(i, out)?;
        *slot = now;
        Ok(())
    }

    pub(super) fn execute(&mut self) -> rusqlite::Result<usize> {
        self.st.raw_execute()
    }

    pub(super) fn parameter_count(&self) -> usize {
        self.st.parameter_count()
    }
}

/// Binds each value, with its own type's `ToSql` (no `dyn` call per value), to the
/// parameters of row `row` of `rows` ([`Rows`]), a statement of `per_row` parameters a
/// row. A row that bound fewer values than that would leave a value of the chunk before
/// in place: the number of values is checked against `per_row` when the code is
/// compiled, and `per_row` against the statement in debug builds (the tests).
macro_rules! bind {
    ($rows:expr, $row:expr, $per_row:expr; $($v:expr),+ $(,)?) => {{
        const _: () = assert!(
            [$(stringify!($v)),+].len() == $per_row,
            "a row binds as many values as it has parameters"
        );
        let rows: &mut $crate::store::sqlite::rows::Rows<'_, '_> = $rows;
        debug_assert!(
            rows.parameter_count() % $per_row == 0 && ($row + 1) * $per_row <= rows.parameter_count(),
            "row {} of {} values in a statement of {} parameters",
            $row,
            $per_row,
            rows.parameter_count()
        );
        let mut i: usize = $row * $per_row;
        $(
            i += 1;
            rows.bind(i, $v)?;
        )+
        let _ = i;
    }};
}
pub(super) use bind;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_repeated_with_its_parameters_shifted_and_the_rest_kept() {
        let sql = "INSERT INTO t (a, b) VALUES (?2, coalesce(?1, 0))\nON CONFLICT (a) DO UPDATE SET b = b + excluded.b";
        assert_eq!(
            many(sql, 3),
            "INSERT INTO t (a, b) VALUES (?2, coalesce(?1, 0)), (?4, coalesce(?3, 0)), \
             (?6, coalesce(?5, 0))\nON CONFLICT (a) DO UPDATE SET b = b + excluded.b"
        );
        assert_eq!(sql_for(sql, 1), sql);
        assert!(std::ptr::eq(sql_for(sql, 3), sql_for(sql, 3)), "made once");
    }

    #[test]
    fn rows_of_one_statement_apply_in_order_as_statements_of_one_row_would() {
        const SQL: &str = "INSERT INTO t (k, v) VALUES (?1, ?2)
                           ON CONFLICT (k) DO UPDATE SET v = v * 10 + excluded.v";
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
            .unwrap();
        let items = [(1, 1), (2, 5), (1, 2), (1, 3)];
        insert_each(&conn, SQL, &items, |st, rows| {
            for (r, (k, v)) in rows.iter().enumerate() {
                bind!(st, r, 2; k, v);
            }
            st.execute()?;
            Ok(())
        })
        .unwrap();
        let v: i64 = conn
            .query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 123, "1, then 1 * 10 + 2, then 12 * 10 + 3");
    }

    #[test]
    fn every_item_is_inserted_once_in_order_whatever_the_count() {
        const SQL: &str = "INSERT INTO t (k, v) VALUES (?1, ?2)
                           ON CONFLICT (k) DO UPDATE SET v = v + excluded.v";
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER UNIQUE, v INTEGER)",
        )
        .unwrap();
        for n in [0, 1, ROWS - 1, ROWS, ROWS + 1, 3 * ROWS + 5] {
            conn.execute("DELETE FROM t", []).unwrap();
            let items: Vec<i64> = (0..n as i64).collect();
            let mut statements = 0;
            let mut last_ids = Vec::new();
            insert_each(&conn, SQL, &items, |st, rows| {
                for (r, k) in rows.iter().copied().enumerate() {
                    bind!(st, r, 2; k, k * 10);
                }
                st.execute()?;
                statements += 1;
                last_ids.push((conn.last_insert_rowid(), rows.len()));
                Ok(())
            })
            .unwrap();
            let rows: Vec<(i64, i64, i64)> = conn
                .prepare("SELECT id, k, v FROM t ORDER BY id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            let keys: Vec<i64> = rows.iter().map(|r| r.1).collect();
            assert_eq!(keys, items, "{n} items");
            assert!(rows.iter().all(|&(_, k, v)| v == k * 10));
            assert_eq!(statements, n.div_ceil(ROWS));
            // One statement's rows take consecutive ids, the last one's reported (the
            // events insert gives each event its id from this).
            for (last, len) in last_ids {
                let i = rows.iter().position(|r| r.0 == last).unwrap();
                assert!(i + 1 >= len);
                assert_eq!(rows[i + 1 - len].0, last - len as i64 + 1);
            }
        }
    }

    #[test]
    fn a_value_bound_before_is_kept_and_every_other_replaces_it() {
        const SQL: &str = "INSERT INTO t (a, b) VALUES (?1, ?2)";
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)")
            .unwrap();
        // Each value follows, at the same parameter, one equal to it (skipped) or not.
        let values: Vec<Option<Value>> = vec![
            None,
            Some(Value::Text("x".into())),
            Some(Value::Text(String::new())),
            Some(Value::Text(String::new())),
            Some(Value::Integer(7)),
            Some(Value::Integer(7)),
            Some(Value::Integer(8)),
            None,
            None,
            Some(Value::Text("y".into())),
            Some(Value::Text("y".into())),
            Some(Value::Real(1.5)),
        ];
        let items: Vec<(Option<Value>, Option<Value>)> = (0..3 * ROWS + 3)
            .map(|i| {
                (
                    values[i % values.len()].clone(),
                    values[(i * 7 + 3) % values.len()].clone(),
                )
            })
            .collect();
        // Twice: the second run takes the statements back from the cache, which cleared
        // what the first bound (its last rows bound 7s and texts, its first rows NULLs).
        for _ in 0..2 {
            conn.execute("DELETE FROM t", []).unwrap();
            insert_each(&conn, SQL, &items, |st, rows| {
                for (r, (a, b)) in rows.iter().enumerate() {
                    bind!(st, r, 2; a, b);
                }
                st.execute()?;
                Ok(())
            })
            .unwrap();
            let stored: Vec<(Option<Value>, Option<Value>)> = conn
                .prepare("SELECT a, b FROM t ORDER BY id")
                .unwrap()
                .query_map([], |r| {
                    let v = |i| -> rusqlite::Result<Option<Value>> {
                        Ok(match r.get::<_, Value>(i)? {
                            Value::Null => None,
                            v => Some(v),
                        })
                    };
                    Ok((v(0)?, v(1)?))
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(stored, items);
        }
    }
}
