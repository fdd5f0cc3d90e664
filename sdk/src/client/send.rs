//! Sending: `send_simple` (the server encrypts), `send_e2e` (the caller sealed the box),
//! and `send_e2e_bulk` (up to 1000 sealed boxes in one request).
//!
//! `send_simple` and `send_e2e` are form POSTs (credentials in the body); the bulk call
//! sends JSON with credentials in the query and base64 instead of hex. Flags are sent only
//! when set, as `1`. An idempotency key makes a retried send answer the first message ID
//! instead of sending twice; the server also recognises a resent `send_e2e` by recipient
//! and nonce without one.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::transport::decode;
use super::{Client, Error};
use crate::protocol::{IdentityId, MessageId, Nonce};

/// Whom a basic-mode message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A Threema ID.
    Id(IdentityId),
    /// A phone number (E.164, with or without `+`); the server resolves it.
    Phone(String),
    /// An e-mail address; the server resolves it.
    Email(String),
}

/// One end-to-end message, sealed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eSend {
    /// The recipient.
    pub to: IdentityId,
    /// The nonce the box was sealed with; never reuse one with the same recipient.
    pub nonce: Nonce,
    /// The NaCl box (tag and ciphertext), at most 4000 bytes.
    pub sealed: Vec<u8>,
    /// Ask the recipient's app not to send delivery receipts.
    pub no_delivery_receipts: bool,
    /// Deliver without a push notification.
    pub no_push: bool,
    /// Mark the message as part of a group conversation.
    pub group: bool,
}

impl E2eSend {
    /// A message with every flag cleared.
    pub fn new(to: IdentityId, nonce: Nonce, sealed: Vec<u8>) -> Self {
        Self {
            to,
            nonce,
            sealed,
            no_delivery_receipts: false,
            no_push: false,
            group: false,
        }
    }
}

/// One element of the bulk request body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BulkItem {
    to: IdentityId,
    nonce: String,
    #[serde(rename = "box")]
    sealed: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_delivery_receipts: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_push: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    group: bool,
}

/// One element of the bulk answer: a message ID or an error code.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkOutcome {
    message_id: Option<MessageId>,
    error_code: Option<u16>,
}

/// Refuses idempotency keys the server would answer with 400.
pub(super) fn check_key(key: &str) -> Result<(), Error> {
    if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Error::Invalid(
            "idempotency key must be 1 to 255 visible ASCII characters".to_owned(),
        ))
    }
}

impl Client {
    /// Sends `text` in basic mode: the server encrypts it with the gateway ID's key.
    ///
    /// Cost: 1 credit. The text may hold at most 3500 UTF-8 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for an unknown or malformed recipient ID, an empty text, or
    /// a gateway ID not set up for basic mode; [`Error::NotFound`] when a phone number or
    /// e-mail address matches nobody; [`Error::TooLarge`] for a text over 3500 bytes;
    /// [`Error::Unauthorized`], [`Error::NoCredits`], [`Error::RateLimited`],
    /// [`Error::Server`], [`Error::Transport`]; [`Error::Decode`] for a malformed answer.
    pub async fn send_simple(&self, to: &Recipient, text: &str) -> Result<MessageId, Error> {
        self.send_simple_keyed(to, text, None).await
    }

    /// [`Client::send_simple`] with an idempotency key: a retry with the same key
    /// answers the first message ID and is not charged again.
    ///
    /// # Errors
    ///
    /// As [`Client::send_simple`], plus [`Error::Invalid`] for a key that is not 1 to 255
    /// visible ASCII characters.
    pub async fn send_simple_with_idempotency_key(
        &self,
        to: &Recipient,
        text: &str,
        key: &str,
    ) -> Result<MessageId, Error> {
        check_key(key)?;
        self.send_simple_keyed(to, text, Some(key)).await
    }

    async fn send_simple_keyed(
        &self,
        to: &Recipient,
        text: &str,
        key: Option<&str>,
    ) -> Result<MessageId, Error> {
        let target = match to {
            Recipient::Id(id) => ("to", id.as_str()),
            Recipient::Phone(phone) => ("phone", phone.as_str()),
            Recipient::Email(email) => ("email", email.as_str()),
        };
        let mut request = self.post_form(&["send_simple"], &[target, ("text", text)]);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        decode(MessageId::parse(&self.text(request).await?), "a message ID")
    }

    /// Relays a box the caller sealed for `msg.to`.
    ///
    /// Cost: 1 credit. The box may hold at most 4000 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] for an unknown recipient, an empty box, or a gateway ID not
    /// set up for end-to-end mode; [`Error::TooLarge`] for a box over 4000 bytes;
    /// [`Error::Unauthorized`], [`Error::NoCredits`], [`Error::RateLimited`],
    /// [`Error::Server`], [`Error::Transport`], [`Error::Decode`].
    pub async fn send_e2e(&self, msg: &E2eSend) -> Result<MessageId, Error> {
        self.send_e2e_keyed(msg, None).await
    }

    /// [`Client::send_e2e`] with an idempotency key: a retry with the same key answers
    /// the first message ID and is not charged again.
    ///
    /// # Errors
    ///
    /// As [`Client::send_e2e`], plus [`Error::Invalid`] for a malformed key.
    pub async fn send_e2e_with_idempotency_key(
        &self,
        msg: &E2eSend,
        key: &str,
    ) -> Result<MessageId, Error> {
        check_key(key)?;
        self.send_e2e_keyed(msg, Some(key)).await
    }

    async fn send_e2e_keyed(&self, msg: &E2eSend, key: Option<&str>) -> Result<MessageId, Error> {
        let nonce = msg.nonce.to_string();
        let sealed = hex::encode(&msg.sealed);
        let mut fields = vec![
            ("to", msg.to.as_str()),
            ("nonce", nonce.as_str()),
            ("box", sealed.as_str()),
        ];
        for (set, name) in [
            (msg.no_delivery_receipts, "noDeliveryReceipts"),
            (msg.no_push, "noPush"),
            (msg.group, "group"),
        ] {
            if set {
                fields.push((name, "1"));
            }
        }
        let mut request = self.post_form(&["send_e2e"], &fields);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        decode(MessageId::parse(&self.text(request).await?), "a message ID")
    }

    /// Relays up to 1000 sealed boxes in one request. Each element succeeds or fails on
    /// its own: the result holds, in input order, the message ID or the HTTP-like error
    /// code (400, 402, 413, 500…) of that element. With `same_message_id`, every accepted
    /// message shares one ID (for fanning one message out to a group).
    ///
    /// Cost: 1 credit per accepted message.
    ///
    /// # Errors
    ///
    /// For the request as a whole: [`Error::TooLarge`] for more than 1000 messages,
    /// [`Error::BadRequest`] for a gateway ID not in end-to-end mode,
    /// [`Error::Unauthorized`], [`Error::RateLimited`], [`Error::Server`],
    /// [`Error::Transport`]; [`Error::Decode`] if the answer does not list one result per
    /// message.
    pub async fn send_e2e_bulk(
        &self,
        msgs: &[E2eSend],
        same_message_id: bool,
    ) -> Result<Vec<Result<MessageId, u16>>, Error> {
        let body: Vec<BulkItem> = msgs
            .iter()
            .map(|m| BulkItem {
                to: m.to,
                nonce: BASE64.encode(m.nonce.as_bytes()),
                sealed: BASE64.encode(&m.sealed),
                no_delivery_receipts: m.no_delivery_receipts,
                no_push: m.no_push,
                group: m.group,
            })
            .collect();
        let extra: &[(&str, &str)] = if same_message_id {
            &[("sameMessageId", "1")]
        } else {
            &[]
        };
        let request = self.post_with_query(&["send_e2e_bulk"], extra).json(&body);
        let outcomes: Vec<BulkOutcome> = self.json(request).await?;
        if outcomes.len() != msgs.len() {
            return Err(Error::Decode(format!(
                "expected {} bulk results, got {}",
                msgs.len(),
                outcomes.len()
            )));
        }
        outcomes
            .into_iter()
            .map(|o| match (o.message_id, o.error_code) {
                (Some(id), _) => Ok(Ok(id)),
                (None, Some(code)) => Ok(Err(code)),
                (None, None) => Err(Error::Decode(
                    "bulk result has neither messageId nor errorCode".to_owned(),
                )),
            })
            .collect()
    }
}
