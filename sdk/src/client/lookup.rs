//! ID lookups by phone number, e-mail address, or their hashes, one at a time or in bulk.
//!
//! The plain forms send the value to the server, which normalises and hashes it; the
//! `_hash` forms keep the value private (hash it with [`crate::protocol::hash_phone`] or
//! [`crate::protocol::hash_email`]). A lookup that matches nobody is `Ok(None)`, not an
//! error.

use serde::{Deserialize, Serialize};

use super::transport::decode;
use super::{Client, Error};
use crate::protocol::{IdentityId, LookupHash, PublicKey};

/// One match of [`Client::lookup_bulk`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupMatch {
    /// The identity the hash belongs to.
    pub identity: IdentityId,
    /// Its current public key, saving a separate key lookup.
    pub public_key: PublicKey,
    /// The phone hash that matched, if this match came from the phone list.
    #[serde(default)]
    pub phone_hash: Option<LookupHash>,
    /// The e-mail hash that matched, if this match came from the e-mail list.
    #[serde(default)]
    pub email_hash: Option<LookupHash>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HashesBody<'a> {
    phone_hashes: &'a [LookupHash],
    email_hashes: &'a [LookupHash],
}

impl Client {
    async fn lookup(&self, kind: &str, value: &str) -> Result<Option<IdentityId>, Error> {
        let request = self.get(&["lookup", kind, value]);
        match self.text_or_none(request).await? {
            Some(text) => decode(IdentityId::parse(&text), "an identity ID").map(Some),
            None => Ok(None),
        }
    }

    /// The ID linked to a phone number (E.164; the server keeps only its digits).
    ///
    /// Cost: the server's lookup price (0 credits unless configured otherwise).
    ///
    /// # Errors
    ///
    /// `Ok(None)` when nobody matches, including for input that is not a phone number.
    /// [`Error::Unauthorized`], [`Error::NoCredits`] (only with a non-zero lookup price),
    /// [`Error::RateLimited`], [`Error::Server`], [`Error::Transport`], [`Error::Decode`].
    pub async fn lookup_phone(&self, phone: &str) -> Result<Option<IdentityId>, Error> {
        self.lookup("phone", phone).await
    }

    /// The ID linked to a phone hash.
    ///
    /// Cost and errors as [`Client::lookup_phone`].
    pub async fn lookup_phone_hash(&self, hash: &LookupHash) -> Result<Option<IdentityId>, Error> {
        self.lookup("phone_hash", &hash.to_string()).await
    }

    /// The ID linked to an e-mail address (the server trims and lowercases it).
    ///
    /// Cost and errors as [`Client::lookup_phone`].
    pub async fn lookup_email(&self, email: &str) -> Result<Option<IdentityId>, Error> {
        self.lookup("email", email).await
    }

    /// The ID linked to an e-mail hash.
    ///
    /// Cost and errors as [`Client::lookup_phone`].
    pub async fn lookup_email_hash(&self, hash: &LookupHash) -> Result<Option<IdentityId>, Error> {
        self.lookup("email_hash", &hash.to_string()).await
    }

    /// Looks up many hashes at once; the answer lists the matches only, each with its
    /// public key. At most 1000 hashes in total.
    ///
    /// Cost: the server's lookup price once per match (0 unless configured otherwise).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for more than 1000 hashes; [`Error::Unauthorized`],
    /// [`Error::NoCredits`], [`Error::RateLimited`], [`Error::Server`],
    /// [`Error::Transport`]; [`Error::Decode`] for an answer that is not a list of
    /// matches with valid IDs, keys and hashes.
    pub async fn lookup_bulk(
        &self,
        phone_hashes: &[LookupHash],
        email_hashes: &[LookupHash],
    ) -> Result<Vec<LookupMatch>, Error> {
        let body = HashesBody {
            phone_hashes,
            email_hashes,
        };
        let request = self.post_with_query(&["lookup", "bulk"], &[]).json(&body);
        self.json(request).await
    }
}
