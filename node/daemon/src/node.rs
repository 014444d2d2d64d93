//! [`Node`]: the running node as its users see it — a thin façade over the components the
//! [`Builder`](crate::Builder) wired (`Node::start` and `Node::builder` live with it). Every method delegates to the one component that does the
//! work; the RPC handler and the binary use nothing else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::DynProvider;
use farthing_chain::{ChainClient, Deployment, TxOutcome};
use farthing_core::{ChainState, Channel, ChannelId};
use farthing_peer::PeerAddr;
use farthing_store::{Store, StoreError};
use tokio::sync::broadcast;

use crate::chain::Chain;
use crate::chain::watcher::{ChannelChange, SyncError, Watcher};
use crate::config::Config;
use crate::cosign::{Cosign, CosignError};
use crate::health::{Health, StoreHealth};
use crate::link::Links;
use crate::link::kept::PeerStatus;
use crate::net::{LinkError, Peering};
use crate::observe::{
    FeedError, History, Metrics, PageQuery, Payment, PaymentFeed, PaymentPage, Snapshot,
};
use crate::ops::{OpError, Operations};
use crate::payments::{Paid, PayError, Payments, Spender};
use crate::signer::Signer;
use crate::table::ChannelTable;
use crate::tasks::Tasks;
use crate::watchtower::{GuardPass, Watchtower};

/// A synced write running this long makes the node report its store as stalled.
const STORE_STALL: Duration = Duration::from_secs(2);

/// How long shutdown waits for background tasks to end. They are cancelled at their next
/// `.await` when the signal rises (safe: every state they depend on is durable, and a
/// transaction is journaled before it is broadcast and sent again at the next start), so this
/// only bounds a task blocked in a call that cannot be cancelled (a synced write).
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(10);

/// What the builder wired: every component, each holding only its own handles.
pub(crate) struct Components {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) store_health: Arc<StoreHealth>,
    pub(crate) table: Arc<ChannelTable>,
    pub(crate) signer: Arc<Signer>,
    pub(crate) chain: Arc<Chain>,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) links: Arc<Links>,
    pub(crate) payments: Arc<Payments>,
    pub(crate) cosign: Arc<Cosign>,
    pub(crate) peering: Arc<Peering>,
    pub(crate) operations: Arc<Operations>,
    pub(crate) watchtower: Arc<Watchtower>,
    pub(crate) history: Arc<History>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tasks: Tasks,
    pub(crate) collector: Arc<crate::commerce::collect::Collector>,
    pub(crate) buyer: crate::commerce::Buyer,
    pub(crate) credentials: Arc<crate::credentials::Credentials>,
}

/// A running node. Cheap to clone; every clone drives the same node.
#[derive(Clone)]
pub struct Node {
    c: Arc<Components>,
}

impl Node {
    pub(crate) fn new(components: Components) -> Self {
        Self {
            c: Arc::new(components),
        }
    }

    pub(crate) fn components(&self) -> &Components {
        &self.c
    }

    /// Stop: background tasks end (or are aborted after a grace period), links drop, writes
    /// queued before this point are answered, then the store closes.
    pub async fn shutdown(&self) {
        // First no link at all (their readers and writers are aborted), then every task.
        self.c.links.close_for_good();
        self.c.tasks.shutdown(SHUTDOWN_PATIENCE).await;
        // Writes queued before this point are answered first (the committer takes them in
        // order); then the database closes, whatever tasks still hold the node.
        let _ = self.c.table.flushed().await;
        self.c.store.close();
        tracing::info!("node stopped");
    }

    /// Resolves, with the reason, if a task the node cannot run without failed: the caller
    /// should exit non-zero (the node has begun its shutdown).
    pub async fn fatal(&self) -> String {
        self.c.tasks.fatal().await
    }

    /// Whether [`Node::shutdown`] was called (or a fatal failure began one).
    pub fn is_stopping(&self) -> bool {
        self.c.tasks.is_stopping()
    }

    /// What admits agents' credentials at the RPC server (`farthing_rpc::start_with`).
    pub fn authority(&self) -> Arc<dyn farthing_rpc::Authority> {
        self.c.credentials.clone()
    }

    /// The credentials component.
    pub(crate) fn credentials(&self) -> &crate::credentials::Credentials {
        &self.c.credentials
    }

    /// Each of a credential's `budgets` with what was spent of it and what is left at `now`.
    pub(crate) fn budgets_left(
        &self,
        budgets: &[farthing_credential::Budget],
        now: u64,
    ) -> Vec<(farthing_credential::Budget, u128, u128)> {
        self.c.table.budgets_left(budgets, now)
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        self.c.signer.address()
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.c.config
    }

    /// The token's symbol, as the chain reported it at start-up.
    pub fn token_symbol(&self) -> &str {
        &self.c.chain.token_symbol
    }

    /// The deployment it runs against.
    pub fn deployment(&self) -> &Deployment {
        &self.c.chain.deployment
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.c.store
    }

    /// The chain client (sends as the node's key).
    pub fn client(&self) -> &Arc<ChainClient> {
        &self.c.chain.client
    }

    /// A provider for reads.
    pub fn reader(&self) -> &DynProvider {
        &self.c.chain.reader
    }

    // ---- channels ----

    /// One of the node's channels, as it stands (including changes being made durable).
    pub fn channel_record(&self, id: ChannelId) -> Option<Channel> {
        self.c.table.get(id)
    }

    /// All the node's channels, by id.
    pub fn channel_records(&self) -> Vec<Channel> {
        self.c.table.all()
    }

    /// One of the node's channels, or why not.
    pub fn channel(&self, id: ChannelId) -> Result<Channel, OpError> {
        self.c.operations.channel(id)
    }

    /// Wait (at most `patience`) until channel `id` can take payments both ways: open here,
    /// linked, and known to the partner's node; or say what is missing.
    pub async fn wait_ready(
        &self,
        id: ChannelId,
        patience: std::time::Duration,
    ) -> Result<Channel, crate::net::NotReady> {
        self.c.peering.wait_ready(id, patience).await
    }

    /// Whether channel `id` is on-chain with this node as a participant, whether or not the
    /// node has applied it yet (`false` if the chain cannot say).
    pub async fn is_ours_on_chain(&self, id: ChannelId) -> bool {
        self.c.chain.is_ours_on_chain(id).await.unwrap_or(false)
    }

    /// Whether the chain says channel `id` is not one this node will apply: on no chain, not
    /// the node's, or in another token (`false` if the chain cannot say).
    pub async fn is_surely_not_ours(&self, id: ChannelId) -> bool {
        matches!(self.c.chain.is_ours_on_chain(id).await, Ok(false))
    }

    /// The partner of channel `id`.
    pub fn partner_of(&self, id: ChannelId) -> Option<Address> {
        self.c.table.partner_of(id)
    }

    /// Whether channel `id` is frozen (a cooperative close was signed).
    pub fn is_frozen(&self, id: ChannelId) -> bool {
        self.c.table.is_frozen(id)
    }

    /// Why channel `id` is stale (its data older than the partner's or the chain's), if it is.
    pub fn stale_reason(&self, id: ChannelId) -> Option<String> {
        self.c.table.stale_reason(id)
    }

    // ---- operations ----

    /// Open a channel to `partner` funded with `amount` base units, in one transaction.
    pub async fn open_channel(
        &self,
        partner: Address,
        amount: u128,
        challenge_period: Option<u32>,
    ) -> Result<Channel, OpError> {
        self.c
            .operations
            .open(partner, amount, challenge_period, None)
            .await
    }

    /// [`Node::open_channel`] for an agent: its credential's deposit budgets are charged.
    pub(crate) async fn open_channel_as(
        &self,
        spender: Option<&Spender>,
        partner: Address,
        amount: u128,
        challenge_period: Option<u32>,
    ) -> Result<Channel, OpError> {
        self.c
            .operations
            .open(partner, amount, challenge_period, spender)
            .await
    }

    /// Raise our deposit in channel `id` by `amount` base units.
    pub async fn top_up(&self, id: ChannelId, amount: u128) -> Result<Channel, OpError> {
        self.c.operations.top_up(id, amount, None).await
    }

    /// [`Node::top_up`] for an agent: its credential's deposit budgets are charged.
    pub(crate) async fn top_up_as(
        &self,
        spender: Option<&Spender>,
        id: ChannelId,
        amount: u128,
    ) -> Result<Channel, OpError> {
        self.c.operations.top_up(id, amount, spender).await
    }

    /// Close channel `id`: cooperatively if the partner co-signs, else unilaterally.
    pub async fn close_channel(&self, id: ChannelId) -> Result<Channel, OpError> {
        self.c.operations.close(id).await
    }

    /// Settle channel `id` after its challenge period.
    pub async fn settle_channel(&self, id: ChannelId) -> Result<Channel, OpError> {
        self.c.operations.settle(id).await
    }

    /// Withdraw `amount` base units from open channel `id`, co-signed by the partner.
    pub async fn withdraw(&self, id: ChannelId, amount: u128) -> Result<Channel, OpError> {
        self.c.operations.withdraw(id, amount).await
    }

    /// Claim what the token refused to pay the node at settle time; returns the amount.
    pub async fn claim(&self) -> Result<u128, OpError> {
        self.c.operations.claim().await
    }

    /// The node's token balance, in base units.
    pub async fn token_balance(&self) -> Result<u128, OpError> {
        Ok(self.c.chain.token_balance().await?)
    }

    /// What the node may claim now, in base units.
    pub async fn claimable(&self) -> Result<u128, OpError> {
        Ok(self.c.chain.claimable().await?)
    }

    /// Ask the partner to co-sign closing channel `id` and submit it (no unilateral fallback).
    pub async fn close_cooperatively(&self, id: ChannelId) -> Result<TxOutcome, CosignError> {
        self.c.cosign.close(id).await
    }

    /// Ask the partner to co-sign our withdrawal and submit it.
    pub async fn withdraw_cooperatively(
        &self,
        id: ChannelId,
        amount: u128,
        expiry: u64,
    ) -> Result<TxOutcome, CosignError> {
        self.c.cosign.withdraw(id, amount, expiry).await
    }

    // ---- payments ----

    /// Pay `amount` on channel `id` (see [`Payments::pay`]); returns once the partner
    /// acknowledged it as durable.
    pub async fn pay(
        &self,
        id: ChannelId,
        amount: u128,
        memo: &[u8],
        key: Option<&str>,
    ) -> Result<Paid, PayError> {
        self.c.payments.pay(id, amount, memo, key, None).await
    }

    /// [`Node::pay`] for an agent: its credential's budgets are charged with the proof, and the
    /// payment's log entry names the credential.
    pub(crate) async fn pay_as(
        &self,
        spender: Option<Spender>,
        id: ChannelId,
        amount: u128,
        memo: &[u8],
        key: Option<&str>,
    ) -> Result<Paid, PayError> {
        self.c.payments.pay(id, amount, memo, key, spender).await
    }

    /// Whether a payment was already made under idempotency key `key`.
    pub async fn payment_key_used(&self, key: &str) -> bool {
        self.c.payments.keys.used(key).await
    }

    /// The EIP-712 digest of a balance proof in this node's contract domain.
    pub fn proof_digest(&self, id: ChannelId, nonce: u64, transferred: u128) -> B256 {
        self.c.signer.proof_digest(id, nonce, transferred)
    }

    /// A page of the payment log (every payment made or received, numbered, kept across
    /// restarts): see [`PageQuery`].
    pub async fn list_payments(&self, query: PageQuery) -> Result<PaymentPage, StoreError> {
        let history = self.c.history.clone();
        tokio::task::spawn_blocking(move || history.page(query))
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: e.to_string(),
            })?
    }

    /// The payments after log entry `after`, replayed from the log, then every payment made or
    /// received from then on, once durable (none: from now on).
    pub async fn subscribe_payments(&self, after: Option<u64>) -> Result<PaymentFeed, FeedError> {
        self.c.history.feed(after).await
    }

    /// The newest payments of channel `id` (at most `limit`), oldest first.
    pub async fn recent_payments(&self, id: ChannelId, limit: usize) -> Vec<Payment> {
        let query = PageQuery {
            after: None,
            limit,
            channel: Some(id),
        };
        self.list_payments(query)
            .await
            .map(|page| page.payments)
            .unwrap_or_default()
    }

    // ---- links ----

    /// Listen for partner nodes on `addr`; returns the bound address (port 0 works).
    pub async fn listen_peers(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        self.c.peering.listen(addr).await
    }

    /// Dial a partner (`0xADDRESS@host:port`) and prove both identities.
    pub async fn connect_peer(&self, peer: &PeerAddr) -> Result<(), LinkError> {
        self.c.peering.connect(peer).await
    }

    /// Keep a link to `peer` up (redialed with backoff) until the node stops.
    pub fn keep_linked(&self, peer: PeerAddr) {
        self.c.peering.keep_linked(vec![peer]);
    }

    /// Keep a link to a partner reachable at any of `addrs` (its instances: a leader and
    /// standbys); a failed dial moves on to the next address.
    pub fn keep_linked_at(&self, addrs: Vec<PeerAddr>) {
        self.c.peering.keep_linked(addrs);
    }

    /// Stop keeping a link to `peer` and drop the one that is up; `forget`: also forget its
    /// dial address (for this run). Returns (was linked, was kept, forgotten).
    pub fn disconnect_peer(&self, peer: Address, forget: bool) -> (bool, bool, bool) {
        self.c.peering.stop_keeping(peer, forget)
    }

    /// How many addresses the node keeps dialling (their redial loops running).
    pub fn kept_count(&self) -> u64 {
        self.c.peering.kept.loops()
    }

    /// Every peer the node is linked to, keeps a link to, or shares a channel with, in address
    /// order.
    pub fn peers(&self) -> Vec<PeerStatus> {
        fn slot(
            peers: &mut std::collections::BTreeMap<Address, PeerStatus>,
            address: Address,
        ) -> &mut PeerStatus {
            peers.entry(address).or_insert_with(|| PeerStatus {
                address,
                ..PeerStatus::default()
            })
        }
        let mut peers = std::collections::BTreeMap::new();
        for (address, state) in self.c.peering.kept.all() {
            let peer = slot(&mut peers, address);
            peer.dial = Some(format!("{}:{}", state.addr.host, state.addr.port));
            peer.kept = state.kept;
            peer.failed_dials = state.failed;
            peer.last_error = state.last_error;
            peer.next_dial_in = state
                .next_dial
                .filter(|_| state.kept)
                .map(|at| at.saturating_duration_since(std::time::Instant::now()));
        }
        let us = self.address();
        for (address, dialer, since) in self.c.links.snapshot() {
            let peer = slot(&mut peers, address);
            peer.linked_since_ms = Some(since);
            peer.dialled_by_us = Some(dialer == us);
            peer.next_dial_in = None;
        }
        for channel in self.c.table.all() {
            slot(&mut peers, channel.partner).channels.push(channel.id);
        }
        peers.into_values().collect()
    }

    /// Drop every peer link now (dialed partners are dialed again).
    pub fn drop_links(&self) {
        self.c.links.close_all();
    }

    /// Whether a link to `peer` is up.
    pub fn is_linked(&self, peer: Address) -> bool {
        self.c.links.get(peer).is_some()
    }

    /// How many partner links are up.
    pub fn link_count(&self) -> usize {
        self.c.links.count()
    }

    /// How many partner links came up since the node started.
    pub fn links_established(&self) -> u64 {
        self.c.links.established()
    }

    /// How many links were closed at once since the node started because the partner dialed
    /// at the same moment and its link won (both nodes keep the one the lower address dialed).
    /// With [`Node::links_established`]: every link that passed the handshake (while the store
    /// worked) is counted once.
    pub fn links_declined(&self) -> u64 {
        self.c.links.declined()
    }

    /// How many links are up from strangers (peers that share no channel with this node and
    /// that it does not keep a link to; capped by `peer.max_strangers`).
    pub fn stranger_links(&self) -> usize {
        self.c.peering.strangers.linked()
    }

    /// The link to `peer`'s backlog, if one is up: frames waiting for its writer, and Pongs
    /// dropped because the peer did not read them.
    pub fn link_backlog(&self, peer: Address) -> Option<(usize, u64)> {
        self.c.links.get(peer).map(|link| link.backlog())
    }

    /// Who dialed the link to `peer` that is up (the partner or this node), if one is.
    pub fn link_dialer(&self, peer: Address) -> Option<Address> {
        self.c.links.get(peer).map(|link| link.dialer())
    }

    // ---- chain, watchtower, health ----

    /// Run one watcher pass now; the newest block applied.
    pub async fn sync(&self) -> Result<u64, SyncError> {
        self.c.watcher.sync().await
    }

    /// Run watcher passes until the events of `block` are applied.
    pub async fn sync_to(&self, block: u64) -> Result<(), SyncError> {
        self.c.watcher.sync_to(block).await
    }

    /// Changes to the node's channels as the watcher applies them.
    pub fn subscribe(&self) -> broadcast::Receiver<ChannelChange> {
        self.c.watcher.subscribe()
    }

    /// One watchtower pass now; what it called for (challenges, settles, a claim).
    pub async fn guard(&self, check_gas: bool) -> Result<GuardPass, String> {
        self.c.watchtower.guard(check_gas).await
    }

    /// Current health: the chain's, the store's, the critical tasks'.
    pub fn health(&self) -> Health {
        let view = self.c.watcher.view();
        let mut problems = view.problems;
        problems.extend(self.c.store_health.problem());
        if let Some(busy) = self.c.table.group().busy_for()
            && busy >= STORE_STALL
        {
            problems.push(format!(
                "store: a synced write has not finished for {} s (is the disk stalled?); nothing new is acknowledged until it does",
                busy.as_secs()
            ));
        }
        problems.extend(self.c.tasks.problems());
        Health {
            synced_block: view.synced_block,
            chain_head: view.chain_head,
            problems,
        }
    }

    /// Warnings: the watchtower's (a stale close near its deadline, low gas), channels whose
    /// data is older than the partner's or the chain's, observer tasks that stopped.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.c.watchtower.warnings();
        warnings.extend(self.c.table.stale_reasons());
        warnings.extend(self.c.tasks.warnings());
        warnings
    }

    /// (synced commits, write batches they carried) since the node started.
    pub fn store_stats(&self) -> (u64, u64) {
        self.c.table.group().stats()
    }

    /// Where the store is (RocksDB's directory, or PostgreSQL's database, schema, epoch and
    /// instance).
    pub fn store_location(&self) -> String {
        self.c.store.location()
    }

    // ---- metrics ----

    /// Count an RPC call answered with error `code` (this node's metrics).
    pub fn count_rpc_error(&self, code: i32) {
        self.c.metrics.rpc_error(code);
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render_metrics(&self) -> String {
        let channels = self.channel_records();
        let count = |state| {
            channels
                .iter()
                .filter(|c| c.on_chain.state == state)
                .count() as u64
        };
        let health = self.health();
        let mut text = self.c.metrics.render(&Snapshot {
            store: self.store_stats(),
            channels: (
                count(ChainState::Open),
                count(ChainState::Closed),
                count(ChainState::Settled),
            ),
            chain_head: health.chain_head,
            synced_block: health.synced_block,
            degraded: !health.problems.is_empty(),
            warnings: self.warnings().len() as u64,
            links: (self.link_count() as u64, self.links_established()),
        });
        self.c.credentials.render_metrics(&mut text);
        text
    }

    /// Serve `GET /metrics` on `addr` until the node stops; returns the bound address.
    pub async fn serve_metrics(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let node = self.clone();
        let render = Arc::new(move || node.render_metrics());
        crate::observe::server::serve(addr, &self.c.tasks, render).await
    }
}
