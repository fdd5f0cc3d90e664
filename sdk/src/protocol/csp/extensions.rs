//! Login extensions: what a client tells the server about itself at login.
//!
//! The extensions travel in their own box right after the login box. Inside, each one is
//! `type (u8) ‖ length (u16-le) ‖ value`:
//!
//! | type | name | value |
//! | --- | --- | --- |
//! | `0x00` | client-info | UTF-8 `version;platform;lang/country;…` |
//! | `0x01` | csp-device-id | u64-le, random, fixed per device |
//! | `0x02` | message-payload-version | u8: `0x00` legacy, `0x01` with metadata |
//! | `0x03` | device-cookie | 16 random bytes kept only on the device |
//!
//! Decoding skips unknown types (so newer clients can add some) and refuses a known type
//! that is repeated or has the wrong size, so a login never means two things at once.

use std::fmt;

use subtle::ConstantTimeEq;

use super::HandshakeError;
use crate::crypto::{fill_random, TAG_LEN};

const CLIENT_INFO: u8 = 0x00;
const DEVICE_ID: u8 = 0x01;
const PAYLOAD_VERSION: u8 = 0x02;
const DEVICE_COOKIE: u8 = 0x03;

/// Size of one extension's header: type and length.
const HEADER_LEN: usize = 3;

/// Largest extensions box: its length travels as a u16.
pub const MAX_EXTENSIONS_BOX_LEN: usize = u16::MAX as usize;

/// A device's ID within its identity: lets several devices of one identity hold
/// sessions at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CspDeviceId(u64);

impl CspDeviceId {
    /// Wraps a device ID as it is stored.
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// A fresh random ID, as a device picks once when it joins a device group.
    pub fn random() -> Self {
        let mut bytes = [0u8; 8];
        fill_random(&mut bytes);
        Self(u64::from_le_bytes(bytes))
    }

    /// The numeric value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CspDeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Which layout of outgoing and incoming messages the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadVersion {
    /// The legacy layout: nickname in the clear header, no metadata box.
    Legacy,
    /// The layout with an encrypted metadata box (not supported by this crate yet).
    WithMetadata,
}

impl PayloadVersion {
    /// The byte on the wire.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Legacy => 0x00,
            Self::WithMetadata => 0x01,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x00 => Some(Self::Legacy),
            0x01 => Some(Self::WithMetadata),
            _ => None,
        }
    }
}

/// Sixteen random bytes a device keeps to itself; the server remembers the last one it
/// saw, and a different one reveals a second device using a copied client key.
///
/// Compared in constant time and redacted in `Debug`, since a copy would let a clone
/// pass unnoticed.
#[derive(Clone, Copy)]
pub struct DeviceCookie([u8; 16]);

impl DeviceCookie {
    /// Number of raw bytes.
    pub const LEN: usize = 16;

    /// A fresh cookie from the operating system's random number generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// Wraps sixteen raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The sixteen raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl PartialEq for DeviceCookie {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for DeviceCookie {}

impl fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCookie(***)")
    }
}

/// The extensions a client sends with its login; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginExtensions {
    /// Free-form client description, e.g. `1.0;B;en/CH;tocsin`.
    pub client_info: Option<String>,
    /// This device's ID; required for several sessions of one identity at once.
    pub device_id: Option<CspDeviceId>,
    /// The message layout the client speaks; absent means legacy.
    pub payload_version: Option<PayloadVersion>,
    /// The device's clone-detection cookie.
    pub device_cookie: Option<DeviceCookie>,
}

impl LoginExtensions {
    /// Whether no extension is set (the login then carries no extensions box).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The plaintext of the extensions box; fails if the box would not fit its u16
    /// length.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, HandshakeError> {
        let mut out = Vec::new();
        if let Some(info) = &self.client_info {
            push(&mut out, CLIENT_INFO, info.as_bytes());
        }
        if let Some(id) = self.device_id {
            push(&mut out, DEVICE_ID, &id.0.to_le_bytes());
        }
        if let Some(version) = self.payload_version {
            push(&mut out, PAYLOAD_VERSION, &[version.to_byte()]);
        }
        if let Some(cookie) = &self.device_cookie {
            push(&mut out, DEVICE_COOKIE, &cookie.0);
        }
        if out.len() + TAG_LEN > MAX_EXTENSIONS_BOX_LEN {
            return Err(HandshakeError::ExtensionsTooLong(out.len()));
        }
        Ok(out)
    }

    /// Reads the plaintext of an extensions box.
    pub(crate) fn decode(mut bytes: &[u8]) -> Result<Self, HandshakeError> {
        let mut ext = Self::default();
        while !bytes.is_empty() {
            let (kind, len) = match bytes {
                [kind, lo, hi, ..] => (*kind, usize::from(u16::from_le_bytes([*lo, *hi]))),
                _ => return Err(HandshakeError::BadExtension("truncated extension header")),
            };
            let value = bytes
                .get(HEADER_LEN..HEADER_LEN + len)
                .ok_or(HandshakeError::BadExtension("truncated extension value"))?;
            bytes = &bytes[HEADER_LEN + len..];
            match kind {
                CLIENT_INFO => {
                    let info = std::str::from_utf8(value)
                        .map_err(|_| HandshakeError::BadExtension("client-info is not UTF-8"))?;
                    set_once(&mut ext.client_info, info.to_owned())?;
                }
                DEVICE_ID => {
                    let raw = value
                        .try_into()
                        .map_err(|_| HandshakeError::BadExtension("device ID is not 8 bytes"))?;
                    set_once(&mut ext.device_id, CspDeviceId(u64::from_le_bytes(raw)))?;
                }
                PAYLOAD_VERSION => {
                    let version = match value {
                        [byte] => PayloadVersion::from_byte(*byte),
                        _ => None,
                    }
                    .ok_or(HandshakeError::BadExtension(
                        "unknown message payload version",
                    ))?;
                    set_once(&mut ext.payload_version, version)?;
                }
                DEVICE_COOKIE => {
                    let raw = value.try_into().map_err(|_| {
                        HandshakeError::BadExtension("device cookie is not 16 bytes")
                    })?;
                    set_once(&mut ext.device_cookie, DeviceCookie(raw))?;
                }
                _ => {}
            }
        }
        Ok(ext)
    }
}

/// Appends one extension. The caller checks the total size afterwards, so a value too
/// long for its u16 length is caught there (the total is then too long as well).
fn push(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.push(kind);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value);
}

/// Stores a decoded value, refusing a second one of the same type.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), HandshakeError> {
    if slot.is_some() {
        return Err(HandshakeError::BadExtension("an extension is repeated"));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> LoginExtensions {
        LoginExtensions {
            client_info: Some("1.0;B;en/CH;tocsin".into()),
            device_id: Some(CspDeviceId::new(0x1122_3344_5566_7788)),
            payload_version: Some(PayloadVersion::Legacy),
            device_cookie: Some(DeviceCookie::from_bytes([0x77; 16])),
        }
    }

    #[test]
    fn every_extension_round_trips_in_the_documented_layout() {
        let bytes = full().encode().unwrap();
        assert_eq!(&bytes[..3], &[0x00, 18, 0]);
        let id_at = 3 + 18;
        assert_eq!(
            &bytes[id_at..id_at + 11],
            &[0x01, 8, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!(&bytes[id_at + 11..id_at + 15], &[0x02, 1, 0, 0x00]);
        assert_eq!(LoginExtensions::decode(&bytes), Ok(full()));
    }

    #[test]
    fn unknown_extensions_are_skipped_and_repeats_refused() {
        let mut bytes = vec![0x7f, 2, 0, 0xaa, 0xbb];
        bytes.extend_from_slice(&[0x02, 1, 0, 0x01]);
        let ext = LoginExtensions::decode(&bytes).unwrap();
        assert_eq!(ext.payload_version, Some(PayloadVersion::WithMetadata));
        bytes.extend_from_slice(&[0x02, 1, 0, 0x00]);
        assert!(LoginExtensions::decode(&bytes).is_err());
    }

    #[test]
    fn truncated_or_missized_values_are_refused() {
        for bad in [
            &[0x01][..],
            &[0x00, 5, 0, b'a'],
            &[0x01, 4, 0, 1, 2, 3, 4],
            &[0x03, 1, 0, 9],
            &[0x00, 1, 0, 0xff],
        ] {
            assert!(LoginExtensions::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_info_too_long_for_the_box_is_refused() {
        let ext = LoginExtensions {
            client_info: Some("x".repeat(70_000)),
            ..LoginExtensions::default()
        };
        assert!(matches!(
            ext.encode(),
            Err(HandshakeError::ExtensionsTooLong(_))
        ));
    }
}
