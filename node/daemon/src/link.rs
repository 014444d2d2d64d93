//! Peer links: the node's authenticated TCP connections to its channel partners, and payments
//! over them.
//!
//! Sending: [`Node::pay`] queues the payment in its channel's outbox (`outbox.rs`), whose
//! signer signs the next proof — for every payment queued at that moment — under the channel
//! table's lock and, still under it, queues both the synced write and the `Pay` (or
//! `PayBatch`) frame; the link's writer sends a frame only once the write queued before it is
//! durable (durability rule 1), in queue order, so proofs leave in nonce order however many
//! payments are in flight. The call returns when the partner's cumulative `Ack` covers its
//! nonce.
//!
//! Receiving: the reader takes every frame already buffered (a burst), checks and queues each
//! proof (signature, rules, synced write), waits once for the last write to be durable, then
//! sends ONE cumulative `Ack` — or a `Reject` with the reason for a refused proof (durability
//! rule 2: nothing is acknowledged before it is durable; many payments share one fsync).
//!
//! Delivery: which of our proofs the partner holds is tracked per channel at the node, not per
//! link: a cumulative `Ack`, or the `received_nonce` of the partner's `Sync` after a reconnect,
//! resolves every payment up to it. A payer whose link drops before the `Ack` waits a few
//! seconds for the keep-alive to redial and the `Sync` to settle it, then learns
//! [`PayError::Undelivered`]: signed and kept, delivered when the link is back.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use farthing_chain::messages;
use farthing_core::ChannelId;
use farthing_peer::message::{Memo, Message, Reason, SignedBalance};
use farthing_peer::{FrameReader, FrameWriter, PeerAddr, handshake};
use farthing_store::Write;
use futures::FutureExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::node::Node;
use crate::payments::{Durable, PayError};

/// How long a payment waits for its acknowledgement on a link that stays open.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a payment whose link dropped waits for the link to come back and the partner's
/// `Sync` to say whether it arrived.
const RESYNC_GRACE: Duration = Duration::from_secs(5);

/// Two links from opposite dialers that come up this close together are one simultaneous
/// dial (both nodes keep the same one); later, a new link replaces the old (a redial after the
/// old one died, maybe half-open).
const SIMULTANEOUS_DIALS: Duration = Duration::from_secs(2);

/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A frame to send once the write queued before it is durable.
pub(crate) struct Outgoing {
    pub(crate) ready: Option<Durable>,
    pub(crate) message: Message,
}

/// The answer a payer waits for.
type Waiter = oneshot::Sender<Result<(), PayError>>;

/// A payment the partner acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paid {
    /// The channel.
    pub channel: ChannelId,
    /// The nonce of the proof that carries it.
    pub nonce: u64,
    /// The amount, base units.
    pub amount: u128,
    /// Made earlier under the same idempotency key: this call paid nothing.
    pub repeated: bool,
}

impl From<farthing_store::KeyedPayment> for Paid {
    fn from(p: farthing_store::KeyedPayment) -> Self {
        Self {
            channel: p.channel,
            nonce: p.nonce,
            amount: p.amount,
            repeated: false,
        }
    }
}

/// A keyed payment: made now (signed, its key filed), or made earlier under the same key.
enum Keyed {
    New(Paid, oneshot::Receiver<Result<(), PayError>>),
    Earlier(farthing_store::KeyedPayment),
}

/// The answer a cooperative close waits for: the partner's signature, or its reason to refuse.
type CloseWaiter = oneshot::Sender<Result<[u8; 65], String>>;

/// One authenticated link to a partner.
pub(crate) struct Link {
    pub(crate) outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Cooperative closes and withdrawals waiting for the partner's signature (or its reason
    /// to refuse), by channel.
    closing: Mutex<HashMap<ChannelId, CloseWaiter>>,
    withdrawing: Mutex<HashMap<ChannelId, CloseWaiter>>,
    /// Its reader and writer tasks.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Turns `true` once the link is gone.
    gone: tokio::sync::watch::Sender<bool>,
    /// Who dialed it: the partner or this node.
    dialer: Address,
    up_at: std::time::Instant,
}

/// What the partner of one channel holds of our proofs, and the payments waiting to learn it.
#[derive(Default)]
struct Delivery {
    /// The highest nonce the partner acknowledged as durable (since this node started).
    acked: u64,
    /// Payments waiting for their acknowledgement, by nonce (a repeated idempotency key waits
    /// beside the original call).
    waiting: BTreeMap<u64, Vec<Waiter>>,
}

/// The node's links, by partner address, and the delivery of its payments.
#[derive(Default)]
pub(crate) struct Links {
    links: Mutex<HashMap<Address, Arc<Link>>>,
    /// Links established since the node started (a number that keeps rising says links flap).
    ups: std::sync::atomic::AtomicU64,
    /// Links closed at once because the partner's simultaneous dial won.
    declined: std::sync::atomic::AtomicU64,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    deliveries: Mutex<HashMap<ChannelId, Delivery>>,
}

impl Links {
    fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// A receiver for the outcome of our proof `nonce` on channel `id`: resolved at once if
    /// the partner already acknowledged it.
    pub(crate) fn expect(
        &self,
        id: ChannelId,
        nonce: u64,
    ) -> oneshot::Receiver<Result<(), PayError>> {
        let (tx, rx) = oneshot::channel();
        let mut deliveries = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let delivery = deliveries.entry(id).or_default();
        if delivery.acked >= nonce {
            let _ = tx.send(Ok(()));
        } else {
            delivery.waiting.entry(nonce).or_default().push(tx);
        }
        rx
    }

    /// Fail every payment still waiting, and forget what the partners acknowledged (the
    /// node's table was reloaded from its store).
    fn reset(&self) {
        let deliveries = std::mem::take(
            &mut *self
                .deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (_, delivery) in deliveries {
            for (_, waiters) in delivery.waiting {
                for waiter in waiters {
                    let _ = waiter.send(Err(PayError::Store(
                        farthing_store::StoreError::Unavailable {
                            reason:
                                "the store failed before this payment was durable: it was not made"
                                    .into(),
                        },
                    )));
                }
            }
        }
    }

    /// Drop the waiters of proof `nonce` of channel `id` whose callers stopped waiting (their
    /// receivers are gone); others waiting for the same proof keep waiting.
    fn forget(&self, id: ChannelId, nonce: u64) {
        if let Some(delivery) = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&id)
            && let Some(waiters) = delivery.waiting.get_mut(&nonce)
        {
            waiters.retain(|w| !w.is_closed());
            if waiters.is_empty() {
                delivery.waiting.remove(&nonce);
            }
        }
    }

    /// Whether payments of channel `id` still wait for their acknowledgement.
    fn has_waiting(&self, id: ChannelId) -> bool {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .is_some_and(|d| !d.waiting.is_empty())
    }

    /// The partner holds every proof of `channel` up to `nonce` (cumulative): resolve them.
    fn acknowledged(&self, channel: ChannelId, nonce: u64) {
        let mut deliveries = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let delivery = deliveries.entry(channel).or_default();
        delivery.acked = delivery.acked.max(nonce);
        let later = delivery.waiting.split_off(&(nonce.saturating_add(1)));
        for (_, waiters) in std::mem::replace(&mut delivery.waiting, later) {
            for waiter in waiters {
                let _ = waiter.send(Ok(()));
            }
        }
    }

    /// The partner refused our proof `nonce` of `channel`, saying why.
    fn refused(&self, channel: ChannelId, nonce: u64, reason: String) {
        let waiters = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&channel)
            .and_then(|d| d.waiting.remove(&nonce));
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(Err(PayError::Refused(reason.clone())));
        }
    }

    /// Drop every link but keep listening.
    fn close_links(&self) {
        let links: Vec<_> = self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, l)| l)
            .collect();
        for link in links {
            link.close();
        }
    }

    /// Stop listening and drop every link (the partners see their links close).
    pub(crate) fn close_all(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub(crate) fn get(&self, peer: Address) -> Option<Arc<Link>> {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .cloned()
    }
}

/// Why a link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// TCP failed.
    #[error("cannot reach the peer at {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The peer failed the handshake.
    #[error("handshake with {addr} failed: {source}")]
    Handshake {
        /// Where.
        addr: String,
        /// Why.
        source: farthing_peer::HandshakeError,
    },
}

impl Node {
    /// Listen for partner nodes on `addr`; returns the bound address (port 0 works).
    pub async fn listen_peers(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let node = self.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((stream, remote)) = listener.accept().await {
                let node = node.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    match handshake(
                        stream,
                        node.key(),
                        node.deployment().chain_id,
                        None,
                        HANDSHAKE_TIMEOUT,
                    )
                    .await
                    {
                        Ok((peer, conn)) => node.run_link(peer, peer, conn.split()),
                        Err(e) => tracing::warn!(%remote, "peer refused: {e}"),
                    }
                });
            }
        });
        self.links().track(accepting);
        Ok(bound)
    }

    /// Dial a partner (`0xADDRESS@host:port`) and prove both identities.
    pub async fn connect_peer(&self, peer: &PeerAddr) -> Result<(), LinkError> {
        let addr = format!("{}:{}", peer.host, peer.port);
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|source| LinkError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (proven, conn) = handshake(
            stream,
            self.key(),
            self.deployment().chain_id,
            Some(peer.address),
            HANDSHAKE_TIMEOUT,
        )
        .await
        .map_err(|source| LinkError::Handshake { addr, source })?;
        self.run_link(proven, self.address(), conn.split());
        Ok(())
    }

    /// Keep a link to `peer` up: dial now and whenever it drops (noticed within 250 ms), with
    /// backoff after failed dials (250 ms doubling to 30 s), until the node stops.
    pub fn keep_linked(&self, peer: PeerAddr) {
        const FIRST: Duration = Duration::from_millis(250);
        let node = self.clone();
        tokio::spawn(async move {
            let mut wait = FIRST;
            loop {
                if node.is_stopping() {
                    return;
                }
                if node.is_linked(peer.address) || node.store_health().is_failing() {
                    wait = FIRST;
                } else {
                    match node.connect_peer(&peer).await {
                        Ok(()) => wait = FIRST,
                        Err(e) => {
                            tracing::warn!(%peer, "{e}; retrying in {:.2} s", wait.as_secs_f64());
                            wait = (wait * 2).min(Duration::from_secs(30));
                        }
                    }
                }
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// Drop every peer link now (a network failure, for tests and operators); dialed partners
    /// are dialed again by [`Node::keep_linked`] or [`Node::connect_peer`].
    pub fn drop_links(&self) {
        self.links().close_links();
    }

    /// The nonce of our latest proof on channel `id` (0: none).
    fn latest_sent(&self, id: ChannelId) -> u64 {
        self.channel_record(id)
            .and_then(|c| c.ours.map(|p| p.nonce))
            .unwrap_or(0)
    }

    /// After the table was reloaded from the store: fail the payments still waiting and forget
    /// the idempotency keys that were never made durable.
    pub(crate) async fn forget_undurable(&self) {
        self.links().reset();
        self.keys().lock().await.clear();
    }

    /// How many partner links came up since the node started.
    pub fn links_established(&self) -> u64 {
        self.links().ups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many links were closed at once since the node started because the partner dialed
    /// at the same moment and its link won (both nodes keep the one the lower address dialed).
    /// With [`Node::links_established`]: every link that passed the handshake (while the store
    /// worked) is counted once.
    pub fn links_declined(&self) -> u64 {
        self.links()
            .declined
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Who dialed the link to `peer` that is up (the partner or this node), if one is.
    pub fn link_dialer(&self, peer: Address) -> Option<Address> {
        self.links().get(peer).map(|link| link.dialer)
    }

    /// How many partner links are up.
    pub fn link_count(&self) -> usize {
        self.links()
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether a link to `peer` is up.
    pub fn is_linked(&self, peer: Address) -> bool {
        self.links().get(peer).is_some()
    }

    /// Run a link to `peer` that `dialer` dialed (the partner, or this node).
    fn run_link(
        &self,
        peer: Address,
        dialer: Address,
        (reader, writer): (
            FrameReader<tokio::io::ReadHalf<TcpStream>>,
            FrameWriter<tokio::io::WriteHalf<TcpStream>>,
        ),
    ) {
        if self.store_health().is_failing() {
            // Nothing may be synchronised from a table that is ahead of the disk.
            tracing::warn!(%peer, "peer link refused: the store is failing");
            return;
        }
        let (outgoing, queue) = mpsc::unbounded_channel();
        let link = Arc::new(Link {
            outgoing,
            closing: Mutex::new(HashMap::new()),
            withdrawing: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            gone: tokio::sync::watch::Sender::new(false),
            dialer,
            up_at: std::time::Instant::now(),
        });
        let replaced = {
            let mut links = self
                .links()
                .links
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(old) = links.get(&peer)
                && old.dialer != dialer
                && old.up_at.elapsed() < SIMULTANEOUS_DIALS
                && old.dialer < dialer
                && !*old.gone.borrow()
            {
                // Both nodes dialed each other at the same moment: both keep the link the lower
                // address dialed (each applies the same rule), and this one closes.
                self.links()
                    .declined
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            links.insert(peer, link.clone())
        };
        if let Some(old) = replaced {
            // The partner dialed again (its old connection may be half dead), or won a
            // simultaneous dial: the newest wins.
            old.close();
        }
        self.links()
            .ups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.send_sync(peer, &link);
        tracing::info!(%peer, "peer link up");
        let writing = tokio::spawn(write_frames(writer, queue));
        let node = self.clone();
        let task_link = link.clone();
        let reading = tokio::spawn(async move {
            let link = task_link;
            if let Err(e) = node.read_frames(peer, &link, reader).await {
                tracing::warn!(%peer, "peer link closed: {e}");
            }
            let mut links = node
                .links()
                .links
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if links.get(&peer).is_some_and(|l| Arc::ptr_eq(l, &link)) {
                links.remove(&peer);
            }
            drop(links);
            link.shut();
        });
        link.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([writing.abort_handle(), reading.abort_handle()]);
        self.links().track(writing);
        self.links().track(reading);
    }

    /// On link up: for every open channel shared with `peer`, send our latest proof (once it
    /// is durable) so that a payment whose delivery or acknowledgement was lost is settled.
    fn send_sync(&self, peer: Address, link: &Link) {
        let shared: Vec<_> = self
            .channel_records()
            .into_iter()
            .filter(|c| c.partner == peer && c.on_chain.state == farthing_core::ChainState::Open)
            .collect();
        if shared.is_empty() {
            return;
        }
        // An empty group commit resolves once every write queued before it is durable.
        let mut ready: Option<Durable> = Some(Box::pin(self.group().submit(Vec::new())));
        for channel in shared {
            let _ = link.outgoing.send(Outgoing {
                ready: ready.take(),
                message: sync_message(&channel),
            });
        }
    }

    /// Pay `amount` on channel `id` over the link to its partner, with an optional memo for
    /// the partner and an optional idempotency key; returns once the partner has acknowledged
    /// the payment as durable.
    ///
    /// With a key: a key already used answers with the payment first made under it (waiting
    /// for its delivery if need be) and pays nothing; the key is stored in the same synced
    /// write as the proof, so this holds across restarts.
    pub async fn pay(
        &self,
        id: ChannelId,
        amount: u128,
        memo: &[u8],
        key: Option<&str>,
    ) -> Result<Paid, PayError> {
        let partner = self.partner_of(id).ok_or(PayError::UnknownChannel(id))?;
        self.require_store()?;
        let memo = Memo::new(memo.to_vec()).map_err(|e| PayError::BadMemo(e.to_string()))?;
        let recorded = memo.as_bytes().to_vec();
        let started = std::time::Instant::now();
        let record = |paid: Paid| {
            if !paid.repeated {
                let p = &paid;
                self.metrics().paid(p.amount, started.elapsed());
                self.history()
                    .record(p.channel, true, p.nonce, p.amount, recorded.clone());
            }
            paid
        };
        let Some(key) = key else {
            let (signed, delivered) = self.sign_queued(id, partner, amount, memo, None).await?;
            return self
                .await_delivery(signed, delivered, ACK_TIMEOUT)
                .await
                .map(record);
        };
        // One keyed payment is checked, signed and filed at a time, in a task of its own: a
        // caller that goes away cannot leave a payment signed whose key is not filed.
        let filing = {
            let (node, key) = (self.clone(), key.to_owned());
            tokio::spawn(async move { node.file_keyed(id, partner, amount, memo, key).await })
        };
        let earlier = match filing.await.map_err(|_| PayError::SignerStopped(id))?? {
            Keyed::New(signed, delivered) => {
                return self
                    .await_delivery(signed, delivered, ACK_TIMEOUT)
                    .await
                    .map(record);
            }
            Keyed::Earlier(earlier) => earlier,
        };
        if earlier.channel != id || earlier.amount != amount {
            return Err(PayError::KeyReused {
                key: key.to_owned(),
                channel: earlier.channel,
                amount: earlier.amount,
            });
        }
        let delivered = self.links().expect(earlier.channel, earlier.nonce);
        let repeat = Paid {
            repeated: true,
            ..Paid::from(earlier)
        };
        // Not acknowledged yet (the partner refused it, or the link dropped): offer the partner
        // our latest proof again; it carries this payment, and the partner acks it if it takes
        // it now. Nothing new is signed.
        if let (Some(link), Some(channel)) = (
            self.links().get(partner),
            self.channel_record(earlier.channel),
        ) {
            let _ = link.outgoing.send(Outgoing {
                ready: Some(Box::pin(self.group().submit(Vec::new()))),
                message: sync_message(&channel),
            });
        }
        self.await_delivery(repeat, delivered, RESYNC_GRACE).await
    }

    /// Whether a payment was already made under idempotency key `key` (filed in memory or in
    /// the store).
    pub async fn payment_key_used(&self, key: &str) -> bool {
        if self.keys().lock().await.contains_key(key) {
            return true;
        }
        matches!(self.store().keyed_payment(key), Ok(Some(_)))
    }

    /// Pay under idempotency key `key` unless it was used: the key is filed in memory (until
    /// its record, written with the proof, is durable) before the keys' lock goes.
    async fn file_keyed(
        &self,
        id: ChannelId,
        partner: Address,
        amount: u128,
        memo: Memo,
        key: String,
    ) -> Result<Keyed, PayError> {
        let mut keys = self.keys().lock().await;
        let earlier = match keys.get(&key) {
            Some(earlier) => Some(*earlier),
            None => self.store().keyed_payment(&key)?,
        };
        if let Some(earlier) = earlier {
            return Ok(Keyed::Earlier(earlier));
        }
        let (signed, delivered) = self
            .sign_queued(id, partner, amount, memo, Some(&key))
            .await?;
        let filed = farthing_store::KeyedPayment {
            channel: id,
            nonce: signed.nonce,
            amount,
        };
        keys.insert(key.clone(), filed);
        drop(keys);
        // Once the key's record is durable the store answers for it (whether or not the caller
        // still waits).
        let (node, durable) = (self.clone(), self.group().submit(Vec::new()));
        tokio::spawn(async move {
            if durable.await.is_ok() {
                let mut keys = node.keys().lock().await;
                if keys.get(&key) == Some(&filed) {
                    keys.remove(&key);
                }
            }
        });
        Ok(Keyed::New(signed, delivered))
    }

    /// Wait until the partner holds our proof `paid.nonce`: its Ack on the link (for at most
    /// `patience`), or — if the link drops — its Sync once the link is back (for
    /// [`RESYNC_GRACE`]).
    async fn await_delivery(
        &self,
        paid: Paid,
        mut delivered: oneshot::Receiver<Result<(), PayError>>,
        patience: Duration,
    ) -> Result<Paid, PayError> {
        let outcome = |answer: Result<Result<(), PayError>, _>| {
            answer.unwrap_or(Err(PayError::LinkDown)).map(|()| paid)
        };
        let link = self
            .partner_of(paid.channel)
            .and_then(|p| self.links().get(p));
        if let Some(link) = link {
            let mut gone = link.gone.subscribe();
            tokio::select! {
                answer = &mut delivered => return outcome(answer),
                _ = async { gone.wait_for(|gone| *gone).await.is_ok() } => {}
                () = tokio::time::sleep(patience) => {
                    drop(delivered);
                    self.links().forget(paid.channel, paid.nonce);
                    return self.undelivered(paid).await;
                }
            }
        }
        match tokio::time::timeout(RESYNC_GRACE, &mut delivered).await {
            Ok(answer) => outcome(answer),
            Err(_) => {
                drop(delivered);
                self.links().forget(paid.channel, paid.nonce);
                self.undelivered(paid).await
            }
        }
    }

    async fn undelivered(&self, paid: Paid) -> Result<Paid, PayError> {
        // Say "stored" only if it is.
        self.group().submit(Vec::new()).await?;
        Err(PayError::Undelivered {
            channel: paid.channel,
            nonce: paid.nonce,
        })
    }

    async fn read_frames(
        &self,
        peer: Address,
        link: &Link,
        mut reader: FrameReader<tokio::io::ReadHalf<TcpStream>>,
    ) -> Result<(), farthing_peer::LinkError> {
        loop {
            let first = reader.recv().await?;
            let mut burst = vec![first];
            while let Ok(Some(next)) = reader.next_buffered() {
                burst.push(next);
                if burst.len() >= 1024 {
                    break;
                }
            }
            // A payment on a channel this node has not seen yet: its open may be in the newest
            // blocks; look at the chain once before refusing.
            if burst.iter().any(|m| {
                matches!(m, Message::Pay { .. } | Message::PayBatch { .. })
                    && m.channel_id()
                        .is_some_and(|id| self.channel_record(id).is_none())
            }) {
                let _ = self.sync().await;
            }
            // Check and queue every proof of the burst, wait once, acknowledge once per channel.
            let mut out = Burst::default();
            for message in burst {
                match message {
                    Message::Pay {
                        channel_id,
                        nonce,
                        transferred,
                        amount,
                        signature,
                        memo,
                        ..
                    } => {
                        let proof = SignedBalance {
                            nonce,
                            transferred,
                            signature,
                        };
                        let payments = vec![(amount, memo)];
                        let claimed = claimed(&payments);
                        let _ =
                            self.take_proof(peer, &mut out, channel_id, proof, claimed, payments);
                    }
                    Message::PayBatch {
                        channel_id,
                        nonce,
                        transferred,
                        signature,
                        payments,
                    } => {
                        // One proof, one recovery for all of them.
                        let proof = SignedBalance {
                            nonce,
                            transferred,
                            signature,
                        };
                        let payments: Vec<_> = payments.into_iter().collect();
                        let claimed = claimed(&payments);
                        let _ =
                            self.take_proof(peer, &mut out, channel_id, proof, claimed, payments);
                    }
                    // Only the channel's partner speaks for it; an Ack past what we signed says
                    // our data is stale and acknowledges nothing we hold.
                    Message::Ack { channel_id, nonce }
                        if self.partner_of(channel_id) == Some(peer) =>
                    {
                        self.check_not_behind(channel_id, nonce, "the partner");
                        self.links()
                            .acknowledged(channel_id, nonce.min(self.latest_sent(channel_id)));
                    }
                    Message::Reject {
                        channel_id,
                        nonce: 0,
                        code: code @ (CLOSE_REFUSED | WITHDRAW_REFUSED),
                        reason,
                    } => {
                        let waiters = if code == CLOSE_REFUSED {
                            &link.closing
                        } else {
                            &link.withdrawing
                        };
                        answer(waiters, channel_id, Err(reason.as_str().to_owned()));
                    }
                    Message::Reject {
                        channel_id,
                        nonce,
                        reason,
                        ..
                    } if self.partner_of(channel_id) == Some(peer) => {
                        self.links()
                            .refused(channel_id, nonce, reason.as_str().to_owned());
                    }
                    request @ Message::CloseRequest { .. } => {
                        let (reply, durable) = self.answer_close(peer, &request);
                        // The co-signature leaves only once the channel is durably frozen.
                        if let Some(durable) = durable {
                            out.last_durable = Some(durable);
                        }
                        out.replies.push(reply);
                    }
                    request @ Message::WithdrawRequest { .. } => {
                        let (reply, durable) = self.answer_withdraw(peer, &request);
                        // The co-signature leaves only once the pending withdrawal is durable.
                        if let Some(durable) = durable {
                            out.last_durable = Some(durable);
                        }
                        out.replies.push(reply);
                    }
                    Message::WithdrawAccept {
                        channel_id,
                        signature,
                    } => answer(&link.withdrawing, channel_id, Ok(signature)),
                    Message::CloseAccept {
                        channel_id,
                        signature,
                    } => answer(&link.closing, channel_id, Ok(signature)),
                    Message::Sync {
                        channel_id,
                        sent,
                        received_nonce,
                    } => {
                        // What the partner holds of ours settles payments whose Ack was lost,
                        // and tells this node if its own data is older than what it signed.
                        if self.partner_of(channel_id) == Some(peer) {
                            self.check_not_behind(channel_id, received_nonce, "the partner");
                            self.links().acknowledged(
                                channel_id,
                                received_nonce.min(self.latest_sent(channel_id)),
                            );
                        }
                        let Some(latest) = sent else {
                            continue;
                        };
                        // The partner's latest proof: take it if it is newer than ours of it
                        // (a payment whose delivery or Ack was lost before the reconnect).
                        let received = self
                            .channel_record(channel_id)
                            .map(|c| (c.received(), c.theirs.map_or(0, |p| p.nonce)));
                        if let Some((received, have)) = received
                            && latest.nonce > have
                            && latest.transferred > received
                        {
                            // Payments whose frames were lost: no memos, no history entries.
                            let amount = latest.transferred - received;
                            if let Err(e) = self.take_proof(
                                peer,
                                &mut out,
                                channel_id,
                                latest,
                                Ok(amount),
                                Vec::new(),
                            ) {
                                tracing::warn!(%peer, channel = channel_id, "sync proof refused: {e}");
                            }
                        }
                    }
                    Message::Ping { nonce } => out.replies.push(Message::Pong { nonce }),
                    _ => {}
                }
            }
            let Burst {
                last_durable,
                acks,
                received,
                mut replies,
            } = out;
            for (channel_id, nonce) in acks {
                replies.push(Message::Ack { channel_id, nonce });
            }
            if !received.is_empty() {
                // Into the history once durable (an empty group commit resolves after every
                // write queued before it).
                let durable = self.group().submit(Vec::new());
                let node = self.clone();
                tokio::spawn(async move {
                    if durable.await.is_ok() {
                        for (channel, nonce, amount, memo) in received {
                            node.metrics().received(amount);
                            node.history().record(channel, false, nonce, amount, memo);
                        }
                    }
                });
            }
            // The acks leave only after the burst's last write is durable (writes complete in
            // queue order, so that one covers them all).
            let mut ready = last_durable;
            for message in replies {
                let _ = link.outgoing.send(Outgoing {
                    ready: ready.take(),
                    message,
                });
            }
        }
    }

    /// Check and queue the partner's proof of channel `channel_id` claiming `claimed` (its
    /// increase must cover it): acknowledged with the burst once durable, its `payments` (each
    /// amount with its memo) then entering the history; or refused with the reason (returned
    /// too).
    fn take_proof(
        &self,
        peer: Address,
        burst: &mut Burst,
        channel_id: ChannelId,
        proof: SignedBalance,
        claimed: Result<u128, PayError>,
        payments: Vec<(u128, Memo)>,
    ) -> Result<(), String> {
        let queued = claimed.and_then(|amount| {
            self.queue_incoming(
                peer,
                channel_id,
                proof.nonce,
                proof.transferred,
                amount,
                &proof.signature,
            )
        });
        match queued {
            Ok(durable) => {
                burst.last_durable = Some(durable);
                burst.acks.insert(channel_id, proof.nonce);
                burst.received.extend(
                    payments
                        .into_iter()
                        .map(|(amount, memo)| (channel_id, proof.nonce, amount, memo.into_bytes())),
                );
                Ok(())
            }
            Err(e) => {
                let reason = e.to_string();
                burst.replies.push(Message::Reject {
                    channel_id,
                    nonce: proof.nonce,
                    code: 1,
                    reason: Reason::truncated(reason.clone()),
                });
                Err(reason)
            }
        }
    }
}

/// What the payments a proof carries claim together: their sum, each of them a payment.
fn claimed(payments: &[(u128, Memo)]) -> Result<u128, PayError> {
    if payments.iter().any(|(amount, _)| *amount == 0) {
        return Err(PayError::Rejected(farthing_core::Rejection::Zero));
    }
    payments
        .iter()
        .try_fold(0u128, |sum, (amount, _)| sum.checked_add(*amount))
        .ok_or_else(|| PayError::BadSignature("the payments' amounts overflow".into()))
}

/// What the reader makes of one burst of frames: the writes its answers wait for, the
/// cumulative acknowledgements, the payments received, the replies.
#[derive(Default)]
struct Burst {
    /// The last write queued: once it is durable, so are all before it.
    last_durable: Option<Durable>,
    acks: BTreeMap<ChannelId, u64>,
    received: Vec<(ChannelId, u64, u128, Vec<u8>)>,
    replies: Vec<Message>,
}

impl Link {
    /// Stop its reader and writer now.
    fn close(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        self.shut();
    }

    /// The link is gone: payments waiting on it learn so (they wait a little for a Sync on a
    /// new link), closes and withdrawals waiting for a signature give up.
    fn shut(&self) {
        self.gone.send_replace(true);
        self.closing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.withdrawing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Hand the partner's answer to the close or withdrawal of `channel` waiting for it, if any.
fn answer(
    waiters: &Mutex<HashMap<ChannelId, CloseWaiter>>,
    channel: ChannelId,
    outcome: Result<[u8; 65], String>,
) {
    let waiter = waiters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&channel);
    if let Some(waiter) = waiter {
        let _ = waiter.send(outcome);
    }
}

/// Send queued frames in order, each only once the write queued before it is durable; many
/// frames per flush.
async fn write_frames(
    mut writer: FrameWriter<tokio::io::WriteHalf<TcpStream>>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
            if batch.len() >= 1024 {
                break;
            }
        }
        let mut unsent = false;
        for outgoing in batch {
            if let Some(mut ready) = outgoing.ready {
                let durable = match (&mut ready).now_or_never() {
                    Some(durable) => durable,
                    None => {
                        // Its write is not durable yet: send the frames before it now rather
                        // than hold them back behind this write (and the ones after it).
                        if unsent && writer.flush().await.is_err() {
                            return;
                        }
                        ready.await
                    }
                };
                if let Err(e) = durable {
                    // Not durable: the frame must not leave. The link drops; payers see
                    // LinkDown.
                    tracing::error!("store failed, dropping the peer link: {e}");
                    return;
                }
            }
            if writer.feed(&outgoing.message).await.is_err() {
                return;
            }
            unsent = true;
        }
        if unsent && writer.flush().await.is_err() {
            return;
        }
    }
}

/// The start of a close refusal that a retry after both nodes catch up with the chain may cure.
const BEHIND: &str = "the nodes' views of the chain differ";

/// `Reject.code` of a refused cooperative close request.
const CLOSE_REFUSED: u16 = 2;
/// `Reject.code` of a refused withdrawal request.
const WITHDRAW_REFUSED: u16 = 3;

/// How long a cooperative close waits for the partner's signature before the caller falls back
/// to a unilateral close.
pub(crate) const CLOSE_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

impl Node {
    /// Ask the partner to co-sign closing channel `id` on the balances both hold, then submit
    /// the cooperative close (one transaction). The channel is frozen first (no payment either
    /// way) and only once every payment we sent is acknowledged, so both sides compute the same
    /// payouts. Fails with [`PayError::LinkDown`] / [`PayError::Refused`] when the partner is
    /// away or disagrees: the caller then closes unilaterally.
    pub async fn close_cooperatively(
        &self,
        id: ChannelId,
    ) -> Result<farthing_chain::TxOutcome, PayError> {
        let channel = self
            .channel_record(id)
            .ok_or(PayError::UnknownChannel(id))?;
        let link = self
            .links()
            .get(channel.partner)
            .ok_or(PayError::LinkDown)?;
        // Durably, before our signature leaves in the request.
        self.freeze(id).await?;
        // Every payment we sent must be acknowledged before the balances are final.
        for _ in 0..500 {
            if !self.links().has_waiting(id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Both nodes must have applied the same chain events (a withdrawal just executed, a
        // top-up): catch up first, and if the partner is behind, give it a moment to catch up.
        let mut attempt = 0;
        let (channel, message, ours, theirs) = loop {
            attempt += 1;
            let _ = self.sync().await;
            let channel = self
                .channel_record(id)
                .ok_or(PayError::UnknownChannel(id))?;
            match self.ask_close_signature(&link, &channel).await {
                Ok((message, ours, theirs)) => break (channel, message, ours, theirs),
                Err(PayError::Refused(reason)) if attempt < 3 && reason.contains(BEHIND) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (payout_a, payout_b) = channel.close_payouts();
        let digest = alloy::sol_types::SolStruct::eip712_signing_hash(&message, self.domain());
        crate::payments::verify(digest, &theirs, channel.partner)?;
        let (sig_a, sig_b) = match channel.role {
            farthing_core::Role::A => (ours, alloy::primitives::Bytes::copy_from_slice(&theirs)),
            farthing_core::Role::B => (alloy::primitives::Bytes::copy_from_slice(&theirs), ours),
        };
        let outcome = self
            .client()
            .cooperative_close(id, payout_a, payout_b, sig_a, sig_b)
            .await?;
        Ok(outcome)
    }

    /// Send our signed close of `channel` on its current balances; the partner's signature.
    async fn ask_close_signature(
        &self,
        link: &Link,
        channel: &farthing_core::Channel,
    ) -> Result<
        (
            messages::CooperativeClose,
            alloy::primitives::Bytes,
            [u8; 65],
        ),
        PayError,
    > {
        let id = channel.id;
        let (payout_a, payout_b) = channel.close_payouts();
        let message = close_message(channel, payout_a, payout_b);
        let ours = messages::sign(self.key(), &message, self.domain());
        let (answer_tx, answer) = oneshot::channel();
        link.closing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, answer_tx);
        let request = Message::CloseRequest {
            channel_id: id,
            payout_a,
            payout_b,
            withdrawn_a: channel.on_chain.withdrawn_a,
            withdrawn_b: channel.on_chain.withdrawn_b,
            signature: ours
                .as_ref()
                .try_into()
                .map_err(|_| PayError::BadSignature("own signature".into()))?,
        };
        link.outgoing
            .send(Outgoing {
                ready: None,
                message: request,
            })
            .map_err(|_| PayError::LinkDown)?;
        match tokio::time::timeout(CLOSE_ANSWER_TIMEOUT, answer).await {
            Ok(Ok(Ok(signature))) => Ok((message, ours, signature)),
            Ok(Ok(Err(reason))) => Err(PayError::Refused(reason)),
            _ => Err(PayError::LinkDown),
        }
    }

    /// Ask the partner to co-sign our withdrawal of `amount` while the channel stays open, then
    /// submit it (one transaction; the tokens come to us). The withdrawal is recorded as pending
    /// on both sides (durably, before either signature leaves) so neither spends the amount
    /// again; it stays pending until it is seen on-chain or `expiry` (chain time) passes.
    pub async fn withdraw_cooperatively(
        &self,
        id: ChannelId,
        amount: u128,
        expiry: u64,
    ) -> Result<farthing_chain::TxOutcome, PayError> {
        let partner = self.partner_of(id).ok_or(PayError::UnknownChannel(id))?;
        if self.is_frozen(id) {
            return Err(PayError::Frozen(id));
        }
        let link = self.links().get(partner).ok_or(PayError::LinkDown)?;
        let us = self.address();
        if let Some(reason) = self.stale_reason(id) {
            return Err(PayError::Stale(reason));
        }
        let durable = self.update_channel(id, |channel| {
            if let Some(pending) = &channel.withdrawal {
                return Err(PayError::Refused(format!(
                    "a withdrawal of a total of {} base units is pending until {} (chain time): wait for it",
                    pending.total, pending.expiry
                )));
            }
            if channel.on_chain.state != farthing_core::ChainState::Open {
                return Err(farthing_core::PaymentError::NotOpen {
                    id,
                    state: channel.on_chain.state,
                }
                .into());
            }
            let available = channel.our_balance();
            if amount == 0 || amount > available {
                return Err(farthing_core::PaymentError::Insufficient {
                    id,
                    available,
                    amount,
                }
                .into());
            }
            let total = channel.our_withdrawn() + amount;
            if total > crate::ops::MAX_DEPOSIT {
                return Err(farthing_core::PaymentError::Exhausted { id }.into());
            }
            let mut next = channel.clone();
            next.withdrawal = Some(farthing_core::PendingWithdrawal {
                ours: true,
                total,
                expiry,
            });
            let message = withdraw_message(id, us, total, expiry);
            let ours = messages::sign(self.key(), &message, self.domain());
            Ok((next, (total, message, ours)))
        })?;
        let (total, message, ours) = durable.await?;
        let (answer_tx, answer) = oneshot::channel();
        link.withdrawing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, answer_tx);
        link.outgoing
            .send(Outgoing {
                ready: None,
                message: Message::WithdrawRequest {
                    channel_id: id,
                    participant: us,
                    total_withdrawn: total,
                    expiry,
                    signature: ours
                        .as_ref()
                        .try_into()
                        .map_err(|_| PayError::BadSignature("own signature".into()))?,
                },
            })
            .map_err(|_| PayError::LinkDown)?;
        let theirs = match tokio::time::timeout(CLOSE_ANSWER_TIMEOUT, answer).await {
            Ok(Ok(Ok(signature))) => signature,
            Ok(Ok(Err(reason))) => {
                // Not co-signed: nothing can execute, our balance is ours again.
                self.drop_pending_withdrawal(id, total);
                return Err(PayError::Refused(reason));
            }
            // No answer: the partner may have co-signed, so the withdrawal stays pending here
            // until its expiry (only our own spending is held back by it).
            _ => return Err(PayError::LinkDown),
        };
        let digest = alloy::sol_types::SolStruct::eip712_signing_hash(&message, self.domain());
        crate::payments::verify(digest, &theirs, partner)?;
        let channel = self
            .channel_record(id)
            .ok_or(PayError::UnknownChannel(id))?;
        let theirs = alloy::primitives::Bytes::copy_from_slice(&theirs);
        let (sig_a, sig_b) = match channel.role {
            farthing_core::Role::A => (ours, theirs),
            farthing_core::Role::B => (theirs, ours),
        };
        Ok(self
            .client()
            .withdraw(id, us, total, expiry, sig_a, sig_b)
            .await?)
    }

    /// Forget our pending withdrawal of `total` on channel `id` (the partner did not co-sign).
    fn drop_pending_withdrawal(&self, id: ChannelId, total: u128) {
        let dropped = self.update_channel::<(), PayError>(id, |channel| {
            let mut next = channel.clone();
            if next
                .withdrawal
                .as_ref()
                .is_some_and(|w| w.ours && w.total == total)
            {
                next.withdrawal = None;
            }
            Ok((next, ()))
        });
        if let Err(e) = dropped {
            tracing::warn!(channel = id, "cannot drop the refused withdrawal: {e}");
        }
    }

    /// Answer a partner's withdrawal request: co-sign only a withdrawal of what the partner can
    /// still pay by this node's own books, recording it as pending in the same write. Returns
    /// the reply and the write it must wait for.
    fn answer_withdraw(&self, peer: Address, request: &Message) -> (Message, Option<Durable>) {
        let Message::WithdrawRequest {
            channel_id,
            participant,
            total_withdrawn,
            expiry,
            signature,
        } = request
        else {
            return (
                Message::Error {
                    code: 0,
                    reason: Reason::truncated("not a withdrawal request"),
                },
                None,
            );
        };
        let (id, total, expiry) = (*channel_id, *total_withdrawn, *expiry);
        let refuse = |why: String| {
            tracing::info!(%peer, channel = id, "withdrawal refused: {why}");
            (
                Message::Reject {
                    channel_id: id,
                    nonce: 0,
                    code: WITHDRAW_REFUSED,
                    reason: Reason::truncated(why),
                },
                None,
            )
        };
        if self.partner_of(id) != Some(peer) {
            return refuse(format!("channel {id} is not shared with {peer}"));
        }
        if *participant != peer {
            return refuse("a partner withdraws only for itself".into());
        }
        if self.is_frozen(id) {
            return refuse(format!("channel {id} is closing"));
        }
        if total > crate::ops::MAX_DEPOSIT {
            return refuse(format!(
                "a total of {total} is past the contract's uint96 limit"
            ));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // The node holds the amount back until the expiry: not for longer than a withdrawal
        // needs (an hour of slack for a chain clock ahead of this machine's).
        let latest = now + crate::ops::WITHDRAW_VALIDITY_SECS + 3_600;
        if expiry > latest {
            return refuse(format!(
                "expiry {expiry} is too far ahead: at most {latest} (unix time)"
            ));
        }
        let message = withdraw_message(id, peer, total, expiry);
        let digest = alloy::sol_types::SolStruct::eip712_signing_hash(&message, self.domain());
        if let Err(e) = crate::payments::verify(digest, signature, peer) {
            return refuse(e.to_string());
        }
        let answered = self.with_channel(id, |channel, group| {
            if channel.on_chain.state != farthing_core::ChainState::Open {
                return Err(PayError::Refused(format!("channel {id} is not open")));
            }
            if let Some(pending) = &channel.withdrawal {
                return Err(PayError::Refused(format!(
                    "a withdrawal of a total of {} is pending until {}",
                    pending.total, pending.expiry
                )));
            }
            let withdrawn = match channel.role {
                farthing_core::Role::A => channel.on_chain.withdrawn_b,
                farthing_core::Role::B => channel.on_chain.withdrawn_a,
            };
            let available = channel.partner_balance();
            let increase = total.saturating_sub(withdrawn);
            if total <= withdrawn || increase > available {
                return Err(PayError::Refused(format!(
                    "a new total of {total} withdraws {increase} base units; by this node's books the partner can withdraw at most {available} (it has withdrawn {withdrawn})"
                )));
            }
            let mut next = channel.clone();
            next.withdrawal = Some(farthing_core::PendingWithdrawal {
                ours: false,
                total,
                expiry,
            });
            let durable: Durable = Box::pin(group.submit(vec![Write::Channel(next.clone())]));
            Ok::<_, PayError>((next, durable))
        });
        let durable = match answered {
            Ok(durable) => durable,
            Err(PayError::Refused(why)) => return refuse(why),
            Err(e) => return refuse(e.to_string()),
        };
        let ours = messages::sign(self.key(), &message, self.domain());
        match ours.as_ref().try_into() {
            Ok(signature) => (
                Message::WithdrawAccept {
                    channel_id: id,
                    signature,
                },
                Some(durable),
            ),
            Err(_) => refuse("internal: signature length".into()),
        }
    }

    /// Answer a partner's close request: co-sign only the payouts this node computes itself.
    fn answer_close(&self, peer: Address, request: &Message) -> (Message, Option<Durable>) {
        let Message::CloseRequest {
            channel_id,
            payout_a,
            payout_b,
            withdrawn_a,
            withdrawn_b,
            signature,
        } = request
        else {
            let reason = Reason::truncated("not a close request");
            return (Message::Error { code: 0, reason }, None);
        };
        let id = *channel_id;
        let refuse = |why: String| {
            let reason = Reason::truncated(why);
            let refusal = Message::Reject {
                channel_id: id,
                nonce: 0,
                code: CLOSE_REFUSED,
                reason,
            };
            (refusal, None)
        };
        // Checked and frozen under the channel table's lock: a payment signed or taken in
        // between would be left out of the payouts and undone by this close.
        let checked = self.freeze_if(id, |channel| {
            if channel.partner != peer {
                return Err(format!("channel {id} is not shared with {peer}"));
            }
            let ours_totals = (channel.on_chain.withdrawn_a, channel.on_chain.withdrawn_b);
            if (*withdrawn_a, *withdrawn_b) != ours_totals
                || payout_a.checked_add(*payout_b) != Some(channel.holdings())
            {
                // One of us has not applied the latest withdrawal yet: catch up for the retry.
                let node = self.clone();
                tokio::spawn(async move { node.sync().await });
                return Err(format!(
                    "{BEHIND}: the close is signed at withdrawal totals {:?} paying out {}, this node has {ours_totals:?} and holdings {}",
                    (*withdrawn_a, *withdrawn_b),
                    payout_a.saturating_add(*payout_b),
                    channel.holdings()
                ));
            }
            let expected = channel.close_payouts();
            if (*payout_a, *payout_b) != expected {
                return Err(format!(
                    "the payouts do not match this node's balances {expected:?}"
                ));
            }
            let message = close_message(channel, *payout_a, *payout_b);
            let digest =
                alloy::sol_types::SolStruct::eip712_signing_hash(&message, self.domain());
            crate::payments::verify(digest, signature, peer).map_err(|e| e.to_string())?;
            Ok(message)
        });
        let (message, frozen) = match checked {
            None => return refuse(format!("no channel {id}")),
            Some(Err(why)) => return refuse(why),
            Some(Ok(checked)) => checked,
        };
        let ours = messages::sign(self.key(), &message, self.domain());
        match ours.as_ref().try_into() {
            Ok(signature) => (
                Message::CloseAccept {
                    channel_id: id,
                    signature,
                },
                Some(frozen),
            ),
            Err(_) => refuse("internal: signature length".into()),
        }
    }
}

fn withdraw_message(
    id: ChannelId,
    participant: Address,
    total: u128,
    expiry: u64,
) -> messages::Withdraw {
    messages::Withdraw {
        channelId: U256::from(id),
        participant,
        totalWithdrawn: alloy::primitives::Uint::from(total),
        expiry,
    }
}

/// Our latest proof of `channel` and the nonce of the partner's we hold.
fn sync_message(channel: &farthing_core::Channel) -> Message {
    let sent = channel.ours.as_ref().and_then(|p| {
        let signature = p.signature.as_ref().try_into().ok()?;
        Some(farthing_peer::message::SignedBalance {
            nonce: p.nonce,
            transferred: p.transferred,
            signature,
        })
    });
    Message::Sync {
        channel_id: channel.id,
        sent,
        received_nonce: channel.theirs.as_ref().map_or(0, |p| p.nonce),
    }
}

fn close_message(
    channel: &farthing_core::Channel,
    payout_a: u128,
    payout_b: u128,
) -> messages::CooperativeClose {
    messages::CooperativeClose {
        channelId: U256::from(channel.id),
        payoutA: U256::from(payout_a),
        payoutB: U256::from(payout_b),
        withdrawnA: alloy::primitives::Uint::from(channel.on_chain.withdrawn_a),
        withdrawnB: alloy::primitives::Uint::from(channel.on_chain.withdrawn_b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payments_of_a_proof_claim_their_sum_each_being_a_payment() {
        let memo = Memo::empty;
        assert_eq!(claimed(&[(5, memo()), (7, memo())]).unwrap(), 12);
        assert!(matches!(
            claimed(&[(5, memo()), (0, memo())]),
            Err(PayError::Rejected(farthing_core::Rejection::Zero))
        ));
        let overflow = claimed(&[(u128::MAX, memo()), (1, memo())]).unwrap_err();
        assert!(overflow.to_string().contains("overflow"), "{overflow}");
    }
}
