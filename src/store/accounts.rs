//! Accounts and their credit ledger.
//!
//! The balance column is a cache of the ledger: every change to it happens in the same
//! transaction as the ledger row that explains it, and the `CHECK (balance >= 0)` plus the
//! guarded `UPDATE … WHERE balance >= $1` make an overdraft impossible under any concurrency.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row;

use super::{insert_error, Store, StoreError};
use crate::domain::{AccountName, Credits, LedgerReason, UnixMs};

/// Database key of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub i64);

/// Credits to take from an account, and why: made by the server's meter, the only
/// place that prices an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub account: AccountId,
    pub amount: Credits,
    pub reason: LedgerReason,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub balance: i64,
    pub created_at: UnixMs,
}

/// One credit movement: positive for a top-up, negative for a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub delta: i64,
    pub balance_after: i64,
    pub reason: String,
    pub message_id: Option<Vec<u8>>,
    pub created_at: UnixMs,
}

fn account_from_row(row: &AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId(row.try_get("id")?),
        name: row.try_get("name")?,
        balance: row.try_get("balance")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates an account with a zero balance.
    pub async fn create_account(
        &self,
        name: &AccountName,
        now: UnixMs,
    ) -> Result<Account, StoreError> {
        let row = sqlx::query(
            "INSERT INTO accounts (name, balance, created_at) VALUES ($1, 0, $2) \
             RETURNING id, name, balance, created_at",
        )
        .bind(name.as_str())
        .bind(now)
        .fetch_one(&self.write)
        .await
        .map_err(|e| insert_error(e, || format!("account {name}")))?;
        account_from_row(&row)
    }

    pub async fn account_by_name(&self, name: &AccountName) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT id, name, balance, created_at FROM accounts WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT id, name, balance, created_at FROM accounts WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query("SELECT id, name, balance, created_at FROM accounts ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Adds `amount` (> 0) credits with a ledger row; returns the new balance.
    pub async fn add_credits(
        &self,
        account: AccountId,
        amount: i64,
        reason: &str,
        now: UnixMs,
    ) -> Result<i64, StoreError> {
        let mut tx = super::engine::begin_write(&self.write, self.backend).await?;
        let balance: i64 = sqlx::query(
            "UPDATE accounts SET balance = balance + $1 WHERE id = $2 RETURNING balance",
        )
        .bind(amount)
        .bind(account.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("account #{}", account.0)))?
        .try_get("balance")?;
        let entry = LedgerRow {
            account,
            delta: amount,
            balance_after: balance,
            reason,
            message_id: None,
        };
        entry.insert(&mut tx, now).await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// Takes a charge for an operation that queues nothing (a paid lookup). Returns the
    /// new balance, or `None` when the balance cannot cover it (nothing taken).
    pub async fn charge(&self, charge: &Charge, now: UnixMs) -> Result<Option<i64>, StoreError> {
        let mut tx = super::engine::begin_write(&self.write, self.backend).await?;
        let balance = debit(&mut tx, charge, None, now).await?;
        match balance {
            Some(_) => tx.commit().await?,
            None => tx.rollback().await?,
        }
        Ok(balance)
    }

    /// The newest `limit` ledger rows of an account, newest first.
    pub async fn ledger(
        &self,
        account: AccountId,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, delta, balance_after, reason, message_id, created_at FROM ledger \
             WHERE account_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(account.0)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LedgerEntry {
                    id: row.try_get("id")?,
                    delta: row.try_get("delta")?,
                    balance_after: row.try_get("balance_after")?,
                    reason: row.try_get("reason")?,
                    message_id: row.try_get("message_id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Sum of every ledger row of an account (equals its balance).
    pub async fn ledger_sum(&self, account: AccountId) -> Result<i64, StoreError> {
        let sum: Option<i64> = sqlx::query(
            "SELECT CAST(SUM(delta) AS BIGINT) AS total FROM ledger WHERE account_id = $1",
        )
        .bind(account.0)
        .fetch_one(&self.read)
        .await?
        .try_get("total")?;
        Ok(sum.unwrap_or(0))
    }
}

/// A ledger row to write inside the transaction that moves the balance.
struct LedgerRow<'a> {
    account: AccountId,
    delta: i64,
    balance_after: i64,
    reason: &'a str,
    message_id: Option<&'a [u8]>,
}

impl LedgerRow<'_> {
    async fn insert(&self, conn: &mut AnyConnection, now: UnixMs) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ledger (account_id, delta, balance_after, reason, message_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.account.0)
        .bind(self.delta)
        .bind(self.balance_after)
        .bind(self.reason)
        .bind(self.message_id.map(<[u8]>::to_vec))
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// The guarded debit: takes `amount` and records the ledger row, or returns `None` (and
/// changes nothing) when the balance cannot cover it. The caller owns the transaction and
/// must roll it back on `None` if it wrote anything before.
pub(super) async fn debit(
    conn: &mut AnyConnection,
    charge: &Charge,
    message_id: Option<&[u8]>,
    now: UnixMs,
) -> Result<Option<i64>, StoreError> {
    let (account, amount) = (charge.account, charge.amount.as_i64());
    let Some(row) = sqlx::query(
        "UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1 \
         RETURNING balance",
    )
    .bind(amount)
    .bind(account.0)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let balance_after: i64 = row.try_get("balance")?;
    let entry = LedgerRow {
        account,
        delta: -amount,
        balance_after,
        reason: charge.reason.as_str(),
        message_id,
    };
    entry.insert(conn, now).await?;
    Ok(Some(balance_after))
}
