//! The payment log: every payment the node made or received, once durable, under a per-node
//! sequence number (1, 2, 3, … with no gap), written in the same synced batch as the proof that
//! carries it — so the log never claims a payment whose proof is not on disk, and never misses
//! one whose proof is.
//!
//! Each entry is stored under `plog/` + its sequence number (8 bytes, big-endian: a forward
//! scan is log order), compactly:
//!
//! | field | bytes |
//! |---|---|
//! | version = 1 | 1 |
//! | flags: 1 outgoing, 2 carried, 4 idempotency key present (other bits refused) | 1 |
//! | channel, nonce | varint each |
//! | amount (base units) | varint |
//! | at_ms (Unix milliseconds) | varint |
//! | memo | varint length (≤ [`MAX_LOGGED_MEMO_LEN`]), bytes |
//! | idempotency key, if flagged | varint length (1 to [`MAX_PAYMENT_KEY_LEN`]), UTF-8 bytes |
//!
//! Varints are unsigned LEB128 in their shortest form (any other form is refused: one value,
//! one encoding). A payment without memo or key takes about 16 bytes before RocksDB's own
//! per-entry overhead and compression.

use farthing_core::ChannelId;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::records::MAX_PAYMENT_KEY_LEN;

/// The newest payment-log entry version; the one this build writes.
pub const PAYMENT_ENTRY_VERSION: u8 = 1;

/// Longest memo a log entry holds, in bytes (the peer protocol's memos are far shorter).
pub const MAX_LOGGED_MEMO_LEN: usize = 4_096;

const PAYMENT_ENTRY: &str = "payment log entry";
const OUTGOING: u8 = 1;
const CARRIED: u8 = 2;
const KEYED: u8 = 4;

/// One entry of the payment log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LoggedPayment {
    /// Its place in the node's log: 1, 2, 3, … in the order the entries became durable. Kept
    /// in the key, not the value. The group committer assigns it (see
    /// [`GroupCommit`](crate::GroupCommit)); a direct [`Store::commit`](crate::Store::commit)
    /// stores the one given.
    pub seq: u64,
    /// The channel.
    pub channel: ChannelId,
    /// We paid (`true`) or were paid.
    pub outgoing: bool,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
    /// The amount, base units.
    pub amount: u128,
    /// Unix milliseconds when it was committed (the group committer stamps it).
    pub at_ms: u64,
    /// The payer's memo (not signed; empty if none).
    pub memo: Vec<u8>,
    /// The idempotency key the payer gave (the payer's side only).
    pub key: Option<String>,
    /// An incoming amount no payment of its proof claimed: the proof moved more than its
    /// payments (a payment whose own frame was lost or refused earlier, carried by this
    /// cumulative proof, or a proof taken from the partner's Sync). With these, incoming
    /// entries add up to what the channel received.
    pub carried: bool,
}

/// Where a walk of the payment log starts, and which way it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWalk {
    /// Forward, from the first entry whose sequence number is greater than this.
    After(u64),
    /// Backward, from the last entry whose sequence number is smaller than this
    /// (`Before(u64::MAX)`: from the newest).
    Before(u64),
}

/// Encode `p` as the newest payment-log entry (its `seq` goes in the key, not here).
pub fn encode_payment_entry(p: &LoggedPayment) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new(PAYMENT_ENTRY, PAYMENT_ENTRY_VERSION, 24 + p.memo.len());
    let flags = (u8::from(p.outgoing) * OUTGOING)
        | (u8::from(p.carried) * CARRIED)
        | (u8::from(p.key.is_some()) * KEYED);
    w.u8(flags);
    w.varint(u128::from(p.channel));
    w.varint(u128::from(p.nonce));
    w.varint(p.amount);
    w.varint(u128::from(p.at_ms));
    w.bytes_var("memo", &p.memo, MAX_LOGGED_MEMO_LEN)?;
    if let Some(key) = &p.key {
        if key.is_empty() {
            return Err(EncodeError::TooLong {
                record: PAYMENT_ENTRY,
                field: "idempotency key (1 byte or more)",
                len: 0,
                max: MAX_PAYMENT_KEY_LEN,
            });
        }
        w.bytes_var("idempotency key", key.as_bytes(), MAX_PAYMENT_KEY_LEN)?;
    }
    Ok(w.finish())
}

/// Decode the payment-log entry `seq` (from its key) of any version this build reads.
pub fn decode_payment_entry(seq: u64, bytes: &[u8]) -> Result<LoggedPayment, DecodeError> {
    let (_version, mut r) = Reader::open(PAYMENT_ENTRY, bytes, PAYMENT_ENTRY_VERSION)?;
    let flags = r.u8("flags")?;
    if flags & !(OUTGOING | CARRIED | KEYED) != 0 {
        return Err(r.bad_tag("flags", flags));
    }
    let channel = r.varint64("channel")?;
    let nonce = r.varint64("nonce")?;
    let amount = r.varint("amount", 128)?;
    let at_ms = r.varint64("at_ms")?;
    let memo = r.bytes_var("memo", MAX_LOGGED_MEMO_LEN)?;
    let key = if flags & KEYED != 0 {
        let bytes = r.bytes_var("idempotency key", MAX_PAYMENT_KEY_LEN)?;
        match String::from_utf8(bytes) {
            Ok(key) if !key.is_empty() => Some(key),
            _ => return Err(r.bad_tag("idempotency key", 0)),
        }
    } else {
        None
    };
    r.finish()?;
    Ok(LoggedPayment {
        seq,
        channel,
        outgoing: flags & OUTGOING != 0,
        nonce,
        amount,
        at_ms,
        memo,
        key,
        carried: flags & CARRIED != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LoggedPayment {
        LoggedPayment {
            seq: 7,
            channel: 3,
            outgoing: true,
            nonce: 120_000,
            amount: 1_000_000,
            at_ms: 1_796_000_000_000,
            memo: Vec::new(),
            key: None,
            carried: false,
        }
    }

    #[test]
    fn an_entry_round_trips_with_every_field() {
        let full = LoggedPayment {
            memo: b"invoice 42".to_vec(),
            key: Some("order-9f".into()),
            carried: true,
            amount: u128::MAX,
            nonce: u64::MAX,
            channel: u64::MAX,
            at_ms: u64::MAX,
            ..entry()
        };
        for p in [entry(), full] {
            let bytes = encode_payment_entry(&p).unwrap();
            assert_eq!(decode_payment_entry(p.seq, &bytes).unwrap(), p);
        }
    }

    /// The size goal: well under 100 bytes a payment on disk, so the value itself must be
    /// small (RocksDB adds the key and ~10 bytes of its own per entry, before compression).
    #[test]
    fn an_entry_is_compact() {
        let bare = encode_payment_entry(&entry()).unwrap();
        assert_eq!(bare.len(), 16, "{bare:?}");
        let keyed = LoggedPayment {
            memo: b"coffee".to_vec(),
            key: Some("agent-7-000123".into()),
            ..entry()
        };
        assert_eq!(encode_payment_entry(&keyed).unwrap().len(), 16 + 6 + 1 + 14);
    }

    #[test]
    fn damaged_entries_are_refused() {
        let bytes = encode_payment_entry(&entry()).unwrap();
        let mut unknown_flag = bytes.clone();
        unknown_flag[1] |= 0x40;
        assert!(matches!(
            decode_payment_entry(1, &unknown_flag),
            Err(DecodeError::BadTag { field: "flags", .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode_payment_entry(1, &trailing),
            Err(DecodeError::Trailing { .. })
        ));
        assert!(decode_payment_entry(1, &bytes[..bytes.len() - 1]).is_err());
        // A key flagged but empty, or not UTF-8.
        let mut keyed = encode_payment_entry(&LoggedPayment {
            key: Some("k".into()),
            ..entry()
        })
        .unwrap();
        *keyed.last_mut().unwrap() = 0xff;
        assert!(decode_payment_entry(1, &keyed).is_err());
        let err = encode_payment_entry(&LoggedPayment {
            key: Some(String::new()),
            ..entry()
        });
        assert!(err.is_err());
    }
}
