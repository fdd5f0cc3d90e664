//! Credit metering: the one place that prices an operation.
//!
//! Every paid operation (a send, a blob upload, a lookup) asks the meter for a
//! [`Reservation`]: the price from the configured price list, the ledger reason, and the
//! account that pays. The store takes it in the same transaction as the work it pays for
//! (a queued message, a recorded blob) or on its own (a lookup), with the guarded debit
//! that never lets a balance go negative. Once the store has taken it, [`Meter::taken`]
//! counts it in `/metrics`. Nothing else picks a price or a reason.

use std::sync::Arc;

use crate::config::Prices;
use crate::domain::{Credits, LedgerReason, UnixMs};
use crate::metrics::Metrics;
use crate::store::{AccountId, Charge, Store, StoreError};

/// What is being paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A text the server seals (basic mode).
    SendSimple,
    /// A box the customer sealed (end-to-end mode), alone or in a bulk request.
    SendE2e,
    /// A blob stored for a file message.
    UploadBlob,
    IdLookup,
    PubkeyLookup,
    CapabilitiesLookup,
    /// The hashes of a bulk request, each charged whether it matched or not.
    BulkIdLookup {
        hashes: usize,
    },
    /// The IDs of a bulk request that were found, charged together.
    BulkPubkeyLookup {
        found: usize,
    },
    /// An alarm's delivery to one recipient.
    Alarm,
}

/// Credits set aside for one operation: what the store must take with the work it pays
/// for. Only [`Meter::reserve`] makes one.
#[must_use = "give it to the store with the work it pays for"]
#[derive(Debug, Clone, Copy)]
pub struct Reservation(Charge);

impl Reservation {
    /// The charge as the store takes it.
    pub fn charge(&self) -> Charge {
        self.0
    }

    /// Nothing to pay (a free operation).
    pub fn is_free(&self) -> bool {
        self.0.amount.is_zero()
    }
}

/// The balance cannot cover the operation: nothing was taken.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error("not enough credits")]
    Insufficient,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The price list and the debit counter.
#[derive(Debug)]
pub struct Meter {
    prices: Prices,
    metrics: Arc<Metrics>,
}

impl Meter {
    pub fn new(prices: Prices, metrics: Arc<Metrics>) -> Self {
        Self { prices, metrics }
    }

    /// Prices `operation` for `account`.
    pub fn reserve(&self, account: AccountId, operation: Operation) -> Reservation {
        let p = &self.prices;
        let (price, reason) = match operation {
            Operation::SendSimple => (p.text, LedgerReason::SendSimple),
            Operation::SendE2e => (p.text, LedgerReason::SendE2e),
            Operation::UploadBlob => (p.blob, LedgerReason::UploadBlob),
            Operation::IdLookup => (p.lookup, LedgerReason::IdLookup),
            Operation::PubkeyLookup => (p.lookup, LedgerReason::PubkeyLookup),
            Operation::CapabilitiesLookup => (p.lookup, LedgerReason::CapabilitiesLookup),
            Operation::BulkIdLookup { .. } => (p.lookup, LedgerReason::BulkIdLookup),
            Operation::BulkPubkeyLookup { .. } => (p.lookup, LedgerReason::BulkPubkeyLookup),
            Operation::Alarm => (p.alarm, LedgerReason::Alarm),
        };
        let count = match operation {
            Operation::BulkIdLookup { hashes } => hashes,
            Operation::BulkPubkeyLookup { found } => found,
            _ => 1,
        };
        Reservation(Charge {
            account,
            amount: Credits::new(price).times(count),
            reason,
        })
    }

    /// The store has taken `reservation`: count it.
    pub fn taken(&self, reservation: Reservation) {
        let Charge { amount, reason, .. } = reservation.0;
        if !amount.is_zero() {
            self.metrics
                .credits_debited
                .with_label_values(&[reason.as_str()])
                .inc_by(u64::from(amount.get()));
        }
    }

    /// Takes the price of an operation that leaves nothing in the store (a lookup) now,
    /// with a ledger row of its own.
    pub async fn charge_now(
        &self,
        store: &Store,
        account: AccountId,
        operation: Operation,
    ) -> Result<(), MeterError> {
        let reservation = self.reserve(account, operation);
        if reservation.is_free() {
            return Ok(());
        }
        match store.charge(&reservation.charge(), UnixMs::now()).await? {
            Some(_) => {
                self.taken(reservation);
                Ok(())
            }
            None => Err(MeterError::Insufficient),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> Meter {
        let prices = Prices {
            text: 2,
            image: 0,
            file: 0,
            blob: 3,
            lookup: 1,
            alarm: 4,
        };
        Meter::new(prices, Arc::new(Metrics::new()))
    }

    #[test]
    fn each_operation_has_its_price_and_reason_and_a_bulk_lookup_pays_per_find() {
        let meter = meter();
        let account = AccountId(7);
        let priced = |op| {
            let charge = meter.reserve(account, op).charge();
            assert_eq!(charge.account, account);
            (charge.amount.get(), charge.reason)
        };
        assert_eq!(priced(Operation::SendSimple), (2, LedgerReason::SendSimple));
        assert_eq!(priced(Operation::SendE2e), (2, LedgerReason::SendE2e));
        assert_eq!(priced(Operation::UploadBlob), (3, LedgerReason::UploadBlob));
        assert_eq!(priced(Operation::IdLookup), (1, LedgerReason::IdLookup));
        assert_eq!(priced(Operation::Alarm), (4, LedgerReason::Alarm));
        assert_eq!(
            priced(Operation::BulkPubkeyLookup { found: 5 }),
            (5, LedgerReason::BulkPubkeyLookup)
        );
        assert_eq!(
            priced(Operation::BulkIdLookup { hashes: 0 }),
            (0, LedgerReason::BulkIdLookup)
        );
    }

    #[test]
    fn what_was_taken_is_counted_by_reason_and_a_free_operation_is_not() {
        let meter = meter();
        meter.taken(meter.reserve(AccountId(1), Operation::SendSimple));
        meter.taken(meter.reserve(AccountId(1), Operation::SendSimple));
        meter.taken(meter.reserve(AccountId(1), Operation::BulkIdLookup { hashes: 0 }));
        let text = meter.metrics.render();
        assert!(
            text.contains(r#"tocsin_credits_debited_total{reason="send_simple"} 4"#),
            "{text}"
        );
        assert!(!text.contains("bulk id lookup"), "{text}");
    }
}
