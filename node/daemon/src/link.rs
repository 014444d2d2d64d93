//! Peer links: the node's authenticated TCP connections to its channel partners, and payments
//! over them.
//!
//! Sending: [`Node::pay`] signs the next proof under the channel table's lock and, still under
//! it, queues both the synced write and the `Pay` frame; the link's writer sends a frame only
//! once the write queued before it is durable (durability rule 1), in queue order, so proofs
//! leave in nonce order however many payments are in flight. The call returns when the
//! partner's cumulative `Ack` covers its nonce.
//!
//! Receiving: the reader takes every `Pay` already buffered (a burst), checks and queues each
//! (signature, rules, synced write), waits once for the last write to be durable, then sends
//! ONE cumulative `Ack` — or a `Reject` with the reason for a refused proof (durability rule 2:
//! nothing is acknowledged before it is durable; many payments share one fsync).
//!
//! Not yet here (issue 4 continues): reconnect with backoff and the `Sync` exchange that
//! resends unacknowledged proofs, cooperative close/withdraw over the link, the `pay` RPC.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use farthing_chain::messages;
use farthing_core::{ChannelId, SignedProof};
use farthing_peer::message::{Memo, Message, Reason};
use farthing_peer::{FrameReader, FrameWriter, PeerAddr, handshake};
use farthing_store::Write;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::node::Node;
use crate::payments::{Durable, PayError};

/// How long a payment waits for its acknowledgement on a link that stays open.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A frame to send once the write queued before it is durable.
struct Outgoing {
    ready: Option<Durable>,
    message: Message,
}

/// The answer a payer waits for.
type Waiter = oneshot::Sender<Result<(), PayError>>;

/// The answer a cooperative close waits for: the partner's signature, or its reason to refuse.
type CloseWaiter = oneshot::Sender<Result<[u8; 65], String>>;

/// One authenticated link to a partner.
pub(crate) struct Link {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Payments waiting for their Ack, per channel, by nonce.
    waiting: Mutex<HashMap<ChannelId, BTreeMap<u64, Waiter>>>,
    /// Cooperative closes waiting for the partner's signature (or its reason to refuse).
    closing: Mutex<HashMap<ChannelId, CloseWaiter>>,
    /// Its reader and writer tasks.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Set (under the `waiting` lock) once the link is going away.
    closed: std::sync::atomic::AtomicBool,
}

/// The node's links, by partner address.
#[derive(Default)]
pub(crate) struct Links(
    Mutex<HashMap<Address, Arc<Link>>>,
    Mutex<Vec<tokio::task::JoinHandle<()>>>,
);

impl Links {
    fn track(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Drop every link but keep listening.
    fn close_links(&self) {
        let links: Vec<_> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, l)| l)
            .collect();
        for link in links {
            for task in link
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
            {
                task.abort();
            }
            link.fail_waiters();
        }
    }

    /// Stop listening and drop every link (the partners see their links close).
    pub(crate) fn close_all(&self) {
        for task in self
            .1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn get(&self, peer: Address) -> Option<Arc<Link>> {
        self.0
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
                        Ok((peer, conn)) => node.run_link(peer, conn.split()),
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
        self.run_link(proven, conn.split());
        Ok(())
    }

    /// Keep a link to `peer` up: dial now and whenever it drops, with backoff (1 s doubling to
    /// 30 s), until the node stops.
    pub fn keep_linked(&self, peer: PeerAddr) {
        let node = self.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(1);
            loop {
                if node.is_stopping() {
                    return;
                }
                if node.is_linked(peer.address) {
                    wait = Duration::from_secs(1);
                } else {
                    match node.connect_peer(&peer).await {
                        Ok(()) => wait = Duration::from_secs(1),
                        Err(e) => {
                            tracing::warn!(%peer, "{e}; retrying in {} s", wait.as_secs());
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

    /// Whether a link to `peer` is up.
    pub fn is_linked(&self, peer: Address) -> bool {
        self.links().get(peer).is_some()
    }

    fn run_link(
        &self,
        peer: Address,
        (reader, writer): (
            FrameReader<tokio::io::ReadHalf<TcpStream>>,
            FrameWriter<tokio::io::WriteHalf<TcpStream>>,
        ),
    ) {
        let (outgoing, queue) = mpsc::unbounded_channel();
        let link = Arc::new(Link {
            outgoing,
            waiting: Mutex::new(HashMap::new()),
            closing: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        self.links()
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer, link.clone());
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
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if links.get(&peer).is_some_and(|l| Arc::ptr_eq(l, &link)) {
                links.remove(&peer);
            }
            drop(links);
            // Payments still waiting will not be acknowledged on this link.
            link.fail_waiters();
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
            let sent = channel.ours.as_ref().and_then(|p| {
                let signature = p.signature.as_ref().try_into().ok()?;
                Some(farthing_peer::message::SignedBalance {
                    nonce: p.nonce,
                    transferred: p.transferred,
                    signature,
                })
            });
            let received_nonce = channel.theirs.as_ref().map_or(0, |p| p.nonce);
            let message = Message::Sync {
                channel_id: channel.id,
                sent,
                received_nonce,
            };
            let _ = link.outgoing.send(Outgoing {
                ready: ready.take(),
                message,
            });
        }
    }

    /// Pay `amount` on channel `id` over the link to its partner; returns our new proof once
    /// the partner has acknowledged it as durable.
    pub async fn pay(&self, id: ChannelId, amount: u128) -> Result<SignedProof, PayError> {
        let partner = self.partner_of(id).ok_or(PayError::UnknownChannel(id))?;
        if self.is_frozen(id) {
            return Err(PayError::Frozen(id));
        }
        let link = self.links().get(partner).ok_or(PayError::LinkDown)?;
        let (acked, answer) = oneshot::channel();
        let proof = self.with_channel(id, |channel, group| {
            let (next, proof) = self.next_proof(channel, amount)?;
            let (nonce, transferred) = (proof.nonce, proof.transferred);
            let raw: [u8; 65] = proof
                .signature
                .as_ref()
                .try_into()
                .map_err(|_| PayError::BadSignature("own signature not 65 bytes".into()))?;
            let durable: Durable = Box::pin(group.submit(vec![Write::Channel(next.clone())]));
            // Register for the Ack unless the link is already closing (checked under the same
            // lock the closing link takes to fail its waiters: no waiter is left behind).
            let registered = {
                let mut waiting = link.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                if link.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    false
                } else {
                    waiting.entry(id).or_default().insert(nonce, acked);
                    true
                }
            };
            let pay = Message::Pay {
                channel_id: id,
                nonce,
                transferred,
                amount,
                signature: raw,
                payment_id: [0; 16],
                memo: Memo::empty(),
            };
            // The proof is signed and its write queued: the table must take it whatever happens
            // to the link (the store will hold it), so a send failure is reported after.
            let sent = registered
                && link
                    .outgoing
                    .send(Outgoing {
                        ready: Some(durable),
                        message: pay,
                    })
                    .is_ok();
            Ok::<_, PayError>((next, (proof, sent)))
        })?;
        let (proof, sent) = proof;
        if !sent {
            return Err(PayError::LinkDown);
        }
        // A backstop: a partner that keeps the link open but never answers.
        tokio::time::timeout(ACK_TIMEOUT, answer)
            .await
            .map_err(|_| PayError::LinkDown)?
            .map_err(|_| PayError::LinkDown)??;
        self.history().record(id, true, proof.nonce, amount);
        Ok(proof)
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
            if burst.iter().any(|m| matches!(m, Message::Pay { channel_id, .. } if self.channel_record(*channel_id).is_none())) {
                let _ = self.sync().await;
            }
            // Check and queue every proof of the burst, wait once, acknowledge once per channel.
            let mut last_durable: Option<Durable> = None;
            let mut acks: BTreeMap<ChannelId, u64> = BTreeMap::new();
            let mut received: Vec<(ChannelId, u64, u128)> = Vec::new();
            let mut replies = Vec::new();
            for message in burst {
                match message {
                    Message::Pay {
                        channel_id,
                        nonce,
                        transferred,
                        amount,
                        signature,
                        ..
                    } => {
                        match self.queue_incoming(
                            peer,
                            channel_id,
                            nonce,
                            transferred,
                            amount,
                            &signature,
                        ) {
                            Ok(durable) => {
                                last_durable = Some(durable);
                                acks.insert(channel_id, nonce);
                                received.push((channel_id, nonce, amount));
                            }
                            Err(e) => replies.push(Message::Reject {
                                channel_id,
                                nonce,
                                code: 1,
                                reason: Reason::truncated(e.to_string()),
                            }),
                        }
                    }
                    Message::Ack { channel_id, nonce } => {
                        link.acknowledged(channel_id, nonce, Ok(()))
                    }
                    Message::Reject {
                        channel_id,
                        nonce: 0,
                        code: 2,
                        reason,
                    } => {
                        let waiter = link
                            .closing
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&channel_id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(Err(reason.as_str().to_owned()));
                        }
                    }
                    Message::Reject {
                        channel_id,
                        nonce,
                        reason,
                        ..
                    } => {
                        link.acknowledged(
                            channel_id,
                            nonce,
                            Err(PayError::Refused(reason.as_str().to_owned())),
                        );
                    }
                    request @ Message::CloseRequest { .. } => {
                        replies.push(self.answer_close(peer, &request))
                    }
                    Message::CloseAccept {
                        channel_id,
                        signature,
                    } => {
                        let waiter = link
                            .closing
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&channel_id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(Ok(signature));
                        }
                    }
                    Message::Sync {
                        channel_id,
                        sent: Some(latest),
                        ..
                    } => {
                        // The partner's latest proof: take it if it is newer than ours of it
                        // (a payment whose delivery or Ack was lost before the reconnect).
                        let received = self
                            .channel_record(channel_id)
                            .map(|c| (c.received(), c.theirs.map_or(0, |p| p.nonce)));
                        if let Some((received, have)) = received
                            && latest.nonce > have
                            && latest.transferred > received
                        {
                            let amount = latest.transferred - received;
                            match self.queue_incoming(
                                peer,
                                channel_id,
                                latest.nonce,
                                latest.transferred,
                                amount,
                                &latest.signature,
                            ) {
                                Ok(durable) => {
                                    last_durable = Some(durable);
                                    acks.insert(channel_id, latest.nonce);
                                }
                                Err(e) => {
                                    tracing::warn!(%peer, channel = channel_id, "sync proof refused: {e}")
                                }
                            }
                        }
                    }
                    Message::Ping { nonce } => replies.push(Message::Pong { nonce }),
                    _ => {}
                }
            }
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
                        for (channel, nonce, amount) in received {
                            node.history().record(channel, false, nonce, amount);
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
}

impl Link {
    /// The link is gone: every payment and close waiting on it learns so.
    fn fail_waiters(&self) {
        let waiting = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            std::mem::take(&mut *waiting)
        };
        for (_, by_nonce) in waiting {
            for (_, waiter) in by_nonce {
                let _ = waiter.send(Err(PayError::LinkDown));
            }
        }
        self.closing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Resolve every payment of `channel` up to `nonce` (cumulative Ack), or the one refused.
    fn acknowledged(&self, channel: ChannelId, nonce: u64, outcome: Result<(), PayError>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(by_nonce) = waiting.get_mut(&channel) else {
            return;
        };
        match outcome {
            Ok(()) => {
                let later = by_nonce.split_off(&(nonce + 1));
                for (_, waiter) in std::mem::replace(by_nonce, later) {
                    let _ = waiter.send(Ok(()));
                }
            }
            Err(e) => {
                if let Some(waiter) = by_nonce.remove(&nonce) {
                    let _ = waiter.send(Err(e));
                }
            }
        }
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
        for outgoing in batch {
            if let Some(ready) = outgoing.ready
                && let Err(e) = ready.await
            {
                // Not durable: the frame must not leave. The link drops; payers see LinkDown.
                tracing::error!("store failed, dropping the peer link: {e}");
                return;
            }
            if writer.feed(&outgoing.message).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

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
        self.freeze(id);
        // Every payment we sent must be acknowledged before the balances are final.
        for _ in 0..500 {
            let waiting = link
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
                .is_some_and(|w| !w.is_empty());
            if !waiting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let channel = self
            .channel_record(id)
            .ok_or(PayError::UnknownChannel(id))?;
        let (payout_a, payout_b) = payouts(&channel);
        let message = close_message(&channel, payout_a, payout_b);
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
        let theirs = match tokio::time::timeout(CLOSE_ANSWER_TIMEOUT, answer).await {
            Ok(Ok(Ok(signature))) => signature,
            Ok(Ok(Err(reason))) => return Err(PayError::Refused(reason)),
            _ => return Err(PayError::LinkDown),
        };
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

    /// Answer a partner's close request: co-sign only the payouts this node computes itself.
    fn answer_close(&self, peer: Address, request: &Message) -> Message {
        let Message::CloseRequest {
            channel_id,
            payout_a,
            payout_b,
            withdrawn_a,
            withdrawn_b,
            signature,
        } = request
        else {
            return Message::Error {
                code: 0,
                reason: Reason::truncated("not a close request"),
            };
        };
        let id = *channel_id;
        let refuse = |why: String| Message::Reject {
            channel_id: id,
            nonce: 0,
            code: 2,
            reason: Reason::truncated(why),
        };
        let Some(channel) = self.channel_record(id) else {
            return refuse(format!("no channel {id}"));
        };
        if channel.partner != peer {
            return refuse(format!("channel {id} is not shared with {peer}"));
        }
        let expected = payouts(&channel);
        if (*payout_a, *payout_b) != expected
            || (*withdrawn_a, *withdrawn_b)
                != (channel.on_chain.withdrawn_a, channel.on_chain.withdrawn_b)
        {
            return refuse(format!(
                "the payouts do not match this node's balances {expected:?}"
            ));
        }
        let message = close_message(&channel, *payout_a, *payout_b);
        let digest = alloy::sol_types::SolStruct::eip712_signing_hash(&message, self.domain());
        if let Err(e) = crate::payments::verify(digest, signature, peer) {
            return refuse(e.to_string());
        }
        self.freeze(id);
        let ours = messages::sign(self.key(), &message, self.domain());
        match ours.as_ref().try_into() {
            Ok(signature) => Message::CloseAccept {
                channel_id: id,
                signature,
            },
            Err(_) => refuse("internal: signature length".into()),
        }
    }
}

/// (payout to A, payout to B) from a node's own view of the channel.
fn payouts(channel: &farthing_core::Channel) -> (u128, u128) {
    match channel.role {
        farthing_core::Role::A => (channel.our_balance(), channel.partner_balance()),
        farthing_core::Role::B => (channel.partner_balance(), channel.our_balance()),
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
