//! A link's outgoing queue. The node's own frames (proofs, Syncs, Acks, co-signatures) are
//! always queued — the payment path relies on a send that never blocks and never fails while
//! the link is up — but what one peer can make the node queue for it is bounded (RELIABILITY
//! N1): a Pong is dropped while [`PONG_ROOM`] frames or more wait (a peer that pings and never
//! reads gets no more), a Reject closes the link while [`REPLY_ROOM`] wait, and past
//! [`MAX_QUEUED`] frames waiting the link is closed (its reader learns it through
//! [`Sender::overflowed`]). A closed link loses nothing: what was not
//! delivered is settled by the Sync on the next link.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc};

use crate::link::registry::Outgoing;

/// Frames waiting on one link past which it is closed (a peer that does not read while the
/// node keeps answering it: Rejects, say).
pub(crate) const MAX_QUEUED: usize = 100_000;

/// A Pong is queued only while fewer frames than this wait on the link.
pub(crate) const PONG_ROOM: usize = 64;

/// A Reject (a reply a peer earns with a bad frame, each carrying its reason) queued while
/// this many frames or more wait closes the link: a peer that sends bad frames and never
/// reads cannot pin more than about this many replies in memory.
pub(crate) const REPLY_ROOM: usize = 4_096;

/// What both ends share: the count of waiting frames and the overflow.
#[derive(Default)]
struct Shared {
    queued: AtomicUsize,
    overflowed: AtomicBool,
    overflow: Notify,
    dropped_pongs: AtomicU64,
}

/// The link's end: queues frames.
pub(crate) struct Sender {
    tx: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
}

/// The writer's end: takes them in order.
pub(crate) struct Receiver {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
}

/// A new queue.
pub(crate) fn queue() -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::default());
    (
        Sender {
            tx,
            shared: shared.clone(),
        },
        Receiver { rx, shared },
    )
}

impl Sender {
    /// Queue `outgoing` (`false`: the writer is gone). Past [`MAX_QUEUED`] waiting frames the
    /// queue is overflowed (once): the link's reader closes the link.
    pub(crate) fn send(&self, outgoing: Outgoing) -> bool {
        let waiting = self.shared.queued.fetch_add(1, Ordering::AcqRel) + 1;
        if self.tx.send(outgoing).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if waiting > MAX_QUEUED && !self.shared.overflowed.swap(true, Ordering::AcqRel) {
            self.shared.overflow.notify_one();
        }
        true
    }

    /// Queue a Reject; while [`REPLY_ROOM`] frames or more wait the queue is overflowed
    /// instead (once): the peer does not read the refusals it earns, and the link closes.
    pub(crate) fn send_reply(&self, outgoing: Outgoing) -> bool {
        if self.queued() >= REPLY_ROOM {
            if !self.shared.overflowed.swap(true, Ordering::AcqRel) {
                self.shared.overflow.notify_one();
            }
            return false;
        }
        self.send(outgoing)
    }

    /// Queue a Pong if fewer than [`PONG_ROOM`] frames wait (`false`: dropped or gone).
    pub(crate) fn send_pong(&self, outgoing: Outgoing) -> bool {
        if self.queued() >= PONG_ROOM {
            self.shared.dropped_pongs.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.send(outgoing)
    }

    /// Frames waiting (queued, not yet taken by the writer).
    pub(crate) fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Pongs dropped because the peer did not read.
    pub(crate) fn dropped_pongs(&self) -> u64 {
        self.shared.dropped_pongs.load(Ordering::Relaxed)
    }

    /// Resolves once more than [`MAX_QUEUED`] frames waited at once (one waiter: the reader).
    pub(crate) async fn overflowed(&self) {
        self.shared.overflow.notified().await;
    }
}

impl Receiver {
    /// The next frame, waiting for one; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Outgoing> {
        let next = self.rx.recv().await;
        self.took(next.is_some());
        next
    }

    /// The next frame if one waits.
    pub(crate) fn try_recv(&mut self) -> Option<Outgoing> {
        let next = self.rx.try_recv().ok();
        self.took(next.is_some());
        next
    }

    fn took(&self, one: bool) {
        if one {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use farthing_peer::message::Message;
    use futures::FutureExt as _;

    use super::*;

    #[test]
    fn a_reject_past_the_reply_room_overflows_the_queue_instead() {
        let (tx, _rx) = queue();
        for n in 0..REPLY_ROOM as u64 {
            assert!(tx.send_reply(frame(n)));
        }
        assert!(tx.overflowed().now_or_never().is_none(), "not yet");
        assert!(!tx.send_reply(frame(0)), "not queued");
        assert_eq!(tx.queued(), REPLY_ROOM);
        assert!(
            tx.overflowed().now_or_never().is_some(),
            "the link must close"
        );
    }

    fn frame(nonce: u64) -> Outgoing {
        Outgoing {
            ready: None,
            message: Message::Ping { nonce },
        }
    }

    #[tokio::test]
    async fn pongs_are_dropped_while_the_peer_does_not_read_and_an_overflow_is_signalled() {
        let (tx, mut rx) = queue();
        for n in 0..PONG_ROOM as u64 {
            assert!(tx.send_pong(frame(n)), "room for pong {n}");
        }
        assert!(!tx.send_pong(frame(0)), "the queue is full for pongs");
        assert_eq!((tx.queued(), tx.dropped_pongs()), (PONG_ROOM, 1));
        // The writer takes one: room for one more pong.
        assert!(rx.try_recv().is_some());
        assert!(tx.send_pong(frame(1)));

        // The node's own frames always queue, and past the bound the reader is told once.
        for n in PONG_ROOM..MAX_QUEUED {
            assert!(tx.send(frame(n as u64)));
        }
        assert!(tx.overflowed().now_or_never().is_none(), "at the bound");
        assert!(tx.send(frame(0)), "never refused while the writer runs");
        assert!(tx.overflowed().now_or_never().is_some(), "past the bound");
        assert!(tx.send(frame(0)));
        assert!(tx.overflowed().now_or_never().is_none(), "signalled once");
        assert_eq!(tx.queued(), MAX_QUEUED + 2);
        drop(rx);
        assert!(!tx.send(frame(0)), "the writer is gone");
        assert_eq!(tx.queued(), MAX_QUEUED + 2);
    }
}
