//! Queue tokens: `bo1.<payload>.<mac>`, base64url, with an HMAC-SHA256 over the payload.
//! The payload binds the token to one concert, one user and one place in line.

use super::Ticket;
use crate::domain::error::Code;
use crate::domain::{ConcertId, Error, Result, UserId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "bo1.";

#[derive(Clone)]
pub struct TokenSigner {
    mac: Hmac<Sha256>,
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self { mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length") }
    }

    pub fn sign(&self, t: &Ticket) -> String {
        let payload = encode(t);
        let mut mac = self.mac.clone();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!("{PREFIX}{}.{}", B64.encode(payload), B64.encode(tag))
    }

    /// The user's pseudonymous entry in the concert's on-sale draw: the same on every instance
    /// (they share the secret), recognisable by its fan, and saying nothing about who it is.
    pub fn entry_id(&self, concert: ConcertId, user: UserId) -> String {
        let mut mac = self.mac.clone();
        mac.update(format!("draw-entry:{concert}:{user}").as_bytes());
        mac.finalize().into_bytes()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn verify(&self, token: &str) -> Result<Ticket> {
        let invalid = || Error::new(Code::TokenInvalid, "the queue token is malformed or forged");
        let rest = token.strip_prefix(PREFIX).ok_or_else(invalid)?;
        let (payload_b64, tag_b64) = rest.split_once('.').ok_or_else(invalid)?;
        let payload = B64.decode(payload_b64).map_err(|_| invalid())?;
        let tag = B64.decode(tag_b64).map_err(|_| invalid())?;
        let mut mac = self.mac.clone();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| invalid())?; // constant-time comparison
        decode(&payload).ok_or_else(invalid)
    }
}

fn encode(t: &Ticket) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&t.concert.get().to_be_bytes());
    out[8..16].copy_from_slice(&t.user.get().to_be_bytes());
    out[16..].copy_from_slice(&t.seq.to_be_bytes());
    out
}

fn decode(b: &[u8]) -> Option<Ticket> {
    if b.len() != 24 {
        return None;
    }
    let concert = i64::from_be_bytes(b[..8].try_into().ok()?);
    let user = i64::from_be_bytes(b[8..16].try_into().ok()?);
    let seq = u64::from_be_bytes(b[16..].try_into().ok()?);
    Some(Ticket { concert: ConcertId::parse(concert).ok()?, user: UserId::parse(user).ok()?, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket { concert: ConcertId::parse(3).unwrap(), user: UserId::parse(42).unwrap(), seq: 7 }
    }

    #[test]
    fn round_trips() {
        let s = TokenSigner::new(b"secret");
        assert_eq!(s.verify(&s.sign(&ticket())).unwrap(), ticket());
    }

    #[test]
    fn refuses_other_keys_and_tampering() {
        let s = TokenSigner::new(b"secret");
        let token = s.sign(&ticket());
        assert!(TokenSigner::new(b"other").verify(&token).is_err());
        // Swap in another user's payload under the original tag.
        let other = Ticket { user: UserId::parse(43).unwrap(), ..ticket() };
        let forged_payload = TokenSigner::new(b"x").sign(&other);
        let (_, tag) = token.rsplit_once('.').unwrap();
        let (head, _) = forged_payload.rsplit_once('.').unwrap();
        assert!(s.verify(&format!("{head}.{tag}")).is_err());
        for junk in ["", "bo1.", "bo1.a.b", "Bearer x", "bo1.!!!.???"] {
            assert_eq!(s.verify(junk).unwrap_err().code, Code::TokenInvalid);
        }
    }
}
