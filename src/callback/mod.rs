//! Callbacks to customers: replies and receipts from devices, POSTed to the gateway ID's
//! callback URL ([`dispatch`]), only to addresses the [`guard`] permits.

pub mod dispatch;
pub mod guard;

pub use dispatch::{Attempt, CallbackDispatcher, Dispatcher, StatusDispatcher};
