//! The payment log: every payment the node made or received, once durable, under a per-node
//! sequence number (1, 2, 3, … with no gap), written in the same synced batch as the proof that
//! carries it — so the log never claims a payment whose proof is not on disk, and never misses
//! one whose proof is.
//!
//! The entries of one commit with consecutive numbers are stored together, in chunks of at most
//! [`MAX_CHUNK`], under `plog/` + the first one's number (8 bytes, big-endian: a forward scan is
//! log order): under load one RocksDB record carries a whole group commit's payments instead of
//! one record each (a fraction of the CPU and of the bytes). A chunk, version 2:
//!
//! | field | bytes |
//! |---|---|
//! | version = 2 | 1 |
//! | entries (1 to [`MAX_CHUNK`]) | varint |
//! | each entry: flags: 1 outgoing, 2 carried, 4 idempotency key present, 8 credential present (other bits refused) | 1 |
//! | channel, nonce | varint each |
//! | amount (base units) | varint |
//! | at_ms (Unix milliseconds) | varint |
//! | memo | varint length (≤ [`MAX_LOGGED_MEMO_LEN`]), bytes |
//! | idempotency key, if flagged | varint length (1 to [`MAX_PAYMENT_KEY_LEN`]), UTF-8 bytes |
//! | credential's chain id, if flagged | 16 |
//!
//! Version 1 is the same without the credential: its flag 8 is refused like any other unknown
//! bit. This build writes version 2 only and reads both.
//!
//! Entry `i` of a chunk (from 0) is number `first + i`. Varints are unsigned LEB128 in their
//! shortest form (any other form is refused: one value, one encoding). A payment without memo
//! or key takes about 15 bytes before RocksDB's compression.

use farthing_core::ChannelId;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::records::MAX_PAYMENT_KEY_LEN;

/// The newest payment-log chunk version; the one this build writes.
pub const PAYMENT_CHUNK_VERSION: u8 = 2;

/// Most entries one stored chunk holds (a longer run is split): reading one entry decodes at
/// most this many.
pub const MAX_CHUNK: usize = 256;

/// Longest memo a log entry holds, in bytes (the peer protocol's memos are far shorter).
pub const MAX_LOGGED_MEMO_LEN: usize = 4_096;

const PAYMENT_CHUNK: &str = "payment log chunk";
const OUTGOING: u8 = 1;
const CARRIED: u8 = 2;
const KEYED: u8 = 4;
/// Version 2 on.
const CREDENTIAL: u8 = 8;

/// One entry of the payment log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LoggedPayment {
    /// Its place in the node's log: 1, 2, 3, … in the order the entries became durable (kept
    /// in the chunk's key, not in the entry). The group committer assigns it (see
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
    /// The chain id of the credential that spent it (none if no credential did: the node's own
    /// token, an incoming payment).
    pub credential: Option<[u8; 16]>,
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

/// Encode `entries` (consecutive numbers, 1 to [`MAX_CHUNK`] of them) as the newest
/// payment-log chunk (the numbers go in the key, not here).
pub fn encode_payment_chunk(entries: &[LoggedPayment]) -> Result<Vec<u8>, EncodeError> {
    encode_chunk(&entries.iter().collect::<Vec<_>>())
}

/// [`encode_payment_chunk`] of entries held elsewhere (a batch's writes).
pub(crate) fn encode_chunk(entries: &[&LoggedPayment]) -> Result<Vec<u8>, EncodeError> {
    if entries.is_empty() || entries.len() > MAX_CHUNK {
        return Err(EncodeError::TooLong {
            record: PAYMENT_CHUNK,
            field: "entries (1 or more)",
            len: entries.len(),
            max: MAX_CHUNK,
        });
    }
    let memos: usize = entries.iter().map(|p| p.memo.len()).sum();
    let mut w = Writer::new(
        PAYMENT_CHUNK,
        PAYMENT_CHUNK_VERSION,
        3 + 20 * entries.len() + memos,
    );
    w.varint(entries.len() as u128);
    for p in entries {
        let flags = (u8::from(p.outgoing) * OUTGOING)
            | (u8::from(p.carried) * CARRIED)
            | (u8::from(p.key.is_some()) * KEYED)
            | (u8::from(p.credential.is_some()) * CREDENTIAL);
        w.u8(flags);
        w.varint(u128::from(p.channel));
        w.varint(u128::from(p.nonce));
        w.varint(p.amount);
        w.varint(u128::from(p.at_ms));
        w.bytes_var("memo", &p.memo, MAX_LOGGED_MEMO_LEN)?;
        if let Some(key) = &p.key {
            if key.is_empty() {
                return Err(EncodeError::TooLong {
                    record: PAYMENT_CHUNK,
                    field: "idempotency key (1 byte or more)",
                    len: 0,
                    max: MAX_PAYMENT_KEY_LEN,
                });
            }
            w.bytes_var("idempotency key", key.as_bytes(), MAX_PAYMENT_KEY_LEN)?;
        }
        if let Some(credential) = &p.credential {
            w.array(credential);
        }
    }
    Ok(w.finish())
}

/// How many entries the chunk `bytes` holds, reading only its head (pruning needs no more).
pub fn payment_chunk_len(bytes: &[u8]) -> Result<u64, DecodeError> {
    let (_version, mut r) = Reader::open(PAYMENT_CHUNK, bytes, PAYMENT_CHUNK_VERSION)?;
    chunk_len(&mut r)
}

fn chunk_len(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let count = r.varint64("entries")?;
    if count == 0 || count > MAX_CHUNK as u64 {
        return Err(r.bad_tag("entries", count.min(255) as u8));
    }
    Ok(count)
}

/// Decode the payment-log chunk whose first entry is number `first` (from its key), of any
/// version this build reads.
pub fn decode_payment_chunk(first: u64, bytes: &[u8]) -> Result<Vec<LoggedPayment>, DecodeError> {
    let (version, mut r) = Reader::open(PAYMENT_CHUNK, bytes, PAYMENT_CHUNK_VERSION)?;
    let known = match version {
        1 => OUTGOING | CARRIED | KEYED,
        _ => OUTGOING | CARRIED | KEYED | CREDENTIAL,
    };
    let count = chunk_len(&mut r)?;
    if first.checked_add(count - 1).is_none() {
        return Err(r.bad_tag("entries", count.min(255) as u8));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for i in 0..count {
        let flags = r.u8("flags")?;
        if flags & !known != 0 {
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
        let credential = if flags & CREDENTIAL != 0 {
            Some(r.array("credential")?)
        } else {
            None
        };
        entries.push(LoggedPayment {
            seq: first + i,
            channel,
            outgoing: flags & OUTGOING != 0,
            nonce,
            amount,
            at_ms,
            memo,
            key,
            carried: flags & CARRIED != 0,
            credential,
        });
    }
    r.finish()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> LoggedPayment {
        LoggedPayment {
            seq,
            channel: 3,
            outgoing: true,
            nonce: 120_000,
            amount: 1_000_000,
            at_ms: 1_796_000_000_000,
            memo: Vec::new(),
            key: None,
            carried: false,
            credential: None,
        }
    }

    #[test]
    fn a_chunk_round_trips_with_every_field() {
        let full = LoggedPayment {
            memo: b"invoice 42".to_vec(),
            key: Some("order-9f".into()),
            carried: true,
            amount: u128::MAX,
            nonce: u64::MAX,
            channel: u64::MAX,
            at_ms: u64::MAX,
            credential: Some([0xc5; 16]),
            ..entry(8)
        };
        let chunk = vec![entry(7), full, entry(9)];
        let bytes = encode_payment_chunk(&chunk).unwrap();
        assert_eq!(decode_payment_chunk(7, &bytes).unwrap(), chunk);
        assert_eq!(payment_chunk_len(&bytes).unwrap(), 3);
        let most: Vec<_> = (1..=MAX_CHUNK as u64).map(entry).collect();
        let bytes = encode_payment_chunk(&most).unwrap();
        assert_eq!(decode_payment_chunk(1, &bytes).unwrap(), most);
        // Numbers past u64::MAX are not a chunk.
        assert!(decode_payment_chunk(u64::MAX - 1, &bytes).is_err());
    }

    /// The size goal: well under 100 bytes a payment on disk, so an entry itself must be small
    /// (RocksDB adds its key and overhead once per chunk, then compresses).
    #[test]
    fn an_entry_is_compact() {
        let one = encode_payment_chunk(&[entry(1)]).unwrap();
        assert_eq!(one.len(), 2 + 15, "{one:?}");
        let keyed = LoggedPayment {
            memo: b"coffee".to_vec(),
            key: Some("agent-7-000123".into()),
            ..entry(2)
        };
        let two = encode_payment_chunk(&[entry(1), keyed]).unwrap();
        assert_eq!(two.len(), 2 + 15 + 15 + 6 + 1 + 14);
        // A credential takes its 16 bytes, nothing more.
        let spent = LoggedPayment {
            credential: Some([1; 16]),
            ..entry(1)
        };
        let one = encode_payment_chunk(&[spent]).unwrap();
        assert_eq!(one.len(), 2 + 15 + 16, "{one:?}");
    }

    /// A chunk version 1 as an earlier build wrote it (by hand, byte for byte): entry 7 paid
    /// with memo "hi" and key "k-1", entry 8 received and carried.
    const V1_CHUNK: [u8; 30] = [
        0x01, 0x02, 0x05, 0x03, 0xc0, 0xa9, 0x07, 0xc0, 0x84, 0x3d, 0x80, 0xd0, 0xc4, 0xcf, 0xa2,
        0x34, 0x02, 0x68, 0x69, 0x03, 0x6b, 0x2d, 0x31, 0x02, 0xac, 0x02, 0x01, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn a_version_1_chunk_still_reads() {
        let paid = LoggedPayment {
            memo: b"hi".to_vec(),
            key: Some("k-1".into()),
            ..entry(7)
        };
        let received = LoggedPayment {
            seq: 8,
            channel: 300,
            outgoing: false,
            nonce: 1,
            amount: 0,
            at_ms: 0,
            memo: Vec::new(),
            key: None,
            carried: true,
            credential: None,
        };
        let read = decode_payment_chunk(7, &V1_CHUNK).unwrap();
        assert_eq!(read, vec![paid, received]);
        assert_eq!(payment_chunk_len(&V1_CHUNK).unwrap(), 2);
        // Version 2 of entries without a credential is version 1's layout under another
        // version byte.
        let mut v2 = encode_payment_chunk(&read).unwrap();
        assert_eq!(v2[0], 2);
        v2[0] = 1;
        assert_eq!(v2, V1_CHUNK);
        // Version 1 knows no credential: its flag is refused there.
        let mut flagged = V1_CHUNK;
        flagged[2] |= CREDENTIAL;
        assert!(matches!(
            decode_payment_chunk(7, &flagged),
            Err(DecodeError::BadTag {
                field: "flags",
                tag: 13,
                ..
            })
        ));
        let mut v3 = V1_CHUNK;
        v3[0] = 3;
        assert!(matches!(
            decode_payment_chunk(7, &v3),
            Err(DecodeError::UnknownVersion { found: 3, .. })
        ));
    }

    #[test]
    fn a_credential_is_read_whole_or_refused() {
        let spent = LoggedPayment {
            key: Some("k".into()),
            credential: Some(*b"0123456789abcdef"),
            ..entry(1)
        };
        let bytes = encode_payment_chunk(&[spent.clone(), entry(2)]).unwrap();
        assert_eq!(
            decode_payment_chunk(1, &bytes).unwrap(),
            vec![spent, entry(2)]
        );
        for len in 1..bytes.len() {
            assert!(decode_payment_chunk(1, &bytes[..len]).is_err(), "{len}");
        }
        let one = encode_payment_chunk(&[LoggedPayment {
            credential: Some([9; 16]),
            ..entry(1)
        }])
        .unwrap();
        assert!(matches!(
            decode_payment_chunk(1, &one[..one.len() - 1]),
            Err(DecodeError::Truncated {
                field: "credential",
                ..
            })
        ));
    }

    #[test]
    fn damaged_or_overlong_chunks_are_refused() {
        assert!(encode_payment_chunk(&[]).is_err());
        let too_many: Vec<_> = (1..=MAX_CHUNK as u64 + 1).map(entry).collect();
        assert!(encode_payment_chunk(&too_many).is_err());
        let bytes = encode_payment_chunk(&[entry(1)]).unwrap();
        let mut unknown_flag = bytes.clone();
        unknown_flag[2] |= 0x40;
        assert!(matches!(
            decode_payment_chunk(1, &unknown_flag),
            Err(DecodeError::BadTag { field: "flags", .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode_payment_chunk(1, &trailing),
            Err(DecodeError::Trailing { .. })
        ));
        assert!(decode_payment_chunk(1, &bytes[..bytes.len() - 1]).is_err());
        // A count of 0, or past the maximum.
        for count in [0u8, 0x81] {
            let mut bad = bytes.clone();
            bad[1] = count;
            assert!(decode_payment_chunk(1, &bad).is_err(), "{count}");
        }
        // A key flagged but empty, or not UTF-8.
        let mut keyed = encode_payment_chunk(&[LoggedPayment {
            key: Some("k".into()),
            ..entry(1)
        }])
        .unwrap();
        *keyed.last_mut().unwrap() = 0xff;
        assert!(decode_payment_chunk(1, &keyed).is_err());
        let err = encode_payment_chunk(&[LoggedPayment {
            key: Some(String::new()),
            ..entry(1)
        }]);
        assert!(err.is_err());
    }
}
