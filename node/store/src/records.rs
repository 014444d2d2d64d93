//! The stored records and their versioned binary layouts.
//!
//! Every record starts with a one-byte record version. This build writes the newest version
//! of each record and reads every version it knows (old databases open after an upgrade);
//! an unknown version, a short or overlong record, a bad tag or a bad length is a
//! [`DecodeError`], never a guess. Integers are fixed-width big-endian; `opt<T>` is a tag
//! byte (0 none, 1 some) followed by `T` when some.
//!
//! Channel, version 1:
//!
//! | field | bytes |
//! |---|---|
//! | version = 1 | 1 |
//! | id, token, role (0 A, 1 B), us, partner | 8, 20, 1, 20, 20 |
//! | challenge_period, opened_block | 4, 8 |
//! | on-chain state (0 open, 1 closed, 2 settled) | 1 |
//! | deposit_a, deposit_b, withdrawn_a, withdrawn_b | 16 each |
//! | settle_after, closer: `opt<address>` | 8, 1 (+20) |
//! | proof_a (nonce, transferred), proof_b | 8 + 16 each |
//! | ours, theirs: `opt<proof>`; proof = nonce, transferred, u16 length, signature | 1 (+8+16+2+len) each |
//!
//! Channel, version 2: version 1's fields, then the pending co-signed withdrawal
//! `opt<withdrawal>`; withdrawal = ours (0 partner, 1 us), total (16), expiry (8). A version 1
//! record reads as having none.
//!
//! Keyed payment, version 1 (under `pay/` + the idempotency key's UTF-8 bytes): version,
//! channel (8), nonce (8), amount (16).
//!
//! Closing, version 1 (under `clos/` + the channel id): version, channel (8). The node signed
//! a cooperative close of that channel (or asked for one, its signature included): it takes
//! no payment on it any more, across restarts.
//!
//! Payment-log chunk, version 2 (under `plog/` + its first entry's sequence number): see
//! [`paylog`](crate::paylog).
//!
//! Credential records (under `cspt/`, `cspw/`, `crev/`, `cred/` + chain ids): see
//! [`credentials`](crate::credentials).
//!
//! Cursor, version 1: version, block (8), block_hash (32).
//!
//! Pending transaction, version 1: version, key (8), channel: `opt<u64>`, kind (1, see
//! [`TxKind::tag`]), tx_hash (32), nonce (8), submitted_at (8), u32 length, raw.

use alloy_primitives::{Address, Bytes};
use farthing_core::{
    ChainState, Channel, ChannelId, OnChain, PendingWithdrawal, Role, SignedProof,
};

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
pub use crate::paylog::{
    MAX_CHUNK, MAX_LOGGED_MEMO_LEN, PAYMENT_CHUNK_VERSION, decode_payment_chunk,
    encode_payment_chunk, payment_chunk_len,
};

/// The newest channel record version; the one this build writes.
pub const CHANNEL_VERSION: u8 = 2;
/// The newest cursor record version; the one this build writes.
pub const CURSOR_VERSION: u8 = 1;
/// The newest pending-transaction record version; the one this build writes.
pub const PENDING_TX_VERSION: u8 = 1;
/// The newest keyed-payment record version; the one this build writes.
pub const KEYED_PAYMENT_VERSION: u8 = 1;
/// The newest closing record version; the one this build writes.
pub const CLOSING_VERSION: u8 = 1;
/// The newest owner record version; the one this build writes.
pub const OWNER_VERSION: u8 = 1;

/// Longest signature a channel record holds (its length prefix is two bytes).
pub const MAX_SIGNATURE_LEN: usize = crate::codec::MAX_LEN16;

const CHANNEL: &str = "channel";
const CURSOR: &str = "cursor";
const PENDING_TX: &str = "pending tx";
const KEYED_PAYMENT: &str = "keyed payment";
const CLOSING: &str = "closing";
const OWNER: &str = "owner";

/// Longest idempotency key the store files a payment under, in bytes.
pub const MAX_PAYMENT_KEY_LEN: usize = 128;

/// A payment made with an idempotency key: what a repeat of the key answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyedPayment {
    /// The channel paid on.
    pub channel: ChannelId,
    /// The nonce of the proof that carried it.
    pub nonce: u64,
    /// The amount, base units.
    pub amount: u128,
}

/// Encode a keyed payment as the newest keyed-payment record.
pub fn encode_keyed_payment(p: &KeyedPayment) -> Vec<u8> {
    let mut w = Writer::new(KEYED_PAYMENT, KEYED_PAYMENT_VERSION, 33);
    w.u64(p.channel);
    w.u64(p.nonce);
    w.u128(p.amount);
    w.finish()
}

/// Decode a keyed-payment record of any version this build reads.
pub fn decode_keyed_payment(bytes: &[u8]) -> Result<KeyedPayment, DecodeError> {
    let (_version, mut r) = Reader::open(KEYED_PAYMENT, bytes, KEYED_PAYMENT_VERSION)?;
    let payment = KeyedPayment {
        channel: r.u64("channel")?,
        nonce: r.u64("nonce")?,
        amount: r.u128("amount")?,
    };
    r.finish()?;
    Ok(payment)
}

/// Encode the mark that channel `id` is closing cooperatively.
pub fn encode_closing(id: ChannelId) -> Vec<u8> {
    let mut w = Writer::new(CLOSING, CLOSING_VERSION, 9);
    w.u64(id);
    w.finish()
}

/// Decode a closing mark of any version this build reads: the channel's id.
pub fn decode_closing(bytes: &[u8]) -> Result<ChannelId, DecodeError> {
    let (_version, mut r) = Reader::open(CLOSING, bytes, CLOSING_VERSION)?;
    let id = r.u64("channel")?;
    r.finish()?;
    Ok(id)
}

/// Encode the store's owner: the address of the key the store belongs to.
pub fn encode_owner(owner: &Address) -> Vec<u8> {
    let mut w = Writer::new(OWNER, OWNER_VERSION, 21);
    w.array(owner.as_slice());
    w.finish()
}

/// Decode an owner record of any version this build reads.
pub fn decode_owner(bytes: &[u8]) -> Result<Address, DecodeError> {
    let (_version, mut r) = Reader::open(OWNER, bytes, OWNER_VERSION)?;
    let owner: [u8; 20] = r.array("owner")?;
    r.finish()?;
    Ok(Address::from(owner))
}

/// The chain watcher's position: the last block it fully processed, once confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Number of that block.
    pub block: u64,
    /// Its hash, to notice on restart that it was reorganised away.
    pub block_hash: [u8; 32],
}

/// What a transaction the node submitted is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxKind {
    /// Open and fund a channel.
    Open,
    /// Raise our deposit.
    TopUp,
    /// Cooperative withdrawal while open.
    Withdraw,
    /// Cooperative close with both signatures.
    CooperativeClose,
    /// Unilateral close with the partner's latest proof.
    Close,
    /// Answer a close with our partner's newer proof during the challenge period.
    UpdateProof,
    /// Pay out after the challenge period.
    Settle,
    /// Claim an amount a failed payout left claimable.
    Claim,
}

impl TxKind {
    /// Every kind, in tag order.
    pub const ALL: [TxKind; 8] = [
        TxKind::Open,
        TxKind::TopUp,
        TxKind::Withdraw,
        TxKind::CooperativeClose,
        TxKind::Close,
        TxKind::UpdateProof,
        TxKind::Settle,
        TxKind::Claim,
    ];

    /// The byte stored for this kind (stable across versions: never renumber).
    pub fn tag(self) -> u8 {
        match self {
            TxKind::Open => 0,
            TxKind::TopUp => 1,
            TxKind::Withdraw => 2,
            TxKind::CooperativeClose => 3,
            TxKind::Close => 4,
            TxKind::UpdateProof => 5,
            TxKind::Settle => 6,
            TxKind::Claim => 7,
        }
    }

    /// The kind stored as `tag`, if any.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.get(usize::from(tag)).copied()
    }
}

/// A transaction the node signed and submitted but has not yet seen confirmed; kept so it can
/// be rebroadcast (or replaced) after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PendingTx {
    /// Node-local id, the record's key.
    pub key: u64,
    /// The channel it acts on (none for an open whose id is not known yet).
    pub channel: Option<ChannelId>,
    /// What it does.
    pub kind: TxKind,
    /// Its hash.
    pub tx_hash: [u8; 32],
    /// The sender account's nonce it uses.
    pub nonce: u64,
    /// When it was submitted, unix seconds.
    pub submitted_at: u64,
    /// The signed raw transaction, for rebroadcast.
    pub raw: Vec<u8>,
}

/// Encode a channel as the newest channel record.
pub fn encode_channel(c: &Channel) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new(CHANNEL, CHANNEL_VERSION, 400);
    w.u64(c.id);
    w.array(c.token.as_slice());
    w.u8(match c.role {
        Role::A => 0,
        Role::B => 1,
    });
    w.array(c.us.as_slice());
    w.array(c.partner.as_slice());
    w.u32(c.challenge_period);
    w.u64(c.opened_block);
    let o = &c.on_chain;
    w.u8(match o.state {
        ChainState::Open => 0,
        ChainState::Closed => 1,
        ChainState::Settled => 2,
    });
    for amount in [o.deposit_a, o.deposit_b, o.withdrawn_a, o.withdrawn_b] {
        w.u128(amount);
    }
    w.u64(o.settle_after);
    w.present(o.closer.is_some());
    if let Some(closer) = o.closer {
        w.array(closer.as_slice());
    }
    for (nonce, transferred) in [o.proof_a, o.proof_b] {
        w.u64(nonce);
        w.u128(transferred);
    }
    for (field, proof) in [("our signature", &c.ours), ("their signature", &c.theirs)] {
        w.present(proof.is_some());
        if let Some(p) = proof {
            w.u64(p.nonce);
            w.u128(p.transferred);
            w.bytes16(field, &p.signature)?;
        }
    }
    w.present(c.withdrawal.is_some());
    if let Some(pending) = &c.withdrawal {
        w.u8(u8::from(pending.ours));
        w.u128(pending.total);
        w.u64(pending.expiry);
    }
    Ok(w.finish())
}

/// Decode a channel record of any version this build reads.
pub fn decode_channel(bytes: &[u8]) -> Result<Channel, DecodeError> {
    let (version, mut r) = Reader::open(CHANNEL, bytes, CHANNEL_VERSION)?;
    let id = r.u64("id")?;
    let token = Address::from(r.array("token")?);
    let role = match r.u8("role")? {
        0 => Role::A,
        1 => Role::B,
        tag => return Err(r.bad_tag("role", tag)),
    };
    let us = Address::from(r.array("us")?);
    let partner = Address::from(r.array("partner")?);
    let challenge_period = r.u32("challenge period")?;
    let opened_block = r.u64("opened block")?;
    let state = match r.u8("chain state")? {
        0 => ChainState::Open,
        1 => ChainState::Closed,
        2 => ChainState::Settled,
        tag => return Err(r.bad_tag("chain state", tag)),
    };
    let deposit_a = r.u128("deposit a")?;
    let deposit_b = r.u128("deposit b")?;
    let withdrawn_a = r.u128("withdrawn a")?;
    let withdrawn_b = r.u128("withdrawn b")?;
    let settle_after = r.u64("settle after")?;
    let closer = if r.present("closer")? {
        Some(Address::from(r.array("closer")?))
    } else {
        None
    };
    let proof_a = (r.u64("proof a nonce")?, r.u128("proof a transferred")?);
    let proof_b = (r.u64("proof b nonce")?, r.u128("proof b transferred")?);
    let ours = read_proof(&mut r, "our proof")?;
    let theirs = read_proof(&mut r, "their proof")?;
    let withdrawal = if version >= 2 && r.present("withdrawal")? {
        let ours = match r.u8("withdrawer")? {
            0 => false,
            1 => true,
            tag => return Err(r.bad_tag("withdrawer", tag)),
        };
        Some(PendingWithdrawal {
            ours,
            total: r.u128("withdrawal total")?,
            expiry: r.u64("withdrawal expiry")?,
        })
    } else {
        None
    };
    r.finish()?;
    Ok(Channel {
        id,
        token,
        role,
        us,
        partner,
        challenge_period,
        opened_block,
        on_chain: OnChain {
            state,
            deposit_a,
            deposit_b,
            withdrawn_a,
            withdrawn_b,
            settle_after,
            closer,
            proof_a,
            proof_b,
        },
        ours,
        theirs,
        withdrawal,
    })
}

fn read_proof(r: &mut Reader<'_>, field: &'static str) -> Result<Option<SignedProof>, DecodeError> {
    if !r.present(field)? {
        return Ok(None);
    }
    Ok(Some(SignedProof {
        nonce: r.u64(field)?,
        transferred: r.u128(field)?,
        signature: Bytes::from(r.bytes16(field)?),
    }))
}

/// Encode a cursor as the newest cursor record.
pub fn encode_cursor(c: &Cursor) -> Vec<u8> {
    let mut w = Writer::new(CURSOR, CURSOR_VERSION, 41);
    w.u64(c.block);
    w.array(&c.block_hash);
    w.finish()
}

/// Decode a cursor record of any version this build reads.
pub fn decode_cursor(bytes: &[u8]) -> Result<Cursor, DecodeError> {
    let (_version, mut r) = Reader::open(CURSOR, bytes, CURSOR_VERSION)?;
    let cursor = Cursor {
        block: r.u64("block")?,
        block_hash: r.array("block hash")?,
    };
    r.finish()?;
    Ok(cursor)
}

/// Encode a pending transaction as the newest pending-transaction record.
pub fn encode_pending_tx(t: &PendingTx) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new(PENDING_TX, PENDING_TX_VERSION, 80 + t.raw.len());
    w.u64(t.key);
    w.present(t.channel.is_some());
    if let Some(channel) = t.channel {
        w.u64(channel);
    }
    w.u8(t.kind.tag());
    w.array(&t.tx_hash);
    w.u64(t.nonce);
    w.u64(t.submitted_at);
    w.bytes32("raw transaction", &t.raw)?;
    Ok(w.finish())
}

/// Decode a pending-transaction record of any version this build reads.
pub fn decode_pending_tx(bytes: &[u8]) -> Result<PendingTx, DecodeError> {
    let (_version, mut r) = Reader::open(PENDING_TX, bytes, PENDING_TX_VERSION)?;
    let key = r.u64("key")?;
    let channel = if r.present("channel")? {
        Some(r.u64("channel")?)
    } else {
        None
    };
    let tag = r.u8("kind")?;
    let kind = TxKind::from_tag(tag).ok_or_else(|| r.bad_tag("kind", tag))?;
    let tx = PendingTx {
        key,
        channel,
        kind,
        tx_hash: r.array("tx hash")?,
        nonce: r.u64("nonce")?,
        submitted_at: r.u64("submitted at")?,
        raw: r.bytes32("raw transaction")?,
    };
    r.finish()?;
    Ok(tx)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn address() -> impl Strategy<Value = Address> {
        any::<[u8; 20]>().prop_map(Address::from)
    }

    fn proof() -> impl Strategy<Value = SignedProof> {
        // Mostly real 65-byte signatures, sometimes any length up to a few hundred bytes.
        let signature = prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 65),
            1 => proptest::collection::vec(any::<u8>(), 0..300),
        ];
        (any::<u64>(), any::<u128>(), signature).prop_map(|(nonce, transferred, sig)| SignedProof {
            nonce,
            transferred,
            signature: Bytes::from(sig),
        })
    }

    fn on_chain() -> impl Strategy<Value = OnChain> {
        let state = prop_oneof![
            Just(ChainState::Open),
            Just(ChainState::Closed),
            Just(ChainState::Settled)
        ];
        (
            state,
            any::<[u128; 4]>(),
            any::<u64>(),
            proptest::option::of(address()),
            any::<(u64, u128)>(),
            any::<(u64, u128)>(),
        )
            .prop_map(
                |(state, [da, db, wa, wb], settle_after, closer, pa, pb)| OnChain {
                    state,
                    deposit_a: da,
                    deposit_b: db,
                    withdrawn_a: wa,
                    withdrawn_b: wb,
                    settle_after,
                    closer,
                    proof_a: pa,
                    proof_b: pb,
                },
            )
    }

    fn channel() -> impl Strategy<Value = Channel> {
        let role = prop_oneof![Just(Role::A), Just(Role::B)];
        (
            (any::<u64>(), address(), role, address(), address()),
            (any::<u32>(), any::<u64>(), on_chain()),
            (
                proptest::option::of(proof()),
                proptest::option::of(proof()),
                proptest::option::of(withdrawal()),
            ),
        )
            .prop_map(
                |(
                    (id, token, role, us, partner),
                    (challenge_period, opened_block, on_chain),
                    (ours, theirs, withdrawal),
                )| Channel {
                    id,
                    token,
                    role,
                    us,
                    partner,
                    challenge_period,
                    opened_block,
                    on_chain,
                    ours,
                    theirs,
                    withdrawal,
                },
            )
    }

    fn withdrawal() -> impl Strategy<Value = PendingWithdrawal> {
        (any::<bool>(), any::<u128>(), any::<u64>()).prop_map(|(ours, total, expiry)| {
            PendingWithdrawal {
                ours,
                total,
                expiry,
            }
        })
    }

    fn cursor() -> impl Strategy<Value = Cursor> {
        (any::<u64>(), any::<[u8; 32]>())
            .prop_map(|(block, block_hash)| Cursor { block, block_hash })
    }

    fn pending_tx() -> impl Strategy<Value = PendingTx> {
        (
            (any::<u64>(), proptest::option::of(any::<u64>())),
            proptest::sample::select(TxKind::ALL.to_vec()),
            (any::<[u8; 32]>(), any::<u64>(), any::<u64>()),
            proptest::collection::vec(any::<u8>(), 0..600),
        )
            .prop_map(
                |((key, channel), kind, (tx_hash, nonce, submitted_at), raw)| PendingTx {
                    key,
                    channel,
                    kind,
                    tx_hash,
                    nonce,
                    submitted_at,
                    raw,
                },
            )
    }

    /// Arbitrary bytes, half of them behind a valid version byte so decoding gets past it.
    fn junk() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..500),
            proptest::collection::vec(any::<u8>(), 0..500).prop_map(|mut v| {
                v.insert(0, 1);
                v
            }),
        ]
    }

    /// Every proper prefix of a record, and the record with one byte more, is refused.
    pub(crate) fn refuses_every_truncation_and_extension<T: std::fmt::Debug>(
        bytes: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<(), TestCaseError> {
        for len in 0..bytes.len() {
            prop_assert!(
                decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        let is_trailing = matches!(decode(&longer), Err(DecodeError::Trailing { extra: 1, .. }));
        prop_assert!(is_trailing);
        Ok(())
    }

    proptest! {
        #[test]
        fn channels_round_trip(c in channel()) {
            let bytes = encode_channel(&c).unwrap();
            prop_assert_eq!(bytes[0], CHANNEL_VERSION);
            prop_assert_eq!(decode_channel(&bytes).unwrap(), c);
            refuses_every_truncation_and_extension(&bytes, decode_channel)?;
        }

        #[test]
        fn cursors_round_trip(c in cursor()) {
            let bytes = encode_cursor(&c);
            prop_assert_eq!(bytes.len(), 41);
            prop_assert_eq!(decode_cursor(&bytes).unwrap(), c);
            refuses_every_truncation_and_extension(&bytes, decode_cursor)?;
        }

        #[test]
        fn pending_txs_round_trip(t in pending_tx()) {
            let bytes = encode_pending_tx(&t).unwrap();
            prop_assert_eq!(decode_pending_tx(&bytes).unwrap(), t);
            refuses_every_truncation_and_extension(&bytes, decode_pending_tx)?;
        }

        #[test]
        fn closing_marks_round_trip(id in any::<u64>()) {
            let bytes = encode_closing(id);
            prop_assert_eq!(decode_closing(&bytes).unwrap(), id);
            refuses_every_truncation_and_extension(&bytes, decode_closing)?;
        }

        #[test]
        fn keyed_payments_round_trip(channel in any::<u64>(), nonce in any::<u64>(), amount in any::<u128>()) {
            let p = KeyedPayment { channel, nonce, amount };
            let bytes = encode_keyed_payment(&p);
            prop_assert_eq!(decode_keyed_payment(&bytes).unwrap(), p);
            refuses_every_truncation_and_extension(&bytes, decode_keyed_payment)?;
        }

        #[test]
        fn version_1_channel_records_still_read(c in channel()) {
            // Version 1 is version 2 without the trailing withdrawal.
            let c = Channel { withdrawal: None, ..c };
            let mut bytes = encode_channel(&c).unwrap();
            prop_assert_eq!(bytes.pop(), Some(0));
            bytes[0] = 1;
            prop_assert_eq!(decode_channel(&bytes).unwrap(), c);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in junk()) {
            let _ = decode_keyed_payment(&bytes);
            let _ = decode_channel(&bytes);
            let _ = decode_cursor(&bytes);
            let _ = decode_pending_tx(&bytes);
        }

        #[test]
        fn decoding_a_damaged_record_never_panics_nor_misreads_its_length(
            c in channel(),
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode_channel(&c).unwrap();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(read) = decode_channel(&bytes) {
                // Whatever was read must re-encode to exactly the damaged bytes.
                prop_assert_eq!(encode_channel(&read).unwrap(), bytes);
            }
        }
    }

    #[test]
    fn unknown_versions_and_tags_are_typed_errors() {
        let c = Channel {
            id: 7,
            token: Address::repeat_byte(1),
            role: Role::B,
            us: Address::repeat_byte(2),
            partner: Address::repeat_byte(3),
            challenge_period: 60,
            opened_block: 1,
            on_chain: OnChain {
                state: ChainState::Open,
                deposit_a: 1,
                deposit_b: 2,
                withdrawn_a: 0,
                withdrawn_b: 0,
                settle_after: 0,
                closer: None,
                proof_a: (0, 0),
                proof_b: (0, 0),
            },
            ours: None,
            theirs: None,
            withdrawal: None,
        };
        let mut bytes = encode_channel(&c).unwrap();
        bytes[0] = 9;
        let err = decode_channel(&bytes).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnknownVersion {
                found: 9,
                supported: 2,
                ..
            }
        ));
        assert!(err.to_string().contains("version 9"), "{err}");

        // Role sits after version (1) and id (8) and token (20).
        let mut bytes = encode_channel(&c).unwrap();
        bytes[29] = 2;
        let err = decode_channel(&bytes).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::BadTag {
                    field: "role",
                    tag: 2,
                    ..
                }
            ),
            "{err}"
        );

        let t = PendingTx {
            key: 1,
            channel: None,
            kind: TxKind::Claim,
            tx_hash: [0; 32],
            nonce: 0,
            submitted_at: 0,
            raw: vec![],
        };
        let mut bytes = encode_pending_tx(&t).unwrap();
        bytes[10] = 8; // version, key, channel tag, then kind
        let err = decode_pending_tx(&bytes).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::BadTag {
                    field: "kind",
                    tag: 8,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn tx_kind_tags_are_stable() {
        for (i, kind) in TxKind::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(kind.tag()), i);
            assert_eq!(TxKind::from_tag(kind.tag()), Some(kind));
        }
        assert_eq!(TxKind::from_tag(8), None);
    }
}
