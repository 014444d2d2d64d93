//! Links come up here: accepted on the peer port, or dialed (once, or kept up with backoff).
//! The handshake (`farthing_peer::handshake`) encrypts the link and has each side sign the
//! Noise session's hash with its key; then the link gets a reader and a writer task and the node sends its Sync.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use farthing_peer::{FrameReader, FrameWriter, PeerAddr, handshake};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::link::Link;
use crate::link::kept::Keep;
use crate::link::queue;
use crate::link::wire::sync_frame;
use crate::link::writer::write_frames;
use crate::net::Peering;
use crate::net::admission::Slot;
use crate::net::strangers::Class;
use crate::tasks::OnFailure;

/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first wait between dials of a partner that is away, doubling up to [`MAX_REDIAL`].
const FIRST_REDIAL: Duration = Duration::from_millis(250);

/// The longest wait between dials (an address that never answers is tried every 5 min).
const MAX_REDIAL: Duration = Duration::from_secs(300);

/// How long a TCP connect to a partner may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest wait between rounds of dials to a partner with several addresses (its
/// instances): one of them is expected to lead soon, and a standby refuses at once.
const MAX_ROUND_WAIT: Duration = Duration::from_secs(2);

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

/// The wait after a failed dial that followed a wait of `wait`: doubled, up to [`MAX_REDIAL`].
fn next_wait(wait: Duration) -> Duration {
    (wait * 2).min(MAX_REDIAL)
}

/// Whether the `failures`-th failed dial in a row is logged at WARN: the 1st, 2nd, 4th, 8th…
/// (the others at DEBUG). An address that never answers costs about a dozen lines in its
/// first day, not one every backoff step.
fn worth_a_warning(failures: u32) -> bool {
    failures.is_power_of_two()
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
        // A host that drops packets (a partner's instance whose machine died) must not hold
        // the dial for the kernel's SYN timeout (about two minutes).
        let stream = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(connected) => connected,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer in {} s", DIAL_TIMEOUT.as_secs()),
            )),
        }
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
    /// backoff after failed dials (250 ms doubling to 5 min), until shutdown or
    /// [`Peering::stop_keeping`]. A partner kept already is dialled at once at the (new)
    /// address, its backoff starting over. A failure is logged at WARN on the 1st, 2nd, 4th,
    /// 8th… failure in a row (DEBUG otherwise), so an address that never answers costs a few
    /// lines, not one every few seconds; `listPeers` shows its last error.
    ///
    /// `peers` are one partner's addresses (a node run as a leader and standbys): a failed dial
    /// moves on to the next.
    pub(crate) fn keep_linked(self: &Arc<Self>, peers: Vec<PeerAddr>) {
        let kept = match self.kept.keep(peers) {
            Keep::Start(kept) => kept,
            Keep::Running => return,
        };
        self.kept.loop_started();
        let (peering, mut shutdown) = (self.clone(), self.tasks.shutdown_signal());
        let redial = async move {
            let mut wait = FIRST_REDIAL;
            // Until it is no longer kept (disconnectPeer) or the node stops.
            while let Some(peer) = kept.target() {
                if shutdown.is_set() {
                    break;
                }
                let linked = peering.links.get(peer.address).is_some();
                if linked || peering.store_health.is_failing() {
                    wait = FIRST_REDIAL;
                    if linked {
                        kept.linked();
                    }
                } else {
                    let dialled = tokio::select! {
                        dialled = peering.connect(&peer) => Some(dialled),
                        // Stopped or pointed elsewhere while dialling: look again.
                        () = kept.wake.notified() => None,
                        () = shutdown.wait() => break,
                    };
                    match dialled {
                        None => {
                            wait = FIRST_REDIAL;
                            continue;
                        }
                        Some(Ok(())) => {
                            if kept.state().failed > 0 {
                                tracing::info!(%peer, "peer link up after failed dials");
                            }
                            kept.linked();
                            wait = FIRST_REDIAL;
                        }
                        Some(Err(e)) => {
                            // A partner with several addresses (its instances: one leads, the
                            // others listen on nothing): dial them back to back, and wait only
                            // once a round of them failed (at most MAX_ROUND_WAIT).
                            let state = kept.state();
                            let addresses = 1 + state.others.len() as u32;
                            let mid_round = state.failed.wrapping_add(1) % addresses != 0;
                            let next = match (mid_round, addresses) {
                                (true, _) => Duration::ZERO,
                                (false, 1) => next_wait(wait),
                                (false, _) => next_wait(wait).min(MAX_ROUND_WAIT),
                            };
                            let failures = kept.failed(e.to_string(), next);
                            if worth_a_warning(failures) {
                                tracing::warn!(
                                    %peer,
                                    "{e}; {failures} failed dial(s) in a row, next in {:.2} s (backing off to {} s; farthing_listPeers shows the last error, farthing_disconnectPeer stops it)",
                                    next.as_secs_f64(),
                                    if addresses > 1 { MAX_ROUND_WAIT } else { MAX_REDIAL }.as_secs()
                                );
                            } else {
                                tracing::debug!(%peer, "{e}; failed dial {failures}, next in {:.2} s", next.as_secs_f64());
                            }
                            if mid_round {
                                continue;
                            }
                            wait = next;
                        }
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    // A new address or a stop: dial (or end) now, backoff starting over.
                    () = kept.wake.notified() => wait = FIRST_REDIAL,
                    () = shutdown.wait() => break,
                }
            }
            peering.kept.loop_ended();
            // Told to stop (no longer kept) is no failure; at shutdown nothing is reported.
            true
        };
        self.tasks
            .spawn_critical_until("partner redial", OnFailure::Warn, redial);
    }

    /// Stop keeping a link to `peer` (its redial loop ends; `forget` also forgets its
    /// address) and drop the link that is up. Returns (was linked, was kept, forgotten).
    pub(crate) fn stop_keeping(&self, peer: Address, forget: bool) -> (bool, bool, bool) {
        let (was_kept, forgotten) = self.kept.stop(peer, forget);
        let was_linked = self.links.drop_link(peer);
        if was_linked || was_kept {
            tracing::info!(%peer, forget, "peer disconnected by the operator");
        }
        (was_linked, was_kept, forgotten)
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
        // A peer that shares no channel with this node: capped, and timed out.
        let place = match self.classify(peer, dialer) {
            Class::Known => None,
            Class::Stranger(place) => Some(place),
            Class::Refused => return,
        };
        let (outgoing, queue) = queue::queue();
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
            tokio::select! {
                read = peering.read_frames(peer, &reading_link, reader) => if let Err(e) = read {
                    tracing::warn!(%peer, "peer link closed: {e}");
                },
                () = reading_link.overflowed() => tracing::warn!(
                    %peer,
                    "peer link closed: more than {} frames wait for a peer that does not read them",
                    queue::MAX_QUEUED
                ),
            }
            peering.links.remove(peer, &reading_link);
            // The writer too: it may wait forever on a peer that does not read.
            reading_link.close();
        });
        link.own([writing, reading]);
        if let Some(place) = place {
            self.watch_stranger(peer, &link, place);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_that_never_answers_is_dialled_less_and_less_and_logged_rarely() {
        let mut wait = FIRST_REDIAL;
        let mut waits = Vec::new();
        for _ in 0..12 {
            waits.push(wait.as_millis());
            wait = next_wait(wait);
        }
        assert_eq!(
            waits,
            [
                250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000,
                300_000
            ]
        );
        // A day of failures: 10 minutes to reach the cap, then one dial every 5 minutes.
        let day = 12 + (24 * 60 - 10) / 5;
        let warnings = (1..=day).filter(|n| worth_a_warning(*n)).count();
        assert_eq!((day, warnings), (298, 9));
    }
}
