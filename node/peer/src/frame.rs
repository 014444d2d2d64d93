//! The binary frame format.
//!
//! ```text
//! frame   = length:u32 BE | version:u8 | type:u8 | payload
//! length  = bytes after the length field (version + type + payload), at most MAX_FRAME - 4
//! payload = fixed-width big-endian fields in declaration order; variable parts are
//!           length-prefixed (u16 BE), options carry a u8 tag (0 = none, 1 = some)
//! ```
//!
//! A frame's size is checked from its first four bytes, before anything is allocated or
//! read further. Decoding is strict: a payload must be exactly as long as its fields, a
//! bounded field within its bound, a reason valid UTF-8. Every failure is a [`DecodeError`];
//! nothing here panics on any input.

use alloy::primitives::Address;

use crate::message::{
    MAX_BATCH, MAX_BATCH_BYTES, MAX_MEMO, MAX_NOISE, MAX_REASON, Memo, Message, MessageKind,
    Payments, Reason, SignedBalance, batch_entry_len,
};

/// The frame format version this crate writes and reads.
pub const FRAME_VERSION: u8 = 1;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// The largest frame, length prefix included, in bytes. The largest message this crate
/// can encode (a `Pay` with a full memo) takes well under half of it.
pub const MAX_FRAME: usize = 4096;

/// The smallest value of the length field: version and type, empty payload.
const MIN_BODY: usize = 2;

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the length prefix, or than the frame it declares.
    #[error("truncated frame: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the frame needs (prefix included).
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// The declared length exceeds [`MAX_FRAME`]; refused before reading it.
    #[error("frame of {declared} bytes declared, the limit is {max}")]
    TooLarge {
        /// The frame's size as declared (prefix included).
        declared: u64,
        /// [`MAX_FRAME`].
        max: usize,
    },
    /// The declared length leaves no room for the version and type bytes.
    #[error("frame length {declared} is too small to hold a version and a type")]
    TooSmall {
        /// The length field's value.
        declared: u32,
    },
    /// A frame version this node does not speak.
    #[error("unsupported frame version {0} (this node speaks version {FRAME_VERSION})")]
    UnsupportedVersion(u8),
    /// A message type this node does not know.
    #[error("unknown message type 0x{0:02x}")]
    UnknownType(u8),
    /// The payload ends before the message's fields do.
    #[error("{kind} payload is truncated")]
    PayloadTruncated {
        /// The message being decoded.
        kind: MessageKind,
    },
    /// The payload goes on after the message's last field.
    #[error("{kind} payload has {extra} trailing bytes")]
    PayloadTrailing {
        /// The message being decoded.
        kind: MessageKind,
        /// Bytes left over.
        extra: usize,
    },
    /// More bytes follow the frame in a buffer given to [`decode`], which takes one frame.
    #[error("{extra} bytes after the end of the frame")]
    TrailingBytes {
        /// Bytes after the frame.
        extra: usize,
    },
    /// A variable-length field exceeds its bound.
    #[error("{kind}.{field} is {len} bytes, at most {max} are allowed")]
    FieldTooLong {
        /// The message being decoded.
        kind: MessageKind,
        /// The field.
        field: &'static str,
        /// Its declared length.
        len: usize,
        /// Its bound.
        max: usize,
    },
    /// A text field is not valid UTF-8.
    #[error("{kind}.{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The message being decoded.
        kind: MessageKind,
        /// The field.
        field: &'static str,
    },
    /// An option tag other than 0 or 1.
    #[error("{kind}.{field} has option tag {tag}, expected 0 or 1")]
    InvalidTag {
        /// The message being decoded.
        kind: MessageKind,
        /// The field.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
}

/// Encode `message` as one frame in a new buffer.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(message, &mut out);
    out
}

/// Append `message` as one frame to `out` (which is not cleared: frames can be batched).
///
/// Allocates only if `out` must grow; a buffer reused across calls stops allocating.
pub fn encode_into(message: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX]);
    out.push(FRAME_VERSION);
    out.push(message.kind().code());
    match message {
        Message::Hello {
            version,
            address,
            challenge,
        } => {
            put_u16(out, *version);
            out.extend_from_slice(address.as_slice());
            out.extend_from_slice(challenge);
        }
        Message::HelloAck { signature } => out.extend_from_slice(signature),
        // At most MAX_NOISE bytes (the handshake builds these).
        Message::Noise { message } => put_bytes(out, message),
        Message::Pay {
            channel_id,
            nonce,
            transferred,
            amount,
            signature,
            payment_id,
            memo,
        } => {
            put_u64(out, *channel_id);
            put_u64(out, *nonce);
            put_u128(out, *transferred);
            put_u128(out, *amount);
            out.extend_from_slice(signature);
            out.extend_from_slice(payment_id);
            put_bytes(out, memo.as_bytes());
        }
        Message::PayBatch {
            channel_id,
            nonce,
            transferred,
            signature,
            payments,
        } => {
            put_u64(out, *channel_id);
            put_u64(out, *nonce);
            put_u128(out, *transferred);
            out.extend_from_slice(signature);
            // At most MAX_BATCH payments (the type guarantees it).
            put_u16(out, payments.len() as u16);
            for (amount, memo) in payments.iter() {
                put_u128(out, *amount);
                put_bytes(out, memo.as_bytes());
            }
        }
        Message::Ack { channel_id, nonce } => {
            put_u64(out, *channel_id);
            put_u64(out, *nonce);
        }
        Message::Reject {
            channel_id,
            nonce,
            code,
            reason,
        } => {
            put_u64(out, *channel_id);
            put_u64(out, *nonce);
            put_u16(out, *code);
            put_bytes(out, reason.as_str().as_bytes());
        }
        Message::Sync {
            channel_id,
            sent,
            received_nonce,
        } => {
            put_u64(out, *channel_id);
            match sent {
                None => out.push(0),
                Some(SignedBalance {
                    nonce,
                    transferred,
                    signature,
                }) => {
                    out.push(1);
                    put_u64(out, *nonce);
                    put_u128(out, *transferred);
                    out.extend_from_slice(signature);
                }
            }
            put_u64(out, *received_nonce);
        }
        Message::CloseRequest {
            channel_id,
            payout_a,
            payout_b,
            withdrawn_a,
            withdrawn_b,
            signature,
        } => {
            put_u64(out, *channel_id);
            put_u128(out, *payout_a);
            put_u128(out, *payout_b);
            put_u128(out, *withdrawn_a);
            put_u128(out, *withdrawn_b);
            out.extend_from_slice(signature);
        }
        Message::CloseAccept {
            channel_id,
            signature,
        }
        | Message::WithdrawAccept {
            channel_id,
            signature,
        } => {
            put_u64(out, *channel_id);
            out.extend_from_slice(signature);
        }
        Message::WithdrawRequest {
            channel_id,
            participant,
            total_withdrawn,
            expiry,
            signature,
        } => {
            put_u64(out, *channel_id);
            out.extend_from_slice(participant.as_slice());
            put_u128(out, *total_withdrawn);
            put_u64(out, *expiry);
            out.extend_from_slice(signature);
        }
        Message::Ping { nonce } | Message::Pong { nonce } => put_u64(out, *nonce),
        Message::Error { code, reason } => {
            put_u16(out, *code);
            put_bytes(out, reason.as_str().as_bytes());
        }
    }
    let body = out.len() - start - LENGTH_PREFIX;
    debug_assert!(
        body + LENGTH_PREFIX <= MAX_FRAME,
        "message types are bounded below MAX_FRAME"
    );
    // Bounded by the message types (largest: a full PayBatch, under MAX_FRAME).
    let body = body as u32;
    out[start..start + LENGTH_PREFIX].copy_from_slice(&body.to_be_bytes());
}

/// Decode exactly one frame: `bytes` must hold the whole frame and nothing after it.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    match decode_first(bytes)? {
        Some((message, used)) if used == bytes.len() => Ok(message),
        Some((_, used)) => Err(DecodeError::TrailingBytes {
            extra: bytes.len() - used,
        }),
        None => Err(DecodeError::Truncated {
            needed: frame_len(bytes)?.unwrap_or(LENGTH_PREFIX),
            available: bytes.len(),
        }),
    }
}

/// Decode the first frame of `bytes`, which may hold more after it (a stream's read buffer).
///
/// `Ok(None)`: the frame is not complete yet (its size is already checked when its length
/// prefix is there). `Ok(Some((message, used)))`: the message and the bytes it took.
pub fn decode_first(bytes: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    let Some(len) = frame_len(bytes)? else {
        return Ok(None);
    };
    let Some(frame) = bytes.get(..len) else {
        return Ok(None);
    };
    let body = &frame[LENGTH_PREFIX..];
    if body[0] != FRAME_VERSION {
        return Err(DecodeError::UnsupportedVersion(body[0]));
    }
    let kind = MessageKind::from_code(body[1]).ok_or(DecodeError::UnknownType(body[1]))?;
    let message = decode_payload(kind, &body[MIN_BODY..])?;
    Ok(Some((message, len)))
}

/// The size (prefix included) of the frame `bytes` starts with, checked against
/// [`MAX_FRAME`]; `Ok(None)` while fewer than [`LENGTH_PREFIX`] bytes are there.
pub fn frame_len(bytes: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = bytes.first_chunk::<LENGTH_PREFIX>() else {
        return Ok(None);
    };
    let declared = u32::from_be_bytes(*prefix);
    let total = u64::from(declared) + LENGTH_PREFIX as u64;
    if total > MAX_FRAME as u64 {
        return Err(DecodeError::TooLarge {
            declared: total,
            max: MAX_FRAME,
        });
    }
    if (declared as usize) < MIN_BODY {
        return Err(DecodeError::TooSmall { declared });
    }
    Ok(Some(total as usize))
}

fn decode_payload(kind: MessageKind, payload: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Cursor {
        rest: payload,
        kind,
    };
    let message = match kind {
        MessageKind::Hello => Message::Hello {
            version: r.u16()?,
            address: r.address()?,
            challenge: r.array()?,
        },
        MessageKind::HelloAck => Message::HelloAck {
            signature: r.array()?,
        },
        MessageKind::Noise => Message::Noise {
            message: r.bytes("noise", MAX_NOISE)?.to_vec(),
        },
        MessageKind::Pay => Message::Pay {
            channel_id: r.u64()?,
            nonce: r.u64()?,
            transferred: r.u128()?,
            amount: r.u128()?,
            signature: r.array()?,
            payment_id: r.array()?,
            memo: Memo::new(r.bytes("memo", MAX_MEMO)?)
                .map_err(|e| r.too_long(e.field, e.len, e.max))?,
        },
        MessageKind::PayBatch => Message::PayBatch {
            channel_id: r.u64()?,
            nonce: r.u64()?,
            transferred: r.u128()?,
            signature: r.array()?,
            payments: r.payments()?,
        },
        MessageKind::Ack => Message::Ack {
            channel_id: r.u64()?,
            nonce: r.u64()?,
        },
        MessageKind::Reject => Message::Reject {
            channel_id: r.u64()?,
            nonce: r.u64()?,
            code: r.u16()?,
            reason: r.reason()?,
        },
        MessageKind::Sync => Message::Sync {
            channel_id: r.u64()?,
            sent: match r.u8()? {
                0 => None,
                1 => Some(SignedBalance {
                    nonce: r.u64()?,
                    transferred: r.u128()?,
                    signature: r.array()?,
                }),
                tag => {
                    return Err(DecodeError::InvalidTag {
                        kind,
                        field: "sent",
                        tag,
                    });
                }
            },
            received_nonce: r.u64()?,
        },
        MessageKind::CloseRequest => Message::CloseRequest {
            channel_id: r.u64()?,
            payout_a: r.u128()?,
            payout_b: r.u128()?,
            withdrawn_a: r.u128()?,
            withdrawn_b: r.u128()?,
            signature: r.array()?,
        },
        MessageKind::CloseAccept => Message::CloseAccept {
            channel_id: r.u64()?,
            signature: r.array()?,
        },
        MessageKind::WithdrawRequest => Message::WithdrawRequest {
            channel_id: r.u64()?,
            participant: r.address()?,
            total_withdrawn: r.u128()?,
            expiry: r.u64()?,
            signature: r.array()?,
        },
        MessageKind::WithdrawAccept => Message::WithdrawAccept {
            channel_id: r.u64()?,
            signature: r.array()?,
        },
        MessageKind::Ping => Message::Ping { nonce: r.u64()? },
        MessageKind::Pong => Message::Pong { nonce: r.u64()? },
        MessageKind::Error => Message::Error {
            code: r.u16()?,
            reason: r.reason()?,
        },
    };
    if !r.rest.is_empty() {
        return Err(DecodeError::PayloadTrailing {
            kind,
            extra: r.rest.len(),
        });
    }
    Ok(message)
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u128(out: &mut Vec<u8>, v: u128) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A u16 length, then the bytes. Callers pass bounded fields (memo, reason: ≤ 256 bytes).
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= usize::from(u16::MAX));
    put_u16(out, bytes.len() as u16);
    out.extend_from_slice(bytes);
}

/// Reads a payload front to back; every read checks the bytes are there.
struct Cursor<'a> {
    rest: &'a [u8],
    kind: MessageKind,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::PayloadTruncated { kind: self.kind });
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    fn u128(&mut self) -> Result<u128, DecodeError> {
        self.array().map(u128::from_be_bytes)
    }

    fn address(&mut self) -> Result<Address, DecodeError> {
        self.array::<20>().map(Address::from)
    }

    /// A u16-length-prefixed field, its length checked against `max` before it is read.
    fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(self.too_long(field, len, max));
        }
        self.take(len)
    }

    /// A u16 count (at most [`MAX_BATCH`]), then each payment's amount and memo, within
    /// [`MAX_BATCH_BYTES`].
    fn payments(&mut self) -> Result<Payments, DecodeError> {
        let count = usize::from(self.u16()?);
        if count > MAX_BATCH {
            return Err(self.too_long("payments", count, MAX_BATCH));
        }
        let mut payments = Payments::new();
        let mut bytes = 0;
        for _ in 0..count {
            let amount = self.u128()?;
            let memo = Memo::new(self.bytes("memo", MAX_MEMO)?)
                .map_err(|e| self.too_long(e.field, e.len, e.max))?;
            bytes += batch_entry_len(memo.len());
            payments
                .push(amount, memo)
                .map_err(|_| self.too_long("payments", bytes, MAX_BATCH_BYTES))?;
        }
        Ok(payments)
    }

    fn reason(&mut self) -> Result<Reason, DecodeError> {
        let kind = self.kind;
        let bytes = self.bytes("reason", MAX_REASON)?;
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
            kind,
            field: "reason",
        })?;
        Reason::new(text).map_err(|e| self.too_long(e.field, e.len, e.max))
    }

    fn too_long(&self, field: &'static str, len: usize, max: usize) -> DecodeError {
        DecodeError::FieldTooLong {
            kind: self.kind,
            field,
            len,
            max,
        }
    }
}

#[cfg(test)]
mod tests;
