use farthing_store::MemStore;

use super::*;

fn entry(channel: ChannelId, amount: u128) -> Write {
    Write::Payment(Payment {
        channel,
        amount,
        memo: format!("m{amount}").into_bytes(),
        ..Payment::default()
    })
}

/// A history on a fresh store, and the committer that numbers and publishes into it.
fn history() -> (Arc<History>, GroupCommit) {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let history = Arc::new(History::new(store.clone()));
    let group = GroupCommit::with_log(store, Some(0), history.publisher());
    (history, group)
}

async fn pay(group: &GroupCommit, range: std::ops::RangeInclusive<u128>) {
    let writes = range.map(|a| entry(1 + (a % 2) as u64, a)).collect();
    group.commit(writes).await.expect("durable");
}

async fn take(feed: &mut PaymentFeed, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    for _ in 0..n {
        let p = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("an entry in time")
            .expect("an entry");
        assert_eq!(
            p.amount,
            u128::from(p.seq),
            "entry {} is the payment made {0}th",
            p.seq
        );
        seqs.push(p.seq);
    }
    seqs
}

#[tokio::test]
async fn a_feed_resumes_after_any_number_then_goes_live_without_gap_or_repeat() {
    let (history, group) = history();
    pay(&group, 1..=10).await;
    let mut resumed = history.feed(Some(4)).await.unwrap();
    let mut from_start = history.feed(Some(0)).await.unwrap();
    let mut live = history.feed(None).await.unwrap();
    // Live ones arrive while the resumed feed is still replaying the log.
    assert_eq!(take(&mut resumed, 3).await, vec![5, 6, 7]);
    pay(&group, 11..=12).await;
    pay(&group, 13..=13).await;
    assert_eq!(take(&mut resumed, 6).await, (8..=13).collect::<Vec<_>>());
    assert_eq!(
        take(&mut from_start, 13).await,
        (1..=13).collect::<Vec<_>>()
    );
    assert_eq!(
        take(&mut live, 3).await,
        vec![11, 12, 13],
        "live: from subscription on"
    );
    pay(&group, 14..=14).await;
    for feed in [&mut resumed, &mut from_start, &mut live] {
        assert_eq!(take(feed, 1).await, vec![14]);
        assert_eq!(feed.last(), 14);
    }
}

#[tokio::test]
async fn a_feed_that_lags_behind_the_live_stream_reads_the_log_instead() {
    let (history, group) = history();
    let mut feed = history.feed(None).await.unwrap();
    // Far more durable batches than the live stream holds, none read meanwhile.
    for a in 1..=3_000u128 {
        pay(&group, a..=a).await;
    }
    assert_eq!(
        take(&mut feed, 3_000).await,
        (1..=3_000).collect::<Vec<_>>()
    );
    pay(&group, 3_001..=3_002).await;
    assert_eq!(take(&mut feed, 2).await, vec![3_001, 3_002]);
}

#[tokio::test]
async fn a_feed_whose_next_entries_were_pruned_ends_saying_where_it_was() {
    let (history, group) = history();
    // One commit each: one chunk each, pruned one by one.
    for a in 1..=10 {
        pay(&group, a..=a).await;
    }
    group
        .commit(vec![Write::PrunePayments { through: 6 }])
        .await
        .unwrap();
    let mut feed = history.feed(Some(3)).await.unwrap();
    let err = feed.next().await.unwrap_err();
    assert_eq!(err, FeedError::Pruned { last: 3, first: 7 });
    assert!(err.to_string().contains("after 3"), "{err}");
    // From 0: from the oldest kept.
    let mut feed = history.feed(Some(0)).await.unwrap();
    assert_eq!(take(&mut feed, 4).await, vec![7, 8, 9, 10]);
}

#[tokio::test]
async fn pages_go_by_cursor_and_filter_by_channel() {
    let (history, group) = history();
    pay(&group, 1..=9).await;
    let query = |after, limit, channel| PageQuery {
        after,
        limit,
        channel,
    };
    let seqs = |page: &PaymentPage| page.payments.iter().map(|p| p.seq).collect::<Vec<_>>();

    let first = history.page(query(Some(0), 4, None)).unwrap();
    assert_eq!(
        (seqs(&first), first.next, first.more),
        (vec![1, 2, 3, 4], 4, true)
    );
    let last = history.page(query(Some(8), 4, None)).unwrap();
    assert_eq!((seqs(&last), last.next, last.more), (vec![9], 9, false));
    let past = history.page(query(Some(9), 4, None)).unwrap();
    assert_eq!((seqs(&past), past.next, past.more), (vec![], 9, false));

    // Channel 2 holds the odd amounts: 1, 3, 5, 7, 9.
    let odd = history.page(query(Some(1), 2, Some(2))).unwrap();
    assert_eq!((seqs(&odd), odd.next, odd.more), (vec![3, 5], 5, true));
    let rest = history.page(query(Some(odd.next), 10, Some(2))).unwrap();
    assert_eq!((seqs(&rest), rest.next, rest.more), (vec![7, 9], 9, false));

    // No cursor: the newest, oldest first, and where to go on from.
    let newest = history.page(query(None, 3, Some(1))).unwrap();
    assert_eq!(
        (seqs(&newest), newest.next, newest.more),
        (vec![4, 6, 8], 9, false)
    );
}

#[tokio::test]
async fn retention_keeps_the_newest_entries_and_numbering_goes_on() {
    let (history, group) = history();
    for a in 1..=50 {
        pay(&group, a..=a).await;
    }
    let tasks = crate::tasks::Tasks::default();
    let every = Duration::from_millis(5);
    let pruner = tokio::spawn(history.clone().retain(
        20,
        every,
        group.clone(),
        tasks.shutdown_signal(),
    ));
    let all = PageQuery {
        after: Some(0),
        limit: 100,
        channel: None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while history.page(all).unwrap().payments.len() > 20 {
        assert!(tokio::time::Instant::now() < deadline, "never pruned");
        tokio::time::sleep(every).await;
    }
    let kept = history.page(all).unwrap();
    assert_eq!(
        kept.payments.iter().map(|p| p.seq).collect::<Vec<_>>(),
        (31..=50).collect::<Vec<_>>()
    );
    pay(&group, 51..=51).await;
    assert_eq!(
        history
            .page(PageQuery {
                after: None,
                limit: 1,
                channel: None
            })
            .unwrap()
            .next,
        51
    );
    pruner.abort();
}

/// A store that commits one more batch (through the node's committer, so it is also published
/// live) while a feed reads the log: just before the read, or just after it.
struct Interleaved {
    inner: MemStore,
    group: std::sync::OnceLock<GroupCommit>,
    before_the_read: bool,
    armed: std::sync::atomic::AtomicBool,
}

impl Interleaved {
    fn interleave(&self) {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let group = self.group.get().expect("wired");
            futures::executor::block_on(group.commit(vec![entry(1, 6), entry(2, 7)]))
                .expect("durable");
        }
    }
}

impl Store for Interleaved {
    fn channel(&self, id: ChannelId) -> Result<Option<farthing_core::Channel>, StoreError> {
        self.inner.channel(id)
    }
    fn channels(&self) -> Result<Vec<farthing_core::Channel>, StoreError> {
        self.inner.channels()
    }
    fn cursor(&self) -> Result<Option<farthing_store::Cursor>, StoreError> {
        self.inner.cursor()
    }
    fn pending_txs(&self) -> Result<Vec<farthing_store::PendingTx>, StoreError> {
        self.inner.pending_txs()
    }
    fn keyed_payment(&self, key: &str) -> Result<Option<farthing_store::KeyedPayment>, StoreError> {
        self.inner.keyed_payment(key)
    }
    fn redeemed(&self, c: &str) -> Result<Option<farthing_store::KeyedPayment>, StoreError> {
        self.inner.redeemed(c)
    }
    fn closing_channels(&self) -> Result<Vec<ChannelId>, StoreError> {
        self.inner.closing_channels()
    }
    fn owner(&self) -> Result<Option<alloy::primitives::Address>, StoreError> {
        self.inner.owner()
    }
    fn credential_spends(
        &self,
        since: u64,
    ) -> Result<farthing_store::CredentialSpends, StoreError> {
        self.inner.credential_spends(since)
    }
    fn revoked_credentials(&self) -> Result<Vec<([u8; 16], u64)>, StoreError> {
        self.inner.revoked_credentials()
    }
    fn issued_credentials(&self) -> Result<Vec<farthing_store::IssuedCredential>, StoreError> {
        self.inner.issued_credentials()
    }
    fn walk_payments(
        &self,
        walk: LogWalk,
        each: &mut dyn FnMut(Payment) -> bool,
    ) -> Result<(), StoreError> {
        if self.before_the_read {
            self.interleave();
        }
        let read = self.inner.walk_payments(walk, each);
        if !self.before_the_read {
            self.interleave();
        }
        read
    }
    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.inner.commit(writes)
    }
}

/// The seam between the log and the live stream: a batch made durable while a resumed feed
/// reads the log — just before its read (the read sees it and it comes live too) or just after
/// (only the live stream has it) — is delivered once, in order, with nothing skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_made_durable_while_a_feed_reads_the_log_comes_once() {
    for before_the_read in [true, false] {
        let store = Arc::new(Interleaved {
            inner: MemStore::new(),
            group: std::sync::OnceLock::new(),
            before_the_read,
            armed: false.into(),
        });
        let dyn_store: Arc<dyn Store> = store.clone();
        let history = Arc::new(History::new(dyn_store.clone()));
        let group = GroupCommit::with_log(dyn_store, Some(0), history.publisher());
        assert!(store.group.set(group.clone()).is_ok());
        pay(&group, 1..=5).await;
        let mut feed = history.feed(Some(2)).await.unwrap();
        store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            take(&mut feed, 5).await,
            vec![3, 4, 5, 6, 7],
            "before the read: {before_the_read}"
        );
        pay(&group, 8..=8).await;
        assert_eq!(take(&mut feed, 1).await, vec![8]);
    }
}
