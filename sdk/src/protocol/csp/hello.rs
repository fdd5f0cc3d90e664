//! The first round trip of the handshake: client-hello and server-hello.
//!
//! ```text
//! client-hello (48)  C→S  TCK.public (32) ‖ CCK (16)
//! server-hello (80)  S→C  SCK (16) ‖ box[SK.secret → TCK.public](TSK.public (32) ‖ CCK (16))
//!                         nonce SCK ‖ 1
//! ```
//!
//! The server-hello box is the server's proof that it holds `SK.secret`: only that key
//! can seal it for the client's fresh ephemeral key, and the echoed `CCK` ties it to
//! this connection. Both decoders check exact lengths and refuse small-order ephemeral
//! keys; they never panic.

use super::{Cookie, HandshakeError};
use crate::crypto::{SharedKey, TAG_LEN};
use crate::protocol::{PublicKey, SecretKey};

/// The sequence number of the server-hello box: the first box the server sends.
pub(crate) const SERVER_HELLO_SSN: u64 = 1;

/// The first message of a connection, from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// `TCK.public`: the client's fresh ephemeral key for this connection only.
    pub ephemeral_public: PublicKey,
    /// `CCK`: the client's random cookie, the first half of its nonces.
    pub cookie: Cookie,
}

impl ClientHello {
    /// Exact size on the wire.
    pub const LEN: usize = PublicKey::LEN + Cookie::LEN;

    /// The 48 wire bytes: key, then cookie.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..PublicKey::LEN].copy_from_slice(self.ephemeral_public.as_bytes());
        out[PublicKey::LEN..].copy_from_slice(self.cookie.as_bytes());
        out
    }

    /// Reads exactly 48 bytes; refuses another length and small-order keys.
    pub fn decode(bytes: &[u8]) -> Result<Self, HandshakeError> {
        if bytes.len() != Self::LEN {
            return Err(HandshakeError::Length {
                step: "client-hello",
                expected: Self::LEN,
                got: bytes.len(),
            });
        }
        let (key, cookie) = bytes.split_at(PublicKey::LEN);
        let ephemeral_public = PublicKey::from_slice(key)
            .map_err(|_| HandshakeError::WeakKey("client ephemeral key"))?;
        let cookie = Cookie::read(cookie, 0).ok_or(HandshakeError::Length {
            step: "client-hello",
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Ok(Self {
            ephemeral_public,
            cookie,
        })
    }
}

/// The server's answer to [`ClientHello`], as it reads once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// `SCK`: the server's random cookie, sent in the clear.
    pub cookie: Cookie,
    /// `TSK.public`: the server's fresh ephemeral key for this connection only.
    pub ephemeral_public: PublicKey,
    /// The client's `CCK`, echoed inside the box.
    pub echoed_cookie: Cookie,
}

impl ServerHello {
    /// Exact size on the wire.
    pub const LEN: usize = Cookie::LEN + TAG_LEN + Self::PLAIN_LEN;

    /// Size of the boxed content: ephemeral key and echoed cookie.
    const PLAIN_LEN: usize = PublicKey::LEN + Cookie::LEN;

    /// Seals the 80 wire bytes with the server's permanent key for the client's
    /// ephemeral key, under nonce `SCK ‖ 1`. Cost: one X25519 exchange.
    ///
    /// Fails only if `client_ephemeral_public` is of small order.
    pub fn seal(
        &self,
        server_secret: &SecretKey,
        client_ephemeral_public: &PublicKey,
    ) -> Result<[u8; Self::LEN], HandshakeError> {
        let key = SharedKey::new(server_secret, client_ephemeral_public)
            .map_err(|_| HandshakeError::WeakKey("client ephemeral key"))?;
        let mut plain = [0u8; Self::PLAIN_LEN];
        plain[..PublicKey::LEN].copy_from_slice(self.ephemeral_public.as_bytes());
        plain[PublicKey::LEN..].copy_from_slice(self.echoed_cookie.as_bytes());
        let boxed = key.seal(&self.cookie.nonce(SERVER_HELLO_SSN), &plain);
        let mut out = [0u8; Self::LEN];
        out[..Cookie::LEN].copy_from_slice(self.cookie.as_bytes());
        out[Cookie::LEN..].copy_from_slice(&boxed);
        Ok(out)
    }

    /// Opens the 80 wire bytes with the pinned server key and the client's ephemeral
    /// secret. Refuses another length, a box that does not open, and a small-order
    /// server ephemeral key. The caller still checks the echoed cookie.
    pub fn open(
        bytes: &[u8],
        server_public: &PublicKey,
        client_ephemeral_secret: &SecretKey,
    ) -> Result<Self, HandshakeError> {
        let length_error = || HandshakeError::Length {
            step: "server-hello",
            expected: Self::LEN,
            got: bytes.len(),
        };
        if bytes.len() != Self::LEN {
            return Err(length_error());
        }
        let cookie = Cookie::read(bytes, 0).ok_or_else(length_error)?;
        let key = SharedKey::new(client_ephemeral_secret, server_public)
            .map_err(HandshakeError::Crypto)?;
        let plain = key
            .open(&cookie.nonce(SERVER_HELLO_SSN), &bytes[Cookie::LEN..])
            .map_err(|_| HandshakeError::Decrypt("server-hello"))?;
        let (ephemeral, echoed) = plain.split_at(PublicKey::LEN.min(plain.len()));
        let ephemeral_public = PublicKey::from_slice(ephemeral)
            .map_err(|_| HandshakeError::WeakKey("server ephemeral key"))?;
        let echoed_cookie = Cookie::read(echoed, 0).ok_or_else(length_error)?;
        Ok(Self {
            cookie,
            ephemeral_public,
            echoed_cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_hello_is_the_key_then_the_cookie() {
        let hello = ClientHello {
            ephemeral_public: SecretKey::from_bytes([0x44; 32]).public_key(),
            cookie: Cookie::from_bytes([0x99; 16]),
        };
        let bytes = hello.encode();
        assert_eq!(&bytes[..32], hello.ephemeral_public.as_bytes());
        assert_eq!(&bytes[32..], &[0x99; 16]);
        assert_eq!(ClientHello::decode(&bytes), Ok(hello));
    }

    #[test]
    fn a_zero_ephemeral_key_is_refused() {
        assert_eq!(
            ClientHello::decode(&[0; 48]),
            Err(HandshakeError::WeakKey("client ephemeral key"))
        );
    }

    #[test]
    fn the_server_hello_opens_for_the_client_only() {
        let server = SecretKey::generate();
        let client_ephemeral = SecretKey::generate();
        let hello = ServerHello {
            cookie: Cookie::random(),
            ephemeral_public: SecretKey::generate().public_key(),
            echoed_cookie: Cookie::random(),
        };
        let bytes = hello.seal(&server, &client_ephemeral.public_key()).unwrap();
        assert_eq!(&bytes[..16], hello.cookie.as_bytes());
        let opened = ServerHello::open(&bytes, &server.public_key(), &client_ephemeral);
        assert_eq!(opened, Ok(hello));
        let stranger = SecretKey::generate();
        assert_eq!(
            ServerHello::open(&bytes, &server.public_key(), &stranger),
            Err(HandshakeError::Decrypt("server-hello"))
        );
    }
}
