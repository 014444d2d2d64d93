//! Payment history: the store's payment log (every payment made or received, numbered 1, 2,
//! 3, … in the order its proof became durable, written in the proof's own synced batch) read
//! by cursor, its live stream, and its retention.
//!
//! The group committer numbers the entries and publishes each durable batch of them here, in
//! order ([`History::publisher`]). A [`PaymentFeed`] resumes from any number: it listens to
//! the live stream first, replays the log from the store, then goes on live, skipping what it
//! already delivered. Whenever the live stream does not continue exactly where the feed is (it
//! lagged, or the feed is still catching up), the feed reads the store again — every published
//! entry is already there — so it never skips or repeats an entry.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use farthing_core::ChannelId;
use farthing_store::{GroupCommit, LogWalk, Publish, Store, StoreError, Write};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::tasks::Shutdown;

/// One payment, made or received, once durable: an entry of the payment log.
pub type Payment = farthing_store::LoggedPayment;

/// Most entries one page (or one read of a feed catching up) holds.
pub const MAX_PAGE: usize = 1_000;

/// Most entries a filtered page looks at before it answers (with `more`): a call stays short
/// however rare the channel's entries are.
const SCAN_BUDGET: usize = 100_000;

/// How often the retention task looks at the log's length.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// What a page of the log asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// Entries after this number, oldest first; none: the newest `limit`, oldest first.
    pub after: Option<u64>,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub limit: usize,
    /// Only this channel's.
    pub channel: Option<ChannelId>,
}

/// A page of the payment log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPage {
    /// The entries, in sequence order.
    pub payments: Vec<Payment>,
    /// Where to continue: pass it as `after` (the last entry this page looked at, or the
    /// `after` given when it looked at none; for the newest entries, the log's last number).
    pub next: u64,
    /// More entries past `next` exist already: call again at once.
    pub more: bool,
}

/// Why a feed ended. Each says the last number delivered: subscribe again after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The entries after `last` were pruned (retention) before the feed could deliver them.
    #[error(
        "payment log entries after {last} are no longer kept: the oldest kept is {first} \
         (history.keep_payments says how many are kept); resume from the oldest kept"
    )]
    Pruned {
        /// The last number delivered (0: none).
        last: u64,
        /// The oldest number kept.
        first: u64,
    },
    /// The log could not be read.
    #[error("payment log unreadable after entry {last}: {reason}; resume after {last}")]
    Store {
        /// The last number delivered (0: none).
        last: u64,
        /// Why.
        reason: String,
    },
    /// The node is stopping.
    #[error("the node is stopping; resume after entry {last} once it is back")]
    Closed {
        /// The last number delivered (0: none).
        last: u64,
    },
}

/// The payment log and its live stream.
pub(crate) struct History {
    store: Arc<dyn Store>,
    events: broadcast::Sender<Arc<[Payment]>>,
}

impl History {
    /// The history of the log in `store`.
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            // In durable batches (a group commit's entries), not entries: a burst is one slot.
            // A subscriber that falls behind reads the log instead: a short buffer suffices,
            // and one slow reader cannot hold many batches in memory.
            events: broadcast::channel(64).0,
        }
    }

    /// What the group committer calls with each durable batch of entries.
    pub(crate) fn publisher(&self) -> Publish {
        let events = self.events.clone();
        Box::new(move |entries| {
            // No subscriber: nothing to do (the log has them).
            if events.receiver_count() > 0 {
                let _ = events.send(entries.into());
            }
        })
    }

    /// A page of the log (reads the store: call it on a blocking thread).
    pub(crate) fn page(&self, query: PageQuery) -> Result<PaymentPage, StoreError> {
        page(self.store.as_ref(), query)
    }

    /// A feed of the entries after `after` (none: those made from now on), then live.
    pub(crate) async fn feed(&self, after: Option<u64>) -> Result<PaymentFeed, FeedError> {
        let mut feed = PaymentFeed {
            store: self.store.clone(),
            // Listen first: whatever is published from now on is either here or read back.
            live: self.events.subscribe(),
            last: after.unwrap_or(0),
            from_start: after == Some(0),
            catching_up: after.is_some(),
            backlog: VecDeque::new(),
        };
        if after.is_none() {
            // From the log's end as it is now: anything newer arrives live.
            feed.last = feed.read(|s| s.last_payment_seq(), 0).await?;
        }
        Ok(feed)
    }

    /// Keep the newest `keep` entries (at least 1), pruning older ones through `group`
    /// `every` so often, until `shutdown`.
    pub(crate) async fn retain(
        self: Arc<Self>,
        keep: u64,
        every: Duration,
        group: GroupCommit,
        mut shutdown: Shutdown,
    ) {
        let keep = keep.max(1);
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.wait() => return,
            }
            let store = self.store.clone();
            let bounds = tokio::task::spawn_blocking(move || bounds(store.as_ref())).await;
            let Ok(Ok(Some((first, last)))) = bounds else {
                continue;
            };
            if last - first < keep {
                continue;
            }
            let through = last - keep;
            if let Err(e) = group.commit(vec![Write::PrunePayments { through }]).await {
                tracing::warn!("payment log retention: {e}");
            } else {
                tracing::debug!(through, "payment log pruned");
            }
        }
    }
}

/// The oldest and newest numbers in the log, if any.
fn bounds(store: &dyn Store) -> Result<Option<(u64, u64)>, StoreError> {
    let mut first = None;
    store.walk_payments(LogWalk::After(0), &mut |p| {
        first = Some(p.seq);
        false
    })?;
    Ok(match first {
        Some(first) => Some((first, store.last_payment_seq()?)),
        None => None,
    })
}

fn page(store: &dyn Store, query: PageQuery) -> Result<PaymentPage, StoreError> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    let wanted = |p: &Payment| query.channel.is_none_or(|c| p.channel == c);
    let mut payments = Vec::new();
    let mut scanned = 0;
    let mut more = false;
    match query.after {
        Some(after) => {
            let mut next = after;
            store.walk_payments(LogWalk::After(after), &mut |p| {
                if payments.len() == limit || scanned == SCAN_BUDGET {
                    more = true;
                    return false;
                }
                scanned += 1;
                next = p.seq;
                if wanted(&p) {
                    payments.push(p);
                }
                true
            })?;
            Ok(PaymentPage {
                payments,
                next,
                more,
            })
        }
        None => {
            let mut next = 0;
            store.walk_payments(LogWalk::Before(u64::MAX), &mut |p| {
                next = next.max(p.seq);
                scanned += 1;
                if wanted(&p) {
                    payments.push(p);
                }
                payments.len() < limit && scanned < SCAN_BUDGET
            })?;
            payments.reverse();
            Ok(PaymentPage {
                payments,
                next,
                more: false,
            })
        }
    }
}

/// The payment log from a number on, then live: every entry once, in order, none skipped.
pub struct PaymentFeed {
    store: Arc<dyn Store>,
    live: broadcast::Receiver<Arc<[Payment]>>,
    /// The last number delivered (or where the feed starts).
    last: u64,
    /// Asked from 0: start at the oldest entry kept, whatever its number.
    from_start: bool,
    /// Reading the store until it has nothing past `last`.
    catching_up: bool,
    /// Entries read, not delivered yet.
    backlog: VecDeque<Payment>,
}

impl PaymentFeed {
    /// The next entry: from the log while catching up, then live.
    pub async fn next(&mut self) -> Result<Payment, FeedError> {
        loop {
            if let Some(p) = self.backlog.pop_front() {
                self.last = p.seq;
                return Ok(p);
            }
            let last = self.last;
            if self.catching_up {
                self.catch_up(last).await?;
                continue;
            }
            match self.live.recv().await {
                Ok(batch) => {
                    let mut fresh = batch.iter().filter(|p| p.seq > last).peekable();
                    match fresh.peek() {
                        None => {}
                        Some(p) if p.seq == last + 1 => self.backlog.extend(fresh.cloned()),
                        // Something between `last` and this batch never came live to this
                        // feed: the store has it.
                        Some(_) => self.catching_up = true,
                    }
                }
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => return Err(FeedError::Closed { last }),
            }
        }
    }

    /// The last number delivered (or, before the first, the number the feed starts after).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Read the next entries after `last` from the store; caught up once it has no more.
    async fn catch_up(&mut self, last: u64) -> Result<(), FeedError> {
        let page = self
            .read(
                move |s| {
                    page(
                        s,
                        PageQuery {
                            after: Some(last),
                            limit: MAX_PAGE,
                            channel: None,
                        },
                    )
                },
                last,
            )
            .await?;
        if let Some(first) = page.payments.first()
            && first.seq != last + 1
            && !self.from_start
        {
            return Err(FeedError::Pruned {
                last,
                first: first.seq,
            });
        }
        self.from_start = false;
        self.catching_up = page.more;
        self.backlog.extend(page.payments);
        Ok(())
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
        last: u64,
    ) -> Result<T, FeedError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(FeedError::Store {
                last,
                reason: e.to_string(),
            }),
            Err(e) => Err(FeedError::Store {
                last,
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
