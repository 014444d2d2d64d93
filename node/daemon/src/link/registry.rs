//! The node's links to its partners, one per partner address, and what each link carries out:
//! frames queued behind the write they depend on, and the co-signatures it waits for.
//!
//! One link per partner. A partner that dials again replaces its old link (the old one may be
//! half open). Two links from opposite dialers that come up within [`SIMULTANEOUS_DIALS`] are a
//! simultaneous dial (both operators configured each other): both nodes keep the one the lower
//! address dialed ([`keeps_old_link`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use farthing_core::ChannelId;
use farthing_peer::message::Message;
use tokio::sync::{oneshot, watch};
use tokio::task::AbortHandle;

use crate::link::queue;
use crate::table::Durable;

/// Two links from opposite dialers that come up this close together are one simultaneous dial
/// (both nodes keep the same one); later, a new link replaces the old (a redial after the old
/// one died, maybe half-open).
pub(crate) const SIMULTANEOUS_DIALS: Duration = Duration::from_secs(2);

/// Channels a link remembers the partner's node knows, at most.
pub(crate) const MAX_KNOWN: usize = 100_000;

/// A frame to send once the write queued before it is durable.
pub(crate) struct Outgoing {
    /// The write the frame depends on (`None`: nothing).
    pub(crate) ready: Option<Durable>,
    /// The frame.
    pub(crate) message: Message,
}

/// Which co-signature a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cosigned {
    /// A cooperative close.
    Close,
    /// A cooperative withdrawal.
    Withdraw,
}

/// The partner's answer to a co-signing request: its signature, or its reason to refuse.
pub(crate) type Answer = Result<[u8; 65], String>;

/// One authenticated link to a partner.
pub(crate) struct Link {
    outgoing: queue::Sender,
    /// Requests waiting for the partner's co-signature, by kind and channel.
    answers: Mutex<HashMap<(Cosigned, ChannelId), oneshot::Sender<Answer>>>,
    /// Its reader and writer tasks.
    tasks: Mutex<Vec<AbortHandle>>,
    /// Turns `true` once the link is gone.
    gone: watch::Sender<bool>,
    /// Who dialed it: the partner or this node.
    dialer: Address,
    up_at: Instant,
    /// Unix time in ms it came up.
    up_at_ms: u64,
    /// The channels the partner's node has shown it knows on this link (a Sync, an Ack or a
    /// proof for them): payments on them can be taken there.
    known: watch::Sender<HashSet<ChannelId>>,
}

impl Link {
    /// A link `dialer` dialed; its frames go to `outgoing`'s receiver (the writer).
    pub(crate) fn new(outgoing: queue::Sender, dialer: Address) -> Self {
        Self {
            outgoing,
            answers: Mutex::default(),
            tasks: Mutex::default(),
            gone: watch::Sender::new(false),
            dialer,
            up_at: Instant::now(),
            up_at_ms: super::kept::now_ms(),
            known: watch::Sender::default(),
        }
    }

    /// The partner's node showed on this link that it knows channel `id` (at most
    /// [`MAX_KNOWN`] are remembered per link: a partner cannot grow it without bound).
    pub(crate) fn partner_knows(&self, id: ChannelId) {
        self.known
            .send_if_modified(|known| known.len() < MAX_KNOWN && known.insert(id));
    }

    /// Whether the partner's node has shown on this link that it knows channel `id`.
    pub(crate) fn partner_knows_already(&self, id: ChannelId) -> bool {
        self.known.borrow().contains(&id)
    }

    /// How many wait for the partner's word on a channel (tests wait for a waiter).
    #[cfg(test)]
    pub(crate) fn waiting_for_partner(&self) -> usize {
        self.known.receiver_count()
    }

    /// The channels the partner's node has shown it knows, and their changes.
    pub(crate) fn known_by_partner(&self) -> watch::Receiver<HashSet<ChannelId>> {
        self.known.subscribe()
    }

    /// Queue `message`, to leave once `ready` is durable. `false` if the link is gone (a
    /// frame that was not sent is settled by the Sync on the next link). Never refused while
    /// the link is up; past [`queue::MAX_QUEUED`] waiting frames the link closes.
    pub(crate) fn send(&self, message: Message, ready: Option<Durable>) -> bool {
        self.outgoing.send(Outgoing { ready, message })
    }

    /// Queue a Pong unless [`queue::PONG_ROOM`] frames already wait (the peer does not read):
    /// then it is dropped.
    pub(crate) fn send_pong(&self, pong: Message) -> bool {
        self.outgoing.send_pong(Outgoing {
            ready: None,
            message: pong,
        })
    }

    /// Queue a Reject, or close the link if [`queue::REPLY_ROOM`] frames already wait (the
    /// peer does not read the refusals it earns).
    pub(crate) fn send_reject(&self, reject: Message) -> bool {
        self.outgoing.send_reply(Outgoing {
            ready: None,
            message: reject,
        })
    }

    /// Frames waiting for the writer, and Pongs dropped because the peer did not read.
    pub(crate) fn backlog(&self) -> (usize, u64) {
        (self.outgoing.queued(), self.outgoing.dropped_pongs())
    }

    /// Resolves once more than [`queue::MAX_QUEUED`] frames waited at once: the peer does not
    /// read what the node sends it, and the link must close.
    pub(crate) async fn overflowed(&self) {
        self.outgoing.overflowed().await;
    }

    /// Wait for the partner's answer to our `kind` request on channel `id` (registered before
    /// the request leaves, so the answer cannot be missed).
    pub(crate) fn expect_answer(&self, kind: Cosigned, id: ChannelId) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((kind, id), tx);
        rx
    }

    /// Hand the partner's answer to the request waiting for it, if any.
    pub(crate) fn answer(&self, kind: Cosigned, id: ChannelId, answer: Answer) {
        let waiter = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(kind, id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(answer);
        }
    }

    /// Who dialed it: the partner or this node.
    pub(crate) fn dialer(&self) -> Address {
        self.dialer
    }

    /// Turns `true` once the link is gone.
    pub(crate) fn gone(&self) -> watch::Receiver<bool> {
        self.gone.subscribe()
    }

    /// Remember the link's reader and writer, to stop them with it (at once if it is gone
    /// already: its reader ended before they were handed over).
    pub(crate) fn own(&self, tasks: impl IntoIterator<Item = AbortHandle>) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks);
        if *self.gone.borrow() {
            self.close();
        }
    }

    /// Stop its reader and writer now.
    pub(crate) fn close(&self) {
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
    /// new link), requests waiting for a co-signature give up.
    pub(crate) fn shut(&self) {
        self.gone.send_replace(true);
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Whether an `old` link to a partner stays when a `new` one comes up: only in a simultaneous
/// dial (opposite dialers within [`SIMULTANEOUS_DIALS`], the old one alive) whose lower-address
/// dialer dialed the old one. Both nodes apply the same rule, so both keep the same link.
pub(crate) fn keeps_old_link(
    old_dialer: Address,
    old_age: Duration,
    old_alive: bool,
    new_dialer: Address,
) -> bool {
    old_alive && old_dialer != new_dialer && old_age < SIMULTANEOUS_DIALS && old_dialer < new_dialer
}

/// The node's links, by partner address.
#[derive(Default)]
pub(crate) struct Links {
    links: Mutex<Registry>,
    /// Links established since the node started (a number that keeps rising says links flap).
    ups: AtomicU64,
    /// Links closed at once because the partner's simultaneous dial won.
    declined: AtomicU64,
    /// Bumped whenever a link is added or removed.
    changes: watch::Sender<u64>,
}

/// The links, and whether the node stopped taking new ones.
#[derive(Default)]
struct Registry {
    by_partner: HashMap<Address, Arc<Link>>,
    /// Set at shutdown: no link is added any more.
    closed: bool,
}

impl Links {
    /// The link to `peer`, if one is up.
    pub(crate) fn get(&self, peer: Address) -> Option<Arc<Link>> {
        self.lock().by_partner.get(&peer).cloned()
    }

    /// How many links are up.
    pub(crate) fn count(&self) -> usize {
        self.lock().by_partner.len()
    }

    /// How many links came up since the node started.
    pub(crate) fn established(&self) -> u64 {
        self.ups.load(Ordering::Relaxed)
    }

    /// How many new links were closed at once because the partner's simultaneous dial won.
    pub(crate) fn declined(&self) -> u64 {
        self.declined.load(Ordering::Relaxed)
    }

    /// Add `link` to `peer` unless the old one wins a simultaneous dial (`false`: drop the new
    /// one). A replaced old link is closed.
    pub(crate) fn add(&self, peer: Address, link: &Arc<Link>) -> bool {
        let replaced = {
            let mut links = self.lock();
            if links.closed {
                return false;
            }
            if let Some(old) = links.by_partner.get(&peer)
                && keeps_old_link(
                    old.dialer,
                    old.up_at.elapsed(),
                    !*old.gone.borrow(),
                    link.dialer,
                )
            {
                self.declined.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            links.by_partner.insert(peer, link.clone())
        };
        if let Some(old) = replaced {
            old.close();
        }
        self.ups.fetch_add(1, Ordering::Relaxed);
        self.changes.send_modify(|n| *n += 1);
        true
    }

    /// Changes whenever a link is added or removed.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Forget `link` to `peer` if it is still the registered one (its reader ended).
    pub(crate) fn remove(&self, peer: Address, link: &Arc<Link>) {
        let mut links = self.lock();
        if links
            .by_partner
            .get(&peer)
            .is_some_and(|l| Arc::ptr_eq(l, link))
        {
            links.by_partner.remove(&peer);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Every link up: (partner, who dialed it, unix ms it came up).
    pub(crate) fn snapshot(&self) -> Vec<(Address, Address, u64)> {
        self.lock()
            .by_partner
            .iter()
            .map(|(peer, link)| (*peer, link.dialer, link.up_at_ms))
            .collect()
    }

    /// Close the link to `peer`, if one is up (`true`).
    pub(crate) fn drop_link(&self, peer: Address) -> bool {
        let link = self.lock().by_partner.remove(&peer);
        link.map(|link| link.close()).is_some()
    }

    /// Close every link (the partners see them drop; dialed partners are dialed again).
    pub(crate) fn close_all(&self) {
        let links: Vec<_> = self.lock().by_partner.drain().map(|(_, l)| l).collect();
        for link in links {
            link.close();
        }
    }

    /// Close every link and take no new one (the node stops).
    pub(crate) fn close_for_good(&self) {
        self.lock().closed = true;
        self.close_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: Address = Address::repeat_byte(1);
    const HIGH: Address = Address::repeat_byte(2);

    #[test]
    fn a_simultaneous_dial_keeps_the_link_the_lower_address_dialed_on_both_sides() {
        let soon = Duration::from_millis(300);
        // Seen from either node, the same link survives: the one LOW dialed.
        assert!(keeps_old_link(LOW, soon, true, HIGH));
        assert!(!keeps_old_link(HIGH, soon, true, LOW));
        // A redial by the same dialer, a late second link or a dead old link: the new one wins.
        assert!(!keeps_old_link(LOW, soon, true, LOW));
        assert!(!keeps_old_link(LOW, SIMULTANEOUS_DIALS, true, HIGH));
        assert!(!keeps_old_link(LOW, soon, false, HIGH));
    }

    #[tokio::test]
    async fn a_new_link_replaces_and_closes_the_old_one() {
        let links = Links::default();
        let (tx, _rx) = queue::queue();
        let old = Arc::new(Link::new(tx, HIGH));
        assert!(links.add(HIGH, &old));
        let waiting = old.expect_answer(Cosigned::Close, 1);
        let (tx, _rx) = queue::queue();
        let new = Arc::new(Link::new(tx, HIGH));
        assert!(links.add(HIGH, &new));
        assert!(*old.gone().borrow(), "the old link is shut");
        assert!(waiting.await.is_err(), "its pending request gives up");
        assert!(Arc::ptr_eq(&links.get(HIGH).expect("linked"), &new));
        links.remove(HIGH, &old);
        assert_eq!(
            links.count(),
            1,
            "removing a replaced link leaves the new one"
        );
        assert_eq!(links.established(), 2);
    }
}
