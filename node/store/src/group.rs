//! Group commit: many writers, one synced write.
//!
//! Writers hand their batch to [`GroupCommit::commit`] and wait. One committer thread takes
//! the first batch in the queue together with every batch that queued up behind it, commits
//! them all as ONE synced [`Store::commit`], then answers every writer. Under load a single
//! fsync covers hundreds of payments across all channels (PROTOCOL.md durability rule 3); under
//! no load a batch is committed at once. A writer's answer comes only after its writes are
//! durable: that is when a payment may be acknowledged.
//!
//! The committer is also where the payment log's order is decided: it numbers every
//! [`Write::Payment`] of a synced batch (the next sequence numbers, in queue order) and stamps
//! it with the commit's time, and after the sync hands the entries to the publisher (the
//! node's live stream), in order. A number is used only by a commit that succeeded: a failed
//! one consumes none (the next batch reuses them), so the log and the stream never show a gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::{LoggedPayment, Store, StoreError, Write};

/// What the committer calls after each synced commit carrying payment-log entries: the
/// entries, numbered, in order (on the committer thread: keep it short).
pub type Publish = Box<dyn FnMut(Vec<LoggedPayment>) + Send>;

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
    /// Start the committer thread for `store`; the payment log's numbering continues from the
    /// store's last entry (read when the first entry is committed).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_log(store, None, Box::new(|_| {}))
    }

    /// Start the committer thread for `store`, numbering payment-log entries from `last + 1`
    /// (`None`: read the store's last entry when the first one is committed) and handing every
    /// durable one to `publish`.
    pub fn with_log(store: Arc<dyn Store>, last: Option<u64>, mut publish: Publish) -> Self {
        let (queue, requests) = mpsc::channel::<Request>();
        let stats = Arc::new(GroupStats::default());
        let counters = stats.clone();
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failing = failed.clone();
        std::thread::Builder::new()
            .name("farthing-group-commit".into())
            .spawn(move || {
                let mut log = Log {
                    last,
                    publish: &mut publish,
                };
                run(store.as_ref(), &requests, &counters, &failing, &mut log);
            })
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

/// The payment log's numbering, on the committer thread.
struct Log<'a> {
    /// The last number a successful commit used (`None`: not read from the store yet).
    last: Option<u64>,
    publish: &'a mut Publish,
}

impl Log<'_> {
    /// Number and stamp the entries of `writes`; the last number they use (none: `None`).
    fn number(
        &mut self,
        store: &dyn Store,
        writes: &mut [Write],
    ) -> Result<Option<u64>, StoreError> {
        let mut entries = writes.iter_mut().filter_map(|w| match w {
            Write::Payment(p) => Some(p),
            _ => None,
        });
        let Some(first) = entries.next() else {
            return Ok(None);
        };
        let mut seq = match self.last {
            Some(last) => last,
            None => store.last_payment_seq()?,
        };
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for p in std::iter::once(first).chain(entries) {
            seq += 1;
            p.seq = seq;
            p.at_ms = at_ms;
        }
        Ok(Some(seq))
    }

    /// The commit of `writes`, numbered up to `last`, is durable: publish its entries.
    fn durable(&mut self, writes: Vec<Write>, last: Option<u64>) {
        let Some(last) = last else {
            return;
        };
        self.last = Some(last);
        let mut entries = Vec::with_capacity(writes.len());
        entries.extend(writes.into_iter().filter_map(|w| match w {
            Write::Payment(p) => Some(p),
            _ => None,
        }));
        (self.publish)(entries);
    }
}

fn run(
    store: &dyn Store,
    requests: &mpsc::Receiver<Request>,
    stats: &GroupStats,
    failed: &std::sync::atomic::AtomicBool,
    log: &mut Log<'_>,
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
        let mut writes: Vec<Write> = group
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
            let result = log
                .number(store, &mut writes)
                .and_then(|last| store.commit(&writes).map(|()| last));
            stats.busy_since_us.store(0, Ordering::Relaxed);
            match result {
                Ok(last) => {
                    log.durable(writes, last);
                    Ok(())
                }
                Err(e) => {
                    failed.store(true, Ordering::SeqCst);
                    // A failed synced write may still be found after a restart (its WAL record
                    // can outlive the error): once the node resumes, number from what the
                    // store holds, never from before a batch that may exist.
                    log.last = None;
                    Err(e)
                }
            }
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
        fn redeemed(&self, c: &str) -> crate::Result<Option<crate::KeyedPayment>> {
            self.0.redeemed(c)
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
        fn credential_spends(&self, since: u64) -> crate::Result<crate::CredentialSpends> {
            self.0.credential_spends(since)
        }
        fn revoked_credentials(&self) -> crate::Result<Vec<([u8; 16], u64)>> {
            self.0.revoked_credentials()
        }
        fn issued_credentials(&self) -> crate::Result<Vec<crate::IssuedCredential>> {
            self.0.issued_credentials()
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

    fn unnumbered(channel: u64, amount: u128) -> Write {
        Write::Payment(LoggedPayment {
            channel,
            amount,
            seq: 999,
            ..LoggedPayment::default()
        })
    }

    /// A failed commit may still be found in the store (a synced write whose WAL record
    /// outlived the error): after the node resumes, numbering goes on from what the store
    /// holds, never reusing a number.
    #[tokio::test]
    async fn after_a_failed_commit_numbering_goes_on_from_what_the_store_holds() {
        let failing = Arc::new(FailingStore::new(MemStore::new()));
        let switch = failing.switch();
        let store: Arc<dyn Store> = failing.clone();
        let group = GroupCommit::with_log(store.clone(), None, Box::new(|_| {}));
        group.commit(vec![unnumbered(1, 10)]).await.unwrap();
        switch.fail();
        assert!(group.commit(vec![unnumbered(1, 20)]).await.is_err());
        // It reached the disk after all, numbered 2.
        failing
            .inner()
            .commit(&[Write::Payment(LoggedPayment {
                seq: 2,
                channel: 1,
                amount: 20,
                ..LoggedPayment::default()
            })])
            .unwrap();
        switch.recover();
        group.resume();
        group.commit(vec![unnumbered(1, 30)]).await.unwrap();
        let mut log = Vec::new();
        store
            .walk_payments(crate::LogWalk::After(0), &mut |p| {
                log.push((p.seq, p.amount));
                true
            })
            .unwrap();
        assert_eq!(log, vec![(1, 10), (2, 20), (3, 30)]);
    }

    /// Entries are numbered in queue order from the store's last one, stamped, published once
    /// durable; a failed commit uses no number, so neither the log nor the stream has a gap.
    #[tokio::test]
    async fn payment_entries_are_numbered_in_commit_order_without_gaps() {
        let failing = FailingStore::new(MemStore::new());
        failing
            .commit(&[Write::Payment(LoggedPayment {
                seq: 41,
                ..LoggedPayment::default()
            })])
            .unwrap();
        let switch = failing.switch();
        let store: Arc<dyn Store> = Arc::new(failing);
        let (published, mut stream) = tokio::sync::mpsc::unbounded_channel();
        let group = GroupCommit::with_log(
            store.clone(),
            None,
            Box::new(move |entries| {
                let _ = published.send(entries);
            }),
        );
        let first = group.submit(vec![
            unnumbered(1, 10),
            Write::Closing(1),
            unnumbered(2, 20),
        ]);
        let second = group.submit(vec![unnumbered(1, 30)]);
        first.await.unwrap();
        second.await.unwrap();
        switch.fail();
        assert!(group.commit(vec![unnumbered(1, 40)]).await.is_err());
        switch.recover();
        group.resume();
        group.commit(vec![unnumbered(2, 50)]).await.unwrap();

        let mut log = Vec::new();
        store
            .walk_payments(crate::LogWalk::After(41), &mut |p| {
                log.push((p.seq, p.channel, p.amount));
                true
            })
            .unwrap();
        assert_eq!(
            log,
            vec![(42, 1, 10), (43, 2, 20), (44, 1, 30), (45, 2, 50)]
        );
        let mut seen = Vec::new();
        while let Ok(entries) = stream.try_recv() {
            assert!(entries.iter().all(|p| p.at_ms > 1_700_000_000_000));
            seen.extend(entries.iter().map(|p| (p.seq, p.channel, p.amount)));
        }
        assert_eq!(
            seen, log,
            "published once durable, in order, the failed one never"
        );
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
