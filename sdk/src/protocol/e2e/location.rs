//! Location messages (type 0x10).
//!
//! The body is UTF-8 text. Its first line is `latitude,longitude[,accuracy]` in decimal
//! degrees (accuracy in metres). Up to two more lines may follow: one extra line is the
//! address; two extra lines are the place name, then the address. Lines after the third
//! are taken as further address lines, so multi-line addresses from other clients are
//! not lost.
//!
//! Encoding: a name is only sent together with an address line, which is empty when
//! there is no address; on decoding, an empty name or address line means "absent". For a
//! faithful round trip, `name` and `address` should therefore be non-empty single lines.

use super::E2eError;

/// A shared geographic position.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// Decimal degrees, −90 to 90.
    pub latitude: f64,
    /// Decimal degrees, −180 to 180.
    pub longitude: f64,
    /// Accuracy radius in metres, if known (finite, not negative).
    pub accuracy: Option<f64>,
    /// Name of the place, e.g. a shop.
    pub name: Option<String>,
    /// Postal address of the place.
    pub address: Option<String>,
}

impl Location {
    /// A bare position with no accuracy, name or address.
    pub fn new(latitude: f64, longitude: f64) -> Result<Self, E2eError> {
        let location = Self {
            latitude,
            longitude,
            accuracy: None,
            name: None,
            address: None,
        };
        location.validate()?;
        Ok(location)
    }

    /// Checks the ranges: latitude −90..=90, longitude −180..=180, accuracy finite and
    /// not negative. NaN and infinities fail.
    pub fn validate(&self) -> Result<(), E2eError> {
        if !(-90.0..=90.0).contains(&self.latitude) {
            return Err(E2eError::Location("latitude must be between -90 and 90"));
        }
        if !(-180.0..=180.0).contains(&self.longitude) {
            return Err(E2eError::Location("longitude must be between -180 and 180"));
        }
        if let Some(accuracy) = self.accuracy {
            if !(accuracy.is_finite() && accuracy >= 0.0) {
                return Err(E2eError::Location("accuracy must be a finite number >= 0"));
            }
        }
        Ok(())
    }

    /// The message body. Rust prints floats in plain decimal (never with an exponent)
    /// and with as many digits as needed to read back the same value.
    pub(super) fn encode_body(&self) -> Vec<u8> {
        let mut text = format!("{},{}", self.latitude, self.longitude);
        if let Some(accuracy) = self.accuracy {
            text.push_str(&format!(",{accuracy}"));
        }
        match (&self.name, &self.address) {
            (Some(name), address) => {
                text.push('\n');
                text.push_str(name);
                text.push('\n');
                text.push_str(address.as_deref().unwrap_or_default());
            }
            (None, Some(address)) => {
                text.push('\n');
                text.push_str(address);
            }
            (None, None) => {}
        }
        text.into_bytes()
    }

    /// Parses and validates a message body.
    pub(super) fn decode_body(body: &[u8]) -> Result<Self, E2eError> {
        let text = std::str::from_utf8(body).map_err(|_| E2eError::InvalidUtf8("location"))?;
        let mut lines = text.split('\n');
        let coordinates = lines.next().unwrap_or_default();
        let mut numbers = coordinates.split(',').map(parse_number);
        let (latitude, longitude) = match (numbers.next(), numbers.next()) {
            (Some(lat), Some(lon)) => (lat?, lon?),
            _ => return Err(E2eError::Location("expected latitude,longitude[,accuracy]")),
        };
        let accuracy = numbers.next().transpose()?;
        if numbers.next().is_some() {
            return Err(E2eError::Location("expected latitude,longitude[,accuracy]"));
        }
        let extra: Vec<&str> = lines.collect();
        let (name, address) = match extra.as_slice() {
            [] => (None, None),
            [address] => (None, non_empty(address)),
            [name, address @ ..] => (non_empty(name), non_empty(&address.join("\n"))),
        };
        let location = Self {
            latitude,
            longitude,
            accuracy,
            name,
            address,
        };
        location.validate()?;
        Ok(location)
    }
}

fn parse_number(field: &str) -> Result<f64, E2eError> {
    field
        .trim()
        .parse()
        .map_err(|_| E2eError::Location("coordinates must be decimal numbers"))
}

fn non_empty(line: &str) -> Option<String> {
    (!line.is_empty()).then(|| line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_extra_line_is_the_address_two_are_name_and_address() {
        let loc = Location::decode_body(b"47.3769,8.5417,12.5\nBahnhofplatz, Zurich").unwrap();
        assert_eq!(loc.accuracy, Some(12.5));
        assert_eq!(loc.name, None);
        assert_eq!(loc.address.as_deref(), Some("Bahnhofplatz, Zurich"));

        let loc = Location::decode_body(b"47.3769, 8.5417\nStation\nBahnhofplatz").unwrap();
        assert_eq!(loc.name.as_deref(), Some("Station"));
        assert_eq!(loc.address.as_deref(), Some("Bahnhofplatz"));
    }

    #[test]
    fn a_name_without_address_survives_encoding() {
        let mut loc = Location::new(1.5, -2.25).unwrap();
        loc.name = Some("Hut".into());
        assert_eq!(Location::decode_body(&loc.encode_body()).unwrap(), loc);
    }

    #[test]
    fn bad_coordinates_are_refused() {
        for body in [
            &b"91,0"[..],
            b"0,181",
            b"NaN,0",
            b"inf,0",
            b"1",
            b"1,2,3,4",
            b"1,2,-1",
            b"a,b",
        ] {
            assert!(Location::decode_body(body).is_err(), "{body:?}");
        }
    }
}
