//! The link's transport encryption: one Noise `CipherState` per direction.
//!
//! After the handshake ([`mod@crate::handshake`]) every byte of the link travels in Noise
//! transport messages:
//!
//! ```text
//! message    = length:u16 BE | ciphertext | tag:16     (length = ciphertext + tag ≤ 65535)
//! ciphertext = ChaCha20-Poly1305(k, nonce = 0^32 | n:u64 LE, ad = empty, plaintext)
//! ```
//!
//! exactly as Noise's `ChaChaPoly` `CipherState` encrypts (the tests check it byte for byte
//! against snow's own transport). `n` counts this direction's messages from 0 and is never
//! sent: a dropped, repeated, reordered or altered message fails its tag, and the link drops.
//! After every [`REKEY_EVERY`] messages the key is replaced by Noise's `REKEY` (§4.2: the
//! first 32 bytes of encrypting 32 zero bytes under nonce 2⁶⁴−1), as BOLT 8 rotates its keys
//! every 1000 messages: a key that leaks does not expose the messages sent before its
//! rotation (the step is one-way), though it does expose those after it in that direction.
//!
//! The plaintext is the writer's stream of frames ([`mod@crate::frame`]) cut at any byte: a
//! frame may span two messages, and a message may carry hundreds of frames, so a burst of
//! payments costs one AEAD per ~64 KiB rather than one per payment.
//!
//! Each half of a link owns its direction's `CipherState`, so the reading and writing tasks
//! share no lock; this is why the handshake takes snow's raw split keys rather than its
//! `TransportState` (which holds both directions).

use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit};

/// Bytes of a message's length prefix.
pub const LENGTH_PREFIX: usize = 2;

/// Bytes of a message's authentication tag.
pub const TAG_LEN: usize = 16;

/// The largest Noise message (ciphertext and tag), as the Noise specification bounds it.
pub const MAX_MESSAGE: usize = 65_535;

/// The most plaintext one message carries.
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - TAG_LEN;

/// Messages sent (or received) under one key before it is rotated.
pub const REKEY_EVERY: u64 = 1_000;

/// Why a transport message cannot be read or written. The link is dropped in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The declared length cannot even hold a tag.
    #[error("encrypted message of {0} bytes declared, shorter than its 16-byte tag")]
    TooShort(usize),
    /// The tag does not verify: the bytes were altered, dropped, repeated or reordered on the
    /// way, or were not sent by the peer this link was made with.
    #[error(
        "encrypted message {nonce} failed authentication (altered, dropped, replayed or \
         reordered on the way)"
    )]
    Forged {
        /// The message's position in this direction's stream.
        nonce: u64,
    },
    /// A plaintext longer than one message carries (a bug of the caller's, refused).
    #[error("{0} bytes of plaintext in one message, the limit is 65519")]
    TooLong(usize),
    /// 2⁶⁴−1 messages went one way: Noise forbids another under these keys.
    #[error("the link's message counter is exhausted; reconnect for fresh keys")]
    Exhausted,
}

/// One direction's key and message counter.
pub struct CipherState {
    aead: ChaCha20Poly1305,
    nonce: u64,
}

impl std::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CipherState")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl CipherState {
    /// A cipher state with key `key` and nonce 0, as the handshake's split hands it over.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            aead: ChaCha20Poly1305::new(&key.into()),
            nonce: 0,
        }
    }

    /// Messages this state has sealed or opened.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// Append `plaintext` (at most [`MAX_PLAINTEXT`] bytes) to `wire` as one message.
    pub fn seal(&mut self, plaintext: &[u8], wire: &mut Vec<u8>) -> Result<(), CipherError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(CipherError::TooLong(plaintext.len()));
        }
        let nonce = self.next_nonce()?;
        let start = wire.len();
        wire.extend_from_slice(&((plaintext.len() + TAG_LEN) as u16).to_be_bytes());
        let at = wire.len();
        wire.extend_from_slice(plaintext);
        let sealed = self
            .aead
            .encrypt_in_place_detached(&nonce_bytes(nonce), &[], &mut wire[at..]);
        let Ok(tag) = sealed else {
            // ChaCha20 refuses only past 256 GiB under one nonce: leave nothing half-made.
            wire.truncate(start);
            return Err(CipherError::Exhausted);
        };
        wire.extend_from_slice(&tag);
        self.advance();
        Ok(())
    }

    /// Decrypt one message's `ciphertext | tag` (the length prefix already taken off) in
    /// place; the plaintext is the returned prefix of `message`.
    pub fn open<'a>(&mut self, message: &'a mut [u8]) -> Result<&'a [u8], CipherError> {
        let len = message.len();
        let Some((body, tag)) = message.split_last_chunk_mut::<TAG_LEN>() else {
            return Err(CipherError::TooShort(len));
        };
        let nonce = self.next_nonce()?;
        self.aead
            .decrypt_in_place_detached(&nonce_bytes(nonce), &[], body, &(*tag).into())
            .map_err(|_| CipherError::Forged { nonce })?;
        self.advance();
        Ok(body)
    }

    fn next_nonce(&self) -> Result<u64, CipherError> {
        // Noise reserves 2^64 - 1 (REKEY uses it).
        if self.nonce == u64::MAX {
            return Err(CipherError::Exhausted);
        }
        Ok(self.nonce)
    }

    fn advance(&mut self) {
        self.nonce += 1;
        if self.nonce.is_multiple_of(REKEY_EVERY) {
            self.rekey();
        }
    }

    /// Noise §4.2 `REKEY()`; the nonce goes on counting.
    fn rekey(&mut self) {
        let mut key = [0u8; 32];
        // Encrypting 32 bytes cannot fail (ChaCha20's limit is 256 GiB per nonce).
        let _tag = self
            .aead
            .encrypt_in_place_detached(&nonce_bytes(u64::MAX), &[], &mut key);
        self.aead = ChaCha20Poly1305::new(&key.into());
    }
}

/// Noise's `ChaChaPoly` nonce: 32 zero bits, then the counter little-endian.
fn nonce_bytes(n: u64) -> chacha20poly1305::Nonce {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    nonce.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATTERN: &str = "Noise_NN_25519_ChaChaPoly_SHA256";

    /// A finished NN handshake: the responder's snow transport state and the initiator's raw
    /// split keys.
    fn snow_pair() -> (snow::TransportState, [u8; 32], [u8; 32]) {
        let params: snow::params::NoiseParams = PATTERN.parse().unwrap();
        let mut i = snow::Builder::new(params.clone())
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(params).build_responder().unwrap();
        let (mut m, mut p) = ([0u8; 128], [0u8; 128]);
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut p).unwrap();
        let n = r.write_message(&[], &mut m).unwrap();
        i.read_message(&m[..n], &mut p).unwrap();
        let (k1, k2) = i.dangerously_get_raw_split();
        (r.into_transport_mode().unwrap(), k1, k2)
    }

    /// Our cipher states are Noise's: snow reads what we seal and we read what snow writes,
    /// across two key rotations, both ways.
    #[test]
    fn matches_snow_byte_for_byte_across_rekeys() {
        // We play the initiator: k1 seals towards the responder, k2 opens what it sends.
        let (mut snow_r, k1, k2) = snow_pair();
        let (mut send, mut recv) = (CipherState::new(k1), CipherState::new(k2));
        let mut out = [0u8; 1024];
        for n in 0..2 * REKEY_EVERY + 3 {
            let plaintext = format!("message {n}");
            let mut wire = Vec::new();
            send.seal(plaintext.as_bytes(), &mut wire).unwrap();
            let len = u16::from_be_bytes([wire[0], wire[1]]) as usize;
            assert_eq!(len, wire.len() - LENGTH_PREFIX);
            let got = snow_r.read_message(&wire[2..], &mut out).unwrap();
            assert_eq!(&out[..got], plaintext.as_bytes(), "message {n}");

            let sent = snow_r
                .write_message(plaintext.as_bytes(), &mut out)
                .unwrap();
            let mut message = out[..sent].to_vec();
            assert_eq!(recv.open(&mut message).unwrap(), plaintext.as_bytes());

            // snow rekeys when told; we rekey after every REKEY_EVERY messages.
            if (n + 1).is_multiple_of(REKEY_EVERY) {
                snow_r.rekey_incoming();
                snow_r.rekey_outgoing();
            }
        }
    }

    #[test]
    fn any_altered_dropped_or_replayed_message_fails() {
        let key = [7u8; 32];
        let mut send = CipherState::new(key);
        let messages: Vec<Vec<u8>> = (0..3)
            .map(|n| {
                let mut wire = Vec::new();
                send.seal(format!("frame {n}").as_bytes(), &mut wire)
                    .unwrap();
                wire[LENGTH_PREFIX..].to_vec()
            })
            .collect();

        // Every single flipped bit of the first message.
        for at in 0..messages[0].len() {
            for bit in 0..8 {
                let mut flipped = messages[0].clone();
                flipped[at] ^= 1 << bit;
                let mut recv = CipherState::new(key);
                assert_eq!(
                    recv.open(&mut flipped),
                    Err(CipherError::Forged { nonce: 0 })
                );
            }
        }
        // Dropped (the second arrives first), replayed, and a short message.
        let mut recv = CipherState::new(key);
        assert_eq!(
            recv.open(&mut messages[1].clone()),
            Err(CipherError::Forged { nonce: 0 })
        );
        let mut recv = CipherState::new(key);
        recv.open(&mut messages[0].clone()).unwrap();
        assert_eq!(
            recv.open(&mut messages[0].clone()),
            Err(CipherError::Forged { nonce: 1 })
        );
        assert_eq!(recv.open(&mut [0u8; 15]), Err(CipherError::TooShort(15)));
        // A wrong key.
        let mut other = CipherState::new([8u8; 32]);
        assert!(other.open(&mut messages[0].clone()).is_err());
    }

    #[test]
    fn the_key_rotates_at_the_boundary() {
        let mut a = CipherState::new([1; 32]);
        let mut b = CipherState::new([1; 32]);
        let mut wire = Vec::new();
        for _ in 0..REKEY_EVERY - 1 {
            a.seal(b"x", &mut wire).unwrap();
        }
        b.nonce = REKEY_EVERY - 1;
        // Message 999 is still under the first key; message 1000 under the next one.
        let mut last = Vec::new();
        a.seal(b"999", &mut last).unwrap();
        assert_eq!(b.open(&mut last[2..].to_vec()).unwrap(), b"999");
        let mut next = Vec::new();
        a.seal(b"1000", &mut next).unwrap();
        let mut stale = CipherState::new([1; 32]);
        stale.nonce = REKEY_EVERY;
        assert!(stale.open(&mut next[2..].to_vec()).is_err());
        assert_eq!(b.open(&mut next[2..].to_vec()).unwrap(), b"1000");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let state = CipherState::new([0xab; 32]);
        assert_eq!(format!("{state:?}"), "CipherState { nonce: 0, .. }");
    }
}
