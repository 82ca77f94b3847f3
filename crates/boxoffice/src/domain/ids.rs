//! Identifiers parsed at the edge: a value of these types is always in range.

use super::error::Code;
use super::Error;
use std::fmt;

macro_rules! id_type {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            /// Ids are positive 63-bit integers; anything else is an invalid value.
            pub fn parse(raw: i64) -> Result<Self, Error> {
                if raw >= 1 {
                    Ok(Self(raw))
                } else {
                    Err(Error::new(Code::InvalidId, format!("{} must be a positive integer, got {raw}", $what)))
                }
            }

            /// From a JSON number in a body, which may be written with a zero fraction: a number
            /// that is not whole is malformed (400), a whole one out of range invalid (422).
            pub fn parse_json(raw: &serde_json::Number) -> Result<Self, Error> {
                match super::whole_number(raw) {
                    Some(v) => Self::parse(v),
                    None => Err(Error::new(Code::InvalidBody, format!("{} must be a whole number, got {raw}", $what))),
                }
            }

            /// For values read back from our own store, which only ever holds parsed ids.
            pub const fn from_trusted(raw: i64) -> Self {
                Self(raw)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(UserId, "userId");
id_type!(ConcertId, "concertId");
id_type!(ScheduleId, "scheduleId");
id_type!(ReservationId, "reservationId");
id_type!(PaymentId, "paymentId");

/// A client-chosen key that makes a write safe to retry: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok = !raw.is_empty() && raw.len() <= Self::MAX_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::new(Code::InvalidIdempotencyKey, "Idempotency-Key must be 1 to 255 visible ASCII characters"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive() {
        assert!(UserId::parse(0).is_err());
        assert!(UserId::parse(-5).is_err());
        assert_eq!(UserId::parse(7).unwrap().get(), 7);
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("pay-7f3a").is_ok());
    }
}
