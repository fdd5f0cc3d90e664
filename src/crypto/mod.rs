//! Server-side key handling. The NaCl primitives themselves live in `tocsin_sdk::crypto`.

pub mod at_rest;
pub mod keystore;
pub mod server_key;

pub use at_rest::{DataKey, DataKeyError};
pub use keystore::{KeystoreError, SharedKeyCache};
