//! The MAC that authenticates a callback (incoming message) to the customer.
//!
//! The gateway posts `from`, `to`, `messageId`, `date`, `nonce`, `box` and `mac` to the
//! customer's URL. `mac` is HMAC-SHA256, keyed with the UTF-8 bytes of the account's API
//! secret, over the plain concatenation of the six other field *strings exactly as sent*
//! (no separators, no re-encoding), written as 64 lowercase hex characters.
//!
//! A receiver must check the MAC before trusting any field; [`verify_callback_mac`] does
//! so in constant time and treats a malformed MAC as a mismatch.

use hmac::Mac;

use super::hash::{hmac_sha256, new_hmac};
use super::ApiSecret;

/// The six callback fields covered by the MAC, as the strings sent on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackFields<'a> {
    /// Sender's identity ID.
    pub from: &'a str,
    /// The receiving gateway ID.
    pub to: &'a str,
    /// Message ID, 16 hex characters.
    pub message_id: &'a str,
    /// Sender's timestamp, decimal UNIX seconds.
    pub date: &'a str,
    /// Nonce, 48 hex characters.
    pub nonce: &'a str,
    /// The box, hex.
    pub box_hex: &'a str,
}

impl CallbackFields<'_> {
    /// The fields in MAC order.
    fn parts(&self) -> [&[u8]; 6] {
        [
            self.from.as_bytes(),
            self.to.as_bytes(),
            self.message_id.as_bytes(),
            self.date.as_bytes(),
            self.nonce.as_bytes(),
            self.box_hex.as_bytes(),
        ]
    }
}

/// The raw 32-byte MAC of a callback.
pub fn callback_mac(secret: &ApiSecret, fields: &CallbackFields<'_>) -> [u8; 32] {
    hmac_sha256(secret.expose().as_bytes(), &fields.parts())
}

/// The MAC of a callback as 64 lowercase hex characters, ready for the `mac` field.
pub fn callback_mac_hex(secret: &ApiSecret, fields: &CallbackFields<'_>) -> String {
    hex::encode(callback_mac(secret, fields))
}

/// Whether `mac_hex` is the right MAC for `fields`.
///
/// Accepts either hex case. Returns `false` for anything that is not 64 hex characters.
/// The comparison of the decoded bytes takes constant time.
pub fn verify_callback_mac(secret: &ApiSecret, fields: &CallbackFields<'_>, mac_hex: &str) -> bool {
    let mut given = [0u8; 32];
    if mac_hex.len() != 64 || hex::decode_to_slice(mac_hex, &mut given).is_err() {
        return false;
    }
    let mut mac = new_hmac(secret.expose().as_bytes());
    fields.parts().iter().for_each(|part| mac.update(part));
    mac.verify_slice(&given).is_ok()
}
