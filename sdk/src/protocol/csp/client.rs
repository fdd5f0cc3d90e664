//! The client's side of the handshake, as a state machine that does no I/O.
//!
//! ```text
//! ClientHandshake::new        → send client-hello (48)
//! on_server_hello(80 bytes)   → send login (144 + extensions box)
//! on_login_ack(32 bytes)      → Session
//! ```
//!
//! The client refuses a server-hello that does not open under the pinned server key,
//! that echoes another cookie than ours, or whose cookie equals ours. Any error leaves
//! the handshake failed: later steps answer [`HandshakeError::OutOfOrder`].

use std::mem;

use super::hello::{ClientHello, ServerHello};
use super::kdf::vouch;
use super::login::{open_login_ack, seal_login, LoginData, LOGIN_ACK_SSN};
use super::{Cookie, HandshakeError, LoginExtensions, Session};
use crate::crypto::SharedKey;
use crate::protocol::{IdentityId, KeyPair, PublicKey, SecretKey};

/// Where the client is in the handshake.
#[derive(Debug)]
enum State {
    /// Client-hello sent; waiting for server-hello.
    AwaitServerHello,
    /// Login sent; waiting for login-ack.
    AwaitLoginAck {
        key: SharedKey,
        server_cookie: Cookie,
        next_csn: u64,
    },
    /// A step failed; nothing more may happen.
    Failed,
}

/// The client's handshake with a chat server.
#[derive(Debug)]
pub struct ClientHandshake {
    identity: IdentityId,
    client_key: SecretKey,
    server_public: PublicKey,
    extensions: LoginExtensions,
    /// `TCK`: fresh for this connection and wiped with the handshake.
    ephemeral: KeyPair,
    /// `CCK`.
    cookie: Cookie,
    state: State,
}

impl ClientHandshake {
    /// Starts a handshake for `identity`, whose permanent key is `client_key`, with the
    /// server whose pinned key is `server_public`. Returns the 48-byte client-hello to
    /// send as the first message.
    ///
    /// Draws a fresh ephemeral key and cookie; costs one X25519 base multiplication.
    pub fn new(
        identity: IdentityId,
        client_key: &SecretKey,
        server_public: PublicKey,
        extensions: LoginExtensions,
    ) -> (Self, Vec<u8>) {
        let ephemeral = KeyPair::generate();
        let cookie = Cookie::random();
        let hello = ClientHello {
            ephemeral_public: ephemeral.public,
            cookie,
        };
        let handshake = Self {
            identity,
            client_key: client_key.clone(),
            server_public,
            extensions,
            ephemeral,
            cookie,
            state: State::AwaitServerHello,
        };
        (handshake, hello.encode().to_vec())
    }

    /// The client-hello this handshake sent.
    pub fn client_hello(&self) -> ClientHello {
        ClientHello {
            ephemeral_public: self.ephemeral.public,
            cookie: self.cookie,
        }
    }

    /// Checks the 80-byte server-hello and returns the login to send: 144 bytes, plus
    /// the extensions box when any extension is set. Send it as one message.
    ///
    /// Errors: wrong length, a box that does not open (not our server, or tampered),
    /// a wrong echoed cookie, a server cookie equal to ours, extensions too long, or a
    /// call out of order. Cost: three X25519 exchanges.
    pub fn on_server_hello(&mut self, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        match mem::replace(&mut self.state, State::Failed) {
            State::AwaitServerHello => {}
            _ => return Err(HandshakeError::OutOfOrder("server-hello")),
        }
        let hello = ServerHello::open(message, &self.server_public, &self.ephemeral.secret)?;
        if hello.echoed_cookie != self.cookie {
            return Err(HandshakeError::CookieMismatch("server-hello"));
        }
        if hello.cookie == self.cookie {
            return Err(HandshakeError::SameCookies);
        }
        let vouch = vouch(
            &self.client_key,
            &self.server_public,
            &hello.ephemeral_public,
            &hello.cookie,
            &self.ephemeral.public,
        )
        .map_err(HandshakeError::Crypto)?;
        let key = SharedKey::new(&self.ephemeral.secret, &hello.ephemeral_public)
            .map_err(|_| HandshakeError::WeakKey("server ephemeral key"))?;
        let data = LoginData {
            identity: self.identity,
            server_cookie: hello.cookie,
            vouch,
            extensions: self.extensions.clone(),
        };
        let sealed = seal_login(&data, &key, &self.cookie)?;
        self.state = State::AwaitLoginAck {
            key,
            server_cookie: hello.cookie,
            next_csn: sealed.next_csn,
        };
        Ok(sealed.bytes)
    }

    /// Checks the 32-byte login-ack and returns the established session.
    ///
    /// Errors: wrong length, a box that does not open to 16 zero bytes, or a call out
    /// of order.
    pub fn on_login_ack(self, message: &[u8]) -> Result<Session, HandshakeError> {
        let State::AwaitLoginAck {
            key,
            server_cookie,
            next_csn,
        } = self.state
        else {
            return Err(HandshakeError::OutOfOrder("login-ack"));
        };
        open_login_ack(message, &key, &server_cookie)?;
        Ok(Session::new(
            key,
            self.cookie,
            next_csn,
            server_cookie,
            LOGIN_ACK_SSN + 1,
        ))
    }
}
