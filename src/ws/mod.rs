//! The chat network edge: devices connect at `GET /chat` (WebSocket) and speak the chat
//! server protocol. [`hub`] wakes their sessions when messages arrive.

pub mod hub;

pub use hub::Hub;
