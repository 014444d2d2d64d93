//! Strangers on the peer port (RELIABILITY N1): a key costs nothing, so after the handshake a
//! peer that shares no channel with this node (in any state) and that the node does not keep
//! a link to is a stranger, and strangers are a class of their own — at most
//! `peer.max_strangers` links at once (past it a new one is closed right after its handshake,
//! logged at a bounded rate), each closed if it still shares no channel after
//! `peer.stranger_timeout_secs`.
//!
//! A partner that just opened a channel on-chain is a stranger until this node applies the
//! opening (after its confirmations). Its link stays meanwhile, and the moment the opening is
//! applied the link is a partner's: it leaves the class (its place goes to another stranger)
//! and no timeout applies to it any more. Links this node dialled are never strangers.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloy::primitives::Address;
use tokio::sync::broadcast::error::RecvError;

use crate::link::Link;
use crate::net::Peering;
use crate::observe::RateLimited;

/// The stranger links up, within their cap.
pub(crate) struct Strangers {
    max: usize,
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    linked: usize,
    refused: RateLimited,
    expired: RateLimited,
}

/// What a new link is.
pub(crate) enum Class {
    /// A partner's or a kept peer's, or one this node dialled.
    Known,
    /// A stranger's, in its place.
    Stranger(Place),
    /// A stranger's past the cap: close it.
    Refused,
}

/// A stranger link's place in the class, given back when dropped.
pub(crate) struct Place(Arc<Strangers>);

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.linked = state.linked.saturating_sub(1);
    }
}

impl Strangers {
    /// At most `max` stranger links at once, each closed after `timeout` as a stranger.
    pub(crate) fn new(max: usize, timeout: Duration) -> Self {
        Self {
            max,
            timeout,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a link from the stranger `peer`, or `None` past the cap (the caller closes
    /// it; logged at a bounded rate).
    fn admit(self: &Arc<Self>, peer: Address) -> Option<Place> {
        let mut state = self.lock();
        if state.linked >= self.max {
            if let Some(count) = state.refused.note() {
                tracing::warn!(
                    %peer,
                    refused = count,
                    "peer link closed: {} links from peers that share no channel with this node already (peer.max_strangers)",
                    self.max
                );
            }
            return None;
        }
        state.linked += 1;
        Some(Place(self.clone()))
    }

    /// Stranger links up.
    pub(crate) fn linked(&self) -> usize {
        self.lock().linked
    }
}

impl Peering {
    /// Whether `peer` shares a channel with this node (any state) or is kept linked.
    fn knows(&self, peer: Address) -> bool {
        self.kept.is_kept(peer) || self.table.shares_channel_with(peer)
    }

    /// Which class a link to `peer` that `dialer` dialed is in (a stranger's takes a place).
    pub(crate) fn classify(&self, peer: Address, dialer: Address) -> Class {
        if dialer != peer || self.knows(peer) {
            return Class::Known;
        }
        match self.strangers.admit(peer) {
            Some(place) => Class::Stranger(place),
            None => Class::Refused,
        }
    }

    /// Watch the stranger `peer`'s `link`, holding its `place`: given back when the link
    /// goes, or when it becomes a partner's (a channel with `peer` applied, or the node keeps
    /// it now); the link is closed if it is still a stranger's after the timeout.
    pub(crate) fn watch_stranger(self: &Arc<Self>, peer: Address, link: &Arc<Link>, place: Place) {
        // Subscribed before the first look: an opening applied in between is not missed.
        let mut changes = self.watcher.subscribe();
        let (peering, link) = (self.clone(), link.clone());
        let mut gone = link.gone();
        let deadline = tokio::time::Instant::now() + self.strangers.timeout;
        let watch = async move {
            let _place = place;
            let (mut look, mut watching) = (true, true);
            loop {
                if look && peering.knows(peer) {
                    tracing::info!(%peer, "a stranger's link is a partner's now");
                    return;
                }
                tokio::select! {
                    change = changes.recv(), if watching => look = match change {
                        Ok(change) => change.channel.partner == peer,
                        Err(RecvError::Lagged(_)) => true,
                        // The watcher is gone (shutdown): the deadline still applies.
                        Err(RecvError::Closed) => {
                            watching = false;
                            false
                        }
                    },
                    _ = gone.wait_for(|gone| *gone) => return,
                    () = tokio::time::sleep_until(deadline) => {
                        if peering.knows(peer) {
                            return;
                        }
                        if let Some(count) = peering.strangers.lock().expired.note() {
                            tracing::info!(
                                %peer,
                                closed = count,
                                "peer link closed: it shares no channel with this node after {} s (peer.stranger_timeout_secs)",
                                peering.strangers.timeout.as_secs()
                            );
                        }
                        peering.links.remove(peer, &link);
                        link.close();
                        return;
                    }
                }
            }
        };
        self.tasks.spawn("stranger link", watch);
    }
}
