//! The handshake: each side proves it holds the key of the address it claims, and the two
//! agree on the keys that encrypt everything after.
//!
//! Symmetric, no dialler/acceptor roles on the wire:
//!
//! 1. **Hello**, in clear, both ways: [`Message::Hello`] (protocol version, the address the
//!    sender claims, 32 fresh random bytes). A side refuses here, before anything is signed,
//!    an unknown version (an older node reads ours and refuses just as cleanly), its own
//!    address, or (when it dialled) any address but the partner it dialled.
//! 2. **Noise**, in clear: `Noise_NN_25519_ChaChaPoly_SHA256` (two [`Message::Noise`]s). The
//!    side with the lower claimed address initiates. The prologue is
//!    `"Farthing peer v3" || chain_id (u64 BE) || version (u16 BE) || initiator's Hello
//!    (address || random) || responder's Hello (address || random)`, so the version, both
//!    Hellos and the chain are bound into the
//!    session's handshake hash `h`, which commits to both sides' fresh ephemeral keys.
//! 3. **HelloAck**, encrypted, both ways: a signature by the node's key over
//!
//!    ```text
//!    keccak256("Farthing peer handshake v3" || chain_id (u64 BE) || h || my_address
//!              || their_address)
//!    ```
//!
//!    This is channel binding (Noise §11.2): a man in the middle runs two Noise sessions
//!    with two different `h`, so neither side's signature is valid on the other session,
//!    and it cannot read or write the encrypted link it sits in. The digest is raw (no
//!    EIP-191 prefix) and starts with its own domain tag, so it can never be mistaken for an
//!    EIP-712 digest (those start with `0x1901` before hashing) or a transaction: the node's
//!    key signs nothing here but this. The verifier recovers the signer, requires low `s`
//!    and `v` in {27, 28} (as the contract does for proofs), and compares it to the address
//!    the Hello claimed.
//!
//! Noise's static keys are not used: the Ethereum key authenticates, by signing `h`, as
//! libp2p-noise's identity keys sign its Noise keys. (BOLT 8's `Noise_XK_secp256k1` needs the
//! responder's Noise key before dialling, and a Farthing address is a hash, not a key.)
//!
//! From the HelloAcks on, the link is encrypted and authenticated ([`mod@crate::cipher`]):
//! an `Ack`, `Reject` or `Sync` arrives only if the peer sent it, in order, once.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256, keccak256, uint};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cipher::CipherState;
use crate::conn::{FramedConnection, LinkError};
use crate::message::{
    MAX_NOISE, Message, MessageKind, PROTOCOL_VERSION, RawSignature, Reason, error_code,
};

/// The domain tag that starts every handshake digest.
pub const HANDSHAKE_DOMAIN: &[u8] = b"Farthing peer handshake v3";

/// The tag that starts the Noise prologue.
pub const PROLOGUE_DOMAIN: &[u8] = b"Farthing peer v3";

/// The Noise protocol the link runs.
pub const NOISE_PATTERN: &str = "Noise_NN_25519_ChaChaPoly_SHA256";

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
    #[error(
        "the peer speaks protocol version {theirs}, this node speaks {ours}: both must run \
         the same protocol (upgrade the older node)"
    )]
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
    /// The Noise handshake failed (a malformed handshake message).
    #[error("the Noise handshake failed: {0}")]
    Noise(String),
    /// The peer's side of the session does not authenticate against this side's: the two
    /// saw different Hellos or chain ids.
    #[error(
        "the peer's handshake does not authenticate: it runs on another chain than {chain_id} \
         (check both nodes' chain id), or the handshake's bytes were altered on the way"
    )]
    SessionMismatch {
        /// This node's chain id.
        chain_id: u64,
    },
    /// The peer's handshake signature is not canonical or not recoverable.
    #[error("malformed handshake signature: {0}")]
    MalformedSignature(&'static str),
    /// The handshake signature was made by another key than the claimed address's (a wrong
    /// key, or a signature relayed from another session).
    #[error("the peer claims {claimed} but its handshake signature recovers to {recovered}")]
    WrongSigner {
        /// The address the peer claimed.
        claimed: Address,
        /// The address the signature recovers to.
        recovered: Address,
    },
    /// This node could not draw random bytes.
    #[error("could not draw random handshake bytes: {0}")]
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
            Self::Link(LinkError::Decode(_) | LinkError::Cipher(_)) | Self::Unexpected { .. } => {
                error_code::PROTOCOL
            }
            Self::Randomness(_) | Self::Signing(_) => error_code::INTERNAL,
            Self::VersionMismatch { .. }
            | Self::UnexpectedPeer { .. }
            | Self::SelfConnection(_)
            | Self::Noise(_)
            | Self::SessionMismatch { .. }
            | Self::MalformedSignature(_)
            | Self::WrongSigner { .. } => error_code::HANDSHAKE,
        };
        Some(Message::Error {
            code,
            reason: Reason::truncated(self.to_string()),
        })
    }
}

/// One side's [`Message::Hello`]: who it claims to be and its fresh random bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The address claimed.
    pub address: Address,
    /// 32 fresh random bytes.
    pub random: [u8; 32],
}

/// The digest `signer` signs to bind itself to the Noise session with hash `session` on a
/// link to `peer` (see the module docs).
pub fn handshake_digest(chain_id: u64, session: &B256, signer: Address, peer: Address) -> B256 {
    let mut preimage = [0u8; HANDSHAKE_DOMAIN.len() + 8 + 32 + 20 + 20];
    let mut at = 0;
    for part in [
        HANDSHAKE_DOMAIN,
        &chain_id.to_be_bytes(),
        session.as_slice(),
        signer.as_slice(),
        peer.as_slice(),
    ] {
        preimage[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    keccak256(preimage)
}

/// Bind this node to the session `session` with `peer`: the only thing this crate signs.
pub fn sign_session(
    signer: &PrivateKeySigner,
    chain_id: u64,
    session: &B256,
    peer: Address,
) -> Result<RawSignature, HandshakeError> {
    let digest = handshake_digest(chain_id, session, signer.address(), peer);
    let signature = signer
        .sign_hash_sync(&digest)
        .map_err(|e| HandshakeError::Signing(e.to_string()))?;
    Ok(signature.as_bytes())
}

/// Check that `signature` binds `claimed`'s key to the session `session` with `me`.
pub fn verify_session(
    signature: &RawSignature,
    chain_id: u64,
    session: &B256,
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
    let digest = handshake_digest(chain_id, session, claimed, me);
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

/// Run the handshake on `stream`; on success, the peer's proven address and the encrypted
/// link.
///
/// `expected_peer`: the partner a dialled link must reach (a Hello claiming another address
/// is refused before anything is signed); `None` for an accepted link, where the caller
/// decides from the returned address. `timeout` bounds the whole exchange. On a refusal the
/// peer is sent a [`Message::Error`] with the reason (best effort, encrypted once the link
/// is) before the link drops.
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
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| HandshakeError::Randomness(e.to_string()))?;
    let mine = Hello {
        address: me,
        random,
    };
    let theirs = exchange_hellos(conn, mine).await?;
    let claimed = theirs.address;
    if claimed == me {
        return Err(HandshakeError::SelfConnection(me));
    }
    if let Some(expected) = expected_peer
        && claimed != expected
    {
        return Err(HandshakeError::UnexpectedPeer { expected, claimed });
    }
    let session = encrypt(conn, chain_id, mine, theirs).await?;
    let signature = sign_session(signer, chain_id, &session, claimed)?;
    conn.send(&Message::HelloAck { signature }).await?;

    let signature = match conn.recv().await {
        Ok(Message::HelloAck { signature }) => signature,
        Ok(other) => return Err(unexpected(MessageKind::HelloAck, other)),
        // The first encrypted message is where a session that differs shows (or the peer's
        // refusal, which it could only send in clear).
        Err(LinkError::Cipher(_)) => {
            return Err(HandshakeError::SessionMismatch { chain_id });
        }
        Err(other) => return Err(other.into()),
    };
    verify_session(&signature, chain_id, &session, claimed, me)?;
    Ok(claimed)
}

/// Step 1: send `mine` as a [`Message::Hello`] and read the peer's, checking its version.
///
/// A building block of [`handshake()`], public for tests that play a misbehaving peer: on
/// its own it authenticates nothing.
#[doc(hidden)]
pub async fn exchange_hellos<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut FramedConnection<S>,
    mine: Hello,
) -> Result<Hello, HandshakeError> {
    conn.send(&Message::Hello {
        version: PROTOCOL_VERSION,
        address: mine.address,
        challenge: mine.random,
    })
    .await?;
    match conn.recv().await? {
        Message::Hello { version, .. } if version != PROTOCOL_VERSION => {
            Err(HandshakeError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: version,
            })
        }
        Message::Hello {
            address, challenge, ..
        } => Ok(Hello {
            address,
            random: challenge,
        }),
        other => Err(unexpected(MessageKind::Hello, other)),
    }
}

/// Step 2: run the Noise handshake after the Hellos `mine` and `theirs`, and switch `conn`
/// to the keys it yields. Returns the session's handshake hash `h`, which step 3 signs.
///
/// A building block of [`handshake()`], public for tests that play a misbehaving peer: the
/// link it leaves is encrypted but its peer is not authenticated until step 3.
#[doc(hidden)]
pub async fn encrypt<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut FramedConnection<S>,
    chain_id: u64,
    mine: Hello,
    theirs: Hello,
) -> Result<B256, HandshakeError> {
    let initiator = mine.address < theirs.address;
    let (first, second) = if initiator {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    let mut prologue = Vec::with_capacity(PROLOGUE_DOMAIN.len() + 8 + 2 + 2 * 52);
    prologue.extend_from_slice(PROLOGUE_DOMAIN);
    prologue.extend_from_slice(&chain_id.to_be_bytes());
    // Both sides checked the peer's version equals theirs: bound here, it cannot have been
    // changed on the way (and a later negotiation cannot be downgraded).
    prologue.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    for hello in [first, second] {
        prologue.extend_from_slice(hello.address.as_slice());
        prologue.extend_from_slice(&hello.random);
    }
    let noise = |e: snow::Error| HandshakeError::Noise(e.to_string());
    let params: snow::params::NoiseParams = NOISE_PATTERN.parse().map_err(noise)?;
    let builder = snow::Builder::new(params)
        .prologue(&prologue)
        .map_err(noise)?;
    let mut state = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(noise)?;

    let mut buf = [0u8; MAX_NOISE];
    while !state.is_handshake_finished() {
        if state.is_my_turn() {
            let len = state.write_message(&[], &mut buf).map_err(noise)?;
            conn.send(&Message::Noise {
                message: buf[..len].to_vec(),
            })
            .await?;
        } else {
            let message = match conn.recv().await? {
                Message::Noise { message } => message,
                other => return Err(unexpected(MessageKind::Noise, other)),
            };
            let read = state
                .read_message(&message, &mut buf)
                .map_err(|e| match e {
                    snow::Error::Decrypt => HandshakeError::SessionMismatch { chain_id },
                    other => noise(other),
                })?;
            // NN's messages carry empty payloads: anything else is refused.
            if read != 0 {
                return Err(HandshakeError::Noise("unexpected handshake payload".into()));
            }
        }
    }
    let session = B256::from_slice(state.get_handshake_hash());
    let (initiator_key, responder_key) = state.dangerously_get_raw_split();
    let (send, receive) = if initiator {
        (initiator_key, responder_key)
    } else {
        (responder_key, initiator_key)
    };
    conn.start_encrypting(CipherState::new(send), CipherState::new(receive));
    Ok(session)
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
        let challenge = B256::repeat_byte(7);
        let sig = sign_session(&alice, CHAIN, &challenge, bob.address()).unwrap();
        verify_session(&sig, CHAIN, &challenge, alice.address(), bob.address()).unwrap();

        let wrong = |r: Result<(), HandshakeError>| {
            assert!(
                matches!(r, Err(HandshakeError::WrongSigner { .. })),
                "{r:?}"
            );
        };
        // Another chain, another session, another verifier, swapped roles.
        wrong(verify_session(
            &sig,
            CHAIN + 1,
            &challenge,
            alice.address(),
            bob.address(),
        ));
        wrong(verify_session(
            &sig,
            CHAIN,
            &B256::repeat_byte(8),
            alice.address(),
            bob.address(),
        ));
        let carol = Address::repeat_byte(3);
        wrong(verify_session(
            &sig,
            CHAIN,
            &challenge,
            alice.address(),
            carol,
        ));
        wrong(verify_session(
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
        let challenge = B256::repeat_byte(1);
        let sig = sign_session(&alice, CHAIN, &challenge, bob).unwrap();
        assert!(sig[64] == 27 || sig[64] == 28);

        // The same signature with high s and flipped v recovers the same key: refused.
        let order = uint!(0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141_U256);
        let s = U256::from_be_slice(&sig[32..64]);
        let mut high = sig;
        high[32..64].copy_from_slice(&(order - s).to_be_bytes::<32>());
        high[64] = if sig[64] == 27 { 28 } else { 27 };
        let err = verify_session(&high, CHAIN, &challenge, alice.address(), bob).unwrap_err();
        assert!(matches!(err, HandshakeError::MalformedSignature(m) if m.contains("high s")));

        for v in [0u8, 1, 26, 29, 255] {
            let mut bad = sig;
            bad[64] = v;
            let err = verify_session(&bad, CHAIN, &challenge, alice.address(), bob).unwrap_err();
            assert!(matches!(err, HandshakeError::MalformedSignature(m) if m.contains("27")));
        }

        let mut zero = sig;
        zero[..32].fill(0);
        let err = verify_session(&zero, CHAIN, &challenge, alice.address(), bob).unwrap_err();
        assert!(matches!(err, HandshakeError::MalformedSignature(_)));
    }

    #[test]
    fn the_digest_is_the_documented_preimage() {
        let signer = Address::repeat_byte(0xaa);
        let peer = Address::repeat_byte(0xbb);
        let challenge = B256::repeat_byte(0xcc);
        let mut preimage = b"Farthing peer handshake v3".to_vec();
        preimage.extend_from_slice(&CHAIN.to_be_bytes());
        preimage.extend_from_slice(challenge.as_slice());
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
        // The chain id is in the Noise prologue: the side that reads the first message
        // under the other's key sees it, each with its own chain id in the error.
        for (result, chain_id) in [(ra, CHAIN), (rb, CHAIN + 1)] {
            match result {
                Err(HandshakeError::SessionMismatch { chain_id: got }) => {
                    assert_eq!(got, chain_id)
                }
                Err(HandshakeError::Link(LinkError::Closed | LinkError::Io(_))) => {}
                other => panic!("{:?}", other.map(|(peer, _)| peer)),
            }
        }
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
