//! The fast path of a group commit: a whole group of submissions in a handful of
//! multi-row statements instead of several statements per submission.
//!
//! Decisions are made in memory from two reads (existing idempotency keys, balances), in
//! submission order, exactly as the one-by-one path would make them. The writes then
//! verify themselves: every insert must add the rows expected and every guarded debit must
//! succeed. If anything differs (another node wrote in between), the caller rolls back and
//! replays the group one submission at a time, so the outcome is always the same.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::{AnyConnection, Row};

use super::idempotency::{Claim, Keys};
use super::queue::Job;
use super::{StoreError, SubmitOutcome};
use tocsin_sdk::protocol::MessageId;

/// Why the fast path gave up (the caller falls back).
pub(super) struct Diverged;

/// How bind parameters are written. SQLite gets anonymous `?`: its numbered ones cost a
/// linear name lookup per parameter, which turns a statement with thousands of them
/// quadratic. PostgreSQL needs `$n`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Params {
    Anonymous,
    Numbered,
}

impl Params {
    pub(super) fn of(backend: super::Backend) -> Self {
        match backend {
            super::Backend::Sqlite => Self::Anonymous,
            super::Backend::Postgres => Self::Numbered,
        }
    }

    /// `rows` tuples of `cols` parameters, numbered from `first`.
    pub(super) fn tuples(self, first: usize, rows: usize, cols: usize) -> String {
        (0..rows)
            .map(|r| {
                let cells: Vec<String> =
                    (0..cols).map(|c| self.one(first + r * cols + c)).collect();
                format!("({})", cells.join(", "))
            })
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
}

/// Most rows one multi-row statement carries.
const MAX_ROWS: usize = 256;

/// Splits `items` into runs of a power of two (the longest first, at most [`MAX_ROWS`]):
/// a group of 185 is written as 128 + 32 + 16 + 8 + 1 rows. A multi-row statement so comes
/// in nine shapes only, which stay prepared in the connection's statement cache; with one
/// shape per group size, SQLite parsed every statement afresh (with building the text,
/// 7 % of the server's samples in a send benchmark).
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
    built: Mutex<Vec<(Params, usize, Arc<str>)>>,
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
    pub(super) fn sql(&self, params: Params, rows: usize) -> sqlx::AssertSqlSafe<Arc<str>> {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let text = match built.iter().find(|(p, n, _)| *p == params && *n == rows) {
            Some((_, _, text)) => text.clone(),
            None => {
                let text: Arc<str> = self
                    .template
                    .replace("{rows}", &params.tuples(1, rows, self.cols))
                    .into();
                built.push((params, rows, text.clone()));
                text
            }
        };
        sqlx::AssertSqlSafe(text)
    }
}

/// Applies `group` inside the caller's transaction, or reports that it diverged.
pub(super) async fn apply_group(
    conn: &mut AnyConnection,
    params: Params,
    keys: &Keys,
    group: &[Job],
) -> Result<Result<Vec<SubmitOutcome>, Diverged>, StoreError> {
    // 1. Keys already taken (by earlier commits).
    let wanted: Vec<Claim<'_>> = group.iter().flat_map(Job::claims).collect();
    let found = keys.taken(conn, params, &wanted).await?;
    // Keyed by the jobs' own strings: no copy of a key per lookup. Keys found taken are
    // rare (retries), and only then is a key copied to look it up.
    let mut taken: HashMap<(&str, &str), MessageId> = HashMap::with_capacity(wanted.len());
    if !found.is_empty() {
        for c in &wanted {
            if let Some(id) = found.get(&(c.gateway.to_owned(), c.key.to_owned())) {
                taken.insert((c.gateway, c.key), *id);
            }
        }
    }
    // 2. Balances of the accounts involved.
    let accounts: Vec<i64> = group
        .iter()
        .map(|j| j.submission.charge.account.0)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let sql = format!(
        "SELECT id, balance FROM accounts WHERE id IN ({})",
        (1..=accounts.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in &accounts {
        query = query.bind(*a);
    }
    let mut balance: HashMap<i64, i64> = HashMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        balance.insert(row.try_get("id")?, row.try_get("balance")?);
    }
    // 3. Decide in order, as one-by-one would.
    let mut outcomes = Vec::with_capacity(group.len());
    let mut accepted: Vec<&Job> = Vec::new();
    let mut messages_seen = HashSet::new();
    for job in group {
        let s = &job.submission;
        let earlier = s
            .idempotency_keys
            .iter()
            .find_map(|k| taken.get(&(s.gateway.as_str(), k.as_str())));
        if let Some(id) = earlier {
            outcomes.push(SubmitOutcome::Duplicate(*id));
            continue;
        }
        let funds = balance.entry(s.charge.account.0).or_insert(0);
        if s.charge.amount > 0 && *funds < s.charge.amount {
            outcomes.push(SubmitOutcome::InsufficientCredits);
            continue;
        }
        let m = &s.message;
        if !messages_seen.insert((m.recipient, m.sender, m.message_id)) {
            outcomes.push(SubmitOutcome::Duplicate(m.message_id));
            continue;
        }
        *funds -= s.charge.amount.max(0);
        for k in &s.idempotency_keys {
            taken.insert((s.gateway.as_str(), k.as_str()), m.message_id);
        }
        outcomes.push(SubmitOutcome::Accepted(m.message_id));
        accepted.push(job);
    }
    if accepted.is_empty() {
        return Ok(Ok(outcomes));
    }
    // 4. Writes, each checked.
    let claims: Vec<Claim<'_>> = accepted.iter().flat_map(|job| job.claims()).collect();
    if !keys.record(conn, params, &claims).await?
        || !insert_messages(conn, params, &accepted).await?
    {
        return Ok(Err(Diverged));
    }
    if !debit_and_record(conn, params, &accepted).await? {
        return Ok(Err(Diverged));
    }
    Ok(Ok(outcomes))
}

async fn insert_messages(
    conn: &mut AnyConnection,
    params: Params,
    jobs: &[&Job],
) -> Result<bool, StoreError> {
    static INSERT: MultiRow = MultiRow::new(
        "INSERT INTO queued_messages (message_id, sender, recipient, flags, nonce, body, \
         created_at, expires_at) VALUES {rows} ON CONFLICT (sender, message_id, recipient) \
         DO NOTHING",
        8,
    );
    for run in runs(jobs) {
        let mut query = sqlx::query(INSERT.sql(params, run.len()));
        for job in run {
            query = super::queue::bind_message(query, &job.submission.message, job.now);
        }
        if query.execute(&mut *conn).await?.rows_affected() != run.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One guarded debit per account for its total, then one multi-row ledger insert whose
/// `balance_after` values are counted back from the balance the debit returned.
async fn debit_and_record(
    conn: &mut AnyConnection,
    params: Params,
    jobs: &[&Job],
) -> Result<bool, StoreError> {
    let paying: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| j.submission.charge.amount > 0)
        .collect();
    if paying.is_empty() {
        return Ok(true);
    }
    let mut totals: HashMap<i64, i64> = HashMap::new();
    for j in &paying {
        *totals.entry(j.submission.charge.account.0).or_default() += j.submission.charge.amount;
    }
    let mut after: HashMap<i64, i64> = HashMap::new();
    for (account, total) in &totals {
        // Written without reusing a parameter so it works with anonymous ones too.
        let sql = format!(
            "UPDATE accounts SET balance = balance - {} WHERE id = {} AND balance >= {} RETURNING balance",
            params.one(1),
            params.one(2),
            params.one(3)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(*total)
            .bind(*account)
            .bind(*total)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let final_balance: i64 = row.try_get("balance")?;
        // Running balance just before this group's first debit on the account.
        after.insert(*account, final_balance + total);
    }
    static LEDGER: MultiRow = MultiRow::new(
        "INSERT INTO ledger (account_id, delta, balance_after, reason, message_id, created_at) \
         VALUES {rows}",
        6,
    );
    for run in runs(&paying) {
        let mut query = sqlx::query(LEDGER.sql(params, run.len()));
        for j in run {
            let charge = &j.submission.charge;
            let running = after.entry(charge.account.0).or_default();
            *running -= charge.amount;
            query = query
                .bind(charge.account.0)
                .bind(-charge.amount)
                .bind(*running)
                .bind(charge.reason.as_str())
                .bind(j.submission.message.message_id.as_bytes().to_vec())
                .bind(j.now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(true)
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
            // Longest first, and below the cap no length twice: at most nine statements
            // for a full run of shapes.
            assert!(runs.windows(2).all(|w| w[0].len() >= w[1].len()));
        }
        let shapes: Vec<usize> = runs(&[0u8; 185]).map(<[u8]>::len).collect();
        assert_eq!(shapes, [128, 32, 16, 8, 1]);
    }

    #[test]
    fn a_statement_text_is_built_once_per_shape_and_engine() {
        static STATEMENT: MultiRow = MultiRow::new("INSERT INTO t (a, b) VALUES {rows}", 2);
        let two = STATEMENT.sql(Params::Anonymous, 2).0;
        assert_eq!(&*two, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert!(Arc::ptr_eq(&two, &STATEMENT.sql(Params::Anonymous, 2).0));
        let numbered = STATEMENT.sql(Params::Numbered, 2).0;
        assert_eq!(&*numbered, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
    }
}
