//! The key layout both backends share, and the [`Store`](crate::Store) logic on top of an
//! ordered byte map, so that [`RocksStore`](crate::RocksStore) and
//! [`MemStore`](crate::MemStore) encode, order and refuse exactly alike.
//!
//! Keys are a short ASCII prefix and, for per-item records, the item's id as 8 big-endian
//! bytes, so a forward scan of a prefix returns items in ascending id order. Credential
//! records are keyed by 16-byte chain ids (see [`credentials`](crate::credentials)).

mod credentials;

use farthing_core::{Channel, ChannelId};

use crate::codec::{DecodeError, EncodeError};
use crate::paylog::{
    LogWalk, LoggedPayment, MAX_CHUNK, decode_payment_chunk, encode_chunk, payment_chunk_len,
};
use crate::records::{self, Cursor, KeyedPayment, PendingTx};
use crate::{Result, SCHEMA_VERSION, StoreError, Write};

pub(crate) use credentials::{credential_spends, issued_credentials, revoked_credentials};

/// Key of the schema record (four big-endian bytes).
pub(crate) const SCHEMA_KEY: &[u8] = b"meta/schema";
/// Key of the chain cursor.
pub(crate) const CURSOR_KEY: &[u8] = b"meta/cursor";
/// The address of the key the store belongs to.
pub(crate) const OWNER_KEY: &[u8] = b"meta/owner";
/// Prefix of channel records; the id follows.
pub(crate) const CHANNEL_PREFIX: &[u8] = b"chan/";
/// Prefix of pending-transaction records; the key follows.
pub(crate) const PENDING_TX_PREFIX: &[u8] = b"ptx/";
/// Prefix of keyed payments; the idempotency key's bytes follow.
pub(crate) const PAYMENT_KEY_PREFIX: &[u8] = b"pay/";
/// Prefix of redeemed challenges; the challenge follows.
pub(crate) const REDEEMED_PREFIX: &[u8] = b"rdm/";
/// Prefix of closing marks; the channel id follows.
pub(crate) const CLOSING_PREFIX: &[u8] = b"clos/";

/// Prefix of payment-log chunks; the sequence number of the chunk's first entry follows.
pub(crate) const PAYMENT_LOG_PREFIX: &[u8] = b"plog/";

/// The key of the payment-log chunk whose first entry is `seq`.
pub(crate) fn payment_log_key(seq: u64) -> Vec<u8> {
    [PAYMENT_LOG_PREFIX, &seq.to_be_bytes()].concat()
}

/// The key of channel `id`'s closing mark.
pub(crate) fn closing_key(id: ChannelId) -> Vec<u8> {
    [CLOSING_PREFIX, &id.to_be_bytes()].concat()
}

/// The key a payment with idempotency key `key` is filed under.
pub(crate) fn payment_key(key: &str) -> Vec<u8> {
    [PAYMENT_KEY_PREFIX, key.as_bytes()].concat()
}

/// The key the payment that paid for `challenge` is filed under once redeemed.
pub(crate) fn redeemed_key(challenge: &str) -> Vec<u8> {
    [REDEEMED_PREFIX, challenge.as_bytes()].concat()
}

/// The key of channel `id`.
pub(crate) fn channel_key(id: ChannelId) -> Vec<u8> {
    [CHANNEL_PREFIX, &id.to_be_bytes()].concat()
}

/// The key of pending transaction `key`.
pub(crate) fn pending_tx_key(key: u64) -> Vec<u8> {
    [PENDING_TX_PREFIX, &key.to_be_bytes()].concat()
}

/// `key` as an operator can read it in a message: `chan/42`, `ptx/7`, `meta/cursor`, or the
/// escaped bytes of anything else.
pub(crate) fn describe(key: &[u8]) -> String {
    if let Some(readable) = credentials::describe(key) {
        return readable;
    }
    for prefix in [
        CHANNEL_PREFIX,
        PENDING_TX_PREFIX,
        CLOSING_PREFIX,
        PAYMENT_LOG_PREFIX,
    ] {
        if let Some(id) = key
            .strip_prefix(prefix)
            .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        {
            return format!("{}{}", prefix.escape_ascii(), u64::from_be_bytes(id));
        }
    }
    key.escape_ascii().to_string()
}

/// Implement [`Store`](crate::Store) for a backend that is a [`Kv`]: every method is the shared
/// logic of this module, so the backends encode, order and refuse alike; `close` is the
/// backend's own when given (`close(this) { ... }`), else nothing.
macro_rules! store_on_kv {
    ($backend:ty $(, close($this:ident) $close:block)?) => {
        impl $crate::Store for $backend {
            fn channel(&self, id: farthing_core::ChannelId) -> $crate::Result<Option<farthing_core::Channel>> {
                $crate::kv::channel(self, id)
            }
            fn channels(&self) -> $crate::Result<Vec<farthing_core::Channel>> {
                $crate::kv::channels(self)
            }
            fn cursor(&self) -> $crate::Result<Option<$crate::Cursor>> {
                $crate::kv::cursor(self)
            }
            fn pending_txs(&self) -> $crate::Result<Vec<$crate::PendingTx>> {
                $crate::kv::pending_txs(self)
            }
            fn keyed_payment(&self, key: &str) -> $crate::Result<Option<$crate::KeyedPayment>> {
                $crate::kv::keyed_payment(self, key)
            }
            fn redeemed(&self, challenge: &str) -> $crate::Result<Option<$crate::KeyedPayment>> {
                $crate::kv::redeemed(self, challenge)
            }
            fn owner(&self) -> $crate::Result<Option<alloy_primitives::Address>> {
                $crate::kv::owner(self)
            }
            fn closing_channels(&self) -> $crate::Result<Vec<farthing_core::ChannelId>> {
                $crate::kv::closing_channels(self)
            }
            fn walk_payments(
                &self,
                walk: $crate::LogWalk,
                each: &mut dyn FnMut($crate::LoggedPayment) -> bool,
            ) -> $crate::Result<()> {
                $crate::kv::walk_payments(self, walk, each)
            }
            fn credential_spends(&self, since: u64) -> $crate::Result<$crate::CredentialSpends> {
                $crate::kv::credential_spends(self, since)
            }
            fn revoked_credentials(&self) -> $crate::Result<Vec<([u8; 16], u64)>> {
                $crate::kv::revoked_credentials(self)
            }
            fn issued_credentials(&self) -> $crate::Result<Vec<$crate::IssuedCredential>> {
                $crate::kv::issued_credentials(self)
            }
            fn commit(&self, writes: &[$crate::Write]) -> $crate::Result<()> {
                $crate::kv::commit(self, writes)
            }
            fn location(&self) -> String {
                $crate::kv::Kv::location(self)
            }
            $(
                fn close(&$this) $close
            )?
        }
    };
}

pub(crate) use store_on_kv;

/// One change in a batch.
pub(crate) enum Op {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key` (nothing if absent).
    Delete(Vec<u8>),
    /// Remove every key from the first (included) to the second (excluded).
    DeleteRange(Vec<u8>, Vec<u8>),
}

/// What a scan calls on each entry: key, value.
pub(crate) type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// What a walk calls on each entry: key, value; `false` stops the walk.
pub(crate) type Step<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

/// An ordered byte map that applies a batch atomically and durably.
pub(crate) trait Kv {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Call `each` on every entry whose key starts with `prefix`, in key order, from one
    /// consistent view; stops at the first error.
    fn scan(&self, prefix: &[u8], each: &mut Visit<'_>) -> Result<()>;
    /// Call `each` on the entries whose key starts with `prefix`, from `start` (included)
    /// forward in key order, or backward from the last key at or before `start`, from one
    /// consistent view, until it returns `false` or fails.
    fn walk(&self, prefix: &[u8], start: &[u8], forward: bool, each: &mut Step<'_>) -> Result<()>;
    /// Call `each` on every entry of each range (from its first key, included, to its second,
    /// excluded), range after range, in key order, all from one consistent view; stops at the
    /// first error.
    fn scan_ranges(&self, ranges: &[(Vec<u8>, Vec<u8>)], each: &mut Visit<'_>) -> Result<()>;
    /// Apply `ops` in order, all or none, and return once they are durable.
    fn apply(&self, ops: Vec<Op>) -> Result<()>;
    /// Where the map lives, for an operator.
    fn location(&self) -> String;
}

/// Check the schema record of a store just opened at `location`, then set it to
/// [`SCHEMA_VERSION`] if it is missing (a new store) or older (every older layout is a subset
/// of this one: the data stays, older builds now refuse the store).
pub(crate) fn open_schema(kv: &impl Kv, location: &str) -> Result<()> {
    if schema_is_current(kv, location)? {
        return Ok(());
    }
    kv.apply(vec![Op::Put(
        SCHEMA_KEY.to_vec(),
        SCHEMA_VERSION.to_be_bytes().to_vec(),
    )])
}

/// Whether the store's schema record is this build's; a newer schema or a record Farthing
/// never wrote is refused.
pub(crate) fn schema_is_current(kv: &impl Kv, location: &str) -> Result<bool> {
    let Some(bytes) = kv.get(SCHEMA_KEY)? else {
        return Ok(false);
    };
    let found = parse_schema(&bytes, location)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found == SCHEMA_VERSION)
}

/// The schema version a schema record holds.
pub(crate) fn parse_schema(bytes: &[u8], location: &str) -> Result<u32> {
    <[u8; 4]>::try_from(bytes)
        .map(u32::from_be_bytes)
        .map_err(|_| StoreError::UnknownSchema {
            location: location.to_owned(),
            len: bytes.len(),
        })
}

fn corrupt(key: &[u8], source: DecodeError) -> StoreError {
    StoreError::Corrupt {
        key: describe(key),
        source,
    }
}

/// The id a per-item key carries after `prefix`.
fn key_id(key: &[u8], prefix: &[u8], record: &'static str) -> Result<u64> {
    let rest = key.get(prefix.len()..).unwrap_or_default();
    <[u8; 8]>::try_from(rest)
        .map(u64::from_be_bytes)
        .map_err(|_| {
            corrupt(
                key,
                DecodeError::BadKey {
                    record,
                    len: rest.len(),
                    expected: 8,
                },
            )
        })
}

/// Decode the channel stored under `key`, checking it is filed under its own id.
fn read_channel(key: &[u8], value: &[u8]) -> Result<Channel> {
    let id = key_id(key, CHANNEL_PREFIX, "channel")?;
    let channel = records::decode_channel(value).map_err(|e| corrupt(key, e))?;
    if channel.id != id {
        let e = DecodeError::IdMismatch {
            record: "channel",
            key: id,
            found: channel.id,
        };
        return Err(corrupt(key, e));
    }
    Ok(channel)
}

/// Decode the pending transaction stored under `key`, checking it is filed under its own key.
fn read_pending_tx(key: &[u8], value: &[u8]) -> Result<PendingTx> {
    let id = key_id(key, PENDING_TX_PREFIX, "pending tx")?;
    let tx = records::decode_pending_tx(value).map_err(|e| corrupt(key, e))?;
    if tx.key != id {
        let e = DecodeError::IdMismatch {
            record: "pending tx",
            key: id,
            found: tx.key,
        };
        return Err(corrupt(key, e));
    }
    Ok(tx)
}

pub(crate) fn channel(kv: &impl Kv, id: ChannelId) -> Result<Option<Channel>> {
    let key = channel_key(id);
    kv.get(&key)?
        .map(|value| read_channel(&key, &value))
        .transpose()
}

pub(crate) fn channels(kv: &impl Kv) -> Result<Vec<Channel>> {
    let mut out = Vec::new();
    kv.scan(CHANNEL_PREFIX, &mut |key, value| {
        out.push(read_channel(key, value)?);
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn cursor(kv: &impl Kv) -> Result<Option<Cursor>> {
    kv.get(CURSOR_KEY)?
        .map(|value| records::decode_cursor(&value).map_err(|e| corrupt(CURSOR_KEY, e)))
        .transpose()
}

pub(crate) fn owner(kv: &impl Kv) -> Result<Option<alloy_primitives::Address>> {
    kv.get(OWNER_KEY)?
        .map(|value| records::decode_owner(&value).map_err(|e| corrupt(OWNER_KEY, e)))
        .transpose()
}

pub(crate) fn pending_txs(kv: &impl Kv) -> Result<Vec<PendingTx>> {
    let mut out = Vec::new();
    kv.scan(PENDING_TX_PREFIX, &mut |key, value| {
        out.push(read_pending_tx(key, value)?);
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn keyed_payment(kv: &impl Kv, key: &str) -> Result<Option<KeyedPayment>> {
    let key = payment_key(key);
    kv.get(&key)?
        .map(|value| records::decode_keyed_payment(&value).map_err(|e| corrupt(&key, e)))
        .transpose()
}

pub(crate) fn redeemed(kv: &impl Kv, challenge: &str) -> Result<Option<KeyedPayment>> {
    let key = redeemed_key(challenge);
    kv.get(&key)?
        .map(|value| records::decode_keyed_payment(&value).map_err(|e| corrupt(&key, e)))
        .transpose()
}

pub(crate) fn closing_channels(kv: &impl Kv) -> Result<Vec<ChannelId>> {
    let mut out = Vec::new();
    kv.scan(CLOSING_PREFIX, &mut |key, value| {
        let id = key_id(key, CLOSING_PREFIX, "closing")?;
        let found = records::decode_closing(value).map_err(|e| corrupt(key, e))?;
        if found != id {
            let e = DecodeError::IdMismatch {
                record: "closing",
                key: id,
                found,
            };
            return Err(corrupt(key, e));
        }
        out.push(id);
        Ok(())
    })?;
    Ok(out)
}

/// The entries of the chunk stored under `key`.
fn read_chunk(key: &[u8], value: &[u8]) -> Result<Vec<LoggedPayment>> {
    let first = key_id(key, PAYMENT_LOG_PREFIX, "payment log")?;
    decode_payment_chunk(first, value).map_err(|e| corrupt(key, e))
}

/// The chunk holding `seq` or the last one before it: (its first number, its length).
fn chunk_at(kv: &impl Kv, seq: u64) -> Result<Option<(u64, u64)>> {
    let mut found = None;
    kv.walk(
        PAYMENT_LOG_PREFIX,
        &payment_log_key(seq),
        false,
        &mut |key, value| {
            let first = key_id(key, PAYMENT_LOG_PREFIX, "payment log")?;
            let len = payment_chunk_len(value).map_err(|e| corrupt(key, e))?;
            found = Some((first, len));
            Ok(false)
        },
    )?;
    Ok(found)
}

pub(crate) fn walk_payments(
    kv: &impl Kv,
    walk: LogWalk,
    each: &mut dyn FnMut(LoggedPayment) -> bool,
) -> Result<()> {
    match walk {
        LogWalk::After(u64::MAX) | LogWalk::Before(0) => Ok(()),
        LogWalk::After(after) => {
            // From the chunk holding the next entry, if one does.
            let start = match chunk_at(kv, after + 1)? {
                Some((first, len)) if first + len > after + 1 => first,
                _ => after + 1,
            };
            kv.walk(
                PAYMENT_LOG_PREFIX,
                &payment_log_key(start),
                true,
                &mut |key, value| {
                    for entry in read_chunk(key, value)? {
                        if entry.seq > after && !each(entry) {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                },
            )
        }
        LogWalk::Before(before) => kv.walk(
            PAYMENT_LOG_PREFIX,
            &payment_log_key(before - 1),
            false,
            &mut |key, value| {
                for entry in read_chunk(key, value)?.into_iter().rev() {
                    if entry.seq < before && !each(entry) {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        ),
    }
}

/// Runs of payment-log entries with consecutive numbers, as chunks of at most [`MAX_CHUNK`].
#[derive(Default)]
struct Chunks<'a> {
    run: Vec<&'a LoggedPayment>,
}

impl<'a> Chunks<'a> {
    /// Add `p`; a chunk that `p` does not continue (or that is full) is stored first.
    fn push(&mut self, p: &'a LoggedPayment, ops: &mut Vec<Op>) -> Result<()> {
        let continues = self
            .run
            .last()
            .is_some_and(|last| last.seq.checked_add(1) == Some(p.seq));
        if !continues || self.run.len() == MAX_CHUNK {
            self.flush(ops)?;
        }
        self.run.push(p);
        Ok(())
    }

    /// Store the chunk being built, if any.
    fn flush(&mut self, ops: &mut Vec<Op>) -> Result<()> {
        if let Some(first) = self.run.first() {
            ops.push(Op::Put(
                payment_log_key(first.seq),
                encode_chunk(&self.run)?,
            ));
            self.run.clear();
        }
        Ok(())
    }
}

/// Delete the chunks holding nothing past `through`: a chunk holding later entries too stays
/// whole (retention is by chunk). A damaged chunk at the boundary is cut by key, not read:
/// retention must never fail a commit (the store would be reported failing, and the node would
/// stop signing, for a flaw in its history).
fn prune(kv: &impl Kv, through: u64) -> Op {
    let end = match through.checked_add(1) {
        // Past every chunk key.
        None => b"plog0".to_vec(),
        Some(next) => match chunk_at(kv, next) {
            Ok(Some((first, len))) if first < next && first + len > next => payment_log_key(first),
            _ => payment_log_key(next),
        },
    };
    Op::DeleteRange(payment_log_key(0), end)
}

/// Encode every write first, so a write that cannot be stored refuses the whole batch before
/// anything reaches the backend; then apply them as one batch.
pub(crate) fn commit(kv: &impl Kv, writes: &[Write]) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    // A group commit often carries many versions of one channel (a burst of payments): only
    // the last is stored — the same outcome as applying them in order, with one put instead of
    // hundreds (less encoding, less WAL). Credential spends alike: one put per ledger total and
    // per ledger second.
    let mut newest = std::collections::HashMap::new();
    let mut spends = credentials::NewestSpends::default();
    for (i, write) in writes.iter().enumerate() {
        match write {
            Write::Channel(c) => {
                newest.insert(c.id, i);
            }
            Write::CredentialSpend(spend) => spends.note(i, spend),
            _ => {}
        }
    }
    let mut ops = Vec::with_capacity(writes.len());
    let mut chunks = Chunks::default();
    for (i, write) in writes.iter().enumerate() {
        let op = match write {
            Write::Channel(c) if newest.get(&c.id) != Some(&i) => continue,
            Write::Payment(p) => {
                chunks.push(p, &mut ops)?;
                continue;
            }
            Write::PrunePayments { through } => {
                chunks.flush(&mut ops)?;
                prune(kv, *through)
            }
            Write::CredentialSpend(spend) => {
                spends.put(i, spend, &mut ops);
                continue;
            }
            write => op(write)?,
        };
        ops.push(op);
    }
    chunks.flush(&mut ops)?;
    kv.apply(ops)
}

/// The operation that stores `write` (not a payment-log one).
fn op(write: &Write) -> Result<Op> {
    Ok(match write {
        Write::Channel(c) => Op::Put(channel_key(c.id), records::encode_channel(c)?),
        Write::Cursor(c) => Op::Put(CURSOR_KEY.to_vec(), records::encode_cursor(c)),
        Write::PendingTx(t) => Op::Put(pending_tx_key(t.key), records::encode_pending_tx(t)?),
        Write::RemovePendingTx(key) => Op::Delete(pending_tx_key(*key)),
        Write::Closing(id) => Op::Put(closing_key(*id), records::encode_closing(*id)),
        Write::Owner(owner) => Op::Put(OWNER_KEY.to_vec(), records::encode_owner(owner)),
        Write::PaymentKey(key, payment) => {
            check_key_len("idempotency key (1 byte or more)", key)?;
            Op::Put(payment_key(key), records::encode_keyed_payment(payment))
        }
        Write::Redeemed(challenge, payment) => {
            check_key_len("challenge (1 byte or more)", challenge)?;
            Op::Put(
                redeemed_key(challenge),
                records::encode_keyed_payment(payment),
            )
        }
        Write::PruneCredentialSeconds { before } => credentials::prune_seconds(*before),
        Write::CredentialRevoked { cid, at } => credentials::revoked(*cid, *at),
        Write::CredentialIssued(issued) => credentials::issued(issued)?,
        Write::Payment(_) | Write::PrunePayments { .. } => {
            unreachable!("payment-log writes are stored by chunk")
        }
        Write::CredentialSpend(_) => unreachable!("a spend's puts are made by `commit`"),
    })
}

/// Refuse an empty key or one past [`records::MAX_PAYMENT_KEY_LEN`] bytes.
fn check_key_len(field: &'static str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > records::MAX_PAYMENT_KEY_LEN {
        return Err(StoreError::Unencodable(EncodeError::TooLong {
            record: "keyed payment",
            field,
            len: key.len(),
            max: records::MAX_PAYMENT_KEY_LEN,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_ids_and_read_well() {
        let ids = [0, 1, 255, 256, 1 << 32, u64::MAX - 1, u64::MAX];
        let keys: Vec<_> = ids.iter().map(|&id| channel_key(id)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(describe(&channel_key(42)), "chan/42");
        assert_eq!(describe(&pending_tx_key(7)), "ptx/7");
        assert_eq!(describe(CURSOR_KEY), "meta/cursor");
        assert_eq!(describe(&payment_log_key(9)), "plog/9");
        assert!(payment_log_key(u64::MAX).as_slice() < b"plog0".as_slice());
        assert_eq!(describe(b"chan/\x01"), "chan/\\x01");
    }

    #[test]
    fn retention_cuts_past_a_damaged_chunk_without_failing_the_commit() {
        use crate::{MemStore, Store, Write};
        let store = MemStore::default();
        store.put_raw(&payment_log_key(5), b"not a chunk");
        store.put_raw(&payment_log_key(9), b"not a chunk either");
        store
            .commit(&[Write::PrunePayments { through: 6 }])
            .expect("retention never fails the commit");
        assert_eq!(store.get(&payment_log_key(5)).expect("read"), None);
        assert!(store.get(&payment_log_key(9)).expect("read").is_some());
    }
}
