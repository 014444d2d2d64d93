//! The in-memory twin of [`RocksStore`](crate::RocksStore), for unit tests of other crates.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::Result;
use crate::kv::{self, Kv, Op, Step, Visit};

/// A [`Store`] in memory, with the same semantics as [`RocksStore`](crate::RocksStore) except
/// that nothing survives the process: records are encoded and keyed exactly as on disk (so
/// an unencodable write is refused here too), one mutex makes every commit atomic and every
/// read consistent.
///
/// "Durable" here means "in this value": to test a restart, keep the store (or a
/// [`snapshot`](MemStore::snapshot) of it) and build the node again on top of it.
#[derive(Debug, Default)]
pub struct MemStore {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An independent copy of the current state: later commits to either do not show in the
    /// other. Useful to restart a node from a stale backup.
    pub fn snapshot(&self) -> Self {
        Self {
            map: Mutex::new(self.lock().clone()),
        }
    }

    /// Write raw bytes under a key, bypassing the records (tests plant damaged records).
    #[cfg(test)]
    pub(crate) fn put_raw(&self, key: &[u8], value: &[u8]) {
        self.lock().insert(key.to_vec(), value.to_vec());
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A commit changes the map only in code that cannot panic, so a poisoned map is whole.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Kv for MemStore {
    fn location(&self) -> String {
        "in memory".into()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], each: &mut Visit<'_>) -> Result<()> {
        let map = self.lock();
        for (key, value) in map.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) {
                break;
            }
            each(key, value)?;
        }
        Ok(())
    }

    fn walk(&self, prefix: &[u8], start: &[u8], forward: bool, each: &mut Step<'_>) -> Result<()> {
        let map = self.lock();
        let entries: Box<dyn Iterator<Item = (&Vec<u8>, &Vec<u8>)>> = if forward {
            Box::new(map.range(start.to_vec()..))
        } else {
            Box::new(map.range(..=start.to_vec()).rev())
        };
        for (key, value) in entries {
            if !key.starts_with(prefix) || !each(key, value)? {
                break;
            }
        }
        Ok(())
    }

    fn scan_ranges(&self, ranges: &[(Vec<u8>, Vec<u8>)], each: &mut Visit<'_>) -> Result<()> {
        let map = self.lock();
        for (from, to) in ranges {
            for (key, value) in map.range::<[u8], _>((
                std::ops::Bound::Included(from.as_slice()),
                std::ops::Bound::Excluded(to.as_slice()),
            )) {
                each(key, value)?;
            }
        }
        Ok(())
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        let mut map = self.lock();
        for op in ops {
            match op {
                Op::Put(key, value) => {
                    map.insert(key, value);
                }
                Op::Delete(key) => {
                    map.remove(&key);
                }
                Op::DeleteRange(from, to) => {
                    let doomed: Vec<Vec<u8>> =
                        map.range(from..to).map(|(k, _)| k.clone()).collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }
}

kv::store_on_kv!(MemStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_channel;
    use crate::{DecodeError, StoreError};
    use crate::{Store, Write};

    #[test]
    fn a_record_of_an_unknown_version_is_refused_here_too() {
        let store = MemStore::new();
        let mut bytes = crate::records::encode_channel(&sample_channel(5)).unwrap();
        bytes[0] = 3;
        store.put_raw(&kv::channel_key(5), &bytes);
        let err = store.channels().unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, source: DecodeError::UnknownVersion { found: 3, .. } } if key == "chan/5"),
            "{err:?}"
        );
    }

    #[test]
    fn a_snapshot_is_independent() {
        let store = MemStore::new();
        store.commit(&[Write::Channel(sample_channel(1))]).unwrap();
        let old = store.snapshot();
        store.commit(&[Write::Channel(sample_channel(2))]).unwrap();
        assert_eq!(old.channels().unwrap(), vec![sample_channel(1)]);
        assert_eq!(store.channels().unwrap().len(), 2);
    }
}
