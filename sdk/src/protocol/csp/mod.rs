//! The chat server protocol (CSP): how a device logs in to the chat server and
//! exchanges messages with it.
//!
//! Everything here is sans-IO: codecs and state machines that take and return bytes.
//! The server and the device client put them on their own transport (a WebSocket at
//! `GET /chat`, binary messages).
//!
//! # Handshake
//!
//! Two round trips, no framing. Over WebSocket **each step is exactly one binary
//! message**, of these sizes:
//!
//! | step | direction | bytes | produced by | consumed by |
//! | --- | --- | --- | --- | --- |
//! | client-hello | C→S | [`CLIENT_HELLO_LEN`] (48) | [`ClientHandshake::new`] | [`ServerHandshake::on_client_hello`] |
//! | server-hello | S→C | [`SERVER_HELLO_LEN`] (80) | [`ServerHandshake::on_client_hello`] | [`ClientHandshake::on_server_hello`] |
//! | login | C→S | [`LOGIN_LEN`] (144) + extensions box | [`ClientHandshake::on_server_hello`] | [`ServerHandshake::on_login`] |
//! | login-ack | S→C | [`LOGIN_ACK_LEN`] (32) | [`ServerHandshake::accept`] | [`ClientHandshake::on_login_ack`] |
//!
//! The login and its extensions box travel together in one message. Its length is 144
//! when the client sends no extensions, otherwise 144 plus the length announced inside
//! the login box, at most [`MAX_LOGIN_LEN`]. A transport that delivers a byte stream
//! instead can read 144 bytes and ask [`ServerHandshake::login_len`] for the rest.
//!
//! Between [`ServerHandshake::on_login`] and [`ServerHandshake::accept`] the server
//! looks up the claimed identity and passes the client key registered for it; a vouch
//! made with any other key fails with [`HandshakeError::BadVouch`].
//!
//! # Sequence numbers
//!
//! Every box is sealed with nonce `cookie ‖ counter (u64-le)`, where each direction
//! has its own cookie (`CCK` client to server, `SCK` server to client) and its own
//! counter, starting at 1 and incremented after each box:
//!
//! * server to client: 1 = server-hello, 2 = login-ack, 3 = first frame, …
//! * client to server: 1 = login, 2 = extensions box (only if sent), then frames.
//!
//! Login, extensions, login-ack and all frames share the session key
//! `X25519HSalsa20(TCK, TSK)`; only the server-hello uses `SK`. So the first frame
//! the client sends uses CSN 3 after a login with extensions and CSN 2 without.
//!
//! # After login
//!
//! Each frame is `u16-le box length ‖ box`, and over WebSocket each frame is one binary
//! message; [`frame_len`] splits a byte stream for other transports. A box holds one
//! [`Payload`]; a box over [`MAX_FRAME_BOX_LEN`] (8192) bytes is refused by both
//! [`Sealer`] and [`Opener`]. Messages travel as [`MessageEnvelope`]s.
//!
//! # Invariants
//!
//! * No decoder panics on any input; every refusal is a typed, one-line error.
//! * A counter never hands out a number twice and never wraps.
//! * The client never logs in to a server that cannot prove it holds `SK.secret`, and
//!   the server never accepts a login whose vouch does not match the registered key.
//! * Ephemeral secrets and derived keys are wiped on drop and redacted in `Debug`.
//!
//! # Example
//!
//! ```
//! use tocsin_sdk::protocol::csp::{
//!     ClientHandshake, LoginExtensions, Payload, ServerHandshake,
//! };
//! use tocsin_sdk::protocol::{IdentityId, KeyPair};
//!
//! let (server_key, device_key) = (KeyPair::generate(), KeyPair::generate());
//! let identity = IdentityId::parse("ABCD1234")?;
//!
//! let (mut client, hello) =
//!     ClientHandshake::new(identity, &device_key.secret, server_key.public, LoginExtensions::default());
//! let mut server = ServerHandshake::new(&server_key.secret);
//! let server_hello = server.on_client_hello(&hello)?;
//! let login = client.on_server_hello(&server_hello)?;
//! let request = server.on_login(&login)?;
//! assert_eq!(request.identity, identity);
//! // The server looks the identity up and passes the key it has on file.
//! let (ack, server_session) = server.accept(&device_key.public)?;
//! let client_session = client.on_login_ack(&ack)?;
//!
//! let (mut send, _) = client_session.split();
//! let (_, mut receive) = server_session.split();
//! let frame = send.seal_frame(&Payload::EchoRequest(b"ping".to_vec()))?;
//! assert_eq!(receive.open_frame(&frame)?, Payload::EchoRequest(b"ping".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod cookie;
mod envelope;
mod error;
mod extensions;
mod hello;
mod kdf;
mod login;
mod payload;
mod server;
mod session;

pub use client::ClientHandshake;
pub use cookie::Cookie;
pub use envelope::MessageEnvelope;
pub use error::{FrameError, HandshakeError, PayloadError};
pub use extensions::{
    CspDeviceId, DeviceCookie, LoginExtensions, PayloadVersion, MAX_EXTENSIONS_BOX_LEN,
};
pub use hello::{ClientHello, ServerHello};
pub use kdf::{blake2b_kdf, vouch, CSP_PERSONAL, MAX_KDF_KEY_LEN, MAX_KDF_PARAM_LEN};
pub use payload::{AlarmAnswer, AlarmAnswerError, AlarmRing, AlarmStop, Payload, ALARM_NOTE_MAX};
pub use server::{LoginRequest, ServerHandshake};
pub use session::{
    frame_len, Opener, Sealer, Session, FRAME_PREFIX_LEN, MAX_FRAME_BOX_LEN, MAX_PAYLOAD_LEN,
};

/// Size of the client-hello message.
pub const CLIENT_HELLO_LEN: usize = ClientHello::LEN;

/// Size of the server-hello message.
pub const SERVER_HELLO_LEN: usize = ServerHello::LEN;

/// Size of a login without extensions: the login box alone. With extensions, the
/// extensions box follows in the same message.
pub const LOGIN_LEN: usize = login::LOGIN_BOX_LEN;

/// Largest login message: the login box and the largest extensions box.
pub const MAX_LOGIN_LEN: usize = LOGIN_LEN + MAX_EXTENSIONS_BOX_LEN;

/// Size of the login-ack message.
pub const LOGIN_ACK_LEN: usize = login::LOGIN_ACK_LEN;
