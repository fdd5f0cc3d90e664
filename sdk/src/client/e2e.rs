//! [`E2eClient`]: end-to-end messaging with the gateway ID's own key pair.
//!
//! Sending a text is: fetch the recipient's public key, pad the message, seal it with a
//! fresh random nonce, relay the box. Sending a file adds: encrypt the file (and
//! thumbnail) with a fresh [`SymmetricKey`] under the fixed file nonces, upload the
//! ciphertexts, and send a file message that carries the blob IDs and the key. The key is
//! used for those two blobs only, which is what makes the fixed nonces safe.
//!
//! The secret key never leaves this type: it is wiped on drop and redacted in `Debug`.

use super::{AlarmBox, Client, E2eSend, Error};
use crate::crypto::{
    decrypt_file_blob, encrypt_file_blob, encrypt_thumbnail_blob, SharedKey, SymmetricKey,
};
use crate::protocol::{
    E2eMessage, FileMessage, IdentityId, MessageId, Nonce, PublicKey, SecretKey,
};

/// A [`Client`] together with the gateway ID's secret key.
#[derive(Debug, Clone)]
pub struct E2eClient {
    client: Client,
    secret_key: SecretKey,
}

impl E2eClient {
    /// Pairs a client with the secret key of its gateway ID.
    pub fn new(client: Client, secret_key: SecretKey) -> Self {
        Self { client, secret_key }
    }

    /// The underlying client, for the calls that need no key.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The gateway ID's public key, derived from the secret key.
    pub fn public_key(&self) -> PublicKey {
        self.secret_key.public_key()
    }

    /// Pads and seals `msg` for the holder of `recipient` under a fresh random nonce.
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] when `recipient` is a key no exchange can be made with.
    pub fn seal(&self, recipient: &PublicKey, msg: &E2eMessage) -> Result<(Nonce, Vec<u8>), Error> {
        let nonce = Nonce::random();
        let sealed = SharedKey::new(&self.secret_key, recipient)?.seal(&nonce, &msg.to_padded());
        Ok((nonce, sealed))
    }

    /// Fetches the recipient's key, seals `msg` for it, and relays it.
    ///
    /// Cost: 1 credit, plus the server's lookup price (0 by default) for the key.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the recipient has no public key (unknown or revoked
    /// ID); [`Error::TooLarge`] when the sealed message exceeds 4000 bytes; otherwise as
    /// [`Client::pubkey`] and [`Client::send_e2e`].
    pub async fn send_message(
        &self,
        to: &IdentityId,
        msg: &E2eMessage,
    ) -> Result<MessageId, Error> {
        let recipient = self.client.pubkey(to).await?.ok_or(Error::NotFound)?;
        let (nonce, sealed) = self.seal(&recipient, msg)?;
        self.client
            .send_e2e(&E2eSend::new(*to, nonce, sealed))
            .await
    }

    /// Sends a text message, encrypted end to end.
    ///
    /// Cost: 1 credit, plus the server's lookup price (0 by default) for the key.
    ///
    /// # Errors
    ///
    /// As [`E2eClient::send_message`]; a text over about 3900 bytes no longer fits the
    /// 4000-byte box and gives [`Error::TooLarge`].
    pub async fn send_text(&self, to: &IdentityId, text: &str) -> Result<MessageId, Error> {
        self.send_message(to, &E2eMessage::Text(text.to_owned()))
            .await
    }

    /// Seals the alarm text `text` for each of `to`, with each one's key fetched from
    /// the server: the boxes of an end-to-end alarm tier ([`super::AlarmTier::boxes`]).
    ///
    /// Cost: the server's lookup price (0 by default) per recipient; nothing is sent.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when a recipient has no public key (unknown or revoked ID);
    /// otherwise as [`Client::pubkey`] and [`E2eClient::seal`].
    pub async fn alarm_boxes(&self, to: &[IdentityId], text: &str) -> Result<Vec<AlarmBox>, Error> {
        let message = E2eMessage::Text(text.to_owned());
        let mut boxes = Vec::with_capacity(to.len());
        for id in to {
            let key = self.client.pubkey(id).await?.ok_or(Error::NotFound)?;
            let (nonce, sealed) = self.seal(&key, &message)?;
            boxes.push(AlarmBox {
                to: *id,
                nonce,
                sealed,
            });
        }
        Ok(boxes)
    }

    /// Encrypts and uploads a file (and an optional thumbnail as `(bytes, media type)`),
    /// then sends the file message pointing at them. The recipient's key is fetched first,
    /// so nothing is uploaded for a recipient that does not exist.
    ///
    /// Cost: 1 credit for the message, 1 per uploaded blob (so 2, or 3 with a thumbnail),
    /// plus the server's lookup price (0 by default).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for a recipient without a key; [`Error::TooLarge`] for a file
    /// over the blob limit; otherwise as [`Client::upload_blob`] and
    /// [`E2eClient::send_message`]. A failure after an upload leaves that blob on the
    /// server until it expires.
    pub async fn send_file(
        &self,
        to: &IdentityId,
        file: &[u8],
        media_type: &str,
        file_name: Option<&str>,
        caption: Option<&str>,
        thumbnail: Option<(&[u8], &str)>,
    ) -> Result<MessageId, Error> {
        let recipient = self.client.pubkey(to).await?.ok_or(Error::NotFound)?;
        let key = SymmetricKey::generate();
        let blob_id = self
            .client
            .upload_blob(encrypt_file_blob(&key, file), false)
            .await?;
        let size = u64::try_from(file.len()).unwrap_or(u64::MAX);
        let mut message = FileMessage::new(blob_id, key, media_type.to_owned(), size);
        if let Some((bytes, thumb_type)) = thumbnail {
            let sealed = encrypt_thumbnail_blob(&message.key, bytes);
            message.thumbnail_blob_id = Some(self.client.upload_blob(sealed, false).await?);
            message.thumbnail_media_type = Some(thumb_type.to_owned());
        }
        message.name = file_name.map(str::to_owned);
        message.caption = caption.map(str::to_owned);
        message.rendering = Some(0);
        message.legacy_rendering = Some(0);
        let (nonce, sealed) = self.seal(&recipient, &E2eMessage::File(message))?;
        self.client
            .send_e2e(&E2eSend::new(*to, nonce, sealed))
            .await
    }

    /// Opens a box that the holder of `sender_public` sealed for this gateway ID and
    /// decodes the message inside (for callback receivers).
    ///
    /// Cost: free; no request is made.
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] when the box does not open with this key pair and nonce;
    /// [`Error::Message`] when the plaintext is not a valid message.
    pub fn open_message(
        &self,
        sender_public: &PublicKey,
        nonce: &Nonce,
        sealed: &[u8],
    ) -> Result<E2eMessage, Error> {
        let plain = SharedKey::new(&self.secret_key, sender_public)?.open(nonce, sealed)?;
        Ok(E2eMessage::from_padded(&plain)?)
    }

    /// Downloads and decrypts the file a received file message points at.
    ///
    /// Cost: free.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the blob is gone; [`Error::Crypto`] when it does not
    /// decrypt with the message's key; otherwise as [`Client::download_blob`].
    pub async fn download_file(&self, file: &FileMessage) -> Result<Vec<u8>, Error> {
        let sealed = self
            .client
            .download_blob(&file.blob_id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(decrypt_file_blob(&file.key, &sealed)?)
    }
}
