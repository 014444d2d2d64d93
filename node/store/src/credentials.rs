//! The durable records of agent credentials (issue 15): what each credential ledger spent, the
//! credentials revoked, and the credentials the node minted or derived on request. The node's
//! budgets are rebuilt from these at start, never from the payment log (retention prunes it).
//!
//! A credential is known by its 16-byte chain id (`cid`, from farthing-credential). Keys hold
//! the ids; values are versioned records like the others (see [`records`](crate::records)),
//! with integers as shortest-form varints and strict decoding:
//!
//! | key | record, version 1 |
//! |---|---|
//! | `cspt/` ‖ cid (16) ‖ kind (1) | ledger total: version, total (varint) |
//! | `cspw/` ‖ second (8, big-endian) ‖ cid (16) ‖ kind (1) | one second's spend: version, amount (varint) |
//! | `crev/` ‖ cid (16) | revocation: version, at (varint, Unix seconds) |
//! | `cred/` ‖ id (16) | issued credential: version, parent `opt<[16]>`, created (varint), label (varint length ≤ [`MAX_CREDENTIAL_LABEL_LEN`], UTF-8), caveats (varint count ≤ [`MAX_ISSUED_CAVEATS`], each varint length ≤ [`MAX_ISSUED_CAVEAT_LEN`], UTF-8), chain ids (varint count ≤ [`MAX_ISSUED_CAVEATS`] + 1, 16 bytes each) |
//!
//! The per-second records are keyed second first, so everything older than a day is one
//! range delete ([`Write::PruneCredentialSeconds`](crate::Write::PruneCredentialSeconds)).
//! Amounts are absolute (what the ledger holds after the spend, not what was added): a later
//! write of the same key replaces the earlier one, so a merged group commit stays exact.

use crate::codec::{DecodeError, EncodeError, Reader, Writer};

/// The newest ledger-total record version; the one this build writes.
pub const CREDENTIAL_TOTAL_VERSION: u8 = 1;
/// The newest per-second spend record version; the one this build writes.
pub const CREDENTIAL_SECOND_VERSION: u8 = 1;
/// The newest revocation record version; the one this build writes.
pub const CREDENTIAL_REVOKED_VERSION: u8 = 1;
/// The newest issued-credential record version; the one this build writes.
pub const CREDENTIAL_ISSUED_VERSION: u8 = 1;

/// Longest label an issued credential's record holds, in bytes.
pub const MAX_CREDENTIAL_LABEL_LEN: usize = 128;
/// Longest caveat an issued credential's record holds, in bytes (as farthing-credential).
pub const MAX_ISSUED_CAVEAT_LEN: usize = 512;
/// Most caveats an issued credential's record holds (as farthing-credential).
pub const MAX_ISSUED_CAVEATS: usize = 64;

const TOTAL: &str = "credential total";
const SECOND: &str = "credential second";
const REVOKED: &str = "credential revocation";
const ISSUED: &str = "issued credential";

/// A credential ledger: the spends counted under one chain id (16 bytes) of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LedgerId {
    /// The chain id of the credential step whose budget this ledger counts against.
    pub cid: [u8; 16],
    /// What is counted: 0 payments, 1 deposits (the store keeps the byte, nothing more).
    pub kind: u8,
}

/// A spend's durable trace: the ledger's absolute total, and the absolute amount spent in one
/// second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialSpend {
    /// The ledger spent from.
    pub ledger: LedgerId,
    /// Everything the ledger spent so far, this spend included, base units.
    pub total: u128,
    /// The second of the spend, Unix seconds.
    pub second: u64,
    /// Everything the ledger spent in that second, this spend included, base units.
    pub in_second: u128,
}

/// A credential the node minted or derived on request (for listing; never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCredential {
    /// Its chain id.
    pub id: [u8; 16],
    /// The chain id of the credential it was derived from (none for a root).
    pub parent: Option<[u8; 16]>,
    /// When it was issued, Unix seconds.
    pub created: u64,
    /// The operator's name for it (at most [`MAX_CREDENTIAL_LABEL_LEN`] bytes).
    pub label: String,
    /// Its caveats in token order (at most [`MAX_ISSUED_CAVEATS`], each at most
    /// [`MAX_ISSUED_CAVEAT_LEN`] bytes).
    pub caveats: Vec<String>,
    /// The chain ids of its steps, `cid_0 ..= cid_n` (one more than its caveats, at most
    /// [`MAX_ISSUED_CAVEATS`] + 1): hashes, safe to keep; its budgets are counted under them.
    pub chain: Vec<[u8; 16]>,
}

/// What the ledgers hold, as read back at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialSpends {
    /// Every ledger's total, ascending by ledger.
    pub totals: Vec<(LedgerId, u128)>,
    /// `(ledger, second, amount)`: every per-second record from the `since` asked for on,
    /// ascending by (second, ledger).
    pub seconds: Vec<(LedgerId, u64, u128)>,
}

/// Encode a ledger's total as the newest ledger-total record (the ledger goes in the key).
pub fn encode_credential_total(total: u128) -> Vec<u8> {
    amount(TOTAL, CREDENTIAL_TOTAL_VERSION, total)
}

/// Decode a ledger-total record of any version this build reads.
pub fn decode_credential_total(bytes: &[u8]) -> Result<u128, DecodeError> {
    read_amount(TOTAL, CREDENTIAL_TOTAL_VERSION, "total", bytes)
}

/// Encode one second's spend of a ledger as the newest per-second record (the second and the
/// ledger go in the key).
pub fn encode_credential_second(in_second: u128) -> Vec<u8> {
    amount(SECOND, CREDENTIAL_SECOND_VERSION, in_second)
}

/// Decode a per-second spend record of any version this build reads.
pub fn decode_credential_second(bytes: &[u8]) -> Result<u128, DecodeError> {
    read_amount(SECOND, CREDENTIAL_SECOND_VERSION, "amount", bytes)
}

fn amount(record: &'static str, version: u8, v: u128) -> Vec<u8> {
    let mut w = Writer::new(record, version, 20);
    w.varint(v);
    w.finish()
}

fn read_amount(
    record: &'static str,
    version: u8,
    field: &'static str,
    bytes: &[u8],
) -> Result<u128, DecodeError> {
    let (_version, mut r) = Reader::open(record, bytes, version)?;
    let v = r.varint(field, 128)?;
    r.finish()?;
    Ok(v)
}

/// Encode when a credential was revoked (Unix seconds) as the newest revocation record.
pub fn encode_credential_revoked(at: u64) -> Vec<u8> {
    let mut w = Writer::new(REVOKED, CREDENTIAL_REVOKED_VERSION, 11);
    w.varint(u128::from(at));
    w.finish()
}

/// Decode a revocation record of any version this build reads: when (Unix seconds).
pub fn decode_credential_revoked(bytes: &[u8]) -> Result<u64, DecodeError> {
    let (_version, mut r) = Reader::open(REVOKED, bytes, CREDENTIAL_REVOKED_VERSION)?;
    let at = r.varint64("revoked at")?;
    r.finish()?;
    Ok(at)
}

/// Encode an issued credential as the newest issued-credential record (its id goes in the
/// key); a label, a caveat or a caveat list past its maximum is refused.
pub fn encode_issued_credential(c: &IssuedCredential) -> Result<Vec<u8>, EncodeError> {
    let caveats: usize = c.caveats.iter().map(|c| c.len() + 2).sum();
    let mut w = Writer::new(
        ISSUED,
        CREDENTIAL_ISSUED_VERSION,
        32 + c.label.len() + caveats,
    );
    w.present(c.parent.is_some());
    if let Some(parent) = &c.parent {
        w.array(parent);
    }
    w.varint(u128::from(c.created));
    w.bytes_var("label", c.label.as_bytes(), MAX_CREDENTIAL_LABEL_LEN)?;
    if c.caveats.len() > MAX_ISSUED_CAVEATS {
        return Err(EncodeError::TooLong {
            record: ISSUED,
            field: "caveats (a count)",
            len: c.caveats.len(),
            max: MAX_ISSUED_CAVEATS,
        });
    }
    w.varint(c.caveats.len() as u128);
    for caveat in &c.caveats {
        w.bytes_var("caveat", caveat.as_bytes(), MAX_ISSUED_CAVEAT_LEN)?;
    }
    if c.chain.len() > MAX_ISSUED_CAVEATS + 1 {
        return Err(EncodeError::TooLong {
            record: ISSUED,
            field: "chain (a count)",
            len: c.chain.len(),
            max: MAX_ISSUED_CAVEATS + 1,
        });
    }
    w.varint(c.chain.len() as u128);
    for id in &c.chain {
        w.array(id);
    }
    Ok(w.finish())
}

/// Decode the issued-credential record stored under id `id` (from its key), of any version
/// this build reads.
pub fn decode_issued_credential(
    id: [u8; 16],
    bytes: &[u8],
) -> Result<IssuedCredential, DecodeError> {
    let (_version, mut r) = Reader::open(ISSUED, bytes, CREDENTIAL_ISSUED_VERSION)?;
    let parent = if r.present("parent")? {
        Some(r.array("parent")?)
    } else {
        None
    };
    let created = r.varint64("created")?;
    let label = text(&mut r, "label", MAX_CREDENTIAL_LABEL_LEN)?;
    let count = r.varint64("caveats")?;
    if count > MAX_ISSUED_CAVEATS as u64 {
        return Err(r.bad_tag("caveats", count.min(255) as u8));
    }
    let mut caveats = Vec::with_capacity(count as usize);
    for _ in 0..count {
        caveats.push(text(&mut r, "caveat", MAX_ISSUED_CAVEAT_LEN)?);
    }
    let links = r.varint64("chain")?;
    if links > MAX_ISSUED_CAVEATS as u64 + 1 {
        return Err(r.bad_tag("chain", links.min(255) as u8));
    }
    let mut chain = Vec::with_capacity(links as usize);
    for _ in 0..links {
        chain.push(r.array("chain id")?);
    }
    r.finish()?;
    Ok(IssuedCredential {
        id,
        parent,
        created,
        label,
        caveats,
        chain,
    })
}

/// UTF-8 text with a varint length prefix, at most `max` bytes; other bytes are refused as a
/// bad tag of `field` (its first byte that is not UTF-8).
fn text(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    String::from_utf8(r.bytes_var(field, max)?).map_err(|e| {
        let bytes = e.as_bytes();
        let bad = bytes
            .get(e.utf8_error().valid_up_to())
            .copied()
            .unwrap_or_default();
        r.bad_tag(field, bad)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::refuses_every_truncation_and_extension;
    use proptest::prelude::*;

    fn issued() -> impl Strategy<Value = IssuedCredential> {
        (
            any::<[u8; 16]>(),
            proptest::option::of(any::<[u8; 16]>()),
            any::<u64>(),
            "\\PC{0,32}",
            proptest::collection::vec("[a-z<=>,.:/0-9]{0,80}|\\PC{0,20}", 0..8),
            proptest::collection::vec(any::<[u8; 16]>(), 0..9),
        )
            .prop_map(
                |(id, parent, created, label, caveats, chain)| IssuedCredential {
                    id,
                    parent,
                    created,
                    label,
                    caveats,
                    chain,
                },
            )
    }

    proptest! {
        #[test]
        fn totals_and_seconds_round_trip(v in any::<u128>()) {
            let bytes = encode_credential_total(v);
            prop_assert_eq!(bytes[0], CREDENTIAL_TOTAL_VERSION);
            prop_assert_eq!(decode_credential_total(&bytes).unwrap(), v);
            refuses_every_truncation_and_extension(&bytes, decode_credential_total)?;
            let bytes = encode_credential_second(v);
            prop_assert_eq!(decode_credential_second(&bytes).unwrap(), v);
            refuses_every_truncation_and_extension(&bytes, decode_credential_second)?;
        }

        #[test]
        fn revocations_round_trip(at in any::<u64>()) {
            let bytes = encode_credential_revoked(at);
            prop_assert_eq!(decode_credential_revoked(&bytes).unwrap(), at);
            refuses_every_truncation_and_extension(&bytes, decode_credential_revoked)?;
        }

        #[test]
        fn issued_credentials_round_trip(c in issued()) {
            let bytes = encode_issued_credential(&c).unwrap();
            prop_assert_eq!(bytes[0], CREDENTIAL_ISSUED_VERSION);
            prop_assert_eq!(decode_issued_credential(c.id, &bytes).unwrap(), c.clone());
            refuses_every_truncation_and_extension(&bytes, |b| decode_issued_credential(c.id, b))?;
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..300),
            versioned in any::<bool>(),
        ) {
            if versioned {
                bytes.insert(0, 1);
            }
            let _ = decode_credential_total(&bytes);
            let _ = decode_credential_second(&bytes);
            let _ = decode_credential_revoked(&bytes);
            let _ = decode_issued_credential([0; 16], &bytes);
        }

        #[test]
        fn a_damaged_issued_record_never_misreads(
            c in issued(),
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode_issued_credential(&c).unwrap();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(read) = decode_issued_credential(c.id, &bytes) {
                // Whatever was read must re-encode to exactly the damaged bytes.
                prop_assert_eq!(encode_issued_credential(&read).unwrap(), bytes);
            }
        }
    }

    fn sample() -> IssuedCredential {
        IssuedCredential {
            id: [7; 16],
            parent: Some([6; 16]),
            created: 1_796_000_000,
            label: "agent".into(),
            caveats: vec!["scope=pay".into(), "max<=500000".into()],
            chain: vec![[1; 16], [2; 16], [7; 16]],
        }
    }

    #[test]
    fn the_longest_issued_record_round_trips_and_one_byte_more_is_refused() {
        let longest = IssuedCredential {
            label: "l".repeat(MAX_CREDENTIAL_LABEL_LEN),
            caveats: vec!["c".repeat(MAX_ISSUED_CAVEAT_LEN); MAX_ISSUED_CAVEATS],
            chain: vec![[3; 16]; MAX_ISSUED_CAVEATS + 1],
            ..sample()
        };
        let bytes = encode_issued_credential(&longest).unwrap();
        assert_eq!(decode_issued_credential([7; 16], &bytes).unwrap(), longest);
        for (too_long, field) in [
            (
                IssuedCredential {
                    label: "l".repeat(MAX_CREDENTIAL_LABEL_LEN + 1),
                    ..sample()
                },
                "label",
            ),
            (
                IssuedCredential {
                    caveats: vec!["c".repeat(MAX_ISSUED_CAVEAT_LEN + 1)],
                    ..sample()
                },
                "caveat",
            ),
            (
                IssuedCredential {
                    caveats: vec![String::new(); MAX_ISSUED_CAVEATS + 1],
                    ..sample()
                },
                "caveats (a count)",
            ),
            (
                IssuedCredential {
                    chain: vec![[0; 16]; MAX_ISSUED_CAVEATS + 2],
                    ..sample()
                },
                "chain (a count)",
            ),
        ] {
            let err = encode_issued_credential(&too_long).unwrap_err();
            assert!(
                matches!(err, EncodeError::TooLong { field: f, .. } if f == field),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_tags_counts_and_text_are_refused() {
        let bytes = encode_issued_credential(&sample()).unwrap();
        // The parent tag.
        let mut bad = bytes.clone();
        bad[1] = 2;
        assert!(matches!(
            decode_issued_credential([7; 16], &bad),
            Err(DecodeError::BadTag {
                field: "parent",
                tag: 2,
                ..
            })
        ));
        // Version, parent tag and id, created (5 bytes), label length 5, "agent", then the
        // caveat count.
        let count = 1 + 1 + 16 + 5 + 1 + 5;
        assert_eq!(bytes[count], 2);
        let mut bad = bytes.clone();
        bad[count] = MAX_ISSUED_CAVEATS as u8 + 1;
        assert!(matches!(
            decode_issued_credential([7; 16], &bad),
            Err(DecodeError::BadTag {
                field: "caveats",
                ..
            })
        ));
        // A label that is not UTF-8.
        let mut bad = bytes.clone();
        bad[count - 5] = 0xff;
        assert!(matches!(
            decode_issued_credential([7; 16], &bad),
            Err(DecodeError::BadTag {
                field: "label",
                tag: 0xff,
                ..
            })
        ));
        // A label length past the maximum.
        let mut bad = bytes;
        bad[count - 6] = MAX_CREDENTIAL_LABEL_LEN as u8 + 1;
        assert!(matches!(
            decode_issued_credential([7; 16], &bad),
            Err(DecodeError::BadLength { field: "label", .. })
        ));
        // Unknown versions.
        for decode in [decode_credential_total, decode_credential_second] {
            let err = decode(&[2, 0]).unwrap_err();
            assert!(err.to_string().contains("version 2"), "{err}");
        }
        assert!(decode_credential_revoked(&[9, 0]).is_err());
        // A non-shortest varint.
        assert!(decode_credential_total(&[1, 0x81, 0x00]).is_err());
    }
}
