//! The directory and the account: public keys, capabilities, and the credit balance.
//!
//! Keys come back through [`PublicKey::parse`], so a key the server answers is never a
//! small-order point; an unknown or revoked ID is `Ok(None)`.

use serde::{Deserialize, Serialize};

use super::transport::decode;
use super::{Client, Error};
use crate::protocol::{Capabilities, IdentityId, PublicKey};

#[derive(Serialize)]
struct IdentitiesBody<'a> {
    identities: &'a [IdentityId],
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyEntry {
    identity: IdentityId,
    public_key: PublicKey,
}

impl Client {
    /// The public key of a user ID or gateway ID (`*…`, via [`crate::protocol::GatewayId::as_identity`]).
    ///
    /// Cost: the server's lookup price (0 credits unless configured otherwise).
    ///
    /// # Errors
    ///
    /// `Ok(None)` for an unknown or revoked ID. [`Error::Unauthorized`],
    /// [`Error::NoCredits`] (only with a non-zero lookup price), [`Error::RateLimited`],
    /// [`Error::Server`], [`Error::Transport`]; [`Error::Decode`] for an answer that is not
    /// a usable key.
    pub async fn pubkey(&self, id: &IdentityId) -> Result<Option<PublicKey>, Error> {
        let request = self.get(&["pubkeys", id.as_str()]);
        match self.text_or_none(request).await? {
            Some(text) => decode(PublicKey::parse(&text), "a public key").map(Some),
            None => Ok(None),
        }
    }

    /// The public keys of up to 1000 IDs in one request; unknown IDs are left out of the
    /// answer. Pairs come in the server's order.
    ///
    /// Cost: the server's lookup price once per key found (0 unless configured).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for more than 1000 IDs; [`Error::Unauthorized`],
    /// [`Error::NoCredits`], [`Error::RateLimited`], [`Error::Server`],
    /// [`Error::Transport`], [`Error::Decode`].
    pub async fn pubkeys_bulk(
        &self,
        ids: &[IdentityId],
    ) -> Result<Vec<(IdentityId, PublicKey)>, Error> {
        let body = IdentitiesBody { identities: ids };
        let request = self.post_with_query(&["pubkeys", "bulk"], &[]).json(&body);
        let entries: Vec<KeyEntry> = self.json(request).await?;
        Ok(entries
            .into_iter()
            .map(|e| (e.identity, e.public_key))
            .collect())
    }

    /// What the recipient's app can receive (`text`, `image`, `file`…). Check for `file`
    /// before sending a file message.
    ///
    /// Cost: the server's lookup price (0 credits unless configured otherwise).
    ///
    /// # Errors
    ///
    /// `Ok(None)` for an unknown or revoked ID; otherwise as [`Client::pubkey`].
    pub async fn capabilities(&self, id: &IdentityId) -> Result<Option<Capabilities>, Error> {
        let request = self.get(&["capabilities", id.as_str()]);
        match self.text_or_none(request).await? {
            Some(text) => decode(Capabilities::parse(&text), "a capability list").map(Some),
            None => Ok(None),
        }
    }

    /// The account's remaining credits.
    ///
    /// Cost: free.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`], [`Error::RateLimited`], [`Error::Server`],
    /// [`Error::Transport`]; [`Error::Decode`] for an answer that is not an integer.
    pub async fn credits(&self) -> Result<i64, Error> {
        let text = self.text(self.get(&["credits"])).await?;
        decode(text.parse::<i64>(), "a decimal credit balance")
    }
}
