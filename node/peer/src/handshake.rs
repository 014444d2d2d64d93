//! The handshake: each side proves it holds the key of the address it claims.
//!
//! Symmetric, no initiator: both sides send [`Message::Hello`] (version, address, a fresh
//! random 32-byte challenge), then answer the other's Hello with [`Message::HelloAck`], a
//! signature over
//!
//! ```text
//! keccak256("Farthing peer handshake v1" || chain_id (u64 BE) || their_challenge
//!           || my_address || their_address)
//! ```
//!
//! The digest is raw (no EIP-191 prefix) and starts with its own domain tag, so it can never
//! be mistaken for an EIP-712 digest (those start with `0x1901` before hashing) or a
//! transaction: the node's key signs nothing here but this. The verifier recovers the signer,
//! requires low `s` and `v` in {27, 28} (as the contract does for proofs), and compares it to
//! the address the Hello claimed. A side that expects a given partner refuses any other
//! address before signing anything.
//!
//! The handshake authenticates the peer, not the bytes that follow: the link is not
//! encrypted and not MAC'd. Everything that moves money (balance proofs, close and withdraw
//! signatures) is signed on its own; acknowledgements are not.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256, keccak256, uint};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::conn::{FramedConnection, LinkError};
use crate::message::{Message, MessageKind, PROTOCOL_VERSION, RawSignature, Reason, error_code};

/// The domain tag that starts every handshake digest.
pub const HANDSHAKE_DOMAIN: &[u8] = b"Farthing peer handshake v1";

/// How long a refusing side waits to deliver its [`Message::Error`] before dropping the link.
const NOTICE_TIMEOUT: Duration = Duration::from_millis(500);

/// secp256k1's order halved: a canonical signature's `s` is at most this.
const HALF_ORDER: U256 =
    uint!(0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0_U256);

/// Why a handshake failed. The link is dropped in every case.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer did not complete the handshake in time.
    #[error("the peer did not complete the handshake within {0:?}")]
    Timeout(Duration),
    /// The link failed: closed, I/O error, or a malformed or oversized frame.
    #[error("handshake failed: {0}")]
    Link(#[from] LinkError),
    /// The peer sent a message other than the one the handshake expects next.
    #[error("expected {expected} during the handshake, the peer sent {got}")]
    Unexpected {
        /// What the handshake waited for.
        expected: MessageKind,
        /// What came.
        got: MessageKind,
    },
    /// The peer refused the handshake with an error message.
    #[error("the peer refused the handshake (code {code}): {reason}")]
    PeerRefused {
        /// The peer's error code.
        code: u16,
        /// The peer's reason.
        reason: Reason,
    },
    /// The peer speaks another protocol version.
    #[error("the peer speaks protocol version {theirs}, this node speaks {ours}")]
    VersionMismatch {
        /// This node's version.
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    /// The peer claims an address other than the partner this link was meant for.
    #[error("expected partner {expected}, the peer claims to be {claimed}")]
    UnexpectedPeer {
        /// The partner expected.
        expected: Address,
        /// The address the peer claimed.
        claimed: Address,
    },
    /// The peer claims this node's own address (a loop, or a reflection attempt).
    #[error("the peer claims this node's own address {0}")]
    SelfConnection(Address),
    /// The peer's handshake signature is not canonical or not recoverable.
    #[error("malformed handshake signature: {0}")]
    MalformedSignature(&'static str),
    /// The handshake signature was made by another key than the claimed address's (a wrong
    /// key, or a signature replayed from another challenge).
    #[error("the peer claims {claimed} but its handshake signature recovers to {recovered}")]
    WrongSigner {
        /// The address the peer claimed.
        claimed: Address,
        /// The address the signature recovers to.
        recovered: Address,
    },
    /// This node could not draw a random challenge.
    #[error("could not draw a random handshake challenge: {0}")]
    Randomness(String),
    /// This node's key could not sign (it cannot happen with a valid local key).
    #[error("could not sign the handshake: {0}")]
    Signing(String),
}

impl HandshakeError {
    /// The [`Message::Error`] to send the peer before dropping the link, if it should be told.
    fn notice(&self) -> Option<Message> {
        let code = match self {
            Self::Link(LinkError::Closed | LinkError::Io(_)) | Self::PeerRefused { .. } => {
                return None;
            }
            Self::Timeout(_) => error_code::TIMEOUT,
            Self::Link(LinkError::Decode(_)) | Self::Unexpected { .. } => error_code::PROTOCOL,
            Self::Randomness(_) | Self::Signing(_) => error_code::INTERNAL,
            Self::VersionMismatch { .. }
            | Self::UnexpectedPeer { .. }
            | Self::SelfConnection(_)
            | Self::MalformedSignature(_)
            | Self::WrongSigner { .. } => error_code::HANDSHAKE,
        };
        Some(Message::Error {
            code,
            reason: Reason::truncated(self.to_string()),
        })
    }
}

/// The digest `signer` signs to answer `peer`'s `challenge` (see the module docs).
pub fn handshake_digest(
    chain_id: u64,
    challenge: &[u8; 32],
    signer: Address,
    peer: Address,
) -> B256 {
    let mut preimage = [0u8; HANDSHAKE_DOMAIN.len() + 8 + 32 + 20 + 20];
    let mut at = 0;
    for part in [
        HANDSHAKE_DOMAIN,
        &chain_id.to_be_bytes(),
        challenge,
        signer.as_slice(),
        peer.as_slice(),
    ] {
        preimage[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    keccak256(preimage)
}

/// Answer `peer`'s `their_challenge`: the only thing this crate signs.
pub fn sign_challenge(
    signer: &PrivateKeySigner,
    chain_id: u64,
    their_challenge: &[u8; 32],
    peer: Address,
) -> Result<RawSignature, HandshakeError> {
    let digest = handshake_digest(chain_id, their_challenge, signer.address(), peer);
    let signature = signer
        .sign_hash_sync(&digest)
        .map_err(|e| HandshakeError::Signing(e.to_string()))?;
    Ok(signature.as_bytes())
}

/// Check that `signature` answers `my_challenge` and was made by `claimed`'s key, for a link
/// to `me`.
pub fn verify_challenge(
    signature: &RawSignature,
    chain_id: u64,
    my_challenge: &[u8; 32],
    claimed: Address,
    me: Address,
) -> Result<(), HandshakeError> {
    let r = U256::from_be_slice(&signature[..32]);
    let s = U256::from_be_slice(&signature[32..64]);
    let odd_y = match signature[64] {
        27 => false,
        28 => true,
        _ => return Err(HandshakeError::MalformedSignature("v must be 27 or 28")),
    };
    if r.is_zero() || s.is_zero() {
        return Err(HandshakeError::MalformedSignature(
            "r and s must be non-zero",
        ));
    }
    if s > HALF_ORDER {
        return Err(HandshakeError::MalformedSignature("high s (not canonical)"));
    }
    let digest = handshake_digest(chain_id, my_challenge, claimed, me);
    let recovered = alloy::primitives::Signature::new(r, s, odd_y)
        .recover_address_from_prehash(&digest)
        .map_err(|_| HandshakeError::MalformedSignature("no key recovers from it"))?;
    if recovered.is_zero() {
        return Err(HandshakeError::MalformedSignature(
            "recovers to the zero address",
        ));
    }
    if recovered != claimed {
        return Err(HandshakeError::WrongSigner { claimed, recovered });
    }
    Ok(())
}

/// Run the handshake on `stream`; on success, the peer's proven address and the framed link.
///
/// `expected_peer`: the partner a dialled link must reach (a Hello claiming another address
/// is refused before anything is signed); `None` for an accepted link, where the caller
/// decides from the returned address. `timeout` bounds the whole exchange. On a refusal the
/// peer is sent a [`Message::Error`] with the reason (best effort) before the link drops.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    signer: &PrivateKeySigner,
    chain_id: u64,
    expected_peer: Option<Address>,
    timeout: Duration,
) -> Result<(Address, FramedConnection<S>), HandshakeError> {
    let mut conn = FramedConnection::new(stream);
    let outcome = tokio::time::timeout(
        timeout,
        exchange(&mut conn, signer, chain_id, expected_peer),
    )
    .await
    .unwrap_or(Err(HandshakeError::Timeout(timeout)));
    match outcome {
        Ok(peer) => Ok((peer, conn)),
        Err(err) => {
            // A send cut off by the timeout may have left half a frame: say nothing then.
            if let Some(notice) = err.notice()
                && conn.writer().queued() == 0
            {
                let _ = tokio::time::timeout(NOTICE_TIMEOUT, conn.send(&notice)).await;
            }
            Err(err)
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut FramedConnection<S>,
    signer: &PrivateKeySigner,
    chain_id: u64,
    expected_peer: Option<Address>,
) -> Result<Address, HandshakeError> {
    let me = signer.address();
    let mut challenge = [0u8; 32];
    getrandom::fill(&mut challenge).map_err(|e| HandshakeError::Randomness(e.to_string()))?;
    conn.send(&Message::Hello {
        version: PROTOCOL_VERSION,
        address: me,
        challenge,
    })
    .await?;

    let (version, claimed, their_challenge) = match conn.recv().await? {
        Message::Hello {
            version,
            address,
            challenge,
        } => (version, address, challenge),
        other => return Err(unexpected(MessageKind::Hello, other)),
    };
    if version != PROTOCOL_VERSION {
        return Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    if claimed == me {
        return Err(HandshakeError::SelfConnection(me));
    }
    if let Some(expected) = expected_peer
        && claimed != expected
    {
        return Err(HandshakeError::UnexpectedPeer { expected, claimed });
    }
    let signature = sign_challenge(signer, chain_id, &their_challenge, claimed)?;
    conn.send(&Message::HelloAck { signature }).await?;

    let signature = match conn.recv().await? {
        Message::HelloAck { signature } => signature,
        other => return Err(unexpected(MessageKind::HelloAck, other)),
    };
    verify_challenge(&signature, chain_id, &challenge, claimed, me)?;
    Ok(claimed)
}

fn unexpected(expected: MessageKind, got: Message) -> HandshakeError {
    match got {
        Message::Error { code, reason } => HandshakeError::PeerRefused { code, reason },
        other => HandshakeError::Unexpected {
            expected,
            got: other.kind(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: u64 = 31337;

    #[test]
    fn a_fresh_signature_verifies_and_binds_every_input() {
        let alice = PrivateKeySigner::random();
        let bob = PrivateKeySigner::random();
        let challenge = [7u8; 32];
        let sig = sign_challenge(&alice, CHAIN, &challenge, bob.address()).unwrap();
        verify_challenge(&sig, CHAIN, &challenge, alice.address(), bob.address()).unwrap();

        let wrong = |r: Result<(), HandshakeError>| {
            assert!(
                matches!(r, Err(HandshakeError::WrongSigner { .. })),
                "{r:?}"
            );
        };
        // Another chain, another challenge, another verifier, swapped roles.
        wrong(verify_challenge(
            &sig,
            CHAIN + 1,
            &challenge,
            alice.address(),
            bob.address(),
        ));
        wrong(verify_challenge(
            &sig,
            CHAIN,
            &[8; 32],
            alice.address(),
            bob.address(),
        ));
        let carol = Address::repeat_byte(3);
        wrong(verify_challenge(
            &sig,
            CHAIN,
            &challenge,
            alice.address(),
            carol,
        ));
        wrong(verify_challenge(
            &sig,
            CHAIN,
            &challenge,
            bob.address(),
            alice.address(),
        ));
    }

    #[test]
    fn non_canonical_signatures_are_refused() {
        let alice = PrivateKeySigner::random();
        let bob = Address::repeat_byte(2);
        let challenge = [1u8; 32];
        let sig = sign_challenge(&alice, CHAIN, &challenge, bob).unwrap();
        assert!(sig[64] == 27 || sig[64] == 28);

        // The same signature with high s and flipped v recovers the same key: refused.
        let order = uint!(0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141_U256);
        let s = U256::from_be_slice(&sig[32..64]);
        let mut high = sig;
        high[32..64].copy_from_slice(&(order - s).to_be_bytes::<32>());
        high[64] = if sig[64] == 27 { 28 } else { 27 };
        let err = verify_challenge(&high, CHAIN, &challenge, alice.address(), bob).unwrap_err();
        assert!(matches!(err, HandshakeError::MalformedSignature(m) if m.contains("high s")));

        for v in [0u8, 1, 26, 29, 255] {
            let mut bad = sig;
            bad[64] = v;
            let err = verify_challenge(&bad, CHAIN, &challenge, alice.address(), bob).unwrap_err();
            assert!(matches!(err, HandshakeError::MalformedSignature(m) if m.contains("27")));
        }

        let mut zero = sig;
        zero[..32].fill(0);
        let err = verify_challenge(&zero, CHAIN, &challenge, alice.address(), bob).unwrap_err();
        assert!(matches!(err, HandshakeError::MalformedSignature(_)));
    }

    #[test]
    fn the_digest_is_the_documented_preimage() {
        let signer = Address::repeat_byte(0xaa);
        let peer = Address::repeat_byte(0xbb);
        let challenge = [0xcc; 32];
        let mut preimage = b"Farthing peer handshake v1".to_vec();
        preimage.extend_from_slice(&CHAIN.to_be_bytes());
        preimage.extend_from_slice(&challenge);
        preimage.extend_from_slice(signer.as_slice());
        preimage.extend_from_slice(peer.as_slice());
        assert_eq!(
            handshake_digest(CHAIN, &challenge, signer, peer),
            keccak256(&preimage)
        );
    }

    #[tokio::test]
    async fn handshake_over_a_duplex() {
        let alice = PrivateKeySigner::random();
        let bob = PrivateKeySigner::random();
        let (a, b) = tokio::io::duplex(4096);
        let t = Duration::from_secs(5);
        let (ra, rb) = tokio::join!(
            handshake(a, &alice, CHAIN, Some(bob.address()), t),
            handshake(b, &bob, CHAIN, None, t),
        );
        assert_eq!(ra.unwrap().0, bob.address());
        assert_eq!(rb.unwrap().0, alice.address());
    }

    #[tokio::test]
    async fn different_chains_do_not_authenticate() {
        let alice = PrivateKeySigner::random();
        let bob = PrivateKeySigner::random();
        let (a, b) = tokio::io::duplex(4096);
        let t = Duration::from_secs(5);
        let (ra, rb) = tokio::join!(
            handshake(a, &alice, CHAIN, None, t),
            handshake(b, &bob, CHAIN + 1, None, t),
        );
        assert!(
            matches!(ra, Err(HandshakeError::WrongSigner { .. })),
            "{:?}",
            ra.err()
        );
        // Bob either sees the same, or Alice's refusal first.
        assert!(rb.is_err());
    }

    #[tokio::test]
    async fn a_self_connection_is_refused() {
        let alice = PrivateKeySigner::random();
        let (a, b) = tokio::io::duplex(4096);
        let t = Duration::from_secs(5);
        let (ra, _) = tokio::join!(
            handshake(a, &alice, CHAIN, None, t),
            handshake(b, &alice, CHAIN, None, t),
        );
        assert!(matches!(ra, Err(HandshakeError::SelfConnection(_))));
    }
}
