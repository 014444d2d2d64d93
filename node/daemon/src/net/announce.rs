//! Telling a linked partner that this node now knows a channel: when the watcher applies a
//! channel's opening, the node sends the partner a Sync for it (durable state only, like the
//! Syncs of a new link). The partner's node learns from it that payments on the channel are
//! taken here — what `farthing_waitChannel` waits for on the payer's side.

use std::sync::Arc;

use alloy::primitives::Address;
use farthing_core::{ChangeKind, ChannelId};
use tokio::sync::broadcast::error::RecvError;

use crate::link::wire::sync_frame;
use crate::net::Peering;
use crate::tasks::Shutdown;

impl Peering {
    /// Announce each channel the watcher opens to its partner, if linked, until shutdown.
    pub(crate) async fn announce_openings(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut changes = self.watcher.subscribe();
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                () = shutdown.wait() => return,
            };
            match change {
                Ok(change) if change.kind == ChangeKind::Opened => {
                    self.announce(change.channel.id, change.channel.partner);
                }
                Ok(_) => {}
                // Some changes were missed: announce every open channel to its linked partner
                // (a Sync the partner already had changes nothing).
                Err(RecvError::Lagged(_)) => {
                    let open: Vec<_> = self
                        .table
                        .lock()
                        .channels()
                        .filter(|c| c.on_chain.state == farthing_core::ChainState::Open)
                        .map(|c| (c.id, c.partner))
                        .collect();
                    for (id, partner) in open {
                        self.announce(id, partner);
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Send `partner` a Sync for channel `id`, built and queued under the table's lock (so it
    /// never follows a newer proof on the wire) to leave once every earlier write is durable.
    fn announce(&self, id: ChannelId, partner: Address) {
        let Some(link) = self.links.get(partner) else {
            return;
        };
        let table = self.table.lock();
        if let Some(channel) = table.channel(id) {
            link.send(sync_frame(channel), Some(self.table.flushed()));
        }
    }
}

/// Why a channel cannot take payments yet ([`Peering::wait_ready`] gave up waiting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// This node has not applied the channel's opening (it waits for confirmations), or the
    /// channel is not the node's.
    #[error("this node has not applied its opening (it waits for its confirmations)")]
    NotHere,
    /// The channel is closed or settled here: it takes no payments any more.
    #[error("it is {0:?} here and takes no payments any more")]
    NotOpen(farthing_core::ChainState),
    /// No link to the partner.
    #[error("no link to the partner's node: connect to it (farthing_connectPeer)")]
    NoLink,
    /// The partner's node has not shown it knows the channel yet (it waits for its own
    /// confirmations).
    #[error("the partner's node has not confirmed it yet (it waits for its own confirmations)")]
    PartnerUnaware,
}

impl Peering {
    /// Wait until channel `id` can take payments in both directions: open here, linked to
    /// its partner, and known to the partner's node. Gives up after `patience`, saying which
    /// of these is missing.
    pub(crate) async fn wait_ready(
        &self,
        id: ChannelId,
        patience: std::time::Duration,
    ) -> Result<farthing_core::Channel, NotReady> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut changes = self.watcher.subscribe();
        let mut links = self.links.watch();
        loop {
            let (missing, known) = match self.ready(id) {
                Ok(channel) => return Ok(channel),
                Err((missing, known)) => (missing, known),
            };
            if let NotReady::NotOpen(_) = missing {
                return Err(missing);
            }
            let partner_learns = async {
                match known {
                    Some(mut known) => {
                        let _ = known.changed().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = changes.recv() => {}
                _ = links.changed() => {}
                () = partner_learns => {}
                () = tokio::time::sleep_until(deadline) => return Err(missing),
            }
        }
    }

    /// The channel if it is ready; otherwise what is missing (and, with a link, the watch of
    /// what the partner knows).
    #[allow(clippy::type_complexity)]
    fn ready(
        &self,
        id: ChannelId,
    ) -> Result<
        farthing_core::Channel,
        (
            NotReady,
            Option<tokio::sync::watch::Receiver<std::collections::HashSet<ChannelId>>>,
        ),
    > {
        let Some(channel) = self.table.get(id) else {
            return Err((NotReady::NotHere, None));
        };
        if channel.on_chain.state != farthing_core::ChainState::Open {
            return Err((NotReady::NotOpen(channel.on_chain.state), None));
        }
        let Some(link) = self.links.get(channel.partner) else {
            return Err((NotReady::NoLink, None));
        };
        let known = link.known_by_partner();
        if known.borrow().contains(&id) {
            Ok(channel)
        } else {
            Err((NotReady::PartnerUnaware, Some(known)))
        }
    }
}
