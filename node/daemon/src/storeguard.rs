//! What the node does when its store fails (RELIABILITY D3).
//!
//! Every commit goes through [`Watched`], which notices a failed commit. The node then stops
//! signing and acknowledging anything: payments answer "store unavailable", links to partners
//! are dropped and no new one is taken (a `Sync` or `Ack` must never carry state that is not on
//! disk), and `farthing_info` reports it degraded. A probe tries a real synced write every
//! 500 ms; once one succeeds the node reloads its channel table from the store — the durable
//! truth, dropping whatever was changed in memory but never made durable — and resumes. The
//! partners' nodes dial again and the Sync exchange settles what was in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use farthing_core::{Channel, ChannelId};
use farthing_store::{Cursor, KeyedPayment, PendingTx, Store, StoreError, Write};

use crate::node::Node;

/// How often a failed store is tried again.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The store's state as the node sees it.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    /// A commit failed and the node has not recovered yet.
    failing: AtomicBool,
    /// The first failure's text.
    problem: Mutex<Option<String>>,
}

impl StoreHealth {
    /// Whether the node must sign and acknowledge nothing.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// The problem, for the health report.
    pub(crate) fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn failed(&self, e: &StoreError) {
        let mut problem = self.problem.lock().unwrap_or_else(PoisonError::into_inner);
        if problem.is_none() {
            let text = format!(
                "store: {e}; the node signs and acknowledges nothing until a write succeeds again"
            );
            tracing::error!("{text}");
            *problem = Some(text);
        }
        self.failing.store(true, Ordering::SeqCst);
    }

    fn recovered(&self) {
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.failing.store(false, Ordering::SeqCst);
    }
}

/// A store that reports failed commits to the node.
pub(crate) struct Watched {
    pub(crate) inner: Arc<dyn Store>,
    pub(crate) health: Arc<StoreHealth>,
}

impl Store for Watched {
    fn channel(&self, id: ChannelId) -> farthing_store::Result<Option<Channel>> {
        self.inner.channel(id)
    }
    fn channels(&self) -> farthing_store::Result<Vec<Channel>> {
        self.inner.channels()
    }
    fn cursor(&self) -> farthing_store::Result<Option<Cursor>> {
        self.inner.cursor()
    }
    fn pending_txs(&self) -> farthing_store::Result<Vec<PendingTx>> {
        self.inner.pending_txs()
    }
    fn keyed_payment(&self, key: &str) -> farthing_store::Result<Option<KeyedPayment>> {
        self.inner.keyed_payment(key)
    }
    fn closing_channels(&self) -> farthing_store::Result<Vec<ChannelId>> {
        self.inner.closing_channels()
    }
    fn commit(&self, writes: &[Write]) -> farthing_store::Result<()> {
        let result = self.inner.commit(writes);
        if let Err(e) = &result
            && !matches!(e, StoreError::Unencodable(_))
        {
            self.health.failed(e);
        }
        result
    }
    fn close(&self) {
        self.inner.close();
    }
}

impl Node {
    /// While the store fails: links down, probe; on recovery reload the table and resume.
    pub(crate) fn spawn_store_guard(&self) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if node.is_stopping() {
                    return;
                }
                if !node.store_health().is_failing() {
                    continue;
                }
                // No Sync or Ack may leave while the table is ahead of the disk.
                node.drop_links();
                if node.probe_store().await {
                    node.reload_channels().await;
                }
            }
        })
    }

    /// One real synced write (a delete of a key that never exists); `true` if it landed.
    async fn probe_store(&self) -> bool {
        let store = self.store().clone();
        let probe =
            tokio::task::spawn_blocking(move || store.commit(&[Write::RemovePendingTx(u64::MAX)]))
                .await;
        matches!(probe, Ok(Ok(())))
    }

    /// Replace the channel table with what the store holds, then resume.
    async fn reload_channels(&self) {
        let _turn = self.sync_turn().await;
        let store = self.store().clone();
        let Ok(Ok(channels)) = tokio::task::spawn_blocking(move || store.channels()).await else {
            return;
        };
        self.replace_channels(channels);
        // Whatever was signed or taken in memory but never made durable is gone: payments
        // waiting for it learn so, and keys filed with it are forgotten.
        self.forget_undurable().await;
        self.group().resume();
        self.store_health().recovered();
        tracing::info!("store writable again: channel table reloaded from disk, node resumes");
    }
}
