//! The callback form: the known fields, each at most once, and the parsers of the two
//! fields that have no wire type of their own.

use super::ReceiveError;

// Positions of the known fields in [`KNOWN`].
pub(super) const FROM: usize = 0;
pub(super) const TO: usize = 1;
pub(super) const MESSAGE_ID: usize = 2;
pub(super) const DATE: usize = 3;
pub(super) const NONCE: usize = 4;
pub(super) const BOX: usize = 5;
pub(super) const MAC: usize = 6;
pub(super) const NICKNAME: usize = 7;

/// The fields a callback form may carry; others are ignored.
pub(super) const KNOWN: [&str; 8] = [
    "from",
    "to",
    "messageId",
    "date",
    "nonce",
    "box",
    "mac",
    "nickname",
];

/// The known fields of a form, each at most once.
pub(super) struct Form([Option<String>; 8]);

impl Form {
    pub(super) fn parse(body: &[u8]) -> Result<Self, ReceiveError> {
        let mut values: [Option<String>; 8] = Default::default();
        for (name, value) in form_urlencoded::parse(body) {
            let Some(index) = KNOWN.iter().position(|known| *known == name) else {
                continue;
            };
            if values[index].is_some() {
                return Err(ReceiveError::RepeatedField(KNOWN[index]));
            }
            values[index] = Some(value.into_owned());
        }
        Ok(Self(values))
    }

    pub(super) fn get(&self, field: usize) -> Result<&str, ReceiveError> {
        self.0[field]
            .as_deref()
            .ok_or(ReceiveError::MissingField(KNOWN[field]))
    }

    pub(super) fn take(&mut self, field: usize) -> Option<String> {
        self.0[field].take()
    }
}

/// The box: non-empty hex of whole bytes, either case.
pub(super) fn parse_box(text: &str) -> Result<Vec<u8>, ReceiveError> {
    let malformed = |reason: &str| ReceiveError::Malformed {
        field: KNOWN[BOX],
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(malformed("it is empty"));
    }
    hex::decode(text).map_err(|_| malformed("it is not hex of whole bytes"))
}

/// The date: decimal Unix seconds, digits only (no sign, no fraction).
pub(super) fn parse_date(text: &str) -> Result<u64, ReceiveError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .ok_or(ReceiveError::Malformed {
            field: KNOWN[DATE],
            reason: "it must be whole Unix seconds in decimal digits".to_owned(),
        })
}
