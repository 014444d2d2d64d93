//! Challenge ids the gateway issues and later recognises without keeping them: 12 random
//! bytes, the expiry (Unix seconds, 8 bytes big-endian) and a 16-byte HMAC-SHA256 tag over
//! what the challenge prices — its kind (the scheme), the route's method and path pattern, the
//! amount (base units) — plus those bytes; base64url without padding (48 characters). A
//! challenge presented for another route, price or scheme, altered, or made up, fails the tag;
//! one past its expiry is refused as such. Whether it was already paid for is not the id's
//! business (the seller's node redeems each once).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::b64;

const SALT: usize = 12;
const TAG: usize = 16;
const LEN: usize = SALT + 8 + TAG;

/// What a challenge binds: the scheme, the route (method and path pattern, e.g. `GET` and
/// `/articles/*`), the price in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound<'a> {
    /// The scheme (`farthing`, `exact`, `evm-charge`, …).
    pub kind: &'a str,
    /// The route's HTTP method (`*`: any).
    pub method: &'a str,
    /// The route's path pattern.
    pub path: &'a str,
    /// The price, base units.
    pub amount: u128,
}

/// Why a presented challenge id is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Not a challenge id at all (length, alphabet).
    #[error("not a challenge id this gateway issues")]
    Malformed,
    /// Its tag does not match: made up, altered, or presented for another route, price or scheme.
    #[error("the challenge was not issued by this gateway for this request and price")]
    Forged,
    /// Past its expiry.
    #[error("the challenge expired at {0} (Unix seconds): ask again for a fresh one")]
    Expired(u64),
}

/// The gateway's challenge key (32 bytes, kept across restarts so that challenges issued before
/// one stay valid).
#[derive(Clone)]
pub struct ChallengeKey([u8; 32]);

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKey(..)")
    }
}

impl ChallengeKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    fn tag(&self, bound: &Bound<'_>, head: &[u8]) -> [u8; TAG] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        for part in [bound.kind, bound.method, bound.path] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(&bound.amount.to_be_bytes());
        mac.update(head);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TAG];
        tag.copy_from_slice(&full[..TAG]);
        tag
    }

    /// Issue a challenge for `bound`, valid until `expires` (Unix seconds).
    pub fn issue(&self, bound: &Bound<'_>, expires: u64) -> String {
        let mut raw = [0u8; LEN];
        // A failing OS random source leaves zeros: ids would still verify, just not be unique,
        // and a payment is redeemed once whatever its id.
        let _ = getrandom::fill(&mut raw[..SALT]);
        raw[SALT..SALT + 8].copy_from_slice(&expires.to_be_bytes());
        let tag = self.tag(bound, &raw[..SALT + 8]);
        raw[SALT + 8..].copy_from_slice(&tag);
        b64::url_encode(&raw)
    }

    /// Check that `id` was issued for `bound` and is not past its expiry at `now`; answers
    /// the expiry.
    pub fn verify(&self, id: &str, bound: &Bound<'_>, now: u64) -> Result<u64, ChallengeError> {
        if id.len() != 48 {
            return Err(ChallengeError::Malformed);
        }
        let raw = b64::url_decode(id).ok_or(ChallengeError::Malformed)?;
        if raw.len() != LEN {
            return Err(ChallengeError::Malformed);
        }
        let tag = self.tag(bound, &raw[..SALT + 8]);
        // Constant time: the tag is a secret until it matches.
        let diff = tag
            .iter()
            .zip(&raw[SALT + 8..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(ChallengeError::Forged);
        }
        let mut expires = [0; 8];
        expires.copy_from_slice(&raw[SALT..SALT + 8]);
        let expires = u64::from_be_bytes(expires);
        if now >= expires {
            return Err(ChallengeError::Expired(expires));
        }
        Ok(expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: Bound<'static> = Bound {
        kind: "farthing",
        method: "GET",
        path: "/articles/1",
        amount: 1_000,
    };

    #[test]
    fn a_challenge_verifies_for_what_it_was_issued_for_only() {
        let key = ChallengeKey::from_bytes([7; 32]);
        let id = key.issue(&ROUTE, 1_000);
        assert_eq!(id.len(), 48);
        assert_eq!(key.verify(&id, &ROUTE, 999), Ok(1_000));
        assert_eq!(
            key.verify(&id, &ROUTE, 1_000),
            Err(ChallengeError::Expired(1_000))
        );
        for other in [
            Bound {
                amount: 999,
                ..ROUTE
            },
            Bound {
                path: "/articles/2",
                ..ROUTE
            },
            Bound {
                method: "POST",
                ..ROUTE
            },
            Bound {
                kind: "exact",
                ..ROUTE
            },
        ] {
            assert_eq!(key.verify(&id, &other, 0), Err(ChallengeError::Forged));
        }
        let stranger = ChallengeKey::from_bytes([8; 32]);
        assert_eq!(stranger.verify(&id, &ROUTE, 0), Err(ChallengeError::Forged));
        assert_ne!(key.issue(&ROUTE, 1_000), id, "ids are unique");
    }

    #[test]
    fn altered_or_malformed_ids_are_refused() {
        let key = ChallengeKey::from_bytes([7; 32]);
        let id = key.issue(&ROUTE, u64::MAX);
        let mut bytes = id.clone().into_bytes();
        bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(key.verify(&altered, &ROUTE, 0), Err(ChallengeError::Forged));
        for bad in [
            "",
            "short",
            &"=".repeat(48),
            &format!("{id}x"),
            &id.replace('A', "+"),
        ] {
            if bad == id {
                continue;
            }
            assert!(key.verify(bad, &ROUTE, 0).is_err(), "{bad}");
        }
    }
}
