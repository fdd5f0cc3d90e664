//! Building blocks for statements whose shape depends on how many rows they carry.
//!
//! The SQL text is the same on both engines; only how bind parameters are written differs
//! ([`Placeholders`], chosen by the engine). Multi-row statements come in a few shapes only
//! ([`runs`]), so they stay prepared in each connection's statement cache.

use std::sync::{Arc, Mutex, PoisonError};

use super::StoreError;

/// A query of the `Any` driver, as the store builds them.
pub(super) type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// How bind parameters are written. SQLite gets anonymous `?`: its numbered ones cost a
/// linear name lookup per parameter, which turns a statement with thousands of them
/// quadratic. PostgreSQL needs `$n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placeholders {
    Anonymous,
    Numbered,
}

impl Placeholders {
    /// `rows` tuples of `cols` parameters, numbered from `first`.
    pub(super) fn tuples(self, first: usize, rows: usize, cols: usize) -> String {
        (0..rows)
            .map(|r| format!("({})", self.list(first + r * cols, cols)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A flat list of `n` parameters, numbered from `first`.
    pub(super) fn list(self, first: usize, n: usize) -> String {
        (0..n)
            .map(|i| self.one(first + i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(super) fn one(self, n: usize) -> String {
        match self {
            Self::Anonymous => "?".to_owned(),
            Self::Numbered => format!("${n}"),
        }
    }

    /// `sql` with its `{list}` placeholder turned into one parameter per value of
    /// `values`, all bound.
    pub(super) fn with_list<'q>(self, sql: &str, values: &[i64]) -> Query<'q> {
        let sql = sql.replace("{list}", &self.list(1, values.len()));
        values
            .iter()
            .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, v| {
                query.bind(*v)
            })
    }
}

/// Most rows one multi-row statement carries.
pub(super) const MAX_ROWS: usize = 256;

/// Splits `items` into runs of a power of two (the longest first, at most [`MAX_ROWS`]):
/// a group of 185 is written as 128 + 32 + 16 + 8 + 1 rows. A multi-row statement so comes
/// in nine shapes only, which stay prepared in the connection's statement cache; with one
/// shape per group size, SQLite parsed every statement afresh.
pub(super) fn runs<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (run, tail) = rest.split_at(MAX_ROWS.min(1 << rest.len().ilog2()));
        rest = tail;
        Some(run)
    })
}

/// A multi-row statement whose text is built once per row count and engine: `template`
/// with `{rows}` replaced by that many tuples of `cols` parameters.
pub(super) struct MultiRow {
    template: &'static str,
    cols: usize,
    built: Mutex<Vec<(Placeholders, usize, Arc<str>)>>,
}

impl MultiRow {
    pub(super) const fn new(template: &'static str, cols: usize) -> Self {
        Self {
            template,
            cols,
            built: Mutex::new(Vec::new()),
        }
    }

    /// The text for `rows` rows (a run from [`runs`], so only a few counts ever occur).
    pub(super) fn sql(&self, p: Placeholders, rows: usize) -> sqlx::AssertSqlSafe<Arc<str>> {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let text = match built.iter().find(|(q, n, _)| *q == p && *n == rows) {
            Some((_, _, text)) => text.clone(),
            None => {
                let text: Arc<str> = self
                    .template
                    .replace("{rows}", &p.tuples(1, rows, self.cols))
                    .into();
                built.push((p, rows, text.clone()));
                text
            }
        };
        sqlx::AssertSqlSafe(text)
    }

    /// Writes `items` in [`runs`], binding each item with `bind`; `false` as soon as a
    /// run affects another number of rows than it carries (a conflict the caller did not
    /// expect).
    pub(super) async fn insert_all<'q, T>(
        &self,
        conn: &mut sqlx::AnyConnection,
        p: Placeholders,
        items: &'q [T],
        mut bind: impl FnMut(Query<'q>, &'q T) -> Query<'q>,
    ) -> Result<bool, StoreError> {
        for run in runs(items) {
            let query = run
                .iter()
                .fold(sqlx::query(self.sql(p, run.len())), &mut bind);
            if query.execute(&mut *conn).await?.rows_affected() != run.len() as u64 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes `items` in [`runs`] like [`MultiRow::insert_all`], for a statement that may
    /// write fewer rows than it carries; returns how many it wrote.
    pub(super) async fn execute_all<'q, T>(
        &self,
        conn: &mut sqlx::AnyConnection,
        p: Placeholders,
        items: &'q [T],
        mut bind: impl FnMut(Query<'q>, &'q T) -> Query<'q>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        for run in runs(items) {
            let query = run
                .iter()
                .fold(sqlx::query(self.sql(p, run.len())), &mut bind);
            written += query.execute(&mut *conn).await?.rows_affected();
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_every_item_in_order_in_a_few_shapes() {
        for len in [0usize, 1, 2, 3, 185, 256, 257, 1024, 1100] {
            let items: Vec<usize> = (0..len).collect();
            let runs: Vec<&[usize]> = runs(&items).collect();
            assert_eq!(runs.concat(), items, "{len} items");
            for run in &runs {
                assert!(run.len().is_power_of_two() && run.len() <= MAX_ROWS);
            }
            assert!(runs.windows(2).all(|w| w[0].len() >= w[1].len()));
        }
        let shapes: Vec<usize> = runs(&[0u8; 185]).map(<[u8]>::len).collect();
        assert_eq!(shapes, [128, 32, 16, 8, 1]);
    }

    #[test]
    fn a_statement_text_is_built_once_per_shape_and_engine() {
        static STATEMENT: MultiRow = MultiRow::new("INSERT INTO t (a, b) VALUES {rows}", 2);
        let two = STATEMENT.sql(Placeholders::Anonymous, 2).0;
        assert_eq!(&*two, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert!(Arc::ptr_eq(
            &two,
            &STATEMENT.sql(Placeholders::Anonymous, 2).0
        ));
        let numbered = STATEMENT.sql(Placeholders::Numbered, 2).0;
        assert_eq!(&*numbered, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
    }
}
