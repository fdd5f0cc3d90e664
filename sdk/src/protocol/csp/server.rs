//! The server's side of the handshake, as a state machine that does no I/O.
//!
//! ```text
//! ServerHandshake::new
//! on_client_hello(48 bytes)          → send server-hello (80)
//! on_login(144 + extensions bytes)   → LoginRequest: look the identity up
//! accept(registered client key)      → send login-ack (32), Session
//! ```
//!
//! `on_login` only opens and checks the login; whether the identity exists, is revoked,
//! or vouched with the right key is decided by [`ServerHandshake::accept`], once the
//! caller has found the key the directory holds for it. Any error leaves the handshake
//! failed: later steps answer [`HandshakeError::OutOfOrder`].

use std::mem;

use subtle::ConstantTimeEq;

use super::hello::{ClientHello, ServerHello};
use super::kdf::vouch_from_shared;
use super::login::{login_len, open_login, seal_login_ack, LoginData, LOGIN_ACK_SSN};
use super::{Cookie, HandshakeError, LoginExtensions, Session};
use crate::crypto::SharedKey;
use crate::protocol::{IdentityId, KeyPair, PublicKey, SecretKey};

/// What the server learns from a login, before it decides to accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginRequest {
    /// The identity the client claims; not yet proven.
    pub identity: IdentityId,
    /// The extensions the client sent (or its legacy client-info string).
    pub extensions: LoginExtensions,
}

/// What the server holds between client-hello and login-ack.
#[derive(Debug)]
struct Pending {
    /// `TCK.public`.
    client_ephemeral: PublicKey,
    /// `CCK`.
    client_cookie: Cookie,
    /// `TSK`: fresh for this connection and wiped with the handshake.
    ephemeral: KeyPair,
    /// `SCK`.
    cookie: Cookie,
    /// The session key `X25519HSalsa20(TSK, TCK)`.
    key: SharedKey,
}

/// Where the server is in the handshake.
#[derive(Debug)]
enum State {
    AwaitClientHello,
    AwaitLogin(Pending),
    AwaitDecision {
        pending: Pending,
        login: LoginData,
        next_csn: u64,
    },
    Failed,
}

/// The server's handshake with one connecting client.
#[derive(Debug)]
pub struct ServerHandshake {
    server_key: SecretKey,
    state: State,
}

impl ServerHandshake {
    /// Starts a handshake for a new connection, with the server's permanent key `SK`.
    pub fn new(server_key: &SecretKey) -> Self {
        Self {
            server_key: server_key.clone(),
            state: State::AwaitClientHello,
        }
    }

    /// Reads the 48-byte client-hello and returns the 80-byte server-hello to send.
    ///
    /// Errors: wrong length, a small-order ephemeral key, or a call out of order. Draws
    /// a fresh ephemeral key and a cookie different from the client's; costs one X25519
    /// base multiplication and two exchanges.
    pub fn on_client_hello(&mut self, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        match mem::replace(&mut self.state, State::Failed) {
            State::AwaitClientHello => {}
            _ => return Err(HandshakeError::OutOfOrder("client-hello")),
        }
        let hello = ClientHello::decode(message)?;
        let mut cookie = Cookie::random();
        while cookie == hello.cookie {
            cookie = Cookie::random();
        }
        let ephemeral = KeyPair::generate();
        let key = SharedKey::new(&ephemeral.secret, &hello.ephemeral_public)
            .map_err(|_| HandshakeError::WeakKey("client ephemeral key"))?;
        let reply = ServerHello {
            cookie,
            ephemeral_public: ephemeral.public,
            echoed_cookie: hello.cookie,
        }
        .seal(&self.server_key, &hello.ephemeral_public)?;
        self.state = State::AwaitLogin(Pending {
            client_ephemeral: hello.ephemeral_public,
            client_cookie: hello.cookie,
            ephemeral,
            cookie,
            key,
        });
        Ok(reply.to_vec())
    }

    /// The full length of the login whose first 144 bytes are `head`: for transports
    /// that deliver a byte stream rather than one message per step. Opens the login box
    /// to read the extension indicator; changes nothing.
    ///
    /// Errors: fewer than 144 bytes, a box that does not open, or a call out of order.
    pub fn login_len(&self, head: &[u8]) -> Result<usize, HandshakeError> {
        match &self.state {
            State::AwaitLogin(pending) => login_len(head, &pending.key, &pending.client_cookie),
            _ => Err(HandshakeError::OutOfOrder("login")),
        }
    }

    /// Opens the whole login (login box and extensions box, in one message) and checks
    /// that it echoes our cookie. Returns what the client claims, for the caller to
    /// look up; the vouch is checked by [`ServerHandshake::accept`].
    ///
    /// Errors: a length other than the one the extension indicator announces, a box
    /// that does not open, an invalid identity, malformed extensions, a wrong echoed
    /// cookie, or a call out of order.
    pub fn on_login(&mut self, message: &[u8]) -> Result<LoginRequest, HandshakeError> {
        let State::AwaitLogin(pending) = mem::replace(&mut self.state, State::Failed) else {
            return Err(HandshakeError::OutOfOrder("login"));
        };
        let (login, next_csn) = open_login(message, &pending.key, &pending.client_cookie)?;
        if login.server_cookie != pending.cookie {
            return Err(HandshakeError::CookieMismatch("login"));
        }
        let request = LoginRequest {
            identity: login.identity,
            extensions: login.extensions.clone(),
        };
        self.state = State::AwaitDecision {
            pending,
            login,
            next_csn,
        };
        Ok(request)
    }

    /// Accepts the login if its vouch proves the client holds the secret half of
    /// `client_public`, the key registered for the identity. Returns the 32-byte
    /// login-ack to send and the established session.
    ///
    /// Errors: [`HandshakeError::BadVouch`] (compared in constant time), a small-order
    /// registered key, or a call out of order. Cost: two X25519 exchanges.
    pub fn accept(self, client_public: &PublicKey) -> Result<(Vec<u8>, Session), HandshakeError> {
        let State::AwaitDecision {
            pending,
            login,
            next_csn,
        } = self.state
        else {
            return Err(HandshakeError::OutOfOrder("accept"));
        };
        let ss1 =
            SharedKey::new(&self.server_key, client_public).map_err(HandshakeError::Crypto)?;
        let ss2 = SharedKey::new(&pending.ephemeral.secret, client_public)
            .map_err(HandshakeError::Crypto)?;
        let expected = vouch_from_shared(&ss1, &ss2, &pending.cookie, &pending.client_ephemeral);
        if !bool::from(expected.ct_eq(&login.vouch)) {
            return Err(HandshakeError::BadVouch);
        }
        let ack = seal_login_ack(&pending.key, &pending.cookie);
        let session = Session::new(
            pending.key,
            pending.cookie,
            LOGIN_ACK_SSN + 1,
            pending.client_cookie,
            next_csn,
        );
        Ok((ack, session))
    }
}

#[cfg(test)]
mod tests {
    use super::super::login::seal_login;
    use super::*;
    use crate::protocol::csp::kdf::vouch;

    /// A client that follows the protocol by hand, except that it echoes `echo` as the
    /// server's cookie.
    fn login_echoing(echo: impl Fn(Cookie) -> Cookie) -> Result<LoginRequest, HandshakeError> {
        let server_key = SecretKey::generate();
        let client_key = SecretKey::generate();
        let tck = KeyPair::generate();
        let cck = Cookie::random();
        let mut server = ServerHandshake::new(&server_key);
        let hello = ClientHello {
            ephemeral_public: tck.public,
            cookie: cck,
        };
        let reply = server.on_client_hello(&hello.encode()).unwrap();
        let opened = ServerHello::open(&reply, &server_key.public_key(), &tck.secret).unwrap();
        let key = SharedKey::new(&tck.secret, &opened.ephemeral_public).unwrap();
        let data = LoginData {
            identity: IdentityId::parse("ABCD1234").unwrap(),
            server_cookie: echo(opened.cookie),
            vouch: vouch(
                &client_key,
                &server_key.public_key(),
                &opened.ephemeral_public,
                &opened.cookie,
                &tck.public,
            )
            .unwrap(),
            extensions: LoginExtensions::default(),
        };
        let login = seal_login(&data, &key, &cck).unwrap();
        server.on_login(&login.bytes)
    }

    #[test]
    fn a_login_echoing_the_right_cookie_is_read() {
        let request = login_echoing(|sck| sck).unwrap();
        assert_eq!(request.identity.as_str(), "ABCD1234");
    }

    #[test]
    fn a_login_echoing_another_cookie_is_refused() {
        assert_eq!(
            login_echoing(|_| Cookie::random()),
            Err(HandshakeError::CookieMismatch("login"))
        );
    }

    #[test]
    fn steps_out_of_order_are_refused() {
        let mut server = ServerHandshake::new(&SecretKey::generate());
        assert_eq!(
            server.on_login(&[0; 144]),
            Err(HandshakeError::OutOfOrder("login"))
        );
        // The failed step leaves the handshake failed.
        assert!(server.on_client_hello(&[7; 48]).is_err());
    }
}
