//! What the node does while its store fails (RELIABILITY D3, durability rule 9).
//!
//! A failed commit sets the store failing (`health.rs`): nothing is signed or acknowledged.
//! This guard then drops every peer link and takes no new one (a `Sync` or `Ack` must never
//! carry state that is not on disk), and probes the store with a real synced write every
//! 500 ms. Once one lands it reloads the channel table from the store — the durable truth,
//! dropping whatever was changed in memory but never made durable — fails the payments that
//! waited on such changes, and resumes. The partners' nodes dial again and the Sync exchange
//! settles what was in flight.
//!
//! A store that another instance took over ([`StoreError::Fenced`], PostgreSQL with a newer
//! leader) never comes back for this one: the guard then ends, which stops the node (the
//! instance steps down; nothing it held in memory was made durable or sent).

use std::sync::Arc;
use std::time::Duration;

use farthing_store::{Store, StoreError, Write};

use crate::chain::watcher::Watcher;
use crate::health::StoreHealth;
use crate::link::Links;
use crate::payments::Payments;
use crate::table::ChannelTable;
use crate::tasks::Shutdown;

/// How often a failed store is tried again.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The store guard component.
pub(crate) struct StoreGuard {
    pub(crate) health: Arc<StoreHealth>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) links: Arc<Links>,
    pub(crate) payments: Arc<Payments>,
    pub(crate) watcher: Arc<Watcher>,
}

impl StoreGuard {
    /// While the store fails: links down, probe; on recovery reload the table and resume.
    pub(crate) async fn run(self, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(PROBE_EVERY) => {}
                () = shutdown.wait() => return,
            }
            if !self.health.is_failing() {
                continue;
            }
            // No Sync or Ack may leave while the table is ahead of the disk.
            self.links.close_all();
            match self.probe().await {
                Ok(()) => self.reload().await,
                Err(Some(StoreError::Fenced { found, holder, .. })) => {
                    tracing::error!(
                        epoch = found,
                        leader = %holder,
                        "another instance took the store over: this one steps down"
                    );
                    return;
                }
                Err(_) => {}
            }
        }
    }

    /// One real synced write (a delete of a key that never exists): `Ok` if it landed, the
    /// store's refusal if it said one.
    async fn probe(&self) -> Result<(), Option<StoreError>> {
        let store = self.store.clone();
        let probe =
            tokio::task::spawn_blocking(move || store.commit(&[Write::RemovePendingTx(u64::MAX)]))
                .await;
        match probe {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Some(e)),
            Err(_) => Err(None),
        }
    }

    /// Replace the channel table with what the store holds, then resume.
    async fn reload(&self) {
        let _turn = self.watcher.turn().await;
        let store = self.store.clone();
        let read = tokio::task::spawn_blocking(move || {
            Ok::<_, farthing_store::StoreError>((
                store.channels()?,
                store.closing_channels()?,
                crate::credentials::ledgers_from_store(&*store, crate::credentials::now_secs())?,
            ))
        });
        let Ok(Ok((channels, frozen, ledgers))) = read.await else {
            return;
        };
        self.table.reload(channels, frozen, ledgers);
        // Whatever was signed or taken in memory but never made durable is gone: payments
        // waiting for it learn so, and keys filed with it are forgotten.
        self.payments.forget_undurable().await;
        self.table.group().resume();
        self.health.recovered();
        tracing::info!("store writable again: channel table reloaded from disk, node resumes");
    }
}
