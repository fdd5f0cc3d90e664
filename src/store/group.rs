//! The fast path of a group commit: a whole group of submissions in a handful of
//! multi-row statements instead of several statements per submission.
//!
//! Decisions are made in memory from two reads (existing idempotency keys, balances), in
//! submission order, exactly as the one-by-one path would make them. The writes then
//! verify themselves: every insert must add the rows expected and every guarded debit must
//! succeed. If anything differs (another node wrote in between), the caller rolls back and
//! replays the group one submission at a time, so the outcome is always the same.

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, Row};

use super::idempotency::{Claim, Keys};
use super::queue::Job;
use super::{StoreError, SubmitOutcome};

/// Why the fast path gave up (the caller falls back).
pub(super) struct Diverged;

/// How bind parameters are written. SQLite gets anonymous `?`: its numbered ones cost a
/// linear name lookup per parameter, which turns a statement with thousands of them
/// quadratic. PostgreSQL needs `$n`.
#[derive(Clone, Copy)]
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

/// Applies `group` inside the caller's transaction, or reports that it diverged.
pub(super) async fn apply_group(
    conn: &mut AnyConnection,
    params: Params,
    keys: &Keys,
    group: &[Job],
) -> Result<Result<Vec<SubmitOutcome>, Diverged>, StoreError> {
    // 1. Keys already taken (by earlier commits).
    let wanted: Vec<(&str, &str)> = group
        .iter()
        .flat_map(|job| {
            let s = &job.submission;
            s.idempotency_keys
                .iter()
                .map(move |k| (s.gateway.as_str(), k.as_str()))
        })
        .collect();
    let mut taken = keys.taken(conn, params, &wanted).await?;
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
            .find_map(|k| taken.get(&(s.gateway.as_str().to_owned(), k.clone())));
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
            taken.insert((s.gateway.as_str().to_owned(), k.clone()), m.message_id);
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
    let sql = format!(
        "INSERT INTO queued_messages (message_id, sender, recipient, flags, nonce, body, created_at, \
         expires_at) VALUES {} ON CONFLICT (sender, message_id, recipient) DO NOTHING",
        params.tuples(1, jobs.len(), 8)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for job in jobs {
        let m = &job.submission.message;
        query = query
            .bind(m.message_id.as_bytes().to_vec())
            .bind(m.sender.as_str())
            .bind(m.recipient.as_str())
            .bind(i64::from(m.flags))
            .bind(m.nonce.as_bytes().to_vec())
            .bind(m.body.clone())
            .bind(job.now)
            .bind(m.expires_at);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected() == jobs.len() as u64)
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
    let sql = format!(
        "INSERT INTO ledger (account_id, delta, balance_after, reason, message_id, created_at) VALUES {}",
        params.tuples(1, paying.len(), 6)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for j in &paying {
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
    Ok(true)
}
