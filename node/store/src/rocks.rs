//! The RocksDB backend: one database in the node's data directory, one synced write batch
//! per commit.

use std::path::{Path, PathBuf};

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use crate::kv::{self, Kv, Op, SCHEMA_KEY, Step, Visit};
use crate::{Result, StoreError};

/// The schema (key layout) this build writes and reads. Record versions are separate: each
/// record carries its own (see [`records`](crate::records)).
///
/// 2: closing marks (`clos/ID`). A build of schema 1 would not see them and would take
/// payments on a channel whose cooperative close it co-signed, so it must refuse the store.
///
/// 3: credential records (`cspt/`, `cspw/`, `crev/`, `cred/`, see
/// [`credentials`](crate::credentials)) and payment-log chunks of version 2. A build of schema
/// 2 would not see them: it would forget what every credential spent (and let its budgets
/// start over) and which were revoked, so it must refuse the store.
///
/// Opening an older database raises its schema to this one.
pub const SCHEMA_VERSION: u32 = 3;

/// The node's RocksDB database, implementing [`Store`].
///
/// Every commit is one [`WriteBatch`] written with `sync = true`: RocksDB appends it to its
/// write-ahead log and fsyncs the log before returning, and applies it atomically (RocksDB
/// also groups concurrent committers into one log sync). Only one process can open a
/// directory at a time.
pub struct RocksStore {
    /// `None` once [`Store::close`]d.
    db: std::sync::RwLock<Option<DB>>,
    path: PathBuf,
    synced: WriteOptions,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RocksStore {
    /// Open (or create) the database in `path`, checking its schema version: a newer schema
    /// or a schema record Farthing never wrote is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let mut options = Options::default();
        options.create_if_missing(true);
        let db = DB::open(&options, &path).map_err(|source| StoreError::Rocks {
            path: path.clone(),
            source,
        })?;
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        let store = Self {
            db: std::sync::RwLock::new(Some(db)),
            path,
            synced,
        };
        kv::open_schema(&store, &store.path.display().to_string())?;
        Ok(store)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of this database (always [`SCHEMA_VERSION`] once opened).
    pub fn schema_version(&self) -> Result<u32> {
        let bytes = self.get(SCHEMA_KEY)?.unwrap_or_default();
        kv::parse_schema(&bytes, &self.path.display().to_string())
    }

    /// Flush the memtables and compact the whole database (measurements, maintenance): what
    /// is on disk afterwards is SST files only, superseded and deleted records dropped.
    pub fn compact(&self) -> Result<()> {
        self.with_db(|db| {
            db.flush().map_err(|source| self.rocks(source))?;
            db.compact_range::<&[u8], &[u8]>(None, None);
            Ok(())
        })
    }

    /// The bytes of the database's SST files (`rocksdb.total-sst-files-size`; the write-ahead
    /// log is not counted: [`compact`](Self::compact) first to measure what the data takes).
    pub fn sst_bytes(&self) -> Result<u64> {
        self.with_db(|db| {
            db.property_int_value("rocksdb.total-sst-files-size")
                .map(Option::unwrap_or_default)
                .map_err(|source| self.rocks(source))
        })
    }

    /// Write raw `value` under `key`, synced. Crate-private: records go through
    /// [`Store::commit`], so nothing outside this crate writes unversioned bytes (tests here
    /// use it to plant damaged records).
    #[cfg(test)]
    pub(crate) fn put_synced(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.with_db(|db| {
            db.put_opt(key, value, &self.synced)
                .map_err(|source| self.rocks(source))
        })
    }

    /// Run `f` on the open database; after [`Store::close`], refuse.
    fn with_db<T>(&self, f: impl FnOnce(&DB) -> Result<T>) -> Result<T> {
        let guard = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Unavailable {
                reason: format!("the store at {} is closed", self.path.display()),
            }),
        }
    }

    fn rocks(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            path: self.path.clone(),
            source,
        }
    }
}

impl Kv for RocksStore {
    fn location(&self) -> String {
        format!("RocksDB at {}", self.path.display())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with_db(|db| db.get(key).map_err(|source| self.rocks(source)))
    }

    fn scan(&self, prefix: &[u8], each: &mut Visit<'_>) -> Result<()> {
        self.with_db(|db| {
            // An iterator reads from the implicit snapshot taken when it is created.
            for item in db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
                let (key, value) = item.map_err(|source| self.rocks(source))?;
                if !key.starts_with(prefix) {
                    break;
                }
                each(&key, &value)?;
            }
            Ok(())
        })
    }

    fn walk(&self, prefix: &[u8], start: &[u8], forward: bool, each: &mut Step<'_>) -> Result<()> {
        let direction = if forward {
            Direction::Forward
        } else {
            Direction::Reverse
        };
        self.with_db(|db| {
            for item in db.iterator(IteratorMode::From(start, direction)) {
                let (key, value) = item.map_err(|source| self.rocks(source))?;
                if !key.starts_with(prefix) || !each(&key, &value)? {
                    break;
                }
            }
            Ok(())
        })
    }

    fn scan_ranges(&self, ranges: &[(Vec<u8>, Vec<u8>)], each: &mut Visit<'_>) -> Result<()> {
        self.with_db(|db| {
            // One snapshot for every range: iterators on it all read the same state.
            let snapshot = db.snapshot();
            for (from, to) in ranges {
                for item in snapshot.iterator(IteratorMode::From(from, Direction::Forward)) {
                    let (key, value) = item.map_err(|source| self.rocks(source))?;
                    if *key >= **to {
                        break;
                    }
                    each(&key, &value)?;
                }
            }
            Ok(())
        })
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                Op::Put(key, value) => batch.put(key, value),
                Op::Delete(key) => batch.delete(key),
                Op::DeleteRange(from, to) => batch.delete_range(from, to),
            }
        }
        self.with_db(|db| {
            db.write_opt(batch, &self.synced)
                .map_err(|source| self.rocks(source))
        })
    }
}

kv::store_on_kv!(RocksStore, close(self) {
    // Dropping the handle flushes and closes RocksDB.
    self.db
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecodeError;
    use crate::kv::{CURSOR_KEY, channel_key, pending_tx_key};
    use crate::testing::{sample_channel, sample_cursor, sample_pending_tx};
    use crate::{Store, Write};

    #[test]
    fn a_new_store_records_its_schema_and_keeps_synced_writes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path()).unwrap();
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
            store.put_synced(b"k", b"v").unwrap();
        }
        let store = RocksStore::open(dir.path()).unwrap();
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn an_older_schema_is_raised_to_this_one() {
        for older in 1..SCHEMA_VERSION {
            let dir = tempfile::tempdir().unwrap();
            {
                let store = RocksStore::open(dir.path()).unwrap();
                store.put_synced(SCHEMA_KEY, &older.to_be_bytes()).unwrap();
                store.put_synced(b"k", b"v").unwrap();
            }
            let store = RocksStore::open(dir.path()).unwrap();
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION, "{older}");
            assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        }
    }

    #[test]
    fn a_newer_schema_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        RocksStore::open(dir.path())
            .unwrap()
            .put_synced(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        let err = RocksStore::open(dir.path()).expect_err("newer schema must be refused");
        assert!(
            matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1)
        );
        assert!(
            err.to_string()
                .contains("run the Farthing version that wrote it"),
            "{err}"
        );
    }

    #[test]
    fn a_foreign_schema_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        RocksStore::open(dir.path())
            .unwrap()
            .put_synced(SCHEMA_KEY, b"garbage!")
            .unwrap();
        let err = RocksStore::open(dir.path()).expect_err("foreign schema must be refused");
        assert!(
            matches!(err, StoreError::UnknownSchema { len: 8, .. }),
            "{err}"
        );
    }

    #[test]
    fn committed_state_survives_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (sample_channel(1), sample_channel(2));
        let (cursor, tx) = (sample_cursor(90), sample_pending_tx(5, Some(2)));
        {
            let store = RocksStore::open(dir.path()).unwrap();
            store
                .commit(&[
                    Write::Channel(b.clone()),
                    Write::Channel(a.clone()),
                    Write::Cursor(cursor),
                    Write::PendingTx(tx.clone()),
                    Write::PendingTx(sample_pending_tx(6, None)),
                ])
                .unwrap();
            store.commit(&[Write::RemovePendingTx(6)]).unwrap();
        }
        let store = RocksStore::open(dir.path()).unwrap();
        assert_eq!(store.channels().unwrap(), vec![a, b.clone()]);
        assert_eq!(store.channel(2).unwrap(), Some(b));
        assert_eq!(store.cursor().unwrap(), Some(cursor));
        assert_eq!(store.pending_txs().unwrap(), vec![tx]);
    }

    /// A credential's spend, revocation and issue are durable like any record: read back the
    /// same after a close and reopen.
    #[test]
    fn credential_records_survive_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::LedgerId {
            cid: [9; 16],
            kind: 1,
        };
        let issued = crate::IssuedCredential {
            id: [9; 16],
            parent: Some([8; 16]),
            created: 1_796_000_000,
            label: "agent".into(),
            caveats: vec!["scope=pay".into()],
            chain: vec![[1; 16], [9; 16]],
        };
        {
            let store = RocksStore::open(dir.path()).unwrap();
            store
                .commit(&[
                    Write::CredentialSpend(crate::CredentialSpend {
                        ledger,
                        total: 500,
                        second: 1_796_000_001,
                        in_second: 200,
                    }),
                    Write::CredentialRevoked {
                        cid: [8; 16],
                        at: 1_796_000_002,
                    },
                    Write::CredentialIssued(issued.clone()),
                ])
                .unwrap();
            store.close();
        }
        let store = RocksStore::open(dir.path()).unwrap();
        let spends = store.credential_spends(1_796_000_000).unwrap();
        assert_eq!(spends.totals, vec![(ledger, 500)]);
        assert_eq!(spends.seconds, vec![(ledger, 1_796_000_001, 200)]);
        assert_eq!(
            store.revoked_credentials().unwrap(),
            vec![([8; 16], 1_796_000_002)]
        );
        assert_eq!(store.issued_credentials().unwrap(), vec![issued]);
        store.close();
        assert!(matches!(
            store.credential_spends(0),
            Err(StoreError::Unavailable { .. })
        ));
    }

    #[test]
    fn a_record_of_an_unknown_version_is_refused_naming_key_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        store.commit(&[Write::Channel(sample_channel(3))]).unwrap();
        let mut bytes = crate::records::encode_channel(&sample_channel(42)).unwrap();
        bytes[0] = 7;
        store.put_synced(&channel_key(42), &bytes).unwrap();

        for err in [
            store.channel(42).unwrap_err(),
            store.channels().unwrap_err(),
        ] {
            assert!(
                matches!(
                    &err,
                    StoreError::Corrupt { key, source: DecodeError::UnknownVersion { found: 7, .. } }
                        if key == "chan/42"
                ),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("chan/42"), "{message}");
            assert!(message.contains("version 7"), "{message}");
            assert!(
                message.contains("run the Farthing version that wrote it"),
                "{message}"
            );
        }
        // Other records stay readable one by one.
        assert_eq!(store.channel(3).unwrap(), Some(sample_channel(3)));
    }

    #[test]
    fn damaged_or_misfiled_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();

        store.put_synced(CURSOR_KEY, &[1, 0, 0]).unwrap();
        let err = store.cursor().unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { ref key, source: DecodeError::Truncated { .. } } if key == "meta/cursor"),
            "{err:?}"
        );

        // A channel filed under another channel's id.
        let bytes = crate::records::encode_channel(&sample_channel(8)).unwrap();
        store.put_synced(&channel_key(9), &bytes).unwrap();
        let err = store.channel(9).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    source: DecodeError::IdMismatch {
                        key: 9,
                        found: 8,
                        ..
                    },
                    ..
                }
            ),
            "{err:?}"
        );

        // A key under the pending-tx prefix with a short id.
        let bytes = crate::records::encode_pending_tx(&sample_pending_tx(1, None)).unwrap();
        store.put_synced(&pending_tx_key(1)[..6], &bytes).unwrap();
        let err = store.pending_txs().unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    source: DecodeError::BadKey { len: 2, .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
