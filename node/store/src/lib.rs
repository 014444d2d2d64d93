//! Farthing's durable store: what the node must still know after a crash — its channels
//! with the latest balance proofs, the chain watcher's cursor, and the transactions it
//! submitted — kept in RocksDB in the node's data directory.
//!
//! - [`Store`]: the contract every backend keeps (read this before calling or implementing it);
//! - [`RocksStore`]: the RocksDB backend the node runs on;
//! - [`PgStore`]: the PostgreSQL backend, for a node whose instances take over from each other
//!   (one transaction per commit, fenced by the leader's epoch);
//! - [`MemStore`]: the in-memory twin for other crates' unit tests, same semantics;
//! - [`records`]: the versioned binary records;
//! - [`paylog`]: the payment log (every payment made or received, numbered, in the proof's batch);
//! - [`credentials`]: agent credentials' ledgers (spend totals and per-second spends),
//!   revocations and issued credentials;
//! - [`testing`]: test support — [`testing::FailingStore`] and sample records;
//! - [`conformance`]: the one test suite every backend must pass.
//!
//! This crate must never:
//!
//! - return from a commit before the whole batch is synced to disk (page cache is not
//!   durable), or make a batch partly visible — the node sends signatures, acknowledgements
//!   and transactions on the strength of that return;
//! - open a database with a newer or foreign schema, or read a record of an unknown version,
//!   or guess at a damaged one: those are errors that name the key and say what to do;
//! - decide anything about channels: it stores what the core decided, nothing more.

pub mod conformance;
pub mod credentials;
pub mod paylog;
pub mod records;
pub mod testing;

mod codec;
mod group;
mod kv;
mod mem;
mod pg;
mod rocks;

use std::path::PathBuf;
use std::sync::Arc;

use farthing_core::{Channel, ChannelId};

pub use codec::{DecodeError, EncodeError};
pub use credentials::{CredentialSpend, CredentialSpends, IssuedCredential, LedgerId};
pub use group::{GroupCommit, GroupStats, MAX_GROUP_WRITES, Publish};
pub use mem::MemStore;
pub use paylog::{LogWalk, LoggedPayment};
pub use pg::{COMMIT_DEADLINE, PgStore};
pub use records::{Cursor, KeyedPayment, PendingTx, TxKind};
pub use rocks::{RocksStore, SCHEMA_VERSION};

/// What a store call returns.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB refused to open, read or write.
    #[error(
        "store at {path}: {source}; check the disk (space, permissions, another node using \
         the same data directory) and restart"
    )]
    Rocks {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The database was written by a newer Farthing.
    #[error(
        "store at {location} has schema version {found}, newer than this build's {supported}: \
         run the Farthing version that wrote it, or restore a backup"
    )]
    NewerSchema {
        /// The database directory, or the PostgreSQL database and schema.
        location: String,
        /// Version found on disk.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// The schema record is not one this code ever wrote.
    #[error(
        "store at {location} has an unreadable schema record ({len} bytes): it was not written \
         by Farthing; point the node at its own data directory or database schema"
    )]
    UnknownSchema {
        /// The database directory, or the PostgreSQL database and schema.
        location: String,
        /// Length of the record found.
        len: usize,
    },
    /// PostgreSQL refused to connect, read or write, or did not answer in time. A commit that
    /// failed this way may still be found whole later (never in part).
    #[error(
        "PostgreSQL store at {target}: {reason}; check that PostgreSQL is up and reachable, and \
         its synchronous standby (every commit waits for it)"
    )]
    Postgres {
        /// Hosts, database and schema (never a password).
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// Another instance of this node took the store over (a newer leader): nothing of the batch
    /// was written, and this instance must stop acting for the node.
    #[error(
        "fenced: `{holder}` holds the store with epoch {found}, this instance has epoch {mine}; \
         nothing of this batch was written and this instance steps down"
    )]
    Fenced {
        /// This instance's epoch.
        mine: u64,
        /// The epoch that holds the store.
        found: u64,
        /// Who holds it (the leader's instance name).
        holder: String,
    },
    /// A stored record cannot be read: unknown version, damaged, or filed under the wrong key.
    #[error("record {key} cannot be read: {source}")]
    Corrupt {
        /// The record's key, readable (`chan/42`, `ptx/7`, `meta/cursor`).
        key: String,
        /// What is wrong with it.
        source: DecodeError,
    },
    /// A write in the batch cannot be encoded; nothing of the batch was written.
    #[error("{0}; nothing of this batch was written")]
    Unencodable(#[from] EncodeError),
    /// The store cannot take writes right now; nothing of the batch was written.
    #[error(
        "store unavailable: {reason}; nothing of this batch was written, freeze what depends \
         on it and retry once the store is back"
    )]
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// One change in a [`Store::commit`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "batches are built once and passed by slice; boxing would add an allocation per write"
)]
pub enum Write {
    /// Store the channel under its id, replacing any earlier version of it.
    Channel(Channel),
    /// Store the chain watcher's cursor, replacing the earlier one.
    Cursor(Cursor),
    /// Store the pending transaction under its key, replacing any earlier one.
    PendingTx(PendingTx),
    /// Remove the pending transaction with this key (nothing if there is none).
    RemovePendingTx(u64),
    /// File a payment under its idempotency key (at most
    /// [`MAX_PAYMENT_KEY_LEN`](records::MAX_PAYMENT_KEY_LEN) bytes).
    PaymentKey(String, KeyedPayment),
    /// Mark the incoming payment that paid for a gateway's challenge `String` (at most
    /// [`MAX_PAYMENT_KEY_LEN`](records::MAX_PAYMENT_KEY_LEN) bytes) as redeemed: it served its
    /// request, and serves no other, across restarts.
    Redeemed(String, KeyedPayment),
    /// Mark the channel with this id as closing cooperatively: the node takes no payment on
    /// it any more (a co-signed close has no expiry), across restarts.
    Closing(ChannelId),
    /// Record the address of the key the store belongs to (written once, at the first start).
    Owner(alloy_primitives::Address),
    /// Append a payment to the payment log under its `seq`, past the log's last entry (the
    /// entries of a batch with consecutive numbers are stored as one chunk). Through a
    /// [`GroupCommit`] the committer numbers and stamps it.
    Payment(LoggedPayment),
    /// Drop the payment-log entries numbered `through` or lower, by chunk: a chunk that also
    /// holds later entries stays whole (retention keeps at least what it is asked to).
    PrunePayments {
        /// The highest sequence number dropped.
        through: u64,
    },
    /// Store a credential ledger's spend: its absolute total, and its absolute amount in the
    /// spend's second, each replacing the one stored before (see [`credentials`]).
    CredentialSpend(CredentialSpend),
    /// Drop every per-second spend record of a second before `before` (every ledger's);
    /// totals stay.
    PruneCredentialSeconds {
        /// The first second kept, Unix seconds.
        before: u64,
    },
    /// Record that the credential with chain id `cid` (and all derived from it) was revoked
    /// at `at`, Unix seconds, replacing an earlier record of it.
    CredentialRevoked {
        /// The revoked credential's chain id.
        cid: [u8; 16],
        /// When, Unix seconds.
        at: u64,
    },
    /// Record a credential the node issued under its id, replacing an earlier record of it
    /// (a label, a caveat or a caveat list past its maximum refuses the whole batch).
    CredentialIssued(IssuedCredential),
}

/// The node's durable state: channels, the chain cursor, pending transactions, the payment
/// log, credential ledgers.
///
/// # Durability and atomicity
///
/// When [`commit`](Store::commit) returns `Ok`, every write of the batch is durable — synced
/// to stable storage, not just handed to the OS — and will be read back after a crash or
/// power loss. A batch is atomic: after a crash, either all of its writes are visible or none
/// are, never a part. Only after `Ok` may the caller let anything that depends on the batch
/// leave the process (a signature, an acknowledgement, a transaction).
///
/// When `commit` returns `Err`, the caller must treat the batch as not durable (send nothing
/// that depends on it), but must not assume it was not written either: after a restart it
/// may be found whole (never partly). Retrying the same batch, or committing a newer state
/// that supersedes it, is always safe. [`StoreError::Unencodable`],
/// [`StoreError::Unavailable`] and [`StoreError::Fenced`] guarantee that nothing was written.
///
/// Speed comes from putting many writes in one batch (group commit: one sync for all), never
/// from skipping a sync.
///
/// # Ordering
///
/// Writes within a batch apply in slice order, so a later write to the same key wins
/// (`[PendingTx(t), RemovePendingTx(t.key)]` leaves no `t`). Commits are linearizable: a
/// read that starts after a commit returned sees it, and concurrent commits apply in some
/// total order, each whole. Each read call observes one state between commits (a
/// [`channels`](Store::channels) listing never shows half of a batch); two separate read
/// calls may see different states.
///
/// # Threads
///
/// Stores are `Send + Sync` and every method takes `&self`: share one behind an `Arc` and
/// call it from any thread. Calls block on disk I/O; from async code, call them on a
/// blocking thread.
///
/// # Errors
///
/// A record this build cannot read is [`StoreError::Corrupt`], naming its key: never skipped,
/// never guessed at.
pub trait Store: Send + Sync {
    /// The channel with this id, if stored.
    fn channel(&self, id: ChannelId) -> Result<Option<Channel>>;

    /// Every stored channel, in ascending id order.
    fn channels(&self) -> Result<Vec<Channel>>;

    /// The chain watcher's cursor, if one was stored.
    fn cursor(&self) -> Result<Option<Cursor>>;

    /// Every pending transaction, in ascending key order.
    fn pending_txs(&self) -> Result<Vec<PendingTx>>;

    /// The payment filed under idempotency key `key`, if any.
    fn keyed_payment(&self, key: &str) -> Result<Option<KeyedPayment>>;

    /// The payment a redeemed challenge was paid with ([`Write::Redeemed`]), if any.
    fn redeemed(&self, challenge: &str) -> Result<Option<KeyedPayment>>;

    /// The channels marked as closing cooperatively ([`Write::Closing`]), ascending.
    fn closing_channels(&self) -> Result<Vec<ChannelId>>;

    /// The address of the key the store belongs to ([`Write::Owner`]), if recorded.
    fn owner(&self) -> Result<Option<alloy_primitives::Address>>;

    /// Walk the payment log as `walk` says, calling `each` on every entry in order until it
    /// returns `false` (one consistent view, like every read call).
    fn walk_payments(
        &self,
        walk: LogWalk,
        each: &mut dyn FnMut(LoggedPayment) -> bool,
    ) -> Result<()>;

    /// The highest sequence number in the payment log (0 if it is empty).
    fn last_payment_seq(&self) -> Result<u64> {
        let mut last = 0;
        self.walk_payments(LogWalk::Before(u64::MAX), &mut |p| {
            last = p.seq;
            false
        })?;
        Ok(last)
    }

    /// Every credential ledger's total, and the per-second spends of second `since` and later
    /// ([`Write::CredentialSpend`]), from one consistent view.
    fn credential_spends(&self, since: u64) -> Result<CredentialSpends>;

    /// The revoked credentials ([`Write::CredentialRevoked`]) and when, ascending by chain id.
    fn revoked_credentials(&self) -> Result<Vec<([u8; 16], u64)>>;

    /// The credentials the node issued ([`Write::CredentialIssued`]), ascending by id.
    fn issued_credentials(&self) -> Result<Vec<IssuedCredential>>;

    /// Apply `writes` as one atomic batch and return once it is durable (see the trait
    /// docs). An empty batch does nothing.
    fn commit(&self, writes: &[Write]) -> Result<()>;

    /// Close the store: every later call is refused with [`StoreError::Unavailable`]. A node
    /// closes its store on shutdown, before the process exits (RocksDB must not be torn down
    /// by the process exit with its files open).
    fn close(&self) {}

    /// Where the state is, for an operator (`farthing info`): RocksDB's directory, or
    /// PostgreSQL's database and schema with the epoch and name this instance holds it under.
    fn location(&self) -> String {
        String::new()
    }
}

macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        impl<S: Store + ?Sized> Store for $ty {
            fn channel(&self, id: ChannelId) -> Result<Option<Channel>> {
                (**self).channel(id)
            }
            fn channels(&self) -> Result<Vec<Channel>> {
                (**self).channels()
            }
            fn cursor(&self) -> Result<Option<Cursor>> {
                (**self).cursor()
            }
            fn pending_txs(&self) -> Result<Vec<PendingTx>> {
                (**self).pending_txs()
            }
            fn keyed_payment(&self, key: &str) -> Result<Option<KeyedPayment>> {
                (**self).keyed_payment(key)
            }
            fn redeemed(&self, challenge: &str) -> Result<Option<KeyedPayment>> {
                (**self).redeemed(challenge)
            }
            fn closing_channels(&self) -> Result<Vec<ChannelId>> {
                (**self).closing_channels()
            }
            fn owner(&self) -> Result<Option<alloy_primitives::Address>> {
                (**self).owner()
            }
            fn walk_payments(
                &self,
                walk: LogWalk,
                each: &mut dyn FnMut(LoggedPayment) -> bool,
            ) -> Result<()> {
                (**self).walk_payments(walk, each)
            }
            fn last_payment_seq(&self) -> Result<u64> {
                (**self).last_payment_seq()
            }
            fn credential_spends(&self, since: u64) -> Result<CredentialSpends> {
                (**self).credential_spends(since)
            }
            fn revoked_credentials(&self) -> Result<Vec<([u8; 16], u64)>> {
                (**self).revoked_credentials()
            }
            fn issued_credentials(&self) -> Result<Vec<IssuedCredential>> {
                (**self).issued_credentials()
            }
            fn commit(&self, writes: &[Write]) -> Result<()> {
                (**self).commit(writes)
            }

            fn close(&self) {
                (**self).close()
            }

            fn location(&self) -> String {
                (**self).location()
            }
        }
    )*};
}

forward_store!(&S, Box<S>, Arc<S>);
