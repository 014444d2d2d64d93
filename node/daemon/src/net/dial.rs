//! Links come up here: accepted on the peer port, or dialed (once, or kept up with backoff).
//! Each side proves its key by signing the other's challenge (`farthing_peer::handshake`);
//! then the link gets a reader and a writer task and the node sends its Sync.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use farthing_peer::{FrameReader, FrameWriter, PeerAddr, handshake};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::link::Link;
use crate::link::wire::sync_frame;
use crate::link::writer::write_frames;
use crate::net::Peering;
use crate::net::admission::Slot;
use crate::tasks::OnFailure;

/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first wait between dials of a partner that is away, doubling up to [`MAX_REDIAL`].
const FIRST_REDIAL: Duration = Duration::from_millis(250);

/// The longest wait between dials.
const MAX_REDIAL: Duration = Duration::from_secs(30);

/// Why a link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// TCP failed (retry: the partner may be down).
    #[error("cannot reach the peer at {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The peer failed the handshake (check the partner's address, chain and version).
    #[error("handshake with {addr} failed: {source}")]
    Handshake {
        /// Where.
        addr: String,
        /// Why.
        source: farthing_peer::HandshakeError,
    },
}

type Halves = (
    FrameReader<ReadHalf<TcpStream>>,
    FrameWriter<WriteHalf<TcpStream>>,
);

impl Peering {
    /// Listen for partner nodes on `addr` until shutdown; returns the bound address (port 0
    /// works). A listener that dies is bound again on that address (`listen`).
    pub(crate) async fn listen(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let peering = self.clone();
        crate::listen::serve(
            &self.tasks,
            listener,
            ("peer listener", OnFailure::Degrade),
            "peer handshake",
            move |stream, remote| {
                // Past the caps the connection is dropped here: closed at once.
                let slot = peering.admission.admit(remote.ip())?;
                let peering = peering.clone();
                Some(async move { peering.accept(stream, remote, slot).await })
            },
        )
    }

    /// The handshake of an accepted connection, holding its admission `slot` until done.
    async fn accept(self: &Arc<Self>, stream: TcpStream, remote: SocketAddr, slot: Slot) {
        let _ = stream.set_nodelay(true);
        let key = self.signer.key().signer();
        let shaken = handshake(stream, key, self.chain_id, None, HANDSHAKE_TIMEOUT).await;
        drop(slot);
        match shaken {
            Ok((peer, conn)) => self.run_link(peer, peer, conn.split()),
            Err(e) => self.admission.failed(remote.ip(), &e),
        }
    }

    /// Dial a partner (`0xADDRESS@host:port`) and prove both identities.
    pub(crate) async fn connect(self: &Arc<Self>, peer: &PeerAddr) -> Result<(), LinkError> {
        let addr = format!("{}:{}", peer.host, peer.port);
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|source| LinkError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let key = self.signer.key().signer();
        let (proven, conn) = handshake(
            stream,
            key,
            self.chain_id,
            Some(peer.address),
            HANDSHAKE_TIMEOUT,
        )
        .await
        .map_err(|source| LinkError::Handshake { addr, source })?;
        self.run_link(proven, self.signer.address(), conn.split());
        Ok(())
    }

    /// Keep a link to `peer` up: dial now and whenever it drops (noticed within 250 ms), with
    /// backoff after failed dials (250 ms doubling to 30 s), until shutdown.
    pub(crate) fn keep_linked(self: &Arc<Self>, peer: PeerAddr) {
        let (peering, mut shutdown) = (self.clone(), self.tasks.shutdown_signal());
        let redial = async move {
            let mut wait = FIRST_REDIAL;
            loop {
                if shutdown.is_set() {
                    return;
                }
                let linked = peering.links.get(peer.address).is_some();
                if linked || peering.store_health.is_failing() {
                    wait = FIRST_REDIAL;
                } else {
                    match peering.connect(&peer).await {
                        Ok(()) => wait = FIRST_REDIAL,
                        Err(e) => {
                            tracing::warn!(%peer, "{e}; retrying in {:.2} s", wait.as_secs_f64());
                            wait = (wait * 2).min(MAX_REDIAL);
                        }
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.wait() => return,
                }
            }
        };
        self.tasks
            .spawn_critical("partner redial", OnFailure::Warn, redial);
    }

    /// Run a link to `peer` that `dialer` dialed (the partner, or this node).
    fn run_link(self: &Arc<Self>, peer: Address, dialer: Address, (reader, writer): Halves) {
        if self.tasks.is_stopping() {
            return;
        }
        if self.store_health.is_failing() {
            // Nothing may be synchronised from a table that is ahead of the disk.
            tracing::warn!(%peer, "peer link refused: the store is failing");
            return;
        }
        let (outgoing, queue) = mpsc::unbounded_channel();
        let link = Arc::new(Link::new(outgoing, dialer));
        if !self.add_with_sync(peer, &link) {
            // Both nodes dialed each other at the same moment: both keep the link the lower
            // address dialed (each applies the same rule), and this one closes.
            return;
        }
        tracing::info!(%peer, "peer link up");
        let writing = self
            .tasks
            .spawn_counted("peer writer", write_frames(writer, queue));
        let (peering, reading_link) = (self.clone(), link.clone());
        let reading = self.tasks.spawn_counted("peer reader", async move {
            if let Err(e) = peering.read_frames(peer, &reading_link, reader).await {
                tracing::warn!(%peer, "peer link closed: {e}");
            }
            peering.links.remove(peer, &reading_link);
            reading_link.shut();
        });
        link.own([writing, reading]);
    }

    /// Register `link` to `peer` and queue, first on it, our latest proof of every open channel
    /// shared with `peer` (a Sync each, sent once durable), so that a payment whose delivery or
    /// acknowledgement was lost is settled. Both happen under the channel table's lock, where
    /// the signer looks up the link: a proof signed before is in the Sync, one signed after
    /// goes on this link behind it — a Sync never follows a newer proof on the wire. `false`:
    /// the partner's simultaneous dial won and this link is dropped.
    fn add_with_sync(&self, peer: Address, link: &Arc<Link>) -> bool {
        let table = self.table.lock();
        if !self.links.add(peer, link) {
            return false;
        }
        let syncs: Vec<_> = table
            .channels()
            .filter(|c| c.partner == peer && c.on_chain.state == farthing_core::ChainState::Open)
            .map(sync_frame)
            .collect();
        // An empty group commit resolves once every write queued before it is durable.
        let mut ready = (!syncs.is_empty()).then(|| self.table.flushed());
        for sync in syncs {
            link.send(sync, ready.take());
        }
        true
    }
}
