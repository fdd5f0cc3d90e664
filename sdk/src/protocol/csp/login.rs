//! The second round trip of the handshake: login and login-ack.
//!
//! Both boxes use the session key `X25519HSalsa20(TCK, TSK)`, the same key the framed
//! payloads use afterwards, so the sequence numbers used here are the first of each
//! direction:
//!
//! ```text
//! login      C→S  box(login data, 128 bytes)            nonce CCK ‖ 1     = 144 bytes
//!                 [box(extensions)                       nonce CCK ‖ 2]    + indicated length
//! login-ack  S→C  box(16 zero bytes)                     nonce SCK ‖ 2     = 32 bytes
//! ```
//!
//! Login data: identity (8) ‖ client-info or extension indicator (32) ‖ echoed SCK (16)
//! ‖ 24 zero bytes ‖ vouch (32) ‖ 16 zero bytes. The indicator is the 30-byte magic
//! `threema-clever-extension-field` followed by the u16-le length of the extensions box;
//! without it the field is a zero-padded client-info string (older clients). The two zero
//! areas are leftovers of an older vouch format and are ignored when reading.

use super::{Cookie, HandshakeError, LoginExtensions};
use crate::crypto::{SharedKey, TAG_LEN};
use crate::protocol::IdentityId;

/// Sequence number of the login box: the client's first box under the session key.
pub(crate) const LOGIN_CSN: u64 = 1;
/// Sequence number of the extensions box, when there is one.
pub(crate) const EXTENSIONS_CSN: u64 = 2;
/// Sequence number of the login-ack box: the server's second box, after server-hello.
pub(crate) const LOGIN_ACK_SSN: u64 = 2;

/// Size of the login data inside the login box.
const DATA_LEN: usize = 128;
/// Size of the login box: login data and tag. The extensions box, if any, follows it.
pub(crate) const LOGIN_BOX_LEN: usize = DATA_LEN + TAG_LEN;
/// Size of the login-ack: a box of 16 zero bytes.
pub(crate) const LOGIN_ACK_LEN: usize = 16 + TAG_LEN;

/// The magic that turns the client-info field into an extension indicator.
const EXTENSION_MAGIC: &[u8; 30] = b"threema-clever-extension-field";

const IDENTITY_AT: usize = 0;
const CLIENT_INFO_AT: usize = 8;
const CLIENT_INFO_LEN: usize = 32;
const SERVER_COOKIE_AT: usize = 40;
const VOUCH_AT: usize = 80;

/// The content of a login, as the client writes it and the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginData {
    pub(crate) identity: IdentityId,
    pub(crate) server_cookie: Cookie,
    pub(crate) vouch: [u8; 32],
    pub(crate) extensions: LoginExtensions,
}

/// A sealed login and the client's next sequence number after it.
pub(crate) struct SealedLogin {
    pub(crate) bytes: Vec<u8>,
    pub(crate) next_csn: u64,
}

/// Seals the login box, followed by the extensions box when any extension is set.
pub(crate) fn seal_login(
    data: &LoginData,
    key: &SharedKey,
    client_cookie: &Cookie,
) -> Result<SealedLogin, HandshakeError> {
    let mut plain = [0u8; DATA_LEN];
    plain[IDENTITY_AT..CLIENT_INFO_AT].copy_from_slice(data.identity.as_bytes());
    plain[SERVER_COOKIE_AT..SERVER_COOKIE_AT + Cookie::LEN]
        .copy_from_slice(data.server_cookie.as_bytes());
    plain[VOUCH_AT..VOUCH_AT + 32].copy_from_slice(&data.vouch);
    let extensions = if data.extensions.is_empty() {
        None
    } else {
        let ext_plain = data.extensions.encode()?;
        let ext_box = key.seal(&client_cookie.nonce(EXTENSIONS_CSN), &ext_plain);
        // `encode` checked that the box fits its u16 length.
        let len = u16::try_from(ext_box.len())
            .map_err(|_| HandshakeError::ExtensionsTooLong(ext_plain.len()))?;
        let field = &mut plain[CLIENT_INFO_AT..CLIENT_INFO_AT + CLIENT_INFO_LEN];
        field[..EXTENSION_MAGIC.len()].copy_from_slice(EXTENSION_MAGIC);
        field[EXTENSION_MAGIC.len()..].copy_from_slice(&len.to_le_bytes());
        Some(ext_box)
    };
    let mut bytes = key.seal(&client_cookie.nonce(LOGIN_CSN), &plain);
    let next_csn = match extensions {
        Some(ext_box) => {
            bytes.extend_from_slice(&ext_box);
            EXTENSIONS_CSN + 1
        }
        None => LOGIN_CSN + 1,
    };
    Ok(SealedLogin { bytes, next_csn })
}

/// The opened login data and what its client-info field announced.
struct LoginHead {
    plain: Vec<u8>,
    /// Length of the extensions box that follows, if the field is an indicator.
    extensions_len: Option<usize>,
}

/// Opens the 144-byte login box at the start of `bytes`.
fn open_head(
    bytes: &[u8],
    key: &SharedKey,
    client_cookie: &Cookie,
) -> Result<LoginHead, HandshakeError> {
    let head = bytes.get(..LOGIN_BOX_LEN).ok_or(HandshakeError::Length {
        step: "login",
        expected: LOGIN_BOX_LEN,
        got: bytes.len(),
    })?;
    let plain = key
        .open(&client_cookie.nonce(LOGIN_CSN), head)
        .map_err(|_| HandshakeError::Decrypt("login"))?;
    let field = plain
        .get(CLIENT_INFO_AT..CLIENT_INFO_AT + CLIENT_INFO_LEN)
        .ok_or(HandshakeError::Decrypt("login"))?;
    let extensions_len = match field.split_at(EXTENSION_MAGIC.len()) {
        (magic, &[lo, hi]) if magic == EXTENSION_MAGIC => {
            Some(usize::from(u16::from_le_bytes([lo, hi])))
        }
        _ => None,
    };
    Ok(LoginHead {
        plain,
        extensions_len,
    })
}

/// The full length of a login whose first 144 bytes are `head`: 144, plus the length
/// of the extensions box the indicator announces.
pub(crate) fn login_len(
    head: &[u8],
    key: &SharedKey,
    client_cookie: &Cookie,
) -> Result<usize, HandshakeError> {
    let head = open_head(head, key, client_cookie)?;
    Ok(LOGIN_BOX_LEN + head.extensions_len.unwrap_or(0))
}

/// Opens a whole login (login box and extensions box) and returns its data and the
/// client's next sequence number. The length must match the indicator exactly.
pub(crate) fn open_login(
    bytes: &[u8],
    key: &SharedKey,
    client_cookie: &Cookie,
) -> Result<(LoginData, u64), HandshakeError> {
    let head = open_head(bytes, key, client_cookie)?;
    let expected = LOGIN_BOX_LEN + head.extensions_len.unwrap_or(0);
    if bytes.len() != expected {
        return Err(HandshakeError::Length {
            step: "login",
            expected,
            got: bytes.len(),
        });
    }
    let plain = &head.plain;
    let identity = IdentityId::from_bytes(&plain[IDENTITY_AT..CLIENT_INFO_AT])
        .map_err(HandshakeError::Identity)?;
    let server_cookie =
        Cookie::read(plain, SERVER_COOKIE_AT).ok_or(HandshakeError::Decrypt("login"))?;
    let mut vouch = [0u8; 32];
    vouch.copy_from_slice(&plain[VOUCH_AT..VOUCH_AT + 32]);
    let (extensions, next_csn) = match head.extensions_len {
        Some(_) => {
            let ext_plain = key
                .open(
                    &client_cookie.nonce(EXTENSIONS_CSN),
                    &bytes[LOGIN_BOX_LEN..],
                )
                .map_err(|_| HandshakeError::Decrypt("login extensions"))?;
            (LoginExtensions::decode(&ext_plain)?, EXTENSIONS_CSN + 1)
        }
        None => {
            let field = &plain[CLIENT_INFO_AT..CLIENT_INFO_AT + CLIENT_INFO_LEN];
            let text = field.split(|&b| b == 0).next().unwrap_or_default();
            let info = std::str::from_utf8(text)
                .map_err(|_| HandshakeError::BadExtension("client-info is not UTF-8"))?;
            let extensions = LoginExtensions {
                client_info: (!info.is_empty()).then(|| info.to_owned()),
                ..LoginExtensions::default()
            };
            (extensions, LOGIN_CSN + 1)
        }
    };
    let data = LoginData {
        identity,
        server_cookie,
        vouch,
        extensions,
    };
    Ok((data, next_csn))
}

/// Seals the login-ack: 16 zero bytes under nonce `SCK ‖ 2`.
pub(crate) fn seal_login_ack(key: &SharedKey, server_cookie: &Cookie) -> Vec<u8> {
    key.seal(&server_cookie.nonce(LOGIN_ACK_SSN), &[0u8; 16])
}

/// Checks a login-ack: exactly 32 bytes that open to 16 zero bytes.
pub(crate) fn open_login_ack(
    bytes: &[u8],
    key: &SharedKey,
    server_cookie: &Cookie,
) -> Result<(), HandshakeError> {
    if bytes.len() != LOGIN_ACK_LEN {
        return Err(HandshakeError::Length {
            step: "login-ack",
            expected: LOGIN_ACK_LEN,
            got: bytes.len(),
        });
    }
    let plain = key
        .open(&server_cookie.nonce(LOGIN_ACK_SSN), bytes)
        .map_err(|_| HandshakeError::Decrypt("login-ack"))?;
    if plain.iter().any(|&b| b != 0) {
        return Err(HandshakeError::Decrypt("login-ack"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SecretKey;

    fn key() -> SharedKey {
        SharedKey::new(&SecretKey::generate(), &SecretKey::generate().public_key()).unwrap()
    }

    fn data(extensions: LoginExtensions) -> LoginData {
        LoginData {
            identity: IdentityId::parse("ABCD1234").unwrap(),
            server_cookie: Cookie::random(),
            vouch: [0x5a; 32],
            extensions,
        }
    }

    #[test]
    fn a_login_without_extensions_is_one_box_of_144_bytes() {
        let (key, cookie) = (key(), Cookie::random());
        let login = data(LoginExtensions::default());
        let sealed = seal_login(&login, &key, &cookie).unwrap();
        assert_eq!(sealed.bytes.len(), 144);
        assert_eq!(sealed.next_csn, 2);
        let plain = key.open(&cookie.nonce(1), &sealed.bytes).unwrap();
        assert_eq!(&plain[..8], b"ABCD1234");
        assert_eq!(&plain[8..40], &[0; 32]);
        assert_eq!(&plain[40..56], login.server_cookie.as_bytes());
        assert_eq!(&plain[56..80], &[0; 24]);
        assert_eq!(&plain[80..112], &[0x5a; 32]);
        assert_eq!(&plain[112..], &[0; 16]);
        assert_eq!(open_login(&sealed.bytes, &key, &cookie), Ok((login, 2)));
    }

    #[test]
    fn the_indicator_announces_the_extensions_box_length() {
        let (key, cookie) = (key(), Cookie::random());
        let ext = LoginExtensions {
            client_info: Some("0.1;B;en/CH".into()),
            ..LoginExtensions::default()
        };
        let login = data(ext);
        let sealed = seal_login(&login, &key, &cookie).unwrap();
        let plain = key.open(&cookie.nonce(1), &sealed.bytes[..144]).unwrap();
        assert_eq!(&plain[8..38], EXTENSION_MAGIC);
        let announced = usize::from(u16::from_le_bytes([plain[38], plain[39]]));
        assert_eq!(sealed.bytes.len(), 144 + announced);
        assert_eq!(
            login_len(&sealed.bytes[..144], &key, &cookie),
            Ok(144 + announced)
        );
        assert_eq!(open_login(&sealed.bytes, &key, &cookie), Ok((login, 3)));
        assert!(open_login(&sealed.bytes[..150], &key, &cookie).is_err());
    }

    #[test]
    fn a_legacy_client_info_string_is_read() {
        let (key, cookie) = (key(), Cookie::random());
        let mut plain = [0u8; DATA_LEN];
        plain[..8].copy_from_slice(b"ABCD1234");
        plain[8..13].copy_from_slice(b"1;A;x");
        let bytes = key.seal(&cookie.nonce(1), &plain);
        let (opened, next) = open_login(&bytes, &key, &cookie).unwrap();
        assert_eq!(opened.extensions.client_info.as_deref(), Some("1;A;x"));
        assert_eq!(next, 2);
    }

    #[test]
    fn the_login_ack_is_sixteen_zero_bytes() {
        let (key, cookie) = (key(), Cookie::random());
        let ack = seal_login_ack(&key, &cookie);
        assert_eq!(ack.len(), 32);
        assert_eq!(open_login_ack(&ack, &key, &cookie), Ok(()));
        let not_zero = key.seal(&cookie.nonce(2), &[1; 16]);
        assert!(open_login_ack(&not_zero, &key, &cookie).is_err());
    }
}
