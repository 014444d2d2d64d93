//! The messages two Farthing nodes exchange over the peer link.
//!
//! Every message is a plain value: this module checks only what the wire format itself bounds
//! (the length of a memo or a reason). Whether a proof is valid, affordable or in order is
//! the node's business, not the wire's.

use std::fmt;

use alloy::primitives::Address;
use farthing_core::ChannelId;

/// The peer protocol version carried in [`Message::Hello`]; both sides must speak the same.
/// 2: [`Message::PayBatch`]. 3: the Noise handshake ([`Message::Noise`]) and an encrypted
/// link.
pub const PROTOCOL_VERSION: u16 = 3;

/// The most bytes a [`Message::Noise`] handshake message may hold (the NN pattern's are 32
/// and 48).
pub const MAX_NOISE: usize = 256;

/// A 65-byte secp256k1 signature as the contract takes it: `r | s | v`, `v` in {27, 28}.
///
/// The wire carries these bytes as they are; whoever acts on a signature checks it.
pub type RawSignature = [u8; 65];

/// The most bytes a [`Memo`] may hold.
pub const MAX_MEMO: usize = 256;

/// The most bytes (UTF-8) a [`Reason`] may hold.
pub const MAX_REASON: usize = 256;

/// Error codes carried by [`Message::Error`] (the link closes after it).
///
/// [`Message::Reject`] codes belong to the payment logic and are defined there.
pub mod error_code {
    /// A frame could not be decoded, or a message came when it makes no sense.
    pub const PROTOCOL: u16 = 1;
    /// The handshake failed: bad signature, unexpected partner, version mismatch.
    pub const HANDSHAKE: u16 = 2;
    /// The peer took too long to answer.
    pub const TIMEOUT: u16 = 3;
    /// The node is shutting down.
    pub const SHUTDOWN: u16 = 4;
    /// Anything else; the reason says what.
    pub const INTERNAL: u16 = 5;
}

/// Why a [`Message::Reject`] was sent, as both ends read its `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RejectCode {
    /// A balance proof was refused (its `nonce` says which); nothing of it was stored.
    Proof = 1,
    /// A cooperative close request was refused (`nonce` 0).
    Close = 2,
    /// A cooperative withdrawal request was refused (`nonce` 0).
    Withdraw = 3,
}

impl RejectCode {
    /// The code read off the wire, if this build knows it.
    pub fn from_wire(code: u16) -> Option<Self> {
        match code {
            1 => Some(Self::Proof),
            2 => Some(Self::Close),
            3 => Some(Self::Withdraw),
            _ => None,
        }
    }
}

impl From<RejectCode> for u16 {
    fn from(code: RejectCode) -> Self {
        code as u16
    }
}

/// A bounded field was longer than the wire format allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {len} bytes long, at most {max} are allowed: shorten it")]
pub struct TooLong {
    /// Which field.
    pub field: &'static str,
    /// Its length in bytes.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

/// A payment memo: opaque bytes, at most [`MAX_MEMO`] of them (the type guarantees it, so
/// encoding a message cannot fail).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Memo(Vec<u8>);

impl Memo {
    /// The empty memo (no allocation).
    pub const fn empty() -> Self {
        Self(Vec::new())
    }

    /// A memo from `bytes`, refused past [`MAX_MEMO`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, TooLong> {
        let bytes = bytes.into();
        if bytes.len() > MAX_MEMO {
            return Err(TooLong {
                field: "memo",
                len: bytes.len(),
                max: MAX_MEMO,
            });
        }
        Ok(Self(bytes))
    }

    /// The memo's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The memo's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<u8>> for Memo {
    type Error = TooLong;

    fn try_from(bytes: Vec<u8>) -> Result<Self, TooLong> {
        Self::new(bytes)
    }
}

impl TryFrom<&[u8]> for Memo {
    type Error = TooLong;

    fn try_from(bytes: &[u8]) -> Result<Self, TooLong> {
        Self::new(bytes)
    }
}

impl AsRef<[u8]> for Memo {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The most payments one [`Message::PayBatch`] carries.
pub const MAX_BATCH: usize = 128;

/// The most bytes the payments of one [`Message::PayBatch`] take on the wire (18 per payment
/// plus its memo), so that a full batch still fits a frame.
pub const MAX_BATCH_BYTES: usize = 3_900;

/// What one payment of a [`Message::PayBatch`] takes on the wire: amount, memo length, memo.
pub const fn batch_entry_len(memo_len: usize) -> usize {
    16 + 2 + memo_len
}

/// The payments one [`Message::PayBatch`] carries, in order: each an amount and its memo. At
/// most [`MAX_BATCH`] of them in at most [`MAX_BATCH_BYTES`] (the type guarantees it, so a
/// batch always fits a frame).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payments {
    entries: Vec<(u128, Memo)>,
    bytes: usize,
}

impl Payments {
    /// No payments yet.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
            bytes: 0,
        }
    }

    /// Whether one more payment with a memo of `memo_len` bytes fits.
    pub fn fits(&self, memo_len: usize) -> bool {
        self.entries.len() < MAX_BATCH && self.bytes + batch_entry_len(memo_len) <= MAX_BATCH_BYTES
    }

    /// Add a payment; a full batch gives it back.
    pub fn push(&mut self, amount: u128, memo: Memo) -> Result<(), (u128, Memo)> {
        if !self.fits(memo.len()) {
            return Err((amount, memo));
        }
        self.bytes += batch_entry_len(memo.len());
        self.entries.push((amount, memo));
        Ok(())
    }

    /// The payments, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &(u128, Memo)> {
        self.entries.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl IntoIterator for Payments {
    type Item = (u128, Memo);
    type IntoIter = std::vec::IntoIter<(u128, Memo)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// A human-readable reason (in [`Message::Reject`] and [`Message::Error`]): UTF-8, at most
/// [`MAX_REASON`] bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Reason(String);

impl Reason {
    /// A reason from `text`, refused past [`MAX_REASON`] bytes.
    pub fn new(text: impl Into<String>) -> Result<Self, TooLong> {
        let text = text.into();
        if text.len() > MAX_REASON {
            return Err(TooLong {
                field: "reason",
                len: text.len(),
                max: MAX_REASON,
            });
        }
        Ok(Self(text))
    }

    /// A reason from `text`, cut (at a character boundary) to [`MAX_REASON`] bytes: for
    /// diagnostics, where a shortened text beats none.
    pub fn truncated(text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = TooLong;

    fn try_from(text: String) -> Result<Self, TooLong> {
        Self::new(text)
    }
}

impl TryFrom<&str> for Reason {
    type Error = TooLong;

    fn try_from(text: &str) -> Result<Self, TooLong> {
        Self::new(text)
    }
}

impl AsRef<str> for Reason {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cumulative balance proof without its channel id: what [`Message::Sync`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedBalance {
    /// The proof's nonce.
    pub nonce: u64,
    /// Everything its signer has paid the partner in the channel.
    pub transferred: u128,
    /// The signer's EIP-712 `BalanceProof` signature.
    pub signature: RawSignature,
}

/// One message of the peer protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// First message on a link, both ways, in clear: the protocol version, who I claim to be,
    /// and fresh random bytes. Both Hellos go into the Noise prologue, so the session (and
    /// the signature each side makes over its hash) binds them.
    Hello {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// The address whose key the sender claims to hold.
        address: Address,
        /// Fresh random bytes (the handshake's `Hello::random`).
        challenge: [u8; 32],
    },
    /// One message of the Noise handshake that follows the [`Message::Hello`]s (see
    /// [`mod@crate::handshake`]), sent in clear like them.
    Noise {
        /// The Noise handshake message, at most [`MAX_NOISE`] bytes.
        message: Vec<u8>,
    },
    /// The first encrypted message, both ways: the handshake signature that binds the
    /// sender's address to this Noise session (see [`mod@crate::handshake`]).
    HelloAck {
        /// `r | s | v` over the handshake digest.
        signature: RawSignature,
    },
    /// A payment: the sender's new cumulative balance proof and the increase it claims.
    Pay {
        /// The channel.
        channel_id: ChannelId,
        /// The proof's nonce (one more than the sender's previous one, or more if several
        /// payments are in flight).
        nonce: u64,
        /// The sender's new cumulative total paid to the receiver.
        transferred: u128,
        /// The increase this payment claims over the previous proof.
        amount: u128,
        /// The sender's EIP-712 `BalanceProof` signature.
        signature: RawSignature,
        /// The payer's idempotency/correlation id.
        payment_id: [u8; 16],
        /// Opaque bytes from the payer, not signed.
        memo: Memo,
    },
    /// Several payments carried by one proof (the payer signs once for all the payments queued
    /// on the channel when it signs): the proof's increase is their sum.
    PayBatch {
        /// The channel.
        channel_id: ChannelId,
        /// The proof's nonce.
        nonce: u64,
        /// The sender's new cumulative total paid to the receiver.
        transferred: u128,
        /// The sender's EIP-712 `BalanceProof` signature.
        signature: RawSignature,
        /// The payments, each with its amount and memo.
        payments: Payments,
    },
    /// Cumulative acknowledgement: every proof of this channel up to `nonce` is durable at
    /// the receiver.
    Ack {
        /// The channel.
        channel_id: ChannelId,
        /// The highest nonce made durable.
        nonce: u64,
    },
    /// A proof was refused; nothing of it was stored.
    Reject {
        /// The channel.
        channel_id: ChannelId,
        /// The refused proof's nonce.
        nonce: u64,
        /// Why, as a code for programs: a [`RejectCode`].
        code: u16,
        /// Why, for people.
        reason: Reason,
    },
    /// Exchanged per channel on (re)connect so both sides resend what was not acknowledged.
    Sync {
        /// The channel.
        channel_id: ChannelId,
        /// The sender's latest proof it signed, if any.
        sent: Option<SignedBalance>,
        /// The nonce of the latest proof of the receiver's that the sender holds durably.
        received_nonce: u64,
    },
    /// Asks the partner to co-sign a cooperative close with these numbers.
    CloseRequest {
        /// The channel.
        channel_id: ChannelId,
        /// What A receives.
        payout_a: u128,
        /// What B receives.
        payout_b: u128,
        /// A's total withdrawn at signing time.
        withdrawn_a: u128,
        /// B's total withdrawn at signing time.
        withdrawn_b: u128,
        /// The requester's EIP-712 `CooperativeClose` signature.
        signature: RawSignature,
    },
    /// The partner's co-signature of a [`Message::CloseRequest`].
    CloseAccept {
        /// The channel.
        channel_id: ChannelId,
        /// The accepter's EIP-712 `CooperativeClose` signature.
        signature: RawSignature,
    },
    /// Asks the partner to co-sign a cooperative withdrawal.
    WithdrawRequest {
        /// The channel.
        channel_id: ChannelId,
        /// Who withdraws.
        participant: Address,
        /// Their new total withdrawn.
        total_withdrawn: u128,
        /// Unix time after which the signatures are void.
        expiry: u64,
        /// The requester's EIP-712 `Withdraw` signature.
        signature: RawSignature,
    },
    /// The partner's co-signature of a [`Message::WithdrawRequest`].
    WithdrawAccept {
        /// The channel.
        channel_id: ChannelId,
        /// The accepter's EIP-712 `Withdraw` signature.
        signature: RawSignature,
    },
    /// Liveness probe; answered by [`Message::Pong`] with the same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Answer to [`Message::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Sent just before closing the link, with the reason the closer logs.
    Error {
        /// One of [`error_code`].
        code: u16,
        /// Why, for people.
        reason: Reason,
    },
}

/// Which kind of message: its one-byte wire type and a name for logs and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// [`Message::Hello`].
    Hello = 0x01,
    /// [`Message::HelloAck`].
    HelloAck = 0x02,
    /// [`Message::Noise`].
    Noise = 0x06,
    /// [`Message::Error`].
    Error = 0x03,
    /// [`Message::Ping`].
    Ping = 0x04,
    /// [`Message::Pong`].
    Pong = 0x05,
    /// [`Message::Pay`].
    Pay = 0x10,
    /// [`Message::Ack`].
    Ack = 0x11,
    /// [`Message::PayBatch`].
    PayBatch = 0x14,
    /// [`Message::Reject`].
    Reject = 0x12,
    /// [`Message::Sync`].
    Sync = 0x13,
    /// [`Message::CloseRequest`].
    CloseRequest = 0x20,
    /// [`Message::CloseAccept`].
    CloseAccept = 0x21,
    /// [`Message::WithdrawRequest`].
    WithdrawRequest = 0x22,
    /// [`Message::WithdrawAccept`].
    WithdrawAccept = 0x23,
}

impl MessageKind {
    /// Every kind, in wire-type order.
    pub const ALL: [MessageKind; 15] = [
        Self::Hello,
        Self::HelloAck,
        Self::Error,
        Self::Ping,
        Self::Pong,
        Self::Noise,
        Self::Pay,
        Self::Ack,
        Self::Reject,
        Self::Sync,
        Self::PayBatch,
        Self::CloseRequest,
        Self::CloseAccept,
        Self::WithdrawRequest,
        Self::WithdrawAccept,
    ];

    /// The one-byte wire type.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The kind with wire type `code`, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::Hello,
            0x02 => Self::HelloAck,
            0x03 => Self::Error,
            0x04 => Self::Ping,
            0x05 => Self::Pong,
            0x06 => Self::Noise,
            0x10 => Self::Pay,
            0x11 => Self::Ack,
            0x12 => Self::Reject,
            0x13 => Self::Sync,
            0x14 => Self::PayBatch,
            0x20 => Self::CloseRequest,
            0x21 => Self::CloseAccept,
            0x22 => Self::WithdrawRequest,
            0x23 => Self::WithdrawAccept,
            _ => return None,
        })
    }

    /// The name used in logs and errors.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hello => "Hello",
            Self::HelloAck => "HelloAck",
            Self::Noise => "Noise",
            Self::Error => "Error",
            Self::Ping => "Ping",
            Self::Pong => "Pong",
            Self::Pay => "Pay",
            Self::Ack => "Ack",
            Self::Reject => "Reject",
            Self::Sync => "Sync",
            Self::PayBatch => "PayBatch",
            Self::CloseRequest => "CloseRequest",
            Self::CloseAccept => "CloseAccept",
            Self::WithdrawRequest => "WithdrawRequest",
            Self::WithdrawAccept => "WithdrawAccept",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Message {
    /// This message's kind.
    pub const fn kind(&self) -> MessageKind {
        match self {
            Self::Hello { .. } => MessageKind::Hello,
            Self::HelloAck { .. } => MessageKind::HelloAck,
            Self::Noise { .. } => MessageKind::Noise,
            Self::Pay { .. } => MessageKind::Pay,
            Self::PayBatch { .. } => MessageKind::PayBatch,
            Self::Ack { .. } => MessageKind::Ack,
            Self::Reject { .. } => MessageKind::Reject,
            Self::Sync { .. } => MessageKind::Sync,
            Self::CloseRequest { .. } => MessageKind::CloseRequest,
            Self::CloseAccept { .. } => MessageKind::CloseAccept,
            Self::WithdrawRequest { .. } => MessageKind::WithdrawRequest,
            Self::WithdrawAccept { .. } => MessageKind::WithdrawAccept,
            Self::Ping { .. } => MessageKind::Ping,
            Self::Pong { .. } => MessageKind::Pong,
            Self::Error { .. } => MessageKind::Error,
        }
    }

    /// The channel this message is about, if it is about one.
    pub const fn channel_id(&self) -> Option<ChannelId> {
        match self {
            Self::Pay { channel_id, .. }
            | Self::PayBatch { channel_id, .. }
            | Self::Ack { channel_id, .. }
            | Self::Reject { channel_id, .. }
            | Self::Sync { channel_id, .. }
            | Self::CloseRequest { channel_id, .. }
            | Self::CloseAccept { channel_id, .. }
            | Self::WithdrawRequest { channel_id, .. }
            | Self::WithdrawAccept { channel_id, .. } => Some(*channel_id),
            Self::Hello { .. }
            | Self::HelloAck { .. }
            | Self::Noise { .. }
            | Self::Ping { .. }
            | Self::Pong { .. }
            | Self::Error { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::from_code(kind.code()), Some(kind));
        }
        let known: Vec<u8> = MessageKind::ALL.iter().map(|k| k.code()).collect();
        for code in 0..=u8::MAX {
            assert_eq!(
                MessageKind::from_code(code).is_some(),
                known.contains(&code)
            );
        }
    }

    #[test]
    fn memo_and_reason_are_bounded() {
        assert!(Memo::new(vec![0; MAX_MEMO]).is_ok());
        let err = Memo::new(vec![0; MAX_MEMO + 1]).unwrap_err();
        assert_eq!(err.len, MAX_MEMO + 1);
        assert!(err.to_string().contains("at most 256"));
        assert!(Reason::new("x".repeat(MAX_REASON)).is_ok());
        assert!(Reason::new("x".repeat(MAX_REASON + 1)).is_err());
    }

    #[test]
    fn truncated_reason_cuts_at_a_char_boundary() {
        // 'é' is two bytes: 200 of them are 400 bytes, cut to 256 = 128 whole characters.
        let reason = Reason::truncated("é".repeat(200));
        assert_eq!(reason.as_str().len(), 256);
        let reason = Reason::truncated(format!("x{}", "é".repeat(200)));
        assert_eq!(reason.as_str().len(), 255);
        assert_eq!(Reason::truncated("short").as_str(), "short");
    }
}
