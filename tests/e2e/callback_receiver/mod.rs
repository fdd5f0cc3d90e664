//! The SDK's callback receiver (`tocsin_sdk::receive`): the contract's MAC vector and
//! every refusal in its order, arbitrary bodies without a panic, and the whole way
//! round against the real server (port 0, on the run's engine): a device replies to an
//! end-to-end gateway ID and receipts its alert, the server's dispatcher POSTs both to
//! a receiver, which opens them; and `tocsin-cli callback serve` doing the same.

mod cli;
mod dispatch;
mod fuzz;
pub(crate) mod proxy;
mod status;
mod vectors;
