//! The watcher: keeps every channel the node is part of in step with the chain.
//!
//! It follows the `ChannelManager`'s events from the persisted cursor, after the configured
//! confirmations, and commits each batch of channel changes together with the new cursor in
//! one synced write (durability rule 7): a restart resumes exactly where it stopped, and a
//! replayed range changes nothing (events carry absolute values). A chain that drops out is
//! retried with backoff while the node reports itself degraded. When the block under the
//! cursor is no longer the chain's, [`crate::chain::rebuild`] repairs the table (rule 8).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloy::providers::Provider;
use farthing_chain::events::{EventSource, Observed};
use farthing_core::{
    ChainEvent, ChangeKind, Channel, ChannelId, apply, change_kind, format_amount,
};
use farthing_store::{Cursor, Store, StoreError, Write};
use tokio::sync::broadcast;

use crate::chain::Chain;
use crate::table::ChannelTable;
use crate::tasks::Shutdown;

/// Longest a watcher pass may take before the chain counts as not answering.
pub(crate) const PASS_TIMEOUT: Duration = Duration::from_secs(30);

/// The most blocks one pass reads events from.
const BLOCKS_PER_PASS: u64 = 5_000;

/// A change the watcher applied to one of the node's channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelChange {
    /// What happened.
    pub kind: ChangeKind,
    /// The channel after the change.
    pub channel: Channel,
}

/// Why a watcher pass failed (the watcher retries).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Reading the chain failed, or it is not the chain the node followed (retry later, or
    /// point the node at its chain).
    #[error("chain: {0}")]
    Chain(String),
    /// Writing the store failed: the watcher does not advance its cursor (retry once the
    /// store works).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How far a watcher pass got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The newest block whose events are applied.
    pub(crate) synced: u64,
    /// Whether that is the newest confirmed block.
    pub(crate) caught_up: bool,
}

/// What the watcher needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatcherConfig {
    /// Blocks an event needs on top of it.
    pub(crate) confirmations: u64,
    /// How often to ask for new blocks.
    pub(crate) poll: Duration,
    /// More blocks than this behind the head (beyond the confirmations): degraded.
    pub(crate) max_lag: u64,
}

/// The chain as the watcher last saw it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainView {
    /// Newest block whose events are applied.
    pub(crate) synced_block: u64,
    /// Newest block the chain reported.
    pub(crate) chain_head: u64,
    /// Why the chain side is degraded (empty: healthy).
    pub(crate) problems: Vec<String>,
}

/// The watcher component.
pub(crate) struct Watcher {
    pub(crate) chain: Arc<Chain>,
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: WatcherConfig,
    view: Mutex<ChainView>,
    /// One pass at a time (see the lock order in `table.rs`).
    turn: tokio::sync::Mutex<()>,
    changes: broadcast::Sender<ChannelChange>,
    /// A payout to us was deferred (or the node just started): the watchtower checks for
    /// something to claim.
    claim_due: AtomicBool,
    /// The `eth_getLogs` range, halved when the provider refuses one (kept across passes).
    log_range: Arc<farthing_chain::events::LogRange>,
}

impl Watcher {
    /// A watcher folding `chain`'s events into `table`, its cursor in `store`.
    pub(crate) fn new(
        chain: Arc<Chain>,
        table: Arc<ChannelTable>,
        store: Arc<dyn Store>,
        config: WatcherConfig,
    ) -> Self {
        Self {
            chain,
            table,
            store,
            config,
            view: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
            changes: broadcast::channel(1024).0,
            claim_due: AtomicBool::new(true),
            log_range: Arc::default(),
        }
    }

    /// Follow the chain until shutdown: a pass per poll interval (at once while catching up),
    /// backing off while the chain fails.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let base = self.config.poll;
        let mut wait = base;
        loop {
            let pass = tokio::select! {
                pass = tokio::time::timeout(PASS_TIMEOUT, self.sync_once()) => pass,
                () = shutdown.wait() => return,
            };
            let pass = pass.unwrap_or_else(|_| {
                Err(SyncError::Chain(format!(
                    "the chain RPC did not answer within {} s",
                    PASS_TIMEOUT.as_secs()
                )))
            });
            match pass {
                // Behind (catching up after downtime): go on at once.
                Ok(progress) => {
                    wait = if progress.caught_up {
                        base
                    } else {
                        Duration::ZERO
                    }
                }
                Err(e) => {
                    let problem = format!("watcher: {e}");
                    let first = {
                        let mut view = self.lock_view();
                        let first = view.problems.is_empty();
                        view.problems = vec![problem.clone()];
                        first
                    };
                    if first {
                        tracing::warn!("{problem}; node degraded, retrying");
                    }
                    wait = (wait.max(base) * 2).min(Duration::from_secs(10));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => return,
            }
        }
    }

    fn lock_view(&self) -> std::sync::MutexGuard<'_, ChainView> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The chain as last seen.
    pub(crate) fn view(&self) -> ChainView {
        self.lock_view().clone()
    }

    /// Changes to the node's channels as the watcher applies them.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ChannelChange> {
        self.changes.subscribe()
    }

    /// Hold the watcher's turn (no pass runs meanwhile).
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// Whether a payout to us may be claimable (set by a deferral and at start, cleared by
    /// the watchtower's claim, set again when that fails).
    pub(crate) fn claim_due(&self) -> bool {
        self.claim_due.load(Ordering::SeqCst)
    }

    /// Set or clear [`Watcher::claim_due`].
    pub(crate) fn set_claim_due(&self, due: bool) {
        self.claim_due.store(due, Ordering::SeqCst);
    }

    /// Run one pass now; the newest block applied.
    pub(crate) async fn sync(&self) -> Result<u64, SyncError> {
        Ok(self.sync_once().await?.synced)
    }

    /// Run passes until the events of `block` (an operation's receipt) are applied, so the
    /// operation's answer reflects its own transaction.
    pub(crate) async fn sync_to(&self, block: u64) -> Result<(), SyncError> {
        for _ in 0..64 {
            if self.sync_once().await?.synced >= block {
                return Ok(());
            }
        }
        Err(SyncError::Chain(format!(
            "block {block} is not confirmed yet; the watcher will apply it"
        )))
    }

    /// One pass. Passes never overlap: operations that sync after their transaction and the
    /// background watcher take turns, so the cursor never moves back (but for a reorg rebuild,
    /// which sets it to the new branch's confirmed head) and no change is announced twice.
    /// Every pass that succeeds, the background watcher's or an operation's, clears the
    /// chain's problem from the node's health (or replaces it with its lag).
    pub(crate) async fn sync_once(&self) -> Result<Progress, SyncError> {
        let progress = self.pass().await?;
        let limit = self
            .config
            .max_lag
            .saturating_add(self.config.confirmations);
        let recovered = {
            let mut view = self.lock_view();
            let lag = view.chain_head.saturating_sub(view.synced_block);
            let had = !std::mem::take(&mut view.problems).is_empty();
            if lag > limit {
                // Catching up: deadlines in the unread blocks cannot be watched yet.
                view.problems = vec![format!(
                    "the watcher is {lag} blocks behind the chain head (catching up)"
                )];
            }
            had && view.problems.is_empty()
        };
        if recovered {
            tracing::info!("chain reachable again: node healthy");
        }
        Ok(progress)
    }

    pub(crate) fn chain_error(&self, e: &dyn std::fmt::Display) -> SyncError {
        SyncError::Chain(self.chain.redact(&e.to_string()))
    }

    /// A failed RPC call in one line: the URL without its secrets, the deepest cause (a
    /// certificate refused since the start, say) and what to do.
    pub(crate) fn rpc_error(&self, e: &alloy::transports::TransportError) -> SyncError {
        SyncError::Chain(farthing_chain::rpc::describe(&self.chain.rpc_url.0, e))
    }

    async fn pass(&self) -> Result<Progress, SyncError> {
        let _turn = self.turn.lock().await;
        let reader = &self.chain.reader;
        let deployment = &self.chain.deployment;
        let source = EventSource::new(
            reader,
            deployment.channel_manager,
            self.config.confirmations,
        )
        .with_range(self.log_range.clone());
        let head = reader
            .get_block_number()
            .await
            .map_err(|e| self.rpc_error(&e))?;
        let confirmed = source
            .confirmed_head()
            .await
            .map_err(|e| self.chain_error(&e))?;
        let store = self.store.clone();
        let cursor = tokio::task::spawn_blocking(move || store.cursor())
            .await
            .map_err(|e| SyncError::Chain(format!("store task failed: {e}")))??;
        if let Some(cursor) = cursor {
            // The block the cursor stands on must still be the chain's.
            let block = reader
                .get_block_by_number(cursor.block.into())
                .await
                .map_err(|e| self.rpc_error(&e))?;
            match block {
                Some(b) if b.header.hash.0 == cursor.block_hash => {}
                Some(_) => {
                    let confirmed = confirmed.ok_or_else(|| {
                        SyncError::Chain("the chain is shorter than its confirmations".into())
                    })?;
                    return self
                        .rebuild_after_reorg(&source, cursor, confirmed, head)
                        .await;
                }
                // A reorg to a shorter branch (or a chain RPC swapping branches) shows this for
                // a while and heals once the chain grows past the cursor: the block is there
                // then, with another hash, and the rebuild runs. Another chain never heals: the
                // rebuild refuses channels that belong to other parties.
                None => {
                    return Err(SyncError::Chain(format!(
                        "the chain is behind the node's cursor (block {} is missing): a reorg to a shorter branch heals once the chain grows past it; otherwise this is not the chain the node followed",
                        cursor.block
                    )));
                }
            }
        }
        let from = cursor.map_or(deployment.deployment_block, |c| c.block.saturating_add(1));
        let Some(confirmed) = confirmed.filter(|&c| c >= from) else {
            self.synced(head, from.saturating_sub(1));
            return Ok(Progress {
                synced: from.saturating_sub(1),
                caught_up: true,
            });
        };
        let to = confirmed.min(from.saturating_add(BLOCKS_PER_PASS - 1));
        // The hash of the range's last block is read before its logs, and every log must come
        // from the same block, or the pass is retried.
        let (block_hash, block_time) = self.block(to).await?;
        let events = source
            .events(from, to)
            .await
            .map_err(|e| self.chain_error(&e))?;
        if events
            .iter()
            .any(|o| o.block == to && o.block_hash != block_hash)
        {
            return Err(SyncError::Chain(format!(
                "block {to} changed while it was read; retrying"
            )));
        }
        // Applied to the table (the source of truth, shared with payments) and queued with
        // the new cursor while it is locked: writes reach the store in the order the table
        // changed, so a payment's newer record is never overwritten by an older snapshot.
        let mut changes = Vec::new();
        let durable = {
            let mut table = self.table.lock();
            // The changed channels, over the table (folded without copying the whole table).
            let mut changed: BTreeMap<ChannelId, Channel> = BTreeMap::new();
            for observed in &events {
                let base = |id| table.channel(id).cloned();
                if let Some((before, after)) = self.fold(&mut changed, &base, observed) {
                    changes.push(ChannelChange {
                        kind: change_kind(before.as_ref(), &after),
                        channel: after,
                    });
                }
            }
            // A co-signed withdrawal past its expiry can no longer execute (every later block
            // is later still): the amount is spendable again.
            let expiring: Vec<Channel> = table
                .channels()
                .filter(|c| c.withdrawal.is_some() && !changed.contains_key(&c.id))
                .cloned()
                .collect();
            for mut channel in expiring
                .into_iter()
                .chain(std::mem::take(&mut changed).into_values())
            {
                channel.expire_withdrawal(block_time);
                changed.insert(channel.id, channel);
            }
            changed.retain(|id, c| table.channel(*id) != Some(c));
            let cursor = Write::Cursor(Cursor {
                block: to,
                block_hash: block_hash.0,
            });
            table.commit_all(changed.into_values().collect(), vec![cursor])
        };
        durable.await?;
        self.synced(head, to);
        self.announce(changes);
        Ok(Progress {
            synced: to,
            caught_up: to == confirmed,
        })
    }

    /// The hash and timestamp of block `number`.
    pub(crate) async fn block(
        &self,
        number: u64,
    ) -> Result<(alloy::primitives::B256, u64), SyncError> {
        self.chain
            .reader
            .get_block_by_number(number.into())
            .await
            .map_err(|e| self.rpc_error(&e))?
            .map(|b| (b.header.hash, b.header.timestamp))
            .ok_or_else(|| SyncError::Chain(format!("block {number} not found")))
    }

    /// Record how far the node has synced.
    pub(crate) fn synced(&self, head: u64, block: u64) {
        let mut view = self.lock_view();
        view.chain_head = head;
        view.synced_block = block;
    }

    /// Log the changes and tell the subscribers (the watchtower, RPC streams).
    pub(crate) fn announce(&self, changes: Vec<ChannelChange>) {
        let decimals = self.chain.deployment.token_decimals;
        for change in changes {
            let c = &change.channel;
            tracing::info!(
                channel = c.id,
                partner = %c.partner,
                role = ?c.role,
                state = ?c.on_chain.state,
                holdings = %format_amount(c.holdings(), decimals),
                "channel {}", change.kind.as_str()
            );
            let _ = self.changes.send(change);
        }
    }

    /// Fold one observed event into `changed` (channels changed so far, over `base`: the
    /// table, or nothing when a whole copy is being rebuilt): channels of another token are not
    /// the node's business, a payout deferred to us makes a claim due. Returns (before, after)
    /// when the channel changed.
    pub(crate) fn fold(
        &self,
        changed: &mut BTreeMap<ChannelId, Channel>,
        base: &dyn Fn(ChannelId) -> Option<Channel>,
        observed: &Observed,
    ) -> Option<(Option<Channel>, Channel)> {
        match observed.event {
            ChainEvent::PayoutDeferred { owner, .. } if owner == self.chain.us => {
                self.claim_due.store(true, Ordering::SeqCst);
            }
            ChainEvent::Opened { token, .. } if token != self.chain.deployment.token => {
                return None;
            }
            _ => {}
        }
        let id = observed.event.channel_id();
        let before = changed.get(&id).cloned().or_else(|| base(id));
        let after = apply(
            before.clone(),
            &observed.event,
            self.chain.us,
            observed.block,
        )?;
        if before.as_ref() == Some(&after) {
            return None;
        }
        changed.insert(id, after.clone());
        Some((before, after))
    }
}
