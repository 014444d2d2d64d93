//! Farthing's durable store: RocksDB in the node's data directory.
//!
//! Rules this crate keeps (see ARCHITECTURE in the README): a write that a counterparty or the
//! chain could later hold us to is synced to disk before the call returns; every database
//! carries the schema version it was written with, and a database from a newer or unknown
//! schema is refused instead of being misread.
//!
//! The full channel store (records, the store trait, the in-memory twin) grows here; this
//! first piece fixes the on-disk contract: the schema record and synced writes.

use std::path::{Path, PathBuf};

use rocksdb::{DB, Options, WriteOptions};

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Key of the schema record.
const SCHEMA_KEY: &[u8] = b"meta/schema";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB refused to open or to write.
    #[error("store at {path}: {source}")]
    Rocks {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// The database was written by a newer Farthing.
    #[error(
        "store at {path} has schema version {found}, newer than this build's {supported}: \
         run the Farthing version that wrote it, or restore a backup"
    )]
    NewerSchema {
        /// The database directory.
        path: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// The schema record is not one this code ever wrote.
    #[error(
        "store at {path} has an unreadable schema record ({len} bytes): it was not written by Farthing"
    )]
    UnknownSchema {
        /// The database directory.
        path: PathBuf,
        /// Length of the record found.
        len: usize,
    },
}

/// The node's RocksDB database.
pub struct Store {
    db: DB,
    path: PathBuf,
    synced: WriteOptions,
}

impl Store {
    /// Open (or create) the database in `path`, checking its schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let mut options = Options::default();
        options.create_if_missing(true);
        let db = DB::open(&options, &path).map_err(|source| StoreError::Rocks {
            path: path.clone(),
            source,
        })?;
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        let store = Self { db, path, synced };
        match store.get(SCHEMA_KEY)? {
            None => store.put_synced(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?,
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::UnknownSchema {
                        path: store.path.clone(),
                        len: bytes.len(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: store.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
        }
        Ok(store)
    }

    /// Write `value` under `key` and return only once it is synced to disk.
    pub fn put_synced(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_opt(key, value, &self.synced)
            .map_err(|source| self.rocks(source))
    }

    /// Read the value under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(|source| self.rocks(source))
    }

    /// The schema version of this database (always [`SCHEMA_VERSION`] once opened).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let bytes = self.get(SCHEMA_KEY)?.unwrap_or_default();
        <[u8; 4]>::try_from(bytes.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| StoreError::UnknownSchema {
                path: self.path.clone(),
                len: bytes.len(),
            })
    }

    fn rocks(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_records_its_schema_and_keeps_synced_writes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
            store.put_synced(b"k", b"v").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_newer_schema_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path())
            .unwrap()
            .put_synced(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("newer schema must be refused");
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
        Store::open(dir.path())
            .unwrap()
            .put_synced(SCHEMA_KEY, b"garbage!")
            .unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("foreign schema must be refused");
        assert!(
            matches!(err, StoreError::UnknownSchema { len: 8, .. }),
            "{err}"
        );
    }
}
