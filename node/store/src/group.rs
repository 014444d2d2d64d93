//! Group commit: many writers, one synced write.
//!
//! Writers hand their batch to [`GroupCommit::commit`] and wait. One committer thread takes
//! the first batch in the queue together with every batch that queued up behind it, commits
//! them all as ONE synced [`Store::commit`], then answers every writer. Under load a single
//! fsync covers hundreds of payments across all channels (PROTOCOL.md durability rule 3); under
//! no load a batch is committed at once. A writer's answer comes only after its writes are
//! durable: that is when a payment may be acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::{Store, StoreError, Write};

/// Most writes merged into one synced batch.
pub const MAX_GROUP_WRITES: usize = 8_192;

struct Request {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Counters of the committer (for metrics and the benchmark).
#[derive(Debug)]
pub struct GroupStats {
    /// Synced commits made.
    pub syncs: AtomicU64,
    /// Writer batches they carried.
    pub batches: AtomicU64,
    /// Microseconds after `epoch` at which the commit in progress started (0: none).
    busy_since_us: AtomicU64,
    epoch: std::time::Instant,
}

impl Default for GroupStats {
    fn default() -> Self {
        Self {
            syncs: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            busy_since_us: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }
}

impl GroupStats {
    fn now_us(&self) -> u64 {
        // At least 1: 0 means "no commit in progress".
        (self.epoch.elapsed().as_micros() as u64).max(1)
    }
}

/// The group committer in front of a [`Store`]. Cheap to clone; the committer thread ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Request>,
    stats: Arc<GroupStats>,
    /// Set by a failed commit; until [`GroupCommit::resume`] every request fails (even an
    /// empty one), so no caller takes "the writes queued before mine are durable" for granted
    /// after a write that was lost.
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl GroupCommit {
    /// Start the committer thread for `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        let (queue, requests) = mpsc::channel::<Request>();
        let stats = Arc::new(GroupStats::default());
        let counters = stats.clone();
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failing = failed.clone();
        std::thread::Builder::new()
            .name("farthing-group-commit".into())
            .spawn(move || run(store.as_ref(), &requests, &counters, &failing))
            .map(drop)
            .unwrap_or_else(|e| panic!("cannot start the group-commit thread: {e}"));
        Self {
            queue,
            stats,
            failed,
        }
    }

    /// Make `writes` durable together with whatever else is queued; returns once synced.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.submit(writes).await
    }

    /// Queue `writes` NOW (synchronously: batches reach the store in the order they were
    /// submitted, so a caller that submits while holding its own lock keeps its order) and
    /// return a future that resolves once they are durable.
    pub fn submit(
        &self,
        writes: Vec<Write>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (done, answer) = oneshot::channel();
        let queued = self.queue.send(Request { writes, done });
        async move {
            let stopped = || StoreError::Unavailable {
                reason: "the group-commit thread has stopped".into(),
            };
            queued.map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        }
    }

    /// Accept writes again after a failed commit: the caller has made its in-memory state
    /// match the store again (the node reloads its channel table first).
    pub fn resume(&self) {
        self.failed.store(false, Ordering::SeqCst);
    }

    /// How long the synced commit in progress has been running, if one is (a disk that stops
    /// answering shows here before anything fails).
    pub fn busy_for(&self) -> Option<std::time::Duration> {
        match self.stats.busy_since_us.load(Ordering::Relaxed) {
            0 => None,
            since => Some(std::time::Duration::from_micros(
                self.stats.now_us().saturating_sub(since),
            )),
        }
    }

    /// How many synced commits carried how many writer batches so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.syncs.load(Ordering::Relaxed),
            self.stats.batches.load(Ordering::Relaxed),
        )
    }
}

fn run(
    store: &dyn Store,
    requests: &mpsc::Receiver<Request>,
    stats: &GroupStats,
    failed: &std::sync::atomic::AtomicBool,
) {
    // Blocks for the first request; returns when every sender is gone.
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        let mut count = group[0].writes.len();
        while count < MAX_GROUP_WRITES {
            match requests.try_recv() {
                Ok(next) => {
                    count += next.writes.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let writes: Vec<Write> = group
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.writes))
            .collect();
        let result = if failed.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable {
                reason: "an earlier commit failed; nothing is written until the node resumes"
                    .into(),
            })
        } else {
            stats.busy_since_us.store(stats.now_us(), Ordering::Relaxed);
            let result = store.commit(&writes);
            stats.busy_since_us.store(0, Ordering::Relaxed);
            if result.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            result
        };
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        stats
            .batches
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        for request in group {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Unavailable {
                    reason: e.to_string(),
                }),
            };
            let _ = request.done.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::{FailingStore, sample_channel};
    use crate::{MemStore, RocksStore};

    /// A store whose commits take a while, like a real fsync under load.
    struct Slow(MemStore);

    impl Store for Slow {
        fn channel(&self, id: u64) -> crate::Result<Option<farthing_core::Channel>> {
            self.0.channel(id)
        }
        fn channels(&self) -> crate::Result<Vec<farthing_core::Channel>> {
            self.0.channels()
        }
        fn cursor(&self) -> crate::Result<Option<crate::Cursor>> {
            self.0.cursor()
        }
        fn pending_txs(&self) -> crate::Result<Vec<crate::PendingTx>> {
            self.0.pending_txs()
        }
        fn keyed_payment(&self, key: &str) -> crate::Result<Option<crate::KeyedPayment>> {
            self.0.keyed_payment(key)
        }
        fn closing_channels(&self) -> crate::Result<Vec<u64>> {
            self.0.closing_channels()
        }
        fn owner(&self) -> crate::Result<Option<alloy_primitives::Address>> {
            self.0.owner()
        }
        fn walk_payments(
            &self,
            walk: crate::LogWalk,
            each: &mut dyn FnMut(crate::LoggedPayment) -> bool,
        ) -> crate::Result<()> {
            self.0.walk_payments(walk, each)
        }
        fn commit(&self, writes: &[Write]) -> crate::Result<()> {
            std::thread::sleep(Duration::from_millis(5));
            self.0.commit(writes)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_writers_shares_few_syncs_and_every_write_is_durable() {
        let store = Arc::new(Slow(MemStore::new()));
        let group = GroupCommit::new(store.clone());
        let writers: Vec<_> = (1..=1_000u64)
            .map(|id| {
                let group = group.clone();
                tokio::spawn(
                    async move { group.commit(vec![Write::Channel(sample_channel(id))]).await },
                )
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(
            store.channels().unwrap().len(),
            1_000,
            "every answered write is in the store"
        );
        let (syncs, batches) = group.stats();
        assert_eq!(batches, 1_000);
        assert!(syncs < 100, "1000 writers should share syncs, got {syncs}");
    }

    #[tokio::test]
    async fn a_failing_store_fails_every_writer_until_resumed() {
        let failing = FailingStore::new(MemStore::new());
        let switch = failing.switch();
        let store: Arc<dyn Store> = Arc::new(failing);
        let group = GroupCommit::new(store.clone());
        switch.fail();
        let refused = group
            .commit(vec![Write::Channel(sample_channel(1))])
            .await
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::Unavailable { .. }),
            "{refused}"
        );
        assert!(
            store.channel(1).unwrap().is_none(),
            "nothing written while failing"
        );
        switch.recover();
        // Sticky: even an empty request (a "durable up to here" barrier) fails until resumed.
        assert!(group.commit(Vec::new()).await.is_err());
        assert!(
            group
                .commit(vec![Write::Channel(sample_channel(1))])
                .await
                .is_err()
        );
        group.resume();
        group
            .commit(vec![Write::Channel(sample_channel(1))])
            .await
            .unwrap();
        assert!(store.channel(1).unwrap().is_some());
    }

    #[tokio::test]
    async fn with_rocksdb_the_answer_means_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store: Arc<dyn Store> = Arc::new(RocksStore::open(dir.path()).unwrap());
            let group = GroupCommit::new(store);
            group
                .commit(vec![Write::Channel(sample_channel(7))])
                .await
                .unwrap();
        }
        // The committer thread still holds the database until it notices the queue closed (on a
        // loaded machine that may take a while: 60 s is a deadline against a hang, no goal).
        for _ in 0..6_000 {
            if let Ok(store) = RocksStore::open(dir.path()) {
                assert_eq!(store.channel(7).unwrap().map(|c| c.id), Some(7));
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the database stayed locked after the group committer was dropped");
    }
}
