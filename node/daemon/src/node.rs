//! The running node: its key, store, chain client and watcher, and its health.
//!
//! [`Node::start`] loads the key, opens the store, checks the chain against the deployment file
//! (a wrong or unreachable chain stops the start with one line), then runs the watcher until
//! [`Node::shutdown`]. The watcher follows the `ChannelManager`'s events from the persisted
//! cursor, after the configured confirmations, and commits each batch of channel changes
//! together with the new cursor in one synced write: a restart resumes exactly where it
//! stopped, and a replayed range changes nothing (events carry absolute values). A chain that
//! drops out later is retried with backoff while the node reports itself degraded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use farthing_chain::events::EventSource;
use farthing_chain::{ChainClient, Deployment, DeploymentError, redact_url};
use farthing_core::{ChainEvent, ChainState, Channel, ChannelId, apply, format_amount};
use farthing_store::{Cursor, GroupCommit, RocksStore, Store, StoreError, Write};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::journal::{StoreJournal, sent_tx};
use crate::keys::{KeyError, load_key};

/// Why the node cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deployment file or the chain behind the RPC URL is not usable.
    #[error(transparent)]
    Chain(#[from] DeploymentError),
    /// The chain id in the config and the deployment file disagree.
    #[error("config says chain {config}, the deployment file says {deployment}: fix one of them")]
    ChainIdMismatch {
        /// `chain.chain_id`.
        config: u64,
        /// The deployment file's.
        deployment: u64,
    },
    /// The RPC URL does not parse.
    #[error("chain.rpc_url {0:?} is not a URL")]
    RpcUrl(String),
    /// The data directory cannot be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A change the watcher applied to one of the node's channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelChange {
    /// What happened, in a word: `opened`, `deposit`, `withdrawal`, `closed`, `proof`,
    /// `settled`.
    pub kind: &'static str,
    /// The channel after the change.
    pub channel: Channel,
}

/// The node's health, as the RPC reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Newest block whose events are applied.
    pub synced_block: u64,
    /// Newest block the chain reported.
    pub chain_head: u64,
    /// Why the node is degraded (empty when healthy).
    pub problems: Vec<String>,
}

struct Shared {
    config: Config,
    /// Recent payments and their stream.
    history: crate::history::History,
    /// Counters for the Prometheus endpoint.
    metrics: crate::metrics::Metrics,
    /// Channels a cooperative close was signed for: no payments either way any more.
    frozen: Mutex<std::collections::HashSet<ChannelId>>,
    /// Channels on which the partner or the chain knows a newer proof of ours than this node
    /// does (its data is older than what it signed): why, per channel.
    stale: Mutex<BTreeMap<ChannelId, String>>,
    /// Authenticated links to partner nodes.
    links: crate::link::Links,
    outboxes: crate::outbox::Outboxes,
    /// The built-in watchtower's state.
    watchtower: crate::watchtower::Watchtower,
    /// A payout to us was deferred (or the node just started): check for something to claim.
    claim_due: std::sync::atomic::AtomicBool,
    /// Whether the store's commits are failing.
    store_health: Arc<crate::storeguard::StoreHealth>,
    /// Idempotency keys signed but not yet durable (the store answers for the others).
    keys: tokio::sync::Mutex<std::collections::HashMap<String, farthing_store::KeyedPayment>>,
    /// The `ChannelManager`'s EIP-712 domain (computed once).
    domain: alloy::sol_types::Eip712Domain,
    /// Balance-proof digests with the domain separator computed once.
    digester: farthing_chain::fast::ProofDigester,
    /// The node's key for libsecp256k1 (the payment hot path).
    fast_signer: farthing_chain::fast::FastSigner,
    /// Every channel of the node, as last made durable or being made durable: the one place
    /// both the watcher and payments change them (under this lock, queuing the write before
    /// letting go, so the store sees changes in order).
    channels: Mutex<BTreeMap<ChannelId, Channel>>,
    /// The store's group committer: many changes, one synced write.
    group: GroupCommit,
    /// One watcher pass at a time.
    sync_lock: tokio::sync::Mutex<()>,
    /// (the configured RPC URL, its form without secrets) for error texts.
    rpc_url: (String, String),
    token_symbol: String,
    deployment: Deployment,
    us: Address,
    store: Arc<dyn Store>,
    reader: DynProvider,
    client: Arc<ChainClient>,
    health: Mutex<Health>,
    /// Set if the watcher task ever dies: no later pass clears it (only a restart does).
    watcher_stopped: std::sync::OnceLock<String>,
    changes: broadcast::Sender<ChannelChange>,
}

/// A running node. Cheap to clone; every clone drives the same node.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
    key: Arc<PrivateKeySigner>,
    stop: watch::Sender<bool>,
    watcher: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// The watchtower and the store guard.
    background: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Shared {
    fn redact(&self, text: String) -> String {
        let (full, safe) = &self.rpc_url;
        text.replace(full.as_str(), safe)
            .replace(full.trim_end_matches('/'), safe)
    }
}

impl Node {
    /// Start the node: key, store, chain check, watcher.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let store = Arc::new(RocksStore::open(config.data_dir.join("db"))?);
        Self::start_with_store(config, store).await
    }

    /// Start the node on `store` instead of the RocksDB in its data directory (tests wrap the
    /// store to make it fail).
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        let key = load_key(&config.key)?;
        let deployment = Deployment::load(&config.chain.deployment)?;
        if deployment.chain_id != config.chain.chain_id {
            return Err(StartError::ChainIdMismatch {
                config: config.chain.chain_id,
                deployment: deployment.chain_id,
            });
        }
        let url: alloy::transports::http::reqwest::Url = config
            .chain
            .rpc_url
            .parse()
            .map_err(|_| StartError::RpcUrl(config.chain.rpc_url.clone()))?;
        let reader = ProviderBuilder::new().connect_http(url.clone()).erased();
        let check = deployment.check(&reader).await?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let store_health = Arc::new(crate::storeguard::StoreHealth::default());
        let store: Arc<dyn Store> = Arc::new(crate::storeguard::Watched {
            inner: store,
            health: store_health.clone(),
        });
        let client = Arc::new(
            ChainClient::new(
                url,
                key.clone(),
                deployment.chain_id,
                deployment.channel_manager,
                config.chain.confirmations,
            )
            .with_journal(Arc::new(StoreJournal(store.clone()))),
        );
        // Transactions sent before a crash or a stop whose receipt the node never saw: send them
        // again (a no-op when they are already mined) and wait for them in the background.
        let unfinished = store.pending_txs()?;
        if !unfinished.is_empty() {
            tracing::info!(
                count = unfinished.len(),
                "sending again the transactions sent before the restart"
            );
        }
        // Resent before the node serves anything, so no new transaction takes their nonces;
        // only the receipt waits run in the background.
        for pending in unfinished {
            let tx = sent_tx(&pending);
            match client.resend(&tx).await {
                Ok(true) => {
                    let client = client.clone();
                    tokio::spawn(async move {
                        match client.finish(&tx).await {
                            Ok(outcome) => {
                                tracing::info!(tx = %outcome.tx_hash, what = tx.what, "transaction mined")
                            }
                            Err(e) => tracing::warn!(tx = %tx.tx_hash, "{e}"),
                        }
                    });
                }
                Ok(false) => {
                    tracing::info!(tx = %tx.tx_hash, what = tx.what, "journaled transaction already settled")
                }
                Err(e) => {
                    tracing::warn!(tx = %tx.tx_hash, "{e}; it stays journaled for the next start")
                }
            }
        }
        tracing::info!(
            address = %key.address(),
            chain = check.chain_id,
            block = check.block_number,
            channel_manager = %deployment.channel_manager,
            "node started"
        );
        let (changes, _) = broadcast::channel(1024);
        let channels = store.channels()?.into_iter().map(|c| (c.id, c)).collect();
        // Channels whose cooperative close this node signed (or asked for) stay frozen.
        let frozen = store.closing_channels()?.into_iter().collect();
        let shared = Arc::new(Shared {
            history: crate::history::History::default(),
            metrics: crate::metrics::Metrics::default(),
            frozen: Mutex::new(frozen),
            stale: Mutex::default(),
            keys: tokio::sync::Mutex::default(),
            links: crate::link::Links::default(),
            outboxes: crate::outbox::Outboxes::default(),
            watchtower: crate::watchtower::Watchtower::default(),
            claim_due: std::sync::atomic::AtomicBool::new(true),
            store_health,
            digester: farthing_chain::fast::ProofDigester::new(
                &farthing_chain::messages::channel_domain(
                    deployment.chain_id,
                    deployment.channel_manager,
                ),
            ),
            fast_signer: farthing_chain::fast::FastSigner::new(&key),
            domain: farthing_chain::messages::channel_domain(
                deployment.chain_id,
                deployment.channel_manager,
            ),
            channels: Mutex::new(channels),
            group: GroupCommit::new(store.clone()),
            sync_lock: tokio::sync::Mutex::new(()),
            rpc_url: (
                config.chain.rpc_url.clone(),
                redact_url(&config.chain.rpc_url),
            ),
            us: key.address(),
            token_symbol: check.token_symbol.clone(),
            config,
            deployment,
            store,
            reader,
            client,
            health: Mutex::new(Health::default()),
            watcher_stopped: std::sync::OnceLock::new(),
            changes,
        });
        let (stop, stopped) = watch::channel(false);
        let watcher = tokio::spawn(supervise_watcher(shared.clone(), stopped));
        let node = Self {
            shared,
            key: Arc::new(key),
            stop,
            watcher: Arc::new(Mutex::new(Some(watcher))),
            background: Arc::default(),
        };
        let tasks = [node.spawn_watchtower(), node.spawn_store_guard()];
        node.background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks);
        Ok(node)
    }

    /// Stop the watcher and wait for it; the store is closed when the last clone is dropped.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        for task in self
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        self.shared.links.close_all();
        // Writes queued before this point are answered first (the committer takes them in
        // order); then the database closes, whatever tasks still hold the node.
        let _ = self.shared.group.submit(Vec::new()).await;
        self.shared.store.close();
        tracing::info!("node stopped");
    }

    /// Whether [`Node::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        self.shared.us
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The token's symbol, as the chain reported it at start-up.
    pub fn token_symbol(&self) -> &str {
        &self.shared.token_symbol
    }

    /// The deployment it runs against.
    pub fn deployment(&self) -> &Deployment {
        &self.shared.deployment
    }

    /// One of the node's channels, as it stands (including changes being made durable).
    pub fn channel_record(&self, id: ChannelId) -> Option<Channel> {
        self.shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// All the node's channels, by id.
    pub fn channel_records(&self) -> Vec<Channel> {
        self.shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Change one channel under the table's lock: `change` returns the new record and a value;
    /// the record is queued for a synced write before the lock is released, and the returned
    /// future resolves (to the value) once it is durable.
    pub(crate) fn update_channel<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        id: ChannelId,
        change: impl FnOnce(&Channel) -> Result<(Channel, T), E>,
    ) -> Result<impl Future<Output = Result<T, E>> + Send + 'static, E> {
        let (durable, value) = self.with_channel::<_, E>(id, |channel, group| {
            let (next, value) = change(channel)?;
            let durable: crate::payments::Durable =
                Box::pin(group.submit(vec![Write::Channel(next.clone())]));
            Ok((next, (durable, value)))
        })?;
        Ok(async move {
            durable.await.map_err(E::from)?;
            Ok(value)
        })
    }

    /// The partner of channel `id` (without copying the channel's record).
    pub fn partner_of(&self, id: ChannelId) -> Option<Address> {
        self.shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .map(|c| c.partner)
    }

    /// Change one channel under the table's lock; `change` gets the channel and the group
    /// committer, must queue its own synced write, and returns the new record and a value.
    pub(crate) fn with_channel<T, E: From<StoreError>>(
        &self,
        id: ChannelId,
        change: impl FnOnce(&Channel, &GroupCommit) -> Result<(Channel, T), E>,
    ) -> Result<T, E> {
        let mut table = self
            .shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = table.get(&id).ok_or_else(|| {
            E::from(StoreError::Unavailable {
                reason: format!("no channel {id}"),
            })
        })?;
        let (next, value) = change(current, &self.shared.group)?;
        table.insert(id, next);
        Ok(value)
    }

    /// Stop all payments on channel `id`, for good: a cooperative close of it is being signed
    /// (a co-signed close has no expiry, so a later payment could be undone by it). At once in
    /// memory; the returned write makes it durable, and no close signature may leave before it
    /// is (across a restart the channel stays frozen).
    pub(crate) fn freeze(&self, id: ChannelId) -> crate::payments::Durable {
        self.shared
            .frozen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
        Box::pin(self.shared.group.submit(vec![Write::Closing(id)]))
    }

    /// Freeze channel `id` (see [`Node::freeze`]) if `check` accepts its current record, both
    /// under the channel table's lock: no payment is signed or taken between the check and the
    /// freeze (the signer and the receiver look at the frozen set under the same lock).
    /// `None`: no such channel.
    pub(crate) fn freeze_if<T, E>(
        &self,
        id: ChannelId,
        check: impl FnOnce(&Channel) -> Result<T, E>,
    ) -> Option<Result<(T, crate::payments::Durable), E>> {
        let table = self
            .shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let checked = check(table.get(&id)?);
        Some(checked.map(|value| (value, self.freeze(id))))
    }

    /// The partner or the chain holds our proof `seen` of channel `id`, newer than the latest
    /// this node knows: its data is stale (restored from an old copy?). The channel then signs
    /// nothing and refuses to close until the operator acts (a nonce signed again with other
    /// contents would let the partner pick the proof that pays it more).
    pub(crate) fn check_not_behind(&self, id: ChannelId, seen: u64, by: &str) {
        let ours = self
            .channel_record(id)
            .and_then(|c| c.ours.map(|p| p.nonce))
            .unwrap_or(0);
        if seen <= ours {
            return;
        }
        let reason = format!(
            "channel {id}: {by} holds our proof nonce {seen} but this node's latest is {ours}: \
             its data is older than what it signed (restored from an old backup?); it signs \
             nothing and will not close this channel with stale data: restore the latest data \
             directory, or close from the node that holds it"
        );
        let mut stale = self
            .shared
            .stale
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if stale.get(&id) != Some(&reason) {
            tracing::error!("{reason}");
            stale.insert(id, reason);
        }
    }

    /// Why channel `id` is stale, if it is (see [`Node::check_not_behind`]).
    pub fn stale_reason(&self, id: ChannelId) -> Option<String> {
        self.shared
            .stale
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Why each stale channel is stale.
    pub(crate) fn stale_reasons(&self) -> Vec<String> {
        self.shared
            .stale
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Whether channel `id` is frozen.
    pub fn is_frozen(&self, id: ChannelId) -> bool {
        self.shared
            .frozen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&id)
    }

    /// (synced commits, write batches they carried) since the node started.
    pub fn store_stats(&self) -> (u64, u64) {
        self.shared.group.stats()
    }

    /// The store's group committer.
    pub(crate) fn group(&self) -> &GroupCommit {
        &self.shared.group
    }

    /// The most recent payments of channel `id` (at most `limit`), oldest first.
    pub fn recent_payments(&self, id: ChannelId, limit: usize) -> Vec<crate::history::Payment> {
        self.shared.history.recent(id, limit)
    }

    /// Every payment made or received from now on, once durable.
    pub fn subscribe_payments(&self) -> broadcast::Receiver<crate::history::Payment> {
        self.shared.history.subscribe()
    }

    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.shared.metrics
    }

    pub(crate) fn history(&self) -> &crate::history::History {
        &self.shared.history
    }

    pub(crate) fn keys(
        &self,
    ) -> &tokio::sync::Mutex<std::collections::HashMap<String, farthing_store::KeyedPayment>> {
        &self.shared.keys
    }

    pub(crate) fn watchtower(&self) -> &crate::watchtower::Watchtower {
        &self.shared.watchtower
    }

    /// Whether a deferred payout may be waiting to be claimed.
    pub(crate) fn claim_due(&self) -> bool {
        self.shared
            .claim_due
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn set_claim_due(&self, due: bool) {
        self.shared
            .claim_due
            .store(due, std::sync::atomic::Ordering::SeqCst);
    }

    /// The watchtower's current warnings (a stale close near its deadline, low gas) and the
    /// channels whose data is older than the partner's or the chain's.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.shared.watchtower.warnings();
        warnings.extend(self.stale_reasons());
        warnings
    }

    pub(crate) fn outboxes(&self) -> &crate::outbox::Outboxes {
        &self.shared.outboxes
    }

    pub(crate) fn links(&self) -> &crate::link::Links {
        &self.shared.links
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The chain client (sends as the node's key).
    pub fn client(&self) -> &Arc<ChainClient> {
        &self.shared.client
    }

    /// A provider for reads.
    pub fn reader(&self) -> &DynProvider {
        &self.shared.reader
    }

    /// The contract's EIP-712 domain.
    pub(crate) fn domain(&self) -> &alloy::sol_types::Eip712Domain {
        &self.shared.domain
    }

    pub(crate) fn digester(&self) -> &farthing_chain::fast::ProofDigester {
        &self.shared.digester
    }

    pub(crate) fn fast_signer(&self) -> &farthing_chain::fast::FastSigner {
        &self.shared.fast_signer
    }

    /// The node's key, for signing the protocol's own messages (never arbitrary data).
    pub(crate) fn key(&self) -> &PrivateKeySigner {
        &self.key
    }

    /// Current health.
    pub fn health(&self) -> Health {
        let mut health = self
            .shared
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        health.problems.extend(self.shared.store_health.problem());
        if let Some(busy) = self.shared.group.busy_for()
            && busy >= STORE_STALL
        {
            health.problems.push(format!(
                "store: a synced write has not finished for {} s (is the disk stalled?); nothing new is acknowledged until it does",
                busy.as_secs()
            ));
        }
        health
            .problems
            .extend(self.shared.watcher_stopped.get().cloned());
        health
    }

    pub(crate) fn store_health(&self) -> &crate::storeguard::StoreHealth {
        &self.shared.store_health
    }

    /// Hold the watcher's turn (no pass runs meanwhile).
    pub(crate) async fn sync_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.shared.sync_lock.lock().await
    }

    /// Replace the in-memory channel table (with what the store holds).
    pub(crate) fn replace_channels(&self, channels: Vec<Channel>) {
        *self
            .shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            channels.into_iter().map(|c| (c.id, c)).collect();
    }

    /// Changes to the node's channels as the watcher applies them.
    pub fn subscribe(&self) -> broadcast::Receiver<ChannelChange> {
        self.shared.changes.subscribe()
    }

    /// Run one watcher pass now (tests and RPC calls that just sent a transaction use it to see
    /// its effect without waiting for the next poll).
    pub async fn sync(&self) -> Result<u64, SyncError> {
        Ok(sync_once(&self.shared).await?.synced)
    }

    /// Run watcher passes until the node has applied the events of `block` (an operation's
    /// receipt), so its answer reflects its own transaction.
    pub async fn sync_to(&self, block: u64) -> Result<(), SyncError> {
        for _ in 0..64 {
            if sync_once(&self.shared).await?.synced >= block {
                return Ok(());
            }
        }
        Err(SyncError::Chain(format!(
            "block {block} is not confirmed yet; the watcher will apply it"
        )))
    }
}

/// A synced write running this long makes the node report its store as stalled.
const STORE_STALL: Duration = Duration::from_secs(2);

/// Why a watcher pass failed (the watcher retries).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Reading the chain failed.
    #[error("chain: {0}")]
    Chain(String),
    /// Writing the store failed: the watcher does not advance its cursor.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest a watcher pass may take before the chain counts as not answering.
const PASS_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the watcher and notices if it ever dies: a node without its watcher must not report
/// itself healthy.
async fn supervise_watcher(shared: Arc<Shared>, stopped: watch::Receiver<bool>) {
    let result = tokio::spawn(watch_chain(shared.clone(), stopped)).await;
    if let Err(e) = result {
        let problem = format!("the chain watcher stopped ({e}); restart the node");
        tracing::error!("{problem}");
        // Not in `health.problems`: a later pass (an operation's) must not clear it.
        let _ = shared.watcher_stopped.set(problem);
    }
}

async fn watch_chain(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let base = Duration::from_millis(shared.config.chain.poll_interval_ms);
    let mut wait = base;
    loop {
        let pass = tokio::select! {
            pass = tokio::time::timeout(PASS_TIMEOUT, sync_once(&shared)) => pass,
            _ = stopped.changed() => return,
        };
        let pass = pass.unwrap_or_else(|_| {
            Err(SyncError::Chain(format!(
                "the chain RPC did not answer within {} s",
                PASS_TIMEOUT.as_secs()
            )))
        });
        match pass {
            Ok(progress) => {
                // Behind (catching up after downtime): go on at once.
                wait = if progress.caught_up {
                    base
                } else {
                    Duration::ZERO
                };
            }
            Err(e) => {
                let problem = format!("watcher: {e}");
                let first = {
                    let mut health = shared.health.lock().unwrap_or_else(PoisonError::into_inner);
                    let first = health.problems.is_empty();
                    health.problems = vec![problem.clone()];
                    first
                };
                if first {
                    tracing::warn!("{problem}; node degraded, retrying");
                }
                wait = (wait.max(base) * 2).min(Duration::from_secs(10));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// How far a watcher pass got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The newest block whose events are applied.
    pub(crate) synced: u64,
    /// Whether that is the newest confirmed block.
    pub(crate) caught_up: bool,
}

/// Apply confirmed events after the cursor (at most 5 000 blocks per pass). Passes never
/// overlap: operations that sync after their transaction and the background watcher take
/// turns, so the cursor never moves back (but for a reorg rebuild, which sets it to the new
/// branch's confirmed head) and no change is applied or announced twice.
///
/// Every pass that succeeds, the background watcher's or an operation's, clears the
/// watcher's problem from the node's health (or replaces it with its lag).
async fn sync_once(shared: &Shared) -> Result<Progress, SyncError> {
    let progress = sync_pass(shared).await?;
    let max_lag = shared.config.watchtower.max_lag_blocks;
    let recovered = {
        let mut health = shared.health.lock().unwrap_or_else(PoisonError::into_inner);
        let lag = health.chain_head.saturating_sub(health.synced_block);
        let had = !std::mem::take(&mut health.problems).is_empty();
        if lag > max_lag.saturating_add(shared.config.chain.confirmations) {
            // Catching up: deadlines in the unread blocks cannot be watched yet.
            health.problems = vec![format!(
                "the watcher is {lag} blocks behind the chain head (catching up)"
            )];
        }
        had && health.problems.is_empty()
    };
    if recovered {
        tracing::info!("chain reachable again: node healthy");
    }
    Ok(progress)
}

async fn sync_pass(shared: &Shared) -> Result<Progress, SyncError> {
    let _turn = shared.sync_lock.lock().await;
    let chain = |e: &dyn std::fmt::Display| SyncError::Chain(shared.redact(e.to_string()));
    let source = EventSource::new(
        &shared.reader,
        shared.deployment.channel_manager,
        shared.config.chain.confirmations,
    );
    let head = shared
        .reader
        .get_block_number()
        .await
        .map_err(|e| chain(&e))?;
    let confirmed = source.confirmed_head().await.map_err(|e| chain(&e))?;
    let cursor = blocking(shared, |store| store.cursor()).await?;
    if let Some(cursor) = cursor {
        // The block the cursor stands on must still be the chain's: a reorg below the cursor
        // would leave events applied that no longer exist (repair is the reorg issue's work).
        let block = shared
            .reader
            .get_block_by_number(cursor.block.into())
            .await
            .map_err(|e| chain(&e))?;
        match block {
            Some(b) if b.header.hash.0 == cursor.block_hash => {}
            Some(_) => {
                let confirmed = confirmed.ok_or_else(|| {
                    SyncError::Chain("the chain is shorter than its confirmations".into())
                })?;
                return rebuild_after_reorg(shared, &source, cursor, confirmed, head).await;
            }
            // A reorg to a shorter branch (or a chain RPC swapping branches) shows this for a
            // while and heals once the chain grows past the cursor: the block is there then,
            // with another hash, and the rebuild above runs. Another chain never heals: the
            // rebuild refuses channels that belong to other parties.
            None => {
                return Err(SyncError::Chain(format!(
                    "the chain is behind the node's cursor (block {} is missing): a reorg to a shorter branch heals once the chain grows past it; otherwise this is not the chain the node followed",
                    cursor.block
                )));
            }
        }
    }
    let from = cursor.map_or(shared.deployment.deployment_block, |c| {
        c.block.saturating_add(1)
    });
    let synced = |block: u64| {
        let mut health = shared.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.chain_head = head;
        health.synced_block = block;
    };
    let Some(confirmed) = confirmed.filter(|&c| c >= from) else {
        synced(from.saturating_sub(1));
        return Ok(Progress {
            synced: from.saturating_sub(1),
            caught_up: true,
        });
    };
    let to = confirmed.min(from.saturating_add(4_999));
    // The hash of the range's last block is read before its logs, and every log must come
    // from the same block, or the pass is retried.
    let (block_hash, block_time) = shared
        .reader
        .get_block_by_number(to.into())
        .await
        .map_err(|e| chain(&e))?
        .map(|b| (b.header.hash, b.header.timestamp))
        .ok_or_else(|| SyncError::Chain(format!("block {to} not found")))?;
    let events = source.events(from, to).await.map_err(|e| chain(&e))?;
    if events
        .iter()
        .any(|o| o.block == to && o.block_hash != block_hash)
    {
        return Err(SyncError::Chain(format!(
            "block {to} changed while it was read; retrying"
        )));
    }

    // Apply to the in-memory channel table (the source of truth, shared with payments) and
    // queue the changed records with the new cursor while holding it: writes reach the store
    // in the order the table changed, so a payment's newer record is never overwritten by an
    // older snapshot.
    let mut changes = Vec::new();
    let durable = {
        let mut table = shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut changed: BTreeMap<ChannelId, Channel> = BTreeMap::new();
        for observed in &events {
            if let Some((before, after)) = fold(shared, &mut table, observed) {
                changes.push(ChannelChange {
                    kind: change_kind(before.as_ref(), &after),
                    channel: after.clone(),
                });
                changed.insert(after.id, after);
            }
        }
        // A co-signed withdrawal past its expiry can no longer execute (every later block is
        // later still): the amount is spendable again.
        for channel in table.values_mut() {
            if channel
                .withdrawal
                .as_ref()
                .is_some_and(|w| w.expiry < block_time)
            {
                channel.withdrawal = None;
                changed.insert(channel.id, channel.clone());
            }
        }
        let mut writes: Vec<Write> = changed.into_values().map(Write::Channel).collect();
        writes.push(Write::Cursor(Cursor {
            block: to,
            block_hash: block_hash.0,
        }));
        shared.group.submit(writes)
    };
    durable.await?;
    synced(to);
    for change in changes {
        log_change(
            change.kind,
            &change.channel,
            shared.deployment.token_decimals,
        );
        let _ = shared.changes.send(change);
    }
    Ok(Progress {
        synced: to,
        caught_up: to == confirmed,
    })
}

/// Fold one observed event into `table` (the node's channels, or a copy being rebuilt):
/// channels of another token are not the node's business, a payout deferred to us makes a
/// claim due. Returns (before, after) when the channel changed.
fn fold(
    shared: &Shared,
    table: &mut BTreeMap<ChannelId, Channel>,
    observed: &farthing_chain::events::Observed,
) -> Option<(Option<Channel>, Channel)> {
    match observed.event {
        ChainEvent::PayoutDeferred { owner, .. } if owner == shared.us => {
            shared
                .claim_due
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        ChainEvent::Opened { token, .. } if token != shared.deployment.token => return None,
        _ => {}
    }
    let id = observed.event.channel_id();
    let before = table.get(&id).cloned();
    let after = apply(before.clone(), &observed.event, shared.us, observed.block)?;
    if before.as_ref() == Some(&after) {
        return None;
    }
    table.insert(id, after.clone());
    Some((before, after))
}

/// How far below the cursor a rebuild after a reorg looks for events again (channels opened on
/// the new branch); deeper reorgs still get every known channel's state from the contract.
const REORG_RESCAN_BLOCKS: u64 = 256;

/// Channels read back from the contract at once during a reorg rebuild.
const REBUILD_READS_IN_FLIGHT: usize = 16;

/// The block under the cursor is not the chain's any more (a reorg deeper than the
/// confirmations): events the node applied may no longer exist, and the idempotent folding of
/// absolute values cannot take a vanished deposit back. Rebuild: apply the events of the last
/// [`REORG_RESCAN_BLOCKS`] again (channels opened on the new branch), then take every channel's
/// on-chain half from the contract itself as of the confirmed head, and move the cursor there —
/// nothing is counted twice, nothing that vanished stays counted. Off-chain proofs are kept.
async fn rebuild_after_reorg(
    shared: &Shared,
    source: &EventSource<&DynProvider>,
    cursor: Cursor,
    confirmed: u64,
    head: u64,
) -> Result<Progress, SyncError> {
    let chain = |e: &dyn std::fmt::Display| SyncError::Chain(shared.redact(e.to_string()));
    tracing::warn!(
        block = cursor.block,
        confirmed,
        "a block the node applied was reorganised away: rebuilding its channels from the contract"
    );
    let (block_hash, block_time) = shared
        .reader
        .get_block_by_number(confirmed.into())
        .await
        .map_err(|e| chain(&e))?
        .map(|b| (b.header.hash, b.header.timestamp))
        .ok_or_else(|| SyncError::Chain(format!("block {confirmed} not found")))?;
    let from = cursor
        .block
        .saturating_sub(REORG_RESCAN_BLOCKS)
        .max(shared.deployment.deployment_block);
    let events = source
        .events(from, confirmed)
        .await
        .map_err(|e| chain(&e))?;
    let known: BTreeMap<ChannelId, Channel> = shared
        .channels
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut rebuilt = known.clone();
    for observed in &events {
        fold(shared, &mut rebuilt, observed);
    }
    let mut authoritative = BTreeMap::new();
    // A settled channel cannot change any more: only the others are read back.
    let live: Vec<ChannelId> = rebuilt
        .values()
        .filter(|c| c.on_chain.state != ChainState::Settled)
        .map(|c| c.id)
        .collect();
    // Read back 16 at a time: thousands of channels fit the pass's time limit.
    let read: Vec<_> = futures::stream::iter(live)
        .map(|id| async move { (id, source.channel_at(id, confirmed).await) })
        .buffer_unordered(REBUILD_READS_IN_FLIGHT)
        .collect()
        .await;
    for (id, found) in read {
        match found.map_err(|e| chain(&e))? {
            // The same id, other parties: this is not the chain the node followed (a devnet
            // restarted with the contracts at the same addresses, say). Nothing is changed.
            Some(found)
                if known.get(&id).is_some_and(|c| {
                    let (a, b) = match c.role {
                        farthing_core::Role::A => (c.us, c.partner),
                        farthing_core::Role::B => (c.partner, c.us),
                    };
                    (found.a, found.b, found.token) != (a, b, c.token)
                }) =>
            {
                return Err(SyncError::Chain(format!(
                    "channel {id} on this chain joins {} and {} (token {}), not the parties the node recorded: this is not the chain the node followed; nothing was changed (point the node at its chain, or start it on a new data dir)",
                    found.a, found.b, found.token
                )));
            }
            Some(found) => {
                authoritative.insert(id, found.on_chain);
            }
            None => tracing::error!(
                channel = id,
                "the channel no longer exists on-chain (its open was in a reorganised block); its record is kept as it was"
            ),
        }
    }
    let mut changes = Vec::new();
    let durable = {
        let mut table = shared
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut writes = Vec::new();
        for (id, mut channel) in rebuilt {
            // Payments may have moved the off-chain half meanwhile: keep the table's.
            if let Some(current) = table.get(&id) {
                channel.ours.clone_from(&current.ours);
                channel.theirs.clone_from(&current.theirs);
                channel.withdrawal.clone_from(&current.withdrawal);
            }
            if let Some(on_chain) = authoritative.remove(&id) {
                channel.on_chain = on_chain;
            }
            let open = channel.on_chain.state == ChainState::Open;
            let (withdrawn_a, withdrawn_b) =
                (channel.on_chain.withdrawn_a, channel.on_chain.withdrawn_b);
            let us_a = channel.role == farthing_core::Role::A;
            if channel.withdrawal.as_ref().is_some_and(|w| {
                !open
                    || w.expiry < block_time
                    || w.total
                        <= if w.ours == us_a {
                            withdrawn_a
                        } else {
                            withdrawn_b
                        }
            }) {
                channel.withdrawal = None;
            }
            if table.get(&id) != Some(&channel) {
                changes.push(ChannelChange {
                    kind: "rebuilt",
                    channel: channel.clone(),
                });
                table.insert(id, channel.clone());
                writes.push(Write::Channel(channel));
            }
        }
        writes.push(Write::Cursor(Cursor {
            block: confirmed,
            block_hash: block_hash.0,
        }));
        shared.group.submit(writes)
    };
    durable.await?;
    // The reorg may have taken the node's own transactions away with their nonces.
    shared.client.resync_nonce().await;
    {
        let mut health = shared.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.chain_head = head;
        health.synced_block = confirmed;
    }
    for change in changes {
        log_change(
            change.kind,
            &change.channel,
            shared.deployment.token_decimals,
        );
        let _ = shared.changes.send(change);
    }
    Ok(Progress {
        synced: confirmed,
        caught_up: true,
    })
}

/// Run a store call on the blocking pool: synced RocksDB writes must not stall the async
/// workers.
async fn blocking<T: Send + 'static>(
    shared: &Shared,
    call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    let store = shared.store.clone();
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .map_err(|e| SyncError::Chain(format!("store task failed: {e}")))?
        .map_err(SyncError::from)
}

fn change_kind(before: Option<&Channel>, after: &Channel) -> &'static str {
    let Some(before) = before else {
        return "opened";
    };
    let (b, a) = (&before.on_chain, &after.on_chain);
    if a.state != b.state {
        return match a.state {
            ChainState::Open => "opened",
            ChainState::Closed => "closed",
            ChainState::Settled => "settled",
        };
    }
    if (a.deposit_a, a.deposit_b) != (b.deposit_a, b.deposit_b) {
        "deposit"
    } else if (a.withdrawn_a, a.withdrawn_b) != (b.withdrawn_a, b.withdrawn_b) {
        "withdrawal"
    } else {
        "proof"
    }
}

fn log_change(kind: &'static str, c: &Channel, decimals: u8) {
    let o = &c.on_chain;
    tracing::info!(
        channel = c.id,
        partner = %c.partner,
        role = ?c.role,
        state = ?o.state,
        holdings = %format_amount(c.holdings(), decimals),
        "channel {kind}"
    );
}
